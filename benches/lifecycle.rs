//! The core types against hand-written anchors, each pair measured side by side in one run.
//!
//! Every group holds the library function (`topostate`) and the anchor it is judged by
//! (`anchor_*`), implemented below in this file, so the ratio between them is what
//! BENCHMARKS.md records; absolute times on a shared machine mean little.

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde::Deserialize;
use topostate::{Topology, TopologyData, TopologyId, TopologyStatus, state};

// ---- anchors --------------------------------------------------------------------------

/// The hand-written parse every generated one is compared with.
fn anchor_parse(s: &str) -> Result<TopologyStatus, ()> {
    match s {
        "pending" => Ok(TopologyStatus::Pending),
        "deploying" => Ok(TopologyStatus::Deploying),
        "active" => Ok(TopologyStatus::Active),
        "degraded" => Ok(TopologyStatus::Degraded),
        "failed" => Ok(TopologyStatus::Failed),
        "tearing_down" => Ok(TopologyStatus::TearingDown),
        "torn_down" => Ok(TopologyStatus::TornDown),
        _ => Err(()),
    }
}

/// The same seven statuses as a plain serde-derived enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
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

/// Bit `to` of `ANCHOR_MASK[from]` is set iff `from -> to` is legal (declaration order).
const ANCHOR_MASK: [u8; 7] = [
    0b100_0010, // pending -> deploying, torn_down
    0b011_1100, // deploying -> active, failed, degraded, tearing_down
    0b010_1000, // active -> degraded, tearing_down
    0b010_0100, // degraded -> active, tearing_down
    0b010_0000, // failed -> tearing_down
    0b100_1000, // tearing_down -> torn_down, degraded
    0b000_0000, // torn_down
];

fn anchor_mask_allows(from: TopologyStatus, to: TopologyStatus) -> bool {
    ANCHOR_MASK[from as usize] & (1u8 << (to as u8)) != 0
}

/// The seed's shape: a map from each status to the set of its successors.
fn anchor_hash_table() -> HashMap<TopologyStatus, HashSet<TopologyStatus>> {
    TopologyStatus::ALL
        .iter()
        .map(|&from| (from, from.legal_next().collect()))
        .collect()
}

/// Moving the data through eight plain functions, doing what a typed transition does to
/// the data (clearing the last-transition reason) and nothing else.
#[inline]
fn plain_step(mut data: TopologyData) -> TopologyData {
    data.reason = None;
    data
}

// Both chains are compiled as one out-of-line function each, so the comparison is between
// their bodies, not between the inliner's decisions about them.
#[inline(never)]
fn anchor_chain(data: TopologyData) -> TopologyData {
    let data = plain_step(data);
    let data = plain_step(data);
    let data = plain_step(data);
    let data = plain_step(data);
    let data = plain_step(data);
    let data = plain_step(data);
    let data = plain_step(data);
    plain_step(data)
}

/// The same eight moves through the typestate:
/// pending → deploying → degraded → active → degraded → tearing_down → degraded →
/// tearing_down → torn_down.
#[inline(never)]
fn typed_chain(t: Topology<state::Pending>) -> Topology<state::TornDown> {
    t.deploy()
        .transition::<state::Degraded>()
        .recover()
        .transition::<state::Degraded>()
        .tear_down()
        .transition::<state::Degraded>()
        .tear_down()
        .finish_teardown()
}

// The typestate adds nothing to the data it carries, in any state.
static_assertions::assert_eq_size!(Topology<state::Pending>, TopologyData);
static_assertions::assert_eq_size!(Topology<state::TornDown>, TopologyData);
static_assertions::assert_eq_align!(Topology<state::Pending>, TopologyData);

// ---- inputs ---------------------------------------------------------------------------

/// 70 valid strings: each status ten times, interleaved.
fn valid_inputs() -> Vec<&'static str> {
    (0..10).flat_map(|_| TopologyStatus::NAMES).collect()
}

/// 100 strings, 30 of them invalid (near misses, case, padding, empty, unknown), spread
/// through the valid ones.
fn mixed_inputs() -> Vec<&'static str> {
    const INVALID: [&str; 10] = [
        "Active",
        "activ",
        "torn-down",
        "",
        "pending ",
        "deleted",
        "TEARING_DOWN",
        "degrade",
        "failed\n",
        "deploy",
    ];
    let valid = valid_inputs();
    let mut out = Vec::with_capacity(100);
    let mut v = valid.iter();
    let mut bad = INVALID.iter().cycle();
    for i in 0..100 {
        // Every 10 positions: 3 invalid (at 1, 4, 7), 7 valid.
        if matches!(i % 10, 1 | 4 | 7) {
            out.push(*bad.next().unwrap());
        } else {
            out.push(*v.next().unwrap());
        }
    }
    assert_eq!(out.iter().filter(|s| anchor_parse(s).is_err()).count(), 30);
    out
}

