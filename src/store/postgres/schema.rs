//! The schema: generated from the lifecycle declarations, created and migrated by the store
//! itself inside one transaction holding a `pg_advisory_xact_lock`, and guarded by a
//! fingerprint of those declarations.

use std::format;
use std::string::String;
use std::vec::Vec;

use tokio_postgres::Client;

use crate::store::StoreError;
use crate::store::sql;
use crate::store::sql::schema::{KEY_FINGERPRINT, KEY_VERSION, NameLists, SCHEMA_VERSION, Stamp};

use super::sql_error;

/// The dialect the fingerprint names.
const DIALECT: &str = "postgres";

/// The first key of the advisory lock taken while creating or migrating a schema (the second
/// is a hash of the schema's name), so stores of different schemas do not wait on each
/// other. `'t' 'o' 'p' 'o'` as a big-endian `int4`.
const LOCK_CLASS: i32 = 0x746f_706f;

/// The canonical text a schema was generated from (see
/// [`fingerprint_of`](sql::schema::fingerprint_of)).
pub(super) fn fingerprint_of(version: i64) -> String {
    sql::schema::fingerprint_of(DIALECT, version)
}

/// The DDL of schema version 1, created in the connection's current schema. The generated
/// `IN (...)` lists are the only text put into SQL by formatting; they come from the
/// declarations, never from input.
///
/// Ids are `GENERATED ALWAYS AS IDENTITY`: never reused, so an id held by a client of a
/// deleted row can never name a newer row. Event and mutation ids are drawn while the
/// topology's row is locked, so within one topology they grow in commit order.
/// Timestamps are `BIGINT` microseconds since the Unix epoch, as [`Timestamp`] keeps them.
///
/// `topologies` has no index on `status`: the store never looks rows up by status (a
/// filtered list reads every row, so a corrupt one cannot hide), and without it the
/// updates of a transition and of a version bump touch no indexed column, so PostgreSQL
/// makes them heap-only (no index entry per update for lookups to wade through).
///
/// [`Timestamp`]: crate::store::Timestamp
pub(super) fn ddl_v1() -> String {
    let NameLists {
        status,
        mutation_state,
        op,
        decky_state,
    } = NameLists::new();
    format!(
        "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE topologies (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              TEXT NOT NULL,
    status            TEXT NOT NULL CONSTRAINT topologies_status_known CHECK (status IN ({status})),
    version           BIGINT NOT NULL CONSTRAINT topologies_version_positive CHECK (version >= 1),
    reason            TEXT,
    needs_resync      BOOLEAN NOT NULL DEFAULT false,
    created_at        BIGINT NOT NULL,
    status_changed_at BIGINT NOT NULL,
    CONSTRAINT topologies_name_unique UNIQUE (name)
);

CREATE TABLE lans (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topology_id BIGINT NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    subnet      TEXT NOT NULL,
    is_dmz      BOOLEAN NOT NULL,
    network_id  TEXT,
    x           DOUBLE PRECISION,
    y           DOUBLE PRECISION,
    UNIQUE (topology_id, name),
    UNIQUE (topology_id, id)
);

CREATE TABLE deckies (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topology_id BIGINT NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    services    TEXT[] NOT NULL CONSTRAINT deckies_services_flat
                    CHECK (array_ndims(services) IS NULL OR
                           (array_ndims(services) = 1 AND array_position(services, NULL) IS NULL)),
    config      TEXT,
    state       TEXT NOT NULL CONSTRAINT deckies_state_known CHECK (state IN ({decky_state})),
    ip          TEXT,
    last_error  TEXT,
    x           DOUBLE PRECISION,
    y           DOUBLE PRECISION,
    UNIQUE (topology_id, name),
    UNIQUE (topology_id, id)
);

CREATE TABLE edges (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topology_id BIGINT NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    decky_id    BIGINT NOT NULL,
    lan_id      BIGINT NOT NULL,
    is_bridge   BOOLEAN NOT NULL,
    forwards_l3 BOOLEAN NOT NULL,
    UNIQUE (decky_id, lan_id),
    FOREIGN KEY (topology_id, decky_id) REFERENCES deckies (topology_id, id) ON DELETE CASCADE,
    FOREIGN KEY (topology_id, lan_id) REFERENCES lans (topology_id, id) ON DELETE CASCADE
);
CREATE INDEX edges_topology ON edges (topology_id, id);
CREATE INDEX edges_lan ON edges (lan_id);

CREATE TABLE status_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topology_id BIGINT NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    from_status TEXT NOT NULL CONSTRAINT status_events_from_known CHECK (from_status IN ({status})),
    to_status   TEXT NOT NULL CONSTRAINT status_events_to_known CHECK (to_status IN ({status})),
    at          BIGINT NOT NULL,
    reason      TEXT
);
CREATE INDEX status_events_topology ON status_events (topology_id, id);

