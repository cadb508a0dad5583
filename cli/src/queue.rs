//! `queue list|release|fail`: the mutation queue as an operator sees it, and the repair of
//! a stuck claim (an applier that crashed, or hangs, while it held a mutation).
//!
//! A repair is fenced by the claim token the operator read (`queue list` shows it): the
//! store moves the mutation only if it is still `applying` under that token, in the same
//! atomic step as the write. An applier that took the mutation over meanwhile, or one that
//! closed it, wins; the repair is refused (exit 1) and changes nothing.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;
use topostate::MutationState;
use topostate::TopologyId;
use topostate::store::{
    Lease, MAX_PAGE, Mutation, MutationId, PageRequest, PgStore, SqliteStore, StoreError,
    Timestamp, TopologyStore,
};

use crate::audit::postgres_conninfo;
use crate::output::{Format, Outcome, write_json};

/// Opens the store on `db`: a SQLite file that must exist, or a PostgreSQL connection
/// string, as `audit` tells them apart.
fn open(db: &Path, schema: Option<&str>) -> anyhow::Result<Box<dyn TopologyStore>> {
    if let Some(url) = postgres_conninfo(db) {
        let mut builder = PgStore::builder(url);
        if let Some(schema) = schema {
            builder = builder.schema(schema);
        }
        return Ok(Box::new(builder.connect().context("connecting")?));
    }
    anyhow::ensure!(
        schema.is_none(),
        "--schema applies to a PostgreSQL connection string, not to a file"
    );
    anyhow::ensure!(db.is_file(), "{} is not a file", db.display());
    Ok(Box::new(
        SqliteStore::open(db).with_context(|| format!("opening {}", db.display()))?,
    ))
}

/// What a repair prints with `--format json`.
#[derive(Debug, Serialize)]
struct Repaired<'a> {
    action: &'a str,
    outcome: &'a str,
    mutation: Option<&'a Mutation>,
    refused: Option<String>,
}

/// `queue list DB TOPOLOGY`: the topology's mutations, newest first, with their leases;
/// `applying` ones whose lease has passed (by this host's clock) are marked expired.
///
/// # Errors
///
/// The store cannot be opened, or the topology does not exist.
pub fn list(
    db: &Path,
    schema: Option<&str>,
    topology: u64,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let store = open(db, schema)?;
    let id = TopologyId::new(topology);
    let mut rows = Vec::new();
    let mut request = PageRequest::first(MAX_PAGE);
    loop {
        let page = store.list_mutations(id, None, request)?;
        rows.extend(page.items);
        match page.next {
            Some(after) => request = PageRequest::after(after, MAX_PAGE),
            None => break,
        }
    }
    if format == Format::Json {
        write_json(out, &rows)?;
        return Ok(Outcome::Clean);
    }
    let now = Timestamp::now();
    for m in &rows {
        let lease = match (m.state, m.lease_until) {
            (MutationState::Applying, Some(until)) if m.lease_expired(now) => {
                format!(
                    " lease expired {} µs ago",
                    now.as_micros() - until.as_micros()
                )
            }
            (MutationState::Applying, Some(until)) => {
                format!(
                    " lease runs {} µs more",
                    until.as_micros() - now.as_micros()
                )
            }
            (MutationState::Applying, None) => {
                String::from(" no lease (taken over at the next claim)")
            }
            _ => String::new(),
        };
        let holder = m
            .holder
            .as_deref()
            .map(|h| format!(" holder {h:?}"))
            .unwrap_or_default();
        writeln!(
            out,
            "mutation {} {} {} token {} attempts {}{holder}{lease}",
            m.id, m.op, m.state, m.token, m.attempts
        )?;
    }
    Ok(Outcome::Clean)
}

/// Which repair.
#[derive(Clone, Copy, Debug)]
pub enum Repair<'a> {
    /// Back to `pending`, first in line.
    Release,
    /// To `failed`, with this reason.
    Fail(&'a str),
}

/// `queue release|fail`: moves a stuck claim, fenced by `token`. A refusal of the claim
/// itself (taken over, closed, not applying) is [`Outcome::Problem`]; it changed nothing.
///
/// # Errors
///
/// The store cannot be opened; the topology or mutation does not exist; a bad reason.
pub fn repair(
    db: &Path,
    schema: Option<&str>,
    (topology, mutation, token): (u64, u64, u64),
    repair: Repair<'_>,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let store = open(db, schema)?;
    let claim = Lease::from_parts(MutationId::new(mutation), TopologyId::new(topology), token);
    let (action, result) = match repair {
        Repair::Release => ("release", store.release_mutation(claim)),
        Repair::Fail(reason) => ("fail", store.mark_mutation_failed(claim, reason)),
    };
    let (row, refused) = match result {
        Ok(row) => (Some(row), None),
        Err(e @ (StoreError::LeaseLost { .. } | StoreError::WrongMutationState { .. })) => {
            (None, Some(e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    if format == Format::Json {
        write_json(
            out,
            &Repaired {
                action,
                outcome: if refused.is_some() { "refused" } else { "done" },
                mutation: row.as_ref(),
                refused: refused.clone(),
            },
        )?;
    } else if let Some(row) = &row {
        writeln!(
            out,
            "mutation {} is now {} ({action} done)",
            row.id, row.state
        )?;
    } else if let Some(why) = &refused {
        writeln!(out, "{action} refused, nothing changed: {why}")?;
    }
    Ok(if refused.is_some() {
        Outcome::Problem
    } else {
        Outcome::Clean
    })
}
