//! The topology API: routes, handlers, and the options a service sets.

use std::string::{String, ToString};
use std::sync::Arc;
use std::time::Duration;
use std::vec::Vec;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::watch;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Tokens;
use super::body::{
    BodyTimeLimit, OptionalJson, VersionedJson, invalid_body, object_or_empty,
    parse_optional_version,
};
use super::events;
use super::openapi::{
    DeckyPatchDoc, EditBatchDoc, EditReportDoc, EditedDoc, LanPatchDoc, MutationDoc, NewDeckyDoc,
    NewEdgeDoc, NewLanDoc, ProblemDoc, StatusEventDoc, TopologyDetailDoc, TopologyRecordDoc,
    TransitionedDoc,
};
use super::precondition::{Expected, IfMatch, etag};
use super::problem::{Problem, VersionSource};
use crate::store::{
    AsyncTopologyStore, ChildEdit, DeckyId, DeckyPatch, EdgeId, LanId, LanPatch, Listed, MAX_PAGE,
    NewDecky, NewEdge, NewLan, Page, PageRequest, Precondition, StoreError,
};
use crate::{MutationOp, MutationState, TopologyId, TopologyStatus};

/// Where the API is mounted.
pub const API_PREFIX: &str = "/api/v1/topologies";

/// A callback that receives every store error answered with a 5xx, with its driver text
/// (which the response never carries), to log it.
pub type ErrorHook = Arc<dyn Fn(&StoreError) + Send + Sync>;

/// How a [`router`] behaves: auth, preconditions, limits, the event stream.
///
/// ```
/// use std::time::Duration;
/// use topostate::http::{Options, Tokens};
///
/// let options = Options::new()
///     .tokens(Tokens::parse("admin 0123456789abcdef0123")?)
///     .require_if_match()
///     .body_limit(64 * 1024)
///     .body_time_limit(Duration::from_secs(10));
/// # Ok::<(), topostate::http::TokensError>(())
/// ```
#[derive(Clone)]
pub struct Options {
    tokens: Option<Tokens>,
    require_if_match: bool,
    body_limit: usize,
    body_time_limit: Duration,
    poll_interval: Duration,
    stop: Option<watch::Receiver<bool>>,
    on_server_error: Option<ErrorHook>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("tokens", &self.tokens)
            .field("require_if_match", &self.require_if_match)
            .field("body_limit", &self.body_limit)
            .field("body_time_limit", &self.body_time_limit)
            .field("poll_interval", &self.poll_interval)
            .field("stop", &self.stop.is_some())
            .field("on_server_error", &self.on_server_error.is_some())
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

impl Options {
    /// No auth (every request may write), `If-Match` optional, a 1 MiB body limit, 30 s
    /// to receive a body, event streams polling every 250 ms.
    #[must_use]
    pub fn new() -> Self {
        Self {
            tokens: None,
            require_if_match: false,
            body_limit: 1024 * 1024,
            body_time_limit: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            stop: None,
            on_server_error: None,
        }
    }

    /// Requires a bearer token on every API route: a viewer's for reads, an admin's for
    /// writes (401 without a valid one, 403 for a viewer's write). `/healthz` and the
    /// OpenAPI document stay open.
    #[must_use]
    pub fn tokens(mut self, tokens: Tokens) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Requires `If-Match` on every write to an existing topology (428 without it).
    #[must_use]
    pub fn require_if_match(mut self) -> Self {
        self.require_if_match = true;
        self
    }

    /// The largest request body accepted, in bytes (413 past it).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long receiving a request body may take (408 past it). Store calls are bounded
    /// by the store's own limits, not by this one, so a write that started is answered.
    #[must_use]
    pub fn body_time_limit(mut self, limit: Duration) -> Self {
        self.body_time_limit = limit;
        self
    }

