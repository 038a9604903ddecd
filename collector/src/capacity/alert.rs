//! Capacity incidents: a CI's series over a policy threshold, now or by
//! forecast, raises one incident per CI and series, kept up to date and
//! resolved when the series is back under its warning level.
//!
//! [`Cmdb::check_capacity`] looks at every series a threshold applies to
//! (`control::policy::CapacityPolicy`):
//!
//! - **now**: the mean of the last 15 minutes (5-minute buckets) against
//!   the warning and critical levels;
//! - **forecast**: a least-squares trend over the last 14 days of hourly
//!   means (24 at least) reaching the critical level within the policy's
//!   horizon, reported with its range ("in 12 days ± 3"); or, for a
//!   series with a daily or weekly pattern (an additive Holt-Winters with a
//!   24-hour season, or a 168-hour one given two weeks of means, fits its
//!   hourly means better than the line), that model's forecast reaching
//!   critical within the horizon: the peaks of a swing cross before the
//!   trend through its middle does.
//!
//! A series over a level, or forecast to cross, with no open alert gets an
//! incident (category `capacity`, impact the CI's criticality, urgency high
//! when critical, medium otherwise) and an alert record; a worse level
//! later adds a note; back under warning with no forecast crossing, the
//! incident resolves and the alert goes. The alert records are what keeps
//! it to one incident per CI and series.

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use crate::capacity::forecast::{HoltWinters, Linear};
use crate::capacity::rollup::Tier;
use crate::capacity::series::Unit;
use crate::capacity::store::{MetricError, MetricSettings, MetricStore, Point};
use crate::cmdb::ci::CiRecord;
use crate::cmdb::history::Actor;
use crate::cmdb::incident::put_incident;
use crate::cmdb::incident::Incident;
use crate::cmdb::{ci_key, encode, next_id, tx_get, Cmdb, Counter};
use crate::control::policy::{Level, Threshold};
use crate::store::{Store, StoreError, Table, TransactionError, Tx, TxAbort};
use fathom_api::ids::IncidentId;
use fathom_support::time::{DAY_MS, HOUR_MS, MINUTE_MS};

/// How bad a series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Under its levels now, but forecast to reach critical within the
    /// horizon.
    Forecast,
    Warning,
    Critical,
}

/// An open capacity alert, under `ci ‖ series`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityAlert {
    pub ci: CiId,
    pub series: String,
    pub incident: IncidentId,
    pub severity: Severity,
    pub since_ms: i64,
}

/// What one look at a series found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub ci: CiId,
    pub series: String,
    pub current: f64,
    pub severity: Option<Severity>,
    /// When the trend reaches critical within the horizon: (at,
    /// earliest, latest), Unix ms.
    pub crossing: Option<(i64, i64, Option<i64>)>,
    pub forecast: Forecast,
    /// When its samples stopped, if they did more than the stale time ago:
    /// `current` is then its last value, and no threshold applies.
    pub stale_since_ms: Option<i64>,
}

/// The two models fitted to a series' hourly means.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Forecast {
    /// The straight line's slope, per day, and its one-step error.
    pub trend_per_day: Option<f64>,
    pub linear_rmse: Option<f64>,
    /// The season of the better-fitting Holt-Winters, in hours (24 daily,
    /// 168 weekly), and its one-step error, when one was fitted.
    pub season_hours: Option<usize>,
    pub seasonal_rmse: Option<f64>,
    /// When that model, fitting better than the line, first reaches
    /// critical within the horizon (Unix ms).
    pub seasonal_crossing: Option<i64>,
    /// That model's forecast, hourly to the horizon, where it fits better
    /// than the line (for charts).
    pub seasonal_forecast: Vec<(i64, f64)>,
}

/// The seasons tried, in hours: a day and a week (each needs two whole
/// seasons of hourly means).
const SEASONS: [usize; 2] = [24, 168];

/// How long a series must have been measured before a threshold on it
/// raises anything: one sample of a busy minute is no capacity problem.
pub const MIN_DATA_MS: i64 = 15 * MINUTE_MS;

/// When to fit the seasonal model, the costlier of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seasonal {
    /// Always (the capacity plan shows both models' errors).
    Always,
    /// Only where it could cross: the hourly peak, plus the line's growth
    /// over the horizon, plus three of the line's errors, reaches critical
    /// (the check every few minutes, over every CI).
    IfItCouldCross,
}

