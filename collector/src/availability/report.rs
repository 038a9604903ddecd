//! Availability of a CI or a service over a period, against its agreed
//! service hours and its target.
//!
//! A **service** is any CI that depends on others (`depends_on`
//! relationships from it). Its downtime is computed from its members'
//! outage timelines with exact interval arithmetic (`availability::
//! timeline`), not by multiplying percentages:
//!
//! - members depend in series: the service is down whenever one is;
//! - a **redundancy group**, the service attribute `redundancy.<group> =
//!   "<k> of <ci> <ci> …"`, is down only while fewer than `k` of its
//!   members are up;
//! - a member that is itself a service counts with its own members (to a
//!   depth of 8; a CI on its own dependency path is not counted again);
//! - the service's own outages (when it has an agent) count in series too.
//!
//! Downtime is **unplanned** outages only; planned ones (inside an approved
//! RFC's window or a maintenance window, or while the CI was in
//! maintenance: `availability::outage`) are reported beside it and not held
//! against the service.
//!
//! Agreed hours are service attributes: `availability.hours` (rules
//! separated by `;`, e.g. `mon-fri 08:00-18:00; sat 09:00-12:00`; default
//! every day all day), `availability.timezone` (default UTC),
//! `availability.exceptions` (`2026-12-25 closed; 2026-12-24 08:00-12:00`),
//! and `availability.target` (a percentage, e.g. `99.9`).
//!
//! Only **monitored** time counts: a CI is monitored from its first
//! heartbeat (`first_seen_ms`, set by its first report or poll, for manual
//! CIs too once an agent reports for them) or its first recorded outage,
//! whichever is earlier; a CI nothing ever reported for is never
//! monitored. A service is monitored while every member is (and itself,
//! if something reports for it). Time before a CI existed, or that nobody
//! watched, is neither uptime nor downtime.
//!
//! Availability = (agreed monitored time − downtime within it) / agreed
//! monitored time. The report says how much of the agreed time was
//! monitored (`coverage_pct`); below [`MIN_COVERAGE_PCT`] the figure is
//! marked not meaningful and the target is not judged. MTRS (mean time to
//! restore service) = downtime / outages; MTBF (mean time between
//! failures) = monitored uptime within agreed hours / outages; both count
//! only outages that touch agreed hours.

use std::collections::{BTreeMap, BTreeSet};

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use crate::calendar::timeline::{k_of_n, serial, Timeline};
use crate::cmdb::ci::CiRecord;
use crate::cmdb::relationship::RelationKind;
use crate::cmdb::Cmdb;
use crate::control::service::{self, AttributeError};
use crate::store::{Store, StoreError};

const MAX_DEPTH: usize = 8;

/// Below this share of the agreed time monitored, an availability figure
/// says too little to judge a target by.
pub const MIN_COVERAGE_PCT: f64 = 90.0;

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no CI {0}")]
    NotFound(CiId),
    #[error("{ci} attribute {attribute}: {message}")]
    Attribute {
        ci: CiId,
        attribute: String,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a member counts in its service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub ci: CiId,
    pub name: String,
    /// `serial`, or the redundancy group's name.
    pub role: String,
    /// The member's own availability over the service's agreed hours,
    /// while it was monitored.
    pub availability_pct: Option<f64>,
    /// The share of the agreed hours the member was monitored.
    #[serde(default)]
    pub coverage_pct: Option<f64>,
    /// The member's own unplanned downtime within those hours.
    pub downtime: Vec<Downtime>,
}

