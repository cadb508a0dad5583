//! `active` cannot move to `deploying`: `Topology<Active>::deploy` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().activate();
    let _ = t.deploy();
}
