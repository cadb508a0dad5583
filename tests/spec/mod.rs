//! The topology lifecycle as the original Python module (`status.py`) states it, written out by hand (not derived
//! from the crate), for the test files that check the crate against it.
#![allow(dead_code)] // Not every test file uses every table.

/// The seven statuses, in declaration order.
pub const STATUSES: [&str; 7] = [
    "pending",
    "deploying",
    "active",
    "degraded",
    "failed",
    "tearing_down",
    "torn_down",
];

/// The 13 legal edges.
pub const EDGES: [(&str, &str); 13] = [
    ("pending", "deploying"),
    ("pending", "torn_down"),
    ("deploying", "active"),
    ("deploying", "failed"),
    ("deploying", "degraded"),
    ("deploying", "tearing_down"),
    ("active", "degraded"),
    ("active", "tearing_down"),
    ("degraded", "active"),
    ("degraded", "tearing_down"),
    ("failed", "tearing_down"),
    ("tearing_down", "torn_down"),
    ("tearing_down", "degraded"),
];
