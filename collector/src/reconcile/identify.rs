//! Identification inside a report's transaction: the identifiers looked
//! up in the index, the rules (`control::identify`) applied to the
//! candidates, the CI found or created, the index kept in step, and a
//! review item for what the rules cannot decide alone.

use fathom_shared::ids::{AgentId, CiId};

use super::inventory::load;
use super::Refusal;
use crate::cmdb::ci::CiRecord;
use crate::cmdb::review::{ReviewItem, ReviewKind, ReviewStatus};
use crate::cmdb::{ci_key, encode, next_id, tx_get, Counter};
use crate::control::identify::{self, Decision as Identified, Identifiers, Rule};
use crate::store::{Table, Tx, TxAbort};
use fathom_api::ids::ReviewId;

type TxResult<T> = Result<T, TxAbort<Refusal>>;

/// Runs the identification rules inside a transaction. Only CIs whose class
/// `eligible` accepts can be matched: a host's inventory never lands on a
/// network device's CI, nor a device's poll on a server's.
pub(crate) fn identify_in(
    tx: &dyn Tx,
    ids: &Identifiers,
    hint: Option<CiId>,
    eligible: impl Fn(&str) -> bool,
) -> TxResult<Identified> {
    // `identify` takes infallible lookups; remember the first engine error
    // and return it after.
    let failure = std::cell::RefCell::new(None);
    let lookup = |rule: Rule, value: &str| -> Option<CiId> {
        match tx.get(Table::CiIndex, &identify::index_key(rule, value)) {
            Ok(v) => v
                .and_then(|b| b.try_into().ok())
                .map(|b: [u8; 8]| CiId::from_u64(u64::from_be_bytes(b))),
            Err(e) => {
                failure.borrow_mut().get_or_insert(e);
                None
            }
        }
    };
    let known = |ci: CiId| -> Option<Identifiers> {
        match tx_get::<CiRecord, Refusal>(tx, Table::Cis, &ci_key(ci)) {
            Ok(r) => r
                .filter(|r| r.merged_into.is_none() && eligible(&r.class))
                .map(|r| r.identifiers),
            Err(TxAbort::Engine(e)) => {
                failure.borrow_mut().get_or_insert(e);
                None
            }
            Err(TxAbort::Abort(_)) => None,
        }
    };
    let decision = identify::identify(ids, hint, lookup, known);
    match failure.into_inner() {
        Some(e) => Err(TxAbort::Engine(e)),
        None => Ok(decision),
    }
}

/// The CI a decision names (following a merge), or a new one first
/// discovered by `agent`; and whether it is new.
pub(crate) fn load_or_create(
    tx: &dyn Tx,
    decision: &Identified,
    agent: AgentId,
    ids: &Identifiers,
    now_ms: i64,
) -> TxResult<(CiRecord, bool)> {
    let existing = match decision {
        Identified::Known(id) | Identified::Matched { ci: id, .. } => {
            load::<CiRecord>(tx, Table::Cis, &ci_key(*id))?
        }
        Identified::New { .. } => None,
    };
    // A CI merged into another forwards its reports there.
    let existing = match existing {
        Some(ci) if ci.merged_into.is_some() => {
            load::<CiRecord>(tx, Table::Cis, &ci_key(ci.merged_into.unwrap()))?
        }
        other => other,
    };
    Ok(match existing {
        Some(ci) => (ci, false),
        None => {
            let id = CiId::from_u64(next_id(tx, Counter::Ci)?);
            (CiRecord::discovered(id, agent, ids, now_ms), true)
        }
    })
}

/// Queues each possible duplicate of a new CI for review; nothing merges.
pub(crate) fn review_candidates(
    tx: &dyn Tx,
    ci: &mut CiRecord,
    candidates: &[identify::Candidate],
    now_ms: i64,
) -> TxResult<()> {
    for c in candidates {
        let Some(mut existing) = load::<CiRecord>(tx, Table::Cis, &ci_key(c.ci))? else {
            continue;
        };
        let kind = ReviewKind::PossibleDuplicate {
            ci: ci.id,
            existing: c.ci,
            reason: c.reason.clone(),
        };
        raise_review(tx, kind, now_ms, &mut [&mut *ci, &mut existing])?;
        tx.insert(Table::Cis, &ci_key(existing.id), &encode(&existing))?;
        tracing::warn!(ci_id = %ci.id, existing = %c.ci, reason = %c.reason, "Possible duplicate CI; queued for review, not merged");
    }
    Ok(())
}

/// Re-indexes a CI under what this report offers: drops entries for
/// identifiers it no longer has, adds the new ones. (Unchanged entries are
/// not rewritten: on a steady host that is every report.)
pub(crate) fn reindex(
    tx: &dyn Tx,
    ci: &mut CiRecord,
    ids: &Identifiers,
    is_new: bool,
) -> TxResult<()> {
    let mut merged = ci.identifiers.clone();
    merged.merge_from(ids);
    let keep = merged.index_entries();
    let had = if is_new {
        Vec::new()
    } else {
        ci.identifiers.index_entries()
    };
    for (rule, value) in &had {
        if !keep.contains(&(*rule, value.clone())) {
            let key = identify::index_key(*rule, value);
            if tx.get(Table::CiIndex, &key)?.as_deref() == Some(&ci_key(ci.id)[..]) {
                tx.remove(Table::CiIndex, &key)?;
            }
        }
    }
    for (rule, value) in &keep {
        if !had.contains(&(*rule, value.clone())) {
            tx.insert(
                Table::CiIndex,
                &identify::index_key(*rule, value),
                &ci_key(ci.id),
            )?;
        }
    }
    ci.identifiers = merged;
    Ok(())
}

/// Queues a review item and notes it on the CIs it is about.
pub(crate) fn raise_review<E>(
    tx: &dyn Tx,
    kind: ReviewKind,
    now_ms: i64,
    cis: &mut [&mut CiRecord],
) -> Result<ReviewId, TxAbort<E>> {
    let id = ReviewId::from_u64(next_id(tx, Counter::Review)?);
    let item = ReviewItem {
        id,
        raised_at_ms: now_ms,
        kind,
        status: ReviewStatus::Open,
        resolution: None,
    };
    tx.insert(Table::Reviews, &id.key(), &encode(&item))?;
    for ci in cis {
        ci.reviews.insert(id);
    }
    Ok(id)
}
