//! The rows a store keeps, the ids it mints, and the edits it applies.

use std::fmt;
use std::string::String;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use std::vec::Vec;

use crate::{
    AnyTopology, MutationOp, MutationState, TopologyData, TopologyId, TopologyStatus, Versioned,
};

use super::StoreError;

#[cfg(feature = "serde")]
mod wire;

crate::names::ids! {
    /// The id of a LAN, minted by the store.
    LanId as "lan id",
    /// The id of a decky, minted by the store.
    DeckyId as "decky id",
    /// The id of a decky ↔ LAN membership edge, minted by the store.
    EdgeId as "edge id",
    /// The id of a queued mutation; ids grow with enqueue order, so they order the queue.
    MutationId as "mutation id",
    /// The id of a status event; ids grow with append order, so they order the log.
    EventId as "event id",
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
///
/// On the wire (feature `serde`) it is an RFC 3339 string in UTC with exactly six
/// fractional digits, the precision stored: `"2023-11-14T22:13:20.000000Z"`, so the text
/// sorts as the time does. Any RFC 3339 form is read (another offset is converted to UTC,
/// 0 to 9 fractional digits), but not one finer than a microsecond (`.0000001`), which
/// would not come back as written. Serializing a time outside the years 0000 to 9999,
/// which RFC 3339 cannot write, is an error; no store mints one.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::Timestamp;
///
/// let t = Timestamp::from_micros(1_700_000_000_000_001);
/// assert_eq!(serde_json::to_string(&t)?, r#""2023-11-14T22:13:20.000001Z""#);
/// let later: Timestamp = serde_json::from_str(r#""2023-11-14T23:13:20.000001+01:00""#)?;
/// assert_eq!(later, t);
/// # }
/// # Ok::<(), serde_json::Error>(())
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
///
/// On the wire (feature `serde`) every field is present, `reason` is `null` when there is
/// none, and a record is read with the store's own checks (a name [`check_name`] accepts, a
/// version in `1..=MAX_VERSION`); unknown fields are ignored, as in every row and report,
/// so a reader keeps working when a later version adds one. Only inputs refuse them.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::{Timestamp, TopologyRecord};
/// use topostate::{TopologyId, TopologyStatus};
///
/// let at = Timestamp::from_micros(1_700_000_000_000_000);
/// let record = TopologyRecord::new(TopologyId::new(1), "lab", at);
/// assert_eq!(record.status, TopologyStatus::Pending);
/// assert_eq!(
///     serde_json::to_string(&record)?,
///     r#"{"id":1,"name":"lab","status":"pending","version":1,"reason":null,"needs_resync":false,"created_at":"2023-11-14T22:13:20.000000Z","status_changed_at":"2023-11-14T22:13:20.000000Z"}"#
/// );
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
///
/// `#[non_exhaustive]`: a later version may add fields, so read the fields, and build one
/// (in a store or a test double of your own) with [`new`](Self::new), then set fields.
///
/// [`check_name`]: super::check_name
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TopologyRecord {
    /// The store-minted id.
    pub id: TopologyId,
    /// The unique name.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::TopologyName, _>")
    )]
    pub name: String,
    /// The current status.
    pub status: TopologyStatus,
    /// The optimistic-concurrency version, `1..=MAX_VERSION`.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::names::wire::version")
    )]
    pub version: u64,
    /// The reason given with the last transition, if any.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::opt::<wire::Reason, _>")
    )]
    pub reason: Option<String>,
    /// Set by a heartbeat that found an agent out of sync; independent of status and version.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::NeedsResync, _>")
    )]
    pub needs_resync: bool,
    /// When the row was created.
    pub created_at: Timestamp,
    /// When the status last changed (the creation time until the first transition).
    pub status_changed_at: Timestamp,
}

impl TopologyRecord {
    /// A row as [`create_topology`](super::TopologyStore::create_topology) returns it:
    /// `pending`, version 1, no reason, not out of sync, its status changed when it was
    /// created. The stores build rows; this is for a store or a test double of your own,
    /// which sets the other fields after.
    ///
    /// ```
    /// use topostate::store::{Timestamp, TopologyRecord};
    /// use topostate::{TopologyId, TopologyStatus};
    ///
    /// let at = Timestamp::from_micros(1_700_000_000_000_000);
    /// let mut record = TopologyRecord::new(TopologyId::new(1), "lab", at);
    /// assert_eq!((record.status, record.version), (TopologyStatus::Pending, 1));
    /// assert_eq!((record.reason, record.needs_resync), (None, false));
    /// assert_eq!((record.created_at, record.status_changed_at), (at, at));
    /// record.status = TopologyStatus::Deploying;
    /// record.version = 2;
    /// ```
    #[must_use]
    pub fn new(id: TopologyId, name: impl Into<String>, created_at: Timestamp) -> Self {
        Self {
            id,
            name: name.into(),
            status: TopologyStatus::Pending,
            version: 1,
            reason: None,
            needs_resync: false,
            created_at,
            status_changed_at: created_at,
        }
    }

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
///
/// On the wire (feature `serde`): `name` and `subnet` are required; `is_dmz` defaults to
/// `false` and `x`, `y` to `null` (no position). Unknown fields are refused, and each field
/// is checked as the store checks it, so a bad one is refused naming it.
///
/// Coordinates are JSON numbers. `serde_json` reads a float back bit for bit only with its
/// `float_roundtrip` feature; without it a coordinate may come back one ulp off.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::NewLan;
///
/// let lan: NewLan = serde_json::from_str(r#"{"name":"dmz","subnet":"10.0.0.0/24"}"#)?;
/// assert_eq!(lan, NewLan::new("dmz", "10.0.0.0/24"));
/// assert_eq!(
///     serde_json::to_string(&lan)?,
///     r#"{"name":"dmz","subnet":"10.0.0.0/24","is_dmz":false,"x":null,"y":null}"#
/// );
/// let err = serde_json::from_str::<NewLan>(r#"{"name":" ","subnet":"10.0.0.0/24"}"#);
/// assert!(err.unwrap_err().to_string().starts_with("invalid lan name: must not be empty"));
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields (with defaults), so build one with
/// [`new`](Self::new) and the `with_*` methods; the fields stay public to read and set.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct NewLan {
    /// Unique within the topology.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::LanName, _>")
    )]
    pub name: String,
    /// The subnet, e.g. `10.0.1.0/24` (kept as given).
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::Subnet, _>")
    )]
    pub subnet: String,
    /// Is this the DMZ (the LAN facing the outside)?
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "wire::req::<wire::IsDmz, _>")
    )]
    pub is_dmz: bool,
    /// Canvas position.
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "wire::opt::<wire::LanX, _>")
    )]
    pub x: Option<f64>,
    /// Canvas position.
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "wire::opt::<wire::LanY, _>")
    )]
    pub y: Option<f64>,
}

impl NewLan {
    /// A LAN with a name and subnet, not the DMZ, without a canvas position.
    ///
    /// ```
    /// use topostate::store::NewLan;
    ///
    /// let lan = NewLan::new("dmz", "10.0.0.0/24");
    /// assert_eq!((lan.name.as_str(), lan.subnet.as_str()), ("dmz", "10.0.0.0/24"));
    /// assert!(!lan.is_dmz);
    /// assert_eq!((lan.x, lan.y), (None, None));
    /// ```
    #[must_use]
    pub fn new(name: impl Into<String>, subnet: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            subnet: subnet.into(),
            is_dmz: false,
            x: None,
            y: None,
        }
    }

    /// The same LAN, marked as the DMZ or not.
    ///
    /// ```
    /// use topostate::store::NewLan;
    ///
    /// assert!(NewLan::new("dmz", "10.0.0.0/24").with_dmz(true).is_dmz);
    /// ```
    #[must_use]
    pub fn with_dmz(mut self, is_dmz: bool) -> Self {
        self.is_dmz = is_dmz;
        self
    }

    /// The same LAN at a canvas position.
    ///
    /// ```
    /// use topostate::store::NewLan;
    ///
    /// let lan = NewLan::new("dmz", "10.0.0.0/24").with_position(12.5, -3.0);
    /// assert_eq!((lan.x, lan.y), (Some(12.5), Some(-3.0)));
    /// ```
    #[must_use]
    pub fn with_position(mut self, x: f64, y: f64) -> Self {
        self.x = Some(x);
        self.y = Some(y);
        self
    }
}

