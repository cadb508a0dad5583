//! [`Offload`]: the async face of a store whose calls block, run on tokio's blocking pool.

use std::boxed::Box;
use std::string::String;
use std::sync::Arc;
use std::time::Duration;

use crate::{MutationOp, MutationState, TopologyId, TopologyStatus};

use super::{AsyncTopologyStore, StoreFuture};
use crate::store::{
    BackendError, ChildEdit, Claim, ClaimOptions, DeckyId, DeckyRuntime, EditReport, Edited,
    EventId, LanId, Lease, Mutation, MutationId, Page, PageRequest, Precondition, StatusEvent,
    StoreError, TopologyDetail, TopologyRecord, TopologyStore, Touched, Transitioned,
};

/// The async face of a blocking store (such as [`SqliteStore`](crate::store::SqliteStore)):
/// each call runs the store's sync face on tokio's blocking pool, so no runtime worker ever
/// waits on a disk or on a lock held by another process.
///
/// The call's arguments are copied into the blocking task (the task may outlive a dropped
/// future). Dropping the future does not stop the call: it runs to its end, and since every
/// write is atomic it is then either fully made or not made at all; only its answer is
/// lost. Every guarantee is the sync face's own, since the very same code runs.
///
/// The handle is cheap to clone (the store sits behind an [`Arc`]), and its sync face stays
/// reachable through [`get_ref`](Self::get_ref) for code outside the runtime.
///
/// Each call holds a blocking thread until it is answered, so many concurrent writes hold
/// as many threads. For a SQLite store, `AsyncSqliteStore` (features `sqlite` and `tokio`)
/// is the better face: its writes are queued from their tasks for the store's group
/// commit, with no thread waiting for them.
///
/// ```
/// use topostate::store::{AsyncTopologyStore, AsyncTypedStore, NewLan, Offload, SqliteStore};
///
/// # async fn service() -> Result<(), topostate::store::StoreError> {
/// let store = Offload::new(SqliteStore::open_in_memory()?);
/// let lab = store.create("lab").await?;
/// let lan = store
///     .add_lan(lab.id(), NewLan::new("dmz", "10.0.0.0/24"), Some(lab.version()))
///     .await?;
/// assert_eq!(lan.version, 2);
/// # Ok(())
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(service()).unwrap();
/// ```
///
/// Besides the sync face's errors, a call awaited outside a tokio runtime is
/// [`StoreError::Backend`] saying so; a panic inside the store resumes in the awaiting task,
/// as it would have on the sync face.
#[derive(Debug)]
pub struct Offload<S> {
    store: Arc<S>,
}

impl<S> Clone for Offload<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
        }
    }
}

impl<S: TopologyStore + 'static> Offload<S> {
    /// The async face of `store`.
    pub fn new(store: S) -> Self {
        Self {
            store: Arc::new(store),
        }
    }

    /// The async face of a store already shared behind an [`Arc`].
    pub fn from_arc(store: Arc<S>) -> Self {
        Self { store }
    }

    /// The store's sync face, for callers outside the runtime.
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.store
    }

    /// Runs `call` on the blocking pool of the runtime the future is awaited in.
    fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(&S) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let store = Arc::clone(&self.store);
        Box::pin(async move {
            let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
                StoreError::Backend(BackendError::new(
                    "an Offload store was awaited outside a tokio runtime; await it inside one, \
                     or call its sync face (get_ref)",
                ))
            })?;
            // The blocking thread reports to the caller's subscriber, inside the caller's
            // span, so the store's span nests where the call was made.
            #[cfg(feature = "tracing")]
            let call = {
                let span = tracing::Span::current();
                let dispatch = tracing::dispatcher::get_default(Clone::clone);
                move |store: &S| {
                    tracing::dispatcher::with_default(&dispatch, || span.in_scope(|| call(store)))
                }
            };
            match runtime.spawn_blocking(move || call(&store)).await {
                Ok(out) => out,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(StoreError::Backend(BackendError::new(
                    "the runtime shut down before the store call ran",
                ))),
            }
        })
    }
}

