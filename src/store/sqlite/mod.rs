//! [`SqliteStore`]: the store on one SQLite file, shared by threads and processes.
//!
//! How the guarantees of the [`TopologyStore`] contract hold here:
//!
//! - Every write runs in one `BEGIN IMMEDIATE` transaction: the write lock is taken before
//!   the first read, so a read-check-write sequence cannot be overtaken, and a waiting
//!   writer waits in SQLite's busy handler (never an upgrade deadlock, which `busy_timeout`
//!   cannot resolve). A refused write rolls back, bump included.
//! - Writes that queue up behind the handle's one write connection share its transaction
//!   (group commit, in `group.rs`): each runs its checks and statements in a `SAVEPOINT` of
//!   its own, so a refusal rolls back to it and nothing else; all are answered after the
//!   one `COMMIT`. The thread holding the connection runs the queued writes itself (flat
//!   combining), so each write is an owned job. Lock order: the write connection's mutex,
//!   then the queue's, then a ticket's; a queued write waits on its ticket holding nothing.
//! - Reads on a file run on read-only connections (`pool.rs`), each a read transaction
//!   begun after the commit of every write answered before it, so it sees them all.
//! - The version bump is a guarded `UPDATE ... SET version = version + 1 WHERE id = ? AND
//!   version = ? AND version < i64::MAX`, so a bump can never turn the integer into a float.
//! - The schema's `CHECK` lists and its fingerprint are generated from the lifecycle
//!   declarations; nothing here spells out a status string.
//! - Rows are read back strictly: an unknown name or an impossible version is a
//!   [`StoreError::Corrupt`] naming the table, the row and the value.

#[cfg(feature = "tokio")]
mod aio;
mod codec;
mod contract;
mod group;
mod options;
mod pool;
mod schema;

use std::boxed::Box;
use std::fmt;
use std::format;
use std::path::{Path, PathBuf};
use std::string::String;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};
use std::vec::Vec;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params_from_iter};

use crate::store::sql::{FromRow, Param, Session, Stmt, backend};
use crate::store::{BackendError, Foreign, StoreError};

#[cfg(feature = "tokio")]
pub use aio::AsyncSqliteStore;
use group::{Link, Writer};
pub use options::{SqliteOptions, Synchronous};
use pool::Readers;

/// Prepared statements kept per connection; more than the store's distinct statements.
const STATEMENT_CACHE: usize = 96;

