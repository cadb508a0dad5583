//! [`AsyncPgStore`] and [`PgStore`]: the store on a PostgreSQL server, shared by many
//! processes on many hosts. One implementation, async (tokio-postgres with a deadpool
//! pool); [`PgStore`] is a blocking handle on it that drives a small runtime of its own.
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
//! - **A schema migrated under an open store is noticed.** Pipelined with every
//!   transaction's `BEGIN` (no round trip of its own), the store reads the schema version
//!   stamped in `meta`; a write transaction locks that row `FOR SHARE` until it ends, and a
//!   single-statement read reads it after its statement. Another version (another process
//!   migrated the schema while this store was open: a rolling upgrade) is
//!   [`StoreError::SchemaChanged`], and nothing is read or written in a layout this build
//!   does not know. A migration restamps before it alters anything, so it waits for the old
//!   build's open writes and they wait for it.
//! - **Round trips are few.** A write's `BEGIN` and the stamp's lock go out with its
//!   first statement, pipelined on the one connection (the server runs them in order, so
//!   the statement still runs inside the transaction, after the lock); a claim and
//!   `apply_live` send the topology's row lock together with the statement after it (the
//!   claim, the fence), which runs once the lock is granted, in a snapshot taken then.
//!   `apply_live` sends its lock and fence with its first edit too (the edits do not wait
//!   for their answers: what those refuse rolls the edits back), so one new LAN is two
//!   round trips, the edits' and `COMMIT`; a failing call reads what its refusal names
//!   only then.
//! - **A claim, a mark, a renewal and a release are one statement**, its own transaction
//!   (no `BEGIN`, no `COMMIT`), in one round trip. Each is a single write whose every
//!   refusal writes nothing (the claim and the fenced writes take only rows the store can
//!   read back, so a corrupt row is refused before anything is written), so committing
//!   before its answer is read is safe. The statement checks the schema stamp itself, in
//!   its own snapshot, before it touches a row: a stamp other than this build's fails it
//!   as a whole. (Its tables are locked before that snapshot is taken, and a migration
//!   locks every table before it changes any, so the stamp the statement reads is the
//!   layout it writes in.) The driver hands the statement's answer on only after the
//!   server's `ReadyForQuery`, sent once the statement's transaction has ended, so an
//!   answer is a commit and an error at commit is the statement's error. What a refusal
//!   names is read after, on its own, each read with the stamp read after it (in the
//!   same round trip), so a schema migrated since is refused there too.
//! - Should the server still abort a transaction as a deadlock victim (40P01), a
//!   serialization failure (40001, e.g. under a server-wide default isolation level this
//!   store does not use) or a lock timeout (55P03, with a `lock_timeout` set on the server),
//!   the store rolls it back and runs it again, at most 8 times in all with a short
//!   backoff; nothing of the failed attempt was committed. Only when every attempt fails
//!   does the error surface, as a [`StoreError::Backend`] that says so.
//! - **A write is never applied twice, and never refused for its own committed work.** A
//!   write's `BEGIN` reads the transaction's id in the same round trip
//!   (`txid_current()`). A connection lost (any I/O error, a closed connection, the
//!   server ending the session: 57P01/57P02/57P03) before `COMMIT` was sent leaves nothing
//!   committed: the write is run again on another connection (as often as it takes,
//!   within [`PgStoreBuilder::call_timeout`]). One lost after `COMMIT` was
//!   sent (or whose time ran out then) is a commit in doubt: the store asks the server on
//!   another connection how that transaction ended (`txid_status`), and returns the
//!   write's own result if it committed, runs it again if it aborted, and asks again while
//!   it is still in progress. When the answer cannot be had within
//!   [`PgStoreBuilder::resolve_timeout`] (the server unreachable, or no longer knowing the
//!   transaction), the call returns [`StoreError::OutcomeUnknown`], which says the write
//!   may or may not have been applied; it is never reported as a refusal.
//! - A write of one statement has no transaction id to ask about. A connection lost (or
//!   a session the server ended) before its answer was complete (a network that dropped
//!   the server's answers, say) is settled from what is stored, read under
//!   the row lock the write takes, so that a write still running is waited for: a mark
//!   whose mutation is in its target state under its token committed, and returns that
//!   row; a renewal runs again (renewed twice, the lease ends a little later); a claim
//!   whose queue has no claimed mutation, or a mark or release whose mutation is not so,
//!   cannot have committed and runs again; a claim whose queue has a claimed mutation, or
//!   a release whose mutation was claimed again since, is
//!   [`StoreError::OutcomeUnknown`].
//! - **Reads are run again on any lost connection** (they change nothing), within
//!   [`PgStoreBuilder::call_timeout`]: a read whose connection dies at any point (at
//!   `BEGIN`, mid-snapshot, at its `COMMIT`) is read again on another one.
//! - **Every call is bounded**: the wait for a pooled connection and for a new connection
//!   by [`PgStoreBuilder::timeout`] (default 10 s), all of a call's work on the server by
//!   [`PgStoreBuilder::call_timeout`] (default 30 s, a client-side timer that abandons the
//!   connection: it also bounds a server that stops answering without closing the
//!   connection), plus [`PgStoreBuilder::resolve_timeout`] (default 10 s) for a commit in
//!   doubt. The server itself cancels a statement running longer than
//!   [`PgStoreBuilder::statement_timeout`] (default 30 s), and TCP keepalives (default
//!   after 30 s idle) end connections to a peer that is gone. A bound that passes is a
//!   [`StoreError::Timeout`] (nothing written); an abandoned connection is closed, never
//!   handed out again.
//! - The version bump is a guarded `UPDATE ... SET version = version + 1 WHERE id = $1 AND
//!   version = $2 AND version < i64::MAX`, inside the same transaction as the write.
//! - The schema's `CHECK` lists and its fingerprint are generated from the lifecycle
//!   declarations; nothing here spells out a status string. Every statement takes its
//!   values as parameters, and is the shared SQL planner's (the one SQLite runs too).
//! - Rows are read back strictly: an unknown name or an impossible version is a
//!   [`StoreError::Corrupt`] naming the table, the row and the value.
//! - **TLS** as libpq's `sslmode` and `sslrootcert` ask (in the connection string, or
//!   [`PgStoreBuilder::ssl_mode`] and [`PgStoreBuilder::ssl_root_cert`]): rustls, the
//!   system's roots unless a root file is given; `verify-ca` checks the chain,
//!   `verify-full` the host name too. A certificate refused, or no TLS where it is
//!   required, is a [`StoreError::Tls`].
//! - **Errors keep their cause**: a [`StoreError::Backend`]'s message says what the store
//!   was doing (with the SQLSTATE when the server answered with one); its `source()` is the
//!   driver's error, then the driver's cause (the I/O error, the server's message). A
//!   [`StoreError::Timeout`] after runs again has the last failure as its `source()`.
//! - With the `tracing` feature, each call is a span (`backend = "postgres"`, the
//!   operation, topology, expected and new version, outcome), and each run again, commit in
//!   doubt and resolution an event (see the crate's feature list).

