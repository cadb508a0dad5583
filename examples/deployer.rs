//! A deployer worker: picks up `pending` topologies (and `deploying` ones a crashed worker
//! left behind), builds them, and records `active`, `degraded` or `failed` with a reason;
//! then tears everything down.
//!
//! Two workers run at once, each with its own `SqliteStore` handle on one file (as two
//! processes would). Every status write carries a precondition, the status the worker
//! believes is current, checked in the same atomic step as the write:
//!
//! - taking a topology is `pending → deploying` believing `pending` (and the version it
//!   listed, so what gets built is what the editor last saved): of two workers that listed
//!   it, exactly one wins; the other gets `StaleStatus` and moves on;
//! - recording the outcome is `deploying → …` believing `deploying`: of two workers that
//!   both finished a topology (both resumed the same abandoned one), exactly one outcome is
//!   recorded. That is why building must be idempotent: the loser did the same work.
//!
//! The runtime fields (a LAN's network id, a decky's state and address) are written as the
//! build goes; they take no version and no status gate, since only the worker writes them.
//!
//! ```text
//! cargo run --example deployer --features sqlite
//! ```

use std::error::Error;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;

use topostate::TopologyId;
use topostate::TopologyStatus::{
    self, Active, Degraded, Deploying, Failed, Pending, TearingDown, TornDown,
};
use topostate::store::{
    ChildEdit, DeckyRuntime, DeckyState, MAX_PAGE, NewDecky, NewEdge, NewLan, PageRequest,
    Precondition, SqliteStore, StoreError, TopologyDetail, TopologyRecord, TopologyStore, Touched,
};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    run(&dir.path().join("topologies.db"))
}

/// How many topologies a worker takes from one poll.
const BATCH: usize = 50;
/// What one worker did.
#[derive(Debug, Default)]
struct Tally {
    /// Topologies it took from `pending`.
    taken: u32,
    /// Topologies another worker took first.
    lost: u32,
    /// Outcomes it recorded.
    recorded: u32,
    /// Outcomes another worker recorded first.
    beaten: u32,
}

/// The whole run, on a store file at `path` (created if missing).
///
/// # Errors
///
/// Any store error the workers do not expect (the races they expect are handled).
///
/// # Panics
///
/// If the workers' tally differs from the one the races must produce.
pub fn run(path: &Path) -> Result<(), Box<dyn Error>> {
    let store = SqliteStore::open(path)?;
    seed(&store)?;

    // Both workers list their work, then wait for each other before acting: the barrier
    // makes the race certain instead of likely.
    let listed = Arc::new(Barrier::new(2));
    let workers = ["deployer-1", "deployer-2"].map(|name| {
        let path = path.to_owned();
        let listed = Arc::clone(&listed);
        thread::spawn(move || work(name, &path, &listed))
    });
    let mut total = Tally::default();
    for worker in workers {
        let tally = worker.join().map_err(|_| "a worker panicked")??;
        total.taken += tally.taken;
        total.lost += tally.lost;
        total.recorded += tally.recorded;
        total.beaten += tally.beaten;
    }
    // Three pending topologies: each taken once, each lost once. Four outcomes (the three
    // and the abandoned one), each recorded once; the abandoned one was finished twice.
    println!("workers: {total:?}");
    assert_eq!((total.taken, total.lost), (3, 3));
    assert_eq!((total.recorded, total.beaten), (4, 1));

    for topology in store
        .list_topologies(None, PageRequest::first(MAX_PAGE))?
        .items
    {
        let line = format!("{:<14} {:<9}", topology.name, topology.status.as_str());
        match &topology.reason {
            Some(why) => println!("{line} {why}"),
            None => println!("{}", line.trim_end()),
        }
    }

    teardown(&store)?;
    assert!(
        store
            .list_topologies(None, PageRequest::first(1))?
            .items
            .is_empty()
    );
    Ok(())
}