/// A stored LAN.
///
/// On the wire (feature `serde`) every field is present, `null` where there is no value,
/// in declaration order:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::{Lan, LanId};
/// use topostate::TopologyId;
///
/// let json = r#"{"id":2,"topology_id":1,"name":"dmz","subnet":"10.0.0.0/24","is_dmz":true,"network_id":null,"x":12.5,"y":null}"#;
/// let lan: Lan = serde_json::from_str(json)?;
/// assert_eq!((lan.id, lan.topology_id, lan.x), (LanId::new(2), TopologyId::new(1), Some(12.5)));
/// assert_eq!(serde_json::to_string(&lan)?, json);
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields, so read the fields, and build one
/// (in a store or a test double of your own) with [`new`](Self::new), then set fields.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Lan {
    /// The store-minted id.
    pub id: LanId,
    /// The topology it belongs to.
    pub topology_id: TopologyId,
    /// Unique within the topology.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::LanName, _>")
    )]
    pub name: String,
    /// The subnet.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::Subnet, _>")
    )]
    pub subnet: String,
    /// Is this the DMZ?
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::IsDmz, _>")
    )]
    pub is_dmz: bool,
    /// The container network id, written by the deployer (a runtime field).
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::opt::<wire::NetworkId, _>")
    )]
    pub network_id: Option<String>,
    /// Canvas position.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::opt::<wire::LanX, _>")
    )]
    pub x: Option<f64>,
    /// Canvas position.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::opt::<wire::LanY, _>")
    )]
    pub y: Option<f64>,
}

impl Lan {
    /// A stored LAN as the store adds it from `lan`: no container network yet. For a store
    /// or a test double of your own.
    ///
    /// ```
    /// use topostate::store::{Lan, LanId, NewLan};
    /// use topostate::TopologyId;
    ///
    /// let lan = Lan::new(LanId::new(2), TopologyId::new(1), NewLan::new("dmz", "10.0.0.0/24").with_dmz(true));
    /// assert_eq!((lan.id, lan.topology_id), (LanId::new(2), TopologyId::new(1)));
    /// assert_eq!((lan.name.as_str(), lan.is_dmz, lan.network_id), ("dmz", true, None));
    /// ```
    #[must_use]
    pub fn new(id: LanId, topology_id: TopologyId, lan: NewLan) -> Self {
        let NewLan {
            name,
            subnet,
            is_dmz,
            x,
            y,
        } = lan;
        Self {
            id,
            topology_id,
            name,
            subnet,
            is_dmz,
            network_id: None,
            x,
            y,
        }
    }
}

/// A change to a LAN's declared fields; `None` leaves a field as it is.
///
/// On the wire (feature `serde`) every field is optional and **an absent field is left as
/// it is**. For `x` and `y` (`Option<Option<f64>>`), `null` clears the position
/// (`Some(None)`) and a number sets it. `name`, `subnet` and `is_dmz` cannot be cleared, so
/// `null` there is refused rather than read as "unchanged". Unknown fields are refused.
/// Serializing writes only the fields the patch sets, so `{}` is the empty patch.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::LanPatch;
///
/// let patch: LanPatch = serde_json::from_str(r#"{"name":"core","x":null}"#)?;
/// assert_eq!(patch.name.as_deref(), Some("core"));
/// assert_eq!(patch.x, Some(None)); // null: clear the position
/// assert_eq!(patch.y, None); // absent: unchanged
/// assert_eq!(serde_json::to_string(&patch)?, r#"{"name":"core","x":null}"#);
/// assert!(serde_json::from_str::<LanPatch>(r#"{"name":null}"#).is_err());
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields (with defaults), so build one with
/// [`new`](Self::new) (or `Default`) and the `with_*` methods; the fields stay public to read and set.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct LanPatch {
    /// A new name (unique within the topology).
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::set::<wire::LanName, _>"
        )
    )]
    pub name: Option<String>,
    /// A new subnet.
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::set::<wire::Subnet, _>"
        )
    )]
    pub subnet: Option<String>,
    /// A new DMZ flag.
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::set::<wire::IsDmz, _>"
        )
    )]
    pub is_dmz: Option<bool>,
    /// A new canvas position (`Some(None)` clears it).
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::patch::<wire::LanX, _>"
        )
    )]
    pub x: Option<Option<f64>>,
    /// A new canvas position (`Some(None)` clears it).
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::patch::<wire::LanY, _>"
        )
    )]
    pub y: Option<Option<f64>>,
}

impl LanPatch {
    /// The empty patch, which changes nothing (the same as [`Default`]).
    ///
    /// ```
    /// use topostate::store::LanPatch;
    ///
    /// assert!(LanPatch::new().is_empty());
    /// assert_eq!(LanPatch::new(), LanPatch::default());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Does this patch change nothing?
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Also renames the LAN.
    ///
    /// ```
    /// use topostate::store::LanPatch;
    ///
    /// assert_eq!(LanPatch::new().with_name("core").name.as_deref(), Some("core"));
    /// ```
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Also changes the subnet.
    ///
    /// ```
    /// use topostate::store::LanPatch;
    ///
    /// let patch = LanPatch::new().with_subnet("10.0.9.0/24");
    /// assert_eq!(patch.subnet.as_deref(), Some("10.0.9.0/24"));
    /// ```
    #[must_use]
    pub fn with_subnet(mut self, subnet: impl Into<String>) -> Self {
        self.subnet = Some(subnet.into());
        self
    }

    /// Also sets the DMZ flag.
    ///
    /// ```
    /// use topostate::store::LanPatch;
    ///
    /// assert_eq!(LanPatch::new().with_dmz(false).is_dmz, Some(false));
    /// ```
    #[must_use]
    pub const fn with_dmz(mut self, is_dmz: bool) -> Self {
        self.is_dmz = Some(is_dmz);
        self
    }

    /// Also sets the canvas `x` (`None` clears it).
    ///
    /// ```
    /// use topostate::store::LanPatch;
    ///
    /// assert_eq!(LanPatch::new().with_x(Some(4.0)).x, Some(Some(4.0)));
    /// assert_eq!(LanPatch::new().with_x(None).x, Some(None)); // cleared, not unchanged
    /// ```
    #[must_use]
    pub const fn with_x(mut self, x: Option<f64>) -> Self {
        self.x = Some(x);
        self
    }

    /// Also sets the canvas `y` (`None` clears it).
    ///
    /// ```
    /// use topostate::store::LanPatch;
    ///
    /// assert_eq!(LanPatch::new().with_y(Some(8.0)).y, Some(Some(8.0)));
    /// ```
    #[must_use]
    pub const fn with_y(mut self, y: Option<f64>) -> Self {
        self.y = Some(y);
        self
    }
}

crate::named_values! {
    /// The runtime state of a decky's container, written by the deployer.
    ///
    /// Deliberately not `#[non_exhaustive]`: the seven states are the domain's closed set,
    /// so an exhaustive `match` on them is a feature, and a new state is a breaking change.
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
///
/// On the wire (feature `serde`): `name` is required; `services` defaults to `[]`, and
/// `config`, `x`, `y` to `null`. `config` is a string holding JSON text (the store keeps
/// it as given), not a nested object. Unknown fields are refused.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::NewDecky;
///
/// let decky: NewDecky =
///     serde_json::from_str(r#"{"name":"web","services":["http"],"config":"{\"tls\":true}"}"#)?;
/// assert_eq!(decky.services, ["http"]);
/// assert_eq!(decky.config.as_deref(), Some(r#"{"tls":true}"#));
/// assert_eq!(
///     serde_json::to_string(&NewDecky::new("db"))?,
///     r#"{"name":"db","services":[],"config":null,"x":null,"y":null}"#
/// );
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields (with defaults), so build one with
/// [`new`](Self::new) and the `with_*` methods; the fields stay public to read and set.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct NewDecky {
    /// Unique within the topology.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::DeckyName, _>")
    )]
    pub name: String,
    /// The services it exposes, e.g. `["ssh", "http"]`.
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "wire::req::<wire::Services, _>")
    )]
    pub services: Vec<String>,
    /// Its configuration as JSON text; stored as given, not interpreted by the store.
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "wire::opt::<wire::DeckyConfig, _>")
    )]
    pub config: Option<String>,
    /// Canvas position.
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "wire::opt::<wire::DeckyX, _>")
    )]
    pub x: Option<f64>,
    /// Canvas position.
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "wire::opt::<wire::DeckyY, _>")
    )]
    pub y: Option<f64>,
}