impl<S: TopologyStore + 'static> AsyncTopologyStore for Offload<S> {
    fn create_topology<'a>(&'a self, name: &'a str) -> StoreFuture<'a, TopologyRecord> {
        let name = String::from(name);
        self.run(move |s| s.create_topology(&name))
    }

    fn get_topology(&self, id: TopologyId) -> StoreFuture<'_, TopologyRecord> {
        self.run(move |s| s.get_topology(id))
    }

    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
        page: PageRequest<TopologyId>,
    ) -> StoreFuture<'_, Page<TopologyRecord>> {
        self.run(move |s| s.list_topologies(status, page))
    }

    fn topology_detail(&self, id: TopologyId) -> StoreFuture<'_, TopologyDetail> {
        self.run(move |s| s.topology_detail(id))
    }

    fn transition_status<'a>(
        &'a self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&'a str>,
        precondition: Precondition,
    ) -> StoreFuture<'a, Transitioned> {
        let reason = reason.map(String::from);
        self.run(move |s| s.transition_status(id, to, reason.as_deref(), precondition))
    }

    fn list_status_events(
        &self,
        id: TopologyId,
        page: PageRequest<EventId>,
    ) -> StoreFuture<'_, Page<StatusEvent>> {
        self.run(move |s| s.list_status_events(id, page))
    }

    fn edit<'a>(
        &'a self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &'a [ChildEdit],
    ) -> StoreFuture<'a, EditReport> {
        let edits = edits.to_vec();
        self.run(move |s| s.edit(id, expected_version, &edits))
    }

    fn set_lan_network_id<'a>(
        &'a self,
        lan: LanId,
        network_id: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        let network_id = network_id.map(String::from);
        self.run(move |s| s.set_lan_network_id(lan, network_id.as_deref()))
    }

    fn set_decky_runtime<'a>(
        &'a self,
        decky: DeckyId,
        runtime: &'a DeckyRuntime,
    ) -> StoreFuture<'a, ()> {
        let runtime = runtime.clone();
        self.run(move |s| s.set_decky_runtime(decky, &runtime))
    }

    fn enqueue_mutation<'a>(
        &'a self,
        id: TopologyId,
        op: MutationOp,
        payload: &'a str,
        expected_version: Option<u64>,
    ) -> StoreFuture<'a, Edited<MutationId>> {
        let payload = String::from(payload);
        self.run(move |s| s.enqueue_mutation(id, op, &payload, expected_version))
    }

    fn claim_next_mutation(&self, id: TopologyId) -> StoreFuture<'_, Claim> {
        self.run(move |s| s.claim_next_mutation(id))
    }

    fn claim_next_mutation_with<'a>(
        &'a self,
        id: TopologyId,
        options: &'a ClaimOptions,
    ) -> StoreFuture<'a, Claim> {
        let options = options.clone();
        self.run(move |s| s.claim_next_mutation_with(id, &options))
    }

    fn renew_lease<'a>(&'a self, claim: &'a Lease, lease: Duration) -> StoreFuture<'a, Mutation> {
        let claim = Lease::from_parts(claim.id(), claim.topology_id(), claim.token());
        self.run(move |s| s.renew_lease(&claim, lease))
    }

    fn release_mutation(&self, claim: Lease) -> StoreFuture<'_, Mutation> {
        self.run(move |s| s.release_mutation(claim))
    }

    fn wait_for_work(&self, id: Option<TopologyId>, timeout: Duration) -> StoreFuture<'_, bool> {
        self.run(move |s| s.wait_for_work(id, timeout))
    }

    fn apply_live<'a>(
        &'a self,
        claim: &'a Lease,
        edits: &'a [ChildEdit],
    ) -> StoreFuture<'a, EditReport> {
        // The task needs its own claim; it names the same mutation, and the store checks
        // it exactly as it checks the caller's.
        let claim = Lease::from_parts(claim.id(), claim.topology_id(), claim.token());
        let edits = edits.to_vec();
        self.run(move |s| s.apply_live(&claim, &edits))
    }

    fn mark_mutation_applied(&self, claim: Lease) -> StoreFuture<'_, Mutation> {
        self.run(move |s| s.mark_mutation_applied(claim))
    }

    fn mark_mutation_failed<'a>(
        &'a self,
        claim: Lease,
        reason: &'a str,
    ) -> StoreFuture<'a, Mutation> {
        let reason = String::from(reason);
        self.run(move |s| s.mark_mutation_failed(claim, &reason))
    }

    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
        page: PageRequest<MutationId>,
    ) -> StoreFuture<'_, Page<Mutation>> {
        self.run(move |s| s.list_mutations(id, state, page))
    }

    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> StoreFuture<'_, ()> {
        self.run(move |s| s.set_needs_resync(id, needs_resync))
    }

    fn delete_topology(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> StoreFuture<'_, ()> {
        self.run(move |s| s.delete_topology(id, expected_version))
    }

    fn edit_one(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edit: ChildEdit,
    ) -> StoreFuture<'_, Edited<Touched>> {
        // One hop for a single edit, through the sync face's own `edit_one`.
        self.run(move |s| s.edit_one(id, expected_version, edit))
    }
}
