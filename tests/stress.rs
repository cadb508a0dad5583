//! Real concurrency: threads (and, on SQLite, OS processes) hammering one topology and many
//! topologies with a random mix of versioned edits, status transitions, enqueues, claims
//! and marks; afterwards the store's promises are checked against what every worker saw.
//!
//! Each worker keeps a record of every write the store acknowledged: the version each
//! versioned write produced, the event id and version of each transition, the mutation of
//! each claim. Afterwards, per topology:
//!
//! - **no lost update**: version = 1 + acknowledged versioned writes, and those writes
//!   produced exactly the versions 2, 3, … once each;
//! - **no illegal recorded transition**: the event log replayed from `pending` is legal, ends
//!   at the stored status, and is exactly the acknowledged transitions;
//! - **no edit on a non-pending topology** (and no enqueue on a non-live one): transitions
//!   do not bump the version, so a write that produced version `V` came after exactly the
//!   transitions recorded at a version below `V`; the status they lead to must have allowed
//!   the write;
//! - **every claimed mutation claimed once**: no mutation id in two claims, the mutations
//!   that left `pending` are exactly the claimed ones, and none is left `applying`;
//! - **all or nothing**: every batch adds a LAN and a decky together.
//!
//! Bounded in count and in time: `TOPOSTATE_STRESS_OPS` operations per worker (default
//! 4,000) and `TOPOSTATE_STRESS_SECS` seconds per test (default 2). The counts (attempts,
//! successes, refusals by kind) are printed: run with `--nocapture` to see them.
//!
//! The multi-process test re-executes this test binary, as `tests/sqlite_store.rs` does: it
//! runs itself again, and the copy that finds its orders in an environment variable runs
//! the workload as a child and prints its record on stdout.

mod pages;

use pages::ListAll;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use topostate::store::{
    ChildEdit, Claim, MemoryStore, NewDecky, NewLan, Precondition, StoreError, TopologyStore,
};
use topostate::{MutationOp, MutationState, TopologyId, TopologyStatus};

// ---- bounds ----------------------------------------------------------------------------

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn max_ops() -> u64 {
    env_or("TOPOSTATE_STRESS_OPS", 4_000)
}

fn time_limit() -> Duration {
    Duration::from_secs(env_or("TOPOSTATE_STRESS_SECS", 2))
}

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

// ---- what a worker saw -----------------------------------------------------------------

/// A versioned write the store acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `add_lan` with an expected version (pending only).
    Lan,
    /// A batch adding a LAN and a decky with an expected version (pending only).
    Batch,
    /// `enqueue_mutation` with an expected version (active/degraded only).
    Enqueue,
}

impl Kind {
    #[cfg(feature = "sqlite")]
    fn code(self) -> char {
        match self {
            Self::Lan => 'L',
            Self::Batch => 'B',
            Self::Enqueue => 'Q',
        }
    }

    #[cfg(feature = "sqlite")]
    fn from_code(c: &str) -> Self {
        match c {
            "L" => Self::Lan,
            "B" => Self::Batch,
            "Q" => Self::Enqueue,
            other => panic!("unknown write kind {other:?}"),
        }
    }
}

/// Everything one worker saw acknowledged, and its counts.
#[derive(Debug, Default)]
struct Record {
    /// (topology, kind, version the write produced).
    writes: Vec<(u64, Kind, u64)>,
    /// (topology, event id, version at the transition).
    moves: Vec<(u64, u64, u64)>,
    /// (topology, mutation id).
    claims: Vec<(u64, u64)>,
    /// "operation.outcome" → how many.
    counts: BTreeMap<String, u64>,
}

impl Record {
    fn count(&mut self, key: &str) {
        *self.counts.entry(key.to_owned()).or_default() += 1;
    }

    fn merge(&mut self, other: Self) {
        self.writes.extend(other.writes);
        self.moves.extend(other.moves);
        self.claims.extend(other.claims);
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
    }

