//! [`StoreError`]: every way a store operation can refuse or fail.

use std::boxed::Box;
use std::fmt;
use std::string::String;
use std::time::Duration;

use crate::error::Quoted;
use crate::{MutationState, TopologyNotEditable, TopologyStatus, VersionConflict, VersionOverflow};

use super::{DeckyId, LanId, MutationId, Timestamp};

/// Which kind of row an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entity {
    /// A topology.
    Topology,
    /// A LAN.
    Lan,
    /// A decky.
    Decky,
    /// A decky ↔ LAN edge.
    Edge,
    /// A queued mutation.
    Mutation,
}

impl Entity {
    /// The lowercase name used in messages.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Topology => "topology",
            Self::Lan => "lan",
            Self::Decky => "decky",
            Self::Edge => "edge",
            Self::Mutation => "mutation",
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An opaque error from a backend's driver (I/O, SQL, pool); its type does not change
/// with features, so matching on [`StoreError`] is the same in every build.
#[derive(Debug)]
pub struct BackendError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl BackendError {
    /// Wraps a driver error.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self(error.into())
    }

    /// The driver's error, to downcast when you know the backend.
    #[must_use]
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Why a store operation refused or failed.
///
/// When several apply, the first in this order wins: [`NotFound`](Self::NotFound) >
/// [`NotEditable`](Self::NotEditable) > domain refusals ([`LanInUse`](Self::LanInUse),
/// [`ForeignEnd`](Self::ForeignEnd)) > [`VersionConflict`](Self::VersionConflict) >
/// [`Duplicate`](Self::Duplicate). Nothing is written when an error is returned.
///
/// ```
/// use topostate::store::{Entity, StoreError};
///
/// let err = StoreError::NotFound { entity: Entity::Lan, id: 7 };
/// assert_eq!(err.to_string(), "lan 7 not found");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No such row (or not in the topology named by the call).
    #[error("{entity} {id} not found")]
    NotFound {
        /// What was looked for.
        entity: Entity,
        /// Its id.
        id: u64,
    },
    /// The topology's status refuses this kind of write.
    #[error(transparent)]
    NotEditable(#[from] TopologyNotEditable),
    /// Deleting this LAN would leave a decky with no LAN.
    #[error(
        "lan {lan} is the only lan of decky {} ({decky}); attach the decky elsewhere or delete it first",
        Quoted(decky_name)
    )]
    LanInUse {
        /// The LAN.
        lan: LanId,
        /// The decky that would be orphaned.
        decky: DeckyId,
        /// Its name.
        decky_name: String,
    },
    /// An edge end belongs to another topology.
    #[error("{entity} {id} belongs to topology {owner}, not to topology {topology}")]
    ForeignEnd {
        /// Which end.
        entity: Entity,
        /// Its id.
        id: u64,
        /// The topology it belongs to.
        owner: u64,
        /// The topology the edge was for.
        topology: u64,
    },
    /// The expected version is stale; re-read and retry.
    #[error(transparent)]
    VersionConflict(#[from] VersionConflict),
    /// A name (topology, or LAN/decky within a topology) or a decky ↔ LAN pair is taken.
    #[error("{entity} {} already exists", Quoted(name))]
    Duplicate {
        /// What kind of row.
        entity: Entity,
        /// The taken name (for an edge, `decky ↔ lan` ids).
        name: String,
    },
    /// The caller's believed status is not the stored one.
    #[error("stale status: expected '{expected}', found '{found}'")]
    StaleStatus {
        /// What the caller believed.
        expected: TopologyStatus,
        /// What is stored.
        found: TopologyStatus,
    },
    /// The transition is not a declared edge.
    #[error("illegal transition: '{from}' → '{to}'")]
    IllegalTransition {
        /// The stored status.
        from: TopologyStatus,
        /// The refused target.
        to: TopologyStatus,
    },
    /// A mutation is not in the state the operation needs (e.g. a mark of a mutation that
    /// is not `applying`).
    #[error("mutation {id} is '{found}', expected '{expected}'")]
    MutationState {
        /// The mutation.
        id: MutationId,
        /// The state needed.
        expected: MutationState,
        /// The state stored.
        found: MutationState,
    },
    /// The claim's fencing token is no longer the mutation's: its lease was taken over by
    /// another claim (or an operator released or closed it). Nothing was written; the old
    /// holder must stop working on the mutation.
    #[error(
        "mutation {id}: the claim with token {token} lost its lease; the mutation is '{state}' \
         under token {current_token}{}",
        Holder(holder.as_deref())
    )]
    LeaseLost {
        /// The mutation.
        id: MutationId,
        /// The token the refused claim carried.
        token: u64,
        /// The mutation's token now (of the claim that holds or last held it).
        current_token: u64,
        /// Who holds it now, if the claimer named itself.
        holder: Option<String>,
        /// The mutation's state now.
        state: MutationState,
        /// Until when the current holder's lease runs.
        lease_until: Option<Timestamp>,
    },
    /// Live edits were already committed for this mutation under an earlier claim (before a
    /// takeover): they are not applied twice. Mark the mutation instead.
    #[error(
        "mutation {id}: live edits were already committed under token {edited_by}; \
         mark the mutation instead of applying them again"
    )]
    EditsCommitted {
        /// The mutation.
        id: MutationId,
        /// The token of the claim that committed them.
        edited_by: u64,
    },
    /// The version is at the maximum and cannot be bumped.
    #[error(transparent)]
    VersionOverflow(#[from] VersionOverflow),
    /// An argument is unusable (empty or over-long name, text too long, a non-finite
    /// coordinate, a typed step that returned another topology).
    #[error("invalid {field}: {problem}")]
    Invalid {
        /// Which argument.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A stored row does not hold a valid value; reading other rows still works.
    #[error("corrupt row in {table} (id {row}): {problem}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's id (or key).
        row: String,
        /// What is wrong, naming the column and value.
        problem: String,
    },
    /// The backend's driver failed (I/O, SQL, pool).
    ///
    /// The message already carries the driver's text, so this variant reports no `source()`
    /// (error printers would repeat it); reach the driver's error with
    /// [`BackendError::get_ref`].
    #[error("store backend error: {0}")]
    Backend(BackendError),
    /// The connection to the server was lost after the write's `COMMIT` was sent, and the
    /// store could not learn whether the server committed it: **the write may or may not
    /// have been applied**. Not a refusal: re-read (e.g. the topology's version, the queue)
    /// to learn which, before writing again.
    ///
    /// A backend returns it only when it cannot tell: when it can, it reports the write's
    /// own result (committed) or runs it again (aborted). `source()` is the failure that
    /// left the outcome open.
    #[error(
        "{operation}: the outcome is unknown, the write may or may not have been applied \
         (the connection was lost after COMMIT was sent, and {why}); re-read before writing again"
    )]
    OutcomeUnknown {
        /// The operation, e.g. `"edit"`.
        operation: &'static str,
        /// Why the outcome could not be learned.
        why: String,
        /// The failure that left the outcome open (a lost connection, a timeout).
        #[source]
        cause: BackendError,
    },
    /// A call did not finish within one of the store's bounds (waiting for a pooled
    /// connection, for a new connection, or for the server's answers). Nothing was written:
    /// a write whose bound passed after its `COMMIT` was sent is resolved as the other
    /// lost commits are (its result, a run again, or
    /// [`OutcomeUnknown`](Self::OutcomeUnknown)), never reported as this.
    #[error("{operation}: timed out after {} waiting for {waiting_for}; nothing was written", Secs(*after))]
    Timeout {
        /// The operation, e.g. `"get_topology"`.
        operation: &'static str,
        /// What the call was waiting for, e.g. `"a free pooled connection"`.
        waiting_for: &'static str,
        /// The bound that passed.
        after: Duration,
    },
}

