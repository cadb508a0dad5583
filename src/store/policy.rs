//! Which statuses allow which writes, and the rules and normal forms of stored text and
//! numbers; written once here and used by every backend and by the typed layer.
//!
//! The name policy is documented on [`check_name`], the coordinate rule on [`check_coord`].

use std::borrow::Cow;
use std::string::String;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::state::{Active, Degraded, State};
use crate::{TopologyNotEditable, TopologyStatus, VersionConflict, VersionError, check_and_bump};

use super::model::Referable;
use super::{
    ChildEdit, DeckyPatch, LanPatch, NewDecky, NewEdge, NewLan, Precondition, RefProblem, RowRef,
    StoreError,
};

/// Statuses that accept free-form child edits.
pub const EDITABLE: &[TopologyStatus] = &[TopologyStatus::Pending];

/// Statuses whose mutation queue is open (enqueue, claim, live edits).
pub const LIVE: &[TopologyStatus] = &[TopologyStatus::Active, TopologyStatus::Degraded];

/// Statuses from which a topology may be deleted.
pub const DELETABLE: &[TopologyStatus] = &[
    TopologyStatus::Pending,
    TopologyStatus::TornDown,
    TopologyStatus::Failed,
];

/// The longest name (topology, LAN, decky), in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// The longest free text (reasons, payloads, configs, subnets), in bytes.
pub const MAX_TEXT_LEN: usize = 1 << 20;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Active {}
    impl Sealed for super::Degraded {}
}

/// A typed state whose mutation queue is open: [`Active`] and [`Degraded`] (the states of
/// [`LIVE`]).
///
/// This trait is sealed: it can not be implemented by outside types.
#[diagnostic::on_unimplemented(
    message = "the mutation queue of a `{Self}` topology is closed",
    note = "mutations are queued only for `Active` and `Degraded` topologies; edit a `Pending` one directly"
)]
pub trait QueueOpen: State + sealed::Sealed {}

impl QueueOpen for Active {}
impl QueueOpen for Degraded {}

/// Refuses free-form edits outside [`EDITABLE`].
pub(crate) fn free_form_gate(status: TopologyStatus) -> Result<(), StoreError> {
    gate(
        status,
        EDITABLE,
        "free-form edits are pending-only; use the mutation queue after deploy",
    )
}

/// Refuses queue operations outside [`LIVE`].
pub(crate) fn live_gate(status: TopologyStatus) -> Result<(), StoreError> {
    gate(
        status,
        LIVE,
        "the mutation queue is only open for 'active' or 'degraded' topologies",
    )
}

/// Refuses deletes outside [`DELETABLE`].
pub(crate) fn delete_gate(status: TopologyStatus) -> Result<(), StoreError> {
    gate(
        status,
        DELETABLE,
        "delete is allowed from 'pending', 'torn_down' or 'failed'; tear it down first",
    )
}

fn gate(
    status: TopologyStatus,
    allowed: &[TopologyStatus],
    reason: &str,
) -> Result<(), StoreError> {
    if allowed.contains(&status) {
        Ok(())
    } else {
        Err(StoreError::NotEditable(TopologyNotEditable {
            status,
            reason: Some(String::from(reason)),
        }))
    }
}

