//! The mutation queue under claim leases: the claim cycle (claim → one live edit → mark
//! applied) of `SqliteStore` against raw rusqlite doing the same cycle on the same schema,
//! and the wake-up latency from an enqueue to a waiting applier's claim.
//!
//! The anchor is what an applier would write with the driver alone: a claim by one
//! `UPDATE … RETURNING` that takes the oldest open mutation if it is pending or its lease
//! has passed (lease, holder, attempts and token set in the same statement), the live
//! edit as a fenced `UPDATE` of the mutation (token and state, `edited_by` set) and the
//! `INSERT`, then the fenced mark; one `BEGIN IMMEDIATE` transaction per step, as the store
//! takes one per call, on a connection configured as the store's. Live edits do not bump
//! the topology's version (the store's `apply_live` does not), so neither side does.
//!
//! The wake-ups are a latency distribution, not a throughput: a plain loop of enqueues,
//! each timed to the claim of an applier blocked in `wait_for_work`, prints its median and
//! p99 per backend. Across processes the bench runs itself as the applier (the environment
//! variable below) and the latency is bounded by the SQLite store's poll of the file.
//!
//! PostgreSQL (feature `postgres`, run only when `TOPOSTATE_PG_URL` names a server, e.g.
//! `eval "$(bash .ci/postgres.sh start)"`): `PgStore` against the raw `postgres` client on
//! a schema of its own with the same tables, the claim and the mark each one statement in
//! autocommit and the edit one transaction; the wake-ups come from enqueues by that plain
//! client, so the waiting store hears them through `LISTEN`/`NOTIFY` only.

// Bench arithmetic: counts and indexes far below 2^52 turned into rates, ratios and
// percentile positions, where a float's rounding is the intended result.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput};
use rusqlite::{Connection, TransactionBehavior, params};
use topostate::store::{
    ChildEdit, Claim, ClaimOptions, MemoryStore, NewLan, Precondition, SqliteStore, Timestamp,
    TopologyStore,
};
use topostate::{MutationOp, TopologyId, TopologyStatus};

/// Mutations per topology before the bench starts a fresh one (untimed).
const CHUNK: u64 = 500;

/// The lease of every claim.
const LEASE: Duration = Duration::from_secs(30);

/// Wake-ups measured per backend.
const WAKE_ROUNDS: usize = 200;

/// Set (to the database's path) when this binary runs as the applier of another process.
const APPLIER_ENV: &str = "TOPOSTATE_QUEUE_BENCH_APPLIER";

fn options() -> ClaimOptions {
    ClaimOptions::new().lease(LEASE).holder("bench")
}

fn new_lan(i: u64) -> NewLan {
    NewLan::new(
        format!("lan-{i}"),
        format!("10.{}.{}.0/24", (i / 256) % 256, i % 256),
    )
}

/// A fresh `active` topology of `store` (its name from `seq`).
fn active(store: &dyn TopologyStore, seq: &mut u64) -> TopologyId {
    *seq += 1;
    let id = store.create_topology(&format!("t-{seq}")).unwrap().id;
    for (from, to) in [
        (TopologyStatus::Pending, TopologyStatus::Deploying),
        (TopologyStatus::Deploying, TopologyStatus::Active),
    ] {
        store
            .transition_status(id, to, None, Precondition::status(from))
            .unwrap();
    }
    id
}

// ---- the claim cycle --------------------------------------------------------------------

/// `n` claim cycles through the store on a fresh topology holding `n` pending mutations
/// (enqueued untimed).
fn lib_cycles(store: &dyn TopologyStore, seq: &mut u64, n: u64) -> Duration {
    let id = active(store, seq);
    for _ in 0..n {
        store
            .enqueue_mutation(id, MutationOp::AddLan, "{}", None)
            .unwrap();
    }
    let options = options();
    let start = Instant::now();
    for i in 0..n {
        let Claim::Claimed { lease: claim, .. } =
            store.claim_next_mutation_with(id, &options).unwrap()
        else {
            panic!("nothing to claim");
        };
        store
            .apply_live(&claim, &[ChildEdit::AddLan(new_lan(i))])
            .unwrap();
        store.mark_mutation_applied(claim).unwrap();
    }
    start.elapsed()
}

