//! The typed layer: named verbs, reasons, erase and restore for every state.

mod spec;

use spec::STATUSES;
use topostate::state::{
    self, Active, Degraded, Deploying, Failed, Pending, State, TearingDown, TornDown,
};
use topostate::{AnyTopology, Topology, TopologyData, TopologyId, TopologyStatus};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn new() -> Topology<Pending> {
    Topology::new(TopologyId::new(7), "lab")
}

#[test]
fn full_lifecycle_via_named_verbs() {
    let t = new();
    assert_eq!(t.status(), TopologyStatus::Pending);
    assert_eq!(t.id(), TopologyId::new(7));
    assert_eq!(t.name(), "lab");
    assert_eq!(t.reason(), None);

    let t = t.deploy();
    assert_eq!(t.status(), TopologyStatus::Deploying);
    let t = t.activate();
    assert_eq!(t.status(), TopologyStatus::Active);
    let t = t.degrade("decky-3 exited");
    assert_eq!(t.status(), TopologyStatus::Degraded);
    assert_eq!(t.reason(), Some("decky-3 exited"));
    let t = t.recover();
    assert_eq!(t.status(), TopologyStatus::Active);
    assert_eq!(t.reason(), None, "recover clears the reason");
    let t = t.tear_down();
    assert_eq!(t.status(), TopologyStatus::TearingDown);
    let t = t.degrade("network busy");
    assert_eq!(t.status(), TopologyStatus::Degraded);
    assert_eq!(t.reason(), Some("network busy"));
    let t = t.tear_down();
    assert_eq!(t.reason(), None, "tear_down clears the reason");
    let t = t.finish_teardown();
    assert_eq!(t.status(), TopologyStatus::TornDown);
    assert!(t.status().is_terminal());

    // Identity survives every move.
    assert_eq!(t.id(), TopologyId::new(7));
    assert_eq!(t.name(), "lab");
    assert_eq!(t.into_data(), TopologyData::new(TopologyId::new(7), "lab"));
}

#[test]
fn every_named_verb_on_every_edge() {
    // pending -> deploying, torn_down
    assert_eq!(new().deploy().status(), TopologyStatus::Deploying);
    assert_eq!(new().discard().status(), TopologyStatus::TornDown);
    // deploying -> active, failed, degraded, tearing_down
    assert_eq!(new().deploy().activate().status(), TopologyStatus::Active);
    assert_eq!(new().deploy().fail("x").status(), TopologyStatus::Failed);
    assert_eq!(
        new().deploy().degrade("x").status(),
        TopologyStatus::Degraded
    );
    assert_eq!(
        new().deploy().tear_down().status(),
        TopologyStatus::TearingDown
    );
    // active -> degraded, tearing_down
    let active = || new().deploy().activate();
    assert_eq!(active().degrade("x").status(), TopologyStatus::Degraded);
    assert_eq!(active().tear_down().status(), TopologyStatus::TearingDown);
    // degraded -> active, tearing_down
    let degraded = || new().deploy().degrade("x");
    assert_eq!(degraded().recover().status(), TopologyStatus::Active);
    assert_eq!(degraded().tear_down().status(), TopologyStatus::TearingDown);
    // failed -> tearing_down
    assert_eq!(
        new().deploy().fail("x").tear_down().status(),
        TopologyStatus::TearingDown
    );
    // tearing_down -> torn_down, degraded
    let tearing = || new().deploy().tear_down();
    assert_eq!(
        tearing().finish_teardown().status(),
        TopologyStatus::TornDown
    );
    assert_eq!(tearing().degrade("x").status(), TopologyStatus::Degraded);
}

#[test]
fn reason_set_by_fail_and_degrade_cleared_by_others() {
    let failed = new().deploy().fail("compose up exited 1");
    assert_eq!(failed.reason(), Some("compose up exited 1"));
    assert_eq!(failed.data().reason.as_deref(), Some("compose up exited 1"));
    let tearing = failed.tear_down();
    assert_eq!(tearing.reason(), None);

    let degraded = tearing.degrade(String::from("owned reason"));
    assert_eq!(degraded.reason(), Some("owned reason"));
    let active = degraded.recover();
    assert_eq!(active.reason(), None);

    // A second degrade replaces, not appends.
    let degraded = active.degrade("first");
    let tearing = degraded.tear_down().degrade("second");
    assert_eq!(tearing.reason(), Some("second"));

    // A reason carried in stored data is cleared by the next reasonless move.
    let data = TopologyData::new(TopologyId::new(1), "lab").with_reason("stale");
    let failed = AnyTopology::from_stored("failed", data)
        .expect("failed is a status")
        .restore::<Failed>()
        .expect("stored as failed");
    assert_eq!(failed.reason(), Some("stale"));
    assert_eq!(failed.tear_down().reason(), None);

    // Empty reasons are kept as given.
    assert_eq!(new().deploy().fail("").reason(), Some(""));
}

