//! Group commit by combining: the writes waiting for the write connection share one
//! commit, and one thread runs them all.
//!
//! A write that finds no group being run becomes the combiner: it takes the write
//! connection, begins a transaction (`BEGIN IMMEDIATE`) and runs its own checks and
//! statements straight in it. Writes that arrive meanwhile do not wait for the connection:
//! each queues its work as an owned job and parks once, on a ticket of its own. After each
//! member, the combiner takes the next queued job, if the group is below its maximum, and
//! runs it in the same transaction inside a `SAVEPOINT`, so a refusal rolls back to the
//! savepoint and takes nothing else with it; when the queue is empty (after one yield of
//! its core, if the group is shared already) it commits and gives every member its answer.
//! So nobody waits for work that has not arrived (a lone writer commits at once, as it
//! would without groups), and a group of ten costs ten wake-ups at its end, with no
//! hand-over of the connection from thread to thread between members.
//! A combiner runs groups while writes are queued, a few at most (so its own caller is not
//! held up for long); if writes are still queued when it is done, it makes the first of
//! them the next combiner, and otherwise marks that nobody combines, under the queue's
//! lock, so a write queued at that moment is never left behind.
//!
//! Writes from tasks of the async face (`AsyncSqliteStore`, feature `tokio`) join the same
//! queue without a thread: a task queues its job with a channel for the answer and awaits
//! it. When such a write finds nobody combining, or is first in line when a combiner's turn
//! ends, a combiner is started for it on the runtime's blocking pool; having no write of
//! its own waiting on it, that combiner runs groups until the queue is empty, and stays a
//! moment longer for the next write of a task it just answered (`STAY`). So
//! concurrent tasks cost one blocking thread between them, and their answers wake tasks,
//! not threads.
//!
//! Every member is answered after the shared commit, with the answer its own run gave
//! (a refusal too: it was decided on writes that must commit for it to stand). The order
//! the combiner ran the writes in is a serial order that explains every answer, so each
//! gets what it would have got running alone in that order.
//!
//! When a savepoint cannot isolate a failure (a driver error such as a full disk, an I/O
//! error or a commit that fails), nothing of the group is kept that is not safe: a member
//! whose own statements failed with a driver error rolls back to its savepoint, the others
//! commit, and it runs again alone; if the transaction itself is lost (SQLite rolled it
//! back) or the commit fails, every member runs again alone, and so gets exactly a lone
//! run's answer. A panic inside a member's job rolls the group back, the others run again
//! alone, and the panic resurfaces in the thread that made the write. The combiner runs
//! these lone runs itself, one transaction each, once the group has ended.

use std::any::Any;
use std::boxed::Box;
use std::collections::VecDeque;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Thread};
use std::time::Duration;
use std::vec::Vec;

use rusqlite::{Connection, TransactionBehavior};

use super::{Db, Fail, R, schema};
use crate::store::sql::backend;

/// The most groups one combiner runs before it hands the connection to the first queued
/// write: running on is cheaper than waking another thread to combine, but its own caller
/// waits for its answer meanwhile.
const TURN_GROUPS: usize = 4;

/// How long a combiner started for tasks stays once the queue is empty, yielding its core,
/// for a next write to arrive. A task answered a moment ago usually queues its next write
/// within tens of microseconds, and taking it here saves starting a combiner anew (a
/// blocking-pool thread woken, which takes as long again). It delays no answer: every
/// write the combiner ran has been answered, and nobody's own write waits on it.
#[cfg(feature = "tokio")]
const STAY: Duration = Duration::from_micros(100);

/// Whose turn a combiner runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Whose {
    /// A thread's, whose own write is in it: a few groups, so its caller is not held up.
    Caller,
    /// Tasks': until the queue is empty, and a moment longer (see [`STAY`]).
    #[cfg(feature = "tokio")]
    Tasks,
}

/// The schema check a write's transaction begins with.
pub(super) type Check = dyn Fn(&Connection, &mut Option<schema::Marks>) -> R<()> + Send + Sync;

/// What a panic unwound with.
type Payload = Box<dyn Any + Send>;

/// The write connection and what it last saw of the file's schema (`None` in memory).
pub(super) struct Link {
    pub(super) conn: Connection,
    pub(super) seen: Option<schema::Marks>,
}

/// What a write leaves for its caller.
enum Kept<T> {
    Nothing,
    Answer(R<T>),
    Panic(Payload),
}

impl<T> Kept<T> {
    /// The answer, or the write's panic resumed in the calling thread.
    fn give(self) -> R<T> {
        match self {
            Self::Answer(answer) => answer,
            Self::Panic(payload) => panic::resume_unwind(payload),
            // Every path of the combiner answers each write it takes; this is a bug, told
            // as an error rather than a hang.
            Self::Nothing => Err(backend("the write was ended without being run").into()),
        }
    }
}

/// How one run of a write ended, as its group sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ran {
    Done,
    /// A refusal (`Fail::Store`): an answer that rolls back to its savepoint.
    Refused,
    /// A driver error: not an answer a lone run is sure to give.
    Driver,
    Panicked,
}

