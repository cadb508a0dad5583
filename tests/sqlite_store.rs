//! `SqliteStore`: the shared conformance suite on a file (each handle its own connection),
//! and what only SQLite has: several OS processes on one file, the schema and its
//! fingerprint, WAL and foreign keys, corrupt rows, and files that are not stores at all.
//!
//! The multi-process tests re-execute this test binary, each running itself again in child
//! mode (an environment variable says which role; see `sql_backends/processes.rs`), which
//! works the same under `cargo test` and `cargo nextest run`.

mod pages;

use pages::ListAll;

mod conformance;
mod sql_backends;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tempfile::TempDir;
use topostate::store::{
    ChildEdit, Foreign, NewLan, SqliteStore, StoreError, TopologyStore, TypedStore,
};
use topostate::{MAX_VERSION, MutationOp, TopologyId, TopologyStatus};

use conformance::Harness;
use sql_backends::key;
use sql_backends::processes::{self, ChildEnv};

// ---- the conformance suite -------------------------------------------------------------

/// A store file in a fresh temporary directory; every handle is a new connection on it.
struct SqliteHarness {
    _dir: TempDir,
    path: PathBuf,
}

impl Harness for SqliteHarness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        SqliteStore::open(&path).unwrap();
        Self { _dir: dir, path }
    }

    fn handle(&self) -> Box<dyn TopologyStore> {
        Box::new(SqliteStore::open(&self.path).unwrap())
    }

    fn force_version(&self, id: TopologyId, version: u64) {
        let version = i64::try_from(version).unwrap();
        let changed = raw(&self.path)
            .execute(
                "UPDATE topologies SET version = ?1 WHERE id = ?2",
                rusqlite::params![version, i64::try_from(id.get()).unwrap()],
            )
            .unwrap();
        assert_eq!(changed, 1, "no topology {id} to force");
    }
}

conformance_tests!(SqliteHarness);

/// The same suite through the async face: each handle is its own connection, offloaded to
/// tokio's blocking pool.
#[cfg(feature = "tokio")]
mod through_async {
    use std::sync::Arc;

    use super::conformance::Harness;
    use super::conformance::through_async::{AsyncHarness, ThroughAsync};
    use topostate::TopologyId;
    use topostate::store::{AsyncTopologyStore, Offload, SqliteStore};

    struct AsyncSqlite(super::SqliteHarness);

    impl AsyncHarness for AsyncSqlite {
        fn new() -> Self {
            Self(super::SqliteHarness::new())
        }

        fn async_handle(&self) -> Arc<dyn AsyncTopologyStore> {
            Arc::new(Offload::new(SqliteStore::open(&self.0.path).unwrap()))
        }

        fn force_version(&self, id: TopologyId, version: u64) {
            self.0.force_version(id, version);
        }
    }

    crate::conformance_tests!(ThroughAsync<AsyncSqlite>);
}

// ---- helpers ---------------------------------------------------------------------------

/// A plain rusqlite connection on the file, as an outside program (or an attacker) has.
fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

/// The same, allowed to write rows the `CHECK` constraints refuse: for corrupting on purpose.
fn raw_unchecked(path: &Path) -> Connection {
    let conn = raw(path);
    conn.execute_batch("PRAGMA ignore_check_constraints = ON")
        .unwrap();
    conn
}

fn temp_store() -> (TempDir, PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    (dir, path, store)
}

// ---- the file: WAL, foreign keys, handles ----------------------------------------------

