//! The error types shared by the typed layer, the runtime mirror and the versioned wrapper.
//!
//! Messages are lowercase, carry their fields and keep the wording of the Python module this
//! crate replaces, so logs and API bodies stay compatible.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

use crate::lifecycle::Lifecycle;
use crate::topology::TopologyStatus;

/// How many bytes of an (escaped) offending input a message shows before it is cut short.
const SHOWN_BYTES: usize = 64;

/// Writes `s` in single quotes, escaping quotes, backslashes and control or invisible
/// characters, and cutting very long inputs short so one bad value cannot flood a log.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        let mut written = 0;
        let mut piece = String::new();
        for c in self.0.chars() {
            piece.clear();
            match c {
                '\'' => piece.push_str("\\'"),
                '"' => piece.push('"'),
                c => piece.extend(c.escape_debug()),
            }
            // Cut on output bytes, not characters: one escaped character can take ten.
            if written + piece.len() > SHOWN_BYTES {
                let total = self.0.chars().count();
                return write!(f, "'… ({total} characters)");
            }
            f.write_str(&piece)?;
            written += piece.len();
        }
        f.write_str("'")
    }
}

/// A string that is not one of a lifecycle's declared values.
///
/// The message names the machine, quotes the input and lists the accepted values:
///
/// ```
/// use topostate::TopologyStatus;
///
/// let err = "torn-down".parse::<TopologyStatus>().unwrap_err();
/// assert_eq!(err.input(), "torn-down");
/// assert_eq!(
///     err.to_string(),
///     "unknown topology status: 'torn-down' (expected one of: pending, deploying, \
///      active, degraded, failed, tearing_down, torn_down)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseStatusError {
    machine: &'static str,
    noun: &'static str,
    input: Kept,
    accepted: &'static [&'static str],
}

/// The longest input an error keeps without allocating: status strings and their near
/// misses fit, and the error stays as large as with a `String`.
const INLINE: usize = 22;

/// A rejected input, kept inline when it is short, so that rejecting a bad value in a
/// stream of stored ones costs no allocation (see BENCHMARKS.md, row 2).
#[derive(Clone)]
enum Kept {
    /// Invariant: `bytes[..len]` is the whole input, so valid UTF-8.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Box<str>),
}

impl Kept {
    fn new(input: &str) -> Self {
        match u8::try_from(input.len()) {
            Ok(len) if input.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..input.len()].copy_from_slice(input.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::heap(input),
        }
    }

    #[cold]
    #[inline(never)]
    fn heap(input: &str) -> Self {
        Self::Heap(Box::from(input))
    }

    fn as_str(&self) -> &str {
        match self {
            // The bytes are a whole `&str`'s, so they always decode.
            Self::Inline { len, bytes } => {
                core::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Self::Heap(s) => s,
        }
    }
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Kept {}

impl fmt::Debug for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl ParseStatusError {
    /// The error for `input`, which is not a value of lifecycle `L`.
    #[inline]
    #[must_use]
    pub fn new<L: Lifecycle>(input: &str) -> Self {
        Self::new_named(L::MACHINE, L::NOUN, input, L::NAMES)
    }

    /// The error for `input`, which is not one of `accepted`, for any named set of values
    /// (e.g. `new_named("mutation", "op", "noop", &MutationOp::NAMES)`).
    #[inline]
    #[must_use]
    pub fn new_named(
        machine: &'static str,
        noun: &'static str,
        input: &str,
        accepted: &'static [&'static str],
    ) -> Self {
        Self {
            machine,
            noun,
            input: Kept::new(input),
            accepted,
        }
    }

    /// The error for bytes that are not even UTF-8 (shown lossily decoded).
    #[must_use]
    pub fn from_bytes<L: Lifecycle>(input: &[u8]) -> Self {
        Self::from_bytes_named(L::MACHINE, L::NOUN, input, L::NAMES)
    }

    /// [`ParseStatusError::new_named`] for bytes that are not even UTF-8.
    #[must_use]
    pub fn from_bytes_named(
        machine: &'static str,
        noun: &'static str,
        input: &[u8],
        accepted: &'static [&'static str],
    ) -> Self {
        Self::new_named(machine, noun, &String::from_utf8_lossy(input), accepted)
    }

    /// The rejected input.
    #[must_use]
    pub fn input(&self) -> &str {
        self.input.as_str()
    }

