//! The capacity plan: for each series a threshold applies to, on the CIs
//! asked for (all, a class, or a service and what it depends on), its
//! current utilization, its peaks, its trend and when that reaches the
//! critical level (with the range the trend's error allows), how much a
//! daily season explains (additive Holt-Winters against a straight line),
//! the headroom left, and what open RFCs stating a new capacity
//! (`hardware.memory_bytes: 68719476736`, `hardware.cpu_threads: 16`,
//! `storage./var.size_bytes: …`) would leave; per service, its tightest member.
//!
//! Reads only: the metric store and the CMDB. The rendering (table, CSV,
//! HTML with SVG charts) is the CLI's.

use std::collections::BTreeSet;

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use super::alert::{Seasonal, Severity};
use crate::capacity::rollup::{percentile_f64, Tier};
use crate::capacity::series::Unit;
use crate::capacity::store::{MetricError, MetricSettings, MetricStore, Point};
use crate::cmdb::relationship::RelationKind;
use crate::cmdb::rfc::Rfc;
use crate::cmdb::Cmdb;
use crate::control::spec::Expect;
use crate::store::Store;
use fathom_api::ids::RfcId;
use fathom_support::time::DAY_MS;

/// Below this many hourly means, charts draw the 5-minute means.
const SHORT_HISTORY_HOURS: usize = 48;

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
    /// One-step-ahead errors of a straight line and of an additive
    /// Holt-Winters on the hourly means (the better of a daily and, given
    /// two weeks, a weekly season: `season_hours` 24 or 168): a seasonal
    /// series has the second much smaller.
    pub linear_rmse: Option<f64>,
    #[serde(default)]
    pub season_hours: Option<usize>,
    pub seasonal_rmse: Option<f64>,
    /// When the seasonal model's forecast first reaches critical within
    /// the horizon, where that model fits better than the line: the peak
    /// of a daily swing gets there before the trend through its middle.
    #[serde(default)]
    pub seasonal_crossing: Option<i64>,
    /// That model's forecast, hourly to the horizon, where it fits better
    /// than the line (for charts; empty otherwise).
    #[serde(default)]
    pub seasonal_forecast: Vec<(i64, f64)>,
    /// When its samples stopped, if they stopped more than the stale time
    /// ago (an unmounted filesystem): `current` is its last value.
    #[serde(default)]
    pub stale_since_ms: Option<i64>,
    /// The hourly means, for charts.
    pub hourly: Vec<(i64, f64)>,
    /// The 5-minute means, for charts of a series with less than two days
    /// of hourly means (empty otherwise): an hour of data is a line too.
    #[serde(default)]
    pub recent: Vec<(i64, f64)>,
    /// Open RFCs on this CI that state a new capacity for this series
    /// (`hardware.memory_bytes`, `hardware.swap_bytes`,
    /// `hardware.cpu_threads`, `storage.<mount>.size_bytes`), with the use
    /// and crossing they would leave.
    #[serde(default)]
    pub pending_changes: Vec<RfcEffect>,
}

/// What an open RFC stating a capacity change would do to a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfcEffect {
    pub rfc: RfcId,
    pub title: String,
    pub status: String,
    pub window_start_ms: Option<i64>,
    pub attribute: String,
    /// Capacity now (the authorized value) and as the RFC states it.
    pub from: f64,
    pub to: f64,
    /// The series' use with the new capacity, at today's load.
    pub current_after: f64,
    pub headroom_after: f64,
    /// When the same growth would reach critical with the new capacity.
    pub crossing_after: Option<i64>,
}

/// The capacity attribute behind a percentage series: memory and swap
/// for their use, a filesystem's size for its use, and the hardware
/// threads for CPU utilisation (the same work spread over more threads).
/// Byte series do not change with size.
fn capacity_attribute(series: &str) -> Option<String> {
    match series.split_once(':') {
        None => match series {
            "memory.used_pct" => Some("hardware.memory_bytes".into()),
            "swap.used_pct" => Some("hardware.swap_bytes".into()),
            "cpu.utilisation_pct" => Some("hardware.cpu_threads".into()),
            _ => None,
        },
        Some(("fs.used_pct", mount)) => Some(format!("storage.{mount}.size_bytes")),
        _ => None,
    }
}

