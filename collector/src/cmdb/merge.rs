//! Identification corrections: merging two CIs that are one (a rebuilt
//! host), and splitting an agent wrongly matched off its CI.

use fathom_shared::ids::CiId;

use super::action::{abort, trail_entry, ActionError, TxResult};
use super::ci::{load_ci, put_ci, CiRecord, CiStatus};
use super::history::{changes_between, record_history, Actor, FieldChange, Why};
use super::relationship::{put_relationship, remove_relationship, Relationship};
use super::review::{ReviewItem, ReviewKind, ReviewStatus};
use super::{ci_key, encode, next_id, tx_get, Cmdb, Counter};
use crate::store::{Store, Table, Tx};

impl<S: Store> Cmdb<S> {
    /// Folds `other` into `keep`: its agents, identifiers, latest inventories
    /// and relationships move to `keep`, and `other` is kept, marked merged,
    /// so its history stays readable. Review items about the pair close.
    pub fn merge_cis(
        &self,
        by: &Actor,
        keep: CiId,
        other: CiId,
        reason: &str,
        now_ms: i64,
    ) -> Result<CiRecord, ActionError> {
        if keep == other {
            return Err(ActionError::Invalid("merge two different CIs".into()));
        }
        if reason.trim().is_empty() {
            return Err(ActionError::Invalid("say why (--reason)".into()));
        }
        // Gathered outside the transaction (which cannot scan), and re-read
        // by key inside it.
        let inventories = self.store.scan_prefix(Table::Inventories, &ci_key(other))?;
        let (outgoing, incoming) = self.relationships_of(other)?;
        let reviews = self.list_reviews()?;
        self.act(|tx| {
            let mut k = load_ci(tx, keep)?;
            let mut o = load_ci(tx, other)?;
            if k.merged_into.is_some() || o.merged_into.is_some() {
                return abort(ActionError::Conflict(
                    "one of them is already merged".into(),
                ));
            }
            let before_k = k.fields();
            move_identity(tx, keep, &mut k, &o, &inventories)?;
            let why = Why::Manual {
                reason: format!("merged {other} into {keep}: {reason}"),
            };
            // Relationships move to the kept CI.
            let mut k_changes = changes_between(&before_k, &k.fields());
            move_relationships(tx, keep, other, &outgoing, &incoming, &mut k_changes)?;
            // So the kept CI's next poll keeps (or removes) the moved links.
            for (to, via) in std::mem::take(&mut o.discovered_links) {
                if to != keep {
                    k.discovered_links.entry(to).or_insert(via);
                }
            }
            let before_o = o.fields();
            o.merged_into = Some(keep);
            // No longer a live CI of its own: retired, pointing at the survivor.
            if !matches!(o.status, CiStatus::Retired | CiStatus::Disposed) {
                o.status = CiStatus::Retired;
            }
            o.agents.clear();
            let mut o_changes = changes_between(&before_o, &o.fields());
            for r in outgoing.iter() {
                o_changes.push(FieldChange {
                    field: r.outgoing_field(),
                    old: Some("present".into()),
                    new: None,
                });
            }
            for r in incoming.iter() {
                o_changes.push(FieldChange {
                    field: r.incoming_field(),
                    old: Some("present".into()),
                    new: None,
                });
            }
            settle_reviews(
                tx,
                (keep, &mut k),
                (other, &mut o),
                &reviews,
                by,
                reason,
                now_ms,
            )?;
            record_history(tx, &mut k, now_ms, by, why.clone(), k_changes)?;
            record_history(tx, &mut o, now_ms, by, why.clone(), o_changes)?;
            put_ci(tx, &k)?;
            put_ci(tx, &o)?;
            trail_entry(
                tx,
                now_ms,
                by,
                "ci.merge",
                keep.to_string(),
                format!("{other} merged into {keep}: {reason}"),
            )?;
            Ok(k)
        })
    }