/// A series assessed against its threshold (`Cmdb::assess_ci`).
#[derive(Debug, Clone)]
pub(crate) struct Assessed {
    pub unit: Unit,
    pub threshold: Threshold,
    pub finding: Finding,
    /// The hourly means the trend was fitted to.
    pub hourly: Vec<Point>,
}

/// What changed in one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertChange {
    Raised(CiId, String, IncidentId),
    Worse(CiId, String, IncidentId),
    Resolved(CiId, String, IncidentId),
}

fn alert_key(ci: CiId, series: &str) -> Vec<u8> {
    let mut k = ci_key(ci).to_vec();
    k.extend_from_slice(series.as_bytes());
    k
}

/// The count-weighted mean of points.
fn mean(points: &[Point]) -> Option<f64> {
    let n: i64 = points.iter().map(|p| p.count).sum();
    (n > 0).then(|| points.iter().map(|p| p.mean * p.count as f64).sum::<f64>() / n as f64)
}

/// What a look at a series is given: its recent 5-minute points and its
/// hourly means, its threshold and the policy's horizon.
#[derive(Debug, Clone, Copy)]
pub struct Look<'a> {
    pub recent: &'a [Point],
    pub hourly: &'a [Point],
    pub threshold: &'a Threshold,
    pub horizon_ms: i64,
    pub seasonal: Seasonal,
}

/// A series against its threshold at `now_ms`.
pub fn assess(ci: CiId, series: &str, look: &Look<'_>, now_ms: i64) -> Option<Finding> {
    let Look {
        recent,
        hourly,
        threshold,
        horizon_ms,
        seasonal,
    } = *look;
    let current = mean(recent)?;
    let days: Vec<(f64, f64)> = hourly
        .iter()
        .map(|p| (p.at_ms as f64 / DAY_MS as f64, p.mean))
        .collect();
    let linear = (hourly.len() >= 24).then(|| Linear::fit(&days)).flatten();
    let crossing = linear
        .and_then(|l| l.time_to(threshold.critical, now_ms as f64 / DAY_MS as f64))
        .map(|c| {
            let ms = |d: f64| (d * DAY_MS as f64) as i64;
            (ms(c.at), ms(c.earliest), c.latest.map(ms))
        })
        .filter(|c| c.0 <= now_ms + horizon_ms);
    let mut forecast = Forecast {
        trend_per_day: linear.map(|l| l.slope),
        linear_rmse: linear.map(|l| l.rmse),
        ..Forecast::default()
    };
    let could_cross = |line: &Linear| {
        let peak = hourly.iter().map(|p| p.mean).fold(f64::MIN, f64::max);
        let growth = line.slope.max(0.0) * horizon_ms as f64 / DAY_MS as f64;
        peak + growth + 3.0 * line.rmse >= threshold.critical
    };
    if let (Some(line), Some(last)) = (linear, hourly.last()) {
        if seasonal == Seasonal::Always || could_cross(&line) {
            let means: Vec<f64> = hourly.iter().map(|p| p.mean).collect();
            let best = SEASONS
                .into_iter()
                .filter_map(|period| HoltWinters::fit(&means, period))
                .min_by(|a, b| a.rmse.total_cmp(&b.rmse));
            if let Some(hw) = best {
                forecast.season_hours = Some(hw.period);
                forecast.seasonal_rmse = Some(hw.rmse);
                // Hours from the last mean to the horizon's end.
                let hours = ((now_ms + horizon_ms - last.at_ms) / HOUR_MS).max(0) as usize;
                if hw.rmse < line.rmse {
                    forecast.seasonal_forecast = hw
                        .forecast(hours)
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (last.at_ms + (i as i64 + 1) * HOUR_MS, v))
                        .collect();
                    forecast.seasonal_crossing = forecast
                        .seasonal_forecast
                        .iter()
                        .find(|(_, v)| *v >= threshold.critical)
                        .map(|(at, _)| *at);
                }
            }
        }
    }
    let severity = if current >= threshold.critical {
        Some(Severity::Critical)
    } else if current >= threshold.warning {
        Some(Severity::Warning)
    } else {
        (crossing.is_some() || forecast.seasonal_crossing.is_some()).then_some(Severity::Forecast)
    };
    Some(Finding {
        ci,
        series: series.to_owned(),
        current,
        severity,
        crossing,
        forecast,
        stale_since_ms: None,
    })
}