    /// One line per fact, for a child process's stdout.
    #[cfg(feature = "sqlite")]
    fn to_lines(&self) -> String {
        let mut out = String::new();
        for (t, k, v) in &self.writes {
            writeln!(out, "REC W {t} {} {v}", k.code()).unwrap();
        }
        for (t, e, v) in &self.moves {
            writeln!(out, "REC M {t} {e} {v}").unwrap();
        }
        for (t, m) in &self.claims {
            writeln!(out, "REC C {t} {m}").unwrap();
        }
        for (k, v) in &self.counts {
            writeln!(out, "REC N {k} {v}").unwrap();
        }
        out
    }

    #[cfg(feature = "sqlite")]
    fn from_lines(text: &str) -> Self {
        let mut record = Self::default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("REC ") else {
                continue;
            };
            let f: Vec<&str> = rest.split(' ').collect();
            let n = |i: usize| -> u64 { f[i].parse().unwrap() };
            match f[0] {
                "W" => record.writes.push((n(1), Kind::from_code(f[2]), n(3))),
                "M" => record.moves.push((n(1), n(2), n(3))),
                "C" => record.claims.push((n(1), n(2))),
                "N" => {
                    *record.counts.entry(f[1].to_owned()).or_default() += n(2);
                }
                other => panic!("unknown record line {other:?} in {line:?}"),
            }
        }
        record
    }

    /// The counts as one readable block.
    fn report(&self, what: &str, elapsed: Duration) {
        let attempts: u64 = self
            .counts
            .iter()
            .filter(|(k, _)| k.ends_with(".attempt"))
            .map(|(_, v)| v)
            .sum();
        println!(
            "stress {what}: {attempts} attempts in {elapsed:.2?}; {} versioned writes, {} transitions, {} claims acknowledged",
            self.writes.len(),
            self.moves.len(),
            self.claims.len()
        );
        let mut line = String::from("   ");
        for (k, v) in &self.counts {
            write!(line, " {k}={v}").unwrap();
        }
        println!("{line}");
    }
}

// ---- the workload ----------------------------------------------------------------------

/// A status to move to from `from`, or `None` to do something else this time. Leaving
/// `pending` (only after 20 versions) and ending in `torn_down` are rare, so that every
/// phase gets hammered.
fn pick_target(rng: &mut Rng, from: TopologyStatus, version: u64) -> Option<TopologyStatus> {
    use TopologyStatus::{Pending, TearingDown, TornDown};
    let all: Vec<TopologyStatus> = from
        .legal_next()
        .filter(|&to| match (from, to) {
            (Pending, TornDown) => false,
            (Pending, _) => rng.below(12) == 0 && version > 20,
            (_, TornDown) => rng.below(200) == 0,
            (_, TearingDown) => rng.below(8) == 0,
            _ => true,
        })
        .collect();
    (!all.is_empty()).then(|| all[usize::try_from(rng.below(all.len() as u64)).unwrap()])
}

