//! Optimistic concurrency: [`Versioned<T>`] carries the version the caller last saw
//! through every mutation, and [`check_and_bump`] is the original Python module's plain check.

use crate::error::{InvalidVersion, VersionError, VersionOverflow};
use crate::state::{CanTransitionTo, State};
use crate::topology::{AnyTopology, Topology, TopologyId, TopologyStatus};
use crate::{StatusMismatch, VersionConflict};

/// The version of a new topology.
pub const INITIAL_VERSION: u64 = 1;

/// The largest version, shared by every layer: `i64::MAX`, because stores keep versions in
/// signed SQL integers. A bump at this version is a [`VersionOverflow`], never a wrap.
pub const MAX_VERSION: u64 = i64::MAX as u64;

/// The original Python module's check-and-bump, for dynamic callers holding an optional
/// expected version.
///
/// - `None`: no check and no bump; returns `current`.
/// - `Some(v)` with `v == current`: returns `current + 1`.
/// - anything else: [`VersionConflict`] `{ current, expected }`.
///
/// # Errors
///
/// [`VersionError::Conflict`] on a stale `expected`; [`VersionError::Overflow`] when
/// `current` is already [`MAX_VERSION`] (the conflict is checked first).
///
/// ```
/// use topostate::{check_and_bump, VersionConflict, VersionError};
///
/// assert_eq!(check_and_bump(4, None), Ok(4));
/// assert_eq!(check_and_bump(4, Some(4)), Ok(5));
/// assert_eq!(
///     check_and_bump(4, Some(3)),
///     Err(VersionError::Conflict(VersionConflict { current: 4, expected: 3 }))
/// );
/// ```
pub const fn check_and_bump(current: u64, expected: Option<u64>) -> Result<u64, VersionError> {
    match expected {
        None => Ok(current),
        Some(expected) if expected != current => Err(VersionError::Conflict(VersionConflict {
            current,
            expected,
        })),
        Some(_) => match bump(current) {
            Ok(next) => Ok(next),
            Err(e) => Err(VersionError::Overflow(e)),
        },
    }
}

/// `current + 1`, bounded by [`MAX_VERSION`].
///
/// # Errors
///
/// [`VersionOverflow`] when `current >= MAX_VERSION`.
///
/// ```
/// use topostate::{version::bump, VersionOverflow, MAX_VERSION};
///
/// assert_eq!(bump(1), Ok(2));
/// assert_eq!(bump(MAX_VERSION), Err(VersionOverflow { current: MAX_VERSION }));
/// ```
pub const fn bump(current: u64) -> Result<u64, VersionOverflow> {
    if current >= MAX_VERSION {
        Err(VersionOverflow { current })
    } else {
        Ok(current + 1)
    }
}

/// A value together with the version its holder last observed.
///
/// The wrapper is the caller's claim about the stored state, checked at the next write: a
/// write hands [`Versioned::version`] on as the expected version and, when the store
/// accepts it, the wrapper takes the new version ([`Versioned::write`]). A stale version is
/// a [`VersionConflict`], never a lost write. There is no `Deref` to the value, so reading
/// goes through [`Versioned::value`] and writing cannot skip the version.
///
/// Typed transitions keep the version (a status change does not bump it):
///
/// ```
/// use topostate::{Topology, TopologyId, Versioned};
///
/// let v = Versioned::new(Topology::new(TopologyId::new(1), "lab"));
/// assert_eq!(v.version(), 1);
/// let v = v.transition_with(|t| t.deploy()).transition_with(|t| t.activate());
/// assert_eq!(v.version(), 1);
/// assert_eq!(v.value().status().as_str(), "active");
/// ```
///
/// On the wire (feature `serde`) it is `{"value": ..., "version": n}`, both required, no
/// other field; a version outside `1..=MAX_VERSION` is refused, so a deserialized wrapper
/// holds the same invariant as one from [`Versioned::from_parts`]:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::Versioned;
///
/// let v = Versioned::from_parts(String::from("lab"), 3)?;
/// let json = serde_json::to_string(&v)?;
/// assert_eq!(json, r#"{"value":"lab","version":3}"#);
/// assert_eq!(serde_json::from_str::<Versioned<String>>(&json)?, v);
/// let err = serde_json::from_str::<Versioned<String>>(r#"{"value":"lab","version":0}"#);
/// assert!(err.unwrap_err().to_string().contains("expected a version"));
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[must_use]
pub struct Versioned<T> {
    value: T,
    // Invariant: INITIAL_VERSION <= version <= MAX_VERSION (also on the wire).
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::names::wire::version")
    )]
    version: u64,
}

impl<T> Versioned<T> {
    /// A value at [`INITIAL_VERSION`], as a store hands out a new topology.
    pub const fn new(value: T) -> Self {
        Self {
            value,
            version: INITIAL_VERSION,
        }
    }

    /// Rebuilds a wrapper from a value and the version a store read.
    ///
    /// # Errors
    ///
    /// [`InvalidVersion`] when `version` is 0 or above [`MAX_VERSION`] (a corrupt row).
    ///
    /// ```
    /// use topostate::Versioned;
    ///
    /// let v = Versioned::from_parts("row", 9)?;
    /// assert_eq!(v.into_parts(), ("row", 9));
    /// # Ok::<(), topostate::InvalidVersion>(())
    /// ```
    pub fn from_parts(value: T, version: u64) -> Result<Self, InvalidVersion> {
        if (INITIAL_VERSION..=MAX_VERSION).contains(&version) {
            Ok(Self { value, version })
        } else {
            Err(InvalidVersion { version })
        }
    }

