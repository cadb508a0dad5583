//! Free-form child edits (LANs, deckies, edges): versions, batches, error precedence,
//! domain refusals, not-found, the pending gate, and the runtime fields.

use crate::pages::ListAll;
use topostate::store::{
    ChildEdit, DeckyId, DeckyPatch, DeckyRuntime, DeckyState, EdgeId, Entity, LanId, LanPatch,
    Lease, MutationId, NewDecky, NewEdge, NewLan, Precondition, StoreError, TopologyStore, Touched,
};
use topostate::{MutationOp, TopologyId, TopologyStatus, VersionConflict};

use super::{ALL, Harness, add_lans, detail, is_not_found, seed, seeded, setup, version};

/// Runs `op` with two stale versions (each a `VersionConflict` that changes nothing), then
/// unchecked (no bump), then with the current version (+1). `op` returns the version it
/// reports.
fn three_ways(
    s: &dyn TopologyStore,
    id: TopologyId,
    what: &str,
    mut op: impl FnMut(Option<u64>) -> Result<u64, StoreError>,
) {
    let v = version(s, id);
    let before = detail(s, id);
    for stale in [v - 1, v + 1] {
        expect_err!(
            op(Some(stale)),
            StoreError::VersionConflict(c) if c.current == v && c.expected == stale
        );
        assert_eq!(
            detail(s, id),
            before,
            "{what}: a stale write changed something"
        );
    }
    assert_eq!(
        op(None).unwrap(),
        v,
        "{what}: an unchecked write reported a bump"
    );
    assert_eq!(version(s, id), v, "{what}: an unchecked write bumped");
    assert_eq!(
        op(Some(v)).unwrap(),
        v + 1,
        "{what}: a checked write did not report +1"
    );
    assert_eq!(
        version(s, id),
        v + 1,
        "{what}: a checked write did not bump once"
    );
}

fn lan_named(s: &dyn TopologyStore, id: TopologyId, name: &str) -> Option<topostate::store::Lan> {
    detail(s, id).lans.into_iter().find(|l| l.name == name)
}

/// add/update/delete LAN: `None` no bump, `Some(current)` +1, `Some(stale)` conflict and
/// nothing changed.
pub fn lan_ops_versioning<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);

    let mut added = Vec::new();
    three_ways(s, id, "add_lan", |v| {
        let mut lan = NewLan::new(format!("new-{}", added.len()), "10.1.0.0/24");
        lan.is_dmz = true;
        lan.x = Some(3.0);
        let edited = s.add_lan(id, lan, v)?;
        added.push(edited.id);
        Ok(edited.version)
    });
    assert_eq!(added.len(), 2);
    for (i, lan) in added.iter().enumerate() {
        let stored = lan_named(s, id, &format!("new-{i}")).expect("added LAN missing");
        assert_eq!(stored.id, *lan);
        assert_eq!(stored.topology_id, id);
        assert_eq!(stored.subnet, "10.1.0.0/24");
        assert!(stored.is_dmz);
        assert_eq!(
            (stored.x, stored.y, stored.network_id),
            (Some(3.0), None, None)
        );
    }

    let mut n = 0;
    three_ways(s, id, "update_lan", |v| {
        n += 1;
        let patch = LanPatch::new()
            .with_subnet(format!("10.2.{n}.0/24"))
            .with_x(Some(f64::from(n)));
        let edited = s.update_lan(id, rows.lan_a, patch, v)?;
        assert_eq!(edited.id, rows.lan_a);
        Ok(edited.version)
    });
    let lan_a = lan_named(s, id, "lan-a").unwrap();
    assert_eq!((lan_a.subnet.as_str(), lan_a.x), ("10.2.4.0/24", Some(4.0)));
    // A rename, and clearing a position.
    let patch = LanPatch::new()
        .with_name("lan-renamed")
        .with_dmz(true)
        .with_x(None);
    s.update_lan(id, rows.lan_a, patch, None).unwrap();
    let renamed = lan_named(s, id, "lan-renamed").unwrap();
    assert_eq!(
        (renamed.id, renamed.is_dmz, renamed.x),
        (rows.lan_a, true, None)
    );
    assert!(lan_named(s, id, "lan-a").is_none());

    let mut doomed = vec![added[0], added[1], rows.lan_b];
    three_ways(s, id, "delete_lan", |v| {
        let lan = *doomed.last().unwrap();
        let edited = s.delete_lan(id, lan, v)?;
        assert_eq!(edited.id, lan);
        doomed.pop();
        Ok(edited.version)
    });
    let names: Vec<_> = detail(s, id).lans.into_iter().map(|l| l.name).collect();
    assert_eq!(
        names,
        vec!["lan-renamed", "new-0"],
        "LANs are listed by name"
    );
}

/// add/update/delete decky: `None` no bump, `Some(current)` +1, `Some(stale)` conflict.
pub fn decky_ops_versioning<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);

    let mut added = Vec::new();
    three_ways(s, id, "add_decky", |v| {
        let mut decky = NewDecky::new(format!("new-{}", added.len()));
        decky.services = vec!["ssh".into()];
        let edited = s.add_decky(id, decky, v)?;
        added.push(edited.id);
        Ok(edited.version)
    });
    let deckies = detail(s, id).deckies;
    let names: Vec<_> = deckies.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["db", "new-0", "new-1", "web"],
        "deckies are listed by name"
    );
    assert!(added.iter().all(|a| deckies.iter().any(|d| d.id == *a)));

    let mut n = 0;
    three_ways(s, id, "update_decky", |v| {
        n += 1;
        let patch = DeckyPatch::new()
            .with_services([format!("svc-{n}")])
            .with_config(format!("{{\"n\":{n}}}"));
        let edited = s.update_decky(id, rows.web, patch, v)?;
        assert_eq!(edited.id, rows.web);
        Ok(edited.version)
    });
    let web = detail(s, id)
        .deckies
        .into_iter()
        .find(|d| d.id == rows.web)
        .unwrap();
    assert_eq!(web.services, vec!["svc-4".to_string()]);
    assert_eq!(web.config.as_deref(), Some("{\"n\":4}"));
    let patch = DeckyPatch::new()
        .with_name("www")
        .clear_config()
        .with_y(Some(2.0));
    s.update_decky(id, rows.web, patch, None).unwrap();
    let www = detail(s, id)
        .deckies
        .into_iter()
        .find(|d| d.id == rows.web)
        .unwrap();
    assert_eq!(
        (www.name.as_str(), www.config, www.y),
        ("www", None, Some(2.0))
    );

    let mut doomed = vec![added[0], added[1], rows.db];
    three_ways(s, id, "delete_decky", |v| {
        let decky = *doomed.last().unwrap();
        let edited = s.delete_decky(id, decky, v)?;
        assert_eq!(edited.id, decky);
        doomed.pop();
        Ok(edited.version)
    });
    let left: Vec<_> = detail(s, id).deckies.into_iter().map(|d| d.id).collect();
    assert_eq!(left, vec![added[0], rows.web]);
}