/// A write as the combiner runs it: its answer (or its panic) is kept inside until its
/// group has ended.
trait Run {
    fn run(&mut self, db: &mut Db<'_>) -> Ran;
    /// Keeps `fail` as the answer: a lone run's `BEGIN`, check or `COMMIT` failed.
    fn fail(&mut self, fail: Fail);
}

struct Write<T, F> {
    f: F,
    kept: Kept<T>,
}

impl<T, F: FnMut(&mut Db<'_>) -> R<T>> Run for Write<T, F> {
    fn run(&mut self, db: &mut Db<'_>) -> Ran {
        match panic::catch_unwind(AssertUnwindSafe(|| (self.f)(db))) {
            Ok(answer) => {
                let ran = match &answer {
                    Ok(_) => Ran::Done,
                    Err(Fail::Store(_)) => Ran::Refused,
                    Err(Fail::Sql(_)) => Ran::Driver,
                };
                self.kept = Kept::Answer(answer);
                ran
            }
            Err(payload) => {
                self.kept = Kept::Panic(payload);
                Ran::Panicked
            }
        }
    }

    fn fail(&mut self, fail: Fail) {
        self.kept = Kept::Answer(Err(fail));
    }
}

/// Where a queued write's thread waits: for its answer, or for its turn to combine.
struct Ticket<T> {
    state: Mutex<Turn<T>>,
    thread: Thread,
}

struct Turn<T> {
    answer: Option<Kept<T>>,
    lead: bool,
}

impl<T> Ticket<T> {
    fn turn(&self) -> MutexGuard<'_, Turn<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn answer(&self, kept: Kept<T>) {
        self.turn().answer = Some(kept);
        self.thread.unpark();
    }

    fn lead(&self) {
        self.turn().lead = true;
        self.thread.unpark();
    }
}

/// Who waits for a queued write's answer.
enum Waiter<T> {
    /// A thread, parked on its ticket: it may be asked to combine the next group.
    Thread(Arc<Ticket<T>>),
    /// A task of the async face, awaiting its answer; nobody parks for it, so when it is
    /// next in line a combiner is started for it on the runtime's blocking pool.
    #[cfg(feature = "tokio")]
    Task(Task<T>),
}

/// An async write's side of the queue.
#[cfg(feature = "tokio")]
struct Task<T> {
    answer: tokio::sync::oneshot::Sender<Kept<T>>,
    runtime: tokio::runtime::Handle,
    writer: Arc<Writer>,
}

impl<T> Waiter<T> {
    fn answer(self, kept: Kept<T>) {
        match self {
            Self::Thread(ticket) => ticket.answer(kept),
            // A task that stopped waiting (its future dropped) needs no answer.
            #[cfg(feature = "tokio")]
            Self::Task(task) => drop(task.answer.send(kept)),
        }
    }

    /// Hands the next group to this side: wakes its thread to combine, or returns the
    /// combiner to start for a task (once the queue's lock is released).
    fn lead(&self) -> Option<Start> {
        match self {
            Self::Thread(ticket) => {
                ticket.lead();
                None
            }
            #[cfg(feature = "tokio")]
            Self::Task(task) => Some(Combiner::new(&task.runtime, Arc::clone(&task.writer))),
        }
    }
}

/// A combiner to start for a task's write (nothing without the async face).
#[cfg(feature = "tokio")]
type Start = Combiner;
#[cfg(not(feature = "tokio"))]
type Start = core::convert::Infallible;

/// Starts `start`, outside the queue's lock.
fn start(start: Start) {
    #[cfg(feature = "tokio")]
    start.spawn();
    #[cfg(not(feature = "tokio"))]
    match start {}
}

/// A write queued for the combiner, with whoever waits for its answer.
struct Queued<T, F> {
    write: Write<T, F>,
    waiter: Option<Waiter<T>>,
}

/// A queued write, its types erased, so that one queue holds every kind of write.
trait Job: Send {
    fn run(&mut self, db: &mut Db<'_>) -> Ran;
    fn fail(&mut self, fail: Fail);
    /// Gives the kept answer (or panic) to whoever waits.
    fn answer(self: Box<Self>);
    /// Hands the next group to this write's side: wakes its thread, or returns the
    /// combiner to start for its task.
    fn lead(&self) -> Option<Start>;
}

impl<T, F> Job for Queued<T, F>
where
    T: Send,
    F: FnMut(&mut Db<'_>) -> R<T> + Send,
{
    fn run(&mut self, db: &mut Db<'_>) -> Ran {
        self.write.run(db)
    }

    fn fail(&mut self, fail: Fail) {
        self.write.fail(fail);
    }

    fn answer(mut self: Box<Self>) {
        if let Some(waiter) = self.waiter.take() {
            waiter.answer(mem::replace(&mut self.write.kept, Kept::Nothing));
        }
    }

    fn lead(&self) -> Option<Start> {
        self.waiter.as_ref().and_then(Waiter::lead)
    }
}

impl<T, F> Drop for Queued<T, F> {
    /// A write dropped unanswered (a combiner unwinding through a bug of its own) still
    /// gets an answer, a panic, rather than leave its waiter waiting forever.
    fn drop(&mut self) {
        if let Some(waiter) = self.waiter.take() {
            let payload: Payload = Box::new("the group running this write ended without it");
            waiter.answer(Kept::Panic(payload));
        }
    }
}

/// A combiner of the async face: a turn on the blocking pool that runs queued writes
/// until none is left. Nobody's own write waits on it, so it ends its turn only once the
/// queue has stayed empty for [`STAY`].
#[cfg(feature = "tokio")]
struct Combiner {
    runtime: tokio::runtime::Handle,
    writer: Option<Arc<Writer>>,
}

#[cfg(feature = "tokio")]
impl Combiner {
    fn new(runtime: &tokio::runtime::Handle, writer: Arc<Writer>) -> Self {
        Self {
            runtime: runtime.clone(),
            writer: Some(writer),
        }
    }

    /// Starts the turn on the blocking pool, for the write first in line. The queue must
    /// be marked busy, and its lock not held.
    fn spawn(mut self) {
        let runtime = self.runtime.clone();
        // The JoinHandle is not needed: answers go to each write's own channel.
        drop(runtime.spawn_blocking(move || self.run()));
    }

    fn run(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.combine(None, Whose::Tasks);
        }
    }
}

#[cfg(feature = "tokio")]
impl Drop for Combiner {
    /// A combiner the runtime dropped unrun (it was shutting down) runs its turn here,
    /// on whichever thread dropped it: the queue is marked busy, so the writes queued
    /// behind it, threads' and tasks' alike, would otherwise wait for good.
    fn drop(&mut self) {
        self.run();
    }
}

/// A member of the group being run: the combiner's own write, or a queued one.
enum Member<'o> {
    Own(&'o mut dyn Run),
    Queued(Box<dyn Job>),
}

impl Member<'_> {
    fn run(&mut self, db: &mut Db<'_>) -> Ran {
        match self {
            Self::Own(write) => write.run(db),
            Self::Queued(job) => job.run(db),
        }
    }

