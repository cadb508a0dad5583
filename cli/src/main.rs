//! The `topostate` command: check transitions, list legal next statuses, draw the
//! lifecycle, audit a SQLite database or PostgreSQL schema written by the store, list a
//! mutation queue and repair its stuck claims, and run the first-run demo.
//!
//! Exit codes follow the `grep`/`diff` convention: 0 when all is well, 1 when a check found
//! a problem (an illegal transition, audit findings, a queue repair refused because the
//! claim moved meanwhile), 2 on a usage or input error or when
//! the command could not run (clap's own usage errors exit 2 as well), 3 when `audit` found
//! its SQLite file in use and could not read it consistently without writing.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod audit;
mod check;
mod demo;
mod graph;
mod output;
mod queue;
mod serve;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::{Format, Machine, Outcome};

/// Inspect MazeNET topology lifecycle data, and repair stuck mutation claims.
///
/// Every status and edge comes from the `topostate` library's one declaration; nothing
/// here spells one out.
#[derive(Debug, Parser)]
#[command(name = "topostate", version, propagate_version = true)]
#[command(
    after_help = "Exit status: 0 ok, 1 a check found a problem (or a queue repair was refused: \
                  the claim moved meanwhile), 2 usage or input error, 3 the audited file is in \
                  use and cannot be read consistently without writing."
)]
struct Cli {
    /// Show what the store does on stderr: each operation (backend, topology, versions,
    /// outcome), conflicts, runs again. -vv for more. `RUST_LOG` (e.g.
    /// `RUST_LOG=topostate=debug`) overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Is the transition FROM → TO legal? Exit 0 if it is, 1 if it is not.
    ///
    /// FROM and TO are raw stored strings, e.g. `pending`; an unknown one is an input
    /// error (exit 2) and the message lists the accepted values.
    Check {
        /// The current status, as stored.
        from: String,
        /// The status to move to, as stored.
        to: String,
        /// Which lifecycle the statuses belong to.
        #[arg(long, value_enum, default_value_t = Machine::Topology)]
        machine: Machine,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The legal next statuses of STATUS, one per line (none for a terminal status).
    Next {
        /// The current status, as stored.
        status: String,
        /// Which lifecycle the status belongs to.
        #[arg(long, value_enum, default_value_t = Machine::Topology)]
        machine: Machine,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the lifecycle diagram, generated from the library's declaration.
    Graph {
        /// Diagram language.
        #[arg(long, value_enum, default_value_t = graph::GraphFormat::Mermaid)]
        format: graph::GraphFormat,
        /// Which lifecycle to draw.
        #[arg(long, value_enum, default_value_t = Machine::Topology)]
        machine: Machine,
    },
    /// Report every problem in a SQLite database or PostgreSQL schema written by the store;
    /// never writes.
    ///
    /// DB is a SQLite file, or a PostgreSQL connection string as the store takes it: a
    /// postgres:// (postgresql://) URL or a libpq key=value list ("host=/run/postgresql
    /// dbname=topostate"; taken as a file if a file of that name exists). Reads the raw
    /// tables, so it also works on a database the store would refuse. Findings: corrupt
    /// status, state or op strings; versions outside `1..=MAX_VERSION`; status logs that are
    /// not a legal path from the initial status or that end elsewhere than the stored
    /// status; mutations in impossible states; orphan rows; claims whose lease has passed
    /// (expired-lease) or that are older than --claim-age (old-claim), each naming the
    /// token `queue release|fail` takes. One line per finding (or one JSON document), then
    /// a summary. Exit 1 if anything was found.
    ///
    /// A file is opened so that nothing beside it is created or changed (no -wal, no -shm),
    /// which also works in a read-only directory, on a read-only mount and for a user who
    /// may only read the file. When no writer has it open (no -shm or -journal beside it)
    /// it is read immutable, and read again if a writer changed it meanwhile; when a writer
    /// has it open, it is read in one read transaction: a consistent snapshot of the last
    /// commit before the audit. If neither can be had without writing (a lock held past
    /// 5 s, a -wal without its -shm, a -wal that needs recovery), the audit refuses: exit
    /// 3, "it is in use". PostgreSQL is read in one READ ONLY, REPEATABLE READ transaction.
    ///
    /// On a terminal, a large audit shows its progress on stderr; never with --format json
    /// or when stdout or stderr is not a terminal.
    Audit {
        /// The SQLite database file, or a PostgreSQL URL (`postgres://user@host/db`) or
        /// key=value connection string (host=/run/postgresql dbname=topostate).
        db: PathBuf,
        /// PostgreSQL only: the schema holding the store's tables (as given to the store),
        /// instead of the first schema of the `search_path` (which the URL may set with
        /// options=-csearch_path%3D<schema>, a key=value string with
        /// `options='-csearch_path=<schema>'`).
        #[arg(long, value_name = "NAME")]
        schema: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// A claim older than this many seconds is a finding (`old-claim`), even while its
        /// lease runs; an `applying` mutation whose lease has passed always is one
        /// (`expired-lease`).
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        claim_age: u64,
    },
    /// The mutation queue of a topology, and the repair of a stuck claim.
    ///
    /// A claim left by a crashed applier is taken over by the next claim once its lease
    /// has passed; `release` and `fail` are for an operator who will not wait, or who
    /// wants a mutation out of the queue. Each is fenced by the token `list` shows: it
    /// moves the mutation only if it is still applying under that token, else it is
    /// refused (exit 1) and changes nothing.
    Queue {
        #[command(subcommand)]
        action: QueueAction,
    },
    /// Walk one topology through its whole life on a SQLite file and narrate it.
    ///
    /// Creates a topology, edits it while pending, shows two editors colliding on a
    /// version and the loser re-reading, deploys and activates it, queues and applies a
    /// live edit, tears it down, then prints the status log and the final versions.
    Demo {
        /// Write the demo database here (must not exist yet) and keep it; by default a
        /// temporary file is used and removed afterwards.
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
    /// Serve the topology web API over a SQLite file (default) or PostgreSQL.
    ///
    /// Routes under /api/v1/topologies (create, list, detail, child edits, a canvas batch,
    /// deploy, teardown, worker transitions, the mutation queue, the status log, an event
    /// stream), /healthz and the OpenAPI document at /api/v1/openapi.json. Versions are
    /// ETags, If-Match is the write precondition, refusals are application/problem+json.
    /// Stops on SIGTERM or ctrl-c after finishing the requests in flight.
    Serve(serve::ServeArgs),
}

/// Where the queue is: the database, and the schema for PostgreSQL.
#[derive(Debug, clap::Args)]
struct QueueDb {
    /// The SQLite database file, or a PostgreSQL URL or key=value connection string.
    db: PathBuf,
    /// PostgreSQL only: the schema holding the store's tables.
    #[arg(long, value_name = "NAME")]
    schema: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// The claim a repair is fenced by.
#[derive(Debug, clap::Args)]
struct Fenced {
    /// The topology's id.
    #[arg(long)]
    topology: u64,
    /// The mutation's id.
    #[arg(long)]
    mutation: u64,
    /// The claim token read with `queue list` (the repair is refused if it moved).
    #[arg(long)]
    token: u64,
}

#[derive(Debug, Subcommand)]
enum QueueAction {
    /// List a topology's mutations, newest first, with state, token, attempts, holder
    /// and lease.
    List {
        #[command(flatten)]
        at: QueueDb,
        /// The topology's id.
        #[arg(long)]
        topology: u64,
    },
    /// Put a stuck claim back to pending, first in line for the next claim.
    Release {
        #[command(flatten)]
        at: QueueDb,
        #[command(flatten)]
        claim: Fenced,
    },
    /// Mark a stuck claim failed, with a reason.
    Fail {
        #[command(flatten)]
        at: QueueDb,
        #[command(flatten)]
        claim: Fenced,
        /// Why it failed (stored on the mutation).
        #[arg(long)]
        reason: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    log_to_stderr(cli.verbose);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = run(cli.command, &mut out).and_then(|outcome| {
        out.flush()?;
        Ok(outcome)
    });
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            // A closed pipe (`topostate graph | head -1`) is the reader's choice, not an
            // error to report.
            if error
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return Outcome::Clean.exit_code();
            }
            eprintln!("error: {}", render(&error));
            if error.is::<audit::InUse>() {
                ExitCode::from(3)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

/// Sends the library's spans and events to stderr, as `RUST_LOG` or `-v` ask; nothing
/// when neither does.
fn log_to_stderr(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::format::FmtSpan;
    let filter = match std::env::var("RUST_LOG") {
        Ok(given) if !given.is_empty() => EnvFilter::new(given),
        _ => match verbose {
            0 => return,
            1 => EnvFilter::new("topostate=info"),
            _ => EnvFilter::new("topostate=trace"),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        // An operation's fields (new version, outcome) are known when its span closes.
        .with_span_events(FmtSpan::CLOSE)
        .init();
}

/// An error and its causes on one line, `outer: inner`, skipping a cause whose message
/// the line already holds (many errors repeat their source's message in their own).
fn render(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if line.contains(&message) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&message);
    }
    line
}

/// Runs one subcommand, writing its output to `out`.
fn run(command: Command, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    match command {
        Command::Check {
            from,
            to,
            machine,
            format,
        } => check::check(machine, &from, &to, format, out),
        Command::Next {
            status,
            machine,
            format,
        } => check::next(machine, &status, format, out),
        Command::Graph { format, machine } => graph::graph(format, machine, out),
        Command::Audit {
            db,
            schema,
            format,
            claim_age,
        } => audit::audit(
            &db,
            schema.as_deref(),
            format,
            std::time::Duration::from_secs(claim_age),
            out,
        ),
        Command::Demo { db } => demo::demo(db.as_deref(), out),
        Command::Serve(args) => serve::serve(&args, out),
        Command::Queue { action } => match action {
            QueueAction::List { at, topology } => {
                queue::list(&at.db, at.schema.as_deref(), topology, at.format, out)
            }
            QueueAction::Release { at, claim } => queue::repair(
                &at.db,
                at.schema.as_deref(),
                (claim.topology, claim.mutation, claim.token),
                queue::Repair::Release,
                at.format,
                out,
            ),
            QueueAction::Fail { at, claim, reason } => queue::repair(
                &at.db,
                at.schema.as_deref(),
                (claim.topology, claim.mutation, claim.token),
                queue::Repair::Fail(&reason),
                at.format,
                out,
            ),
        },
    }
}