/// add/delete edge: `None` no bump, `Some(current)` +1, `Some(stale)` conflict.
pub fn edge_ops_versioning<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let extra: Vec<DeckyId> = (0..4)
        .map(|i| {
            s.add_decky(id, NewDecky::new(format!("d{i}")), None)
                .unwrap()
                .id
        })
        .collect();
    let mut free = extra.clone();
    let mut added = Vec::new();
    three_ways(s, id, "add_edge", |v| {
        let decky = *free.last().unwrap();
        let edge = NewEdge::new(decky, rows.lan_b)
            .with_bridge(true)
            .with_forwards_l3(added.len() == 1);
        let edited = s.add_edge(id, edge, v)?;
        free.pop();
        added.push((edited.id, decky));
        Ok(edited.version)
    });
    let edges = detail(s, id).edges;
    assert_eq!(edges.len(), 3);
    for (i, (edge, decky)) in added.iter().enumerate() {
        let stored = edges.iter().find(|e| e.id == *edge).expect("edge missing");
        assert_eq!(
            (
                stored.topology_id,
                stored.decky,
                stored.lan,
                stored.is_bridge
            ),
            (id, *decky, rows.lan_b, true)
        );
        assert_eq!(stored.forwards_l3, i == 1);
    }
    let ids: Vec<EdgeId> = edges.iter().map(|e| e.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "edges are listed by id");

    let mut doomed = vec![added[0].0, added[1].0, rows.edge];
    three_ways(s, id, "delete_edge", |v| {
        let edge = *doomed.last().unwrap();
        let edited = s.delete_edge(id, edge, v)?;
        assert_eq!(edited.id, edge);
        doomed.pop();
        Ok(edited.version)
    });
    let left: Vec<_> = detail(s, id).edges.into_iter().map(|e| e.id).collect();
    assert_eq!(left, vec![added[0].0]);
}

/// An update with an empty patch (and an empty batch) runs every guard (stale version,
/// missing row, status gate) and returns the current version without a bump.
pub fn empty_update_runs_guards<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    s.add_lan(id, NewLan::new("bump", "10.0.0.0/24"), Some(1))
        .unwrap();
    let v = version(s, id);
    assert_eq!(v, 2);
    let before = detail(s, id);
    for expected in [None, Some(v)] {
        let edited = s
            .update_lan(id, rows.lan_a, LanPatch::default(), expected)
            .unwrap();
        assert_eq!((edited.id, edited.version), (rows.lan_a, v));
        let edited = s
            .update_decky(id, rows.web, DeckyPatch::default(), expected)
            .unwrap();
        assert_eq!((edited.id, edited.version), (rows.web, v));
        let report = s.edit(id, expected, &[]).unwrap();
        assert!(report.touched.is_empty());
        assert_eq!(report.version, v);
        let report = s
            .edit(
                id,
                expected,
                &[
                    ChildEdit::UpdateLan(rows.lan_b.into(), LanPatch::default()),
                    ChildEdit::UpdateDecky(rows.db.into(), DeckyPatch::default()),
                ],
            )
            .unwrap();
        assert_eq!(
            report.touched,
            vec![Touched::Lan(rows.lan_b), Touched::Decky(rows.db)]
        );
        assert_eq!(report.version, v);
    }
    for stale in [v - 1, v + 1] {
        expect_err!(
            s.update_lan(id, rows.lan_a, LanPatch::default(), Some(stale)),
            StoreError::VersionConflict(c) if c.current == v && c.expected == stale
        );
        expect_err!(
            s.update_decky(id, rows.web, DeckyPatch::default(), Some(stale)),
            StoreError::VersionConflict(_)
        );
        expect_err!(s.edit(id, Some(stale), &[]), StoreError::VersionConflict(_));
    }
    let missing_lan = LanId::new(rows.lan_b.get() + 1_000_000);
    let missing_decky = DeckyId::new(rows.db.get() + 1_000_000);
    for expected in [None, Some(v), Some(v + 1)] {
        let e = expect_err!(
            s.update_lan(id, missing_lan, LanPatch::default(), expected),
            StoreError::NotFound { .. }
        );
        assert!(is_not_found(&e, Entity::Lan, missing_lan.get()), "{e:?}");
        let e = expect_err!(
            s.update_decky(id, missing_decky, DeckyPatch::default(), expected),
            StoreError::NotFound { .. }
        );
        assert!(
            is_not_found(&e, Entity::Decky, missing_decky.get()),
            "{e:?}"
        );
    }
    assert_eq!(detail(s, id), before);

    s.transition_status(id, TopologyStatus::Deploying, None, Precondition::none())
        .unwrap();
    for expected in [None, Some(v), Some(v + 1)] {
        expect_err!(
            s.update_lan(id, rows.lan_a, LanPatch::default(), expected),
            StoreError::NotEditable(n) if n.status == TopologyStatus::Deploying
        );
        expect_err!(
            s.update_decky(id, rows.web, DeckyPatch::default(), expected),
            StoreError::NotEditable(_)
        );
        expect_err!(s.edit(id, expected, &[]), StoreError::NotEditable(_));
        expect_err!(
            s.update_lan(id, missing_lan, LanPatch::default(), expected),
            StoreError::NotFound { .. }
        );
    }
    assert_eq!(version(s, id), v);
}

/// A batch of 16 edits bumps the version once and reports each touched row in order.
pub fn batch_edit_bumps_once<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let v = version(s, id);
    let mut edits = add_lans("batch", 8);
    for i in 0..3 {
        edits.push(ChildEdit::AddDecky(NewDecky::new(format!("batch-d{i}"))));
    }
    edits.push(ChildEdit::UpdateLan(
        rows.lan_a.into(),
        LanPatch::new().with_subnet("10.5.0.0/24"),
    ));
    edits.push(ChildEdit::UpdateDecky(
        rows.web.into(),
        DeckyPatch::new().with_services(["ssh", "smb"]),
    ));
    edits.push(ChildEdit::AddEdge(NewEdge::new(rows.db, rows.lan_b)));
    edits.push(ChildEdit::AddEdge(NewEdge::new(rows.web, rows.lan_b)));
    edits.push(ChildEdit::DeleteEdge(rows.edge));
    assert_eq!(edits.len(), 16);

    let report = s.edit(id, Some(v), &edits).unwrap();
    assert_eq!(report.version, v + 1, "a batch bumps once");
    assert_eq!(version(s, id), v + 1);
    assert_eq!(report.touched.len(), 16);
    let after = detail(s, id);
    for (i, touched) in report.touched.iter().enumerate() {
        match (i, touched) {
            (0..=7, Touched::Lan(lan)) => {
                let stored = after.lans.iter().find(|l| l.id == *lan).unwrap();
                assert_eq!(stored.name, format!("batch-{i}"));
            }
            (8..=10, Touched::Decky(decky)) => {
                let stored = after.deckies.iter().find(|d| d.id == *decky).unwrap();
                assert_eq!(stored.name, format!("batch-d{}", i - 8));
            }
            (11, Touched::Lan(lan)) => assert_eq!(*lan, rows.lan_a),
            (12, Touched::Decky(decky)) => assert_eq!(*decky, rows.web),
            (13 | 14, Touched::Edge(edge)) => {
                assert!(after.edges.iter().any(|e| e.id == *edge));
            }
            (15, Touched::Edge(edge)) => assert_eq!(*edge, rows.edge),
            other => panic!("unexpected touched row {other:?}"),
        }
    }
    assert_eq!(
        (after.lans.len(), after.deckies.len(), after.edges.len()),
        (10, 5, 2)
    );
    let lan_a = after.lans.iter().find(|l| l.id == rows.lan_a).unwrap();
    assert_eq!(lan_a.subnet, "10.5.0.0/24");

    // Unchecked, a batch bumps nothing.
    let report = s.edit(id, None, &add_lans("more", 16)).unwrap();
    assert_eq!(report.version, v + 1);
    assert_eq!(version(s, id), v + 1);
}

