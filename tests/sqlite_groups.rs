//! `SqliteStore` with many threads on one handle: the read pool and group commit.
//!
//! - Reads on the read pool see every write answered before they began.
//! - Group commit is equivalent to committing each write alone: the conformance suite runs
//!   with grouping forced on (every write in a savepoint of a group that waits for company),
//!   and race tests compare every answer a grouped write got with a lone run's.
//! - A SIGKILL in the middle of groups loses nothing whose caller was answered (the child is
//!   this test binary re-executed, as in `tests/crash.rs`).

mod pages;

use pages::ListAll;

mod conformance;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tempfile::TempDir;
use topostate::store::{
    ChildEdit, LanId, NewLan, SqliteOptions, SqliteStore, StoreError, TopologyStore,
};
use topostate::{TopologyId, VersionConflict};

use conformance::Harness;

/// How long a forced group waits for company before it commits.
const LINGER: Duration = Duration::from_millis(1);

fn grouped() -> SqliteOptions {
    SqliteOptions::new().force_grouping(LINGER)
}

fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

// ---- the conformance suite, every write grouped ----------------------------------------

/// A store file whose every handle forces grouping.
struct GroupedHarness {
    _dir: TempDir,
    path: PathBuf,
}

impl Harness for GroupedHarness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        grouped().open(&path).unwrap();
        Self { _dir: dir, path }
    }

    fn handle(&self) -> Box<dyn TopologyStore> {
        Box::new(grouped().open(&self.path).unwrap())
    }

    fn force_version(&self, id: TopologyId, version: u64) {
        let changed = raw(&self.path)
            .execute(
                "UPDATE topologies SET version = ?1 WHERE id = ?2",
                rusqlite::params![
                    i64::try_from(version).unwrap(),
                    i64::try_from(id.get()).unwrap()
                ],
            )
            .unwrap();
        assert_eq!(changed, 1, "no topology {id} to force");
    }
}

conformance_tests!(GroupedHarness);

/// The same suite through the async face: each handle forces grouping, and its writes are
/// queued by tasks for a combiner on tokio's blocking pool.
#[cfg(feature = "tokio")]
mod through_async {
    use std::sync::Arc;

    use super::conformance::Harness;
    use super::conformance::through_async::{AsyncHarness, ThroughAsync};
    use topostate::TopologyId;
    use topostate::store::{AsyncSqliteStore, AsyncTopologyStore};

    struct AsyncGrouped(super::GroupedHarness);

    impl AsyncHarness for AsyncGrouped {
        fn new() -> Self {
            Self(super::GroupedHarness::new())
        }

        fn async_handle(&self) -> Arc<dyn AsyncTopologyStore> {
            Arc::new(AsyncSqliteStore::new(
                super::grouped().open(&self.0.path).unwrap(),
            ))
        }

        fn force_version(&self, id: TopologyId, version: u64) {
            self.0.force_version(id, version);
        }
    }

    crate::conformance_tests!(ThroughAsync<AsyncGrouped>);
}

// ---- the read pool ---------------------------------------------------------------------

