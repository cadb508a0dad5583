//! Persistence: the [`TopologyStore`] contract, its rows and errors, and the backends.
//!
//! One contract, several backends, one conformance suite:
//!
//! | backend | feature | pick it when |
//! |---|---|---|
//! | [`MemoryStore`] | `std` (default) | tests, single-process tools, embedding; nothing survives the process |
//! | `SqliteStore` | `sqlite` | one machine: several threads and processes on one file (WAL) |
//! | `PgStore` | `postgres` | many hosts / many processes on one server |
//!
//! Every guarantee holds atomically in every backend:
//!
//! - **No lost update.** A write with `expected_version: Some(v)` checks `v` against the
//!   stored version and bumps it in the same atomic step as the write; a stale `v` is
//!   [`StoreError::VersionConflict`]. `None` means no check and no bump (the original Python
//!   module's meaning). A version is a claim checked at the next write, not a lock: holding a
//!   [`Versioned`](crate::Versioned) value does not stop another editor, it only makes sure that your next
//!   write notices theirs.
//! - **No illegal or stale transition.** [`TopologyStore::transition_status`] is a
//!   compare-and-set on the status, writing status, `status_changed_at` and the event
//!   together; the event log replayed from `pending` is always a legal path ending at the
//!   stored status.
//! - **Status gates where the write happens.** Free-form child edits are `pending`-only;
//!   enqueueing is `active`/`degraded`-only; live edits need a claimed mutation on an
//!   `active`/`degraded` topology; delete is allowed from `pending`, `torn_down`, `failed`.
//! - **A serial queue.** Claims are atomic, oldest first, return the row claimed, and
//!   serial per topology ([`Claim::Busy`] is not [`Claim::Empty`]); marks move only from
//!   `applying`.
//! - **Leases and fencing.** A claim holds its mutation for a lease (see [`ClaimOptions`],
//!   [`DEFAULT_LEASE`], [`MAX_LEASE`]) read from the store's clock (the database's, for the
//!   SQL backends). A mutation left `applying` by a crashed applier is taken over by the
//!   next claim once its lease has passed, with more attempts and a new fencing token; it
//!   is never skipped. Live edits, renewals, releases and marks check the claim's token in
//!   the same atomic step as their write, so a holder whose lease was taken over writes
//!   nothing ([`StoreError::LeaseLost`]), and live edits committed under one claim are never
//!   applied again under a later one ([`StoreError::EditsCommitted`]). An operator repairs
//!   a stuck claim by releasing it ([`TopologyStore::release_mutation`]) or failing it
//!   ([`TopologyStore::mark_mutation_failed`]) with the token they read.
//! - **Wake-ups.** [`TopologyStore::wait_for_work`] blocks until a claim could take
//!   something (a mutation enqueued, released or closed, a lease passed) or a timeout.
//!
//! Across hosts (`PgStore`), versioning promises exactly what it promises in one process:
//! a version is a claim checked at the next write, not a lock. Nothing is held between
//! calls, so an editor that read version 3 on one host and writes with it after an editor
//! on another host wrote version 4 gets [`StoreError::VersionConflict`], whatever the two
//! hosts' clocks say; each write is checked and bumped inside one server transaction, and
//! the server's row lock on the topology orders writers from every host.
//!
//! The typed layer on top, [`TypedStore`], lets the type system police the same rules.
//!
//! ```
//! use topostate::store::{MemoryStore, NewLan, TopologyStore, TypedStore};
//!
//! let store = MemoryStore::new();
//! let mut lab = store.create("lab")?;
//! let lan = store.add_lan(lab.id(), NewLan::new("dmz", "10.0.0.0/24"), Some(lab.version()))?;
//! assert_eq!(lan.version, 2);
//! // Someone else's view is now stale:
//! let stale = store.add_lan(lab.id(), NewLan::new("lan-a", "10.0.1.0/24"), Some(1));
//! assert!(stale.unwrap_err().is_conflict());
//! // Re-read, deploy what we saw:
//! lab = store.load_as(lab.id())?;
//! let lab = store.advance(lab, |t| t.deploy())?;
//! let lab = store.advance(lab, |t| t.activate())?;
//! assert_eq!(store.get_topology(lab.id())?.status.as_str(), "active");
//! # Ok::<(), topostate::store::StoreError>(())
//! ```

mod aio;
mod error;
mod lease;
mod memory;
mod model;
mod page;
mod policy;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
mod sync;
mod trace;
mod typed;
mod wake;

#[cfg(feature = "tokio")]
pub use aio::Offload;
pub use aio::{AsyncTopologyStore, AsyncTypedStore, NonBlocking, StoreFuture};
pub use error::{BackendError, Entity, Foreign, RefProblem, StoreError};
pub use lease::{ClaimOptions, Clock, DEFAULT_LEASE, MAX_LEASE, ManualClock, SystemClock};
pub use memory::MemoryStore;
pub use model::{
    ChildEdit, Claim, Decky, DeckyId, DeckyPatch, DeckyRuntime, DeckyState, Edge, EdgeId,
    EditReport, Edited, EventId, Lan, LanId, LanPatch, Lease, Mutation, MutationId, NewDecky,
    NewEdge, NewLan, Precondition, RowRef, StatusEvent, Timestamp, TopologyDetail, TopologyRecord,
    Touched, Transitioned,
};
pub use page::{Listed, MAX_PAGE, Page, PageRequest};
pub use policy::{
    DELETABLE, EDITABLE, LIVE, MAX_NAME_LEN, MAX_TEXT_LEN, QueueOpen, canonical_name, check_coord,
    check_name, check_text,
};
#[cfg(feature = "postgres")]
pub use postgres::{AsyncPgStore, PgSslMode, PgStore, PgStoreBuilder, PgStoreStats, PgTls};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::schema::SQL_TABLES;
#[cfg(all(feature = "sqlite", feature = "tokio"))]
pub use sqlite::AsyncSqliteStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use typed::TypedStore;

use core::time::Duration;

use crate::{MutationOp, MutationState, TopologyId, TopologyStatus};

