//! The schemas of the OpenAPI document: one documentation twin per wire type.
//!
//! The store's types keep their serde shapes in `store::model`; these twins restate them
//! for the document, and the tests below read a real value's JSON into each twin with every
//! field required and no unknown field allowed, so a twin that drifts from its type fails.

#![allow(dead_code)] // The twins are read only by utoipa's generated code and the tests.

use std::string::String;
use std::vec::Vec;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A topology's status.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = TopologyStatus)]
pub(crate) enum StatusDoc {
    Pending,
    Deploying,
    Active,
    Degraded,
    Failed,
    TearingDown,
    TornDown,
}

/// A queued mutation's state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = MutationState)]
pub(crate) enum MutationStateDoc {
    Pending,
    Applying,
    Applied,
    Failed,
}

/// A live-edit operation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = MutationOp)]
pub(crate) enum MutationOpDoc {
    AddLan,
    RemoveLan,
    AddDecky,
    AttachDecky,
    DetachDecky,
    RemoveDecky,
    UpdateDecky,
    UpdateLan,
}

/// A decky's runtime state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DeckyState)]
pub(crate) enum DeckyStateDoc {
    Pending,
    Running,
    Failed,
    TornDown,
    Degraded,
    TearingDown,
    TeardownFailed,
}

/// A stored topology row.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TopologyRecord)]
pub(crate) struct TopologyRecordDoc {
    id: u64,
    name: String,
    status: StatusDoc,
    /// The optimistic-concurrency version; its ETag is `"<version>"`.
    version: u64,
    reason: Option<String>,
    needs_resync: bool,
    /// RFC 3339, UTC, microseconds.
    created_at: String,
    status_changed_at: String,
}

/// A stored LAN.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Lan)]
pub(crate) struct LanDoc {
    id: u64,
    topology_id: u64,
    name: String,
    subnet: String,
    is_dmz: bool,
    network_id: Option<String>,
    x: Option<f64>,
    y: Option<f64>,
}

/// A stored decky.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Decky)]
pub(crate) struct DeckyDoc {
    id: u64,
    topology_id: u64,
    name: String,
    services: Vec<String>,
    /// JSON text.
    config: Option<String>,
    state: DeckyStateDoc,
    ip: Option<String>,
    last_error: Option<String>,
    x: Option<f64>,
    y: Option<f64>,
}

/// A stored decky ↔ LAN membership.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Edge)]
pub(crate) struct EdgeDoc {
    id: u64,
    topology_id: u64,
    decky: u64,
    lan: u64,
    is_bridge: bool,
    forwards_l3: bool,
}

/// A topology with all its children, read in one snapshot.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TopologyDetail)]
pub(crate) struct TopologyDetailDoc {
    topology: TopologyRecordDoc,
    lans: Vec<LanDoc>,
    deckies: Vec<DeckyDoc>,
    edges: Vec<EdgeDoc>,
}

/// One entry of the status log.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = StatusEvent)]
pub(crate) struct StatusEventDoc {
    id: u64,
    topology_id: u64,
    from: StatusDoc,
    to: StatusDoc,
    at: String,
    reason: Option<String>,
}

/// A queued live edit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Mutation)]
pub(crate) struct MutationDoc {
    id: u64,
    topology_id: u64,
    op: MutationOpDoc,
    /// JSON text.
    payload: String,
    state: MutationStateDoc,
    requested_at: String,
    applied_at: Option<String>,
    reason: Option<String>,
    /// When it was last claimed, by the store's clock.
    claimed_at: Option<String>,
    /// Until when the last claim's lease runs, by the store's clock.
    lease_until: Option<String>,
    /// Who took the last claim, if the claimer named itself.
    holder: Option<String>,
    /// How many times it was claimed.
    attempts: u32,
    /// The fencing token of the last claim (0 before the first).
    token: u64,
    /// The token under which its live edits were committed, if any.
    edited_by: Option<u64>,
}

/// A recorded transition.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Transitioned)]
pub(crate) struct TransitionedDoc {
    topology: TopologyRecordDoc,
    event: StatusEventDoc,
}

/// What a single edit did: the id it touched and the version after it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Edited)]
pub(crate) struct EditedDoc {
    id: u64,
    version: u64,
}

/// The row one edit of a batch touched.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Touched)]
pub(crate) struct TouchedDoc {
    /// `lan`, `decky` or `edge`.
    kind: String,
    id: u64,
}

/// What a batch did: the row each edit touched, in order, and the version after it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EditReport)]
pub(crate) struct EditReportDoc {
    touched: Vec<TouchedDoc>,
    version: u64,
}

