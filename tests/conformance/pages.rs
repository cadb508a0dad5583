//! Pages of the lists: limits, cursors, filters, and pages that join up to the whole list.

use crate::pages::every_page;
use topostate::store::{
    Claim, EventId, Listed, MAX_PAGE, MutationId, Page, PageRequest, Precondition, StoreError,
    TopologyStore,
};
use topostate::{MutationOp, MutationState, TopologyId, TopologyStatus};

use super::{Harness, reach, setup};

/// What [`populate`] made, in the order each list promises.
struct Lists {
    /// Live topologies, by id, with their statuses.
    topologies: Vec<(TopologyId, TopologyStatus)>,
    /// A topology deleted between others.
    deleted: TopologyId,
    /// The live topology with a long log and queue.
    lab: TopologyId,
    /// `lab`'s events, newest first.
    events: Vec<EventId>,
    /// `lab`'s mutations, newest first, with their states.
    mutations: Vec<(MutationId, MutationState)>,
    /// Another topology's event and mutation, minted between `lab`'s.
    other_event: EventId,
    other_mutation: MutationId,
}

/// Topologies in several statuses with a gap left by a delete; a live topology whose
/// events and mutations interleave (by id) with another's.
fn populate(s: &dyn TopologyStore) -> Lists {
    use TopologyStatus::*;
    let mut topologies = Vec::new();
    let mut deleted = None;
    for (i, status) in [Pending, Active, Deploying, Failed, Pending, Active, Pending]
        .into_iter()
        .enumerate()
    {
        let t = reach(s, &format!("t{i}"), status);
        if i == 3 {
            s.delete_topology(t.id, None).unwrap();
            deleted = Some(t.id);
        } else {
            topologies.push((t.id, status));
        }
    }
    let lab = reach(s, "lab", Active);
    let other = reach(s, "other", Active);
    topologies.push((lab.id, Active));
    // `other` is degraded below.
    topologies.push((other.id, Degraded));

    // The log so far (deploying, active), then degraded and back, interleaved with the
    // other topology's events.
    let mut events: Vec<EventId> = every_page(|p| s.list_status_events(lab.id, p), MAX_PAGE)
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| e.id)
        .collect();
    let mut other_event = None;
    for round in 0..4 {
        for (to, from) in [(Degraded, Active), (Active, Degraded)] {
            let moved = s
                .transition_status(lab.id, to, None, Precondition::status(from))
                .unwrap();
            events.push(moved.event.id);
        }
        if round == 1 {
            let moved = s
                .transition_status(other.id, Degraded, None, Precondition::status(Active))
                .unwrap();
            other_event = Some(moved.event.id);
        }
    }
    events.reverse();

    let mut mutations = Vec::new();
    let mut other_mutation = None;
    for i in 0..8 {
        let queued = s
            .enqueue_mutation(lab.id, MutationOp::UpdateDecky, "{}", None)
            .unwrap();
        mutations.push((queued.id, MutationState::Pending));
        if i == 4 {
            let queued = s
                .enqueue_mutation(other.id, MutationOp::AddLan, "{}", None)
                .unwrap();
            other_mutation = Some(queued.id);
        }
    }
    // Oldest first: applied, failed, applied, then one left applying.
    for (i, outcome) in [
        MutationState::Applied,
        MutationState::Failed,
        MutationState::Applied,
        MutationState::Applying,
    ]
    .into_iter()
    .enumerate()
    {
        let Claim::Claimed { lease: claim, .. } = s.claim_next_mutation(lab.id).unwrap() else {
            panic!("a mutation is pending");
        };
        match outcome {
            MutationState::Applied => drop(s.mark_mutation_applied(claim).unwrap()),
            MutationState::Failed => drop(s.mark_mutation_failed(claim, "no").unwrap()),
            _ => {}
        }
        mutations[i].1 = outcome;
    }
    mutations.reverse();
    Lists {
        topologies,
        deleted: deleted.unwrap(),
        lab: lab.id,
        events,
        mutations,
        other_event: other_event.unwrap(),
        other_mutation: other_mutation.unwrap(),
    }
}

