//! What the SQL backends' own test files share: checks that run the same way on SQLite and
//! on PostgreSQL but need the backend's raw connection (to corrupt a row on purpose), and
//! the multi-process harness (children of the test binary racing on one database).
//!
//! A backend's test file declares `mod sql_backends;` and calls these from its own
//! `#[test]`s, giving what differs: how to run a raw statement, which corrupt values its
//! column types can hold, where the database is.
#![allow(dead_code)]

pub mod processes;

use crate::pages::ListAll;
use topostate::store::{
    ChildEdit, Claim, DeckyId, DeckyPatch, DeckyRuntime, DeckyState, Entity, LanId, LanPatch,
    Lease, MutationId, NewDecky, NewEdge, NewLan, Precondition, StoreError, Timestamp,
    TopologyStore,
};
use topostate::{MutationOp, MutationState, TopologyId, TopologyStatus};

/// A stored id as the SQL integer it is.
pub fn key(id: u64) -> i64 {
    i64::try_from(id).unwrap()
}

/// Runs one statement on a raw connection that may write what the schema's `CHECK`s
/// refuse; `$1` in it is the given id.
pub type Corrupt<'a> = dyn FnMut(&str, i64) + 'a;

/// Asserts a [`StoreError::Corrupt`] naming `table`, `row` and every one of `mentions`.
pub fn assert_corrupt(
    result: Result<impl std::fmt::Debug, StoreError>,
    table: &str,
    row: i64,
    mentions: &[&str],
) {
    match result {
        Err(e @ StoreError::Corrupt { .. }) => {
            let StoreError::Corrupt {
                table: t, row: r, ..
            } = &e
            else {
                unreachable!()
            };
            let message = e.to_string();
            assert_eq!(*t, table, "{message}");
            assert_eq!(*r, row.to_string(), "{message}");
            for m in mentions {
                assert!(message.contains(m), "{message:?} does not mention {m:?}");
            }
        }
        other => panic!("expected a corrupt row in {table} (id {row}), got {other:?}"),
    }
}

// ---- ids -------------------------------------------------------------------------------

/// A deleted topology's id is never handed out again.
pub fn ids_are_never_reused(store: &dyn TopologyStore) {
    let first = store.create_topology("a").unwrap();
    store.delete_topology(first.id, None).unwrap();
    let second = store.create_topology("a").unwrap();
    assert!(
        second.id > first.id,
        "{:?} reused {:?}",
        second.id,
        first.id
    );
    assert!(matches!(
        store.get_topology(first.id),
        Err(StoreError::NotFound {
            entity: Entity::Topology,
            ..
        })
    ));
}

/// Ids above SQL's integers are not found, whatever the call.
pub fn ids_beyond_sql_integers_are_not_found(store: &dyn TopologyStore) {
    let lab = store.create_topology("lab").unwrap();
    let huge = TopologyId::new(u64::MAX);
    assert!(matches!(
        store.get_topology(huge),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.update_lan(lab.id, LanId::new(u64::MAX), LanPatch::default(), None),
        Err(StoreError::NotFound {
            entity: Entity::Lan,
            id: u64::MAX
        })
    ));
    assert!(matches!(
        store.mark_mutation_applied(Lease::from_parts(MutationId::new(u64::MAX), lab.id, 1)),
        Err(StoreError::NotFound {
            entity: Entity::Mutation,
            ..
        })
    ));
    assert!(matches!(
        store.set_needs_resync(huge, true),
        Err(StoreError::NotFound { .. })
    ));
}

// ---- corrupt rows ----------------------------------------------------------------------