/// Runs the mixed workload on `topologies` until `ops` operations or `deadline`.
fn work(
    store: &dyn TopologyStore,
    topologies: &[TopologyId],
    tag: &str,
    ops: u64,
    deadline: Instant,
) -> Record {
    let mut rng = Rng::seeded(tag.bytes().fold(7, |h, b| h * 31 + u64::from(b)));
    let mut record = Record::default();
    let mut n = 0u64;
    while n < ops && Instant::now() < deadline {
        n += 1;
        let id = topologies[usize::try_from(rng.below(topologies.len() as u64)).unwrap()];
        let t = id.get();
        let seen = store.get_topology(id).unwrap();
        // A slow editor now and then: others get to write between the read and the write.
        if rng.below(3) == 0 {
            std::thread::yield_now();
        }
        let dice = rng.below(100);
        if dice < 20 {
            record.count("claim.attempt");
            match store.claim_next_mutation(id) {
                Ok(Claim::Claimed {
                    mutation,
                    lease: claim,
                }) => {
                    assert_eq!(mutation.state, MutationState::Applying);
                    assert_eq!(mutation.id, claim.id());
                    record.claims.push((t, mutation.id.get()));
                    record.count("claim.ok");
                    let marked = if rng.below(2) == 0 {
                        store.mark_mutation_applied(claim)
                    } else {
                        store.mark_mutation_failed(claim, "stress")
                    };
                    let marked = marked.unwrap_or_else(|e| panic!("{tag}: mark failed: {e}"));
                    assert_ne!(marked.state, MutationState::Applying);
                    record.count("mark.ok");
                }
                Ok(Claim::Busy { .. }) => record.count("claim.busy"),
                Ok(Claim::Empty) => record.count("claim.empty"),
                Err(StoreError::NotEditable { .. }) => record.count("claim.not_live"),
                Err(e) => panic!("{tag}: claim: {e}"),
            }
        } else if dice < 35 {
            let Some(to) = pick_target(&mut rng, seen.status, seen.version) else {
                record.count("move.skipped");
                continue;
            };
            record.count("move.attempt");
            match store.transition_status(id, to, None, Precondition::status(seen.status)) {
                Ok(moved) => {
                    assert_eq!((moved.event.from, moved.event.to), (seen.status, to));
                    record
                        .moves
                        .push((t, moved.event.id.get(), moved.topology.version));
                    record.count("move.ok");
                }
                Err(StoreError::StaleStatus { expected, found }) => {
                    assert_eq!(expected, seen.status);
                    assert_ne!(found, seen.status);
                    record.count("move.stale_status");
                }
                Err(e) => panic!("{tag}: {} -> {to}: {e}", seen.status),
            }
        } else {
            let (kind, result) = if dice < 55 {
                let lan = NewLan::new(format!("{tag}-{n}"), "10.0.0.0/24");
                (
                    Kind::Lan,
                    store
                        .add_lan(id, lan, Some(seen.version))
                        .map(|e| e.version),
                )
            } else if dice < 70 {
                let batch = [
                    ChildEdit::AddLan(NewLan::new(format!("{tag}-{n}"), "10.1.0.0/24")),
                    ChildEdit::AddDecky(NewDecky::new(format!("{tag}-{n}"))),
                ];
                (
                    Kind::Batch,
                    store
                        .edit(id, Some(seen.version), &batch)
                        .map(|r| r.version),
                )
            } else {
                let enqueued =
                    store.enqueue_mutation(id, MutationOp::AddLan, "{}", Some(seen.version));
                (Kind::Enqueue, enqueued.map(|e| e.version))
            };
            let name = match kind {
                Kind::Lan => "lan",
                Kind::Batch => "batch",
                Kind::Enqueue => "enqueue",
            };
            record.count(&format!("{name}.attempt"));
            match result {
                Ok(version) => {
                    assert_eq!(version, seen.version + 1, "{tag}: {name}");
                    record.writes.push((t, kind, version));
                    record.count(&format!("{name}.ok"));
                }
                Err(StoreError::VersionConflict(c)) => {
                    assert_eq!(c.expected, seen.version);
                    assert!(c.current > c.expected, "{c:?}");
                    record.count(&format!("{name}.version_conflict"));
                }
                Err(StoreError::NotEditable { .. }) => {
                    record.count(&format!("{name}.status_refused"));
                }
                Err(e) => panic!("{tag}: {name}: {e}"),
            }
        }
    }
    record.counts.insert("ops.total".into(), n);
    record
}

// ---- the invariants --------------------------------------------------------------------

