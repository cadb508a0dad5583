//! A canvas editor: builds a topology with versioned batch edits, meets another editor's
//! write, and deploys what it saw.
//!
//! The editor holds a typed handle, `Versioned<Topology<Pending>>`: the topology as it last
//! read it, with the version it read. Every save passes that version; the store checks it
//! and bumps it in the same atomic step as the write. When a second editor (another
//! browser tab: here, a second `SqliteStore` handle on the same file) saves first, the
//! first editor's next save is refused with a `VersionConflict` instead of overwriting
//! what it never saw. It re-reads, looks at what changed, and saves again.
//!
//! ```text
//! cargo run --example editor --features sqlite
//! ```

use std::error::Error;
use std::path::Path;

use topostate::state::{Deploying, Pending};
use topostate::store::{
    ChildEdit, DeckyId, DeckyPatch, LanPatch, NewDecky, NewEdge, NewLan, RowRef, SqliteStore,
    StoreError, TopologyStore, TypedStore,
};
use topostate::{Topology, TopologyId, Versioned};

/// The canvas as this editor last saw it: a pending topology and the version it read.
type Canvas = Versioned<Topology<Pending>>;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    run(&dir.path().join("topologies.db"))
}

/// The whole session, on a store file at `path` (created if missing).
///
/// # Errors
///
/// Any store error the flow does not expect (the one conflict it expects is handled).
pub fn run(path: &Path) -> Result<(), Box<dyn Error>> {
    let store = SqliteStore::open(path)?;

    let mut canvas = store.create("branch-office")?;
    let id = canvas.id();
    println!(
        "editor: created '{}' at version {}",
        canvas.value().name(),
        canvas.version()
    );

    // One save, one version: the LANs, deckies and edges drawn so far go in as one batch,
    // all or nothing. An edge names a new LAN or decky by its edit's index in the batch
    // (`RowRef::Batch`), so nobody can save between the rows and their edges.
    let dmz = NewLan::new("dmz", "10.0.0.0/24").with_dmz(true);
    let web = NewDecky::new("web").with_services(["http", "https"]);
    let mail = NewDecky::new("mail").with_services(["smtp", "imap"]);
    // The gateway sits in both LANs and bridges them.
    let bridge = NewEdge::new(RowRef::Batch(4), RowRef::Batch(1)).with_bridge(true);
    let report = store.edit_pending(
        &mut canvas,
        &[
            ChildEdit::AddLan(dmz),                                  // 0
            ChildEdit::AddLan(NewLan::new("office", "10.0.1.0/24")), // 1
            ChildEdit::AddDecky(web),                                // 2
            ChildEdit::AddDecky(mail),                               // 3
            ChildEdit::AddDecky(NewDecky::new("gw")),                // 4
            ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(2), RowRef::Batch(0))),
            ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(3), RowRef::Batch(0))),
            ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(4), RowRef::Batch(0))),
            ChildEdit::AddEdge(bridge),
        ],
    )?;
    // The report gives the id each new row got.
    let (Some(office), Some(web)) = (report.lan(RowRef::Batch(1)), report.decky(RowRef::Batch(2)))
    else {
        return Err("the store reported other rows than the ones added".into());
    };
    println!(
        "editor: saved 2 LANs, 3 deckies and 4 edges; now at version {}",
        canvas.version()
    );

    // Meanwhile, a colleague in another tab (another handle, another connection) reads the
    // canvas and drags the web decky somewhere else.
    colleague_moves(path, id, web)?;

    // Our editor, still at the version it read, renames the office LAN.
    let mut rename = LanPatch::default();
    rename.name = Some("staff".into());
    let edit = [ChildEdit::UpdateLan(office.into(), rename)];
    match store.edit_pending(&mut canvas, &edit) {
        Err(StoreError::VersionConflict(conflict)) => {
            // Nothing was written, and the handle kept the version it had.
            println!("editor: refused: {conflict}");
            canvas = reread(&store, id)?;
            store.edit_pending(&mut canvas, &edit)?;
            println!(
                "editor: renamed 'office' to 'staff'; now at version {}",
                canvas.version()
            );
        }
        Ok(_) => return Err("a save with a stale version was accepted".into()),
        Err(other) => return Err(other.into()),
    }

    // Deploying passes the handle's version too: what the deployer builds is exactly what
    // this editor last saw. Had the colleague saved again since, this would be a conflict.
    let deploying: Versioned<Topology<Deploying>> =
        store.advance(canvas, topostate::Topology::deploy)?;
    println!(
        "editor: deployed version {}; status is now '{}'",
        deploying.version(),
        deploying.status()
    );

    // From here on the canvas is live: free-form edits are refused, and changes go through
    // the mutation queue once the deployer has made it active (see the applier example).
    let late = store.edit(
        id,
        Some(deploying.version()),
        &[ChildEdit::AddDecky(NewDecky::new("ftp"))],
    );
    match late {
        Err(StoreError::NotEditable(refused)) => println!("editor: refused: {refused}"),
        Ok(_) => return Err("a deploying topology took a free-form edit".into()),
        Err(other) => return Err(other.into()),
    }
    Ok(())
}

/// The other tab: its own handle on the file, its own read, its own save.
fn colleague_moves(path: &Path, id: TopologyId, web: DeckyId) -> Result<(), StoreError> {
    let store = SqliteStore::open(path)?;
    let mut canvas = store.load_as::<Pending>(id)?;
    let moved = DeckyPatch::new().with_x(Some(320.0)).with_y(Some(80.0));
    store.edit_pending(&mut canvas, &[ChildEdit::UpdateDecky(web.into(), moved)])?;
    println!(
        "colleague: moved 'web' on the canvas; now at version {}",
        canvas.version()
    );
    Ok(())
}

/// Re-reads the canvas after a conflict and shows what the other editor changed.
fn reread(store: &SqliteStore, id: TopologyId) -> Result<Canvas, StoreError> {
    // The handle first, then the rows: if a third editor saves in between, the rows shown
    // are newer than the handle's version and the next save is refused again, rather than
    // the other way round (a handle newer than the rows shown would save over a change
    // nobody looked at).
    let canvas = store.load_as::<Pending>(id)?;
    let detail = store.topology_detail(id)?;
    for decky in &detail.deckies {
        if let (Some(x), Some(y)) = (decky.x, decky.y) {
            println!("editor: re-read: '{}' is now at ({x}, {y})", decky.name);
        }
    }
    Ok(canvas)
}
