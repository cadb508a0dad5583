//! The rows a store keeps, the ids it mints, and the edits it applies.

use std::string::String;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use std::vec::Vec;

use crate::{
    AnyTopology, MutationOp, MutationState, TopologyData, TopologyId, TopologyStatus, Versioned,
};

use super::StoreError;

crate::names::ids! {
    /// The id of a LAN, minted by the store.
    LanId,
    /// The id of a decky, minted by the store.
    DeckyId,
    /// The id of a decky ↔ LAN membership edge, minted by the store.
    EdgeId,
    /// The id of a queued mutation; ids grow with enqueue order, so they order the queue.
    MutationId,
    /// The id of a status event; ids grow with append order, so they order the log.
    EventId,
}

/// A point in time, as whole microseconds since the Unix epoch (what the stores keep).
///
/// Ordering of history never depends on it: events and mutations are ordered by their
/// store-assigned ids.
///
/// ```
/// use topostate::store::Timestamp;
///
/// let t = Timestamp::from_micros(1_700_000_000_000_000);
/// assert_eq!(t.as_micros(), 1_700_000_000_000_000);
/// assert!(Timestamp::now() > t);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time (clamped to the representable range).
    #[must_use]
    pub fn now() -> Self {
        let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
        };
        Self(micros)
    }

    /// A timestamp from microseconds since the Unix epoch.
    #[must_use]
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    #[must_use]
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The same instant as a [`SystemTime`].
    #[must_use]
    pub fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_micros(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

/// A stored topology row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyRecord {
    /// The store-minted id.
    pub id: TopologyId,
    /// The unique name.
    pub name: String,
    /// The current status.
    pub status: TopologyStatus,
    /// The optimistic-concurrency version, `1..=MAX_VERSION`.
    pub version: u64,
    /// The reason given with the last transition, if any.
    pub reason: Option<String>,
    /// Set by a heartbeat that found an agent out of sync; independent of status and version.
    pub needs_resync: bool,
    /// When the row was created.
    pub created_at: Timestamp,
    /// When the status last changed (the creation time until the first transition).
    pub status_changed_at: Timestamp,
}

impl TopologyRecord {
    /// The row as a runtime-typed topology with the version read, ready to
    /// [`restore`](Versioned::restore) into a typed state.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if the version is outside `1..=MAX_VERSION` (stores refuse
    /// such rows when reading, so this only fires on a hand-built record).
    pub fn into_versioned(self) -> Result<Versioned<AnyTopology>, StoreError> {
        let id = self.id;
        let version = self.version;
        let data = TopologyData {
            id,
            name: self.name,
            reason: self.reason,
        };
        Versioned::from_parts(AnyTopology::from_status(self.status, data), version).map_err(|e| {
            StoreError::Corrupt {
                table: "topologies",
                row: id.get().to_string(),
                problem: e.to_string(),
            }
        })
    }
}

/// A LAN to add.
#[derive(Clone, Debug, PartialEq)]
pub struct NewLan {
    /// Unique within the topology.
    pub name: String,
    /// The subnet, e.g. `10.0.1.0/24` (kept as given).
    pub subnet: String,
    /// Is this the DMZ (the LAN facing the outside)?
    pub is_dmz: bool,
    /// Canvas position.
    pub x: Option<f64>,
    /// Canvas position.
    pub y: Option<f64>,
}

impl NewLan {
    /// A LAN with a name and subnet, not the DMZ, without a canvas position.
    pub fn new(name: impl Into<String>, subnet: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            subnet: subnet.into(),
            is_dmz: false,
            x: None,
            y: None,
        }
    }
}

/// A stored LAN.
#[derive(Clone, Debug, PartialEq)]
pub struct Lan {
    /// The store-minted id.
    pub id: LanId,
    /// The topology it belongs to.
    pub topology_id: TopologyId,
    /// Unique within the topology.
    pub name: String,
    /// The subnet.
    pub subnet: String,
    /// Is this the DMZ?
    pub is_dmz: bool,
    /// The container network id, written by the deployer (a runtime field).
    pub network_id: Option<String>,
    /// Canvas position.
    pub x: Option<f64>,
    /// Canvas position.
    pub y: Option<f64>,
}

/// A change to a LAN's declared fields; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LanPatch {
    /// A new name (unique within the topology).
    pub name: Option<String>,
    /// A new subnet.
    pub subnet: Option<String>,
    /// A new DMZ flag.
    pub is_dmz: Option<bool>,
    /// A new canvas position (`Some(None)` clears it).
    pub x: Option<Option<f64>>,
    /// A new canvas position (`Some(None)` clears it).
    pub y: Option<Option<f64>>,
}

