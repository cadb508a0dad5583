//! A SQLite file opened for the audit so that nothing beside it is created or changed.
//!
//! SQLite keeps files beside a database in use: `-wal` and `-shm` in WAL mode (the
//! store's), `-journal` in rollback mode. The store's last connection removes them when it
//! closes, so whether they are there tells the audit how to read:
//!
//! - **Quiet** (none of them there, or only an empty `-wal`): no writer has the file open.
//!   It is opened `mode=ro&immutable=1`, so SQLite takes no lock and creates no file: this
//!   reads a file in a read-only directory, on a read-only mount, or as a user who may read
//!   the file and nothing else. As an immutable file is never re-checked, the file's size,
//!   times and inode are compared before and after the scan; if a writer came and changed
//!   it meanwhile, the scan is thrown away and run again (see [`Attempt`]).
//! - **Live** (a `-shm` or `-journal` there): a writer has it open, or one stopped without
//!   closing. It is opened `mode=ro`, which uses the writer's files as they are (read-only
//!   when the audit may not write them) and creates none, and the whole scan runs in one
//!   read transaction: a consistent snapshot of the last commit before the scan began,
//!   whatever the writer commits meanwhile.
//! - **In use** ([`InUse`], exit 3): a `-wal` holding data without its `-shm` (reading it
//!   would create the `-shm`, skipping it would miss committed writes), a lock held past the
//!   busy timeout, a read that would need SQLite to write (recover a `-wal`, roll back a
//!   `-journal`), or a file that changed under every attempt.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use rusqlite::config::DbConfig;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::scan::require_store_tables;
use super::source::{Dialect, Source};

/// How long to wait for a writer holding a lock the audit needs to read.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The audit of a file in use could not get a consistent snapshot without writing; the
/// command exits 3 with this message.
#[derive(Debug)]
pub struct InUse {
    /// The file, as given.
    pub path: PathBuf,
    /// Why no consistent snapshot could be read.
    pub why: String,
}

impl fmt::Display for InUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot audit {}: it is in use: {}; audit it when the writer is done, or audit a copy",
            self.path.display(),
            self.why
        )
    }
}

impl std::error::Error for InUse {}

/// How the file was opened, from the files beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Immutable: nobody has it open.
    Quiet,
    /// Read-only inside one read transaction: a writer has it open.
    Live,
}

/// What identifies one version of the file's bytes: a write changes the modification
/// time (and the change time, which no user can set back); a replacement changes the inode.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    changed: (i64, i64),
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt as _;
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            changed: (meta.ctime(), meta.ctime_nsec()),
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
        })
    }
}

