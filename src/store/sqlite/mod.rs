//! [`SqliteStore`]: the store on one SQLite file, shared by threads and processes.
//!
//! How the guarantees of the [`TopologyStore`] contract hold here:
//!
//! - Every write runs in one `BEGIN IMMEDIATE` transaction: the write lock is taken before
//!   the first read, so a read-check-write sequence cannot be overtaken, and a waiting
//!   writer waits in SQLite's busy handler (never an upgrade deadlock, which `busy_timeout`
//!   cannot resolve). A refused write rolls back, bump included.
//! - The version bump is a guarded `UPDATE ... SET version = version + 1 WHERE id = ? AND
//!   version = ? AND version < i64::MAX`, so a bump can never turn the integer into a float.
//! - The schema's `CHECK` lists and its fingerprint are generated from the lifecycle
//!   declarations; nothing here spells out a status string.
//! - Rows are read back strictly: an unknown name or an impossible version is a
//!   [`StoreError::Corrupt`] naming the table, the row and the value.

mod codec;
mod edits;
mod schema;

use std::fmt;
use std::format;
use std::path::{Path, PathBuf};
use std::string::String;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use std::vec::Vec;

use rusqlite::{Connection, ErrorCode, Row, TransactionBehavior, params};

use crate::store::policy::{delete_gate, free_form_gate, live_gate};
use crate::store::{
    BackendError, ChildEdit, Claim, Decky, DeckyId, DeckyRuntime, DeckyState, Edge, EdgeId,
    EditReport, Edited, Entity, EventId, Lan, LanId, Mutation, MutationClaim, MutationId,
    Precondition, StatusEvent, StoreError, Timestamp, TopologyDetail, TopologyRecord,
    TopologyStore, Transitioned, check_name, check_text,
};
use crate::{
    INITIAL_VERSION, MAX_VERSION, MutationOp, MutationState, TopologyId, TopologyStatus,
    VersionConflict, VersionError,
};

use codec::At;
use edits::apply_edits;

/// How long a connection waits for another one's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection; more than the store's distinct statements.
const STATEMENT_CACHE: usize = 96;

/// [`MAX_VERSION`] as the SQL integer it is stored as.
const MAX_SQL_VERSION: i64 = i64::MAX;
const _: () = assert!(MAX_VERSION == MAX_SQL_VERSION.unsigned_abs());

/// [`INITIAL_VERSION`] as the SQL integer it is stored as.
const INITIAL_SQL_VERSION: i64 = 1;
const _: () = assert!(INITIAL_VERSION == INITIAL_SQL_VERSION.unsigned_abs());

