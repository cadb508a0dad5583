//! [`AsyncSqliteStore`]: the async face of a SQLite store, whose writes join the group
//! commit from their tasks.

use core::time::Duration;
use std::sync::Arc;

use crate::store::aio::{AsyncTopologyStore, Offload, StoreFuture};
use crate::store::trace::{Op, Outcome};
use crate::store::{
    ChildEdit, Claim, ClaimOptions, DeckyId, DeckyRuntime, EditReport, Edited, EventId, LanId,
    Lease, Mutation, MutationId, Page, PageRequest, Precondition, StatusEvent, StoreError,
    TopologyDetail, TopologyRecord, Transitioned,
};
use crate::{MutationOp, MutationState, TopologyId, TopologyStatus};

use super::contract::writes;
use super::{Db, R, SqliteStore, WriteOp, answer};

/// The async face of a [`SqliteStore`], for a tokio service: its writes join the store's
/// group commit from their tasks, and no thread waits for them.
///
/// A write is queued for the store's one write connection as an owned job and its task
/// awaits the answer, which comes after the commit that makes it durable; the writes
/// queued meanwhile, by tasks and by threads using the sync face of the same store, are
/// run by one combiner on tokio's blocking pool and share its commits (see
/// [`SqliteStore`]). So a service's concurrent requests cost one thread between them, not
/// one each, as they would through [`Offload`], which runs every call on a blocking thread
/// of its own. Reads and [`wait_for_work`](AsyncTopologyStore::wait_for_work) run on the
/// blocking pool, as through `Offload` (reads never wait for the writer: they use the
/// store's read pool).
///
/// The answers, errors and guarantees are the sync face's, since the very same jobs run:
/// each write in its own savepoint, refused alone, answered as a lone run would be.
/// Dropping a write's future does not withdraw it once it is queued: it is committed
/// whole or not at all, and only its answer is lost. The handle is cheap to clone, and
/// its sync face stays reachable through [`get_ref`](Self::get_ref).
///
/// ```
/// use topostate::store::{
///     AsyncSqliteStore, AsyncTopologyStore, AsyncTypedStore, NewLan, SqliteStore,
/// };
///
/// # async fn service() -> Result<(), topostate::store::StoreError> {
/// let store = AsyncSqliteStore::new(SqliteStore::open_in_memory()?);
/// let lab = store.create("lab").await?;
/// // Two editors at once, both holding version 1: the writes may share a commit, and
/// // exactly one of them wins; the other is refused as it would be alone.
/// let (dmz, lan_a) = tokio::join!(
///     store.add_lan(lab.id(), NewLan::new("dmz", "10.0.0.0/24"), Some(lab.version())),
///     store.add_lan(lab.id(), NewLan::new("lan-a", "10.0.1.0/24"), Some(lab.version())),
/// );
/// let (won, lost) = if dmz.is_ok() { (dmz, lan_a) } else { (lan_a, dmz) };
/// assert_eq!(won?.version, 2);
/// assert!(lost.unwrap_err().is_conflict());
/// # Ok(())
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(service()).unwrap();
/// ```
///
/// Besides the sync face's errors, a call awaited outside a tokio runtime is
/// [`StoreError::Backend`] saying so; a panic inside the store resumes in the awaiting task,
/// as it would have on the sync face.
#[derive(Debug, Clone)]
pub struct AsyncSqliteStore {
    /// The store, and the blocking-pool face its reads go through.
    reads: Offload<SqliteStore>,
}

impl AsyncSqliteStore {
    /// The async face of `store`.
    #[must_use]
    pub fn new(store: SqliteStore) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// The async face of a store already shared behind an [`Arc`] (with threads using its
    /// sync face, say: their writes and this face's share the same groups).
    #[must_use]
    pub fn from_arc(store: Arc<SqliteStore>) -> Self {
        Self {
            reads: Offload::from_arc(store),
        }
    }

    /// The store's sync face, for callers outside the runtime.
    #[must_use]
    pub fn get_ref(&self) -> &SqliteStore {
        self.reads.get_ref()
    }

