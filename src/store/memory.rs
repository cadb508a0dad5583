//! [`MemoryStore`]: the embedded store, everything in memory, shared between threads.
//!
//! Layout and locking:
//!
//! - a catalog maps topology ids to their aggregates (in `RwLock`ed shards) and holds the
//!   store-wide topology names (a `Mutex` taken by create and delete only);
//! - each topology is one aggregate behind its own `Mutex`: its row, LANs, deckies, edges,
//!   status log and mutation queue, so writers to different topologies do not wait on each
//!   other;
//! - two sharded indexes map LAN and decky ids to their topology, for the runtime writes
//!   that get only a child id and for telling a foreign edge end from a missing one.
//!
//! Lock order, always: topology names, then a catalog shard, then one aggregate, then
//! index shards. Nobody holds two aggregates, or two shards of one kind, at once.
//!
//! Every write checks everything first (status gate, version, each edit against a staged
//! view holding only what the batch changes) and only then changes anything, with steps
//! that cannot fail. That is why a lock poisoned by a panicking thread is simply taken
//! over: the data behind it is never half-written.
//!
//! What needs no topology is done before its lock is taken, so that writers to one
//! topology do it in parallel: each edit's own fields are checked, the names it sets are
//! hashed, and a batch's edits are copied (see [`Prepared`] and [`Ready`]). Its errors are
//! still reported where the edit's checks would report them.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

use super::policy::{
    canonical_edit, check_fields, delete_gate, free_form_gate, live_gate, transition_refusal,
};
use super::sync::{
    Arc, AtomicU64, Mutex, MutexGuard, Ordering, PoisonError, RwLock, RwLockReadGuard,
    RwLockWriteGuard, TryLockError,
};
use super::{
    ChildEdit, Claim, Decky, DeckyId, DeckyRuntime, DeckyState, Edge, EdgeId, EditReport, Edited,
    Entity, EventId, Lan, LanId, Mutation, MutationClaim, MutationId, Precondition, StatusEvent,
    StoreError, Timestamp, TopologyDetail, TopologyRecord, TopologyStore, Touched, Transitioned,
    canonical_name, check_text,
};
use crate::{
    INITIAL_VERSION, MAX_VERSION, MutationOp, MutationState, TopologyId, TopologyStatus,
    VersionConflict, VersionError, check_and_bump,
};

/// The embedded store: all data in memory, nothing survives the process.
///
/// A `MemoryStore` is a handle: [`Clone`] gives another handle on the same data, and
/// handles can be sent to and shared between threads. Each topology is locked on its own,
/// so writers to different topologies do not wait on each other; every operation is
/// atomic, and a write that returns an error has changed nothing. A thread that panics
/// while using the store does not leave it unusable.
///
/// ```
/// use topostate::store::{MemoryStore, NewLan, Precondition, StoreError, TopologyStore};
/// use topostate::TopologyStatus;
///
/// let store = MemoryStore::new();
/// let lab = store.create_topology("lab")?;
/// let other_editor = store.clone(); // the same data
///
/// let lan = store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(lab.version))?;
/// assert_eq!(lan.version, 2);
/// // The other editor still believes version 1: its write is refused, not lost.
/// let err = other_editor
///     .add_lan(lab.id, NewLan::new("lan-a", "10.0.1.0/24"), Some(1))
///     .unwrap_err();
/// assert!(err.is_conflict());
///
/// store.transition_status(
///     lab.id,
///     TopologyStatus::Deploying,
///     None,
///     Precondition::status(TopologyStatus::Pending).and_version(2),
/// )?;
/// assert_eq!(other_editor.get_topology(lab.id)?.status, TopologyStatus::Deploying);
/// # Ok::<(), StoreError>(())
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Not public API: test hook. Forces the stored version of a topology, e.g. to
    /// [`MAX_VERSION`] to test overflow.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Invalid`] for a version outside
    /// `1..=MAX_VERSION`.
    #[doc(hidden)]
    pub fn debug_set_version(&self, id: TopologyId, version: u64) -> Result<(), StoreError> {
        self.with(id, |agg| {
            if !(INITIAL_VERSION..=MAX_VERSION).contains(&version) {
                return Err(StoreError::Invalid {
                    field: "version",
                    problem: format!("{version} is outside 1..={MAX_VERSION}"),
                });
            }
            agg.row.version = version;
            Ok(())
        })
    }

    /// The aggregate of a live topology.
    fn shared(&self, id: TopologyId) -> Result<Shared, StoreError> {
        read(self.inner.catalog.shard(id))
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(Entity::Topology, id.get()))
    }

    /// Runs `f` on a topology's aggregate, locked.
    fn with<R>(
        &self,
        id: TopologyId,
        f: impl FnOnce(&mut Aggregate) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let shared = self.shared(id)?;
        let mut agg = lock(&shared);
        // Deleted between the catalog lookup and the lock.
        if agg.deleted {
            return Err(not_found(Entity::Topology, id.get()));
        }
        f(&mut agg)
    }

    /// Runs `f` on the aggregate owning a child, found through `index`.
    fn with_child<R>(
        &self,
        index: &Index,
        entity: Entity,
        child: u64,
        f: impl FnOnce(&mut Aggregate) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let owner = index.owner(child).ok_or_else(|| not_found(entity, child))?;
        // A topology deleted meanwhile reports the child, not the topology, as missing.
        self.with(owner, f).map_err(|e| match e {
            StoreError::NotFound {
                entity: Entity::Topology,
                ..
            } => not_found(entity, child),
            e => e,
        })
    }

    /// Checks a batch against the aggregate: the new version, or the error that takes
    /// precedence among `refusal`, `version` and the first failing edit.
    fn check_edits<H: AsRef<[Option<u64>]>>(
        &self,
        agg: &Aggregate,
        refusal: Option<StoreError>,
        version: Result<u64, StoreError>,
        edits: &[ChildEdit],
        prepared: &mut Prepared<H>,
    ) -> Result<u64, StoreError> {
        let edit_error = Stage::check(agg, &self.inner, edits, prepared).err();
        settle(refusal, version, edit_error)
    }

    /// Checks a batch made [`Ready`] before the lock, then, if nothing refuses, writes it.
    fn run_edits(
        &self,
        agg: &mut Aggregate,
        refusal: Option<StoreError>,
        version: Result<u64, StoreError>,
        ready: Ready,
    ) -> Result<EditReport, StoreError> {
        let Ready {
            edits,
            mut prepared,
            mut touched,
        } = ready;
        let version = self.check_edits(agg, refusal, version, &edits, &mut prepared)?;
        for (i, edit) in edits.into_iter().enumerate() {
            touched.push(agg.apply(&self.inner, edit, prepared.hash(i)));
        }
        agg.row.version = version;
        Ok(EditReport { touched, version })
    }

    /// A free-form batch of one owned edit: as [`TopologyStore::edit`], without copying
    /// the edit or allocating a report.
    fn write_one(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        mut edit: ChildEdit,
    ) -> Result<Edited<Touched>, StoreError> {
        canonical_edit(&mut edit);
        let mut prepared = Prepared::one(&self.inner.names, &edit);
        self.with(id, |agg| {
            let edits = std::slice::from_ref(&edit);
            let gate = free_form_gate(agg.row.status).err();
            let version = next_version(agg.row.version, expected_version, edits);
            let version = self.check_edits(agg, gate, version, edits, &mut prepared)?;
            let touched = agg.apply(&self.inner, edit, prepared.hash(0));
            agg.row.version = version;
            Ok(Edited {
                id: touched,
                version,
            })
        })
    }

    /// Runs `f` on a claimed mutation and its aggregate, checking that the mutation is
    /// still `applying`.
    fn with_claim<R>(
        &self,
        claim: &MutationClaim,
        f: impl FnOnce(&mut Aggregate, Option<StoreError>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.with(claim.topology_id(), |agg| {
            let mutation = agg
                .kids
                .mutations
                .get(&claim.id())
                .ok_or_else(|| not_found(Entity::Mutation, claim.id().get()))?;
            let state =
                (mutation.state != MutationState::Applying).then(|| StoreError::MutationState {
                    id: mutation.id,
                    expected: MutationState::Applying,
                    found: mutation.state,
                });
            f(agg, state)
        })
    }

    /// Moves a claimed mutation from `applying` to `to`.
    fn mark(
        &self,
        claim: &MutationClaim,
        to: MutationState,
        reason: Option<&str>,
    ) -> Result<Mutation, StoreError> {
        self.with_claim(claim, |agg, state| {
            let invalid = reason.and_then(|r| check_text("reason", r).err());
            if let Some(e) = StoreError::first(state, invalid) {
                return Err(e);
            }
            let kids = &mut agg.kids;
            let mutation = kids
                .mutations
                .get_mut(&claim.id())
                .ok_or_else(|| not_found(Entity::Mutation, claim.id().get()))?;
            mutation.state = to;
            mutation.applied_at = Some(Timestamp::now());
            mutation.reason = reason.map(String::from);
            if kids.applying == Some(mutation.id) {
                kids.applying = None;
            }
            Ok(mutation.clone())
        })
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("MemoryStore");
        // Never block (or deadlock) to print a handle.
        match self.inner.catalog.names.try_lock() {
            Ok(names) => s.field("topologies", &names.len()),
            Err(TryLockError::Poisoned(p)) => s.field("topologies", &p.into_inner().len()),
            Err(TryLockError::WouldBlock) => s.field("topologies", &"<locked>"),
        };
        s.finish_non_exhaustive()
    }
}

