//! The async face of the store contract: [`AsyncTopologyStore`], its typed layer
//! [`AsyncTypedStore`], and the two ways a backend gets it.
//!
//! See [`AsyncTopologyStore`] for what the async face promises and how each backend
//! provides it.

#[cfg(feature = "tokio")]
mod offload;

#[cfg(feature = "tokio")]
pub use offload::Offload;

use core::time::Duration;
use std::boxed::Box;
use std::future::Future;
use std::pin::Pin;

use crate::state::{CanTransitionTo, Pending, State};
use crate::{
    AnyTopology, MutationOp, MutationState, Topology, TopologyId, TopologyStatus, Versioned,
};

use super::typed::{restore, transition_of};
use super::{
    ChildEdit, Claim, ClaimOptions, DeckyId, DeckyPatch, DeckyRuntime, EdgeId, EditReport, Edited,
    EventId, LanId, LanPatch, Lease, Mutation, MutationId, NewDecky, NewEdge, NewLan, Page,
    PageRequest, Precondition, QueueOpen, StatusEvent, StoreError, TopologyDetail, TopologyRecord,
    TopologyStore, Touched, Transitioned, decky_of, edge_of, lan_of, touched_as, wrong_row,
};

/// The future of one store operation: boxed, `Send`, borrowing the store and the
/// arguments for `'a`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The store contract, async: every operation of [`TopologyStore`] as a method returning a
/// boxed `Send` future ([`StoreFuture`]), with the same arguments, the same errors in the
/// same precedence and the same guarantees. Nothing here restates a rule: a
/// backend's async face runs the very code of its sync face, or (PostgreSQL) the same
/// shared planner on an async driver.
///
/// | backend | how its async face runs |
/// |---|---|
/// | [`MemoryStore`](crate::store::MemoryStore) | inline on the calling task ([`NonBlocking`]): its locks are held for microseconds and never across I/O |
/// | `SqliteStore` | through `AsyncSqliteStore` (features `sqlite`, `tokio`): each write is queued from its task for the store's group commit, run by one combiner on tokio's blocking pool; reads on the blocking pool |
/// | any other blocking store | on tokio's blocking pool, through `Offload` (feature `tokio`), a blocking thread per call |
///
/// # Generic or type-erased
///
/// The trait is `dyn`-compatible, so a service can hold one type-erased handle,
/// `Arc<dyn AsyncTopologyStore>`, and pick the backend at startup; or it can be generic over
/// `S: AsyncTopologyStore` and pay no dynamic dispatch beyond the boxed future. Either way
/// the typed layer ([`AsyncTypedStore`]) is there, since it is implemented for every
/// implementor and for `dyn AsyncTopologyStore` itself.
///
/// ```
/// use std::sync::Arc;
/// use topostate::store::{AsyncTopologyStore, AsyncTypedStore, MemoryStore, NewLan};
///
/// # async fn service() -> Result<(), topostate::store::StoreError> {
/// let store: Arc<dyn AsyncTopologyStore> = Arc::new(MemoryStore::new());
/// let lab = store.create("lab").await?;
/// let lan = store
///     .add_lan(lab.id(), NewLan::new("dmz", "10.0.0.0/24"), Some(lab.version()))
///     .await?;
/// assert_eq!(lan.version, 2);
/// // An editor still holding version 1 is refused, exactly as through the sync face.
/// let stale = store.add_lan(lab.id(), NewLan::new("lan-a", "10.0.1.0/24"), Some(1)).await;
/// assert!(stale.unwrap_err().is_conflict());
/// # Ok(())
/// # }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(service()).unwrap();
/// ```
///
/// An applier task drains a live topology's queue the same way, awaiting each step:
///
/// ```
/// use topostate::MutationOp;
/// use topostate::store::{
///     AsyncTopologyStore, AsyncTypedStore, ChildEdit, Claim, MemoryStore, NewLan,
/// };
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let lab = store.create("lab").await?;
/// let lab = store.advance(lab, |t| t.deploy()).await?;
/// let mut lab = store.advance(lab, |t| t.activate()).await?;
/// store.enqueue(&mut lab, MutationOp::AddLan, r#"{"name":"lan-b"}"#).await?;
///
/// let Claim::Claimed { lease, .. } = store.claim_next_mutation(lab.id()).await? else {
///     panic!("one mutation is pending");
/// };
/// // While it is applying, another applier is told so.
/// assert!(matches!(store.claim_next_mutation(lab.id()).await?, Claim::Busy { .. }));
/// let lan_b = [ChildEdit::AddLan(NewLan::new("lan-b", "10.0.2.0/24"))];
/// store.apply_live(&lease, &lan_b).await?;
/// store.mark_mutation_applied(lease).await?;
/// assert_eq!(store.claim_next_mutation(lab.id()).await?, Claim::Empty);
/// # Ok::<(), topostate::store::StoreError>(())
/// # })?;
/// # Ok::<(), topostate::store::StoreError>(())
/// ```
///
/// Each method's documentation is its sync twin's. Dropping a future before it completes
/// abandons the call: a write that had not started is not made, and one that had is either
/// committed whole or not at all (never half), as the backend's atomicity promises.
pub trait AsyncTopologyStore: Send + Sync {
    /// [`TopologyStore::create_topology`], async.
    fn create_topology<'a>(&'a self, name: &'a str) -> StoreFuture<'a, TopologyRecord>;

