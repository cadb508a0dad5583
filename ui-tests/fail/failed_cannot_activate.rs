//! `failed` cannot move to `active`: `Topology<Failed>::activate` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().fail("x");
    let _ = t.activate();
}