mod codec;
mod conn;
mod listen;
mod run;
mod schema;
mod tls;

use std::boxed::Box;
use std::fmt;
use std::future::Future;
use std::string::String;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::store::sql::rows::Key;
use crate::store::sql::{
    self, INITIAL_SQL_VERSION, Lock, Param, Session, Stmt, backend, key, not_found, pick, refuse,
    stmt,
};
use crate::store::{
    AsyncTopologyStore, BackendError, ChildEdit, Claim, ClaimOptions, DeckyId, DeckyRuntime,
    DeckyState, EditReport, Edited, Entity, EventId, LanId, Lease, Mutation, MutationId, Page,
    PageRequest, Precondition, StatusEvent, StoreError, StoreFuture, Timestamp, TopologyDetail,
    TopologyRecord, TopologyStore, Transitioned, canonical_name, check_text,
};
use crate::{MutationOp, MutationState, TopologyId, TopologyStatus};

use conn::{PgSession, Settings};
pub use run::PgStoreStats;
use run::{Core, call};
pub use tls::{PgSslMode, PgTls};

/// The pool size of [`PgStore::connect`].
const DEFAULT_POOL_SIZE: u32 = 8;

/// How long an operation waits for a free pooled connection, and a new connection for the
/// server, unless told otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The client-side bound on one call's work on the server, unless told otherwise.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The server's `statement_timeout`, unless told otherwise.
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// TCP keepalives start after this long idle, unless told otherwise.
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);

/// How long a commit in doubt is asked about, unless told otherwise.
const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for [`AsyncPgStore`] and [`PgStore`]: pool size, schema, bounds. Made by
/// [`PgStore::builder`] or [`AsyncPgStore::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use topostate::store::PgStore;
///
/// let store = PgStore::builder("host=/run/postgresql dbname=topostate")
///     .pool_size(4)
///     .schema("lab_editor")
///     .timeout(Duration::from_secs(3))
///     .call_timeout(Duration::from_secs(5))
///     .connect()?;
/// assert_eq!(store.schema(), Some("lab_editor"));
/// # Ok::<(), topostate::store::StoreError>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct PgStoreBuilder {
    url: String,
    settings: Settings,
}

impl fmt::Debug for PgStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: it is not shown.
        let s = &self.settings;
        f.debug_struct("PgStoreBuilder")
            .field("pool_size", &s.pool_size)
            .field("schema", &s.schema)
            .field("timeout", &s.timeout)
            .field("test_on_checkout", &s.test_on_checkout)
            .field("call_timeout", &s.call_timeout)
            .field("statement_timeout", &s.statement_timeout)
            .field("keepalive", &s.keepalive)
            .field("resolve_timeout", &s.resolve_timeout)
            .field("ssl_mode", &s.ssl_mode)
            .field("ssl_root_cert", &s.ssl_root_cert)
            .finish_non_exhaustive()
    }
}

impl PgStoreBuilder {
    fn new(url: &str) -> Self {
        Self {
            url: String::from(url),
            settings: Settings {
                pool_size: DEFAULT_POOL_SIZE,
                schema: None,
                timeout: DEFAULT_TIMEOUT,
                test_on_checkout: false,
                call_timeout: DEFAULT_CALL_TIMEOUT,
                statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
                keepalive: DEFAULT_KEEPALIVE,
                resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
                ssl_mode: None,
                ssl_root_cert: None,
            },
        }
    }

    /// At most `size` connections (at least 1; default 8). Connections are opened when
    /// needed, not up front.
    pub fn pool_size(mut self, size: u32) -> Self {
        self.settings.pool_size = size.max(1);
        self
    }

