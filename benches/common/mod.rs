//! What every bench file shares: the interleaved comparison of the library and its anchor.

use std::time::Duration;

/// The library against its anchor, interleaved: each of `rounds` rounds times one batch of
/// work on each side (which side goes first alternates), so load that drifts over seconds
/// on this shared machine weighs on both alike. Prints the median per-round ratio (library
/// / anchor) and its quartiles.
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