impl NewDecky {
    /// A decky with a name and no services, config or canvas position.
    ///
    /// ```
    /// use topostate::store::NewDecky;
    ///
    /// let decky = NewDecky::new("web");
    /// assert_eq!(decky.name, "web");
    /// assert!(decky.services.is_empty());
    /// assert_eq!((decky.config, decky.x, decky.y), (None, None, None));
    /// ```
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            services: Vec::new(),
            config: None,
            x: None,
            y: None,
        }
    }

    /// The same decky exposing `services`, in order.
    ///
    /// ```
    /// use topostate::store::NewDecky;
    ///
    /// assert_eq!(NewDecky::new("web").with_services(["ssh", "http"]).services, ["ssh", "http"]);
    /// ```
    #[must_use]
    pub fn with_services<S: Into<String>>(mut self, services: impl IntoIterator<Item = S>) -> Self {
        self.services = services.into_iter().map(Into::into).collect();
        self
    }

    /// The same decky with its configuration, JSON text stored as given.
    ///
    /// ```
    /// use topostate::store::NewDecky;
    ///
    /// let decky = NewDecky::new("web").with_config(r#"{"tls":true}"#);
    /// assert_eq!(decky.config.as_deref(), Some(r#"{"tls":true}"#));
    /// ```
    #[must_use]
    pub fn with_config(mut self, config: impl Into<String>) -> Self {
        self.config = Some(config.into());
        self
    }

    /// The same decky at a canvas position.
    ///
    /// ```
    /// use topostate::store::NewDecky;
    ///
    /// let decky = NewDecky::new("web").with_position(1.0, 2.0);
    /// assert_eq!((decky.x, decky.y), (Some(1.0), Some(2.0)));
    /// ```
    #[must_use]
    pub fn with_position(mut self, x: f64, y: f64) -> Self {
        self.x = Some(x);
        self.y = Some(y);
        self
    }
}

/// A stored decky.
///
/// On the wire (feature `serde`) every field is present, `null` where there is no value;
/// `config` is a string holding JSON text, `state` a [`DeckyState`] name:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::{Decky, DeckyState};
///
/// let json = r#"{"id":3,"topology_id":1,"name":"web","services":["http"],"config":null,"state":"running","ip":"10.0.0.5","last_error":null,"x":null,"y":null}"#;
/// let decky: Decky = serde_json::from_str(json)?;
/// assert_eq!(decky.state, DeckyState::Running);
/// assert_eq!(serde_json::to_string(&decky)?, json);
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields, so read the fields, and build one
/// (in a store or a test double of your own) with [`new`](Self::new), then set fields.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Decky {
    /// The store-minted id.
    pub id: DeckyId,
    /// The topology it belongs to.
    pub topology_id: TopologyId,
    /// Unique within the topology.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::DeckyName, _>")
    )]
    pub name: String,
    /// The services it exposes.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::Services, _>")
    )]
    pub services: Vec<String>,
    /// Its configuration as JSON text.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::opt::<wire::DeckyConfig, _>")
    )]
    pub config: Option<String>,
    /// The runtime state (written by the deployer).
    pub state: DeckyState,
    /// The address it got (a runtime field).
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::opt::<wire::DeckyIp, _>")
    )]
    pub ip: Option<String>,
    /// The last runtime error (a runtime field).
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::opt::<wire::DeckyLastError, _>")
    )]
    pub last_error: Option<String>,
    /// Canvas position.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::opt::<wire::DeckyX, _>")
    )]
    pub x: Option<f64>,
    /// Canvas position.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::opt::<wire::DeckyY, _>")
    )]
    pub y: Option<f64>,
}

impl Decky {
    /// A stored decky as the store adds it from `decky`: `pending`, no address, no error.
    /// For a store or a test double of your own.
    ///
    /// ```
    /// use topostate::store::{Decky, DeckyId, DeckyState, NewDecky};
    /// use topostate::TopologyId;
    ///
    /// let decky = Decky::new(DeckyId::new(3), TopologyId::new(1), NewDecky::new("web").with_services(["http"]));
    /// assert_eq!((decky.name.as_str(), decky.state), ("web", DeckyState::Pending));
    /// assert_eq!(decky.services, ["http"]);
    /// assert_eq!((decky.ip, decky.last_error), (None, None));
    /// ```
    #[must_use]
    pub fn new(id: DeckyId, topology_id: TopologyId, decky: NewDecky) -> Self {
        let NewDecky {
            name,
            services,
            config,
            x,
            y,
        } = decky;
        Self {
            id,
            topology_id,
            name,
            services,
            config,
            state: DeckyState::Pending,
            ip: None,
            last_error: None,
            x,
            y,
        }
    }
}

/// A change to a decky's declared fields; `None` leaves a field as it is.
///
/// On the wire (feature `serde`) every field is optional and **an absent field is left as
/// it is**. For `config`, `x` and `y` (`Option<Option<_>>`), `null` clears the value
/// (`Some(None)`). `name` and `services` cannot be cleared, so `null` there is refused
/// (`[]` empties the service list). Unknown fields are refused. Serializing writes only the
/// fields the patch sets.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::DeckyPatch;
///
/// let patch: DeckyPatch = serde_json::from_str(r#"{"services":[],"config":null}"#)?;
/// assert_eq!(patch.services, Some(vec![]));
/// assert_eq!(patch.config, Some(None)); // null: clear the config
/// assert_eq!(patch.name, None); // absent: unchanged
/// assert_eq!(serde_json::to_string(&patch)?, r#"{"services":[],"config":null}"#);
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields (with defaults), so build one with
/// [`new`](Self::new) (or `Default`) and the `with_*` methods; the fields stay public to read and set.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct DeckyPatch {
    /// A new name (unique within the topology).
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::set::<wire::DeckyName, _>"
        )
    )]
    pub name: Option<String>,
    /// A new service list.
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::set::<wire::Services, _>"
        )
    )]
    pub services: Option<Vec<String>>,
    /// A new configuration (`Some(None)` clears it).
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::patch::<wire::DeckyConfig, _>"
        )
    )]
    pub config: Option<Option<String>>,
    /// A new canvas position (`Some(None)` clears it).
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::patch::<wire::DeckyX, _>"
        )
    )]
    pub x: Option<Option<f64>>,
    /// A new canvas position (`Some(None)` clears it).
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::patch::<wire::DeckyY, _>"
        )
    )]
    pub y: Option<Option<f64>>,
}

impl DeckyPatch {
    /// The empty patch, which changes nothing (the same as [`Default`]).
    ///
    /// ```
    /// use topostate::store::DeckyPatch;
    ///
    /// assert!(DeckyPatch::new().is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Does this patch change nothing?
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Also renames the decky.
    ///
    /// ```
    /// use topostate::store::DeckyPatch;
    ///
    /// assert_eq!(DeckyPatch::new().with_name("www").name.as_deref(), Some("www"));
    /// ```
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Also replaces the service list (an empty list empties it).
    ///
    /// ```
    /// use topostate::store::DeckyPatch;
    ///
    /// let patch = DeckyPatch::new().with_services(["ssh", "smb"]);
    /// assert_eq!(patch.services, Some(vec!["ssh".to_owned(), "smb".to_owned()]));
    /// assert_eq!(DeckyPatch::new().with_services(Vec::<String>::new()).services, Some(vec![]));
    /// ```
    #[must_use]
    pub fn with_services<S: Into<String>>(mut self, services: impl IntoIterator<Item = S>) -> Self {
        self.services = Some(services.into_iter().map(Into::into).collect());
        self
    }

