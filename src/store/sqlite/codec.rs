//! Reading stored values back, refusing the ones no valid write could have made, and the
//! JSON text of a decky's service list.

use std::format;
use std::string::String;
use std::vec::Vec;

use rusqlite::Row;
use rusqlite::types::{FromSql, Null, ToSql, ToSqlOutput, Value, ValueRef};

use crate::error::Quoted;
use crate::store::StoreError;
use crate::store::sql::{At, Columns, Param, typed_reads};
use crate::{MAX_VERSION, ParseStatusError};

use super::Fail;

/// A column of any type `FromSql` reads, a type mismatch being a corrupt row.
fn get<T: FromSql>(row: &Row<'_>, at: At, idx: usize) -> Result<T, StoreError> {
    row.get::<_, T>(idx).map_err(|e| {
        let value = row.get_ref(idx).ok();
        at.corrupt(format!(
            "column {}: {} ({e})",
            column_name(row, idx),
            describe_ref(value)
        ))
    })
}

impl Columns for Row<'_> {
    type Fail = Fail;

    fn at(&self, table: &'static str) -> Result<At, Fail> {
        Ok(At {
            table,
            id: self.get(0)?,
        })
    }

    typed_reads!(get, raw = get);

    /// A decky's service list, stored as a JSON array of strings.
    fn services(&self, at: At, idx: usize) -> Result<Vec<String>, StoreError> {
        let text: String = get(self, at, idx)?;
        decode_services(&text).map_err(|problem| {
            at.corrupt(format!(
                "column {}: {} is not a JSON list of strings: {problem}",
                column_name(self, idx),
                Quoted(&text)
            ))
        })
    }

    fn name<T>(
        &self,
        at: At,
        idx: usize,
        parse: fn(&str) -> Result<T, ParseStatusError>,
    ) -> Result<T, StoreError> {
        let value = self.get_ref(idx).map_err(|e| at.corrupt(e.to_string()))?;
        let parsed = match value {
            ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => parse(text).map_err(|e| e.to_string()),
                Err(_) => Err(format!("{} is not UTF-8", describe_ref(Some(value)))),
            },
            other => Err(format!("{}, not a name", describe_ref(Some(other)))),
        };
        parsed
            .map_err(|problem| at.corrupt(format!("column {}: {problem}", column_name(self, idx))))
    }

    fn version(&self, at: At, idx: usize) -> Result<u64, StoreError> {
        let value = self.get_ref(idx).map_err(|e| at.corrupt(e.to_string()))?;
        match value {
            ValueRef::Integer(v) if v >= 1 => Ok(v.unsigned_abs()),
            ValueRef::Integer(v) => Err(at.corrupt(format!(
                "column {}: invalid topology version {v} (versions run from 1 to {MAX_VERSION})",
                column_name(self, idx)
            ))),
            other => Err(at.corrupt(format!(
                "column {}: {}, not an integer version",
                column_name(self, idx),
                describe_ref(Some(other))
            ))),
        }
    }
}

/// Binds as the schema stores it: a service list as its JSON text.
impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Int(v) => ToSqlOutput::from(v),
            Param::Text(text) => ToSqlOutput::from(text),
            Param::OptText(Some(text)) => ToSqlOutput::from(text),
            Param::Bool(b) | Param::OptBool(Some(b)) => ToSqlOutput::from(b),
            Param::OptReal(Some(r)) => ToSqlOutput::from(r),
            Param::Services(services) => ToSqlOutput::from(encode_services(services)),
            Param::OptServices(Some(services)) => ToSqlOutput::from(encode_services(services)),
            Param::OptText(None)
            | Param::OptBool(None)
            | Param::OptReal(None)
            | Param::OptServices(None) => ToSqlOutput::from(Null),
        })
    }
}

fn column_name<'r>(row: &'r Row<'_>, idx: usize) -> &'r str {
    row.as_ref().column_name(idx).unwrap_or("?")
}

/// A stored value as a message shows it.
pub(super) fn describe_ref(value: Option<ValueRef<'_>>) -> String {
    match value {
        None => String::from("missing"),
        Some(ValueRef::Null) => String::from("NULL"),
        Some(ValueRef::Integer(i)) => format!("the integer {i}"),
        Some(ValueRef::Real(r)) => format!("the real number {r}"),
        Some(ValueRef::Text(t)) => format!("the text {}", Quoted(&String::from_utf8_lossy(t))),
        Some(ValueRef::Blob(b)) => format!("a blob of {} bytes", b.len()),
    }
}

/// As [`describe_ref`], for an owned value.
pub(super) fn describe_value(value: Option<&Value>) -> String {
    describe_ref(value.map(ValueRef::from))
}

/// The JSON text of a service list: `["ssh","http"]`, exact for any string.
pub(super) fn encode_services(services: &[String]) -> String {
    // `Value`'s `Display` is infallible, unlike `to_string` on a generic `Serialize`.
    serde_json::Value::from(services.to_vec()).to_string()
}

/// Parses the JSON text of a service list (any valid JSON array of strings).
pub(super) fn decode_services(text: &str) -> Result<Vec<String>, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn services_round_trip_exactly() {
        let cases: Vec<Vec<String>> = vec![
            vec![],
            vec![String::new()],
            vec!["ssh".into(), "http".into()],
            vec![
                "a,b".into(),
                "c\nd".into(),
                "\"q\"".into(),
                "back\\slash".into(),
            ],
            vec!["\u{1}\u{1f}".into(), "émoji 🦀".into(), "[\"]".into()],
        ];
        for case in cases {
            let text = encode_services(&case);
            assert_eq!(decode_services(&text).as_ref(), Ok(&case), "{text}");
        }
    }

    #[test]
    fn services_decode_any_json_list_of_strings() {
        assert_eq!(
            decode_services(" [ \"a\" , \"\\u00e9\\ud83e\\udd80\\/\" ] "),
            Ok(vec!["a".into(), "é🦀/".into()])
        );
        for bad in [
            "",
            "[",
            "[1]",
            "[\"a\",]",
            "[\"a\"] x",
            "{}",
            "[\"\\ud800\"]",
        ] {
            assert!(decode_services(bad).is_err(), "{bad}");
        }
    }
}
