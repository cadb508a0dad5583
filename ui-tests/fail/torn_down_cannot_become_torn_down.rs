//! `torn_down` cannot move to `torn_down` (self-loop): `Topology<TornDown>::finish_teardown` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").discard();
    let _ = t.finish_teardown();
}