/// `daily` or `weekly`.
pub fn season_name(hours: Option<usize>) -> &'static str {
    match hours {
        Some(168) => "weekly",
        _ => "daily",
    }
}

fn describe(f: &Finding, unit: Unit, t: &Threshold, now_ms: i64) -> String {
    let value = |v: f64| format!("{:.1}{}", v, unit.symbol());
    let mut text = format!(
        "{} is at {} (mean of the last 15 minutes; warning {}, critical {}).",
        f.series,
        value(f.current),
        value(t.warning),
        value(t.critical)
    );
    let days = |ms: i64| (ms - now_ms) as f64 / DAY_MS as f64;
    if let Some((at, earliest, latest)) = f.crossing {
        let spread = latest.map_or_else(
            || format!("{:.0} days at the soonest", days(earliest)),
            |l| format!("± {:.0}", (days(l) - days(earliest)) / 2.0),
        );
        text.push_str(&format!(
            " The 14-day trend reaches critical in {:.0} days ({spread}).",
            days(at)
        ));
    }
    if let (Some(at), Some(rmse)) = (f.forecast.seasonal_crossing, f.forecast.seasonal_rmse) {
        text.push_str(&format!(
            " Its {} pattern (Holt-Winters, error ± {}) reaches critical at its peaks in \
             {:.1} days.",
            season_name(f.forecast.season_hours),
            value(rmse),
            days(at)
        ));
    }
    text
}

impl<S: Store> Cmdb<S> {
    /// Checks every series the policy has a threshold for, at `now_ms`,
    /// and raises, updates or resolves capacity incidents.
    pub fn check_capacity(
        &self,
        now_ms: i64,
        metrics: &MetricSettings,
    ) -> Result<Vec<AlertChange>, MetricError> {
        let policy = &self.policy().capacity;
        if policy.thresholds.is_empty() {
            return Ok(Vec::new());
        }
        let store = MetricStore::new(self.store(), metrics);
        let mut findings: Vec<(Finding, Unit, Threshold)> = Vec::new();
        for ci in store.cis()? {
            let Some(record) = self.ci(ci)? else { continue };
            let look = (14 * DAY_MS, Seasonal::IfItCouldCross);
            for a in self.assess_ci(&store, &record, look, now_ms)? {
                findings.push((a.finding, a.unit, a.threshold));
            }
        }
        // Alerts on series no longer assessed (stopped for longer than the
        // retire time, or their CI gone) resolve below.
        let assessed: std::collections::BTreeSet<(CiId, &str)> = findings
            .iter()
            .map(|(f, ..)| (f.ci, f.series.as_str()))
            .collect();
        let orphans: Vec<CapacityAlert> = self
            .capacity_alerts()?
            .into_iter()
            .filter(|a| !assessed.contains(&(a.ci, a.series.as_str())))
            .collect();
        let retire_hours = metrics.retire_after_ms / 3_600_000;
        let result = self.store().transaction_on::<Vec<AlertChange>, StoreError>(
            &[
                Table::CapacityAlerts,
                Table::Cis,
                Table::Incidents,
                Table::Meta,
                Table::Outbox,
            ],
            |tx| {
                let mut changes = Vec::new();
                for orphan in &orphans {
                    let key = alert_key(orphan.ci, &orphan.series);
                    if tx_get::<CapacityAlert, _>(tx, Table::CapacityAlerts, &key)?.is_none() {
                        continue;
                    }
                    if let Some(mut i) =
                        tx_get::<Incident, _>(tx, Table::Incidents, &orphan.incident.key())?
                    {
                        i.resolve_automatically(
                            now_ms,
                            format!(
                                "{} has had no samples for over {retire_hours} h (unmounted, \
                                 removed or renamed); it is no longer watched",
                                orphan.series
                            ),
                        );
                        put_incident(tx, &i, "incident.updated", self.webhooks())?;
                    }
                    tx.remove(Table::CapacityAlerts, &key)?;
                    changes.push(AlertChange::Resolved(
                        orphan.ci,
                        orphan.series.clone(),
                        orphan.incident,
                    ));
                }
                for (f, unit, t) in &findings {
                    // A stopped series raises nothing and resolves nothing
                    // until it retires.
                    if f.stale_since_ms.is_some() {
                        continue;
                    }
                    let key = alert_key(f.ci, &f.series);
                    let alert: Option<CapacityAlert> = tx_get(tx, Table::CapacityAlerts, &key)?;
                    match (alert, f.severity) {
                        (None, None) => {}
                        (None, Some(severity)) => {
                            let id = self.raise_alert(tx, (f, *unit, t), severity, &key, now_ms)?;
                            changes.push(AlertChange::Raised(f.ci, f.series.clone(), id));
                        }
                        (Some(mut alert), Some(severity)) if severity > alert.severity => {
                            if let Some(mut i) =
                                tx_get::<Incident, _>(tx, Table::Incidents, &alert.incident.key())?
                            {
                                i.note(now_ms, &Actor::Collector, describe(f, *unit, t, now_ms));
                                put_incident(tx, &i, "incident.updated", self.webhooks())?;
                            }
                            alert.severity = severity;
                            tx.insert(Table::CapacityAlerts, &key, &encode(&alert))?;
                            changes.push(AlertChange::Worse(
                                f.ci,
                                f.series.clone(),
                                alert.incident,
                            ));
                        }
                        (Some(_), Some(_)) => {}
                        (Some(alert), None) => {
                            if let Some(mut i) =
                                tx_get::<Incident, _>(tx, Table::Incidents, &alert.incident.key())?
                            {
                                i.resolve_automatically(
                                    now_ms,
                                    format!(
                                        "Back under the warning level: {}",
                                        describe(f, *unit, t, now_ms)
                                    ),
                                );
                                put_incident(tx, &i, "incident.updated", self.webhooks())?;
                            }
                            tx.remove(Table::CapacityAlerts, &key)?;
                            changes.push(AlertChange::Resolved(
                                f.ci,
                                f.series.clone(),
                                alert.incident,
                            ));
                        }
                    }
                }
                Ok(changes)
            },
        );
        match result {
            Ok(changes) => Ok(changes),
            Err(TransactionError::Store(e) | TransactionError::Aborted(e)) => Err(e.into()),
        }
    }