#[test]
fn files_are_in_wal_mode() {
    let (_dir, path, _store) = temp_store();
    let mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn foreign_keys_cascade_a_delete() {
    // The store deletes only the topology row; everything else goes by ON DELETE CASCADE,
    // which happens only with `foreign_keys = ON` on the store's connection.
    let (_dir, path, store) = temp_store();
    let conn = raw(&path);
    sql_backends::delete_leaves_no_row_behind(&store, |table, topology| {
        conn.query_row(
            &format!("SELECT count(*) FROM {table} WHERE topology_id = ?1"),
            [topology],
            |r| r.get(0),
        )
        .unwrap()
    });
}

#[test]
fn handles_are_send_sync_debug() {
    fn assert_send_sync<T: Send + Sync + std::fmt::Debug>() {}
    assert_send_sync::<SqliteStore>();
    let (_dir, path, store) = temp_store();
    let shown = format!("{store:?}");
    assert!(
        shown.contains("SqliteStore") && shown.contains("store.db"),
        "{shown}"
    );
    assert_eq!(store.path(), Some(path.as_path()));
    let memory = SqliteStore::open_in_memory().unwrap();
    assert!(format!("{memory:?}").contains(":memory:"));
    assert_eq!(memory.path(), None);
}

#[test]
fn in_memory_stores_are_separate() {
    let a = SqliteStore::open_in_memory().unwrap();
    let b = SqliteStore::open_in_memory().unwrap();
    let lab = a.create("lab").unwrap();
    let lab = a.advance(lab, topostate::Topology::deploy).unwrap();
    assert_eq!(
        a.get_topology(lab.id()).unwrap().status,
        TopologyStatus::Deploying
    );
    assert!(b.all_topologies(None).unwrap().is_empty());
    b.create_topology("lab").unwrap();
}

#[test]
fn data_survives_reopening() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
        .unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    let detail = store.topology_detail(lab.id).unwrap();
    assert_eq!(detail.topology.version, 2);
    assert_eq!(detail.lans[0].name, "dmz");
}

#[test]
fn ids_are_never_reused() {
    let (_dir, _path, store) = temp_store();
    sql_backends::ids_are_never_reused(&store);
}

#[test]
fn ids_beyond_sql_integers_are_not_found() {
    let store = SqliteStore::open_in_memory().unwrap();
    sql_backends::ids_beyond_sql_integers_are_not_found(&store);
}

// ---- stored values ---------------------------------------------------------------------

#[test]
fn values_round_trip_exactly() {
    let (_dir, path, store) = temp_store();
    sql_backends::values_round_trip_exactly(&store, |web| {
        // Stored as a JSON list that other tools can read.
        let text: String = raw(&path)
            .query_row(
                "SELECT services FROM deckies WHERE id = ?1",
                [key(web.get())],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str(&text).unwrap()
    });
}

#[test]
fn non_finite_coordinates_are_refused_not_lost() {
    // SQLite would store NaN as NULL, i.e. read back "no position".
    let store = SqliteStore::open_in_memory().unwrap();
    let lab = store.create_topology("lab").unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut lan = NewLan::new("dmz", "10.0.0.0/24");
        lan.x = Some(bad);
        let e = store.add_lan(lab.id, lan, Some(1)).unwrap_err();
        assert!(
            matches!(e, StoreError::Invalid { field: "lan x", .. }),
            "{e:?}"
        );
    }
    assert_eq!(store.get_topology(lab.id).unwrap().version, 1);
}

// ---- versions stay integers ------------------------------------------------------------

#[test]
fn version_at_max_overflows_and_stays_an_integer() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    let max = key(MAX_VERSION);
    raw(&path)
        .execute(
            "UPDATE topologies SET version = ?1 WHERE id = ?2",
            [max, key(lab.id.get())],
        )
        .unwrap();
    let e = store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(MAX_VERSION))
        .unwrap_err();
    assert!(
        matches!(e, StoreError::VersionOverflow(o) if o.current == MAX_VERSION),
        "{e:?}"
    );
    let e = store
        .enqueue_mutation(lab.id, MutationOp::AddLan, "{}", Some(MAX_VERSION))
        .unwrap_err();
    assert!(matches!(e, StoreError::NotEditable(_)), "{e:?}");
    let (kind, value): (String, i64) = raw(&path)
        .query_row(
            "SELECT typeof(version), version FROM topologies WHERE id = ?1",
            [key(lab.id.get())],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), value), ("integer", max));
    assert!(store.topology_detail(lab.id).unwrap().lans.is_empty());
    // Unversioned writes still work at the maximum: they bump nothing.
    store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), None)
        .unwrap();
    assert_eq!(store.get_topology(lab.id).unwrap().version, MAX_VERSION);
}

