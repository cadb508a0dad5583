//! The contract on SQLite: each operation is a shared SQL operation (`crate::store::sql`)
//! run inside the store's write runner (one transaction, grouped with the writes queued
//! behind it) or read runner (one snapshot on a pooled read connection), and finished on
//! the spot by `sql::ready`; the few operations SQLite spells its own way (creation,
//! single-statement reads, runtime writes, waiting for work) are written here too. Each
//! write is built once, in `writes`, for both the sync and the async face.

use crate::TopologyId;
use crate::store::sql::{self, Lock};
use crate::store::{DeckyId, DeckyRuntime, LanId, StoreError, TopologyRecord};

use super::{SqliteStore, WORK_POLL};

/// A copy of `claim` for a write to own: a lease is not `Clone` (a caller gives it up to
/// close the mutation), but the write that checks it may run on the group's combiner.
fn owned(claim: &crate::store::Lease) -> crate::store::Lease {
    crate::store::Lease::from_parts(claim.id(), claim.topology_id(), claim.token())
}

impl crate::store::trace::Untraced for SqliteStore {
    const BACKEND: &'static str = "sqlite";

    fn topology_detail(
        &self,
        id: crate::TopologyId,
    ) -> Result<crate::store::TopologyDetail, crate::store::StoreError> {
        self.read("topology_detail", |db| {
            crate::store::sql::ready(crate::store::sql::topology_detail(db, id))
        })
    }

    fn transition_status(
        &self,
        id: crate::TopologyId,
        to: crate::TopologyStatus,
        reason: Option<&str>,
        precondition: crate::store::Precondition,
    ) -> Result<crate::store::Transitioned, crate::store::StoreError> {
        self.write(writes::transition_status(id, to, reason, precondition))
    }

    fn list_topologies(
        &self,
        status: Option<crate::TopologyStatus>,
        page: crate::store::PageRequest<crate::TopologyId>,
    ) -> Result<crate::store::Page<crate::store::TopologyRecord>, crate::store::StoreError> {
        self.read("list_topologies", |db| {
            crate::store::sql::ready(crate::store::sql::list_topologies(db, status, page))
        })
    }

    fn list_status_events(
        &self,
        id: crate::TopologyId,
        page: crate::store::PageRequest<crate::store::EventId>,
    ) -> Result<crate::store::Page<crate::store::StatusEvent>, crate::store::StoreError> {
        self.read("list_status_events", |db| {
            crate::store::sql::ready(crate::store::sql::list_status_events(db, id, page))
        })
    }

    fn edit(
        &self,
        id: crate::TopologyId,
        expected_version: Option<u64>,
        edits: &[crate::store::ChildEdit],
    ) -> Result<crate::store::EditReport, crate::store::StoreError> {
        self.write(writes::edit(id, expected_version, edits))
    }

    fn enqueue_mutation(
        &self,
        id: crate::TopologyId,
        op: crate::MutationOp,
        payload: &str,
        expected_version: Option<u64>,
    ) -> Result<crate::store::Edited<crate::store::MutationId>, crate::store::StoreError> {
        self.write(writes::enqueue_mutation(id, op, payload, expected_version))
    }

    fn claim_next_mutation_with(
        &self,
        id: crate::TopologyId,
        options: &crate::store::ClaimOptions,
    ) -> Result<crate::store::Claim, crate::store::StoreError> {
        self.write(writes::claim_next_mutation(id, options))
    }

    fn renew_lease(
        &self,
        claim: &crate::store::Lease,
        lease: core::time::Duration,
    ) -> Result<crate::store::Mutation, crate::store::StoreError> {
        self.write(writes::renew_lease(claim, lease))
    }

    fn release_mutation(
        &self,
        claim: crate::store::Lease,
    ) -> Result<crate::store::Mutation, crate::store::StoreError> {
        self.write(writes::release_mutation(claim))
    }

