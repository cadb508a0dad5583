//! The conformance suite through the async face: [`ThroughAsync`] turns a backend's
//! [`AsyncTopologyStore`] handle back into a [`TopologyStore`] by awaiting each call on a
//! shared multi-thread tokio runtime, so every check (the races included: their threads
//! each block on the runtime at once) runs on the async code path.

use std::sync::Arc;

use tokio::runtime::Runtime;
use topostate::TopologyId;
use topostate::store::{AsyncTopologyStore, TopologyStore};

use super::Harness;
use super::awaiting::Awaiting;

/// A backend whose async face is under test.
pub trait AsyncHarness: Send + Sync + 'static {
    /// A fresh, empty store.
    fn new() -> Self;
    /// A new async handle on the same data.
    fn async_handle(&self) -> Arc<dyn AsyncTopologyStore>;
    /// Test hook: force the stored version of a topology.
    fn force_version(&self, id: TopologyId, version: u64);
}

/// The conformance [`Harness`] of an [`AsyncHarness`]: each handle awaits its async face.
pub struct ThroughAsync<H> {
    inner: H,
    runtime: Runtime,
}

impl<H: AsyncHarness> Harness for ThroughAsync<H> {
    fn new() -> Self {
        // I/O and timers: an async network driver (PostgreSQL) needs both.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Self {
            inner: H::new(),
            runtime,
        }
    }

    fn handle(&self) -> Box<dyn TopologyStore> {
        Box::new(Awaiting::new(
            self.inner.async_handle(),
            self.runtime.handle().clone(),
        ))
    }

    fn force_version(&self, id: TopologyId, version: u64) {
        self.inner.force_version(id, version);
    }
}
