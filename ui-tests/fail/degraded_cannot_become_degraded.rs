//! `degraded` cannot move to `degraded` (self-loop): `Topology<Degraded>::degrade` does not compile.
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().degrade("x");
    let _ = t.degrade("x");
}
