//! Reading rows back: the column lists the statements select, and one decoder per row type,
//! over any backend's [`Columns`].

use std::format;
use std::string::String;

use crate::store::{
    Decky, DeckyId, DeckyState, Edge, EdgeId, EventId, Lan, LanId, Mutation, MutationId,
    StatusEvent, StoreError, Timestamp, TopologyRecord,
};
use crate::{MutationOp, MutationState, TopologyId, TopologyStatus};

use super::Columns;

macro_rules! topology_columns {
    () => {
        "id, name, status, version, reason, needs_resync, created_at, status_changed_at"
    };
}
macro_rules! lan_columns {
    () => {
        "id, topology_id, name, subnet, is_dmz, network_id, x, y"
    };
}
macro_rules! decky_columns {
    () => {
        "id, topology_id, name, services, config, state, ip, last_error, x, y"
    };
}
macro_rules! edge_columns {
    () => {
        "id, topology_id, decky_id, lan_id, is_bridge, forwards_l3"
    };
}
macro_rules! event_columns {
    () => {
        "id, topology_id, from_status, to_status, at, reason"
    };
}
macro_rules! mutation_columns {
    () => {
        "id, topology_id, op, payload, state, requested_at, applied_at, reason, \
         claimed_at, lease_until, holder, attempts, token, edited_by"
    };
}
pub(crate) use {
    decky_columns, edge_columns, event_columns, lan_columns, mutation_columns, topology_columns,
};

/// Which row is being read, for [`StoreError::Corrupt`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct At {
    pub(crate) table: &'static str,
    pub(crate) id: i64,
}

impl At {
    pub(crate) fn corrupt(self, problem: String) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            row: self.id.to_string(),
            problem,
        }
    }
}

/// An id column of `row` (`idx` 0 is the row's own id, already read into `at`): a
/// positive integer, or the row is corrupt. No valid write stores another, and reading
/// `-5` as id `5` would hand out an id that names some other row.
fn id<R: Columns>(row: &R, at: At, idx: usize, column: &str) -> Result<u64, StoreError> {
    let key = if idx == 0 { at.id } else { row.int(at, idx)? };
    u64::try_from(key)
        .ok()
        .filter(|&id| id != 0)
        .ok_or_else(|| at.corrupt(format!("{column} {key} is not an id (ids are positive)")))
}

/// A value decoded from one result row.
pub(crate) trait FromRow: Sized {
    /// Decodes `row`, strictly.
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail>;
}

/// A computed integer in column 0 (an id, an owner).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key(pub(crate) i64);

impl FromRow for Key {
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail> {
        row.raw_int(0).map(Self)
    }
}

/// A computed boolean in column 0 (an `EXISTS`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flag(pub(crate) bool);

impl FromRow for Flag {
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail> {
        row.raw_flag(0).map(Self)
    }
}

/// A decky's key and name (columns 0 and 1).
#[derive(Debug)]
pub(crate) struct Named(pub(crate) i64, pub(crate) String);

impl FromRow for Named {
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail> {
        Ok(Self(row.raw_int(0)?, row.raw_text(1)?))
    }
}

/// What the guards of a write need to know about a topology.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Head {
    pub(crate) key: i64,
    pub(crate) status: TopologyStatus,
    pub(crate) version: u64,
}

impl FromRow for Head {
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail> {
        let at = row.at("topologies")?;
        Ok(Self {
            key: at.id,
            status: row.name(at, 1, TopologyStatus::parse)?,
            version: row.version(at, 2)?,
        })
    }
}

/// What fencing a claim needs of its mutation
/// (`id, topology_id, state, token, holder, lease_until, edited_by`).
#[derive(Clone, Debug)]
pub(crate) struct ClaimedRow {
    pub(crate) state: MutationState,
    pub(crate) token: u64,
    pub(crate) holder: Option<String>,
    pub(crate) lease_until: Option<Timestamp>,
    pub(crate) edited_by: Option<u64>,
}

impl FromRow for ClaimedRow {
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail> {
        let at = row.at("mutations")?;
        Ok(Self {
            state: row.name(at, 2, MutationState::parse)?,
            token: count(row, at, 3, "token")?,
            holder: row.opt_text(at, 4)?,
            lease_until: row.opt_int(at, 5)?.map(Timestamp::from_micros),
            edited_by: row
                .opt_int(at, 6)?
                .map(|t| count_of(at, t, "edited_by"))
                .transpose()?,
        })
    }
}

/// What the queues offer a claim (`now, work, earliest lease end`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Offer {
    pub(crate) work: bool,
    pub(crate) now: i64,
    pub(crate) earliest: Option<i64>,
}