/// Checks a name against the name policy below: after NFC normalisation, not empty or
/// only spaces, at most [`MAX_NAME_LEN`] bytes, and without control, format or other
/// default-ignorable characters or whitespace other than U+0020.
///
/// A name in another normal form passes if its NFC form does: stores keep the NFC form
/// ([`canonical_name`]).
///
/// # The name policy
///
/// Topology, LAN and decky names are shown to people, so two names that look the same must
/// be the same name, and a name must show all it holds. The policy follows Unicode's
/// guidance for identifiers (UAX #31, UTS #39) as far as it fits names made of words:
///
/// - **One normal form.** A name is stored, returned and compared in Normalization Form C
///   (NFC, UAX #15): `"café"` typed as `e` + U+0301 is stored as `"café"` with U+00E9, so
///   the two spellings are one name (a duplicate where names are unique) in every
///   backend, by the same comparison the SQL `UNIQUE` constraints make. [`canonical_name`]
///   gives the stored form.
/// - **Nothing hidden.** A name may not contain a control character (Cc), a format
///   character (Cf: the bidirectional controls U+061C, U+200E, U+200F, U+202A–U+202E and
///   U+2066–U+2069, which reorder what is displayed; zero-width spaces and joiners; the
///   byte order mark; the soft hyphen), any other `Default_Ignorable_Code_Point`
///   (variation selectors, Hangul fillers, tag characters, the combining grapheme
///   joiner), or whitespace other than the space U+0020 (no-break and other-width spaces,
///   line and paragraph separators, which pass for a space or break a line). The error
///   names the field and the first such character as `U+XXXX`.
/// - **Something to see.** A name made only of spaces is refused (all other invisible
///   characters are refused wherever they stand).
///
/// Not refused: letters of any script, marks, symbols, emoji without joiners or variation
/// selectors, private-use characters, and unassigned ones outside the ranges reserved for
/// default-ignorables (a later Unicode version may assign them, and a name valid today
/// must stay valid). Names that differ but look alike
/// (`"paypal"` in Latin and in Cyrillic letters, UTS #39 confusables) are distinct names:
/// telling them apart is left to whoever shows them.
///
/// # Errors
///
/// [`StoreError::Invalid`] naming `field` and the problem (the first offending character
/// as `U+XXXX`).
///
/// ```
/// use topostate::store::check_name;
///
/// assert!(check_name("lan name", "dmz").is_ok());
/// assert!(check_name("lan name", "cafe\u{301}").is_ok());
/// assert_eq!(
///     check_name("lan name", " ").unwrap_err().to_string(),
///     "invalid lan name: must not be empty or blank"
/// );
/// assert_eq!(
///     check_name("lan name", "dmz\u{202e}").unwrap_err().to_string(),
///     "invalid lan name: contains the bidirectional control U+202E, which reorders how text is displayed"
/// );
/// ```
pub fn check_name(field: &'static str, name: &str) -> Result<(), StoreError> {
    canonical_name(field, name).map(drop)
}

/// The form in which a store keeps `name`: its NFC normalisation (the same string when it
/// already is NFC, which every ASCII name is), checked by [`check_name`]'s rules (see
/// there for the policy).
///
/// Names read back from a store are in this form: to look up a row by a name typed
/// elsewhere, compare with its canonical form.
///
/// # Errors
///
/// As [`check_name`].
///
/// ```
/// use topostate::store::canonical_name;
///
/// // "café" with a combining accent: stored with the precomposed "é".
/// assert_eq!(canonical_name("lan name", "cafe\u{301}")?, "caf\u{e9}");
/// assert_eq!(canonical_name("lan name", "dmz")?, "dmz");
/// assert!(canonical_name("lan name", "\u{200b}").is_err());
/// # Ok::<(), topostate::store::StoreError>(())
/// ```
pub fn canonical_name<'a>(field: &'static str, name: &'a str) -> Result<Cow<'a, str>, StoreError> {
    if name.len() <= MAX_NAME_LEN && printable_ascii_not_blank(name.as_bytes()) {
        return Ok(Cow::Borrowed(name));
    }
    canonical_name_slow(field, name)
}

/// The common case in one pass: printable ASCII with a non-blank byte is a valid name,
/// already in NFC.
#[inline]
fn printable_ascii_not_blank(bytes: &[u8]) -> bool {
    let (mut printable, mut blank) = (true, true);
    for &b in bytes {
        printable &= (0x20..0x7f).contains(&b);
        blank &= b == b' ';
    }
    printable && !blank
}

/// The full [`canonical_name`], for names the fast path does not settle (valid or not).
#[cold]
fn canonical_name_slow<'a>(field: &'static str, name: &'a str) -> Result<Cow<'a, str>, StoreError> {
    let name = nfc(name);
    let problem = if name.trim().is_empty() {
        String::from("must not be empty or blank")
    } else if name.len() > MAX_NAME_LEN {
        std::format!("{} bytes, longer than {MAX_NAME_LEN}", name.len())
    } else if let Some(problem) = name.chars().find_map(hidden) {
        problem
    } else {
        return Ok(name);
    };
    Err(StoreError::Invalid { field, problem })
}