/// A [`TopologyStore`] on one SQLite database (a file, or memory).
///
/// Each `SqliteStore` holds one connection behind a mutex, so one handle is shared by
/// threads as it is (`Send + Sync`), and several handles, in one process or many, each
/// have their own connection to the same file. Every write is one `BEGIN IMMEDIATE`
/// transaction, so the contract's guarantees hold across all of them.
///
/// On every connection: `busy_timeout` (5 s), `foreign_keys = ON`, and a prepared-statement
/// cache. Files are put in WAL mode (readers never block the writer, and the other way
/// round) with `synchronous = NORMAL`: a committed write survives a crash of the process,
/// but the last few may be lost if the machine loses power.
///
/// The store creates its schema itself, and refuses a file made from a different
/// lifecycle declaration (a schema fingerprint is checked on open).
///
/// ```
/// use topostate::store::{NewLan, SqliteStore, TopologyStore, TypedStore};
///
/// let store = SqliteStore::open_in_memory()?;
/// let lab = store.create("lab")?;
/// let lan = store.add_lan(lab.id(), NewLan::new("dmz", "10.0.0.0/24"), Some(lab.version()))?;
/// assert_eq!(lan.version, 2);
/// // A writer holding the old version is refused, not silently overwritten:
/// let stale = store.add_lan(lab.id(), NewLan::new("lan-a", "10.0.1.0/24"), Some(1));
/// assert!(stale.unwrap_err().is_conflict());
/// # Ok::<(), topostate::store::StoreError>(())
/// ```
///
/// Stuck claims: a mutation left `applying` by a crashed applier stays `applying` (the
/// topology's queue then answers [`Claim::Busy`]); recovering it is out of scope here.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("SqliteStore");
        match &self.path {
            Some(path) => s.field("path", path),
            None => s.field("path", &":memory:"),
        };
        s.finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in the SQLite file at `path`.
    ///
    /// A new file gets the schema; an existing one is checked against this build's
    /// lifecycle declarations. Several processes may open one new file at once: exactly
    /// one creates the schema, under `BEGIN IMMEDIATE`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the file cannot be opened or is not an SQLite database
    /// (the message names the path); [`StoreError::Corrupt`] with table `meta` if the file
    /// was made from a different lifecycle declaration (the message shows the expected and
    /// the found fingerprint) or by a newer schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let place = path.display().to_string();
        let context = || format!("opening {place}");
        let mut conn = Connection::open(path).map_err(|e| sql_error(e, context()))?;
        configure(&conn, true).map_err(|e| e.into_store(context()))?;
        schema::migrate(&mut conn, &place)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: Some(path.to_path_buf()),
        })
    }

    /// Opens a new, empty store in memory; it lives as long as this handle.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite cannot allocate the database.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let context = || String::from("opening an in-memory database");
        let mut conn = Connection::open_in_memory().map_err(|e| sql_error(e, context()))?;
        configure(&conn, false).map_err(|e| e.into_store(context()))?;
        schema::migrate(&mut conn, "an in-memory database")?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: None,
        })
    }

    /// The file this store is on, or `None` in memory.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection, recovered if a panicking caller poisoned the mutex (the transaction
    /// it was in rolled back when it unwound, or is rolled back here).
    fn lock(&self) -> MutexGuard<'_, Connection> {
        let conn = self.conn.lock().unwrap_or_else(|poisoned| {
            self.conn.clear_poison();
            PoisonError::into_inner(poisoned)
        });
        if !conn.is_autocommit() {
            // Best effort: a failure here resurfaces as the next BEGIN's error.
            let _ = conn.execute_batch("ROLLBACK");
        }
        conn
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committed only if `f` succeeds.
    fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> R<T>,
    ) -> Result<T, StoreError> {
        self.transaction(op, TransactionBehavior::Immediate, f)
    }

    /// Runs `f` in one read transaction: a consistent snapshot, no write lock.
    fn read<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> R<T>,
    ) -> Result<T, StoreError> {
        self.transaction(op, TransactionBehavior::Deferred, f)
    }

    /// Runs `f` in one transaction of the given behavior, committed only if `f` succeeds.
    fn transaction<T>(
        &self,
        op: &'static str,
        behavior: TransactionBehavior,
        f: impl FnOnce(&Connection) -> R<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let result = (|| {
            let tx = conn.transaction_with_behavior(behavior)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })();
        result.map_err(|e: Fail| e.into_store(op))
    }

    /// Runs one statement's worth of reading, outside any explicit transaction.
    fn read_one<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> R<T>,
    ) -> Result<T, StoreError> {
        let conn = self.lock();
        f(&conn).map_err(|e| e.into_store(op))
    }
}

// ---- errors ----------------------------------------------------------------------------

/// A failed step: a refusal to report as it is, or a driver error to wrap.
enum Fail {
    Store(StoreError),
    Sql(rusqlite::Error),
}

type R<T> = Result<T, Fail>;

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl Fail {
    fn into_store(self, context: impl Into<String>) -> StoreError {
        match self {
            Self::Store(e) => e,
            Self::Sql(e) => sql_error(e, context),
        }
    }
}

