//! The generic `transition::<T>()` is bounded by the edge trait too: `pending -> active` is named in the custom diagnostic.
use topostate::{state, Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab");
    let _ = t.transition::<state::Active>();
}
