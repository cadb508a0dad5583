//! With the `tracing` feature, each store operation is a span (`backend`, `op`, `topology`,
//! `expected`, `new_version`, `outcome`), each version conflict an event, and each
//! PostgreSQL run again an event with its SQLSTATE. Captured with a small layer of our own.
//!
//! The PostgreSQL case needs the server of `.ci/postgres.sh` (`TOPOSTATE_PG_URL`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use topostate::store::{MemoryStore, NewLan, TopologyStore};
use topostate::{TopologyStatus, store::Precondition};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// What was emitted: closed spans and events, with their fields (as text).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Span(BTreeMap<String, String>),
    Event(BTreeMap<String, String>),
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Seen>>>);

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        fields
            .0
            .insert("span".to_owned(), attrs.metadata().name().to_owned());
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut ext = span.extensions_mut();
        values.record(ext.get_mut::<Fields>().unwrap());
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(span) = ctx.event_span(event)
            && let Some(parent) = span.extensions().get::<Fields>()
        {
            fields.0.insert(
                "in_op".to_owned(),
                parent.0.get("op").cloned().unwrap_or_default(),
            );
        }
        fields
            .0
            .insert("level".to_owned(), event.metadata().level().to_string());
        self.0.lock().unwrap().push(Seen::Event(fields.0));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        let fields = span.extensions_mut().remove::<Fields>().unwrap();
        self.0.lock().unwrap().push(Seen::Span(fields.0));
    }
}

/// Runs `f` with the capturing subscriber; what it saw.
fn captured(f: impl FnOnce()) -> Vec<Seen> {
    let capture = Capture::default();
    let subscriber = Registry::default().with(capture.clone());
    tracing::subscriber::with_default(subscriber, f);
    capture.0.lock().unwrap().clone()
}

fn spans(seen: &[Seen]) -> Vec<&BTreeMap<String, String>> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Span(f) => Some(f),
            Seen::Event(_) => None,
        })
        .collect()
}

fn events(seen: &[Seen]) -> Vec<&BTreeMap<String, String>> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Event(f) => Some(f),
            Seen::Span(_) => None,
        })
        .collect()
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn memory_store_writes_are_spans_with_their_outcome_and_conflicts_are_events() {
    let store = MemoryStore::new();
    let lab = store.create_topology("lab").unwrap();
    let id = lab.id.get().to_string();
    let seen = captured(|| {
        store
            .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
            .unwrap();
        let e = store
            .add_lan(lab.id, NewLan::new("lan-b", "10.0.1.0/24"), Some(1))
            .unwrap_err();
        assert!(e.is_conflict());
        store
            .transition_status(
                lab.id,
                TopologyStatus::Deploying,
                None,
                Precondition::none(),
            )
            .unwrap();
    });
    let spans = spans(&seen);
    assert_eq!(
        spans,
        [
            &fields(&[
                ("span", "store"),
                ("backend", "memory"),
                ("op", "edit"),
                ("topology", &id),
                ("expected", "1"),
                ("new_version", "2"),
                ("outcome", "ok"),
            ]),
            &fields(&[
                ("span", "store"),
                ("backend", "memory"),
                ("op", "edit"),
                ("topology", &id),
                ("expected", "1"),
                ("outcome", "version_conflict"),
            ]),
            &fields(&[
                ("span", "store"),
                ("backend", "memory"),
                ("op", "transition_status"),
                ("topology", &id),
                ("new_version", "2"),
                ("outcome", "ok"),
            ]),
        ]
    );
    assert_eq!(
        events(&seen),
        [&fields(&[
            ("message", "version conflict"),
            ("expected", "1"),
            ("current", "2"),
            ("in_op", "edit"),
            ("level", "INFO"),
        ])]
    );
}

