//! Connections: the settings every connection gets, the pool, and [`PgSession`], a pooled
//! connection that is never handed out again unless it is known to be idle.

use std::boxed::Box;
use std::format;
use std::future::{Future, poll_fn};
use std::path::PathBuf;
use std::pin::pin;
use std::string::String;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;
use std::vec::Vec;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::Config;
use tokio_postgres::config::Host;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::ToSql;

use crate::store::StoreError;
use crate::store::sql::{FromRow, Param, Session, Stmt};

use super::tls::{self, PgSslMode, PgTls};
use super::{Fail, backend, schema};

type R<T> = Result<T, Fail>;

/// The bounds and settings a store was built with (see `PgStoreBuilder`).
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) pool_size: u32,
    pub(super) schema: Option<String>,
    /// New connection and pool checkout.
    pub(super) timeout: Duration,
    pub(super) test_on_checkout: bool,
    /// Client-side: one call's work, all its attempts.
    pub(super) call_timeout: Duration,
    /// Server-side, per statement; zero leaves the server's own setting.
    pub(super) statement_timeout: Duration,
    /// TCP keepalive idle time; zero turns keepalives off.
    pub(super) keepalive: Duration,
    /// How long a commit in doubt is asked about before it is reported unknown.
    pub(super) resolve_timeout: Duration,
    /// TLS, if set by the builder (it wins over the connection string).
    pub(super) ssl_mode: Option<PgSslMode>,
    pub(super) ssl_root_cert: Option<PathBuf>,
}

/// The driver's configuration for `url` with the store's settings applied on top, and the
/// TLS connector its `sslmode` and `sslrootcert` (or the builder's) ask for.
pub(super) fn config(url: &str, settings: &Settings) -> Result<(Config, PgTls), StoreError> {
    let (url, params) = tls::take_tls_params(url)?;
    let mut config: Config = url.parse().map_err(|e| StoreError::Invalid {
        field: "url",
        problem: format!("not a PostgreSQL connection URL or key=value string: {e}"),
    })?;
    let mode = settings.ssl_mode.or(params.mode).unwrap_or_default();
    let root_cert = settings
        .ssl_root_cert
        .clone()
        .or(params.root_cert.map(PathBuf::from));
    // The driver does the `SSLRequest` part: whether to ask, and whether "no" is fatal.
    config.ssl_mode(match mode {
        PgSslMode::Disable => SslMode::Disable,
        PgSslMode::Prefer => SslMode::Prefer,
        PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => SslMode::Require,
    });
    let tls = PgTls::new(mode, root_cert.as_deref())?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(settings.timeout);
    }
    // After any options of the URL, so these win.
    let mut options: Vec<String> = config.get_options().map(String::from).into_iter().collect();
    if let Some(schema) = &settings.schema {
        options.push(format!("-c search_path={schema}"));
    }
    if !settings.statement_timeout.is_zero() {
        options.push(format!(
            "-c statement_timeout={}",
            settings.statement_timeout.as_millis().max(1)
        ));
    }
    if !options.is_empty() {
        config.options(options.join(" "));
    }
    if config.get_application_name().is_none() {
        config.application_name("topostate");
    }
    if settings.keepalive.is_zero() {
        config.keepalives(false);
    } else {
        // A peer that stops acknowledging is given up after about twice the idle time:
        // probes every third of it, three unanswered ones end the connection.
        config
            .keepalives(true)
            .keepalives_idle(settings.keepalive)
            .keepalives_interval((settings.keepalive / 3).max(Duration::from_secs(1)))
            .keepalives_retries(3);
        if config.get_tcp_user_timeout().is_none() {
            // Data sent but never acknowledged (a partition) ends the connection too.
            config.tcp_user_timeout(settings.keepalive * 2);
        }
    }
    Ok((config, tls))
}

/// Host, port, database and schema, as messages show them (never the password).
pub(super) fn describe_place(config: &Config, schema: Option<&str>) -> String {
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

/// The pool: at most `pool_size` connections, opened when needed; each wait bounded by
/// `timeout`. A connection is checked (`is_closed`, or a ping with `test_on_checkout`)
/// before it is handed out again.
pub(super) fn pool(config: Config, tls: PgTls, settings: &Settings) -> Result<Pool, StoreError> {
    let recycling_method = if settings.test_on_checkout {
        RecyclingMethod::Verified
    } else {
        RecyclingMethod::Fast
    };
    let manager = Manager::from_config(config, tls, ManagerConfig { recycling_method });
    Pool::builder(manager)
        .max_size(usize::try_from(settings.pool_size).unwrap_or(usize::MAX))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(settings.timeout))
        .create_timeout(Some(settings.timeout))
        .recycle_timeout(Some(settings.timeout))
        .build()
        .map_err(|e| super::backend(format!("building the connection pool: {e}")))
}

