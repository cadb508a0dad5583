//! The mutation queue: enqueue gate and versions, serial oldest-first claims, marks from
//! `applying` only, live edits with a claim.

use std::time::{Duration, Instant};

use crate::pages::ListAll;
use topostate::store::{
    ChildEdit, Claim, ClaimOptions, DeckyPatch, Entity, LanId, LanPatch, Lease, MAX_LEASE,
    Mutation, MutationId, NewDecky, NewEdge, NewLan, Precondition, StoreError, TopologyStore,
};
use topostate::{MutationOp, MutationState, TopologyId, TopologyStatus, VersionConflict};

use super::{ALL, Harness, detail, reach, seeded, setup, version};

fn claim(s: &dyn TopologyStore, id: TopologyId) -> (Mutation, Lease) {
    match s.claim_next_mutation(id).unwrap() {
        Claim::Claimed {
            mutation,
            lease: claim,
        } => (mutation, claim),
        other => panic!("expected a claim, got {other:?}"),
    }
}

fn mutation(s: &dyn TopologyStore, id: TopologyId, m: topostate::store::MutationId) -> Mutation {
    s.all_mutations(id, None)
        .unwrap()
        .into_iter()
        .find(|row| row.id == m)
        .expect("mutation missing")
}

/// Enqueueing works only in `active` and `degraded`; elsewhere it is `NotEditable` and
/// writes nothing; claims are gated the same way.
pub fn enqueue_only_live<H: Harness>() {
    use TopologyStatus::*;
    let (_h, s) = setup::<H>();
    let s = &*s;
    for status in ALL {
        let t = reach(s, &format!("t-{status}"), status);
        let v = t.version;
        let live = matches!(status, Active | Degraded);
        for expected in [None, Some(v)] {
            let result = s.enqueue_mutation(t.id, MutationOp::AddDecky, "{}", expected);
            if live {
                result.unwrap();
            } else {
                expect_err!(
                    result,
                    StoreError::NotEditable(n) if n.status == status
                );
            }
        }
        let claimed = s.claim_next_mutation(t.id);
        if live {
            assert_eq!(version(s, t.id), v + 1);
            assert_eq!(s.all_mutations(t.id, None).unwrap().len(), 2);
            assert!(matches!(claimed, Ok(Claim::Claimed { .. })), "{claimed:?}");
        } else {
            expect_err!(claimed, StoreError::NotEditable(_));
            assert_eq!(version(s, t.id), v);
            assert!(s.all_mutations(t.id, None).unwrap().is_empty());
        }
    }
}

/// A matching version is bumped by the enqueue, `None` is not checked, a stale one is a
/// conflict and queues nothing; the row is stored as given.
pub fn enqueue_versioning<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let t = reach(s, "lab", TopologyStatus::Active);
    let v = t.version;
    let first = s
        .enqueue_mutation(t.id, MutationOp::AddLan, "{\"name\":\"lan-x\"}", None)
        .unwrap();
    assert_eq!(first.version, v);
    let second = s
        .enqueue_mutation(t.id, MutationOp::RemoveDecky, "{\"decky\":7}", Some(v))
        .unwrap();
    assert_eq!(second.version, v + 1);
    assert_eq!(version(s, t.id), v + 1);
    assert!(second.id > first.id, "mutation ids grow with enqueue order");
    for stale in [v, v + 2] {
        expect_err!(
            s.enqueue_mutation(t.id, MutationOp::AddLan, "{}", Some(stale)),
            StoreError::VersionConflict(VersionConflict { current, expected })
                if *current == v + 1 && *expected == stale
        );
    }
    let rows = s.all_mutations(t.id, None).unwrap();
    assert_eq!(rows.len(), 2);
    let m = &rows[0];
    assert_eq!(
        (m.id, m.topology_id, m.op, m.payload.as_str(), m.state),
        (
            second.id,
            t.id,
            MutationOp::RemoveDecky,
            "{\"decky\":7}",
            MutationState::Pending
        )
    );
    assert_eq!((m.applied_at, m.reason.as_deref()), (None, None));
    assert_eq!(rows[1].op, MutationOp::AddLan);
}

