//! Group commit: the writes waiting for the write connection share one commit.
//!
//! The write connection sits behind a mutex. A write takes it, and if no group is open it
//! begins one (`BEGIN IMMEDIATE`) and runs its checks and statements straight in it; if a
//! group is open, it runs them inside its own `SAVEPOINT`, so a refusal rolls back to the
//! savepoint and takes nothing else with it. Then, if another write is already queued for
//! the mutex and the group is below its maximum, it hands the open transaction on and
//! waits; otherwise it commits the group and wakes every member. So nobody waits for work
//! that has not arrived: a lone writer commits at once, as it would without groups.
//!
//! Every member is answered after the shared commit, with the answer its own run gave
//! (a refusal too: it was decided on writes that must commit for it to stand). The order
//! the writes took the mutex is a serial order that explains every answer, so each gets
//! what it would have got running alone in that order.
//!
//! When a savepoint cannot isolate a failure (a driver error such as a full disk, an I/O
//! error or a commit that fails), nothing of the group is kept that is not safe: a member
//! whose own statements failed with a driver error rolls back to its savepoint, commits the
//! others, and runs again alone; if the transaction itself is lost (SQLite rolled it back)
//! or the commit fails, every member runs again alone, and so gets exactly a lone run's
//! answer. A panic inside a member rolls the group back and the others run again alone.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

use super::{Db, Fail, R, schema};

/// The write connection and what it last saw of the file's schema (`None` in memory).
pub(super) struct Link {
    pub(super) conn: Connection,
    pub(super) seen: Option<schema::Marks>,
    /// The group whose transaction is open on `conn`, if one is.
    group: Option<Group>,
}

/// An open group: how many writes it holds, and where its members wait for the commit
/// (made when the first member hands the group on, so a lone write allocates nothing).
#[derive(Debug)]
struct Group {
    members: usize,
    slot: Option<Arc<Slot>>,
}

/// Where a group's members learn how it ended: `Some(true)` committed, `Some(false)` rolled
/// back (each member then runs again alone).
#[derive(Debug)]
struct Slot {
    outcome: Mutex<Option<bool>>,
    done: Condvar,
}

impl Slot {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            outcome: Mutex::new(None),
            done: Condvar::new(),
        })
    }

    fn settle(&self, committed: bool) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(committed);
        self.done.notify_all();
    }

    /// The outcome, once the group has ended.
    fn wait(&self) -> bool {
        let outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        let outcome = self
            .done
            .wait_while(outcome, |o| o.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        *outcome == Some(true)
    }
}

/// How a member's run ended, before the group's commit.
enum Ran<T> {
    /// Its answer, to give once the group commits.
    Answer(Result<T, Fail>),
    /// Its statements failed in a way a savepoint cannot isolate: it runs again alone.
    Again,
}

