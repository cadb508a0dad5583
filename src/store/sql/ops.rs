//! The operations of the contract that read and write the same way in every SQL backend,
//! each run inside the transaction its backend opened: guards in the contract's
//! precedence, then the writes, then the version bump.
//!
//! A write first reads the topology's head with [`Lock::Row`]: PostgreSQL takes the row
//! lock there (`FOR UPDATE`), which orders every writer of the topology; SQLite's
//! `BEGIN IMMEDIATE` already holds the file's write lock, so its text has no lock clause.

use std::string::String;
use std::vec::Vec;

use crate::store::lease::lease_micros;
use crate::store::policy::{
    LIVE, batch_version, bumped_version, delete_gate, free_form_gate, live_gate, stale_version,
    transition_refusal,
};
use crate::store::{
    ChildEdit, Claim, ClaimOptions, EditReport, Edited, Entity, EventId, Lease, Listed, Mutation,
    MutationId, Page, PageRequest, Precondition, StatusEvent, StoreError, Timestamp,
    TopologyDetail, TopologyRecord, Transitioned, check_text,
};
use crate::{INITIAL_VERSION, MAX_VERSION, MutationOp, MutationState, TopologyId, TopologyStatus};

use super::rows::{
    ClaimedRow, Head, Offer, decky_columns, edge_columns, event_columns, lan_columns,
    mutation_columns, topology_columns,
};
use super::{
    FromRow, Param, Session, Stmt, apply_edits, backend, id_of, insert_stmt, key, not_found, pick,
    refuse, stmt,
};

/// [`MAX_VERSION`] as the SQL integer it is stored as.
const MAX_SQL_VERSION: i64 = i64::MAX;
const _: () = assert!(MAX_VERSION == MAX_SQL_VERSION.unsigned_abs());

/// [`INITIAL_VERSION`] as the SQL integer it is stored as.
pub(crate) const INITIAL_SQL_VERSION: i64 = 1;
const _: () = assert!(INITIAL_VERSION == INITIAL_SQL_VERSION.unsigned_abs());

/// Whether a read of a topology takes its row lock (where the dialect has row locks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// A plain read.
    None,
    /// The read of a write: the row is locked until the transaction ends.
    Row,
}

/// A statement with and without `FOR UPDATE` (PostgreSQL); SQLite reads the same text both
/// ways, since its write transactions hold the whole file.
macro_rules! lockable {
    ($name:ident, $locked:ident, $sql:expr) => {
        const $name: Stmt = stmt!($sql);
        const $locked: Stmt = Stmt {
            #[cfg(feature = "sqlite")]
            sqlite: $name.sqlite,
            #[cfg(feature = "postgres")]
            pg: concat!($sql, " FOR UPDATE"),
        };
    };
}

lockable!(
    TOPOLOGY,
    TOPOLOGY_FOR_UPDATE,
    concat!(
        "SELECT ",
        topology_columns!(),
        " FROM topologies WHERE id = $1"
    )
);
lockable!(
    HEAD,
    HEAD_FOR_UPDATE,
    "SELECT id, status, version FROM topologies WHERE id = $1"
);

/// A topology row, or [`StoreError::NotFound`].
pub(crate) async fn topology<S: Session>(
    db: &mut S,
    id: TopologyId,
    lock: Lock,
) -> Result<TopologyRecord, S::Fail> {
    let sql = match lock {
        Lock::None => &TOPOLOGY,
        Lock::Row => &TOPOLOGY_FOR_UPDATE,
    };
    let found = match key(id.get()) {
        Some(k) => db.query_opt(sql, &[Param::Int(k)]).await?,
        None => None,
    };
    found.ok_or_else(|| not_found(Entity::Topology, id.get()).into())
}

/// The topology's head, or [`StoreError::NotFound`]; every write reads it with
/// [`Lock::Row`] before anything else.
async fn head<S: Session>(db: &mut S, id: TopologyId, lock: Lock) -> Result<Head, S::Fail> {
    let sql = match lock {
        Lock::None => &HEAD,
        Lock::Row => &HEAD_FOR_UPDATE,
    };
    let found = match key(id.get()) {
        Some(k) => db.query_opt(sql, &[Param::Int(k)]).await?,
        None => None,
    };
    found.ok_or_else(|| not_found(Entity::Topology, id.get()).into())
}

// ---- versions --------------------------------------------------------------------------

/// Bumps the version from `expected`, in the caller's transaction. The guard is repeated
/// in SQL: the `UPDATE` matches only `expected` and only below `i64::MAX`, so `version + 1`
/// is never computed where it would overflow (SQLite would turn it into a float).
async fn bump<S: Session>(db: &mut S, topology: i64, expected: u64) -> Result<u64, S::Fail> {
    const BUMP: Stmt = stmt!(
        "UPDATE topologies SET version = version + 1 \
         WHERE id = $1 AND version = $2 AND version < $3"
    );
    let changed = match key(expected) {
        Some(expected_key) => {
            db.execute(
                &BUMP,
                &[
                    Param::Int(topology),
                    Param::Int(expected_key),
                    Param::Int(MAX_SQL_VERSION),
                ],
            )
            .await?
        }
        None => 0,
    };
    if changed == 1 {
        return Ok(expected + 1);
    }
    // Unreachable while the caller checked the version under its lock in this
    // transaction; report what the table says rather than trusting that.
    let current = head(db, TopologyId::new(id_of(topology)?), Lock::None)
        .await?
        .version;
    Err(bumped_version(current, Some(expected))
        .err()
        .unwrap_or_else(|| backend("the version bump matched no row"))
        .into())
}

