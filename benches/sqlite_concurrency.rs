//! One SQLite file, many threads on one `SqliteStore` handle: the read pool and group
//! commit, each against the same store with the feature turned off (an anchor in the same
//! run).
//!
//! - `read_pool`: one writer busy in a loop on its own topology; `topology_detail` of an
//!   8-LAN topology by 1 reader and by 4 concurrent readers (the same number of reads in
//!   all), and by 4 readers on a store whose read pool is 0 (every read on the writer, as
//!   before the pool).
//! - `group_commit_normal` / `group_commit_full`: versioned `add_lan`s by 1 writer and by
//!   16 concurrent writers on 16 topologies (the same number of writes in all), on a store
//!   that groups (the default) and on one with a group size of 1 (every write commits
//!   alone, as before group commit), with `synchronous` NORMAL and FULL. With the `tokio`
//!   feature, the same writes by 1 and 16 tasks of one runtime through the async faces:
//!   `AsyncSqliteStore` (each write queued from its task for a combiner on the blocking
//!   pool) and `Offload` (each call on a blocking thread of its own).
//!
//! The interleaved lines print the ratios directly: each round times the same work both
//! ways, so drifting load on this shared machine weighs on both.

// Bench arithmetic: counts and indexes far below 2^52 turned into rates, ratios and
// percentile positions, where a float's rounding is the intended result.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use topostate::TopologyId;
#[cfg(feature = "tokio")]
use topostate::store::AsyncTopologyStore;
use topostate::store::{ChildEdit, NewLan, SqliteOptions, SqliteStore, Synchronous, TopologyStore};

/// LANs per topology before a fresh one is started (untimed).
const CHUNK: u64 = 400;

static NAMES: AtomicU64 = AtomicU64::new(0);

fn fresh_name() -> String {
    format!("t{}", NAMES.fetch_add(1, Ordering::Relaxed))
}

fn new_lan(i: u64) -> NewLan {
    NewLan::new(
        format!("lan-{i}"),
        format!("10.{}.{}.0/24", (i / 256) % 256, i % 256),
    )
}

fn open(dir: &tempfile::TempDir, name: &str, options: SqliteOptions) -> Arc<SqliteStore> {
    Arc::new(options.open(dir.path().join(name)).unwrap())
}

// ---- the read pool ----------------------------------------------------------------------

/// `n` reads of `id`'s detail, split over `threads` threads running at once.
fn reads(store: &SqliteStore, id: TopologyId, n: u64, threads: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let share = n / threads + u64::from(t < n % threads);
            s.spawn(move || {
                for _ in 0..share {
                    black_box(store.topology_detail(id).unwrap());
                }
            });
        }
    });
    start.elapsed()
}

/// A writer adding LANs to topologies of its own until `stop`.
fn busy_writer(store: Arc<SqliteStore>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut writes = 0;
        while !stop.load(Ordering::Relaxed) {
            let id = store.create_topology(&fresh_name()).unwrap().id;
            for i in 0..CHUNK {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                store.add_lan(id, new_lan(i), Some(i + 1)).unwrap();
                writes += 1;
            }
        }
        writes
    })
}

/// A topology with 8 LANs, to read.
fn seeded(store: &SqliteStore) -> TopologyId {
    let id = store.create_topology(&fresh_name()).unwrap().id;
    for i in 0..8 {
        store.add_lan(id, new_lan(i), Some(i + 1)).unwrap();
    }
    id
}

fn read_pool(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let pooled = open(&dir, "pooled.db", SqliteOptions::new());
    let unpooled = open(&dir, "unpooled.db", SqliteOptions::new().read_pool(0));
    let (a, b) = (seeded(&pooled), seeded(&unpooled));
    let stop = Arc::new(AtomicBool::new(false));
    let writers = [
        busy_writer(Arc::clone(&pooled), Arc::clone(&stop)),
        busy_writer(Arc::clone(&unpooled), Arc::clone(&stop)),
    ];

    let mut g = c.benchmark_group("read_pool");
    g.throughput(Throughput::Elements(1));
    g.bench_function("topology_detail/1_reader", |bench| {
        bench.iter_custom(|n| reads(&pooled, a, n, 1));
    });
    g.bench_function("topology_detail/4_readers", |bench| {
        bench.iter_custom(|n| reads(&pooled, a, n, 4));
    });
    g.bench_function("topology_detail/4_readers_no_pool", |bench| {
        bench.iter_custom(|n| reads(&unpooled, b, n, 4));
    });
    g.finish();

    // Time of 1 reader over time of 4 readers for the same reads: the throughput gain.
    common::interleaved(
        "read_pool topology_detail, 1 reader / 4 readers (throughput gain)",
        15,
        || reads(&pooled, a, 2000, 1),
        || reads(&pooled, a, 2000, 4),
    );
    common::interleaved(
        "read_pool topology_detail, 4 readers without the pool / with it",
        15,
        || reads(&unpooled, b, 2000, 4),
        || reads(&pooled, a, 2000, 4),
    );
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
}

