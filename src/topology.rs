//! The MazeNET topology lifecycle, declared once, with its typed transitions and the
//! string API compatible with the original Python module.

use alloc::string::String;
use core::fmt;
use core::marker::PhantomData;

use crate::error::{StatusMismatch, TopologyStatusError};
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
    /// Deliberately not `#[non_exhaustive]`: the seven statuses are the domain's closed set,
    /// so an exhaustive `match` on them is a feature, and a new status is a breaking change.
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
///
/// `#[non_exhaustive]`: a later version may add fields (with defaults), so build one with
/// [`new`](Self::new) and [`with_reason`](Self::with_reason); the fields stay public to
/// read and set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
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

/// A topology whose status `S` is known at compile time.
///
/// Only a [`Topology<Pending>`](state::Pending) can be built from outside
/// ([`Topology::new`]); every other state is reached through a consuming transition, each
/// bounded by the edge trait [`CanTransitionTo`], or through a validated restore from stored
/// data ([`AnyTopology::from_stored`] then [`AnyTopology::restore`]). Illegal transitions do
/// not compile:
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
///
/// It is neither `Clone` nor `Default`, and has no `Deserialize`: a copy or a default would
/// mint a typed value no transition produced.
#[must_use = "a typed value is consumed by each transition; dropping the result loses it"]
pub struct Topology<S: State> {
    data: TopologyData,
    state: PhantomData<S>,
}

impl<S: State> Topology<S> {
    // Invariant: the only constructor, private to this module, which builds non-initial
    // states only through `move_to` (an edge) or `AnyTopology::from_status` (a validated
    // restore).
    const fn from_data(data: TopologyData) -> Self {
        Self {
            data,
            state: PhantomData,
        }
    }

    /// The runtime status of this typed value (`S::STATUS`).
    #[must_use]
    pub fn status(&self) -> TopologyStatus {
        S::STATUS
    }

    /// The data this value carries.
    #[must_use]
    pub fn data(&self) -> &TopologyData {
        &self.data
    }

    /// Gives up the typed state and returns the data.
    #[must_use]
    pub fn into_data(self) -> TopologyData {
        self.data
    }

    /// Forgets the static state, keeping it as a runtime value.
    ///
    /// ```
    /// use topostate::{Topology, TopologyId, TopologyStatus};
    ///
    /// let any = Topology::new(TopologyId::new(1), "lab").deploy().erase();
    /// assert_eq!(any.status(), TopologyStatus::Deploying);
    /// ```
    pub fn erase(self) -> AnyTopology {
        AnyTopology::from_status(S::STATUS, self.data)
    }
}

impl<S: State> fmt::Debug for Topology<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology")
            .field("status", &S::STATUS)
            .field("data", &self.data)
            .finish()
    }
}

