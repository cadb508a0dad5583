//! Topology rows: create, read, list, names, text limits, the typed layer, resync, delete,
//! version bounds.

use crate::pages::ListAll;
use topostate::store::{
    ChildEdit, Claim, DeckyRuntime, Entity, LanPatch, Lease, MAX_NAME_LEN, MAX_TEXT_LEN, NewDecky,
    NewEdge, NewLan, Precondition, StoreError, TypedStore,
};
use topostate::{MAX_VERSION, MutationOp, MutationState, TopologyStatus, VersionConflict, state};

use super::{
    ALL, Harness, assert_log_legal, detail, is_not_found, reach, seed, seeded, setup, version,
};

/// Create gives a `pending` row at version 1 with no event; get and list read it back;
/// list is by id and filters by status.
pub fn create_get_list<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    assert!(s.all_topologies(None).unwrap().is_empty());

    let a = s.create_topology("alpha").unwrap();
    let b = s.create_topology("bravo").unwrap();
    let c = s.create_topology("charlie").unwrap();
    assert_eq!(a.name, "alpha");
    assert_eq!(a.status, TopologyStatus::Pending);
    assert_eq!(a.version, 1);
    assert_eq!(a.reason, None);
    assert!(!a.needs_resync);
    assert_eq!(a.status_changed_at, a.created_at);
    assert!(a.id < b.id && b.id < c.id, "ids grow with creation order");
    assert_eq!(s.get_topology(a.id).unwrap(), a);
    assert!(s.all_events(a.id).unwrap().is_empty());
    assert!(s.all_mutations(a.id, None).unwrap().is_empty());

    let fresh = detail(s, b.id);
    assert_eq!(fresh.topology, b);
    assert!(fresh.lans.is_empty() && fresh.deckies.is_empty() && fresh.edges.is_empty());

    let all = s.all_topologies(None).unwrap();
    assert_eq!(all, vec![a.clone(), b.clone(), c.clone()]);

    s.transition_status(b.id, TopologyStatus::Deploying, None, Precondition::none())
        .unwrap();
    let pending: Vec<_> = s
        .all_topologies(Some(TopologyStatus::Pending))
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(pending, vec![a.id, c.id]);
    let deploying = s.all_topologies(Some(TopologyStatus::Deploying)).unwrap();
    assert_eq!(deploying.len(), 1);
    assert_eq!(deploying[0].id, b.id);
    assert_eq!(deploying[0].status, TopologyStatus::Deploying);
    assert!(
        s.all_topologies(Some(TopologyStatus::Active))
            .unwrap()
            .is_empty()
    );

    let missing = topostate::TopologyId::new(c.id.get() + 1000);
    let e = expect_err!(s.get_topology(missing), StoreError::NotFound { .. });
    assert!(is_not_found(&e, Entity::Topology, missing.get()), "{e:?}");
}

/// Topology names are unique store-wide; the refusal writes nothing.
pub fn duplicate_topology_name<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let lab = s.create_topology("lab").unwrap();
    let e = expect_err!(
        s.create_topology("lab"),
        StoreError::Duplicate {
            entity: Entity::Topology,
            ..
        }
    );
    assert!(matches!(e, StoreError::Duplicate { ref name, .. } if name == "lab"));
    assert_eq!(s.all_topologies(None).unwrap(), vec![lab]);
    // Names are compared exactly.
    s.create_topology("Lab").unwrap();
    s.create_topology("lab ").unwrap();
}

fn bad_names() -> Vec<String> {
    vec![
        String::new(),
        "   ".into(),
        "\t".into(),
        "x".repeat(MAX_NAME_LEN + 1),
        "a\nb".into(),
        "a\u{7}b".into(),
        "nul\0".into(),
        "\u{200b}".into(),
        "a\u{202e}b".into(),
        "\u{3000}".into(),
    ]
}

