//! Several OS processes on one database: a multi-process test re-executes its own test
//! binary, filtered to itself (`--exact`, the name libtest gives the test's thread), with
//! environment variables (named from a prefix of the backend's) saying which role the child
//! plays, where the database is and when to begin. The test's first line looks for those
//! orders ([`ChildEnv::from_env`]): found, it plays the role and returns; absent, it is the
//! parent. This works the same under `cargo test`, `--include-ignored` and `cargo nextest run`.
//!
//! Why the test itself and not a separate entry point: an ignored `child_process` test that
//! returns when it finds no orders passes having done nothing (and `--include-ignored`, which
//! the PostgreSQL tests need, runs it); one that panics instead fails every such run. A
//! `[[test]] harness = false` helper leaves the parent no way to find its binary (cargo
//! exposes only `[[bin]]` paths, as `CARGO_BIN_EXE_*`), and a `[[bin]]` would be installed
//! with the library. Re-executing the running test leaves no test that can pass idle: run
//! by a user it is the parent, run by its parent it is a child.

use crate::pages::ListAll;
use std::collections::BTreeSet;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use topostate::TopologyId;
use topostate::store::{NewLan, StoreError, TopologyStore};

/// How long a child may run before the parent kills it.
const WATCHDOG: Duration = Duration::from_mins(2);

/// What a child process was told by its parent.
#[derive(Debug)]
pub struct ChildEnv {
    /// The role to play.
    pub role: String,
    /// Where the database is (a file path, a schema name).
    pub place: String,
    /// Which of the children this is, from 0.
    pub index: usize,
    /// When to begin, in microseconds since the Unix epoch.
    pub start: u64,
    /// The topologies to work on.
    pub topologies: Vec<TopologyId>,
}

impl ChildEnv {
    /// The child's orders, or `None` when this process is not a child (a test run as is).
    pub fn from_env(prefix: &str) -> Option<Self> {
        let role = std::env::var(prefix).ok()?;
        let var = |name: &str| std::env::var(format!("{prefix}_{name}")).unwrap();
        Some(Self {
            role,
            place: var("PLACE"),
            index: var("INDEX").parse().unwrap(),
            start: var("START").parse().unwrap(),
            topologies: var("TOPOLOGIES")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| TopologyId::new(s.parse().unwrap()))
                .collect(),
        })
    }

    /// Sleeps until the agreed start.
    pub fn wait_for_start(&self) {
        let now = now_micros();
        if self.start > now {
            thread::sleep(Duration::from_micros(self.start - now));
        }
    }
}

/// The microseconds since the Unix epoch.
pub fn now_micros() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

/// The full name of the running test (`module::test`): libtest names the thread it runs a
/// test on after the test, under `cargo test` and `cargo nextest run` alike.
pub fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => String::from(name),
        other => panic!("not on a libtest test thread (thread name {other:?})"),
    }
}

