//! `audit DB`: every problem in a SQLite database or a PostgreSQL schema written by the
//! store, found without writing a byte.
//!
//! A file is opened read-only (`SQLITE_OPEN_READ_ONLY`, and `query_only` on top); a
//! PostgreSQL URL is read inside a `READ ONLY` transaction. Either is read with plain SQL
//! over the raw tables rather than through the store, which refuses corrupt files and rows:
//! the audit has to see exactly those. Both hand the same raw values to one set of checks.

mod finding;
mod scan;
mod source;

use std::io::{IsTerminal as _, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use serde::Serialize;

use self::finding::Finding;
use self::scan::{Checked, require_store_tables};
use self::source::Source;
use crate::output::{Format, Outcome, write_json};

/// How long to wait for a writer holding a lock the audit needs to read.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// From this many rows on, the audit shows a progress bar (on a terminal).
const LARGE: u64 = 20_000;

/// What `audit --format json` prints.
#[derive(Debug, Serialize)]
struct Report<'a> {
    database: String,
    schema_version: Option<i64>,
    findings: &'a [Finding],
    summary: Summary,
}

/// The counts closing a report.
#[derive(Debug, Serialize)]
struct Summary {
    findings: usize,
    checked: Checked,
}

/// `audit DB`: prints every finding and a summary; [`Outcome::Problem`] if there are any.
///
/// # Errors
///
/// A missing file, a file that is not a SQLite database or not one written by the store
/// (a table is missing); a PostgreSQL server that cannot be reached, or a schema that is
/// missing or not the store's; `schema` with a file; a SQL error while reading, or an I/O
/// error on `out`.
pub fn audit(
    db: &Path,
    schema: Option<&str>,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let (mut src, shown): (Box<dyn Source>, String) =
        match db.to_str().filter(|db| source::is_postgres_url(db)) {
            Some(url) => {
                let (src, place) = source::Postgres::open(url, schema)?;
                (Box::new(src), place)
            }
            None => {
                if schema.is_some() {
                    bail!(
                        "--schema applies to a PostgreSQL URL (postgres://...), not to the file {}",
                        db.display()
                    );
                }
                (Box::new(open(db)?), db.display().to_string())
            }
        };
    let total = scan::total_rows(&mut *src).with_context(|| format!("cannot read {shown}"))?;
    let progress = progress_bar(total);
    let result = scan::scan(&mut *src, &progress);
    progress.finish_and_clear();
    drop(src);
    let scan = result.with_context(|| {
        format!("cannot read {shown}: its tables do not have the columns the store writes")
    })?;

    let findings = &scan.findings;
    match format {
        Format::Json => write_json(
            out,
            &Report {
                database: shown.clone(),
                schema_version: scan.schema_version,
                findings,
                summary: Summary {
                    findings: findings.len(),
                    checked: scan.checked,
                },
            },
        )?,
        Format::Text => {
            for finding in findings {
                writeln!(out, "{finding}")?;
            }
            let c = scan.checked;
            let checked = format!(
                "{} topologies, {} lans, {} deckies, {} edges, {} status events, {} mutations checked",
                c.topologies, c.lans, c.deckies, c.edges, c.status_events, c.mutations
            );
            match findings.len() {
                0 => writeln!(out, "no findings in {shown} ({checked})")?,
                1 => writeln!(out, "1 finding in {shown} ({checked})")?,
                n => writeln!(out, "{n} findings in {shown} ({checked})")?,
            }
        }
    }
    Ok(if findings.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Problem
    })
}

/// Opens `db` read-only and makes sure it is a store's database.
fn open(db: &Path) -> anyhow::Result<Connection> {
    let shown = db.display();
    match std::fs::metadata(db) {
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
    // Read-only and no create: the audit must never write, not even a new empty file.
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {shown} read-only"))?;
    conn.pragma_update(None, "query_only", true)
        .and_then(|()| conn.busy_timeout(BUSY_TIMEOUT))
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
        Err(e) => return Err(e).with_context(|| format!("cannot read {shown}")),
    };
    require_store_tables(&shown, "database", &tables)?;
    Ok(conn)
}

/// A progress bar on stderr for a large database, hidden when stderr is not a terminal.
fn progress_bar(total: u64) -> ProgressBar {
    if total < LARGE || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("auditing {bar:40} {pos}/{len} rows ({eta} left)")
    {
        bar.set_style(style);
    }
    bar
}
