//! `pending` cannot move to `failed`: `Topology<Pending>::fail` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab");
    let _ = t.fail("x");
}