/// A pooled connection, as the shared statements run on it.
///
/// Dropped while [`clean`](Self::release) is not set (a transaction open, a reply
/// outstanding, a future abandoned by a timeout or by its caller), the connection is taken
/// out of the pool and closed, never handed out again: the server rolls back whatever it
/// had open.
pub(crate) struct PgSession {
    conn: Option<Object>,
    clean: bool,
    /// Where a write's transaction stands, when the session runs one.
    opening: Opening,
    /// Statements to send ahead of the next one ([`Session::query_pair_before`]).
    ahead: Ahead,
}

/// Two statements sent ahead of the session's next one, in its round trip.
enum Ahead {
    None,
    /// Prepared, with their parameters; not sent yet.
    Waiting(Box<[(tokio_postgres::Statement, Vec<Owned>); 2]>),
    /// Sent with a later statement: their answers.
    Answered(PairAnswers),
}

/// The answers of two statements.
type PairAnswers = (
    Result<Option<tokio_postgres::Row>, tokio_postgres::Error>,
    Result<Option<tokio_postgres::Row>, tokio_postgres::Error>,
);

/// A [`Param`] that owns its value, for a statement sent after the call that named it.
#[derive(Debug)]
enum Owned {
    Int(i64),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
    OptBool(Option<bool>),
    OptReal(Option<f64>),
    Services(Vec<String>),
    OptServices(Option<Vec<String>>),
}

impl Owned {
    fn of(params: &[Param<'_>]) -> Vec<Self> {
        params
            .iter()
            .map(|p| match *p {
                Param::Int(v) => Self::Int(v),
                Param::Text(t) => Self::Text(t.into()),
                Param::OptText(t) => Self::OptText(t.map(Into::into)),
                Param::Bool(b) => Self::Bool(b),
                Param::OptBool(b) => Self::OptBool(b),
                Param::OptReal(r) => Self::OptReal(r),
                Param::Services(s) => Self::Services(s.to_vec()),
                Param::OptServices(s) => Self::OptServices(s.map(<[String]>::to_vec)),
            })
            .collect()
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Int(v) => v,
            Self::Text(t) => t,
            Self::OptText(t) => t,
            Self::Bool(b) => b,
            Self::OptBool(b) => b,
            Self::OptReal(r) => r,
            Self::Services(s) => s,
            Self::OptServices(s) => s,
        }
    }
}

/// How a write transaction is begun: not in a round trip of its own, but pipelined with
/// the write's first statement (or first pair, [`Session::query_pair_before`]). The server runs
/// what was sent in order: `BEGIN`, the stamp's lock and the transaction's id
/// ([`schema::LOCK`]), then the statement, which therefore runs inside the transaction
/// and after the stamp is locked, exactly as if each had been awaited in turn. A write of
/// one statement begins nothing: the statement is its own transaction.
pub(super) enum Opening {
    /// No write of this session's: a read, single statements, or the runner's own.
    None,
    /// A write whose `BEGIN` goes out with its first statement; the stamp is checked
    /// against this build's schema, `place` naming the database in the refusal.
    Deferred { place: Arc<str> },
    /// A write of one statement: its first statement is the whole write, run as a
    /// transaction of its own (no `BEGIN`, no `COMMIT`), its text checking the schema's
    /// stamp itself (`sealed!` in the shared planner). Only for writes whose first
    /// statement is their only write and whose every refusal leaves it unwritten: what
    /// runs after it runs on its own and must be a read (statements sent ahead, a pair,
    /// are refused). `seen` tells a timer that drops the write whether its statement went
    /// out.
    Sealed { place: Arc<str>, seen: Arc<Seen> },
    /// A write of one statement whose statement was sent: how the server ended it.
    Ended { trip: Trip, place: Arc<str> },
    /// Begun, the stamp checked: the transaction's id, for a commit in doubt.
    Begun { xid: i64 },
    /// Begun, and the stamp check refused the write: it rolls back with this error,
    /// whatever its statements answered.
    Refused(StoreError),
    /// `BEGIN` or the stamp's read failed: the statement sent with them failed too (the
    /// server runs nothing more of an aborted transaction), with that error.
    Failed,
}

