//! `demo`: one topology's whole life on a SQLite file, narrated.
//!
//! Two editors (two handles on the same file, as two processes would have) share the
//! topology, so the demo can show a stale write being refused and resolved by re-reading.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use topostate::store::{
    ChildEdit, Claim, DeckyId, LanId, Listed, NewDecky, NewEdge, NewLan, Page, PageRequest,
    SqliteStore, StoreError, TopologyStore, Touched, TypedStore,
};
use topostate::{MutationOp, Topology, TopologyId, Versioned, state};

use crate::output::{Outcome, counted};

/// `demo [--db PATH]`: runs the demo on `db` (which must not exist yet) or on a temporary
/// file removed afterwards.
///
/// # Errors
///
/// An existing `db`, a file that cannot be created, any store error the demo did not
/// expect, or an I/O error on `out`.
pub fn demo(db: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    match db {
        Some(path) => {
            if path.exists() {
                bail!(
                    "{} already exists; the demo writes a fresh database, so pass a path that does not exist yet",
                    path.display()
                );
            }
            run_on(path, "kept", out)
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("topostate-demo-")
                .tempdir()
                .context("cannot create a temporary directory for the demo database")?;
            let path: PathBuf = dir.path().join("demo.sqlite");
            let outcome = run_on(&path, "temporary; pass --db PATH to keep it", out)?;
            dir.close()
                .context("cannot remove the temporary demo database")?;
            Ok(outcome)
        }
    }
}

/// Opens two handles on `path` and narrates; `note` says what becomes of the file.
fn run_on(path: &Path, note: &str, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let open = || {
        SqliteStore::open(path).with_context(|| {
            format!(
                "cannot create the demo database at {} (expected a writable path in an existing directory)",
                path.display()
            )
        })
    };
    let alice = open()?;
    let bob = open()?;
    writeln!(out, "database: {} ({note})", path.display())?;
    narrate(&alice, &bob, out)?;
    Ok(Outcome::Clean)
}

/// The ids the edits of one batch touched, all of the kind `pick` accepts.
fn touched<I>(touched: &[Touched], pick: impl Fn(Touched) -> Option<I>) -> anyhow::Result<Vec<I>> {
    let ids: Vec<I> = touched.iter().copied().filter_map(pick).collect();
    if ids.len() == touched.len() {
        Ok(ids)
    } else {
        bail!("the store reported rows of another kind than the edits it was given")
    }
}

fn lans(report: &[Touched]) -> anyhow::Result<Vec<LanId>> {
    touched(report, |t| match t {
        Touched::Lan(id) => Some(id),
        _ => None,
    })
}

fn deckies(report: &[Touched]) -> anyhow::Result<Vec<DeckyId>> {
    touched(report, |t| match t {
        Touched::Decky(id) => Some(id),
        _ => None,
    })
}

/// A decky offering `services`.
fn decky(name: &str, services: &[&str]) -> NewDecky {
    NewDecky::new(name).with_services(services.iter().copied())
}

/// How wide the margin before each narrated line is: it names the version move
/// (`version 10 → 11` at most in the demo) or the refusal.
const MARGIN: usize = 16;

/// Prints one line of the story after `margin`, so every line's text starts in one column.
fn say(out: &mut dyn Write, margin: &str, text: impl std::fmt::Display) -> std::io::Result<()> {
    writeln!(out, "   {margin:<MARGIN$}{text}")
}

/// Prints one step of the story with the versions it moved the topology between.
fn bumped(out: &mut dyn Write, step: &str, before: u64, after: u64) -> std::io::Result<()> {
    say(out, &format!("version {before} → {after}"), step)
}

/// Prints one step that kept the topology at `version`.
fn kept(out: &mut dyn Write, step: &str, version: u64) -> std::io::Result<()> {
    say(out, &format!("version {version}"), step)
}

/// Pulls exactly one element out of a list the demo built itself.
fn one<T: Copy>(items: &[T], what: &str) -> anyhow::Result<T> {
    match items {
        [item] => Ok(*item),
        _ => bail!("expected one {what}, the store reported {}", items.len()),
    }
}

/// Pulls two elements out of a list the demo built itself.
fn two<T: Copy>(items: &[T], what: &str) -> anyhow::Result<(T, T)> {
    match items {
        [a, b] => Ok((*a, *b)),
        _ => bail!("expected two {what}, the store reported {}", items.len()),
    }
}

