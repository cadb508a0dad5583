//! Limits: versions at and around the shared maximum on every layer and backend, names
//! and free text at their byte limits (multi-byte characters at the boundary included),
//! and a topology with 10,000 children. Every case ends in a clear error or correct
//! behaviour: never a wrap, a float, a panic or a partial write.

mod pages;

use pages::ListAll;

use std::time::Instant;

use topostate::store::{
    ChildEdit, DeckyPatch, DeckyRuntime, Entity, LanPatch, Lease, MAX_NAME_LEN, MAX_TEXT_LEN,
    MemoryStore, NewDecky, NewEdge, NewLan, Precondition, StoreError, TopologyStore,
};
use topostate::version::bump;
use topostate::{
    InvalidVersion, MAX_VERSION, MutationOp, TopologyId, TopologyStatus, VersionConflict,
    VersionError, VersionOverflow, Versioned, check_and_bump,
};

/// A backend under test, with a way to force a stored version behind the store's back.
struct Backend {
    name: &'static str,
    store: Box<dyn TopologyStore>,
    force: Box<dyn Fn(TopologyId, u64)>,
    /// Keeps the SQLite file alive.
    _dir: Option<tempfile::TempDir>,
}

fn backends() -> Vec<Backend> {
    let memory = MemoryStore::new();
    let handle = memory.clone();
    #[allow(unused_mut)]
    let mut all = vec![Backend {
        name: "memory",
        store: Box::new(memory),
        force: Box::new(move |id, v| handle.debug_set_version(id, v).unwrap()),
        _dir: None,
    }];
    #[cfg(feature = "sqlite")]
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("limits.db");
        let store = topostate::store::SqliteStore::open(&path).unwrap();
        all.push(Backend {
            name: "sqlite",
            store: Box::new(store),
            force: Box::new(move |id, v| {
                let conn = rusqlite::Connection::open(&path).unwrap();
                let changed = conn
                    .execute(
                        "UPDATE topologies SET version = ?1 WHERE id = ?2",
                        [i64::try_from(v).unwrap(), i64::try_from(id.get()).unwrap()],
                    )
                    .unwrap();
                assert_eq!(changed, 1);
            }),
            _dir: Some(dir),
        });
    }
    all
}

fn is_overflow(e: &StoreError) -> bool {
    matches!(e, StoreError::VersionOverflow(VersionOverflow { current }) if *current == MAX_VERSION)
}

// ---- versions -------------------------------------------------------------------------

#[test]
fn core_versions_at_the_maximum() {
    assert_eq!(MAX_VERSION, i64::MAX as u64);
    assert_eq!(i64::try_from(MAX_VERSION), Ok(i64::MAX));
    // bump
    assert_eq!(bump(MAX_VERSION - 2), Ok(MAX_VERSION - 1));
    assert_eq!(bump(MAX_VERSION - 1), Ok(MAX_VERSION));
    for v in [MAX_VERSION, MAX_VERSION + 1, u64::MAX] {
        assert_eq!(bump(v), Err(VersionOverflow { current: v }));
    }
    // check_and_bump: the conflict first, then the overflow; `None` never bumps
    assert_eq!(
        check_and_bump(MAX_VERSION - 1, Some(MAX_VERSION - 1)),
        Ok(MAX_VERSION)
    );
    assert_eq!(
        check_and_bump(MAX_VERSION, Some(MAX_VERSION)),
        Err(VersionError::Overflow(VersionOverflow {
            current: MAX_VERSION
        }))
    );
    assert_eq!(
        check_and_bump(MAX_VERSION, Some(MAX_VERSION - 1)),
        Err(VersionError::Conflict(VersionConflict {
            current: MAX_VERSION,
            expected: MAX_VERSION - 1
        }))
    );
    assert_eq!(
        check_and_bump(MAX_VERSION, Some(u64::MAX)),
        Err(VersionError::Conflict(VersionConflict {
            current: MAX_VERSION,
            expected: u64::MAX
        }))
    );
    assert_eq!(check_and_bump(MAX_VERSION, None), Ok(MAX_VERSION));
    // Versioned
    let v = Versioned::from_parts("row", MAX_VERSION).unwrap();
    assert_eq!(v.version(), MAX_VERSION);
    for bad in [0, MAX_VERSION + 1, u64::MAX] {
        assert_eq!(
            Versioned::from_parts("row", bad).unwrap_err(),
            InvalidVersion { version: bad }
        );
    }
    let mut near = Versioned::from_parts((), MAX_VERSION - 1).unwrap();
    assert_eq!(near.check_and_bump(Some(MAX_VERSION - 1)), Ok(MAX_VERSION));
    assert!(matches!(
        near.check_and_bump(Some(MAX_VERSION)),
        Err(VersionError::Overflow(_))
    ));
    assert_eq!(near.version(), MAX_VERSION, "unchanged on error");
    near.observe(u64::MAX);
    assert_eq!(near.version(), MAX_VERSION, "observe clamps");
    near.observe(0);
    assert_eq!(near.version(), 1, "observe clamps");
}