    /// Also sets the configuration, JSON text stored as given.
    ///
    /// ```
    /// use topostate::store::DeckyPatch;
    ///
    /// let patch = DeckyPatch::new().with_config(r#"{"tls":true}"#);
    /// assert_eq!(patch.config, Some(Some(r#"{"tls":true}"#.to_owned())));
    /// ```
    #[must_use]
    pub fn with_config(mut self, config: impl Into<String>) -> Self {
        self.config = Some(Some(config.into()));
        self
    }

    /// Also clears the configuration.
    ///
    /// ```
    /// use topostate::store::DeckyPatch;
    ///
    /// assert_eq!(DeckyPatch::new().clear_config().config, Some(None));
    /// ```
    #[must_use]
    pub fn clear_config(mut self) -> Self {
        self.config = Some(None);
        self
    }

    /// Also sets the canvas `x` (`None` clears it).
    ///
    /// ```
    /// use topostate::store::DeckyPatch;
    ///
    /// assert_eq!(DeckyPatch::new().with_x(None).x, Some(None));
    /// ```
    #[must_use]
    pub fn with_x(mut self, x: Option<f64>) -> Self {
        self.x = Some(x);
        self
    }

    /// Also sets the canvas `y` (`None` clears it).
    ///
    /// ```
    /// use topostate::store::DeckyPatch;
    ///
    /// assert_eq!(DeckyPatch::new().with_y(Some(2.0)).y, Some(Some(2.0)));
    /// ```
    #[must_use]
    pub fn with_y(mut self, y: Option<f64>) -> Self {
        self.y = Some(y);
        self
    }
}

/// The runtime fields of a decky the deployer writes; `None` leaves a field as it is.
///
/// On the wire (feature `serde`), as a patch: an absent field is left as it is; for `ip`
/// and `last_error` `null` clears the value; `state` cannot be cleared, so `null` there is
/// refused. Unknown fields are refused.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::{DeckyRuntime, DeckyState};
///
/// let run: DeckyRuntime = serde_json::from_str(r#"{"state":"failed","last_error":"exit 1"}"#)?;
/// assert_eq!(run.state, Some(DeckyState::Failed));
/// assert_eq!(run.last_error, Some(Some("exit 1".into())));
/// assert_eq!(run.ip, None);
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields (with defaults), so build one with
/// [`new`](Self::new) (or `Default`) and the `with_*` methods; the fields stay public to read and set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct DeckyRuntime {
    /// A new runtime state.
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::set::<wire::DeckyStateField, _>"
        )
    )]
    pub state: Option<DeckyState>,
    /// A new address (`Some(None)` clears it).
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::patch::<wire::DeckyIp, _>"
        )
    )]
    pub ip: Option<Option<String>>,
    /// A new last error (`Some(None)` clears it).
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "wire::is_absent",
            deserialize_with = "wire::patch::<wire::DeckyLastError, _>"
        )
    )]
    pub last_error: Option<Option<String>>,
}

impl DeckyRuntime {
    /// The empty update, which writes nothing (the same as [`Default`]).
    ///
    /// ```
    /// use topostate::store::DeckyRuntime;
    ///
    /// assert_eq!(DeckyRuntime::new(), DeckyRuntime::default());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Also sets the runtime state.
    ///
    /// ```
    /// use topostate::store::{DeckyRuntime, DeckyState};
    ///
    /// let run = DeckyRuntime::new().with_state(DeckyState::Running);
    /// assert_eq!(run.state, Some(DeckyState::Running));
    /// ```
    #[must_use]
    pub fn with_state(mut self, state: DeckyState) -> Self {
        self.state = Some(state);
        self
    }

    /// Also sets the address.
    ///
    /// ```
    /// use topostate::store::DeckyRuntime;
    ///
    /// assert_eq!(DeckyRuntime::new().with_ip("10.0.0.5").ip, Some(Some("10.0.0.5".to_owned())));
    /// ```
    #[must_use]
    pub fn with_ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(Some(ip.into()));
        self
    }

    /// Also clears the address.
    ///
    /// ```
    /// use topostate::store::DeckyRuntime;
    ///
    /// assert_eq!(DeckyRuntime::new().clear_ip().ip, Some(None));
    /// ```
    #[must_use]
    pub fn clear_ip(mut self) -> Self {
        self.ip = Some(None);
        self
    }

    /// Also sets the last runtime error.
    ///
    /// ```
    /// use topostate::store::DeckyRuntime;
    ///
    /// let run = DeckyRuntime::new().with_last_error("exit 137");
    /// assert_eq!(run.last_error, Some(Some("exit 137".to_owned())));
    /// ```
    #[must_use]
    pub fn with_last_error(mut self, error: impl Into<String>) -> Self {
        self.last_error = Some(Some(error.into()));
        self
    }

    /// Also clears the last runtime error.
    ///
    /// ```
    /// use topostate::store::DeckyRuntime;
    ///
    /// assert_eq!(DeckyRuntime::new().clear_last_error().last_error, Some(None));
    /// ```
    #[must_use]
    pub fn clear_last_error(mut self) -> Self {
        self.last_error = Some(None);
        self
    }
}

/// A decky ↔ LAN membership to add; both ends must be in the topology. Either end may be
/// a row the same batch adds ([`RowRef::Batch`]).
///
/// On the wire (feature `serde`): `decky` and `lan` ([`RowRef`]s: an id, or
/// `{"batch":i}`) are required, `is_bridge` and `forwards_l3` default to `false`. Unknown
/// fields are refused.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::{DeckyId, LanId, NewEdge, RowRef};
///
/// let edge: NewEdge = serde_json::from_str(r#"{"decky":3,"lan":2}"#)?;
/// assert_eq!(edge, NewEdge::new(DeckyId::new(3), LanId::new(2)));
/// assert_eq!(
///     serde_json::to_string(&edge)?,
///     r#"{"decky":3,"lan":2,"is_bridge":false,"forwards_l3":false}"#
/// );
/// // The decky added by edit 0 of the same batch, to a stored LAN.
/// let edge: NewEdge = serde_json::from_str(r#"{"decky":{"batch":0},"lan":2}"#)?;
/// assert_eq!(edge, NewEdge::new(RowRef::Batch(0), LanId::new(2)));
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields (with defaults), so build one with
/// [`new`](Self::new) and the `with_*` methods; the fields stay public to read and set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct NewEdge {
    /// The decky: stored, or added earlier in the batch.
    pub decky: RowRef<DeckyId>,
    /// The LAN: stored, or added earlier in the batch.
    pub lan: RowRef<LanId>,
    /// Does the decky bridge this LAN to another?
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "wire::req::<wire::IsBridge, _>")
    )]
    pub is_bridge: bool,
    /// Does it forward L3 traffic?
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "wire::req::<wire::ForwardsL3, _>")
    )]
    pub forwards_l3: bool,
}

impl NewEdge {
    /// A plain membership (not a bridge, no L3 forwarding). Each end is a stored id
    /// (`DeckyId`, `LanId`) or a [`RowRef`].
    ///
    /// ```
    /// use topostate::store::{DeckyId, LanId, NewEdge, RowRef};
    ///
    /// let edge = NewEdge::new(DeckyId::new(3), RowRef::Batch(0));
    /// assert_eq!((edge.decky, edge.lan), (RowRef::Stored(DeckyId::new(3)), RowRef::<LanId>::Batch(0)));
    /// assert!(!edge.is_bridge && !edge.forwards_l3);
    /// ```
    #[must_use]
    pub fn new(decky: impl Into<RowRef<DeckyId>>, lan: impl Into<RowRef<LanId>>) -> Self {
        Self {
            decky: decky.into(),
            lan: lan.into(),
            is_bridge: false,
            forwards_l3: false,
        }
    }

    /// The same membership, bridging this LAN to another or not.
    ///
    /// ```
    /// use topostate::store::{DeckyId, LanId, NewEdge};
    ///
    /// assert!(NewEdge::new(DeckyId::new(3), LanId::new(2)).with_bridge(true).is_bridge);
    /// ```
    #[must_use]
    pub const fn with_bridge(mut self, is_bridge: bool) -> Self {
        self.is_bridge = is_bridge;
        self
    }

    /// The same membership, forwarding L3 traffic or not.
    ///
    /// ```
    /// use topostate::store::{DeckyId, LanId, NewEdge};
    ///
    /// assert!(NewEdge::new(DeckyId::new(3), LanId::new(2)).with_forwards_l3(true).forwards_l3);
    /// ```
    #[must_use]
    pub const fn with_forwards_l3(mut self, forwards_l3: bool) -> Self {
        self.forwards_l3 = forwards_l3;
        self
    }
}

