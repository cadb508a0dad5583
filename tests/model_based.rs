//! Model-based testing of every store backend against a plain reference model.
//!
//! proptest generates sequences of abstract operations (every operation of the
//! [`TopologyStore`] contract: create, legal and illegal transitions with and without
//! preconditions, child edit batches with current, stale and absent expected versions,
//! the single-edit methods, runtime field writes, enqueue, claim, live edits, marks,
//! delete, the resync flag, filtered listings; batches whose edits name rows added by
//! earlier edits of the same batch, and references that are out of range, to a later
//! edit or to an edit that adds no such row). Each abstract operation is resolved into a
//! concrete call against the model's state (picking existing, deleted, foreign or never
//! minted ids), run on the model and on the backend, and the outcomes are compared:
//! `Ok` vs `Err`, the whole error (kind and every field, through its `Debug` text), the
//! returned rows and versions. After every step the whole store is compared too (every
//! topology's detail, status log and mutation queue). Timestamps are the only thing not
//! compared. A divergence fails with the shrunk sequence and the concrete calls up to it.
//!
//! The model is single-threaded and deliberately naive: each topology is a set of
//! `BTreeMap`s, a batch is checked by applying it to a clone, ids come from counters that
//! advance only on success, and a batch-local reference is the id the clone minted for the
//! edit it names.
//!
//! `TOPOSTATE_PROPTEST_CASES` sets the number of sequences per backend (default 2,000);
//! `TOPOSTATE_PROPTEST_LEN` the maximum sequence length (default 30; sequences are 15 to 30 operations after a 10-call seed).

mod pages;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Instant;

use pages::ListAll;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use topostate::store::{
    ChildEdit, Claim, Decky, DeckyId, DeckyPatch, DeckyRuntime, DeckyState, Edge, EdgeId,
    EditReport, Edited, Entity, EventId, Lan, LanId, LanPatch, Lease, MAX_PAGE, MemoryStore,
    Mutation, MutationId, NewDecky, NewEdge, NewLan, PageRequest, Precondition, RefProblem, RowRef,
    StatusEvent, StoreError, Timestamp, TopologyDetail, TopologyRecord, TopologyStore, Touched,
    Transitioned, check_coord, check_name, check_text,
};
use topostate::{
    MutationOp, MutationState, TopologyId, TopologyNotEditable, TopologyStatus, VersionConflict,
    VersionError, check_and_bump,
};

// ---- abstract operations (what proptest generates and shrinks) --------------------------

/// An expected version, resolved against the model's current version.
#[derive(Clone, Debug)]
enum Ver {
    None,
    Current,
    /// Odd: `current + k`; even: `current - k` (saturating at 0).
    Stale(u8),
}

#[derive(Clone, Debug)]
enum Target {
    /// The `n`-th legal next status (modulo their count), or an illegal one at a terminal.
    Legal(u8),
    Any(TopologyStatus),
}

#[derive(Clone, Debug)]
enum PreStatus {
    None,
    Current,
    Any(TopologyStatus),
}

#[derive(Clone, Copy, Debug)]
enum Coord {
    None,
    At(i8),
    NegZero,
    NaN,
}

/// How an edit names a LAN or decky.
#[derive(Clone, Copy, Debug)]
enum Pick {
    /// An id: one of this topology's, another's, a deleted one or one never minted.
    Id(u8),
    /// A batch-local reference: mostly to an earlier edit adding that kind of row,
    /// sometimes to a later edit, past the batch, or to an edit adding nothing of the kind.
    Batch(u8),
}

#[derive(Clone, Debug)]
enum EditSpec {
    AddLan {
        name: u8,
        subnet: u8,
        dmz: bool,
        x: Coord,
    },
    UpdateLan {
        lan: Pick,
        name: Option<u8>,
        subnet: Option<u8>,
        dmz: Option<bool>,
        y: Option<Coord>,
    },
    DeleteLan {
        lan: Pick,
    },
    AddDecky {
        name: u8,
        services: Vec<u8>,
        config: Option<u8>,
        y: Coord,
    },
    UpdateDecky {
        decky: Pick,
        name: Option<u8>,
        services: Option<Vec<u8>>,
        config: Option<Option<u8>>,
        x: Option<Coord>,
    },
    DeleteDecky {
        decky: Pick,
    },
    AddEdge {
        decky: Pick,
        lan: Pick,
        bridge: bool,
    },
    DeleteEdge {
        edge: u8,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        name: u8,
    },
    Transition {
        topo: u8,
        to: Target,
        reason: Option<u8>,
        pre_status: PreStatus,
        pre_version: Ver,
    },
    Edit {
        topo: u8,
        ver: Ver,
        /// A one-edit batch goes through the named method (`add_lan`, …) instead.
        single: bool,
        edits: Vec<EditSpec>,
    },
    SetNetworkId {
        lan: u8,
        value: Option<u8>,
    },
    SetRuntime {
        decky: u8,
        state: Option<u8>,
        ip: Option<Option<u8>>,
        error: Option<Option<u8>>,
    },
    Enqueue {
        topo: u8,
        op: u8,
        payload: u8,
        ver: Ver,
    },
    Claim {
        topo: u8,
    },
    ApplyLive {
        mutation: u8,
        foreign: bool,
        edits: Vec<EditSpec>,
    },
    MarkApplied {
        mutation: u8,
        foreign: bool,
    },
    MarkFailed {
        mutation: u8,
        foreign: bool,
        reason: u8,
    },
    Delete {
        topo: u8,
        ver: Ver,
    },
    SetResync {
        topo: u8,
        on: bool,
    },
    ListByStatus {
        status: Option<TopologyStatus>,
        page: PageSpec,
    },
    ListMutations {
        topo: u8,
        state: Option<MutationState>,
        page: PageSpec,
    },
    ListEvents {
        topo: u8,
        page: PageSpec,
    },
}

/// A page to read: a limit (mostly small, sometimes out of range) and a cursor, a raw id
/// that may or may not be a row of the list (or of any list).
#[derive(Clone, Copy, Debug)]
struct PageSpec {
    limit: usize,
    after: Option<u64>,
}

impl PageSpec {
    fn request<K: Copy>(self, key: fn(u64) -> K) -> PageRequest<K> {
        match self.after {
            Some(a) => PageRequest::after(key(a), self.limit),
            None => PageRequest::first(self.limit),
        }
    }
}

fn page_spec() -> impl Strategy<Value = PageSpec> {
    let limit = prop_oneof![
        8 => 1..=4usize,
        1 => Just(0usize),
        1 => Just(MAX_PAGE),
        1 => Just(MAX_PAGE + 1),
    ];
    let after = prop::option::weighted(0.5, prop_oneof![8 => 0..40u64, 1 => Just(u64::MAX)]);
    (limit, after).prop_map(|(limit, after)| PageSpec { limit, after })
}

// Each accented name also comes in NFD (the same name), and a few names hide a character.
const TOPOLOGY_NAMES: [&str; 13] = [
    "lab",
    "prod",
    "ünï",
    "lab",
    "prod",
    "u\u{308}ni\u{308}",
    "lab",
    "prod",
    "",
    " ",
    "\u{200b}",
    "lab\u{202e}",
    "\u{a0}",
];
const CHILD_NAMES: [&str; 13] = [
    "a",
    "b",
    "c",
    "d",
    "é",
    "a",
    "b",
    "c",
    "",
    "x\u{7}",
    "e\u{301}",
    "\u{2066}a",
    "\u{feff}",
];
const TEXTS: [&str; 4] = ["", "10.0.0.0/24", "{\"k\":1}", "ünïcode ✓"];
const SERVICES: [&str; 3] = ["ssh", "http", ""];

fn status() -> impl Strategy<Value = TopologyStatus> {
    prop::sample::select(TopologyStatus::ALL.to_vec())
}

fn ver() -> impl Strategy<Value = Ver> {
    prop_oneof![
        2 => Just(Ver::None),
        5 => Just(Ver::Current),
        2 => (1u8..4).prop_map(Ver::Stale),
    ]
}

fn coord() -> impl Strategy<Value = Coord> {
    prop_oneof![
        4 => Just(Coord::None),
        4 => any::<i8>().prop_map(Coord::At),
        1 => Just(Coord::NegZero),
        1 => Just(Coord::NaN),
    ]
}

fn pick_row() -> impl Strategy<Value = Pick> {
    prop_oneof![
        3 => any::<u8>().prop_map(Pick::Id),
        1 => any::<u8>().prop_map(Pick::Batch),
    ]
}

fn edit_spec() -> impl Strategy<Value = EditSpec> {
    let sel = any::<u8>;
    let row = pick_row;
    prop_oneof![
        6 => (sel(), sel(), any::<bool>(), coord())
            .prop_map(|(name, subnet, dmz, x)| EditSpec::AddLan { name, subnet, dmz, x }),
        2 => (row(), prop::option::of(sel()), prop::option::of(sel()),
              prop::option::of(any::<bool>()), prop::option::of(coord()))
            .prop_map(|(lan, name, subnet, dmz, y)| EditSpec::UpdateLan { lan, name, subnet, dmz, y }),
        1 => row().prop_map(|lan| EditSpec::DeleteLan { lan }),
        6 => (sel(), prop::collection::vec(sel(), 0..3), prop::option::of(sel()), coord())
            .prop_map(|(name, services, config, y)| EditSpec::AddDecky { name, services, config, y }),
        2 => (row(), prop::option::of(sel()), prop::option::of(prop::collection::vec(sel(), 0..3)),
              prop::option::of(prop::option::of(sel())), prop::option::of(coord()))
            .prop_map(|(decky, name, services, config, x)| EditSpec::UpdateDecky { decky, name, services, config, x }),
        1 => row().prop_map(|decky| EditSpec::DeleteDecky { decky }),
        6 => (row(), row(), any::<bool>())
            .prop_map(|(decky, lan, bridge)| EditSpec::AddEdge { decky, lan, bridge }),
        2 => sel().prop_map(|edge| EditSpec::DeleteEdge { edge }),
    ]
}

