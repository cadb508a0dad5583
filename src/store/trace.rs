//! Instrumentation through `tracing`, with the `tracing` feature; without it every item here
//! is an empty inline function or a zero-sized value, so call sites carry no `cfg` and cost
//! nothing.
//!
//! What is emitted (target `topostate::store`):
//!
//! - a span `store` per operation of every backend (SQLite and `MemoryStore` through
//!   [`traced_store!`], PostgreSQL in its runner), opened where the backend runs it, with `backend`, `op`,
//!   `topology` and `expected` (when the call has them), and, when it ends, `new_version`
//!   (when the result carries one) and `outcome`: `ok` or the error's kind
//!   (`version_conflict`, `not_found`, `timeout`, ...);
//! - an event per version conflict (`expected`, `current`), at the end of the span;
//! - an event per run again (PostgreSQL: the attempt, why, the `sqlstate` if the server
//!   gave one), and one per commit in doubt and per resolution (`committed`, `aborted`,
//!   `unknown`).

use core::time::Duration;

use crate::store::{
    ChildEdit, Claim, ClaimOptions, DeckyId, DeckyRuntime, EditReport, Edited, EventId, LanId,
    Lease, Mutation, MutationId, Page, PageRequest, Precondition, StatusEvent, StoreError,
    TopologyDetail, TopologyRecord, Touched, Transitioned,
};
use crate::{MutationOp, MutationState, TopologyId, TopologyStatus};

#[cfg(feature = "tracing")]
use std::future::Future;

/// A store operation's span (with the feature), or nothing.
#[must_use]
pub(crate) struct Op {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl Op {
    /// Opens the span of operation `op` on `backend`.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "with tracing off the wrapper must vanish into its caller"
    )]
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn start(
        backend: &'static str,
        op: &'static str,
        topology: Option<u64>,
        expected: Option<u64>,
    ) -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: tracing::info_span!(
                target: "topostate::store",
                "store",
                backend,
                op,
                topology,
                expected,
                new_version = tracing::field::Empty,
                outcome = tracing::field::Empty,
            ),
        }
    }

    /// Runs `f` inside the span, and records its outcome.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "with tracing off the wrapper must vanish into its caller"
    )]
    // Without the feature there is no span to use, yet callers still go through the value.
    #[cfg_attr(not(feature = "tracing"), allow(clippy::unused_self))]
    pub(crate) fn run<T: Outcome>(
        self,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        #[cfg(feature = "tracing")]
        {
            let out = self.span.in_scope(f);
            self.finish(&out);
            out
        }
        #[cfg(not(feature = "tracing"))]
        f()
    }

    /// Runs `future` inside the span (entered on each poll), and records its outcome.
    #[cfg(feature = "tracing")]
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) async fn run_async<T: Outcome>(
        self,
        future: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        use tracing::Instrument as _;
        let out = future.instrument(self.span.clone()).await;
        self.finish(&out);
        out
    }

    /// Runs `future` (no span without the feature).
    #[cfg(not(feature = "tracing"))]
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "with tracing off the wrapper must vanish into its caller"
    )]
    pub(crate) async fn run_async<T: Outcome>(
        self,
        future: impl core::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        future.await
    }

    #[cfg(feature = "tracing")]
    fn finish<T: Outcome>(&self, out: &Result<T, StoreError>) {
        match out {
            Ok(value) => {
                if let Some(version) = value.new_version() {
                    self.span.record("new_version", version);
                }
                self.span.record("outcome", "ok");
            }
            Err(e) => {
                self.span.record("outcome", kind(e));
                if let StoreError::VersionConflict(conflict) = e {
                    self.span.in_scope(|| {
                        tracing::info!(
                            target: "topostate::store",
                            expected = conflict.expected,
                            current = conflict.current,
                            "version conflict"
                        );
                    });
                }
            }
        }
    }
}