    /// Moves one agent off a CI onto a new CI of its own (undoing a wrong
    /// match). The new CI is registered from that agent's next report.
    pub fn split_ci(
        &self,
        by: &Actor,
        id: CiId,
        agent_id: fathom_shared::ids::AgentId,
        reason: &str,
        now_ms: i64,
    ) -> Result<CiRecord, ActionError> {
        if reason.trim().is_empty() {
            return Err(ActionError::Invalid("say why (--reason)".into()));
        }
        let inventory_key = super::inventory_key(id, agent_id);
        self.act(|tx| {
            let mut ci = load_ci(tx, id)?;
            if !ci.agents.contains(&agent_id) {
                return abort(ActionError::Invalid(format!(
                    "agent {agent_id} does not report for {id}"
                )));
            }
            if ci.agents.len() == 1 {
                return abort(ActionError::Conflict(format!(
                    "agent {agent_id} is the only one reporting for {id}; nothing to split"
                )));
            }
            let new_id = CiId::from_u64(next_id(tx, Counter::Ci)?);
            let mut new = CiRecord::discovered(new_id, agent_id, &Default::default(), now_ms);
            new.name = format!("{} (split)", ci.name);
            new.agents = vec![agent_id];
            new.identified_by = super::ci::IdentifiedBy {
                rule: crate::control::identify::Rule::Agent,
                detail: format!("split from {id} by {by}: {reason}"),
            };
            let before = ci.fields();
            ci.agents.retain(|a| *a != agent_id);
            if ci.reported_by == Some(agent_id) {
                ci.reported_by = ci.agents.last().copied();
            }
            tx.insert(
                Table::CiIndex,
                &crate::control::identify::agent_index_key(agent_id),
                &ci_key(new_id),
            )?;
            if let Some(mut a) =
                tx_get::<super::AgentRecord, _>(tx, Table::Agents, agent_id.as_bytes())?
            {
                a.ci_id = Some(new_id);
                tx.insert(Table::Agents, agent_id.as_bytes(), &encode(&a))?;
            }
            if let Some(inv) = tx.get(Table::Inventories, &inventory_key)? {
                tx.remove(Table::Inventories, &inventory_key)?;
                tx.insert(
                    Table::Inventories,
                    &super::inventory_key(new_id, agent_id),
                    &inv,
                )?;
            }
            let why = Why::Manual {
                reason: format!("agent {agent_id} split off to {new_id}: {reason}"),
            };
            let mut changes = changes_between(&before, &ci.fields());
            changes.push(FieldChange {
                field: format!("agent {agent_id}"),
                old: Some("present".into()),
                new: None,
            });
            record_history(tx, &mut ci, now_ms, by, why.clone(), changes)?;
            record_history(
                tx,
                &mut new,
                now_ms,
                by,
                why,
                vec![FieldChange {
                    field: format!("agent {agent_id}"),
                    old: None,
                    new: Some("present".into()),
                }],
            )?;
            put_ci(tx, &ci)?;
            put_ci(tx, &new)?;
            trail_entry(
                tx,
                now_ms,
                by,
                "ci.split",
                id.to_string(),
                format!("agent {agent_id} to {new_id}: {reason}"),
            )?;
            Ok(new)
        })
    }
}

