//! `active` cannot move to `active` (self-loop): `Topology<Active>::activate` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().activate();
    let _ = t.activate();
}
