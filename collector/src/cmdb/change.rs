//! Change management: the RFC workflow as operator actions (raise,
//! assess, decide, schedule, implement, review, close), and the folding
//! of drift an approval authorizes after the fact.

use std::collections::BTreeSet;

use super::action::{not_found, trail_entry, ActionError, TxResult};
use super::ci::{check_against_model, load_ci, put_ci, CiRecord};
use super::drift::{put_drift, DriftRecord, DriftStatus};
use super::history::{changes_between, record_history, Actor, FieldChange, Why};
use super::incident::{all_settled, put_incident, settle_incident_if_done, Incident};
use super::rfc::{
    put_rfc, Approval, Assessment, Evidence, NewRfc, Review, ReviewOutcome, Rfc, RfcOrigin,
    RfcStatus, Window,
};
use super::{ci_key, next_id, tx_get, Cmdb, Counter};
use crate::control::policy::Level;
use crate::control::spec::Spec;
use crate::store::{Store, StoreError, Table, Tx, TxAbort};
use fathom_api::ids::{DriftId, RfcId};

pub(crate) fn load_rfc(tx: &dyn Tx, id: RfcId) -> TxResult<Rfc> {
    match tx_get::<Rfc, _>(tx, Table::Rfcs, &id.key())? {
        Some(r) => Ok(r),
        None => not_found(format!("no {id}")),
    }
}

/// Folds one open drift's discovered value into its CI's authorized
/// state on `rfc`'s authority: a history entry, the drift settled as
/// approved, and the observation as the RFC's evidence.
pub(crate) fn fold_drift(
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

pub(crate) fn validate_window(w: &Window) -> Result<(), ActionError> {
    if w.end_ms <= w.start_ms {
        return Err(ActionError::Invalid(
            "the window must end after it starts".into(),
        ));
    }
    Ok(())
}

impl<S: Store> Cmdb<S> {
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
}
