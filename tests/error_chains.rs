//! Backend errors keep their cause: the store's message says what it was doing, the
//! driver's error is its `source()`, the driver's cause (an I/O error, the server's
//! message, rustls's verdict) the next. Printed as an error reporter prints a chain (each
//! `source()`, joined by ": "), every part shows exactly once.
//!
//! For a refused connection, a wrong password, a refused certificate, a session killed
//! mid-transaction (PostgreSQL) and a file in a read-only directory (SQLite). The
//! PostgreSQL cases need the server of `.ci/postgres.sh` (`TOPOSTATE_PG_URL`, superuser):
//! `pg_cluster` adds a password role and TLS.

mod pg_cluster;

use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use pg_cluster::{PASSWORD, PASSWORD_ROLE, TLS_ROLE, admin, conninfo, tls_ready};
use topostate::store::{NewLan, PgStore, SqliteStore, StoreError, TopologyStore};

/// The chain as a reporter prints it, and its parts.
fn chain<'a>(error: &'a (dyn Error + 'static)) -> (String, Vec<&'a (dyn Error + 'static)>) {
    let mut parts = vec![error];
    let mut source = error.source();
    while let Some(cause) = source {
        parts.push(cause);
        source = cause.source();
    }
    let shown = parts
        .iter()
        .map(std::string::ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    (shown, parts)
}

/// Each of `texts` appears exactly once in the printed chain of `error`.
fn each_once(error: &StoreError, texts: &[&str]) -> String {
    let (shown, _) = chain(error);
    println!("{shown}");
    for text in texts {
        assert_eq!(
            shown.matches(text).count(),
            1,
            "{text:?} should appear once in: {shown}"
        );
    }
    // No part repeats the one before it.
    let (_, parts) = chain(error);
    for pair in parts.windows(2) {
        let (outer, inner) = (pair[0].to_string(), pair[1].to_string());
        assert!(!outer.contains(&inner), "{outer:?} repeats {inner:?}");
    }
    shown
}

#[test]
fn a_refused_connection_reaches_the_io_error() {
    // Port 1 on loopback: nothing listens there.
    let e = PgStore::builder("host=127.0.0.1 port=1 user=nobody dbname=lab")
        .timeout(Duration::from_millis(300))
        .connect()
        .unwrap_err();
    each_once(
        &e,
        &[
            "127.0.0.1:1",
            "'lab'",
            "error connecting to server",
            "Connection refused",
        ],
    );
    let (_, parts) = chain(&e);
    let io = parts
        .iter()
        .find_map(|p| p.downcast_ref::<std::io::Error>())
        .expect("an I/O error in the chain");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    let StoreError::Backend(backend) = &e else {
        panic!("{e:?}")
    };
    assert!(backend.get_ref().is::<tokio_postgres::Error>());
    assert!(
        parts.iter().any(|p| p.is::<tokio_postgres::Error>()),
        "the driver's own error is in the chain"
    );
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored"]
fn a_wrong_password_reaches_the_servers_message() {
    tls_ready();
    let e = PgStore::builder(&conninfo(
        "127.0.0.1",
        PASSWORD_ROLE,
        "password=not-the-password sslmode=disable",
    ))
    .timeout(Duration::from_secs(5))
    .connect()
    .unwrap_err();
    each_once(
        &e,
        &[
            "SQLSTATE 28P01",
            "db error",
            "password authentication failed for user \"topostate_password\"",
        ],
    );
    assert!(
        !chain(&e).0.contains("not-the-password"),
        "the password leaked"
    );
    // The rule is real: the right password is let in.
    let schema = format!("chains_pw_{}", std::process::id());
    let store = PgStore::builder(&conninfo(
        "127.0.0.1",
        PASSWORD_ROLE,
        &format!("password={PASSWORD} sslmode=disable"),
    ))
    .schema(&schema)
    .connect()
    .unwrap();
    store.create_topology("lab").unwrap();
    admin()
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored"]
fn a_refused_certificate_reaches_rustls_verdict() {
    tls_ready();
    let (_, pem) = pg_cluster::make_ca("an unrelated CA");
    let ca = std::env::temp_dir().join(format!("topostate-chains-ca-{}.crt", std::process::id()));
    std::fs::write(&ca, pem).unwrap();
    let e = PgStore::builder(&conninfo(
        "localhost",
        TLS_ROLE,
        &format!("sslmode=verify-full sslrootcert={}", ca.display()),
    ))
    .timeout(Duration::from_secs(5))
    .connect()
    .unwrap_err();
    assert!(matches!(e, StoreError::Tls { .. }), "{e:?}");
    each_once(
        &e,
        &[
            "sslmode=verify-full",
            "error performing TLS handshake",
            "invalid peer certificate: UnknownIssuer",
        ],
    );
    // The driver's own error, to downcast.
    let StoreError::Tls { cause, .. } = &e else {
        unreachable!()
    };
    assert!(cause.get_ref().is::<tokio_postgres::Error>());
}

#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored"]
fn a_session_killed_mid_transaction_reaches_the_servers_message() {
    let schema = format!("chains_kill_{}", std::process::id());
    let app = format!("{schema}_app");
    let store = PgStore::builder(&format!("{} application_name={app}", pg_cluster::kv_url()))
        .schema(&schema)
        .pool_size(1)
        .call_timeout(Duration::from_millis(1500))
        .connect()
        .unwrap();
    let lab = store.create_topology("lab").unwrap();
    // Outside the store, a transaction holds the topology's row: the store's write waits
    // on it, mid-transaction, and is killed there, again and again, until its bound passes.
    let mut blocker = admin();
    let mut tx = blocker.transaction().unwrap();
    tx.execute(
        &format!("SELECT 1 FROM {schema}.topologies WHERE id = $1 FOR UPDATE"),
        &[&i64::try_from(lab.id.get()).unwrap()],
    )
    .unwrap();
    let done = AtomicBool::new(false);
    let e = thread::scope(|scope| {
        let killer = scope.spawn(|| {
            let mut admin = admin();
            while !done.load(Ordering::Relaxed) {
                admin
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1 AND wait_event_type = 'Lock'",
                        &[&app],
                    )
                    .unwrap();
                thread::sleep(Duration::from_millis(20));
            }
        });
        let e = store
            .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
            .unwrap_err();
        done.store(true, Ordering::Relaxed);
        killer.join().unwrap();
        e
    });
    tx.rollback().unwrap();
    assert!(e.is_timeout(), "{e:?}");
    each_once(
        &e,
        &[
            "timed out after 1.500 s",
            "the connection was lost",
            "SQLSTATE 57P01",
            "db error",
            "terminating connection due to administrator command",
        ],
    );
    // Nothing of it was written; the same store goes on.
    assert_eq!(store.get_topology(lab.id).unwrap().version, 1);
    admin()
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}

#[test]
fn an_sqlite_file_in_a_read_only_directory_reaches_sqlites_message() {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    set_mode(&locked, 0o555);
    // Root writes into a read-only directory all the same; /proc takes no file from anyone.
    let place = if std::fs::write(locked.join("probe"), "").is_ok() {
        std::path::PathBuf::from("/proc/topostate-error-chains.db")
    } else {
        locked.join("store.db")
    };
    let e = SqliteStore::open(&place).unwrap_err();
    set_mode(&locked, 0o755);
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    let shown = each_once(
        &e,
        &[
            &place.display().to_string(),
            "unable to open database file",
            "SQLite result code 14",
        ],
    );
    let StoreError::Backend(backend) = &e else {
        unreachable!()
    };
    assert!(backend.get_ref().is::<rusqlite::Error>(), "{shown}");
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