/// A stored decky ↔ LAN membership.
///
/// On the wire (feature `serde`) every field is present:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::Edge;
///
/// let json = r#"{"id":4,"topology_id":1,"decky":3,"lan":2,"is_bridge":true,"forwards_l3":false}"#;
/// let edge: Edge = serde_json::from_str(json)?;
/// assert!(edge.is_bridge);
/// assert_eq!(serde_json::to_string(&edge)?, json);
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields, so read the fields, and build one
/// (in a store or a test double of your own) with [`new`](Self::new), then set fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
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
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::IsBridge, _>")
    )]
    pub is_bridge: bool,
    /// Does it forward L3 traffic?
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::ForwardsL3, _>")
    )]
    pub forwards_l3: bool,
}

impl Edge {
    /// A stored plain membership (not a bridge, no L3 forwarding). For a store or a test
    /// double of your own, which sets the flags after.
    ///
    /// ```
    /// use topostate::store::{DeckyId, Edge, EdgeId, LanId};
    /// use topostate::TopologyId;
    ///
    /// let mut edge = Edge::new(EdgeId::new(4), TopologyId::new(1), DeckyId::new(3), LanId::new(2));
    /// assert_eq!((edge.decky, edge.lan), (DeckyId::new(3), LanId::new(2)));
    /// assert!(!edge.is_bridge && !edge.forwards_l3);
    /// edge.is_bridge = true;
    /// ```
    #[must_use]
    pub const fn new(id: EdgeId, topology_id: TopologyId, decky: DeckyId, lan: LanId) -> Self {
        Self {
            id,
            topology_id,
            decky,
            lan,
            is_bridge: false,
            forwards_l3: false,
        }
    }
}

/// One edit of a topology's children.
///
/// An edit names a LAN or decky by a [`RowRef`]: a stored id (every `LanId` and `DeckyId`
/// converts into one), or `RowRef::Batch(i)`, the row that edit `i` of the same batch adds
/// (a batch-local reference), so that a batch can add a decky and its edges to a new LAN
/// under one expected version. Edges are named by stored id only: nothing refers to an
/// edge but its delete.
///
/// Free-form edits ([`TopologyStore::edit`](super::TopologyStore::edit)) apply to a
/// `pending` topology; live edits ([`TopologyStore::apply_live`](super::TopologyStore::apply_live))
/// apply with a claimed mutation to an `active` or `degraded` one.
///
/// On the wire (feature `serde`) an edit is an object whose `op` names the variant in
/// `snake_case` and whose other keys are the variant's arguments, by name (the `op` key may
/// come anywhere in the object):
///
/// | variant | JSON |
/// |---|---|
/// | `AddLan(lan)` | `{"op":"add_lan","lan":{...NewLan}}` |
/// | `UpdateLan(id, patch)` | `{"op":"update_lan","id":2,"patch":{...LanPatch}}` |
/// | `DeleteLan(id)` | `{"op":"delete_lan","id":2}` |
/// | `AddDecky(decky)` | `{"op":"add_decky","decky":{...NewDecky}}` |
/// | `UpdateDecky(id, patch)` | `{"op":"update_decky","id":3,"patch":{...DeckyPatch}}` |
/// | `DeleteDecky(id)` | `{"op":"delete_decky","id":3}` |
/// | `AddEdge(edge)` | `{"op":"add_edge","edge":{...NewEdge}}` |
/// | `DeleteEdge(id)` | `{"op":"delete_edge","id":4}` |
///
/// Where a LAN or decky is named (`id` of the updates and deletes, `decky` and `lan` of a
/// new edge), a batch-local reference is written `{"batch":i}` ([`RowRef`]).
///
/// A missing or unknown `op`, a missing argument and an unknown key are refused, as is any
/// field the store's checks refuse. A batch is a JSON array of edits.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::{ChildEdit, LanId, LanPatch, NewLan};
///
/// let batch: Vec<ChildEdit> = serde_json::from_str(
///     r#"[{"op":"add_lan","lan":{"name":"dmz","subnet":"10.0.0.0/24"}},
///         {"op":"update_lan","id":2,"patch":{"x":12.5}},
///         {"op":"delete_lan","id":2}]"#,
/// )?;
/// assert_eq!(batch[0], ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24")));
/// let moved = LanPatch::new().with_x(Some(12.5));
/// assert_eq!(batch[1], ChildEdit::UpdateLan(LanId::new(2).into(), moved));
/// assert_eq!(serde_json::to_string(&batch[2])?, r#"{"op":"delete_lan","id":2}"#);
/// let err = serde_json::from_str::<ChildEdit>(r#"{"op":"rename_lan","id":2}"#).unwrap_err();
/// assert!(err.to_string().starts_with("unknown variant `rename_lan`"));
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add edit kinds, so a `match` on an edit needs
/// a `_` arm.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(from = "wire::EditIn"))]
#[non_exhaustive]
pub enum ChildEdit {
    /// Adds a LAN.
    AddLan(NewLan),
    /// Changes a LAN's declared fields.
    UpdateLan(RowRef<LanId>, LanPatch),
    /// Deletes a LAN and its edges; refused while it is some decky's only LAN.
    DeleteLan(RowRef<LanId>),
    /// Adds a decky.
    AddDecky(NewDecky),
    /// Changes a decky's declared fields.
    UpdateDecky(RowRef<DeckyId>, DeckyPatch),
    /// Deletes a decky and its edges.
    DeleteDecky(RowRef<DeckyId>),
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

    /// Does this edit name a row by a batch-local reference ([`RowRef::Batch`])?
    #[must_use]
    pub fn refers_to_batch(&self) -> bool {
        match self {
            Self::UpdateLan(lan, _) | Self::DeleteLan(lan) => lan.batch().is_some(),
            Self::UpdateDecky(decky, _) | Self::DeleteDecky(decky) => decky.batch().is_some(),
            Self::AddEdge(edge) => edge.decky.batch().is_some() || edge.lan.batch().is_some(),
            Self::AddLan(_) | Self::AddDecky(_) | Self::DeleteEdge(_) => false,
        }
    }
}

/// A LAN or decky as an edit names it: a row stored before the batch, or the row an
/// earlier edit of the same batch adds (a batch-local reference).
///
/// `RowRef::Batch(i)` names the row that edit `i` of the batch adds: edit `i` must come
/// before the edit that refers to it and must add a row of the kind named (an
/// [`AddLan`](ChildEdit::AddLan) for a LAN, an [`AddDecky`](ChildEdit::AddDecky) for a
/// decky); anything else refuses the whole batch with [`StoreError::BadReference`]
/// naming the referring edit and which of its references is wrong. A reference to a row
/// the batch has since deleted is [`StoreError::NotFound`], as for a stored one.
///
/// A stored id never names a row of the batch, even once its id could be guessed: the
/// batch's new rows are reached only through `Batch`. After the batch, the stored id a
/// reference became is the report's entry for the edit it names
/// (`report.touched[i]`), which [`EditReport::lan`] and [`EditReport::decky`] read.
///
/// On the wire (feature `serde`): a stored id is its number, `5`; a batch-local reference
/// is `{"batch":0}`.
///
/// ```
/// use topostate::store::{
///     ChildEdit, MemoryStore, NewDecky, NewEdge, NewLan, RowRef, StoreError, TopologyStore,
/// };
///
/// let store = MemoryStore::new();
/// let lab = store.create_topology("lab")?;
/// // A canvas save: a new LAN, a new decky and the edge between them, in one call.
/// let report = store.edit(
///     lab.id,
///     Some(lab.version),
///     &[
///         ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24")),
///         ChildEdit::AddDecky(NewDecky::new("web")),
///         ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(1), RowRef::Batch(0))),
///     ],
/// )?;
/// assert_eq!(report.version, 2);
/// let detail = store.topology_detail(lab.id)?;
/// assert_eq!(Some(detail.edges[0].lan), report.lan(RowRef::Batch(0)));
/// assert_eq!(Some(detail.edges[0].decky), report.decky(RowRef::Batch(1)));
///
/// // A reference to a later edit refuses the batch, naming the edit.
/// let err = store
///     .edit(lab.id, None, &[ChildEdit::DeleteLan(RowRef::Batch(1)), ChildEdit::AddLan(NewLan::new("x", "s"))])
///     .unwrap_err();
/// assert!(matches!(err, StoreError::BadReference { edit: 0, target: 1, .. }));
/// # Ok::<(), StoreError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowRef<I> {
    /// A row stored before the batch, by its id.
    Stored(I),
    /// The row added by edit `.0` (counted from 0) of the same batch.
    Batch(usize),
}

