//! `transition_status`: the table, the believed status, the version precondition, and
//! what a transition records.

use crate::pages::ListAll;
use std::time::Duration;

use topostate::store::{NewLan, Precondition, StoreError};
use topostate::{TopologyStatus, VersionConflict};

use super::{ALL, Harness, assert_log_legal, legal, reach, setup, version};

/// All 49 ordered pairs, each from a topology that reached `from` legally: the 13 legal
/// ones succeed (with or without a precondition), the 36 others are `IllegalTransition`
/// and change nothing.
pub fn transition_all_pairs<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (mut moved, mut refused) = (0, 0);
    for from in ALL {
        for to in ALL {
            for with_precondition in [false, true] {
                let t = reach(s, &format!("{from}-{to}-{with_precondition}"), from);
                let events = s.all_events(t.id).unwrap();
                let precondition = if with_precondition {
                    Precondition::status(from).and_version(t.version)
                } else {
                    Precondition::none()
                };
                let result = s.transition_status(t.id, to, None, precondition);
                if legal(from, to) {
                    let done = result.unwrap_or_else(|e| panic!("{from} → {to}: {e:?}"));
                    assert_eq!(done.topology.status, to);
                    assert_eq!(done.topology.version, t.version);
                    assert_eq!(
                        (done.event.topology_id, done.event.from, done.event.to),
                        (t.id, from, to)
                    );
                    assert_eq!(done.event.reason, None);
                    assert_eq!(s.get_topology(t.id).unwrap(), done.topology);
                    let after = s.all_events(t.id).unwrap();
                    assert_eq!(after.len(), events.len() + 1);
                    assert_eq!(after[0], done.event, "the new event is listed first");
                    if !with_precondition {
                        moved += 1;
                    }
                } else {
                    expect_err!(
                        result,
                        StoreError::IllegalTransition { from: f, to: t2 } if *f == from && *t2 == to
                    );
                    assert_eq!(
                        s.get_topology(t.id).unwrap(),
                        t,
                        "{from} → {to} changed the row"
                    );
                    assert_eq!(s.all_events(t.id).unwrap(), events);
                    if !with_precondition {
                        refused += 1;
                    }
                }
                assert_log_legal(s, t.id);
            }
        }
    }
    assert_eq!((moved, refused), (13, 36));
}

/// A believed status that is not the stored one is `StaleStatus`, even when the stored
/// status could also move to the target, and before an illegal move or a stale version.
pub fn stale_status_wins_even_when_legal<H: Harness>() {
    use TopologyStatus::*;
    let (_h, s) = setup::<H>();
    let s = &*s;
    let t = reach(s, "lab", Active);
    let events = s.all_events(t.id).unwrap();
    let cases = [
        (Degraded, Precondition::status(Deploying)),
        (TearingDown, Precondition::status(Degraded)),
        (Pending, Precondition::status(Failed)),
        (
            Degraded,
            Precondition::status(Pending).and_version(t.version + 1),
        ),
        (Active, Precondition::status(Degraded)),
    ];
    for (to, precondition) in cases {
        let believed = precondition.status.unwrap();
        expect_err!(
            s.transition_status(t.id, to, Some("why"), precondition),
            StoreError::StaleStatus { expected, found } if *expected == believed && *found == Active
        );
    }
    assert_eq!(s.get_topology(t.id).unwrap(), t);
    assert_eq!(s.all_events(t.id).unwrap(), events);
    let done = s
        .transition_status(t.id, Degraded, None, Precondition::status(Active))
        .unwrap();
    assert_eq!(done.event.from, Active);
    assert_log_legal(s, t.id);
}

/// A version in the precondition is checked (after the table) but never bumped.
pub fn transition_version_checked_not_bumped<H: Harness>() {
    use TopologyStatus::*;
    let (_h, s) = setup::<H>();
    let s = &*s;
    let id = s.create_topology("lab").unwrap().id;
    s.add_lan(id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
        .unwrap();
    let before = s.get_topology(id).unwrap();
    assert_eq!(before.version, 2);
    expect_err!(
        s.transition_status(
            id,
            Deploying,
            None,
            Precondition::status(Pending).and_version(1)
        ),
        StoreError::VersionConflict(VersionConflict {
            current: 2,
            expected: 1
        })
    );
    let version_only = Precondition::version(3);
    expect_err!(
        s.transition_status(id, Deploying, None, version_only),
        StoreError::VersionConflict(VersionConflict {
            current: 2,
            expected: 3
        })
    );
    // The table is checked before the version.
    expect_err!(
        s.transition_status(
            id,
            Active,
            None,
            Precondition::status(Pending).and_version(1)
        ),
        StoreError::IllegalTransition { .. }
    );
    assert_eq!(s.get_topology(id).unwrap(), before);
    assert!(s.all_events(id).unwrap().is_empty());

    let done = s
        .transition_status(
            id,
            Deploying,
            None,
            Precondition::status(Pending).and_version(2),
        )
        .unwrap();
    assert_eq!(done.topology.version, 2, "a transition bumped the version");
    let version_only = Precondition::version(2);
    s.transition_status(id, Active, None, version_only).unwrap();
    assert_eq!(version(s, id), 2);
    assert_log_legal(s, id);
}

/// A transition writes the status, `status_changed_at` (the event's time) and the reason
/// (cleared when none is given), and appends the event with the actual previous status.
pub fn transition_records_time_and_reason<H: Harness>() {
    use TopologyStatus::*;
    let (_h, s) = setup::<H>();
    let s = &*s;
    let created = s.create_topology("lab").unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let deploying = s
        .transition_status(created.id, Deploying, None, Precondition::none())
        .unwrap();
    assert!(
        deploying.topology.status_changed_at > created.created_at,
        "status_changed_at was not updated"
    );
    assert_eq!(deploying.topology.status_changed_at, deploying.event.at);
    assert_eq!(deploying.topology.created_at, created.created_at);
    std::thread::sleep(Duration::from_millis(5));
    let failed = s
        .transition_status(
            created.id,
            Failed,
            Some("compose up exited 1"),
            Precondition::status(Deploying),
        )
        .unwrap();
    assert!(failed.topology.status_changed_at > deploying.topology.status_changed_at);
    assert_eq!(
        failed.topology.reason.as_deref(),
        Some("compose up exited 1")
    );
    assert_eq!(failed.event.reason.as_deref(), Some("compose up exited 1"));
    assert_eq!((failed.event.from, failed.event.to), (Deploying, Failed));
    let stored = s.get_topology(created.id).unwrap();
    assert_eq!(stored, failed.topology);

    let tearing = s
        .transition_status(created.id, TearingDown, None, Precondition::none())
        .unwrap();
    assert_eq!(tearing.topology.reason, None, "the reason was not cleared");
    assert_eq!(
        tearing.event.from, Failed,
        "the event names the actual previous status"
    );
    let degraded = s
        .transition_status(
            created.id,
            Degraded,
            Some("docker unreachable"),
            Precondition::none(),
        )
        .unwrap();
    let events = assert_log_legal(s, created.id);
    assert_eq!(events[0], degraded.event);
    let reasons: Vec<_> = events.iter().map(|e| e.reason.as_deref()).collect();
    assert_eq!(
        reasons,
        vec![
            Some("docker unreachable"),
            None,
            Some("compose up exited 1"),
            None
        ]
    );
    for pair in events.windows(2) {
        assert!(pair[0].at >= pair[1].at);
    }
}
