//! The capacity plan: for each series a threshold applies to, on the CIs
//! asked for (all, a class, or a service and what it depends on), its
//! current utilization, its peaks, its trend and when that reaches the
//! critical level (with the range the trend's error allows), how much a
//! daily season explains (additive Holt-Winters against a straight line),
//! and the headroom left; per service, its tightest member.
//!
//! Reads only: the metric store and the CMDB. The rendering (table, CSV,
//! HTML with SVG charts) is the CLI's.

use std::collections::BTreeSet;

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use super::capacity_alert::Severity;
use super::ci::RelationKind;
use super::Cmdb;
use crate::capacity::forecast::{HoltWinters, Linear};
use crate::capacity::rollup::{percentile_f64, Tier};
use crate::capacity::series::Unit;
use crate::capacity::store::{MetricError, MetricSettings, MetricStore, Point};
use crate::store::Store;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// Which CIs a plan covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Class(String),
    /// A service and the CIs it depends on (recursively, with its
    /// redundancy groups' members).
    Service(CiId),
}

/// One series in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanLine {
    pub ci: CiId,
    pub ci_name: String,
    pub class: String,
    pub series: String,
    pub unit: Unit,
    /// Mean of the last 15 minutes.
    pub current: f64,
    /// p95 and p99 of the period's 5-minute means, and its highest.
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub peak: Option<f64>,
    pub warning: f64,
    pub critical: f64,
    /// Critical level minus current.
    pub headroom: f64,
    pub severity: Option<Severity>,
    /// Trend over the period's hourly means, per day.
    pub trend_per_day: Option<f64>,
    /// When the trend reaches critical: at, earliest, latest (Unix ms).
    pub crossing: Option<(i64, i64, Option<i64>)>,
    /// One-step-ahead errors of a straight line and of an additive daily
    /// Holt-Winters on the hourly means: a seasonal series has the second
    /// much smaller.
    pub linear_rmse: Option<f64>,
    pub seasonal_rmse: Option<f64>,
    /// The hourly means, for charts.
    pub hourly: Vec<(i64, f64)>,
}

