//! `MemoryStore` against anchors measured in the same run: a versioned child write against
//! a `Mutex<HashMap>` doing the least a versioned write can do, and the store shared by two
//! threads against the same store driven by one. Before the criterion groups, an interleaved
//! pass prints each ratio measured round by round with the two sides alternating, which a
//! load drifting during the run cannot skew.

// Bench arithmetic: counts and indexes far below 2^52 turned into rates, ratios and
// percentile positions, where a float's rounding is the intended result.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex, RwLock};
use std::time::{Duration, Instant};

use criterion::Criterion;
use topostate::TopologyId;
use topostate::store::{
    ChildEdit, Edited, Lan, LanId, MemoryStore, NewLan, StoreError, TopologyStore,
};

/// LANs per topology before the bench starts a fresh one (untimed), so a topology never
/// grows without bound whatever the iteration count.
const CHUNK: u64 = 1000;

fn new_lan(tag: &str, i: u64) -> NewLan {
    NewLan::new(
        format!("{tag}lan-{i}"),
        format!("10.{}.{}.0/24", (i / 256) % 256, i % 256),
    )
}

// ---- the anchor -----------------------------------------------------------------------

struct AnchorTopology {
    version: u64,
    lans: Vec<Lan>,
}

/// The least a versioned child write can do: one lock, compare the version, bump it, push
/// the row.
#[derive(Default)]
struct AnchorStore {
    topologies: Mutex<HashMap<TopologyId, AnchorTopology>>,
    next_lan: AtomicU64,
}

impl AnchorStore {
    fn create(&self, id: TopologyId) {
        self.topologies.lock().unwrap().insert(
            id,
            AnchorTopology {
                version: 1,
                lans: Vec::new(),
            },
        );
    }

    fn remove(&self, id: TopologyId) {
        self.topologies.lock().unwrap().remove(&id);
    }

    fn add_lan(
        &self,
        id: TopologyId,
        new: NewLan,
        expected: Option<u64>,
    ) -> Result<Edited<LanId>, u64> {
        let mut map = self.topologies.lock().unwrap();
        let t = map.get_mut(&id).ok_or(0u64)?;
        if expected.is_some_and(|seen| seen != t.version) {
            return Err(t.version);
        }
        t.version += 1;
        let lan_id = LanId::new(self.next_lan.fetch_add(1, Ordering::Relaxed) + 1);
        t.lans.push(Lan::new(lan_id, id, new));
        Ok(Edited::new(lan_id, t.version))
    }
}

// ---- (6) one versioned child write ----------------------------------------------------

/// `n` versioned `add_lan`s on a fresh topology of `store`: the time the writes took (the
/// topology, the inputs and the clean-up are not timed).
fn lib_adds(store: &MemoryStore, n: u64) -> Duration {
    let t = store.create_topology(&fresh_name()).unwrap();
    let lans: Vec<NewLan> = (0..n).map(|i| new_lan("", i)).collect();
    let mut version = t.version;
    let start = Instant::now();
    for lan in lans {
        version = store.add_lan(t.id, lan, Some(version)).unwrap().version;
    }
    let elapsed = start.elapsed();
    store.delete_topology(t.id, None).unwrap();
    elapsed
}

/// The same on the anchor.
fn anchor_adds(store: &AnchorStore, n: u64) -> Duration {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = TopologyId::new(NEXT.fetch_add(1, Ordering::Relaxed));
    store.create(id);
    let lans: Vec<NewLan> = (0..n).map(|i| new_lan("", i)).collect();
    let mut version = 1;
    let start = Instant::now();
    for lan in lans {
        version = store.add_lan(id, lan, Some(version)).unwrap().version;
    }
    let elapsed = start.elapsed();
    store.remove(id);
    elapsed
}

fn add_lan_versioned(c: &mut Criterion) {
    let mut g = c.benchmark_group("memory_add_lan_versioned");
    g.bench_function("topostate", |b| {
        let store = MemoryStore::new();
        b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| lib_adds(&store, n)));
    });
    g.bench_function("anchor_mutex_hashmap", |b| {
        let store = AnchorStore::default();
        b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| anchor_adds(&store, n)));
    });
    g.finish();
}

// ---- (7) two threads against one ------------------------------------------------------

/// How the threads write.
#[derive(Clone, Copy)]
enum Mode {
    /// `expected_version: None`: no check, so two writers on one topology contend only for
    /// its lock.
    Unversioned,
    /// `Some(last seen)`, retrying with the stored version on a conflict; only successful
    /// writes count.
    Versioned,
}

