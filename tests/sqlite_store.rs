//! `SqliteStore`: the shared conformance suite on a file (each handle its own connection),
//! and what only SQLite has: several OS processes on one file, the schema and its
//! fingerprint, WAL and foreign keys, corrupt rows, and files that are not stores at all.
//!
//! The multi-process tests re-execute this test binary: the parent runs the ignored test
//! [`child_process`] in child mode (an environment variable says which role), which works
//! the same under `cargo test` and `cargo nextest run`.

mod conformance;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;
use tempfile::TempDir;
use topostate::store::{
    ChildEdit, DeckyPatch, DeckyRuntime, DeckyState, Entity, MutationClaim, NewDecky, NewEdge,
    NewLan, Precondition, SqliteStore, StoreError, TopologyStore, TypedStore,
};
use topostate::{MAX_VERSION, MutationOp, TopologyId, TopologyStatus};

use conformance::Harness;

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

fn key(id: u64) -> i64 {
    i64::try_from(id).unwrap()
}

/// Asserts a [`StoreError::Corrupt`] naming `table`, `row` and every one of `mentions`.
fn assert_corrupt(
    result: Result<impl std::fmt::Debug, StoreError>,
    table: &str,
    row: i64,
    mentions: &[&str],
) {
    match result {
        Err(e @ StoreError::Corrupt { .. }) => {
            let StoreError::Corrupt {
                table: t, row: r, ..
            } = &e
            else {
                unreachable!()
            };
            let message = e.to_string();
            assert_eq!(*t, table, "{message}");
            assert_eq!(*r, row.to_string(), "{message}");
            for m in mentions {
                assert!(message.contains(m), "{message:?} does not mention {m:?}");
            }
        }
        other => panic!("expected a corrupt row in {table} (id {row}), got {other:?}"),
    }
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
    let lab = store.create_topology("lab").unwrap();
    let lan = store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), None)
        .unwrap();
    let web = store.add_decky(lab.id, NewDecky::new("web"), None).unwrap();
    store
        .add_edge(lab.id, NewEdge::new(web.id, lan.id), None)
        .unwrap();
    store
        .transition_status(
            lab.id,
            TopologyStatus::Deploying,
            None,
            Precondition::none(),
        )
        .unwrap();
    store
        .transition_status(
            lab.id,
            TopologyStatus::Failed,
            Some("boom"),
            Precondition::none(),
        )
        .unwrap();
    let other = store.create_topology("other").unwrap();
    store
        .add_lan(other.id, NewLan::new("dmz", "10.0.0.0/24"), None)
        .unwrap();

    store.delete_topology(lab.id, Some(1)).unwrap();
    let conn = raw(&path);
    for table in ["lans", "deckies", "edges", "status_events", "mutations"] {
        let left: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE topology_id = ?1"),
                [key(lab.id.get())],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "{table} kept rows of a deleted topology");
    }
    assert_eq!(store.topology_detail(other.id).unwrap().lans.len(), 1);
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
    let lab = a.advance(lab, |t| t.deploy()).unwrap();
    assert_eq!(
        a.get_topology(lab.id()).unwrap().status,
        TopologyStatus::Deploying
    );
    assert!(b.list_topologies(None).unwrap().is_empty());
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
    let first = store.create_topology("a").unwrap();
    store.delete_topology(first.id, None).unwrap();
    let second = store.create_topology("a").unwrap();
    assert!(
        second.id > first.id,
        "{:?} reused {:?}",
        second.id,
        first.id
    );
    assert!(matches!(
        store.get_topology(first.id),
        Err(StoreError::NotFound {
            entity: Entity::Topology,
            ..
        })
    ));
}

#[test]
fn ids_beyond_sql_integers_are_not_found() {
    let store = SqliteStore::open_in_memory().unwrap();
    let lab = store.create_topology("lab").unwrap();
    let huge = TopologyId::new(u64::MAX);
    assert!(matches!(
        store.get_topology(huge),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.update_lan(
            lab.id,
            topostate::store::LanId::new(u64::MAX),
            topostate::store::LanPatch::default(),
            None
        ),
        Err(StoreError::NotFound {
            entity: Entity::Lan,
            id: u64::MAX
        })
    ));
    assert!(matches!(
        store.mark_mutation_applied(MutationClaim::from_parts(
            topostate::store::MutationId::new(u64::MAX),
            lab.id
        )),
        Err(StoreError::NotFound {
            entity: Entity::Mutation,
            ..
        })
    ));
}

