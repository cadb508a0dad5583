//! Waking appliers that wait for work: a generation counter with its condition variable
//! (threads) and its wakers (tasks), the wait loop every backend's blocking
//! `wait_for_work` runs around its own look at the queue, and the future a non-blocking
//! store's async `wait_for_work` returns.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;
use std::vec::Vec;

use super::StoreError;

/// Wakes the threads and tasks waiting for work: a generation counter, bumped whenever a
/// claim could newly succeed (an enqueue, a release, a close), its condition variable, and
/// the wakers of the tasks waiting.
///
/// std's primitives under loom too: waiting is not what the loom model explores, and a
/// waiter woken for nothing only looks again.
#[derive(Debug)]
pub(crate) struct WorkSignal {
    state: Mutex<SignalState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct SignalState {
    generation: u64,
    /// The tasks waiting, by the key their future holds (so a dropped future takes its
    /// waker out again).
    wakers: BTreeMap<u64, Waker>,
    next_key: u64,
}

/// The signal of the SQLite stores of this process: a queue write through any of them wakes
/// the waiters of all of them (a waiter of another file only looks again). PostgreSQL's
/// waiters are woken by the server's notifications instead.
#[cfg(feature = "sqlite")]
pub(crate) static SQL_WORK: WorkSignal = WorkSignal::new();

impl Default for WorkSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkSignal {
    /// A signal nobody has bumped.
    pub(crate) const fn new() -> Self {
        Self {
            state: Mutex::new(SignalState {
                generation: 0,
                wakers: BTreeMap::new(),
                next_key: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SignalState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells every waiter to look again.
    pub(crate) fn notify(&self) {
        let wakers = {
            let mut state = self.lock();
            state.generation = state.generation.wrapping_add(1);
            self.changed.notify_all();
            core::mem::take(&mut state.wakers)
        };
        // Woken outside the lock: a waker may run its task's poll at once.
        for waker in wakers.into_values() {
            waker.wake();
        }
    }

    fn current(&self) -> u64 {
        self.lock().generation
    }

    /// Waits until the generation moves past `seen` or `wait` passes.
    fn wait(&self, seen: u64, wait: Duration) {
        let state = self.lock();
        let _ = self
            .changed
            .wait_timeout_while(state, wait, |s| s.generation == seen)
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// Registers a task's waker under `key` (a new key if `None`) unless the generation
    /// moved past `seen`; `None` if it did (the task must look again).
    fn register(&self, key: Option<u64>, seen: u64, waker: &Waker) -> Option<u64> {
        let mut state = self.lock();
        if state.generation != seen {
            return None;
        }
        let key = key.unwrap_or_else(|| {
            state.next_key = state.next_key.wrapping_add(1);
            state.next_key
        });
        state.wakers.insert(key, waker.clone());
        Some(key)
    }

    fn unregister(&self, key: u64) {
        self.lock().wakers.remove(&key);
    }

    /// The async twin of [`wait_for`](Self::wait_for), for a store whose `look` never
    /// blocks: the future looks, and while there is no work it sleeps until this signal
    /// is notified, a running lease passes or `timeout` does, on no runtime's timer (see
    /// [`TIMERS`]), so it runs on any executor and never blocks its thread.
    pub(crate) fn wait_async<L>(&self, timeout: Duration, look: L) -> WaitForWork<'_, L>
    where
        L: FnMut() -> Result<Option<Option<Duration>>, StoreError>,
    {
        WaitForWork {
            signal: self,
            look,
            deadline: Instant::now().checked_add(timeout),
            timeout_zero: timeout.is_zero(),
            waker_key: None,
            timer_key: None,
        }
    }

    /// Waits until `look` finds work (`Ok(None)`), for at most `timeout`: `true` if it
    /// did. `look` otherwise says how long until a running lease passes, if one runs; the
    /// wait also ends after `poll`, if given, to look again for changes this signal does
    /// not hear of (other processes).
    pub(crate) fn wait_for(
        &self,
        timeout: Duration,
        poll: Option<Duration>,
        mut look: impl FnMut() -> Result<Option<Option<Duration>>, StoreError>,
    ) -> Result<bool, StoreError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            // Read before looking, so that a change made after the look ends the wait.
            let seen = self.current();
            let Some(until_expiry) = look()? else {
                return Ok(true);
            };
            let mut wait = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Ok(false),
                },
                None => timeout,
            };
            for bound in [until_expiry, poll].into_iter().flatten() {
                wait = wait.min(bound);
            }
            self.wait(seen, wait);
        }
    }
}

/// The time from `now` to `until` (both microseconds), zero if it has passed.
pub(crate) fn micros_until(now: i64, until: i64) -> Duration {
    Duration::from_micros(u64::try_from(until.saturating_sub(now)).unwrap_or(0))
}

/// The future of [`WorkSignal::wait_async`].
pub(crate) struct WaitForWork<'a, L> {
    signal: &'a WorkSignal,
    look: L,
    /// `None` when the timeout is past what an `Instant` holds: no timeout.
    deadline: Option<Instant>,
    timeout_zero: bool,
    waker_key: Option<u64>,
    timer_key: Option<TimerKey>,
}

impl<L> Unpin for WaitForWork<'_, L> {}

impl<L> Future for WaitForWork<'_, L>
where
    L: FnMut() -> Result<Option<Option<Duration>>, StoreError>,
{
    type Output = Result<bool, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            // Read before looking, so that a change made after the look ends the wait.
            let seen = this.signal.current();
            let until_expiry = match (this.look)() {
                Err(e) => return Poll::Ready(Err(e)),
                Ok(None) => return Poll::Ready(Ok(true)),
                Ok(Some(until_expiry)) => until_expiry,
            };
            let now = Instant::now();
            if this.timeout_zero || this.deadline.is_some_and(|d| d <= now) {
                return Poll::Ready(Ok(false));
            }
            let expiry = until_expiry.and_then(|left| now.checked_add(left));
            let wake_at = match (this.deadline, expiry) {
                (Some(d), Some(e)) => Some(d.min(e)),
                (d, e) => d.or(e),
            };
            let Some(key) = this.signal.register(this.waker_key, seen, cx.waker()) else {
                continue;
            };
            this.waker_key = Some(key);
            if let Some(old) = this.timer_key.take() {
                TIMERS.cancel(old);
            }
            if let Some(at) = wake_at {
                this.timer_key = TIMERS.wake_at(at, cx.waker());
                if this.timer_key.is_none() {
                    // No timer thread (it could not be started): answer now rather than
                    // wait past the timeout.
                    return Poll::Ready(Ok(false));
                }
            }
            return Poll::Pending;
        }
    }
}

