//! [`Problem`]: every refusal as an RFC 9457 `application/problem+json` document.

use std::borrow::Cow;
use std::string::{String, ToString};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::store::StoreError;

/// The prefix of every problem `type` this crate writes; the rest is the problem's slug,
/// e.g. `urn:topostate:problem:version-conflict`.
///
/// A URN rather than a web address: it is a stable name to match on, and there is no page
/// a client would be tempted to fetch.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:topostate:problem:";

/// The media type of a problem document (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Where the version a write checked came from; it decides the status of a stale one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionSource {
    /// The `If-Match` header: a stale version is a failed HTTP precondition, **412**.
    IfMatch,
    /// The request body's `expected_version` (the domain's own field): a stale version is a
    /// conflict with the resource's state, **409**.
    Body,
}

/// An RFC 9457 problem document: `type`, `title`, `status`, `detail`, and the structured
/// fields of the refusal as extension members (`current`, `expected`, `topology_status`,
/// `field`, …), so a client acts on fields rather than on the text. A topology's status is
/// `topology_status`, since `status` is the document's HTTP status code (RFC 9457 §3.1.2).
///
/// ```
/// use topostate::http::{Problem, VersionSource};
/// use topostate::store::StoreError;
/// use topostate::VersionConflict;
///
/// let stale = StoreError::VersionConflict(VersionConflict { current: 4, expected: 3 });
/// let problem = Problem::from_store(&stale, VersionSource::IfMatch);
/// assert_eq!(problem.status(), 412);
/// assert_eq!(problem.type_uri(), "urn:topostate:problem:version-conflict");
/// assert_eq!(problem.extension("current"), Some(&serde_json::json!(4)));
/// // The same stale version given in the body is a conflict, not a failed precondition.
/// assert_eq!(Problem::from_store(&stale, VersionSource::Body).status(), 409);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: Cow<'static, str>,
    extensions: Map<String, Value>,
}

/// A problem's extension member named like a standard member would shadow it.
const RESERVED: [&str; 5] = ["type", "title", "status", "detail", "instance"];