/// Bumps once if `expected` is given; the version after the write.
async fn finish_version<S: Session>(
    db: &mut S,
    head: &Head,
    expected: Option<u64>,
) -> Result<u64, S::Fail> {
    match expected {
        Some(v) => bump(db, head.key, v).await,
        None => Ok(head.version),
    }
}

// ---- the queue -------------------------------------------------------------------------

/// The database's clock in microseconds since the Unix epoch, read inside the statement:
/// SQLite's own `unixepoch('subsec')` (millisecond resolution, the clock of the process
/// running the statement), and in PostgreSQL the server's `clock_timestamp()` behind a
/// function of the same name the schema defines, so that one text serves both dialects.
macro_rules! db_now {
    () => {
        "CAST(unixepoch('subsec') * 1000000 AS BIGINT)"
    };
}

/// The channel PostgreSQL's queue writes notify and waiters listen on; the payload is the
/// topology's id.
#[cfg(feature = "postgres")]
pub(crate) const WORK_CHANNEL: &str = "topostate_work";

/// The PostgreSQL text of `$sql`, as a literal: as it is (`plain`), or also notifying
/// waiting appliers at commit (`notifying`: `$sql` ends in a `RETURNING` list, to which a
/// `pg_notify` column is added, read by nobody).
#[cfg(feature = "postgres")]
macro_rules! pg_text {
    (plain, $sql:expr) => {
        $sql
    };
    (notifying, $sql:expr) => {
        concat!($sql, ", pg_notify('topostate_work', topology_id::text)")
    };
}

/// A condition on a mutation row: every column the store reads back is one it can read
/// (an op it knows, positive ids, counts of 0 or more; the state is each statement's own
/// condition). On PostgreSQL a claim and the fenced writes of a claim (mark, renew,
/// release) take only rows that pass it, so that a row the store would refuse as corrupt
/// is never written: they commit in the same trip as they run, before their answer is
/// read. The read that explains their refusal then decodes the row, and names it corrupt.
/// (SQLite needs none: see `with_readable!`.)
#[cfg(feature = "postgres")]
macro_rules! readable_mutation {
    () => {
        "id > 0 AND topology_id > 0 AND attempts >= 0 AND token >= 0 \
         AND (edited_by IS NULL OR edited_by >= 0) AND op IN ('add_lan', 'remove_lan', \
         'add_decky', 'attach_decky', 'detach_decky', 'remove_decky', 'update_decky', \
         'update_lan')"
    };
}

/// PostgreSQL's text of a write of one statement (`$pg`, an `UPDATE … RETURNING`) that
/// checks the schema's stamp itself: it answers `$pg`'s rows if the stored version is this
/// build's, and otherwise fails as a whole, writing nothing, with an error naming what it
/// found (see `postgres::schema::SEAL_BROKEN`). The check is a one-time filter the server
/// evaluates before it reads a row of the write, whether or not the write takes one.
///
/// The stamp is read in the statement's snapshot, without a lock: the statement holds its
/// tables' locks before its snapshot is taken, and a migration locks every table before it
/// changes any (`postgres::schema::run_migrations`), so a migration either waits for the
/// statement to end or has committed before the statement's snapshot, where its stamp is
/// seen. Holding no lock on the stamp's row, the statement never waits on a migration
/// while holding a table the migration needs.
#[cfg(feature = "postgres")]
macro_rules! sealed {
    ($pg:expr) => {
        concat!(
            "WITH w AS (",
            $pg,
            ") SELECT w.* FROM w WHERE (SELECT CASE WHEN s.value = '",
            $crate::store::sql::schema::schema_version!(),
            "' THEN 1 ELSE ('topostate: the schema version is ' || COALESCE(s.value, 'missing'))",
            "::bigint END FROM (SELECT 1) AS one LEFT JOIN meta AS s ON s.key = 'schema_version') = 1"
        )
    };
}

/// The statement `$before… $after…` with [`readable_mutation!`] between them on
/// PostgreSQL, and `TRUE` on SQLite: there a write decodes its answer inside its
/// transaction, so a corrupt row rolls it back, and the condition's `IN` list cost a claim
/// cycle about 15 %. PostgreSQL's text is [`pg_text!`]'s `$make` of it, run as a write of
/// one statement ([`sealed!`]).
macro_rules! with_readable {
    ($make:ident, [$($before:expr),+ $(,)?], [$($after:expr),+ $(,)?]) => {
        Stmt {
            #[cfg(feature = "sqlite")]
            sqlite: stmt!(concat!($($before,)+ "TRUE", $($after,)+)).sqlite,
            #[cfg(feature = "postgres")]
            pg: sealed!(pg_text!($make, concat!($($before,)+ readable_mutation!(), $($after,)+))),
        }
    };
}

/// What fencing a claim needs of its mutation, or [`StoreError::NotFound`] (the
/// topology's if it is gone, else the mutation's, also when it belongs to another topology
/// than the claim says).
async fn claimed<S: Session>(db: &mut S, claim: &Lease) -> Result<ClaimedRow, S::Fail> {
    claimed_row(db, claim, Lock::None)
        .await?
        .map(|m| ClaimedRow {
            state: m.state,
            token: m.token,
            holder: m.holder,
            lease_until: m.lease_until,
            edited_by: m.edited_by,
        })
        .ok_or_else(|| not_found(Entity::Mutation, claim.id().get()).into())
}