    /// How often an event stream reads the store for news.
    #[must_use]
    pub fn event_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Ends every open event stream once `stop` holds `true`, so a graceful shutdown is
    /// not held open by them.
    #[must_use]
    pub fn stop_streams_on(mut self, stop: watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Receives every store error answered with a 5xx (to log it).
    #[must_use]
    pub fn on_server_error(mut self, hook: impl Fn(&StoreError) + Send + Sync + 'static) -> Self {
        self.on_server_error = Some(Arc::new(hook));
        self
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) store: Arc<dyn AsyncTopologyStore>,
    pub(crate) options: Arc<Options>,
}

impl App {
    /// The problem for a store error, handing 5xx causes to the hook.
    pub(crate) fn fail(&self, error: &StoreError, source: VersionSource) -> Problem {
        let problem = Problem::from_store(error, source);
        if problem.is_server_error()
            && let Some(hook) = &self.options.on_server_error
        {
            hook(error);
        }
        problem
    }

    fn expected(&self, if_match: IfMatch, body: Option<u64>) -> Result<Expected, Problem> {
        Expected::resolve(if_match, body, self.options.require_if_match)
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        self.options.poll_interval
    }

    pub(crate) fn stop(&self) -> Option<watch::Receiver<bool>> {
        self.options.stop.clone()
    }
}

/// The topology API over `store`, with `/healthz` and `/api/v1/openapi.json`, ready to
/// serve or to merge into a service's own router.
///
/// ```
/// use std::sync::Arc;
/// use topostate::http::{router, Options};
/// use topostate::store::MemoryStore;
///
/// # async fn run() -> std::io::Result<()> {
/// let app = router(Arc::new(MemoryStore::new()), Options::new());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # drop(app); drop(listener);
/// // axum::serve(listener, app).await
/// # Ok(())
/// # }
/// ```
pub fn router(store: Arc<dyn AsyncTopologyStore>, options: Options) -> Router {
    let app = App {
        store,
        options: Arc::new(options),
    };
    let (api, doc) = api_routes().split_for_parts();
    let doc = Arc::new(doc);
    let api = api
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .layer(DefaultBodyLimit::max(app.options.body_limit))
        .with_state(app.clone());
    Router::new()
        .merge(api)
        .route("/healthz", axum::routing::get(healthz).with_state(app))
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = Arc::clone(&doc);
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
}

/// The OpenAPI document of the routes [`router`] serves.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

fn api_routes() -> OpenApiRouter<App> {
    let mut doc = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("topostate")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The MazeNET topology lifecycle over HTTP: versions as ETags, \
                     preconditions as If-Match, refusals as RFC 9457 problem documents.",
                ))
                .build(),
        )
        .build();
    let mut components = utoipa::openapi::Components::new();
    components.add_security_scheme(
        "bearer",
        utoipa::openapi::security::SecurityScheme::Http(utoipa::openapi::security::Http::new(
            utoipa::openapi::security::HttpAuthScheme::Bearer,
        )),
    );
    doc.components = Some(components);
    doc.security = Some(Vec::from([
        utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new()),
    ]));
    OpenApiRouter::with_openapi(doc)
        .routes(routes!(create_topology, list_topologies))
        .routes(routes!(topology_detail, delete_topology))
        .routes(routes!(deploy))
        .routes(routes!(teardown))
        .routes(routes!(transition))
        .routes(routes!(edit_batch))
        .routes(routes!(add_lan))
        .routes(routes!(update_lan, delete_lan))
        .routes(routes!(add_decky))
        .routes(routes!(update_decky, delete_decky))
        .routes(routes!(add_edge))
        .routes(routes!(delete_edge))
        .routes(routes!(enqueue_mutation, list_mutations))
        .routes(routes!(status_events))
        .routes(routes!(events::stream))
}

/// Auth and the per-request body time limit, before any handler reads anything.
async fn guard(State(app): State<App>, mut req: Request, next: Next) -> Response {
    if let Some(tokens) = &app.options.tokens
        && let Err(problem) = tokens.authorize(req.method(), req.headers())
    {
        return problem.into_response();
    }
    req.extensions_mut()
        .insert(BodyTimeLimit(app.options.body_time_limit));
    next.run(req).await
}

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-route",
        "no such route",
        "no route matches this path; see /api/v1/openapi.json",
    )
}