// ---- group commit -----------------------------------------------------------------------

/// `n` versioned `add_lan`s split over `threads` writers running at once, each on a fresh
/// topology of its own (made untimed), in chunks so no topology grows without bound.
fn writes(store: &SqliteStore, n: u64, threads: u64) -> Duration {
    common::chunked(n, CHUNK * threads, |n| {
        let ids: Vec<TopologyId> = (0..threads)
            .map(|_| store.create_topology(&fresh_name()).unwrap().id)
            .collect();
        let start = Instant::now();
        std::thread::scope(|s| {
            for (t, &id) in ids.iter().enumerate() {
                let t = t as u64;
                let share = n / threads + u64::from(t < n % threads);
                s.spawn(move || {
                    for i in 0..share {
                        store.add_lan(id, new_lan(i), Some(i + 1)).unwrap();
                    }
                });
            }
        });
        start.elapsed()
    })
}

/// `n` versioned `add_lan`s split over `tasks` tasks running at once on `rt` through an
/// async face, each on a fresh topology of its own (made untimed), in chunks as
/// [`writes`].
#[cfg(feature = "tokio")]
fn task_writes(
    store: &Arc<dyn AsyncTopologyStore>,
    rt: &tokio::runtime::Runtime,
    n: u64,
    tasks: u64,
) -> Duration {
    common::chunked(n, CHUNK * tasks, |n| {
        let ids: Vec<TopologyId> = rt.block_on(async {
            let mut ids = Vec::new();
            for _ in 0..tasks {
                ids.push(store.create_topology(&fresh_name()).await.unwrap().id);
            }
            ids
        });
        let start = Instant::now();
        rt.block_on(async {
            let running: Vec<_> = ids
                .iter()
                .enumerate()
                .map(|(t, &id)| {
                    let t = t as u64;
                    let share = n / tasks + u64::from(t < n % tasks);
                    let store = Arc::clone(store);
                    tokio::spawn(async move {
                        for i in 0..share {
                            store.add_lan(id, new_lan(i), Some(i + 1)).await.unwrap();
                        }
                    })
                })
                .collect();
            for task in running {
                task.await.unwrap();
            }
        });
        start.elapsed()
    })
}

/// The group commit rows of the async faces: 16 tasks through `AsyncSqliteStore` against
/// 1 thread on the sync face and 1 task on the same face, and against 16 tasks through
/// `Offload`.
#[cfg(feature = "tokio")]
fn group_commit_tasks(dir: &tempfile::TempDir, base: &SqliteOptions, label: &str, n: u64) {
    use topostate::store::{AsyncSqliteStore, Offload};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let thread = open(dir, "tasks_thread.db", base.clone());
    let one: Arc<dyn AsyncTopologyStore> = Arc::new(AsyncSqliteStore::from_arc(open(
        dir,
        "tasks_one.db",
        base.clone(),
    )));
    let sixteen_store = open(dir, "tasks_sixteen.db", base.clone());
    let sixteen: Arc<dyn AsyncTopologyStore> =
        Arc::new(AsyncSqliteStore::from_arc(Arc::clone(&sixteen_store)));
    let offloaded: Arc<dyn AsyncTopologyStore> = Arc::new(Offload::from_arc(open(
        dir,
        "tasks_offload.db",
        base.clone(),
    )));
    common::interleaved(
        &format!("group_commit_{label} add_lan, 1 writer / 16 tasks (AsyncSqliteStore)"),
        11,
        || writes(&thread, n, 1),
        || task_writes(&sixteen, &rt, n, 16),
    );
    common::interleaved(
        &format!("group_commit_{label} add_lan, 1 task / 16 tasks (AsyncSqliteStore)"),
        11,
        || task_writes(&one, &rt, n, 1),
        || task_writes(&sixteen, &rt, n, 16),
    );
    common::interleaved(
        &format!("group_commit_{label} add_lan, 16 tasks: Offload / AsyncSqliteStore (time)"),
        11,
        || task_writes(&offloaded, &rt, n, 16),
        || task_writes(&sixteen, &rt, n, 16),
    );
    let (commits, grouped_writes) = sixteen_store.group_commits();
    println!(
        "group_commit_{label}, 16 tasks (AsyncSqliteStore): {grouped_writes} writes in \
         {commits} commits ({:.2} per commit)",
        grouped_writes as f64 / commits.max(1) as f64
    );
}

