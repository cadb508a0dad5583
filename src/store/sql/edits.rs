//! Child edits (LANs, deckies, edges), applied one by one inside the caller's transaction.
//!
//! Each edit runs its guards in the contract's precedence, then writes. Later edits of a
//! batch see the earlier ones (they are already written in the transaction); a refusal
//! stops the batch, and the caller's rollback undoes what it had written. A batch-local
//! reference ([`RowRef::Batch`]) is read from the rows the batch has touched so far: the
//! row edit `i` added is `touched[i]`, already inserted.

use std::collections::HashSet;
use std::format;
use std::string::String;
use std::vec::Vec;

use crate::store::model::Referable;
use crate::store::policy::{
    canonical_edits, check_decky_patch, check_lan_patch, check_new_decky, check_new_lan, check_refs,
};
use crate::store::{
    ChildEdit, DeckyId, DeckyPatch, DeckyState, EdgeId, Entity, LanId, LanPatch, NewDecky, NewEdge,
    NewLan, RowRef, StoreError, Touched,
};

use super::rows::{Flag, Key, Named};
use super::{
    Param, Session, Stmt, backend, id_of, insert_stmt, key, not_found, pick, refuse, stmt,
};

const LAN_OWNER: Stmt = stmt!("SELECT topology_id FROM lans WHERE id = $1");
const DECKY_OWNER: Stmt = stmt!("SELECT topology_id FROM deckies WHERE id = $1");
const EDGE_OWNER: Stmt = stmt!("SELECT topology_id FROM edges WHERE id = $1");

/// Applies `edits` in order to `topology`. A refusal stops the batch and is returned beside
/// the rows touched so far, for the caller to weigh against its own guards (status gate,
/// version) before it rolls back; driver errors fail at once.
pub(crate) async fn apply_edits<S: Session>(
    db: &mut S,
    topology: i64,
    edits: &[ChildEdit],
) -> Result<(Vec<Touched>, Option<StoreError>), S::Fail> {
    let edits = canonical_edits(edits);
    let mut batch = Batch {
        db,
        topology,
        created: HashSet::new(),
        gone: HashSet::new(),
        new_pairs: HashSet::new(),
        touched: Vec::with_capacity(edits.len()),
    };
    for (i, edit) in edits.iter().enumerate() {
        match batch.apply(&edits, i).await {
            Ok(row) => {
                // Only later edits of the batch read the set.
                let later = i + 1 < edits.len();
                if later
                    && matches!(
                        edit,
                        ChildEdit::AddLan(_) | ChildEdit::AddDecky(_) | ChildEdit::AddEdge(_)
                    )
                {
                    batch.created.insert(row);
                }
                batch.touched.push(row);
            }
            Err(fail) => return Ok((batch.touched, Some(S::refusal(fail)?))),
        }
    }
    Ok((batch.touched, None))
}

/// What a reference names, for the edit reading it.
enum Target<I> {
    /// A row to look up.
    Row(I),
    /// A row this batch added and has not deleted: in this topology, its key its id, so
    /// nothing needs reading.
    New(I),
    /// A stored id of a row this batch added: not found, since those rows are reached
    /// only through batch-local references.
    Unseen(I),
}

/// One batch of edits being applied to one topology.
struct Batch<'b, S> {
    db: &'b mut S,
    topology: i64,
    /// The rows this batch added. A stored id cannot name them (their ids are the store's
    /// to mint, not the caller's to guess), so they read as not found, as in every
    /// backend; a batch-local reference reaches them through `touched`.
    created: HashSet<Touched>,
    /// The LANs and deckies this batch deleted, so that a batch-local reference to one
    /// reads as not found.
    gone: HashSet<Touched>,
    /// The (decky, LAN) keys of the edges this batch added with an end it added: the only
    /// edges such an end can have.
    new_pairs: HashSet<(i64, i64)>,
    /// The row each edit so far touched, in order: `touched[i]` is the row edit `i` added,
    /// if it added one.
    touched: Vec<Touched>,
}