    /// [`TopologyStore::get_topology`], async.
    fn get_topology(&self, id: TopologyId) -> StoreFuture<'_, TopologyRecord>;

    /// [`TopologyStore::list_topologies`], async.
    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
        page: PageRequest<TopologyId>,
    ) -> StoreFuture<'_, Page<TopologyRecord>>;

    /// [`TopologyStore::topology_detail`], async.
    fn topology_detail(&self, id: TopologyId) -> StoreFuture<'_, TopologyDetail>;

    /// [`TopologyStore::transition_status`], async.
    fn transition_status<'a>(
        &'a self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&'a str>,
        precondition: Precondition,
    ) -> StoreFuture<'a, Transitioned>;

    /// [`TopologyStore::list_status_events`], async.
    fn list_status_events(
        &self,
        id: TopologyId,
        page: PageRequest<EventId>,
    ) -> StoreFuture<'_, Page<StatusEvent>>;

    /// [`TopologyStore::edit`], async.
    fn edit<'a>(
        &'a self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &'a [ChildEdit],
    ) -> StoreFuture<'a, EditReport>;

    /// [`TopologyStore::set_lan_network_id`], async.
    fn set_lan_network_id<'a>(
        &'a self,
        lan: LanId,
        network_id: Option<&'a str>,
    ) -> StoreFuture<'a, ()>;

    /// [`TopologyStore::set_decky_runtime`], async.
    fn set_decky_runtime<'a>(
        &'a self,
        decky: DeckyId,
        runtime: &'a DeckyRuntime,
    ) -> StoreFuture<'a, ()>;

    /// [`TopologyStore::enqueue_mutation`], async.
    fn enqueue_mutation<'a>(
        &'a self,
        id: TopologyId,
        op: MutationOp,
        payload: &'a str,
        expected_version: Option<u64>,
    ) -> StoreFuture<'a, Edited<MutationId>>;

    /// [`TopologyStore::claim_next_mutation`], async.
    fn claim_next_mutation(&self, id: TopologyId) -> StoreFuture<'_, Claim>;

    /// [`TopologyStore::claim_next_mutation_with`], async.
    fn claim_next_mutation_with<'a>(
        &'a self,
        id: TopologyId,
        options: &'a ClaimOptions,
    ) -> StoreFuture<'a, Claim>;

    /// [`TopologyStore::renew_lease`], async.
    fn renew_lease<'a>(&'a self, claim: &'a Lease, lease: Duration) -> StoreFuture<'a, Mutation>;

    /// [`TopologyStore::release_mutation`], async.
    fn release_mutation(&self, claim: Lease) -> StoreFuture<'_, Mutation>;

    /// [`TopologyStore::wait_for_work`], async: `AsyncPgStore` waits on the server's
    /// notifications, [`Offload`] waits on tokio's blocking pool, a [`NonBlocking`] store
    /// through [`NonBlocking::wait_for_work_async`] (`MemoryStore` waits without blocking
    /// the executor's thread, on any runtime).
    fn wait_for_work(&self, id: Option<TopologyId>, timeout: Duration) -> StoreFuture<'_, bool>;

    /// [`TopologyStore::apply_live`], async.
    fn apply_live<'a>(
        &'a self,
        claim: &'a Lease,
        edits: &'a [ChildEdit],
    ) -> StoreFuture<'a, EditReport>;

    /// [`TopologyStore::mark_mutation_applied`], async.
    fn mark_mutation_applied(&self, claim: Lease) -> StoreFuture<'_, Mutation>;

    /// [`TopologyStore::mark_mutation_failed`], async.
    fn mark_mutation_failed<'a>(
        &'a self,
        claim: Lease,
        reason: &'a str,
    ) -> StoreFuture<'a, Mutation>;

    /// [`TopologyStore::list_mutations`], async.
    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
        page: PageRequest<MutationId>,
    ) -> StoreFuture<'_, Page<Mutation>>;

    /// [`TopologyStore::set_needs_resync`], async.
    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> StoreFuture<'_, ()>;

    /// [`TopologyStore::delete_topology`], async.
    fn delete_topology(&self, id: TopologyId, expected_version: Option<u64>)
    -> StoreFuture<'_, ()>;

    /// [`TopologyStore::edit_one`], async: [`edit`](Self::edit) with a batch of one.
    fn edit_one(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edit: ChildEdit,
    ) -> StoreFuture<'_, Edited<Touched>> {
        Box::pin(async move {
            let report = self
                .edit(id, expected_version, core::slice::from_ref(&edit))
                .await?;
            match report.touched.as_slice() {
                [one] => Ok(Edited {
                    id: *one,
                    version: report.version,
                }),
                _ => Err(wrong_row()),
            }
        })
    }

    /// [`TopologyStore::add_lan`], async.
    fn add_lan(
        &self,
        id: TopologyId,
        lan: NewLan,
        expected_version: Option<u64>,
    ) -> StoreFuture<'_, Edited<LanId>> {
        added(
            self.edit_one(id, expected_version, ChildEdit::AddLan(lan)),
            lan_of,
        )
    }

    /// [`TopologyStore::update_lan`], async.
    fn update_lan(
        &self,
        id: TopologyId,
        lan: LanId,
        patch: LanPatch,
        expected_version: Option<u64>,
    ) -> StoreFuture<'_, Edited<LanId>> {
        same_row(
            self.edit_one(
                id,
                expected_version,
                ChildEdit::UpdateLan(lan.into(), patch),
            ),
            lan,
        )
    }

    /// [`TopologyStore::delete_lan`], async.
    fn delete_lan(
        &self,
        id: TopologyId,
        lan: LanId,
        expected_version: Option<u64>,
    ) -> StoreFuture<'_, Edited<LanId>> {
        same_row(
            self.edit_one(id, expected_version, ChildEdit::DeleteLan(lan.into())),
            lan,
        )
    }

    /// [`TopologyStore::add_decky`], async.
    fn add_decky(
        &self,
        id: TopologyId,
        decky: NewDecky,
        expected_version: Option<u64>,
    ) -> StoreFuture<'_, Edited<DeckyId>> {
        added(
            self.edit_one(id, expected_version, ChildEdit::AddDecky(decky)),
            decky_of,
        )
    }

    /// [`TopologyStore::update_decky`], async.
    fn update_decky(
        &self,
        id: TopologyId,
        decky: DeckyId,
        patch: DeckyPatch,
        expected_version: Option<u64>,
    ) -> StoreFuture<'_, Edited<DeckyId>> {
        same_row(
            self.edit_one(
                id,
                expected_version,
                ChildEdit::UpdateDecky(decky.into(), patch),
            ),
            decky,
        )
    }

    /// [`TopologyStore::delete_decky`], async.
    fn delete_decky(
        &self,
        id: TopologyId,
        decky: DeckyId,
        expected_version: Option<u64>,
    ) -> StoreFuture<'_, Edited<DeckyId>> {
        same_row(
            self.edit_one(id, expected_version, ChildEdit::DeleteDecky(decky.into())),
            decky,
        )
    }

    /// [`TopologyStore::add_edge`], async.
    fn add_edge(
        &self,
        id: TopologyId,
        edge: NewEdge,
        expected_version: Option<u64>,
    ) -> StoreFuture<'_, Edited<EdgeId>> {
        added(
            self.edit_one(id, expected_version, ChildEdit::AddEdge(edge)),
            edge_of,
        )
    }

    /// [`TopologyStore::delete_edge`], async.
    fn delete_edge(
        &self,
        id: TopologyId,
        edge: EdgeId,
        expected_version: Option<u64>,
    ) -> StoreFuture<'_, Edited<EdgeId>> {
        same_row(
            self.edit_one(id, expected_version, ChildEdit::DeleteEdge(edge)),
            edge,
        )
    }
}

