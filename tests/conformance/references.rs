//! Batch-local references: an edit naming the LAN or decky an earlier edit of its batch
//! adds ([`RowRef::Batch`]), and every way such a reference is refused.

use topostate::store::{
    ChildEdit, Claim, DeckyId, DeckyPatch, Entity, LanId, LanPatch, NewDecky, NewEdge, NewLan,
    RefProblem, RowRef, StoreError, TopologyStore, Touched,
};
use topostate::{MutationOp, TopologyId, TopologyStatus};

use super::{Harness, detail, is_not_found, seeded, setup, version};

/// Runs `edits`, expecting it refused with `BadReference` naming `edit`, `field`, `target`
/// and `problem`, and checks nothing was written.
fn refused(
    s: &dyn TopologyStore,
    id: TopologyId,
    edits: &[ChildEdit],
    (edit, field, target, problem): (usize, &str, usize, RefProblem),
) {
    let before = detail(s, id);
    let e = expect_err!(
        s.edit(id, Some(before.topology.version), edits),
        StoreError::BadReference { .. }
    );
    let StoreError::BadReference {
        edit: got_edit,
        field: got_field,
        target: got_target,
        problem: got_problem,
    } = e
    else {
        unreachable!()
    };
    assert_eq!(
        (got_edit, got_field, got_target, got_problem),
        (edit, field, target, problem),
        "{edits:?}"
    );
    assert_eq!(detail(s, id), before, "a refused batch wrote something");
}

/// A canvas save in one call under one expected version: a new LAN, a new decky, the edge
/// between them and one to a stored LAN; later edits update the new rows through their
/// references; the report gives the id each reference became.
pub fn batch_refs_canvas_save<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "canvas", TopologyStatus::Pending);
    let v = version(s, id);

    let report = s
        .edit(
            id,
            Some(v),
            &[
                ChildEdit::AddLan(NewLan::new("dmz", "10.9.0.0/24")),
                ChildEdit::AddDecky(NewDecky::new("mail")),
                ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(1), RowRef::Batch(0))),
                ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(1), rows.lan_b).with_bridge(true)),
                ChildEdit::AddEdge(NewEdge::new(rows.db, RowRef::Batch(0))),
                ChildEdit::UpdateLan(
                    RowRef::Batch(0),
                    LanPatch::new().with_name("dmz-2").with_x(Some(3.5)),
                ),
                ChildEdit::UpdateDecky(RowRef::Batch(1), DeckyPatch::new().with_y(Some(-2.0))),
            ],
        )
        .unwrap();
    assert_eq!(report.version, v + 1, "one bump for the whole save");
    let (Some(lan), Some(decky)) = (report.lan(RowRef::Batch(0)), report.decky(RowRef::Batch(1)))
    else {
        panic!("the report does not name the new rows: {report:?}");
    };
    assert_eq!(report.touched[0], Touched::Lan(lan));
    assert_eq!(report.touched[1], Touched::Decky(decky));
    // The edits naming a new row report the id it got.
    assert_eq!(report.touched[5], Touched::Lan(lan));
    assert_eq!(report.touched[6], Touched::Decky(decky));
    assert_eq!(report.lan(rows.lan_a.into()), Some(rows.lan_a));

    let after = detail(s, id);
    let new_lan = after.lans.iter().find(|l| l.id == lan).unwrap();
    assert_eq!((new_lan.name.as_str(), new_lan.x), ("dmz-2", Some(3.5)));
    let new_decky = after.deckies.iter().find(|d| d.id == decky).unwrap();
    assert_eq!((new_decky.name.as_str(), new_decky.y), ("mail", Some(-2.0)));
    let pairs: Vec<(DeckyId, LanId, bool)> = after
        .edges
        .iter()
        .map(|e| (e.decky, e.lan, e.is_bridge))
        .collect();
    for pair in [
        (decky, lan, false),
        (decky, rows.lan_b, true),
        (rows.db, lan, false),
    ] {
        assert!(pairs.contains(&pair), "{pair:?} missing from {pairs:?}");
    }
    let Touched::Edge(edge) = report.touched[2] else {
        panic!("{report:?}");
    };
    assert!(after.edges.iter().any(|e| e.id == edge && e.lan == lan));

    // A batch may delete what it added.
    let report = s
        .edit(
            id,
            None,
            &[
                ChildEdit::AddDecky(NewDecky::new("tmp")),
                ChildEdit::DeleteDecky(RowRef::Batch(0)),
                ChildEdit::AddDecky(NewDecky::new("tmp")),
            ],
        )
        .unwrap();
    let names: Vec<String> = detail(s, id).deckies.into_iter().map(|d| d.name).collect();
    assert_eq!(names.iter().filter(|n| *n == "tmp").count(), 1, "{names:?}");
    assert_ne!(report.touched[0], report.touched[2]);

    // A live batch (under a claimed mutation) may refer too.
    let (live, rows) = seeded(s, "live", TopologyStatus::Active);
    s.enqueue_mutation(live, MutationOp::AttachDecky, "{}", None)
        .unwrap();
    let Claim::Claimed { lease: claim, .. } = s.claim_next_mutation(live).unwrap() else {
        panic!("nothing to claim");
    };
    let report = s
        .apply_live(
            &claim,
            &[
                ChildEdit::AddDecky(NewDecky::new("files")),
                ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(0), rows.lan_a)),
            ],
        )
        .unwrap();
    let files = report.decky(RowRef::Batch(0)).unwrap();
    assert!(
        detail(s, live)
            .edges
            .iter()
            .any(|e| (e.decky, e.lan) == (files, rows.lan_a))
    );
}

