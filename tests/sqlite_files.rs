//! `SqliteStore::open` on files that are not (yet) stores: what it takes as a new store
//! (a new path, a zero-byte file, an SQLite database with nothing in it), and what it
//! refuses untouched (another application's database, a clashing table, garbage), with
//! every byte of the directory compared before and after.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use tempfile::TempDir;
use topostate::store::{Foreign, SqliteOptions, SqliteStore, StoreError, TopologyStore};

/// Every file in `dir`, with its bytes: what a refused open must leave exactly as it was
/// (the main file, its journal mode in the header, and no `-wal`/`-shm` beside it).
fn snapshot(dir: &Path) -> Snapshot {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

/// A plain rusqlite connection, as another application has.
fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

/// A file in a fresh directory, made by `make` on a raw connection that is closed after.
fn database(make: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    raw(&path).execute_batch(make).unwrap();
    (dir, path)
}

/// SQLite's journal mode as the file's header stores it: 1 rollback journal, 2 WAL.
fn header_journal(path: &Path) -> (u8, u8) {
    let bytes = std::fs::read(path).unwrap();
    (bytes[18], bytes[19])
}

type Snapshot = BTreeMap<String, Vec<u8>>;

/// Opening refuses the file in `dir` with `NotAStore` naming it and `found`, and leaves
/// every file in the directory byte for byte as it was, with no file added.
fn refused_untouched(dir: &Path, path: &Path, found: &Foreign) -> StoreError {
    let (e, before, after) = refused(dir, path, found);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the directory's files changed"
    );
    for (name, bytes) in &before {
        assert!(after[name] == *bytes, "{name} changed");
    }
    e
}

/// Opening refuses the file with `NotAStore` naming it and `found`; the error and the
/// directory before and after.
fn refused(dir: &Path, path: &Path, found: &Foreign) -> (StoreError, Snapshot, Snapshot) {
    let before = snapshot(dir);
    let e = SqliteStore::open(path).unwrap_err();
    match &e {
        StoreError::NotAStore { path: p, found: f } => {
            assert_eq!(p, path, "{e}");
            assert_eq!(f, found, "{e}");
        }
        other => panic!("expected NotAStore, got {other:?}"),
    }
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a topostate store"), "{message}");
    assert!(message.contains("left untouched"), "{message}");
    (e, before, snapshot(dir))
}

fn tables(names: &[&str]) -> Foreign {
    Foreign::Tables(names.iter().map(|n| (*n).to_owned()).collect())
}

// ---- refused untouched -----------------------------------------------------------------

#[test]
fn another_applications_database_is_refused_untouched() {
    let (dir, path) = database(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id));
         CREATE VIEW big_orders AS SELECT * FROM orders WHERE id > 100;
         CREATE INDEX orders_user ON orders (user_id);
         INSERT INTO users (email) VALUES ('a@example.org'), ('b@example.org');
         INSERT INTO orders (user_id) VALUES (1), (2), (1);",
    );
    assert_eq!(header_journal(&path), (1, 1), "a rollback-journal file");
    let e = refused_untouched(
        dir.path(),
        &path,
        &tables(&["big_orders", "orders", "users"]),
    );
    assert!(
        e.to_string()
            .contains("holding 'big_orders', 'orders', 'users'"),
        "{e}"
    );
    assert_eq!(
        header_journal(&path),
        (1, 1),
        "still a rollback-journal file"
    );
    // The other application still reads its data as it left it.
    let emails: i64 = raw(&path)
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(emails, 2);
}

#[test]
fn a_wal_mode_database_is_refused_without_leaving_wal_files() {
    let (dir, path) = database(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
         INSERT INTO notes (body) VALUES ('keep me');",
    );
    assert_eq!(header_journal(&path), (2, 2), "a WAL-mode file");
    assert_eq!(
        snapshot(dir.path()).len(),
        1,
        "closed cleanly: no -wal, no -shm"
    );
    refused_untouched(dir.path(), &path, &tables(&["notes"]));
}

#[test]
fn a_wal_mode_database_in_use_is_refused_and_its_user_keeps_working() {
    let (dir, path) = database(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
    );
    // The other application is running: its connection holds the WAL and an uncheckpointed
    // write.
    let app = raw(&path);
    app.execute("INSERT INTO notes (body) VALUES ('in the wal')", [])
        .unwrap();
    let (_, before, after) = refused(dir.path(), &path, &tables(&["notes"]));
    // The database and its WAL are unchanged; the `-shm` is the WAL's shared-memory index,
    // where every reader (the refused check too) takes a read mark, so it is not compared.
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["app.db", "app.db-shm", "app.db-wal"]
    );
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    assert!(before["app.db"] == after["app.db"]);
    assert!(before["app.db-wal"] == after["app.db-wal"]);
    app.execute("INSERT INTO notes (body) VALUES ('after')", [])
        .unwrap();
    let rows: i64 = app
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}

#[test]
fn a_clashing_lans_table_is_refused_untouched() {
    // Before, the store switched this file to WAL and then refused it.
    let (dir, path) = database(
        "CREATE TABLE lans (id INTEGER PRIMARY KEY, cidr TEXT NOT NULL);
         INSERT INTO lans (cidr) VALUES ('10.0.0.0/8');",
    );
    refused_untouched(dir.path(), &path, &tables(&["lans"]));
    assert_eq!(
        header_journal(&path),
        (1, 1),
        "still a rollback-journal file"
    );
}

