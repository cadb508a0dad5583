//! `PgStore`: the shared conformance suite against a real PostgreSQL server (each handle its
//! own pool), and what only PostgreSQL has: several OS processes with their own pools on one
//! server, concurrent schema creation, the schema and its fingerprint, retries of
//! transactions the server aborts, corrupt rows, and the connection itself.
//!
//! Every test here needs a server: they are `#[ignore]`d unless run with
//! `--include-ignored` and `TOPOSTATE_PG_URL` set, e.g.
//!
//! ```sh
//! eval "$(bash .ci/postgres.sh start)"
//! cargo test --all-features --test postgres_store -- --include-ignored
//! ```
//!
//! Each test works in a fresh schema of its own (dropped afterwards, best effort), so tests
//! run in parallel against one database. The multi-process tests re-execute this test
//! binary, each running itself again in child mode (an environment variable says which
//! role; see `sql_backends/processes.rs`).

mod pages;

use pages::ListAll;

mod conformance;
mod sql_backends;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postgres::{Client, NoTls};
use topostate::store::{
    ChildEdit, Claim, DeckyRuntime, DeckyState, Entity, LanPatch, NewDecky, NewEdge, NewLan,
    PgStore, Precondition, StoreError, TopologyStore, TypedStore,
};
use topostate::{MAX_VERSION, MutationOp, MutationState, TopologyId, TopologyStatus};

use conformance::{Harness, assert_log_legal};
use sql_backends::key;
use sql_backends::processes::{self, ChildEnv, field};

/// The server the tests use.
const URL_VAR: &str = "TOPOSTATE_PG_URL";

fn pg_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{URL_VAR} is not set: start a server with `eval \"$(bash .ci/postgres.sh start)\"` \
             (see README, \"PostgreSQL tests\") or point it at one of yours"
        )
    })
}