/// A stretch of time: downtime within agreed hours, or agreed hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downtime {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A CI's or a service's availability over a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AvailabilityReport {
    pub ci: CiId,
    pub name: String,
    pub class: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub timezone: String,
    pub agreed_ms: i64,
    /// Agreed time while the CI (or every member) was monitored: what
    /// availability is computed over.
    #[serde(default)]
    pub monitored_ms: i64,
    /// `monitored_ms` as a share of `agreed_ms`.
    #[serde(default)]
    pub coverage_pct: Option<f64>,
    /// Whether enough was monitored ([`MIN_COVERAGE_PCT`]) for the figure
    /// to mean something; when not, `target_met` is `None`.
    #[serde(default)]
    pub meaningful: bool,
    /// Unplanned downtime within agreed hours.
    pub down_ms: i64,
    /// Planned downtime within agreed hours (not held against it).
    pub planned_ms: i64,
    /// `None` when no agreed hours were monitored in the period.
    pub availability_pct: Option<f64>,
    pub target_pct: Option<f64>,
    pub target_met: Option<bool>,
    pub outages: usize,
    pub mtrs_ms: Option<i64>,
    pub mtbf_ms: Option<i64>,
    pub downtime: Vec<Downtime>,
    /// The agreed hours themselves, for timelines.
    pub agreed: Vec<Downtime>,
    pub members: Vec<Member>,
}

fn spans(t: &Timeline) -> Vec<Downtime> {
    t.intervals()
        .iter()
        .map(|&(start_ms, end_ms)| Downtime { start_ms, end_ms })
        .collect()
}

/// A service's members: in series, and in redundancy groups (name, k,
/// members).
struct Structure {
    serial: Vec<CiId>,
    groups: Vec<(String, usize, Vec<CiId>)>,
}

/// A service-level attribute of `ci` that cannot be read.
fn attribute_error(ci: CiId) -> impl Fn(AttributeError) -> ReportError {
    move |e| ReportError::Attribute {
        ci,
        attribute: e.attribute,
        message: e.message,
    }
}