    /// Keeps the tables in this schema (created if missing) by setting every connection's
    /// `search_path` to it, e.g. one schema per tenant or per test. It must be a plain
    /// lowercase identifier: `[a-z_][a-z0-9_]*`, at most 63 bytes, not starting with `pg_`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.settings.schema = Some(schema.into());
        self
    }

    /// How long to wait for a new connection to the server, and for a free connection of
    /// the pool, before an operation fails with [`StoreError::Timeout`] (default 10 s). A
    /// `connect_timeout` in the URL wins for the former. A server that refuses connections
    /// for now (restarting) is tried again within this bound.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// Pings each connection (an empty query) when it is checked out of the pool. Off by
    /// default: it costs one round trip per operation, and the store already runs a call
    /// again when it finds its connection lost before anything was applied.
    pub fn test_on_checkout(mut self, test: bool) -> Self {
        self.settings.test_on_checkout = test;
        self
    }

    /// The most a call's work on the server may take, all its attempts together (default
    /// 30 s): a client-side timer, so it also bounds a server that stops answering without
    /// closing the connection. When it passes the call's connection is closed and the call
    /// returns [`StoreError::Timeout`], unless the write's `COMMIT` had been sent: that
    /// write is resolved as any commit in doubt (see [`resolve_timeout`](Self::resolve_timeout)).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.settings.call_timeout = timeout;
        self
    }

    /// The server's `statement_timeout` for the store's sessions (default 30 s): the
    /// server cancels a statement running longer (the call then fails with
    /// [`StoreError::Timeout`]). [`Duration::ZERO`] leaves the server's own setting.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.settings.statement_timeout = timeout;
        self
    }

    /// TCP keepalives start after the connection is idle this long (default 30 s), probe
    /// every third of it, and end the connection after three unanswered probes; data sent
    /// but not acknowledged for twice this long ends it too (`tcp_user_timeout`, Linux).
    /// [`Duration::ZERO`] turns keepalives off. Keepalive settings in the URL are
    /// overridden, except `tcp_user_timeout`.
    pub fn keepalive(mut self, idle: Duration) -> Self {
        self.settings.keepalive = idle;
        self
    }

    /// How long the store keeps asking the server how a commit in doubt ended (its
    /// connection lost after `COMMIT` was sent) before it returns
    /// [`StoreError::OutcomeUnknown`] (default 10 s).
    pub fn resolve_timeout(mut self, timeout: Duration) -> Self {
        self.settings.resolve_timeout = timeout;
        self
    }

    /// How connections use TLS (libpq's `sslmode`), over any `sslmode` of the connection
    /// string; by default the connection string's, else [`PgSslMode::Prefer`]. See
    /// [`PgSslMode`] for what each checks.
    pub fn ssl_mode(mut self, mode: PgSslMode) -> Self {
        self.settings.ssl_mode = Some(mode);
        self
    }

    /// Trusts the root certificates of this PEM file (libpq's `sslrootcert`) for
    /// [`PgSslMode::VerifyCa`] and [`PgSslMode::VerifyFull`], over any `sslrootcert` of the
    /// connection string. Without one, the system's roots are trusted. Given with
    /// [`PgSslMode::Prefer`] or [`PgSslMode::Require`], the certificate is checked as with
    /// [`PgSslMode::VerifyCa`] (as libpq does).
    pub fn ssl_root_cert(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.settings.ssl_root_cert = Some(path.into());
        self
    }

    /// The driver's configuration and TLS connector of this builder's connections, for a
    /// program that runs its own statements on the same terms as the store (the same
    /// `sslmode` and roots, bounds, `search_path`), e.g. a read-only audit with a plain
    /// `tokio_postgres` or `postgres` client.
    ///
    /// ```
    /// use topostate::store::{PgSslMode, PgStore};
    ///
    /// let (config, tls) = PgStore::builder("host=db.example dbname=lab sslmode=require")
    ///     .schema("tenant_a")
    ///     .driver_config()?;
    /// assert_eq!(config.get_dbname(), Some("lab"));
    /// assert_eq!(tls.mode(), PgSslMode::Require);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for a malformed URL (field `url`), `sslmode` (field
    /// `sslmode`), schema name (field `schema`), or a root certificate file that cannot be
    /// read or holds no certificate (field `sslrootcert`; also when the system's roots are
    /// needed and none can be loaded).
    pub fn driver_config(&self) -> Result<(tokio_postgres::Config, PgTls), StoreError> {
        if let Some(schema) = &self.settings.schema {
            schema::check_schema_name(schema)?;
        }
        conn::config(&self.url, &self.settings)
    }

    /// Connects, creates or checks the schema, and returns the blocking store.
    ///
    /// # Errors
    ///
    /// As [`connect_async`](Self::connect_async); also [`StoreError::Backend`] if the
    /// store's runtime cannot be started.
    pub fn connect(self) -> Result<PgStore, StoreError> {
        // Current-thread: the caller's `block_on` drives the I/O. Each reply woke the caller
        // from a worker thread before, which made a call about twice as slow as the
        // synchronous client's (BENCHMARKS.md, "The blocking PgStore on its caller's thread").
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| {
                StoreError::Backend(BackendError::with_context(
                    "starting the PostgreSQL store's runtime",
                    e,
                ))
            })?;
        let runtime = Arc::new(OwnRuntime(Some(runtime)));
        let inner = on_runtime(&runtime, self.connect_async())?;
        Ok(PgStore { inner, runtime })
    }

    /// Connects, creates or checks the schema, and returns the async store. Call it
    /// inside a tokio runtime (with I/O and time enabled): the store's connections are
    /// driven by tasks of that runtime.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] as [`driver_config`](Self::driver_config);
    /// [`StoreError::Backend`] if the server cannot be reached or refuses the login (the
    /// message names host, port and database, never the password; the driver's error is its
    /// `source()`); [`StoreError::Tls`] if TLS cannot be set up as `sslmode` asks (the
    /// server's certificate refused, or no TLS offered);
    /// [`StoreError::Timeout`] if it does not answer within [`timeout`](Self::timeout);
    /// [`StoreError::Corrupt`] with table `meta` if the schema was made from a different
    /// lifecycle declaration (the message shows the expected and the found fingerprint) or
    /// by a newer schema version.
    pub async fn connect_async(self) -> Result<AsyncPgStore, StoreError> {
        let (config, tls) = self.driver_config()?;
        let mut settings = self.settings;
        settings.ssl_mode = Some(tls.mode());
        let place: Arc<str> = Arc::from(conn::describe_place(&config, settings.schema.as_deref()));
        let pool = conn::pool(config.clone(), tls.clone(), &settings)?;
        let core = Core::new(pool, config, tls, place, settings);
        // One connection first, for a clear error (and the schema) before any call.
        let deadline = tokio::time::Instant::now() + core.settings.timeout;
        let first = core.checkout_for_connect(deadline).await?;
        let migrated = tokio::time::timeout_at(
            deadline + core.settings.call_timeout,
            schema::migrate(first.client(), core.settings.schema.as_deref(), &core.place),
        )
        .await;
        match migrated {
            Ok(Ok(())) => first.release(),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(StoreError::Timeout {
                    operation: "connect",
                    waiting_for: "the server to create or check the schema",
                    after: core.settings.call_timeout,
                    cause: None,
                });
            }
        }
        Ok(AsyncPgStore {
            core: Arc::new(core),
        })
    }
}

// ---- the async store -------------------------------------------------------------------

