//! `deploying` cannot move to `pending`: `Topology<Deploying>::transition::<state::Pending>` does not compile.
use topostate::{state, Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy();
    let _ = t.transition::<state::Pending>();
}