/// A [`TopologyStore`](crate::store::TopologyStore) on one SQLite database (a file, or memory).
///
/// Each `SqliteStore` holds one write connection behind a mutex and, on a file, a small
/// pool of read-only connections, so one handle is shared by threads as it is (`Send +
/// Sync`), and several handles, in one process or many, each have their own connections
/// to the same file. Every write is one `BEGIN IMMEDIATE` transaction (shared by the
/// writes that queue up behind it: group commit), so the contract's guarantees hold across
/// all of them.
///
/// On every connection: `busy_timeout` (5 s), `foreign_keys = ON`, a prepared-statement
/// cache, and SQLite's query planner stability guarantee (a statement keeps one plan
/// whatever values are bound to it, so a cached statement is never planned again on a
/// rebind). Files are put in WAL mode (readers never block the writer, and the other way
/// round) with `synchronous = NORMAL`: a committed write survives a crash of the process,
/// but the last few may be lost if the machine loses power. [`SqliteOptions`] changes
/// these settings (`synchronous = FULL` for power-loss durability, among others).
///
/// Reads (`get_topology`, `topology_detail`, the list operations) on a file run on the read
/// pool, side by side with each other and with the writer, and see every write that was
/// answered before they began. A store in memory reads on its write connection.
///
/// Writes that arrive while the writer is busy wait for it and are then committed together
/// in one transaction, each inside its own savepoint: a refused write rolls back alone and
/// gets the answer it would have got running alone, and every caller is answered only
/// after the shared commit. A lone writer commits at once (nothing waits to fill a group).
/// In a tokio service, use its async face, `AsyncSqliteStore` (feature `tokio`): its
/// writes join the same groups from their tasks, with no thread waiting for each.
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
/// topology's queue then answers [`Claim::Busy`](crate::store::Claim::Busy)) until its lease
/// passes, and the next claim takes it over. Leases run by SQLite's clock (`unixepoch`),
/// which is the clock of the process running the statement: processes sharing a file
/// share a host, so they share a clock.
pub struct SqliteStore {
    /// The read pool: `None` in memory, or with a read pool of 0.
    // Declared before `writer`, so it is dropped first: the last connection to close
    // checkpoints the log and removes the `-wal` and `-shm` files, which only the writer
    // can do (a read-only connection cannot).
    readers: Option<Readers>,
    /// Shared with the async face's combiners (`AsyncSqliteStore`), which may outlive a
    /// call.
    writer: Arc<Writer>,
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
    /// Opens (creating if needed) the store in the SQLite file at `path`, with the default
    /// settings (see [`SqliteOptions`] for others).
    ///
    /// A new path, a zero-byte file and an SQLite database with no tables get the schema;
    /// a store is checked against this build's lifecycle declarations. Anything else is
    /// refused before anything is written to it: the check only reads, so a refused file
    /// keeps every byte and its journal mode, and no `-wal`/`-shm` file is left beside it.
    /// Several processes may open one new file at once: exactly one creates the schema,
    /// under `BEGIN IMMEDIATE`.
    ///
    /// ```
    /// use topostate::store::{Foreign, SqliteStore, StoreError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("notes.txt");
    /// std::fs::write(&path, "not a database")?;
    /// let refused = SqliteStore::open(&path).unwrap_err();
    /// assert!(matches!(refused, StoreError::NotAStore { found: Foreign::NotSqlite, .. }));
    /// assert_eq!(std::fs::read_to_string(&path)?, "not a database");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`StoreError::NotAStore`] if the file is not empty and holds no topostate store: it
    /// is not an SQLite database, or it is another application's database (the error lists
    /// its tables). [`StoreError::Backend`] if the file cannot be opened or is a damaged
    /// SQLite database (the message names the path); [`StoreError::Corrupt`] with table
    /// `meta` if the file was made from a different lifecycle declaration (the message
    /// shows the expected and the found fingerprint) or by a newer schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path.as_ref(), &SqliteOptions::new())
    }

    fn open_with(path: &Path, options: &SqliteOptions) -> Result<Self, StoreError> {
        let place = path.display().to_string();
        let context = || format!("opening {place}");
        let refuse_as = |found| StoreError::NotAStore {
            path: path.to_path_buf(),
            found,
        };
        if options.open_only && !path.exists() {
            return Err(refuse_as(Foreign::Missing));
        }
        schema::check_header(path)?;
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if !options.open_only {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(|e| sql_error(e, context()))?;
        configure(&conn, options.busy_timeout).map_err(|e| e.into_store(context()))?;
        let empty = schema::check_before_writing(&conn, path)?;
        if options.open_only && empty {
            return Err(refuse_as(Foreign::Empty));
        }
        configure_file(&conn, options).map_err(|e| e.into_store(context()))?;
        schema::migrate(&mut conn, &place, Some(path))?;
        let seen = schema::read_marks(&conn).map_err(|e| sql_error(e, context()))?;
        // Read connections open later, lazily: by the file's absolute path, so that a
        // relative one still names this file if the process changes directory meanwhile.
        let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let readers = (options.read_pool > 0)
            .then(|| Readers::new(&absolute, seen, options.busy_timeout, options.read_pool));
        Ok(Self {
            writer: Arc::new(Writer::new(
                conn,
                Some(seen),
                checked_against(Some(path.to_path_buf())),
                options.max_group,
                options.linger,
            )),
            readers,
            path: Some(path.to_path_buf()),
        })
    }

    /// Opens a new, empty store in memory with the default settings; it lives as long as
    /// this handle.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite cannot allocate the database.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::open_in_memory_with(&SqliteOptions::new())
    }

    fn open_in_memory_with(options: &SqliteOptions) -> Result<Self, StoreError> {
        let context = || String::from("opening an in-memory database");
        let mut conn = Connection::open_in_memory().map_err(|e| sql_error(e, context()))?;
        configure(&conn, options.busy_timeout).map_err(|e| e.into_store(context()))?;
        schema::migrate(&mut conn, "an in-memory database", None)?;
        Ok(Self {
            writer: Arc::new(Writer::new(
                conn,
                None,
                checked_against(None),
                options.max_group,
                options.linger,
            )),
            readers: None,
            path: None,
        })
    }

    /// The file this store is on, or `None` in memory.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Diagnostics: how many group commits this handle made, and how many writes they
    /// held in all (writes committed alone, with a group size of 1, are not counted).
    // Not public API.
    #[doc(hidden)]
    #[must_use]
    pub fn group_commits(&self) -> (u64, u64) {
        self.writer.counts()
    }

    /// The write connection, with no group open on it, recovered if a panicking caller
    /// poisoned the mutex (the transaction it was in rolled back when it unwound, or is
    /// rolled back here).
    fn lock(&self) -> MutexGuard<'_, Link> {
        self.writer.lock()
    }

    /// Runs `op` as one write: in a `BEGIN IMMEDIATE` transaction (shared with the writes
    /// queued beside it), its changes committed only if it succeeds. Its job owns what it
    /// writes, since another thread may run it (the group's combiner), and may run twice,
    /// when the group it ran in could not commit (see the `group` module).
    fn write<T, F>(&self, op: WriteOp<F>) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut Db<'_>) -> R<T> + Send + 'static,
    {
        let WriteOp {
            name, job, wakes, ..
        } = op;
        answer(name, wakes, self.writer.write(job))
    }

    /// Runs `f` in one read transaction: a consistent snapshot, no write lock; on the read
    /// pool if there is one.
    fn read<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Db<'_>) -> R<T>,
    ) -> Result<T, StoreError> {
        let result = match &self.readers {
            Some(readers) => (|| {
                let mut lent = readers.take()?;
                let reader = lent.reader()?;
                let tx = reader
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Deferred)?;
                if let Some(path) = &self.path {
                    schema::check_unchanged(&tx, &mut reader.seen, path)?;
                }
                let out = f(&mut Db(&tx))?;
                tx.commit()?;
                Ok(out)
            })(),
            None => (|| {
                let mut link = self.lock();
                let Link { conn, seen, .. } = &mut *link;
                let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
                self.writer.check(&tx, seen)?;
                let out = f(&mut Db(&tx))?;
                tx.commit()?;
                Ok(out)
            })(),
        };
        result.map_err(|e: Fail| e.into_store(op))
    }

    /// Runs one statement's worth of reading, outside any explicit transaction; on the read
    /// pool if there is one.
    fn read_one<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Db<'_>) -> R<T>,
    ) -> Result<T, StoreError> {
        // Each schema check comes after the read: the schema cookie only grows, so a schema
        // unchanged now was unchanged while the statement ran.
        let result = match &self.readers {
            Some(readers) => (|| {
                let mut lent = readers.take()?;
                let reader = lent.reader()?;
                let out = f(&mut Db(&reader.conn))?;
                if let Some(path) = &self.path {
                    schema::check_unchanged(&reader.conn, &mut reader.seen, path)?;
                }
                Ok(out)
            })(),
            None => (|| {
                let mut link = self.lock();
                let Link { conn, seen, .. } = &mut *link;
                let out = f(&mut Db(conn))?;
                self.writer.check(conn, seen)?;
                Ok(out)
            })(),
        };
        result.map_err(|e: Fail| e.into_store(op))
    }
}

