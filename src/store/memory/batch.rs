//! A batch's way through the store: the work that needs no topology, done before its lock
//! is taken so that writers to one topology do it in parallel (each edit's own fields
//! checked, the names it sets hashed, the edits copied into the form stored); then, under
//! the lock, every edit checked ([`Stage`]) before any is written.

use std::vec::Vec;

use crate::store::policy::{canonical_edit, check_fields, settle};
use crate::store::{ChildEdit, EditReport, StoreError, Touched};

use super::MemoryStore;
use super::aggregate::Aggregate;
use super::rows::{NameHasher, hash_name};
use super::stage::Stage;

/// The checks of one edit that need no topology: its own fields, by the policy every
/// backend applies ([`check_fields`]). On success, the hash of the name the edit sets, if
/// any. [`Stage`] reports an error from here where the edit's
/// stateful checks put it.
pub(super) fn precheck(hasher: &NameHasher, edit: &ChildEdit) -> Result<Option<u64>, StoreError> {
    check_fields(edit)?;
    let hash = |name: &str| hash_name(hasher, name);
    Ok(match edit {
        ChildEdit::AddLan(new) => Some(hash(&new.name)),
        ChildEdit::AddDecky(new) => Some(hash(&new.name)),
        ChildEdit::UpdateLan(_, patch) => patch.name.as_deref().map(hash),
        ChildEdit::UpdateDecky(_, patch) => patch.name.as_deref().map(hash),
        ChildEdit::DeleteLan(_)
        | ChildEdit::DeleteDecky(_)
        | ChildEdit::AddEdge(_)
        | ChildEdit::DeleteEdge(_) => None,
    })
}

/// The [`precheck`]s of a batch: the name hash of each edit up to the first one whose own
/// fields are invalid, and that edit's error. `H` is an array for a single edit, a `Vec`
/// for a batch.
pub(super) struct Prepared<H> {
    /// Per edit, the hash of the name it sets.
    hashes: H,
    /// The first edit whose own fields are invalid, and why.
    invalid: Option<(usize, StoreError)>,
}

impl Prepared<[Option<u64>; 1]> {
    pub(super) fn one(hasher: &NameHasher, edit: &ChildEdit) -> Self {
        match precheck(hasher, edit) {
            Ok(hash) => Self {
                hashes: [hash],
                invalid: None,
            },
            Err(e) => Self {
                hashes: [None],
                invalid: Some((0, e)),
            },
        }
    }
}

impl Prepared<Vec<Option<u64>>> {
    pub(super) fn batch(hasher: &NameHasher, edits: &[ChildEdit]) -> Self {
        let mut hashes = Vec::with_capacity(edits.len());
        for (i, edit) in edits.iter().enumerate() {
            match precheck(hasher, edit) {
                Ok(hash) => hashes.push(hash),
                // The batch stops at this edit at the latest: the rest need no checks.
                Err(e) => {
                    return Self {
                        hashes,
                        invalid: Some((i, e)),
                    };
                }
            }
        }
        Self {
            hashes,
            invalid: None,
        }
    }
}

impl<H: AsRef<[Option<u64>]>> Prepared<H> {
    /// The precheck of edit `i`, for [`Stage`]; an error is handed
    /// out once.
    pub(super) fn take(&mut self, i: usize) -> Result<Option<u64>, StoreError> {
        match self.invalid.take_if(|(at, _)| *at == i) {
            Some((_, e)) => Err(e),
            None => Ok(self.hash(i)),
        }
    }

    /// The hash of the name edit `i` sets, if it sets one.
    pub(super) fn hash(&self, i: usize) -> Option<u64> {
        self.hashes.as_ref().get(i).copied().flatten()
    }
}

/// A batch made ready before its topology is locked: the edits owned (their strings move
/// into the rows) and in the form stored ([`canonical_edit`]), their [`precheck`]s, and
/// room for the report.
pub(super) struct Ready {
    /// The edits, owned and canonical.
    pub(super) edits: Vec<ChildEdit>,
    /// Their prechecks.
    pub(super) prepared: Prepared<Vec<Option<u64>>>,
    /// The report's list, allocated here rather than under the lock.
    pub(super) touched: Vec<Touched>,
}

impl Ready {
    pub(super) fn new(hasher: &NameHasher, edits: &[ChildEdit]) -> Self {
        let mut owned = edits.to_vec();
        owned.iter_mut().for_each(canonical_edit);
        Self {
            prepared: Prepared::batch(hasher, &owned),
            touched: Vec::with_capacity(owned.len()),
            edits: owned,
        }
    }
}

/// Checking a batch, then writing it.
impl MemoryStore {
    /// Checks a batch against the aggregate: the new version, or the error that takes
    /// precedence among `refusal`, `version` and the first failing edit.
    pub(super) fn check_edits<H: AsRef<[Option<u64>]>>(
        &self,
        agg: &Aggregate,
        refusal: Option<StoreError>,
        version: Result<u64, StoreError>,
        edits: &[ChildEdit],
        prepared: &mut Prepared<H>,
    ) -> Result<u64, StoreError> {
        let edit_error = Stage::check(agg, &self.inner, edits, prepared).err();
        settle(refusal, version, edit_error)
    }

    /// Checks a batch made [`Ready`] before the lock, then, if nothing refuses, writes it.
    pub(super) fn run_edits(
        &self,
        agg: &mut Aggregate,
        refusal: Option<StoreError>,
        version: Result<u64, StoreError>,
        ready: Ready,
    ) -> Result<EditReport, StoreError> {
        let Ready {
            edits,
            mut prepared,
            mut touched,
        } = ready;
        let version = self.check_edits(agg, refusal, version, &edits, &mut prepared)?;
        for (i, edit) in edits.into_iter().enumerate() {
            let row = agg.apply(&self.inner, edit, prepared.hash(i), &touched);
            touched.push(row);
        }
        agg.row.version = version;
        Ok(EditReport { touched, version })
    }
}
