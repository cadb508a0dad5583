//! The wire shape of every store type (feature `serde`).
//!
//! - **Golden files** (`tests/golden/*.json`) pin the JSON of each type: a change of shape
//!   fails here until the files are rewritten with `UPDATE_GOLDEN=1` and the diff is read.
//! - **Round trips**: any valid value, and every row read back from a `MemoryStore` and a
//!   SQLite file store, comes back equal from its JSON.
//! - **Bad JSON** is refused naming the field (in the message, and in the path
//!   `serde_path_to_error` reports), and a request refused while reading writes nothing.
//! - **Wire and store agree**: a field the wire accepts is one the store's checks accept,
//!   and the other way round.

mod pages;

use pages::ListAll;

use std::fmt::Debug;
use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use topostate::store::{
    ChildEdit, Claim, Decky, DeckyId, DeckyPatch, DeckyRuntime, DeckyState, Edge, EdgeId,
    EditReport, Edited, EventId, Lan, LanId, LanPatch, Lease, MAX_NAME_LEN, MAX_TEXT_LEN,
    MemoryStore, Mutation, MutationId, NewDecky, NewEdge, NewLan, Precondition, RowRef,
    StatusEvent, StoreError, Timestamp, TopologyDetail, TopologyRecord, TopologyStore, Touched,
    Transitioned, check_name, check_text,
};
use topostate::{MAX_VERSION, MutationOp, MutationState, TopologyId, TopologyStatus, Versioned};

/// A refusal's message stays short whatever the input (no echo of a long string).
const MAX_MESSAGE: usize = 400;

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> T {
    let json = serde_json::to_string(value).expect("serializes");
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(&back, value, "{json}");
    back
}

// ---- golden files -----------------------------------------------------------------------

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `value`'s pretty JSON with `tests/golden/<name>.json` (or rewrites it under
/// `UPDATE_GOLDEN=1`), and reads the file back to `value`.
fn golden<T: Serialize + DeserializeOwned + PartialEq + Debug>(name: &str, value: &T) {
    let path = golden_dir().join(format!("{name}.json"));
    let mut text = serde_json::to_string_pretty(value).expect("serializes");
    text.push('\n');
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &text).expect("writes the golden file");
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to write it)",
            path.display()
        )
    });
    assert_eq!(
        text,
        pinned,
        "the JSON of {name} drifted from {}; if the change is meant, rerun with UPDATE_GOLDEN=1 \
         and review the diff",
        path.display()
    );
    let back: T = serde_json::from_str(&pinned).expect("the golden file reads back");
    assert_eq!(&back, value);
}

fn sample_record() -> TopologyRecord {
    let mut record = TopologyRecord::new(TopologyId::new(1), "lab", at(1_700_000_000_000_000));
    record.status = TopologyStatus::Degraded;
    record.version = 7;
    record.reason = Some("post-deploy check: web exited".into());
    record.needs_resync = true;
    record.status_changed_at = at(1_700_000_123_456_789);
    record
}

fn sample_lan() -> Lan {
    let mut new = NewLan::new("dmz", "10.0.0.0/24").with_dmz(true);
    new.x = Some(12.5);
    let mut lan = Lan::new(LanId::new(2), TopologyId::new(1), new);
    lan.network_id = Some("net-4f2a".into());
    lan
}

fn sample_decky() -> Decky {
    let new = NewDecky::new("web")
        .with_services(["ssh", "http"])
        .with_config(r#"{"banner":"nginx"}"#)
        .with_position(-3.0, 40.25);
    let mut decky = Decky::new(DeckyId::new(3), TopologyId::new(1), new);
    decky.state = DeckyState::Running;
    decky.ip = Some("10.0.0.5".into());
    decky
}

fn sample_edge() -> Edge {
    let mut edge = Edge::new(
        EdgeId::new(4),
        TopologyId::new(1),
        DeckyId::new(3),
        LanId::new(2),
    );
    edge.is_bridge = true;
    edge
}

fn sample_event() -> StatusEvent {
    StatusEvent::new(
        EventId::new(5),
        TopologyId::new(1),
        TopologyStatus::Active,
        TopologyStatus::Degraded,
        at(1_700_000_123_456_789),
    )
    .with_reason("post-deploy check: web exited")
}

fn sample_mutation() -> Mutation {
    let mut m = Mutation::new(
        MutationId::new(9),
        TopologyId::new(1),
        MutationOp::AttachDecky,
        r#"{"decky":3,"lan":2}"#,
        at(1_700_000_200_000_000),
    );
    m.state = MutationState::Failed;
    m.applied_at = Some(at(1_700_000_201_500_000));
    m.reason = Some("no such LAN".into());
    m.claimed_at = Some(at(1_700_000_200_100_000));
    m.lease_until = Some(at(1_700_000_230_100_000));
    m.holder = Some("applier-7".into());
    m.attempts = 2;
    m.token = 2;
    m
}

fn sample_edits() -> Vec<ChildEdit> {
    vec![
        ChildEdit::AddLan({
            // Only `x`: a half-set position is a shape of its own.
            let mut lan = NewLan::new("dmz", "10.0.0.0/24").with_dmz(true);
            lan.x = Some(1.5);
            lan
        }),
        ChildEdit::UpdateLan(
            LanId::new(2).into(),
            LanPatch::new()
                .with_name("core")
                .with_x(None)
                .with_y(Some(8.0)),
        ),
        ChildEdit::DeleteLan(LanId::new(2).into()),
        ChildEdit::AddDecky(
            NewDecky::new("web")
                .with_services(["ssh"])
                .with_config("{}"),
        ),
        ChildEdit::UpdateDecky(
            DeckyId::new(3).into(),
            DeckyPatch::new()
                .with_services(Vec::<String>::new())
                .clear_config(),
        ),
        ChildEdit::DeleteDecky(DeckyId::new(3).into()),
        ChildEdit::AddEdge(NewEdge::new(DeckyId::new(3), LanId::new(2)).with_bridge(true)),
        ChildEdit::DeleteEdge(EdgeId::new(4)),
    ]
}

/// A canvas save that refers to its own new rows, in every place a reference may stand.
fn sample_batch_refs() -> Vec<ChildEdit> {
    vec![
        ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24")),
        ChildEdit::AddDecky(NewDecky::new("web")),
        ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(1), RowRef::Batch(0))),
        ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(1), LanId::new(2))),
        ChildEdit::UpdateLan(RowRef::Batch(0), LanPatch::new().with_x(Some(4.0))),
        ChildEdit::UpdateDecky(RowRef::Batch(1), DeckyPatch::new().with_y(Some(2.0))),
        ChildEdit::AddDecky(NewDecky::new("tmp")),
        ChildEdit::DeleteDecky(RowRef::Batch(6)),
    ]
}

