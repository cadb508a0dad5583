//! The README works as written: its Mermaid diagram is the one `topostate graph --format
//! mermaid` prints, its command-line block runs line by line with the exit codes it states,
//! and its links point at files that exist.

mod common;

use std::path::Path;

use common::{stdout_of, topostate};

/// The README's text.
fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

/// The text of the README's mermaid block, between its opening and closing fences.
fn readme_mermaid_block() -> String {
    let path = "README.md";
    let readme = readme();
    let Some((_, rest)) = readme.split_once("```mermaid\n") else {
        panic!("{path} has no ```mermaid block");
    };
    let Some((block, _)) = rest.split_once("```") else {
        panic!("the ```mermaid block in {path} is not closed");
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

/// How every line of the README's command-line block starts.
const PREFIX: &str = "cargo run -p topostate-cli -- ";

/// The lines of the `sh` block under the README's "## The command line" heading.
fn readme_command_lines() -> Vec<String> {
    let readme = readme();
    let Some((_, section)) = readme.split_once("\n## The command line\n") else {
        panic!("README.md has no \"## The command line\" section");
    };
    let section = section.split("\n## ").next().unwrap_or_default();
    let Some((_, rest)) = section.split_once("```sh\n") else {
        panic!("the command-line section of README.md has no ```sh block");
    };
    let Some((block, _)) = rest.split_once("```") else {
        panic!("the ```sh block of README.md's command-line section is not closed");
    };
    block.lines().map(str::to_owned).collect()
}

/// The exit code a line's comment promises: `exit N` in it, else 0.
fn promised_exit(comment: &str) -> i32 {
    comment
        .split_once("exit ")
        .and_then(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or(0)
}

#[test]
fn readme_command_lines_run_in_order_with_the_exit_codes_they_promise() {
    let lines = readme_command_lines();
    assert!(lines.len() >= 2, "the block is nearly empty: {lines:?}");
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    };
    for line in &lines {
        let Some(rest) = line.strip_prefix(PREFIX) else {
            panic!("README line {line:?} does not start with {PREFIX:?}, so no test runs it");
        };
        let (command, comment) = rest.split_once('#').unwrap_or((rest, ""));
        assert!(
            !command.contains(['\'', '"', '$', '|', '>', '<', ';', '&', '*']),
            "README line {line:?} needs a shell; keep the block to plain arguments"
        );
        let expected = promised_exit(comment);
        let output = topostate()
            .current_dir(dir.path())
            .args(command.split_whitespace())
            .output();
        let output = match output {
            Ok(output) => output,
            Err(e) => panic!("cannot run README line {line:?}: {e}"),
        };
        assert_eq!(
            output.status.code(),
            Some(expected),
            "README line {line:?} promised exit {expected}; stdout:\n{}stderr:\n{}",
            stdout_of(&output),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn readme_links_point_at_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = readme();
    let mut linked = 0;
    for (_, rest) in readme
        .match_indices("](")
        .map(|(i, _)| readme.split_at(i + 2))
    {
        let target = rest.split(')').next().unwrap_or_default();
        if target.contains("://") || target.starts_with('#') {
            continue;
        }
        linked += 1;
        assert!(
            root.join(target).exists(),
            "README.md links {target}, which does not exist"
        );
    }
    assert!(
        readme.contains("](examples/)"),
        "README.md does not link examples/"
    );
    assert!(linked > 0);
}