impl LanPatch {
    /// Does this patch change nothing?
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

crate::named_values! {
    /// The runtime state of a decky's container, written by the deployer.
    ///
    /// ```
    /// use topostate::store::DeckyState;
    ///
    /// assert_eq!("teardown_failed".parse::<DeckyState>()?, DeckyState::TeardownFailed);
    /// assert!("stopped".parse::<DeckyState>().is_err());
    /// # Ok::<(), topostate::ParseStatusError>(())
    /// ```
    pub enum DeckyState as "decky" "state" {
        /// Not started yet.
        Pending = "pending",
        /// Running.
        Running = "running",
        /// Exited or failed to start.
        Failed = "failed",
        /// Removed.
        TornDown = "torn_down",
        /// Running with problems.
        Degraded = "degraded",
        /// Being removed.
        TearingDown = "tearing_down",
        /// Removal failed.
        TeardownFailed = "teardown_failed",
    }
}

/// A decky (decoy host) to add.
#[derive(Clone, Debug, PartialEq)]
pub struct NewDecky {
    /// Unique within the topology.
    pub name: String,
    /// The services it exposes, e.g. `["ssh", "http"]`.
    pub services: Vec<String>,
    /// Its configuration as JSON text; stored as given, not interpreted by the store.
    pub config: Option<String>,
    /// Canvas position.
    pub x: Option<f64>,
    /// Canvas position.
    pub y: Option<f64>,
}

impl NewDecky {
    /// A decky with a name and no services, config or canvas position.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            services: Vec::new(),
            config: None,
            x: None,
            y: None,
        }
    }
}

/// A stored decky.
#[derive(Clone, Debug, PartialEq)]
pub struct Decky {
    /// The store-minted id.
    pub id: DeckyId,
    /// The topology it belongs to.
    pub topology_id: TopologyId,
    /// Unique within the topology.
    pub name: String,
    /// The services it exposes.
    pub services: Vec<String>,
    /// Its configuration as JSON text.
    pub config: Option<String>,
    /// The runtime state (written by the deployer).
    pub state: DeckyState,
    /// The address it got (a runtime field).
    pub ip: Option<String>,
    /// The last runtime error (a runtime field).
    pub last_error: Option<String>,
    /// Canvas position.
    pub x: Option<f64>,
    /// Canvas position.
    pub y: Option<f64>,
}

/// A change to a decky's declared fields; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeckyPatch {
    /// A new name (unique within the topology).
    pub name: Option<String>,
    /// A new service list.
    pub services: Option<Vec<String>>,
    /// A new configuration (`Some(None)` clears it).
    pub config: Option<Option<String>>,
    /// A new canvas position (`Some(None)` clears it).
    pub x: Option<Option<f64>>,
    /// A new canvas position (`Some(None)` clears it).
    pub y: Option<Option<f64>>,
}

impl DeckyPatch {
    /// Does this patch change nothing?
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// The runtime fields of a decky the deployer writes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeckyRuntime {
    /// A new runtime state.
    pub state: Option<DeckyState>,
    /// A new address (`Some(None)` clears it).
    pub ip: Option<Option<String>>,
    /// A new last error (`Some(None)` clears it).
    pub last_error: Option<Option<String>>,
}

/// A decky ↔ LAN membership to add; both ends must be in the topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NewEdge {
    /// The decky.
    pub decky: DeckyId,
    /// The LAN.
    pub lan: LanId,
    /// Does the decky bridge this LAN to another?
    pub is_bridge: bool,
    /// Does it forward L3 traffic?
    pub forwards_l3: bool,
}

impl NewEdge {
    /// A plain membership (not a bridge, no L3 forwarding).
    #[must_use]
    pub const fn new(decky: DeckyId, lan: LanId) -> Self {
        Self {
            decky,
            lan,
            is_bridge: false,
            forwards_l3: false,
        }
    }
}

/// A stored decky ↔ LAN membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Edge {
    /// The store-minted id.
    pub id: EdgeId,
    /// The topology it belongs to.
    pub topology_id: TopologyId,
    /// The decky.
    pub decky: DeckyId,
    /// The LAN.
    pub lan: LanId,
    /// Does the decky bridge this LAN to another?
    pub is_bridge: bool,
    /// Does it forward L3 traffic?
    pub forwards_l3: bool,
}

/// One edit of a topology's children.
///
/// Free-form edits ([`TopologyStore::edit`](super::TopologyStore::edit)) apply to a
/// `pending` topology; live edits ([`TopologyStore::apply_live`](super::TopologyStore::apply_live))
/// apply with a claimed mutation to an `active` or `degraded` one.
#[derive(Clone, Debug, PartialEq)]
pub enum ChildEdit {
    /// Adds a LAN.
    AddLan(NewLan),
    /// Changes a LAN's declared fields.
    UpdateLan(LanId, LanPatch),
    /// Deletes a LAN and its edges; refused while it is some decky's only LAN.
    DeleteLan(LanId),
    /// Adds a decky.
    AddDecky(NewDecky),
    /// Changes a decky's declared fields.
    UpdateDecky(DeckyId, DeckyPatch),
    /// Deletes a decky and its edges.
    DeleteDecky(DeckyId),
    /// Adds a decky ↔ LAN membership.
    AddEdge(NewEdge),
    /// Deletes a membership.
    DeleteEdge(EdgeId),
}

impl ChildEdit {
    /// Does this edit change nothing (an update with an empty patch)? A batch of such
    /// edits runs every guard but bumps no version.
    #[must_use]
    pub fn is_noop(&self) -> bool {
        match self {
            Self::UpdateLan(_, patch) => patch.is_empty(),
            Self::UpdateDecky(_, patch) => patch.is_empty(),
            _ => false,
        }
    }
}