    /// A new capacity alert: an incident (priority from the CI's
    /// criticality; urgency high when critical) and the alert record.
    fn raise_alert(
        &self,
        tx: &dyn Tx,
        (f, unit, t): (&Finding, Unit, &Threshold),
        severity: Severity,
        key: &[u8],
        now_ms: i64,
    ) -> Result<IncidentId, TxAbort<StoreError>> {
        let record: Option<CiRecord> = tx_get(tx, Table::Cis, &ci_key(f.ci))?;
        let (name, criticality) = record
            .map(|c| (c.name, c.criticality))
            .unwrap_or_else(|| (f.ci.to_string(), Level::Medium));
        let id = IncidentId::from_u64(next_id(tx, Counter::Incident)?);
        let what = match severity {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Forecast => "forecast to reach critical",
        };
        let mut incident = Incident::new(
            id,
            format!("Capacity: {} on {name} {what}", f.series),
            describe(f, unit, t, now_ms),
            "capacity",
            criticality,
            if severity == Severity::Critical {
                Level::High
            } else {
                Level::Medium
            },
            now_ms,
            Actor::Collector,
        );
        incident.cis = vec![f.ci];
        incident.due_at_ms = self.policy().resolution_due(incident.priority, now_ms);
        put_incident(tx, &incident, "incident.created", self.webhooks())?;
        let alert = CapacityAlert {
            ci: f.ci,
            series: f.series.clone(),
            incident: id,
            severity,
            since_ms: now_ms,
        };
        tx.insert(Table::CapacityAlerts, key, &encode(&alert))?;
        Ok(id)
    }

