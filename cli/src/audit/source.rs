//! Where the audited rows come from: a SQLite file or a PostgreSQL schema, both read-only.
//!
//! Either backend hands the scan the same raw values ([`Value`]), so the checks in
//! `scan.rs` are written once. PostgreSQL values are mapped onto SQLite's kinds: integers
//! and booleans (as 0/1) to [`Value::Integer`], text to [`Value::Text`], doubles to
//! [`Value::Real`], a `TEXT[]` to the JSON list text SQLite keeps, anything else to a blob.

use std::error::Error;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use postgres::types::{FromSql, Type};
use postgres::{Client, Config};
use rusqlite::types::Value;
use topostate::store::{PgStore, StoreError};

use super::scan::require_store_tables;

/// The SQL dialect of a source, for the few statements that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A read-only source of raw rows.
pub trait Source {
    /// The dialect its SQL is written in.
    fn dialect(&self) -> Dialect;
    /// Does the audited database (schema) have a table `name`?
    fn has_table(&mut self, name: &str) -> anyhow::Result<bool>;
    /// Every row `sql` returns, each column as a raw value.
    fn rows(&mut self, sql: &str) -> anyhow::Result<Vec<Vec<Value>>>;
}

/// The PostgreSQL connection string `db` is, if it is one: a `postgres://` or
/// `postgresql://` URL, or a libpq `key=value` list (`host=/run/postgresql dbname=lab`),
/// the two forms `PgStore` takes. A key=value list is only taken as one when no file of
/// that name exists, so any existing file can still be audited.
pub fn postgres_conninfo(db: &Path) -> Option<&str> {
    let text = db.to_str()?;
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return Some(text);
    }
    // libpq's keys are letters and '_', followed by '=' (spaces allowed around it).
    let first = text.trim_start();
    let key_len = first
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .unwrap_or(first.len());
    let looks_like_conninfo = key_len > 0 && first[key_len..].trim_start().starts_with('=');
    (looks_like_conninfo && std::fs::symlink_metadata(db).is_err()).then_some(text)
}

/// A connection inside a `READ ONLY` transaction, rolled back when dropped.
pub struct Postgres {
    client: Client,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").finish_non_exhaustive()
    }
}

/// How long to wait for the server when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks a `--schema` name the way the store does: a plain lowercase identifier, since
/// it goes into the connection's `search_path` unquoted.
fn check_schema_name(name: &str) -> anyhow::Result<()> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain {
        bail!(
            "invalid --schema {name:?}: use lowercase ASCII letters, digits and '_', not starting \
             with a digit, at most 63 bytes (as the store's schemas are named)"
        );
    }
    Ok(())
}

/// Host, port and database of `config`, as messages show them (never the password).
fn describe(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                postgres::config::Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "the default host".to_owned()
    } else {
        hosts.join(",")
    };
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("(default)");
    format!("PostgreSQL database '{db}' on {hosts}")
}