#[test]
fn a_meta_table_of_another_application_is_not_a_stamp() {
    let (dir, path) = database(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
         INSERT INTO meta VALUES ('app_version', '3.1');",
    );
    refused_untouched(dir.path(), &path, &tables(&["meta"]));
    let (dir, path) = database("CREATE TABLE meta (name TEXT, data BLOB);");
    refused_untouched(dir.path(), &path, &tables(&["meta"]));
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let garbage: Vec<u8> = (0..10_000_u32)
        .map(|i| u8::try_from(i.wrapping_mul(2_654_435_761) >> 24).unwrap())
        .collect();
    for bytes in [
        &garbage[..],
        b"x",
        b"SQLite format",
        b"SQLite format 2\0 and more",
    ] {
        std::fs::write(&path, bytes).unwrap();
        let e = refused_untouched(dir.path(), &path, &Foreign::NotSqlite);
        assert!(e.to_string().contains("not an SQLite database"), "{e}");
    }
}

#[test]
fn many_foreign_tables_are_counted_not_all_listed() {
    let make = (0..20)
        .map(|i| format!("CREATE TABLE t{i:02} (x);"))
        .collect::<Vec<_>>()
        .concat();
    let (dir, path) = database(&make);
    let names: Vec<String> = (0..20).map(|i| format!("t{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let e = refused_untouched(dir.path(), &path, &tables(&names));
    let message = e.to_string();
    assert!(message.contains("'t07' and 12 more"), "{message}");
    assert!(!message.contains("t08"), "{message}");
}

#[test]
fn a_store_of_another_declaration_is_refused_before_its_journal_mode_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    SqliteStore::open(&path)
        .unwrap()
        .create_topology("lab")
        .unwrap();
    let conn = raw(&path);
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE;
         UPDATE meta SET value = value || ',archived' WHERE key = 'fingerprint';",
    )
    .unwrap();
    drop(conn);
    let before = snapshot(dir.path());
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(e, StoreError::Corrupt { table: "meta", .. }),
        "{e:?}"
    );
    assert_eq!(before, snapshot(dir.path()));
    assert_eq!(header_journal(&path), (1, 1));
}

// ---- taken as a new store --------------------------------------------------------------

/// The file at `path` opened as a store, holds one topology, and reopens with it.
fn becomes_a_store(path: &Path) {
    let store = SqliteStore::open(path).unwrap();
    store.create_topology("lab").unwrap();
    drop(store);
    let store = SqliteStore::open(path).unwrap();
    assert_eq!(
        store
            .list_topologies(None, topostate::store::PageRequest::first(10))
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(header_journal(path), (2, 2), "a store is in WAL mode");
}

#[test]
fn a_new_path_becomes_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    becomes_a_store(&path);
}

#[test]
fn a_zero_byte_file_becomes_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    becomes_a_store(&path);
}

#[test]
fn an_empty_sqlite_database_becomes_a_store() {
    // A valid header and no table: what `sqlite3 file 'PRAGMA user_version = 7'` leaves,
    // or a database whose tables were all dropped.
    for make in [
        "PRAGMA user_version = 7;",
        "CREATE TABLE gone (x); DROP TABLE gone;",
        "PRAGMA journal_mode = WAL; CREATE TABLE gone (x); DROP TABLE gone;",
    ] {
        let (_dir, path) = database(make);
        assert!(std::fs::metadata(&path).unwrap().len() > 0, "{make}");
        becomes_a_store(&path);
    }
}

// ---- open-only -------------------------------------------------------------------------

/// Open-only refuses the file at `path` with `NotAStore` naming it and `found`, and leaves
/// the directory byte for byte as it was, with no file added.
fn open_only_refuses(dir: &Path, path: &Path, found: &Foreign) {
    let before = snapshot(dir);
    let e = SqliteOptions::new().open_only().open(path).unwrap_err();
    match &e {
        StoreError::NotAStore { path: p, found: f } => {
            assert_eq!(p, path);
            assert_eq!(f, found);
        }
        other => panic!("expected NotAStore, got {other:?}"),
    }
    if matches!(found, Foreign::Missing | Foreign::Empty) {
        assert!(e.to_string().contains("open-only"), "{e}");
    }
    assert_eq!(snapshot(dir), before, "open-only changed the directory");
}

#[test]
fn open_only_refuses_a_missing_file_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    open_only_refuses(dir.path(), &path, &Foreign::Missing);
    assert!(!path.exists());
}

#[test]
fn open_only_refuses_an_empty_file_and_creates_no_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    open_only_refuses(dir.path(), &path, &Foreign::Empty);
    assert_eq!(std::fs::read(&path).unwrap(), b"");
}

#[test]
fn open_only_refuses_an_sqlite_database_with_no_tables() {
    let (dir, path) = database("PRAGMA user_version = 7;");
    open_only_refuses(dir.path(), &path, &Foreign::Empty);
}

#[test]
fn open_only_opens_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let lab = SqliteStore::open(&path)
        .unwrap()
        .create_topology("lab")
        .unwrap();
    let store = SqliteOptions::new().open_only().open(&path).unwrap();
    assert_eq!(store.get_topology(lab.id).unwrap().name, "lab");
    // And the other refusals stay those of a plain open.
    let garbage = dir.path().join("notes.txt");
    std::fs::write(&garbage, "not a database").unwrap();
    open_only_refuses(dir.path(), &garbage, &Foreign::NotSqlite);
}
