//! `pending` cannot move to `pending` (self-loop): `Topology<Pending>::transition::<state::Pending>` does not compile.
use topostate::{state, Topology, TopologyId};

fn main() {
    let t = Topology::new(TopologyId::new(1), "lab");
    let _ = t.transition::<state::Pending>();
}
