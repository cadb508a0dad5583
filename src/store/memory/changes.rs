//! What a batch has changed so far, held apart from the aggregate while the batch is
//! checked: names taken and freed, rows gone, edges removed and added. Only changes are
//! held, never a copy of the aggregate, and each lookup costs the same whatever the
//! batch's or the aggregate's size.

use std::collections::HashMap;
use std::hash::Hash;
use std::vec::Vec;

use crate::store::{DeckyId, EdgeId, LanId};

use super::index::{IdMap, IdSet};
use super::rows::{NameHasher, Named, Rows};

/// A LAN or decky as the stage sees it: stored before the batch, or added by it (under
/// the id [`Stage`](super::stage::Stage) foresaw for it).
#[derive(Clone, Copy)]
pub(super) enum Row<I> {
    /// Stored before the batch (or a stored id that names nothing).
    Stored(I),
    /// Added by the batch, named through a batch-local reference.
    New(I),
}

impl<I: Copy> Row<I> {
    pub(super) fn id(self) -> I {
        match self {
            Self::Stored(id) | Self::New(id) => id,
        }
    }
}

/// How a batch so far has changed the names of one kind of row: only what it changed is
/// held here, borrowed from the batch; everything else is read from the aggregate.
pub(super) struct NameChanges<'a, I> {
    /// Rows the batch deleted (stored or its own).
    gone: IdSet<I>,
    /// Stored rows the batch renamed, with their new names.
    renamed: IdMap<I, &'a str>,
    /// The rows the batch added, by foreseen id, with their names as the batch leaves
    /// them; filled only for a batch that refers to its own rows.
    added: IdMap<I, &'a str>,
    /// Names whose status the batch changed. `true`: taken by the batch; `false`: freed.
    overlay: HashMap<&'a str, bool, NameHasher>,
}

impl<'a, I: Copy + Eq + Hash> NameChanges<'a, I> {
    pub(super) fn new(hasher: &NameHasher) -> Self {
        Self {
            gone: IdSet::default(),
            renamed: IdMap::default(),
            added: IdMap::default(),
            overlay: HashMap::with_hasher(hasher.clone()),
        }
    }