/// A canvas save: a new LAN and a new decky, the edge between them and one to a stored
/// LAN, by batch-local references, then a few random edits (which may refer back).
fn canvas_save() -> impl Strategy<Value = Vec<EditSpec>> {
    let sel = any::<u8>;
    (
        sel(),
        sel(),
        sel(),
        any::<bool>(),
        prop::collection::vec(edit_spec(), 0..3),
    )
        .prop_map(|(lan, decky, stored_lan, bridge, tail)| {
            let mut specs = vec![
                EditSpec::AddLan {
                    name: lan,
                    subnet: lan,
                    dmz: bridge,
                    x: Coord::None,
                },
                EditSpec::AddDecky {
                    name: decky,
                    services: vec![],
                    config: None,
                    y: Coord::None,
                },
                // Selector 0 picks the first earlier add of the kind.
                EditSpec::AddEdge {
                    decky: Pick::Batch(0),
                    lan: Pick::Batch(0),
                    bridge,
                },
                EditSpec::AddEdge {
                    decky: Pick::Batch(0),
                    lan: Pick::Id(stored_lan),
                    bridge: false,
                },
            ];
            specs.extend(tail);
            specs
        })
}

fn op() -> impl Strategy<Value = Op> {
    let sel = any::<u8>;
    prop_oneof![
        2 => sel().prop_map(|name| Op::Create { name }),
        10 => (
            sel(),
            prop_oneof![9 => sel().prop_map(Target::Legal), 1 => status().prop_map(Target::Any)],
            prop::option::of(sel()),
            prop_oneof![
                2 => Just(PreStatus::None),
                3 => Just(PreStatus::Current),
                1 => status().prop_map(PreStatus::Any),
            ],
            ver(),
        )
            .prop_map(|(topo, to, reason, pre_status, pre_version)| Op::Transition {
                topo, to, reason, pre_status, pre_version,
            }),
        12 => (sel(), ver(), any::<bool>(), prop::collection::vec(edit_spec(), 0..6))
            .prop_map(|(topo, ver, single, edits)| Op::Edit { topo, ver, single, edits }),
        // Mostly a pending topology (selectors 0 to 3 modulo 8 pick one when there is one).
        4 => (sel().prop_map(|s| s & !0b111 | (s & 0b11)), ver(), canvas_save())
            .prop_map(|(topo, ver, edits)| Op::Edit { topo, ver, single: false, edits }),
        1 => (sel(), prop::option::of(sel()))
            .prop_map(|(lan, value)| Op::SetNetworkId { lan, value }),
        1 => (sel(), prop::option::of(sel()), prop::option::of(prop::option::of(sel())),
              prop::option::of(prop::option::of(sel())))
            .prop_map(|(decky, state, ip, error)| Op::SetRuntime { decky, state, ip, error }),
        5 => (sel(), sel(), sel(), ver())
            .prop_map(|(topo, op, payload, ver)| Op::Enqueue { topo, op, payload, ver }),
        5 => sel().prop_map(|topo| Op::Claim { topo }),
        3 => (sel(), prop::bool::weighted(0.1), prop::collection::vec(edit_spec(), 0..4))
            .prop_map(|(mutation, foreign, edits)| Op::ApplyLive { mutation, foreign, edits }),
        // A live canvas save under a claim: batch-local references on the live path.
        1 => (sel(), canvas_save())
            .prop_map(|(mutation, edits)| Op::ApplyLive { mutation, foreign: false, edits }),
        2 => (sel(), prop::bool::weighted(0.1))
            .prop_map(|(mutation, foreign)| Op::MarkApplied { mutation, foreign }),
        2 => (sel(), prop::bool::weighted(0.1), sel())
            .prop_map(|(mutation, foreign, reason)| Op::MarkFailed { mutation, foreign, reason }),
        1 => (sel(), ver()).prop_map(|(topo, ver)| Op::Delete { topo, ver }),
        1 => (sel(), any::<bool>()).prop_map(|(topo, on)| Op::SetResync { topo, on }),
        1 => (prop::option::of(status()), page_spec())
            .prop_map(|(status, page)| Op::ListByStatus { status, page }),
        1 => (sel(), prop::option::of(prop::sample::select(MutationState::ALL.to_vec())), page_spec())
            .prop_map(|(topo, state, page)| Op::ListMutations { topo, state, page }),
        1 => (sel(), page_spec()).prop_map(|(topo, page)| Op::ListEvents { topo, page }),
    ]
}

// ---- concrete calls ---------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Call {
    Create(String),
    Transition(TopologyId, TopologyStatus, Option<String>, Precondition),
    Edit(TopologyId, Option<u64>, bool, Vec<ChildEdit>),
    SetNetworkId(LanId, Option<String>),
    SetRuntime(DeckyId, DeckyRuntime),
    Enqueue(TopologyId, MutationOp, String, Option<u64>),
    Claim(TopologyId),
    ApplyLive(MutationId, TopologyId, u64, Vec<ChildEdit>),
    MarkApplied(MutationId, TopologyId, u64),
    MarkFailed(MutationId, TopologyId, u64, String),
    Delete(TopologyId, Option<u64>),
    SetResync(TopologyId, bool),
    List(Option<TopologyStatus>, PageRequest<TopologyId>),
    ListMutations(TopologyId, Option<MutationState>, PageRequest<MutationId>),
    ListEvents(TopologyId, PageRequest<EventId>),
}

/// What a call returned, with timestamps zeroed; errors as their `Debug` text (every field).
#[derive(Debug, PartialEq)]
enum Out {
    Record(TopologyRecord),
    Transitioned(Transitioned),
    Report(EditReport),
    Unit,
    Enqueued(Edited<MutationId>),
    Claimed(Mutation, MutationId, TopologyId),
    Busy(MutationId),
    Empty,
    Mutation(Mutation),
    Records(Vec<TopologyRecord>, Option<TopologyId>),
    Mutations(Vec<Mutation>, Option<MutationId>),
    Events(Vec<StatusEvent>, Option<EventId>),
    Err(String),
}

const ZERO: Timestamp = Timestamp::from_micros(0);

fn norm_record(mut r: TopologyRecord) -> TopologyRecord {
    r.created_at = ZERO;
    r.status_changed_at = ZERO;
    r
}

fn norm_event(mut e: StatusEvent) -> StatusEvent {
    e.at = ZERO;
    e
}

fn norm_mutation(mut m: Mutation) -> Mutation {
    m.requested_at = ZERO;
    m.applied_at = m.applied_at.map(|_| ZERO);
    m.claimed_at = m.claimed_at.map(|_| ZERO);
    m.lease_until = m.lease_until.map(|_| ZERO);
    m
}

/// The model's fencing of a claim with `token` on `mutation`, as the contract says: another
/// token is `LeaseLost`, else anything but `applying` is `MutationState`.
fn fence(mutation: &Mutation, token: u64) -> Option<StoreError> {
    if mutation.token != token {
        return Some(StoreError::LeaseLost {
            id: mutation.id,
            token,
            current_token: mutation.token,
            holder: mutation.holder.clone(),
            state: mutation.state,
            lease_until: mutation.lease_until.map(|_| ZERO),
        });
    }
    (mutation.state != MutationState::Applying).then(|| StoreError::WrongMutationState {
        id: mutation.id,
        expected: MutationState::Applying,
        found: mutation.state,
    })
}

fn out<T>(r: Result<T, StoreError>, f: impl FnOnce(T) -> Out) -> Out {
    match r {
        Ok(v) => f(v),
        // Times are the store's; the model keeps only whether one is set.
        Err(StoreError::LeaseLost {
            id,
            token,
            current_token,
            holder,
            state,
            lease_until,
        }) => Out::Err(format!(
            "{:?}",
            StoreError::LeaseLost {
                id,
                token,
                current_token,
                holder,
                state,
                lease_until: lease_until.map(|_| ZERO),
            }
        )),
        Err(e) => Out::Err(format!("{e:?}")),
    }
}

