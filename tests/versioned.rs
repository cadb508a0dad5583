//! Optimistic versions: `Versioned<T>`, `check_and_bump`, `bump` and their errors.

use topostate::state::{Active, Deploying, Failed, Pending};
use topostate::version::bump;
use topostate::{
    AnyTopology, INITIAL_VERSION, InvalidVersion, MAX_VERSION, ParseStatusError, StatusMismatch,
    Topology, TopologyData, TopologyId, TopologyNotEditable, TopologyStatus, TopologyStatusError,
    VersionConflict, VersionError, VersionOverflow, Versioned, check_and_bump,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn lab() -> Versioned<Topology<Pending>> {
    Versioned::new(Topology::new(TopologyId::new(1), "lab"))
}

#[test]
fn constants() {
    assert_eq!(INITIAL_VERSION, 1);
    assert_eq!(MAX_VERSION, i64::MAX as u64);
    assert_eq!(MAX_VERSION, 9_223_372_036_854_775_807);
    assert!(
        i64::try_from(MAX_VERSION).is_ok(),
        "fits a signed SQL integer"
    );
}

#[test]
fn new_is_version_one() {
    let v = lab();
    assert_eq!(v.version(), 1);
    assert_eq!(v.status(), TopologyStatus::Pending);
    assert_eq!(v.id(), TopologyId::new(1));
    assert_eq!(v.value().name(), "lab");
    assert_eq!(Versioned::new(()).version(), INITIAL_VERSION);
}

#[test]
fn transitions_keep_the_version() -> TestResult {
    let v = Versioned::from_parts(Topology::new(TopologyId::new(2), "lab"), 41)?;
    let v = v.transition_with(topostate::Topology::deploy);
    assert_eq!((v.version(), v.status()), (41, TopologyStatus::Deploying));
    let v = v.transition_with(|t| t.fail("compose up exited 1"));
    assert_eq!((v.version(), v.status()), (41, TopologyStatus::Failed));
    assert_eq!(v.value().reason(), Some("compose up exited 1"));
    let v = v.transition::<topostate::state::TearingDown>();
    assert_eq!((v.version(), v.status()), (41, TopologyStatus::TearingDown));
    assert_eq!(v.value().reason(), None);
    let v = v.transition_with(topostate::Topology::finish_teardown);
    assert_eq!(v.version(), 41);
    let any = v.erase();
    assert_eq!(
        (any.version(), any.status()),
        (41, TopologyStatus::TornDown)
    );
    assert_eq!(any.id(), TopologyId::new(2));
    Ok(())
}

// ---- check_and_bump ----------------------------------------------------------------------

#[test]
fn check_and_bump_happy_path() {
    for current in [1, 2, 41, MAX_VERSION - 1] {
        assert_eq!(check_and_bump(current, Some(current)), Ok(current + 1));
    }
}

#[test]
fn check_and_bump_none_neither_checks_nor_bumps() {
    for current in [1, 7, MAX_VERSION] {
        assert_eq!(check_and_bump(current, None), Ok(current));
    }
    let mut v = Versioned::new(());
    assert_eq!(v.check_and_bump(None), Ok(1));
    assert_eq!(v.version(), 1);
}

#[test]
fn check_and_bump_stale_is_a_conflict() {
    for (current, expected) in [(2, 1), (1, 2), (5, 0), (5, u64::MAX), (MAX_VERSION, 1)] {
        let err = check_and_bump(current, Some(expected)).expect_err("stale");
        assert_eq!(
            err,
            VersionError::Conflict(VersionConflict { current, expected })
        );
        assert_eq!(
            err.to_string(),
            format!("topology version conflict: expected {expected}, current is {current}")
        );
    }
    assert_eq!(
        check_and_bump(2, Some(1)).expect_err("stale").to_string(),
        "topology version conflict: expected 1, current is 2"
    );
}

#[test]
fn check_and_bump_at_max_overflows_without_wrapping() {
    let err = check_and_bump(MAX_VERSION, Some(MAX_VERSION)).expect_err("at max");
    assert_eq!(
        err,
        VersionError::Overflow(VersionOverflow {
            current: MAX_VERSION
        })
    );
    assert_eq!(
        err.to_string(),
        "topology version 9223372036854775807 is at the maximum and cannot be bumped"
    );
    // A stale version at the maximum is still a conflict: the check comes first.
    assert_eq!(
        check_and_bump(MAX_VERSION, Some(MAX_VERSION - 1)),
        Err(VersionError::Conflict(VersionConflict {
            current: MAX_VERSION,
            expected: MAX_VERSION - 1,
        }))
    );
    assert_eq!(
        check_and_bump(MAX_VERSION - 1, Some(MAX_VERSION - 1)),
        Ok(MAX_VERSION)
    );
}

#[test]
fn check_and_bump_is_const() {
    const BUMPED: Result<u64, VersionError> = check_and_bump(1, Some(1));
    assert_eq!(BUMPED, Ok(2));
}

#[test]
fn versioned_check_and_bump() -> TestResult {
    let mut v = Versioned::new("row");
    assert_eq!(v.check_and_bump(Some(1))?, 2);
    assert_eq!(v.version(), 2);
    let err = v.check_and_bump(Some(1)).expect_err("stale");
    assert_eq!(
        err,
        VersionError::Conflict(VersionConflict {
            current: 2,
            expected: 1
        })
    );
    assert_eq!(v.version(), 2, "unchanged on conflict");
    assert_eq!(v.check_and_bump(Some(2))?, 3);

    let mut at_max = Versioned::from_parts("row", MAX_VERSION)?;
    assert_eq!(
        at_max.check_and_bump(Some(MAX_VERSION)),
        Err(VersionError::Overflow(VersionOverflow {
            current: MAX_VERSION
        }))
    );
    assert_eq!(at_max.version(), MAX_VERSION, "unchanged on overflow");
    assert_eq!(
        at_max.check_and_bump(Some(3)),
        Err(VersionError::Conflict(VersionConflict {
            current: MAX_VERSION,
            expected: 3
        }))
    );
    assert_eq!(at_max.check_and_bump(None), Ok(MAX_VERSION));
    Ok(())
}

#[test]
fn bump_is_bounded() {
    assert_eq!(bump(1), Ok(2));
    assert_eq!(bump(MAX_VERSION - 1), Ok(MAX_VERSION));
    assert_eq!(
        bump(MAX_VERSION),
        Err(VersionOverflow {
            current: MAX_VERSION
        })
    );
    assert_eq!(
        bump(MAX_VERSION + 1),
        Err(VersionOverflow {
            current: MAX_VERSION + 1
        })
    );
    assert_eq!(bump(u64::MAX), Err(VersionOverflow { current: u64::MAX }));
}

#[test]
fn version_error_converts_from_its_parts() {
    let c = VersionConflict {
        current: 3,
        expected: 2,
    };
    assert_eq!(VersionError::from(c), VersionError::Conflict(c));
    let o = VersionOverflow { current: 9 };
    assert_eq!(VersionError::from(o), VersionError::Overflow(o));
    assert_eq!(VersionError::from(c).to_string(), c.to_string());
    assert_eq!(VersionError::from(o).to_string(), o.to_string());
}

// ---- from_parts / into_parts ------------------------------------------------------------

#[test]
fn from_parts_validates_the_range() -> TestResult {
    for bad in [0, MAX_VERSION + 1, u64::MAX] {
        let err = Versioned::from_parts("row", bad).expect_err("out of range");
        assert_eq!(err, InvalidVersion { version: bad });
        assert_eq!(
            err.to_string(),
            format!("invalid topology version {bad} (versions run from 1 to 9223372036854775807)")
        );
    }
    assert_eq!(Versioned::from_parts("row", 1)?.version(), 1);
    assert_eq!(
        Versioned::from_parts("row", MAX_VERSION)?.version(),
        MAX_VERSION
    );
    assert_eq!(Versioned::from_parts("row", 12)?.into_parts(), ("row", 12));
    Ok(())
}

#[test]
fn into_parts_round_trip() -> TestResult {
    let v = lab().transition_with(topostate::Topology::deploy);
    let (topology, version) = v.into_parts();
    assert_eq!(version, 1);
    assert_eq!(topology.status(), TopologyStatus::Deploying);
    let again = Versioned::from_parts(topology, version)?;
    assert_eq!(again.status(), TopologyStatus::Deploying);
    Ok(())
}

#[test]
fn map_keeps_the_version() -> TestResult {
    let v = Versioned::from_parts(20, 9)?;
    let v = v.map(|n| n * 2);
    assert_eq!(v.into_parts(), (40, 9));
    Ok(())
}

// ---- write ---------------------------------------------------------------------------------

#[test]
fn write_updates_version_only_on_success() -> TestResult {
    let mut stored = 1; // the store's version
    let mut mine = Versioned::new("canvas");
    let mut other = Versioned::new("canvas");

    let out = mine.write(|value, expected| {
        assert_eq!(*value, "canvas");
        assert_eq!(expected, 1, "write hands on the wrapper's version");
        stored = check_and_bump(stored, Some(expected))?;
        Ok::<_, VersionError>(("lan-1", stored))
    })?;
    assert_eq!(out, "lan-1");
    assert_eq!(mine.version(), 2);

    // The other holder is stale now: its write is refused and its version unchanged.
    let err = other
        .write(|_, expected| {
            stored = check_and_bump(stored, Some(expected))?;
            Ok::<_, VersionError>(((), stored))
        })
        .expect_err("stale write");
    assert_eq!(
        err.to_string(),
        "topology version conflict: expected 1, current is 2"
    );
    assert_eq!(other.version(), 1);
    assert_eq!(stored, 2);

    // After a re-read it succeeds.
    other.observe(stored);
    other.write(|_, expected| {
        stored = check_and_bump(stored, Some(expected))?;
        Ok::<_, VersionError>(((), stored))
    })?;
    assert_eq!((other.version(), stored), (3, 3));
    Ok(())
}

#[test]
fn write_error_of_any_type_keeps_the_version() -> TestResult {
    let mut v = Versioned::from_parts((), 5)?;
    let r: Result<(), String> = v.write(|(), _| Err("refused".to_owned()));
    assert_eq!(r, Err("refused".to_owned()));
    assert_eq!(v.version(), 5);
    Ok(())
}

#[test]
fn observe_stays_in_range() {
    let mut v = Versioned::new(());
    v.observe(17);
    assert_eq!(v.version(), 17);
    v.observe(0);
    assert_eq!(v.version(), INITIAL_VERSION);
    v.observe(u64::MAX);
    assert_eq!(v.version(), MAX_VERSION);
}

// ---- Versioned<AnyTopology>::restore -------------------------------------------------------

#[test]
fn restore_keeps_the_version() -> TestResult {
    let any = AnyTopology::from_stored("failed", TopologyData::new(TopologyId::new(2), "x"))?;
    let v = Versioned::from_parts(any, 5)?;
    assert_eq!(v.status(), TopologyStatus::Failed);
    assert_eq!(v.id(), TopologyId::new(2));
    let failed: Versioned<Topology<Failed>> = v.restore::<Failed>()?;
    assert_eq!(failed.version(), 5);
    assert_eq!(failed.status(), TopologyStatus::Failed);
    let torn = failed
        .transition_with(topostate::Topology::tear_down)
        .transition_with(topostate::Topology::finish_teardown);
    assert_eq!(
        (torn.version(), torn.status()),
        (5, TopologyStatus::TornDown)
    );
    Ok(())
}

#[test]
fn restore_mismatch_gives_the_wrapper_back() -> TestResult {
    let any = AnyTopology::from_stored("pending", TopologyData::new(TopologyId::new(4), "y"))?;
    let v = Versioned::from_parts(any, 77)?;
    let err: StatusMismatch<Versioned<AnyTopology>, TopologyStatus> =
        v.restore::<Active>().expect_err("pending is not active");
    assert_eq!(err.expected(), TopologyStatus::Active);
    assert_eq!(err.found(), TopologyStatus::Pending);
    assert_eq!(
        err.to_string(),
        "expected a topology in status 'active', found 'pending'"
    );
    let back = err.into_inner();
    assert_eq!(back.version(), 77);
    assert_eq!(back.status(), TopologyStatus::Pending);
    assert_eq!(back.value().name(), "y");
    // The wrapper given back restores as its real status, version intact.
    let pending = back.restore::<Pending>()?;
    assert_eq!(pending.version(), 77);
    let deploying: Versioned<Topology<Deploying>> = pending.transition();
    assert_eq!(deploying.version(), 77);
    Ok(())
}

#[test]
fn round_trip_through_storage_shape() -> TestResult {
    // What a store does: erase, take apart, write the string and version, read back.
    let v = lab()
        .transition_with(topostate::Topology::deploy)
        .transition_with(|t| t.degrade("decky-3 exited"));
    let (topology, version) = v.erase().into_parts();
    let status = topology.status().as_str().to_owned();
    let data = topology.into_data();

    let any = AnyTopology::from_stored(&status, data)?;
    let back = Versioned::from_parts(any, version)?.restore::<topostate::state::Degraded>()?;
    assert_eq!(back.version(), 1);
    assert_eq!(back.value().reason(), Some("decky-3 exited"));
    Ok(())
}

// ---- error traits ------------------------------------------------------------------------

fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}

#[test]
fn errors_are_send_sync_static() {
    assert_error::<ParseStatusError>();
    assert_error::<TopologyStatusError>();
    assert_error::<VersionConflict>();
    assert_error::<VersionOverflow>();
    assert_error::<VersionError>();
    assert_error::<InvalidVersion>();
    assert_error::<TopologyNotEditable>();
    assert_error::<StatusMismatch<AnyTopology, TopologyStatus>>();
    assert_error::<StatusMismatch<Versioned<AnyTopology>, TopologyStatus>>();
}

#[test]
fn errors_box_into_dyn_error() {
    let errors: Vec<Box<dyn std::error::Error + Send + Sync>> = vec![
        Box::new(VersionConflict {
            current: 2,
            expected: 1,
        }),
        Box::new(InvalidVersion { version: 0 }),
        Box::new(VersionError::Overflow(VersionOverflow { current: 1 })),
    ];
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "topology version conflict: expected 1, current is 2",
            "invalid topology version 0 (versions run from 1 to 9223372036854775807)",
            "topology version 1 is at the maximum and cannot be bumped",
        ]
    );
}