/// The story, on any store; `alice` and `bob` are two handles on the same data.
fn narrate<S: TopologyStore>(alice: &S, bob: &S, out: &mut dyn Write) -> anyhow::Result<()> {
    // 1. Create.
    writeln!(out, "\n== 1. create (alice)")?;
    let mut lab = alice.create("lab")?;
    let id = lab.id();
    say(
        out,
        "",
        format_args!(
            "topology {id} 'lab' is {} at version {}",
            lab.status(),
            lab.version()
        ),
    )?;

    // 2. Edit while pending: each batch passes the handle's version and takes the new one.
    writeln!(
        out,
        "\n== 2. edit while pending (alice; each batch checks and bumps the version)"
    )?;
    let before = lab.version();
    let dmz = NewLan::new("dmz", "10.0.0.0/24").with_dmz(true);
    let report = alice.edit_pending(
        &mut lab,
        &[
            ChildEdit::AddLan(dmz),
            ChildEdit::AddLan(NewLan::new("lan-a", "10.0.1.0/24")),
        ],
    )?;
    let (dmz, lan_a) = two(&lans(&report.touched)?, "lans")?;
    bumped(
        out,
        "+ lan 'dmz' 10.0.0.0/24 (the DMZ), + lan 'lan-a' 10.0.1.0/24",
        before,
        lab.version(),
    )?;
    let before = lab.version();
    let report = alice.edit_pending(
        &mut lab,
        &[
            ChildEdit::AddDecky(decky("web-1", &["http", "ssh"])),
            ChildEdit::AddDecky(decky("db-1", &["mysql"])),
        ],
    )?;
    let (web, db) = two(&deckies(&report.touched)?, "deckies")?;
    bumped(
        out,
        "+ decky 'web-1' (http, ssh), + decky 'db-1' (mysql)",
        before,
        lab.version(),
    )?;
    let before = lab.version();
    let bridge = NewEdge::new(web, lan_a).with_bridge(true);
    alice.edit_pending(
        &mut lab,
        &[
            ChildEdit::AddEdge(NewEdge::new(web, dmz)),
            ChildEdit::AddEdge(bridge),
            ChildEdit::AddEdge(NewEdge::new(db, lan_a)),
        ],
    )?;
    bumped(
        out,
        "+ edges web-1↔dmz, web-1↔lan-a (bridge), db-1↔lan-a",
        before,
        lab.version(),
    )?;

    // 3. Two editors: a stale write is refused, never lost.
    writeln!(out, "\n== 3. two editors, one stale")?;
    let mut bobs: Versioned<Topology<state::Pending>> = bob.load_as(id)?;
    say(
        out,
        "",
        format_args!(
            "alice and bob both hold topology {id} at version {}",
            bobs.version()
        ),
    )?;
    let before = lab.version();
    let report =
        alice.edit_pending(&mut lab, &[ChildEdit::AddDecky(decky("mail-1", &["smtp"]))])?;
    bumped(out, "alice adds decky 'mail-1'", before, lab.version())?;
    let mail = one(&deckies(&report.touched)?, "decky")?;
    let before = lab.version();
    alice.edit_pending(&mut lab, &[ChildEdit::AddEdge(NewEdge::new(mail, dmz))])?;
    bumped(out, "alice adds edge mail-1↔dmz", before, lab.version())?;
    let lan_b = || ChildEdit::AddLan(NewLan::new("lan-b", "10.0.2.0/24"));
    match bob.edit_pending(&mut bobs, &[lan_b()]) {
        Err(StoreError::VersionConflict(conflict)) => {
            say(
                out,
                "refused",
                format_args!("bob adds lan 'lan-b' with his view: {conflict}"),
            )?;
        }
        Err(other) => return Err(other.into()),
        Ok(_) => bail!("bob's stale write was accepted; the store lost alice's update"),
    }
    bobs = bob.load_as(id)?;
    let before = bobs.version();
    bob.edit_pending(&mut bobs, &[lan_b()])?;
    bumped(
        out,
        "bob re-reads (alice's decky included) and retries: ok",
        before,
        bobs.version(),
    )?;
    let lab = match alice.advance(lab, topostate::Topology::deploy) {
        Err(StoreError::VersionConflict(conflict)) => {
            say(
                out,
                "refused",
                format_args!("alice deploys what she saw (she has not seen lan-b): {conflict}"),
            )?;
            alice.load_as::<state::Pending>(id)?
        }
        Err(other) => return Err(other.into()),
        Ok(_) => bail!("alice deployed a topology she had not seen"),
    };
    say(
        out,
        "",
        format_args!(
            "alice re-reads (version {}) and deploys what is there",
            lab.version()
        ),
    )?;

    // 4. Deploy and activate: typed transitions, each recorded with the believed status.
    writeln!(out, "\n== 4. deploy and activate (typed transitions)")?;
    let lab = alice.advance(lab, topostate::Topology::deploy)?;
    kept(out, &format!("pending → {}", lab.status()), lab.version())?;
    let mut lab = alice.advance(lab, topostate::Topology::activate)?;
    kept(
        out,
        &format!(
            "deploying → {} (status changes keep the version)",
            lab.status()
        ),
        lab.version(),
    )?;

    // 5. A live edit goes through the mutation queue.
    writeln!(out, "\n== 5. live edit through the mutation queue")?;
    let payload =
        serde_json::json!({ "name": "files-1", "services": ["smb"], "lan": "lan-a" }).to_string();
    let before = lab.version();
    let mutation = alice.enqueue(&mut lab, MutationOp::AddDecky, &payload)?;
    bumped(
        out,
        &format!(
            "alice enqueues mutation {mutation}: {} {payload}",
            MutationOp::AddDecky
        ),
        before,
        lab.version(),
    )?;
    let claim = match bob.claim_next_mutation(id)? {
        Claim::Claimed {
            mutation,
            lease: claim,
        } => {
            say(
                out,
                "",
                format_args!(
                    "the applier (bob) claims mutation {}: {}",
                    mutation.id, mutation.state
                ),
            )?;
            claim
        }
        Claim::Busy { applying } => bail!("mutation {applying} is unexpectedly being applied"),
        Claim::Empty => bail!("the queue is unexpectedly empty"),
    };
    let report = bob.apply_live(&claim, &[ChildEdit::AddDecky(decky("files-1", &["smb"]))])?;
    let files = one(&deckies(&report.touched)?, "decky")?;
    bob.apply_live(&claim, &[ChildEdit::AddEdge(NewEdge::new(files, lan_a))])?;
    say(out, "", "applies it live: + decky 'files-1' on lan-a")?;
    let applied = bob.mark_mutation_applied(claim)?;
    say(
        out,
        "",
        format_args!("mutation {} is now {}", applied.id, applied.state),
    )?;

    // 6. Tear down.
    writeln!(out, "\n== 6. tear down")?;
    let lab = alice.load_as::<state::Active>(id)?;
    let lab = alice.advance(lab, topostate::Topology::tear_down)?;
    kept(out, &format!("active → {}", lab.status()), lab.version())?;
    let lab = alice.advance(lab, topostate::Topology::finish_teardown)?;
    kept(
        out,
        &format!("tearing_down → {}", lab.status()),
        lab.version(),
    )?;

    summary(alice, id, out)
}

