//! `failed` cannot move to `pending`: `Topology<Failed>::transition::<state::Pending>` does not compile.
use topostate::{state, Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().fail("x");
    let _ = t.transition::<state::Pending>();
}
