//! TLS: the connection string's `sslmode` and `sslrootcert` (which the driver does not
//! read in full), and the rustls connector that does what they ask, as libpq does.
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | – |
//! | `prefer` (default) | if the server offers it | not checked, unless `sslrootcert` is given (then as `verify-ca`) |
//! | `require` | always | not checked, unless `sslrootcert` is given (then as `verify-ca`) |
//! | `verify-ca` | always | signed by a trusted root |
//! | `verify-full` | always | signed by a trusted root, and issued for the host name |
//!
//! The trusted roots are those of the `sslrootcert` file (PEM), or the system's when none
//! is given (or when it is `system`).

use std::fmt;
use std::format;
use std::path::Path;
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

/// How a connection to PostgreSQL uses TLS: libpq's `sslmode`, set in the connection
/// string (`?sslmode=verify-full`, `sslmode=require`) or with
/// [`PgStoreBuilder::ssl_mode`](super::PgStoreBuilder::ssl_mode).
///
/// ```
/// use topostate::store::PgSslMode;
///
/// let mode: PgSslMode = "verify-full".parse()?;
/// assert_eq!(mode, PgSslMode::VerifyFull);
/// assert_eq!(mode.to_string(), "verify-full");
/// assert!("verify".parse::<PgSslMode>().is_err());
/// # Ok::<(), topostate::store::StoreError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PgSslMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it; its certificate is not checked (unless a root
    /// certificate file is given, then as [`VerifyCa`](Self::VerifyCa)).
    #[default]
    Prefer,
    /// Always TLS; the certificate is not checked (unless a root certificate file is given,
    /// then as [`VerifyCa`](Self::VerifyCa)).
    Require,
    /// Always TLS, with a certificate signed by a trusted root (any host name).
    VerifyCa,
    /// Always TLS, with a certificate signed by a trusted root and issued for the host
    /// name connected to.
    VerifyFull,
}

impl PgSslMode {
    /// Every mode, in the order of the table above.
    const ALL: [Self; 5] = [
        Self::Disable,
        Self::Prefer,
        Self::Require,
        Self::VerifyCa,
        Self::VerifyFull,
    ];

    /// The name libpq gives it, e.g. `"verify-full"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for PgSslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for PgSslMode {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| StoreError::Invalid {
                field: "sslmode",
                problem: format!(
                    "'{s}' is not one of {}",
                    Self::ALL.map(Self::as_str).join(", ")
                ),
            })
    }
}

/// What the connection string says about TLS, taken out of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct TlsParams {
    pub(super) mode: Option<PgSslMode>,
    pub(super) root_cert: Option<String>,
}

/// `url` without its `sslmode` and `sslrootcert` (the driver refuses `verify-*` and
/// `sslrootcert`), and what they said. Both the URL and the `key=value` form.
pub(super) fn take_tls_params(url: &str) -> Result<(String, TlsParams), StoreError> {
    let mut params = TlsParams::default();
    let mut take = |key: &str, value: String| -> Result<bool, StoreError> {
        match key {
            "sslmode" => params.mode = Some(value.parse()?),
            "sslrootcert" => params.root_cert = Some(value),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        strip_url_params(url, &mut take)?
    } else {
        strip_key_values(url, &mut take)?
    };
    Ok((rest, params))
}

type Take<'a> = dyn FnMut(&str, String) -> Result<bool, StoreError> + 'a;

/// A URL's query parameters that `take` does not keep.
fn strip_url_params(url: &str, take: &mut Take<'_>) -> Result<String, StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(String::from(url));
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !take(&percent_decode(key)?, percent_decode(value)?)? {
            kept.push(pair);
        }
    }
    Ok(if kept.is_empty() {
        String::from(base)
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

fn percent_decode(text: &str) -> Result<String, StoreError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = hex else {
                return Err(invalid_url(&format!("bad percent-escape in '{text}'")));
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid_url(&format!("'{text}' is not UTF-8 once decoded")))
}

fn invalid_url(problem: &str) -> StoreError {
    StoreError::Invalid {
        field: "url",
        problem: format!("not a PostgreSQL connection URL or key=value string: {problem}"),
    }
}

/// A libpq `key=value` list's pairs that `take` does not keep, as they were written.
fn strip_key_values(text: &str, take: &mut Take<'_>) -> Result<String, StoreError> {
    let mut kept: Vec<&str> = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let key_len = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_len];
        rest = rest[key_len..].trim_start();
        let Some(after_eq) = rest.strip_prefix('=') else {
            return Err(invalid_url(&format!("'{key}' has no '=' and value")));
        };
        rest = after_eq.trim_start();
        let (value, len) = key_value(rest)?;
        rest = &rest[len..];
        let pair = &start[..start.len() - rest.len()];
        if !take(key, value)? {
            kept.push(pair);
        }
        rest = rest.trim_start();
    }
    Ok(kept.join(" "))
}