/// The row one edit touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Touched {
    /// A LAN (added, updated or deleted).
    Lan(LanId),
    /// A decky.
    Decky(DeckyId),
    /// An edge.
    Edge(EdgeId),
}

/// What a batch of edits did: the row each edit touched, in order, and the topology's
/// version after the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditReport {
    /// One entry per edit, in order.
    pub touched: Vec<Touched>,
    /// The topology's version after the call.
    pub version: u64,
}

/// What a single edit did: the id it touched and the topology's version after the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Edited<I> {
    /// The id touched.
    pub id: I,
    /// The topology's version after the call.
    pub version: u64,
}

/// A topology with all its children, read in one consistent snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct TopologyDetail {
    /// The topology row.
    pub topology: TopologyRecord,
    /// Its LANs, by name.
    pub lans: Vec<Lan>,
    /// Its deckies, by name.
    pub deckies: Vec<Decky>,
    /// Its edges, by id.
    pub edges: Vec<Edge>,
}

/// One entry of a topology's append-only status log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEvent {
    /// The store-assigned sequence number; orders the log.
    pub id: EventId,
    /// The topology.
    pub topology_id: TopologyId,
    /// The status before.
    pub from: TopologyStatus,
    /// The status after.
    pub to: TopologyStatus,
    /// When it was recorded.
    pub at: Timestamp,
    /// Why, if a reason was given.
    pub reason: Option<String>,
}

/// What the caller believes about a topology before a transition; each given part is
/// checked in the same atomic step as the write.
///
/// ```
/// use topostate::{store::Precondition, TopologyStatus};
///
/// let pre = Precondition::status(TopologyStatus::Deploying).and_version(3);
/// assert_eq!(pre.status, Some(TopologyStatus::Deploying));
/// assert_eq!(pre.version, Some(3));
/// assert_eq!(Precondition::none(), Precondition::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Precondition {
    /// The status the caller believes is current; a mismatch is
    /// [`StoreError::StaleStatus`], even if the stored status could also move on.
    pub status: Option<TopologyStatus>,
    /// The version the caller saw; checked, not bumped.
    pub version: Option<u64>,
}

impl Precondition {
    /// No belief: the transition is checked against the table only.
    #[must_use]
    pub const fn none() -> Self {
        Self {
            status: None,
            version: None,
        }
    }

    /// The caller believes the status is `status`.
    #[must_use]
    pub const fn status(status: TopologyStatus) -> Self {
        Self {
            status: Some(status),
            version: None,
        }
    }

    /// Also requires the version to be `version`.
    #[must_use]
    pub const fn and_version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }
}

/// A recorded transition: the row after it and the event appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transitioned {
    /// The topology row after the transition.
    pub topology: TopologyRecord,
    /// The event appended to the log.
    pub event: StatusEvent,
}

/// A stored live edit in the mutation queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutation {
    /// The store-assigned id; grows with enqueue order.
    pub id: MutationId,
    /// The topology.
    pub topology_id: TopologyId,
    /// The operation.
    pub op: MutationOp,
    /// The operation's payload as JSON text; stored as given.
    pub payload: String,
    /// Where it is in the queue's lifecycle.
    pub state: MutationState,
    /// When it was enqueued.
    pub requested_at: Timestamp,
    /// When it was marked applied or failed.
    pub applied_at: Option<Timestamp>,
    /// Why it failed.
    pub reason: Option<String>,
}

/// Proof of a claimed mutation, needed for live edits and to mark the mutation.
///
/// The store checks it in the same atomic step as the write: for a live edit the mutation
/// must still be `applying` on a topology that is `active` or `degraded`; for a mark it
/// must still be `applying`. A claim naming another topology than the mutation's finds no
/// such mutation ([`StoreError::NotFound`]). It is not `Clone`, and the marks consume it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MutationClaim {
    id: MutationId,
    topology_id: TopologyId,
}

impl MutationClaim {
    /// A claim for a mutation, e.g. one carried across processes by id. Forging one buys
    /// nothing: every use is checked against the stored state.
    #[must_use]
    pub const fn from_parts(id: MutationId, topology_id: TopologyId) -> Self {
        Self { id, topology_id }
    }

    /// The claimed mutation.
    #[must_use]
    pub const fn id(&self) -> MutationId {
        self.id
    }

    /// Its topology.
    #[must_use]
    pub const fn topology_id(&self) -> TopologyId {
        self.topology_id
    }
}

/// The answer to a claim: the oldest pending mutation, or why there is none.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This mutation is now `applying`; the claim is the token for live edits and marks.
    Claimed {
        /// The row claimed (exactly the one moved to `applying`).
        mutation: Mutation,
        /// The token.
        claim: MutationClaim,
    },
    /// Another mutation of this topology is `applying`; claims are serial per topology.
    Busy {
        /// The mutation being applied.
        applying: MutationId,
    },
    /// No pending mutation.
    Empty,
}