/// Runs a call on a backend.
fn run(s: &dyn TopologyStore, call: &Call) -> Out {
    match call {
        Call::Create(name) => out(s.create_topology(name), |r| Out::Record(norm_record(r))),
        Call::Transition(id, to, reason, pre) => out(
            s.transition_status(*id, *to, reason.as_deref(), *pre),
            |t| {
                Out::Transitioned(Transitioned::new(
                    norm_record(t.topology),
                    norm_event(t.event),
                ))
            },
        ),
        Call::Edit(id, v, true, edits) if edits.len() == 1 && edits[0].refers_to_batch() => {
            out(s.edit_one(*id, *v, edits[0].clone()), |e| {
                Out::Report(EditReport::new(vec![e.id], e.version))
            })
        }
        Call::Edit(id, v, true, edits) if edits.len() == 1 => {
            let (id, v) = (*id, *v);
            let stored = |r: RowRef<LanId>| r.stored().unwrap_or(LanId::new(ABSENT));
            let stored_decky = |r: RowRef<DeckyId>| r.stored().unwrap_or(DeckyId::new(ABSENT));
            let result = match edits[0].clone() {
                ChildEdit::AddLan(new) => s
                    .add_lan(id, new, v)
                    .map(|e| (Touched::Lan(e.id), e.version)),
                ChildEdit::UpdateLan(lan, patch) => s
                    .update_lan(id, stored(lan), patch, v)
                    .map(|e| (Touched::Lan(e.id), e.version)),
                ChildEdit::DeleteLan(lan) => s
                    .delete_lan(id, stored(lan), v)
                    .map(|e| (Touched::Lan(e.id), e.version)),
                ChildEdit::AddDecky(new) => s
                    .add_decky(id, new, v)
                    .map(|e| (Touched::Decky(e.id), e.version)),
                ChildEdit::UpdateDecky(decky, patch) => s
                    .update_decky(id, stored_decky(decky), patch, v)
                    .map(|e| (Touched::Decky(e.id), e.version)),
                ChildEdit::DeleteDecky(decky) => s
                    .delete_decky(id, stored_decky(decky), v)
                    .map(|e| (Touched::Decky(e.id), e.version)),
                ChildEdit::AddEdge(new) => s
                    .add_edge(id, new, v)
                    .map(|e| (Touched::Edge(e.id), e.version)),
                ChildEdit::DeleteEdge(edge) => s
                    .delete_edge(id, edge, v)
                    .map(|e| (Touched::Edge(e.id), e.version)),
                other => unreachable!("an edit kind the model does not know: {other:?}"),
            };
            out(result, |(touched, version)| {
                Out::Report(EditReport::new(vec![touched], version))
            })
        }
        Call::Edit(id, v, _, edits) => out(s.edit(*id, *v, edits), Out::Report),
        Call::SetNetworkId(lan, value) => {
            out(s.set_lan_network_id(*lan, value.as_deref()), |()| Out::Unit)
        }
        Call::SetRuntime(decky, runtime) => {
            out(s.set_decky_runtime(*decky, runtime), |()| Out::Unit)
        }
        Call::Enqueue(id, op, payload, v) => {
            out(s.enqueue_mutation(*id, *op, payload, *v), Out::Enqueued)
        }
        Call::Claim(id) => out(s.claim_next_mutation(*id), |c| match c {
            Claim::Claimed {
                mutation,
                lease: claim,
            } => Out::Claimed(norm_mutation(mutation), claim.id(), claim.topology_id()),
            Claim::Busy { applying } => Out::Busy(applying),
            Claim::Empty => Out::Empty,
        }),
        Call::ApplyLive(m, t, k, edits) => out(
            s.apply_live(&Lease::from_parts(*m, *t, *k), edits),
            Out::Report,
        ),
        Call::MarkApplied(m, t, k) => out(
            s.mark_mutation_applied(Lease::from_parts(*m, *t, *k)),
            |m| Out::Mutation(norm_mutation(m)),
        ),
        Call::MarkFailed(m, t, k, reason) => out(
            s.mark_mutation_failed(Lease::from_parts(*m, *t, *k), reason),
            |m| Out::Mutation(norm_mutation(m)),
        ),
        Call::Delete(id, v) => out(s.delete_topology(*id, *v), |()| Out::Unit),
        Call::SetResync(id, on) => out(s.set_needs_resync(*id, *on), |()| Out::Unit),
        Call::List(status, page) => out(s.list_topologies(*status, *page), |p| {
            Out::Records(p.items.into_iter().map(norm_record).collect(), p.next)
        }),
        Call::ListMutations(id, state, page) => out(s.list_mutations(*id, *state, *page), |p| {
            Out::Mutations(p.items.into_iter().map(norm_mutation).collect(), p.next)
        }),
        Call::ListEvents(id, page) => out(s.list_status_events(*id, *page), |p| {
            Out::Events(p.items.into_iter().map(norm_event).collect(), p.next)
        }),
    }
}

/// What a backend holds, as the contract orders it, timestamps zeroed: every topology
/// row, and for those in scope (all when `scope` is `None`) its detail, status log and
/// mutation queue.
#[derive(Debug, PartialEq)]
struct Snapshot(Vec<(TopologyRecord, Option<Contents>)>);

type Contents = (TopologyDetail, Vec<StatusEvent>, Vec<Mutation>);

fn in_scope(scope: Option<&[TopologyId]>, id: TopologyId) -> bool {
    scope.is_none_or(|ids| ids.contains(&id))
}

fn snapshot(s: &dyn TopologyStore, scope: Option<&[TopologyId]>) -> Result<Snapshot, String> {
    let all = s.all_topologies(None).map_err(|e| format!("{e:?}"))?;
    let mut rows = Vec::new();
    for rec in all {
        let contents = if in_scope(scope, rec.id) {
            let mut detail = s.topology_detail(rec.id).map_err(|e| format!("{e:?}"))?;
            detail.topology = norm_record(detail.topology);
            let events = s.all_events(rec.id).map_err(|e| format!("{e:?}"))?;
            let mutations = s
                .all_mutations(rec.id, None)
                .map_err(|e| format!("{e:?}"))?;
            Some((
                detail,
                events.into_iter().map(norm_event).collect(),
                mutations.into_iter().map(norm_mutation).collect(),
            ))
        } else {
            None
        };
        rows.push((norm_record(rec), contents));
    }
    Ok(Snapshot(rows))
}

// ---- the reference model -----------------------------------------------------------------

/// The model's page: every matching row from the cursor on, in the list's order, cut at
/// `limit`; the next page starts after the last row kept, if any row was cut.
fn model_page<T, K>(
    rows: impl Iterator<Item = T>,
    key: fn(&T) -> K,
    limit: usize,
) -> (Vec<T>, Option<K>) {
    let mut all: Vec<T> = rows.collect();
    let more = all.len() > limit;
    all.truncate(limit);
    let next = if more { all.last().map(key) } else { None };
    (all, next)
}

/// The limits a store takes, and its refusal of the others.
fn model_limit(limit: usize) -> Result<usize, StoreError> {
    if (1..=MAX_PAGE).contains(&limit) {
        return Ok(limit);
    }
    Err(StoreError::Invalid {
        field: "limit",
        problem: format!("{limit} rows; a page holds 1 to {MAX_PAGE} rows"),
    })
}

/// A name as stores keep it: in NFC, computed here without the library.
fn stored_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;

    name.nfc().collect()
}

/// A coordinate as stores keep it: `-0.0` as `0.0`.
fn stored_coord(c: Option<f64>) -> Option<f64> {
    c.map(|v| if v == 0.0 { 0.0 } else { v })
}

/// An edit with its names and coordinates as stores keep them.
fn stored_form(mut edit: ChildEdit) -> ChildEdit {
    let patch_coord = |c: &mut Option<Option<f64>>| *c = c.map(stored_coord);
    match &mut edit {
        ChildEdit::AddLan(new) => {
            new.name = stored_name(&new.name);
            (new.x, new.y) = (stored_coord(new.x), stored_coord(new.y));
        }
        ChildEdit::AddDecky(new) => {
            new.name = stored_name(&new.name);
            (new.x, new.y) = (stored_coord(new.x), stored_coord(new.y));
        }
        ChildEdit::UpdateLan(_, patch) => {
            patch.name = patch.name.as_deref().map(stored_name);
            patch_coord(&mut patch.x);
            patch_coord(&mut patch.y);
        }
        ChildEdit::UpdateDecky(_, patch) => {
            patch.name = patch.name.as_deref().map(stored_name);
            patch_coord(&mut patch.x);
            patch_coord(&mut patch.y);
        }
        ChildEdit::DeleteLan(_)
        | ChildEdit::DeleteDecky(_)
        | ChildEdit::AddEdge(_)
        | ChildEdit::DeleteEdge(_) => {}
        other => unreachable!("an edit kind the model does not know: {other:?}"),
    }
    edit
}

const FREE_FORM: &str = "free-form edits are pending-only; use the mutation queue after deploy";
const LIVE: &str = "the mutation queue is only open for 'active' or 'degraded' topologies";
const DELETE: &str =
    "delete is allowed from 'pending', 'torn_down' or 'failed'; tear it down first";

fn gate(status: TopologyStatus, allowed: &[TopologyStatus], reason: &str) -> Option<StoreError> {
    (!allowed.contains(&status)).then(|| {
        StoreError::NotEditable(TopologyNotEditable {
            status,
            reason: Some(reason.into()),
        })
    })
}

fn free_form_gate(status: TopologyStatus) -> Option<StoreError> {
    gate(status, &[TopologyStatus::Pending], FREE_FORM)
}

fn live_gate(status: TopologyStatus) -> Option<StoreError> {
    gate(
        status,
        &[TopologyStatus::Active, TopologyStatus::Degraded],
        LIVE,
    )
}

fn delete_gate(status: TopologyStatus) -> Option<StoreError> {
    use TopologyStatus::*;
    gate(status, &[Pending, TornDown, Failed], DELETE)
}

fn not_found(entity: Entity, id: u64) -> StoreError {
    StoreError::NotFound { entity, id }
}

fn conflict(current: u64, expected: u64) -> StoreError {
    StoreError::VersionConflict(VersionConflict { current, expected })
}

fn version_error(e: VersionError) -> StoreError {
    match e {
        VersionError::Conflict(c) => StoreError::VersionConflict(c),
        VersionError::Overflow(o) => StoreError::VersionOverflow(o),
        other => panic!("unexpected version error {other:?}"),
    }
}

/// The error that wins among the given ones, by the contract's precedence.
fn first(errors: impl IntoIterator<Item = Option<StoreError>>) -> Option<StoreError> {
    errors.into_iter().fold(None, StoreError::first)
}

#[derive(Clone, Debug)]
struct MTopo {
    rec: TopologyRecord,
    lans: BTreeMap<LanId, Lan>,
    deckies: BTreeMap<DeckyId, Decky>,
    edges: BTreeMap<EdgeId, Edge>,
    /// Append order.
    events: Vec<StatusEvent>,
    mutations: BTreeMap<MutationId, Mutation>,
}

/// The model's reading of a batch-local reference of edit `at`: a stored id as it is
/// (`false`); `Batch(i)` as the id edit `i` minted in the staged copy (`true`), if edit `i`
/// comes earlier and added a row of `kind`; otherwise the refusal naming the edit.
fn model_ref(
    reference: RowRef<u64>,
    at: usize,
    field: &'static str,
    edits: &[ChildEdit],
    touched: &[Touched],
    kind: Entity,
) -> Result<(u64, bool), StoreError> {
    let i = match reference {
        RowRef::Stored(id) => return Ok((id, false)),
        RowRef::Batch(i) => i,
    };
    let added = match (edits.get(i), touched.get(i)) {
        (Some(ChildEdit::AddLan(_)), Some(Touched::Lan(id))) if kind == Entity::Lan => {
            Some(id.get())
        }
        (Some(ChildEdit::AddDecky(_)), Some(Touched::Decky(id))) if kind == Entity::Decky => {
            Some(id.get())
        }
        _ => None,
    };
    let problem = if i >= edits.len() {
        RefProblem::OutOfBatch { len: edits.len() }
    } else if i >= at {
        RefProblem::NotEarlier
    } else if let Some(id) = added {
        return Ok((id, true));
    } else {
        RefProblem::NotAnAdd { expected: kind }
    };
    Err(StoreError::BadReference {
        edit: at,
        field,
        target: i,
        problem,
    })
}

