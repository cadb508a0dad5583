//! What the SQL backends share: the statements, the row decoders, the version guard, the
//! queue and the edit planner, written once over a small [`Session`] trait.
//!
//! A backend supplies a [`Session`] (run a statement returning one row, an optional row or
//! all rows, or execute one) and [`Columns`] for its rows (read a column, a mismatch being a
//! corrupt row). Everything else, in the contract's precedence, lives here; what is really
//! backend-specific (transactions, locking, retries, connection setup, the schema's DDL)
//! stays in the backend.
//!
//! Statements are written once, in PostgreSQL's spelling (`$1` placeholders, `::type`
//! casts where a `CASE` needs a type); [`stmt!`] derives SQLite's spelling (`?1`, no casts)
//! at compile time, so the two can never drift. (The derivation is textual, so a statement
//! holding `$` or `::` inside a string literal is a compile error.) A statement whose text really
//! differs (a row lock, `RETURNING id`) is spelled per dialect by `lockable!` and
//! [`insert_stmt!`].

mod edits;
mod ops;
pub(crate) mod rows;
pub(crate) mod schema;

use std::string::String;
use std::vec::Vec;

use crate::ParseStatusError;
use crate::store::{BackendError, Entity, StoreError};

pub(crate) use edits::apply_edits;
#[cfg(feature = "postgres")]
pub(crate) use ops::WORK_CHANNEL;
#[cfg(all(test, feature = "sqlite"))]
pub(crate) use ops::{CLAIM_NEXT, EVENTS_PAGE, MUTATIONS_PAGE, TOPOLOGIES_PAGE};
pub(crate) use ops::{
    INITIAL_SQL_VERSION, Lock, apply_live, claim_next_mutation, delete_topology, edit,
    enqueue_mutation, list_mutations, list_status_events, list_topologies, mark, offer, release,
    renew_lease, set_needs_resync, topology, topology_detail, transition_status,
};
#[cfg(feature = "postgres")]
pub(crate) use ops::{Settled, settle_claim, settle_fenced};
pub(crate) use rows::{At, FromRow};

/// One statement, as each enabled dialect spells it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stmt {
    /// SQLite's text: `?N` placeholders, no casts.
    #[cfg(feature = "sqlite")]
    pub(crate) sqlite: &'static str,
    /// PostgreSQL's text: `$N` placeholders.
    #[cfg(feature = "postgres")]
    pub(crate) pg: &'static str,
}

/// A [`Stmt`] from PostgreSQL's text, SQLite's derived from it at compile time.
macro_rules! stmt {
    ($pg:expr) => {{
        const PG: &str = $pg;
        const _: () = $crate::store::sql::check_literals(PG);
        $crate::store::sql::Stmt {
            #[cfg(feature = "sqlite")]
            sqlite: {
                const LEN: usize = $crate::store::sql::sqlite_len(PG);
                const BYTES: [u8; LEN] = $crate::store::sql::to_sqlite::<LEN>(PG);
                match core::str::from_utf8(&BYTES) {
                    Ok(text) => text,
                    Err(_) => panic!("a statement's SQLite text is not UTF-8"),
                }
            },
            #[cfg(feature = "postgres")]
            pg: PG,
        }
    }};
}
pub(crate) use stmt;

/// An `INSERT` [`Stmt`] run by [`Session::insert`]: PostgreSQL's text gets `RETURNING id`;
/// SQLite's has none and reads the new row's id from the connection instead, which costs
/// less than a `RETURNING` clause.
macro_rules! insert_stmt {
    ($pg:expr) => {{
        $crate::store::sql::Stmt {
            #[cfg(feature = "sqlite")]
            sqlite: {
                const PLAIN: $crate::store::sql::Stmt = $crate::store::sql::stmt!($pg);
                PLAIN.sqlite
            },
            #[cfg(feature = "postgres")]
            pg: concat!($pg, " RETURNING id"),
        }
    }};
}
pub(crate) use insert_stmt;