/// A service's tightest member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceHeadroom {
    pub service: CiId,
    pub name: String,
    pub members: usize,
    /// The member series with the least headroom, relative to its critical
    /// level: (CI, series, headroom).
    pub tightest: Option<(CiId, String, f64)>,
    /// The soonest forecast crossing among its members.
    pub soonest_crossing: Option<(CiId, String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityPlan {
    pub generated_ms: i64,
    pub from_ms: i64,
    pub horizon_ms: i64,
    pub lines: Vec<PlanLine>,
    pub service: Option<ServiceHeadroom>,
}

/// p95, p99 and highest of points' means.
fn peaks(points: &[Point]) -> (Option<f64>, Option<f64>, Option<f64>) {
    let mut means: Vec<f64> = points.iter().map(|p| p.mean).collect();
    if means.is_empty() {
        return (None, None, None);
    }
    means.sort_by(f64::total_cmp);
    (
        Some(percentile_f64(&means, 95.0)),
        Some(percentile_f64(&means, 99.0)),
        means.last().copied(),
    )
}

impl<S: Store> Cmdb<S> {
    /// The plan for `scope` over the `days` before `now_ms`.
    pub fn capacity_plan(
        &self,
        scope: &Scope,
        days: i64,
        now_ms: i64,
        metrics: &MetricSettings,
    ) -> Result<CapacityPlan, MetricError> {
        let policy = &self.policy.capacity;
        let store = MetricStore::new(&self.store, metrics);
        let from_ms = now_ms - days * DAY_MS;
        let cis: Vec<CiId> = match scope {
            Scope::All | Scope::Class(_) => store.cis()?,
            Scope::Service(s) => self.dependencies(*s)?.into_iter().collect(),
        };
        let mut lines = Vec::new();
        for ci in cis {
            let Some(record) = self.ci(ci)? else { continue };
            if let Scope::Class(class) = scope {
                if &record.class != class {
                    continue;
                }
            }
            for a in self.assess_ci(&store, &record, days * DAY_MS, now_ms)? {
                let (found, t, hourly, name) =
                    (&a.finding, &a.threshold, &a.hourly, &a.finding.series);
                let fives = store
                    .points(ci, name, Tier::FiveMinute, from_ms, now_ms + 1)?
                    .unwrap_or_default();
                let (p95, p99, peak) = peaks(&fives);
                let by_day: Vec<(f64, f64)> = hourly
                    .iter()
                    .map(|p| (p.at_ms as f64 / DAY_MS as f64, p.mean))
                    .collect();
                let linear = Linear::fit(&by_day);
                let means: Vec<f64> = hourly.iter().map(|p| p.mean).collect();
                let seasonal = HoltWinters::fit(&means, 24);
                lines.push(PlanLine {
                    ci,
                    ci_name: record.name.clone(),
                    class: record.class.clone(),
                    series: name.clone(),
                    unit: a.unit,
                    current: found.current,
                    p95,
                    p99,
                    peak,
                    warning: t.warning,
                    critical: t.critical,
                    headroom: t.critical - found.current,
                    severity: found.severity,
                    trend_per_day: linear.map(|l| l.slope),
                    crossing: found.crossing,
                    linear_rmse: linear.map(|l| l.rmse),
                    seasonal_rmse: seasonal.map(|h| h.rmse),
                    hourly: hourly.iter().map(|p| (p.at_ms, p.mean)).collect(),
                });
            }
        }
        // Tightest first: least headroom relative to the critical level.
        lines.sort_by(|a, b| (a.headroom / a.critical).total_cmp(&(b.headroom / b.critical)));
        let service = match scope {
            Scope::Service(s) => {
                let record = self.ci(*s)?;
                Some(ServiceHeadroom {
                    service: *s,
                    name: record.map(|r| r.name).unwrap_or_else(|| s.to_string()),
                    members: self.dependencies(*s)?.len() - 1,
                    tightest: lines.first().map(|l| (l.ci, l.series.clone(), l.headroom)),
                    soonest_crossing: lines
                        .iter()
                        .filter_map(|l| l.crossing.map(|c| (l.ci, l.series.clone(), c.0)))
                        .min_by_key(|c| c.2),
                })
            }
            _ => None,
        };
        Ok(CapacityPlan {
            generated_ms: now_ms,
            from_ms,
            horizon_ms: policy.horizon_ms,
            lines,
            service,
        })
    }

    /// A service and everything it depends on, through `depends_on` and
    /// its redundancy groups, to any depth.
    fn dependencies(&self, service: CiId) -> Result<BTreeSet<CiId>, MetricError> {
        let mut found = BTreeSet::from([service]);
        let mut queue = vec![service];
        while let Some(ci) = queue.pop() {
            let (outgoing, _) = self.relationships_of(ci)?;
            let mut next: Vec<CiId> = outgoing
                .iter()
                .filter(|r| r.kind == RelationKind::DependsOn)
                .map(|r| r.to)
                .collect();
            if let Some(record) = self.ci(ci)? {
                for (attribute, text) in &record.attributes {
                    if attribute.starts_with("redundancy.") {
                        let members = text.split_once(" of ").map_or("", |(_, m)| m);
                        next.extend(
                            members
                                .split([' ', ','])
                                .filter_map(|m| m.parse::<CiId>().ok()),
                        );
                    }
                }
            }
            for n in next {
                if found.insert(n) {
                    queue.push(n);
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdb::control::NewCi;
    use crate::cmdb::history::Actor;
    use crate::cmdb::reconcile::tests_support::{Fixture, NOON};
    use crate::cmdb::{Report, Role};
    use crate::control::policy::Policy;
    use fathom_shared::wire::{FilesystemUse, Metrics};

    /// 14 days of /var filling 1 %/day from 50 %, with a daily swing of
    /// ±5 % in memory; then the plan.
    #[test]
    fn the_plan_has_trends_peaks_seasonality_and_a_services_tightest_member() {
        let mut f = Fixture::with_policy(Policy::builtin());
        let host = f.report(&[], NOON);
        let settings = MetricSettings::default();
        let mut t = NOON;
        for i in 0..(14 * 24 * 6) {
            let day = i as f64 / (24.0 * 6.0);
            let swing = (day * std::f64::consts::TAU).sin() * 5.0;
            let m = Metrics {
                observed_at_ms: t,
                memory_total_bytes: 1000,
                memory_used_bytes: (600.0 + swing * 10.0) as u64,
                filesystems: vec![FilesystemUse {
                    mount_point: "/var".into(),
                    used_bytes: ((50.0 + day) * 1e9) as u64,
                    total_bytes: 100_000_000_000,
                    ..FilesystemUse::default()
                }],
                ..Metrics::default()
            };
            f.apply(Report::Metrics(m), t);
            t += 10 * MINUTE_MS;
            if i % 144 == 143 {
                let store = MetricStore::new(f.cmdb.store(), &settings);
                while store.fold(1000, t).unwrap().entries > 0 {}
                let mut from = Vec::new();
                while let (Some(next), _) = store.roll_up(&from, 100, t).unwrap() {
                    from = next;
                }
            }
        }
        let person = Actor::Operator {
            name: "cp".into(),
            role: Role::ConfigurationManager,
        };
        let new = NewCi {
            class: "service".into(),
            name: "shop".into(),
            ..NewCi::default()
        };
        let shop = f.cmdb.create_ci(&person, &new, "t", t).unwrap().id;
        f.cmdb
            .relate(&person, shop, RelationKind::DependsOn, host, true, "t", t)
            .unwrap();

        let plan = f
            .cmdb
            .capacity_plan(&Scope::Service(shop), 14, t, &settings)
            .unwrap();
        let var = plan
            .lines
            .iter()
            .find(|l| l.series == "fs.used_pct:/var")
            .unwrap();
        assert!((var.current - 64.0).abs() < 0.2, "{}", var.current);
        assert!(
            (var.trend_per_day.unwrap() - 1.0).abs() < 0.01,
            "{:?}",
            var.trend_per_day
        );
        let (at, earliest, _) = var.crossing.unwrap();
        let days = (at - t) as f64 / DAY_MS as f64;
        assert!((days - 26.0).abs() < 0.5, "{days}");
        assert!(earliest <= at);
        assert!(var.p95.unwrap() > 63.0 && var.peak.unwrap() <= 64.1);
        assert!((var.headroom - (90.0 - var.current)).abs() < 1e-9);
        assert_eq!(var.hourly.len(), 14 * 24);
        let memory = plan
            .lines
            .iter()
            .find(|l| l.series == "memory.used_pct")
            .unwrap();
        // A daily swing: the seasonal model predicts it far better.
        assert!(
            memory.seasonal_rmse.unwrap() * 3.0 < memory.linear_rmse.unwrap(),
            "{:?} vs {:?}",
            memory.seasonal_rmse,
            memory.linear_rmse
        );
        assert_eq!(memory.crossing, None, "no growth");
        // The tightest member series is /var (64 of 90 against 60 of 97).
        let service = plan.service.unwrap();
        assert_eq!(service.members, 1);
        assert_eq!(service.tightest.unwrap().1, "fs.used_pct:/var");
        assert_eq!(service.soonest_crossing.unwrap().2, at);
        // A class scope leaves the others out.
        let none = f
            .cmdb
            .capacity_plan(&Scope::Class("database".into()), 14, t, &settings)
            .unwrap();
        assert!(none.lines.is_empty());
    }
}
