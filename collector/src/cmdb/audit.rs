//! Configuration audits: how well the CMDB matches reality, which CIs to
//! verify by hand, and the deficiencies found with their corrective actions.
//!
//! The report compares each registered CI's authorized state with its
//! latest discovery (inside the scopes discovery observed, without what the
//! policy ignores), and counts:
//! - **accuracy** two ways: the share of compared CIs with no difference
//!   at all, and the share of compared attributes that match, overall, per
//!   attribute section (`packages`, `hardware`…) and per CI;
//! - mismatches by class and by attribute section;
//! - CIs discovered but not registered; registered but never discovered
//!   (CIs made by hand in a class that discovery reports) or no longer
//!   discovered (stale); CIs kept by hand in classes discovery never
//!   reports (racks, contracts, services), counted as **not verifiable by
//!   discovery**: they are for the physical sample; duplicates pending in
//!   the review queue.
//!
//! A recorded audit keeps, for each sampled CI that was checked, what was
//! verified, by whom, when and the result; and its deficiencies, each with
//! an owner, a due date and its closure.
//!
//! The **verification sample** for a physical audit follows the
//! practitioners' rule: 50% of a class with fewer than 10 CIs, 20% for 10
//! to 50, 10% above 50, at least one. The draw is pseudo-random from a seed
//! the report records, so the same seed gives the same sample.

use std::collections::{BTreeMap, BTreeSet};

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use super::action::ActionError;
use super::ci::{CiRecord, CiSource, CiStatus};
use super::history::Actor;
use super::review::ReviewStatus;
use super::{encode, next_id, Cmdb, Counter};
use crate::control::attributes::{self, section_of};
use crate::control::policy::Control;
use crate::store::{Store, StoreError, Table};
use fathom_api::ids::AuditId;

/// One CI's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiAudit {
    pub id: CiId,
    pub class: String,
    pub name: String,
    pub registered: bool,
    /// Whether any discovery exists to compare with.
    pub discovered: bool,
    pub stale: bool,
    /// Differing attributes (authorized vs latest discovery).
    pub mismatches: Vec<String>,
    pub in_sample: bool,
    /// Attributes compared with discovery, and how many matched.
    #[serde(default)]
    pub attributes_compared: usize,
    #[serde(default)]
    pub attributes_matching: usize,
    /// Kept by hand in a class discovery never reports: only a person can
    /// verify it.
    #[serde(default)]
    pub verifiable: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub cis: usize,
    pub compared: usize,
    pub matching: usize,
}

/// Attribute comparisons in one section (or overall).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttributeCounts {
    pub compared: usize,
    pub matching: usize,
    /// matching / compared, 0–100.
    pub accuracy_pct: Option<f64>,
}

impl AttributeCounts {
    fn add(&mut self, matching: bool) {
        self.compared += 1;
        self.matching += usize::from(matching);
        self.accuracy_pct = Some(self.matching as f64 * 100.0 / self.compared as f64);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    pub generated_at_ms: i64,
    pub seed: u64,
    pub total_cis: usize,
    pub compared: usize,
    pub matching: usize,
    /// matching / compared, 0–100; `None` when nothing could be compared.
    pub accuracy_pct: Option<f64>,
    pub by_class: BTreeMap<String, Counts>,
    /// Differing attributes per section.
    pub mismatches_by_section: BTreeMap<String, usize>,
    /// Attributes compared and matching, overall and per section.
    #[serde(default)]
    pub attributes: AttributeCounts,
    #[serde(default)]
    pub attributes_by_section: BTreeMap<String, AttributeCounts>,
    /// CIs kept by hand in classes discovery never reports.
    #[serde(default)]
    pub not_verifiable_by_discovery: Vec<CiId>,
    pub discovered_not_registered: Vec<CiId>,
    pub registered_never_discovered: Vec<CiId>,
    pub no_longer_discovered: Vec<CiId>,
    pub duplicates_pending: usize,
    /// Per class: (class size, sample size).
    pub sample_sizes: BTreeMap<String, (usize, usize)>,
    pub cis: Vec<CiAudit>,
}

/// A deficiency found in an audit, and what is done about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deficiency {
    #[serde(default)]
    pub ci: Option<CiId>,
    pub description: String,
    pub corrective_action: String,
    /// Who sees the corrective action through.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub due_ms: Option<i64>,
    /// When and how it was closed; `None` while open.
    #[serde(default)]
    pub closed: Option<Closure>,
}

/// The end of a deficiency: when, by whom, and what was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    pub at_ms: i64,
    pub by: Actor,
    pub note: String,
}

/// The outcome of checking one sampled CI against reality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum VerificationResult {
    /// The record matches what was found.
    Matches,
    /// Something differs (record it as a deficiency too).
    Differs,
    /// The item was not found where the record says.
    #[value(name = "not_found", alias = "not-found")]
    #[serde(alias = "not-found")]
    NotFound,
}

impl VerificationResult {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationResult::Matches => "matches",
            VerificationResult::Differs => "differs",
            VerificationResult::NotFound => "not_found",
        }
    }
}

