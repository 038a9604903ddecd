//! Outages in the CMDB: each CI's watch (`availability::watch::Watch`),
//! the outages it finds, and the incidents unplanned ones raise.
//!
//! [`Cmdb::check_availability`] takes every CI's latest heartbeat (the
//! newest report of any agent on it), runs its watch, and in one
//! transaction writes what changed:
//!
//! - a CI going down opens an outage. The outage is **planned** when it
//!   starts inside the window of an approved RFC for that CI (approved with
//!   a window, scheduled or implemented), inside a **maintenance window**
//!   (below), or while the CI's status is `maintenance`: it is recorded
//!   with what planned it, and raises nothing. Otherwise it is
//!   **unplanned** and raises an incident
//!   (category `unplanned_outage`, impact the CI's criticality, urgency
//!   high), linked to the CI;
//! - the CI's next heartbeat closes the outage and resolves its incident,
//!   with the outage's duration in the resolution.
//!
//! Heartbeats are the reports of a CI's agents and the polls of a network
//! device. Inventories and polls also say when the CI booted (hosts'
//! `btime`, devices' sysUpTime): a later boot between two heartbeats is a
//! **reboot**, an outage from the last heartbeat before it to the boot,
//! planned or unplanned by the same rule (an unplanned one raises an
//! incident, resolved at once: it is recorded for investigation, there is
//! nothing left to restore).
//!
//! Maintenance windows are CI attributes, in the calendar syntax of agreed
//! service hours (`calendar::hours`): `maintenance.window` (rules
//! separated by `;`, e.g. `sun 02:00-04:00`), `maintenance.timezone`
//! (default the CI's `availability.timezone`, else UTC) and
//! `maintenance.exceptions` (`2026-12-27 closed`). A service's window
//! covers what it depends on, to any depth: set it once on the service.
//! The policy's `[[maintenance]]` windows cover CIs by class or by id.

use std::collections::BTreeMap;

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use super::watch::{Change, Expect, Watch};
use crate::cmdb::ci::{CiRecord, CiStatus};
use crate::cmdb::heartbeat::Heartbeat;
use crate::cmdb::history::Actor;
use crate::cmdb::incident::put_incident;
use crate::cmdb::incident::Incident;
use crate::cmdb::relationship::RelationKind;
use crate::cmdb::rfc::{Rfc, RfcStatus};
use crate::cmdb::{ci_key, encode, next_id, tx_get, AgentStatus, Cmdb, Counter};
use crate::control::policy::Level;
use crate::control::service;
use crate::store::{Store, StoreError, Table, TransactionError, Tx, TxAbort};
use fathom_api::ids::{IncidentId, RfcId};

/// How outages are found. `[availability]` in collector.toml.
#[derive(Debug, Clone, PartialEq)]
pub struct AvailabilitySettings {
    /// Reporting intervals missed before a CI is down.
    pub missed_intervals: u32,
    /// The interval assumed until a CI's own is learned.
    pub default_interval_ms: i64,
    /// How often the watches run.
    pub check_every: std::time::Duration,
}

impl Default for AvailabilitySettings {
    fn default() -> AvailabilitySettings {
        AvailabilitySettings {
            missed_intervals: 3,
            default_interval_ms: 60_000,
            check_every: std::time::Duration::from_secs(5),
        }
    }
}

/// Two readings of a boot time closer than this are the same boot
/// (sysUpTime is read during a poll that takes seconds).
const BOOT_SLACK_MS: i64 = 60_000;

/// A period a CI was down, under `ci ‖ start ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    pub ci: CiId,
    pub start_ms: i64,
    /// `None` while it lasts.
    pub end_ms: Option<i64>,
    /// Inside an approved RFC's window (`rfc`), a maintenance window, or
    /// while the CI was in status `maintenance`; `planned_by` says which.
    pub planned: bool,
    pub rfc: Option<RfcId>,
    #[serde(default)]
    pub planned_by: Option<String>,
    /// The incident an unplanned outage raised.
    pub incident: Option<IncidentId>,
    /// What showed it: `missed_heartbeats`, or `reboot` (a boot time later
    /// than the last known, between two heartbeats).
    pub cause: String,
}