/// The database's clock as the store's SQL reads it (microseconds since the epoch).
macro_rules! now {
    () => {
        "CAST(unixepoch('subsec') * 1000000 AS BIGINT)"
    };
}

/// The same cycles with rusqlite alone.
fn anchor_cycles(conn: &mut Connection, seq: &mut u64, n: u64) -> Duration {
    *seq += 1;
    let at = Timestamp::now().as_micros();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let id = tx
        .prepare_cached(
            "INSERT INTO topologies (name, status, version, needs_resync, created_at, \
             status_changed_at) VALUES (?1, 'active', 1, 0, ?2, ?2)",
        )
        .unwrap()
        .insert(params![format!("t-{seq}"), at])
        .unwrap();
    for _ in 0..n {
        tx.prepare_cached(
            "INSERT INTO mutations (topology_id, op, payload, state, requested_at) \
             VALUES (?1, 'add_lan', '{}', 'pending', ?2)",
        )
        .unwrap()
        .execute(params![id, at])
        .unwrap();
    }
    tx.commit().unwrap();
    let lease = i64::try_from(LEASE.as_micros()).unwrap();
    let start = Instant::now();
    for i in 0..n {
        anchor_cycle(conn, id, lease, i);
    }
    start.elapsed()
}

/// One claim → live edit → mark, three transactions, four statements.
fn anchor_cycle(conn: &mut Connection, topology: i64, lease: i64, i: u64) {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let (mutation, token): (i64, i64) = tx
        .prepare_cached(concat!(
            "UPDATE mutations SET state = 'applying', claimed_at = ",
            now!(),
            ", lease_until = ",
            now!(),
            " + ?2, holder = ?3, attempts = attempts + 1, token = token + 1 WHERE id = \
             (SELECT id FROM mutations WHERE topology_id = ?1 AND state IN ('applying', 'pending') \
             ORDER BY id LIMIT 1) AND (state = 'pending' OR lease_until IS NULL OR lease_until <= ",
            now!(),
            ") AND EXISTS (SELECT 1 FROM topologies WHERE id = ?1 \
             AND status IN ('active', 'degraded')) RETURNING id, token"
        ))
        .unwrap()
        .query_row(params![topology, lease, "bench"], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    tx.commit().unwrap();

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let fenced = tx
        .prepare_cached(
            "UPDATE mutations SET edited_by = ?3 WHERE id = ?1 AND topology_id = ?2 \
             AND token = ?3 AND state = 'applying' AND (edited_by IS NULL OR edited_by = ?3) \
             AND EXISTS (SELECT 1 FROM topologies WHERE id = ?2 \
             AND status IN ('active', 'degraded'))",
        )
        .unwrap()
        .execute(params![mutation, topology, token])
        .unwrap();
    assert_eq!(fenced, 1, "the anchor's fence");
    let lan = new_lan(i);
    tx.prepare_cached(
        "INSERT INTO lans (topology_id, name, subnet, is_dmz, x, y) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .unwrap()
    .execute(params![
        topology, lan.name, lan.subnet, lan.is_dmz, lan.x, lan.y
    ])
    .unwrap();
    tx.commit().unwrap();

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let marked: i64 = tx
        .prepare_cached(concat!(
            "UPDATE mutations SET state = 'applied', applied_at = ",
            now!(),
            ", reason = NULL WHERE id = ?1 AND topology_id = ?2 AND token = ?3 \
             AND state = 'applying' RETURNING id"
        ))
        .unwrap()
        .query_row(params![mutation, topology, token], |r| r.get(0))
        .unwrap();
    assert_eq!(marked, mutation);
    tx.commit().unwrap();
}

/// A store on a file and a raw connection on another file with the store's schema,
/// configured as the store configures its own (WAL, `synchronous = NORMAL`).
struct Pair {
    store: SqliteStore,
    raw: Connection,
    _dir: tempfile::TempDir,
}

fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    let template = dir.path().join("template.db");
    drop(SqliteStore::open(&template).unwrap());
    let ddl = common::store_schema(&template);
    let raw = Connection::open(dir.path().join("anchor.db")).unwrap();
    common::configure_like_store(&raw, true);
    raw.execute_batch(&ddl).unwrap();
    Pair {
        store,
        raw,
        _dir: dir,
    }
}

fn claim_cycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("claim_cycle");
    g.throughput(Throughput::Elements(1));
    let memory = MemoryStore::new();
    let mut seq = 0;
    g.bench_function("memory", |b| {
        b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| lib_cycles(&memory, &mut seq, n)));
    });
    let Pair {
        store,
        mut raw,
        _dir,
    } = pair();
    g.bench_function("sqlite_file_wal/topostate", |b| {
        b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| lib_cycles(&store, &mut seq, n)));
    });
    g.bench_function("sqlite_file_wal/anchor_rusqlite", |b| {
        b.iter_custom(|iters| {
            common::chunked(iters, CHUNK, |n| anchor_cycles(&mut raw, &mut seq, n))
        });
    });
    g.finish();
}

