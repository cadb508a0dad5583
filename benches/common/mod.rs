//! What every bench file shares: the interleaved comparison of the library and its anchor.

// Bench arithmetic: counts and indexes far below 2^52 turned into rates, ratios and
// percentile positions, where a float's rounding is the intended result.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::time::Duration;

use criterion::Criterion;

/// The library against its anchor, interleaved: each of `rounds` rounds times one batch of
/// work on each side (which side goes first alternates), so load that drifts over seconds
/// on this shared machine weighs on both alike. Prints the median per-round ratio (library
/// / anchor) and its quartiles.
#[allow(dead_code)] // benches/postgres.rs interleaves blocks of rounds its own way.
pub fn interleaved(
    what: &str,
    rounds: usize,
    mut lib: impl FnMut() -> Duration,
    mut anchor: impl FnMut() -> Duration,
) {
    let (mut ratios, mut libs, mut anchors) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (l, a) = if round % 2 == 0 {
            let l = lib();
            (l, anchor())
        } else {
            let a = anchor();
            (lib(), a)
        };
        ratios.push(l.as_secs_f64() / a.as_secs_f64());
        libs.push(l);
        anchors.push(a);
    }
    ratios.sort_by(f64::total_cmp);
    libs.sort();
    anchors.sort();
    let q = |p: f64| ((rounds.max(1) - 1) as f64 * p).round() as usize;
    println!(
        "interleaved {what}: ratio {:.3} (quartiles {:.3}..{:.3}, {rounds} rounds; \
         median round {:?} / {:?})",
        ratios[q(0.5)],
        ratios[q(0.25)],
        ratios[q(0.75)],
        libs[q(0.5)],
        anchors[q(0.5)],
    );
}

/// Times `iters` operations run in chunks of at most `chunk` (`run(n)` does `n` and returns
/// the time they took, leaving its set-up and clean-up untimed), so a topology or row never
/// grows without bound whatever the iteration count criterion asks for.
#[allow(dead_code)] // Not every bench writes in chunks.
pub fn chunked(iters: u64, chunk: u64, mut run: impl FnMut(u64) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = chunk.min(iters - done);
        total += run(n);
        done += n;
    }
    total
}

/// The criterion settings every bench shares (trimmed so the whole suite stays within five
/// minutes): 0.5 s of warm-up, then `measure_secs` seconds and `samples` samples per
/// function, unless the command line says otherwise.
pub fn criterion(measure_secs: u64, samples: usize) -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(measure_secs))
        .sample_size(samples)
        .configure_from_args()
}

/// Every `CREATE` statement of the SQLite database at `path`, in creation order (SQLite
/// keeps each table's `CREATE` up to date with its `ALTER`s): a raw anchor's database gets
/// the store's own schema from a store made on a template file.
#[cfg(feature = "sqlite")]
#[allow(dead_code)] // only the benches with a raw rusqlite anchor beside the store
pub fn store_schema(path: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL \
             AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
        )
        .unwrap();
    let statements: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    statements.join(";\n") + ";"
}

/// Configures a raw anchor's connection as `SqliteStore` configures its own: busy timeout,
/// statement cache, foreign keys, the query planner stability guarantee, and on a file WAL
/// with `synchronous = NORMAL`.
#[cfg(feature = "sqlite")]
#[allow(dead_code)] // only the benches with a raw rusqlite anchor beside the store
pub fn configure_like_store(conn: &rusqlite::Connection, file: bool) {
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.set_prepared_statement_cache_capacity(96);
    assert!(
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true
        )
        .unwrap()
    );
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    if file {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .unwrap();
        assert!(mode.eq_ignore_ascii_case("wal"));
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    }
}
