//! `topostate serve`, driven by a real HTTP client against the real binary on a loopback
//! port: every route's codes, racing writers, bad input, auth, the event stream, shutdown
//! and the OpenAPI document. The scenarios that depend on the store run on SQLite and, with
//! `TOPOSTATE_PG_URL` set (`-- --include-ignored`), on PostgreSQL.

mod serve_common;

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use serve_common::{Backend, Server, answer, call, client, pg_url, tag, tokens_file, unique};

const JSON: (&str, &str) = ("content-type", "application/json");

/// Creates a topology and returns its id.
async fn create(c: &reqwest::Client, s: &Server, name: &str) -> u64 {
    let a = call(
        c,
        Method::POST,
        &s.url("/api/v1/topologies"),
        Some(&json!({ "name": name })),
        &[],
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    a.body["id"].as_u64().expect("id")
}

/// Every route's success and refusal codes, in the order a topology lives them.
async fn routes_scenario(s: &Server) {
    let c = client();
    let base = s.url("/api/v1/topologies");
    let name = unique("lab");

    // Create: 201 with ETag and Location; a duplicate 409; a bad name 422.
    let created = call(&c, Method::POST, &base, Some(&json!({ "name": name })), &[]).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.etag.as_deref(), Some("\"1\""));
    assert_eq!(created.body["status"], "pending");
    let id = created.body["id"].as_u64().expect("id");
    let t = |p: &str| format!("{base}/{id}{p}");
    call(&c, Method::POST, &base, Some(&json!({ "name": name })), &[])
        .await
        .problem(409, "duplicate");
    let blank = call(&c, Method::POST, &base, Some(&json!({ "name": " " })), &[]).await;
    blank.problem(422, "invalid");
    assert_eq!(blank.body["field"], "topology name");

    // List and detail.
    let list = call(
        &c,
        Method::GET,
        &format!("{base}?status=pending"),
        None,
        &[],
    )
    .await;
    assert_eq!(list.status, 200);
    assert!(
        list.body
            .as_array()
            .expect("list")
            .iter()
            .any(|r| r["id"] == id)
    );
    call(&c, Method::GET, &format!("{base}?status=bogus"), None, &[])
        .await
        .problem(400, "bad-query");
    let detail = call(&c, Method::GET, &t(""), None, &[]).await;
    assert_eq!((detail.status, detail.version()), (200, 1));
    call(&c, Method::GET, &format!("{base}/99999999"), None, &[])
        .await
        .problem(404, "not-found");
    call(&c, Method::GET, &format!("{base}/abc"), None, &[])
        .await
        .problem(400, "bad-id");
    call(&c, Method::GET, &format!("{base}/0"), None, &[])
        .await
        .problem(400, "bad-id");

    // Child CRUD on a pending topology, each with If-Match.
    let lan = call(
        &c,
        Method::POST,
        &t("/lans"),
        Some(&json!({"name": "dmz", "subnet": "10.0.0.0/24"})),
        &[("if-match", &tag(1))],
    )
    .await;
    assert_eq!((lan.status, lan.version()), (201, 2), "{lan:?}");
    let lan_id = lan.body["id"].as_u64().expect("lan id");
    let patched = call(
        &c,
        Method::PATCH,
        &t(&format!("/lans/{lan_id}")),
        Some(&json!({"x": 1.5})),
        &[("if-match", &tag(2))],
    )
    .await;
    assert_eq!((patched.status, patched.version()), (200, 3), "{patched:?}");
    call(
        &c,
        Method::PATCH,
        &t("/lans/99999999"),
        Some(&json!({"x": 1.5})),
        &[],
    )
    .await
    .problem(404, "not-found");
    let decky = call(
        &c,
        Method::POST,
        &t("/deckies"),
        Some(&json!({"name": "web", "services": ["http"]})),
        &[("if-match", &tag(3))],
    )
    .await;
    assert_eq!((decky.status, decky.version()), (201, 4), "{decky:?}");
    let decky_id = decky.body["id"].as_u64().expect("decky id");
    let edge = call(
        &c,
        Method::POST,
        &t("/edges"),
        Some(&json!({"decky": decky_id, "lan": lan_id})),
        &[("if-match", &tag(4))],
    )
    .await;
    assert_eq!((edge.status, edge.version()), (201, 5), "{edge:?}");
    let edge_id = edge.body["id"].as_u64().expect("edge id");
    call(
        &c,
        Method::POST,
        &t("/edges"),
        Some(&json!({"decky": decky_id, "lan": lan_id})),
        &[],
    )
    .await
    .problem(409, "duplicate");
    call(
        &c,
        Method::DELETE,
        &t(&format!("/lans/{lan_id}")),
        None,
        &[],
    )
    .await
    .problem(409, "lan-in-use");
    let deleted_edge = call(
        &c,
        Method::DELETE,
        &t(&format!("/edges/{edge_id}")),
        None,
        &[("if-match", &tag(5))],
    )
    .await;
    assert_eq!((deleted_edge.status, deleted_edge.version()), (204, 6));
    let patched_decky = call(
        &c,
        Method::PATCH,
        &t(&format!("/deckies/{decky_id}")),
        Some(&json!({"services": []})),
        &[],
    )
    .await;
    assert_eq!(
        (patched_decky.status, patched_decky.version()),
        (200, 6),
        "unversioned: no bump"
    );
    let deleted_decky = call(
        &c,
        Method::DELETE,
        &t(&format!("/deckies/{decky_id}")),
        None,
        &[("if-match", &tag(6))],
    )
    .await;
    assert_eq!((deleted_decky.status, deleted_decky.version()), (204, 7));

    // The canvas batch: all or nothing, one bump.
    let batch = json!({"edits": [
        {"op": "add_decky", "decky": {"name": "db"}},
        {"op": "update_lan", "id": lan_id, "patch": {"y": 2.0}},
    ]});
    let saved = call(
        &c,
        Method::POST,
        &t("/edits"),
        Some(&batch),
        &[("if-match", &tag(7))],
    )
    .await;
    assert_eq!((saved.status, saved.version()), (200, 8), "{saved:?}");
    assert_eq!(saved.body["touched"].as_array().map(Vec::len), Some(2));
    let bad_batch = json!({"edits": [
        {"op": "add_decky", "decky": {"name": "cache"}},
        {"op": "delete_lan", "id": 99_999_999},
    ]});
    call(
        &c,
        Method::POST,
        &t("/edits"),
        Some(&bad_batch),
        &[("if-match", &tag(8))],
    )
    .await
    .problem(404, "not-found");
    let after = call(&c, Method::GET, &t(""), None, &[]).await;
    assert_eq!(after.version(), 8, "a refused batch writes nothing");
    assert_eq!(after.body["deckies"].as_array().map(Vec::len), Some(1));

    // The mutation queue is closed while pending.
    call(
        &c,
        Method::POST,
        &t("/mutations"),
        Some(&json!({"op": "add_lan"})),
        &[],
    )
    .await
    .problem(409, "not-editable");

    // Deploy: 202, then not again; child edits refused while not pending.
    let deployed = call(
        &c,
        Method::POST,
        &t("/deploy"),
        None,
        &[("if-match", &tag(8))],
    )
    .await;
    assert_eq!(
        (deployed.status, deployed.version()),
        (202, 8),
        "{deployed:?}"
    );
    assert_eq!(deployed.body["status"], "deploying");
    let again = call(&c, Method::POST, &t("/deploy"), None, &[]).await;
    again.problem(409, "stale-status");
    assert_eq!(again.body["topology_status"], "deploying");
    call(
        &c,
        Method::POST,
        &t("/lans"),
        Some(&json!({"name": "b", "subnet": "10.0.1.0/24"})),
        &[],
    )
    .await
    .problem(409, "not-editable");
    call(&c, Method::DELETE, &t(""), None, &[])
        .await
        .problem(409, "not-editable");

    // A worker's transitions.
    let active = call(
        &c,
        Method::POST,
        &t("/transitions"),
        Some(&json!({"from": "deploying", "to": "active"})),
        &[("if-match", &tag(8))],
    )
    .await;
    assert_eq!(active.status, 200, "{active:?}");
    assert_eq!(active.body["event"]["to"], "active");
    call(
        &c,
        Method::POST,
        &t("/transitions"),
        Some(&json!({"from": "deploying", "to": "failed"})),
        &[],
    )
    .await
    .problem(409, "stale-status");
    let illegal = call(
        &c,
        Method::POST,
        &t("/transitions"),
        Some(&json!({"from": "active", "to": "deploying"})),
        &[],
    )
    .await;
    illegal.problem(409, "illegal-transition");
    assert_eq!(illegal.body["to"], "deploying");
    call(
        &c,
        Method::POST,
        &t("/transitions"),
        Some(&json!({"from": "active", "to": "nowhere"})),
        &[],
    )
    .await
    .problem(422, "invalid-body");

    // The queue is open while active.
    let queued = call(
        &c,
        Method::POST,
        &t("/mutations"),
        Some(&json!({"op": "add_lan", "payload": {"name": "b"}, "expected_version": 8})),
        &[],
    )
    .await;
    assert_eq!((queued.status, queued.version()), (202, 9), "{queued:?}");
    assert_eq!(queued.body["state"], "pending");
    call(
        &c,
        Method::POST,
        &t("/mutations"),
        Some(&json!({"op": "noop"})),
        &[],
    )
    .await
    .problem(422, "invalid-body");
    call(
        &c,
        Method::POST,
        &t("/mutations"),
        Some(&json!({"op": "add_lan", "payload": [1]})),
        &[],
    )
    .await
    .problem(422, "invalid-body");
    let listed = call(&c, Method::GET, &t("/mutations?state=pending"), None, &[]).await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1), "{listed:?}");
    assert_eq!(listed.body[0]["payload"], r#"{"name":"b"}"#);
    call(&c, Method::GET, &t("/mutations?state=done"), None, &[])
        .await
        .problem(400, "bad-query");

    // Teardown, the status log, delete.
    let down = call(&c, Method::POST, &t("/teardown"), None, &[]).await;
    assert_eq!(
        (down.status, &down.body["status"]),
        (202, &json!("tearing_down"))
    );
    call(&c, Method::POST, &t("/teardown"), None, &[])
        .await
        .problem(409, "illegal-transition");
    let torn = call(
        &c,
        Method::POST,
        &t("/transitions"),
        Some(&json!({"from": "tearing_down", "to": "torn_down"})),
        &[],
    )
    .await;
    assert_eq!(torn.status, 200);
    let log = call(&c, Method::GET, &t("/status-events?limit=2"), None, &[]).await;
    let tos: Vec<_> = log
        .body
        .as_array()
        .expect("log")
        .iter()
        .map(|e| e["to"].clone())
        .collect();
    assert_eq!(
        tos,
        [json!("torn_down"), json!("tearing_down")],
        "newest first, limited"
    );
    call(&c, Method::GET, &t("/status-events?limit=0"), None, &[])
        .await
        .problem(400, "bad-query");
    call(&c, Method::GET, &t("/status-events?limit=1001"), None, &[])
        .await
        .problem(400, "bad-query");
    call(&c, Method::DELETE, &t(""), None, &[("if-match", &tag(3))])
        .await
        .problem(412, "version-conflict");
    let gone = call(&c, Method::DELETE, &t(""), None, &[("if-match", &tag(9))]).await;
    assert_eq!(gone.status, 204, "{gone:?}");
    call(&c, Method::GET, &t(""), None, &[])
        .await
        .problem(404, "not-found");
    call(&c, Method::DELETE, &t(""), None, &[])
        .await
        .problem(404, "not-found");

    // Health and an unknown route.
    let health = c.get(s.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), 200);
    call(&c, Method::GET, &s.url("/api/v1/nothing"), None, &[])
        .await
        .problem(404, "no-route");
}