#[cfg(feature = "postgres")]
#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored"]
fn postgres_runs_again_are_events_with_their_sqlstate() {
    use topostate::store::PgStore;

    let url = std::env::var("TOPOSTATE_PG_URL").expect("TOPOSTATE_PG_URL");
    let schema = format!("tracing_{}", std::process::id());
    // The server gives up a lock wait after 20 ms (55P03): the store runs it again.
    let separator = if url.contains('?') { '&' } else { '?' };
    let store = PgStore::builder(&format!("{url}{separator}options=-c%20lock_timeout%3D20"))
        .schema(&schema)
        .pool_size(2)
        .connect()
        .unwrap();
    let lab = store.create_topology("lab").unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut tx = admin.transaction().unwrap();
    tx.execute(
        &format!("SELECT 1 FROM {schema}.topologies WHERE id = $1 FOR UPDATE"),
        &[&i64::try_from(lab.id.get()).unwrap()],
    )
    .unwrap();
    let seen = captured(|| {
        let e = store
            .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
            .unwrap_err();
        assert!(
            matches!(e, topostate::store::StoreError::Backend(_)),
            "{e:?}"
        );
    });
    tx.rollback().unwrap();
    let reruns: Vec<_> = events(&seen)
        .into_iter()
        .filter(|e| e.get("message").map(String::as_str) == Some("running the operation again"))
        .collect();
    // 8 attempts in all: 7 runs again, each with the server's SQLSTATE.
    assert_eq!(reruns.len(), 7, "{seen:#?}");
    for (i, rerun) in reruns.iter().enumerate() {
        assert_eq!(rerun.get("sqlstate").map(String::as_str), Some("55P03"));
        assert_eq!(rerun.get("why").map(String::as_str), Some("lock timeout"));
        assert_eq!(rerun.get("attempt"), Some(&(i + 1).to_string()));
        assert_eq!(rerun.get("in_op").map(String::as_str), Some("edit"));
        assert_eq!(rerun.get("level").map(String::as_str), Some("WARN"));
    }
    let spans = spans(&seen);
    assert_eq!(
        spans,
        [&fields(&[
            ("span", "store"),
            ("backend", "postgres"),
            ("op", "edit"),
            ("topology", &lab.id.get().to_string()),
            ("expected", "1"),
            ("outcome", "backend"),
        ])]
    );
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}

// ---- every operation, every backend, both faces -----------------------------------------

#[cfg(feature = "tokio")]
#[path = "conformance/awaiting.rs"]
mod awaiting;

/// The span an operation is expected to leave.
fn op_span(
    backend: &str,
    op: &str,
    topology: Option<u64>,
    expected: Option<u64>,
    new_version: Option<u64>,
    outcome: &str,
) -> BTreeMap<String, String> {
    let mut f = fields(&[
        ("span", "store"),
        ("backend", backend),
        ("op", op),
        ("outcome", outcome),
    ]);
    for (name, value) in [
        ("topology", topology),
        ("expected", expected),
        ("new_version", new_version),
    ] {
        if let Some(v) = value {
            f.insert(name.to_owned(), v.to_string());
        }
    }
    f
}

