//! `tearing_down` cannot move to `tearing_down` (self-loop): `Topology<TearingDown>::tear_down` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().tear_down();
    let _ = t.tear_down();
}
