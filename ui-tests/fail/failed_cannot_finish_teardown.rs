//! `failed` cannot move to `torn_down`: `Topology<Failed>::finish_teardown` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().fail("x");
    let _ = t.finish_teardown();
}
