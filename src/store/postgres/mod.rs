//! [`PgStore`]: the store on a PostgreSQL server, shared by many processes on many hosts.
//!
//! How the guarantees of the [`TopologyStore`] contract hold here:
//!
//! - Every write is one `READ COMMITTED` transaction that first locks the topology's row
//!   (`SELECT ... FOR UPDATE`), then reads, checks and writes its children. All writers of
//!   one topology queue on that row, so a read-check-write sequence cannot be overtaken, and
//!   the status read under the lock is the one the write is checked against. Locks are
//!   always taken in one order (the topology row, then its children), and no write locks
//!   two topologies, so these transactions cannot deadlock with each other. The runtime
//!   writes (`set_lan_network_id`, `set_decky_runtime`, `set_needs_resync`) are one
//!   statement each, holding one row lock, in a transaction of its own.
//! - Before anything else, every transaction reads the schema version stamped in `meta`, and
//!   a write transaction locks that row `FOR SHARE` until it ends; a single-statement read
//!   reads it after its statement. Another version (another process migrated the schema
//!   while this store was open) is [`StoreError::SchemaChanged`]: nothing is read or written
//!   in a layout this build does not know. A migration restamps before it alters anything,
//!   so it waits for the old build's open writes and they wait for it.
//! - Should the server still abort a transaction as a deadlock victim (40P01), a
//!   serialization failure (40001, e.g. under a server-wide default isolation level this
//!   store does not use) or a lock timeout (55P03, with a `lock_timeout` set on the server),
//!   the store rolls it back and runs it again, a bounded number of times with a short
//!   backoff; nothing of the failed attempt was committed. Only when every attempt fails does
//!   the error surface, as a [`StoreError::Backend`] that says so.
//! - A pooled connection found closed (a server restart, `pg_terminate_backend`, an idle
//!   timeout) before the call changed anything (at the start of its transaction, or in a
//!   call that is safe to repeat) is dropped and the call run again on another one, within
//!   the same bound. A connection lost in the middle of a write fails the call with a
//!   [`StoreError::Backend`]: whether the server committed it is unknown.
//! - The version bump is a guarded `UPDATE ... SET version = version + 1 WHERE id = $1 AND
//!   version = $2 AND version < i64::MAX`, inside the same transaction as the write.
//! - The schema's `CHECK` lists and its fingerprint are generated from the lifecycle
//!   declarations; nothing here spells out a status string. Every statement takes its
//!   values as parameters.
//! - Rows are read back strictly: an unknown name or an impossible version is a
//!   [`StoreError::Corrupt`] naming the table, the row and the value.

mod codec;
mod schema;

use std::collections::HashMap;
use std::fmt;
use std::format;
use std::string::String;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use std::vec::Vec;

use postgres::config::Host;
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Config, GenericClient, NoTls, Row, SimpleQueryMessage, Statement};
use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::r2d2::{self, ManageConnection, Pool};

// `check_text` refuses NUL, which PostgreSQL's `text` cannot hold.
use crate::store::sql::rows::topology_columns;
use crate::store::sql::{
    self, Columns, FromRow, INITIAL_SQL_VERSION, Lock, Param, Session, Stmt, backend, key,
    not_found, pick, refuse,
};
use crate::store::{
    BackendError, DeckyId, DeckyRuntime, DeckyState, Entity, LanId, StoreError, Timestamp,
    TopologyRecord, TopologyStore, check_name, check_text,
};
use crate::{TopologyId, TopologyStatus};

/// How many times a transaction the server aborted as a deadlock victim, a serialization
/// failure or a lock timeout is run in all before the error is reported.
const MAX_ATTEMPTS: u32 = 8;

/// The pool size of [`PgStore::connect`].
const DEFAULT_POOL_SIZE: u32 = 8;