impl<S: Session> Batch<'_, S> {
    /// Applies edit `at` of `edits`: its batch-local references first, then its guards.
    async fn apply(&mut self, edits: &[ChildEdit], at: usize) -> Result<Touched, S::Fail> {
        check_refs(edits, at)?;
        let Some(edit) = edits.get(at) else {
            return Err(backend("an edit index past the batch").into());
        };
        match edit {
            ChildEdit::AddLan(lan) => self.add_lan(lan).await,
            ChildEdit::UpdateLan(id, patch) => self.update_lan(*id, patch).await,
            ChildEdit::DeleteLan(id) => self.delete_lan(*id).await,
            ChildEdit::AddDecky(decky) => self.add_decky(decky).await,
            ChildEdit::UpdateDecky(id, patch) => self.update_decky(*id, patch).await,
            ChildEdit::DeleteDecky(id) => self.delete_decky(*id).await,
            ChildEdit::AddEdge(edge) => self.add_edge(edge).await,
            ChildEdit::DeleteEdge(id) => self.delete_edge(*id).await,
        }
    }

    /// What a reference names for this edit; [`check_refs`] has accepted it.
    fn target<I: Referable>(&self, reference: RowRef<I>) -> Result<Target<I>, StoreError> {
        match reference {
            RowRef::Stored(id) if self.created.contains(&id.touched()) => Ok(Target::Unseen(id)),
            RowRef::Stored(id) => Ok(Target::Row(id)),
            RowRef::Batch(i) => {
                let id = self
                    .touched
                    .get(i)
                    .copied()
                    .and_then(I::of)
                    .ok_or_else(|| backend("a checked batch-local reference names no added row"))?;
                Ok(if self.gone.contains(&id.touched()) {
                    Target::Unseen(id)
                } else {
                    Target::New(id)
                })
            }
        }
    }

    /// A row's key and owning topology: `None` if it is missing.
    async fn owner(&mut self, sql: &Stmt, id: u64) -> Result<Option<(i64, i64)>, S::Fail> {
        Ok(match key(id) {
            Some(k) => self
                .db
                .query_opt::<Key>(sql, &[Param::Int(k)])
                .await?
                .map(|Key(owner)| (k, owner)),
            None => None,
        })
    }

    /// The id and key of a row of this topology a reference names, or
    /// [`StoreError::NotFound`] (also for a row of another topology).
    async fn child<I: Referable>(
        &mut self,
        sql: &Stmt,
        reference: RowRef<I>,
    ) -> Result<(I, i64), S::Fail> {
        let id = match self.target(reference)? {
            Target::Row(id) => id,
            Target::New(id) => return Ok((id, new_key(id)?)),
            Target::Unseen(id) => return Err(not_found(I::ENTITY, id.raw()).into()),
        };
        match self.owner(sql, id.raw()).await? {
            Some((k, owner)) if owner == self.topology => Ok((id, k)),
            _ => Err(not_found(I::ENTITY, id.raw()).into()),
        }
    }

    /// One end of a new edge: missing is not found, in another topology a foreign end.
    async fn edge_end<I: Referable>(
        &mut self,
        sql: &Stmt,
        reference: RowRef<I>,
    ) -> Result<Result<(I, i64), StoreError>, S::Fail> {
        let id = match self.target(reference)? {
            Target::Row(id) => id,
            Target::New(id) => return Ok(Ok((id, new_key(id)?))),
            Target::Unseen(id) => return Ok(Err(not_found(I::ENTITY, id.raw()))),
        };
        let entity = I::ENTITY;
        Ok(match self.owner(sql, id.raw()).await? {
            None => Err(not_found(entity, id.raw())),
            Some((_, owner)) if owner != self.topology => Err(StoreError::ForeignEnd {
                entity,
                id: id.raw(),
                owner: id_of(owner)?,
                topology: id_of(self.topology)?,
            }),
            Some((k, _)) => Ok((id, k)),
        })
    }

    /// [`StoreError::Duplicate`] if a row of `table` other than `except` has `name`.
    async fn name_taken(
        &mut self,
        sql: &Stmt,
        entity: Entity,
        name: &str,
        except: i64,
    ) -> Result<Option<StoreError>, S::Fail> {
        let Flag(taken) = self
            .db
            .query_one(
                sql,
                &[
                    Param::Int(self.topology),
                    Param::Text(name),
                    Param::Int(except),
                ],
            )
            .await?;
        Ok(taken.then(|| StoreError::Duplicate {
            entity,
            name: String::from(name),
        }))
    }

    async fn lan_name_taken(
        &mut self,
        name: &str,
        except: i64,
    ) -> Result<Option<StoreError>, S::Fail> {
        const TAKEN: Stmt = stmt!(
            "SELECT EXISTS (SELECT 1 FROM lans WHERE topology_id = $1 AND name = $2 AND id <> $3)"
        );
        self.name_taken(&TAKEN, Entity::Lan, name, except).await
    }

    async fn decky_name_taken(
        &mut self,
        name: &str,
        except: i64,
    ) -> Result<Option<StoreError>, S::Fail> {
        const TAKEN: Stmt = stmt!(
            "SELECT EXISTS (SELECT 1 FROM deckies WHERE topology_id = $1 AND name = $2 AND id <> $3)"
        );
        self.name_taken(&TAKEN, Entity::Decky, name, except).await
    }

    async fn add_lan(&mut self, lan: &NewLan) -> Result<Touched, S::Fail> {
        // The name's check and the insert in one statement (one round trip on
        // PostgreSQL), by the table's `UNIQUE (topology_id, name)`: no row inserted is a
        // name taken. (Not `INSERT … SELECT … WHERE NOT EXISTS` on the same table, which
        // SQLite runs through a temporary table.)
        const INSERT: Stmt = insert_stmt!(
            "INSERT INTO lans (topology_id, name, subnet, is_dmz, x, y) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (topology_id, name) DO NOTHING"
        );
        check_new_lan(lan)?;
        let id = self
            .db
            .insert_new(
                &INSERT,
                &[
                    Param::Int(self.topology),
                    Param::Text(&lan.name),
                    Param::Text(&lan.subnet),
                    Param::Bool(lan.is_dmz),
                    Param::OptReal(lan.x),
                    Param::OptReal(lan.y),
                ],
            )
            .await?
            .ok_or_else(|| StoreError::Duplicate {
                entity: Entity::Lan,
                name: lan.name.clone(),
            })?;
        Ok(Touched::Lan(LanId::new(id_of(id)?)))
    }

    async fn update_lan(
        &mut self,
        lan: RowRef<LanId>,
        patch: &LanPatch,
    ) -> Result<Touched, S::Fail> {
        const UPDATE: Stmt = stmt!(
            "UPDATE lans SET \
                 name = CASE WHEN $2 THEN $3::text ELSE name END, \
                 subnet = CASE WHEN $4 THEN $5::text ELSE subnet END, \
                 is_dmz = CASE WHEN $6 THEN $7::boolean ELSE is_dmz END, \
                 x = CASE WHEN $8 THEN $9::float8 ELSE x END, \
                 y = CASE WHEN $10 THEN $11::float8 ELSE y END \
             WHERE id = $1"
        );
        let (lan, k) = self.child(&LAN_OWNER, lan).await?;
        check_lan_patch(patch)?;
        if let Some(name) = &patch.name {
            refuse(self.lan_name_taken(name, k).await?)?;
        }
        if !patch.is_empty() {
            self.db
                .execute(
                    &UPDATE,
                    &[
                        Param::Int(k),
                        Param::Bool(patch.name.is_some()),
                        Param::OptText(patch.name.as_deref()),
                        Param::Bool(patch.subnet.is_some()),
                        Param::OptText(patch.subnet.as_deref()),
                        Param::Bool(patch.is_dmz.is_some()),
                        Param::OptBool(patch.is_dmz),
                        Param::Bool(patch.x.is_some()),
                        Param::OptReal(patch.x.flatten()),
                        Param::Bool(patch.y.is_some()),
                        Param::OptReal(patch.y.flatten()),
                    ],
                )
                .await?;
        }
        Ok(Touched::Lan(lan))
    }

    async fn delete_lan(&mut self, lan: RowRef<LanId>) -> Result<Touched, S::Fail> {
        // A decky whose every edge goes to this LAN would be left with none; the first
        // such edge by id names it.
        const ORPHAN: Stmt = stmt!(
            "SELECT d.id, d.name FROM edges e JOIN deckies d ON d.id = e.decky_id \
             WHERE e.lan_id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM edges o WHERE o.decky_id = e.decky_id AND o.lan_id <> $1) \
             ORDER BY e.id LIMIT 1"
        );
        let (lan, k) = self.child(&LAN_OWNER, lan).await?;
        if let Some(Named(decky, decky_name)) = self.db.query_opt(&ORPHAN, &[Param::Int(k)]).await?
        {
            return Err(StoreError::LanInUse {
                lan,
                decky: DeckyId::new(id_of(decky)?),
                decky_name,
            }
            .into());
        }
        self.db
            .execute(
                &stmt!("DELETE FROM edges WHERE lan_id = $1"),
                &[Param::Int(k)],
            )
            .await?;
        self.db
            .execute(&stmt!("DELETE FROM lans WHERE id = $1"), &[Param::Int(k)])
            .await?;
        self.gone.insert(Touched::Lan(lan));
        Ok(Touched::Lan(lan))
    }

    async fn add_decky(&mut self, decky: &NewDecky) -> Result<Touched, S::Fail> {
        // As for a LAN: the name's check and the insert in one statement.
        const INSERT: Stmt = insert_stmt!(
            "INSERT INTO deckies (topology_id, name, services, config, state, x, y) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (topology_id, name) DO NOTHING"
        );
        check_new_decky(decky)?;
        let id = self
            .db
            .insert_new(
                &INSERT,
                &[
                    Param::Int(self.topology),
                    Param::Text(&decky.name),
                    Param::Services(&decky.services),
                    Param::OptText(decky.config.as_deref()),
                    Param::Text(DeckyState::Pending.as_str()),
                    Param::OptReal(decky.x),
                    Param::OptReal(decky.y),
                ],
            )
            .await?
            .ok_or_else(|| StoreError::Duplicate {
                entity: Entity::Decky,
                name: decky.name.clone(),
            })?;
        Ok(Touched::Decky(DeckyId::new(id_of(id)?)))
    }

    async fn update_decky(
        &mut self,
        decky: RowRef<DeckyId>,
        patch: &DeckyPatch,
    ) -> Result<Touched, S::Fail> {
        const UPDATE: Stmt = stmt!(
            "UPDATE deckies SET \
                 name = CASE WHEN $2 THEN $3::text ELSE name END, \
                 services = CASE WHEN $4 THEN $5::text[] ELSE services END, \
                 config = CASE WHEN $6 THEN $7::text ELSE config END, \
                 x = CASE WHEN $8 THEN $9::float8 ELSE x END, \
                 y = CASE WHEN $10 THEN $11::float8 ELSE y END \
             WHERE id = $1"
        );
        let (decky, k) = self.child(&DECKY_OWNER, decky).await?;
        let config = patch.config.as_ref().and_then(Option::as_deref);
        check_decky_patch(patch)?;
        if let Some(name) = &patch.name {
            refuse(self.decky_name_taken(name, k).await?)?;
        }
        if !patch.is_empty() {
            self.db
                .execute(
                    &UPDATE,
                    &[
                        Param::Int(k),
                        Param::Bool(patch.name.is_some()),
                        Param::OptText(patch.name.as_deref()),
                        Param::Bool(patch.services.is_some()),
                        Param::OptServices(patch.services.as_deref()),
                        Param::Bool(patch.config.is_some()),
                        Param::OptText(config),
                        Param::Bool(patch.x.is_some()),
                        Param::OptReal(patch.x.flatten()),
                        Param::Bool(patch.y.is_some()),
                        Param::OptReal(patch.y.flatten()),
                    ],
                )
                .await?;
        }
        Ok(Touched::Decky(decky))
    }

    async fn delete_decky(&mut self, decky: RowRef<DeckyId>) -> Result<Touched, S::Fail> {
        let (decky, k) = self.child(&DECKY_OWNER, decky).await?;
        self.db
            .execute(
                &stmt!("DELETE FROM edges WHERE decky_id = $1"),
                &[Param::Int(k)],
            )
            .await?;
        self.db
            .execute(
                &stmt!("DELETE FROM deckies WHERE id = $1"),
                &[Param::Int(k)],
            )
            .await?;
        self.gone.insert(Touched::Decky(decky));
        Ok(Touched::Decky(decky))
    }

    async fn add_edge(&mut self, edge: &NewEdge) -> Result<Touched, S::Fail> {
        const TAKEN: Stmt =
            stmt!("SELECT EXISTS (SELECT 1 FROM edges WHERE decky_id = $1 AND lan_id = $2)");
        const INSERT: Stmt = insert_stmt!(
            "INSERT INTO edges (topology_id, decky_id, lan_id, is_bridge, forwards_l3) \
             VALUES ($1, $2, $3, $4, $5)"
        );
        let decky = self.edge_end(&DECKY_OWNER, edge.decky).await?;
        let lan = self.edge_end(&LAN_OWNER, edge.lan).await?;
        let ((decky_id, decky), (lan_id, lan)) = match (decky, lan) {
            (Ok(decky), Ok(lan)) => (decky, lan),
            (decky, lan) => {
                refuse(pick([decky.err(), lan.err()]))?;
                return Err(backend("an edge end was refused without an error").into());
            }
        };
        // A pair with an end this batch added can only have been added by this batch, so
        // the batch's own list answers without a read.
        let pair = (decky, lan);
        let fresh =
            self.created.contains(&decky_id.touched()) || self.created.contains(&lan_id.touched());
        let taken = if fresh {
            self.new_pairs.contains(&pair)
        } else {
            let Flag(taken) = self
                .db
                .query_one(&TAKEN, &[Param::Int(decky), Param::Int(lan)])
                .await?;
            taken
        };
        if taken {
            return Err(StoreError::Duplicate {
                entity: Entity::Edge,
                name: format!("decky {decky_id} ↔ lan {lan_id}"),
            }
            .into());
        }
        let id = self
            .db
            .insert(
                &INSERT,
                &[
                    Param::Int(self.topology),
                    Param::Int(decky),
                    Param::Int(lan),
                    Param::Bool(edge.is_bridge),
                    Param::Bool(edge.forwards_l3),
                ],
            )
            .await?;
        if fresh {
            self.new_pairs.insert(pair);
        }
        Ok(Touched::Edge(EdgeId::new(id_of(id)?)))
    }

    async fn delete_edge(&mut self, edge: EdgeId) -> Result<Touched, S::Fail> {
        let row = Touched::Edge(edge);
        let k = match self.owner(&EDGE_OWNER, edge.get()).await? {
            Some((k, owner)) if owner == self.topology && !self.created.contains(&row) => k,
            _ => return Err(not_found(Entity::Edge, edge.get()).into()),
        };
        self.db
            .execute(&stmt!("DELETE FROM edges WHERE id = $1"), &[Param::Int(k)])
            .await?;
        Ok(Touched::Edge(edge))
    }
}

/// The key of a row this batch inserted: its id, which came from a key.
fn new_key<I: Referable>(id: I) -> Result<i64, StoreError> {
    key(id.raw()).ok_or_else(|| backend("an inserted row's id is not a key"))
}