/// A schema name no other test (or earlier run) uses.
fn fresh_schema(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "t_{tag}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A plain client, as an outside program (or an attacker) has, on `schema`.
fn raw(schema: &str) -> Client {
    let mut client = Client::connect(&pg_url(), NoTls).unwrap();
    client
        .execute("SELECT set_config('search_path', $1, false)", &[&schema])
        .unwrap();
    client
}

fn store_on(schema: &str, pool: u32) -> PgStore {
    PgStore::builder(&pg_url())
        .schema(schema)
        .pool_size(pool)
        .connect()
        .unwrap()
}

/// Drops the schema and everything in it; best effort.
fn drop_schema(schema: &str) {
    if let Ok(mut client) = Client::connect(&pg_url(), NoTls) {
        // The name came from `fresh_schema`: a plain identifier.
        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    }
}

/// A fresh schema, dropped when this goes out of scope.
struct Scratch {
    schema: String,
}

impl Scratch {
    fn new(tag: &str) -> Self {
        Self {
            schema: fresh_schema(tag),
        }
    }

    fn store(&self) -> PgStore {
        store_on(&self.schema, 4)
    }

    fn raw(&self) -> Client {
        raw(&self.schema)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        drop_schema(&self.schema);
    }
}

// ---- the conformance suite -------------------------------------------------------------

/// A fresh schema per test; every handle is a new store with its own pool of 2 on it.
struct PgHarness {
    scratch: Scratch,
}

impl Harness for PgHarness {
    fn new() -> Self {
        let scratch = Scratch::new("conf");
        scratch.store();
        Self { scratch }
    }

    fn handle(&self) -> Box<dyn TopologyStore> {
        Box::new(store_on(&self.scratch.schema, 2))
    }

    fn force_version(&self, id: TopologyId, version: u64) {
        let version = i64::try_from(version).unwrap();
        let changed = self
            .scratch
            .raw()
            .execute(
                "UPDATE topologies SET version = $1 WHERE id = $2",
                &[&version, &key(id.get())],
            )
            .unwrap();
        assert_eq!(changed, 1, "no topology {id} to force");
    }
}

conformance_tests!(
    PgHarness,
    ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"
);

/// The same suite through the async face: each handle is an `AsyncPgStore` with its own
/// pool, awaited on a tokio runtime.
mod through_async {
    use std::sync::Arc;

    use super::conformance::Harness;
    use super::conformance::through_async::{AsyncHarness, ThroughAsync};
    use topostate::TopologyId;
    use topostate::store::{AsyncPgStore, AsyncTopologyStore};

    struct AsyncPg {
        inner: super::PgHarness,
        /// Drives the connection each store opens when it connects (later ones belong to
        /// the runtime that awaits the calls).
        runtime: tokio::runtime::Runtime,
    }

    impl AsyncHarness for AsyncPg {
        fn new() -> Self {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            Self {
                inner: super::PgHarness::new(),
                runtime,
            }
        }

        fn async_handle(&self) -> Arc<dyn AsyncTopologyStore> {
            let builder = AsyncPgStore::builder(&super::pg_url())
                .schema(&self.inner.scratch.schema)
                .pool_size(2);
            Arc::new(self.runtime.block_on(builder.connect_async()).unwrap())
        }

        fn force_version(&self, id: TopologyId, version: u64) {
            self.inner.force_version(id, version);
        }
    }

    crate::conformance_tests!(
        ThroughAsync<AsyncPg>,
        ignore =
            "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"
    );
}

// ---- the handle ------------------------------------------------------------------------

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn stores_are_cheap_shareable_handles() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    assert_traits::<PgStore>();
    let scratch = Scratch::new("handle");
    let store = PgStore::builder(&pg_url())
        .schema(&scratch.schema)
        .pool_size(3)
        .connect()
        .unwrap();
    assert_eq!(store.pool_size(), 3);
    assert_eq!(store.schema(), Some(scratch.schema.as_str()));
    let shown = format!("{store:?}");
    assert!(
        shown.contains("PgStore") && shown.contains(&scratch.schema) && shown.contains('3'),
        "{shown}"
    );
    let clone = store.clone();
    let boxed: Box<dyn TopologyStore> = Box::new(clone);
    boxed.create_topology("lab").unwrap();
    assert_eq!(store.all_topologies(None).unwrap().len(), 1);
    // Another schema is another store.
    let other = Scratch::new("handle_other");
    assert!(other.store().all_topologies(None).unwrap().is_empty());
    // Default pool size.
    assert_eq!(
        PgStore::connect_with_schema(&pg_url(), &scratch.schema)
            .unwrap()
            .pool_size(),
        8
    );
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_pool_of_one_serves_many_threads() {
    let scratch = Scratch::new("pool1");
    let store = store_on(&scratch.schema, 1);
    let id = store.create_topology("lab").unwrap().id;
    thread::scope(|scope| {
        for t in 0..4 {
            let store = store.clone();
            scope.spawn(move || {
                for i in 0..10 {
                    store
                        .add_lan(id, NewLan::new(format!("t{t}-{i}"), "10.0.0.0/24"), None)
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(store.topology_detail(id).unwrap().lans.len(), 40);
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_missing_database_is_a_clear_error() {
    let mut config: postgres::Config = pg_url().parse().unwrap();
    config.dbname("topostate_no_such_database");
    // Rebuild a key=value string the store can parse, without a password.
    let mut url = String::from("dbname=topostate_no_such_database");
    for host in config.get_hosts() {
        if let postgres::config::Host::Tcp(h) = host {
            url.push_str(&format!(" host={h}"));
        }
    }
    if let Some(port) = config.get_ports().first() {
        url.push_str(&format!(" port={port}"));
    }
    if let Some(user) = config.get_user() {
        url.push_str(&format!(" user={user}"));
    }
    let e = PgStore::connect(&url).unwrap_err();
    let message = e.to_string();
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    assert!(message.contains("topostate_no_such_database"), "{message}");
    println!("{message}");
}

// ---- the schema and its fingerprint ----------------------------------------------------

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn the_schema_is_created_once_and_stamped() {
    let scratch = Scratch::new("stamp");
    for _ in 0..3 {
        scratch.store();
    }
    let mut raw = scratch.raw();
    let rows: i64 = raw
        .query_one("SELECT count(*) FROM meta", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 2, "one schema version and one fingerprint");
    let fingerprint: String = raw
        .query_one("SELECT value FROM meta WHERE key = 'fingerprint'", &[])
        .unwrap()
        .get(0);
    assert!(
        fingerprint.contains(
            "topology status: pending,deploying,active,degraded,failed,tearing_down,torn_down"
        ),
        "{fingerprint}"
    );
    // The tables live in the test's schema, nowhere else.
    let tables: Vec<String> = raw
        .query(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
            &[&scratch.schema],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "deckies",
            "edges",
            "lans",
            "meta",
            "mutations",
            "status_events",
            "topologies"
        ]
    );
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_different_declaration_is_refused_on_connect() {
    let scratch = Scratch::new("fingerprint");
    scratch.store().create_topology("lab").unwrap();
    let mut raw = scratch.raw();
    let original: String = raw
        .query_one("SELECT value FROM meta WHERE key = 'fingerprint'", &[])
        .unwrap()
        .get(0);
    let open = || PgStore::connect_with_schema(&pg_url(), &scratch.schema);
    let mut set_fingerprint = |value: &str| {
        raw.execute(
            "UPDATE meta SET value = $1 WHERE key = 'fingerprint'",
            &[&value],
        )
        .unwrap();
    };
    sql_backends::a_different_declaration_is_refused(
        &original,
        &mut set_fingerprint,
        open,
        &scratch.schema,
    );
}

/// A schema of version 1 (before pages and leases) is migrated on connect: it gains the
/// index a page of mutations reads, the lease columns and the clock function, and is
/// stamped version 3.
#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_schema_1_gains_the_mutations_page_index() {
    let scratch = Scratch::new("v1");
    let lab = scratch.store().create_topology("lab").unwrap();
    let mut raw = scratch.raw();
    back_to_schema_1(&mut raw);
    let store = scratch.store();
    let row = raw
        .query_one(
            "SELECT (SELECT value FROM meta WHERE key = 'schema_version'),
                    (SELECT count(*) FROM pg_indexes
                     WHERE schemaname = current_schema() AND indexname = 'mutations_topology')",
            &[],
        )
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i64>(1)),
        ("3".to_owned(), 1)
    );
    assert_eq!(store.get_topology(lab.id).unwrap().name, "lab");
}

/// Turns the schema `raw` is on back into version 1, as an old build left it.
fn back_to_schema_1(raw: &mut Client) {
    raw.batch_execute(
        "DROP INDEX mutations_topology;
         DROP FUNCTION unixepoch(text);
         ALTER TABLE mutations DROP COLUMN claimed_at, DROP COLUMN lease_until,
             DROP COLUMN holder, DROP COLUMN attempts, DROP COLUMN token, DROP COLUMN edited_by;
         UPDATE meta SET value = '1' WHERE key = 'schema_version';
         UPDATE meta SET value = replace(value, 'schema 3;', 'schema 1;') WHERE key = 'fingerprint';",
    )
    .unwrap();
}

/// A migration locks every table before it changes any (a write of one statement reads
/// the stamp unlocked and relies on it), parents first; a write holding a table longer
/// than one attempt waits (a lock timeout) does not make it fail: it lets go and tries
/// again until the write is done.
#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_migration_locks_every_table_and_outwaits_a_write_holding_one() {
    let scratch = Scratch::new("v1_locks");
    drop(scratch.store());
    let mut raw = scratch.raw();
    back_to_schema_1(&mut raw);
    // A write of the old build's holding `mutations`, the last table a migration locks.
    let mut writer = scratch.raw();
    let writer_pid: i32 = writer
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    writer
        .batch_execute("BEGIN; LOCK TABLE mutations IN ROW EXCLUSIVE MODE")
        .unwrap();
    let migrating = thread::spawn({
        let schema = scratch.schema.clone();
        move || PgStore::connect_with_schema(&pg_url(), &schema)
    });
    // The migration waiting on the write holds every other table already. (Sampled until
    // seen: between one attempt's lock timeout and the next attempt's locks, it holds
    // fewer, and the two views below are not read at one instant.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = None;
    while seen != Some(5) {
        assert!(
            Instant::now() < deadline,
            "the migration never waited holding the other five tables (last seen: {seen:?})"
        );
        thread::sleep(Duration::from_millis(5));
        seen = raw
            .query_opt(
                "SELECT count(*) FILTER (WHERE l.granted AND l.mode = 'AccessExclusiveLock' \
                                          AND c.relname = ANY ($2)) \
                 FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid \
                 LEFT JOIN pg_class c ON c.oid = l.relation \
                 WHERE $1 = ANY (pg_blocking_pids(a.pid)) GROUP BY a.pid",
                &[&writer_pid, &topostate::store::SQL_TABLES.as_slice()],
            )
            .unwrap()
            .map(|row| row.get::<_, i64>(0));
    }
    // Held for several of the migration's waits (200 ms each).
    thread::sleep(Duration::from_millis(1200));
    writer.batch_execute("COMMIT").unwrap();
    let store = migrating.join().unwrap().unwrap();
    let version: String = raw
        .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, "3");
    assert!(
        store
            .list_topologies(None, topostate::store::PageRequest::first(10))
            .is_ok()
    );
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_newer_or_garbled_schema_version_is_refused() {
    let scratch = Scratch::new("newer");
    scratch.store();
    let mut raw = scratch.raw();
    sql_backends::a_newer_schema_is_refused(
        &mut |version| {
            raw.execute(
                "UPDATE meta SET value = $1 WHERE key = 'schema_version'",
                &[&version.to_string()],
            )
            .unwrap();
        },
        || PgStore::connect_with_schema(&pg_url(), &scratch.schema),
    );
    raw.execute(
        "UPDATE meta SET value = 'one' WHERE key = 'schema_version'",
        &[],
    )
    .unwrap();
    let e = PgStore::connect_with_schema(&pg_url(), &scratch.schema).unwrap_err();
    assert!(e.to_string().contains("the text 'one'"), "{e}");
}

// ---- a schema changed under an open store ---------------------------------------------

/// A newer build's migration to the next schema version, as `migrate` runs it: the stamp
/// first (which waits for the old build's open write transactions), then every table
/// locked (which waits for its writes of one statement), then a table altered.
fn migrate_to_next() -> String {
    let (this, next) = (sql_backends::THIS_VERSION, sql_backends::NEXT_VERSION);
    format!(
        "UPDATE meta SET value = '{next}' WHERE key = 'schema_version';
         UPDATE meta SET value = replace(value, 'postgres schema {this};', 'postgres schema {next};')
             WHERE key = 'fingerprint';
         LOCK TABLE {} IN ACCESS EXCLUSIVE MODE;
         ALTER TABLE lans ADD COLUMN vlan integer;",
        topostate::store::SQL_TABLES.join(", ")
    )
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_schema_migrated_under_an_open_store_is_refused() {
    let scratch = Scratch::new("upgrade");
    let store = scratch.store();
    let counter = std::sync::Mutex::new(scratch.raw());
    sql_backends::a_schema_change_under_an_open_store_is_refused(
        &store,
        || {
            scratch
                .raw()
                .batch_execute(&format!("BEGIN; {} COMMIT;", migrate_to_next()))
                .unwrap();
        },
        |table| {
            counter
                .lock()
                .unwrap()
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .unwrap()
                .get(0)
        },
    );
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_write_waiting_on_a_migration_sees_its_version() {
    // The migration has restamped the schema but not committed; a write that starts now
    // waits on the stamp's row, and once the migration commits it is refused: it never
    // writes in the old layout after the new one is in place.
    let scratch = Scratch::new("upgrade_race");
    let store = scratch.store();
    let lab = store.create_topology("lab").unwrap();
    let mut migration = scratch.raw();
    migration
        .batch_execute(&format!("BEGIN; {}", migrate_to_next()))
        .unwrap();
    let writer = thread::spawn({
        let store = store.clone();
        move || store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
    });
    // Bounded wait until the writer is blocked by the migration (on the stamp's row).
    until_someone_waits_on(&mut migration);
    let mut watcher = scratch.raw();
    migration.batch_execute("COMMIT").unwrap();
    sql_backends::assert_schema_changed(writer.join().unwrap(), "add_lan during a migration");
    let lans: i64 = watcher
        .query_one("SELECT count(*) FROM lans", &[])
        .unwrap()
        .get(0);
    assert_eq!(lans, 0);
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_claim_or_mark_waiting_on_a_migration_sees_its_version() {
    // A claim and a mark are one statement each, which reads the stamp without a lock.
    // The migration has restamped the schema and locked the tables, but not committed; a
    // claim and a mark that start now wait on a table, and once the migration commits
    // they are refused: neither writes in the old layout after the new one is in place.
    let scratch = Scratch::new("upgrade_trip");
    let store = scratch.store();
    let live = |name: &str| {
        let id = store.create_topology(name).unwrap().id;
        for to in [TopologyStatus::Deploying, TopologyStatus::Active] {
            store
                .transition_status(id, to, None, Precondition::none())
                .unwrap();
        }
        let mutation = store
            .enqueue_mutation(id, MutationOp::AddLan, "{}", None)
            .unwrap();
        (id, mutation.id)
    };
    let (held, held_mutation) = live("held");
    let (queued, queued_mutation) = live("queued");
    let Claim::Claimed { lease, .. } = store.claim_next_mutation(held).unwrap() else {
        panic!("one mutation is pending");
    };
    let mut migration = scratch.raw();
    migration
        .batch_execute(&format!("BEGIN; {}", migrate_to_next()))
        .unwrap();
    let claim = thread::spawn({
        let store = store.clone();
        move || store.claim_next_mutation(queued)
    });
    let mark = thread::spawn({
        let store = store.clone();
        move || store.mark_mutation_applied(lease)
    });
    until_waiting_on(&mut migration, 2);
    migration.batch_execute("COMMIT").unwrap();
    let mut watcher = scratch.raw();
    sql_backends::assert_schema_changed(claim.join().unwrap(), "a claim during a migration");
    sql_backends::assert_schema_changed(mark.join().unwrap(), "a mark during a migration");
    let rows = watcher
        .query("SELECT id, state, attempts FROM mutations ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.get::<_, i64>(0),
                row.get::<_, String>(1),
                row.get::<_, i64>(2),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(
        rows,
        [
            (key(held_mutation.get()), String::from("applying"), 1),
            (key(queued_mutation.get()), String::from("pending"), 0),
        ]
    );
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn sql_checks_refuse_what_the_api_cannot_express() {
    let scratch = Scratch::new("checks");
    let store = scratch.store();
    let lab = store.create_topology("lab").unwrap();
    let id = key(lab.id.get());
    let mut raw = scratch.raw();
    let mut refused = |sql: &str| {
        let e = raw.execute(sql, &[&id]).unwrap_err();
        let code = e.code().map(|c| c.code().to_owned());
        assert_eq!(code.as_deref(), Some("23514"), "{sql}: {e}");
    };
    refused("UPDATE topologies SET status = 'bogus' WHERE id = $1");
    refused("UPDATE topologies SET status = 'Active' WHERE id = $1");
    refused("UPDATE topologies SET version = 0 WHERE id = $1");
    refused(
        "INSERT INTO status_events (topology_id, from_status, to_status, at) \
         VALUES ($1, 'pending', 'exploded', 0)",
    );
    refused(
        "INSERT INTO mutations (topology_id, op, payload, state, requested_at) \
         VALUES ($1, 'noop', '{}', 'pending', 0)",
    );
    refused(
        "INSERT INTO mutations (topology_id, op, payload, state, requested_at) \
         VALUES ($1, 'add_lan', '{}', 'done', 0)",
    );
    refused(
        "INSERT INTO deckies (topology_id, name, services, state) \
         VALUES ($1, 'web', '{}', 'stopped')",
    );
    refused(
        "INSERT INTO deckies (topology_id, name, services, state) \
         VALUES ($1, 'web', ARRAY['ssh', NULL], 'running')",
    );
    // BIGINT: `version + 1` at the maximum is an error, never a float.
    raw.execute(
        "UPDATE topologies SET version = 9223372036854775807 WHERE id = $1",
        &[&id],
    )
    .unwrap();
    let e = raw
        .execute(
            "UPDATE topologies SET version = version + 1 WHERE id = $1",
            &[&id],
        )
        .unwrap_err();
    assert_eq!(
        e.code().map(postgres::error::SqlState::code),
        Some("22003"),
        "{e}"
    );
    let row = store.get_topology(lab.id).unwrap();
    assert_eq!(row.status, TopologyStatus::Pending);
    assert_eq!(row.version, MAX_VERSION);
}

// ---- stored values ---------------------------------------------------------------------

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn values_round_trip_exactly() {
    let scratch = Scratch::new("values");
    sql_backends::values_round_trip_exactly(&scratch.store(), |web| {
        // Stored as a text[] other tools read natively.
        scratch
            .raw()
            .query_one(
                "SELECT services FROM deckies WHERE id = $1",
                &[&key(web.get())],
            )
            .unwrap()
            .get(0)
    });
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn nul_characters_are_refused_not_lost() {
    let scratch = Scratch::new("nul");
    let store = scratch.store();
    let lab = store.create_topology("lab").unwrap();
    let e = store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24\0"), Some(1))
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "subnet",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("NUL"), "{e}");
    let mut decky = NewDecky::new("web");
    decky.services = vec![String::from("ss\0h")];
    let e = store.add_decky(lab.id, decky, Some(1)).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "decky service",
                ..
            }
        ),
        "{e:?}"
    );
    let lan = store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), None)
        .unwrap();
    let e = store.set_lan_network_id(lan.id, Some("n\0")).unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e:?}");
    // Not found still comes first.
    let e = store
        .set_lan_network_id(topostate::store::LanId::new(999_999), Some("n\0"))
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotFound {
                entity: Entity::Lan,
                ..
            }
        ),
        "{e:?}"
    );
    let e = store
        .transition_status(
            lab.id,
            TopologyStatus::Deploying,
            Some("\0"),
            Precondition::none(),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "reason",
                ..
            }
        ),
        "{e:?}"
    );
    let row = store.get_topology(lab.id).unwrap();
    assert_eq!((row.status, row.version), (TopologyStatus::Pending, 1));
    assert_eq!(store.topology_detail(lab.id).unwrap().lans.len(), 1);
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn ids_are_never_reused_and_huge_ids_are_not_found() {
    let scratch = Scratch::new("ids");
    let store = scratch.store();
    sql_backends::ids_are_never_reused(&store);
    sql_backends::ids_beyond_sql_integers_are_not_found(&store);
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn cascade_delete_leaves_no_row_behind() {
    let scratch = Scratch::new("cascade");
    let mut raw = scratch.raw();
    sql_backends::delete_leaves_no_row_behind(&scratch.store(), |table, topology| {
        raw.query_one(
            &format!("SELECT count(*) FROM {table} WHERE topology_id = $1"),
            &[&topology],
        )
        .unwrap()
        .get(0)
    });
}

// ---- corrupt rows ----------------------------------------------------------------------

/// A raw client on the schema with every `CHECK` the store made dropped: for corrupting on
/// purpose, as a hand-made table or another program might.
fn raw_unchecked(scratch: &Scratch) -> Client {
    let mut raw = scratch.raw();
    raw.batch_execute(
        "ALTER TABLE topologies DROP CONSTRAINT topologies_status_known;
         ALTER TABLE topologies DROP CONSTRAINT topologies_version_positive;
         ALTER TABLE status_events DROP CONSTRAINT status_events_to_known;
         ALTER TABLE mutations DROP CONSTRAINT mutations_op_known;
         ALTER TABLE mutations DROP CONSTRAINT mutations_state_known;
         ALTER TABLE deckies DROP CONSTRAINT deckies_state_known;
         ALTER TABLE deckies DROP CONSTRAINT deckies_services_flat;",
    )
    .unwrap();
    raw
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn corrupt_rows_are_named_and_other_rows_still_read() {
    let scratch = Scratch::new("corrupt");
    let store = scratch.store();
    let mut raw = raw_unchecked(&scratch);
    let mut corrupt = |sql: &str, id: i64| {
        raw.execute(sql, &[&id]).unwrap();
    };
    sql_backends::corrupt_status_is_named(&store, &mut corrupt);
    sql_backends::corrupt_versions_are_named(
        &store,
        &mut corrupt,
        &[
            ("0", "invalid topology version 0"),
            ("-3", "invalid topology version -3"),
        ],
    );
    sql_backends::corrupt_event_is_named(&store, &mut corrupt);
    sql_backends::corrupt_mutation_is_named(&store, &mut corrupt);
    sql_backends::corrupt_decky_is_named(&store, &mut corrupt, "ARRAY['ssh', NULL]", &["services"]);
}

// ---- retries: deadlocks, lock timeouts -------------------------------------------------

/// Sessions (other than `raw`'s own) currently waiting for a lock `raw` holds.
fn waiting_on(raw: &mut impl postgres::GenericClient) -> i64 {
    // Inside a transaction the server answers from a snapshot of the sessions taken at its
    // first look, unless told to look again.
    raw.execute("SELECT pg_stat_clear_snapshot()", &[]).unwrap();
    raw.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))",
        &[],
    )
    .unwrap()
    .get(0)
}

