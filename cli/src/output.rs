//! What every subcommand shares: the output format, the choice of lifecycle, and the
//! outcome that becomes the exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::ValueEnum;

/// How a subcommand that prints data prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Lines for people.
    Text,
    /// One JSON document, for programs.
    Json,
}

/// Which of the library's lifecycles a subcommand works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Machine {
    /// The topology status lifecycle.
    Topology,
    /// The mutation queue's lifecycle.
    Mutation,
}

/// How a subcommand that ran to the end went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to report: exit 0.
    Clean,
    /// A check found a problem: exit 1.
    Problem,
}

impl Outcome {
    /// The process exit code for this outcome.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Self::Clean => ExitCode::SUCCESS,
            Self::Problem => ExitCode::from(1),
        }
    }
}

/// Writes `value` as pretty JSON followed by a newline.
///
/// # Errors
///
/// An I/O error from `out` (serializing the CLI's own types cannot fail).
pub fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// `n` and the noun that goes with it: `1 topology`, `2 topologies`, `0 topologies`.
pub fn counted(n: impl Into<u64>, one: &str, many: &str) -> String {
    match n.into() {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_uses_the_singular_for_one_only() {
        assert_eq!(counted(0u64, "topology", "topologies"), "0 topologies");
        assert_eq!(counted(1u64, "topology", "topologies"), "1 topology");
        assert_eq!(counted(2u64, "decky", "deckies"), "2 deckies");
    }
}
