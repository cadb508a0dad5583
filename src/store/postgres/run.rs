//! How a call runs: a pooled connection, one transaction, retries of what is known not to
//! have been applied, the resolution of commits in doubt, and the bounds on all of it.

use std::format;
use std::future::Future;
use std::string::String;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use std::vec::Vec;

use deadpool_postgres::{Pool, PoolError, TimeoutType};
use tokio::time::{Instant, sleep, timeout_at};
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::error::SqlState;

use crate::TopologyId;
use crate::store::sql::Settled;
use crate::store::trace::{self, Outcome};
use crate::store::{BackendError, StoreError};

use super::conn::{Opening, PgSession, Seen, Settings, Trip, both};
use super::schema;
use super::{Fail, backend, sql_error, sql_error_parts, statement_timed_out, tls};

/// How many times a transaction the server aborted as a deadlock victim, a serialization
/// failure or a lock timeout is run in all before the error is reported. (A call whose
/// connection was lost before it could have changed anything is run again until its
/// `call_timeout`.)
const MAX_ATTEMPTS: u32 = 8;

/// What the store did about lost connections so far: counters since it was connected,
/// shared by its clones. Cheap to read; for logs and metrics.
///
/// ```
/// use topostate::store::PgStoreStats;
///
/// let stats = PgStoreStats::default();
/// assert_eq!(stats.commits_in_doubt, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgStoreStats {
    /// Attempts run again: the server aborted a transaction as transient, or the
    /// connection was lost before the call could have changed anything.
    pub reruns: u64,
    /// Writes whose connection was lost after `COMMIT` was sent (or whose bound passed
    /// then): the store asked the server how each ended.
    pub commits_in_doubt: u64,
    /// Of those, the ones the server had committed: the write's own result was returned.
    pub resolved_committed: u64,
    /// Of those, the ones the server had aborted: the write was run again.
    pub resolved_aborted: u64,
    /// Of those, the ones whose outcome could not be learned:
    /// [`StoreError::OutcomeUnknown`] was returned.
    pub outcome_unknown: u64,
}

#[derive(Default)]
struct Counters {
    reruns: AtomicU64,
    commits_in_doubt: AtomicU64,
    resolved_committed: AtomicU64,
    resolved_aborted: AtomicU64,
    outcome_unknown: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The state a store's handles share.
pub(super) struct Core {
    pub(super) pool: Pool,
    /// Where the pool connects, and how, for the connections outside it (a waiter's
    /// listener).
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: super::PgTls,
    pub(super) place: Arc<str>,
    pub(super) settings: Settings,
    counters: Counters,
}

/// An operation as its span shows it: its name, and the topology and expected version it
/// names, if any.
#[derive(Clone, Copy)]
pub(super) struct Call {
    name: &'static str,
    topology: Option<u64>,
    expected: Option<u64>,
}

/// The operation `name`.
pub(super) fn call(name: &'static str) -> Call {
    Call {
        name,
        topology: None,
        expected: None,
    }
}

impl Call {
    /// On topology `id`.
    pub(super) fn on(self, id: TopologyId) -> Self {
        Self {
            topology: Some(id.get()),
            ..self
        }
    }

    /// Expecting the topology at `version`.
    pub(super) fn expecting(self, version: Option<u64>) -> Self {
        Self {
            expected: version,
            ..self
        }
    }