/// Two clients with the same ETag: exactly one write wins, the other is 412, and the
/// final version counts every win.
async fn race_scenario(s: &Server) {
    let c = client();
    let id = create(&c, s, &unique("race")).await;
    let url = s.url(&format!("/api/v1/topologies/{id}/lans"));
    let rounds = 25;
    for round in 0..rounds {
        let version = 1 + round;
        let body = |who: &str| json!({"name": format!("{who}-{round}"), "subnet": "10.0.0.0/24"});
        let (body_a, body_b, etag) = (body("a"), body("b"), tag(version));
        let headers = [("if-match", etag.as_str())];
        let (a, b) = tokio::join!(
            call(&c, Method::POST, &url, Some(&body_a), &headers),
            call(&c, Method::POST, &url, Some(&body_b), &headers),
        );
        let mut codes = [a.status, b.status];
        codes.sort_unstable();
        assert_eq!(codes, [201, 412], "round {round}: {a:?} {b:?}");
        let loser = if a.status == 412 { &a } else { &b };
        assert_eq!(loser.body["current"], json!(version + 1), "{loser:?}");
        assert_eq!(loser.body["expected"], json!(version), "{loser:?}");
    }
    let detail = call(
        &c,
        Method::GET,
        &s.url(&format!("/api/v1/topologies/{id}")),
        None,
        &[],
    )
    .await;
    assert_eq!(
        detail.version(),
        1 + rounds,
        "one bump per won round, none lost"
    );
    assert_eq!(
        detail.body["lans"].as_array().map(Vec::len),
        usize::try_from(rounds).ok()
    );
}

