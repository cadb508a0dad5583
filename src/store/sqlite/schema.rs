//! The schema: generated from the lifecycle declarations, created and migrated by the store
//! itself under `BEGIN IMMEDIATE`, and guarded by a fingerprint of those declarations.

use std::format;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::string::String;
use std::vec::Vec;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::store::sql;
use crate::store::sql::schema::{KEY_FINGERPRINT, KEY_VERSION, NameLists, SCHEMA_VERSION, Stamp};
use crate::store::{Foreign, StoreError};

use super::sql_error;

/// The dialect the fingerprint names.
const DIALECT: &str = "sqlite";

/// The canonical text a file's schema was generated from (see
/// [`fingerprint_of`](sql::schema::fingerprint_of)).
pub(super) fn fingerprint_of(version: i64) -> String {
    sql::schema::fingerprint_of(DIALECT, version)
}

/// The DDL of schema version 1. The generated `IN (...)` lists are the only text put into
/// SQL by formatting; they come from the declarations, never from input.
pub(super) fn ddl_v1() -> String {
    let NameLists {
        status,
        mutation_state,
        op,
        decky_state,
    } = NameLists::new();
    // AUTOINCREMENT: ids are never reused, so an id held by a client of a deleted row can
    // never name a newer row, and event and mutation ids keep growing.
    format!(
        "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value NOT NULL
);

CREATE TABLE topologies (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL CHECK (status IN ({status})),
    version           INTEGER NOT NULL CHECK (typeof(version) = 'integer' AND version >= 1),
    reason            TEXT,
    needs_resync      INTEGER NOT NULL DEFAULT 0 CHECK (needs_resync IN (0, 1)),
    created_at        INTEGER NOT NULL,
    status_changed_at INTEGER NOT NULL
);
CREATE INDEX topologies_status ON topologies (status);

CREATE TABLE lans (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topology_id INTEGER NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    subnet      TEXT NOT NULL,
    is_dmz      INTEGER NOT NULL CHECK (is_dmz IN (0, 1)),
    network_id  TEXT,
    x           REAL,
    y           REAL,
    UNIQUE (topology_id, name),
    UNIQUE (topology_id, id)
);

CREATE TABLE deckies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topology_id INTEGER NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    services    TEXT NOT NULL,
    config      TEXT,
    state       TEXT NOT NULL CHECK (state IN ({decky_state})),
    ip          TEXT,
    last_error  TEXT,
    x           REAL,
    y           REAL,
    UNIQUE (topology_id, name),
    UNIQUE (topology_id, id)
);

CREATE TABLE edges (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topology_id INTEGER NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    decky_id    INTEGER NOT NULL,
    lan_id      INTEGER NOT NULL,
    is_bridge   INTEGER NOT NULL CHECK (is_bridge IN (0, 1)),
    forwards_l3 INTEGER NOT NULL CHECK (forwards_l3 IN (0, 1)),
    UNIQUE (decky_id, lan_id),
    FOREIGN KEY (topology_id, decky_id) REFERENCES deckies (topology_id, id) ON DELETE CASCADE,
    FOREIGN KEY (topology_id, lan_id) REFERENCES lans (topology_id, id) ON DELETE CASCADE
);
CREATE INDEX edges_topology ON edges (topology_id, id);
CREATE INDEX edges_lan ON edges (lan_id);

CREATE TABLE status_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topology_id INTEGER NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    from_status TEXT NOT NULL CHECK (from_status IN ({status})),
    to_status   TEXT NOT NULL CHECK (to_status IN ({status})),
    at          INTEGER NOT NULL,
    reason      TEXT
);
CREATE INDEX status_events_topology ON status_events (topology_id, id);

CREATE TABLE mutations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    topology_id  INTEGER NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    op           TEXT NOT NULL CHECK (op IN ({op})),
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ({mutation_state})),
    requested_at INTEGER NOT NULL,
    applied_at   INTEGER,
    reason       TEXT
);
CREATE INDEX mutations_topology_state ON mutations (topology_id, state, id);
"
    )
}