/// A store on a PostgreSQL server for async callers (tokio): the contract through
/// [`AsyncTopologyStore`] (and so [`AsyncTypedStore`](crate::store::AsyncTypedStore)),
/// whose futures are `Send`.
///
/// Like [`PgStore`] (which is a blocking handle on this store) it is a cheap, cloneable
/// handle on a pool of connections; each operation checks one out for the length of one
/// transaction. Its connections are driven by tasks of the runtime it was connected in:
/// use it inside that runtime. Dropping the future of a call abandons the call: its
/// connection is closed (the server rolls back what it had not committed), never reused.
///
/// # Lost connections, commits in doubt, bounds
///
/// - **A write is never applied twice, nor refused for its own committed work.** A
///   connection lost (any I/O error, a closed connection, the server ending the session)
///   before the write's `COMMIT` was sent leaves nothing committed: the write runs again
///   on another connection, until [`call_timeout`](PgStoreBuilder::call_timeout). One lost
///   after `COMMIT` was sent is a commit in doubt: the store asks the server how that
///   transaction ended (its id was read with `BEGIN`, in the same round trip) and returns
///   the write's own result if it committed, runs it again if it aborted, and returns
///   [`StoreError::OutcomeUnknown`] (the write may or may not have been applied) if the
///   server cannot say within [`resolve_timeout`](PgStoreBuilder::resolve_timeout).
/// - A claim, a mark, a renewal and a release are one statement each, their own
///   transaction (one round trip). A connection lost before the answer is settled from what is
///   stored (the mutation's row under the claim's token, the claim's queue): the result,
///   a run again, or [`StoreError::OutcomeUnknown`] where the rows cannot tell (see the
///   module docs).
/// - **Reads run again on any lost connection**, wherever it is lost, as do the runtime
///   writes (`set_*`: running one twice is running it once).
/// - **Every call is bounded**: waiting for a pooled or a new connection by
///   [`timeout`](PgStoreBuilder::timeout) (default 10 s), the call's work on the server by
///   [`call_timeout`](PgStoreBuilder::call_timeout) (default 30 s, a client-side timer:
///   it bounds a server that stops answering without closing the connection too), plus
///   [`resolve_timeout`](PgStoreBuilder::resolve_timeout) (default 10 s) for a commit in
///   doubt. The server cancels statements running past
///   [`statement_timeout`](PgStoreBuilder::statement_timeout) (default 30 s); TCP
///   [`keepalive`](PgStoreBuilder::keepalive)s (default 30 s) end connections to a peer
///   that is gone. A passed bound is a [`StoreError::Timeout`]: nothing was written. A
///   connection abandoned by a timer is closed, never handed out again.
/// - A transaction the server aborts as a deadlock victim, a serialization failure or a
///   lock timeout runs again, at most 8 times in all; then a [`StoreError::Backend`] says
///   so. [`stats`](Self::stats) counts the runs again and the commits in doubt.
///
/// ```no_run
/// use topostate::store::{AsyncPgStore, AsyncTopologyStore, NewLan};
///
/// # async fn run() -> Result<(), topostate::store::StoreError> {
/// let store = AsyncPgStore::connect("postgresql://topostate@localhost/topostate").await?;
/// let lab = store.create_topology("lab").await?;
/// let lan = store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1)).await?;
/// assert_eq!(lan.version, 2);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AsyncPgStore {
    core: Arc<Core>,
}

impl fmt::Debug for AsyncPgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPgStore")
            .field("place", &&*self.core.place)
            .field("schema", &self.core.settings.schema.as_deref())
            .field("pool_size", &self.core.settings.pool_size)
            .finish_non_exhaustive()
    }
}

/// Runs a shared operation on a session the runners hand in by value: the closure's
/// future owns the session (so it borrows nothing of the runner) and hands it back.
macro_rules! on_session {
    ($db:ident => $body:expr) => {
        move |mut session: PgSession| async move {
            let out = {
                let $db = &mut session;
                $body.await
            };
            (session, out)
        }
    };
}

impl AsyncPgStore {
    /// Connects to the database at `url` with a pool of 8 connections, creating or checking
    /// the schema in the first schema of the connection's `search_path`.
    ///
    /// `url` is a `postgresql://user:password@host:port/dbname?options` URL or a libpq-style
    /// `key=value` string (`host=/run/postgresql dbname=topostate`).
    ///
    /// # Errors
    ///
    /// As [`PgStoreBuilder::connect_async`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect_async().await
    }

    /// A builder for the other options (pool size, schema, bounds); finish it with
    /// [`PgStoreBuilder::connect_async`].
    pub fn builder(url: &str) -> PgStoreBuilder {
        PgStoreBuilder::new(url)
    }

    /// The schema given at connect time, if any.
    #[must_use]
    pub fn schema(&self) -> Option<&str> {
        self.core.settings.schema.as_deref()
    }

    /// The most connections this store's pool opens.
    #[must_use]
    pub fn pool_size(&self) -> u32 {
        self.core.settings.pool_size
    }

    /// What the store did about lost connections since it was connected (shared by its
    /// clones).
    #[must_use]
    pub fn stats(&self) -> PgStoreStats {
        self.core.stats()
    }
}

/// The operations, on the shared planner; [`AsyncPgStore`] and [`PgStore`] call them.
impl Core {
    /// [`TopologyStore::create_topology`].
    async fn create_topology(&self, name: &str) -> Result<TopologyRecord, StoreError> {
        const CREATE: Stmt = stmt!(concat!(
            "INSERT INTO topologies (name, status, version, reason, needs_resync, ",
            "created_at, status_changed_at) VALUES ($1, $2, $3, NULL, false, $4, $4) ",
            "ON CONFLICT ON CONSTRAINT topologies_name_unique DO NOTHING RETURNING ",
            crate::store::sql::rows::topology_columns!()
        ));
        let name = canonical_name("topology name", name)?;
        let name: &str = &name;
        self.write(
            call("create_topology"),
            on_session!(db => async {
                let now = Timestamp::now();
                // A concurrent insert of the same name makes this one wait for its
                // outcome, then do nothing: a duplicate, never a unique-violation error.
                let row = db
                    .query_opt::<TopologyRecord>(
                        &CREATE,
                        &[
                            Param::Text(name),
                            Param::Text(TopologyStatus::Pending.as_str()),
                            Param::Int(INITIAL_SQL_VERSION),
                            Param::Int(now.as_micros()),
                        ],
                    )
                    .await?;
                row.ok_or_else(|| {
                    Fail::Store(StoreError::Duplicate {
                        entity: Entity::Topology,
                        name: String::from(name),
                    })
                })
            }),
        )
        .await
    }