/// What the thread comparison drives: the store, or the anchor for reference.
trait Target: Default + Sync {
    fn create(&self) -> TopologyId;
    fn delete(&self, id: TopologyId);
    /// One single-LAN write: the new version, or the stored one on a version conflict.
    fn write(&self, id: TopologyId, edit: &ChildEdit, expected: Option<u64>) -> Result<u64, u64>;
}

impl Target for MemoryStore {
    fn create(&self) -> TopologyId {
        self.create_topology(&fresh_name()).unwrap().id
    }

    fn delete(&self, id: TopologyId) {
        self.delete_topology(id, None).unwrap();
    }

    fn write(&self, id: TopologyId, edit: &ChildEdit, expected: Option<u64>) -> Result<u64, u64> {
        match self.edit(id, expected, std::slice::from_ref(edit)) {
            Ok(report) => Ok(report.version),
            Err(StoreError::VersionConflict(c)) => Err(c.current),
            Err(e) => panic!("{e}"),
        }
    }
}

impl Target for AnchorStore {
    fn create(&self) -> TopologyId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = TopologyId::new(NEXT.fetch_add(1, Ordering::Relaxed));
        AnchorStore::create(self, id);
        id
    }

    fn delete(&self, id: TopologyId) {
        self.remove(id);
    }

    /// Copies the row out of the edit, as the store does.
    fn write(&self, id: TopologyId, edit: &ChildEdit, expected: Option<u64>) -> Result<u64, u64> {
        let ChildEdit::AddLan(new) = edit else {
            panic!("the anchor only adds LANs")
        };
        self.add_lan(id, new.clone(), expected).map(|e| e.version)
    }
}

/// Runs `total` successful single-LAN edits split over `threads` threads on `topologies`
/// topologies and returns the wall time they took, from the moment every thread is ready
/// until the last one finishes, and how many version conflicts were retried.
///
/// With more topologies than threads, each thread writes to its own share of them (as
/// editors of different canvases do); on one topology both threads write to it.
///
/// The work goes in rounds of at most `CHUNK` edits per topology, each round on fresh
/// topologies created (and the previous ones deleted) outside the timing, so a topology
/// never grows past `CHUNK` LANs whatever the iteration count. The workers build their
/// edits before the clock starts and drop them after it stops.
fn run_threads<S: Target>(
    total: u64,
    threads: u64,
    topologies: u64,
    mode: Mode,
) -> (Duration, u64) {
    let store = S::default();
    let conflicts = AtomicU64::new(0);
    let per_round = CHUNK * topologies;
    let rounds = total.div_ceil(per_round);
    let ids = RwLock::new(Vec::<TopologyId>::new());
    let (ready, start, end) = (
        Barrier::new(threads as usize + 1),
        Barrier::new(threads as usize + 1),
        Barrier::new(threads as usize + 1),
    );
    let mut elapsed = Duration::ZERO;
    std::thread::scope(|s| {
        for k in 0..threads {
            let (store, ids, ready, start, end, conflicts) =
                (&store, &ids, &ready, &start, &end, &conflicts);
            s.spawn(move || {
                let tag = format!("w{k}-");
                let mut pick = k.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                for round in 0..rounds {
                    ready.wait();
                    let ids = ids.read().unwrap().clone();
                    let in_round = per_round.min(total - round * per_round);
                    let n = in_round / threads + u64::from(k < in_round % threads);
                    let edits: Vec<ChildEdit> = (0..n)
                        .map(|i| ChildEdit::AddLan(new_lan(&tag, i)))
                        .collect();
                    // Fresh topologies start at version 1.
                    let mut seen = vec![1u64; ids.len()];
                    // With more topologies than threads each thread edits its own share,
                    // so versioned writers conflict only where they share a topology.
                    let mine: Vec<usize> = (0..ids.len())
                        .filter(|&i| {
                            ids.len() < threads as usize || i % threads as usize == k as usize
                        })
                        .collect();
                    start.wait();
                    for edit in &edits {
                        // A cheap xorshift spreads the writes over the topologies.
                        pick ^= pick << 13;
                        pick ^= pick >> 7;
                        pick ^= pick << 17;
                        let slot = mine[(pick % mine.len() as u64) as usize];
                        loop {
                            let expected = match mode {
                                Mode::Unversioned => None,
                                Mode::Versioned => Some(seen[slot]),
                            };
                            match store.write(ids[slot], edit, expected) {
                                Ok(version) => {
                                    seen[slot] = version;
                                    break;
                                }
                                Err(current) => {
                                    conflicts.fetch_add(1, Ordering::Relaxed);
                                    seen[slot] = current;
                                }
                            }
                        }
                    }
                    end.wait();
                    drop(edits);
                }
            });
        }
        for _ in 0..rounds {
            let old = std::mem::take(&mut *ids.write().unwrap());
            for id in old {
                store.delete(id);
            }
            let fresh = (0..topologies).map(|_| store.create()).collect();
            *ids.write().unwrap() = fresh;
            ready.wait();
            start.wait();
            let t0 = Instant::now();
            end.wait();
            elapsed += t0.elapsed();
        }
    });
    (elapsed, conflicts.into_inner())
}

