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
//! The `.stderr` snapshots were made with rustc 1.95; diagnostics change between compiler
//! releases. To regenerate them run
//!
//! ```text
//! TRYBUILD=overwrite cargo test --test ui
//! ```
//!
//! then read the diff (`git diff ui-tests/`): every fail case must still fail for its
//! intended reason, not for an unrelated error.

#[test]
#[cfg_attr(miri, ignore = "trybuild runs rustc, which miri cannot interpret")]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui-tests/fail/*.rs");
    t.pass("ui-tests/pass/*.rs");
}