/// `text` in NFC, borrowed when it already is.
fn nfc(text: &str) -> Cow<'_, str> {
    if text.is_ascii() || is_nfc_quick(text.chars()) == IsNormalized::Yes {
        return Cow::Borrowed(text);
    }
    let normal: String = text.nfc().collect();
    if normal == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(normal)
    }
}

/// Why a name may not hold `c`, if it may not: it hides or changes what is displayed.
fn hidden(c: char) -> Option<String> {
    let code = c as u32;
    let what = if c.is_control() {
        "the control character"
    } else if BIDI_CONTROLS.contains(&c) {
        return Some(std::format!(
            "contains the bidirectional control U+{code:04X}, which reorders how text is displayed"
        ));
    } else if c.general_category() == GeneralCategory::Format || default_ignorable(c) {
        "the invisible character"
    } else if c.is_whitespace() && c != ' ' {
        return Some(std::format!(
            "contains the whitespace character U+{code:04X}; only the space U+0020 may separate words"
        ));
    } else {
        return None;
    };
    Some(std::format!("contains {what} U+{code:04X}"))
}

/// The bidirectional formatting characters (UAX #9): embeddings and overrides, isolates,
/// and the implicit marks.
pub(crate) const BIDI_CONTROLS: [char; 12] = [
    '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

/// The `Default_Ignorable_Code_Point`s that are not format characters (Cf, refused as a
/// category): variation selectors, Hangul fillers, the combining grapheme joiner, Khmer
/// inherent vowels, and the ranges Unicode reserves for future ignorables
/// (DerivedCoreProperties.txt; a test checks them against the UTS #39 tables of the
/// `unicode-security` crate).
const OTHER_IGNORABLE: [(char, char); 15] = [
    ('\u{034F}', '\u{034F}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180D}'),
    ('\u{180F}', '\u{180F}'),
    ('\u{2065}', '\u{2065}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFF8}'),
    ('\u{E0000}', '\u{E0000}'),
    ('\u{E0002}', '\u{E001F}'),
    ('\u{E0080}', '\u{E00FF}'),
    ('\u{E0100}', '\u{E01EF}'),
    ('\u{E01F0}', '\u{E0FFF}'),
];

fn default_ignorable(c: char) -> bool {
    OTHER_IGNORABLE
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
}

/// Checks free text: at most [`MAX_TEXT_LEN`] bytes and no NUL character (PostgreSQL's
/// `text` cannot hold one, so no backend accepts it and all of them agree).
///
/// # Errors
///
/// [`StoreError::Invalid`] naming `field` and the problem.
///
/// ```
/// use topostate::store::check_text;
///
/// assert!(check_text("reason", "compose up exited 1").is_ok());
/// assert!(check_text("reason", "a\0b").is_err());
/// ```
pub fn check_text(field: &'static str, text: &str) -> Result<(), StoreError> {
    if text.len() <= MAX_TEXT_LEN && !has_nul(text.as_bytes()) {
        return Ok(());
    }
    invalid_text(field, text)
}

/// Whether `bytes` holds a zero byte: a plain loop, which beats `memchr` on the short texts
/// most fields hold and lets the compiler vectorise the long ones.
#[inline]
#[allow(
    clippy::needless_bitwise_bool,
    clippy::unnecessary_fold,
    reason = "a non-short-circuiting fold is what the compiler vectorises"
)]
fn has_nul(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |nul, &b| nul | (b == 0))
}

/// The error of [`check_text`].
#[cold]
fn invalid_text(field: &'static str, text: &str) -> Result<(), StoreError> {
    let problem = if text.len() > MAX_TEXT_LEN {
        std::format!("{} bytes, longer than {MAX_TEXT_LEN}", text.len())
    } else if text.contains('\0') {
        String::from("contains a NUL character, which not every backend can store")
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid { field, problem })
}

