//! Incidents.
//!
//! | method | path | permission |
//! |--------|------|------------|
//! | GET | /v1/incidents | (read) |
//! | POST | /v1/incidents | WorkIncidents |
//! | GET | /v1/incidents/{id} | (read) |
//! | POST | /v1/incidents/{id}/update | WorkIncidents |
//!
//! Writes answer only once durable, like reports.

use std::sync::Arc;

use fathom_shared::ids::CiId;
use hyper::{Method, StatusCode};
use serde::Deserialize;

use super::{id, Request};
use crate::api::{
    bad_request, json, not_found, now_ms, parse_request, store_error, Answer, Api, Refused,
};
use crate::cmdb::incident::IncidentUpdate;
use crate::cmdb::Permission;
use crate::control::policy::Level;
use crate::store::Store;
use fathom_api::ids::IncidentId;

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

/// Answers a route of this resource, or `None` if the path is not one.
pub(super) async fn route<S: Store>(
    api: &Arc<Api<S>>,
    r: &Request<'_>,
) -> Result<Option<Answer>, Refused> {
    let cmdb = &api.cmdb;
    let actor = r.actor;
    let now = now_ms();
    let store = |e: crate::store::StoreError| store_error(&e);
    let answer = match (r.method, r.segments) {
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
            r.need(Permission::WorkIncidents)?;
            let i: RaiseIncident = parse_request(r.body, "incident")?;
            written!(
                api,
                r,
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
            r.need(Permission::WorkIncidents)?;
            let inc: IncidentId = id(inc)?;
            let u: IncidentUpdate = parse_request(r.body, "incident update")?;
            written!(
                api,
                r,
                StatusCode::OK,
                cmdb.update_incident(actor, inc, &u, now)
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(answer))
}
