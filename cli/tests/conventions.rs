//! The command-line conventions: `--version`, `--help` everywhere, usage errors exit 2.

mod common;

use common::topostate;
use predicates::prelude::*;

#[test]
fn version_prints_the_package_version() {
    topostate()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(format!("topostate {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["check", "next", "graph", "audit", "demo"] {
        topostate()
            .args([sub, "--help"])
            .assert()
            .code(0)
            .stdout(predicate::str::contains(format!("Usage: topostate {sub}")));
    }
    topostate()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Exit status"));
}

#[test]
fn missing_subcommand_is_a_usage_error() {
    topostate()
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Usage: topostate"));
}

#[test]
fn missing_argument_is_a_usage_error() {
    topostate()
        .args(["check", "pending"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("<TO>"));
}

#[test]
fn unknown_format_is_a_usage_error() {
    topostate()
        .args(["next", "pending", "--format", "yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("possible values: text, json"));
}