impl Problem {
    /// A problem of kind `slug` (its `type` is [`PROBLEM_TYPE_PREFIX`] + `slug`), with a
    /// short `title` fixed per kind and a `detail` saying what happened this time.
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            extensions: Map::new(),
        }
    }

    /// Adds an extension member. A name of a standard member (`type`, `title`, `status`,
    /// `detail`, `instance`) is kept under `problem_` + that name, so it cannot replace it.
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        let key = if RESERVED.contains(&name) {
            ["problem_", name].concat()
        } else {
            name.to_string()
        };
        self.extensions.insert(key, value.into());
        self
    }

    /// The HTTP status code.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// The kind's slug, e.g. `version-conflict`.
    #[must_use]
    pub fn slug(&self) -> &'static str {
        self.slug
    }

    /// The `type` URI.
    #[must_use]
    pub fn type_uri(&self) -> String {
        [PROBLEM_TYPE_PREFIX, self.slug].concat()
    }

    /// The `detail` text.
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// An extension member, by name.
    #[must_use]
    pub fn extension(&self, name: &str) -> Option<&Value> {
        self.extensions.get(name)
    }

    /// The document as JSON.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut doc = Map::with_capacity(4 + self.extensions.len());
        doc.insert("type".into(), Value::String(self.type_uri()));
        doc.insert("title".into(), Value::from(self.title));
        doc.insert("status".into(), Value::from(self.status.as_u16()));
        doc.insert("detail".into(), Value::from(self.detail.as_ref()));
        for (name, value) in &self.extensions {
            doc.insert(name.clone(), value.clone());
        }
        Value::Object(doc)
    }

    /// Is this a server-side failure (5xx) whose cause belongs in the logs?
    #[must_use]
    pub fn is_server_error(&self) -> bool {
        self.status.is_server_error()
    }

    /// The problem for a store error.
    ///
    /// | error | status | slug | fields |
    /// |---|---|---|---|
    /// | `NotFound` | 404 | `not-found` | `entity`, `id` |
    /// | `NotEditable` | 409 | `not-editable` | `topology_status`, `reason` |
    /// | `LanInUse` | 409 | `lan-in-use` | `lan`, `decky`, `decky_name` |
    /// | `ForeignEnd` | 422 | `foreign-end` | `entity`, `id`, `owner`, `topology` |
    /// | `VersionConflict` | 412 from `If-Match`, 409 from the body | `version-conflict` | `current`, `expected` |
    /// | `Duplicate` | 409 | `duplicate` | `entity`, `name` |
    /// | `StaleStatus` | 409 | `stale-status` | `topology_status` (stored), `expected` |
    /// | `IllegalTransition` | 409 | `illegal-transition` | `topology_status` (stored), `to` |
    /// | `MutationState` | 409 | `mutation-state` | `id`, `state` (stored), `expected` |
    /// | `LeaseLost` | 409 | `lease-lost` | `id`, `token`, `current_token`, `state`, `holder`, `lease_until` |
    /// | `EditsCommitted` | 409 | `edits-committed` | `id`, `edited_by` |
    /// | `VersionOverflow` | 409 | `version-overflow` | `current` |
    /// | `Invalid` | 422 | `invalid` | `field` |
    /// | `BadReference` | 422 | `bad-reference` | `edit` (its index), `field`, `target` (the index it names) |
    /// | `Corrupt` | 500 | `corrupt-row` | none |
    /// | `Backend` | 503 | `backend-unavailable` | none |
    /// | `Timeout` | 503 | `store-timeout` | none |
    /// | `OutcomeUnknown` | 503 | `outcome-unknown` | none |
    ///
    /// The server-side kinds (5xx) carry a fixed `detail` and no driver text: a driver's
    /// message can hold host names, SQL and paths. The caller logs the error itself.
    #[must_use]
    pub fn from_store(error: &StoreError, source: VersionSource) -> Self {
        match error {
            StoreError::NotFound { entity, id } => Self::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "not found",
                error.to_string(),
            )
            .with("entity", entity.as_str())
            .with("id", *id),
            StoreError::NotEditable(e) => Self::new(
                StatusCode::CONFLICT,
                "not-editable",
                "the topology's status refuses this write",
                error.to_string(),
            )
            .with("topology_status", e.status.as_str())
            .with("reason", e.reason.clone()),
            StoreError::LanInUse {
                lan,
                decky,
                decky_name,
            } => Self::new(
                StatusCode::CONFLICT,
                "lan-in-use",
                "the lan is some decky's only lan",
                error.to_string(),
            )
            .with("lan", lan.get())
            .with("decky", decky.get())
            .with("decky_name", decky_name.clone()),
            StoreError::ForeignEnd {
                entity,
                id,
                owner,
                topology,
            } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "foreign-end",
                "an edge end belongs to another topology",
                error.to_string(),
            )
            .with("entity", entity.as_str())
            .with("id", *id)
            .with("owner", *owner)
            .with("topology", *topology),
            StoreError::VersionConflict(c) => Self::new(
                match source {
                    VersionSource::IfMatch => StatusCode::PRECONDITION_FAILED,
                    VersionSource::Body => StatusCode::CONFLICT,
                },
                "version-conflict",
                "the expected version is stale",
                error.to_string(),
            )
            .with("current", c.current)
            .with("expected", c.expected),
            StoreError::Duplicate { entity, name } => Self::new(
                StatusCode::CONFLICT,
                "duplicate",
                "the name is taken",
                error.to_string(),
            )
            .with("entity", entity.as_str())
            .with("name", name.clone()),
            StoreError::StaleStatus { expected, found } => Self::new(
                StatusCode::CONFLICT,
                "stale-status",
                "the topology is not in the expected status",
                error.to_string(),
            )
            .with("topology_status", found.as_str())
            .with("expected", expected.as_str()),
            StoreError::IllegalTransition { from, to } => Self::new(
                StatusCode::CONFLICT,
                "illegal-transition",
                "the transition is not a legal edge",
                error.to_string(),
            )
            .with("topology_status", from.as_str())
            .with("to", to.as_str()),
            StoreError::WrongMutationState {
                id,
                expected,
                found,
            } => Self::new(
                StatusCode::CONFLICT,
                "mutation-state",
                "the mutation is not in the needed state",
                error.to_string(),
            )
            .with("id", id.get())
            .with("state", found.as_str())
            .with("expected", expected.as_str()),
            StoreError::LeaseLost {
                id,
                token,
                current_token,
                holder,
                state,
                lease_until,
            } => Self::new(
                StatusCode::CONFLICT,
                "lease-lost",
                "the claim's lease was taken over",
                error.to_string(),
            )
            .with("id", id.get())
            .with("token", *token)
            .with("current_token", *current_token)
            .with("state", state.as_str())
            .with("holder", holder.clone())
            // The wire form every other timestamp of the API has.
            .with(
                "lease_until",
                lease_until
                    .and_then(|t| serde_json::to_value(t).ok())
                    .unwrap_or(Value::Null),
            ),
            StoreError::EditsCommitted { id, edited_by } => Self::new(
                StatusCode::CONFLICT,
                "edits-committed",
                "the mutation's live edits were already committed",
                error.to_string(),
            )
            .with("id", id.get())
            .with("edited_by", *edited_by),
            StoreError::VersionOverflow(o) => Self::new(
                StatusCode::CONFLICT,
                "version-overflow",
                "the version is at its maximum",
                error.to_string(),
            )
            .with("current", o.current),
            StoreError::Invalid { field, .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "an argument is unusable",
                error.to_string(),
            )
            .with("field", *field),
            StoreError::BadReference {
                edit,
                field,
                target,
                ..
            } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad-reference",
                "an edit names a row its batch does not add before it",
                error.to_string(),
            )
            .with("edit", *edit)
            .with("field", *field)
            .with("target", *target),
            StoreError::Corrupt { .. } => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "corrupt-row",
                "a stored row is unreadable",
                "a stored row is unreadable; the server log names it",
            ),
            StoreError::Timeout { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-timeout",
                "the store did not answer in time",
                "the store did not answer in time; nothing was written, retry later",
            ),
            StoreError::OutcomeUnknown { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "outcome-unknown",
                "the write may or may not have been applied",
                "the connection to the store was lost after the write was sent; re-read \
                 before writing again",
            ),
            _ => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "backend-unavailable",
                "the store is unavailable",
                "the store is unavailable; retry later",
            ),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.to_json().to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::{BackendError, DeckyId, Entity, LanId, MutationId};
    use crate::{
        MutationState, TopologyNotEditable, TopologyStatus, VersionConflict, VersionOverflow,
    };

    /// An error, the status and slug it must map to, and fields it must carry.
    type Row = (StoreError, u16, &'static str, Vec<(&'static str, Value)>);

    /// One example of every variant, with the status, slug and fields it must map to.
    fn table() -> Vec<Row> {
        use serde_json::json;
        vec![
            (
                StoreError::NotFound {
                    entity: Entity::Lan,
                    id: 7,
                },
                404,
                "not-found",
                vec![("entity", json!("lan")), ("id", json!(7))],
            ),
            (
                StoreError::NotEditable(TopologyNotEditable {
                    status: TopologyStatus::Active,
                    reason: None,
                }),
                409,
                "not-editable",
                vec![
                    ("topology_status", json!("active")),
                    ("reason", Value::Null),
                ],
            ),
            (
                StoreError::LanInUse {
                    lan: LanId::new(2),
                    decky: DeckyId::new(3),
                    decky_name: "web".into(),
                },
                409,
                "lan-in-use",
                vec![
                    ("lan", json!(2)),
                    ("decky", json!(3)),
                    ("decky_name", json!("web")),
                ],
            ),
            (
                StoreError::ForeignEnd {
                    entity: Entity::Decky,
                    id: 3,
                    owner: 2,
                    topology: 1,
                },
                422,
                "foreign-end",
                vec![("owner", json!(2)), ("topology", json!(1))],
            ),
            (
                StoreError::VersionConflict(VersionConflict {
                    current: 5,
                    expected: 4,
                }),
                412,
                "version-conflict",
                vec![("current", json!(5)), ("expected", json!(4))],
            ),
            (
                StoreError::Duplicate {
                    entity: Entity::Topology,
                    name: "lab".into(),
                },
                409,
                "duplicate",
                vec![("entity", json!("topology")), ("name", json!("lab"))],
            ),
            (
                StoreError::StaleStatus {
                    expected: TopologyStatus::Pending,
                    found: TopologyStatus::Active,
                },
                409,
                "stale-status",
                vec![
                    ("topology_status", json!("active")),
                    ("expected", json!("pending")),
                ],
            ),
            (
                StoreError::IllegalTransition {
                    from: TopologyStatus::TornDown,
                    to: TopologyStatus::Deploying,
                },
                409,
                "illegal-transition",
                vec![
                    ("topology_status", json!("torn_down")),
                    ("to", json!("deploying")),
                ],
            ),
            (
                StoreError::WrongMutationState {
                    id: MutationId::new(9),
                    expected: MutationState::Applying,
                    found: MutationState::Applied,
                },
                409,
                "mutation-state",
                vec![("state", json!("applied")), ("expected", json!("applying"))],
            ),
            (
                StoreError::LeaseLost {
                    id: MutationId::new(9),
                    token: 2,
                    current_token: 3,
                    holder: Some("applier-b".into()),
                    state: MutationState::Applying,
                    lease_until: Some(crate::store::Timestamp::from_micros(1_000_000)),
                },
                409,
                "lease-lost",
                vec![
                    ("id", json!(9)),
                    ("token", json!(2)),
                    ("current_token", json!(3)),
                    ("state", json!("applying")),
                    ("holder", json!("applier-b")),
                    ("lease_until", json!("1970-01-01T00:00:01.000000Z")),
                ],
            ),
            (
                StoreError::EditsCommitted {
                    id: MutationId::new(9),
                    edited_by: 2,
                },
                409,
                "edits-committed",
                vec![("id", json!(9)), ("edited_by", json!(2))],
            ),
            (
                StoreError::VersionOverflow(VersionOverflow {
                    current: crate::MAX_VERSION,
                }),
                409,
                "version-overflow",
                vec![("current", json!(crate::MAX_VERSION))],
            ),
            (
                StoreError::Invalid {
                    field: "lan name",
                    problem: "must not be empty".into(),
                },
                422,
                "invalid",
                vec![("field", json!("lan name"))],
            ),
            (
                StoreError::BadReference {
                    edit: 3,
                    field: "edge decky",
                    target: 5,
                    problem: crate::store::RefProblem::NotEarlier,
                },
                422,
                "bad-reference",
                vec![
                    ("edit", json!(3)),
                    ("field", json!("edge decky")),
                    ("target", json!(5)),
                ],
            ),
            (
                StoreError::Corrupt {
                    table: "lans",
                    row: "2".into(),
                    problem: "secret".into(),
                },
                500,
                "corrupt-row",
                vec![],
            ),
            (
                StoreError::Backend(BackendError::new("password authentication failed")),
                503,
                "backend-unavailable",
                vec![],
            ),
            (
                StoreError::Timeout {
                    operation: "edit",
                    waiting_for: "a free pooled connection",
                    after: Duration::from_secs(1),
                    cause: None,
                },
                503,
                "store-timeout",
                vec![],
            ),
            (
                StoreError::OutcomeUnknown {
                    operation: "edit",
                    why: "host db1 vanished".into(),
                    cause: BackendError::new("connection reset by 10.0.0.9"),
                },
                503,
                "outcome-unknown",
                vec![],
            ),
        ]
    }

    #[test]
    fn every_store_error_maps_to_its_status_slug_and_fields() {
        for (error, status, slug, fields) in table() {
            let problem = Problem::from_store(&error, VersionSource::IfMatch);
            assert_eq!(problem.status(), status, "{error}");
            assert_eq!(problem.slug(), slug, "{error}");
            let doc = problem.to_json();
            assert_eq!(doc["type"], Value::from(problem.type_uri()));
            assert_eq!(doc["status"], Value::from(status));
            for (name, value) in fields {
                assert_eq!(doc[name], value, "{error}: field {name}");
            }
        }
    }

    #[test]
    fn slugs_are_distinct() {
        let slugs: std::collections::BTreeSet<_> = table().iter().map(|t| t.2).collect();
        assert_eq!(slugs.len(), table().len());
    }

    #[test]
    fn server_side_problems_carry_no_driver_text() {
        for (error, ..) in table() {
            let problem = Problem::from_store(&error, VersionSource::Body);
            if problem.is_server_error() {
                let text = problem.to_json().to_string();
                for secret in ["password", "10.0.0.9", "db1", "secret"] {
                    assert!(!text.contains(secret), "{text}");
                }
            }
        }
    }

    #[test]
    fn a_stale_body_version_is_409_and_a_stale_if_match_412() {
        let stale = StoreError::VersionConflict(VersionConflict {
            current: 2,
            expected: 1,
        });
        assert_eq!(
            Problem::from_store(&stale, VersionSource::Body).status(),
            409
        );
        assert_eq!(
            Problem::from_store(&stale, VersionSource::IfMatch).status(),
            412
        );
    }

    #[test]
    fn an_extension_cannot_replace_a_standard_member() {
        let p = Problem::new(StatusCode::CONFLICT, "x", "x", "d").with("status", "active");
        let doc = p.to_json();
        assert_eq!(doc["status"], Value::from(409));
        assert_eq!(doc["problem_status"], Value::from("active"));
    }
}