/// One value of a `key=value` list at the start of `text` (quoted with `'`, or up to the
/// next space; `\` escapes), and how many bytes it took.
fn key_value(text: &str) -> Result<(String, usize), StoreError> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    let quoted = text.starts_with('\'');
    if quoted {
        chars.next();
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, escaped)) => value.push(escaped),
                None => return Err(invalid_url("a value ends with '\\'")),
            },
            '\'' if quoted => return Ok((value, i + 1)),
            c if c.is_whitespace() && !quoted => return Ok((value, i)),
            c => value.push(c),
        }
    }
    if quoted {
        return Err(invalid_url("a quoted value is not closed"));
    }
    Ok((value, text.len()))
}

/// The TLS connector of a store's connections: rustls, as [`PgSslMode`] and the root
/// certificates ask. It is what [`PgStoreBuilder::driver_config`](super::PgStoreBuilder::driver_config)
/// hands to a program that runs its own statements on the store's terms; it implements the
/// driver's `MakeTlsConnect`, so it connects a `tokio_postgres` (or a sync `postgres`)
/// client.
#[derive(Clone)]
pub struct PgTls {
    inner: MakeRustlsConnect,
    mode: PgSslMode,
}

impl fmt::Debug for PgTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTls")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl PgTls {
    /// The connector for `mode`, trusting the PEM certificates of `root_cert` (the
    /// system's roots when `None`).
    pub(super) fn new(mode: PgSslMode, root_cert: Option<&Path>) -> Result<Self, StoreError> {
        // ring rather than aws-lc-rs: no C toolchain (cmake) to build, and a link to a
        // database gains little from the post-quantum key exchange rustls now wants (the
        // reason it deprecates ring's provider).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verify = match (mode, root_cert) {
            (PgSslMode::Disable, _) | (PgSslMode::Prefer | PgSslMode::Require, None) => {
                Verify::Nothing
            }
            (PgSslMode::Prefer | PgSslMode::Require | PgSslMode::VerifyCa, _) => Verify::Chain,
            (PgSslMode::VerifyFull, _) => Verify::ChainAndName,
        };
        let verifier: Arc<dyn ServerCertVerifier> = match verify {
            // No roots are loaded when none will be used.
            Verify::Nothing => Arc::new(AnyCertificate(Arc::clone(&provider))),
            Verify::Chain | Verify::ChainAndName => {
                let roots = Arc::new(roots(root_cert)?);
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                        .build()
                        .map_err(|e| StoreError::Invalid {
                            field: "sslrootcert",
                            problem: format!("no usable root certificate: {e}"),
                        })?;
                if verify == Verify::Chain {
                    Arc::new(AnyName(webpki))
                } else {
                    webpki
                }
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Invalid {
                field: "sslmode",
                problem: format!("TLS cannot be set up: {e}"),
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self {
            inner: MakeRustlsConnect::new(config),
            mode,
        })
    }

    /// The mode it was made for.
    #[must_use]
    pub fn mode(&self) -> PgSslMode {
        self.mode
    }
}

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        MakeTlsConnect::<S>::make_tls_connect(&mut self.inner, domain)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verify {
    Nothing,
    Chain,
    ChainAndName,
}

