//! [`StoreError`]: every way a store operation can refuse or fail.

use std::boxed::Box;
use std::fmt;
use std::path::PathBuf;
use std::string::String;
use std::time::Duration;
use std::vec::Vec;

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

/// An error from a backend: what the store was doing, with the driver's error (I/O, SQL,
/// pool, TLS) as its [`source()`](std::error::Error::source). Its type does not change
/// with features, so matching on [`StoreError`] is the same in every build.
///
/// Its message is the store's own words (the operation, the database, what it was waiting
/// for); the driver's error follows in the `source()` chain, and its cause (e.g. the
/// `std::io::Error` of a refused connection) after it. No message repeats another's, so a
/// reporter that prints the chain (`anyhow`'s `{:#}`, or a loop over `source()`) shows each
/// part once:
///
/// ```
/// use std::error::Error as _;
/// use std::io;
/// use topostate::store::BackendError;
///
/// let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
/// let e = BackendError::with_context("get_topology: connecting to db.example:5432", refused);
/// assert_eq!(e.to_string(), "get_topology: connecting to db.example:5432");
/// assert_eq!(e.source().map(|s| s.to_string()).as_deref(), Some("connection refused"));
/// assert!(e.get_ref().is::<io::Error>());
/// ```
#[derive(Debug)]
pub struct BackendError {
    /// What the store was doing; `None` when the error is the whole story.
    context: Option<String>,
    driver: Driver,
}

impl BackendError {
    /// An error that is the whole story: a message (`"the version bump matched no row"`) or
    /// an error whose own message is shown, followed by its sources.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self {
            context: None,
            driver: Driver {
                error: error.into(),
                words: None,
            },
        }
    }

    /// The driver's `error`, met while the store was doing `context` (its message), e.g.
    /// `"edit: connecting to PostgreSQL database 'lab' on db.example:5432"`.
    pub fn with_context(
        context: impl Into<String>,
        error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            context: Some(context.into()),
            driver: Driver {
                error: error.into(),
                words: None,
            },
        }
    }

    /// As [`with_context`](Self::with_context), the driver's error shown as `words`, which
    /// sum up its sources too (for a driver whose error and source say the same thing in
    /// different words).
    #[cfg(feature = "sqlite")]
    pub(crate) fn with_driver_words(
        context: impl Into<String>,
        words: String,
        error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            context: Some(context.into()),
            driver: Driver {
                error: error.into(),
                words: Some(words),
            },
        }
    }

    /// The driver's error (e.g. a `tokio_postgres::Error` or a `rusqlite::Error`), to
    /// downcast when you know the backend.
    #[must_use]
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.driver.error
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.context {
            Some(context) => f.write_str(context),
            None => fmt::Display::fmt(&self.driver, f),
        }
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if self.context.is_none() {
            return self.driver.source();
        }
        if self.driver.trims() {
            Some(&self.driver)
        } else {
            // Shown as it is: the driver's own error, so the chain can be downcast.
            Some(&*self.driver.error)
        }
    }
}

/// A driver's error as the chain shows it: its own words, without the part that repeats
/// its source's message (some drivers end their message with their cause's, some do not),
/// then that source.
#[derive(Debug)]
struct Driver {
    error: Box<dyn std::error::Error + Send + Sync + 'static>,
    /// Set by the backend: shown instead of the error and its sources.
    words: Option<String>,
}

impl Driver {
    /// The error's own words and the source to show after them.
    fn split(&self) -> (String, Option<&(dyn std::error::Error + 'static)>) {
        if let Some(words) = &self.words {
            return (words.clone(), None);
        }
        let whole = self.error.to_string();
        let Some(source) = self.error.source() else {
            return (whole, None);
        };
        let said = source.to_string();
        if whole == said {
            // It only repeats its source: show that once, then what is under it.
            return (whole, source.source());
        }
        match whole.strip_suffix(&said).and_then(|w| w.strip_suffix(": ")) {
            Some(own) if !own.is_empty() => (String::from(own), Some(source)),
            _ => (whole, Some(source)),
        }
    }

    /// Does the chain need this node instead of the driver's error (its message repeats
    /// its source's)?
    fn trims(&self) -> bool {
        self.words.is_some()
            || self
                .error
                .source()
                .is_some_and(|source| self.error.to_string().ends_with(&source.to_string()))
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.split().0)
    }
}