/// Claims are oldest first, return exactly the row they moved to `applying`, and are
/// serial: `Busy` (naming the applying mutation) while one is applying, even with none
/// pending; `Empty` only when nothing is pending and nothing is applying. Claims and
/// marks bump nothing; queues of different topologies are independent.
pub fn claims_oldest_first_busy_vs_empty<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let t = reach(s, "lab", TopologyStatus::Active);
    let other = reach(s, "other", TopologyStatus::Degraded);
    assert_eq!(s.claim_next_mutation(t.id).unwrap(), Claim::Empty);
    let ids: Vec<_> = (0..3)
        .map(|i| {
            s.enqueue_mutation(t.id, MutationOp::AddLan, &format!("{{\"n\":{i}}}"), None)
                .unwrap()
                .id
        })
        .collect();
    let theirs = s
        .enqueue_mutation(other.id, MutationOp::UpdateLan, "{}", None)
        .unwrap()
        .id;

    let (row, token) = claim(s, t.id);
    assert_eq!(
        (row.id, token.id(), token.topology_id()),
        (ids[0], ids[0], t.id)
    );
    assert_eq!(row.state, MutationState::Applying);
    assert_eq!(row.payload, "{\"n\":0}");
    assert_eq!(
        row,
        mutation(s, t.id, ids[0]),
        "the claim returned another row"
    );
    assert_eq!(
        s.all_mutations(t.id, Some(MutationState::Applying))
            .unwrap(),
        vec![row.clone()]
    );
    for _ in 0..2 {
        assert_eq!(
            s.claim_next_mutation(t.id).unwrap(),
            Claim::Busy { applying: ids[0] }
        );
    }
    // Another topology's queue is not blocked.
    let (their_row, their_token) = claim(s, other.id);
    assert_eq!(their_row.id, theirs);

    let applied = s.mark_mutation_applied(token).unwrap();
    assert_eq!(
        (applied.id, applied.state),
        (ids[0], MutationState::Applied)
    );
    assert!(applied.applied_at.is_some());
    assert_eq!(applied.reason, None);
    assert_eq!(applied, mutation(s, t.id, ids[0]));

    let (row, token) = claim(s, t.id);
    assert_eq!(row.id, ids[1]);
    let failed = s.mark_mutation_failed(token, "boom").unwrap();
    assert_eq!(
        (failed.state, failed.reason.as_deref()),
        (MutationState::Failed, Some("boom"))
    );
    assert!(failed.applied_at.is_some());

    let (row, token) = claim(s, t.id);
    assert_eq!(row.id, ids[2]);
    assert_eq!(
        s.claim_next_mutation(t.id).unwrap(),
        Claim::Busy { applying: ids[2] },
        "busy, not empty, while the last one is applying"
    );
    s.mark_mutation_applied(token).unwrap();
    assert_eq!(s.claim_next_mutation(t.id).unwrap(), Claim::Empty);
    s.mark_mutation_applied(their_token).unwrap();
    assert_eq!(
        version(s, t.id),
        t.version,
        "claims or marks bumped the version"
    );
}

