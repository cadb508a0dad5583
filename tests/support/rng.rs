//! xorshift64*: enough randomness for picking operations and delays in the tests that run
//! threads and child processes, with no dependency. Included by path where it is used.

use std::time::{SystemTime, UNIX_EPOCH};

/// A xorshift64* generator seeded from the clock, the process id and a salt (so threads
/// and processes started together draw different sequences).
pub struct Rng(u64);

impl Rng {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "a seed keeps the fast-moving low bits of the clock"
    )]
    pub fn seeded(salt: u64) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = (nanos as u64)
            ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (u64::from(std::process::id()) << 32);
        Self(seed | 1)
    }

    /// The next draw, uniform over `u64`.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A draw in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