/// Id counters: the last id minted of each kind.
#[derive(Clone, Copy, Debug, Default)]
struct Seq {
    topology: u64,
    lan: u64,
    decky: u64,
    edge: u64,
    event: u64,
    mutation: u64,
}

#[derive(Debug, Default)]
struct Model {
    topos: BTreeMap<TopologyId, MTopo>,
    seq: Seq,
    /// Every id ever minted (deleted ones included), for the selectors.
    topo_ids: Vec<TopologyId>,
    lan_ids: Vec<LanId>,
    decky_ids: Vec<DeckyId>,
    edge_ids: Vec<EdgeId>,
    mutation_ids: Vec<(MutationId, TopologyId)>,
}

const QUEUE_OPEN: [TopologyStatus; 2] = [TopologyStatus::Active, TopologyStatus::Degraded];

/// An id no store ever minted in a test sequence.
const ABSENT: u64 = 1_000_000;

/// Picks an id: mostly a live one of `preferred`, sometimes any live one, one ever minted
/// (perhaps deleted), or one never minted.
fn pick<T: Copy>(preferred: &[T], live: &[T], minted: &[T], sel: u8, absent: T) -> T {
    let from = |ids: &[T]| ids.get(usize::from(sel / 8) % ids.len().max(1)).copied();
    match sel % 8 {
        0..=4 => from(preferred)
            .or_else(|| from(live))
            .or_else(|| from(minted)),
        5 => from(live).or_else(|| from(minted)),
        6 => from(minted),
        _ => None,
    }
    .unwrap_or(absent)
}

fn text(sel: u8) -> String {
    TEXTS[usize::from(sel) % TEXTS.len()].to_string()
}

impl Model {
    fn topo(&self, sel: u8) -> TopologyId {
        self.topo_in(sel, &TopologyStatus::ALL)
    }

    /// A topology, preferably in one of `statuses`.
    fn topo_in(&self, sel: u8, statuses: &[TopologyStatus]) -> TopologyId {
        let live: Vec<TopologyId> = self.topos.keys().copied().collect();
        let preferred: Vec<TopologyId> = self
            .topos
            .values()
            .filter(|t| statuses.contains(&t.rec.status))
            .map(|t| t.rec.id)
            .collect();
        pick(
            &preferred,
            &live,
            &self.topo_ids,
            sel,
            TopologyId::new(ABSENT),
        )
    }

    fn lan(&self, topology: TopologyId, sel: u8) -> LanId {
        let mine: Vec<LanId> = self
            .topos
            .get(&topology)
            .map_or(vec![], |t| t.lans.keys().copied().collect());
        let live: Vec<LanId> = self
            .topos
            .values()
            .flat_map(|t| t.lans.keys().copied())
            .collect();
        pick(&mine, &live, &self.lan_ids, sel, LanId::new(ABSENT))
    }

    fn decky(&self, topology: TopologyId, sel: u8) -> DeckyId {
        let mine: Vec<DeckyId> = self
            .topos
            .get(&topology)
            .map_or(vec![], |t| t.deckies.keys().copied().collect());
        let live: Vec<DeckyId> = self
            .topos
            .values()
            .flat_map(|t| t.deckies.keys().copied())
            .collect();
        pick(&mine, &live, &self.decky_ids, sel, DeckyId::new(ABSENT))
    }

    fn edge(&self, topology: TopologyId, sel: u8) -> EdgeId {
        let mine: Vec<EdgeId> = self
            .topos
            .get(&topology)
            .map_or(vec![], |t| t.edges.keys().copied().collect());
        let live: Vec<EdgeId> = self
            .topos
            .values()
            .flat_map(|t| t.edges.keys().copied())
            .collect();
        pick(&mine, &live, &self.edge_ids, sel, EdgeId::new(ABSENT))
    }

    fn version_of(&self, id: TopologyId) -> u64 {
        self.topos.get(&id).map_or(1, |t| t.rec.version)
    }

    fn ver(&self, id: TopologyId, v: &Ver) -> Option<u64> {
        let current = self.version_of(id);
        match v {
            Ver::None => None,
            Ver::Current => Some(current),
            Ver::Stale(k) if k % 2 == 1 => Some(current + u64::from(*k)),
            Ver::Stale(k) => Some(current.saturating_sub(u64::from(*k))),
        }
    }

    fn coord(c: Coord) -> Option<f64> {
        match c {
            Coord::None => None,
            Coord::At(v) => Some(f64::from(v) * 0.5),
            Coord::NegZero => Some(-0.0),
            Coord::NaN => Some(f64::NAN),
        }
    }

    fn child_name(sel: u8) -> String {
        CHILD_NAMES[usize::from(sel) % CHILD_NAMES.len()].to_string()
    }

    fn services(sels: &[u8]) -> Vec<String> {
        sels.iter()
            .map(|s| SERVICES[usize::from(*s) % SERVICES.len()].to_string())
            .collect()
    }

    /// A batch-local reference for edit `at` of `specs`: mostly to an earlier edit that
    /// adds the kind of row (`adds`), else to the edit itself, a later one, one past the
    /// batch, or an earlier one that adds no such row.
    fn batch_ref<I>(
        specs: &[EditSpec],
        at: usize,
        sel: u8,
        adds: fn(&EditSpec) -> bool,
    ) -> RowRef<I> {
        let earlier: Vec<usize> = (0..at).filter(|&j| adds(&specs[j])).collect();
        let k = usize::from(sel / 8);
        RowRef::Batch(match sel % 8 {
            0..=4 if !earlier.is_empty() => earlier[k % earlier.len()],
            5 if at > 0 => k % at,
            6 => at + k % 2,
            _ => specs.len() + k % 2,
        })
    }

    fn lan_pick(
        &self,
        topology: TopologyId,
        specs: &[EditSpec],
        at: usize,
        pick: Pick,
    ) -> RowRef<LanId> {
        match pick {
            Pick::Id(sel) => self.lan(topology, sel).into(),
            Pick::Batch(sel) => {
                Self::batch_ref(specs, at, sel, |s| matches!(s, EditSpec::AddLan { .. }))
            }
        }
    }

    fn decky_pick(
        &self,
        topology: TopologyId,
        specs: &[EditSpec],
        at: usize,
        pick: Pick,
    ) -> RowRef<DeckyId> {
        match pick {
            Pick::Id(sel) => self.decky(topology, sel).into(),
            Pick::Batch(sel) => {
                Self::batch_ref(specs, at, sel, |s| matches!(s, EditSpec::AddDecky { .. }))
            }
        }
    }

    /// The concrete edits of a batch.
    fn edits(&self, topology: TopologyId, specs: &[EditSpec]) -> Vec<ChildEdit> {
        (0..specs.len())
            .map(|at| self.edit(topology, specs, at))
            .collect()
    }

    fn edit(&self, topology: TopologyId, specs: &[EditSpec], at: usize) -> ChildEdit {
        let lan = |pick| self.lan_pick(topology, specs, at, pick);
        let decky = |pick| self.decky_pick(topology, specs, at, pick);
        let spec = &specs[at];
        match spec {
            EditSpec::AddLan {
                name,
                subnet,
                dmz,
                x,
            } => ChildEdit::AddLan({
                let mut lan = NewLan::new(Self::child_name(*name), text(*subnet)).with_dmz(*dmz);
                (lan.x, lan.y) = (Self::coord(*x), Some(1.0));
                lan
            }),
            EditSpec::UpdateLan {
                lan: l,
                name,
                subnet,
                dmz,
                y,
            } => ChildEdit::UpdateLan(lan(*l), {
                let mut patch = LanPatch::new();
                (patch.name, patch.subnet) = (name.map(Self::child_name), subnet.map(text));
                (patch.is_dmz, patch.y) = (*dmz, y.map(Self::coord));
                patch
            }),
            EditSpec::DeleteLan { lan: l } => ChildEdit::DeleteLan(lan(*l)),
            EditSpec::AddDecky {
                name,
                services,
                config,
                y,
            } => ChildEdit::AddDecky({
                let mut decky =
                    NewDecky::new(Self::child_name(*name)).with_services(Self::services(services));
                (decky.config, decky.y) = (config.map(text), Self::coord(*y));
                decky
            }),
            EditSpec::UpdateDecky {
                decky: d,
                name,
                services,
                config,
                x,
            } => ChildEdit::UpdateDecky(decky(*d), {
                let mut patch = DeckyPatch::new();
                patch.name = name.map(Self::child_name);
                patch.services = services.as_deref().map(Self::services);
                patch.config = config.map(|c| c.map(text));
                patch.x = x.map(Self::coord);
                patch
            }),
            EditSpec::DeleteDecky { decky: d } => ChildEdit::DeleteDecky(decky(*d)),
            EditSpec::AddEdge {
                decky: d,
                lan: l,
                bridge,
            } => ChildEdit::AddEdge(
                NewEdge::new(decky(*d), lan(*l))
                    .with_bridge(*bridge)
                    .with_forwards_l3(!*bridge),
            ),
            EditSpec::DeleteEdge { edge } => ChildEdit::DeleteEdge(self.edge(topology, *edge)),
        }
    }

    fn claim_parts(&self, sel: u8, foreign: bool) -> (MutationId, TopologyId, u64) {
        let applying: Vec<(MutationId, TopologyId)> = self
            .topos
            .values()
            .flat_map(|t| t.mutations.values())
            .filter(|m| m.state == MutationState::Applying)
            .map(|m| (m.id, m.topology_id))
            .collect();
        let (m, t) = pick(
            &applying,
            &self.mutation_ids,
            &self.mutation_ids,
            sel,
            (MutationId::new(ABSENT), TopologyId::new(1)),
        );
        // The token the model holds for the mutation, or (one draw in four) the one before
        // it: a zombie holder's, or a forged one for a mutation never claimed.
        let current = self
            .topos
            .get(&t)
            .and_then(|topo| topo.mutations.get(&m))
            .map_or(1, |row| row.token);
        let token = if sel % 4 == 3 {
            current.saturating_sub(1)
        } else {
            current
        };
        if foreign {
            (m, TopologyId::new(t.get() % 3 + 1), token)
        } else {
            (m, t, token)
        }
    }