/// Checks a canvas coordinate: finite (NaN and infinities do not survive every backend).
///
/// Every backend stores a coordinate bit for bit, with one exception: `-0.0` is stored
/// (and read back) as `0.0`. SQLite keeps a whole-number `REAL` as an integer, which has
/// no negative zero, so one backend cannot keep the sign; all of them drop it, at the
/// same input step, so a coordinate reads back the same everywhere. On a canvas the two
/// zeros are the same place.
///
/// # Errors
///
/// [`StoreError::Invalid`] naming `field`.
///
/// ```
/// use topostate::store::check_coord;
///
/// assert!(check_coord("lan x", Some(12.5)).is_ok());
/// assert!(check_coord("lan x", None).is_ok());
/// assert!(check_coord("lan x", Some(f64::NAN)).is_err());
/// ```
#[inline]
pub fn check_coord(field: &'static str, value: Option<f64>) -> Result<(), StoreError> {
    match value {
        Some(v) if !v.is_finite() => Err(not_finite(field, v)),
        _ => Ok(()),
    }
}

/// The error of [`check_coord`].
#[cold]
fn not_finite(field: &'static str, v: f64) -> StoreError {
    StoreError::Invalid {
        field,
        problem: std::format!("{v} is not a finite number"),
    }
}

/// `-0.0` as `0.0` (see [`check_coord`]); every other value as it is.
#[inline]
fn canonical_coord(value: Option<f64>) -> Option<f64> {
    // `v == 0.0` holds for both zeros and for nothing else (not for NaN, which
    // `check_coord` refuses).
    value.map(|v| if v == 0.0 { 0.0 } else { v })
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// Whether [`canonical_edit`] would change `edit`: a name not in NFC or a `-0.0`
/// coordinate. Cheap for ASCII names.
fn needs_canonical(edit: &ChildEdit) -> bool {
    let name = |n: &str| !n.is_ascii() && matches!(nfc(n), Cow::Owned(_));
    let coord = |v: Option<f64>| v.is_some_and(|v| v == 0.0 && v.is_sign_negative());
    match edit {
        ChildEdit::AddLan(lan) => name(&lan.name) || coord(lan.x) || coord(lan.y),
        ChildEdit::UpdateLan(_, patch) => {
            patch.name.as_deref().is_some_and(name)
                || coord(patch.x.flatten())
                || coord(patch.y.flatten())
        }
        ChildEdit::AddDecky(decky) => name(&decky.name) || coord(decky.x) || coord(decky.y),
        ChildEdit::UpdateDecky(_, patch) => {
            patch.name.as_deref().is_some_and(name)
                || coord(patch.x.flatten())
                || coord(patch.y.flatten())
        }
        ChildEdit::DeleteLan(_)
        | ChildEdit::DeleteDecky(_)
        | ChildEdit::AddEdge(_)
        | ChildEdit::DeleteEdge(_) => false,
    }
}

/// Puts the names and coordinates `edit` sets in the form every backend stores: names in
/// NFC ([`canonical_name`]), `-0.0` as `0.0` ([`check_coord`]). Invalid values are left
/// for [`check_fields`] to refuse.
pub(crate) fn canonical_edit(edit: &mut ChildEdit) {
    fn name(n: &mut String) {
        if let Cow::Owned(normal) = nfc(n) {
            *n = normal;
        }
    }
    fn coords(x: &mut Option<f64>, y: &mut Option<f64>) {
        *x = canonical_coord(*x);
        *y = canonical_coord(*y);
    }
    fn patch_coord(v: &mut Option<Option<f64>>) {
        if let Some(v) = v {
            *v = canonical_coord(*v);
        }
    }
    match edit {
        ChildEdit::AddLan(lan) => {
            name(&mut lan.name);
            coords(&mut lan.x, &mut lan.y);
        }
        ChildEdit::UpdateLan(_, patch) => {
            if let Some(n) = &mut patch.name {
                name(n);
            }
            patch_coord(&mut patch.x);
            patch_coord(&mut patch.y);
        }
        ChildEdit::AddDecky(decky) => {
            name(&mut decky.name);
            coords(&mut decky.x, &mut decky.y);
        }
        ChildEdit::UpdateDecky(_, patch) => {
            if let Some(n) = &mut patch.name {
                name(n);
            }
            patch_coord(&mut patch.x);
            patch_coord(&mut patch.y);
        }
        ChildEdit::DeleteLan(_)
        | ChildEdit::DeleteDecky(_)
        | ChildEdit::AddEdge(_)
        | ChildEdit::DeleteEdge(_) => {}
    }
}

/// A batch with every edit in the form every backend stores ([`canonical_edit`]): the
/// batch itself, not copied, when no edit changes (ASCII names, no `-0.0`). The SQL
/// backends' planner uses it; the memory store copies every batch anyway.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn canonical_edits(edits: &[ChildEdit]) -> Cow<'_, [ChildEdit]> {
    match edits.iter().position(needs_canonical) {
        None => Cow::Borrowed(edits),
        Some(first) => {
            let mut owned = edits.to_vec();
            owned.iter_mut().skip(first).for_each(canonical_edit);
            Cow::Owned(owned)
        }
    }
}