/// How long an operation waits for a free pooled connection, and a new connection for the
/// server, unless told otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`TopologyStore`] on a PostgreSQL server.
///
/// A `PgStore` is a handle on a pool of connections: it is `Send + Sync`, cloning it is
/// cheap (the clone shares the pool), and each operation checks one connection out for the
/// length of one transaction. Any number of stores, in one process or many, on one host or
/// many, can work on the same database: every write is one transaction that locks the
/// topology's row first, so the contract's guarantees hold across all of them.
///
/// The store creates its tables itself, in the schema it is given
/// ([`connect_with_schema`](Self::connect_with_schema), created if missing) or else the first
/// schema of the connection's `search_path`; several processes may connect to a new database
/// at once (one creates, under an advisory lock, the others find it done). A schema made from
/// a different lifecycle declaration is refused (a fingerprint is checked on connect).
///
/// ```no_run
/// use topostate::store::{NewLan, PgStore, TopologyStore, TypedStore};
///
/// let store = PgStore::connect("postgresql://topostate@localhost/topostate")?;
/// let lab = store.create("lab")?;
/// let lan = store.add_lan(lab.id(), NewLan::new("dmz", "10.0.0.0/24"), Some(lab.version()))?;
/// assert_eq!(lan.version, 2);
/// // An editor on another host still holding version 1 is refused, not overwritten:
/// let stale = store.add_lan(lab.id(), NewLan::new("lan-a", "10.0.1.0/24"), Some(1));
/// assert!(stale.unwrap_err().is_conflict());
/// # Ok::<(), topostate::store::StoreError>(())
/// ```
///
/// A pooled connection the server closed (a restart, `pg_terminate_backend`, an idle
/// timeout) is replaced, and the call run again on a new one, when it is found closed before
/// the call changed anything; one lost in the middle of a write fails that call with
/// [`StoreError::Backend`] (whether it committed is unknown), and is then replaced.
///
/// Connections are plain TCP or Unix-socket connections without TLS. Free text
/// (subnets, configs, payloads, reasons, runtime fields) cannot hold the NUL character,
/// which PostgreSQL's `text` refuses; such a write is [`StoreError::Invalid`] here.
/// Timestamps come from the clock of the host that writes, as in every backend; history is
/// ordered by ids, never by them.
///
/// Stuck claims: a mutation left `applying` by a crashed applier stays `applying` (the
/// topology's queue then answers [`Claim::Busy`](crate::store::Claim::Busy)); recovering it is
/// out of scope here.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<Manager>,
    place: Arc<str>,
    schema: Option<Arc<str>>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("place", &&*self.place)
            .field("schema", &self.schema.as_deref())
            .field("pool_size", &self.pool.max_size())
            .finish_non_exhaustive()
    }
}

/// Options for [`PgStore`]: pool size, schema, timeouts. Made by [`PgStore::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use topostate::store::PgStore;
///
/// let store = PgStore::builder("host=/run/postgresql dbname=topostate")
///     .pool_size(4)
///     .schema("lab_editor")
///     .timeout(Duration::from_secs(3))
///     .connect()?;
/// assert_eq!(store.schema(), Some("lab_editor"));
/// # Ok::<(), topostate::store::StoreError>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct PgStoreBuilder {
    url: String,
    pool_size: u32,
    schema: Option<String>,
    timeout: Duration,
    test_on_checkout: bool,
}

impl fmt::Debug for PgStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: it is not shown.
        f.debug_struct("PgStoreBuilder")
            .field("pool_size", &self.pool_size)
            .field("schema", &self.schema)
            .field("timeout", &self.timeout)
            .field("test_on_checkout", &self.test_on_checkout)
            .finish_non_exhaustive()
    }
}