/// A driver error with what the store was doing; `source` is the rusqlite error.
#[derive(Debug)]
struct SqlError {
    context: String,
    source: rusqlite::Error,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let context = &self.context;
        let source = &self.source;
        match source.sqlite_error_code() {
            _ if is_busy(source) => write!(
                f,
                "{context}: the database stayed locked by another connection for longer than \
                 the busy timeout of {} s ({source})",
                BUSY_TIMEOUT.as_secs()
            ),
            Some(ErrorCode::NotADatabase) => write!(
                f,
                "{context}: not an SQLite database, or a damaged one ({source})"
            ),
            Some(ErrorCode::DatabaseCorrupt) => {
                write!(f, "{context}: the database file is damaged ({source})")
            }
            _ => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for SqlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Wraps a driver error as [`StoreError::Backend`].
fn sql_error(e: rusqlite::Error, context: impl Into<String>) -> StoreError {
    StoreError::Backend(BackendError::new(SqlError {
        context: context.into(),
        source: e,
    }))
}

fn not_found(entity: Entity, id: u64) -> StoreError {
    StoreError::NotFound { entity, id }
}

/// The error of highest precedence among `errors` (the earliest on a tie).
fn pick<const N: usize>(errors: [Option<StoreError>; N]) -> Option<StoreError> {
    errors.into_iter().fold(None, StoreError::first)
}

fn refuse(errors: Option<StoreError>) -> R<()> {
    errors.map_or(Ok(()), |e| Err(Fail::Store(e)))
}

/// A stored id as SQL's integer; ids above `i64::MAX` cannot exist.
fn key(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

/// A topology id as SQL's integer, or not found.
fn topology_key(id: TopologyId) -> R<i64> {
    key(id.get()).ok_or_else(|| not_found(Entity::Topology, id.get()).into())
}

fn id_of(key: i64) -> u64 {
    key.unsigned_abs()
}

// ---- connection setup ------------------------------------------------------------------

fn configure(conn: &Connection, file: bool) -> R<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let on: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    if !on {
        return Err(backend("foreign key enforcement could not be switched on").into());
    }
    if file {
        wal(conn)?;
        // In WAL mode, NORMAL keeps the file consistent on any crash and loses at most the
        // last commits on power loss; FULL would fsync every commit.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
    }
    Ok(())
}

/// Puts the file in WAL mode, unless it already is. Switching can itself answer busy
/// (without going through the busy handler) while another process is switching or creating
/// the file, so it is retried until the busy timeout.
fn wal(conn: &Connection) -> R<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        let mode = conn
            .pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0))
            .and_then(|mode| {
                if mode.eq_ignore_ascii_case("wal") {
                    Ok(mode)
                } else {
                    conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                }
            });
        match mode {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(backend(format!(
                    "the file cannot be put in WAL mode (journal mode stays '{mode}')"
                ))
                .into());
            }
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn backend(message: impl Into<String>) -> StoreError {
    StoreError::Backend(BackendError::new(message.into()))
}

// ---- reading rows ----------------------------------------------------------------------

macro_rules! topology_columns {
    () => {
        "id, name, status, version, reason, needs_resync, created_at, status_changed_at"
    };
}
macro_rules! lan_columns {
    () => {
        "id, topology_id, name, subnet, is_dmz, network_id, x, y"
    };
}
macro_rules! decky_columns {
    () => {
        "id, topology_id, name, services, config, state, ip, last_error, x, y"
    };
}
macro_rules! edge_columns {
    () => {
        "id, topology_id, decky_id, lan_id, is_bridge, forwards_l3"
    };
}
macro_rules! event_columns {
    () => {
        "id, topology_id, from_status, to_status, at, reason"
    };
}
macro_rules! mutation_columns {
    () => {
        "id, topology_id, op, payload, state, requested_at, applied_at, reason"
    };
}

fn at(table: &'static str, row: &Row<'_>) -> R<At> {
    Ok(At {
        table,
        id: row.get(0)?,
    })
}

fn topology_row(row: &Row<'_>) -> R<TopologyRecord> {
    let at = at("topologies", row)?;
    Ok(TopologyRecord {
        id: TopologyId::new(id_of(at.id)),
        name: at.get(row, 1)?,
        status: at.name(row, 2, TopologyStatus::parse)?,
        version: at.version(row, 3)?,
        reason: at.get(row, 4)?,
        needs_resync: at.get(row, 5)?,
        created_at: Timestamp::from_micros(at.get(row, 6)?),
        status_changed_at: Timestamp::from_micros(at.get(row, 7)?),
    })
}

fn lan_row(row: &Row<'_>) -> R<Lan> {
    let at = at("lans", row)?;
    Ok(Lan {
        id: LanId::new(id_of(at.id)),
        topology_id: TopologyId::new(id_of(at.get(row, 1)?)),
        name: at.get(row, 2)?,
        subnet: at.get(row, 3)?,
        is_dmz: at.get(row, 4)?,
        network_id: at.get(row, 5)?,
        x: at.get(row, 6)?,
        y: at.get(row, 7)?,
    })
}

fn decky_row(row: &Row<'_>) -> R<Decky> {
    let at = at("deckies", row)?;
    Ok(Decky {
        id: DeckyId::new(id_of(at.id)),
        topology_id: TopologyId::new(id_of(at.get(row, 1)?)),
        name: at.get(row, 2)?,
        services: at.services(row, 3)?,
        config: at.get(row, 4)?,
        state: at.name(row, 5, DeckyState::parse)?,
        ip: at.get(row, 6)?,
        last_error: at.get(row, 7)?,
        x: at.get(row, 8)?,
        y: at.get(row, 9)?,
    })
}

