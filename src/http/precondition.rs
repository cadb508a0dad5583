//! Versions on the wire: a strong `ETag` of a topology's version, the `If-Match`
//! extractor, and the rule joining it with a version given in the body.

use std::string::ToString;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::problem::{Problem, VersionSource};
use crate::MAX_VERSION;

/// The strong entity tag of a topology version: the version in quotes, `"7"`.
///
/// The tag names the topology's *version*, the optimistic-concurrency token of its
/// editable content, so it is what `If-Match` is checked against on every write.
///
/// ```
/// assert_eq!(topostate::http::etag(7), "\"7\"");
/// ```
#[must_use]
pub fn etag(version: u64) -> HeaderValue {
    // Digits and quotes are always a valid header value.
    HeaderValue::from_str(&["\"", &version.to_string(), "\""].concat())
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// The `If-Match` precondition of a request (RFC 9110 §13.1.1).
///
/// As an axum extractor it reads every `If-Match` header of the request:
///
/// | header | value |
/// |---|---|
/// | absent | [`IfMatch::Absent`] |
/// | `*` | [`IfMatch::Any`]: the resource must exist, whatever its version |
/// | `"7"` | [`IfMatch::Version`]`(7)` |
/// | `W/"7"` | [`IfMatch::Weak`]: never matches (`If-Match` compares strongly), so a write with it is **412** `weak-if-match` |
///
/// Anything else (an unquoted or non-numeric tag, 0, a version past `MAX_VERSION`, a list
/// of several tags) is refused with **400** `bad-if-match`: a write checks exactly one
/// version, and a tag this server never minted cannot name one.
///
/// ```
/// use axum::http::HeaderMap;
/// use topostate::http::IfMatch;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("if-match", "\"3\"".parse()?);
/// assert_eq!(IfMatch::from_headers(&headers), Ok(IfMatch::Version(3)));
/// headers.insert("if-match", "\"3\", \"4\"".parse()?);
/// assert_eq!(IfMatch::from_headers(&headers).unwrap_err().status(), 400);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// No `If-Match` header.
    Absent,
    /// `If-Match: *`.
    Any,
    /// A weak tag: it never matches under the strong comparison `If-Match` uses.
    Weak,
    /// One strong tag naming a version.
    Version(u64),
}

impl IfMatch {
    /// Reads the precondition from a request's headers.
    ///
    /// # Errors
    ///
    /// A [`Problem`] with status 400 (`bad-if-match`) for a value that names no single
    /// version, as the type's docs list.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, Problem> {
        let mut values = headers.get_all(header::IF_MATCH).iter();
        let Some(value) = values.next() else {
            return Ok(Self::Absent);
        };
        if values.next().is_some() {
            return Err(bad_if_match("If-Match must name exactly one version"));
        }
        let text = value
            .to_str()
            .map_err(|_| bad_if_match("If-Match is not visible ASCII"))?
            .trim();
        if text == "*" {
            return Ok(Self::Any);
        }
        if text.contains(',') {
            return Err(bad_if_match("If-Match must name exactly one version"));
        }
        let (weak, tag) = match text.strip_prefix("W/") {
            Some(tag) => (true, tag),
            None => (false, text),
        };
        let digits = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .ok_or_else(|| bad_if_match("If-Match must be a quoted entity tag such as \"3\""))?;
        let version = parse_version(digits).ok_or_else(|| {
            bad_if_match("If-Match must name a version this server issued: an integer from 1")
        })?;
        Ok(if weak {
            Self::Weak
        } else {
            Self::Version(version)
        })
    }
}

/// A version as written in a tag: ASCII digits only (no sign, no spaces), `1..=MAX_VERSION`.
fn parse_version(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u64>()
        .ok()
        .filter(|v| (1..=MAX_VERSION).contains(v))
}

fn bad_if_match(detail: &'static str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "bad-if-match",
        "the If-Match header is unusable",
        detail,
    )
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_headers(&parts.headers)
    }
}

/// The version a write checks, and where it came from.
///
/// `#[non_exhaustive]`: a later version may add fields; read one from
/// [`resolve`](Self::resolve).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Expected {
    /// The version to check (`None`: unchecked and unbumped, the store's meaning).
    pub version: Option<u64>,
    /// Where it came from, which decides the status of a stale one.
    pub source: VersionSource,
}

