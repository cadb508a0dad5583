//! The contract on SQLite: each operation is a shared SQL operation (`crate::store::sql`)
//! run inside the store's write runner (one transaction, grouped with the writes queued
//! behind it) or read runner (one snapshot on a pooled read connection), and finished on
//! the spot by `sql::ready`; the few operations SQLite spells its own way (creation,
//! single-statement reads, runtime writes, waiting for work) are written here too.

use std::string::String;

use rusqlite::params;

use crate::store::sql::rows::{Flag, Key, topology_columns};
use crate::store::sql::{
    self, INITIAL_SQL_VERSION, Lock, Param, Session, Stmt, backend, key, not_found, pick, refuse,
    stmt,
};
use crate::store::{
    DeckyId, DeckyRuntime, DeckyState, Entity, LanId, StoreError, Timestamp, TopologyRecord,
    canonical_name, check_text,
};
use crate::{TopologyId, TopologyStatus};

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
        let reason = reason.map(String::from);
        self.write("transition_status", move |db| {
            crate::store::sql::ready(crate::store::sql::transition_status(
                db,
                id,
                to,
                reason.as_deref(),
                precondition,
            ))
        })
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
        let edits = edits.to_vec();
        self.write("edit", move |db| {
            crate::store::sql::ready(crate::store::sql::edit(db, id, expected_version, &edits))
        })
    }

    fn enqueue_mutation(
        &self,
        id: crate::TopologyId,
        op: crate::MutationOp,
        payload: &str,
        expected_version: Option<u64>,
    ) -> Result<crate::store::Edited<crate::store::MutationId>, crate::store::StoreError> {
        let payload = String::from(payload);
        self.write("enqueue_mutation", move |db| {
            crate::store::sql::ready(crate::store::sql::enqueue_mutation(
                db,
                id,
                op,
                &payload,
                expected_version,
            ))
        })
        .inspect(|_| crate::store::wake::SQL_WORK.notify())
    }

    fn claim_next_mutation_with(
        &self,
        id: crate::TopologyId,
        options: &crate::store::ClaimOptions,
    ) -> Result<crate::store::Claim, crate::store::StoreError> {
        let options = options.clone();
        self.write("claim_next_mutation", move |db| {
            crate::store::sql::ready(crate::store::sql::claim_next_mutation(db, id, &options))
        })
    }

    fn renew_lease(
        &self,
        claim: &crate::store::Lease,
        lease: core::time::Duration,
    ) -> Result<crate::store::Mutation, crate::store::StoreError> {
        let claim = owned(claim);
        self.write("renew_lease", move |db| {
            crate::store::sql::ready(crate::store::sql::renew_lease(db, &claim, lease))
        })
    }

    fn release_mutation(
        &self,
        claim: crate::store::Lease,
    ) -> Result<crate::store::Mutation, crate::store::StoreError> {
        self.write("release_mutation", move |db| {
            crate::store::sql::ready(crate::store::sql::release(db, &claim))
        })
        .inspect(|_| crate::store::wake::SQL_WORK.notify())
    }

    fn apply_live(
        &self,
        claim: &crate::store::Lease,
        edits: &[crate::store::ChildEdit],
    ) -> Result<crate::store::EditReport, crate::store::StoreError> {
        let (claim, edits) = (owned(claim), edits.to_vec());
        self.write("apply_live", move |db| {
            crate::store::sql::ready(crate::store::sql::apply_live(db, &claim, &edits))
        })
    }

    fn mark_mutation_applied(
        &self,
        claim: crate::store::Lease,
    ) -> Result<crate::store::Mutation, crate::store::StoreError> {
        self.write("mark_mutation_applied", move |db| {
            crate::store::sql::ready(crate::store::sql::mark(
                db,
                &claim,
                crate::MutationState::Applied,
                None,
            ))
        })
        .inspect(|_| crate::store::wake::SQL_WORK.notify())
    }

    fn mark_mutation_failed(
        &self,
        claim: crate::store::Lease,
        reason: &str,
    ) -> Result<crate::store::Mutation, crate::store::StoreError> {
        let reason = String::from(reason);
        self.write("mark_mutation_failed", move |db| {
            crate::store::sql::ready(crate::store::sql::mark(
                db,
                &claim,
                crate::MutationState::Failed,
                Some(&reason),
            ))
        })
        .inspect(|_| crate::store::wake::SQL_WORK.notify())
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
        self.write("delete_topology", move |db| {
            crate::store::sql::ready(crate::store::sql::delete_topology(db, id, expected_version))
        })
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
        const TAKEN: Stmt = stmt!("SELECT EXISTS (SELECT 1 FROM topologies WHERE name = $1)");
        const INSERT: Stmt = stmt!(concat!(
            "INSERT INTO topologies (name, status, version, reason, needs_resync, ",
            "created_at, status_changed_at) VALUES ($1, $2, $3, NULL, 0, $4, $4) ",
            "RETURNING ",
            topology_columns!()
        ));
        let name = String::from(canonical_name("topology name", name)?);
        self.write("create_topology", move |db| {
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
        })
    }

    fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError> {
        self.read_one("get_topology", |db| {
            sql::ready(sql::topology(db, id, Lock::None))
        })
    }

    fn set_lan_network_id(&self, lan: LanId, network_id: Option<&str>) -> Result<(), StoreError> {
        let network_id = network_id.map(String::from);
        self.write("set_lan_network_id", move |db| {
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

    fn set_decky_runtime(&self, decky: DeckyId, runtime: &DeckyRuntime) -> Result<(), StoreError> {
        let runtime = runtime.clone();
        self.write("set_decky_runtime", move |db| {
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

    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError> {
        self.write("set_needs_resync", move |db| {
            sql::ready(sql::set_needs_resync(db, id, needs_resync))
        })
    }
}
