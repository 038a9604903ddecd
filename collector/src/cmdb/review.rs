//! The identification review queue: what identification could not decide
//! alone. A possible duplicate (two CIs that share some identifiers and
//! disagree on others) is kept as two CIs until a person merges them or
//! keeps them apart; a new agent key on known hardware waits for someone to
//! confirm the reinstall (or revoke the key).

use fathom_shared::ids::{AgentId, CiId};
use serde::{Deserialize, Serialize};

use super::history::Note;
use crate::ids::ReviewId;

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