impl<S: Store> Cmdb<S> {
    /// The report for `ci` over `[from_ms, to_ms)`; outages still open
    /// count until `to_ms`.
    pub fn availability_report(
        &self,
        ci: CiId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<AvailabilityReport, ReportError> {
        let record = self.ci(ci)?.ok_or(ReportError::NotFound(ci))?;
        let calendar = service::agreed_hours(&record.attributes).map_err(attribute_error(ci))?;
        let (hours, timezone) = (calendar.hours, calendar.zone);
        let agreed = hours.agreed(from_ms, to_ms);
        let mut seen = BTreeSet::new();
        let watched = self.down_of(&record, from_ms, to_ms, 0, &mut seen)?;
        let counted = agreed.intersection(&watched.monitored);
        let down = watched.down.intersection(&counted);
        let planned = watched
            .planned
            .intersection(&counted)
            .intersection(&down.complement_within(from_ms, to_ms));
        let figures = |w: &Watched| {
            let counted = agreed.intersection(&w.monitored);
            let down = w.down.intersection(&counted).duration();
            let pct = (counted.duration() > 0)
                .then(|| (counted.duration() - down) as f64 * 100.0 / counted.duration() as f64);
            let coverage = (agreed.duration() > 0)
                .then(|| counted.duration() as f64 * 100.0 / agreed.duration() as f64);
            (pct, coverage)
        };
        let (availability_pct, coverage_pct) = figures(&watched);
        let meaningful = coverage_pct.is_some_and(|c| c >= MIN_COVERAGE_PCT);
        let target_pct = service::target_pct(&record.attributes).map_err(attribute_error(ci))?;
        let outages = down.intervals().len();
        let members = self
            .members_of(&record)?
            .into_iter()
            .map(|(m, role)| {
                let member = self.ci(m)?;
                let mut seen = BTreeSet::from([ci]);
                let w = match &member {
                    Some(r) => self.down_of(r, from_ms, to_ms, 1, &mut seen)?,
                    None => Watched::default(),
                };
                let (availability_pct, coverage_pct) = figures(&w);
                Ok(Member {
                    ci: m,
                    name: member.map(|r| r.name).unwrap_or_else(|| m.to_string()),
                    role,
                    availability_pct,
                    coverage_pct,
                    downtime: spans(&w.down.intersection(&agreed).intersection(&w.monitored)),
                })
            })
            .collect::<Result<Vec<_>, ReportError>>()?;
        let monitored_ms = counted.duration();
        Ok(AvailabilityReport {
            ci,
            name: record.name.clone(),
            class: record.class.clone(),
            from_ms,
            to_ms,
            timezone,
            agreed_ms: agreed.duration(),
            monitored_ms,
            coverage_pct,
            meaningful,
            down_ms: down.duration(),
            planned_ms: planned.duration(),
            availability_pct,
            target_met: availability_pct
                .zip(target_pct)
                .filter(|_| meaningful)
                .map(|(a, t)| a >= t),
            target_pct,
            outages,
            mtrs_ms: (outages > 0).then(|| down.duration() / outages as i64),
            mtbf_ms: (outages > 0).then(|| (monitored_ms - down.duration()) / outages as i64),
            downtime: spans(&down),
            agreed: spans(&agreed),
            members,
        })
    }

    /// How a service is built: its `depends_on` members in series (those
    /// not in a group), and its redundancy groups (name, k, members).
    fn structure_of(&self, record: &CiRecord) -> Result<Structure, ReportError> {
        let mut groups = Vec::new();
        for (attribute, text) in &record.attributes {
            if let Some(name) = attribute.strip_prefix("redundancy.") {
                let (k, members) =
                    service::redundancy_group(name, text).map_err(attribute_error(record.id))?;
                groups.push((name.to_owned(), k, members));
            }
        }
        let grouped: BTreeSet<CiId> = groups.iter().flat_map(|g| g.2.iter().copied()).collect();
        let (outgoing, _) = self.relationships_of(record.id)?;
        let serial = outgoing
            .iter()
            .filter(|r| r.kind == RelationKind::DependsOn && !grouped.contains(&r.to))
            .map(|r| r.to)
            .collect();
        Ok(Structure { serial, groups })
    }

    /// The CIs a service depends on, with their role: `serial`, or their
    /// redundancy group.
    fn members_of(&self, record: &CiRecord) -> Result<Vec<(CiId, String)>, ReportError> {
        let s = self.structure_of(record)?;
        let mut roles: BTreeMap<CiId, String> =
            s.serial.into_iter().map(|m| (m, "serial".into())).collect();
        for (name, k, members) in s.groups {
            for m in members {
                roles.insert(m, format!("{name} ({k} of n)"));
            }
        }
        Ok(roles.into_iter().collect())
    }

    /// A CI's unplanned and planned downtime in `[from_ms, to_ms)`, and
    /// when it was monitored: its own outages, and, for a service, its
    /// members' by the rules above.
    fn down_of(
        &self,
        record: &CiRecord,
        from_ms: i64,
        to_ms: i64,
        depth: usize,
        seen: &mut BTreeSet<CiId>,
    ) -> Result<Watched, ReportError> {
        // `seen` holds the CIs on the path here: a cycle counts a CI once.
        if !seen.insert(record.id) || depth > MAX_DEPTH {
            return Ok(Watched::default());
        }
        let result = self.down_of_members(record, from_ms, to_ms, depth, seen);
        seen.remove(&record.id);
        result
    }

    /// [`Self::down_of`] once the CI is on the path.
    fn down_of_members(
        &self,
        record: &CiRecord,
        from_ms: i64,
        to_ms: i64,
        depth: usize,
        seen: &mut BTreeSet<CiId>,
    ) -> Result<Watched, ReportError> {
        let outages = self.outages(Some(record.id))?;
        let interval = |o: &super::outage::Outage| (o.start_ms, o.end_ms.unwrap_or(to_ms));
        let own = Timeline::new(outages.iter().filter(|o| !o.planned).map(interval));
        let planned = Timeline::new(outages.iter().filter(|o| o.planned).map(interval));
        // Watched from its first heartbeat, or its first outage if that
        // is older (an outage is proof somebody watched).
        let since = record
            .first_seen_ms
            .into_iter()
            .chain(outages.first().map(|o| o.start_ms))
            .min();
        let own_monitored = since.map(|s| Timeline::new([(s.max(from_ms), to_ms)]));
        let mut serial_down = vec![own.clip(from_ms, to_ms)];
        let mut planned_down = vec![planned.clip(from_ms, to_ms)];
        let mut monitored: Vec<Timeline> = own_monitored.into_iter().collect();
        let structure = self.structure_of(record)?;
        let mut member = |m: CiId| -> Result<Watched, ReportError> {
            match self.ci(m)? {
                Some(r) => self.down_of(&r, from_ms, to_ms, depth + 1, seen),
                None => Ok(Watched::default()),
            }
        };
        for m in structure.serial {
            let w = member(m)?;
            serial_down.push(w.down);
            planned_down.push(w.planned);
            monitored.push(w.monitored);
        }
        for (_, k, members) in structure.groups {
            let mut downs = Vec::new();
            for m in members {
                let w = member(m)?;
                downs.push(w.down);
                planned_down.push(w.planned);
                monitored.push(w.monitored);
            }
            serial_down.push(k_of_n(&downs, k, from_ms, to_ms));
        }
        // Monitored while every part is.
        let monitored = monitored
            .into_iter()
            .reduce(|a, b| a.intersection(&b))
            .unwrap_or_default();
        Ok(Watched {
            down: serial(&serial_down),
            planned: serial(&planned_down),
            monitored,
        })
    }
}

/// What the watch of a CI (or a service's members) saw over a period.
#[derive(Debug, Default)]
struct Watched {
    /// Unplanned downtime.
    down: Timeline,
    planned: Timeline,
    /// When it was watched at all.
    monitored: Timeline,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::outage::Outage;
    use crate::cmdb::history::Actor;
    use crate::cmdb::{ci_key, encode, Role};
    use crate::store::sled_store::SledStore;
    use crate::store::Table;
    use crate::test_support::cmdb;
    use crate::test_support::new_ci;