/// One writer bumps a topology in a loop; readers on the same handle check that every read
/// sees at least the version acknowledged before it began.
#[test]
fn reads_see_every_write_answered_before_they_began() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    let lab = store.create_topology("lab").unwrap();
    let acked = AtomicU64::new(lab.version);
    let done = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut version = lab.version;
            for i in 0..300 {
                let lan = NewLan::new(format!("lan-{i}"), "10.0.0.0/24");
                version = store.add_lan(lab.id, lan, Some(version)).unwrap().version;
                acked.store(version, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        });
        for reader in 0..4 {
            let (store, acked, done, reads) = (&store, &acked, &done, &reads);
            s.spawn(move || {
                let deadline = Instant::now() + Duration::from_mins(1);
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let floor = acked.load(Ordering::SeqCst);
                    let seen = if reader % 2 == 0 {
                        let detail = store.topology_detail(lab.id).unwrap();
                        assert_eq!(detail.lans.len() as u64, detail.topology.version - 1);
                        detail.topology.version
                    } else {
                        store.get_topology(lab.id).unwrap().version
                    };
                    assert!(
                        seen >= floor,
                        "read version {seen} after {floor} was answered"
                    );
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(store.get_topology(lab.id).unwrap().version, 301);
    println!("read pool: {} reads beside 300 writes", reads.into_inner());
}

// ---- group commit: answers equal a lone run's ------------------------------------------

const WRITERS: usize = 16;
const ROUNDS: usize = 24;

/// What a call answered: the version after it, or the refusal's text.
type Answer = Result<u64, String>;

/// Writer `w`'s calls on its own topology, in order: mostly good versioned writes, and
/// every kind of refusal a lone run gives (stale version, bad input, duplicate name, a
/// missing child, an illegal transition). Deterministic, so a lone run can replay it.
fn script(store: &dyn TopologyStore, id: TopologyId, w: usize) -> Vec<Answer> {
    let mut version = 1;
    let mut out = Vec::new();
    for i in 0..ROUNDS {
        let answer = match i % 8 {
            0..=2 => store
                .add_lan(
                    id,
                    NewLan::new(format!("w{w}-{i}"), format!("10.{w}.{i}.0/24")),
                    Some(version),
                )
                .map(|e| e.version),
            3 => store
                .add_lan(id, NewLan::new("stale", "10.9.9.0/24"), Some(version - 1))
                .map(|e| e.version),
            4 => store
                .add_lan(id, NewLan::new(" bad name", "10.9.9.0/24"), Some(version))
                .map(|e| e.version),
            5 => store
                .add_lan(
                    id,
                    NewLan::new(format!("w{w}-0"), "10.9.9.0/24"),
                    Some(version),
                )
                .map(|e| e.version),
            6 => store
                .edit(
                    id,
                    Some(version),
                    &[ChildEdit::DeleteLan(LanId::new(u64::MAX / 2).into())],
                )
                .map(|r| r.version),
            _ => store
                .transition_status(
                    id,
                    topostate::TopologyStatus::Active,
                    None,
                    topostate::store::Precondition::none(),
                )
                .map(|t| t.topology.version),
        };
        if let Ok(v) = answer {
            version = v;
        }
        out.push(answer.map_err(|e| e.to_string()));
    }
    out
}

/// Which face of one shared store the writers use.
#[derive(Clone, Copy)]
enum Face {
    /// `SqliteStore` itself, from threads.
    Sync,
    /// `AsyncSqliteStore`, each call a future awaited on a multi-thread runtime: the
    /// writes are queued by tasks and run by a combiner on the blocking pool.
    #[cfg(feature = "tokio")]
    Async,
}

/// The store, and the face the writers call.
struct Faced {
    store: Arc<SqliteStore>,
    /// The async face, awaited on its own runtime; `None` for the sync face.
    #[cfg(feature = "tokio")]
    awaiting: Option<(conformance::awaiting::Awaiting, tokio::runtime::Runtime)>,
}

impl Faced {
    fn open(options: SqliteOptions, path: &Path, face: Face) -> Self {
        let store = Arc::new(options.open(path).unwrap());
        match face {
            Face::Sync => Self {
                store,
                #[cfg(feature = "tokio")]
                awaiting: None,
            },
            #[cfg(feature = "tokio")]
            Face::Async => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .build()
                    .unwrap();
                let async_face = topostate::store::AsyncSqliteStore::from_arc(Arc::clone(&store));
                let awaiting = conformance::awaiting::Awaiting::new(
                    Arc::new(async_face),
                    runtime.handle().clone(),
                );
                Self {
                    store,
                    awaiting: Some((awaiting, runtime)),
                }
            }
        }
    }

    /// What the writers call.
    fn face(&self) -> &(dyn TopologyStore + Sync) {
        #[cfg(feature = "tokio")]
        if let Some((awaiting, _)) = &self.awaiting {
            return awaiting;
        }
        &*self.store
    }
}

/// Runs [`script`] for 16 writers at once on one shared handle made by `options`, one
/// topology each, through `face`; then replays every script alone on a store that never
/// groups, and compares every answer.
fn sixteen_on_sixteen(options: SqliteOptions, face: Face) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let faced = Faced::open(options, &dir.path().join("store.db"), face);
    let store = &faced.store;
    let ids: Vec<TopologyId> = (0..WRITERS)
        .map(|w| store.create_topology(&format!("t{w}")).unwrap().id)
        .collect();
    let answers: Vec<Vec<Answer>> = std::thread::scope(|s| {
        let store = faced.face();
        let running: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(w, &id)| s.spawn(move || script(store, id, w)))
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });

    let lone = SqliteOptions::new().max_group(1).open_in_memory().unwrap();
    for (w, &id) in ids.iter().enumerate() {
        assert_eq!(lone.create_topology(&format!("t{w}")).unwrap().id, id);
    }
    for (w, grouped) in answers.iter().enumerate() {
        let alone = script(&lone, ids[w], w);
        assert_eq!(
            grouped, &alone,
            "writer {w}: grouped answers differ from a lone run"
        );
        let successes = grouped.iter().filter(|a| a.is_ok()).count() as u64;
        let refusals = grouped.iter().filter(|a| a.is_err()).count();
        assert!(refusals >= ROUNDS / 2, "writer {w}: the script refuses");
        let row = store.get_topology(ids[w]).unwrap();
        let lans = store.topology_detail(ids[w]).unwrap().lans.len() as u64;
        assert_eq!(row.version - 1, successes, "writer {w}");
        assert_eq!(lans, successes, "writer {w}");
    }
    store.group_commits()
}

