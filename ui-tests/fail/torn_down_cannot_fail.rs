//! `torn_down` cannot move to `failed`: `Topology<TornDown>::fail` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").discard();
    let _ = t.fail("x");
}