fn interleaved_ratios() {
    let Pair {
        store,
        mut raw,
        _dir,
    } = pair();
    let (mut lib_seq, mut anchor_seq) = (0, 0);
    common::interleaved(
        "claim_cycle_sqlite_file_wal topostate/anchor_rusqlite",
        21,
        || lib_cycles(&store, &mut lib_seq, 100),
        || anchor_cycles(&mut raw, &mut anchor_seq, 100),
    );
}

// ---- wake-ups ---------------------------------------------------------------------------

/// Prints the median and p99 of `latencies`.
fn report(what: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).max(1) - 1];
    println!(
        "wake-up {what}: median {:?}, p99 {:?}, max {:?} ({} wake-ups)",
        at(0.5),
        at(0.99),
        at(1.0),
        latencies.len()
    );
}

/// The applier's side: `ready` before each wait, `claimed` with the instant of each claim
/// (the end of the wake-up), then the mark.
fn applier(
    store: &dyn TopologyStore,
    id: TopologyId,
    mut ready: impl FnMut(),
    mut claimed: impl FnMut(Instant),
) {
    let options = options();
    for _ in 0..WAKE_ROUNDS {
        ready();
        assert!(
            store
                .wait_for_work(Some(id), Duration::from_secs(10))
                .unwrap(),
            "no wake-up within 10 s"
        );
        let Claim::Claimed { lease: claim, .. } =
            store.claim_next_mutation_with(id, &options).unwrap()
        else {
            panic!("woken with nothing to claim");
        };
        claimed(Instant::now());
        store.mark_mutation_applied(claim).unwrap();
    }
}

/// What the applier tells the enqueuer.
enum Said {
    Ready,
    Claimed(Instant),
}

/// Wake-ups within one process: an applier thread on `waiter`, the enqueues on `enqueuer`
/// (the same store or another handle on its database).
fn wake_in_process<S: TopologyStore + Send + 'static>(
    waiter: S,
    enqueuer: &S,
    id: TopologyId,
) -> Vec<Duration> {
    // Time for the applier to block in its wait.
    wake_rounds(waiter, id, Duration::from_millis(2), || {
        enqueuer
            .enqueue_mutation(id, MutationOp::AddLan, "{}", None)
            .unwrap();
    })
}

/// `WAKE_ROUNDS` wake-ups of an applier thread on `waiter`: each round waits until it is
/// ready, lets it `settle` into its wait, then times from `enqueue` to its claim.
fn wake_rounds<S: TopologyStore + Send + 'static>(
    waiter: S,
    id: TopologyId,
    settle: Duration,
    mut enqueue: impl FnMut(),
) -> Vec<Duration> {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let ready = tx.clone();
        applier(
            &waiter,
            id,
            || ready.send(Said::Ready).unwrap(),
            |at| tx.send(Said::Claimed(at)).unwrap(),
        );
    });
    let mut latencies = Vec::with_capacity(WAKE_ROUNDS);
    for _ in 0..WAKE_ROUNDS {
        assert!(matches!(rx.recv().unwrap(), Said::Ready));
        std::thread::sleep(settle);
        let enqueued = Instant::now();
        enqueue();
        let Said::Claimed(claimed) = rx.recv().unwrap() else {
            panic!("the applier did not claim");
        };
        latencies.push(claimed.duration_since(enqueued));
    }
    thread.join().unwrap();
    latencies
}

