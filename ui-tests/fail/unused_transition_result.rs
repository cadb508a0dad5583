//! A transition consumes the topology; ignoring the result is a `must_use` error, since the topology would be lost.
#![deny(unused_must_use)]
use topostate::{Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab");
    t.deploy();
}
