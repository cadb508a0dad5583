//! `check` and `next` against the library's transition table, through the real binary.

mod common;

use common::{stdout_of, topostate};
use predicates::prelude::*;
use topostate::{MutationState, TopologyStatus};

#[test]
fn legal_transition_exits_0() {
    topostate()
        .args(["check", "pending", "deploying"])
        .assert()
        .code(0)
        .stdout("legal: 'pending' → 'deploying'\n")
        .stderr("");
}

#[test]
fn illegal_transition_exits_1_with_the_library_message_and_the_way_out() {
    let expected = topostate::assert_transition("failed", "deploying")
        .unwrap_err()
        .to_string();
    topostate()
        .args(["check", "failed", "deploying"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(expected))
        .stdout(predicate::str::contains(
            "legal from 'failed': tearing_down",
        ));
}

#[test]
fn terminal_source_says_so() {
    topostate()
        .args(["check", "torn_down", "pending"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("'torn_down' is terminal"));
}

#[test]
fn every_pair_exits_as_the_table_says() {
    for from in TopologyStatus::ALL {
        for to in TopologyStatus::ALL {
            let code = i32::from(!from.can_transition_to(to));
            topostate()
                .args(["check", from.as_str(), to.as_str()])
                .assert()
                .code(code);
        }
    }
}

#[test]
fn unknown_from_is_an_input_error_listing_accepted_values() {
    let expected = "bogus".parse::<TopologyStatus>().unwrap_err().to_string();
    let assert = topostate()
        .args(["check", "bogus", "active"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("error: invalid FROM: "))
        .stderr(predicate::str::contains(expected));
    let stderr = common::stderr_of(assert.get_output());
    for name in TopologyStatus::NAMES {
        assert!(stderr.contains(name), "{name} missing from {stderr}");
    }
}

#[test]
fn unknown_to_is_an_input_error() {
    topostate()
        .args(["check", "pending", "torn-down"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid TO: unknown topology status: 'torn-down' (expected one of: ",
        ));
}

#[test]
fn unknown_current_is_reported_before_unknown_new() {
    topostate()
        .args(["check", "bogus", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("'bogus'"))
        .stderr(predicate::str::contains("'nope'").not());
}

#[test]
fn check_json_parses() -> Result<(), serde_json::Error> {
    let output = topostate()
        .args(["check", "active", "failed", "--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output))?;
    assert_eq!(json["machine"], "topology");
    assert_eq!(json["from"], "active");
    assert_eq!(json["to"], "failed");
    assert_eq!(json["legal"], false);
    assert_eq!(
        json["legal_next"],
        serde_json::json!(
            TopologyStatus::Active
                .legal_next()
                .map(TopologyStatus::as_str)
                .collect::<Vec<_>>()
        )
    );
    Ok(())
}

#[test]
fn check_mutation_machine() {
    topostate()
        .args(["check", "--machine", "mutation", "applying", "failed"])
        .assert()
        .code(0);
    topostate()
        .args(["check", "--machine", "mutation", "pending", "applied"])
        .assert()
        .code(1);
    let expected = "done".parse::<MutationState>().unwrap_err().to_string();
    topostate()
        .args(["check", "--machine", "mutation", "done", "applied"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(expected));
}

#[test]
fn next_lists_legal_successors_one_per_line() {
    for status in TopologyStatus::ALL {
        let expected = topostate::legal_next(status.as_str())
            .unwrap()
            .map(|s| format!("{s}\n"))
            .collect::<Vec<_>>()
            .concat();
        topostate()
            .args(["next", status.as_str()])
            .assert()
            .code(0)
            .stdout(expected);
    }
}

#[test]
fn next_of_a_terminal_status_prints_nothing_and_notes_it() {
    topostate()
        .args(["next", "torn_down"])
        .assert()
        .code(0)
        .stdout("")
        .stderr(predicate::str::contains("terminal"));
}

#[test]
fn next_json_parses() -> Result<(), serde_json::Error> {
    let output = topostate()
        .args(["next", "tearing_down", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output))?;
    assert_eq!(json["status"], "tearing_down");
    assert_eq!(json["next"], serde_json::json!(["degraded", "torn_down"]));
    assert_eq!(json["terminal"], false);
    Ok(())
}

#[test]
fn next_unknown_status_exits_2() {
    let expected = "Active".parse::<TopologyStatus>().unwrap_err().to_string();
    topostate()
        .args(["next", "Active"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(expected));
}

#[test]
fn next_mutation_machine() {
    topostate()
        .args(["next", "--machine", "mutation", "applying"])
        .assert()
        .code(0)
        .stdout("applied\nfailed\n");
}