/// Microseconds since the epoch: the one clock two processes of this host share.
fn epoch_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// This binary as the applier of another process, on the store at `path`, topology
/// `TOPOSTATE_QUEUE_BENCH_TOPOLOGY`: prints `ready` before each wait and the epoch
/// microseconds of each claim.
fn run_applier(path: &str) {
    let id: u64 = std::env::var("TOPOSTATE_QUEUE_BENCH_TOPOLOGY")
        .unwrap()
        .parse()
        .unwrap();
    let store = SqliteStore::open(path).unwrap();
    let out = std::cell::RefCell::new(std::io::stdout().lock());
    let say = |line: String| {
        let mut out = out.borrow_mut();
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    };
    applier(
        &store,
        TopologyId::new(id),
        || say("ready".into()),
        |_| say(format!("claimed {}", epoch_micros())),
    );
}

/// Wake-ups across processes: the applier is this binary run again.
fn wake_across_processes(path: &PathBuf, store: &SqliteStore, id: TopologyId) -> Vec<Duration> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(APPLIER_ENV, path)
        .env("TOPOSTATE_QUEUE_BENCH_TOPOLOGY", id.get().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    let mut latencies = Vec::with_capacity(WAKE_ROUNDS);
    for round in 0..WAKE_ROUNDS {
        assert_eq!(next(), "ready");
        // The applier looks once as it starts waiting, then at each poll: the enqueues
        // fall at phases spread over the poll interval (2 ms to 51 ms into the wait).
        let phase = 2 + (round as u64 * 7) % 50;
        std::thread::sleep(Duration::from_millis(phase));
        let enqueued = epoch_micros();
        store
            .enqueue_mutation(id, MutationOp::AddLan, "{}", None)
            .unwrap();
        let line = next();
        let claimed: u128 = line.strip_prefix("claimed ").unwrap().parse().unwrap();
        let micros = u64::try_from(claimed.saturating_sub(enqueued)).unwrap();
        latencies.push(Duration::from_micros(micros));
    }
    assert!(child.wait().unwrap().success());
    latencies
}

fn wake_ups() {
    let memory = MemoryStore::new();
    let mut seq = 0;
    let id = active(&memory, &mut seq);
    report("memory", wake_in_process(memory.clone(), &memory, id));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wake.db");
    let store = SqliteStore::open(&path).unwrap();
    let id = active(&store, &mut seq);
    report(
        "sqlite_file, one process (two handles)",
        wake_in_process(SqliteStore::open(&path).unwrap(), &store, id),
    );
    let id = active(&store, &mut seq);
    report(
        "sqlite_file, two processes (the 50 ms poll)",
        wake_across_processes(&path, &store, id),
    );
}

fn main() {
    if let Ok(path) = std::env::var(APPLIER_ENV) {
        run_applier(&path);
        return;
    }
    interleaved_ratios();
    wake_ups();
    #[cfg(feature = "postgres")]
    let pg = pg::Setup::from_env();
    #[cfg(feature = "postgres")]
    if let Some(pg) = &pg {
        pg::interleaved_ratio(pg);
        report(
            "postgres, enqueue by another client (LISTEN/NOTIFY)",
            pg::wake_ups(pg),
        );
    }
    let mut c = common::criterion(3, 20);
    claim_cycle(&mut c);
    #[cfg(feature = "postgres")]
    if let Some(pg) = &pg {
        pg::claim_cycle(&mut c, pg);
    }
    c.final_summary();
}

#[cfg(feature = "postgres")]
mod pg {
    use super::{
        CHUNK, Criterion, Duration, Instant, LEASE, Throughput, Timestamp, active, common,
        lib_cycles, new_lan, wake_rounds,
    };
    use postgres::{Client, NoTls, Statement};
    use topostate::store::{PgSslMode, PgStore};

