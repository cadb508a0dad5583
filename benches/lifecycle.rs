//! The core types against hand-written anchors, each pair measured side by side in one run.
//!
//! Every group holds the library function (`topostate`) and the anchor it is judged by
//! (`anchor_*`), implemented below in this file, so the ratio between them is what
//! BENCHMARKS.md records; absolute times on a shared machine mean little. Before the
//! criterion groups, an interleaved pass prints each ratio measured round by round with
//! the two sides alternating, which a load drifting during the run cannot skew.

// Bench arithmetic: counts and indexes far below 2^52 turned into rates, ratios and
// percentile positions, where a float's rounding is the intended result.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    // The measured calls must inline exactly as in the library's own callers.
    clippy::inline_always
)]

mod common;

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use serde::Deserialize;
use topostate::{Topology, TopologyData, TopologyId, TopologyStatus, state};

// ---- anchors --------------------------------------------------------------------------

/// The hand-written parse every generated one is compared with.
///
/// Written in the caller's crate, a match like this is open to the inliner and is inlined
/// into its callers (forced here, as it has three). The library's `parse` is measured as
/// shipped, called across the crate boundary.
#[inline(always)]
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

/// The original Python module's shape: a map from each status to the set of its successors.
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
/// pending → deploying → degraded → active → degraded → `tearing_down` → degraded →
/// `tearing_down` → `torn_down`.
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
    assert_eq!(
        out.iter()
            .filter(|s| TopologyStatus::parse(s).is_err())
            .count(),
        30
    );
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

// ---- the measured routines -----------------------------------------------------------
//
// Each is compiled once, out of line, and called the same way by criterion and by the
// interleaved pass below, so both measure the same code (and callgrind can count it).

/// What an error that keeps the rejected input costs at the least, for reading the
/// 30 %-invalid ratio: the anchor's match, where an invalid input is copied into a
/// `Box<str>` (one allocation, which an owned error naming inputs of any length needs)...
#[cold]
#[inline(never)]
fn boxed_error(s: &str) -> Box<str> {
    Box::from(s)
}

/// ... or into a fixed inline buffer (no allocation at all; longer inputs are cut): its
/// length and bytes.
#[cold]
#[inline(never)]
fn inline_error(s: &str) -> (u8, [u8; 22]) {
    let mut bytes = [0; 22];
    let len = s.len().min(bytes.len());
    bytes[..len].copy_from_slice(&s.as_bytes()[..len]);
    (len as u8, bytes)
}

/// The anchor's match with an error made by `error`.
#[inline(always)]
fn anchor_match_keeping<E>(inputs: &[&str], error: fn(&str) -> E) -> usize {
    let mut n = 0;
    for s in inputs {
        match anchor_parse(s) {
            Ok(st) => n += st as usize,
            Err(()) => {
                black_box(&error(s));
                n += 1;
            }
        }
    }
    n
}

#[inline(never)]
fn anchor_match_boxed(inputs: &[&str]) -> usize {
    anchor_match_keeping(inputs, boxed_error)
}

#[inline(never)]
fn anchor_match_inline(inputs: &[&str]) -> usize {
    anchor_match_keeping(inputs, inline_error)
}

#[inline(never)]
fn lib_parse(inputs: &[&str]) -> usize {
    let mut n = 0;
    for s in inputs {
        match TopologyStatus::parse(s) {
            Ok(st) => n += st as usize,
            Err(e) => {
                black_box(&e);
                n += 1;
            }
        }
    }
    n
}

#[inline(never)]
fn anchor_match(inputs: &[&str]) -> usize {
    let mut n = 0;
    for s in inputs {
        match anchor_parse(s) {
            Ok(st) => n += st as usize,
            Err(()) => {
                black_box(s);
                n += 1;
            }
        }
    }
    n
}

#[inline(never)]
fn lib_serde(inputs: &[String]) -> usize {
    let mut n = 0;
    for s in inputs {
        let st: TopologyStatus = serde_json::from_str(s).unwrap();
        n += st as usize;
    }
    n
}

