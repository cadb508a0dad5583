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

/// How a batch so far has changed the names of one kind of row: only what it changed is
/// held here, borrowed from the batch; everything else is read from the aggregate.
pub(super) struct NameChanges<'a, I> {
    /// Stored rows the batch deleted.
    gone: IdSet<I>,
    /// Stored rows the batch renamed, with their new names.
    renamed: IdMap<I, &'a str>,
    /// Names whose status the batch changed. `true`: taken by the batch; `false`: freed.
    overlay: HashMap<&'a str, bool, NameHasher>,
}

impl<'a, I: Copy + Eq + Hash> NameChanges<'a, I> {
    pub(super) fn new(hasher: &NameHasher) -> Self {
        Self {
            gone: IdSet::default(),
            renamed: IdMap::default(),
            overlay: HashMap::with_hasher(hasher.clone()),
        }
    }

    /// The staged name of an existing row, or `None` if it does not exist (any more).
    pub(super) fn current<R: Named>(&self, rows: &'a Rows<I, R>, id: I) -> Option<&'a str> {
        if self.gone.contains(&id) {
            return None;
        }
        match self.renamed.get(&id) {
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

    pub(super) fn add(&mut self, name: &'a str) {
        self.overlay.insert(name, true);
    }

    pub(super) fn rename(&mut self, id: I, from: &'a str, to: &'a str) {
        self.overlay.insert(from, false);
        self.overlay.insert(to, true);
        self.renamed.insert(id, to);
    }

    pub(super) fn remove(&mut self, id: I, name: &'a str) {
        self.overlay.insert(name, false);
        self.gone.insert(id);
    }

    #[cfg(all(test, not(topostate_loom)))]
    pub(super) fn len(&self) -> usize {
        self.gone.len() + self.renamed.len() + self.overlay.len()
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
    pub(super) fn contains(&self, id: &EdgeId) -> bool {
        self.ids.contains(id)
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

/// The decky ↔ LAN pairs a batch adds (their ends exist before the batch), indexed both
/// ways.
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
