//! [`MemoryStore`]: the embedded store, everything in memory, shared between threads.
//!
//! This file holds the type and the contract: for each operation, the rules in the order
//! they apply (status gate, version, checks, then the write), with the rules themselves
//! in [`policy`](super::policy). The machinery lives in rooms of its own:
//!
//! | room | what it keeps |
//! |---|---|
//! | `catalog` | the topologies by id (sharded) and by name; the id sequences |
//! | `aggregate` | one topology's row and children behind one lock; writing an edit |
//! | `rows` | one kind of child row, with its name index |
//! | `index` | the id hash, the shards, and the child id → topology indexes |
//! | `batch` | a batch before the lock (own fields checked, names hashed), then checked and written |
//! | `stage` | checking each edit against the aggregate as the earlier edits leave it |
//! | `changes` | what a batch has changed so far, while it is checked |
//! | `queue` | claims under a lease, fenced uses of a claim, closing it, waking waiters |
//! | `locks` | taking locks, and taking over a poisoned one |
//!
//! Layout and locking:
//!
//! - a catalog maps topology ids to their aggregates (in `RwLock`ed shards) and holds the
//!   store-wide topology names (a `Mutex` taken by create and delete only);
//! - each topology is one aggregate behind its own `Mutex`: its row, LANs, deckies, edges,
//!   status log and mutation queue, so writers to different topologies do not wait on each
//!   other;
//! - two sharded owner indexes map LAN and decky ids to their topology, for the runtime
//!   writes that get only a child id and for telling a foreign edge end from a missing one.
//!
//! Lock order, always: topology names, then a catalog shard, then one aggregate, then
//! owner index shards. Nobody holds two aggregates, or two shards of one kind, at once.
//!
//! Every write checks everything first (status gate, version, each edit against a staged
//! view holding only what the batch changes) and only then changes anything, with steps
//! that cannot fail. That is why a lock poisoned by a panicking thread is simply taken
//! over: the data behind it is never half-written.
//!
//! What needs no topology is done before its lock is taken, so that writers to one
//! topology do it in parallel: each edit's own fields are checked, the names it sets are
//! hashed, and a batch's edits are copied (see `batch`). Its errors are still reported
//! where the edit's checks would report them.

mod aggregate;
mod batch;
mod catalog;
mod changes;
mod index;
mod locks;
mod queue;
mod rows;
mod stage;

use core::time::Duration;
use std::fmt;

use super::policy::{
    batch_version, bumped_version, canonical_edit, delete_gate, free_form_gate, live_gate, settle,
    stale_version, transition_refusal,
};
use super::sync::{Arc, Mutex};
use super::{
    ChildEdit, Claim, ClaimOptions, Clock, DeckyId, DeckyRuntime, EditReport, Edited, Entity,
    EventId, LanId, Lease, Mutation, MutationId, Page, PageRequest, Precondition, StatusEvent,
    StoreError, SystemClock, Timestamp, TopologyDetail, TopologyRecord, Touched, Transitioned,
    canonical_name, check_text,
};
use crate::{INITIAL_VERSION, MAX_VERSION, MutationOp, MutationState, TopologyId, TopologyStatus};

use aggregate::Aggregate;
use batch::{Prepared, Ready};
use catalog::{Catalog, Sequences};
use index::Owners;
use locks::{lock, write};
use rows::NameHasher;

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
    /// The data every handle shares.
    inner: Arc<Inner>,
}

/// Everything a store's handles share.
#[derive(Default)]
struct Inner {
    /// The topologies.
    catalog: Catalog,
    /// Which topology each LAN is in.
    lan_owners: Owners,
    /// Which topology each decky is in.
    decky_owners: Owners,
    /// Where every id is minted.
    seq: Sequences,
    /// The one hasher of child names: every topology's name index and the hashes made
    /// before a topology is locked (see `batch`) use it.
    name_hasher: NameHasher,
    /// Where leases (and every timestamp the store writes) read the time.
    clock: StoreClock,
    /// Wakes the appliers waiting for work.
    work: super::wake::WorkSignal,
}

/// The store's clock: the system's unless a test gave another.
struct StoreClock(std::sync::Arc<dyn Clock>);

impl Default for StoreClock {
    fn default() -> Self {
        Self(std::sync::Arc::new(SystemClock))
    }
}

impl StoreClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store reading the time from `clock`: its leases run out, and the times it
    /// writes are taken, by that clock (e.g. a [`ManualClock`](super::ManualClock) a test
    /// moves by hand).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use topostate::store::{ManualClock, MemoryStore, Timestamp, TopologyStore};
    ///
    /// let clock = Arc::new(ManualClock::new(Timestamp::from_micros(42)));
    /// let store = MemoryStore::with_clock(clock);
    /// assert_eq!(store.create_topology("lab")?.created_at, Timestamp::from_micros(42));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    #[must_use]
    pub fn with_clock(clock: std::sync::Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                clock: StoreClock(clock),
                ..Inner::default()
            }),
        }
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
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("MemoryStore");
        self.inner.catalog.debug_count(&mut s);
        s.finish_non_exhaustive()
    }
}

