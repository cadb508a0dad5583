//! Crash safety of `SqliteStore`: a child process writing in a loop is killed with SIGKILL
//! at random moments, many times, on one file; after every kill the file must open, pass
//! `PRAGMA integrity_check`, and keep every promise.
//!
//! The child (this test binary re-executed, running [`sigkill_at_random_moments`] again,
//! which finds its orders in an environment variable and plays the child instead) writes versioned batches (a LAN and a decky together), versioned enqueues, claims and
//! marks, and status transitions, and prints one `ACK` line, flushed, after each call
//! returns `Ok`, and one `TRY` line before it. After each kill the parent checks:
//!
//! - the file opens through `SqliteStore` and `PRAGMA integrity_check` says `ok`;
//! - **no acknowledged write is lost and at most the one in flight is extra**: per
//!   topology, version = 1 + acknowledged versioned writes (+ 1 only for the topology of
//!   the last `TRY`, when that write committed but was not acknowledged), and the same
//!   for the status log and the claims;
//! - **no half-written edit**: version − 1 = LANs + mutations (each batch bumps once and
//!   adds one LAN, each enqueue bumps once and adds one mutation), and LANs and deckies
//!   pair up by name;
//! - **the event log is legal** from `pending` and ends at the stored status; at most one
//!   mutation per topology is `applying` (a claim cut by the kill stays `applying`, as the
//!   contract says, and the child then moves on).
//!
//! `TOPOSTATE_CRASH_KILLS` sets the number of kills (default 30). Unix only: SIGKILL.
#![cfg(unix)]

mod pages;

use pages::ListAll;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use topostate::store::{
    ChildEdit, Claim, NewDecky, NewLan, Precondition, SqliteStore, TopologyStore,
};
use topostate::{MutationOp, MutationState, TopologyStatus};

const CHILD_PATH: &str = "TOPOSTATE_CRASH_CHILD_PATH";

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

// ---- the child -------------------------------------------------------------------------

/// One line on stdout, flushed before the next call (the parent may kill us at any time).
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    out.write_fmt(line).unwrap();
    out.write_all(b"\n").unwrap();
    out.flush().unwrap();
}

/// The child: writes to the store at `path` until killed. The test re-executes itself
/// rather than a separate entry point, so that no test passes having done nothing (see
/// `tests/sql_backends/processes.rs` for the choice).
fn crash_child(path: &str) {
    let store = SqliteStore::open(path).unwrap();
    let mut rng = Rng::seeded(0);
    say(format_args!("READY"));
    for n in 0u64.. {
        // Work on the newest topology that can still change; start a new one otherwise.
        let live = store
            .all_topologies(None)
            .unwrap()
            .into_iter()
            .rev()
            .find(|t| t.status != TopologyStatus::TornDown);
        let Some(row) = live else {
            let name = format!("crash-{}-{n}", std::process::id());
            say(format_args!("TRY T 0"));
            let created = store.create_topology(&name).unwrap();
            say(format_args!("ACK T {}", created.id));
            continue;
        };
        let id = row.id;
        let (status, version) = (row.status, row.version);
        let dice = rng.below(100);
        let live_status = matches!(status, TopologyStatus::Active | TopologyStatus::Degraded);
        if status == TopologyStatus::Pending && dice < 85 {
            let name = format!("x{}-{n}", std::process::id());
            let batch = [
                ChildEdit::AddLan(NewLan::new(name.clone(), "10.0.0.0/24")),
                ChildEdit::AddDecky(NewDecky::new(name)),
            ];
            say(format_args!("TRY W {id}"));
            let report = store.edit(id, Some(version), &batch).unwrap();
            assert_eq!(report.version, version + 1);
            say(format_args!("ACK W {id} {}", report.version));
        } else if live_status && dice < 40 {
            say(format_args!("TRY W {id}"));
            let queued = store
                .enqueue_mutation(id, MutationOp::AddLan, "{}", Some(version))
                .unwrap();
            say(format_args!("ACK W {id} {}", queued.version));
        } else if live_status && dice < 80 {
            say(format_args!("TRY C {id}"));
            match store.claim_next_mutation(id).unwrap() {
                Claim::Claimed {
                    mutation,
                    lease: claim,
                } => {
                    say(format_args!("ACK C {id} {}", mutation.id));
                    say(format_args!("TRY K {id}"));
                    let marked = if rng.below(2) == 0 {
                        store.mark_mutation_applied(claim)
                    } else {
                        store.mark_mutation_failed(claim, "crash test")
                    };
                    let marked = marked.unwrap();
                    say(format_args!("ACK K {id} {}", marked.id));
                }
                Claim::Busy { applying } => {
                    // Left applying by an earlier kill, under a lease that still runs:
                    // close it as an operator would, fenced by the token read.
                    let token = store
                        .list_mutations(
                            id,
                            Some(topostate::MutationState::Applying),
                            topostate::store::PageRequest::first(1),
                        )
                        .unwrap()
                        .items
                        .first()
                        .map_or(0, |m| m.token);
                    let claim = topostate::store::Lease::from_parts(applying, id, token);
                    say(format_args!("TRY K {id}"));
                    let marked = store.mark_mutation_failed(claim, "recovered").unwrap();
                    say(format_args!("ACK K {id} {}", marked.id));
                }
                Claim::Empty => say(format_args!("ACK E {id}")),
            }
        } else {
            let next: Vec<TopologyStatus> = status
                .legal_next()
                .filter(|&to| {
                    !(status == TopologyStatus::Pending && to == TopologyStatus::TornDown)
                })
                .collect();
            let to = next[usize::try_from(rng.below(next.len() as u64)).unwrap()];
            say(format_args!("TRY M {id}"));
            let moved = store
                .transition_status(id, to, Some("crash test"), Precondition::status(status))
                .unwrap();
            say(format_args!("ACK M {id} {}", moved.event.id));
        }
    }
}

