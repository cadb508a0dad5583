//! The runtime status API, checked against an independent, hand-written table:
//! every ordered pair, every message, every parse path and serde.

mod spec;

use std::collections::HashMap;

use spec::{EDGES, STATUSES};
use topostate::{
    Lifecycle, MutationOp, MutationState, ParseStatusError, TopologyNotEditable, TopologyStatus,
    TopologyStatusError, VersionConflict, assert_transition, legal_next,
};

const TOPOLOGY_ACCEPTED: &str =
    "(expected one of: pending, deploying, active, degraded, failed, tearing_down, torn_down)";
const MUTATION_STATE_ACCEPTED: &str = "(expected one of: pending, applying, applied, failed)";
const MUTATION_OP_ACCEPTED: &str = "(expected one of: add_lan, remove_lan, add_decky, attach_decky, detach_decky, remove_decky, update_decky, update_lan)";

fn legal(from: &str, to: &str) -> bool {
    EDGES.contains(&(from, to))
}

/// The enum value for a table string, written out by hand rather than parsed.
fn status(name: &str) -> TopologyStatus {
    match name {
        "pending" => TopologyStatus::Pending,
        "deploying" => TopologyStatus::Deploying,
        "active" => TopologyStatus::Active,
        "degraded" => TopologyStatus::Degraded,
        "failed" => TopologyStatus::Failed,
        "tearing_down" => TopologyStatus::TearingDown,
        "torn_down" => TopologyStatus::TornDown,
        other => panic!("not a status in the test table: {other}"),
    }
}

type TestResult = Result<(), Box<dyn std::error::Error>>;

// ---- the 49 ordered pairs ------------------------------------------------------------

#[test]
fn table_is_well_formed() {
    // The hand-written table itself: 13 distinct edges between known statuses.
    let mut seen = std::collections::HashSet::new();
    for (from, to) in EDGES {
        assert!(STATUSES.contains(&from) && STATUSES.contains(&to));
        assert!(seen.insert((from, to)), "duplicate edge {from} -> {to}");
    }
    assert_eq!(seen.len(), 13);
}

#[test]
fn all_49_pairs_via_can_transition_to() {
    let mut legal_count = 0;
    for from in STATUSES {
        for to in STATUSES {
            let expected = legal(from, to);
            let (a, b) = (status(from), status(to));
            assert_eq!(a.can_transition_to(b), expected, "{from} -> {to}");
            // The trait method (bitmask through `Lifecycle`) agrees with the const method.
            assert_eq!(
                <TopologyStatus as Lifecycle>::can_transition_to(a, b),
                expected,
                "{from} -> {to} via Lifecycle"
            );
            legal_count += usize::from(expected);
        }
    }
    assert_eq!(legal_count, 13);
}

#[test]
fn all_49_pairs_via_assert_transition() {
    let (mut ok, mut err) = (0, 0);
    for from in STATUSES {
        for to in STATUSES {
            let result = assert_transition(from, to);
            if legal(from, to) {
                assert_eq!(result, Ok(()), "{from} -> {to} should be legal");
                ok += 1;
            } else {
                let e = result.expect_err("illegal pair accepted");
                assert_eq!(
                    e,
                    TopologyStatusError::Illegal {
                        from: status(from),
                        to: status(to),
                    }
                );
                assert_eq!(
                    e.to_string(),
                    format!("illegal transition: '{from}' → '{to}'")
                );
                err += 1;
            }
        }
    }
    assert_eq!((ok, err), (13, 36));
}

#[test]
fn can_transition_to_is_usable_in_const() {
    const YES: bool = TopologyStatus::Pending.can_transition_to(TopologyStatus::TornDown);
    const NO: bool = TopologyStatus::TornDown.can_transition_to(TopologyStatus::Pending);
    const TERMINAL: bool = TopologyStatus::TornDown.is_terminal();
    const _: () = assert!(YES && !NO && TERMINAL, "checked at compile time");
    assert_eq!([YES, NO, TERMINAL], [true, false, true]);
}

// ---- legal_next, ALL, is_terminal -----------------------------------------------------

