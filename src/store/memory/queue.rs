//! The mutation queue's plumbing: claims under a lease, fenced uses of a claim, closing a
//! claim, and waking appliers that wait for work.

use core::time::Duration;

use crate::MutationState;
use crate::store::lease::{lease_end, lease_micros};
use crate::store::policy::live_gate;
use crate::store::{
    Claim, ClaimOptions, Entity, Lease, Mutation, StoreError, Timestamp, TopologyId, check_text,
};

use super::aggregate::Aggregate;
use super::locks::lock;
use super::{MemoryStore, not_found};
use crate::store::wake::micros_until;

/// What a topology's queue offers a claim now.
enum Offer {
    /// A claim would take something.
    Work,
    /// A lease runs until then; nothing before.
    HeldUntil(Timestamp),
    /// Nothing until something is enqueued (or the topology is not live).
    Nothing,
}

/// A refused use of `claim`: [`StoreError::LeaseLost`] if its token is not the mutation's,
/// else [`StoreError::WrongMutationState`] unless the mutation is `applying`.
pub(crate) fn fence(claim: &Lease, mutation: &Mutation) -> Option<StoreError> {
    if mutation.token != claim.token() {
        return Some(StoreError::LeaseLost {
            id: mutation.id,
            token: claim.token(),
            current_token: mutation.token,
            holder: mutation.holder.clone(),
            state: mutation.state,
            lease_until: mutation.lease_until,
        });
    }
    (mutation.state != MutationState::Applying).then(|| StoreError::WrongMutationState {
        id: mutation.id,
        expected: MutationState::Applying,
        found: mutation.state,
    })
}

/// Claims and claimed mutations.
impl MemoryStore {
    /// The store's time.
    pub(super) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Claims the next mutation of topology `id`, or says why there is none.
    pub(super) fn claim(
        &self,
        id: TopologyId,
        options: &ClaimOptions,
    ) -> Result<Claim, StoreError> {
        self.with(id, |agg| {
            live_gate(agg.row.status)?;
            let (lease, holder) = options.checked()?;
            let now = self.now();
            let kids = &mut agg.kids;
            // Invariant: the `applying` mutation, if any, is older than every pending one
            // (it was the oldest pending when claimed, and later ones were enqueued after),
            // so taking it over keeps the queue in order.
            let next = match kids.applying {
                Some(applying) => {
                    let held = kids
                        .mutations
                        .get(&applying)
                        .is_none_or(|m| !m.lease_expired(now));
                    if held {
                        return Ok(Claim::Busy { applying });
                    }
                    applying
                }
                None => match kids.pending.first() {
                    Some(&oldest) => oldest,
                    None => return Ok(Claim::Empty),
                },
            };
            let until = lease_end(now, lease)?;
            let Some(mutation) = kids.mutations.get_mut(&next) else {
                return Ok(Claim::Empty);
            };
            kids.pending.remove(&next);
            kids.applying = Some(next);
            mutation.state = MutationState::Applying;
            mutation.claimed_at = Some(now);
            mutation.lease_until = Some(until);
            mutation.holder = holder.map(Into::into);
            mutation.attempts = mutation.attempts.saturating_add(1);
            mutation.token = mutation.token.saturating_add(1);
            Ok(Claim::Claimed {
                lease: Lease::from_parts(next, id, mutation.token),
                mutation: mutation.clone(),
            })
        })
    }