#[test]
fn store_versions_at_the_maximum() {
    for b in backends() {
        let s = &*b.store;
        let lab = s.create_topology("lab").unwrap();
        let other = s.create_topology("other").unwrap();
        (b.force)(lab.id, MAX_VERSION - 2);
        // MAX-2 → MAX-1 → MAX, exactly.
        let lan = s
            .add_lan(lab.id, NewLan::new("a", "s"), Some(MAX_VERSION - 2))
            .unwrap();
        assert_eq!(lan.version, MAX_VERSION - 1, "{}", b.name);
        let decky = s
            .add_decky(lab.id, NewDecky::new("d"), Some(MAX_VERSION - 1))
            .unwrap();
        assert_eq!(decky.version, MAX_VERSION, "{}", b.name);
        let before = s.topology_detail(lab.id).unwrap();
        // At MAX: every bumping write refuses with VersionOverflow and writes nothing.
        let refused = [
            s.add_lan(lab.id, NewLan::new("b", "s"), Some(MAX_VERSION))
                .map(|_| ()),
            s.edit(
                lab.id,
                Some(MAX_VERSION),
                &[
                    ChildEdit::AddLan(NewLan::new("b", "s")),
                    ChildEdit::AddEdge(NewEdge::new(decky.id, lan.id)),
                ],
            )
            .map(|_| ()),
            s.update_lan(
                lab.id,
                lan.id,
                LanPatch::new().with_subnet("t"),
                Some(MAX_VERSION),
            )
            .map(|_| ()),
            s.delete_decky(lab.id, decky.id, Some(MAX_VERSION))
                .map(|_| ()),
        ];
        for r in refused {
            let e = r.unwrap_err();
            assert!(is_overflow(&e), "{}: {e:?}", b.name);
            assert!(e.to_string().contains(&MAX_VERSION.to_string()), "{e}");
        }
        assert_eq!(s.topology_detail(lab.id).unwrap(), before, "{}", b.name);
        // A stale or impossible expectation is a conflict naming both numbers, not a wrap.
        for expected in [MAX_VERSION - 1, u64::MAX, MAX_VERSION + 1, 0] {
            let e = s
                .add_lan(lab.id, NewLan::new("b", "s"), Some(expected))
                .unwrap_err();
            assert!(
                matches!(e, StoreError::VersionConflict(VersionConflict { current, expected: x })
                    if current == MAX_VERSION && x == expected),
                "{}: {expected}: {e:?}",
                b.name
            );
        }
        // Writes that bump nothing still work at MAX.
        assert_eq!(
            s.update_decky(lab.id, decky.id, DeckyPatch::default(), Some(MAX_VERSION))
                .unwrap()
                .version,
            MAX_VERSION
        );
        assert_eq!(
            s.add_lan(lab.id, NewLan::new("b", "s"), None)
                .unwrap()
                .version,
            MAX_VERSION
        );
        // Transitions check the version, never bump it.
        for to in [TopologyStatus::Deploying, TopologyStatus::Active] {
            let t = s
                .transition_status(
                    lab.id,
                    to,
                    None,
                    Precondition::none().and_version(MAX_VERSION),
                )
                .unwrap();
            assert_eq!(t.topology.version, MAX_VERSION);
        }
        let e = s
            .transition_status(
                lab.id,
                TopologyStatus::Degraded,
                None,
                Precondition::none().and_version(u64::MAX),
            )
            .unwrap_err();
        assert!(e.is_conflict(), "{}: {e:?}", b.name);
        // Enqueue at MAX: overflow, nothing queued; unversioned still queues.
        let e = s
            .enqueue_mutation(lab.id, MutationOp::AddLan, "{}", Some(MAX_VERSION))
            .unwrap_err();
        assert!(is_overflow(&e), "{}: {e:?}", b.name);
        assert!(s.all_mutations(lab.id, None).unwrap().is_empty());
        s.enqueue_mutation(lab.id, MutationOp::AddLan, "{}", None)
            .unwrap();
        // MAX-1 enqueue bumps to MAX.
        s.transition_status(
            other.id,
            TopologyStatus::Deploying,
            None,
            Precondition::none(),
        )
        .unwrap();
        s.transition_status(other.id, TopologyStatus::Active, None, Precondition::none())
            .unwrap();
        (b.force)(other.id, MAX_VERSION - 1);
        let queued = s
            .enqueue_mutation(other.id, MutationOp::AddLan, "{}", Some(MAX_VERSION - 1))
            .unwrap();
        assert_eq!(queued.version, MAX_VERSION);
        // The stored value reads back as exactly MAX (an integer, not a rounded float).
        let rec = s.get_topology(lab.id).unwrap();
        assert_eq!(rec.version, MAX_VERSION, "{}", b.name);
        assert_eq!(rec.clone().into_versioned().unwrap().version(), MAX_VERSION);
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "the round trip through a float is what is being shown to lose"
        )]
        let through_float = MAX_VERSION as f64 as u64;
        assert_ne!(through_float, MAX_VERSION, "a float would round");
        assert_eq!(
            s.all_topologies(None)
                .unwrap()
                .iter()
                .map(|r| r.version)
                .collect::<Vec<_>>(),
            vec![MAX_VERSION, MAX_VERSION],
            "{}",
            b.name
        );
        // Deleting at MAX only checks the version.
        s.transition_status(
            lab.id,
            TopologyStatus::TearingDown,
            None,
            Precondition::none(),
        )
        .unwrap();
        s.transition_status(lab.id, TopologyStatus::TornDown, None, Precondition::none())
            .unwrap();
        assert!(
            s.delete_topology(lab.id, Some(MAX_VERSION - 1))
                .unwrap_err()
                .is_conflict()
        );
        s.delete_topology(lab.id, Some(MAX_VERSION)).unwrap();
    }
}

