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
#![cfg(topostate_loom)]

mod pages;

use pages::ListAll;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use loom::model::Builder;
use loom::thread;
use topostate::store::{MemoryStore, NewLan, Precondition, StoreError, TopologyStore};
use topostate::{TopologyId, TopologyStatus};

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
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let before = RUNS.load(Ordering::SeqCst);
    // `Builder::new` reads `LOOM_MAX_PREEMPTIONS`: it overrides a bounded model's bound;
    // the unbounded models stay exhaustive.
    let mut builder = Builder::new();
    builder.preemption_bound =
        preemptions.map(|default| builder.preemption_bound.unwrap_or(default));
    let started = Instant::now();
    builder.check(move || {
        RUNS.fetch_add(1, Ordering::SeqCst);
        body();
    });
    let runs = RUNS.load(Ordering::SeqCst) - before;
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