#[test]
fn golden_files_pin_every_shape() {
    let record = sample_record();
    golden("timestamp", &at(1_700_000_123_456_789));
    golden(
        "versioned",
        &Versioned::from_parts(String::from("lab"), 7).unwrap(),
    );
    golden("topology_record", &record);
    golden("new_lan", &NewLan::new("dmz", "10.0.0.0/24"));
    golden("lan", &sample_lan());
    golden(
        "lan_patch",
        &LanPatch::new()
            .with_subnet("10.0.9.0/24")
            .with_dmz(false)
            .with_x(None)
            .with_y(Some(4.0)),
    );
    golden("new_decky", &NewDecky::new("web"));
    golden("decky", &sample_decky());
    golden(
        "decky_patch",
        &DeckyPatch::new()
            .with_name("web-2")
            .with_config(r#"{"tls":true}"#)
            .with_x(None),
    );
    golden(
        "decky_runtime",
        &DeckyRuntime::new()
            .with_state(DeckyState::Failed)
            .clear_ip()
            .with_last_error("exit 1"),
    );
    golden("new_edge", &NewEdge::new(DeckyId::new(3), LanId::new(2)));
    golden("edge", &sample_edge());
    golden("child_edits", &sample_edits());
    golden("batch_refs", &sample_batch_refs());
    golden(
        "edit_report",
        &EditReport::new(
            vec![
                Touched::Lan(LanId::new(2)),
                Touched::Decky(DeckyId::new(3)),
                Touched::Edge(EdgeId::new(4)),
            ],
            8,
        ),
    );
    golden("edited", &Edited::new(MutationId::new(9), 8));
    golden(
        "topology_detail",
        &TopologyDetail::new(
            record.clone(),
            vec![sample_lan()],
            vec![sample_decky()],
            vec![sample_edge()],
        ),
    );
    golden("status_event", &sample_event());
    golden(
        "precondition",
        &Precondition::status(TopologyStatus::Deploying).and_version(3),
    );
    golden("transitioned", &Transitioned::new(record, sample_event()));
    golden("mutation", &sample_mutation());
    golden(
        "claim_claimed",
        &Claim::Claimed {
            mutation: sample_mutation(),
            lease: Lease::from_parts(MutationId::new(9), TopologyId::new(1), 2),
        },
    );
    golden(
        "claim_busy",
        &Claim::Busy {
            applying: MutationId::new(9),
        },
    );
    golden("claim_empty", &Claim::Empty);
}

/// Every file in `tests/golden/` is one the test above checks (no stale shapes left).
#[test]
fn no_stray_golden_files() {
    let checked = [
        "timestamp",
        "versioned",
        "topology_record",
        "new_lan",
        "lan",
        "lan_patch",
        "new_decky",
        "decky",
        "decky_patch",
        "decky_runtime",
        "new_edge",
        "edge",
        "child_edits",
        "batch_refs",
        "edit_report",
        "edited",
        "topology_detail",
        "status_event",
        "precondition",
        "transitioned",
        "mutation",
        "claim_claimed",
        "claim_busy",
        "claim_empty",
    ];
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let stem = name.strip_suffix(".json").unwrap_or(&name);
        assert!(checked.contains(&stem), "stray golden file {name}");
    }
}

// ---- generators -----------------------------------------------------------------------------

fn cases(n: u32) -> Config {
    Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Names the store accepts, whatever its name policy: any printable text, filtered by it.
fn name(field: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,20}",
        "\\PC{1,30}",
        Just("x".repeat(MAX_NAME_LEN)),
    ]
    .prop_filter("a valid name", move |n| check_name(field, n).is_ok())
}

fn text(field: &'static str) -> impl Strategy<Value = String> {
    "\\PC{0,40}".prop_filter("a valid text", move |t| check_text(field, t).is_ok())
}

fn coord() -> impl Strategy<Value = Option<f64>> {
    prop::option::of(any::<f64>().prop_filter("finite", |v| v.is_finite()))
}

fn id() -> impl Strategy<Value = u64> {
    prop_oneof![1..=u64::MAX, Just(1), Just(u64::MAX)]
}

fn version() -> impl Strategy<Value = u64> {
    prop_oneof![1..=MAX_VERSION, Just(1), Just(MAX_VERSION)]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    // The years 0000 to 9999, which RFC 3339 can write.
    (-62_167_219_200_000_000..=253_402_300_799_999_999_i64).prop_map(Timestamp::from_micros)
}

fn status() -> impl Strategy<Value = TopologyStatus> {
    prop::sample::select(TopologyStatus::ALL.to_vec())
}

fn decky_state() -> impl Strategy<Value = DeckyState> {
    prop::sample::select(DeckyState::ALL.to_vec())
}