/// Wraps a driver error met while opening `place`.
fn opening<'a>(place: &'a str, step: &'a str) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |e| sql_error(e, format!("opening {place}: {step}"))
}

/// SQLite's header: the first 16 bytes of every database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What a database holds, as far as opening a store cares.
#[derive(Debug)]
pub(super) enum Content {
    /// No schema object at all: a new file, or an SQLite database with nothing in it.
    Empty,
    /// A topostate stamp (its version and fingerprint not yet checked).
    Stamped(Stamp),
    /// Tables or views and no topostate stamp: another application's database. The names
    /// of its tables and views, sorted.
    Foreign(Vec<String>),
}

/// Refuses a non-empty file that does not begin with SQLite's header, reading its first
/// bytes with plain file I/O, before SQLite opens it. A missing or zero-byte file passes
/// (it becomes a new store); a file that cannot be read is left to SQLite to report.
pub(super) fn check_header(path: &Path) -> Result<(), StoreError> {
    let Ok(mut file) = File::open(path) else {
        return Ok(());
    };
    let mut head = [0_u8; MAGIC.len()];
    let mut len = 0;
    while len < head.len() {
        match file.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(()),
        }
    }
    if len == 0 || head == *MAGIC {
        return Ok(());
    }
    Err(StoreError::NotAStore {
        path: path.to_path_buf(),
        found: Foreign::NotSqlite,
    })
}

/// Refuses, before anything is written to the file, a database this store must not change:
/// another application's (tables, no stamp), one made from a different lifecycle
/// declaration, or one with a newer schema. Only reads run, on a connection switched to
/// `query_only` for the duration, so no statement can write; `-wal`/`-shm` files SQLite
/// makes to read a WAL-mode file are removed again when the refused connection closes.
/// `Ok(true)` when the database is empty (it holds no schema object at all).
pub(super) fn check_before_writing(conn: &Connection, path: &Path) -> Result<bool, StoreError> {
    let place = path.display().to_string();
    conn.pragma_update(None, "query_only", true)
        .map_err(opening(
            &place,
            "switching to read-only to inspect the file",
        ))?;
    let content = inspect(conn, &place)?;
    conn.pragma_update(None, "query_only", false)
        .map_err(opening(&place, "switching back from read-only"))?;
    match content {
        Content::Empty => Ok(true),
        Content::Stamped(stamp) => check_stamp(&stamp, &place).map(|_| false),
        Content::Foreign(names) => Err(not_a_store(path, names)),
    }
}

fn not_a_store(path: &Path, names: Vec<String>) -> StoreError {
    StoreError::NotAStore {
        path: path.to_path_buf(),
        found: Foreign::Tables(names),
    }
}

/// Reads what the database holds: its stamp, or whether it is empty, or the names of the
/// tables of another application.
///
/// A file is stamped when it has a `meta` table with `key` and `value` columns and a
/// schema version row; one without that row is not a store, whatever else it holds.
pub(super) fn inspect(conn: &Connection, place: &str) -> Result<Content, StoreError> {
    let (objects, meta_columns): (i64, i64) = conn
        .prepare_cached(
            "SELECT (SELECT count(*) FROM sqlite_master), \
                    (SELECT count(*) FROM pragma_table_info('meta') \
                     WHERE name IN ('key', 'value'))",
        )
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(opening(place, "reading the schema"))?;
    if objects == 0 {
        return Ok(Content::Empty);
    }
    let stamped = meta_columns == 2
        && conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM meta WHERE key = ?1)")
            .and_then(|mut s| s.query_row([KEY_VERSION], |r| r.get(0)))
            .map_err(opening(place, "reading the schema version"))?;
    if stamped {
        return read_stamp(conn, place).map(Content::Stamped);
    }
    let names = conn
        .prepare_cached(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(opening(place, "listing the tables"))?;
    Ok(Content::Foreign(names))
}