/// A mark moves only from `applying`: marking twice, or with a claim forged for a pending
/// mutation, is a `MutationState` error that changes nothing.
pub fn marks_only_from_applying<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let t = reach(s, "lab", TopologyStatus::Active);
    let other = reach(s, "other", TopologyStatus::Active);
    let m1 = s
        .enqueue_mutation(t.id, MutationOp::AddLan, "{}", None)
        .unwrap()
        .id;
    let m2 = s
        .enqueue_mutation(t.id, MutationOp::AddLan, "{}", None)
        .unwrap()
        .id;
    let forge = |m| Lease::from_parts(m, t.id, 0);
    let pending = |e: &StoreError, m| matches!(e, StoreError::WrongMutationState { id, expected: MutationState::Applying, found: MutationState::Pending } if *id == m);
    let e = s.mark_mutation_applied(forge(m1)).unwrap_err();
    assert!(pending(&e, m1), "{e:?}");
    let e = s.mark_mutation_failed(forge(m1), "x").unwrap_err();
    assert!(pending(&e, m1), "{e:?}");
    let e = s.apply_live(&forge(m1), &[]).unwrap_err();
    assert!(pending(&e, m1), "{e:?}");
    let row = mutation(s, t.id, m1);
    assert_eq!(
        (row.state, row.applied_at, row.reason),
        (MutationState::Pending, None, None)
    );

    // A claim naming another topology is refused.
    let (_, token) = claim(s, t.id);
    let wrong = Lease::from_parts(m1, other.id, token.token());
    expect_err!(
        s.mark_mutation_applied(wrong),
        StoreError::NotFound { .. } | StoreError::Invalid { .. }
    );
    assert_eq!(mutation(s, t.id, m1).state, MutationState::Applying);

    s.mark_mutation_applied(token).unwrap();
    let applied = mutation(s, t.id, m1);
    for e in [
        s.mark_mutation_applied(Lease::from_parts(m1, t.id, 1))
            .unwrap_err(),
        s.mark_mutation_failed(Lease::from_parts(m1, t.id, 1), "again")
            .unwrap_err(),
    ] {
        assert!(
            matches!(
                e,
                StoreError::WrongMutationState {
                    expected: MutationState::Applying,
                    found: MutationState::Applied,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    assert_eq!(
        mutation(s, t.id, m1),
        applied,
        "a refused mark overwrote the row"
    );

    let (_, token) = claim(s, t.id);
    s.mark_mutation_failed(token, "refused").unwrap();
    let e = s
        .mark_mutation_applied(Lease::from_parts(m2, t.id, 1))
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::WrongMutationState {
                found: MutationState::Failed,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(mutation(s, t.id, m2).reason.as_deref(), Some("refused"));
}

/// Live edits need a claimed (`applying`) mutation on an `active`/`degraded` topology;
/// they are all or nothing and bump no version. Tearing down while applying refuses
/// further live edits; the claim can still be marked.
pub fn apply_live_needs_claim_and_live_topology<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Active);
    let v = version(s, id);
    let queued = s
        .enqueue_mutation(id, MutationOp::AttachDecky, "{}", Some(v))
        .unwrap();
    let v = queued.version;
    s.enqueue_mutation(id, MutationOp::AddLan, "{}", None)
        .unwrap();
    let (_, token) = claim(s, id);

    let report = s
        .apply_live(
            &token,
            &[
                ChildEdit::AddLan(NewLan::new("live", "10.3.0.0/24")),
                ChildEdit::UpdateDecky(
                    rows.web.into(),
                    DeckyPatch::new().with_services(["telnet"]),
                ),
                ChildEdit::AddEdge(NewEdge::new(rows.web, rows.lan_b)),
            ],
        )
        .unwrap();
    assert_eq!(report.version, v, "a live edit bumped the version");
    assert_eq!(report.touched.len(), 3);
    assert_eq!(version(s, id), v);
    let after = detail(s, id);
    assert!(after.lans.iter().any(|l| l.name == "live"));
    assert_eq!(after.edges.len(), 2);

    // All or nothing, with the free-form edit checks.
    for bad in [
        ChildEdit::UpdateLan(LanId::new(9_999_999).into(), LanPatch::default()),
        ChildEdit::AddLan(NewLan::new("live", "10.0.0.0/24")),
        ChildEdit::AddEdge(NewEdge::new(rows.web, rows.lan_b)),
    ] {
        let result = s.apply_live(
            &token,
            &[
                ChildEdit::AddLan(NewLan::new("partial", "10.4.0.0/24")),
                bad,
            ],
        );
        assert!(result.is_err(), "{result:?}");
        assert_eq!(detail(s, id), after, "a refused live edit wrote something");
    }

    s.mark_mutation_applied(token).unwrap();
    let done = Lease::from_parts(queued.id, id, 1);
    expect_err!(
        s.apply_live(
            &done,
            &[ChildEdit::AddLan(NewLan::new("late", "10.5.0.0/24"))]
        ),
        StoreError::WrongMutationState {
            found: MutationState::Applied,
            ..
        }
    );

    // Degraded is live too.
    s.transition_status(
        id,
        TopologyStatus::Degraded,
        Some("x"),
        Precondition::none(),
    )
    .unwrap();
    let (_, token) = claim(s, id);
    s.apply_live(&token, &[ChildEdit::DeleteLan(rows.lan_a.into())])
        .unwrap();

    // Torn down under the applier: no more live edits, but the claim can be marked.
    s.transition_status(id, TopologyStatus::TearingDown, None, Precondition::none())
        .unwrap();
    let before = detail(s, id);
    expect_err!(
        s.apply_live(&token, &[ChildEdit::AddLan(NewLan::new("late", "10.5.0.0/24"))]),
        StoreError::NotEditable(n) if n.status == TopologyStatus::TearingDown
    );
    expect_err!(s.claim_next_mutation(id), StoreError::NotEditable(_));
    assert_eq!(detail(s, id), before);
    let failed = s.mark_mutation_failed(token, "torn down").unwrap();
    assert_eq!(failed.state, MutationState::Failed);
}

/// `list_mutations` is newest first (by id) and filters by state.
pub fn list_mutations_newest_first_and_filter<H: Harness>() {
    use MutationState::*;
    let (_h, s) = setup::<H>();
    let s = &*s;
    let t = reach(s, "lab", TopologyStatus::Active);
    let ids: Vec<_> = (0..5)
        .map(|_| {
            s.enqueue_mutation(t.id, MutationOp::UpdateDecky, "{}", None)
                .unwrap()
                .id
        })
        .collect();
    let (_, token) = claim(s, t.id);
    s.mark_mutation_applied(token).unwrap();
    let (_, token) = claim(s, t.id);
    s.mark_mutation_failed(token, "no").unwrap();
    let (_, _applying) = claim(s, t.id);

    let listed = |state| -> Vec<_> {
        s.all_mutations(t.id, state)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect()
    };
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed(None), newest_first);
    assert_eq!(listed(Some(Pending)), vec![ids[4], ids[3]]);
    assert_eq!(listed(Some(Applying)), vec![ids[2]]);
    assert_eq!(listed(Some(Applied)), vec![ids[0]]);
    assert_eq!(listed(Some(Failed)), vec![ids[1]]);
    let other = reach(s, "other", TopologyStatus::Active);
    assert!(s.all_mutations(other.id, None).unwrap().is_empty());
}

/// Claims again every 20 ms until the claim takes something, at most 10 s.
fn claim_eventually(
    s: &dyn TopologyStore,
    id: TopologyId,
    options: &ClaimOptions,
) -> (Mutation, Lease) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match s.claim_next_mutation_with(id, options).unwrap() {
            Claim::Claimed {
                mutation,
                lease: claim,
            } => return (mutation, claim),
            Claim::Busy { .. } if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => panic!("no takeover within 10 s: {other:?}"),
        }
    }
}

