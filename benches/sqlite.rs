//! `SqliteStore` against raw rusqlite running the same statements, measured side by side.
//!
//! The anchors below copy the store's SQL (src/store/sqlite) statement for statement:
//! prepared and cached on the connection, in one `BEGIN IMMEDIATE` transaction per write,
//! on a connection configured as the store configures its own (busy timeout, foreign keys;
//! on a file also WAL and `synchronous = NORMAL`). What is left between the two is the
//! store's own work: guards, decoding, error mapping, the connection mutex.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use topostate::store::{
    ChildEdit, MemoryStore, NewDecky, NewEdge, NewLan, Precondition, SqliteStore, Timestamp,
    TopologyStore, Touched,
};
use topostate::{TopologyId, TopologyStatus};

/// LANs per topology before the bench starts a fresh one (untimed).
const CHUNK: u64 = 1000;

/// Edits in one batch for the batch-against-singles comparison.
const K: usize = 16;

fn new_lan(i: u64) -> NewLan {
    NewLan::new(
        format!("lan-{i}"),
        format!("10.{}.{}.0/24", (i / 256) % 256, i % 256),
    )
}

// ---- where the databases live -----------------------------------------------------------

#[derive(Clone, Copy)]
enum Place {
    Memory,
    File,
}

impl Place {
    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::File => "file_wal",
        }
    }
}

/// A store, and a raw connection on a database with the store's schema, both at `place`.
struct Pair {
    store: SqliteStore,
    raw: Connection,
    // Keeps the files until the pair is dropped.
    _dir: tempfile::TempDir,
}

fn pair(place: Place) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    // The schema comes from the store itself: a store makes it on a file, and the anchor's
    // database gets the same `CREATE` statements.
    let template = dir.path().join("template.db");
    drop(SqliteStore::open(&template).unwrap());
    let ddl = common::store_schema(&template);
    let (store, raw) = match place {
        Place::Memory => {
            let raw = Connection::open_in_memory().unwrap();
            common::configure_like_store(&raw, false);
            (SqliteStore::open_in_memory().unwrap(), raw)
        }
        Place::File => {
            let raw = Connection::open(dir.path().join("anchor.db")).unwrap();
            common::configure_like_store(&raw, true);
            (SqliteStore::open(dir.path().join("store.db")).unwrap(), raw)
        }
    };
    raw.execute_batch(&ddl).unwrap();
    Pair {
        store,
        raw,
        _dir: dir,
    }
}

// ---- the anchors: the store's statements, by hand ---------------------------------------

/// A `pending` topology as `create_topology` writes it.
fn raw_create(conn: &mut Connection, name: &str) -> i64 {
    let now = Timestamp::now().as_micros();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let id = tx
        .prepare_cached(
            "INSERT INTO topologies (name, status, version, needs_resync, created_at, \
             status_changed_at) VALUES (?1, ?2, 1, 0, ?3, ?3)",
        )
        .unwrap()
        .insert(params![name, "pending", now])
        .unwrap();
    tx.commit().unwrap();
    id
}

/// `edit` with `AddLan`s under one expected version: read the head, per LAN the name check
/// and the insert, then the guarded bump; one transaction. Returns the new version.
fn raw_add_lans(conn: &mut Connection, topology: i64, lans: &[NewLan], expected: i64) -> i64 {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let (status_ok, version) = tx
        .prepare_cached("SELECT id, status, version FROM topologies WHERE id = ?1")
        .unwrap()
        .query_row([topology], |r| {
            Ok((r.get_ref(1)?.as_str()? == "pending", r.get::<_, i64>(2)?))
        })
        .unwrap();
    assert!(status_ok && version == expected, "the anchor's guards");
    for lan in lans {
        let taken: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM lans WHERE topology_id = ?1 AND name = ?2 AND id <> ?3)",
            )
            .unwrap()
            .query_row(params![topology, lan.name, 0], |r| r.get(0))
            .unwrap();
        assert!(!taken);
        tx.prepare_cached(
            "INSERT INTO lans (topology_id, name, subnet, is_dmz, x, y) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .unwrap()
        .insert(params![
            topology, lan.name, lan.subnet, lan.is_dmz, lan.x, lan.y
        ])
        .unwrap();
    }
    let changed = tx
        .prepare_cached(
            "UPDATE topologies SET version = version + 1 \
             WHERE id = ?1 AND version = ?2 AND version < ?3",
        )
        .unwrap()
        .execute(params![topology, expected, i64::MAX])
        .unwrap();
    assert_eq!(changed, 1);
    tx.commit().unwrap();
    expected + 1
}