CREATE TABLE mutations (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topology_id  BIGINT NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    op           TEXT NOT NULL CONSTRAINT mutations_op_known CHECK (op IN ({op})),
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL CONSTRAINT mutations_state_known CHECK (state IN ({mutation_state})),
    requested_at BIGINT NOT NULL,
    applied_at   BIGINT,
    reason       TEXT
);
CREATE INDEX mutations_topology_state ON mutations (topology_id, state, id);
"
    )
}

/// Is `name` a schema name this store accepts: a plain lowercase SQL identifier that needs
/// no quoting (`[a-z_][a-z0-9_]*`, at most 63 bytes, not `pg_`-prefixed)?
///
/// `CREATE SCHEMA` takes no parameters, so the name is checked this strictly before it is
/// put into the one statement that names it.
pub(super) fn check_schema_name(name: &str) -> Result<(), StoreError> {
    let problem = if name.is_empty() {
        "must not be empty"
    } else if name.len() > 63 {
        "longer than PostgreSQL's 63-byte identifiers"
    } else if name.starts_with("pg_") {
        "names starting with 'pg_' are reserved by PostgreSQL"
    } else if name.starts_with(|c: char| c.is_ascii_digit())
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        "use lowercase ASCII letters, digits and '_', not starting with a digit"
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid {
        field: "schema",
        problem: format!("{}: {problem}", crate::error::Quoted(name)),
    })
}

/// Wraps a driver error met while connecting to `place`.
fn opening<'a>(
    place: &'a str,
    step: &'a str,
) -> impl FnOnce(tokio_postgres::Error) -> StoreError + 'a {
    move |e| sql_error(e, format!("opening {place}: {step}"))
}

/// Reads the stamp of the current schema; `None` for a schema without a `meta` table.
async fn read_stamp(conn: &Client, place: &str) -> Result<Option<Stamp>, StoreError> {
    let has_meta: bool = conn
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables \
             WHERE schemaname = current_schema() AND tablename = $1)",
            &[&"meta"],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(opening(place, "reading the schema"))?;
    if !has_meta {
        return Ok(None);
    }
    let version = meta_value(conn, KEY_VERSION, place, "reading the schema version").await?;
    let fingerprint = meta_value(
        conn,
        KEY_FINGERPRINT,
        place,
        "reading the schema fingerprint",
    )
    .await?;
    let version = match version.as_deref().map(str::parse::<i64>) {
        Some(Ok(v)) if v >= 1 => v,
        _ => {
            return Err(StoreError::Corrupt {
                table: "meta",
                row: String::from(KEY_VERSION),
                problem: format!(
                    "the schema version of {place} is {}, not a positive integer",
                    describe_text(version.as_deref())
                ),
            });
        }
    };
    let Some(fingerprint) = fingerprint else {
        return Err(StoreError::Corrupt {
            table: "meta",
            row: String::from(KEY_FINGERPRINT),
            problem: format!("the schema fingerprint of {place} is missing"),
        });
    };
    Ok(Some(Stamp {
        version,
        fingerprint,
    }))
}

async fn meta_value(
    conn: &Client,
    key: &str,
    place: &str,
    step: &str,
) -> Result<Option<String>, StoreError> {
    conn.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
        .await
        .and_then(|row| row.map(|r| r.try_get::<_, String>(0)).transpose())
        .map_err(opening(place, step))
}

fn describe_text(value: Option<&str>) -> String {
    match value {
        None => String::from("missing"),
        Some(text) => format!("the text {}", crate::error::Quoted(text)),
    }
}

/// Refuses a stamp this build cannot use as it is; `Ok(true)` when it is current.
fn check_stamp(stamp: &Stamp, place: &str) -> Result<bool, StoreError> {
    stamp.check(DIALECT, place, "connect")
}

/// The steps from each older schema version to the next; `MIGRATIONS[i]` moves a schema
/// from version `i + 1` to `i + 2`. A new schema is created at version 1 and migrated, so
/// every schema runs the same steps.
///
/// Each is one batch of statements, run inside the migration's transaction.
type Migration = &'static str;
const MIGRATIONS: &[Migration] = &[
    // 1 → 2: a page of a topology's mutations, newest first, reads this index from the
    // cursor on; `mutations_topology_state` orders by id only within one state.
    "CREATE INDEX mutations_topology ON mutations (topology_id, id);",
    V2_TO_V3,
];