/// Empty, blank, over-long (256 bytes) and control-character names are `Invalid`
/// everywhere a name is written, and nothing is written.
pub fn invalid_names<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let ok = "x".repeat(MAX_NAME_LEN);
    for bad in bad_names() {
        expect_err!(s.create_topology(&bad), StoreError::Invalid { .. });
    }
    assert!(s.all_topologies(None).unwrap().is_empty());
    let id = s.create_topology(&ok).unwrap().id;
    let rows = seed(s, id);
    let v = version(s, id);
    let before = detail(s, id);
    for bad in bad_names() {
        expect_err!(
            s.add_lan(id, NewLan::new(bad.clone(), "10.0.0.0/24"), Some(v)),
            StoreError::Invalid { .. }
        );
        expect_err!(
            s.add_decky(id, NewDecky::new(bad.clone()), Some(v)),
            StoreError::Invalid { .. }
        );
        let rename = LanPatch::new().with_name(bad.clone());
        expect_err!(
            s.update_lan(id, rows.lan_a, rename, None),
            StoreError::Invalid { .. }
        );
        let rename = topostate::store::DeckyPatch::new().with_name(bad.clone());
        expect_err!(
            s.update_decky(id, rows.web, rename, Some(v)),
            StoreError::Invalid { .. }
        );
    }
    assert_eq!(detail(s, id), before);
    s.add_lan(id, NewLan::new(ok.clone(), "10.0.0.0/24"), None)
        .unwrap();
    s.add_decky(id, NewDecky::new(ok), None).unwrap();
}

/// Names show all they hold: every bidirectional control, other invisible characters, and
/// names made only of invisible characters or whitespace are `Invalid`, naming the field
/// and the first offending character as `U+XXXX`, for topologies, LANs and deckies, added
/// or renamed, alone or in a batch; nothing is written.
pub fn invisible_characters_in_names<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let bidi = [
        '\u{061c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
        '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
    ];
    let invisible = [
        '\u{ad}',
        '\u{34f}',
        '\u{115f}',
        '\u{180e}',
        '\u{200b}',
        '\u{200c}',
        '\u{200d}',
        '\u{2060}',
        '\u{2064}',
        '\u{3164}',
        '\u{fe0f}',
        '\u{feff}',
        '\u{e0041}',
        '\u{e0100}',
    ];
    let spaces = ['\u{a0}', '\u{2003}', '\u{2028}', '\u{2029}', '\u{3000}'];
    // (name, the character its error must name)
    let mut bad: Vec<(String, char)> = Vec::new();
    for c in bidi.iter().chain(&invisible).chain(&spaces) {
        bad.push((format!("lab{c}1"), *c));
    }
    for c in bidi.iter().chain(&invisible) {
        bad.push((c.to_string(), *c));
        bad.push((format!(" {c}{c} "), *c));
    }
    bad.push(("\u{200b}\u{200c}\u{200d}\u{2060}".into(), '\u{200b}'));
    let named = |e: StoreError, field: &str, c: char| {
        let code = format!("U+{:04X}", u32::from(c));
        assert!(
            matches!(&e, StoreError::Invalid { field: f, problem } if *f == field && problem.contains(&code)),
            "{field}: expected {code} named, got {e:?}"
        );
    };
    for (name, c) in &bad {
        named(s.create_topology(name).unwrap_err(), "topology name", *c);
    }
    // Only spaces, of any kind: blank.
    for blank in ["\u{a0}", "\u{3000}\u{2003}", " \u{2028} "] {
        let e = expect_err!(s.create_topology(blank), StoreError::Invalid { .. });
        assert!(e.to_string().contains("blank"), "{e}");
    }
    assert!(s.all_topologies(None).unwrap().is_empty());
    assert_eq!(
        s.create_topology("lab\u{202e}1").unwrap_err().to_string(),
        "invalid topology name: contains the bidirectional control U+202E, \
         which reorders how text is displayed"
    );

    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let before = detail(s, id);
    for (name, c) in &bad {
        let lan = NewLan::new(name.clone(), "10.0.0.0/24");
        named(
            s.add_lan(id, lan.clone(), None).unwrap_err(),
            "lan name",
            *c,
        );
        named(
            s.add_decky(id, NewDecky::new(name.clone()), None)
                .unwrap_err(),
            "decky name",
            *c,
        );
        let rename_lan = LanPatch::new().with_name(name.clone());
        named(
            s.update_lan(id, rows.lan_a, rename_lan.clone(), None)
                .unwrap_err(),
            "lan name",
            *c,
        );
        let rename_decky = topostate::store::DeckyPatch::new().with_name(name.clone());
        named(
            s.update_decky(id, rows.web, rename_decky.clone(), None)
                .unwrap_err(),
            "decky name",
            *c,
        );
        let fine = NewLan::new("fine", "10.9.0.0/24");
        for edit in [
            ChildEdit::AddLan(lan),
            ChildEdit::AddDecky(NewDecky::new(name.clone())),
            ChildEdit::UpdateLan(rows.lan_b.into(), rename_lan),
            ChildEdit::UpdateDecky(rows.db.into(), rename_decky),
        ] {
            let field = match &edit {
                ChildEdit::AddLan(_) | ChildEdit::UpdateLan(..) => "lan name",
                _ => "decky name",
            };
            let batch = [ChildEdit::AddLan(fine.clone()), edit];
            named(s.edit(id, None, &batch).unwrap_err(), field, *c);
        }
    }
    assert_eq!(detail(s, id), before, "a refused name was written");
}

