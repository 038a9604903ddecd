//! The CMDB routes of the operator API.
//!
//! | method | path                              | permission     |
//! |--------|-----------------------------------|----------------|
//! | GET    | /v1/cis                           | (read)         |
//! | GET    | /v1/cmdb-as-of?at_ms=             | (read)         |
//! | POST   | /v1/cis                           | EditCis        |
//! | GET    | /v1/cis/{id}                      | (read)         |
//! | POST   | /v1/cis/{id}/edit                 | EditCis        |
//! | POST   | /v1/cis/{id}/register             | EditCis        |
//! | GET    | /v1/cis/{id}/history              | (read)         |
//! | GET    | /v1/cis/{id}/as-of?at_ms=         | (read)         |
//! | POST   | /v1/cis/{id}/merge                | EditCis        |
//! | POST   | /v1/cis/{id}/split                | EditCis        |
//! | GET    | /v1/reviews                       | (read)         |
//! | POST   | /v1/reviews/{id}/dismiss          | EditCis        |
//! | POST   | /v1/relationships                 | EditCis        |
//! | GET    | /v1/rfcs                          | (read)         |
//! | POST   | /v1/rfcs                          | RaiseRfc       |
//! | GET    | /v1/rfcs/{id}                     | (read)         |
//! | POST   | /v1/rfcs/{id}/{assess,approve,reject,schedule,implement,review,close,cancel} | DecideRfc |
//! | GET    | /v1/schedule-of-change?from_ms=   | (read)         |
//! | GET    | /v1/drift                         | (read)         |
//! | GET    | /v1/drift/{id}                    | (read)         |
//! | GET    | /v1/incidents                     | (read)         |
//! | POST   | /v1/incidents                     | WorkIncidents  |
//! | GET    | /v1/incidents/{id}                | (read)         |
//! | POST   | /v1/incidents/{id}/update         | WorkIncidents  |
//! | GET    | /v1/audit-trail                   | (read)         |
//! | GET    | /v1/baselines                     | (read)         |
//! | POST   | /v1/baselines                     | Audit          |
//! | GET    | /v1/baselines/{name}              | (read)         |
//! | GET    | /v1/baselines/{name}/diff?against= | (read)        |
//! | GET    | /v1/audit-report?seed=            | (read)         |
//! | GET    | /v1/audits                        | (read)         |
//! | POST   | /v1/audits                        | Audit          |
//! | GET    | /v1/export?class=                 | (read)         |
//! | POST   | /v1/import                        | EditCis        |
//!
//! Writes answer only once durable, like reports.

use std::collections::BTreeMap;
use std::sync::Arc;

use fathom_shared::ids::CiId;
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    bad_request, durable, json, not_found, now_ms, parse_request, refuse, store_error, Answer, Api,
    Refused,
};
use crate::cmdb::action::ActionError;
use crate::cmdb::ci::CiRecord;
use crate::cmdb::ci::NewCi;
use crate::cmdb::device::DeviceSample;
use crate::cmdb::history::Actor;
use crate::cmdb::incident::IncidentUpdate;
use crate::cmdb::relationship::RelationKind;
use crate::cmdb::rfc::NewRfc;
use crate::cmdb::rfc::{ReviewOutcome, Window};
use crate::cmdb::Permission;
use crate::control::policy::Level;
use crate::ids::{DriftId, IncidentId, RfcId};
use crate::store::Store;

/// One authenticated operator request.
#[derive(Debug)]
pub(super) struct Request<'a> {
    pub method: &'a Method,
    pub segments: &'a [&'a str],
    /// The query string's pairs, percent-decoded.
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
    pub actor: &'a Actor,
    /// Taken before any write this request makes.
    pub begun: crate::commit::Begun,
}

impl Request<'_> {
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn query_ms(&self, key: &str) -> Result<Option<i64>, Refused> {
        self.query(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    bad_request(format!("query parameter {key} must be Unix milliseconds"))
                })
            })
            .transpose()
    }
}

pub(crate) fn action_error(e: ActionError) -> Refused {
    match e {
        ActionError::NotFound(m) => not_found(m),
        ActionError::Invalid(m) => bad_request(m),
        ActionError::Conflict(m) => refuse(StatusCode::CONFLICT, "conflict", m),
        ActionError::Store(s) => store_error(&s),
    }
}

