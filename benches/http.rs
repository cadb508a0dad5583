//! The HTTP layer against bare axum handlers on the same server, and a served SQLite store
//! against the same store called in-process.
//!
//! - `http_get_detail`, `http_canvas_save`: one request through `topostate::http::router`
//!   (auth check, If-Match, ETag, problem mapping, the body extractor) against a bare
//!   handler mounted on the same server that makes the same store call and returns the same
//!   JSON with `axum::Json`. Same listener, same keep-alive client, same store file.
//! - `http_32_writers`: 32 keep-alive clients, each saving its own topology's canvas in a
//!   loop through the router, against the same 32 clients saving through the bare handler
//!   (what the router costs under concurrency), and against 32 tasks calling the same
//!   store in-process (what HTTP costs: a reference, not a goal).
//!
//! The server runs on its own runtime (2 workers) and the clients on another, both in this
//! process, on loopback.

// Bench arithmetic: counts and indexes far below 2^52 turned into rates, ratios and
// percentile positions, where a float's rounding is the intended result.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use criterion::Criterion;
use topostate::TopologyId;
use topostate::http::{Options, router};
use topostate::store::{
    AsyncSqliteStore, AsyncTopologyStore, ChildEdit, LanId, LanPatch, NewLan, SqliteStore,
    TopologyStore,
};

type Store = Arc<dyn AsyncTopologyStore>;

/// The bare detail: the same store call, `axum::Json`, nothing else.
async fn bare_detail(State(store): State<Store>, Path(id): Path<u64>) -> Json<serde_json::Value> {
    let detail = store.topology_detail(TopologyId::new(id)).await.unwrap();
    Json(serde_json::to_value(detail).unwrap())
}

/// The bare canvas save: the body parsed with `serde_json`, the same `edit` call.
async fn bare_edits(
    State(store): State<Store>,
    Path(id): Path<u64>,
    body: axum::body::Bytes,
) -> Json<serde_json::Value> {
    #[derive(serde::Deserialize)]
    struct Batch {
        edits: Vec<ChildEdit>,
        expected_version: u64,
    }
    let batch: Batch = serde_json::from_slice(&body).unwrap();
    let report = store
        .edit(
            TopologyId::new(id),
            Some(batch.expected_version),
            &batch.edits,
        )
        .await
        .unwrap();
    Json(serde_json::to_value(report).unwrap())
}

struct Bench {
    client_rt: tokio::runtime::Runtime,
    _server_rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    store: Arc<AsyncSqliteStore>,
    base: String,
    client: reqwest::Client,
}

fn setup() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(AsyncSqliteStore::new(
        SqliteStore::open(dir.path().join("bench.db")).unwrap(),
    ));
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dyn_store: Store = store.clone();
    let app: Router = router(Arc::clone(&dyn_store), Options::new()).merge(
        Router::new()
            .route("/bare/{id}", get(bare_detail))
            .route("/bare/{id}/edits", post(bare_edits))
            .with_state(dyn_store),
    );
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    server_rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    Bench {
        client_rt,
        _server_rt: server_rt,
        _dir: dir,
        store,
        base,
        client,
    }
}

