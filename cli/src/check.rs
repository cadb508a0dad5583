//! `check` and `next`: the transition table, asked one question at a time.

use std::io::Write;
use std::str::FromStr;

use anyhow::Context as _;
use serde::Serialize;
use topostate::{Lifecycle, MutationState, ParseStatusError, TopologyStatus};

use crate::output::{Format, Machine, Outcome, write_json};

/// A lifecycle whose values parse from their stored strings with the library's one parse
/// function (the error lists the accepted values).
pub trait Parsed: Lifecycle + FromStr<Err = ParseStatusError> {}

impl<L: Lifecycle + FromStr<Err = ParseStatusError>> Parsed for L {}

/// What `check --format json` prints.
#[derive(Debug, Serialize)]
struct CheckReport {
    machine: &'static str,
    from: &'static str,
    to: &'static str,
    legal: bool,
    /// The legal successors of `from`, so a refused caller sees what it could do instead.
    legal_next: Vec<&'static str>,
}

/// What `next --format json` prints.
#[derive(Debug, Serialize)]
struct NextReport {
    machine: &'static str,
    status: &'static str,
    next: Vec<&'static str>,
    terminal: bool,
}

/// `check FROM TO`: prints whether the transition is legal; [`Outcome::Problem`] if not.
///
/// # Errors
///
/// An unknown FROM or TO (the message names the argument and lists the accepted values),
/// or an I/O error on `out`.
pub fn check(
    machine: Machine,
    from: &str,
    to: &str,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    match machine {
        Machine::Topology => check_in::<TopologyStatus>(from, to, format, out),
        Machine::Mutation => check_in::<MutationState>(from, to, format, out),
    }
}

/// `next STATUS`: prints the legal successors, one per line.
///
/// # Errors
///
/// An unknown STATUS (the message lists the accepted values), or an I/O error on `out`.
pub fn next(
    machine: Machine,
    status: &str,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    match machine {
        Machine::Topology => next_in::<TopologyStatus>(status, format, out),
        Machine::Mutation => next_in::<MutationState>(status, format, out),
    }
}

/// Parses a command-line argument with the library's parser, naming the argument on error.
fn parse_arg<L: Parsed>(arg: &'static str, input: &str) -> anyhow::Result<L> {
    input.parse::<L>().with_context(|| format!("invalid {arg}"))
}

/// The legal successors of `from`, as stored strings in declaration order.
pub fn successors<L: Lifecycle>(from: L) -> Vec<&'static str> {
    topostate::LegalNext::new(from).map(L::as_str).collect()
}

/// The refusal of `from → to` in the library's wording (`illegal transition: 'a' → 'b'`).
pub fn illegal_message<L: Lifecycle>(from: L, to: L) -> String {
    format!(
        "illegal transition: '{}' → '{}'",
        from.as_str(),
        to.as_str()
    )
}

fn check_in<L: Parsed>(
    from: &str,
    to: &str,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    // The original Python module's order: an unknown current status is reported before an unknown new one.
    let from = parse_arg::<L>("FROM", from)?;
    let to = parse_arg::<L>("TO", to)?;
    let legal = from.can_transition_to(to);
    let legal_next = successors(from);
    match format {
        Format::Json => write_json(
            out,
            &CheckReport {
                machine: L::MACHINE,
                from: from.as_str(),
                to: to.as_str(),
                legal,
                legal_next,
            },
        )?,
        Format::Text if legal => {
            writeln!(out, "legal: '{}' → '{}'", from.as_str(), to.as_str())?;
        }
        Format::Text => {
            writeln!(out, "{}", illegal_message(from, to))?;
            if legal_next.is_empty() {
                writeln!(
                    out,
                    "'{}' is terminal: no {} {} can follow it",
                    from.as_str(),
                    L::MACHINE,
                    L::NOUN
                )?;
            } else {
                writeln!(
                    out,
                    "legal from '{}': {}",
                    from.as_str(),
                    legal_next.join(", ")
                )?;
            }
        }
    }
    Ok(if legal {
        Outcome::Clean
    } else {
        Outcome::Problem
    })
}

fn next_in<L: Parsed>(
    status: &str,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let status = parse_arg::<L>("STATUS", status)?;
    let next = successors(status);
    match format {
        Format::Json => write_json(
            out,
            &NextReport {
                machine: L::MACHINE,
                status: status.as_str(),
                terminal: next.is_empty(),
                next,
            },
        )?,
        Format::Text => {
            for name in &next {
                writeln!(out, "{name}")?;
            }
            if next.is_empty() {
                // Nothing on stdout keeps the output scriptable; the note is for people.
                eprintln!(
                    "note: '{}' is terminal: no {} {} can follow it",
                    status.as_str(),
                    L::MACHINE,
                    L::NOUN
                );
            }
        }
    }
    Ok(Outcome::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn illegal_message_matches_the_library() {
        let err = topostate::assert_transition("failed", "deploying").unwrap_err();
        assert_eq!(
            illegal_message(TopologyStatus::Failed, TopologyStatus::Deploying),
            err.to_string()
        );
    }

    #[test]
    fn successors_match_legal_next() -> Result<(), topostate::TopologyStatusError> {
        for status in TopologyStatus::ALL {
            let expected: Vec<_> = topostate::legal_next(status.as_str())?
                .map(TopologyStatus::as_str)
                .collect();
            assert_eq!(successors(status), expected);
        }
        Ok(())
    }
}
