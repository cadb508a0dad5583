//! A large `audit` shows its progress on a terminal, and never in `--format json` or when
//! stdout or stderr is not a terminal. The terminal is a pseudo-terminal from `script`
//! (util-linux); the tests that need it say `SKIPPED` when it cannot run.

mod common;

use std::path::Path;
use std::process::Command;

use common::{binary, skipped, stderr_of, stdout_of, store_db, succeeds};
use rusqlite::Connection;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What the progress bar's line starts with.
const BAR: &str = "auditing ";

/// A store database with more rows than the audit shows progress from (all valid).
fn large_db(dir: &Path) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let db = store_db(dir, "large.sqlite");
    Connection::open(&db)?.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO lans (topology_id, name, subnet, is_dmz, network_id, x, y)
         SELECT 1, 'bulk-' || i, '10.2.0.0/24', 0, NULL, NULL, NULL FROM n;",
    )?;
    Ok(db)
}

/// `shell_command` run on a pseudo-terminal (both its stdout and stderr), and everything
/// the terminal showed; `None` when `script` cannot run here.
fn on_a_terminal(shell_command: &str) -> std::io::Result<Option<(Option<i32>, String)>> {
    if !succeeds("script", &["-qec", "true", "/dev/null"]) {
        return Ok(None);
    }
    let output = Command::new("script")
        .args(["-qefc", shell_command, "/dev/null"])
        .output()?;
    Ok(Some((output.status.code(), stdout_of(&output))))
}

/// `s` in single quotes for `sh`.
fn quoted(s: &Path) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
}

#[test]
fn a_large_audit_on_a_terminal_shows_progress_but_not_in_json() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = large_db(dir.path())?;
    let audit = format!("{} audit {}", quoted(&binary()), quoted(&db));

    let Some((code, shown)) = on_a_terminal(&audit)? else {
        skipped("progress on a terminal", "`script` cannot run here");
        return Ok(());
    };
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains(BAR), "no progress shown: {shown:?}");
    assert!(shown.contains("no findings in "), "{shown:?}");

    let (code, shown) =
        on_a_terminal(&format!("{audit} --format json"))?.ok_or("`script` ran once, then not")?;
    assert_eq!(code, Some(0), "{shown}");
    assert!(!shown.contains(BAR), "progress in JSON: {shown:?}");
    assert!(shown.trim_start().starts_with('{'), "{shown:?}");

    // Only stderr on the terminal: stdout goes to a file someone will read later.
    let report = dir.path().join("report.txt");
    let (code, shown) = on_a_terminal(&format!("{audit} > {}", quoted(&report)))?
        .ok_or("`script` ran once, then not")?;
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(shown, "", "progress with stdout redirected");
    assert!(std::fs::read_to_string(&report)?.starts_with("no findings in "));
    Ok(())
}

#[test]
fn a_large_audit_into_pipes_prints_no_progress_bytes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = large_db(dir.path())?;
    let output = Command::new(binary()).arg("audit").arg(&db).output()?;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stderr_of(&output), "");
    let stdout = stdout_of(&output);
    assert!(stdout.starts_with("no findings in "), "{stdout:?}");
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\r'),
        "{stdout:?}"
    );
    Ok(())
}
