//! `degraded` cannot move to `deploying`: `Topology<Degraded>::deploy` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().degrade("x");
    let _ = t.deploy();
}
