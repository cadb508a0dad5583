//! Pages of a list: which page to read ([`PageRequest`]) and the page read ([`Page`]).
//!
//! A list is read a page at a time, so that the cost of one call does not grow with the
//! list: a long-lived topology's status log and mutation queue only grow. A page starts
//! after a cursor, the id of the last row the caller saw (none for the first page), and
//! holds at most `limit` rows, `1..=`[`MAX_PAGE`]. Each list keeps its order: topologies
//! by id ascending (a cursor means "newer than this id"), status events and mutations
//! newest first (a cursor means "older than this id").
//!
//! **The cursor is a position, not a row.** Ids are minted from one store-wide sequence
//! per kind and never reused, so any id orders against a list's rows: the cursor need not
//! be a row of the list. An id of a deleted row, or of another topology's event, positions
//! the page by its number, exactly as if a row had it; an id past the end gives an empty,
//! last page. A list never changes its mind about order, so paging with the `next` of
//! each page meets every row that existed when the first page was read and was not
//! deleted meanwhile, once, in order. Rows added meanwhile at the listed end
//! (a newer topology) are met; rows added at the other end (a newer event, seen from an
//! older page) are not: read the first page again for those.
//!
//! **A filter fills the page.** With a status or state filter a page holds `limit`
//! matching rows unless the list ends first: the store reads past non-matching rows, and
//! reads every row it passes, so a filter never hides a corrupt row: the page that passes
//! it fails naming it ([`StoreError::Corrupt`]). The cost of an unfiltered page is bounded
//! by its limit; a filtered page's grows with the non-matching rows it passes over.
//!
//! ```
//! use topostate::TopologyStatus::{Deploying, Failed, Pending};
//! use topostate::store::{MemoryStore, PageRequest, Precondition, TopologyStore};
//!
//! let store = MemoryStore::new();
//! let lab = store.create_topology("lab")?;
//! store.transition_status(lab.id, Deploying, None, Precondition::status(Pending))?;
//! store.transition_status(lab.id, Failed, Some("no subnet"), Precondition::status(Deploying))?;
//!
//! // The log, newest first, one event a page.
//! let mut seen = Vec::new();
//! let mut request = Some(PageRequest::first(1));
//! while let Some(page_request) = request {
//!     let page = store.list_status_events(lab.id, page_request)?;
//!     seen.extend(page.items.iter().map(|e| e.to));
//!     request = page.next_page(1);
//! }
//! assert_eq!(seen, [Failed, Deploying]);
//! # Ok::<(), topostate::store::StoreError>(())
//! ```

use std::format;
use std::vec::Vec;

use crate::TopologyId;

use super::{EventId, Mutation, MutationId, StatusEvent, StoreError, TopologyRecord};

/// The most rows one page holds; a [`PageRequest`] asking for more, or for none, is
/// refused with [`StoreError::Invalid`] naming `limit`.
pub const MAX_PAGE: usize = 1000;

/// Which page of a list to read: after which row, and at most how many rows.
///
/// `K` is the id type of the listed rows ([`TopologyId`], [`EventId`], [`MutationId`]), so a
/// cursor of one kind cannot be passed to another kind's list. The limit is checked by the
/// store, not here: `1..=`[`MAX_PAGE`].
///
/// On the wire (feature `serde`): `{"after":7,"limit":50}`, `after` `null` or absent for
/// the first page. Unknown fields are refused.
///
/// ```
/// use topostate::store::{EventId, PageRequest};
///
/// let first: PageRequest<EventId> = PageRequest::first(50);
/// assert_eq!((first.cursor(), first.limit()), (None, 50));
/// let next = PageRequest::after(EventId::new(7), 50);
/// assert_eq!(next.cursor(), Some(EventId::new(7)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct PageRequest<K> {
    #[cfg_attr(feature = "serde", serde(default))]
    after: Option<K>,
    limit: usize,
}

impl<K: Copy> PageRequest<K> {
    /// The first page, of at most `limit` rows.
    #[must_use]
    pub const fn first(limit: usize) -> Self {
        Self { after: None, limit }
    }

    /// The page after the row `cursor` (the `next` of the page before), of at most `limit`
    /// rows.
    #[must_use]
    pub const fn after(cursor: K, limit: usize) -> Self {
        Self {
            after: Some(cursor),
            limit,
        }
    }

    /// The id the page starts after; `None` for the first page.
    #[must_use]
    pub const fn cursor(&self) -> Option<K> {
        self.after
    }

    /// The most rows the page holds.
    #[must_use]
    pub const fn limit(&self) -> usize {
        self.limit
    }

    /// The limit, if the store takes it: `1..=MAX_PAGE`.
    pub(crate) fn checked_limit(&self) -> Result<usize, StoreError> {
        if (1..=MAX_PAGE).contains(&self.limit) {
            return Ok(self.limit);
        }
        Err(StoreError::Invalid {
            field: "limit",
            problem: format!("{} rows; a page holds 1 to {MAX_PAGE} rows", self.limit),
        })
    }
}

