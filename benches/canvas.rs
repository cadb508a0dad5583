//! A canvas save on a SQLite file: one new decky and its three edges, written as one batch
//! that refers to its own new decky, against the two calls it replaces (add the decky,
//! then its edges under the version the first call returned).
//!
//! Both sides write the same rows under expected versions, on one store, on a WAL file;
//! each timed save starts from the version the previous one left. After `CHUNK` saves a
//! fresh topology is made (untimed), so no topology grows without bound.
//!
//! The comparison runs twice: on the store's default `synchronous = NORMAL` (a WAL commit
//! is not flushed), and on a file opened with `synchronous = FULL`, where every commit
//! flushes the log before the store answers, so the two calls pay two flushes per save
//! and the batch one.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use topostate::TopologyId;
use topostate::store::{
    ChildEdit, LanId, NewDecky, NewEdge, NewLan, RowRef, SqliteOptions, SqliteStore, Synchronous,
    TopologyStore,
};

/// Saves per topology before the bench starts a fresh one (untimed).
const CHUNK: u64 = 200;

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 15;

/// A pending topology with three LANs to attach new deckies to.
struct Canvas {
    id: TopologyId,
    lans: [LanId; 3],
    version: u64,
}

impl Canvas {
    fn new(store: &SqliteStore) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let t = store
            .create_topology(&format!("canvas-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
            .unwrap();
        let report = store
            .edit(
                t.id,
                Some(t.version),
                &[0, 1, 2].map(|i| ChildEdit::AddLan(NewLan::new(format!("lan-{i}"), "s"))),
            )
            .unwrap();
        let lans = [0, 1, 2].map(|i| report.lan(RowRef::Batch(i)).unwrap());
        Self {
            id: t.id,
            lans,
            version: report.version,
        }
    }
}

/// `n` saves as one batch each: the decky and its edges, under one expected version.
fn one_call(store: &SqliteStore, n: u64) -> Duration {
    let mut canvas = Canvas::new(store);
    let saves: Vec<Vec<ChildEdit>> = (0..n)
        .map(|i| {
            let mut save = vec![ChildEdit::AddDecky(NewDecky::new(format!("decky-{i}")))];
            save.extend(
                canvas
                    .lans
                    .map(|lan| ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(0), lan))),
            );
            save
        })
        .collect();
    let start = Instant::now();
    for save in &saves {
        canvas.version = store
            .edit(canvas.id, Some(canvas.version), save)
            .unwrap()
            .version;
    }
    start.elapsed()
}

/// `n` saves as the two calls a batch without references needed.
fn two_calls(store: &SqliteStore, n: u64) -> Duration {
    let mut canvas = Canvas::new(store);
    let deckies: Vec<NewDecky> = (0..n)
        .map(|i| NewDecky::new(format!("decky-{i}")))
        .collect();
    let start = Instant::now();
    for decky in deckies {
        let added = store
            .add_decky(canvas.id, decky, Some(canvas.version))
            .unwrap();
        let edges = canvas
            .lans
            .map(|lan| ChildEdit::AddEdge(NewEdge::new(added.id, lan)));
        canvas.version = store
            .edit(canvas.id, Some(added.version), &edges)
            .unwrap()
            .version;
    }
    start.elapsed()
}

/// A store on a new WAL file, committing with `mode`.
fn store_on_file(mode: Synchronous) -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteOptions::new()
        .synchronous(mode)
        .open(dir.path().join("canvas.db"))
        .unwrap();
    (store, dir)
}

/// Criterion's group name for the comparison under `mode` (the NORMAL one keeps its name).
fn group_name(mode: Synchronous) -> &'static str {
    match mode {
        Synchronous::Full => "sqlite_canvas_save_file_wal_sync_full",
        _ => "sqlite_canvas_save_file_wal",
    }
}

fn canvas_save(c: &mut Criterion, mode: Synchronous) {
    let (store, _dir) = store_on_file(mode);
    let mut g = c.benchmark_group(group_name(mode));
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_batch_with_references", |b| {
        b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| one_call(&store, n)));
    });
    g.bench_function("two_calls", |b| {
        b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| two_calls(&store, n)));
    });
    g.finish();
}

/// The fastest of `rounds` interleaved runs of `n` saves on each side, per save. On a
/// machine shared with other work, preemption and I/O contention only ever add time, so
/// the fastest round is the closest to each side's own cost; the median ratio above is
/// printed too.
fn fastest(store: &SqliteStore, mode: Synchronous, rounds: usize, n: u64) {
    let (mut one, mut two) = (Duration::MAX, Duration::MAX);
    for round in 0..rounds {
        if round % 2 == 0 {
            one = one.min(one_call(store, n));
            two = two.min(two_calls(store, n));
        } else {
            two = two.min(two_calls(store, n));
            one = one.min(one_call(store, n));
        }
    }
    let per = |d: Duration| d / u32::try_from(n).unwrap_or(u32::MAX);
    println!(
        "synchronous={}: fastest of {rounds} rounds of {n} saves: \
         one_batch_with_references {:?}/save, two_calls {:?}/save, throughput gain {:.2}x",
        mode.as_str(),
        per(one),
        per(two),
        two.as_secs_f64() / one.as_secs_f64()
    );
}

fn main() {
    for mode in [Synchronous::Normal, Synchronous::Full] {
        let (store, _dir) = store_on_file(mode);
        fastest(&store, mode, 41, 20);
        // Time ratio for the same 50 saves; the throughput gain is its inverse.
        common::interleaved(
            &format!("{} one_batch_with_references/two_calls", group_name(mode)),
            ROUNDS,
            || one_call(&store, 50),
            || two_calls(&store, 50),
        );
    }
    let mut c = common::criterion(3, 20);
    canvas_save(&mut c, Synchronous::Normal);
    canvas_save(&mut c, Synchronous::Full);
    c.final_summary();
}