/// A batch whose 10th edit fails writes nothing (not the first nine, not the version),
/// whatever the failure.
pub fn batch_edit_is_all_or_nothing<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (other, other_rows) = seeded(s, "other", TopologyStatus::Pending);
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    s.add_lan(id, NewLan::new("bump", "10.0.0.0/24"), Some(1))
        .unwrap();
    let v = version(s, id);

    let mut prefix = add_lans("batch", 5);
    prefix.push(ChildEdit::AddDecky(NewDecky::new("batch-d0")));
    prefix.push(ChildEdit::AddDecky(NewDecky::new("batch-d1")));
    prefix.push(ChildEdit::UpdateLan(
        rows.lan_b.into(),
        LanPatch::new().with_name("lan-b2"),
    ));
    prefix.push(ChildEdit::AddEdge(NewEdge::new(rows.db, rows.lan_b)));
    assert_eq!(prefix.len(), 9);
    let suffix = add_lans("tail", 6);

    let failing: Vec<(&str, ChildEdit)> = vec![
        (
            "duplicate of an earlier edit",
            ChildEdit::AddLan(NewLan::new("batch-0", "10.0.0.0/24")),
        ),
        (
            "missing LAN",
            ChildEdit::UpdateLan(LanId::new(9_999_999).into(), LanPatch::default()),
        ),
        (
            "only LAN of a decky",
            ChildEdit::DeleteLan(rows.lan_a.into()),
        ),
        ("invalid name", ChildEdit::AddDecky(NewDecky::new(""))),
        (
            "rename onto a taken name",
            ChildEdit::UpdateDecky(rows.db.into(), DeckyPatch::new().with_name("web")),
        ),
        (
            "foreign edge end",
            ChildEdit::AddEdge(NewEdge::new(other_rows.web, rows.lan_a)),
        ),
        (
            "edge pair added earlier",
            ChildEdit::AddEdge(NewEdge::new(rows.db, rows.lan_b)),
        ),
        (
            "missing edge",
            ChildEdit::DeleteEdge(EdgeId::new(9_999_999)),
        ),
    ];
    let before = detail(s, id);
    let other_before = detail(s, other);
    for (what, bad) in &failing {
        let mut edits = prefix.clone();
        edits.push(bad.clone());
        edits.extend(suffix.iter().cloned());
        assert_eq!(edits.len(), 16);
        for expected in [None, Some(v)] {
            let result = s.edit(id, expected, &edits);
            assert!(
                result.is_err(),
                "{what}: the batch was accepted: {result:?}"
            );
            assert_eq!(
                detail(s, id),
                before,
                "{what}: a refused batch wrote something"
            );
        }
    }
    assert_eq!(detail(s, other), other_before);

    let mut edits = prefix.clone();
    edits.push(ChildEdit::AddLan(NewLan::new("fine", "10.0.0.0/24")));
    edits.extend(suffix.iter().cloned());
    let report = s.edit(id, Some(v), &edits).unwrap();
    assert_eq!(report.version, v + 1);
    assert_eq!(detail(s, id).lans.len(), before.lans.len() + 12);
}

/// Each edit of a batch sees the edits before it: freed names and pairs are reusable,
/// deleted rows are gone, a decky attached earlier no longer blocks a LAN delete.
pub fn batch_sees_its_own_earlier_edits<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;

    // A rename frees the old name for an add in the same batch.
    let (id, rows) = seeded(s, "rename", TopologyStatus::Pending);
    let report = s
        .edit(
            id,
            None,
            &[
                ChildEdit::UpdateLan(rows.lan_a.into(), LanPatch::new().with_name("lan-z")),
                ChildEdit::AddLan(NewLan::new("lan-a", "10.7.0.0/24")),
            ],
        )
        .unwrap();
    let names: Vec<_> = detail(s, id)
        .lans
        .into_iter()
        .map(|l| (l.name, l.id))
        .collect();
    let Touched::Lan(new_a) = report.touched[1] else {
        panic!("{report:?}")
    };
    assert_eq!(
        names,
        vec![
            ("lan-a".to_string(), new_a),
            ("lan-b".to_string(), rows.lan_b),
            ("lan-z".to_string(), rows.lan_a)
        ]
    );

    // Attaching the decky elsewhere first makes its old LAN deletable.
    s.edit(
        id,
        None,
        &[
            ChildEdit::AddEdge(NewEdge::new(rows.web, rows.lan_b)),
            ChildEdit::DeleteLan(rows.lan_a.into()),
        ],
    )
    .unwrap();
    let edges = detail(s, id).edges;
    assert_eq!(edges.len(), 1);
    assert_eq!((edges[0].decky, edges[0].lan), (rows.web, rows.lan_b));

    // Deleting the decky first makes its only LAN deletable.
    s.edit(
        id,
        None,
        &[
            ChildEdit::DeleteDecky(rows.web.into()),
            ChildEdit::DeleteLan(rows.lan_b.into()),
        ],
    )
    .unwrap();
    assert!(detail(s, id).edges.is_empty());

    // A deleted pair can be added again; an added pair cannot be added twice.
    let (id, rows) = seeded(s, "pairs", TopologyStatus::Pending);
    s.edit(
        id,
        None,
        &[
            ChildEdit::DeleteEdge(rows.edge),
            ChildEdit::AddEdge(NewEdge::new(rows.web, rows.lan_a)),
        ],
    )
    .unwrap();
    let before = detail(s, id);
    let edge = before.edges[0].id;
    assert_ne!(edge, rows.edge);
    expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::AddEdge(NewEdge::new(rows.db, rows.lan_b)),
                ChildEdit::AddEdge(NewEdge::new(rows.db, rows.lan_b)),
            ]
        ),
        StoreError::Duplicate {
            entity: Entity::Edge,
            ..
        }
    );
    // A row deleted earlier in the batch is gone for the later edits.
    let e = expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::DeleteLan(rows.lan_b.into()),
                ChildEdit::UpdateLan(rows.lan_b.into(), LanPatch::default()),
            ]
        ),
        StoreError::NotFound { .. }
    );
    assert!(is_not_found(&e, Entity::Lan, rows.lan_b.get()), "{e:?}");
    expect_err!(
        s.edit(
            id,
            None,
            &[ChildEdit::DeleteEdge(edge), ChildEdit::DeleteEdge(edge)]
        ),
        StoreError::NotFound { .. }
    );
    expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::DeleteDecky(rows.db.into()),
                ChildEdit::AddEdge(NewEdge::new(rows.db, rows.lan_b)),
            ]
        ),
        StoreError::NotFound { .. }
    );
    expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::AddLan(NewLan::new("same", "10.0.0.0/24")),
                ChildEdit::AddLan(NewLan::new("same", "10.0.0.0/24")),
            ]
        ),
        StoreError::Duplicate {
            entity: Entity::Lan,
            ..
        }
    );
    // A decky attached in the batch makes the LAN its only one, unless it has another.
    expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::AddEdge(NewEdge::new(rows.db, rows.lan_b)),
                ChildEdit::DeleteLan(rows.lan_b.into()),
            ]
        ),
        StoreError::LanInUse { decky, .. } if *decky == rows.db
    );
    assert_eq!(detail(s, id), before, "a refused batch wrote something");
}