/// The store contract: every backend implements these operations atomically.
///
/// The backends: [`MemoryStore`], `SqliteStore` (feature `sqlite`) and `PgStore` (feature
/// `postgres`). The first two implement it through one crate-private blanket impl that opens
/// each operation's tracing span (shown in the implementors below as `impl<T> TopologyStore
/// for T`); the trait stays open to stores of your own (a test double, another database).
///
/// The methods take `&self` (backends synchronise internally), the trait is usable as
/// `dyn TopologyStore`, and it is synchronous. The named single-edit operations
/// (`add_lan`, …) are provided on top of the batch [`edit`](Self::edit).
///
/// Ordering: lists of topologies are by id; LANs and deckies by name; edges by id; the
/// status log and mutation listings newest first and claims oldest first, by their
/// store-assigned ids, never by timestamps. The lists that grow without bound (topologies,
/// the status log, the mutations) are read a [`Page`] at a time.
pub trait TopologyStore: Send + Sync {
    /// Creates a `pending` topology at version 1, with no status event.
    ///
    /// # Errors
    ///
    /// [`StoreError::Duplicate`] if the name is taken; [`StoreError::Invalid`] for an
    /// empty or over-long name.
    ///
    /// ```
    /// use topostate::TopologyStatus;
    /// use topostate::store::{MemoryStore, StoreError, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// assert_eq!((lab.status, lab.version), (TopologyStatus::Pending, 1));
    /// // Topology names are unique in the store.
    /// let taken = store.create_topology("lab").unwrap_err();
    /// assert!(matches!(taken, StoreError::Duplicate { .. }));
    /// assert_eq!(taken.to_string(), "topology 'lab' already exists");
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn create_topology(&self, name: &str) -> Result<TopologyRecord, StoreError>;

    /// Reads one topology.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Corrupt`] if the row is unreadable.
    ///
    /// ```
    /// use topostate::TopologyId;
    /// use topostate::store::{MemoryStore, StoreError, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let read = store.get_topology(lab.id)?;
    /// assert_eq!((read.name.as_str(), read.version), ("lab", 1));
    /// let missing = store.get_topology(TopologyId::new(999)).unwrap_err();
    /// assert!(matches!(missing, StoreError::NotFound { id: 999, .. }));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError>;