#[test]
fn legal_next_yields_targets_in_all_order() -> TestResult {
    for from in STATUSES {
        // Filtering the hand-written status list keeps declaration order.
        let expected: Vec<&str> = STATUSES.into_iter().filter(|&to| legal(from, to)).collect();

        let method = status(from).legal_next();
        assert_eq!(method.len(), expected.len(), "len of legal_next({from})");
        let method: Vec<&str> = method.map(TopologyStatus::as_str).collect();
        assert_eq!(method, expected, "TopologyStatus::legal_next for {from}");

        let function: Vec<&str> = legal_next(from)?.map(TopologyStatus::as_str).collect();
        assert_eq!(function, expected, "legal_next({from:?})");
    }
    // Spelled out for the two statuses whose table order differs from declaration order.
    let deploying: Vec<_> = legal_next("deploying")?.collect();
    assert_eq!(
        deploying,
        [
            TopologyStatus::Active,
            TopologyStatus::Degraded,
            TopologyStatus::Failed,
            TopologyStatus::TearingDown
        ]
    );
    let tearing_down: Vec<_> = TopologyStatus::TearingDown.legal_next().collect();
    assert_eq!(
        tearing_down,
        [TopologyStatus::Degraded, TopologyStatus::TornDown]
    );
    assert_eq!(legal_next("torn_down")?.next(), None);
    Ok(())
}

#[test]
fn legal_next_is_fused_and_exact() {
    let mut it = TopologyStatus::Pending.legal_next();
    assert_eq!(it.size_hint(), (2, Some(2)));
    assert_eq!(it.next(), Some(TopologyStatus::Deploying));
    assert_eq!(it.size_hint(), (1, Some(1)));
    assert_eq!(it.next(), Some(TopologyStatus::TornDown));
    assert_eq!(it.next(), None);
    assert_eq!(it.next(), None);
    assert_eq!(it.len(), 0);
}

#[test]
fn legal_next_of_unknown_status() {
    for bad in ["", "bogus", "Active", "torn-down"] {
        let err = legal_next(bad).expect_err("unknown status accepted");
        assert_eq!(
            err,
            TopologyStatusError::Unknown {
                status: bad.to_owned()
            }
        );
        assert_eq!(err.to_string(), format!("unknown status: '{bad}'"));
    }
}

#[test]
fn all_is_in_declaration_order() {
    assert_eq!(
        TopologyStatus::ALL,
        [
            TopologyStatus::Pending,
            TopologyStatus::Deploying,
            TopologyStatus::Active,
            TopologyStatus::Degraded,
            TopologyStatus::Failed,
            TopologyStatus::TearingDown,
            TopologyStatus::TornDown,
        ]
    );
    assert_eq!(TopologyStatus::NAMES, STATUSES);
    let names: Vec<&str> = TopologyStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, STATUSES);
    assert_eq!(<TopologyStatus as Lifecycle>::ALL, &TopologyStatus::ALL[..]);
    assert_eq!(<TopologyStatus as Lifecycle>::NAMES, &STATUSES[..]);
    for (i, s) in TopologyStatus::ALL.into_iter().enumerate() {
        assert_eq!(s.index(), i);
    }
    // Ord follows declaration order.
    let mut sorted = TopologyStatus::ALL;
    sorted.sort();
    assert_eq!(sorted, TopologyStatus::ALL);
}

#[test]
fn only_torn_down_is_terminal() {
    for name in STATUSES {
        let has_edges = EDGES.iter().any(|&(from, _)| from == name);
        assert_eq!(status(name).is_terminal(), name == "torn_down", "{name}");
        assert_eq!(status(name).is_terminal(), !has_edges, "{name}");
    }
}

// ---- assert_transition error order and messages ---------------------------------------

#[test]
fn unknown_current_wins_over_unknown_new() {
    let err = assert_transition("bogus", "nope").expect_err("both unknown");
    assert_eq!(
        err,
        TopologyStatusError::UnknownCurrent {
            status: "bogus".into()
        }
    );
    assert_eq!(err.to_string(), "unknown current status: 'bogus'");

    let err = assert_transition("bogus", "active").expect_err("current unknown");
    assert_eq!(err.to_string(), "unknown current status: 'bogus'");

    let err = assert_transition("x", "x").expect_err("same unknown twice");
    assert_eq!(err.to_string(), "unknown current status: 'x'");
}

