//! Every interleaving of [`MemoryStore`]'s locks and atomics, explored by `loom`.
//!
//! Built only with `--cfg topostate_loom`, which swaps the store's `std::sync` primitives for
//! loom's (see `src/store/sync.rs`):
//!
//! ```text
//! RUSTFLAGS="--cfg topostate_loom" cargo test --release --target-dir target/loom --test loom -- --nocapture
//! ```
//!
//! Two and three threads write with the version they read and race status transitions on
//! one topology. In every interleaving: version = 1 + successful versioned writes, one
//! LAN per successful write and none for a refused one, every refusal is the expected
//! kind, and the event log replayed from `pending` is a legal path ending at the stored
//! status. Each model prints how many interleavings it explored; `LOOM_MAX_PREEMPTIONS`
//! (loom's own variable) overrides the preemption bound of the bounded models (4 for two
//! threads with two writes each, 3 for three threads; the other two-thread models are
//! exhaustive).
//!
//! The lease models race claims, renewals and a zombie's writes on one claimed mutation
//! whose lease has run out (by a [`ManualClock`] moved before the threads start; the clock
//! is the test's, not a lock of the store's, so it stays `std`'s). In every interleaving
//! exactly one claimer takes the mutation over, a renewal and a takeover never both win,
//! and a zombie's live edit and mark are refused unless they came strictly before the
//! takeover's claim, so the mutation's edits are committed and marked exactly once. The
//! wake-up signal the marks and enqueues notify is `std`'s mutex and condition variable
//! (loom cannot model a timed wait); the models never wait on it.
#![cfg(topostate_loom)]

mod pages;

use pages::ListAll;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use loom::model::Builder;
use loom::thread;
use std::time::Duration;

use topostate::store::{
    ChildEdit, Claim, ClaimOptions, Lease, ManualClock, MemoryStore, Mutation, NewLan,
    Precondition, StoreError, Timestamp, TopologyStore,
};
use topostate::{MutationOp, MutationState, TopologyId, TopologyStatus};

/// What one thread did.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// Versioned writes that returned `Ok`.
    written: u64,
    /// Transitions that returned `Ok`.
    moved: u64,
    /// The highest version this thread's writes produced.
    top_written: u64,
    /// The version the topology had when this thread moved it out of `pending`.
    deployed_at: Option<u64>,
}

/// Runs `body` under loom with an optional preemption bound; prints and returns the
/// number of interleavings explored.
fn explore(name: &str, preemptions: Option<usize>, body: impl Fn() + Sync + Send + 'static) {
    // Per model, not a static: the test harness runs the models on parallel threads.
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    // `Builder::new` reads `LOOM_MAX_PREEMPTIONS`: it overrides a bounded model's bound;
    // the unbounded models stay exhaustive.
    let mut builder = Builder::new();
    builder.preemption_bound =
        preemptions.map(|default| builder.preemption_bound.unwrap_or(default));
    let started = Instant::now();
    let counted = std::sync::Arc::clone(&runs);
    builder.check(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        body();
    });
    let runs = runs.load(Ordering::SeqCst);
    println!(
        "loom {name}: {runs} interleavings explored (preemption bound {:?}) in {:.1?}",
        builder.preemption_bound,
        started.elapsed()
    );
    assert!(runs > 1, "{name}: loom explored a single interleaving");
}

/// A versioned write: read the version, add a LAN with it. The version it produced, or
/// `None` for a refusal the contract allows (a stale version, or the topology left
/// `pending` in between).
fn versioned_write(store: &MemoryStore, id: TopologyId, name: &str) -> Option<u64> {
    let seen = store.get_topology(id).unwrap();
    match store.add_lan(id, NewLan::new(name, "10.0.0.0/24"), Some(seen.version)) {
        Ok(edited) => {
            assert_eq!(edited.version, seen.version + 1, "{name}");
            Some(edited.version)
        }
        Err(StoreError::VersionConflict(c)) => {
            assert_eq!(c.expected, seen.version);
            assert!(c.current > c.expected, "{c:?}");
            None
        }
        // Refused by the status gate: the topology left `pending` first.
        Err(StoreError::NotEditable { .. }) => None,
        Err(other) => panic!("{name}: unexpected {other:?}"),
    }
}