    /// The staged name of a row, or `None` if it does not exist (any more). A stored id
    /// never names a row of the batch: those are reached only as [`Row::New`].
    pub(super) fn current<R: Named>(&self, rows: &'a Rows<I, R>, row: Row<I>) -> Option<&'a str> {
        match row {
            Row::Stored(id) if !self.added.is_empty() && self.added.contains_key(&id) => None,
            Row::Stored(id) => self.name(rows, id),
            Row::New(id) if self.gone.contains(&id) => None,
            Row::New(id) => self.added.get(&id).copied(),
        }
    }

    /// The staged name of a row the stage itself found (an edge's end), stored or new.
    pub(super) fn name<R: Named>(&self, rows: &'a Rows<I, R>, id: I) -> Option<&'a str> {
        if self.gone.contains(&id) {
            return None;
        }
        match self.renamed.get(&id).or_else(|| self.added.get(&id)) {
            Some(name) => Some(name),
            None => rows.get(&id).map(Named::name),
        }
    }

    /// Is `name` (whose hash in `rows` is `hash`) taken once the batch so far is written?
    pub(super) fn taken<R: Named>(&self, rows: &Rows<I, R>, name: &str, hash: u64) -> bool {
        self.overlay
            .get(name)
            .copied()
            .unwrap_or_else(|| rows.find(hash, name).is_some())
    }

    /// Takes `name` for a new row; with `id`, the row can be named later in the batch.
    pub(super) fn add(&mut self, id: Option<I>, name: &'a str) {
        self.overlay.insert(name, true);
        if let Some(id) = id {
            self.added.insert(id, name);
        }
    }

    pub(super) fn rename(&mut self, row: Row<I>, from: &'a str, to: &'a str) {
        self.overlay.insert(from, false);
        self.overlay.insert(to, true);
        match row {
            Row::Stored(id) => self.renamed.insert(id, to),
            Row::New(id) => self.added.insert(id, to),
        };
    }

    pub(super) fn remove(&mut self, id: I, name: &'a str) {
        self.overlay.insert(name, false);
        self.gone.insert(id);
    }

    #[cfg(all(test, not(topostate_loom)))]
    pub(super) fn len(&self) -> usize {
        self.gone.len() + self.renamed.len() + self.added.len() + self.overlay.len()
    }
}

/// The edges a batch removes and adds.
#[derive(Default)]
pub(super) struct EdgeChanges {
    /// Stored edges it removes.
    pub(super) gone: GoneEdges,
    /// Pairs it adds.
    pub(super) new: NewEdges,
}

/// The stored edges a batch removes, with how many each decky loses.
#[derive(Default)]
pub(super) struct GoneEdges {
    /// The removed edges.
    ids: IdSet<EdgeId>,
    /// Invariant: per decky, how many of its edges `ids` holds.
    per_decky: IdMap<DeckyId, usize>,
}

impl GoneEdges {
    pub(super) fn contains(&self, id: EdgeId) -> bool {
        self.ids.contains(&id)
    }

    /// Marks a stored edge of `decky` gone.
    pub(super) fn insert(&mut self, id: EdgeId, decky: DeckyId) {
        if self.ids.insert(id) {
            *self.per_decky.entry(decky).or_default() += 1;
        }
    }

    /// How many of `decky`'s stored edges are gone.
    pub(super) fn of_decky(&self, decky: DeckyId) -> usize {
        self.per_decky.get(&decky).copied().unwrap_or_default()
    }

    #[cfg(all(test, not(topostate_loom)))]
    pub(super) fn len(&self) -> usize {
        self.ids.len() + self.per_decky.len()
    }
}

/// The decky ↔ LAN pairs a batch adds (their ends stored, or added by the batch under
/// their foreseen ids), indexed both ways.
///
/// A pair removed (with its decky or LAN) is dropped from `pairs` at once but left in the
/// lists of the other end, which read it through `pairs`: a removed pair never comes back,
/// since a batch cannot refer to a decky or LAN once it is gone.
#[derive(Default)]
pub(super) struct NewEdges {
    /// The pairs added and still there.
    pairs: IdSet<(DeckyId, LanId)>,
    /// Per LAN, its new deckies in the order the batch added them: the order of the new
    /// edges' ids, which decides which decky a refused LAN delete names.
    by_lan: IdMap<LanId, Vec<DeckyId>>,
    /// Per decky, its new LANs, to drop its pairs when it is deleted.
    by_decky: IdMap<DeckyId, Vec<LanId>>,
    /// Invariant: per decky, how many of `pairs` it is in.
    per_decky: IdMap<DeckyId, usize>,
}

impl NewEdges {
    pub(super) fn contains(&self, pair: &(DeckyId, LanId)) -> bool {
        self.pairs.contains(pair)
    }

    pub(super) fn add(&mut self, (decky, lan): (DeckyId, LanId)) {
        if self.pairs.insert((decky, lan)) {
            self.by_lan.entry(lan).or_default().push(decky);
            self.by_decky.entry(decky).or_default().push(lan);
            *self.per_decky.entry(decky).or_default() += 1;
        }
    }

    /// The deckies the batch linked to `lan`, in the order it linked them.
    pub(super) fn deckies_of(&self, lan: LanId) -> impl Iterator<Item = DeckyId> + '_ {
        self.by_lan
            .get(&lan)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&decky| self.pairs.contains(&(decky, lan)))
    }

    /// How many new edges `decky` has.
    pub(super) fn of_decky(&self, decky: DeckyId) -> usize {
        self.per_decky.get(&decky).copied().unwrap_or_default()
    }

    pub(super) fn remove_lan(&mut self, lan: LanId) {
        for decky in self.by_lan.remove(&lan).unwrap_or_default() {
            if self.pairs.remove(&(decky, lan))
                && let Some(count) = self.per_decky.get_mut(&decky)
            {
                *count = count.saturating_sub(1);
            }
        }
    }

    pub(super) fn remove_decky(&mut self, decky: DeckyId) {
        for lan in self.by_decky.remove(&decky).unwrap_or_default() {
            self.pairs.remove(&(decky, lan));
        }
        self.per_decky.remove(&decky);
    }

    #[cfg(all(test, not(topostate_loom)))]
    pub(super) fn len(&self) -> usize {
        self.pairs.len()
    }
}