/// Names are compared, stored and returned in NFC: "café" typed with a combining accent
/// (NFD) is the same name as with "é" (NFC), a duplicate of it for topologies, LANs and
/// deckies, added or renamed, alone or in a batch, in either order; what is read back is
/// the NFC form.
pub fn names_compare_in_nfc<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let nfc = "caf\u{e9}";
    let nfd = "cafe\u{301}";
    let dup = |e: StoreError, entity: Entity| {
        assert!(
            matches!(&e, StoreError::Duplicate { entity: en, name } if *en == entity && name == nfc),
            "expected a duplicate {entity:?} named {nfc:?}, got {e:?}"
        );
    };

    let created = s.create_topology(nfd).unwrap();
    assert_eq!(created.name, nfc);
    assert_eq!(s.get_topology(created.id).unwrap().name, nfc);
    dup(s.create_topology(nfc).unwrap_err(), Entity::Topology);
    dup(s.create_topology(nfd).unwrap_err(), Entity::Topology);
    let other = s.create_topology("Zo\u{308}e").unwrap();
    assert_eq!(other.name, "Z\u{f6}e");
    expect_err!(
        s.create_topology("Z\u{f6}e"),
        StoreError::Duplicate { name, .. } if name == "Z\u{f6}e"
    );

    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let lan = s
        .add_lan(id, NewLan::new(nfd, "10.0.0.0/24"), None)
        .unwrap()
        .id;
    let decky = s.add_decky(id, NewDecky::new(nfc), None).unwrap().id;
    let after = detail(s, id);
    assert_eq!(after.lans.iter().find(|l| l.id == lan).unwrap().name, nfc);
    assert_eq!(
        after.deckies.iter().find(|d| d.id == decky).unwrap().name,
        nfc
    );
    let before = detail(s, id);
    dup(
        s.add_lan(id, NewLan::new(nfc, "10.0.0.0/24"), None)
            .unwrap_err(),
        Entity::Lan,
    );
    dup(
        s.add_decky(id, NewDecky::new(nfd), None).unwrap_err(),
        Entity::Decky,
    );
    let rename_lan = LanPatch::new().with_name(nfc);
    let rename_decky = topostate::store::DeckyPatch::new().with_name(nfd);
    dup(
        s.update_lan(id, rows.lan_a, rename_lan.clone(), None)
            .unwrap_err(),
        Entity::Lan,
    );
    dup(
        s.update_decky(id, rows.web, rename_decky.clone(), None)
            .unwrap_err(),
        Entity::Decky,
    );
    // In one batch, either spelling first.
    let (id2, rows2) = seeded(s, "lab-2", TopologyStatus::Pending);
    let before2 = detail(s, id2);
    for (first, second) in [(nfc, nfd), (nfd, nfc)] {
        dup(
            s.edit(
                id2,
                None,
                &[
                    ChildEdit::AddLan(NewLan::new(first, "10.0.0.0/24")),
                    ChildEdit::AddLan(NewLan::new(second, "10.0.0.0/24")),
                ],
            )
            .unwrap_err(),
            Entity::Lan,
        );
        dup(
            s.edit(
                id2,
                None,
                &[
                    ChildEdit::AddDecky(NewDecky::new(first)),
                    ChildEdit::UpdateDecky(
                        rows2.db.into(),
                        topostate::store::DeckyPatch::new().with_name(second),
                    ),
                ],
            )
            .unwrap_err(),
            Entity::Decky,
        );
    }
    assert_eq!(detail(s, id2), before2, "a refused batch wrote something");
    assert_eq!(detail(s, id), before, "a duplicate was written");

    // Renaming a row to another spelling of its own name changes nothing.
    let renamed = LanPatch::new().with_name(nfd);
    s.update_lan(id, lan, renamed, None).unwrap();
    s.edit(
        id,
        None,
        &[ChildEdit::UpdateLan(rows.lan_b.into(), rename_lan)],
    )
    .unwrap_err();
    assert_eq!(detail(s, id).lans, before.lans);
}