#[inline(never)]
fn anchor_serde(inputs: &[String]) -> usize {
    let mut n = 0;
    for s in inputs {
        let st: AnchorStatus = serde_json::from_str(s).unwrap();
        n += st as usize;
    }
    n
}

#[inline(never)]
fn lib_pairs(pairs: &[(TopologyStatus, TopologyStatus)]) -> usize {
    pairs
        .iter()
        .filter(|&&(a, b)| a.can_transition_to(b))
        .count()
}

#[inline(never)]
fn anchor_bitmask(pairs: &[(TopologyStatus, TopologyStatus)]) -> usize {
    pairs
        .iter()
        .filter(|&&(a, b)| anchor_mask_allows(a, b))
        .count()
}

#[inline(never)]
fn anchor_hashmap(
    table: &HashMap<TopologyStatus, HashSet<TopologyStatus>>,
    pairs: &[(TopologyStatus, TopologyStatus)],
) -> usize {
    pairs
        .iter()
        .filter(|&&(a, b)| table.get(&a).is_some_and(|next| next.contains(&b)))
        .count()
}

/// Chains per call of the chain routines.
const CHAINS: u64 = 64;

/// Each chain builds its topology in the loop (an empty name, so nothing is allocated or
/// freed on either side), runs the 8 steps in one out-of-line function and reads the id of
/// the result, the same way on both sides.
#[inline(never)]
fn lib_chains() -> u64 {
    let mut n = 0;
    for i in 0..CHAINS {
        let t = Topology::new(TopologyId::new(black_box(i)), String::new());
        n += typed_chain(t).id().get();
    }
    n
}

#[inline(never)]
fn anchor_chains() -> u64 {
    let mut n = 0;
    for i in 0..CHAINS {
        let d = TopologyData::new(TopologyId::new(black_box(i)), String::new());
        n += anchor_chain(d).id.get();
    }
    n
}

// ---- criterion --------------------------------------------------------------------------

fn parse_valid(c: &mut Criterion) {
    let inputs = valid_inputs();
    let mut g = c.benchmark_group("parse_valid");
    g.bench_function("topostate", |b| b.iter(|| lib_parse(black_box(&inputs))));
    g.bench_function("anchor_match", |b| {
        b.iter(|| anchor_match(black_box(&inputs)));
    });
    g.finish();
}

fn parse_mixed(c: &mut Criterion) {
    let inputs = mixed_inputs();
    let mut g = c.benchmark_group("parse_30pct_invalid");
    g.bench_function("topostate", |b| b.iter(|| lib_parse(black_box(&inputs))));
    g.bench_function("anchor_match", |b| {
        b.iter(|| anchor_match(black_box(&inputs)));
    });
    g.finish();
}

fn serde_deserialize(c: &mut Criterion) {
    let inputs = json_inputs();
    let mut g = c.benchmark_group("serde_json_deserialize");
    g.bench_function("topostate", |b| b.iter(|| lib_serde(black_box(&inputs))));
    g.bench_function("anchor_derive", |b| {
        b.iter(|| anchor_serde(black_box(&inputs)));
    });
    g.finish();
}

fn can_transition_to(c: &mut Criterion) {
    let pairs = all_pairs();
    let table = anchor_hash_table();
    let mut g = c.benchmark_group("can_transition_to_49_pairs");
    g.bench_function("topostate", |b| b.iter(|| lib_pairs(black_box(&pairs))));
    g.bench_function("anchor_bitmask", |b| {
        b.iter(|| anchor_bitmask(black_box(&pairs)));
    });
    g.bench_function("anchor_hashmap", |b| {
        b.iter(|| anchor_hashmap(black_box(&table), black_box(&pairs)));
    });
    g.finish();
}

