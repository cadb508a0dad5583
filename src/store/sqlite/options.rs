//! [`SqliteOptions`]: how a [`SqliteStore`] opens its file, and how it reads and writes it.

use std::path::Path;
use std::time::Duration;

use crate::store::StoreError;

use super::SqliteStore;

/// How long a connection waits for another one's write lock before giving up, by default.
pub(super) const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections a file store opens at most, by default.
pub(super) const DEFAULT_READ_POOL: usize = 4;

/// Writes committed together at most, by default.
pub(super) const DEFAULT_MAX_GROUP: usize = 32;

/// What a commit waits for before the store answers, and so what survives a crash
/// (SQLite's `PRAGMA synchronous`, in WAL mode).
///
/// Either way a crash of the process loses nothing that was answered, and the file stays
/// consistent whatever happens: only the last commits before a power loss (or an operating
/// system crash) are at stake.
///
/// ```
/// use topostate::store::Synchronous;
///
/// assert_eq!(Synchronous::default(), Synchronous::Normal);
/// assert_eq!(Synchronous::Full.as_str(), "FULL");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Synchronous {
    /// Commits are written to the write-ahead log but not flushed to the disk one by one
    /// (the log is flushed at checkpoints): a write that was answered survives a crash of
    /// the process, but the last few may be lost if the machine loses power. The default.
    #[default]
    Normal,
    /// Every commit flushes the write-ahead log to the disk before the store answers: a
    /// write that was answered survives a power loss too. Each commit then costs a flush,
    /// which group commit shares among the writes committed together.
    Full,
}

impl Synchronous {
    /// The pragma's value as SQLite spells it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// The settings a [`SqliteStore`] is opened with; [`SqliteStore::open`] and
/// [`SqliteStore::open_in_memory`] use the defaults.
///
/// | setting | default | what it does |
/// |---|---|---|
/// | [`busy_timeout`](Self::busy_timeout) | 5 s | how long a connection waits for another one's lock |
/// | [`synchronous`](Self::synchronous) | [`Synchronous::Normal`] | what a commit waits for (power-loss durability) |
/// | [`read_pool`](Self::read_pool) | 4 | read connections beside the writer, on a file |
/// | [`open_only`](Self::open_only) | off | refuse a file that holds no store instead of creating one |
/// | [`max_group`](Self::max_group) | 32 | writes committed together at most (group commit) |
///
/// ```
/// use std::time::Duration;
/// use topostate::store::{Foreign, SqliteOptions, StoreError, Synchronous, TypedStore};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("lab.db");
/// // Open-only refuses a file that holds no store, and makes none:
/// let refused = SqliteOptions::new().open_only().open(&path).unwrap_err();
/// assert!(matches!(refused, StoreError::NotAStore { found: Foreign::Missing, .. }));
/// assert!(!path.exists());
///
/// let store = SqliteOptions::new()
///     .busy_timeout(Duration::from_secs(10))
///     .synchronous(Synchronous::Full)
///     .read_pool(8)
///     .open(&path)?;
/// let lab = store.create("lab")?;
/// drop(store);
/// // Now that the file holds a store, open-only opens it:
/// let again = SqliteOptions::new().open_only().open(&path)?;
/// assert_eq!(again.load(lab.id())?.version(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct SqliteOptions {
    pub(super) busy_timeout: Duration,
    pub(super) synchronous: Synchronous,
    pub(super) read_pool: usize,
    pub(super) open_only: bool,
    pub(super) max_group: usize,
    pub(super) linger: Option<Duration>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl SqliteOptions {
    /// The defaults (see the table above).
    pub const fn new() -> Self {
        Self {
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            synchronous: Synchronous::Normal,
            read_pool: DEFAULT_READ_POOL,
            open_only: false,
            max_group: DEFAULT_MAX_GROUP,
            linger: None,
        }
    }

    /// How long a connection waits for a lock another connection (of this process or
    /// another) holds before the operation fails with a busy [`StoreError::Backend`].
    pub const fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// What a commit waits for before the store answers (see [`Synchronous`]). Only files
    /// have a disk to wait for; a store in memory ignores it.
    pub const fn synchronous(mut self, mode: Synchronous) -> Self {
        self.synchronous = mode;
        self
    }

    /// How many read-only connections a store on a file opens at most (lazily, as
    /// concurrent reads need them) beside its one write connection. Reads on them run side
    /// by side with each other and with the writer; 0 runs every read on the write
    /// connection, one at a time. A store in memory has no other connection to its
    /// database and reads on the writer whatever this says.
    pub const fn read_pool(mut self, connections: usize) -> Self {
        self.read_pool = connections;
        self
    }

    /// Opens only a file that already holds a store: a missing file, an empty one or an
    /// SQLite database with no tables is refused with [`StoreError::NotAStore`] instead of
    /// getting the schema, and nothing is created (no file, no `-wal`/`-shm` beside it).
    pub const fn open_only(mut self) -> Self {
        self.open_only = true;
        self
    }

    /// The most writes committed in one transaction (group commit; at least 1). Writes
    /// that arrive while the writer is busy queue up, and the thread holding the write
    /// connection runs them, each in its own savepoint, and commits them together; 1
    /// commits every write alone.
    pub const fn max_group(mut self, writes: usize) -> Self {
        self.max_group = if writes == 0 { 1 } else { writes };
        self
    }

    /// Test-only: every write joins its group through a savepoint (the first one too), and
    /// pauses for `linger` before it queues for the writer, so that writes made at once
    /// arrive together and share groups; a test suite then runs every write grouped.
    // Not public API.
    #[doc(hidden)]
    pub const fn force_grouping(mut self, linger: Duration) -> Self {
        self.linger = Some(linger);
        self
    }

    /// Opens the store in the SQLite file at `path` with these settings: see
    /// [`SqliteStore::open`], which is `SqliteOptions::new().open(path)`.
    ///
    /// # Errors
    ///
    /// Those of [`SqliteStore::open`]; with [`open_only`](Self::open_only), also
    /// [`StoreError::NotAStore`] with [`Foreign::Missing`](crate::store::Foreign::Missing)
    /// or [`Foreign::Empty`](crate::store::Foreign::Empty) for a file that holds no store.
    pub fn open(self, path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path.as_ref(), &self)
    }

    /// Opens a new, empty store in memory with these settings (the read pool, open-only
    /// and synchronous settings do not apply to memory).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite cannot allocate the database.
    pub fn open_in_memory(self) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_in_memory_with(&self)
    }
}