/// The merged-away CI's identity moves to the kept one: identifiers
/// (the newer one's win), index entries, agents, inventories, seen times.
fn move_identity(
    tx: &dyn Tx,
    keep: CiId,
    k: &mut CiRecord,
    o: &CiRecord,
    inventories: &[(Vec<u8>, Vec<u8>)],
) -> TxResult<()> {
    // The identifiers of whichever was seen last win where both have one.
    let (older, newer) = if o.last_seen_ms > k.last_seen_ms {
        (&k.identifiers, &o.identifiers)
    } else {
        (&o.identifiers, &k.identifiers)
    };
    let mut merged = older.clone();
    merged.merge_from(newer);
    k.identifiers = merged;
    for (rule, value) in k.identifiers.index_entries() {
        tx.insert(
            Table::CiIndex,
            &crate::control::identify::index_key(rule, &value),
            &ci_key(keep),
        )?;
    }
    for agent_id in o.agents.clone() {
        if !k.agents.contains(&agent_id) {
            k.agents.push(agent_id);
        }
        tx.insert(
            Table::CiIndex,
            &crate::control::identify::agent_index_key(agent_id),
            &ci_key(keep),
        )?;
        if let Some(mut a) =
            tx_get::<super::AgentRecord, _>(tx, Table::Agents, agent_id.as_bytes())?
        {
            a.ci_id = Some(keep);
            tx.insert(Table::Agents, agent_id.as_bytes(), &encode(&a))?;
        }
    }
    for (key, value) in inventories {
        let mut moved = ci_key(keep).to_vec();
        moved.extend_from_slice(&key[8..]);
        tx.insert(Table::Inventories, &moved, value)?;
        tx.remove(Table::Inventories, key)?;
    }
    k.last_seen_ms = k.last_seen_ms.max(o.last_seen_ms);
    k.first_seen_ms = match (k.first_seen_ms, o.first_seen_ms) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(())
}

/// Relationships of the merged-away CI move to the kept one (a loop onto
/// itself is dropped); each move is a change of the kept CI.
fn move_relationships(
    tx: &dyn Tx,
    keep: CiId,
    other: CiId,
    outgoing: &[Relationship],
    incoming: &[Relationship],
    k_changes: &mut Vec<FieldChange>,
) -> TxResult<()> {
    for r in outgoing.iter().chain(incoming) {
        let (from, to) = (
            if r.from == other { keep } else { r.from },
            if r.to == other { keep } else { r.to },
        );
        remove_relationship(tx, r.from, r.kind, r.to)?;
        if from == to {
            continue;
        }
        let moved = Relationship {
            from,
            kind: r.kind,
            to,
            created_at_ms: r.created_at_ms,
            created_by: r.created_by.clone(),
            via: r.via.clone(),
        };
        put_relationship(tx, &moved)?;
        let field = if from == keep {
            moved.outgoing_field()
        } else {
            moved.incoming_field()
        };
        k_changes.push(FieldChange {
            field,
            old: None,
            new: Some("present".into()),
        });
    }
    Ok(())
}

/// Open review items about the merged-away CI: a duplicate question with
/// a third CI now asks about the survivor; the others are settled as
/// merged.
fn settle_reviews(
    tx: &dyn Tx,
    (keep, k): (CiId, &mut CiRecord),
    (other, o): (CiId, &mut CiRecord),
    reviews: &[ReviewItem],
    by: &Actor,
    reason: &str,
    now_ms: i64,
) -> TxResult<()> {
    for item in reviews.iter().filter(|i| i.status == ReviewStatus::Open) {
        let cis = item.kind.cis();
        // A question about the merged-away CI and a third one is now
        // a question about the survivor and that one.
        if let ReviewKind::PossibleDuplicate {
            ci,
            existing,
            reason,
        } = &item.kind
        {
            if cis.contains(&other) && !cis.contains(&keep) {
                let swap = |c: &CiId| if *c == other { keep } else { *c };
                let mut item = item.clone();
                item.kind = ReviewKind::PossibleDuplicate {
                    ci: swap(ci),
                    existing: swap(existing),
                    reason: format!("{reason} ({other} has since been merged into {keep})"),
                };
                tx.insert(Table::Reviews, &item.id.key(), &encode(&item))?;
                o.reviews.remove(&item.id);
                k.reviews.insert(item.id);
                continue;
            }
        }
        if cis.contains(&other) && (cis.contains(&keep) || cis.len() == 1) {
            let mut item = item.clone();
            item.status = ReviewStatus::Merged;
            item.resolution = Some(super::history::Note {
                at_ms: now_ms,
                by: by.clone(),
                text: reason.to_owned(),
            });
            tx.insert(Table::Reviews, &item.id.key(), &encode(&item))?;
            k.reviews.remove(&item.id);
            o.reviews.remove(&item.id);
        }
    }
    Ok(())
}