/// A whole list, read a page at a time.
fn every_page<T: Listed>(
    mut read: impl FnMut(PageRequest<T::Key>) -> Result<Page<T>, StoreError>,
) -> Result<Vec<T>, StoreError> {
    const PAGE: usize = 100;
    let mut all = Vec::new();
    let mut request = Some(PageRequest::first(PAGE));
    while let Some(next) = request {
        let page = read(next)?;
        request = page.next_page(PAGE);
        all.extend(page.items);
    }
    Ok(all)
}

/// The status log (oldest first), the mutations and the final versions.
fn summary<S: TopologyStore>(store: &S, id: TopologyId, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "\n== status log (oldest first)")?;
    let mut events = every_page(|page| store.list_status_events(id, page))?;
    events.reverse();
    // `as_str`, as the names' `Display` does not pad.
    let from_width = events
        .iter()
        .map(|e| e.from.as_str().len())
        .max()
        .unwrap_or(0);
    for event in &events {
        let id = format!("#{}", event.id);
        write!(
            out,
            "   {id:<4} {:<from_width$} → {}",
            event.from.as_str(),
            event.to
        )?;
        if let Some(reason) = &event.reason {
            write!(out, "   ({reason})")?;
        }
        writeln!(out)?;
    }

    writeln!(out, "\n== mutations")?;
    let mutations = every_page(|page| store.list_mutations(id, None, page))?;
    let op_width = mutations
        .iter()
        .map(|m| m.op.as_str().len())
        .max()
        .unwrap_or(0);
    for mutation in mutations {
        let id = format!("#{}", mutation.id);
        writeln!(
            out,
            "   {id:<4} {:<op_width$} {}",
            mutation.op.as_str(),
            mutation.state
        )?;
    }

    let detail = store.topology_detail(id)?;
    let record = &detail.topology;
    writeln!(out, "\n== final")?;
    writeln!(
        out,
        "   topology {} '{}': {} at version {} ({}, {}, {})",
        record.id,
        record.name,
        record.status,
        record.version,
        counted(detail.lans.len() as u64, "lan", "lans"),
        counted(detail.deckies.len() as u64, "decky", "deckies"),
        counted(detail.edges.len() as u64, "edge", "edges")
    )?;
    writeln!(
        out,
        "   versions: 1 at create, +1 per pending edit batch, +1 per enqueued mutation; status changes never bump"
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_story_runs_on_one_in_memory_store() -> anyhow::Result<()> {
        let store = SqliteStore::open_in_memory()?;
        let mut out = Vec::new();
        // One handle for both editors: the versions still go stale in the same way.
        narrate(&store, &store, &mut out)?;
        let text = String::from_utf8(out)?;
        assert!(text.contains("version conflict"), "{text}");
        assert!(text.contains("torn_down at version"), "{text}");
        Ok(())
    }
}