fn typed_chain_8(c: &mut Criterion) {
    let mut g = c.benchmark_group("typed_chain_8_steps_x64");
    g.bench_function("topostate", |b| b.iter(lib_chains));
    g.bench_function("anchor_move", |b| b.iter(anchor_chains));
    g.finish();
}

// ---- interleaved ratios -----------------------------------------------------------------

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 31;

/// The shared interleaved comparison, with this file's number of rounds.
fn interleaved(what: &str, lib: impl FnMut() -> Duration, anchor: impl FnMut() -> Duration) {
    common::interleaved(what, ROUNDS, lib, anchor);
}

/// The time `reps` calls of `f` take.
fn timed<T>(reps: u32, mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..reps {
        black_box(f());
    }
    start.elapsed()
}

fn interleaved_ratios() {
    let (valid, mixed) = (valid_inputs(), mixed_inputs());
    let (json, pairs, table) = (json_inputs(), all_pairs(), anchor_hash_table());
    interleaved(
        "parse_valid topostate/anchor_match",
        || timed(20_000, || lib_parse(black_box(&valid))),
        || timed(20_000, || anchor_match(black_box(&valid))),
    );
    interleaved(
        "parse_30pct_invalid topostate/anchor_match",
        || timed(5_000, || lib_parse(black_box(&mixed))),
        || timed(5_000, || anchor_match(black_box(&mixed))),
    );
    // The floor under that ratio: the anchor itself, made to keep each rejected input.
    interleaved(
        "parse_30pct_invalid anchor_boxed_error/anchor_match",
        || timed(5_000, || anchor_match_boxed(black_box(&mixed))),
        || timed(5_000, || anchor_match(black_box(&mixed))),
    );
    interleaved(
        "parse_30pct_invalid anchor_inline_error/anchor_match",
        || timed(5_000, || anchor_match_inline(black_box(&mixed))),
        || timed(5_000, || anchor_match(black_box(&mixed))),
    );
    interleaved(
        "serde_json_deserialize topostate/anchor_derive",
        || timed(5_000, || lib_serde(black_box(&json))),
        || timed(5_000, || anchor_serde(black_box(&json))),
    );
    interleaved(
        "can_transition_to_49_pairs topostate/anchor_bitmask",
        || timed(50_000, || lib_pairs(black_box(&pairs))),
        || timed(50_000, || anchor_bitmask(black_box(&pairs))),
    );
    interleaved(
        "can_transition_to_49_pairs anchor_hashmap/topostate",
        || {
            timed(2_000, || {
                anchor_hashmap(black_box(&table), black_box(&pairs))
            })
        },
        || timed(2_000, || lib_pairs(black_box(&pairs))),
    );
    interleaved(
        "typed_chain_8_steps_x64 topostate/anchor_move",
        || timed(5_000, lib_chains),
        || timed(5_000, anchor_chains),
    );
}

fn main() {
    // The anchors agree with the library on every input, or the comparison means nothing.
    // (Through the measured routines, as the comparison runs them.)
    for s in mixed_inputs() {
        assert_eq!(lib_parse(&[s]), anchor_match(&[s]), "{s:?}");
        assert_eq!(anchor_match_boxed(&[s]), anchor_match(&[s]), "{s:?}");
        assert_eq!(anchor_match_inline(&[s]), anchor_match(&[s]), "{s:?}");
    }
    let table = anchor_hash_table();
    for (a, b) in all_pairs() {
        assert_eq!(
            a.can_transition_to(b),
            anchor_mask_allows(a, b),
            "{a} -> {b}"
        );
        assert_eq!(a.can_transition_to(b), table[&a].contains(&b), "{a} -> {b}");
    }
    assert_eq!(lib_chains(), anchor_chains());

    interleaved_ratios();
    let mut c = common::criterion(2, 30);
    parse_valid(&mut c);
    parse_mixed(&mut c);
    serde_deserialize(&mut c);
    can_transition_to(&mut c);
    typed_chain_8(&mut c);
    c.final_summary();
}