/// Runs every operation of the contract once on `store` (a version conflict and a not found
/// among them); the spans they should leave, in order.
fn every_operation(store: &dyn TopologyStore, backend: &str) -> Vec<BTreeMap<String, String>> {
    use topostate::store::{
        ChildEdit, Claim, DeckyId, DeckyRuntime, PageRequest, StoreError, TopologyRecord,
    };
    use topostate::{MutationOp, TopologyStatus};

    let mut want = Vec::new();
    let mut span = |op: &str, t: Option<u64>, e: Option<u64>, v: Option<u64>, out: &str| {
        want.push(op_span(backend, op, t, e, v, out));
    };
    let lab: TopologyRecord = store.create_topology("lab").unwrap();
    let id = lab.id.get();
    span("create_topology", None, None, Some(lab.version), "ok");
    let got = store.get_topology(lab.id).unwrap();
    span("get_topology", Some(id), None, Some(got.version), "ok");
    store.list_topologies(None, PageRequest::first(10)).unwrap();
    span("list_topologies", None, None, None, "ok");
    let dmz = store
        .add_lan(lab.id, NewLan::new("dmz", "10.0.0.0/24"), Some(1))
        .unwrap();
    span("edit", Some(id), Some(1), Some(dmz.version), "ok");
    let stale = store
        .add_lan(lab.id, NewLan::new("late", "10.0.9.0/24"), Some(1))
        .unwrap_err();
    assert!(stale.is_conflict(), "{stale:?}");
    span("edit", Some(id), Some(1), None, "version_conflict");
    let report = store
        .edit(
            lab.id,
            Some(dmz.version),
            &[ChildEdit::AddLan(NewLan::new("office", "10.0.1.0/24"))],
        )
        .unwrap();
    span(
        "edit",
        Some(id),
        Some(dmz.version),
        Some(report.version),
        "ok",
    );
    let detail = store.topology_detail(lab.id).unwrap();
    span(
        "topology_detail",
        Some(id),
        None,
        Some(detail.topology.version),
        "ok",
    );
    store.set_lan_network_id(dmz.id, Some("net-1")).unwrap();
    span("set_lan_network_id", None, None, None, "ok");
    let missing = store
        .set_decky_runtime(DeckyId::new(999_999), &DeckyRuntime::default())
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
    span("set_decky_runtime", None, None, None, "not_found");
    let v = report.version;
    let deploying = store
        .transition_status(
            lab.id,
            TopologyStatus::Deploying,
            None,
            Precondition::status(TopologyStatus::Pending).and_version(v),
        )
        .unwrap();
    let v = deploying.topology.version;
    span(
        "transition_status",
        Some(id),
        Some(report.version),
        Some(v),
        "ok",
    );
    let active = store
        .transition_status(lab.id, TopologyStatus::Active, None, Precondition::none())
        .unwrap();
    let v = active.topology.version;
    span("transition_status", Some(id), None, Some(v), "ok");
    let mut v = v;
    for applied in [true, false] {
        let queued = store
            .enqueue_mutation(lab.id, MutationOp::AddLan, "{}", Some(v))
            .unwrap();
        span(
            "enqueue_mutation",
            Some(id),
            Some(v),
            Some(queued.version),
            "ok",
        );
        let Claim::Claimed { lease: claim, .. } = store.claim_next_mutation(lab.id).unwrap() else {
            panic!("nothing to claim");
        };
        span("claim_next_mutation", Some(id), None, None, "ok");
        let name = if applied { "live-a" } else { "live-b" };
        let cidr = if applied {
            "10.0.2.0/24"
        } else {
            "10.0.3.0/24"
        };
        let live = store
            .apply_live(&claim, &[ChildEdit::AddLan(NewLan::new(name, cidr))])
            .unwrap();
        span("apply_live", Some(id), None, Some(live.version), "ok");
        v = live.version;
        if applied {
            store.mark_mutation_applied(claim).unwrap();
            span("mark_mutation_applied", Some(id), None, None, "ok");
        } else {
            store.mark_mutation_failed(claim, "refused").unwrap();
            span("mark_mutation_failed", Some(id), None, None, "ok");
        }
    }
    let queued = store
        .enqueue_mutation(lab.id, MutationOp::AddLan, "{}", Some(v))
        .unwrap();
    span(
        "enqueue_mutation",
        Some(id),
        Some(v),
        Some(queued.version),
        "ok",
    );
    let Claim::Claimed { lease: claim, .. } = store.claim_next_mutation(lab.id).unwrap() else {
        panic!("nothing to claim");
    };
    span("claim_next_mutation", Some(id), None, None, "ok");
    store
        .renew_lease(&claim, std::time::Duration::from_mins(1))
        .unwrap();
    span("renew_lease", Some(id), None, None, "ok");
    store.release_mutation(claim).unwrap();
    span("release_mutation", Some(id), None, None, "ok");
    store
        .list_mutations(lab.id, None, PageRequest::first(10))
        .unwrap();
    span("list_mutations", Some(id), None, None, "ok");
    store
        .list_status_events(lab.id, PageRequest::first(10))
        .unwrap();
    span("list_status_events", Some(id), None, None, "ok");
    store.set_needs_resync(lab.id, true).unwrap();
    span("set_needs_resync", Some(id), None, None, "ok");
    let gone = store.create_topology("gone").unwrap();
    span("create_topology", None, None, Some(gone.version), "ok");
    store.delete_topology(gone.id, Some(gone.version)).unwrap();
    span(
        "delete_topology",
        Some(gone.id.get()),
        Some(gone.version),
        None,
        "ok",
    );
    want
}