// ---- the parent ------------------------------------------------------------------------

/// What the parent has seen acknowledged so far, per topology.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Acked {
    /// Versioned writes (batches and enqueues).
    writes: u64,
    /// Transitions.
    moves: u64,
    /// Claims.
    claims: u64,
    /// Marks.
    marks: u64,
}

fn kills() -> u64 {
    std::env::var("TOPOSTATE_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// Starts a child (this very test, which libtest names its thread after), lets it write for
/// a random while, SIGKILLs it; returns its lines.
fn run_and_kill(path: &Path, rng: &mut Rng) -> (Vec<String>, Duration) {
    // A child that reached this point would start children without end.
    assert!(
        std::env::var_os(CHILD_PATH).is_none(),
        "a child starting children"
    );
    let test = std::thread::current().name().unwrap().to_owned();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", &test, "--include-ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_PATH, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.ends_with("READY") {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    let ready = rx.recv_timeout(Duration::from_mins(1));
    let delay = Duration::from_micros(rng.below(60_000));
    if ready.is_ok() {
        std::thread::sleep(delay);
    }
    // SIGKILL; the child may have died on its own (a failed assertion): then say why.
    let killed = child.kill();
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        ready.is_ok() && killed.is_ok() && status.code().is_none(),
        "the child stopped before the kill ({status}):\n--- stdout\n{}\n--- stderr\n{stderr}",
        lines.join("\n")
    );
    (lines, delay)
}

/// Checks the file after a kill; returns per-topology what is stored (to become the next
/// round's baseline) and whether the write in flight at the kill had committed.
fn check_after_kill(
    path: &Path,
    acked: &BTreeMap<u64, Acked>,
    in_flight: Option<(char, u64)>,
) -> (BTreeMap<u64, Acked>, bool) {
    let raw = Connection::open(path).unwrap();
    let integrity: String = raw
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let fk: Vec<String> = raw
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(fk.is_empty(), "dangling rows in {fk:?}");
    drop(raw);

    let store = SqliteStore::open(path).unwrap();
    let mut stored = BTreeMap::new();
    let mut extra = Vec::new();
    for row in store.all_topologies(None).unwrap() {
        let t = row.id.get();
        let detail = store.topology_detail(row.id).unwrap();
        let mutations = store.all_mutations(row.id, None).unwrap();
        let mut events = store.all_events(row.id).unwrap();
        events.reverse();

        // No half-written edit: every bump has its rows, every LAN its decky.
        assert_eq!(
            row.version - 1,
            (detail.lans.len() + mutations.len()) as u64,
            "topology {t}: version {} but {} LANs and {} mutations",
            row.version,
            detail.lans.len(),
            mutations.len()
        );
        let mut lans: Vec<&str> = detail.lans.iter().map(|l| l.name.as_str()).collect();
        let mut deckies: Vec<&str> = detail.deckies.iter().map(|d| d.name.as_str()).collect();
        lans.sort_unstable();
        deckies.sort_unstable();
        assert_eq!(lans, deckies, "topology {t}: a batch was half written");

        // A legal log ending at the status.
        let mut at = TopologyStatus::Pending;
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event.from, at, "topology {t}: event {i}: {event:?}");
            assert!(
                event.from.can_transition_to(event.to),
                "topology {t}: illegal event {i}: {event:?}"
            );
            at = event.to;
        }
        assert_eq!(at, row.status, "topology {t}");

        // The queue.
        let applying = mutations
            .iter()
            .filter(|m| m.state == MutationState::Applying)
            .count();
        assert!(applying <= 1, "topology {t}: {applying} applying");
        let claims = mutations
            .iter()
            .filter(|m| m.state != MutationState::Pending)
            .count() as u64;
        let marks = mutations
            .iter()
            .filter(|m| matches!(m.state, MutationState::Applied | MutationState::Failed))
            .count() as u64;

        let now = Acked {
            writes: row.version - 1,
            moves: events.len() as u64,
            claims,
            marks,
        };
        let before = acked.get(&t).copied().unwrap_or_default();
        // Nothing acknowledged is missing.
        for (what, have, want) in [
            ('W', now.writes, before.writes),
            ('M', now.moves, before.moves),
            ('C', now.claims, before.claims),
            ('K', now.marks, before.marks),
        ] {
            assert!(
                have >= want,
                "topology {t}: {want} acknowledged {what} but {have} stored"
            );
            for _ in want..have {
                extra.push((what, t));
            }
        }
        stored.insert(t, now);
    }
    // A topology that was acknowledged must exist.
    for t in acked.keys() {
        assert!(stored.contains_key(t), "acknowledged topology {t} is gone");
    }
    // At most the one write in flight at the kill is stored without acknowledgement.
    assert!(
        extra.is_empty() || (extra.len() == 1 && Some(extra[0]) == in_flight),
        "stored but never acknowledged: {extra:?}, in flight: {in_flight:?}"
    );
    (stored, !extra.is_empty())
}