/// Every call holds a topology's lock only for its own checks and writes, never across
/// I/O: its async face runs inline (see [`NonBlocking`](super::NonBlocking)).
impl super::NonBlocking for MemoryStore {}

impl TopologyStore for MemoryStore {
    fn create_topology(&self, name: &str) -> Result<TopologyRecord, StoreError> {
        let name = canonical_name("topology name", name)?;
        let name: &str = &name;
        let mut names = lock(&self.inner.catalog.names);
        if names.contains_key(name) {
            return Err(StoreError::Duplicate {
                entity: Entity::Topology,
                name: name.into(),
            });
        }
        let id = TopologyId::new(self.inner.seq.topologies.mint());
        let now = Timestamp::now();
        let row = TopologyRecord {
            id,
            name: name.into(),
            status: TopologyStatus::Pending,
            version: INITIAL_VERSION,
            reason: None,
            needs_resync: false,
            created_at: now,
            status_changed_at: now,
        };
        names.insert(name.into(), id);
        write(self.inner.catalog.shard(id)).insert(
            id,
            Arc::new(Mutex::new(Aggregate {
                row: row.clone(),
                deleted: false,
                kids: Children::default(),
            })),
        );
        Ok(row)
    }

    fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError> {
        self.with(id, |agg| Ok(agg.row.clone()))
    }

    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
    ) -> Result<Vec<TopologyRecord>, StoreError> {
        let mut all: Vec<(TopologyId, Shared)> = Vec::new();
        for shard in &self.inner.catalog.shards {
            all.extend(read(&shard.0).iter().map(|(id, s)| (*id, Arc::clone(s))));
        }
        all.sort_unstable_by_key(|(id, _)| *id);
        Ok(all
            .iter()
            .filter_map(|(_, shared)| {
                let agg = lock(shared);
                let keep = !agg.deleted && status.is_none_or(|s| agg.row.status == s);
                keep.then(|| agg.row.clone())
            })
            .collect())
    }

    fn topology_detail(&self, id: TopologyId) -> Result<TopologyDetail, StoreError> {
        self.with(id, |agg| {
            let kids = &agg.kids;
            let mut lans: Vec<Lan> = kids.lans.values().cloned().collect();
            lans.sort_by(|a, b| a.name.cmp(&b.name));
            let mut deckies: Vec<Decky> = kids.deckies.values().cloned().collect();
            deckies.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(TopologyDetail {
                topology: agg.row.clone(),
                lans,
                deckies,
                edges: kids.edges.values().copied().collect(),
            })
        })
    }

    fn transition_status(
        &self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&str>,
        precondition: Precondition,
    ) -> Result<Transitioned, StoreError> {
        self.with(id, |agg| {
            let from = agg.row.status;
            if let Some(e) = transition_refusal(from, agg.row.version, to, reason, precondition) {
                return Err(e);
            }
            let at = Timestamp::now();
            let event = StatusEvent {
                id: EventId::new(self.inner.seq.events.mint()),
                topology_id: id,
                from,
                to,
                at,
                reason: reason.map(String::from),
            };
            agg.row.status = to;
            agg.row.status_changed_at = at;
            agg.row.reason.clone_from(&event.reason);
            agg.kids.events.push(event.clone());
            Ok(Transitioned {
                topology: agg.row.clone(),
                event,
            })
        })
    }

    fn list_status_events(&self, id: TopologyId) -> Result<Vec<StatusEvent>, StoreError> {
        // Invariant: events are appended in id order, so reversing gives newest first.
        self.with(id, |agg| {
            Ok(agg.kids.events.iter().rev().cloned().collect())
        })
    }

    fn edit(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError> {
        let ready = Ready::new(&self.inner.names, edits);
        self.with(id, |agg| {
            let gate = free_form_gate(agg.row.status).err();
            let version = next_version(agg.row.version, expected_version, edits);
            self.run_edits(agg, gate, version, ready)
        })
    }

    fn set_lan_network_id(&self, lan: LanId, network_id: Option<&str>) -> Result<(), StoreError> {
        self.with_child(&self.inner.lans, Entity::Lan, lan.get(), |agg| {
            let row = agg
                .kids
                .lans
                .get_mut(&lan)
                .ok_or_else(|| not_found(Entity::Lan, lan.get()))?;
            if let Some(text) = network_id {
                check_text("network id", text)?;
            }
            row.network_id = network_id.map(String::from);
            Ok(())
        })
    }

    fn set_decky_runtime(&self, decky: DeckyId, runtime: &DeckyRuntime) -> Result<(), StoreError> {
        self.with_child(&self.inner.deckies, Entity::Decky, decky.get(), |agg| {
            let row = agg
                .kids
                .deckies
                .get_mut(&decky)
                .ok_or_else(|| not_found(Entity::Decky, decky.get()))?;
            if let Some(Some(ip)) = &runtime.ip {
                check_text("decky ip", ip)?;
            }
            if let Some(Some(error)) = &runtime.last_error {
                check_text("decky last error", error)?;
            }
            if let Some(state) = runtime.state {
                row.state = state;
            }
            if let Some(ip) = &runtime.ip {
                row.ip.clone_from(ip);
            }
            if let Some(error) = &runtime.last_error {
                row.last_error.clone_from(error);
            }
            Ok(())
        })
    }

    fn enqueue_mutation(
        &self,
        id: TopologyId,
        op: MutationOp,
        payload: &str,
        expected_version: Option<u64>,
    ) -> Result<Edited<MutationId>, StoreError> {
        self.with(id, |agg| {
            let refusal = StoreError::first(
                live_gate(agg.row.status).err(),
                check_text("payload", payload).err(),
            );
            let version = check_and_bump(agg.row.version, expected_version).map_err(version_error);
            let version = settle(refusal, version, None)?;
            let mutation = Mutation {
                id: MutationId::new(self.inner.seq.mutations.mint()),
                topology_id: id,
                op,
                payload: payload.into(),
                state: MutationState::Pending,
                requested_at: Timestamp::now(),
                applied_at: None,
                reason: None,
            };
            let mutation_id = mutation.id;
            agg.kids.pending.insert(mutation_id);
            agg.kids.mutations.insert(mutation_id, mutation);
            agg.row.version = version;
            Ok(Edited {
                id: mutation_id,
                version,
            })
        })
    }

    fn claim_next_mutation(&self, id: TopologyId) -> Result<Claim, StoreError> {
        self.with(id, |agg| {
            live_gate(agg.row.status)?;
            let kids = &mut agg.kids;
            if let Some(applying) = kids.applying {
                return Ok(Claim::Busy { applying });
            }
            // Invariant: `pending` holds exactly the ids of the pending mutations, so its
            // first id is the oldest.
            let Some(oldest) = kids.pending.pop_first() else {
                return Ok(Claim::Empty);
            };
            let Some(mutation) = kids.mutations.get_mut(&oldest) else {
                return Ok(Claim::Empty);
            };
            mutation.state = MutationState::Applying;
            kids.applying = Some(oldest);
            Ok(Claim::Claimed {
                mutation: mutation.clone(),
                claim: MutationClaim::from_parts(oldest, id),
            })
        })
    }

    fn apply_live(
        &self,
        claim: &MutationClaim,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError> {
        let ready = Ready::new(&self.inner.names, edits);
        self.with_claim(claim, |agg, state| {
            let refusal = StoreError::first(state, live_gate(agg.row.status).err());
            let current = agg.row.version;
            self.run_edits(agg, refusal, Ok(current), ready)
        })
    }

    fn mark_mutation_applied(&self, claim: MutationClaim) -> Result<Mutation, StoreError> {
        self.mark(&claim, MutationState::Applied, None)
    }

    fn mark_mutation_failed(
        &self,
        claim: MutationClaim,
        reason: &str,
    ) -> Result<Mutation, StoreError> {
        self.mark(&claim, MutationState::Failed, Some(reason))
    }

    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
    ) -> Result<Vec<Mutation>, StoreError> {
        self.with(id, |agg| {
            Ok(agg
                .kids
                .mutations
                .values()
                .rev()
                .filter(|m| state.is_none_or(|s| m.state == s))
                .cloned()
                .collect())
        })
    }

    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError> {
        self.with(id, |agg| {
            agg.row.needs_resync = needs_resync;
            Ok(())
        })
    }

    /// Without copying the edit or allocating a report: see `write_one`.
    fn edit_one(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edit: ChildEdit,
    ) -> Result<Edited<Touched>, StoreError> {
        self.write_one(id, expected_version, edit)
    }

    fn delete_topology(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let doomed = {
            let mut names = lock(&self.inner.catalog.names);
            let mut shard = write(self.inner.catalog.shard(id));
            let shared = shard
                .get(&id)
                .cloned()
                .ok_or_else(|| not_found(Entity::Topology, id.get()))?;
            let mut agg = lock(&shared);
            let current = agg.row.version;
            let refusal = StoreError::first(
                delete_gate(agg.row.status).err(),
                expected_version
                    .filter(|&seen| seen != current)
                    .map(|expected| conflict(current, expected)),
            );
            if let Some(e) = refusal {
                return Err(e);
            }
            shard.remove(&id);
            names.remove(&agg.row.name);
            for lan in agg.kids.lans.ids() {
                self.inner.lans.remove(lan.get());
            }
            for decky in agg.kids.deckies.ids() {
                self.inner.deckies.remove(decky.get());
            }
            agg.deleted = true;
            std::mem::take(&mut agg.kids)
        };
        // Free the children after the locks are released.
        drop(doomed);
        Ok(())
    }
}