#[test]
fn sql_checks_refuse_what_the_api_cannot_express() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    let id = key(lab.id.get());
    let conn = raw(&path);
    let refused = |sql: &str| {
        let e = conn.execute(sql, [id]).unwrap_err();
        assert!(
            e.to_string().contains("CHECK constraint failed"),
            "{sql}: {e}"
        );
    };
    // A status the declaration does not list can not be stored even by hand.
    refused("UPDATE topologies SET status = 'bogus' WHERE id = ?1");
    refused("UPDATE topologies SET status = 'Active' WHERE id = ?1");
    // Versions: at least 1, and an integer: `version + 1` at i64::MAX would be a float.
    refused("UPDATE topologies SET version = 0 WHERE id = ?1");
    refused("UPDATE topologies SET version = 1.5 WHERE id = ?1");
    conn.execute(
        "UPDATE topologies SET version = 9223372036854775807 WHERE id = ?1",
        [id],
    )
    .unwrap();
    refused("UPDATE topologies SET version = version + 1 WHERE id = ?1");
    refused(
        "INSERT INTO status_events (topology_id, from_status, to_status, at) \
         VALUES (?1, 'pending', 'exploded', 0)",
    );
    refused(
        "INSERT INTO mutations (topology_id, op, payload, state, requested_at) \
         VALUES (?1, 'noop', '{}', 'pending', 0)",
    );
    refused(
        "INSERT INTO mutations (topology_id, op, payload, state, requested_at) \
         VALUES (?1, 'add_lan', '{}', 'done', 0)",
    );
    refused(
        "INSERT INTO deckies (topology_id, name, services, state) \
         VALUES (?1, 'web', '[]', 'stopped')",
    );
    // The row is unchanged but for the legal version write.
    let row = store.get_topology(lab.id).unwrap();
    assert_eq!(row.status, TopologyStatus::Pending);
    assert_eq!(row.version, MAX_VERSION);
}

// ---- corrupt rows ----------------------------------------------------------------------

/// Runs one statement (`$1` the id) on a connection that ignores the `CHECK`s.
fn corrupter(path: &Path) -> impl FnMut(&str, i64) {
    let conn = raw_unchecked(path);
    move |sql, id| {
        conn.execute(&sql.replace("$1", "?1"), [id]).unwrap();
    }
}

/// A negative id in a row is that row's corruption, never read as another row's id
/// (`-5` used to come back as LAN 5).
#[test]
fn a_negative_id_in_a_row_reads_as_corrupt() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    let lan = store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), None)
        .unwrap()
        .id;
    raw_unchecked(&path)
        .execute("UPDATE lans SET id = -5 WHERE id = ?1", [key(lan.get())])
        .unwrap();
    match store.topology_detail(lab.id) {
        Err(StoreError::Corrupt {
            table: "lans",
            row,
            problem,
        }) => {
            assert_eq!(row, "-5");
            assert!(problem.contains("-5"), "{problem}");
        }
        other => panic!("expected a corrupt LAN row, got {other:?}"),
    }
    // The topology row itself is fine.
    assert_eq!(store.get_topology(lab.id).unwrap().name, "lab");
}

#[test]
fn corrupt_status_is_named_and_other_rows_still_read() {
    let (_dir, path, store) = temp_store();
    sql_backends::corrupt_status_is_named(&store, &mut corrupter(&path));
}

#[test]
fn corrupt_versions_are_named() {
    let (_dir, path, store) = temp_store();
    sql_backends::corrupt_versions_are_named(
        &store,
        &mut corrupter(&path),
        &[
            ("0", "invalid topology version 0"),
            ("-3", "invalid topology version -3"),
            ("1.5", "the real number 1.5"),
            ("'seven'", "the text 'seven'"),
        ],
    );
    assert_eq!(store.all_topologies(None).unwrap().len(), 1);
}

#[test]
fn corrupt_event_is_named() {
    let (_dir, path, store) = temp_store();
    sql_backends::corrupt_event_is_named(&store, &mut corrupter(&path));
}

#[test]
fn corrupt_mutation_is_named() {
    let (_dir, path, store) = temp_store();
    sql_backends::corrupt_mutation_is_named(&store, &mut corrupter(&path));
}

#[test]
fn corrupt_decky_is_named() {
    let (_dir, path, store) = temp_store();
    sql_backends::corrupt_decky_is_named(
        &store,
        &mut corrupter(&path),
        "'ssh,http'",
        &["services", "ssh,http"],
    );
}

