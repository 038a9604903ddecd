//! Operator actions on the CMDB: CI records and relationships, RFC
//! decisions, incident updates. Each is one transaction that also appends
//! to the audit trail, and every CI write to the CI's history.
//!
//! Permission checks are the caller's (the API checks the token's role);
//! the actor passed in is who the records will name.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use super::ci::{
    put_relationship, remove_relationship, CiRecord, CiSource, CiStatus, RelationKind, Relationship,
};
use super::drift::put_drift;
use super::drift::{DriftRecord, DriftStatus};
use super::history::record_history;
use super::history::{changes_between, Actor, FieldChange, Fields, HistoryEntry, TrailEntry, Why};
use super::incident::{all_settled, put_incident, settle_incident_if_done};
use super::incident::{Incident, IncidentStatus};
use super::reconcile::{self, Sighting};
use super::review::{ReviewItem, ReviewKind, ReviewStatus};
use super::rfc::put_rfc;
use super::rfc::{
    Approval, Assessment, Dependent, Evidence, NewRfc, Review, ReviewOutcome, Rfc, RfcOrigin,
    RfcStatus, Target, Window,
};
use super::{ci_key, encode, next_id, tx_get, Cmdb, Counter};
use crate::control::attributes;
use crate::control::policy::Level;
use crate::control::service;
use crate::control::spec::Spec;
use crate::ids::{DriftId, IncidentId, ReviewId, RfcId};
use crate::store::{Store, StoreError, Table, TransactionError, Tx, TxAbort};

/// Why an operator action was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (bad field, bad window…).
    #[error("{0}")]
    Invalid(String),
    /// The record's state does not allow it (an RFC already closed…).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TransactionError<ActionError>> for ActionError {
    fn from(e: TransactionError<ActionError>) -> Self {
        match e {
            TransactionError::Aborted(a) => a,
            TransactionError::Store(s) => ActionError::Store(s),
        }
    }
}

type TxResult<T> = Result<T, TxAbort<ActionError>>;

fn abort<T>(e: ActionError) -> TxResult<T> {
    Err(TxAbort::Abort(e))
}

fn not_found<T>(what: String) -> TxResult<T> {
    abort(ActionError::NotFound(what))
}

fn load_ci(tx: &dyn Tx, id: CiId) -> TxResult<CiRecord> {
    match tx_get::<CiRecord, _>(tx, Table::Cis, &ci_key(id))? {
        Some(ci) => Ok(ci),
        None => not_found(format!("no CI {id}")),
    }
}

fn load_rfc(tx: &dyn Tx, id: RfcId) -> TxResult<Rfc> {
    match tx_get::<Rfc, _>(tx, Table::Rfcs, &id.key())? {
        Some(r) => Ok(r),
        None => not_found(format!("no {id}")),
    }
}

fn load_review(tx: &dyn Tx, id: ReviewId) -> TxResult<ReviewItem> {
    match tx_get::<ReviewItem, _>(tx, Table::Reviews, &id.key())? {
        Some(r) => Ok(r),
        None => not_found(format!("no {id}")),
    }
}