/// A topology aggregate, shared by the catalog and the threads working on it.
type Shared = Arc<Mutex<Aggregate>>;

#[derive(Default)]
struct Inner {
    catalog: Catalog,
    lans: Index,
    deckies: Index,
    seq: Sequences,
    /// The one hasher of child names (see [`hash_name`]): every topology's name index and
    /// the hashes made before a topology is locked (see [`Prepared`]) use it.
    names: NameHasher,
}

/// The hash of child names: callers choose them, so it is keyed with a random seed.
type NameHasher = foldhash::fast::RandomState;

/// The hash a child name is indexed under, with the store's `Inner::names`.
fn hash_name(names: &NameHasher, name: &str) -> u64 {
    names.hash_one(name)
}

/// The topologies, sharded by id so that threads on different topologies rarely touch
/// the same lock.
struct Catalog {
    shards: [Padded<RwLock<IdMap<TopologyId, Shared>>>; SHARDS],
    /// Topology names, unique store-wide; taken first by create and delete, which
    /// serialises them.
    names: Mutex<HashMap<String, TopologyId>>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Padded::default()),
            names: Mutex::default(),
        }
    }
}

impl Catalog {
    fn shard(&self, id: TopologyId) -> &RwLock<IdMap<TopologyId, Shared>> {
        &self.shards[shard_of(id.get())].0
    }
}