    /// Runs `f` on a claimed mutation's aggregate with the fencing refusal of the claim,
    /// if any (see [`fence`]).
    pub(super) fn with_claim<R>(
        &self,
        claim: &Lease,
        f: impl FnOnce(&mut Aggregate, Option<StoreError>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.with(claim.topology_id(), |agg| {
            let mutation = agg
                .kids
                .mutations
                .get(&claim.id())
                .ok_or_else(|| not_found(Entity::Mutation, claim.id().get()))?;
            let refusal = fence(claim, mutation);
            f(agg, refusal)
        })
    }

    /// The claimed mutation, for a write already checked by [`fence`].
    fn claimed<'a>(agg: &'a mut Aggregate, claim: &Lease) -> Result<&'a mut Mutation, StoreError> {
        agg.kids
            .mutations
            .get_mut(&claim.id())
            .ok_or_else(|| not_found(Entity::Mutation, claim.id().get()))
    }

    /// Moves a claimed mutation from `applying` to `to`.
    pub(super) fn mark(
        &self,
        claim: &Lease,
        to: MutationState,
        reason: Option<&str>,
    ) -> Result<Mutation, StoreError> {
        let marked = self.with_claim(claim, |agg, refusal| {
            let invalid = reason.and_then(|r| check_text("reason", r).err());
            if let Some(e) = StoreError::first(refusal, invalid) {
                return Err(e);
            }
            let now = self.now();
            let mutation = Self::claimed(agg, claim)?;
            mutation.state = to;
            mutation.applied_at = Some(now);
            mutation.reason = reason.map(Into::into);
            let mutation = mutation.clone();
            if agg.kids.applying == Some(mutation.id) {
                agg.kids.applying = None;
            }
            Ok(mutation)
        })?;
        self.inner.work.notify();
        Ok(marked)
    }

    /// Renews a claim's lease.
    pub(super) fn renew(&self, claim: &Lease, lease: Duration) -> Result<Mutation, StoreError> {
        self.with_claim(claim, |agg, refusal| {
            // A fencing refusal outranks a bad lease.
            let lease = match (refusal, lease_micros(lease)) {
                (Some(e), _) => return Err(e),
                (None, lease) => lease?,
            };
            let until = lease_end(self.now(), lease)?;
            let mutation = Self::claimed(agg, claim)?;
            mutation.lease_until = Some(until);
            Ok(mutation.clone())
        })
    }

    /// Puts a claimed mutation back to `pending`, first in line.
    pub(super) fn release(&self, claim: &Lease) -> Result<Mutation, StoreError> {
        let released = self.with_claim(claim, |agg, refusal| {
            if let Some(e) = refusal {
                return Err(e);
            }
            let mutation = Self::claimed(agg, claim)?;
            mutation.state = MutationState::Pending;
            mutation.lease_until = None;
            let mutation = mutation.clone();
            agg.kids.pending.insert(mutation.id);
            if agg.kids.applying == Some(mutation.id) {
                agg.kids.applying = None;
            }
            Ok(mutation)
        })?;
        self.inner.work.notify();
        Ok(released)
    }

    /// What topology `agg`'s queue offers a claim at `now`.
    fn offer(agg: &Aggregate, now: Timestamp) -> Offer {
        if live_gate(agg.row.status).is_err() || agg.deleted {
            return Offer::Nothing;
        }
        let kids = &agg.kids;
        match kids.applying.and_then(|id| kids.mutations.get(&id)) {
            Some(m) if m.lease_expired(now) => Offer::Work,
            Some(m) => m.lease_until.map_or(Offer::Work, Offer::HeldUntil),
            None if kids.pending.is_empty() => Offer::Nothing,
            None => Offer::Work,
        }
    }

    /// Whether a claim could take something now, else the earliest lease end.
    fn look(&self, id: Option<TopologyId>) -> Result<Result<(), Option<Timestamp>>, StoreError> {
        let now = self.now();
        let offers = match id {
            Some(id) => vec![self.with(id, |agg| Ok(Self::offer(agg, now)))?],
            None => self
                .inner
                .catalog
                .all()
                .iter()
                .map(|(_, shared)| Self::offer(&lock(shared), now))
                .collect(),
        };
        let mut earliest: Option<Timestamp> = None;
        for offer in offers {
            match offer {
                Offer::Work => return Ok(Ok(())),
                Offer::HeldUntil(at) => earliest = Some(earliest.map_or(at, |e| e.min(at))),
                Offer::Nothing => {}
            }
        }
        Ok(Err(earliest))
    }

    /// Blocks until a claim could take something, or `timeout` passes.
    pub(super) fn wait(
        &self,
        id: Option<TopologyId>,
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        self.inner
            .work
            .wait_for(timeout, None, || self.look_for_wait(id))
    }

    /// Waits, without blocking the thread, until a claim could take something, or
    /// `timeout` passes.
    pub(super) fn wait_async(
        &self,
        id: Option<TopologyId>,
        timeout: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + '_ {
        self.inner
            .work
            .wait_async(timeout, move || self.look_for_wait(id))
    }

    /// What a waiter sees: `None` if there is work, else how long until a running lease
    /// passes (by the store's clock), if one runs.
    fn look_for_wait(
        &self,
        id: Option<TopologyId>,
    ) -> Result<Option<Option<Duration>>, StoreError> {
        Ok(match self.look(id)? {
            Ok(()) => None,
            Err(earliest) => {
                let now = self.now().as_micros();
                Some(earliest.map(|at| micros_until(now, at.as_micros())))
            }
        })
    }
}
