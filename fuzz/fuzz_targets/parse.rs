//! Every parse function, the raw-string transition checks and the name policy on arbitrary
//! bytes: never a panic, a refusal names its input (or the field) and stays short, an
//! acceptance round-trips.
//!
//! `cargo fuzz run parse` (see RELIABILITY.md).
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use topostate::store::{DeckyState, MAX_NAME_LEN, StoreError, canonical_name, check_name};
use topostate::{
    MutationOp, MutationState, TopologyStatus, TopologyStatusError, assert_transition, legal_next,
};

/// The longest message a refusal of one value may have.
const MAX_MESSAGE: usize = 300;

macro_rules! check_parse {
    ($T:ty, $bytes:expr) => {{
        let bytes: &[u8] = $bytes;
        let parsed = <$T>::try_from(bytes);
        match (&parsed, core::str::from_utf8(bytes)) {
            (Ok(v), Ok(s)) => {
                assert_eq!(v.as_str(), s);
                assert_eq!(<$T>::parse(s).as_ref(), Ok(v));
            }
            (Ok(v), Err(_)) => panic!("accepted invalid UTF-8 as {v:?}"),
            (Err(e), text) => {
                assert_eq!(e.input(), String::from_utf8_lossy(bytes));
                assert!(e.to_string().len() < MAX_MESSAGE);
                if let Ok(s) = text {
                    assert!(!<$T>::NAMES.contains(&s));
                    assert_eq!(<$T>::parse(s).as_ref().err(), Some(e));
                    assert_eq!(s.parse::<$T>().as_ref().err(), Some(e));
                }
            }
        }
        parsed.ok()
    }};
}

fuzz_target!(|data: &[u8]| {
    let status = check_parse!(TopologyStatus, data);
    check_parse!(MutationState, data);
    check_parse!(MutationOp, data);
    check_parse!(DeckyState, data);
    assert_eq!(TopologyStatus::parse_bytes(data).ok(), status);
    assert_eq!(
        MutationState::parse_bytes(data).ok(),
        MutationState::try_from(data).ok()
    );

    // The transition checks on the input split in two at its first 0xff byte (or whole).
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\u{fffd}').unwrap_or((&text, "active"));
    let result = assert_transition(a, b);
    match (TopologyStatus::parse(a), TopologyStatus::parse(b)) {
        (Err(_), _) => assert!(
            matches!(&result, Err(TopologyStatusError::UnknownCurrent { status }) if status == a)
        ),
        (Ok(_), Err(_)) => assert!(
            matches!(&result, Err(TopologyStatusError::UnknownNew { status }) if status == b)
        ),
        (Ok(from), Ok(to)) => assert_eq!(result.is_ok(), from.can_transition_to(to)),
    }
    if let Err(e) = result {
        assert!(e.to_string().len() < MAX_MESSAGE);
    }
    match legal_next(a) {
        Ok(next) => assert!(next.count() <= TopologyStatus::ALL.len()),
        Err(e) => assert!(e.to_string().len() < MAX_MESSAGE),
    }

    // The name policy: an accepted name's stored form is final, not blank, short enough and
    // free of the characters that hide; a refusal names the field.
    let canonical = canonical_name("lan name", &text);
    assert_eq!(check_name("lan name", &text).is_ok(), canonical.is_ok());
    match canonical {
        Ok(stored) => {
            assert!(!stored.trim().is_empty() && stored.len() <= MAX_NAME_LEN);
            assert!(
                stored
                    .chars()
                    .all(|c| c == ' ' || !(c.is_control() || c.is_whitespace()))
            );
            assert!(!stored.contains(['\u{200b}', '\u{202e}', '\u{2066}', '\u{feff}']));
            let again = canonical_name("lan name", &stored);
            assert!(matches!(again, Ok(Cow::Borrowed(s)) if s == stored));
        }
        Err(StoreError::Invalid { field, problem }) => {
            assert_eq!(field, "lan name");
            assert!(problem.len() < MAX_MESSAGE);
        }
        Err(other) => panic!("not a refusal of the name: {other:?}"),
    }

    // Serde: the input as a JSON string, and the raw input as a JSON document.
    let json = serde_json_string(&text);
    let _ = serde_json::from_str::<TopologyStatus>(&json);
    let _ = serde_json::from_slice::<MutationOp>(data);
});

fn serde_json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}
