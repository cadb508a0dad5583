//! `audit` of a SQLite file creates and changes nothing beside it, and so works where it
//! may not write: in a directory only its owner may write (run as another, non-root user)
//! and on a read-only mount. The parts that need root (another user, a mount) say
//! `SKIPPED` on the terminal when they cannot run.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{
    Fingerprint, binary, dir_state, is_root, skipped, stderr_of, stdout_of, store_db, succeeds,
};
use rusqlite::Connection;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The user the unprivileged runs use.
const USER: &str = "nobody";

/// Makes one row unreadable to the store, so the audit has a finding to report.
fn corrupt(db: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open(db)?;
    conn.execute_batch(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE topologies SET status = 'bogus' WHERE id = 1;",
    )
}

/// A writer holding `db` open after committing one more topology: its `-wal` and `-shm`
/// stay beside the file as long as it lives.
fn attached_writer(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(db)?;
    conn.execute(
        "INSERT INTO topologies (name, status, version, reason, needs_resync, created_at, status_changed_at)
         VALUES ('late', 'pending', 1, NULL, 0, 1, 1)",
        [],
    )?;
    Ok(conn)
}

/// The names of a directory's files, and the fingerprints of all but a writer's `-shm`.
type DataState = (Vec<OsString>, Vec<(OsString, Fingerprint)>);

/// Every file of the directory, comparing the bytes of all but the writer's `-shm`, which
/// is shared memory its readers take their place in, not data.
fn data_state(dir: &Path) -> std::io::Result<DataState> {
    let state = dir_state(dir)?;
    let names = state.keys().cloned().collect();
    let data = state
        .into_iter()
        .filter(|(name, _)| !name.to_string_lossy().ends_with("-shm"))
        .collect();
    Ok((names, data))
}

#[test]
fn a_quiet_file_is_audited_without_a_byte_changed_beside_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = store_db(dir.path(), "lab.sqlite");
    let before = dir_state(dir.path())?;
    assert_eq!(before.len(), 1, "the store left files beside {db:?}");
    let output = Command::new(binary()).arg("audit").arg(&db).output()?;
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(
        dir_state(dir.path())?,
        before,
        "the audit created or changed a file"
    );

    corrupt(&db)?;
    let before = dir_state(dir.path())?;
    let output = Command::new(binary()).arg("audit").arg(&db).output()?;
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(stdout_of(&output).starts_with("corrupt-status"));
    assert_eq!(dir_state(dir.path())?, before);
    Ok(())
}

#[test]
fn a_file_a_writer_holds_is_read_through_its_files_and_nothing_is_added() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = store_db(dir.path(), "lab.sqlite");
    let writer = attached_writer(&db)?;
    let before = data_state(dir.path())?;
    assert_eq!(
        before.0.len(),
        3,
        "the writer's -wal and -shm: {:?}",
        before.0
    );
    let output = Command::new(binary()).arg("audit").arg(&db).output()?;
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    // The topology committed to the -wal only is seen.
    assert!(
        stdout_of(&output).contains("(2 topologies,"),
        "{}",
        stdout_of(&output)
    );
    assert_eq!(data_state(dir.path())?, before);
    drop(writer);
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_to_a_file_a_writer_holds_is_read_through_the_writers_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = store_db(dir.path(), "lab.sqlite");
    let writer = attached_writer(&db)?;
    let links = tempfile::tempdir()?;
    let link = links.path().join("link.sqlite");
    std::os::unix::fs::symlink(&db, &link)?;
    let output = Command::new(binary()).arg("audit").arg(&link).output()?;
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    // Read immutable (its -wal overlooked), it would count one topology.
    assert!(
        stdout_of(&output).contains("(2 topologies,"),
        "{}",
        stdout_of(&output)
    );
    assert_eq!(dir_state(links.path())?.len(), 1);
    drop(writer);
    Ok(())
}

/// The binary where `USER` may run it: itself if it can, else a copy in `dir`.
#[cfg(unix)]
fn runnable_by_user(dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = binary();
    let bin_text = bin.to_string_lossy();
    if succeeds("runuser", &["-u", USER, "--", "test", "-x", &bin_text]) {
        return Ok(bin);
    }
    let copy = dir.join("topostate");
    std::fs::copy(&bin, &copy)?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
    Ok(copy)
}

/// `topostate audit db` run as `USER`.
fn audit_as_user(bin: &Path, db: &Path) -> std::io::Result<Output> {
    Command::new("runuser")
        .args(["-u", USER, "--"])
        .arg(bin)
        .arg("audit")
        .arg(db)
        .output()
}