/// Checks every promise on `topologies` against the merged record of all workers.
fn check(store: &dyn TopologyStore, topologies: &[TopologyId], record: &Record) {
    let mut claimed = HashSet::new();
    for &claim in &record.claims {
        assert!(
            claimed.insert(claim),
            "mutation {claim:?} was claimed twice"
        );
    }
    let mut final_statuses: BTreeMap<&str, usize> = BTreeMap::new();
    for &id in topologies {
        let t = id.get();
        let detail = store.topology_detail(id).unwrap();
        let row = &detail.topology;
        *final_statuses.entry(row.status.as_str()).or_default() += 1;

        // No lost update.
        let mut writes: Vec<(Kind, u64)> = record
            .writes
            .iter()
            .filter(|w| w.0 == t)
            .map(|&(_, k, v)| (k, v))
            .collect();
        writes.sort_by_key(|w| w.1);
        let n = writes.len() as u64;
        assert_eq!(
            row.version,
            1 + n,
            "topology {t}: {n} acknowledged versioned writes"
        );
        for (i, (_, v)) in writes.iter().enumerate() {
            assert_eq!(
                *v,
                i as u64 + 2,
                "topology {t}: write {i} of {n} produced version {v}"
            );
        }

        // All or nothing: one LAN per LAN write and per batch, one decky per batch.
        let count = |k: Kind| writes.iter().filter(|w| w.0 == k).count();
        assert_eq!(
            detail.lans.len(),
            count(Kind::Lan) + count(Kind::Batch),
            "topology {t}"
        );
        assert_eq!(detail.deckies.len(), count(Kind::Batch), "topology {t}");
        for decky in &detail.deckies {
            assert!(
                detail.lans.iter().any(|l| l.name == decky.name),
                "topology {t}: decky {} without its batch's LAN",
                decky.name
            );
        }

        // The event log: legal, ending at the status, exactly the acknowledged moves.
        let mut events = store.all_events(id).unwrap();
        events.reverse();
        let moves: HashMap<u64, u64> = record
            .moves
            .iter()
            .filter(|m| m.0 == t)
            .map(|&(_, e, v)| (e, v))
            .collect();
        assert_eq!(
            events.len(),
            moves.len(),
            "topology {t}: events vs acknowledged moves"
        );
        let mut at = TopologyStatus::Pending;
        // (version at the transition, status after it), in log order.
        let mut history = Vec::new();
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event.from, at, "topology {t}: event {i}: {event:?}");
            assert!(
                event.from.can_transition_to(event.to),
                "topology {t}: illegal event {i}: {event:?}"
            );
            let version = moves.get(&event.id.get()).unwrap_or_else(|| {
                panic!("topology {t}: event {} was never acknowledged", event.id)
            });
            history.push((*version, event.to));
            at = event.to;
        }
        assert_eq!(at, row.status, "topology {t}");
        assert!(
            history.windows(2).all(|w| w[0].0 <= w[1].0),
            "topology {t}: versions go back in the log"
        );

        // Each write happened in the status left by the transitions recorded below the
        // version it produced.
        for &(kind, v) in &writes {
            // `history` is sorted by version (checked above).
            let before = history.partition_point(|(w, _)| *w < v);
            let status = before
                .checked_sub(1)
                .map_or(TopologyStatus::Pending, |i| history[i].1);
            let allowed = match kind {
                Kind::Lan | Kind::Batch => status == TopologyStatus::Pending,
                Kind::Enqueue => {
                    matches!(status, TopologyStatus::Active | TopologyStatus::Degraded)
                }
            };
            assert!(
                allowed,
                "topology {t}: {kind:?} write to version {v} happened in {status}"
            );
        }

        // The queue: every mutation that left `pending` was claimed, once; none applying.
        let mutations = store.all_mutations(id, None).unwrap();
        assert_eq!(mutations.len(), count(Kind::Enqueue), "topology {t}");
        for m in &mutations {
            let was_claimed = claimed.contains(&(t, m.id.get()));
            match m.state {
                MutationState::Pending => assert!(!was_claimed, "{m:?}"),
                MutationState::Applying => panic!("topology {t}: {m:?} left applying"),
                MutationState::Applied | MutationState::Failed => {
                    assert!(was_claimed, "topology {t}: {m:?} was never claimed");
                }
            }
        }
        let claimed_here = record.claims.iter().filter(|c| c.0 == t).count();
        let left_pending = mutations
            .iter()
            .filter(|m| m.state != MutationState::Pending)
            .count();
        assert_eq!(claimed_here, left_pending, "topology {t}");
    }
    println!("    final statuses: {final_statuses:?}");
}

// ---- threads ---------------------------------------------------------------------------

const THREADS: usize = 4;

/// `THREADS` threads, each on its own handle, on `topologies` new topologies.
fn hammer(what: &str, topologies: usize, handle: &(dyn Fn() -> Box<dyn TopologyStore> + Sync)) {
    let store = handle();
    let ids: Vec<TopologyId> = (0..topologies)
        .map(|i| store.create_topology(&format!("stress-{i}")).unwrap().id)
        .collect();
    let started = Instant::now();
    let deadline = started + time_limit();
    let ops = max_ops();
    let mut record = Record::default();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let ids = &ids;
                s.spawn(move || work(&*handle(), ids, &format!("t{i}"), ops, deadline))
            })
            .collect();
        for w in workers {
            record.merge(w.join().unwrap());
        }
    });
    record.report(
        &format!("{what}, {THREADS} threads, {topologies} topologies"),
        started.elapsed(),
    );
    check(&*store, &ids, &record);
}