#[test]
fn memory_store_refuses_forcing_a_version_out_of_range() {
    let s = MemoryStore::new();
    let lab = s.create_topology("lab").unwrap();
    for bad in [0, MAX_VERSION + 1, u64::MAX] {
        let e = s.debug_set_version(lab.id, bad).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Invalid {
                    field: "version",
                    ..
                }
            ),
            "{e:?}"
        );
    }
    s.debug_set_version(lab.id, MAX_VERSION).unwrap();
    assert_eq!(s.get_topology(lab.id).unwrap().version, MAX_VERSION);
}

// ---- names and free text ------------------------------------------------------------------

/// Names of exactly `MAX_NAME_LEN` bytes (ASCII, 2-byte, 3-byte and 4-byte characters at
/// the boundary) and one byte more.
fn names_at_the_limit() -> Vec<(String, bool)> {
    let mut names = vec![
        ("n".repeat(MAX_NAME_LEN), true),
        ("n".repeat(MAX_NAME_LEN + 1), false),
        // 127 × 'é' (2 bytes) + 'a' = 255 bytes; 128 × 'é' = 256 bytes.
        (format!("{}a", "é".repeat(127)), true),
        ("é".repeat(128), false),
        // 85 × '€' (3 bytes) = 255; one more ASCII byte = 256.
        ("€".repeat(85), true),
        (format!("{}a", "€".repeat(85)), false),
        // 63 × '🦀' (4 bytes) = 252 + "abc" = 255; a 64th crab = 256.
        (format!("{}abc", "🦀".repeat(63)), true),
        ("🦀".repeat(64), false),
    ];
    // Only 128 characters, but 256 bytes: the limit is in bytes.
    names.push(("é".repeat(128), false));
    for (name, ok) in &names {
        assert_eq!(name.len() <= MAX_NAME_LEN, *ok, "{name}");
    }
    names
}