// ---- the schema and its fingerprint ----------------------------------------------------

#[test]
fn a_different_declaration_is_refused_on_open() {
    let (_dir, path, store) = temp_store();
    store.create_topology("lab").unwrap();
    drop(store);
    let conn = raw(&path);
    let original: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'fingerprint'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    sql_backends::a_different_declaration_is_refused(
        &original,
        &mut |value| {
            conn.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'fingerprint'",
                [value],
            )
            .unwrap();
        },
        || SqliteStore::open(&path),
        path.to_str().unwrap(),
    );
}

#[test]
fn a_newer_schema_is_refused_on_open() {
    let (_dir, path, store) = temp_store();
    drop(store);
    let conn = raw(&path);
    sql_backends::a_newer_schema_is_refused(
        &mut |version| {
            conn.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                [version],
            )
            .unwrap();
        },
        || SqliteStore::open(&path),
    );
}

/// A file of schema version 1 (before pages and leases) is migrated on open: it gains the
/// index a page of mutations reads and the lease columns, and is stamped version 3.
#[test]
fn a_schema_1_file_gains_the_mutations_page_index() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    drop(store);
    let conn = raw(&path);
    conn.execute_batch(
        "DROP INDEX mutations_topology;
         ALTER TABLE mutations DROP COLUMN claimed_at;
         ALTER TABLE mutations DROP COLUMN lease_until;
         ALTER TABLE mutations DROP COLUMN holder;
         ALTER TABLE mutations DROP COLUMN attempts;
         ALTER TABLE mutations DROP COLUMN token;
         ALTER TABLE mutations DROP COLUMN edited_by;
         UPDATE meta SET value = 1 WHERE key = 'schema_version';
         UPDATE meta SET value = replace(value, 'schema 3;', 'schema 1;') WHERE key = 'fingerprint';",
    )
    .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let (version, index): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT value FROM meta WHERE key = 'schema_version'),
                    (SELECT count(*) FROM sqlite_master WHERE name = 'mutations_topology')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((version, index), (3, 1));
    assert_eq!(store.get_topology(lab.id).unwrap().name, "lab");
    drop(store);
    // Migrated once: reopening finds it current.
    SqliteStore::open(&path).unwrap();
}