    /// The machine whose value was being parsed, e.g. `"topology"`.
    #[must_use]
    pub fn machine(&self) -> &'static str {
        self.machine
    }

    /// Every accepted value, in declaration order.
    #[must_use]
    pub fn accepted(&self) -> &'static [&'static str] {
        self.accepted
    }
}

impl fmt::Display for ParseStatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {}: {} (expected one of: ",
            self.machine,
            self.noun,
            Quoted(self.input.as_str())
        )?;
        for (i, name) in self.accepted.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        f.write_str(")")
    }
}

impl core::error::Error for ParseStatusError {}

/// A refused topology status transition, in the original Python module's words.
///
/// Raised by [`assert_transition`](crate::assert_transition) and
/// [`legal_next`](crate::legal_next), which take raw stored strings.
///
/// ```
/// use topostate::{assert_transition, TopologyStatusError};
///
/// let err = assert_transition("active", "active").unwrap_err();
/// assert_eq!(err.to_string(), "illegal transition: 'active' → 'active'");
/// assert!(matches!(err, TopologyStatusError::Illegal { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyStatusError {
    /// The current status is not a known status string.
    #[error("unknown current status: {}", Quoted(status))]
    UnknownCurrent {
        /// The rejected string.
        status: String,
    },
    /// The new status is not a known status string.
    #[error("unknown new status: {}", Quoted(status))]
    UnknownNew {
        /// The rejected string.
        status: String,
    },
    /// A lone status (e.g. for `legal_next`) is not a known status string.
    #[error("unknown status: {}", Quoted(status))]
    Unknown {
        /// The rejected string.
        status: String,
    },
    /// Both statuses are known but the edge is not declared.
    #[error("illegal transition: '{from}' → '{to}'")]
    Illegal {
        /// The current status.
        from: TopologyStatus,
        /// The refused target.
        to: TopologyStatus,
    },
}

/// A write carried a version that is no longer the stored one.
///
/// The caller should re-read and retry. The fields are public so callers (and stores) can
/// build one and match on it.
///
/// ```
/// use topostate::VersionConflict;
///
/// let err = VersionConflict { current: 2, expected: 1 };
/// assert_eq!(err.to_string(), "topology version conflict: expected 1, current is 2");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("topology version conflict: expected {expected}, current is {current}")]
pub struct VersionConflict {
    /// The stored version.
    pub current: u64,
    /// The version the caller last saw.
    pub expected: u64,
}

/// A version bump at [`MAX_VERSION`](crate::MAX_VERSION): versions never wrap.
///
/// ```
/// use topostate::{VersionOverflow, MAX_VERSION};
///
/// let err = VersionOverflow { current: MAX_VERSION };
/// assert_eq!(
///     err.to_string(),
///     "topology version 9223372036854775807 is at the maximum and cannot be bumped"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("topology version {current} is at the maximum and cannot be bumped")]
pub struct VersionOverflow {
    /// The version that could not be bumped.
    pub current: u64,
}

/// A version outside `1..=MAX_VERSION`, e.g. read from a corrupt row.
///
/// ```
/// use topostate::{InvalidVersion, Versioned};
///
/// let err = Versioned::from_parts((), 0).unwrap_err();
/// assert_eq!(err, InvalidVersion { version: 0 });
/// assert_eq!(err.to_string(), "invalid topology version 0 (versions run from 1 to 9223372036854775807)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error(
    "invalid topology version {version} (versions run from 1 to {})",
    crate::MAX_VERSION
)]
pub struct InvalidVersion {
    /// The rejected version.
    pub version: u64,
}

/// Why a versioned check-and-bump refused.
///
/// ```
/// use topostate::{check_and_bump, VersionConflict, VersionError};
///
/// assert_eq!(
///     check_and_bump(3, Some(2)),
///     Err(VersionError::Conflict(VersionConflict { current: 3, expected: 2 }))
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum VersionError {
    /// The expected version is stale.
    #[error(transparent)]
    Conflict(#[from] VersionConflict),
    /// The version matched but is at the maximum.
    #[error(transparent)]
    Overflow(#[from] VersionOverflow),
}

/// A topology that refuses free-form edits in its current status.
///
/// ```
/// use topostate::{TopologyNotEditable, TopologyStatus};
///
/// let err = TopologyNotEditable { status: TopologyStatus::Active, reason: None };
/// assert_eq!(err.to_string(), "topology not editable (status='active')");
///
/// let err = TopologyNotEditable {
///     status: TopologyStatus::Deploying,
///     reason: Some("free-form edits are pending-only".into()),
/// };
/// assert_eq!(
///     err.to_string(),
///     "topology not editable (status='deploying'): free-form edits are pending-only"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("topology not editable (status='{status}'){}", Suffix(reason.as_deref()))]
pub struct TopologyNotEditable {
    /// The status that refused the edit.
    pub status: TopologyStatus,
    /// Why, when the caller has something to add.
    pub reason: Option<String>,
}

/// `": reason"` when there is a reason, nothing otherwise.
struct Suffix<'a>(Option<&'a str>);

impl fmt::Display for Suffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(reason) if !reason.is_empty() => write!(f, ": {reason}"),
            _ => Ok(()),
        }
    }
}