fn edge_row(row: &Row<'_>) -> R<Edge> {
    let at = at("edges", row)?;
    Ok(Edge {
        id: EdgeId::new(id_of(at.id)),
        topology_id: TopologyId::new(id_of(at.get(row, 1)?)),
        decky: DeckyId::new(id_of(at.get(row, 2)?)),
        lan: LanId::new(id_of(at.get(row, 3)?)),
        is_bridge: at.get(row, 4)?,
        forwards_l3: at.get(row, 5)?,
    })
}

fn event_row(row: &Row<'_>) -> R<StatusEvent> {
    let at = at("status_events", row)?;
    Ok(StatusEvent {
        id: EventId::new(id_of(at.id)),
        topology_id: TopologyId::new(id_of(at.get(row, 1)?)),
        from: at.name(row, 2, TopologyStatus::parse)?,
        to: at.name(row, 3, TopologyStatus::parse)?,
        at: Timestamp::from_micros(at.get(row, 4)?),
        reason: at.get(row, 5)?,
    })
}

fn mutation_row(row: &Row<'_>) -> R<Mutation> {
    let at = at("mutations", row)?;
    Ok(Mutation {
        id: MutationId::new(id_of(at.id)),
        topology_id: TopologyId::new(id_of(at.get(row, 1)?)),
        op: at.name(row, 2, MutationOp::parse)?,
        payload: at.get(row, 3)?,
        state: at.name(row, 4, MutationState::parse)?,
        requested_at: Timestamp::from_micros(at.get(row, 5)?),
        applied_at: at.get::<Option<i64>>(row, 6)?.map(Timestamp::from_micros),
        reason: at.get(row, 7)?,
    })
}

/// Runs a cached query and decodes at most one row.
fn query_one<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &'static str,
    params: P,
    decode: fn(&Row<'_>) -> R<T>,
) -> R<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    match rows.next()? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// Runs a cached query and decodes every row; the first unreadable row fails the list.
fn query_all<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &'static str,
    params: P,
    decode: fn(&Row<'_>) -> R<T>,
) -> R<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

fn int0(row: &Row<'_>) -> R<i64> {
    Ok(row.get(0)?)
}

/// A topology row, or [`StoreError::NotFound`].
fn topology(conn: &Connection, id: TopologyId) -> R<TopologyRecord> {
    let found = match key(id.get()) {
        Some(k) => query_one(
            conn,
            concat!(
                "SELECT ",
                topology_columns!(),
                " FROM topologies WHERE id = ?1"
            ),
            [k],
            topology_row,
        )?,
        None => None,
    };
    found.ok_or_else(|| not_found(Entity::Topology, id.get()).into())
}

/// What the guards of a write need to know about a topology.
struct Head {
    key: i64,
    status: TopologyStatus,
    version: u64,
}

fn head(conn: &Connection, id: TopologyId) -> R<Head> {
    fn decode(row: &Row<'_>) -> R<Head> {
        let at = at("topologies", row)?;
        Ok(Head {
            key: at.id,
            status: at.name(row, 1, TopologyStatus::parse)?,
            version: at.version(row, 2)?,
        })
    }
    let found = match key(id.get()) {
        Some(k) => query_one(
            conn,
            "SELECT id, status, version FROM topologies WHERE id = ?1",
            [k],
            decode,
        )?,
        None => None,
    };
    found.ok_or_else(|| not_found(Entity::Topology, id.get()).into())
}

// ---- versions --------------------------------------------------------------------------

/// The version guard of one write: a stale `expected` is a conflict; a matching one is a
/// bump unless `bumps` is false, and a bump at the maximum is an overflow.
fn version_guard(current: u64, expected: Option<u64>, bumps: bool) -> Option<StoreError> {
    let expected = if bumps {
        expected
    } else {
        // Checked, not bumped: only a conflict can come of it.
        match expected {
            Some(e) if e != current => {
                return Some(StoreError::VersionConflict(VersionConflict {
                    current,
                    expected: e,
                }));
            }
            _ => None,
        }
    };
    match crate::check_and_bump(current, expected) {
        Ok(_) => None,
        Err(VersionError::Conflict(c)) => Some(StoreError::VersionConflict(c)),
        Err(VersionError::Overflow(o)) => Some(StoreError::VersionOverflow(o)),
    }
}