    const H: i64 = 3_600_000;
    // Monday 2026-11-23 00:00 UTC.
    const MON: i64 = 1_795_392_000_000;

    fn person() -> Actor {
        Actor::Operator {
            name: "sam".into(),
            role: Role::ConfigurationManager,
        }
    }

    fn ci(c: &Cmdb<SledStore>, name: &str, attributes: &[(&str, &str)]) -> CiId {
        let class = if attributes.is_empty() {
            "server"
        } else {
            "service"
        };
        let new = new_ci(class, name, attributes);
        let id = c.create_ci(&person(), &new, "test", MON).unwrap().id;
        // Servers have been reporting for a week.
        if class == "server" {
            watched_since(c, id, MON - 7 * 24 * H);
        }
        id
    }

    /// Makes `ci` monitored since `at`, as its first report would.
    fn watched_since(c: &Cmdb<SledStore>, ci: CiId, at: i64) {
        let mut record = c.ci(ci).unwrap().unwrap();
        record.first_seen_ms = Some(at);
        c.store()
            .transaction::<(), ()>(|tx| {
                tx.insert(Table::Cis, &ci_key(ci), &encode(&record))?;
                Ok(())
            })
            .unwrap();
    }

    fn depends(c: &Cmdb<SledStore>, from: CiId, to: CiId) {
        c.relate(
            &person(),
            from,
            RelationKind::DependsOn,
            to,
            true,
            "test",
            MON,
        )
        .unwrap();
    }

    /// An outage of `ci` from `start` to `end` hours after Monday 00:00.
    fn down(c: &Cmdb<SledStore>, ci: CiId, start: i64, end: Option<i64>, planned: bool) {
        let o = Outage {
            ci,
            start_ms: MON + start * H,
            end_ms: end.map(|e| MON + e * H),
            planned,
            rfc: None,
            planned_by: None,
            incident: None,
            cause: "missed_heartbeats".into(),
        };
        let mut key = ci_key(ci).to_vec();
        key.extend_from_slice(&o.start_ms.to_be_bytes());
        c.store()
            .transaction::<(), ()>(|tx| {
                tx.insert(Table::Outages, &key, &encode(&o))?;
                Ok(())
            })
            .unwrap();
    }

    fn week(c: &Cmdb<SledStore>, service: CiId) -> AvailabilityReport {
        c.availability_report(service, MON, MON + 7 * 24 * H)
            .unwrap()
    }