/// A LAN to add (`expected_version` may ride along).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewLan)]
pub(crate) struct NewLanDoc {
    name: String,
    subnet: String,
    #[schema(default = false)]
    is_dmz: Option<bool>,
    x: Option<f64>,
    y: Option<f64>,
    expected_version: Option<u64>,
}

/// A change to a LAN; an absent field is left as it is, `null` clears `x`/`y`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LanPatch)]
pub(crate) struct LanPatchDoc {
    name: Option<String>,
    subnet: Option<String>,
    is_dmz: Option<bool>,
    x: Option<f64>,
    y: Option<f64>,
    expected_version: Option<u64>,
}

/// A decky to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewDecky)]
pub(crate) struct NewDeckyDoc {
    name: String,
    services: Option<Vec<String>>,
    /// JSON text.
    config: Option<String>,
    x: Option<f64>,
    y: Option<f64>,
    expected_version: Option<u64>,
}

/// A change to a decky; an absent field is left as it is, `null` clears `config`/`x`/`y`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DeckyPatch)]
pub(crate) struct DeckyPatchDoc {
    name: Option<String>,
    services: Option<Vec<String>>,
    config: Option<String>,
    x: Option<f64>,
    y: Option<f64>,
    expected_version: Option<u64>,
}

/// A LAN or decky named by an edit: its stored id, or `{"batch": i}`, the row edit `i` of
/// the same batch adds (`i` counts from 0 and must be earlier than the naming edit; a
/// reference to nothing earlier is a 422 `bad-reference` problem naming the edit).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = RowRef)]
pub(crate) enum RowRefDoc {
    /// A stored id.
    Stored(u64),
    /// A batch-local reference.
    Batch(BatchRefDoc),
}

/// A batch-local reference: the row that edit `batch` of the same batch adds.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BatchRef)]
pub(crate) struct BatchRefDoc {
    /// The index of an earlier edit of the batch, from 0.
    batch: u64,
}

/// A decky ↔ LAN membership to add; in a batch, either end may be a batch-local reference.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewEdge)]
pub(crate) struct NewEdgeDoc {
    decky: RowRefDoc,
    lan: RowRefDoc,
    is_bridge: Option<bool>,
    forwards_l3: Option<bool>,
    expected_version: Option<u64>,
}

/// One edit of a batch: `op` names it (`add_lan`, `update_lan`, `delete_lan`, `add_decky`,
/// `update_decky`, `delete_decky`, `add_edge`, `delete_edge`), the other members are its
/// arguments (`lan`, `decky`, `edge` for adds; `id` and `patch` for updates; `id` for
/// deletes). The `id` of a LAN or decky edit, and an edge's ends, are `RowRef`s: a
/// stored id or `{"batch": i}`, the row an earlier edit `i` of the batch adds; the `id` of
/// `delete_edge` is a stored edge id.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ChildEdit)]
pub(crate) struct ChildEditDoc {
    op: String,
    id: Option<RowRefDoc>,
    #[schema(value_type = Option<Object>)]
    patch: Option<serde_json::Value>,
    lan: Option<NewLanDoc>,
    decky: Option<NewDeckyDoc>,
    edge: Option<NewEdgeDoc>,
}

/// A batch of child edits, applied all or nothing with one version bump.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = EditBatch)]
pub(crate) struct EditBatchDoc {
    edits: Vec<ChildEditDoc>,
    expected_version: Option<u64>,
}

