//! `audit` of a SQLite file another process is writing: a consistent snapshot, or a
//! clear "in use" refusal (exit 3) when none can be read without writing.
//!
//! The writer is this test binary run again as a child, running the same test, which finds
//! its orders in environment variables and writes through `SqliteStore` as a service would.
//! The test re-executes itself rather than a separate ignored entry point, so that no test
//! passes having done nothing when run as a test.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{binary, dir_state, stderr_of, stdout_of, store_db};
use rusqlite::Connection;
use topostate::store::{NewLan, Precondition, SqliteStore, TopologyStore as _};
use topostate::{TopologyId, TopologyStatus};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The database the child writes to; its presence makes the test a writer.
const DB_VAR: &str = "TOPOSTATE_TEST_WRITER_DB";
/// The directory where the child says it is writing (`ready`) and is told to stop (`stop`).
const CONTROL_VAR: &str = "TOPOSTATE_TEST_WRITER_CONTROL";
/// How long any wait of these tests lasts at most.
const PATIENCE: Duration = Duration::from_mins(1);

/// The child: flaps topology 1 between active and degraded (a status change and its
/// event, in one transaction) and adds LANs to topology 2, until told to stop.
fn writer_child(db: &str, control: &str) -> TestResult {
    let control = PathBuf::from(control);
    let store = SqliteStore::open(db)?;
    let (live, draft) = (TopologyId::new(1), TopologyId::new(2));
    let deadline = Instant::now() + PATIENCE;
    let mut round = 0u64;
    while !control.join("stop").exists() && Instant::now() < deadline {
        for to in [TopologyStatus::Degraded, TopologyStatus::Active] {
            store.transition_status(live, to, Some("flap"), Precondition::none())?;
        }
        store.add_lan(draft, NewLan::new(format!("w{round}"), "10.1.0.0/24"), None)?;
        round += 1;
        if round == 1 {
            std::fs::write(control.join("ready"), "")?;
        }
    }
    Ok(())
}

/// Waits until `path` exists.
fn wait_for(path: &Path, child: &mut Child) -> TestResult {
    let deadline = Instant::now() + PATIENCE;
    while !path.exists() {
        if let Some(status) = child.try_wait()? {
            return Err(format!("the writer exited before it was ready: {status}").into());
        }
        if Instant::now() > deadline {
            return Err(format!("the writer never wrote {}", path.display()).into());
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The number before `noun` in an audit's summary line.
fn count_of(summary: &str, noun: &str) -> Option<u64> {
    let (before, _) = summary.split_once(&format!(" {noun}"))?;
    before.rsplit([' ', '(']).next()?.parse().ok()
}

#[test]
fn an_audit_during_live_writes_reads_one_consistent_snapshot() -> TestResult {
    if let (Ok(db), Ok(control)) = (std::env::var(DB_VAR), std::env::var(CONTROL_VAR)) {
        return writer_child(&db, &control);
    }
    let dir = tempfile::tempdir()?;
    let control = tempfile::tempdir()?;
    let db = dir.path().join("live.sqlite");
    let store = SqliteStore::open(&db)?;
    let live = store.create_topology("live")?;
    for to in [TopologyStatus::Deploying, TopologyStatus::Active] {
        store.transition_status(live.id, to, None, Precondition::none())?;
    }
    store.create_topology("draft")?;
    drop(store);
    // Many LANs, read between the topologies and their status log, so the writer commits
    // between those reads: an audit not reading one snapshot would see a status log
    // ending elsewhere than the stored status.
    Connection::open(&db)?.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO lans (topology_id, name, subnet, is_dmz, network_id, x, y)
         SELECT 2, 'bulk-' || i, '10.2.0.0/24', 0, NULL, NULL, NULL FROM n;",
    )?;

    // The child runs this very test again; libtest names its thread after it.
    let test = thread::current().name().ok_or("no test name")?.to_owned();
    let mut child = Command::new(std::env::current_exe()?)
        .args([&test, "--exact", "--nocapture"])
        .env(DB_VAR, &db)
        .env(CONTROL_VAR, control.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let audits = (|| -> Result<BTreeSet<u64>, Box<dyn std::error::Error>> {
        wait_for(&control.path().join("ready"), &mut child)?;
        let mut seen = BTreeSet::new();
        for _ in 0..8 {
            let output = Command::new(binary()).arg("audit").arg(&db).output()?;
            let stdout = stdout_of(&output);
            assert_eq!(
                output.status.code(),
                Some(0),
                "an audit during writes: {stdout}{}",
                stderr_of(&output)
            );
            assert!(stdout.starts_with("no findings in "), "{stdout}");
            seen.insert(count_of(&stdout, "status events").ok_or(stdout)?);
        }
        Ok(seen)
    })();
    std::fs::write(control.path().join("stop"), "")?;
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            child.kill()?;
            return Err("the writer did not stop".into());
        }
        thread::sleep(Duration::from_millis(10));
    };
    let output = child.wait_with_output()?;
    assert!(
        status.success(),
        "the writer failed: {}",
        stderr_of(&output)
    );
    let seen = audits?;
    assert!(
        seen.len() >= 2,
        "every audit saw the same status log, so none ran during writes: {seen:?}"
    );
    Ok(())
}

#[test]
fn a_wal_without_its_shared_memory_is_refused_as_in_use() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = store_db(dir.path(), "lab.sqlite");
    // A writer in exclusive locking mode keeps its index in its own memory: no -shm.
    let writer = Connection::open(&db)?;
    writer.execute_batch(
        "PRAGMA locking_mode = EXCLUSIVE;
         INSERT INTO topologies (name, status, version, reason, needs_resync, created_at, status_changed_at)
         VALUES ('late', 'pending', 1, NULL, 0, 1, 1);",
    )?;
    let before = dir_state(dir.path())?;
    let output = Command::new(binary()).arg("audit").arg(&db).output()?;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert_eq!(stdout_of(&output), "");
    assert!(
        stderr.starts_with(&format!(
            "error: cannot audit {}: it is in use: ",
            db.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("-shm file is missing"), "{stderr}");
    assert_eq!(dir_state(dir.path())?, before);
    drop(writer);
    Ok(())
}

#[test]
fn a_lock_held_past_the_busy_timeout_is_refused_as_in_use() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = store_db(dir.path(), "lab.sqlite");
    // A rollback-journal writer in the middle of a transaction locks readers out.
    let writer = Connection::open(&db)?;
    writer.execute_batch(
        "PRAGMA journal_mode = DELETE;
         BEGIN EXCLUSIVE;
         INSERT INTO topologies (name, status, version, reason, needs_resync, created_at, status_changed_at)
         VALUES ('late', 'pending', 1, NULL, 0, 1, 1);",
    )?;
    let output = Command::new(binary()).arg("audit").arg(&db).output()?;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: cannot audit {}: it is in use: ",
            db.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("a writer held a lock"), "{stderr}");
    writer.execute_batch("ROLLBACK")?;
    Ok(())
}
