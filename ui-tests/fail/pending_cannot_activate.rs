//! `pending` cannot move to `active`: `Topology<Pending>::activate` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab");
    let _ = t.activate();
}