/// A row a list is paged by: its id orders the list and is the cursor of the next page.
///
/// Sealed: implemented for [`TopologyRecord`], [`StatusEvent`] and [`Mutation`], the rows of
/// the store's lists, and nothing else.
pub trait Listed: sealed::Sealed {
    /// The id type, the cursor of a [`PageRequest`].
    type Key: Copy + core::fmt::Debug + PartialEq + Eq + core::hash::Hash;

    /// This row's id.
    fn key(&self) -> Self::Key;
}

mod sealed {
    /// The seal of [`Listed`](super::Listed).
    pub trait Sealed {}
    impl Sealed for super::TopologyRecord {}
    impl Sealed for super::StatusEvent {}
    impl Sealed for super::Mutation {}
}

impl Listed for TopologyRecord {
    type Key = TopologyId;

    fn key(&self) -> TopologyId {
        self.id
    }
}

impl Listed for StatusEvent {
    type Key = EventId;

    fn key(&self) -> EventId {
        self.id
    }
}

impl Listed for Mutation {
    type Key = MutationId;

    fn key(&self) -> MutationId {
        self.id
    }
}

/// One page of a list: its rows in the list's order, and where the next page starts.
///
/// `next` is the cursor of the next page, the id of the last row here, when at least one
/// more row follows (one that matches the filter, for a filtered list); `None` when this
/// page is the last. An empty page is always the last.
///
/// On the wire (feature `serde`): `{"items":[...],"next":7}`, `next` `null` on the last
/// page.
///
/// ```
/// use topostate::store::{MemoryStore, PageRequest, TopologyStore};
///
/// let store = MemoryStore::new();
/// for name in ["a", "b", "c"] {
///     store.create_topology(name)?;
/// }
/// let page = store.list_topologies(None, PageRequest::first(2))?;
/// assert_eq!(page.items.len(), 2);
/// let rest = store.list_topologies(None, page.next_page(2).expect("c follows"))?;
/// assert_eq!(rest.items[0].name, "c");
/// assert!(rest.is_last());
/// # Ok::<(), topostate::store::StoreError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "T: serde::Serialize, T::Key: serde::Serialize",
        deserialize = "T: serde::Deserialize<'de>, T::Key: serde::Deserialize<'de>"
    ))
)]
#[non_exhaustive]
pub struct Page<T: Listed> {
    /// The rows, in the list's order.
    pub items: Vec<T>,
    /// The cursor of the next page, if another row follows.
    pub next: Option<T::Key>,
}

impl<T: Listed> Page<T> {
    /// A page of `items` followed by a page starting after `next`.
    #[must_use]
    pub const fn new(items: Vec<T>, next: Option<T::Key>) -> Self {
        Self { items, next }
    }

    /// The request for the next page, of at most `limit` rows; `None` on the last page.
    #[must_use]
    pub fn next_page(&self, limit: usize) -> Option<PageRequest<T::Key>> {
        self.next.map(|cursor| PageRequest::after(cursor, limit))
    }

    /// Is this the last page?
    #[must_use]
    pub const fn is_last(&self) -> bool {
        self.next.is_none()
    }

    /// The page of at most `limit` rows from `rows`, the matching rows in the list's order
    /// from the cursor on, of which at most `limit + 1` are read: the one past the limit
    /// only says that another page follows.
    pub(crate) fn from_rows(rows: impl IntoIterator<Item = T>, limit: usize) -> Self {
        let mut items: Vec<T> = rows.into_iter().take(limit.saturating_add(1)).collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(Listed::key)
        } else {
            None
        };
        Self { items, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TopologyStatus;
    use crate::store::Timestamp;

    fn event(id: u64) -> StatusEvent {
        StatusEvent {
            id: EventId::new(id),
            topology_id: TopologyId::new(1),
            from: TopologyStatus::Pending,
            to: TopologyStatus::Deploying,
            at: Timestamp::from_micros(0),
            reason: None,
        }
    }

    #[test]
    fn a_full_page_with_more_behind_names_its_last_row() {
        let page = Page::from_rows((1..=5).rev().map(event), 2);
        let ids: Vec<u64> = page.items.iter().map(|e| e.id.get()).collect();
        assert_eq!(ids, [5, 4]);
        assert_eq!(page.next, Some(EventId::new(4)));
    }

    #[test]
    fn a_page_that_reaches_the_end_is_the_last() {
        assert!(Page::from_rows((1..=2).rev().map(event), 2).is_last());
        assert!(Page::from_rows((1..=1).map(event), 2).is_last());
        assert!(Page::<StatusEvent>::from_rows([], 2).is_last());
    }

    #[test]
    fn limits_outside_one_to_max_are_refused_naming_the_field() {
        for limit in [0, MAX_PAGE + 1, usize::MAX] {
            let err = PageRequest::<EventId>::first(limit)
                .checked_limit()
                .unwrap_err();
            assert!(
                matches!(&err, StoreError::Invalid { field: "limit", .. }),
                "{err}"
            );
            assert!(err.to_string().contains(&limit.to_string()), "{err}");
        }
        assert_eq!(PageRequest::<EventId>::first(1).checked_limit().unwrap(), 1);
        assert_eq!(
            PageRequest::<EventId>::first(MAX_PAGE)
                .checked_limit()
                .unwrap(),
            MAX_PAGE
        );
    }
}