/// Free text longer than `MAX_TEXT_LEN` (reasons, payloads, subnets, configs, runtime
/// fields) is `Invalid` and nothing is written; exactly `MAX_TEXT_LEN` is accepted.
pub fn text_limits<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let long = "r".repeat(MAX_TEXT_LEN + 1);
    let max = "r".repeat(MAX_TEXT_LEN);

    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    let before = detail(s, id);
    expect_err!(
        s.add_lan(
            id,
            NewLan::new("c", long.clone()),
            Some(before.topology.version)
        ),
        StoreError::Invalid { .. }
    );
    let mut decky = NewDecky::new("cfg");
    decky.config = Some(long.clone());
    expect_err!(s.add_decky(id, decky, None), StoreError::Invalid { .. });
    expect_err!(
        s.set_lan_network_id(rows.lan_a, Some(long.as_str())),
        StoreError::Invalid { .. }
    );
    let runtime = DeckyRuntime::new().with_last_error(long.clone());
    expect_err!(
        s.set_decky_runtime(rows.web, &runtime),
        StoreError::Invalid { .. }
    );
    s.transition_status(id, TopologyStatus::Deploying, None, Precondition::none())
        .unwrap();
    let events = s.all_events(id).unwrap();
    expect_err!(
        s.transition_status(
            id,
            TopologyStatus::Failed,
            Some(long.as_str()),
            Precondition::none()
        ),
        StoreError::Invalid { .. }
    );
    let mut after = detail(s, id);
    assert_eq!(after.topology.status, TopologyStatus::Deploying);
    assert_eq!(s.all_events(id).unwrap(), events);
    after.topology.status = before.topology.status;
    after.topology.status_changed_at = before.topology.status_changed_at;
    assert_eq!(after, before, "a refused write changed something");

    // Exactly the limit is fine.
    let done = s
        .transition_status(
            id,
            TopologyStatus::Active,
            Some(max.as_str()),
            Precondition::none(),
        )
        .unwrap();
    assert_eq!(done.topology.reason.as_deref(), Some(max.as_str()));

    let v = version(s, id);
    expect_err!(
        s.enqueue_mutation(id, MutationOp::AddLan, &long, Some(v)),
        StoreError::Invalid { .. }
    );
    assert!(s.all_mutations(id, None).unwrap().is_empty());
    assert_eq!(version(s, id), v, "a refused enqueue bumped the version");
    s.enqueue_mutation(id, MutationOp::AddLan, &max, None)
        .unwrap();
    let Claim::Claimed { lease: claim, .. } = s.claim_next_mutation(id).unwrap() else {
        panic!("nothing to claim");
    };
    let again = Lease::from_parts(claim.id(), claim.topology_id(), claim.token());
    expect_err!(
        s.mark_mutation_failed(claim, &long),
        StoreError::Invalid { .. }
    );
    let m = s.all_mutations(id, None).unwrap();
    assert_eq!(m[0].state, MutationState::Applying, "refused mark wrote");
    let failed = s.mark_mutation_failed(again, &max).unwrap();
    assert_eq!(failed.reason.as_deref(), Some(max.as_str()));
}