impl<L> Drop for WaitForWork<'_, L> {
    fn drop(&mut self) {
        if let Some(key) = self.waker_key.take() {
            self.signal.unregister(key);
        }
        if let Some(key) = self.timer_key.take() {
            TIMERS.cancel(key);
        }
    }
}

/// A timer entry: its instant, and a number that tells entries of one instant apart.
type TimerKey = (Instant, u64);

/// The timers of the async waits: one thread of this process, started by the first wait
/// that needs it, that sleeps until the earliest entry is due and wakes its task. A
/// non-blocking store's future cannot sleep on its executor's timer without tying the
/// store to one runtime, and it must not block the executor's thread.
struct Timers {
    state: Mutex<TimerState>,
    changed: Condvar,
}

struct TimerState {
    entries: BTreeMap<TimerKey, Waker>,
    next: u64,
    /// Whether the thread runs (`Some(true)`), could not be started (`Some(false)`), or
    /// was not needed yet.
    thread: Option<bool>,
}

static TIMERS: Timers = Timers {
    state: Mutex::new(TimerState {
        entries: BTreeMap::new(),
        next: 0,
        thread: None,
    }),
    changed: Condvar::new(),
};

impl Timers {
    fn lock(&self) -> MutexGuard<'_, TimerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes `waker` at `at`; `None` if the timer thread could not be started.
    fn wake_at(&'static self, at: Instant, waker: &Waker) -> Option<TimerKey> {
        let mut state = self.lock();
        if state.thread.is_none() {
            let started = std::thread::Builder::new()
                .name(std::string::String::from("topostate-timers"))
                .spawn(move || self.run())
                .is_ok();
            state.thread = Some(started);
        }
        if state.thread != Some(true) {
            return None;
        }
        state.next = state.next.wrapping_add(1);
        let key = (at, state.next);
        state.entries.insert(key, waker.clone());
        // The thread may be sleeping until a later entry.
        self.changed.notify_one();
        Some(key)
    }

    fn cancel(&self, key: TimerKey) {
        self.lock().entries.remove(&key);
    }

    fn run(&self) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(entry) = state.entries.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            if !due.is_empty() {
                drop(state);
                for waker in due {
                    waker.wake();
                }
                state = self.lock();
                continue;
            }
            state = match state.entries.first_key_value().map(|(k, _)| k.0) {
                Some(next) => {
                    self.changed
                        .wait_timeout(state, next.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}
