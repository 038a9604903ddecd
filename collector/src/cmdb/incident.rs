//! Incidents: recorded, classified, prioritized (impact × urgency),
//! assigned, worked, resolved and formally closed. The collector raises
//! them for unauthorized changes, and resolves them itself when the change
//! is approved retroactively or seen reverted; people can raise them too.
//!
//! Status: new → assigned → in_progress ⇄ pending → resolved → closed; a
//! resolved incident reopens (to in_progress) when its drift comes back.

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use super::action::{abort, not_found, trail_entry, ActionError};
use super::ci::load_ci;
use super::drift::{DriftRecord, DriftStatus};
use super::history::{Actor, Note};
use super::{encode, next_id, tx_get, Cmdb, Counter};
use crate::control::policy::{priority, Level};
use crate::store::{Store, StoreError, Table, Tx, TxAbort};
use fathom_api::ids::{DriftId, IncidentId, RfcId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    New,
    Assigned,
    #[value(name = "in_progress", alias = "in-progress")]
    #[serde(alias = "in-progress")]
    InProgress,
    Pending,
    Resolved,
    Closed,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::New => "new",
            IncidentStatus::Assigned => "assigned",
            IncidentStatus::InProgress => "in_progress",
            IncidentStatus::Pending => "pending",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
        }
    }

    pub fn is_open(self) -> bool {
        !matches!(self, IncidentStatus::Resolved | IncidentStatus::Closed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub title: String,
    /// What was seen, for the person picking it up.
    pub symptom: String,
    /// `unauthorized_change`, or what a person filed it as.
    pub category: String,
    pub impact: Level,
    pub urgency: Level,
    /// 1 (most severe) to 4, from impact × urgency.
    pub priority: u8,
    pub major: bool,
    pub status: IncidentStatus,
    pub assignee: Option<String>,
    pub cis: Vec<CiId>,
    pub drifts: Vec<DriftId>,
    pub rfcs: Vec<RfcId>,
    pub detected_at_ms: i64,
    /// When it should be resolved by, from its priority (policy
    /// `priority.target_resolution`).
    pub due_at_ms: i64,
    pub reported_by: Actor,
    pub updated_at_ms: i64,
    pub resolution: Option<String>,
    pub resolved_at_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
    /// How often it came back after being resolved (flapping drift).
    pub reopened: u32,
    pub log: Vec<Note>,
}

/// An incident update its status does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{incident} is {status}; {reason}")]
pub struct InvalidUpdate {
    pub incident: IncidentId,
    pub status: &'static str,
    pub reason: &'static str,
}

impl Incident {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: IncidentId,
        title: String,
        symptom: String,
        category: &str,
        impact: Level,
        urgency: Level,
        at_ms: i64,
        by: Actor,
    ) -> Incident {
        Incident {
            id,
            title,
            symptom,
            category: category.to_owned(),
            impact,
            urgency,
            priority: priority(impact, urgency),
            major: false,
            status: IncidentStatus::New,
            assignee: None,
            cis: vec![],
            drifts: vec![],
            rfcs: vec![],
            detected_at_ms: at_ms,
            due_at_ms: at_ms,
            reported_by: by.clone(),
            updated_at_ms: at_ms,
            resolution: None,
            resolved_at_ms: None,
            closed_at_ms: None,
            reopened: 0,
            log: vec![Note {
                at_ms,
                by,
                text: "recorded".into(),
            }],
        }
    }

    /// Whether it is still open past its due time.
    pub fn overdue(&self, now_ms: i64) -> bool {
        self.status.is_open() && now_ms > self.due_at_ms
    }

    pub fn note(&mut self, at_ms: i64, by: &Actor, text: String) {
        self.updated_at_ms = at_ms;
        self.log.push(Note {
            at_ms,
            by: by.clone(),
            text,
        });
    }

    fn refuse(&self, reason: &'static str) -> InvalidUpdate {
        InvalidUpdate {
            incident: self.id,
            status: self.status.as_str(),
            reason,
        }
    }

    /// Moves to `status` by a person's update.
    pub fn set_status(
        &mut self,
        status: IncidentStatus,
        at_ms: i64,
        by: &Actor,
        note: &str,
    ) -> Result<(), InvalidUpdate> {
        use IncidentStatus::*;
        let allowed = match (self.status, status) {
            (Closed, _) => return Err(self.refuse("a closed incident is final")),
            (from, to) if from == to => true,
            (Resolved, InProgress) => true,
            (Resolved, Closed) => true,
            (_, Closed) => return Err(self.refuse("resolve it before closing it")),
            (Resolved, _) => return Err(self.refuse("reopen it to in_progress first")),
            (_, New) => return Err(self.refuse("an incident cannot go back to new")),
            (_, Assigned) if self.assignee.is_none() => {
                return Err(self.refuse("give an assignee to assign it"))
            }
            _ => true,
        };
        debug_assert!(allowed);
        let from = self.status;
        self.status = status;
        match status {
            Resolved => {
                self.resolved_at_ms = Some(at_ms);
                self.resolution = Some(note.to_owned());
            }
            Closed => self.closed_at_ms = Some(at_ms),
            InProgress if from == Resolved => {
                self.reopened += 1;
                self.resolved_at_ms = None;
            }
            _ => {}
        }
        self.note(
            at_ms,
            by,
            if note.is_empty() {
                format!("{} → {}", from.as_str(), status.as_str())
            } else {
                format!("{} → {}: {note}", from.as_str(), status.as_str())
            },
        );
        Ok(())
    }

    /// The collector resolves an incident when its last drift is settled.
    pub fn resolve_automatically(&mut self, at_ms: i64, how: String) {
        if self.status.is_open() {
            let _ = self.set_status(IncidentStatus::Resolved, at_ms, &Actor::Collector, &how);
        }
    }

    /// The collector reopens an incident whose drift came back.
    pub fn reopen_automatically(&mut self, at_ms: i64, why: String) {
        if self.status == IncidentStatus::Resolved {
            let _ = self.set_status(IncidentStatus::InProgress, at_ms, &Actor::Collector, &why);
        } else if self.status.is_open() {
            self.note(at_ms, &Actor::Collector, why);
        }
    }
}