/// Bumps the version from `expected`, in the caller's transaction. The guard is repeated
/// in SQL: the `UPDATE` matches only `expected` and only below `i64::MAX`, so `version + 1`
/// is never computed where it would overflow into a float.
fn bump(conn: &Connection, topology: i64, expected: u64) -> R<u64> {
    let changed = match key(expected) {
        Some(expected_key) => conn
            .prepare_cached(
                "UPDATE topologies SET version = version + 1 \
                 WHERE id = ?1 AND version = ?2 AND version < ?3",
            )?
            .execute(params![topology, expected_key, MAX_SQL_VERSION])?,
        None => 0,
    };
    if changed == 1 {
        return Ok(expected + 1);
    }
    // Unreachable while the caller checked the version in this transaction; report what
    // the table says rather than trusting that.
    let current = head(conn, TopologyId::new(id_of(topology)))?.version;
    Err(version_guard(current, Some(expected), true)
        .unwrap_or_else(|| backend("the version bump matched no row"))
        .into())
}

/// Bumps once if `expected` is given and `bumps`; the version after the write.
fn finish_version(conn: &Connection, head: &Head, expected: Option<u64>, bumps: bool) -> R<u64> {
    match expected {
        Some(v) if bumps => bump(conn, head.key, v),
        _ => Ok(head.version),
    }
}

// ---- the queue -------------------------------------------------------------------------

/// A mutation's topology and state, or [`StoreError::NotFound`] (also when it belongs to
/// another topology than the claim says).
fn claimed(conn: &Connection, claim: &MutationClaim) -> R<(i64, MutationState)> {
    fn decode(row: &Row<'_>) -> R<(i64, MutationState)> {
        let at = at("mutations", row)?;
        Ok((at.id, at.name(row, 2, MutationState::parse)?))
    }
    let found = match (key(claim.id().get()), key(claim.topology_id().get())) {
        (Some(id), Some(topology)) => query_one(
            conn,
            "SELECT id, topology_id, state FROM mutations WHERE id = ?1 AND topology_id = ?2",
            [id, topology],
            decode,
        )?,
        _ => None,
    };
    found.ok_or_else(|| not_found(Entity::Mutation, claim.id().get()).into())
}

/// Moves a claimed mutation from `applying` to `to`; anything but `applying` is refused.
fn mark(
    conn: &Connection,
    claim: &MutationClaim,
    to: MutationState,
    reason: Option<&str>,
) -> R<Mutation> {
    // As in every backend: a claim on a topology that is gone is that topology's not-found.
    head(conn, claim.topology_id())?;
    let (k, state) = claimed(conn, claim)?;
    refuse(pick([
        (state != MutationState::Applying).then_some(StoreError::MutationState {
            id: claim.id(),
            expected: MutationState::Applying,
            found: state,
        }),
        reason.and_then(|r| check_text("reason", r).err()),
    ]))?;
    let marked = query_one(
        conn,
        concat!(
            "UPDATE mutations SET state = ?2, applied_at = ?3, reason = ?4 ",
            "WHERE id = ?1 AND state = ?5 RETURNING ",
            mutation_columns!()
        ),
        params![
            k,
            to.as_str(),
            Timestamp::now().as_micros(),
            reason,
            MutationState::Applying.as_str()
        ],
        mutation_row,
    )?;
    marked.ok_or_else(|| backend("the mutation left 'applying' during its mark").into())
}

// ---- the contract ----------------------------------------------------------------------

