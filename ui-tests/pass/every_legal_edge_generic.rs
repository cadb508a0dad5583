//! Every one of the 13 declared edges compiles (and runs) through the generic
//! `Topology::transition::<T>()`, `Versioned::transition::<T>()` and
//! `Versioned::transition_with`.
use topostate::state::{
    Active, CanTransitionTo, Degraded, Deploying, Failed, Pending, State, TearingDown, TornDown,
};
use topostate::{Topology, TopologyId, Versioned};

/// One edge, checked generically: the bound is exactly the edge trait.
fn edge<S, T>(from: Topology<S>)
where
    S: CanTransitionTo<T>,
    T: State,
{
    let versioned = Versioned::from_parts(from, 7).expect("valid version");
    let versioned = versioned.transition::<T>();
    assert_eq!(versioned.version(), 7);
    assert_eq!(versioned.status(), T::STATUS);
    let (topology, _) = versioned.into_parts();
    assert_eq!(topology.status(), T::STATUS);
    assert_eq!(topology.reason(), None);
}

fn new() -> Topology<Pending> {
    Topology::new(TopologyId::new(1), "lab")
}

fn deploying() -> Topology<Deploying> {
    new().transition::<Deploying>()
}

fn main() {
    // Topology::transition::<T>(), one reachable source per state.
    let active: Topology<Active> = deploying().transition::<Active>();
    let degraded: Topology<Degraded> = deploying().transition::<Degraded>();
    let failed: Topology<Failed> = deploying().transition::<Failed>();
    let tearing_down: Topology<TearingDown> = deploying().transition::<TearingDown>();
    let torn_down: Topology<TornDown> = new().transition::<TornDown>();
    assert_eq!(active.status(), Active::STATUS);
    assert_eq!(degraded.status(), Degraded::STATUS);
    assert_eq!(failed.status(), Failed::STATUS);
    assert_eq!(tearing_down.status(), TearingDown::STATUS);
    assert_eq!(torn_down.status(), TornDown::STATUS);

    // All 13 edges through a generic helper bounded by `CanTransitionTo`
    // (which uses `Versioned::transition::<T>()`).
    edge::<Pending, Deploying>(new());
    edge::<Pending, TornDown>(new());
    edge::<Deploying, Active>(deploying());
    edge::<Deploying, Failed>(deploying());
    edge::<Deploying, Degraded>(deploying());
    edge::<Deploying, TearingDown>(deploying());
    edge::<Active, Degraded>(deploying().transition());
    edge::<Active, TearingDown>(deploying().transition());
    edge::<Degraded, Active>(deploying().transition());
    edge::<Degraded, TearingDown>(deploying().transition());
    edge::<Failed, TearingDown>(deploying().transition());
    edge::<TearingDown, TornDown>(deploying().transition());
    edge::<TearingDown, Degraded>(deploying().transition());

    // All 13 edges through Versioned::transition_with, mixing named and generic steps;
    // the version is kept throughout.
    let v = Versioned::new(new());
    let v = v.transition_with(|t| t.discard());
    assert_eq!(v.status(), TornDown::STATUS);

    let v = Versioned::new(new())
        .transition_with(|t| t.deploy()) // pending -> deploying
        .transition_with(|t| t.activate()) // deploying -> active
        .transition_with(|t| t.degrade("decky-3 exited")) // active -> degraded
        .transition_with(|t| t.recover()) // degraded -> active
        .transition_with(|t| t.tear_down()) // active -> tearing_down
        .transition_with(|t| t.degrade("stuck")) // tearing_down -> degraded
        .transition_with(|t| t.tear_down()) // degraded -> tearing_down
        .transition_with(|t| t.finish_teardown()); // tearing_down -> torn_down
    assert_eq!((v.status(), v.version()), (TornDown::STATUS, 1));

    let dep = || Versioned::new(new()).transition_with(Topology::transition::<Deploying>);
    let v = dep().transition_with(|t| t.fail("compose up exited 1")); // deploying -> failed
    assert_eq!(v.value().reason(), Some("compose up exited 1"));
    let v = v.transition_with(|t| t.tear_down()); // failed -> tearing_down
    assert_eq!(v.status(), TearingDown::STATUS);
    let v = dep().transition_with(|t| t.degrade("x")); // deploying -> degraded
    assert_eq!(v.status(), Degraded::STATUS);
    let v = dep().transition_with(|t| t.tear_down()); // deploying -> tearing_down
    assert_eq!(v.status(), TearingDown::STATUS);
}
