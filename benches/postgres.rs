//! `PgStore` against the raw `postgres` client running the same statements, and aggregate
//! throughput with several stores (each its own pool) working at once.
//!
//! Needs a server: set `TOPOSTATE_PG_URL` (e.g. `eval "$(bash .ci/postgres.sh start)"`);
//! without it the bench says so and measures nothing.
//!
//! The anchors copy the store's SQL (src/store/postgres) statement for statement: prepared
//! once per connection, in one `READ COMMITTED` transaction per write that locks the
//! topology's row first. What is left between the two is the store's own work: guards,
//! decoding, error mapping, the pool checkout.
//!
//! Each side works in a fresh schema of its own (same tables), dropped at the end.

// Bench arithmetic: counts and indexes far below 2^52 turned into rates, ratios and
// percentile positions, where a float's rounding is the intended result.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod common;

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use postgres::{Client, IsolationLevel, NoTls, Statement};
use topostate::TopologyStatus;
use topostate::store::{
    NewLan, PageRequest, PgSslMode, PgStore, Precondition, Timestamp, TopologyStore,
};

/// LANs per topology before the bench starts a fresh one (untimed).
const CHUNK: u64 = 1000;

const URL_VAR: &str = "TOPOSTATE_PG_URL";

fn new_lan(i: u64) -> NewLan {
    NewLan::new(
        format!("lan-{i}"),
        format!("10.{}.{}.0/24", (i / 256) % 256, i % 256),
    )
}

/// Where the bench works: the server, a schema for the stores and one (with the same
/// tables, made by a store) for the anchors, so neither side works on the other's dead rows.
struct Setup {
    url: String,
    schema: String,
    anchor_schema: String,
}

impl Setup {
    fn new(url: String) -> Self {
        let setup = Self {
            url,
            schema: format!("bench_{}", std::process::id()),
            anchor_schema: format!("bench_{}_anchor", std::process::id()),
        };
        // Both schemas exist before anything is timed.
        drop(setup.store(1));
        drop(PgStore::connect_with_schema(&setup.url, &setup.anchor_schema).unwrap());
        setup
    }

    /// Vacuums both schemas (untimed, between the two sides of a group), so that the dead
    /// rows one side left are not cleaned up by autovacuum while the other side is timed.
    fn vacuum(&self) {
        let mut client = Client::connect(&self.url, NoTls).unwrap();
        for schema in [&self.schema, &self.anchor_schema] {
            for table in [
                "topologies",
                "lans",
                "deckies",
                "edges",
                "status_events",
                "mutations",
            ] {
                // Names from this file and `Setup::new`: plain identifiers.
                client
                    .batch_execute(&format!("VACUUM (ANALYZE) {schema}.{table}"))
                    .unwrap();
            }
        }
    }