/// The one write connection, and the group commit around it.
pub(super) struct Writer {
    link: Mutex<Link>,
    /// Writes between announcing themselves and taking the mutex: a member hands the open
    /// group on only when this says someone will take it.
    queued: AtomicUsize,
    max_group: usize,
    /// Test-only: every write joins through a savepoint, and waits this long before it
    /// queues up, so that writes running at once arrive together.
    linger: Option<Duration>,
    /// Groups committed, and the writes they held.
    commits: AtomicU64,
    grouped: AtomicU64,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        seen: Option<schema::Marks>,
        max_group: usize,
        linger: Option<Duration>,
    ) -> Self {
        Self {
            link: Mutex::new(Link {
                conn,
                seen,
                group: None,
            }),
            queued: AtomicUsize::new(0),
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

    /// Commits the open group (see [`commit_group`]), counting it.
    fn commit(&self, link: &mut Link) -> bool {
        let members = link.group.as_ref().map_or(0, |g| g.members);
        let committed = commit_group(link);
        if committed {
            self.commits.fetch_add(1, Ordering::Relaxed);
            self.grouped.fetch_add(members as u64, Ordering::Relaxed);
        }
        committed
    }

    /// The connection with no group open on it (an open one is committed first), for
    /// anything but a grouped write; recovered if a panicking caller poisoned the mutex.
    pub(super) fn lock(&self) -> MutexGuard<'_, Link> {
        let mut link = self.raw_lock();
        close_group(&mut link);
        link
    }

    /// The connection as it is: a group may be open on it.
    fn raw_lock(&self) -> MutexGuard<'_, Link> {
        let link = self.link.lock().unwrap_or_else(|poisoned| {
            self.link.clear_poison();
            PoisonError::into_inner(poisoned)
        });
        if link.group.is_none() && !link.conn.is_autocommit() {
            // A caller unwound inside a transaction of its own: roll it back. Best effort:
            // a failure here resurfaces as the next BEGIN's error.
            let _ = link.conn.execute_batch("ROLLBACK");
        }
        link
    }

    #[cfg(test)]
    pub(super) fn is_poisoned(&self) -> bool {
        self.link.is_poisoned()
    }

    /// Runs `f` as one write: grouped with the writes waiting beside it, answered after the
    /// commit that makes it durable. `check` runs first in a new transaction (the schema
    /// check). `f` may run twice: once in a group that then fails, and again alone.
    pub(super) fn write<T>(
        &self,
        check: &dyn Fn(&Connection, &mut Option<schema::Marks>) -> R<()>,
        mut f: impl FnMut(&mut Db<'_>) -> R<T>,
    ) -> R<T> {
        if self.max_group > 1 {
            if let Some(linger) = self.linger {
                // Not while queued: a group open now commits rather than wait for this one,
                // so no transaction (and no write lock) is held across the pause.
                std::thread::sleep(linger);
            }
            self.queued.fetch_add(1, Ordering::SeqCst);
            let link = self.raw_lock();
            self.queued.fetch_sub(1, Ordering::SeqCst);
            match self.grouped(link, check, &mut f) {
                Ran::Answer(answer) => return answer,
                Ran::Again => {}
            }
        }
        self.alone(check, &mut f)
    }

    /// Runs `f` in a transaction of its own, committed only if `f` succeeds.
    fn alone<T>(
        &self,
        check: &dyn Fn(&Connection, &mut Option<schema::Marks>) -> R<()>,
        f: &mut impl FnMut(&mut Db<'_>) -> R<T>,
    ) -> R<T> {
        let mut link = self.lock();
        let Link { conn, seen, .. } = &mut *link;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        check(&tx, seen)?;
        let out = f(&mut Db(&tx))?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` as a member of the open group, or as the first member of a new one.
    fn grouped<T>(
        &self,
        mut link: MutexGuard<'_, Link>,
        check: &dyn Fn(&Connection, &mut Option<schema::Marks>) -> R<()>,
        f: &mut impl FnMut(&mut Db<'_>) -> R<T>,
    ) -> Ran<T> {
        let forced = self.linger.is_some();
        let first = link.group.is_none();
        if first {
            if let Err(e) = begin(&mut link, check) {
                return Ran::Answer(Err(e));
            }
            link.group = Some(Group {
                members: 0,
                slot: None,
            });
        }
        let savepoint = forced || !first;
        let answer = match run_member(&mut link, savepoint, f) {
            Ok(answer) => answer,
            // Its own statements failed past what a savepoint isolates (the others' writes
            // were committed), or the group was lost: it runs again alone.
            Err(Lost::Member | Lost::Group) => return Ran::Again,
        };
        if first && !savepoint && answer.is_err() {
            // The only member of its group was refused: end the group as a lone write
            // ends, with a rollback.
            if let Some(group) = link.group.take() {
                let _ = link.conn.execute_batch("ROLLBACK");
                if let Some(slot) = group.slot {
                    slot.settle(false);
                }
            }
            return Ran::Answer(answer);
        }
        let Some(group) = link.group.as_mut() else {
            return Ran::Again;
        };
        group.members += 1;
        if group.members >= self.max_group || self.queued.load(Ordering::SeqCst) == 0 {
            return if self.commit(&mut link) {
                Ran::Answer(answer)
            } else {
                Ran::Again
            };
        }
        let slot = Arc::clone(group.slot.get_or_insert_with(Slot::new));
        drop(link);
        if slot.wait() {
            Ran::Answer(answer)
        } else {
            Ran::Again
        }
    }
}

/// Begins a group's transaction and runs the schema check in it.
fn begin(
    link: &mut Link,
    check: &dyn Fn(&Connection, &mut Option<schema::Marks>) -> R<()>,
) -> R<()> {
    let Link { conn, seen, .. } = link;
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    if let Err(e) = check(conn, seen) {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    Ok(())
}

/// What a driver error took with it.
enum Lost {
    /// The member's own writes (rolled back to its savepoint); the group is intact.
    Member,
    /// The whole group (rolled back, members told).
    Group,
}

/// Runs one member's `f`, inside a savepoint if `savepoint`. A refusal is an answer; a
/// driver error is not, since a lone run may not meet it.
fn run_member<T>(
    link: &mut MutexGuard<'_, Link>,
    savepoint: bool,
    f: &mut impl FnMut(&mut Db<'_>) -> R<T>,
) -> Result<Result<T, Fail>, Lost> {
    if savepoint
        && let Err(_) = link
            .conn
            .prepare_cached("SAVEPOINT member")
            .and_then(|mut s| s.execute([]))
    {
        fail_group(link);
        return Err(Lost::Group);
    }
    let ran = panic::catch_unwind(AssertUnwindSafe(|| f(&mut Db(&link.conn))));
    let answer = match ran {
        Ok(answer) => answer,
        Err(payload) => {
            fail_group(link);
            panic::resume_unwind(payload);
        }
    };
    if !savepoint {
        // The group's first member, on no savepoint: whatever it met is a lone run's
        // answer, and the caller ends the group with it.
        return Ok(answer);
    }
    match &answer {
        Ok(_) | Err(Fail::Store(_)) => {
            let ended = if answer.is_ok() {
                release(&link.conn)
            } else {
                undo(&link.conn)
            };
            if ended.is_err() {
                fail_group(link);
                return Err(Lost::Group);
            }
            Ok(answer)
        }
        Err(Fail::Sql(_)) => {
            if link.conn.is_autocommit() || undo(&link.conn).is_err() {
                fail_group(link);
                return Err(Lost::Group);
            }
            // The others' writes stand; this one runs again alone after they commit.
            if !commit_group(link) {
                return Err(Lost::Group);
            }
            Err(Lost::Member)
        }
    }
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

/// Commits the open group and tells its members; `false` (and the group rolled back,
/// members told to run again) if the commit failed.
fn commit_group(link: &mut Link) -> bool {
    let Some(group) = link.group.take() else {
        return false;
    };
    let committed = link
        .conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
        .is_ok();
    if !committed && !link.conn.is_autocommit() {
        let _ = link.conn.execute_batch("ROLLBACK");
    }
    if let Some(slot) = group.slot {
        slot.settle(committed);
    }
    committed
}

/// Rolls the open group back and tells its members to run again alone.
fn fail_group(link: &mut Link) {
    if let Some(group) = link.group.take() {
        if !link.conn.is_autocommit() {
            let _ = link.conn.execute_batch("ROLLBACK");
        }
        if let Some(slot) = group.slot {
            slot.settle(false);
        }
    }
}

/// Ends the group left open on the connection, for a caller that is not joining it. Its
/// members' writes are intact (a member that failed or panicked ended the group itself), so
/// it is committed.
fn close_group(link: &mut Link) {
    if link.group.is_some() {
        commit_group(link);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::vec::Vec;

    fn writer() -> Writer {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER NOT NULL)")
            .unwrap();
        Writer::new(conn, None, 32, None)
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

    /// Runs `first` (which, on its first run, holds the writer until `second` has queued
    /// up behind it) and `second` at once, so that `second` joins `first`'s group.
    fn pair<A: Send, B: Send>(
        w: &Writer,
        first: impl FnMut(&mut Db<'_>) -> R<A> + Send,
        second: impl FnMut(&mut Db<'_>) -> R<B> + Send,
    ) -> (std::thread::Result<R<A>>, std::thread::Result<R<B>>) {
        let holding = AtomicBool::new(false);
        let mut first = first;
        std::thread::scope(|s| {
            let a = s.spawn(|| {
                let mut waited = false;
                w.write(&no_check, |db| {
                    if !waited {
                        waited = true;
                        holding.store(true, Ordering::SeqCst);
                        while w.queued.load(Ordering::SeqCst) == 0 {
                            std::thread::yield_now();
                        }
                    }
                    first(db)
                })
            });
            while !holding.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            let b = s.spawn(|| w.write(&no_check, second));
            (a.join(), b.join())
        })
    }

    #[test]
    fn a_refused_member_rolls_back_alone_and_shares_the_commit() {
        let w = writer();
        let (a, b) = pair(
            &w,
            |db| insert(db, 1),
            |db| -> R<()> {
                insert(db, 2)?;
                Err(crate::store::sql::backend("refused").into())
            },
        );
        assert!(a.unwrap().is_ok());
        assert!(matches!(b.unwrap(), Err(Fail::Store(_))));
        assert_eq!(rows(&w), [1]);
        assert_eq!(w.counts(), (1, 2), "one commit for both");
    }

    #[test]
    fn a_driver_error_in_a_member_commits_the_others_and_runs_it_again_alone() {
        let w = writer();
        let mut runs = 0;
        let (a, b) = pair(
            &w,
            |db| insert(db, 1),
            |db| {
                runs += 1;
                if runs == 1 {
                    insert(db, 99)?;
                    // As a full disk or an I/O error would: the driver's error.
                    return Err(rusqlite::Error::QueryReturnedNoRows.into());
                }
                insert(db, 2)
            },
        );
        assert!(a.unwrap().is_ok());
        assert!(b.unwrap().is_ok());
        assert_eq!(rows(&w), [1, 2]);
    }

    #[test]
    fn a_panicking_member_rolls_the_group_back_and_the_others_run_again() {
        let w = writer();
        let mut runs = 0;
        let (a, b) = pair(
            &w,
            |db| {
                runs += 1;
                insert(db, 1)
            },
            |db| -> R<()> {
                insert(db, 2)?;
                panic!("a member panicked mid-group");
            },
        );
        assert!(a.unwrap().is_ok());
        assert!(b.is_err(), "the panic reaches its own caller");
        assert_eq!(runs, 2, "the other member ran again alone");
        assert_eq!(rows(&w), [1]);
        assert!(w.link.lock().is_ok_and(|l| l.group.is_none()));
    }
}