    fn fail(&mut self, fail: Fail) {
        match self {
            Self::Own(write) => write.fail(fail),
            Self::Queued(job) => job.fail(fail),
        }
    }

    /// Answers a queued write; the combiner reads its own write's answer itself.
    fn answer(self) {
        if let Self::Queued(job) = self {
            job.answer();
        }
    }
}

/// The writes waiting for the combiner, and whether one is combining.
struct Queue {
    jobs: VecDeque<Box<dyn Job>>,
    busy: bool,
}

/// The one write connection, and the group commit around it.
pub(super) struct Writer {
    link: Mutex<Link>,
    /// The schema check each transaction of the writer begins with.
    check: Box<Check>,
    queue: Mutex<Queue>,
    max_group: usize,
    /// Test-only: every write joins through a savepoint, and waits this long before it
    /// queues up, so that writes running at once arrive together.
    linger: Option<Duration>,
    /// Groups committed, and the writes they held.
    commits: AtomicU64,
    grouped: AtomicU64,
}

/// Ends a combiner's turn, however it ends (an unwinding combiner too): the first queued
/// write combines next, or, with none queued, nobody combines until the next write.
struct EndTurn<'w>(&'w Writer);

impl Drop for EndTurn<'_> {
    fn drop(&mut self) {
        let next = {
            let mut queue = self.0.queue();
            match queue.jobs.front() {
                Some(next) => next.lead(),
                None => {
                    queue.busy = false;
                    None
                }
            }
        };
        if let Some(next) = next {
            start(next);
        }
    }
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        seen: Option<schema::Marks>,
        check: Box<Check>,
        max_group: usize,
        linger: Option<Duration>,
    ) -> Self {
        Self {
            link: Mutex::new(Link { conn, seen }),
            check,
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                busy: false,
            }),
            max_group: max_group.max(1),
            linger,
            commits: AtomicU64::new(0),
            grouped: AtomicU64::new(0),
        }
    }

    /// Groups committed so far, and the writes they held.
    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.grouped.load(Ordering::Relaxed),
        )
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection, outside any transaction; recovered if a panicking caller poisoned
    /// the mutex.
    pub(super) fn lock(&self) -> MutexGuard<'_, Link> {
        let link = self.link.lock().unwrap_or_else(|poisoned| {
            self.link.clear_poison();
            PoisonError::into_inner(poisoned)
        });
        if !link.conn.is_autocommit() {
            // A caller unwound inside a transaction of its own: roll it back. Best effort:
            // a failure here resurfaces as the next BEGIN's error.
            let _ = link.conn.execute_batch("ROLLBACK");
        }
        link
    }

    /// Runs the writer's schema check on `conn` (a read on the writer's connection, say).
    pub(super) fn check(&self, conn: &Connection, seen: &mut Option<schema::Marks>) -> R<()> {
        (self.check)(conn, seen)
    }

    #[cfg(test)]
    pub(super) fn is_poisoned(&self) -> bool {
        self.link.is_poisoned()
    }

    /// Runs `f` as one write: grouped with the writes waiting beside it (possibly on
    /// another thread, hence `Send + 'static`), answered after the commit that makes it
    /// durable. The schema check runs first in each new transaction. `f` may run
    /// twice: once in a group that then fails, and again alone. A panic in `f` resurfaces
    /// here.
    pub(super) fn write<T, F>(&self, mut f: F) -> R<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Db<'_>) -> R<T> + Send + 'static,
    {
        if self.max_group <= 1 {
            return self.alone(&mut f);
        }
        if let Some(linger) = self.linger {
            thread::sleep(linger);
        }
        let mut queue = self.queue();
        if queue.busy {
            let ticket = Arc::new(Ticket {
                state: Mutex::new(Turn {
                    answer: None,
                    lead: false,
                }),
                thread: thread::current(),
            });
            queue.jobs.push_back(Box::new(Queued {
                write: Write {
                    f,
                    kept: Kept::Nothing,
                },
                waiter: Some(Waiter::Thread(Arc::clone(&ticket))),
            }));
            drop(queue);
            return self.wait(&ticket);
        }
        queue.busy = true;
        drop(queue);
        let mut own = Write {
            f,
            kept: Kept::Nothing,
        };
        self.combine(Some(&mut own), Whose::Caller);
        own.kept.give()
    }

    /// Runs `f` as one write for a task of the async face: queued for the combiner, which
    /// is started on the runtime's blocking pool when none is running, and answered
    /// through a channel after the commit that makes it durable; no thread waits for it
    /// meanwhile. A write queued is run even if the future is dropped (only its answer is
    /// lost). Otherwise as [`write`](Self::write).
    #[cfg(feature = "tokio")]
    pub(super) async fn submit<T, F>(self: Arc<Self>, mut f: F) -> R<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Db<'_>) -> R<T> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            backend(
                "an AsyncSqliteStore was awaited outside a tokio runtime; await it inside one, \
                 or call its sync face (get_ref)",
            )
        })?;
        if let Some(linger) = self.linger {
            on_pool(&runtime, move || {
                thread::sleep(linger);
                Ok(())
            })
            .await?;
        }
        if self.max_group <= 1 {
            let writer = Arc::clone(&self);
            return on_pool(&runtime, move || writer.alone(&mut f)).await;
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = Box::new(Queued {
            write: Write {
                f,
                kept: Kept::Nothing,
            },
            waiter: Some(Waiter::Task(Task {
                answer,
                runtime: runtime.clone(),
                writer: Arc::clone(&self),
            })),
        });
        let idle = {
            let mut queue = self.queue();
            queue.jobs.push_back(job);
            !mem::replace(&mut queue.busy, true)
        };
        if idle {
            Combiner::new(&runtime, self).spawn();
        }
        match answered.await {
            Ok(kept) => kept.give(),
            Err(_) => Kept::Nothing.give(),
        }
    }

    /// Waits for a queued write's answer, combining a group when it is this write's turn.
    fn wait<T>(&self, ticket: &Ticket<T>) -> R<T> {
        loop {
            let mut turn = ticket.turn();
            if let Some(kept) = turn.answer.take() {
                drop(turn);
                return kept.give();
            }
            let lead = mem::take(&mut turn.lead);
            drop(turn);
            if lead {
                // This write is first in the queue: the group taken next holds it.
                self.combine(None, Whose::Caller);
            } else {
                thread::park();
            }
        }
    }

    /// Runs `f` in a transaction of its own, committed only if `f` succeeds.
    fn alone<T>(&self, f: &mut impl FnMut(&mut Db<'_>) -> R<T>) -> R<T> {
        let mut link = self.lock();
        let Link { conn, seen } = &mut *link;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        (self.check)(&tx, seen)?;
        let out = f(&mut Db(&tx))?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs a combiner's turn on the connection: `own` first, if given, then queued
    /// writes, in groups while any are queued (up to `TURN_GROUPS` of them on a caller's
    /// turn); then ends the turn.
    fn combine(&self, own: Option<&mut dyn Run>, turn: Whose) {
        // Declared first, so dropped last: the next combiner is woken once the connection
        // is free.
        let _turn = EndTurn(self);
        let mut link = self.lock();
        let mut first = own.map(Member::Own);
        let mut groups = 0;
        loop {
            let again = self.group(&mut link, first.take());
            for member in again {
                alone(&mut link, &*self.check, member);
            }
            groups += 1;
            let more = !self.queue().jobs.is_empty();
            let go_on = match turn {
                Whose::Caller => more && groups < TURN_GROUPS,
                #[cfg(feature = "tokio")]
                Whose::Tasks => more || self.stay(),
            };
            if !go_on {
                break;
            }
        }
    }

    /// Whether a write arrives within [`STAY`], the core yielded meanwhile.
    #[cfg(feature = "tokio")]
    fn stay(&self) -> bool {
        let until = std::time::Instant::now() + STAY;
        while std::time::Instant::now() < until {
            thread::yield_now();
            if !self.queue().jobs.is_empty() {
                return true;
            }
        }
        false
    }

    /// The next member: `first`, or the next queued write while the group has room. With
    /// none queued and the group already shared, the combiner yields its core once before
    /// it commits: writers it just answered are then likely runnable, and one that queues
    /// its next write meanwhile joins this commit. A lone writer never yields, and nothing
    /// waits for a write that is not on its way.
    fn next<'o>(&self, first: &mut Option<Member<'o>>, members: usize) -> Option<Member<'o>> {
        if let Some(first) = first.take() {
            return Some(first);
        }
        if members >= self.max_group {
            return None;
        }
        if let Some(job) = self.queue().jobs.pop_front() {
            return Some(Member::Queued(job));
        }
        if members > 1 {
            // On a core to spare this returns at once; it costs a group only when runnable
            // threads wait for a core, which is when they are most likely writers.
            thread::yield_now();
            return self.queue().jobs.pop_front().map(Member::Queued);
        }
        None
    }

    /// Runs and ends one group, answering its members; returns those that must run again
    /// alone, in the order they ran.
    fn group<'o>(&self, link: &mut Link, mut first: Option<Member<'o>>) -> Vec<Member<'o>> {
        let forced = self.linger.is_some();
        let Some(mut lead) = self.next(&mut first, 0) else {
            return Vec::new();
        };
        if let Err(e) = begin(link, &*self.check) {
            // A lone run would meet the same failure: it is the first member's answer.
            lead.fail(e);
            lead.answer();
            return Vec::new();
        }
        // Members run in the open transaction, their answers kept until it commits.
        let mut ran: Vec<Member<'o>> = Vec::new();
        let mut member = Some(lead);
        while let Some(mut m) = member.take().or_else(|| self.next(&mut first, ran.len())) {
            let savepoint = forced || !ran.is_empty();
            if !savepoint {
                // The first member, on no savepoint: whatever it meets is a lone run's
                // answer. Refused, it ends the group as a lone write ends, with a rollback.
                if m.run(&mut Db(&link.conn)) == Ran::Done {
                    ran.push(m);
                    continue;
                }
                let _ = link.conn.execute_batch("ROLLBACK");
                m.answer();
                return Vec::new();
            }
            if savepoint_begin(&link.conn).is_err() {
                ran.push(m);
                return lost(link, ran);
            }
            match m.run(&mut Db(&link.conn)) {
                Ran::Done => {
                    let kept = release(&link.conn).is_ok();
                    ran.push(m);
                    if !kept {
                        return lost(link, ran);
                    }
                }
                Ran::Refused => {
                    let undone = undo(&link.conn).is_ok();
                    ran.push(m);
                    if !undone {
                        return lost(link, ran);
                    }
                }
                Ran::Driver => {
                    if link.conn.is_autocommit() || undo(&link.conn).is_err() {
                        ran.push(m);
                        return lost(link, ran);
                    }
                    // The others' writes stand: they commit now, and this one runs again
                    // alone after them.
                    let mut again = self.commit(link, ran);
                    again.push(m);
                    return again;
                }
                Ran::Panicked => {
                    let again = lost(link, ran);
                    m.answer();
                    return again;
                }
            }
        }
        self.commit(link, ran)
    }

    /// Commits the group and answers its members; if the commit fails, returns them all to
    /// run again alone.
    fn commit<'o>(&self, link: &mut Link, ran: Vec<Member<'o>>) -> Vec<Member<'o>> {
        let committed = link
            .conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .is_ok();
        if !committed {
            return lost(link, ran);
        }
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.grouped.fetch_add(ran.len() as u64, Ordering::Relaxed);
        for member in ran {
            member.answer();
        }
        Vec::new()
    }
}

