//! `active` cannot move to `pending`: `Topology<Active>::transition::<state::Pending>` does not compile.
use topostate::{state, Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().activate();
    let _ = t.transition::<state::Pending>();
}
