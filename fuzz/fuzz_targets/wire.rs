//! Every wire input type (the request bodies of a service on the store) on arbitrary bytes
//! read as JSON: never a panic; an accepted value passes the store's field checks and
//! round-trips through its JSON unchanged.
//!
//! `cargo fuzz run wire` (see RELIABILITY.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use topostate::Versioned;
use topostate::store::{
    ChildEdit, DeckyPatch, DeckyRuntime, LanPatch, MemoryStore, NewDecky, NewEdge, NewLan,
    Precondition, StoreError, TopologyStore,
};

/// An accepted value writes JSON that reads back to the same value.
fn round_trips<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_string(value).expect("an accepted value serializes");
    let back: T = serde_json::from_str(&json).expect("its JSON reads back");
    assert_eq!(&back, value, "{json}");
}

fn read<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<T> {
    let value = serde_json::from_slice::<T>(bytes).ok()?;
    round_trips(&value);
    Some(value)
}

fuzz_target!(|bytes: &[u8]| {
    // The store's checks accept every field the wire accepted: a batch that reads is never
    // refused as `Invalid` (other refusals, e.g. unknown ids, are expected).
    if let Some(edits) = read::<Vec<ChildEdit>>(bytes) {
        let store = MemoryStore::new();
        if let Ok(topology) = store.create_topology("fuzz") {
            if let Err(StoreError::Invalid { field, problem }) =
                store.edit(topology.id, None, &edits)
            {
                panic!("the wire accepted what the store refuses: {field}: {problem}");
            }
        }
    }
    read::<ChildEdit>(bytes);
    read::<NewLan>(bytes);
    read::<NewDecky>(bytes);
    read::<NewEdge>(bytes);
    read::<LanPatch>(bytes);
    read::<DeckyPatch>(bytes);
    read::<DeckyRuntime>(bytes);
    read::<Precondition>(bytes);
    read::<Versioned<Precondition>>(bytes);
});