/// A value whose runtime status was not the one a restore asked for.
///
/// It hands the value back ([`StatusMismatch::into_inner`]) so nothing is lost.
///
/// ```
/// use topostate::{state, Topology, TopologyId, TopologyStatus};
///
/// let any = Topology::new(TopologyId::new(1), "lab").erase();
/// let err = any.restore::<state::Active>().unwrap_err();
/// assert_eq!(err.expected(), TopologyStatus::Active);
/// assert_eq!(err.found(), TopologyStatus::Pending);
/// assert_eq!(err.to_string(), "expected a topology in status 'active', found 'pending'");
/// let any = err.into_inner(); // the value is still here
/// assert_eq!(any.status(), TopologyStatus::Pending);
/// ```
#[derive(Debug)]
pub struct StatusMismatch<T, L> {
    expected: L,
    found: L,
    value: T,
}

impl<T, L: Lifecycle> StatusMismatch<T, L> {
    /// A mismatch holding `value`, whose status is `found` rather than `expected`.
    pub fn new(expected: L, found: L, value: T) -> Self {
        Self {
            expected,
            found,
            value,
        }
    }

    /// The status that was asked for.
    #[must_use]
    pub fn expected(&self) -> L {
        self.expected
    }

    /// The status the value has.
    #[must_use]
    pub fn found(&self) -> L {
        self.found
    }

    /// The value, unchanged.
    #[must_use]
    pub fn into_inner(self) -> T {
        self.value
    }

    /// Replaces the carried value, keeping the statuses (e.g. to re-wrap it).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> StatusMismatch<U, L> {
        StatusMismatch {
            expected: self.expected,
            found: self.found,
            value: f(self.value),
        }
    }
}

impl<T, L: Lifecycle> fmt::Display for StatusMismatch<T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected a {} in {} '{}', found '{}'",
            L::MACHINE,
            L::NOUN,
            self.expected.as_str(),
            self.found.as_str()
        )
    }
}

impl<T: fmt::Debug, L: Lifecycle> core::error::Error for StatusMismatch<T, L> {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    #[test]
    fn kept_input_round_trips_inline_and_on_the_heap() {
        let long = "x".repeat(INLINE + 1);
        let cases = [
            "",
            "torn-down",
            "é€🦀 mixed",
            &long[..INLINE],
            &long,
            "nul\0inside",
        ];
        for input in cases {
            let err = ParseStatusError::new::<TopologyStatus>(input);
            assert_eq!(err.input(), input);
            assert_eq!(err, err.clone());
            assert!(
                format!("{err:?}").contains(&format!("{input:?}")),
                "{err:?}"
            );
            let inline = matches!(err.input, Kept::Inline { .. });
            assert_eq!(inline, input.len() <= INLINE, "{input:?}");
        }
        assert_ne!(
            ParseStatusError::new::<TopologyStatus>("a"),
            ParseStatusError::new::<TopologyStatus>("b")
        );
    }

    #[test]
    fn quoted_escapes_and_truncates() {
        assert_eq!(Quoted("a'b").to_string(), r"'a\'b'");
        assert_eq!(Quoted("a\nb\u{200b}").to_string(), r"'a\nb\u{200b}'");
        let long = "x".repeat(1000);
        let shown = Quoted(&long).to_string();
        assert!(shown.ends_with("'… (1000 characters)"), "{shown}");
        assert!(shown.len() < 100);
    }

    #[test]
    fn empty_reason_adds_nothing() {
        let err = TopologyNotEditable {
            status: TopologyStatus::Failed,
            reason: Some(String::new()),
        };
        assert_eq!(err.to_string(), "topology not editable (status='failed')");
    }
}