/// How far a write of one statement got, for the timer that may drop it: whether its
/// statement went out.
#[derive(Debug, Default)]
pub(super) struct Seen {
    sent: AtomicBool,
}

impl Seen {
    /// Whether the statement went out.
    pub(super) fn sent(&self) -> bool {
        self.sent.load(Ordering::Acquire)
    }
}

/// How a write of one statement ended.
///
/// The statement's answer ends with the server's `ReadyForQuery`, which the driver awaits
/// before it hands the answer on, and which the server sends only once the statement's
/// transaction has ended (at the `Sync` after it): an answer without an error is a commit,
/// and an error raised at commit comes back as the statement's error.
pub(super) enum Trip {
    /// Answered: committed.
    Committed,
    /// The server refused the statement, with the connection still open, so nothing was
    /// written: `refused` if the refusal was the stamp's (what the stamp reads as), else
    /// the statement's own error is the one to report.
    RolledBack { refused: Option<StoreError> },
    /// The connection was lost (or the server ended the session) before the statement's
    /// answer was complete: the server may have run nothing, or committed with its answer
    /// lost on the way, so only what is stored can tell (see `Core::write_one_trip`).
    Unanswered,
}

/// The answers of a write's statements, for a write of one statement to find the first that
/// failed.
pub(super) trait Answers {
    /// The first failure among them, in the order they were sent.
    fn failure(&self) -> Option<&tokio_postgres::Error>;
}

impl<T> Answers for Result<T, tokio_postgres::Error> {
    fn failure(&self) -> Option<&tokio_postgres::Error> {
        self.as_ref().err()
    }
}

impl<A: Answers, B: Answers> Answers for (A, B) {
    fn failure(&self) -> Option<&tokio_postgres::Error> {
        self.0.failure().or_else(|| self.1.failure())
    }
}

impl PgSession {
    pub(super) fn new(conn: Object) -> Self {
        Self {
            conn: Some(conn),
            clean: false,
            opening: Opening::None,
            ahead: Ahead::None,
        }
    }

    /// Makes the session a write's: `BEGIN` goes out with its first statement.
    pub(super) fn defer_begin(&mut self, place: Arc<str>) {
        self.opening = Opening::Deferred { place };
    }

    /// Makes the session a write of one statement (see [`Opening::Sealed`]).
    pub(super) fn defer_sealed(&mut self, place: Arc<str>, seen: Arc<Seen>) {
        self.opening = Opening::Sealed { place, seen };
    }

    /// Where the write's transaction stands; the session is no write's any more.
    pub(super) fn take_opening(&mut self) -> Opening {
        core::mem::replace(&mut self.opening, Opening::None)
    }

    /// The connection and the opening, borrowed apart: a statement's future borrows the
    /// one while [`opened`] settles the other.
    fn parts(&mut self) -> (&Object, Sending<'_>) {
        match &self.conn {
            Some(conn) => (
                conn,
                Sending {
                    opening: &mut self.opening,
                    ahead: &mut self.ahead,
                },
            ),
            None => unreachable!("a session's connection is taken only when it is dropped"),
        }
    }

    /// The driver's client.
    pub(super) fn client(&self) -> &tokio_postgres::Client {
        // `conn` is `Some` until `drop`.
        match &self.conn {
            Some(conn) => conn,
            None => unreachable!("a session's connection is taken only when it is dropped"),
        }
    }

    /// Returns the connection to the pool: the caller knows it is idle (no transaction
    /// open, no reply outstanding).
    pub(super) fn release(mut self) {
        self.clean = true;
    }

    /// Closes the connection and takes it out of the pool.
    pub(super) fn discard(self) {
        drop(self);
    }

    /// The schema stamp read outside a transaction ([`schema::PEEK`]), checked against
    /// this build's version.
    pub(super) async fn peek(&self, place: &str) -> R<()> {
        match &self.conn {
            Some(conn) => peek_stamp(conn, place).await,
            None => unreachable!("a session's connection is taken only when it is dropped"),
        }
    }

    /// Runs `sql` (prepared once per connection) with `params`.
    async fn rows(&self, sql: &'static str, params: &[Param<'_>]) -> R<Vec<tokio_postgres::Row>> {
        let statement = self.prepared(sql).await?;
        Ok(self.client().query(&statement, &bind(params)).await?)
    }

    /// `sql` prepared on this connection, once: later calls take it from the cache.
    pub(super) async fn prepared(&self, sql: &'static str) -> R<tokio_postgres::Statement> {
        match &self.conn {
            Some(conn) => Ok(conn.prepare_cached(sql).await?),
            None => unreachable!("a session's connection is taken only when it is dropped"),
        }
    }
}

