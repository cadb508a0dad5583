//! Compile-time promises: zero-sized markers, no runtime cost for the typestate, no way to
//! duplicate a typed value, and the typed edge table written out pair by pair.

use static_assertions::{assert_eq_size, assert_impl_all, assert_not_impl_any};
use topostate::state::{
    self, Active, CanTransitionTo, Degraded, Deploying, Failed, Pending, State, TearingDown,
    TornDown,
};
use topostate::{
    AnyTopology, MutationState, Topology, TopologyData, TopologyStatus, Versioned, mutation_state,
};

// ---- markers are zero-sized and implement State ---------------------------------------

assert_eq_size!(state::Pending, ());
assert_eq_size!(state::Deploying, ());
assert_eq_size!(state::Active, ());
assert_eq_size!(state::Degraded, ());
assert_eq_size!(state::Failed, ());
assert_eq_size!(state::TearingDown, ());
assert_eq_size!(state::TornDown, ());

assert_impl_all!(
    Pending: State,
    core::fmt::Debug,
    Copy,
    Eq,
    core::hash::Hash,
    Send,
    Sync
);
assert_impl_all!(Deploying: State);
assert_impl_all!(Active: State);
assert_impl_all!(Degraded: State);
assert_impl_all!(Failed: State);
assert_impl_all!(TearingDown: State);
assert_impl_all!(TornDown: State);

assert_impl_all!(mutation_state::Pending: mutation_state::State);
assert_impl_all!(mutation_state::Applying: mutation_state::State);
assert_impl_all!(mutation_state::Applied: mutation_state::State);
assert_impl_all!(mutation_state::Failed: mutation_state::State);
assert_eq_size!(mutation_state::Applying, ());

// ---- a typed topology costs exactly its data ------------------------------------------

assert_eq_size!(Topology<Pending>, TopologyData);
assert_eq_size!(Topology<Deploying>, TopologyData);
assert_eq_size!(Topology<Active>, TopologyData);
assert_eq_size!(Topology<Degraded>, TopologyData);
assert_eq_size!(Topology<Failed>, TopologyData);
assert_eq_size!(Topology<TearingDown>, TopologyData);
assert_eq_size!(Topology<TornDown>, TopologyData);

// ---- a typed topology can be sent but never duplicated or conjured ---------------------

assert_impl_all!(Topology<Pending>: Send, Sync, core::fmt::Debug);
assert_impl_all!(Topology<Deploying>: Send, Sync);
assert_impl_all!(Topology<Active>: Send, Sync);
assert_impl_all!(Topology<Degraded>: Send, Sync);
assert_impl_all!(Topology<Failed>: Send, Sync);
assert_impl_all!(Topology<TearingDown>: Send, Sync);
assert_impl_all!(Topology<TornDown>: Send, Sync);
assert_impl_all!(AnyTopology: Send, Sync, core::fmt::Debug);

assert_not_impl_any!(Topology<Pending>: Clone, Copy, Default);
assert_not_impl_any!(Topology<Deploying>: Clone, Copy, Default);
assert_not_impl_any!(Topology<Active>: Clone, Copy, Default);
assert_not_impl_any!(Topology<Degraded>: Clone, Copy, Default);
assert_not_impl_any!(Topology<Failed>: Clone, Copy, Default);
assert_not_impl_any!(Topology<TearingDown>: Clone, Copy, Default);
assert_not_impl_any!(Topology<TornDown>: Clone, Copy, Default);

assert_not_impl_any!(AnyTopology: Clone, Copy, Default);

// No Deref to the value, so a write cannot skip the version; and a typed value inside
// cannot be duplicated through the wrapper either.
assert_not_impl_any!(Versioned<Topology<Pending>>: core::ops::Deref, core::ops::DerefMut, Clone, Copy, Default);
assert_not_impl_any!(Versioned<Topology<Active>>: core::ops::Deref, Clone);
assert_not_impl_any!(Versioned<AnyTopology>: core::ops::Deref, Clone);
assert_not_impl_any!(Versioned<()>: core::ops::Deref);
assert_impl_all!(Versioned<Topology<Active>>: Send, Sync);

// ---- the runtime enums are one byte ----------------------------------------------------

assert_eq_size!(TopologyStatus, u8);
assert_eq_size!(Option<TopologyStatus>, u8);
assert_eq_size!(MutationState, u8);
assert_impl_all!(
    TopologyStatus: Copy,
    Send,
    Sync,
    Ord,
    core::hash::Hash,
    core::fmt::Display,
    core::str::FromStr,
    topostate::Lifecycle
);