/// One counter per kind of id; each sequence starts at 1.
#[derive(Default)]
struct Sequences {
    topologies: Counter,
    lans: Counter,
    deckies: Counter,
    edges: Counter,
    mutations: Counter,
    events: Counter,
}

/// Keeps a hot value on its own cache lines, so threads writing neighbours do not slow
/// each other down.
#[derive(Default)]
#[repr(align(128))]
struct Padded<T>(T);

#[derive(Default)]
struct Counter(Padded<AtomicU64>);

impl Counter {
    /// The next id. Events and mutations are minted under their topology's lock, so within
    /// a topology their ids grow with append order.
    fn mint(&self) -> u64 {
        // 2^64 ids cannot be minted in practice; wrapping avoids a panic path.
        self.0.0.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }
}

/// A hash map keyed by store-minted ids.
type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A hash set of store-minted ids.
type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

/// A fast hash for keys the store mints itself (ids, and pairs of them); names, which
/// callers choose, take the seeded [`NameHasher`].
///
/// A single id hashes to itself in the low bits, so ids minted in sequence land in
/// neighbouring buckets (inserting them touches memory in order), with multiplied bits on
/// top for the table's tag byte. Several words are combined as rustc's `FxHasher` does.
/// Callers cannot choose which keys a table holds, so a weak hash is safe here.
#[derive(Default)]
struct IdHasher {
    state: u64,
    words: u32,
}

/// The `FxHasher` multiplier.
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

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
            (self.state.rotate_left(5) ^ n).wrapping_mul(SEED)
        };
        self.words = self.words.saturating_add(1);
    }

    fn finish(&self) -> u64 {
        if self.words <= 1 {
            self.state ^ (self.state.wrapping_mul(SEED) & TAG_BITS)
        } else {
            self.state
        }
    }
}

const SHARDS: usize = 16;

/// The shard of an id.
fn shard_of(id: u64) -> usize {
    // The remainder is below SHARDS, so it always fits.
    usize::try_from(id % SHARDS as u64).unwrap_or_default()
}

/// Child id → owning topology, sharded so writers to different topologies rarely meet.
///
/// Invariant: an entry exists exactly while the child exists; entries change only under
/// the owning aggregate's lock.
struct Index {
    shards: [Padded<RwLock<IdMap<u64, TopologyId>>>; SHARDS],
}

impl Default for Index {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Padded::default()),
        }
    }
}

impl Index {
    fn shard(&self, id: u64) -> &RwLock<IdMap<u64, TopologyId>> {
        &self.shards[shard_of(id)].0
    }

    fn owner(&self, id: u64) -> Option<TopologyId> {
        read(self.shard(id)).get(&id).copied()
    }

    fn insert(&self, id: u64, owner: TopologyId) {
        write(self.shard(id)).insert(id, owner);
    }

    fn remove(&self, id: u64) {
        write(self.shard(id)).remove(&id);
    }
}

struct Aggregate {
    row: TopologyRecord,
    /// Set (under its catalog shard's write lock) when the topology is deleted, for
    /// threads that found the aggregate before that.
    deleted: bool,
    kids: Children,
}

#[derive(Default)]
struct Children {
    lans: Rows<LanId, Lan>,
    deckies: Rows<DeckyId, Decky>,
    edges: BTreeMap<EdgeId, Edge>,
    /// Invariant: `pairs`, `lan_edges` and `decky_edges` index exactly `edges`.
    pairs: IdMap<(DeckyId, LanId), EdgeId>,
    lan_edges: IdMap<LanId, BTreeSet<EdgeId>>,
    decky_edges: IdMap<DeckyId, BTreeSet<EdgeId>>,
    /// In id (append) order.
    events: Vec<StatusEvent>,
    mutations: BTreeMap<MutationId, Mutation>,
    /// Invariant: the ids of the `pending` mutations.
    pending: BTreeSet<MutationId>,
    /// Invariant: the id of the one `applying` mutation, if any (claims are serial).
    applying: Option<MutationId>,
}