#[test]
fn memory_threads_on_one_topology() {
    let store = MemoryStore::new();
    hammer("memory", 1, &|| Box::new(store.clone()));
}

#[test]
fn memory_threads_on_many_topologies() {
    let store = MemoryStore::new();
    hammer("memory", 50, &|| Box::new(store.clone()));
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use topostate::TopologyId;
    use topostate::store::{SqliteStore, TopologyStore};

    use super::{Record, check, hammer, max_ops, time_limit, work};

    fn file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stress.db");
        SqliteStore::open(&path).unwrap();
        (dir, path)
    }

    fn open(path: &Path) -> Box<dyn TopologyStore> {
        Box::new(SqliteStore::open(path).unwrap())
    }

    #[test]
    fn sqlite_threads_on_one_topology() {
        let (_dir, path) = file();
        hammer("sqlite file", 1, &|| open(&path));
    }

    #[test]
    fn sqlite_threads_on_many_topologies() {
        let (_dir, path) = file();
        hammer("sqlite file", 50, &|| open(&path));
    }

    const CHILD_PATH: &str = "TOPOSTATE_STRESS_CHILD_PATH";
    const CHILD_TOPOLOGIES: &str = "TOPOSTATE_STRESS_CHILD_TOPOLOGIES";
    const CHILD_INDEX: &str = "TOPOSTATE_STRESS_CHILD_INDEX";
    const PROCESSES: usize = 4;
    const TOPOLOGIES: usize = 5;

    /// The child side of [`sqlite_processes_on_one_file`], which re-executes itself rather
    /// than a separate entry point, so that no test passes having done nothing (see
    /// `tests/sql_backends/processes.rs` for the choice).
    fn stress_child(path: &str) {
        let ids: Vec<TopologyId> = std::env::var(CHILD_TOPOLOGIES)
            .unwrap()
            .split(',')
            .map(|s| TopologyId::new(s.parse().unwrap()))
            .collect();
        let index = std::env::var(CHILD_INDEX).unwrap();
        let store = SqliteStore::open(path).unwrap();
        let deadline = Instant::now() + time_limit();
        let record = work(&store, &ids, &format!("p{index}"), max_ops(), deadline);
        // libtest has printed `test … ` without a newline: start the record on its own line.
        print!("\nRECORD BEGIN\n{}", record.to_lines());
        println!("RECORD END");
    }

    #[test]
    fn sqlite_processes_on_one_file() {
        if let Ok(path) = std::env::var(CHILD_PATH) {
            return stress_child(&path);
        }
        let (_dir, path) = file();
        let store = SqliteStore::open(&path).unwrap();
        let ids: Vec<TopologyId> = (0..TOPOLOGIES)
            .map(|i| store.create_topology(&format!("stress-{i}")).unwrap().id)
            .collect();
        let list = ids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        // The children run this very test again; libtest names its thread after it.
        let test = std::thread::current().name().unwrap().to_owned();
        let exe = std::env::current_exe().unwrap();
        let started = Instant::now();
        let children: Vec<_> = (0..PROCESSES)
            .map(|index| {
                Command::new(&exe)
                    .args(["--exact", &test, "--include-ignored", "--nocapture"])
                    .args(["--test-threads", "1"])
                    .env(CHILD_PATH, &path)
                    .env(CHILD_TOPOLOGIES, &list)
                    .env(CHILD_INDEX, index.to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut record = Record::default();
        for (index, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stdout.contains("RECORD END"),
                "process {index} failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                out.status
            );
            record.merge(Record::from_lines(&stdout));
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed < time_limit() + Duration::from_mins(1),
            "{elapsed:?}"
        );
        record.report(
            &format!("sqlite file, {PROCESSES} processes, {TOPOLOGIES} topologies"),
            elapsed,
        );
        check(&store, &ids, &record);
    }
}