#[test]
fn reopening_keeps_one_schema_stamp() {
    let (_dir, path, store) = temp_store();
    drop(store);
    for _ in 0..3 {
        SqliteStore::open(&path).unwrap();
    }
    let rows: i64 = raw(&path)
        .query_row("SELECT count(*) FROM meta", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}

// ---- a schema changed under an open store ---------------------------------------------

/// What a newer build's migration to the next schema version (3) does on `path`, from
/// another connection: `ddl` (may be empty), the stamp moved to version 3 and, unless `mirror` is
/// false, the header's `user_version` with it, in one transaction.
fn migrate_to_next(path: &Path, ddl: &str, mirror: bool) {
    let (this, next) = (sql_backends::THIS_VERSION, sql_backends::NEXT_VERSION);
    let user_version = if mirror {
        format!("PRAGMA user_version = {next};")
    } else {
        String::new()
    };
    raw(path)
        .execute_batch(&format!(
            "BEGIN IMMEDIATE;
             {ddl}
             UPDATE meta SET value = {next} WHERE key = 'schema_version';
             UPDATE meta SET value = replace(value, 'sqlite schema {this};', 'sqlite schema {next};')
                 WHERE key = 'fingerprint';
             {user_version}
             COMMIT;"
        ))
        .unwrap();
}

fn count_rows(path: &Path) -> impl Fn(&str) -> i64 {
    let conn = raw(path);
    move |table| {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }
}

#[test]
fn a_schema_migrated_under_an_open_store_is_refused() {
    let (_dir, path, store) = temp_store();
    sql_backends::a_schema_change_under_an_open_store_is_refused(
        &store,
        || migrate_to_next(&path, "ALTER TABLE lans ADD COLUMN vlan INTEGER;", true),
        count_rows(&path),
    );
}

#[test]
fn a_migration_that_changes_no_table_is_noticed() {
    // A data-only migration (say, rewriting stored names) changes no DDL, so SQLite's
    // schema cookie stays; the mirrored `user_version` moves.
    let (_dir, path, store) = temp_store();
    sql_backends::a_schema_change_under_an_open_store_is_refused(
        &store,
        || migrate_to_next(&path, "", true),
        count_rows(&path),
    );
}

#[test]
fn a_migration_that_does_not_mirror_its_version_is_noticed() {
    // A migration run by hand, restamping `meta` only: its DDL moves the schema cookie.
    let (_dir, path, store) = temp_store();
    sql_backends::a_schema_change_under_an_open_store_is_refused(
        &store,
        || migrate_to_next(&path, "ALTER TABLE lans ADD COLUMN vlan INTEGER;", false),
        count_rows(&path),
    );
}

#[test]
fn a_schema_change_that_keeps_the_version_is_accepted() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    raw(&path)
        .execute_batch("CREATE INDEX lans_subnet ON lans (subnet); VACUUM;")
        .unwrap();
    store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
        .unwrap();
    assert_eq!(store.topology_detail(lab.id).unwrap().lans.len(), 1);
    // A stamp rewritten to another declaration under the open store is refused as on open.
    raw(&path)
        .execute_batch(
            "CREATE TABLE notes (x); \
             UPDATE meta SET value = value || ',archived' WHERE key = 'fingerprint';",
        )
        .unwrap();
    let e = store.get_topology(lab.id).unwrap_err();
    assert!(
        matches!(e, StoreError::Corrupt { table: "meta", .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("fingerprint mismatch"), "{e}");
}

#[test]
fn a_store_whose_stamp_is_dropped_is_refused() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    raw(&path).execute_batch("DROP TABLE meta;").unwrap();
    let e = store.create_topology("next").unwrap_err();
    assert!(
        matches!(e, StoreError::Corrupt { table: "meta", .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("stamp"), "{e}");
    assert!(store.get_topology(lab.id).is_err());
    assert_eq!(count_rows(&path)("topologies"), 1);
}

#[test]
fn the_schema_version_is_mirrored_in_the_header() {
    let (_dir, path, store) = temp_store();
    drop(store);
    let user_version = || -> i64 {
        raw(&path)
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    // This build's schema version.
    assert_eq!(user_version(), sql_backends::THIS_VERSION);
    // A file stamped before the mirror existed gets it on its next open.
    raw(&path).execute_batch("PRAGMA user_version = 0").unwrap();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(), sql_backends::THIS_VERSION);
    store.create_topology("lab").unwrap();
}

// ---- files that are not stores ---------------------------------------------------------

#[test]
fn a_file_that_is_not_sqlite_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are my notes, not a database\n".repeat(200)).unwrap();
    let e = SqliteStore::open(&path).unwrap_err();
    let message = e.to_string();
    assert!(
        matches!(
            e,
            StoreError::NotAStore {
                found: Foreign::NotSqlite,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(message.contains("notes.txt"), "{message}");
    assert!(message.contains("not an SQLite database"), "{message}");
    // The file is left as it was.
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("these are my notes")
    );
}

#[test]
fn a_truncated_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        for i in 0..40 {
            let t = store.create_topology(&format!("topology-{i}")).unwrap();
            let batch: Vec<ChildEdit> = (0..20)
                .map(|j| {
                    ChildEdit::AddLan(NewLan::new(
                        format!("lan-{j}-{}", "x".repeat(100)),
                        "10.0.0.0/24",
                    ))
                })
                .collect();
            store.edit(t.id, Some(1), &batch).unwrap();
        }
    }
    assert!(
        !dir.path().join("store.db-wal").exists(),
        "the last close checkpoints the WAL"
    );
    let full = std::fs::read(&path).unwrap();
    assert!(full.len() > 64 * 1024, "{}", full.len());
    for len in [10, 99, 100, 1000, 4096, full.len() / 2, full.len() - 1] {
        std::fs::write(&path, &full[..len]).unwrap();
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("store.db{suffix}")));
        }
        let outcome = std::panic::catch_unwind(|| match SqliteStore::open(&path) {
            Err(e) => Err(e.to_string()),
            Ok(store) => {
                // Whatever opened must read without panicking; deep pages may be gone.
                let listed = store.all_topologies(None).map(|l| l.len());
                let details: Vec<_> = (1..=40)
                    .map(|i| {
                        store
                            .topology_detail(TopologyId::new(i))
                            .map(|d| d.lans.len())
                    })
                    .collect();
                Ok((listed.map_err(|e| e.to_string()), details.len()))
            }
        });
        let outcome =
            outcome.unwrap_or_else(|_| panic!("a file truncated to {len} bytes panicked"));
        if len < 4096 {
            let message = outcome.expect_err("a file shorter than one page must be refused");
            assert!(message.contains("store.db"), "{message}");
            println!("truncated to {len}: {message}");
        } else {
            println!("truncated to {len}: {outcome:?}");
        }
    }
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/store.db");
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    assert!(e.to_string().contains("no/such/dir"), "{e}");
}