    fn apply_live(
        &self,
        claim: &crate::store::Lease,
        edits: &[crate::store::ChildEdit],
    ) -> Result<crate::store::EditReport, crate::store::StoreError> {
        self.write(writes::apply_live(claim, edits))
    }

    fn mark_mutation_applied(
        &self,
        claim: crate::store::Lease,
    ) -> Result<crate::store::Mutation, crate::store::StoreError> {
        self.write(writes::mark(claim, crate::MutationState::Applied, None))
    }

    fn mark_mutation_failed(
        &self,
        claim: crate::store::Lease,
        reason: &str,
    ) -> Result<crate::store::Mutation, crate::store::StoreError> {
        self.write(writes::mark(
            claim,
            crate::MutationState::Failed,
            Some(reason),
        ))
    }

    fn list_mutations(
        &self,
        id: crate::TopologyId,
        state: Option<crate::MutationState>,
        page: crate::store::PageRequest<crate::store::MutationId>,
    ) -> Result<crate::store::Page<crate::store::Mutation>, crate::store::StoreError> {
        self.read("list_mutations", |db| {
            crate::store::sql::ready(crate::store::sql::list_mutations(db, id, state, page))
        })
    }

    fn delete_topology(
        &self,
        id: crate::TopologyId,
        expected_version: Option<u64>,
    ) -> Result<(), crate::store::StoreError> {
        self.write(writes::delete_topology(id, expected_version))
    }

    /// Handles of this process are woken at once by a queue write through any of them;
    /// writes by other processes on the file are seen by a look every 50 ms.
    fn wait_for_work(
        &self,
        id: Option<TopologyId>,
        timeout: core::time::Duration,
    ) -> Result<bool, StoreError> {
        crate::store::wake::SQL_WORK.wait_for(timeout, Some(WORK_POLL), || {
            let offer = self.read("wait_for_work", |db| sql::ready(sql::offer(db, id)))?;
            Ok((!offer.work).then(|| {
                offer
                    .earliest
                    .map(|until| crate::store::wake::micros_until(offer.now, until))
            }))
        })
    }

    fn create_topology(&self, name: &str) -> Result<TopologyRecord, StoreError> {
        self.write(writes::create_topology(name)?)
    }

    fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError> {
        self.read_one("get_topology", |db| {
            sql::ready(sql::topology(db, id, Lock::None))
        })
    }

    fn set_lan_network_id(&self, lan: LanId, network_id: Option<&str>) -> Result<(), StoreError> {
        self.write(writes::set_lan_network_id(lan, network_id))
    }

    fn set_decky_runtime(&self, decky: DeckyId, runtime: &DeckyRuntime) -> Result<(), StoreError> {
        self.write(writes::set_decky_runtime(decky, runtime))
    }

    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError> {
        self.write(writes::set_needs_resync(id, needs_resync))
    }
}

/// The contract's writes on SQLite, each built once as the job both faces hand to the
/// writer: the sync face (`SqliteStore`) runs it on the calling thread or the group's
/// combiner, the async face (`AsyncSqliteStore`) queues it from its task. Each job owns
/// its arguments, so that it can run on another thread, and may run twice (see the `group`
/// module).
pub(super) mod writes {
    use std::string::String;

    use rusqlite::params;

    use super::owned;
    use crate::store::sql::rows::{Flag, Key, topology_columns};
    use crate::store::sql::{
        self, INITIAL_SQL_VERSION, Param, Session, Stmt, backend, key, not_found, pick, refuse,
        stmt,
    };
    use crate::store::sqlite::{Db, R, WriteOp};
    use crate::store::{
        ChildEdit, Claim, ClaimOptions, DeckyId, DeckyRuntime, DeckyState, EditReport, Edited,
        Entity, LanId, Lease, Mutation, MutationId, Precondition, StoreError, Timestamp,
        TopologyRecord, Transitioned, canonical_name, check_text,
    };
    use crate::{MutationOp, MutationState, TopologyId, TopologyStatus};