fn outage_key(ci: CiId, start_ms: i64) -> Vec<u8> {
    let mut k = ci_key(ci).to_vec();
    k.extend_from_slice(&start_ms.to_be_bytes());
    k
}

const TABLES: [Table; 8] = [
    Table::Heartbeats,
    Table::Watches,
    Table::Outages,
    Table::Cis,
    Table::Incidents,
    Table::Meta,
    Table::Outbox,
    Table::Rfcs,
];

impl<S: Store> Cmdb<S> {
    /// Runs every CI's watch at `now_ms`; watching began at `floor_ms` (the
    /// collector's start). Returns the changes, which are written.
    pub fn check_availability(
        &self,
        now_ms: i64,
        floor_ms: i64,
        settings: &AvailabilitySettings,
    ) -> Result<Vec<(CiId, Change)>, StoreError> {
        // Per CI: its latest heartbeat, and the shortest interval any of
        // its agents states.
        let mut seen: BTreeMap<CiId, (i64, Option<i64>)> = BTreeMap::new();
        let mut note = |ci: CiId, at: i64, interval: Option<i64>| {
            let (t, stated) = seen.entry(ci).or_insert((at, interval));
            *t = (*t).max(at);
            *stated = match (*stated, interval) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        };
        for agent in self.list_agents()? {
            if let (Some(ci), AgentStatus::Active) = (agent.ci_id, agent.status) {
                note(ci, agent.last_seen_ms, agent.heartbeat_interval_ms);
            }
        }
        let mut boots: BTreeMap<CiId, i64> = BTreeMap::new();
        for (key, value) in self.store().scan_prefix(Table::Heartbeats, b"")? {
            let ci = crate::cmdb::ci_of_key(Table::Heartbeats, &key)?;
            let beat: Heartbeat = crate::cmdb::decode(Table::Heartbeats, &key, &value)?;
            note(ci, beat.seen_ms, beat.interval_ms);
            if let Some(boot) = beat.boot_ms {
                boots.insert(ci, boot);
            }
        }
        let mut changes = Vec::new();
        let mut watches = Vec::new();
        for (ci, (last, stated_ms)) in seen {
            let stored: Option<Watch> = self.get(Table::Watches, &ci_key(ci))?;
            let mut watch = stored.clone().unwrap_or_else(|| Watch::new(last));
            if let Some(c) = boots.get(&ci).and_then(|b| watch.boot(*b, BOOT_SLACK_MS)) {
                changes.push((ci, c));
            }
            let expect = Expect {
                stated_ms,
                default_ms: settings.default_interval_ms,
            };
            let change = watch.observe(last, now_ms, floor_ms, settings.missed_intervals, expect);
            if let Some(c) = change {
                changes.push((ci, c));
            }
            if stored.as_ref() != Some(&watch) {
                watches.push((ci, watch));
            }
        }
        if watches.is_empty() {
            return Ok(changes);
        }
        // What planned each outage (RFC windows read only when something
        // went down).
        let starts: Vec<(CiId, i64)> = changes
            .iter()
            .filter_map(|(ci, c)| match *c {
                Change::Down { start_ms } | Change::Rebooted { start_ms, .. } => {
                    Some((*ci, start_ms))
                }
                Change::Up { .. } => None,
            })
            .collect();
        let rfcs = if starts.is_empty() {
            Vec::new()
        } else {
            self.list_rfcs()?
        };
        let mut plans = BTreeMap::new();
        for (ci, start_ms) in starts {
            plans.insert((ci, start_ms), self.planned(ci, start_ms, &rfcs)?);
        }
        let result = self
            .store()
            .transaction_on::<(), StoreError>(&TABLES, |tx| {
                for (ci, watch) in &watches {
                    tx.insert(Table::Watches, &ci_key(*ci), &encode(watch))?;
                }
                for (ci, change) in &changes {
                    match *change {
                        Change::Down { start_ms } => {
                            let plan = plans.get(&(*ci, start_ms)).cloned().flatten();
                            self.open_outage(tx, *ci, start_ms, None, now_ms, plan, settings)?
                        }
                        Change::Rebooted { start_ms, end_ms } => {
                            let plan = plans.get(&(*ci, start_ms)).cloned().flatten();
                            self.open_outage(
                                tx,
                                *ci,
                                start_ms,
                                Some(end_ms),
                                now_ms,
                                plan,
                                settings,
                            )?
                        }
                        Change::Up { start_ms, end_ms } => {
                            self.close_outage(tx, *ci, start_ms, end_ms, now_ms)?
                        }
                    }
                }
                Ok(())
            });
        match result {
            Ok(()) => Ok(changes),
            Err(TransactionError::Store(e) | TransactionError::Aborted(e)) => Err(e),
        }
    }