/// An add reports the new row's id, of the kind `pick` accepts, with the new version.
fn added<I: Send + 'static>(
    edited: StoreFuture<'_, Edited<Touched>>,
    pick: fn(Touched) -> Option<I>,
) -> StoreFuture<'_, Edited<I>> {
    Box::pin(async move {
        let edited = edited.await?;
        Ok(Edited {
            id: touched_as(edited.id, pick)?,
            version: edited.version,
        })
    })
}

/// An update or delete of one row reports that row's id with the new version.
fn same_row<I: Send + 'static>(
    edited: StoreFuture<'_, Edited<Touched>>,
    row: I,
) -> StoreFuture<'_, Edited<I>> {
    Box::pin(async move {
        let edited = edited.await?;
        Ok(Edited {
            id: row,
            version: edited.version,
        })
    })
}

// ---- stores that never block: inline ---------------------------------------------------

/// A [`TopologyStore`] whose every call completes without waiting on I/O or on another
/// process, so its async face may run each call inline on the calling task.
///
/// [`MemoryStore`](super::MemoryStore) is one: a call holds a topology's lock for the
/// microseconds its checks and writes take, and never across I/O, so running it on a
/// runtime worker costs what the call costs and blocks nothing else for longer. Every
/// `NonBlocking` store implements [`AsyncTopologyStore`] by calling its sync face inside the
/// future. A store that waits on a disk or a network (SQLite, PostgreSQL) must not
/// implement this trait: wrap it in [`Offload`] instead.
///
/// The one call that does wait, [`wait_for_work`](AsyncTopologyStore::wait_for_work), goes
/// through [`wait_for_work_async`](Self::wait_for_work_async): a store that can be woken
/// without blocking implements it; the default only looks.
pub trait NonBlocking: TopologyStore {
    /// The future of the async [`wait_for_work`](AsyncTopologyStore::wait_for_work): it
    /// must not block its thread. The default cannot wait without blocking, so it only
    /// looks, at once: `true` if a claim could take a mutation now, else `false` (before
    /// the timeout). [`MemoryStore`](super::MemoryStore) waits for real: its future sleeps
    /// until a mutation is enqueued, released or closed, a lease passes or the timeout
    /// does, on any executor.
    ///
    /// # Errors
    ///
    /// Those of [`TopologyStore::wait_for_work`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use topostate::store::{AsyncTopologyStore, MemoryStore, NonBlocking, Precondition};
    /// use topostate::{MutationOp, TopologyStatus as S};
    ///
    /// let store = MemoryStore::new();
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let woke = runtime.block_on(async {
    ///     let lab = store.create_topology("lab").await?;
    ///     for to in [S::Deploying, S::Active] {
    ///         store.transition_status(lab.id, to, None, Precondition::none()).await?;
    ///     }
    ///     // One thread: the enqueue below can only run while the wait is pending.
    ///     let waiting = store.wait_for_work_async(Some(lab.id), Duration::from_secs(30));
    ///     let enqueue = async {
    ///         tokio::task::yield_now().await;
    ///         store.enqueue_mutation(lab.id, MutationOp::AddLan, "{}", None).await
    ///     };
    ///     let (woke, queued) = tokio::join!(waiting, enqueue);
    ///     queued?;
    ///     woke
    /// })?;
    /// assert!(woke);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn wait_for_work_async(
        &self,
        id: Option<TopologyId>,
        timeout: Duration,
    ) -> StoreFuture<'_, bool> {
        let _ = timeout;
        // Looks only: blocking here would block the executor's thread.
        Box::pin(async move { TopologyStore::wait_for_work(self, id, Duration::ZERO) })
    }
}