    fn op(self) -> trace::Op {
        trace::Op::start("postgres", self.name, self.topology, self.expected)
    }
}

/// How a write's `COMMIT` ended, when it did not plainly succeed or fail.
enum Commit<T> {
    /// The server committed: the transaction's result.
    Done(T),
    /// Nothing was applied (a refusal, a driver error, or a connection lost before
    /// `COMMIT` was sent).
    Failed(Fail),
    /// The connection was lost after `COMMIT` was sent: transaction `xid` may have
    /// committed, with this result.
    InDoubt { xid: i64, value: T, cause: Fail },
    /// A write of one statement whose connection was lost before its answer was
    /// complete: only what is stored can tell whether it committed.
    Unanswered { cause: Fail },
}

/// How far a write attempt got, kept outside its future so that a timer that drops the
/// future still knows whether `COMMIT` was sent.
struct Progress<T> {
    xid: Option<i64>,
    /// The transaction's result, set when `COMMIT` is about to be sent.
    committing: Option<T>,
    /// A write of one statement: whether its statement went out.
    trip: Option<Arc<Seen>>,
}

/// A read of several statements: one snapshot, never a serialization failure.
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

impl Core {
    pub(super) fn new(
        pool: Pool,
        config: tokio_postgres::Config,
        tls: super::PgTls,
        place: Arc<str>,
        settings: Settings,
    ) -> Self {
        Self {
            pool,
            config,
            tls,
            place,
            settings,
            counters: Counters::default(),
        }
    }

    pub(super) fn stats(&self) -> PgStoreStats {
        let c = &self.counters;
        PgStoreStats {
            reruns: c.reruns.load(Ordering::Relaxed),
            commits_in_doubt: c.commits_in_doubt.load(Ordering::Relaxed),
            resolved_committed: c.resolved_committed.load(Ordering::Relaxed),
            resolved_aborted: c.resolved_aborted.load(Ordering::Relaxed),
            outcome_unknown: c.outcome_unknown.load(Ordering::Relaxed),
        }
    }

    /// A pooled connection, waiting at most the store's `timeout` (and never past
    /// `deadline`). A server that refuses connections for now (restarting, starting up) is
    /// tried again with a short backoff within that bound.
    async fn checkout(&self, op: &'static str, deadline: Instant) -> Result<PgSession, StoreError> {
        let started = Instant::now();
        let until = deadline.min(started + self.settings.timeout);
        let mut tries = 0;
        loop {
            let got = match timeout_at(until, self.pool.get()).await {
                Ok(got) => got,
                Err(_) => Err(PoolError::Timeout(TimeoutType::Wait)),
            };
            match got {
                Ok(conn) => return Ok(PgSession::new(conn)),
                Err(PoolError::Backend(e)) if unreachable_for_now(&e) => {
                    tries += 1;
                    let pause = backoff_delay(tries);
                    if Instant::now() + pause >= until {
                        return Err(sql_error(
                            e,
                            format!(
                                "{op}: no connection to {} within {:.1} s",
                                self.place,
                                (until - started).as_secs_f32()
                            ),
                        ));
                    }
                    sleep(pause).await;
                }
                Err(PoolError::Backend(e)) if tls::failed(&e) => {
                    return Err(StoreError::Tls {
                        operation: op,
                        place: String::from(&*self.place),
                        sslmode: self.settings.ssl_mode.unwrap_or_default().as_str(),
                        cause: BackendError::new(e),
                    });
                }
                Err(PoolError::Backend(e)) => {
                    return Err(sql_error(e, format!("{op}: connecting to {}", self.place)));
                }
                Err(PoolError::Timeout(kind)) => {
                    return Err(StoreError::Timeout {
                        operation: op,
                        waiting_for: match kind {
                            TimeoutType::Create => "a new connection to the server",
                            TimeoutType::Wait | TimeoutType::Recycle => "a free pooled connection",
                        },
                        after: Instant::now() - started,
                        cause: None,
                    });
                }
                Err(other) => {
                    return Err(backend(format!(
                        "{op}: no connection to {}: {other}",
                        self.place
                    )));
                }
            }
        }
    }

    /// The first connection of a new store.
    pub(super) async fn checkout_for_connect(
        &self,
        deadline: Instant,
    ) -> Result<PgSession, StoreError> {
        self.checkout("connect", deadline).await
    }

    /// A [`StoreError::Timeout`] for a call whose own bound passed.
    fn call_timed_out(&self, op: &'static str) -> StoreError {
        self.call_timed_out_after(op, None)
    }