/// 8 clients × 200 writes on one topology, each with the version it last saw: every
/// success is one bump and one row, every refusal a 412 naming the current version.
async fn many_writers_scenario(s: &Server) {
    let c = client();
    let id = create(&c, s, &unique("crowd")).await;
    let url = s.url(&format!("/api/v1/topologies/{id}/lans"));
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let c = c.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = 1_u64;
            let mut won = 0_u64;
            for n in 0..200 {
                let body = json!({"name": format!("w{writer}-{n}"), "subnet": "10.0.0.0/24"});
                let a = call(
                    &c,
                    Method::POST,
                    &url,
                    Some(&body),
                    &[("if-match", &tag(seen))],
                )
                .await;
                match a.status {
                    201 => {
                        won += 1;
                        seen = a.version();
                    }
                    412 => {
                        assert_eq!(a.slug(), "version-conflict", "{a:?}");
                        seen = a.body["current"].as_u64().expect("current");
                    }
                    other => panic!("writer {writer}: unexpected {other}: {a:?}"),
                }
            }
            won
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += tokio::time::timeout(Duration::from_mins(5), task)
            .await
            .expect("writers finish within 300 s")
            .expect("writer");
    }
    let detail = call(
        &c,
        Method::GET,
        &s.url(&format!("/api/v1/topologies/{id}")),
        None,
        &[],
    )
    .await;
    assert!(won > 0, "some writes win");
    assert_eq!(detail.version(), 1 + won, "every answered win is one bump");
    assert_eq!(
        detail.body["lans"].as_array().map(Vec::len),
        usize::try_from(won).ok()
    );
}

