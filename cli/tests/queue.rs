//! `topostate queue`: listing a queue with its leases, and repairing a stuck claim fenced
//! by the token read, with the documented exit codes.

mod common;

use std::path::Path;

use common::{stdout_of, topostate};
use tempfile::TempDir;
use topostate::MutationState;
use topostate::store::{Claim, SqliteStore, TopologyStore, TypedStore};
use topostate::{MutationOp, TopologyId};

/// A file with one active topology and two mutations, the first claimed (and its applier
/// gone): the topology's id, the claimed mutation's id and token.
fn stuck(path: &Path) -> (u64, u64, u64) {
    let store = SqliteStore::open(path).unwrap();
    let lab = store.create("lab").unwrap();
    let lab = store.advance(lab, topostate::Topology::deploy).unwrap();
    let mut lab = store.advance(lab, topostate::Topology::activate).unwrap();
    store
        .enqueue(&mut lab, MutationOp::AddLan, r#"{"name":"b"}"#)
        .unwrap();
    store
        .enqueue(&mut lab, MutationOp::AddLan, r#"{"name":"c"}"#)
        .unwrap();
    let Claim::Claimed { lease: claim, .. } = store.claim_next_mutation(lab.id()).unwrap() else {
        panic!("two mutations are pending");
    };
    (lab.id().get(), claim.id().get(), claim.token())
}

fn state_of(path: &Path, topology: u64, mutation: u64) -> MutationState {
    let store = SqliteStore::open(path).unwrap();
    store
        .list_mutations(
            TopologyId::new(topology),
            None,
            topostate::store::PageRequest::first(100),
        )
        .unwrap()
        .items
        .into_iter()
        .find(|m| m.id.get() == mutation)
        .unwrap()
        .state
}

fn run(args: &[&str]) -> std::process::Output {
    topostate().args(args).output().unwrap()
}

#[test]
fn list_shows_tokens_and_leases() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("q.db");
    let (t, m, token) = stuck(&db);
    let out = run(&[
        "queue",
        "list",
        db.to_str().unwrap(),
        "--topology",
        &t.to_string(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout_of(&out);
    assert!(
        text.contains(&format!(
            "mutation {m} add_lan applying token {token} attempts 1"
        )),
        "{text}"
    );
    assert!(text.contains("lease runs"), "{text}");
    let out = run(&[
        "queue",
        "list",
        db.to_str().unwrap(),
        "--topology",
        &t.to_string(),
        "--format",
        "json",
    ]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[1]["token"], token);
    assert_eq!(rows[1]["state"], "applying");
    assert!(rows[1]["lease_until"].is_string(), "{rows}");
}

#[test]
fn release_is_fenced_by_the_token_read() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("q.db");
    let (t, m, token) = stuck(&db);
    let path = db.to_str().unwrap();
    let (t_s, m_s) = (t.to_string(), m.to_string());
    // A token that is not the claim's: refused, exit 1, nothing changed.
    let wrong = (token + 1).to_string();
    let out = run(&[
        "queue",
        "release",
        path,
        "--topology",
        &t_s,
        "--mutation",
        &m_s,
        "--token",
        &wrong,
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout_of(&out).contains("refused, nothing changed"),
        "{out:?}"
    );
    assert_eq!(state_of(&db, t, m), MutationState::Applying);
    // The token read: back to pending.
    let right = token.to_string();
    let out = run(&[
        "queue",
        "release",
        path,
        "--topology",
        &t_s,
        "--mutation",
        &m_s,
        "--token",
        &right,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "done");
    assert_eq!(report["mutation"]["state"], "pending");
    assert_eq!(state_of(&db, t, m), MutationState::Pending);
    // The same token again: the mutation is no longer applying under it.
    let out = run(&[
        "queue",
        "release",
        path,
        "--topology",
        &t_s,
        "--mutation",
        &m_s,
        "--token",
        &right,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "refused");
}

#[test]
fn fail_closes_the_claim_and_bad_input_exits_2() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("q.db");
    let (t, m, token) = stuck(&db);
    let path = db.to_str().unwrap();
    let (t_s, m_s, k_s) = (t.to_string(), m.to_string(), token.to_string());
    let out = run(&[
        "queue",
        "fail",
        path,
        "--topology",
        &t_s,
        "--mutation",
        "999",
        "--token",
        &k_s,
        "--reason",
        "stuck",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = run(&[
        "queue",
        "fail",
        path,
        "--topology",
        &t_s,
        "--mutation",
        &m_s,
        "--token",
        &k_s,
        "--reason",
        "applier host lost",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(state_of(&db, t, m), MutationState::Failed);
    let missing = dir.path().join("missing.db");
    let out = run(&[
        "queue",
        "list",
        missing.to_str().unwrap(),
        "--topology",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!missing.exists(), "listing a missing file created it");
}

/// `audit` reports the claims that hold a queue: none while a fresh lease runs (exit 0);
/// `old-claim` once the claim is older than `--claim-age` (exit 1); `expired-lease` once
/// the lease has passed (exit 1, in text and JSON, naming the token). The file is not
/// changed by any of it.
#[test]
fn audit_reports_expired_leases_and_old_claims() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("q.db");
    let (t, m, token) = stuck(&db);
    let path = db.to_str().unwrap();
    let before = common::dir_state(dir.path()).unwrap();

    let out = run(&["audit", path]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!stdout_of(&out).contains("lease"), "{}", stdout_of(&out));

    let out = run(&["audit", path, "--claim-age", "0"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout_of(&out);
    assert!(text.contains("old-claim"), "{text}");
    assert!(
        text.contains(&format!("mutations row {m} (topology {t})")),
        "{text}"
    );
    assert!(text.contains(&format!("under token {token}")), "{text}");
    assert!(!text.contains("expired-lease"), "{text}");
    assert_eq!(
        common::dir_state(dir.path()).unwrap(),
        before,
        "audit wrote"
    );

    // The applier renews with a lease that then passes.
    let store = SqliteStore::open(&db).unwrap();
    let claim = topostate::store::Lease::from_parts(
        topostate::store::MutationId::new(m),
        TopologyId::new(t),
        token,
    );
    store
        .renew_lease(&claim, std::time::Duration::from_millis(20))
        .unwrap();
    drop(store);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let before = common::dir_state(dir.path()).unwrap();
    let out = run(&["audit", path, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    assert_eq!(findings[0]["kind"], "expired-lease", "{report}");
    assert_eq!(findings[0]["row"], m.to_string(), "{report}");
    let message = findings[0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("--token {token}")), "{message}");
    assert_eq!(
        common::dir_state(dir.path()).unwrap(),
        before,
        "audit wrote"
    );
}