fn lease_lost(e: &StoreError, current: u64) -> bool {
    matches!(e, StoreError::LeaseLost { current_token, .. } if *current_token == current)
}

/// A claim holds its mutation for its lease (`Busy` meanwhile); once the lease has passed,
/// the next claim takes the same mutation over with more attempts and a greater token.
/// The old holder's live edits, renewals, releases and marks are refused as `LeaseLost`
/// and write nothing; live edits it committed are not applied again by the new holder.
pub fn leases_take_over_and_fence_the_old_holder<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let t = reach(s, "lab", TopologyStatus::Active);
    let m1 = s
        .enqueue_mutation(t.id, MutationOp::AddLan, "{}", None)
        .unwrap()
        .id;
    let m2 = s
        .enqueue_mutation(t.id, MutationOp::AddLan, "{}", None)
        .unwrap()
        .id;
    let short = ClaimOptions::new()
        .lease(Duration::from_millis(200))
        .holder("applier-a");
    let Claim::Claimed { mutation, lease: a } = s.claim_next_mutation_with(t.id, &short).unwrap()
    else {
        panic!("two mutations are pending");
    };
    assert_eq!((mutation.id, mutation.attempts), (m1, 1));
    assert_eq!(mutation.holder.as_deref(), Some("applier-a"));
    assert_eq!(a.token(), mutation.token);
    let (Some(at), Some(until)) = (mutation.claimed_at, mutation.lease_until) else {
        panic!("a claim records when it was taken and until when it holds: {mutation:?}");
    };
    assert!(until > at, "{mutation:?}");
    assert_eq!(
        s.claim_next_mutation(t.id).unwrap(),
        Claim::Busy { applying: m1 }
    );
    let renewed = s.renew_lease(&a, Duration::from_millis(200)).unwrap();
    assert_eq!((renewed.token, renewed.attempts), (a.token(), 1));
    let lan_a = [ChildEdit::AddLan(NewLan::new("from-a", "10.9.1.0/24"))];
    s.apply_live(&a, &lan_a).unwrap();
    assert_eq!(mutation_row(s, t.id, m1).edited_by, Some(a.token()));

    // Applier A stops; B takes over once the lease has passed.
    let b_opts = ClaimOptions::new().lease(Duration::from_mins(1));
    let (taken, b) = claim_eventually(s, t.id, &b_opts);
    assert_eq!((taken.id, taken.attempts), (m1, 2));
    assert!(b.token() > a.token(), "{} ≤ {}", b.token(), a.token());
    assert_eq!(taken.holder, None);
    let before = detail(s, t.id);
    let row = mutation_row(s, t.id, m1);

    // The zombie writes nothing.
    let lan_z = [ChildEdit::AddLan(NewLan::new("zombie", "10.9.2.0/24"))];
    let e = s.apply_live(&a, &lan_z).unwrap_err();
    assert!(lease_lost(&e, b.token()), "{e:?}");
    let e = s.renew_lease(&a, Duration::from_secs(5)).unwrap_err();
    assert!(lease_lost(&e, b.token()), "{e:?}");
    let zombie = Lease::from_parts(a.id(), a.topology_id(), a.token());
    let e = s.release_mutation(zombie).unwrap_err();
    assert!(lease_lost(&e, b.token()), "{e:?}");
    let zombie = Lease::from_parts(a.id(), a.topology_id(), a.token());
    let e = s.mark_mutation_failed(zombie, "zombie").unwrap_err();
    assert!(lease_lost(&e, b.token()), "{e:?}");
    let e = s.mark_mutation_applied(a).unwrap_err();
    assert!(lease_lost(&e, b.token()), "{e:?}");
    assert_eq!(detail(s, t.id), before, "a zombie wrote");
    assert_eq!(mutation_row(s, t.id, m1), row, "a zombie wrote");

    // A's committed edits are not applied twice; B closes the mutation.
    let e = s.apply_live(&b, &lan_a).unwrap_err();
    assert!(
        matches!(e, StoreError::EditsCommitted { edited_by, .. } if edited_by == row.edited_by.unwrap()),
        "{e:?}"
    );
    assert_eq!(detail(s, t.id), before);
    let done = s.mark_mutation_applied(b).unwrap();
    assert_eq!((done.state, done.attempts), (MutationState::Applied, 2));

    // In order: the next claim is m2, never a skip.
    let (next, c) = claim(s, t.id);
    assert_eq!(next.id, m2);
    let released = s.release_mutation(c).unwrap();
    assert_eq!(released.state, MutationState::Pending);
    let (again, d) = claim(s, t.id);
    assert_eq!((again.id, again.attempts), (m2, 2));
    s.mark_mutation_applied(d).unwrap();
}

