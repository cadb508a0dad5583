//! Bad input, everywhere input enters: arbitrary strings and bytes through every parse
//! function, the raw-string transition checks and the name policy, serde payloads with unknown values,
//! wrong types, missing fields and oversized strings, and (with `sqlite`) a stored row
//! whose status disagrees with its event log.
//!
//! Nothing may panic; every refusal names the input (`err.input()`, or the escaped input
//! in the message, cut short for long inputs) and keeps its message short.
//!
//! `TOPOSTATE_PROPTEST_CASES` sets the number of inputs per property (default 2,000).
//! Inputs of 1 MiB are tried by `serde_payloads` (and by the limits tests).

mod pages;

use std::borrow::Cow;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use topostate::store::DeckyState;
use topostate::{
    MutationOp, MutationState, ParseStatusError, TopologyStatus, TopologyStatusError,
    assert_transition, legal_next,
};

/// The longest message any refusal of one bad value may have.
const MAX_MESSAGE: usize = 300;

static TRIED: AtomicU64 = AtomicU64::new(0);

fn cases() -> u32 {
    std::env::var("TOPOSTATE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// Runs a property on `cases()` inputs, printing how many were tried.
fn check<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: Debug,
{
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let tried = AtomicU64::new(0);
    let result = runner.run(&strategy, |v| {
        tried.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    let n = tried.load(Ordering::Relaxed);
    TRIED.fetch_add(n, Ordering::Relaxed);
    println!("bad_input[{name}]: {n} inputs tried");
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// Strings near the accepted ones (case, whitespace, prefixes, suffixes, separators,
/// look-alikes, NULs, very long) and entirely arbitrary ones.
fn hostile_string(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    let name = prop::sample::select(names.to_vec());
    prop_oneof![
        3 => any::<String>(),
        2 => "\\PC{0,80}",
        1 => name.clone().prop_map(String::from),
        1 => name.clone().prop_map(str::to_uppercase),
        1 => (name.clone(), "[ \t\n\r\u{0}\u{feff}\u{200b}'\"\\\\-]{1,3}")
            .prop_map(|(n, junk)| format!("{junk}{n}")),
        1 => (name.clone(), "[ \t\n\r\u{0}\u{feff}\u{200b}'\"\\\\-]{1,3}")
            .prop_map(|(n, junk)| format!("{n}{junk}")),
        1 => name.clone().prop_map(|n| n.replace('_', "-")),
        1 => (name.clone(), 0usize..20).prop_map(|(n, cut)| n[..cut.min(n.len())].to_string()),
        1 => (name, 1usize..300).prop_map(|(n, k)| n.repeat(k)),
        1 => (any::<char>(), 0usize..2_000).prop_map(|(c, k)| c.to_string().repeat(k)),
    ]
}

/// What `Quoted` shows of an input: the escaped input if it fits, else a cut marker.
fn assert_names_input(message: &str, input: &str) -> Result<(), TestCaseError> {
    let escaped: String = input
        .chars()
        .map(|c| match c {
            '\'' => "\\'".to_string(),
            '"' => "\"".to_string(),
            c => c.escape_debug().to_string(),
        })
        .collect();
    if escaped.len() <= 64 {
        prop_assert!(
            message.contains(&format!("'{escaped}'")),
            "{message:?} does not quote {escaped:?}"
        );
    } else {
        // The shown part is a prefix of the escaped input, then the length in characters.
        let shown = message
            .split_once('\'')
            .and_then(|(_, rest)| rest.split_once("'… ("))
            .map(|(shown, _)| shown);
        prop_assert!(
            shown.is_some_and(|s| escaped.starts_with(s) && !s.is_empty()),
            "{message:?} does not show a prefix of {escaped:?}"
        );
        prop_assert!(
            message.contains(&format!("({} characters)", input.chars().count())),
            "{message:?}"
        );
    }
    prop_assert!(
        message.len() < MAX_MESSAGE,
        "{} bytes: {message:?}",
        message.len()
    );
    Ok(())
}

/// One parseable type: all its entry points agree, accept exactly its names, and refuse
/// everything else with an error naming the input.
macro_rules! parse_properties {
    ($T:ty, $machine:literal, $test_str:ident, $test_bytes:ident, $test_serde:ident) => {
        #[test]
        fn $test_str() {
            check(stringify!($test_str), hostile_string(&<$T>::NAMES), |s: String| {
                let parsed = <$T>::parse(&s);
                prop_assert_eq!(&s.parse::<$T>(), &parsed);
                prop_assert_eq!(&<$T>::try_from(s.as_str()), &parsed);
                prop_assert_eq!(&<$T>::try_from(s.as_bytes()), &parsed);
                                match parsed {
                    Ok(v) => prop_assert_eq!(v.as_str(), s.as_str()),
                    Err(e) => {
                        prop_assert!(!<$T>::NAMES.contains(&s.as_str()));
                        prop_assert_eq!(e.input(), s.as_str());
                        prop_assert_eq!(e.machine(), $machine);
                        prop_assert_eq!(e.accepted(), &<$T>::NAMES[..]);
                        let message = e.to_string();
                        prop_assert!(message.starts_with(concat!("unknown ", $machine, " ")));
                        assert_names_input(&message, &s)?;
                    }
                }
                Ok(())
            });
        }

        #[test]
        fn $test_bytes() {
            let bytes = prop_oneof![
                4 => prop::collection::vec(any::<u8>(), 0..64),
                1 => prop::collection::vec(any::<u8>(), 0..2_000),
                1 => prop::sample::select(<$T>::NAMES.to_vec())
                    .prop_map(|n| n.as_bytes().to_vec()),
                1 => (prop::sample::select(<$T>::NAMES.to_vec()), any::<u8>(), 0usize..12)
                    .prop_map(|(n, b, at)| {
                        let mut v = n.as_bytes().to_vec();
                        v.insert(at.min(v.len()), b);
                        v
                    }),
            ];
            check(stringify!($test_bytes), bytes, |b: Vec<u8>| {
                let parsed = <$T>::try_from(b.as_slice());
                match (&parsed, std::str::from_utf8(&b)) {
                    (Ok(v), text) => prop_assert_eq!(Ok(v.as_str()), text),
                    (Err(e), text) => {
                        let lossy = String::from_utf8_lossy(&b);
                        prop_assert_eq!(e.input(), &*lossy);
                        if let Ok(text) = text {
                            prop_assert!(!<$T>::NAMES.contains(&text));
                        }
                        assert_names_input(&e.to_string(), &lossy)?;
                    }
                }
                Ok(())
            });
        }

        #[test]
        fn $test_serde() {
            check(stringify!($test_serde), hostile_string(&<$T>::NAMES), |s: String| {
                let json = serde_json::to_string(&s).unwrap();
                match serde_json::from_str::<$T>(&json) {
                    Ok(v) => prop_assert_eq!(v.as_str(), s.as_str()),
                    Err(e) => {
                        prop_assert!(!<$T>::NAMES.contains(&s.as_str()));
                        let message = e.to_string();
                        prop_assert!(
                            message.contains(concat!("unknown ", $machine, " ")),
                            "{message:?}"
                        );
                        // serde_json adds " at line 1 column N".
                        prop_assert!(message.len() < MAX_MESSAGE + 40, "{message:?}");
                    }
                }
                Ok(())
            });
        }
    };
}

parse_properties!(
    TopologyStatus,
    "topology",
    topology_status_from_any_string,
    topology_status_from_any_bytes,
    topology_status_from_any_json_string
);
parse_properties!(
    MutationState,
    "mutation",
    mutation_state_from_any_string,
    mutation_state_from_any_bytes,
    mutation_state_from_any_json_string
);
parse_properties!(
    MutationOp,
    "mutation",
    mutation_op_from_any_string,
    mutation_op_from_any_bytes,
    mutation_op_from_any_json_string
);
parse_properties!(
    DeckyState,
    "decky",
    decky_state_from_any_string,
    decky_state_from_any_bytes,
    decky_state_from_any_json_string
);

#[test]
fn assert_transition_and_legal_next_on_any_strings() {
    let status = || hostile_string(&TopologyStatus::NAMES);
    check(
        "assert_transition",
        (status(), status()),
        |(a, b): (String, String)| {
            let result = assert_transition(&a, &b);
            match (TopologyStatus::parse(&a), TopologyStatus::parse(&b)) {
                (Err(_), _) => {
                    prop_assert_eq!(
                        &result,
                        &Err(TopologyStatusError::UnknownCurrent { status: a.clone() })
                    );
                    assert_names_input(&result.unwrap_err().to_string(), &a)?;
                }
                (Ok(_), Err(_)) => {
                    prop_assert_eq!(
                        &result,
                        &Err(TopologyStatusError::UnknownNew { status: b.clone() })
                    );
                    assert_names_input(&result.unwrap_err().to_string(), &b)?;
                }
                (Ok(from), Ok(to)) if from.can_transition_to(to) => {
                    prop_assert_eq!(result, Ok(()));
                }
                (Ok(from), Ok(to)) => {
                    prop_assert_eq!(&result, &Err(TopologyStatusError::Illegal { from, to }));
                    prop_assert!(result.unwrap_err().to_string().len() < MAX_MESSAGE);
                }
            }
            Ok(())
        },
    );
    check("legal_next", status(), |s: String| {
        match (legal_next(&s), TopologyStatus::parse(&s)) {
            (Ok(next), Ok(status)) => {
                prop_assert_eq!(
                    next.collect::<Vec<_>>(),
                    status.legal_next().collect::<Vec<_>>()
                );
            }
            (Err(e), Err(_)) => {
                prop_assert_eq!(&e, &TopologyStatusError::Unknown { status: s.clone() });
                assert_names_input(&e.to_string(), &s)?;
            }
            (next, status) => prop_assert!(
                false,
                "{:?} vs {status:?}",
                next.map(std::iter::Iterator::count)
            ),
        }
        Ok(())
    });
}

#[test]
fn lifecycle_parse_bytes_agrees_with_try_from() {
    check(
        "parse_bytes",
        prop::collection::vec(any::<u8>(), 0..32),
        |b: Vec<u8>| {
            prop_assert_eq!(
                TopologyStatus::parse_bytes(&b),
                TopologyStatus::try_from(b.as_slice())
            );
            prop_assert_eq!(
                MutationState::parse_bytes(&b),
                MutationState::try_from(b.as_slice())
            );
            Ok(())
        },
    );
}

// ---- serde payloads -----------------------------------------------------------------------

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Payload {
    status: TopologyStatus,
    state: MutationState,
    op: MutationOp,
    decky: DeckyState,
}

const GOOD: &str = r#"{"status":"active","state":"applying","op":"add_lan","decky":"running"}"#;

fn with(field: &str, value: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    v[field] = serde_json::from_str(value).unwrap();
    v.to_string()
}

fn without(field: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    v.as_object_mut().unwrap().remove(field);
    v.to_string()
}

fn refused(json: &str) -> String {
    let e = serde_json::from_str::<Payload>(json).expect_err(json);
    let message = e.to_string();
    assert!(message.len() < MAX_MESSAGE + 40, "{message}");
    message
}

#[test]
fn serde_payloads() {
    let ok: Payload = serde_json::from_str(GOOD).unwrap();
    assert_eq!(ok.status, TopologyStatus::Active);
    let mut tried = 1;
    for (field, machine) in [
        ("status", "unknown topology status"),
        ("state", "unknown mutation state"),
        ("op", "unknown mutation op"),
        ("decky", "unknown decky state"),
    ] {
        // Unknown values, named.
        for bad in [r#""on_fire""#, r#""Active""#, r#""""#, r#"" active""#] {
            let message = refused(&with(field, bad));
            assert!(message.contains(machine), "{message}");
            assert!(
                message.contains(&format!("'{}'", bad.trim_matches('"'))),
                "{message}"
            );
            tried += 1;
        }
        // Wrong types.
        for bad in [
            "3",
            "-1",
            "1.5",
            "null",
            "true",
            "[]",
            r#"["active"]"#,
            "{}",
        ] {
            let message = refused(&with(field, bad));
            assert!(message.contains("invalid type"), "{field}={bad}: {message}");
            tried += 1;
        }
        // Missing.
        let message = refused(&without(field));
        assert!(
            message.contains(&format!("missing field `{field}`")),
            "{message}"
        );
        tried += 1;
        // Oversized: 1 MiB of text, shown cut short.
        let huge = serde_json::to_string(&"x".repeat(1 << 20)).unwrap();
        let message = refused(&with(field, &huge));
        assert!(message.contains(machine), "{message}");
        assert!(message.contains("(1048576 characters)"), "{message}");
        tried += 1;
        // Escapes decode before the check: a JSON-escaped name is accepted, an escaped
        // control character is named escaped.
        let message = refused(&with(field, r#""a\u0000b""#));
        assert!(message.contains(r"'a\0b'"), "{message}");
        tried += 1;
    }
    // Not JSON at all, truncated, and a duplicate field.
    for bad in [
        "",
        "{",
        r#"{"status":"active""#,
        "nul",
        r#"{"status":"active","status":"active","state":"applying","op":"add_lan","decky":"running"}"#,
    ] {
        refused(bad);
        tried += 1;
    }
    TRIED.fetch_add(tried, Ordering::Relaxed);
    println!("bad_input[serde_payloads]: {tried} payloads tried");
}

// ---- names -------------------------------------------------------------------------------

/// Characters a name must not hold: the bidirectional controls, zero-width and other
/// invisible characters, and whitespace that passes for a space.
const HIDDEN: &[char] = &[
    '\u{061c}',
    '\u{200e}',
    '\u{200f}',
    '\u{202a}',
    '\u{202b}',
    '\u{202c}',
    '\u{202d}',
    '\u{202e}',
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}',
    '\u{ad}',
    '\u{34f}',
    '\u{115f}',
    '\u{180e}',
    '\u{200b}',
    '\u{200c}',
    '\u{200d}',
    '\u{2060}',
    '\u{3164}',
    '\u{fe0f}',
    '\u{feff}',
    '\u{e0041}',
    '\u{a0}',
    '\u{2028}',
    '\u{3000}',
];

/// Names near the accepted ones: plain, accented in NFC and NFD, with hidden characters
/// inserted, made only of hidden characters; and arbitrary strings.
fn hostile_name() -> impl Strategy<Value = String> {
    let base = prop::sample::select(vec![
        "dmz",
        "lab 1",
        "caf\u{e9}",
        "cafe\u{301}",
        "\u{5f}\u{5f}",
        "Z\u{f6}e",
        "Zo\u{308}e",
        "\u{1100}\u{1161}\u{11a8}",
        "\u{ac01}",
        "\u{3b1}\u{301}",
        "\u{1e9b}\u{323}",
    ]);
    let hidden = prop::sample::select(HIDDEN.to_vec());
    prop_oneof![
        3 => any::<String>(),
        2 => "\\PC{0,40}",
        2 => base.clone().prop_map(String::from),
        3 => (base, hidden.clone(), any::<prop::sample::Index>()).prop_map(|(b, c, at)| {
            let mut name: Vec<char> = b.chars().collect();
            name.insert(at.index(name.len() + 1), c);
            name.into_iter().collect()
        }),
        1 => prop::collection::vec(prop_oneof![hidden, Just(' ')], 1..6)
            .prop_map(|cs| cs.into_iter().collect()),
    ]
}

/// Whether a character shows, by the Unicode tables directly: not a control or format
/// character, not default-ignorable (UTS #39), not whitespace other than the space.
fn shows(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    use unicode_security::GeneralSecurityProfile;
    use unicode_security::general_security_profile::IdentifierType;

    !matches!(
        c.general_category(),
        GeneralCategory::Control | GeneralCategory::Format
    ) && c.identifier_type() != Some(IdentifierType::Default_Ignorable)
        && (c == ' ' || !c.is_whitespace())
}

fn unassigned(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

    c.general_category() == GeneralCategory::Unassigned
}

/// The character a refusal names as `U+XXXX`, if it names one.
fn named_char(problem: &str) -> Option<char> {
    let code = problem.split("U+").nth(1)?;
    let hex: String = code.chars().take_while(char::is_ascii_hexdigit).collect();
    char::from_u32(u32::from_str_radix(&hex, 16).ok()?)
}

/// Any string: accepted in its NFC form, which shows all it holds and is the same name
/// whatever normal form it was typed in; or refused, naming the field and a true reason
/// (blank, too long, or a character of its NFC form that does not show).
#[test]
fn names_any_string() {
    use topostate::store::{MAX_NAME_LEN, StoreError, canonical_name, check_name};
    use unicode_normalization::UnicodeNormalization;

    check("names", hostile_name(), |raw| {
        let nfc: String = raw.nfc().collect();
        let result = canonical_name("lan name", &raw);
        prop_assert_eq!(check_name("lan name", &raw).is_ok(), result.is_ok());
        match result {
            Ok(stored) => {
                prop_assert_eq!(&*stored, nfc.as_str());
                prop_assert!(
                    stored.chars().all(shows),
                    "{stored:?} holds a hidden character"
                );
                prop_assert!(!stored.trim().is_empty() && stored.len() <= MAX_NAME_LEN);
                // Every spelling is the same name, and the stored form is final.
                let nfd: String = raw.nfd().collect();
                let from_nfd = canonical_name("lan name", &nfd).map(String::from).ok();
                prop_assert_eq!(from_nfd, Some(stored.to_string()));
                let again = canonical_name("lan name", &stored);
                prop_assert!(matches!(again, Ok(Cow::Borrowed(s)) if s == stored));
            }
            Err(StoreError::Invalid { field, problem }) => {
                prop_assert_eq!(field, "lan name");
                prop_assert!(problem.len() < MAX_MESSAGE, "{problem}");
                let why_true = match named_char(&problem) {
                    // Unassigned: the ranges Unicode reserves for future ignorables.
                    Some(c) => nfc.contains(c) && (!shows(c) || unassigned(c)),
                    None => nfc.trim().is_empty() || nfc.len() > MAX_NAME_LEN,
                };
                prop_assert!(why_true, "{raw:?} refused: {problem}");
            }
            Err(other) => prop_assert!(false, "{raw:?}: {other:?}"),
        }
        Ok(())
    });
}

/// Inserting a hidden character anywhere in an accepted name gets it refused, naming that
/// character.
#[test]
fn a_hidden_character_anywhere_is_named() {
    use topostate::store::check_name;

    let strategy = (
        "[a-z\u{e0}-\u{ff}\u{3b1}-\u{3c9} ]{1,12}",
        prop::sample::select(HIDDEN.to_vec()),
        any::<prop::sample::Index>(),
    );
    check("hidden characters", strategy, |(name, c, at)| {
        if name.trim().is_empty() {
            return Ok(());
        }
        let mut chars: Vec<char> = name.chars().collect();
        chars.insert(at.index(chars.len() + 1), c);
        let spoofed: String = chars.into_iter().collect();
        let e = check_name("decky name", &spoofed);
        let code = format!("U+{:04X}", u32::from(c));
        prop_assert!(
            matches!(&e, Err(topostate::store::StoreError::Invalid { field: "decky name", problem }) if problem.contains(&code)),
            "{spoofed:?}: {e:?}"
        );
        Ok(())
    });
}

#[test]
fn huge_inputs_are_named_and_cut_short() {
    for input in [
        "x".repeat(1 << 20),
        "é".repeat(1 << 19),
        "\u{0}".repeat(1 << 18),
        "'".repeat(1 << 18),
    ] {
        let chars = input.chars().count();
        let messages = [
            TopologyStatus::parse(&input).unwrap_err().to_string(),
            MutationState::parse(&input).unwrap_err().to_string(),
            MutationOp::parse(&input).unwrap_err().to_string(),
            DeckyState::parse(&input).unwrap_err().to_string(),
            TopologyStatus::parse_bytes(input.as_bytes())
                .unwrap_err()
                .to_string(),
            assert_transition(&input, "active").unwrap_err().to_string(),
            assert_transition("active", &input).unwrap_err().to_string(),
            legal_next(&input).map(|_| ()).unwrap_err().to_string(),
        ];
        for m in messages {
            assert!(m.len() < MAX_MESSAGE, "{} bytes", m.len());
            assert!(m.contains(&format!("({chars} characters)")), "{m}");
        }
    }
    // Invalid UTF-8 of any length is decoded lossily, named and cut short too.
    let bytes = vec![0xff; 1 << 20];
    let e = TopologyStatus::parse_bytes(&bytes).unwrap_err();
    assert_eq!(e.input().chars().count(), 1 << 20);
    assert!(e.to_string().len() < MAX_MESSAGE);
}

#[test]
fn parse_errors_are_values() {
    // The errors are plain values: cloned, compared, sent to another thread.
    fn assert_send_sync<T: Send + Sync + Clone + PartialEq + std::error::Error>() {}
    assert_send_sync::<ParseStatusError>();
    assert_send_sync::<TopologyStatusError>();
}

// ---- SQLite: a row whose status disagrees with its event log ----------------------------

#[cfg(feature = "sqlite")]
mod sqlite {
    use crate::pages::ListAll;
    use rusqlite::Connection;
    use topostate::TopologyStatus;
    use topostate::store::{NewLan, Precondition, SqliteStore, TopologyStore};

    fn raw(path: &std::path::Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        conn
    }

    /// The event log says `active`, the row says `pending` (a hand edit, a restore from two
    /// backups): the store reads what is stored (`topostate audit` is what reports the
    /// disagreement), never panics, keeps enforcing the table from the stored status, and
    /// every other row is intact.
    #[test]
    fn status_disagreeing_with_its_last_event_is_read_as_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path).unwrap();
        let lab = store.create_topology("lab").unwrap();
        let other = store.create_topology("other").unwrap();
        store
            .add_lan(other.id, NewLan::new("keep", "10.0.0.0/24"), Some(1))
            .unwrap();
        for to in [TopologyStatus::Deploying, TopologyStatus::Active] {
            store
                .transition_status(lab.id, to, None, Precondition::none())
                .unwrap();
            store
                .transition_status(other.id, to, None, Precondition::none())
                .unwrap();
        }
        let other_before = (
            store.topology_detail(other.id).unwrap(),
            store.all_events(other.id).unwrap(),
        );
        let changed = raw(&path)
            .execute(
                "UPDATE topologies SET status = 'pending' WHERE id = ?1",
                [i64::try_from(lab.id.get()).unwrap()],
            )
            .unwrap();
        assert_eq!(changed, 1);

        // Read as stored; the log is read as stored too.
        let row = store.get_topology(lab.id).unwrap();
        assert_eq!(row.status, TopologyStatus::Pending);
        let events = store.all_events(lab.id).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].to, TopologyStatus::Active);
        assert_eq!(
            store.all_topologies(Some(TopologyStatus::Pending)).unwrap()[0].id,
            lab.id
        );
        // The table is enforced from the stored status: pending → active is illegal,
        // pending → deploying is legal and appends an event.
        assert!(matches!(
            store.transition_status(lab.id, TopologyStatus::Active, None, Precondition::none()),
            Err(topostate::store::StoreError::IllegalTransition { .. })
        ));
        let t = store
            .transition_status(
                lab.id,
                TopologyStatus::Deploying,
                None,
                Precondition::status(TopologyStatus::Pending),
            )
            .unwrap();
        assert_eq!(t.event.from, TopologyStatus::Pending);
        assert_eq!(store.all_events(lab.id).unwrap().len(), 3);
        // Nothing else moved.
        assert_eq!(
            (
                store.topology_detail(other.id).unwrap(),
                store.all_events(other.id).unwrap()
            ),
            other_before
        );

        // A status with no event at all (the row says active, the log is empty).
        let third = store.create_topology("third").unwrap();
        raw(&path)
            .execute(
                "UPDATE topologies SET status = 'active' WHERE id = ?1",
                [i64::try_from(third.id.get()).unwrap()],
            )
            .unwrap();
        assert_eq!(
            store.get_topology(third.id).unwrap().status,
            TopologyStatus::Active
        );
        assert!(store.all_events(third.id).unwrap().is_empty());
        assert_eq!(store.all_topologies(None).unwrap().len(), 3);
        // A broken chain: an event whose `from` is not the previous event's `to`.
        raw(&path)
            .execute(
                "UPDATE status_events SET from_status = 'failed' WHERE id = ?1",
                [i64::try_from(t.event.id.get()).unwrap()],
            )
            .unwrap();
        let events = store.all_events(lab.id).unwrap();
        assert_eq!(events[0].from, TopologyStatus::Failed);
        assert_eq!(store.all_events(other.id).unwrap(), other_before.1);
    }
}