impl PgStoreBuilder {
    /// At most `size` connections (at least 1; default 8). Connections are opened when
    /// needed, not up front, and closed after ten idle minutes.
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Keeps the tables in this schema (created if missing) by setting every connection's
    /// `search_path` to it, e.g. one schema per tenant or per test. It must be a plain
    /// lowercase identifier: `[a-z_][a-z0-9_]*`, at most 63 bytes, not starting with `pg_`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// How long to wait for a new connection to the server, and for a free connection of
    /// the pool, before an operation fails (default 10 s). A `connect_timeout` in the URL
    /// wins for the former.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Pings each connection (an empty query) when it is checked out of the pool. Off by
    /// default: it costs one round trip per operation, and the store already replaces a
    /// connection it finds closed at the start of a call.
    pub fn test_on_checkout(mut self, test: bool) -> Self {
        self.test_on_checkout = test;
        self
    }

    /// Connects, creates or checks the schema, and returns the store.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for a malformed URL (field `url`) or schema name (field
    /// `schema`); [`StoreError::Backend`] if the server cannot be reached or refuses the
    /// login (the message names host, port and database, never the password);
    /// [`StoreError::Corrupt`] with table `meta` if the schema was made from a different
    /// lifecycle declaration (the message shows the expected and the found fingerprint) or by
    /// a newer schema version.
    pub fn connect(self) -> Result<PgStore, StoreError> {
        if let Some(schema) = &self.schema {
            schema::check_schema_name(schema)?;
        }
        let mut config: Config = self.url.parse().map_err(|e| StoreError::Invalid {
            field: "url",
            problem: format!("not a PostgreSQL connection URL or key=value string: {e}"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.timeout);
        }
        if let Some(schema) = &self.schema {
            // After any options of the URL, so this `search_path` wins.
            let options = match config.get_options() {
                Some(given) => format!("{given} -c search_path={schema}"),
                None => format!("-c search_path={schema}"),
            };
            config.options(&options);
        }
        if config.get_application_name().is_none() {
            config.application_name("topostate");
        }
        let place: Arc<str> = Arc::from(describe_place(&config, self.schema.as_deref()));
        let manager = Manager(PostgresConnectionManager::new(config, NoTls));
        // One connection first, for a clear error (and the schema) before any pool exists.
        let mut first = manager
            .connect()
            .map_err(|e| sql_error(e, format!("connecting to {place}")))?;
        schema::migrate(&mut first.client, self.schema.as_deref(), &place)?;
        drop(first);
        let pool = Pool::builder()
            .max_size(self.pool_size)
            .min_idle(Some(0))
            .test_on_check_out(self.test_on_checkout)
            .connection_timeout(self.timeout)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        Ok(PgStore {
            pool,
            place,
            schema: self.schema.map(Arc::from),
        })
    }
}

impl PgStore {
    /// Connects to the database at `url` with a pool of 8 connections, creating or checking
    /// the schema in the first schema of the connection's `search_path`.
    ///
    /// `url` is a `postgresql://user:password@host:port/dbname?options` URL or a libpq-style
    /// `key=value` string (`host=/run/postgresql dbname=topostate`).
    ///
    /// # Errors
    ///
    /// As [`PgStoreBuilder::connect`].
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect()
    }

    /// As [`connect`](Self::connect), with at most `size` pooled connections.
    ///
    /// # Errors
    ///
    /// As [`PgStoreBuilder::connect`].
    pub fn with_pool_size(url: &str, size: u32) -> Result<Self, StoreError> {
        Self::builder(url).pool_size(size).connect()
    }

