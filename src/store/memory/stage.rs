//! Staging: checking each edit of a batch against the aggregate as the earlier edits of
//! the batch would leave it, before anything is written.

use std::collections::BTreeSet;
use std::vec::Vec;

use crate::TopologyId;
use crate::store::policy::check_refs;
use crate::store::{ChildEdit, DeckyId, EdgeId, Entity, LanId, RowRef, StoreError};

use super::aggregate::Aggregate;
use super::batch::Prepared;
use super::changes::{EdgeChanges, NameChanges, Row};
use super::index::Owners;
use super::rows::hash_name;
use super::{Inner, duplicate, not_found};

/// What a batch has changed so far, for checking its next edit as if the earlier ones had
/// been written. It holds only the changes (never a copy of the aggregate), so checking
/// an edit costs the same on an aggregate of ten rows or ten thousand.
///
/// Every step of a check costs the same whatever the batch's size (hashed lookups, counts
/// kept as it goes), so a batch costs time linear in its number of edits.
pub(super) struct Stage<'a> {
    /// LAN names taken and freed, LANs renamed and deleted.
    lans: NameChanges<'a, LanId>,
    /// Decky names taken and freed, deckies renamed and deleted.
    deckies: NameChanges<'a, DeckyId>,
    /// Made by the first edit that stages a change to edges: most single edits, and many
    /// batches, never do, and then cost nothing for them.
    edges: Option<Box<EdgeChanges>>,
    /// The ids foreseen for the batch's new rows; only for a batch that refers to them.
    foreseen: Option<Box<Foreseen>>,
}

/// The ids a batch that refers to its own new rows stages them under: the ids the store
/// mints for them when the batch is written, unless a writer to another topology mints
/// first (the sequences are store-wide). Errors that name a new row (a deleted one
/// referred to, a decky a LAN delete would strand, a pair added twice) name these, as a
/// SQL backend names the ids its rolled-back inserts got. Nothing is minted while a batch
/// is checked, so a refused batch leaves no gap in the sequences.
struct Foreseen {
    /// By edit index: the id foreseen for the row the edit adds (0 for other edits).
    ids: Vec<u64>,
    /// The next LAN id to foresee.
    lan: u64,
    /// The next decky id to foresee.
    decky: u64,
}

impl<'a> Stage<'a> {
    fn new(inner: &Inner, edits: &[ChildEdit]) -> Self {
        let foreseen = edits.iter().any(ChildEdit::refers_to_batch).then(|| {
            Box::new(Foreseen {
                ids: vec![0; edits.len()],
                lan: inner.seq.lans.peek(),
                decky: inner.seq.deckies.peek(),
            })
        });
        Self {
            lans: NameChanges::new(&inner.name_hasher),
            deckies: NameChanges::new(&inner.name_hasher),
            edges: None,
            foreseen,
        }
    }

    /// Foresees the id of the row edit `at` adds, if the batch refers to its new rows.
    fn foresee(&mut self, at: usize, entity: Entity) -> Option<u64> {
        let foreseen = self.foreseen.as_mut()?;
        let next = match entity {
            Entity::Lan => &mut foreseen.lan,
            _ => &mut foreseen.decky,
        };
        let id = *next;
        *next = next.wrapping_add(1);
        if let Some(slot) = foreseen.ids.get_mut(at) {
            *slot = id;
        }
        Some(id)
    }

    /// A reference as a row to look up; [`check_refs`] has accepted it.
    fn row<I>(&self, reference: RowRef<I>, id: fn(u64) -> I) -> Row<I> {
        match reference {
            RowRef::Stored(stored) => Row::Stored(stored),
            RowRef::Batch(i) => {
                let ids = self.foreseen.as_ref().map(|f| f.ids.as_slice());
                Row::New(id(ids
                    .and_then(|ids| ids.get(i))
                    .copied()
                    .unwrap_or_default()))
            }
        }
    }

    /// Checks every edit in order against the aggregate as the earlier edits leave it,
    /// with the checks `prepared` made of each edit's own fields before the lock.
    ///
    /// # Errors
    ///
    /// The first failing edit's error.
    pub(super) fn check<H: AsRef<[Option<u64>]>>(
        agg: &'a Aggregate,
        inner: &Inner,
        edits: &'a [ChildEdit],
        prepared: &mut Prepared<H>,
    ) -> Result<(), StoreError> {
        Self::check_staged(agg, inner, edits, prepared).map(drop)
    }

    fn check_staged<H: AsRef<[Option<u64>]>>(
        agg: &'a Aggregate,
        inner: &Inner,
        edits: &'a [ChildEdit],
        prepared: &mut Prepared<H>,
    ) -> Result<Self, StoreError> {
        let mut stage = Self::new(inner, edits);
        for i in 0..edits.len() {
            // The last edit's effects are never read: skip staging them.
            let record = i + 1 < edits.len();
            stage.edit(agg, inner, edits, i, prepared.take(i), record)?;
        }
        Ok(stage)
    }