/// Liveness and store reachability: 200 when the store answers, 503 when it does not.
async fn healthz(State(app): State<App>) -> Response {
    // A read of an id no store mints: NotFound proves the store answered.
    match app.store.get_topology(TopologyId::new(u64::MAX)).await {
        Ok(_) | Err(StoreError::NotFound { .. }) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => app.fail(&e, VersionSource::Body).into_response(),
    }
}

// ---- extraction helpers ------------------------------------------------------------------

fn bad_path(rejection: &PathRejection) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "bad-id",
        "an id in the path is unusable",
        rejection.body_text(),
    )
}

fn bad_query(rejection: &QueryRejection) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "bad-query",
        "the query string is unusable",
        rejection.body_text(),
    )
}

/// A response carrying `value` as JSON, the version's ETag and no caching (a status change
/// does not bump the version, so the tag validates writes, not cached reads).
fn versioned<T: serde::Serialize>(status: StatusCode, version: u64, value: &T) -> Response {
    let mut response = (status, Json(value)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag(version));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn no_content(version: Option<u64>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(v) = version {
        response.headers_mut().insert(header::ETAG, etag(v));
    }
    response
}

type Id = Result<Path<TopologyId>, PathRejection>;

fn id_of(path: Id) -> Result<TopologyId, Problem> {
    path.map(|Path(id)| id).map_err(|r| bad_path(&r))
}

// ---- topologies --------------------------------------------------------------------------

/// A topology to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTopology {
    /// Unique; stored in NFC.
    name: String,
}

