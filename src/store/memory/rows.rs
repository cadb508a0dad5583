//! The rows of one kind in a topology (LANs or deckies), with the index that keeps their
//! names unique.

use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hash};
use std::string::String;
use std::vec::Vec;

use crate::store::{Decky, Lan};

use super::index::IdMap;

/// The hash of child names: callers choose them, so it is keyed with a random seed.
pub(super) type NameHasher = foldhash::fast::RandomState;

/// The hash a child name is indexed under, with the store's one [`NameHasher`].
#[inline]
pub(super) fn hash_name(hasher: &NameHasher, name: &str) -> u64 {
    hasher.hash_one(name)
}

/// A stored row with a name.
pub(super) trait Named {
    fn name(&self) -> &str;
    fn name_mut(&mut self) -> &mut String;
}

impl Named for Lan {
    fn name(&self) -> &str {
        &self.name
    }

    fn name_mut(&mut self) -> &mut String {
        &mut self.name
    }
}

impl Named for Decky {
    fn name(&self) -> &str {
        &self.name
    }

    fn name_mut(&mut self) -> &mut String {
        &mut self.name
    }
}

/// The rows of one kind in a topology, by id, with their names (unique in the topology)
/// indexed.
///
/// The name index is keyed by the name's hash (the store's [`NameHasher`]) rather than by
/// the name, so a name is stored once and growing the index never re-hashes strings; a
/// lookup compares the names of the few rows with that hash.
#[allow(
    clippy::struct_field_names,
    reason = "the field is the rows; the others are indexes over them"
)]
pub(super) struct Rows<I, R> {
    /// The rows themselves.
    rows: IdMap<I, R>,
    /// Name hash → row. Invariant: every row is indexed exactly once under the hash of its
    /// name: here, or in `clashes` when another row holds that hash here.
    by_hash: IdMap<u64, I>,
    /// The other rows whose names share a hash held in `by_hash`: a 64-bit collision, so
    /// almost always empty. Invariant: no empty lists.
    clashes: IdMap<u64, Vec<I>>,
}

impl<I, R> Default for Rows<I, R> {
    fn default() -> Self {
        Self {
            rows: IdMap::default(),
            by_hash: IdMap::default(),
            clashes: IdMap::default(),
        }
    }
}

impl<I: Copy + Eq + Hash, R: Named> Rows<I, R> {
    pub(super) fn get(&self, id: &I) -> Option<&R> {
        self.rows.get(id)
    }

    /// A row to change; its name must be changed through [`Rows::rename`].
    pub(super) fn get_mut(&mut self, id: &I) -> Option<&mut R> {
        self.rows.get_mut(id)
    }

    pub(super) fn ids(&self) -> impl Iterator<Item = &I> {
        self.rows.keys()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &R> {
        self.rows.values()
    }

    /// The row named `name`, whose [`hash_name`] is `hash`, if any.
    pub(super) fn find(&self, hash: u64, name: &str) -> Option<I> {
        let named = |id: &I| self.rows.get(id).is_some_and(|row| row.name() == name);
        let first = self.by_hash.get(&hash)?;
        if named(first) {
            return Some(*first);
        }
        if self.clashes.is_empty() {
            return None;
        }
        self.clashes
            .get(&hash)?
            .iter()
            .copied()
            .find(|id| named(id))
    }

    /// Adds a row; `hash` is its name's [`hash_name`].
    pub(super) fn insert(&mut self, id: I, row: R, hash: u64) {
        self.link(hash, id);
        self.rows.insert(id, row);
    }

    pub(super) fn remove(&mut self, hasher: &NameHasher, id: &I) -> Option<R> {
        let row = self.rows.remove(id)?;
        self.unlink(hash_name(hasher, row.name()), *id);
        Some(row)
    }

    /// Renames a row; `hash` is the new name's [`hash_name`].
    pub(super) fn rename(&mut self, hasher: &NameHasher, id: I, name: String, hash: u64) {
        let Some(row) = self.rows.get_mut(&id) else {
            return;
        };
        if row.name() != name {
            let (old, new) = (hash_name(hasher, row.name()), hash);
            *row.name_mut() = name;
            self.unlink(old, id);
            self.link(new, id);
        }
    }

    fn link(&mut self, hash: u64, id: I) {
        match self.by_hash.entry(hash) {
            Entry::Vacant(slot) => {
                slot.insert(id);
            }
            Entry::Occupied(_) => self.clashes.entry(hash).or_default().push(id),
        }
    }

    fn unlink(&mut self, hash: u64, id: I) {
        let first = self.by_hash.get(&hash) == Some(&id);
        let Entry::Occupied(mut clash) = self.clashes.entry(hash) else {
            if first {
                self.by_hash.remove(&hash);
            }
            return;
        };
        let ids = clash.get_mut();
        if first {
            // Another row with this hash takes the freed place.
            match ids.pop() {
                Some(next) => self.by_hash.insert(hash, next),
                None => self.by_hash.remove(&hash),
            };
        } else {
            ids.retain(|other| *other != id);
        }
        if ids.is_empty() {
            clash.remove();
        }
    }
}

#[cfg(all(test, not(topostate_loom)))]
mod tests {
    use super::*;
    use crate::TopologyId;
    use crate::store::LanId;

    #[test]
    fn name_index_survives_hash_collisions() {
        let lan = |id, name: &str| Lan {
            id: LanId::new(id),
            topology_id: TopologyId::new(1),
            name: name.into(),
            subnet: String::new(),
            is_dmz: false,
            network_id: None,
            x: None,
            y: None,
        };
        let mut rows: Rows<LanId, Lan> = Rows::default();
        // Three names under one hash, as a 64-bit collision would put them.
        for (id, name) in [(1, "a"), (2, "b"), (3, "c")] {
            rows.insert(LanId::new(id), lan(id, name), 7);
        }
        assert_eq!(rows.find(7, "b"), Some(LanId::new(2)));
        assert_eq!(rows.find(7, "d"), None);
        for (gone, left) in [(2, vec![1, 3]), (1, vec![3]), (3, vec![])] {
            rows.rows.remove(&LanId::new(gone));
            rows.unlink(7, LanId::new(gone));
            for id in left {
                let name = rows.get(&LanId::new(id)).map(|l| l.name.clone());
                assert_eq!(
                    rows.find(7, &name.unwrap_or_default()),
                    Some(LanId::new(id))
                );
            }
        }
        assert!(rows.by_hash.is_empty() && rows.clashes.is_empty());
        // And with real hashes, a rename moves the entry.
        let hasher = NameHasher::default();
        rows.insert(LanId::new(4), lan(4, "x"), hash_name(&hasher, "x"));
        rows.rename(&hasher, LanId::new(4), "y".into(), hash_name(&hasher, "y"));
        assert_eq!(rows.find(hash_name(&hasher, "x"), "x"), None);
        assert_eq!(rows.find(hash_name(&hasher, "y"), "y"), Some(LanId::new(4)));
        assert_eq!((rows.by_hash.len(), rows.clashes.len()), (1, 0));
    }
}