/// Every call holds a topology's lock only for its own checks and writes, never across
/// I/O: its async face runs inline (see [`NonBlocking`](super::NonBlocking)).
/// Its async `wait_for_work` waits for real, without blocking the executor's thread.
impl super::NonBlocking for MemoryStore {
    fn wait_for_work_async(
        &self,
        id: Option<TopologyId>,
        timeout: Duration,
    ) -> super::StoreFuture<'_, bool> {
        Box::pin(self.wait_async(id, timeout))
    }
}

super::trace::traced_store!(MemoryStore, "memory");

impl super::trace::Untraced for MemoryStore {
    fn create_topology(&self, name: &str) -> Result<TopologyRecord, StoreError> {
        let name = canonical_name("topology name", name)?;
        let name: &str = &name;
        let mut names = lock(&self.inner.catalog.topology_names);
        if names.contains_key(name) {
            return Err(StoreError::Duplicate {
                entity: Entity::Topology,
                name: name.into(),
            });
        }
        let id = TopologyId::new(self.inner.seq.topologies.mint());
        let now = self.now();
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
        write(self.inner.catalog.shard(id))
            .insert(id, Arc::new(Mutex::new(Aggregate::new(row.clone()))));
        Ok(row)
    }

    fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError> {
        self.with(id, |agg| Ok(agg.row.clone()))
    }

    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
        page: PageRequest<TopologyId>,
    ) -> Result<Page<TopologyRecord>, StoreError> {
        let limit = page.checked_limit()?;
        let after = page.cursor();
        // Each aggregate is locked on its own as the page reaches it, and only until the
        // page is full (plus the one row that says another page follows).
        let rows = self
            .inner
            .catalog
            .all()
            .into_iter()
            .filter(|(id, _)| after.is_none_or(|a| *id > a))
            .filter_map(|(_, shared)| {
                let agg = lock(&shared);
                let keep = !agg.deleted && status.is_none_or(|s| agg.row.status == s);
                keep.then(|| agg.row.clone())
            });
        Ok(Page::from_rows(rows, limit))
    }

    fn topology_detail(&self, id: TopologyId) -> Result<TopologyDetail, StoreError> {
        self.with(id, |agg| Ok(agg.detail()))
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
            let at = self.now();
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

    fn list_status_events(
        &self,
        id: TopologyId,
        page: PageRequest<EventId>,
    ) -> Result<Page<StatusEvent>, StoreError> {
        let limit = page.checked_limit()?;
        // Invariant: events are appended in id order, so the ones older than the cursor
        // are a prefix, and reversing it gives newest first.
        self.with(id, |agg| {
            let events = &agg.kids.events;
            let end = page
                .cursor()
                .map_or(events.len(), |c| events.partition_point(|e| e.id < c));
            Ok(Page::from_rows(events[..end].iter().rev().cloned(), limit))
        })
    }

    fn edit(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError> {
        let ready = Ready::new(&self.inner.name_hasher, edits);
        self.with(id, |agg| {
            let gate = free_form_gate(agg.row.status).err();
            let version = batch_version(agg.row.version, expected_version, edits);
            self.run_edits(agg, gate, version, ready)
        })
    }

    fn set_lan_network_id(&self, lan: LanId, network_id: Option<&str>) -> Result<(), StoreError> {
        self.with_child(&self.inner.lan_owners, Entity::Lan, lan.get(), |agg| {
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
        self.with_child(
            &self.inner.decky_owners,
            Entity::Decky,
            decky.get(),
            |agg| {
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
            },
        )
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
            let version = bumped_version(agg.row.version, expected_version);
            let version = settle(refusal, version, None)?;
            let mutation = Mutation {
                id: MutationId::new(self.inner.seq.mutations.mint()),
                topology_id: id,
                op,
                payload: payload.into(),
                state: MutationState::Pending,
                requested_at: self.now(),
                applied_at: None,
                reason: None,
                claimed_at: None,
                lease_until: None,
                holder: None,
                attempts: 0,
                token: 0,
                edited_by: None,
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
        .inspect(|_| self.inner.work.notify())
    }

    fn claim_next_mutation_with(
        &self,
        id: TopologyId,
        options: &ClaimOptions,
    ) -> Result<Claim, StoreError> {
        self.claim(id, options)
    }

    fn renew_lease(&self, claim: &Lease, lease: Duration) -> Result<Mutation, StoreError> {
        self.renew(claim, lease)
    }

    fn release_mutation(&self, claim: Lease) -> Result<Mutation, StoreError> {
        self.release(&claim)
    }

    fn wait_for_work(&self, id: Option<TopologyId>, timeout: Duration) -> Result<bool, StoreError> {
        self.wait(id, timeout)
    }

    fn apply_live(&self, claim: &Lease, edits: &[ChildEdit]) -> Result<EditReport, StoreError> {
        let ready = Ready::new(&self.inner.name_hasher, edits);
        self.with_claim(claim, |agg, fenced| {
            // Live edits committed under an earlier claim are not applied again.
            let committed = agg
                .kids
                .mutations
                .get(&claim.id())
                .and_then(|m| m.edited_by.filter(|&t| t != claim.token()))
                .map(|edited_by| StoreError::EditsCommitted {
                    id: claim.id(),
                    edited_by,
                });
            let refusal = StoreError::first(
                StoreError::first(fenced, committed),
                live_gate(agg.row.status).err(),
            );
            let current = agg.row.version;
            let report = self.run_edits(agg, refusal, Ok(current), ready)?;
            if let Some(mutation) = agg.kids.mutations.get_mut(&claim.id()) {
                mutation.edited_by = Some(claim.token());
            }
            Ok(report)
        })
    }

    fn mark_mutation_applied(&self, claim: Lease) -> Result<Mutation, StoreError> {
        self.mark(&claim, MutationState::Applied, None)
    }

    fn mark_mutation_failed(&self, claim: Lease, reason: &str) -> Result<Mutation, StoreError> {
        self.mark(&claim, MutationState::Failed, Some(reason))
    }

    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
        page: PageRequest<MutationId>,
    ) -> Result<Page<Mutation>, StoreError> {
        let limit = page.checked_limit()?;
        self.with(id, |agg| {
            let older = match page.cursor() {
                Some(c) => agg.kids.mutations.range(..c),
                None => agg.kids.mutations.range(..),
            };
            let rows = older
                .rev()
                .map(|(_, m)| m)
                .filter(|m| state.is_none_or(|s| m.state == s))
                .cloned();
            Ok(Page::from_rows(rows, limit))
        })
    }

    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError> {
        self.with(id, |agg| {
            agg.row.needs_resync = needs_resync;
            Ok(())
        })
    }

    /// As [`TopologyStore::edit`] with a batch of one owned edit, without copying the edit
    /// or allocating a report.
    fn edit_one(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        mut edit: ChildEdit,
    ) -> Result<Edited<Touched>, StoreError> {
        canonical_edit(&mut edit);
        let mut prepared = Prepared::one(&self.inner.name_hasher, &edit);
        self.with(id, |agg| {
            let edits = std::slice::from_ref(&edit);
            let gate = free_form_gate(agg.row.status).err();
            let version = batch_version(agg.row.version, expected_version, edits);
            let version = self.check_edits(agg, gate, version, edits, &mut prepared)?;
            let touched = agg.apply(&self.inner, edit, prepared.hash(0), &[]);
            agg.row.version = version;
            Ok(Edited {
                id: touched,
                version,
            })
        })
    }

    fn delete_topology(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let doomed = {
            let mut names = lock(&self.inner.catalog.topology_names);
            let mut shard = write(self.inner.catalog.shard(id));
            let shared = shard
                .get(&id)
                .cloned()
                .ok_or_else(|| not_found(Entity::Topology, id.get()))?;
            let mut agg = lock(&shared);
            let refusal = StoreError::first(
                delete_gate(agg.row.status).err(),
                stale_version(agg.row.version, expected_version),
            );
            if let Some(e) = refusal {
                return Err(e);
            }
            shard.remove(&id);
            names.remove(&agg.row.name);
            for lan in agg.kids.lans.ids() {
                self.inner.lan_owners.remove(lan.get());
            }
            for decky in agg.kids.deckies.ids() {
                self.inner.decky_owners.remove(decky.get());
            }
            agg.deleted = true;
            std::mem::take(&mut agg.kids)
        };
        // Free the children after the locks are released.
        drop(doomed);
        Ok(())
    }
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

// Not under loom: plain threads and `Debug`, which loom does not model.
#[cfg(all(test, not(topostate_loom)))]
mod tests {
    use super::*;
    use crate::store::TopologyStore;

    fn assert_send_sync<T: Send + Sync + Clone + fmt::Debug + Default>() {}

    #[test]
    fn handle_traits() {
        assert_send_sync::<MemoryStore>();
        let store = MemoryStore::new();
        let _ = store.create_topology("lab");
        assert!(format!("{store:?}").contains("topologies: 1"));
    }
}
