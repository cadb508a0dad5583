//! The wire types against a plain `#[derive]` mirror: a JSON round trip (serialize, then
//! deserialize) of a `TopologyDetail` with 50 children.
//!
//! The anchor (`Anchor*`, below) has the same fields, names and order and writes the same
//! bytes (checked before measuring), but no checks: its strings are taken as they come,
//! its timestamps are strings, its ids and versions plain integers. The ratio is what the
//! library's wire checks (names, texts, coordinates, id and version ranges, RFC 3339
//! formatting and parsing) cost over serde's own work.

// Bench arithmetic: counts and indexes far below 2^52 turned into rates, ratios and
// percentile positions, where a float's rounding is the intended result.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use topostate::store::{
    Decky, DeckyId, DeckyState, Edge, EdgeId, Lan, LanId, NewDecky, NewLan, Timestamp,
    TopologyDetail, TopologyRecord,
};
use topostate::{TopologyId, TopologyStatus};

// ---- anchor -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct AnchorDetail {
    topology: AnchorRecord,
    lans: Vec<AnchorLan>,
    deckies: Vec<AnchorDecky>,
    edges: Vec<AnchorEdge>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AnchorStatus {
    Pending,
    Deploying,
    Active,
    Degraded,
    Failed,
    TearingDown,
    TornDown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AnchorDeckyState {
    Pending,
    Running,
    Failed,
    TornDown,
    Degraded,
    TearingDown,
    TeardownFailed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct AnchorRecord {
    id: u64,
    name: String,
    status: AnchorStatus,
    version: u64,
    reason: Option<String>,
    needs_resync: bool,
    created_at: String,
    status_changed_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct AnchorLan {
    id: u64,
    topology_id: u64,
    name: String,
    subnet: String,
    is_dmz: bool,
    network_id: Option<String>,
    x: Option<f64>,
    y: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct AnchorDecky {
    id: u64,
    topology_id: u64,
    name: String,
    services: Vec<String>,
    config: Option<String>,
    state: AnchorDeckyState,
    ip: Option<String>,
    last_error: Option<String>,
    x: Option<f64>,
    y: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct AnchorEdge {
    id: u64,
    topology_id: u64,
    decky: u64,
    lan: u64,
    is_bridge: bool,
    forwards_l3: bool,
}

// ---- the same detail, both ways -------------------------------------------------------------

const LANS: u64 = 15;
const DECKIES: u64 = 20;
const EDGES: u64 = 15;

fn detail() -> TopologyDetail {
    let topology_id = TopologyId::new(1);
    let lans = (1..=LANS)
        .map(|i| {
            let new = NewLan::new(format!("lan-{i:02}"), format!("10.0.{i}.0/24"))
                .with_dmz(i == 1)
                .with_position(i as f64 * 40.5, 120.25);
            let mut lan = Lan::new(LanId::new(i), topology_id, new);
            lan.network_id = Some(format!("net-{i:08x}"));
            lan
        })
        .collect();
    let deckies = (1..=DECKIES)
        .map(|i| {
            let new = NewDecky::new(format!("decky-{i:02}"))
                .with_services(["ssh", "http"])
                .with_config(r#"{"banner":"nginx","tls":true}"#)
                .with_position(i as f64 * 30.0, 300.5);
            let mut decky = Decky::new(DeckyId::new(i), topology_id, new);
            decky.state = DeckyState::Running;
            decky.ip = Some(format!("10.0.{}.{}", i % LANS + 1, 10 + i));
            decky
        })
        .collect();
    let edges = (1..=EDGES)
        .map(|i| {
            let mut edge = Edge::new(
                EdgeId::new(i),
                topology_id,
                DeckyId::new(i),
                LanId::new(i % LANS + 1),
            );
            edge.is_bridge = i % 5 == 0;
            edge
        })
        .collect();
    let mut topology = TopologyRecord::new(
        topology_id,
        "lab",
        Timestamp::from_micros(1_700_000_000_000_000),
    );
    topology.status = TopologyStatus::Active;
    topology.version = 42;
    topology.status_changed_at = Timestamp::from_micros(1_700_000_123_456_789);
    TopologyDetail::new(topology, lans, deckies, edges)
}

fn anchor(detail: &TopologyDetail) -> AnchorDetail {
    // Through JSON once, untimed: the mirror's fields are the library's, so it reads them.
    serde_json::from_str(&serde_json::to_string(detail).unwrap()).unwrap()
}

// ---- the measured routines ------------------------------------------------------------------

fn lib_round_trip(detail: &TopologyDetail) -> TopologyDetail {
    let json = serde_json::to_string(black_box(detail)).unwrap();
    serde_json::from_str(black_box(&json)).unwrap()
}

fn anchor_round_trip(detail: &AnchorDetail) -> AnchorDetail {
    let json = serde_json::to_string(black_box(detail)).unwrap();
    serde_json::from_str(black_box(&json)).unwrap()
}

fn timed<T>(n: u32, mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    start.elapsed()
}

fn main() {
    let lib = detail();
    let mirror = anchor(&lib);
    assert_eq!(lib.lans.len() + lib.deckies.len() + lib.edges.len(), 50);
    // The two sides write the same bytes and read them back whole, or the ratio means
    // nothing.
    assert_eq!(
        serde_json::to_string(&lib).unwrap(),
        serde_json::to_string(&mirror).unwrap()
    );
    assert_eq!(lib_round_trip(&lib), lib);
    assert_eq!(anchor_round_trip(&mirror), mirror);

    // `WIRE_PROBE=topostate:N` or `anchor:N` runs N round trips of one side and exits: a
    // fixed amount of work for an instruction count (valgrind), which load cannot skew.
    if let Ok(probe) = std::env::var("WIRE_PROBE") {
        let (side, n) = probe.split_once(':').expect("WIRE_PROBE=side:count");
        let n: u32 = n.parse().expect("a count");
        match side {
            "topostate" => drop(timed(n, || lib_round_trip(&lib))),
            "anchor" => drop(timed(n, || anchor_round_trip(&mirror))),
            _ => panic!("WIRE_PROBE side is topostate or anchor"),
        }
        return;
    }

    common::interleaved(
        "JSON round trip, TopologyDetail with 50 children vs derived mirror",
        31,
        || timed(200, || lib_round_trip(&lib)),
        || timed(200, || anchor_round_trip(&mirror)),
    );

    let mut c = common::criterion(3, 30);
    let mut group = c.benchmark_group("json_round_trip_detail_50");
    group.bench_function("topostate", |b| b.iter(|| lib_round_trip(&lib)));
    group.bench_function("anchor_derive_mirror", |b| {
        b.iter(|| anchor_round_trip(&mirror));
    });
    group.finish();
    c.final_summary();
}