    /// Resolves an abstract operation into a concrete call against the current state.
    fn resolve(&self, op: &Op) -> Call {
        match op {
            Op::Create { name } => {
                Call::Create(TOPOLOGY_NAMES[usize::from(*name) % TOPOLOGY_NAMES.len()].to_string())
            }
            Op::Transition {
                topo,
                to,
                reason,
                pre_status,
                pre_version,
            } => {
                let moving: Vec<TopologyStatus> = TopologyStatus::ALL
                    .into_iter()
                    .filter(|s| !s.is_terminal())
                    .collect();
                let id = self.topo_in(*topo, &moving);
                let current = self
                    .topos
                    .get(&id)
                    .map_or(TopologyStatus::Pending, |t| t.rec.status);
                let to = match to {
                    // Mostly forward (the first declared edge: pending → deploying →
                    // active ⇄ degraded, failed → tearing_down → torn_down).
                    Target::Legal(n) => {
                        let legal: Vec<_> = current.legal_next().collect();
                        if legal.is_empty() {
                            TopologyStatus::Active
                        } else if n % 4 != 0 {
                            legal[0]
                        } else {
                            legal[usize::from(*n / 4) % legal.len()]
                        }
                    }
                    Target::Any(s) => *s,
                };
                let status = match pre_status {
                    PreStatus::None => None,
                    PreStatus::Current => Some(current),
                    PreStatus::Any(s) => Some(*s),
                };
                Call::Transition(id, to, reason.map(text), {
                    let mut pre = Precondition::none();
                    (pre.status, pre.version) = (status, self.ver(id, pre_version));
                    pre
                })
            }
            Op::Edit {
                topo,
                ver,
                single,
                edits,
            } => {
                let id = self.topo_in(*topo, &[TopologyStatus::Pending]);
                Call::Edit(id, self.ver(id, ver), *single, self.edits(id, edits))
            }
            Op::SetNetworkId { lan, value } => {
                Call::SetNetworkId(self.lan(TopologyId::new(ABSENT), *lan), value.map(text))
            }
            Op::SetRuntime {
                decky,
                state,
                ip,
                error,
            } => Call::SetRuntime(self.decky(TopologyId::new(ABSENT), *decky), {
                let mut runtime = DeckyRuntime::new();
                runtime.state =
                    state.map(|s| DeckyState::ALL[usize::from(s) % DeckyState::ALL.len()]);
                runtime.ip = ip.map(|v| v.map(text));
                runtime.last_error = error.map(|v| v.map(text));
                runtime
            }),
            Op::Enqueue {
                topo,
                op,
                payload,
                ver,
            } => {
                let id = self.topo_in(*topo, &QUEUE_OPEN);
                Call::Enqueue(
                    id,
                    MutationOp::ALL[usize::from(*op) % MutationOp::ALL.len()],
                    text(*payload),
                    self.ver(id, ver),
                )
            }
            Op::Claim { topo } => Call::Claim(self.topo_in(*topo, &QUEUE_OPEN)),
            Op::ApplyLive {
                mutation,
                foreign,
                edits,
            } => {
                let (m, t, k) = self.claim_parts(*mutation, *foreign);
                Call::ApplyLive(m, t, k, self.edits(t, edits))
            }
            Op::MarkApplied { mutation, foreign } => {
                let (m, t, k) = self.claim_parts(*mutation, *foreign);
                Call::MarkApplied(m, t, k)
            }
            Op::MarkFailed {
                mutation,
                foreign,
                reason,
            } => {
                let (m, t, k) = self.claim_parts(*mutation, *foreign);
                Call::MarkFailed(m, t, k, text(*reason))
            }
            Op::Delete { topo, ver } => {
                let id = self.topo(*topo);
                Call::Delete(id, self.ver(id, ver))
            }
            Op::SetResync { topo, on } => Call::SetResync(self.topo(*topo), *on),
            Op::ListByStatus { status, page } => Call::List(*status, page.request(TopologyId::new)),
            Op::ListMutations { topo, state, page } => {
                Call::ListMutations(self.topo(*topo), *state, page.request(MutationId::new))
            }
            Op::ListEvents { topo, page } => {
                Call::ListEvents(self.topo(*topo), page.request(EventId::new))
            }
        }
    }

    fn get(&self, id: TopologyId) -> Result<&MTopo, StoreError> {
        self.topos
            .get(&id)
            .ok_or_else(|| not_found(Entity::Topology, id.get()))
    }

    fn lan_owner(&self, lan: LanId) -> Option<TopologyId> {
        self.topos
            .values()
            .find(|t| t.lans.contains_key(&lan))
            .map(|t| t.rec.id)
    }

    fn decky_owner(&self, decky: DeckyId) -> Option<TopologyId> {
        self.topos
            .values()
            .find(|t| t.deckies.contains_key(&decky))
            .map(|t| t.rec.id)
    }

    /// Why an edge end that is not (referable) in the topology fails.
    fn missing_end(
        entity: Entity,
        id: u64,
        owner: Option<TopologyId>,
        topology: TopologyId,
    ) -> StoreError {
        match owner {
            Some(owner) if owner != topology => StoreError::ForeignEnd {
                entity,
                id,
                owner: owner.get(),
                topology: topology.get(),
            },
            _ => not_found(entity, id),
        }
    }