/// `transition_status`: read the row, the status compare-and-set, the event; one
/// transaction.
fn raw_transition(conn: &mut Connection, topology: i64, from: &str, to: &str) -> i64 {
    let now = Timestamp::now().as_micros();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let stored_ok = tx
        .prepare_cached(
            "SELECT id, name, status, version, reason, needs_resync, created_at, \
             status_changed_at FROM topologies WHERE id = ?1",
        )
        .unwrap()
        .query_row([topology], |r| Ok(r.get_ref(2)?.as_str()? == from))
        .optional()
        .unwrap();
    assert_eq!(stored_ok, Some(true));
    let changed = tx
        .prepare_cached(
            "UPDATE topologies SET status = ?2, status_changed_at = ?3, reason = ?4 \
             WHERE id = ?1 AND status = ?5",
        )
        .unwrap()
        .execute(params![topology, to, now, None::<&str>, from])
        .unwrap();
    assert_eq!(changed, 1);
    let event = tx
        .prepare_cached(
            "INSERT INTO status_events (topology_id, from_status, to_status, at, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .unwrap()
        .insert(params![topology, from, to, now, None::<&str>])
        .unwrap();
    tx.commit().unwrap();
    event
}

// ---- the measured routines -------------------------------------------------------------

/// A topology name never used before in this process.
fn fresh_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `n` versioned `add_lan`s on a fresh topology: the time the writes took.
fn lib_adds(store: &SqliteStore, n: u64) -> Duration {
    let t = store.create_topology(&fresh_name()).unwrap();
    let lans: Vec<NewLan> = (0..n).map(new_lan).collect();
    let mut version = t.version;
    let start = Instant::now();
    for lan in lans {
        version = store.add_lan(t.id, lan, Some(version)).unwrap().version;
    }
    start.elapsed()
}

/// The same statements by hand.
fn anchor_adds(raw: &mut Connection, n: u64) -> Duration {
    let id = raw_create(raw, &fresh_name());
    let lans: Vec<NewLan> = (0..n).map(new_lan).collect();
    let mut version = 1;
    let start = Instant::now();
    for lan in &lans {
        version = raw_add_lans(raw, id, std::slice::from_ref(lan), version);
    }
    start.elapsed()
}

/// An active topology in the store, moved degraded <-> active (a legal 2-cycle), so each
/// call is one real transition from the state the previous one left.
struct LibFlip {
    id: TopologyId,
    current: TopologyStatus,
}

impl LibFlip {
    fn new(store: &SqliteStore) -> Self {
        let t = store.create_topology(&fresh_name()).unwrap();
        for to in [TopologyStatus::Deploying, TopologyStatus::Active] {
            store
                .transition_status(t.id, to, None, Precondition::none())
                .unwrap();
        }
        Self {
            id: t.id,
            current: TopologyStatus::Active,
        }
    }

    fn run(&mut self, store: &SqliteStore, n: u64) -> Duration {
        use TopologyStatus::{Active, Degraded};
        let start = Instant::now();
        for _ in 0..n {
            let to = if self.current == Active {
                Degraded
            } else {
                Active
            };
            black_box(
                store
                    .transition_status(self.id, to, None, Precondition::status(self.current))
                    .unwrap(),
            );
            self.current = to;
        }
        start.elapsed()
    }
}

/// The same on the anchor's database.
struct AnchorFlip {
    id: i64,
    current: &'static str,
}

impl AnchorFlip {
    fn new(raw: &mut Connection) -> Self {
        let id = raw_create(raw, &fresh_name());
        raw_transition(raw, id, "pending", "deploying");
        raw_transition(raw, id, "deploying", "active");
        Self {
            id,
            current: "active",
        }
    }

    fn run(&mut self, raw: &mut Connection, n: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            let to = if self.current == "active" {
                "degraded"
            } else {
                "active"
            };
            black_box(raw_transition(raw, self.id, self.current, to));
            self.current = to;
        }
        start.elapsed()
    }
}