    /// As [`connect`](Self::connect), with the tables in `schema` (created if missing): see
    /// [`PgStoreBuilder::schema`].
    ///
    /// # Errors
    ///
    /// As [`PgStoreBuilder::connect`].
    pub fn connect_with_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        Self::builder(url).schema(schema).connect()
    }

    /// A builder for the other options (pool size, schema, timeouts).
    pub fn builder(url: &str) -> PgStoreBuilder {
        PgStoreBuilder {
            url: String::from(url),
            pool_size: DEFAULT_POOL_SIZE,
            schema: None,
            timeout: DEFAULT_TIMEOUT,
            test_on_checkout: false,
        }
    }

    /// The schema given at connect time, if any.
    #[must_use]
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The most connections this store's pool opens.
    #[must_use]
    pub fn pool_size(&self) -> u32 {
        self.pool.max_size()
    }

    /// A pooled connection, or a backend error naming the server and the wait.
    fn checkout(&self, op: &'static str) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        self.pool.get().map_err(|e| {
            backend(format!(
                "{op}: no connection to {} within {} s ({e})",
                self.place,
                self.pool.connection_timeout().as_secs_f32()
            ))
        })
    }

    /// Runs `f` in one transaction of `isolation` (read-only for a snapshot), committed only
    /// if `f` succeeds; a transaction the server aborted as transient is run again.
    ///
    /// The transaction's first round trip both begins it and reads the schema version (a
    /// write also locks it, see [`schema::BEGIN_WRITE`]): another version is refused before `f`
    /// runs, at no extra round trip.
    fn transaction<T>(
        &self,
        op: &'static str,
        isolation: Isolation,
        mut f: impl FnMut(&mut Db<'_, Client>) -> R<T>,
    ) -> Result<T, StoreError> {
        self.retrying(op, |conn| {
            let Conn {
                client,
                statements,
                checks_prepared,
                ..
            } = conn;
            if !*checks_prepared {
                client.batch_execute(schema::PREPARE_CHECKS).map_err(|e| {
                    if e.is_closed() {
                        Fail::Lost(e)
                    } else {
                        Fail::Sql(e)
                    }
                })?;
                *checks_prepared = true;
            }
            let begin = match isolation {
                Isolation::Write => schema::BEGIN_WRITE,
                Isolation::Snapshot => schema::BEGIN_SNAPSHOT,
            };
            let tx = Open {
                client,
                done: false,
            };
            let stored = tx
                .client
                .simple_query(begin)
                // Nothing has run yet: a connection found closed here loses nothing.
                .map_err(|e| {
                    if e.is_closed() {
                        Fail::Lost(e)
                    } else {
                        Fail::Sql(e)
                    }
                })?
                .iter()
                .find_map(|message| match message {
                    SimpleQueryMessage::Row(row) => row.get(0).map(String::from),
                    _ => None,
                });
            schema::check_unchanged(stored.as_deref(), &self.place)?;
            let out = f(&mut Db {
                client: &mut *tx.client,
                statements,
            })?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Refuses to go on if another process migrated the schema since this store connected
    /// (a rolling upgrade): for the single-statement reads, after their statement.
    fn check_schema(&self, db: &mut Db<'_, Client>) -> R<()> {
        let stored: Option<String> = db
            .prepared_query_opt(schema::PEEK, &[])?
            .map(|row| row.try_get(0))
            .transpose()?;
        Ok(schema::check_unchanged(stored.as_deref(), &self.place)?)
    }

    /// Runs `f` in one write transaction (see the module docs).
    fn write<T>(
        &self,
        op: &'static str,
        f: impl FnMut(&mut Db<'_, Client>) -> R<T>,
    ) -> Result<T, StoreError> {
        self.transaction(op, Isolation::Write, f)
    }

    /// Runs `f` in one read-only snapshot: a consistent view of several statements.
    fn read<T>(
        &self,
        op: &'static str,
        f: impl FnMut(&mut Db<'_, Client>) -> R<T>,
    ) -> Result<T, StoreError> {
        self.transaction(op, Isolation::Snapshot, f)
    }

    /// Runs single statements outside an explicit transaction (each its own), for reads of
    /// one statement; the schema version is checked after them. `idempotent`: running `f` twice is the same as
    /// once, so a connection found closed may be replaced and `f` run again even though its
    /// statement might have run.
    fn single<T>(
        &self,
        op: &'static str,
        idempotent: bool,
        mut f: impl FnMut(&mut Db<'_, Client>) -> R<T>,
    ) -> Result<T, StoreError> {
        self.retrying(op, |conn| {
            let Conn {
                client, statements, ..
            } = conn;
            let mut db = Db { client, statements };
            // Checked after the statement: a schema version only grows, so one unchanged
            // now was unchanged while the statement ran.
            match f(&mut db).and_then(|out| {
                self.check_schema(&mut db)?;
                Ok(out)
            }) {
                Err(Fail::Sql(e)) if idempotent && e.is_closed() => Err(Fail::Lost(e)),
                other => other,
            }
        })
    }

    /// Runs `attempt` on a pooled connection until it succeeds, fails for a reason that is
    /// not transient, or has run [`MAX_ATTEMPTS`] times. A transaction the server aborted
    /// runs again after a short backoff; a call the server refused because it closed the
    /// connection (the call was not executed) runs again at once on another connection.
    fn retrying<T>(
        &self,
        op: &'static str,
        mut attempt: impl FnMut(&mut Conn) -> R<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.checkout(op)?;
        let mut tries = 1;
        loop {
            match attempt(&mut conn) {
                Err(Fail::Lost(_)) if tries < MAX_ATTEMPTS => {
                    // Dropped as broken: the pool discards it and opens another.
                    conn.broken = true;
                    drop(conn);
                    conn = self.checkout(op)?;
                }
                Err(Fail::Sql(e)) if tries < MAX_ATTEMPTS && connection_lost(&e) => {
                    // Dropped as broken: the pool discards it and opens another.
                    conn.broken = true;
                    drop(conn);
                    conn = self.checkout(op)?;
                }
                Err(Fail::Sql(e)) if transient(&e).is_some() => {
                    if tries >= MAX_ATTEMPTS {
                        return Err(StoreError::Backend(BackendError::new(SqlError {
                            context: String::from(op),
                            source: e,
                            attempts: Some(tries),
                        })));
                    }
                    backoff(tries);
                }
                other => return other.map_err(|e| e.into_store(op)),
            }
            tries += 1;
        }
    }
}

#[derive(Clone, Copy)]
enum Isolation {
    /// `READ COMMITTED`, writes lock what they check.
    Write,
    /// `REPEATABLE READ READ ONLY`: one snapshot, never a serialization failure.
    Snapshot,
}

/// What makes a driver error worth running the transaction again, if anything.
fn transient(e: &postgres::Error) -> Option<&'static str> {
    let code = e.code()?;
    if *code == SqlState::T_R_DEADLOCK_DETECTED {
        Some("deadlock")
    } else if *code == SqlState::T_R_SERIALIZATION_FAILURE {
        Some("serialization failure")
    } else if *code == SqlState::LOCK_NOT_AVAILABLE {
        Some("lock timeout")
    } else {
        None
    }
}

/// Did the server end the session instead of running the statement (an administrator's
/// `pg_terminate_backend`, a shutdown, a restart)? It then rolled back whatever the session
/// had begun, so the call can run again, whole, on another connection. A connection that
/// drops without a word (no such message) is not retried: whether its last statement
/// committed is unknown.
fn connection_lost(e: &postgres::Error) -> bool {
    e.code().is_some_and(|code| {
        [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(code)
    })
}

/// Sleeps before attempt `tries + 1`: exponential from 2 ms, capped at 64 ms, with jitter
/// so that two victims of one deadlock do not meet again in step.
fn backoff(tries: u32) {
    let base = 1u64 << tries.min(6);
    let jitter = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()) % (base * 1000));
    std::thread::sleep(Duration::from_micros(base * 1000 + jitter));
}

/// Host, port, database and schema, as messages show them (never the password).
fn describe_place(config: &Config, schema: Option<&str>) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        String::from("the default host")
    } else {
        hosts.join(",")
    };
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("(default)");
    match schema {
        Some(schema) => format!("PostgreSQL database '{db}' on {hosts}, schema '{schema}'"),
        None => format!("PostgreSQL database '{db}' on {hosts}"),
    }
}

// ---- connections -----------------------------------------------------------------------

/// The pool's manager: `r2d2_postgres`'s, plus a cache of prepared statements per
/// connection (the store runs a few dozen fixed statements; each is parsed once per
/// connection, not once per call).
struct Manager(PostgresConnectionManager<NoTls>);

/// A pooled connection and its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    /// Set when the server ended the session: the pool must not hand it out again.
    broken: bool,
    /// Whether the schema checks of [`schema::PREPARE_CHECKS`] are prepared on it.
    checks_prepared: bool,
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            client: self.0.connect()?,
            statements: HashMap::new(),
            broken: false,
            checks_prepared: false,
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken || self.0.has_broken(&mut conn.client)
    }
}

