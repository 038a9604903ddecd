//! The configuration item record, and the operator actions on CIs.
//!
//! A CI holds its own fields (class, name, status, owner, location,
//! criticality…) and its **authorized state**: the attributes the CMDB
//! says it should have, changed only by registration, approved RFCs,
//! standard changes, retroactive approvals and informational discovery.
//! What discovery last saw is kept apart (the latest inventory per agent),
//! and the difference between the two is drift.

use std::collections::{BTreeMap, BTreeSet};

use fathom_shared::ids::{AgentId, CiId};
use serde::{Deserialize, Serialize};

use super::action::{abort, not_found, trail_entry, ActionError, TxResult};
use super::history::{changes_between, record_history, Actor, Fields, HistoryEntry, Why};
use super::incident::{put_incident, Incident};
use super::relationship::Relationship;
use super::rfc::Target;
use super::{ci_key, encode, next_id, tx_get, Cmdb, Counter};
use crate::control::identify::{Identifiers, Rule};
use crate::control::policy::Level;
use crate::control::service;
use crate::store::{Store, StoreError, Table, Tx, TxAbort};
use fathom_api::ids::{DriftId, IncidentId, ReviewId, RfcId};

pub use fathom_api::ids::CiStatus;

/// How a CI came into the CMDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CiSource {
    Discovery,
    /// Created or imported by a person: racks, contracts, services…
    Manual,
}

/// A configuration item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiRecord {
    pub id: CiId,
    /// server, network_device, service, or any class a site defines.
    pub class: String,
    pub name: String,
    pub description: String,
    pub status: CiStatus,
    pub owner: Option<String>,
    pub location: Option<String>,
    pub criticality: Level,
    pub source: CiSource,
    /// The authorized state: `section.name` → value.
    pub attributes: BTreeMap<String, String>,
    /// Whether the authorized state has been established (registration).
    /// Unregistered CIs raise no drift.
    pub registered: bool,
    /// Attribute scopes the authorized state covers (see
    /// `control::attributes`); a scope discovery observes for the first
    /// time is recorded as found, not as drift.
    pub scopes: BTreeSet<String>,
    /// Bumped by every write; history entries are keyed by it.
    pub revision: u64,
    pub created_at_ms: i64,
    pub first_seen_ms: Option<i64>,
    /// When discovery last reported it; `None` for CIs never discovered.
    pub last_seen_ms: Option<i64>,
    /// The agent whose reports this CI was last updated from.
    pub reported_by: Option<AgentId>,
    /// Every agent that has reported for this CI, oldest first.
    pub agents: Vec<AgentId>,
    pub identifiers: Identifiers,
    /// How the CI was last identified, for the configuration manager.
    pub identified_by: IdentifiedBy,
    /// Open items of the identification review queue about this CI.
    pub reviews: BTreeSet<ReviewId>,
    /// Unauthorized drift still open, by attribute: what the CI's drift
    /// counts and lists show.
    pub open_drifts: BTreeMap<String, DriftId>,
    /// Drift seen reverted within the policy's flap window, by attribute:
    /// kept only so the same drift and incident reopen if the value comes
    /// back; not current drift.
    #[serde(default)]
    pub reverted_drifts: BTreeMap<String, DriftId>,
    /// Approved RFCs with a window that name this CI.
    pub scheduled_rfcs: BTreeSet<RfcId>,
    /// Set when an operator merged this CI into another.
    #[serde(default)]
    pub merged_into: Option<CiId>,
    /// The `connected_to` relationships this CI's polls made (its LLDP and
    /// CDP neighbours), with the ports; kept in step with each poll.
    #[serde(default)]
    pub discovered_links: BTreeMap<CiId, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentifiedBy {
    pub rule: Rule,
    pub detail: String,
}

impl CiRecord {
    /// A CI first seen by discovery, before registration.
    pub fn discovered(id: CiId, agent: AgentId, ids: &Identifiers, now_ms: i64) -> CiRecord {
        CiRecord {
            first_seen_ms: Some(now_ms),
            reported_by: Some(agent),
            identifiers: ids.clone(),
            identified_by: IdentifiedBy {
                rule: Rule::Agent,
                detail: format!("first discovered by agent {agent}; no existing CI matched"),
            },
            ..CiRecord::manual(id, "server", "", now_ms)
        }
        .with_source(CiSource::Discovery)
    }