/// A topology with an unknown status fails every read and write of it, and every list,
/// naming the row; other rows read and write as usual.
pub fn corrupt_status_is_named(store: &dyn TopologyStore, corrupt: &mut Corrupt<'_>) {
    let good = store.create_topology("good").unwrap();
    let bad = store.create_topology("bad").unwrap();
    let later = store.create_topology("later").unwrap();
    let id = key(bad.id.get());
    corrupt(
        "UPDATE topologies SET status = 'exploded' WHERE id = $1",
        id,
    );
    assert_corrupt(
        store.get_topology(bad.id),
        "topologies",
        id,
        &["status", "'exploded'"],
    );
    assert_corrupt(
        store.topology_detail(bad.id),
        "topologies",
        id,
        &["exploded"],
    );
    assert_corrupt(
        store.transition_status(
            bad.id,
            TopologyStatus::Deploying,
            None,
            Precondition::none(),
        ),
        "topologies",
        id,
        &["exploded"],
    );
    assert_corrupt(
        store.add_lan(bad.id, NewLan::new("dmz", "10.0.0.0/24"), None),
        "topologies",
        id,
        &["exploded"],
    );
    // Lists meet the row and fail naming it, filtered or not; nothing is skipped silently.
    assert_corrupt(store.all_topologies(None), "topologies", id, &["exploded"]);
    assert_corrupt(
        store.all_topologies(Some(TopologyStatus::Pending)),
        "topologies",
        id,
        &["exploded"],
    );
    // Other rows read and write as usual.
    assert_eq!(store.get_topology(good.id).unwrap().name, "good");
    assert_eq!(store.get_topology(later.id).unwrap().name, "later");
    store
        .add_lan(good.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
        .unwrap();
    corrupt("DELETE FROM topologies WHERE id = $1", id);
}

/// Each `(value, mention)`: a topology whose version is `value` (SQL text) fails reads,
/// versioned writes and lists with a message holding `mention`.
pub fn corrupt_versions_are_named(
    store: &dyn TopologyStore,
    corrupt: &mut Corrupt<'_>,
    values: &[(&str, &str)],
) {
    let good = store.create_topology("good version").unwrap();
    for (value, mention) in values {
        let bad = store.create_topology(&format!("bad {value}")).unwrap();
        let id = key(bad.id.get());
        corrupt(
            &format!("UPDATE topologies SET version = {value} WHERE id = $1"),
            id,
        );
        assert_corrupt(
            store.get_topology(bad.id),
            "topologies",
            id,
            &["version", mention],
        );
        assert_corrupt(
            store.add_lan(bad.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1)),
            "topologies",
            id,
            &[mention],
        );
        assert_corrupt(store.all_topologies(None), "topologies", id, &[mention]);
        assert_eq!(store.get_topology(good.id).unwrap().version, 1);
        corrupt("DELETE FROM topologies WHERE id = $1", id);
    }
    assert!(store.get_topology(good.id).is_ok());
}

/// An event with an unknown status fails its topology's event list only.
pub fn corrupt_event_is_named(store: &dyn TopologyStore, corrupt: &mut Corrupt<'_>) {
    let lab = store.create_topology("events").unwrap();
    let other = store.create_topology("other events").unwrap();
    let first = store
        .transition_status(
            lab.id,
            TopologyStatus::Deploying,
            None,
            Precondition::none(),
        )
        .unwrap()
        .event;
    store
        .transition_status(lab.id, TopologyStatus::Active, None, Precondition::none())
        .unwrap();
    store
        .transition_status(
            other.id,
            TopologyStatus::Deploying,
            None,
            Precondition::none(),
        )
        .unwrap();
    corrupt(
        "UPDATE status_events SET to_status = 'on_fire' WHERE id = $1",
        key(first.id.get()),
    );
    assert_corrupt(
        store.all_events(lab.id),
        "status_events",
        key(first.id.get()),
        &["to_status", "'on_fire'"],
    );
    assert_eq!(store.all_events(other.id).unwrap().len(), 1);
    // The topology row itself is fine.
    assert_eq!(
        store.get_topology(lab.id).unwrap().status,
        TopologyStatus::Active
    );
}

