//! The synchronisation primitives the in-memory store is built on: `std::sync`, or
//! `loom::sync` when built with `--cfg topostate_loom`, so that `tests/loom.rs` can explore every
//! interleaving of [`MemoryStore`](super::MemoryStore)'s locks and atomics.

#[cfg(topostate_loom)]
pub(crate) use loom::sync::{
    Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
    atomic::{AtomicU64, Ordering},
};
#[cfg(not(topostate_loom))]
pub(crate) use std::sync::{
    Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
    atomic::{AtomicU64, Ordering},
};
// Lock results are `std::sync`'s types under both.
pub(crate) use std::sync::{PoisonError, TryLockError};