    #[test]
    fn a_serial_chain_is_down_when_any_member_is() {
        let (_d, c) = cmdb();
        let svc = ci(&c, "shop", &[("availability.target", "99.5")]);
        let (lb, app, db) = (ci(&c, "lb", &[]), ci(&c, "app", &[]), ci(&c, "db", &[]));
        for m in [lb, app, db] {
            depends(&c, svc, m);
        }
        // lb down 1–3 h, app 2–4 h (overlapping): 3 h together, not 4.
        // db down 10–11 h, planned: not held against the service.
        down(&c, lb, 1, Some(3), false);
        down(&c, app, 2, Some(4), false);
        down(&c, db, 10, Some(11), true);
        let r = week(&c, svc);
        assert_eq!(r.agreed_ms, 7 * 24 * H);
        assert_eq!(r.down_ms, 3 * H);
        assert_eq!(r.planned_ms, H);
        assert_eq!(r.outages, 1);
        assert_eq!(r.mtrs_ms, Some(3 * H));
        assert_eq!(r.mtbf_ms, Some(165 * H));
        let pct = r.availability_pct.unwrap();
        assert!((pct - 100.0 * 165.0 / 168.0).abs() < 1e-9, "{pct}");
        assert_eq!((r.target_pct, r.target_met), (Some(99.5), Some(false)));
        assert_eq!(r.members.len(), 3);
        let lb_member = r.members.iter().find(|m| m.ci == lb).unwrap();
        assert_eq!(lb_member.role, "serial");
        assert_eq!(
            lb_member.downtime,
            vec![Downtime {
                start_ms: MON + H,
                end_ms: MON + 3 * H
            }]
        );
        assert_eq!(
            r.agreed,
            vec![Downtime {
                start_ms: MON,
                end_ms: MON + 7 * 24 * H
            }]
        );
        assert!((lb_member.availability_pct.unwrap() - 100.0 * 166.0 / 168.0).abs() < 1e-9);
    }

    #[test]
    fn redundancy_groups_survive_member_loss() {
        let (_d, c) = cmdb();
        let (a, b) = (ci(&c, "web-a", &[]), ci(&c, "web-b", &[]));
        let (x, y, z) = (
            ci(&c, "db-x", &[]),
            ci(&c, "db-y", &[]),
            ci(&c, "db-z", &[]),
        );
        let web = format!("1 of {a} {b}");
        let db = format!("2 of {x} {y} {z}");
        let svc = ci(
            &c,
            "shop",
            &[("redundancy.web", &web), ("redundancy.db", &db)],
        );
        // Web: a down 0–5 h, b down 4–6 h: both down 4–5 h only.
        down(&c, a, 0, Some(5), false);
        down(&c, b, 4, Some(6), false);
        // DB, 2 of 3: x down 10–20 h, y down 12–14 h and 18–30 h, z down
        // 13–19 h. Down members: 10–12 one (x); 12–14 two or three; 14–18
        // two (x, z); 18–20 two or three; then one (y). So 12–20: 8 h.
        down(&c, x, 10, Some(20), false);
        down(&c, y, 12, Some(14), false);
        down(&c, y, 18, Some(30), false);
        down(&c, z, 13, Some(19), false);
        let r = week(&c, svc);
        assert_eq!(
            r.downtime,
            vec![
                Downtime {
                    start_ms: MON + 4 * H,
                    end_ms: MON + 5 * H
                },
                Downtime {
                    start_ms: MON + 12 * H,
                    end_ms: MON + 20 * H
                },
            ]
        );
        assert_eq!(r.down_ms, 9 * H);
        assert_eq!(r.outages, 2);
        // The product of the groups' percentages would say otherwise only
        // by chance; the intervals are what the service saw.
        assert_eq!(r.mtrs_ms, Some(9 * H / 2));
        assert!(r
            .members
            .iter()
            .any(|m| m.ci == z && m.role == "db (2 of n)"));
    }

