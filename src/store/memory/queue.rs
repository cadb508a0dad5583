//! The mutation queue's plumbing: finding a claimed mutation and closing it.

use crate::MutationState;
use crate::store::{Entity, Mutation, MutationClaim, StoreError, Timestamp, check_text};

use super::aggregate::Aggregate;
use super::{MemoryStore, not_found};

/// Claimed mutations.
impl MemoryStore {
    /// Runs `f` on a claimed mutation and its aggregate, checking that the mutation is
    /// still `applying`.
    pub(super) fn with_claim<R>(
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
    pub(super) fn mark(
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