#[test]
fn unknown_new_wins_over_illegal() {
    // torn_down has no legal target at all, so any error here must be about the new status.
    for from in STATUSES {
        let err = assert_transition(from, "x").expect_err("new unknown");
        assert_eq!(err, TopologyStatusError::UnknownNew { status: "x".into() });
        assert_eq!(err.to_string(), "unknown new status: 'x'");
    }
}

#[test]
fn seed_messages_exactly() {
    assert_eq!(
        TopologyStatusError::UnknownCurrent { status: "x".into() }.to_string(),
        "unknown current status: 'x'"
    );
    assert_eq!(
        TopologyStatusError::UnknownNew { status: "x".into() }.to_string(),
        "unknown new status: 'x'"
    );
    assert_eq!(
        TopologyStatusError::Unknown { status: "x".into() }.to_string(),
        "unknown status: 'x'"
    );
    assert_eq!(
        TopologyStatusError::Illegal {
            from: TopologyStatus::Failed,
            to: TopologyStatus::Deploying,
        }
        .to_string(),
        "illegal transition: 'failed' \u{2192} 'deploying'"
    );
    assert_eq!(
        VersionConflict {
            current: 2,
            expected: 1
        }
        .to_string(),
        "topology version conflict: expected 1, current is 2"
    );
    assert_eq!(
        TopologyNotEditable {
            status: TopologyStatus::Active,
            reason: None
        }
        .to_string(),
        "topology not editable (status='active')"
    );
    assert_eq!(
        TopologyNotEditable {
            status: TopologyStatus::Active,
            reason: Some("free-form edits are pending-only".into()),
        }
        .to_string(),
        "topology not editable (status='active'): free-form edits are pending-only"
    );
    assert_eq!(
        TopologyNotEditable {
            status: TopologyStatus::Degraded,
            reason: Some(String::new()),
        }
        .to_string(),
        "topology not editable (status='degraded')"
    );
}

#[test]
fn unknown_strings_are_escaped_in_seed_messages() {
    let err = assert_transition("it's\n", "active").expect_err("unknown current");
    assert_eq!(err.to_string(), r"unknown current status: 'it\'s\n'");
    // The variant still holds the raw input.
    assert_eq!(
        err,
        TopologyStatusError::UnknownCurrent {
            status: "it's\n".into()
        }
    );
    let err = assert_transition("active", "a\0b").expect_err("unknown new");
    assert_eq!(err.to_string(), r"unknown new status: 'a\0b'");
}

// ---- parsing ---------------------------------------------------------------------------

#[test]
fn all_seven_round_trip_through_every_conversion() -> TestResult {
    for name in STATUSES {
        let expected = status(name);
        assert_eq!(TopologyStatus::parse(name)?, expected);
        assert_eq!(name.parse::<TopologyStatus>()?, expected);
        assert_eq!(TopologyStatus::try_from(name)?, expected);
        assert_eq!(TopologyStatus::try_from(name.as_bytes())?, expected);
        assert_eq!(TopologyStatus::parse_bytes(name.as_bytes())?, expected);

        assert_eq!(expected.as_str(), name);
        assert_eq!(expected.to_string(), name);
        assert_eq!(format!("{expected}"), name);
        assert_eq!(AsRef::<str>::as_ref(&expected), name);
        assert_eq!(<TopologyStatus as Lifecycle>::as_str(expected), name);

        // And back again through the string the value produces.
        assert_eq!(expected.to_string().parse::<TopologyStatus>()?, expected);
    }
    Ok(())
}

fn assert_topology_parse_error(input: &str, err: &ParseStatusError) {
    assert_eq!(err.input(), input);
    assert_eq!(err.machine(), "topology");
    assert_eq!(err.accepted(), &STATUSES[..]);
    let msg = err.to_string();
    assert!(
        msg.starts_with("unknown topology status: '"),
        "message does not name the machine: {msg}"
    );
    assert!(
        msg.ends_with(TOPOLOGY_ACCEPTED),
        "message does not list accepted values: {msg}"
    );
    assert!(
        !msg.chars().any(char::is_control),
        "raw control character in message: {msg:?}"
    );
}

