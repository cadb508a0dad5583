//! Waking appliers that wait for work: a generation counter with its condition variable,
//! and the wait loop every backend's `wait_for_work` runs around its own look at the queue.

use core::time::Duration;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

use super::StoreError;

/// Wakes the threads waiting for work: a generation counter, bumped whenever a claim could
/// newly succeed (an enqueue, a release, a close), and its condition variable.
///
/// std's primitives under loom too: waiting is not what the loom model explores, and a
/// waiter woken for nothing only looks again.
#[derive(Debug, Default)]
pub(crate) struct WorkSignal {
    generation: Mutex<u64>,
    changed: Condvar,
}

/// The signal of the SQL stores of this process: a queue write through any of them wakes
/// the waiters of all of them (a waiter of another file or schema only looks again).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) static SQL_WORK: WorkSignal = WorkSignal::new();

impl WorkSignal {
    /// A signal nobody has bumped.
    pub(crate) const fn new() -> Self {
        Self {
            generation: Mutex::new(0),
            changed: Condvar::new(),
        }
    }

    /// Tells every waiter to look again.
    pub(crate) fn notify(&self) {
        let mut generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *generation = generation.wrapping_add(1);
        self.changed.notify_all();
    }

    fn current(&self) -> u64 {
        *self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the generation moves past `seen` or `wait` passes.
    fn wait(&self, seen: u64, wait: Duration) {
        let generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .changed
            .wait_timeout_while(generation, wait, |g| *g == seen)
            .unwrap_or_else(PoisonError::into_inner);
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
