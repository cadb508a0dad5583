//! The `serve` tests' harness: the real binary on a loopback port, a real HTTP client.
#![allow(dead_code)] // Each test crate uses its own subset.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Client, Method, Response};
use serde_json::Value;

/// The backend a server runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A SQLite file in the server's own temporary directory.
    Sqlite,
    /// A PostgreSQL URL.
    Postgres(String),
}

/// A running `topostate serve`, killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's directory (its SQLite file, tokens).
    pub dir: tempfile::TempDir,
    /// The SQLite file, when the backend is SQLite.
    pub db: Option<PathBuf>,
    /// stdout lines after the address line, collected by a thread.
    rest: std::sync::mpsc::Receiver<String>,
}

impl Server {
    /// Starts the binary with `args` on a free loopback port and waits (at most 60 s) for
    /// it to print its bound address.
    pub fn start(backend: &Backend, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, backend, args)
    }

    /// As [`Server::start`], in a directory prepared beforehand (e.g. with a tokens file).
    pub fn start_in(dir: tempfile::TempDir, backend: &Backend, args: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_topostate"));
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--poll-ms", "20"]);
        let db = match backend {
            Backend::Sqlite => {
                let db = dir.path().join("store.db");
                cmd.arg("--db").arg(&db);
                Some(db)
            }
            Backend::Postgres(url) => {
                cmd.args(["--url", url]);
                None
            }
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("the topostate binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = match rx.recv_timeout(Duration::from_mins(1)) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("serve printed no address within 60 s: {e}");
            }
        };
        let base = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        Self {
            child: Some(child),
            base,
            dir,
            db,
            rest: rx,
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        [self.base.as_str(), path].concat()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends SIGTERM (with the `kill` command) and waits at most 30 s for the exit; returns
    /// the exit code and what it printed after its address.
    pub fn terminate(&mut self) -> (Option<i32>, Vec<String>) {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let mut child = self.child.take().expect("running");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("serve did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let lines = self.rest.try_iter().collect();
        (status.code(), lines)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client with bounded waits (no request of these tests may hang).
pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(64)
        .build()
        .expect("client")
}

/// A topology name no other test (or earlier run on a shared PostgreSQL) uses.
pub fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A response's status, ETag and body as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
}

impl Answer {
    /// The problem `type`'s slug.
    pub fn slug(&self) -> &str {
        self.body["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("urn:topostate:problem:"))
            .unwrap_or("")
    }

    /// The version in the ETag.
    pub fn version(&self) -> u64 {
        self.etag
            .as_deref()
            .and_then(|t| t.trim_matches('"').parse().ok())
            .unwrap_or_else(|| panic!("no ETag in {self:?}"))
    }

    /// Asserts a problem document with this status and slug.
    pub fn problem(&self, status: u16, slug: &str) -> &Self {
        assert_eq!((self.status, self.slug()), (status, slug), "{self:?}");
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/problem+json"),
            "{self:?}"
        );
        assert_eq!(self.body["status"], Value::from(status), "{self:?}");
        self
    }
}

/// Reads a response into an [`Answer`].
pub async fn answer(response: Response) -> Answer {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header("etag");
    let content_type = header("content-type");
    let bytes = response.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        etag,
        content_type,
        body,
    }
}

/// Sends one request with an optional JSON body and extra headers.
pub async fn call(
    client: &Client,
    method: Method,
    url: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = client.request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    match request.send().await {
        Ok(response) => answer(response).await,
        Err(e) => panic!("{url}: {e}"),
    }
}

/// An ETag value for `version`.
pub fn tag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Writes `text` to `dir/tokens` with `mode` and returns its path.
pub fn tokens_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
    let path = dir.join("tokens");
    std::fs::write(&path, text).expect("write tokens");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    path
}

/// The PostgreSQL URL the PostgreSQL tests run against.
pub fn pg_url() -> Option<String> {
    std::env::var("TOPOSTATE_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
}
