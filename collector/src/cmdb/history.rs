//! Who changed what in the CMDB, when, why, and what it was before.
//!
//! Every write to a CI (its fields, its authorized attributes, its
//! relationships) appends one [`HistoryEntry`] under the CI's next
//! revision, in the same transaction as the write. The previous values in
//! each entry make the CI at any past time computable: start from today's
//! record and undo the entries made after that time ([`as_of`]).
//!
//! Operator actions that are not CI writes (approving an RFC, assigning an
//! incident) go to the audit trail ([`TrailEntry`]) instead; CI writes made
//! by operators appear in both.

use std::collections::BTreeMap;
use std::fmt;

use fathom_shared::ids::{AgentId, CiId};
use serde::{Deserialize, Serialize};

use super::{encode, CiRecord, Role};
use crate::store::{Table, Tx, TxAbort};
use fathom_api::ids::RfcId;

/// Who made a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Actor {
    /// A person or program holding an operator token.
    Operator { name: String, role: Role },
    /// Discovery, through an agent's signed report.
    Agent { agent_id: AgentId },
    /// The collector itself (scheduled checks).
    Collector,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Operator { name, role } => write!(f, "{name} ({})", role.as_str()),
            Actor::Agent { agent_id } => write!(f, "agent {agent_id}"),
            Actor::Collector => f.write_str("collector"),
        }
    }
}

/// Why a write was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Why {
    /// A CI first seen by discovery, registered from it.
    Registration { agent_id: AgentId, seq: u64 },
    /// A part of the CI discovery had not looked at before (a probe that
    /// failed until now), recorded as found.
    FirstObservation {
        agent_id: AgentId,
        seq: u64,
        scope: String,
    },
    /// An informational attribute, recorded as discovered.
    Discovery { agent_id: AgentId, seq: u64 },
    /// A change an approved RFC authorized, seen by discovery or applied
    /// when the RFC was implemented.
    Rfc { rfc: RfcId },
    /// A change a standard-change rule pre-authorized.
    StandardChange {
        name: String,
        agent_id: AgentId,
        seq: u64,
    },
    /// An unauthorized change folded in when its missing RFC was approved.
    RetroactiveApproval { rfc: RfcId },
    /// An operator's edit, with their reason.
    Manual { reason: String },
    /// Loaded from an import file.
    Import { reason: String },
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Registration { agent_id, seq } => {
                write!(
                    f,
                    "registered from discovery (report {seq} of agent {agent_id})"
                )
            }
            Why::FirstObservation {
                agent_id,
                seq,
                scope,
            } => write!(
                f,
                "first observation of {scope}* (report {seq} of agent {agent_id})"
            ),
            Why::Discovery { agent_id, seq } => write!(
                f,
                "informational, as discovered (report {seq} of agent {agent_id})"
            ),
            Why::Rfc { rfc } => write!(f, "authorized by {rfc}"),
            Why::StandardChange {
                name,
                agent_id,
                seq,
            } => write!(
                f,
                "standard change {name:?} (report {seq} of agent {agent_id})"
            ),
            Why::RetroactiveApproval { rfc } => write!(f, "retroactively approved by {rfc}"),
            Why::Manual { reason } => write!(f, "manual edit: {reason}"),
            Why::Import { reason } => write!(f, "import: {reason}"),
        }
    }
}

/// One field's old and new value. Fields are attribute names
/// (`packages.nginx`), CI fields (`status`, `owner`…), or relationships
/// (`relationship depends_on ci-7`, value `present`). `None`: absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// 1 for the write that created the CI, then one more per write.
    pub revision: u64,
    pub at_ms: i64,
    pub actor: Actor,
    pub why: Why,
    pub changes: Vec<FieldChange>,
}

/// A dated line in a record's log (an RFC's or incident's timeline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub at_ms: i64,
    pub by: Actor,
    pub text: String,
}

/// One operator action, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailEntry {
    pub seq: u64,
    pub at_ms: i64,
    pub actor: Actor,
    /// `rfc.approve`, `ci.edit`, `incident.update`…
    pub action: String,
    /// The record acted on (`RFC-3`, `ci-12`).
    pub target: String,
    pub detail: String,
}

/// The fields of a CI as flat name → value, the form history works on.
pub type Fields = BTreeMap<String, String>;

/// Rolls `fields` (the state after the newest entry) back to how they were
/// at `at_ms`, by undoing every entry made after it, newest first. Returns
/// `None` if the CI did not exist yet then.
pub fn as_of(mut fields: Fields, history: &[HistoryEntry], at_ms: i64) -> Option<Fields> {
    let first = history.iter().map(|h| h.at_ms).min()?;
    if first > at_ms {
        return None;
    }
    let mut later: Vec<&HistoryEntry> = history.iter().filter(|h| h.at_ms > at_ms).collect();
    later.sort_by_key(|h| std::cmp::Reverse(h.revision));
    for entry in later {
        for change in entry.changes.iter().rev() {
            match &change.old {
                Some(old) => fields.insert(change.field.clone(), old.clone()),
                None => fields.remove(&change.field),
            };
        }
    }
    Some(fields)
}

/// The changes that turn `old` into `new`, in field order.
pub fn changes_between(old: &Fields, new: &Fields) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (k, v) in old {
        if new.get(k) != Some(v) {
            out.push(FieldChange {
                field: k.clone(),
                old: Some(v.clone()),
                new: new.get(k).cloned(),
            });
        }
    }
    for (k, v) in new {
        if !old.contains_key(k) {
            out.push(FieldChange {
                field: k.clone(),
                old: None,
                new: Some(v.clone()),
            });
        }
    }
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

pub(crate) fn history_key(ci: CiId, revision: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&ci.as_u64().to_be_bytes());
    k[8..].copy_from_slice(&revision.to_be_bytes());
    k
}

/// Appends a history entry under the CI's next revision. Nothing to record,
/// nothing written.
pub(crate) fn record_history<E>(
    tx: &dyn Tx,
    ci: &mut CiRecord,
    at_ms: i64,
    actor: &Actor,
    why: Why,
    changes: Vec<FieldChange>,
) -> Result<(), TxAbort<E>> {
    if changes.is_empty() {
        return Ok(());
    }
    ci.revision += 1;
    let entry = HistoryEntry {
        revision: ci.revision,
        at_ms,
        actor: actor.clone(),
        why,
        changes,
    };
    tx.insert(
        Table::History,
        &history_key(ci.id, ci.revision),
        &encode(&entry),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields() -> impl Strategy<Value = Fields> {
        prop::collection::btree_map("[a-d]", "[0-3]", 0..5)
    }

    proptest! {
        /// Recording each step's changes and rolling back with `as_of`
        /// gives every intermediate state back.
        #[test]
        fn as_of_replays_the_past(states in prop::collection::vec(fields(), 1..6)) {
            let mut history = Vec::new();
            let mut current = Fields::new();
            for (i, state) in states.iter().enumerate() {
                history.push(HistoryEntry {
                    revision: i as u64 + 1,
                    at_ms: (i as i64 + 1) * 10,
                    actor: Actor::Collector,
                    why: Why::Manual { reason: "test".into() },
                    changes: changes_between(&current, state),
                });
                current = state.clone();
            }
            prop_assert_eq!(as_of(current.clone(), &history, 5), None);
            for (i, state) in states.iter().enumerate() {
                let t = (i as i64 + 1) * 10;
                prop_assert_eq!(as_of(current.clone(), &history, t), Some(state.clone()));
                prop_assert_eq!(as_of(current.clone(), &history, t + 5), Some(state.clone()));
            }
        }
    }
}