lockable!(
    CLAIMED,
    CLAIMED_FOR_UPDATE,
    concat!(
        "SELECT ",
        mutation_columns!(),
        " FROM mutations WHERE id = $1 AND topology_id = $2"
    )
);

/// `claim`'s mutation, whole and decoded (a row the fenced writes skipped as unreadable,
/// `readable_mutation!`, is named corrupt here), if it is in the claim's topology.
async fn claimed_row<S: Session>(
    db: &mut S,
    claim: &Lease,
    lock: Lock,
) -> Result<Option<Mutation>, S::Fail> {
    let sql = match lock {
        Lock::None => &CLAIMED,
        Lock::Row => &CLAIMED_FOR_UPDATE,
    };
    match (key(claim.id().get()), key(claim.topology_id().get())) {
        (Some(id), Some(topology)) => {
            db.query_opt(sql, &[Param::Int(id), Param::Int(topology)])
                .await
        }
        _ => Ok(None),
    }
}

/// The fencing refusal of `claim` on its mutation: [`StoreError::LeaseLost`] if the token
/// is not the mutation's, else [`StoreError::WrongMutationState`] unless it is `applying`.
fn fence(claim: &Lease, row: &ClaimedRow) -> Option<StoreError> {
    if row.token != claim.token() {
        return Some(StoreError::LeaseLost {
            id: claim.id(),
            token: claim.token(),
            current_token: row.token,
            holder: row.holder.clone(),
            state: row.state,
            lease_until: row.lease_until,
        });
    }
    (row.state != MutationState::Applying).then_some(StoreError::WrongMutationState {
        id: claim.id(),
        expected: MutationState::Applying,
        found: row.state,
    })
}

/// Why a fenced write of `claim` found no row: the topology or mutation is gone, or the
/// claim is fenced off. `extra` is the call's own refusal (a bad reason or lease).
async fn diagnose<S: Session>(
    db: &mut S,
    claim: &Lease,
    extra: Option<StoreError>,
) -> Result<StoreError, S::Fail> {
    head(db, claim.topology_id(), Lock::None).await?;
    let row = claimed(db, claim).await?;
    Ok(pick([fence(claim, &row), extra])
        .unwrap_or_else(|| backend("the claimed mutation changed during the write")))
}