// ---- the typed edge table, every one of the 49 pairs -----------------------------------

assert_impl_all!(Pending: CanTransitionTo<Deploying>, CanTransitionTo<TornDown>);
assert_not_impl_any!(
    Pending: CanTransitionTo<Pending>,
    CanTransitionTo<Active>,
    CanTransitionTo<Degraded>,
    CanTransitionTo<Failed>,
    CanTransitionTo<TearingDown>
);

assert_impl_all!(
    Deploying: CanTransitionTo<Active>,
    CanTransitionTo<Failed>,
    CanTransitionTo<Degraded>,
    CanTransitionTo<TearingDown>
);
assert_not_impl_any!(
    Deploying: CanTransitionTo<Pending>,
    CanTransitionTo<Deploying>,
    CanTransitionTo<TornDown>
);

assert_impl_all!(Active: CanTransitionTo<Degraded>, CanTransitionTo<TearingDown>);
assert_not_impl_any!(
    Active: CanTransitionTo<Pending>,
    CanTransitionTo<Deploying>,
    CanTransitionTo<Active>,
    CanTransitionTo<Failed>,
    CanTransitionTo<TornDown>
);

assert_impl_all!(Degraded: CanTransitionTo<Active>, CanTransitionTo<TearingDown>);
assert_not_impl_any!(
    Degraded: CanTransitionTo<Pending>,
    CanTransitionTo<Deploying>,
    CanTransitionTo<Degraded>,
    CanTransitionTo<Failed>,
    CanTransitionTo<TornDown>
);

assert_impl_all!(Failed: CanTransitionTo<TearingDown>);
assert_not_impl_any!(
    Failed: CanTransitionTo<Pending>,
    CanTransitionTo<Deploying>,
    CanTransitionTo<Active>,
    CanTransitionTo<Degraded>,
    CanTransitionTo<Failed>,
    CanTransitionTo<TornDown>
);

assert_impl_all!(TearingDown: CanTransitionTo<TornDown>, CanTransitionTo<Degraded>);
assert_not_impl_any!(
    TearingDown: CanTransitionTo<Pending>,
    CanTransitionTo<Deploying>,
    CanTransitionTo<Active>,
    CanTransitionTo<Failed>,
    CanTransitionTo<TearingDown>
);

assert_not_impl_any!(
    TornDown: CanTransitionTo<Pending>,
    CanTransitionTo<Deploying>,
    CanTransitionTo<Active>,
    CanTransitionTo<Degraded>,
    CanTransitionTo<Failed>,
    CanTransitionTo<TearingDown>,
    CanTransitionTo<TornDown>
);

// The mutation lifecycle's typed edges.
assert_impl_all!(mutation_state::Pending: mutation_state::CanTransitionTo<mutation_state::Applying>);
assert_impl_all!(
    mutation_state::Applying: mutation_state::CanTransitionTo<mutation_state::Applied>,
    mutation_state::CanTransitionTo<mutation_state::Failed>
);
assert_not_impl_any!(
    mutation_state::Pending: mutation_state::CanTransitionTo<mutation_state::Applied>,
    mutation_state::CanTransitionTo<mutation_state::Failed>
);
assert_not_impl_any!(
    mutation_state::Applied: mutation_state::CanTransitionTo<mutation_state::Pending>,
    mutation_state::CanTransitionTo<mutation_state::Applying>
);

// ---- the same promises, checked at runtime too ------------------------------------------

#[test]
fn sizes_at_runtime() {
    use core::mem::size_of;
    assert_eq!(size_of::<Pending>(), 0);
    assert_eq!(size_of::<TornDown>(), 0);
    assert_eq!(size_of::<Topology<Active>>(), size_of::<TopologyData>());
    assert_eq!(size_of::<TopologyStatus>(), 1);
    assert_eq!(size_of::<Option<TopologyStatus>>(), 1);
    assert_eq!(size_of::<MutationState>(), 1);
    assert_eq!(
        size_of::<Versioned<Topology<Active>>>(),
        size_of::<TopologyData>() + size_of::<u64>()
    );
}

#[test]
fn state_is_usable_generically() {
    fn status_of<S: State>() -> TopologyStatus {
        S::STATUS
    }
    let all = [
        status_of::<Pending>(),
        status_of::<Deploying>(),
        status_of::<Active>(),
        status_of::<Degraded>(),
        status_of::<Failed>(),
        status_of::<TearingDown>(),
        status_of::<TornDown>(),
    ];
    assert_eq!(all, TopologyStatus::ALL);
}