impl TopologyStore for SqliteStore {
    fn create_topology(&self, name: &str) -> Result<TopologyRecord, StoreError> {
        check_name("topology name", name)?;
        self.write("create_topology", |conn| {
            let taken = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM topologies WHERE name = ?1)")?
                .query_row([name], |r| r.get::<_, bool>(0))?;
            if taken {
                return Err(StoreError::Duplicate {
                    entity: Entity::Topology,
                    name: String::from(name),
                }
                .into());
            }
            let now = Timestamp::now();
            let record = query_one(
                conn,
                concat!(
                    "INSERT INTO topologies (name, status, version, reason, needs_resync, ",
                    "created_at, status_changed_at) VALUES (?1, ?2, ?3, NULL, 0, ?4, ?4) ",
                    "RETURNING ",
                    topology_columns!()
                ),
                params![
                    name,
                    TopologyStatus::Pending.as_str(),
                    INITIAL_SQL_VERSION,
                    now.as_micros()
                ],
                topology_row,
            )?;
            record.ok_or_else(|| backend("the insert returned no row").into())
        })
    }

    fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError> {
        self.read_one("get_topology", |conn| topology(conn, id))
    }

    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
    ) -> Result<Vec<TopologyRecord>, StoreError> {
        // Every row is read, filter or not, so a corrupt row fails the list instead of
        // silently falling out of it.
        let all = self.read_one("list_topologies", |conn| {
            query_all(
                conn,
                concat!(
                    "SELECT ",
                    topology_columns!(),
                    " FROM topologies ORDER BY id"
                ),
                [],
                topology_row,
            )
        })?;
        Ok(match status {
            Some(s) => all.into_iter().filter(|t| t.status == s).collect(),
            None => all,
        })
    }

    fn topology_detail(&self, id: TopologyId) -> Result<TopologyDetail, StoreError> {
        self.read("topology_detail", |conn| {
            let topology = topology(conn, id)?;
            let k = topology_key(id)?;
            Ok(TopologyDetail {
                topology,
                lans: query_all(
                    conn,
                    concat!(
                        "SELECT ",
                        lan_columns!(),
                        " FROM lans WHERE topology_id = ?1 ORDER BY name"
                    ),
                    [k],
                    lan_row,
                )?,
                deckies: query_all(
                    conn,
                    concat!(
                        "SELECT ",
                        decky_columns!(),
                        " FROM deckies WHERE topology_id = ?1 ORDER BY name"
                    ),
                    [k],
                    decky_row,
                )?,
                edges: query_all(
                    conn,
                    concat!(
                        "SELECT ",
                        edge_columns!(),
                        " FROM edges WHERE topology_id = ?1 ORDER BY id"
                    ),
                    [k],
                    edge_row,
                )?,
            })
        })
    }

    fn transition_status(
        &self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&str>,
        precondition: Precondition,
    ) -> Result<Transitioned, StoreError> {
        self.write("transition_status", |conn| {
            let mut record = topology(conn, id)?;
            let from = record.status;
            refuse(pick([
                precondition
                    .status
                    .filter(|&believed| believed != from)
                    .map(|expected| StoreError::StaleStatus {
                        expected,
                        found: from,
                    }),
                reason.and_then(|r| check_text("reason", r).err()),
                (!from.can_transition_to(to)).then_some(StoreError::IllegalTransition { from, to }),
                version_guard(record.version, precondition.version, false),
            ]))?;
            let k = topology_key(id)?;
            let now = Timestamp::now();
            // Compare-and-set on the status: the write matches only the status just checked.
            let changed = conn
                .prepare_cached(
                    "UPDATE topologies SET status = ?2, status_changed_at = ?3, reason = ?4 \
                     WHERE id = ?1 AND status = ?5",
                )?
                .execute(params![
                    k,
                    to.as_str(),
                    now.as_micros(),
                    reason,
                    from.as_str()
                ])?;
            if changed != 1 {
                return Err(backend("the status changed during its own transaction").into());
            }
            let event = conn
                .prepare_cached(
                    "INSERT INTO status_events (topology_id, from_status, to_status, at, reason) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .insert(params![
                    k,
                    from.as_str(),
                    to.as_str(),
                    now.as_micros(),
                    reason
                ])?;
            record.status = to;
            record.status_changed_at = now;
            record.reason = reason.map(String::from);
            Ok(Transitioned {
                event: StatusEvent {
                    id: EventId::new(id_of(event)),
                    topology_id: id,
                    from,
                    to,
                    at: now,
                    reason: record.reason.clone(),
                },
                topology: record,
            })
        })
    }

    fn list_status_events(&self, id: TopologyId) -> Result<Vec<StatusEvent>, StoreError> {
        self.read("list_status_events", |conn| {
            let head = head(conn, id)?;
            query_all(
                conn,
                concat!(
                    "SELECT ",
                    event_columns!(),
                    " FROM status_events WHERE topology_id = ?1 ORDER BY id DESC"
                ),
                [head.key],
                event_row,
            )
        })
    }

    fn edit(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError> {
        self.write("edit", |conn| {
            let head = head(conn, id)?;
            let bumps = !edits.iter().all(ChildEdit::is_noop);
            let (touched, refused) = apply_edits(conn, head.key, edits)?;
            refuse(pick([
                refused,
                free_form_gate(head.status).err(),
                version_guard(head.version, expected_version, bumps),
            ]))?;
            let version = finish_version(conn, &head, expected_version, bumps)?;
            Ok(EditReport { touched, version })
        })
    }

    fn set_lan_network_id(&self, lan: LanId, network_id: Option<&str>) -> Result<(), StoreError> {
        self.write("set_lan_network_id", |conn| {
            let owner = match key(lan.get()) {
                Some(k) => query_one(conn, "SELECT id FROM lans WHERE id = ?1", [k], int0)?,
                None => None,
            };
            let k = owner.ok_or_else(|| not_found(Entity::Lan, lan.get()))?;
            if let Some(n) = network_id {
                check_text("network id", n)?;
            }
            conn.prepare_cached("UPDATE lans SET network_id = ?2 WHERE id = ?1")?
                .execute(params![k, network_id])?;
            Ok(())
        })
    }

    fn set_decky_runtime(&self, decky: DeckyId, runtime: &DeckyRuntime) -> Result<(), StoreError> {
        self.write("set_decky_runtime", |conn| {
            let owner = match key(decky.get()) {
                Some(k) => query_one(conn, "SELECT id FROM deckies WHERE id = ?1", [k], int0)?,
                None => None,
            };
            let k = owner.ok_or_else(|| not_found(Entity::Decky, decky.get()))?;
            refuse(pick([
                runtime
                    .ip
                    .as_ref()
                    .and_then(Option::as_deref)
                    .and_then(|ip| check_text("decky ip", ip).err()),
                runtime
                    .last_error
                    .as_ref()
                    .and_then(Option::as_deref)
                    .and_then(|e| check_text("decky last error", e).err()),
            ]))?;
            conn.prepare_cached(
                "UPDATE deckies SET \
                     state = CASE WHEN ?2 THEN ?3 ELSE state END, \
                     ip = CASE WHEN ?4 THEN ?5 ELSE ip END, \
                     last_error = CASE WHEN ?6 THEN ?7 ELSE last_error END \
                 WHERE id = ?1",
            )?
            .execute(params![
                k,
                runtime.state.is_some(),
                runtime.state.map(DeckyState::as_str),
                runtime.ip.is_some(),
                runtime.ip.clone().flatten(),
                runtime.last_error.is_some(),
                runtime.last_error.clone().flatten(),
            ])?;
            Ok(())
        })
    }

    fn enqueue_mutation(
        &self,
        id: TopologyId,
        op: MutationOp,
        payload: &str,
        expected_version: Option<u64>,
    ) -> Result<Edited<MutationId>, StoreError> {
        self.write("enqueue_mutation", |conn| {
            let head = head(conn, id)?;
            refuse(pick([
                live_gate(head.status).err(),
                check_text("payload", payload).err(),
                version_guard(head.version, expected_version, true),
            ]))?;
            let mutation = conn
                .prepare_cached(
                    "INSERT INTO mutations (topology_id, op, payload, state, requested_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .insert(params![
                    head.key,
                    op.as_str(),
                    payload,
                    MutationState::Pending.as_str(),
                    Timestamp::now().as_micros()
                ])?;
            let version = finish_version(conn, &head, expected_version, true)?;
            Ok(Edited {
                id: MutationId::new(id_of(mutation)),
                version,
            })
        })
    }

    fn claim_next_mutation(&self, id: TopologyId) -> Result<Claim, StoreError> {
        self.write("claim_next_mutation", |conn| {
            let head = head(conn, id)?;
            live_gate(head.status)?;
            let applying = query_one(
                conn,
                "SELECT id FROM mutations WHERE topology_id = ?1 AND state = ?2 ORDER BY id LIMIT 1",
                params![head.key, MutationState::Applying.as_str()],
                int0,
            )?;
            if let Some(applying) = applying {
                return Ok(Claim::Busy {
                    applying: MutationId::new(id_of(applying)),
                });
            }
            // One statement picks the oldest pending row and moves exactly it, returning it.
            let claimed = query_one(
                conn,
                concat!(
                    "UPDATE mutations SET state = ?2 WHERE id = ",
                    "(SELECT id FROM mutations WHERE topology_id = ?1 AND state = ?3 ",
                    "ORDER BY id LIMIT 1) AND state = ?3 RETURNING ",
                    mutation_columns!()
                ),
                params![
                    head.key,
                    MutationState::Applying.as_str(),
                    MutationState::Pending.as_str()
                ],
                mutation_row,
            )?;
            Ok(match claimed {
                Some(mutation) => Claim::Claimed {
                    claim: MutationClaim::from_parts(mutation.id, id),
                    mutation,
                },
                None => Claim::Empty,
            })
        })
    }

    fn apply_live(
        &self,
        claim: &MutationClaim,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError> {
        self.write("apply_live", |conn| {
            let head = head(conn, claim.topology_id())?;
            let (_, state) = claimed(conn, claim)?;
            let (touched, refused) = apply_edits(conn, head.key, edits)?;
            refuse(pick([
                refused,
                (state != MutationState::Applying).then_some(StoreError::MutationState {
                    id: claim.id(),
                    expected: MutationState::Applying,
                    found: state,
                }),
                live_gate(head.status).err(),
            ]))?;
            Ok(EditReport {
                touched,
                version: head.version,
            })
        })
    }

    fn mark_mutation_applied(&self, claim: MutationClaim) -> Result<Mutation, StoreError> {
        self.write("mark_mutation_applied", |conn| {
            mark(conn, &claim, MutationState::Applied, None)
        })
    }

    fn mark_mutation_failed(
        &self,
        claim: MutationClaim,
        reason: &str,
    ) -> Result<Mutation, StoreError> {
        self.write("mark_mutation_failed", |conn| {
            mark(conn, &claim, MutationState::Failed, Some(reason))
        })
    }

    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
    ) -> Result<Vec<Mutation>, StoreError> {
        // As for topologies: a filter never hides a corrupt row.
        let all = self.read("list_mutations", |conn| {
            let head = head(conn, id)?;
            query_all(
                conn,
                concat!(
                    "SELECT ",
                    mutation_columns!(),
                    " FROM mutations WHERE topology_id = ?1 ORDER BY id DESC"
                ),
                [head.key],
                mutation_row,
            )
        })?;
        Ok(match state {
            Some(s) => all.into_iter().filter(|m| m.state == s).collect(),
            None => all,
        })
    }

    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError> {
        self.write("set_needs_resync", |conn| {
            let changed = match key(id.get()) {
                Some(k) => conn
                    .prepare_cached("UPDATE topologies SET needs_resync = ?2 WHERE id = ?1")?
                    .execute(params![k, needs_resync])?,
                None => 0,
            };
            if changed == 0 {
                return Err(not_found(Entity::Topology, id.get()).into());
            }
            Ok(())
        })
    }

    fn delete_topology(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        self.write("delete_topology", |conn| {
            let head = head(conn, id)?;
            refuse(pick([
                delete_gate(head.status).err(),
                version_guard(head.version, expected_version, false),
            ]))?;
            // One row: the children go by ON DELETE CASCADE, in the same transaction.
            conn.prepare_cached("DELETE FROM topologies WHERE id = ?1")?
                .execute([head.key])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pragma<T: rusqlite::types::FromSql>(conn: &Connection, name: &str) -> T {
        conn.pragma_query_value(None, name, |r| r.get(0)).unwrap()
    }

    #[test]
    fn every_connection_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let file = SqliteStore::open(dir.path().join("store.db")).unwrap();
        let conn = file.lock();
        assert_eq!(pragma::<i64>(&conn, "foreign_keys"), 1);
        assert_eq!(pragma::<i64>(&conn, "busy_timeout"), 5000);
        assert_eq!(pragma::<String>(&conn, "journal_mode"), "wal");
        assert_eq!(pragma::<i64>(&conn, "synchronous"), 1, "NORMAL");
        drop(conn);

        let memory = SqliteStore::open_in_memory().unwrap();
        let conn = memory.lock();
        assert_eq!(pragma::<i64>(&conn, "foreign_keys"), 1);
        assert_eq!(pragma::<i64>(&conn, "busy_timeout"), 5000);
        assert_eq!(pragma::<String>(&conn, "journal_mode"), "memory");
    }

    #[test]
    fn a_panic_inside_a_transaction_leaves_the_store_usable() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let lab = store.create_topology("lab").unwrap();
        let poisoner = Arc::clone(&store);
        let crashed = std::thread::spawn(move || {
            let conn = poisoner.lock();
            conn.execute_batch("BEGIN IMMEDIATE; UPDATE topologies SET version = 7")
                .unwrap();
            panic!("a caller panicked with the connection in a transaction");
        })
        .join();
        assert!(crashed.is_err());
        assert!(store.conn.is_poisoned());
        // The half-done transaction is rolled back, the mutex recovered.
        assert_eq!(store.get_topology(lab.id).unwrap().version, 1);
        assert!(!store.conn.is_poisoned());
        store.create_topology("next").unwrap();
    }
}
