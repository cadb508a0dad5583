//! Only `Topology<Pending>` can be built from outside: `Topology<Active>` has no `new`, and its private constructor `from_data` is not reachable.
use topostate::{state, Topology, TopologyData, TopologyId};

fn main() {
    let _ = Topology::<state::Active>::new(TopologyId::new(1), "lab");
    let _ = Topology::<state::Active>::from_data(TopologyData::new(TopologyId::new(1), "lab"));
}
