//! `active` cannot move to `failed`: `Topology<Active>::fail` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().activate();
    let _ = t.fail("x");
}