/// A transaction begun by hand on a client (so that its first round trip also carries the
/// schema check), rolled back if dropped uncommitted, as the driver's own transactions are.
struct Open<'a> {
    client: &'a mut Client,
    done: bool,
}

impl Open<'_> {
    fn commit(mut self) -> Result<(), postgres::Error> {
        self.done = true;
        self.client.batch_execute("COMMIT")
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Best effort, as the driver's own transactions do: a connection this fails on
            // is broken and the pool replaces it.
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }
}

/// A connection or transaction with the statement cache, as the operations use it.
struct Db<'a, C> {
    client: &'a mut C,
    statements: &'a mut HashMap<&'static str, Statement>,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl<C: GenericClient> Db<'_, C> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    fn prepared_query(&mut self, sql: &'static str, params: Params<'_>) -> R<Vec<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.client.query(&statement, params)?)
    }

    fn prepared_query_opt(&mut self, sql: &'static str, params: Params<'_>) -> R<Option<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.client.query_opt(&statement, params)?)
    }

    fn prepared_query_one(&mut self, sql: &'static str, params: Params<'_>) -> R<Row> {
        let statement = self.statement(sql)?;
        Ok(self.client.query_one(&statement, params)?)
    }

    fn prepared_execute(&mut self, sql: &'static str, params: Params<'_>) -> R<u64> {
        let statement = self.statement(sql)?;
        Ok(self.client.execute(&statement, params)?)
    }
}

