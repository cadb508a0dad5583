//! A transition moves the topology: the old typed value cannot be used afterwards.
use topostate::{Topology, TopologyId};

fn main() {
    let pending = Topology::new(TopologyId::new(1), "lab");
    let deploying = pending.deploy();
    let _ = deploying.activate();
    let _ = pending.name();
}