/// The schema check of the writer of the file at `path` (nothing to check in memory):
/// refuses to go on if another connection changed the file's schema since the writer last
/// looked (a rolling upgrade), see [`schema::check_unchanged`].
fn checked_against(path: Option<PathBuf>) -> Box<group::Check> {
    Box::new(move |conn, seen| match (seen, &path) {
        (Some(seen), Some(path)) => schema::check_unchanged(conn, seen, path),
        _ => Ok(()),
    })
}

/// One write of the contract, as either face hands it to the writer: the operation's
/// name (the context of a driver error), the job to run in the write transaction (owning
/// its arguments), and whether it changes what a waiting applier could claim.
/// The topology and expected version it names are the fields of its span on the async
/// face (the sync face's spans are opened around the call, in `trace`).
pub(super) struct WriteOp<F> {
    name: &'static str,
    job: F,
    wakes: bool,
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    topology: Option<u64>,
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    expected: Option<u64>,
}

impl<F> WriteOp<F> {
    fn new<T>(name: &'static str, job: F) -> Self
    where
        F: FnMut(&mut Db<'_>) -> R<T> + Send + 'static,
    {
        Self {
            name,
            job,
            wakes: false,
            topology: None,
            expected: None,
        }
    }

    /// Names the topology written to, and the version the caller expects of it.
    fn on(self, id: crate::TopologyId, expected: Option<u64>) -> Self {
        Self {
            topology: Some(id.get()),
            expected,
            ..self
        }
    }

    /// Wakes this process's waiters for work once the write has committed.
    fn waking(self) -> Self {
        Self {
            wakes: true,
            ..self
        }
    }
}

/// The answer of write `name` as either face returns it: a driver error in the
/// operation's context, and this process's waiters for work woken if it `wakes` and
/// committed.
fn answer<T>(name: &'static str, wakes: bool, out: R<T>) -> Result<T, StoreError> {
    let out = out.map_err(|e| e.into_store(name));
    if wakes && out.is_ok() {
        crate::store::wake::SQL_WORK.notify();
    }
    out
}

/// How often a waiter on a SQLite file looks for work written by other processes (there is
/// no server to notify them): the latency of a wake-up across processes is at most this.
pub(crate) const WORK_POLL: core::time::Duration = core::time::Duration::from_millis(50);

// ---- errors ----------------------------------------------------------------------------

/// A failed step: a refusal to report as it is, or a driver error to wrap.
pub(crate) enum Fail {
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

/// Wraps a driver error as [`StoreError::Backend`]: what the store was doing (and, for a
/// busy, damaged or foreign file, what that means) is its message, the rusqlite error its
/// `source()`, shown once: SQLite's message and result code (rusqlite's error and its
/// source say the same in two wordings), without a file name the message already holds.
fn sql_error(e: rusqlite::Error, context: impl Into<String>) -> StoreError {
    let context = context.into();
    let what = match e.sqlite_error_code() {
        _ if is_busy(&e) => String::from(
            ": the database stayed locked by another connection for longer than the store's \
             busy timeout",
        ),
        Some(ErrorCode::NotADatabase) => String::from(": not an SQLite database, or a damaged one"),
        Some(ErrorCode::DatabaseCorrupt) => String::from(": the database file is damaged"),
        _ => String::new(),
    };
    let error = match &e {
        rusqlite::Error::SqliteFailure(code, Some(message)) => {
            // An open error names the file (`...: /path`), which the context already does.
            let message = match message.rsplit_once(": ") {
                Some((said, path)) if !path.is_empty() && context.contains(path) => said,
                _ => message,
            };
            let words = format!("{message} (SQLite result code {})", code.extended_code);
            BackendError::with_driver_words(format!("{context}{what}"), words, e)
        }
        _ => BackendError::with_context(format!("{context}{what}"), e),
    };
    StoreError::Backend(error)
}

// ---- connection setup ------------------------------------------------------------------

/// The connection's own settings; none of them writes to the file.
fn configure(conn: &Connection, busy_timeout: Duration) -> R<()> {
    conn.busy_timeout(busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let on: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    if !on {
        return Err(backend("foreign key enforcement could not be switched on").into());
    }
    // The query planner stability guarantee: a statement's plan never depends on the values
    // bound to it. Without it SQLite marks a statement whose planning looked at a bound value
    // (a `LIMIT ?`, an `=` on a parameter in a query ordered or reduced by `min`, such as the
    // claim's) to be planned again whenever a parameter is rebound, and rusqlite's statement
    // cache clears the bindings of every statement it takes back: each such statement was
    // parsed and planned anew on every run (the claim's, about 40 % of a claim cycle).
    if !conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)? {
        return Err(
            backend("the query planner stability guarantee could not be switched on").into(),
        );
    }
    Ok(())
}

/// The file's settings, once it is known to be a store (or empty): switching to WAL
/// writes the file's header.
fn configure_file(conn: &Connection, options: &SqliteOptions) -> R<()> {
    wal(conn, options.busy_timeout)?;
    // In WAL mode, NORMAL keeps the file consistent on any crash and loses at most the
    // last commits on power loss; FULL fsyncs the log at every commit.
    conn.pragma_update(None, "synchronous", options.synchronous.as_str())?;
    Ok(())
}

/// Puts the file in WAL mode, unless it already is. Switching can itself answer busy
/// (without going through the busy handler) while another process is switching or creating
/// the file, so it is retried until the busy timeout.
fn wal(conn: &Connection, busy_timeout: Duration) -> R<()> {
    let deadline = Instant::now() + busy_timeout;
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

// ---- running the shared statements ----------------------------------------------------

/// A connection (or the transaction on it), as the shared operations run statements on it.
struct Db<'c>(&'c Connection);

impl Session for Db<'_> {
    type Fail = Fail;

    fn refusal(fail: Fail) -> Result<StoreError, Fail> {
        match fail {
            Fail::Store(refused) => Ok(refused),
            sql @ Fail::Sql(_) => Err(sql),
        }
    }

    async fn query_one<T: FromRow>(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<T> {
        let mut stmt = self.0.prepare_cached(sql.sqlite)?;
        let mut rows = stmt.query(params_from_iter(params))?;
        match rows.next()? {
            Some(row) => T::from_row(row),
            None => Err(rusqlite::Error::QueryReturnedNoRows.into()),
        }
    }

    async fn query_opt<T: FromRow>(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<Option<T>> {
        let mut stmt = self.0.prepare_cached(sql.sqlite)?;
        let mut rows = stmt.query(params_from_iter(params))?;
        match rows.next()? {
            Some(row) => T::from_row(row).map(Some),
            None => Ok(None),
        }
    }

    async fn query_all<T: FromRow>(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<Vec<T>> {
        let mut stmt = self.0.prepare_cached(sql.sqlite)?;
        let mut rows = stmt.query(params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(T::from_row(row)?);
        }
        Ok(out)
    }

    async fn query_pair_before<A: FromRow, B: FromRow, U>(
        &mut self,
        first: (&Stmt, &[Param<'_>]),
        second: (&Stmt, &[Param<'_>]),
        rest: impl AsyncFnOnce(&mut Self) -> R<U>,
    ) -> R<(Option<A>, Option<B>, R<U>)> {
        // In the process, nothing to pipeline: one after the other.
        let a = self.query_opt(first.0, first.1).await?;
        let b = self.query_opt(second.0, second.1).await?;
        Ok((a, b, rest(self).await))
    }

    async fn insert(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<i64> {
        Ok(self
            .0
            .prepare_cached(sql.sqlite)?
            .insert(params_from_iter(params))?)
    }

    async fn insert_new(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<Option<i64>> {
        let changed = self
            .0
            .prepare_cached(sql.sqlite)?
            .execute(params_from_iter(params))?;
        // The connection's last row id is this statement's only if it inserted one.
        Ok((changed > 0).then(|| self.0.last_insert_rowid()))
    }

    async fn execute(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<u64> {
        let changed = self
            .0
            .prepare_cached(sql.sqlite)?
            .execute(params_from_iter(params))?;
        // A count of rows always fits; saturate rather than assume it.
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TopologyStore;
    use std::sync::Arc;

    fn pragma<T: rusqlite::types::FromSql>(conn: &Connection, name: &str) -> T {
        conn.pragma_query_value(None, name, |r| r.get(0)).unwrap()
    }

    #[test]
    fn every_connection_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let file = SqliteStore::open(dir.path().join("store.db")).unwrap();
        let link = file.lock();
        let conn = &link.conn;
        assert_eq!(pragma::<i64>(conn, "foreign_keys"), 1);
        assert_eq!(pragma::<i64>(conn, "busy_timeout"), 5000);
        assert_eq!(pragma::<String>(conn, "journal_mode"), "wal");
        assert_eq!(pragma::<i64>(conn, "synchronous"), 1, "NORMAL");
        drop(link);

        let memory = SqliteStore::open_in_memory().unwrap();
        // Nothing else can reach a database in memory: it reads on its writer.
        assert!(memory.readers.is_none());
        let conn = &memory.lock().conn;
        assert_eq!(pragma::<i64>(conn, "foreign_keys"), 1);
        assert_eq!(pragma::<i64>(conn, "busy_timeout"), 5000);
        assert_eq!(pragma::<String>(conn, "journal_mode"), "memory");
    }

    /// The pragmas of the write connection and of a read connection of `store`.
    fn both_connections(store: &SqliteStore, each: impl Fn(&Connection)) {
        each(&store.lock().conn);
        let readers = store.readers.as_ref().unwrap();
        let mut lent = readers.take().ok().unwrap();
        each(&lent.reader().ok().unwrap().conn);
    }

    #[test]
    fn defaults_on_the_read_connections_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
        both_connections(&store, |conn| {
            assert_eq!(pragma::<i64>(conn, "foreign_keys"), 1);
            assert_eq!(pragma::<i64>(conn, "busy_timeout"), 5000);
            assert_eq!(pragma::<String>(conn, "journal_mode"), "wal");
        });
        assert_eq!(
            pragma::<i64>(&store.lock().conn, "synchronous"),
            1,
            "NORMAL"
        );
        let readers = store.readers.as_ref().unwrap();
        assert_eq!(readers.max(), options::DEFAULT_READ_POOL);
    }

    #[test]
    fn every_connection_keeps_its_plans_whatever_is_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
        both_connections(&store, |conn| {
            assert!(
                conn.db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG)
                    .unwrap()
            );
        });
        let memory = SqliteStore::open_in_memory().unwrap();
        assert!(
            memory
                .lock()
                .conn
                .db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG)
                .unwrap()
        );
    }

    /// Statements whose planning could look at a bound value (the claim's `min(id)` seeks
    /// on a parameter, a page's `LIMIT ?`) run from the statement cache as they were
    /// prepared: SQLite does not parse and plan them again on each run.
    #[test]
    fn cached_statements_are_not_planned_again_on_each_run() {
        use crate::store::{ClaimOptions, PageRequest, Precondition};
        use crate::{MutationOp, TopologyStatus};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
        let id = store.create_topology("lab").unwrap().id;
        for (from, to) in [
            (TopologyStatus::Pending, TopologyStatus::Deploying),
            (TopologyStatus::Deploying, TopologyStatus::Active),
        ] {
            store
                .transition_status(id, to, None, Precondition::status(from))
                .unwrap();
        }
        for _ in 0..3 {
            store
                .enqueue_mutation(id, MutationOp::AddLan, "{}", None)
                .unwrap();
        }
        for _ in 0..3 {
            let crate::store::Claim::Claimed { lease, .. } = store
                .claim_next_mutation_with(id, &ClaimOptions::new())
                .unwrap()
            else {
                panic!("a pending mutation to claim");
            };
            store.mark_mutation_applied(lease).unwrap();
            assert_eq!(
                store
                    .list_mutations(id, None, PageRequest::first(2))
                    .unwrap()
                    .items
                    .len(),
                2
            );
        }
        // How often the cached statement ran, and was prepared again, on `conn`.
        let runs = |conn: &Connection, sql: &str| {
            let cached = conn.prepare_cached(sql).unwrap();
            (
                cached.get_status(rusqlite::StatementStatus::Run),
                cached.get_status(rusqlite::StatementStatus::RePrepare),
            )
        };
        let claim = crate::store::sql::CLAIM_NEXT.sqlite;
        assert_eq!(runs(&store.lock().conn, claim), (3, 0));
        let readers = store.readers.as_ref().unwrap();
        let mut lent = readers.take().ok().unwrap();
        let reader = lent.reader().ok().unwrap();
        let page = crate::store::sql::MUTATIONS_PAGE.sqlite;
        assert_eq!(runs(&reader.conn, page), (3, 0));
    }

    #[test]
    fn options_reach_the_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteOptions::new()
            .busy_timeout(Duration::from_millis(1234))
            .synchronous(Synchronous::Full)
            .read_pool(2)
            .open(&path)
            .unwrap();
        both_connections(&store, |conn| {
            assert_eq!(pragma::<i64>(conn, "busy_timeout"), 1234);
            assert_eq!(pragma::<i64>(conn, "foreign_keys"), 1);
        });
        assert_eq!(pragma::<i64>(&store.lock().conn, "synchronous"), 2, "FULL");
        assert_eq!(store.readers.as_ref().unwrap().max(), 2);
        drop(store);

        // A new handle on the same file gets its own setting back: synchronous is a
        // connection's, not the file's.
        let normal = SqliteStore::open(&path).unwrap();
        assert_eq!(pragma::<i64>(&normal.lock().conn, "synchronous"), 1);

        // A read pool of 0 reads on the writer.
        let no_pool = SqliteOptions::new().read_pool(0).open(&path).unwrap();
        assert!(no_pool.readers.is_none());
        let lab = no_pool.create_topology("lab").unwrap();
        assert_eq!(no_pool.get_topology(lab.id).unwrap().name, "lab");
    }

    #[test]
    fn a_closed_store_leaves_no_log_beside_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path).unwrap();
        let lab = store.create_topology("lab").unwrap();
        assert_eq!(store.get_topology(lab.id).unwrap().name, "lab");
        assert_eq!(store.readers.as_ref().unwrap().opened(), 1);
        drop(store);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["store.db"]);
    }

    #[test]
    fn the_read_pool_opens_at_most_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteOptions::new()
            .read_pool(2)
            .open(dir.path().join("store.db"))
            .unwrap();
        let readers = store.readers.as_ref().unwrap();
        let first = readers.take().ok().unwrap();
        let second = readers.take().ok().unwrap();
        assert_eq!(readers.opened(), 2);
        // A third read waits for a connection to come back rather than opening one more.
        std::thread::scope(|s| {
            let third = s.spawn(|| {
                let lent = readers.take().ok().unwrap();
                drop(lent);
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(!third.is_finished());
            drop(first);
            third.join().unwrap();
        });
        drop(second);
        assert_eq!(readers.opened(), 2);
    }

    #[test]
    fn a_panic_inside_a_transaction_leaves_the_store_usable() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let lab = store.create_topology("lab").unwrap();
        let poisoner = Arc::clone(&store);
        let crashed = std::thread::spawn(move || {
            let link = poisoner.lock();
            link.conn
                .execute_batch("BEGIN IMMEDIATE; UPDATE topologies SET version = 7")
                .unwrap();
            panic!("a caller panicked with the connection in a transaction");
        })
        .join();
        assert!(crashed.is_err());
        assert!(store.writer.is_poisoned());
        // The half-done transaction is rolled back, the mutex recovered.
        assert_eq!(store.get_topology(lab.id).unwrap().version, 1);
        assert!(!store.writer.is_poisoned());
        store.create_topology("next").unwrap();
    }
}