#[cfg(unix)]
#[test]
fn a_user_who_may_only_read_the_file_gets_findings_not_an_error() -> TestResult {
    use std::os::unix::fs::PermissionsExt as _;
    if !is_root() {
        skipped("the non-root reader", "the test is not run as root");
        return Ok(());
    }
    if !succeeds("runuser", &["-u", USER, "--", "true"]) {
        skipped("the non-root reader", "`runuser -u nobody` cannot run here");
        return Ok(());
    }
    let tools = tempfile::tempdir()?;
    std::fs::set_permissions(tools.path(), std::fs::Permissions::from_mode(0o755))?;
    let bin = runnable_by_user(tools.path())?;
    // Root's directory, which the user may list and enter but not write.
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let db = store_db(dir.path(), "lab.sqlite");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644))?;
    let user_may_write = succeeds(
        "runuser",
        &[
            "-u",
            USER,
            "--",
            "test",
            "-w",
            &dir.path().to_string_lossy(),
        ],
    );
    assert!(!user_may_write, "{USER} may write the test directory");

    let before = dir_state(dir.path())?;
    let output = audit_as_user(&bin, &db)?;
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(stdout_of(&output).starts_with("no findings in "));
    assert_eq!(dir_state(dir.path())?, before);

    corrupt(&db)?;
    let before = dir_state(dir.path())?;
    let output = audit_as_user(&bin, &db)?;
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(
        stdout_of(&output).starts_with("corrupt-status"),
        "{}",
        stdout_of(&output)
    );
    assert_eq!(dir_state(dir.path())?, before);

    // With root's writer attached, its -shm is read-only to the user.
    let writer = attached_writer(&db)?;
    let before = data_state(dir.path())?;
    let output = audit_as_user(&bin, &db)?;
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(
        stdout_of(&output).contains("(2 topologies,"),
        "{}",
        stdout_of(&output)
    );
    assert_eq!(data_state(dir.path())?, before);
    drop(writer);
    Ok(())
}

/// Runs `topostate audit MNT/NAME` with `src` bind-mounted read-only on `mnt`, in a
/// mount namespace of its own (so nothing stays mounted); `None` if mounting is not
/// permitted here.
fn audit_on_read_only_mount(src: &Path, mnt: &Path, name: &str) -> std::io::Result<Option<Output>> {
    const NO_MOUNT: i32 = 97;
    let output = Command::new("unshare")
        .args(["--mount", "--", "sh", "-c"])
        .arg(format!(
            "mount --bind -o ro \"$1\" \"$2\" || exit {NO_MOUNT}; \
             touch \"$2/probe\" 2>/dev/null && exit {NO_MOUNT}; \
             exec \"$3\" audit \"$2/$4\""
        ))
        .arg("sh")
        .arg(src)
        .arg(mnt)
        .arg(binary())
        .arg(name)
        .output()?;
    Ok((output.status.code() != Some(NO_MOUNT)).then_some(output))
}

#[test]
fn a_file_on_a_read_only_mount_is_audited() -> TestResult {
    if !succeeds("unshare", &["--mount", "--", "true"]) {
        skipped(
            "the read-only mount",
            "`unshare --mount` is not permitted here",
        );
        return Ok(());
    }
    let src = tempfile::tempdir()?;
    let mnt = tempfile::tempdir()?;
    let db = store_db(src.path(), "lab.sqlite");
    corrupt(&db)?;
    let before = dir_state(src.path())?;
    let Some(output) = audit_on_read_only_mount(src.path(), mnt.path(), "lab.sqlite")? else {
        skipped(
            "the read-only mount",
            "`mount --bind -o ro` is not permitted here",
        );
        return Ok(());
    };
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(stdout_of(&output).starts_with("corrupt-status"));
    assert_eq!(dir_state(src.path())?, before);

    // A copy taken while a writer was attached (a backup of a live service): the
    // committed writes still in its -wal are read, through a -shm nobody may write.
    let live = tempfile::tempdir()?;
    let db = store_db(live.path(), "lab.sqlite");
    let writer = attached_writer(&db)?;
    let snapshot = tempfile::tempdir()?;
    for name in dir_state(live.path())?.into_keys() {
        std::fs::copy(live.path().join(&name), snapshot.path().join(name))?;
    }
    drop(writer);
    let before = dir_state(snapshot.path())?;
    let output = audit_on_read_only_mount(snapshot.path(), mnt.path(), "lab.sqlite")?
        .ok_or("the mount worked once, then not")?;
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(
        stdout_of(&output).contains("(2 topologies,"),
        "{}",
        stdout_of(&output)
    );
    assert_eq!(dir_state(snapshot.path())?, before);
    Ok(())
}
