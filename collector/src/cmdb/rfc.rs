//! Requests for change: the record, its classification, and its life:
//! new → assessed → approved (→ scheduled once it has a window) →
//! implemented → reviewed → closed, or rejected, cancelled, failed.
//!
//! The transitions here are checked on the record alone; the CMDB applies
//! them in a transaction together with what they cause (folding a
//! retroactively approved change into the CI, resolving the incident).

use std::fmt;
use std::str::FromStr;

use fathom_shared::ids::CiId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::encode;
use super::history::{Actor, Note};
use crate::control::pattern::Pattern;
use crate::control::policy::Level;
use crate::control::spec::Spec;
use crate::store::{Table, Tx, TxAbort};
use fathom_api::ids::{DriftId, IncidentId, RfcId};

/// The change level (ISO/IEC 20000: standard, normal, emergency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RfcLevel {
    /// Routine, low risk, pre-authorized.
    Standard,
    /// Assessed and approved by a change manager.
    Normal,
    /// Urgent; approved by its own procedure, possibly before assessment.
    Emergency,
}

/// Minor, or major (needs the change advisory board; must be assessed
/// before approval).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RfcImpact {
    Minor,
    Major,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RfcStatus {
    New,
    Assessed,
    /// Approved, not yet given a window.
    Approved,
    /// Approved with a window: changes it specifies are authorized inside it.
    Scheduled,
    Implemented,
    Reviewed,
    Closed,
    Rejected,
    Cancelled,
    Failed,
}

impl RfcStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RfcStatus::New => "new",
            RfcStatus::Assessed => "assessed",
            RfcStatus::Approved => "approved",
            RfcStatus::Scheduled => "scheduled",
            RfcStatus::Implemented => "implemented",
            RfcStatus::Reviewed => "reviewed",
            RfcStatus::Closed => "closed",
            RfcStatus::Rejected => "rejected",
            RfcStatus::Cancelled => "cancelled",
            RfcStatus::Failed => "failed",
        }
    }

    /// Still to be decided or carried out.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RfcStatus::New | RfcStatus::Assessed | RfcStatus::Approved | RfcStatus::Scheduled
        )
    }
}

/// Which CIs an RFC is about: one CI, or every CI a selector matches when
/// the RFC is approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Ci(CiId),
    /// `class=server,name=web-*` (keys `class` and `name`; patterns allowed).
    Selector {
        class: Option<Pattern>,
        name: Option<Pattern>,
    },
}