fn json_inputs() -> Vec<String> {
    TopologyStatus::NAMES
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect()
}

fn all_pairs() -> Vec<(TopologyStatus, TopologyStatus)> {
    TopologyStatus::ALL
        .iter()
        .flat_map(|&a| TopologyStatus::ALL.iter().map(move |&b| (a, b)))
        .collect()
}

// ---- benches --------------------------------------------------------------------------

fn parse_valid(c: &mut Criterion) {
    let inputs = valid_inputs();
    let mut g = c.benchmark_group("parse_valid");
    g.bench_function("topostate", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for s in black_box(&inputs) {
                if let Ok(st) = TopologyStatus::parse(s) {
                    n += st as usize;
                }
            }
            n
        });
    });
    g.bench_function("anchor_match", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for s in black_box(&inputs) {
                if let Ok(st) = anchor_parse(s) {
                    n += st as usize;
                }
            }
            n
        });
    });
    g.finish();
}

fn parse_mixed(c: &mut Criterion) {
    let inputs = mixed_inputs();
    let mut g = c.benchmark_group("parse_30pct_invalid");
    g.bench_function("topostate", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for s in black_box(&inputs) {
                match TopologyStatus::parse(s) {
                    Ok(st) => n += st as usize,
                    Err(e) => n += black_box(e).input().len(),
                }
            }
            n
        });
    });
    g.bench_function("anchor_match", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for s in black_box(&inputs) {
                match anchor_parse(s) {
                    Ok(st) => n += st as usize,
                    Err(()) => n += black_box(s).len(),
                }
            }
            n
        });
    });
    g.finish();
}

fn serde_deserialize(c: &mut Criterion) {
    let inputs = json_inputs();
    let mut g = c.benchmark_group("serde_json_deserialize");
    g.bench_function("topostate", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for s in black_box(&inputs) {
                let st: TopologyStatus = serde_json::from_str(s).unwrap();
                n += st as usize;
            }
            n
        });
    });
    g.bench_function("anchor_derive", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for s in black_box(&inputs) {
                let st: AnchorStatus = serde_json::from_str(s).unwrap();
                n += st as usize;
            }
            n
        });
    });
    g.finish();
}

fn can_transition_to(c: &mut Criterion) {
    let pairs = all_pairs();
    let table = anchor_hash_table();
    // The anchors agree with the library on every pair, or the comparison means nothing.
    for &(a, b) in &pairs {
        assert_eq!(
            a.can_transition_to(b),
            anchor_mask_allows(a, b),
            "{a} -> {b}"
        );
        assert_eq!(a.can_transition_to(b), table[&a].contains(&b), "{a} -> {b}");
    }
    let mut g = c.benchmark_group("can_transition_to_49_pairs");
    g.bench_function("topostate", |b| {
        b.iter(|| {
            black_box(&pairs)
                .iter()
                .filter(|&&(a, b)| a.can_transition_to(b))
                .count()
        });
    });
    g.bench_function("anchor_bitmask", |b| {
        b.iter(|| {
            black_box(&pairs)
                .iter()
                .filter(|&&(a, b)| anchor_mask_allows(a, b))
                .count()
        });
    });
    g.bench_function("anchor_hashmap", |b| {
        b.iter(|| {
            let table = black_box(&table);
            black_box(&pairs)
                .iter()
                .filter(|&&(a, b)| table.get(&a).is_some_and(|next| next.contains(&b)))
                .count()
        });
    });
    g.finish();
}

/// 64 topologies per iteration, each through the 8-step chain; the input is built outside
/// the timing and the output vector reuses the input's allocation in both.
fn typed_chain_8(c: &mut Criterion) {
    const N: u64 = 64;
    let mut g = c.benchmark_group("typed_chain_8_steps_x64");
    g.bench_function("topostate", |b| {
        b.iter_batched(
            || {
                (0..N)
                    .map(|i| Topology::new(TopologyId::new(i), "lab"))
                    .collect::<Vec<_>>()
            },
            |v| v.into_iter().map(typed_chain).collect::<Vec<_>>(),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("anchor_move", |b| {
        b.iter_batched(
            || {
                (0..N)
                    .map(|i| TopologyData::new(TopologyId::new(i), "lab"))
                    .collect::<Vec<_>>()
            },
            |v| v.into_iter().map(anchor_chain).collect::<Vec<_>>(),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = parse_valid, parse_mixed, serde_deserialize, can_transition_to, typed_chain_8
}
criterion_main!(benches);
