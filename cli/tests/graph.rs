//! `graph` prints exactly what the library generates, for both machines and formats.

mod common;

use common::topostate;
use topostate::lifecycle::{dot, mermaid};
use topostate::{MutationState, TopologyStatus};

#[test]
fn default_is_the_topology_mermaid_diagram() {
    topostate()
        .arg("graph")
        .assert()
        .code(0)
        .stdout(mermaid::<TopologyStatus>())
        .stderr("");
}

#[test]
fn every_format_and_machine_equals_the_library() {
    let cases = [
        ("mermaid", "topology", mermaid::<TopologyStatus>()),
        ("dot", "topology", dot::<TopologyStatus>()),
        ("mermaid", "mutation", mermaid::<MutationState>()),
        ("dot", "mutation", dot::<MutationState>()),
    ];
    for (format, machine, expected) in cases {
        topostate()
            .args(["graph", "--format", format, "--machine", machine])
            .assert()
            .code(0)
            .stdout(expected);
    }
}

#[test]
fn unknown_format_is_a_usage_error() {
    topostate()
        .args(["graph", "--format", "svg"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("possible values: mermaid, dot"));
}