#[test]
fn generic_transition_follows_edges_and_clears_reason() {
    let t = new().deploy().degrade("x");
    let t: Topology<Active> = t.transition();
    assert_eq!(t.reason(), None);
    let t = t.transition::<TearingDown>().transition::<TornDown>();
    assert_eq!(t.status(), TopologyStatus::TornDown);
}

// ---- erase and restore, for every state ------------------------------------------------

/// Each of the seven states, reached only through legal moves, with distinguishable data.
fn reach(status: TopologyStatus) -> AnyTopology {
    let t = Topology::new(TopologyId::new(status as u64 + 100), format!("t-{status}"));
    match status {
        TopologyStatus::Pending => t.erase(),
        TopologyStatus::Deploying => t.deploy().erase(),
        TopologyStatus::Active => t.deploy().activate().erase(),
        TopologyStatus::Degraded => t.deploy().activate().degrade("why").erase(),
        TopologyStatus::Failed => t.deploy().fail("boom").erase(),
        TopologyStatus::TearingDown => t.deploy().tear_down().erase(),
        TopologyStatus::TornDown => t.discard().erase(),
    }
}

/// Restores `any` as `T`: Ok when its status is `T`'s, otherwise a mismatch that gives the
/// value back unchanged.
fn check_restore<T: State>(make: &dyn Fn() -> AnyTopology) -> bool {
    let any = make();
    let found = any.status();
    let data = any.data().clone();
    match any.restore::<T>() {
        Ok(typed) => {
            assert_eq!(found, T::STATUS);
            assert_eq!(typed.status(), T::STATUS);
            assert_eq!(typed.data(), &data);
            // And back again.
            let again = typed.erase();
            assert_eq!(again.status(), found);
            assert_eq!(again.into_data(), data);
            true
        }
        Err(err) => {
            assert_ne!(found, T::STATUS);
            assert_eq!(err.expected(), T::STATUS);
            assert_eq!(err.found(), found);
            assert_eq!(
                err.to_string(),
                format!(
                    "expected a topology in status '{}', found '{found}'",
                    T::STATUS
                )
            );
            let back = err.into_inner();
            assert_eq!(back.status(), found, "into_inner changed the status");
            assert_eq!(back.data(), &data, "into_inner changed the data");
            false
        }
    }
}

#[test]
fn erase_and_restore_every_state() {
    for status in TopologyStatus::ALL {
        let make = move || reach(status);
        let any = make();
        assert_eq!(any.status(), status);
        assert_eq!(any.id(), TopologyId::new(status as u64 + 100));
        assert_eq!(any.name(), format!("t-{status}"));

        let oks = [
            check_restore::<Pending>(&make),
            check_restore::<Deploying>(&make),
            check_restore::<Active>(&make),
            check_restore::<Degraded>(&make),
            check_restore::<Failed>(&make),
            check_restore::<TearingDown>(&make),
            check_restore::<TornDown>(&make),
        ];
        // Exactly one restore succeeds: the one for the value's own status.
        let restored: Vec<TopologyStatus> = TopologyStatus::ALL
            .into_iter()
            .zip(oks)
            .filter_map(|(s, ok)| ok.then_some(s))
            .collect();
        assert_eq!(restored, [status]);
    }
}

#[test]
fn restore_mismatch_message_and_value() {
    let any = new().erase();
    let err = any.restore::<Active>().expect_err("pending is not active");
    assert_eq!(err.expected(), TopologyStatus::Active);
    assert_eq!(err.found(), TopologyStatus::Pending);
    assert_eq!(
        err.to_string(),
        "expected a topology in status 'active', found 'pending'"
    );
    let any = err.into_inner();
    let pending = any
        .restore::<Pending>()
        .expect("the value came back as pending");
    assert_eq!(pending.name(), "lab");
    // The restored value moves on as usual.
    assert_eq!(pending.deploy().status(), TopologyStatus::Deploying);
}

#[test]
fn restore_mismatch_is_a_std_error() -> TestResult {
    fn restore_failed(any: AnyTopology) -> Result<Topology<Failed>, Box<dyn std::error::Error>> {
        Ok(any.restore::<Failed>()?)
    }
    let err = restore_failed(reach(TopologyStatus::Active)).expect_err("active is not failed");
    assert_eq!(
        err.to_string(),
        "expected a topology in status 'failed', found 'active'"
    );
    let failed = restore_failed(reach(TopologyStatus::Failed))?;
    assert_eq!(failed.reason(), Some("boom"));
    Ok(())
}