    /// A page of the topologies by id, optionally only those in one status (see
    /// [`Page`] for cursors and filters).
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] naming `limit` outside `1..=`[`MAX_PAGE`] (checked before
    /// the store is read); [`StoreError::Corrupt`] naming the first unreadable row the page
    /// reads (never skipped, filter or not).
    ///
    /// ```
    /// use topostate::TopologyStatus;
    /// use topostate::store::{MemoryStore, PageRequest, Precondition, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// store.create_topology("staging")?;
    /// store.create_topology("prod")?;
    /// store.transition_status(lab.id, TopologyStatus::Deploying, None, Precondition::none())?;
    ///
    /// let first = store.list_topologies(None, PageRequest::first(2))?;
    /// let names: Vec<&str> = first.items.iter().map(|t| t.name.as_str()).collect();
    /// assert_eq!(names, ["lab", "staging"]); // by id
    /// let rest = store.list_topologies(None, first.next_page(2).expect("prod follows"))?;
    /// assert_eq!((rest.items[0].name.as_str(), rest.is_last()), ("prod", true));
    /// // What a deployer polls for: only the pending ones, a full page of them.
    /// let pending = store.list_topologies(Some(TopologyStatus::Pending), PageRequest::first(2))?;
    /// let names: Vec<&str> = pending.items.iter().map(|t| t.name.as_str()).collect();
    /// assert_eq!(names, ["staging", "prod"]);
    /// // A page of no rows is refused, naming the limit.
    /// assert!(store.list_topologies(None, PageRequest::first(0)).is_err());
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
        page: PageRequest<TopologyId>,
    ) -> Result<Page<TopologyRecord>, StoreError>;

    /// Reads a topology with all its children in one consistent snapshot.
    ///
    /// # Errors
    ///
    /// As [`get_topology`](Self::get_topology).
    ///
    /// ```
    /// use topostate::store::{ChildEdit, MemoryStore, NewDecky, NewLan, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// store.edit(lab.id, Some(1), &[
    ///     ChildEdit::AddLan(NewLan::new("office", "10.0.1.0/24")),
    ///     ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24")),
    ///     ChildEdit::AddDecky(NewDecky::new("web")),
    /// ])?;
    /// // The row and its children, read together: never a LAN list from one version and a
    /// // topology row from another.
    /// let detail = store.topology_detail(lab.id)?;
    /// assert_eq!(detail.topology.version, 2);
    /// let lans: Vec<&str> = detail.lans.iter().map(|l| l.name.as_str()).collect();
    /// assert_eq!(lans, ["dmz", "office"]); // by name
    /// assert_eq!(detail.deckies[0].name, "web");
    /// assert!(detail.edges.is_empty());
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn topology_detail(&self, id: TopologyId) -> Result<TopologyDetail, StoreError>;

    /// Moves a topology to `to`, atomically checking the precondition and the table, and
    /// appending the event. The version is checked if given, never bumped.
    ///
    /// # Errors
    ///
    /// In precedence order: [`StoreError::NotFound`], [`StoreError::StaleStatus`],
    /// [`StoreError::Invalid`] (an over-long reason), [`StoreError::IllegalTransition`],
    /// [`StoreError::VersionConflict`].
    ///
    /// ```
    /// use topostate::TopologyStatus::{Deploying, Failed, Pending};
    /// use topostate::store::{MemoryStore, Precondition, StoreError, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// // A deployer picks the topology up, believing it pending at the version it read.
    /// let believed = Precondition::status(Pending).and_version(lab.version);
    /// let started = store.transition_status(lab.id, Deploying, None, believed)?;
    /// assert_eq!((started.event.from, started.event.to), (Pending, Deploying));
    /// assert_eq!(started.topology.version, 1); // checked, not bumped
    ///
    /// // A second deployer with the same belief is refused: someone else moved it.
    /// let late = store.transition_status(lab.id, Deploying, None, believed).unwrap_err();
    /// assert!(matches!(late, StoreError::StaleStatus { expected: Pending, found: Deploying }));
    /// // The table holds too: a deploy never goes back to pending.
    /// let back = store.transition_status(lab.id, Pending, None, Precondition::none());
    /// let back = back.unwrap_err();
    /// assert!(matches!(back, StoreError::IllegalTransition { from: Deploying, to: Pending }));
    ///
    /// let failed = store.transition_status(
    ///     lab.id,
    ///     Failed,
    ///     Some("compose up exited 1"),
    ///     Precondition::status(Deploying),
    /// )?;
    /// assert_eq!(failed.topology.reason.as_deref(), Some("compose up exited 1"));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn transition_status(
        &self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&str>,
        precondition: Precondition,
    ) -> Result<Transitioned, StoreError>;

    /// A page of the status log, newest first (see [`Page`] for cursors).
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] naming `limit` outside `1..=`[`MAX_PAGE`];
    /// [`StoreError::NotFound`]; [`StoreError::Corrupt`] naming an unreadable event.
    ///
    /// ```
    /// use topostate::TopologyId;
    /// use topostate::TopologyStatus::{Deploying, Failed, Pending};
    /// use topostate::store::{MemoryStore, PageRequest, Precondition, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let all = PageRequest::first(50);
    /// assert!(store.list_status_events(lab.id, all)?.items.is_empty()); // creating writes no event
    /// store.transition_status(lab.id, Deploying, None, Precondition::status(Pending))?;
    /// let why = Some("no free subnet");
    /// store.transition_status(lab.id, Failed, why, Precondition::status(Deploying))?;
    ///
    /// // Newest first, each event with the reason it was written with.
    /// let newest = store.list_status_events(lab.id, PageRequest::first(1))?;
    /// assert_eq!((newest.items[0].from, newest.items[0].to), (Deploying, Failed));
    /// assert_eq!(newest.items[0].reason.as_deref(), Some("no free subnet"));
    /// // The next page holds the older events.
    /// let older = store.list_status_events(lab.id, newest.next_page(1).expect("one more"))?;
    /// assert_eq!((older.items[0].from, older.items[0].to), (Pending, Deploying));
    /// assert!(older.is_last());
    ///
    /// assert!(store.list_status_events(TopologyId::new(999), all).is_err());
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn list_status_events(
        &self,
        id: TopologyId,
        page: PageRequest<EventId>,
    ) -> Result<Page<StatusEvent>, StoreError>;

    /// Applies free-form child edits to a `pending` topology, all or nothing.
    ///
    /// With `expected_version: Some(v)`, `v` must be the stored version and the batch bumps
    /// it by one (once per batch, not per edit) unless every edit is a no-op; with `None`
    /// nothing is checked or bumped. An edit may name a LAN or decky that an earlier edit
    /// of the same batch adds ([`RowRef::Batch`]); the report's `touched` gives the stored
    /// id each such row got.
    ///
    /// # Errors
    ///
    /// The first failing edit's error (edits see the earlier edits of the same batch; an
    /// edit's batch-local references are checked before anything else of it, a bad one
    /// being [`StoreError::BadReference`]),
    /// combined by [`StoreError`] precedence with the status gate and the version check: a
    /// stale version beats a duplicate name in the failing edit, a missing row or a
    /// non-pending topology beats a stale version. Nothing is written on error. An empty
    /// batch, like a batch of no-op updates, runs the checks and bumps nothing.
    ///
    /// ```
    /// use topostate::store::{
    ///     ChildEdit, MemoryStore, NewDecky, NewEdge, NewLan, RowRef, StoreError, TopologyStore,
    ///     Touched,
    /// };
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// // One canvas save: two LANs, a decky and its edge to the first LAN, one version
    /// // bump for the batch; the edge names the new rows by their edits' indexes.
    /// let report = store.edit(lab.id, Some(1), &[
    ///     ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24")),
    ///     ChildEdit::AddLan(NewLan::new("office", "10.0.1.0/24")),
    ///     ChildEdit::AddDecky(NewDecky::new("web")),
    ///     ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(2), RowRef::Batch(0))),
    /// ])?;
    /// assert_eq!(report.version, 2);
    /// // The touched rows come back in edit order: the ids the new rows got.
    /// let [Touched::Lan(dmz), Touched::Lan(_), Touched::Decky(web), Touched::Edge(_)] =
    ///     report.touched[..]
    /// else {
    ///     panic!("one row per edit, in order");
    /// };
    /// assert_eq!(report.decky(RowRef::Batch(2)), Some(web));
    /// let edge = &store.topology_detail(lab.id)?.edges[0];
    /// assert_eq!((edge.decky, edge.lan), (web, dmz));
    /// // A reference to a later edit is refused, naming the edit; nothing is written.
    /// let later = store.edit(lab.id, Some(2), &[
    ///     ChildEdit::AddEdge(NewEdge::new(web, RowRef::Batch(1))),
    ///     ChildEdit::AddLan(NewLan::new("lab", "10.0.2.0/24")),
    /// ]).unwrap_err();
    /// assert!(matches!(later, StoreError::BadReference { edit: 0, target: 1, .. }));
    /// store.edit(lab.id, Some(2), &[ChildEdit::AddDecky(NewDecky::new("db"))])?;
    ///
    /// // All or nothing: the second edit's taken name refuses the whole batch.
    /// let taken = store.edit(lab.id, Some(3), &[
    ///     ChildEdit::AddDecky(NewDecky::new("mail")),
    ///     ChildEdit::AddLan(NewLan::new("dmz", "10.0.2.0/24")),
    /// ]).unwrap_err();
    /// assert!(matches!(taken, StoreError::Duplicate { .. }));
    /// assert_eq!(store.topology_detail(lab.id)?.deckies.len(), 2); // web and db, no "mail"
    ///
    /// // A canvas still at version 2 is refused: it has not seen "db".
    /// let stale = store.edit(lab.id, Some(2), &[ChildEdit::AddDecky(NewDecky::new("mail"))]);
    /// assert!(stale.unwrap_err().is_conflict());
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn edit(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError>;

    /// Writes a LAN's container network id (a runtime field: no status gate, no bump).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`].
    ///
    /// ```
    /// use topostate::TopologyStatus::{Deploying, Pending};
    /// use topostate::store::{LanId, MemoryStore, NewLan, Precondition, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let dmz = store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))?.id;
    /// store.transition_status(lab.id, Deploying, None, Precondition::status(Pending))?;
    ///
    /// // The deployer records the network it created; no status gate, no version bump.
    /// store.set_lan_network_id(dmz, Some("br-3f2a91c0"))?;
    /// let detail = store.topology_detail(lab.id)?;
    /// assert_eq!(detail.lans[0].network_id.as_deref(), Some("br-3f2a91c0"));
    /// assert_eq!(detail.topology.version, 2);
    /// store.set_lan_network_id(dmz, None)?; // after teardown
    /// assert!(store.set_lan_network_id(LanId::new(999), None).is_err());
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn set_lan_network_id(&self, lan: LanId, network_id: Option<&str>) -> Result<(), StoreError>;

    /// Writes a decky's runtime fields (no status gate, no bump).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`].
    ///
    /// ```
    /// use topostate::store::{
    ///     DeckyId, DeckyRuntime, DeckyState, MemoryStore, NewDecky, TopologyStore,
    /// };
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let web = store.add_decky(lab.id, NewDecky::new("web"), Some(1))?.id;
    ///
    /// // The deployer reports the container up, with its address; unset fields stay as they are.
    /// let up = DeckyRuntime::new().with_state(DeckyState::Running).with_ip("10.0.0.5");
    /// store.set_decky_runtime(web, &up)?;
    ///
    /// let decky = &store.topology_detail(lab.id)?.deckies[0];
    /// assert_eq!((decky.state, decky.ip.as_deref()), (DeckyState::Running, Some("10.0.0.5")));
    /// assert_eq!(store.get_topology(lab.id)?.version, 2); // not bumped
    /// assert!(store.set_decky_runtime(DeckyId::new(999), &up).is_err());
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn set_decky_runtime(&self, decky: DeckyId, runtime: &DeckyRuntime) -> Result<(), StoreError>;

    /// Queues a live edit on an `active` or `degraded` topology; a matching expected
    /// version is bumped even if the mutation later fails to apply.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::NotEditable`] outside `active`/`degraded`,
    /// [`StoreError::VersionConflict`].
    ///
    /// ```
    /// use topostate::store::{MemoryStore, PageRequest, StoreError, TopologyStore, TypedStore};
    /// use topostate::{MutationOp, MutationState};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?;
    /// let id = lab.id();
    /// // A pending topology takes free-form edits, not queued ones.
    /// let early = store.enqueue_mutation(id, MutationOp::AddLan, r#"{"name":"lan-b"}"#, None);
    /// assert!(matches!(early.unwrap_err(), StoreError::NotEditable(_)));
    ///
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let lab = store.advance(lab, |t| t.activate())?;
    /// let payload = r#"{"name":"lan-b"}"#;
    /// let queued = store.enqueue_mutation(id, MutationOp::AddLan, payload, Some(lab.version()))?;
    /// assert_eq!(queued.version, 2);
    /// // Another editor's view (version 1) is stale now.
    /// let stale = store.enqueue_mutation(id, MutationOp::RemoveLan, r#"{"name":"dmz"}"#, Some(1));
    /// assert!(stale.unwrap_err().is_conflict());
    /// let pending = store.list_mutations(id, Some(MutationState::Pending), PageRequest::first(50))?;
    /// assert_eq!(pending.items.len(), 1);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn enqueue_mutation(
        &self,
        id: TopologyId,
        op: MutationOp,
        payload: &str,
        expected_version: Option<u64>,
    ) -> Result<Edited<MutationId>, StoreError>;

    /// Claims the oldest pending mutation of a live topology for the [`DEFAULT_LEASE`]
    /// (see [`claim_next_mutation_with`](Self::claim_next_mutation_with)).
    ///
    /// # Errors
    ///
    /// As [`claim_next_mutation_with`](Self::claim_next_mutation_with).
    ///
    /// ```
    /// use topostate::MutationOp;
    /// use topostate::store::{Claim, MemoryStore, TopologyStore, TypedStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let mut lab = store.advance(lab, |t| t.activate())?;
    /// let first = store.enqueue(&mut lab, MutationOp::AddLan, r#"{"name":"lan-b"}"#)?;
    /// store.enqueue(&mut lab, MutationOp::AddDecky, r#"{"name":"ssh-2"}"#)?;
    ///
    /// // The oldest pending mutation is claimed, and the claim says which row it moved.
    /// let Claim::Claimed { mutation, lease } = store.claim_next_mutation(lab.id())? else {
    ///     panic!("two mutations are pending");
    /// };
    /// assert_eq!((mutation.id, lease.id()), (first, first));
    /// // Serial per topology: a second applier is told one is applying, not that none is pending.
    /// assert_eq!(store.claim_next_mutation(lab.id())?, Claim::Busy { applying: first });
    ///
    /// store.mark_mutation_applied(lease)?;
    /// let Claim::Claimed { lease, .. } = store.claim_next_mutation(lab.id())? else {
    ///     panic!("one mutation is pending");
    /// };
    /// store.mark_mutation_applied(lease)?;
    /// assert_eq!(store.claim_next_mutation(lab.id())?, Claim::Empty);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn claim_next_mutation(&self, id: TopologyId) -> Result<Claim, StoreError> {
        self.claim_next_mutation_with(id, &ClaimOptions::default())
    }

    /// Claims the next mutation of a live topology for the lease in `options`: the one
    /// `applying` if its lease has passed (a takeover: its attempts and token grow), else
    /// the oldest pending one; [`Claim::Busy`] while a lease runs, [`Claim::Empty`] if
    /// none is pending. The claim carries the mutation's new fencing token.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::NotEditable`] if the topology is not
    /// `active` or `degraded`; [`StoreError::Invalid`] for a lease of zero, over
    /// [`MAX_LEASE`] or ending past the last representable timestamp, or a bad holder name.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use topostate::MutationOp;
    /// use topostate::store::{
    ///     Claim, ClaimOptions, ManualClock, MemoryStore, StoreError, Timestamp, TopologyStore,
    ///     TypedStore,
    /// };
    ///
    /// let clock = Arc::new(ManualClock::new(Timestamp::from_micros(1_700_000_000_000_000)));
    /// let store = MemoryStore::with_clock(clock.clone());
    /// let lab = store.create("lab")?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let mut lab = store.advance(lab, |t| t.activate())?;
    /// let queued = store.enqueue(&mut lab, MutationOp::AddLan, r#"{"name":"lan-b"}"#)?;
    ///
    /// let ten_s = ClaimOptions::new().lease(Duration::from_secs(10)).holder("applier-a");
    /// let Claim::Claimed { lease: first, .. } = store.claim_next_mutation_with(lab.id(), &ten_s)? else {
    ///     panic!("one mutation is pending");
    /// };
    /// // The applier crashes. While its lease runs, the mutation is held...
    /// assert_eq!(store.claim_next_mutation(lab.id())?, Claim::Busy { applying: queued });
    /// // ...and once it has passed, the next claim takes the same mutation over.
    /// clock.advance(Duration::from_secs(10));
    /// let Claim::Claimed { mutation, lease } = store.claim_next_mutation(lab.id())? else {
    ///     panic!("the lease has passed");
    /// };
    /// assert_eq!((mutation.id, mutation.attempts), (queued, 2));
    /// assert!(lease.token() > first.token());
    /// // The first applier, back from the dead, writes nothing.
    /// let zombie = store.mark_mutation_applied(first).unwrap_err();
    /// assert!(matches!(zombie, StoreError::LeaseLost { .. }));
    /// store.mark_mutation_applied(lease)?;
    ///
    /// let zero = ClaimOptions::new().lease(Duration::ZERO);
    /// assert!(matches!(
    ///     store.claim_next_mutation_with(lab.id(), &zero),
    ///     Err(StoreError::Invalid { field: "lease", .. })
    /// ));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn claim_next_mutation_with(
        &self,
        id: TopologyId,
        options: &ClaimOptions,
    ) -> Result<Claim, StoreError>;

    /// Renews a claim's lease: it now runs `lease` from the store's clock (which may also
    /// shorten it). A holder whose lease passed but that nobody took over may still renew.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::LeaseLost`] if another claim holds the
    /// mutation now; [`StoreError::WrongMutationState`] unless it is `applying`;
    /// [`StoreError::Invalid`] for a lease as [`claim_next_mutation_with`] refuses.
    ///
    /// [`claim_next_mutation_with`]: Self::claim_next_mutation_with
    ///
    /// ```
    /// use std::time::Duration;
    /// use topostate::MutationOp;
    /// use topostate::store::{Claim, MemoryStore, TopologyStore, TypedStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let mut lab = store.advance(lab, |t| t.activate())?;
    /// store.enqueue(&mut lab, MutationOp::AddLan, r#"{"name":"lan-b"}"#)?;
    /// let Claim::Claimed { mutation, lease } = store.claim_next_mutation(lab.id())? else {
    ///     panic!("one mutation is pending");
    /// };
    /// let renewed = store.renew_lease(&lease, Duration::from_secs(600))?;
    /// assert!(renewed.lease_until > mutation.lease_until);
    /// assert_eq!(renewed.token, lease.token()); // a renewal is no takeover
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn renew_lease(&self, claim: &Lease, lease: Duration) -> Result<Mutation, StoreError>;

    /// Releases a claim: the mutation goes back to `pending`, first in line, for the next
    /// claim (with a new token). For an applier that gives up without failing the
    /// mutation, and for an operator repairing a stuck claim with the token they read.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::LeaseLost`] if another claim holds the
    /// mutation now; [`StoreError::WrongMutationState`] unless it is `applying`.
    ///
    /// ```
    /// use topostate::MutationOp;
    /// use topostate::store::{Claim, MemoryStore, TopologyStore, TypedStore};
    /// use topostate::MutationState;
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let mut lab = store.advance(lab, |t| t.activate())?;
    /// let queued = store.enqueue(&mut lab, MutationOp::AddLan, r#"{"name":"lan-b"}"#)?;
    /// let Claim::Claimed { lease, .. } = store.claim_next_mutation(lab.id())? else {
    ///     panic!("one mutation is pending");
    /// };
    /// assert_eq!(store.release_mutation(lease)?.state, MutationState::Pending);
    /// let Claim::Claimed { mutation, .. } = store.claim_next_mutation(lab.id())? else {
    ///     panic!("released, so claimable again");
    /// };
    /// assert_eq!((mutation.id, mutation.attempts), (queued, 2));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn release_mutation(&self, claim: Lease) -> Result<Mutation, StoreError>;

    /// Waits until a claim of topology `id` (or of any topology, for `None`) could take a
    /// mutation, for at most `timeout`: `true` as soon as one could (at once if one can
    /// now; else when a mutation is enqueued, released or closed, or a lease passes),
    /// `false` when the timeout passed first. Another applier may still win the claim.
    ///
    /// How a backend learns of new work: `MemoryStore` and `SqliteStore` handles of one
    /// process are woken at once; PostgreSQL's server notifies every waiting process
    /// (`LISTEN`/`NOTIFY`); other processes on one SQLite file are seen by a poll every
    /// 50 ms. An expiring lease is seen when it passes by the store's clock.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] for a topology that does not exist; backend errors.
    ///
    /// ```
    /// use std::time::Duration;
    /// use topostate::MutationOp;
    /// use topostate::store::{MemoryStore, TopologyStore, TypedStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let mut lab = store.advance(lab, |t| t.activate())?;
    /// assert!(!store.wait_for_work(Some(lab.id()), Duration::from_millis(1))?);
    /// let producer = store.clone();
    /// let id = lab.id();
    /// let enqueued = std::thread::spawn(move || {
    ///     producer.enqueue_mutation(id, MutationOp::AddLan, r#"{"name":"lan-b"}"#, None)
    /// });
    /// assert!(store.wait_for_work(None, Duration::from_secs(60))?);
    /// # enqueued.join().unwrap()?;
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn wait_for_work(&self, id: Option<TopologyId>, timeout: Duration) -> Result<bool, StoreError>;

    /// Applies live edits for a claimed mutation, all or nothing, without a version bump.
    ///
    /// # Errors
    ///
    /// [`StoreError::LeaseLost`] if another claim holds the mutation now;
    /// [`StoreError::WrongMutationState`] if the mutation is no longer `applying`;
    /// [`StoreError::EditsCommitted`] if live edits were committed for it under an earlier
    /// claim; [`StoreError::NotEditable`] if the topology left `active`/`degraded`;
    /// otherwise as [`edit`](Self::edit).
    ///
    /// ```
    /// use topostate::store::{
    ///     ChildEdit, Claim, MemoryStore, Lease, NewLan, StoreError, TopologyStore,
    ///     TypedStore,
    /// };
    /// use topostate::MutationOp;
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let mut lab = store.advance(lab, |t| t.activate())?;
    /// store.enqueue(&mut lab, MutationOp::AddLan, r#"{"name":"lan-b","subnet":"10.0.2.0/24"}"#)?;
    ///
    /// let Claim::Claimed { mutation, lease } = store.claim_next_mutation(lab.id())? else {
    ///     panic!("one mutation is pending");
    /// };
    /// // The applier turns the payload into edits; the claim lets them onto a live topology.
    /// let lan_b = [ChildEdit::AddLan(NewLan::new("lan-b", "10.0.2.0/24"))];
    /// let report = store.apply_live(&lease, &lan_b)?;
    /// assert_eq!(report.version, lab.version()); // live edits bump nothing
    /// store.mark_mutation_applied(lease)?;
    ///
    /// // A claim is checked at every use: one for a mutation no longer applying buys nothing.
    /// let old = Lease::from_parts(mutation.id, lab.id(), mutation.token);
    /// let edit = [ChildEdit::AddLan(NewLan::new("lan-c", "10.0.3.0/24"))];
    /// let refused = store.apply_live(&old, &edit).unwrap_err();
    /// assert!(matches!(refused, StoreError::WrongMutationState { .. }));
    /// assert_eq!(store.topology_detail(lab.id())?.lans.len(), 1);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn apply_live(&self, claim: &Lease, edits: &[ChildEdit]) -> Result<EditReport, StoreError>;

    /// Marks a claimed mutation `applied`, whatever the topology's status now (an applier
    /// interrupted by a teardown can still close its claim).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] if the mutation does not exist in the claim's topology;
    /// [`StoreError::LeaseLost`] if another claim holds (or held) the mutation since;
    /// [`StoreError::WrongMutationState`] unless it is `applying`.
    ///
    /// ```
    /// use topostate::store::{
    ///     Claim, MemoryStore, Lease, StoreError, TopologyStore, TypedStore,
    /// };
    /// use topostate::{MutationOp, MutationState};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let mut lab = store.advance(lab, |t| t.activate())?;
    /// let attach = r#"{"decky":"web","lan":"dmz"}"#;
    /// let queued = store.enqueue(&mut lab, MutationOp::AttachDecky, attach)?;
    ///
    /// // Marking a mutation nobody claimed is refused: marks move only from `applying`.
    /// let unclaimed = Lease::from_parts(queued, lab.id(), 0);
    /// let refused = store.mark_mutation_applied(unclaimed).unwrap_err();
    /// assert!(matches!(refused, StoreError::WrongMutationState { found: MutationState::Pending, .. }));
    ///
    /// let Claim::Claimed { lease, .. } = store.claim_next_mutation(lab.id())? else {
    ///     panic!("one mutation is pending");
    /// };
    /// let done = store.mark_mutation_applied(lease)?; // the lease is consumed
    /// assert_eq!(done.state, MutationState::Applied);
    /// assert!(done.applied_at.is_some());
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn mark_mutation_applied(&self, claim: Lease) -> Result<Mutation, StoreError>;

    /// Marks a claimed mutation `failed` with a reason, whatever the topology's status now.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] if the mutation does not exist in the claim's topology;
    /// [`StoreError::LeaseLost`] if another claim holds (or held) the mutation since;
    /// [`StoreError::WrongMutationState`] unless it is `applying`.
    ///
    /// ```
    /// use topostate::store::{Claim, MemoryStore, TopologyStore, TypedStore};
    /// use topostate::{MutationOp, MutationState};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let mut lab = store.advance(lab, |t| t.activate())?;
    /// store.enqueue(&mut lab, MutationOp::RemoveLan, r#"{"name":"dmz"}"#)?;
    ///
    /// let Claim::Claimed { lease, .. } = store.claim_next_mutation(lab.id())? else {
    ///     panic!("one mutation is pending");
    /// };
    /// // The payload names a LAN the topology does not have: the applier gives up on it.
    /// let failed = store.mark_mutation_failed(lease, "no lan named 'dmz'")?;
    /// assert_eq!(failed.state, MutationState::Failed);
    /// assert_eq!(failed.reason.as_deref(), Some("no lan named 'dmz'"));
    /// // The queue moves on: nothing is applying any more.
    /// assert_eq!(store.claim_next_mutation(lab.id())?, Claim::Empty);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn mark_mutation_failed(&self, claim: Lease, reason: &str) -> Result<Mutation, StoreError>;

    /// A page of a topology's mutations, newest first, optionally only one state (see
    /// [`Page`] for cursors and filters).
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] naming `limit` outside `1..=`[`MAX_PAGE`];
    /// [`StoreError::NotFound`]; [`StoreError::Corrupt`] naming an unreadable row the page
    /// reads (never skipped, filter or not).
    ///
    /// ```
    /// use topostate::store::{Claim, MemoryStore, PageRequest, TopologyStore, TypedStore};
    /// use topostate::{MutationOp, MutationState};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let mut lab = store.advance(lab, |t| t.activate())?;
    /// let first = store.enqueue(&mut lab, MutationOp::AddLan, r#"{"name":"lan-b"}"#)?;
    /// let second = store.enqueue(&mut lab, MutationOp::AddDecky, r#"{"name":"ssh-2"}"#)?;
    /// let Claim::Claimed { lease, .. } = store.claim_next_mutation(lab.id())? else {
    ///     panic!("two mutations are pending");
    /// };
    /// store.mark_mutation_applied(lease)?;
    ///
    /// let all = store.list_mutations(lab.id(), None, PageRequest::first(50))?;
    /// let ids: Vec<_> = all.items.iter().map(|m| m.id).collect();
    /// assert_eq!(ids, [second, first]); // newest first
    /// // The page after `second` holds what is older than it.
    /// let older = store.list_mutations(lab.id(), None, PageRequest::after(second, 50))?;
    /// assert_eq!(older.items[0].id, first);
    /// let waiting = store.list_mutations(lab.id(), Some(MutationState::Pending), PageRequest::first(50))?;
    /// assert_eq!((waiting.items.len(), waiting.items[0].op), (1, MutationOp::AddDecky));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
        page: PageRequest<MutationId>,
    ) -> Result<Page<Mutation>, StoreError>;

    /// Sets or clears the resync flag (independent of status and version).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`].
    ///
    /// ```
    /// use topostate::TopologyId;
    /// use topostate::store::{MemoryStore, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// // A reconciler saw the containers drift from the stored topology.
    /// store.set_needs_resync(lab.id, true)?;
    /// let read = store.get_topology(lab.id)?;
    /// assert!(read.needs_resync);
    /// assert_eq!((read.status, read.version), (lab.status, lab.version)); // neither touched
    /// store.set_needs_resync(lab.id, false)?;
    /// assert!(store.set_needs_resync(TopologyId::new(999), true).is_err());
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError>;

    /// Deletes a topology and every child row, from `pending`, `torn_down` or `failed`.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::NotEditable`] in any other status,
    /// [`StoreError::VersionConflict`] if an expected version is given and stale (it is only
    /// checked: a deleted row has no version to bump, so this never overflows).
    ///
    /// ```
    /// use topostate::store::{MemoryStore, StoreError, TopologyStore, TypedStore};
    ///
    /// let store = MemoryStore::new();
    /// let draft = store.create_topology("draft")?;
    /// // A pending draft can go, if nobody edited it since it was read.
    /// store.delete_topology(draft.id, Some(draft.version))?;
    /// assert!(store.get_topology(draft.id).is_err());
    ///
    /// let lab = store.create("lab")?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let lab = store.advance(lab, |t| t.activate())?;
    /// // A running topology is torn down first: deleting it now is refused.
    /// let refused = store.delete_topology(lab.id(), None).unwrap_err();
    /// assert!(matches!(refused, StoreError::NotEditable(_)));
    /// let lab = store.advance(lab, |t| t.tear_down())?;
    /// let lab = store.advance(lab, |t| t.finish_teardown())?;
    /// store.delete_topology(lab.id(), Some(lab.version()))?;
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn delete_topology(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError>;

    /// Applies one edit: [`edit`](Self::edit) with a batch of one, reporting the row it
    /// touched. The single-edit methods below all go through it, so a backend that can
    /// apply one edit more cheaply than a batch overrides this one method.
    ///
    /// # Errors
    ///
    /// As [`edit`](Self::edit).
    ///
    /// ```
    /// use topostate::TopologyStatus;
    /// use topostate::store::{
    ///     ChildEdit, MemoryStore, NewLan, Precondition, StoreError, TopologyStore, Touched,
    /// };
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let dmz = ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24"));
    /// let added = store.edit_one(lab.id, Some(1), dmz)?;
    /// assert!(matches!(added.id, Touched::Lan(_)));
    /// assert_eq!(added.version, 2);
    ///
    /// // Once deploying, free-form edits are refused: changes go through the mutation queue.
    /// store.transition_status(lab.id, TopologyStatus::Deploying, None, Precondition::none())?;
    /// let office = ChildEdit::AddLan(NewLan::new("office", "10.0.1.0/24"));
    /// let late = store.edit_one(lab.id, Some(2), office).unwrap_err();
    /// let StoreError::NotEditable(refused) = late else {
    ///     panic!("deploying is not editable");
    /// };
    /// assert_eq!(refused.status, TopologyStatus::Deploying);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn edit_one(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edit: ChildEdit,
    ) -> Result<Edited<Touched>, StoreError> {
        let report = self.edit(id, expected_version, core::slice::from_ref(&edit))?;
        match report.touched.as_slice() {
            [one] => Ok(Edited {
                id: *one,
                version: report.version,
            }),
            _ => Err(wrong_row()),
        }
    }

    /// Adds a LAN to a `pending` topology.
    ///
    /// # Errors
    ///
    /// As [`edit`](Self::edit).
    ///
    /// ```
    /// use topostate::store::{MemoryStore, NewLan, StoreError, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let dmz = NewLan::new("dmz", "10.0.0.0/24").with_dmz(true).with_position(120.0, 40.0);
    /// let added = store.add_lan(lab.id, dmz, Some(1))?;
    /// assert_eq!(added.version, 2);
    ///
    /// // An editor that still holds version 1 is refused instead of overwriting blind.
    /// let office = NewLan::new("office", "10.0.1.0/24");
    /// let stale = store.add_lan(lab.id, office, Some(1)).unwrap_err();
    /// let StoreError::VersionConflict(conflict) = stale else { panic!("version 1 is stale") };
    /// assert_eq!((conflict.expected, conflict.current), (1, 2));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn add_lan(
        &self,
        id: TopologyId,
        lan: NewLan,
        expected_version: Option<u64>,
    ) -> Result<Edited<LanId>, StoreError> {
        let edited = self.edit_one(id, expected_version, ChildEdit::AddLan(lan))?;
        Ok(Edited {
            id: touched_as(edited.id, lan_of)?,
            version: edited.version,
        })
    }

    /// Changes a LAN of a `pending` topology; an empty patch runs every guard and bumps
    /// nothing.
    ///
    /// # Errors
    ///
    /// As [`edit`](Self::edit).
    ///
    /// ```
    /// use topostate::store::{LanPatch, MemoryStore, NewLan, StoreError, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let dmz = store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))?.id;
    /// store.add_lan(lab.id, NewLan::new("office", "10.0.1.0/24"), Some(2))?;
    ///
    /// // Dragged on the canvas: only the position changes.
    /// let moved = LanPatch::new().with_x(Some(300.0));
    /// assert_eq!(store.update_lan(lab.id, dmz, moved, Some(3))?.version, 4);
    /// // An empty patch checks everything and bumps nothing.
    /// assert_eq!(store.update_lan(lab.id, dmz, LanPatch::new(), Some(4))?.version, 4);
    ///
    /// let renamed = LanPatch::new().with_name("office");
    /// let taken = store.update_lan(lab.id, dmz, renamed, Some(4)).unwrap_err();
    /// assert!(matches!(taken, StoreError::Duplicate { .. }));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn update_lan(
        &self,
        id: TopologyId,
        lan: LanId,
        patch: LanPatch,
        expected_version: Option<u64>,
    ) -> Result<Edited<LanId>, StoreError> {
        let edited = self.edit_one(
            id,
            expected_version,
            ChildEdit::UpdateLan(lan.into(), patch),
        )?;
        Ok(Edited {
            id: lan,
            version: edited.version,
        })
    }

    /// Deletes a LAN (and its edges) of a `pending` topology.
    ///
    /// # Errors
    ///
    /// As [`edit`](Self::edit); [`StoreError::LanInUse`] if it is some decky's only LAN
    /// (naming the decky whose edge to the LAN is oldest, when several would be stranded).
    ///
    /// ```
    /// use topostate::store::{MemoryStore, NewDecky, NewEdge, NewLan, StoreError, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let dmz = store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))?.id;
    /// let spare = store.add_lan(lab.id, NewLan::new("spare", "10.0.9.0/24"), Some(2))?.id;
    /// let web = store.add_decky(lab.id, NewDecky::new("web"), Some(3))?.id;
    /// store.add_edge(lab.id, NewEdge::new(web, dmz), Some(4))?;
    ///
    /// // `web` would be left with no LAN: refused, naming it.
    /// let in_use = store.delete_lan(lab.id, dmz, Some(5)).unwrap_err();
    /// assert!(matches!(in_use, StoreError::LanInUse { decky, .. } if decky == web));
    /// assert_eq!(store.delete_lan(lab.id, spare, Some(5))?.version, 6);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn delete_lan(
        &self,
        id: TopologyId,
        lan: LanId,
        expected_version: Option<u64>,
    ) -> Result<Edited<LanId>, StoreError> {
        let edited = self.edit_one(id, expected_version, ChildEdit::DeleteLan(lan.into()))?;
        Ok(Edited {
            id: lan,
            version: edited.version,
        })
    }

    /// Adds a decky to a `pending` topology.
    ///
    /// # Errors
    ///
    /// As [`edit`](Self::edit).
    ///
    /// ```
    /// use topostate::store::{MemoryStore, NewDecky, StoreError, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let web = NewDecky::new("web").with_services(["http", "ssh"]);
    /// let added = store.add_decky(lab.id, web, Some(1))?;
    /// assert_eq!(added.version, 2);
    /// assert_eq!(store.topology_detail(lab.id)?.deckies[0].services, ["http", "ssh"]);
    ///
    /// // Decky names are unique within a topology.
    /// let taken = store.add_decky(lab.id, NewDecky::new("web"), Some(2)).unwrap_err();
    /// assert_eq!(taken.to_string(), "decky 'web' already exists");
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn add_decky(
        &self,
        id: TopologyId,
        decky: NewDecky,
        expected_version: Option<u64>,
    ) -> Result<Edited<DeckyId>, StoreError> {
        let edited = self.edit_one(id, expected_version, ChildEdit::AddDecky(decky))?;
        Ok(Edited {
            id: touched_as(edited.id, decky_of)?,
            version: edited.version,
        })
    }

    /// Changes a decky of a `pending` topology; an empty patch runs every guard and bumps
    /// nothing.
    ///
    /// # Errors
    ///
    /// As [`edit`](Self::edit).
    ///
    /// ```
    /// use topostate::store::{DeckyPatch, MemoryStore, NewDecky, StoreError, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let web = store.add_decky(lab.id, NewDecky::new("web"), Some(1))?.id;
    ///
    /// let patch = DeckyPatch::new()
    ///     .with_services(["http", "https"])
    ///     .with_config(r#"{"banner":"nginx/1.18"}"#);
    /// assert_eq!(store.update_decky(lab.id, web, patch, Some(2))?.version, 3);
    ///
    /// // A coordinate must be finite; nothing is written.
    /// let lost = DeckyPatch::new().with_x(Some(f64::NAN));
    /// let refused = store.update_decky(lab.id, web, lost, Some(3)).unwrap_err();
    /// assert!(matches!(refused, StoreError::Invalid { .. }));
    /// assert_eq!(store.get_topology(lab.id)?.version, 3);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn update_decky(
        &self,
        id: TopologyId,
        decky: DeckyId,
        patch: DeckyPatch,
        expected_version: Option<u64>,
    ) -> Result<Edited<DeckyId>, StoreError> {
        let edited = self.edit_one(
            id,
            expected_version,
            ChildEdit::UpdateDecky(decky.into(), patch),
        )?;
        Ok(Edited {
            id: decky,
            version: edited.version,
        })
    }

    /// Deletes a decky (and its edges) of a `pending` topology.
    ///
    /// # Errors
    ///
    /// As [`edit`](Self::edit).
    ///
    /// ```
    /// use topostate::store::{MemoryStore, NewDecky, NewEdge, NewLan, StoreError, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let dmz = store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))?.id;
    /// let web = store.add_decky(lab.id, NewDecky::new("web"), Some(2))?.id;
    /// store.add_edge(lab.id, NewEdge::new(web, dmz), Some(3))?;
    ///
    /// store.delete_decky(lab.id, web, Some(4))?;
    /// assert!(store.topology_detail(lab.id)?.edges.is_empty()); // its edges went with it
    /// // Deleting it again finds nothing.
    /// let gone = store.delete_decky(lab.id, web, Some(5)).unwrap_err();
    /// assert!(matches!(gone, StoreError::NotFound { .. }));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn delete_decky(
        &self,
        id: TopologyId,
        decky: DeckyId,
        expected_version: Option<u64>,
    ) -> Result<Edited<DeckyId>, StoreError> {
        let edited = self.edit_one(id, expected_version, ChildEdit::DeleteDecky(decky.into()))?;
        Ok(Edited {
            id: decky,
            version: edited.version,
        })
    }

    /// Adds a decky ↔ LAN membership to a `pending` topology.
    ///
    /// # Errors
    ///
    /// As [`edit`](Self::edit); [`StoreError::ForeignEnd`] if an end is in another
    /// topology; [`StoreError::Duplicate`] if the pair exists.
    ///
    /// ```
    /// use topostate::store::{MemoryStore, NewDecky, NewEdge, NewLan, StoreError, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let dmz = store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))?.id;
    /// let office = store.add_lan(lab.id, NewLan::new("office", "10.0.1.0/24"), Some(2))?.id;
    /// let gw = store.add_decky(lab.id, NewDecky::new("gw"), Some(3))?.id;
    /// store.add_edge(lab.id, NewEdge::new(gw, dmz), Some(4))?;
    /// // The gateway bridges the DMZ to the office LAN.
    /// let bridge = NewEdge::new(gw, office).with_bridge(true);
    /// assert_eq!(store.add_edge(lab.id, bridge, Some(5))?.version, 6);
    ///
    /// let twice = store.add_edge(lab.id, NewEdge::new(gw, dmz), Some(6)).unwrap_err();
    /// assert!(matches!(twice, StoreError::Duplicate { .. }));
    /// // An end in another topology is refused, naming it.
    /// let other = store.create_topology("other")?;
    /// let foreign = store.add_edge(other.id, NewEdge::new(gw, dmz), Some(1)).unwrap_err();
    /// assert!(matches!(foreign, StoreError::ForeignEnd { .. }));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn add_edge(
        &self,
        id: TopologyId,
        edge: NewEdge,
        expected_version: Option<u64>,
    ) -> Result<Edited<EdgeId>, StoreError> {
        let edited = self.edit_one(id, expected_version, ChildEdit::AddEdge(edge))?;
        Ok(Edited {
            id: touched_as(edited.id, edge_of)?,
            version: edited.version,
        })
    }

    /// Deletes a membership of a `pending` topology.
    ///
    /// # Errors
    ///
    /// As [`edit`](Self::edit).
    ///
    /// ```
    /// use topostate::store::{MemoryStore, NewDecky, NewEdge, NewLan, StoreError, TopologyStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create_topology("lab")?;
    /// let dmz = store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))?.id;
    /// let web = store.add_decky(lab.id, NewDecky::new("web"), Some(2))?.id;
    /// let edge = store.add_edge(lab.id, NewEdge::new(web, dmz), Some(3))?.id;
    ///
    /// assert_eq!(store.delete_edge(lab.id, edge, Some(4))?.version, 5);
    /// assert!(store.topology_detail(lab.id)?.edges.is_empty());
    /// // A second editor deleting it from a stale canvas learns first that it is gone (a
    /// // missing row is reported before a stale version).
    /// let stale = store.delete_edge(lab.id, edge, Some(4)).unwrap_err();
    /// assert!(matches!(stale, StoreError::NotFound { .. }));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn delete_edge(
        &self,
        id: TopologyId,
        edge: EdgeId,
        expected_version: Option<u64>,
    ) -> Result<Edited<EdgeId>, StoreError> {
        let edited = self.edit_one(id, expected_version, ChildEdit::DeleteEdge(edge))?;
        Ok(Edited {
            id: edge,
            version: edited.version,
        })
    }
}

/// The id of the row a single edit touched, if it is of the kind `pick` accepts.
fn touched_as<I>(touched: Touched, pick: impl Fn(Touched) -> Option<I>) -> Result<I, StoreError> {
    pick(touched).ok_or_else(wrong_row)
}

/// The LAN a single edit touched, if it was a LAN.
fn lan_of(touched: Touched) -> Option<LanId> {
    match touched {
        Touched::Lan(id) => Some(id),
        _ => None,
    }
}

/// The decky a single edit touched, if it was a decky.
fn decky_of(touched: Touched) -> Option<DeckyId> {
    match touched {
        Touched::Decky(id) => Some(id),
        _ => None,
    }
}

/// The edge a single edit touched, if it was an edge.
fn edge_of(touched: Touched) -> Option<EdgeId> {
    match touched {
        Touched::Edge(id) => Some(id),
        _ => None,
    }
}

/// A backend reported a row that does not match the single edit it was given.
fn wrong_row() -> StoreError {
    StoreError::Backend(BackendError::new(
        "backend reported a different row than the single edit it was given",
    ))
}
