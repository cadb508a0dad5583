//! Pages of a long list against pages of a short one, on one SQLite file.
//!
//! Two topologies share a file: `long` with 100,000 status events and 100,000 mutations,
//! `short` with 100 of each, their rows interleaved by id as two topologies' writes would
//! be. The rows are inserted untimed, in one raw transaction (the store's own writes would
//! take minutes to make this many). Goal: the first page of the long log costs what the
//! first page of the short one costs (≤ 1.5×), since a page reads the index from its
//! cursor on, however long the list.

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use topostate::TopologyId;
use topostate::store::{EventId, PageRequest, SqliteStore, TopologyStore};

/// Rows of the long lists.
const LONG: u64 = 100_000;
/// Rows of the short lists.
const SHORT: u64 = 100;
/// Rows in a page.
const LIMIT: usize = 50;

/// The store, the two topologies, and the directory holding the file.
struct Lists {
    store: SqliteStore,
    long: TopologyId,
    short: TopologyId,
    _dir: tempfile::TempDir,
}

fn lists() -> Lists {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pages.db");
    let store = SqliteStore::open(&path).unwrap();
    let long = store.create_topology("long").unwrap().id;
    let short = store.create_topology("short").unwrap().id;
    fill(&path, long, short);
    Lists {
        store,
        long,
        short,
        _dir: dir,
    }
}

/// Inserts the rows: one of `short`'s after every `LONG / SHORT` of `long`'s.
fn fill(path: &Path, long: TopologyId, short: TopologyId) {
    let mut raw = Connection::open(path).unwrap();
    let tx = raw.transaction().unwrap();
    {
        let mut event = tx
            .prepare(
                "INSERT INTO status_events (topology_id, from_status, to_status, at, reason) \
                 VALUES (?1, 'active', 'degraded', ?2, NULL)",
            )
            .unwrap();
        let mut mutation = tx
            .prepare(
                "INSERT INTO mutations (topology_id, op, payload, state, requested_at) \
                 VALUES (?1, 'add_lan', '{}', 'pending', ?2)",
            )
            .unwrap();
        let key = |id: TopologyId| i64::try_from(id.get()).unwrap();
        for i in 0..LONG {
            let at = i64::try_from(i).unwrap();
            event.execute(params![key(long), at]).unwrap();
            mutation.execute(params![key(long), at]).unwrap();
            if i % (LONG / SHORT) == 0 {
                event.execute(params![key(short), at]).unwrap();
                mutation.execute(params![key(short), at]).unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

/// `n` reads of the first page of `id`'s status log.
fn first_event_pages(store: &SqliteStore, id: TopologyId, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        black_box(
            store
                .list_status_events(id, PageRequest::first(LIMIT))
                .unwrap(),
        );
    }
    start.elapsed()
}

/// `n` reads of the first page of `id`'s mutations.
fn first_mutation_pages(store: &SqliteStore, id: TopologyId, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        black_box(
            store
                .list_mutations(id, None, PageRequest::first(LIMIT))
                .unwrap(),
        );
    }
    start.elapsed()
}

/// `n` reads of a page halfway down `id`'s status log.
fn middle_event_pages(store: &SqliteStore, id: TopologyId, middle: EventId, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        black_box(
            store
                .list_status_events(id, PageRequest::after(middle, LIMIT))
                .unwrap(),
        );
    }
    start.elapsed()
}

fn main() {
    let l = lists();
    // The cursor halfway down the long log: the id of its row there.
    let middle = l
        .store
        .list_status_events(l.long, PageRequest::first(1))
        .unwrap()
        .items[0]
        .id;
    let middle = EventId::new(middle.get() - LONG / 2);

    let rounds = 21;
    common::interleaved(
        "first_event_page 100k/100",
        rounds,
        || first_event_pages(&l.store, l.long, 200),
        || first_event_pages(&l.store, l.short, 200),
    );
    common::interleaved(
        "first_mutation_page 100k/100",
        rounds,
        || first_mutation_pages(&l.store, l.long, 200),
        || first_mutation_pages(&l.store, l.short, 200),
    );
    common::interleaved(
        "middle_event_page 100k/first 100",
        rounds,
        || middle_event_pages(&l.store, l.long, middle, 200),
        || first_event_pages(&l.store, l.short, 200),
    );

    let mut c = common::criterion(3, 20);
    let mut g = c.benchmark_group("first_event_page");
    for (name, id) in [("100", l.short), ("100000", l.long)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| first_event_pages(&l.store, id, iters));
        });
    }
    g.finish();
    let mut g = c.benchmark_group("first_mutation_page");
    for (name, id) in [("100", l.short), ("100000", l.long)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| first_mutation_pages(&l.store, id, iters));
        });
    }
    g.finish();
    c.final_summary();
}
