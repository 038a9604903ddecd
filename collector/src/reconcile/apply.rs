//! Applying an inventory inside the report's transaction: identify the CI,
//! record the discovered state, and reconcile it against the authorized
//! state.
//!
//! For each difference in a controlled attribute (decided by
//! [`crate::control::decide`]):
//!
//! - authorized by a scheduled RFC or a standard change → folded into the
//!   CMDB, with a drift record (status `authorized`) explaining it and, for
//!   an RFC, evidence on the RFC (which becomes `implemented` once all its
//!   specs are seen on all its CIs);
//! - unauthorized → an open drift record; all new unauthorized drift of one
//!   report on one CI share one incident and one missing-RFC draft;
//! - already open → one more observation, no new incident (a value that
//!   moves between unauthorized values is one drift);
//! - reverted earlier within the flap window → the same drift and incident
//!   reopen.
//!
//! An open drift whose attribute is seen back at its authorized value is
//! reverted; when the last open drift of an incident settles, the incident
//! resolves itself, saying how.
//!
//! Everything reads its records by key (the CI lists its open drifts and
//! scheduled RFCs), so the work per report does not grow with the CMDB.

use std::collections::{BTreeMap, BTreeSet};

use super::inventory::{load, register, without_ignored};
use super::mass::{MassChanges, MemberEnd};
use super::records::{
    authority_why, describe, evidence, load_rfc, new_drift, raise_incident, reopen_missing_rfc,
};
use super::{Refusal, Sighting};
use crate::cmdb::ci::CiRecord;
use crate::cmdb::drift::{put_drift, DriftRecord, DriftStatus, MASS_CHANGE_THRESHOLD};
use crate::cmdb::history::{record_history, FieldChange, Why};
use crate::cmdb::incident::{all_settled, put_incident, settle_incident_if_done, Incident};
use crate::cmdb::rfc::{put_rfc, Rfc, RfcStatus};
use crate::control::attributes::{self, section_of, Difference, Discovered};
use crate::control::decide::{self, Authority, Candidate, Decision, Verdict};
use crate::control::policy::NewCis;
use crate::store::{Table, Tx, TxAbort};
use fathom_api::ids::{DriftId, IncidentId, RfcId};

type TxResult<T> = Result<T, TxAbort<Refusal>>;

pub(super) fn set_attribute(ci: &mut CiRecord, d: &Difference) -> FieldChange {
    match &d.discovered {
        Some(v) => ci.attributes.insert(d.attribute.clone(), v.clone()),
        None => ci.attributes.remove(&d.attribute),
    };
    FieldChange {
        field: d.attribute.clone(),
        old: d.authorized.clone(),
        new: d.discovered.clone(),
    }
}

/// Changes to fold into the CI, grouped by why, in first-seen order.
#[derive(Debug, Default)]
pub(super) struct Folds(Vec<(Why, Vec<FieldChange>)>);

impl Folds {
    fn add(&mut self, why: Why, change: FieldChange) {
        match self.0.iter_mut().find(|(w, _)| *w == why) {
            Some((_, changes)) => changes.push(change),
            None => self.0.push((why, vec![change])),
        }
    }
}

pub(crate) fn reconcile(
    tx: &dyn Tx,
    s: &Sighting<'_>,
    ci: &mut CiRecord,
    discovered: &Discovered,
) -> TxResult<()> {
    let policy = s.policy;
    let discovered = without_ignored(policy, &ci.class, discovered);

    if !ci.registered {
        // Under `register`, a discovered CI without an authorized state
        // (new, or split off another) takes its first report as one.
        if policy.new_cis == NewCis::Register {
            register(tx, ci, &discovered, s)?;
        }
        return Ok(());
    }
    record_first_observations(tx, s, ci, &discovered)?;

    let differences = attributes::diff(&ci.attributes, &discovered);
    let differing: BTreeSet<&str> = differences.iter().map(|d| d.attribute.as_str()).collect();
    let mut pass = Pass::default();
    pass.settle_reverted(tx, s, ci, &discovered, &differing)?;
    forget_old_reverts(tx, s, ci)?;

    let candidates_owned = scheduled_rfcs(tx, ci)?;
    let candidates: Vec<Candidate<'_>> = candidates_owned
        .iter()
        .filter_map(|r| {
            let w = r.window?;
            Some(Candidate {
                rfc: r.id,
                window_start_ms: w.start_ms,
                window_end_ms: w.end_ms,
                specs: &r.specs,
            })
        })
        .collect();
    let decisions: Vec<Decision> = differences
        .iter()
        .map(|d| {
            decide::decide(
                policy,
                &ci.class,
                d,
                s.observed_at_ms,
                &candidates,
                fathom_support::time::format_ms,
            )
        })
        .collect();
    let mass_sections = mass_sections(ci, &differences, &decisions);
    for (d, decision) in differences.iter().zip(decisions) {
        pass.apply(tx, s, ci, d, decision, &mass_sections)?;
    }
    pass.finish(tx, s, ci)
}

