//! A `Topology<Active>` cannot be built from outside with a struct literal: its fields are private.
use core::marker::PhantomData;
use topostate::{state, Topology, TopologyData, TopologyId};

fn main() {
    let _ = Topology::<state::Active> {
        data: TopologyData::new(TopologyId::new(1), "lab"),
        state: PhantomData,
    };
}
