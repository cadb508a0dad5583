//! Every one of the 13 declared edges compiles (and runs) through its named verb.
use topostate::{Topology, TopologyId, TopologyStatus};

fn new() -> Topology<topostate::state::Pending> {
    Topology::new(TopologyId::new(1), "lab")
}

fn main() {
    // pending -> deploying, torn_down
    assert_eq!(new().deploy().status(), TopologyStatus::Deploying);
    assert_eq!(new().discard().status(), TopologyStatus::TornDown);

    // deploying -> active, failed, degraded, tearing_down
    assert_eq!(new().deploy().activate().status(), TopologyStatus::Active);
    let failed = new().deploy().fail("compose up exited 1");
    assert_eq!(failed.status(), TopologyStatus::Failed);
    assert_eq!(failed.reason(), Some("compose up exited 1"));
    let degraded = new().deploy().degrade("decky-3 exited");
    assert_eq!(degraded.status(), TopologyStatus::Degraded);
    assert_eq!(degraded.reason(), Some("decky-3 exited"));
    assert_eq!(new().deploy().tear_down().status(), TopologyStatus::TearingDown);

    // active -> degraded, tearing_down
    assert_eq!(new().deploy().activate().degrade("x").status(), TopologyStatus::Degraded);
    assert_eq!(new().deploy().activate().tear_down().status(), TopologyStatus::TearingDown);

    // degraded -> active, tearing_down
    let recovered = new().deploy().degrade("x").recover();
    assert_eq!(recovered.status(), TopologyStatus::Active);
    assert_eq!(recovered.reason(), None);
    assert_eq!(new().deploy().degrade("x").tear_down().status(), TopologyStatus::TearingDown);

    // failed -> tearing_down
    assert_eq!(new().deploy().fail("x").tear_down().status(), TopologyStatus::TearingDown);

    // tearing_down -> torn_down, degraded
    assert_eq!(
        new().deploy().tear_down().finish_teardown().status(),
        TopologyStatus::TornDown
    );
    assert_eq!(
        new().deploy().tear_down().degrade("x").status(),
        TopologyStatus::Degraded
    );

    // The named verbs are bounded by the edge trait, not by the source state, so every verb
    // works from every source that declares the edge (`activate` and `recover` both move a
    // degraded topology to active; `discard` and `finish_teardown` both reach torn_down).
    assert_eq!(new().deploy().degrade("x").activate().status(), TopologyStatus::Active);
    assert_eq!(new().finish_teardown().status(), TopologyStatus::TornDown);
    assert_eq!(
        new().deploy().tear_down().discard().status(),
        TopologyStatus::TornDown
    );

    // Data survives every step.
    let t = new().deploy().activate().degrade("x").recover().tear_down().finish_teardown();
    assert_eq!((t.id(), t.name()), (TopologyId::new(1), "lab"));
}
