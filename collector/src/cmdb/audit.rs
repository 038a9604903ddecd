//! Configuration audits: how well the CMDB matches reality, which CIs to
//! verify by hand, and the deficiencies found with their corrective actions.
//!
//! The report compares each registered CI's authorized state with its
//! latest discovery (inside the scopes discovery observed, without what the
//! policy ignores), and counts:
//! - **accuracy**: the share of compared CIs with no difference;
//! - mismatches by class and by attribute section;
//! - CIs discovered but not registered; registered but never discovered
//!   (CIs made by hand in a class that discovery reports) or no longer
//!   discovered (stale); duplicates pending in the review queue.
//!
//! The **verification sample** for a physical audit follows the
//! practitioners' rule: 50% of a class with fewer than 10 CIs, 20% for 10
//! to 50, 10% above 50, at least one. The draw is pseudo-random from a seed
//! the report records, so the same seed gives the same sample.

use std::collections::{BTreeMap, BTreeSet};

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use super::ci::{CiRecord, CiSource, CiStatus};
use super::control::ActionError;
use super::history::Actor;
use super::ids::AuditId;
use super::review::ReviewStatus;
use super::{encode, next_id, Cmdb, Counter};
use crate::control::attributes::{self, section_of};
use crate::control::policy::Control;
use crate::store::{Store, StoreError, Table};

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
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub cis: usize,
    pub compared: usize,
    pub matching: usize,
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
            };
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
                sample: report
                    .cis
                    .iter()
                    .filter(|c| c.in_sample)
                    .map(|c| c.id)
                    .collect(),
                deficiencies: deficiencies.to_vec(),
            };
            tx.insert(Table::Audits, &id.key(), &encode(&record))?;
            super::control::trail_entry(
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