impl<I> From<I> for RowRef<I> {
    fn from(id: I) -> Self {
        Self::Stored(id)
    }
}

impl<I> RowRef<I> {
    /// The same reference with the stored id mapped by `f` (a batch-local one is kept).
    ///
    /// ```
    /// use topostate::store::{LanId, RowRef};
    ///
    /// assert_eq!(RowRef::Stored(LanId::new(5)).map(LanId::get), RowRef::Stored(5));
    /// assert_eq!(RowRef::<LanId>::Batch(0).map(LanId::get), RowRef::Batch(0));
    /// ```
    #[must_use]
    pub fn map<J>(self, f: impl FnOnce(I) -> J) -> RowRef<J> {
        match self {
            Self::Stored(id) => RowRef::Stored(f(id)),
            Self::Batch(i) => RowRef::Batch(i),
        }
    }
}

impl<I: Copy> RowRef<I> {
    /// The stored id, if this names a stored row.
    #[must_use]
    pub const fn stored(self) -> Option<I> {
        match self {
            Self::Stored(id) => Some(id),
            Self::Batch(_) => None,
        }
    }

    /// The index of the edit whose new row this names, if it is a batch-local reference.
    #[must_use]
    pub const fn batch(self) -> Option<usize> {
        match self {
            Self::Stored(_) => None,
            Self::Batch(i) => Some(i),
        }
    }
}

/// The kinds of row a [`RowRef`] can name: what the checks and the wire call them.
pub(crate) trait Referable: Copy {
    /// The kind of row, as errors name it.
    const ENTITY: super::Entity;
    /// What the wire calls such an id, e.g. `"a lan id"`.
    #[cfg(feature = "serde")]
    const LABEL: &'static str;
    /// Does `edit` add a row of this kind?
    fn added_by(edit: &ChildEdit) -> bool;
    /// The id, if `touched` is a row of this kind.
    fn of(touched: Touched) -> Option<Self>;
    /// The row, as a report lists it.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn touched(self) -> Touched;
    /// The raw id.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn raw(self) -> u64;
    /// Wraps a raw id.
    fn from_raw(raw: u64) -> Self;
}

impl Referable for LanId {
    const ENTITY: super::Entity = super::Entity::Lan;
    #[cfg(feature = "serde")]
    const LABEL: &'static str = "a lan id";
    fn added_by(edit: &ChildEdit) -> bool {
        matches!(edit, ChildEdit::AddLan(_))
    }
    fn of(touched: Touched) -> Option<Self> {
        match touched {
            Touched::Lan(id) => Some(id),
            _ => None,
        }
    }
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn touched(self) -> Touched {
        Touched::Lan(self)
    }
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn raw(self) -> u64 {
        self.get()
    }
    fn from_raw(raw: u64) -> Self {
        Self::new(raw)
    }
}

impl Referable for DeckyId {
    const ENTITY: super::Entity = super::Entity::Decky;
    #[cfg(feature = "serde")]
    const LABEL: &'static str = "a decky id";
    fn added_by(edit: &ChildEdit) -> bool {
        matches!(edit, ChildEdit::AddDecky(_))
    }
    fn of(touched: Touched) -> Option<Self> {
        match touched {
            Touched::Decky(id) => Some(id),
            _ => None,
        }
    }
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn touched(self) -> Touched {
        Touched::Decky(self)
    }
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn raw(self) -> u64 {
        self.get()
    }
    fn from_raw(raw: u64) -> Self {
        Self::new(raw)
    }
}

/// A stored id as itself (`5`); a batch-local reference as `edit 0's new row`.
impl<I: fmt::Display> fmt::Display for RowRef<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stored(id) => id.fmt(f),
            Self::Batch(i) => write!(f, "edit {i}'s new row"),
        }
    }
}

/// The row one edit touched.
///
/// On the wire (feature `serde`): `{"kind":"lan","id":2}`, with `kind` one of `lan`,
/// `decky`, `edge`.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::{DeckyId, Touched};
///
/// let t = Touched::Decky(DeckyId::new(3));
/// assert_eq!(serde_json::to_string(&t)?, r#"{"kind":"decky","id":3}"#);
/// assert_eq!(serde_json::from_str::<Touched>(r#"{"id":3,"kind":"decky"}"#)?, t);
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add kinds of rows, so a `match` needs a `_`
/// arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(into = "wire::TouchedWire", from = "wire::TouchedWire")
)]
#[non_exhaustive]
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
///
/// `touched[i]` is the row edit `i` touched; for an edit that adds a row, its new id. So a
/// batch-local reference [`RowRef::Batch(i)`](RowRef::Batch) became the id in `touched[i]`:
/// [`lan`](Self::lan) and [`decky`](Self::decky) read it.
///
/// On the wire (feature `serde`): `{"touched":[...Touched],"version":n}`.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::{EditReport, LanId, Touched};
///
/// let report = EditReport::new(vec![Touched::Lan(LanId::new(2))], 5);
/// let json = r#"{"touched":[{"kind":"lan","id":2}],"version":5}"#;
/// assert_eq!(serde_json::to_string(&report)?, json);
/// assert_eq!(serde_json::from_str::<EditReport>(json)?, report);
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields, so read the fields, and build one
/// (in a store or a test double of your own) with [`new`](Self::new), then set fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct EditReport {
    /// One entry per edit, in order.
    pub touched: Vec<Touched>,
    /// The topology's version after the call.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::names::wire::version")
    )]
    pub version: u64,
}

impl EditReport {
    /// A report: the row each edit touched, in order, and the version after the call.
    /// The stores build reports; this is for a store or a test double of your own.
    ///
    /// ```
    /// use topostate::store::{EditReport, LanId, Touched};
    ///
    /// let report = EditReport::new(vec![Touched::Lan(LanId::new(2))], 5);
    /// assert_eq!((report.touched.as_slice(), report.version), (&[Touched::Lan(LanId::new(2))][..], 5));
    /// ```
    #[must_use]
    pub const fn new(touched: Vec<Touched>, version: u64) -> Self {
        Self { touched, version }
    }

    /// The stored id of a LAN an edit of this batch named: a stored id as it is; a
    /// batch-local reference as the LAN its edit added (`None` if that edit touched no
    /// LAN, which the batch would have refused).
    ///
    /// ```
    /// use topostate::store::{EditReport, LanId, RowRef, Touched};
    ///
    /// let report = EditReport::new(vec![Touched::Lan(LanId::new(7))], 2);
    /// assert_eq!(report.lan(RowRef::Batch(0)), Some(LanId::new(7)));
    /// assert_eq!(report.lan(LanId::new(3).into()), Some(LanId::new(3)));
    /// assert_eq!(report.lan(RowRef::Batch(1)), None);
    /// ```
    #[must_use]
    pub fn lan(&self, lan: RowRef<LanId>) -> Option<LanId> {
        self.resolve(lan)
    }

    /// The stored id of a decky an edit of this batch named, as [`lan`](Self::lan) for
    /// LANs.
    ///
    /// ```
    /// use topostate::store::{DeckyId, EditReport, RowRef, Touched};
    ///
    /// let report = EditReport::new(vec![Touched::Decky(DeckyId::new(4))], 2);
    /// assert_eq!(report.decky(RowRef::Batch(0)), Some(DeckyId::new(4)));
    /// ```
    #[must_use]
    pub fn decky(&self, decky: RowRef<DeckyId>) -> Option<DeckyId> {
        self.resolve(decky)
    }

    fn resolve<I: Referable>(&self, reference: RowRef<I>) -> Option<I> {
        match reference {
            RowRef::Stored(id) => Some(id),
            RowRef::Batch(i) => self.touched.get(i).copied().and_then(I::of),
        }
    }
}