// ---- stored values ---------------------------------------------------------------------

#[test]
fn services_round_trip_exactly() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    let services: Vec<String> = [
        "ssh",
        "a,b",
        "say \"hi\"",
        "line\nbreak",
        "",
        "back\\slash",
        "🦀",
        "[]",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let mut decky = NewDecky::new("web");
    decky.services = services.clone();
    decky.config = Some(String::from("{\"ips_by_lan\": {}}"));
    let web = store.add_decky(lab.id, decky, None).unwrap();
    let read = &store.topology_detail(lab.id).unwrap().deckies[0];
    assert_eq!(read.services, services);
    assert_eq!(read.config.as_deref(), Some("{\"ips_by_lan\": {}}"));
    assert_eq!(read.state, DeckyState::Pending);

    // Stored as a JSON list that other tools can read.
    let text: String = raw(&path)
        .query_row(
            "SELECT services FROM deckies WHERE id = ?1",
            [key(web.id.get())],
            |r| r.get(0),
        )
        .unwrap();
    let parsed: Vec<String> = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, services);

    let patch = DeckyPatch {
        services: Some(vec![String::from("x,y"), String::from("z")]),
        config: Some(None),
        ..DeckyPatch::default()
    };
    store.update_decky(lab.id, web.id, patch, None).unwrap();
    let read = &store.topology_detail(lab.id).unwrap().deckies[0];
    assert_eq!(read.services, ["x,y", "z"]);
    assert_eq!(read.config, None);
    store
        .update_decky(
            lab.id,
            web.id,
            DeckyPatch {
                services: Some(Vec::new()),
                ..DeckyPatch::default()
            },
            None,
        )
        .unwrap();
    assert!(
        store.topology_detail(lab.id).unwrap().deckies[0]
            .services
            .is_empty()
    );
}

