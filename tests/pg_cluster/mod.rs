//! The test server of `.ci/postgres.sh`, set up for the TLS and error tests: TLS switched
//! on with a CA and a server certificate made here, a role that may only connect over TLS
//! and a role with a password. Idempotent and safe for the other tests on the same cluster:
//! the `postgres` role keeps its plain, trusted connections, and a server already set up
//! is reused as it is.
//!
//! The settings go through SQL as the superuser (`TOPOSTATE_PG_URL`); the certificate files
//! and the rules are written into the data directory, so the tests run on the server's host
//! (as root, as `.ci/run` does, or as the server's user).

#![allow(dead_code)] // Each test file uses its own part.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use topostate::store::{PgSslMode, PgStore};

pub const URL_VAR: &str = "TOPOSTATE_PG_URL";

/// May connect only over TLS (`hostssl` trust, `hostnossl` reject).
pub const TLS_ROLE: &str = "topostate_tls_only";
/// Logs in with [`PASSWORD`] (`scram-sha-256`), never trusted.
pub const PASSWORD_ROLE: &str = "topostate_password";
pub const PASSWORD: &str = "the-right-password";

/// The first line of the rules added to `pg_hba.conf`, to find them again.
const HBA_MARK: &str = "# topostate tests: TLS-only and password roles";
const CA_FILE: &str = "topostate-test-ca.crt";
const CERT_FILE: &str = "topostate-test-server.crt";
const KEY_FILE: &str = "topostate-test-server.key";

pub fn pg_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!("{URL_VAR} is not set: start a server with `eval \"$(bash .ci/postgres.sh start)\"`")
    })
}

pub fn admin() -> Client {
    Client::connect(&pg_url(), NoTls).unwrap()
}

/// The server's port and database, from `TOPOSTATE_PG_URL`.
pub fn port_and_db() -> (u16, String) {
    let config: postgres::Config = pg_url().parse().unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("postgres").to_owned();
    (port, db)
}

/// The cluster, ready for TLS: the path of a local copy of its CA certificate.
pub fn tls_ready() -> &'static PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(set_up)
}

fn set_up() -> PathBuf {
    let mut admin = admin();
    let data: String = admin.query_one("SHOW data_directory", &[]).unwrap().get(0);
    if !tls_works() {
        let (ca, cert, key) = make_certificates();
        write_server_file(&format!("{data}/{CA_FILE}"), &ca);
        write_server_file(&format!("{data}/{CERT_FILE}"), &cert);
        write_server_file(&format!("{data}/{KEY_FILE}"), &key);
        // One statement per call: ALTER SYSTEM refuses to run in a (multi-statement) block.
        for setting in [
            format!("ssl_cert_file = '{CERT_FILE}'"),
            format!("ssl_key_file = '{KEY_FILE}'"),
            String::from("ssl = on"),
        ] {
            admin
                .batch_execute(&format!("ALTER SYSTEM SET {setting}"))
                .unwrap();
        }
    }
    add_hba_rules(&mut admin);
    add_roles(&mut admin);
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while !tls_works() {
        assert!(
            Instant::now() < until,
            "the server did not turn TLS on; its log says why"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let local = std::env::temp_dir().join(format!("topostate-test-ca-{}.crt", std::process::id()));
    std::fs::copy(format!("{data}/{CA_FILE}"), &local).unwrap();
    local
}

/// Does the server take a TLS connection now?
fn tls_works() -> bool {
    let (config, tls) = PgStore::builder(&pg_url())
        .ssl_mode(PgSslMode::Require)
        .driver_config()
        .unwrap();
    let Ok(mut client) = postgres::Config::from(config).connect(tls) else {
        return false;
    };
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .is_ok_and(|row| row.get::<_, bool>(0))
}

/// A CA, and a server certificate it signs for `localhost` and `127.0.0.1`; PEM texts of
/// the CA, the certificate and the server's key.
fn make_certificates() -> (String, String, String) {
    let (ca, _) = make_ca("topostate test CA");
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "topostate test server");
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// A self-signed CA named `name`: the issuer, and its certificate's PEM text.
pub fn make_ca(name: &str) -> (CertifiedIssuer<'static, KeyPair>, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let pem = issuer.pem();
    (issuer, pem)
}

/// Writes `text` to `path` in the server's data directory, owned by the server's user,
/// mode 0600 (PostgreSQL refuses a key file others may read). The tests run on the
/// server's host, as root or as the server's user.
fn write_server_file(path: &str, text: &str) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
    let path = Path::new(path);
    let owner = path
        .parent()
        .and_then(|dir| std::fs::metadata(dir).ok())
        .unwrap_or_else(|| panic!("cannot see the data directory of {}", path.display()));
    std::fs::write(path, text)
        .unwrap_or_else(|e| panic!("cannot write {} (run as root?): {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown(path, Some(owner.uid()), Some(owner.gid())).unwrap();
}

/// Puts the tests' rules first in `pg_hba.conf`, unless they are there.
fn add_hba_rules(admin: &mut Client) {
    let path: String = admin.query_one("SHOW hba_file", &[]).unwrap().get(0);
    let current: String = admin
        .query_one("SELECT pg_read_file($1)", &[&path])
        .unwrap()
        .get(0);
    if current.contains(HBA_MARK) {
        return;
    }
    let rules = format!(
        "{HBA_MARK}\n\
         hostssl all {TLS_ROLE} 127.0.0.1/32 trust\n\
         hostnossl all {TLS_ROLE} 127.0.0.1/32 reject\n\
         host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n\
         # the cluster's own rules follow\n"
    );
    write_server_file(&path, &format!("{rules}{current}"));
}

fn add_roles(admin: &mut Client) {
    let (_, db) = port_and_db();
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{TLS_ROLE}') THEN \
                 CREATE ROLE {TLS_ROLE} LOGIN; END IF; \
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PASSWORD_ROLE}') THEN \
                 CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'; END IF; \
             END $$; \
             GRANT CREATE ON DATABASE \"{db}\" TO {TLS_ROLE}, {PASSWORD_ROLE};"
        ))
        .unwrap();
}

/// A key=value connection string to the test server as `user`, with `extra` appended.
pub fn conninfo(host: &str, user: &str, extra: &str) -> String {
    let (port, db) = port_and_db();
    format!("host={host} port={port} user={user} dbname={db} {extra}")
}

/// `TOPOSTATE_PG_URL` as a key=value string, to append settings to.
pub fn kv_url() -> String {
    let config: postgres::Config = pg_url().parse().unwrap();
    conninfo("127.0.0.1", config.get_user().unwrap_or("postgres"), "")
}
