//! One problem found in a database, and how values are described in messages.

use std::fmt;

use rusqlite::types::Value;
use serde::Serialize;

/// What kind of problem a finding is; the kebab-case name is stable for scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A topology status (row or event) that is not a declared status.
    CorruptStatus,
    /// A mutation state or decky state that is not a declared state.
    CorruptState,
    /// A mutation op that is not a declared op.
    CorruptOp,
    /// A version that is not an integer in `1..=MAX_VERSION`.
    BadVersion,
    /// Another column holding a value no valid write makes (wrong type, bad flag, bad name).
    CorruptValue,
    /// A status log that is not a legal path from the initial status.
    IllegalEventPath,
    /// A status log whose end disagrees with the stored status.
    StatusLogMismatch,
    /// A mutation whose columns contradict its state, or a second `applying` one.
    ImpossibleMutation,
    /// A row pointing at a topology, decky or LAN that does not exist.
    OrphanRow,
    /// An edge whose decky or LAN belongs to another topology than the edge.
    CrossTopologyEdge,
    /// A missing or unreadable schema stamp.
    CorruptMeta,
    /// A mutation `applying` under a lease that has passed (or that has none): its
    /// applier is gone or stalled; the next claim takes it over.
    ExpiredLease,
    /// A mutation claimed longer ago than the audit's `--claim-age`, its lease still
    /// running (renewed): an applier that may be stuck while it keeps renewing.
    OldClaim,
}

impl Kind {
    /// The stable name, as in the JSON output.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CorruptStatus => "corrupt-status",
            Self::CorruptState => "corrupt-state",
            Self::CorruptOp => "corrupt-op",
            Self::BadVersion => "bad-version",
            Self::CorruptValue => "corrupt-value",
            Self::IllegalEventPath => "illegal-event-path",
            Self::StatusLogMismatch => "status-log-mismatch",
            Self::ImpossibleMutation => "impossible-mutation",
            Self::OrphanRow => "orphan-row",
            Self::CrossTopologyEdge => "cross-topology-edge",
            Self::CorruptMeta => "corrupt-meta",
            Self::ExpiredLease => "expired-lease",
            Self::OldClaim => "old-claim",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem, located by table and row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// What kind of problem.
    pub kind: Kind,
    /// The table holding the row.
    pub table: &'static str,
    /// The row's id (or key, for `meta`), as text.
    pub row: String,
    /// The topology the row belongs to, when that is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<i64>,
    /// What is wrong, naming the column and the value found and what was expected.
    pub message: String,
}

impl Finding {
    /// Where the problem is: `table row id`, and its topology when the row is not one.
    pub fn location(&self) -> String {
        let mut out = format!("{} row {}", self.table, self.row);
        // A topology row's own id already is the topology.
        if let Some(topology) = self.topology
            && self.table != "topologies"
        {
            out.push_str(&format!(" (topology {topology})"));
        }
        out
    }
}

/// The findings as text, one per line in three aligned columns: kind, location, message.
pub fn write_aligned(out: &mut dyn std::io::Write, findings: &[Finding]) -> std::io::Result<()> {
    let rows: Vec<(&str, String, &str)> = findings
        .iter()
        .map(|f| (f.kind.as_str(), f.location(), f.message.as_str()))
        .collect();
    let kind_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let place_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    for (kind, place, message) in rows {
        writeln!(out, "{kind:<kind_width$}  {place:<place_width$}  {message}")?;
    }
    Ok(())
}

/// A stored value as messages show it: `NULL`, `the integer 5`, `the text 'x'`, ….
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Real(r) => format!("the real number {r}"),
        Value::Text(t) => format!("the text {}", quoted(t)),
        Value::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

/// How many characters of a stored string a message shows.
const SHOWN_CHARS: usize = 64;

/// `s` in single quotes, escaped, and cut short so one huge value cannot flood the report.
pub fn quoted(s: &str) -> String {
    let mut out = String::from("'");
    for (shown, c) in s.chars().enumerate() {
        if shown == SHOWN_CHARS {
            out.push_str(&format!("'… ({} characters)", s.chars().count()));
            return out;
        }
        match c {
            '\'' => out.push_str("\\'"),
            c => out.extend(c.escape_debug()),
        }
    }
    out.push('\'');
    out
}

/// A value as a short identifier in messages (`7`, `'abc'`, `NULL`).
pub fn short(value: &Value) -> String {
    match value {
        Value::Integer(i) => i.to_string(),
        other => describe(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialize_as_their_names() -> Result<(), serde_json::Error> {
        for kind in [
            Kind::CorruptStatus,
            Kind::CorruptState,
            Kind::CorruptOp,
            Kind::BadVersion,
            Kind::CorruptValue,
            Kind::IllegalEventPath,
            Kind::StatusLogMismatch,
            Kind::ImpossibleMutation,
            Kind::OrphanRow,
            Kind::CrossTopologyEdge,
            Kind::CorruptMeta,
        ] {
            assert_eq!(serde_json::to_string(&kind)?, format!("\"{kind}\""));
        }
        Ok(())
    }

    fn finding(kind: Kind, table: &'static str, row: &str, topology: Option<i64>) -> Finding {
        Finding {
            kind,
            table,
            row: row.to_owned(),
            topology,
            message: format!("{kind} here"),
        }
    }

    #[test]
    fn aligned_lines_start_each_column_at_one_offset() -> std::io::Result<()> {
        let findings = [
            finding(Kind::OrphanRow, "lans", "900", None),
            finding(Kind::IllegalEventPath, "status_events", "12", Some(2)),
            finding(Kind::BadVersion, "topologies", "3", Some(3)),
        ];
        let mut out = Vec::new();
        write_aligned(&mut out, &findings)?;
        let text = String::from_utf8_lossy(&out);
        assert_eq!(
            text,
            "orphan-row          lans row 900                       orphan-row here\n\
             illegal-event-path  status_events row 12 (topology 2)  illegal-event-path here\n\
             bad-version         topologies row 3                   bad-version here\n"
        );
        Ok(())
    }

    #[test]
    fn quoted_escapes_and_cuts() {
        assert_eq!(quoted("a'b\n"), r"'a\'b\n'");
        let long = "x".repeat(200);
        assert!(quoted(&long).ends_with("'… (200 characters)"));
    }
}