    /// A CI a person creates.
    pub fn manual(id: CiId, class: &str, name: &str, now_ms: i64) -> CiRecord {
        CiRecord {
            id,
            class: class.to_owned(),
            name: name.to_owned(),
            description: String::new(),
            status: CiStatus::InUse,
            owner: None,
            location: None,
            criticality: Level::Medium,
            source: CiSource::Manual,
            attributes: BTreeMap::new(),
            registered: false,
            scopes: BTreeSet::new(),
            revision: 0,
            created_at_ms: now_ms,
            first_seen_ms: None,
            last_seen_ms: None,
            reported_by: None,
            agents: Vec::new(),
            identifiers: Identifiers::default(),
            identified_by: IdentifiedBy {
                rule: Rule::Agent,
                detail: "created by hand".into(),
            },
            reviews: BTreeSet::new(),
            open_drifts: BTreeMap::new(),
            reverted_drifts: BTreeMap::new(),
            scheduled_rfcs: BTreeSet::new(),
            merged_into: None,
            discovered_links: BTreeMap::new(),
        }
    }

    fn with_source(mut self, source: CiSource) -> CiRecord {
        self.source = source;
        self
    }

    /// The CI's own fields and authorized attributes as one flat map, the
    /// form history and baselines work on.
    pub fn fields(&self) -> Fields {
        let mut f = self.attributes.clone();
        f.insert("class".into(), self.class.clone());
        f.insert("name".into(), self.name.clone());
        f.insert("status".into(), self.status.as_str().into());
        f.insert("criticality".into(), self.criticality.as_str().into());
        if !self.description.is_empty() {
            f.insert("description".into(), self.description.clone());
        }
        if let Some(o) = &self.owner {
            f.insert("owner".into(), o.clone());
        }
        if let Some(l) = &self.location {
            f.insert("location".into(), l.clone());
        }
        if let Some(m) = &self.merged_into {
            f.insert("merged_into".into(), m.to_string());
        }
        f
    }

    /// Sets one CI field (`status`, `owner`…) from text; `None` clears
    /// the optional ones. Errors say what was wrong.
    pub fn set_field(&mut self, field: &str, value: Option<&str>) -> Result<(), String> {
        let required = |v: Option<&str>| {
            v.filter(|v| !v.trim().is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("{field} cannot be empty"))
        };
        match field {
            "class" => self.class = required(value)?,
            "name" => self.name = required(value)?,
            "description" => self.description = value.unwrap_or_default().to_owned(),
            "owner" => self.owner = value.map(str::to_owned),
            "location" => self.location = value.map(str::to_owned),
            "status" => {
                let v = required(value)?;
                self.status = CiStatus::parse(&v).ok_or_else(|| {
                    format!(
                        "{v:?} is not a status ({})",
                        CiStatus::ALL.map(|s| s.as_str()).join(", ")
                    )
                })?
            }
            "criticality" => {
                let v = required(value)?;
                self.criticality = match v.as_str() {
                    "high" => Level::High,
                    "medium" => Level::Medium,
                    "low" => Level::Low,
                    _ => return Err(format!("{v:?} is not a criticality (high, medium, low)")),
                }
            }
            other => {
                return Err(format!(
                    "{other:?} is not a CI field (class, name, description, status, owner, location, criticality)"
                ))
            }
        }
        Ok(())
    }

    /// Whether discovery has not heard from it for `stale_after_ms`.
    pub fn is_stale(&self, now_ms: i64, stale_after_ms: i64) -> bool {
        self.source == CiSource::Discovery
            && self.merged_into.is_none()
            && !matches!(self.status, CiStatus::Retired | CiStatus::Disposed)
            && self
                .last_seen_ms
                .is_some_and(|t| now_ms.saturating_sub(t) > stale_after_ms)
    }
}

pub(crate) fn load_ci(tx: &dyn Tx, id: CiId) -> TxResult<CiRecord> {
    match tx_get::<CiRecord, _>(tx, Table::Cis, &ci_key(id))? {
        Some(ci) => Ok(ci),
        None => not_found(format!("no CI {id}")),
    }
}

pub(crate) fn put_ci<E>(tx: &dyn Tx, ci: &CiRecord) -> Result<(), TxAbort<E>> {
    Ok(tx.insert(Table::Cis, &ci_key(ci.id), &encode(ci))?)
}

/// A new CI from a person (or an import).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCi {
    pub class: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub criticality: Option<String>,
    /// `section.name` → value.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// Checks a CI as a person leaves it against the class model: a known
