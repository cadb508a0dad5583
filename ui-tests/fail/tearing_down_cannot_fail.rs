//! `tearing_down` cannot move to `failed`: `Topology<TearingDown>::fail` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().tear_down();
    let _ = t.fail("x");
}