    /// [`TopologyStore::get_topology`].
    async fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError> {
        self.single(
            call("get_topology").on(id),
            on_session!(db => sql::topology(db, id, Lock::None)),
        )
        .await
    }

    /// [`TopologyStore::list_topologies`].
    async fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
        page: PageRequest<TopologyId>,
    ) -> Result<Page<TopologyRecord>, StoreError> {
        // A filtered page may take several statements: one snapshot for all of them.
        self.read(
            call("list_topologies"),
            on_session!(db => sql::list_topologies(db, status, page)),
        )
        .await
    }

    /// [`TopologyStore::topology_detail`].
    async fn topology_detail(&self, id: TopologyId) -> Result<TopologyDetail, StoreError> {
        self.read(
            call("topology_detail").on(id),
            on_session!(db => sql::topology_detail(db, id)),
        )
        .await
    }

    /// [`TopologyStore::transition_status`].
    async fn transition_status(
        &self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&str>,
        precondition: Precondition,
    ) -> Result<Transitioned, StoreError> {
        self.write(
            call("transition_status")
                .on(id)
                .expecting(precondition.version),
            on_session!(db => sql::transition_status(db, id, to, reason, precondition)),
        )
        .await
    }

    /// [`TopologyStore::list_status_events`].
    async fn list_status_events(
        &self,
        id: TopologyId,
        page: PageRequest<EventId>,
    ) -> Result<Page<StatusEvent>, StoreError> {
        self.read(
            call("list_status_events").on(id),
            on_session!(db => sql::list_status_events(db, id, page)),
        )
        .await
    }

    /// [`TopologyStore::edit`].
    async fn edit(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError> {
        self.write(
            call("edit").on(id).expecting(expected_version),
            on_session!(db => sql::edit(db, id, expected_version, edits)),
        )
        .await
    }

    /// [`TopologyStore::set_lan_network_id`].
    async fn set_lan_network_id(
        &self,
        lan: LanId,
        network_id: Option<&str>,
    ) -> Result<(), StoreError> {
        const EXISTS: Stmt = stmt!("SELECT id FROM lans WHERE id = $1");
        const SET: Stmt = stmt!("UPDATE lans SET network_id = $2 WHERE id = $1");
        let invalid = network_id.and_then(|n| check_text("network id", n).err());
        let invalid = invalid.as_ref();
        self.write(
            call("set_lan_network_id"),
            on_session!(db => async {
                let Some(k) = key(lan.get()) else {
                    return Err(not_found(Entity::Lan, lan.get()).into());
                };
                let found = if invalid.is_some() {
                    // Not found comes first: only an existing LAN hears about its bad
                    // value.
                    db.query_opt::<Key>(&EXISTS, &[Param::Int(k)]).await?.is_some()
                } else {
                    // One statement, one row lock: no status gate, no bump.
                    db.execute(&SET, &[Param::Int(k), Param::OptText(network_id)])
                        .await?
                        > 0
                };
                if !found {
                    return Err(not_found(Entity::Lan, lan.get()).into());
                }
                Ok(refuse(invalid.map(clone_invalid))?)
            }),
        )
        .await
    }

    /// [`TopologyStore::set_decky_runtime`].
    async fn set_decky_runtime(
        &self,
        decky: DeckyId,
        runtime: &DeckyRuntime,
    ) -> Result<(), StoreError> {
        const EXISTS: Stmt = stmt!("SELECT id FROM deckies WHERE id = $1");
        const SET: Stmt = stmt!(
            "UPDATE deckies SET \
                 state = CASE WHEN $2 THEN $3::text ELSE state END, \
                 ip = CASE WHEN $4 THEN $5::text ELSE ip END, \
                 last_error = CASE WHEN $6 THEN $7::text ELSE last_error END \
             WHERE id = $1"
        );
        let ip = runtime.ip.as_ref().and_then(|ip| ip.as_deref());
        let last_error = runtime.last_error.as_ref().and_then(|e| e.as_deref());
        let invalid = pick([
            ip.and_then(|ip| check_text("decky ip", ip).err()),
            last_error.and_then(|e| check_text("decky last error", e).err()),
        ]);
        let invalid = invalid.as_ref();
        let state = runtime.state;
        let (set_ip, set_error) = (runtime.ip.is_some(), runtime.last_error.is_some());
        self.write(
            call("set_decky_runtime"),
            on_session!(db => async {
                let Some(k) = key(decky.get()) else {
                    return Err(not_found(Entity::Decky, decky.get()).into());
                };
                let found = if invalid.is_some() {
                    db.query_opt::<Key>(&EXISTS, &[Param::Int(k)]).await?.is_some()
                } else {
                    db.execute(
                        &SET,
                        &[
                            Param::Int(k),
                            Param::Bool(state.is_some()),
                            Param::OptText(state.map(DeckyState::as_str)),
                            Param::Bool(set_ip),
                            Param::OptText(ip),
                            Param::Bool(set_error),
                            Param::OptText(last_error),
                        ],
                    )
                    .await?
                        > 0
                };
                if !found {
                    return Err(not_found(Entity::Decky, decky.get()).into());
                }
                Ok(refuse(invalid.map(clone_invalid))?)
            }),
        )
        .await
    }

    /// [`TopologyStore::enqueue_mutation`].
    async fn enqueue_mutation(
        &self,
        id: TopologyId,
        op: MutationOp,
        payload: &str,
        expected_version: Option<u64>,
    ) -> Result<Edited<MutationId>, StoreError> {
        self.write(
            call("enqueue_mutation").on(id).expecting(expected_version),
            on_session!(db => sql::enqueue_mutation(db, id, op, payload, expected_version)),
        )
        .await
    }

    /// [`TopologyStore::claim_next_mutation_with`].
    async fn claim_next_mutation_with(
        &self,
        id: TopologyId,
        options: &ClaimOptions,
    ) -> Result<Claim, StoreError> {
        self.write_one_trip(
            call("claim_next_mutation").on(id),
            on_session!(db => sql::claim_next_mutation(db, id, options)),
            on_session!(db => sql::settle_claim(db, id)),
        )
        .await
    }

    /// [`TopologyStore::renew_lease`].
    async fn renew_lease(&self, claim: &Lease, lease: Duration) -> Result<Mutation, StoreError> {
        self.write_one_trip(
            call("renew_lease").on(claim.topology_id()),
            on_session!(db => sql::renew_lease(db, claim, lease)),
            // Renewed or not, it may run again: the lease then ends a little later.
            on_session!(_db => async { Ok(sql::Settled::NotCommitted) }),
        )
        .await
    }

    /// [`TopologyStore::release_mutation`].
    async fn release_mutation(&self, claim: Lease) -> Result<Mutation, StoreError> {
        let claim = &claim;
        self.write_one_trip(
            call("release_mutation").on(claim.topology_id()),
            on_session!(db => sql::release(db, claim)),
            on_session!(db => sql::settle_fenced(db, claim, MutationState::Pending)),
        )
        .await
    }

    /// [`TopologyStore::wait_for_work`]: looks at the queues, then waits for the server's
    /// notification of a queue write (on a connection of its own, listening) or for the
    /// earliest running lease to pass, and looks again.
    async fn wait_for_work(
        &self,
        id: Option<TopologyId>,
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        let mut listener = listen::Listener::start(self).await?;
        loop {
            let offer = self
                .read(call("wait_for_work"), on_session!(db => sql::offer(db, id)))
                .await?;
            if offer.work {
                return Ok(true);
            }
            let left = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    left
                }
                None => timeout,
            };
            let wait = offer.earliest.map_or(left, |until| {
                left.min(crate::store::wake::micros_until(offer.now, until))
            });
            listener.next(wait).await;
        }
    }

    /// [`TopologyStore::apply_live`].
    async fn apply_live(
        &self,
        claim: &Lease,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError> {
        self.write(
            call("apply_live").on(claim.topology_id()),
            on_session!(db => sql::apply_live(db, claim, edits)),
        )
        .await
    }

    /// [`TopologyStore::mark_mutation_applied`].
    async fn mark_mutation_applied(&self, claim: Lease) -> Result<Mutation, StoreError> {
        let claim = &claim;
        self.write_one_trip(
            call("mark_mutation_applied").on(claim.topology_id()),
            on_session!(db => sql::mark(db, claim, MutationState::Applied, None)),
            on_session!(db => sql::settle_fenced(db, claim, MutationState::Applied)),
        )
        .await
    }

    /// [`TopologyStore::mark_mutation_failed`].
    async fn mark_mutation_failed(
        &self,
        claim: Lease,
        reason: &str,
    ) -> Result<Mutation, StoreError> {
        let claim = &claim;
        self.write_one_trip(
            call("mark_mutation_failed").on(claim.topology_id()),
            on_session!(db => sql::mark(db, claim, MutationState::Failed, Some(reason))),
            on_session!(db => sql::settle_fenced(db, claim, MutationState::Failed)),
        )
        .await
    }

    /// [`TopologyStore::list_mutations`].
    async fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
        page: PageRequest<MutationId>,
    ) -> Result<Page<Mutation>, StoreError> {
        self.read(
            call("list_mutations").on(id),
            on_session!(db => sql::list_mutations(db, id, state, page)),
        )
        .await
    }

    /// [`TopologyStore::set_needs_resync`].
    async fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError> {
        self.write(
            call("set_needs_resync").on(id),
            on_session!(db => sql::set_needs_resync(db, id, needs_resync)),
        )
        .await
    }

    /// [`TopologyStore::delete_topology`].
    async fn delete_topology(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        self.write(
            call("delete_topology").on(id).expecting(expected_version),
            on_session!(db => sql::delete_topology(db, id, expected_version)),
        )
        .await
    }
}

