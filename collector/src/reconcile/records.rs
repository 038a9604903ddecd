//! The records reconciliation writes for drift: drift records, the
//! incident new unauthorized drift raises, the missing-RFC draft, and RFC
//! evidence.

use std::collections::BTreeMap;

use fathom_shared::ids::CiId;

use super::inventory::load;
use super::{Refusal, Sighting};
use crate::cmdb::ci::CiRecord;
use crate::cmdb::drift::{put_drift, DriftRecord, DriftStatus};
use crate::cmdb::history::{Actor, Why};
use crate::cmdb::incident::{put_incident, Incident};
use crate::cmdb::rfc::{
    put_rfc, Evidence, NewRfc, Rfc, RfcImpact, RfcLevel, RfcOrigin, RfcStatus, Target,
};
use crate::cmdb::{next_id, Counter};
use crate::control::attributes::{section_of, Difference};
use crate::control::decide::{Authority, Decision};
use crate::control::policy::Level;
use crate::control::spec::Spec;
use crate::store::{Table, Tx, TxAbort};
use fathom_api::ids::{DriftId, IncidentId, RfcId};

type TxResult<T> = Result<T, TxAbort<Refusal>>;

pub(super) fn authority_why(authority: &Authority, s: &Sighting<'_>) -> Why {
    match authority {
        Authority::Rfc { rfc } => Why::Rfc { rfc: *rfc },
        Authority::StandardChange { name } => Why::StandardChange {
            name: name.clone(),
            agent_id: s.agent,
            seq: s.seq,
        },
    }
}

pub(super) fn evidence(
    ci: &CiRecord,
    d: &Difference,
    s: &Sighting<'_>,
    drift: DriftId,
) -> Evidence {
    Evidence {
        at_ms: s.observed_at_ms,
        ci: ci.id,
        attribute: d.attribute.clone(),
        old: d.authorized.clone(),
        new: d.discovered.clone(),
        source: s.source(),
        drift: Some(drift),
    }
}

/// A drift reopened by a flap needs something to approve: its draft is
/// reopened if still undecided, or, if it was cancelled (the revert) or
/// decided, a new draft is raised for it and linked.
pub(super) fn reopen_missing_rfc(
    tx: &dyn Tx,
    ci: &CiRecord,
    drift: &mut DriftRecord,
    rfcs: &mut BTreeMap<RfcId, Rfc>,
    s: &Sighting<'_>,
) -> TxResult<()> {
    if let Some(id) = drift.missing_rfc {
        if let Some(rfc) = load_rfc(tx, rfcs, id)? {
            if matches!(rfc.status, RfcStatus::New | RfcStatus::Assessed) {
                return Ok(());
            }
        }
    }
    let rfc_id = RfcId::from_u64(next_id(tx, Counter::Rfc)?);
    let incident = drift.incident;
    let line = drift_line(drift);
    let title = format!(
        "Missing RFC: {} changed again on {}",
        drift.attribute, ci.name
    );
    let draft = missing_rfc_draft(
        title,
        line,
        incident,
        ci.id,
        vec![Spec::exact(&drift.attribute, drift.discovered.as_deref())],
    );
    let origin = match incident {
        Some(incident) => RfcOrigin::MissingRfc { incident },
        None => RfcOrigin::Raised,
    };
    let mut rfc = Rfc::raised(
        rfc_id,
        &draft,
        vec![ci.id],
        &Actor::Collector,
        s.now_ms,
        origin,
    );
    rfc.drifts = vec![drift.id];
    rfc.incidents = incident.into_iter().collect();
    if let Some(earlier) = drift.missing_rfc {
        rfc.log(
            s.now_ms,
            &Actor::Collector,
            format!(
                "raised because {} came back after {earlier} was settled",
                drift.id
            ),
        );
    }
    drift.missing_rfc = Some(rfc_id);
    rfcs.insert(rfc_id, rfc);
    Ok(())
}

/// One line of an incident's symptom and a draft's description.
pub(super) fn drift_line(d: &DriftRecord) -> String {
    if d.is_mass_change() {
        let examples: Vec<String> = d
            .members
            .iter()
            .take(3)
            .map(|m| {
                format!(
                    "{}: {} → {}",
                    m.attribute,
                    describe(m.authorized.as_deref()),
                    describe(m.discovered.as_deref())
                )
            })
            .collect();
        return format!(
            "{} {}: {} changes in one report, reviewed as one mass change (e.g. {}{})",
            d.id,
            d.attribute,
            d.members.len(),
            examples.join("; "),
            if d.members.len() > 3 { "; …" } else { "" }
        );
    }
    format!(
        "{} {}: {} → {} ({})",
        d.id,
        d.attribute,
        describe(d.authorized.as_deref()),
        describe(d.discovered.as_deref()),
        d.decision.explanation.last().cloned().unwrap_or_default()
    )
}

/// A missing-RFC draft: approving it accepts the changes, rejecting it
/// asks for them to be reverted.
pub(super) fn missing_rfc_draft(
    title: String,
    description: String,
    incident: Option<IncidentId>,
    ci: CiId,
    specs: Vec<Spec>,
) -> NewRfc {
    let whose = incident.map_or_else(String::new, |i| format!(" for {i}"));
    NewRfc {
        title,
        description,
        reason: format!(
            "Drafted by the collector{whose}: approve to accept these changes into the CMDB \
             (the incident resolves), or reject to have them reverted (the incident resolves when \
             discovery sees the revert)."
        ),
        change_type: "unauthorized".into(),
        level: RfcLevel::Normal,
        impact: RfcImpact::Minor,
        risk: Level::Medium,
        targets: vec![Target::Ci(ci)],
        specs,
        implementation_plan: String::new(),
        backout_plan: "Revert the changes listed; discovery will see the revert.".into(),
        window: None,
    }
}

