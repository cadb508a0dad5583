//! The event stream of one topology: its status changes and enqueued mutations as
//! server-sent events, resumable with `Last-Event-ID`.
//!
//! The stream reads the store itself (the status log and the mutation list) every poll
//! interval and sends what is newer than its cursor, so writes made by other processes on
//! the same database are seen as well as this server's own. Each event's id is the cursor
//! after it, `"<last status event id>-<last mutation id>"`; a client reconnecting with the
//! last id it saw gets exactly what came after, with no gap and no repeat, because both
//! logs are append-only and ordered by store-assigned ids.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::string::{String, ToString};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::watch;

use super::api::App;
use super::openapi::ProblemDoc;
use super::problem::{Problem, VersionSource};
use crate::TopologyId;
use crate::store::StoreError;

/// Where a stream is: the last status event and the last mutation it sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    event: u64,
    mutation: u64,
}

impl Cursor {
    fn id(self) -> String {
        [
            self.event.to_string(),
            "-".into(),
            self.mutation.to_string(),
        ]
        .concat()
    }

    fn parse(text: &str) -> Option<Self> {
        let (event, mutation) = text.trim().split_once('-')?;
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        Some(Self {
            event: number(event)?,
            mutation: number(mutation)?,
        })
    }
}

/// The state the stream carries between polls.
struct Feed {
    app: App,
    id: TopologyId,
    cursor: Cursor,
    ready: VecDeque<Event>,
    stop: Option<watch::Receiver<bool>>,
    done: bool,
}

/// The status changes (`event: status`) and enqueued mutations (`event: mutation`) of one
/// topology as server-sent events, from the start of its history or from after
/// `Last-Event-ID`; `event: deleted` and the end of the stream when the topology is gone.
#[utoipa::path(
    get, path = "/api/v1/topologies/{id}/events", tag = "lifecycle",
    params(("id" = u64, Path, description = "topology id"), ("Last-Event-ID" = Option<String>, Header, description = "resume after this event")),
    responses(
        (status = 200, description = "text/event-stream: `status` (a StatusEvent), `mutation` (a Mutation), `deleted`", content_type = "text/event-stream", body = String),
        (status = 400, description = "an unusable Last-Event-ID", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such topology", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn stream(
    State(app): State<App>,
    id: Result<Path<TopologyId>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path(id) = id.map_err(|r| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-id",
            "an id in the path is unusable",
            r.body_text(),
        )
    })?;
    let cursor = match headers.get("last-event-id") {
        None => Cursor::default(),
        Some(value) => value.to_str().ok().and_then(Cursor::parse).ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-last-event-id",
                "the Last-Event-ID header is unusable",
                "Last-Event-ID must be an id this stream sent, e.g. 12-4",
            )
        })?,
    };
    // A topology that does not exist is a 404 now, not an empty stream.
    app.store
        .get_topology(id)
        .await
        .map_err(|e| app.fail(&e, VersionSource::Body))?;
    let feed = Feed {
        stop: app.stop(),
        app,
        id,
        cursor,
        ready: VecDeque::new(),
        done: false,
    };
    let events = stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(event) = feed.ready.pop_front() {
                return Some((Ok::<_, Infallible>(event), feed));
            }
            if feed.done {
                return None;
            }
            feed.poll().await;
            if feed.ready.is_empty() && !feed.done && !feed.wait().await {
                return None;
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

impl Feed {
    /// Reads both logs and queues what is newer than the cursor, oldest first.
    async fn poll(&mut self) {
        // Both lists are newest first: each is read back only as far as the cursor.
        let (after_event, after_mutation) = (self.cursor.event, self.cursor.mutation);
        let (store, id) = (&self.app.store, self.id);
        let log = match super::api::pages(
            |page| store.list_status_events(id, page),
            |e: &crate::store::StatusEvent| e.id.get() <= after_event,
        )
        .await
        {
            Ok(log) => log,
            Err(e) => return self.fail(&e),
        };
        let mutations = match super::api::pages(
            |page| store.list_mutations(id, None, page),
            |m: &crate::store::Mutation| m.id.get() <= after_mutation,
        )
        .await
        {
            Ok(list) => list,
            Err(e) => return self.fail(&e),
        };
        for event in log.iter().rev().filter(|e| e.id.get() > after_event) {
            self.cursor.event = event.id.get();
            self.push("status", serde_json::to_string(event));
        }
        for mutation in mutations
            .iter()
            .rev()
            .filter(|m| m.id.get() > after_mutation)
        {
            self.cursor.mutation = mutation.id.get();
            self.push("mutation", serde_json::to_string(mutation));
        }
    }

    fn push(&mut self, kind: &'static str, data: Result<String, serde_json::Error>) {
        let data = data.unwrap_or_else(|_| "null".into());
        self.ready
            .push_back(Event::default().event(kind).id(self.cursor.id()).data(data));
    }

    /// Ends the stream: `deleted` when the topology is gone, `error` (a problem document,
    /// no driver text) when the store failed; the client may reconnect to resume.
    fn fail(&mut self, error: &StoreError) {
        self.done = true;
        let (kind, data) = match error {
            StoreError::NotFound { .. } => ("deleted", "{}".to_string()),
            e => (
                "error",
                self.app.fail(e, VersionSource::Body).to_json().to_string(),
            ),
        };
        self.ready
            .push_back(Event::default().event(kind).id(self.cursor.id()).data(data));
    }

    /// Waits one poll interval; false when the server is stopping.
    async fn wait(&mut self) -> bool {
        let interval = self.app.poll_interval();
        match &mut self.stop {
            None => {
                tokio::time::sleep(interval).await;
                true
            }
            Some(stop) => {
                if *stop.borrow() {
                    return false;
                }
                tokio::select! {
                    () = tokio::time::sleep(interval) => true,
                    changed = stop.changed() => changed.is_ok() && !*stop.borrow(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_ids_round_trip_and_refuse_junk() {
        let c = Cursor {
            event: 12,
            mutation: 4,
        };
        assert_eq!(c.id(), "12-4");
        assert_eq!(Cursor::parse("12-4"), Some(c));
        for bad in [
            "",
            "12",
            "12-",
            "-4",
            "a-4",
            "1-2-3",
            "+1-2",
            "99999999999999999999-1",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