fn settle_review(
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

fn put_ci<E>(tx: &dyn Tx, ci: &CiRecord) -> Result<(), TxAbort<E>> {
    Ok(tx.insert(Table::Cis, &ci_key(ci.id), &encode(ci))?)
}

pub(crate) fn trail_entry(
    tx: &dyn Tx,
    at_ms: i64,
    actor: &Actor,
    action: &str,
    target: String,
    detail: String,
) -> TxResult<()> {
    let seq = next_id(tx, Counter::Trail)?;
    let entry = TrailEntry {
        seq,
        at_ms,
        actor: actor.clone(),
        action: action.to_owned(),
        target,
        detail,
    };
    tx.insert(Table::Trail, &seq.to_be_bytes(), &encode(&entry))?;
    Ok(())
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

/// A person's update to an incident; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentUpdate {
    #[serde(default)]
    pub status: Option<IncidentStatus>,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub major: Option<bool>,
    #[serde(default)]
    pub impact: Option<Level>,
    #[serde(default)]
    pub urgency: Option<Level>,
    #[serde(default)]
    pub note: Option<String>,
    /// Resolve or close an incident whose drift is still open; needs a
    /// `note` saying why, and is audited as such.
    #[serde(default)]
    pub force: bool,
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

/// Why `from kind to` is refused: the path back that it would close.
pub(crate) fn cycle_message(from: CiId, kind: RelationKind, to: CiId, back: &[CiId]) -> String {
    let path: Vec<String> = back.iter().map(ToString::to_string).collect();
    format!(
        "{from} {kind} {to} would close a loop, since {} already; a CI cannot depend on itself",
        path.join(&format!(" {kind} "))
    )
}

/// Folds one open drift's discovered value into its CI's authorized
/// state on `rfc`'s authority: a history entry, the drift settled as
/// approved, and the observation as the RFC's evidence.
fn fold_drift(
    tx: &dyn Tx,
    by: &Actor,
    rfc: &mut Rfc,
    mut drift: DriftRecord,
    how: String,
    now_ms: i64,
) -> TxResult<()> {
    let mut ci = load_ci(tx, drift.ci)?;
    // A mass change folds every member still open, as one history entry.
    let changes: Vec<(String, Option<String>)> = drift
        .open_changes()
        .into_iter()
        .map(|(a, v)| (a.to_owned(), v.map(str::to_owned)))
        .collect();
    let mut fields = Vec::with_capacity(changes.len());
    for (attribute, value) in changes {
        let old = ci.attributes.get(&attribute).cloned();
        match &value {
            Some(v) => ci.attributes.insert(attribute.clone(), v.clone()),
            None => ci.attributes.remove(&attribute),
        };
        ci.open_drifts.remove(&attribute);
        rfc.evidence.push(Evidence {
            at_ms: drift.last_seen_ms,
            ci: drift.ci,
            attribute: attribute.clone(),
            old: old.clone(),
            new: value.clone(),
            source: format!("{}, approved by {by}", drift.id),
            drift: Some(drift.id),
        });
        fields.push(FieldChange {
            field: attribute,
            old,
            new: value,
        });
    }
    for member in &mut drift.members {
        member.open = false;
    }
    record_history(
        tx,
        &mut ci,
        now_ms,
        by,
        Why::RetroactiveApproval { rfc: rfc.id },
        fields,
    )?;
    put_ci(tx, &ci)?;
    drift.settle(DriftStatus::Approved, now_ms, by.clone(), how);
    put_drift(tx, &drift)?;
    Ok(())
}

/// Attributes people keep on any CI, discovered or not: service levels,
/// maintenance windows and redundancy. Discovery never reports them.
pub(crate) fn kept_by_people(attribute: &str) -> bool {
    ["availability.", "maintenance.", "redundancy."]
        .iter()
        .any(|p| attribute.starts_with(p))
}

fn validate_window(w: &Window) -> Result<(), ActionError> {
    if w.end_ms <= w.start_ms {
        return Err(ActionError::Invalid(
            "the window must end after it starts".into(),
        ));
    }
    Ok(())
}

impl<S: Store> Cmdb<S> {
    pub(crate) fn act_on<R>(
        &self,
        body: impl Fn(&dyn Tx) -> TxResult<R>,
    ) -> Result<R, ActionError> {
        self.act(body)
    }

    fn act<R>(&self, body: impl Fn(&dyn Tx) -> TxResult<R>) -> Result<R, ActionError> {
        Ok(self.store.transaction(body)?)
    }

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

    // CIs.

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

    /// Establishes the authorized state of a discovered CI from its latest
    /// inventory (for policy `new_cis = "review"`).
    pub fn register_ci(&self, by: &Actor, id: CiId, now_ms: i64) -> Result<CiRecord, ActionError> {
        let latest = self.latest_inventory(id)?.ok_or_else(|| {
            ActionError::Conflict(format!("{id} has no inventory to register from"))
        })?;
        self.act(|tx| {
            let mut ci = load_ci(tx, id)?;
            if ci.registered {
                return abort(ActionError::Conflict(format!("{id} is already registered")));
            }
            let sighting = Sighting {
                agent: latest.agent_id,
                seq: latest.seq,
                observed_at_ms: now_ms,
                now_ms,
                policy: &self.policy,
                webhooks: self.webhooks,
            };
            let discovered = attributes::flatten(&latest.inventory);
            let discovered = attributes::Discovered {
                attributes: discovered
                    .attributes
                    .into_iter()
                    .filter(|(k, _)| {
                        self.policy.control_of(&ci.class, k).control
                            != crate::control::policy::Control::Ignored
                    })
                    .collect(),
                scopes: discovered.scopes,
            };
            reconcile::register(tx, &mut ci, &discovered, &sighting)?;
            put_ci(tx, &ci)?;
            trail_entry(
                tx,
                now_ms,
                by,
                "ci.register",
                id.to_string(),
                format!("from report {} of agent {}", latest.seq, latest.agent_id),
            )?;
            Ok(ci)
        })
    }

    pub fn ci_history(&self, id: CiId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.scan(Table::History, &ci_key(id))
    }

    /// Relationships from and to a CI.
    /// The CIs on a path of `kind` relationships from `start` to `goal`,
    /// both included, if there is one.
    pub(crate) fn path(
        &self,
        start: CiId,
        goal: CiId,
        kind: RelationKind,
    ) -> Result<Option<Vec<CiId>>, StoreError> {
        super::ci::shortest_path(start, goal, |at| {
            let mut prefix = ci_key(at).to_vec();
            prefix.push(kind.code());
            let next: Vec<Relationship> = self.scan(Table::Relationships, &prefix)?;
            Ok(next.into_iter().map(|r| r.to).collect())
        })
    }

    pub fn relationships_of(
        &self,
        id: CiId,
    ) -> Result<(Vec<Relationship>, Vec<Relationship>), StoreError> {
        let outgoing: Vec<Relationship> = self.scan(Table::Relationships, &ci_key(id))?;
        let mut incoming = Vec::new();
        for (k, _) in self
            .store
            .scan_prefix(Table::RelationshipsReverse, &ci_key(id))?
        {
            let (Some(&kind), Some(Ok(from))) = (k.get(8), k.get(9..17).map(<[u8; 8]>::try_from))
            else {
                tracing::error!(key = %hex::encode(&k), "Corrupt reverse relationship key; skipped");
                continue;
            };
            let Some(kind) = RelationKind::from_code(kind) else {
                continue;
            };
            let key = Relationship::key(CiId::from_u64(u64::from_be_bytes(from)), kind, id);
            if let Some(r) = self.get::<Relationship>(Table::Relationships, &key)? {
                incoming.push(r);
            }
        }
        Ok((outgoing, incoming))
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

    /// Adds (`present`) or removes a relationship, recorded in both CIs' history.
    #[allow(clippy::too_many_arguments)]
    pub fn relate(
        &self,
        by: &Actor,
        from: CiId,
        kind: RelationKind,
        to: CiId,
        present: bool,
        reason: &str,
        now_ms: i64,
    ) -> Result<Relationship, ActionError> {
        if from == to {
            return Err(ActionError::Invalid("a CI cannot relate to itself".into()));
        }
        if present && kind.is_dependency() {
            if let Some(path) = self.path(to, from, kind)? {
                return Err(ActionError::Invalid(cycle_message(from, kind, to, &path)));
            }
        }
        self.act(|tx| {
            let mut a = load_ci(tx, from)?;
            let mut b = load_ci(tx, to)?;
            let key = Relationship::key(from, kind, to);
            let existing = tx_get::<Relationship, _>(tx, Table::Relationships, &key)?;
            let rel = match (&existing, present) {
                (Some(r), true) => {
                    return abort(ActionError::Conflict(format!(
                        "{from} {kind} {to} exists already (since {})",
                        fathom_support::time::format_ms(r.created_at_ms)
                    )))
                }
                (None, false) => {
                    return not_found(format!("there is no relationship {from} {kind} {to}"))
                }
                (Some(r), false) => {
                    remove_relationship(tx, from, kind, to)?;
                    r.clone()
                }
                (None, true) => {
                    let r = Relationship {
                        from,
                        kind,
                        to,
                        created_at_ms: now_ms,
                        created_by: by.clone(),
                        via: None,
                    };
                    put_relationship(tx, &r)?;
                    r
                }
            };
            let (old, new) = if present {
                (None, Some("present".to_string()))
            } else {
                (Some("present".to_string()), None)
            };
            let why = Why::Manual {
                reason: reason.to_owned(),
            };
            for (ci, field) in [
                (&mut a, rel.outgoing_field()),
                (&mut b, rel.incoming_field()),
            ] {
                let change = FieldChange {
                    field,
                    old: old.clone(),
                    new: new.clone(),
                };
                record_history(tx, ci, now_ms, by, why.clone(), vec![change])?;
                put_ci(tx, ci)?;
            }
            let action = if present { "ci.relate" } else { "ci.unrelate" };
            trail_entry(
                tx,
                now_ms,
                by,
                action,
                from.to_string(),
                format!("{from} {kind} {to}: {reason}"),
            )?;
            Ok(rel)
        })
    }

    /// What depends on `cis`, transitively, through runs_on, depends_on,
    /// installed_on and part_of (pointing at them), and connected_to (either
    /// way, one hop).
    pub fn dependents(&self, cis: &[CiId]) -> Result<Vec<Dependent>, StoreError> {
        let mut seen: BTreeSet<CiId> = cis.iter().copied().collect();
        let mut queue: VecDeque<(CiId, Vec<String>)> = cis.iter().map(|c| (*c, vec![])).collect();
        let mut out = Vec::new();
        while let Some((ci, path)) = queue.pop_front() {
            let (outgoing, incoming) = self.relationships_of(ci)?;
            let hops = incoming.iter().map(|r| (r.from, r)).chain(
                outgoing
                    .iter()
                    .filter(|r| r.kind == RelationKind::ConnectedTo)
                    .map(|r| (r.to, r)),
            );
            for (next, r) in hops {
                if !seen.insert(next) {
                    continue;
                }
                let mut p = path.clone();
                p.push(format!("{} {} {}", r.from, r.kind, r.to));
                let name = self.ci(next)?.map(|c| c.name).unwrap_or_default();
                out.push(Dependent {
                    ci: next,
                    name,
                    path: p.clone(),
                });
                if r.kind != RelationKind::ConnectedTo {
                    queue.push_back((next, p));
                }
            }
        }
        Ok(out)
    }

    // The identification review queue.

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
                    &super::identify::index_key(rule, &value),
                    &ci_key(keep),
                )?;
            }
            for agent_id in o.agents.clone() {
                if !k.agents.contains(&agent_id) {
                    k.agents.push(agent_id);
                }
                tx.insert(
                    Table::CiIndex,
                    &super::identify::agent_index_key(agent_id),
                    &ci_key(keep),
                )?;
                if let Some(mut a) =
                    tx_get::<super::AgentRecord, _>(tx, Table::Agents, agent_id.as_bytes())?
                {
                    a.ci_id = Some(keep);
                    tx.insert(Table::Agents, agent_id.as_bytes(), &encode(&a))?;
                }
            }
            for (key, value) in &inventories {
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
            let why = Why::Manual {
                reason: format!("merged {other} into {keep}: {reason}"),
            };
            // Relationships move to the kept CI.
            let mut k_changes = changes_between(&before_k, &k.fields());
            for r in outgoing.iter().chain(&incoming) {
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
                rule: super::identify::Rule::Agent,
                detail: format!("split from {id} by {by}: {reason}"),
            };
            let before = ci.fields();
            ci.agents.retain(|a| *a != agent_id);
            if ci.reported_by == Some(agent_id) {
                ci.reported_by = ci.agents.last().copied();
            }
            tx.insert(
                Table::CiIndex,
                &super::identify::agent_index_key(agent_id),
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

    // RFCs.

    pub fn rfc(&self, id: RfcId) -> Result<Option<Rfc>, StoreError> {
        self.get(Table::Rfcs, &id.key())
    }

    pub fn list_rfcs(&self) -> Result<Vec<Rfc>, StoreError> {
        self.scan(Table::Rfcs, b"")
    }

    /// Approved RFCs with a window ending after `from_ms`, by window start.
    pub fn forward_schedule(&self, from_ms: i64) -> Result<Vec<Rfc>, StoreError> {
        let mut out: Vec<Rfc> = self
            .list_rfcs()?
            .into_iter()
            .filter(|r| matches!(r.status, RfcStatus::Scheduled | RfcStatus::Approved))
            .filter(|r| r.window.is_none_or(|w| w.end_ms > from_ms))
            .collect();
        out.sort_by_key(|r| r.window.map_or(i64::MAX, |w| w.start_ms));
        Ok(out)
    }

    pub fn raise_rfc(&self, by: &Actor, new: &NewRfc, now_ms: i64) -> Result<Rfc, ActionError> {
        if new.title.trim().is_empty() {
            return Err(ActionError::Invalid("an RFC needs a title".into()));
        }
        if new.targets.is_empty() {
            return Err(ActionError::Invalid(
                "name at least one target CI (--target ci-12 or a selector like class=server)"
                    .into(),
            ));
        }
        if let Some(w) = &new.window {
            validate_window(w)?;
        }
        let cis = self.resolve_targets(&new.targets)?;
        self.act(|tx| {
            for ci in &cis {
                load_ci(tx, *ci)?;
            }
            let id = RfcId::from_u64(next_id(tx, Counter::Rfc)?);
            let rfc = Rfc::raised(id, new, cis.clone(), by, now_ms, RfcOrigin::Raised);
            put_rfc(tx, &rfc)?;
            trail_entry(
                tx,
                now_ms,
                by,
                "rfc.raise",
                id.to_string(),
                rfc.title.clone(),
            )?;
            Ok(rfc)
        })
    }

    pub fn assess_rfc(
        &self,
        by: &Actor,
        id: RfcId,
        risk: Level,
        notes: &str,
        now_ms: i64,
    ) -> Result<Rfc, ActionError> {
        let rfc = self
            .rfc(id)?
            .ok_or_else(|| ActionError::NotFound(format!("no {id}")))?;
        let cis = match rfc.origin {
            RfcOrigin::MissingRfc { .. } => rfc.cis.clone(),
            RfcOrigin::Raised => self.resolve_targets(&rfc.targets)?,
        };
        let dependents = self.dependents(&cis)?;
        // Other RFCs touching the same CIs in an overlapping window.
        let mut conflicts = Vec::new();
        if let Some(w) = rfc.window {
            for other in self.list_rfcs()? {
                let Some(ow) = other.window else { continue };
                let overlaps = ow.start_ms < w.end_ms && w.start_ms < ow.end_ms;
                let shared: Vec<String> = other
                    .cis
                    .iter()
                    .filter(|c| cis.contains(c))
                    .map(ToString::to_string)
                    .collect();
                if other.id != id && other.status.is_open() && overlaps && !shared.is_empty() {
                    conflicts.push(format!(
                        "{} ({}, {}) overlaps this window on {}",
                        other.id,
                        other.title,
                        other.status.as_str(),
                        shared.join(", ")
                    ));
                }
            }
        }
        self.act(|tx| {
            let mut rfc = load_rfc(tx, id)?;
            rfc.assess(Assessment {
                at_ms: now_ms,
                by: by.clone(),
                cis: cis.clone(),
                dependents: dependents.clone(),
                risk,
                notes: notes.to_owned(),
                conflicts: conflicts.clone(),
            })
            .map_err(|e| TxAbort::Abort(ActionError::Conflict(e.to_string())))?;
            put_rfc(tx, &rfc)?;
            trail_entry(
                tx,
                now_ms,
                by,
                "rfc.assess",
                id.to_string(),
                format!("risk {}, {} dependent(s)", risk.as_str(), dependents.len()),
            )?;
            Ok(rfc)
        })
    }

    /// Approves or rejects. Approving a missing-RFC draft folds its drift
    /// into the CMDB and resolves its incident; a window given here
    /// schedules the RFC.
    pub fn decide_rfc(
        &self,
        by: &Actor,
        id: RfcId,
        approve: bool,
        comment: &str,
        window: Option<Window>,
        now_ms: i64,
    ) -> Result<Rfc, ActionError> {
        if let Some(w) = &window {
            validate_window(w)?;
        }
        self.act(|tx| {
            let mut rfc = load_rfc(tx, id)?;
            let decision = Approval {
                at_ms: now_ms,
                by: by.clone(),
                approved: approve,
                comment: comment.to_owned(),
            };
            let conflict = |e: super::rfc::InvalidTransition| TxAbort::Abort(ActionError::Conflict(e.to_string()));
            if !approve {
                rfc.reject(decision).map_err(conflict)?;
                for inc in rfc.incidents.clone() {
                    if let Some(mut i) = tx_get::<Incident, _>(tx, Table::Incidents, &inc.key())? {
                        i.note(now_ms, by, format!(
                            "{id} rejected: the change must be reverted; the incident resolves when discovery sees the revert. {comment}"
                        ));
                        put_incident(tx, &i, "incident.updated", self.webhooks)?;
                    }
                }
                put_rfc(tx, &rfc)?;
                trail_entry(tx, now_ms, by, "rfc.reject", id.to_string(), comment.to_owned())?;
                return Ok(rfc);
            }
            if window.is_some() {
                rfc.window = window;
            }
            rfc.approve(decision).map_err(conflict)?;
            if let RfcOrigin::MissingRfc { .. } = rfc.origin {
                self.fold_retroactively(tx, by, &mut rfc, now_ms)?;
            } else {
                if rfc.status == RfcStatus::Scheduled {
                    for ci in rfc.cis.clone() {
                        let mut c = load_ci(tx, ci)?;
                        c.scheduled_rfcs.insert(id);
                        put_ci(tx, &c)?;
                    }
                }
                self.authorize_seen_drift(tx, by, &mut rfc, now_ms)?;
            }
            put_rfc(tx, &rfc)?;
            trail_entry(tx, now_ms, by, "rfc.approve", id.to_string(), comment.to_owned())?;
            Ok(rfc)
        })
    }

    fn fold_retroactively(
        &self,
        tx: &dyn Tx,
        by: &Actor,
        rfc: &mut Rfc,
        now_ms: i64,
    ) -> TxResult<()> {
        let mut folded = 0;
        let spec_list = rfc.specs.clone();
        let specs = crate::control::spec::SpecIndex::new(&spec_list);
        for drift_id in rfc.drifts.clone() {
            let Some(drift) = tx_get::<DriftRecord, _>(tx, Table::Drifts, &drift_id.key())? else {
                continue;
            };
            if drift.status != DriftStatus::Open {
                continue;
            }
            // Only the value the draft describes: if it moved on since, the
            // approval does not cover the new value.
            if !drift.covered_by(&specs) {
                rfc.log.push(super::history::Note {
                    at_ms: now_ms,
                    by: by.clone(),
                    text: format!(
                        "{drift_id}: {} has changed since the draft; not folded",
                        drift.attribute
                    ),
                });
                continue;
            }
            let how = format!("retroactively approved by {}", rfc.id);
            fold_drift(tx, by, rfc, drift, how, now_ms)?;
            folded += 1;
        }
        rfc.implement(
            now_ms,
            by,
            format!("implemented by retroactive approval: {folded} change(s) folded into the CMDB"),
        )
        .map_err(|e| TxAbort::Abort(ActionError::Conflict(e.to_string())))?;
        for inc in rfc.incidents.clone() {
            settle_incident_if_done(tx, inc, now_ms, self.webhooks, || {
                format!(
                    "the changes were retroactively approved by {} ({by})",
                    rfc.id
                )
            })?;
        }
        Ok(())
    }

    /// An RFC approved after discovery already saw its change (an emergency
    /// change approved after the fact): the open drift on its CIs that its
    /// specs match is authorized now, whatever the window, with the
    /// evidence already observed. Drafts left with nothing open are
    /// cancelled, incidents with nothing open resolve, and an RFC whose
    /// every spec is now seen is implemented.
    fn authorize_seen_drift(
        &self,
        tx: &dyn Tx,
        by: &Actor,
        rfc: &mut Rfc,
        now_ms: i64,
    ) -> TxResult<()> {
        let mut drafts = BTreeSet::new();
        let mut incidents = BTreeSet::new();
        for ci in rfc.cis.clone() {
            let record = load_ci(tx, ci)?;
            // The members of a mass change all name it: each drift once.
            let ids: BTreeSet<DriftId> = record.open_drifts.values().copied().collect();
            let spec_list = rfc.specs.clone();
            let specs = crate::control::spec::SpecIndex::new(&spec_list);
            for id in ids {
                let Some(drift) = tx_get::<DriftRecord, _>(tx, Table::Drifts, &id.key())? else {
                    continue;
                };
                let covered = drift.covered_by(&specs);
                if drift.status != DriftStatus::Open || !covered {
                    continue;
                }
                drafts.extend(drift.missing_rfc);
                incidents.extend(drift.incident);
                rfc.drifts.push(drift.id);
                let how = format!(
                    "authorized by {}, approved after the change was seen",
                    rfc.id
                );
                fold_drift(tx, by, rfc, drift, how, now_ms)?;
            }
        }
        if incidents.is_empty() {
            return Ok(());
        }
        for draft in drafts {
            let mut d = load_rfc(tx, draft)?;
            if matches!(d.status, RfcStatus::New | RfcStatus::Assessed)
                && all_settled(tx, &d.drifts, None)?
            {
                d.cancel(now_ms, by, &format!("superseded by {}", rfc.id))
                    .map_err(|e| TxAbort::Abort(ActionError::Conflict(e.to_string())))?;
                put_rfc(tx, &d)?;
            }
        }
        for inc in incidents {
            if !rfc.incidents.contains(&inc) {
                rfc.incidents.push(inc);
            }
            settle_incident_if_done(tx, inc, now_ms, self.webhooks, || {
                format!("the changes were authorized by {} ({by})", rfc.id)
            })?;
        }
        if rfc.all_specs_seen() {
            rfc.implement(
                now_ms,
                by,
                "implemented: discovery had already seen every spec on every CI".into(),
            )
            .map_err(|e| TxAbort::Abort(ActionError::Conflict(e.to_string())))?;
            for ci in rfc.cis.clone() {
                let mut c = load_ci(tx, ci)?;
                if c.scheduled_rfcs.remove(&rfc.id) {
                    put_ci(tx, &c)?;
                }
            }
        }
        Ok(())
    }

    /// Sets or moves the window of an RFC.
    pub fn schedule_rfc(
        &self,
        by: &Actor,
        id: RfcId,
        window: Window,
        now_ms: i64,
    ) -> Result<Rfc, ActionError> {
        validate_window(&window)?;
        self.act(|tx| {
            let mut rfc = load_rfc(tx, id)?;
            rfc.schedule(window, now_ms, by)
                .map_err(|e| TxAbort::Abort(ActionError::Conflict(e.to_string())))?;
            if rfc.status == RfcStatus::Scheduled {
                for ci in rfc.cis.clone() {
                    let mut c = load_ci(tx, ci)?;
                    c.scheduled_rfcs.insert(id);
                    put_ci(tx, &c)?;
                }
            }
            put_rfc(tx, &rfc)?;
            trail_entry(
                tx,
                now_ms,
                by,
                "rfc.schedule",
                id.to_string(),
                format!(
                    "{} to {}",
                    fathom_support::time::format_ms(window.start_ms),
                    fathom_support::time::format_ms(window.end_ms)
                ),
            )?;
            Ok(rfc)
        })
    }

    /// Marks an RFC implemented, applying its CI-field specs (`status:
    /// retired`…) to its CIs.
    pub fn implement_rfc(
        &self,
        by: &Actor,
        id: RfcId,
        comment: &str,
        now_ms: i64,
    ) -> Result<Rfc, ActionError> {
        self.act(|tx| {
            let mut rfc = load_rfc(tx, id)?;
            let field_specs: Vec<&Spec> = rfc.specs.iter().filter(|s| s.is_ci_field()).collect();
            let mut applied = Vec::new();
            for ci_id in rfc.cis.clone() {
                let mut ci = load_ci(tx, ci_id)?;
                let as_was = ci.clone();
                let before = ci.fields();
                for spec in &field_specs {
                    let crate::control::spec::Expect::Value(v) = &spec.expect else {
                        continue;
                    };
                    ci.set_field(spec.attribute.as_str(), Some(v.as_str()))
                        .map_err(|e| TxAbort::Abort(ActionError::Invalid(e)))?;
                }
                check_against_model(&self.policy, Some(&as_was), &ci).map_err(TxAbort::Abort)?;
                ci.scheduled_rfcs.remove(&id);
                let changes = changes_between(&before, &ci.fields());
                for c in &changes {
                    applied.push(Evidence {
                        at_ms: now_ms,
                        ci: ci_id,
                        attribute: c.field.clone(),
                        old: c.old.clone(),
                        new: c.new.clone(),
                        source: format!("applied by {by}"),
                        drift: None,
                    });
                }
                record_history(tx, &mut ci, now_ms, by, Why::Rfc { rfc: id }, changes)?;
                put_ci(tx, &ci)?;
            }
            let unseen: Vec<String> = rfc
                .specs
                .iter()
                .filter(|s| !s.is_ci_field())
                .filter(|s| {
                    !rfc.cis.iter().all(|ci| {
                        rfc.evidence
                            .iter()
                            .any(|e| e.ci == *ci && s.matches(&e.attribute, e.new.as_deref()))
                    })
                })
                .map(|s| format!("`{s}`"))
                .collect();
            let mut text = format!("implemented: {comment}");
            if !unseen.is_empty() {
                text.push_str(&format!(
                    " (not yet seen by discovery: {})",
                    unseen.join(", ")
                ));
            }
            rfc.evidence.extend(applied);
            rfc.implement(now_ms, by, text)
                .map_err(|e| TxAbort::Abort(ActionError::Conflict(e.to_string())))?;
            put_rfc(tx, &rfc)?;
            trail_entry(
                tx,
                now_ms,
                by,
                "rfc.implement",
                id.to_string(),
                comment.to_owned(),
            )?;
            Ok(rfc)
        })
    }

    pub fn review_rfc(
        &self,
        by: &Actor,
        id: RfcId,
        outcome: ReviewOutcome,
        comment: &str,
        now_ms: i64,
    ) -> Result<Rfc, ActionError> {
        self.act(|tx| {
            let mut rfc = load_rfc(tx, id)?;
            rfc.post_implementation_review(Review {
                at_ms: now_ms,
                by: by.clone(),
                outcome,
                comment: comment.to_owned(),
            })
            .map_err(|e| TxAbort::Abort(ActionError::Conflict(e.to_string())))?;
            put_rfc(tx, &rfc)?;
            trail_entry(
                tx,
                now_ms,
                by,
                "rfc.review",
                id.to_string(),
                format!("{outcome:?}: {comment}").to_lowercase(),
            )?;
            Ok(rfc)
        })
    }

    /// Closes (reviewed, rejected, failed) or cancels (still open) an RFC.
    pub fn close_rfc(
        &self,
        by: &Actor,
        id: RfcId,
        cancel: bool,
        comment: &str,
        now_ms: i64,
    ) -> Result<Rfc, ActionError> {
        self.act(|tx| {
            let mut rfc = load_rfc(tx, id)?;
            let result = if cancel {
                rfc.cancel(now_ms, by, comment)
            } else {
                rfc.close(now_ms, by, comment)
            };
            result.map_err(|e| TxAbort::Abort(ActionError::Conflict(e.to_string())))?;
            for ci in rfc.cis.clone() {
                if let Some(mut c) = tx_get::<CiRecord, _>(tx, Table::Cis, &ci_key(ci))? {
                    if c.scheduled_rfcs.remove(&id) {
                        put_ci(tx, &c)?;
                    }
                }
            }
            put_rfc(tx, &rfc)?;
            let action = if cancel { "rfc.cancel" } else { "rfc.close" };
            trail_entry(tx, now_ms, by, action, id.to_string(), comment.to_owned())?;
            Ok(rfc)
        })
    }

    // Drift.

    pub fn drift(&self, id: DriftId) -> Result<Option<DriftRecord>, StoreError> {
        self.get(Table::Drifts, &id.key())
    }

    pub fn list_drifts(&self) -> Result<Vec<DriftRecord>, StoreError> {
        self.scan(Table::Drifts, b"")
    }

    // Incidents.

    pub fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        self.get(Table::Incidents, &id.key())
    }

    pub fn list_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.scan(Table::Incidents, b"")
    }

    /// Records an incident a person reports.
    #[allow(clippy::too_many_arguments)]
    pub fn raise_incident(
        &self,
        by: &Actor,
        title: &str,
        symptom: &str,
        category: &str,
        impact: Level,
        urgency: Level,
        cis: &[CiId],
        now_ms: i64,
    ) -> Result<Incident, ActionError> {
        if title.trim().is_empty() {
            return Err(ActionError::Invalid("an incident needs a title".into()));
        }
        self.act(|tx| {
            for ci in cis {
                load_ci(tx, *ci)?;
            }
            let id = IncidentId::from_u64(next_id(tx, Counter::Incident)?);
            let mut i = Incident::new(
                id,
                title.to_owned(),
                symptom.to_owned(),
                category,
                impact,
                urgency,
                now_ms,
                by.clone(),
            );
            i.cis = cis.to_vec();
            i.due_at_ms = self.policy.resolution_due(i.priority, now_ms);
            put_incident(tx, &i, "incident.created", self.webhooks)?;
            trail_entry(
                tx,
                now_ms,
                by,
                "incident.raise",
                id.to_string(),
                title.to_owned(),
            )?;
            Ok(i)
        })
    }

    pub fn update_incident(
        &self,
        by: &Actor,
        id: IncidentId,
        update: &IncidentUpdate,
        now_ms: i64,
    ) -> Result<Incident, ActionError> {
        self.act(|tx| {
            let Some(mut i) = tx_get::<Incident, _>(tx, Table::Incidents, &id.key())? else {
                return not_found(format!("no {id}"));
            };
            if i.status == IncidentStatus::Closed {
                return abort(ActionError::Conflict(format!(
                    "{id} is closed; a closed incident is final"
                )));
            }
            let mut said = Vec::new();
            if let Some(a) = &update.assignee {
                i.assignee = Some(a.clone());
                said.push(format!("assigned to {a}"));
            }
            if let Some(m) = update.major {
                i.major = m;
                said.push(if m {
                    "declared major".into()
                } else {
                    "no longer major".to_string()
                });
            }
            if update.impact.is_some() || update.urgency.is_some() {
                i.impact = update.impact.unwrap_or(i.impact);
                i.urgency = update.urgency.unwrap_or(i.urgency);
                i.priority = crate::control::policy::priority(i.impact, i.urgency);
                i.due_at_ms = self.policy.resolution_due(i.priority, i.detected_at_ms);
                said.push(format!(
                    "priority {} (impact {}, urgency {})",
                    i.priority,
                    i.impact.as_str(),
                    i.urgency.as_str()
                ));
            }
            let note = update.note.clone().unwrap_or_default();
            let status = update.status.or(match (&update.assignee, i.status) {
                (Some(_), IncidentStatus::New) => Some(IncidentStatus::Assigned),
                _ => None,
            });
            // An incident raised by drift ends when its drift is settled.
            let mut forced = None;
            if matches!(status, Some(IncidentStatus::Resolved | IncidentStatus::Closed))
                && i.status.is_open()
            {
                let mut open = Vec::new();
                for d in &i.drifts {
                    if let Some(d) = tx_get::<DriftRecord, _>(tx, Table::Drifts, &d.key())? {
                        if d.status == DriftStatus::Open {
                            open.push(d.id.to_string());
                        }
                    }
                }
                if !open.is_empty() {
                    if !update.force {
                        let drafts: Vec<String> = i.rfcs.iter().map(ToString::to_string).collect();
                        return abort(ActionError::Conflict(format!(
                            "{id} was raised by drift that is still open ({}): it resolves by itself \
                             when that is settled (approve the missing RFC {}, or reject it and \
                             revert the change). To resolve it anyway, give --force and a --note \
                             saying why; that is recorded in the audit trail",
                            open.join(", "),
                            if drafts.is_empty() { "-".into() } else { drafts.join(", ") }
                        )));
                    }
                    if note.trim().is_empty() {
                        return abort(ActionError::Invalid(
                            "--force needs a --note saying why the incident ends with its drift open"
                                .into(),
                        ));
                    }
                    forced = Some(open.join(", "));
                }
            }
            if !said.is_empty() {
                i.note(now_ms, by, said.join("; "));
            }
            match status {
                Some(s) => i
                    .set_status(s, now_ms, by, &note)
                    .map_err(|e| TxAbort::Abort(ActionError::Conflict(e.to_string())))?,
                None if !note.is_empty() => i.note(now_ms, by, note.clone()),
                None => {}
            }
            if said.is_empty() && status.is_none() && note.is_empty() {
                return abort(ActionError::Invalid("nothing to update".into()));
            }
            put_incident(tx, &i, "incident.updated", self.webhooks)?;
            let (action, detail) = match &forced {
                Some(open) => (
                    "incident.force_resolve",
                    format!("{} with drift open ({open}): {note}", i.status.as_str()),
                ),
                None => (
                    "incident.update",
                    format!("{} {note}", said.join("; ")).trim().to_owned(),
                ),
            };
            trail_entry(tx, now_ms, by, action, id.to_string(), detail)?;
            Ok(i)
        })
    }

    // The audit trail.

    pub fn trail_entries(&self) -> Result<Vec<TrailEntry>, StoreError> {
        self.scan(Table::Trail, b"")
    }

    /// Removes a delivered webhook event.
    pub fn outbox_delivered(&self, seq: u64) -> Result<(), StoreError> {
        let key = seq.to_be_bytes();
        let result = self
            .store
            .transaction::<(), std::convert::Infallible>(|tx| Ok(tx.remove(Table::Outbox, &key)?));
        result.map_err(|e| match e {
            TransactionError::Store(s) => s,
            TransactionError::Aborted(never) => match never {},
        })
    }

    /// Webhook events waiting for delivery, oldest first.
    pub fn outbox(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .store
            .scan_prefix(Table::Outbox, b"")?
            .into_iter()
            .filter_map(|(k, v)| {
                <[u8; 8]>::try_from(k.as_slice())
                    .ok()
                    .map(|k| (u64::from_be_bytes(k), v))
            })
            .collect())
    }
}