/// Runs the fenced write `sql` (`$1` the mutation, `$2` its topology, `$3` the token, the
/// rest `params`), or reports why the claim may not write.
async fn fenced<S: Session>(
    db: &mut S,
    claim: &Lease,
    sql: &Stmt,
    params: &[Param<'_>],
    refusal: Option<StoreError>,
) -> Result<Mutation, S::Fail> {
    let keys = (
        key(claim.id().get()),
        key(claim.topology_id().get()),
        i64::try_from(claim.token()).ok(),
    );
    let (Some(id), Some(topology), Some(token), None) = (keys.0, keys.1, keys.2, refusal.as_ref())
    else {
        // The slow path: an argument no row can match, or a refusal whose precedence
        // against the fencing refusals must be decided.
        return Err(diagnose(db, claim, refusal).await?.into());
    };
    let mut all = vec![Param::Int(id), Param::Int(topology), Param::Int(token)];
    all.extend_from_slice(params);
    match db.query_opt::<Mutation>(sql, &all).await? {
        Some(mutation) => Ok(mutation),
        None => Err(diagnose(db, claim, None).await?.into()),
    }
}

/// Moves a claimed mutation from `applying` to `to`; anything but `applying` under the
/// claim's token is refused.
pub(crate) async fn mark<S: Session>(
    db: &mut S,
    claim: &Lease,
    to: MutationState,
    reason: Option<&str>,
) -> Result<Mutation, S::Fail> {
    const MARK: Stmt = with_readable!(
        notifying,
        [
            "UPDATE mutations SET state = $4, applied_at = ",
            db_now!(),
            ", reason = $5 WHERE id = $1 AND topology_id = $2 AND token = $3 AND state = $6 AND ",
        ],
        [" RETURNING ", mutation_columns!()]
    );
    let invalid = reason.and_then(|r| check_text("reason", r).err());
    fenced(
        db,
        claim,
        &MARK,
        &[
            Param::Text(to.as_str()),
            Param::OptText(reason),
            Param::Text(MutationState::Applying.as_str()),
        ],
        invalid,
    )
    .await
}

/// Renews a claim's lease by `lease` microseconds from the database's clock.
pub(crate) async fn renew_lease<S: Session>(
    db: &mut S,
    claim: &Lease,
    lease: core::time::Duration,
) -> Result<Mutation, S::Fail> {
    const RENEW: Stmt = with_readable!(
        plain,
        [
            "UPDATE mutations SET lease_until = ",
            db_now!(),
            " + $4 WHERE id = $1 AND topology_id = $2 AND token = $3 AND state = $5 AND ",
        ],
        [" RETURNING ", mutation_columns!()]
    );
    let (micros, invalid) = match lease_micros(lease) {
        Ok(micros) => (micros, None),
        Err(e) => (0, Some(e)),
    };
    fenced(
        db,
        claim,
        &RENEW,
        &[
            Param::Int(micros),
            Param::Text(MutationState::Applying.as_str()),
        ],
        invalid,
    )
    .await
}

/// Puts a claimed mutation back to `pending`, first in line.
pub(crate) async fn release<S: Session>(db: &mut S, claim: &Lease) -> Result<Mutation, S::Fail> {
    const RELEASE: Stmt = with_readable!(
        notifying,
        [
            "UPDATE mutations SET state = $4, lease_until = NULL ",
            "WHERE id = $1 AND topology_id = $2 AND token = $3 AND state = $5 AND ",
        ],
        [" RETURNING ", mutation_columns!()]
    );
    fenced(
        db,
        claim,
        &RELEASE,
        &[
            Param::Text(MutationState::Pending.as_str()),
            Param::Text(MutationState::Applying.as_str()),
        ],
        None,
    )
    .await
}

#[cfg(feature = "postgres")]
/// What a write whose every answer was lost turns out to have done, read afterwards.
pub(crate) enum Settled<T> {
    /// It committed: its result.
    Committed(T),
    /// It cannot have committed: it may run again.
    NotCommitted,
    /// Nothing stored tells: why.
    Unknown(&'static str),
}

/// Whether a fenced write of `claim` that moves its mutation to `to` committed, read from
/// the row: under the claim's token, the mutation is in `to` only if a write of this
/// claim moved it there (a claim bumps the token, and `applied`/`failed` are final).
#[cfg(feature = "postgres")]
pub(crate) async fn settle_fenced<S: Session>(
    db: &mut S,
    claim: &Lease,
    to: MutationState,
) -> Result<Settled<Mutation>, S::Fail> {
    // Locked, so that a write of this claim still running on the server (its connection
    // lost, its transaction not) is waited for rather than read past.
    Ok(match claimed_row(db, claim, Lock::Row).await? {
        Some(row) if row.token == claim.token() && row.state == to => Settled::Committed(row),
        // A release leaves the mutation claimable: a claim since may have moved it on.
        Some(row) if row.token != claim.token() && to == MutationState::Pending => {
            Settled::Unknown("the mutation was claimed again since")
        }
        _ => Settled::NotCommitted,
    })
}

/// Whether a claim of topology `id` committed, read from its queue: only if the oldest
/// mutation not yet closed is `applying` can it have (the claim's lease and token are
/// the claimer's alone), and whose claim that is cannot be told.
#[cfg(feature = "postgres")]
pub(crate) async fn settle_claim<S: Session>(
    db: &mut S,
    id: TopologyId,
) -> Result<Settled<Claim>, S::Fail> {
    let Some(k) = key(id.get()) else {
        return Ok(Settled::NotCommitted);
    };
    // The topology's lock first, as a claim takes it: a claim still running on the
    // server (its connection lost, its transaction not) is waited for, not read past.
    if let Err(fail) = head(db, id, Lock::Row).await {
        // The topology is gone, and its queue with it; a driver error is asked again.
        S::refusal(fail)?;
        return Ok(Settled::NotCommitted);
    }
    Ok(match oldest_open(db, k).await? {
        Some(m) if m.state == MutationState::Applying => {
            Settled::Unknown("a mutation of the topology is claimed, maybe by this claim")
        }
        _ => Settled::NotCommitted,
    })
}

/// Whether a claim of topology `id` (any topology, for `None`) could take something now,
/// the database's time, and the earliest end of a running lease.
pub(crate) async fn offer<S: Session>(
    db: &mut S,
    id: Option<TopologyId>,
) -> Result<Offer, S::Fail> {
    const OFFER: Stmt = stmt!(concat!(
        "SELECT n.now, EXISTS (SELECT 1 FROM mutations m JOIN topologies t ON t.id = m.topology_id ",
        "WHERE ($1::bigint = 0 OR m.topology_id = $1) AND t.status IN ($2, $3) AND ",
        "((m.state = $4 AND (m.lease_until IS NULL OR m.lease_until <= n.now)) OR ",
        "(m.state = $5 AND NOT EXISTS (SELECT 1 FROM mutations a WHERE a.topology_id = m.topology_id ",
        "AND a.state = $4)))), ",
        "(SELECT min(m.lease_until) FROM mutations m JOIN topologies t ON t.id = m.topology_id ",
        "WHERE ($1::bigint = 0 OR m.topology_id = $1) AND t.status IN ($2, $3) AND m.state = $4) ",
        "FROM (SELECT ",
        db_now!(),
        " AS now) n"
    ));
    let topology = match id {
        Some(id) => head(db, id, Lock::None).await?.key,
        None => 0,
    };
    let (live_a, live_b) = (TopologyStatus::Active, TopologyStatus::Degraded);
    db.query_one(
        &OFFER,
        &[
            Param::Int(topology),
            Param::Text(live_a.as_str()),
            Param::Text(live_b.as_str()),
            Param::Text(MutationState::Applying.as_str()),
            Param::Text(MutationState::Pending.as_str()),
        ],
    )
    .await
}

// ---- the contract ----------------------------------------------------------------------

// ---- pages -----------------------------------------------------------------------------

/// Which way a list runs through its ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// Oldest first: a page holds ids above its cursor (topologies).
    Ascending,
    /// Newest first: a page holds ids below its cursor (events, mutations).
    Descending,
}

impl Order {
    /// The inclusive bound of the page after `cursor` (the first page: `None`), as the SQL
    /// integer the statement compares ids with; `None` when no stored id can be past it.
    fn bound(self, cursor: Option<u64>) -> Option<i64> {
        match (self, cursor) {
            (Self::Ascending, None) => Some(1),
            (Self::Descending, None) => Some(i64::MAX),
            // Stored ids are 1..=i64::MAX: past i64::MAX nothing follows.
            (Self::Ascending, Some(c)) => key(c.checked_add(1)?),
            // Every stored id is below a cursor past i64::MAX, none below 1.
            (Self::Descending, Some(c)) => {
                Some(key(c).unwrap_or(i64::MAX).checked_sub(1)?).filter(|b| *b >= 1)
            }
        }
    }

    /// The bound that continues a scan whose last row had the id `last`.
    fn bound_after(self, last: u64) -> Option<i64> {
        self.bound(Some(last))
    }
}

/// A batch of a page of topologies: ids from `$1` up, at most `$2` rows.
pub(crate) const TOPOLOGIES_PAGE: Stmt = stmt!(concat!(
    "SELECT ",
    topology_columns!(),
    " FROM topologies WHERE id >= $1 ORDER BY id LIMIT $2"
));

/// A batch of a page of topology `$1`'s events: ids from `$2` down, at most `$3` rows, read
/// through the index `status_events (topology_id, id)`.
pub(crate) const EVENTS_PAGE: Stmt = stmt!(concat!(
    "SELECT ",
    event_columns!(),
    " FROM status_events WHERE topology_id = $1 AND id <= $2 ORDER BY id DESC LIMIT $3"
));

/// A batch of a page of topology `$1`'s mutations: ids from `$2` down, at most `$3` rows,
/// read through the index `mutations (topology_id, id)` (schema version 2).
pub(crate) const MUTATIONS_PAGE: Stmt = stmt!(concat!(
    "SELECT ",
    mutation_columns!(),
    " FROM mutations WHERE topology_id = $1 AND id <= $2 ORDER BY id DESC LIMIT $3"
));

/// How many rows a filtered page reads at a time at least: a sparse filter passes over
/// many rows, and one round trip per `limit + 1` of them would be slow for small limits.
const SCAN_BATCH: usize = 256;

/// A page of `limit` rows `keep` accepts, read by `sql` in batches from the cursor on.
///
/// `sql` takes `params` followed by the inclusive id bound and the batch size, and returns
/// the rows in `order` from the bound on. Every row read is decoded, kept or not, so a
/// corrupt row fails the page that passes it (a filter never hides one); one matching row
/// past the limit is read to know whether another page follows.
#[allow(clippy::too_many_arguments)]
async fn scan<S: Session, T: FromRow + Listed>(
    db: &mut S,
    sql: &Stmt,
    params: &[Param<'_>],
    order: Order,
    cursor: Option<u64>,
    limit: usize,
    keep: Option<&(dyn Fn(&T) -> bool + Sync)>,
    raw: fn(T::Key) -> u64,
) -> Result<Page<T>, S::Fail> {
    let want = limit.saturating_add(1);
    let batch = if keep.is_some() {
        want.max(SCAN_BATCH)
    } else {
        want
    };
    let batch_key = i64::try_from(batch).map_err(|_| backend("a page batch too large"))?;
    let mut kept: Vec<T> = Vec::new();
    let mut bound = order.bound(cursor);
    while let Some(from) = bound {
        let mut all: Vec<Param<'_>> = params.to_vec();
        all.extend([Param::Int(from), Param::Int(batch_key)]);
        let rows: Vec<T> = db.query_all(sql, &all).await?;
        let more = rows.len() == batch;
        bound = match rows.last() {
            Some(last) if more => order.bound_after(raw(last.key())),
            _ => None,
        };
        kept.extend(rows.into_iter().filter(|r| keep.is_none_or(|k| k(r))));
        if kept.len() >= want {
            break;
        }
    }
    Ok(Page::from_rows(kept, limit))
}

/// A page of the topologies (of `status`, if given), oldest first. Every row passed is
/// read, filter or not, so a corrupt row fails the page instead of silently falling out of
/// it.
pub(crate) async fn list_topologies<S: Session>(
    db: &mut S,
    status: Option<TopologyStatus>,
    page: PageRequest<TopologyId>,
) -> Result<Page<TopologyRecord>, S::Fail> {
    let limit = page.checked_limit()?;
    let cursor = page.cursor().map(TopologyId::get);
    let keep = status.map(|s| move |t: &TopologyRecord| t.status == s);
    scan(
        db,
        &TOPOLOGIES_PAGE,
        &[],
        Order::Ascending,
        cursor,
        limit,
        keep.as_ref().map(|k| k as _),
        TopologyId::get,
    )
    .await
}

/// The topology and its children, from one snapshot.
pub(crate) async fn topology_detail<S: Session>(
    db: &mut S,
    id: TopologyId,
) -> Result<TopologyDetail, S::Fail> {
    const LANS: Stmt = stmt!(concat!(
        "SELECT ",
        lan_columns!(),
        " FROM lans WHERE topology_id = $1 ORDER BY name"
    ));
    const DECKIES: Stmt = stmt!(concat!(
        "SELECT ",
        decky_columns!(),
        " FROM deckies WHERE topology_id = $1 ORDER BY name"
    ));
    const EDGES: Stmt = stmt!(concat!(
        "SELECT ",
        edge_columns!(),
        " FROM edges WHERE topology_id = $1 ORDER BY id"
    ));
    let topology = topology(db, id, Lock::None).await?;
    let k = [Param::Int(
        key(id.get()).ok_or_else(|| not_found(Entity::Topology, id.get()))?,
    )];
    Ok(TopologyDetail {
        topology,
        lans: db.query_all(&LANS, &k).await?,
        deckies: db.query_all(&DECKIES, &k).await?,
        edges: db.query_all(&EDGES, &k).await?,
    })
}

/// A compare-and-set on the status, with its event.
pub(crate) async fn transition_status<S: Session>(
    db: &mut S,
    id: TopologyId,
    to: TopologyStatus,
    reason: Option<&str>,
    precondition: Precondition,
) -> Result<Transitioned, S::Fail> {
    const SET: Stmt = stmt!(
        "UPDATE topologies SET status = $2, status_changed_at = $3, reason = $4 \
         WHERE id = $1 AND status = $5"
    );
    const EVENT: Stmt = insert_stmt!(
        "INSERT INTO status_events (topology_id, from_status, to_status, at, reason) \
         VALUES ($1, $2, $3, $4, $5)"
    );
    // The lock first: the status checked below is the one this write replaces.
    let mut record = topology(db, id, Lock::Row).await?;
    let from = record.status;
    refuse(transition_refusal(
        from,
        record.version,
        to,
        reason,
        precondition,
    ))?;
    let k = key(id.get()).ok_or_else(|| not_found(Entity::Topology, id.get()))?;
    let now = Timestamp::now();
    // Compare-and-set on the status: the write matches only the status just checked.
    let changed = db
        .execute(
            &SET,
            &[
                Param::Int(k),
                Param::Text(to.as_str()),
                Param::Int(now.as_micros()),
                Param::OptText(reason),
                Param::Text(from.as_str()),
            ],
        )
        .await?;
    if changed != 1 {
        return Err(backend("the status changed during its own transaction").into());
    }
    let event = db
        .insert(
            &EVENT,
            &[
                Param::Int(k),
                Param::Text(from.as_str()),
                Param::Text(to.as_str()),
                Param::Int(now.as_micros()),
                Param::OptText(reason),
            ],
        )
        .await?;
    record.status = to;
    record.status_changed_at = now;
    record.reason = reason.map(String::from);
    Ok(Transitioned {
        event: StatusEvent {
            id: EventId::new(id_of(event)?),
            topology_id: id,
            from,
            to,
            at: now,
            reason: record.reason.clone(),
        },
        topology: record,
    })
}

/// A page of the topology's events, newest first, read through the
/// `status_events (topology_id, id)` index: its cost does not grow with the log.
pub(crate) async fn list_status_events<S: Session>(
    db: &mut S,
    id: TopologyId,
    page: PageRequest<EventId>,
) -> Result<Page<StatusEvent>, S::Fail> {
    let limit = page.checked_limit()?;
    let head = head(db, id, Lock::None).await?;
    let cursor = page.cursor().map(EventId::get);
    scan(
        db,
        &EVENTS_PAGE,
        &[Param::Int(head.key)],
        Order::Descending,
        cursor,
        limit,
        None,
        EventId::get,
    )
    .await
}

/// A batch of free-form child edits: `pending` only, one bump for the batch.
pub(crate) async fn edit<S: Session>(
    db: &mut S,
    id: TopologyId,
    expected_version: Option<u64>,
    edits: &[ChildEdit],
) -> Result<EditReport, S::Fail> {
    let head = head(db, id, Lock::Row).await?;
    let bumps = !edits.iter().all(ChildEdit::is_noop);
    let (touched, refused) = apply_edits(db, head.key, edits).await?;
    refuse(pick([
        refused,
        free_form_gate(head.status).err(),
        batch_version(head.version, expected_version, edits).err(),
    ]))?;
    // A batch of no-ops writes nothing, so it bumps nothing.
    let version = finish_version(db, &head, expected_version.filter(|_| bumps)).await?;
    Ok(EditReport { touched, version })
}

/// `UPDATE topologies SET needs_resync`: one statement, no gate, no bump.
pub(crate) async fn set_needs_resync<S: Session>(
    db: &mut S,
    id: TopologyId,
    needs_resync: bool,
) -> Result<(), S::Fail> {
    const SET: Stmt = stmt!("UPDATE topologies SET needs_resync = $2 WHERE id = $1");
    let changed = match key(id.get()) {
        Some(k) => {
            db.execute(&SET, &[Param::Int(k), Param::Bool(needs_resync)])
                .await?
        }
        None => 0,
    };
    if changed == 0 {
        return Err(not_found(Entity::Topology, id.get()).into());
    }
    Ok(())
}

/// The `INSERT` of an enqueue.
macro_rules! enqueue_sql {
    () => {
        "INSERT INTO mutations (topology_id, op, payload, state, requested_at) \
         VALUES ($1, $2, $3, $4, $5)"
    };
}

/// Queues a mutation of a live topology.
pub(crate) async fn enqueue_mutation<S: Session>(
    db: &mut S,
    id: TopologyId,
    op: MutationOp,
    payload: &str,
    expected_version: Option<u64>,
) -> Result<Edited<MutationId>, S::Fail> {
    // PostgreSQL's text notifies waiting appliers (at commit) through a column of its
    // `RETURNING` list, read by nobody.
    const INSERT: Stmt = Stmt {
        #[cfg(feature = "sqlite")]
        sqlite: insert_stmt!(enqueue_sql!()).sqlite,
        #[cfg(feature = "postgres")]
        pg: concat!(
            enqueue_sql!(),
            " RETURNING id, pg_notify('topostate_work', topology_id::text)"
        ),
    };
    let head = head(db, id, Lock::Row).await?;
    refuse(pick([
        live_gate(head.status).err(),
        check_text("payload", payload).err(),
        bumped_version(head.version, expected_version).err(),
    ]))?;
    let mutation = db
        .insert(
            &INSERT,
            &[
                Param::Int(head.key),
                Param::Text(op.as_str()),
                Param::Text(payload),
                Param::Text(MutationState::Pending.as_str()),
                Param::Int(Timestamp::now().as_micros()),
            ],
        )
        .await?;
    let version = finish_version(db, &head, expected_version).await?;
    Ok(Edited {
        id: MutationId::new(id_of(mutation)?),
        version,
    })
}

/// The id of topology `$1`'s oldest mutation in state `$2` or `$3` (`applying`,
/// `pending`): the lesser of two `min(id)`s, one seek each in the `(topology_id, state,
/// id)` index.
macro_rules! oldest_open_id {
    () => {
        concat!(
            "(SELECT min(id) FROM (",
            "SELECT min(id) AS id FROM mutations WHERE topology_id = $1 AND state = $2 ",
            "UNION ALL SELECT min(id) FROM mutations WHERE topology_id = $1 AND state = $3",
            ") AS oldest)"
        )
    };
}

/// The claim's statement (`CLAIM_NEXT`), `$lock` the topology's row lock (none on SQLite,
/// whose write transaction holds the whole file), `$readable` the readable-row condition
/// (see `with_readable!`).
macro_rules! claim_next {
    ($lock:literal, $readable:expr) => {
        concat!(
            "UPDATE mutations SET state = $2, claimed_at = ",
            db_now!(),
            ", lease_until = ",
            db_now!(),
            " + $4, holder = $5, attempts = attempts + 1, token = token + 1 WHERE id = ",
            oldest_open_id!(),
            " AND (state = $3 OR lease_until IS NULL OR lease_until <= ",
            db_now!(),
            ") AND EXISTS (SELECT 1 FROM topologies WHERE id = $1 AND status IN ($6, $7)",
            $lock,
            ") AND ",
            $readable,
            " RETURNING ",
            mutation_columns!()
        )
    };
}

/// One statement picks the oldest mutation not yet closed and moves exactly it, if it is
/// pending or its lease has passed: the one `applying`, if any, is older than every
/// pending one (it was the oldest pending when claimed), so the queue stays in order.
/// The oldest is the lesser of two `min(id)`s, one per state, each a single seek in the
/// `(topology_id, state, id)` index; `state IN (..) ORDER BY id` walked the topology's
/// mutations by id past every closed one, so a claim grew with the queue's history.
///
/// The topology's row is checked live in the same statement, and on PostgreSQL locked
/// `FOR SHARE` there: a transition (which locks it `FOR UPDATE`) waits for the claim's
/// transaction, or the claim for the transition's and then sees its status. Two claims of
/// one topology meet on the mutation's row instead: the second waits for the first, then
/// finds the row claimed (its lease running) and takes nothing, so the queue stays serial.
pub(crate) const CLAIM_NEXT: Stmt = Stmt {
    #[cfg(feature = "sqlite")]
    sqlite: stmt!(claim_next!("", "TRUE")).sqlite,
    #[cfg(feature = "postgres")]
    pg: sealed!(claim_next!(" FOR SHARE", readable_mutation!())),
};

/// The oldest mutation of topology `key` not yet closed, whole (by the same seeks as
/// [`CLAIM_NEXT`]): a row a claim skipped as unreadable is named corrupt here.
async fn oldest_open<S: Session>(db: &mut S, key: i64) -> Result<Option<Mutation>, S::Fail> {
    const OLDEST_OPEN: Stmt = stmt!(concat!(
        "SELECT ",
        mutation_columns!(),
        " FROM mutations WHERE id = ",
        oldest_open_id!()
    ));
    db.query_opt::<Mutation>(
        &OLDEST_OPEN,
        &[
            Param::Int(key),
            Param::Text(MutationState::Applying.as_str()),
            Param::Text(MutationState::Pending.as_str()),
        ],
    )
    .await
}

/// Claims the next mutation: the one `applying` if its lease has passed (a takeover), else
/// the oldest pending one.
pub(crate) async fn claim_next_mutation<S: Session>(
    db: &mut S,
    id: TopologyId,
    options: &ClaimOptions,
) -> Result<Claim, S::Fail> {
    // `CLAIM_NEXT` checks the topology is live too, so that it never claims in one the
    // gate below refuses (the refusal would roll the claim back, but nothing is written in
    // the first place).
    const _: () = assert!(LIVE.len() == 2, "CLAIM_NEXT names each live status");
    let checked = options.checked();
    let (Ok((lease, holder)), Some(k)) = (&checked, key(id.get())) else {
        // A bad lease or holder ranks below the topology's own refusals: read them first.
        let head = head(db, id, Lock::Row).await?;
        live_gate(head.status)?;
        return Err(checked
            .err()
            .unwrap_or_else(|| backend("a claim's topology key vanished"))
            .into());
    };
    // One statement (on PostgreSQL, its own transaction, with the schema's stamp checked in
    // it): it checks the topology is live and takes the oldest open mutation if it
    // may (see `CLAIM_NEXT` for how it meets a transition or another claim). (PostgreSQL's
    // `SKIP LOCKED` could only break oldest-first here.)
    let claimed = db
        .query_opt::<Mutation>(
            &CLAIM_NEXT,
            &[
                Param::Int(k),
                Param::Text(MutationState::Applying.as_str()),
                Param::Text(MutationState::Pending.as_str()),
                Param::Int(*lease),
                Param::OptText(*holder),
                Param::Text(LIVE[0].as_str()),
                Param::Text(LIVE[1].as_str()),
            ],
        )
        .await?;
    if let Some(mutation) = claimed {
        return Ok(Claim::Claimed {
            lease: Lease::from_parts(mutation.id, id, mutation.token),
            mutation,
        });
    }
    // Nothing taken: why. On PostgreSQL the claim has committed by now (it went out with
    // its `COMMIT`), so these reads are statements of their own: a transition since is
    // seen, and a mutation closed or released since is not seen busy (as a close between
    // a claim and its busy check never was).
    let head = head(db, id, Lock::None).await?;
    live_gate(head.status)?;
    Ok(match oldest_open(db, head.key).await? {
        Some(m) if m.state == MutationState::Applying => Claim::Busy { applying: m.id },
        _ => Claim::Empty,
    })
}

/// Child edits under a claim: no status gate of `pending`, no bump; the claim must hold the
/// mutation, and live edits committed under an earlier claim are not applied again.
pub(crate) async fn apply_live<S: Session>(
    db: &mut S,
    claim: &Lease,
    edits: &[ChildEdit],
) -> Result<EditReport, S::Fail> {
    // The fence, read by an `UPDATE` that also names this claim the mutation's editor if
    // it has none yet: a refusal below rolls that back with the edits, so it stays only
    // when they commit. On PostgreSQL it locks the mutation's row too, so a close of the
    // claim (which takes no topology lock) cannot slip between this check and the edits.
    const FENCE: Stmt = stmt!(
        "UPDATE mutations SET edited_by = COALESCE(edited_by, $3) \
         WHERE id = $1 AND topology_id = $2 \
         RETURNING id, topology_id, state, token, holder, lease_until, edited_by"
    );
    let ids = (
        key(claim.topology_id().get()),
        key(claim.id().get()),
        i64::try_from(claim.token()).ok(),
    );
    let (head, row, edited) = match ids {
        (Some(topology), Some(mutation), Some(token)) => {
            // The topology's lock, then the fence, sent with the edits' first statement
            // (one round trip on PostgreSQL, with the transaction's `BEGIN`): the fence
            // runs once the lock is granted, the edits after it. The edits do not need
            // their answers: whatever they find refused below rolls the edits back.
            let (head, row, edited) = db
                .query_pair_before::<Head, ClaimedRow, _>(
                    (&HEAD_FOR_UPDATE, &[Param::Int(topology)]),
                    (
                        &FENCE,
                        &[
                            Param::Int(mutation),
                            Param::Int(topology),
                            Param::Int(token),
                        ],
                    ),
                    async |db| apply_edits(db, topology, edits).await,
                )
                .await?;
            // A topology or mutation that is gone is the refusal, whatever the edits
            // met (on PostgreSQL, a LAN of a topology that is gone breaks its key).
            let head =
                head.ok_or_else(|| not_found(Entity::Topology, claim.topology_id().get()))?;
            let row = row.ok_or_else(|| not_found(Entity::Mutation, claim.id().get()))?;
            (head, row, edited)
        }
        // An id or token no row can hold: read what the refusal below names (there always
        // is one, and nothing is written).
        _ => {
            let head = head(db, claim.topology_id(), Lock::Row).await?;
            let row = claimed(db, claim).await?;
            let edited = apply_edits(db, head.key, edits).await;
            (head, row, edited)
        }
    };
    let committed = row
        .edited_by
        .filter(|&t| t != claim.token())
        .map(|edited_by| StoreError::EditsCommitted {
            id: claim.id(),
            edited_by,
        });
    let (touched, refused) = edited?;
    refuse(pick([
        refused,
        fence(claim, &row),
        committed,
        live_gate(head.status).err(),
    ]))?;
    Ok(EditReport {
        touched,
        version: head.version,
    })
}

/// A page of the topology's mutations (in `state`, if given), newest first, read through
/// the `mutations (topology_id, id)` index; as for topologies, a filter never hides a
/// corrupt row.
pub(crate) async fn list_mutations<S: Session>(
    db: &mut S,
    id: TopologyId,
    state: Option<MutationState>,
    page: PageRequest<MutationId>,
) -> Result<Page<Mutation>, S::Fail> {
    let limit = page.checked_limit()?;
    let head = head(db, id, Lock::None).await?;
    let cursor = page.cursor().map(MutationId::get);
    let keep = state.map(|s| move |m: &Mutation| m.state == s);
    scan(
        db,
        &MUTATIONS_PAGE,
        &[Param::Int(head.key)],
        Order::Descending,
        cursor,
        limit,
        keep.as_ref().map(|k| k as _),
        MutationId::get,
    )
    .await
}

/// Deletes a topology from a deletable status; its children go by `ON DELETE CASCADE`.
pub(crate) async fn delete_topology<S: Session>(
    db: &mut S,
    id: TopologyId,
    expected_version: Option<u64>,
) -> Result<(), S::Fail> {
    const DELETE: Stmt = stmt!("DELETE FROM topologies WHERE id = $1");
    let head = head(db, id, Lock::Row).await?;
    refuse(pick([
        delete_gate(head.status).err(),
        stale_version(head.version, expected_version),
    ]))?;
    // One row: the children go by ON DELETE CASCADE, in the same transaction.
    db.execute(&DELETE, &[Param::Int(head.key)]).await?;
    Ok(())
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use crate::MutationOp;

    /// The claim and the fenced writes take only rows of ops the store knows: every op
    /// must be listed, and nothing else, or its mutations would never be claimed.
    #[test]
    fn readable_mutation_lists_every_op_and_no_other() {
        let listed: std::vec::Vec<&str> = readable_mutation!()
            .split('\'')
            .skip(1)
            .step_by(2)
            .collect();
        let known: std::vec::Vec<&str> = MutationOp::ALL.iter().map(|op| op.as_str()).collect();
        assert_eq!(listed, known);
    }
}