    /// The store, on plain TCP as the anchor's client is (`NoTls`): on a server with TLS
    /// on, the URL's default `sslmode` would let the store encrypt where the anchor does
    /// not.
    fn store(&self, pool: u32) -> PgStore {
        PgStore::builder(&self.url)
            .schema(&self.schema)
            .pool_size(pool)
            .ssl_mode(PgSslMode::Disable)
            .connect()
            .unwrap()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Ok(mut client) = Client::connect(&self.url, NoTls) {
            for schema in [&self.schema, &self.anchor_schema] {
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

// ---- the anchor: the store's statements, by hand ---------------------------------------

/// A raw client on the bench's schema with the store's write statements prepared.
struct Anchor {
    client: Client,
    create: Statement,
    head: Statement,
    name_taken: Statement,
    insert_lan: Statement,
    bump: Statement,
    row: Statement,
    set_status: Statement,
    insert_event: Statement,
}

impl Anchor {
    fn new(setup: &Setup) -> Self {
        let mut client = Client::connect(&setup.url, NoTls).unwrap();
        client
            .execute(
                "SELECT set_config('search_path', $1, false)",
                &[&setup.anchor_schema],
            )
            .unwrap();
        let mut prepare = |sql: &str| client.prepare(sql).unwrap();
        let create = prepare(
            "INSERT INTO topologies (name, status, version, reason, needs_resync, created_at, \
             status_changed_at) VALUES ($1, $2, $3, NULL, false, $4, $4) \
             ON CONFLICT ON CONSTRAINT topologies_name_unique DO NOTHING RETURNING id",
        );
        let head = prepare("SELECT id, status, version FROM topologies WHERE id = $1 FOR UPDATE");
        let name_taken = prepare(
            "SELECT EXISTS (SELECT 1 FROM lans WHERE topology_id = $1 AND name = $2 AND id <> $3)",
        );
        let insert_lan = prepare(
            "INSERT INTO lans (topology_id, name, subnet, is_dmz, x, y) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        );
        let bump = prepare(
            "UPDATE topologies SET version = version + 1 \
             WHERE id = $1 AND version = $2 AND version < $3",
        );
        let row = prepare(
            "SELECT id, name, status, version, reason, needs_resync, created_at, \
             status_changed_at FROM topologies WHERE id = $1 FOR UPDATE",
        );
        let set_status = prepare(
            "UPDATE topologies SET status = $2, status_changed_at = $3, reason = $4 \
             WHERE id = $1 AND status = $5",
        );
        let insert_event = prepare(
            "INSERT INTO status_events (topology_id, from_status, to_status, at, reason) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        );
        Self {
            client,
            create,
            head,
            name_taken,
            insert_lan,
            bump,
            row,
            set_status,
            insert_event,
        }
    }

    /// A `pending` topology as `create_topology` writes it.
    fn create(&mut self, name: &str) -> i64 {
        let now = Timestamp::now().as_micros();
        self.client
            .query_one(&self.create, &[&name, &"pending", &1i64, &now])
            .unwrap()
            .get(0)
    }

    /// `add_lan` with an expected version: lock and read the head, the name check, the
    /// insert, the guarded bump; one transaction. Returns the new version.
    fn add_lan(&mut self, topology: i64, lan: &NewLan, expected: i64) -> i64 {
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .unwrap();
        let head = tx.query_one(&self.head, &[&topology]).unwrap();
        let (status, version): (&str, i64) = (head.get(1), head.get(2));
        assert!(
            status == "pending" && version == expected,
            "the anchor's guards"
        );
        let taken: bool = tx
            .query_one(&self.name_taken, &[&topology, &lan.name, &0i64])
            .unwrap()
            .get(0);
        assert!(!taken);
        let id: i64 = tx
            .query_one(
                &self.insert_lan,
                &[
                    &topology,
                    &lan.name,
                    &lan.subnet,
                    &lan.is_dmz,
                    &lan.x,
                    &lan.y,
                ],
            )
            .unwrap()
            .get(0);
        black_box(id);
        let changed = tx
            .execute(&self.bump, &[&topology, &expected, &i64::MAX])
            .unwrap();
        assert_eq!(changed, 1);
        tx.commit().unwrap();
        expected + 1
    }

    /// `transition_status`: lock and read the row, the status compare-and-set, the event;
    /// one transaction.
    fn transition(&mut self, topology: i64, from: &str, to: &str) -> i64 {
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .unwrap();
        let row = tx.query_one(&self.row, &[&topology]).unwrap();
        assert_eq!(row.get::<_, &str>(2), from);
        let now = Timestamp::now().as_micros();
        let changed = tx
            .execute(
                &self.set_status,
                &[&topology, &to, &now, &None::<&str>, &from],
            )
            .unwrap();
        assert_eq!(changed, 1);
        let event: i64 = tx
            .query_one(
                &self.insert_event,
                &[&topology, &from, &to, &now, &None::<&str>],
            )
            .unwrap()
            .get(0);
        tx.commit().unwrap();
        event
    }
}

// ---- one versioned child write ----------------------------------------------------------

fn add_lan_versioned(c: &mut Criterion, setup: &Setup) {
    setup.vacuum();
    let mut g = c.benchmark_group("pg_add_lan_versioned");
    let store = setup.store(1);
    let mut anchor = Anchor::new(setup);
    let mut round = 0u64;
    g.bench_function("topostate", |b| {
        b.iter_custom(|iters| {
            common::chunked(iters, CHUNK, |n| {
                round += 1;
                let t = store.create_topology(&format!("v{round}")).unwrap();
                let lans: Vec<NewLan> = (0..n).map(new_lan).collect();
                let mut version = t.version;
                let start = Instant::now();
                for lan in lans {
                    version = store.add_lan(t.id, lan, Some(version)).unwrap().version;
                }
                start.elapsed()
            })
        });
    });
    setup.vacuum();
    g.bench_function("anchor_postgres", |b| {
        b.iter_custom(|iters| {
            common::chunked(iters, CHUNK, |n| {
                round += 1;
                let id = anchor.create(&format!("v{round}"));
                let lans: Vec<NewLan> = (0..n).map(new_lan).collect();
                let mut version = 1;
                let start = Instant::now();
                for lan in &lans {
                    version = anchor.add_lan(id, lan, version);
                }
                start.elapsed()
            })
        });
    });
    g.finish();
}

// ---- status compare-and-set plus event --------------------------------------------------

fn transition_status(c: &mut Criterion, setup: &Setup) {
    setup.vacuum();
    let mut g = c.benchmark_group("pg_transition_status");
    let store = setup.store(1);
    let mut anchor = Anchor::new(setup);
    // Each side on an active topology of its own, a fresh one every `TRANSITIONS_PER_ROW`
    // transitions (untimed), so neither times a row with more dead versions than the other;
    // degraded <-> active is a legal 2-cycle, so each iteration is one real transition.
    let mut round = 0u64;
    g.bench_function("topostate", |b| {
        b.iter_custom(|iters| {
            common::chunked(iters, TRANSITIONS_PER_ROW, |n| {
                round += 1;
                let t = store.create_topology(&format!("t{round}")).unwrap();
                for to in [TopologyStatus::Deploying, TopologyStatus::Active] {
                    store
                        .transition_status(t.id, to, None, Precondition::none())
                        .unwrap();
                }
                let start = Instant::now();
                for i in 0..n {
                    let (from, to) = flip(i);
                    black_box(
                        store
                            .transition_status(t.id, to, None, Precondition::status(from))
                            .unwrap(),
                    );
                }
                start.elapsed()
            })
        });
    });
    setup.vacuum();
    g.bench_function("anchor_postgres", |b| {
        b.iter_custom(|iters| {
            common::chunked(iters, TRANSITIONS_PER_ROW, |n| {
                round += 1;
                let id = anchor.create(&format!("t{round}"));
                anchor.transition(id, "pending", "deploying");
                anchor.transition(id, "deploying", "active");
                let start = Instant::now();
                for i in 0..n {
                    let (from, to) = flip(i);
                    black_box(anchor.transition(id, from.as_str(), to.as_str()));
                }
                start.elapsed()
            })
        });
    });
    g.finish();
}

/// Transitions on one row before the bench moves to a fresh one.
const TRANSITIONS_PER_ROW: u64 = 200;

/// The `i`-th step of the active <-> degraded cycle, from `active`.
fn flip(i: u64) -> (TopologyStatus, TopologyStatus) {
    use TopologyStatus::{Active, Degraded};
    if i.is_multiple_of(2) {
        (Active, Degraded)
    } else {
        (Degraded, Active)
    }
}

// ---- aggregate throughput ---------------------------------------------------------------

/// `workers` threads, each with its own store (its own pool of one connection, as separate
/// processes would have), share `iters` versioned `add_lan`s: each on a topology of its own
/// (`shared == false`), or all on one topology, unversioned, queueing on its row lock
/// (`shared == true`). The time is the wall time of the whole, so time per iteration is the
/// inverse of aggregate throughput.
fn run_workers(stores: &[PgStore], shared: bool, iters: u64, round: u64) -> Duration {
    let workers = stores.len();
    let one = stores[0]
        .create_topology(&format!("shared-{shared}-{workers}-{round}"))
        .unwrap()
        .id;
    let per = iters.div_ceil(workers as u64);
    let barrier = Barrier::new(workers + 1);
    std::thread::scope(|scope| {
        for (w, store) in stores.iter().enumerate() {
            let barrier = &barrier;
            scope.spawn(move || {
                let own = store
                    .create_topology(&format!("own-{shared}-{workers}-{round}-{w}"))
                    .unwrap();
                let lans: Vec<NewLan> = (0..per).map(|i| new_lan(i + per * w as u64)).collect();
                barrier.wait();
                let mut version = own.version;
                for lan in lans {
                    if shared {
                        store.add_lan(one, lan, None).unwrap();
                    } else {
                        version = store.add_lan(own.id, lan, Some(version)).unwrap().version;
                    }
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

fn throughput(c: &mut Criterion, setup: &Setup) {
    for (name, shared) in [
        ("pg_throughput_own_topologies", false),
        ("pg_throughput_one_topology", true),
    ] {
        let mut g = c.benchmark_group(name);
        let mut round = 0u64;
        for workers in [1, 2, 4] {
            // The stores, their pools and their connections exist before anything is timed.
            let stores: Vec<PgStore> = (0..workers).map(|_| setup.store(1)).collect();
            for store in &stores {
                store
                    .list_topologies(Some(TopologyStatus::TornDown), PageRequest::first(1))
                    .unwrap();
            }
            g.bench_with_input(
                BenchmarkId::from_parameter(workers),
                &stores,
                |b, stores| {
                    b.iter_custom(|iters| {
                        common::chunked(iters, CHUNK, |n| {
                            round += 1;
                            run_workers(stores, shared, n, round)
                        })
                    });
                },
            );
        }
        g.finish();
    }
}

// ---- interleaved ratios ------------------------------------------------------------------

/// The interleaved comparison: blocks (each with a new store and a new anchor connection,
/// so new server processes), rounds per block (each on fresh rows), operations per side per
/// round.
const BLOCKS: usize = 7;
const ROUNDS: usize = 8;
const PER_ROUND: u64 = 40;

/// One timed operation of one side; its argument is the operation's index in the round.
type Op<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

/// Sets up a round on fresh rows (untimed) and returns the two sides' operations.
type Round = for<'a> fn(&'a PgStore, &'a mut Anchor, usize) -> (Op<'a>, Op<'a>);

fn add_lan_round<'a>(store: &'a PgStore, anchor: &'a mut Anchor, round: usize) -> (Op<'a>, Op<'a>) {
    let name = format!("i{round}-{}", now_micros());
    let t = store.create_topology(&name).unwrap();
    let raw_id = anchor.create(&name);
    let (mut version, mut raw_version) = (t.version, 1);
    (
        Box::new(move |i| {
            let lan = new_lan(i);
            let start = Instant::now();
            version = store.add_lan(t.id, lan, Some(version)).unwrap().version;
            start.elapsed()
        }),
        Box::new(move |i| {
            let lan = new_lan(i);
            let start = Instant::now();
            raw_version = anchor.add_lan(raw_id, &lan, raw_version);
            start.elapsed()
        }),
    )
}

fn transition_round<'a>(
    store: &'a PgStore,
    anchor: &'a mut Anchor,
    round: usize,
) -> (Op<'a>, Op<'a>) {
    let name = format!("it{round}-{}", now_micros());
    let t = store.create_topology(&name).unwrap();
    for to in [TopologyStatus::Deploying, TopologyStatus::Active] {
        store
            .transition_status(t.id, to, None, Precondition::none())
            .unwrap();
    }
    let raw_id = anchor.create(&name);
    anchor.transition(raw_id, "pending", "deploying");
    anchor.transition(raw_id, "deploying", "active");
    (
        Box::new(move |i| {
            let (from, to) = flip(i);
            let start = Instant::now();
            black_box(
                store
                    .transition_status(t.id, to, None, Precondition::status(from))
                    .unwrap(),
            );
            start.elapsed()
        }),
        Box::new(move |i| {
            let (from, to) = flip(i);
            let start = Instant::now();
            black_box(anchor.transition(raw_id, from.as_str(), to.as_str()));
            start.elapsed()
        }),
    )
}

/// The store against the anchor, interleaved operation by operation: store, anchor,
/// anchor, store, ... (each pair in alternating order), each operation timed on its own, so
/// load that comes and goes (other work on the machine, autovacuum) lands on both sides
/// alike. On a busy machine the two connections' server processes can still land on
/// differently loaded cores for seconds at a time, so the comparison runs in blocks, each
/// with new connections, and the median of the blocks' ratios is the result.
fn interleaved(setup: &Setup) {
    compare(setup, "versioned add_lan", add_lan_round);
    compare(setup, "transition_status", transition_round);
}

fn compare(setup: &Setup, what: &str, round: Round) {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut block_ratios = Vec::new();
    for block in 0..BLOCKS {
        let store = setup.store(1);
        let mut anchor = Anchor::new(setup);
        let (mut block_ours, mut block_theirs) = (Vec::new(), Vec::new());
        for r in 0..ROUNDS {
            let (mut store_op, mut anchor_op) = round(&store, &mut anchor, block * ROUNDS + r);
            for i in 0..PER_ROUND {
                let (a, b) = if i.is_multiple_of(2) {
                    let a = store_op(i);
                    (a, anchor_op(i))
                } else {
                    let b = anchor_op(i);
                    (store_op(i), b)
                };
                block_ours.push(a.as_secs_f64());
                block_theirs.push(b.as_secs_f64());
            }
        }
        block_ours.sort_by(f64::total_cmp);
        block_theirs.sort_by(f64::total_cmp);
        block_ratios.push(quantile(&block_ours, 0.5) / quantile(&block_theirs, 0.5));
        ours.extend(block_ours);
        theirs.extend(block_theirs);
    }
    report(what, &mut ours, &mut theirs, &mut block_ratios);
}

/// Aggregate throughput of 1, 2 and 4 stores at once, interleaved: each round runs every
/// worker count once (in a rotating order) on `OPS_PER_ROUND` versioned writes, so drifting
/// load weighs on all alike. Prints the median writes per second of each.
fn interleaved_throughput(setup: &Setup) {
    const COUNTS: [usize; 3] = [1, 2, 4];
    const THROUGHPUT_ROUNDS: usize = 15;
    const OPS_PER_ROUND: u64 = 480;
    for shared in [false, true] {
        let stores: Vec<Vec<PgStore>> = COUNTS
            .iter()
            .map(|&n| (0..n).map(|_| setup.store(1)).collect())
            .collect();
        for group in &stores {
            for store in group {
                store
                    .list_topologies(Some(TopologyStatus::TornDown), PageRequest::first(1))
                    .unwrap();
            }
        }
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); COUNTS.len()];
        for round in 0..THROUGHPUT_ROUNDS {
            for k in 0..COUNTS.len() {
                let which = (k + round) % COUNTS.len();
                let took =
                    run_workers(&stores[which], shared, OPS_PER_ROUND, 10_000 + round as u64);
                rates[which].push(OPS_PER_ROUND as f64 / took.as_secs_f64());
            }
        }
        let line: Vec<String> = COUNTS
            .iter()
            .zip(&mut rates)
            .map(|(n, r)| {
                r.sort_by(f64::total_cmp);
                format!("{n} → {:.0}/s", quantile(r, 0.5))
            })
            .collect();
        println!(
            "interleaved throughput, {} ({THROUGHPUT_ROUNDS} rounds x {OPS_PER_ROUND} writes, \
             median): {}",
            if shared {
                "one topology, unversioned add_lan"
            } else {
                "a topology per store, versioned add_lan"
            },
            line.join(", ")
        );
    }
}

// ---- aggregate throughput of processes ------------------------------------------------------

/// Set in a child process of [`process_throughput`]: `URL SCHEMA START_MICROS WRITES INDEX`.
const CHILD_VAR: &str = "TOPOSTATE_PG_BENCH_CHILD";

fn now_micros() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

/// The child side: its own store and pool, its own topology, `writes` versioned `add_lan`s
/// from the shared start instant; prints the instant it finished.
fn bench_child(spec: &str) {
    let parts: Vec<&str> = spec.split(' ').collect();
    let [url, schema, start, writes, index] = parts[..] else {
        panic!("bad {CHILD_VAR}: {spec}");
    };
    let (start, writes): (u64, u64) = (start.parse().unwrap(), writes.parse().unwrap());
    let store = PgStore::builder(url)
        .schema(schema)
        .pool_size(1)
        .connect()
        .unwrap();
    let t = store
        .create_topology(&format!("proc-{index}-{start}"))
        .unwrap();
    let lans: Vec<NewLan> = (0..writes).map(new_lan).collect();
    let now = now_micros();
    if start > now {
        std::thread::sleep(Duration::from_micros(start - now));
    }
    let mut version = t.version;
    for lan in lans {
        version = store.add_lan(t.id, lan, Some(version)).unwrap().version;
    }
    println!("DONE {}", now_micros());
}

/// Aggregate throughput of 1, 2 and 4 OS processes (this bench binary re-executed), each
/// with its own pool and topology, `PROCESS_WRITES` versioned writes in all per run, all
/// starting at one instant; interleaved runs, median writes per second.
fn process_throughput(setup: &Setup) {
    const COUNTS: [usize; 3] = [1, 2, 4];
    const RUNS: usize = 7;
    const PROCESS_WRITES: u64 = 960;
    let exe = std::env::current_exe().unwrap();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); COUNTS.len()];
    for run in 0..RUNS {
        for k in 0..COUNTS.len() {
            let which = (k + run) % COUNTS.len();
            let n = COUNTS[which];
            // Long enough for every child to start, connect and set up before it.
            let start = now_micros() + 1_500_000;
            let per = PROCESS_WRITES / n as u64;
            let children: Vec<_> = (0..n)
                .map(|i| {
                    std::process::Command::new(&exe)
                        .env(
                            CHILD_VAR,
                            format!("{} {} {start} {per} {i}", setup.url, setup.schema),
                        )
                        .stdout(std::process::Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let mut last = start;
            for child in children {
                let out = child.wait_with_output().unwrap();
                assert!(out.status.success(), "a bench child failed");
                let text = String::from_utf8_lossy(&out.stdout);
                let done: u64 = text
                    .lines()
                    .find_map(|l| l.strip_prefix("DONE "))
                    .unwrap()
                    .parse()
                    .unwrap();
                last = last.max(done);
            }
            let seconds = (last - start) as f64 / 1e6;
            rates[which].push((per * n as u64) as f64 / seconds);
        }
    }
    let line: Vec<String> = COUNTS
        .iter()
        .zip(&mut rates)
        .map(|(n, r)| {
            r.sort_by(f64::total_cmp);
            format!("{n} → {:.0}/s", quantile(r, 0.5))
        })
        .collect();
    println!(
        "interleaved throughput, processes, a topology each, versioned add_lan ({RUNS} runs x \
         {PROCESS_WRITES} writes, median): {}",
        line.join(", ")
    );
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn report(what: &str, ours: &mut [f64], theirs: &mut [f64], block_ratios: &mut [f64]) {
    ours.sort_by(f64::total_cmp);
    theirs.sort_by(f64::total_cmp);
    block_ratios.sort_by(f64::total_cmp);
    let us = |v: &[f64], q| quantile(v, q) * 1e6;
    let blocks: Vec<String> = block_ratios.iter().map(|r| format!("{r:.3}")).collect();
    println!(
        "interleaved {what}, {} ops a side: topostate median {:.0} µs (quartiles {:.0}..{:.0}), \
         anchor median {:.0} µs (quartiles {:.0}..{:.0}); ratio {:.3} (median of {BLOCKS} \
         blocks: {})",
        ours.len(),
        us(ours, 0.5),
        us(ours, 0.25),
        us(ours, 0.75),
        us(theirs, 0.5),
        us(theirs, 0.25),
        us(theirs, 0.75),
        quantile(block_ratios, 0.5),
        blocks.join(" "),
    );
}

// ---- the async store -------------------------------------------------------------------

/// `AsyncPgStore` against raw `tokio-postgres` running the same statements, and 64 tasks
/// against 64 threads. `TOPOSTATE_PG_BENCH=async` runs only these (`sync`, only the
/// blocking store's interleaved rows).
mod async_rows {
    use super::{NewLan, Setup, common, flip, new_lan};
    use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
    use std::time::Instant;
    use topostate::TopologyStatus;
    use topostate::store::{
        AsyncPgStore, AsyncTopologyStore, PgStore, Precondition, Timestamp, TopologyStore,
    };

    const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";
    const PER_ROUND: u64 = 40;
    const ROUNDS: usize = 24;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// A pool of `size` made as the store makes its own (the same configuration, TLS
    /// connector and recycling), on `schema`.
    fn raw_pool(setup: &Setup, schema: &str, size: usize) -> Pool {
        let (config, tls) = PgStore::builder(&setup.url)
            .schema(schema)
            .driver_config()
            .unwrap();
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager).max_size(size).build().unwrap()
    }

    /// `BEGIN` and the transaction's id, pipelined as the store does them (the store reads
    /// the id with its schema stamp, which the anchor has not).
    async fn begin(c: &Object) {
        let xid = c.prepare_cached("SELECT txid_current()").await.unwrap();
        let (begun, id) = tokio::join!(c.simple_query(BEGIN_WRITE), c.query_one(&xid, &[]));
        begun.unwrap();
        std::hint::black_box(id.unwrap().get::<_, i64>(0));
    }

    async fn raw_create(c: &Object, name: &str) -> i64 {
        let st = c
            .prepare_cached(
                "INSERT INTO topologies (name, status, version, reason, needs_resync, \
                 created_at, status_changed_at) VALUES ($1, $2, $3, NULL, false, $4, $4) \
                 ON CONFLICT ON CONSTRAINT topologies_name_unique DO NOTHING RETURNING id",
            )
            .await
            .unwrap();
        let now = Timestamp::now().as_micros();
        c.query_one(&st, &[&name, &"pending", &1i64, &now])
            .await
            .unwrap()
            .get(0)
    }

    /// The store's versioned `add_lan`, statement for statement.
    async fn raw_add_lan(c: &Object, topology: i64, lan: &NewLan, expected: i64) -> i64 {
        begin(c).await;
        let head = c
            .prepare_cached("SELECT id, status, version FROM topologies WHERE id = $1 FOR UPDATE")
            .await
            .unwrap();
        let row = c.query_one(&head, &[&topology]).await.unwrap();
        assert_eq!(row.get::<_, i64>(2), expected);
        let taken = c
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM lans WHERE topology_id = $1 AND name = $2 \
                 AND id <> $3)",
            )
            .await
            .unwrap();
        let taken: bool = c
            .query_one(&taken, &[&topology, &lan.name, &0i64])
            .await
            .unwrap()
            .get(0);
        assert!(!taken);
        let insert = c
            .prepare_cached(
                "INSERT INTO lans (topology_id, name, subnet, is_dmz, x, y) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .await
            .unwrap();
        c.query_one(
            &insert,
            &[
                &topology,
                &lan.name,
                &lan.subnet,
                &lan.is_dmz,
                &lan.x,
                &lan.y,
            ],
        )
        .await
        .unwrap();
        let bump = c
            .prepare_cached(
                "UPDATE topologies SET version = version + 1 \
                 WHERE id = $1 AND version = $2 AND version < $3",
            )
            .await
            .unwrap();
        assert_eq!(
            c.execute(&bump, &[&topology, &expected, &i64::MAX])
                .await
                .unwrap(),
            1
        );
        c.batch_execute("COMMIT").await.unwrap();
        expected + 1
    }

    /// The store's `transition_status` with a status precondition, statement for statement.
    async fn raw_transition(c: &Object, topology: i64, from: &str, to: &str) {
        begin(c).await;
        let row = c
            .prepare_cached(
                "SELECT id, name, status, version, reason, needs_resync, created_at, \
                 status_changed_at FROM topologies WHERE id = $1 FOR UPDATE",
            )
            .await
            .unwrap();
        let row = c.query_one(&row, &[&topology]).await.unwrap();
        assert_eq!(row.get::<_, &str>(2), from);
        let now = Timestamp::now().as_micros();
        let set = c
            .prepare_cached(
                "UPDATE topologies SET status = $2, status_changed_at = $3, reason = $4 \
                 WHERE id = $1 AND status = $5",
            )
            .await
            .unwrap();
        c.execute(&set, &[&topology, &to, &now, &None::<&str>, &from])
            .await
            .unwrap();
        let event = c
            .prepare_cached(
                "INSERT INTO status_events (topology_id, from_status, to_status, at, reason) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .await
            .unwrap();
        c.query_one(&event, &[&topology, &from, &to, &now, &None::<&str>])
            .await
            .unwrap();
        c.batch_execute("COMMIT").await.unwrap();
    }

    pub(super) fn run(setup: &Setup) {
        let rt = runtime();
        let store = rt
            .block_on(
                AsyncPgStore::builder(&setup.url)
                    .schema(&setup.schema)
                    .pool_size(1)
                    .connect_async(),
            )
            .unwrap();
        let pool = raw_pool(setup, &setup.anchor_schema, 1);
        let mut round = 0u64;
        setup.vacuum();
        common::interleaved(
            "async add_lan (versioned): AsyncPgStore / raw tokio-postgres",
            ROUNDS,
            || {
                round += 1;
                rt.block_on(async {
                    let t = store.create_topology(&format!("aa{round}")).await.unwrap();
                    let lans: Vec<NewLan> = (0..PER_ROUND).map(new_lan).collect();
                    let mut version = t.version;
                    let start = Instant::now();
                    for lan in lans {
                        version = store
                            .add_lan(t.id, lan, Some(version))
                            .await
                            .unwrap()
                            .version;
                    }
                    start.elapsed()
                })
            },
            || {
                rt.block_on(async {
                    let c = pool.get().await.unwrap();
                    let id = raw_create(&c, &format!("ar{}", rand_u64())).await;
                    drop(c);
                    let lans: Vec<NewLan> = (0..PER_ROUND).map(new_lan).collect();
                    let mut version = 1;
                    let start = Instant::now();
                    for lan in &lans {
                        let c = pool.get().await.unwrap();
                        version = raw_add_lan(&c, id, lan, version).await;
                    }
                    start.elapsed()
                })
            },
        );
        setup.vacuum();
        common::interleaved(
            "async transition_status: AsyncPgStore / raw tokio-postgres",
            ROUNDS,
            || {
                round += 1;
                rt.block_on(async {
                    let t = store.create_topology(&format!("at{round}")).await.unwrap();
                    for to in [TopologyStatus::Deploying, TopologyStatus::Active] {
                        store
                            .transition_status(t.id, to, None, Precondition::none())
                            .await
                            .unwrap();
                    }
                    let start = Instant::now();
                    for i in 0..PER_ROUND {
                        let (from, to) = flip(i);
                        store
                            .transition_status(t.id, to, None, Precondition::status(from))
                            .await
                            .unwrap();
                    }
                    start.elapsed()
                })
            },
            || {
                rt.block_on(async {
                    let c = pool.get().await.unwrap();
                    let id = raw_create(&c, &format!("rt{}", rand_u64())).await;
                    raw_transition(&c, id, "pending", "deploying").await;
                    raw_transition(&c, id, "deploying", "active").await;
                    drop(c);
                    let start = Instant::now();
                    for i in 0..PER_ROUND {
                        let (from, to) = flip(i);
                        let c = pool.get().await.unwrap();
                        raw_transition(&c, id, from.as_str(), to.as_str()).await;
                    }
                    start.elapsed()
                })
            },
        );
        throughput(setup, &rt);
    }

    fn rand_u64() -> u64 {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(Instant::now())
    }

    /// Tasks (threads) and topologies of the throughput rows, and the pool both sides get.
    const WORKERS: usize = 64;
    const TOPOLOGIES: usize = 1000;
    const POOL: u32 = 16;
    /// Versioned `add_lan`s per worker per round.
    const PER_WORKER: u64 = 8;

    /// 64 tasks on one `AsyncPgStore` against 64 threads on one `PgStore` (the same pool
    /// size), each worker writing versioned `add_lan`s to its own share of 1000 topologies.
    fn throughput(setup: &Setup, rt: &tokio::runtime::Runtime) {
        let store = rt
            .block_on(
                AsyncPgStore::builder(&setup.url)
                    .schema(&setup.schema)
                    .pool_size(POOL)
                    .connect_async(),
            )
            .unwrap();
        let sync = PgStore::builder(&setup.url)
            .schema(&setup.anchor_schema)
            .pool_size(POOL)
            .connect()
            .unwrap();
        // The topologies, and the workers' versions of them, set up untimed.
        let tag = rand_u64();
        let async_ids: Vec<_> = rt.block_on(async {
            let mut ids = Vec::new();
            for t in 0..TOPOLOGIES {
                ids.push(
                    store
                        .create_topology(&format!("tp{tag}-{t}"))
                        .await
                        .unwrap()
                        .id,
                );
            }
            ids
        });
        let sync_ids: Vec<_> = (0..TOPOLOGIES)
            .map(|t| sync.create_topology(&format!("ts{tag}-{t}")).unwrap().id)
            .collect();
        let mut async_versions = vec![1u64; TOPOLOGIES];
        let mut sync_versions = vec![1u64; TOPOLOGIES];
        let next = std::cell::Cell::new(0u64);
        let ops = (WORKERS as u64 * PER_WORKER) as f64;
        let (mut a_rates, mut s_rates) = (Vec::new(), Vec::new());
        common::interleaved(
            "64 tasks (AsyncPgStore) / 64 threads (PgStore), 1000 topologies, time per round",
            10,
            || {
                next.set(next.get() + 1);
                let base = next.get() * 10_000;
                let versions = std::mem::take(&mut async_versions);
                let (took, versions) = rt.block_on(async {
                    let start = Instant::now();
                    let mut tasks = Vec::new();
                    for w in 0..WORKERS {
                        let store = store.clone();
                        let ids = async_ids.clone();
                        let mut mine: Vec<(usize, u64)> = (w..TOPOLOGIES)
                            .step_by(WORKERS)
                            .map(|t| (t, versions[t]))
                            .collect();
                        tasks.push(tokio::spawn(async move {
                            for i in 0..PER_WORKER {
                                let k = (i as usize) % mine.len();
                                let (t, v) = mine[k];
                                let lan = new_lan(base + i * WORKERS as u64 + w as u64);
                                let v = store.add_lan(ids[t], lan, Some(v)).await.unwrap().version;
                                mine[k] = (t, v);
                            }
                            mine
                        }));
                    }
                    let mut versions = versions.clone();
                    for task in tasks {
                        for (t, v) in task.await.unwrap() {
                            versions[t] = v;
                        }
                    }
                    (start.elapsed(), versions)
                });
                async_versions = versions;
                a_rates.push(ops / took.as_secs_f64());
                took
            },
            || {
                next.set(next.get() + 1);
                let base = next.get() * 10_000;
                let versions = std::sync::Mutex::new(std::mem::take(&mut sync_versions));
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for w in 0..WORKERS {
                        let (sync, ids, versions) = (&sync, &sync_ids, &versions);
                        scope.spawn(move || {
                            let mut mine: Vec<(usize, u64)> = {
                                let versions = versions.lock().unwrap();
                                (w..TOPOLOGIES)
                                    .step_by(WORKERS)
                                    .map(|t| (t, versions[t]))
                                    .collect()
                            };
                            for i in 0..PER_WORKER {
                                let k = (i as usize) % mine.len();
                                let (t, v) = mine[k];
                                let lan = new_lan(base + i * WORKERS as u64 + w as u64);
                                let v = sync.add_lan(ids[t], lan, Some(v)).unwrap().version;
                                mine[k] = (t, v);
                            }
                            let mut versions = versions.lock().unwrap();
                            for (t, v) in mine {
                                versions[t] = v;
                            }
                        });
                    }
                });
                let took = start.elapsed();
                sync_versions = versions.into_inner().unwrap();
                s_rates.push(ops / took.as_secs_f64());
                took
            },
        );
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "  throughput: AsyncPgStore {:.0} writes/s, PgStore {:.0} writes/s (medians)",
            median(&mut a_rates),
            median(&mut s_rates)
        );
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_VAR) {
        bench_child(&spec);
        return;
    }
    let Ok(url) = std::env::var(URL_VAR) else {
        println!(
            "skipping the PostgreSQL benches: set {URL_VAR} to a server's URL \
             (e.g. `eval \"$(bash .ci/postgres.sh start)\"`; see README, \"PostgreSQL tests\")"
        );
        return;
    };
    let setup = Setup::new(url);
    if std::env::var("TOPOSTATE_PG_BENCH").as_deref() == Ok("async") {
        async_rows::run(&setup);
        return;
    }
    // The blocking store against the raw synchronous client, alone.
    if std::env::var("TOPOSTATE_PG_BENCH").as_deref() == Ok("sync") {
        interleaved(&setup);
        return;
    }
    async_rows::run(&setup);
    interleaved(&setup);
    interleaved_throughput(&setup);
    process_throughput(&setup);
    let mut c = common::criterion(3, 20);
    add_lan_versioned(&mut c, &setup);
    transition_status(&mut c, &setup);
    throughput(&mut c, &setup);
    c.final_summary();
}
