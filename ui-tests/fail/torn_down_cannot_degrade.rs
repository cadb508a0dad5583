//! `torn_down` cannot move to `degraded`: `Topology<TornDown>::degrade` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").discard();
    let _ = t.degrade("x");
}
