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