impl Postgres {
    /// Connects to `url` (its tables in `schema` if given, else in the first schema of the
    /// `search_path`, which the URL may set with `options=-csearch_path%3D...`), opens a
    /// `READ ONLY` transaction and makes sure the schema is a store's. Returns the source
    /// and where it is, for messages.
    ///
    /// # Errors
    ///
    /// A malformed URL or schema name, a server that cannot be reached or refuses the
    /// login, a missing schema or a schema without the store's tables.
    pub fn open(url: &str, schema: Option<&str>) -> anyhow::Result<(Self, String)> {
        if let Some(schema) = schema {
            check_schema_name(schema)?;
        }
        // The store's own connection setup: the same URL forms, `sslmode` (disable to
        // verify-full), `sslrootcert`, keepalives and `search_path` for `--schema`. No
        // statement timeout: reading a large schema may take long.
        let mut builder = PgStore::builder(url)
            .timeout(CONNECT_TIMEOUT)
            .statement_timeout(Duration::ZERO);
        if let Some(schema) = schema {
            builder = builder.schema(schema);
        }
        let (config, tls) = builder.driver_config().map_err(|e| match e {
            StoreError::Invalid {
                field: "url",
                problem,
            } => {
                let why = problem
                    .strip_prefix("not a PostgreSQL connection URL or key=value string: ")
                    .unwrap_or(&problem);
                anyhow::anyhow!(
                    "cannot audit the given connection string: not a PostgreSQL URL or \
                     key=value list ({why})"
                )
            }
            other => anyhow::anyhow!("cannot audit the given connection string: {other}"),
        })?;
        let mut config = Config::from(config);
        if config.get_application_name() == Some("topostate") {
            config.application_name("topostate audit");
        }
        let place = describe(&config);
        let mut client = config
            .connect(tls)
            .with_context(|| format!("cannot connect to {place}"))?;
        // A consistent snapshot, and the server itself refuses any write.
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .with_context(|| format!("cannot start a read-only transaction on {place}"))?;
        let mut source = Self { client };

        let current: Option<String> = source
            .client
            .query_one("SELECT current_schema()", &[])
            .and_then(|r| r.try_get(0))
            .with_context(|| format!("cannot read {place}"))?;
        let Some(current) = current else {
            match schema {
                Some(schema) => bail!("cannot audit {place}: it has no schema '{schema}'"),
                None => bail!(
                    "cannot audit {place}: no schema of its search_path exists (name one with \
                     --schema or options=-csearch_path%3D<schema> in the URL)"
                ),
            }
        };
        let place = format!("{place}, schema '{current}'");
        let tables: Vec<String> = source
            .client
            .query(
                "SELECT tablename::text FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
                &[],
            )
            .and_then(|rows| rows.iter().map(|r| r.try_get(0)).collect())
            .with_context(|| format!("cannot read {place}"))?;
        require_store_tables(&place, "schema", &tables)?;
        Ok((source, place))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Nothing was written; end the transaction before the connection closes.
        let _ = self.client.batch_execute("ROLLBACK");
    }
}

/// Any column's raw bytes, for a type the audit does not map.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Self(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Column `i` of a PostgreSQL row as a SQLite-kind value.
fn pg_value(row: &postgres::Row, i: usize) -> Result<Value, postgres::Error> {
    let ty = row.columns()[i].type_();
    let value = if *ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map(Value::Integer)
    } else if *ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?
            .map(|v| Value::Integer(v.into()))
    } else if *ty == Type::INT2 {
        row.try_get::<_, Option<i16>>(i)?
            .map(|v| Value::Integer(v.into()))
    } else if *ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?
            .map(|v| Value::Integer(v.into()))
    } else if *ty == Type::FLOAT8 {
        row.try_get::<_, Option<f64>>(i)?.map(Value::Real)
    } else if *ty == Type::FLOAT4 {
        row.try_get::<_, Option<f32>>(i)?
            .map(|v| Value::Real(v.into()))
    } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty) {
        row.try_get::<_, Option<String>>(i)?.map(Value::Text)
    } else if [Type::TEXT_ARRAY, Type::VARCHAR_ARRAY].contains(ty) {
        // A NULL element becomes JSON `null`, which the services check then reports.
        row.try_get::<_, Option<Vec<Option<String>>>>(i)?
            .map(|items| Value::Text(serde_json::Value::from(items).to_string()))
    } else {
        row.try_get::<_, Option<Raw>>(i)?
            .map(|raw| Value::Blob(raw.0))
    };
    Ok(value.unwrap_or(Value::Null))
}

impl Source for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn has_table(&mut self, name: &str) -> anyhow::Result<bool> {
        Ok(self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables \
                 WHERE schemaname = current_schema() AND tablename = $1)",
                &[&name],
            )?
            .try_get(0)?)
    }

    fn rows(&mut self, sql: &str) -> anyhow::Result<Vec<Vec<Value>>> {
        let rows = self.client.query(sql, &[])?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(
                (0..row.len())
                    .map(|i| pg_value(row, i))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_key_value_lists_are_postgres_files_are_not() {
        for conninfo in [
            "postgres://u@h/db",
            "postgresql:///db?host=/run/postgresql",
            "host=/run/postgresql dbname=topostate",
            "dbname = lab",
            " user=audit",
        ] {
            assert_eq!(
                postgres_conninfo(Path::new(conninfo)),
                Some(conninfo),
                "{conninfo}"
            );
        }
        for file in ["lab.sqlite", "./host=x", "", "=x", "data/db=1", "my db=x"] {
            assert_eq!(postgres_conninfo(Path::new(file)), None, "{file}");
        }
    }
}
