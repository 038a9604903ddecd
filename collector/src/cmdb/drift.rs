//! Drift records: one per difference discovery found between a CI's
//! authorized state and what it saw, with the decision taken on it and its
//! explanation. Authorized differences get one too (closed at once), so
//! every change the CMDB took in from discovery can be explained.
//!
//! An unauthorized drift stays open until it is retroactively approved,
//! superseded by an RFC that authorizes the value, or seen reverted. A
//! reverted drift stays attached to its CI for the policy's flap window:
//! if the value comes back in that time the same drift and incident reopen.

use fathom_shared::ids::{AgentId, CiId};
use serde::{Deserialize, Serialize};

use super::history::Actor;
use super::{encode, Cmdb};
use crate::control::attributes::ChangeKind;
use crate::control::decide::Decision;
use crate::store::{Store, StoreError, Table, Tx, TxAbort};
use fathom_api::ids::{DriftId, IncidentId, RfcId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DriftStatus {
    /// Authorized when seen (by an RFC or a standard change), or
    /// informational: folded into the CMDB.
    Authorized,
    /// Unauthorized and still there.
    Open,
    /// Discovery saw the authorized value again.
    Reverted,
    /// Folded into the CMDB by a retroactively approved missing RFC.
    Approved,
    /// Folded in because an RFC scheduled later covers the value.
    Superseded,
}

impl DriftStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftStatus::Authorized => "authorized",
            DriftStatus::Open => "open",
            DriftStatus::Reverted => "reverted",
            DriftStatus::Approved => "approved",
            DriftStatus::Superseded => "superseded",
        }
    }
}

/// One sighting of the drifted attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub at_ms: i64,
    pub value: Option<String>,
    pub agent_id: AgentId,
    pub seq: u64,
}

/// Observations kept per drift; the count goes on.
pub const MAX_OBSERVATIONS: usize = 50;

/// A report whose new drift in one section (unauthorized, or authorized)
/// exceeds this many attributes records it as one *mass change*: one drift
/// record for the section (`package.*`, "412 changes") listing its members,
/// reviewed, approved or reverted as one unit, as a distribution upgrade is.
pub const MASS_CHANGE_THRESHOLD: usize = 50;

/// One attribute of a mass change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub attribute: String,
    /// The authorized value when the change was first seen.
    pub authorized: Option<String>,
    /// The latest discovered value.
    pub discovered: Option<String>,
    /// Still differs from the authorized value, undecided; `false` once
    /// it was reverted, authorized or folded.
    pub open: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftRecord {
    pub id: DriftId,
    pub ci: CiId,
    pub ci_name: String,
    pub class: String,
    pub attribute: String,
    pub section: String,
    pub kind: ChangeKind,
    /// The authorized value when the drift was first seen.
    pub authorized: Option<String>,
    /// The latest discovered value.
    pub discovered: Option<String>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub decision: Decision,
    pub status: DriftStatus,
    pub incident: Option<IncidentId>,
    pub missing_rfc: Option<RfcId>,
    /// Times the value changed while drifted, or came back after a revert.
    pub flips: u32,
    pub observation_count: u64,
    pub observations: Vec<Observation>,
    pub resolved_at_ms: Option<i64>,
    pub resolution: Option<String>,
    pub resolved_by: Option<Actor>,
    /// What earlier observations were, and how each was decided, when a
    /// later one changed the kind or the explanation (oldest first, at
    /// most [`MAX_OBSERVATIONS`]): `kind` and `decision` above are the
    /// latest observation's.
    #[serde(default)]
    pub earlier: Vec<EarlierDecision>,
    /// For a mass change (`attribute` is `section.*`): every attribute it
    /// stands for. Empty for the drift of one attribute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

/// A decision a drift record carried before a later observation replaced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierDecision {
    /// When it was last the current one.
    pub until_ms: i64,
    pub value: Option<String>,
    pub kind: ChangeKind,
    pub decision: Decision,
}

impl DriftRecord {
    /// Whether this drift stands for many attributes of one section.
    pub fn is_mass_change(&self) -> bool {
        !self.members.is_empty()
    }

    /// The changes it stands for that are still open: (attribute, value).
    pub fn open_changes(&self) -> Vec<(&str, Option<&str>)> {
        if self.is_mass_change() {
            self.members
                .iter()
                .filter(|m| m.open)
                .map(|m| (m.attribute.as_str(), m.discovered.as_deref()))
                .collect()
        } else {
            vec![(self.attribute.as_str(), self.discovered.as_deref())]
        }
    }

    /// Whether `specs` describe every change this drift still stands for.
    pub fn covered_by(&self, specs: &crate::control::spec::SpecIndex<'_>) -> bool {
        let open = self.open_changes();
        !open.is_empty()
            && open
                .iter()
                .all(|(attribute, value)| specs.matches(attribute, *value))
    }

    /// Records a sighting; returns whether the value differs from the last.
    pub fn observe(&mut self, observation: Observation) -> bool {
        let changed = observation.value != self.discovered;
        self.discovered = observation.value.clone();
        self.last_seen_ms = self.last_seen_ms.max(observation.at_ms);
        self.observation_count += 1;
        if self.observations.len() >= MAX_OBSERVATIONS {
            // Keep the first sighting; drop the oldest after it.
            self.observations.remove(1);
        }
        self.observations.push(observation);
        changed
    }

    /// Records a sighting and the decision taken on it: the explanation
    /// shown is always the latest observation's. One made for another value,
    /// kind or verdict is kept in `earlier`; the same value seen again only
    /// refreshes it (its explanation names when it was observed). Returns
    /// whether the value differs from the last.
    pub fn observe_decided(
        &mut self,
        observation: Observation,
        kind: ChangeKind,
        decision: &Decision,
    ) -> bool {
        let replaced = kind != self.kind
            || observation.value != self.discovered
            || decision.verdict != self.decision.verdict
            || decision.policy_rule != self.decision.policy_rule;
        let previous = std::mem::replace(&mut self.decision, decision.clone());
        if replaced {
            if self.earlier.len() >= MAX_OBSERVATIONS {
                self.earlier.remove(0);
            }
            self.earlier.push(EarlierDecision {
                until_ms: self.last_seen_ms,
                value: self.discovered.clone(),
                kind: self.kind,
                decision: previous,
            });
            self.kind = kind;
        }
        self.observe(observation)
    }

    pub fn settle(&mut self, status: DriftStatus, at_ms: i64, by: Actor, how: String) {
        self.status = status;
        self.resolved_at_ms = Some(at_ms);
        self.resolution = Some(how);
        self.resolved_by = Some(by);
    }
}

pub(crate) fn put_drift<E>(tx: &dyn Tx, d: &DriftRecord) -> Result<(), TxAbort<E>> {
    Ok(tx.insert(Table::Drifts, &d.id.key(), &encode(d))?)
}

impl<S: Store> Cmdb<S> {
    pub fn drift(&self, id: DriftId) -> Result<Option<DriftRecord>, StoreError> {
        self.get(Table::Drifts, &id.key())
    }

    pub fn list_drifts(&self) -> Result<Vec<DriftRecord>, StoreError> {
        self.scan(Table::Drifts, b"")
    }
}
