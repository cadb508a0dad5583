//! Bearer tokens and the two roles: `viewer` reads, `admin` also writes.

use std::boxed::Box;
use std::fmt;
use std::string::{String, ToString};
use std::vec::Vec;

use axum::http::{HeaderMap, Method, StatusCode, header};
use subtle::{Choice, ConstantTimeEq};

use super::problem::Problem;

/// The shortest token accepted: 16 characters leave no room for guessing over HTTP.
pub const MIN_TOKEN_LEN: usize = 16;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads (`GET`, `HEAD`) only.
    Viewer,
    /// Reads and writes.
    Admin,
}

impl Role {
    /// The role's name in a tokens file.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Admin => "admin",
        }
    }

    /// May this role make a request with `method`?
    #[must_use]
    pub fn allows(self, method: &Method) -> bool {
        self == Self::Admin || method == Method::GET || method == Method::HEAD
    }
}

/// The bearer tokens a server accepts, each with its role.
///
/// The text form is one `role token` pair per line; blank lines and lines starting with `#`
/// are skipped. A token is at least [`MIN_TOKEN_LEN`] visible ASCII characters. `Debug`
/// shows the roles only: a token never reaches a log through this type.
///
/// ```
/// use topostate::http::{Role, Tokens};
///
/// let tokens = Tokens::parse("# ops\nadmin 0123456789abcdef0123\nviewer fedcba9876543210fedc\n")?;
/// assert_eq!(tokens.role_of("fedcba9876543210fedc"), Some(Role::Viewer));
/// assert_eq!(tokens.role_of("guess"), None);
/// assert!(Tokens::parse("root 0123456789abcdef0123").is_err());
/// # Ok::<(), topostate::http::TokensError>(())
/// ```
#[derive(Clone)]
pub struct Tokens {
    entries: Vec<(Role, Box<[u8]>)>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field(
                "roles",
                &self.entries.iter().map(|e| e.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A tokens file line that cannot be read; the message names the line, never its token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tokens line {line}: {problem}")]
pub struct TokensError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

impl Tokens {
    /// Reads tokens from their text form.
    ///
    /// # Errors
    ///
    /// [`TokensError`] naming the first bad line: an unknown role, a missing or extra
    /// field, a token shorter than [`MIN_TOKEN_LEN`] or not visible ASCII, a token given
    /// twice; or the whole text holding no token.
    pub fn parse(text: &str) -> Result<Self, TokensError> {
        let mut entries: Vec<(Role, Box<[u8]>)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let bad = |problem: &str| TokensError {
                line: line_no,
                problem: problem.to_string(),
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let role = match fields.next() {
                Some("viewer") => Role::Viewer,
                Some("admin") => Role::Admin,
                _ => return Err(bad("the role must be `viewer` or `admin`")),
            };
            let token = fields
                .next()
                .ok_or_else(|| bad("expected `role token`, found no token"))?;
            if fields.next().is_some() {
                return Err(bad("expected `role token`, found more fields"));
            }
            if token.len() < MIN_TOKEN_LEN {
                return Err(bad("the token is shorter than 16 characters"));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad("the token must be visible ASCII"));
            }
            if entries.iter().any(|(_, t)| **t == *token.as_bytes()) {
                return Err(bad("the token is given twice"));
            }
            entries.push((role, token.as_bytes().into()));
        }
        if entries.is_empty() {
            return Err(TokensError {
                line: 0,
                problem: "no token given".into(),
            });
        }
        Ok(Self { entries })
    }

    /// The role of `token`, comparing it with every known token in constant time (the
    /// time taken depends on the number and lengths of the tokens, never on how much of
    /// one matches).
    #[must_use]
    pub fn role_of(&self, token: &str) -> Option<Role> {
        let given = token.as_bytes();
        let mut found: Option<Role> = None;
        for (role, known) in &self.entries {
            let equal: Choice = known.ct_eq(given);
            // Every entry is compared; tokens are distinct, so at most one is equal.
            if bool::from(equal) {
                found = Some(*role);
            }
        }
        found
    }

    /// Checks a request's `Authorization: Bearer` header against the method's need.
    ///
    /// # Errors
    ///
    /// **401** `unauthorized` without a valid token (none, not `Bearer`, unknown); **403**
    /// `forbidden` for a viewer's write.
    pub fn authorize(&self, method: &Method, headers: &HeaderMap) -> Result<Role, Problem> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            });
        let role = token.and_then(|t| self.role_of(t)).ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required",
                "send Authorization: Bearer <token>",
            )
        })?;
        if role.allows(method) {
            Ok(role)
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this role may not write",
                "a viewer token may only read; writes need an admin token",
            )
            .with("role", role.as_str()))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const ADMIN: &str = "admin-0123456789abcdef";
    const VIEWER: &str = "viewer-0123456789abcdef";

    fn tokens() -> Tokens {
        Tokens::parse(&["admin ", ADMIN, "\n\n  # c\nviewer ", VIEWER, "\n"].concat()).unwrap()
    }

    fn auth(value: Option<&str>, method: &Method) -> Result<Role, u16> {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        tokens().authorize(method, &h).map_err(|p| p.status())
    }

    #[test]
    fn roles_and_refusals() {
        let bearer = |t: &str| ["Bearer ", t].concat();
        assert_eq!(auth(Some(&bearer(ADMIN)), &Method::POST), Ok(Role::Admin));
        assert_eq!(auth(Some(&bearer(VIEWER)), &Method::GET), Ok(Role::Viewer));
        assert_eq!(auth(Some(&bearer(VIEWER)), &Method::DELETE), Err(403));
        assert_eq!(auth(None, &Method::GET), Err(401));
        assert_eq!(auth(Some(ADMIN), &Method::GET), Err(401));
        assert_eq!(
            auth(Some(&["Basic ", ADMIN].concat()), &Method::GET),
            Err(401)
        );
        assert_eq!(
            auth(Some(&bearer(&ADMIN[..ADMIN.len() - 1])), &Method::GET),
            Err(401)
        );
        assert_eq!(
            auth(Some(&["bearer ", ADMIN].concat()), &Method::GET),
            Ok(Role::Admin)
        );
    }

    #[test]
    fn bad_files_name_the_line_not_the_token() {
        let secret = "s3cr3t-s3cr3t-s3cr3t";
        for (text, line) in [
            (["root ", secret].concat(), 1),
            (["admin ", secret, " extra"].concat(), 1),
            ("admin short".to_string(), 1),
            (["admin ", secret, "\nviewer ", secret].concat(), 2),
            ("# only a comment".to_string(), 0),
        ] {
            let err = Tokens::parse(&text).unwrap_err();
            assert_eq!(err.line, line, "{text}");
            assert!(!err.to_string().contains(secret), "{err}");
        }
        assert!(!format!("{:?}", tokens()).contains(ADMIN));
    }
}