/// One sampled CI checked by a person: what was verified and the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub ci: CiId,
    pub result: VerificationResult,
    /// What was checked: "serial on the chassis label, rack position".
    pub checked: String,
    /// Who checked it; the recorder when not said.
    pub by: String,
    pub at_ms: i64,
}

/// A recorded audit: the report's figures when it was recorded, who ran
/// it, and the deficiencies found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: AuditId,
    pub recorded_at_ms: i64,
    pub by: Actor,
    pub note: String,
    pub accuracy_pct: Option<f64>,
    pub compared: usize,
    pub matching: usize,
    pub seed: u64,
    pub sample: Vec<CiId>,
    pub deficiencies: Vec<Deficiency>,
    /// What was verified of the sample, by whom, and the result.
    #[serde(default)]
    pub verifications: Vec<Verification>,
    #[serde(default)]
    pub attribute_accuracy_pct: Option<f64>,
}

/// The sample size for a class of `n` CIs.
pub fn sample_size(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let pct = match n {
        0..=9 => 50,
        10..=50 => 20,
        _ => 10,
    };
    (n * pct).div_ceil(100).max(1)
}

/// SplitMix64: a small, well-known mixer, enough for drawing a sample.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<S: Store> Cmdb<S> {
    pub fn audit_report(&self, seed: u64, now_ms: i64) -> Result<AuditReport, StoreError> {
        let policy = self.policy();
        let all: Vec<CiRecord> = self
            .list_cis()?
            .into_iter()
            .filter(|c| c.merged_into.is_none() && c.status != CiStatus::Disposed)
            .collect();
        let discovered_classes: BTreeSet<&str> = all
            .iter()
            .filter(|c| c.source == CiSource::Discovery)
            .map(|c| c.class.as_str())
            .chain(["server", "network_device"])
            .collect();
        let mut report = AuditReport {
            generated_at_ms: now_ms,
            seed,
            total_cis: all.len(),
            compared: 0,
            matching: 0,
            accuracy_pct: None,
            by_class: BTreeMap::new(),
            mismatches_by_section: BTreeMap::new(),
            discovered_not_registered: vec![],
            registered_never_discovered: vec![],
            no_longer_discovered: vec![],
            duplicates_pending: self
                .list_reviews()?
                .iter()
                .filter(|r| r.status == ReviewStatus::Open)
                .count(),
            sample_sizes: BTreeMap::new(),
            attributes: AttributeCounts::default(),
            attributes_by_section: BTreeMap::new(),
            not_verifiable_by_discovery: vec![],
            cis: vec![],
        };
        for ci in &all {
            let stale = ci.is_stale(now_ms, policy.stale_after_ms);
            let latest = self.latest_inventory(ci.id)?;
            let mut line = CiAudit {
                id: ci.id,
                class: ci.class.clone(),
                name: ci.name.clone(),
                registered: ci.registered,
                discovered: latest.is_some(),
                stale,
                mismatches: vec![],
                in_sample: false,
                attributes_compared: 0,
                attributes_matching: 0,
                verifiable: ci.source == CiSource::Discovery
                    || discovered_classes.contains(ci.class.as_str()),
            };
            if !line.verifiable {
                report.not_verifiable_by_discovery.push(ci.id);
            }
            let counts = report.by_class.entry(ci.class.clone()).or_default();
            counts.cis += 1;
            if !ci.registered {
                report.discovered_not_registered.push(ci.id);
            } else if latest.is_none() && discovered_classes.contains(ci.class.as_str()) {
                report.registered_never_discovered.push(ci.id);
            }
            if stale {
                report.no_longer_discovered.push(ci.id);
            }
            if let (true, Some(latest)) = (ci.registered, latest) {
                let mut d = attributes::flatten(&latest.inventory);
                d.attributes
                    .retain(|k, _| policy.control_of(&ci.class, k).control != Control::Ignored);
                d.scopes.retain(|s| ci.scopes.contains(s));
                line.mismatches = attributes::diff(&ci.attributes, &d)
                    .into_iter()
                    .map(|x| x.attribute)
                    .collect();
                // Every attribute either side has inside the observed scopes.
                let differing: BTreeSet<&str> =
                    line.mismatches.iter().map(String::as_str).collect();
                let compared: BTreeSet<&String> = ci
                    .attributes
                    .keys()
                    .chain(d.attributes.keys())
                    .filter(|k| d.observes(k))
                    .filter(|k| policy.control_of(&ci.class, k).control != Control::Ignored)
                    .collect();
                for k in compared {
                    let matching = !differing.contains(k.as_str());
                    line.attributes_compared += 1;
                    line.attributes_matching += usize::from(matching);
                    report.attributes.add(matching);
                    report
                        .attributes_by_section
                        .entry(section_of(k).to_owned())
                        .or_default()
                        .add(matching);
                }
                counts.compared += 1;
                report.compared += 1;
                if line.mismatches.is_empty() {
                    counts.matching += 1;
                    report.matching += 1;
                }
                for m in &line.mismatches {
                    *report
                        .mismatches_by_section
                        .entry(section_of(m).to_owned())
                        .or_default() += 1;
                }
            }
            report.cis.push(line);
        }
        if report.compared > 0 {
            report.accuracy_pct = Some(report.matching as f64 * 100.0 / report.compared as f64);
        }
        // The verification sample, per class.
        let mut by_class: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, c) in report.cis.iter().enumerate() {
            by_class.entry(c.class.clone()).or_default().push(i);
        }
        for (class, mut members) in by_class {
            let n = members.len();
            let k = sample_size(n);
            members.sort_by_key(|i| mix(seed ^ mix(report.cis[*i].id.as_u64())));
            for i in members.into_iter().take(k) {
                report.cis[i].in_sample = true;
            }
            report.sample_sizes.insert(class, (n, k));
        }
        Ok(report)
    }

    /// Records an audit with the current figures and the deficiencies found.
    pub fn record_audit(
        &self,
        by: &Actor,
        note: &str,
        seed: u64,
        deficiencies: &[Deficiency],
        verifications: &[Verification],
        now_ms: i64,
    ) -> Result<AuditRecord, ActionError> {
        for d in deficiencies {
            if d.description.trim().is_empty() || d.corrective_action.trim().is_empty() {
                return Err(ActionError::Invalid(
                    "each deficiency needs a description and a corrective action".into(),
                ));
            }
        }
        let report = self.audit_report(seed, now_ms)?;
        let sample: Vec<CiId> = report
            .cis
            .iter()
            .filter(|c| c.in_sample)
            .map(|c| c.id)
            .collect();
        let mut verified = Vec::new();
        for v in verifications {
            if !sample.contains(&v.ci) {
                return Err(ActionError::Invalid(format!(
                    "{} is not in the sample drawn with seed {seed} ({})",
                    v.ci,
                    sample
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if v.checked.trim().is_empty() {
                return Err(ActionError::Invalid(format!(
                    "say what was checked on {}",
                    v.ci
                )));
            }
            let mut v = v.clone();
            if v.by.trim().is_empty() {
                v.by = by.to_string();
            }
            v.at_ms = now_ms;
            verified.push(v);
        }
        self.act_on(|tx| {
            let id = AuditId::from_u64(next_id(tx, Counter::Audit)?);
            let record = AuditRecord {
                id,
                recorded_at_ms: now_ms,
                by: by.clone(),
                note: note.to_owned(),
                accuracy_pct: report.accuracy_pct,
                compared: report.compared,
                matching: report.matching,
                seed,
                sample: sample.clone(),
                deficiencies: deficiencies.to_vec(),
                verifications: verified.clone(),
                attribute_accuracy_pct: report.attributes.accuracy_pct,
            };
            tx.insert(Table::Audits, &id.key(), &encode(&record))?;
            super::action::trail_entry(
                tx,
                now_ms,
                by,
                "audit.record",
                id.to_string(),
                format!("{} deficiency(ies): {note}", deficiencies.len()),
            )?;
            Ok(record)
        })
    }

    pub fn list_audits(&self) -> Result<Vec<AuditRecord>, StoreError> {
        self.scan(Table::Audits, b"")
    }

    /// Closes deficiency `index` (from 1, as listed) of `audit`.
    pub fn close_deficiency(
        &self,
        by: &Actor,
        audit: AuditId,
        index: usize,
        note: &str,
        now_ms: i64,
    ) -> Result<AuditRecord, ActionError> {
        if note.trim().is_empty() {
            return Err(ActionError::Invalid("say what was done (--note)".into()));
        }
        self.act_on(|tx| {
            let Some(mut record) =
                super::tx_get::<AuditRecord, ActionError>(tx, Table::Audits, &audit.key())?
            else {
                return Err(crate::store::TxAbort::Abort(ActionError::NotFound(
                    format!("no {audit}"),
                )));
            };
            let count = record.deficiencies.len();
            let Some(d) = index
                .checked_sub(1)
                .and_then(|i| record.deficiencies.get_mut(i))
            else {
                return Err(crate::store::TxAbort::Abort(ActionError::Invalid(format!(
                    "{audit} has {count} deficiency(ies); give 1 to {count}"
                ))));
            };
            if let Some(c) = &d.closed {
                return Err(crate::store::TxAbort::Abort(ActionError::Conflict(
                    format!(
                        "deficiency {index} of {audit} was closed already, by {}",
                        c.by
                    ),
                )));
            }
            d.closed = Some(Closure {
                at_ms: now_ms,
                by: by.clone(),
                note: note.to_owned(),
            });
            tx.insert(Table::Audits, &audit.key(), &encode(&record))?;
            super::action::trail_entry(
                tx,
                now_ms,
                by,
                "audit.close_deficiency",
                format!("{audit}#{index}"),
                note.to_owned(),
            )?;
            Ok(record)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_sizes_follow_the_practitioners_rule() {
        for (n, k) in [
            (0, 0),
            (1, 1),
            (3, 2),
            (9, 5),
            (10, 2),
            (50, 10),
            (51, 6),
            (200, 20),
            (1001, 101),
        ] {
            assert_eq!(sample_size(n), k, "class of {n}");
        }
    }
}