/// A holder's name in a message, when there is one.
struct Holder<'a>(Option<&'a str>);

impl fmt::Display for Holder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, " held by {}", Quoted(name)),
            None => Ok(()),
        }
    }
}

/// A duration as messages show it: seconds with up to three decimals.
struct Secs(Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis.is_multiple_of(1000) {
            write!(f, "{} s", millis / 1000)
        } else {
            write!(f, "{:.3} s", self.0.as_secs_f64())
        }
    }
}

impl From<BackendError> for StoreError {
    fn from(error: BackendError) -> Self {
        Self::Backend(error)
    }
}

impl StoreError {
    /// The precedence rank of this error when several apply (lower wins).
    ///
    /// Backends use it to pick the error to report from the checks of one call.
    #[must_use]
    pub fn precedence(&self) -> u8 {
        match self {
            Self::NotFound { .. } => 0,
            Self::NotEditable(_)
            | Self::MutationState { .. }
            | Self::LeaseLost { .. }
            | Self::EditsCommitted { .. } => 1,
            Self::StaleStatus { .. } => 2,
            Self::LanInUse { .. } | Self::ForeignEnd { .. } | Self::Invalid { .. } => 3,
            Self::IllegalTransition { .. } => 4,
            Self::VersionConflict(_) => 5,
            Self::Duplicate { .. } => 6,
            Self::VersionOverflow(_) => 7,
            Self::Corrupt { .. }
            | Self::Backend(_)
            | Self::OutcomeUnknown { .. }
            | Self::Timeout { .. } => 8,
        }
    }

    /// Of two outcomes, the error that takes precedence (the first on a tie).
    #[must_use]
    #[inline]
    pub fn first(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.precedence() < a.precedence() {
                b
            } else {
                a
            }),
            (a, b) => a.or(b),
        }
    }

    /// Is this a [`VersionConflict`](Self::VersionConflict)?
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::VersionConflict(_))
    }

    /// Is this an [`OutcomeUnknown`](Self::OutcomeUnknown): a write that may or may not
    /// have been applied?
    ///
    /// ```
    /// use topostate::store::{Entity, StoreError};
    ///
    /// assert!(!StoreError::NotFound { entity: Entity::Lan, id: 7 }.is_outcome_unknown());
    /// ```
    #[must_use]
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::OutcomeUnknown { .. })
    }

    /// Is this a [`Timeout`](Self::Timeout): a call that ran out of its time, having
    /// written nothing?
    ///
    /// ```
    /// use std::time::Duration;
    /// use topostate::store::StoreError;
    ///
    /// let e = StoreError::Timeout {
    ///     operation: "get_topology",
    ///     waiting_for: "a free pooled connection",
    ///     after: Duration::from_millis(1500),
    /// };
    /// assert!(e.is_timeout());
    /// assert_eq!(
    ///     e.to_string(),
    ///     "get_topology: timed out after 1.500 s waiting for a free pooled connection; \
    ///      nothing was written"
    /// );
    /// ```
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
}