/// 2 → 3: claim leases. A mutation an older build left `applying` has no lease, so
/// the next claim takes it over. `unixepoch(text)` is SQLite's name for the clock, so that
/// the shared statements read the server's clock (`clock_timestamp()`, not the transaction's
/// start) with the same text as SQLite's.
const V2_TO_V3: Migration = "
CREATE FUNCTION unixepoch(text) RETURNS double precision LANGUAGE sql VOLATILE
    AS 'SELECT extract(epoch FROM clock_timestamp())::double precision';
ALTER TABLE mutations
    ADD COLUMN claimed_at  BIGINT,
    ADD COLUMN lease_until BIGINT,
    ADD COLUMN holder      TEXT,
    ADD COLUMN attempts    BIGINT NOT NULL DEFAULT 0
        CONSTRAINT mutations_attempts_counted CHECK (attempts >= 0),
    ADD COLUMN token       BIGINT NOT NULL DEFAULT 0
        CONSTRAINT mutations_token_counted CHECK (token >= 0),
    ADD COLUMN edited_by   BIGINT;
";

/// Creates (the schema itself if `schema` names one that does not exist yet, then the
/// tables) or migrates, safe when several processes connect at once: everything happens
/// in one transaction holding an advisory lock, and the check is repeated under it, so
/// exactly one of them creates the schema and the others find it done.
pub(super) async fn migrate(
    client: &Client,
    schema: Option<&str>,
    place: &str,
) -> Result<(), StoreError> {
    // Fast path: an up-to-date schema needs no lock.
    let exists = match schema {
        Some(name) => schema_exists(client, name, place).await?,
        None => true,
    };
    if exists
        && let Some(stamp) = read_stamp(client, place).await?
        && check_stamp(&stamp, place)?
    {
        return Ok(());
    }
    client
        .batch_execute("BEGIN")
        .await
        .map_err(opening(place, "starting the schema transaction"))?;
    // A failure below leaves the transaction open: the caller closes this connection, and
    // the server rolls it back.
    // Keyed by the schema the tables go to: the named one, else the search path's first.
    client
        .execute(
            "SELECT pg_advisory_xact_lock($1, hashtext(coalesce($2, current_schema(), '')))",
            &[&LOCK_CLASS, &schema],
        )
        .await
        .map_err(opening(place, "locking the schema"))?;
    if let Some(name) = schema
        && !schema_exists(client, name, place).await?
    {
        check_schema_name(name)?;
        // The one statement that is not parameterised: `CREATE SCHEMA` takes no parameters,
        // and `name` passed the strict identifier check above (no quoting needed).
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .map_err(opening(place, "creating the schema"))?;
    }
    let current: Option<String> = client
        .query_one("SELECT current_schema()", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(opening(place, "reading the search path"))?;
    if current.is_none() {
        return Err(sql::backend(format!(
            "opening {place}: the search path names no schema that exists, so there is \
             nowhere to create the tables (name one with PgStore::connect_with_schema)"
        )));
    }
    match read_stamp(client, place).await? {
        None => {
            client
                .batch_execute(&ddl_v1())
                .await
                .map_err(opening(place, "creating the tables"))?;
            let insert = "INSERT INTO meta (key, value) VALUES ($1, $2)";
            client
                .execute(insert, &[&KEY_VERSION, &"1"])
                .await
                .map_err(opening(place, "stamping the schema"))?;
            client
                .execute(insert, &[&KEY_FINGERPRINT, &fingerprint_of(1)])
                .await
                .map_err(opening(place, "stamping the schema"))?;
            run_migrations(client, 1, place).await?;
        }
        Some(stamp) => {
            if !check_stamp(&stamp, place)? {
                run_migrations(client, stamp.version, place).await?;
            }
        }
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(opening(place, "committing the schema"))
}

async fn schema_exists(conn: &Client, name: &str, place: &str) -> Result<bool, StoreError> {
    conn.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
        &[&name],
    )
    .await
    .and_then(|r| r.try_get(0))
    .map_err(opening(place, "looking the schema up"))
}

/// Runs every migration from `from` up to the current schema version and restamps the
/// schema, inside the caller's transaction.
async fn run_migrations(client: &Client, from: i64, place: &str) -> Result<(), StoreError> {
    if from < SCHEMA_VERSION {
        // The stamp's row first: this waits for every transaction holding it `FOR SHARE`
        // (see [`LOCK`]) and makes new ones wait, before any table is altered.
        client
            .execute(
                "SELECT value FROM meta WHERE key = $1 FOR UPDATE",
                &[&KEY_VERSION],
            )
            .await
            .map_err(opening(place, "locking the schema stamp"))?;
        lock_tables(client, place).await?;
    }
    let mut steps = Vec::new();
    sql::schema::run_migrations(MIGRATIONS, from, place, |step, version| {
        steps.push((*step, version));
        Ok(())
    })?;
    for (step, version) in steps {
        client
            .batch_execute(step)
            .await
            .map_err(opening(place, "migrating the schema"))?;
        let update = "UPDATE meta SET value = $2 WHERE key = $1";
        client
            .execute(update, &[&KEY_VERSION, &version.to_string()])
            .await
            .map_err(opening(place, "migrating the schema"))?;
        client
            .execute(update, &[&KEY_FINGERPRINT, &fingerprint_of(version)])
            .await
            .map_err(opening(place, "migrating the schema"))?;
    }
    Ok(())
}

/// How long one attempt to lock the tables waits for each ([`lock_tables`]).
const LOCK_WAIT: &str = "200ms";

/// Attempts to lock the tables before a migration gives up.
const LOCK_ATTEMPTS: u32 = 50;

/// Locks every table of the store that exists (`ACCESS EXCLUSIVE`, until the migration's
/// transaction ends, parents before children) before the migration changes anything. A write of one statement
/// reads the stamp without a lock, in a snapshot taken once its tables are locked (see
/// `sealed!` in the shared planner): with every table locked first, a migration either
/// waits for such a write to end, or has committed before the write's snapshot, where the
/// write sees its stamp and is refused. Every migration takes these locks, whatever
/// tables its steps touch.
///
/// Such a write locks its tables in its own order, so the two can wait on each other in a
/// cycle: each attempt waits at most [`LOCK_WAIT`] for a table, then lets go of the tables
/// it took and tries again (a write the server picked as a deadlock's victim runs again
/// on its side), [`LOCK_ATTEMPTS`] times at most.
async fn lock_tables(client: &Client, place: &str) -> Result<(), StoreError> {
    use tokio_postgres::error::SqlState;

    let present: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_catalog.pg_tables \
             WHERE schemaname = current_schema() AND tablename = ANY ($1) \
             ORDER BY array_position($1, tablename::text)",
            &[&crate::store::SQL_TABLES.as_slice()],
        )
        .await
        .map_err(opening(place, "listing the tables to lock"))?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(opening(place, "listing the tables to lock"))?;
    if present.is_empty() {
        return Ok(());
    }
    // Each attempt in a savepoint of its own, so that a failed one lets go of what it took.
    let lock = format!(
        "SAVEPOINT topostate_lock_tables; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        present.join(", ")
    );
    client
        .batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
        .await
        .map_err(opening(place, "bounding the wait for the tables"))?;
    let mut attempt = 1;
    loop {
        match client.batch_execute(&lock).await {
            Ok(()) => break,
            Err(e)
                if attempt < LOCK_ATTEMPTS
                    && matches!(
                        e.code(),
                        Some(&SqlState::LOCK_NOT_AVAILABLE | &SqlState::T_R_DEADLOCK_DETECTED)
                    ) =>
            {
                client
                    .batch_execute("ROLLBACK TO SAVEPOINT topostate_lock_tables")
                    .await
                    .map_err(opening(place, "locking the tables"))?;
                attempt += 1;
                // Room for the writes that waited on this attempt to finish.
                tokio::time::sleep(core::time::Duration::from_millis(u64::from(attempt) * 5)).await;
            }
            Err(e) => return Err(opening(place, "locking the tables")(e)),
        }
    }
    client
        .batch_execute("SET LOCAL lock_timeout = DEFAULT")
        .await
        .map_err(opening(place, "locking the tables"))
}