/// A lease of zero, one past `MAX_LEASE`, or a renewal of either, is `Invalid` naming the
/// lease, and changes nothing; a fencing refusal outranks it.
pub fn bad_leases_are_refused<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let t = reach(s, "lab", TopologyStatus::Active);
    let m = s
        .enqueue_mutation(t.id, MutationOp::AddLan, "{}", None)
        .unwrap()
        .id;
    for bad in [
        Duration::ZERO,
        Duration::from_nanos(10),
        MAX_LEASE + Duration::from_secs(1),
        Duration::MAX,
    ] {
        let opts = ClaimOptions::new().lease(bad);
        let e = s.claim_next_mutation_with(t.id, &opts).unwrap_err();
        assert!(
            matches!(e, StoreError::Invalid { field: "lease", .. }),
            "{bad:?}: {e:?}"
        );
        assert_eq!(mutation_row(s, t.id, m).state, MutationState::Pending);
    }
    let opts = ClaimOptions::new().lease(MAX_LEASE);
    let Claim::Claimed { lease: c, mutation } = s.claim_next_mutation_with(t.id, &opts).unwrap()
    else {
        panic!("one mutation is pending");
    };
    let e = s.renew_lease(&c, Duration::ZERO).unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid { field: "lease", .. }),
        "{e:?}"
    );
    assert_eq!(mutation_row(s, t.id, m).lease_until, mutation.lease_until);
    let stale = Lease::from_parts(m, t.id, c.token() + 1);
    let e = s.renew_lease(&stale, Duration::ZERO).unwrap_err();
    assert!(lease_lost(&e, c.token()), "{e:?}");
}

