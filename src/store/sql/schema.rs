//! What the SQL schemas share: the stored name lists their `CHECK`s are generated from, the
//! fingerprint of those declarations, the stamp in `meta` and the migration steps. The DDL
//! itself, and how a backend creates it safely, stay in each backend.

use std::format;
use std::string::String;

use crate::lifecycle::{Lifecycle, names_in_list, sql_in_list};
use crate::store::{DeckyState, StoreError};
use crate::{MutationOp, MutationState, TopologyStatus};

/// [`SCHEMA_VERSION`] as a literal, for statement texts built with `concat!` (PostgreSQL's
/// one-statement writes check the stored stamp against it in their own text).
macro_rules! schema_version {
    () => {
        3
    };
}
#[cfg(feature = "postgres")]
pub(crate) use schema_version;

/// The schema version this build writes and reads.
///
/// | version | change |
/// |---|---|
/// | 1 | the tables |
/// | 2 | the index `mutations (topology_id, id)`, which pages of a topology's mutations read |
/// | 3 | the claim lease columns of `mutations` (`claimed_at`, `lease_until`, `holder`, `attempts`, `token`, `edited_by`) |
pub(crate) const SCHEMA_VERSION: i64 = schema_version!();

/// The tables a SQL store keeps its rows in, each parent before its children (besides
/// `meta`, which holds the schema's stamp). Tools that read a store's database directly
/// (an audit, a backup check) take the list from here rather than spelling it again.
///
/// ```
/// assert_eq!(topostate::store::SQL_TABLES[0], "topologies");
/// assert!(topostate::store::SQL_TABLES.contains(&"mutations"));
/// ```
pub const SQL_TABLES: [&str; 6] = [
    "topologies",
    "lans",
    "deckies",
    "edges",
    "status_events",
    "mutations",
];

/// The `meta` keys.
pub(crate) const KEY_VERSION: &str = "schema_version";
pub(crate) const KEY_FINGERPRINT: &str = "fingerprint";

/// The canonical text a schema was generated from: the dialect, the schema version and
/// every stored name list, in declaration order.
///
/// A schema whose fingerprint differs was made by a build with a different declaration (a
/// status added, renamed or reordered), so its `CHECK` lists and rows may not match this
/// build; it is refused rather than half-read.
pub(crate) fn fingerprint_of(dialect: &str, version: i64) -> String {
    format!(
        "topostate {dialect} schema {version}; {} {}: {}; {} {}: {}; {} {}: {}; {} {}: {}",
        TopologyStatus::MACHINE,
        TopologyStatus::NOUN,
        <TopologyStatus as Lifecycle>::NAMES.join(","),
        MutationState::MACHINE,
        MutationState::NOUN,
        <MutationState as Lifecycle>::NAMES.join(","),
        "mutation",
        "op",
        MutationOp::NAMES.join(","),
        "decky",
        "state",
        DeckyState::NAMES.join(","),
    )
}

/// The `IN (...)` lists of the schema's `CHECK`s, generated from the declarations: the
/// only text put into the DDL by formatting, never from input.
#[derive(Debug)]
pub(crate) struct NameLists {
    /// Topology statuses.
    pub(crate) status: String,
    /// Mutation states.
    pub(crate) mutation_state: String,
    /// Mutation ops.
    pub(crate) op: String,
    /// Decky states.
    pub(crate) decky_state: String,
}

impl NameLists {
    pub(crate) fn new() -> Self {
        Self {
            status: sql_in_list::<TopologyStatus>(),
            mutation_state: sql_in_list::<MutationState>(),
            op: names_in_list(&MutationOp::NAMES),
            decky_state: names_in_list(&DeckyState::NAMES),
        }
    }
}

/// What the `meta` table says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) version: i64,
    pub(crate) fingerprint: String,
}