    fn staged_edges(&mut self) -> &mut EdgeChanges {
        self.edges.get_or_insert_default()
    }

    fn is_gone(&self, edge: EdgeId) -> bool {
        self.edges.as_ref().is_some_and(|e| e.gone.contains(edge))
    }

    #[cfg(all(test, not(topostate_loom)))]
    fn len(&self) -> usize {
        let edges = self
            .edges
            .as_ref()
            .map_or(0, |e| e.gone.len() + e.new.len());
        self.lans.len() + self.deckies.len() + edges
    }

    /// Checks edit `at` of `edits`: its batch-local references, then the rest. `pre` is
    /// its [`precheck`](super::batch::precheck): the error of its own fields, which is
    /// reported where the edit checks them, or the hash of the name it sets. With
    /// `record`, stages its effects for the edits after it.
    fn edit(
        &mut self,
        agg: &'a Aggregate,
        inner: &Inner,
        edits: &'a [ChildEdit],
        at: usize,
        pre: Result<Option<u64>, StoreError>,
        record: bool,
    ) -> Result<(), StoreError> {
        check_refs(edits, at)?;
        let Some(edit) = edits.get(at) else {
            return Ok(());
        };
        let kids = &agg.kids;
        let hasher = &inner.name_hasher;
        match edit {
            ChildEdit::AddLan(new) => {
                let hash = pre?.unwrap_or_else(|| hash_name(hasher, &new.name));
                if self.lans.taken(&kids.lans, &new.name, hash) {
                    return Err(duplicate(Entity::Lan, &new.name));
                }
                if record {
                    let id = self.foresee(at, Entity::Lan).map(LanId::new);
                    self.lans.add(id, &new.name);
                }
            }
            ChildEdit::UpdateLan(lan, patch) => {
                let row = self.row(*lan, LanId::new);
                let current = self
                    .lans
                    .current(&kids.lans, row)
                    .ok_or_else(|| not_found(Entity::Lan, row.id().get()))?;
                let hash = pre?;
                if let Some(name) = &patch.name
                    && name != current
                {
                    let hash = hash.unwrap_or_else(|| hash_name(hasher, name));
                    if self.lans.taken(&kids.lans, name, hash) {
                        return Err(duplicate(Entity::Lan, name));
                    }
                    if record {
                        self.lans.rename(row, current, name);
                    }
                }
            }
            ChildEdit::DeleteLan(lan) => {
                let row = self.row(*lan, LanId::new);
                let id = &row.id();
                let name = self
                    .lans
                    .current(&kids.lans, row)
                    .ok_or_else(|| not_found(Entity::Lan, id.get()))?;
                if let Some((decky, decky_name)) = self.orphan(agg, *id) {
                    return Err(StoreError::LanInUse {
                        lan: *id,
                        decky,
                        decky_name: decky_name.into(),
                    });
                }
                if record {
                    self.lans.remove(*id, name);
                    for edge in kids.lan_edges.get(id).into_iter().flatten() {
                        if let Some(stored) = kids.edges.get(edge) {
                            self.staged_edges().gone.insert(*edge, stored.decky);
                        }
                    }
                    self.staged_edges().new.remove_lan(*id);
                }
            }
            ChildEdit::AddDecky(new) => {
                let hash = pre?.unwrap_or_else(|| hash_name(hasher, &new.name));
                if self.deckies.taken(&kids.deckies, &new.name, hash) {
                    return Err(duplicate(Entity::Decky, &new.name));
                }
                if record {
                    let id = self.foresee(at, Entity::Decky).map(DeckyId::new);
                    self.deckies.add(id, &new.name);
                }
            }
            ChildEdit::UpdateDecky(decky, patch) => {
                let row = self.row(*decky, DeckyId::new);
                let current = self
                    .deckies
                    .current(&kids.deckies, row)
                    .ok_or_else(|| not_found(Entity::Decky, row.id().get()))?;
                let hash = pre?;
                if let Some(name) = &patch.name
                    && name != current
                {
                    let hash = hash.unwrap_or_else(|| hash_name(hasher, name));
                    if self.deckies.taken(&kids.deckies, name, hash) {
                        return Err(duplicate(Entity::Decky, name));
                    }
                    if record {
                        self.deckies.rename(row, current, name);
                    }
                }
            }
            ChildEdit::DeleteDecky(decky) => {
                let row = self.row(*decky, DeckyId::new);
                let id = &row.id();
                let name = self
                    .deckies
                    .current(&kids.deckies, row)
                    .ok_or_else(|| not_found(Entity::Decky, id.get()))?;
                if record {
                    self.deckies.remove(*id, name);
                    for edge in kids.decky_edges.get(id).into_iter().flatten() {
                        self.staged_edges().gone.insert(*edge, *id);
                    }
                    self.staged_edges().new.remove_decky(*id);
                }
            }
            ChildEdit::AddEdge(new) => {
                let topology = agg.row.id;
                let (decky, lan) = (
                    self.row(new.decky, DeckyId::new),
                    self.row(new.lan, LanId::new),
                );
                let decky_error = self
                    .deckies
                    .current(&kids.deckies, decky)
                    .is_none()
                    .then(|| {
                        missing_end(
                            &inner.decky_owners,
                            Entity::Decky,
                            decky.id().get(),
                            topology,
                        )
                    });
                let lan_error =
                    self.lans.current(&kids.lans, lan).is_none().then(|| {
                        missing_end(&inner.lan_owners, Entity::Lan, lan.id().get(), topology)
                    });
                if let Some(e) = StoreError::first(decky_error, lan_error) {
                    return Err(e);
                }
                let pair = (decky.id(), lan.id());
                let taken = self.edges.as_ref().is_some_and(|e| e.new.contains(&pair))
                    || kids
                        .pairs
                        .get(&pair)
                        .is_some_and(|&edge| !self.is_gone(edge));
                if taken {
                    return Err(StoreError::Duplicate {
                        entity: Entity::Edge,
                        name: format!("decky {} ↔ lan {}", pair.0, pair.1),
                    });
                }
                if record {
                    self.staged_edges().new.add(pair);
                }
            }
            ChildEdit::DeleteEdge(id) => {
                let stored = kids
                    .edges
                    .get(id)
                    .filter(|_| !self.is_gone(*id))
                    .ok_or_else(|| not_found(Entity::Edge, id.get()))?;
                if record {
                    self.staged_edges().gone.insert(*id, stored.decky);
                }
            }
        }
        Ok(())
    }

