//! Claim leases: how long a claim holds its mutation, who says what time it is, and the
//! options of a claim.
//!
//! A claim holds its mutation for a lease. While the lease runs, the next claim of the
//! topology is [`Claim::Busy`](super::Claim::Busy); once it has passed, the next claim takes
//! the same mutation over (its attempts and fencing token grow), so the queue stays serial
//! and in order and a crashed applier stops nothing for longer than its lease. The holder
//! renews the lease while it works
//! ([`renew_lease`](super::TopologyStore::renew_lease)). A holder whose lease passed but
//! that nobody took over still writes: the token, not the clock, decides.
//!
//! Time is the store's: the SQL backends read the database's clock inside the statement
//! (PostgreSQL the server's, so hosts with skewed clocks agree; SQLite its own `julianday`,
//! which is the clock of whichever process runs the statement), and
//! [`MemoryStore`](super::MemoryStore) reads a [`Clock`], the system's unless a test gives
//! it another ([`ManualClock`]).

use core::fmt;
use core::time::Duration;
use std::string::String;
use std::sync::atomic::{AtomicI64, Ordering};

use super::{StoreError, Timestamp, check_text};

/// The lease of a claim that names none: 30 seconds.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The longest lease a claim or renewal may take: one day. A longer one would let a
/// crashed applier stop its topology's live edits for longer than an operator would wait.
pub const MAX_LEASE: Duration = Duration::from_hours(24);

/// Where a store reads the time for its leases.
///
/// ```
/// use std::sync::Arc;
/// use topostate::store::{Clock, ManualClock, Timestamp};
///
/// let clock = Arc::new(ManualClock::new(Timestamp::from_micros(1_000)));
/// let shared: Arc<dyn Clock> = clock.clone();
/// assert_eq!(shared.now(), Timestamp::from_micros(1_000));
/// ```
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's clock ([`Timestamp::now`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to, for tests of lease expiry.
///
/// ```
/// use std::time::Duration;
/// use topostate::store::{Clock, ManualClock, Timestamp};
///
/// let clock = ManualClock::new(Timestamp::from_micros(0));
/// clock.advance(Duration::from_millis(1));
/// assert_eq!(clock.now(), Timestamp::from_micros(1_000));
/// clock.set(Timestamp::from_micros(5));
/// assert_eq!(clock.now().as_micros(), 5);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `at`.
    #[must_use]
    pub const fn new(at: Timestamp) -> Self {
        Self {
            micros: AtomicI64::new(at.as_micros()),
        }
    }

    /// Moves the clock forward by `by` (saturating at the last representable instant).
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        // A racing `set` may win or lose; either is a time the clock could show.
        let _ = self
            .micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                Some(m.saturating_add(by))
            });
    }

    /// Sets the clock to `at` (also backwards, to test a clock that steps back).
    pub fn set(&self, at: Timestamp) {
        self.micros.store(at.as_micros(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.micros.load(Ordering::SeqCst))
    }
}

/// How a claim is taken: its lease and, optionally, who takes it.
///
/// ```
/// use std::time::Duration;
/// use topostate::store::{ClaimOptions, DEFAULT_LEASE};
///
/// assert_eq!(ClaimOptions::default().lease_duration(), DEFAULT_LEASE);
/// let opts = ClaimOptions::new().lease(Duration::from_secs(5)).holder("applier-7");
/// assert_eq!(opts.holder_name(), Some("applier-7"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimOptions {
    lease: Duration,
    holder: Option<String>,
}

impl Default for ClaimOptions {
    fn default() -> Self {
        Self {
            lease: DEFAULT_LEASE,
            holder: None,
        }
    }
}

impl ClaimOptions {
    /// The defaults: a [`DEFAULT_LEASE`], no holder name.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the claim for `lease` (checked by the claim: more than zero, at most
    /// [`MAX_LEASE`]).
    #[must_use]
    pub const fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Names who takes the claim (a host and process, say); stored on the mutation as
    /// [`holder`](super::Mutation::holder) and shown to operators and to a holder that
    /// lost its lease. Checked by the claim as free text.
    #[must_use]
    pub fn holder(mut self, holder: impl Into<String>) -> Self {
        self.holder = Some(holder.into());
        self
    }

    /// The lease asked for.
    #[must_use]
    pub const fn lease_duration(&self) -> Duration {
        self.lease
    }

    /// The holder's name, if given.
    #[must_use]
    pub fn holder_name(&self) -> Option<&str> {
        self.holder.as_deref()
    }

    /// The lease in microseconds, and the holder, both checked.
    pub(crate) fn checked(&self) -> Result<(i64, Option<&str>), StoreError> {
        let lease = lease_micros(self.lease)?;
        if let Some(holder) = &self.holder {
            check_text("holder", holder)?;
        }
        Ok((lease, self.holder.as_deref()))
    }
}

/// A lease in whole microseconds, refused when zero (or under a microsecond) or over
/// [`MAX_LEASE`].
pub(crate) fn lease_micros(lease: Duration) -> Result<i64, StoreError> {
    let invalid = |problem: String| StoreError::Invalid {
        field: "lease",
        problem,
    };
    if lease > MAX_LEASE {
        return Err(invalid(std::format!(
            "{lease:?} is longer than the maximum of {MAX_LEASE:?}"
        )));
    }
    match i64::try_from(lease.as_micros()) {
        Ok(micros) if micros > 0 => Ok(micros),
        _ => Err(invalid(std::format!(
            "{lease:?} is shorter than the store's one-microsecond resolution; a lease must run"
        ))),
    }
}

/// When a lease of `lease` microseconds taken at `now` runs out, refused when that
/// instant cannot be represented.
pub(crate) fn lease_end(now: Timestamp, lease: i64) -> Result<Timestamp, StoreError> {
    now.as_micros()
        .checked_add(lease)
        .map(Timestamp::from_micros)
        .ok_or_else(|| StoreError::Invalid {
            field: "lease",
            problem: std::format!(
                "a lease of {lease} µs from {} µs overflows the timestamp",
                now.as_micros()
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_bounded() {
        assert!(lease_micros(Duration::ZERO).is_err());
        assert!(lease_micros(Duration::from_nanos(999)).is_err());
        assert_eq!(lease_micros(Duration::from_micros(1)).ok(), Some(1));
        assert!(lease_micros(MAX_LEASE).is_ok());
        assert!(lease_micros(MAX_LEASE + Duration::from_micros(1)).is_err());
        assert!(lease_micros(Duration::MAX).is_err());
        assert!(lease_end(Timestamp::from_micros(i64::MAX - 1), 2).is_err());
        assert_eq!(
            lease_end(Timestamp::from_micros(5), 2).ok(),
            Some(Timestamp::from_micros(7))
        );
    }
}