#[test]
fn sixteen_writers_on_sixteen_topologies_answer_as_alone() {
    let (commits, writes) = sixteen_on_sixteen(SqliteOptions::new(), Face::Sync);
    println!("default: {writes} writes in {commits} group commits");
}

#[test]
fn sixteen_writers_on_sixteen_topologies_answer_as_alone_when_forced() {
    let (commits, writes) = sixteen_on_sixteen(grouped(), Face::Sync);
    println!("forced: {writes} writes in {commits} group commits");
    assert!(
        writes > commits,
        "no two writes shared a commit ({writes} writes, {commits} commits)"
    );
}

#[cfg(feature = "tokio")]
#[test]
fn sixteen_async_writers_on_sixteen_topologies_answer_as_alone() {
    let (commits, writes) = sixteen_on_sixteen(SqliteOptions::new(), Face::Async);
    println!("default, async face: {writes} writes in {commits} group commits");
}

#[cfg(feature = "tokio")]
#[test]
fn sixteen_async_writers_on_sixteen_topologies_answer_as_alone_when_forced() {
    let (commits, writes) = sixteen_on_sixteen(grouped(), Face::Async);
    println!("forced, async face: {writes} writes in {commits} group commits");
    assert!(
        writes > commits,
        "no two writes shared a commit ({writes} writes, {commits} commits)"
    );
}