    /// The server, a schema for the store and one with the same tables (made by a store)
    /// for the anchor; both dropped at the end.
    pub struct Setup {
        url: String,
        schema: String,
        anchor_schema: String,
    }

    impl Setup {
        /// The setup on `TOPOSTATE_PG_URL`'s server, or `None` (said) without one.
        pub fn from_env() -> Option<Self> {
            let Ok(url) = std::env::var("TOPOSTATE_PG_URL") else {
                println!("skipping the PostgreSQL rows: set TOPOSTATE_PG_URL to a server's URL");
                return None;
            };
            let setup = Self {
                url,
                schema: format!("queue_bench_{}", std::process::id()),
                anchor_schema: format!("queue_bench_{}_anchor", std::process::id()),
            };
            drop(setup.store());
            drop(PgStore::connect_with_schema(&setup.url, &setup.anchor_schema).unwrap());
            Some(setup)
        }

        /// The store, on plain TCP as the anchor's client is (`NoTls`): the URL's
        /// `sslmode` would otherwise let the store encrypt where the anchor does not.
        fn store(&self) -> PgStore {
            PgStore::builder(&self.url)
                .schema(&self.schema)
                .pool_size(2)
                .ssl_mode(PgSslMode::Disable)
                .connect()
                .unwrap()
        }

        /// A plain client on `schema`.
        fn client(&self, schema: &str) -> Client {
            let mut client = Client::connect(&self.url, NoTls).unwrap();
            client
                .execute("SELECT set_config('search_path', $1, false)", &[&schema])
                .unwrap();
            client
        }
    }

    impl Drop for Setup {
        fn drop(&mut self) {
            if let Ok(mut client) = Client::connect(&self.url, NoTls) {
                for schema in [&self.schema, &self.anchor_schema] {
                    let _ =
                        client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
                }
            }
        }
    }

    /// The anchor: a plain client with the cycle's statements prepared.
    pub struct Anchor {
        client: Client,
        create: Statement,
        enqueue: Statement,
        claim: Statement,
        fence: Statement,
        insert_lan: Statement,
        mark: Statement,
    }