/// The effects of `rfcs` on a plan line, at `now_ms`.
fn effects(
    line: &PlanLine,
    authorized: &std::collections::BTreeMap<String, String>,
    rfcs: &[Rfc],
    now_ms: i64,
) -> Vec<RfcEffect> {
    let Some(attribute) = capacity_attribute(&line.series) else {
        return Vec::new();
    };
    let Some(from) = authorized
        .get(&attribute)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for rfc in rfcs
        .iter()
        .filter(|r| r.status.is_open() && r.cis.contains(&line.ci))
    {
        for spec in rfc
            .specs
            .iter()
            .filter(|s| s.attribute.is_literal() && s.attribute.as_str() == attribute)
        {
            let Expect::Value(value) = &spec.expect else {
                continue;
            };
            let Some(to) = value
                .as_str()
                .parse::<f64>()
                .ok()
                .filter(|v| *v > 0.0 && value.is_literal())
            else {
                continue;
            };
            let scale = from / to;
            let current_after = line.current * scale;
            let crossing_after = line
                .trend_per_day
                .map(|slope| slope * scale)
                .filter(|slope| *slope > 0.0 && current_after < line.critical)
                .map(|slope| {
                    now_ms + ((line.critical - current_after) / slope * DAY_MS as f64) as i64
                });
            out.push(RfcEffect {
                rfc: rfc.id,
                title: rfc.title.clone(),
                status: rfc.status.as_str().to_owned(),
                window_start_ms: rfc.window.as_ref().map(|w| w.start_ms),
                attribute: attribute.clone(),
                from,
                to,
                current_after,
                headroom_after: line.critical - current_after,
                crossing_after,
            });
        }
    }
    out
}

/// One series of one CI over a period, for queries across CIs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoints {
    pub ci: CiId,
    pub ci_name: String,
    pub series: String,
    pub unit: Unit,
    pub points: Vec<Point>,
}