impl Expected {
    /// Joins the `If-Match` precondition with the body's `expected_version`.
    ///
    /// `If-Match` wins when both are given and agree; when they disagree the request is
    /// refused (400 `conflicting-versions`), since no single check could honour both. With
    /// `require_if_match`, a write without `If-Match` is **428** `if-match-required`, even
    /// when the body carries a version: the service asked for HTTP preconditions.
    ///
    /// ```
    /// use topostate::http::{Expected, IfMatch, VersionSource};
    ///
    /// let e = Expected::resolve(IfMatch::Version(3), Some(3), false)?;
    /// assert_eq!((e.version, e.source), (Some(3), VersionSource::IfMatch));
    /// let e = Expected::resolve(IfMatch::Absent, Some(3), false)?;
    /// assert_eq!((e.version, e.source), (Some(3), VersionSource::Body));
    /// assert_eq!(Expected::resolve(IfMatch::Absent, Some(3), true).unwrap_err().status(), 428);
    /// # Ok::<(), topostate::http::Problem>(())
    /// ```
    ///
    /// # Errors
    ///
    /// 428 `if-match-required`, 400 `conflicting-versions`, as above; 412 `weak-if-match`
    /// for a weak tag, which never matches.
    pub fn resolve(
        if_match: IfMatch,
        body: Option<u64>,
        require_if_match: bool,
    ) -> Result<Self, Problem> {
        let from_header = |version| Self {
            version,
            source: VersionSource::IfMatch,
        };
        match (if_match, body) {
            (IfMatch::Absent, _) if require_if_match => Err(Problem::new(
                StatusCode::PRECONDITION_REQUIRED,
                "if-match-required",
                "this service requires If-Match on writes",
                "send If-Match with the ETag of the version you last read",
            )),
            (IfMatch::Absent, version) => Ok(Self {
                version,
                source: VersionSource::Body,
            }),
            (IfMatch::Version(h), Some(b)) if h != b => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "conflicting-versions",
                "If-Match and expected_version disagree",
                [
                    "If-Match names version ",
                    &h.to_string(),
                    ", expected_version ",
                    &b.to_string(),
                ]
                .concat(),
            )
            .with("if_match", h)
            .with("expected_version", b)),
            (IfMatch::Version(h), _) => Ok(from_header(Some(h))),
            (IfMatch::Weak, _) => Err(Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "weak-if-match",
                "a weak entity tag never matches",
                "If-Match compares strongly (RFC 9110 13.1.1); send the ETag as it was given",
            )),
            // `*` asks only that the topology exist, which every write checks anyway; a body
            // version is still checked, as a body version.
            (IfMatch::Any, version) => Ok(Self {
                version,
                source: if version.is_some() {
                    VersionSource::Body
                } else {
                    VersionSource::IfMatch
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(values: &[&str]) -> Result<IfMatch, u16> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
        }
        IfMatch::from_headers(&headers).map_err(|p| p.status())
    }

    #[test]
    fn if_match_values() {
        assert_eq!(read(&[]), Ok(IfMatch::Absent));
        assert_eq!(read(&["*"]), Ok(IfMatch::Any));
        assert_eq!(read(&["\"12\""]), Ok(IfMatch::Version(12)));
        assert_eq!(read(&[" \"12\" "]), Ok(IfMatch::Version(12)));
        assert_eq!(read(&["W/\"12\""]), Ok(IfMatch::Weak));
        for bad in [
            "12",
            "\"\"",
            "\"0\"",
            "\"-1\"",
            "\"+1\"",
            "\"1 \"",
            "\"abc\"",
            "\"1\", \"2\"",
            "\"9223372036854775808\"",
            "\"99999999999999999999999\"",
        ] {
            assert_eq!(read(&[bad]), Err(400), "{bad}");
        }
        assert_eq!(read(&["\"1\"", "\"1\""]), Err(400));
    }

    #[test]
    fn etag_is_the_quoted_version() {
        assert_eq!(etag(1), "\"1\"");
        assert_eq!(
            read(&[etag(MAX_VERSION).to_str().unwrap()]),
            Ok(IfMatch::Version(MAX_VERSION))
        );
    }

    #[test]
    fn resolve_rules() {
        let r = |m, b, req| Expected::resolve(m, b, req).map_err(|p| p.status());
        assert_eq!(
            r(IfMatch::Absent, None, false),
            Ok(Expected {
                version: None,
                source: VersionSource::Body
            })
        );
        assert_eq!(r(IfMatch::Absent, None, true), Err(428));
        assert_eq!(r(IfMatch::Version(2), Some(3), false), Err(400));
        assert_eq!(
            r(IfMatch::Version(2), None, true),
            Ok(Expected {
                version: Some(2),
                source: VersionSource::IfMatch
            })
        );
        assert_eq!(r(IfMatch::Weak, None, false), Err(412));
        assert_eq!(
            r(IfMatch::Any, None, true),
            Ok(Expected {
                version: None,
                source: VersionSource::IfMatch
            })
        );
    }
}
