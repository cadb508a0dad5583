//! The README's Mermaid diagram is the one `topostate graph --format mermaid` prints.

mod common;

use std::path::Path;

use common::{stdout_of, topostate};

/// The text between the README's "```mermaid" line and the closing fence.
fn readme_mermaid_block() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    };
    let Some((_, rest)) = readme.split_once("```mermaid\n") else {
        panic!("{} has no ```mermaid block", path.display());
    };
    let Some((block, _)) = rest.split_once("```") else {
        panic!("the ```mermaid block in {} is not closed", path.display());
    };
    block.to_owned()
}

#[test]
fn readme_diagram_equals_graph_output() {
    let output = topostate()
        .args(["graph", "--format", "mermaid"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_eq!(
        readme_mermaid_block(),
        stdout_of(&output),
        "README.md's mermaid block drifted; paste `topostate graph --format mermaid` into it"
    );
}