fn assert_invalid(r: Result<impl std::fmt::Debug, StoreError>, field: &str, backend: &str) {
    match r {
        Err(StoreError::Invalid { field: f, problem }) => {
            assert_eq!(f, field, "{backend}");
            assert!(problem.len() < 200, "{backend}: {problem}");
        }
        other => panic!("{backend}: expected Invalid {field}, got {other:?}"),
    }
}

#[test]
fn names_at_the_byte_limit() {
    for b in backends() {
        let s = &*b.store;
        let lab = s.create_topology("lab").unwrap();
        let (mut lan_ok, mut decky_ok) = (0, 0);
        for (i, (name, ok)) in names_at_the_limit().into_iter().enumerate() {
            let before = s.topology_detail(lab.id).unwrap();
            let topology = s.create_topology(&name);
            let lan = s.add_lan(lab.id, NewLan::new(name.clone(), "s"), None);
            let decky = s.add_decky(lab.id, NewDecky::new(name.clone()), None);
            if ok {
                assert_eq!(topology.unwrap().name, name, "{}", b.name);
                let lan = lan.unwrap();
                decky.unwrap();
                // Renaming to it again is a no-op; renaming to a free name and back works.
                s.update_lan(
                    lab.id,
                    lan.id,
                    LanPatch::new().with_name(format!("tmp{i}")),
                    None,
                )
                .unwrap();
                s.update_lan(
                    lab.id,
                    lan.id,
                    LanPatch::new().with_name(name.clone()),
                    None,
                )
                .unwrap();
                lan_ok += 1;
                decky_ok += 1;
            } else {
                assert_invalid(topology, "topology name", b.name);
                assert_invalid(lan, "lan name", b.name);
                assert_invalid(decky, "decky name", b.name);
                // A rename to it is refused too, and nothing changes.
                let some_lan = before.lans.first().map(|l| l.id);
                if let Some(id) = some_lan {
                    assert_invalid(
                        s.update_lan(
                            lab.id,
                            id,
                            LanPatch::new().with_name(name.clone()),
                            Some(before.topology.version),
                        ),
                        "lan name",
                        b.name,
                    );
                }
                assert_eq!(s.topology_detail(lab.id).unwrap(), before, "{}", b.name);
            }
        }
        // Names round-trip byte for byte.
        let detail = s.topology_detail(lab.id).unwrap();
        assert_eq!(detail.lans.len(), lan_ok, "{}", b.name);
        assert_eq!(detail.deckies.len(), decky_ok, "{}", b.name);
        let stored: Vec<&str> = detail.lans.iter().map(|l| l.name.as_str()).collect();
        for (name, ok) in names_at_the_limit() {
            assert_eq!(stored.contains(&name.as_str()), ok, "{}", b.name);
        }
    }
}

