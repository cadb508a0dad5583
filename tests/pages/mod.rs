//! Whole lists read page by page, as a caller of the paged lists reads them.
//!
//! The suites read whole lists through these, in small pages, so every list a test
//! checks is also a check that the pages of it join up: in order, nothing twice, nothing
//! missed.

#![allow(dead_code)]

use topostate::store::{
    Listed, Mutation, Page, PageRequest, StatusEvent, StoreError, TopologyRecord, TopologyStore,
};
use topostate::{MutationState, TopologyId, TopologyStatus};

/// The page size of a whole-list read: small, so that most lists take several pages.
pub const STEP: usize = 3;

/// Reads every page of one list, `read` reading one page; each page's cursor must move on.
pub fn every_page<T: Listed>(
    mut read: impl FnMut(PageRequest<T::Key>) -> Result<Page<T>, StoreError>,
    step: usize,
) -> Result<Vec<T>, StoreError> {
    let mut all = Vec::new();
    let mut request = PageRequest::first(step);
    loop {
        let page = read(request)?;
        assert!(page.items.len() <= step, "a page longer than its limit");
        assert_eq!(
            page.next,
            page.next.and(page.items.last().map(Listed::key)),
            "next names the page's last row"
        );
        all.extend(page.items);
        match page.next {
            Some(cursor) if request.cursor() != Some(cursor) => {
                request = PageRequest::after(cursor, step);
            }
            Some(_) => panic!("the cursor did not move"),
            None => return Ok(all),
        }
    }
}

/// A store's whole lists, read a page of [`STEP`] rows at a time.
pub trait ListAll {
    /// Every topology (of `status`, if given), by id.
    fn all_topologies(
        &self,
        status: Option<TopologyStatus>,
    ) -> Result<Vec<TopologyRecord>, StoreError>;

    /// A topology's whole status log, newest first.
    fn all_events(&self, id: TopologyId) -> Result<Vec<StatusEvent>, StoreError>;

    /// A topology's mutations (in `state`, if given), newest first.
    fn all_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
    ) -> Result<Vec<Mutation>, StoreError>;
}

impl<S: TopologyStore + ?Sized> ListAll for S {
    fn all_topologies(
        &self,
        status: Option<TopologyStatus>,
    ) -> Result<Vec<TopologyRecord>, StoreError> {
        every_page(|page| self.list_topologies(status, page), STEP)
    }

    fn all_events(&self, id: TopologyId) -> Result<Vec<StatusEvent>, StoreError> {
        every_page(|page| self.list_status_events(id, page), STEP)
    }

    fn all_mutations(
        &self,
        id: TopologyId,
        state: Option<MutationState>,
    ) -> Result<Vec<Mutation>, StoreError> {
        every_page(|page| self.list_mutations(id, state, page), STEP)
    }
}