/// Why a transition of a topology at status `from` and version `version` to `to` is
/// refused, if it is: of a stale believed status, an invalid reason, an edge the lifecycle
/// does not declare and a stale version, the one that takes precedence.
pub(crate) fn transition_refusal(
    from: TopologyStatus,
    version: u64,
    to: TopologyStatus,
    reason: Option<&str>,
    precondition: Precondition,
) -> Option<StoreError> {
    [
        precondition
            .status
            .filter(|&believed| believed != from)
            .map(|expected| StoreError::StaleStatus {
                expected,
                found: from,
            }),
        reason.and_then(|r| check_text("reason", r).err()),
        (!from.can_transition_to(to)).then_some(StoreError::IllegalTransition { from, to }),
        precondition
            .version
            .filter(|&seen| seen != version)
            .map(|expected| {
                StoreError::VersionConflict(VersionConflict {
                    current: version,
                    expected,
                })
            }),
    ]
    .into_iter()
    .fold(None, StoreError::first)
}

/// The version check of a write that is only checked, never bumped (a delete, a batch of
/// no-ops): a stale `expected` version, if given.
pub(crate) fn stale_version(current: u64, expected: Option<u64>) -> Option<StoreError> {
    expected
        .filter(|&seen| seen != current)
        .map(|expected| StoreError::VersionConflict(VersionConflict { current, expected }))
}

/// The version a versioned write leaves: `expected` checked and bumped, or, with `None`,
/// the current version unchecked ([`check_and_bump`]).
pub(crate) fn bumped_version(current: u64, expected: Option<u64>) -> Result<u64, StoreError> {
    check_and_bump(current, expected).map_err(|e| match e {
        VersionError::Conflict(c) => StoreError::VersionConflict(c),
        VersionError::Overflow(o) => StoreError::VersionOverflow(o),
    })
}

/// The version a free-form batch leaves: a batch of no-ops is checked but not bumped.
pub(crate) fn batch_version(
    current: u64,
    expected: Option<u64>,
    edits: &[ChildEdit],
) -> Result<u64, StoreError> {
    if edits.iter().all(ChildEdit::is_noop) {
        stale_version(current, expected).map_or(Ok(current), Err)
    } else {
        bumped_version(current, expected)
    }
}

/// The new version, or the error that takes precedence among a refusal (status gate,
/// invalid argument), the version check and the first failing edit.
pub(crate) fn settle(
    refusal: Option<StoreError>,
    version: Result<u64, StoreError>,
    edit: Option<StoreError>,
) -> Result<u64, StoreError> {
    let (next, version_error) = match version {
        Ok(next) => (next, None),
        Err(e) => (0, Some(e)),
    };
    match StoreError::first(StoreError::first(refusal, version_error), edit) {
        Some(e) => Err(e),
        None => Ok(next),
    }
}