#[test]
fn coordinates_and_runtime_fields_round_trip() {
    let store = SqliteStore::open_in_memory().unwrap();
    let lab = store.create_topology("lab").unwrap();
    let mut lan = NewLan::new("dmz", "10.0.0.0/24");
    lan.x = Some(-1.5e300);
    lan.y = Some(f64::MAX);
    lan.is_dmz = true;
    let lan = store.add_lan(lab.id, lan, None).unwrap();
    let web = store.add_decky(lab.id, NewDecky::new("web"), None).unwrap();
    store.set_lan_network_id(lan.id, Some("net-1")).unwrap();
    store
        .set_decky_runtime(
            web.id,
            &DeckyRuntime {
                state: Some(DeckyState::TeardownFailed),
                ip: Some(Some(String::from("10.0.0.5"))),
                last_error: Some(Some(String::from("exit 137"))),
            },
        )
        .unwrap();
    let detail = store.topology_detail(lab.id).unwrap();
    assert_eq!(detail.lans[0].x, Some(-1.5e300));
    assert_eq!(detail.lans[0].y, Some(f64::MAX));
    assert!(detail.lans[0].is_dmz);
    assert_eq!(detail.lans[0].network_id.as_deref(), Some("net-1"));
    assert_eq!(detail.deckies[0].state, DeckyState::TeardownFailed);
    assert_eq!(detail.deckies[0].ip.as_deref(), Some("10.0.0.5"));
    assert_eq!(detail.deckies[0].last_error.as_deref(), Some("exit 137"));
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

#[test]
fn corrupt_status_is_named_and_other_rows_still_read() {
    let (_dir, path, store) = temp_store();
    let good = store.create_topology("good").unwrap();
    let bad = store.create_topology("bad").unwrap();
    let later = store.create_topology("later").unwrap();
    raw_unchecked(&path)
        .execute(
            "UPDATE topologies SET status = 'exploded' WHERE id = ?1",
            [key(bad.id.get())],
        )
        .unwrap();
    let id = key(bad.id.get());
    assert_corrupt(
        store.get_topology(bad.id),
        "topologies",
        id,
        &["status", "'exploded'"],
    );
    assert_corrupt(
        store.topology_detail(bad.id),
        "topologies",
        id,
        &["exploded"],
    );
    assert_corrupt(
        store.transition_status(
            bad.id,
            TopologyStatus::Deploying,
            None,
            Precondition::none(),
        ),
        "topologies",
        id,
        &["exploded"],
    );
    assert_corrupt(
        store.add_lan(bad.id, NewLan::new("dmz", "10.0.0.0/24"), None),
        "topologies",
        id,
        &["exploded"],
    );
    // Lists meet the row and fail naming it, filtered or not; nothing is skipped silently.
    assert_corrupt(store.list_topologies(None), "topologies", id, &["exploded"]);
    assert_corrupt(
        store.list_topologies(Some(TopologyStatus::Pending)),
        "topologies",
        id,
        &["exploded"],
    );
    // Other rows read and write as usual.
    assert_eq!(store.get_topology(good.id).unwrap().name, "good");
    assert_eq!(store.get_topology(later.id).unwrap().name, "later");
    store
        .add_lan(good.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
        .unwrap();
}

#[test]
fn corrupt_versions_are_named() {
    let (_dir, path, store) = temp_store();
    let good = store.create_topology("good").unwrap();
    let conn = raw_unchecked(&path);
    for (value, mention) in [
        ("0", "invalid topology version 0"),
        ("-3", "invalid topology version -3"),
        ("1.5", "the real number 1.5"),
        ("'seven'", "the text 'seven'"),
    ] {
        let bad = store.create_topology(&format!("bad {value}")).unwrap();
        let id = key(bad.id.get());
        let sql = format!("UPDATE topologies SET version = {value} WHERE id = ?1");
        conn.execute(&sql, [id]).unwrap();
        assert_corrupt(
            store.get_topology(bad.id),
            "topologies",
            id,
            &["version", mention],
        );
        assert_corrupt(
            store.add_lan(bad.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1)),
            "topologies",
            id,
            &[mention],
        );
        assert_corrupt(store.list_topologies(None), "topologies", id, &[mention]);
        assert_eq!(store.get_topology(good.id).unwrap().version, 1);
        conn.execute("DELETE FROM topologies WHERE id = ?1", [id])
            .unwrap();
    }
    assert_eq!(store.list_topologies(None).unwrap().len(), 1);
}

#[test]
fn corrupt_event_is_named() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    let other = store.create_topology("other").unwrap();
    let first = store
        .transition_status(
            lab.id,
            TopologyStatus::Deploying,
            None,
            Precondition::none(),
        )
        .unwrap()
        .event;
    store
        .transition_status(lab.id, TopologyStatus::Active, None, Precondition::none())
        .unwrap();
    store
        .transition_status(
            other.id,
            TopologyStatus::Deploying,
            None,
            Precondition::none(),
        )
        .unwrap();
    raw_unchecked(&path)
        .execute(
            "UPDATE status_events SET to_status = 'on_fire' WHERE id = ?1",
            [key(first.id.get())],
        )
        .unwrap();
    assert_corrupt(
        store.list_status_events(lab.id),
        "status_events",
        key(first.id.get()),
        &["to_status", "'on_fire'"],
    );
    assert_eq!(store.list_status_events(other.id).unwrap().len(), 1);
    // The topology row itself is fine.
    assert_eq!(
        store.get_topology(lab.id).unwrap().status,
        TopologyStatus::Active
    );
}

#[test]
fn corrupt_mutation_is_named() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    for step in [TopologyStatus::Deploying, TopologyStatus::Active] {
        store
            .transition_status(lab.id, step, None, Precondition::none())
            .unwrap();
    }
    let first = store
        .enqueue_mutation(lab.id, MutationOp::AddLan, "{}", None)
        .unwrap();
    let second = store
        .enqueue_mutation(lab.id, MutationOp::AddDecky, "{}", None)
        .unwrap();
    let conn = raw_unchecked(&path);
    conn.execute(
        "UPDATE mutations SET op = 'noop' WHERE id = ?1",
        [key(first.id.get())],
    )
    .unwrap();
    let id = key(first.id.get());
    assert_corrupt(
        store.list_mutations(lab.id, None),
        "mutations",
        id,
        &["op", "'noop'"],
    );
    // The claim reaches the oldest pending row and refuses it rather than skipping it.
    assert_corrupt(
        store.claim_next_mutation(lab.id),
        "mutations",
        id,
        &["noop"],
    );
    // Nothing was claimed by that failed attempt.
    conn.execute("UPDATE mutations SET op = 'add_lan' WHERE id = ?1", [id])
        .unwrap();
    let listed = store.list_mutations(lab.id, None).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, second.id);
    assert!(
        listed
            .iter()
            .all(|m| m.state == topostate::MutationState::Pending)
    );

    conn.execute(
        "UPDATE mutations SET state = 'half_done' WHERE id = ?1",
        [key(second.id.get())],
    )
    .unwrap();
    assert_corrupt(
        store.list_mutations(lab.id, Some(topostate::MutationState::Pending)),
        "mutations",
        key(second.id.get()),
        &["state", "'half_done'"],
    );
}