impl<T: NonBlocking + ?Sized> AsyncTopologyStore for T {
    fn create_topology<'a>(&'a self, name: &'a str) -> StoreFuture<'a, TopologyRecord> {
        Box::pin(async move { TopologyStore::create_topology(self, name) })
    }

    fn get_topology(&self, id: TopologyId) -> StoreFuture<'_, TopologyRecord> {
        Box::pin(async move { TopologyStore::get_topology(self, id) })
    }

    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
        page: PageRequest<TopologyId>,
    ) -> StoreFuture<'_, Page<TopologyRecord>> {
        Box::pin(async move { TopologyStore::list_topologies(self, status, page) })
    }

    fn topology_detail(&self, id: TopologyId) -> StoreFuture<'_, TopologyDetail> {
        Box::pin(async move { TopologyStore::topology_detail(self, id) })
    }

    fn transition_status<'a>(
        &'a self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&'a str>,
        precondition: Precondition,
    ) -> StoreFuture<'a, Transitioned> {
        Box::pin(
            async move { TopologyStore::transition_status(self, id, to, reason, precondition) },
        )
    }

    fn list_status_events(
        &self,
        id: TopologyId,
        page: PageRequest<EventId>,
    ) -> StoreFuture<'_, Page<StatusEvent>> {
        Box::pin(async move { TopologyStore::list_status_events(self, id, page) })
    }

    fn edit<'a>(
        &'a self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &'a [ChildEdit],
    ) -> StoreFuture<'a, EditReport> {
        Box::pin(async move { TopologyStore::edit(self, id, expected_version, edits) })
    }

    fn set_lan_network_id<'a>(
        &'a self,
        lan: LanId,
        network_id: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { TopologyStore::set_lan_network_id(self, lan, network_id) })
    }

    fn set_decky_runtime<'a>(
        &'a self,
        decky: DeckyId,
        runtime: &'a DeckyRuntime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { TopologyStore::set_decky_runtime(self, decky, runtime) })
    }

    fn enqueue_mutation<'a>(
        &'a self,
        id: TopologyId,
        op: MutationOp,
        payload: &'a str,
        expected_version: Option<u64>,
    ) -> StoreFuture<'a, Edited<MutationId>> {
        Box::pin(
            async move { TopologyStore::enqueue_mutation(self, id, op, payload, expected_version) },
        )
    }

    fn claim_next_mutation(&self, id: TopologyId) -> StoreFuture<'_, Claim> {
        Box::pin(async move { TopologyStore::claim_next_mutation(self, id) })
    }

    fn claim_next_mutation_with<'a>(
        &'a self,
        id: TopologyId,
        options: &'a ClaimOptions,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(async move { TopologyStore::claim_next_mutation_with(self, id, options) })
    }

    fn renew_lease<'a>(&'a self, claim: &'a Lease, lease: Duration) -> StoreFuture<'a, Mutation> {
        Box::pin(async move { TopologyStore::renew_lease(self, claim, lease) })
    }

    fn release_mutation(&self, claim: Lease) -> StoreFuture<'_, Mutation> {
        Box::pin(async move { TopologyStore::release_mutation(self, claim) })
    }

    fn wait_for_work(&self, id: Option<TopologyId>, timeout: Duration) -> StoreFuture<'_, bool> {
        self.wait_for_work_async(id, timeout)
    }

    fn apply_live<'a>(
        &'a self,
        claim: &'a Lease,
        edits: &'a [ChildEdit],
    ) -> StoreFuture<'a, EditReport> {
        Box::pin(async move { TopologyStore::apply_live(self, claim, edits) })
    }

    fn mark_mutation_applied(&self, claim: Lease) -> StoreFuture<'_, Mutation> {
        Box::pin(async move { TopologyStore::mark_mutation_applied(self, claim) })
    }

    fn mark_mutation_failed<'a>(
        &'a self,
        claim: Lease,
        reason: &'a str,
    ) -> StoreFuture<'a, Mutation> {
        Box::pin(async move { TopologyStore::mark_mutation_failed(self, claim, reason) })
    }

    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
        page: PageRequest<MutationId>,
    ) -> StoreFuture<'_, Page<Mutation>> {
        Box::pin(async move { TopologyStore::list_mutations(self, id, state, page) })
    }

    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> StoreFuture<'_, ()> {
        Box::pin(async move { TopologyStore::set_needs_resync(self, id, needs_resync) })
    }

    fn delete_topology(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> StoreFuture<'_, ()> {
        Box::pin(async move { TopologyStore::delete_topology(self, id, expected_version) })
    }

    fn edit_one(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edit: ChildEdit,
    ) -> StoreFuture<'_, Edited<Touched>> {
        // The sync face's own `edit_one`, which a backend may have made cheaper.
        Box::pin(async move { TopologyStore::edit_one(self, id, expected_version, edit) })
    }
}