/// One worker: take what is pending, finish what was abandoned in `deploying`.
fn work(name: &str, path: &Path, listed: &Barrier) -> Result<Tally, StoreError> {
    let store = SqliteStore::open(path)?;
    // A worker takes a page of work at a time; the next poll reads the next page.
    let abandoned = store
        .list_topologies(Some(Deploying), PageRequest::first(BATCH))?
        .items;
    let pending = store
        .list_topologies(Some(Pending), PageRequest::first(BATCH))?
        .items;
    listed.wait();

    let mut tally = Tally::default();
    for topology in pending {
        // Believe it is pending at the version listed: if another worker took it, or an
        // editor saved since, this is refused and nothing is written.
        let believed = Precondition::status(Pending).and_version(topology.version);
        match store.transition_status(topology.id, Deploying, None, believed) {
            Ok(_) => {
                tally.taken += 1;
                println!("{name}: took '{}'", topology.name);
            }
            Err(StoreError::StaleStatus { found, .. }) => {
                tally.lost += 1;
                println!("{name}: '{}' is already '{found}': skipped", topology.name);
                continue;
            }
            // An editor saved after the listing: the next poll deploys the new version.
            Err(StoreError::VersionConflict(_)) => continue,
            Err(other) => return Err(other),
        }
        finish(&store, name, &topology, &mut tally)?;
    }
    for topology in abandoned {
        println!("{name}: resuming '{}'", topology.name);
        finish(&store, name, &topology, &mut tally)?;
    }
    Ok(tally)
}

/// Builds a `deploying` topology and records the outcome, believing it still `deploying`.
fn finish(
    store: &SqliteStore,
    name: &str,
    topology: &TopologyRecord,
    tally: &mut Tally,
) -> Result<(), StoreError> {
    let (to, reason) = build(store, &store.topology_detail(topology.id)?)?;
    let believed = Precondition::status(Deploying);
    match store.transition_status(topology.id, to, reason.as_deref(), believed) {
        Ok(done) => {
            tally.recorded += 1;
            println!(
                "{name}: '{}' is now '{}'",
                topology.name, done.topology.status
            );
        }
        Err(StoreError::StaleStatus { found, .. }) => {
            tally.beaten += 1;
            println!("{name}: '{}' was already recorded '{found}'", topology.name);
        }
        Err(other) => return Err(other),
    }
    Ok(())
}

/// Creates the networks and starts the containers, writing the runtime fields as it goes;
/// returns the status to record and why. Idempotent: building twice gives the same rows.
fn build(
    store: &SqliteStore,
    detail: &TopologyDetail,
) -> Result<(TopologyStatus, Option<String>), StoreError> {
    for lan in &detail.lans {
        match create_network(&lan.subnet) {
            Ok(()) => {
                let network = format!("br-{}-{}", detail.topology.id, lan.id);
                store.set_lan_network_id(lan.id, Some(&network))?;
            }
            // Without its networks nothing can start: the deploy failed.
            Err(why) => return Ok((Failed, Some(format!("lan '{}': {why}", lan.name)))),
        }
    }

    let mut down = Vec::new();
    for (host, decky) in (10..).zip(&detail.deckies) {
        let home = detail
            .edges
            .iter()
            .find(|e| e.decky == decky.id)
            .and_then(|e| detail.lans.iter().find(|l| l.id == e.lan));
        let runtime = match (home, start_container(decky.config.as_deref())) {
            (Some(lan), Ok(())) => DeckyRuntime::new()
                .with_state(DeckyState::Running)
                .with_ip(address(&lan.subnet, host))
                .clear_last_error(),
            (None, _) => {
                down.push(decky.name.as_str());
                DeckyRuntime::new()
                    .with_state(DeckyState::Failed)
                    .with_last_error("no lan")
            }
            (_, Err(why)) => {
                down.push(decky.name.as_str());
                DeckyRuntime::new()
                    .with_state(DeckyState::Failed)
                    .with_last_error(why)
            }
        };
        store.set_decky_runtime(decky.id, &runtime)?;
    }

    // Some deckies up, some not: running, but not as designed.
    Ok(if down.is_empty() {
        (Active, None)
    } else {
        (
            Degraded,
            Some(format!("deckies not running: {}", down.join(", "))),
        )
    })
}