    /// Checks a batch against a copy of the topology, edit by edit; on success the copy
    /// with the batch applied, what each edit touched, and the advanced id counters.
    fn stage(
        &self,
        id: TopologyId,
        edits: &[ChildEdit],
    ) -> Result<(MTopo, Vec<Touched>, Seq), StoreError> {
        let mut t = self.get(id)?.clone();
        let mut seq = self.seq;
        let edits: Vec<ChildEdit> = edits.iter().cloned().map(stored_form).collect();
        let mut touched = Vec::new();
        // Rows added by this batch: a stored id cannot name them, only a batch-local
        // reference can.
        let (mut new_lans, mut new_deckies, mut new_edges) = (vec![], vec![], vec![]);
        for (at, edit) in edits.iter().enumerate() {
            // The edit's batch-local references come first: each becomes the id its edit
            // minted in this copy (and `true`: it may name a row of the batch).
            let lan_ref = |r, field| model_ref(r, at, field, &edits, &touched, Entity::Lan);
            let decky_ref = |r, field| model_ref(r, at, field, &edits, &touched, Entity::Decky);
            match edit {
                ChildEdit::AddLan(new) => {
                    check_name("lan name", &new.name)?;
                    check_text("subnet", &new.subnet)?;
                    check_coord("lan x", new.x)?;
                    check_coord("lan y", new.y)?;
                    if t.lans.values().any(|l| l.name == new.name) {
                        return Err(StoreError::Duplicate {
                            entity: Entity::Lan,
                            name: new.name.clone(),
                        });
                    }
                    seq.lan += 1;
                    let lan = LanId::new(seq.lan);
                    t.lans.insert(lan, Lan::new(lan, id, new.clone()));
                    new_lans.push(lan);
                    touched.push(Touched::Lan(lan));
                }
                ChildEdit::UpdateLan(lan, patch) => {
                    let (lan, batch) = lan_ref(lan.map(LanId::get), "lan id")?;
                    let lan = &LanId::new(lan);
                    let current = t
                        .lans
                        .get(lan)
                        .filter(|_| batch || !new_lans.contains(lan))
                        .ok_or_else(|| not_found(Entity::Lan, lan.get()))?
                        .name
                        .clone();
                    if let Some(name) = &patch.name {
                        check_name("lan name", name)?;
                    }
                    if let Some(subnet) = &patch.subnet {
                        check_text("subnet", subnet)?;
                    }
                    check_coord("lan x", patch.x.flatten())?;
                    check_coord("lan y", patch.y.flatten())?;
                    if let Some(name) = &patch.name
                        && *name != current
                        && t.lans.values().any(|l| l.name == *name)
                    {
                        return Err(StoreError::Duplicate {
                            entity: Entity::Lan,
                            name: name.clone(),
                        });
                    }
                    let row = t.lans.get_mut(lan).unwrap();
                    if let Some(name) = &patch.name {
                        row.name.clone_from(name);
                    }
                    if let Some(subnet) = &patch.subnet {
                        row.subnet.clone_from(subnet);
                    }
                    if let Some(dmz) = patch.is_dmz {
                        row.is_dmz = dmz;
                    }
                    if let Some(x) = patch.x {
                        row.x = x;
                    }
                    if let Some(y) = patch.y {
                        row.y = y;
                    }
                    touched.push(Touched::Lan(*lan));
                }
                ChildEdit::DeleteLan(lan) => {
                    let (lan, batch) = lan_ref(lan.map(LanId::get), "lan id")?;
                    let lan = &LanId::new(lan);
                    if !t.lans.contains_key(lan) || (!batch && new_lans.contains(lan)) {
                        return Err(not_found(Entity::Lan, lan.get()));
                    }
                    // The decky whose edge to the LAN is oldest, among those it would strand.
                    let orphan = t.edges.values().filter(|e| e.lan == *lan).find_map(|e| {
                        let count = t.edges.values().filter(|o| o.decky == e.decky).count();
                        (count == 1).then_some(e.decky)
                    });
                    if let Some(decky) = orphan {
                        return Err(StoreError::LanInUse {
                            lan: *lan,
                            decky,
                            decky_name: t.deckies[&decky].name.clone(),
                        });
                    }
                    t.lans.remove(lan);
                    t.edges.retain(|_, e| e.lan != *lan);
                    touched.push(Touched::Lan(*lan));
                }
                ChildEdit::AddDecky(new) => {
                    check_name("decky name", &new.name)?;
                    for service in &new.services {
                        check_text("decky service", service)?;
                    }
                    if let Some(config) = &new.config {
                        check_text("decky config", config)?;
                    }
                    check_coord("decky x", new.x)?;
                    check_coord("decky y", new.y)?;
                    if t.deckies.values().any(|d| d.name == new.name) {
                        return Err(StoreError::Duplicate {
                            entity: Entity::Decky,
                            name: new.name.clone(),
                        });
                    }
                    seq.decky += 1;
                    let decky = DeckyId::new(seq.decky);
                    t.deckies.insert(decky, Decky::new(decky, id, new.clone()));
                    new_deckies.push(decky);
                    touched.push(Touched::Decky(decky));
                }
                ChildEdit::UpdateDecky(decky, patch) => {
                    let (decky, batch) = decky_ref(decky.map(DeckyId::get), "decky id")?;
                    let decky = &DeckyId::new(decky);
                    let current = t
                        .deckies
                        .get(decky)
                        .filter(|_| batch || !new_deckies.contains(decky))
                        .ok_or_else(|| not_found(Entity::Decky, decky.get()))?
                        .name
                        .clone();
                    if let Some(name) = &patch.name {
                        check_name("decky name", name)?;
                    }
                    for service in patch.services.as_deref().unwrap_or_default() {
                        check_text("decky service", service)?;
                    }
                    if let Some(Some(config)) = &patch.config {
                        check_text("decky config", config)?;
                    }
                    check_coord("decky x", patch.x.flatten())?;
                    check_coord("decky y", patch.y.flatten())?;
                    if let Some(name) = &patch.name
                        && *name != current
                        && t.deckies.values().any(|d| d.name == *name)
                    {
                        return Err(StoreError::Duplicate {
                            entity: Entity::Decky,
                            name: name.clone(),
                        });
                    }
                    let row = t.deckies.get_mut(decky).unwrap();
                    if let Some(name) = &patch.name {
                        row.name.clone_from(name);
                    }
                    if let Some(services) = &patch.services {
                        row.services.clone_from(services);
                    }
                    if let Some(config) = &patch.config {
                        row.config.clone_from(config);
                    }
                    if let Some(x) = patch.x {
                        row.x = x;
                    }
                    if let Some(y) = patch.y {
                        row.y = y;
                    }
                    touched.push(Touched::Decky(*decky));
                }
                ChildEdit::DeleteDecky(decky) => {
                    let (decky, batch) = decky_ref(decky.map(DeckyId::get), "decky id")?;
                    let decky = &DeckyId::new(decky);
                    if !t.deckies.contains_key(decky) || (!batch && new_deckies.contains(decky)) {
                        return Err(not_found(Entity::Decky, decky.get()));
                    }
                    t.deckies.remove(decky);
                    t.edges.retain(|_, e| e.decky != *decky);
                    touched.push(Touched::Decky(*decky));
                }
                ChildEdit::AddEdge(new) => {
                    let (decky, decky_batch) =
                        decky_ref(new.decky.map(DeckyId::get), "edge decky")?;
                    let (lan, lan_batch) = lan_ref(new.lan.map(LanId::get), "edge lan")?;
                    let (decky, lan) = (DeckyId::new(decky), LanId::new(lan));
                    let decky_error = (!t.deckies.contains_key(&decky)
                        || (!decky_batch && new_deckies.contains(&decky)))
                    .then(|| {
                        Self::missing_end(Entity::Decky, decky.get(), self.decky_owner(decky), id)
                    });
                    let lan_error = (!t.lans.contains_key(&lan)
                        || (!lan_batch && new_lans.contains(&lan)))
                    .then(|| Self::missing_end(Entity::Lan, lan.get(), self.lan_owner(lan), id));
                    if let Some(e) = StoreError::first(decky_error, lan_error) {
                        return Err(e);
                    }
                    if t.edges.values().any(|e| e.decky == decky && e.lan == lan) {
                        return Err(StoreError::Duplicate {
                            entity: Entity::Edge,
                            name: format!("decky {decky} ↔ lan {lan}"),
                        });
                    }
                    seq.edge += 1;
                    let edge = EdgeId::new(seq.edge);
                    t.edges.insert(edge, {
                        let mut row = Edge::new(edge, id, decky, lan);
                        (row.is_bridge, row.forwards_l3) = (new.is_bridge, new.forwards_l3);
                        row
                    });
                    new_edges.push(edge);
                    touched.push(Touched::Edge(edge));
                }
                ChildEdit::DeleteEdge(edge) => {
                    if !t.edges.contains_key(edge) || new_edges.contains(edge) {
                        return Err(not_found(Entity::Edge, edge.get()));
                    }
                    t.edges.remove(edge);
                    touched.push(Touched::Edge(*edge));
                }
                other => unreachable!("an edit kind the model does not know: {other:?}"),
            }
        }
        Ok((t, touched, seq))
    }

    /// Commits a staged batch: the topology copy, the new ids for the selectors.
    fn commit(&mut self, t: MTopo, seq: Seq) {
        self.lan_ids
            .extend((self.seq.lan + 1..=seq.lan).map(LanId::new));
        self.decky_ids
            .extend((self.seq.decky + 1..=seq.decky).map(DeckyId::new));
        self.edge_ids
            .extend((self.seq.edge + 1..=seq.edge).map(EdgeId::new));
        self.seq = seq;
        self.topos.insert(t.rec.id, t);
    }

    /// Checks, and if nothing refuses, writes a batch (free-form or live).
    fn run_edits(
        &mut self,
        id: TopologyId,
        refusal: Option<StoreError>,
        version: Result<u64, StoreError>,
        edits: &[ChildEdit],
    ) -> Result<EditReport, StoreError> {
        let staged = self.stage(id, edits);
        let (next, version_error) = match version {
            Ok(v) => (v, None),
            Err(e) => (0, Some(e)),
        };
        let edit_error = staged.as_ref().err().map(clone_error);
        if let Some(e) = first([refusal, version_error, edit_error]) {
            return Err(e);
        }
        let (mut t, touched, seq) = staged.unwrap_or_else(|_| unreachable!());
        t.rec.version = next;
        self.commit(t, seq);
        Ok(EditReport::new(touched, next))
    }