fn new_lan() -> impl Strategy<Value = NewLan> {
    (
        name("lan name"),
        text("subnet"),
        any::<bool>(),
        coord(),
        coord(),
    )
        .prop_map(|(name, subnet, is_dmz, x, y)| {
            let mut lan = NewLan::new(name, subnet).with_dmz(is_dmz);
            (lan.x, lan.y) = (x, y);
            lan
        })
}

fn new_decky() -> impl Strategy<Value = NewDecky> {
    (
        name("decky name"),
        prop::collection::vec(text("decky service"), 0..4),
        prop::option::of(text("decky config")),
        coord(),
        coord(),
    )
        .prop_map(|(name, services, config, x, y)| {
            let mut decky = NewDecky::new(name).with_services(services);
            (decky.config, decky.x, decky.y) = (config, x, y);
            decky
        })
}

fn lan_patch() -> impl Strategy<Value = LanPatch> {
    (
        prop::option::of(name("lan name")),
        prop::option::of(text("subnet")),
        prop::option::of(any::<bool>()),
        prop::option::of(coord()),
        prop::option::of(coord()),
    )
        .prop_map(|(name, subnet, is_dmz, x, y)| {
            let mut patch = LanPatch::new();
            (patch.name, patch.subnet, patch.is_dmz) = (name, subnet, is_dmz);
            (patch.x, patch.y) = (x, y);
            patch
        })
}

fn decky_patch() -> impl Strategy<Value = DeckyPatch> {
    (
        prop::option::of(name("decky name")),
        prop::option::of(prop::collection::vec(text("decky service"), 0..3)),
        prop::option::of(prop::option::of(text("decky config"))),
        prop::option::of(coord()),
        prop::option::of(coord()),
    )
        .prop_map(|(name, services, config, x, y)| {
            let mut patch = DeckyPatch::new();
            (patch.name, patch.services, patch.config) = (name, services, config);
            (patch.x, patch.y) = (x, y);
            patch
        })
}

/// A stored id or a batch-local reference (any index: the wire does not check the batch).
fn row_ref<I: Copy + Debug>(id_of: fn(u64) -> I) -> impl Strategy<Value = RowRef<I>> {
    prop_oneof![
        3 => id().prop_map(move |i| RowRef::Stored(id_of(i))),
        1 => any::<usize>().prop_map(RowRef::Batch),
        1 => (0usize..8).prop_map(RowRef::Batch),
    ]
}

fn new_edge() -> impl Strategy<Value = NewEdge> {
    (
        row_ref(DeckyId::new),
        row_ref(LanId::new),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(decky, lan, is_bridge, forwards_l3)| {
            NewEdge::new(decky, lan)
                .with_bridge(is_bridge)
                .with_forwards_l3(forwards_l3)
        })
}

fn child_edit() -> impl Strategy<Value = ChildEdit> {
    prop_oneof![
        new_lan().prop_map(ChildEdit::AddLan),
        (row_ref(LanId::new), lan_patch()).prop_map(|(r, p)| ChildEdit::UpdateLan(r, p)),
        row_ref(LanId::new).prop_map(ChildEdit::DeleteLan),
        new_decky().prop_map(ChildEdit::AddDecky),
        (row_ref(DeckyId::new), decky_patch()).prop_map(|(r, p)| ChildEdit::UpdateDecky(r, p)),
        row_ref(DeckyId::new).prop_map(ChildEdit::DeleteDecky),
        new_edge().prop_map(ChildEdit::AddEdge),
        id().prop_map(|i| ChildEdit::DeleteEdge(EdgeId::new(i))),
    ]
}

fn record() -> impl Strategy<Value = TopologyRecord> {
    (
        id(),
        name("topology name"),
        status(),
        version(),
        prop::option::of(text("reason")),
        any::<bool>(),
        timestamp(),
        timestamp(),
    )
        .prop_map(
            |(id, name, status, version, reason, needs_resync, created_at, status_changed_at)| {
                let mut record = TopologyRecord::new(TopologyId::new(id), name, created_at);
                (record.status, record.version) = (status, version);
                (record.reason, record.needs_resync) = (reason, needs_resync);
                record.status_changed_at = status_changed_at;
                record
            },
        )
}

fn lan() -> impl Strategy<Value = Lan> {
    (id(), id(), new_lan(), prop::option::of(text("network id"))).prop_map(
        |(id, topology, new, network_id)| {
            let mut lan = Lan::new(LanId::new(id), TopologyId::new(topology), new);
            lan.network_id = network_id;
            lan
        },
    )
}

fn decky() -> impl Strategy<Value = Decky> {
    (
        id(),
        id(),
        new_decky(),
        decky_state(),
        prop::option::of(text("decky ip")),
        prop::option::of(text("decky last error")),
    )
        .prop_map(|(id, topology, new, state, ip, last_error)| {
            let mut decky = Decky::new(DeckyId::new(id), TopologyId::new(topology), new);
            (decky.state, decky.ip, decky.last_error) = (state, ip, last_error);
            decky
        })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        id(),
        id(),
        prop::sample::select(MutationOp::ALL.to_vec()),
        text("payload"),
        prop::sample::select(MutationState::ALL.to_vec()),
        timestamp(),
        prop::option::of(timestamp()),
        prop::option::of(text("reason")),
        (
            prop::option::of(timestamp()),
            prop::option::of(text("holder")),
            any::<u32>(),
            any::<u64>(),
            prop::option::of(any::<u64>()),
        ),
    )
        .prop_map(
            |(
                id,
                topology,
                op,
                payload,
                state,
                requested_at,
                applied_at,
                reason,
                (lease_until, holder, attempts, token, edited_by),
            )| {
                let mut m = Mutation::new(
                    MutationId::new(id),
                    TopologyId::new(topology),
                    op,
                    payload,
                    requested_at,
                );
                m.state = state;
                m.applied_at = applied_at;
                m.reason = reason;
                m.claimed_at = lease_until;
                m.lease_until = lease_until;
                m.holder = holder;
                m.attempts = attempts;
                m.token = token;
                m.edited_by = edited_by;
                m
            },
        )
}