/// The ids of a page's rows.
fn ids<T: Listed>(page: &Page<T>) -> Vec<T::Key> {
    page.items.iter().map(Listed::key).collect()
}

/// Every page of a list read `step` rows at a time; each page but the last is full.
fn pages<T: Listed>(
    mut read: impl FnMut(PageRequest<T::Key>) -> Result<Page<T>, StoreError>,
    step: usize,
) -> Vec<T::Key> {
    let mut keys = Vec::new();
    let mut request = PageRequest::first(step);
    for _ in 0..1000 {
        let page = read(request).unwrap();
        keys.extend(page.items.iter().map(Listed::key));
        match page.next_page(step) {
            Some(next) => {
                assert_eq!(page.items.len(), step, "a page before the last is full");
                request = next;
            }
            None => return keys,
        }
    }
    panic!("more than 1000 pages");
}

/// Paging through each list in pages of any size gives exactly the whole list, in order,
/// filtered or not; a filtered page is full of matching rows unless it is the last.
pub fn pages_join_up_to_each_whole_list<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let l = populate(s);
    let topology_filters = [None]
        .into_iter()
        .chain(TopologyStatus::ALL.into_iter().map(Some));
    let state_filters = [None]
        .into_iter()
        .chain(MutationState::ALL.into_iter().map(Some));
    for step in [1, 2, 3, 5, MAX_PAGE] {
        for status in topology_filters.clone() {
            let expected: Vec<TopologyId> = l
                .topologies
                .iter()
                .filter(|(_, st)| status.is_none_or(|f| *st == f))
                .map(|(id, _)| *id)
                .collect();
            let read = pages(|p| s.list_topologies(status, p), step);
            assert_eq!(read, expected, "topologies {status:?} in pages of {step}");
        }
        let read = pages(|p| s.list_status_events(l.lab, p), step);
        assert_eq!(read, l.events, "events in pages of {step}");
        for state in state_filters.clone() {
            let expected: Vec<MutationId> = l
                .mutations
                .iter()
                .filter(|(_, st)| state.is_none_or(|f| *st == f))
                .map(|(id, _)| *id)
                .collect();
            let read = pages(|p| s.list_mutations(l.lab, state, p), step);
            assert_eq!(read, expected, "mutations {state:?} in pages of {step}");
        }
    }
}

/// A limit of 0 or over [`MAX_PAGE`] is refused naming `limit`, before the topology is
/// looked up; [`MAX_PAGE`] itself is taken.
pub fn page_limits_are_checked<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let lab = reach(s, "lab", TopologyStatus::Active);
    let nowhere = TopologyId::new(999_999);
    for limit in [0, MAX_PAGE + 1, usize::MAX] {
        let refusals = [
            s.list_topologies(None, PageRequest::first(limit)).err(),
            s.list_topologies(Some(TopologyStatus::Active), PageRequest::first(limit))
                .err(),
            s.list_status_events(lab.id, PageRequest::first(limit))
                .err(),
            s.list_status_events(nowhere, PageRequest::first(limit))
                .err(),
            s.list_mutations(lab.id, None, PageRequest::after(MutationId::new(5), limit))
                .err(),
            s.list_mutations(nowhere, None, PageRequest::first(limit))
                .err(),
        ];
        for refused in refusals {
            let e = refused.expect("refused");
            assert!(
                matches!(&e, StoreError::Invalid { field: "limit", .. }),
                "{limit}: {e:?}"
            );
            assert!(e.to_string().contains(&MAX_PAGE.to_string()), "{e}");
        }
    }
    let page = s
        .list_topologies(None, PageRequest::first(MAX_PAGE))
        .unwrap();
    assert_eq!((page.items.len(), page.is_last()), (1, true));
    let events = s.list_status_events(lab.id, PageRequest::first(MAX_PAGE));
    assert_eq!(events.unwrap().items.len(), 2);
    let missing = s.list_status_events(nowhere, PageRequest::first(1));
    expect_err!(missing, StoreError::NotFound { .. });
    let missing = s.list_mutations(nowhere, None, PageRequest::first(1));
    expect_err!(missing, StoreError::NotFound { .. });
}

