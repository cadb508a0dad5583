//! `demo` runs the whole lifecycle on a real SQLite file.

mod common;

use common::{stdout_of, topostate};
use predicates::prelude::*;
use topostate::TopologyStatus;
use topostate::store::{MAX_PAGE, PageRequest, SqliteStore, TopologyStore};

#[test]
fn demo_runs_on_a_temporary_file_and_removes_it() {
    let output = topostate()
        .arg("demo")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("version conflict"))
        .stdout(predicate::str::contains("re-reads"))
        .stdout(predicate::str::contains("== status log"))
        .get_output()
        .clone();
    let stdout = stdout_of(&output);
    let final_line = stdout
        .lines()
        .find(|l| l.contains("topology 1 'lab':"))
        .unwrap_or_default();
    assert!(
        final_line.contains(TopologyStatus::TornDown.as_str()),
        "{stdout}"
    );
    // The first line names the temporary file, which must be gone.
    let path = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("database: "))
        .and_then(|l| l.split(" (").next())
        .unwrap_or_default();
    assert!(path.ends_with("demo.sqlite"), "{stdout}");
    assert!(
        !std::path::Path::new(path).exists(),
        "{path} was left behind"
    );
}

#[test]
fn demo_db_keeps_a_file_the_store_reads_back() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("lab.sqlite");
    topostate()
        .arg("demo")
        .arg("--db")
        .arg(&path)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("(kept)"));

    let store = SqliteStore::open(&path)?;
    let topologies = store
        .list_topologies(None, PageRequest::first(MAX_PAGE))?
        .items;
    assert_eq!(topologies.len(), 1);
    let lab = &topologies[0];
    assert_eq!(lab.status, TopologyStatus::TornDown);
    // The log replays from the initial status along legal edges to the stored status.
    let mut events = store
        .list_status_events(lab.id, PageRequest::first(MAX_PAGE))?
        .items;
    events.reverse();
    let mut at = TopologyStatus::Pending;
    for event in &events {
        assert_eq!(event.from, at);
        assert!(event.from.can_transition_to(event.to));
        at = event.to;
    }
    assert_eq!(at, lab.status);
    let mutations = store
        .list_mutations(lab.id, None, PageRequest::first(MAX_PAGE))?
        .items;
    assert_eq!(mutations.len(), 1);
    assert!(mutations[0].state.is_terminal());
    Ok(())
}

#[test]
fn demo_refuses_an_existing_file() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("precious.sqlite");
    std::fs::write(&path, b"someone's data")?;
    topostate()
        .arg("demo")
        .arg("--db")
        .arg(&path)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("already exists"));
    assert_eq!(std::fs::read(&path)?, b"someone's data");
    Ok(())
}

#[test]
fn demo_in_a_missing_directory_says_what_was_expected() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("no-such-dir").join("lab.sqlite");
    topostate()
        .arg("demo")
        .arg("--db")
        .arg(&path)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "cannot create the demo database at",
        ))
        .stderr(predicate::str::contains("expected a writable path"));
    Ok(())
}

/// Is `margin` one the demo puts before a narrated line: none, `refused`, `version N` or
/// `version N → M`?
fn is_margin(margin: &str) -> bool {
    let number = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    match margin.strip_prefix("version ") {
        Some(versions) => match versions.split_once(" → ") {
            Some((before, after)) => number(before) && number(after),
            None => number(versions),
        },
        None => margin.is_empty() || margin == "refused",
    }
}

#[test]
fn demo_lines_keep_their_columns() {
    let output = topostate()
        .arg("demo")
        .assert()
        .code(0)
        .get_output()
        .clone();
    let stdout = stdout_of(&output);
    let mut section = String::new();
    let mut arrows = Vec::new();
    let mut narrated = 0;
    for line in stdout.lines() {
        if let Some(title) = line.strip_prefix("== ") {
            section = title.to_owned();
            continue;
        }
        if line.is_empty() || line.starts_with("database: ") {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        if section.starts_with(|c: char| c.is_ascii_digit()) {
            // The story: a 3-space indent, a 16-wide margin, then the text.
            narrated += 1;
            let margin: String = chars.iter().take(19).collect();
            assert!(margin.starts_with("   "), "{line:?}");
            assert!(is_margin(margin.trim()), "margin {margin:?} of {line:?}");
            assert!(
                chars.get(19).is_some_and(|c| !c.is_whitespace()),
                "text not at column 19: {line:?}"
            );
        } else if section.starts_with("status log") {
            arrows.push(chars.iter().position(|&c| c == '→'));
        }
    }
    assert!(narrated > 10, "{stdout}");
    assert_eq!(arrows.len(), 4, "{stdout}");
    assert!(
        arrows.iter().all(|a| a.is_some() && *a == arrows[0]),
        "the status log's arrows are not in one column: {arrows:?}\n{stdout}"
    );
    assert!(
        stdout.contains(": torn_down at version 8 (3 lans, 4 deckies, 5 edges)\n"),
        "{stdout}"
    );
}
