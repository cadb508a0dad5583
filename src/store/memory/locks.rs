//! Poison recovery: how the store takes its locks.
//!
//! A lock poisoned by a panicking thread is taken over: every write checks everything
//! before it changes anything, with steps that cannot fail, so a panic never leaves data
//! half-written behind a lock.

use crate::store::sync::{
    Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

/// Locks `mutex`, taking it over if poisoned.
#[inline]
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `lock`, taking it over if poisoned.
#[inline]
pub(super) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `lock`, taking it over if poisoned.
#[inline]
pub(super) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

// Not under loom: these use `is_poisoned` and plain threads, which loom does not model.
#[cfg(all(test, not(topostate_loom)))]
mod tests {
    use super::*;
    use crate::TopologyId;
    use crate::store::sync::Arc;
    use crate::store::{
        MemoryStore, NewDecky, NewEdge, NewLan, PageRequest, StoreError, TopologyStore,
    };

    /// Poisons every lock a write takes (catalog, aggregate, owner index shards) by
    /// panicking while holding them.
    fn poison(store: &MemoryStore, id: TopologyId) {
        let inner = Arc::clone(&store.inner);
        let shared = inner.catalog.aggregate(id).ok();
        let result = std::thread::spawn(move || {
            let _names = lock(&inner.catalog.topology_names);
            let _catalog: Vec<_> = inner.catalog.shards.iter().map(|s| write(&s.0)).collect();
            let _agg = shared.as_ref().map(|s| lock(s));
            let _lans: Vec<_> = inner
                .lan_owners
                .shards
                .iter()
                .map(|s| write(&s.0))
                .collect();
            let _deckies: Vec<_> = (inner.decky_owners.shards.iter())
                .map(|s| write(&s.0))
                .collect();
            panic!("a caller panicked while holding the store's locks");
        })
        .join();
        assert!(result.is_err());
        assert!(store.inner.catalog.topology_names.is_poisoned());
        assert!(store.inner.catalog.shards[0].0.is_poisoned());
        assert!(store.inner.lan_owners.shards[0].0.is_poisoned());
    }

    #[test]
    fn survives_a_panicking_thread() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        let lab = store.create_topology("lab")?;
        let lan = store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))?;
        poison(&store, lab.id);

        // Reads and writes of every kind still work, and nothing was lost.
        assert_eq!(store.get_topology(lab.id)?.version, 2);
        let decky = store.add_decky(lab.id, NewDecky::new("web"), Some(2))?;
        store.add_edge(lab.id, NewEdge::new(decky.id, lan.id), Some(3))?;
        store.set_lan_network_id(lan.id, Some("net-1"))?;
        let other = store.create_topology("other")?;
        assert_eq!(
            store
                .list_topologies(None, PageRequest::first(10))?
                .items
                .len(),
            2
        );
        store.delete_topology(other.id, None)?;
        let detail = store.topology_detail(lab.id)?;
        assert_eq!(detail.topology.version, 4);
        assert_eq!(detail.lans.len(), 1);
        assert_eq!(detail.lans[0].network_id.as_deref(), Some("net-1"));
        assert_eq!(detail.edges.len(), 1);
        Ok(())
    }
}