/// A reference to the edit itself or a later one, past the batch, or to an edit that adds
/// no row of the kind: the batch is refused naming the edit and the reference, nothing
/// written, on `edit` and on the single-edit path.
pub fn batch_refs_refused<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "refused", TopologyStatus::Pending);
    let add_lan = || ChildEdit::AddLan(NewLan::new("new", "10.8.0.0/24"));
    let add_decky = || ChildEdit::AddDecky(NewDecky::new("new"));

    // To a later edit, and to itself.
    refused(
        s,
        id,
        &[
            ChildEdit::AddEdge(NewEdge::new(rows.web, RowRef::Batch(1))),
            add_lan(),
        ],
        (0, "edge lan", 1, RefProblem::NotEarlier),
    );
    refused(
        s,
        id,
        &[add_lan(), ChildEdit::DeleteLan(RowRef::Batch(1))],
        (1, "lan id", 1, RefProblem::NotEarlier),
    );
    // Past the batch.
    refused(
        s,
        id,
        &[add_decky(), ChildEdit::DeleteDecky(RowRef::Batch(2))],
        (1, "decky id", 2, RefProblem::OutOfBatch { len: 2 }),
    );
    refused(
        s,
        id,
        &[ChildEdit::UpdateDecky(
            RowRef::Batch(usize::MAX),
            DeckyPatch::default(),
        )],
        (0, "decky id", usize::MAX, RefProblem::OutOfBatch { len: 1 }),
    );
    // To an edit that adds another kind of row, or changes one.
    refused(
        s,
        id,
        &[
            add_decky(),
            add_lan(),
            ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(1), RowRef::Batch(1))),
        ],
        (
            2,
            "edge decky",
            1,
            RefProblem::NotAnAdd {
                expected: Entity::Decky,
            },
        ),
    );
    refused(
        s,
        id,
        &[
            ChildEdit::UpdateLan(rows.lan_a.into(), LanPatch::default()),
            ChildEdit::DeleteLan(RowRef::Batch(0)),
        ],
        (
            1,
            "lan id",
            0,
            RefProblem::NotAnAdd {
                expected: Entity::Lan,
            },
        ),
    );
    // The edit's references are read before anything else of it: a bad one beats its
    // missing stored end and its invalid fields...
    refused(
        s,
        id,
        &[
            add_lan(),
            ChildEdit::AddEdge(NewEdge::new(DeckyId::new(999_999), RowRef::Batch(3))),
        ],
        (1, "edge lan", 3, RefProblem::OutOfBatch { len: 2 }),
    );
    refused(
        s,
        id,
        &[ChildEdit::UpdateLan(
            RowRef::Batch(0),
            LanPatch::new().with_name(String::new()),
        )],
        (0, "lan id", 0, RefProblem::NotEarlier),
    );
    // ...but the first failing edit of the batch is the one reported.
    let e = expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::DeleteLan(LanId::new(999_999).into()),
                ChildEdit::DeleteLan(RowRef::Batch(5)),
            ]
        ),
        StoreError::NotFound { .. }
    );
    assert!(is_not_found(&e, Entity::Lan, 999_999), "{e:?}");
    // The single-edit path: no edit comes before it.
    let before = detail(s, id);
    expect_err!(
        s.edit_one(id, None, ChildEdit::DeleteLan(RowRef::Batch(0))),
        StoreError::BadReference {
            edit: 0,
            target: 0,
            problem: RefProblem::NotEarlier,
            ..
        }
    );
    assert_eq!(detail(s, id), before);
    // The message names the edit, the reference and why.
    let e = s
        .edit(
            id,
            None,
            &[add_lan(), ChildEdit::DeleteDecky(RowRef::Batch(0))],
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "edit 1: its decky id refers to edit 0, which does not add a decky"
    );
}