/// Writes an incident and, when webhooks are on, queues its event.
pub(crate) fn put_incident<E>(
    tx: &dyn Tx,
    i: &Incident,
    event: &str,
    webhooks: bool,
) -> Result<(), TxAbort<E>> {
    tx.insert(Table::Incidents, &i.id.key(), &encode(i))?;
    if webhooks {
        let seq = next_id(tx, Counter::Outbox)?;
        let body = serde_json::json!({"event": event, "incident": i});
        tx.insert(
            Table::Outbox,
            &seq.to_be_bytes(),
            body.to_string().as_bytes(),
        )?;
    }
    Ok(())
}

/// Whether every drift in `ids` is settled (not open). `except` is treated
/// as settled (the caller is settling it).
pub(crate) fn all_settled<E>(
    tx: &dyn Tx,
    ids: &[DriftId],
    except: Option<DriftId>,
) -> Result<bool, TxAbort<E>> {
    for id in ids {
        if Some(*id) == except {
            continue;
        }
        if let Some(d) = tx_get::<DriftRecord, E>(tx, Table::Drifts, &id.key())? {
            if d.status == DriftStatus::Open {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Resolves an incident once none of its drift is open.
pub(crate) fn settle_incident_if_done<E>(
    tx: &dyn Tx,
    id: IncidentId,
    now_ms: i64,
    webhooks: bool,
    how: impl FnOnce() -> String,
) -> Result<(), TxAbort<E>> {
    let Some(mut inc) = tx_get::<Incident, E>(tx, Table::Incidents, &id.key())? else {
        return Ok(());
    };
    if !inc.status.is_open() || !all_settled(tx, &inc.drifts, None)? {
        return Ok(());
    }
    // Say how each drift ended, so the resolution explains itself.
    let mut endings = Vec::new();
    for d in &inc.drifts {
        if let Some(d) = tx_get::<DriftRecord, E>(tx, Table::Drifts, &d.key())? {
            endings.push(format!(
                "{} {}: {}",
                d.id,
                d.status.as_str(),
                d.resolution.unwrap_or_default()
            ));
        }
    }
    inc.resolve_automatically(now_ms, format!("{}; {}", how(), endings.join("; ")));
    put_incident(tx, &inc, "incident.updated", webhooks)
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

impl<S: Store> Cmdb<S> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident() -> Incident {
        Incident::new(
            IncidentId::from_u64(1),
            "t".into(),
            "s".into(),
            "unauthorized_change",
            Level::High,
            Level::Medium,
            0,
            Actor::Collector,
        )
    }

    #[test]
    fn lifecycle_rules() {
        let mut i = incident();
        assert_eq!(i.priority, 2);
        let by = Actor::Collector;
        assert!(i.set_status(IncidentStatus::Assigned, 1, &by, "").is_err());
        i.assignee = Some("alice".into());
        i.set_status(IncidentStatus::Assigned, 1, &by, "").unwrap();
        let err = i
            .set_status(IncidentStatus::Closed, 2, &by, "")
            .unwrap_err();
        assert!(
            err.to_string().contains("resolve it before closing"),
            "{err}"
        );
        i.resolve_automatically(3, "reverted".into());
        assert_eq!(i.status, IncidentStatus::Resolved);
        assert_eq!(i.resolution.as_deref(), Some("reverted"));
        i.reopen_automatically(4, "came back".into());
        assert_eq!((i.status, i.reopened), (IncidentStatus::InProgress, 1));
        i.resolve_automatically(5, "reverted again".into());
        i.set_status(IncidentStatus::Closed, 6, &by, "").unwrap();
        assert!(i
            .set_status(IncidentStatus::InProgress, 7, &by, "")
            .is_err());
        assert_eq!(i.closed_at_ms, Some(6));
    }
}
