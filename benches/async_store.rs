//! The async face against the sync face of the same store, measured side by side.
//!
//! - SQLite through [`Offload`] (each call hops to tokio's blocking pool and back) and
//!   through `AsyncSqliteStore` (a write is queued for a combiner on the blocking pool; a
//!   lone writer's job hops there and back the same way) against the same `SqliteStore`
//!   called directly: the cost of the hop, per operation.
//! - `MemoryStore`'s inline async face against its sync face: the cost of the boxed future
//!   and the await, which is what running its short locks inline on a runtime worker adds.
//!
//! Both sides work on their own store of the same kind, in one process, interleaved
//! round by round (see `common::interleaved`).

mod common;

use std::time::{Duration, Instant};

use criterion::Criterion;
use topostate::TopologyId;
use topostate::store::{
    AsyncSqliteStore, AsyncTopologyStore, MemoryStore, NewLan, Offload, SqliteStore, TopologyStore,
};

/// LANs per topology before a fresh one is started (untimed).
const CHUNK: u64 = 500;

fn new_lan(i: u64) -> NewLan {
    NewLan::new(format!("lan-{i}"), "10.0.0.0/24")
}

/// `n` versioned `add_lan`s on a fresh topology of `store`, through the sync face.
fn sync_adds(store: &dyn TopologyStore, n: u64) -> Duration {
    let id = store.create_topology(&fresh_name()).unwrap().id;
    let start = Instant::now();
    for i in 0..n {
        store.add_lan(id, new_lan(i), Some(i + 1)).unwrap();
    }
    start.elapsed()
}

/// The same through the async face, awaited on `rt`.
fn async_adds(rt: &tokio::runtime::Runtime, store: &dyn AsyncTopologyStore, n: u64) -> Duration {
    rt.block_on(async {
        let id = store.create_topology(&fresh_name()).await.unwrap().id;
        let start = Instant::now();
        for i in 0..n {
            store.add_lan(id, new_lan(i), Some(i + 1)).await.unwrap();
        }
        start.elapsed()
    })
}

/// The same in a task spawned on `rt`'s workers, as a service's request handler runs
/// (`async_adds` drives its loop from the calling thread, in `block_on`).
fn spawned_adds(
    rt: &tokio::runtime::Runtime,
    store: &std::sync::Arc<dyn AsyncTopologyStore>,
    n: u64,
) -> Duration {
    let store = std::sync::Arc::clone(store);
    rt.block_on(async move {
        tokio::spawn(async move {
            let id = store.create_topology(&fresh_name()).await.unwrap().id;
            let start = Instant::now();
            for i in 0..n {
                store.add_lan(id, new_lan(i), Some(i + 1)).await.unwrap();
            }
            start.elapsed()
        })
        .await
        .unwrap()
    })
}

/// `n` reads of one topology's detail through the sync face.
fn sync_reads(store: &dyn TopologyStore, id: TopologyId, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(store.topology_detail(id).unwrap());
    }
    start.elapsed()
}

/// The same through the async face.
fn async_reads(
    rt: &tokio::runtime::Runtime,
    store: &dyn AsyncTopologyStore,
    id: TopologyId,
    n: u64,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(store.topology_detail(id).await.unwrap());
        }
        start.elapsed()
    })
}

fn fresh_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A topology with a few children, for the reads.
fn seeded(store: &dyn TopologyStore) -> TopologyId {
    let id = store.create_topology(&fresh_name()).unwrap().id;
    for i in 0..8 {
        store.add_lan(id, new_lan(i), None).unwrap();
    }
    id
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

fn sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let sync_store = SqliteStore::open(dir.path().join("sync.db")).unwrap();
    let async_store = Offload::new(SqliteStore::open(dir.path().join("async.db")).unwrap());
    let native = AsyncSqliteStore::new(SqliteStore::open(dir.path().join("native.db")).unwrap());
    let mut g = c.benchmark_group("sqlite_file_add_lan");
    g.bench_function("sync", |b| {
        b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| sync_adds(&sync_store, n)));
    });
    g.bench_function("async_offload", |b| {
        b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| async_adds(&rt, &async_store, n)));
    });
    g.bench_function("async_native", |b| {
        b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| async_adds(&rt, &native, n)));
    });
    g.finish();
    common::interleaved(
        "sqlite file add_lan, async (Offload) / sync",
        40,
        || async_adds(&rt, &async_store, 200),
        || sync_adds(&sync_store, 200),
    );
    common::interleaved(
        "sqlite file add_lan, async (AsyncSqliteStore) / async (Offload)",
        40,
        || async_adds(&rt, &native, 200),
        || async_adds(&rt, &async_store, 200),
    );
    let native: std::sync::Arc<dyn AsyncTopologyStore> = std::sync::Arc::new(native);
    let offloaded: std::sync::Arc<dyn AsyncTopologyStore> =
        std::sync::Arc::new(async_store.clone());
    common::interleaved(
        "sqlite file add_lan, a spawned task, async (AsyncSqliteStore) / async (Offload)",
        40,
        || spawned_adds(&rt, &native, 200),
        || spawned_adds(&rt, &offloaded, 200),
    );
    let sync_id = seeded(&sync_store);
    let async_id = seeded(async_store.get_ref());
    common::interleaved(
        "sqlite file topology_detail, async (Offload) / sync",
        40,
        || async_reads(&rt, &async_store, async_id, 500),
        || sync_reads(&sync_store, sync_id, 500),
    );
}

fn memory(c: &mut Criterion) {
    let rt = runtime();
    let sync_store = MemoryStore::new();
    let async_store = MemoryStore::new();
    let mut g = c.benchmark_group("memory_add_lan");
    g.bench_function("sync", |b| {
        b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| sync_adds(&sync_store, n)));
    });
    g.bench_function("async_inline", |b| {
        b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| async_adds(&rt, &async_store, n)));
    });
    g.finish();
    common::interleaved(
        "memory add_lan, async (inline) / sync",
        40,
        || async_adds(&rt, &async_store, 500),
        || sync_adds(&sync_store, 500),
    );
}

fn main() {
    let mut c = common::criterion(3, 20);
    sqlite(&mut c);
    memory(&mut c);
    c.final_summary();
}