// ---- the typed layer -------------------------------------------------------------------

/// The typed layer ([`TypedStore`](super::TypedStore)) over every [`AsyncTopologyStore`]:
/// the same operations, the same checks (they are the same functions), awaited.
///
/// ```
/// use topostate::store::{AsyncTypedStore, ChildEdit, MemoryStore, NewLan};
///
/// # async fn deployer(store: &MemoryStore) -> Result<(), topostate::store::StoreError> {
/// let mut lab = store.create("lab").await?;
/// store
///     .edit_pending(&mut lab, &[ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24"))])
///     .await?;
/// let lab = store.advance(lab, |t| t.deploy()).await?;
/// let lab = store.advance(lab, |t| t.activate()).await?;
/// assert_eq!(lab.version(), 2);
/// # Ok(())
/// # }
/// # let store = MemoryStore::new();
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(deployer(&store)).unwrap();
/// ```
pub trait AsyncTypedStore: AsyncTopologyStore {
    /// [`TypedStore::create`](super::TypedStore::create), async.
    ///
    /// ```
    /// use topostate::TopologyStatus;
    /// use topostate::store::{AsyncTypedStore, MemoryStore, StoreError};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab").await?;
    /// assert_eq!((lab.status(), lab.version()), (TopologyStatus::Pending, 1));
    /// let taken = store.create("lab").await.unwrap_err();
    /// assert!(matches!(taken, StoreError::Duplicate { .. }));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// # })?;
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn create<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Future<Output = Result<Versioned<Topology<Pending>>, StoreError>> + Send + 'a {
        async move { restore(self.create_topology(name).await?.into_versioned()?) }
    }

    /// [`TypedStore::load`](super::TypedStore::load), async.
    ///
    /// ```
    /// use topostate::TopologyStatus;
    /// use topostate::store::{AsyncTypedStore, MemoryStore};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab").await?;
    /// let lab = store.advance(lab, |t| t.deploy()).await?;
    /// let any = store.load(lab.id()).await?;
    /// assert_eq!(any.status(), TopologyStatus::Deploying);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// # })?;
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn load(
        &self,
        id: TopologyId,
    ) -> impl Future<Output = Result<Versioned<AnyTopology>, StoreError>> + Send + '_ {
        async move { self.get_topology(id).await?.into_versioned() }
    }

    /// [`TypedStore::load_as`](super::TypedStore::load_as), async.
    ///
    /// ```
    /// use topostate::state::{Active, Pending};
    /// use topostate::store::{AsyncTypedStore, MemoryStore, StoreError};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let id = store.create("lab").await?.id();
    /// let canvas = store.load_as::<Pending>(id).await?;
    /// assert_eq!(canvas.version(), 1);
    /// let wrong = store.load_as::<Active>(id).await.unwrap_err();
    /// assert!(matches!(wrong, StoreError::StaleStatus { .. }));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// # })?;
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn load_as<S: State>(
        &self,
        id: TopologyId,
    ) -> impl Future<Output = Result<Versioned<Topology<S>>, StoreError>> + Send + '_ {
        async move { restore(self.load(id).await?) }
    }

    /// [`TypedStore::edit_pending`](super::TypedStore::edit_pending), async: on success
    /// the handle takes the new version; on error it keeps its own.
    ///
    /// ```
    /// use topostate::state::Pending;
    /// use topostate::store::{AsyncTypedStore, ChildEdit, MemoryStore, NewLan};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let mut canvas = store.create("lab").await?;
    /// let mut theirs = store.load_as::<Pending>(canvas.id()).await?;
    /// let dmz = [ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24"))];
    /// store.edit_pending(&mut canvas, &dmz).await?;
    /// assert_eq!(canvas.version(), 2);
    /// // The second editor's handle is stale: refused, and it keeps its version.
    /// let office = [ChildEdit::AddLan(NewLan::new("office", "10.0.1.0/24"))];
    /// assert!(store.edit_pending(&mut theirs, &office).await.unwrap_err().is_conflict());
    /// assert_eq!(theirs.version(), 1);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// # })?;
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn edit_pending<'a>(
        &'a self,
        topology: &'a mut Versioned<Topology<Pending>>,
        edits: &'a [ChildEdit],
    ) -> impl Future<Output = Result<EditReport, StoreError>> + Send + 'a {
        async move {
            let report = self
                .edit(topology.id(), Some(topology.version()), edits)
                .await?;
            topology.observe(report.version);
            Ok(report)
        }
    }

    /// [`TypedStore::enqueue`](super::TypedStore::enqueue), async.
    ///
    /// ```
    /// use topostate::MutationOp;
    /// use topostate::state::Active;
    /// use topostate::store::{AsyncTypedStore, MemoryStore};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab").await?;
    /// let lab = store.advance(lab, |t| t.deploy()).await?;
    /// let mut lab = store.advance(lab, |t| t.activate()).await?;
    /// let mut other_tab = store.load_as::<Active>(lab.id()).await?;
    /// store.enqueue(&mut lab, MutationOp::AddLan, r#"{"name":"lan-b"}"#).await?;
    /// assert_eq!(lab.version(), 2);
    /// let remove = r#"{"name":"lan-b"}"#;
    /// let stale = store.enqueue(&mut other_tab, MutationOp::RemoveLan, remove).await;
    /// assert!(stale.unwrap_err().is_conflict());
    /// # Ok::<(), topostate::store::StoreError>(())
    /// # })?;
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn enqueue<'a, S: QueueOpen>(
        &'a self,
        topology: &'a mut Versioned<Topology<S>>,
        op: MutationOp,
        payload: &'a str,
    ) -> impl Future<Output = Result<MutationId, StoreError>> + Send + 'a {
        async move {
            let edited = self
                .enqueue_mutation(topology.id(), op, payload, Some(topology.version()))
                .await?;
            topology.observe(edited.version);
            Ok(edited.id)
        }
    }

    /// [`TypedStore::advance`](super::TypedStore::advance), async: `step` runs before the
    /// future is made, the store records `S → T` when it is awaited.
    ///
    /// ```
    /// use topostate::TopologyStatus;
    /// use topostate::state::Pending;
    /// use topostate::store::{AsyncTypedStore, MemoryStore, StoreError};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab").await?;
    /// let twin = store.load_as::<Pending>(lab.id()).await?; // a second deployer's read
    /// let lab = store.advance(lab, |t| t.deploy()).await?;
    /// assert_eq!(lab.status(), TopologyStatus::Deploying);
    /// // The second deployer acts on a status that is gone: refused.
    /// let late = store.advance(twin, |t| t.deploy()).await.unwrap_err();
    /// assert!(matches!(late, StoreError::StaleStatus { .. }));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// # })?;
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn advance<S, T>(
        &self,
        topology: Versioned<Topology<S>>,
        step: impl FnOnce(Topology<S>) -> Topology<T>,
    ) -> impl Future<Output = Result<Versioned<Topology<T>>, StoreError>> + Send + '_
    where
        S: CanTransitionTo<T>,
        T: State,
    {
        let planned = transition_of(topology, step);
        async move {
            let (id, reason, precondition) = planned?;
            let done = self
                .transition_status(id, T::STATUS, reason.as_deref(), precondition)
                .await?;
            restore(done.topology.into_versioned()?)
        }
    }
}

impl<X: AsyncTopologyStore + ?Sized> AsyncTypedStore for X {}
