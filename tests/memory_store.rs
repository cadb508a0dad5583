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

/// The same suite through `MemoryStore`'s async face (inline: it never blocks).
mod through_async {
    use std::sync::Arc;

    use super::conformance::through_async::{AsyncHarness, ThroughAsync};
    use topostate::TopologyId;
    use topostate::store::{AsyncTopologyStore, MemoryStore};

    struct AsyncMemory(MemoryStore);

    impl AsyncHarness for AsyncMemory {
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

/// `MemoryStore`'s async `wait_for_work` waits, without blocking its executor's thread: on a
/// one-thread runtime it answers `false` only once its timeout has passed, stays pending
/// while there is no work (the enqueue runs on that same thread meanwhile), answers `true`
/// once a mutation is enqueued, and again once a running lease passes.
#[test]
fn async_wait_for_work_waits_on_a_one_thread_runtime() {
    use std::time::{Duration, Instant};
    use topostate::store::{ClaimOptions, Precondition};
    use topostate::{MutationOp, TopologyStatus};

    let store = MemoryStore::new();
    let id = store.create_topology("lab").unwrap().id;
    for to in [TopologyStatus::Deploying, TopologyStatus::Active] {
        store
            .transition_status(id, to, None, Precondition::none())
            .unwrap();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let timeout = Duration::from_millis(200);
        let started = Instant::now();
        let woke = topostate::store::AsyncTopologyStore::wait_for_work(&store, Some(id), timeout)
            .await
            .unwrap();
        assert!(!woke, "work found in an empty queue");
        assert!(started.elapsed() >= timeout, "answered before its timeout");

        for scope in [Some(id), None] {
            let waiting = store.clone();
            let waiter = tokio::spawn(async move {
                topostate::store::AsyncTopologyStore::wait_for_work(&waiting, scope, Duration::from_mins(10)).await
            });
            // Let the waiter run until it waits (it shares this thread).
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!waiter.is_finished(), "{scope:?}: answered with no work queued");
            let queued = topostate::store::AsyncTopologyStore::enqueue_mutation(&store, id, MutationOp::AddLan, "{}", None)
                .await
                .unwrap();
            let woke = tokio::time::timeout(Duration::from_mins(1), waiter)
                .await
                .expect("still waiting a minute after the enqueue")
                .unwrap()
                .unwrap();
            assert!(woke, "{scope:?}");
            // Claimed under a short lease: nothing to claim until it passes, then the
            // takeover is work.
            let short = ClaimOptions::new().lease(Duration::from_millis(300));
            let claimed = store.claim_next_mutation_with(id, &short).unwrap();
            assert!(
                matches!(&claimed, topostate::store::Claim::Claimed { mutation, .. } if mutation.id == queued.id),
                "{claimed:?}"
            );
            let started = Instant::now();
            let woke = topostate::store::AsyncTopologyStore::wait_for_work(&store, scope, Duration::from_mins(1))
                .await
                .unwrap();
            assert!(woke, "{scope:?}: not woken by the lease passing");
            assert!(started.elapsed() < Duration::from_mins(1));
            let topostate::store::Claim::Claimed { lease: claim, .. } =
                store.claim_next_mutation_with(id, &short).unwrap()
            else {
                panic!("{scope:?}: no takeover after the lease passed");
            };
            store.mark_mutation_applied(claim).unwrap();
        }
    });
}