    #[test]
    fn only_agreed_hours_count() {
        let (_d, c) = cmdb();
        let svc = ci(
            &c,
            "payroll",
            &[
                ("availability.hours", "mon-fri 08:00-18:00"),
                ("availability.timezone", "UTC"),
                ("availability.exceptions", "2026-11-25 closed"),
                ("availability.target", "99%"),
            ],
        );
        let app = ci(&c, "payroll-app", &[]);
        depends(&c, svc, app);
        // Down Monday 17:00–20:00 (1 h inside hours), all Wednesday (closed),
        // and from Friday 17:00, still down at the week's end (1 h).
        down(&c, app, 17, Some(20), false);
        down(&c, app, 48, Some(72), false);
        down(&c, app, 4 * 24 + 17, None, false);
        let r = week(&c, svc);
        // Four open days of 10 h.
        assert_eq!(r.agreed_ms, 40 * H);
        assert_eq!(r.down_ms, 2 * H);
        assert_eq!(r.outages, 2);
        assert_eq!(r.target_met, Some(false));
        assert_eq!(r.availability_pct, Some(95.0));
        assert_eq!(r.mtbf_ms, Some(19 * H));
    }

    #[test]
    fn time_before_a_ci_was_monitored_is_not_uptime() {
        let (_d, c) = cmdb();
        // A host that first reported on Sunday 12:00, six hours down that
        // evening: of the week, 12 h were monitored.
        let host = c
            .create_ci(&person(), &new_ci("server", "new-1", &[]), "test", MON)
            .unwrap()
            .id;
        watched_since(&c, host, MON + 156 * H);
        down(&c, host, 162, Some(165), false);
        let r = week(&c, host);
        assert_eq!((r.agreed_ms, r.monitored_ms), (168 * H, 12 * H));
        assert_eq!(r.availability_pct, Some(75.0));
        let coverage = r.coverage_pct.unwrap();
        assert!((coverage - 100.0 * 12.0 / 168.0).abs() < 1e-9, "{coverage}");
        assert!(!r.meaningful);
        assert_eq!(r.mtbf_ms, Some(9 * H));

        // A service of it and a CI nothing reports for: never monitored as
        // a whole, so its 99.9 % target is neither met nor missed.
        let manual = c
            .create_ci(&person(), &new_ci("server", "manual", &[]), "test", MON)
            .unwrap()
            .id;
        let svc = ci(&c, "shop", &[("availability.target", "99.9")]);
        depends(&c, svc, host);
        depends(&c, svc, manual);
        let r = week(&c, svc);
        assert_eq!((r.monitored_ms, r.availability_pct), (0, None));
        assert_eq!((r.meaningful, r.target_met), (false, None));
        let m = r.members.iter().find(|m| m.ci == manual).unwrap();
        assert_eq!((m.availability_pct, m.coverage_pct), (None, Some(0.0)));

        // Its first outage shows it was watched from then on.
        down(&c, manual, 100, Some(101), false);
        let r = week(&c, manual);
        assert_eq!(r.monitored_ms, 68 * H);
    }

    #[test]
    fn bad_attributes_are_refused_naming_them() {
        let (_d, c) = cmdb();
        let refused = |attribute: &str, value: &str| {
            let new = new_ci("service", "shop", &[(attribute, value)]);
            c.create_ci(&person(), &new, "test", MON)
                .unwrap_err()
                .to_string()
        };
        let err = refused("redundancy.web", "two of ci-1 ci-2");
        assert!(
            err.contains("redundancy.web") && err.contains("two"),
            "{err}"
        );
        let err = refused("availability.timezone", "Mars/Olympus");
        assert!(
            err.contains("availability.hours") && err.contains("Mars"),
            "{err}"
        );
        let err = refused("availability.target", "101");
        assert!(err.contains("availability.target"), "{err}");
        let err = refused("maintenance.window", "sun 04:00-02:00");
        assert!(
            err.contains("maintenance.window") && err.contains("04:00-02:00"),
            "{err}"
        );

        // One that got in before the check: the report names CI and
        // attribute.
        let svc = ci(&c, "shop", &[("availability.target", "99")]);
        let mut record = c.ci(svc).unwrap().unwrap();
        record
            .attributes
            .insert("redundancy.web".into(), "two of ci-1 ci-2".into());
        c.store()
            .transaction::<(), ()>(|tx| {
                tx.insert(Table::Cis, &ci_key(svc), &encode(&record))?;
                Ok(())
            })
            .unwrap();
        let err = c
            .availability_report(svc, MON, MON + H)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("redundancy.web") && err.contains(&svc.to_string()),
            "{err}"
        );
    }
}