/// A cursor is a position, not a row: past the end it gives an empty last page; a deleted
/// row's id, another topology's event or mutation id, or an id no row has, positions the
/// page by its number. Rows added at the far end while paging do not disturb later pages.
pub fn cursors_are_positions<H: Harness>() {
    let (_h, s) = setup::<H>();
    let s = &*s;
    let l = populate(s);
    let topologies: Vec<TopologyId> = l.topologies.iter().map(|(id, _)| *id).collect();
    let newest = *topologies.last().unwrap();
    let oldest_event = *l.events.last().unwrap();
    let oldest_mutation = l.mutations.last().unwrap().0;

    // Past the end: empty, and the last page.
    for after in [newest, TopologyId::new(u64::MAX)] {
        let page = s
            .list_topologies(None, PageRequest::after(after, 5))
            .unwrap();
        assert!(page.items.is_empty() && page.is_last(), "{after}: {page:?}");
    }
    for after in [oldest_event, EventId::new(1)] {
        let page = s
            .list_status_events(l.lab, PageRequest::after(after, 5))
            .unwrap();
        assert!(page.items.is_empty() && page.is_last(), "{after}: {page:?}");
    }
    let page = s
        .list_mutations(l.lab, None, PageRequest::after(oldest_mutation, 5))
        .unwrap();
    assert!(page.items.is_empty() && page.is_last(), "{page:?}");

    // Before the start: the whole list.
    let all = s
        .list_topologies(None, PageRequest::after(TopologyId::new(0), MAX_PAGE))
        .unwrap();
    assert_eq!(ids(&all), topologies);
    let all = s
        .list_status_events(l.lab, PageRequest::after(EventId::new(u64::MAX), MAX_PAGE))
        .unwrap();
    assert_eq!(ids(&all), l.events);
    let all = s
        .list_mutations(
            l.lab,
            None,
            PageRequest::after(MutationId::new(u64::MAX), MAX_PAGE),
        )
        .unwrap();
    let expected: Vec<MutationId> = l.mutations.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids(&all), expected);

    // A deleted topology's id: the page goes on from the next id.
    let after_deleted = s
        .list_topologies(None, PageRequest::after(l.deleted, MAX_PAGE))
        .unwrap();
    let later: Vec<TopologyId> = topologies
        .iter()
        .copied()
        .filter(|id| *id > l.deleted)
        .collect();
    assert_eq!(ids(&after_deleted), later);

    // Another topology's event and mutation: this topology's rows older than it.
    let page = s
        .list_status_events(l.lab, PageRequest::after(l.other_event, MAX_PAGE))
        .unwrap();
    let older: Vec<EventId> = l
        .events
        .iter()
        .copied()
        .filter(|id| *id < l.other_event)
        .collect();
    assert!(!older.is_empty() && older.len() < l.events.len());
    assert_eq!(ids(&page), older);
    let page = s
        .list_mutations(l.lab, None, PageRequest::after(l.other_mutation, MAX_PAGE))
        .unwrap();
    let older: Vec<MutationId> = expected
        .iter()
        .copied()
        .filter(|id| *id < l.other_mutation)
        .collect();
    assert!(!older.is_empty() && older.len() < expected.len());
    assert_eq!(ids(&page), older);

    // A newer event written between two pages of the log does not shift the later pages.
    let first = s.list_status_events(l.lab, PageRequest::first(3)).unwrap();
    s.transition_status(
        l.lab,
        TopologyStatus::Degraded,
        None,
        Precondition::status(TopologyStatus::Active),
    )
    .unwrap();
    let mut read = ids(&first);
    let mut request = first.next_page(3);
    while let Some(r) = request {
        let page = s.list_status_events(l.lab, r).unwrap();
        request = page.next_page(3);
        read.extend(page.items.iter().map(Listed::key));
    }
    assert_eq!(read, l.events);
}
