//! Instrumentation through `tracing`, with the `tracing` feature; without it every item here
//! is an empty inline function or a zero-sized value, so call sites carry no `cfg` and cost
//! nothing.
//!
//! What is emitted (target `topostate::store`):
//!
//! - a span `store` per operation, opened where a backend runs one, with `backend`, `op`,
//!   `topology` and `expected` (when the call has them), and, when it ends, `new_version`
//!   (when the result carries one) and `outcome`: `ok` or the error's kind
//!   (`version_conflict`, `not_found`, `timeout`, ...);
//! - an event per version conflict (`expected`, `current`), at the end of the span;
//! - an event per run again (PostgreSQL: the attempt, why, the `sqlstate` if the server
//!   gave one), and one per commit in doubt and per resolution (`committed`, `aborted`,
//!   `unknown`).

use crate::store::{
    Claim, EditReport, Edited, Mutation, StoreError, TopologyDetail, TopologyRecord, Transitioned,
};

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
        StoreError::MutationState { .. } => "mutation_state",
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
