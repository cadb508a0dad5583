//! [`Awaiting`]: a sync [`TopologyStore`] made of an async one, for running the sync
//! suites (conformance, model-based) through the async face.
#![allow(dead_code)]

use std::sync::Arc;

use tokio::runtime::Handle;
use topostate::store::{
    AsyncTopologyStore, ChildEdit, Claim, DeckyId, DeckyPatch, DeckyRuntime, EdgeId, EditReport,
    Edited, EventId, LanId, LanPatch, Lease, Mutation, MutationId, NewDecky, NewEdge, NewLan, Page,
    PageRequest, Precondition, StatusEvent, StoreError, TopologyDetail, TopologyRecord,
    TopologyStore, Touched, Transitioned,
};
use topostate::{MutationOp, MutationState, TopologyId, TopologyStatus};

/// A sync face made of an async one: every call is awaited on the runtime.
pub struct Awaiting {
    store: Arc<dyn AsyncTopologyStore>,
    runtime: Handle,
}

impl Awaiting {
    /// Awaits `store`'s calls on `runtime` (called from outside the runtime's workers).
    pub fn new(store: Arc<dyn AsyncTopologyStore>, runtime: Handle) -> Self {
        Self { store, runtime }
    }
}

impl TopologyStore for Awaiting {
    fn create_topology(&self, name: &str) -> Result<TopologyRecord, StoreError> {
        self.runtime.block_on(self.store.create_topology(name))
    }

    fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError> {
        self.runtime.block_on(self.store.get_topology(id))
    }

    fn claim_next_mutation_with(
        &self,
        id: TopologyId,
        options: &topostate::store::ClaimOptions,
    ) -> Result<Claim, StoreError> {
        self.runtime
            .block_on(self.store.claim_next_mutation_with(id, options))
    }

    fn renew_lease(
        &self,
        claim: &Lease,
        lease: std::time::Duration,
    ) -> Result<Mutation, StoreError> {
        self.runtime.block_on(self.store.renew_lease(claim, lease))
    }

    fn release_mutation(&self, claim: Lease) -> Result<Mutation, StoreError> {
        self.runtime.block_on(self.store.release_mutation(claim))
    }

    fn wait_for_work(
        &self,
        id: Option<TopologyId>,
        timeout: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.runtime.block_on(self.store.wait_for_work(id, timeout))
    }

    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
        page: PageRequest<TopologyId>,
    ) -> Result<Page<TopologyRecord>, StoreError> {
        self.runtime
            .block_on(self.store.list_topologies(status, page))
    }

    fn topology_detail(&self, id: TopologyId) -> Result<TopologyDetail, StoreError> {
        self.runtime.block_on(self.store.topology_detail(id))
    }

    fn transition_status(
        &self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&str>,
        precondition: Precondition,
    ) -> Result<Transitioned, StoreError> {
        self.runtime
            .block_on(self.store.transition_status(id, to, reason, precondition))
    }

    fn list_status_events(
        &self,
        id: TopologyId,
        page: PageRequest<EventId>,
    ) -> Result<Page<StatusEvent>, StoreError> {
        self.runtime
            .block_on(self.store.list_status_events(id, page))
    }

    fn edit(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError> {
        self.runtime
            .block_on(self.store.edit(id, expected_version, edits))
    }

    fn set_lan_network_id(&self, lan: LanId, network_id: Option<&str>) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.store.set_lan_network_id(lan, network_id))
    }

    fn set_decky_runtime(&self, decky: DeckyId, runtime: &DeckyRuntime) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.store.set_decky_runtime(decky, runtime))
    }

    fn enqueue_mutation(
        &self,
        id: TopologyId,
        op: MutationOp,
        payload: &str,
        expected_version: Option<u64>,
    ) -> Result<Edited<MutationId>, StoreError> {
        self.runtime.block_on(
            self.store
                .enqueue_mutation(id, op, payload, expected_version),
        )
    }

    fn claim_next_mutation(&self, id: TopologyId) -> Result<Claim, StoreError> {
        self.runtime.block_on(self.store.claim_next_mutation(id))
    }

    fn apply_live(&self, claim: &Lease, edits: &[ChildEdit]) -> Result<EditReport, StoreError> {
        self.runtime.block_on(self.store.apply_live(claim, edits))
    }

    fn mark_mutation_applied(&self, claim: Lease) -> Result<Mutation, StoreError> {
        self.runtime
            .block_on(self.store.mark_mutation_applied(claim))
    }

    fn mark_mutation_failed(&self, claim: Lease, reason: &str) -> Result<Mutation, StoreError> {
        self.runtime
            .block_on(self.store.mark_mutation_failed(claim, reason))
    }

    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
        page: PageRequest<MutationId>,
    ) -> Result<Page<Mutation>, StoreError> {
        self.runtime
            .block_on(self.store.list_mutations(id, state, page))
    }

    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.store.set_needs_resync(id, needs_resync))
    }

    fn delete_topology(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.store.delete_topology(id, expected_version))
    }

    // The single edits go through the async face's own provided methods, not the sync
    // face's: those are what an async caller runs.

    fn edit_one(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edit: ChildEdit,
    ) -> Result<Edited<Touched>, StoreError> {
        self.runtime
            .block_on(self.store.edit_one(id, expected_version, edit))
    }

    fn add_lan(
        &self,
        id: TopologyId,
        lan: NewLan,
        expected_version: Option<u64>,
    ) -> Result<Edited<LanId>, StoreError> {
        self.runtime
            .block_on(self.store.add_lan(id, lan, expected_version))
    }

    fn update_lan(
        &self,
        id: TopologyId,
        lan: LanId,
        patch: LanPatch,
        expected_version: Option<u64>,
    ) -> Result<Edited<LanId>, StoreError> {
        self.runtime
            .block_on(self.store.update_lan(id, lan, patch, expected_version))
    }

    fn delete_lan(
        &self,
        id: TopologyId,
        lan: LanId,
        expected_version: Option<u64>,
    ) -> Result<Edited<LanId>, StoreError> {
        self.runtime
            .block_on(self.store.delete_lan(id, lan, expected_version))
    }

    fn add_decky(
        &self,
        id: TopologyId,
        decky: NewDecky,
        expected_version: Option<u64>,
    ) -> Result<Edited<DeckyId>, StoreError> {
        self.runtime
            .block_on(self.store.add_decky(id, decky, expected_version))
    }

    fn update_decky(
        &self,
        id: TopologyId,
        decky: DeckyId,
        patch: DeckyPatch,
        expected_version: Option<u64>,
    ) -> Result<Edited<DeckyId>, StoreError> {
        self.runtime
            .block_on(self.store.update_decky(id, decky, patch, expected_version))
    }

    fn delete_decky(
        &self,
        id: TopologyId,
        decky: DeckyId,
        expected_version: Option<u64>,
    ) -> Result<Edited<DeckyId>, StoreError> {
        self.runtime
            .block_on(self.store.delete_decky(id, decky, expected_version))
    }

    fn add_edge(
        &self,
        id: TopologyId,
        edge: NewEdge,
        expected_version: Option<u64>,
    ) -> Result<Edited<EdgeId>, StoreError> {
        self.runtime
            .block_on(self.store.add_edge(id, edge, expected_version))
    }

    fn delete_edge(
        &self,
        id: TopologyId,
        edge: EdgeId,
        expected_version: Option<u64>,
    ) -> Result<Edited<EdgeId>, StoreError> {
        self.runtime
            .block_on(self.store.delete_edge(id, edge, expected_version))
    }
}