/// The canvas batch route with batch-local references: a new decky and its edges, one of
/// them to a LAN the same batch adds, in one call under one `If-Match`; the report names the
/// stored id each reference became. A reference to nothing earlier, to a later edit or to an
/// edit adding another kind of row is a 422 naming the edit, and nothing is written.
async fn batch_refs_scenario(s: &Server) {
    let c = client();
    let id = create(&c, s, &unique("canvas")).await;
    let t = |p: &str| s.url(&format!("/api/v1/topologies/{id}{p}"));
    let stored = call(
        &c,
        Method::POST,
        &t("/lans"),
        Some(&json!({"name": "core", "subnet": "10.1.0.0/24"})),
        &[("if-match", &tag(1))],
    )
    .await;
    assert_eq!((stored.status, stored.version()), (201, 2), "{stored:?}");
    let core = stored.body["id"].as_u64().expect("lan id");

    let save = json!({"edits": [
        {"op": "add_lan", "lan": {"name": "dmz", "subnet": "10.2.0.0/24"}},
        {"op": "add_decky", "decky": {"name": "mail"}},
        {"op": "add_edge", "edge": {"decky": {"batch": 1}, "lan": {"batch": 0}}},
        {"op": "add_edge", "edge": {"decky": {"batch": 1}, "lan": core, "is_bridge": true}},
        {"op": "update_decky", "id": {"batch": 1}, "patch": {"x": 1.5}},
    ]});
    let saved = call(
        &c,
        Method::POST,
        &t("/edits"),
        Some(&save),
        &[("if-match", &tag(2))],
    )
    .await;
    assert_eq!(
        (saved.status, saved.version()),
        (200, 3),
        "one bump: {saved:?}"
    );
    let touched = saved.body["touched"].as_array().expect("touched").clone();
    assert_eq!(touched.len(), 5, "{saved:?}");
    assert_eq!(touched[0]["kind"], "lan");
    assert_eq!(touched[1]["kind"], "decky");
    let (dmz, mail) = (
        touched[0]["id"].as_u64().expect("lan id"),
        touched[1]["id"].as_u64().expect("decky id"),
    );
    assert_eq!(touched[4], json!({"kind": "decky", "id": mail}));
    let detail = call(&c, Method::GET, &t(""), None, &[]).await;
    assert_eq!(detail.version(), 3);
    let mut pairs: Vec<(u64, u64, bool)> = detail.body["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["decky"].as_u64().unwrap_or(0),
                e["lan"].as_u64().unwrap_or(0),
                e["is_bridge"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    pairs.sort_unstable();
    let mut want = vec![(mail, dmz, false), (mail, core, true)];
    want.sort_unstable();
    assert_eq!(pairs, want, "{detail:?}");
    assert_eq!(detail.body["deckies"][0]["x"], 1.5);

    // Refused references: each a 422 naming the edit and the field; nothing written, even
    // where an earlier edit of the batch was fine.
    for (edits, edit, field, target) in [
        (
            json!([
                {"op": "add_decky", "decky": {"name": "cache"}},
                {"op": "add_edge", "edge": {"decky": {"batch": 2}, "lan": core}},
            ]),
            1,
            "edge decky",
            2,
        ),
        (
            json!([
                {"op": "add_edge", "edge": {"decky": mail, "lan": {"batch": 1}}},
                {"op": "add_lan", "lan": {"name": "late", "subnet": "10.3.0.0/24"}},
            ]),
            0,
            "edge lan",
            1,
        ),
        (
            json!([{"op": "delete_lan", "id": {"batch": 0}}]),
            0,
            "lan id",
            0,
        ),
        (
            json!([
                {"op": "add_lan", "lan": {"name": "x", "subnet": "10.4.0.0/24"}},
                {"op": "update_decky", "id": {"batch": 0}, "patch": {"y": 1.0}},
            ]),
            1,
            "decky id",
            0,
        ),
    ] {
        let refused = call(
            &c,
            Method::POST,
            &t("/edits"),
            Some(&json!({ "edits": edits })),
            &[("if-match", &tag(3))],
        )
        .await;
        refused.problem(422, "bad-reference");
        assert_eq!(refused.body["edit"], edit, "{refused:?}");
        assert_eq!(refused.body["field"], field, "{refused:?}");
        assert_eq!(refused.body["target"], target, "{refused:?}");
        let text = refused.body["detail"].as_str().unwrap_or_default();
        assert!(text.starts_with(&format!("edit {edit}: ")), "{refused:?}");
        let after = call(&c, Method::GET, &t(""), None, &[]).await;
        assert_eq!(after.body, detail.body, "a refused batch wrote something");
        assert_eq!(after.etag, detail.etag);
    }
    // A reference that is not one on the wire is a bad body; a stale If-Match refuses a
    // good referring batch whole.
    for reference in [
        json!({"batch": -1}),
        json!({"batch": 0, "edit": 0}),
        json!("0"),
        json!({}),
    ] {
        let edits = json!({"edits": [
            {"op": "add_decky", "decky": {"name": "cache"}},
            {"op": "add_edge", "edge": {"decky": reference, "lan": core}},
        ]});
        call(
            &c,
            Method::POST,
            &t("/edits"),
            Some(&edits),
            &[("if-match", &tag(3))],
        )
        .await
        .problem(422, "invalid-body");
    }
    let stale = call(
        &c,
        Method::POST,
        &t("/edits"),
        Some(&save),
        &[("if-match", &tag(2))],
    )
    .await;
    stale.problem(412, "version-conflict");
    assert_eq!(stale.body["current"], 3, "{stale:?}");
    let after = call(&c, Method::GET, &t(""), None, &[]).await;
    assert_eq!(after.body, detail.body, "a refused batch wrote something");
    assert_eq!(after.etag, detail.etag);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn routes_answer_with_their_codes_sqlite() {
    let s = Server::start(&Backend::Sqlite, &[]);
    runtime().block_on(routes_scenario(&s));
}

#[test]
fn racing_clients_with_one_etag_one_wins_sqlite() {
    let s = Server::start(&Backend::Sqlite, &[]);
    runtime().block_on(race_scenario(&s));
}

#[test]
fn eight_clients_two_hundred_writes_lose_nothing_sqlite() {
    let s = Server::start(&Backend::Sqlite, &[]);
    runtime().block_on(many_writers_scenario(&s));
}

#[test]
fn canvas_batch_takes_batch_local_references_sqlite() {
    let s = Server::start(&Backend::Sqlite, &[]);
    runtime().block_on(batch_refs_scenario(&s));
}

#[test]
#[ignore = "needs TOPOSTATE_PG_URL (a PostgreSQL server; see .ci/postgres.sh)"]
fn routes_races_and_writers_postgres() {
    let Some(url) = pg_url() else {
        panic!("TOPOSTATE_PG_URL is not set");
    };
    let s = Server::start(&Backend::Postgres(url), &[]);
    let rt = runtime();
    rt.block_on(routes_scenario(&s));
    rt.block_on(race_scenario(&s));
    rt.block_on(many_writers_scenario(&s));
    rt.block_on(batch_refs_scenario(&s));
}

#[test]
fn preconditions_412_409_428_and_bad_if_match() {
    let s = Server::start(&Backend::Sqlite, &[]);
    runtime().block_on(async {
        let c = client();
        let id = create(&c, &s, &unique("pre")).await;
        let url = s.url(&format!("/api/v1/topologies/{id}/lans"));
        let lan = |n: &str| json!({"name": n, "subnet": "10.0.0.0/24"});
        call(
            &c,
            Method::POST,
            &url,
            Some(&lan("a")),
            &[("if-match", &tag(1))],
        )
        .await;
        // Stale in If-Match: 412; stale in the body: 409; both with current and expected.
        let pre = call(
            &c,
            Method::POST,
            &url,
            Some(&lan("b")),
            &[("if-match", &tag(1))],
        )
        .await;
        pre.problem(412, "version-conflict");
        assert_eq!(
            (pre.body["current"].clone(), pre.body["expected"].clone()),
            (json!(2), json!(1))
        );
        let mut stale = lan("b");
        stale["expected_version"] = json!(1);
        let body = call(&c, Method::POST, &url, Some(&stale), &[]).await;
        body.problem(409, "version-conflict");
        assert_eq!(body.body["current"], json!(2));
        // A weak tag never matches; junk is 400; If-Match and the body must agree.
        call(
            &c,
            Method::POST,
            &url,
            Some(&lan("b")),
            &[("if-match", "W/\"2\"")],
        )
        .await
        .problem(412, "weak-if-match");
        for junk in ["2", "\"two\"", "\"2\", \"3\"", "\"0\""] {
            call(
                &c,
                Method::POST,
                &url,
                Some(&lan("b")),
                &[("if-match", junk)],
            )
            .await
            .problem(400, "bad-if-match");
        }
        call(
            &c,
            Method::POST,
            &url,
            Some(&stale),
            &[("if-match", &tag(2))],
        )
        .await
        .problem(400, "conflicting-versions");
        let any = call(
            &c,
            Method::POST,
            &url,
            Some(&lan("c")),
            &[("if-match", "*")],
        )
        .await;
        assert_eq!(
            (any.status, any.version()),
            (201, 2),
            "`*` checks existence only"
        );
        let detail = call(
            &c,
            Method::GET,
            &s.url(&format!("/api/v1/topologies/{id}")),
            None,
            &[],
        )
        .await;
        assert_eq!(detail.body["lans"].as_array().map(Vec::len), Some(2));
    });
    drop(s);

    let s = Server::start(&Backend::Sqlite, &["--require-if-match"]);
    runtime().block_on(async {
        let c = client();
        let id = create(&c, &s, &unique("req")).await;
        let url = s.url(&format!("/api/v1/topologies/{id}/lans"));
        let body = json!({"name": "a", "subnet": "10.0.0.0/24", "expected_version": 1});
        call(&c, Method::POST, &url, Some(&body), &[])
            .await
            .problem(428, "if-match-required");
        call(
            &c,
            Method::POST,
            &s.url(&format!("/api/v1/topologies/{id}/deploy")),
            None,
            &[],
        )
        .await
        .problem(428, "if-match-required");
        let ok = call(
            &c,
            Method::POST,
            &url,
            Some(&body),
            &[("if-match", &tag(1))],
        )
        .await;
        assert_eq!(ok.status, 201);
        let detail = call(
            &c,
            Method::GET,
            &s.url(&format!("/api/v1/topologies/{id}")),
            None,
            &[],
        )
        .await;
        assert_eq!(
            (detail.version(), &detail.body["topology"]["status"]),
            (2, &json!("pending"))
        );
    });
}

/// Sends raw bytes and reads the answer's status line (for what a client library refuses
/// to send); bounded by the socket timeouts.
fn raw(base: &str, request: &[u8], pause_after: Option<Duration>) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    if let Some(pause) = pause_after {
        std::thread::sleep(pause);
    }
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn bad_bodies_ids_headers_sizes_and_slow_clients_are_4xx_and_write_nothing() {
    let s = Server::start(
        &Backend::Sqlite,
        &["--body-limit", "2048", "--body-timeout", "1"],
    );
    let base = s.base.clone();
    runtime().block_on(async {
        let c = client();
        let id = create(&c, &s, &unique("bad")).await;
        let t = |p: &str| s.url(&format!("/api/v1/topologies/{id}{p}"));
        let before = call(&c, Method::GET, &t(""), None, &[]).await;

        let send = |body: &'static str, ct: Option<&'static str>| {
            let mut r = c.post(t("/lans")).body(body);
            if let Some(ct) = ct {
                r = r.header("content-type", ct);
            }
            async move { answer(r.send().await.expect("send")).await }
        };
        send("{", Some("application/json")).await.problem(400, "malformed-json");
        send("[]", Some("application/json")).await.problem(422, "invalid-body");
        send(r#"{"name":"a"}"#, Some("application/json")).await.problem(422, "invalid-body");
        send(r#"{"name":"a","subnet":"x","colour":1}"#, Some("application/json"))
            .await
            .problem(422, "invalid-body");
        send(r#"{"name":"a","subnet":"x","x":"left"}"#, Some("application/json"))
            .await
            .problem(422, "invalid-body");
        send(r#"{"name":"a","subnet":"x"}"#, None).await.problem(415, "unsupported-media-type");
        send(r#"{"name":"a","subnet":"x"}"#, Some("text/plain"))
            .await
            .problem(415, "unsupported-media-type");
        let big = json!({"name": "a", "subnet": "x".repeat(4096)});
        call(&c, Method::POST, &t("/lans"), Some(&big), &[])
            .await
            .problem(413, "body-too-large");
        call(&c, Method::POST, &s.url("/api/v1/topologies/-1/lans"), Some(&json!({})), &[])
            .await
            .problem(400, "bad-id");
        call(&c, Method::PATCH, &t("/lans/x"), Some(&json!({})), &[])
            .await
            .problem(400, "bad-id");
        call(&c, Method::POST, &t("/lans"), Some(&json!({"name":"a","subnet":"x"})), &[("if-match", "nope")])
            .await
            .problem(400, "bad-if-match");
        call(&c, Method::POST, &t("/edits"), Some(&json!({"edits": [{"op": "rename_lan", "id": 1}]})), &[])
            .await
            .problem(422, "invalid-body");
        call(&c, Method::GET, &t("/events"), None, &[("last-event-id", "yesterday")])
            .await
            .problem(400, "bad-last-event-id");

        // What a client library would not send: a body that never arrives in full (408),
        // and a chunked body past the limit (413).
        let path = format!("/api/v1/topologies/{id}/lans");
        let slow = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{{\"name\":"
        );
        let base2 = base.clone();
        let reply = tokio::task::spawn_blocking(move || raw(&base2, slow.as_bytes(), None))
            .await
            .expect("raw");
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        assert!(reply.contains("request-timeout"), "{reply}");
        let chunk = "x".repeat(3000);
        let chunked = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
            chunk.len()
        );
        let base3 = base.clone();
        let reply = tokio::task::spawn_blocking(move || raw(&base3, chunked.as_bytes(), None))
            .await
            .expect("raw");
        assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");

        let after = call(&c, Method::GET, &t(""), None, &[]).await;
        assert_eq!(after.body, before.body, "nothing was written");
        assert_eq!(after.etag, before.etag);
    });
}

/// How a connection that sends `request` one byte per `every` ended: whether the server
/// closed it before all was sent, what it answered, and how many bytes went out first.
fn trickle(base: &str, request: &[u8], every: Duration) -> (bool, String, usize) {
    use std::io::ErrorKind;
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(every)).expect("timeout");
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    for (sent, byte) in request.iter().enumerate() {
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            return (true, String::from_utf8_lossy(&reply).into_owned(), sent);
        }
        match stream.read(&mut buf) {
            Ok(0) => return (true, String::from_utf8_lossy(&reply).into_owned(), sent + 1),
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .expect("timeout");
                let _ = stream.read_to_end(&mut reply);
                return (true, String::from_utf8_lossy(&reply).into_owned(), sent + 1);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (true, String::from_utf8_lossy(&reply).into_owned(), sent + 1),
        }
    }
    (
        false,
        String::from_utf8_lossy(&reply).into_owned(),
        request.len(),
    )
}

/// Slowloris: a client that sends its request headers a byte at a time, or nothing at all,
/// holds its connection no longer than `--header-timeout`: the server closes it (or
/// answers 408) before the headers are complete, and nothing is written.
#[test]
fn slow_headers_are_cut_off_within_the_bound_and_write_nothing() {
    let s = Server::start(&Backend::Sqlite, &["--header-timeout", "1"]);
    let rt = runtime();
    let (id, before) = rt.block_on(async {
        let c = client();
        let id = create(&c, &s, &unique("slowloris")).await;
        let url = s.url(&format!("/api/v1/topologies/{id}"));
        (id, call(&c, Method::GET, &url, None, &[]).await)
    });
    let body = r#"{"name":"slow","subnet":"10.9.0.0/24"}"#;
    let head = format!(
        "POST /api/v1/topologies/{id}/lans HTTP/1.1\r\nhost: x\r\n\
         content-type: application/json\r\nx-padding: {}\r\ncontent-length: {}\r\n\r\n",
        "p".repeat(64),
        body.len()
    );
    let request = format!("{head}{body}");
    // A byte every 50 ms: the headers alone take about 10 s to send, ten times the bound.
    let base = s.base.clone();
    let slow =
        std::thread::spawn(move || trickle(&base, request.as_bytes(), Duration::from_millis(50)));
    // A client that connects and sends nothing.
    let addr = s.base.trim_start_matches("http://").to_owned();
    let silent = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).map(|_| reply)
    });
    let (closed, reply, sent) = slow.join().expect("trickle");
    assert!(
        closed,
        "the slow client's connection was left open: {reply}"
    );
    assert!(
        sent < head.len(),
        "cut off only after {sent} bytes, the headers being {}",
        head.len()
    );
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "{reply}"
    );
    let silent = silent.join().expect("silent");
    let reply = silent.expect("the silent client's connection was closed, not left open");
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "{reply}"
    );
    rt.block_on(async {
        let c = client();
        let url = s.url(&format!("/api/v1/topologies/{id}"));
        let after = call(&c, Method::GET, &url, None, &[]).await;
        assert_eq!(after.body, before.body, "nothing was written");
        assert_eq!(after.etag, before.etag);
        // Requests that arrive in time are served as before, on a kept-alive connection.
        for _ in 0..3 {
            call(&c, Method::GET, &url, None, &[]).await;
        }
    });
}

/// A request whose body is still arriving when SIGTERM comes is finished and answered: the
/// server stops accepting, waits for it, and only then exits.
#[test]
fn a_request_in_flight_at_sigterm_is_answered_before_the_exit() {
    let mut s = Server::start(&Backend::Sqlite, &[]);
    let db = s.db.clone().expect("sqlite");
    let id = runtime().block_on(async { create(&client(), &s, &unique("inflight")).await });
    let body = r#"{"name":"inflight","subnet":"10.8.0.0/24"}"#;
    let head = format!(
        "POST /api/v1/topologies/{id}/lans HTTP/1.1\r\nhost: x\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(head.as_bytes()).expect("head");
    stream.write_all(&body.as_bytes()[..5]).expect("some body");
    // Time for the server to read the headers: the request is then in flight.
    std::thread::sleep(Duration::from_millis(500));
    let pid = s.pid().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(sent.is_ok_and(|st| st.success()), "kill -TERM {pid}");
    // The server stops accepting (bounded wait), while our request is still open.
    let mut refused = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(&addr).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refused, "the server kept accepting after SIGTERM");
    stream
        .write_all(&body.as_bytes()[5..])
        .expect("rest of the body");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    let (code, lines) = s.terminate();
    assert_eq!(code, Some(0), "a clean stop: {lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("stopped"));
    use topostate::store::{SqliteStore, TopologyStore};
    let store = SqliteStore::open(&db).expect("open after stop");
    let detail = store
        .topology_detail(topostate::TopologyId::new(id))
        .expect("detail");
    assert!(detail.lans.iter().any(|l| l.name == "inflight"));
}

const ADMIN: &str = "admin-token-0123456789abcdef";
const VIEWER: &str = "viewer-token-0123456789abcdef";

#[test]
fn bearer_tokens_roles_and_the_tokens_file() {
    let dir = tempfile::tempdir().expect("dir");
    let text = format!("# roles\nadmin {ADMIN}\nviewer {VIEWER}\n");
    let path = tokens_file(dir.path(), &text, 0o600);
    let path = path.to_str().expect("utf-8 path").to_owned();
    let s = Server::start_in(dir, &Backend::Sqlite, &["--tokens", &path]);
    runtime().block_on(async {
        let c = client();
        let base = s.url("/api/v1/topologies");
        let bearer = |t: &str| format!("Bearer {t}");
        let admin = bearer(ADMIN);
        let viewer = bearer(VIEWER);
        let body = json!({"name": unique("auth")});
        let none = call(&c, Method::POST, &base, Some(&body), &[]).await;
        none.problem(401, "unauthorized");
        call(&c, Method::GET, &base, None, &[])
            .await
            .problem(401, "unauthorized");
        call(
            &c,
            Method::GET,
            &base,
            None,
            &[("authorization", &bearer("admin-token-0123456789abcdeX"))],
        )
        .await
        .problem(401, "unauthorized");
        call(
            &c,
            Method::GET,
            &base,
            None,
            &[("authorization", &format!("Basic {ADMIN}"))],
        )
        .await
        .problem(401, "unauthorized");
        call(
            &c,
            Method::POST,
            &base,
            Some(&body),
            &[("authorization", &viewer)],
        )
        .await
        .problem(403, "forbidden");
        let made = call(
            &c,
            Method::POST,
            &base,
            Some(&body),
            &[("authorization", &admin)],
        )
        .await;
        assert_eq!(made.status, 201);
        let read = call(&c, Method::GET, &base, None, &[("authorization", &viewer)]).await;
        assert_eq!(
            read.body.as_array().map(Vec::len),
            Some(1),
            "the viewer's write made nothing"
        );
        let r = c.get(&base).send().await.expect("send");
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .map(reqwest::header::HeaderValue::as_bytes),
            Some(&b"Bearer"[..])
        );
        // Health and the document stay open.
        assert_eq!(
            c.get(s.url("/healthz")).send().await.expect("h").status(),
            200
        );
        assert_eq!(
            c.get(s.url("/api/v1/openapi.json"))
                .send()
                .await
                .expect("o")
                .status(),
            200
        );
    });

    // A tokens file others may read is refused before listening; so is an open server on
    // a non-loopback address. Neither message shows a token.
    let dir = tempfile::tempdir().expect("dir");
    let loose = tokens_file(dir.path(), &text, 0o644);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_topostate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tokens"])
        .arg(&loose)
        .arg("--db")
        .arg(dir.path().join("x.db"))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(ADMIN) && !err.contains(VIEWER), "{err}");
    let bad = tokens_file(dir.path(), &format!("root {ADMIN}\n"), 0o600);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_topostate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tokens"])
        .arg(&bad)
        .arg("--db")
        .arg(dir.path().join("x.db"))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 1") && !err.contains(ADMIN), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_topostate"))
        .args(["serve", "--listen", "0.0.0.0:0", "--db"])
        .arg(dir.path().join("x.db"))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("without --tokens"), "{err}");
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: String,
    event: String,
    data: Value,
}