/// Reads the stamp of a file [`inspect`] found stamped.
fn read_stamp(conn: &Connection, place: &str) -> Result<Stamp, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .map_err(opening(place, "reading the schema"))?;
    let version: Option<Value> = stmt
        .query_row([KEY_VERSION], |r| r.get(0))
        .optional()
        .map_err(opening(place, "reading the schema version"))?;
    let fingerprint: Option<Value> = stmt
        .query_row([KEY_FINGERPRINT], |r| r.get(0))
        .optional()
        .map_err(opening(place, "reading the schema fingerprint"))?;
    let version = match version {
        Some(Value::Integer(v)) if v >= 1 => v,
        other => {
            return Err(StoreError::Corrupt {
                table: "meta",
                row: String::from(KEY_VERSION),
                problem: format!(
                    "the schema version of {place} is {}, not a positive integer",
                    super::codec::describe_value(other.as_ref())
                ),
            });
        }
    };
    let fingerprint = match fingerprint {
        Some(Value::Text(t)) => t,
        other => {
            return Err(StoreError::Corrupt {
                table: "meta",
                row: String::from(KEY_FINGERPRINT),
                problem: format!(
                    "the schema fingerprint of {place} is {}, not text",
                    super::codec::describe_value(other.as_ref())
                ),
            });
        }
    };
    Ok(Stamp {
        version,
        fingerprint,
    })
}

/// Refuses a stamp this build cannot use as it is; `Ok(true)` when it is current.
fn check_stamp(stamp: &Stamp, place: &str) -> Result<bool, StoreError> {
    stamp.check(DIALECT, place, "open it")
}

/// The steps from each older schema version to the next; `MIGRATIONS[i]` moves a file
/// from version `i + 1` to `i + 2`. A new file is created at version 1 and migrated, so
/// every file runs the same steps.
const MIGRATIONS: &[fn(&Connection) -> rusqlite::Result<()>] = &[
    // 1 → 2: a page of a topology's mutations, newest first, reads this index from the
    // cursor on; `mutations_topology_state` orders by id only within one state.
    |conn| conn.execute_batch("CREATE INDEX mutations_topology ON mutations (topology_id, id);"),
    v2_to_v3,
];

/// 2 → 3: claim leases. A mutation an older build left `applying` has no lease, so
/// the next claim takes it over (the only way to move it before leases existed).
fn v2_to_v3(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "
ALTER TABLE mutations ADD COLUMN claimed_at INTEGER;
ALTER TABLE mutations ADD COLUMN lease_until INTEGER;
ALTER TABLE mutations ADD COLUMN holder TEXT;
ALTER TABLE mutations ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0
    CHECK (typeof(attempts) = 'integer' AND attempts >= 0);
ALTER TABLE mutations ADD COLUMN token INTEGER NOT NULL DEFAULT 0
    CHECK (typeof(token) = 'integer' AND token >= 0);
ALTER TABLE mutations ADD COLUMN edited_by INTEGER;
",
    )
}

/// Creates or migrates the schema, safe when several processes open one new file at once:
/// the check is repeated inside `BEGIN IMMEDIATE`, so exactly one of them creates it.
///
/// A database that holds tables but no stamp is refused here too, for the case where
/// another application filled the file after [`check_before_writing`] looked at it.
pub(super) fn migrate(
    conn: &mut Connection,
    place: &str,
    path: Option<&Path>,
) -> Result<(), StoreError> {
    // Fast path: an up-to-date file needs no write lock.
    if let Content::Stamped(stamp) = inspect(conn, place)?
        && check_stamp(&stamp, place)?
        && read_marks(conn)
            .map_err(opening(place, "reading the schema"))?
            .user_version
            == SCHEMA_VERSION
    {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(opening(place, "locking the file to create the schema"))?;
    match inspect(&tx, place)? {
        Content::Empty => {
            tx.execute_batch(&ddl_v1())
                .map_err(opening(place, "creating the schema"))?;
            let mut insert = tx
                .prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2)")
                .map_err(opening(place, "creating the schema"))?;
            insert
                .execute(rusqlite::params![KEY_VERSION, 1])
                .map_err(opening(place, "creating the schema"))?;
            insert
                .execute(rusqlite::params![KEY_FINGERPRINT, fingerprint_of(1)])
                .map_err(opening(place, "creating the schema"))?;
            drop(insert);
            run_migrations(&tx, 1, place)?;
        }
        Content::Stamped(stamp) => {
            if !check_stamp(&stamp, place)? {
                run_migrations(&tx, stamp.version, place)?;
            }
        }
        Content::Foreign(names) => {
            return Err(not_a_store(path.unwrap_or(Path::new(place)), names));
        }
    }
    // The mirror of the stamp that `check_unchanged` reads; set here for a new file, after
    // a migration, and on a file stamped before the mirror existed.
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(opening(place, "stamping the schema version"))?;
    tx.commit().map_err(opening(place, "committing the schema"))
}