impl Aggregate {
    /// Writes one edit that [`Stage::check`] accepted; nothing here can fail. The edit is
    /// owned so its strings move into the rows; `name_hash` is the hash [`precheck`]
    /// computed for the name the edit sets, if it sets one.
    fn apply(&mut self, inner: &Inner, edit: ChildEdit, name_hash: Option<u64>) -> Touched {
        let topology_id = self.row.id;
        let kids = &mut self.kids;
        match edit {
            ChildEdit::AddLan(new) => {
                let id = LanId::new(inner.seq.lans.mint());
                let hash = name_hash.unwrap_or_else(|| hash_name(&inner.names, &new.name));
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
                inner.lans.insert(id.get(), topology_id);
                Touched::Lan(id)
            }
            ChildEdit::UpdateLan(id, patch) => {
                if let Some(name) = patch.name {
                    let hash = name_hash.unwrap_or_else(|| hash_name(&inner.names, &name));
                    kids.lans.rename(&inner.names, id, name, hash);
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
            ChildEdit::DeleteLan(id) => {
                if kids.lans.remove(&inner.names, &id).is_some() {
                    inner.lans.remove(id.get());
                }
                for edge in kids.lan_edges.remove(&id).unwrap_or_default() {
                    kids.remove_edge(edge);
                }
                Touched::Lan(id)
            }
            ChildEdit::AddDecky(new) => {
                let id = DeckyId::new(inner.seq.deckies.mint());
                let hash = name_hash.unwrap_or_else(|| hash_name(&inner.names, &new.name));
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
                inner.deckies.insert(id.get(), topology_id);
                Touched::Decky(id)
            }
            ChildEdit::UpdateDecky(id, patch) => {
                if let Some(name) = patch.name {
                    let hash = name_hash.unwrap_or_else(|| hash_name(&inner.names, &name));
                    kids.deckies.rename(&inner.names, id, name, hash);
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
            ChildEdit::DeleteDecky(id) => {
                if kids.deckies.remove(&inner.names, &id).is_some() {
                    inner.deckies.remove(id.get());
                }
                for edge in kids.decky_edges.remove(&id).unwrap_or_default() {
                    kids.remove_edge(edge);
                }
                Touched::Decky(id)
            }
            ChildEdit::AddEdge(new) => {
                let id = EdgeId::new(inner.seq.edges.mint());
                kids.edges.insert(
                    id,
                    Edge {
                        id,
                        topology_id,
                        decky: new.decky,
                        lan: new.lan,
                        is_bridge: new.is_bridge,
                        forwards_l3: new.forwards_l3,
                    },
                );
                kids.pairs.insert((new.decky, new.lan), id);
                kids.lan_edges.entry(new.lan).or_default().insert(id);
                kids.decky_edges.entry(new.decky).or_default().insert(id);
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

/// A stored row with a name.
trait Named {
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
struct Rows<I, R> {
    rows: IdMap<I, R>,
    /// Invariant: every row is indexed exactly once under the hash of its name: here, or
    /// in `clashes` when another row holds that hash here.
    names: IdMap<u64, I>,
    /// The other rows whose names share a hash held in `names`: a 64-bit collision, so
    /// almost always empty. Invariant: no empty lists.
    clashes: IdMap<u64, Vec<I>>,
}

impl<I, R> Default for Rows<I, R> {
    fn default() -> Self {
        Self {
            rows: IdMap::default(),
            names: IdMap::default(),
            clashes: IdMap::default(),
        }
    }
}

impl<I: Copy + Eq + Hash, R: Named> Rows<I, R> {
    fn get(&self, id: &I) -> Option<&R> {
        self.rows.get(id)
    }

    /// A row to change; its name must be changed through [`Rows::rename`].
    fn get_mut(&mut self, id: &I) -> Option<&mut R> {
        self.rows.get_mut(id)
    }

    fn ids(&self) -> impl Iterator<Item = &I> {
        self.rows.keys()
    }

    fn values(&self) -> impl Iterator<Item = &R> {
        self.rows.values()
    }

    /// The row named `name`, whose [`hash_name`] is `hash`, if any.
    fn find(&self, hash: u64, name: &str) -> Option<I> {
        let named = |id: &I| self.rows.get(id).is_some_and(|row| row.name() == name);
        let first = self.names.get(&hash)?;
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
    fn insert(&mut self, id: I, row: R, hash: u64) {
        self.link(hash, id);
        self.rows.insert(id, row);
    }

    fn remove(&mut self, names: &NameHasher, id: &I) -> Option<R> {
        let row = self.rows.remove(id)?;
        self.unlink(hash_name(names, row.name()), *id);
        Some(row)
    }

    /// Renames a row; `hash` is the new name's [`hash_name`].
    fn rename(&mut self, names: &NameHasher, id: I, name: String, hash: u64) {
        let Some(row) = self.rows.get_mut(&id) else {
            return;
        };
        if row.name() != name {
            let (old, new) = (hash_name(names, row.name()), hash);
            *row.name_mut() = name;
            self.unlink(old, id);
            self.link(new, id);
        }
    }

    fn link(&mut self, hash: u64, id: I) {
        match self.names.entry(hash) {
            Entry::Vacant(slot) => {
                slot.insert(id);
            }
            Entry::Occupied(_) => self.clashes.entry(hash).or_default().push(id),
        }
    }

    fn unlink(&mut self, hash: u64, id: I) {
        let first = self.names.get(&hash) == Some(&id);
        let Entry::Occupied(mut clash) = self.clashes.entry(hash) else {
            if first {
                self.names.remove(&hash);
            }
            return;
        };
        let ids = clash.get_mut();
        if first {
            // Another row with this hash takes the freed place.
            match ids.pop() {
                Some(next) => self.names.insert(hash, next),
                None => self.names.remove(&hash),
            };
        } else {
            ids.retain(|other| *other != id);
        }
        if ids.is_empty() {
            clash.remove();
        }
    }
}

/// The names of one kind of row as a batch leaves them: only what the batch changed is
/// held here, borrowed; everything else is read from the aggregate.
struct Names<'a, I> {
    gone: IdSet<I>,
    renamed: IdMap<I, &'a str>,
    /// `true`: taken by the batch; `false`: freed by it.
    overlay: HashMap<&'a str, bool, NameHasher>,
}

impl<'a, I: Copy + Eq + Hash> Names<'a, I> {
    fn new(names: &NameHasher) -> Self {
        Self {
            gone: IdSet::default(),
            renamed: IdMap::default(),
            overlay: HashMap::with_hasher(names.clone()),
        }
    }

    /// The staged name of an existing row, or `None` if it does not exist (any more).
    fn current<R: Named>(&self, rows: &'a Rows<I, R>, id: I) -> Option<&'a str> {
        if self.gone.contains(&id) {
            return None;
        }
        match self.renamed.get(&id) {
            Some(name) => Some(name),
            None => rows.get(&id).map(Named::name),
        }
    }

    /// Is `name` (whose hash in `rows` is `hash`) taken once the batch so far is written?
    fn taken<R: Named>(&self, rows: &Rows<I, R>, name: &str, hash: u64) -> bool {
        self.overlay
            .get(name)
            .copied()
            .unwrap_or_else(|| rows.find(hash, name).is_some())
    }

    fn add(&mut self, name: &'a str) {
        self.overlay.insert(name, true);
    }

    fn rename(&mut self, id: I, from: &'a str, to: &'a str) {
        self.overlay.insert(from, false);
        self.overlay.insert(to, true);
        self.renamed.insert(id, to);
    }

    fn remove(&mut self, id: I, name: &'a str) {
        self.overlay.insert(name, false);
        self.gone.insert(id);
    }

    #[cfg(all(test, not(loom)))]
    fn len(&self) -> usize {
        self.gone.len() + self.renamed.len() + self.overlay.len()
    }
}

/// What a batch has changed so far, for checking its next edit as if the earlier ones had
/// been written. It holds only the changes (never a copy of the aggregate), so checking
/// an edit costs the same on an aggregate of ten rows or ten thousand.
///
/// Every step of a check costs the same whatever the batch's size (hashed lookups, counts
/// kept as it goes), so a batch costs time linear in its number of edits.
struct Stage<'a> {
    lans: Names<'a, LanId>,
    deckies: Names<'a, DeckyId>,
    /// Made by the first edit that stages a change to edges: most single edits, and many
    /// batches, never do, and then cost nothing for them.
    edges: Option<Box<StagedEdges>>,
}

/// The edges a batch removes and adds.
#[derive(Default)]
struct StagedEdges {
    gone: GoneEdges,
    new: NewEdges,
}

/// The stored edges a batch removes, with how many each decky loses.
#[derive(Default)]
struct GoneEdges {
    ids: IdSet<EdgeId>,
    /// Invariant: per decky, how many of its edges `ids` holds.
    per_decky: IdMap<DeckyId, usize>,
}

impl GoneEdges {
    fn contains(&self, id: &EdgeId) -> bool {
        self.ids.contains(id)
    }

    /// Marks a stored edge of `decky` gone.
    fn insert(&mut self, id: EdgeId, decky: DeckyId) {
        if self.ids.insert(id) {
            *self.per_decky.entry(decky).or_default() += 1;
        }
    }

    /// How many of `decky`'s stored edges are gone.
    fn of_decky(&self, decky: DeckyId) -> usize {
        self.per_decky.get(&decky).copied().unwrap_or_default()
    }

    #[cfg(all(test, not(loom)))]
    fn len(&self) -> usize {
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
struct NewEdges {
    pairs: IdSet<(DeckyId, LanId)>,
    /// Per LAN, its new deckies in the order the batch added them: the order of the new
    /// edges' ids, which decides which decky a refused LAN delete names.
    by_lan: IdMap<LanId, Vec<DeckyId>>,
    by_decky: IdMap<DeckyId, Vec<LanId>>,
    /// Invariant: per decky, how many of `pairs` it is in.
    per_decky: IdMap<DeckyId, usize>,
}

impl NewEdges {
    fn contains(&self, pair: &(DeckyId, LanId)) -> bool {
        self.pairs.contains(pair)
    }

    fn add(&mut self, (decky, lan): (DeckyId, LanId)) {
        if self.pairs.insert((decky, lan)) {
            self.by_lan.entry(lan).or_default().push(decky);
            self.by_decky.entry(decky).or_default().push(lan);
            *self.per_decky.entry(decky).or_default() += 1;
        }
    }

    /// The deckies the batch linked to `lan`, in the order it linked them.
    fn deckies_of(&self, lan: LanId) -> impl Iterator<Item = DeckyId> + '_ {
        self.by_lan
            .get(&lan)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&decky| self.pairs.contains(&(decky, lan)))
    }

    /// How many new edges `decky` has.
    fn of_decky(&self, decky: DeckyId) -> usize {
        self.per_decky.get(&decky).copied().unwrap_or_default()
    }

    fn remove_lan(&mut self, lan: LanId) {
        for decky in self.by_lan.remove(&lan).unwrap_or_default() {
            if self.pairs.remove(&(decky, lan))
                && let Some(count) = self.per_decky.get_mut(&decky)
            {
                *count = count.saturating_sub(1);
            }
        }
    }

    fn remove_decky(&mut self, decky: DeckyId) {
        for lan in self.by_decky.remove(&decky).unwrap_or_default() {
            self.pairs.remove(&(decky, lan));
        }
        self.per_decky.remove(&decky);
    }

    #[cfg(all(test, not(loom)))]
    fn len(&self) -> usize {
        self.pairs.len()
    }
}

impl<'a> Stage<'a> {
    fn new(names: &NameHasher) -> Self {
        Self {
            lans: Names::new(names),
            deckies: Names::new(names),
            edges: None,
        }
    }

    /// Checks every edit in order against the aggregate as the earlier edits leave it,
    /// with the checks `prepared` made of each edit's own fields before the lock.
    ///
    /// # Errors
    ///
    /// The first failing edit's error.
    fn check<H: AsRef<[Option<u64>]>>(
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
        let mut stage = Self::new(&inner.names);
        for (i, edit) in edits.iter().enumerate() {
            // The last edit's effects are never read: skip staging them.
            let record = i + 1 < edits.len();
            stage.edit(agg, inner, edit, prepared.take(i), record)?;
        }
        Ok(stage)
    }

    fn staged_edges(&mut self) -> &mut StagedEdges {
        self.edges.get_or_insert_default()
    }

    fn is_gone(&self, edge: &EdgeId) -> bool {
        self.edges.as_ref().is_some_and(|e| e.gone.contains(edge))
    }

    #[cfg(all(test, not(loom)))]
    fn len(&self) -> usize {
        let edges = self
            .edges
            .as_ref()
            .map_or(0, |e| e.gone.len() + e.new.len());
        self.lans.len() + self.deckies.len() + edges
    }

    /// Checks one edit. `pre` is its [`precheck`]: the error of its own fields, which
    /// is reported where the edit checks them, or the hash of the name it sets.
    fn edit(
        &mut self,
        agg: &'a Aggregate,
        inner: &Inner,
        edit: &'a ChildEdit,
        pre: Result<Option<u64>, StoreError>,
        record: bool,
    ) -> Result<(), StoreError> {
        let kids = &agg.kids;
        match edit {
            ChildEdit::AddLan(new) => {
                let hash = pre?.unwrap_or_else(|| hash_name(&inner.names, &new.name));
                if self.lans.taken(&kids.lans, &new.name, hash) {
                    return Err(duplicate(Entity::Lan, &new.name));
                }
                if record {
                    self.lans.add(&new.name);
                }
            }
            ChildEdit::UpdateLan(id, patch) => {
                let current = self
                    .lans
                    .current(&kids.lans, *id)
                    .ok_or_else(|| not_found(Entity::Lan, id.get()))?;
                let hash = pre?;
                if let Some(name) = &patch.name
                    && name != current
                {
                    let hash = hash.unwrap_or_else(|| hash_name(&inner.names, name));
                    if self.lans.taken(&kids.lans, name, hash) {
                        return Err(duplicate(Entity::Lan, name));
                    }
                    if record {
                        self.lans.rename(*id, current, name);
                    }
                }
            }
            ChildEdit::DeleteLan(id) => {
                let name = self
                    .lans
                    .current(&kids.lans, *id)
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
                let hash = pre?.unwrap_or_else(|| hash_name(&inner.names, &new.name));
                if self.deckies.taken(&kids.deckies, &new.name, hash) {
                    return Err(duplicate(Entity::Decky, &new.name));
                }
                if record {
                    self.deckies.add(&new.name);
                }
            }
            ChildEdit::UpdateDecky(id, patch) => {
                let current = self
                    .deckies
                    .current(&kids.deckies, *id)
                    .ok_or_else(|| not_found(Entity::Decky, id.get()))?;
                let hash = pre?;
                if let Some(name) = &patch.name
                    && name != current
                {
                    let hash = hash.unwrap_or_else(|| hash_name(&inner.names, name));
                    if self.deckies.taken(&kids.deckies, name, hash) {
                        return Err(duplicate(Entity::Decky, name));
                    }
                    if record {
                        self.deckies.rename(*id, current, name);
                    }
                }
            }
            ChildEdit::DeleteDecky(id) => {
                let name = self
                    .deckies
                    .current(&kids.deckies, *id)
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
                let decky_error = self
                    .deckies
                    .current(&kids.deckies, new.decky)
                    .is_none()
                    .then(|| missing_end(&inner.deckies, Entity::Decky, new.decky.get(), topology));
                let lan_error = self
                    .lans
                    .current(&kids.lans, new.lan)
                    .is_none()
                    .then(|| missing_end(&inner.lans, Entity::Lan, new.lan.get(), topology));
                if let Some(e) = StoreError::first(decky_error, lan_error) {
                    return Err(e);
                }
                let pair = (new.decky, new.lan);
                let taken = self.edges.as_ref().is_some_and(|e| e.new.contains(&pair))
                    || kids
                        .pairs
                        .get(&pair)
                        .is_some_and(|edge| !self.is_gone(edge));
                if taken {
                    return Err(StoreError::Duplicate {
                        entity: Entity::Edge,
                        name: format!("decky {} ↔ lan {}", new.decky, new.lan),
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
                    .filter(|_| !self.is_gone(id))
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
            .filter(|edge| !self.is_gone(edge))
            .filter_map(|edge| kids.edges.get(edge).map(|e| e.decky));
        let added = self.edges.iter().flat_map(move |e| e.new.deckies_of(lan));
        stored.chain(added).find_map(|decky| {
            (self.lan_count(agg, decky) == 1).then(|| {
                let name = self
                    .deckies
                    .current(&kids.deckies, decky)
                    .unwrap_or_default();
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

/// The checks of one edit that need no topology, made before its topology is locked (so
/// that writers to one topology make them in parallel): its own fields, by the policy every
/// backend applies ([`check_fields`]). On success, the hash of the name the edit sets, if
/// any. [`Stage::edit`] reports an error from here where the edit's stateful checks put it.
fn precheck(names: &NameHasher, edit: &ChildEdit) -> Result<Option<u64>, StoreError> {
    check_fields(edit)?;
    let hash = |name: &str| hash_name(names, name);
    Ok(match edit {
        ChildEdit::AddLan(new) => Some(hash(&new.name)),
        ChildEdit::AddDecky(new) => Some(hash(&new.name)),
        ChildEdit::UpdateLan(_, patch) => patch.name.as_deref().map(hash),
        ChildEdit::UpdateDecky(_, patch) => patch.name.as_deref().map(hash),
        ChildEdit::DeleteLan(_)
        | ChildEdit::DeleteDecky(_)
        | ChildEdit::AddEdge(_)
        | ChildEdit::DeleteEdge(_) => None,
    })
}

/// The [`precheck`]s of a batch: the name hash of each edit up to the first one whose own
/// fields are invalid, and that edit's error. `H` is an array for a single edit, a `Vec`
/// for a batch.
struct Prepared<H> {
    hashes: H,
    invalid: Option<(usize, StoreError)>,
}

impl Prepared<[Option<u64>; 1]> {
    fn one(names: &NameHasher, edit: &ChildEdit) -> Self {
        match precheck(names, edit) {
            Ok(hash) => Self {
                hashes: [hash],
                invalid: None,
            },
            Err(e) => Self {
                hashes: [None],
                invalid: Some((0, e)),
            },
        }
    }
}

impl Prepared<Vec<Option<u64>>> {
    fn batch(names: &NameHasher, edits: &[ChildEdit]) -> Self {
        let mut hashes = Vec::with_capacity(edits.len());
        for (i, edit) in edits.iter().enumerate() {
            match precheck(names, edit) {
                Ok(hash) => hashes.push(hash),
                // The batch stops at this edit at the latest: the rest need no checks.
                Err(e) => {
                    return Self {
                        hashes,
                        invalid: Some((i, e)),
                    };
                }
            }
        }
        Self {
            hashes,
            invalid: None,
        }
    }
}

impl<H: AsRef<[Option<u64>]>> Prepared<H> {
    /// The precheck of edit `i`, for [`Stage::edit`]; an error is handed out once.
    fn take(&mut self, i: usize) -> Result<Option<u64>, StoreError> {
        match self.invalid.take_if(|(at, _)| *at == i) {
            Some((_, e)) => Err(e),
            None => Ok(self.hash(i)),
        }
    }

    /// The hash of the name edit `i` sets, if it sets one.
    fn hash(&self, i: usize) -> Option<u64> {
        self.hashes.as_ref().get(i).copied().flatten()
    }
}

/// A batch made ready before its topology is locked: the edits owned (their strings move
/// into the rows) and in the form stored ([`canonical_edit`]), their [`precheck`]s, and
/// room for the report.
struct Ready {
    edits: Vec<ChildEdit>,
    prepared: Prepared<Vec<Option<u64>>>,
    touched: Vec<Touched>,
}

impl Ready {
    fn new(names: &NameHasher, edits: &[ChildEdit]) -> Self {
        let mut owned = edits.to_vec();
        owned.iter_mut().for_each(canonical_edit);
        Self {
            prepared: Prepared::batch(names, &owned),
            touched: Vec::with_capacity(owned.len()),
            edits: owned,
        }
    }
}

/// Why an edge end that is not in the topology fails: it is in another one, or nowhere.
fn missing_end(index: &Index, entity: Entity, id: u64, topology: TopologyId) -> StoreError {
    match index.owner(id) {
        Some(owner) if owner != topology => StoreError::ForeignEnd {
            entity,
            id,
            owner: owner.get(),
            topology: topology.get(),
        },
        _ => not_found(entity, id),
    }
}

/// The version a free-form batch leaves: a batch of no-ops is checked but not bumped.
fn next_version(
    current: u64,
    expected: Option<u64>,
    edits: &[ChildEdit],
) -> Result<u64, StoreError> {
    if edits.iter().all(ChildEdit::is_noop) {
        match expected {
            Some(expected) if expected != current => Err(conflict(current, expected)),
            _ => Ok(current),
        }
    } else {
        check_and_bump(current, expected).map_err(version_error)
    }
}

/// The new version, or the error that takes precedence among a refusal (status gate,
/// invalid argument), the version check and the first failing edit.
fn settle(
    refusal: Option<StoreError>,
    version: Result<u64, StoreError>,
    edit: Option<StoreError>,
) -> Result<u64, StoreError> {
    let (next, version_error) = match version {
        Ok(next) => (next, None),
        Err(e) => (0, Some(e)),
    };
    match StoreError::first(StoreError::first(refusal, version_error), edit) {
        Some(e) => Err(e),
        None => Ok(next),
    }
}

fn version_error(e: VersionError) -> StoreError {
    match e {
        VersionError::Conflict(c) => StoreError::VersionConflict(c),
        VersionError::Overflow(o) => StoreError::VersionOverflow(o),
    }
}

fn conflict(current: u64, expected: u64) -> StoreError {
    StoreError::VersionConflict(VersionConflict { current, expected })
}

fn not_found(entity: Entity, id: u64) -> StoreError {
    StoreError::NotFound { entity, id }
}

fn duplicate(entity: Entity, name: &str) -> StoreError {
    StoreError::Duplicate {
        entity,
        name: name.into(),
    }
}

// A poisoned lock is taken over: every write checks before it changes anything, so a
// panic never leaves data half-written behind a lock.

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

// Not under loom: these use `is_poisoned` and plain threads, which loom does not model.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::store::{NewDecky, NewEdge, NewLan};

    fn assert_send_sync<T: Send + Sync + Clone + fmt::Debug + Default>() {}

    #[test]
    fn handle_traits() {
        assert_send_sync::<MemoryStore>();
        let store = MemoryStore::new();
        let _ = store.create_topology("lab");
        assert!(format!("{store:?}").contains("topologies: 1"));
    }

    /// Poisons every lock a write takes (catalog, aggregate, index shards) by panicking
    /// while holding them.
    fn poison(store: &MemoryStore, id: TopologyId) {
        let inner = Arc::clone(&store.inner);
        let shared = store.shared(id).ok();
        let result = std::thread::spawn(move || {
            let _names = lock(&inner.catalog.names);
            let _catalog: Vec<_> = inner.catalog.shards.iter().map(|s| write(&s.0)).collect();
            let _agg = shared.as_ref().map(|s| lock(s));
            let _lans: Vec<_> = inner.lans.shards.iter().map(|s| write(&s.0)).collect();
            let _deckies: Vec<_> = inner.deckies.shards.iter().map(|s| write(&s.0)).collect();
            panic!("a caller panicked while holding the store's locks");
        })
        .join();
        assert!(result.is_err());
        assert!(store.inner.catalog.names.is_poisoned());
        assert!(store.inner.catalog.shards[0].0.is_poisoned());
        assert!(store.inner.lans.shards[0].0.is_poisoned());
    }

    #[test]
    fn survives_a_panicking_thread() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        let lab = store.create_topology("lab")?;
        let lan = store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))?;
        poison(&store, lab.id);

        // Reads and writes of every kind still work, and nothing was lost.
        assert_eq!(store.get_topology(lab.id)?.version, 2);
        let decky = store.add_decky(lab.id, NewDecky::new("web"), Some(2))?;
        store.add_edge(lab.id, NewEdge::new(decky.id, lan.id), Some(3))?;
        store.set_lan_network_id(lan.id, Some("net-1"))?;
        let other = store.create_topology("other")?;
        assert_eq!(store.list_topologies(None)?.len(), 2);
        store.delete_topology(other.id, None)?;
        let detail = store.topology_detail(lab.id)?;
        assert_eq!(detail.topology.version, 4);
        assert_eq!(detail.lans.len(), 1);
        assert_eq!(detail.lans[0].network_id.as_deref(), Some("net-1"));
        assert_eq!(detail.edges.len(), 1);
        Ok(())
    }

    #[test]
    fn a_write_stages_only_what_it_changes() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        let lab = store.create_topology("lab")?;
        let big: Vec<ChildEdit> = (0..10_000)
            .map(|i| ChildEdit::AddLan(NewLan::new(format!("lan-{i}"), "10.0.0.0/24")))
            .collect();
        store.edit(lab.id, None, &big)?;

        let shared = store.shared(lab.id)?;
        let agg = lock(&shared);
        let lan = |i| {
            let name = format!("lan-{i}");
            let lans = &agg.kids.lans;
            lans.find(hash_name(&store.inner.names, &name), &name)
                .unwrap_or(LanId::new(0))
        };
        let batch = [
            ChildEdit::AddLan(NewLan::new("new", "10.1.0.0/24")),
            ChildEdit::DeleteLan(lan(1)),
            ChildEdit::UpdateLan(
                lan(2),
                crate::store::LanPatch {
                    name: Some("renamed".into()),
                    ..Default::default()
                },
            ),
            ChildEdit::AddLan(NewLan::new("lan-1", "10.2.0.0/24")),
        ];
        let mut prepared = Prepared::batch(&store.inner.names, &batch);
        let stage = Stage::check_staged(&agg, &store.inner, &batch, &mut prepared)?;
        // 10,000 LANs stored, a handful of staged entries: the aggregate was not copied.
        assert!(stage.len() <= 8, "staged {} entries", stage.len());
        Ok(())
    }

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
        assert!(rows.names.is_empty() && rows.clashes.is_empty());
        // And with real hashes, a rename moves the entry.
        let names = NameHasher::default();
        rows.insert(LanId::new(4), lan(4, "x"), hash_name(&names, "x"));
        rows.rename(&names, LanId::new(4), "y".into(), hash_name(&names, "y"));
        assert_eq!(rows.find(hash_name(&names, "x"), "x"), None);
        assert_eq!(rows.find(hash_name(&names, "y"), "y"), Some(LanId::new(4)));
        assert_eq!((rows.names.len(), rows.clashes.len()), (1, 0));
    }

    #[test]
    fn ids_have_their_own_sequences_without_gaps_after_refusals() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        let a = store.create_topology("a")?;
        let refused = store.edit(
            a.id,
            None,
            &[
                ChildEdit::AddLan(NewLan::new("x", "s")),
                ChildEdit::AddLan(NewLan::new("x", "s")),
            ],
        );
        assert!(matches!(refused, Err(StoreError::Duplicate { .. })));
        let lan = store.add_lan(a.id, NewLan::new("x", "s"), None)?;
        let decky = store.add_decky(a.id, NewDecky::new("d"), None)?;
        let edge = store.add_edge(a.id, NewEdge::new(decky.id, lan.id), None)?;
        assert_eq!(
            (a.id.get(), lan.id.get(), decky.id.get(), edge.id.get()),
            (1, 1, 1, 1)
        );
        Ok(())
    }
}