    /// A [`StoreError::Timeout`] for a call whose bound passed while it was running again
    /// after `last` failed.
    fn call_timed_out_after(&self, op: &'static str, last: Option<BackendError>) -> StoreError {
        StoreError::Timeout {
            operation: op,
            waiting_for: "the server's answers",
            after: self.settings.call_timeout,
            cause: last,
        }
    }

    /// Runs `f` in one write transaction: committed only if `f` succeeds; run again when
    /// the server aborted it as transient or the connection was lost before `COMMIT` was
    /// sent; a commit in doubt resolved by asking the server (see the module docs).
    ///
    /// `f` gets the session by value and hands it back with its result, so that its future
    /// borrows nothing of the runner's.
    pub(super) async fn write<T: Outcome, F, Fut>(&self, call: Call, f: F) -> Result<T, StoreError>
    where
        F: FnMut(PgSession) -> Fut,
        Fut: Future<Output = (PgSession, Result<T, Fail>)>,
    {
        call.op()
            .run_async(self.write_attempts(call.name, None::<NoSettle<T>>, f))
            .await
    }

    /// [`write`](Self::write) as one statement, its own transaction (see
    /// [`Opening::Sealed`]): `f`'s first statement, whose text checks the schema's stamp.
    /// Only for a write whose first statement is its only write, every refusal of which
    /// writes nothing, and whose later statements are reads: they run after it, on their
    /// own.
    ///
    /// If the connection was lost (or the server ended the session) before the
    /// statement's answer was complete, `settle` reads, on another connection, what is
    /// stored: the write's result if it committed, a run again if it cannot have, else
    /// [`StoreError::OutcomeUnknown`].
    pub(super) async fn write_one_trip<T: Outcome, F, Fut, G, GFut>(
        &self,
        call: Call,
        f: F,
        settle: G,
    ) -> Result<T, StoreError>
    where
        F: FnMut(PgSession) -> Fut,
        Fut: Future<Output = (PgSession, Result<T, Fail>)>,
        G: FnMut(PgSession) -> GFut,
        GFut: Future<Output = (PgSession, Result<Settled<T>, Fail>)>,
    {
        call.op()
            .run_async(self.write_attempts(call.name, Some(settle), f))
            .await
    }

