//! `deploying` cannot move to `deploying` (self-loop): `Topology<Deploying>::deploy` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy();
    let _ = t.deploy();
}