pub(super) fn describe(v: Option<&str>) -> String {
    v.map_or_else(|| "absent".into(), |v| format!("{v:?}"))
}

pub(super) fn load_rfc<'m>(
    tx: &dyn Tx,
    cache: &'m mut BTreeMap<RfcId, Rfc>,
    id: RfcId,
) -> TxResult<Option<&'m mut Rfc>> {
    use std::collections::btree_map::Entry;
    match cache.entry(id) {
        Entry::Occupied(e) => Ok(Some(e.into_mut())),
        Entry::Vacant(e) => Ok(load::<Rfc>(tx, Table::Rfcs, &id.key())?.map(|r| e.insert(r))),
    }
}

pub(super) fn new_drift(
    tx: &dyn Tx,
    ci: &CiRecord,
    d: &Difference,
    decision: Decision,
    s: &Sighting<'_>,
    status: DriftStatus,
) -> TxResult<DriftRecord> {
    let mut record = blank_drift(tx, ci, &d.attribute, d, decision, s, status)?;
    record.authorized = d.authorized.clone();
    record.discovered = d.discovered.clone();
    record.observations = vec![s.observation(d.discovered.clone())];
    put_drift(tx, &record)?;
    Ok(record)
}

/// A drift record of `attribute` on `ci`, first seen now, with a new id
/// and neither values nor observations yet.
pub(super) fn blank_drift(
    tx: &dyn Tx,
    ci: &CiRecord,
    attribute: &str,
    d: &Difference,
    decision: Decision,
    s: &Sighting<'_>,
    status: DriftStatus,
) -> TxResult<DriftRecord> {
    Ok(DriftRecord {
        id: DriftId::from_u64(next_id(tx, Counter::Drift)?),
        ci: ci.id,
        ci_name: ci.name.clone(),
        class: ci.class.clone(),
        attribute: attribute.to_owned(),
        section: section_of(attribute).to_owned(),
        kind: d.kind(),
        authorized: None,
        discovered: None,
        first_seen_ms: s.observed_at_ms,
        last_seen_ms: s.observed_at_ms,
        decision,
        status,
        incident: None,
        missing_rfc: None,
        flips: 0,
        observation_count: 1,
        observations: Vec::new(),
        resolved_at_ms: None,
        resolution: None,
        resolved_by: None,
        earlier: Vec::new(),
        members: Vec::new(),
    })
}

/// One incident and one missing-RFC draft for the new unauthorized drift
/// of one report on one CI.
pub(super) fn raise_incident(
    tx: &dyn Tx,
    ci: &CiRecord,
    drifts: &mut [DriftRecord],
    s: &Sighting<'_>,
) -> TxResult<()> {
    let incident_id = IncidentId::from_u64(next_id(tx, Counter::Incident)?);
    let rfc_id = RfcId::from_u64(next_id(tx, Counter::Rfc)?);
    let urgency = drifts
        .iter()
        .map(|d| s.policy.urgency_of(&d.attribute))
        .min()
        .unwrap_or(Level::Medium);
    let lines: Vec<String> = drifts.iter().map(drift_line).collect();
    let changes: usize = drifts.iter().map(|d| d.members.len().max(1)).sum();
    let title = match &*drifts {
        [one] if !one.is_mass_change() => {
            format!("Unauthorized change on {}: {}", ci.name, one.attribute)
        }
        _ => format!("{changes} unauthorized changes on {}", ci.name),
    };
    let mut incident = Incident::new(
        incident_id,
        title.clone(),
        format!(
            "Discovery ({}) saw changes on {} ({}) that no approved RFC or standard change covers:\n{}",
            s.source(),
            ci.name,
            ci.id,
            lines.join("\n")
        ),
        "unauthorized_change",
        ci.criticality,
        urgency,
        s.now_ms,
        s.actor(),
    );
    incident.due_at_ms = s.policy.resolution_due(incident.priority, s.now_ms);
    incident.cis = vec![ci.id];
    incident.drifts = drifts.iter().map(|d| d.id).collect();
    incident.rfcs = vec![rfc_id];
    let draft = missing_rfc_draft(
        format!("Missing RFC: {title}"),
        lines.join("\n"),
        Some(incident_id),
        ci.id,
        drifts
            .iter()
            .flat_map(DriftRecord::open_changes)
            .map(|(attribute, value)| Spec::exact(attribute, value))
            .collect(),
    );
    let origin = RfcOrigin::MissingRfc {
        incident: incident_id,
    };
    let mut rfc = Rfc::raised(
        rfc_id,
        &draft,
        vec![ci.id],
        &Actor::Collector,
        s.now_ms,
        origin,
    );
    rfc.drifts = drifts.iter().map(|d| d.id).collect();
    rfc.incidents = vec![incident_id];
    put_rfc(tx, &rfc)?;
    for d in drifts.iter_mut() {
        d.incident = Some(incident_id);
        d.missing_rfc = Some(rfc_id);
        put_drift(tx, d)?;
    }
    put_incident(tx, &incident, "incident.created", s.webhooks)?;
    tracing::warn!(
        ci_id = %ci.id,
        incident = %incident_id,
        missing_rfc = %rfc_id,
        drift = drifts.len(),
        priority = incident.priority,
        "Unauthorized change detected"
    );
    Ok(())
}