/// Tears every topology down and deletes it, each step believing the status it read.
fn teardown(store: &SqliteStore) -> Result<(), StoreError> {
    // Page by page: each page starts after the last topology of the one before, so deleting
    // the rows already read does not move the next page.
    let mut page = Some(PageRequest::first(BATCH));
    while let Some(request) = page {
        let read = store.list_topologies(None, request)?;
        page = read.next_page(BATCH);
        for topology in &read.items {
            teardown_one(store, topology)?;
        }
    }
    Ok(())
}

/// Tears one topology down and deletes it, believing the status it was listed with.
fn teardown_one(store: &SqliteStore, topology: &TopologyRecord) -> Result<(), StoreError> {
    let id = topology.id;
    store.transition_status(id, TearingDown, None, Precondition::status(topology.status))?;
    let detail = store.topology_detail(id)?;
    for lan in &detail.lans {
        store.set_lan_network_id(lan.id, None)?;
    }
    let mut removed = DeckyRuntime::default();
    removed.state = Some(DeckyState::TornDown);
    removed.ip = Some(None);
    for decky in &detail.deckies {
        store.set_decky_runtime(decky.id, &removed)?;
    }
    let done = store.transition_status(id, TornDown, None, Precondition::status(TearingDown))?;
    // The version read with the row: an editor cannot have changed a running topology,
    // but a delete should still say what it believes it deletes.
    store.delete_topology(id, Some(done.topology.version))?;
    println!("teardown: '{}' torn down and deleted", topology.name);
    Ok(())
}

/// The editors' work: three topologies waiting in `pending`, and one a worker took and then
/// crashed on, left in `deploying`.
fn seed(store: &SqliteStore) -> Result<(), StoreError> {
    design(store, "branch-office", "10.0.0.0/24", None)?;
    design(
        store,
        "lab",
        "10.1.0.0/24",
        Some(r#"{"image":"honeypot/telnet:missing"}"#),
    )?;
    // The container runtime's own default network already uses this range.
    design(store, "legacy", "172.17.0.0/16", None)?;
    let abandoned = design(store, "abandoned", "10.2.0.0/24", None)?;
    store.transition_status(abandoned, Deploying, None, Precondition::status(Pending))?;
    Ok(())
}

/// A topology with one LAN and two deckies on it; `odd_config` goes to the second decky.
fn design(
    store: &SqliteStore,
    name: &str,
    subnet: &str,
    odd_config: Option<&str>,
) -> Result<TopologyId, StoreError> {
    let topology = store.create_topology(name)?;
    let mut second = NewDecky::new("telnet");
    second.config = odd_config.map(String::from);
    let report = store.edit(
        topology.id,
        Some(topology.version),
        &[
            ChildEdit::AddLan(NewLan::new("lan", subnet)),
            ChildEdit::AddDecky(NewDecky::new("web")),
            ChildEdit::AddDecky(second),
        ],
    )?;
    if let [
        Touched::Lan(lan),
        Touched::Decky(web),
        Touched::Decky(telnet),
    ] = report.touched[..]
    {
        store.edit(
            topology.id,
            Some(report.version),
            &[
                ChildEdit::AddEdge(NewEdge::new(web, lan)),
                ChildEdit::AddEdge(NewEdge::new(telnet, lan)),
            ],
        )?;
    }
    Ok(topology.id)
}

/// Stands in for the container runtime creating a network.
fn create_network(subnet: &str) -> Result<(), &'static str> {
    if subnet.starts_with("172.17.") {
        return Err("pool overlaps with other one on this address space");
    }
    Ok(())
}

/// Stands in for the container runtime starting a decky.
fn start_container(config: Option<&str>) -> Result<(), &'static str> {
    if config.is_some_and(|c| c.contains(":missing")) {
        return Err("image not found");
    }
    Ok(())
}

/// Host `host` of a `/24`-or-wider subnet written `a.b.c.0/n`.
fn address(subnet: &str, host: u8) -> String {
    let network = subnet.split('/').next().unwrap_or(subnet);
    let prefix = network
        .rsplit_once('.')
        .map_or(network, |(prefix, _)| prefix);
    format!("{prefix}.{host}")
}