/// Waits (bounded) until someone waits on a lock of `raw`.
fn until_someone_waits_on(raw: &mut impl postgres::GenericClient) {
    until_waiting_on(raw, 1);
}

/// Waits (bounded: 10 s) until `sessions` sessions wait on locks of `raw`.
fn until_waiting_on(raw: &mut impl postgres::GenericClient, sessions: i64) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = waiting_on(raw);
        if waiting >= sessions {
            return;
        }
        assert!(
            Instant::now() < until,
            "{waiting} of {sessions} sessions started waiting for the locks"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_deadlock_victim_is_retried_inside_the_store() {
    // An outside program takes the locks in the opposite order to the store's (a LAN row,
    // then its topology's row) while the store's edit holds the topology and waits for the
    // LAN. The server aborts one of the two; the store is the one that waited first (and the
    // outside session raises its own deadlock_timeout when allowed to), so it is the victim,
    // and it must come back with a success, not an error.
    let scratch = Scratch::new("deadlock");
    let store = scratch.store();
    let lab = store.create_topology("lab").unwrap();
    let lan = store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
        .unwrap();
    let mut outside = scratch.raw();
    // Superusers only; the test holds without it (the store waits first).
    let _ = outside.batch_execute("SET deadlock_timeout = '30s'");
    let mut tx = outside.transaction().unwrap();
    tx.execute(
        "SELECT 1 FROM lans WHERE id = $1 FOR UPDATE",
        &[&key(lan.id.get())],
    )
    .unwrap();
    let started = Instant::now();
    let editor = thread::spawn({
        let store = store.clone();
        move || {
            let rename = LanPatch::new().with_name("renamed");
            store.update_lan(lab.id, lan.id, rename, Some(2))
        }
    });
    until_someone_waits_on(&mut tx);
    // Closes the cycle: blocks until the server aborts the store's transaction.
    tx.execute(
        "SELECT 1 FROM topologies WHERE id = $1 FOR UPDATE",
        &[&key(lab.id.get())],
    )
    .unwrap();
    tx.execute(
        "UPDATE lans SET subnet = '10.9.9.0/24' WHERE id = $1",
        &[&key(lan.id.get())],
    )
    .unwrap();
    tx.commit().unwrap();
    let edited = editor.join().unwrap().unwrap();
    let waited = started.elapsed();
    println!("the store's edit survived a deadlock and returned after {waited:?}");
    assert_eq!(edited.version, 3);
    assert!(
        waited >= Duration::from_millis(500),
        "no deadlock happened ({waited:?})"
    );
    // Both writes landed: the outside one first, then the store's retry.
    let detail = store.topology_detail(lab.id).unwrap();
    assert_eq!(detail.lans[0].name, "renamed");
    assert_eq!(detail.lans[0].subnet, "10.9.9.0/24");
    assert_eq!(detail.topology.version, 3);
}

/// The server's URL with `lock_timeout` set to `ms` milliseconds for every session.
fn lock_timeout_url(ms: u32) -> String {
    let url = pg_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20lock_timeout%3D{ms}")
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn lock_timeouts_are_retried_then_reported_clearly() {
    let scratch = Scratch::new("lock_timeout");
    let url = lock_timeout_url(100);
    let shown: String = Client::connect(&url, NoTls)
        .unwrap()
        .query_one("SHOW lock_timeout", &[])
        .unwrap()
        .get(0);
    assert_eq!(shown, "100ms", "the URL's options reach the sessions");
    let store = PgStore::builder(&url)
        .schema(&scratch.schema)
        .pool_size(2)
        .connect()
        .unwrap();
    let lab = store.create_topology("lab").unwrap();

    // Held briefly: the store's attempts time out, retry, and one gets through.
    let mut outside = scratch.raw();
    let mut tx = outside.transaction().unwrap();
    tx.execute(
        "SELECT 1 FROM topologies WHERE id = $1 FOR UPDATE",
        &[&key(lab.id.get())],
    )
    .unwrap();
    let editor = thread::spawn({
        let store = store.clone();
        move || store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
    });
    // Past the first attempt's timeout, well within the bounded retries (about 1 s).
    until_someone_waits_on(&mut tx);
    thread::sleep(Duration::from_millis(250));
    tx.commit().unwrap();
    assert_eq!(editor.join().unwrap().unwrap().version, 2);

    // Held for good: a bounded number of attempts, then a clear error, nothing written.
    let mut tx = outside.transaction().unwrap();
    tx.execute(
        "SELECT 1 FROM topologies WHERE id = $1 FOR UPDATE",
        &[&key(lab.id.get())],
    )
    .unwrap();
    let started = Instant::now();
    let e = store
        .add_lan(lab.id, NewLan::new("lan-a", "10.0.1.0/24"), Some(2))
        .unwrap_err();
    let took = started.elapsed();
    tx.rollback().unwrap();
    let message = e.to_string();
    println!("gave up after {took:?}: {message}");
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    assert!(message.contains("lock timeout"), "{message}");
    assert!(message.contains("attempts"), "{message}");
    assert!(message.contains("edit"), "{message}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(store.get_topology(lab.id).unwrap().version, 2);
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn cross_topology_churn_never_surfaces_a_backend_error() {
    // Many threads, each its own store, doing everything at once across a few topologies:
    // child edits, edges whose ends live in other topologies, runtime writes on children of
    // topologies being deleted and recreated, transitions, queue traffic, resync flags.
    // Every outcome must be a success or a contract error; lock order (topology row, then
    // children; one topology per transaction) leaves the server no deadlock to break.
    const THREADS: usize = 8;
    const OPS: usize = 150;
    let scratch = Scratch::new("churn");
    let setup = scratch.store();
    let names: Vec<String> = (0..4).map(|i| format!("churn-{i}")).collect();
    for name in &names {
        setup.create_topology(name).unwrap();
    }
    let barrier = Barrier::new(THREADS);
    let until = Instant::now() + Duration::from_mins(1);
    let tallies: Vec<BTreeMap<String, usize>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (scratch, names, barrier) = (&scratch, &names, &barrier);
                scope.spawn(move || {
                    let store = store_on(&scratch.schema, 2);
                    let mut tally = BTreeMap::new();
                    barrier.wait();
                    for i in 0..OPS {
                        if Instant::now() > until {
                            break;
                        }
                        let outcome = churn_step(&store, names, t, i);
                        let label = match outcome {
                            Ok(()) => String::from("ok"),
                            Err(StoreError::Backend(e)) => {
                                panic!("thread {t} op {i}: backend error: {e}")
                            }
                            Err(StoreError::Corrupt { .. }) => {
                                panic!("thread {t} op {i}: corrupt row")
                            }
                            Err(e) => error_kind(&e),
                        };
                        *tally.entry(label).or_insert(0) += 1;
                    }
                    tally
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut total: BTreeMap<String, usize> = BTreeMap::new();
    for tally in tallies {
        for (k, v) in tally {
            *total.entry(k).or_insert(0) += v;
        }
    }
    println!("cross-topology churn, {THREADS} threads x {OPS} ops: {total:?}");
    assert!(total.get("ok").copied().unwrap_or(0) > THREADS * OPS / 10);
    // Every topology left is consistent.
    for t in setup.all_topologies(None).unwrap() {
        assert_log_legal(&setup, t.id);
        let detail = setup.topology_detail(t.id).unwrap();
        for edge in &detail.edges {
            assert!(detail.deckies.iter().any(|d| d.id == edge.decky));
            assert!(detail.lans.iter().any(|l| l.id == edge.lan));
        }
        let applying = setup
            .all_mutations(t.id, Some(MutationState::Applying))
            .unwrap();
        assert!(applying.len() <= 1, "{applying:?}");
    }
}

fn error_kind(e: &StoreError) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// One pseudo-random step of the churn test.
fn churn_step(store: &PgStore, names: &[String], t: usize, i: usize) -> Result<(), StoreError> {
    let pick = |salt: usize| (t * 31 + i * 17 + salt * 7) % names.len();
    let find = |n: usize| -> Result<TopologyId, StoreError> {
        store
            .all_topologies(None)?
            .into_iter()
            .find(|r| r.name == names[n])
            .map(|r| r.id)
            .ok_or(StoreError::NotFound {
                entity: Entity::Topology,
                id: 0,
            })
    };
    let here = pick(0);
    let Ok(id) = find(here) else {
        // Deleted by someone: bring it back (or lose the race to whoever did).
        store.create_topology(&names[here])?;
        return Ok(());
    };
    let detail = store.topology_detail(id)?;
    let other = find(pick(1)).and_then(|o| store.topology_detail(o));
    match (t + i) % 9 {
        0 => {
            store.add_lan(
                id,
                NewLan::new(format!("l{t}-{i}"), "10.0.0.0/24"),
                Some(detail.topology.version),
            )?;
        }
        1 => {
            let decky = store.add_decky(id, NewDecky::new(format!("d{t}-{i}")), None)?;
            if let Some(lan) = detail.lans.first() {
                store.add_edge(id, NewEdge::new(decky.id, lan.id), None)?;
            }
        }
        2 => {
            // An edge whose LAN lives in another topology: a foreign end, or not found.
            if let (Some(decky), Ok(other)) = (detail.deckies.first(), &other)
                && let Some(lan) = other.lans.first()
            {
                store.add_edge(id, NewEdge::new(decky.id, lan.id), None)?;
            }
        }
        3 => {
            // Runtime writes on another topology's children, which may be going away.
            if let Ok(other) = &other {
                if let Some(decky) = other.deckies.last() {
                    store.set_decky_runtime(
                        decky.id,
                        &DeckyRuntime::new().with_state(DeckyState::Running),
                    )?;
                }
                if let Some(lan) = other.lans.last() {
                    store.set_lan_network_id(lan.id, Some("net"))?;
                }
            }
        }
        4 => {
            // Forward along the lifecycle, believing what was read.
            use TopologyStatus::*;
            let to = match detail.topology.status {
                Pending => Deploying,
                Deploying => Active,
                Active => Degraded,
                Degraded | Failed => TearingDown,
                TearingDown => TornDown,
                TornDown => return store.delete_topology(id, Some(detail.topology.version)),
            };
            store.transition_status(
                id,
                to,
                Some("churn"),
                Precondition::status(detail.topology.status),
            )?;
        }
        5 => {
            store.enqueue_mutation(id, MutationOp::AddLan, "{}", Some(detail.topology.version))?;
        }
        6 => {
            if let Claim::Claimed { lease: claim, .. } = store.claim_next_mutation(id)? {
                let lan = NewLan::new(format!("live{t}-{i}"), "10.0.0.0/24");
                let applied = store.apply_live(&claim, &[ChildEdit::AddLan(lan)]);
                match applied {
                    Ok(_) => {
                        store.mark_mutation_applied(claim)?;
                    }
                    Err(e) => {
                        store.mark_mutation_failed(claim, &e.to_string())?;
                    }
                }
            }
        }
        7 => {
            store.set_needs_resync(id, i.is_multiple_of(2))?;
            if let Some(lan) = detail.lans.first() {
                store.delete_lan(id, lan.id, None)?;
            }
        }
        _ => {
            // Delete (only from a deletable status), to be recreated by a later step.
            store.delete_topology(id, Some(detail.topology.version))?;
        }
    }
    Ok(())
}

// ---- several processes on one server ---------------------------------------------------

/// The prefix of the environment variables that tell a child process its role.
const CHILD: &str = "TOPOSTATE_PG_CHILD";
const WRITES_PER_CHILD: usize = 60;
const STEPS_PER_CHILD: usize = 240;

/// The child side of the multi-process tests: each test starts with `ChildEnv::from_env`
/// and, in a child process its parent started, comes here instead of being the parent.
fn child_process(child: &ChildEnv) {
    let (schema, index, topologies) = (&child.place, child.index, &child.topologies);
    let until = Instant::now() + Duration::from_mins(1);
    match child.role.as_str() {
        // Its own pool, as a separate editor host would have.
        "writer" => processes::writer(&store_on(schema, 2), child, WRITES_PER_CHILD),
        "mixed" => {
            let store = store_on(schema, 3);
            child.wait_for_start();
            let mut enqueued = Vec::new();
            let mut claimed = Vec::new();
            let mut transitions: BTreeMap<u64, usize> = BTreeMap::new();
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            let mut steps = 0;
            for i in 0..STEPS_PER_CHILD {
                if Instant::now() > until {
                    break;
                }
                steps += 1;
                // Four steps on one topology (enqueue, claim, transition, read), then the
                // next; the processes start on different topologies and meet on all.
                let id = topologies[(i / 4 + index) % topologies.len()];
                let label = match i % 4 {
                    0 => {
                        let seen = store.get_topology(id).unwrap().version;
                        let payload = format!("{{\"p\":{index},\"i\":{i}}}");
                        match store.enqueue_mutation(id, MutationOp::AddLan, &payload, Some(seen)) {
                            Ok(edited) => {
                                assert_eq!(edited.version, seen + 1);
                                enqueued.push(format!("{}:{}", id, edited.id));
                                "enqueued"
                            }
                            Err(StoreError::VersionConflict(c)) => {
                                assert!(c.current > c.expected && c.expected == seen);
                                "enqueue_conflict"
                            }
                            Err(e) => panic!("enqueue: {e}"),
                        }
                    }
                    1 => match store.claim_next_mutation(id).unwrap() {
                        Claim::Claimed {
                            mutation,
                            lease: claim,
                        } => {
                            assert_eq!(mutation.state, MutationState::Applying);
                            let lan = NewLan::new(format!("live-p{index}-{i}"), "10.0.0.0/24");
                            store.apply_live(&claim, &[ChildEdit::AddLan(lan)]).unwrap();
                            let marked = if i.is_multiple_of(3) {
                                store.mark_mutation_failed(claim, "on purpose").unwrap()
                            } else {
                                store.mark_mutation_applied(claim).unwrap()
                            };
                            claimed.push(format!("{}:{}", id, marked.id));
                            "claimed"
                        }
                        Claim::Busy { .. } => "busy",
                        Claim::Empty => "empty",
                    },
                    2 => {
                        let seen = store.get_topology(id).unwrap().status;
                        let to = if seen == TopologyStatus::Active {
                            TopologyStatus::Degraded
                        } else {
                            TopologyStatus::Active
                        };
                        match store.transition_status(
                            id,
                            to,
                            Some(&format!("process {index}")),
                            Precondition::status(seen),
                        ) {
                            Ok(_) => {
                                *transitions.entry(id.get()).or_insert(0) += 1;
                                "transitioned"
                            }
                            Err(StoreError::StaleStatus { expected, .. }) => {
                                assert_eq!(expected, seen);
                                "stale"
                            }
                            Err(e) => panic!("transition: {e}"),
                        }
                    }
                    _ => {
                        store.set_needs_resync(id, i.is_multiple_of(2)).unwrap();
                        store.all_mutations(id, None).unwrap();
                        "read"
                    }
                };
                *counts.entry(label).or_insert(0) += 1;
            }
            let transitions: Vec<String> = transitions
                .iter()
                .map(|(id, n)| format!("{id}:{n}"))
                .collect();
            let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            println!(
                "RESULT steps={steps} enq={} claimed={} transitions={} counts={}",
                enqueued.join(","),
                claimed.join(","),
                transitions.join(","),
                counts.join(",")
            );
        }
        "opener" => processes::opener(child, || Box::new(store_on(schema, 1))),
        other => panic!("unknown child role {other}"),
    }
}

/// Starts `n` children in `role` on `schema`; their `RESULT` lines.
fn run_children(role: &str, n: usize, schema: &str, topologies: &[TopologyId]) -> Vec<String> {
    let lead = Duration::from_millis(1500);
    processes::run_children(CHILD, role, n, schema, topologies, lead, &[])
}

fn pairs(list: &str) -> impl Iterator<Item = (u64, u64)> + '_ {
    list.split(',').filter(|s| !s.is_empty()).map(|p| {
        let (a, b) = p.split_once(':').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    })
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn processes_racing_versioned_writes_on_one_topology_lose_no_update() {
    if let Some(child) = ChildEnv::from_env(CHILD) {
        return child_process(&child);
    }
    const PROCESSES: usize = 4;
    let scratch = Scratch::new("proc_one");
    let store = scratch.store();
    let lab = store.create_topology("lab").unwrap();
    let started = Instant::now();
    let results = run_children("writer", PROCESSES, &scratch.schema, &[lab.id]);
    processes::check_writers(&store, lab.id, &results, WRITES_PER_CHILD, started);
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn processes_hammering_many_topologies_keep_every_invariant() {
    if let Some(child) = ChildEnv::from_env(CHILD) {
        return child_process(&child);
    }
    const PROCESSES: usize = 4;
    const TOPOLOGIES: usize = 6;
    let scratch = Scratch::new("proc_many");
    let store = scratch.store();
    let ids: Vec<TopologyId> = (0..TOPOLOGIES)
        .map(|i| {
            let lab = store.create(&format!("lab-{i}")).unwrap();
            let lab = store.advance(lab, topostate::Topology::deploy).unwrap();
            store
                .advance(lab, topostate::Topology::activate)
                .unwrap()
                .id()
        })
        .collect();
    let started = Instant::now();
    let results = run_children("mixed", PROCESSES, &scratch.schema, &ids);
    let elapsed = started.elapsed();

    let mut enqueued: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut claimed: HashMap<u64, usize> = HashMap::new();
    let mut transitions: BTreeMap<u64, usize> = BTreeMap::new();
    let mut steps = 0;
    for (index, result) in results.iter().enumerate() {
        println!(
            "process {index}: {} steps, {}",
            field(result, "steps"),
            field(result, "counts")
        );
        steps += field(result, "steps").parse::<usize>().unwrap();
        for (t, m) in pairs(field(result, "enq")) {
            assert!(
                enqueued.entry(t).or_default().insert(m),
                "mutation {m} twice"
            );
        }
        for (_, m) in pairs(field(result, "claimed")) {
            *claimed.entry(m).or_insert(0) += 1;
        }
        for (t, n) in pairs(field(result, "transitions")) {
            *transitions.entry(t).or_insert(0) += usize::try_from(n).unwrap();
        }
    }
    assert_eq!(
        steps,
        PROCESSES * STEPS_PER_CHILD,
        "a child ran out of time"
    );
    assert!(
        claimed.values().all(|&n| n == 1),
        "a mutation was claimed twice: {claimed:?}"
    );

    let mut totals = (0, 0, 0);
    for &id in &ids {
        let record = store.get_topology(id).unwrap();
        let queued = enqueued.remove(&id.get()).unwrap_or_default();
        // Versions: 1 + one bump per successful versioned enqueue, nothing else.
        assert_eq!(
            record.version,
            1 + queued.len() as u64,
            "topology {id}: an update was lost or invented"
        );
        let mutations = store.all_mutations(id, None).unwrap();
        let stored: BTreeSet<u64> = mutations.iter().map(|m| m.id.get()).collect();
        assert_eq!(
            stored, queued,
            "topology {id}: queue differs from accepted enqueues"
        );
        for m in &mutations {
            let was_claimed = claimed.contains_key(&m.id.get());
            match m.state {
                MutationState::Applied | MutationState::Failed => assert!(was_claimed, "{m:?}"),
                MutationState::Pending => assert!(!was_claimed, "{m:?}"),
                MutationState::Applying => panic!("left applying: {m:?}"),
            }
        }
        // The event log: the two setup steps plus every successful transition, a legal path.
        let events = assert_log_legal(&store, id);
        let moved = transitions.get(&id.get()).copied().unwrap_or(0);
        assert_eq!(events.len(), 2 + moved, "topology {id}");
        // Whatever is left pending is claimed oldest first.
        let mut pending: Vec<_> = mutations
            .iter()
            .filter(|m| m.state == MutationState::Pending)
            .map(|m| m.id)
            .collect();
        pending.sort();
        if record.status == TopologyStatus::Active || record.status == TopologyStatus::Degraded {
            for expected in pending {
                match store.claim_next_mutation(id).unwrap() {
                    Claim::Claimed {
                        mutation,
                        lease: claim,
                    } => {
                        assert_eq!(mutation.id, expected);
                        store.mark_mutation_applied(claim).unwrap();
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        totals.0 += queued.len();
        totals.1 += moved;
        totals.2 += detail_lans(&store, id);
    }
    println!(
        "{PROCESSES} processes x {STEPS_PER_CHILD} steps over {TOPOLOGIES} topologies in \
         {elapsed:?}: {} enqueued, {} claimed, {} transitions, {} live LANs",
        totals.0,
        claimed.len(),
        totals.1,
        totals.2
    );
}

fn detail_lans(store: &PgStore, id: TopologyId) -> usize {
    store.topology_detail(id).unwrap().lans.len()
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn processes_creating_one_schema_at_once_all_succeed() {
    if let Some(child) = ChildEnv::from_env(CHILD) {
        return child_process(&child);
    }
    const PROCESSES: usize = 6;
    let scratch = Scratch::new("proc_open");
    let results = run_children("opener", PROCESSES, &scratch.schema, &[]);
    assert_eq!(results.len(), PROCESSES);
    let store = scratch.store();
    processes::check_openers(&store, &results);
    let stamps: i64 = scratch
        .raw()
        .query_one("SELECT count(*) FROM meta", &[])
        .unwrap()
        .get(0);
    assert_eq!(stamps, 2, "one schema version and one fingerprint");
    println!(
        "{PROCESSES} processes created schema {} at once",
        scratch.schema
    );
}

// ---- connections the server closes -----------------------------------------------------

/// Terminates every session of the database whose `application_name` is `name`.
fn terminate_sessions(name: &str) -> i64 {
    let mut admin = Client::connect(&pg_url(), NoTls).unwrap();
    admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .unwrap()
        .get(0)
}

fn url_with_application_name(name: &str) -> String {
    let url = pg_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}application_name={name}")
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_connection_the_server_closed_is_replaced_and_the_call_run_again() {
    let scratch = Scratch::new("closed");
    let name = format!("{}_app", scratch.schema);
    let store = PgStore::builder(&url_with_application_name(&name))
        .schema(&scratch.schema)
        .pool_size(1)
        .connect()
        .unwrap();
    let lab = store.create_topology("lab").unwrap();
    assert_eq!(terminate_sessions(&name), 1);
    // The server said it ended the session: the store runs the call again on a new
    // connection, and the caller never sees it.
    assert_eq!(
        store
            .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
            .unwrap()
            .version,
        2
    );
    assert_eq!(terminate_sessions(&name), 1);
    store.create_topology("after").unwrap();
    // Every pooled connection gone at once (a server restart looks the same).
    let wide = PgStore::builder(&url_with_application_name(&name))
        .schema(&scratch.schema)
        .pool_size(4)
        .connect()
        .unwrap();
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| wide.get_topology(lab.id).unwrap());
        }
    });
    assert!(terminate_sessions(&name) >= 2);
    for _ in 0..8 {
        assert_eq!(wide.get_topology(lab.id).unwrap().version, 2);
    }

    // With test_on_checkout, a dead connection is replaced before the call uses it.
    let checked = PgStore::builder(&url_with_application_name(&name))
        .schema(&scratch.schema)
        .pool_size(1)
        .test_on_checkout(true)
        .connect()
        .unwrap();
    checked.get_topology(lab.id).unwrap();
    assert!(terminate_sessions(&name) >= 1);
    assert_eq!(checked.get_topology(lab.id).unwrap().version, 2);
}

/// Claimers racing on one queue take each mutation once and one at a time (the claim
/// meets another on the mutation's row, not on a topology lock), and a teardown racing
/// them stops the claims: none that began after the transition returned takes anything.
#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn claimers_racing_on_one_queue_take_each_mutation_once_and_stop_at_a_teardown() {
    const CLAIMERS: usize = 4;
    const QUEUED: usize = 40;
    let scratch = Scratch::new("claimrace");
    let store = scratch.store();
    let live = store.create_topology("live").unwrap();
    for to in [TopologyStatus::Deploying, TopologyStatus::Active] {
        store
            .transition_status(live.id, to, None, Precondition::none())
            .unwrap();
    }
    for i in 0..QUEUED {
        store
            .enqueue_mutation(live.id, MutationOp::AddLan, &format!("m{i}"), None)
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_mins(1);
    let claimed: Vec<_> = thread::scope(|s| {
        let workers: Vec<_> = (0..CLAIMERS)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    while Instant::now() < deadline {
                        match store.claim_next_mutation(live.id).unwrap() {
                            Claim::Claimed { lease, mutation } => {
                                // Held: no other mutation of the queue may be applying.
                                let applying = store
                                    .all_mutations(live.id, Some(MutationState::Applying))
                                    .unwrap();
                                assert_eq!(applying.len(), 1, "{applying:?}");
                                mine.push(mutation.id);
                                store.mark_mutation_applied(lease).unwrap();
                            }
                            Claim::Busy { .. } => {}
                            Claim::Empty => break,
                        }
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let once: BTreeSet<_> = claimed.iter().copied().collect();
    assert_eq!((claimed.len(), once.len()), (QUEUED, QUEUED));
    let all = store.all_mutations(live.id, None).unwrap();
    assert!(
        all.iter()
            .all(|m| m.state == MutationState::Applied && m.attempts == 1),
        "{all:?}"
    );

    // A teardown racing the claimers.
    for i in 0..QUEUED {
        store
            .enqueue_mutation(live.id, MutationOp::AddLan, &format!("n{i}"), None)
            .unwrap();
    }
    let torn: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let late = thread::scope(|s| {
        let workers: Vec<_> = (0..CLAIMERS)
            .map(|_| {
                s.spawn(|| {
                    let mut late = Vec::new();
                    while Instant::now() < deadline {
                        let began = Instant::now();
                        match store.claim_next_mutation(live.id) {
                            Ok(Claim::Claimed { lease, mutation }) => {
                                if torn.lock().unwrap().is_some_and(|at| began > at) {
                                    late.push(mutation.id);
                                }
                                store.mark_mutation_applied(lease).unwrap();
                            }
                            Ok(Claim::Busy { .. }) => {}
                            Ok(Claim::Empty) => break,
                            Err(e) => {
                                assert!(
                                    matches!(e, StoreError::NotEditable(_)),
                                    "a claim of a topology torn down: {e:?}"
                                );
                                break;
                            }
                        }
                    }
                    late
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(20));
        store
            .transition_status(
                live.id,
                TopologyStatus::TearingDown,
                None,
                Precondition::none(),
            )
            .unwrap();
        *torn.lock().unwrap() = Some(Instant::now());
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(late.is_empty(), "claimed after the teardown: {late:?}");
}