#[test]
fn corrupt_decky_is_named() {
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    let web = store.add_decky(lab.id, NewDecky::new("web"), None).unwrap();
    let conn = raw_unchecked(&path);
    let id = key(web.id.get());
    conn.execute("UPDATE deckies SET state = 'stopped' WHERE id = ?1", [id])
        .unwrap();
    assert_corrupt(
        store.topology_detail(lab.id),
        "deckies",
        id,
        &["state", "'stopped'"],
    );
    conn.execute(
        "UPDATE deckies SET state = 'running', services = 'ssh,http' WHERE id = ?1",
        [id],
    )
    .unwrap();
    assert_corrupt(
        store.topology_detail(lab.id),
        "deckies",
        id,
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
    assert!(original.contains(
        "topology status: pending,deploying,active,degraded,failed,tearing_down,torn_down"
    ));
    let tampered = original.replace("tearing_down,torn_down", "tearing_down,torn_down,archived");
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'fingerprint'",
        [&tampered],
    )
    .unwrap();
    let e = SqliteStore::open(&path).unwrap_err();
    let message = e.to_string();
    assert!(
        matches!(e, StoreError::Corrupt { table: "meta", .. }),
        "{e:?}"
    );
    assert!(message.contains("fingerprint mismatch"), "{message}");
    assert!(
        message.contains(&format!("expected '{original}'")),
        "{message}"
    );
    assert!(
        message.contains(&format!("found '{tampered}'")),
        "{message}"
    );

    // Restored, it opens again with its data.
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'fingerprint'",
        [&original],
    )
    .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.list_topologies(None).unwrap().len(), 1);
}