/// `n` batches of `K` new LANs, one `edit` call (one expected version) each, on a fresh
/// topology: the time the calls took.
fn lib_batches(store: &SqliteStore, n: u64) -> Duration {
    let t = store.create_topology(&fresh_name()).unwrap();
    let batches: Vec<Vec<ChildEdit>> = (0..n)
        .map(|j| {
            (0..K as u64)
                .map(|i| ChildEdit::AddLan(new_lan(j * K as u64 + i)))
                .collect()
        })
        .collect();
    let mut version = t.version;
    let start = Instant::now();
    for batch in &batches {
        version = store.edit(t.id, Some(version), batch).unwrap().version;
    }
    start.elapsed()
}

/// The same `n * K` LANs as single versioned `add_lan`s.
fn lib_singles(store: &SqliteStore, n: u64) -> Duration {
    lib_adds(store, n * K as u64)
}

// ---- (8) one versioned child write --------------------------------------------------------

fn add_lan_versioned(c: &mut Criterion) {
    for place in [Place::Memory, Place::File] {
        let mut g = c.benchmark_group(format!("sqlite_add_lan_versioned_{}", place.name()));
        let Pair {
            store,
            mut raw,
            _dir,
        } = pair(place);
        g.bench_function("topostate", |b| {
            b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| lib_adds(&store, n)));
        });
        g.bench_function("anchor_rusqlite", |b| {
            b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| anchor_adds(&mut raw, n)));
        });
        g.finish();
    }
}

// ---- (9) status compare-and-set plus event --------------------------------------------------

fn transition_status(c: &mut Criterion) {
    for place in [Place::Memory, Place::File] {
        let mut g = c.benchmark_group(format!("sqlite_transition_status_{}", place.name()));
        let Pair {
            store,
            mut raw,
            _dir,
        } = pair(place);
        let mut lib = LibFlip::new(&store);
        let mut anchor = AnchorFlip::new(&mut raw);
        g.bench_function("topostate", |b| {
            b.iter_custom(|iters| lib.run(&store, iters));
        });
        g.bench_function("anchor_rusqlite", |b| {
            b.iter_custom(|iters| anchor.run(&mut raw, iters));
        });
        g.finish();
    }
}

// ---- (10) a batch of K edits against K single edits --------------------------------------

fn batch_vs_singles(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("sqlite_{K}_edits_file_wal"));
    let Pair { store, _dir, .. } = pair(Place::File);
    let per_topology = CHUNK / K as u64;
    // One iteration is K edits either way.
    g.bench_function("topostate_one_batch", |b| {
        b.iter_custom(|iters| common::chunked(iters, per_topology, |n| lib_batches(&store, n)));
    });
    g.bench_function("topostate_singles", |b| {
        b.iter_custom(|iters| common::chunked(iters, per_topology, |n| lib_singles(&store, n)));
    });
    g.finish();
}

// ---- (11) one batch of many new edges: MemoryStore against SqliteStore --------------------

/// The edge-batch sizes measured on `MemoryStore`, to show its cost per edit is flat.
const EDGE_BATCHES: [usize; 3] = [1_000, 10_000, 100_000];

/// The edge batch compared across the two stores.
const BIG_EDGE_BATCH: usize = 100_000;