/// A reference to a row the batch has since deleted is not found (naming the id the row
/// had); a stored id never reaches a row of the batch; and a batch decky counts for the
/// LANs it would be stranded without.
pub fn batch_refs_after_a_delete<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "deleted", TopologyStatus::Pending);
    let before = detail(s, id);

    // The id the next decky gets: one past the last, no refused insert in between.
    let probe = s.add_decky(id, NewDecky::new("probe"), None).unwrap().id;
    s.delete_decky(id, probe, None).unwrap();
    let next = probe.get() + 1;
    let e = expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::AddDecky(NewDecky::new("gone")),
                ChildEdit::DeleteDecky(RowRef::Batch(0)),
                ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(0), rows.lan_a)),
            ]
        ),
        StoreError::NotFound { .. }
    );
    assert!(is_not_found(&e, Entity::Decky, next), "{e:?}");
    assert_eq!(detail(s, id), before);

    // A stored id is not a way into the batch's new rows, even guessed right.
    let probe = s.add_lan(id, NewLan::new("probe", "s"), None).unwrap().id;
    s.delete_lan(id, probe, None).unwrap();
    let guess = LanId::new(probe.get() + 1);
    let e = expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::AddLan(NewLan::new("new", "10.8.0.0/24")),
                ChildEdit::DeleteLan(guess.into()),
            ]
        ),
        StoreError::NotFound { .. }
    );
    assert!(is_not_found(&e, Entity::Lan, guess.get()), "{e:?}");
    // Not even in a batch that refers to the row properly elsewhere.
    let e = expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::AddLan(NewLan::new("new", "10.8.0.0/24")),
                ChildEdit::AddEdge(NewEdge::new(rows.web, RowRef::Batch(0))),
                ChildEdit::UpdateLan(guess.into(), LanPatch::default()),
            ]
        ),
        StoreError::NotFound { .. }
    );
    assert!(is_not_found(&e, Entity::Lan, guess.get()), "{e:?}");
    let e = expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::AddLan(NewLan::new("new", "10.8.0.0/24")),
                ChildEdit::AddEdge(NewEdge::new(rows.web, guess)),
            ]
        ),
        StoreError::NotFound { .. }
    );
    assert!(is_not_found(&e, Entity::Lan, guess.get()), "{e:?}");
    assert_eq!(detail(s, id), before);

    // A new decky whose only LAN is lan-b keeps lan-b from being deleted.
    let e = expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::AddDecky(NewDecky::new("fresh")),
                ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(0), rows.lan_b)),
                ChildEdit::DeleteLan(rows.lan_b.into()),
            ]
        ),
        StoreError::LanInUse { lan, decky_name, .. } if *lan == rows.lan_b && decky_name == "fresh"
    );
    drop(e);
    // Deleting the new decky again first lets it go, and takes its edge.
    s.edit(
        id,
        None,
        &[
            ChildEdit::AddDecky(NewDecky::new("fresh")),
            ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(0), rows.lan_b)),
            ChildEdit::DeleteDecky(RowRef::Batch(0)),
            ChildEdit::DeleteLan(rows.lan_b.into()),
        ],
    )
    .unwrap();
    let after = detail(s, id);
    assert!(after.lans.iter().all(|l| l.id != rows.lan_b));
    assert!(after.deckies.iter().all(|d| d.name != "fresh"));
    assert_eq!(after.edges.len(), before.edges.len());
    // A pair added twice through references is a duplicate.
    expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::AddLan(NewLan::new("x", "s")),
                ChildEdit::AddEdge(NewEdge::new(rows.db, RowRef::Batch(0))),
                ChildEdit::AddEdge(NewEdge::new(rows.db, RowRef::Batch(0))),
            ]
        ),
        StoreError::Duplicate {
            entity: Entity::Edge,
            ..
        }
    );
}

/// A referring batch keeps the version rules: a stale version refuses it whole; a bad
/// reference beats a stale version; a non-pending topology beats a bad reference.
pub fn batch_refs_with_a_stale_version<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "stale", TopologyStatus::Pending);
    let v = version(s, id);
    let before = detail(s, id);
    let save = [
        ChildEdit::AddDecky(NewDecky::new("mail")),
        ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(0), rows.lan_a)),
    ];
    expect_err!(
        s.edit(id, Some(v - 1), &save),
        StoreError::VersionConflict(c) if c.current == v && c.expected == v - 1
    );
    assert_eq!(detail(s, id), before, "a stale save wrote something");
    let bad = [
        ChildEdit::AddDecky(NewDecky::new("mail")),
        ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(1), rows.lan_a)),
    ];
    expect_err!(
        s.edit(id, Some(v - 1), &bad),
        StoreError::BadReference { edit: 1, .. }
    );
    assert_eq!(detail(s, id), before);
    // The save goes through once the version is right, and bumps once.
    assert_eq!(s.edit(id, Some(v), &save).unwrap().version, v + 1);

    let (live, _) = seeded(s, "deployed", TopologyStatus::Active);
    expect_err!(s.edit(live, None, &bad), StoreError::NotEditable(_));
}