/// The roots in the PEM file at `path`, or the system's (`None`, or libpq's `system`).
fn roots(path: Option<&Path>) -> Result<RootCertStore, StoreError> {
    let invalid = |problem: String| StoreError::Invalid {
        field: "sslrootcert",
        problem,
    };
    let mut roots = RootCertStore::empty();
    match path.filter(|p| *p != Path::new("system")) {
        Some(path) => {
            let shown = path.display();
            let pem =
                std::fs::read(path).map_err(|e| invalid(format!("cannot read {shown}: {e}")))?;
            let mut found = 0;
            for cert in rustls_pemfile_certs(&pem) {
                let cert = cert.map_err(|e| invalid(format!("{shown}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| invalid(format!("{shown}: {e}")))?;
                found += 1;
            }
            if found == 0 {
                return Err(invalid(format!("{shown} holds no PEM certificate")));
            }
        }
        None => {
            let loaded = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(loaded.certs);
            if added == 0 {
                let why = loaded
                    .errors
                    .first()
                    .map_or_else(|| String::from("none installed"), |e| format!("{e}"));
                return Err(invalid(format!(
                    "no sslrootcert given and no system root certificate could be loaded \
                     ({why})"
                )));
            }
        }
    }
    Ok(roots)
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(
    pem: &[u8],
) -> impl Iterator<Item = Result<CertificateDer<'static>, String>> + '_ {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem).map(|cert| cert.map_err(|e| format!("{e:?}")))
}

/// libpq's `prefer` and `require` without a root file: any certificate (the handshake's
/// signatures are still checked, so the peer holds the key of the certificate it shows).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain to a trusted root is checked, the host name is not. webpki checks
/// the chain first and the name last, so a name error means the chain was good.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Did a connection fail setting up TLS (the certificate refused, the server without TLS)?
#[allow(
    clippy::redundant_closure_for_method_calls,
    reason = "the path of `is` on a boxed error object reads worse than the closure"
)]
pub(super) fn failed(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.is::<rustls::Error>()
            || cause
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .is_some_and(|inner| inner.is::<rustls::Error>())
            // The driver's words when the server answers the TLS request with "no".
            || cause.to_string() == "server does not support TLS"
        {
            return true;
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(url: &str) -> (String, TlsParams) {
        take_tls_params(url).unwrap()
    }

    #[test]
    fn urls_lose_their_tls_parameters_and_keep_the_rest() {
        let (rest, params) = take(
            "postgresql://u@h/db?sslmode=verify-full&application_name=x&sslrootcert=%2Fca.pem",
        );
        assert_eq!(rest, "postgresql://u@h/db?application_name=x");
        assert_eq!(params.mode, Some(PgSslMode::VerifyFull));
        assert_eq!(params.root_cert.as_deref(), Some("/ca.pem"));
        let (rest, params) = take("postgres://u@h/db?sslmode=require");
        assert_eq!(rest, "postgres://u@h/db");
        assert_eq!(params.mode, Some(PgSslMode::Require));
        assert_eq!(take("postgresql://h/db").1, TlsParams::default());
    }

    #[test]
    fn key_value_lists_lose_their_tls_parameters_and_keep_the_rest() {
        let (rest, params) = take(
            "host=h sslmode = verify-ca  dbname='my db' sslrootcert='/a b/ca.pem' options='-c x=1'",
        );
        assert_eq!(rest, "host=h dbname='my db' options='-c x=1'");
        assert_eq!(params.mode, Some(PgSslMode::VerifyCa));
        assert_eq!(params.root_cert.as_deref(), Some("/a b/ca.pem"));
        let (rest, params) = take(r"sslrootcert=/c\ a.pem host=h");
        assert_eq!(rest, "host=h");
        assert_eq!(params.root_cert.as_deref(), Some("/c a.pem"));
    }

    #[test]
    fn a_bad_sslmode_or_list_is_invalid_and_names_what_is_wrong() {
        let e = take_tls_params("host=h sslmode=verify").unwrap_err();
        assert!(
            matches!(&e, StoreError::Invalid { field: "sslmode", problem } if problem.contains("verify-full")),
            "{e:?}"
        );
        let e = take_tls_params("host=h dbname='open").unwrap_err();
        assert!(
            matches!(e, StoreError::Invalid { field: "url", .. }),
            "{e:?}"
        );
        let e = take_tls_params("host").unwrap_err();
        assert!(
            matches!(e, StoreError::Invalid { field: "url", .. }),
            "{e:?}"
        );
    }

    #[test]
    fn a_missing_or_empty_root_file_is_invalid() {
        let e = PgTls::new(PgSslMode::VerifyFull, Some(Path::new("/no/such/ca.pem"))).unwrap_err();
        assert!(
            matches!(&e, StoreError::Invalid { field: "sslrootcert", problem } if problem.contains("/no/such/ca.pem")),
            "{e:?}"
        );
        let dir = std::env::temp_dir().join(format!("topostate-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = PgTls::new(PgSslMode::VerifyCa, Some(&empty)).unwrap_err();
        assert!(
            matches!(&e, StoreError::Invalid { field: "sslrootcert", problem } if problem.contains("no PEM certificate")),
            "{e:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        // No roots are needed, or loaded, when nothing is verified.
        assert_eq!(
            PgTls::new(PgSslMode::Require, None).unwrap().mode(),
            PgSslMode::Require
        );
    }
}
