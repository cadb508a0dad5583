//! `torn_down` cannot move to `pending`: `Topology<TornDown>::transition::<state::Pending>` does not compile.
use topostate::{state, Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").discard();
    let _ = t.transition::<state::Pending>();
}
