//! [`TypedStore`]: the typed layer over any [`TopologyStore`], where the type system polices
//! which writes a topology in a given status accepts.

use std::string::String;

use crate::state::{CanTransitionTo, Pending, State};
use crate::{AnyTopology, MutationOp, Topology, TopologyId, Versioned};

use super::{
    ChildEdit, EditReport, MutationId, Precondition, QueueOpen, StoreError, TopologyStore,
};

/// Typed operations on every [`TopologyStore`] (a blanket implementation, so the base
/// trait stays `dyn`-compatible).
///
/// A typed handle such as `Versioned<Topology<Active>>` is what its holder last saw: a
/// claim checked at the next write, not a lock. If another editor moves the topology
/// meanwhile, the next write through the handle fails ([`StoreError::StaleStatus`] or
/// [`StoreError::VersionConflict`]) instead of acting on a state that is gone; re-load and
/// decide again.
///
/// ```
/// use topostate::store::{ChildEdit, MemoryStore, NewLan, TypedStore};
///
/// let store = MemoryStore::new();
/// let mut lab = store.create("lab")?;
/// store.edit_pending(&mut lab, &[ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24"))])?;
/// assert_eq!(lab.version(), 2); // the handle took the new version
/// let lab = store.advance(lab, |t| t.deploy())?;
/// let lab = store.advance(lab, |t| t.fail("compose up exited 1"))?;
/// assert_eq!(lab.value().reason(), Some("compose up exited 1"));
/// # Ok::<(), topostate::store::StoreError>(())
/// ```
pub trait TypedStore: TopologyStore {
    /// Creates a `pending` topology and returns it typed, at version 1.
    ///
    /// # Errors
    ///
    /// As [`TopologyStore::create_topology`].
    fn create(&self, name: &str) -> Result<Versioned<Topology<Pending>>, StoreError> {
        let record = self.create_topology(name)?;
        restore(record.into_versioned()?)
    }

    /// Loads a topology whose status is known only at runtime.
    ///
    /// # Errors
    ///
    /// As [`TopologyStore::get_topology`].
    fn load(&self, id: TopologyId) -> Result<Versioned<AnyTopology>, StoreError> {
        self.get_topology(id)?.into_versioned()
    }

    /// Loads a topology expected to be in status `S`.
    ///
    /// # Errors
    ///
    /// [`StoreError::StaleStatus`] if it is in another status; as
    /// [`TopologyStore::get_topology`] otherwise.
    fn load_as<S: State>(&self, id: TopologyId) -> Result<Versioned<Topology<S>>, StoreError> {
        restore(self.load(id)?)
    }

    /// Applies free-form edits through a pending handle, passing its version as the
    /// expected one; on success the handle takes the new version.
    ///
    /// # Errors
    ///
    /// As [`TopologyStore::edit`]; the handle keeps its version.
    fn edit_pending(
        &self,
        topology: &mut Versioned<Topology<Pending>>,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError> {
        let id = topology.id();
        topology.write(|_, expected| {
            let report = self.edit(id, Some(expected), edits)?;
            let version = report.version;
            Ok((report, version))
        })
    }

    /// Queues a live edit through an `active` or `degraded` handle, passing its version;
    /// on success the handle takes the bumped version.
    ///
    /// # Errors
    ///
    /// As [`TopologyStore::enqueue_mutation`].
    fn enqueue<S: QueueOpen>(
        &self,
        topology: &mut Versioned<Topology<S>>,
        op: MutationOp,
        payload: &str,
    ) -> Result<MutationId, StoreError> {
        let id = topology.id();
        topology.write(|_, expected| {
            let edited = self.enqueue_mutation(id, op, payload, Some(expected))?;
            Ok((edited.id, edited.version))
        })
    }

    /// Persists a typed transition: `step` is one of the core's typed methods (e.g.
    /// `|t| t.deploy()`), and the store records `S → T` with `S` as the believed status.
    /// Leaving `pending` also passes the handle's version, so what gets deployed is what
    /// the caller saw.
    ///
    /// # Errors
    ///
    /// [`StoreError::StaleStatus`] if another editor moved the topology;
    /// [`StoreError::VersionConflict`] if a pending topology was edited since it was read;
    /// [`StoreError::Invalid`] if `step` returned another topology.
    fn advance<S, T>(
        &self,
        topology: Versioned<Topology<S>>,
        step: impl FnOnce(Topology<S>) -> Topology<T>,
    ) -> Result<Versioned<Topology<T>>, StoreError>
    where
        S: CanTransitionTo<T>,
        T: State,
    {
        let (id, reason, precondition) = transition_of(topology, step)?;
        let done = self.transition_status(id, T::STATUS, reason.as_deref(), precondition)?;
        restore(done.topology.into_versioned()?)
    }
}

impl<X: TopologyStore + ?Sized> TypedStore for X {}

/// Runs a typed transition's `step` and plans its write: the topology, the reason the new
/// state carries, and the precondition (`S` as the believed status; leaving `pending`, the
/// handle's version too, so what gets deployed is what the caller saw). Shared by the sync
/// and async typed layers.
pub(crate) fn transition_of<S, T>(
    topology: Versioned<Topology<S>>,
    step: impl FnOnce(Topology<S>) -> Topology<T>,
) -> Result<(TopologyId, Option<String>, Precondition), StoreError>
where
    S: CanTransitionTo<T>,
    T: State,
{
    let (before, version) = topology.into_parts();
    let id = before.id();
    let after = step(before);
    if after.id() != id {
        return Err(StoreError::Invalid {
            field: "transition",
            problem: std::format!(
                "the step returned topology {} instead of topology {id}",
                after.id()
            ),
        });
    }
    let mut precondition = Precondition::status(S::STATUS);
    if S::STATUS == <Pending as State>::STATUS {
        precondition = precondition.and_version(version);
    }
    Ok((id, after.reason().map(String::from), precondition))
}

/// Restores a loaded topology into `S`, turning a mismatch into a stale-status error.
pub(crate) fn restore<S: State>(
    any: Versioned<AnyTopology>,
) -> Result<Versioned<Topology<S>>, StoreError> {
    any.restore::<S>()
        .map_err(|mismatch| StoreError::StaleStatus {
            expected: mismatch.expected(),
            found: mismatch.found(),
        })
}