/// A PostgreSQL attempt that is run again: which, why, the server's SQLSTATE if any.
#[inline(always)]
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn rerun(op: &'static str, attempt: u32, why: &'static str, sqlstate: Option<&str>) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "topostate::store",
        op,
        attempt,
        why,
        sqlstate,
        "running the operation again"
    );
}

/// A write whose connection was lost after `COMMIT` was sent: asking the server.
#[inline(always)]
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn commit_in_doubt(op: &'static str, xid: i64) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "topostate::store",
        op,
        xid,
        "commit in doubt: asking the server how the transaction ended"
    );
}

/// How a commit in doubt ended: `committed`, `aborted` or `unknown`.
#[inline(always)]
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn commit_resolved(op: &'static str, xid: i64, resolution: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "topostate::store",
        op,
        xid,
        resolution,
        "commit in doubt resolved"
    );
}

/// The error's kind, as the `outcome` field shows it.
#[cfg(feature = "tracing")]
fn kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::NotFound { .. } => "not_found",
        StoreError::NotEditable(_) => "not_editable",
        StoreError::LanInUse { .. } => "lan_in_use",
        StoreError::ForeignEnd { .. } => "foreign_end",
        StoreError::VersionConflict(_) => "version_conflict",
        StoreError::Duplicate { .. } => "duplicate",
        StoreError::StaleStatus { .. } => "stale_status",
        StoreError::IllegalTransition { .. } => "illegal_transition",
        StoreError::WrongMutationState { .. } => "wrong_mutation_state",
        StoreError::LeaseLost { .. } => "lease_lost",
        StoreError::EditsCommitted { .. } => "edits_committed",
        StoreError::VersionOverflow(_) => "version_overflow",
        StoreError::Invalid { .. } => "invalid",
        StoreError::Corrupt { .. } => "corrupt",
        StoreError::Backend(_) => "backend",
        StoreError::OutcomeUnknown { .. } => "outcome_unknown",
        StoreError::Timeout { .. } => "timeout",
        StoreError::Tls { .. } => "tls",
        StoreError::BadReference { .. } => "bad_reference",
        StoreError::NotAStore { .. } => "not_a_store",
        StoreError::SchemaChanged { .. } => "schema_changed",
    }
}

/// The new version a result carries, if any.
pub(crate) trait Outcome {
    /// The topology's version after the operation, when the result says it.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    fn new_version(&self) -> Option<u64> {
        None
    }
}

impl Outcome for () {}
impl<T> Outcome for std::vec::Vec<T> {}
impl<T: super::Listed> Outcome for super::Page<T> {}
impl Outcome for Claim {}
impl Outcome for Mutation {}
impl Outcome for bool {}
#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl Outcome for super::sql::rows::Offer {}

impl Outcome for TopologyRecord {
    fn new_version(&self) -> Option<u64> {
        Some(self.version)
    }
}

impl Outcome for TopologyDetail {
    fn new_version(&self) -> Option<u64> {
        Some(self.topology.version)
    }
}

impl Outcome for Transitioned {
    fn new_version(&self) -> Option<u64> {
        Some(self.topology.version)
    }
}

impl Outcome for EditReport {
    fn new_version(&self) -> Option<u64> {
        Some(self.version)
    }
}

impl<I> Outcome for Edited<I> {
    fn new_version(&self) -> Option<u64> {
        Some(self.version)
    }
}