/// The typed layer through the whole lifecycle: create, edit, load, `load_as`, advance,
/// enqueue; events newest first, forming a legal path from `pending`.
pub fn typed_lifecycle<H: Harness>() {
    use TopologyStatus::*;
    let (_h, s) = setup::<H>();
    let s = &*s;
    let mut lab = s.create("lab").unwrap();
    assert_eq!(lab.version(), 1);
    assert_eq!(lab.value().name(), "lab");
    let id = lab.id();
    let report = s
        .edit_pending(
            &mut lab,
            &[topostate::store::ChildEdit::AddLan(NewLan::new(
                "dmz",
                "10.0.0.0/24",
            ))],
        )
        .unwrap();
    assert_eq!((report.version, lab.version()), (2, 2));

    let any = s.load(id).unwrap();
    assert_eq!((any.value().status(), any.version()), (Pending, 2));
    expect_err!(
        s.load_as::<state::Active>(id),
        StoreError::StaleStatus {
            expected: Active,
            found: Pending
        }
    );
    let loaded = s.load_as::<state::Pending>(id).unwrap();
    assert_eq!(loaded.version(), 2);

    let lab = s.advance(lab, topostate::Topology::deploy).unwrap();
    assert_eq!(lab.version(), 2, "a transition does not bump the version");
    let mut lab = s.advance(lab, topostate::Topology::activate).unwrap();
    let _queued = s.enqueue(&mut lab, MutationOp::AddLan, "{}").unwrap();
    assert_eq!(lab.version(), 3, "the handle took the bumped version");
    let lab = s.advance(lab, |t| t.degrade("decky-3 exited")).unwrap();
    assert_eq!(lab.value().reason(), Some("decky-3 exited"));
    let stored = s.get_topology(id).unwrap();
    assert_eq!(
        (stored.status, stored.reason.as_deref()),
        (Degraded, Some("decky-3 exited"))
    );
    let lab = s.advance(lab, topostate::Topology::recover).unwrap();
    assert_eq!(s.get_topology(id).unwrap().reason, None);
    let lab = s.advance(lab, topostate::Topology::tear_down).unwrap();
    let lab = s
        .advance(lab, topostate::Topology::finish_teardown)
        .unwrap();
    assert_eq!(lab.value().status(), TornDown);
    assert_eq!(s.get_topology(id).unwrap().status, TornDown);

    let events = assert_log_legal(s, id);
    let oldest_first: Vec<_> = events.iter().rev().map(|e| (e.from, e.to)).collect();
    assert_eq!(
        oldest_first,
        vec![
            (Pending, Deploying),
            (Deploying, Active),
            (Active, Degraded),
            (Degraded, Active),
            (Active, TearingDown),
            (TearingDown, TornDown)
        ]
    );
    let reasons: Vec<_> = events.iter().rev().map(|e| e.reason.as_deref()).collect();
    assert_eq!(
        reasons,
        vec![None, None, Some("decky-3 exited"), None, None, None]
    );
}

