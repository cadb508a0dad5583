//! `audit` on real SQLite files: a clean one written by the store (through `demo --db`),
//! one corrupted on purpose with raw SQL, and files that are not store databases at all.

mod common;

use std::path::{Path, PathBuf};

use common::{dir_state, joined, stderr_of, stdout_of, store_db, topostate};
use predicates::prelude::*;
use rusqlite::Connection;
use tempfile::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The store's database in `dir`, written by `topostate demo --db`.
fn demo_db(dir: &TempDir) -> PathBuf {
    store_db(dir.path(), "store.sqlite")
}

/// Corrupts a store database on purpose, bypassing the schema's CHECK constraints and
/// foreign keys, the way a buggy tool or a hand edit would.
fn corrupt(path: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "
        PRAGMA foreign_keys = OFF;
        PRAGMA ignore_check_constraints = ON;

        -- A status string no build ever declared.
        UPDATE topologies SET status = 'bogus' WHERE id = 1;

        -- Topology 2: version 0, and a log that jumps from pending straight to active.
        INSERT INTO topologies (id, name, status, version, reason, needs_resync, created_at, status_changed_at)
            VALUES (2, 'jumpy', 'active', 0, NULL, 0, 1, 1);
        INSERT INTO status_events (topology_id, from_status, to_status, at, reason)
            VALUES (2, 'pending', 'active', 1, NULL);

        -- Topology 3: degraded, with no status log at all, and a version that is text.
        INSERT INTO topologies (id, name, status, version, reason, needs_resync, created_at, status_changed_at)
            VALUES (3, 'silent', 'degraded', 'four', NULL, 0, 1, 1);

        -- A LAN of a topology that does not exist, at an infinite canvas position.
        INSERT INTO lans (id, topology_id, name, subnet, is_dmz, network_id, x, y)
            VALUES (900, 999, 'ghost', '10.9.0.0/24', 0, NULL, 9e999, NULL);

        -- A decky of topology 2 joined by an edge of topology 1.
        INSERT INTO deckies (id, topology_id, name, services, config, state, ip, last_error, x, y)
            VALUES (800, 2, 'stray', '[\"ssh\"]', NULL, 'running', NULL, NULL, NULL, NULL);
        INSERT INTO edges (id, topology_id, decky_id, lan_id, is_bridge, forwards_l3)
            VALUES (700, 1, 800, (SELECT min(id) FROM lans WHERE topology_id = 1), 0, 0);

        -- Mutations in impossible states: applied but never marked, and an unknown op.
        INSERT INTO mutations (id, topology_id, op, payload, state, requested_at, applied_at, reason)
            VALUES (600, 2, 'add_lan', '{}', 'applied', 1, NULL, NULL);
        INSERT INTO mutations (id, topology_id, op, payload, state, requested_at, applied_at, reason)
            VALUES (601, 2, 'noop', '{}', 'pending', 1, NULL, NULL);
        INSERT INTO mutations (id, topology_id, op, payload, state, requested_at, applied_at, reason)
            VALUES (604, 2, 'add_lan', '{}', 'failed', 1, 2, NULL);
        -- Two claimed at once on one topology.
        INSERT INTO mutations (id, topology_id, op, payload, state, requested_at, applied_at, reason)
            VALUES (602, 2, 'add_lan', '{}', 'applying', 1, NULL, NULL);
        INSERT INTO mutations (id, topology_id, op, payload, state, requested_at, applied_at, reason)
            VALUES (603, 2, 'add_lan', '{}', 'applying', 1, NULL, NULL);
        ",
    )
}

#[test]
fn a_store_written_database_has_no_findings() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = demo_db(&dir);
    let before = dir_state(dir.path())?;
    topostate()
        .arg("audit")
        .arg(&db)
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("no findings in "))
        .stdout(predicate::str::ends_with(
            "(1 topology, 3 lans, 4 deckies, 5 edges, 4 status events, 1 mutation checked)\n",
        ));
    assert_eq!(
        dir_state(dir.path())?,
        before,
        "the audit created or changed a file"
    );
    Ok(())
}