#[test]
fn a_newer_schema_is_refused_on_open() {
    let (_dir, path, store) = temp_store();
    drop(store);
    raw(&path)
        .execute(
            "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(e, StoreError::Corrupt { table: "meta", .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("schema version 99"), "{e}");
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

// ---- files that are not stores ---------------------------------------------------------

#[test]
fn a_file_that_is_not_sqlite_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are my notes, not a database\n".repeat(200)).unwrap();
    let e = SqliteStore::open(&path).unwrap_err();
    let message = e.to_string();
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
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
                let listed = store.list_topologies(None).map(|l| l.len());
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

/// Set in a child process: which role [`child_process`] plays.
const CHILD_ROLE: &str = "TOPOSTATE_SQLITE_CHILD";
const CHILD_PATH: &str = "TOPOSTATE_SQLITE_CHILD_PATH";
const CHILD_INDEX: &str = "TOPOSTATE_SQLITE_CHILD_INDEX";
const CHILD_TOPOLOGY: &str = "TOPOSTATE_SQLITE_CHILD_TOPOLOGY";
const CHILD_START: &str = "TOPOSTATE_SQLITE_CHILD_START";
const WRITES_PER_CHILD: usize = 50;

/// The child side of the multi-process tests; does nothing unless started by one of them.
#[test]
#[ignore = "run by the multi-process tests in a child process"]
fn child_process() {
    let Ok(role) = std::env::var(CHILD_ROLE) else {
        return;
    };
    let path = PathBuf::from(std::env::var(CHILD_PATH).unwrap());
    let index: usize = std::env::var(CHILD_INDEX).unwrap().parse().unwrap();
    let start: u64 = std::env::var(CHILD_START).unwrap().parse().unwrap();
    match role.as_str() {
        "writer" => {
            let store = SqliteStore::open(&path).unwrap();
            let id = TopologyId::new(std::env::var(CHILD_TOPOLOGY).unwrap().parse().unwrap());
            wait_until(start);
            let (mut won, mut lost) = (Vec::new(), 0);
            for i in 0..WRITES_PER_CHILD {
                let seen = store.get_topology(id).unwrap().version;
                // A slow editor: others get to write between this read and this write.
                let think = u64::try_from((i * 37 + index * 101) % 5).unwrap() * 200;
                std::thread::sleep(Duration::from_micros(think));
                let lan = NewLan::new(format!("p{index}-{i}"), "10.0.0.0/24");
                match store.add_lan(id, lan, Some(seen)) {
                    Ok(edited) => {
                        assert_eq!(edited.version, seen + 1);
                        won.push(i.to_string());
                    }
                    Err(StoreError::VersionConflict(c)) => {
                        assert_eq!(c.expected, seen);
                        assert!(c.current > c.expected, "{c:?}");
                        lost += 1;
                    }
                    Err(other) => panic!("write {i} of process {index} failed: {other}"),
                }
            }
            println!("RESULT won={} lost={lost} ok={}", won.len(), won.join(","));
        }
        "opener" => {
            wait_until(start);
            let store = SqliteStore::open(&path).unwrap();
            let created = store.create_topology(&format!("process-{index}")).unwrap();
            println!("RESULT opened id={}", created.id);
        }
        other => panic!("unknown child role {other}"),
    }
}

fn now_micros() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

fn wait_until(micros: u64) {
    let now = now_micros();
    if micros > now {
        std::thread::sleep(Duration::from_micros(micros - now));
    }
}

/// Starts `n` children of this test binary in `role`, all told to begin at the same
/// instant, and waits for them.
fn run_children(role: &str, n: usize, path: &Path, topology: Option<TopologyId>) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let start = now_micros() + 700_000;
    let children: Vec<_> = (0..n)
        .map(|index| {
            let mut cmd = Command::new(&exe);
            cmd.args([
                "--exact",
                "child_process",
                "--include-ignored",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env(CHILD_ROLE, role)
            .env(CHILD_PATH, path)
            .env(CHILD_INDEX, index.to_string())
            .env(CHILD_START, start.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            if let Some(id) = topology {
                cmd.env(CHILD_TOPOLOGY, id.to_string());
            }
            cmd.spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .enumerate()
        .map(|(index, child)| {
            let Output {
                status,
                stdout,
                stderr,
            } = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&stdout).into_owned();
            let stderr = String::from_utf8_lossy(&stderr).into_owned();
            assert!(
                status.success(),
                "child {index} ({role}) failed: {status}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
            );
            assert!(
                !stdout.contains("locked") && !stderr.contains("locked"),
                "child {index}: {stdout}{stderr}"
            );
            let result = stdout
                .lines()
                .find_map(|l| l.split_once("RESULT ").map(|(_, result)| result))
                .unwrap_or_else(|| {
                    panic!("child {index} ran no child test\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
                });
            String::from(result)
        })
        .collect()
}

fn field<'a>(result: &'a str, name: &str) -> &'a str {
    result
        .split(' ')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {result:?}"))
}

#[test]
fn processes_racing_versioned_writes_lose_no_update() {
    const PROCESSES: usize = 4;
    let (_dir, path, store) = temp_store();
    let lab = store.create_topology("lab").unwrap();
    let results = run_children("writer", PROCESSES, &path, Some(lab.id));

    let (mut won, mut lost) = (0, 0);
    let detail = store.topology_detail(lab.id).unwrap();
    let names: std::collections::HashSet<&str> =
        detail.lans.iter().map(|l| l.name.as_str()).collect();
    for (index, result) in results.iter().enumerate() {
        let w: usize = field(result, "won").parse().unwrap();
        let l: usize = field(result, "lost").parse().unwrap();
        println!("process {index}: {w} writes won, {l} lost to a version conflict");
        assert_eq!(w + l, WRITES_PER_CHILD);
        // Every successful write's row exists.
        for i in field(result, "ok").split(',').filter(|s| !s.is_empty()) {
            let name = format!("p{index}-{i}");
            assert!(names.contains(name.as_str()), "{name} won but is missing");
        }
        won += w;
        lost += l;
    }
    println!(
        "{PROCESSES} processes x {WRITES_PER_CHILD} writes: {won} won, {lost} conflicts, \
         final version {}",
        detail.topology.version
    );
    assert!(won >= 1);
    assert_eq!(won + lost, PROCESSES * WRITES_PER_CHILD);
    assert_eq!(detail.topology.version, 1 + u64::try_from(won).unwrap());
    assert_eq!(
        detail.lans.len(),
        won,
        "a write that lost still left a row, or one was lost"
    );
}

#[test]
fn processes_opening_a_new_file_at_once_all_succeed() {
    const PROCESSES: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    assert!(!path.exists());
    let results = run_children("opener", PROCESSES, &path, None);
    assert_eq!(results.len(), PROCESSES);
    let store = SqliteStore::open(&path).unwrap();
    let mut names: Vec<String> = store
        .list_topologies(None)
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    let expected: Vec<String> = (0..PROCESSES).map(|i| format!("process-{i}")).collect();
    assert_eq!(names, expected);
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