    fn exec(&mut self, call: &Call) -> Result<Out, StoreError> {
        Ok(match call {
            Call::Create(name) => {
                let name = &stored_name(name);
                check_name("topology name", name)?;
                if self.topos.values().any(|t| t.rec.name == *name) {
                    return Err(StoreError::Duplicate {
                        entity: Entity::Topology,
                        name: name.clone(),
                    });
                }
                self.seq.topology += 1;
                let id = TopologyId::new(self.seq.topology);
                let rec = TopologyRecord::new(id, name.clone(), ZERO);
                self.topo_ids.push(id);
                self.topos.insert(
                    id,
                    MTopo {
                        rec: rec.clone(),
                        lans: BTreeMap::new(),
                        deckies: BTreeMap::new(),
                        edges: BTreeMap::new(),
                        events: Vec::new(),
                        mutations: BTreeMap::new(),
                    },
                );
                Out::Record(rec)
            }
            Call::Transition(id, to, reason, pre) => {
                let t = self.get(*id)?;
                let (from, current) = (t.rec.status, t.rec.version);
                let e = first([
                    pre.status
                        .filter(|s| *s != from)
                        .map(|expected| StoreError::StaleStatus {
                            expected,
                            found: from,
                        }),
                    reason
                        .as_deref()
                        .and_then(|r| check_text("reason", r).err()),
                    (!from.can_transition_to(*to))
                        .then_some(StoreError::IllegalTransition { from, to: *to }),
                    pre.version
                        .filter(|v| *v != current)
                        .map(|expected| conflict(current, expected)),
                ]);
                if let Some(e) = e {
                    return Err(e);
                }
                self.seq.event += 1;
                let mut event =
                    StatusEvent::new(EventId::new(self.seq.event), *id, from, *to, ZERO);
                event.reason.clone_from(reason);
                let t = self.topos.get_mut(id).unwrap();
                t.rec.status = *to;
                t.rec.reason.clone_from(reason);
                t.events.push(event.clone());
                Out::Transitioned(Transitioned::new(t.rec.clone(), event))
            }
            Call::Edit(id, expected, _, edits) => {
                let t = self.get(*id)?;
                let current = t.rec.version;
                let gate = free_form_gate(t.rec.status);
                let version = if edits.iter().all(ChildEdit::is_noop) {
                    match expected {
                        Some(v) if *v != current => Err(conflict(current, *v)),
                        _ => Ok(current),
                    }
                } else {
                    check_and_bump(current, *expected).map_err(version_error)
                };
                Out::Report(self.run_edits(*id, gate, version, edits)?)
            }
            Call::SetNetworkId(lan, value) => {
                let owner = self
                    .lan_owner(*lan)
                    .ok_or_else(|| not_found(Entity::Lan, lan.get()))?;
                if let Some(v) = value {
                    check_text("network id", v)?;
                }
                let t = self.topos.get_mut(&owner).unwrap();
                t.lans.get_mut(lan).unwrap().network_id.clone_from(value);
                Out::Unit
            }
            Call::SetRuntime(decky, runtime) => {
                let owner = self
                    .decky_owner(*decky)
                    .ok_or_else(|| not_found(Entity::Decky, decky.get()))?;
                if let Some(Some(ip)) = &runtime.ip {
                    check_text("decky ip", ip)?;
                }
                if let Some(Some(error)) = &runtime.last_error {
                    check_text("decky last error", error)?;
                }
                let t = self.topos.get_mut(&owner).unwrap();
                let row = t.deckies.get_mut(decky).unwrap();
                if let Some(state) = runtime.state {
                    row.state = state;
                }
                if let Some(ip) = &runtime.ip {
                    row.ip.clone_from(ip);
                }
                if let Some(error) = &runtime.last_error {
                    row.last_error.clone_from(error);
                }
                Out::Unit
            }
            Call::Enqueue(id, op, payload, expected) => {
                let t = self.get(*id)?;
                let version = check_and_bump(t.rec.version, *expected).map_err(version_error);
                let e = first([
                    live_gate(t.rec.status),
                    check_text("payload", payload).err(),
                    version.as_ref().err().map(clone_error),
                ]);
                if let Some(e) = e {
                    return Err(e);
                }
                self.seq.mutation += 1;
                let m = MutationId::new(self.seq.mutation);
                self.mutation_ids.push((m, *id));
                let t = self.topos.get_mut(id).unwrap();
                t.rec.version = version.unwrap_or_else(|_| unreachable!());
                t.mutations
                    .insert(m, Mutation::new(m, *id, *op, payload.clone(), ZERO));
                Out::Enqueued(Edited::new(m, t.rec.version))
            }
            Call::Claim(id) => {
                let t = self.get(*id)?;
                if let Some(e) = live_gate(t.rec.status) {
                    return Err(e);
                }
                let t = self.topos.get_mut(id).unwrap();
                if let Some(m) = t
                    .mutations
                    .values()
                    .find(|m| m.state == MutationState::Applying)
                {
                    Out::Busy(m.id)
                } else if let Some(m) = t
                    .mutations
                    .values_mut()
                    .find(|m| m.state == MutationState::Pending)
                {
                    m.state = MutationState::Applying;
                    m.claimed_at = Some(ZERO);
                    m.lease_until = Some(ZERO);
                    m.attempts += 1;
                    m.token += 1;
                    Out::Claimed(m.clone(), m.id, *id)
                } else {
                    Out::Empty
                }
            }
            Call::ApplyLive(m, id, k, edits) => {
                let t = self.get(*id)?;
                let mutation = t
                    .mutations
                    .get(m)
                    .ok_or_else(|| not_found(Entity::Mutation, m.get()))?;
                let committed = mutation
                    .edited_by
                    .filter(|e| e != k)
                    .map(|edited_by| StoreError::EditsCommitted { id: *m, edited_by });
                let refusal = first([fence(mutation, *k), committed, live_gate(t.rec.status)]);
                let current = t.rec.version;
                let report = self.run_edits(*id, refusal, Ok(current), edits)?;
                let t = self.topos.get_mut(id).unwrap();
                t.mutations.get_mut(m).unwrap().edited_by = Some(*k);
                Out::Report(report)
            }
            Call::MarkApplied(m, id, k) => Out::Mutation(self.mark(*m, *id, *k, None)?),
            Call::MarkFailed(m, id, k, reason) => {
                Out::Mutation(self.mark(*m, *id, *k, Some(reason))?)
            }
            Call::Delete(id, expected) => {
                let t = self.get(*id)?;
                let current = t.rec.version;
                let e = first([
                    delete_gate(t.rec.status),
                    expected
                        .filter(|v| *v != current)
                        .map(|v| conflict(current, v)),
                ]);
                if let Some(e) = e {
                    return Err(e);
                }
                self.topos.remove(id);
                Out::Unit
            }
            Call::SetResync(id, on) => {
                self.get(*id)?;
                self.topos.get_mut(id).unwrap().rec.needs_resync = *on;
                Out::Unit
            }
            Call::List(status, page) => {
                let limit = model_limit(page.limit())?;
                let rows = self
                    .topos
                    .values()
                    .filter(|t| status.is_none_or(|s| t.rec.status == s))
                    .filter(|t| page.cursor().is_none_or(|c| t.rec.id > c))
                    .map(|t| t.rec.clone());
                let (items, next) = model_page(rows, |r| r.id, limit);
                Out::Records(items, next)
            }
            Call::ListMutations(id, state, page) => {
                let limit = model_limit(page.limit())?;
                let rows = self
                    .get(*id)?
                    .mutations
                    .values()
                    .rev()
                    .filter(|m| state.is_none_or(|s| m.state == s))
                    .filter(|m| page.cursor().is_none_or(|c| m.id < c))
                    .cloned();
                let (items, next) = model_page(rows, |m| m.id, limit);
                Out::Mutations(items, next)
            }
            Call::ListEvents(id, page) => {
                let limit = model_limit(page.limit())?;
                let rows = self
                    .get(*id)?
                    .events
                    .iter()
                    .rev()
                    .filter(|e| page.cursor().is_none_or(|c| e.id < c))
                    .cloned();
                let (items, next) = model_page(rows, |e| e.id, limit);
                Out::Events(items, next)
            }
        })
    }

    fn mark(
        &mut self,
        m: MutationId,
        id: TopologyId,
        token: u64,
        reason: Option<&String>,
    ) -> Result<Mutation, StoreError> {
        let t = self.get(id)?;
        let mutation = t
            .mutations
            .get(&m)
            .ok_or_else(|| not_found(Entity::Mutation, m.get()))?;
        let e = first([
            fence(mutation, token),
            reason.and_then(|r| check_text("reason", r).err()),
        ]);
        if let Some(e) = e {
            return Err(e);
        }
        let mutation = self
            .topos
            .get_mut(&id)
            .unwrap()
            .mutations
            .get_mut(&m)
            .unwrap();
        mutation.state = if reason.is_some() {
            MutationState::Failed
        } else {
            MutationState::Applied
        };
        mutation.applied_at = Some(ZERO);
        mutation.reason = reason.cloned();
        Ok(mutation.clone())
    }

    fn snapshot(&self, scope: Option<&[TopologyId]>) -> Snapshot {
        Snapshot(
            self.topos
                .values()
                .map(|t| {
                    if !in_scope(scope, t.rec.id) {
                        return (t.rec.clone(), None);
                    }
                    let mut lans: Vec<Lan> = t.lans.values().cloned().collect();
                    lans.sort_by(|a, b| a.name.cmp(&b.name));
                    let mut deckies: Vec<Decky> = t.deckies.values().cloned().collect();
                    deckies.sort_by(|a, b| a.name.cmp(&b.name));
                    (
                        t.rec.clone(),
                        Some((
                            TopologyDetail::new(
                                t.rec.clone(),
                                lans,
                                deckies,
                                t.edges.values().copied().collect(),
                            ),
                            t.events.iter().rev().cloned().collect(),
                            t.mutations.values().rev().cloned().collect(),
                        )),
                    )
                })
                .collect(),
        )
    }
}

/// `StoreError` is not `Clone`: rebuild the variants the model produces.
fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound { entity, id } => StoreError::NotFound {
            entity: *entity,
            id: *id,
        },
        StoreError::NotEditable(n) => StoreError::NotEditable(n.clone()),
        StoreError::LanInUse {
            lan,
            decky,
            decky_name,
        } => StoreError::LanInUse {
            lan: *lan,
            decky: *decky,
            decky_name: decky_name.clone(),
        },
        StoreError::ForeignEnd {
            entity,
            id,
            owner,
            topology,
        } => StoreError::ForeignEnd {
            entity: *entity,
            id: *id,
            owner: *owner,
            topology: *topology,
        },
        StoreError::VersionConflict(c) => StoreError::VersionConflict(*c),
        StoreError::VersionOverflow(o) => StoreError::VersionOverflow(*o),
        StoreError::Duplicate { entity, name } => StoreError::Duplicate {
            entity: *entity,
            name: name.clone(),
        },
        StoreError::Invalid { field, problem } => StoreError::Invalid {
            field,
            problem: problem.clone(),
        },
        StoreError::BadReference {
            edit,
            field,
            target,
            problem,
        } => StoreError::BadReference {
            edit: *edit,
            field,
            target: *target,
            problem: *problem,
        },
        other => panic!("the model does not produce {other:?}"),
    }
}

// ---- the runner ---------------------------------------------------------------------------

/// Every sequence starts from two seeded topologies (so that the generated operations
/// rarely miss): `lab` (id 1) with LANs 1, 2, deckies 1, 2 and edges d1–l1, d2–l1, d2–l2
/// (deleting LAN 1 would strand decky 1), and `prod` (id 2) with LAN 3, decky 3, edge d3–l3,
/// `active`, with two mutations queued.
fn prologue() -> Vec<Call> {
    let (lab, prod) = (TopologyId::new(1), TopologyId::new(2));
    let edge = |d, l| ChildEdit::AddEdge(NewEdge::new(DeckyId::new(d), LanId::new(l)));
    vec![
        Call::Create("lab".into()),
        Call::Edit(
            lab,
            Some(1),
            false,
            vec![
                ChildEdit::AddLan(NewLan::new("a", "10.0.1.0/24")),
                ChildEdit::AddLan(NewLan::new("b", "10.0.2.0/24")),
                ChildEdit::AddDecky(NewDecky::new("a")),
                ChildEdit::AddDecky(NewDecky::new("b")),
            ],
        ),
        Call::Edit(
            lab,
            Some(2),
            false,
            vec![edge(1, 1), edge(2, 1), edge(2, 2)],
        ),
        Call::Create("prod".into()),
        Call::Edit(
            prod,
            None,
            false,
            vec![
                ChildEdit::AddLan(NewLan::new("a", "10.0.3.0/24")),
                ChildEdit::AddDecky(NewDecky::new("a")),
            ],
        ),
        Call::Edit(prod, None, false, vec![edge(3, 3)]),
        Call::Transition(prod, TopologyStatus::Deploying, None, Precondition::none()),
        Call::Transition(prod, TopologyStatus::Active, None, Precondition::none()),
        Call::Enqueue(prod, MutationOp::AddLan, "{}".into(), Some(1)),
        Call::Enqueue(prod, MutationOp::AddDecky, "{}".into(), None),
    ]
}

