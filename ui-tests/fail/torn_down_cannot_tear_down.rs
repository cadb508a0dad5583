//! `torn_down` cannot move to `tearing_down`: `Topology<TornDown>::tear_down` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").discard();
    let _ = t.tear_down();
}
