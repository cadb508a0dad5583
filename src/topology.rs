//! The MazeNET topology lifecycle, declared once, with its typed transitions and the
//! seed-compatible string API.

use alloc::string::String;

use crate::error::TopologyStatusError;
use crate::lifecycle::LegalNext;
use state::{
    Active, CanTransitionTo, Degraded, Deploying, Failed, Pending, State, TearingDown, TornDown,
};

crate::lifecycle! {
    /// The status of a topology, as stored in databases and sent over the wire.
    ///
    /// The runtime mirror of the [`state`] markers. Parse stored strings with
    /// [`TopologyStatus::parse`] (or `str::parse`, `TryFrom`, serde), validate moves with
    /// [`TopologyStatus::can_transition_to`].
    ///
    /// ```
    /// use topostate::TopologyStatus;
    ///
    /// let status: TopologyStatus = "tearing_down".parse()?;
    /// assert_eq!(status, TopologyStatus::TearingDown);
    /// assert_eq!(status.to_string(), "tearing_down");
    /// assert!(status.can_transition_to(TopologyStatus::TornDown));
    /// assert!(TopologyStatus::TornDown.is_terminal());
    /// # Ok::<(), topostate::ParseStatusError>(())
    /// ```
    pub enum TopologyStatus {
        machine = "topology",
        noun = "status",
        markers = pub mod state,
        typed =
            /// A topology whose status `S` is known at compile time.
            ///
            /// Only a [`Topology<Pending>`](state::Pending) can be built from outside
            /// ([`Topology::new`]); every other state is reached through a consuming
            /// transition, each bounded by the edge trait [`CanTransitionTo`], or through a
            /// validated restore from stored data ([`AnyTopology::from_stored`] then
            /// [`AnyTopology::restore`]). Illegal transitions do not compile:
            ///
            /// ```compile_fail
            /// use topostate::{Topology, TopologyId};
            /// let t = Topology::new(TopologyId::new(1), "lab");
            /// let t = t.activate(); // error: `Pending` cannot move to `Active`
            /// ```
            ///
            /// ```
            /// use topostate::{Topology, TopologyId, TopologyStatus};
            ///
            /// let t = Topology::new(TopologyId::new(7), "lab")
            ///     .deploy()
            ///     .activate()
            ///     .degrade("decky-3 exited")
            ///     .recover()
            ///     .tear_down()
            ///     .finish_teardown();
            /// assert_eq!(t.status(), TopologyStatus::TornDown);
            /// assert_eq!(t.name(), "lab");
            /// ```
            pub struct Topology(TopologyData)
            as
            /// A topology whose status is known only at runtime, e.g. just read from a
            /// database; one variant per status.
            ///
            /// ```
            /// use topostate::{state, AnyTopology, TopologyData, TopologyId};
            ///
            /// let row = TopologyData::new(TopologyId::new(3), "lab");
            /// let any = AnyTopology::from_stored("active", row)?;
            /// let active = any.restore::<state::Active>()?;
            /// let _tearing_down = active.tear_down();
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            AnyTopology,
        states {
            /// Declared and editable; nothing is running yet.
            Pending = "pending" => [Deploying, TornDown],
            /// Networks and deckies are being brought up.
            Deploying = "deploying" => [Active, Failed, Degraded, TearingDown],
            /// Every decky is running.
            Active = "active" => [Degraded, TearingDown],
            /// Running, but something is wrong (a decky exited, a live edit failed).
            Degraded = "degraded" => [Active, TearingDown],
            /// The deploy failed and was rolled back.
            Failed = "failed" => [TearingDown],
            /// Networks and deckies are being removed.
            TearingDown = "tearing_down" => [TornDown, Degraded],
            /// Removed for good; terminal (a torn-down topology can only be deleted).
            TornDown = "torn_down" => [],
        }
    }
}

