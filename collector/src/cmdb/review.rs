//! The identification review queue: what identification could not decide
//! alone. A possible duplicate (two CIs that share some identifiers and
//! disagree on others) is kept as two CIs until a person merges them or
//! keeps them apart; a new agent key on known hardware waits for someone to
//! confirm the reinstall (or revoke the key).

use fathom_shared::ids::{AgentId, CiId};
use serde::{Deserialize, Serialize};

use super::action::{abort, not_found, trail_entry, ActionError, TxResult};
use super::ci::{put_ci, CiRecord};
use super::history::{Actor, Note};
use super::{ci_key, encode, tx_get, Cmdb};
use crate::store::{Store, StoreError, Table, Tx};
use fathom_api::ids::ReviewId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ReviewKind {
    /// `ci` was created for a report that looks like `existing`.
    PossibleDuplicate {
        ci: CiId,
        existing: CiId,
        reason: String,
    },
    /// A new agent key reports hardware that `ci` is known by.
    NewAgentKey {
        ci: CiId,
        agent_id: AgentId,
        reason: String,
    },
}

impl ReviewKind {
    pub fn cis(&self) -> Vec<CiId> {
        match self {
            ReviewKind::PossibleDuplicate { ci, existing, .. } => vec![*ci, *existing],
            ReviewKind::NewAgentKey { ci, .. } => vec![*ci],
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            ReviewKind::PossibleDuplicate { reason, .. }
            | ReviewKind::NewAgentKey { reason, .. } => reason,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Open,
    /// The CIs were merged.
    Merged,
    /// A person confirmed them as distinct (or the new key as legitimate).
    Dismissed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub id: ReviewId,
    pub raised_at_ms: i64,
    #[serde(flatten)]
    pub kind: ReviewKind,
    pub status: ReviewStatus,
    pub resolution: Option<Note>,
}

pub(crate) fn load_review(tx: &dyn Tx, id: ReviewId) -> TxResult<ReviewItem> {
    match tx_get::<ReviewItem, _>(tx, Table::Reviews, &id.key())? {
        Some(r) => Ok(r),
        None => not_found(format!("no {id}")),
    }
}

pub(crate) fn settle_review(
    tx: &dyn Tx,
    item: &mut ReviewItem,
    status: ReviewStatus,
    by: &Actor,
    note: &str,
    now_ms: i64,
) -> TxResult<()> {
    item.status = status;
    item.resolution = Some(super::history::Note {
        at_ms: now_ms,
        by: by.clone(),
        text: note.to_owned(),
    });
    tx.insert(Table::Reviews, &item.id.key(), &encode(item))?;
    for ci in item.kind.cis() {
        if let Some(mut c) = tx_get::<CiRecord, _>(tx, Table::Cis, &ci_key(ci))? {
            if c.reviews.remove(&item.id) {
                put_ci(tx, &c)?;
            }
        }
    }
    Ok(())
}

impl<S: Store> Cmdb<S> {
    pub fn list_reviews(&self) -> Result<Vec<ReviewItem>, StoreError> {
        self.scan(Table::Reviews, b"")
    }

    /// Closes a review item without merging: the CIs are distinct, or the
    /// new agent key is legitimate.
    pub fn dismiss_review(
        &self,
        by: &Actor,
        id: ReviewId,
        note: &str,
        now_ms: i64,
    ) -> Result<ReviewItem, ActionError> {
        self.act(|tx| {
            let mut item = load_review(tx, id)?;
            if item.status != ReviewStatus::Open {
                return abort(ActionError::Conflict(format!("{id} is already settled")));
            }
            settle_review(tx, &mut item, ReviewStatus::Dismissed, by, note, now_ms)?;
            trail_entry(
                tx,
                now_ms,
                by,
                "review.dismiss",
                id.to_string(),
                note.to_owned(),
            )?;
            Ok(item)
        })
    }
}
