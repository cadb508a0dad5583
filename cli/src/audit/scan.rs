//! The checks: one pass over each table, reading every column as a raw SQLite-kind value
//! from either backend (see `source.rs`, so no stored value can stop the audit), plus a few
//! joins for rows pointing nowhere.
//!
//! Every status, state and op is judged by the library's parsers and transition table;
//! nothing here names one as a string.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use indicatif::ProgressBar;
use rusqlite::types::Value;
use serde::Serialize;
use topostate::store::{DeckyState, StoreError, check_coord, check_name, check_text};
use topostate::{
    INITIAL_VERSION, MAX_VERSION, MutationOp, MutationState, ParseStatusError, TopologyStatus,
};

use super::finding::{Finding, Kind, describe, quoted, short};
use super::source::{Dialect, Source};
use crate::check::illegal_message;

/// The tables the store writes, in the order they are scanned (parents first).
pub use topostate::store::SQL_TABLES as TABLES;

/// Refuses to audit `place` (a `kind`: database or schema) unless it has every table the
/// store writes: `tables` are the ones it has.
pub fn require_store_tables(
    place: impl std::fmt::Display,
    kind: &str,
    tables: &[String],
) -> anyhow::Result<()> {
    let missing: Vec<&str> = TABLES
        .into_iter()
        .filter(|t| !tables.iter().any(|have| have == t))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "cannot audit {place}: not a {kind} written by the topostate store (it has no table {})",
            missing.join(", ")
        );
    }
    Ok(())
}

/// The tables whose rows belong to a topology through `topology_id`.
const CHILD_TABLES: &[&str] = TABLES.split_at(1).1;

/// How many rows of each table were checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// Rows of `topologies`.
    pub topologies: u64,
    /// Rows of `lans`.
    pub lans: u64,
    /// Rows of `deckies`.
    pub deckies: u64,
    /// Rows of `edges`.
    pub edges: u64,
    /// Rows of `status_events`.
    pub status_events: u64,
    /// Rows of `mutations`.
    pub mutations: u64,
}

/// The result of scanning one database.
#[derive(Debug)]
pub struct Scan {
    /// Every problem, in scan order.
    pub findings: Vec<Finding>,
    /// How many rows were read.
    pub checked: Checked,
    /// The schema version stamped in `meta`, when readable.
    pub schema_version: Option<i64>,
}

/// The status a topology is created in, where every status log starts: the first status
/// the lifecycle declares (`Topology::new` makes one).
fn initial_status() -> TopologyStatus {
    TopologyStatus::ALL[0]
}

/// Runs every check over `src`, advancing `progress` by one per row read.
///
/// # Errors
///
/// A SQL error (e.g. a table missing a column the store writes).
pub fn scan(
    src: &mut dyn Source,
    progress: &ProgressBar,
    claim_age: Duration,
) -> anyhow::Result<Scan> {
    let mut auditor = Auditor {
        src,
        progress,
        findings: Vec::new(),
        checked: Checked::default(),
    };
    let schema_version = auditor.meta()?;
    let statuses = auditor.topologies()?;
    auditor.lans()?;
    auditor.deckies()?;
    auditor.edges()?;
    auditor.status_events(&statuses)?;
    auditor.mutations()?;
    // The lease columns came with schema version 3.
    if schema_version.is_some_and(|v| v >= 3) {
        auditor.claims(claim_age)?;
    }
    auditor.orphans()?;
    auditor.edge_ends()?;
    Ok(Scan {
        findings: auditor.findings,
        checked: auditor.checked,
        schema_version,
    })
}

/// Counts the rows the per-row checks will read, for the progress indicator.
///
/// # Errors
///
/// A SQL error.
pub fn total_rows(src: &mut dyn Source) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for table in TABLES {
        // Table names are the constants above, never input.
        let rows = src.rows(&format!("SELECT count(*) FROM {table}"))?;
        let n = rows.first().and_then(|r| r.first()).and_then(as_int);
        total = total.saturating_add(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0));
    }
    Ok(total)
}

/// The state of one scan.
struct Auditor<'a> {
    src: &'a mut dyn Source,
    progress: &'a ProgressBar,
    findings: Vec<Finding>,
    checked: Checked,
}

