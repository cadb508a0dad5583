//! The store over HTTP (feature `axum`): versions as strong `ETag`s, `If-Match` as the
//! write precondition, every refusal an RFC 9457 problem document, bearer-token roles, and
//! the topology API itself as a [`router`] a service mounts (what `topostate serve` runs).
//!
//! # The mapping, reusable on its own
//!
//! - [`etag`]: a version's strong tag, `"7"`. Every response about one topology carries the
//!   tag of its version; the tag validates *writes* (it is the optimistic-concurrency
//!   token), not cached reads, since a status change does not bump the version, so such
//!   responses say `Cache-Control: no-store`.
//! - [`IfMatch`]: the extractor; [`Expected::resolve`] joins it with a version given in the
//!   body (the replaced service's `expected_version`) and with the service's `require_if_match` rule
//!   (**428** without `If-Match`).
//! - [`Problem::from_store`]: [`StoreError`](crate::store::StoreError) → status and
//!   problem document, with a stable `type` per variant and its fields; a stale version is
//!   **412** when it came in `If-Match` and **409** when it came in the body; backend
//!   failures are **503** with a fixed text, the driver's going to
//!   [`Options::on_server_error`] only.
//! - [`Tokens`]: bearer tokens with roles, compared in constant time.
//!
//! # The API
//!
//! Under `/api/v1/topologies` (the domain's routes, plus the canvas batch, the workers'
//! transition route and an event stream); the OpenAPI document at
//! `/api/v1/openapi.json` lists every one with its codes; `/healthz` answers 200 while the
//! store answers.
//!
//! | route | does | success |
//! |---|---|---|
//! | `POST /` `{"name"}` | create a `pending` topology | 201 + ETag + Location |
//! | `GET /?status=` | list by id | 200 |
//! | `GET /{id}` | the topology with its children | 200 + ETag |
//! | `DELETE /{id}` | delete (from `pending`, `torn_down`, `failed`) | 204 |
//! | `POST /{id}/deploy` | `pending → deploying` | 202 + ETag |
//! | `POST /{id}/teardown` | `→ tearing_down` | 202 + ETag |
//! | `POST /{id}/transitions` `{"from","to","reason"}` | a worker's transition | 200 + ETag |
//! | `POST /{id}/edits` `{"edits":[…]}` | a canvas save: a batch, all or nothing; an edit may name a row an earlier edit adds, `{"batch": i}` | 200 + ETag |
//! | `POST /{id}/lans`, `/deckies`, `/edges` | add a child (`pending` only) | 201 + ETag |
//! | `PATCH /{id}/lans/{c}`, `/deckies/{c}` | change a child | 200 + ETag |
//! | `DELETE /{id}/lans/{c}`, `/deckies/{c}`, `/edges/{c}` | delete a child | 204 + ETag |
//! | `POST /{id}/mutations` `{"op","payload"}` | queue a live edit (`active`/`degraded`) | 202 + ETag |
//! | `GET /{id}/mutations?state=` | the queue, newest first | 200 |
//! | `GET /{id}/status-events?limit=` | the status log, newest first | 200 |
//! | `GET /{id}/events` | server-sent events, resumable with `Last-Event-ID` | 200 |
//!
//! Every write to an existing topology takes the version to check from `If-Match` or from
//! the body's `expected_version` member; without either it is unchecked and unbumped (the
//! store's meaning of `None`), unless the service requires `If-Match`.
//!
//! # Compared with the API this replaces
//!
//! Kept: the mount point and route names (`/api/v1/topologies`, `/{id}/deploy`,
//! `/{id}/teardown`, `/{id}/lans`, `/deckies`, `/edges`, `/mutations`, `/status-events`,
//! `/{id}/events`); the codes of success (201 create and child add, 202 deploy, teardown
//! and enqueue, 204 deletes, 200 reads and PATCH) and of refusal (404 missing, 409 for a
//! status that refuses the write and for a taken name, 401/403 by role); the status gates
//! (deploy from `pending`, teardown from `active`/`degraded`/`failed`/`deploying`, delete
//! from `pending`/`torn_down`/`failed`, child edits while `pending`, the queue while
//! `active`/`degraded`); `expected_version` in request bodies; lists newest first;
//! `?status=`, `?state=`, `?limit=` (1..=1000, default 100).
//!
//! Changed, deliberately:
//!
//! - **Refusals are problem documents** with fields, not a bare `{"detail": "<string>"}`:
//!   a client reads `current`/`expected` instead of parsing "Version conflict: expected 1,
//!   current 2". A stale `If-Match` is **412**; a stale body version stays 409.
//! - **Every write is checked where it happens**: the status gates and the version check
//!   run in the store's atomic step, not in a separate read before the write (the replaced
//!   service's guard TOCTOU, §3.4 3), and deletes take a version too (`If-Match`), so a
//!   delete can no longer remove what another editor just changed (§3.4 5).
//! - **Deploy and teardown record their first transition** (`pending → deploying`,
//!   `→ tearing_down`) atomically before answering 202, instead of checking the status and
//!   leaving the transition to a background task that may find it changed (§3.4 10); the
//!   rest of the walk is the workers', through `POST /{id}/transitions`, which names the
//!   status it moves from (`stale-status` when another worker moved first, §3.4 2).
//! - **Bad input is 4xx with a reason**: an unknown status in `?status=` is 400 (the
//!   replaced service compared the raw string and returned nothing), a malformed body 400,
//!   a body that does not fit 422 naming the field, unknown fields refused, an edge end in
//!   another topology 422 (`foreign-end`, the replaced service's 400), a backend failure
//!   503 without driver text (the replaced service's 500 "Internal error").
//! - **Child adds answer `{id, version}`** (and the new `ETag`), not the row: the row would
//!   need a second read that could already show a later write.
//! - **The event stream** replays the status log and the queue from the start (or from
//!   `Last-Event-ID`) by reading the store, instead of a one-shot snapshot plus a
//!   process-local bus that missed the deployer's transitions and every other process's
//!   writes.
//! - Not carried over: `POST /blank` and the generator behind `POST /` (their topology
//!   templates are the replaced service's, not the store's); `POST /` takes `{"name"}` and
//!   creates an empty `pending` topology.
//!
//! ```
//! use std::sync::Arc;
//! use axum::body::Body;
//! use axum::http::Request;
//! use tower::ServiceExt as _;
//! use topostate::http::{router, Options};
//! use topostate::store::MemoryStore;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let app = router(Arc::new(MemoryStore::new()), Options::new());
//! let created = app
//!     .clone()
//!     .oneshot(
//!         Request::post("/api/v1/topologies")
//!             .header("content-type", "application/json")
//!             .body(Body::from(r#"{"name":"lab"}"#))?,
//!     )
//!     .await?;
//! assert_eq!(created.status(), 201);
//! assert_eq!(created.headers()["etag"], "\"1\"");
//! // A write with a stale If-Match is refused as a failed precondition.
//! let stale = app
//!     .oneshot(
//!         Request::post("/api/v1/topologies/1/lans")
//!             .header("content-type", "application/json")
//!             .header("if-match", "\"7\"")
//!             .body(Body::from(r#"{"name":"dmz","subnet":"10.0.0.0/24"}"#))?,
//!     )
//!     .await?;
//! assert_eq!(stale.status(), 412);
//! assert_eq!(stale.headers()["content-type"], "application/problem+json");
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(demo())
//! # .map_err(|e| e.to_string())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod api;
mod auth;
mod body;
mod events;
mod openapi;
mod precondition;
mod problem;

pub use api::{API_PREFIX, ErrorHook, Options, openapi, router};
pub use auth::{MIN_TOKEN_LEN, Role, Tokens, TokensError};
pub use precondition::{Expected, IfMatch, etag};
pub use problem::{PROBLEM_JSON, PROBLEM_TYPE_PREFIX, Problem, VersionSource};
