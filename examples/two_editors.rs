//! Two editors race on one SQLite file.
//!
//! Each editor has its own `SqliteStore` handle (its own connection) in its own thread.
//! Both read the topology at the same version, then both write with it: one write wins,
//! the other is refused with a `VersionConflict` instead of silently overwriting the
//! first. The loser re-reads, sees the winner's change, and retries successfully.
//!
//! ```text
//! cargo run --example two_editors --features sqlite
//! ```

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use topostate::store::{ChildEdit, NewLan, SqliteStore, StoreError, TopologyStore, TypedStore};
use topostate::{TopologyId, state};

/// What one editor went through.
struct Outcome {
    name: &'static str,
    conflicts: u32,
}

/// Reads the topology, waits until the other editor has read it too, then adds its LAN,
/// re-reading and retrying after a conflict.
fn editor(
    name: &'static str,
    path: &Path,
    id: TopologyId,
    lan: &NewLan,
    both_read: &Barrier,
) -> Result<Outcome, StoreError> {
    let store = SqliteStore::open(path)?;
    let mut canvas = store.load_as::<state::Pending>(id)?;
    println!(
        "{name}: read '{}' at version {}",
        canvas.value().name(),
        canvas.version()
    );
    both_read.wait();

    let mut conflicts = 0;
    loop {
        let seen = canvas.version();
        let edit = [ChildEdit::AddLan(lan.clone())];
        match store.edit_pending(&mut canvas, &edit) {
            Ok(_) => {
                println!(
                    "{name}: added LAN '{}' with version {seen}; the topology is now at version {}",
                    lan.name,
                    canvas.version()
                );
                return Ok(Outcome { name, conflicts });
            }
            Err(StoreError::VersionConflict(conflict)) if conflicts < 3 => {
                conflicts += 1;
                println!("{name}: refused: {conflict}; re-reading");
                canvas = store.load_as::<state::Pending>(id)?;
                let lans: Vec<String> = store
                    .topology_detail(id)?
                    .lans
                    .into_iter()
                    .map(|l| l.name)
                    .collect();
                println!(
                    "{name}: now at version {} with LANs {lans:?}; retrying",
                    canvas.version()
                );
            }
            Err(other) => return Err(other),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("canvas.db");

    let store = SqliteStore::open(&path)?;
    let lab = store.create_topology("lab")?;
    println!(
        "created topology {} '{}' at version {}",
        lab.id, lab.name, lab.version
    );

    let both_read = Arc::new(Barrier::new(2));
    let editors = [
        ("alice", NewLan::new("dmz", "10.0.0.0/24")),
        ("bob", NewLan::new("office", "10.0.1.0/24")),
    ]
    .map(|(name, lan)| {
        let path = path.clone();
        let both_read = Arc::clone(&both_read);
        thread::spawn(move || editor(name, &path, lab.id, &lan, &both_read))
    });

    let mut total_conflicts = 0;
    for handle in editors {
        let outcome = handle.join().map_err(|_| "an editor thread panicked")??;
        println!(
            "{}: done after {} conflict(s)",
            outcome.name, outcome.conflicts
        );
        total_conflicts += outcome.conflicts;
    }

    let detail = store.topology_detail(lab.id)?;
    let lans: Vec<&str> = detail.lans.iter().map(|l| l.name.as_str()).collect();
    println!(
        "final: version {}, LANs {lans:?} ({} ms)",
        detail.topology.version,
        started.elapsed().as_millis()
    );
    // Both read version 1, so exactly one of the two first writes was refused; nothing
    // was lost: both LANs are there and the version counts both writes.
    assert_eq!(total_conflicts, 1);
    assert_eq!(detail.topology.version, 3);
    assert_eq!(lans, ["dmz", "office"]);
    Ok(())
}
