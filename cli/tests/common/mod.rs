//! Helpers shared by the CLI's integration tests, which all run the real binary.
#![allow(dead_code)] // Each test crate uses its own subset.

use assert_cmd::Command;

/// The built `topostate` binary, ready to take arguments.
pub fn topostate() -> Command {
    match Command::cargo_bin("topostate") {
        Ok(cmd) => cmd,
        Err(e) => panic!("the topostate binary was not built: {e}"),
    }
}

/// The process's stdout as UTF-8.
pub fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The process's stderr as UTF-8.
pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The path of the built `topostate` binary.
pub fn binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_topostate"))
}

/// A store database written by the store itself, via `topostate demo --db DIR/NAME`.
pub fn store_db(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    topostate()
        .arg("demo")
        .arg("--db")
        .arg(&path)
        .assert()
        .code(0);
    path
}

/// A file's length and a hash of its bytes: equal fingerprints mean equal bytes (short
/// enough to print when they are not).
pub type Fingerprint = (u64, u64);

/// Every file of `dir` with the fingerprint of its bytes: equal before and after proves
/// nothing was created, removed or changed there.
pub fn dir_state(
    dir: &std::path::Path,
) -> std::io::Result<std::collections::BTreeMap<std::ffi::OsString, Fingerprint>> {
    use std::hash::{DefaultHasher, Hash as _, Hasher as _};
    let mut state = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let bytes = std::fs::read(entry.path())?;
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        state.insert(entry.file_name(), (bytes.len() as u64, hasher.finish()));
    }
    Ok(state)
}

/// Says on the terminal (past the test harness's capture) that a test skipped a part.
pub fn skipped(what: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {what}: {why}");
}

/// Is this process root?
#[cfg(unix)]
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs `program args` and says whether it exited 0 (false when it cannot start).
pub fn succeeds(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// An audit's finding line with its aligned columns joined by `: `, as
/// `kind: location: message`.
pub fn joined(line: &str) -> String {
    let mut columns = Vec::new();
    let mut rest = line;
    for _ in 0..2 {
        let Some((column, after)) = rest.split_once("  ") else {
            break;
        };
        columns.push(column);
        rest = after.trim_start_matches(' ');
    }
    columns.push(rest);
    columns.join(": ")
}