/// What a single edit did: the id it touched and the topology's version after the call.
///
/// On the wire (feature `serde`): `{"id":2,"version":5}`.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::{Edited, LanId};
///
/// let e = Edited::new(LanId::new(2), 5);
/// assert_eq!(serde_json::to_string(&e)?, r#"{"id":2,"version":5}"#);
/// assert!(serde_json::from_str::<Edited<LanId>>(r#"{"id":2,"version":-1}"#).is_err());
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields, so read the fields, and build one
/// (in a store or a test double of your own) with [`new`](Self::new), then set fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Edited<I> {
    /// The id touched.
    pub id: I,
    /// The topology's version after the call.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::names::wire::version")
    )]
    pub version: u64,
}

impl<I> Edited<I> {
    /// What a single edit did. For a store or a test double of your own.
    ///
    /// ```
    /// use topostate::store::{Edited, LanId};
    ///
    /// let e = Edited::new(LanId::new(2), 5);
    /// assert_eq!((e.id, e.version), (LanId::new(2), 5));
    /// ```
    #[must_use]
    pub const fn new(id: I, version: u64) -> Self {
        Self { id, version }
    }
}

/// A topology with all its children, read in one consistent snapshot.
///
/// On the wire (feature `serde`): `{"topology":{...TopologyRecord},"lans":[...],
/// "deckies":[...],"edges":[...]}`, each list in the order the store returns it.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::{MemoryStore, TopologyDetail, TopologyStore};
///
/// let store = MemoryStore::new();
/// let lab = store.create_topology("lab")?;
/// let detail = store.topology_detail(lab.id)?;
/// let json = serde_json::to_string(&detail)?;
/// assert!(json.ends_with(r#""lans":[],"deckies":[],"edges":[]}"#));
/// assert_eq!(serde_json::from_str::<TopologyDetail>(&json)?, detail);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields, so read the fields, and build one
/// (in a store or a test double of your own) with [`new`](Self::new), then set fields.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
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

impl TopologyDetail {
    /// A topology with its children, each list in the store's order. For a store or a
    /// test double of your own.
    ///
    /// ```
    /// use topostate::store::{Timestamp, TopologyDetail, TopologyRecord};
    /// use topostate::TopologyId;
    ///
    /// let record = TopologyRecord::new(TopologyId::new(1), "lab", Timestamp::from_micros(0));
    /// let detail = TopologyDetail::new(record.clone(), vec![], vec![], vec![]);
    /// assert_eq!(detail.topology, record);
    /// assert!(detail.lans.is_empty() && detail.deckies.is_empty() && detail.edges.is_empty());
    /// ```
    #[must_use]
    pub const fn new(
        topology: TopologyRecord,
        lans: Vec<Lan>,
        deckies: Vec<Decky>,
        edges: Vec<Edge>,
    ) -> Self {
        Self {
            topology,
            lans,
            deckies,
            edges,
        }
    }
}

/// One entry of a topology's append-only status log.
///
/// On the wire (feature `serde`) every field is present, `reason` `null` when none was
/// given:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::StatusEvent;
/// use topostate::TopologyStatus;
///
/// let json = r#"{"id":7,"topology_id":1,"from":"deploying","to":"failed","at":"2023-11-14T22:13:20.000000Z","reason":"compose up exited 1"}"#;
/// let event: StatusEvent = serde_json::from_str(json)?;
/// assert_eq!((event.from, event.to), (TopologyStatus::Deploying, TopologyStatus::Failed));
/// assert_eq!(serde_json::to_string(&event)?, json);
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add fields, so read the fields, and build one
/// (in a store or a test double of your own) with [`new`](Self::new), then set fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
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
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::opt::<wire::Reason, _>")
    )]
    pub reason: Option<String>,
}

impl StatusEvent {
    /// An event without a reason. For a store or a test double of your own.
    ///
    /// ```
    /// use topostate::store::{EventId, StatusEvent, Timestamp};
    /// use topostate::{TopologyId, TopologyStatus};
    ///
    /// let at = Timestamp::from_micros(0);
    /// let event = StatusEvent::new(EventId::new(7), TopologyId::new(1), TopologyStatus::Deploying, TopologyStatus::Failed, at)
    ///     .with_reason("compose up exited 1");
    /// assert_eq!((event.from, event.to, event.at), (TopologyStatus::Deploying, TopologyStatus::Failed, at));
    /// assert_eq!(event.reason.as_deref(), Some("compose up exited 1"));
    /// ```
    #[must_use]
    pub const fn new(
        id: EventId,
        topology_id: TopologyId,
        from: TopologyStatus,
        to: TopologyStatus,
        at: Timestamp,
    ) -> Self {
        Self {
            id,
            topology_id,
            from,
            to,
            at,
            reason: None,
        }
    }

    /// The same event with the reason given for the transition.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
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
///
/// On the wire (feature `serde`): `{"status":"deploying","version":3}`; either may be
/// `null` or absent (no belief about it), and unknown fields are refused.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::{store::Precondition, TopologyStatus};
///
/// let pre: Precondition = serde_json::from_str(r#"{"version":3}"#)?;
/// assert_eq!(pre, Precondition::version(3));
/// assert_eq!(serde_json::to_string(&pre)?, r#"{"status":null,"version":3}"#);
/// assert!(serde_json::from_str::<Precondition>(r#"{"version":0}"#).is_err());
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add beliefs to check, so build one with
/// [`none`](Self::none), [`status`](Self::status), [`version`](Self::version) and
/// [`and_version`](Self::and_version); the fields stay public to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct Precondition {
    /// The status the caller believes is current; a mismatch is
    /// [`StoreError::StaleStatus`], even if the stored status could also move on.
    #[cfg_attr(feature = "serde", serde(default))]
    pub status: Option<TopologyStatus>,
    /// The version the caller saw; checked, not bumped.
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "crate::names::wire::opt_version")
    )]
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

    /// The caller believes the version is `version`, whatever the status.
    ///
    /// ```
    /// use topostate::store::Precondition;
    ///
    /// let pre = Precondition::version(3);
    /// assert_eq!((pre.status, pre.version), (None, Some(3)));
    /// ```
    #[must_use]
    pub const fn version(version: u64) -> Self {
        Self {
            status: None,
            version: Some(version),
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
///
/// On the wire (feature `serde`): `{"topology":{...TopologyRecord},"event":{...StatusEvent}}`.
///
/// `#[non_exhaustive]`: a later version may add fields, so read the fields, and build one
/// (in a store or a test double of your own) with [`new`](Self::new), then set fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Transitioned {
    /// The topology row after the transition.
    pub topology: TopologyRecord,
    /// The event appended to the log.
    pub event: StatusEvent,
}

impl Transitioned {
    /// A recorded transition. For a store or a test double of your own.
    ///
    /// ```
    /// use topostate::store::{EventId, StatusEvent, Timestamp, TopologyRecord, Transitioned};
    /// use topostate::{TopologyId, TopologyStatus};
    ///
    /// let at = Timestamp::from_micros(0);
    /// let mut topology = TopologyRecord::new(TopologyId::new(1), "lab", at);
    /// topology.status = TopologyStatus::Deploying;
    /// let event = StatusEvent::new(EventId::new(1), topology.id, TopologyStatus::Pending, TopologyStatus::Deploying, at);
    /// let done = Transitioned::new(topology.clone(), event.clone());
    /// assert_eq!((done.topology, done.event), (topology, event));
    /// ```
    #[must_use]
    pub const fn new(topology: TopologyRecord, event: StatusEvent) -> Self {
        Self { topology, event }
    }
}

/// A stored live edit in the mutation queue.
///
/// On the wire (feature `serde`) every field is present; `payload` is a string holding the
/// JSON text as stored, and `applied_at`, `reason`, `claimed_at`, `lease_until`, `holder`,
/// `edited_by` are `null` until set (a reader also accepts rows without the lease fields,
/// as written before leases existed):
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::Mutation;
/// use topostate::{MutationOp, MutationState};
///
/// let json = r#"{"id":9,"topology_id":1,"op":"add_lan","payload":"{\"name\":\"lan-b\"}","state":"pending","requested_at":"2023-11-14T22:13:20.000000Z","applied_at":null,"reason":null,"claimed_at":null,"lease_until":null,"holder":null,"attempts":0,"token":0,"edited_by":null}"#;
/// let m: Mutation = serde_json::from_str(json)?;
/// assert_eq!((m.op, m.state), (MutationOp::AddLan, MutationState::Pending));
/// assert_eq!(m.payload, r#"{"name":"lan-b"}"#);
/// assert_eq!(serde_json::to_string(&m)?, json);
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Mutation {
    /// The store-assigned id; grows with enqueue order.
    pub id: MutationId,
    /// The topology.
    pub topology_id: TopologyId,
    /// The operation.
    pub op: MutationOp,
    /// The operation's payload as JSON text; stored as given.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::req::<wire::Payload, _>")
    )]
    pub payload: String,
    /// Where it is in the queue's lifecycle.
    pub state: MutationState,
    /// When it was enqueued.
    pub requested_at: Timestamp,
    /// When it was marked applied or failed.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::opt::<wire::At, _>")
    )]
    pub applied_at: Option<Timestamp>,
    /// Why it failed.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "wire::opt::<wire::Reason, _>")
    )]
    pub reason: Option<String>,
    /// When it was last claimed (by the store's clock); `None` until the first claim.
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "wire::opt::<wire::At, _>")
    )]
    pub claimed_at: Option<Timestamp>,
    /// Until when the last claim's lease runs (by the store's clock): while it is
    /// `applying` and this has not passed, the mutation is held; once it has passed, the
    /// next claim takes it over. Kept after the mutation is closed, as history.
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "wire::opt::<wire::At, _>")
    )]
    pub lease_until: Option<Timestamp>,
    /// Who took the last claim, as the claimer named itself
    /// ([`ClaimOptions::holder`](super::ClaimOptions::holder)), if it did.
    #[cfg_attr(
        feature = "serde",
        serde(default, deserialize_with = "wire::opt::<wire::Holder, _>")
    )]
    pub holder: Option<String>,
    /// How many times it was claimed: 1 after the first claim, one more per takeover or
    /// claim after a release.
    #[cfg_attr(feature = "serde", serde(default))]
    pub attempts: u32,
    /// The fencing token of the last claim: 0 until the first claim, then one more with
    /// every claim. Only the claim carrying this token may write.
    #[cfg_attr(feature = "serde", serde(default))]
    pub token: u64,
    /// The token under which live edits were committed for it, if any: a later holder
    /// (a takeover) cannot apply live edits again, only close the mutation.
    #[cfg_attr(feature = "serde", serde(default))]
    pub edited_by: Option<u64>,
}

