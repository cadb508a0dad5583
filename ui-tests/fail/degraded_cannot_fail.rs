//! `degraded` cannot move to `failed`: `Topology<Degraded>::fail` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().degrade("x");
    let _ = t.fail("x");
}
