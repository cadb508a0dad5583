//! One topology as one aggregate: its row and all its children, behind one lock, and the
//! writing of an edit that the staging room accepted.

use std::collections::{BTreeMap, BTreeSet};
use std::vec::Vec;

use crate::store::model::Referable;
use crate::store::{
    ChildEdit, Decky, DeckyId, DeckyState, Edge, EdgeId, Lan, LanId, Mutation, MutationId, RowRef,
    StatusEvent, TopologyDetail, TopologyRecord, Touched,
};

use super::Inner;
use super::index::IdMap;
use super::rows::{Rows, hash_name};

/// A topology and everything it owns: the unit one lock guards, so writers to different
/// topologies never wait on each other.
pub(super) struct Aggregate {
    /// The topology row: status, version, name.
    pub(super) row: TopologyRecord,
    /// Set (under its catalog shard's write lock) when the topology is deleted, for
    /// threads that found the aggregate before that.
    pub(super) deleted: bool,
    /// Its child rows and their indexes.
    pub(super) kids: Children,
}

/// The child rows of one topology, with the indexes its checks read.
#[derive(Default)]
pub(super) struct Children {
    /// LANs by id, names indexed.
    pub(super) lans: Rows<LanId, Lan>,
    /// Deckies by id, names indexed.
    pub(super) deckies: Rows<DeckyId, Decky>,
    /// Edges by id: the contract lists them in id order.
    pub(super) edges: BTreeMap<EdgeId, Edge>,
    /// Each edge by its decky ↔ LAN pair, which is unique. Invariant: `pairs`,
    /// `lan_edges` and `decky_edges` index exactly `edges`.
    pub(super) pairs: IdMap<(DeckyId, LanId), EdgeId>,
    /// Each LAN's edges, for deleting a LAN and finding the deckies it would strand.
    pub(super) lan_edges: IdMap<LanId, BTreeSet<EdgeId>>,
    /// Each decky's edges, for deleting a decky and counting its LANs.
    pub(super) decky_edges: IdMap<DeckyId, BTreeSet<EdgeId>>,
    /// The status log, in id (append) order.
    pub(super) events: Vec<StatusEvent>,
    /// The mutation queue by id, which is enqueue order.
    pub(super) mutations: BTreeMap<MutationId, Mutation>,
    /// Invariant: the ids of the `pending` mutations, so the first is the next to claim.
    pub(super) pending: BTreeSet<MutationId>,
    /// Invariant: the id of the one `applying` mutation, if any (claims are serial).
    pub(super) applying: Option<MutationId>,
}

impl Aggregate {
    /// A new topology, with no children.
    pub(super) fn new(row: TopologyRecord) -> Self {
        Self {
            row,
            deleted: false,
            kids: Children::default(),
        }
    }

    /// The topology with its children, in the contract's order: LANs and deckies by name,
    /// edges by id.
    pub(super) fn detail(&self) -> TopologyDetail {
        let kids = &self.kids;
        let mut lans: Vec<Lan> = kids.lans.values().cloned().collect();
        lans.sort_by(|a, b| a.name.cmp(&b.name));
        let mut deckies: Vec<Decky> = kids.deckies.values().cloned().collect();
        deckies.sort_by(|a, b| a.name.cmp(&b.name));
        TopologyDetail {
            topology: self.row.clone(),
            lans,
            deckies,
            edges: kids.edges.values().copied().collect(),
        }
    }

