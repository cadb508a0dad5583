//! `Versioned<Topology<S>>` offers only declared edges: `pending -> active` does not compile through `transition` nor `transition_with`.
use topostate::{state, Topology, TopologyId, Versioned};

fn main() {
    let v = Versioned::new(Topology::new(TopologyId::new(1), "lab"));
    let _ = v.transition::<state::Active>();

    let v = Versioned::new(Topology::new(TopologyId::new(2), "lab"));
    let _ = v.transition_with(|t| t.transition::<state::Active>());
}