/// Creates a `pending` topology at version 1.
#[utoipa::path(
    post, path = "/api/v1/topologies", tag = "topologies",
    request_body = CreateTopology,
    responses(
        (status = 201, description = "created; ETag is its version", body = TopologyRecordDoc),
        (status = 409, description = "the name is taken", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "an unusable name or body", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_topology(
    State(app): State<App>,
    body: Result<VersionedJson<CreateTopology>, Problem>,
) -> Result<Response, Problem> {
    let body = body?;
    if body.expected_version.is_some() {
        return Err(
            invalid_body("a new topology has no version to expect".into())
                .with("field", "expected_version"),
        );
    }
    let record = app
        .store
        .create_topology(&body.value.name)
        .await
        .map_err(|e| app.fail(&e, VersionSource::Body))?;
    let mut response = versioned(StatusCode::CREATED, record.version, &record);
    if let Ok(location) = HeaderValue::from_str(&[API_PREFIX, "/", &record.id.to_string()].concat())
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `?status=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<TopologyStatus>,
}

/// Lists topologies by id, optionally one status only.
#[utoipa::path(
    get, path = "/api/v1/topologies", tag = "topologies",
    params(("status" = Option<String>, Query, description = "only topologies in this status")),
    responses(
        (status = 200, description = "by id", body = Vec<TopologyRecordDoc>),
        (status = 400, description = "an unknown status", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_topologies(
    State(app): State<App>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|r| bad_query(&r))?;
    let list = pages(
        |page| app.store.list_topologies(query.status, page),
        |_| false,
    )
    .await
    .map_err(|e| app.fail(&e, VersionSource::Body))?;
    Ok(Json(list).into_response())
}

/// A topology with its LANs, deckies and edges, in one snapshot; ETag is its version.
#[utoipa::path(
    get, path = "/api/v1/topologies/{id}", tag = "topologies",
    params(("id" = u64, Path, description = "topology id")),
    responses(
        (status = 200, description = "the topology", body = TopologyDetailDoc),
        (status = 400, description = "an unusable id", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such topology", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn topology_detail(State(app): State<App>, id: Id) -> Result<Response, Problem> {
    let id = id_of(id)?;
    let detail = app
        .store
        .topology_detail(id)
        .await
        .map_err(|e| app.fail(&e, VersionSource::Body))?;
    Ok(versioned(StatusCode::OK, detail.topology.version, &detail))
}

/// Deletes a topology and its children, from `pending`, `torn_down` or `failed`.
#[utoipa::path(
    delete, path = "/api/v1/topologies/{id}", tag = "topologies",
    params(("id" = u64, Path, description = "topology id"), ("If-Match" = Option<String>, Header, description = "the version last read")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such topology", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "its status refuses a delete", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "stale If-Match", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "If-Match required", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn delete_topology(
    State(app): State<App>,
    id: Id,
    if_match: Result<IfMatch, Problem>,
    body: Result<OptionalJson, Problem>,
) -> Result<Response, Problem> {
    let id = id_of(id)?;
    let expected = app.expected(if_match?, parse_optional_version(&body?.0)?)?;
    app.store
        .delete_topology(id, expected.version)
        .await
        .map_err(|e| app.fail(&e, expected.source))?;
    Ok(no_content(None))
}

/// Runs one transition with a status precondition and answers with the row after it.
async fn move_to(
    app: &App,
    id: TopologyId,
    to: TopologyStatus,
    reason: Option<&str>,
    from: Option<TopologyStatus>,
    expected: Expected,
    status: StatusCode,
) -> Result<Response, Problem> {
    let precondition = Precondition {
        status: from,
        version: expected.version,
    };
    let done = app
        .store
        .transition_status(id, to, reason, precondition)
        .await
        .map_err(|e| app.fail(&e, expected.source))?;
    let version = done.topology.version;
    Ok(if status == StatusCode::ACCEPTED {
        versioned(status, version, &done.topology)
    } else {
        versioned(status, version, &done)
    })
}

/// Starts a deploy: `pending → deploying`, checked atomically; a worker carries it on
/// through the transitions route.
#[utoipa::path(
    post, path = "/api/v1/topologies/{id}/deploy", tag = "lifecycle",
    params(("id" = u64, Path, description = "topology id"), ("If-Match" = Option<String>, Header, description = "the version last read")),
    responses(
        (status = 202, description = "now deploying", body = TopologyRecordDoc),
        (status = 404, description = "no such topology", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "not pending (stale-status)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "stale If-Match", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn deploy(
    State(app): State<App>,
    id: Id,
    if_match: Result<IfMatch, Problem>,
    body: Result<OptionalJson, Problem>,
) -> Result<Response, Problem> {
    let id = id_of(id)?;
    let expected = app.expected(if_match?, parse_optional_version(&body?.0)?)?;
    let from = Some(TopologyStatus::Pending);
    move_to(
        &app,
        id,
        TopologyStatus::Deploying,
        None,
        from,
        expected,
        StatusCode::ACCEPTED,
    )
    .await
}

/// Starts a teardown: `active | degraded | failed | deploying → tearing_down`.
#[utoipa::path(
    post, path = "/api/v1/topologies/{id}/teardown", tag = "lifecycle",
    params(("id" = u64, Path, description = "topology id"), ("If-Match" = Option<String>, Header, description = "the version last read")),
    responses(
        (status = 202, description = "now tearing down", body = TopologyRecordDoc),
        (status = 404, description = "no such topology", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "its status cannot tear down (illegal-transition)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "stale If-Match", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn teardown(
    State(app): State<App>,
    id: Id,
    if_match: Result<IfMatch, Problem>,
    body: Result<OptionalJson, Problem>,
) -> Result<Response, Problem> {
    let id = id_of(id)?;
    let expected = app.expected(if_match?, parse_optional_version(&body?.0)?)?;
    move_to(
        &app,
        id,
        TopologyStatus::TearingDown,
        None,
        None,
        expected,
        StatusCode::ACCEPTED,
    )
    .await
}

/// A worker's transition: from the status it believes current to `to` (an
/// `expected_version` member may ride along, checked and not bumped).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransitionRequest {
    /// The status the worker believes is current (checked atomically: `stale-status`).
    #[schema(value_type = String)]
    from: TopologyStatus,
    /// The status to move to.
    #[schema(value_type = String)]
    to: TopologyStatus,
    /// Why (recorded in the status log).
    #[serde(default)]
    reason: Option<String>,
}

/// Records a transition (`{from, to, reason}`), checked against the table, the believed
/// status and the version in one atomic step; the version is checked, never bumped.
#[utoipa::path(
    post, path = "/api/v1/topologies/{id}/transitions", tag = "lifecycle",
    params(("id" = u64, Path, description = "topology id"), ("If-Match" = Option<String>, Header, description = "the version last read")),
    request_body = TransitionRequest,
    responses(
        (status = 200, description = "recorded", body = TransitionedDoc),
        (status = 404, description = "no such topology", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "stale-status or illegal-transition", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "stale If-Match", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "an unusable body", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn transition(
    State(app): State<App>,
    id: Id,
    if_match: Result<IfMatch, Problem>,
    body: Result<VersionedJson<TransitionRequest>, Problem>,
) -> Result<Response, Problem> {
    let id = id_of(id)?;
    let (if_match, body) = (if_match?, body?);
    let request = body.value;
    let expected = app.expected(if_match, body.expected_version)?;
    move_to(
        &app,
        id,
        request.to,
        request.reason.as_deref(),
        Some(request.from),
        expected,
        StatusCode::OK,
    )
    .await
}

// ---- child edits -------------------------------------------------------------------------

/// A batch of child edits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBatch {
    edits: Vec<ChildEdit>,
}

/// Saves a canvas: a batch of child edits on a `pending` topology, all or nothing, one
/// version bump. An edit may name the LAN or decky an earlier edit of the batch adds,
/// `{"batch": i}`; the report gives the id each new row got.
#[utoipa::path(
    post, path = "/api/v1/topologies/{id}/edits", tag = "canvas",
    params(("id" = u64, Path, description = "topology id"), ("If-Match" = Option<String>, Header, description = "the version last read")),
    request_body = EditBatchDoc,
    responses(
        (status = 200, description = "applied; ETag is the new version", body = EditReportDoc),
        (status = 404, description = "no such topology or row", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "not pending, a duplicate, a stale body version", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "stale If-Match", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "an unusable edit, or a batch-local reference to nothing earlier in the batch (`bad-reference`, naming the `edit` and `field`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn edit_batch(
    State(app): State<App>,
    id: Id,
    if_match: Result<IfMatch, Problem>,
    body: Result<VersionedJson<EditBatch>, Problem>,
) -> Result<Response, Problem> {
    let id = id_of(id)?;
    let (if_match, body) = (if_match?, body?);
    let expected = app.expected(if_match, body.expected_version)?;
    let report = app
        .store
        .edit(id, expected.version, &body.value.edits)
        .await
        .map_err(|e| app.fail(&e, expected.source))?;
    Ok(versioned(StatusCode::OK, report.version, &report))
}

/// Applies one child edit and answers with the touched id and the version after it.
async fn edit_one<I: serde::Serialize>(
    app: &App,
    id: TopologyId,
    expected: Expected,
    edit: ChildEdit,
    created: StatusCode,
    pick: impl Fn(crate::store::Touched) -> Option<I>,
) -> Result<Response, Problem> {
    let edited = app
        .store
        .edit_one(id, expected.version, edit)
        .await
        .map_err(|e| app.fail(&e, expected.source))?;
    let Some(row) = pick(edited.id) else {
        return Err(app.fail(
            &StoreError::Backend(crate::store::BackendError::new(
                "the store reported another kind of row than the edit touched",
            )),
            expected.source,
        ));
    };
    if created == StatusCode::NO_CONTENT {
        return Ok(no_content(Some(edited.version)));
    }
    Ok(versioned(
        created,
        edited.version,
        &crate::store::Edited {
            id: row,
            version: edited.version,
        },
    ))
}

fn lan(t: crate::store::Touched) -> Option<LanId> {
    match t {
        crate::store::Touched::Lan(id) => Some(id),
        _ => None,
    }
}

fn decky(t: crate::store::Touched) -> Option<DeckyId> {
    match t {
        crate::store::Touched::Decky(id) => Some(id),
        _ => None,
    }
}

fn edge(t: crate::store::Touched) -> Option<EdgeId> {
    match t {
        crate::store::Touched::Edge(id) => Some(id),
        _ => None,
    }
}

macro_rules! child_routes {
    (
        $add:ident, $update:ident, $delete:ident, $path:literal, $item:literal,
        $New:ty, $NewDoc:ty, $Patch:ty, $PatchDoc:ty, $Id:ty, $pick:ident,
        $Add:ident, $Update:ident, $Delete:ident
    ) => {
        #[doc = concat!("Adds a ", $item, " to a `pending` topology.")]
        #[utoipa::path(
            post, path = concat!("/api/v1/topologies/{id}/", $path), tag = "children",
            params(("id" = u64, Path, description = "topology id"), ("If-Match" = Option<String>, Header, description = "the version last read")),
            request_body = $NewDoc,
            responses(
                (status = 201, description = "added; ETag is the new version", body = EditedDoc),
                (status = 404, description = "no such topology", body = ProblemDoc, content_type = "application/problem+json"),
                (status = 409, description = "not pending, a duplicate name, a stale body version", body = ProblemDoc, content_type = "application/problem+json"),
                (status = 412, description = "stale If-Match", body = ProblemDoc, content_type = "application/problem+json"),
                (status = 422, description = "an unusable body", body = ProblemDoc, content_type = "application/problem+json"),
            )
        )]
        async fn $add(
            State(app): State<App>,
            id: Id,
            if_match: Result<IfMatch, Problem>,
            body: Result<VersionedJson<$New>, Problem>,
        ) -> Result<Response, Problem> {
            let id = id_of(id)?;
            let (if_match, body) = (if_match?, body?);
            let expected = app.expected(if_match, body.expected_version)?;
            edit_one(&app, id, expected, ChildEdit::$Add(body.value), StatusCode::CREATED, $pick).await
        }

        #[doc = concat!("Changes a ", $item, " of a `pending` topology; absent fields stay.")]
        #[utoipa::path(
            patch, path = concat!("/api/v1/topologies/{id}/", $path, "/{child}"), tag = "children",
            params(("id" = u64, Path, description = "topology id"), ("child" = u64, Path, description = "row id"), ("If-Match" = Option<String>, Header, description = "the version last read")),
            request_body = $PatchDoc,
            responses(
                (status = 200, description = "changed; ETag is the new version", body = EditedDoc),
                (status = 404, description = "no such topology or row", body = ProblemDoc, content_type = "application/problem+json"),
                (status = 409, description = "not pending, a duplicate name, a stale body version", body = ProblemDoc, content_type = "application/problem+json"),
                (status = 412, description = "stale If-Match", body = ProblemDoc, content_type = "application/problem+json"),
                (status = 422, description = "an unusable body", body = ProblemDoc, content_type = "application/problem+json"),
            )
        )]
        async fn $update(
            State(app): State<App>,
            ids: Result<Path<(TopologyId, $Id)>, PathRejection>,
            if_match: Result<IfMatch, Problem>,
            body: Result<VersionedJson<$Patch>, Problem>,
        ) -> Result<Response, Problem> {
            let Path((id, child)) = ids.map_err(|r| bad_path(&r))?;
            let (if_match, body) = (if_match?, body?);
            let expected = app.expected(if_match, body.expected_version)?;
            edit_one(&app, id, expected, ChildEdit::$Update(child.into(), body.value), StatusCode::OK, $pick)
                .await
        }

        #[doc = concat!("Deletes a ", $item, " (and its edges) of a `pending` topology.")]
        #[utoipa::path(
            delete, path = concat!("/api/v1/topologies/{id}/", $path, "/{child}"), tag = "children",
            params(("id" = u64, Path, description = "topology id"), ("child" = u64, Path, description = "row id"), ("If-Match" = Option<String>, Header, description = "the version last read")),
            responses(
                (status = 204, description = "deleted; ETag is the new version"),
                (status = 404, description = "no such topology or row", body = ProblemDoc, content_type = "application/problem+json"),
                (status = 409, description = "not pending, in use, a stale body version", body = ProblemDoc, content_type = "application/problem+json"),
                (status = 412, description = "stale If-Match", body = ProblemDoc, content_type = "application/problem+json"),
            )
        )]
        async fn $delete(
            State(app): State<App>,
            ids: Result<Path<(TopologyId, $Id)>, PathRejection>,
            if_match: Result<IfMatch, Problem>,
            body: Result<OptionalJson, Problem>,
        ) -> Result<Response, Problem> {
            let Path((id, child)) = ids.map_err(|r| bad_path(&r))?;
            let expected = app.expected(if_match?, parse_optional_version(&body?.0)?)?;
            edit_one(&app, id, expected, ChildEdit::$Delete(child.into()), StatusCode::NO_CONTENT, $pick)
                .await
        }
    };
}

child_routes!(
    add_lan,
    update_lan,
    delete_lan,
    "lans",
    "LAN",
    NewLan,
    NewLanDoc,
    LanPatch,
    LanPatchDoc,
    LanId,
    lan,
    AddLan,
    UpdateLan,
    DeleteLan
);
child_routes!(
    add_decky,
    update_decky,
    delete_decky,
    "deckies",
    "decky",
    NewDecky,
    NewDeckyDoc,
    DeckyPatch,
    DeckyPatchDoc,
    DeckyId,
    decky,
    AddDecky,
    UpdateDecky,
    DeleteDecky
);

/// Adds a decky ↔ LAN membership to a `pending` topology.
#[utoipa::path(
    post, path = "/api/v1/topologies/{id}/edges", tag = "children",
    params(("id" = u64, Path, description = "topology id"), ("If-Match" = Option<String>, Header, description = "the version last read")),
    request_body = NewEdgeDoc,
    responses(
        (status = 201, description = "added; ETag is the new version", body = EditedDoc),
        (status = 404, description = "no such topology, decky or LAN", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "not pending, a duplicate pair, a stale body version", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "stale If-Match", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "an end in another topology, an unusable body", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn add_edge(
    State(app): State<App>,
    id: Id,
    if_match: Result<IfMatch, Problem>,
    body: Result<VersionedJson<NewEdge>, Problem>,
) -> Result<Response, Problem> {
    let id = id_of(id)?;
    let (if_match, body) = (if_match?, body?);
    let expected = app.expected(if_match, body.expected_version)?;
    edit_one(
        &app,
        id,
        expected,
        ChildEdit::AddEdge(body.value),
        StatusCode::CREATED,
        edge,
    )
    .await
}

/// Deletes a membership of a `pending` topology.
#[utoipa::path(
    delete, path = "/api/v1/topologies/{id}/edges/{child}", tag = "children",
    params(("id" = u64, Path, description = "topology id"), ("child" = u64, Path, description = "edge id"), ("If-Match" = Option<String>, Header, description = "the version last read")),
    responses(
        (status = 204, description = "deleted; ETag is the new version"),
        (status = 404, description = "no such topology or edge", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "not pending, a stale body version", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "stale If-Match", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn delete_edge(
    State(app): State<App>,
    ids: Result<Path<(TopologyId, EdgeId)>, PathRejection>,
    if_match: Result<IfMatch, Problem>,
    body: Result<OptionalJson, Problem>,
) -> Result<Response, Problem> {
    let Path((id, child)) = ids.map_err(|r| bad_path(&r))?;
    let expected = app.expected(if_match?, parse_optional_version(&body?.0)?)?;
    edit_one(
        &app,
        id,
        expected,
        ChildEdit::DeleteEdge(child),
        StatusCode::NO_CONTENT,
        edge,
    )
    .await
}

// ---- the mutation queue and the status log -----------------------------------------------

/// A live edit to queue.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnqueueRequest {
    /// The operation.
    #[schema(value_type = String)]
    op: MutationOp,
    /// Its arguments, a JSON object (stored as JSON text).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    payload: Option<Value>,
}

/// What an enqueue answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct EnqueueResponse {
    mutation_id: u64,
    /// Always `pending`.
    state: &'static str,
    /// The topology's version after the enqueue (also the ETag).
    version: u64,
}

/// Queues a live edit on an `active` or `degraded` topology; a matching version is bumped.
#[utoipa::path(
    post, path = "/api/v1/topologies/{id}/mutations", tag = "mutations",
    params(("id" = u64, Path, description = "topology id"), ("If-Match" = Option<String>, Header, description = "the version last read")),
    request_body = EnqueueRequest,
    responses(
        (status = 202, description = "queued; ETag is the new version", body = EnqueueResponse),
        (status = 404, description = "no such topology", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "the queue is closed in this status, a stale body version", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "stale If-Match", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "an unknown op, a payload that is not an object", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn enqueue_mutation(
    State(app): State<App>,
    id: Id,
    if_match: Result<IfMatch, Problem>,
    body: Result<VersionedJson<EnqueueRequest>, Problem>,
) -> Result<Response, Problem> {
    let id = id_of(id)?;
    let (if_match, body) = (if_match?, body?);
    let expected = app.expected(if_match, body.expected_version)?;
    let payload = Value::Object(object_or_empty(body.value.payload)?).to_string();
    let edited = app
        .store
        .enqueue_mutation(id, body.value.op, &payload, expected.version)
        .await
        .map_err(|e| app.fail(&e, expected.source))?;
    Ok(versioned(
        StatusCode::ACCEPTED,
        edited.version,
        &EnqueueResponse {
            mutation_id: edited.id.get(),
            state: MutationState::Pending.as_str(),
            version: edited.version,
        },
    ))
}

/// `?state=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MutationQuery {
    state: Option<MutationState>,
}

/// A topology's mutations, newest first.
#[utoipa::path(
    get, path = "/api/v1/topologies/{id}/mutations", tag = "mutations",
    params(("id" = u64, Path, description = "topology id"), ("state" = Option<String>, Query, description = "only mutations in this state")),
    responses(
        (status = 200, description = "newest first", body = Vec<MutationDoc>),
        (status = 400, description = "an unknown state", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such topology", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_mutations(
    State(app): State<App>,
    id: Id,
    query: Result<Query<MutationQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let id = id_of(id)?;
    let Query(query) = query.map_err(|r| bad_query(&r))?;
    let list = pages(
        |page| app.store.list_mutations(id, query.state, page),
        |_| false,
    )
    .await
    .map_err(|e| app.fail(&e, VersionSource::Body))?;
    Ok(Json(list).into_response())
}

/// `?limit=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    limit: Option<usize>,
}

/// The status log, newest first, at most `limit` (1..=1000, default 100) entries.
#[utoipa::path(
    get, path = "/api/v1/topologies/{id}/status-events", tag = "lifecycle",
    params(("id" = u64, Path, description = "topology id"), ("limit" = Option<u32>, Query, description = "1 to 1000, default 100")),
    responses(
        (status = 200, description = "newest first", body = Vec<StatusEventDoc>),
        (status = 400, description = "a limit out of range", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such topology", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn status_events(
    State(app): State<App>,
    id: Id,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let id = id_of(id)?;
    let Query(query) = query.map_err(|r| bad_query(&r))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-query",
            "the query string is unusable",
            format!("limit must be from 1 to {MAX_PAGE}"),
        )
        .with("field", "limit"));
    }
    let log = app
        .store
        .list_status_events(id, PageRequest::first(limit))
        .await
        .map_err(|e| app.fail(&e, VersionSource::Body))?;
    Ok(Json(log.items).into_response())
}

/// The rows of a list, page after page in the store's order, up to and without the first
/// row for which `stop` holds (a newest-first list read back to a cursor) or to its end.
pub(crate) async fn pages<T, F, Fut>(
    mut read: F,
    stop: impl Fn(&T) -> bool,
) -> Result<Vec<T>, StoreError>
where
    T: Listed,
    F: FnMut(PageRequest<T::Key>) -> Fut,
    Fut: core::future::Future<Output = Result<Page<T>, StoreError>>,
{
    let mut rows = Vec::new();
    let mut request = PageRequest::first(MAX_PAGE);
    loop {
        let page = read(request).await?;
        let next = page.next_page(MAX_PAGE);
        for row in page.items {
            if stop(&row) {
                return Ok(rows);
            }
            rows.push(row);
        }
        match next {
            Some(later) => request = later,
            None => return Ok(rows),
        }
    }
}