/// A topology name never used before in this process.
fn fresh_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The thread comparisons: a name, the number of topologies and how the threads write.
const THREAD_CASES: [(&str, u64, Mode); 3] = [
    (
        "memory_threads_1_topology_unversioned",
        1,
        Mode::Unversioned,
    ),
    ("memory_threads_1_topology_versioned", 1, Mode::Versioned),
    (
        "memory_threads_1000_topologies_versioned",
        1000,
        Mode::Versioned,
    ),
];

fn threads(c: &mut Criterion) {
    for (group, topologies, mode) in THREAD_CASES {
        let mut g = c.benchmark_group(group);
        g.bench_function("anchor_1_thread", |b| {
            b.iter_custom(|iters| run_threads::<MemoryStore>(iters, 1, topologies, mode).0);
        });
        g.bench_function("topostate_2_threads", |b| {
            b.iter_custom(|iters| run_threads::<MemoryStore>(iters, 2, topologies, mode).0);
        });
        g.finish();
    }
}

// ---- interleaved ratios -----------------------------------------------------------------

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 21;

/// The shared interleaved comparison, with this file's number of rounds.
fn interleaved(what: &str, lib: impl FnMut() -> Duration, anchor: impl FnMut() -> Duration) {
    common::interleaved(what, ROUNDS, lib, anchor);
}

fn interleaved_ratios() {
    let (store, anchor) = (MemoryStore::new(), AnchorStore::default());
    interleaved(
        "memory_add_lan_versioned topostate/anchor_mutex_hashmap",
        || lib_adds(&store, CHUNK),
        || anchor_adds(&anchor, CHUNK),
    );
    for (group, topologies, mode) in THREAD_CASES {
        // Time ratio for the same work; below 1 means two threads get more done.
        interleaved(
            &format!("{group} topostate_2_threads/anchor_1_thread"),
            || run_threads::<MemoryStore>(20_000, 2, topologies, mode).0,
            || run_threads::<MemoryStore>(20_000, 1, topologies, mode).0,
        );
        // The same comparison for the anchor's minimal write: what sharing the writes
        // between two cores costs on this machine whatever the store does (a reference for
        // reading the row above, not a goal).
        interleaved(
            &format!("{group} anchor_mutex_hashmap_2_threads/anchor_mutex_hashmap_1_thread"),
            || run_threads::<AnchorStore>(20_000, 2, topologies, mode).0,
            || run_threads::<AnchorStore>(20_000, 1, topologies, mode).0,
        );
        // How often two versioned writers collide here (reported, not timed).
        let (_, conflicts) = run_threads::<MemoryStore>(20_000, 2, topologies, mode);
        println!(
            "{group}: 2 threads, 20000 successful writes, {conflicts} version conflicts retried"
        );
    }
}

/// Puts the allocator in the state a long-running process is in before anything is timed.
///
/// A topology of 1000 LANs has hash tables of over 128 KiB, which a fresh process's glibc
/// allocator serves with `mmap` (and returns with `munmap`, page faults included) until the
/// first large free raises its dynamic threshold; that made the store's writes about twice
/// as slow early in the process as later, and which phase a measurement fell in depended
/// on what ran before it (criterion's own analysis frees large buffers). Freeing one large
/// buffer here settles it for both sides; then both run a little.
fn warm_up() {
    drop(black_box(vec![0u8; 8 << 20]));
    let (store, anchor) = (MemoryStore::new(), AnchorStore::default());
    common::chunked(100_000, CHUNK, |n| lib_adds(&store, n));
    common::chunked(100_000, CHUNK, |n| anchor_adds(&anchor, n));
}

fn main() {
    warm_up();
    interleaved_ratios();
    let mut c = common::criterion(3, 20);
    add_lan_versioned(&mut c);
    threads(&mut c);
    c.final_summary();
}