#[test]
fn bad_inputs_are_clear_parse_errors() {
    let cases: [(&str, &str); 9] = [
        ("", "''"),
        ("Pending", "'Pending'"),
        ("PENDING", "'PENDING'"),
        (" pending", "' pending'"),
        ("pending ", "'pending '"),
        ("pending\n", r"'pending\n'"),
        ("torn-down", "'torn-down'"),
        ("pénding", "'pénding'"),
        ("tornDown", "'tornDown'"),
    ];
    for (input, quoted) in cases {
        for err in [
            TopologyStatus::parse(input).expect_err(input),
            input.parse::<TopologyStatus>().expect_err(input),
            TopologyStatus::try_from(input).expect_err(input),
            TopologyStatus::try_from(input.as_bytes()).expect_err(input),
        ] {
            assert_topology_parse_error(input, &err);
            assert_eq!(
                err.to_string(),
                format!("unknown topology status: {quoted} {TOPOLOGY_ACCEPTED}")
            );
        }
    }
}

#[test]
fn invalid_utf8_is_a_parse_error_naming_the_lossy_input() {
    let bytes: &[u8] = b"pen\xffding";
    let err = TopologyStatus::try_from(bytes).expect_err("invalid UTF-8 accepted");
    assert_topology_parse_error("pen\u{fffd}ding", &err);
    assert_eq!(
        err.to_string(),
        format!("unknown topology status: 'pen\u{fffd}ding' {TOPOLOGY_ACCEPTED}")
    );
    let err = TopologyStatus::parse_bytes(b"\xc3").expect_err("truncated UTF-8 accepted");
    assert_eq!(err.input(), "\u{fffd}");
    // A valid status followed by a stray byte is still rejected.
    assert!(TopologyStatus::parse_bytes(b"active\x80").is_err());
    assert!(TopologyStatus::parse_bytes(b"").is_err());
}

#[test]
fn huge_input_gives_a_short_message() {
    let huge = "x".repeat(100_000);
    let err = TopologyStatus::parse(&huge).expect_err("huge input accepted");
    assert_eq!(err.input().len(), 100_000, "input() keeps the whole input");
    let msg = err.to_string();
    assert!(msg.len() < 300, "message is {} bytes", msg.len());
    assert!(msg.starts_with("unknown topology status: 'xxxx"), "{msg}");
    assert!(
        msg.contains("100000"),
        "message should give the length: {msg}"
    );
    assert!(msg.ends_with(TOPOLOGY_ACCEPTED), "{msg}");

    // The same through the original module's API and through serde.
    let msg = assert_transition(&huge, "active")
        .expect_err("huge current")
        .to_string();
    assert!(msg.len() < 300, "seed message is {} bytes", msg.len());
    let json = format!("\"{huge}\"");
    let msg = serde_json::from_str::<TopologyStatus>(&json)
        .expect_err("huge json string")
        .to_string();
    assert!(msg.len() < 400, "serde message is {} bytes", msg.len());

    // Multi-byte characters are cut at a character boundary, not a byte boundary.
    let wide = "é".repeat(100_000);
    let msg = TopologyStatus::parse(&wide)
        .expect_err("huge input accepted")
        .to_string();
    assert!(msg.len() < 300, "message is {} bytes", msg.len());
}

