//! The conformance suite run against [`MemoryStore`], plus what only the memory backend
//! promises.

mod pages;

use pages::ListAll;

mod conformance;

use conformance::Harness;
use topostate::TopologyId;
use topostate::store::{MemoryStore, StoreError, TopologyStore};

/// Every handle is a clone of one store: clones share the data.
struct MemoryHarness(MemoryStore);

impl Harness for MemoryHarness {
    fn new() -> Self {
        Self(MemoryStore::new())
    }

    fn handle(&self) -> Box<dyn TopologyStore> {
        Box::new(self.0.clone())
    }

    fn force_version(&self, id: TopologyId, version: u64) {
        self.0.debug_set_version(id, version).unwrap();
    }
}

conformance_tests!(MemoryHarness);

/// The same suite through MemoryStore's async face (inline: it never blocks).
mod through_async {
    use std::sync::Arc;

    use super::conformance::through_async::{AsyncHarness, ThroughAsync};
    use topostate::TopologyId;
    use topostate::store::{AsyncTopologyStore, MemoryStore};

    struct AsyncMemory(MemoryStore);

    impl AsyncHarness for AsyncMemory {
        // Its async face has no timer: `wait_for_work` only looks.
        const WAITS: bool = false;

        fn new() -> Self {
            Self(MemoryStore::new())
        }

        fn async_handle(&self) -> Arc<dyn AsyncTopologyStore> {
            Arc::new(self.0.clone())
        }

        fn force_version(&self, id: TopologyId, version: u64) {
            self.0.debug_set_version(id, version).unwrap();
        }
    }

    crate::conformance_tests!(ThroughAsync<AsyncMemory>);
}

#[test]
fn debug_set_version_checks_its_input() {
    let store = MemoryStore::new();
    let id = store.create_topology("lab").unwrap().id;
    assert!(matches!(
        store.debug_set_version(id, 0),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.debug_set_version(id, topostate::MAX_VERSION + 1),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.debug_set_version(TopologyId::new(99), 5),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.get_topology(id).unwrap().version, 1);
}

#[test]
fn a_store_is_a_shareable_handle() {
    fn assert_traits<T: Send + Sync + Clone + Default + std::fmt::Debug + 'static>() {}
    assert_traits::<MemoryStore>();
    let store = MemoryStore::default();
    let boxed: Box<dyn TopologyStore> = Box::new(store.clone());
    boxed.create_topology("lab").unwrap();
    assert_eq!(store.all_topologies(None).unwrap().len(), 1);
    // Separate stores do not share.
    assert!(MemoryStore::new().all_topologies(None).unwrap().is_empty());
}