/// Within a batch, the first failing edit is the one reported.
pub fn batch_reports_first_failing_edit<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let missing = LanId::new(rows.lan_b.get() + 1_000_000);
    expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::AddLan(NewLan::new("fine", "10.0.0.0/24")),
                ChildEdit::DeleteLan(rows.lan_a.into()),
                ChildEdit::UpdateLan(missing.into(), LanPatch::default()),
            ]
        ),
        StoreError::LanInUse { .. }
    );
    expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::UpdateLan(missing.into(), LanPatch::default()),
                ChildEdit::DeleteLan(rows.lan_a.into()),
            ]
        ),
        StoreError::NotFound { .. }
    );
    expect_err!(
        s.edit(
            id,
            None,
            &[
                ChildEdit::AddLan(NewLan::new("lan-a", "10.0.0.0/24")),
                ChildEdit::AddDecky(NewDecky::new("")),
            ]
        ),
        StoreError::Duplicate { .. }
    );
    // Within one edit, a missing row is reported before its invalid fields.
    let blank = LanPatch::new().with_name(" ");
    expect_err!(
        s.edit(
            id,
            None,
            &[ChildEdit::UpdateLan(missing.into(), blank.clone())]
        ),
        StoreError::NotFound { .. }
    );
    expect_err!(
        s.edit(id, None, &[ChildEdit::UpdateLan(rows.lan_b.into(), blank)]),
        StoreError::Invalid {
            field: "lan name",
            ..
        }
    );
}

/// Not found > not editable > domain refusal > version conflict > duplicate.
pub fn error_precedence<H: Harness>() {
    use TopologyStatus::*;
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (_, other_rows) = seeded(s, "other", Pending);

    // A missing LAN on a non-pending topology is NotFound, whatever the version.
    let (live, live_rows) = seeded(s, "live", Deploying);
    let v = version(s, live);
    let missing_lan = LanId::new(9_999_999);
    let missing_decky = DeckyId::new(9_999_999);
    for expected in [None, Some(v), Some(v + 7)] {
        let e = expect_err!(
            s.update_lan(live, missing_lan, LanPatch::default(), expected),
            StoreError::NotFound { .. }
        );
        assert!(is_not_found(&e, Entity::Lan, missing_lan.get()), "{e:?}");
        expect_err!(
            s.delete_lan(live, missing_lan, expected),
            StoreError::NotFound { .. }
        );
        expect_err!(
            s.delete_edge(live, EdgeId::new(9_999_999), expected),
            StoreError::NotFound { .. }
        );
        expect_err!(
            s.delete_decky(live, missing_decky, expected),
            StoreError::NotFound { .. }
        );
        let e = expect_err!(
            s.add_edge(live, NewEdge::new(missing_decky, live_rows.lan_a), expected),
            StoreError::NotFound { .. }
        );
        assert!(
            is_not_found(&e, Entity::Decky, missing_decky.get()),
            "{e:?}"
        );
    }
    // Not editable beats a stale version and a domain refusal.
    expect_err!(
        s.add_lan(live, NewLan::new("x", "10.0.0.0/24"), Some(v + 7)),
        StoreError::NotEditable(n) if n.status == Deploying
    );
    expect_err!(
        s.delete_lan(live, live_rows.lan_a, Some(v + 7)),
        StoreError::NotEditable(_)
    );
    expect_err!(
        s.add_edge(
            live,
            NewEdge::new(other_rows.web, live_rows.lan_b),
            Some(v + 7)
        ),
        StoreError::NotEditable(_)
    );
    expect_err!(
        s.add_lan(live, NewLan::new("", "10.0.0.0/24"), None),
        StoreError::NotEditable(_)
    );

    let (id, rows) = seeded(s, "lab", Pending);
    let v = version(s, id);
    let stale = Some(v + 3);
    let before = detail(s, id);
    // Domain refusals beat a stale version.
    expect_err!(
        s.delete_lan(id, rows.lan_a, stale),
        StoreError::LanInUse { .. }
    );
    expect_err!(
        s.add_edge(id, NewEdge::new(other_rows.web, rows.lan_b), stale),
        StoreError::ForeignEnd { .. }
    );
    expect_err!(
        s.add_lan(id, NewLan::new(" ", "10.0.0.0/24"), stale),
        StoreError::Invalid { .. }
    );
    // A stale version beats a duplicate.
    expect_err!(
        s.add_lan(id, NewLan::new("lan-a", "10.0.0.0/24"), stale),
        StoreError::VersionConflict(VersionConflict { current, .. }) if *current == v
    );
    expect_err!(
        s.add_decky(id, NewDecky::new("web"), stale),
        StoreError::VersionConflict(_)
    );
    expect_err!(
        s.add_edge(id, NewEdge::new(rows.web, rows.lan_a), stale),
        StoreError::VersionConflict(_)
    );
    // A missing end beats a foreign one, whichever end it is.
    let e = expect_err!(
        s.add_edge(id, NewEdge::new(missing_decky, other_rows.lan_a), None),
        StoreError::NotFound { .. }
    );
    assert!(
        is_not_found(&e, Entity::Decky, missing_decky.get()),
        "{e:?}"
    );
    let e = expect_err!(
        s.add_edge(id, NewEdge::new(other_rows.web, missing_lan), None),
        StoreError::NotFound { .. }
    );
    assert!(is_not_found(&e, Entity::Lan, missing_lan.get()), "{e:?}");
    // A missing topology beats everything.
    let nowhere = TopologyId::new(9_999_999);
    let e = expect_err!(
        s.add_lan(nowhere, NewLan::new("", "10.0.0.0/24"), Some(0)),
        StoreError::NotFound { .. }
    );
    assert!(is_not_found(&e, Entity::Topology, nowhere.get()), "{e:?}");
    assert_eq!(detail(s, id), before);
}

