//! PLACEHOLDER: replaced by the MemoryStore implementation.
#![allow(unused_variables, clippy::todo)]

use std::vec::Vec;

use super::*;
use crate::{MutationOp, MutationState, TopologyId, TopologyStatus};

/// The embedded in-memory store.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self {}
    }
}

impl TopologyStore for MemoryStore {
    fn create_topology(&self, name: &str) -> Result<TopologyRecord, StoreError> { todo!() }
    fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError> { todo!() }
    fn list_topologies(&self, status: Option<TopologyStatus>) -> Result<Vec<TopologyRecord>, StoreError> { todo!() }
    fn topology_detail(&self, id: TopologyId) -> Result<TopologyDetail, StoreError> { todo!() }
    fn transition_status(&self, id: TopologyId, to: TopologyStatus, reason: Option<&str>, precondition: Precondition) -> Result<Transitioned, StoreError> { todo!() }
    fn list_status_events(&self, id: TopologyId) -> Result<Vec<StatusEvent>, StoreError> { todo!() }
    fn edit(&self, id: TopologyId, expected_version: Option<u64>, edits: &[ChildEdit]) -> Result<EditReport, StoreError> { todo!() }
    fn set_lan_network_id(&self, lan: LanId, network_id: Option<&str>) -> Result<(), StoreError> { todo!() }
    fn set_decky_runtime(&self, decky: DeckyId, runtime: &DeckyRuntime) -> Result<(), StoreError> { todo!() }
    fn enqueue_mutation(&self, id: TopologyId, op: MutationOp, payload: &str, expected_version: Option<u64>) -> Result<Edited<MutationId>, StoreError> { todo!() }
    fn claim_next_mutation(&self, id: TopologyId) -> Result<Claim, StoreError> { todo!() }
    fn apply_live(&self, claim: &MutationClaim, edits: &[ChildEdit]) -> Result<EditReport, StoreError> { todo!() }
    fn mark_mutation_applied(&self, claim: MutationClaim) -> Result<Mutation, StoreError> { todo!() }
    fn mark_mutation_failed(&self, claim: MutationClaim, reason: &str) -> Result<Mutation, StoreError> { todo!() }
    fn list_mutations(&self, id: TopologyId, state: Option<MutationState>) -> Result<Vec<Mutation>, StoreError> { todo!() }
    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError> { todo!() }
    fn delete_topology(&self, id: TopologyId, expected_version: Option<u64>) -> Result<(), StoreError> { todo!() }
}