/// Scopes seen for the first time are recorded as found, not as drift.
pub(super) fn record_first_observations(
    tx: &dyn Tx,
    s: &Sighting<'_>,
    ci: &mut CiRecord,
    discovered: &Discovered,
) -> TxResult<()> {
    let new_scopes: Vec<String> = discovered.scopes.difference(&ci.scopes).cloned().collect();
    for scope in new_scopes {
        let changes: Vec<FieldChange> = discovered
            .attributes
            .range(scope.clone()..)
            .take_while(|(k, _)| k.starts_with(&scope))
            .filter(|(k, _)| !ci.attributes.contains_key(*k))
            .map(|(k, v)| FieldChange {
                field: k.clone(),
                old: None,
                new: Some(v.clone()),
            })
            .collect();
        for c in &changes {
            ci.attributes
                .insert(c.field.clone(), c.new.clone().unwrap());
        }
        ci.scopes.insert(scope.clone());
        let why = Why::FirstObservation {
            agent_id: s.agent,
            seq: s.seq,
            scope,
        };
        record_history(tx, ci, s.now_ms, &s.actor(), why, changes)?;
    }
    Ok(())
}

/// Reverted drift past the flap window will not reopen.
pub(super) fn forget_old_reverts(tx: &dyn Tx, s: &Sighting<'_>, ci: &mut CiRecord) -> TxResult<()> {
    for (attr, id) in ci.reverted_drifts.clone() {
        let within = load::<DriftRecord>(tx, Table::Drifts, &id.key())?.is_some_and(|d| {
            d.status == DriftStatus::Reverted
                && d.resolved_at_ms
                    .is_some_and(|t| s.now_ms.saturating_sub(t) <= s.policy.flap_window_ms)
        });
        if !within {
            ci.reverted_drifts.remove(&attr);
        }
    }
    Ok(())
}

/// The candidates: scheduled RFCs naming this CI (the CI forgets the ones
/// no longer scheduled).
pub(super) fn scheduled_rfcs(tx: &dyn Tx, ci: &mut CiRecord) -> TxResult<Vec<Rfc>> {
    let mut out = Vec::new();
    for id in ci.scheduled_rfcs.clone() {
        match load::<Rfc>(tx, Table::Rfcs, &id.key())? {
            Some(r) if r.status == RfcStatus::Scheduled && r.window.is_some() => out.push(r),
            _ => {
                ci.scheduled_rfcs.remove(&id);
            }
        }
    }
    Ok(out)
}

/// Sections where this report makes more new drift records than a person
/// can review one by one: they become one mass change each (authorized
/// and unauthorized apart).
pub(super) fn mass_sections(
    ci: &CiRecord,
    differences: &[Difference],
    decisions: &[Decision],
) -> BTreeSet<(String, bool)> {
    let mut new_records: BTreeMap<(&str, bool), usize> = BTreeMap::new();
    for (d, decision) in differences.iter().zip(decisions) {
        let known = ci.open_drifts.contains_key(&d.attribute)
            || ci.reverted_drifts.contains_key(&d.attribute);
        let authorized = match decision.verdict {
            Verdict::Unauthorized if !known => false,
            Verdict::Authorized { .. } => true,
            _ => continue,
        };
        *new_records
            .entry((section_of(&d.attribute), authorized))
            .or_default() += 1;
    }
    new_records
        .into_iter()
        .filter(|(_, n)| *n > MASS_CHANGE_THRESHOLD)
        .map(|((section, authorized), _)| (section.to_owned(), authorized))
        .collect()
}

