//! The store conformance suite: one body of checks, run against every backend.
//!
//! A backend's test file defines a [`Harness`] and expands [`conformance_tests!`]:
//!
//! ```ignore
//! mod conformance;
//! use conformance::Harness;
//!
//! struct MyHarness(/* … */);
//! impl Harness for MyHarness { /* … */ }
//!
//! conformance_tests!(MyHarness);
//! ```
//!
//! Every check is a `pub fn name<H: Harness>()` that panics when a promise of the
//! [`TopologyStore`] contract is broken; the macro makes one `#[test]` per check. The
//! concurrency checks run real threads, each on its own [`Harness::handle`], and print
//! what they saw (run with `--nocapture` to read it). Every loop is bounded in count and
//! in time.
#![allow(dead_code, unused_macros)]

use crate::pages::ListAll;
use std::time::{Duration, Instant};

use topostate::store::{
    ChildEdit, DeckyId, EdgeId, LanId, NewDecky, NewEdge, NewLan, Precondition, StatusEvent,
    StoreError, TopologyDetail, TopologyRecord, TopologyStore,
};
use topostate::{TopologyId, TopologyStatus};

/// A backend under test.
pub trait Harness: Send + Sync + 'static {
    /// A fresh, empty store.
    fn new() -> Self;
    /// A new handle on the same data (for SQLite: a new connection on the same file).
    fn handle(&self) -> Box<dyn TopologyStore>;
    /// Test hook: force the stored version of a topology.
    fn force_version(&self, id: TopologyId, version: u64);
}