crate::names::ids! {
    /// The identifier of a stored topology, minted by the store.
    ///
    /// ```
    /// use topostate::TopologyId;
    ///
    /// let id = TopologyId::new(42);
    /// assert_eq!(id.get(), 42);
    /// assert_eq!(id.to_string(), "42");
    /// ```
    TopologyId as "topology id",
}

/// What a topology is, whatever its status: the data a [`Topology<S>`] carries.
///
/// A store fills it from a row; [`AnyTopology::from_stored`] pairs it with the stored
/// status string.
///
/// ```
/// use topostate::{TopologyData, TopologyId};
///
/// let data = TopologyData::new(TopologyId::new(1), "lab").with_reason("post-deploy check");
/// assert_eq!(data.reason.as_deref(), Some("post-deploy check"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TopologyData {
    /// The store-minted id.
    pub id: TopologyId,
    /// The unique name.
    pub name: String,
    /// Why the last transition happened (a failure or degradation reason), if given.
    pub reason: Option<String>,
}

impl TopologyData {
    /// Data with no reason.
    pub fn new(id: TopologyId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            reason: None,
        }
    }

    /// The same data with a last-transition reason.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

impl Topology<Pending> {
    /// A new topology, `pending` and editable; the only typed state built from scratch.
    ///
    /// ```
    /// use topostate::{Topology, TopologyId, TopologyStatus};
    ///
    /// let t = Topology::new(TopologyId::new(1), "lab");
    /// assert_eq!(t.status(), TopologyStatus::Pending);
    /// ```
    pub fn new(id: TopologyId, name: impl Into<String>) -> Self {
        Self::from_data(TopologyData::new(id, name))
    }
}

impl<S: State> Topology<S> {
    /// The store-minted id.
    #[must_use]
    pub fn id(&self) -> TopologyId {
        self.data.id
    }

    /// The unique name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.data.name
    }

    /// Why the last transition happened, if a reason was given.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        self.data.reason.as_deref()
    }

    /// Moves along any declared edge, for generic code; the reason is cleared.
    ///
    /// The bound is the edge trait, so an undeclared pair does not compile and the
    /// compiler names it.
    ///
    /// ```
    /// use topostate::{state, Topology, TopologyId};
    ///
    /// let t = Topology::new(TopologyId::new(1), "lab");
    /// let t: Topology<state::Deploying> = t.transition();
    /// let t = t.transition::<state::Active>();
    /// assert_eq!(t.status().as_str(), "active");
    /// ```
    pub fn transition<T: State>(self) -> Topology<T>
    where
        S: CanTransitionTo<T>,
    {
        self.move_to(None)
    }

    // Invariant: every transition, named or generic, goes through here, bounded by the
    // edge trait, so none can create an edge the declaration lacks.
    fn move_to<T: State>(mut self, reason: Option<String>) -> Topology<T>
    where
        S: CanTransitionTo<T>,
    {
        self.data.reason = reason;
        Topology::from_data(self.data)
    }

    /// Starts deploying the topology (`pending → deploying`).
    pub fn deploy(self) -> Topology<Deploying>
    where
        S: CanTransitionTo<Deploying>,
    {
        self.move_to(None)
    }

    /// Discards a topology that was never deployed (`pending → torn_down`).
    pub fn discard(self) -> Topology<TornDown>
    where
        S: CanTransitionTo<TornDown>,
    {
        self.move_to(None)
    }

    /// Marks the deploy as complete with every decky running (`deploying → active`).
    pub fn activate(self) -> Topology<Active>
    where
        S: CanTransitionTo<Active>,
    {
        self.move_to(None)
    }

    /// Records that the deploy failed and was rolled back (`deploying → failed`).
    pub fn fail(self, reason: impl Into<String>) -> Topology<Failed>
    where
        S: CanTransitionTo<Failed>,
    {
        self.move_to(Some(reason.into()))
    }

    /// Records that something is wrong while running
    /// (`deploying | active | tearing_down → degraded`).
    pub fn degrade(self, reason: impl Into<String>) -> Topology<Degraded>
    where
        S: CanTransitionTo<Degraded>,
    {
        self.move_to(Some(reason.into()))
    }

    /// Returns a degraded topology to health (`degraded → active`).
    pub fn recover(self) -> Topology<Active>
    where
        S: CanTransitionTo<Active>,
    {
        self.move_to(None)
    }

    /// Starts removing the topology (`deploying | active | degraded | failed → tearing_down`).
    pub fn tear_down(self) -> Topology<TearingDown>
    where
        S: CanTransitionTo<TearingDown>,
    {
        self.move_to(None)
    }

    /// Marks the teardown as complete (`tearing_down → torn_down`).
    pub fn finish_teardown(self) -> Topology<TornDown>
    where
        S: CanTransitionTo<TornDown>,
    {
        self.move_to(None)
    }
}