fn id<T: std::str::FromStr>(text: &str) -> Result<T, Refused>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| bad_request(e.to_string()))
}

/// A CI in listings, with what the listing needs to say about it.
#[derive(Debug, Serialize, Deserialize)]
pub struct CiView {
    #[serde(flatten)]
    pub ci: CiRecord,
    /// Not reported for longer than the policy's `stale_after`.
    pub stale: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    #[serde(flatten)]
    ci: NewCi,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    /// Field → new value; `null` clears.
    set: BTreeMap<String, Option<String>>,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Relate {
    from: CiId,
    kind: RelationKind,
    to: CiId,
    #[serde(default = "yes")]
    present: bool,
    reason: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decide {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    window: Option<Window>,
    #[serde(default)]
    risk: Option<Level>,
    #[serde(default)]
    outcome: Option<ReviewOutcome>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RaiseIncident {
    title: String,
    #[serde(default)]
    symptom: String,
    #[serde(default = "manual_category")]
    category: String,
    impact: Level,
    urgency: Level,
    #[serde(default)]
    cis: Vec<CiId>,
}

fn manual_category() -> String {
    "reported".into()
}

/// Answers a CMDB route, or `None` if the path is not one.
pub(super) async fn route<S: Store>(
    api: &Arc<Api<S>>,
    r: &Request<'_>,
    need: &(dyn Fn(Permission) -> Result<(), Refused> + Sync),
) -> Result<Option<Answer>, Refused> {
    let cmdb = &api.cmdb;
    let actor = r.actor;
    let now = now_ms();
    let store = |e: crate::store::StoreError| store_error(&e);
    // Writes: run, wait for durability, answer.
    macro_rules! write {
        ($status:expr, $value:expr) => {{
            let value = $value.map_err(action_error)?;
            durable(api, r.begun).await?;
            json($status, &value)
        }};
    }
    let answer = match (r.method, r.segments) {
        (&Method::GET, ["v1", "classes"]) => {
            let classes: Vec<_> = cmdb.policy().classes.all().collect();
            json(StatusCode::OK, &classes)
        }
        (&Method::GET, ["v1", "cis"]) => {
            let stale_after = cmdb.policy().stale_after_ms;
            let cis: Vec<CiView> = cmdb
                .list_cis()
                .map_err(store)?
                .into_iter()
                .filter(|c| r.query("class").is_none_or(|k| c.class == k))
                // Merged-away CIs are history, listed only when asked for.
                .filter(|c| c.merged_into.is_none() || r.query("merged") == Some("true"))
                .map(|ci| CiView {
                    stale: ci.is_stale(now, stale_after),
                    ci,
                })
                .filter(|v| r.query("stale") != Some("true") || v.stale)
                .collect();
            json(StatusCode::OK, &cis)
        }
        (&Method::GET, ["v1", "cmdb-as-of"]) => {
            let at = r
                .query_ms("at_ms")?
                .ok_or_else(|| bad_request("give the time as ?at_ms=<Unix milliseconds>"))?;
            let mut cmdb_then = BTreeMap::new();
            for ci in cmdb.list_cis().map_err(store)? {
                if let Some(fields) = cmdb.ci_as_of(ci.id, at).map_err(store)? {
                    cmdb_then.insert(ci.id.to_string(), fields);
                }
            }
            json(StatusCode::OK, &cmdb_then)
        }
        (&Method::POST, ["v1", "cis"]) => {
            need(Permission::EditCis)?;
            let c: Create = parse_request(r.body, "CI")?;
            write!(
                StatusCode::CREATED,
                cmdb.create_ci(actor, &c.ci, &c.reason, now)
            )
        }
        (&Method::GET, ["v1", "cis", ci]) => {
            let ci: CiId = id(ci)?;
            let record = cmdb
                .ci(ci)
                .map_err(store)?
                .ok_or_else(|| not_found(format!("no CI {ci}")))?;
            let inventory = cmdb.latest_inventory(ci).map_err(store)?;
            let device = cmdb.latest_device_poll(ci).map_err(store)?;
            let interface_rates = device
                .as_ref()
                .filter(|d| !d.report.interface_rates.is_empty())
                .map(|d| DeviceSample::of(d.agent_id, &d.report));
            let (outgoing, incoming) = cmdb.relationships_of(ci).map_err(store)?;
            let mut open_drift = Vec::new();
            // Members of a mass change all name it: each drift once.
            let ids: std::collections::BTreeSet<DriftId> =
                record.open_drifts.values().copied().collect();
            for d in ids {
                open_drift.extend(cmdb.drift(d).map_err(store)?);
            }
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "ci": record,
                    "stale": record.is_stale(now, cmdb.policy().stale_after_ms),
                    "inventory": inventory,
                    "device": device,
                    "interface_rates": interface_rates,
                    "relationships": {"outgoing": outgoing, "incoming": incoming},
                    "open_drift": open_drift,
                }),
            )
        }
        (&Method::POST, ["v1", "cis", ci, "edit"]) => {
            need(Permission::EditCis)?;
            let ci: CiId = id(ci)?;
            let e: Edit = parse_request(r.body, "CI edit")?;
            let set: Vec<(String, Option<String>)> = e.set.into_iter().collect();
            write!(
                StatusCode::OK,
                cmdb.edit_ci(actor, ci, &set, &e.reason, now)
            )
        }
        (&Method::POST, ["v1", "cis", ci, "register"]) => {
            need(Permission::EditCis)?;
            let ci: CiId = id(ci)?;
            write!(StatusCode::OK, cmdb.register_ci(actor, ci, now))
        }
        (&Method::GET, ["v1", "cis", ci, "history"]) => {
            let ci: CiId = id(ci)?;
            json(StatusCode::OK, &cmdb.ci_history(ci).map_err(store)?)
        }
        (&Method::GET, ["v1", "cis", ci, "as-of"]) => {
            let ci: CiId = id(ci)?;
            let at = r
                .query_ms("at_ms")?
                .ok_or_else(|| bad_request("give the time as ?at_ms=<Unix milliseconds>"))?;
            let fields = cmdb.ci_as_of(ci, at).map_err(store)?.ok_or_else(|| {
                not_found(format!(
                    "{ci} did not exist at {}",
                    fathom_support::time::format_ms(at)
                ))
            })?;
            json(StatusCode::OK, &fields)
        }
        (&Method::POST, ["v1", "cis", keep, "merge"]) => {
            need(Permission::EditCis)?;
            let keep: CiId = id(keep)?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Merge {
                other: CiId,
                reason: String,
            }
            let m: Merge = parse_request(r.body, "merge")?;
            write!(
                StatusCode::OK,
                cmdb.merge_cis(actor, keep, m.other, &m.reason, now)
            )
        }
        (&Method::POST, ["v1", "cis", ci, "split"]) => {
            need(Permission::EditCis)?;
            let ci: CiId = id(ci)?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Split {
                agent: fathom_shared::ids::AgentId,
                reason: String,
            }
            let sp: Split = parse_request(r.body, "split")?;
            write!(
                StatusCode::CREATED,
                cmdb.split_ci(actor, ci, sp.agent, &sp.reason, now)
            )
        }
        (&Method::GET, ["v1", "reviews"]) => {
            let items: Vec<_> = cmdb
                .list_reviews()
                .map_err(store)?
                .into_iter()
                .filter(|i| {
                    r.query("open") != Some("true")
                        || i.status == crate::cmdb::review::ReviewStatus::Open
                })
                .collect();
            json(StatusCode::OK, &items)
        }
        (&Method::POST, ["v1", "reviews", item, "dismiss"]) => {
            need(Permission::EditCis)?;
            let item: crate::ids::ReviewId = id(item)?;
            let d: Decide = parse_request(r.body, "review decision")?;
            write!(
                StatusCode::OK,
                cmdb.dismiss_review(actor, item, &d.comment, now)
            )
        }
        (&Method::POST, ["v1", "relationships"]) => {
            need(Permission::EditCis)?;
            let rel: Relate = parse_request(r.body, "relationship")?;
            write!(
                StatusCode::OK,
                cmdb.relate(
                    actor,
                    rel.from,
                    rel.kind,
                    rel.to,
                    rel.present,
                    &rel.reason,
                    now
                )
            )
        }
        (&Method::GET, ["v1", "rfcs"]) => json(StatusCode::OK, &cmdb.list_rfcs().map_err(store)?),
        (&Method::POST, ["v1", "rfcs"]) => {
            need(Permission::RaiseRfc)?;
            let new: NewRfc = parse_request(r.body, "RFC")?;
            write!(StatusCode::CREATED, cmdb.raise_rfc(actor, &new, now))
        }
        (&Method::GET, ["v1", "rfcs", rfc]) => {
            let rfc: RfcId = id(rfc)?;
            let record = cmdb
                .rfc(rfc)
                .map_err(store)?
                .ok_or_else(|| not_found(format!("no {rfc}")))?;
            json(StatusCode::OK, &record)
        }
        (&Method::POST, ["v1", "rfcs", rfc, action]) => {
            need(Permission::DecideRfc)?;
            let rfc: RfcId = id(rfc)?;
            let d: Decide = parse_request(r.body, "RFC decision")?;
            let result = match *action {
                "assess" => {
                    cmdb.assess_rfc(actor, rfc, d.risk.unwrap_or(Level::Medium), &d.comment, now)
                }
                "approve" => cmdb.decide_rfc(actor, rfc, true, &d.comment, d.window, now),
                "reject" => cmdb.decide_rfc(actor, rfc, false, &d.comment, None, now),
                "schedule" => {
                    let w = d.window.ok_or_else(|| bad_request("give the window"))?;
                    cmdb.schedule_rfc(actor, rfc, w, now)
                }
                "implement" => cmdb.implement_rfc(actor, rfc, &d.comment, now),
                "review" => {
                    let o = d
                        .outcome
                        .ok_or_else(|| bad_request("give the outcome: successful or failed"))?;
                    cmdb.review_rfc(actor, rfc, o, &d.comment, now)
                }
                "close" => cmdb.close_rfc(actor, rfc, false, &d.comment, now),
                "cancel" => cmdb.close_rfc(actor, rfc, true, &d.comment, now),
                other => return Err(not_found(format!("no RFC action {other:?}"))),
            };
            write!(StatusCode::OK, result)
        }
        (&Method::GET, ["v1", "schedule-of-change"]) => {
            let from = r.query_ms("from_ms")?.unwrap_or(now);
            json(StatusCode::OK, &cmdb.forward_schedule(from).map_err(store)?)
        }
        (&Method::GET, ["v1", "drift"]) => {
            let drifts: Vec<_> = cmdb
                .list_drifts()
                .map_err(store)?
                .into_iter()
                .filter(|d| r.query("status").is_none_or(|s| d.status.as_str() == s))
                .filter(|d| r.query("ci").is_none_or(|c| d.ci.to_string() == c))
                .collect();
            json(StatusCode::OK, &drifts)
        }
        (&Method::GET, ["v1", "drift", drift]) => {
            let drift: DriftId = id(drift)?;
            let record = cmdb
                .drift(drift)
                .map_err(store)?
                .ok_or_else(|| not_found(format!("no {drift}")))?;
            json(StatusCode::OK, &record)
        }
        (&Method::GET, ["v1", "incidents"]) => {
            let status = r.query("status");
            let priority = r
                .query("priority")
                .map(|p| {
                    p.trim_start_matches(['P', 'p'])
                        .parse::<u8>()
                        .map_err(|_| bad_request(format!("priority {p:?}: give 1 to 4")))
                })
                .transpose()?;
            let ci: Option<CiId> = r.query("ci").map(id).transpose()?;
            let category = r.query("category");
            let incidents: Vec<_> = cmdb
                .list_incidents()
                .map_err(store)?
                .into_iter()
                .filter(|i| r.query("open") != Some("true") || i.status.is_open())
                .filter(|i| status.is_none_or(|s| i.status.as_str() == s.replace('-', "_")))
                .filter(|i| priority.is_none_or(|p| i.priority == p))
                .filter(|i| ci.is_none_or(|c| i.cis.contains(&c)))
                .filter(|i| category.is_none_or(|c| i.category == c))
                .filter(|i| r.query("overdue") != Some("true") || i.overdue(now))
                .collect();
            json(StatusCode::OK, &incidents)
        }
        (&Method::POST, ["v1", "incidents"]) => {
            need(Permission::WorkIncidents)?;
            let i: RaiseIncident = parse_request(r.body, "incident")?;
            write!(
                StatusCode::CREATED,
                cmdb.raise_incident(
                    actor,
                    &i.title,
                    &i.symptom,
                    &i.category,
                    i.impact,
                    i.urgency,
                    &i.cis,
                    now
                )
            )
        }
        (&Method::GET, ["v1", "incidents", inc]) => {
            let inc: IncidentId = id(inc)?;
            let record = cmdb
                .incident(inc)
                .map_err(store)?
                .ok_or_else(|| not_found(format!("no {inc}")))?;
            json(StatusCode::OK, &record)
        }
        (&Method::POST, ["v1", "incidents", inc, "update"]) => {
            need(Permission::WorkIncidents)?;
            let inc: IncidentId = id(inc)?;
            let u: IncidentUpdate = parse_request(r.body, "incident update")?;
            write!(StatusCode::OK, cmdb.update_incident(actor, inc, &u, now))
        }
        (&Method::GET, ["v1", "baselines"]) => {
            json(StatusCode::OK, &cmdb.list_baselines().map_err(store)?)
        }
        (&Method::POST, ["v1", "baselines"]) => {
            need(Permission::Audit)?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Take {
                name: String,
                #[serde(default)]
                description: String,
                #[serde(default)]
                targets: Vec<crate::cmdb::rfc::Target>,
            }
            let t: Take = parse_request(r.body, "baseline")?;
            write!(
                StatusCode::CREATED,
                cmdb.take_baseline(actor, &t.name, &t.description, &t.targets, now)
            )
        }
        (&Method::GET, ["v1", "baselines", name]) => {
            let b = cmdb
                .baseline(name)
                .map_err(store)?
                .ok_or_else(|| not_found(format!("no baseline named {name}")))?;
            json(StatusCode::OK, &b)
        }
        (&Method::GET, ["v1", "baselines", name, "diff"]) => {
            let d = cmdb
                .diff_baseline(name, r.query("against"))
                .map_err(action_error)?;
            json(StatusCode::OK, &d)
        }
        (&Method::GET, ["v1", "audit-report"]) => {
            let seed = r
                .query("seed")
                .map(|s| {
                    s.parse::<u64>()
                        .map_err(|_| bad_request("seed must be a number"))
                })
                .transpose()?
                .unwrap_or((now / 86_400_000) as u64);
            json(
                StatusCode::OK,
                &cmdb.audit_report(seed, now).map_err(store)?,
            )
        }
        (&Method::GET, ["v1", "audits"]) => {
            json(StatusCode::OK, &cmdb.list_audits().map_err(store)?)
        }
        (&Method::POST, ["v1", "audits"]) => {
            need(Permission::Audit)?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Record {
                #[serde(default)]
                note: String,
                seed: u64,
                #[serde(default)]
                deficiencies: Vec<crate::cmdb::audit::Deficiency>,
                #[serde(default)]
                verifications: Vec<crate::cmdb::audit::Verification>,
            }
            let a: Record = parse_request(r.body, "audit")?;
            write!(
                StatusCode::CREATED,
                cmdb.record_audit(
                    actor,
                    &a.note,
                    a.seed,
                    &a.deficiencies,
                    &a.verifications,
                    now
                )
            )
        }
        (&Method::POST, ["v1", "audits", audit, "deficiencies", index, "close"]) => {
            need(Permission::Audit)?;
            let audit: crate::ids::AuditId = id(audit)?;
            let index: usize = index
                .parse()
                .map_err(|_| bad_request(format!("{index:?} is not a deficiency number")))?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Close {
                note: String,
            }
            let c: Close = parse_request(r.body, "deficiency closure")?;
            write!(
                StatusCode::OK,
                cmdb.close_deficiency(actor, audit, index, &c.note, now)
            )
        }
        (&Method::GET, ["v1", "export"]) => json(
            StatusCode::OK,
            &cmdb.export(r.query("class")).map_err(store)?,
        ),
        (&Method::POST, ["v1", "import"]) => {
            need(Permission::EditCis)?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Import {
                document: crate::cmdb::exchange::Exchange,
                reason: String,
                #[serde(default)]
                dry_run: bool,
            }
            let i: Import = parse_request(r.body, "import")?;
            let report = cmdb
                .import(actor, &i.document, &i.reason, i.dry_run, now)
                .map_err(action_error)?;
            if !i.dry_run {
                durable(api, r.begun).await?;
            }
            json(StatusCode::OK, &report)
        }
        (&Method::GET, ["v1", "audit-trail"]) => {
            json(StatusCode::OK, &cmdb.trail_entries().map_err(store)?)
        }
        _ => return Ok(None),
    };
    Ok(Some(answer))
}