/// A typed handle is a claim checked at the next write: once another editor moved or
/// edited the topology, the handle's write fails and changes nothing.
pub fn typed_handles_are_claims_checked_at_the_next_write<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let id = s.create("lab").unwrap().id();
    let mine = s.load_as::<state::Pending>(id).unwrap();
    let theirs = s.load_as::<state::Pending>(id).unwrap();

    // They edit: my deploy would deploy something I have not seen.
    let mut theirs = theirs;
    s.edit_pending(
        &mut theirs,
        &[topostate::store::ChildEdit::AddLan(NewLan::new(
            "x",
            "10.0.0.0/24",
        ))],
    )
    .unwrap();
    let mut stale = s.load_as::<state::Pending>(id).unwrap();
    stale.observe(1);
    expect_err!(
        s.edit_pending(
            &mut stale,
            &[topostate::store::ChildEdit::AddLan(NewLan::new(
                "y",
                "10.0.0.0/24"
            ))]
        ),
        StoreError::VersionConflict(VersionConflict {
            current: 2,
            expected: 1
        })
    );
    assert_eq!(stale.version(), 1, "the handle keeps its version on error");
    expect_err!(
        s.advance(mine, topostate::Topology::deploy),
        StoreError::VersionConflict(VersionConflict {
            current: 2,
            expected: 1
        })
    );
    assert_eq!(s.get_topology(id).unwrap().status, TopologyStatus::Pending);

    // They deploy: my discard is refused as stale.
    let mine = s.load_as::<state::Pending>(id).unwrap();
    let _deployed = s.advance(theirs, topostate::Topology::deploy).unwrap();
    expect_err!(
        s.advance(mine, topostate::Topology::discard),
        StoreError::StaleStatus {
            expected: TopologyStatus::Pending,
            found: TopologyStatus::Deploying
        }
    );
    assert_eq!(
        s.get_topology(id).unwrap().status,
        TopologyStatus::Deploying
    );
    assert_eq!(assert_log_legal(s, id).len(), 1);
}

/// The resync flag is set and cleared in any status without a version bump, a status
/// change or an event.
pub fn needs_resync_is_independent<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    for status in ALL {
        let t = reach(s, &format!("t-{status}"), status);
        let events = s.all_events(t.id).unwrap();
        s.set_needs_resync(t.id, true).unwrap();
        let after = s.get_topology(t.id).unwrap();
        assert!(after.needs_resync);
        assert_eq!((after.status, after.version), (t.status, t.version));
        assert!(
            s.all_topologies(Some(status))
                .unwrap()
                .iter()
                .any(|r| r.id == t.id && r.needs_resync)
        );
        s.set_needs_resync(t.id, true).unwrap();
        s.set_needs_resync(t.id, false).unwrap();
        let after = s.get_topology(t.id).unwrap();
        assert!(!after.needs_resync);
        assert_eq!(after.version, t.version);
        assert_eq!(s.all_events(t.id).unwrap(), events);
    }
}