// ---- noticing a schema change under an open store --------------------------------------

/// The first statement of every write transaction, pipelined with its `BEGIN` (one round
/// trip): the stored schema version, its row locked `FOR SHARE` until the transaction ends.
///
/// Under `READ COMMITTED` a row lock that waited for a migration's update returns the row as
/// that migration committed it, and once held it makes every later update of the stamp wait
/// for this transaction to end; so the version read here holds for the whole transaction
/// and the transaction never writes in a layout it was not built for. (A migration takes
/// the stamp's row first and every table after, see [`run_migrations`]; this lock is a
/// write's first, taken before any table, so the two never wait on each other in a cycle.)
///
/// The row also carries the transaction's id, which a write needs to resolve a commit in
/// doubt: one prepared statement, where a second simple query cost the server a parse and a
/// plan on every write.
pub(super) const LOCK: &str =
    "SELECT value, txid_current() FROM meta WHERE key = 'schema_version' FOR SHARE";

/// What the server answers a write of one statement with when the stamp is not this
/// build's (the statement's own check, `sealed!` in the shared planner): the failed cast of
/// its message (`invalid_text_representation`).
pub(super) const SEAL_BROKEN: tokio_postgres::error::SqlState =
    tokio_postgres::error::SqlState::INVALID_TEXT_REPRESENTATION;