impl Mutation {
    /// A `pending` mutation as enqueued, never claimed. For a store or a test double of
    /// your own; the other fields are set after construction. (The type is
    /// `#[non_exhaustive]`: a later release may record more about a claim.)
    ///
    /// ```
    /// use topostate::store::{Mutation, MutationId, Timestamp};
    /// use topostate::{MutationOp, MutationState, TopologyId};
    ///
    /// let at = Timestamp::from_micros(1_000_000);
    /// let m = Mutation::new(MutationId::new(1), TopologyId::new(2), MutationOp::AddLan, "{}", at);
    /// assert_eq!((m.state, m.requested_at, m.token, m.attempts), (MutationState::Pending, at, 0, 0));
    /// assert_eq!((m.claimed_at, m.lease_until, m.holder, m.edited_by), (None, None, None, None));
    /// ```
    #[must_use]
    pub fn new(
        id: MutationId,
        topology_id: TopologyId,
        op: MutationOp,
        payload: impl Into<String>,
        requested_at: Timestamp,
    ) -> Self {
        Self {
            id,
            topology_id,
            op,
            payload: payload.into(),
            state: MutationState::Pending,
            requested_at,
            applied_at: None,
            reason: None,
            claimed_at: None,
            lease_until: None,
            holder: None,
            attempts: 0,
            token: 0,
            edited_by: None,
        }
    }

    /// Is it `applying` under a lease that has passed at `now` (free for a takeover)?
    ///
    /// ```
    /// use topostate::store::{Mutation, MutationId, Timestamp};
    /// use topostate::{MutationOp, MutationState, TopologyId};
    ///
    /// let at = Timestamp::from_micros(1_000_000);
    /// let mut held = Mutation::new(MutationId::new(1), TopologyId::new(1), MutationOp::AddLan, "{}", at);
    /// held.state = MutationState::Applying;
    /// held.claimed_at = Some(at);
    /// held.lease_until = Some(Timestamp::from_micros(2_000_000));
    /// (held.attempts, held.token) = (1, 1);
    /// assert!(!held.lease_expired(Timestamp::from_micros(1_999_999)));
    /// assert!(held.lease_expired(Timestamp::from_micros(2_000_000)));
    /// ```
    #[must_use]
    pub fn lease_expired(&self, now: Timestamp) -> bool {
        self.state == MutationState::Applying && self.lease_until.is_none_or(|until| until <= now)
    }
}

/// Proof of a claimed mutation, needed for live edits, lease renewals and marks.
///
/// It carries the claim's fencing token. The store checks it in the same atomic step as
/// the write: the mutation must still be `applying` under this token (a takeover after the
/// lease passed, or an operator's release, gives the mutation a new token, and the old
/// holder's writes are refused as [`StoreError::LeaseLost`]); for a live edit the topology
/// must also be `active` or `degraded`. A claim naming another topology than the
/// mutation's finds no such mutation ([`StoreError::NotFound`]). It is not `Clone`, and the
/// marks consume it.
///
/// On the wire (feature `serde`): `{"id":9,"topology_id":1,"token":3}`. It deserializes,
/// so an applier in another process (or an operator repairing a stuck claim) can carry a
/// claim by id and token: reading one is [`Lease::from_parts`], and like a forged
/// one it buys nothing, since every use is checked against the stored state and token.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::{Lease, MutationId};
/// use topostate::TopologyId;
///
/// let claim: Lease = serde_json::from_str(r#"{"id":9,"topology_id":1,"token":3}"#)?;
/// assert_eq!(claim, Lease::from_parts(MutationId::new(9), TopologyId::new(1), 3));
/// assert_eq!(claim.token(), 3);
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Lease {
    id: MutationId,
    topology_id: TopologyId,
    token: u64,
}

impl Lease {
    /// A claim for a mutation under a fencing token, e.g. one carried across processes.
    /// Forging one buys nothing: every use is checked against the stored state and token.
    #[must_use]
    pub const fn from_parts(id: MutationId, topology_id: TopologyId, token: u64) -> Self {
        Self {
            id,
            topology_id,
            token,
        }
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

    /// The fencing token: the mutation's [`token`](Mutation::token) when it was claimed.
    #[must_use]
    pub const fn token(&self) -> u64 {
        self.token
    }
}

/// The answer to a claim: the oldest pending mutation, or why there is none.
///
/// Deliberately exhaustive (not `#[non_exhaustive]`): an applier must decide what to do with
/// every answer, so a new kind of answer should stop its build rather than fall into a
/// wildcard arm.
///
/// On the wire (feature `serde`) `kind` names the variant, the other keys are its fields:
/// `{"kind":"claimed","mutation":{...Mutation},"claim":{...Lease}}`,
/// `{"kind":"busy","applying":9}`, `{"kind":"empty"}`.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use topostate::store::{Claim, MutationId};
///
/// let busy = Claim::Busy { applying: MutationId::new(9) };
/// assert_eq!(serde_json::to_string(&busy)?, r#"{"kind":"busy","applying":9}"#);
/// assert_eq!(serde_json::from_str::<Claim>(r#"{"kind":"empty"}"#)?, Claim::Empty);
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "kind", rename_all = "snake_case"))]
pub enum Claim {
    /// This mutation is now `applying`; the claim is the token for live edits and marks.
    Claimed {
        /// The row claimed (exactly the one moved to `applying`).
        mutation: Mutation,
        /// The token.
        lease: Lease,
    },
    /// Another mutation of this topology is `applying` under a lease that has not passed;
    /// claims are serial per topology.
    Busy {
        /// The mutation being applied.
        applying: MutationId,
    },
    /// No pending mutation.
    Empty,
}
