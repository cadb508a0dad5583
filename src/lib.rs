//! The MazeNET topology lifecycle, impossible to misuse.
//!
//! A topology (LANs, decoy hosts called deckies, and the edges between them) moves through
//! seven statuses along exactly 13 legal transitions:
//!
//! ```text
//! pending      -> deploying, torn_down
//! deploying    -> active, failed, degraded, tearing_down
//! active       -> degraded, tearing_down
//! degraded     -> active, tearing_down
//! failed       -> tearing_down
//! tearing_down -> torn_down, degraded
//! torn_down    (terminal)
//! ```
//!
//! `topostate` enforces that rule in three places:
//!
//! - **At compile time**: each status is a zero-sized marker in [`state`]; legal
//!   transitions are consuming methods on [`Topology<S>`], so an illegal one does not
//!   compile.
//! - **At runtime**: [`TopologyStatus`] parses and validates the strings stored in
//!   databases and sent over the wire, and [`AnyTopology`] turns a stored row back into a
//!   typed value.
//! - **Under concurrency**: [`Versioned<T>`] carries the version the caller last saw through
//!   every mutation; a stale version is a [`VersionConflict`], never a lost write.
//!
//! ```
//! use topostate::{state, AnyTopology, Topology, TopologyId, TopologyStatus, Versioned};
//!
//! // Typed: only legal moves exist.
//! let lab = Versioned::new(Topology::new(TopologyId::new(1), "lab"));
//! let lab = lab.transition_with(|t| t.deploy());
//! let lab = lab.transition_with(|t| t.fail("compose up exited 1"));
//! assert_eq!(lab.value().reason(), Some("compose up exited 1"));
//!
//! // Runtime: a stored string becomes a typed value again, validated.
//! let (topology, version) = lab.erase().into_parts();
//! let row = AnyTopology::from_stored("failed", topology.into_data())?;
//! let failed = Versioned::from_parts(row, version)?.restore::<state::Failed>()?;
//! let torn = failed.transition_with(|t| t.tear_down()).transition_with(|t| t.finish_teardown());
//! assert_eq!(torn.status(), TopologyStatus::TornDown);
//!
//! // Checks on raw strings, as the original Python module made them.
//! assert!(topostate::assert_transition("failed", "deploying").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `std` (default): `std::error::Error` impls and the [`store`] module. Without it the
//!   core builds on `core` and `alloc`.
//! - `serde` (default): statuses serialize as their `snake_case` strings; ids, [`Versioned`]
//!   and (with `std`) every store row, input and report have a documented JSON shape, read
//!   with the store's own field checks.
//! - `sqlite`: the SQLite store backend (bundled SQLite), for one machine.
//! - `postgres`: the PostgreSQL store backend (async on tokio-postgres with a deadpool
//!   pool, and a blocking handle on it), for many hosts. The [`store`] module docs say
//!   which backend to pick when.
//! - `tokio`: the async face of a blocking store on tokio's blocking pool (`Offload`), and
//!   with `sqlite`, `AsyncSqliteStore`, whose writes join SQLite's group commit from their
//!   tasks.
//! - `axum`: `topostate::http`, the store over HTTP: versions as `ETag`s, `If-Match`
//!   preconditions, refusals as RFC 9457 problem documents, bearer-token roles, and the
//!   topology API as a router (what `topostate serve` runs).
//!
//! # Using topostate in an async service
//!
//! Every store operation also exists as an `async` method of
//! `store::AsyncTopologyStore` (boxed `Send` futures, usable as
//! `Arc<dyn AsyncTopologyStore>` or generically), with the same errors and guarantees, and
//! the typed layer as `store::AsyncTypedStore`. `MemoryStore` runs it inline,
//! `AsyncSqliteStore` queues its writes from their tasks for one combiner on tokio's
//! blocking pool (`Offload<SqliteStore>` runs every call on a blocking thread of its own),
//! `AsyncPgStore` runs natively on
//! tokio-postgres. Inside a runtime, use `AsyncPgStore` rather than the blocking `PgStore`,
//! whose calls would block the task's worker thread. The README shows a service's editor
//! task end to end.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;

mod error;
#[cfg(feature = "axum")]
pub mod http;
pub mod lifecycle;
mod mutation;
mod names;
#[cfg(feature = "std")]
pub mod store;
mod topology;
pub mod version;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private; // Not public API.

pub use error::{
    InvalidVersion, ParseStatusError, StatusMismatch, TopologyNotEditable, TopologyStatusError,
    VersionConflict, VersionError, VersionOverflow,
};
pub use lifecycle::{LegalNext, Lifecycle};
pub use mutation::{MutationOp, MutationState, mutation_state};
pub use topology::{
    AnyTopology, Topology, TopologyData, TopologyId, TopologyStatus, assert_transition, legal_next,
    state,
};
pub use version::{INITIAL_VERSION, MAX_VERSION, Versioned, check_and_bump};

// Crate-private: `crate::named_values!` for the modules that declare named values.
use names::named_values;

// The README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