/// `wait_for_work` answers at once when a claim could take something, times out when none
/// could, and (where the face can wait) wakes when another handle enqueues.
pub fn wait_for_work_wakes_on_enqueue<H: Harness>() {
    let (h, s) = setup::<H>();
    let s = &*s;
    let t = reach(s, "lab", TopologyStatus::Active);
    assert!(
        !s.wait_for_work(Some(t.id), Duration::from_millis(30))
            .unwrap()
    );
    assert!(!s.wait_for_work(None, Duration::from_millis(30)).unwrap());
    let missing = TopologyId::new(9_999_999);
    expect_err!(
        s.wait_for_work(Some(missing), Duration::from_millis(1)),
        StoreError::NotFound { .. }
    );
    s.enqueue_mutation(t.id, MutationOp::AddLan, "{}", None)
        .unwrap();
    assert!(s.wait_for_work(Some(t.id), Duration::ZERO).unwrap());
    let (_, held) = claim(s, t.id);
    // Held under the default lease: nothing to claim.
    assert!(
        !s.wait_for_work(Some(t.id), Duration::from_millis(30))
            .unwrap()
    );
    s.mark_mutation_applied(held).unwrap();
    let producer = h.handle();
    let id = t.id;
    let enqueue = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        producer
            .enqueue_mutation(id, MutationOp::AddLan, "{}", None)
            .map(|_| ())
    });
    let woke = s
        .wait_for_work(Some(t.id), Duration::from_secs(20))
        .unwrap();
    enqueue.join().unwrap().unwrap();
    assert!(woke, "no wake-up within 20 s of an enqueue");
    // A passing lease wakes a waiter too.
    s.enqueue_mutation(t.id, MutationOp::AddLan, "{}", None)
        .unwrap();
    let short = ClaimOptions::new().lease(Duration::from_millis(150));
    let Claim::Claimed { .. } = s.claim_next_mutation_with(t.id, &short).unwrap() else {
        panic!("pending");
    };
    assert!(
        s.wait_for_work(Some(t.id), Duration::from_secs(20))
            .unwrap()
    );
}

fn mutation_row(
    s: &dyn TopologyStore,
    id: TopologyId,
    m: topostate::store::MutationId,
) -> Mutation {
    mutation(s, id, m)
}

