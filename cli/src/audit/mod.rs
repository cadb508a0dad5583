//! `audit DB`: every problem in a SQLite database or a PostgreSQL schema written by the
//! store, found without writing a byte.
//!
//! A file is opened read-only so that nothing beside it is created or changed, immutable
//! when no writer has it open and in one read transaction when one has (`sqlite.rs` says
//! how each is chosen and when the audit refuses instead, with [`InUse`]). A PostgreSQL
//! connection string is read inside one `READ ONLY` transaction. Either is read with plain
//! SQL over the raw tables rather than through the store, which refuses corrupt files and
//! rows: the audit has to see exactly those. Both hand the same raw values to one set of
//! checks.

mod finding;
mod scan;
mod source;
mod sqlite;

use std::io::{IsTerminal as _, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use self::finding::{Finding, write_aligned};
use self::scan::{Checked, Scan};
use self::source::Source;
pub use self::source::postgres_conninfo;
pub use self::sqlite::InUse;
use self::sqlite::{Attempt, SqliteFile};
use crate::output::{Format, Outcome, counted, write_json};

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

/// How many times a file that a writer changed while it was read immutable is read
/// again before the audit refuses it as in use.
const ATTEMPTS: usize = 3;

/// `audit DB`: prints every finding and a summary; [`Outcome::Problem`] if there are any.
///
/// # Errors
///
/// A missing file, a file that is not a SQLite database or not one written by the store
/// (a table is missing), a file in use that cannot be read consistently without writing
/// ([`InUse`]); a PostgreSQL server that cannot be reached, or a schema that is missing or
/// not the store's; `schema` with a file; a SQL error while reading, or an I/O error on
/// `out`.
pub fn audit(
    db: &Path,
    schema: Option<&str>,
    format: Format,
    claim_age: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    // Progress is for a person watching: never in JSON, never into a pipe or a file.
    let watched = format == Format::Text
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal();
    let (scan, shown) = match source::postgres_conninfo(db) {
        Some(conninfo) => {
            let (mut src, place) = source::Postgres::open(conninfo, schema)?;
            let scan =
                scan_source(&mut src, watched, claim_age).map_err(|e| unreadable(e, &place))?;
            (scan, place)
        }
        None => {
            if schema.is_some() {
                bail!(
                    "--schema applies to a PostgreSQL connection string (postgres://... or \
                     host=... dbname=...), not to the file {}",
                    db.display()
                );
            }
            (scan_file(db, watched, claim_age)?, db.display().to_string())
        }
    };

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
            write_aligned(out, findings)?;
            let c = scan.checked;
            let checked = [
                counted(c.topologies, "topology", "topologies"),
                counted(c.lans, "lan", "lans"),
                counted(c.deckies, "decky", "deckies"),
                counted(c.edges, "edge", "edges"),
                counted(c.status_events, "status event", "status events"),
                counted(c.mutations, "mutation", "mutations"),
            ]
            .join(", ");
            let found = match findings.len() {
                0 => "no findings".to_owned(),
                n => counted(n as u64, "finding", "findings"),
            };
            writeln!(out, "{found} in {shown} ({checked} checked)")?;
        }
    }
    Ok(if findings.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Problem
    })
}

/// A scan error, said as the audit says it.
fn unreadable(error: anyhow::Error, shown: &str) -> anyhow::Error {
    error.context(format!(
        "cannot read {shown}: its tables do not have the columns the store writes"
    ))
}

/// Counts the rows, then scans them, with a progress bar when `watched`.
fn scan_source(src: &mut dyn Source, watched: bool, claim_age: Duration) -> anyhow::Result<Scan> {
    let total = scan::total_rows(src)?;
    let progress = progress_bar(total, watched);
    let result = scan::scan(src, &progress, claim_age);
    progress.finish_and_clear();
    result
}

/// Scans the SQLite file `db`, reading it again when a writer changed it meanwhile.
fn scan_file(db: &Path, watched: bool, claim_age: Duration) -> anyhow::Result<Scan> {
    let shown = db.display().to_string();
    for _ in 0..ATTEMPTS {
        let mut file = SqliteFile::open(db)?;
        let scan = match scan_source(&mut file, watched, claim_age) {
            Ok(scan) => scan,
            Err(e) => {
                let e = file.classify(e);
                return Err(if e.is::<InUse>() {
                    e
                } else {
                    unreadable(e, &shown)
                });
            }
        };
        match file.finish()? {
            Attempt::Consistent => return Ok(scan),
            #[allow(
                clippy::needless_continue,
                reason = "the retry is the point of the loop"
            )]
            Attempt::Changed => continue,
        }
    }
    Err(InUse {
        path: db.to_owned(),
        why: format!("a writer changed it while it was read, {ATTEMPTS} times in a row"),
    }
    .into())
}

/// A progress bar on stderr for a large database, when someone is `watched`.
fn progress_bar(total: u64, watched: bool) -> ProgressBar {
    if total < LARGE || !watched {
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