fn fresh_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A topology with 8 LANs (the detail's payload), returning its id, first LAN and version.
fn seeded(store: &SqliteStore) -> (TopologyId, LanId, u64) {
    let id = store.create_topology(&fresh_name()).unwrap().id;
    let mut version = 1;
    let mut first = None;
    for i in 0..8 {
        let e = store
            .add_lan(
                id,
                NewLan::new(format!("lan-{i}"), "10.0.0.0/24"),
                Some(version),
            )
            .unwrap();
        version = e.version;
        first.get_or_insert(e.id);
    }
    (id, first.unwrap(), version)
}

/// `n` GETs of `url`, awaited one after another on one keep-alive connection.
fn gets(b: &Bench, url: &str, n: u64) -> Duration {
    b.client_rt.block_on(async {
        let start = Instant::now();
        for _ in 0..n {
            let r = b.client.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            std::hint::black_box(r.bytes().await.unwrap());
        }
        start.elapsed()
    })
}

/// The canvas-save body: move the LAN, with the expected version.
fn save_body(lan: LanId, n: u64, version: u64) -> String {
    format!(
        r#"{{"edits":[{{"op":"update_lan","id":{},"patch":{{"x":{n}.5}}}}],"expected_version":{version}}}"#,
        lan.get()
    )
}

/// `n` versioned canvas saves to `url`, each with the version the last one answered.
fn saves(b: &Bench, url: &str, lan: LanId, version: &mut u64, n: u64) -> Duration {
    b.client_rt.block_on(async {
        let start = Instant::now();
        for i in 0..n {
            let r = b
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(save_body(lan, i, *version))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let report: serde_json::Value =
                serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            *version = report["version"].as_u64().unwrap();
        }
        start.elapsed()
    })
}

fn single_requests(c: &mut Criterion) {
    let b = setup();
    let (id, _, _) = seeded(b.store.get_ref());
    let served = format!("{}/api/v1/topologies/{id}", b.base);
    let bare = format!("{}/bare/{id}", b.base);
    let json = |url: &str| {
        b.client_rt.block_on(async {
            let bytes = b
                .client
                .get(url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        })
    };
    assert_eq!(
        json(&served),
        json(&bare),
        "both sides answer the same JSON"
    );
    let mut g = c.benchmark_group("http_get_detail");
    g.bench_function("serve", |bb| bb.iter_custom(|n| gets(&b, &served, n)));
    g.bench_function("bare_axum", |bb| bb.iter_custom(|n| gets(&b, &bare, n)));
    g.finish();
    common::interleaved(
        "http get detail, serve / bare axum",
        30,
        || gets(&b, &served, 200),
        || gets(&b, &bare, 200),
    );

    let (sid, slan, sv) = seeded(b.store.get_ref());
    let (bid, blan, bv) = seeded(b.store.get_ref());
    let served = format!("{}/api/v1/topologies/{sid}/edits", b.base);
    let bare = format!("{}/bare/{bid}/edits", b.base);
    let (mut sv, mut bv) = (sv, bv);
    let mut g = c.benchmark_group("http_canvas_save");
    g.bench_function("serve", |bb| {
        bb.iter_custom(|n| saves(&b, &served, slan, &mut sv, n));
    });
    g.bench_function("bare_axum", |bb| {
        bb.iter_custom(|n| saves(&b, &bare, blan, &mut bv, n));
    });
    g.finish();
    let (sv, bv) = (std::cell::Cell::new(sv), std::cell::Cell::new(bv));
    common::interleaved(
        "http canvas save, serve / bare axum",
        30,
        || {
            let mut v = sv.get();
            let d = saves(&b, &served, slan, &mut v, 100);
            sv.set(v);
            d
        },
        || {
            let mut v = bv.get();
            let d = saves(&b, &bare, blan, &mut v, 100);
            bv.set(v);
            d
        },
    );
}

/// Writers: 32 at once, `per` saves each, each on its own topology.
const WRITERS: usize = 32;

/// 32 clients (one connection each) saving through the server: through the router, or
/// through the bare handler (`bare`).
fn served_writers(
    b: &Bench,
    topologies: &[(TopologyId, LanId, u64)],
    per: u64,
    bare: bool,
) -> (Duration, Vec<u64>) {
    b.client_rt.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for &(id, lan, version) in topologies {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let url = if bare {
                format!("{}/bare/{id}/edits", b.base)
            } else {
                format!("{}/api/v1/topologies/{id}/edits", b.base)
            };
            tasks.push(tokio::spawn(async move {
                let mut version = version;
                for i in 0..per {
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("if-match", format!("\"{version}\""))
                        .body(save_body(lan, i, version))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    let report: serde_json::Value =
                        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
                    version = report["version"].as_u64().unwrap();
                }
                version
            }));
        }
        let mut versions = Vec::new();
        for t in tasks {
            versions.push(t.await.unwrap());
        }
        (start.elapsed(), versions)
    })
}

/// 32 tasks calling the same store in-process.
fn inprocess_writers(
    b: &Bench,
    topologies: &[(TopologyId, LanId, u64)],
    per: u64,
) -> (Duration, Vec<u64>) {
    b.client_rt.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for &(id, lan, version) in topologies {
            let store = Arc::clone(&b.store);
            tasks.push(tokio::spawn(async move {
                let mut version = version;
                for i in 0..per {
                    let patch = LanPatch::new().with_x(Some(i as f64 + 0.5));
                    let edits = [ChildEdit::UpdateLan(lan.into(), patch)];
                    version = store.edit(id, Some(version), &edits).await.unwrap().version;
                }
                version
            }));
        }
        let mut versions = Vec::new();
        for t in tasks {
            versions.push(t.await.unwrap());
        }
        (start.elapsed(), versions)
    })
}

/// Runs `writers` on `topologies` and keeps the versions they answered.
fn keeping(
    topologies: &mut [(TopologyId, LanId, u64)],
    writers: impl FnOnce(&[(TopologyId, LanId, u64)]) -> (Duration, Vec<u64>),
) -> Duration {
    let (d, versions) = writers(topologies);
    for (t, v) in topologies.iter_mut().zip(versions) {
        t.2 = v;
    }
    d
}

fn throughput(_c: &mut Criterion) {
    let b = setup();
    let seeded_32 = || -> Vec<_> { (0..WRITERS).map(|_| seeded(b.store.get_ref())).collect() };
    let (mut served, mut bare, mut direct) = (seeded_32(), seeded_32(), seeded_32());
    let per = 20;
    common::interleaved(
        "http 32 writers x 20 saves, time serve / bare axum",
        20,
        || keeping(&mut served, |t| served_writers(&b, t, per, false)),
        || keeping(&mut bare, |t| served_writers(&b, t, per, true)),
    );
    // Ratio of times for the same work; throughput ratio (served / in-process) is its inverse.
    common::interleaved(
        "http 32 writers x 20 saves, time serve / in-process (throughput ratio = 1 / this)",
        20,
        || keeping(&mut served, |t| served_writers(&b, t, per, false)),
        || keeping(&mut direct, |t| inprocess_writers(&b, t, per)),
    );
}

fn main() {
    let mut c = common::criterion(3, 20);
    single_requests(&mut c);
    throughput(&mut c);
    c.final_summary();
}
