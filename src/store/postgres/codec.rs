//! Reading stored values back, refusing the ones no valid write could have made.
//!
//! The schema's types and `CHECK`s already refuse most of them; these checks are what is
//! left when a row was written around the store (constraints dropped, a hand-made table):
//! an unknown name, an impossible version, a `NULL` where a value belongs.

use std::format;
use std::string::String;
use std::vec::Vec;

use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use crate::error::Quoted;
use crate::store::StoreError;
use crate::store::sql::{At, Columns, typed_reads};
use crate::{MAX_VERSION, ParseStatusError};

use super::Fail;

/// A column of any type `FromSql` reads, a type mismatch or an unexpected `NULL` being a
/// corrupt row.
fn get<'r, T: FromSql<'r>>(row: &'r Row, at: At, idx: usize) -> Result<T, StoreError> {
    row.try_get::<_, T>(idx).map_err(|e| {
        at.corrupt(format!(
            "column {}: {} ({e})",
            column_name(row, idx),
            describe(row, idx)
        ))
    })
}

impl Columns for Row {
    type Fail = Fail;

    fn at(&self, table: &'static str) -> Result<At, Fail> {
        let id = self.try_get::<_, i64>(0).map_err(|e| StoreError::Corrupt {
            table,
            row: String::from("?"),
            problem: format!("column id: {e}"),
        })?;
        Ok(At { table, id })
    }

    typed_reads!(get, raw = try_get);

    /// A decky's service list, stored as a `text[]`.
    fn services(&self, at: At, idx: usize) -> Result<Vec<String>, StoreError> {
        get(self, at, idx)
    }

    fn name<T>(
        &self,
        at: At,
        idx: usize,
        parse: fn(&str) -> Result<T, ParseStatusError>,
    ) -> Result<T, StoreError> {
        let parsed = match self.try_get::<_, Option<&str>>(idx) {
            Ok(Some(text)) => parse(text).map_err(|e| e.to_string()),
            Ok(None) => Err(String::from("NULL, not a name")),
            Err(e) => Err(format!("{}, not a name ({e})", describe(self, idx))),
        };
        parsed
            .map_err(|problem| at.corrupt(format!("column {}: {problem}", column_name(self, idx))))
    }

    fn version(&self, at: At, idx: usize) -> Result<u64, StoreError> {
        match self.try_get::<_, Option<i64>>(idx) {
            Ok(Some(v)) if v >= 1 => Ok(v.unsigned_abs()),
            Ok(Some(v)) => Err(at.corrupt(format!(
                "column {}: invalid topology version {v} (versions run from 1 to {MAX_VERSION})",
                column_name(self, idx)
            ))),
            Ok(None) => Err(at.corrupt(format!(
                "column {}: NULL, not an integer version",
                column_name(self, idx)
            ))),
            Err(e) => Err(at.corrupt(format!(
                "column {}: {}, not an integer version ({e})",
                column_name(self, idx),
                describe(self, idx)
            ))),
        }
    }
}

fn column_name(row: &Row, idx: usize) -> &str {
    row.columns().get(idx).map_or("?", |c| c.name())
}

/// A stored value as a message shows it, as far as it can be read generically.
fn describe(row: &Row, idx: usize) -> String {
    let ty = row
        .columns()
        .get(idx)
        .map_or_else(|| String::from("?"), |c| c.type_().name().to_owned());
    if let Ok(Some(text)) = row.try_get::<_, Option<&str>>(idx) {
        format!("the {ty} {}", Quoted(text))
    } else if let Ok(None) = row.try_get::<_, Option<AnyValue>>(idx) {
        String::from("NULL")
    } else {
        format!("a value of type {ty}")
    }
}

/// Any non-`NULL` value of any type, to tell `NULL` from the rest.
struct AnyValue;

impl<'a> FromSql<'a> for AnyValue {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        _: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self)
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}