// ---- errors ----------------------------------------------------------------------------

/// A failed step: a refusal to report as it is, or a driver error to wrap.
pub(crate) enum Fail {
    Store(StoreError),
    Sql(postgres::Error),
    /// The connection was found closed before the call could have changed anything.
    Lost(postgres::Error),
}

type R<T> = Result<T, Fail>;

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Self::Sql(e)
    }
}

impl Fail {
    fn into_store(self, context: impl Into<String>) -> StoreError {
        match self {
            Self::Store(e) => e,
            Self::Sql(e) | Self::Lost(e) => sql_error(e, context),
        }
    }
}

/// A driver error with what the store was doing; `source` is the `postgres` error.
#[derive(Debug)]
struct SqlError {
    context: String,
    source: postgres::Error,
    /// How many times the transaction ran, when it was retried and gave up.
    attempts: Option<u32>,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let context = &self.context;
        let detail = match self.source.as_db_error() {
            Some(db) => {
                let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
                if let Some(detail) = db.detail() {
                    text.push_str("; ");
                    text.push_str(detail);
                }
                text
            }
            None => self.source.to_string(),
        };
        match (self.attempts, transient(&self.source)) {
            (Some(attempts), Some(what)) => write!(
                f,
                "{context}: gave up after {attempts} attempts, the server aborted every one \
                 ({what}): {detail}"
            ),
            _ => write!(f, "{context}: {detail}"),
        }
    }
}

impl std::error::Error for SqlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Wraps a driver error as [`StoreError::Backend`].
fn sql_error(e: postgres::Error, context: impl Into<String>) -> StoreError {
    StoreError::Backend(BackendError::new(SqlError {
        context: context.into(),
        source: e,
        attempts: None,
    }))
}

// ---- running the shared statements ----------------------------------------------------