/// A backend's operations without their spans: a backend implements this, and
/// [`traced_store!`] implements [`TopologyStore`](super::TopologyStore) on top of it, each
/// operation in its span. One list of operations and their fields for every synchronous
/// backend, instead of a span written into each method of each backend. (PostgreSQL opens
/// its spans in its runner, around its retries.)
pub(crate) trait Untraced {
    fn create_topology(&self, name: &str) -> Result<TopologyRecord, StoreError>;
    fn get_topology(&self, id: TopologyId) -> Result<TopologyRecord, StoreError>;
    fn list_topologies(
        &self,
        status: Option<TopologyStatus>,
        page: PageRequest<TopologyId>,
    ) -> Result<Page<TopologyRecord>, StoreError>;
    fn topology_detail(&self, id: TopologyId) -> Result<TopologyDetail, StoreError>;
    fn transition_status(
        &self,
        id: TopologyId,
        to: TopologyStatus,
        reason: Option<&str>,
        precondition: Precondition,
    ) -> Result<Transitioned, StoreError>;
    fn list_status_events(
        &self,
        id: TopologyId,
        page: PageRequest<EventId>,
    ) -> Result<Page<StatusEvent>, StoreError>;
    fn edit(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError>;
    fn set_lan_network_id(&self, lan: LanId, network_id: Option<&str>) -> Result<(), StoreError>;
    fn set_decky_runtime(&self, decky: DeckyId, runtime: &DeckyRuntime) -> Result<(), StoreError>;
    fn enqueue_mutation(
        &self,
        id: TopologyId,
        op: MutationOp,
        payload: &str,
        expected_version: Option<u64>,
    ) -> Result<Edited<MutationId>, StoreError>;
    fn claim_next_mutation_with(
        &self,
        id: TopologyId,
        options: &ClaimOptions,
    ) -> Result<Claim, StoreError>;
    fn renew_lease(&self, claim: &Lease, lease: Duration) -> Result<Mutation, StoreError>;
    fn release_mutation(&self, claim: Lease) -> Result<Mutation, StoreError>;
    fn wait_for_work(&self, id: Option<TopologyId>, timeout: Duration) -> Result<bool, StoreError>;
    fn apply_live(&self, claim: &Lease, edits: &[ChildEdit]) -> Result<EditReport, StoreError>;
    fn mark_mutation_applied(&self, claim: Lease) -> Result<Mutation, StoreError>;
    fn mark_mutation_failed(&self, claim: Lease, reason: &str) -> Result<Mutation, StoreError>;
    fn list_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
        page: PageRequest<MutationId>,
    ) -> Result<Page<Mutation>, StoreError>;
    fn set_needs_resync(&self, id: TopologyId, needs_resync: bool) -> Result<(), StoreError>;
    fn delete_topology(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError>;

    /// One edit: a batch of one unless the backend has a shorter way.
    fn edit_one(
        &self,
        id: TopologyId,
        expected_version: Option<u64>,
        edit: ChildEdit,
    ) -> Result<Edited<Touched>, StoreError> {
        let report = self.edit(id, expected_version, core::slice::from_ref(&edit))?;
        match report.touched.as_slice() {
            [one] => Ok(Edited {
                id: *one,
                version: report.version,
            }),
            _ => Err(super::wrong_row()),
        }
    }
}

/// `impl TopologyStore for $store`: each operation of its [`Untraced`] impl run in the span
/// of `$backend` (the named single edits are the trait's, on top of `edit_one`).
macro_rules! traced_store {
    ($store:ty, $backend:literal) => {
        impl $crate::store::TopologyStore for $store {
            fn create_topology(
                &self,
                name: &str,
            ) -> Result<$crate::store::TopologyRecord, $crate::store::StoreError> {
                $crate::store::trace::Op::start($backend, "create_topology", None, None)
                    .run(|| $crate::store::trace::Untraced::create_topology(self, name))
            }

            fn get_topology(
                &self,
                id: $crate::TopologyId,
            ) -> Result<$crate::store::TopologyRecord, $crate::store::StoreError> {
                $crate::store::trace::Op::start($backend, "get_topology", Some(id.get()), None)
                    .run(|| $crate::store::trace::Untraced::get_topology(self, id))
            }

            fn list_topologies(
                &self,
                status: Option<$crate::TopologyStatus>,
                page: $crate::store::PageRequest<$crate::TopologyId>,
            ) -> Result<
                $crate::store::Page<$crate::store::TopologyRecord>,
                $crate::store::StoreError,
            > {
                $crate::store::trace::Op::start($backend, "list_topologies", None, None)
                    .run(|| $crate::store::trace::Untraced::list_topologies(self, status, page))
            }

            fn topology_detail(
                &self,
                id: $crate::TopologyId,
            ) -> Result<$crate::store::TopologyDetail, $crate::store::StoreError> {
                $crate::store::trace::Op::start($backend, "topology_detail", Some(id.get()), None)
                    .run(|| $crate::store::trace::Untraced::topology_detail(self, id))
            }

            fn transition_status(
                &self,
                id: $crate::TopologyId,
                to: $crate::TopologyStatus,
                reason: Option<&str>,
                precondition: $crate::store::Precondition,
            ) -> Result<$crate::store::Transitioned, $crate::store::StoreError> {
                $crate::store::trace::Op::start(
                    $backend,
                    "transition_status",
                    Some(id.get()),
                    precondition.version,
                )
                .run(|| {
                    $crate::store::trace::Untraced::transition_status(
                        self,
                        id,
                        to,
                        reason,
                        precondition,
                    )
                })
            }

            fn list_status_events(
                &self,
                id: $crate::TopologyId,
                page: $crate::store::PageRequest<$crate::store::EventId>,
            ) -> Result<
                $crate::store::Page<$crate::store::StatusEvent>,
                $crate::store::StoreError,
            > {
                $crate::store::trace::Op::start(
                    $backend,
                    "list_status_events",
                    Some(id.get()),
                    None,
                )
                .run(|| $crate::store::trace::Untraced::list_status_events(self, id, page))
            }

            fn edit(
                &self,
                id: $crate::TopologyId,
                expected_version: Option<u64>,
                edits: &[$crate::store::ChildEdit],
            ) -> Result<$crate::store::EditReport, $crate::store::StoreError> {
                $crate::store::trace::Op::start($backend, "edit", Some(id.get()), expected_version)
                    .run(|| $crate::store::trace::Untraced::edit(self, id, expected_version, edits))
            }

            fn set_lan_network_id(
                &self,
                lan: $crate::store::LanId,
                network_id: Option<&str>,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::trace::Op::start($backend, "set_lan_network_id", None, None).run(
                    || $crate::store::trace::Untraced::set_lan_network_id(self, lan, network_id),
                )
            }

            fn set_decky_runtime(
                &self,
                decky: $crate::store::DeckyId,
                runtime: &$crate::store::DeckyRuntime,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::trace::Op::start($backend, "set_decky_runtime", None, None)
                    .run(|| $crate::store::trace::Untraced::set_decky_runtime(self, decky, runtime))
            }

            fn enqueue_mutation(
                &self,
                id: $crate::TopologyId,
                op: $crate::MutationOp,
                payload: &str,
                expected_version: Option<u64>,
            ) -> Result<
                $crate::store::Edited<$crate::store::MutationId>,
                $crate::store::StoreError,
            > {
                $crate::store::trace::Op::start(
                    $backend,
                    "enqueue_mutation",
                    Some(id.get()),
                    expected_version,
                )
                .run(|| {
                    $crate::store::trace::Untraced::enqueue_mutation(
                        self,
                        id,
                        op,
                        payload,
                        expected_version,
                    )
                })
            }

            fn claim_next_mutation_with(
                &self,
                id: $crate::TopologyId,
                options: &$crate::store::ClaimOptions,
            ) -> Result<$crate::store::Claim, $crate::store::StoreError> {
                $crate::store::trace::Op::start(
                    $backend,
                    "claim_next_mutation",
                    Some(id.get()),
                    None,
                )
                .run(|| $crate::store::trace::Untraced::claim_next_mutation_with(self, id, options))
            }

            fn renew_lease(
                &self,
                claim: &$crate::store::Lease,
                lease: core::time::Duration,
            ) -> Result<$crate::store::Mutation, $crate::store::StoreError> {
                $crate::store::trace::Op::start(
                    $backend,
                    "renew_lease",
                    Some(claim.topology_id().get()),
                    None,
                )
                .run(|| $crate::store::trace::Untraced::renew_lease(self, claim, lease))
            }

            fn release_mutation(
                &self,
                claim: $crate::store::Lease,
            ) -> Result<$crate::store::Mutation, $crate::store::StoreError> {
                $crate::store::trace::Op::start(
                    $backend,
                    "release_mutation",
                    Some(claim.topology_id().get()),
                    None,
                )
                .run(|| $crate::store::trace::Untraced::release_mutation(self, claim))
            }

            fn wait_for_work(
                &self,
                id: Option<$crate::TopologyId>,
                timeout: core::time::Duration,
            ) -> Result<bool, $crate::store::StoreError> {
                $crate::store::trace::Op::start(
                    $backend,
                    "wait_for_work",
                    id.map($crate::TopologyId::get),
                    None,
                )
                .run(|| $crate::store::trace::Untraced::wait_for_work(self, id, timeout))
            }

            fn apply_live(
                &self,
                claim: &$crate::store::Lease,
                edits: &[$crate::store::ChildEdit],
            ) -> Result<$crate::store::EditReport, $crate::store::StoreError> {
                $crate::store::trace::Op::start(
                    $backend,
                    "apply_live",
                    Some(claim.topology_id().get()),
                    None,
                )
                .run(|| $crate::store::trace::Untraced::apply_live(self, claim, edits))
            }

            fn mark_mutation_applied(
                &self,
                claim: $crate::store::Lease,
            ) -> Result<$crate::store::Mutation, $crate::store::StoreError> {
                $crate::store::trace::Op::start(
                    $backend,
                    "mark_mutation_applied",
                    Some(claim.topology_id().get()),
                    None,
                )
                .run(|| $crate::store::trace::Untraced::mark_mutation_applied(self, claim))
            }

            fn mark_mutation_failed(
                &self,
                claim: $crate::store::Lease,
                reason: &str,
            ) -> Result<$crate::store::Mutation, $crate::store::StoreError> {
                $crate::store::trace::Op::start(
                    $backend,
                    "mark_mutation_failed",
                    Some(claim.topology_id().get()),
                    None,
                )
                .run(|| $crate::store::trace::Untraced::mark_mutation_failed(self, claim, reason))
            }

            fn list_mutations(
                &self,
                id: $crate::TopologyId,
                state: Option<$crate::MutationState>,
                page: $crate::store::PageRequest<$crate::store::MutationId>,
            ) -> Result<$crate::store::Page<$crate::store::Mutation>, $crate::store::StoreError>
            {
                $crate::store::trace::Op::start($backend, "list_mutations", Some(id.get()), None)
                    .run(|| $crate::store::trace::Untraced::list_mutations(self, id, state, page))
            }

            fn set_needs_resync(
                &self,
                id: $crate::TopologyId,
                needs_resync: bool,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::trace::Op::start($backend, "set_needs_resync", Some(id.get()), None)
                    .run(|| $crate::store::trace::Untraced::set_needs_resync(self, id, needs_resync))
            }

            fn delete_topology(
                &self,
                id: $crate::TopologyId,
                expected_version: Option<u64>,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::trace::Op::start(
                    $backend,
                    "delete_topology",
                    Some(id.get()),
                    expected_version,
                )
                .run(|| $crate::store::trace::Untraced::delete_topology(self, id, expected_version))
            }

            fn edit_one(
                &self,
                id: $crate::TopologyId,
                expected_version: Option<u64>,
                edit: $crate::store::ChildEdit,
            ) -> Result<$crate::store::Edited<$crate::store::Touched>, $crate::store::StoreError>
            {
                $crate::store::trace::Op::start($backend, "edit", Some(id.get()), expected_version)
                    .run(|| {
                        $crate::store::trace::Untraced::edit_one(self, id, expected_version, edit)
                    })
            }
        }
    };
}
pub(crate) use traced_store;