/// Runs `call` on the runtime's blocking pool; its panic resumes in the awaiting task.
#[cfg(feature = "tokio")]
async fn on_pool<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    call: impl FnOnce() -> R<T> + Send + 'static,
) -> R<T> {
    match runtime.spawn_blocking(call).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => panic::resume_unwind(e.into_panic()),
        Err(_) => Err(backend("the runtime shut down before the write ran").into()),
    }
}

/// Begins a group's transaction and runs the schema check in it.
fn begin(link: &mut Link, check: &Check) -> R<()> {
    let Link { conn, seen } = link;
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    if let Err(e) = check(conn, seen) {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    Ok(())
}

/// Opens a member's savepoint.
fn savepoint_begin(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("SAVEPOINT member")?.execute([])?;
    Ok(())
}

/// Ends a member's savepoint, keeping its writes.
fn release(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("RELEASE member")?.execute([])?;
    Ok(())
}

/// Ends a member's savepoint, undoing its writes.
fn undo(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("ROLLBACK TO member")?.execute([])?;
    release(conn)
}

/// The group cannot go on (its transaction lost, a savepoint failing, a member panicking):
/// it is rolled back, and every member run in it is returned to run again alone.
fn lost<'o>(link: &mut Link, ran: Vec<Member<'o>>) -> Vec<Member<'o>> {
    if !link.conn.is_autocommit() {
        let _ = link.conn.execute_batch("ROLLBACK");
    }
    ran
}