/// A transition `from` → `to` with the status the caller believes: the version at the
/// transition, or `None` if the status was stale.
fn transition(
    store: &MemoryStore,
    id: TopologyId,
    from: TopologyStatus,
    to: TopologyStatus,
) -> Option<u64> {
    match store.transition_status(id, to, None, Precondition::status(from)) {
        Ok(t) => {
            assert_eq!((t.event.from, t.event.to), (from, to));
            assert_eq!(t.topology.status, to);
            Some(t.topology.version)
        }
        Err(StoreError::StaleStatus { expected, found }) => {
            assert_eq!(expected, from);
            assert_ne!(found, from);
            None
        }
        Err(other) => panic!("{from} -> {to}: unexpected {other:?}"),
    }
}

/// The invariants every interleaving must end in.
fn check(store: &MemoryStore, id: TopologyId, tallies: &[Tally]) {
    let written: u64 = tallies.iter().map(|t| t.written).sum();
    let moved: u64 = tallies.iter().map(|t| t.moved).sum();
    let detail = store.topology_detail(id).unwrap();
    assert_eq!(detail.topology.version, 1 + written, "{tallies:?}");
    assert_eq!(detail.lans.len() as u64, written, "{tallies:?}");
    let mut events = store.all_events(id).unwrap();
    events.reverse();
    assert_eq!(events.len() as u64, moved, "{events:?}");
    let mut at = TopologyStatus::Pending;
    for event in &events {
        assert_eq!(event.from, at, "{events:?}");
        assert!(event.from.can_transition_to(event.to), "{events:?}");
        at = event.to;
    }
    assert_eq!(at, detail.topology.status, "{events:?}");
}

/// Transitions do not bump the version: a write that produced a version above the one
/// the deploy saw came after the deploy, which the status gate must have refused.
fn all_edits_while_pending(tallies: &[Tally]) {
    let deployed_at = tallies.iter().find_map(|t| t.deployed_at);
    let top = tallies.iter().map(|t| t.top_written).max().unwrap_or(0);
    if let Some(at) = deployed_at {
        assert!(
            top <= at,
            "a child edit to version {top} after the deploy at {at}"
        );
    }
}

/// A store holding one `pending` topology.
fn lab() -> (MemoryStore, TopologyId) {
    let store = MemoryStore::new();
    let id = store.create_topology("lab").unwrap().id;
    (store, id)
}

fn spawn(
    store: &MemoryStore,
    f: impl FnOnce(&MemoryStore) -> Tally + 'static,
) -> thread::JoinHandle<Tally> {
    let store = store.clone();
    thread::spawn(move || f(&store))
}

fn writer(name: &'static str, writes: usize) -> impl FnOnce(&MemoryStore) -> Tally {
    move |store| {
        let id = TopologyId::new(1);
        let mut tally = Tally::default();
        for i in 0..writes {
            if let Some(v) = versioned_write(store, id, &format!("{name}-{i}")) {
                tally.written += 1;
                tally.top_written = tally.top_written.max(v);
            }
        }
        tally
    }
}

fn mover(steps: &'static [(TopologyStatus, TopologyStatus)]) -> impl FnOnce(&MemoryStore) -> Tally {
    move |store| {
        let mut tally = Tally::default();
        for &(from, to) in steps {
            if let Some(v) = transition(store, TopologyId::new(1), from, to) {
                tally.moved += 1;
                if from == Pending {
                    tally.deployed_at = Some(v);
                }
            }
        }
        tally
    }
}