/// Reads events from an open stream until `want` have arrived (at most 30 s).
async fn read_events(
    response: &mut reqwest::Response,
    buffer: &mut String,
    want: usize,
) -> Vec<Sse> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while events.len() < want {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut e = Sse {
                id: String::new(),
                event: String::new(),
                data: Value::Null,
            };
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    v.trim().clone_into(&mut e.id);
                } else if let Some(v) = line.strip_prefix("event:") {
                    v.trim().clone_into(&mut e.event);
                } else if let Some(v) = line.strip_prefix("data:") {
                    e.data = serde_json::from_str(v.trim()).unwrap_or(Value::Null);
                }
            }
            if !e.event.is_empty() {
                events.push(e);
            }
        }
        if events.len() >= want {
            break;
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {want} events within 30 s: {events:?}",
                    events.len()
                )
            })
            .expect("stream");
        match chunk {
            Some(bytes) => buffer.push_str(&String::from_utf8_lossy(&bytes)),
            None => break,
        }
    }
    events
}

#[test]
fn event_stream_delivers_every_change_in_order_and_resumes_without_gaps() {
    let s = Server::start(&Backend::Sqlite, &[]);
    let db = s.db.clone().expect("sqlite");
    runtime().block_on(async {
        let c = client();
        let id = create(&c, &s, &unique("sse")).await;
        let t = |p: &str| s.url(&format!("/api/v1/topologies/{id}{p}"));
        let mut stream = c.get(t("/events")).send().await.expect("stream");
        assert_eq!(stream.status(), 200);
        assert!(
            stream.headers()["content-type"]
                .to_str()
                .unwrap_or("")
                .starts_with("text/event-stream")
        );
        let mut buffer = String::new();

        let step = |from: &'static str, to: &'static str| {
            let c = c.clone();
            let url = t("/transitions");
            async move {
                let a = call(
                    &c,
                    Method::POST,
                    &url,
                    Some(&json!({"from": from, "to": to})),
                    &[],
                )
                .await;
                assert_eq!(a.status, 200, "{from} → {to}: {a:?}");
            }
        };
        assert_eq!(
            call(&c, Method::POST, &t("/deploy"), None, &[])
                .await
                .status,
            202
        );
        step("deploying", "active").await;
        let q = call(
            &c,
            Method::POST,
            &t("/mutations"),
            Some(&json!({"op": "add_lan"})),
            &[],
        )
        .await;
        assert_eq!(q.status, 202);
        let first = read_events(&mut stream, &mut buffer, 3).await;
        let kinds: Vec<_> = first
            .iter()
            .map(|e| (e.event.as_str(), e.data["to"].clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("status", json!("deploying")),
                ("status", json!("active")),
                ("mutation", Value::Null)
            ],
            "{first:?}"
        );
        drop(stream);

        // While no one listens: a change through the API and one by another process on
        // the same database file.
        step("active", "degraded").await;
        {
            use topostate::store::{Precondition, SqliteStore, TopologyStore};
            let other = SqliteStore::open(&db).expect("open the server's file");
            other
                .transition_status(
                    topostate::TopologyId::new(id),
                    topostate::TopologyStatus::Active,
                    Some("healed elsewhere"),
                    Precondition::status(topostate::TopologyStatus::Degraded),
                )
                .expect("another process's write");
        }
        let last = first.last().expect("events").id.clone();
        let mut resumed = c
            .get(t("/events"))
            .header("last-event-id", &last)
            .send()
            .await
            .expect("resume");
        let mut buffer = String::new();
        let rest = read_events(&mut resumed, &mut buffer, 2).await;
        let tos: Vec<_> = rest
            .iter()
            .map(|e| (e.event.as_str(), e.data["to"].clone()))
            .collect();
        assert_eq!(
            tos,
            [("status", json!("degraded")), ("status", json!("active"))],
            "{rest:?}"
        );
        assert_eq!(rest[1].data["reason"], "healed elsewhere");
        step("active", "tearing_down").await;
        let more = read_events(&mut resumed, &mut buffer, 1).await;
        assert_eq!(more[0].data["to"], "tearing_down");

        // Every status change exactly once, in the log's order.
        let log = call(&c, Method::GET, &t("/status-events"), None, &[]).await;
        let mut log_ids: Vec<_> = log
            .body
            .as_array()
            .expect("log")
            .iter()
            .map(|e| e["id"].clone())
            .collect();
        log_ids.reverse();
        let seen: Vec<_> = first
            .iter()
            .chain(&rest)
            .chain(&more)
            .filter(|e| e.event == "status")
            .map(|e| e.data["id"].clone())
            .collect();
        assert_eq!(seen, log_ids, "no gap, no repeat");
        let ids: BTreeSet<_> = first
            .iter()
            .chain(&rest)
            .chain(&more)
            .map(|e| e.id.clone())
            .collect();
        assert_eq!(ids.len(), 6, "every event id is distinct");

        // A deleted topology ends the stream with `deleted`.
        step("tearing_down", "torn_down").await;
        let _ = read_events(&mut resumed, &mut buffer, 1).await;
        assert_eq!(
            call(&c, Method::DELETE, &t(""), None, &[]).await.status,
            204
        );
        let end = read_events(&mut resumed, &mut buffer, 1).await;
        assert_eq!(end[0].event, "deleted", "{end:?}");
        call(&c, Method::GET, &t("/events"), None, &[])
            .await
            .problem(404, "not-found");
    });
}