/// Runs `member` again in a transaction of its own, committed only if it succeeds, and
/// answers it.
fn alone(link: &mut Link, check: &Check, mut member: Member<'_>) {
    let Link { conn, seen } = link;
    let ended = (|| -> R<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        check(&tx, seen)?;
        if member.run(&mut Db(&tx)) == Ran::Done {
            tx.commit()?;
        }
        Ok(())
    })();
    if let Err(e) = ended {
        member.fail(e);
    }
    member.answer();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::vec::Vec;

    fn writer(max_group: usize) -> Arc<Writer> {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER NOT NULL)")
            .unwrap();
        Arc::new(Writer::new(conn, None, Box::new(no_check), max_group, None))
    }

    #[allow(
        clippy::unnecessary_wraps,
        reason = "the writer takes a fallible check"
    )]
    fn no_check(_: &Connection, _: &mut Option<schema::Marks>) -> R<()> {
        Ok(())
    }

    fn insert(db: &Db<'_>, x: i64) -> R<()> {
        db.0.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
        Ok(())
    }

    fn rows(w: &Writer) -> Vec<i64> {
        let link = w.lock();
        let mut stmt = link.conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn queued(w: &Writer) -> usize {
        w.queue().jobs.len()
    }

    /// Waits until `n` writes are queued for the combiner.
    fn until_queued(w: &Writer, n: usize) {
        while queued(w) < n {
            thread::yield_now();
        }
    }

    type Answer<T> = thread::Result<R<T>>;
    type BoxedWrite<B> = Box<dyn FnMut(&mut Db<'_>) -> R<B> + Send>;

    /// Starts `first` as a thread's write which, on its first run only (it runs again
    /// alone if its group is lost), holds the combiner and runs `gate` before it goes on;
    /// returns once it holds.
    fn held<A: Send + 'static>(
        w: &Arc<Writer>,
        mut first: impl FnMut(&mut Db<'_>) -> R<A> + Send + 'static,
        gate: impl FnOnce() + Send + 'static,
    ) -> thread::JoinHandle<R<A>> {
        let holding = Arc::new(AtomicBool::new(false));
        let handle = {
            let (w, holding) = (Arc::clone(w), Arc::clone(&holding));
            let mut gate = Some(gate);
            thread::spawn(move || {
                w.write(move |db| {
                    if let Some(gate) = gate.take() {
                        holding.store(true, Ordering::SeqCst);
                        gate();
                    }
                    first(db)
                })
            })
        };
        while !holding.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        handle
    }

    /// Runs `first`, which (on its first run) holds the combiner until every write of
    /// `then` has queued up behind it, one thread each, in order; so `then` join `first`'s
    /// group, or the groups after it.
    fn together<A, B>(
        w: &Arc<Writer>,
        first: impl FnMut(&mut Db<'_>) -> R<A> + Send + 'static,
        then: Vec<BoxedWrite<B>>,
    ) -> (Answer<A>, Vec<Answer<B>>)
    where
        A: Send + 'static,
        B: Send + 'static,
    {
        let released = Arc::new(AtomicBool::new(false));
        let expected = then.len();
        let a = {
            let (ww, released) = (Arc::clone(w), Arc::clone(&released));
            held(w, first, move || {
                until_queued(&ww, expected);
                released.store(true, Ordering::SeqCst);
            })
        };
        let mut others = Vec::new();
        for (i, job) in then.into_iter().enumerate() {
            let w2 = Arc::clone(w);
            others.push(thread::spawn(move || w2.write(job)));
            // In order: each is queued before the next one starts (once the combiner goes
            // on, all of them are, and it takes them off the queue).
            while queued(w) < i + 1 && !released.load(Ordering::SeqCst) {
                thread::yield_now();
            }
        }
        (
            a.join(),
            others.into_iter().map(thread::JoinHandle::join).collect(),
        )
    }

    fn job<B>(f: impl FnMut(&mut Db<'_>) -> R<B> + Send + 'static) -> BoxedWrite<B> {
        Box::new(f)
    }

    #[test]
    fn queued_writes_run_on_the_combiner_and_share_its_commit() {
        let w = writer(32);
        let ran_on = Arc::new(Mutex::new(Vec::new()));
        let record = |x| {
            let ran_on = Arc::clone(&ran_on);
            move |db: &mut Db<'_>| {
                ran_on.lock().unwrap().push(thread::current().id());
                insert(db, x)
            }
        };
        let (a, rest) = together(&w, record(1), vec![job(record(2)), job(record(3))]);
        assert!(a.unwrap().is_ok());
        assert!(rest.into_iter().all(|r| r.unwrap().is_ok()));
        assert_eq!(rows(&w), [1, 2, 3]);
        assert_eq!(w.counts(), (1, 3), "one commit for all three");
        let ran_on = ran_on.lock().unwrap();
        assert!(
            ran_on.iter().all(|t| *t == ran_on[0]),
            "every write ran on the combiner's thread"
        );
        assert!(!w.queue().busy, "nobody combines once the queue is empty");
    }

    #[test]
    fn a_refused_member_rolls_back_alone_and_shares_the_commit() {
        let w = writer(32);
        let (a, rest) = together(
            &w,
            |db| insert(db, 1),
            vec![job(|db| -> R<()> {
                insert(db, 2)?;
                Err(crate::store::sql::backend("refused").into())
            })],
        );
        assert!(a.unwrap().is_ok());
        let [b] = <[_; 1]>::try_from(rest).ok().unwrap();
        assert!(matches!(b.unwrap(), Err(Fail::Store(_))));
        assert_eq!(rows(&w), [1]);
        assert_eq!(w.counts(), (1, 2), "one commit for both");
    }

    #[test]
    fn a_driver_error_in_a_member_commits_the_others_and_runs_it_again_alone() {
        let w = writer(32);
        let mut runs = 0;
        let (a, rest) = together(
            &w,
            |db| insert(db, 1),
            vec![job(move |db| {
                runs += 1;
                if runs == 1 {
                    insert(db, 99)?;
                    // As a full disk or an I/O error would: the driver's error.
                    return Err(rusqlite::Error::QueryReturnedNoRows.into());
                }
                insert(db, 2).map(|()| runs)
            })],
        );
        assert!(a.unwrap().is_ok());
        let [b] = <[_; 1]>::try_from(rest).ok().unwrap();
        assert_eq!(b.unwrap().ok(), Some(2), "it ran again, alone");
        assert_eq!(rows(&w), [1, 2]);
    }

    #[test]
    fn a_panicking_member_rolls_the_group_back_and_panics_in_its_own_thread() {
        let w = writer(32);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let (a, rest) = together(
            &w,
            move |db| {
                counted.fetch_add(1, Ordering::SeqCst);
                insert(db, 1)
            },
            vec![
                job(|db| -> R<()> {
                    insert(db, 2)?;
                    panic!("a member panicked mid-group");
                }),
                job(|db| insert(db, 3)),
            ],
        );
        assert!(a.unwrap().is_ok(), "the combiner's caller is answered");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "the combiner's write ran again alone"
        );
        let mut rest = rest.into_iter();
        let payload = rest.next().unwrap().err().unwrap();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"a member panicked mid-group"),
            "the member's own panic, in the member's thread"
        );
        assert!(rest.next().unwrap().unwrap().is_ok());
        assert_eq!(rows(&w), [1, 3]);
        assert!(w.lock().conn.is_autocommit());
    }

    #[test]
    fn a_panicking_combiner_still_gets_the_queued_writes_answered() {
        let w = writer(32);
        let (a, rest) = together(
            &w,
            |db| -> R<()> {
                insert(db, 1)?;
                panic!("the combiner's own write panicked");
            },
            vec![job(|db| insert(db, 2)), job(|db| insert(db, 3))],
        );
        let payload = a.err().unwrap();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"the combiner's own write panicked")
        );
        assert!(rest.into_iter().all(|r| r.unwrap().is_ok()));
        assert_eq!(rows(&w), [2, 3]);
        assert!(!w.queue().busy);
    }

    #[test]
    fn writes_past_a_combiners_turn_are_run_by_the_next_combiner() {
        let w = writer(2);
        let ran_on = Arc::new(Mutex::new(Vec::new()));
        let record = |x| {
            let ran_on = Arc::clone(&ran_on);
            move |db: &mut Db<'_>| {
                ran_on.lock().unwrap().push((x, thread::current().id()));
                insert(db, x)
            }
        };
        // The combiner's turn holds `TURN_GROUPS` groups of 2: all but the last two writes.
        let in_turn = i64::try_from(2 * TURN_GROUPS).unwrap();
        let total = in_turn + 2;
        let queued = (1..total).map(|x| job(record(x))).collect();
        let (a, rest) = together(&w, record(0), queued);
        assert!(a.unwrap().is_ok());
        assert!(rest.into_iter().all(|r| r.unwrap().is_ok()));
        assert_eq!(rows(&w), (0..total).collect::<Vec<_>>());
        assert_eq!(w.counts(), (TURN_GROUPS as u64 + 1, total.unsigned_abs()));
        let ran_on = ran_on.lock().unwrap();
        let (turn, next) = ran_on.split_at(2 * TURN_GROUPS);
        assert!(
            turn.iter().all(|(_, t)| *t == turn[0].1),
            "one combiner's turn"
        );
        assert!(next.iter().all(|(_, t)| *t == next[0].1));
        assert_ne!(
            turn[0].1, next[0].1,
            "the first write left queued combined the rest"
        );
        assert_eq!(next[0].0, in_turn, "in the order they queued");
    }

    /// Many writers, each writing in a loop, so writes keep arriving as combiners finish,
    /// more of them queued at once than one combiner's turn takes: every one is answered
    /// (a write left queued would park its thread for good) and stored once.
    #[test]
    fn writes_arriving_as_a_combiner_ends_are_all_run() {
        const THREADS: i64 = 16;
        const WRITES: i64 = 100;
        for max_group in [2, 32] {
            let w = writer(max_group);
            let done = Arc::new(AtomicUsize::new(0));
            for t in 0..THREADS {
                let (w, done) = (Arc::clone(&w), Arc::clone(&done));
                thread::spawn(move || {
                    for i in 0..WRITES {
                        w.write(move |db| insert(db, t * 1000 + i)).ok().unwrap();
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            let all = usize::try_from(THREADS).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_mins(1);
            while done.load(Ordering::SeqCst) < all && std::time::Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(
                done.load(Ordering::SeqCst),
                all,
                "max_group {max_group}: writers left waiting, {} writes queued",
                queued(&w)
            );
            let mut expected: Vec<i64> = (0..THREADS)
                .flat_map(|t| (0..WRITES).map(move |i| t * 1000 + i))
                .collect();
            expected.sort_unstable();
            assert_eq!(rows(&w), expected);
            assert!(!w.queue().busy);
            assert_eq!(queued(&w), 0);
        }
    }

    #[test]
    fn a_refused_lone_write_rolls_back_and_leaves_nothing_open() {
        let w = writer(32);
        let refused = w.write(|db| -> R<()> {
            insert(db, 1)?;
            Err(crate::store::sql::backend(String::from("refused")).into())
        });
        assert!(matches!(refused, Err(Fail::Store(_))));
        w.write(|db| insert(db, 2)).ok().unwrap();
        assert_eq!(rows(&w), [2]);
        assert!(w.lock().conn.is_autocommit());
        assert_eq!(w.counts(), (1, 1), "the refused write committed nothing");
    }

    // ---- writes from tasks (the async face) ----------------------------------------------

    /// A multi-thread runtime of 2 workers, with timers.
    #[cfg(feature = "tokio")]
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap()
    }

    /// A current-thread runtime, with timers.
    #[cfg(feature = "tokio")]
    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// Holds the combiner (a thread's write) while `queue` queues writes behind it, until
    /// `n` are queued; then lets it go on, and returns its thread's answer.
    #[cfg(feature = "tokio")]
    fn holding(w: &Arc<Writer>, n: usize, queue: impl FnOnce()) -> R<()> {
        let released = Arc::new(AtomicBool::new(false));
        let combiner = {
            let released = Arc::clone(&released);
            held(
                w,
                |db| insert(db, 0),
                move || {
                    while !released.load(Ordering::SeqCst) {
                        thread::yield_now();
                    }
                },
            )
        };
        queue();
        until_queued(w, n);
        released.store(true, Ordering::SeqCst);
        combiner.join().unwrap()
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn task_writes_queued_behind_a_thread_share_its_commit() {
        let w = writer(32);
        let rt = runtime();
        let mut tasks = Vec::new();
        holding(&w, 3, || {
            for x in 1..=3 {
                tasks.push(rt.spawn(Arc::clone(&w).submit(move |db| insert(db, x))));
            }
        })
        .ok()
        .unwrap();
        for task in tasks {
            rt.block_on(task).unwrap().ok().unwrap();
        }
        assert_eq!(rows(&w), [0, 1, 2, 3]);
        assert_eq!(
            w.counts(),
            (1, 4),
            "one commit for the thread's write and the tasks'"
        );
        until_idle(&w);
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn a_lone_task_write_commits_on_the_blocking_pool_on_either_runtime() {
        for rt in [runtime(), current_thread()] {
            let w = writer(32);
            let caller = thread::current().id();
            let ran_on = rt
                .block_on(Arc::clone(&w).submit(|db| {
                    insert(db, 1)?;
                    Ok(thread::current().id())
                }))
                .ok()
                .unwrap();
            assert_ne!(ran_on, caller, "the write ran on a blocking thread");
            assert_eq!(rows(&w), [1]);
            assert_eq!(w.counts(), (1, 1));
            // The combiner ends its turn just after answering.
            until_idle(&w);
        }
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn a_panicking_task_write_panics_in_its_task_and_the_others_commit() {
        let w = writer(32);
        let rt = runtime();
        let mut tasks = Vec::new();
        holding(&w, 2, || {
            tasks.push(rt.spawn(Arc::clone(&w).submit(|db| -> R<()> {
                insert(db, 1)?;
                panic!("a task's write panicked");
            })));
            until_queued(&w, 1);
            tasks.push(rt.spawn(Arc::clone(&w).submit(|db| insert(db, 2))));
        })
        .ok()
        .unwrap();
        let mut tasks = tasks.into_iter();
        let panicked = rt.block_on(tasks.next().unwrap()).err().unwrap();
        assert!(panicked.is_panic());
        assert_eq!(
            panicked.into_panic().downcast_ref::<&str>(),
            Some(&"a task's write panicked"),
            "the write's own panic, in its own task"
        );
        rt.block_on(tasks.next().unwrap()).unwrap().ok().unwrap();
        assert_eq!(rows(&w), [0, 2]);
        assert!(w.lock().conn.is_autocommit());
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn a_queued_write_whose_task_stopped_waiting_is_still_run_once() {
        let w = writer(32);
        let rt = runtime();
        holding(&w, 1, || {
            let task = rt.spawn(Arc::clone(&w).submit(|db| insert(db, 1)));
            until_queued(&w, 1);
            task.abort();
            assert!(rt.block_on(task).err().unwrap().is_cancelled());
        })
        .ok()
        .unwrap();
        // Its answer had nobody to go to; the next write waits for its group to end.
        rt.block_on(Arc::clone(&w).submit(|db| insert(db, 2)))
            .ok()
            .unwrap();
        assert_eq!(rows(&w), [0, 1, 2]);
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn a_task_write_outside_a_runtime_is_refused_and_writes_nothing() {
        use std::task::{Context, Poll, Waker};
        let w = writer(32);
        let mut write = Box::pin(Arc::clone(&w).submit(|db| insert(db, 1)));
        let Poll::Ready(Err(Fail::Store(e))) =
            write.as_mut().poll(&mut Context::from_waker(Waker::noop()))
        else {
            panic!("awaited outside a runtime, the write must be refused at once");
        };
        assert!(e.to_string().contains("outside a tokio runtime"), "{e}");
        assert_eq!(rows(&w), Vec::<i64>::new());
        assert!(!w.queue().busy);
    }

    /// Tasks and threads writing in loops on one writer, more of them queued at once than
    /// a group holds: every write is answered (one left queued would leave its task
    /// waiting for good) and stored once, on either runtime.
    #[cfg(feature = "tokio")]
    #[test]
    fn task_and_thread_writes_arriving_as_combiners_end_are_all_run() {
        const TASKS: i64 = 16;
        const THREADS: i64 = 4;
        const WRITES: i64 = 50;
        for (multi, max_group) in [(true, 2), (true, 32), (false, 2), (false, 32)] {
            let w = writer(max_group);
            let rt = if multi { runtime() } else { current_thread() };
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let w = Arc::clone(&w);
                    thread::spawn(move || {
                        for i in 0..WRITES {
                            w.write(move |db| insert(db, (TASKS + t) * 1000 + i))
                                .ok()
                                .unwrap();
                        }
                    })
                })
                .collect();
            let tasks: Vec<_> = (0..TASKS)
                .map(|t| {
                    let w = Arc::clone(&w);
                    rt.spawn(async move {
                        for i in 0..WRITES {
                            Arc::clone(&w)
                                .submit(move |db| insert(db, t * 1000 + i))
                                .await
                                .ok()
                                .unwrap();
                        }
                    })
                })
                .collect();
            let all = rt.block_on(async {
                tokio::time::timeout(Duration::from_mins(1), async {
                    for task in tasks {
                        task.await.unwrap();
                    }
                })
                .await
            });
            assert!(
                all.is_ok(),
                "max_group {max_group}: tasks left waiting, {} writes queued",
                queued(&w)
            );
            for thread in threads {
                thread.join().unwrap();
            }
            let mut expected: Vec<i64> = (0..TASKS + THREADS)
                .flat_map(|t| (0..WRITES).map(move |i| t * 1000 + i))
                .collect();
            expected.sort_unstable();
            assert_eq!(rows(&w), expected);
            until_idle(&w);
            assert_eq!(queued(&w), 0);
        }
    }

    /// Waits (a bounded while) for the combiner to end its turn, which it does just after
    /// answering its last write; fails if it never does.
    #[cfg(feature = "tokio")]
    fn until_idle(w: &Writer) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while w.queue().busy {
            assert!(
                std::time::Instant::now() < deadline,
                "a combiner never ended its turn"
            );
            thread::yield_now();
        }
    }
}