// ---- round trips ------------------------------------------------------------------------------

#[test]
fn inputs_round_trip() {
    let mut runner = TestRunner::new(cases(512));
    runner
        .run(
            &(
                prop::collection::vec(child_edit(), 0..6),
                (
                    prop::option::of(decky_state()),
                    prop::option::of(prop::option::of(text("decky ip"))),
                ),
                (prop::option::of(status()), prop::option::of(version())),
            ),
            |(edits, (state, ip), (s, v))| {
                round_trip(&edits);
                let mut runtime = DeckyRuntime::new();
                (runtime.state, runtime.ip, runtime.last_error) = (state, ip.clone(), ip);
                round_trip(&runtime);
                let mut pre = Precondition::none();
                (pre.status, pre.version) = (s, v);
                round_trip(&pre);
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn rows_and_reports_round_trip() {
    let mut runner = TestRunner::new(cases(256));
    runner
        .run(
            &(
                record(),
                prop::collection::vec(lan(), 0..3),
                prop::collection::vec(decky(), 0..3),
                (id(), id(), new_edge()),
                mutation(),
                (id(), status(), status(), timestamp(), version()),
            ),
            |(record, lans, deckies, (edge_id, topology, new_edge), m, (ev, from, to, t, v))| {
                let mut edge = Edge::new(
                    EdgeId::new(edge_id),
                    TopologyId::new(topology),
                    new_edge.decky.stored().unwrap_or(DeckyId::new(1)),
                    new_edge.lan.stored().unwrap_or(LanId::new(1)),
                );
                (edge.is_bridge, edge.forwards_l3) = (new_edge.is_bridge, new_edge.forwards_l3);
                let mut event = StatusEvent::new(EventId::new(ev), record.id, from, to, t);
                event.reason = record.reason.clone();
                let touched: Vec<Touched> = lans
                    .iter()
                    .map(|l| Touched::Lan(l.id))
                    .chain(deckies.iter().map(|d| Touched::Decky(d.id)))
                    .chain([Touched::Edge(edge.id)])
                    .collect();
                round_trip(&EditReport::new(touched, v));
                round_trip(&Edited::new(edge.id, v));
                let _ = round_trip(&Versioned::from_parts(record.clone(), v).unwrap());
                round_trip(&Transitioned::new(record.clone(), event));
                round_trip(&TopologyDetail::new(record, lans, deckies, vec![edge]));
                let claim = Lease::from_parts(m.id, m.topology_id, m.token);
                round_trip(&Claim::Busy { applying: m.id });
                round_trip(&Claim::Claimed {
                    mutation: m,
                    lease: claim,
                });
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn timestamps_are_rfc3339_utc_micros() {
    let pinned = [
        (0, "1970-01-01T00:00:00.000000Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
        (951_782_400_000_000, "2000-02-29T00:00:00.000000Z"),
        (1_700_000_123_456_789, "2023-11-14T22:15:23.456789Z"),
    ];
    for (micros, text) in pinned {
        assert_eq!(serde_json::to_value(at(micros)).unwrap(), json!(text));
        assert_eq!(
            serde_json::from_value::<Timestamp>(json!(text)).unwrap(),
            at(micros)
        );
    }
    // Other RFC 3339 forms of the same instant.
    for text in [
        "2023-11-14T22:15:23.456789+00:00",
        "2023-11-14T23:15:23.456789+01:00",
        "2023-11-14t22:15:23.456789z",
        "2023-11-14T22:15:23.456789000Z",
        // RFC 3339 (5.6) lets applications write a space for the `T`.
        "2023-11-14 22:15:23.456789Z",
    ] {
        let t: Timestamp = serde_json::from_value(json!(text)).unwrap();
        assert_eq!(t, at(1_700_000_123_456_789), "{text}");
    }
    for bad in [
        "2023-11-14T22:15:23.4567891Z",
        "2023-11-14T25:15:23Z",
        "2023-11-14T22:15:23+24:00",
        "2023-02-29T00:00:00Z",
        "2023-11-14T22:15:23",
        "1700000000",
        "",
    ] {
        let e = serde_json::from_value::<Timestamp>(json!(bad)).unwrap_err();
        assert!(e.to_string().contains("timestamp"), "{bad}: {e}");
    }
    let e = serde_json::from_value::<Timestamp>(json!(12)).unwrap_err();
    assert!(e.to_string().contains("expected a timestamp"), "{e}");
    // RFC 3339 has four-digit years only.
    assert!(serde_json::to_string(&at(i64::MAX)).is_err());
    assert!(serde_json::to_string(&at(-62_167_219_200_000_001)).is_err());
    assert!(serde_json::to_string(&at(-62_167_219_200_000_000)).is_ok());
    let mut runner = TestRunner::new(cases(2048));
    runner
        .run(&timestamp(), |t| {
            let text = serde_json::to_value(t).unwrap();
            // Fixed width, so the text sorts as the time does.
            prop_assert_eq!(text.as_str().map(str::len), Some(27));
            round_trip(&t);
            Ok(())
        })
        .unwrap();
}

// ---- rows read back from the stores -----------------------------------------------------------

/// Fills `store` with a topology built from `lans` and `deckies` (edges between them), moves
/// it through a few statuses and its mutation queue, then checks every row it reads back
/// round-trips.
fn store_rows_round_trip(
    store: &dyn TopologyStore,
    lans: Vec<NewLan>,
    deckies: Vec<NewDecky>,
    reason: &str,
) {
    let topology = store.create_topology("wire").unwrap();
    let mut edits: Vec<ChildEdit> = lans.into_iter().map(ChildEdit::AddLan).collect();
    edits.extend(deckies.into_iter().map(ChildEdit::AddDecky));
    // Names may repeat in what proptest drew; keep only the edits the store takes.
    let mut version = topology.version;
    for edit in edits {
        if let Ok(report) = store.edit(topology.id, Some(version), std::slice::from_ref(&edit)) {
            version = report.version;
            round_trip(&report);
        }
    }
    let detail = store.topology_detail(topology.id).unwrap();
    let mut touched = Vec::new();
    for (decky, lan) in detail.deckies.iter().zip(detail.lans.iter().cycle()) {
        let edge = NewEdge::new(decky.id, lan.id).with_bridge(decky.name.len() % 2 == 0);
        let edited = store.add_edge(topology.id, edge, None).unwrap();
        touched.push(round_trip(&edited));
    }
    if let Some(decky) = detail.deckies.first() {
        let runtime = DeckyRuntime::new()
            .with_state(DeckyState::Degraded)
            .with_ip("10.0.0.9")
            .with_last_error(reason);
        store.set_decky_runtime(decky.id, &runtime).unwrap();
    }
    if let Some(lan) = detail.lans.first() {
        store.set_lan_network_id(lan.id, Some(reason)).unwrap();
    }
    for to in [TopologyStatus::Deploying, TopologyStatus::Active] {
        let pre = Precondition::none();
        round_trip(
            &store
                .transition_status(topology.id, to, Some(reason), pre)
                .unwrap(),
        );
    }
    store
        .enqueue_mutation(topology.id, MutationOp::AddLan, reason, None)
        .unwrap();
    store
        .enqueue_mutation(topology.id, MutationOp::RemoveDecky, "{}", None)
        .unwrap();
    let claim = store.claim_next_mutation(topology.id).unwrap();
    let busy = store.claim_next_mutation(topology.id).unwrap();
    round_trip(&busy);
    let Claim::Claimed { lease: claim, .. } = round_trip(&claim) else {
        panic!("nothing claimed")
    };
    round_trip(&store.mark_mutation_failed(claim, reason).unwrap());
    store.set_needs_resync(topology.id, true).unwrap();

    let detail = store.topology_detail(topology.id).unwrap();
    round_trip(&detail);
    round_trip(&store.all_events(topology.id).unwrap());
    round_trip(&store.all_mutations(topology.id, None).unwrap());
    round_trip(&store.get_topology(topology.id).unwrap());
    round_trip(&store.claim_next_mutation(topology.id).unwrap());
}

fn store_strategy() -> impl Strategy<Value = (Vec<NewLan>, Vec<NewDecky>, String)> {
    (
        prop::collection::vec(new_lan(), 0..5),
        prop::collection::vec(new_decky(), 0..5),
        text("reason"),
    )
}

#[test]
fn memory_store_rows_round_trip() {
    let mut runner = TestRunner::new(cases(64));
    runner
        .run(&store_strategy(), |(lans, deckies, reason)| {
            store_rows_round_trip(&MemoryStore::new(), lans, deckies, &reason);
            Ok(())
        })
        .unwrap();
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_file_rows_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    let mut runner = TestRunner::new(cases(16));
    runner
        .run(&store_strategy(), |(lans, deckies, reason)| {
            n.set(n.get() + 1);
            let n = n.get();
            let store =
                topostate::store::SqliteStore::open(dir.path().join(format!("{n}.db"))).unwrap();
            store_rows_round_trip(&store, lans, deckies, &reason);
            Ok(())
        })
        .unwrap();
}

// ---- bad JSON -----------------------------------------------------------------------------------

/// Reads `json` as `T`, expecting a refusal; returns the path `serde_path_to_error` reports
/// and the message, after checking the message is short.
fn refusal<T: DeserializeOwned + Debug>(json: &str) -> (String, String) {
    let de = &mut serde_json::Deserializer::from_str(json);
    let err = serde_path_to_error::deserialize::<_, T>(de).expect_err(&json[..json.len().min(200)]);
    let message = err.inner().to_string();
    assert!(
        message.len() < MAX_MESSAGE,
        "{} bytes: {}",
        message.len(),
        &message[..200]
    );
    (err.path().to_string(), message)
}

/// `json` with the value at `pointer` replaced (or, for `None`, the key removed).
fn with(json: &Value, pointer: &str, value: Option<Value>) -> String {
    let mut v = json.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let object = v.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    match value {
        Some(value) => object.insert(key.to_owned(), value),
        None => object.remove(key),
    };
    v.to_string()
}

#[test]
fn bad_fields_are_refused_by_name() {
    let new_lan =
        json!({"name": "dmz", "subnet": "10.0.0.0/24", "is_dmz": false, "x": 1.0, "y": null});
    let long = "n".repeat(MAX_NAME_LEN + 1);
    let huge = "t".repeat(MAX_TEXT_LEN + 1);
    let megabyte = "m".repeat(1_000_000);
    // (pointer, bad value, path, what the message must contain)
    let table: Vec<(&str, Option<Value>, &str, &str)> = vec![
        ("/name", None, ".", "missing field `name`"),
        (
            "/name",
            Some(json!(5)),
            "name",
            "expected lan name: a string",
        ),
        ("/name", Some(json!(" ")), "name", "invalid lan name"),
        (
            "/name",
            Some(json!(long)),
            "name",
            "invalid lan name: 256 bytes",
        ),
        (
            "/name",
            Some(json!(megabyte)),
            "name",
            "invalid lan name: 1000000 bytes",
        ),
        ("/name", Some(json!(null)), "name", "expected lan name"),
        (
            "/subnet",
            Some(json!(huge)),
            "subnet",
            "invalid subnet: 1048577 bytes",
        ),
        (
            "/subnet",
            Some(json!("a\u{0}b")),
            "subnet",
            "invalid subnet: contains a NUL",
        ),
        (
            "/subnet",
            Some(json!([])),
            "subnet",
            "expected subnet: a string",
        ),
        (
            "/is_dmz",
            Some(json!("yes")),
            "is_dmz",
            "expected is_dmz: true or false",
        ),
        ("/x", Some(json!("1.0")), "x", "expected lan x"),
        ("/x", Some(json!({})), "x", "expected lan x"),
        (
            "/colour",
            Some(json!("red")),
            "colour",
            "unknown field `colour`",
        ),
    ];
    for (pointer, value, path, message) in table {
        let json = with(&new_lan, pointer, value);
        let (got_path, got) = refusal::<NewLan>(&json);
        assert_eq!(got_path, path, "{pointer}: {got}");
        assert!(
            got.contains(message),
            "{pointer}: {got:?} lacks {message:?}"
        );
    }

    // Versions and ids: negative, zero, past their range, past u64::MAX, other types.
    let edited = json!({"id": 2, "version": 5});
    for (value, message) in [
        (json!(-1), "integer `-1`, expected a version"),
        (json!(0), "integer `0`, expected a version"),
        (json!(9_223_372_036_854_775_808_u64), "expected a version"),
        (json!(u64::MAX), "expected a version"),
        (json!(1.5), "expected a version"),
        (json!("5"), "expected a version"),
        (json!(null), "expected a version"),
    ] {
        let (path, got) = refusal::<Edited<LanId>>(&with(&edited, "/version", Some(value)));
        assert_eq!(path, "version");
        assert!(got.contains(message), "{got}");
    }
    let past_u64 = r#"{"id":18446744073709551616,"version":5}"#;
    let (path, got) = refusal::<Edited<LanId>>(past_u64);
    assert_eq!(path, "id");
    assert!(got.contains("expected a lan id"), "{got}");
    for (value, message) in [
        (json!(0), "integer `0`, expected a lan id"),
        (json!(-4), "integer `-4`, expected a lan id"),
        (json!("2"), "expected a lan id"),
    ] {
        let (path, got) = refusal::<Edited<LanId>>(&with(&edited, "/id", Some(value)));
        assert_eq!(path, "id");
        assert!(got.contains(message), "{got}");
    }
    let versioned = json!({"value": "lab", "version": 1});
    let (path, got) = refusal::<Versioned<String>>(&with(&versioned, "/version", Some(json!(0))));
    assert_eq!(
        (path.as_str(), got.contains("expected a version")),
        ("version", true)
    );
    let (_, got) = refusal::<Precondition>(r#"{"version":-3}"#);
    assert!(got.contains("expected a version"), "{got}");

    // Unknown names of statuses, states and ops.
    let (path, got) = refusal::<Precondition>(r#"{"status":"paused"}"#);
    assert_eq!(path, "status");
    assert!(got.contains("unknown topology status: 'paused'"), "{got}");
    let (path, got) = refusal::<DeckyRuntime>(r#"{"state":"asleep"}"#);
    assert_eq!(path, "state");
    assert!(got.contains("unknown decky state: 'asleep'"), "{got}");
    let (_, got) = refusal::<DeckyRuntime>(r#"{"state":null}"#);
    assert!(got.contains("null cannot clear it"), "{got}");
    let (path, got) = refusal::<Mutation>(
        &serde_json::to_string(&sample_mutation())
            .unwrap()
            .replace("attach_decky", "detonate"),
    );
    assert_eq!(path, "op");
    assert!(got.contains("unknown mutation op: 'detonate'"), "{got}");

    // Patches: null clears only what can be cleared.
    for (json, message) in [
        (
            r#"{"name":null}"#,
            "lan name: a value (null cannot clear it",
        ),
        (
            r#"{"subnet":null}"#,
            "subnet: a value (null cannot clear it",
        ),
        (
            r#"{"is_dmz":null}"#,
            "is_dmz: a value (null cannot clear it",
        ),
        (r#"{"x":"left"}"#, "expected lan x"),
        (r#"{"id":3}"#, "unknown field `id`"),
    ] {
        let (_, got) = refusal::<LanPatch>(json);
        assert!(got.contains(message), "{json}: {got}");
    }
    for (json, message) in [
        (
            r#"{"services":null}"#,
            "decky services: a value (null cannot",
        ),
        (
            r#"{"services":["ssh",7]}"#,
            "expected decky service: a string",
        ),
        (r#"{"services":"ssh"}"#, "expected decky services: an array"),
        (r#"{"config":7}"#, "expected decky config"),
    ] {
        let (_, got) = refusal::<DeckyPatch>(json);
        assert!(got.contains(message), "{json}: {got}");
    }
}

#[test]
fn bad_edits_are_refused_by_name() {
    let megabyte = "m".repeat(1_000_000);
    for (json, message) in [
        (r#"{"id":2}"#.to_owned(), "missing field `op`"),
        (
            r#"{"op":"rename_lan","id":2}"#.to_owned(),
            "unknown variant `rename_lan`",
        ),
        (
            r#"{"op":7,"id":2}"#.to_owned(),
            "expected variant identifier",
        ),
        (r#"{"op":"delete_lan"}"#.to_owned(), "missing field `id`"),
        (
            r#"{"op":"delete_lan","id":0}"#.to_owned(),
            "expected a lan id",
        ),
        (
            r#"{"op":"delete_edge","id":-1}"#.to_owned(),
            "expected a edge id",
        ),
        (
            r#"{"op":"delete_lan","id":2,"force":true}"#.to_owned(),
            "unknown field `force`",
        ),
        (
            r#"{"op":"update_lan","id":2}"#.to_owned(),
            "missing field `patch`",
        ),
        (
            r#"{"op":"update_lan","id":2,"patch":{"name":""}}"#.to_owned(),
            "invalid lan name: must not be empty",
        ),
        (
            r#"{"op":"update_decky","id":2,"patch":{"nmae":"x"}}"#.to_owned(),
            "unknown field `nmae`",
        ),
        (
            r#"{"op":"add_lan","lan":{"name":"a","subnet":"s","x":"1"}}"#.to_owned(),
            "expected lan x",
        ),
        (
            r#"{"op":"add_edge","edge":{"decky":1,"lan":1,"is_bridge":1}}"#.to_owned(),
            "expected is_bridge: true or false",
        ),
        (
            format!(r#"{{"op":"add_decky","decky":{{"name":"{megabyte}"}}}}"#),
            "invalid decky name: 1000000 bytes",
        ),
        // Batch-local references: one key, `batch`, holding an edit index.
        (
            r#"{"op":"delete_lan","id":{}}"#.to_owned(),
            "missing field `batch`",
        ),
        (
            r#"{"op":"delete_lan","id":{"batch":0,"lan":2}}"#.to_owned(),
            "unknown field `lan`, expected `batch`",
        ),
        (
            r#"{"op":"delete_lan","id":{"batch":0,"batch":1}}"#.to_owned(),
            "duplicate field `batch`",
        ),
        (
            r#"{"op":"update_decky","id":{"batch":-1},"patch":{}}"#.to_owned(),
            "invalid value: integer `-1`",
        ),
        (
            r#"{"op":"update_decky","id":{"batch":"0"},"patch":{}}"#.to_owned(),
            "invalid type: a string, expected the index of an edit of the batch",
        ),
        (
            r#"{"op":"add_edge","edge":{"decky":[0],"lan":1}}"#.to_owned(),
            "expected a decky id (an integer from 1 to 18446744073709551615) or {\"batch\": i}",
        ),
        (
            r#"{"op":"add_edge","edge":{"decky":1,"lan":{"batch":18446744073709551616}}}"#
                .to_owned(),
            "expected the index of an edit of the batch",
        ),
        (
            r#"{"op":"add_edge","edge":{"decky":{"batch":0},"lan":0}}"#.to_owned(),
            "expected a lan id",
        ),
        (
            format!(
                r#"{{"op":"add_decky","decky":{{"name":"d","config":"{megabyte}x{megabyte}"}}}}"#
            ),
            "invalid decky config: 2000001 bytes",
        ),
    ] {
        let (_, got) = refusal::<ChildEdit>(&json);
        assert!(
            got.contains(message),
            "{}: {got}",
            &json[..json.len().min(80)]
        );
    }
    // A batch refuses a bad edit anywhere; serde_path_to_error names its index.
    let batch = r#"[{"op":"delete_lan","id":2},{"op":"delete_lan","id":"two"}]"#;
    let (path, got) = refusal::<Vec<ChildEdit>>(batch);
    assert_eq!(path, "[1]");
    assert!(got.contains("expected a lan id"), "{got}");
}

/// Nesting far past `serde_json`'s recursion limit (128) is an error, not a stack overflow,
/// including inside an edit (which is read whole before its `op` is known).
#[test]
fn deep_nesting_is_refused_cleanly() {
    let open = "[".repeat(100_000);
    let close = "]".repeat(100_000);
    for json in [
        format!(r#"{{"op":"update_lan","id":2,"patch":{{"x":{open}{close}}}}}"#),
        format!(r#"{{"op":"add_decky","decky":{{"name":"d","services":{open}{close}}}}}"#),
        format!(r#"{{"decky":{{"name":"d","config":{open}{close}}},"op":"add_decky"}}"#),
        format!(r#"{{"op":"delete_lan","id":{open}{close}}}"#),
    ] {
        let e = serde_json::from_str::<Vec<ChildEdit>>(&format!("[{json}]")).unwrap_err();
        assert!(e.to_string().contains("recursion limit exceeded"), "{e}");
        let e = serde_json::from_str::<ChildEdit>(&json).unwrap_err();
        assert!(e.to_string().len() < MAX_MESSAGE, "{e}");
    }
    // Outside an edit the field readers refuse the first `[` they do not expect.
    let e =
        serde_json::from_str::<NewDecky>(&format!(r#"{{"name":"d","services":{open}{close}}}"#));
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("expected decky service")
    );
    let e = serde_json::from_str::<Vec<ChildEdit>>(&open).unwrap_err();
    assert!(e.to_string().len() < MAX_MESSAGE, "{e}");
}

/// A request refused while reading its body writes nothing: the store sees no call.
#[test]
fn refused_body_writes_nothing() {
    let store = MemoryStore::new();
    let topology = store.create_topology("lab").unwrap();
    let save = |body: &str| -> Result<EditReport, String> {
        let edits: Vec<ChildEdit> = serde_json::from_str(body).map_err(|e| e.to_string())?;
        store
            .edit(topology.id, Some(topology.version), &edits)
            .map_err(|e| e.to_string())
    };
    let before = store.topology_detail(topology.id).unwrap();
    let bad = r#"[{"op":"add_lan","lan":{"name":"dmz","subnet":"10.0.0.0/24"}},
                  {"op":"add_decky","decky":{"name":"web","services":[1]}}]"#;
    let err = save(bad).unwrap_err();
    assert!(err.contains("decky service"), "{err}");
    assert_eq!(store.topology_detail(topology.id).unwrap(), before);
    let good = bad.replace("[1]", r#"["http"]"#);
    assert_eq!(save(&good).unwrap().version, topology.version + 1);
}

/// Every field a refused document names, for any value proptest draws: either the wire
/// reads it and the store's checks accept it, or the refusal names the field.
#[test]
fn any_value_in_any_field_is_read_or_refused_by_name() {
    let docs: Vec<(&str, Value, Reader)> = vec![
        (
            "new_lan",
            json!({"name": "dmz", "subnet": "10.0.0.0/24", "is_dmz": true, "x": 1.0, "y": 2.0}),
            read_checked::<NewLan>,
        ),
        (
            "new_decky",
            json!({"name": "web", "services": ["ssh"], "config": "{}", "x": 1.0, "y": null}),
            read_checked::<NewDecky>,
        ),
        (
            "new_edge",
            json!({"decky": 1, "lan": 2, "is_bridge": true, "forwards_l3": false}),
            read_checked::<NewEdge>,
        ),
        (
            "lan_patch",
            json!({"name": "a", "subnet": "s", "is_dmz": true, "x": null, "y": 1.0}),
            read_checked::<LanPatch>,
        ),
        (
            "decky_patch",
            json!({"name": "a", "services": [], "config": null, "x": 1.0, "y": null}),
            read_checked::<DeckyPatch>,
        ),
        (
            "decky_runtime",
            json!({"state": "running", "ip": null, "last_error": "e"}),
            read_checked::<DeckyRuntime>,
        ),
        (
            "precondition",
            json!({"status": "active", "version": 3}),
            read_checked::<Precondition>,
        ),
    ];
    let value = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
        "[\\x00-\\x1f]{1,3}".prop_map(Value::from),
        Just(Value::from("x".repeat(MAX_NAME_LEN + 1))),
        Just(json!([])),
        Just(json!(["a", 1])),
        Just(json!({})),
    ];
    let mut runner = TestRunner::new(cases(2048));
    runner
        .run(
            &(0..docs.len(), 0..6_usize, value),
            |(doc, field, value)| {
                let (what, good, read) = &docs[doc];
                let keys: Vec<String> = good.as_object().unwrap().keys().cloned().collect();
                let key = keys[field % keys.len()].clone();
                let json = with(good, &format!("/{key}"), Some(value));
                if let Err((path, message)) = read(&json) {
                    // `services[1]` names the field too.
                    prop_assert!(
                        path.starts_with(&key),
                        "{}: {}: {}: {}",
                        what,
                        json,
                        path,
                        message
                    );
                }
                Ok(())
            },
        )
        .unwrap();
}

/// Reads a document: `Ok`, or the path and message of the refusal.
type Reader = fn(&str) -> Result<(), (String, String)>;

/// Reads `json` as `T`: `Ok` if it is accepted (then it round-trips and the store takes its
/// fields), else the path and message of the refusal.
fn read_checked<T>(json: &str) -> Result<(), (String, String)>
where
    T: DeserializeOwned + Serialize + PartialEq + Debug + 'static,
{
    let de = &mut serde_json::Deserializer::from_str(json);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(value) => {
            round_trip(&value);
            store_accepts(&value);
            Ok(())
        }
        Err(e) => Err((e.path().to_string(), e.inner().to_string())),
    }
}

/// The store's own checks accept what the wire accepted: the value is applied to a store.
fn store_accepts<T: 'static>(value: &T) {
    let any = value as &dyn std::any::Any;
    let store = MemoryStore::new();
    let topology = store.create_topology("lab").unwrap();
    let lan = store
        .add_lan(topology.id, NewLan::new("zz-lan", "s"), None)
        .unwrap()
        .id;
    let decky = store
        .add_decky(topology.id, NewDecky::new("zz-decky"), None)
        .unwrap()
        .id;
    let not_invalid = |r: Result<(), StoreError>| {
        if let Err(StoreError::Invalid { field, problem }) = r {
            panic!("the wire accepted what the store refuses: {field}: {problem}");
        }
    };
    if let Some(v) = any.downcast_ref::<NewLan>() {
        not_invalid(store.add_lan(topology.id, v.clone(), None).map(drop));
    } else if let Some(v) = any.downcast_ref::<NewDecky>() {
        not_invalid(store.add_decky(topology.id, v.clone(), None).map(drop));
    } else if let Some(v) = any.downcast_ref::<LanPatch>() {
        not_invalid(
            store
                .update_lan(topology.id, lan, v.clone(), None)
                .map(drop),
        );
    } else if let Some(v) = any.downcast_ref::<DeckyPatch>() {
        not_invalid(
            store
                .update_decky(topology.id, decky, v.clone(), None)
                .map(drop),
        );
    } else if let Some(v) = any.downcast_ref::<DeckyRuntime>() {
        not_invalid(store.set_decky_runtime(decky, v));
    }
}

/// The wire and the store's name check agree on every string.
#[test]
fn wire_and_store_agree_on_names_and_texts() {
    let mut runner = TestRunner::new(cases(2048));
    let s = prop_oneof![
        "\\PC{0,12}",
        ".{0,12}",
        "[ \\t\\n\\x00]{0,4}",
        Just("x".repeat(MAX_NAME_LEN)),
        Just("x".repeat(MAX_NAME_LEN + 1)),
    ];
    runner
        .run(&s, |s| {
            let lan = serde_json::from_value::<NewLan>(json!({"name": s, "subnet": s}));
            let expected = check_name("lan name", &s).and(check_text("subnet", &s));
            prop_assert_eq!(lan.is_ok(), expected.is_ok(), "{:?}: {:?}", s, lan);
            if let Err(StoreError::Invalid { field, problem }) = expected {
                let message = lan.unwrap_err().to_string();
                prop_assert!(message.contains(field), "{}", message);
                prop_assert!(message.contains(&problem), "{}", message);
            }
            Ok(())
        })
        .unwrap();
}