/// The length of `path` + `suffix`, if that file exists.
fn beside(path: &Path, suffix: &str) -> std::io::Result<Option<u64>> {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    match std::fs::metadata(&name) {
        Ok(meta) => Ok(Some(meta.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The `file:` URI SQLite opens for `path` with `query` (percent-encoded, so no character
/// of the path can be read as URI syntax).
fn uri(path: &Path, query: &str) -> anyhow::Result<String> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("cannot resolve the path {}", path.display()))?;
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt as _;
        absolute.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = match absolute.to_str() {
        Some(text) => text.replace('\\', "/").into_bytes(),
        None => bail!(
            "cannot audit {}: the path is not valid Unicode",
            path.display()
        ),
    };
    // An empty authority, so a path starting with `//` stays a path.
    let mut out = String::from("file://");
    for byte in bytes {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(byte));
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out.push('?');
    out.push_str(query);
    Ok(out)
}

/// One read of a SQLite file, inside one read transaction.
#[derive(Debug)]
pub struct SqliteFile {
    conn: Connection,
    /// The path as given, for messages.
    path: PathBuf,
    /// The file itself, past any symbolic link.
    real: PathBuf,
    mode: Mode,
    /// For [`Mode::Quiet`]: the file as it was before it was opened.
    before: Option<Stamp>,
}

/// Whether a scan's read of the file can be trusted.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Consistent: report it.
    Consistent,
    /// The file changed while it was read immutable: read it again.
    Changed,
}

impl SqliteFile {
    /// Opens `path` read-only, in the mode the files beside it call for, starts the read
    /// transaction and makes sure it is a store's database.
    ///
    /// # Errors
    ///
    /// A missing file, a directory, a file that is not SQLite or not the store's; an
    /// [`InUse`] refusal (see the module docs).
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let shown = path.display();
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                bail!("cannot audit {shown}: it is a directory, expected a SQLite database file")
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!(
                    "cannot audit {shown}: no such file (expected a SQLite database written by the topostate store)"
                )
            }
            Err(e) => return Err(e).with_context(|| format!("cannot audit {shown}")),
        }
        // SQLite keeps its files beside the real file, past any symbolic link.
        let real = std::fs::canonicalize(path).with_context(|| format!("cannot audit {shown}"))?;
        let look = |suffix| beside(&real, suffix).with_context(|| format!("cannot audit {shown}"));
        let (wal, shm, journal) = (look("-wal")?, look("-shm")?, look("-journal")?);
        let mode = if shm.is_some() || journal.is_some() {
            Mode::Live
        } else if wal.is_some_and(|len| len > 0) {
            return Err(in_use(
                path,
                "its -wal file holds writes but its -shm file is missing (a writer in exclusive \
                 mode, or one that stopped without closing); opening it once with the store \
                 recovers it"
                    .to_owned(),
            ));
        } else {
            Mode::Quiet
        };
        let before = match mode {
            Mode::Quiet => Some(Stamp::of(&real).with_context(|| format!("cannot audit {shown}"))?),
            Mode::Live => None,
        };
        let query = match mode {
            Mode::Quiet => "mode=ro&immutable=1",
            Mode::Live => "mode=ro",
        };
        let conn = Connection::open_with_flags(
            uri(&real, query)?,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| refusal(path, mode, e, "cannot open", "read-only"))?;
        // A read-only connection cannot checkpoint; saying so keeps its close from trying.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map(drop)
            .and_then(|()| conn.pragma_update(None, "query_only", true))
            .and_then(|()| conn.busy_timeout(BUSY_TIMEOUT))
            // Every read until the end of the scan sees one snapshot.
            .and_then(|()| conn.execute_batch("BEGIN DEFERRED"))
            .with_context(|| format!("cannot open {shown} read-only"))?;

        let tables = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            });
        let tables = match tables {
            Ok(tables) => tables,
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
                bail!("cannot audit {shown}: not a SQLite database ({e})")
            }
            Err(e) => return Err(refusal(path, mode, e, "cannot read", "")),
        };
        require_store_tables(&shown, "database", &tables)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
            real,
            mode,
            before,
        })
    }

    /// Ends the read and says whether what was read is one consistent state of the file.
    ///
    /// # Errors
    ///
    /// The file cannot be looked at any more.
    pub fn finish(self) -> anyhow::Result<Attempt> {
        let Self {
            conn,
            path,
            real,
            before,
            ..
        } = self;
        // Closing first, so the check below covers every read.
        drop(conn);
        let Some(before) = before else {
            // One read transaction: SQLite guarantees the snapshot.
            return Ok(Attempt::Consistent);
        };
        let after = Stamp::of(&real).with_context(|| format!("cannot audit {}", path.display()))?;
        Ok(if after == before {
            Attempt::Consistent
        } else {
            Attempt::Changed
        })
    }

    /// An error of the scan as the audit reports it: a lock or a needed write is an
    /// [`InUse`] refusal, anything else stays as it is.
    pub fn classify(&self, error: anyhow::Error) -> anyhow::Error {
        match error.downcast::<rusqlite::Error>() {
            Ok(e) => refusal(&self.path, self.mode, e, "", ""),
            Err(other) => other,
        }
    }
}