    /// [`write`](Self::write), without its span.
    async fn write_attempts<T, F, Fut, G, GFut>(
        &self,
        op: &'static str,
        mut settle: Option<G>,
        mut f: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut(PgSession) -> Fut,
        Fut: Future<Output = (PgSession, Result<T, Fail>)>,
        G: FnMut(PgSession) -> GFut,
        GFut: Future<Output = (PgSession, Result<Settled<T>, Fail>)>,
    {
        let one_trip = settle.is_some();
        let deadline = Instant::now() + self.settings.call_timeout;
        let mut tries = 1;
        // What the attempt before this one met, for a timeout to say.
        let mut last: Option<BackendError> = None;
        loop {
            let session = match self.checkout(op, deadline).await {
                Ok(session) => session,
                // The call's own bound cut the wait short: its timeout, with what the
                // attempt before met.
                Err(e) if e.is_timeout() && last.is_some() && Instant::now() >= deadline => {
                    return Err(self.call_timed_out_after(op, last));
                }
                Err(e) => return Err(e),
            };
            let mut progress = Progress {
                xid: None,
                committing: None,
                trip: one_trip.then(Arc::default),
            };
            // Boxed: the attempt holds the planner's future, as large as its largest
            // statement's, and every call's future would hold it inline.
            let outcome = timeout_at(
                deadline,
                Box::pin(attempt(session, &mut f, &mut progress, &self.place)),
            )
            .await;
            let fail = match outcome {
                Ok(Commit::Done(value)) => return Ok(value),
                Ok(Commit::Failed(fail)) => fail,
                Ok(Commit::Unanswered { cause }) => {
                    let Some(settle) = settle.as_mut() else {
                        return Err(cause.into_store(op));
                    };
                    // Boxed: a rare path, and its reads would swell every write's future.
                    match Box::pin(self.settle(op, settle, cause)).await {
                        Ok(Some(value)) => return Ok(value),
                        Err(e) => return Err(e),
                        // Nothing was applied: run again, within the call's bound.
                        Ok(None) => {
                            if Instant::now() >= deadline {
                                return Err(self.call_timed_out_after(op, last));
                            }
                            tries += 1;
                            continue;
                        }
                    }
                }
                Ok(Commit::InDoubt { xid, value, cause }) => {
                    match self.resolve(op, xid, value, cause).await {
                        Resolved::Committed(value) => return Ok(value),
                        Resolved::Unknown(e) => return Err(e),
                        // Nothing was applied: run again, within the call's bound.
                        Resolved::Aborted => {
                            if Instant::now() >= deadline {
                                return Err(self.call_timed_out_after(op, last));
                            }
                            tries += 1;
                            continue;
                        }
                    }
                }
                // The bound passed; the attempt's future (and its connection) is dropped.
                Err(_) => {
                    let sent = progress.trip.as_ref().map(|seen| seen.sent());
                    let (xid, value) = match (sent, progress.xid, progress.committing) {
                        (None, Some(xid), Some(value)) => (xid, value),
                        // A write of one statement commits as it runs.
                        (Some(true), _, _) => {
                            return Err(answer_lost(
                                op,
                                String::from(
                                    "its statement (its own transaction) went out, and the \
                                     call's time ran out before the server answered it",
                                ),
                                BackendError::new(self.call_timed_out(op)),
                            ));
                        }
                        _ => return Err(self.call_timed_out_after(op, last)),
                    };
                    let cause = Fail::Store(self.call_timed_out(op));
                    return match self.resolve(op, xid, value, cause).await {
                        Resolved::Committed(value) => Ok(value),
                        Resolved::Unknown(e) => Err(e),
                        // Aborted, and no time left to run it again.
                        Resolved::Aborted => Err(self.call_timed_out(op)),
                    };
                }
            };
            match self.rerun(op, fail, tries, deadline).await {
                Ok(cause) => {
                    last = Some(cause);
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs `f` in one read-only snapshot; run again on any lost connection.
    pub(super) async fn read<T: Outcome, F, Fut>(&self, call: Call, f: F) -> Result<T, StoreError>
    where
        F: FnMut(PgSession) -> Fut,
        Fut: Future<Output = (PgSession, Result<T, Fail>)>,
    {
        call.op()
            .run_async(self.repeatable(call.name, true, f))
            .await
    }

    /// Runs `f`'s statements on their own (each its own transaction): for reads of one
    /// statement and for writes that are the same run twice as once (one row's runtime
    /// field set to a value). Run again on any lost connection.
    pub(super) async fn single<T: Outcome, F, Fut>(&self, call: Call, f: F) -> Result<T, StoreError>
    where
        F: FnMut(PgSession) -> Fut,
        Fut: Future<Output = (PgSession, Result<T, Fail>)>,
    {
        call.op()
            .run_async(self.repeatable(call.name, false, f))
            .await
    }

    /// A call safe to repeat, in a snapshot or as single statements.
    async fn repeatable<T, F, Fut>(
        &self,
        op: &'static str,
        snapshot: bool,
        mut f: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut(PgSession) -> Fut,
        Fut: Future<Output = (PgSession, Result<T, Fail>)>,
    {
        let deadline = Instant::now() + self.settings.call_timeout;
        let mut tries = 1;
        // What the attempt before this one met, for a timeout to say.
        let mut last: Option<BackendError> = None;
        loop {
            let session = match self.checkout(op, deadline).await {
                Ok(session) => session,
                // The call's own bound cut the wait short: its timeout, with what the
                // attempt before met.
                Err(e) if e.is_timeout() && last.is_some() && Instant::now() >= deadline => {
                    return Err(self.call_timed_out_after(op, last));
                }
                Err(e) => return Err(e),
            };
            let run = async {
                if snapshot {
                    let (_, stored) = checked(&session, BEGIN_SNAPSHOT, schema::PEEK).await?;
                    if let Err(refused) = schema::check_unchanged(stored.as_deref(), &self.place) {
                        // Nothing was read; the connection goes back to the pool if it
                        // rolls back.
                        if session.client().batch_execute("ROLLBACK").await.is_ok() {
                            session.release();
                        }
                        return Err(Fail::Store(refused));
                    }
                }
                let (session, out) = f(session).await;
                let value = out?;
                if snapshot {
                    session.client().batch_execute("COMMIT").await?;
                } else {
                    // Checked after the statement: a schema version only grows, so one
                    // unchanged now was unchanged while the statement ran.
                    session.peek(&self.place).await?;
                }
                session.release();
                Ok(value)
            };
            // On an error the session was dropped unreleased: closed, out of the pool.
            let fail = match timeout_at(deadline, run).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(fail)) => fail,
                Err(_) => return Err(self.call_timed_out_after(op, last)),
            };
            // Safe to repeat: any lost connection is run again.
            let fail = lost_said(fail);
            match self.rerun(op, fail, tries, deadline).await {
                Ok(cause) => {
                    last = Some(cause);
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `Ok` (with the failure, as a timeout's cause) if the failed attempt `tries` is to be
    /// run again (after its backoff), else the error to report.
    async fn rerun(
        &self,
        op: &'static str,
        fail: Fail,
        tries: u32,
        deadline: Instant,
    ) -> Result<BackendError, StoreError> {
        if let Fail::Sql(e) = &fail
            && statement_timed_out(e)
        {
            let Fail::Sql(e) = fail else {
                unreachable!("matched just above")
            };
            return Err(StoreError::Timeout {
                operation: op,
                waiting_for: "a statement (the server's statement_timeout)",
                after: self.settings.statement_timeout,
                cause: Some(BackendError::with_context(
                    "the server cancelled the statement (SQLSTATE 57014)",
                    e,
                )),
            });
        }
        let what = match &fail {
            Fail::Lost(_) => "the connection was lost",
            Fail::Sql(e) => match transient(e) {
                Some(what) => what,
                None => return Err(fail.into_store(op)),
            },
            Fail::Store(_) => return Err(fail.into_store(op)),
        };
        // A lost connection is run again until the call's bound: nothing was applied, and
        // a restart or a storm of session kills may take a while to pass.
        if tries >= MAX_ATTEMPTS && !matches!(fail, Fail::Lost(_)) {
            return Err(match fail {
                Fail::Sql(e) | Fail::Lost(e) => sql_error(
                    e,
                    format!(
                        "{op}: gave up after {tries} attempts ({what}, every time; none was \
                         applied)"
                    ),
                ),
                Fail::Store(e) => e,
            });
        }
        let sqlstate = match &fail {
            Fail::Sql(e) | Fail::Lost(e) => e.code().map(|c| String::from(c.code())),
            Fail::Store(_) => None,
        };
        let cause = match fail {
            Fail::Sql(e) | Fail::Lost(e) => {
                sql_error_parts(e, format!("attempt {tries} failed: {what}"))
            }
            Fail::Store(e) => BackendError::new(e),
        };
        let pause = backoff_delay(tries);
        if Instant::now() + pause >= deadline {
            return Err(self.call_timed_out_after(op, Some(cause)));
        }
        trace::rerun(op, tries, what, sqlstate.as_deref());
        bump(&self.counters.reruns);
        sleep(pause).await;
        Ok(cause)
    }

    /// Runs `ask` on a pooled connection (which it releases if it is left idle) until it
    /// answers, backing off between tries; `None` if `until` passed first.
    async fn ask_until<A, F, Fut>(&self, op: &'static str, until: Instant, mut ask: F) -> Option<A>
    where
        F: FnMut(PgSession) -> Fut,
        Fut: Future<Output = Option<A>>,
    {
        let mut tries = 0;
        loop {
            let asked = timeout_at(until, async {
                let session = self.checkout(op, until).await.ok()?;
                ask(session).await
            })
            .await;
            if let Ok(Some(answer)) = asked {
                return Some(answer);
            }
            tries += 1;
            let pause = backoff_delay(tries);
            if Instant::now() + pause >= until {
                return None;
            }
            sleep(pause).await;
        }
    }

    /// Learns from what is stored whether a write of one statement whose every answer was lost
    /// committed: its result if so, `None` if it cannot have, else
    /// [`StoreError::OutcomeUnknown`]. Asks on another connection until `settle` says or
    /// `resolve_timeout` passes.
    async fn settle<T, G, GFut>(
        &self,
        op: &'static str,
        settle: &mut G,
        cause: Fail,
    ) -> Result<Option<T>, StoreError>
    where
        G: FnMut(PgSession) -> GFut,
        GFut: Future<Output = (PgSession, Result<Settled<T>, Fail>)>,
    {
        bump(&self.counters.commits_in_doubt);
        let until = Instant::now() + self.settings.resolve_timeout;
        let settled = self
            .ask_until(op, until, |session| {
                let asked = settle(session);
                async move {
                    let (session, settled) = asked.await;
                    let settled = settled.ok()?;
                    session.release();
                    Some(settled)
                }
            })
            .await;
        let why = match settled {
            Some(Settled::Committed(value)) => {
                bump(&self.counters.resolved_committed);
                return Ok(Some(value));
            }
            Some(Settled::NotCommitted) => {
                bump(&self.counters.resolved_aborted);
                return Ok(None);
            }
            Some(Settled::Unknown(why)) => String::from(why),
            None => format!(
                "what is stored could not be read within {:.1} s",
                self.settings.resolve_timeout.as_secs_f32()
            ),
        };
        bump(&self.counters.outcome_unknown);
        Err(answer_lost(
            op,
            format!("the connection was lost before the server named the transaction, and {why}"),
            fail_cause(cause),
        ))
    }

    /// Learns how transaction `xid` ended, asking the server on another connection until
    /// it says or `resolve_timeout` passes.
    ///
    /// `value` is the write's result, returned if it committed.
    async fn resolve<T>(&self, op: &'static str, xid: i64, value: T, cause: Fail) -> Resolved<T> {
        bump(&self.counters.commits_in_doubt);
        trace::commit_in_doubt(op, xid);
        let until = Instant::now() + self.settings.resolve_timeout;
        // The server's word on the transaction: `None` ("in progress", its backend not
        // ended yet; or not answered) asks again.
        let status = self
            .ask_until(op, until, |session| async move {
                let rows = session
                    .query(
                        "SELECT txid_status($1)",
                        &[crate::store::sql::Param::Int(xid)],
                    )
                    .await
                    .ok()?;
                session.release();
                let status: Option<String> = match rows.first() {
                    Some(row) => row.try_get(0).ok()?,
                    None => None,
                };
                match status.as_deref() {
                    Some("in progress") => None,
                    _ => Some(status),
                }
            })
            .await;
        let why = match status.as_ref().map(|s| s.as_deref()) {
            Some(Some("committed")) => {
                bump(&self.counters.resolved_committed);
                trace::commit_resolved(op, xid, "committed");
                return Resolved::Committed(value);
            }
            Some(Some("aborted")) => {
                bump(&self.counters.resolved_aborted);
                trace::commit_resolved(op, xid, "aborted");
                return Resolved::Aborted;
            }
            Some(Some(other)) => format!("the server says transaction {xid} is {other}"),
            Some(None) => format!("the server no longer knows transaction {xid}"),
            None => format!(
                "the server did not say how transaction {xid} ended within {:.1} s",
                self.settings.resolve_timeout.as_secs_f32()
            ),
        };
        bump(&self.counters.outcome_unknown);
        trace::commit_resolved(op, xid, "unknown");
        Resolved::Unknown(answer_lost(op, why, fail_cause(cause)))
    }
}

/// The settling of a write that has none (it is never asked: only a write of one statement can
/// be unanswered).
type NoSettle<T> = fn(PgSession) -> std::future::Ready<(PgSession, Result<Settled<T>, Fail>)>;

/// A write whose outcome or result cannot be told.
fn answer_lost(op: &'static str, why: String, cause: BackendError) -> StoreError {
    StoreError::OutcomeUnknown {
        operation: op,
        why,
        cause,
    }
}

/// `fail` as the cause of a commit in doubt.
fn fail_cause(fail: Fail) -> BackendError {
    match fail {
        Fail::Store(e) => BackendError::new(e),
        Fail::Sql(e) | Fail::Lost(e) => BackendError::new(e),
    }
}

/// How a commit in doubt ended.
enum Resolved<T> {
    Committed(T),
    Aborted,
    Unknown(StoreError),
}

/// One write attempt on `session`: `f`, whose first statement goes out pipelined behind
/// `BEGIN` and the stamp's lock (the transaction's id read with it; see [`Opening`]), then
/// `COMMIT`. Whatever fails before `COMMIT` is sent rolls back (the connection is closed if
/// it cannot be rolled back); a lost connection after it is a commit in doubt.
async fn attempt<T, F, Fut>(
    mut session: PgSession,
    f: &mut F,
    progress: &mut Progress<T>,
    place: &Arc<str>,
) -> Commit<T>
where
    F: FnMut(PgSession) -> Fut,
    Fut: Future<Output = (PgSession, Result<T, Fail>)>,
{
    match &progress.trip {
        Some(seen) => session.defer_sealed(Arc::clone(place), Arc::clone(seen)),
        None => session.defer_begin(Arc::clone(place)),
    }
    let (mut session, out) = f(session).await;
    let xid = match session.take_opening() {
        Opening::Begun { xid } => xid,
        Opening::Ended { trip, .. } => return ended(session, trip, out),
        // `f` sent no statement: nothing was begun or written. The stamp is checked as
        // it would have been before anything, so its refusal keeps its precedence.
        Opening::Deferred { .. } | Opening::Sealed { .. } | Opening::None => {
            return match session.peek(place).await {
                Ok(()) => match out {
                    Ok(value) => {
                        session.release();
                        Commit::Done(value)
                    }
                    Err(fail) => {
                        session.release();
                        Commit::Failed(fail)
                    }
                },
                Err(Fail::Sql(e)) if lost(&e) => Commit::Failed(Fail::Lost(e)),
                Err(fail) => Commit::Failed(fail),
            };
        }
        // The stamp's refusal wins over whatever the statements answered.
        Opening::Refused(refused) => {
            roll_back(session).await;
            return Commit::Failed(Fail::Store(refused));
        }
        // `BEGIN` or the stamp's read failed, and `f` with them.
        Opening::Failed => {
            roll_back(session).await;
            return Commit::Failed(match out {
                Err(fail) => lost_said(fail),
                Ok(_) => Fail::Store(backend("a write's BEGIN failed, its statements did not")),
            });
        }
    };
    progress.xid = Some(xid);
    let value = match out {
        Ok(value) => value,
        Err(fail) => {
            // Nothing is committed: `COMMIT` was never sent.
            roll_back(session).await;
            return Commit::Failed(lost_said(fail));
        }
    };
    progress.committing = Some(value);
    match session.client().batch_execute("COMMIT").await {
        Ok(()) => {
            session.release();
            match progress.committing.take() {
                Some(value) => Commit::Done(value),
                None => unreachable!("the result is set before COMMIT is sent"),
            }
        }
        Err(e) => {
            session.discard();
            let Some(value) = progress.committing.take() else {
                unreachable!("the result is set before COMMIT is sent")
            };
            if lost(&e) {
                Commit::InDoubt {
                    xid,
                    value,
                    cause: Fail::Lost(e),
                }
            } else {
                // The server answered COMMIT with an error: it rolled back.
                Commit::Failed(Fail::Sql(e))
            }
        }
    }
}

/// `fail`, a driver error that is a lost connection said as such (for a run again).
fn lost_said(fail: Fail) -> Fail {
    match fail {
        Fail::Sql(e) if lost(&e) => Fail::Lost(e),
        other => other,
    }
}

/// How a write of one statement ended, its statements having answered `out`.
fn ended<T>(session: PgSession, trip: Trip, out: Result<T, Fail>) -> Commit<T> {
    match trip {
        Trip::Committed => match out {
            Ok(value) => {
                session.release();
                Commit::Done(value)
            }
            // A read after the write's statement failed, or a refusal: the write wrote nothing.
            Err(fail) => {
                let fail = lost_said(fail);
                if matches!(fail, Fail::Lost(_)) {
                    session.discard();
                } else {
                    session.release();
                }
                Commit::Failed(fail)
            }
        },
        Trip::RolledBack { refused } => {
            session.release();
            Commit::Failed(match (refused, out) {
                (Some(refused), _) => Fail::Store(refused),
                (None, Err(fail)) => lost_said(fail),
                (None, Ok(_)) => Fail::Store(backend("a refused write's statement did not fail")),
            })
        }
        Trip::Unanswered => {
            session.discard();
            Commit::Unanswered {
                cause: match out {
                    Err(fail) => lost_said(fail),
                    Ok(_) => Fail::Store(backend("an unanswered write's statement did not fail")),
                },
            }
        }
    }
}

/// Rolls back what `session` began; the connection goes back to the pool only if that
/// succeeds, and is closed otherwise.
async fn roll_back(session: PgSession) {
    if session.client().batch_execute("ROLLBACK").await.is_ok() {
        session.release();
    }
}

/// Runs the simple query `begin` and the schema check `check` (a statement prepared once per
/// connection) pipelined, so the check costs no round trip of its own; the server runs them
/// in that order, the check inside the transaction `begin` opened.
async fn checked(
    session: &PgSession,
    begin: &'static str,
    check: &'static str,
) -> Result<(Vec<SimpleQueryMessage>, Option<String>), Fail> {
    let check = session.prepared(check).await?;
    let client = session.client();
    let (begun, row) = both(client.simple_query(begin), client.query_opt(&check, &[])).await;
    let stored = row?.map(|row| row.try_get(0)).transpose()?;
    Ok((begun?, stored))
}

/// What makes a driver error worth running the transaction again, if anything.
pub(super) fn transient(e: &tokio_postgres::Error) -> Option<&'static str> {
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

/// Is `e` a lost connection: the client closed, an I/O error, or the server ending the
/// session (an administrator's `pg_terminate_backend`, a shutdown, a restart)? The last
/// reply, if any, never arrived: whatever was in flight may or may not have run.
pub(super) fn lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(code);
    }
    // No SQLSTATE: a driver-side failure; an I/O error anywhere in it is a lost connection.
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Is a failure to connect one that a short wait may cure (the server restarting,
/// starting up or refusing connections for now)?
fn unreachable_for_now(e: &tokio_postgres::Error) -> bool {
    if e.code() == Some(&SqlState::CANNOT_CONNECT_NOW)
        || e.code() == Some(&SqlState::ADMIN_SHUTDOWN)
    {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::NotFound
            );
        }
        source = cause.source();
    }
    false
}

/// The pause before attempt `tries + 1`: exponential from 2 ms, capped at 64 ms, with
/// jitter so that two victims of one deadlock do not meet again in step.
fn backoff_delay(tries: u32) -> Duration {
    let base = 1u64 << tries.clamp(1, 6);
    let jitter = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()) % (base * 1000));
    Duration::from_micros(base * 1000 + jitter)
}