#[test]
fn quote_and_nul_are_escaped() {
    let input = "it's\0\"x\"\\";
    let err = TopologyStatus::parse(input).expect_err("quote accepted");
    assert_topology_parse_error(input, &err);
    let msg = err.to_string();
    assert_eq!(
        msg,
        format!(r#"unknown topology status: 'it\'s\0"x"\\' {TOPOLOGY_ACCEPTED}"#)
    );
    assert!(!msg.contains('\0'));
}

#[test]
fn invisible_characters_are_escaped() {
    for (input, shown) in [
        ("active\u{200b}", r"'active\u{200b}'"),
        ("\u{feff}active", r"'\u{feff}active'"),
        ("\u{202e}evitca", r"'\u{202e}evitca'"),
        ("\t", r"'\t'"),
        ("\r\n", r"'\r\n'"),
        ("\u{1b}[31m", r"'\u{1b}[31m'"),
    ] {
        let err = TopologyStatus::parse(input).expect_err(input);
        assert_eq!(err.input(), input);
        assert_eq!(
            err.to_string(),
            format!("unknown topology status: {shown} {TOPOLOGY_ACCEPTED}")
        );
    }
}

#[test]
fn odd_strings_never_panic_and_always_name_the_input() {
    let long = "a".repeat(65);
    let exact = "b".repeat(64);
    let odd: Vec<&str> = vec![
        "",
        " ",
        "  ",
        "\t",
        "\n",
        "\r",
        "\0",
        "\u{7f}",
        "'",
        "''",
        "\"",
        "\\",
        "\\'",
        "'pending'",
        "\"pending\"",
        "pending\0",
        "\0pending",
        "pending,active",
        "pending active",
        "pending_",
        "_pending",
        "pend",
        "pendingg",
        "PENDING",
        "Active",
        "aCTIVE",
        "torn down",
        "torn-down",
        "tornDown",
        "TornDown",
        "tearing-down",
        "TEARING_DOWN",
        "null",
        "None",
        "0",
        "-1",
        "7",
        "{}",
        "[]",
        "%s%n",
        "{status}",
        "é",
        "pénding",
        "ａｃｔｉｖｅ", // full-width
        "аctive",       // Cyrillic a
        "active\u{200b}",
        "\u{feff}",
        "\u{202e}",
        "\u{fffd}",
        "😀",
        "e\u{301}",
        "日本語",
        "applying",
        "add_lan",
        long.as_str(),
        exact.as_str(),
    ];
    assert!(odd.len() >= 50);
    for s in odd {
        let err = TopologyStatus::parse(s).expect_err(s);
        assert_topology_parse_error(s, &err);
        let msg = err.to_string();
        assert!(msg.len() < 1024, "{msg}");
        let plain = s
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == ' ' || c == '-');
        if plain && s.chars().count() <= 64 {
            assert!(msg.contains(&format!("'{s}'")), "input not named: {msg}");
        }

        let err = assert_transition(s, "active").expect_err(s);
        assert!(matches!(err, TopologyStatusError::UnknownCurrent { ref status } if status == s));
        let err = assert_transition("active", s).expect_err(s);
        assert!(matches!(err, TopologyStatusError::UnknownNew { ref status } if status == s));
        let err = legal_next(s).expect_err(s);
        assert!(matches!(err, TopologyStatusError::Unknown { ref status } if status == s));

        match MutationState::parse(s) {
            Ok(state) => assert!(MUTATION_STATES.contains(&s) && state.as_str() == s),
            Err(err) => {
                assert_eq!(err.input(), s);
                assert_eq!(err.machine(), "mutation");
                assert!(err.to_string().ends_with(MUTATION_STATE_ACCEPTED));
            }
        }
        match MutationOp::parse(s) {
            Ok(op) => assert!(OPS.contains(&s) && op.as_str() == s),
            Err(err) => {
                assert_eq!(err.input(), s);
                assert!(err.to_string().ends_with(MUTATION_OP_ACCEPTED));
            }
        }
    }
}

#[test]
fn truncation_starts_after_64_characters() {
    let exact = "b".repeat(64);
    let msg = TopologyStatus::parse(&exact)
        .expect_err("64 b's")
        .to_string();
    assert!(
        msg.contains(&format!("'{exact}'")),
        "64 characters shown whole: {msg}"
    );

    let long = "a".repeat(65);
    let msg = TopologyStatus::parse(&long)
        .expect_err("65 a's")
        .to_string();
    assert!(!msg.contains(&long), "65 characters are cut: {msg}");
    assert!(msg.contains("65 characters"), "{msg}");
}

#[test]
fn parse_error_is_comparable_and_cloneable() {
    let a = TopologyStatus::parse("nope").expect_err("nope");
    let b = a.clone();
    assert_eq!(a, b);
    assert_ne!(a, TopologyStatus::parse("nah").expect_err("nah"));
}

// ---- serde -------------------------------------------------------------------------------