/// class, and, for CIs kept by hand, the class's required and allowed
/// attributes; and, with the CI as it was, that its status may follow.
pub(crate) fn check_against_model(
    policy: &crate::control::policy::Policy,
    before: Option<&CiRecord>,
    ci: &CiRecord,
) -> Result<(), ActionError> {
    let invalid = |e: String| ActionError::Invalid(format!("{}: {e}", ci.id));
    if before.is_none_or(|b| b.class != ci.class) {
        policy.classes.known(&ci.class).map_err(invalid)?;
    }
    if ci.source == CiSource::Manual {
        policy
            .classes
            .check_manual(&ci.class, &ci.attributes)
            .map_err(invalid)?;
    }
    if let Some(b) = before {
        crate::control::classes::check_transition(b.status, ci.status)
            .map_err(|e| ActionError::Conflict(format!("{}: {e}", ci.id)))?;
    }
    Ok(())
}

/// Attributes people keep on any CI, discovered or not: service levels,
/// maintenance windows and redundancy. Discovery never reports them.
pub(crate) fn kept_by_people(attribute: &str) -> bool {
    ["availability.", "maintenance.", "redundancy."]
        .iter()
        .any(|p| attribute.starts_with(p))
}

impl<S: Store> Cmdb<S> {
    /// Every CI whose class and name a target names.
    pub fn resolve_targets(&self, targets: &[Target]) -> Result<Vec<CiId>, StoreError> {
        let mut out = BTreeSet::new();
        let mut selectors = Vec::new();
        for t in targets {
            match t {
                Target::Ci(id) => {
                    out.insert(*id);
                }
                other => selectors.push(other),
            }
        }
        if !selectors.is_empty() {
            for ci in self.list_cis()? {
                if ci.merged_into.is_none()
                    && selectors
                        .iter()
                        .any(|t| t.matches(ci.id, &ci.class, &ci.name))
                {
                    out.insert(ci.id);
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    pub fn create_ci(
        &self,
        by: &Actor,
        new: &NewCi,
        reason: &str,
        now_ms: i64,
    ) -> Result<CiRecord, ActionError> {
        if new.class.trim().is_empty() || new.name.trim().is_empty() {
            return Err(ActionError::Invalid("a CI needs a class and a name".into()));
        }
        for k in new.attributes.keys() {
            if !k.contains('.') || k.starts_with('.') || k.ends_with('.') {
                return Err(ActionError::Invalid(format!(
                    "attribute {k:?} is not `section.name`"
                )));
            }
        }
        self.act(|tx| {
            let id = CiId::from_u64(next_id(tx, Counter::Ci)?);
            let mut ci = CiRecord::manual(id, &new.class, &new.name, now_ms);
            ci.description = new.description.clone();
            let fields = [
                ("status", new.status.as_deref()),
                ("owner", new.owner.as_deref()),
                ("location", new.location.as_deref()),
                ("criticality", new.criticality.as_deref()),
            ];
            for (field, value) in fields {
                if let Some(v) = value {
                    ci.set_field(field, Some(v))
                        .map_err(|e| TxAbort::Abort(ActionError::Invalid(e)))?;
                }
            }
            ci.attributes = new.attributes.clone();
            service::check(&ci.attributes)
                .map_err(|e| TxAbort::Abort(ActionError::Invalid(e.to_string())))?;
            check_against_model(&self.policy, None, &ci).map_err(TxAbort::Abort)?;
            ci.registered = true;
            let changes = changes_between(&Fields::new(), &ci.fields());
            let why = Why::Manual {
                reason: reason.to_owned(),
            };
            record_history(tx, &mut ci, now_ms, by, why, changes)?;
            put_ci(tx, &ci)?;
            trail_entry(
                tx,
                now_ms,
                by,
                "ci.create",
                id.to_string(),
                format!("{} {:?}: {reason}", ci.class, ci.name),
            )?;
            Ok(ci)
        })
    }

    /// Sets CI fields (`status`, `owner`…; `None` clears) and, on CIs
    /// created by hand, attributes. A discovered CI's attributes change only
    /// through discovery and change control, except the service-level ones
    /// people keep and discovery never reports (`availability.*`,
    /// `maintenance.*`, `redundancy.*`). Calendars are checked as they are
    /// set: a bad maintenance window or agreed hours is refused, naming it.
    pub fn edit_ci(
        &self,
        by: &Actor,
        id: CiId,
        set: &[(String, Option<String>)],
        reason: &str,
        now_ms: i64,
    ) -> Result<CiRecord, ActionError> {
        if reason.trim().is_empty() {
            return Err(ActionError::Invalid(
                "say why (--reason): every CMDB write is traceable".into(),
            ));
        }
        // Open incidents on the CI, read before the transaction (which
        // cannot scan) and again by key inside it: their impact follows a
        // change of the CI's criticality.
        let incidents: Vec<IncidentId> = if set.iter().any(|(f, _)| f == "criticality") {
            self.list_incidents()?
                .into_iter()
                .filter(|i| i.status.is_open() && i.cis.contains(&id))
                .map(|i| i.id)
                .collect()
        } else {
            Vec::new()
        };
        self.act(|tx| {
            let mut ci = load_ci(tx, id)?;
            let as_was = ci.clone();
            let before = ci.fields();
            let criticality = ci.criticality;
            for (field, value) in set {
                if field.contains('.') {
                    if ci.source != CiSource::Manual && !kept_by_people(field) {
                        return abort(ActionError::Invalid(format!(
                            "{field} of {id} comes from discovery; it changes through an RFC, not an edit"
                        )));
                    }
                    match value {
                        Some(v) => ci.attributes.insert(field.clone(), v.clone()),
                        None => ci.attributes.remove(field),
                    };
                } else {
                    ci.set_field(field, value.as_deref())
                        .map_err(|e| TxAbort::Abort(ActionError::Invalid(e)))?;
                }
            }
            // Checked when this edit sets one: an unrelated edit (a status)
            // is not held up by an attribute that predates the checks.
            if set.iter().any(|(field, _)| kept_by_people(field)) {
                service::check(&ci.attributes)
                    .map_err(|e| TxAbort::Abort(ActionError::Invalid(e.to_string())))?;
            }
            check_against_model(&self.policy, Some(&as_was), &ci).map_err(TxAbort::Abort)?;
            let changes = changes_between(&before, &ci.fields());
            let detail = changes
                .iter()
                .map(|c| c.field.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let why = Why::Manual {
                reason: reason.to_owned(),
            };
            record_history(tx, &mut ci, now_ms, by, why, changes)?;
            put_ci(tx, &ci)?;
            if ci.criticality != criticality {
                self.follow_criticality(tx, &ci, criticality, &incidents, by, now_ms)?;
            }
            trail_entry(tx, now_ms, by, "ci.edit", id.to_string(), format!("{detail}: {reason}"))?;
            Ok(ci)
        })
    }

    /// A CI's criticality is its incidents' impact: open incidents on it
    /// whose impact was the old criticality (not one a person set apart)
    /// take the new one, with their priority and due time recomputed and
    /// a note saying why.
    fn follow_criticality(
        &self,
        tx: &dyn Tx,
        ci: &CiRecord,
        old: Level,
        incidents: &[IncidentId],
        by: &Actor,
        now_ms: i64,
    ) -> TxResult<()> {
        for id in incidents {
            let Some(mut i) = tx_get::<Incident, _>(tx, Table::Incidents, &id.key())? else {
                continue;
            };
            if !i.status.is_open() || i.impact != old {
                continue;
            }
            let before = i.priority;
            i.impact = ci.criticality;
            i.priority = crate::control::policy::priority(i.impact, i.urgency);
            i.due_at_ms = self.policy.resolution_due(i.priority, i.detected_at_ms);
            i.note(
                now_ms,
                by,
                format!(
                    "impact {} (was {}): {} is now of {} criticality; priority {} (was {before})",
                    i.impact.as_str(),
                    old.as_str(),
                    ci.id,
                    ci.criticality.as_str(),
                    i.priority
                ),
            );
            put_incident(tx, &i, "incident.updated", self.webhooks)?;
        }
        Ok(())
    }

    pub fn ci_history(&self, id: CiId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.scan(Table::History, &ci_key(id))
    }

    /// A CI's fields (with its relationships) as they were at `at_ms`;
    /// `None` if it did not exist yet.
    pub fn ci_as_of(&self, id: CiId, at_ms: i64) -> Result<Option<Fields>, StoreError> {
        let Some(ci) = self.ci(id)? else {
            return Ok(None);
        };
        let mut fields = ci.fields();
        let (outgoing, incoming) = self.relationships_of(id)?;
        // Discovered links are recorded with their ports, people's as
        // `present`.
        let value = |r: &Relationship| r.via.clone().unwrap_or_else(|| "present".into());
        for r in &outgoing {
            fields.insert(r.outgoing_field(), value(r));
        }
        for r in &incoming {
            fields.insert(r.incoming_field(), value(r));
        }
        Ok(super::history::as_of(fields, &self.ci_history(id)?, at_ms))
    }
}