    /// The version this holder last observed.
    #[must_use]
    pub const fn version(&self) -> u64 {
        self.version
    }

    /// The value, for reading.
    #[must_use]
    pub const fn value(&self) -> &T {
        &self.value
    }

    /// Takes the wrapper apart into the value and its version.
    #[must_use]
    pub fn into_parts(self) -> (T, u64) {
        (self.value, self.version)
    }

    /// Runs a versioned write: `write` receives the value and the expected version (this
    /// wrapper's) and returns its output with the new version the store reports; on
    /// success the wrapper takes that version.
    ///
    /// # Errors
    ///
    /// Whatever `write` returns; the wrapper keeps its version, so the caller can re-read.
    ///
    /// ```
    /// use topostate::{check_and_bump, VersionError, Versioned};
    ///
    /// let mut stored = 1; // the store's version
    /// let mut mine = Versioned::new("canvas");
    /// let out = mine.write(|_, expected| {
    ///     stored = check_and_bump(stored, Some(expected))?;
    ///     Ok::<_, VersionError>(("lan-1", stored))
    /// })?;
    /// assert_eq!((out, mine.version()), ("lan-1", 2));
    /// # Ok::<(), VersionError>(())
    /// ```
    pub fn write<R, E>(
        &mut self,
        write: impl FnOnce(&T, u64) -> Result<(R, u64), E>,
    ) -> Result<R, E> {
        let (out, version) = write(&self.value, self.version)?;
        self.observe(version);
        Ok(out)
    }

    /// Records that the stored version is now `version` (e.g. after a re-read), clamped to
    /// the valid range.
    pub fn observe(&mut self, version: u64) {
        self.version = version.clamp(INITIAL_VERSION, MAX_VERSION);
    }

    /// Checks `expected` against this wrapper's version as the stored one and bumps it,
    /// the original Python module's `_check_and_bump_version` on an in-memory value.
    ///
    /// # Errors
    ///
    /// As [`check_and_bump`]; the wrapper is unchanged on error.
    ///
    /// ```
    /// use topostate::Versioned;
    ///
    /// let mut stored = Versioned::new(());
    /// assert_eq!(stored.check_and_bump(Some(1)), Ok(2));
    /// assert!(stored.check_and_bump(Some(1)).is_err());
    /// assert_eq!(stored.check_and_bump(None), Ok(2));
    /// ```
    pub fn check_and_bump(&mut self, expected: Option<u64>) -> Result<u64, VersionError> {
        self.version = check_and_bump(self.version, expected)?;
        Ok(self.version)
    }

    /// Maps the value, keeping the version.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Versioned<U> {
        Versioned {
            value: f(self.value),
            version: self.version,
        }
    }
}

impl<S: State> Versioned<Topology<S>> {
    /// Moves the topology along a declared edge, keeping the version; `step` is a typed
    /// transition such as `|t| t.deploy()` or `|t| t.fail("reason")`.
    pub fn transition_with<T: State>(
        self,
        step: impl FnOnce(Topology<S>) -> Topology<T>,
    ) -> Versioned<Topology<T>>
    where
        S: CanTransitionTo<T>,
    {
        self.map(step)
    }

    /// Moves the topology along a declared edge with no reason, keeping the version.
    pub fn transition<T: State>(self) -> Versioned<Topology<T>>
    where
        S: CanTransitionTo<T>,
    {
        self.map(Topology::transition)
    }

    /// Forgets the static state, keeping the version.
    pub fn erase(self) -> Versioned<AnyTopology> {
        self.map(Topology::erase)
    }

    /// The topology's id.
    #[must_use]
    pub fn id(&self) -> TopologyId {
        self.value.id()
    }

    /// The topology's status (`S::STATUS`).
    #[must_use]
    pub fn status(&self) -> TopologyStatus {
        S::STATUS
    }
}

impl Versioned<AnyTopology> {
    /// The runtime status.
    #[must_use]
    pub fn status(&self) -> TopologyStatus {
        self.value.status()
    }

    /// The topology's id.
    #[must_use]
    pub fn id(&self) -> TopologyId {
        self.value.id()
    }

    /// Restores the typed form if the status is `S`, keeping the version.
    ///
    /// # Errors
    ///
    /// [`StatusMismatch`] holding this wrapper unchanged when the status is not `S`.
    ///
    /// ```
    /// use topostate::{state, AnyTopology, TopologyData, TopologyId, Versioned};
    ///
    /// let any = AnyTopology::from_stored("failed", TopologyData::new(TopologyId::new(2), "x"))?;
    /// let v = Versioned::from_parts(any, 5)?;
    /// let failed = v.restore::<state::Failed>()?;
    /// assert_eq!(failed.version(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn restore<S: State>(
        self,
    ) -> Result<Versioned<Topology<S>>, StatusMismatch<Self, TopologyStatus>> {
        let version = self.version;
        self.value
            .restore::<S>()
            .map(|t| Versioned { value: t, version })
            .map_err(|e| e.map(|value| Versioned { value, version }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_is_i64_max() {
        assert_eq!(MAX_VERSION, 9_223_372_036_854_775_807);
        assert_eq!(bump(MAX_VERSION - 1), Ok(MAX_VERSION));
    }

    #[test]
    fn write_keeps_version_on_error() {
        let mut v = Versioned::new(());
        let r: Result<(), &str> = v.write(|(), _| Err("no"));
        assert_eq!(r, Err("no"));
        assert_eq!(v.version(), 1);
    }
}