/// Expands to one `#[test]` per conformance check, each run on a fresh `$harness`.
#[macro_export]
macro_rules! conformance_tests {
    // `conformance_tests!(H, ignore = "why")` marks every test `#[ignore = "why"]`, for a
    // backend that needs an outside service (it then runs with `--include-ignored`).
    ($harness:ty $(, ignore = $reason:literal)?) => {
        $crate::conformance_tests!(@each [$(#[ignore = $reason])?] $harness;
            // topologies
            create_get_list,
            duplicate_topology_name,
            invalid_names,
            invisible_characters_in_names,
            names_compare_in_nfc,
            text_limits,
            typed_lifecycle,
            typed_handles_are_claims_checked_at_the_next_write,
            needs_resync_is_independent,
            delete_cascades_from_deletable_statuses_only,
            version_overflow,
            handles_share_data,
            // children
            seed_is_what_it_says,
            lan_ops_versioning,
            decky_ops_versioning,
            edge_ops_versioning,
            empty_update_runs_guards,
            batch_edit_bumps_once,
            batch_edit_is_all_or_nothing,
            batch_sees_its_own_earlier_edits,
            batch_reports_first_failing_edit,
            error_precedence,
            lan_in_use_names_the_decky,
            batch_tracks_edges_of_deleted_ends,
            deletes_take_their_edges,
            foreign_edge_end,
            duplicate_edge,
            not_found_everywhere,
            pending_only_edits,
            runtime_fields_any_status,
            canvas_coordinates_must_be_finite,
            coordinates_read_back_bit_exact,
            text_must_not_contain_nul,
            // batch-local references
            batch_refs_canvas_save,
            batch_refs_refused,
            batch_refs_after_a_delete,
            batch_refs_with_a_stale_version,
            // transitions
            transition_all_pairs,
            stale_status_wins_even_when_legal,
            transition_version_checked_not_bumped,
            transition_records_time_and_reason,
            // queue
            enqueue_only_live,
            enqueue_versioning,
            claims_oldest_first_busy_vs_empty,
            marks_only_from_applying,
            apply_live_needs_claim_and_live_topology,
            list_mutations_newest_first_and_filter,
            leases_take_over_and_fence_the_old_holder,
            bad_leases_are_refused,
            refused_live_edits_write_nothing,
            bad_claim_options_rank_below_the_topology,
            wait_for_work_wakes_on_enqueue,
            // pages
            pages_join_up_to_each_whole_list,
            page_limits_are_checked,
            cursors_are_positions,
            // concurrency
            race_no_lost_update,
            race_enqueue_no_lost_update,
            race_transitions_from_one_state,
            race_deploy_completion_vs_teardown,
            race_child_edit_vs_deploy,
            race_claims_are_serial_and_exactly_once,
        );
    };
    (@each $attrs:tt $harness:ty; $($check:ident),* $(,)?) => {
        $(
            $crate::conformance_tests!(@one $attrs $harness; $check);
        )*
    };
    (@one [$($attr:tt)*] $harness:ty; $check:ident) => {
        #[test]
        $($attr)*
        fn $check() {
            $crate::conformance::$check::<$harness>();
        }
    };
}

/// Asserts that `$result` is an error matching `$pat` and returns the error.
macro_rules! expect_err {
    ($result:expr, $pat:pat $(if $guard:expr)?) => {
        match $result {
            Err(e) if matches!(&e, $pat $(if $guard)?) => e,
            other => panic!(
                "expected Err({}), got {:?} (at {}:{})",
                stringify!($pat),
                other,
                file!(),
                line!()
            ),
        }
    };
}

pub mod awaiting;
mod children;
mod pages;
mod queue;
mod races;
mod references;
#[path = "../spec/mod.rs"]
mod spec;
pub mod through_async;
mod topologies;
mod transitions;

pub use children::*;
pub use pages::*;
pub use queue::*;
pub use races::*;
pub use references::*;
pub use topologies::*;
pub use transitions::*;

/// Every status, in declaration order.
pub const ALL: [TopologyStatus; 7] = TopologyStatus::ALL;

/// Is `from → to` one of the hand-written edges?
pub fn legal(from: TopologyStatus, to: TopologyStatus) -> bool {
    spec::EDGES.contains(&(from.as_str(), to.as_str()))
}

/// A legal path from `pending` to `status`.
pub fn path_to(status: TopologyStatus) -> &'static [TopologyStatus] {
    use TopologyStatus::*;
    match status {
        Pending => &[],
        Deploying => &[Deploying],
        Active => &[Deploying, Active],
        Degraded => &[Deploying, Degraded],
        Failed => &[Deploying, Failed],
        TearingDown => &[Deploying, TearingDown],
        TornDown => &[TornDown],
    }
}

/// A fresh harness and one handle on it.
pub fn setup<H: Harness>() -> (H, Box<dyn TopologyStore>) {
    let harness = H::new();
    let store = harness.handle();
    (harness, store)
}

/// Creates a topology and moves it to `status` along a legal path.
pub fn reach(store: &dyn TopologyStore, name: &str, status: TopologyStatus) -> TopologyRecord {
    let created = store.create_topology(name).unwrap();
    move_to(store, created.id, status);
    store.get_topology(created.id).unwrap()
}

/// Moves a `pending` topology to `status` along a legal path.
pub fn move_to(store: &dyn TopologyStore, id: TopologyId, status: TopologyStatus) {
    for &step in path_to(status) {
        store
            .transition_status(id, step, None, Precondition::none())
            .unwrap();
    }
}

/// The rows [`seed`] creates.
#[derive(Clone, Copy, Debug)]
pub struct Seeded {
    /// `lan-a`, the only LAN of `web`.
    pub lan_a: LanId,
    /// `lan-b`, no members.
    pub lan_b: LanId,
    /// `web`, on `lan-a` only.
    pub web: DeckyId,
    /// `db`, on no LAN.
    pub db: DeckyId,
    /// `web ↔ lan-a`.
    pub edge: EdgeId,
}

/// Gives a `pending` topology two LANs, two deckies and one edge, without a version.
pub fn seed(store: &dyn TopologyStore, id: TopologyId) -> Seeded {
    let lan_a = store
        .add_lan(id, NewLan::new("lan-a", "10.0.1.0/24"), None)
        .unwrap()
        .id;
    let lan_b = store
        .add_lan(id, NewLan::new("lan-b", "10.0.2.0/24"), None)
        .unwrap()
        .id;
    let web = store.add_decky(id, NewDecky::new("web"), None).unwrap().id;
    let db = store.add_decky(id, NewDecky::new("db"), None).unwrap().id;
    let edge = store
        .add_edge(id, NewEdge::new(web, lan_a), None)
        .unwrap()
        .id;
    Seeded {
        lan_a,
        lan_b,
        web,
        db,
        edge,
    }
}

/// Creates a topology with [`seed`]ed children and moves it to `status`.
pub fn seeded(
    store: &dyn TopologyStore,
    name: &str,
    status: TopologyStatus,
) -> (TopologyId, Seeded) {
    let id = store.create_topology(name).unwrap().id;
    let rows = seed(store, id);
    move_to(store, id, status);
    (id, rows)
}

/// A consistent snapshot, for before/after comparisons.
pub fn detail(store: &dyn TopologyStore, id: TopologyId) -> TopologyDetail {
    store.topology_detail(id).unwrap()
}

/// The stored version.
pub fn version(store: &dyn TopologyStore, id: TopologyId) -> u64 {
    store.get_topology(id).unwrap().version
}

/// Asserts that the status log, replayed from `pending` oldest first, is a legal path
/// ending at the stored status, and that it is listed newest first by id.
pub fn assert_log_legal(store: &dyn TopologyStore, id: TopologyId) -> Vec<StatusEvent> {
    let newest_first = store.all_events(id).unwrap();
    for pair in newest_first.windows(2) {
        assert!(
            pair[0].id > pair[1].id,
            "events not newest first: {newest_first:?}"
        );
    }
    let mut status = TopologyStatus::Pending;
    for event in newest_first.iter().rev() {
        assert_eq!(event.topology_id, id);
        assert_eq!(event.from, status, "log does not chain: {newest_first:?}");
        assert!(
            legal(event.from, event.to),
            "illegal edge recorded: {} → {} in {newest_first:?}",
            event.from,
            event.to
        );
        status = event.to;
    }
    assert_eq!(
        status,
        store.get_topology(id).unwrap().status,
        "log does not end at the stored status"
    );
    newest_first
}

/// A deadline for bounded loops.
pub fn deadline(seconds: u64) -> Instant {
    Instant::now() + Duration::from_secs(seconds)
}

/// A batch of `n` LAN additions named `{prefix}-{i}`.
pub fn add_lans(prefix: &str, n: usize) -> Vec<ChildEdit> {
    (0..n)
        .map(|i| ChildEdit::AddLan(NewLan::new(format!("{prefix}-{i}"), "10.9.0.0/24")))
        .collect()
}

/// Is this a `NotFound` of `entity` with `id`?
pub fn is_not_found(e: &StoreError, entity: topostate::store::Entity, id: u64) -> bool {
    matches!(e, StoreError::NotFound { entity: en, id: i } if *en == entity && *i == id)
}
