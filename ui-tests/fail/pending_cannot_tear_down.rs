//! `pending` cannot move to `tearing_down`: `Topology<Pending>::tear_down` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab");
    let _ = t.tear_down();
}
