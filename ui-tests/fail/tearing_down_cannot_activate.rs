//! `tearing_down` cannot move to `active`: `Topology<TearingDown>::activate` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().tear_down();
    let _ = t.activate();
}