/// Starts `n` children of this test binary, each running the current test (see the module
/// docs) in `role` (environment variables named from `prefix`), all told to begin `lead`
/// from now, and waits for them; each is killed if it runs past two minutes. A child that
/// fails, prints no `RESULT ` line, or says any of `forbidden` fails the test. The `RESULT`
/// lines, in child order.
pub fn run_children(
    prefix: &str,
    role: &str,
    n: usize,
    place: &str,
    topologies: &[TopologyId],
    lead: Duration,
    forbidden: &[&str],
) -> Vec<String> {
    // A test that forgot to look for its orders first would start children without end.
    assert!(
        std::env::var_os(prefix).is_none(),
        "a child process was about to start children: the test must call \
         `ChildEnv::from_env({prefix:?})` first and play its role"
    );
    let test = current_test();
    let exe = std::env::current_exe().unwrap();
    let start = now_micros() + u64::try_from(lead.as_micros()).unwrap();
    let list: Vec<String> = topologies.iter().map(ToString::to_string).collect();
    let children: Vec<_> = (0..n)
        .map(|index| {
            Command::new(&exe)
                .args(["--exact", &test, "--include-ignored", "--nocapture"])
                .args(["--test-threads", "1"])
                .env(prefix, role)
                .env(format!("{prefix}_PLACE"), place)
                .env(format!("{prefix}_INDEX"), index.to_string())
                .env(format!("{prefix}_START"), start.to_string())
                .env(format!("{prefix}_TOPOLOGIES"), list.join(","))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let watchdog_ids: Vec<u32> = children.iter().map(Child::id).collect();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = thread::spawn({
        let done = Arc::clone(&done);
        move || {
            let until = Instant::now() + WATCHDOG;
            while !done.load(Ordering::SeqCst) {
                if Instant::now() > until {
                    for pid in &watchdog_ids {
                        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    }
                    return;
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let results = children
        .into_iter()
        .enumerate()
        .map(|(index, child)| {
            let Output {
                status,
                stdout,
                stderr,
            } = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&stdout).into_owned();
            let stderr = String::from_utf8_lossy(&stderr).into_owned();
            assert!(
                status.success(),
                "child {index} ({role}) failed: {status}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
            );
            for word in forbidden {
                assert!(
                    !stdout.contains(word) && !stderr.contains(word),
                    "child {index} said {word:?}: {stdout}{stderr}"
                );
            }
            let result = stdout
                .lines()
                .find_map(|l| l.split_once("RESULT ").map(|(_, result)| result))
                .unwrap_or_else(|| {
                    panic!("child {index} ({test}) printed no RESULT line\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
                });
            String::from(result)
        })
        .collect();
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    results
}

/// The value of `name=` in a `RESULT` line.
pub fn field<'a>(result: &'a str, name: &str) -> &'a str {
    result
        .split(' ')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {result:?}"))
}

/// The child role `writer`: `writes` slow versioned `add_lan`s on the first topology, each
/// either won (one bump) or lost to a version conflict; prints which.
pub fn writer(store: &dyn TopologyStore, child: &ChildEnv, writes: usize) {
    let until = Instant::now() + Duration::from_mins(1);
    let id = child.topologies[0];
    let index = child.index;
    child.wait_for_start();
    let (mut won, mut lost) = (Vec::new(), 0);
    for i in 0..writes {
        if Instant::now() > until {
            break;
        }
        let seen = store.get_topology(id).unwrap().version;
        // A slow editor: others get to write between this read and this write.
        let think = u64::try_from((i * 37 + index * 101) % 5).unwrap() * 200;
        thread::sleep(Duration::from_micros(think));
        let lan = NewLan::new(format!("p{index}-{i}"), "10.0.0.0/24");
        match store.add_lan(id, lan, Some(seen)) {
            Ok(edited) => {
                assert_eq!(edited.version, seen + 1);
                won.push(i.to_string());
            }
            Err(StoreError::VersionConflict(c)) => {
                assert_eq!(c.expected, seen);
                assert!(c.current > c.expected, "{c:?}");
                lost += 1;
            }
            Err(other) => panic!("write {i} of process {index} failed: {other}"),
        }
    }
    println!("RESULT won={} lost={lost} ok={}", won.len(), won.join(","));
}

/// The child role `opener`: opens the store (`open`, at the agreed start) and creates one
/// topology named after the child.
pub fn opener(child: &ChildEnv, open: impl FnOnce() -> Box<dyn TopologyStore>) {
    child.wait_for_start();
    let store = open();
    let created = store
        .create_topology(&format!("process-{}", child.index))
        .unwrap();
    println!("RESULT opened id={}", created.id);
}

/// Checks what `processes` writers reported against the topology `id`: every write won or
/// lost, every won write's row exists, the version counts the won writes, no lost write
/// left a row.
pub fn check_writers(
    store: &dyn TopologyStore,
    id: TopologyId,
    results: &[String],
    writes: usize,
    started: Instant,
) {
    let processes = results.len();
    let (mut won, mut lost) = (0, 0);
    let detail = store.topology_detail(id).unwrap();
    let names: BTreeSet<&str> = detail.lans.iter().map(|l| l.name.as_str()).collect();
    for (index, result) in results.iter().enumerate() {
        let w: usize = field(result, "won").parse().unwrap();
        let l: usize = field(result, "lost").parse().unwrap();
        println!("process {index}: {w} writes won, {l} lost to a version conflict");
        assert_eq!(w + l, writes, "a child ran out of time");
        for i in field(result, "ok").split(',').filter(|s| !s.is_empty()) {
            let name = format!("p{index}-{i}");
            assert!(names.contains(name.as_str()), "{name} won but is missing");
        }
        won += w;
        lost += l;
    }
    println!(
        "{processes} processes x {writes} versioned writes on one topology: {won} won, \
         {lost} conflicts, final version {}, in {:?}",
        detail.topology.version,
        started.elapsed()
    );
    assert!(won >= 1);
    assert_eq!(won + lost, processes * writes);
    assert_eq!(detail.topology.version, 1 + u64::try_from(won).unwrap());
    assert_eq!(
        detail.lans.len(),
        won,
        "a lost write left a row, or a won one is missing"
    );
}

/// Checks what `processes` openers reported: one topology each, named after the child.
pub fn check_openers(store: &dyn TopologyStore, results: &[String]) {
    let mut names: Vec<String> = store
        .all_topologies(None)
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    let expected: Vec<String> = (0..results.len()).map(|i| format!("process-{i}")).collect();
    assert_eq!(names, expected);
}
