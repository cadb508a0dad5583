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
