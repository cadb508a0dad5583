//! `Topology<Pending>` is not `Clone`: a typed topology cannot be duplicated and moved along two paths.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab");
    let _ = t.clone();
}
