//! `graph`: the lifecycle diagram, exactly as the library generates it.

use std::io::Write;

use clap::ValueEnum;
use topostate::lifecycle::{Lifecycle, dot, mermaid};
use topostate::{MutationState, TopologyStatus};

use crate::output::{Machine, Outcome};

/// The diagram languages `graph` can print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid `stateDiagram-v2` (renders on GitHub).
    Mermaid,
    /// A Graphviz `digraph` (`dot -Tsvg`).
    Dot,
}

/// The diagram text for one lifecycle in one language.
pub fn diagram(format: GraphFormat, machine: Machine) -> String {
    fn of<L: Lifecycle>(format: GraphFormat) -> String {
        match format {
            GraphFormat::Mermaid => mermaid::<L>(),
            GraphFormat::Dot => dot::<L>(),
        }
    }
    match machine {
        Machine::Topology => of::<TopologyStatus>(format),
        Machine::Mutation => of::<MutationState>(format),
    }
}

/// `graph`: prints the diagram unchanged (it already ends with a newline).
///
/// # Errors
///
/// An I/O error on `out`.
pub fn graph(
    format: GraphFormat,
    machine: Machine,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    out.write_all(diagram(format, machine).as_bytes())?;
    Ok(Outcome::Clean)
}