/// A mutation with an unknown op or state fails the lists, and a claim reaching it refuses
/// it rather than skipping it, claiming nothing.
pub fn corrupt_mutation_is_named(store: &dyn TopologyStore, corrupt: &mut Corrupt<'_>) {
    let lab = store.create_topology("queue").unwrap();
    for step in [TopologyStatus::Deploying, TopologyStatus::Active] {
        store
            .transition_status(lab.id, step, None, Precondition::none())
            .unwrap();
    }
    let first = store
        .enqueue_mutation(lab.id, MutationOp::AddLan, "{}", None)
        .unwrap();
    let second = store
        .enqueue_mutation(lab.id, MutationOp::AddDecky, "{}", None)
        .unwrap();
    let id = key(first.id.get());
    corrupt("UPDATE mutations SET op = 'noop' WHERE id = $1", id);
    assert_corrupt(
        store.all_mutations(lab.id, None),
        "mutations",
        id,
        &["op", "'noop'"],
    );
    assert_corrupt(
        store.claim_next_mutation(lab.id),
        "mutations",
        id,
        &["noop"],
    );
    // Nothing was claimed by that failed attempt.
    corrupt("UPDATE mutations SET op = 'add_lan' WHERE id = $1", id);
    let listed = store.all_mutations(lab.id, None).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, second.id);
    assert!(listed.iter().all(|m| m.state == MutationState::Pending));

    let id = key(second.id.get());
    corrupt("UPDATE mutations SET state = 'half_done' WHERE id = $1", id);
    assert_corrupt(
        store.all_mutations(lab.id, Some(MutationState::Pending)),
        "mutations",
        id,
        &["state", "'half_done'"],
    );
    corrupt("UPDATE mutations SET state = 'pending' WHERE id = $1", id);
    let pending = store
        .all_mutations(lab.id, Some(MutationState::Pending))
        .unwrap();
    assert_eq!(pending.len(), 2);

    // A fenced write (a mark, a renewal, a release) reaching a corrupt row refuses it and
    // writes nothing either.
    let Claim::Claimed { lease, .. } = store.claim_next_mutation(lab.id).unwrap() else {
        panic!("the first mutation is claimable again")
    };
    let (claimed, token) = (lease.id(), lease.token());
    let id = key(claimed.get());
    corrupt("UPDATE mutations SET op = 'noop' WHERE id = $1", id);
    assert_corrupt(
        store.mark_mutation_applied(lease),
        "mutations",
        id,
        &["noop"],
    );
    let again = || Lease::from_parts(claimed, lab.id, token);
    assert_corrupt(
        store.mark_mutation_failed(again(), "gave up"),
        "mutations",
        id,
        &["noop"],
    );
    assert_corrupt(
        store.renew_lease(&again(), std::time::Duration::from_secs(5)),
        "mutations",
        id,
        &["noop"],
    );
    assert_corrupt(store.release_mutation(again()), "mutations", id, &["noop"]);
    corrupt("UPDATE mutations SET op = 'add_lan' WHERE id = $1", id);
    let listed = store.all_mutations(lab.id, None).unwrap();
    let row = listed.iter().find(|m| m.id == claimed).unwrap();
    assert_eq!(
        (row.state, row.token, row.applied_at, row.reason.as_deref()),
        (MutationState::Applying, token, None, None)
    );
    store.mark_mutation_applied(again()).unwrap();
}

/// A decky with an unknown state, then with `services_sql` (SQL the backend stores but no
/// service list reads back as), fails its topology's detail naming the row and `mentions`.
pub fn corrupt_decky_is_named(
    store: &dyn TopologyStore,
    corrupt: &mut Corrupt<'_>,
    services_sql: &str,
    mentions: &[&str],
) {
    let lab = store.create_topology("deckies").unwrap();
    let web = store.add_decky(lab.id, NewDecky::new("web"), None).unwrap();
    let id = key(web.id.get());
    corrupt("UPDATE deckies SET state = 'stopped' WHERE id = $1", id);
    assert_corrupt(
        store.topology_detail(lab.id),
        "deckies",
        id,
        &["state", "'stopped'"],
    );
    corrupt(
        &format!("UPDATE deckies SET state = 'running', services = {services_sql} WHERE id = $1"),
        id,
    );
    assert_corrupt(store.topology_detail(lab.id), "deckies", id, mentions);
}

// ---- the schema's stamp ----------------------------------------------------------------