impl Param<'_> {
    /// The value as the driver binds it.
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Int(v) => v,
            Param::Text(text) => text,
            Param::OptText(text) => text,
            Param::Bool(b) => b,
            Param::OptBool(b) => b,
            Param::OptReal(r) => r,
            Param::Services(services) => services,
            Param::OptServices(services) => services,
        }
    }
}

/// The driver's parameter list for `params`.
fn bind<'p>(params: &'p [Param<'_>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(Param::as_sql).collect()
}

// Inside, `self.prepared_query_one(sql.pg, ..)` and the like are `Db`'s own driver-level
// methods, which take the driver's parameters.
impl<C: GenericClient> Session for Db<'_, C> {
    type Fail = Fail;

    fn refusal(fail: Fail) -> Result<StoreError, Fail> {
        match fail {
            Fail::Store(refused) => Ok(refused),
            other => Err(other),
        }
    }

    async fn query_one<T: FromRow>(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<T> {
        T::from_row(&self.prepared_query_one(sql.pg, &bind(params))?)
    }

    async fn query_opt<T: FromRow>(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<Option<T>> {
        match self.prepared_query_opt(sql.pg, &bind(params))? {
            Some(row) => T::from_row(&row).map(Some),
            None => Ok(None),
        }
    }

    async fn query_all<T: FromRow>(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<Vec<T>> {
        self.prepared_query(sql.pg, &bind(params))?
            .iter()
            .map(T::from_row)
            .collect()
    }

    async fn insert(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<i64> {
        self.prepared_query_one(sql.pg, &bind(params))?.raw_int(0)
    }

    async fn execute(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<u64> {
        self.prepared_execute(sql.pg, &bind(params))
    }
}

// ---- the contract ----------------------------------------------------------------------

impl TopologyStore for PgStore {
    sql::shared_store_methods!();

    fn create_topology(&self, name: &str) -> Result<TopologyRecord, StoreError> {
        check_name("topology name", name)?;
        self.write("create_topology", |db| {
            let now = Timestamp::now();
            // A concurrent insert of the same name makes this one wait for its outcome,
            // then do nothing: a duplicate, never a unique-violation error.
            let row = db.prepared_query_opt(
                concat!(
                    "INSERT INTO topologies (name, status, version, reason, needs_resync, ",
                    "created_at, status_changed_at) VALUES ($1, $2, $3, NULL, false, $4, $4) ",
                    "ON CONFLICT ON CONSTRAINT topologies_name_unique DO NOTHING RETURNING ",
                    topology_columns!()
                ),
                &[
                    &name,
                    &TopologyStatus::Pending.as_str(),
                    &INITIAL_SQL_VERSION,
                    &now.as_micros(),
                ],
            )?;
            match row {
                Some(row) => TopologyRecord::from_row(&row),
                None => Err(StoreError::Duplicate {
                    entity: Entity::Topology,
                    name: String::from(name),
                }
                .into()),
            }
        })
    }

    fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError> {
        self.single("get_topology", true, |db| {
            sql::ready(sql::topology(db, id, Lock::None))
        })
    }

    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
    ) -> Result<Vec<TopologyRecord>, StoreError> {
        self.single("list_topologies", true, |db| {
            sql::ready(sql::list_topologies(db, status))
        })
    }

    fn set_lan_network_id(&self, lan: LanId, network_id: Option<&str>) -> Result<(), StoreError> {
        let invalid = network_id.and_then(|n| check_text("network id", n).err());
        self.write("set_lan_network_id", |db| {
            let Some(k) = key(lan.get()) else {
                return Err(not_found(Entity::Lan, lan.get()).into());
            };
            let changed = if invalid.is_some() {
                // Not found comes first: only an existing LAN hears about its bad value.
                db.prepared_query("SELECT id FROM lans WHERE id = $1", &[&k])?
                    .len()
            } else {
                // One statement, one row lock: no status gate, no bump.
                let n = db.prepared_execute(
                    "UPDATE lans SET network_id = $2 WHERE id = $1",
                    &[&k, &network_id],
                )?;
                usize::from(n > 0)
            };
            if changed == 0 {
                return Err(not_found(Entity::Lan, lan.get()).into());
            }
            Ok(refuse(invalid.as_ref().map(clone_invalid))?)
        })
    }

    fn set_decky_runtime(&self, decky: DeckyId, runtime: &DeckyRuntime) -> Result<(), StoreError> {
        let ip = runtime.ip.clone().flatten();
        let last_error = runtime.last_error.clone().flatten();
        let invalid = pick([
            ip.as_deref()
                .and_then(|ip| check_text("decky ip", ip).err()),
            last_error
                .as_deref()
                .and_then(|e| check_text("decky last error", e).err()),
        ]);
        self.write("set_decky_runtime", |db| {
            let Some(k) = key(decky.get()) else {
                return Err(not_found(Entity::Decky, decky.get()).into());
            };
            let changed = if invalid.is_some() {
                db.prepared_query("SELECT id FROM deckies WHERE id = $1", &[&k])?
                    .len()
            } else {
                let n = db.prepared_execute(
                    "UPDATE deckies SET \
                         state = CASE WHEN $2 THEN $3::text ELSE state END, \
                         ip = CASE WHEN $4 THEN $5::text ELSE ip END, \
                         last_error = CASE WHEN $6 THEN $7::text ELSE last_error END \
                     WHERE id = $1",
                    &[
                        &k,
                        &runtime.state.is_some(),
                        &runtime.state.map(DeckyState::as_str),
                        &runtime.ip.is_some(),
                        &ip,
                        &runtime.last_error.is_some(),
                        &last_error,
                    ],
                )?;
                usize::from(n > 0)
            };
            if changed == 0 {
                return Err(not_found(Entity::Decky, decky.get()).into());
            }
            Ok(refuse(invalid.as_ref().map(clone_invalid))?)
        })
    }

    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError> {
        self.write("set_needs_resync", |db| {
            sql::ready(sql::set_needs_resync(db, id, needs_resync))
        })
    }
}

/// A copy of an [`StoreError::Invalid`] computed once outside a retried closure.
fn clone_invalid(e: &StoreError) -> StoreError {
    match e {
        StoreError::Invalid { field, problem } => StoreError::Invalid {
            field,
            problem: problem.clone(),
        },
        other => backend(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_never_show_the_password() {
        let config: Config = "postgresql://alice:s3cret@db.example:6543/lab"
            .parse()
            .unwrap();
        let place = describe_place(&config, Some("t1"));
        assert_eq!(
            place,
            "PostgreSQL database 'lab' on db.example:6543, schema 't1'"
        );
        let builder = PgStore::builder("postgresql://alice:s3cret@db.example/lab").pool_size(0);
        let shown = format!("{builder:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("pool_size: 1"), "{shown}");
    }

    #[test]
    fn nul_is_refused_as_invalid() {
        let e = check_text("payload", "a\0b").unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Invalid {
                    field: "payload",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(check_text("payload", "plain").is_ok());
    }

    #[test]
    fn bad_urls_and_schemas_are_invalid_arguments() {
        let e = PgStore::connect("postgresql://host:notaport/db").unwrap_err();
        assert!(
            matches!(e, StoreError::Invalid { field: "url", .. }),
            "{e:?}"
        );
        let e = PgStore::connect_with_schema("host=localhost", "Robert'); DROP").unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Invalid {
                    field: "schema",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn an_unreachable_server_is_a_clear_error() {
        // Port 1 on loopback: nothing listens there.
        let e = PgStore::builder("host=127.0.0.1 port=1 user=nobody dbname=lab")
            .timeout(Duration::from_secs(2))
            .connect()
            .unwrap_err();
        let message = e.to_string();
        assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
        assert!(message.contains("127.0.0.1:1"), "{message}");
        assert!(message.contains("'lab'"), "{message}");
    }
}
