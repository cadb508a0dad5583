//! A mutation applier: drains the queue of live edits on an `active` topology, one at a
//! time, marking each `applied` or `failed` with the reason.
//!
//! Once a topology is live, editors no longer edit it directly: they enqueue a mutation (an
//! operation and a JSON payload), and an applier turns each into edits. Claims are serial
//! per topology: while one applier holds a claim, another asking for work is told
//! `Claim::Busy` (someone is applying; back off), which is not `Claim::Empty` (nothing to
//! do). The claim is the token for the live edits and for the mark, and the store checks it
//! at each use.
//!
//! Two appliers share one SQLite file here, each with its own handle (as two processes
//! would).
//!
//! ```text
//! cargo run --example applier --features sqlite
//! ```

use std::error::Error;
use std::path::Path;

use serde_json::Value;
use topostate::state::Active;
use topostate::store::{
    ChildEdit, Claim, Lease, Mutation, NewDecky, NewEdge, NewLan, PageRequest, SqliteStore,
    StoreError, TopologyDetail, TopologyStore, Touched, TypedStore,
};
use topostate::{MutationOp, MutationState, TopologyId};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    run(&dir.path().join("topologies.db"))
}

/// The whole run, on a store file at `path` (created if missing).
///
/// # Errors
///
/// Any store error the appliers do not expect (refused edits fail their mutation instead).
///
/// # Panics
///
/// If the queue's history differs from the one the appliers must produce.
pub fn run(path: &Path) -> Result<(), Box<dyn Error>> {
    let store = SqliteStore::open(path)?;
    let id = live_topology(&store)?;

    // An editor queues four live edits through its `active` handle; each enqueue passes
    // the handle's version and bumps it, so a stale editor cannot queue blind.
    let mut lab = store.load_as::<Active>(id)?;
    for (op, payload) in [
        (
            MutationOp::AddLan,
            r#"{"name":"lan-b","subnet":"10.0.2.0/24"}"#,
        ),
        (
            MutationOp::AddDecky,
            r#"{"name":"ssh-2","services":["ssh"]}"#,
        ),
        (
            MutationOp::AttachDecky,
            r#"{"decky":"ssh-2","lan":"lan-b"}"#,
        ),
        // `web` has no other LAN: the store will refuse this one.
        (MutationOp::RemoveLan, r#"{"name":"dmz"}"#),
    ] {
        let queued = store.enqueue(&mut lab, op, payload)?;
        println!("editor: queued #{queued} {op} {payload}");
    }

    let first = SqliteStore::open(path)?;
    let second = SqliteStore::open(path)?;

    // The first applier claims the oldest mutation...
    let Claim::Claimed {
        mutation,
        lease: claim,
    } = first.claim_next_mutation(id)?
    else {
        return Err("four mutations are queued, yet none was claimed".into());
    };
    println!("applier-1: claimed #{} {}", mutation.id, mutation.op);
    // ...and while it holds the claim, the second one is told to back off.
    match second.claim_next_mutation(id)? {
        Claim::Busy { applying } => println!("applier-2: busy, #{applying} is applying"),
        other => return Err(format!("expected a busy queue, got {other:?}").into()),
    }
    apply(&first, "applier-1", &mutation, claim)?;
    drain(&first, "applier-1", id)?;
    if second.claim_next_mutation(id)? == Claim::Empty {
        println!("applier-2: nothing to do");
    }

    // The queue's history, read a page at a time (newest first), then shown oldest first:
    // what happened to each edit, and why.
    let mut history = Vec::new();
    let mut page = Some(PageRequest::first(2));
    while let Some(request) = page {
        let read = store.list_mutations(id, None, request)?;
        page = read.next_page(2);
        history.extend(read.items);
    }
    for mutation in history.iter().rev() {
        let (op, state) = (mutation.op.as_str(), mutation.state.as_str());
        let line = format!("#{} {op:<12} {state:<8}", mutation.id);
        match &mutation.reason {
            Some(why) => println!("{line} {why}"),
            None => println!("{}", line.trim_end()),
        }
    }
    let detail = store.topology_detail(id)?;
    let lans: Vec<&str> = detail.lans.iter().map(|l| l.name.as_str()).collect();
    let deckies: Vec<&str> = detail.deckies.iter().map(|d| d.name.as_str()).collect();
    println!(
        "now: lans {lans:?}, deckies {deckies:?}, {} edges",
        detail.edges.len()
    );

    let states: Vec<MutationState> = history.iter().map(|m| m.state).collect();
    assert_eq!(
        states,
        [
            MutationState::Failed,
            MutationState::Applied,
            MutationState::Applied,
            MutationState::Applied
        ]
    );
    assert_eq!(
        (lans, deckies),
        (vec!["dmz", "lan-b"], vec!["ssh-2", "web"])
    );
    Ok(())
}

/// Claims and applies mutations until the queue is empty.
fn drain(store: &SqliteStore, name: &str, id: TopologyId) -> Result<(), StoreError> {
    // Stop on anything but a claim: `Busy` means another applier holds one and will take
    // the rest, `Empty` that nothing is left.
    while let Claim::Claimed {
        mutation,
        lease: claim,
    } = store.claim_next_mutation(id)?
    {
        println!("{name}: claimed #{} {}", mutation.id, mutation.op);
        apply(store, name, &mutation, claim)?;
    }
    Ok(())
}

/// Applies one claimed mutation and marks it.
///
/// A refused mutation is marked `failed` with the reason; an error of the store itself
/// (I/O, a lost connection) is returned and the claim stays `applying`: whether the edit
/// was written is unknown. The claim's lease then passes and the next claim takes the
/// mutation over; live edits this claim committed are not applied twice.
fn apply(
    store: &SqliteStore,
    name: &str,
    mutation: &Mutation,
    claim: Lease,
) -> Result<(), StoreError> {
    // Claims are serial per topology and free-form edits stopped at deploy, so nothing
    // else changes the children until this claim is marked: this read stays current.
    let detail = store.topology_detail(claim.topology_id())?;
    let refused = match edits_for(mutation, &detail) {
        Err(why) => why,
        Ok(edits) => match store.apply_live(&claim, &edits) {
            Ok(_) => {
                store.mark_mutation_applied(claim)?;
                println!("{name}: applied #{}", mutation.id);
                return Ok(());
            }
            // Nothing was written: the edits were refused as a whole.
            Err(
                refused @ (StoreError::LanInUse { .. }
                | StoreError::Duplicate { .. }
                | StoreError::NotFound { .. }
                | StoreError::ForeignEnd { .. }
                | StoreError::Invalid { .. }
                | StoreError::NotEditable(_)),
            ) => refused.to_string(),
            Err(other) => return Err(other),
        },
    };
    let failed = store.mark_mutation_failed(claim, &refused)?;
    println!("{name}: failed #{}: {refused}", failed.id);
    Ok(())
}

/// The edits a mutation asks for, or why it cannot be applied.
fn edits_for(mutation: &Mutation, detail: &TopologyDetail) -> Result<Vec<ChildEdit>, String> {
    let payload: Value =
        serde_json::from_str(&mutation.payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    let text = |key: &str| {
        payload
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("payload has no text '{key}'"))
    };
    let lan = |name: &str| {
        detail
            .lans
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.id)
            .ok_or_else(|| format!("no lan named '{name}'"))
    };
    let edit = match mutation.op {
        MutationOp::AddLan => ChildEdit::AddLan(NewLan::new(text("name")?, text("subnet")?)),
        MutationOp::AddDecky => {
            let services = payload
                .get("services")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str);
            ChildEdit::AddDecky(NewDecky::new(text("name")?).with_services(services))
        }
        MutationOp::AttachDecky => {
            let name = text("decky")?;
            let decky = detail
                .deckies
                .iter()
                .find(|d| d.name == name)
                .ok_or_else(|| format!("no decky named '{name}'"))?;
            ChildEdit::AddEdge(NewEdge::new(decky.id, lan(text("lan")?)?))
        }
        MutationOp::RemoveLan => ChildEdit::DeleteLan(lan(text("name")?)?.into()),
        other => return Err(format!("'{other}' is not supported by this applier")),
    };
    Ok(vec![edit])
}

/// An `active` topology with a DMZ and a web decky on it: what the editor and the
/// deployer examples leave behind.
fn live_topology(store: &SqliteStore) -> Result<TopologyId, StoreError> {
    let mut lab = store.create("branch-office")?;
    let report = store.edit_pending(
        &mut lab,
        &[
            ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24")),
            ChildEdit::AddDecky(NewDecky::new("web")),
        ],
    )?;
    if let [Touched::Lan(dmz), Touched::Decky(web)] = report.touched[..] {
        store.edit_pending(&mut lab, &[ChildEdit::AddEdge(NewEdge::new(web, dmz))])?;
    }
    let lab = store.advance(lab, topostate::Topology::deploy)?;
    let lab = store.advance(lab, topostate::Topology::activate)?;
    println!(
        "setup: '{}' is active at version {}",
        lab.value().name(),
        lab.version()
    );
    Ok(lab.id())
}