    /// What plans an outage of `ci` starting at `start_ms`, if anything: an
    /// approved RFC's window, the CI's status `maintenance`, or a
    /// maintenance window of the CI or of a service depending on it.
    fn planned(&self, ci: CiId, start_ms: i64, rfcs: &[Rfc]) -> Result<Option<Plan>, StoreError> {
        if let Some(r) = rfcs.iter().find(|r| {
            matches!(
                r.status,
                RfcStatus::Approved | RfcStatus::Scheduled | RfcStatus::Implemented
            ) && r.cis.contains(&ci)
                && r.window
                    .as_ref()
                    .is_some_and(|w| w.start_ms <= start_ms && start_ms < w.end_ms)
        }) {
            return Ok(Some(Plan {
                rfc: Some(r.id),
                by: format!("the window of {}", r.id),
            }));
        }
        let Some(record) = self.ci(ci)? else {
            return Ok(None);
        };
        if record.status == CiStatus::Maintenance {
            return Ok(Some(Plan {
                rfc: None,
                by: format!("{} is in status maintenance", record.name),
            }));
        }
        let class = record.class.clone();
        // The CI's own window, then its dependents' (services), breadth
        // first; each CI once.
        let mut queue = std::collections::VecDeque::from([(record, 0)]);
        let mut seen = std::collections::BTreeSet::from([ci]);
        while let Some((record, depth)) = queue.pop_front() {
            match service::maintenance_window(&record.attributes) {
                Ok(Some(window)) if window.covers(start_ms) => {
                    return Ok(Some(Plan {
                        rfc: None,
                        by: format!("the maintenance window of {} ({window})", record.name),
                    }));
                }
                Ok(_) => {}
                // Refused when set; one that predates the check is logged.
                Err(e) => tracing::warn!(ci = %record.id, error = %e, "maintenance window ignored"),
            }
            if depth == MAX_SERVICE_DEPTH {
                continue;
            }
            let (_, incoming) = self.relationships_of(record.id)?;
            for r in incoming {
                if r.kind == RelationKind::DependsOn && seen.insert(r.from) {
                    if let Some(dependent) = self.ci(r.from)? {
                        queue.push_back((dependent, depth + 1));
                    }
                }
            }
        }
        // Then the policy's windows for its class or for it.
        for rule in self
            .policy()
            .maintenance
            .iter()
            .filter(|r| r.applies_to(ci, &class))
        {
            // Checked when the policy was read.
            if let Ok(window) = rule.calendar() {
                if window.covers(start_ms) {
                    let whom = rule
                        .ci
                        .map_or_else(|| format!("class {}", rule.class), |c| c.to_string());
                    return Ok(Some(Plan {
                        rfc: None,
                        by: format!("the policy's maintenance window for {whom} ({window})"),
                    }));
                }
            }
        }
        Ok(None)
    }