/// Runs [`every_operation`] on `store` under the capturing subscriber: each operation left
/// its span, with its fields and outcome, and the one conflict its event.
fn check_every_operation(store: &dyn TopologyStore, backend: &str) {
    let mut want = Vec::new();
    let seen = captured(|| want = every_operation(store, backend));
    let spans: Vec<_> = spans(&seen).into_iter().cloned().collect();
    assert_eq!(spans, want, "{backend}");
    let conflicts: Vec<_> = events(&seen)
        .into_iter()
        .filter(|e| e.get("message").map(String::as_str) == Some("version conflict"))
        .collect();
    assert_eq!(
        conflicts,
        [&fields(&[
            ("message", "version conflict"),
            ("expected", "1"),
            ("current", "2"),
            ("in_op", "edit"),
            ("level", "INFO"),
        ])],
        "{backend}"
    );
}

#[test]
fn every_memory_operation_is_a_span() {
    check_every_operation(&MemoryStore::new(), "memory");
}

#[cfg(feature = "sqlite")]
#[test]
fn every_sqlite_operation_is_a_span() {
    let dir = tempfile::tempdir().unwrap();
    let store = topostate::store::SqliteStore::open(dir.path().join("t.db")).unwrap();
    check_every_operation(&store, "sqlite");
}

#[cfg(feature = "tokio")]
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[cfg(feature = "tokio")]
#[test]
fn every_async_memory_operation_is_a_span() {
    let rt = runtime();
    let store = awaiting::Awaiting::new(Arc::new(MemoryStore::new()), rt.handle().clone());
    check_every_operation(&store, "memory");
}

/// The offloaded call runs on a blocking thread, yet reports to the caller's subscriber.
#[cfg(all(feature = "tokio", feature = "sqlite"))]
#[test]
fn every_async_sqlite_operation_is_a_span() {
    let rt = runtime();
    let sqlite = topostate::store::SqliteStore::open_in_memory().unwrap();
    let store = awaiting::Awaiting::new(
        Arc::new(topostate::store::Offload::new(sqlite)),
        rt.handle().clone(),
    );
    check_every_operation(&store, "sqlite");
}

/// The native async face: each write's span is opened by the task that queues it, and
/// ends with the answer the combiner sends back.
#[cfg(all(feature = "tokio", feature = "sqlite"))]
#[test]
fn every_native_async_sqlite_operation_is_a_span() {
    let rt = runtime();
    let sqlite = topostate::store::SqliteStore::open_in_memory().unwrap();
    let store = awaiting::Awaiting::new(
        Arc::new(topostate::store::AsyncSqliteStore::new(sqlite)),
        rt.handle().clone(),
    );
    check_every_operation(&store, "sqlite");
}

#[cfg(feature = "postgres")]
fn pg_schema(tag: &str) -> (String, String) {
    let url = std::env::var("TOPOSTATE_PG_URL").expect("TOPOSTATE_PG_URL");
    (url, format!("tracing_{tag}_{}", std::process::id()))
}

#[cfg(feature = "postgres")]
fn drop_schema(url: &str, schema: &str) {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}

#[cfg(feature = "postgres")]
#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored"]
fn every_postgres_operation_is_a_span() {
    let (url, schema) = pg_schema("sync");
    let store = topostate::store::PgStore::builder(&url)
        .schema(&schema)
        .connect()
        .unwrap();
    check_every_operation(&store, "postgres");
    drop(store);
    drop_schema(&url, &schema);
}

#[cfg(feature = "postgres")]
#[test]
#[ignore = "needs PostgreSQL: set TOPOSTATE_PG_URL and run with --include-ignored"]
fn every_async_postgres_operation_is_a_span() {
    let (url, schema) = pg_schema("async");
    let rt = runtime();
    let store = rt
        .block_on(
            topostate::store::AsyncPgStore::builder(&url)
                .schema(&schema)
                .connect_async(),
        )
        .unwrap();
    let awaiting = awaiting::Awaiting::new(Arc::new(store), rt.handle().clone());
    check_every_operation(&awaiting, "postgres");
    drop(awaiting);
    drop(rt);
    drop_schema(&url, &schema);
}