#[test]
fn free_text_at_the_byte_limit() {
    let at = "r".repeat(MAX_TEXT_LEN);
    let over = "r".repeat(MAX_TEXT_LEN + 1);
    // Multi-byte at the boundary: MAX_TEXT_LEN is even, so ('é' × MAX/2) fits exactly.
    let wide = "é".repeat(MAX_TEXT_LEN / 2);
    let wide_over = format!("{wide}a");
    for b in backends() {
        let s = &*b.store;
        let lab = s.create_topology("lab").unwrap();
        // Transition reasons: over the limit is refused, nothing is written.
        assert_invalid(
            s.transition_status(
                lab.id,
                TopologyStatus::Deploying,
                Some(&over),
                Precondition::none(),
            ),
            "reason",
            b.name,
        );
        assert_invalid(
            s.transition_status(
                lab.id,
                TopologyStatus::Deploying,
                Some(&wide_over),
                Precondition::none(),
            ),
            "reason",
            b.name,
        );
        assert_eq!(
            s.get_topology(lab.id).unwrap().status,
            TopologyStatus::Pending
        );
        assert!(s.all_events(lab.id).unwrap().is_empty());
        // Decky config and subnet: at the limit fine, over refused.
        let decky = s
            .add_decky(
                lab.id,
                NewDecky::new("d").with_config(wide.clone()),
                Some(1),
            )
            .unwrap();
        assert_eq!(decky.version, 2);
        assert_invalid(
            s.add_decky(
                lab.id,
                NewDecky::new("e").with_config(over.clone()),
                Some(2),
            ),
            "decky config",
            b.name,
        );
        assert_invalid(
            s.add_lan(lab.id, NewLan::new("l", over.clone()), Some(2)),
            "subnet",
            b.name,
        );
        s.add_lan(lab.id, NewLan::new("l", at.clone()), Some(2))
            .unwrap();
        let detail = s.topology_detail(lab.id).unwrap();
        assert_eq!(detail.deckies[0].config.as_deref(), Some(wide.as_str()));
        assert_eq!(detail.lans[0].subnet.len(), MAX_TEXT_LEN);
        assert_eq!(detail.topology.version, 3);
        // Reasons at the limit are kept exactly.
        let t = s
            .transition_status(
                lab.id,
                TopologyStatus::Deploying,
                Some(&wide),
                Precondition::none(),
            )
            .unwrap();
        assert_eq!(t.event.reason.as_deref(), Some(wide.as_str()));
        s.transition_status(lab.id, TopologyStatus::Active, None, Precondition::none())
            .unwrap();
        // Payloads.
        assert_invalid(
            s.enqueue_mutation(lab.id, MutationOp::AddLan, &over, Some(3)),
            "payload",
            b.name,
        );
        assert!(s.all_mutations(lab.id, None).unwrap().is_empty());
        assert_eq!(s.get_topology(lab.id).unwrap().version, 3, "{}", b.name);
        let m = s
            .enqueue_mutation(lab.id, MutationOp::AddLan, &at, Some(3))
            .unwrap();
        assert_eq!(m.version, 4);
        // Failure reasons: over refused and the mutation stays applying; at the limit kept.
        let claim = match s.claim_next_mutation(lab.id).unwrap() {
            topostate::store::Claim::Claimed { lease: claim, .. } => claim,
            other => panic!("{other:?}"),
        };
        assert_invalid(
            s.mark_mutation_failed(Lease::from_parts(claim.id(), lab.id, claim.token()), &over),
            "reason",
            b.name,
        );
        let failed = s.mark_mutation_failed(claim, &at).unwrap();
        assert_eq!(failed.reason.map(|r| r.len()), Some(MAX_TEXT_LEN));
        assert_eq!(failed.payload.len(), MAX_TEXT_LEN);
    }
}

// ---- a big topology ------------------------------------------------------------------------