/// The words the stamp check's failure carries, which tell it from another failed cast.
const SEAL_WORDS: &str = "topostate: the schema version is";

/// Is `e` the stamp check of a write of one statement refusing it?
pub(super) fn seal_broken(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| *db.code() == SEAL_BROKEN && db.message().contains(SEAL_WORDS))
}

/// The stored schema version, read without a lock: by read-only snapshots (which may not
/// take row locks, and see the version of their own snapshot) and after single statements
/// (a version only grows, so one unchanged after a read was unchanged while it ran).
pub(super) const PEEK: &str = "SELECT value FROM meta WHERE key = 'schema_version'";

/// Refuses to go on unless `stored`, the value [`LOCK`] or [`PEEK`] read, is this build's
/// schema version: another version is [`StoreError::SchemaChanged`] naming both; a stamp
/// that is gone or garbled is [`StoreError::Corrupt`].
pub(super) fn check_unchanged(stored: Option<&str>, place: &str) -> Result<(), StoreError> {
    let found = match stored.map(str::parse::<i64>) {
        Some(Ok(v)) if v >= 1 => v,
        _ => {
            return Err(StoreError::Corrupt {
                table: "meta",
                row: String::from(KEY_VERSION),
                problem: format!(
                    "the schema version of {place} is {} since this store connected, not \
                     a positive integer",
                    describe_text(stored)
                ),
            });
        }
    };
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    Err(StoreError::SchemaChanged {
        place: String::from(place),
        opened: SCHEMA_VERSION,
        found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_lists_every_declared_name() {
        sql::schema::assert_lists_every_name(&ddl_v1());
    }

    #[test]
    fn ddl_creates_the_exported_tables() {
        sql::schema::assert_creates_the_tables(&ddl_v1());
    }

    #[test]
    fn fingerprint_names_postgres() {
        assert!(fingerprint_of(SCHEMA_VERSION).starts_with("topostate postgres schema 3; "));
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let stamp = Stamp {
            version: SCHEMA_VERSION + 1,
            fingerprint: fingerprint_of(SCHEMA_VERSION + 1),
        };
        let err = check_stamp(&stamp, "db").unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
        assert!(err.contains("connect with a newer build"), "{err}");
    }

    #[test]
    fn the_lock_is_the_peek_locked() {
        assert_eq!(
            LOCK.replacen("value, txid_current()", "value", 1),
            format!("{PEEK} FOR SHARE")
        );
    }

    #[test]
    fn another_version_is_a_schema_change_naming_both() {
        let now = SCHEMA_VERSION.to_string();
        let next = (SCHEMA_VERSION + 1).to_string();
        assert!(check_unchanged(Some(&now), "db").is_ok());
        let e = check_unchanged(Some(&next), "db").unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::SchemaChanged { opened, found, .. }
                    if opened == SCHEMA_VERSION && found == SCHEMA_VERSION + 1
            ),
            "{e:?}"
        );
        for garbled in [None, Some("two"), Some("0")] {
            let e = check_unchanged(garbled, "db").unwrap_err();
            assert!(
                matches!(e, StoreError::Corrupt { table: "meta", .. }),
                "{e:?}"
            );
        }
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["topostate", "t_1", "_x", &"a".repeat(63)] {
            assert!(check_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Upper",
            "1abc",
            "a-b",
            "a b",
            "a;drop",
            "\"q\"",
            "pg_temp",
            &"a".repeat(64),
        ] {
            let e = check_schema_name(bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    StoreError::Invalid {
                        field: "schema",
                        ..
                    }
                ),
                "{bad}: {e:?}"
            );
        }
    }
}
