//! The role examples (`editor`, `deployer`, `applier`) run to completion, each on a fresh
//! temporary directory.
//!
//! The example files are compiled into this test binary as modules and their flows called
//! in-process, rather than running the binaries cargo builds in `target/*/examples/`: those
//! exist only when something built the examples first (`cargo test --test examples` does
//! not), may be stale, and live under a target directory the test would have to guess. Each
//! example checks what it shows (a conflict met, one winner per race, the queue's final
//! states), so a change that breaks one of those promises fails here.

// Each example's `main` only wraps the `run` called here.
#[allow(dead_code)]
#[path = "../examples/editor.rs"]
mod editor;

#[allow(dead_code)]
#[path = "../examples/deployer.rs"]
mod deployer;

#[allow(dead_code)]
#[path = "../examples/applier.rs"]
mod applier;

use std::error::Error;

#[test]
fn editor_builds_meets_a_conflict_retries_and_deploys() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    editor::run(&dir.path().join("topologies.db"))
}

#[test]
fn deployers_race_and_each_topology_is_taken_and_recorded_once() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    deployer::run(&dir.path().join("topologies.db"))
}

#[test]
fn applier_drains_the_queue_serially_while_a_second_one_sees_busy() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    applier::run(&dir.path().join("topologies.db"))
}