/// `n` `add_lan` edits as batches of `CHUNK` on fresh topologies (made untimed).
fn batch_of(store: &SqliteStore, n: u64) -> Duration {
    common::chunked(n, CHUNK, |n| {
        let id = store.create_topology(&fresh_name()).unwrap().id;
        let edits: Vec<ChildEdit> = (0..n).map(|i| ChildEdit::AddLan(new_lan(i))).collect();
        let start = Instant::now();
        store.edit(id, Some(1), &edits).unwrap();
        start.elapsed()
    })
}

fn group_commit(c: &mut Criterion, sync: Synchronous) {
    let dir = tempfile::tempdir().unwrap();
    let base = SqliteOptions::new().synchronous(sync);
    let grouped = open(&dir, "grouped.db", base.clone());
    // Its own store, so that its group counts are those of 16 writers only.
    let sixteen = open(&dir, "sixteen.db", base.clone());
    let alone = open(&dir, "alone.db", base.clone().max_group(1));
    let label = match sync {
        Synchronous::Full => "full",
        _ => "normal",
    };

    let mut g = c.benchmark_group(format!("group_commit_{label}"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("add_lan/1_writer", |bench| {
        bench.iter_custom(|n| writes(&grouped, n, 1));
    });
    g.bench_function("add_lan/16_writers", |bench| {
        bench.iter_custom(|n| writes(&grouped, n, 16));
    });
    g.bench_function("add_lan/1_writer_group_size_1", |bench| {
        bench.iter_custom(|n| writes(&alone, n, 1));
    });
    g.bench_function("add_lan/16_writers_group_size_1", |bench| {
        bench.iter_custom(|n| writes(&alone, n, 16));
    });
    g.finish();

    let n = match sync {
        Synchronous::Full => 160,
        _ => 800,
    };
    common::interleaved(
        &format!("group_commit_{label} add_lan, 1 writer / 16 writers (throughput gain)"),
        11,
        || writes(&grouped, n, 1),
        || writes(&sixteen, n, 16),
    );
    common::interleaved(
        &format!("group_commit_{label} add_lan, 1 writer / 16 writers, group size 1"),
        11,
        || writes(&alone, n, 1),
        || writes(&alone, n, 16),
    );
    common::interleaved(
        &format!("group_commit_{label} add_lan, 1 writer: grouping store / group size 1"),
        11,
        || writes(&grouped, n, 1),
        || writes(&alone, n, 1),
    );
    // The ceiling of sharing a commit: a lone write against the same `AddLan` as one edit
    // of a batch of `n` (one transaction, one topology read and one bump for them all). A
    // grouped write pays more than the batch's edit (its savepoint, its own topology read
    // and bump, the hand-over between threads), so 1 writer's time per write over this
    // bounds what any group size can gain.
    common::interleaved(
        &format!("group_commit_{label} ceiling: 1 writer, per write / per edit of one batch"),
        11,
        || writes(&alone, n, 1),
        || batch_of(&alone, n),
    );
    let (commits, grouped_writes) = sixteen.group_commits();
    println!(
        "group_commit_{label}, 16 writers: {grouped_writes} writes in {commits} commits \
         ({:.2} per commit)",
        grouped_writes as f64 / commits.max(1) as f64
    );
    #[cfg(feature = "tokio")]
    group_commit_tasks(&dir, &base, label, n);
}

fn main() {
    let mut c = common::criterion(3, 10);
    read_pool(&mut c);
    group_commit(&mut c, Synchronous::Normal);
    group_commit(&mut c, Synchronous::Full);
    c.final_summary();
}
