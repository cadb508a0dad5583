//! The diagrams and the edge table: mermaid and DOT text, `edges`, `can_transition_to` and
//! the typed `CanTransitionTo` impls all describe the same 13 edges, which match a table
//! written out by hand. Also the diagrams of user-declared lifecycles sharing one module
//! (the macro's own tests are in `lifecycle_macro.rs`).

mod spec;

use std::collections::BTreeSet;

use spec::{EDGES, STATUSES};
use topostate::lifecycle::{dot, edges, mermaid};
use topostate::state::{self, Active, Degraded, Deploying, Failed, Pending, TearingDown, TornDown};
use topostate::{Lifecycle, MutationState, TopologyStatus};

type EdgeSet = BTreeSet<(String, String)>;

fn set_of(edges: &[(&str, &str)]) -> EdgeSet {
    edges
        .iter()
        .map(|&(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

fn table() -> EdgeSet {
    set_of(&EDGES)
}

/// What a mermaid `stateDiagram-v2` says: (initial states, listed states, edges, final states).
struct Mermaid {
    initial: Vec<String>,
    states: Vec<String>,
    edges: EdgeSet,
    edge_lines: usize,
    terminal: BTreeSet<String>,
}

fn parse_mermaid(text: &str) -> Mermaid {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("stateDiagram-v2"), "{text}");
    let mut out = Mermaid {
        initial: Vec::new(),
        states: Vec::new(),
        edges: EdgeSet::new(),
        edge_lines: 0,
        terminal: BTreeSet::new(),
    };
    for line in lines {
        assert!(line.starts_with("    "), "unindented line {line:?}");
        let line = line.trim();
        match line.split_once(" --> ") {
            Some(("[*]", to)) => out.initial.push(to.to_owned()),
            Some((from, "[*]")) => {
                assert!(out.terminal.insert(from.to_owned()), "{from} ends twice");
            }
            Some((from, to)) => {
                out.edge_lines += 1;
                out.edges.insert((from.to_owned(), to.to_owned()));
            }
            None => {
                assert!(!line.contains(' '), "unexpected line {line:?}");
                out.states.push(line.to_owned());
            }
        }
    }
    out
}

/// What a DOT digraph says: (name, states with their shape, edges).
struct Dot {
    name: String,
    shapes: Vec<(String, String)>,
    edges: EdgeSet,
    edge_lines: usize,
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    assert!(s.starts_with('"') && s.ends_with('"'), "unquoted id {s:?}");
    s[1..s.len() - 1].to_owned()
}

fn parse_dot(text: &str) -> Dot {
    let mut lines = text.lines();
    let header = lines.next().expect("a header line");
    let name = header
        .strip_prefix("digraph ")
        .and_then(|rest| rest.strip_suffix(" {"))
        .map_or_else(|| panic!("bad header {header:?}"), unquote);
    assert!(text.ends_with("}\n"), "{text}");
    let mut out = Dot {
        name,
        shapes: Vec::new(),
        edges: EdgeSet::new(),
        edge_lines: 0,
    };
    for line in lines {
        let line = line.trim();
        if line == "}" || line == "rankdir=LR;" {
            continue;
        }
        let stmt = line
            .strip_suffix(';')
            .unwrap_or_else(|| panic!("statement without ';': {line:?}"));
        if let Some((from, to)) = stmt.split_once(" -> ") {
            out.edge_lines += 1;
            out.edges.insert((unquote(from), unquote(to)));
        } else if let Some((node, attrs)) = stmt.split_once(" [shape=") {
            let shape = attrs.strip_suffix(']').expect("closing bracket");
            out.shapes.push((unquote(node), shape.to_owned()));
        } else {
            panic!("unexpected DOT line {line:?}");
        }
    }
    out
}

fn runtime_edges<L: Lifecycle>() -> EdgeSet {
    edges::<L>()
        .map(|(a, b)| (a.as_str().to_owned(), b.as_str().to_owned()))
        .collect()
}

// ---- the topology lifecycle ---------------------------------------------------------------

#[test]
fn mermaid_has_exactly_the_13_edges() {
    let text = mermaid::<TopologyStatus>();
    let m = parse_mermaid(&text);
    assert_eq!(m.edges, table(), "{text}");
    assert_eq!(m.edge_lines, 13, "no edge written twice");
    assert_eq!(m.states, STATUSES, "every state listed, in order");
    assert_eq!(m.initial, ["pending"]);
    assert_eq!(m.terminal, BTreeSet::from(["torn_down".to_owned()]));
    for (from, to) in EDGES {
        assert!(
            text.contains(&format!("    {from} --> {to}\n")),
            "{from} --> {to}"
        );
    }
}

#[test]
fn dot_has_exactly_the_13_edges() {
    let text = dot::<TopologyStatus>();
    let d = parse_dot(&text);
    assert_eq!(d.name, "topology");
    assert_eq!(d.edges, table(), "{text}");
    assert_eq!(d.edge_lines, 13);
    let states: Vec<&str> = d.shapes.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(states, STATUSES);
    for (state, shape) in &d.shapes {
        let expected = if state == "torn_down" {
            "doublecircle"
        } else {
            "circle"
        };
        assert_eq!(shape, expected, "{state}");
    }
}

#[test]
fn edges_function_matches_the_table() {
    let listed: Vec<(TopologyStatus, TopologyStatus)> = edges::<TopologyStatus>().collect();
    assert_eq!(listed.len(), 13);
    assert_eq!(runtime_edges::<TopologyStatus>(), table());
    // Source by source in declaration order.
    let sources: Vec<usize> = listed.iter().map(|(a, _)| *a as usize).collect();
    let mut sorted = sources.clone();
    sorted.sort_unstable();
    assert_eq!(sources, sorted);
}

#[test]
fn can_transition_to_matches_the_table() {
    let mut seen = EdgeSet::new();
    for from in TopologyStatus::ALL {
        for to in TopologyStatus::ALL {
            if from.can_transition_to(to) {
                seen.insert((from.to_string(), to.to_string()));
            }
        }
    }
    assert_eq!(seen, table());
}

#[test]
fn diagrams_agree_with_each_other() {
    let m = parse_mermaid(&mermaid::<TopologyStatus>());
    let d = parse_dot(&dot::<TopologyStatus>());
    assert_eq!(m.edges, d.edges);
    let dot_terminal: BTreeSet<String> = d
        .shapes
        .iter()
        .filter(|(_, shape)| shape == "doublecircle")
        .map(|(s, _)| s.clone())
        .collect();
    assert_eq!(m.terminal, dot_terminal);
}

// ---- typed edges == runtime table -----------------------------------------------------------

/// Compiles only for a declared edge, and reports it at runtime.
fn edge<S: state::CanTransitionTo<T>, T: state::State>() -> (TopologyStatus, TopologyStatus) {
    (S::STATUS, T::STATUS)
}

#[test]
fn typed_edges_equal_the_runtime_table() {
    let typed = [
        edge::<Pending, Deploying>(),
        edge::<Pending, TornDown>(),
        edge::<Deploying, Active>(),
        edge::<Deploying, Failed>(),
        edge::<Deploying, Degraded>(),
        edge::<Deploying, TearingDown>(),
        edge::<Active, Degraded>(),
        edge::<Active, TearingDown>(),
        edge::<Degraded, Active>(),
        edge::<Degraded, TearingDown>(),
        edge::<Failed, TearingDown>(),
        edge::<TearingDown, TornDown>(),
        edge::<TearingDown, Degraded>(),
    ];
    let typed_set: BTreeSet<(TopologyStatus, TopologyStatus)> = typed.into_iter().collect();
    assert_eq!(typed_set.len(), 13, "13 distinct typed edges");
    let runtime: BTreeSet<(TopologyStatus, TopologyStatus)> = edges::<TopologyStatus>().collect();
    assert_eq!(typed_set, runtime);
    let as_strings: EdgeSet = typed_set
        .iter()
        .map(|(a, b)| (a.as_str().to_owned(), b.as_str().to_owned()))
        .collect();
    assert_eq!(as_strings, table());
    for (a, b) in typed {
        assert!(a.can_transition_to(b));
    }
}

// ---- the mutation lifecycle ------------------------------------------------------------------

#[test]
fn mutation_diagrams() {
    let expected = set_of(&[
        ("pending", "applying"),
        ("applying", "applied"),
        ("applying", "failed"),
    ]);
    let text = mermaid::<MutationState>();
    let m = parse_mermaid(&text);
    assert_eq!(m.edges, expected, "{text}");
    assert_eq!(m.states, ["pending", "applying", "applied", "failed"]);
    assert_eq!(m.initial, ["pending"]);
    assert_eq!(
        m.terminal,
        BTreeSet::from(["applied".to_owned(), "failed".to_owned()])
    );

    let d = parse_dot(&dot::<MutationState>());
    assert_eq!(d.name, "mutation");
    assert_eq!(d.edges, expected);
    assert_eq!(
        d.shapes,
        [
            ("pending".to_owned(), "circle".to_owned()),
            ("applying".to_owned(), "circle".to_owned()),
            ("applied".to_owned(), "doublecircle".to_owned()),
            ("failed".to_owned(), "doublecircle".to_owned()),
        ]
    );
    assert_eq!(runtime_edges::<MutationState>(), expected);
}

#[test]
fn sql_in_lists() {
    assert_eq!(
        topostate::lifecycle::sql_in_list::<TopologyStatus>(),
        "'pending', 'deploying', 'active', 'degraded', 'failed', 'tearing_down', 'torn_down'"
    );
    assert_eq!(
        topostate::lifecycle::sql_in_list::<MutationState>(),
        "'pending', 'applying', 'applied', 'failed'"
    );
}

// ---- user-declared lifecycles, several in one module ----------------------------------------

topostate::lifecycle! {
    /// A light, with a terminal state (`dead`) and one with no edges at all (`unplugged`).
    pub enum Light {
        machine = "light",
        noun = "state",
        markers = pub mod light,
        states {
            /// Dark.
            Off = "off" => [On],
            /// Lit.
            On = "on" => [Off, Blinking, Dead],
            /// Flickering.
            Blinking = "blinking" => [On, Off, Dead,],
            /// Burnt out.
            Dead = "dead" => [],
            /// Never connected: no edge in or out.
            Unplugged = "unplugged" => [],
        }
    }
}

topostate::lifecycle! {
    /// A second lifecycle in the same module, with its own markers.
    pub enum Signal {
        machine = "signal",
        noun = "aspect",
        markers = pub mod signal,
        states {
            Red = "red" => [Green],
            Green = "green" => [Amber],
            Amber = "amber" => [Red],
        }
    }
}

topostate::lifecycle! {
    /// A third, where every state is terminal; its markers are private.
    enum Ends {
        machine = "ends",
        noun = "end",
        markers = mod ends,
        states {
            First = "first" => [],
            Second = "second" => [],
            Third = "third" => [],
        }
    }
}

#[test]
fn user_lifecycle_table_and_terminals() {
    assert_eq!(Light::ALL.len(), 5);
    assert_eq!(Light::NAMES, ["off", "on", "blinking", "dead", "unplugged"]);
    let expected = set_of(&[
        ("off", "on"),
        ("on", "off"),
        ("on", "blinking"),
        ("on", "dead"),
        ("blinking", "on"),
        ("blinking", "off"),
        ("blinking", "dead"),
    ]);
    assert_eq!(runtime_edges::<Light>(), expected);
    let terminal: Vec<Light> = Light::ALL.into_iter().filter(|l| l.is_terminal()).collect();
    assert_eq!(terminal, [Light::Dead, Light::Unplugged]);
    for l in Light::ALL {
        assert!(!Light::Unplugged.can_transition_to(l));
        assert!(!l.can_transition_to(Light::Unplugged));
    }
    assert_eq!(
        Light::On.legal_next().collect::<Vec<_>>(),
        [Light::Off, Light::Blinking, Light::Dead]
    );
}

#[test]
fn user_lifecycle_diagram_lists_every_state() {
    let text = mermaid::<Light>();
    let m = parse_mermaid(&text);
    assert_eq!(
        m.states,
        ["off", "on", "blinking", "dead", "unplugged"],
        "{text}"
    );
    assert_eq!(m.initial, ["off"]);
    assert_eq!(
        m.terminal,
        BTreeSet::from(["dead".to_owned(), "unplugged".to_owned()])
    );
    assert_eq!(m.edges, runtime_edges::<Light>());
    assert_eq!(m.edge_lines, 7);

    let d = parse_dot(&dot::<Light>());
    assert_eq!(d.name, "light");
    assert_eq!(d.edges, runtime_edges::<Light>());
    assert!(
        d.shapes
            .contains(&("unplugged".to_owned(), "doublecircle".to_owned()))
    );
}

#[test]
fn user_lifecycle_parse_errors_name_its_machine() -> Result<(), topostate::ParseStatusError> {
    assert_eq!("blinking".parse::<Light>()?, Light::Blinking);
    assert_eq!(Light::try_from(&b"dead"[..])?, Light::Dead);
    let err = "dim"
        .parse::<Light>()
        .expect_err("dim is not a light state");
    assert_eq!(err.input(), "dim");
    assert_eq!(err.machine(), "light");
    assert_eq!(
        err.to_string(),
        "unknown light state: 'dim' (expected one of: off, on, blinking, dead, unplugged)"
    );
    // Same string, other machine in the same module: its own words.
    let err = "dim".parse::<Signal>().expect_err("dim is not an aspect");
    assert_eq!(
        err.to_string(),
        "unknown signal aspect: 'dim' (expected one of: red, green, amber)"
    );
    let err = "off"
        .parse::<Signal>()
        .expect_err("off is a light state, not an aspect");
    assert_eq!(err.machine(), "signal");
    assert_eq!(err.input(), "off");
    let msg = serde_json::from_str::<Light>(r#""dim""#)
        .expect_err("dim")
        .to_string();
    assert!(msg.contains("unknown light state: 'dim'"), "{msg}");
    Ok(())
}

#[test]
fn all_terminal_lifecycle_still_shows_every_state() {
    assert!(Ends::ALL.iter().all(|e| e.is_terminal()));
    assert_eq!(edges::<Ends>().count(), 0);
    let text = mermaid::<Ends>();
    let m = parse_mermaid(&text);
    assert_eq!(m.states, ["first", "second", "third"], "{text}");
    assert!(m.edges.is_empty());
    assert_eq!(m.initial, ["first"]);
    assert_eq!(
        m.terminal,
        BTreeSet::from(["first".to_owned(), "second".to_owned(), "third".to_owned()])
    );
    let d = parse_dot(&dot::<Ends>());
    assert_eq!(d.name, "ends");
    assert!(d.edges.is_empty());
    assert_eq!(d.shapes.len(), 3);
    assert!(d.shapes.iter().all(|(_, shape)| shape == "doublecircle"));
    assert_eq!(<ends::Second as ends::State>::STATUS, Ends::Second);
    assert_eq!(
        "fourth".parse::<Ends>().expect_err("fourth").to_string(),
        "unknown ends end: 'fourth' (expected one of: first, second, third)"
    );
}
