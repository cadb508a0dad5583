//! Request bodies: JSON only, size- and time-bounded, every refusal a [`Problem`].

use std::string::{String, ToString};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::problem::Problem;
use crate::MAX_VERSION;

/// How long reading a request body may take; set by the router per request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyTimeLimit(pub(crate) Duration);

/// A JSON body of type `T` and the domain's optional `expected_version` member beside
/// `T`'s own fields (the replaced service's request bodies carried it so: `{"name": …,
/// "expected_version": 3}`).
#[derive(Debug)]
pub(crate) struct VersionedJson<T> {
    pub(crate) value: T,
    pub(crate) expected_version: Option<u64>,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for VersionedJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_json_bytes(req, state).await?;
        parse_versioned(&bytes)
    }
}

/// Parses `{…T's fields…, "expected_version": n}`.
pub(crate) fn parse_versioned<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<VersionedJson<T>, Problem> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| json_problem(&e))?;
    let Value::Object(mut members) = value else {
        return Err(invalid_body("the body must be a JSON object".into()));
    };
    let expected_version = match members.remove("expected_version") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|v| (1..=MAX_VERSION).contains(v))
                .ok_or_else(|| {
                    invalid_body(
                        "invalid expected_version: must be an integer from 1 to \
                         9223372036854775807"
                            .into(),
                    )
                    .with("field", "expected_version")
                })?,
        ),
    };
    let value = T::deserialize(Value::Object(members)).map_err(|e| invalid_body(e.to_string()))?;
    Ok(VersionedJson {
        value,
        expected_version,
    })
}

/// Parses an empty body or `{"expected_version": n}` (for routes whose only input is the
/// version, like deploy).
pub(crate) fn parse_optional_version(bytes: &[u8]) -> Result<Option<u64>, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nothing {}
    Ok(parse_versioned::<Nothing>(bytes)?.expected_version)
}

/// An optional body: empty, or JSON (declared so).
#[derive(Debug)]
pub(crate) struct OptionalJson(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for OptionalJson {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared_json = is_json(&req);
        let bytes = read_bytes(req, state).await?;
        if !bytes.iter().all(u8::is_ascii_whitespace) && !declared_json {
            return Err(not_json());
        }
        Ok(Self(bytes))
    }
}

/// Does the request declare a JSON body (`application/json` or any `+json` type)?
fn is_json(req: &Request) -> bool {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

fn not_json() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "the body must be JSON",
        "send Content-Type: application/json",
    )
}

/// Reads a body that must be declared JSON.
async fn read_json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Problem> {
    if !is_json(&req) {
        return Err(not_json());
    }
    read_bytes(req, state).await
}

/// Reads a body within the size limit (413) and the time limit (408).
async fn read_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Problem> {
    let limit = req
        .extensions()
        .get::<BodyTimeLimit>()
        .map_or(Duration::from_secs(30), |l| l.0);
    match tokio::time::timeout(limit, Bytes::from_request(req, state)).await {
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            "the request body did not arrive in time",
            "the request body was not received within the server's time limit",
        )),
        Ok(Err(rejection)) => Err(bytes_problem(&rejection)),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

fn bytes_problem(rejection: &BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "the request body is too large",
            "the request body exceeds the server's size limit",
        )
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "unreadable-body",
            "the request body could not be read",
            rejection.body_text(),
        )
    }
}

/// A body that is not JSON at all is 400; JSON that does not fit is 422.
fn json_problem(error: &serde_json::Error) -> Problem {
    if error.is_data() {
        invalid_body(error.to_string())
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "the body is not valid JSON",
            error.to_string(),
        )
    }
}

pub(crate) fn invalid_body(detail: String) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-body",
        "the body does not fit the route",
        detail,
    )
}

/// The object members of a body, for the routes that read `payload` as raw JSON.
pub(crate) fn object_or_empty(value: Option<Value>) -> Result<Map<String, Value>, Problem> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(
            invalid_body("invalid payload: must be a JSON object".into()).with("field", "payload"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewLan;

    #[test]
    fn versioned_bodies() {
        let ok = parse_versioned::<NewLan>(
            br#"{"name":"dmz","subnet":"10.0.0.0/24","expected_version":3}"#,
        )
        .unwrap();
        assert_eq!(ok.expected_version, Some(3));
        assert_eq!(ok.value, NewLan::new("dmz", "10.0.0.0/24"));
        let status = |b: &[u8]| parse_versioned::<NewLan>(b).unwrap_err().status();
        assert_eq!(status(b"{"), 400);
        assert_eq!(status(b"[]"), 422);
        assert_eq!(
            status(br#"{"name":"dmz","subnet":"x","expected_version":0}"#),
            422
        );
        assert_eq!(
            status(br#"{"name":"dmz","subnet":"x","expected_version":"3"}"#),
            422
        );
        assert_eq!(
            status(br#"{"name":"dmz","subnet":"x","colour":"red"}"#),
            422
        );
        assert_eq!(parse_optional_version(b"").unwrap(), None);
        assert_eq!(
            parse_optional_version(br#"{"expected_version":2}"#).unwrap(),
            Some(2)
        );
        assert_eq!(
            parse_optional_version(br#"{"x":2}"#).unwrap_err().status(),
            422
        );
    }
}
