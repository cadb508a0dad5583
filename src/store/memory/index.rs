//! Lookup machinery: the hash of store-minted ids, the sharding shared by the catalog and
//! the owner indexes, and the owner indexes themselves (child id → topology).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::TopologyId;
use crate::store::sync::RwLock;

use super::locks::{read, write};

/// A hash map keyed by store-minted ids.
pub(super) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A hash set of store-minted ids.
pub(super) type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

/// A fast hash for keys the store mints itself (ids, and pairs of them); names, which
/// callers choose, take the seeded [`NameHasher`](super::rows::NameHasher).
///
/// A single id hashes to itself in the low bits, so ids minted in sequence land in
/// neighbouring buckets (inserting them touches memory in order), with multiplied bits on
/// top for the table's tag byte. Several words are combined as rustc's `FxHasher` does.
/// Callers cannot choose which keys a table holds, so a weak hash is safe here.
#[derive(Default)]
pub(super) struct IdHasher {
    /// The hash so far: the only word itself, or the words combined.
    state: u64,
    /// How many words were written: one word keeps its identity hash.
    words: u32,
}

/// The `FxHasher` multiplier: an odd constant that spreads a word's bits upwards.
const FX_MULTIPLIER: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// The bits hashbrown takes its 7-bit tag from.
const TAG_BITS: u64 = 0x7f << 57;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.state = if self.words == 0 {
            n
        } else {
            (self.state.rotate_left(5) ^ n).wrapping_mul(FX_MULTIPLIER)
        };
        self.words = self.words.saturating_add(1);
    }

    fn finish(&self) -> u64 {
        if self.words <= 1 {
            self.state ^ (self.state.wrapping_mul(FX_MULTIPLIER) & TAG_BITS)
        } else {
            self.state
        }
    }
}

/// How many shards the catalog and each owner index have: enough that two threads on
/// different topologies rarely meet on one lock.
pub(super) const SHARDS: usize = 16;

/// The shard of an id.
#[inline]
pub(super) fn shard_of(id: u64) -> usize {
    // The remainder is below SHARDS, so it always fits.
    usize::try_from(id % SHARDS as u64).unwrap_or_default()
}

/// Keeps a hot value on its own cache lines, so threads writing neighbours do not slow
/// each other down.
#[derive(Default)]
#[repr(align(128))]
pub(super) struct Padded<T>(pub(super) T);

/// One id map split into [`SHARDS`] locks, each on its own cache lines.
pub(super) type Sharded<K, V> = [Padded<RwLock<IdMap<K, V>>>; SHARDS];

/// An empty [`Sharded`] map.
pub(super) fn sharded<K, V>() -> Sharded<K, V> {
    std::array::from_fn(|_| Padded::default())
}

/// Child id → owning topology: the runtime writes, which get only a child id, find their
/// topology here, and a new edge tells an end in another topology from a missing one.
///
/// Invariant: an entry exists exactly while the child exists; entries change only under
/// the owning aggregate's lock.
pub(super) struct Owners {
    /// The entries, sharded by child id so writers to different topologies rarely meet.
    pub(super) shards: Sharded<u64, TopologyId>,
}

impl Default for Owners {
    fn default() -> Self {
        Self { shards: sharded() }
    }
}

impl Owners {
    fn shard(&self, id: u64) -> &RwLock<IdMap<u64, TopologyId>> {
        &self.shards[shard_of(id)].0
    }

    /// The topology holding child `id`, if it exists.
    #[inline]
    pub(super) fn owner(&self, id: u64) -> Option<TopologyId> {
        read(self.shard(id)).get(&id).copied()
    }

    #[inline]
    pub(super) fn insert(&self, id: u64, owner: TopologyId) {
        write(self.shard(id)).insert(id, owner);
    }

    #[inline]
    pub(super) fn remove(&self, id: u64) {
        write(self.shard(id)).remove(&id);
    }
}