/// A batch counts the edges it adds and removes as it goes: an edge added to a decky or a
/// LAN the batch later deletes is gone with it, a LAN deleted in the batch no longer counts
/// for its deckies, and a refused LAN delete names the first decky left with no other LAN,
/// stored edges first, then the batch's own in the order it added them.
pub fn batch_tracks_edges_of_deleted_ends<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let lan_c = s
        .add_lan(id, NewLan::new("lan-c", "10.0.3.0/24"), None)
        .unwrap()
        .id;
    let cache = s.add_decky(id, NewDecky::new("cache"), None).unwrap().id;
    s.add_edge(id, NewEdge::new(rows.web, rows.lan_b), None)
        .unwrap();
    let web_c = s
        .add_edge(id, NewEdge::new(rows.web, lan_c), None)
        .unwrap()
        .id;
    let before = detail(s, id);
    let refused = |edits: &[ChildEdit], named: DeckyId| {
        let e = expect_err!(s.edit(id, None, edits), StoreError::LanInUse { .. });
        assert!(
            matches!(e, StoreError::LanInUse { decky, .. } if decky == named),
            "expected decky {named} named, got {e:?}"
        );
        assert_eq!(detail(s, id), before, "a refused batch wrote something");
    };
    // web keeps two of its three stored LANs after lan-b goes, one after web ↔ lan-c too.
    refused(
        &[
            ChildEdit::DeleteEdge(web_c),
            ChildEdit::DeleteLan(rows.lan_b.into()),
            ChildEdit::DeleteLan(rows.lan_a.into()),
        ],
        rows.web,
    );
    // db's edge to lan-b went with lan-b: lan-a is left as its only LAN.
    refused(
        &[
            ChildEdit::AddEdge(NewEdge::new(rows.db, rows.lan_a)),
            ChildEdit::AddEdge(NewEdge::new(rows.db, rows.lan_b)),
            ChildEdit::DeleteLan(rows.lan_b.into()),
            ChildEdit::DeleteLan(rows.lan_a.into()),
        ],
        rows.db,
    );
    // Two new members with no other LAN: the first added is named, unless it is gone.
    let onto_c = [
        ChildEdit::AddEdge(NewEdge::new(cache, lan_c)),
        ChildEdit::AddEdge(NewEdge::new(rows.db, lan_c)),
    ];
    refused(
        &[
            onto_c[0].clone(),
            onto_c[1].clone(),
            ChildEdit::DeleteLan(lan_c.into()),
        ],
        cache,
    );
    refused(
        &[
            onto_c[0].clone(),
            onto_c[1].clone(),
            ChildEdit::DeleteDecky(cache.into()),
            ChildEdit::DeleteLan(lan_c.into()),
        ],
        rows.db,
    );
    // A new edge whose decky the batch deleted holds its LAN no more.
    s.edit(
        id,
        None,
        &[
            ChildEdit::AddEdge(NewEdge::new(rows.db, rows.lan_b)),
            ChildEdit::DeleteDecky(rows.db.into()),
            ChildEdit::DeleteLan(rows.lan_b.into()),
        ],
    )
    .unwrap();
    let after = detail(s, id);
    assert!(after.deckies.iter().all(|d| d.id != rows.db));
    assert!(after.lans.iter().all(|l| l.id != rows.lan_b));
    let mut edges: Vec<_> = after.edges.iter().map(|e| (e.decky, e.lan)).collect();
    edges.sort();
    assert_eq!(edges, [(rows.web, rows.lan_a), (rows.web, lan_c)]);
}

/// Deleting a LAN that is some decky's only LAN is refused, naming the decky; once the
/// decky has another LAN, the delete goes through and takes the LAN's edges.
pub fn lan_in_use_names_the_decky<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let before = detail(s, id);
    let e = expect_err!(
        s.delete_lan(id, rows.lan_a, None),
        StoreError::LanInUse { .. }
    );
    let StoreError::LanInUse {
        lan,
        decky,
        ref decky_name,
    } = e
    else {
        unreachable!()
    };
    assert_eq!(
        (lan, decky, decky_name.as_str()),
        (rows.lan_a, rows.web, "web")
    );
    assert!(e.to_string().contains("'web'"), "{e}");
    assert_eq!(detail(s, id), before);

    // A LAN with no members, or whose members have other LANs, can go.
    let lan_c = s
        .add_lan(id, NewLan::new("lan-c", "10.0.3.0/24"), None)
        .unwrap()
        .id;
    s.add_edge(id, NewEdge::new(rows.web, lan_c), None).unwrap();
    s.add_edge(id, NewEdge::new(rows.db, rows.lan_a), None)
        .unwrap();
    s.add_edge(id, NewEdge::new(rows.db, lan_c), None).unwrap();
    let v = version(s, id);
    let edited = s.delete_lan(id, rows.lan_a, Some(v)).unwrap();
    assert_eq!(edited.version, v + 1);
    let after = detail(s, id);
    assert!(after.lans.iter().all(|l| l.id != rows.lan_a));
    assert!(
        after.edges.iter().all(|e| e.lan != rows.lan_a),
        "the LAN's edges were left behind"
    );
    assert_eq!(after.edges.len(), 2);

    // Now lan-c is web's only LAN (and db's): the refusal names one of them.
    let e = expect_err!(s.delete_lan(id, lan_c, None), StoreError::LanInUse { .. });
    assert!(
        matches!(e, StoreError::LanInUse { decky, .. } if decky == rows.web || decky == rows.db)
    );
    s.delete_lan(id, rows.lan_b, None).unwrap();
}

/// Deleting a decky or a LAN deletes their edges, and only theirs.
pub fn deletes_take_their_edges<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    s.add_edge(id, NewEdge::new(rows.web, rows.lan_b), None)
        .unwrap();
    let db_b = s
        .add_edge(id, NewEdge::new(rows.db, rows.lan_b), None)
        .unwrap()
        .id;
    let db_a = s
        .add_edge(id, NewEdge::new(rows.db, rows.lan_a), None)
        .unwrap()
        .id;
    s.delete_decky(id, rows.web, Some(1)).unwrap();
    let edges: Vec<_> = detail(s, id).edges.into_iter().map(|e| e.id).collect();
    assert_eq!(
        edges,
        vec![db_b, db_a],
        "the decky's edges (and only those) went with it"
    );
    s.delete_lan(id, rows.lan_b, None).unwrap();
    let edges: Vec<_> = detail(s, id).edges.into_iter().map(|e| e.id).collect();
    assert_eq!(edges, vec![db_a]);
    s.delete_edge(id, db_a, None).unwrap();
    let after = detail(s, id);
    assert!(after.edges.is_empty());
    assert_eq!(after.lans.len(), 1);
    assert_eq!(after.deckies.len(), 1);
    // With no edge left, the LAN is free to go.
    s.delete_lan(id, rows.lan_a, None).unwrap();
}

