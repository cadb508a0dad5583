//! Concurrency: real threads, each on its own handle, racing on one topology. Every loop
//! is bounded in count and in time; each check prints what it saw.

use crate::pages::ListAll;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;

use topostate::store::{ChildEdit, Claim, NewLan, Precondition, StoreError, TopologyStore};
use topostate::{MutationOp, MutationState, TopologyStatus};

use super::{Harness, assert_log_legal, deadline, detail, reach, setup, version};

/// Runs `threads` threads, each on its own handle and all released at once, each making
/// `attempts` calls `attempt(store, round, thread, i)`; then more rounds, up to 10, only
/// while no outcome is `failed` yet (a race that never overlapped proves nothing). Returns
/// every outcome and the number of rounds run.
fn race_rounds<H: Harness, T: Send>(
    h: &H,
    threads: usize,
    attempts: usize,
    attempt: impl Fn(&dyn TopologyStore, usize, usize, usize) -> T + Sync,
    failed: impl Fn(&T) -> bool,
) -> (Vec<T>, usize) {
    const MAX_ROUNDS: usize = 10;
    let mut outcomes = Vec::new();
    let mut rounds = 0;
    while rounds < MAX_ROUNDS {
        rounds += 1;
        let barrier = Barrier::new(threads);
        outcomes.extend(thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let (barrier, attempt) = (&barrier, &attempt);
                    scope.spawn(move || {
                        let store = h.handle();
                        barrier.wait();
                        (0..attempts)
                            .map(|i| attempt(&*store, rounds, t, i))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect::<Vec<_>>()
        }));
        if outcomes.iter().any(&failed) {
            break;
        }
    }
    (outcomes, rounds)
}

/// No lost update: N threads each read the version and write with it. Afterwards the
/// version is 1 + the successes, every success's row exists with the version it reported
/// and every failure is a conflict whose `current` is above its `expected`.
pub fn race_no_lost_update<H: Harness>() {
    const THREADS: usize = 8;
    const ATTEMPTS: usize = 50;
    let (h, s) = setup::<H>();
    let id = s.create_topology("race").unwrap().id;
    let (outcomes, rounds) = race_rounds(
        &h,
        THREADS,
        ATTEMPTS,
        |store, round, t, i| {
            let seen = store.get_topology(id).unwrap().version;
            // A slow client: let the others write in between.
            thread::yield_now();
            let name = format!("r{round}-t{t}-{i}");
            let lan = NewLan::new(name.clone(), "10.0.0.0/24");
            (name, seen, store.add_lan(id, lan, Some(seen)))
        },
        |(_, _, r)| r.is_err(),
    );

    let mut successes = Vec::new();
    let mut conflicts = 0;
    for (name, seen, outcome) in outcomes {
        match outcome {
            Ok(edited) => {
                assert_eq!(edited.version, seen + 1, "{name}: not a single bump");
                successes.push((name, edited.id, edited.version));
            }
            Err(StoreError::VersionConflict(c)) => {
                assert_eq!(c.expected, seen);
                assert!(
                    c.current > c.expected,
                    "{name}: conflict without a newer version: {c:?}"
                );
                conflicts += 1;
            }
            Err(other) => panic!("{name}: unexpected error {other:?}"),
        }
    }
    let attempts = rounds * THREADS * ATTEMPTS;
    println!(
        "no lost update: {THREADS} threads, {attempts} attempts in {rounds} round(s), {} successes, {conflicts} conflicts",
        successes.len()
    );
    assert_eq!(successes.len() + conflicts, attempts);
    assert!(!successes.is_empty());
    let final_version = version(&*s, id);
    assert_eq!(
        final_version,
        1 + successes.len() as u64,
        "an update was lost"
    );
    // Each success produced a distinct version: no two writers bumped from the same one.
    let versions: BTreeSet<u64> = successes.iter().map(|(_, _, v)| *v).collect();
    assert_eq!(versions, (2..=final_version).collect());
    let lans = detail(&*s, id).lans;
    assert_eq!(lans.len(), successes.len());
    for (name, lan, _) in &successes {
        assert!(
            lans.iter().any(|l| l.id == *lan && l.name == *name),
            "{name}: a successful write's row is missing"
        );
    }
}