/// Whether a series name matches a query: the name itself, or a prefix
/// ending in `*` (`fs.used_pct:*`, `if.*`).
pub fn series_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
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
    /// The soonest forecast crossing among its members (by trend or by
    /// seasonal forecast).
    pub soonest_crossing: Option<(CiId, String, i64)>,
    /// Hour by hour, the highest use among its member series as a share of
    /// each one's critical level (100 = a member at critical): the
    /// service's tightest point over the period.
    #[serde(default)]
    pub utilisation: Vec<(i64, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityPlan {
    pub generated_ms: i64,
    pub from_ms: i64,
    pub horizon_ms: i64,
    pub lines: Vec<PlanLine>,
    pub service: Option<ServiceHeadroom>,
}

/// Hour by hour, the highest of `lines`' hourly means as a percentage of
/// each one's critical level.
fn tightest_by_hour(lines: &[PlanLine]) -> Vec<(i64, f64)> {
    let mut by_hour: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    for l in lines.iter().filter(|l| l.critical > 0.0) {
        for &(at, mean) in &l.hourly {
            let share = mean / l.critical * 100.0;
            let worst = by_hour.entry(at).or_insert(share);
            *worst = worst.max(share);
        }
    }
    by_hour.into_iter().collect()
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
        let policy = &self.policy().capacity;
        let store = MetricStore::new(self.store(), metrics);
        let from_ms = now_ms - days * DAY_MS;
        let cis: Vec<CiId> = match scope {
            Scope::All | Scope::Class(_) => store.cis()?,
            Scope::Service(s) => self.dependencies(*s)?.into_iter().collect(),
        };
        let rfcs: Vec<Rfc> = self
            .list_rfcs()?
            .into_iter()
            .filter(|r| r.status.is_open())
            .collect();
        // CIs are independent: split over the machine's cores (a plan over
        // thousands of CIs fits two models to every series).
        let class = match scope {
            Scope::Class(c) => Some(c.as_str()),
            _ => None,
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = cis.len().div_ceil(threads).max(1);
        let mut lines = std::thread::scope(|s| {
            let workers: Vec<_> = cis
                .chunks(chunk)
                .map(|cis| {
                    let rfcs = &rfcs;
                    s.spawn(move || self.plan_lines(cis, class, days, now_ms, rfcs, metrics))
                })
                .collect();
            let mut lines = Vec::new();
            for w in workers {
                lines.extend(w.join().expect("a plan worker panicked")?);
            }
            Ok::<_, MetricError>(lines)
        })?;
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
                        .filter_map(|l| {
                            let at = [l.crossing.map(|c| c.0), l.seasonal_crossing]
                                .into_iter()
                                .flatten()
                                .min()?;
                            Some((l.ci, l.series.clone(), at))
                        })
                        .min_by_key(|c| c.2),
                    utilisation: tightest_by_hour(&lines),
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

    /// The series matching `pattern` (see [`series_matches`]) on the CIs
    /// of `scope`, at `tier` over `[from_ms, to_ms)`; at most `limit`
    /// series, or an error saying how many matched.
    pub fn query_series(
        &self,
        scope: &Scope,
        pattern: &str,
        (tier, from_ms, to_ms): (Tier, i64, i64),
        limit: usize,
        metrics: &MetricSettings,
    ) -> Result<Result<Vec<SeriesPoints>, usize>, MetricError> {
        let store = MetricStore::new(self.store(), metrics);
        let cis: Vec<CiId> = match scope {
            Scope::All | Scope::Class(_) => store.cis()?,
            Scope::Service(s) => self.dependencies(*s)?.into_iter().collect(),
        };
        // Per CI: its name and its matching series (name, unit).
        let mut matched = Vec::new();
        for ci in cis {
            let Some(record) = self.ci(ci)? else { continue };
            if matches!(scope, Scope::Class(class) if &record.class != class) {
                continue;
            }
            let series: Vec<(String, Unit)> = store
                .series_of(ci)?
                .into_iter()
                .filter(|(name, _)| series_matches(pattern, name))
                .map(|(name, meta)| (name, meta.unit))
                .collect();
            if !series.is_empty() {
                matched.push((ci, record.name, series));
            }
        }
        let count: usize = matched.iter().map(|(_, _, s)| s.len()).sum();
        if count > limit {
            return Ok(Err(count));
        }
        let mut out = Vec::with_capacity(count);
        for (ci, ci_name, series) in matched {
            let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
            let mut points = store.points_of(ci, &names, tier, from_ms, to_ms)?;
            for (name, unit) in series {
                out.push(SeriesPoints {
                    ci,
                    ci_name: ci_name.clone(),
                    points: points.remove(&name).unwrap_or_default(),
                    series: name,
                    unit,
                });
            }
        }
        Ok(Ok(out))
    }

    /// The plan's lines for `cis` (those of `class`, if given).
    fn plan_lines(
        &self,
        cis: &[CiId],
        class: Option<&str>,
        days: i64,
        now_ms: i64,
        rfcs: &[Rfc],
        metrics: &MetricSettings,
    ) -> Result<Vec<PlanLine>, MetricError> {
        let store = MetricStore::new(self.store(), metrics);
        let from_ms = now_ms - days * DAY_MS;
        let mut lines = Vec::new();
        for &ci in cis {
            let Some(record) = self.ci(ci)? else { continue };
            if class.is_some_and(|c| c != record.class) {
                continue;
            }
            let assessed =
                self.assess_ci(&store, &record, (days * DAY_MS, Seasonal::Always), now_ms)?;
            let names: Vec<&str> = assessed.iter().map(|a| a.finding.series.as_str()).collect();
            let mut fives_of =
                store.points_of(ci, &names, Tier::FiveMinute, from_ms, now_ms + 1)?;
            for a in &assessed {
                let (found, t, hourly, name) =
                    (&a.finding, &a.threshold, &a.hourly, &a.finding.series);
                let fives = fives_of.remove(name).unwrap_or_default();
                let (p95, p99, peak) = peaks(&fives);
                let recent = if hourly.len() < SHORT_HISTORY_HOURS {
                    fives.iter().map(|p| (p.at_ms, p.mean)).collect()
                } else {
                    Vec::new()
                };
                let forecast = found.forecast.clone();
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
                    trend_per_day: forecast.trend_per_day,
                    crossing: found.crossing,
                    linear_rmse: forecast.linear_rmse,
                    season_hours: forecast.season_hours,
                    seasonal_rmse: forecast.seasonal_rmse,
                    seasonal_crossing: forecast.seasonal_crossing,
                    seasonal_forecast: forecast.seasonal_forecast,
                    stale_since_ms: found.stale_since_ms,
                    hourly: hourly.iter().map(|p| (p.at_ms, p.mean)).collect(),
                    recent,
                    pending_changes: Vec::new(),
                });
                let line = lines.last_mut().expect("just pushed");
                line.pending_changes = effects(line, &record.attributes, rfcs, now_ms);
            }
        }
        Ok(lines)
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
    use crate::cmdb::history::Actor;
    use crate::cmdb::Role;
    use crate::control::policy::Policy;
    use crate::reconcile::Report;
    use crate::test_support::{new_ci, Fixture, NOON};
    use fathom_shared::wire::{FilesystemUse, Metrics};
    use fathom_support::time::MINUTE_MS;

    /// A service `shop` depending on `host`, made by a person at `at`.
    fn shop_depending_on(f: &Fixture, host: CiId, at: i64) -> CiId {
        let person = Actor::Operator {
            name: "cp".into(),
            role: Role::ConfigurationManager,
        };
        let new = new_ci("service", "shop", &[]);
        let shop = f.cmdb.create_ci(&person, &new, "t", at).unwrap().id;
        f.cmdb
            .relate(&person, shop, RelationKind::DependsOn, host, true, "t", at)
            .unwrap();
        shop
    }

    /// A filesystem unmounted: its series stops, and soon leaves the plan
    /// and the threshold checks, marked stale with its last time meanwhile.
    #[test]
    fn a_series_that_stopped_is_stale_then_leaves_the_plan() {
        let mut f = Fixture::with_policy(Policy::builtin());
        let host = f.report(&[], NOON);
        let settings = MetricSettings::default();
        let fs = |mount: &str| FilesystemUse {
            mount_point: mount.into(),
            used_bytes: 50_000_000_000,
            total_bytes: 100_000_000_000,
            ..FilesystemUse::default()
        };
        let mut t = NOON;
        let unmounted_at = NOON + 3 * 3_600_000;
        let fold = |f: &Fixture, t: i64| {
            let store = MetricStore::new(f.cmdb.store(), &settings);
            while store.fold(1000, t).unwrap().entries > 0 {}
            let mut from = Vec::new();
            while let (Some(next), _) = store.roll_up(&from, 100, t).unwrap() {
                from = next;
            }
        };
        let plan_at = |f: &Fixture, t: i64| {
            fold(f, t);
            f.cmdb.capacity_plan(&Scope::All, 1, t, &settings).unwrap()
        };
        while t < NOON + 30 * 3_600_000 {
            let mut filesystems = vec![fs("/")];
            if t < unmounted_at {
                filesystems.push(fs("/mnt/backup"));
            }
            let m = Metrics {
                observed_at_ms: t,
                filesystems,
                ..Metrics::default()
            };
            f.apply(Report::Metrics(m), t);
            t += 5 * MINUTE_MS;
            if t == unmounted_at + 10 * MINUTE_MS {
                let plan = plan_at(&f, t);
                let line = plan
                    .lines
                    .iter()
                    .find(|l| l.series == "fs.used_pct:/mnt/backup");
                assert_eq!(
                    line.expect("in the plan").stale_since_ms,
                    None,
                    "not stale yet"
                );
            }
            if t == unmounted_at + 30 * MINUTE_MS {
                let plan = plan_at(&f, t);
                let line = plan
                    .lines
                    .iter()
                    .find(|l| l.series == "fs.used_pct:/mnt/backup");
                let line = line.expect("still in the plan, stale");
                assert_eq!(
                    line.stale_since_ms,
                    Some(unmounted_at - 5 * MINUTE_MS),
                    "{line:?}"
                );
                assert!((line.current - 50.0).abs() < 0.1);
            }
        }
        let plan = plan_at(&f, t);
        let series: Vec<&str> = plan.lines.iter().map(|l| l.series.as_str()).collect();
        assert!(series.contains(&"fs.used_pct:/"), "{series:?}");
        assert!(
            !series.iter().any(|s| s.contains("/mnt/backup")),
            "{series:?}"
        );
        let _ = host;
    }

    /// 14 days of /var filling 1 %/day from 50 %, with a daily swing of
    /// ±5 % in memory; then the plan.
    #[test]
    fn the_plan_has_trends_peaks_seasonality_and_a_services_tightest_member() {
        let mut f = Fixture::with_policy(Policy::builtin());
        // The host's authorized memory: 1000 bytes (what the metrics say).
        let mut inv = crate::test_support::inventory(&[], NOON);
        inv.hardware = Some(fathom_shared::wire::Hardware {
            memory_bytes: 1000,
            swap_bytes: 1000,
            cpu_threads: 4,
            ..Default::default()
        });
        let host = f.send(inv);
        let settings = MetricSettings::default();
        let mut t = NOON;
        for i in 0..(14 * 24 * 6) {
            let day = i as f64 / (24.0 * 6.0);
            let swing = (day * std::f64::consts::TAU).sin() * 5.0;
            let m = Metrics {
                observed_at_ms: t,
                cpu_utilisation_pct: 40.0,
                memory_total_bytes: 1000,
                memory_used_bytes: (600.0 + swing * 10.0) as u64,
                // Swap: slow growth (0.5 %/day) under a wide daily swing
                // (±20 %).
                swap_total_bytes: 1000,
                swap_used_bytes: ((43.0 + 0.5 * day + swing * 4.0) * 10.0) as u64,
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
        let shop = shop_depending_on(&f, host, t);

        // An approved RFC doubles the memory next week.
        let rfc = f.rfc(
            host,
            "hardware.memory_bytes: 2000",
            crate::cmdb::rfc::Window {
                start_ms: t + 7 * DAY_MS,
                end_ms: t + 8 * DAY_MS,
            },
        );
        // Others add swap and CPU threads.
        let window = || crate::cmdb::rfc::Window {
            start_ms: t + 2 * DAY_MS,
            end_ms: t + 3 * DAY_MS,
        };
        let more_swap = f.rfc(host, "hardware.swap_bytes: 4000", window());
        let more_threads = f.rfc(host, "hardware.cpu_threads: 8", window());
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
        assert_eq!(memory.seasonal_crossing, None, "a swing that stays under");
        // Swap at 50 % on average, growing 0.5 %/day: the line through
        // the middle reaches 80 % in 60 days, past the 30-day horizon; the
        // daily peaks (70 %) get there in about 20.
        let swap = plan
            .lines
            .iter()
            .find(|l| l.series == "swap.used_pct")
            .unwrap();
        assert_eq!(swap.crossing, None);
        let seasonal = swap.seasonal_crossing.unwrap_or_else(|| panic!("{swap:?}"));
        let days = (seasonal - t) as f64 / DAY_MS as f64;
        assert!((17.0..23.0).contains(&days), "{days}");
        // With the RFC, the same load uses half as much.
        let [effect] = &memory.pending_changes[..] else {
            panic!("{:?}", memory.pending_changes)
        };
        assert_eq!((effect.rfc, effect.from, effect.to), (rfc, 1000.0, 2000.0));
        assert_eq!(effect.window_start_ms, Some(t + 7 * DAY_MS));
        assert!((effect.current_after - memory.current / 2.0).abs() < 1e-9);
        assert!(var.pending_changes.is_empty(), "no RFC is about /var");
        let [effect] = &swap.pending_changes[..] else {
            panic!("{:?}", swap.pending_changes)
        };
        assert_eq!((effect.rfc, effect.to), (more_swap, 4000.0));
        assert!((effect.current_after - swap.current / 4.0).abs() < 1e-9);
        let cpu = plan
            .lines
            .iter()
            .find(|l| l.series == "cpu.utilisation_pct")
            .unwrap();
        let [effect] = &cpu.pending_changes[..] else {
            panic!("{:?}", cpu.pending_changes)
        };
        assert_eq!(
            (effect.rfc, effect.from, effect.to),
            (more_threads, 4.0, 8.0)
        );
        assert!((effect.current_after - 20.0).abs() < 1e-6, "{effect:?}");
        // The tightest member series is /var (64 of 90 against 60 of 97).
        let service = plan.service.unwrap();
        assert_eq!(service.members, 1);
        assert_eq!(service.tightest.unwrap().1, "fs.used_pct:/var");
        // Swap's peaks reach critical (about 20 days) before /var's trend
        // (26): the soonest crossing is swap's.
        let (_, series, soonest) = service.soonest_crossing.unwrap();
        assert_eq!((series.as_str(), soonest), ("swap.used_pct", seasonal));
        assert!(soonest < at);
        // Its forecast, hour by hour to the horizon, is what crosses.
        let first_critical = swap
            .seasonal_forecast
            .iter()
            .find(|(_, v)| *v >= swap.critical)
            .unwrap();
        assert_eq!(first_critical.0, seasonal);
        assert!(swap.seasonal_forecast.len() >= 29 * 24, "to the horizon");
        assert!(
            var.seasonal_forecast.is_empty(),
            "the line fits /var better"
        );
        // The service hour by hour: the highest share of critical among
        // its members' series.
        assert_eq!(service.utilisation.len(), 14 * 24);
        for &(hour, share) in &service.utilisation {
            let highest = plan
                .lines
                .iter()
                .filter_map(|l| {
                    let mean = l.hourly.iter().find(|p| p.0 == hour)?.1;
                    Some(mean / l.critical * 100.0)
                })
                .fold(f64::MIN, f64::max);
            assert_eq!(share, highest);
        }
        // A class scope leaves the others out.
        let none = f
            .cmdb
            .capacity_plan(&Scope::Class("database".into()), 14, t, &settings)
            .unwrap();
        assert!(none.lines.is_empty());
    }

    #[test]
    fn series_are_queried_across_a_class_or_a_service() {
        let mut f = Fixture::with_policy(Policy::builtin());
        let host = f.report(&[], NOON);
        let class = f.cmdb.ci(host).unwrap().unwrap().class;
        let settings = MetricSettings::default();
        let mut t = NOON;
        for i in 0..30 {
            let m = Metrics {
                observed_at_ms: t,
                memory_total_bytes: 1000,
                memory_used_bytes: 500 + i,
                filesystems: ["/", "/var"]
                    .map(|mount| FilesystemUse {
                        mount_point: mount.into(),
                        used_bytes: 10 + i,
                        total_bytes: 100,
                        ..FilesystemUse::default()
                    })
                    .to_vec(),
                ..Metrics::default()
            };
            f.apply(Report::Metrics(m), t);
            t += MINUTE_MS;
        }
        let store = MetricStore::new(f.cmdb.store(), &settings);
        while store.fold(1000, t).unwrap().entries > 0 {}
        let shop = shop_depending_on(&f, host, t);
        let span = (Tier::Raw, NOON, t);
        let query = |scope: &Scope, pattern: &str, limit: usize| {
            f.cmdb
                .query_series(scope, pattern, span, limit, &settings)
                .unwrap()
        };
        let by_class = query(&Scope::Class(class.clone()), "fs.used_pct:*", 100).unwrap();
        let names: Vec<&str> = by_class.iter().map(|s| s.series.as_str()).collect();
        assert_eq!(names, ["fs.used_pct:/", "fs.used_pct:/var"]);
        assert!(by_class
            .iter()
            .all(|s| s.ci == host && s.points.len() == 30));
        assert_eq!(by_class[1].points[29].mean, 39.0);
        assert_eq!(by_class[0].ci_name, "web-1");

        let by_service = query(&Scope::Service(shop), "memory.used_pct", 100).unwrap();
        assert_eq!(by_service.len(), 1);
        assert_eq!(by_service[0].points[0].mean, 50.0);
        assert!(query(&Scope::Class("database".into()), "memory.*", 100)
            .unwrap()
            .is_empty());
        // Two match memory.*; a limit of one says so.
        assert_eq!(query(&Scope::Service(shop), "memory.*", 1), Err(2));
    }
}