#[test]
fn from_stored_for_all_seven_strings() -> TestResult {
    for (name, status) in STATUSES.into_iter().zip(TopologyStatus::ALL) {
        let data = TopologyData::new(TopologyId::new(3), "row").with_reason("kept");
        let any = AnyTopology::from_stored(name, data.clone())?;
        assert_eq!(any.status(), status);
        assert_eq!(any.status().as_str(), name);
        assert_eq!(any.data(), &data);
        assert_eq!(any.id(), TopologyId::new(3));
        assert_eq!(any.name(), "row");
        assert_eq!(any.into_data(), data);

        let any = AnyTopology::from_status(status, data.clone());
        assert_eq!(any.status(), status);
    }
    Ok(())
}

#[test]
fn from_stored_rejects_bad_strings() {
    for bad in [
        "",
        "Active",
        "active ",
        "torn-down",
        "deleted",
        "pénding",
        "a'b\0",
    ] {
        let data = TopologyData::new(TopologyId::new(1), "x");
        let err = AnyTopology::from_stored(bad, data).expect_err(bad);
        assert_eq!(err.input(), bad);
        assert_eq!(err.machine(), "topology");
        let msg = err.to_string();
        assert!(msg.starts_with("unknown topology status: '"), "{msg}");
        assert!(
            msg.ends_with(
                "(expected one of: pending, deploying, active, degraded, failed, tearing_down, torn_down)"
            ),
            "{msg}"
        );
    }
}

#[test]
fn from_typed_into_any() {
    let any: AnyTopology = new().into();
    assert_eq!(any.status(), TopologyStatus::Pending);
    let any = AnyTopology::from(new().deploy().fail("f"));
    assert_eq!(any.status(), TopologyStatus::Failed);
    assert_eq!(any.data().reason.as_deref(), Some("f"));
    assert!(matches!(any, AnyTopology::Failed(_)));
    let any: AnyTopology = new().discard().into();
    assert!(matches!(any, AnyTopology::TornDown(_)));
}

#[test]
fn matching_on_any_gives_typed_values() {
    // A store-side dispatch: every variant carries its typed value.
    let next = |any: AnyTopology| -> TopologyStatus {
        match any {
            AnyTopology::Pending(t) => t.deploy().status(),
            AnyTopology::Deploying(t) => t.activate().status(),
            AnyTopology::Active(t) => t.degrade("x").status(),
            AnyTopology::Degraded(t) => t.recover().status(),
            AnyTopology::Failed(t) => t.tear_down().status(),
            AnyTopology::TearingDown(t) => t.finish_teardown().status(),
            AnyTopology::TornDown(t) => t.status(),
        }
    };
    let got: Vec<TopologyStatus> = TopologyStatus::ALL
        .into_iter()
        .map(|s| next(reach(s)))
        .collect();
    assert_eq!(
        got,
        [
            TopologyStatus::Deploying,
            TopologyStatus::Active,
            TopologyStatus::Degraded,
            TopologyStatus::Active,
            TopologyStatus::TearingDown,
            TopologyStatus::TornDown,
            TopologyStatus::TornDown,
        ]
    );
    for s in TopologyStatus::ALL {
        assert!(next(reach(s)) == s || s.can_transition_to(next(reach(s))));
    }
}

#[test]
fn debug_mentions_the_status() {
    let t = new().deploy().activate();
    let dbg = format!("{t:?}");
    assert!(dbg.contains("Active"), "{dbg}");
    assert!(dbg.contains("status"), "{dbg}");
    assert!(dbg.contains("lab"), "{dbg}");

    let any = t.erase();
    let dbg = format!("{any:?}");
    assert!(dbg.contains("Active"), "{dbg}");
    assert!(dbg.contains("lab"), "{dbg}");

    for status in TopologyStatus::ALL {
        let dbg = format!("{:?}", reach(status));
        assert!(dbg.contains(&format!("{status:?}")), "{dbg}");
    }

    let err = reach(TopologyStatus::Failed)
        .restore::<Pending>()
        .expect_err("failed is not pending");
    let dbg = format!("{err:?}");
    assert!(dbg.contains("Pending") && dbg.contains("Failed"), "{dbg}");
}

#[test]
fn marker_status_constants() {
    assert_eq!(<state::Pending as State>::STATUS, TopologyStatus::Pending);
    assert_eq!(
        <state::Deploying as State>::STATUS,
        TopologyStatus::Deploying
    );
    assert_eq!(<state::Active as State>::STATUS, TopologyStatus::Active);
    assert_eq!(<state::Degraded as State>::STATUS, TopologyStatus::Degraded);
    assert_eq!(<state::Failed as State>::STATUS, TopologyStatus::Failed);
    assert_eq!(
        <state::TearingDown as State>::STATUS,
        TopologyStatus::TearingDown
    );
    assert_eq!(<state::TornDown as State>::STATUS, TopologyStatus::TornDown);
}