/// Checks the batch-local references of edit `at` of `edits`, in the order of its fields:
/// each [`RowRef::Batch`] must name an earlier edit that adds a row of its kind. Every
/// backend checks them before anything else of the edit.
pub(crate) fn check_refs(edits: &[ChildEdit], at: usize) -> Result<(), StoreError> {
    let Some(edit) = edits.get(at) else {
        return Ok(());
    };
    match edit {
        ChildEdit::UpdateLan(lan, _) | ChildEdit::DeleteLan(lan) => {
            check_ref(edits, at, "lan id", *lan)
        }
        ChildEdit::UpdateDecky(decky, _) | ChildEdit::DeleteDecky(decky) => {
            check_ref(edits, at, "decky id", *decky)
        }
        ChildEdit::AddEdge(edge) => {
            check_ref(edits, at, "edge decky", edge.decky)?;
            check_ref(edits, at, "edge lan", edge.lan)
        }
        ChildEdit::AddLan(_) | ChildEdit::AddDecky(_) | ChildEdit::DeleteEdge(_) => Ok(()),
    }
}

/// One reference of [`check_refs`].
fn check_ref<I: Referable>(
    edits: &[ChildEdit],
    at: usize,
    field: &'static str,
    reference: RowRef<I>,
) -> Result<(), StoreError> {
    let RowRef::Batch(target) = reference else {
        return Ok(());
    };
    let problem = match edits.get(target) {
        None => RefProblem::OutOfBatch { len: edits.len() },
        Some(_) if target >= at => RefProblem::NotEarlier,
        Some(named) if !I::added_by(named) => RefProblem::NotAnAdd {
            expected: I::ENTITY,
        },
        Some(_) => return Ok(()),
    };
    Err(StoreError::BadReference {
        edit: at,
        field,
        target,
        problem,
    })
}

/// Checks the fields an edit carries (names, texts, coordinates) without reading anything
/// stored, in the order every backend reports them: the first failing field's error.
/// Edits of ids only (deletes, edges) carry none.
pub(crate) fn check_fields(edit: &ChildEdit) -> Result<(), StoreError> {
    match edit {
        ChildEdit::AddLan(lan) => check_new_lan(lan),
        ChildEdit::UpdateLan(_, patch) => check_lan_patch(patch),
        ChildEdit::AddDecky(decky) => check_new_decky(decky),
        ChildEdit::UpdateDecky(_, patch) => check_decky_patch(patch),
        ChildEdit::DeleteLan(_)
        | ChildEdit::DeleteDecky(_)
        | ChildEdit::AddEdge(NewEdge { .. })
        | ChildEdit::DeleteEdge(_) => Ok(()),
    }
}

/// The fields of a new LAN (see [`check_fields`]).
pub(crate) fn check_new_lan(lan: &NewLan) -> Result<(), StoreError> {
    check_name("lan name", &lan.name)?;
    check_text("subnet", &lan.subnet)?;
    check_coord("lan x", lan.x)?;
    check_coord("lan y", lan.y)
}

/// The fields a LAN patch sets (see [`check_fields`]).
pub(crate) fn check_lan_patch(patch: &LanPatch) -> Result<(), StoreError> {
    if let Some(name) = &patch.name {
        check_name("lan name", name)?;
    }
    if let Some(subnet) = &patch.subnet {
        check_text("subnet", subnet)?;
    }
    check_coord("lan x", patch.x.flatten())?;
    check_coord("lan y", patch.y.flatten())
}

/// The fields of a new decky (see [`check_fields`]).
pub(crate) fn check_new_decky(decky: &NewDecky) -> Result<(), StoreError> {
    check_name("decky name", &decky.name)?;
    check_decky_texts(&decky.services, decky.config.as_deref())?;
    check_coord("decky x", decky.x)?;
    check_coord("decky y", decky.y)
}

/// The fields a decky patch sets (see [`check_fields`]).
pub(crate) fn check_decky_patch(patch: &DeckyPatch) -> Result<(), StoreError> {
    if let Some(name) = &patch.name {
        check_name("decky name", name)?;
    }
    check_decky_texts(
        patch.services.as_deref().unwrap_or_default(),
        patch.config.as_ref().and_then(Option::as_deref),
    )?;
    check_coord("decky x", patch.x.flatten())?;
    check_coord("decky y", patch.y.flatten())
}