/// No lost update through the queue: versioned enqueues racing on one live topology.
pub fn race_enqueue_no_lost_update<H: Harness>() {
    const THREADS: usize = 4;
    const ATTEMPTS: usize = 25;
    let (h, s) = setup::<H>();
    let t = reach(&*s, "race", TopologyStatus::Active);
    let (outcomes, rounds) = race_rounds(
        &h,
        THREADS,
        ATTEMPTS,
        |store, _, _, _| {
            let seen = store.get_topology(t.id).unwrap().version;
            thread::yield_now();
            let r = store.enqueue_mutation(t.id, MutationOp::AddLan, "{}", Some(seen));
            (seen, r)
        },
        |(_, r)| r.is_err(),
    );
    let mut queued = BTreeSet::new();
    let mut conflicts = 0;
    for (seen, outcome) in outcomes {
        match outcome {
            Ok(edited) => {
                assert_eq!(edited.version, seen + 1);
                queued.insert(edited.id);
            }
            Err(StoreError::VersionConflict(c)) => {
                assert!(c.current > c.expected && c.expected == seen, "{c:?}");
                conflicts += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    println!(
        "enqueue race: {THREADS} threads, {} attempts in {rounds} round(s), {} queued, {conflicts} conflicts",
        rounds * THREADS * ATTEMPTS,
        queued.len()
    );
    assert_eq!(version(&*s, t.id), t.version + queued.len() as u64);
    let stored: BTreeSet<_> = s
        .all_mutations(t.id, Some(MutationState::Pending))
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(stored, queued);
}

/// Racing transitions from one state: exactly one wins; with a believed status the others
/// get `StaleStatus`, without one `IllegalTransition` (never a recorded self-loop); the log
/// stays a legal path.
pub fn race_transitions_from_one_state<H: Harness>() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 10;
    let (h, s) = setup::<H>();
    let (mut stale, mut illegal) = (0, 0);
    for round in 0..ROUNDS {
        for believe in [true, false] {
            let t = reach(&*s, &format!("r{round}-{believe}"), TopologyStatus::Active);
            let barrier = Barrier::new(THREADS);
            let outcomes: Vec<_> = thread::scope(|scope| {
                let workers: Vec<_> = (0..THREADS)
                    .map(|i| {
                        let (h, barrier) = (&h, &barrier);
                        scope.spawn(move || {
                            let store = h.handle();
                            let precondition = if believe {
                                Precondition::status(TopologyStatus::Active)
                            } else {
                                Precondition::none()
                            };
                            let reason = format!("thread {i}");
                            barrier.wait();
                            let r = store.transition_status(
                                t.id,
                                TopologyStatus::Degraded,
                                Some(&reason),
                                precondition,
                            );
                            (reason, r)
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).collect()
            });
            let mut winners = Vec::new();
            for (reason, outcome) in outcomes {
                match outcome {
                    Ok(done) => winners.push((reason, done)),
                    Err(StoreError::StaleStatus { expected, found }) if believe => {
                        assert_eq!(
                            (expected, found),
                            (TopologyStatus::Active, TopologyStatus::Degraded)
                        );
                        stale += 1;
                    }
                    Err(StoreError::IllegalTransition { from, to }) if !believe => {
                        assert_eq!(
                            (from, to),
                            (TopologyStatus::Degraded, TopologyStatus::Degraded)
                        );
                        illegal += 1;
                    }
                    Err(other) => panic!("unexpected error {other:?}"),
                }
            }
            assert_eq!(winners.len(), 1, "not exactly one winner");
            let (reason, done) = &winners[0];
            assert_eq!(done.event.from, TopologyStatus::Active);
            let stored = s.get_topology(t.id).unwrap();
            assert_eq!(stored.reason.as_deref(), Some(reason.as_str()));
            let events = assert_log_legal(&*s, t.id);
            assert_eq!(events.len(), 3);
        }
    }
    println!(
        "racing transitions: {} rounds x {THREADS} threads, one winner each; {stale} stale, {illegal} illegal",
        ROUNDS * 2
    );
}

/// A deploy completion (`deploying → active | failed | degraded`) racing a teardown
/// (`deploying → tearing_down`), both believing `deploying`: exactly one is recorded, the
/// loser gets `StaleStatus` naming what the winner left, and the log is exactly the
/// winner's edge.
pub fn race_deploy_completion_vs_teardown<H: Harness>() {
    use TopologyStatus::*;
    const ROUNDS: usize = 50;
    let (h, s) = setup::<H>();
    let (mut deploy_wins, mut teardown_wins) = (0, 0);
    for round in 0..ROUNDS {
        let completion = [Active, Failed, Degraded][round % 3];
        let t = reach(&*s, &format!("round-{round}"), Deploying);
        let barrier = Barrier::new(2);
        let deploy = || {
            let store = h.handle();
            barrier.wait();
            store.transition_status(
                t.id,
                completion,
                Some("deploy finished"),
                Precondition::status(Deploying),
            )
        };
        let teardown = || {
            let store = h.handle();
            barrier.wait();
            store.transition_status(t.id, TearingDown, None, Precondition::status(Deploying))
        };
        // Alternate which side starts first.
        let (a, b) = thread::scope(|scope| {
            if round % 2 == 0 {
                let a = scope.spawn(deploy);
                let b = scope.spawn(teardown);
                (a.join().unwrap(), b.join().unwrap())
            } else {
                let b = scope.spawn(teardown);
                let a = scope.spawn(deploy);
                (a.join().unwrap(), b.join().unwrap())
            }
        });
        let winner = match (a, b) {
            (Ok(_), Err(StoreError::StaleStatus { expected, found })) => {
                assert_eq!((expected, found), (Deploying, completion));
                deploy_wins += 1;
                completion
            }
            (Err(StoreError::StaleStatus { expected, found }), Ok(_)) => {
                assert_eq!((expected, found), (Deploying, TearingDown));
                teardown_wins += 1;
                TearingDown
            }
            other => panic!("round {round}: not exactly one winner: {other:?}"),
        };
        let events = assert_log_legal(&*s, t.id);
        let edges: Vec<_> = events.iter().rev().map(|e| (e.from, e.to)).collect();
        assert_eq!(edges, vec![(Pending, Deploying), (Deploying, winner)]);
    }
    println!(
        "deploy vs teardown: {ROUNDS} rounds, deploy completion won {deploy_wins}, teardown won {teardown_wins}"
    );
}

/// A child edit racing a deploy lands before the status leaves `pending` or fails
/// `NotEditable`: no add succeeds once the deploy is recorded, and every LAN that exists
/// is one whose add succeeded and was already there when the deployer looked right after
/// its transition.
pub fn race_child_edit_vs_deploy<H: Harness>() {
    const ROUNDS: usize = 20;
    const EDITORS: usize = 3;
    const MAX_TRIES: usize = 20_000;
    let (h, s) = setup::<H>();
    let (mut added, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        let id = s.create_topology(&format!("round-{round}")).unwrap().id;
        let progress = AtomicUsize::new(0);
        let deployed = AtomicBool::new(false);
        let (logs, (deploy, seen_after)) = thread::scope(|scope| {
            let editors: Vec<_> = (0..EDITORS)
                .map(|e| {
                    let (h, progress, deployed) = (&h, &progress, &deployed);
                    scope.spawn(move || {
                        let store = h.handle();
                        let until = deadline(10);
                        let mut log = Vec::new();
                        let mut refusals = 0;
                        for i in 0..MAX_TRIES {
                            let after_deploy = deployed.load(Ordering::SeqCst);
                            let lan = NewLan::new(format!("e{e}-{i}"), "10.0.0.0/24");
                            let r = store.add_lan(id, lan, None);
                            refusals += usize::from(r.is_err());
                            log.push((after_deploy, r));
                            progress.fetch_add(1, Ordering::SeqCst);
                            // A few tries after the first refusal prove it stays refused.
                            if refusals >= 20 || std::time::Instant::now() > until {
                                break;
                            }
                        }
                        log
                    })
                })
                .collect();
            let deployer = scope.spawn(|| {
                let store = h.handle();
                let until = deadline(10);
                // Let the editors get going (bounded).
                while progress.load(Ordering::SeqCst) < 3 + round
                    && std::time::Instant::now() < until
                {
                    thread::yield_now();
                }
                let r = store.transition_status(
                    id,
                    TopologyStatus::Deploying,
                    None,
                    Precondition::status(TopologyStatus::Pending),
                );
                deployed.store(true, Ordering::SeqCst);
                let seen: BTreeSet<_> = store
                    .topology_detail(id)
                    .unwrap()
                    .lans
                    .into_iter()
                    .map(|l| l.id)
                    .collect();
                (r, seen)
            });
            let logs: Vec<_> = editors.into_iter().map(|e| e.join().unwrap()).collect();
            (logs, deployer.join().unwrap())
        });
        deploy.unwrap();
        let mut ok_ids = BTreeSet::new();
        for log in &logs {
            let mut seen_refusal = false;
            for (i, (after_deploy, r)) in log.iter().enumerate() {
                match r {
                    Ok(edited) => {
                        assert!(
                            !after_deploy,
                            "round {round}: add {i} succeeded after the deploy returned"
                        );
                        assert!(
                            !seen_refusal,
                            "round {round}: add {i} succeeded after a refusal"
                        );
                        assert_eq!(edited.version, 1);
                        ok_ids.insert(edited.id);
                        added += 1;
                    }
                    Err(StoreError::NotEditable(n)) => {
                        assert_eq!(n.status, TopologyStatus::Deploying);
                        seen_refusal = true;
                        refused += 1;
                    }
                    Err(other) => panic!("round {round}: unexpected error {other:?}"),
                }
            }
            assert!(
                seen_refusal,
                "round {round}: an editor never saw the deploy"
            );
        }
        let lans: BTreeSet<_> = detail(&*s, id).lans.into_iter().map(|l| l.id).collect();
        assert_eq!(
            lans, ok_ids,
            "round {round}: stored LANs differ from the accepted adds"
        );
        assert_eq!(
            lans, seen_after,
            "round {round}: a LAN was written after the status left pending"
        );
        assert_log_legal(&*s, id);
    }
    println!(
        "child edit vs deploy: {ROUNDS} rounds x {EDITORS} editors, {added} adds landed while pending, {refused} refused after"
    );
}

/// Four appliers draining a queue of 60, each applying a live edit with its claim: every mutation is claimed exactly once, oldest
/// first, never two `applying` at once.
pub fn race_claims_are_serial_and_exactly_once<H: Harness>() {
    const THREADS: usize = 4;
    const QUEUED: usize = 60;
    let (h, s) = setup::<H>();
    let t = reach(&*s, "queue", TopologyStatus::Active);
    let ids: Vec<_> = (0..QUEUED)
        .map(|i| {
            s.enqueue_mutation(t.id, MutationOp::AddLan, &format!("{{\"n\":{i}}}"), None)
                .unwrap()
                .id
        })
        .collect();
    let in_flight = AtomicUsize::new(0);
    let order = Mutex::new(Vec::new());
    let barrier = Barrier::new(THREADS);
    let per_thread: Vec<(usize, usize)> = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (h, in_flight, order, barrier) = (&h, &in_flight, &order, &barrier);
                scope.spawn(move || {
                    let store = h.handle();
                    let until = deadline(20);
                    let (mut claimed, mut busy) = (0, 0);
                    barrier.wait();
                    while std::time::Instant::now() < until {
                        match store.claim_next_mutation(t.id).unwrap() {
                            Claim::Claimed {
                                mutation,
                                lease: claim,
                            } => {
                                let before = in_flight.fetch_add(1, Ordering::SeqCst);
                                assert_eq!(before, 0, "two mutations applying at once");
                                assert_eq!(mutation.state, MutationState::Applying);
                                let applying: Vec<_> = store
                                    .all_mutations(t.id, Some(MutationState::Applying))
                                    .unwrap()
                                    .into_iter()
                                    .map(|m| m.id)
                                    .collect();
                                assert_eq!(applying, vec![mutation.id]);
                                order.lock().unwrap().push(mutation.id);
                                // Work while holding the claim, giving the others a chance
                                // to (wrongly) claim too.
                                thread::yield_now();
                                let lan = NewLan::new(format!("m{}", mutation.id), "10.0.0.0/24");
                                store.apply_live(&claim, &[ChildEdit::AddLan(lan)]).unwrap();
                                let applying = store
                                    .all_mutations(t.id, Some(MutationState::Applying))
                                    .unwrap();
                                assert_eq!(applying.len(), 1, "two mutations applying at once");
                                in_flight.fetch_sub(1, Ordering::SeqCst);
                                store.mark_mutation_applied(claim).unwrap();
                                claimed += 1;
                                // Let the others race for the next one.
                                thread::yield_now();
                            }
                            Claim::Busy { .. } => {
                                busy += 1;
                                thread::yield_now();
                            }
                            Claim::Empty => break,
                        }
                    }
                    (claimed, busy)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let order = order.into_inner().unwrap();
    let busy: usize = per_thread.iter().map(|(_, b)| b).sum();
    println!(
        "claims: {QUEUED} queued, claimed per thread {:?}, {busy} busy answers",
        per_thread.iter().map(|(c, _)| c).collect::<Vec<_>>()
    );
    assert_eq!(
        order, ids,
        "not every mutation claimed exactly once, oldest first"
    );
    let states: Vec<_> = s
        .all_mutations(t.id, None)
        .unwrap()
        .into_iter()
        .map(|m| m.state)
        .collect();
    assert_eq!(states, vec![MutationState::Applied; QUEUED]);
    assert_eq!(s.claim_next_mutation(t.id).unwrap(), Claim::Empty);
    assert_eq!(detail(&*s, t.id).lans.len(), QUEUED, "a live edit was lost");
    assert_eq!(
        version(&*s, t.id),
        t.version,
        "live edits bumped the version"
    );
}