/// An edge end that exists in another topology is `ForeignEnd`; other topologies' rows
/// are not found through this one; nothing is written to either.
pub fn foreign_edge_end<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (a, a_rows) = seeded(s, "a", TopologyStatus::Pending);
    let (b, b_rows) = seeded(s, "b", TopologyStatus::Pending);
    let a_before = detail(s, a);
    let b_before = detail(s, b);

    let e = expect_err!(
        s.add_edge(a, NewEdge::new(b_rows.web, a_rows.lan_b), None),
        StoreError::ForeignEnd { .. }
    );
    assert!(
        matches!(
            e,
            StoreError::ForeignEnd { entity: Entity::Decky, id, owner, topology }
                if id == b_rows.web.get() && owner == b.get() && topology == a.get()
        ),
        "{e:?}"
    );
    let e = expect_err!(
        s.add_edge(a, NewEdge::new(a_rows.db, b_rows.lan_b), Some(1)),
        StoreError::ForeignEnd { .. }
    );
    assert!(
        matches!(
            e,
            StoreError::ForeignEnd { entity: Entity::Lan, id, owner, topology }
                if id == b_rows.lan_b.get() && owner == b.get() && topology == a.get()
        ),
        "{e:?}"
    );
    expect_err!(
        s.add_edge(a, NewEdge::new(b_rows.db, b_rows.lan_b), None),
        StoreError::ForeignEnd { .. }
    );

    // Rows of b, addressed through a.
    let e = expect_err!(
        s.update_lan(a, b_rows.lan_a, LanPatch::default(), None),
        StoreError::NotFound { .. }
    );
    assert!(is_not_found(&e, Entity::Lan, b_rows.lan_a.get()), "{e:?}");
    expect_err!(
        s.delete_lan(a, b_rows.lan_b, None),
        StoreError::NotFound { .. }
    );
    expect_err!(
        s.update_decky(a, b_rows.db, DeckyPatch::new().with_name("x"), None),
        StoreError::NotFound { .. }
    );
    expect_err!(
        s.delete_decky(a, b_rows.db, None),
        StoreError::NotFound { .. }
    );
    let e = expect_err!(
        s.delete_edge(a, b_rows.edge, None),
        StoreError::NotFound { .. }
    );
    assert!(is_not_found(&e, Entity::Edge, b_rows.edge.get()), "{e:?}");

    assert_eq!(detail(s, a), a_before);
    assert_eq!(detail(s, b), b_before);
}

/// A decky ↔ LAN pair exists at most once, whatever the flags; the refusal bumps nothing.
pub fn duplicate_edge<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let v = version(s, id);
    let before = detail(s, id);
    for expected in [None, Some(v)] {
        expect_err!(
            s.add_edge(id, NewEdge::new(rows.web, rows.lan_a), expected),
            StoreError::Duplicate {
                entity: Entity::Edge,
                ..
            }
        );
        let flagged = NewEdge::new(rows.web, rows.lan_a)
            .with_bridge(true)
            .with_forwards_l3(true);
        expect_err!(
            s.add_edge(id, flagged, expected),
            StoreError::Duplicate { .. }
        );
    }
    assert_eq!(detail(s, id), before);
    // The same decky on another LAN is another pair.
    s.add_edge(id, NewEdge::new(rows.web, rows.lan_b), Some(v))
        .unwrap();
}

/// Every operation on a missing topology, LAN, decky, edge or mutation is a typed
/// `NotFound`, never a silent success, and writes nothing.
pub fn not_found_everywhere<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let nowhere = TopologyId::new(id.get() + 1_000_000);
    let n = nowhere.get();
    let topo = |e: Option<StoreError>, what: &str| {
        let e = e.unwrap_or_else(|| panic!("{what} on a missing topology succeeded"));
        assert!(is_not_found(&e, Entity::Topology, n), "{what}: {e:?}");
    };
    topo(s.get_topology(nowhere).err(), "get_topology");
    topo(s.topology_detail(nowhere).err(), "topology_detail");
    topo(
        s.transition_status(
            nowhere,
            TopologyStatus::Deploying,
            None,
            Precondition::none(),
        )
        .err(),
        "transition_status",
    );
    topo(s.all_events(nowhere).err(), "list_status_events");
    topo(s.edit(nowhere, None, &[]).err(), "edit (empty)");
    topo(s.edit(nowhere, Some(1), &add_lans("x", 2)).err(), "edit");
    topo(
        s.add_lan(nowhere, NewLan::new("x", "10.0.0.0/24"), None)
            .err(),
        "add_lan",
    );
    topo(
        s.update_lan(nowhere, rows.lan_a, LanPatch::default(), None)
            .err(),
        "update_lan",
    );
    topo(s.delete_lan(nowhere, rows.lan_b, None).err(), "delete_lan");
    topo(
        s.add_decky(nowhere, NewDecky::new("x"), None).err(),
        "add_decky",
    );
    topo(
        s.update_decky(nowhere, rows.web, DeckyPatch::default(), None)
            .err(),
        "update_decky",
    );
    topo(s.delete_decky(nowhere, rows.db, None).err(), "delete_decky");
    topo(
        s.add_edge(nowhere, NewEdge::new(rows.db, rows.lan_b), None)
            .err(),
        "add_edge",
    );
    topo(s.delete_edge(nowhere, rows.edge, None).err(), "delete_edge");
    topo(
        s.enqueue_mutation(nowhere, MutationOp::AddLan, "{}", None)
            .err(),
        "enqueue_mutation",
    );
    topo(s.claim_next_mutation(nowhere).err(), "claim_next_mutation");
    topo(s.all_mutations(nowhere, None).err(), "list_mutations");
    topo(s.set_needs_resync(nowhere, true).err(), "set_needs_resync");
    topo(s.delete_topology(nowhere, None).err(), "delete_topology");
    topo(s.delete_topology(nowhere, Some(1)).err(), "delete_topology");
    let forged = Lease::from_parts(MutationId::new(1), nowhere, 1);
    expect_err!(s.mark_mutation_applied(forged), StoreError::NotFound { .. });
    let forged = Lease::from_parts(MutationId::new(1), nowhere, 1);
    expect_err!(
        s.mark_mutation_failed(forged, "x"),
        StoreError::NotFound { .. }
    );
    let forged = Lease::from_parts(MutationId::new(1), nowhere, 1);
    expect_err!(s.apply_live(&forged, &[]), StoreError::NotFound { .. });

    let before = detail(s, id);
    let missing_lan = LanId::new(rows.lan_b.get() + 1_000_000);
    let missing_decky = DeckyId::new(rows.db.get() + 1_000_000);
    let missing_edge = EdgeId::new(rows.edge.get() + 1_000_000);
    for expected in [None, Some(1)] {
        let check = |e: Option<StoreError>, entity: Entity, child: u64, what: &str| {
            let e = e.unwrap_or_else(|| panic!("{what} on a missing row succeeded"));
            assert!(is_not_found(&e, entity, child), "{what}: {e:?}");
        };
        let lan = missing_lan.get();
        let decky = missing_decky.get();
        check(
            s.update_lan(id, missing_lan, LanPatch::default(), expected)
                .err(),
            Entity::Lan,
            lan,
            "update_lan",
        );
        check(
            s.delete_lan(id, missing_lan, expected).err(),
            Entity::Lan,
            lan,
            "delete_lan",
        );
        check(
            s.update_decky(id, missing_decky, DeckyPatch::default(), expected)
                .err(),
            Entity::Decky,
            decky,
            "update_decky",
        );
        check(
            s.delete_decky(id, missing_decky, expected).err(),
            Entity::Decky,
            decky,
            "delete_decky",
        );
        check(
            s.delete_edge(id, missing_edge, expected).err(),
            Entity::Edge,
            missing_edge.get(),
            "delete_edge",
        );
        check(
            s.add_edge(id, NewEdge::new(missing_decky, rows.lan_a), expected)
                .err(),
            Entity::Decky,
            decky,
            "add_edge (decky)",
        );
        check(
            s.add_edge(id, NewEdge::new(rows.db, missing_lan), expected)
                .err(),
            Entity::Lan,
            lan,
            "add_edge (lan)",
        );
    }
    let e = expect_err!(
        s.set_lan_network_id(missing_lan, Some("net")),
        StoreError::NotFound { .. }
    );
    assert!(is_not_found(&e, Entity::Lan, missing_lan.get()), "{e:?}");
    let e = expect_err!(
        s.set_decky_runtime(missing_decky, &DeckyRuntime::default()),
        StoreError::NotFound { .. }
    );
    assert!(
        is_not_found(&e, Entity::Decky, missing_decky.get()),
        "{e:?}"
    );
    let forged = Lease::from_parts(MutationId::new(9_999_999), id, 1);
    let e = expect_err!(s.mark_mutation_applied(forged), StoreError::NotFound { .. });
    assert!(is_not_found(&e, Entity::Mutation, 9_999_999), "{e:?}");
    assert_eq!(detail(s, id), before);

    // A row deleted once is not found the second time.
    s.delete_edge(id, rows.edge, None).unwrap();
    expect_err!(
        s.delete_edge(id, rows.edge, None),
        StoreError::NotFound { .. }
    );
    s.delete_lan(id, rows.lan_b, None).unwrap();
    expect_err!(
        s.delete_lan(id, rows.lan_b, None),
        StoreError::NotFound { .. }
    );
    expect_err!(
        s.set_lan_network_id(rows.lan_b, None),
        StoreError::NotFound { .. }
    );
    s.delete_decky(id, rows.db, None).unwrap();
    expect_err!(
        s.delete_decky(id, rows.db, None),
        StoreError::NotFound { .. }
    );
    expect_err!(
        s.set_decky_runtime(rows.db, &DeckyRuntime::default()),
        StoreError::NotFound { .. }
    );
}