/// 16 writers on one topology, each reading the version and writing with it: the version
/// counts the successes, a LAN stands for each, and every refusal is the version conflict
/// a lone run gives at the version the write met.
fn sixteen_on_one(options: SqliteOptions, face: Face) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let faced = Faced::open(options, &dir.path().join("store.db"), face);
    let store = &faced.store;
    let lab = store.create_topology("lab").unwrap();
    let outcomes: Vec<Vec<(u64, Result<u64, StoreError>)>> = std::thread::scope(|s| {
        let store = faced.face();
        let running: Vec<_> = (0..WRITERS)
            .map(|w| {
                s.spawn(move || {
                    (0..ROUNDS)
                        .map(|i| {
                            let seen = store.get_topology(lab.id).unwrap().version;
                            let lan = NewLan::new(format!("w{w}-{i}"), "10.0.0.0/24");
                            let answer = store.add_lan(lab.id, lan, Some(seen)).map(|e| e.version);
                            (seen, answer)
                        })
                        .collect()
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let last = store.get_topology(lab.id).unwrap().version;
    let mut successes = 0;
    let mut versions = Vec::new();
    for (seen, answer) in outcomes.into_iter().flatten() {
        match answer {
            Ok(v) => {
                assert_eq!(v, seen + 1);
                versions.push(v);
                successes += 1;
            }
            Err(StoreError::VersionConflict(VersionConflict { current, expected })) => {
                assert_eq!(expected, seen);
                assert!(
                    current > seen && current <= last,
                    "refused at {current}, having seen {seen}, last {last}"
                );
            }
            Err(other) => panic!("a refusal no lone run gives: {other:?}"),
        }
    }
    versions.sort_unstable();
    let expected: Vec<u64> = (2..=last).collect();
    assert_eq!(
        versions, expected,
        "each version was given to exactly one write"
    );
    assert_eq!(last - 1, successes);
    assert_eq!(
        store.topology_detail(lab.id).unwrap().lans.len() as u64,
        successes
    );
    store.group_commits()
}

#[test]
fn sixteen_writers_on_one_topology_count_every_success_once() {
    let (commits, writes) = sixteen_on_one(SqliteOptions::new(), Face::Sync);
    println!("default: {writes} writes in {commits} group commits");
}

#[test]
fn sixteen_writers_on_one_topology_count_every_success_once_when_forced() {
    let (commits, writes) = sixteen_on_one(grouped(), Face::Sync);
    println!("forced: {writes} writes in {commits} group commits");
    assert!(writes > commits, "no two writes shared a commit");
}

#[cfg(feature = "tokio")]
#[test]
fn sixteen_async_writers_on_one_topology_count_every_success_once_when_forced() {
    let (commits, writes) = sixteen_on_one(grouped(), Face::Async);
    println!("forced, async face: {writes} writes in {commits} group commits");
    assert!(writes > commits, "no two writes shared a commit");
}

/// A group of one size commits every write alone: the previous design, kept reachable.
#[test]
fn a_group_size_of_one_commits_alone() {
    let store = SqliteOptions::new().max_group(1).open_in_memory().unwrap();
    let lab = store.create_topology("lab").unwrap();
    store
        .add_lan(lab.id, NewLan::new("a", "10.0.0.0/24"), Some(1))
        .unwrap();
    assert_eq!(store.group_commits(), (0, 0));
}

// ---- a SIGKILL mid-group ---------------------------------------------------------------

const CHILD: &str = "TOPOSTATE_GROUP_CRASH_CHILD";

/// The child: 8 threads on one handle (grouping forced, so groups are open most of the
/// time) add LANs to their own topology until killed, printing `ACK <topology> <name>` after
/// each answered write.
fn crash_child(path: &str) {
    let store = grouped().open(path).unwrap();
    let ids: Vec<TopologyId> = store
        .all_topologies(None)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    let stdout = std::sync::Mutex::new(std::io::stdout());
    {
        let mut out = stdout.lock().unwrap();
        writeln!(out, "READY").unwrap();
        out.flush().unwrap();
    }
    std::thread::scope(|s| {
        for &id in &ids {
            let (store, stdout) = (&store, &stdout);
            s.spawn(move || {
                let mut version = store.get_topology(id).unwrap().version;
                for n in 0u64.. {
                    let name = format!("p{}-{n}", std::process::id());
                    let lan = NewLan::new(name.clone(), "10.0.0.0/24");
                    version = store.add_lan(id, lan, Some(version)).unwrap().version;
                    let mut out = stdout.lock().unwrap();
                    writeln!(out, "ACK {id} {name}").unwrap();
                    out.flush().unwrap();
                }
            });
        }
    });
}

#[cfg(unix)]
#[test]
fn a_sigkill_mid_group_loses_no_answered_write() {
    if let Ok(path) = std::env::var(CHILD) {
        return crash_child(&path);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        for t in 0..8 {
            store.create_topology(&format!("t{t}")).unwrap();
        }
    }
    let test = std::thread::current().name().unwrap().to_owned();
    let exe = std::env::current_exe().unwrap();
    let mut acked: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for round in 0..5u64 {
        let mut child = Command::new(&exe)
            .args(["--exact", &test, "--include-ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Kill after a number of answers that varies by round, so the kill lands at
        // different points of the groups.
        let wanted = 50 + round * 37;
        let mut seen = 0;
        let deadline = Instant::now() + Duration::from_mins(1);
        while seen < wanted && Instant::now() < deadline {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(rest) = line.strip_prefix("ACK ") {
                let (t, name) = rest.split_once(' ').unwrap();
                acked
                    .entry(t.parse().unwrap())
                    .or_default()
                    .push(name.to_owned());
                seen += 1;
            }
        }
        child.kill().unwrap();
        // Lines the child wrote before it died are still in the pipe: all of them count.
        for line in lines.map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("ACK ") {
                let (t, name) = rest.split_once(' ').unwrap();
                acked
                    .entry(t.parse().unwrap())
                    .or_default()
                    .push(name.to_owned());
            }
        }
        let status = child.wait().unwrap();
        assert!(
            status.code().is_none(),
            "the child stopped on its own: {status}"
        );
        assert!(
            seen >= wanted,
            "round {round}: only {seen} answers before the deadline"
        );

        let integrity: String = raw(&path)
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let store = SqliteStore::open(&path).unwrap();
        for (&t, names) in &acked {
            let detail = store.topology_detail(TopologyId::new(t)).unwrap();
            let stored: Vec<&str> = detail.lans.iter().map(|l| l.name.as_str()).collect();
            for name in names {
                assert!(
                    stored.contains(&name.as_str()),
                    "round {round}: answered LAN {name} of topology {t} is lost"
                );
            }
            assert_eq!(detail.topology.version - 1, detail.lans.len() as u64);
        }
    }
    let total: usize = acked.values().map(Vec::len).sum();
    println!("group crash: 5 SIGKILLs, {total} answered writes, none lost");
}
