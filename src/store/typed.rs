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
    ///
    /// ```
    /// use topostate::TopologyStatus;
    /// use topostate::store::{MemoryStore, StoreError, TypedStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?; // a Versioned<Topology<Pending>>
    /// assert_eq!((lab.value().name(), lab.version()), ("lab", 1));
    /// assert_eq!(lab.status(), TopologyStatus::Pending);
    /// let taken = store.create("lab").unwrap_err();
    /// assert!(matches!(taken, StoreError::Duplicate { .. }));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn create(&self, name: &str) -> Result<Versioned<Topology<Pending>>, StoreError> {
        let record = self.create_topology(name)?;
        restore(record.into_versioned()?)
    }

    /// Loads a topology whose status is known only at runtime.
    ///
    /// # Errors
    ///
    /// As [`TopologyStore::get_topology`].
    ///
    /// ```
    /// use topostate::{AnyTopology, TopologyStatus};
    /// use topostate::store::{MemoryStore, TypedStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let lab = store.advance(lab, |t| t.fail("compose up exited 1"))?;
    ///
    /// // A dashboard does not know the status in advance: it matches on what it finds.
    /// let any = store.load(lab.id())?;
    /// assert_eq!(any.status(), TopologyStatus::Failed);
    /// match any.value() {
    ///     AnyTopology::Failed(t) => assert_eq!(t.reason(), Some("compose up exited 1")),
    ///     other => panic!("expected a failed topology, got {}", other.status()),
    /// }
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn load(&self, id: TopologyId) -> Result<Versioned<AnyTopology>, StoreError> {
        self.get_topology(id)?.into_versioned()
    }

    /// Loads a topology expected to be in status `S`.
    ///
    /// # Errors
    ///
    /// [`StoreError::StaleStatus`] if it is in another status; as
    /// [`TopologyStore::get_topology`] otherwise.
    ///
    /// ```
    /// use topostate::TopologyStatus;
    /// use topostate::state::{Active, Pending};
    /// use topostate::store::{MemoryStore, StoreError, TypedStore};
    ///
    /// let store = MemoryStore::new();
    /// let id = store.create("lab")?.id();
    ///
    /// // An editor expects a pending canvas; the handle carries that status in its type.
    /// let canvas = store.load_as::<Pending>(id)?;
    /// assert_eq!(canvas.version(), 1);
    /// // Expecting the wrong status is refused, naming both.
    /// let wrong = store.load_as::<Active>(id).unwrap_err();
    /// assert!(matches!(
    ///     wrong,
    ///     StoreError::StaleStatus {
    ///         expected: TopologyStatus::Active,
    ///         found: TopologyStatus::Pending,
    ///     }
    /// ));
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
    fn load_as<S: State>(&self, id: TopologyId) -> Result<Versioned<Topology<S>>, StoreError> {
        restore(self.load(id)?)
    }

    /// Applies free-form edits through a pending handle, passing its version as the
    /// expected one; on success the handle takes the new version.
    ///
    /// # Errors
    ///
    /// As [`TopologyStore::edit`]; the handle keeps its version.
    ///
    /// ```
    /// use topostate::store::{ChildEdit, MemoryStore, NewDecky, NewLan, TopologyStore, TypedStore};
    ///
    /// let store = MemoryStore::new();
    /// let mut canvas = store.create("lab")?;
    /// let mut theirs = store.load_as(canvas.id())?; // a second editor, same version
    ///
    /// store.edit_pending(&mut canvas, &[
    ///     ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24")),
    ///     ChildEdit::AddDecky(NewDecky::new("web")),
    /// ])?;
    /// assert_eq!(canvas.version(), 2); // the handle follows its own write
    ///
    /// // The other editor's handle is stale: refused, and it keeps its version.
    /// let mail = [ChildEdit::AddDecky(NewDecky::new("mail"))];
    /// let refused = store.edit_pending(&mut theirs, &mail);
    /// assert!(refused.unwrap_err().is_conflict());
    /// assert_eq!(theirs.version(), 1);
    /// // Re-read and retry.
    /// theirs = store.load_as(theirs.id())?;
    /// store.edit_pending(&mut theirs, &mail)?;
    /// assert_eq!(store.topology_detail(theirs.id())?.deckies.len(), 2);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
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
    ///
    /// ```
    /// use topostate::MutationOp;
    /// use topostate::state::Active;
    /// use topostate::store::{MemoryStore, PageRequest, TopologyStore, TypedStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let mut lab = store.advance(lab, |t| t.activate())?;
    /// let mut other_tab = store.load_as::<Active>(lab.id())?;
    ///
    /// // Only `active` and `degraded` handles have `enqueue`: a pending one does not compile.
    /// let queued = store.enqueue(&mut lab, MutationOp::AddLan, r#"{"name":"lan-b"}"#)?;
    /// assert_eq!(lab.version(), 2); // the handle took the bumped version
    /// let newest = store.list_mutations(lab.id(), None, PageRequest::first(1))?;
    /// assert_eq!(newest.items[0].id, queued);
    ///
    /// // The other tab has not seen that edit: refused, and it keeps its version.
    /// let stale = store.enqueue(&mut other_tab, MutationOp::RemoveLan, r#"{"name":"lan-b"}"#);
    /// assert!(stale.unwrap_err().is_conflict());
    /// assert_eq!(other_tab.version(), 1);
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
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
    ///
    /// ```
    /// use topostate::TopologyStatus;
    /// use topostate::state::Pending;
    /// use topostate::store::{ChildEdit, MemoryStore, NewLan, TypedStore};
    ///
    /// let store = MemoryStore::new();
    /// let lab = store.create("lab")?;
    /// let mut canvas = store.load_as::<Pending>(lab.id())?; // an editor's copy
    ///
    /// // The deployer read version 1; the editor saves a LAN before the deploy starts.
    /// store.edit_pending(&mut canvas, &[ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24"))])?;
    /// let refused = store.advance(lab, |t| t.deploy()).unwrap_err();
    /// assert!(refused.is_conflict()); // it would have deployed a topology without the LAN
    ///
    /// // Re-read what is there now, and deploy that.
    /// let lab = store.load_as::<Pending>(canvas.id())?;
    /// let lab = store.advance(lab, |t| t.deploy())?;
    /// let lab = store.advance(lab, |t| t.degrade("decky 'web' did not start"))?;
    /// assert_eq!(lab.status(), TopologyStatus::Degraded);
    /// assert_eq!(lab.value().reason(), Some("decky 'web' did not start"));
    /// // `lab.value()` is a Topology<Degraded>: `t.deploy()` on it would not compile.
    /// # Ok::<(), topostate::store::StoreError>(())
    /// ```
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