/// A schema whose fingerprint (`original`, as stored) is changed to another declaration's
/// (a status added) is refused on opening, naming both fingerprints and `place`; restored,
/// it opens again with its one topology. `set_fingerprint` writes the stored fingerprint,
/// `open` opens a store on the database.
pub fn a_different_declaration_is_refused<S: TopologyStore>(
    original: &str,
    set_fingerprint: &mut dyn FnMut(&str),
    open: impl Fn() -> Result<S, StoreError>,
    place: &str,
) {
    assert!(
        original.contains(
            "topology status: pending,deploying,active,degraded,failed,tearing_down,torn_down"
        ),
        "{original}"
    );
    let tampered = original.replace("tearing_down,torn_down", "tearing_down,torn_down,archived");
    set_fingerprint(&tampered);
    let e = open().err().expect("a tampered fingerprint was accepted");
    let message = e.to_string();
    assert!(
        matches!(e, StoreError::Corrupt { table: "meta", .. }),
        "{e:?}"
    );
    assert!(message.contains("fingerprint mismatch"), "{message}");
    assert!(
        message.contains(&format!("expected '{original}'")),
        "{message}"
    );
    assert!(
        message.contains(&format!("found '{tampered}'")),
        "{message}"
    );
    assert!(message.contains(place), "{message}");

    // Restored, it opens again with its data.
    set_fingerprint(original);
    let store = open().unwrap();
    assert_eq!(store.all_topologies(None).unwrap().len(), 1);
}