impl Target {
    pub fn matches(&self, id: CiId, class: &str, name: &str) -> bool {
        match self {
            Target::Ci(c) => *c == id,
            Target::Selector { class: c, name: n } => {
                c.as_ref().is_none_or(|p| p.matches(class))
                    && n.as_ref().is_none_or(|p| p.matches(name))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad target {text:?}: {reason} (give a CI id like ci-12, or a selector like class=server,name=web-*)")]
pub struct BadTarget {
    text: String,
    reason: &'static str,
}

impl FromStr for Target {
    type Err = BadTarget;

    fn from_str(text: &str) -> Result<Target, BadTarget> {
        let bad = |reason| BadTarget {
            text: text.to_owned(),
            reason,
        };
        let t = text.trim();
        if t.starts_with("ci-") {
            return t.parse().map(Target::Ci).map_err(|_| bad("not a CI id"));
        }
        let (mut class, mut name) = (None, None);
        for part in t.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad("a selector part is not key=pattern"))?;
            let slot = match k.trim() {
                "class" => &mut class,
                "name" => &mut name,
                _ => return Err(bad("selector keys are class and name")),
            };
            if v.trim().is_empty() || slot.is_some() {
                return Err(bad("each key once, with a pattern"));
            }
            *slot = Some(Pattern::new(v.trim()));
        }
        Ok(Target::Selector { class, name })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ci(c) => write!(f, "{c}"),
            Target::Selector { class, name } => {
                let parts: Vec<String> = [("class", class), ("name", name)]
                    .into_iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                    .collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// When a change may be made. Changes its specs describe are authorized
/// when observed inside `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RfcOrigin {
    /// Raised by a person.
    Raised,
    /// Drafted by the collector for an unauthorized change it saw.
    MissingRfc { incident: IncidentId },
}

/// A CI that depends on a target, and the relationship path that says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependent {
    pub ci: CiId,
    pub name: String,
    /// e.g. `ci-9 depends_on ci-3`.
    pub path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub at_ms: i64,
    pub by: Actor,
    /// The CIs the RFC touches (targets resolved).
    pub cis: Vec<CiId>,
    /// Through relationships: what depends on them, transitively.
    pub dependents: Vec<Dependent>,
    pub risk: Level,
    pub notes: String,
    /// Other open or scheduled RFCs on the same CIs whose windows overlap.
    #[serde(default)]
    pub conflicts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub at_ms: i64,
    pub by: Actor,
    pub approved: bool,
    pub comment: String,
}

/// A change discovery (or the implementer) saw, credited to the RFC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub at_ms: i64,
    pub ci: CiId,
    pub attribute: String,
    pub old: Option<String>,
    pub new: Option<String>,
    /// `report 12 of agent …`, or `applied by alice (change_manager)`.
    pub source: String,
    #[serde(default)]
    pub drift: Option<DriftId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ReviewOutcome {
    Successful,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub at_ms: i64,
    pub by: Actor,
    pub outcome: ReviewOutcome,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rfc {
    pub id: RfcId,
    pub title: String,
    pub description: String,
    pub reason: String,
    /// install, upgrade, patch, migration, decommission…
    pub change_type: String,
    pub level: RfcLevel,
    pub impact: RfcImpact,
    pub risk: Level,
    pub initiator: Actor,
    pub raised_at_ms: i64,
    pub updated_at_ms: i64,
    pub targets: Vec<Target>,
    /// The targets resolved to CIs (at creation, again at assessment and
    /// approval).
    pub cis: Vec<CiId>,
    pub specs: Vec<Spec>,
    pub implementation_plan: String,
    pub backout_plan: String,
    pub window: Option<Window>,
    pub status: RfcStatus,
    pub origin: RfcOrigin,
    pub assessment: Option<Assessment>,
    pub decision: Option<Approval>,
    pub evidence: Vec<Evidence>,
    pub review: Option<Review>,
    /// Drift this RFC authorized retroactively or was drafted for.
    pub drifts: Vec<DriftId>,
    pub incidents: Vec<IncidentId>,
    pub log: Vec<Note>,
}

/// A new RFC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRfc {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default = "default_change_type")]
    pub change_type: String,
    pub level: RfcLevel,
    pub impact: RfcImpact,
    #[serde(default = "default_risk")]
    pub risk: Level,
    pub targets: Vec<Target>,
    pub specs: Vec<Spec>,
    #[serde(default)]
    pub implementation_plan: String,
    #[serde(default)]
    pub backout_plan: String,
    #[serde(default)]
    pub window: Option<Window>,
}

fn default_change_type() -> String {
    "change".into()
}

fn default_risk() -> Level {
    Level::Medium
}

/// An action on an RFC that its status does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rfc} is {status}; it cannot be {action} ({hint})")]
pub struct InvalidTransition {
    pub rfc: RfcId,
    pub status: &'static str,
    pub action: &'static str,
    pub hint: &'static str,
}

impl Rfc {
    /// A new RFC from a request, status `new`, with nothing decided yet.
    pub fn raised(
        id: RfcId,
        new: &NewRfc,
        cis: Vec<CiId>,
        initiator: &Actor,
        at_ms: i64,
        origin: RfcOrigin,
    ) -> Rfc {
        Rfc {
            id,
            title: new.title.clone(),
            description: new.description.clone(),
            reason: new.reason.clone(),
            change_type: new.change_type.clone(),
            level: new.level,
            impact: new.impact,
            risk: new.risk,
            initiator: initiator.clone(),
            raised_at_ms: at_ms,
            updated_at_ms: at_ms,
            targets: new.targets.clone(),
            cis,
            specs: new.specs.clone(),
            implementation_plan: new.implementation_plan.clone(),
            backout_plan: new.backout_plan.clone(),
            window: new.window,
            status: RfcStatus::New,
            origin,
            assessment: None,
            decision: None,
            evidence: Vec::new(),
            review: None,
            drifts: Vec::new(),
            incidents: Vec::new(),
            log: vec![Note {
                at_ms,
                by: initiator.clone(),
                text: "raised".into(),
            }],
        }
    }

    fn refuse(&self, action: &'static str, hint: &'static str) -> InvalidTransition {
        InvalidTransition {
            rfc: self.id,
            status: self.status.as_str(),
            action,
            hint,
        }
    }

    pub(crate) fn log(&mut self, at_ms: i64, by: &Actor, text: String) {
        self.updated_at_ms = at_ms;
        self.log.push(Note {
            at_ms,
            by: by.clone(),
            text,
        });
    }

    pub fn assess(&mut self, assessment: Assessment) -> Result<(), InvalidTransition> {
        if !matches!(self.status, RfcStatus::New | RfcStatus::Assessed) {
            return Err(self.refuse("assessed", "only new RFCs are assessed"));
        }
        self.status = RfcStatus::Assessed;
        self.risk = assessment.risk;
        self.cis = assessment.cis.clone();
        let (at, by) = (assessment.at_ms, assessment.by.clone());
        self.log(
            at,
            &by,
            format!(
                "assessed: {} CI(s), {} dependent(s), risk {}",
                assessment.cis.len(),
                assessment.dependents.len(),
                assessment.risk.as_str()
            ),
        );
        self.assessment = Some(assessment);
        Ok(())
    }

    /// Approves; with a window the RFC is scheduled at once.
    pub fn approve(&mut self, approval: Approval) -> Result<(), InvalidTransition> {
        if !matches!(self.status, RfcStatus::New | RfcStatus::Assessed) {
            return Err(self.refuse("approved", "only new or assessed RFCs are approved"));
        }
        if self.impact == RfcImpact::Major && self.assessment.is_none() {
            return Err(self.refuse(
                "approved",
                "a major change must be assessed first: `fathom rfc assess`",
            ));
        }
        self.status = if self.window.is_some() {
            RfcStatus::Scheduled
        } else {
            RfcStatus::Approved
        };
        let text = format!("approved: {}", approval.comment);
        self.log(approval.at_ms, &approval.by.clone(), text);
        self.decision = Some(approval);
        Ok(())
    }

    pub fn reject(&mut self, rejection: Approval) -> Result<(), InvalidTransition> {
        if !matches!(self.status, RfcStatus::New | RfcStatus::Assessed) {
            return Err(self.refuse("rejected", "only new or assessed RFCs are rejected"));
        }
        self.status = RfcStatus::Rejected;
        let text = format!("rejected: {}", rejection.comment);
        self.log(rejection.at_ms, &rejection.by.clone(), text);
        self.decision = Some(rejection);
        Ok(())
    }

    pub fn schedule(
        &mut self,
        window: Window,
        at_ms: i64,
        by: &Actor,
    ) -> Result<(), InvalidTransition> {
        match self.status {
            RfcStatus::New | RfcStatus::Assessed => {}
            RfcStatus::Approved | RfcStatus::Scheduled => self.status = RfcStatus::Scheduled,
            _ => return Err(self.refuse("scheduled", "only open RFCs get a window")),
        }
        self.window = Some(window);
        self.log(at_ms, by, "window set".into());
        Ok(())
    }

    pub fn implement(
        &mut self,
        at_ms: i64,
        by: &Actor,
        text: String,
    ) -> Result<(), InvalidTransition> {
        if !matches!(self.status, RfcStatus::Approved | RfcStatus::Scheduled) {
            return Err(self.refuse("implemented", "approve it first"));
        }
        self.status = RfcStatus::Implemented;
        self.log(at_ms, by, text);
        Ok(())
    }

    pub fn post_implementation_review(&mut self, review: Review) -> Result<(), InvalidTransition> {
        if self.status != RfcStatus::Implemented {
            return Err(self.refuse("reviewed", "only implemented RFCs are reviewed"));
        }
        self.status = match review.outcome {
            ReviewOutcome::Successful => RfcStatus::Reviewed,
            ReviewOutcome::Failed => RfcStatus::Failed,
        };
        let text = format!("reviewed ({:?}): {}", review.outcome, review.comment).to_lowercase();
        self.log(review.at_ms, &review.by.clone(), text);
        self.review = Some(review);
        Ok(())
    }

    pub fn close(
        &mut self,
        at_ms: i64,
        by: &Actor,
        comment: &str,
    ) -> Result<(), InvalidTransition> {
        if !matches!(
            self.status,
            RfcStatus::Reviewed | RfcStatus::Rejected | RfcStatus::Failed | RfcStatus::Cancelled
        ) {
            return Err(self.refuse(
                "closed",
                "review an implemented RFC before closing it; cancel one not carried out",
            ));
        }
        self.status = RfcStatus::Closed;
        self.log(at_ms, by, format!("closed: {comment}"));
        Ok(())
    }

    pub fn cancel(
        &mut self,
        at_ms: i64,
        by: &Actor,
        comment: &str,
    ) -> Result<(), InvalidTransition> {
        if !self.status.is_open() {
            return Err(self.refuse("cancelled", "only open RFCs are cancelled"));
        }
        self.status = RfcStatus::Cancelled;
        self.log(at_ms, by, format!("cancelled: {comment}"));
        Ok(())
    }

    /// Whether discovery has shown every discovered-attribute spec on every
    /// target CI (CI-field specs are applied by `implement`, not seen).
    pub fn all_specs_seen(&self) -> bool {
        let discovered: Vec<&Spec> = self.specs.iter().filter(|s| !s.is_ci_field()).collect();
        if discovered.is_empty() || discovered.len() != self.specs.len() {
            return false;
        }
        // Evidence by CI and attribute: a draft for a mass change has a
        // spec and an evidence entry per attribute.
        let mut seen: std::collections::HashMap<(CiId, &str), Vec<Option<&str>>> =
            std::collections::HashMap::new();
        for e in &self.evidence {
            seen.entry((e.ci, e.attribute.as_str()))
                .or_default()
                .push(e.new.as_deref());
        }
        self.cis.iter().all(|ci| {
            discovered.iter().all(|s| {
                if s.attribute.is_literal() {
                    seen.get(&(*ci, s.attribute.as_str()))
                        .is_some_and(|values| {
                            values.iter().any(|v| s.matches(s.attribute.as_str(), *v))
                        })
                } else {
                    self.evidence
                        .iter()
                        .any(|e| e.ci == *ci && s.matches(&e.attribute, e.new.as_deref()))
                }
            })
        })
    }
}

/// RFC trends for a period, as change management reviews them: volumes by
/// status, level and type, the emergency share, unauthorized changes
/// (missing-RFC drafts), success rate and lead times.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RfcStats {
    pub since_ms: i64,
    pub total: usize,
    pub by_status: std::collections::BTreeMap<String, usize>,
    pub by_level: std::collections::BTreeMap<String, usize>,
    pub by_type: std::collections::BTreeMap<String, usize>,
    pub emergency_pct: Option<f64>,
    /// Drafted by the collector for changes seen without an RFC.
    pub unauthorized: usize,
    /// Reviewed after implementation: successful, and failed.
    pub successful: usize,
    pub failed: usize,
    pub success_pct: Option<f64>,
    /// Median hours from raised to approved.
    pub median_hours_to_approval: Option<f64>,
    /// Median hours from approved to implemented.
    pub median_hours_to_implementation: Option<f64>,
}

fn median_hours(mut ms: Vec<i64>) -> Option<f64> {
    if ms.is_empty() {
        return None;
    }
    ms.sort_unstable();
    let mid = ms.len() / 2;
    let m = if ms.len() % 2 == 1 {
        ms[mid] as f64
    } else {
        (ms[mid - 1] + ms[mid]) as f64 / 2.0
    };
    Some(m / 3_600_000.0)
}

/// Trends over the RFCs raised since `since_ms`.
pub fn stats(rfcs: &[Rfc], since_ms: i64) -> RfcStats {
    let period: Vec<&Rfc> = rfcs.iter().filter(|r| r.raised_at_ms >= since_ms).collect();
    let mut out = RfcStats {
        since_ms,
        total: period.len(),
        ..RfcStats::default()
    };
    let mut to_approval = Vec::new();
    let mut to_implementation = Vec::new();
    for r in &period {
        *out.by_status.entry(r.status.as_str().into()).or_default() += 1;
        *out.by_level
            .entry(format!("{:?}", r.level).to_lowercase())
            .or_default() += 1;
        *out.by_type.entry(r.change_type.clone()).or_default() += 1;
        if matches!(r.origin, RfcOrigin::MissingRfc { .. }) {
            out.unauthorized += 1;
        }
        match r.review.as_ref().map(|v| v.outcome) {
            Some(ReviewOutcome::Successful) => out.successful += 1,
            Some(ReviewOutcome::Failed) => out.failed += 1,
            None => {}
        }
        if let Some(d) = r.decision.as_ref().filter(|d| d.approved) {
            to_approval.push(d.at_ms - r.raised_at_ms);
            if let Some(done) = r.log.iter().find(|n| n.text.starts_with("implemented")) {
                to_implementation.push(done.at_ms - d.at_ms);
            }
        }
    }
    if out.total > 0 {
        let emergency = out.by_level.get("emergency").copied().unwrap_or(0);
        out.emergency_pct = Some(emergency as f64 * 100.0 / out.total as f64);
    }
    if out.successful + out.failed > 0 {
        out.success_pct =
            Some(out.successful as f64 * 100.0 / (out.successful + out.failed) as f64);
    }
    out.median_hours_to_approval = median_hours(to_approval);
    out.median_hours_to_implementation = median_hours(to_implementation);
    out
}

pub(crate) fn put_rfc<E>(tx: &dyn Tx, r: &Rfc) -> Result<(), TxAbort<E>> {
    Ok(tx.insert(Table::Rfcs, &r.id.key(), &encode(r))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_count_levels_outcomes_and_lead_times() {
        let hour = 3_600_000;
        let mut done = rfc(RfcImpact::Minor);
        done.raised_at_ms = 10 * hour;
        done.approve(Approval {
            at_ms: 12 * hour,
            ..approval()
        })
        .unwrap();
        done.implement(15 * hour, &Actor::Collector, "implemented: x".into())
            .unwrap();
        done.post_implementation_review(Review {
            at_ms: 16 * hour,
            by: Actor::Collector,
            outcome: ReviewOutcome::Successful,
            comment: String::new(),
        })
        .unwrap();
        let mut urgent = rfc(RfcImpact::Minor);
        urgent.raised_at_ms = 11 * hour;
        urgent.level = RfcLevel::Emergency;
        let mut drafted = rfc(RfcImpact::Minor);
        drafted.raised_at_ms = 11 * hour;
        drafted.origin = RfcOrigin::MissingRfc {
            incident: IncidentId::from_u64(1),
        };
        let old = rfc(RfcImpact::Minor);
        let s = stats(&[done, urgent, drafted, old], hour);
        assert_eq!(s.total, 3, "the one raised before the period is left out");
        assert_eq!(s.by_status.get("reviewed"), Some(&1));
        assert_eq!(s.by_level.get("emergency"), Some(&1));
        assert_eq!(s.unauthorized, 1);
        assert_eq!(s.success_pct, Some(100.0));
        assert_eq!(s.median_hours_to_approval, Some(2.0));
        assert_eq!(s.median_hours_to_implementation, Some(3.0));
        assert!((s.emergency_pct.unwrap() - 33.33).abs() < 0.01);
    }

    fn rfc(impact: RfcImpact) -> Rfc {
        let new = NewRfc {
            title: "t".into(),
            description: String::new(),
            reason: String::new(),
            change_type: "upgrade".into(),
            level: RfcLevel::Normal,
            impact,
            risk: Level::Low,
            targets: vec![Target::Ci(CiId::from_u64(1))],
            specs: vec!["packages.nginx: 1.24.*".parse().unwrap()],
            implementation_plan: String::new(),
            backout_plan: String::new(),
            window: None,
        };
        let mut r = Rfc::raised(
            RfcId::from_u64(1),
            &new,
            vec![CiId::from_u64(1)],
            &Actor::Collector,
            0,
            RfcOrigin::Raised,
        );
        r.log.clear();
        r
    }

    fn approval() -> Approval {
        Approval {
            at_ms: 1,
            by: Actor::Collector,
            approved: true,
            comment: "ok".into(),
        }
    }

    #[test]
    fn the_lifecycle_in_order_and_out_of_order() {
        let mut r = rfc(RfcImpact::Minor);
        assert!(r.implement(1, &Actor::Collector, "x".into()).is_err());
        assert!(r.close(1, &Actor::Collector, "x").is_err());
        r.approve(approval()).unwrap();
        assert_eq!(r.status, RfcStatus::Approved);
        r.schedule(
            Window {
                start_ms: 0,
                end_ms: 10,
            },
            2,
            &Actor::Collector,
        )
        .unwrap();
        assert_eq!(r.status, RfcStatus::Scheduled);
        assert!(r.reject(approval()).is_err());
        assert!(!r.all_specs_seen());
        r.evidence.push(Evidence {
            at_ms: 3,
            ci: CiId::from_u64(1),
            attribute: "packages.nginx".into(),
            old: Some("1.22".into()),
            new: Some("1.24.0-1".into()),
            source: "report".into(),
            drift: None,
        });
        assert!(r.all_specs_seen());
        r.implement(3, &Actor::Collector, "seen".into()).unwrap();
        let err = r.close(4, &Actor::Collector, "x").unwrap_err();
        assert!(err.to_string().contains("review"), "{err}");
        r.post_implementation_review(Review {
            at_ms: 4,
            by: Actor::Collector,
            outcome: ReviewOutcome::Successful,
            comment: "fine".into(),
        })
        .unwrap();
        r.close(5, &Actor::Collector, "done").unwrap();
        assert_eq!(r.status, RfcStatus::Closed);
        assert_eq!(r.log.len(), 5);
    }

    #[test]
    fn a_major_change_is_assessed_before_approval() {
        let mut r = rfc(RfcImpact::Major);
        let err = r.approve(approval()).unwrap_err();
        assert!(err.to_string().contains("assess"), "{err}");
        r.assess(Assessment {
            at_ms: 1,
            by: Actor::Collector,
            cis: vec![CiId::from_u64(1)],
            dependents: vec![],
            risk: Level::High,
            notes: String::new(),
            conflicts: vec![],
        })
        .unwrap();
        r.approve(approval()).unwrap();
        assert_eq!(r.risk, Level::High);
    }

    #[test]
    fn targets_parse_and_match() {
        let t: Target = "class=server,name=web-*".parse().unwrap();
        assert!(t.matches(CiId::from_u64(5), "server", "web-01"));
        assert!(!t.matches(CiId::from_u64(5), "server", "db-01"));
        assert_eq!(t.to_string(), "class=server,name=web-*");
        let c: Target = "ci-5".parse().unwrap();
        assert!(c.matches(CiId::from_u64(5), "x", "y"));
        for bad in ["colour=red", "class", "ci-x", "class=a,class=b"] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