/// In every status but `pending`, every free-form edit is `NotEditable` (with or without a
/// version, valid or not) and nothing is written.
pub fn pending_only_edits<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    for status in ALL.into_iter().filter(|s| *s != TopologyStatus::Pending) {
        let (id, rows) = seeded(s, &format!("t-{status}"), status);
        let v = version(s, id);
        let before = detail(s, id);
        let rename_lan = LanPatch::new().with_name("renamed");
        let rename_decky = DeckyPatch::new().with_name("renamed");
        for expected in [None, Some(v)] {
            let results = [
                (
                    "add_lan",
                    s.add_lan(id, NewLan::new("new", "10.0.0.0/24"), expected)
                        .err(),
                ),
                (
                    "update_lan",
                    s.update_lan(id, rows.lan_a, rename_lan.clone(), expected)
                        .err(),
                ),
                ("delete_lan", s.delete_lan(id, rows.lan_b, expected).err()),
                (
                    "add_decky",
                    s.add_decky(id, NewDecky::new("new"), expected).err(),
                ),
                (
                    "update_decky",
                    s.update_decky(id, rows.web, rename_decky.clone(), expected)
                        .err(),
                ),
                ("delete_decky", s.delete_decky(id, rows.db, expected).err()),
                (
                    "add_edge",
                    s.add_edge(id, NewEdge::new(rows.db, rows.lan_b), expected)
                        .err(),
                ),
                ("delete_edge", s.delete_edge(id, rows.edge, expected).err()),
                ("edit", s.edit(id, expected, &add_lans("b", 3)).err()),
            ];
            for (what, e) in results {
                let e = e.unwrap_or_else(|| panic!("{what} succeeded in status {status}"));
                assert!(
                    matches!(&e, StoreError::NotEditable(n) if n.status == status),
                    "{what} in {status}: {e:?}"
                );
            }
        }
        assert_eq!(detail(s, id), before, "a refused edit wrote in {status}");
    }
}

/// LAN network ids and decky runtime fields are written in every status, without a
/// version bump or a status change.
pub fn runtime_fields_any_status<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    for status in ALL {
        let (id, rows) = seeded(s, &format!("t-{status}"), status);
        let before = s.get_topology(id).unwrap();
        let events = s.all_events(id).unwrap();

        let net = format!("net-{status}");
        s.set_lan_network_id(rows.lan_a, Some(net.as_str()))
            .unwrap();
        let d = detail(s, id);
        let lan = d.lans.iter().find(|l| l.id == rows.lan_a).unwrap();
        assert_eq!(lan.network_id.as_deref(), Some(net.as_str()));
        assert_eq!(
            d.topology, before,
            "a runtime write changed the topology row"
        );

        let runtime = DeckyRuntime::new()
            .with_state(DeckyState::Running)
            .with_ip("10.0.1.5")
            .with_last_error("exit 1");
        s.set_decky_runtime(rows.web, &runtime).unwrap();
        let web = detail(s, id)
            .deckies
            .into_iter()
            .find(|d| d.id == rows.web)
            .unwrap();
        assert_eq!(web.state, DeckyState::Running);
        assert_eq!(web.ip.as_deref(), Some("10.0.1.5"));
        assert_eq!(web.last_error.as_deref(), Some("exit 1"));

        // `None` leaves a field, `Some(None)` clears it.
        let partial = DeckyRuntime::new().clear_ip();
        s.set_decky_runtime(rows.web, &partial).unwrap();
        s.set_lan_network_id(rows.lan_a, None).unwrap();
        let d = detail(s, id);
        let web = d.deckies.iter().find(|d| d.id == rows.web).unwrap();
        assert_eq!(
            (web.state, web.ip.as_deref(), web.last_error.as_deref()),
            (DeckyState::Running, None, Some("exit 1"))
        );
        let db = d.deckies.iter().find(|d| d.id == rows.db).unwrap();
        assert_eq!((db.state, db.ip.as_deref()), (DeckyState::Pending, None));
        assert_eq!(
            d.lans
                .iter()
                .find(|l| l.id == rows.lan_a)
                .unwrap()
                .network_id,
            None
        );
        s.set_decky_runtime(
            rows.web,
            &DeckyRuntime::new().with_state(DeckyState::TeardownFailed),
        )
        .unwrap();
        assert_eq!(d.topology, before);
        assert_eq!(s.get_topology(id).unwrap(), before);
        assert_eq!(s.all_events(id).unwrap(), events);
    }
}

