//! The read pool: read-only connections on a WAL file, beside the store's one writer.
//!
//! In WAL mode a read transaction sees the last commit made before it began, and neither
//! blocks the writer nor waits for it, so reads taken off the write connection run side by
//! side. A read begins after every write its caller was answered about has committed (the
//! writer answers only after its commit), so it sees every one of them.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use std::vec::Vec;

use rusqlite::{Connection, OpenFlags};

use super::{Fail, R, configure, schema};

/// A read-only connection and what it last saw of the file's schema.
pub(super) struct Reader {
    pub(super) conn: Connection,
    pub(super) seen: schema::Marks,
}

/// Up to `max` read connections, opened as concurrent reads need them.
pub(super) struct Readers {
    path: PathBuf,
    /// What the handle saw of the schema when it opened: a connection opened later starts
    /// from it, so it notices a change made since (not only one made after it opened).
    opened_on: schema::Marks,
    busy_timeout: Duration,
    max: usize,
    state: Mutex<Idle>,
    freed: Condvar,
}

struct Idle {
    idle: Vec<Reader>,
    opened: usize,
}

impl Readers {
    /// A pool of up to `max` (at least 1) connections on the store file at `path`.
    pub(super) fn new(
        path: &Path,
        opened_on: schema::Marks,
        busy_timeout: Duration,
        max: usize,
    ) -> Self {
        Self {
            path: path.to_path_buf(),
            opened_on,
            busy_timeout,
            max: max.max(1),
            state: Mutex::new(Idle {
                idle: Vec::new(),
                opened: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// The most connections this pool opens.
    #[cfg(test)]
    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// How many connections are open now.
    #[cfg(test)]
    pub(super) fn opened(&self) -> usize {
        self.state().opened
    }

    fn state(&self) -> MutexGuard<'_, Idle> {
        // The pool's state stays consistent across a panic: nothing panics while it is held.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, a new one if fewer than `max` are open, or the next one freed.
    pub(super) fn take(&self) -> R<Lent<'_>> {
        let mut state = self.state();
        loop {
            if let Some(reader) = state.idle.pop() {
                return Ok(Lent {
                    pool: self,
                    reader: Some(reader),
                });
            }
            if state.opened < self.max {
                state.opened += 1;
                drop(state);
                return match self.connect() {
                    Ok(reader) => Ok(Lent {
                        pool: self,
                        reader: Some(reader),
                    }),
                    Err(e) => {
                        self.state().opened -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn connect(&self) -> R<Reader> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn, self.busy_timeout)?;
        Ok(Reader {
            conn,
            seen: self.opened_on,
        })
    }

    fn give_back(&self, reader: Reader) {
        let mut state = self.state();
        if reader.conn.is_autocommit() {
            state.idle.push(reader);
        } else {
            // A read that unwound mid-transaction: the connection is dropped (rolling the
            // read back) rather than lent again in that state.
            state.opened -= 1;
        }
        drop(state);
        self.freed.notify_one();
    }
}

/// A connection lent out of the pool, given back when dropped.
pub(super) struct Lent<'p> {
    pool: &'p Readers,
    reader: Option<Reader>,
}

impl Lent<'_> {
    pub(super) fn reader(&mut self) -> R<&mut Reader> {
        self.reader
            .as_mut()
            .ok_or_else(|| Fail::from(crate::store::sql::backend("a read connection was lost")))
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            self.pool.give_back(reader);
        }
    }
}