fn join_all(handles: Vec<thread::JoinHandle<Tally>>) -> Vec<Tally> {
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

use TopologyStatus::{Active, Deploying, Failed, Pending};

#[test]
fn two_versioned_writers() {
    explore("2 writers x 1 versioned write", None, || {
        let (store, id) = lab();
        let handles = vec![spawn(&store, writer("a", 1)), spawn(&store, writer("b", 1))];
        let tallies = join_all(handles);
        check(&store, id, &tallies);
        // The first write to commit cannot have been stale.
        assert!(tallies.iter().map(|t| t.written).sum::<u64>() >= 1);
    });
}

#[test]
fn two_versioned_writers_twice_each() {
    explore("2 writers x 2 versioned writes", Some(4), || {
        let (store, id) = lab();
        let handles = vec![spawn(&store, writer("a", 2)), spawn(&store, writer("b", 2))];
        let tallies = join_all(handles);
        check(&store, id, &tallies);
        assert!(tallies.iter().map(|t| t.written).sum::<u64>() >= 2);
    });
}

#[test]
fn two_racing_transitions() {
    explore(
        "2 threads racing pending -> deploying -> active|failed",
        None,
        || {
            let (store, id) = lab();
            let handles = vec![
                spawn(&store, mover(&[(Pending, Deploying), (Deploying, Active)])),
                spawn(&store, mover(&[(Pending, Deploying), (Deploying, Failed)])),
            ];
            let tallies = join_all(handles);
            check(&store, id, &tallies);
            // Exactly one deploy and exactly one of active/failed.
            assert_eq!(
                tallies.iter().map(|t| t.moved).sum::<u64>(),
                2,
                "{tallies:?}"
            );
        },
    );
}

#[test]
fn a_versioned_writer_racing_a_deploy() {
    explore("1 writer x 2 writes vs 1 deploy", None, || {
        let (store, id) = lab();
        let handles = vec![
            spawn(&store, writer("a", 2)),
            spawn(&store, mover(&[(Pending, Deploying)])),
        ];
        let tallies = join_all(handles);
        check(&store, id, &tallies);
        assert_eq!(store.get_topology(id).unwrap().status, Deploying);
        all_edits_while_pending(&tallies);
    });
}

/// The three-thread models: bounded preemptions keep them in CI time.
fn bound() -> Option<usize> {
    Some(3)
}

#[test]
fn three_versioned_writers() {
    explore("3 writers x 1 versioned write", bound(), || {
        let (store, id) = lab();
        let handles = vec![
            spawn(&store, writer("a", 1)),
            spawn(&store, writer("b", 1)),
            spawn(&store, writer("c", 1)),
        ];
        let tallies = join_all(handles);
        check(&store, id, &tallies);
        assert!(tallies.iter().map(|t| t.written).sum::<u64>() >= 1);
    });
}

#[test]
fn three_racing_transitions() {
    explore("3 threads racing pending -> deploying", bound(), || {
        let (store, id) = lab();
        let handles = vec![
            spawn(&store, mover(&[(Pending, Deploying)])),
            spawn(&store, mover(&[(Pending, Deploying)])),
            spawn(&store, mover(&[(Pending, Deploying), (Deploying, Failed)])),
        ];
        let tallies = join_all(handles);
        check(&store, id, &tallies);
        let deploys = store
            .all_events(id)
            .unwrap()
            .iter()
            .filter(|e| e.to == Deploying)
            .count();
        assert_eq!(deploys, 1);
    });
}

#[test]
fn two_writers_racing_a_deploy() {
    explore("2 writers x 1 write vs 1 deploy", bound(), || {
        let (store, id) = lab();
        let handles = vec![
            spawn(&store, writer("a", 1)),
            spawn(&store, writer("b", 1)),
            spawn(&store, mover(&[(Pending, Deploying)])),
        ];
        let tallies = join_all(handles);
        check(&store, id, &tallies);
        all_edits_while_pending(&tallies);
    });
}

/// The lease every claim and renewal of the lease models takes.
const LEASE: Duration = Duration::from_secs(10);

/// A store on a manual clock holding one `active` topology whose one mutation was
/// claimed (token 1, holder "zombie") and whose lease has run out, with nobody having
/// taken it over yet.
fn expired_claim() -> (MemoryStore, TopologyId, Lease) {
    let clock = std::sync::Arc::new(ManualClock::new(Timestamp::from_micros(1_000_000)));
    let store = MemoryStore::with_clock(clock.clone());
    let id = store.create_topology("lab").unwrap().id;
    for (from, to) in [(Pending, Deploying), (Deploying, Active)] {
        store
            .transition_status(id, to, None, Precondition::status(from))
            .unwrap();
    }
    store
        .enqueue_mutation(id, MutationOp::AddLan, "{}", None)
        .unwrap();
    let claim = match take(&store, id, "zombie") {
        Claim::Claimed { lease: claim, .. } => claim,
        other => panic!("expected the first claim, got {other:?}"),
    };
    assert_eq!(claim.token(), 1);
    clock.advance(LEASE + Duration::from_secs(1));
    (store, id, claim)
}

/// Claims the next mutation of `id` for [`LEASE`] as `holder`.
fn take(store: &MemoryStore, id: TopologyId, holder: &str) -> Claim {
    store
        .claim_next_mutation_with(id, &ClaimOptions::new().lease(LEASE).holder(holder))
        .unwrap()
}

/// The one mutation of `id`.
fn the_mutation(store: &MemoryStore, id: TopologyId) -> Mutation {
    let mut all = store.all_mutations(id, None).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

/// Asserts `e` is the refusal of the zombie's token-1 claim after a takeover to token 2.
fn lost_to_the_takeover(e: &StoreError) {
    match e {
        StoreError::LeaseLost {
            token: 1,
            current_token: 2,
            ..
        } => {}
        other => panic!("expected LeaseLost (1 -> 2), got {other:?}"),
    }
}

/// A copy of a claim, as a zombie that kept it would hold it.
fn copy(claim: &Lease) -> Lease {
    Lease::from_parts(claim.id(), claim.topology_id(), claim.token())
}

#[test]
fn two_claimers_racing_for_an_expired_lease() {
    explore("2 claimers racing for an expired lease", None, || {
        let (store, id, zombie) = expired_claim();
        let handles: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|holder| {
                let store = store.clone();
                thread::spawn(move || take(&store, id, holder))
            })
            .collect();
        let claims: Vec<Claim> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let mut winner = None;
        for (holder, claim) in ["a", "b"].into_iter().zip(&claims) {
            match claim {
                Claim::Claimed {
                    lease: claim,
                    mutation,
                } => {
                    assert!(winner.is_none(), "both took it over: {claims:?}");
                    assert_eq!(claim.token(), 2, "{claims:?}");
                    assert_eq!(mutation.attempts, 2, "{claims:?}");
                    winner = Some(holder);
                }
                Claim::Busy { applying } => assert_eq!(*applying, zombie.id()),
                Claim::Empty => panic!("the expired claim was skipped: {claims:?}"),
            }
        }
        let winner = winner.unwrap_or_else(|| panic!("nobody took it over: {claims:?}"));
        let row = the_mutation(&store, id);
        assert_eq!(row.state, MutationState::Applying);
        assert_eq!((row.token, row.attempts), (2, 2), "{row:?}");
        assert_eq!(row.holder.as_deref(), Some(winner));
        lost_to_the_takeover(&store.mark_mutation_applied(zombie).unwrap_err());
    });
}

#[test]
fn a_renewal_racing_a_takeover() {
    explore(
        "a renewal racing a takeover of its expired lease",
        None,
        || {
            let (store, id, holder) = expired_claim();
            let renewer = {
                let store = store.clone();
                let holder = copy(&holder);
                thread::spawn(move || store.renew_lease(&holder, LEASE))
            };
            let taker = {
                let store = store.clone();
                thread::spawn(move || take(&store, id, "taker"))
            };
            let renewed = renewer.join().unwrap();
            let taken = taker.join().unwrap();
            let row = the_mutation(&store, id);
            match (&renewed, &taken) {
                // The renewal came first: the lease runs again, so the claim finds it held.
                (Ok(renewed), Claim::Busy { applying }) => {
                    assert_eq!(*applying, holder.id());
                    assert_eq!(renewed.token, 1);
                    assert_eq!((row.token, row.holder.as_deref()), (1, Some("zombie")));
                    store.mark_mutation_applied(holder).unwrap();
                }
                // The takeover came first: the renewal is fenced off and wrote nothing.
                (Err(e), Claim::Claimed { lease: claim, .. }) => {
                    lost_to_the_takeover(e);
                    assert_eq!(claim.token(), 2);
                    assert_eq!((row.token, row.holder.as_deref()), (2, Some("taker")));
                    lost_to_the_takeover(&store.mark_mutation_applied(holder).unwrap_err());
                }
                other => panic!("not exactly one winner: {other:?}"),
            }
        },
    );
}

/// What the zombie's two writes returned.
#[derive(Debug)]
struct ZombieRun {
    edited: Result<u64, StoreError>,
    marked: Result<Mutation, StoreError>,
}

/// What the taker did: its claim, and if it took the mutation, its edit and mark.
#[derive(Debug)]
struct TakerRun {
    claim: Claim,
    edited: Option<Result<u64, StoreError>>,
}

#[test]
fn a_zombie_writing_while_its_mutation_is_taken_over() {
    explore(
        "a zombie's live edit and mark racing a takeover",
        None,
        || {
            let (store, id, zombie) = expired_claim();
            let version = store.get_topology(id).unwrap().version;
            let edit = |name: &str| [ChildEdit::AddLan(NewLan::new(name, "10.0.0.0/24"))];
            let zombie_run = {
                let store = store.clone();
                thread::spawn(move || {
                    let edited = store
                        .apply_live(&zombie, &edit("zombie"))
                        .map(|r| r.version);
                    let marked = store.mark_mutation_applied(zombie);
                    ZombieRun { edited, marked }
                })
            };
            let taker_run = {
                let store = store.clone();
                thread::spawn(move || {
                    let claim = take(&store, id, "taker");
                    let edited = match &claim {
                        Claim::Claimed { lease: claim, .. } => {
                            let edited = store.apply_live(claim, &edit("taker")).map(|r| r.version);
                            store.mark_mutation_applied(copy(claim)).unwrap();
                            Some(edited)
                        }
                        _ => None,
                    };
                    TakerRun { claim, edited }
                })
            };
            let z = zombie_run.join().unwrap();
            let t = taker_run.join().unwrap();
            let runs = format!("{z:?} {t:?}");

            match &t.claim {
                // The zombie marked before the claim: nothing was left to take.
                Claim::Empty => {
                    assert!(z.edited.is_ok() && z.marked.is_ok(), "{runs}");
                }
                // Taken over: whatever the zombie wrote, the claim saw it.
                Claim::Claimed { mutation, .. } => {
                    lost_to_the_takeover(z.marked.as_ref().unwrap_err());
                    let taker_edit = t.edited.as_ref().unwrap();
                    match (&z.edited, mutation.edited_by) {
                        // Its edit came first: the taker may not commit the edits again.
                        (Ok(_), Some(1)) => assert!(
                            matches!(
                                taker_edit,
                                Err(StoreError::EditsCommitted { edited_by: 1, .. })
                            ),
                            "{runs}"
                        ),
                        (Err(e), None) => {
                            lost_to_the_takeover(e);
                            assert!(taker_edit.is_ok(), "{runs}");
                        }
                        _ => panic!("the zombie wrote after the takeover's claim: {runs}"),
                    }
                }
                Claim::Busy { .. } => panic!("the expired lease held: {runs}"),
            }

            // The mutation's edits were committed once, and it was marked once.
            let detail = store.topology_detail(id).unwrap();
            let names: Vec<&str> = detail.lans.iter().map(|l| l.name.as_str()).collect();
            assert_eq!(names.len(), 1, "{names:?} {runs}");
            // Live edits do not bump the version.
            assert_eq!(detail.topology.version, version, "{runs}");
            let marks = usize::from(z.marked.is_ok()) + usize::from(t.edited.is_some());
            assert_eq!(marks, 1, "{runs}");
            assert_eq!(the_mutation(&store, id).state, MutationState::Applied);
        },
    );
}
