//! `pending` cannot move to `degraded`: `Topology<Pending>::degrade` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab");
    let _ = t.degrade("x");
}