#[test]
fn sigterm_during_writes_loses_none_that_was_answered() {
    let mut s = Server::start(&Backend::Sqlite, &[]);
    let db = s.db.clone().expect("sqlite");
    let rt = runtime();
    let (id, writers) = rt.block_on(async {
        let c = client();
        let id = create(&c, &s, &unique("term")).await;
        let mut writers = Vec::new();
        for w in 0..4 {
            let c = c.clone();
            let url = s.url(&format!("/api/v1/topologies/{id}/lans"));
            writers.push(tokio::spawn(async move {
                let mut answered = Vec::new();
                for n in 0..10_000 {
                    let body = json!({"name": format!("w{w}-{n}"), "subnet": "10.0.0.0/24"});
                    let sent = c
                        .post(&url)
                        .header(JSON.0, JSON.1)
                        .body(body.to_string())
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 201 => {
                            let a = answer(r).await;
                            answered.push(a.body["id"].as_u64().expect("id"));
                        }
                        Ok(r) => panic!("unexpected {}", r.status()),
                        Err(_) => break, // the server stopped accepting
                    }
                }
                answered
            }));
        }
        // An open event stream must not hold the shutdown open.
        let stream = c
            .get(s.url(&format!("/api/v1/topologies/{id}/events")))
            .send()
            .await
            .expect("stream");
        assert_eq!(stream.status(), 200);
        tokio::time::sleep(Duration::from_millis(400)).await;
        (id, (writers, stream))
    });
    let (writers, stream) = writers;
    let (code, lines) = s.terminate();
    assert_eq!(code, Some(0), "a clean stop: {lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("stopped"));
    let answered: Vec<u64> = rt.block_on(async {
        let mut all = Vec::new();
        for w in writers {
            all.extend(w.await.expect("writer"));
        }
        all
    });
    assert!(!answered.is_empty(), "writes were answered before the stop");
    drop(stream);
    use topostate::store::{SqliteStore, TopologyStore};
    let store = SqliteStore::open(&db).expect("open after stop");
    let detail = store
        .topology_detail(topostate::TopologyId::new(id))
        .expect("detail");
    let stored: BTreeSet<u64> = detail.lans.iter().map(|l| l.id.get()).collect();
    for lan in &answered {
        assert!(stored.contains(lan), "answered lan {lan} is stored");
    }
}

