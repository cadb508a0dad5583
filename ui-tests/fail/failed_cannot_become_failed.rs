//! `failed` cannot move to `failed` (self-loop): `Topology<Failed>::fail` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().fail("x");
    let _ = t.fail("x");
}