/// Where `pg` holds `$` or `::` inside a `'…'` string literal, if it does: [`stmt!`]'s
/// derivation of SQLite's spelling is textual and would rewrite them there. (A doubled `''`
/// inside a literal closes and reopens it, which keeps the count right.)
const fn literal_fault(pg: &str) -> Option<usize> {
    let b = pg.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\'' {
            quoted = !quoted;
        } else if quoted && (b[i] == b'$' || (b[i] == b':' && i + 1 < b.len() && b[i + 1] == b':'))
        {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Refuses, at compile time where [`stmt!`] evaluates it, a statement [`literal_fault`]
/// finds a fault in.
pub(crate) const fn check_literals(pg: &str) {
    assert!(
        literal_fault(pg).is_none(),
        "a statement holds `$` or `::` inside a string literal; stmt! would rewrite it"
    );
}

/// Does `b` belong to the type name of a `::type` cast?
#[cfg(feature = "sqlite")]
const fn cast_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'[' || b == b']'
}

/// Writes SQLite's spelling of `pg` into `out` as far as it fits (`$` becomes `?`, a
/// `::type` cast is dropped); the length of the whole spelling.
#[cfg(feature = "sqlite")]
const fn spell_sqlite(pg: &str, out: &mut [u8]) -> usize {
    let b = pg.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while i < b.len() {
        if b[i] == b':' && i + 1 < b.len() && b[i + 1] == b':' {
            i += 2;
            while i < b.len() && cast_byte(b[i]) {
                i += 1;
            }
        } else {
            if n < out.len() {
                out[n] = if b[i] == b'$' { b'?' } else { b[i] };
            }
            n += 1;
            i += 1;
        }
    }
    n
}

/// The length of SQLite's spelling of `pg` (see [`to_sqlite`]).
#[cfg(feature = "sqlite")]
pub(crate) const fn sqlite_len(pg: &str) -> usize {
    spell_sqlite(pg, &mut [])
}

/// SQLite's spelling of `pg`: `$N` placeholders become `?N`, `::type` casts are dropped.
#[cfg(feature = "sqlite")]
pub(crate) const fn to_sqlite<const N: usize>(pg: &str) -> [u8; N] {
    let mut out = [0u8; N];
    spell_sqlite(pg, &mut out);
    out
}

/// A statement parameter, as both dialects bind it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    /// An SQL integer.
    Int(i64),
    /// Text.
    Text(&'a str),
    /// Text or `NULL`.
    OptText(Option<&'a str>),
    /// A boolean.
    Bool(bool),
    /// A boolean or `NULL`.
    OptBool(Option<bool>),
    /// A float or `NULL`.
    OptReal(Option<f64>),
    /// A decky's service list, stored as each backend stores it.
    Services(&'a [String]),
    /// A service list or `NULL`.
    OptServices(Option<&'a [String]>),
}

/// One row of a result, read column by column.
///
/// The checked reads (`int` to `version`) refuse a value no valid write could have made as
/// [`StoreError::Corrupt`], naming the table, the row and the column; the `raw_` reads are
/// for values the statement computed itself, where a mismatch is the driver's error.
pub(crate) trait Columns {
    /// A failed step of the backend.
    type Fail: From<StoreError>;

    /// Which row this is (column 0 is its id), for the messages of the checked reads.
    fn at(&self, table: &'static str) -> Result<At, Self::Fail>;
    /// An integer column.
    fn int(&self, at: At, idx: usize) -> Result<i64, StoreError>;
    /// An integer column that may be `NULL`.
    fn opt_int(&self, at: At, idx: usize) -> Result<Option<i64>, StoreError>;
    /// A text column.
    fn text(&self, at: At, idx: usize) -> Result<String, StoreError>;
    /// A text column that may be `NULL`.
    fn opt_text(&self, at: At, idx: usize) -> Result<Option<String>, StoreError>;
    /// A boolean column.
    fn flag(&self, at: At, idx: usize) -> Result<bool, StoreError>;
    /// A float column that may be `NULL`.
    fn opt_real(&self, at: At, idx: usize) -> Result<Option<f64>, StoreError>;
    /// A decky's service list.
    fn services(&self, at: At, idx: usize) -> Result<Vec<String>, StoreError>;
    /// A column holding a declared name, parsed by `parse`.
    fn name<T>(
        &self,
        at: At,
        idx: usize,
        parse: fn(&str) -> Result<T, ParseStatusError>,
    ) -> Result<T, StoreError>;
    /// A version column: an integer in `1..=MAX_VERSION`.
    fn version(&self, at: At, idx: usize) -> Result<u64, StoreError>;
    /// A computed integer.
    fn raw_int(&self, idx: usize) -> Result<i64, Self::Fail>;
    /// A computed text.
    fn raw_text(&self, idx: usize) -> Result<String, Self::Fail>;
    /// A computed boolean.
    fn raw_flag(&self, idx: usize) -> Result<bool, Self::Fail>;
}

/// The reads of [`Columns`] that are one call of the backend's generic typed reads, for a
/// backend's `impl Columns`: the checked ones (`int` to `opt_real`) call `$get(row, at,
/// idx)`, the raw ones call the driver's row method `row.$raw(idx)`.
macro_rules! typed_reads {
    ($get:path, raw = $raw:ident) => {
        fn raw_int(&self, idx: usize) -> Result<i64, Self::Fail> {
            Ok(self.$raw(idx)?)
        }

        fn raw_text(&self, idx: usize) -> Result<String, Self::Fail> {
            Ok(self.$raw(idx)?)
        }

        fn raw_flag(&self, idx: usize) -> Result<bool, Self::Fail> {
            Ok(self.$raw(idx)?)
        }

        fn int(&self, at: $crate::store::sql::At, idx: usize) -> Result<i64, StoreError> {
            $get(self, at, idx)
        }

        fn opt_int(
            &self,
            at: $crate::store::sql::At,
            idx: usize,
        ) -> Result<Option<i64>, StoreError> {
            $get(self, at, idx)
        }

        fn text(&self, at: $crate::store::sql::At, idx: usize) -> Result<String, StoreError> {
            $get(self, at, idx)
        }

        fn opt_text(
            &self,
            at: $crate::store::sql::At,
            idx: usize,
        ) -> Result<Option<String>, StoreError> {
            $get(self, at, idx)
        }

        fn flag(&self, at: $crate::store::sql::At, idx: usize) -> Result<bool, StoreError> {
            $get(self, at, idx)
        }

        fn opt_real(
            &self,
            at: $crate::store::sql::At,
            idx: usize,
        ) -> Result<Option<f64>, StoreError> {
            $get(self, at, idx)
        }
    };
}
pub(crate) use typed_reads;

/// A connection or transaction of a backend, running the shared statements.
///
/// Generic, not a trait object: the operations are monomorphized per backend, so the
/// hot path costs what the backend's own calls cost.
///
/// The methods return futures, so one planner serves blocking and async drivers alike. A
/// blocking driver (rusqlite) does its work inside the future and completes it on the first
/// poll; its store drives the planner with [`ready`]. An async driver (tokio-postgres)
/// suspends on I/O, and its store awaits the planner on a runtime. The futures are not
/// declared `Send`: a planner future is `Send` exactly when its session's futures are (the
/// compiler sees through the concrete types), which an async backend asserts where it
/// boxes them.
pub(crate) trait Session {
    /// A failed step: a refusal to report as it is, or a driver error to wrap.
    type Fail: From<StoreError>;

    /// The refusal inside `fail`, or `fail` back if it is a driver error.
    fn refusal(fail: Self::Fail) -> Result<StoreError, Self::Fail>;
    /// Runs `sql` and decodes its one row; no row is a driver error.
    fn query_one<T: FromRow>(
        &mut self,
        sql: &Stmt,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<T, Self::Fail>>;
    /// Runs `sql` and decodes its first row, if any.
    fn query_opt<T: FromRow>(
        &mut self,
        sql: &Stmt,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Option<T>, Self::Fail>>;
    /// Runs `sql` and decodes every row; the first unreadable row fails the list.
    fn query_all<T: FromRow>(
        &mut self,
        sql: &Stmt,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Vec<T>, Self::Fail>>;
    /// Runs `first`, then `second`, each decoding its first row, if any, then `rest` on
    /// this session; neither `second` nor `rest` may depend on what came before it.
    /// PostgreSQL sends the pair with `rest`'s first statement (one round trip for all
    /// three, and none more for a write's `BEGIN` when they are its first statements);
    /// the server still runs each after the one before, in a snapshot of its own taken
    /// then. The pair's first error fails the call; a failure of `rest` is its own
    /// answer, the third.
    fn query_pair_before<A: FromRow, B: FromRow, U>(
        &mut self,
        first: (&Stmt, &[Param<'_>]),
        second: (&Stmt, &[Param<'_>]),
        rest: impl AsyncFnOnce(&mut Self) -> Result<U, Self::Fail>,
    ) -> impl Future<Output = Result<PairThen<A, B, U, Self::Fail>, Self::Fail>>;
    /// Runs the `INSERT` `sql` (made by [`insert_stmt!`]); the new row's id.
    fn insert(
        &mut self,
        sql: &Stmt,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<i64, Self::Fail>>;
    /// Runs the `INSERT … SELECT` `sql` (made by [`insert_stmt!`]), which may insert no
    /// row; the new row's id, if it inserted one.
    fn insert_new(
        &mut self,
        sql: &Stmt,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Option<i64>, Self::Fail>>;
    /// Runs `sql`; the number of rows it changed.
    fn execute(
        &mut self,
        sql: &Stmt,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<u64, Self::Fail>>;
}

/// What [`Session::query_pair_before`] answers: the pair's rows, and what the statements
/// after them came to.
pub(crate) type PairThen<A, B, U, F> = (Option<A>, Option<B>, Result<U, F>);

/// Runs a planner future whose session never suspends (a blocking driver) to completion
/// on the calling thread: it completes on its first poll.
///
/// Invariant: every future of a blocking [`Session`] does its work when polled and never
/// returns `Pending`, so neither does a planner future built only from them. Should that
/// ever be broken, the call fails with a backend error instead of spinning or hanging.
// Only SQLite's driver blocks (PostgreSQL's sessions are awaited); the tests drive
// planner futures with it under either backend.
#[cfg(any(feature = "sqlite", test))]
pub(crate) fn ready<T, E: From<StoreError>>(
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let mut future = core::pin::pin!(future);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        core::task::Poll::Ready(out) => out,
        core::task::Poll::Pending => Err(backend("a blocking statement runner suspended").into()),
    }
}

// ---- small helpers ---------------------------------------------------------------------

pub(crate) fn not_found(entity: Entity, id: u64) -> StoreError {
    StoreError::NotFound { entity, id }
}

pub(crate) fn backend(message: impl Into<String>) -> StoreError {
    StoreError::Backend(BackendError::new(message.into()))
}

/// The error of highest precedence among `errors` (the earliest on a tie).
pub(crate) fn pick<const N: usize>(errors: [Option<StoreError>; N]) -> Option<StoreError> {
    errors.into_iter().fold(None, StoreError::first)
}

/// `Err` with the refusal, if there is one.
pub(crate) fn refuse(errors: Option<StoreError>) -> Result<(), StoreError> {
    errors.map_or(Ok(()), Err)
}

/// A stored id as SQL's integer; ids above `i64::MAX` cannot exist.
pub(crate) fn key(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

/// The id of a key the database computed (a new row's, an owner's): positive, or the
/// database answered what no row can hold, a backend error rather than another row's id.
pub(crate) fn id_of(key: i64) -> Result<u64, StoreError> {
    u64::try_from(key)
        .ok()
        .filter(|&id| id != 0)
        .ok_or_else(|| {
            backend(std::format!(
                "the database returned {key}, which is no row's id"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_spelling_swaps_placeholders_and_drops_casts() {
        const S: Stmt = stmt!(concat!(
            "UPDATE t SET a = CASE WHEN $2 THEN $3::text ELSE a END, ",
            "s = CASE WHEN $4 THEN $5::text[] ELSE s END WHERE id = $1 AND n <> '↔'"
        ));
        #[cfg(feature = "sqlite")]
        assert_eq!(
            S.sqlite,
            "UPDATE t SET a = CASE WHEN ?2 THEN ?3 ELSE a END, \
             s = CASE WHEN ?4 THEN ?5 ELSE s END WHERE id = ?1 AND n <> '↔'"
        );
        #[cfg(feature = "postgres")]
        assert!(S.pg.contains("$5::text[]"));
        let _ = S;
    }

    #[test]
    fn placeholders_and_casts_inside_string_literals_are_faults() {
        // What stmt! refuses to compile: its SQLite spelling would rewrite these.
        assert_eq!(literal_fault("SELECT '$1'"), Some(8));
        assert_eq!(literal_fault("SELECT 'a::b' FROM t"), Some(9));
        assert_eq!(literal_fault("SELECT 'it''s $1'"), Some(14));
        // Outside literals they are what the derivation is for.
        assert_eq!(
            literal_fault("SELECT $1::text, 'a:b', '' WHERE x = $2"),
            None
        );
        assert_eq!(literal_fault("SELECT 'a' || $1 || 'b'"), None);
        assert_eq!(literal_fault("SELECT '$"), Some(8));
        assert_eq!(literal_fault(""), None);
    }
}

/// The planner's futures inherit `Send` from their session's, so an async backend can box
/// them as `Send` futures: checked here with a session whose futures are `Send`.
#[cfg(test)]
mod send_tests {
    use super::*;
    use crate::store::{ChildEdit, Lease, MutationId};
    use crate::{MutationOp, TopologyId};

    /// A session that answers nothing; only its types matter.
    struct Nothing;

    impl Session for Nothing {
        type Fail = StoreError;

        fn refusal(fail: StoreError) -> Result<StoreError, StoreError> {
            Ok(fail)
        }
        async fn query_one<T: FromRow>(
            &mut self,
            _: &Stmt,
            _: &[Param<'_>],
        ) -> Result<T, StoreError> {
            Err(backend("nothing"))
        }
        async fn query_opt<T: FromRow>(
            &mut self,
            _: &Stmt,
            _: &[Param<'_>],
        ) -> Result<Option<T>, StoreError> {
            Ok(None)
        }
        async fn query_all<T: FromRow>(
            &mut self,
            _: &Stmt,
            _: &[Param<'_>],
        ) -> Result<Vec<T>, StoreError> {
            Ok(Vec::new())
        }
        async fn query_pair_before<A: FromRow, B: FromRow, U>(
            &mut self,
            _: (&Stmt, &[Param<'_>]),
            _: (&Stmt, &[Param<'_>]),
            rest: impl AsyncFnOnce(&mut Self) -> Result<U, StoreError>,
        ) -> Result<(Option<A>, Option<B>, Result<U, StoreError>), StoreError> {
            Ok((None, None, rest(self).await))
        }
        async fn insert(&mut self, _: &Stmt, _: &[Param<'_>]) -> Result<i64, StoreError> {
            Err(backend("nothing"))
        }
        async fn insert_new(
            &mut self,
            _: &Stmt,
            _: &[Param<'_>],
        ) -> Result<Option<i64>, StoreError> {
            Ok(None)
        }
        async fn execute(&mut self, _: &Stmt, _: &[Param<'_>]) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    fn send<T: Send>(t: T) -> T {
        t
    }

    #[test]
    fn planner_futures_are_send_when_the_session_is() {
        let mut db = Nothing;
        let id = TopologyId::new(1);
        let edits = [ChildEdit::DeleteLan(crate::store::LanId::new(1).into())];
        let e = ready(send(edit(&mut db, id, Some(1), &edits))).unwrap_err();
        assert!(matches!(e, StoreError::NotFound { .. }), "{e:?}");
        let claim = Lease::from_parts(MutationId::new(1), id, 1);
        let _ = ready(send(apply_live(&mut db, &claim, &edits)));
        let _ = ready(send(enqueue_mutation(
            &mut db,
            id,
            MutationOp::ALL[0],
            "{}",
            None,
        )));
        let _ = ready(send(claim_next_mutation(
            &mut db,
            id,
            &crate::store::ClaimOptions::default(),
        )));
        let _ = ready(send(renew_lease(
            &mut db,
            &claim,
            core::time::Duration::from_secs(1),
        )));
        let _ = ready(send(release(&mut db, &claim)));
        let _ = ready(send(offer(&mut db, None)));
        let _ = ready(send(topology_detail(&mut db, id)));
    }
}