/// Runs every migration from `from` up to the current schema version and restamps the file.
fn run_migrations(conn: &Connection, from: i64, place: &str) -> Result<(), StoreError> {
    sql::schema::run_migrations(MIGRATIONS, from, place, |step, version| {
        step(conn).map_err(opening(place, "migrating the schema"))?;
        let mut update = conn
            .prepare_cached("UPDATE meta SET value = ?2 WHERE key = ?1")
            .map_err(opening(place, "migrating the schema"))?;
        update
            .execute(rusqlite::params![KEY_VERSION, version])
            .map_err(opening(place, "migrating the schema"))?;
        update
            .execute(rusqlite::params![KEY_FINGERPRINT, fingerprint_of(version)])
            .map_err(opening(place, "migrating the schema"))?;
        Ok(())
    })
}

// ---- noticing a schema change under an open store --------------------------------------

/// What a handle saw of the file's schema, read from the database header: SQLite's schema
/// cookie, which every change of a table, index, view or trigger bumps, and the header's
/// `user_version`, where [`migrate`] mirrors the stamp's schema version (so a migration
/// that changes no DDL still changes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Marks {
    cookie: i64,
    user_version: i64,
}

/// Reads the header's marks: two cached `PRAGMA` statements reading the page SQLite already
/// holds for the transaction they run in. (The `pragma_*` table functions would read both
/// in one statement, but they prepare a new statement on every run, which costs more than
/// the rest of a write.)
pub(super) fn read_marks(conn: &Connection) -> rusqlite::Result<Marks> {
    let read = |pragma: &str| -> rusqlite::Result<i64> {
        conn.prepare_cached(pragma)?.query_row([], |r| r.get(0))
    };
    Ok(Marks {
        cookie: read("PRAGMA schema_version")?,
        user_version: read("PRAGMA user_version")?,
    })
}