    /// The type of a write whose job answers `T`.
    macro_rules! op {
        ($t:ty) => {
            WriteOp<impl FnMut(&mut Db<'_>) -> R<$t> + Send + 'static>
        };
    }

    pub(in crate::store::sqlite) fn transition_status(
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&str>,
        precondition: Precondition,
    ) -> op!(Transitioned) {
        let reason = reason.map(String::from);
        WriteOp::new("transition_status", move |db| {
            sql::ready(sql::transition_status(
                db,
                id,
                to,
                reason.as_deref(),
                precondition,
            ))
        })
        .on(id, precondition.version)
    }

    pub(in crate::store::sqlite) fn edit(
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &[ChildEdit],
    ) -> op!(EditReport) {
        let edits = edits.to_vec();
        WriteOp::new("edit", move |db| {
            sql::ready(sql::edit(db, id, expected_version, &edits))
        })
        .on(id, expected_version)
    }

    pub(in crate::store::sqlite) fn enqueue_mutation(
        id: TopologyId,
        op: MutationOp,
        payload: &str,
        expected_version: Option<u64>,
    ) -> op!(Edited<MutationId>) {
        let payload = String::from(payload);
        WriteOp::new("enqueue_mutation", move |db| {
            sql::ready(sql::enqueue_mutation(
                db,
                id,
                op,
                &payload,
                expected_version,
            ))
        })
        .on(id, expected_version)
        .waking()
    }

    pub(in crate::store::sqlite) fn claim_next_mutation(
        id: TopologyId,
        options: &ClaimOptions,
    ) -> op!(Claim) {
        let options = options.clone();
        WriteOp::new("claim_next_mutation", move |db| {
            sql::ready(sql::claim_next_mutation(db, id, &options))
        })
        .on(id, None)
    }

    pub(in crate::store::sqlite) fn renew_lease(
        claim: &Lease,
        lease: core::time::Duration,
    ) -> op!(Mutation) {
        let (id, claim) = (claim.topology_id(), owned(claim));
        WriteOp::new("renew_lease", move |db| {
            sql::ready(sql::renew_lease(db, &claim, lease))
        })
        .on(id, None)
    }

    pub(in crate::store::sqlite) fn release_mutation(claim: Lease) -> op!(Mutation) {
        let id = claim.topology_id();
        WriteOp::new("release_mutation", move |db| {
            sql::ready(sql::release(db, &claim))
        })
        .on(id, None)
        .waking()
    }

    pub(in crate::store::sqlite) fn apply_live(
        claim: &Lease,
        edits: &[ChildEdit],
    ) -> op!(EditReport) {
        let (id, claim, edits) = (claim.topology_id(), owned(claim), edits.to_vec());
        WriteOp::new("apply_live", move |db| {
            sql::ready(sql::apply_live(db, &claim, &edits))
        })
        .on(id, None)
    }

    /// `mark_mutation_applied` (`Applied`, no reason) or `mark_mutation_failed`.
    pub(in crate::store::sqlite) fn mark(
        claim: Lease,
        to: MutationState,
        reason: Option<&str>,
    ) -> op!(Mutation) {
        let name = match to {
            MutationState::Failed => "mark_mutation_failed",
            _ => "mark_mutation_applied",
        };
        let (id, reason) = (claim.topology_id(), reason.map(String::from));
        WriteOp::new(name, move |db| {
            sql::ready(sql::mark(db, &claim, to, reason.as_deref()))
        })
        .on(id, None)
        .waking()
    }

    pub(in crate::store::sqlite) fn delete_topology(
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> op!(()) {
        WriteOp::new("delete_topology", move |db| {
            sql::ready(sql::delete_topology(db, id, expected_version))
        })
        .on(id, expected_version)
    }

    pub(in crate::store::sqlite) fn set_needs_resync(
        id: TopologyId,
        needs_resync: bool,
    ) -> op!(()) {
        WriteOp::new("set_needs_resync", move |db| {
            sql::ready(sql::set_needs_resync(db, id, needs_resync))
        })
        .on(id, None)
    }

    /// # Errors
    ///
    /// [`StoreError::InvalidInput`] for a name no topology may have, before anything runs.
    pub(in crate::store::sqlite) fn create_topology(
        name: &str,
    ) -> Result<op!(TopologyRecord), StoreError> {
        const TAKEN: Stmt = stmt!("SELECT EXISTS (SELECT 1 FROM topologies WHERE name = $1)");
        const INSERT: Stmt = stmt!(concat!(
            "INSERT INTO topologies (name, status, version, reason, needs_resync, ",
            "created_at, status_changed_at) VALUES ($1, $2, $3, NULL, 0, $4, $4) ",
            "RETURNING ",
            topology_columns!()
        ));
        let name = String::from(canonical_name("topology name", name)?);
        Ok(WriteOp::new("create_topology", move |db| {
            let name: &str = &name;
            let Flag(taken) = sql::ready(db.query_one(&TAKEN, &[Param::Text(name)]))?;
            if taken {
                return Err(StoreError::Duplicate {
                    entity: Entity::Topology,
                    name: String::from(name),
                }
                .into());
            }
            let now = Timestamp::now();
            let record = sql::ready(db.query_opt(
                &INSERT,
                &[
                    Param::Text(name),
                    Param::Text(TopologyStatus::Pending.as_str()),
                    Param::Int(INITIAL_SQL_VERSION),
                    Param::Int(now.as_micros()),
                ],
            ))?;
            record.ok_or_else(|| backend("the insert returned no row").into())
        }))
    }

    pub(in crate::store::sqlite) fn set_lan_network_id(
        lan: LanId,
        network_id: Option<&str>,
    ) -> op!(()) {
        let network_id = network_id.map(String::from);
        WriteOp::new("set_lan_network_id", move |db| {
            let owner = match key(lan.get()) {
                Some(k) => sql::ready(db.query_opt::<Key>(
                    &stmt!("SELECT id FROM lans WHERE id = $1"),
                    &[Param::Int(k)],
                ))?,
                None => None,
            };
            let Key(k) = owner.ok_or_else(|| not_found(Entity::Lan, lan.get()))?;
            if let Some(n) = &network_id {
                check_text("network id", n)?;
            }
            db.0.prepare_cached("UPDATE lans SET network_id = ?2 WHERE id = ?1")?
                .execute(params![k, network_id])?;
            Ok(())
        })
    }

    pub(in crate::store::sqlite) fn set_decky_runtime(
        decky: DeckyId,
        runtime: &DeckyRuntime,
    ) -> op!(()) {
        let runtime = runtime.clone();
        WriteOp::new("set_decky_runtime", move |db| {
            let owner = match key(decky.get()) {
                Some(k) => sql::ready(db.query_opt::<Key>(
                    &stmt!("SELECT id FROM deckies WHERE id = $1"),
                    &[Param::Int(k)],
                ))?,
                None => None,
            };
            let Key(k) = owner.ok_or_else(|| not_found(Entity::Decky, decky.get()))?;
            refuse(pick([
                runtime
                    .ip
                    .as_ref()
                    .and_then(Option::as_deref)
                    .and_then(|ip| check_text("decky ip", ip).err()),
                runtime
                    .last_error
                    .as_ref()
                    .and_then(Option::as_deref)
                    .and_then(|e| check_text("decky last error", e).err()),
            ]))?;
            db.0.prepare_cached(
                "UPDATE deckies SET \
                     state = CASE WHEN ?2 THEN ?3 ELSE state END, \
                     ip = CASE WHEN ?4 THEN ?5 ELSE ip END, \
                     last_error = CASE WHEN ?6 THEN ?7 ELSE last_error END \
                 WHERE id = ?1",
            )?
            .execute(params![
                k,
                runtime.state.is_some(),
                runtime.state.map(DeckyState::as_str),
                runtime.ip.is_some(),
                runtime.ip.clone().flatten(),
                runtime.last_error.is_some(),
                runtime.last_error.clone().flatten(),
            ])?;
            Ok(())
        })
    }
}
