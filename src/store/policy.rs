//! Which statuses allow which writes, and the limits on stored text; written once here and
//! used by every backend and by the typed layer.

use std::string::String;

use crate::state::{Active, Degraded, State};
use crate::{TopologyNotEditable, TopologyStatus, VersionConflict};

use super::{ChildEdit, DeckyPatch, LanPatch, NewDecky, NewEdge, NewLan, Precondition, StoreError};

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

/// Checks a name: not empty, not blank, at most [`MAX_NAME_LEN`] bytes, no control
/// characters.
///
/// # Errors
///
/// [`StoreError::Invalid`] naming `field` and the problem.
///
/// ```
/// use topostate::store::check_name;
///
/// assert!(check_name("lan name", "dmz").is_ok());
/// assert_eq!(
///     check_name("lan name", " ").unwrap_err().to_string(),
///     "invalid lan name: must not be empty or blank"
/// );
/// ```
pub fn check_name(field: &'static str, name: &str) -> Result<(), StoreError> {
    if name.len() <= MAX_NAME_LEN && printable_ascii_not_blank(name.as_bytes()) {
        return Ok(());
    }
    check_name_slow(field, name)
}

/// The common case in one pass: printable ASCII with a non-blank byte is a valid name.
#[inline]
fn printable_ascii_not_blank(bytes: &[u8]) -> bool {
    let (mut printable, mut blank) = (true, true);
    for &b in bytes {
        printable &= (0x20..0x7f).contains(&b);
        blank &= b == b' ';
    }
    printable && !blank
}

/// The full check of [`check_name`], for names the fast path does not settle (valid or not).
#[cold]
fn check_name_slow(field: &'static str, name: &str) -> Result<(), StoreError> {
    let problem = if name.trim().is_empty() {
        String::from("must not be empty or blank")
    } else if name.len() > MAX_NAME_LEN {
        std::format!("{} bytes, longer than {MAX_NAME_LEN}", name.len())
    } else if name.chars().any(char::is_control) {
        String::from("must not contain control characters")
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid { field, problem })
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

    #[test]
    fn gates() {
        assert!(free_form_gate(TopologyStatus::Pending).is_ok());
        assert!(free_form_gate(TopologyStatus::Active).is_err());
        assert!(live_gate(TopologyStatus::Degraded).is_ok());
        assert!(delete_gate(TopologyStatus::Active).is_err());
    }
}