impl Stamp {
    /// Refuses a stamp this build cannot use as it is; `Ok(true)` when it is current.
    /// `dialect` is the fingerprint's, `reopen` what the advice says to do ("open it", a file;
    /// "connect", to a server).
    pub(crate) fn check(
        &self,
        dialect: &str,
        place: &str,
        reopen: &str,
    ) -> Result<bool, StoreError> {
        if self.version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt {
                table: "meta",
                row: String::from(KEY_VERSION),
                problem: format!(
                    "{place} has schema version {}, newer than the {SCHEMA_VERSION} this build \
                     of topostate knows; {reopen} with a newer build",
                    self.version
                ),
            });
        }
        let expected = fingerprint_of(dialect, self.version);
        if self.fingerprint != expected {
            return Err(StoreError::Corrupt {
                table: "meta",
                row: String::from(KEY_FINGERPRINT),
                problem: format!(
                    "schema fingerprint mismatch: {place} was made from a different lifecycle \
                     declaration and is refused (expected '{expected}', found '{}')",
                    self.fingerprint
                ),
            });
        }
        Ok(self.version == SCHEMA_VERSION)
    }
}

/// Runs every step of `migrations` from schema version `from` up to [`SCHEMA_VERSION`]
/// (`migrations[i]` moves a schema from version `i + 1` to `i + 2`): `run(step, version)`
/// applies one step and restamps the schema as `version`.
pub(crate) fn run_migrations<M>(
    migrations: &[M],
    from: i64,
    place: &str,
    mut run: impl FnMut(&M, i64) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut version = from;
    while version < SCHEMA_VERSION {
        let step = usize::try_from(version - 1)
            .ok()
            .and_then(|i| migrations.get(i))
            .ok_or_else(|| StoreError::Corrupt {
                table: "meta",
                row: String::from(KEY_VERSION),
                problem: format!("no migration from schema version {version} of {place}"),
            })?;
        version += 1;
        run(step, version)?;
    }
    Ok(())
}

/// Test helper: `ddl` holds every declared name in its `CHECK` lists.
#[cfg(test)]
pub(crate) fn assert_lists_every_name(ddl: &str) {
    for name in <TopologyStatus as Lifecycle>::NAMES {
        assert!(ddl.contains(&format!("'{name}'")), "{name}");
    }
    for name in MutationOp::NAMES {
        assert!(ddl.contains(&format!("'{name}'")), "{name}");
    }
    let lists = NameLists::new();
    assert!(
        ddl.contains(&lists.mutation_state),
        "{}",
        lists.mutation_state
    );
    assert!(ddl.contains(&lists.decky_state), "{}", lists.decky_state);
}

/// Test helper: `ddl` creates `meta` and exactly the [`SQL_TABLES`], in that order.
#[cfg(test)]
pub(crate) fn assert_creates_the_tables(ddl: &str) {
    let created: std::vec::Vec<&str> = ddl
        .split("CREATE TABLE ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    let mut want = std::vec!["meta"];
    want.extend(SQL_TABLES);
    assert_eq!(created, want);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_one_line_and_names_dialect_and_version() {
        for dialect in ["sqlite", "postgres"] {
            let f = fingerprint_of(dialect, SCHEMA_VERSION);
            assert!(!f.contains('\n'));
            assert!(f.starts_with(&format!(
                "topostate {dialect} schema {SCHEMA_VERSION}; topology status: pending,deploying,"
            )));
            assert!(f.contains("mutation op: add_lan,"));
        }
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let stamp = Stamp {
            version: SCHEMA_VERSION + 1,
            fingerprint: fingerprint_of("sqlite", SCHEMA_VERSION + 1),
        };
        let err = stamp
            .check("sqlite", "x.db", "open it")
            .unwrap_err()
            .to_string();
        assert!(err.contains("newer"), "{err}");
        assert!(err.contains("open it with a newer build"), "{err}");
    }

    #[test]
    fn a_different_dialect_is_a_mismatch() {
        let stamp = Stamp {
            version: SCHEMA_VERSION,
            fingerprint: fingerprint_of("postgres", SCHEMA_VERSION),
        };
        assert!(stamp.check("sqlite", "x.db", "open it").is_err());
        assert!(matches!(stamp.check("postgres", "db", "connect"), Ok(true)));
    }
}