/// Delete removes the topology and every child row (LANs, deckies, edges, events,
/// mutations) and frees the name, only from `pending`, `torn_down` and `failed`; an
/// expected version is checked.
pub fn delete_cascades_from_deletable_statuses_only<H: Harness>() {
    use TopologyStatus::*;
    let (_h, s) = setup::<H>();
    let s = &*s;
    let (neighbour, neighbour_rows) = seeded(s, "neighbour", Pending);
    let neighbour_before = detail(s, neighbour);

    for status in [Deploying, Active, Degraded, TearingDown] {
        let (id, _) = seeded(s, &format!("busy-{status}"), status);
        let before = detail(s, id);
        let v = before.topology.version;
        for expected in [None, Some(v), Some(v + 1)] {
            let e = expect_err!(s.delete_topology(id, expected), StoreError::NotEditable(_));
            assert!(matches!(e, StoreError::NotEditable(ref n) if n.status == status));
        }
        assert_eq!(detail(s, id), before);
    }

    for status in [Pending, Failed, TornDown] {
        let name = format!("doomed-{status}");
        let id = s.create_topology(&name).unwrap().id;
        let rows = seed(s, id);
        let mut mutation_count = 0;
        if status == TornDown {
            // Give it mutations and events on the way down.
            move_to_active_with_mutations(s, id);
            mutation_count = 2;
            for step in [TearingDown, TornDown] {
                s.transition_status(id, step, None, Precondition::none())
                    .unwrap();
            }
        } else {
            super::move_to(s, id, status);
        }
        assert_eq!(s.all_mutations(id, None).unwrap().len(), mutation_count);
        let v = version(s, id);
        let before = detail(s, id);
        expect_err!(
            s.delete_topology(id, Some(v + 1)),
            StoreError::VersionConflict(VersionConflict { current, expected })
                if *current == v && *expected == v + 1
        );
        assert_eq!(detail(s, id), before, "a refused delete removed something");
        s.delete_topology(id, Some(v)).unwrap();

        for e in [
            s.get_topology(id).err(),
            s.topology_detail(id).err(),
            s.all_events(id).err(),
            s.all_mutations(id, None).err(),
            s.delete_topology(id, None).err(),
            s.set_needs_resync(id, true).err(),
        ] {
            let e = e.expect("a deleted topology is still readable");
            assert!(is_not_found(&e, Entity::Topology, id.get()), "{e:?}");
        }
        assert!(s.all_topologies(None).unwrap().iter().all(|t| t.id != id));
        let e = expect_err!(
            s.set_lan_network_id(rows.lan_a, Some("net")),
            StoreError::NotFound { .. }
        );
        assert!(is_not_found(&e, Entity::Lan, rows.lan_a.get()), "{e:?}");
        let e = expect_err!(
            s.set_decky_runtime(rows.web, &DeckyRuntime::default()),
            StoreError::NotFound { .. }
        );
        assert!(is_not_found(&e, Entity::Decky, rows.web.get()), "{e:?}");
        // The children are gone, not moved: another topology cannot reach them.
        for (edge, entity, child) in [
            (
                NewEdge::new(rows.web, neighbour_rows.lan_b),
                Entity::Decky,
                rows.web.get(),
            ),
            (
                NewEdge::new(neighbour_rows.db, rows.lan_a),
                Entity::Lan,
                rows.lan_a.get(),
            ),
        ] {
            let e = expect_err!(
                s.add_edge(neighbour, edge, None),
                StoreError::NotFound { .. }
            );
            assert!(is_not_found(&e, entity, child), "{e:?}");
        }

        // The name is free again, for an empty topology.
        let again = s.create_topology(&name).unwrap();
        assert_ne!(again.id, id);
        let fresh = detail(s, again.id);
        assert!(fresh.lans.is_empty() && fresh.deckies.is_empty() && fresh.edges.is_empty());
        assert!(s.all_events(again.id).unwrap().is_empty());
        assert!(s.all_mutations(again.id, None).unwrap().is_empty());
    }
    assert_eq!(detail(s, neighbour), neighbour_before);
    // Without a version, delete is unchecked.
    let plain = s.create_topology("plain").unwrap().id;
    s.add_lan(plain, NewLan::new("a", "10.0.0.0/24"), Some(1))
        .unwrap();
    s.delete_topology(plain, None).unwrap();
}

/// Moves a `pending` topology to `active` and leaves one applied and one pending
/// mutation.
fn move_to_active_with_mutations(
    s: &dyn topostate::store::TopologyStore,
    id: topostate::TopologyId,
) {
    super::move_to(s, id, TopologyStatus::Active);
    s.enqueue_mutation(id, MutationOp::AddLan, "{\"n\":1}", None)
        .unwrap();
    s.enqueue_mutation(id, MutationOp::AddLan, "{\"n\":2}", None)
        .unwrap();
    let Claim::Claimed { lease: claim, .. } = s.claim_next_mutation(id).unwrap() else {
        panic!("nothing to claim");
    };
    s.mark_mutation_applied(claim).unwrap();
}