/// A schema stamped with version 99 (`set_version` stores it as the backend stores a
/// version) is refused on opening, naming the version.
pub fn a_newer_schema_is_refused<S: TopologyStore>(
    set_version: &mut dyn FnMut(i64),
    open: impl Fn() -> Result<S, StoreError>,
) {
    set_version(99);
    let e = open().err().expect("a newer schema was accepted");
    assert!(
        matches!(e, StoreError::Corrupt { table: "meta", .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("schema version 99"), "{e}");
}

// ---- a schema changed under an open store ---------------------------------------------

/// The tables a refused call must leave as they were, counted by `count`, and the queue's
/// states (a claim or a mark changes no count of rows, only of these).
const COUNTED: [&str; 7] = [
    "topologies",
    "lans",
    "deckies",
    "status_events",
    "mutations",
    "mutations WHERE state = 'pending'",
    "mutations WHERE state = 'applying'",
];

/// This build's schema version, as the stamp stores it.
pub const THIS_VERSION: i64 = 3;
/// The version a newer build's migration stamps.
pub const NEXT_VERSION: i64 = THIS_VERSION + 1;

/// `result` is [`StoreError::SchemaChanged`] from this build's schema version
/// ([`THIS_VERSION`]) to the next, naming both.
pub fn assert_schema_changed<T: std::fmt::Debug>(result: Result<T, StoreError>, call: &str) {
    match result {
        Err(e @ StoreError::SchemaChanged { opened, found, .. })
            if opened == THIS_VERSION && found == NEXT_VERSION =>
        {
            let message = e.to_string();
            assert!(
                message.contains(&format!("schema version {THIS_VERSION}")),
                "{call}: {message}"
            );
            assert!(
                message.contains(&format!("schema version {NEXT_VERSION}")),
                "{call}: {message}"
            );
            assert!(message.contains("nothing was written"), "{call}: {message}");
        }
        other => panic!(
            "{call}: expected SchemaChanged from {THIS_VERSION} to {NEXT_VERSION}, got {other:?}"
        ),
    }
}

/// A new `active` topology named `name` with one mutation queued.
fn queued(store: &dyn TopologyStore, name: &str) -> TopologyId {
    let id = store.create_topology(name).unwrap().id;
    for to in [TopologyStatus::Deploying, TopologyStatus::Active] {
        store
            .transition_status(id, to, None, Precondition::none())
            .unwrap();
    }
    store
        .enqueue_mutation(id, MutationOp::AddLan, "{}", None)
        .unwrap();
    id
}

/// A rolling upgrade: `migrate` moves the database of the open `store` to the next schema version
/// from another connection, as a newer build would (restamps it and alters a table). Every
/// later call through `store`, writes of each kind and reads, is refused with
/// [`StoreError::SchemaChanged`] naming both versions, and no row is written (`count` counts
/// a table's rows on a raw connection).
pub fn a_schema_change_under_an_open_store_is_refused(
    store: &dyn TopologyStore,
    migrate: impl FnOnce(),
    count: impl Fn(&str) -> i64,
) {
    let lab = store.create_topology("lab").unwrap();
    let lan = store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
        .unwrap();
    // A queue whose mutation is claimed, and one with a mutation a claim would take.
    let (live, waiting) = (queued(store, "live"), queued(store, "waiting"));
    let Claim::Claimed { lease, .. } = store.claim_next_mutation(live).unwrap() else {
        panic!("one mutation is pending");
    };
    let before: Vec<i64> = COUNTED.iter().map(|t| count(t)).collect();

    migrate();

    assert_schema_changed(store.create_topology("new"), "create_topology");
    assert_schema_changed(
        store.add_lan(lab.id, NewLan::new("lan-b", "10.0.1.0/24"), Some(2)),
        "add_lan, versioned",
    );
    assert_schema_changed(
        store.add_lan(lab.id, NewLan::new("lan-c", "10.0.2.0/24"), None),
        "add_lan, unversioned",
    );
    assert_schema_changed(
        store.transition_status(
            lab.id,
            TopologyStatus::Deploying,
            None,
            Precondition::none(),
        ),
        "transition_status",
    );
    assert_schema_changed(
        store.enqueue_mutation(live, MutationOp::AddLan, "{}", None),
        "enqueue_mutation",
    );
    assert_schema_changed(store.claim_next_mutation(live), "claim_next_mutation");
    assert_schema_changed(
        store.claim_next_mutation(waiting),
        "claim_next_mutation of a waiting mutation",
    );
    assert_schema_changed(
        store.set_lan_network_id(lan.id, Some("net-1")),
        "set_lan_network_id",
    );
    assert_schema_changed(
        store.apply_live(
            &lease,
            &[ChildEdit::AddLan(NewLan::new("live", "10.0.3.0/24"))],
        ),
        "apply_live",
    );
    assert_schema_changed(store.mark_mutation_applied(lease), "mark_mutation_applied");
    assert_schema_changed(store.set_needs_resync(lab.id, true), "set_needs_resync");
    // A write that reads nothing (no stored id is past i64::MAX) checks the schema too.
    assert_schema_changed(
        store.set_needs_resync(TopologyId::new(u64::MAX), true),
        "set_needs_resync of an id no row has",
    );
    assert_schema_changed(store.delete_topology(lab.id, None), "delete_topology");
    assert_schema_changed(store.get_topology(lab.id), "get_topology");
    assert_schema_changed(
        store.list_topologies(None, topostate::store::PageRequest::first(10)),
        "list_topologies",
    );
    assert_schema_changed(store.topology_detail(lab.id), "topology_detail");
    assert_schema_changed(
        store.list_status_events(live, topostate::store::PageRequest::first(10)),
        "list_status_events",
    );

    let after: Vec<i64> = COUNTED.iter().map(|t| count(t)).collect();
    assert_eq!(before, after, "rows of {COUNTED:?} before and after");
}

// ---- stored values ---------------------------------------------------------------------

/// Every stored value reads back exactly: services with separators, quotes, escapes and
/// brackets of either dialect's list syntax, config text, coordinates at the extremes,
/// runtime fields, the writer's timestamps. `stored` reads a decky's services back as the
/// backend stores them, the way another tool would (SQLite: JSON text; PostgreSQL: `text[]`).
pub fn values_round_trip_exactly(
    store: &dyn TopologyStore,
    stored: impl FnOnce(DeckyId) -> Vec<String>,
) {
    let lab = store.create_topology("lab").unwrap();
    let services: Vec<String> = [
        "ssh",
        "a,b",
        "say \"hi\"",
        "line\nbreak",
        "",
        "back\\slash",
        "🦀",
        "[]",
        "{}",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let mut decky = NewDecky::new("web");
    decky.services.clone_from(&services);
    decky.config = Some(String::from("{\"ips_by_lan\": {}}"));
    decky.x = Some(-1.5e300);
    let web = store.add_decky(lab.id, decky, None).unwrap();
    let mut lan = NewLan::new("dmz", "10.0.0.0/24");
    lan.is_dmz = true;
    lan.y = Some(f64::MAX);
    let dmz = store.add_lan(lab.id, lan, None).unwrap();
    let read = &store.topology_detail(lab.id).unwrap().deckies[0];
    assert_eq!(read.state, DeckyState::Pending);
    store.set_lan_network_id(dmz.id, Some("net-1")).unwrap();
    store
        .set_decky_runtime(
            web.id,
            &DeckyRuntime::new()
                .with_state(DeckyState::TeardownFailed)
                .with_ip("10.0.0.5")
                .with_last_error("exit 137"),
        )
        .unwrap();
    let detail = store.topology_detail(lab.id).unwrap();
    let read = &detail.deckies[0];
    assert_eq!(read.services, services);
    assert_eq!(read.config.as_deref(), Some("{\"ips_by_lan\": {}}"));
    assert_eq!(read.x, Some(-1.5e300));
    assert_eq!(read.state, DeckyState::TeardownFailed);
    assert_eq!(read.ip.as_deref(), Some("10.0.0.5"));
    assert_eq!(read.last_error.as_deref(), Some("exit 137"));
    assert!(detail.lans[0].is_dmz);
    assert_eq!(detail.lans[0].y, Some(f64::MAX));
    assert_eq!(detail.lans[0].network_id.as_deref(), Some("net-1"));
    assert_eq!(stored(web.id), services);

    let patch = DeckyPatch::new().with_services(["x,y", "z"]).clear_config();
    store.update_decky(lab.id, web.id, patch, None).unwrap();
    let read = &store.topology_detail(lab.id).unwrap().deckies[0];
    assert_eq!(read.services, ["x,y", "z"]);
    assert_eq!(read.config, None);
    let empty = DeckyPatch::new().with_services(Vec::<String>::new());
    store.update_decky(lab.id, web.id, empty, None).unwrap();
    assert!(
        store.topology_detail(lab.id).unwrap().deckies[0]
            .services
            .is_empty()
    );

    // Timestamps are the writer's microseconds, as in every backend.
    let before = Timestamp::now();
    let t = store
        .transition_status(
            lab.id,
            TopologyStatus::Deploying,
            Some("go"),
            Precondition::none(),
        )
        .unwrap();
    let after = Timestamp::now();
    assert!(before <= t.event.at && t.event.at <= after);
    assert_eq!(
        store.get_topology(lab.id).unwrap().status_changed_at,
        t.event.at
    );
}

// ---- deletes ---------------------------------------------------------------------------

/// Deleting a topology leaves no child row behind (the store deletes only the topology's
/// row; the rest goes by `ON DELETE CASCADE`) and touches no other topology. `count(table,
/// topology)` counts a table's rows of a topology through a raw connection.
pub fn delete_leaves_no_row_behind(
    store: &dyn TopologyStore,
    mut count: impl FnMut(&str, i64) -> i64,
) {
    let lab = store.create_topology("lab").unwrap();
    let lan = store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), None)
        .unwrap();
    let web = store.add_decky(lab.id, NewDecky::new("web"), None).unwrap();
    store
        .add_edge(lab.id, NewEdge::new(web.id, lan.id), None)
        .unwrap();
    for (step, reason) in [
        (TopologyStatus::Deploying, None),
        (TopologyStatus::Failed, Some("boom")),
    ] {
        store
            .transition_status(lab.id, step, reason, Precondition::none())
            .unwrap();
    }
    let other = store.create_topology("other").unwrap();
    store
        .add_lan(other.id, NewLan::new("dmz", "10.0.0.0/24"), None)
        .unwrap();

    store.delete_topology(lab.id, Some(1)).unwrap();
    for table in ["lans", "deckies", "edges", "status_events", "mutations"] {
        let left = count(table, key(lab.id.get()));
        assert_eq!(left, 0, "{table} kept rows of a deleted topology");
    }
    assert_eq!(store.topology_detail(other.id).unwrap().lans.len(), 1);
}