#[test]
fn a_corrupted_database_names_every_finding_and_exits_1() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = demo_db(&dir);
    corrupt(&db)?;
    let before = dir_state(dir.path())?;

    let output = topostate()
        .arg("audit")
        .arg(&db)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stdout = stdout_of(&output);
    let lines: Vec<&str> = stdout.lines().collect();
    let (summary, findings) = lines.split_last().ok_or("no output")?;
    // The columns of every finding line start at the same offsets.
    let starts = |line: &str| {
        let kind_end = line.find("  ").unwrap_or(0);
        let place = kind_end + line[kind_end..].find(|c| c != ' ').unwrap_or(0);
        let place_end = place + line[place..].find("  ").unwrap_or(0);
        let message = place_end + line[place_end..].find(|c| c != ' ').unwrap_or(0);
        (place, message)
    };
    let first = starts(findings[0]);
    for line in findings {
        assert_eq!(starts(line), first, "misaligned {line:?} in:\n{stdout}");
    }
    let stdout: String = findings.iter().map(|l| joined(l) + "\n").collect();
    let expected = [
        "corrupt-status: topologies row 1: status: unknown topology status: 'bogus' (expected one of: ",
        "bad-version: topologies row 2: version: invalid topology version 0",
        "illegal-event-path: status_events row ",
        "(topology 2): illegal transition: 'pending' → 'active'",
        "bad-version: topologies row 3: version: the text 'four' is not an integer version",
        "status-log-mismatch: topologies row 3: status is 'degraded' but the status log is empty",
        "orphan-row: lans row 900: topology 999 does not exist",
        "corrupt-value: lans row 900 (topology 999): x: inf is not a finite number",
        "cross-topology-edge: edges row 700 (topology 1): decky 800 belongs to topology 2, the edge to topology 1",
        "impossible-mutation: mutations row 600 (topology 2): 'applied' without applied_at",
        "impossible-mutation: mutations row 604 (topology 2): 'failed' without a reason",
        "corrupt-op: mutations row 601 (topology 2): op: unknown mutation op: 'noop'",
        "impossible-mutation: mutations row 603 (topology 2): mutations 602, 603 of topology 2 are all 'applying'",
    ];
    for line in expected {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let count = findings.len();
    assert!(
        summary.starts_with(&format!("{count} findings in ")),
        "summary {summary:?} does not count the {count} lines above it"
    );
    assert!(
        summary.ends_with(
            "(3 topologies, 4 lans, 5 deckies, 6 edges, 5 status events, 6 mutations checked)"
        ),
        "{summary}"
    );
    assert_eq!(stderr_of(&output), "");
    assert_eq!(
        dir_state(dir.path())?,
        before,
        "the audit created or changed a file"
    );
    Ok(())
}

#[test]
fn json_output_parses_and_carries_every_finding() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = demo_db(&dir);
    corrupt(&db)?;
    let output = topostate()
        .args(["audit", "--format", "json"])
        .arg(&db)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output))?;
    let findings = json["findings"].as_array().cloned().unwrap_or_default();
    assert_eq!(json["summary"]["findings"], findings.len());
    assert_eq!(json["summary"]["checked"]["topologies"], 3);
    let kinds: Vec<&str> = findings.iter().filter_map(|f| f["kind"].as_str()).collect();
    for kind in [
        "corrupt-status",
        "bad-version",
        "illegal-event-path",
        "status-log-mismatch",
        "orphan-row",
        "cross-topology-edge",
        "impossible-mutation",
        "corrupt-op",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    let orphan = findings
        .iter()
        .find(|f| f["kind"] == "orphan-row" && f["table"] == "lans")
        .ok_or("no orphan lan")?;
    assert_eq!(orphan["row"], "900");
    Ok(())
}

#[test]
fn json_output_of_a_clean_database_has_no_findings() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = demo_db(&dir);
    let output = topostate()
        .args(["audit", "--format", "json"])
        .arg(&db)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output))?;
    assert_eq!(json["findings"], serde_json::json!([]));
    assert_eq!(json["summary"]["findings"], 0);
    assert!(json["schema_version"].is_i64());
    Ok(())
}

#[test]
fn a_missing_file_is_an_error_and_is_not_created() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("nope.sqlite");
    topostate()
        .arg("audit")
        .arg(&db)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("no such file"));
    assert!(!db.exists());
    Ok(())
}

#[test]
fn a_file_that_is_not_sqlite_is_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("notes.txt");
    std::fs::write(
        &db,
        "these are not the tables you are looking for\n".repeat(20),
    )?;
    let before = dir_state(dir.path())?;
    topostate()
        .arg("audit")
        .arg(&db)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a SQLite database"));
    assert_eq!(dir_state(dir.path())?, before);
    Ok(())
}

#[test]
fn a_sqlite_file_of_another_program_is_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("other.sqlite");
    Connection::open(&db)?.execute_batch("CREATE TABLE recipes (id INTEGER PRIMARY KEY)")?;
    topostate()
        .arg("audit")
        .arg(&db)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "not a database written by the topostate store (it has no table topologies",
        ));
    Ok(())
}

#[test]
fn key_value_connection_strings_are_postgres() -> TestResult {
    // Nothing listens on port 1: the string was taken as PostgreSQL, not as a file name.
    let output = topostate()
        .args([
            "audit",
            "host=127.0.0.1 port=1 user=nobody password=secret dbname=lab",
        ])
        .output()?;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot connect to PostgreSQL database 'lab' on 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "the password leaked: {stderr}");

    let output = topostate()
        .args(["audit", "host=127.0.0.1 colour=blue"])
        .output()?;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not a PostgreSQL URL or key=value list"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn an_existing_file_named_like_a_key_value_string_is_audited_as_a_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_db(dir.path(), "dbname=lab");
    topostate()
        .current_dir(dir.path())
        .args(["audit", "dbname=lab"])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("no findings in dbname=lab ("));
    Ok(())
}