// ---- locks -----------------------------------------------------------------------------

#[test]
fn a_writer_waits_for_another_connections_lock() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    let holder = std::thread::spawn({
        let path = path.clone();
        move || {
            let mut conn = raw(&path);
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            tx.commit().unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(50));
    let started = std::time::Instant::now();
    store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    holder.join().unwrap();
}

#[test]
fn a_lock_held_past_the_busy_timeout_is_a_clear_error() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn({
        let path = path.clone();
        move || {
            let mut conn = raw(&path);
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap();
            locked_tx.send(()).unwrap();
            let _ = done_rx.recv_timeout(Duration::from_secs(30));
            tx.rollback().unwrap();
        }
    });
    locked_rx.recv().unwrap();
    let e = store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
        .unwrap_err();
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    let message = e.to_string();
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    assert!(message.contains("busy timeout"), "{message}");
    assert!(message.contains("edit"), "{message}");
    // Nothing was written, and the store works again once the lock is gone.
    assert_eq!(store.get_topology(lab.id).unwrap().version, 1);
    store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
        .unwrap();
}

// ---- several processes on one file -----------------------------------------------------

/// The prefix of the environment variables that tell a child process its role.
const CHILD: &str = "TOPOSTATE_SQLITE_CHILD";
const WRITES_PER_CHILD: usize = 50;

/// The child side of the multi-process tests: each test starts with `ChildEnv::from_env`
/// and, in a child process its parent started, comes here instead of being the parent.
fn child_process(child: &ChildEnv) {
    match child.role.as_str() {
        "writer" => {
            let store = SqliteStore::open(&child.place).unwrap();
            processes::writer(&store, child, WRITES_PER_CHILD);
        }
        "opener" => processes::opener(child, || Box::new(SqliteStore::open(&child.place).unwrap())),
        other => panic!("unknown child role {other}"),
    }
}

/// Starts `n` children in `role` on the file at `path`; their `RESULT` lines. No child may
/// ever see the database locked.
fn run_children(role: &str, n: usize, path: &Path, topologies: &[TopologyId]) -> Vec<String> {
    let place = path.to_str().unwrap();
    let lead = Duration::from_millis(700);
    processes::run_children(CHILD, role, n, place, topologies, lead, &["locked"])
}

#[test]
fn processes_racing_versioned_writes_lose_no_update() {
    if let Some(child) = ChildEnv::from_env(CHILD) {
        return child_process(&child);
    }
    const PROCESSES: usize = 4;
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    let started = Instant::now();
    let results = run_children("writer", PROCESSES, &path, &[lab.id]);
    processes::check_writers(&store, lab.id, &results, WRITES_PER_CHILD, started);
}

#[test]
fn processes_opening_a_new_file_at_once_all_succeed() {
    if let Some(child) = ChildEnv::from_env(CHILD) {
        return child_process(&child);
    }
    const PROCESSES: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    assert!(!path.exists());
    let results = run_children("opener", PROCESSES, &path, &[]);
    assert_eq!(results.len(), PROCESSES);
    let store = SqliteStore::open(&path).unwrap();
    processes::check_openers(&store, &results);
    let conn = raw(&path);
    let stamps: i64 = conn
        .query_row("SELECT count(*) FROM meta", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stamps, 2, "one schema version and one fingerprint");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}