/// Column `idx` of `row` as an owned raw value.
fn col(row: &[Value], idx: usize) -> Value {
    row.get(idx).cloned().unwrap_or(Value::Null)
}

/// The integer inside a value, if it is one.
fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(*i),
        _ => None,
    }
}

/// Parses a column holding a declared name with the library's parser.
fn parse_name<T>(
    value: &Value,
    parse: impl Fn(&str) -> Result<T, ParseStatusError>,
) -> Result<T, String> {
    match value {
        Value::Text(text) => parse(text).map_err(|e| e.to_string()),
        other => Err(format!("{}, not a name", describe(other))),
    }
}

/// What is wrong with an integer column, if anything.
fn integer_problem(value: &Value) -> Option<String> {
    match value {
        Value::Integer(_) => None,
        other => Some(format!("{}, expected an integer", describe(other))),
    }
}

/// What is wrong with a 0/1 flag column, if anything.
fn flag_problem(value: &Value) -> Option<String> {
    match value {
        Value::Integer(0 | 1) => None,
        other => Some(format!("{}, expected 0 or 1", describe(other))),
    }
}

/// What is wrong with a text column, if anything (`NULL` allowed when `nullable`).
fn text_problem(value: &Value, nullable: bool) -> Option<String> {
    match value {
        Value::Text(_) => None,
        Value::Null if nullable => None,
        other if nullable => Some(format!("{}, expected text or NULL", describe(other))),
        other => Some(format!("{}, expected text", describe(other))),
    }
}

/// What is wrong with a canvas coordinate, if anything.
fn coordinate_problem(value: &Value) -> Option<String> {
    match value {
        Value::Null | Value::Integer(_) => None,
        Value::Real(r) => rule(check_coord("coordinate", Some(*r))),
        other => Some(format!("{}, expected a number or NULL", describe(other))),
    }
}

/// What is wrong with a free-text column (reasons, payloads, configs, subnets), by the
/// store's length rule, if anything.
fn free_text_problem(value: &Value, nullable: bool) -> Option<String> {
    match value {
        Value::Text(text) => rule(check_text("text", text)),
        other => text_problem(other, nullable),
    }
}

/// The problem a store rule (`check_name`, `check_text`, `check_coord`) found, without its
/// "invalid field:" prefix, since findings name the column themselves.
fn rule(result: Result<(), StoreError>) -> Option<String> {
    match result {
        Ok(()) => None,
        Err(StoreError::Invalid { problem, .. }) => Some(problem),
        Err(other) => Some(other.to_string()),
    }
}

/// What is wrong with a name column, by the store's own rule, if anything.
fn name_problem(field: &'static str, value: &Value) -> Option<String> {
    match value {
        Value::Text(text) => rule(check_name(field, text)),
        other => Some(format!("{}, expected a name", describe(other))),
    }
}

/// What is wrong with a version column, if anything.
fn version_problem(value: &Value) -> Option<String> {
    let range = format!("versions run from {INITIAL_VERSION} to {MAX_VERSION}");
    match value {
        Value::Integer(v) => match u64::try_from(*v) {
            Ok(v) if (INITIAL_VERSION..=MAX_VERSION).contains(&v) => None,
            _ => Some(format!("invalid topology version {v} ({range})")),
        },
        other => Some(format!(
            "{} is not an integer version ({range})",
            describe(other)
        )),
    }
}