/// The suite's own fixture: [`seed`] makes exactly the rows it names.
pub fn seed_is_what_it_says<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let id = s.create_topology("lab").unwrap().id;
    let rows = seed(s, id);
    let d = detail(s, id);
    assert_eq!(d.lans.len(), 2);
    assert_eq!(d.deckies.len(), 2);
    assert_eq!(d.edges.len(), 1);
    assert_eq!((d.edges[0].decky, d.edges[0].lan), (rows.web, rows.lan_a));
}

/// Canvas positions must be finite (NaN and infinities do not survive every backend):
/// anything else is `Invalid` naming the coordinate, and nothing is written; extreme
/// finite values round-trip exactly.
pub fn canvas_coordinates_must_be_finite<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let v = version(s, id);
    let before = detail(s, id);
    let invalid = |e: StoreError, field: &str| {
        assert!(
            matches!(e, StoreError::Invalid { field: f, .. } if f == field),
            "{e:?}"
        );
    };
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut lan = NewLan::new("new", "10.0.0.0/24");
        lan.x = Some(bad);
        invalid(s.add_lan(id, lan, Some(v)).unwrap_err(), "lan x");
        let mut lan = NewLan::new("new", "10.0.0.0/24");
        lan.y = Some(bad);
        invalid(s.add_lan(id, lan, None).unwrap_err(), "lan y");
        let mut decky = NewDecky::new("new");
        decky.x = Some(bad);
        invalid(s.add_decky(id, decky, Some(v)).unwrap_err(), "decky x");
        let patch = LanPatch::new().with_x(Some(bad));
        invalid(
            s.update_lan(id, rows.lan_a, patch, Some(v)).unwrap_err(),
            "lan x",
        );
        let patch = DeckyPatch::new().with_y(Some(bad));
        invalid(
            s.update_decky(id, rows.web, patch, None).unwrap_err(),
            "decky y",
        );
    }
    assert_eq!(detail(s, id), before, "a refused coordinate was written");

    let mut lan = NewLan::new("far", "10.0.0.0/24");
    lan.x = Some(-1.5e300);
    lan.y = Some(f64::MAX);
    let far = s.add_lan(id, lan, Some(v)).unwrap().id;
    let mut decky = NewDecky::new("tiny");
    decky.x = Some(f64::MIN_POSITIVE);
    decky.y = Some(-2.5);
    let tiny = s.add_decky(id, decky, None).unwrap().id;
    let after = detail(s, id);
    let far = after.lans.iter().find(|l| l.id == far).unwrap();
    assert_eq!((far.x, far.y), (Some(-1.5e300), Some(f64::MAX)));
    let tiny = after.deckies.iter().find(|d| d.id == tiny).unwrap();
    assert_eq!((tiny.x, tiny.y), (Some(f64::MIN_POSITIVE), Some(-2.5)));
}

/// Finite coordinates read back bit for bit on every backend, except `-0.0`, which every
/// backend stores as `0.0` (SQLite cannot keep its sign): through adds and updates, single
/// edits and batches.
pub fn coordinates_read_back_bit_exact<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let values = [
        -0.0,
        0.0,
        -1.0,
        0.1,
        -2.5,
        1e-300,
        -5e-324,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        9_007_199_254_740_993.0,
        1e18,
        1e19,
        -9_223_372_036_854_775_808.0,
    ];
    let stored = |v: f64| if v == 0.0 { 0.0_f64 } else { v }.to_bits();
    let bits = |c: Option<f64>| c.map(f64::to_bits);
    for (i, &v) in values.iter().enumerate() {
        let w = values[(i + 1) % values.len()];
        let want = (Some(stored(v)), Some(stored(w)));
        // A batch adding a LAN and a decky.
        let mut lan = NewLan::new(format!("lan-{i}"), "10.0.0.0/24");
        (lan.x, lan.y) = (Some(v), Some(w));
        let mut decky = NewDecky::new(format!("decky-{i}"));
        (decky.x, decky.y) = (Some(v), Some(w));
        let report = s
            .edit(
                id,
                None,
                &[ChildEdit::AddLan(lan), ChildEdit::AddDecky(decky)],
            )
            .unwrap();
        let (Touched::Lan(lan), Touched::Decky(decky)) = (report.touched[0], report.touched[1])
        else {
            panic!("unexpected rows touched: {:?}", report.touched);
        };
        let after = detail(s, id);
        let l = after.lans.iter().find(|l| l.id == lan).unwrap();
        assert_eq!((bits(l.x), bits(l.y)), want, "lan added at ({v:?}, {w:?})");
        let d = after.deckies.iter().find(|d| d.id == decky).unwrap();
        assert_eq!(
            (bits(d.x), bits(d.y)),
            want,
            "decky added at ({v:?}, {w:?})"
        );

        // Single updates of the seeded rows, then a batch updating both.
        let lan_patch = LanPatch::new().with_x(Some(v)).with_y(Some(w));
        let decky_patch = DeckyPatch::new().with_x(Some(v)).with_y(Some(w));
        s.update_lan(id, rows.lan_b, lan_patch.clone(), None)
            .unwrap();
        s.update_decky(id, rows.db, decky_patch.clone(), None)
            .unwrap();
        let after = detail(s, id);
        let l = after.lans.iter().find(|l| l.id == rows.lan_b).unwrap();
        assert_eq!((bits(l.x), bits(l.y)), want, "lan moved to ({v:?}, {w:?})");
        let d = after.deckies.iter().find(|d| d.id == rows.db).unwrap();
        assert_eq!(
            (bits(d.x), bits(d.y)),
            want,
            "decky moved to ({v:?}, {w:?})"
        );
        s.edit(
            id,
            None,
            &[
                ChildEdit::UpdateLan(rows.lan_a.into(), lan_patch),
                ChildEdit::UpdateDecky(rows.web.into(), decky_patch),
            ],
        )
        .unwrap();
        let after = detail(s, id);
        let l = after.lans.iter().find(|l| l.id == rows.lan_a).unwrap();
        assert_eq!((bits(l.x), bits(l.y)), want, "lan moved in a batch");
        let d = after.deckies.iter().find(|d| d.id == rows.web).unwrap();
        assert_eq!((bits(d.x), bits(d.y)), want, "decky moved in a batch");
    }
}

/// No backend stores a NUL character in free text (PostgreSQL's `text` cannot), so every
/// backend refuses it the same way and writes nothing.
pub fn text_must_not_contain_nul<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let v = version(s, id);
    let before = detail(s, id);
    let invalid = |e: StoreError, field: &str| {
        assert!(
            matches!(e, StoreError::Invalid { field: f, .. } if f == field),
            "{e:?}"
        );
    };
    invalid(
        s.add_lan(id, NewLan::new("new", "10.0.0.0/24\0"), Some(v))
            .unwrap_err(),
        "subnet",
    );
    let mut decky = NewDecky::new("new");
    decky.config = Some(String::from("{\"a\":\"\0\"}"));
    invalid(s.add_decky(id, decky, None).unwrap_err(), "decky config");
    invalid(
        s.set_lan_network_id(rows.lan_a, Some("net\0")).unwrap_err(),
        "network id",
    );
    assert_eq!(detail(s, id), before, "refused text was written");
    assert_eq!(version(s, id), v);
}