#[test]
fn serde_round_trips_every_status_as_its_string() -> TestResult {
    for name in STATUSES {
        let s = status(name);
        let json = serde_json::to_string(&s)?;
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<TopologyStatus>(&json)?, s);
        assert_eq!(
            serde_json::to_value(s)?,
            serde_json::Value::String(name.into())
        );
        assert_eq!(serde_json::from_value::<TopologyStatus>(name.into())?, s);
    }
    let all: Vec<TopologyStatus> =
        serde_json::from_str(&serde_json::to_string(&TopologyStatus::ALL)?)?;
    assert_eq!(all, TopologyStatus::ALL);
    // An escaped JSON string is decoded before parsing.
    assert_eq!(
        serde_json::from_str::<TopologyStatus>(r#""pend\u0069ng""#)?,
        TopologyStatus::Pending
    );
    Ok(())
}

#[test]
fn serde_statuses_as_map_keys() -> TestResult {
    let mut counts = HashMap::new();
    counts.insert(TopologyStatus::TearingDown, 3);
    let json = serde_json::to_string(&counts)?;
    assert_eq!(json, r#"{"tearing_down":3}"#);
    let back: HashMap<TopologyStatus, u32> = serde_json::from_str(&json)?;
    assert_eq!(back, counts);
    assert!(serde_json::from_str::<HashMap<TopologyStatus, u32>>(r#"{"tearing-down":3}"#).is_err());
    Ok(())
}

#[test]
fn serde_rejects_unknown_strings_and_wrong_types() {
    let err = serde_json::from_str::<TopologyStatus>(r#""bogus""#).expect_err("bogus");
    let msg = err.to_string();
    assert!(
        msg.contains("unknown topology status: 'bogus'"),
        "serde error should carry the parse message: {msg}"
    );
    assert!(msg.contains(TOPOLOGY_ACCEPTED), "{msg}");

    let err = serde_json::from_str::<TopologyStatus>(r#""Active""#).expect_err("wrong case");
    assert!(err.to_string().contains("'Active'"), "{err}");

    for (json, mentions) in [
        ("5", "5"),
        ("-1", "-1"),
        ("1.5", "1.5"),
        ("true", "true"),
        ("null", "null"),
        (r#"{"status":"active"}"#, "map"),
        (r#"["active"]"#, "sequence"),
    ] {
        let err = serde_json::from_str::<TopologyStatus>(json).expect_err(json);
        let msg = err.to_string();
        assert!(msg.contains("invalid type"), "{json}: {msg}");
        assert!(msg.contains(mentions), "{json}: {msg}");
    }
    assert!(serde_json::from_value::<TopologyStatus>(serde_json::Value::Null).is_err());
}

// ---- MutationState ------------------------------------------------------------------------

const MUTATION_STATES: [&str; 4] = ["pending", "applying", "applied", "failed"];
const MUTATION_EDGES: [(&str, &str); 3] = [
    ("pending", "applying"),
    ("applying", "applied"),
    ("applying", "failed"),
];

#[test]
fn mutation_state_round_trips() -> TestResult {
    let expected = [
        MutationState::Pending,
        MutationState::Applying,
        MutationState::Applied,
        MutationState::Failed,
    ];
    assert_eq!(MutationState::ALL, expected);
    assert_eq!(MutationState::NAMES, MUTATION_STATES);
    for (name, state) in MUTATION_STATES.into_iter().zip(expected) {
        assert_eq!(MutationState::parse(name)?, state);
        assert_eq!(name.parse::<MutationState>()?, state);
        assert_eq!(MutationState::try_from(name)?, state);
        assert_eq!(MutationState::try_from(name.as_bytes())?, state);
        assert_eq!(state.as_str(), name);
        assert_eq!(state.to_string(), name);
        assert_eq!(AsRef::<str>::as_ref(&state), name);
        let json = serde_json::to_string(&state)?;
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<MutationState>(&json)?, state);
    }
    Ok(())
}

#[test]
fn mutation_state_edges() {
    for (i, from) in MutationState::ALL.into_iter().enumerate() {
        for (j, to) in MutationState::ALL.into_iter().enumerate() {
            let expected = MUTATION_EDGES.contains(&(MUTATION_STATES[i], MUTATION_STATES[j]));
            assert_eq!(from.can_transition_to(to), expected, "{from} -> {to}");
        }
        let terminal = !MUTATION_EDGES.iter().any(|&(f, _)| f == MUTATION_STATES[i]);
        assert_eq!(from.is_terminal(), terminal, "{from}");
    }
}

#[test]
fn mutation_state_parse_errors() {
    for input in [
        "",
        "x",
        "done",
        "Pending",
        " applied",
        "applied\n",
        "active",
        "pénding",
    ] {
        let err = MutationState::parse(input).expect_err(input);
        assert_eq!(err.input(), input);
        assert_eq!(err.machine(), "mutation");
        assert_eq!(err.accepted(), &MUTATION_STATES[..]);
        let msg = err.to_string();
        assert!(msg.starts_with("unknown mutation state: '"), "{msg}");
        assert!(msg.ends_with(MUTATION_STATE_ACCEPTED), "{msg}");
    }
    assert_eq!(
        MutationState::parse("x").expect_err("x").to_string(),
        "unknown mutation state: 'x' (expected one of: pending, applying, applied, failed)"
    );
    let err = MutationState::try_from(&b"\xfe"[..]).expect_err("invalid UTF-8");
    assert_eq!(err.input(), "\u{fffd}");
    let huge = "y".repeat(100_000);
    let msg = MutationState::parse(&huge).expect_err("huge").to_string();
    assert!(msg.len() < 300, "{} bytes", msg.len());
}

#[test]
fn mutation_state_serde_rejections() {
    let msg = serde_json::from_str::<MutationState>(r#""done""#)
        .expect_err("done")
        .to_string();
    assert!(msg.contains("unknown mutation state: 'done'"), "{msg}");
    for json in ["1", "null", "{}", "[]"] {
        assert!(
            serde_json::from_str::<MutationState>(json).is_err(),
            "{json}"
        );
    }
}

// ---- MutationOp ---------------------------------------------------------------------------

const OPS: [&str; 8] = [
    "add_lan",
    "remove_lan",
    "add_decky",
    "attach_decky",
    "detach_decky",
    "remove_decky",
    "update_decky",
    "update_lan",
];

#[test]
fn mutation_op_round_trips() -> TestResult {
    let expected = [
        MutationOp::AddLan,
        MutationOp::RemoveLan,
        MutationOp::AddDecky,
        MutationOp::AttachDecky,
        MutationOp::DetachDecky,
        MutationOp::RemoveDecky,
        MutationOp::UpdateDecky,
        MutationOp::UpdateLan,
    ];
    assert_eq!(MutationOp::ALL, expected);
    assert_eq!(MutationOp::NAMES, OPS);
    for (name, op) in OPS.into_iter().zip(expected) {
        assert_eq!(MutationOp::parse(name)?, op);
        assert_eq!(name.parse::<MutationOp>()?, op);
        assert_eq!(MutationOp::try_from(name)?, op);
        assert_eq!(op.as_str(), name);
        assert_eq!(op.to_string(), name);
        assert_eq!(AsRef::<str>::as_ref(&op), name);
        let json = serde_json::to_string(&op)?;
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<MutationOp>(&json)?, op);
    }
    Ok(())
}

#[test]
fn mutation_op_rejects_noop_and_friends() {
    assert_eq!(
        MutationOp::parse("noop").expect_err("noop").to_string(),
        format!("unknown mutation op: 'noop' {MUTATION_OP_ACCEPTED}")
    );
    for input in [
        "noop", "", "AddLan", "add-lan", "add_lan ", "ADD_LAN", "add_edge", "add_lán",
    ] {
        let err = input.parse::<MutationOp>().expect_err(input);
        assert_eq!(err.input(), input);
        assert_eq!(err.machine(), "mutation");
        assert_eq!(err.accepted(), &OPS[..]);
        let msg = err.to_string();
        assert!(msg.starts_with("unknown mutation op: '"), "{msg}");
        assert!(msg.ends_with(MUTATION_OP_ACCEPTED), "{msg}");
    }
    let msg = serde_json::from_str::<MutationOp>(r#""noop""#)
        .expect_err("noop")
        .to_string();
    assert!(msg.contains("unknown mutation op: 'noop'"), "{msg}");
    for json in ["3", "null", r#"{"op":"add_lan"}"#] {
        assert!(serde_json::from_str::<MutationOp>(json).is_err(), "{json}");
    }
}