/// At `MAX_VERSION` a versioned write is `VersionOverflow` and writes nothing;
/// `MAX_VERSION - 1` bumps to the maximum.
pub fn version_overflow<H: Harness>() {
    let (h, s) = setup::<H>();
    let s = &*s;
    let (id, rows) = seeded(s, "lab", TopologyStatus::Pending);
    h.force_version(id, MAX_VERSION);
    assert_eq!(version(s, id), MAX_VERSION);
    let before = detail(s, id);
    expect_err!(
        s.add_lan(id, NewLan::new("new", "10.0.0.0/24"), Some(MAX_VERSION)),
        StoreError::VersionOverflow(o) if o.current == MAX_VERSION
    );
    expect_err!(
        s.edit(id, Some(MAX_VERSION), &super::add_lans("n", 3)),
        StoreError::VersionOverflow(_)
    );
    expect_err!(
        s.delete_lan(id, rows.lan_b, Some(MAX_VERSION)),
        StoreError::VersionOverflow(_)
    );
    // A duplicate is reported before the overflow; a stale version before both.
    expect_err!(
        s.add_lan(id, NewLan::new("lan-a", "10.0.0.0/24"), Some(MAX_VERSION)),
        StoreError::Duplicate { .. }
    );
    expect_err!(
        s.add_lan(
            id,
            NewLan::new("lan-a", "10.0.0.0/24"),
            Some(MAX_VERSION - 1)
        ),
        StoreError::VersionConflict(_)
    );
    assert_eq!(
        detail(s, id),
        before,
        "a refused write at the maximum wrote"
    );
    // Writes that bump nothing still work at the maximum.
    let noop = s
        .update_lan(id, rows.lan_a, LanPatch::default(), Some(MAX_VERSION))
        .unwrap();
    assert_eq!(noop.version, MAX_VERSION);
    let unchecked = s
        .add_lan(id, NewLan::new("unchecked", "10.0.0.0/24"), None)
        .unwrap();
    assert_eq!(unchecked.version, MAX_VERSION);
    let moved = s
        .transition_status(
            id,
            TopologyStatus::Deploying,
            None,
            Precondition::status(TopologyStatus::Pending).and_version(MAX_VERSION),
        )
        .unwrap();
    assert_eq!(moved.topology.version, MAX_VERSION);
    s.transition_status(id, TopologyStatus::Active, None, Precondition::none())
        .unwrap();
    expect_err!(
        s.enqueue_mutation(id, MutationOp::AddLan, "{}", Some(MAX_VERSION)),
        StoreError::VersionOverflow(_)
    );
    assert!(s.all_mutations(id, None).unwrap().is_empty());
    s.enqueue_mutation(id, MutationOp::AddLan, "{}", None)
        .unwrap();

    let other = s.create_topology("other").unwrap().id;
    h.force_version(other, MAX_VERSION - 1);
    let last = s
        .add_lan(
            other,
            NewLan::new("last", "10.0.0.0/24"),
            Some(MAX_VERSION - 1),
        )
        .unwrap();
    assert_eq!(last.version, MAX_VERSION);
    assert_eq!(version(s, other), MAX_VERSION);
    expect_err!(
        s.add_lan(other, NewLan::new("past", "10.0.0.0/24"), Some(MAX_VERSION)),
        StoreError::VersionOverflow(_)
    );
    assert_eq!(detail(s, other).lans.len(), 1);
}

/// Two handles see the same data.
pub fn handles_share_data<H: Harness>() {
    let h = H::new();
    let one = h.handle();
    let two = h.handle();
    let id = one.create_topology("lab").unwrap().id;
    let lan = two
        .add_lan(id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
        .unwrap();
    assert_eq!(version(&*one, id), 2);
    one.set_lan_network_id(lan.id, Some("net-1")).unwrap();
    assert_eq!(
        detail(&*two, id).lans[0].network_id.as_deref(),
        Some("net-1")
    );
    expect_err!(two.create_topology("lab"), StoreError::Duplicate { .. });
    let mut decky = NewDecky::new("web");
    decky.services = vec!["ssh".into(), "http".into()];
    decky.config = Some("{\"archetype\":\"linux\"}".into());
    decky.x = Some(1.5);
    let web = one.add_decky(id, decky.clone(), None).unwrap().id;
    let stored = detail(&*two, id).deckies;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, web);
    assert_eq!(stored[0].topology_id, id);
    assert_eq!(stored[0].services, decky.services);
    assert_eq!(stored[0].config, decky.config);
    assert_eq!((stored[0].x, stored[0].y), (Some(1.5), None));
    assert_eq!(stored[0].state, topostate::store::DeckyState::Pending);
}