impl Auditor<'_> {
    /// Records a finding about row `id` of `table`.
    fn find(
        &mut self,
        kind: Kind,
        table: &'static str,
        id: &Value,
        topology: Option<i64>,
        message: String,
    ) {
        self.findings.push(Finding {
            kind,
            table,
            row: short(id),
            topology,
            message,
        });
    }

    /// Records `problem` with column `column` of a row, if there is one.
    fn column(
        &mut self,
        kind: Kind,
        table: &'static str,
        id: &Value,
        topology: Option<i64>,
        column: &str,
        problem: Option<String>,
    ) {
        if let Some(problem) = problem {
            self.find(kind, table, id, topology, format!("{column}: {problem}"));
        }
    }

    /// Records each `(column, problem)` of one row that has a problem, in order.
    fn columns<const N: usize>(
        &mut self,
        kind: Kind,
        table: &'static str,
        id: &Value,
        topology: Option<i64>,
        problems: [(&str, Option<String>); N],
    ) {
        for (column, problem) in problems {
            self.column(kind, table, id, topology, column, problem);
        }
    }

    /// Reads the schema stamp; a missing or unreadable one is a finding.
    fn meta(&mut self) -> anyhow::Result<Option<i64>> {
        let has_meta = self.src.has_table("meta")?;
        let key = Value::Text("schema_version".to_owned());
        if !has_meta {
            self.find(
                Kind::CorruptMeta,
                "meta",
                &key,
                None,
                "no meta table: the file carries no schema stamp".to_owned(),
            );
            return Ok(None);
        }
        let rows = self
            .src
            .rows("SELECT value FROM meta WHERE key = 'schema_version'")?;
        let value = match rows.first() {
            Some(row) => col(row, 0),
            None => {
                self.find(
                    Kind::CorruptMeta,
                    "meta",
                    &key,
                    None,
                    "missing: the file carries no schema version".to_owned(),
                );
                return Ok(None);
            }
        };
        // PostgreSQL keeps the stamp as text, SQLite as an integer.
        let value = match (value, self.src.dialect()) {
            (Value::Text(text), Dialect::Postgres) => text
                .parse::<i64>()
                .map_or(Value::Text(text), Value::Integer),
            (value, _) => value,
        };
        match value {
            Value::Integer(v) if v >= 1 => Ok(Some(v)),
            other => {
                self.find(
                    Kind::CorruptMeta,
                    "meta",
                    &key,
                    None,
                    format!("{}, expected a positive integer", describe(&other)),
                );
                Ok(None)
            }
        }
    }

    /// Checks every topology row; returns each id with its status when that parses.
    fn topologies(&mut self) -> anyhow::Result<BTreeMap<i64, Option<TopologyStatus>>> {
        const T: &str = "topologies";
        let mut statuses = BTreeMap::new();
        let rows = self.src.rows(
            "SELECT id, name, status, version, reason, needs_resync, created_at, status_changed_at
             FROM topologies ORDER BY id",
        )?;
        for row in rows {
            self.progress.inc(1);
            self.checked.topologies += 1;
            let id = col(&row, 0);
            let topology = as_int(&id);
            self.column(
                Kind::CorruptValue,
                T,
                &id,
                topology,
                "name",
                name_problem("topology name", &col(&row, 1)),
            );
            let status = match parse_name(&col(&row, 2), TopologyStatus::parse) {
                Ok(status) => Some(status),
                Err(problem) => {
                    self.column(
                        Kind::CorruptStatus,
                        T,
                        &id,
                        topology,
                        "status",
                        Some(problem),
                    );
                    None
                }
            };
            self.column(
                Kind::BadVersion,
                T,
                &id,
                topology,
                "version",
                version_problem(&col(&row, 3)),
            );
            self.columns(
                Kind::CorruptValue,
                T,
                &id,
                topology,
                [
                    ("reason", free_text_problem(&col(&row, 4), true)),
                    ("needs_resync", flag_problem(&col(&row, 5))),
                    ("created_at", integer_problem(&col(&row, 6))),
                    ("status_changed_at", integer_problem(&col(&row, 7))),
                ],
            );
            if let Some(topology) = topology {
                statuses.insert(topology, status);
            }
        }
        Ok(statuses)
    }

    /// Checks every LAN row's columns.
    fn lans(&mut self) -> anyhow::Result<()> {
        const T: &str = "lans";
        let rows = self.src.rows(
            "SELECT id, topology_id, name, subnet, is_dmz, network_id, x, y FROM lans ORDER BY id",
        )?;
        for row in rows {
            self.progress.inc(1);
            self.checked.lans += 1;
            let id = col(&row, 0);
            let topology = as_int(&col(&row, 1));
            self.columns(
                Kind::CorruptValue,
                T,
                &id,
                topology,
                [
                    ("name", name_problem("lan name", &col(&row, 2))),
                    ("subnet", free_text_problem(&col(&row, 3), false)),
                    ("is_dmz", flag_problem(&col(&row, 4))),
                    ("network_id", text_problem(&col(&row, 5), true)),
                    ("x", coordinate_problem(&col(&row, 6))),
                    ("y", coordinate_problem(&col(&row, 7))),
                ],
            );
        }
        Ok(())
    }

    /// Checks every decky row's columns, its state with the library's parser.
    fn deckies(&mut self) -> anyhow::Result<()> {
        const T: &str = "deckies";
        let rows = self.src.rows(
            "SELECT id, topology_id, name, services, config, state, ip, last_error, x, y
             FROM deckies ORDER BY id",
        )?;
        for row in rows {
            self.progress.inc(1);
            self.checked.deckies += 1;
            let id = col(&row, 0);
            let topology = as_int(&col(&row, 1));
            self.column(
                Kind::CorruptValue,
                T,
                &id,
                topology,
                "name",
                name_problem("decky name", &col(&row, 2)),
            );
            let services = match col(&row, 3) {
                Value::Text(text) => serde_json::from_str::<Vec<String>>(&text)
                    .err()
                    .map(|e| format!("{} is not a JSON list of strings ({e})", quoted(&text))),
                other => Some(format!(
                    "{}, expected a JSON list of strings",
                    describe(&other)
                )),
            };
            self.columns(
                Kind::CorruptValue,
                T,
                &id,
                topology,
                [
                    ("services", services),
                    ("config", free_text_problem(&col(&row, 4), true)),
                ],
            );
            let state = parse_name(&col(&row, 5), DeckyState::parse).err();
            self.column(Kind::CorruptState, T, &id, topology, "state", state);
            self.columns(
                Kind::CorruptValue,
                T,
                &id,
                topology,
                [
                    ("ip", text_problem(&col(&row, 6), true)),
                    ("last_error", text_problem(&col(&row, 7), true)),
                    ("x", coordinate_problem(&col(&row, 8))),
                    ("y", coordinate_problem(&col(&row, 9))),
                ],
            );
        }
        Ok(())
    }

    /// Checks every edge row's flags (its ends are checked by [`Self::edge_ends`]).
    fn edges(&mut self) -> anyhow::Result<()> {
        const T: &str = "edges";
        let rows = self
            .src
            .rows("SELECT id, topology_id, is_bridge, forwards_l3 FROM edges ORDER BY id")?;
        for row in rows {
            self.progress.inc(1);
            self.checked.edges += 1;
            let id = col(&row, 0);
            let topology = as_int(&col(&row, 1));
            self.columns(
                Kind::CorruptValue,
                T,
                &id,
                topology,
                [
                    ("is_bridge", flag_problem(&col(&row, 2))),
                    ("forwards_l3", flag_problem(&col(&row, 3))),
                ],
            );
        }
        Ok(())
    }

    /// Replays each topology's status log by event id from the initial status, then
    /// compares where it ends with the stored status.
    fn status_events(
        &mut self,
        statuses: &BTreeMap<i64, Option<TopologyStatus>>,
    ) -> anyhow::Result<()> {
        const T: &str = "status_events";
        // Per topology: the last event's id and its parsed `to_status`.
        let mut last: HashMap<i64, (Value, Option<TopologyStatus>)> = HashMap::new();
        // Where the replay of the current topology's log stands; `None` once a corrupt
        // status made it lose track.
        let mut replay: Option<(i64, Option<TopologyStatus>)> = None;
        let rows = self.src.rows(
            "SELECT id, topology_id, from_status, to_status, at, reason
             FROM status_events ORDER BY topology_id, id",
        )?;
        for row in rows {
            self.progress.inc(1);
            self.checked.status_events += 1;
            let id = col(&row, 0);
            let topology = as_int(&col(&row, 1));
            let from = parse_name(&col(&row, 2), TopologyStatus::parse);
            let to = parse_name(&col(&row, 3), TopologyStatus::parse);
            if let Err(problem) = &from {
                self.column(
                    Kind::CorruptStatus,
                    T,
                    &id,
                    topology,
                    "from_status",
                    Some(problem.clone()),
                );
            }
            if let Err(problem) = &to {
                self.column(
                    Kind::CorruptStatus,
                    T,
                    &id,
                    topology,
                    "to_status",
                    Some(problem.clone()),
                );
            }
            self.columns(
                Kind::CorruptValue,
                T,
                &id,
                topology,
                [
                    ("at", integer_problem(&col(&row, 4))),
                    ("reason", free_text_problem(&col(&row, 5), true)),
                ],
            );

            // An event of a missing topology is an orphan, reported by `orphans`.
            let Some(topology) = topology.filter(|t| statuses.contains_key(t)) else {
                continue;
            };
            let first = replay.is_none_or(|(t, _)| t != topology);
            let position = match replay {
                Some((t, position)) if t == topology => position,
                _ => Some(initial_status()),
            };
            if let (Ok(from), Ok(to)) = (&from, &to) {
                match position {
                    Some(at) if at != *from && first => self.find(
                        Kind::IllegalEventPath,
                        T,
                        &id,
                        Some(topology),
                        format!(
                            "the log starts at '{from}', but every topology starts at '{at}'"
                        ),
                    ),
                    Some(at) if at != *from => self.find(
                        Kind::IllegalEventPath,
                        T,
                        &id,
                        Some(topology),
                        format!(
                            "the event leaves '{from}', but the log so far left the topology at '{at}'"
                        ),
                    ),
                    _ => {}
                }
                if !from.can_transition_to(*to) {
                    self.find(
                        Kind::IllegalEventPath,
                        T,
                        &id,
                        Some(topology),
                        illegal_message(*from, *to),
                    );
                }
            }
            let to = to.ok();
            replay = Some((topology, to));
            last.insert(topology, (id, to));
        }

        for (&topology, stored) in statuses {
            let Some(stored) = *stored else { continue };
            let id = Value::Integer(topology);
            match last.get(&topology) {
                None if stored != initial_status() => self.find(
                    Kind::StatusLogMismatch,
                    "topologies",
                    &id,
                    Some(topology),
                    format!(
                        "status is '{stored}' but the status log is empty; a topology starts at \
                         '{}' and every change is logged",
                        initial_status()
                    ),
                ),
                Some((event, Some(to))) if *to != stored => self.find(
                    Kind::StatusLogMismatch,
                    "topologies",
                    &id,
                    Some(topology),
                    format!(
                        "status is '{stored}' but the last status event ({}) moved it to '{to}'",
                        short(event)
                    ),
                ),
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks every mutation: op and state by the library's parsers, the columns its
    /// state implies, and at most one `applying` per topology.
    fn mutations(&mut self) -> anyhow::Result<()> {
        const T: &str = "mutations";
        let mut applying: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
        let rows = self.src.rows(
            "SELECT id, topology_id, op, payload, state, requested_at, applied_at, reason
             FROM mutations ORDER BY topology_id, id",
        )?;
        for row in rows {
            self.progress.inc(1);
            self.checked.mutations += 1;
            let id = col(&row, 0);
            let topology = as_int(&col(&row, 1));
            let op = parse_name(&col(&row, 2), MutationOp::parse).err();
            self.column(Kind::CorruptOp, T, &id, topology, "op", op);
            self.columns(
                Kind::CorruptValue,
                T,
                &id,
                topology,
                [
                    ("payload", free_text_problem(&col(&row, 3), false)),
                    ("requested_at", integer_problem(&col(&row, 5))),
                ],
            );
            let applied_at = col(&row, 6);
            if !matches!(applied_at, Value::Null) {
                self.column(
                    Kind::CorruptValue,
                    T,
                    &id,
                    topology,
                    "applied_at",
                    integer_problem(&applied_at),
                );
            }
            let reason = col(&row, 7);
            self.column(
                Kind::CorruptValue,
                T,
                &id,
                topology,
                "reason",
                free_text_problem(&reason, true),
            );
            let state = match parse_name(&col(&row, 4), MutationState::parse) {
                Ok(state) => state,
                Err(problem) => {
                    self.column(Kind::CorruptState, T, &id, topology, "state", Some(problem));
                    continue;
                }
            };
            // A mark (to a terminal state) is what records `applied_at`, and only a
            // failure records a reason.
            let marked = state.is_terminal();
            let has_applied_at = !matches!(applied_at, Value::Null);
            let has_reason = !matches!(reason, Value::Null);
            if marked && !has_applied_at {
                self.find(
                    Kind::ImpossibleMutation,
                    T,
                    &id,
                    topology,
                    format!("'{state}' without applied_at; marking a mutation records when"),
                );
            }
            if !marked && has_applied_at {
                self.find(
                    Kind::ImpossibleMutation,
                    T,
                    &id,
                    topology,
                    format!(
                        "'{state}' with applied_at set; only marking it '{}' or '{}' sets that",
                        MutationState::Applied,
                        MutationState::Failed
                    ),
                );
            }
            if state == MutationState::Failed && !has_reason {
                self.find(
                    Kind::ImpossibleMutation,
                    T,
                    &id,
                    topology,
                    format!("'{state}' without a reason; a failure always records why"),
                );
            }
            if state != MutationState::Failed && has_reason {
                self.find(
                    Kind::ImpossibleMutation,
                    T,
                    &id,
                    topology,
                    format!(
                        "'{state}' with a failure reason; only '{}' mutations have one",
                        MutationState::Failed
                    ),
                );
            }
            if state == MutationState::Applying
                && let Some(topology) = topology
            {
                applying.entry(topology).or_default().push(id);
            }
        }
        for (topology, ids) in applying {
            if let [_, rest @ ..] = ids.as_slice() {
                if rest.is_empty() {
                    continue;
                }
                let list: Vec<String> = ids.iter().map(short).collect();
                for id in rest {
                    self.find(
                        Kind::ImpossibleMutation,
                        T,
                        id,
                        Some(topology),
                        format!(
                            "mutations {} of topology {topology} are all '{}'; claims are serial, \
                             at most one per topology",
                            list.join(", "),
                            MutationState::Applying
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// Reports the claims that hold their topology's queue: `applying` under a lease that
    /// has passed (or none), or claimed longer ago than `claim_age`. "Now" is the store's
    /// own clock, as its claims read it (the server's, on PostgreSQL).
    fn claims(&mut self, claim_age: Duration) -> anyhow::Result<()> {
        const T: &str = "mutations";
        let now = match self.src.dialect() {
            Dialect::Sqlite => "CAST(unixepoch('subsec') * 1000000 AS INTEGER)",
            Dialect::Postgres => "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
        };
        // The state is the declaration's name, never input.
        let rows = self.src.rows(&format!(
            "SELECT id, topology_id, claimed_at, lease_until, holder, token, {now}
             FROM mutations WHERE state = '{}' ORDER BY topology_id, id",
            MutationState::Applying
        ))?;
        let age_limit = i64::try_from(claim_age.as_micros()).unwrap_or(i64::MAX);
        for row in rows {
            let id = col(&row, 0);
            let topology = as_int(&col(&row, 1));
            let (Some(now), Some(token)) = (as_int(&col(&row, 6)), as_int(&col(&row, 5))) else {
                continue;
            };
            let holder = match col(&row, 4) {
                Value::Text(name) => format!(" held by '{name}'"),
                _ => String::new(),
            };
            let repair = format!(
                "the next claim takes it over, or repair it with `topostate queue release|fail \
                 --token {token}`"
            );
            match as_int(&col(&row, 3)) {
                None => self.find(
                    Kind::ExpiredLease,
                    T,
                    &id,
                    topology,
                    format!("applying under token {token}{holder} with no lease; {repair}"),
                ),
                Some(until) if until <= now => self.find(
                    Kind::ExpiredLease,
                    T,
                    &id,
                    topology,
                    format!(
                        "applying under token {token}{holder}, its lease ended {} ago; {repair}",
                        seconds(now.saturating_sub(until))
                    ),
                ),
                Some(_) => {}
            }
            if let Some(claimed) = as_int(&col(&row, 2))
                && now.saturating_sub(claimed) > age_limit
            {
                self.find(
                    Kind::OldClaim,
                    T,
                    &id,
                    topology,
                    format!(
                        "claimed {} ago under token {token}{holder}, longer than the claim age \
                         of {}; its applier may be stuck",
                        seconds(now.saturating_sub(claimed)),
                        seconds(age_limit)
                    ),
                );
            }
        }
        Ok(())
    }

    /// Finds child rows whose topology does not exist.
    fn orphans(&mut self) -> anyhow::Result<()> {
        for table in CHILD_TABLES {
            // Table names are the constants above, never input.
            let rows = self.src.rows(&format!(
                "SELECT c.id, c.topology_id FROM {table} AS c
                 WHERE NOT EXISTS (SELECT 1 FROM topologies AS t WHERE t.id = c.topology_id)
                 ORDER BY c.id"
            ))?;
            for row in rows {
                let id = col(&row, 0);
                let topology = col(&row, 1);
                self.find(
                    Kind::OrphanRow,
                    table,
                    &id,
                    None,
                    format!("topology {} does not exist", short(&topology)),
                );
            }
        }
        Ok(())
    }

    /// Finds edges whose decky or LAN is missing or belongs to another topology.
    fn edge_ends(&mut self) -> anyhow::Result<()> {
        const T: &str = "edges";
        // SQLite's `IS NOT` is PostgreSQL's `IS DISTINCT FROM`: both treat NULLs as values.
        let distinct = match self.src.dialect() {
            Dialect::Sqlite => "IS NOT",
            Dialect::Postgres => "IS DISTINCT FROM",
        };
        let rows = self.src.rows(&format!(
            "SELECT e.id, e.topology_id, e.decky_id, d.id, d.topology_id, e.lan_id, l.id, l.topology_id
             FROM edges AS e
             LEFT JOIN deckies AS d ON d.id = e.decky_id
             LEFT JOIN lans AS l ON l.id = e.lan_id
             WHERE d.id IS NULL OR l.id IS NULL
                OR d.topology_id {distinct} e.topology_id OR l.topology_id {distinct} e.topology_id
             ORDER BY e.id"
        ))?;
        for row in rows {
            let id = col(&row, 0);
            let edge_topology = col(&row, 1);
            let topology = as_int(&edge_topology);
            for (entity, end, found, owner) in [
                ("decky", col(&row, 2), col(&row, 3), col(&row, 4)),
                ("lan", col(&row, 5), col(&row, 6), col(&row, 7)),
            ] {
                if matches!(found, Value::Null) {
                    self.find(
                        Kind::OrphanRow,
                        T,
                        &id,
                        topology,
                        format!("{entity} {} does not exist", short(&end)),
                    );
                } else if owner != edge_topology {
                    self.find(
                        Kind::CrossTopologyEdge,
                        T,
                        &id,
                        topology,
                        format!(
                            "{entity} {} belongs to topology {}, the edge to topology {}",
                            short(&end),
                            short(&owner),
                            short(&edge_topology)
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}

/// Microseconds as seconds with up to three decimals: `12.5 s`.
fn seconds(micros: i64) -> String {
    let millis = micros / 1000;
    let text = format!("{}.{:03}", millis / 1000, (millis % 1000).abs());
    format!("{} s", text.trim_end_matches('0').trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_judged_by_the_library_range() {
        assert_eq!(version_problem(&Value::Integer(1)), None);
        assert_eq!(version_problem(&Value::Integer(i64::MAX)), None);
        assert!(version_problem(&Value::Integer(0)).is_some());
        assert!(version_problem(&Value::Integer(-4)).is_some());
        assert!(version_problem(&Value::Text("2".into())).is_some());
        assert!(version_problem(&Value::Real(2.0)).is_some());
    }

    #[test]
    fn store_rules_judge_names_text_and_coordinates() {
        assert_eq!(coordinate_problem(&Value::Real(1.5)), None);
        assert_eq!(
            coordinate_problem(&Value::Real(f64::INFINITY)),
            Some("inf is not a finite number".to_owned())
        );
        assert!(name_problem("lan name", &Value::Text(" ".into())).is_some());
        let long = "x".repeat(topostate::store::MAX_TEXT_LEN + 1);
        assert!(free_text_problem(&Value::Text(long), true).is_some());
        assert_eq!(free_text_problem(&Value::Null, true), None);
        assert!(free_text_problem(&Value::Null, false).is_some());
    }

    #[test]
    fn the_initial_status_is_the_one_new_topologies_get() {
        let t = topostate::Topology::new(topostate::TopologyId::new(1), "x");
        assert_eq!(initial_status(), t.status());
    }

    #[test]
    fn names_parse_with_the_library() {
        let ok = parse_name(&Value::Text("active".into()), TopologyStatus::parse);
        assert_eq!(ok, Ok(TopologyStatus::Active));
        let err = parse_name(&Value::Integer(3), TopologyStatus::parse);
        assert_eq!(err, Err("the integer 3, not a name".to_owned()));
    }
}