    /// A CI's series that a threshold applies to, each assessed at `now_ms`
    /// with its forecasts over the `history_ms` before, with its hourly
    /// means.
    pub(crate) fn assess_ci(
        &self,
        store: &MetricStore<'_, S>,
        record: &CiRecord,
        (history_ms, seasonal): (i64, Seasonal),
        now_ms: i64,
    ) -> Result<Vec<Assessed>, MetricError> {
        let policy = &self.policy().capacity;
        let ci = record.id;
        let thresholded: Vec<(String, Unit, &Threshold, i64)> = store
            .series_of(ci)?
            .into_iter()
            .filter_map(|(name, meta)| {
                let t = policy.threshold_for(ci, &record.class, &name)?;
                Some((name, meta.unit, t, meta.first_ms))
            })
            .collect();
        let names: Vec<&str> = thresholded.iter().map(|(n, ..)| n.as_str()).collect();
        let settings = store.settings();
        // Each of the CI's blocks decoded once for all its series: the last
        // quarter of an hour, and only for series silent in it, back far
        // enough to find where they stopped.
        let mut recent = store.points_of(
            ci,
            &names,
            Tier::FiveMinute,
            now_ms - 15 * MINUTE_MS,
            now_ms + 1,
        )?;
        let silent: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| recent.get(*n).is_none_or(Vec::is_empty))
            .collect();
        if !silent.is_empty() {
            let back = store.points_of(
                ci,
                &silent,
                Tier::FiveMinute,
                now_ms - settings.retire_after_ms.max(15 * MINUTE_MS),
                now_ms + 1,
            )?;
            recent.extend(back);
        }
        let mut hourly_of =
            store.points_of(ci, &names, Tier::Hour, now_ms - history_ms, now_ms + 1)?;
        let mut out = Vec::new();
        for (name, unit, t, first_ms) in thresholded {
            let points = recent.remove(&name).unwrap_or_default();
            let hourly = hourly_of.remove(&name).unwrap_or_default();
            // The last 15 minutes give the current value; without them, the
            // last bucket, marked stale once the stale time has passed.
            let Some(last) = points.last() else { continue };
            let last_sample_ms = last.at_ms + 5 * MINUTE_MS;
            let fresh: Vec<Point> = points
                .iter()
                .filter(|p| p.at_ms >= now_ms - 15 * MINUTE_MS)
                .cloned()
                .collect();
            let stale = now_ms - last_sample_ms > settings.stale_after_ms;
            let current = if stale || fresh.is_empty() {
                std::slice::from_ref(last)
            } else {
                &fresh[..]
            };
            let look = Look {
                recent: current,
                hourly: &hourly,
                threshold: t,
                horizon_ms: policy.horizon_ms,
                seasonal,
            };
            if let Some(mut finding) = assess(ci, &name, &look, now_ms) {
                if stale {
                    finding.stale_since_ms = Some(last.at_ms);
                    finding.severity = None;
                }
                // A threshold needs a quarter of an hour of data.
                if now_ms - first_ms < MIN_DATA_MS {
                    finding.severity = None;
                }
                out.push(Assessed {
                    unit,
                    threshold: t.clone(),
                    finding,
                    hourly,
                });
            }
        }
        Ok(out)
    }

    /// Open capacity alerts.
    pub fn capacity_alerts(&self) -> Result<Vec<CapacityAlert>, StoreError> {
        self.scan(Table::CapacityAlerts, b"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdb::incident::IncidentStatus;
    use crate::control::policy::Policy;
    use crate::reconcile::Report;
    use crate::test_support::{Fixture, NOON};
    use fathom_shared::wire::{FilesystemUse, Metrics};

    /// A report at `at` with /var `pct` percent full.
    fn report(f: &mut Fixture, at: i64, pct: f64) {
        let m = Metrics {
            observed_at_ms: at,
            memory_total_bytes: 100,
            memory_used_bytes: 10,
            filesystems: vec![FilesystemUse {
                mount_point: "/var".into(),
                used_bytes: (pct * 1e9) as u64,
                total_bytes: 100_000_000_000,
                ..FilesystemUse::default()
            }],
            ..Metrics::default()
        };
        f.apply(Report::Metrics(m), at);
    }

    fn fold(f: &Fixture, now: i64) {
        let settings = MetricSettings::default();
        let store = MetricStore::new(f.cmdb.store(), &settings);
        while store.fold(1000, now).unwrap().entries > 0 {}
        let mut from = Vec::new();
        while let (Some(next), _) = store.roll_up(&from, 100, now).unwrap() {
            from = next;
        }
    }

    fn check(f: &Fixture, now: i64) -> Vec<AlertChange> {
        f.cmdb
            .check_capacity(now, &MetricSettings::default())
            .unwrap()
    }

    /// Two weeks of reports every 10 minutes, /var at `pct(hours)`, folded
    /// and rolled up as they come; the time after the last.
    fn fortnight(f: &mut Fixture, pct: impl Fn(f64) -> f64) -> i64 {
        let mut t = NOON;
        for i in 0..(14 * 24 * 6) {
            report(f, t, pct(i as f64 / 6.0));
            t += 10 * MINUTE_MS;
            if i % 144 == 0 {
                fold(f, t);
            }
        }
        fold(f, t);
        t
    }

    /// The one incident a check at `t` raises, which must be about /var.
    fn raised_on_var(f: &Fixture, t: i64) -> IncidentId {
        let raised = check(f, t);
        let [AlertChange::Raised(_, series, id)] = &raised[..] else {
            panic!("{raised:?}")
        };
        assert_eq!(series, "fs.used_pct:/var");
        *id
    }

    #[test]
    fn a_threshold_needs_data_and_a_stopped_series_retires_its_alert() {
        let mut f = Fixture::with_policy(Policy::builtin());
        f.report(&[], NOON);
        // /var at 95 % on a CI minutes old: too little data to raise.
        let mut t = NOON;
        while t <= NOON + 10 * MINUTE_MS {
            report(&mut f, t, 95.0);
            t += MINUTE_MS;
        }
        fold(&f, t);
        assert_eq!(check(&f, t), vec![], "ten minutes of data");
        while t <= NOON + 20 * MINUTE_MS {
            report(&mut f, t, 95.0);
            t += MINUTE_MS;
        }
        fold(&f, t);
        let id = raised_on_var(&f, t);
        // Unmounted: while stale, the alert stays as it was ...
        let stopped = t;
        fold(&f, stopped + 30 * MINUTE_MS);
        assert_eq!(check(&f, stopped + 30 * MINUTE_MS), vec![]);
        assert!(f.cmdb.incident(id).unwrap().unwrap().status.is_open());
        // ... and once retired, it resolves, saying why.
        let later = stopped + 25 * 3_600_000;
        fold(&f, later);
        let resolved = check(&f, later);
        assert!(
            matches!(&resolved[..], [AlertChange::Resolved(_, s, i)] if s == "fs.used_pct:/var" && *i == id),
            "{resolved:?}"
        );
        let incident = f.cmdb.incident(id).unwrap().unwrap();
        assert_eq!(incident.status, IncidentStatus::Resolved);
        assert!(
            incident.resolution.unwrap().contains("no samples"),
            "resolution names why"
        );
    }

    #[test]
    fn a_full_filesystem_raises_one_incident_until_it_is_freed() {
        let mut f = Fixture::with_policy(Policy::builtin());
        let ci = f.report(&[], NOON);
        let mut t = NOON;
        for _ in 0..15 {
            report(&mut f, t, 85.0);
            t += MINUTE_MS;
        }
        fold(&f, t);
        // 85 %: over the shipped policy's warning (80), under critical (90).
        let raised = check(&f, t);
        let [AlertChange::Raised(on, series, id)] = &raised[..] else {
            panic!("{raised:?}")
        };
        assert_eq!((*on, series.as_str()), (ci, "fs.used_pct:/var"));
        let incident = f.cmdb.incident(*id).unwrap().unwrap();
        assert_eq!(incident.category, "capacity");
        assert_eq!(incident.urgency, Level::Medium);
        assert_eq!(incident.cis, vec![ci]);
        assert!(incident.symptom.contains("85.0%"), "{}", incident.symptom);
        // Memory at 10 % raises nothing; the same level again, nothing new.
        assert_eq!(check(&f, t), vec![]);

        // Worse: critical, a note on the same incident.
        for _ in 0..15 {
            report(&mut f, t, 95.0);
            t += MINUTE_MS;
        }
        fold(&f, t);
        assert_eq!(
            check(&f, t),
            vec![AlertChange::Worse(ci, series.clone(), *id)]
        );
        assert_eq!(f.cmdb.list_incidents().unwrap().len(), 1);

        // Freed: resolved, the alert gone.
        for _ in 0..15 {
            report(&mut f, t, 40.0);
            t += MINUTE_MS;
        }
        fold(&f, t);
        assert_eq!(
            check(&f, t),
            vec![AlertChange::Resolved(ci, series.clone(), *id)]
        );
        let incident = f.cmdb.incident(*id).unwrap().unwrap();
        assert_eq!(incident.status, IncidentStatus::Resolved);
        assert!(f.cmdb.capacity_alerts().unwrap().is_empty());
    }

    #[test]
    fn a_filesystem_filling_steadily_is_forecast_before_it_crosses() {
        let mut f = Fixture::with_policy(Policy::builtin());
        f.report(&[], NOON);
        // 14 days from 50 %, one point a day: 64 % now, 90 % in 26 days,
        // inside the shipped 30-day horizon.
        let t = fortnight(&mut f, |hours| 50.0 + hours / 24.0);
        let incident = f.cmdb.incident(raised_on_var(&f, t)).unwrap().unwrap();
        assert!(incident.title.contains("forecast"), "{}", incident.title);
        assert!(
            incident.symptom.contains("reaches critical in 26 days"),
            "{}",
            incident.symptom
        );
        let alert = &f.cmdb.capacity_alerts().unwrap()[0];
        assert_eq!(alert.severity, Severity::Forecast);
    }

    #[test]
    fn a_daily_swing_whose_peaks_will_cross_is_forecast_by_its_pattern() {
        let mut f = Fixture::with_policy(Policy::builtin());
        f.report(&[], NOON);
        // A mean of 50 % growing 0.3 a day, swinging ±30 over the day,
        // lowest at noon: the line through the middle reaches 90 in about
        // 120 days, past the 30-day horizon; the peaks (84 % now) in 19.
        let t = fortnight(&mut f, |hours| {
            50.0 + 0.3 * hours / 24.0 - 30.0 * (2.0 * std::f64::consts::PI * hours / 24.0).cos()
        });
        let id = raised_on_var(&f, t);
        assert_eq!(
            f.cmdb.capacity_alerts().unwrap()[0].severity,
            Severity::Forecast
        );
        let symptom = f.cmdb.incident(id).unwrap().unwrap().symptom;
        assert!(!symptom.contains("14-day trend"), "{symptom}");
        let days: f64 = symptom
            .split("reaches critical at its peaks in ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("{symptom}"));
        assert!((17.0..=21.0).contains(&days), "{days}: {symptom}");
    }

    #[test]
    fn a_weekly_pattern_is_told_from_a_daily_one() {
        // Four weeks of hourly means: office hours at 70 % on weekdays,
        // 30 % at night and all weekend (2026-11-02 is a Monday).
        let monday = 1_793_577_600_000;
        let hourly: Vec<Point> = (0..28 * 24)
            .map(|h: i64| {
                let (day, hour) = (h / 24 % 7, h % 24);
                let busy = day < 5 && (9..17).contains(&hour);
                let mean = if busy { 70.0 } else { 30.0 };
                Point {
                    at_ms: monday + h * HOUR_MS,
                    count: 60,
                    min: mean,
                    mean,
                    max: mean,
                    p95: mean,
                }
            })
            .collect();
        let threshold = Threshold {
            series: crate::control::pattern::Pattern::any(),
            class: crate::control::pattern::Pattern::any(),
            ci: None,
            warning: 80.0,
            critical: 90.0,
        };
        let look = Look {
            recent: &hourly[hourly.len() - 1..],
            hourly: &hourly,
            threshold: &threshold,
            horizon_ms: 30 * DAY_MS,
            seasonal: Seasonal::Always,
        };
        let now = monday + 28 * DAY_MS;
        let f = assess("ci-1".parse().unwrap(), "cpu.utilisation_pct", &look, now).unwrap();
        assert_eq!(f.forecast.season_hours, Some(168), "{f:?}");
        let (seasonal, linear) = (
            f.forecast.seasonal_rmse.unwrap(),
            f.forecast.linear_rmse.unwrap(),
        );
        assert!(seasonal * 5.0 < linear, "{seasonal} against {linear}");
        assert_eq!(f.forecast.seasonal_crossing, None, "peaks stay at 70");
    }
}