impl std::error::Error for Driver {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.split().1
    }
}

/// What a file that is not a topostate store holds, as [`StoreError::NotAStore`] reports it.
///
/// ```
/// use topostate::store::Foreign;
///
/// let found = Foreign::Tables(vec![String::from("lans"), String::from("users")]);
/// assert_eq!(
///     found.to_string(),
///     "an SQLite database with no topostate stamp, holding 'lans', 'users'"
/// );
/// assert_eq!(Foreign::NotSqlite.to_string(), "not an SQLite database");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Foreign {
    /// The file does not begin with SQLite's header.
    NotSqlite,
    /// An SQLite database with no topostate stamp, and these tables and views (sorted by
    /// name; SQLite's own `sqlite_*` tables left out).
    Tables(Vec<String>),
    /// No file at the path, and the store was opened open-only (so it made none).
    Missing,
    /// An empty file, or an SQLite database with no tables, and the store was opened
    /// open-only (so it did not create the schema).
    Empty,
}

/// The most names [`Foreign`]'s message lists; the rest are counted.
const LISTED: usize = 8;

impl fmt::Display for Foreign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSqlite => f.write_str("not an SQLite database"),
            Self::Missing => f.write_str("no such file, and open-only creates none"),
            Self::Empty => f.write_str("an empty database, and open-only creates no schema"),
            Self::Tables(names) => {
                f.write_str("an SQLite database with no topostate stamp")?;
                for (i, name) in names.iter().take(LISTED).enumerate() {
                    let lead = if i == 0 { ", holding " } else { ", " };
                    write!(f, "{lead}{}", Quoted(name))?;
                }
                if names.len() > LISTED {
                    write!(f, " and {} more", names.len() - LISTED)?;
                }
                Ok(())
            }
        }
    }
}