/// An [`InUse`] error built from `why`.
fn in_use(path: &Path, why: String) -> anyhow::Error {
    anyhow::Error::new(InUse {
        path: path.to_owned(),
        why,
    })
}

/// `error` as an [`InUse`] refusal when it says a writer is in the way, else with the
/// context `{doing} {path} {how}` (none when `doing` is empty).
fn refusal(
    path: &Path,
    mode: Mode,
    error: rusqlite::Error,
    doing: &str,
    how: &str,
) -> anyhow::Error {
    match (error.sqlite_error_code(), mode) {
        (Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked), _) => in_use(
            path,
            format!(
                "a writer held a lock for more than {} s ({error})",
                BUSY_TIMEOUT.as_secs()
            ),
        ),
        (Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen), Mode::Live) => in_use(
            path,
            format!(
                "reading it needs a write (recovering the writer's -wal and -shm files, or \
                 rolling back its -journal), which a read-only audit does not do ({error})"
            ),
        ),
        _ if doing.is_empty() => error.into(),
        _ => anyhow::Error::new(error).context(
            format!("{doing} {} {how}", path.display())
                .trim_end()
                .to_owned(),
        ),
    }
}

impl Source for SqliteFile {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn has_table(&mut self, name: &str) -> anyhow::Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [name],
            |r| r.get(0),
        )?)
    }

    fn rows(&mut self, sql: &str) -> anyhow::Result<Vec<Vec<Value>>> {
        let mut stmt = self.conn.prepare(sql)?;
        let width = stmt.column_count();
        let rows = stmt
            .query_map([], |row| {
                (0..width)
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store's database in a fresh directory, last changed long ago (so a change now
    /// shows in the modification time even where the clock is coarse).
    fn quiet_store() -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("lab.sqlite");
        drop(topostate::store::SqliteStore::open(&path)?);
        std::fs::File::options()
            .append(true)
            .open(&path)?
            .set_modified(SystemTime::UNIX_EPOCH + Duration::from_hours(24))?;
        Ok((dir, path))
    }

    #[test]
    fn a_quiet_file_changed_while_read_is_reported_changed() -> anyhow::Result<()> {
        let (_dir, path) = quiet_store()?;
        let file = SqliteFile::open(&path)?;
        assert_eq!(file.mode, Mode::Quiet);
        // A writer comes, commits and leaves (checkpointing into the file) during the read.
        let writer = Connection::open(&path)?;
        writer.execute(
            "INSERT INTO topologies (name, status, version, reason, needs_resync, created_at, status_changed_at)
             VALUES ('late', 'pending', 1, NULL, 0, 1, 1)",
            [],
        )?;
        drop(writer);
        assert_eq!(file.finish()?, Attempt::Changed);

        let file = SqliteFile::open(&path)?;
        assert_eq!(file.finish()?, Attempt::Consistent);
        Ok(())
    }

    #[test]
    fn a_file_with_a_writers_shared_memory_is_read_live() -> anyhow::Result<()> {
        let (_dir, path) = quiet_store()?;
        let writer = Connection::open(&path)?;
        writer.query_row("SELECT count(*) FROM topologies", [], |r| {
            r.get::<_, i64>(0)
        })?;
        let file = SqliteFile::open(&path)?;
        assert_eq!(file.mode, Mode::Live);
        assert_eq!(file.finish()?, Attempt::Consistent);
        Ok(())
    }

    #[test]
    fn uris_escape_every_character_uri_syntax_uses() -> anyhow::Result<()> {
        let got = uri(Path::new("/d/a b?c#d%e&f.sqlite"), "mode=ro")?;
        assert_eq!(got, "file:///d/a%20b%3Fc%23d%25e%26f.sqlite?mode=ro");
        Ok(())
    }

    #[test]
    fn uris_keep_a_leading_double_slash_in_the_path() -> anyhow::Result<()> {
        assert_eq!(uri(Path::new("//srv/x"), "q")?, "file:////srv/x?q");
        Ok(())
    }
}