/// What one report's reconciliation has touched so far, written once at
/// the end ([`Pass::finish`]).
#[derive(Debug, Default)]
pub(super) struct Pass {
    /// Incidents whose drift may all be settled now.
    touched_incidents: BTreeSet<IncidentId>,
    /// RFCs loaded (for evidence, cancellation), written once.
    rfcs: BTreeMap<RfcId, Rfc>,
    /// Mass changes this report touches, loaded once and written once.
    masses: MassChanges,
    /// Changes folded into the authorized state, by reason.
    folds: Folds,
    /// New unauthorized drift records, which share one incident.
    unauthorized: Vec<DriftRecord>,
}

impl Pass {
    /// Open drift seen back at its authorized value: reverted.
    fn settle_reverted(
        &mut self,
        tx: &dyn Tx,
        s: &Sighting<'_>,
        ci: &mut CiRecord,
        discovered: &Discovered,
        differing: &BTreeSet<&str>,
    ) -> TxResult<()> {
        let actor = s.actor();
        for (attr, id) in ci.open_drifts.clone() {
            if !discovered.observes(&attr) || differing.contains(attr.as_str()) {
                continue;
            }
            ci.open_drifts.remove(&attr);
            if let Some(mass) = self.masses.existing(tx, id)? {
                mass.close_member(&attr, MemberEnd::Reverted);
                continue;
            }
            let Some(mut drift) = load::<DriftRecord>(tx, Table::Drifts, &id.key())? else {
                continue;
            };
            match drift.status {
                DriftStatus::Open => {
                    drift.observe(s.observation(ci.attributes.get(&attr).cloned()));
                    drift.settle(
                        DriftStatus::Reverted,
                        s.now_ms,
                        actor.clone(),
                        format!(
                            "discovery saw the authorized value {} again ({})",
                            describe(ci.attributes.get(&attr).map(String::as_str)),
                            s.source()
                        ),
                    );
                    put_drift(tx, &drift)?;
                    if let Some(rfc_id) = drift.missing_rfc {
                        if let Some(rfc) = load_rfc(tx, &mut self.rfcs, rfc_id)? {
                            if matches!(rfc.status, RfcStatus::New | RfcStatus::Assessed)
                                && all_settled(tx, &rfc.drifts, None)?
                            {
                                rfc.cancel(
                                    s.now_ms,
                                    &actor,
                                    "the change was reverted; no RFC is needed",
                                )
                                .expect("new RFCs can be cancelled");
                            }
                        }
                    }
                    self.touched_incidents.extend(drift.incident);
                    ci.reverted_drifts.insert(attr, id);
                }
                // Kept among the open ones by collectors before reverted drift
                // was kept apart.
                DriftStatus::Reverted => {
                    ci.reverted_drifts.insert(attr, id);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// One difference, decided: folded, recorded as drift, or observed
    /// again on the drift already open for it.
    fn apply(
        &mut self,
        tx: &dyn Tx,
        s: &Sighting<'_>,
        ci: &mut CiRecord,
        d: &Difference,
        decision: Decision,
        mass_sections: &BTreeSet<(String, bool)>,
    ) -> TxResult<()> {
        let existing_id = ci
            .open_drifts
            .get(&d.attribute)
            .or_else(|| ci.reverted_drifts.get(&d.attribute))
            .copied();
        if let Some(id) = existing_id {
            if self.masses.existing(tx, id)?.is_some() {
                return self.apply_to_mass_member(tx, s, ci, d, &decision, id);
            }
        }
        let existing = match existing_id {
            Some(id) => load::<DriftRecord>(tx, Table::Drifts, &id.key())?,
            None => None,
        };
        let mass_key = |authorized: bool| {
            let key = (section_of(&d.attribute).to_owned(), authorized);
            mass_sections.contains(&key).then_some(key)
        };
        match &decision.verdict {
            Verdict::Informational => {
                self.folds.add(
                    Why::Discovery {
                        agent_id: s.agent,
                        seq: s.seq,
                    },
                    set_attribute(ci, d),
                );
                if let Some(mut old) = existing.filter(|e| e.status == DriftStatus::Open) {
                    old.settle(
                        DriftStatus::Superseded,
                        s.now_ms,
                        s.actor(),
                        "the policy now makes this attribute informational".into(),
                    );
                    put_drift(tx, &old)?;
                    self.touched_incidents.extend(old.incident);
                }
                ci.open_drifts.remove(&d.attribute);
                ci.reverted_drifts.remove(&d.attribute);
                Ok(())
            }
            Verdict::Authorized { authority } => {
                let mass_key = mass_key(true);
                self.apply_authorized(tx, s, ci, d, &decision, authority, existing, mass_key)
            }
            Verdict::Unauthorized => {
                let mass_key = mass_key(false);
                self.apply_unauthorized(tx, s, ci, d, &decision, existing, mass_key)
            }
        }
    }

    /// A member of an open mass change: the unit is decided as a whole; a
    /// member decided on its own leaves it.
    fn apply_to_mass_member(
        &mut self,
        tx: &dyn Tx,
        s: &Sighting<'_>,
        ci: &mut CiRecord,
        d: &Difference,
        decision: &Decision,
        id: DriftId,
    ) -> TxResult<()> {
        let Some(mass) = self.masses.existing(tx, id)? else {
            return Ok(());
        };
        match &decision.verdict {
            Verdict::Unauthorized => mass.observe_member(d),
            Verdict::Informational => {
                mass.close_member(&d.attribute, MemberEnd::Settled);
                ci.open_drifts.remove(&d.attribute);
                self.folds.add(
                    Why::Discovery {
                        agent_id: s.agent,
                        seq: s.seq,
                    },
                    set_attribute(ci, d),
                );
            }
            Verdict::Authorized { authority } => {
                mass.close_member(&d.attribute, MemberEnd::Settled);
                ci.open_drifts.remove(&d.attribute);
                let why = authority_why(authority, s);
                if let Authority::Rfc { rfc } = authority {
                    if let Some(r) = load_rfc(tx, &mut self.rfcs, *rfc)? {
                        r.evidence.push(evidence(ci, d, s, id));
                        r.updated_at_ms = s.now_ms;
                    }
                }
                self.folds.add(why, set_attribute(ci, d));
            }
        }
        Ok(())
    }

    /// An authorized difference: folded into the CMDB with a closed drift
    /// record (or a mass change) saying on whose authority, as evidence on
    /// its RFC; drift open for it is superseded.
    #[allow(clippy::too_many_arguments)]
    fn apply_authorized(
        &mut self,
        tx: &dyn Tx,
        s: &Sighting<'_>,
        ci: &mut CiRecord,
        d: &Difference,
        decision: &Decision,
        authority: &Authority,
        existing: Option<DriftRecord>,
        mass_key: Option<(String, bool)>,
    ) -> TxResult<()> {
        let actor = s.actor();
        let why = authority_why(authority, s);
        let record_id = match mass_key {
            Some(key) => {
                let mass =
                    self.masses
                        .new_for(tx, key, ci, d, decision, s, DriftStatus::Authorized)?;
                mass.resolved_at_ms = Some(s.now_ms);
                mass.resolved_by = Some(actor.clone());
                mass.resolution = Some(why.to_string());
                mass.id
            }
            None => {
                let mut record =
                    new_drift(tx, ci, d, decision.clone(), s, DriftStatus::Authorized)?;
                record.resolved_at_ms = Some(s.now_ms);
                record.resolved_by = Some(actor.clone());
                record.resolution = Some(why.to_string());
                put_drift(tx, &record)?;
                record.id
            }
        };
        if let Authority::Rfc { rfc } = authority {
            if let Some(r) = load_rfc(tx, &mut self.rfcs, *rfc)? {
                r.evidence.push(evidence(ci, d, s, record_id));
                r.updated_at_ms = s.now_ms;
            }
        }
        if let Some(mut old) = existing.filter(|e| e.status == DriftStatus::Open) {
            old.observe(s.observation(d.discovered.clone()));
            old.settle(
                DriftStatus::Superseded,
                s.now_ms,
                actor,
                format!("{why}; see {record_id}"),
            );
            put_drift(tx, &old)?;
            self.touched_incidents.extend(old.incident);
        }
        ci.open_drifts.remove(&d.attribute);
        ci.reverted_drifts.remove(&d.attribute);
        self.folds.add(why, set_attribute(ci, d));
        Ok(())
    }

    /// An unauthorized difference: one more observation on drift already
    /// open; drift reverted within the flap window reopens (flapping);
    /// otherwise new drift (or a mass change).
    #[allow(clippy::too_many_arguments)]
    fn apply_unauthorized(
        &mut self,
        tx: &dyn Tx,
        s: &Sighting<'_>,
        ci: &mut CiRecord,
        d: &Difference,
        decision: &Decision,
        existing: Option<DriftRecord>,
        mass_key: Option<(String, bool)>,
    ) -> TxResult<()> {
        match existing {
            Some(mut open) if open.status == DriftStatus::Open => {
                let observation = s.observation(d.discovered.clone());
                if open.observe_decided(observation, d.kind(), decision) {
                    open.flips += 1;
                }
                put_drift(tx, &open)?;
            }
            Some(reverted)
                if reverted.status == DriftStatus::Reverted
                    && reverted
                        .resolved_at_ms
                        .is_some_and(|t| s.now_ms.saturating_sub(t) <= s.policy.flap_window_ms) =>
            {
                self.reopen_flapping(tx, s, ci, d, decision, reverted)?;
            }
            _ => {
                let id = match mass_key {
                    Some(key) => {
                        self.masses
                            .new_for(tx, key, ci, d, decision, s, DriftStatus::Open)?
                            .id
                    }
                    None => {
                        let record = new_drift(tx, ci, d, decision.clone(), s, DriftStatus::Open)?;
                        let id = record.id;
                        self.unauthorized.push(record);
                        id
                    }
                };
                ci.reverted_drifts.remove(&d.attribute);
                ci.open_drifts.insert(d.attribute.clone(), id);
            }
        }
        Ok(())
    }

    /// Drift that comes back within the flap window reopens, with its
    /// incident and its missing-RFC draft.
    fn reopen_flapping(
        &mut self,
        tx: &dyn Tx,
        s: &Sighting<'_>,
        ci: &mut CiRecord,
        d: &Difference,
        decision: &Decision,
        mut reverted: DriftRecord,
    ) -> TxResult<()> {
        reverted.status = DriftStatus::Open;
        reverted.resolved_at_ms = None;
        reverted.resolution = None;
        reverted.resolved_by = None;
        reverted.flips += 1;
        let observation = s.observation(d.discovered.clone());
        reverted.observe_decided(observation, d.kind(), decision);
        ci.reverted_drifts.remove(&d.attribute);
        ci.open_drifts.insert(d.attribute.clone(), reverted.id);
        reopen_missing_rfc(tx, ci, &mut reverted, &mut self.rfcs, s)?;
        put_drift(tx, &reverted)?;
        let Some(inc_id) = reverted.incident else {
            return Ok(());
        };
        let Some(mut inc) = load::<Incident>(tx, Table::Incidents, &inc_id.key())? else {
            return Ok(());
        };
        inc.reopen_automatically(
            s.now_ms,
            format!(
                "{} came back: {} is {} again ({}); flapping, {} flip(s){}",
                reverted.id,
                d.attribute,
                describe(d.discovered.as_deref()),
                s.source(),
                reverted.flips,
                reverted
                    .missing_rfc
                    .map(|r| format!("; approve or reject {r}"))
                    .unwrap_or_default()
            ),
        );
        if let Some(r) = reverted.missing_rfc {
            if !inc.rfcs.contains(&r) {
                inc.rfcs.push(r);
            }
        }
        put_incident(tx, &inc, "incident.updated", s.webhooks)
    }

    /// Writes what the pass touched: mass changes, history, the incident
    /// of new unauthorized drift, settled incidents, RFCs (implemented
    /// once every spec was seen).
    fn finish(mut self, tx: &dyn Tx, s: &Sighting<'_>, ci: &mut CiRecord) -> TxResult<()> {
        let actor = s.actor();
        let (new_open, settled) = self.masses.finish(tx, s, &actor, &mut self.rfcs)?;
        self.unauthorized.extend(new_open);
        self.touched_incidents.extend(settled);

        for (why, changes) in std::mem::take(&mut self.folds.0) {
            record_history(tx, ci, s.now_ms, &actor, why, changes)?;
        }
        if !self.unauthorized.is_empty() {
            raise_incident(tx, ci, &mut self.unauthorized, s)?;
        }
        for inc_id in self.touched_incidents {
            settle_incident_if_done(tx, inc_id, s.now_ms, s.webhooks, || {
                format!("all its drift is settled ({})", s.source())
            })?;
        }
        for (_, mut rfc) in self.rfcs {
            if rfc.status == RfcStatus::Scheduled && rfc.all_specs_seen() {
                rfc.implement(
                    s.now_ms,
                    &actor,
                    format!(
                        "implemented: discovery saw every spec on every CI ({})",
                        s.source()
                    ),
                )
                .expect("a scheduled RFC can be implemented");
                ci.scheduled_rfcs.remove(&rfc.id);
            }
            put_rfc(tx, &rfc)?;
        }
        Ok(())
    }
}
