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
//!   [`StoreError::VersionConflict`]. `None` means no check and no bump (the seed's
//!   meaning). A version is a claim checked at the next write, not a lock: holding a
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
//!   `applying`. A mutation left `applying` by a crashed applier stays so: recovering
//!   stuck claims is out of scope for this version.
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
mod memory;
mod model;
mod policy;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
mod sync;
mod typed;

#[cfg(feature = "tokio")]
pub use aio::Offload;
pub use aio::{AsyncTopologyStore, AsyncTypedStore, NonBlocking, StoreFuture};
pub use error::{BackendError, Entity, RefProblem, StoreError};
pub use memory::MemoryStore;
pub use model::{
    ChildEdit, Claim, Decky, DeckyId, DeckyPatch, DeckyRuntime, DeckyState, Edge, EdgeId,
    EditReport, Edited, EventId, Lan, LanId, LanPatch, Mutation, MutationClaim, MutationId,
    NewDecky, NewEdge, NewLan, Precondition, RowRef, StatusEvent, Timestamp, TopologyDetail,
    TopologyRecord, Touched, Transitioned,
};
pub use policy::{
    DELETABLE, EDITABLE, LIVE, MAX_NAME_LEN, MAX_TEXT_LEN, QueueOpen, canonical_name, check_coord,
    check_name, check_text,
};
#[cfg(feature = "postgres")]
pub use postgres::{AsyncPgStore, PgStore, PgStoreBuilder, PgStoreStats};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use typed::TypedStore;

use std::vec::Vec;

use crate::{MutationOp, MutationState, TopologyId, TopologyStatus};

/// The store contract: every backend implements these operations atomically.
///
/// The methods take `&self` (backends synchronise internally), the trait is usable as
/// `dyn TopologyStore`, and it is synchronous. The named single-edit operations
/// (`add_lan`, …) are provided on top of the batch [`edit`](Self::edit).
///
/// Ordering: lists of topologies are by id; LANs and deckies by name; edges by id; the
/// status log and mutation listings newest first and claims oldest first, by their
/// store-assigned ids, never by timestamps.
pub trait TopologyStore: Send + Sync {
    /// Creates a `pending` topology at version 1, with no status event.
    ///
    /// # Errors
    ///
    /// [`StoreError::Duplicate`] if the name is taken; [`StoreError::Invalid`] for an
    /// empty or over-long name.
    fn create_topology(&self, name: &str) -> Result<TopologyRecord, StoreError>;

    /// Reads one topology.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Corrupt`] if the row is unreadable.
    fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError>;

    /// Lists topologies by id, optionally only those in one status.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] naming the first unreadable row met (never skipped).
    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
    ) -> Result<Vec<TopologyRecord>, StoreError>;

    /// Reads a topology with all its children in one consistent snapshot.
    ///
    /// # Errors
    ///
    /// As [`get_topology`](Self::get_topology).
    fn topology_detail(&self, id: TopologyId) -> Result<TopologyDetail, StoreError>;

    /// Moves a topology to `to`, atomically checking the precondition and the table, and
    /// appending the event. The version is checked if given, never bumped.
    ///
    /// # Errors
    ///
    /// In precedence order: [`StoreError::NotFound`], [`StoreError::StaleStatus`],
    /// [`StoreError::Invalid`] (an over-long reason), [`StoreError::IllegalTransition`],
    /// [`StoreError::VersionConflict`].
    fn transition_status(
        &self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&str>,
        precondition: Precondition,
    ) -> Result<Transitioned, StoreError>;

    /// The status log, newest first.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Corrupt`] naming an unreadable event.
    fn list_status_events(&self, id: TopologyId) -> Result<Vec<StatusEvent>, StoreError>;

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
    fn set_lan_network_id(&self, lan: LanId, network_id: Option<&str>) -> Result<(), StoreError>;

    /// Writes a decky's runtime fields (no status gate, no bump).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`].
    fn set_decky_runtime(&self, decky: DeckyId, runtime: &DeckyRuntime) -> Result<(), StoreError>;

    /// Queues a live edit on an `active` or `degraded` topology; a matching expected
    /// version is bumped even if the mutation later fails to apply.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::NotEditable`] outside `active`/`degraded`,
    /// [`StoreError::VersionConflict`].
    fn enqueue_mutation(
        &self,
        id: TopologyId,
        op: MutationOp,
        payload: &str,
        expected_version: Option<u64>,
    ) -> Result<Edited<MutationId>, StoreError>;

    /// Claims the oldest pending mutation of a live topology, unless one is already
    /// `applying` ([`Claim::Busy`]) or none is pending ([`Claim::Empty`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::NotEditable`] if the topology is not
    /// `active` or `degraded`.
    fn claim_next_mutation(&self, id: TopologyId) -> Result<Claim, StoreError>;

    /// Applies live edits for a claimed mutation, all or nothing, without a version bump.
    ///
    /// # Errors
    ///
    /// [`StoreError::MutationState`] if the mutation is no longer `applying`;
    /// [`StoreError::NotEditable`] if the topology left `active`/`degraded`; otherwise as
    /// [`edit`](Self::edit).
    fn apply_live(
        &self,
        claim: &MutationClaim,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError>;

    /// Marks a claimed mutation `applied`, whatever the topology's status now (an applier
    /// interrupted by a teardown can still close its claim).
    ///
    /// # Errors
    ///
    /// [`StoreError::MutationState`] unless it is `applying`; [`StoreError::NotFound`] if
    /// the mutation does not exist in the claim's topology.
    fn mark_mutation_applied(&self, claim: MutationClaim) -> Result<Mutation, StoreError>;

    /// Marks a claimed mutation `failed` with a reason, whatever the topology's status now.
    ///
    /// # Errors
    ///
    /// [`StoreError::MutationState`] unless it is `applying`; [`StoreError::NotFound`] if
    /// the mutation does not exist in the claim's topology.
    fn mark_mutation_failed(
        &self,
        claim: MutationClaim,
        reason: &str,
    ) -> Result<Mutation, StoreError>;

    /// A topology's mutations, newest first, optionally only one state.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Corrupt`] naming an unreadable row.
    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
    ) -> Result<Vec<Mutation>, StoreError>;

    /// Sets or clears the resync flag (independent of status and version).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`].
    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError>;

    /// Deletes a topology and every child row, from `pending`, `torn_down` or `failed`.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::NotEditable`] in any other status,
    /// [`StoreError::VersionConflict`] if an expected version is given and stale (it is only
    /// checked: a deleted row has no version to bump, so this never overflows).
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