/// Why a store operation refused or failed.
///
/// When several apply, the first in this order wins: [`NotFound`](Self::NotFound) >
/// [`NotEditable`](Self::NotEditable) > domain refusals ([`LanInUse`](Self::LanInUse),
/// [`ForeignEnd`](Self::ForeignEnd), [`BadReference`](Self::BadReference)) >
/// [`VersionConflict`](Self::VersionConflict) >
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
    WrongMutationState {
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
    /// An edit names a row of its own batch ([`RowRef::Batch`](super::RowRef::Batch)) that
    /// no earlier edit of the batch adds. Nothing of the batch is written.
    #[error("edit {edit}: its {field} refers to edit {target}, {problem}")]
    BadReference {
        /// The referring edit, by its index in the batch (from 0).
        edit: usize,
        /// Which of its references: `"lan id"`, `"decky id"`, `"edge decky"` or
        /// `"edge lan"`.
        field: &'static str,
        /// The edit index it names.
        target: usize,
        /// Why that edit cannot be named.
        problem: RefProblem,
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
    // ---- Refusals of a store's file or schema as a whole --------------------------------
    /// The file given to open a store is neither empty nor a topostate store; it was refused
    /// before anything was written to it, and left exactly as it was.
    #[error("{} is not a topostate store ({found}); it was left untouched", path.display())]
    NotAStore {
        /// The file, as given to `open`.
        path: PathBuf,
        /// What the file holds instead.
        found: Foreign,
    },
    /// Another process migrated the store's schema while this handle was open (a rolling
    /// upgrade); nothing was read or written in the old layout. Reopen the store with a
    /// build that knows schema version `found`.
    #[error(
        "the schema of {place} changed under this store: this handle was opened at schema \
         version {opened} and the store is now at schema version {found}; nothing was \
         written, reopen it with a build that knows schema version {found}"
    )]
    SchemaChanged {
        /// The file or database.
        place: String,
        /// The schema version this handle was opened at (this build's).
        opened: i64,
        /// The schema version stored now.
        found: i64,
    },
    // ---- end of the store-wide refusals ---------------------------------------------------
    /// The backend's driver failed (I/O, SQL, pool, TLS).
    ///
    /// The message says what the store was doing; the driver's error is its `source()`, and
    /// the driver's cause (e.g. an I/O error) the next (see [`BackendError`]). Reach the
    /// driver's error itself with [`BackendError::get_ref`].
    #[error(transparent)]
    Backend(BackendError),
    /// The connection to the server was lost after the write's `COMMIT` was sent, and the
    /// store could not learn whether the server committed it: **the write may or may not
    /// have been applied**. Not a refusal: re-read (e.g. the topology's version, the queue)
    /// to learn which, before writing again. (Also when the server did commit a write
    /// whose own answer was lost with the connection, so that its result cannot be
    /// returned; `why` then says so.)
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
        /// The last failure before the bound passed, if the call met one (e.g. the lost
        /// connection of its last attempt, run again until the bound passed).
        #[source]
        cause: Option<BackendError>,
    },
    /// A TLS connection to the server could not be made as the connection's `sslmode`
    /// asks: the server's certificate was refused (not signed by a trusted root, or not
    /// issued for the host name), or the server does not offer TLS. Nothing was written.
    /// `source()` is the driver's TLS error, then its cause (e.g. rustls's verdict on the
    /// certificate).
    #[error("{operation}: no TLS connection to {place} (sslmode={sslmode})")]
    Tls {
        /// The operation, e.g. `"connect"`.
        operation: &'static str,
        /// The server, as messages show it (never the password).
        place: String,
        /// The `sslmode` that was asked for.
        sslmode: &'static str,
        /// The driver's TLS error.
        #[source]
        cause: BackendError,
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

/// Why a batch-local reference ([`RowRef::Batch`](super::RowRef::Batch)) is refused.
///
/// ```
/// use topostate::store::{Entity, RefProblem};
///
/// assert_eq!(RefProblem::NotEarlier.to_string(), "which does not come before it");
/// assert_eq!(RefProblem::OutOfBatch { len: 2 }.to_string(), "but the batch has 2 edits");
/// assert_eq!(RefProblem::OutOfBatch { len: 1 }.to_string(), "but the batch has 1 edit");
/// assert_eq!(
///     RefProblem::NotAnAdd { expected: Entity::Lan }.to_string(),
///     "which does not add a lan"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefProblem {
    /// The edit named is the referring edit itself or comes after it: its row does not
    /// exist yet when the reference is read.
    NotEarlier,
    /// There is no edit with that index.
    OutOfBatch {
        /// How many edits the batch has.
        len: usize,
    },
    /// The edit named does not add a row of the kind the reference needs (it adds
    /// another kind, or it changes or deletes a row).
    NotAnAdd {
        /// The kind of row the reference needs.
        expected: Entity,
    },
}

impl fmt::Display for RefProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotEarlier => f.write_str("which does not come before it"),
            Self::OutOfBatch { len: 1 } => f.write_str("but the batch has 1 edit"),
            Self::OutOfBatch { len } => write!(f, "but the batch has {len} edits"),
            Self::NotAnAdd { expected } => write!(f, "which does not add a {expected}"),
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
            | Self::WrongMutationState { .. }
            | Self::LeaseLost { .. }
            | Self::EditsCommitted { .. } => 1,
            Self::StaleStatus { .. } => 2,
            Self::LanInUse { .. }
            | Self::ForeignEnd { .. }
            | Self::Invalid { .. }
            | Self::BadReference { .. } => 3,
            Self::IllegalTransition { .. } => 4,
            Self::VersionConflict(_) => 5,
            Self::Duplicate { .. } => 6,
            Self::VersionOverflow(_) => 7,
            // The store-wide refusals are found before any row is checked, so they never
            // compete with the refusals above.
            Self::NotAStore { .. } | Self::SchemaChanged { .. } => 8,
            Self::Corrupt { .. }
            | Self::Backend(_)
            | Self::OutcomeUnknown { .. }
            | Self::Timeout { .. }
            | Self::Tls { .. } => 8,
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
    ///     cause: None,
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