impl AsyncTopologyStore for AsyncPgStore {
    fn create_topology<'a>(&'a self, name: &'a str) -> StoreFuture<'a, TopologyRecord> {
        Box::pin(self.core.create_topology(name))
    }

    fn get_topology(&self, id: TopologyId) -> StoreFuture<'_, TopologyRecord> {
        Box::pin(self.core.get_topology(id))
    }

    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
        page: PageRequest<TopologyId>,
    ) -> StoreFuture<'_, Page<TopologyRecord>> {
        Box::pin(self.core.list_topologies(status, page))
    }

    fn topology_detail(&self, id: TopologyId) -> StoreFuture<'_, TopologyDetail> {
        Box::pin(self.core.topology_detail(id))
    }

    fn transition_status<'a>(
        &'a self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&'a str>,
        precondition: Precondition,
    ) -> StoreFuture<'a, Transitioned> {
        Box::pin(self.core.transition_status(id, to, reason, precondition))
    }

    fn list_status_events(
        &self,
        id: TopologyId,
        page: PageRequest<EventId>,
    ) -> StoreFuture<'_, Page<StatusEvent>> {
        Box::pin(self.core.list_status_events(id, page))
    }

    fn edit<'a>(
        &'a self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &'a [ChildEdit],
    ) -> StoreFuture<'a, EditReport> {
        Box::pin(self.core.edit(id, expected_version, edits))
    }

    fn set_lan_network_id<'a>(
        &'a self,
        lan: LanId,
        network_id: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.core.set_lan_network_id(lan, network_id))
    }

    fn set_decky_runtime<'a>(
        &'a self,
        decky: DeckyId,
        runtime: &'a DeckyRuntime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.core.set_decky_runtime(decky, runtime))
    }

    fn enqueue_mutation<'a>(
        &'a self,
        id: TopologyId,
        op: MutationOp,
        payload: &'a str,
        expected_version: Option<u64>,
    ) -> StoreFuture<'a, Edited<MutationId>> {
        Box::pin(
            self.core
                .enqueue_mutation(id, op, payload, expected_version),
        )
    }

    fn claim_next_mutation(&self, id: TopologyId) -> StoreFuture<'_, Claim> {
        Box::pin(async move {
            let options = ClaimOptions::default();
            self.core.claim_next_mutation_with(id, &options).await
        })
    }

    fn claim_next_mutation_with<'a>(
        &'a self,
        id: TopologyId,
        options: &'a ClaimOptions,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(self.core.claim_next_mutation_with(id, options))
    }

    fn renew_lease<'a>(&'a self, claim: &'a Lease, lease: Duration) -> StoreFuture<'a, Mutation> {
        Box::pin(self.core.renew_lease(claim, lease))
    }

    fn release_mutation(&self, claim: Lease) -> StoreFuture<'_, Mutation> {
        Box::pin(self.core.release_mutation(claim))
    }

    fn wait_for_work(&self, id: Option<TopologyId>, timeout: Duration) -> StoreFuture<'_, bool> {
        Box::pin(self.core.wait_for_work(id, timeout))
    }

    fn apply_live<'a>(
        &'a self,
        claim: &'a Lease,
        edits: &'a [ChildEdit],
    ) -> StoreFuture<'a, EditReport> {
        Box::pin(self.core.apply_live(claim, edits))
    }

    fn mark_mutation_applied(&self, claim: Lease) -> StoreFuture<'_, Mutation> {
        Box::pin(self.core.mark_mutation_applied(claim))
    }

    fn mark_mutation_failed<'a>(
        &'a self,
        claim: Lease,
        reason: &'a str,
    ) -> StoreFuture<'a, Mutation> {
        Box::pin(self.core.mark_mutation_failed(claim, reason))
    }

    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
        page: PageRequest<MutationId>,
    ) -> StoreFuture<'_, Page<Mutation>> {
        Box::pin(self.core.list_mutations(id, state, page))
    }

    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> StoreFuture<'_, ()> {
        Box::pin(self.core.set_needs_resync(id, needs_resync))
    }

    fn delete_topology(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> StoreFuture<'_, ()> {
        Box::pin(self.core.delete_topology(id, expected_version))
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

// ---- the blocking store ----------------------------------------------------------------

/// A [`TopologyStore`] on a PostgreSQL server, for blocking callers.
///
/// A `PgStore` is a handle on an [`AsyncPgStore`] and a current-thread tokio runtime of its
/// own, with no threads of its own: each call runs on its caller's thread, blocking it, and
/// that thread drives the sockets itself while it waits, as the synchronous `postgres`
/// client does, so no reply crosses threads on its way to the caller (when several threads
/// call at once, one of them drives the sockets for all). It is `Send + Sync`, cloning it
/// is cheap (the clone shares the pool), and each operation checks one connection out for
/// the length of one transaction. Any number of stores, in one process or many, on one host or
/// many, can work on the same database: every write is one transaction that locks the
/// topology's row first, so the contract's guarantees hold across all of them. Lost
/// connections, commits in doubt, retries and bounds are handled as
/// [`AsyncPgStore`'s](AsyncPgStore#lost-connections-commits-in-doubt-bounds) are.
///
/// **Inside an async runtime**, use [`AsyncPgStore`]. A `PgStore` made, called or dropped
/// inside a tokio task does not panic (as a runtime started within a runtime would): each
/// such call runs on a helper thread while the task's worker thread waits for it, which
/// stalls every other task of that worker for the length of the call.
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
/// Connections use TLS (rustls) as the connection string's `sslmode` asks, as libpq does:
/// `prefer` by default (TLS if the server offers it, certificate unchecked), up to
/// `verify-full` (the certificate signed by a root of `sslrootcert`, or of the system when
/// none is given, and issued for the host name); see [`PgSslMode`]. A refused certificate is
/// [`StoreError::Tls`]. Free text
/// (subnets, configs, payloads, reasons, runtime fields) cannot hold the NUL character,
/// which PostgreSQL's `text` refuses; such a write is [`StoreError::Invalid`] here.
/// Timestamps come from the clock of the host that writes, as in every backend; history is
/// ordered by ids, never by them.
///
/// Leases run by the server's clock (`clock_timestamp()`), so appliers on hosts with
/// skewed clocks agree on when a lease has passed; a mutation left `applying` by a crashed
/// applier is taken over by the next claim after its lease. Appliers waiting for work
/// ([`TopologyStore::wait_for_work`]) are woken by the server (`LISTEN`/`NOTIFY`).
#[derive(Clone)]
pub struct PgStore {
    // Declared before `runtime`: the pool goes before the runtime that drives it.
    inner: AsyncPgStore,
    runtime: Arc<OwnRuntime>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("place", &&*self.inner.core.place)
            .field("schema", &self.schema())
            .field("pool_size", &self.pool_size())
            .finish_non_exhaustive()
    }
}