    /// A decky whose only LAN (as staged) is `lan`, with its staged name.
    fn orphan(&self, agg: &'a Aggregate, lan: LanId) -> Option<(DeckyId, &'a str)> {
        let kids = &agg.kids;
        let stored = kids
            .lan_edges
            .get(&lan)
            .into_iter()
            .flatten()
            .filter(|&&edge| !self.is_gone(edge))
            .filter_map(|edge| kids.edges.get(edge).map(|e| e.decky));
        let added = self.edges.iter().flat_map(move |e| e.new.deckies_of(lan));
        stored.chain(added).find_map(|decky| {
            (self.lan_count(agg, decky) == 1).then(|| {
                let name = self.deckies.name(&kids.deckies, decky).unwrap_or_default();
                (decky, name)
            })
        })
    }

    /// How many LANs a decky has, as staged.
    fn lan_count(&self, agg: &Aggregate, decky: DeckyId) -> usize {
        let stored = agg.kids.decky_edges.get(&decky).map_or(0, BTreeSet::len);
        let (gone, added) = self
            .edges
            .as_ref()
            .map_or((0, 0), |e| (e.gone.of_decky(decky), e.new.of_decky(decky)));
        stored.saturating_sub(gone) + added
    }
}

/// Why an edge end that is not in the topology fails: it is in another one, or nowhere.
fn missing_end(owners: &Owners, entity: Entity, id: u64, topology: TopologyId) -> StoreError {
    match owners.owner(id) {
        Some(owner) if owner != topology => StoreError::ForeignEnd {
            entity,
            id,
            owner: owner.get(),
            topology: topology.get(),
        },
        _ => not_found(entity, id),
    }
}

#[cfg(all(test, not(topostate_loom)))]
mod tests {
    use super::*;
    use crate::store::{LanPatch, MemoryStore, NewLan, TopologyStore};

    #[test]
    fn a_write_stages_only_what_it_changes() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        let lab = store.create_topology("lab")?;
        let big: Vec<ChildEdit> = (0..10_000)
            .map(|i| ChildEdit::AddLan(NewLan::new(format!("lan-{i}"), "10.0.0.0/24")))
            .collect();
        store.edit(lab.id, None, &big)?;

        let inner = &store.inner;
        let shared = inner.catalog.aggregate(lab.id)?;
        let agg = super::super::locks::lock(&shared);
        let lan = |i| {
            let name = format!("lan-{i}");
            let lans = &agg.kids.lans;
            lans.find(hash_name(&inner.name_hasher, &name), &name)
                .unwrap_or(LanId::new(0))
        };
        let batch = [
            ChildEdit::AddLan(NewLan::new("new", "10.1.0.0/24")),
            ChildEdit::DeleteLan(lan(1).into()),
            ChildEdit::UpdateLan(
                lan(2).into(),
                LanPatch {
                    name: Some("renamed".into()),
                    ..Default::default()
                },
            ),
            ChildEdit::AddLan(NewLan::new("lan-1", "10.2.0.0/24")),
        ];
        let mut prepared = Prepared::batch(&inner.name_hasher, &batch);
        let stage = Stage::check_staged(&agg, inner, &batch, &mut prepared)?;
        // 10,000 LANs stored, a handful of staged entries: the aggregate was not copied.
        assert!(stage.len() <= 8, "staged {} entries", stage.len());
        Ok(())
    }
}