#[test]
fn openapi_document_is_served_and_lists_every_route() {
    let s = Server::start(&Backend::Sqlite, &[]);
    runtime().block_on(async {
        let c = client();
        let doc = call(&c, Method::GET, &s.url("/api/v1/openapi.json"), None, &[]).await;
        assert_eq!(doc.status, 200);
        assert!(
            doc.body["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3."))
        );
        let mut listed = BTreeSet::new();
        for (path, item) in doc.body["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("item").keys() {
                if ["get", "post", "patch", "put", "delete"].contains(&method.as_str()) {
                    listed.insert(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        let p = "/api/v1/topologies";
        let expected: BTreeSet<String> = [
            format!("POST {p}"),
            format!("GET {p}"),
            format!("GET {p}/{{id}}"),
            format!("DELETE {p}/{{id}}"),
            format!("POST {p}/{{id}}/deploy"),
            format!("POST {p}/{{id}}/teardown"),
            format!("POST {p}/{{id}}/transitions"),
            format!("POST {p}/{{id}}/edits"),
            format!("POST {p}/{{id}}/lans"),
            format!("PATCH {p}/{{id}}/lans/{{child}}"),
            format!("DELETE {p}/{{id}}/lans/{{child}}"),
            format!("POST {p}/{{id}}/deckies"),
            format!("PATCH {p}/{{id}}/deckies/{{child}}"),
            format!("DELETE {p}/{{id}}/deckies/{{child}}"),
            format!("POST {p}/{{id}}/edges"),
            format!("DELETE {p}/{{id}}/edges/{{child}}"),
            format!("POST {p}/{{id}}/mutations"),
            format!("GET {p}/{{id}}/mutations"),
            format!("GET {p}/{{id}}/status-events"),
            format!("GET {p}/{{id}}/events"),
        ]
        .into_iter()
        .collect();
        assert_eq!(listed, expected);
        let schemas = doc.body["components"]["schemas"]
            .as_object()
            .expect("schemas");
        for name in [
            "Problem",
            "TopologyDetail",
            "TopologyRecord",
            "EditReport",
            "ChildEdit",
            "TopologyStatus",
        ] {
            assert!(schemas.contains_key(name), "schema {name}");
        }
        // The reference shape of a canvas batch: a LAN or decky is a stored id or
        // `{"batch": i}`, in an edge's ends and in an edit's `id`.
        let row_ref = json!({"$ref": "#/components/schemas/RowRef"});
        assert_eq!(schemas["NewEdge"]["properties"]["decky"], row_ref);
        assert_eq!(schemas["NewEdge"]["properties"]["lan"], row_ref);
        let edit_id = &schemas["ChildEdit"]["properties"]["id"]["oneOf"];
        assert!(
            edit_id.as_array().is_some_and(|a| a.contains(&row_ref)),
            "{edit_id}"
        );
        let shapes = schemas["RowRef"]["oneOf"].as_array().expect("RowRef oneOf");
        assert!(shapes.iter().any(|v| v["type"] == "integer"), "{shapes:?}");
        assert!(
            shapes
                .iter()
                .any(|v| v["$ref"] == "#/components/schemas/BatchRef"),
            "{shapes:?}"
        );
        let batch_ref = &schemas["BatchRef"];
        assert_eq!(batch_ref["required"], json!(["batch"]), "{batch_ref}");
        assert_eq!(batch_ref["properties"]["batch"]["type"], "integer");
        assert_eq!(batch_ref["additionalProperties"], false);
        // Every documented route answers (no 404 `no-route` and no 405 for its method).
        let c2 = client();
        for route in &expected {
            let (method, path) = route.split_once(' ').expect("route");
            let path = path.replace("{id}", "1").replace("{child}", "1");
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let r = if path.ends_with("/events") {
                continue;
            } else {
                call(&c2, method, &s.url(&path), None, &[]).await
            };
            assert!(r.status != 405 && r.slug() != "no-route", "{route}: {r:?}");
        }
    });
}
