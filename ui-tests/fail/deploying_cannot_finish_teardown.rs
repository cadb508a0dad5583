//! `deploying` cannot move to `torn_down`: `Topology<Deploying>::finish_teardown` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy();
    let _ = t.finish_teardown();
}