/// A refused live edit writes nothing, not even the claim's mark as the mutation's editor,
/// so the next try under the same claim is not refused as `EditsCommitted`; and each
/// refusal is the same whichever of the call's steps finds it: a topology or mutation that
/// is not there (also ids and tokens no row can hold), the fence, the edits' own.
pub fn refused_live_edits_write_nothing<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, _) = seeded(s, "lab", TopologyStatus::Active);
    let t = s.get_topology(id).unwrap();
    let other = reach(s, "other", TopologyStatus::Active);
    let seeded = detail(s, t.id);
    let (lan_name, decky_name) = (&seeded.lans[0].name, &seeded.deckies[0].name);
    let m = s
        .enqueue_mutation(t.id, MutationOp::AddLan, "{}", None)
        .unwrap()
        .id;
    let (_, lease) = claim(s, t.id);
    let before = detail(s, t.id);
    let row = mutation_row(s, t.id, m);
    assert_eq!(row.edited_by, None);

    let dup_lan = [ChildEdit::AddLan(NewLan::new(lan_name, "10.200.0.0/24"))];
    let dup_decky = [ChildEdit::AddDecky(NewDecky::new(decky_name))];
    expect_err!(
        s.apply_live(&lease, &dup_lan),
        StoreError::Duplicate { entity: Entity::Lan, name } if name == lan_name
    );
    expect_err!(
        s.apply_live(&lease, &dup_decky),
        StoreError::Duplicate { entity: Entity::Decky, name } if name == decky_name
    );
    let at = |topology: TopologyId, mutation: MutationId, token: u64| {
        Lease::from_parts(mutation, topology, token)
    };
    let far = u64::MAX;
    for (forged, entity, what) in [
        (
            at(TopologyId::new(far), m, lease.token()),
            Entity::Topology,
            "a topology id past every key",
        ),
        (
            at(TopologyId::new(i64::MAX.unsigned_abs()), m, lease.token()),
            Entity::Topology,
            "a missing topology",
        ),
        (
            at(t.id, MutationId::new(far), lease.token()),
            Entity::Mutation,
            "a mutation id past every key",
        ),
        (
            at(other.id, m, lease.token()),
            Entity::Mutation,
            "a mutation of another topology",
        ),
    ] {
        let e = s.apply_live(&forged, &dup_lan).unwrap_err();
        assert!(
            matches!(e, StoreError::NotFound { entity: found, .. } if found == entity),
            "{what}: {e:?}"
        );
    }
    for token in [far, lease.token() + 1] {
        let e = s.apply_live(&at(t.id, m, token), &dup_lan).unwrap_err();
        assert!(lease_lost(&e, lease.token()), "token {token}: {e:?}");
    }
    assert_eq!(detail(s, t.id), before, "a refused live edit wrote");
    assert_eq!(mutation_row(s, t.id, m), row, "a refused live edit wrote");

    // The claim may still edit, once: then its edits are committed under it.
    let lan = [ChildEdit::AddLan(NewLan::new("live", "10.203.0.0/24"))];
    s.apply_live(&lease, &lan).unwrap();
    assert_eq!(mutation_row(s, t.id, m).edited_by, Some(lease.token()));
    s.apply_live(
        &lease,
        &[ChildEdit::AddLan(NewLan::new("more", "10.4.0.0/24"))],
    )
    .unwrap();
    s.mark_mutation_applied(lease).unwrap();
}

/// A bad lease or holder ranks below the topology's refusals: a claim on a missing
/// topology is `NotFound`, on one not live `NotEditable`; and it changes nothing.
pub fn bad_claim_options_rank_below_the_topology<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let pending = reach(s, "pending", TopologyStatus::Pending);
    let live = reach(s, "live", TopologyStatus::Active);
    let m = s
        .enqueue_mutation(live.id, MutationOp::AddLan, "{}", None)
        .unwrap()
        .id;
    for bad in [
        ClaimOptions::new().lease(Duration::ZERO),
        ClaimOptions::new().holder("nul\0"),
    ] {
        for missing in [
            TopologyId::new(u64::MAX),
            TopologyId::new(i64::MAX.unsigned_abs()),
        ] {
            expect_err!(
                s.claim_next_mutation_with(missing, &bad),
                StoreError::NotFound {
                    entity: Entity::Topology,
                    ..
                }
            );
        }
        expect_err!(
            s.claim_next_mutation_with(pending.id, &bad),
            StoreError::NotEditable(n) if n.status == TopologyStatus::Pending
        );
        expect_err!(
            s.claim_next_mutation_with(live.id, &bad),
            StoreError::Invalid { .. }
        );
        assert_eq!(mutation_row(s, live.id, m).state, MutationState::Pending);
    }
}