/// Refuses to go on when another connection changed the schema since this handle last
/// looked (`seen`): run first in every transaction, so the answer holds for all of it (a
/// write transaction holds the write lock, so no migration can commit until it ends).
///
/// A change that leaves the stamp at this build's version (an index someone added, a
/// `VACUUM`) is accepted and remembered. Another version is
/// [`StoreError::SchemaChanged`]; a stamp that is gone or now names another declaration is
/// [`StoreError::Corrupt`].
pub(super) fn check_unchanged(
    conn: &Connection,
    seen: &mut Marks,
    path: &Path,
) -> Result<(), super::Fail> {
    let now = read_marks(conn)?;
    if now == *seen {
        return Ok(());
    }
    let place = path.display().to_string();
    let stamp = match inspect(conn, &place)? {
        Content::Stamped(stamp) => stamp,
        Content::Empty | Content::Foreign(_) => {
            return Err(StoreError::Corrupt {
                table: "meta",
                row: String::from(KEY_VERSION),
                problem: format!("the schema stamp of {place} is gone since this store was opened"),
            }
            .into());
        }
    };
    let found = if stamp.version == SCHEMA_VERSION {
        now.user_version
    } else {
        stamp.version
    };
    if found != SCHEMA_VERSION {
        return Err(StoreError::SchemaChanged {
            place,
            opened: SCHEMA_VERSION,
            found,
        }
        .into());
    }
    check_stamp(&stamp, &place)?;
    *seen = now;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::schema::SCHEMA_VERSION;
    use std::vec::Vec;

    #[test]
    fn ddl_lists_every_declared_name() {
        sql::schema::assert_lists_every_name(&ddl_v1());
    }

    #[test]
    fn ddl_creates_the_exported_tables() {
        sql::schema::assert_creates_the_tables(&ddl_v1());
    }

    #[test]
    fn fingerprint_names_sqlite() {
        assert!(fingerprint_of(SCHEMA_VERSION).starts_with("topostate sqlite schema 3; "));
    }

    #[test]
    fn a_version_1_file_migrates_and_its_stuck_claim_has_no_lease() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&ddl_v1()).unwrap();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, 1), (?2, ?3)",
            rusqlite::params![KEY_VERSION, KEY_FINGERPRINT, fingerprint_of(1)],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO topologies (name, status, version, created_at, status_changed_at) \
             VALUES ('lab', 'active', 1, 0, 0); \
             INSERT INTO mutations (topology_id, op, payload, state, requested_at) \
             VALUES (1, 'add_lan', '{}', 'applying', 0);",
        )
        .unwrap();
        migrate(&mut conn, "v1.db", None).unwrap();
        let stamp = read_stamp(&conn, "v1.db").unwrap();
        assert_eq!(stamp.version, SCHEMA_VERSION);
        assert!(check_stamp(&stamp, "v1.db").unwrap());
        let (lease, attempts, token): (Option<i64>, i64, i64) = conn
            .query_row(
                "SELECT lease_until, attempts, token FROM mutations WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((lease, attempts, token), (None, 0, 0));
    }

    /// The plan SQLite picks for `sql` on a schema made by [`migrate`], on a connection
    /// configured as the store's (whose plans do not depend on the values bound).
    fn plan(sql: &str) -> String {
        let mut conn = Connection::open_in_memory().unwrap();
        assert!(super::super::configure(&conn, std::time::Duration::from_secs(5)).is_ok());
        migrate(&mut conn, "memory", None).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let params = [1, 2, 3, 4, 5, 6, 7];
        let rows = stmt
            .query_map(
                rusqlite::params_from_iter(&params[..stmt.parameter_count()]),
                |r| r.get::<_, String>(3),
            )
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn pages_read_an_index_from_the_cursor_without_sorting() {
        for (sql, index) in [
            (sql::EVENTS_PAGE.sqlite, "INDEX status_events_topology"),
            (sql::MUTATIONS_PAGE.sqlite, "INDEX mutations_topology "),
            (sql::TOPOLOGIES_PAGE.sqlite, "INTEGER PRIMARY KEY"),
        ] {
            let plan = plan(sql);
            assert!(plan.contains(index), "{sql}: {plan}");
            assert!(plan.contains("<?") || plan.contains(">?"), "{sql}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
        }
    }

    /// A claim finds the oldest open mutation by two seeks in `(topology_id, state, id)`,
    /// never by walking the topology's mutations (its applied and failed ones included), so
    /// its cost does not grow with the queue's history.
    #[test]
    fn a_claim_seeks_the_oldest_open_mutation() {
        let plan = plan(sql::CLAIM_NEXT.sqlite);
        let seeks = plan
            .matches("SEARCH mutations USING COVERING INDEX mutations_topology_state (topology_id=? AND state=?)")
            .count();
        assert_eq!(seeks, 2, "{plan}");
        assert!(!plan.contains("SCAN mutations"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn a_newer_file_is_refused() {
        let stamp = Stamp {
            version: SCHEMA_VERSION + 1,
            fingerprint: fingerprint_of(SCHEMA_VERSION + 1),
        };
        let err = check_stamp(&stamp, "x.db").unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
        assert!(err.contains("open it with a newer build"), "{err}");
    }
}