    /// The anchors' topology names, unique across the anchors of one run.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    impl Anchor {
        fn new(setup: &Setup) -> Self {
            let mut client = setup.client(&setup.anchor_schema);
            let mut prepare = |sql: &str| client.prepare(sql).unwrap();
            let create = prepare(
                "INSERT INTO topologies (name, status, version, reason, needs_resync,                  created_at, status_changed_at) VALUES ($1, 'active', 1, NULL, false, $2, $2)                  RETURNING id",
            );
            let enqueue = prepare(
                "INSERT INTO mutations (topology_id, op, payload, state, requested_at)                  VALUES ($1, 'add_lan', '{}', 'pending', $2)",
            );
            let claim = prepare(concat!(
                "UPDATE mutations SET state = 'applying', claimed_at = ",
                now!(),
                ", lease_until = ",
                now!(),
                " + $2, holder = $3, attempts = attempts + 1, token = token + 1 WHERE id = \
                 (SELECT id FROM mutations WHERE topology_id = $1 \
                 AND state IN ('applying', 'pending') ORDER BY id LIMIT 1) \
                 AND (state = 'pending' OR lease_until IS NULL OR lease_until <= ",
                now!(),
                ") AND EXISTS (SELECT 1 FROM topologies WHERE id = $1 \
                 AND status IN ('active', 'degraded')) RETURNING id, token"
            ));
            let fence = prepare(
                "UPDATE mutations SET edited_by = $3 WHERE id = $1 AND topology_id = $2 \
                 AND token = $3 AND state = 'applying' AND (edited_by IS NULL OR edited_by = $3) \
                 AND EXISTS (SELECT 1 FROM topologies WHERE id = $2 \
                 AND status IN ('active', 'degraded'))",
            );
            let insert_lan = prepare(
                "INSERT INTO lans (topology_id, name, subnet, is_dmz, x, y) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            );
            let mark = prepare(concat!(
                "UPDATE mutations SET state = 'applied', applied_at = ",
                now!(),
                ", reason = NULL WHERE id = $1 AND topology_id = $2 AND token = $3 \
                 AND state = 'applying' RETURNING id, pg_notify('topostate_work', topology_id::text)"
            ));
            Self {
                client,
                create,
                enqueue,
                claim,
                fence,
                insert_lan,
                mark,
            }
        }

        /// `n` cycles on a fresh topology holding `n` pending mutations (made untimed).
        fn cycles(&mut self, n: u64) -> Duration {
            let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let at = Timestamp::now().as_micros();
            let mut tx = self.client.transaction().unwrap();
            let id: i64 = tx
                .query_one(&self.create, &[&format!("t-{seq}"), &at])
                .unwrap()
                .get(0);
            for _ in 0..n {
                tx.execute(&self.enqueue, &[&id, &at]).unwrap();
            }
            tx.commit().unwrap();
            let lease = i64::try_from(LEASE.as_micros()).unwrap();
            let start = Instant::now();
            for i in 0..n {
                let row = self
                    .client
                    .query_one(&self.claim, &[&id, &lease, &"bench"])
                    .unwrap();
                let (mutation, token): (i64, i64) = (row.get(0), row.get(1));
                let mut tx = self.client.transaction().unwrap();
                let fenced = tx.execute(&self.fence, &[&mutation, &id, &token]).unwrap();
                assert_eq!(fenced, 1, "the anchor's fence");
                let lan = new_lan(i);
                tx.execute(
                    &self.insert_lan,
                    &[&id, &lan.name, &lan.subnet, &lan.is_dmz, &lan.x, &lan.y],
                )
                .unwrap();
                tx.commit().unwrap();
                let marked: i64 = self
                    .client
                    .query_one(&self.mark, &[&mutation, &id, &token])
                    .unwrap()
                    .get(0);
                assert_eq!(marked, mutation);
            }
            start.elapsed()
        }
    }

    pub fn interleaved_ratio(setup: &Setup) {
        let store = setup.store();
        let mut anchor = Anchor::new(setup);
        let mut seq = 0;
        common::interleaved(
            "claim_cycle_postgres topostate/anchor_postgres",
            21,
            || lib_cycles(&store, &mut seq, 50),
            || anchor.cycles(50),
        );
    }

    pub fn claim_cycle(c: &mut Criterion, setup: &Setup) {
        let mut g = c.benchmark_group("claim_cycle");
        g.throughput(Throughput::Elements(1));
        let store = setup.store();
        let mut anchor = Anchor::new(setup);
        let mut seq = 1_000_000;
        g.bench_function("postgres/topostate", |b| {
            b.iter_custom(|iters| {
                common::chunked(iters, CHUNK, |n| lib_cycles(&store, &mut seq, n))
            });
        });
        g.bench_function("postgres/anchor_postgres", |b| {
            b.iter_custom(|iters| common::chunked(iters, CHUNK, |n| anchor.cycles(n)));
        });
        g.finish();
    }

    /// Wake-ups of a `PgStore` applier by enqueues from a plain client: heard through
    /// `LISTEN`/`NOTIFY` alone (no signal of this process's stores is notified).
    pub fn wake_ups(setup: &Setup) -> Vec<Duration> {
        let store = setup.store();
        let mut seq = 2_000_000;
        let id = active(&store, &mut seq);
        let mut client = setup.client(&setup.schema);
        let enqueue = client
            .prepare(
                "INSERT INTO mutations (topology_id, op, payload, state, requested_at) \
                 VALUES ($1, 'add_lan', '{}', 'pending', $2) \
                 RETURNING pg_notify('topostate_work', topology_id::text)",
            )
            .unwrap();
        let key = i64::try_from(id.get()).unwrap();
        // Time for the applier to look, open its listening connection and `LISTEN`.
        wake_rounds(store, id, Duration::from_millis(20), || {
            client
                .execute(&enqueue, &[&key, &Timestamp::now().as_micros()])
                .unwrap();
        })
    }
}
