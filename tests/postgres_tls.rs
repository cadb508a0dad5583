//! TLS to PostgreSQL as `sslmode` asks: `verify-full` with the right CA connects (and every
//! pooled session is encrypted), a wrong CA or a wrong host name is refused with
//! [`StoreError::Tls`], `verify-ca` does not check the name, and `disable` against a role
//! the server admits over TLS only is refused. The same through the URL, the key=value
//! string and the builder, and for the async store.
//!
//! Needs the server of `.ci/postgres.sh` (`TOPOSTATE_PG_URL`, superuser): `pg_cluster`
//! switches TLS on with a certificate made here and adds a TLS-only role.

mod pg_cluster;

use std::error::Error as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pg_cluster::{TLS_ROLE, admin, conninfo, port_and_db, tls_ready};
use topostate::store::{
    AsyncPgStore, AsyncTopologyStore, PgSslMode, PgStore, PgStoreBuilder, StoreError, TopologyStore,
};

const IGNORE: &str = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored";

/// A schema and `application_name` no other test uses; the schema is dropped at the end.
struct Scratch(String);

impl Scratch {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self(format!(
            "tls_{tag}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn builder(&self, url: &str) -> PgStoreBuilder {
        PgStore::builder(&format!("{url} application_name={}", self.0))
            .schema(&self.0)
            .pool_size(2)
            .timeout(Duration::from_secs(5))
    }

    /// Whether each of the store's sessions is encrypted, from the server's view.
    fn sessions_encrypted(&self) -> Vec<bool> {
        admin()
            .query(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = $1",
                &[&self.0],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = admin().batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
    }
}

/// `error` and its sources, one message each, as an error reporter prints them.
fn chain(error: &StoreError) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}

fn ca() -> String {
    tls_ready().display().to_string()
}

/// A CA that signed nothing the server holds.
fn wrong_ca() -> std::path::PathBuf {
    let (_, pem) = pg_cluster::make_ca("some other CA");
    let path = std::env::temp_dir().join(format!("topostate-wrong-ca-{}.crt", std::process::id()));
    std::fs::write(&path, pem).unwrap();
    path
}

fn works(store: &PgStore) {
    let lab = store.create_topology("lab").unwrap();
    assert_eq!(store.get_topology(lab.id).unwrap().version, 1);
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored"]
fn verify_full_with_the_right_ca_connects_and_every_session_is_encrypted() {
    let _ = IGNORE;
    let ca = ca();
    // key=value, the host name in the certificate.
    let scratch = Scratch::new("kv");
    let url = conninfo(
        "localhost",
        TLS_ROLE,
        &format!("sslmode=verify-full sslrootcert={ca}"),
    );
    let store = scratch.builder(&url).connect().unwrap();
    works(&store);
    let encrypted = scratch.sessions_encrypted();
    assert!(
        !encrypted.is_empty() && encrypted.iter().all(|&on| on),
        "{encrypted:?}"
    );

    // A URL, the IP address in the certificate, the CA path percent-encoded.
    let (port, db) = port_and_db();
    let url = format!(
        "postgresql://{TLS_ROLE}@127.0.0.1:{port}/{db}?sslmode=verify-full&sslrootcert={}",
        ca.replace('/', "%2F")
    );
    let scratch = Scratch::new("url");
    let store = PgStore::builder(&url)
        .schema(&scratch.0)
        .timeout(Duration::from_secs(5))
        .connect()
        .unwrap();
    works(&store);

    // The builder, over a URL that says nothing of TLS.
    let scratch = Scratch::new("builder");
    let store = scratch
        .builder(&conninfo("localhost", TLS_ROLE, ""))
        .ssl_mode(PgSslMode::VerifyFull)
        .ssl_root_cert(&ca)
        .connect()
        .unwrap();
    works(&store);
    assert!(scratch.sessions_encrypted().iter().all(|&on| on));
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored"]
fn the_async_store_connects_with_verify_full() {
    let ca = ca();
    let scratch = Scratch::new("async");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store: AsyncPgStore = scratch
            .builder(&conninfo("localhost", TLS_ROLE, ""))
            .ssl_mode(PgSslMode::VerifyFull)
            .ssl_root_cert(&ca)
            .connect_async()
            .await
            .unwrap();
        let lab = store.create_topology("lab").await.unwrap();
        assert_eq!(store.get_topology(lab.id).await.unwrap().version, 1);
    });
    assert!(scratch.sessions_encrypted().iter().all(|&on| on));
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored"]
fn a_wrong_ca_is_refused_with_a_typed_error() {
    tls_ready();
    let wrong = wrong_ca();
    for mode in ["verify-full", "verify-ca", "require"] {
        let scratch = Scratch::new("wrongca");
        let url = conninfo(
            "localhost",
            TLS_ROLE,
            &format!("sslmode={mode} sslrootcert={}", wrong.display()),
        );
        let e = scratch.builder(&url).connect().unwrap_err();
        let shown = chain(&e);
        println!("{mode}: {shown}");
        // `require` with a root file checks the chain, as libpq does.
        match &e {
            StoreError::Tls { sslmode, .. } => assert_eq!(*sslmode, mode, "{shown}"),
            other => panic!("{mode}: expected StoreError::Tls, got {other:?}"),
        }
        assert!(shown.contains("UnknownIssuer"), "{shown}");
        assert!(shown.contains("localhost"), "{shown}");
    }
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored"]
fn a_wrong_host_name_is_refused_by_verify_full_only() {
    let ca = ca();
    // The socket goes to the server (hostaddr); the name checked is `host`'s.
    let (port, db) = port_and_db();
    let url = |mode: &str| {
        format!(
            "host=db.wrong.example hostaddr=127.0.0.1 port={port} user={TLS_ROLE} dbname={db} \
             sslmode={mode} sslrootcert={ca}"
        )
    };
    let scratch = Scratch::new("wrongname");
    let e = scratch.builder(&url("verify-full")).connect().unwrap_err();
    let shown = chain(&e);
    println!("verify-full: {shown}");
    assert!(
        matches!(
            &e,
            StoreError::Tls {
                sslmode: "verify-full",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        shown.contains(r#"not valid for name "db.wrong.example""#),
        "{shown}"
    );
    // verify-ca checks the chain only: the same server is accepted.
    let store = scratch.builder(&url("verify-ca")).connect().unwrap();
    works(&store);
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored"]
fn disable_against_a_server_that_requires_tls_is_refused() {
    tls_ready();
    let scratch = Scratch::new("disable");
    let e = scratch
        .builder(&conninfo("127.0.0.1", TLS_ROLE, "sslmode=disable"))
        .connect()
        .unwrap_err();
    let shown = chain(&e);
    println!("disable: {shown}");
    let StoreError::Backend(backend) = &e else {
        panic!("expected the server's refusal, got {e:?}");
    };
    let driver = backend
        .get_ref()
        .downcast_ref::<tokio_postgres::Error>()
        .expect("the driver's error");
    assert_eq!(
        driver.code().map(postgres::error::SqlState::code),
        Some("28000"),
        "{shown}"
    );
    assert!(shown.contains("no encryption"), "{shown}");
    // The same role over TLS without checking the certificate (`require`) is admitted.
    let store = scratch
        .builder(&conninfo("127.0.0.1", TLS_ROLE, "sslmode=require"))
        .connect()
        .unwrap();
    works(&store);
    assert!(scratch.sessions_encrypted().iter().all(|&on| on));
}