impl FromRow for Offer {
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail> {
        let at = At {
            table: "mutations",
            id: 0,
        };
        Ok(Self {
            now: row.raw_int(0)?,
            work: row.raw_flag(1)?,
            earliest: row.opt_int(at, 2)?,
        })
    }
}

impl FromRow for TopologyRecord {
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail> {
        let at = row.at("topologies")?;
        Ok(Self {
            id: TopologyId::new(id(row, at, 0, "id")?),
            name: row.text(at, 1)?,
            status: row.name(at, 2, TopologyStatus::parse)?,
            version: row.version(at, 3)?,
            reason: row.opt_text(at, 4)?,
            needs_resync: row.flag(at, 5)?,
            created_at: Timestamp::from_micros(row.int(at, 6)?),
            status_changed_at: Timestamp::from_micros(row.int(at, 7)?),
        })
    }
}

impl FromRow for Lan {
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail> {
        let at = row.at("lans")?;
        Ok(Self {
            id: LanId::new(id(row, at, 0, "id")?),
            topology_id: TopologyId::new(id(row, at, 1, "topology_id")?),
            name: row.text(at, 2)?,
            subnet: row.text(at, 3)?,
            is_dmz: row.flag(at, 4)?,
            network_id: row.opt_text(at, 5)?,
            x: row.opt_real(at, 6)?,
            y: row.opt_real(at, 7)?,
        })
    }
}

impl FromRow for Decky {
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail> {
        let at = row.at("deckies")?;
        Ok(Self {
            id: DeckyId::new(id(row, at, 0, "id")?),
            topology_id: TopologyId::new(id(row, at, 1, "topology_id")?),
            name: row.text(at, 2)?,
            services: row.services(at, 3)?,
            config: row.opt_text(at, 4)?,
            state: row.name(at, 5, DeckyState::parse)?,
            ip: row.opt_text(at, 6)?,
            last_error: row.opt_text(at, 7)?,
            x: row.opt_real(at, 8)?,
            y: row.opt_real(at, 9)?,
        })
    }
}

impl FromRow for Edge {
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail> {
        let at = row.at("edges")?;
        Ok(Self {
            id: EdgeId::new(id(row, at, 0, "id")?),
            topology_id: TopologyId::new(id(row, at, 1, "topology_id")?),
            decky: DeckyId::new(id(row, at, 2, "decky_id")?),
            lan: LanId::new(id(row, at, 3, "lan_id")?),
            is_bridge: row.flag(at, 4)?,
            forwards_l3: row.flag(at, 5)?,
        })
    }
}

impl FromRow for StatusEvent {
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail> {
        let at = row.at("status_events")?;
        Ok(Self {
            id: EventId::new(id(row, at, 0, "id")?),
            topology_id: TopologyId::new(id(row, at, 1, "topology_id")?),
            from: row.name(at, 2, TopologyStatus::parse)?,
            to: row.name(at, 3, TopologyStatus::parse)?,
            at: Timestamp::from_micros(row.int(at, 4)?),
            reason: row.opt_text(at, 5)?,
        })
    }
}

impl FromRow for Mutation {
    fn from_row<R: Columns>(row: &R) -> Result<Self, R::Fail> {
        let at = row.at("mutations")?;
        Ok(Self {
            id: MutationId::new(id(row, at, 0, "id")?),
            topology_id: TopologyId::new(id(row, at, 1, "topology_id")?),
            op: row.name(at, 2, MutationOp::parse)?,
            payload: row.text(at, 3)?,
            state: row.name(at, 4, MutationState::parse)?,
            requested_at: Timestamp::from_micros(row.int(at, 5)?),
            applied_at: row.opt_int(at, 6)?.map(Timestamp::from_micros),
            reason: row.opt_text(at, 7)?,
            claimed_at: row.opt_int(at, 8)?.map(Timestamp::from_micros),
            lease_until: row.opt_int(at, 9)?.map(Timestamp::from_micros),
            holder: row.opt_text(at, 10)?,
            attempts: count(row, at, 11, "attempts")?,
            token: count(row, at, 12, "token")?,
            edited_by: row
                .opt_int(at, 13)?
                .map(|t| count_of(at, t, "edited_by"))
                .transpose()?,
        })
    }
}

/// A non-negative counter column (attempts, a token), or the row is corrupt.
fn count<R: Columns, T: TryFrom<i64>>(
    row: &R,
    at: At,
    idx: usize,
    column: &str,
) -> Result<T, StoreError> {
    count_of(at, row.int(at, idx)?, column)
}

fn count_of<T: TryFrom<i64>>(at: At, value: i64, column: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| {
        at.corrupt(format!(
            "{column} {value} is not a count (counts are 0 or more)"
        ))
    })
}