    /// Writes one edit that [`Stage::check`](super::stage::Stage::check) accepted; nothing
    /// here can fail. The edit is owned so its strings move into the rows; `name_hash` is
    /// the hash [`precheck`](super::batch::precheck) computed for the name the edit
    /// sets, if it sets one; `touched` the rows the batch's earlier edits touched, which
    /// its batch-local references name.
    pub(super) fn apply(
        &mut self,
        inner: &Inner,
        edit: ChildEdit,
        name_hash: Option<u64>,
        touched: &[Touched],
    ) -> Touched {
        let topology_id = self.row.id;
        let hasher = &inner.name_hasher;
        let kids = &mut self.kids;
        match edit {
            ChildEdit::AddLan(new) => {
                let id = LanId::new(inner.seq.lans.mint());
                let hash = name_hash.unwrap_or_else(|| hash_name(hasher, &new.name));
                kids.lans.insert(
                    id,
                    Lan {
                        id,
                        topology_id,
                        name: new.name,
                        subnet: new.subnet,
                        is_dmz: new.is_dmz,
                        network_id: None,
                        x: new.x,
                        y: new.y,
                    },
                    hash,
                );
                inner.lan_owners.insert(id.get(), topology_id);
                Touched::Lan(id)
            }
            ChildEdit::UpdateLan(lan, patch) => {
                let id = resolve(lan, touched);
                if let Some(name) = patch.name {
                    let hash = name_hash.unwrap_or_else(|| hash_name(hasher, &name));
                    kids.lans.rename(hasher, id, name, hash);
                }
                if let Some(lan) = kids.lans.get_mut(&id) {
                    if let Some(subnet) = patch.subnet {
                        lan.subnet = subnet;
                    }
                    if let Some(is_dmz) = patch.is_dmz {
                        lan.is_dmz = is_dmz;
                    }
                    if let Some(x) = patch.x {
                        lan.x = x;
                    }
                    if let Some(y) = patch.y {
                        lan.y = y;
                    }
                }
                Touched::Lan(id)
            }
            ChildEdit::DeleteLan(lan) => {
                let id = resolve(lan, touched);
                if kids.lans.remove(hasher, &id).is_some() {
                    inner.lan_owners.remove(id.get());
                }
                for edge in kids.lan_edges.remove(&id).unwrap_or_default() {
                    kids.remove_edge(edge);
                }
                Touched::Lan(id)
            }
            ChildEdit::AddDecky(new) => {
                let id = DeckyId::new(inner.seq.deckies.mint());
                let hash = name_hash.unwrap_or_else(|| hash_name(hasher, &new.name));
                kids.deckies.insert(
                    id,
                    Decky {
                        id,
                        topology_id,
                        name: new.name,
                        services: new.services,
                        config: new.config,
                        state: DeckyState::Pending,
                        ip: None,
                        last_error: None,
                        x: new.x,
                        y: new.y,
                    },
                    hash,
                );
                inner.decky_owners.insert(id.get(), topology_id);
                Touched::Decky(id)
            }
            ChildEdit::UpdateDecky(decky, patch) => {
                let id = resolve(decky, touched);
                if let Some(name) = patch.name {
                    let hash = name_hash.unwrap_or_else(|| hash_name(hasher, &name));
                    kids.deckies.rename(hasher, id, name, hash);
                }
                if let Some(decky) = kids.deckies.get_mut(&id) {
                    if let Some(services) = patch.services {
                        decky.services = services;
                    }
                    if let Some(config) = patch.config {
                        decky.config = config;
                    }
                    if let Some(x) = patch.x {
                        decky.x = x;
                    }
                    if let Some(y) = patch.y {
                        decky.y = y;
                    }
                }
                Touched::Decky(id)
            }
            ChildEdit::DeleteDecky(decky) => {
                let id = resolve(decky, touched);
                if kids.deckies.remove(hasher, &id).is_some() {
                    inner.decky_owners.remove(id.get());
                }
                for edge in kids.decky_edges.remove(&id).unwrap_or_default() {
                    kids.remove_edge(edge);
                }
                Touched::Decky(id)
            }
            ChildEdit::AddEdge(new) => {
                let id = EdgeId::new(inner.seq.edges.mint());
                let (decky, lan) = (resolve(new.decky, touched), resolve(new.lan, touched));
                kids.edges.insert(
                    id,
                    Edge {
                        id,
                        topology_id,
                        decky,
                        lan,
                        is_bridge: new.is_bridge,
                        forwards_l3: new.forwards_l3,
                    },
                );
                kids.pairs.insert((decky, lan), id);
                kids.lan_edges.entry(lan).or_default().insert(id);
                kids.decky_edges.entry(decky).or_default().insert(id);
                Touched::Edge(id)
            }
            ChildEdit::DeleteEdge(id) => {
                kids.remove_edge(id);
                Touched::Edge(id)
            }
        }
    }
}

impl Children {
    /// Removes an edge and its index entries (those still present).
    fn remove_edge(&mut self, id: EdgeId) {
        if let Some(edge) = self.edges.remove(&id) {
            self.pairs.remove(&(edge.decky, edge.lan));
            if let Some(edges) = self.lan_edges.get_mut(&edge.lan) {
                edges.remove(&id);
            }
            if let Some(edges) = self.decky_edges.get_mut(&edge.decky) {
                edges.remove(&id);
            }
        }
    }
}

/// The id a reference names once the batch's earlier edits are written: a stored id as it
/// is, a batch-local reference as the row its edit added.
fn resolve<I: Referable>(reference: RowRef<I>, touched: &[Touched]) -> I {
    match reference {
        RowRef::Stored(id) => id,
        // Invariant: the stage accepted the reference, so edit `i` came earlier and added a
        // row of this kind; id 0, which no row has, is never reached.
        RowRef::Batch(i) => touched
            .get(i)
            .copied()
            .and_then(I::of)
            .unwrap_or_else(|| I::from_raw(0)),
    }
}