impl<S: State> From<Topology<S>> for AnyTopology {
    fn from(typed: Topology<S>) -> Self {
        typed.erase()
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

/// A topology whose status is known only at runtime, e.g. just read from a database; one
/// variant per status.
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
// The variants mirror the declaration by hand; the exhaustive matches in `from_status` and
// `status` fail to compile if a status is added without its variant, and the unit test
// `any_topology_round_trips_every_status` checks each pairing.
#[derive(Debug)]
#[must_use]
pub enum AnyTopology {
    /// In the `pending` status.
    Pending(Topology<Pending>),
    /// In the `deploying` status.
    Deploying(Topology<Deploying>),
    /// In the `active` status.
    Active(Topology<Active>),
    /// In the `degraded` status.
    Degraded(Topology<Degraded>),
    /// In the `failed` status.
    Failed(Topology<Failed>),
    /// In the `tearing_down` status.
    TearingDown(Topology<TearingDown>),
    /// In the `torn_down` status.
    TornDown(Topology<TornDown>),
}

impl AnyTopology {
    /// Pairs data with a runtime status (already validated by its type).
    ///
    /// ```
    /// use topostate::{AnyTopology, TopologyData, TopologyId, TopologyStatus};
    ///
    /// let data = TopologyData::new(TopologyId::new(1), "lab");
    /// let any = AnyTopology::from_status(TopologyStatus::Failed, data);
    /// assert_eq!(any.status(), TopologyStatus::Failed);
    /// ```
    pub fn from_status(status: TopologyStatus, data: TopologyData) -> Self {
        match status {
            TopologyStatus::Pending => Self::Pending(Topology::from_data(data)),
            TopologyStatus::Deploying => Self::Deploying(Topology::from_data(data)),
            TopologyStatus::Active => Self::Active(Topology::from_data(data)),
            TopologyStatus::Degraded => Self::Degraded(Topology::from_data(data)),
            TopologyStatus::Failed => Self::Failed(Topology::from_data(data)),
            TopologyStatus::TearingDown => Self::TearingDown(Topology::from_data(data)),
            TopologyStatus::TornDown => Self::TornDown(Topology::from_data(data)),
        }
    }

    /// Parses a stored status string and pairs it with the data, in one step.
    ///
    /// # Errors
    ///
    /// [`ParseStatusError`](crate::ParseStatusError) when `status` is not one of the
    /// declared strings.
    pub fn from_stored(status: &str, data: TopologyData) -> Result<Self, crate::ParseStatusError> {
        Ok(Self::from_status(TopologyStatus::parse(status)?, data))
    }

    /// The runtime status.
    #[must_use]
    pub fn status(&self) -> TopologyStatus {
        match self {
            Self::Pending(_) => TopologyStatus::Pending,
            Self::Deploying(_) => TopologyStatus::Deploying,
            Self::Active(_) => TopologyStatus::Active,
            Self::Degraded(_) => TopologyStatus::Degraded,
            Self::Failed(_) => TopologyStatus::Failed,
            Self::TearingDown(_) => TopologyStatus::TearingDown,
            Self::TornDown(_) => TopologyStatus::TornDown,
        }
    }

    /// The data, whatever the status.
    #[must_use]
    pub fn data(&self) -> &TopologyData {
        match self {
            Self::Pending(t) => t.data(),
            Self::Deploying(t) => t.data(),
            Self::Active(t) => t.data(),
            Self::Degraded(t) => t.data(),
            Self::Failed(t) => t.data(),
            Self::TearingDown(t) => t.data(),
            Self::TornDown(t) => t.data(),
        }
    }

    /// Takes the data out, whatever the status.
    #[must_use]
    pub fn into_data(self) -> TopologyData {
        match self {
            Self::Pending(t) => t.into_data(),
            Self::Deploying(t) => t.into_data(),
            Self::Active(t) => t.into_data(),
            Self::Degraded(t) => t.into_data(),
            Self::Failed(t) => t.into_data(),
            Self::TearingDown(t) => t.into_data(),
            Self::TornDown(t) => t.into_data(),
        }
    }

    /// Turns the value back into its typed form if its status is `S`.
    ///
    /// # Errors
    ///
    /// [`StatusMismatch`] naming the expected and found statuses, holding the value so
    /// nothing is lost.
    pub fn restore<S: State>(self) -> Result<Topology<S>, StatusMismatch<Self, TopologyStatus>> {
        let found = self.status();
        if found == S::STATUS {
            Ok(Topology::from_data(self.into_data()))
        } else {
            Err(StatusMismatch::new(S::STATUS, found, self))
        }
    }

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

/// Checks `current → new` on raw stored strings, in the original Python module's order:
/// unknown current, then unknown new, then illegal.
///
/// # Errors
///
/// [`TopologyStatusError::UnknownCurrent`], [`TopologyStatusError::UnknownNew`] or
/// [`TopologyStatusError::Illegal`], with the original module's messages.
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
    fn any_topology_round_trips_every_status() {
        for status in TopologyStatus::ALL {
            let data = TopologyData::new(TopologyId::new(9), status.as_str());
            let any = AnyTopology::from_status(status, data.clone());
            assert_eq!(any.status(), status, "variant of {status}");
            assert_eq!(any.into_data(), data);
        }
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