    /// Records an outage: open (missed heartbeats) or, with `end_ms`, a
    /// reboot already over.
    #[allow(clippy::too_many_arguments)] // the check's context, passed once
    fn open_outage(
        &self,
        tx: &dyn Tx,
        ci: CiId,
        start_ms: i64,
        end_ms: Option<i64>,
        now_ms: i64,
        plan: Option<Plan>,
        settings: &AvailabilitySettings,
    ) -> Result<(), TxAbort<StoreError>> {
        let planned = plan.is_some();
        let mut outage = Outage {
            ci,
            start_ms,
            end_ms,
            planned,
            rfc: plan.as_ref().and_then(|p| p.rfc),
            planned_by: plan.map(|p| p.by),
            incident: None,
            cause: if end_ms.is_some() {
                "reboot"
            } else {
                "missed_heartbeats"
            }
            .into(),
        };
        if !planned {
            let record: Option<CiRecord> = tx_get(tx, Table::Cis, &ci_key(ci))?;
            let (name, criticality) = record
                .map(|c| (c.name, c.criticality))
                .unwrap_or_else(|| (ci.to_string(), Level::Medium));
            let id = IncidentId::from_u64(next_id(tx, Counter::Incident)?);
            let (title, symptom) = match end_ms {
                None => (
                    format!("Unplanned outage: {name} stopped reporting"),
                    format!(
                        "{name} ({ci}) missed {} reporting intervals; no approved RFC window \
                         or maintenance window covers it. Down since {} (when the first missed \
                         report was due).",
                        settings.missed_intervals,
                        rfc3339(start_ms),
                    ),
                ),
                Some(end) => (
                    format!("Unplanned reboot: {name}"),
                    format!(
                        "{name} ({ci}) booted at {} with no approved RFC window or maintenance \
                         window covering it; it was last seen up at {}.",
                        rfc3339(end),
                        rfc3339(start_ms),
                    ),
                ),
            };
            let mut incident = Incident::new(
                id,
                title,
                symptom,
                "unplanned_outage",
                criticality,
                Level::High,
                now_ms,
                Actor::Collector,
            );
            incident.cis = vec![ci];
            incident.due_at_ms = self.policy().resolution_due(incident.priority, now_ms);
            if end_ms.is_some() {
                // Recorded for investigation; there is nothing to restore.
                incident
                    .resolve_automatically(now_ms, "The CI is up again after its reboot.".into());
            }
            put_incident(tx, &incident, "incident.created", self.webhooks())?;
            outage.incident = Some(id);
        }
        tx.insert(Table::Outages, &outage_key(ci, start_ms), &encode(&outage))?;
        Ok(())
    }

    fn close_outage(
        &self,
        tx: &dyn Tx,
        ci: CiId,
        start_ms: i64,
        end_ms: i64,
        now_ms: i64,
    ) -> Result<(), TxAbort<StoreError>> {
        let key = outage_key(ci, start_ms);
        let Some(mut outage) = tx_get::<Outage, _>(tx, Table::Outages, &key)? else {
            return Ok(());
        };
        outage.end_ms = Some(end_ms);
        if let Some(id) = outage.incident {
            if let Some(mut incident) = tx_get::<Incident, _>(tx, Table::Incidents, &id.key())? {
                incident.resolve_automatically(
                    now_ms,
                    format!(
                        "The CI reported again at {}, after {} s down.",
                        rfc3339(end_ms),
                        (end_ms - start_ms) / 1000
                    ),
                );
                put_incident(tx, &incident, "incident.updated", self.webhooks())?;
            }
        }
        tx.insert(Table::Outages, &key, &encode(&outage))?;
        Ok(())
    }

    /// Outages, of one CI or all, oldest first per CI.
    pub fn outages(&self, ci: Option<CiId>) -> Result<Vec<Outage>, StoreError> {
        let prefix = ci.map(|c| ci_key(c).to_vec()).unwrap_or_default();
        self.scan(Table::Outages, &prefix)
    }
}

