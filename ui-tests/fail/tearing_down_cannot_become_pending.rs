//! `tearing_down` cannot move to `pending`: `Topology<TearingDown>::transition::<state::Pending>` does not compile.
use topostate::{state, Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab").deploy().tear_down();
    let _ = t.transition::<state::Pending>();
}
