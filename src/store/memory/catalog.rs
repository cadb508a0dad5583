//! The catalog: which topologies exist, found by id (sharded) and by name, and the
//! sequences every id is minted from.

use std::collections::HashMap;
use std::fmt;
use std::string::String;

use crate::TopologyId;
use crate::store::sync::{Arc, AtomicU64, Mutex, Ordering, RwLock, TryLockError};
use crate::store::{Entity, StoreError};

use super::aggregate::Aggregate;
use super::index::{IdMap, Owners, Padded, Sharded, shard_of, sharded};
use super::locks::{lock, read};
use super::{MemoryStore, not_found};

/// A topology aggregate, shared by the catalog and the threads working on it.
pub(super) type Shared = Arc<Mutex<Aggregate>>;

/// The topologies, sharded by id so that threads on different topologies rarely touch
/// the same lock.
pub(super) struct Catalog {
    /// Id → aggregate; a read lock on one shard is all a call on one topology takes here.
    pub(super) shards: Sharded<TopologyId, Shared>,
    /// Topology names, unique store-wide; taken first by create and delete, which
    /// serialises them.
    pub(super) topology_names: Mutex<HashMap<String, TopologyId>>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self {
            shards: sharded(),
            topology_names: Mutex::default(),
        }
    }
}

impl Catalog {
    /// The shard holding `id`.
    #[inline]
    pub(super) fn shard(&self, id: TopologyId) -> &RwLock<IdMap<TopologyId, Shared>> {
        &self.shards[shard_of(id.get())].0
    }

    /// The aggregate of a live topology (not locked).
    #[inline]
    pub(super) fn aggregate(&self, id: TopologyId) -> Result<Shared, StoreError> {
        read(self.shard(id))
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(Entity::Topology, id.get()))
    }

    /// Every aggregate in the catalog, by id (including any deleted since they were
    /// listed: the caller checks under each one's lock).
    pub(super) fn all(&self) -> Vec<(TopologyId, Shared)> {
        let mut all: Vec<(TopologyId, Shared)> = Vec::new();
        for shard in &self.shards {
            all.extend(read(&shard.0).iter().map(|(id, s)| (*id, Arc::clone(s))));
        }
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// How many topologies there are, for `Debug`: never blocks (or deadlocks) to print.
    pub(super) fn debug_count(&self, s: &mut fmt::DebugStruct<'_, '_>) {
        match self.topology_names.try_lock() {
            Ok(names) => s.field("topologies", &names.len()),
            Err(TryLockError::Poisoned(p)) => s.field("topologies", &p.into_inner().len()),
            Err(TryLockError::WouldBlock) => s.field("topologies", &"<locked>"),
        };
    }
}

/// Finding a topology's aggregate and locking it: the first step of every call.
impl MemoryStore {
    /// Runs `f` on a topology's aggregate, locked.
    pub(super) fn with<R>(
        &self,
        id: TopologyId,
        f: impl FnOnce(&mut Aggregate) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let shared = self.inner.catalog.aggregate(id)?;
        let mut agg = lock(&shared);
        // Deleted between the catalog lookup and the lock.
        if agg.deleted {
            return Err(not_found(Entity::Topology, id.get()));
        }
        f(&mut agg)
    }

    /// Runs `f` on the aggregate owning a child, found through `owners`.
    pub(super) fn with_child<R>(
        &self,
        owners: &Owners,
        entity: Entity,
        child: u64,
        f: impl FnOnce(&mut Aggregate) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let owner = owners
            .owner(child)
            .ok_or_else(|| not_found(entity, child))?;
        // A topology deleted meanwhile reports the child, not the topology, as missing.
        self.with(owner, f).map_err(|e| match e {
            StoreError::NotFound {
                entity: Entity::Topology,
                ..
            } => not_found(entity, child),
            e => e,
        })
    }
}

/// One counter per kind of id; each sequence starts at 1.
#[derive(Default)]
pub(super) struct Sequences {
    pub(super) topologies: Counter,
    pub(super) lans: Counter,
    pub(super) deckies: Counter,
    pub(super) edges: Counter,
    pub(super) mutations: Counter,
    pub(super) events: Counter,
}

/// One id sequence, on its own cache lines: writers to different topologies mint from it
/// at once.
#[derive(Default)]
pub(super) struct Counter(Padded<AtomicU64>);

impl Counter {
    /// The next id. Events and mutations are minted under their topology's lock, so within
    /// a topology their ids grow with append order.
    #[inline]
    pub(super) fn mint(&self) -> u64 {
        // 2^64 ids cannot be minted in practice; wrapping avoids a panic path.
        self.0.0.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }

    /// The id the next [`mint`](Self::mint) returns, unless another thread mints first.
    pub(super) fn peek(&self) -> u64 {
        self.0.0.load(Ordering::Relaxed).wrapping_add(1)
    }
}

#[cfg(all(test, not(topostate_loom)))]
mod tests {
    use crate::store::{
        ChildEdit, MemoryStore, NewDecky, NewEdge, NewLan, StoreError, TopologyStore,
    };

    #[test]
    fn ids_have_their_own_sequences_without_gaps_after_refusals() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        let a = store.create_topology("a")?;
        let refused = store.edit(
            a.id,
            None,
            &[
                ChildEdit::AddLan(NewLan::new("x", "s")),
                ChildEdit::AddLan(NewLan::new("x", "s")),
            ],
        );
        assert!(matches!(refused, Err(StoreError::Duplicate { .. })));
        let lan = store.add_lan(a.id, NewLan::new("x", "s"), None)?;
        let decky = store.add_decky(a.id, NewDecky::new("d"), None)?;
        let edge = store.add_edge(a.id, NewEdge::new(decky.id, lan.id), None)?;
        assert_eq!(
            (a.id.get(), lan.id.get(), decky.id.get(), edge.id.get()),
            (1, 1, 1, 1)
        );
        Ok(())
    }
}