    /// Queues `op` for the writer, in the span of its operation.
    fn write<T, F>(&self, op: WriteOp<F>) -> StoreFuture<'static, T>
    where
        T: Outcome + Send + 'static,
        F: FnMut(&mut Db<'_>) -> R<T> + Send + 'static,
    {
        let writer = Arc::clone(&self.get_ref().writer);
        let WriteOp {
            name,
            job,
            wakes,
            topology,
            expected,
        } = op;
        let span = Op::start(
            <SqliteStore as crate::store::trace::Untraced>::BACKEND,
            name,
            topology,
            expected,
        );
        Box::pin(span.run_async(async move { answer(name, wakes, writer.submit(job).await) }))
    }

    /// Builds a write that may refuse its arguments before anything runs.
    fn try_write<T, F>(&self, op: Result<WriteOp<F>, StoreError>) -> StoreFuture<'static, T>
    where
        T: Outcome + Send + 'static,
        F: FnMut(&mut Db<'_>) -> R<T> + Send + 'static,
    {
        match op {
            Ok(op) => self.write(op),
            Err(e) => Box::pin(core::future::ready(Err(e))),
        }
    }
}

impl From<SqliteStore> for AsyncSqliteStore {
    fn from(store: SqliteStore) -> Self {
        Self::new(store)
    }
}

impl AsyncTopologyStore for AsyncSqliteStore {
    fn create_topology<'a>(&'a self, name: &'a str) -> StoreFuture<'a, TopologyRecord> {
        self.try_write(writes::create_topology(name))
    }

    fn get_topology(&self, id: TopologyId) -> StoreFuture<'_, TopologyRecord> {
        self.reads.get_topology(id)
    }

    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
        page: PageRequest<TopologyId>,
    ) -> StoreFuture<'_, Page<TopologyRecord>> {
        self.reads.list_topologies(status, page)
    }

    fn topology_detail(&self, id: TopologyId) -> StoreFuture<'_, TopologyDetail> {
        self.reads.topology_detail(id)
    }

    fn transition_status<'a>(
        &'a self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&'a str>,
        precondition: Precondition,
    ) -> StoreFuture<'a, Transitioned> {
        self.write(writes::transition_status(id, to, reason, precondition))
    }

    fn list_status_events(
        &self,
        id: TopologyId,
        page: PageRequest<EventId>,
    ) -> StoreFuture<'_, Page<StatusEvent>> {
        self.reads.list_status_events(id, page)
    }

    fn edit<'a>(
        &'a self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &'a [ChildEdit],
    ) -> StoreFuture<'a, EditReport> {
        self.write(writes::edit(id, expected_version, edits))
    }

    fn set_lan_network_id<'a>(
        &'a self,
        lan: LanId,
        network_id: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        self.write(writes::set_lan_network_id(lan, network_id))
    }

    fn set_decky_runtime<'a>(
        &'a self,
        decky: DeckyId,
        runtime: &'a DeckyRuntime,
    ) -> StoreFuture<'a, ()> {
        self.write(writes::set_decky_runtime(decky, runtime))
    }

    fn enqueue_mutation<'a>(
        &'a self,
        id: TopologyId,
        op: MutationOp,
        payload: &'a str,
        expected_version: Option<u64>,
    ) -> StoreFuture<'a, Edited<MutationId>> {
        self.write(writes::enqueue_mutation(id, op, payload, expected_version))
    }

    fn claim_next_mutation(&self, id: TopologyId) -> StoreFuture<'_, Claim> {
        self.write(writes::claim_next_mutation(id, &ClaimOptions::default()))
    }

    fn claim_next_mutation_with<'a>(
        &'a self,
        id: TopologyId,
        options: &'a ClaimOptions,
    ) -> StoreFuture<'a, Claim> {
        self.write(writes::claim_next_mutation(id, options))
    }

    fn renew_lease<'a>(&'a self, claim: &'a Lease, lease: Duration) -> StoreFuture<'a, Mutation> {
        self.write(writes::renew_lease(claim, lease))
    }

    fn release_mutation(&self, claim: Lease) -> StoreFuture<'_, Mutation> {
        self.write(writes::release_mutation(claim))
    }

    fn wait_for_work(&self, id: Option<TopologyId>, timeout: Duration) -> StoreFuture<'_, bool> {
        self.reads.wait_for_work(id, timeout)
    }

    fn apply_live<'a>(
        &'a self,
        claim: &'a Lease,
        edits: &'a [ChildEdit],
    ) -> StoreFuture<'a, EditReport> {
        self.write(writes::apply_live(claim, edits))
    }

    fn mark_mutation_applied(&self, claim: Lease) -> StoreFuture<'_, Mutation> {
        self.write(writes::mark(claim, MutationState::Applied, None))
    }

    fn mark_mutation_failed<'a>(
        &'a self,
        claim: Lease,
        reason: &'a str,
    ) -> StoreFuture<'a, Mutation> {
        self.write(writes::mark(claim, MutationState::Failed, Some(reason)))
    }

    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
        page: PageRequest<MutationId>,
    ) -> StoreFuture<'_, Page<Mutation>> {
        self.reads.list_mutations(id, state, page)
    }

    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> StoreFuture<'_, ()> {
        self.write(writes::set_needs_resync(id, needs_resync))
    }

    fn delete_topology(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> StoreFuture<'_, ()> {
        self.write(writes::delete_topology(id, expected_version))
    }
}