/// What planned an outage.
#[derive(Debug, Clone)]
struct Plan {
    rfc: Option<RfcId>,
    /// For people: "the window of RFC-3", "the maintenance window of shop
    /// (sun 02:00-04:00 Europe/Paris)".
    by: String,
}

/// How far up the services depending on a CI a maintenance window is
/// looked for (as deep as availability reports go).
const MAX_SERVICE_DEPTH: usize = 8;

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdb::incident::IncidentStatus;
    use crate::cmdb::rfc::Window;
    use crate::reconcile::Report;
    use crate::test_support::{operator, Fixture, HOUR, NOON};
    use fathom_shared::wire::Metrics;

    const S: i64 = 1000;

    /// A heartbeat received at `at`.
    fn beat(f: &mut Fixture, at: i64) {
        let m = Metrics {
            observed_at_ms: at,
            ..Metrics::default()
        };
        f.apply(Report::Metrics(m), at);
    }

    fn check(f: &Fixture, now: i64) -> Vec<(CiId, Change)> {
        f.cmdb
            .check_availability(now, NOON, &AvailabilitySettings::default())
            .unwrap()
    }

    /// Heartbeats every 10 s from `from` to `to`, checked every 5 s.
    fn steady(f: &mut Fixture, from: i64, to: i64) {
        for t in (from..=to).step_by(5 * S as usize) {
            if (t - from) % (10 * S) == 0 {
                beat(f, t);
            }
            assert_eq!(check(f, t), vec![], "at {}", t - NOON);
        }
    }

    /// A metrics report stating the agent's cadence, received at `at`.
    fn scheduled(f: &mut Fixture, at: i64, every: i64) {
        let m = Metrics {
            observed_at_ms: at,
            cadence: Some(fathom_shared::wire::Cadence {
                metrics_interval_ms: every as u64,
                inventory_interval_ms: 3_600 * S as u64,
            }),
            ..Metrics::default()
        };
        f.apply(Report::Metrics(m), at);
    }

    #[test]
    fn a_stated_cadence_survives_bursts_restarts_and_a_changed_interval() {
        use crate::test_support::inventory;
        let mut f = Fixture::new();
        let ci = f.report(&[], NOON);
        // What the agent sends, by time after noon: (at, interval stated
        // by metrics; `None` for a change push, which states nothing).
        let mut reports: Vec<(i64, Option<i64>)> = Vec::new();
        let every = |from: i64, to: i64, interval: i64| {
            (from..=to)
                .step_by(interval as usize)
                .map(move |t| (t, Some(interval)))
        };
        reports.extend(every(60 * S, 1_800 * S, 60 * S));
        // Eight package changes pushed 3 s apart.
        reports.extend((0..8).map(|i| (603 * S + i * 3 * S, None)));
        // The collector is down from 1,800 s to 2,400 s; the agent's spool
        // drains as it comes back, then the schedule goes on.
        reports.extend((0..10).map(|i| (2_401 * S + i * 100, Some(60 * S))));
        reports.extend(every(2_460 * S, 3_000 * S, 60 * S));
        // The agent restarts with metrics every 10 s, then every 120 s.
        reports.extend(every(3_004 * S, 3_600 * S, 10 * S));
        reports.extend(every(3_606 * S, 4_800 * S, 120 * S));
        reports.sort_unstable();
        let settings = AvailabilitySettings::default();
        let mut next = reports.iter().peekable();
        for t in (NOON..=NOON + 4_800 * S).step_by(5 * S as usize) {
            while let Some((at, stated)) = next.next_if(|(at, _)| NOON + at <= t) {
                match stated {
                    Some(every) => scheduled(&mut f, NOON + at, *every),
                    None => {
                        f.send(inventory(&[("nginx", &format!("1.{at}"))], NOON + at));
                    }
                }
            }
            let after = t - NOON;
            if (1_800 * S..2_400 * S).contains(&after) {
                continue; // the collector is not running
            }
            let floor = if after < 2_400 * S {
                NOON
            } else {
                NOON + 2_400 * S
            };
            let changes = f.cmdb.check_availability(t, floor, &settings).unwrap();
            assert_eq!(changes, vec![], "at {} s", after / S);
        }
        assert!(f.cmdb.outages(Some(ci)).unwrap().is_empty());
        // A real stop after the last report (4,686 s, stating 120 s) is
        // found once three of its intervals have passed.
        let last = NOON + 4_686 * S;
        let down = (last..last + 1_000 * S)
            .step_by(5 * S as usize)
            .find(|t| {
                !f.cmdb
                    .check_availability(*t, NOON, &settings)
                    .unwrap()
                    .is_empty()
            })
            .unwrap();
        assert_eq!(
            down - last,
            365 * S,
            "the first check (every 5 s) past 360 s"
        );
        let outage = f.cmdb.outages(Some(ci)).unwrap().pop().unwrap();
        assert_eq!(outage.start_ms, last + 120 * S);
    }

    #[test]
    fn an_unplanned_outage_raises_an_incident_that_its_end_resolves() {
        let mut f = Fixture::new();
        let ci = f.report(&[], NOON);
        steady(&mut f, NOON, NOON + 100 * S);
        // Three 10 s intervals after the last heartbeat, and a little.
        assert_eq!(check(&f, NOON + 130 * S), vec![]);
        assert_eq!(
            check(&f, NOON + 131 * S),
            vec![(
                ci,
                Change::Down {
                    start_ms: NOON + 110 * S
                }
            )]
        );
        let outage = f.cmdb.outages(Some(ci)).unwrap().pop().unwrap();
        assert!(!outage.planned && outage.end_ms.is_none());
        let incident = f.cmdb.incident(outage.incident.unwrap()).unwrap().unwrap();
        assert_eq!(incident.category, "unplanned_outage");
        assert_eq!(incident.cis, vec![ci]);
        assert_eq!(incident.status, IncidentStatus::New);
        assert_eq!(incident.urgency, Level::High);
        assert!(incident.title.contains("web-1"), "{}", incident.title);
        // Nothing more while it stays down.
        assert_eq!(check(&f, NOON + 200 * S), vec![]);

        beat(&mut f, NOON + 300 * S);
        assert_eq!(
            check(&f, NOON + 301 * S),
            vec![(
                ci,
                Change::Up {
                    start_ms: NOON + 110 * S,
                    end_ms: NOON + 300 * S
                }
            )]
        );
        let outage = f.cmdb.outages(Some(ci)).unwrap().pop().unwrap();
        assert_eq!(outage.end_ms, Some(NOON + 300 * S));
        let incident = f.cmdb.incident(outage.incident.unwrap()).unwrap().unwrap();
        assert_eq!(incident.status, IncidentStatus::Resolved);
        assert!(incident.resolution.unwrap().contains("after 190 s down"));
        assert_eq!(f.cmdb.outages(None).unwrap().len(), 1);
    }

    #[test]
    fn an_outage_inside_an_approved_rfc_window_is_planned() {
        let mut f = Fixture::new();
        let ci = f.report(&[], NOON);
        let window = Window {
            start_ms: NOON + HOUR,
            end_ms: NOON + 2 * HOUR,
        };
        let rfc = f.rfc(ci, "packages.nginx: 1.24.*", window);
        // Reporting until well into the window, then a reboot's silence.
        steady(&mut f, NOON, NOON + HOUR + 60 * S);
        let down = check(&f, NOON + HOUR + 91 * S);
        assert_eq!(
            down,
            vec![(
                ci,
                Change::Down {
                    start_ms: NOON + HOUR + 70 * S
                }
            )]
        );
        let outage = f.cmdb.outages(Some(ci)).unwrap().pop().unwrap();
        assert!(outage.planned);
        assert_eq!((outage.rfc, outage.incident), (Some(rfc), None));
        assert_eq!(outage.planned_by, Some(format!("the window of {rfc}")));
        assert!(f.cmdb.list_incidents().unwrap().is_empty());

        // The same silence outside the window is unplanned.
        beat(&mut f, NOON + 3 * HOUR);
        check(&f, NOON + 3 * HOUR);
        steady(&mut f, NOON + 3 * HOUR + 10 * S, NOON + 3 * HOUR + 100 * S);
        check(&f, NOON + 3 * HOUR + 200 * S);
        let outage = f.cmdb.outages(Some(ci)).unwrap().pop().unwrap();
        assert!(!outage.planned && outage.incident.is_some());
    }

    /// Silence from `from` (after steady reports since `since`) until it
    /// is found; the outage it opened.
    fn silence(f: &mut Fixture, since: i64, from: i64) -> Outage {
        beat(f, since);
        check(f, since);
        steady(f, since + 10 * S, from);
        check(f, from + 100 * S);
        f.cmdb.outages(None).unwrap().pop().unwrap()
    }

    fn set(f: &Fixture, ci: CiId, attributes: &[(&str, &str)]) -> Result<(), String> {
        let set: Vec<(String, Option<String>)> = attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
            .collect();
        f.cmdb
            .edit_ci(&operator(), ci, &set, "agreed with the owner", NOON)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_outage_inside_a_maintenance_window_is_planned() {
        let mut f = Fixture::new();
        let ci = f.report(&[], NOON);
        // The host's own window, 13:00-14:00 in Paris (12:00 UTC in
        // November), kept on the discovered CI; a bad one is refused.
        assert!(set(&f, ci, &[("maintenance.window", "mon 25:00-26:00")])
            .unwrap_err()
            .contains("maintenance.window"));
        set(
            &f,
            ci,
            &[
                ("maintenance.window", "mon 13:00-14:00"),
                ("maintenance.timezone", "Europe/Paris"),
            ],
        )
        .unwrap();
        let outage = silence(&mut f, NOON, NOON + 10 * 60 * S);
        assert!(outage.planned && outage.incident.is_none(), "{outage:?}");
        assert_eq!(
            outage.planned_by.as_deref(),
            Some("the maintenance window of web-1 (mon 13:00-14:00 Europe/Paris)")
        );
        assert!(f.incidents().is_empty());

        // After the window: unplanned.
        let outage = silence(&mut f, NOON + HOUR, NOON + HOUR + 10 * 60 * S);
        assert!(!outage.planned && outage.incident.is_some(), "{outage:?}");
    }

    #[test]
    fn a_services_maintenance_window_covers_what_it_depends_on() {
        use crate::test_support::new_ci;
        let mut f = Fixture::new();
        let ci = f.report(&[], NOON);
        let service = |name: &str, attributes: &[(&str, &str)]| {
            let new = new_ci("service", name, attributes);
            f.cmdb
                .create_ci(&operator(), &new, "test", NOON)
                .map(|c| c.id)
        };
        let err = service("shop", &[("maintenance.window", "someday 02:00-04:00")]).unwrap_err();
        assert!(err.to_string().contains("someday"), "{err}");
        // shop (window daily 12:00-13:00 UTC) depends on app, which
        // depends on the host.
        let shop = service("shop", &[("maintenance.window", "daily 12:00-13:00")]).unwrap();
        let app = service("app", &[]).unwrap();
        for (from, to) in [(shop, app), (app, ci)] {
            f.cmdb
                .relate(
                    &operator(),
                    from,
                    RelationKind::DependsOn,
                    to,
                    true,
                    "test",
                    NOON,
                )
                .unwrap();
        }
        let outage = silence(&mut f, NOON, NOON + 10 * 60 * S);
        assert_eq!(
            outage.planned_by.as_deref(),
            Some("the maintenance window of shop (daily 12:00-13:00 UTC)")
        );
        assert!(outage.incident.is_none());
    }

    #[test]
    fn an_outage_of_a_ci_in_maintenance_is_planned() {
        let mut f = Fixture::new();
        let ci = f.report(&[], NOON);
        let status = vec![("status".to_owned(), Some("maintenance".to_owned()))];
        f.cmdb
            .edit_ci(&operator(), ci, &status, "disk swap", NOON)
            .unwrap();
        let outage = silence(&mut f, NOON, NOON + 10 * 60 * S);
        assert_eq!(
            outage.planned_by.as_deref(),
            Some("web-1 is in status maintenance")
        );
        assert!(f.incidents().is_empty());
    }

    /// Steady reports to 100 s, then the agent restarts with its host: a
    /// fresh inventory says it booted at 104 s (its reports never stopped
    /// for long). The check at 105 s finds one reboot, from the last
    /// heartbeat to the boot.
    fn reboot_at_104_s(f: &mut Fixture, mut inv: fathom_shared::wire::Inventory, ci: CiId) {
        steady(f, NOON + 10 * S, NOON + 100 * S);
        inv.observed_at_ms = NOON + 105 * S;
        inv.host.boot_time_ms = Some(NOON + 104 * S);
        f.send(inv);
        assert_eq!(
            check(f, NOON + 105 * S),
            vec![(
                ci,
                Change::Rebooted {
                    start_ms: NOON + 100 * S,
                    end_ms: NOON + 104 * S
                }
            )]
        );
    }

    #[test]
    fn a_host_booting_again_between_reports_is_a_reboot() {
        use crate::test_support::inventory;
        let mut f = Fixture::new();
        let mut inv = inventory(&[], NOON);
        inv.host.boot_time_ms = Some(NOON - 86_400 * S);
        let ci = f.send(inv.clone());
        reboot_at_104_s(&mut f, inv, ci);
        assert_eq!(check(&f, NOON + 106 * S), vec![], "reported once");
    }

    #[test]
    fn a_reboot_inside_an_approved_rfc_window_is_planned() {
        use crate::test_support::inventory;
        let mut f = Fixture::new();
        let mut inv = inventory(&[], NOON);
        inv.host.boot_time_ms = Some(NOON - HOUR);
        let ci = f.send(inv.clone());
        let rfc = f.rfc(
            ci,
            "packages.nginx: 1.24.*",
            Window {
                start_ms: NOON + 50 * S,
                end_ms: NOON + HOUR,
            },
        );
        // Rebooted inside the window, nothing else going down at the time.
        reboot_at_104_s(&mut f, inv, ci);
        let outage = f.cmdb.outages(Some(ci)).unwrap().pop().unwrap();
        assert_eq!((outage.cause.as_str(), outage.planned), ("reboot", true));
        assert_eq!(outage.planned_by, Some(format!("the window of {rfc}")));
        assert!(f.incidents().is_empty());
    }

    #[test]
    fn the_policys_maintenance_window_for_a_class_plans_its_outages() {
        use crate::control::policy::Policy;
        let mut text = include_str!("../../../configs/policy.toml").to_owned();
        text.push_str(
            "\n[[maintenance]]\nclass = 'data*'\nwindow = 'daily 00:00-24:00'\n\
             [[maintenance]]\nclass = 'serv*'\nwindow = 'mon 12:00-13:00'\n\
             timezone = 'Europe/London'\n",
        );
        let policy = Policy::from_toml(&text, std::path::Path::new("policy.toml")).unwrap();
        let mut f = Fixture::with_policy(policy);
        let ci = f.report(&[], NOON);
        let class = f.cmdb.ci(ci).unwrap().unwrap().class;
        assert_eq!(class, "server", "the second rule is the host's");
        let outage = silence(&mut f, NOON, NOON + 10 * 60 * S);
        assert_eq!(
            outage.planned_by.as_deref(),
            Some("the policy's maintenance window for class serv* (mon 12:00-13:00 Europe/London)")
        );
        // Outside it, unplanned: the database rule is not this CI's.
        let outage = silence(&mut f, NOON + HOUR, NOON + HOUR + 10 * 60 * S);
        assert!(!outage.planned && outage.incident.is_some(), "{outage:?}");
    }
}