/// A runtime that shuts down without waiting: dropping it never blocks, and never panics
/// inside another runtime (as dropping a `Runtime` there does).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `future` to completion on `runtime`, from a blocking caller. Inside another
/// runtime (where `block_on` would panic) it runs on a helper thread while the caller
/// waits.
fn on_runtime<F>(runtime: &OwnRuntime, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let Some(rt) = &runtime.0 else {
        unreachable!("the runtime is taken only when it is dropped")
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return rt.block_on(future);
    }
    std::thread::scope(|scope| {
        match scope.spawn(|| rt.block_on(future)).join() {
            Ok(out) => out,
            // The call panicked on the helper thread: carry the panic to the caller.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
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

    /// A builder for the other options (pool size, schema, bounds).
    pub fn builder(url: &str) -> PgStoreBuilder {
        PgStoreBuilder::new(url)
    }

    /// The schema given at connect time, if any.
    #[must_use]
    pub fn schema(&self) -> Option<&str> {
        self.inner.schema()
    }

    /// The most connections this store's pool opens.
    #[must_use]
    pub fn pool_size(&self) -> u32 {
        self.inner.pool_size()
    }

    /// What the store did about lost connections since it was connected (shared by its
    /// clones).
    #[must_use]
    pub fn stats(&self) -> PgStoreStats {
        self.inner.stats()
    }

    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        on_runtime(&self.runtime, future)
    }
}

impl TopologyStore for PgStore {
    fn create_topology(&self, name: &str) -> Result<TopologyRecord, StoreError> {
        self.block_on(self.inner.core.create_topology(name))
    }

    fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError> {
        self.block_on(self.inner.core.get_topology(id))
    }

    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
        page: PageRequest<TopologyId>,
    ) -> Result<Page<TopologyRecord>, StoreError> {
        self.block_on(self.inner.core.list_topologies(status, page))
    }

    fn topology_detail(&self, id: TopologyId) -> Result<TopologyDetail, StoreError> {
        self.block_on(self.inner.core.topology_detail(id))
    }

    fn transition_status(
        &self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&str>,
        precondition: Precondition,
    ) -> Result<Transitioned, StoreError> {
        self.block_on(
            self.inner
                .core
                .transition_status(id, to, reason, precondition),
        )
    }

    fn list_status_events(
        &self,
        id: TopologyId,
        page: PageRequest<EventId>,
    ) -> Result<Page<StatusEvent>, StoreError> {
        self.block_on(self.inner.core.list_status_events(id, page))
    }

    fn edit(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError> {
        self.block_on(self.inner.core.edit(id, expected_version, edits))
    }

    fn set_lan_network_id(&self, lan: LanId, network_id: Option<&str>) -> Result<(), StoreError> {
        self.block_on(self.inner.core.set_lan_network_id(lan, network_id))
    }

    fn set_decky_runtime(&self, decky: DeckyId, runtime: &DeckyRuntime) -> Result<(), StoreError> {
        self.block_on(self.inner.core.set_decky_runtime(decky, runtime))
    }

    fn enqueue_mutation(
        &self,
        id: TopologyId,
        op: MutationOp,
        payload: &str,
        expected_version: Option<u64>,
    ) -> Result<Edited<MutationId>, StoreError> {
        self.block_on(
            self.inner
                .core
                .enqueue_mutation(id, op, payload, expected_version),
        )
    }

    fn claim_next_mutation_with(
        &self,
        id: TopologyId,
        options: &ClaimOptions,
    ) -> Result<Claim, StoreError> {
        self.block_on(self.inner.core.claim_next_mutation_with(id, options))
    }

    fn renew_lease(&self, claim: &Lease, lease: Duration) -> Result<Mutation, StoreError> {
        self.block_on(self.inner.core.renew_lease(claim, lease))
    }

    fn release_mutation(&self, claim: Lease) -> Result<Mutation, StoreError> {
        self.block_on(self.inner.core.release_mutation(claim))
    }

    fn wait_for_work(&self, id: Option<TopologyId>, timeout: Duration) -> Result<bool, StoreError> {
        self.block_on(self.inner.core.wait_for_work(id, timeout))
    }

    fn apply_live(&self, claim: &Lease, edits: &[ChildEdit]) -> Result<EditReport, StoreError> {
        self.block_on(self.inner.core.apply_live(claim, edits))
    }

    fn mark_mutation_applied(&self, claim: Lease) -> Result<Mutation, StoreError> {
        self.block_on(self.inner.core.mark_mutation_applied(claim))
    }

    fn mark_mutation_failed(&self, claim: Lease, reason: &str) -> Result<Mutation, StoreError> {
        self.block_on(self.inner.core.mark_mutation_failed(claim, reason))
    }

    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
        page: PageRequest<MutationId>,
    ) -> Result<Page<Mutation>, StoreError> {
        self.block_on(self.inner.core.list_mutations(id, state, page))
    }

    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError> {
        self.block_on(self.inner.core.set_needs_resync(id, needs_resync))
    }

    fn delete_topology(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        self.block_on(self.inner.core.delete_topology(id, expected_version))
    }
}

// ---- errors ----------------------------------------------------------------------------

/// A failed step: a refusal to report as it is, or a driver error to wrap.
pub(crate) enum Fail {
    Store(StoreError),
    Sql(tokio_postgres::Error),
    /// The connection was lost before the call could have changed anything.
    Lost(tokio_postgres::Error),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
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

/// Wraps a driver error as [`StoreError::Backend`]: `context` (with the SQLSTATE, if the
/// server answered with one) is its message, the driver's error its `source()`.
fn sql_error(e: tokio_postgres::Error, context: impl Into<String>) -> StoreError {
    StoreError::Backend(sql_error_parts(e, context))
}

/// The [`BackendError`] of [`sql_error`].
fn sql_error_parts(e: tokio_postgres::Error, context: impl Into<String>) -> BackendError {
    let mut context = context.into();
    if let Some(code) = e.code() {
        context.push_str(" (SQLSTATE ");
        context.push_str(code.code());
        context.push(')');
    }
    BackendError::with_context(context, e)
}

/// Is `e` the server cancelling a statement (its `statement_timeout`)?
fn statement_timed_out(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::QUERY_CANCELED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_never_show_the_password() {
        let config: tokio_postgres::Config = "postgresql://alice:s3cret@db.example:6543/lab"
            .parse()
            .unwrap();
        let place = conn::describe_place(&config, Some("t1"));
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
    fn the_bounds_reach_every_connection() {
        let builder = PgStore::builder("postgresql://u@h/db?options=-c%20work_mem%3D4MB")
            .schema("t1")
            .statement_timeout(Duration::from_millis(1500))
            .keepalive(Duration::from_secs(9));
        let (config, _) = conn::config(&builder.url, &builder.settings).unwrap();
        assert_eq!(
            config.get_options(),
            Some("-c work_mem=4MB -c search_path=t1 -c statement_timeout=1500")
        );
        assert!(config.get_keepalives());
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(9));
        assert_eq!(
            config.get_keepalives_interval(),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            config.get_tcp_user_timeout(),
            Some(&Duration::from_secs(18))
        );
        assert_eq!(config.get_application_name(), Some("topostate"));
        let off = PgStore::builder("host=h")
            .statement_timeout(Duration::ZERO)
            .keepalive(Duration::ZERO);
        let (config, _) = conn::config(&off.url, &off.settings).unwrap();
        assert_eq!(config.get_options(), None);
        assert!(!config.get_keepalives());
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
            .timeout(Duration::from_secs(1))
            .connect()
            .unwrap_err();
        let message = e.to_string();
        assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
        assert!(message.contains("127.0.0.1:1"), "{message}");
        assert!(message.contains("'lab'"), "{message}");
    }
}
