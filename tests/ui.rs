//! Compile-time proof of the topology lifecycle, with trybuild.
//!
//! - `ui-tests/fail/`: one file per illegal ordered `(from, to)` pair of statuses (36 = 49
//!   pairs minus the 13 declared edges, self-loops included), each failing with the custom
//!   `illegal transition: ... cannot move to ...` diagnostic, plus the sealed-trait,
//!   construction, `must_use`, move and `Clone` cases; and `lifecycle_*.rs`, one per mistake
//!   the `lifecycle!` macro refuses (a state declared twice, a stored string used twice, an
//!   edge to an undeclared state, more than 64 states) and the sealed `Lifecycle` trait.
//!   Each file's `//!` line says what it proves; the expected compiler output is the
//!   `.stderr` file next to it.
//! - `ui-tests/pass/`: every declared edge compiles through the named verbs, the generic
//!   `transition::<T>()` and `Versioned::transition_with`; these are also run.
//!
//! The `.stderr` snapshots were made with rustc [`SNAPSHOT_RUSTC`]; diagnostics change
//! between compiler releases, so under any other rustc the test prints why it skips and
//! checks nothing, rather than failing on wording. CI (`.ci/run`) builds with exactly that
//! compiler and sets `TOPOSTATE_UI_STRICT=1`, which turns a mismatch into a failure, so
//! the snapshots can never go unchecked there. To regenerate them (and then update
//! [`SNAPSHOT_RUSTC`]) run
//!
//! ```text
//! TRYBUILD=overwrite cargo test --test ui
//! ```
//!
//! then read the diff (`git diff ui-tests/`): every fail case must still fail for its
//! intended reason, not for an unrelated error.

use std::io::Write as _;
use std::process::Command;

/// The `major.minor` release of rustc the `.stderr` snapshots were made with.
const SNAPSHOT_RUSTC: &str = "1.95";

/// The `major.minor` release in `rustc --version` output (`rustc 1.95.0 (59807616e
/// 2026-04-14)`), or `None` for anything else. Pre-releases (`1.97.0-nightly`) are
/// themselves, not the release they lead to: their diagnostics may still change.
fn release(version: &str) -> Option<String> {
    let number = version.strip_prefix("rustc ")?.split(' ').next()?;
    let mut parts = number.split('.');
    let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(major) && numeric(minor) && numeric(patch) && parts.next().is_none())
        .then(|| format!("{major}.{minor}"))
}

/// Why the snapshots cannot be compared under the compiler trybuild will run (`$RUSTC`, as
/// cargo reads it, else `rustc` on the path), or `None` when they can.
fn compiler_mismatch() -> Option<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = match Command::new(&rustc).arg("--version").output() {
        Ok(output) if output.status.success() => output,
        Ok(output) => return Some(format!("`rustc --version` failed: {}", output.status)),
        Err(e) => return Some(format!("`rustc --version` could not run: {e}")),
    };
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match release(&version) {
        Some(release) if release == SNAPSHOT_RUSTC => None,
        _ => Some(format!(
            "the UI snapshots were made with rustc {SNAPSHOT_RUSTC}, this is `{version}`"
        )),
    }
}

#[test]
#[cfg_attr(miri, ignore = "trybuild runs rustc, which miri cannot interpret")]
fn ui() {
    if let Some(why) = compiler_mismatch() {
        assert!(
            std::env::var_os("TOPOSTATE_UI_STRICT").is_none(),
            "TOPOSTATE_UI_STRICT is set and {why}"
        );
        // libtest has no runtime skip and captures `eprintln!` of a passing test: write to
        // the process's stderr itself, so the skip shows in every run.
        let _ = writeln!(std::io::stderr(), "SKIPPED ui: {why}; nothing was compared");
        return;
    }
    let t = trybuild::TestCases::new();
    t.compile_fail("ui-tests/fail/*.rs");
    t.pass("ui-tests/pass/*.rs");
}

#[test]
fn only_the_snapshot_release_is_compared() {
    assert_eq!(
        release("rustc 1.95.0 (59807616e 2026-04-14)").as_deref(),
        Some("1.95")
    );
    assert_eq!(release("rustc 1.95.2").as_deref(), Some("1.95"));
    assert_eq!(
        release("rustc 1.96.0 (abc 2026-05-28)").as_deref(),
        Some("1.96")
    );
    for other in [
        "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)",
        "rustc 1.96.0-beta.3 (abc 2026-05-01)",
        "rustc 1.95",
        "clippy 0.1.95",
        "",
    ] {
        assert_eq!(release(other), None, "{other}");
    }
}