/// Runs one sequence on a fresh model and a fresh backend, comparing after every step.
fn check_sequence(
    store: &dyn TopologyStore,
    full: bool,
    ops: &[Op],
    executed: &Cell<u64>,
    tally: &RefCell<BTreeMap<String, u64>>,
) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let mut log = Vec::new();
    let prologue = prologue();
    let steps = prologue.iter().map(Ok).chain(ops.iter().map(Err));
    for (step, op) in steps.enumerate() {
        let call = match op {
            Ok(call) => call.clone(),
            Err(op) => model.resolve(op),
        };
        let touched = match &call {
            Call::Create(_) | Call::List(..) => None,
            Call::Transition(id, ..)
            | Call::Edit(id, ..)
            | Call::Enqueue(id, ..)
            | Call::Claim(id)
            | Call::ApplyLive(_, id, _, _)
            | Call::MarkApplied(_, id, _)
            | Call::MarkFailed(_, id, _, _)
            | Call::Delete(id, _)
            | Call::SetResync(id, _)
            | Call::ListMutations(id, ..)
            | Call::ListEvents(id, _) => Some(*id),
            Call::SetNetworkId(lan, _) => model.lan_owner(*lan),
            Call::SetRuntime(decky, _) => model.decky_owner(*decky),
        };
        log.push(format!("{step:>3}: {call:?}"));
        let expected = match model.exec(&call) {
            Ok(out) => out,
            Err(e) => Out::Err(format!("{e:?}")),
        };
        let actual = run(store, &call);
        executed.set(executed.get() + 1);
        let kind = outcome_kind(&call, &actual);
        if std::env::var("MB_DEBUG").is_ok_and(|k| kind.contains(&k)) {
            println!("{call:?} => {actual:?}");
        }
        *tally.borrow_mut().entry(kind).or_default() += 1;
        if expected != actual {
            return Err(TestCaseError::fail(format!(
                "divergence at step {step}\ncalls:\n{}\nmodel:   {expected:?}\nbackend: {actual:?}",
                log.join("\n")
            )));
        }
        // Every row after every step; the contents of every topology after every step with
        // `full` (and at the end), else of the topologies the call could have changed.
        let last = step + 1 == prologue.len() + ops.len();
        let scope = (!full && !last).then(|| {
            let mut ids = vec![TopologyId::new(model.seq.topology)];
            ids.extend(touched);
            ids
        });
        let (want, got) = (
            model.snapshot(scope.as_deref()),
            snapshot(store, scope.as_deref()),
        );
        // `==` takes -0.0 for 0.0: the coordinates are compared bit for bit as well.
        if got.as_ref() != Ok(&want)
            || got.as_ref().map(coordinate_bits).ok() != Some(coordinate_bits(&want))
        {
            return Err(TestCaseError::fail(format!(
                "state divergence after step {step}\ncalls:\n{}\nmodel:   {want:?}\nbackend: {got:?}",
                log.join("\n")
            )));
        }
    }
    Ok(())
}

/// Every coordinate of a snapshot, as bits.
fn coordinate_bits(s: &Snapshot) -> Vec<Option<u64>> {
    let bits = |c: Option<f64>| c.map(f64::to_bits);
    s.0.iter()
        .filter_map(|(_, contents)| contents.as_ref())
        .flat_map(|(detail, _, _)| {
            let lans = detail.lans.iter().flat_map(|l| [bits(l.x), bits(l.y)]);
            let deckies = detail.deckies.iter().flat_map(|d| [bits(d.x), bits(d.y)]);
            lans.chain(deckies).collect::<Vec<_>>()
        })
        .collect()
}

/// `"<call> -> <Ok|Claimed|Busy|Empty|error variant>"`, for the coverage tally.
fn outcome_kind(call: &Call, out: &Out) -> String {
    let name = |debug: String| {
        debug
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let result = match out {
        Out::Err(e) if e.starts_with("NotFound") => {
            format!(
                "NotFound({})",
                e.split("entity: ")
                    .nth(1)
                    .map(|t| name(t.to_string()))
                    .unwrap_or_default()
            )
        }
        Out::Err(e) => name(e.clone()),
        Out::Claimed(..) => "Claimed".into(),
        Out::Busy(_) => "Busy".into(),
        Out::Empty => "Empty".into(),
        _ => "Ok".into(),
    };
    // Batches that name their own new rows are counted apart, to show they are run.
    let refers = match call {
        Call::Edit(.., edits) | Call::ApplyLive(.., edits) => {
            edits.iter().any(ChildEdit::refers_to_batch)
        }
        _ => false,
    };
    let call = name(format!("{call:?}"));
    if refers {
        format!("{call} (batch-local references) -> {result}")
    } else {
        format!("{call} -> {result}")
    }
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the sequences on one backend; `full`: compare every topology's contents after
/// every step (else only those the step could change, and everything at the end).
fn run_backend(backend: &str, full: bool, make: impl Fn() -> Box<dyn TopologyStore>) {
    run_backend_with(backend, full, 2_000, make);
}

/// As [`run_backend`], with `default_cases` sequences unless the environment says.
fn run_backend_with(
    backend: &str,
    full: bool,
    default_cases: u32,
    make: impl Fn() -> Box<dyn TopologyStore>,
) {
    let cases = env_number("TOPOSTATE_PROPTEST_CASES", default_cases);
    let max_len = env_number("TOPOSTATE_PROPTEST_LEN", 30).max(2) as usize;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 20_000,
        ..Config::default()
    });
    let sequences = Cell::new(0u64);
    let executed = Cell::new(0u64);
    let tally = RefCell::new(BTreeMap::new());
    let started = Instant::now();
    let strategy = prop::collection::vec(op(), (max_len / 2)..=max_len);
    let result = runner.run(&strategy, |ops| {
        sequences.set(sequences.get() + 1);
        let store = make();
        check_sequence(&*store, full, &ops, &executed, &tally)
    });
    println!(
        "model_based[{backend}]: {} sequences run ({cases} required), {} operations executed, {:.1?}",
        sequences.get(),
        executed.get(),
        started.elapsed()
    );
    let tally = tally.into_inner();
    let line: Vec<String> = tally.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    println!("model_based[{backend}] outcomes: {}", line.join(", "));
    if let Err(e) = result {
        panic!("{backend} diverged from the model: {e}");
    }
    // The sequences must reach every corner, or agreement proves little.
    for must in [
        "Create -> Ok",
        "Create -> Duplicate",
        "Create -> Invalid",
        "Transition -> Ok",
        "Transition -> StaleStatus",
        "Transition -> IllegalTransition",
        "Transition -> VersionConflict",
        "Edit -> Ok",
        "Edit -> NotFound(Lan)",
        "Edit -> NotEditable",
        "Edit -> VersionConflict",
        "Edit -> Duplicate",
        "Edit -> Invalid",
        "Edit -> LanInUse",
        "Edit -> ForeignEnd",
        "Edit (batch-local references) -> Ok",
        "Edit (batch-local references) -> BadReference",
        "SetNetworkId -> Ok",
        "SetRuntime -> Ok",
        "Enqueue -> Ok",
        "Enqueue -> NotEditable",
        "Enqueue -> VersionConflict",
        "Claim -> Claimed",
        "Claim -> Busy",
        "Claim -> Empty",
        "ApplyLive -> Ok",
        "ApplyLive -> WrongMutationState",
        "MarkApplied -> Ok",
        "MarkFailed -> Ok",
        "MarkApplied -> WrongMutationState",
        "Delete -> Ok",
        "Delete -> NotEditable",
        "Delete -> VersionConflict",
    ] {
        if cases >= 500 {
            assert!(tally.contains_key(must), "no sequence reached {must:?}");
        }
    }
}

#[test]
fn memory_store_matches_the_model() {
    run_backend("memory", true, || Box::new(MemoryStore::new()));
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_store_matches_the_model() {
    run_backend("sqlite", false, || {
        Box::new(topostate::store::SqliteStore::open_in_memory().expect("in-memory sqlite"))
    });
}

/// The same with group commit forced on: every write runs in a savepoint of a group, so a
/// refusal is rolled back to its savepoint, never by ending the transaction.
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_store_with_grouping_forced_matches_the_model() {
    run_backend_with("sqlite, grouping forced", false, 500, || {
        Box::new(
            topostate::store::SqliteOptions::new()
                .force_grouping(std::time::Duration::ZERO)
                .open_in_memory()
                .expect("in-memory sqlite"),
        )
    });
}

#[cfg(feature = "tokio")]
#[path = "conformance/awaiting.rs"]
mod awaiting;

/// The same sequences through the async face, awaited on a tokio runtime: the async face
/// of each backend agrees with the model, so with the sync face, call for call.
#[cfg(feature = "tokio")]
mod through_async {
    use std::sync::Arc;

    use topostate::store::MemoryStore;

    use super::awaiting;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("a tokio runtime")
    }

    #[test]
    fn memory_store_async_face_matches_the_model() {
        let rt = runtime();
        // Fewer sequences than the sync face's: the code under them is the same, only the
        // face differs (still enough to reach every outcome the tally requires).
        super::run_backend_with("memory, async face", true, 500, || {
            Box::new(awaiting::Awaiting::new(
                Arc::new(MemoryStore::new()),
                rt.handle().clone(),
            ))
        });
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_store_async_face_matches_the_model() {
        let rt = runtime();
        super::run_backend_with("sqlite, async face", false, 500, || {
            let store = topostate::store::SqliteStore::open_in_memory().expect("in-memory sqlite");
            Box::new(awaiting::Awaiting::new(
                Arc::new(topostate::store::AsyncSqliteStore::new(store)),
                rt.handle().clone(),
            ))
        });
    }
}

/// The model itself: a few hand-checked steps, so a bug in the model is not mistaken for
/// agreement.
#[test]
fn the_model_agrees_with_hand_checked_steps() {
    let mut m = Model::default();
    let lab = TopologyId::new(1);
    assert!(matches!(
        m.exec(&Call::Create("lab".into())),
        Ok(Out::Record(_))
    ));
    let add = |name: &str| ChildEdit::AddLan(NewLan::new(name, "s"));
    assert!(matches!(
        m.exec(&Call::Edit(lab, Some(1), false, vec![add("a"), add("b")])),
        Ok(Out::Report(EditReport { version: 2, .. }))
    ));
    assert!(matches!(
        m.exec(&Call::Edit(lab, Some(1), false, vec![add("a")])),
        Err(StoreError::VersionConflict(VersionConflict {
            current: 2,
            expected: 1
        }))
    ));
    assert!(matches!(
        m.exec(&Call::Transition(
            lab,
            TopologyStatus::Active,
            None,
            Precondition::none()
        )),
        Err(StoreError::IllegalTransition { .. })
    ));
}
