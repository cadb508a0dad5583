//! `failed` cannot move to `degraded`: `Topology<Failed>::degrade` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().fail("x");
    let _ = t.degrade("x");
}