fn check_decky_texts(services: &[String], config: Option<&str>) -> Result<(), StoreError> {
    for service in services {
        check_text("decky service", service)?;
    }
    if let Some(config) = config {
        check_text("decky config", config)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_open_markers_match_live() {
        assert_eq!(
            LIVE,
            &[<Active as State>::STATUS, <Degraded as State>::STATUS]
        );
    }

    /// Refused in the middle of a name, naming the character.
    fn refused_naming(c: char) -> bool {
        let code = std::format!("U+{:04X}", u32::from(c));
        matches!(
            check_name("name", &std::format!("a{c}b")),
            Err(StoreError::Invalid { problem, .. }) if problem.contains(&code)
        )
    }

    #[test]
    fn every_default_ignorable_character_is_refused() {
        use unicode_security::GeneralSecurityProfile;
        use unicode_security::general_security_profile::IdentifierType;

        let mut seen = 0;
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            if c.identifier_type() == Some(IdentifierType::Default_Ignorable) {
                seen += 1;
                assert!(refused_naming(c), "U+{:04X} accepted", u32::from(c));
            }
        }
        // The UTS #39 table types the assigned ones, some four hundred: the loop did see
        // them.
        assert!(seen > 300, "{seen}");
    }

    #[test]
    fn bidirectional_controls_are_named_as_such() {
        for c in BIDI_CONTROLS {
            assert!(refused_naming(c));
            let e = check_name("name", &std::format!("x{c}")).unwrap_err();
            assert!(e.to_string().contains("bidirectional control"), "{e}");
        }
    }

    #[test]
    fn plain_ascii_takes_the_fast_path_and_agrees_with_the_full_check() {
        for a in 0u8..0x80 {
            for b in [b'x', b' ', 0x7f, a] {
                let name = std::string::String::from_utf8(std::vec![a, b]).unwrap_or_default();
                let fast = printable_ascii_not_blank(name.as_bytes());
                let full = canonical_name_slow("name", &name);
                assert_eq!(fast, full.is_ok(), "{name:?}");
                if let Ok(stored) = canonical_name("name", &name) {
                    assert!(matches!(stored, Cow::Borrowed(n) if n == name));
                }
            }
        }
    }

    #[test]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn canonical_edits_copy_only_when_something_changes() {
        use crate::store::{LanPatch, NewLan};

        let plain = [ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24"))];
        assert!(matches!(canonical_edits(&plain), Cow::Borrowed(_)));
        let mut zero = NewLan::new("dmz", "10.0.0.0/24");
        zero.x = Some(-0.0);
        let edits = [
            ChildEdit::AddLan(NewLan::new("caf\u{e9}", "s")),
            ChildEdit::AddLan(zero),
            ChildEdit::UpdateLan(
                crate::store::LanId::new(1).into(),
                LanPatch {
                    name: Some("cafe\u{301}".into()),
                    y: Some(Some(-0.0)),
                    ..LanPatch::default()
                },
            ),
        ];
        let Cow::Owned(changed) = canonical_edits(&edits) else {
            panic!("nothing normalised");
        };
        let [
            ChildEdit::AddLan(a),
            ChildEdit::AddLan(b),
            ChildEdit::UpdateLan(_, p),
        ] = &changed[..]
        else {
            panic!("{changed:?}");
        };
        assert_eq!(a.name, "caf\u{e9}");
        assert_eq!(b.x.map(f64::to_bits), Some(0));
        assert_eq!(p.name.as_deref(), Some("caf\u{e9}"));
        assert_eq!(p.y.flatten().map(f64::to_bits), Some(0));
    }

    #[test]
    fn gates() {
        assert!(free_form_gate(TopologyStatus::Pending).is_ok());
        assert!(free_form_gate(TopologyStatus::Active).is_err());
        assert!(live_gate(TopologyStatus::Degraded).is_ok());
        assert!(delete_gate(TopologyStatus::Active).is_err());
    }
}