#[test]
fn ten_thousand_children() {
    const LANS: usize = 2_500;
    const DECKIES: usize = 2_500;
    const BATCH: usize = 500;
    for b in backends() {
        let started = Instant::now();
        let s = &*b.store;
        let bystander = s.create_topology("bystander").unwrap();
        s.add_lan(bystander.id, NewLan::new("keep", "s"), None)
            .unwrap();
        let lab = s.create_topology("big").unwrap();
        let mut version = lab.version;
        let mut add = |edits: Vec<ChildEdit>| {
            let report = s.edit(lab.id, Some(version), &edits).unwrap();
            assert_eq!(report.version, version + 1, "one bump per batch");
            assert_eq!(report.touched.len(), edits.len());
            version = report.version;
            report.touched
        };
        let mut lans = Vec::new();
        for chunk in (0..LANS).collect::<Vec<_>>().chunks(BATCH) {
            let edits = chunk
                .iter()
                .map(|i| ChildEdit::AddLan(NewLan::new(format!("lan-{i:05}"), "10.0.0.0/8")))
                .collect();
            lans.extend(add(edits).into_iter().map(|t| match t {
                topostate::store::Touched::Lan(id) => id,
                other => panic!("{other:?}"),
            }));
        }
        let mut deckies = Vec::new();
        for chunk in (0..DECKIES).collect::<Vec<_>>().chunks(BATCH) {
            let edits = chunk
                .iter()
                .map(|i| ChildEdit::AddDecky(NewDecky::new(format!("decky-{i:05}"))))
                .collect();
            deckies.extend(add(edits).into_iter().map(|t| match t {
                topostate::store::Touched::Decky(id) => id,
                other => panic!("{other:?}"),
            }));
        }
        // Each decky on two LANs: i and i+1 (mod LANS).
        let pairs: Vec<NewEdge> = (0..DECKIES)
            .flat_map(|i| {
                [
                    NewEdge::new(deckies[i], lans[i % LANS]),
                    NewEdge::new(deckies[i], lans[(i + 1) % LANS]),
                ]
            })
            .collect();
        for chunk in pairs.chunks(BATCH) {
            add(chunk.iter().copied().map(ChildEdit::AddEdge).collect());
        }
        let built = started.elapsed();
        let detail = s.topology_detail(lab.id).unwrap();
        assert_eq!(detail.lans.len(), LANS, "{}", b.name);
        assert_eq!(detail.deckies.len(), DECKIES, "{}", b.name);
        assert_eq!(detail.edges.len(), 2 * DECKIES, "{}", b.name);
        assert_eq!(
            detail.lans.len() + detail.deckies.len() + detail.edges.len(),
            10_000
        );
        assert_eq!(detail.topology.version, version);
        // By name, and edges by id.
        assert!(detail.lans.windows(2).all(|w| w[0].name < w[1].name));
        assert!(detail.deckies.windows(2).all(|w| w[0].name < w[1].name));
        assert!(detail.edges.windows(2).all(|w| w[0].id < w[1].id));
        // A duplicate in the last edit of a big batch refuses the whole batch.
        let mut edits: Vec<ChildEdit> = (0..BATCH)
            .map(|i| ChildEdit::AddLan(NewLan::new(format!("extra-{i}"), "s")))
            .collect();
        edits.push(ChildEdit::AddLan(NewLan::new("lan-00000", "s")));
        assert!(matches!(
            s.edit(lab.id, Some(version), &edits),
            Err(StoreError::Duplicate {
                entity: Entity::Lan,
                ..
            })
        ));
        // Deleting a LAN takes its edges; every decky still has a LAN, so it is allowed.
        s.delete_lan(lab.id, lans[0], Some(version)).unwrap();
        let detail = s.topology_detail(lab.id).unwrap();
        assert_eq!(detail.lans.len(), LANS - 1);
        assert_eq!(detail.edges.len(), 2 * DECKIES - 2);
        // Now decky 0 has only LAN 1: deleting LAN 1 would strand it.
        assert!(matches!(
            s.delete_lan(lab.id, lans[1], None),
            Err(StoreError::LanInUse { decky, .. }) if decky == deckies[0]
        ));
        // Delete cascades, and the bystander is intact.
        s.transition_status(lab.id, TopologyStatus::TornDown, None, Precondition::none())
            .unwrap();
        s.delete_topology(lab.id, None).unwrap();
        assert!(matches!(
            s.topology_detail(lab.id),
            Err(StoreError::NotFound {
                entity: Entity::Topology,
                ..
            })
        ));
        assert!(matches!(
            s.set_lan_network_id(lans[LANS - 1], Some("net")),
            Err(StoreError::NotFound {
                entity: Entity::Lan,
                ..
            })
        ));
        assert!(matches!(
            s.set_decky_runtime(deckies[0], &DeckyRuntime::default()),
            Err(StoreError::NotFound {
                entity: Entity::Decky,
                ..
            })
        ));
        let kept = s.topology_detail(bystander.id).unwrap();
        assert_eq!(kept.lans.len(), 1);
        assert_eq!(s.all_topologies(None).unwrap().len(), 1);
        println!(
            "ten_thousand_children[{}]: built 10,000 children in {built:.1?}, total {:.1?}",
            b.name,
            started.elapsed()
        );
    }
}