#[test]
fn sigkill_at_random_moments() {
    if let Ok(path) = std::env::var(CHILD_PATH) {
        return crash_child(&path);
    }
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("crash.db");
    SqliteStore::open(&path).unwrap();
    let mut rng = Rng::seeded(0);
    let started = Instant::now();
    let rounds = kills();
    let mut acked: BTreeMap<u64, Acked> = BTreeMap::new();
    let mut totals: HashMap<char, u64> = HashMap::new();
    let mut in_flight_commits = 0;
    for round in 0..rounds {
        let (lines, delay) = run_and_kill(&path, &mut rng);
        let mut in_flight = None;
        for line in &lines {
            let f: Vec<&str> = line.split(' ').collect();
            let kind = f.first().copied().unwrap_or_default();
            let what = f.get(1).and_then(|s| s.chars().next()).unwrap_or(' ');
            let t: u64 = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
            match kind {
                "TRY" => in_flight = Some((what, t)),
                "ACK" => {
                    in_flight = None;
                    *totals.entry(what).or_default() += 1;
                    let a = acked.entry(t).or_default();
                    match what {
                        'W' => a.writes += 1,
                        'M' => a.moves += 1,
                        'C' => a.claims += 1,
                        'K' => a.marks += 1,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        // A claim cut between its TRY and ACK shows as a claim; a mark as a mark.
        let in_flight_check = match in_flight {
            Some(('T', _)) | None => None,
            other => other,
        };
        let (stored, committed_in_flight) = check_after_kill(&path, &acked, in_flight_check);
        in_flight_commits += u64::from(committed_in_flight);
        // What the kill left committed becomes the baseline for the next round.
        acked = stored;
        if round == 0 || (round + 1) % 10 == 0 {
            println!(
                "crash: kill {} after {delay:?}: {} lines, in flight {in_flight:?}",
                round + 1,
                lines.len()
            );
        }
    }
    let mut totals: Vec<_> = totals.into_iter().collect();
    totals.sort_unstable();
    println!(
        "crash: {rounds} SIGKILLs survived in {:.1?}; acknowledged {totals:?} \
         (W versioned writes, M transitions, C claims, K marks, T creates, E empty claims); \
         {in_flight_commits} kills landed after a commit and before its acknowledgement; \
         {} topologies",
        started.elapsed(),
        acked.len()
    );
}