/// An RFC 9457 problem document; the refusal's fields ride along as extra members.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Problem)]
pub(crate) struct ProblemDoc {
    /// `urn:topostate:problem:<slug>`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        AsyncTopologyStore, ChildEdit, MemoryStore, NewDecky, NewEdge, NewLan, Precondition,
        RowRef, TopologyStore,
    };
    use crate::{MutationOp, TopologyStatus};

    /// Reads `value`'s JSON into the twin `D`, which refuses a missing or an unknown field.
    fn fits<D: serde::de::DeserializeOwned>(value: &impl serde::Serialize) {
        let json = serde_json::to_value(value).unwrap();
        if let Err(e) = serde_json::from_value::<D>(json.clone()) {
            panic!("{} drifted from {json}: {e}", std::any::type_name::<D>());
        }
    }

    #[test]
    fn every_twin_fits_its_type() {
        let store = MemoryStore::new();
        let lab = TopologyStore::create_topology(&store, "lab").unwrap();
        let report = TopologyStore::edit(
            &store,
            lab.id,
            Some(1),
            &[
                ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24")),
                ChildEdit::AddDecky(NewDecky::new("web")),
            ],
        )
        .unwrap();
        let detail = TopologyStore::topology_detail(&store, lab.id).unwrap();
        let edge = TopologyStore::add_edge(
            &store,
            lab.id,
            NewEdge::new(detail.deckies[0].id, detail.lans[0].id),
            None,
        )
        .unwrap();
        let detail = TopologyStore::topology_detail(&store, lab.id).unwrap();
        let moved = TopologyStore::transition_status(
            &store,
            lab.id,
            TopologyStatus::Deploying,
            Some("go"),
            Precondition::none(),
        )
        .unwrap();
        TopologyStore::transition_status(
            &store,
            lab.id,
            TopologyStatus::Active,
            None,
            Precondition::none(),
        )
        .unwrap();
        let queued =
            TopologyStore::enqueue_mutation(&store, lab.id, MutationOp::AddLan, "{}", None)
                .unwrap();
        let mutations = TopologyStore::list_mutations(
            &store,
            lab.id,
            None,
            crate::store::PageRequest::first(10),
        )
        .unwrap()
        .items;
        assert_eq!(mutations[0].id, queued.id);
        fits::<TopologyDetailDoc>(&detail);
        fits::<TopologyRecordDoc>(&detail.topology);
        fits::<EditReportDoc>(&report);
        fits::<EditedDoc>(&edge);
        fits::<TransitionedDoc>(&moved);
        fits::<StatusEventDoc>(&moved.event);
        fits::<MutationDoc>(&mutations[0]);
        // A claimed one too: its lease fields are all set.
        let options = crate::store::ClaimOptions::default().holder("applier");
        TopologyStore::claim_next_mutation_with(&store, lab.id, &options).unwrap();
        let claimed = TopologyStore::list_mutations(
            &store,
            lab.id,
            None,
            crate::store::PageRequest::first(10),
        )
        .unwrap()
        .items;
        assert!(claimed[0].lease_until.is_some() && claimed[0].holder.is_some());
        fits::<MutationDoc>(&claimed[0]);
        fits::<NewLanDoc>(&NewLan::new("a", "10.0.0.0/24"));
        fits::<NewDeckyDoc>(&NewDecky::new("a"));
        fits::<NewEdgeDoc>(&NewEdge::new(detail.deckies[0].id, detail.lans[0].id));
        fits::<NewEdgeDoc>(&NewEdge::new(RowRef::Batch(1), RowRef::Batch(0)));
        // A canvas save naming its own new rows, every reference shape in it.
        let save = serde_json::json!({ "edits": [
            ChildEdit::AddLan(NewLan::new("dmz", "10.0.0.0/24")),
            ChildEdit::AddDecky(NewDecky::new("web")),
            ChildEdit::AddEdge(NewEdge::new(RowRef::Batch(1), detail.lans[0].id)),
            ChildEdit::UpdateLan(RowRef::Batch(0), crate::store::LanPatch::default()),
            ChildEdit::DeleteDecky(RowRef::Batch(1)),
            ChildEdit::DeleteDecky(detail.deckies[0].id.into()),
        ]});
        fits::<EditBatchDoc>(&save);
        let _: &dyn AsyncTopologyStore = &store;
    }

    #[test]
    fn enum_twins_list_every_declared_value() {
        fn names<E: Serialize + serde::de::DeserializeOwned>(all: &[&str]) {
            for name in all {
                let value: E = serde_json::from_value(serde_json::json!(name))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(
                    serde_json::to_value(&value).unwrap(),
                    serde_json::json!(name)
                );
            }
        }
        names::<StatusDoc>(&TopologyStatus::NAMES);
        names::<MutationOpDoc>(&MutationOp::NAMES);
        names::<MutationStateDoc>(&crate::MutationState::NAMES);
        names::<DeckyStateDoc>(&crate::store::DeckyState::NAMES);
        // And no extra value: each twin has as many variants as its type has names.
        let count = |schema: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>| {
            serde_json::to_value(schema).unwrap()["enum"]
                .as_array()
                .map_or(0, Vec::len)
        };
        assert_eq!(
            count(<StatusDoc as utoipa::PartialSchema>::schema()),
            TopologyStatus::NAMES.len()
        );
        assert_eq!(
            count(<MutationOpDoc as utoipa::PartialSchema>::schema()),
            MutationOp::NAMES.len()
        );
        assert_eq!(
            count(<MutationStateDoc as utoipa::PartialSchema>::schema()),
            crate::MutationState::NAMES.len()
        );
        assert_eq!(
            count(<DeckyStateDoc as utoipa::PartialSchema>::schema()),
            crate::store::DeckyState::NAMES.len()
        );
    }
}
