//! `topostate serve`: the topology web API over a SQLite file or a PostgreSQL server.
//!
//! The API itself is the library's (`topostate::http::router`); this command opens the
//! store, reads the tokens, binds, prints the bound address, serves each connection with
//! hyper (HTTP/1.1, keep-alive, a bound on reading a request's headers) and shuts down
//! gracefully.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use topostate::http::{Options, Tokens, router};
use topostate::store::{AsyncPgStore, AsyncSqliteStore, AsyncTopologyStore, SqliteStore};

use crate::output::Outcome;

/// The arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The SQLite database file (created if missing).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "topostate.db",
        conflicts_with = "url"
    )]
    db: PathBuf,
    /// A PostgreSQL connection string instead of a SQLite file
    /// (<postgres://user@host/db> or key=value).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The address to listen on; port 0 picks a free port. The bound address is printed
    /// on stdout as `listening on http://ADDR`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Bearer tokens, one `role token` per line (roles `viewer`, `admin`). The file must
    /// not be readable by group or others. Without it every request may write, so the
    /// server then refuses to listen on anything but a loopback address.
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Refuse writes to an existing topology without If-Match (428).
    #[arg(long)]
    require_if_match: bool,
    /// The largest request body, in bytes (413 past it).
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    body_limit: usize,
    /// Seconds to receive a request body (408 past it).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    body_timeout: u64,
    /// Seconds to receive a request's headers, counted from when the connection is ready
    /// for its next request (so also the longest a keep-alive connection stays idle); past
    /// it the connection is closed and nothing is run. Bounds what a client that sends its
    /// headers slowly (or never) can hold.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Milliseconds between an event stream's reads of the store.
    #[arg(long, value_name = "MS", default_value_t = 250, hide = true)]
    poll_ms: u64,
}

/// Runs the server until SIGTERM or ctrl-c, then finishes the requests in flight.
pub fn serve(args: &ServeArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let tokens = match &args.tokens {
        Some(path) => Some(read_tokens(path)?),
        None => None,
    };
    if tokens.is_none() && !args.listen.ip().is_loopback() {
        bail!(
            "refusing to listen on {} without --tokens: every request could write; \
             give a tokens file or listen on a loopback address",
            args.listen
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let store: Arc<dyn AsyncTopologyStore> = match &args.url {
            Some(url) => Arc::new(
                AsyncPgStore::connect(url)
                    .await
                    .context("cannot connect to PostgreSQL")?,
            ),
            // Writes from concurrent requests share the file's commits (group commit),
            // queued from their tasks for one combiner on the blocking pool.
            None => Arc::new(AsyncSqliteStore::new(
                SqliteStore::open(&args.db)
                    .with_context(|| format!("cannot open {}", args.db.display()))?,
            )),
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut options = Options::new()
            .body_limit(args.body_limit)
            .body_time_limit(Duration::from_secs(args.body_timeout))
            .event_poll_interval(Duration::from_millis(args.poll_ms.max(1)))
            .stop_streams_on(stop_rx)
            // The driver's text is for the operator only; responses never carry it.
            .on_server_error(|e| eprintln!("store error: {e}"));
        if let Some(tokens) = tokens {
            options = options.tokens(tokens);
        }
        if args.require_if_match {
            options = options.require_if_match();
        }
        let app = router(store, options);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let bound = listener
            .local_addr()
            .context("cannot read the bound address")?;
        writeln!(out, "listening on http://{bound}")?;
        out.flush()?;
        serve_until_stopped(
            listener,
            &app,
            Duration::from_secs(args.header_timeout),
            // Event streams never end by themselves; end them so the drain can finish.
            move || {
                let _ = stop_tx.send(true);
            },
        )
        .await;
        writeln!(out, "stopped")?;
        Ok(Outcome::Clean)
    })
}

/// Accepts connections and serves each on its own task until SIGTERM or ctrl-c; then stops
/// accepting, calls `on_stop`, and waits for the connections to finish their requests in
/// flight (idle keep-alive connections close at once).
///
/// `axum::serve` has no bound on reading a request's headers, so a client trickling them
/// would hold its connection (and a task) forever; hyper's HTTP/1 `header_read_timeout`
/// closes such a connection when `header_timeout` passes.
async fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    app: &axum::Router,
    header_timeout: Duration,
    on_stop: impl FnOnce(),
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Small answers go out at once instead of waiting on Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let conn =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that goes away, or is cut off by the header bound, ends only its own
            // connection; there is nothing to answer.
            let _ = conn.await;
        });
    }
    drop(listener);
    on_stop();
    graceful.shutdown().await;
}

/// A failed `accept`: one client's aborted connection is skipped; anything else (such as
/// running out of file descriptors) is reported, and accepting pauses briefly so that the
/// loop does not spin while it lasts.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    eprintln!("accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(250)).await;
}

/// SIGTERM (on Unix) or ctrl-c, whichever comes first.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Reads a tokens file, refusing one that group or others may read.
fn read_tokens(path: &Path) -> anyhow::Result<Tokens> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} may be read by group or others (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            );
        }
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Tokens::parse(&text).with_context(|| format!("in {}", path.display()))
}
