//! `audit` of a PostgreSQL URL: a fresh schema written by `PgStore` (clean), the same
//! schema corrupted on purpose with raw SQL, and URLs or schemas it cannot audit.
//!
//! These need a server: `eval "$(bash .ci/postgres.sh start)"`, then
//! `cargo test -p topostate-cli --test audit_postgres -- --include-ignored` (see README).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{joined, stderr_of, stdout_of, topostate};
use postgres::{Client, NoTls};
use topostate::store::{
    Claim, NewDecky, NewEdge, NewLan, PgStore, Precondition, TopologyStore as _,
};
use topostate::{MutationOp, TopologyStatus};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The server the tests use.
const URL_VAR: &str = "TOPOSTATE_PG_URL";

fn pg_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{URL_VAR} is not set: start a server with `eval \"$(bash .ci/postgres.sh start)\"` \
             (see README, \"PostgreSQL tests\") or point it at one of yours"
        )
    })
}

/// A fresh schema name, dropped (with everything in it) when this goes out of scope.
struct Scratch {
    schema: String,
}

impl Scratch {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self {
            schema: format!(
                "audit_{tag}_{}_{}_{nanos}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    /// A plain client on the schema, as an outside program has.
    fn raw(&self) -> Result<Client, postgres::Error> {
        let mut client = Client::connect(&pg_url(), NoTls)?;
        client.execute(
            "SELECT set_config('search_path', $1, false)",
            &[&self.schema],
        )?;
        Ok(client)
    }

    /// `--schema`-less URL selecting the schema through its `options`.
    fn url_with_options(&self) -> String {
        let url = pg_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}options=-csearch_path%3D{}", self.schema)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut client) = Client::connect(&pg_url(), NoTls) {
            // A plain identifier made by `new`.
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

/// Fills the schema through the store: a live topology with a LAN, a decky on it, its
/// status log, a failed and a pending mutation, and a pending topology with a spare LAN.
fn populate(scratch: &Scratch) -> TestResult {
    let store = PgStore::connect_with_schema(&pg_url(), &scratch.schema)?;
    let lab = store.create_topology("lab")?;
    let dmz = store.add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), None)?;
    store.add_lan(lab.id, NewLan::new("spare", "10.0.1.0/24"), None)?;
    let mut decky = NewDecky::new("web");
    decky.services = vec!["ssh".to_owned(), "http".to_owned()];
    decky.x = Some(1.5);
    let web = store.add_decky(lab.id, decky, None)?;
    store.add_edge(lab.id, NewEdge::new(web.id, dmz.id), None)?;
    for step in [TopologyStatus::Deploying, TopologyStatus::Active] {
        store.transition_status(lab.id, step, Some("test"), Precondition::none())?;
    }
    store.enqueue_mutation(lab.id, MutationOp::AddLan, "{}", None)?;
    match store.claim_next_mutation(lab.id)? {
        Claim::Claimed { lease: claim, .. } => {
            store.mark_mutation_failed(claim, "no room")?;
        }
        other => return Err(format!("expected a claim, got {other:?}").into()),
    }
    store.enqueue_mutation(lab.id, MutationOp::AddDecky, "{}", None)?;
    store.create_topology("other")?;
    Ok(())
}

/// A fingerprint of every row of every table, to prove the audit wrote nothing.
fn fingerprint(scratch: &Scratch) -> Result<Vec<String>, postgres::Error> {
    let mut client = scratch.raw()?;
    let mut out = Vec::new();
    for table in [
        "meta",
        "topologies",
        "lans",
        "deckies",
        "edges",
        "status_events",
        "mutations",
    ] {
        // Table names are the constants above.
        let row = client.query_one(
            &format!(
                "SELECT coalesce(string_agg(t::text, '|' ORDER BY t::text), '') FROM {table} AS t"
            ),
            &[],
        )?;
        out.push(row.try_get(0)?);
    }
    Ok(out)
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_schema_written_by_the_store_has_no_findings() -> TestResult {
    let scratch = Scratch::new("clean");
    populate(&scratch)?;
    let before = fingerprint(&scratch)?;

    let output = topostate()
        .args(["audit", &pg_url(), "--schema", &scratch.schema])
        .output()?;
    let stdout = stdout_of(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        stderr_of(&output)
    );
    assert!(
        stdout.starts_with("no findings in PostgreSQL database"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("schema '{}'", scratch.schema)),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "(2 topologies, 2 lans, 1 decky, 1 edge, 2 status events, 2 mutations checked)"
        ),
        "{stdout}"
    );

    // The schema named by the URL's own options, and the JSON report.
    let output = topostate()
        .args(["audit", &scratch.url_with_options(), "--format", "json"])
        .output()?;
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(report["schema_version"], 3);
    assert_eq!(report["summary"]["findings"], 0);
    assert_eq!(report["summary"]["checked"]["mutations"], 2);
    let database = report["database"].as_str().unwrap_or_default();
    assert!(database.contains(&scratch.schema), "{database}");

    assert_eq!(fingerprint(&scratch)?, before, "the audit changed a row");
    Ok(())
}

/// `value` quoted for a libpq key=value string.
fn conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

/// The server of `TOPOSTATE_PG_URL` as a libpq key=value string, on `schema`.
fn key_value_string(schema: &str) -> Result<String, Box<dyn std::error::Error>> {
    let config: postgres::Config = pg_url().parse()?;
    let mut parts = Vec::new();
    for host in config.get_hosts() {
        match host {
            postgres::config::Host::Tcp(name) => {
                parts.push(format!("host={}", conninfo_value(name)));
            }
            postgres::config::Host::Unix(dir) => {
                parts.push(format!("host={}", conninfo_value(&dir.to_string_lossy())));
            }
        }
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", conninfo_value(user)));
    }
    if let Some(password) = config.get_password() {
        parts.push(format!(
            "password={}",
            conninfo_value(&String::from_utf8_lossy(password))
        ));
    }
    if let Some(dbname) = config.get_dbname() {
        parts.push(format!("dbname={}", conninfo_value(dbname)));
    }
    parts.push(format!(
        "options={}",
        conninfo_value(&format!("-csearch_path={schema}"))
    ));
    Ok(parts.join(" "))
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn a_key_value_connection_string_is_audited_like_a_url() -> TestResult {
    let scratch = Scratch::new("keyvalue");
    populate(&scratch)?;
    let conninfo = key_value_string(&scratch.schema)?;
    assert!(!conninfo.contains("://"), "{conninfo}");
    let output = topostate().args(["audit", &conninfo]).output()?;
    let stdout = stdout_of(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        stderr_of(&output)
    );
    assert!(
        stdout.starts_with("no findings in PostgreSQL database"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("schema '{}'", scratch.schema)),
        "{stdout}"
    );
    // The same with --schema instead of the options key.
    let plain = conninfo
        .rsplit_once(" options=")
        .map_or(conninfo.as_str(), |(head, _)| head);
    let output = topostate()
        .args(["audit", plain, "--schema", &scratch.schema])
        .output()?;
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    Ok(())
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn corrupt_rows_are_found_and_named() -> TestResult {
    let scratch = Scratch::new("corrupt");
    populate(&scratch)?;
    let mut raw = scratch.raw()?;
    raw.batch_execute(
        "
        ALTER TABLE topologies DROP CONSTRAINT topologies_status_known;
        ALTER TABLE topologies DROP CONSTRAINT topologies_version_positive;
        ALTER TABLE mutations DROP CONSTRAINT mutations_op_known;
        ALTER TABLE deckies DROP CONSTRAINT deckies_services_flat;
        ALTER TABLE deckies DROP CONSTRAINT deckies_state_known;

        -- A status no build declared, and a version below 1.
        UPDATE topologies SET status = 'bogus', version = 0 WHERE name = 'lab';
        -- An op no build declared; a pending mutation with applied_at set.
        UPDATE mutations SET op = 'explode' WHERE state = 'failed';
        UPDATE mutations SET applied_at = 5 WHERE state = 'pending';
        -- A NULL service and an unknown decky state.
        UPDATE deckies SET services = ARRAY['ssh', NULL], state = 'melting';
        -- A pending topology whose log jumps straight to active.
        INSERT INTO status_events (topology_id, from_status, to_status, at)
            SELECT id, 'pending', 'active', 1 FROM topologies WHERE name = 'other';
        ",
    )?;
    // Foreign keys off for this session only: an orphan event and a cross-topology edge.
    raw.batch_execute(
        "
        SET session_replication_role = replica;
        INSERT INTO status_events (topology_id, from_status, to_status, at)
            VALUES (999999, 'pending', 'deploying', 1);
        INSERT INTO edges (topology_id, decky_id, lan_id, is_bridge, forwards_l3)
            SELECT o.id, d.id, l.id, false, false
            FROM topologies AS o, deckies AS d, lans AS l
            WHERE o.name = 'other' AND d.name = 'web' AND l.name = 'spare';
        ",
    )?;
    drop(raw);
    let before = fingerprint(&scratch)?;

    let output = topostate()
        .args(["audit", &pg_url(), "--schema", &scratch.schema])
        .output()?;
    let stdout: String = stdout_of(&output)
        .lines()
        .map(|line| joined(line) + "\n")
        .collect();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        stderr_of(&output)
    );
    for expected in [
        "corrupt-status: topologies row 1: status: unknown topology status: 'bogus'",
        "bad-version: topologies row 1: version: invalid topology version 0",
        "corrupt-op: mutations row 1 (topology 1): op: unknown mutation op: 'explode'",
        "impossible-mutation: mutations row 2 (topology 1): 'pending' with applied_at set",
        r#"corrupt-value: deckies row 1 (topology 1): services: '[\"ssh\",null]' is not a JSON list of strings"#,
        "corrupt-state: deckies row 1 (topology 1): state: unknown decky state: 'melting'",
        "illegal-event-path: status_events row 3 (topology 2):",
        "status-log-mismatch: topologies row 2: status is 'pending' but the last status event (3) moved it to 'active'",
        "orphan-row: status_events row 4: topology 999999 does not exist",
        "cross-topology-edge: edges row 2 (topology 2): decky 1 belongs to topology 1, the edge to topology 2",
        "cross-topology-edge: edges row 2 (topology 2): lan 2 belongs to topology 1, the edge to topology 2",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("\n11 findings in PostgreSQL database"),
        "{stdout}"
    );
    assert_eq!(fingerprint(&scratch)?, before, "the audit changed a row");
    Ok(())
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored (see README)"]
fn unreachable_servers_and_foreign_schemas_are_errors() -> TestResult {
    // Nothing listens on port 1.
    let output = topostate()
        .args(["audit", "postgresql://nobody:secret@127.0.0.1:1/lab"])
        .output()?;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot connect to PostgreSQL database 'lab' on 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "the password leaked: {stderr}");

    // A schema that does not exist.
    let missing = Scratch::new("missing");
    let output = topostate()
        .args(["audit", &pg_url(), "--schema", &missing.schema])
        .output()?;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("has no schema '{}'", missing.schema)),
        "{stderr}"
    );

    // A schema without the store's tables.
    let empty = Scratch::new("empty");
    let mut client = Client::connect(&pg_url(), NoTls)?;
    client.batch_execute(&format!("CREATE SCHEMA {}", empty.schema))?;
    let output = topostate()
        .args(["audit", &pg_url(), "--schema", &empty.schema])
        .output()?;
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not a schema written by the topostate store"),
        "{stderr}"
    );

    // A schema name the store would never make, and --schema on a file.
    let output = topostate()
        .args(["audit", &pg_url(), "--schema", "Robert'); DROP"])
        .output()?;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("invalid --schema"));
    let output = topostate()
        .args(["audit", "lab.sqlite", "--schema", "lab"])
        .output()?;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("--schema applies to a PostgreSQL connection string"));
    Ok(())
}