/// One `edit` of `k` `AddEdge`s under an expected version, on a fresh topology holding
/// enough deckies and LANs (about √k each, made untimed) for `k` distinct pairs: the
/// time the batch took. The topology is deleted afterwards, untimed.
fn edge_batch(store: &dyn TopologyStore, k: usize) -> Duration {
    let side = k.isqrt() + 1;
    let t = store.create_topology(&fresh_name()).unwrap();
    let ends: Vec<ChildEdit> = (0..side as u64)
        .flat_map(|i| {
            [
                ChildEdit::AddLan(new_lan(i)),
                ChildEdit::AddDecky(NewDecky::new(format!("decky-{i}"))),
            ]
        })
        .collect();
    let made = store.edit(t.id, Some(t.version), &ends).unwrap();
    let (mut lans, mut deckies) = (Vec::new(), Vec::new());
    for touched in made.touched {
        match touched {
            Touched::Lan(id) => lans.push(id),
            Touched::Decky(id) => deckies.push(id),
            _ => {}
        }
    }
    let edges: Vec<ChildEdit> = deckies
        .iter()
        .flat_map(|&decky| lans.iter().map(move |&lan| NewEdge::new(decky, lan)))
        .take(k)
        .map(ChildEdit::AddEdge)
        .collect();
    let start = Instant::now();
    black_box(store.edit(t.id, Some(made.version), &edges).unwrap());
    let took = start.elapsed();
    store.delete_topology(t.id, None).unwrap();
    took
}

fn edge_batches(c: &mut Criterion) {
    let mut g = c.benchmark_group("edge_batch");
    // A 100k batch on SQLite takes most of a second: ten samples of one call each.
    g.sample_size(10);
    let memory = MemoryStore::new();
    for k in EDGE_BATCHES {
        g.throughput(Throughput::Elements(k as u64));
        g.bench_function(format!("memory/{k}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| edge_batch(&memory, k)).sum());
        });
    }
    let Pair { store, _dir, .. } = pair(Place::File);
    g.throughput(Throughput::Elements(BIG_EDGE_BATCH as u64));
    g.bench_function(format!("sqlite_file_wal/{BIG_EDGE_BATCH}"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| edge_batch(&store, BIG_EDGE_BATCH)).sum());
    });
    g.finish();
}

// ---- interleaved ratios -----------------------------------------------------------------

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 21;

/// The shared interleaved comparison, with this file's number of rounds.
fn interleaved(what: &str, lib: impl FnMut() -> Duration, anchor: impl FnMut() -> Duration) {
    common::interleaved(what, ROUNDS, lib, anchor);
}

fn interleaved_ratios() {
    for place in [Place::Memory, Place::File] {
        let Pair {
            store,
            mut raw,
            _dir,
        } = pair(place);
        let ops = match place {
            Place::Memory => 500,
            Place::File => 100,
        };
        interleaved(
            &format!(
                "sqlite_add_lan_versioned_{} topostate/anchor_rusqlite",
                place.name()
            ),
            || lib_adds(&store, ops),
            || anchor_adds(&mut raw, ops),
        );
        let mut lib = LibFlip::new(&store);
        let mut anchor = AnchorFlip::new(&mut raw);
        interleaved(
            &format!(
                "sqlite_transition_status_{} topostate/anchor_rusqlite",
                place.name()
            ),
            || lib.run(&store, ops),
            || anchor.run(&mut raw, ops),
        );
    }
    let Pair { store, _dir, .. } = pair(Place::File);
    // Time ratio for the same 10 * K edits; the throughput gain is its inverse.
    interleaved(
        &format!("sqlite_{K}_edits_file_wal topostate_one_batch/topostate_singles"),
        || lib_batches(&store, 10),
        || lib_singles(&store, 10),
    );
    // Few rounds: each takes most of a second on the SQLite side.
    let memory = MemoryStore::new();
    common::interleaved(
        &format!("edge_batch_{BIG_EDGE_BATCH} memory/sqlite_file_wal"),
        5,
        || edge_batch(&memory, BIG_EDGE_BATCH),
        || edge_batch(&store, BIG_EDGE_BATCH),
    );
}

fn main() {
    interleaved_ratios();
    let mut c = common::criterion(3, 20);
    add_lan_versioned(&mut c);
    transition_status(&mut c);
    batch_vs_singles(&mut c);
    edge_batches(&mut c);
    c.final_summary();
}