impl AnyTopology {
    /// The store-minted id, whatever the status.
    #[must_use]
    pub fn id(&self) -> TopologyId {
        self.data().id
    }

    /// The name, whatever the status.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.data().name
    }
}

/// Checks `current → new` on raw stored strings, in the seed's order: unknown current,
/// then unknown new, then illegal.
///
/// # Errors
///
/// [`TopologyStatusError::UnknownCurrent`], [`TopologyStatusError::UnknownNew`] or
/// [`TopologyStatusError::Illegal`], with the seed's messages.
///
/// ```
/// use topostate::assert_transition;
///
/// assert!(assert_transition("pending", "deploying").is_ok());
/// assert_eq!(
///     assert_transition("bogus", "nope").unwrap_err().to_string(),
///     "unknown current status: 'bogus'"
/// );
/// assert_eq!(
///     assert_transition("failed", "deploying").unwrap_err().to_string(),
///     "illegal transition: 'failed' → 'deploying'"
/// );
/// ```
pub fn assert_transition(current: &str, new: &str) -> Result<(), TopologyStatusError> {
    let from = TopologyStatus::parse(current).map_err(|_| TopologyStatusError::UnknownCurrent {
        status: current.into(),
    })?;
    let to = TopologyStatus::parse(new)
        .map_err(|_| TopologyStatusError::UnknownNew { status: new.into() })?;
    if from.can_transition_to(to) {
        Ok(())
    } else {
        Err(TopologyStatusError::Illegal { from, to })
    }
}

/// The legal successors of a raw stored status string, in declaration order.
///
/// # Errors
///
/// [`TopologyStatusError::Unknown`] (`unknown status: 'x'`) when `current` is not a status.
///
/// ```
/// use topostate::{legal_next, TopologyStatus};
///
/// let next: Vec<_> = legal_next("tearing_down")?.collect();
/// assert_eq!(next, [TopologyStatus::Degraded, TopologyStatus::TornDown]);
/// assert_eq!(legal_next("torn_down")?.count(), 0);
/// # Ok::<(), topostate::TopologyStatusError>(())
/// ```
pub fn legal_next(current: &str) -> Result<LegalNext<TopologyStatus>, TopologyStatusError> {
    TopologyStatus::parse(current)
        .map(TopologyStatus::legal_next)
        .map_err(|_| TopologyStatusError::Unknown {
            status: current.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_edges_as_declared() {
        let edges: alloc::vec::Vec<_> = crate::lifecycle::edges::<TopologyStatus>()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(edges.len(), 13);
        assert!(edges.contains(&("tearing_down", "degraded")));
        assert!(!edges.contains(&("failed", "deploying")));
    }

    #[test]
    fn transitions_set_and_clear_reason() {
        let t = Topology::new(TopologyId::new(1), "lab")
            .deploy()
            .fail("compose up: exit 1");
        assert_eq!(t.reason(), Some("compose up: exit 1"));
        let t = t.tear_down();
        assert_eq!(t.reason(), None);
    }
}
