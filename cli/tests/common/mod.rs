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