impl Drop for PgSession {
    fn drop(&mut self) {
        if !self.clean
            && let Some(conn) = self.conn.take()
        {
            // Out of the pool for good; dropping the client ends its connection task.
            drop(Object::take(conn));
        }
    }
}

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

impl Session for PgSession {
    type Fail = Fail;

    fn refusal(fail: Fail) -> Result<StoreError, Fail> {
        match fail {
            Fail::Store(refused) => Ok(refused),
            other => Err(other),
        }
    }

    async fn query_one<T: FromRow>(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<T> {
        let statement = self.prepared(sql.pg).await?;
        let params = bind(params);
        let (conn, sending) = self.parts();
        let row = sent(conn, sending, conn.query_one(&statement, &params)).await??;
        T::from_row(&row)
    }

    async fn query_opt<T: FromRow>(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<Option<T>> {
        let statement = self.prepared(sql.pg).await?;
        let params = bind(params);
        let (conn, sending) = self.parts();
        match sent(conn, sending, conn.query_opt(&statement, &params)).await?? {
            Some(row) => T::from_row(&row).map(Some),
            None => Ok(None),
        }
    }

    async fn query_pair_before<A: FromRow, B: FromRow, U>(
        &mut self,
        first: (&Stmt, &[Param<'_>]),
        second: (&Stmt, &[Param<'_>]),
        rest: impl AsyncFnOnce(&mut Self) -> R<U>,
    ) -> R<(Option<A>, Option<B>, R<U>)> {
        // A write of one statement runs each statement as its own transaction: a pair and
        // the statement after it would not be one write.
        if matches!(self.opening, Opening::Sealed { .. }) {
            return Err(backend("a write of one statement sent statements ahead of it").into());
        }
        let (a, b) = (
            self.prepared(first.0.pg).await?,
            self.prepared(second.0.pg).await?,
        );
        self.ahead = Ahead::Waiting(Box::new([
            (a, Owned::of(first.1)),
            (b, Owned::of(second.1)),
        ]));
        let out = rest(self).await;
        let (row_a, row_b) = match core::mem::replace(&mut self.ahead, Ahead::None) {
            Ahead::Answered(answers) => answers,
            // `rest` sent nothing: the pair goes alone.
            Ahead::Waiting(pair) => {
                let (conn, sending) = self.parts();
                opened(conn, sending.opening, Box::pin(ask_pair(conn, &pair))).await?
            }
            // Sending them failed (the write's `BEGIN` or its stamp), and `rest`'s
            // statement with them: that failure is the call's.
            Ahead::None => {
                return Err(match out {
                    Err(fail) => fail,
                    Ok(_) => backend("statements sent ahead failed, the one after them not").into(),
                });
            }
        };
        // The first's error first: after it, the server ran nothing more of the
        // transaction, and the second only says so.
        let (row_a, row_b) = (row_a?, row_b?);
        Ok((
            row_a.as_ref().map(A::from_row).transpose()?,
            row_b.as_ref().map(B::from_row).transpose()?,
            out,
        ))
    }

    async fn query_all<T: FromRow>(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<Vec<T>> {
        let statement = self.prepared(sql.pg).await?;
        let params = bind(params);
        let (conn, sending) = self.parts();
        sent(conn, sending, conn.query(&statement, &params))
            .await??
            .iter()
            .map(T::from_row)
            .collect()
    }

    async fn insert(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<i64> {
        use crate::store::sql::Columns;
        let statement = self.prepared(sql.pg).await?;
        let params = bind(params);
        let (conn, sending) = self.parts();
        let row = sent(conn, sending, conn.query_one(&statement, &params)).await??;
        row.raw_int(0)
    }

    async fn insert_new(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<Option<i64>> {
        use crate::store::sql::Columns;
        let statement = self.prepared(sql.pg).await?;
        let params = bind(params);
        let (conn, sending) = self.parts();
        match sent(conn, sending, conn.query_opt(&statement, &params)).await?? {
            Some(row) => row.raw_int(0).map(Some),
            None => Ok(None),
        }
    }

    async fn execute(&mut self, sql: &Stmt, params: &[Param<'_>]) -> R<u64> {
        let statement = self.prepared(sql.pg).await?;
        let params = bind(params);
        let (conn, sending) = self.parts();
        Ok(sent(conn, sending, conn.execute(&statement, &params)).await??)
    }
}

/// What goes out before a session's next statement: its write's `BEGIN`, statements sent
/// ahead.
struct Sending<'s> {
    opening: &'s mut Opening,
    ahead: &'s mut Ahead,
}

/// Awaits `statements` as [`opened`] does, sending the statements waiting to go ahead of
/// them (if any) first, in the same round trip; their answers are kept for
/// [`Session::query_pair_before`].
async fn sent<T: Answers>(
    conn: &Object,
    sending: Sending<'_>,
    statements: impl Future<Output = T>,
) -> R<T> {
    if !matches!(sending.ahead, Ahead::Waiting(_)) {
        return opened(conn, sending.opening, statements).await;
    }
    let Ahead::Waiting(pair) = core::mem::replace(sending.ahead, Ahead::None) else {
        unreachable!("matched just above")
    };
    // Boxed: only one statement of a write comes this way, and inline it would swell
    // every statement's future.
    let (answers, out) = Box::pin(after_pair(conn, sending.opening, &pair, statements)).await?;
    *sending.ahead = Ahead::Answered(answers);
    Ok(out)
}

/// Awaits `statements` as [`opened`] does, with `pair` sent ahead of them.
async fn after_pair<T: Answers>(
    conn: &Object,
    opening: &mut Opening,
    pair: &[(tokio_postgres::Statement, Vec<Owned>); 2],
    statements: impl Future<Output = T>,
) -> R<(PairAnswers, T)> {
    opened(conn, opening, both(ask_pair(conn, pair), statements)).await
}

/// The driver's parameter list for owned `params`.
fn bind_owned(params: &[Owned]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(Owned::as_sql).collect()
}

/// The answers of `pair`, both sent when this is first polled (the first first), before
/// either answer is awaited.
async fn ask_pair(
    conn: &Object,
    pair: &[(tokio_postgres::Statement, Vec<Owned>); 2],
) -> PairAnswers {
    let [(a, params_a), (b, params_b)] = pair;
    let (params_a, params_b) = (bind_owned(params_a), bind_owned(params_b));
    both(conn.query_opt(a, &params_a), conn.query_opt(b, &params_b)).await
}

/// A write's `BEGIN` (read committed: writes lock what they check).
pub(super) const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// Awaits `statements` (a statement's future, or [`both`] of two, not yet polled), first
/// sending the write's `BEGIN` and stamp lock ahead of them in the same round trip if
/// `opening` is [`Opening::Deferred`]; the stamp is checked before their answers are
/// handed on. Outside a deferred write, `statements` is simply awaited.
async fn opened<T: Answers>(
    conn: &Object,
    opening: &mut Opening,
    statements: impl Future<Output = T>,
) -> R<T> {
    let place = match opening {
        Opening::None | Opening::Begun { .. } => return Ok(statements.await),
        // After a write of one statement, statements run on their own (reads, see `Sealed`),
        // each with the stamp read after it in the same round trip: a version only grows,
        // so one unchanged then was unchanged while the read ran.
        Opening::Ended { place, .. } => {
            let place = Arc::clone(place);
            return Box::pin(peeked(conn, &place, statements)).await;
        }
        Opening::Sealed { place, seen } => {
            let (place, seen) = (Arc::clone(place), Arc::clone(seen));
            // Boxed, as the pipeline below is: inline it would swell every statement's future.
            let (trip, out) = Box::pin(one_trip(conn, &place, &seen, statements)).await?;
            *opening = Opening::Ended { trip, place };
            return Ok(out);
        }
        Opening::Deferred { place } => Arc::clone(place),
        // Nothing more runs in a transaction the runner is about to roll back.
        Opening::Refused(_) | Opening::Failed => {
            return Err(backend("a statement after the write's refused BEGIN").into());
        }
    };
    // Prepared once per connection; nothing is sent for it after the first time.
    let lock = conn.prepare_cached(schema::LOCK).await?;
    // Boxed: only a write's first statement comes this way, and inline the pipeline
    // would swell every statement's future (and every planner future holding one).
    let ((begun, locked), out) = Box::pin(both(
        both(conn.simple_query(BEGIN_WRITE), conn.query_opt(&lock, &[])),
        statements,
    ))
    .await;
    let xid = begun.and(locked).map_err(Fail::Sql).and_then(|row| {
        let (stored, xid): (Option<String>, Option<i64>) = match row {
            Some(row) => (row.try_get(0)?, Some(row.try_get(1)?)),
            None => (None, None),
        };
        // The id comes with the stamp's row, so a stamp that passes the check brings it.
        Ok(
            schema::check_unchanged(stored.as_deref(), &place).and_then(|()| {
                xid.ok_or_else(|| backend("BEGIN: the server did not return the transaction's id"))
            }),
        )
    });
    match xid {
        Ok(Ok(xid)) => {
            *opening = Opening::Begun { xid };
            Ok(out)
        }
        Ok(Err(refused)) => {
            *opening = Opening::Refused(refused);
            Err(backend("the write's schema check refused it").into())
        }
        Err(fail) => {
            *opening = Opening::Failed;
            Err(fail)
        }
    }
}

/// Sends a write's one statement (its text checks the stamp) and awaits its answer; how
/// the server ended the statement's transaction, and the answer.
async fn one_trip<T: Answers>(
    conn: &Object,
    place: &str,
    seen: &Seen,
    statements: impl Future<Output = T>,
) -> R<(Trip, T)> {
    // A connection already closed sends nothing: a plain lost connection, run again. (Its
    // error comes from a request it refuses at once.)
    if conn.is_closed()
        && let Err(e) = conn.batch_execute("").await
    {
        return Err(Fail::Lost(e));
    }
    seen.sent.store(true, Ordering::Release);
    let out = statements.await;
    let trip = match out.failure() {
        None => Trip::Committed,
        Some(e) if refused_by_server(e) && schema::seal_broken(e) => {
            let refused = match peek_stamp(conn, place).await {
                Err(Fail::Store(refused)) => refused,
                Err(Fail::Sql(e) | Fail::Lost(e)) => {
                    super::sql_error(e, "reading the schema stamp")
                }
                Ok(()) => backend("the schema seal refused a write whose stamp reads unchanged"),
            };
            Trip::RolledBack {
                refused: Some(refused),
            }
        }
        // The statement's own error goes back in `out`; the trip only judges it.
        Some(e) if refused_by_server(e) => Trip::RolledBack { refused: None },
        Some(_) => Trip::Unanswered,
    };
    Ok((trip, out))
}

/// Awaits `statements` with the schema stamp read after them (pipelined), refusing their
/// answers if the stamp is no longer this build's.
async fn peeked<T>(conn: &Object, place: &str, statements: impl Future<Output = T>) -> R<T> {
    let peek = conn.prepare_cached(schema::PEEK).await?;
    let (out, stamp) = both(statements, conn.query_opt(&peek, &[])).await;
    stamp_unchanged(stamp?.as_ref(), place)?;
    Ok(out)
}

/// Checks the stamp [`schema::PEEK`] answered (its row, if any) against this build's
/// version: another version is the refusal.
pub(super) fn stamp_unchanged(row: Option<&tokio_postgres::Row>, place: &str) -> R<()> {
    let stored: Option<String> = row.map(|row| row.try_get(0)).transpose()?;
    Ok(schema::check_unchanged(stored.as_deref(), place)?)
}

/// Did the server answer with an error that leaves the connection open? Then it ran
/// nothing more of the transaction, and rolled it back (a pipelined `COMMIT` too).
fn refused_by_server(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some() && !super::run::lost(e)
}

/// The stamp read outside a transaction, checked against this build's version.
async fn peek_stamp(conn: &Object, place: &str) -> R<()> {
    let peek = conn.prepare_cached(schema::PEEK).await?;
    stamp_unchanged(conn.query_opt(&peek, &[]).await?.as_ref(), place)
}

/// Awaits `a` and `b` together, polling `a` first: the requests the driver sends when a
/// query's future is first polled go out in that order, before either reply is awaited
/// (tokio-postgres pipelines them on the one connection).
pub(super) async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut out_a, mut out_b) = (None, None);
    poll_fn(|cx| {
        if out_a.is_none()
            && let Poll::Ready(out) = a.as_mut().poll(cx)
        {
            out_a = Some(out);
        }
        if out_b.is_none()
            && let Poll::Ready(out) = b.as_mut().poll(cx)
        {
            out_b = Some(out);
        }
        match (out_a.take(), out_b.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (out_a, out_b) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

/// The runtime-specific statements of the store itself (not the shared planner's).
impl PgSession {
    /// Runs `sql` and returns its rows, for the store's own statements.
    pub(super) async fn query(
        &self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> R<Vec<tokio_postgres::Row>> {
        self.rows(sql, params).await
    }
}
