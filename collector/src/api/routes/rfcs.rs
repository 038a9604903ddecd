//! Requests for change and the schedule of change.
//!
//! | method | path | permission |
//! |--------|------|------------|
//! | GET | /v1/rfcs | (read) |
//! | POST | /v1/rfcs | RaiseRfc |
//! | GET | /v1/rfcs/{id} | (read) |
//! | POST | /v1/rfcs/{id}/{assess,approve,reject,schedule,implement,review,close,cancel} | DecideRfc |
//! | GET | /v1/schedule-of-change?from_ms= | (read) |
//!
//! Writes answer only once durable, like reports.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::Deserialize;

use super::{id, Request};
use crate::api::{
    bad_request, json, not_found, now_ms, parse_request, store_error, Answer, Api, Refused,
};
use crate::cmdb::rfc::{NewRfc, ReviewOutcome, Window};
use crate::cmdb::Permission;
use crate::control::policy::Level;
use crate::store::Store;
use fathom_api::ids::RfcId;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Decide {
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub window: Option<Window>,
    #[serde(default)]
    pub risk: Option<Level>,
    #[serde(default)]
    pub outcome: Option<ReviewOutcome>,
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
        (&Method::GET, ["v1", "rfcs"]) => json(StatusCode::OK, &cmdb.list_rfcs().map_err(store)?),
        (&Method::POST, ["v1", "rfcs"]) => {
            r.need(Permission::RaiseRfc)?;
            let new: NewRfc = parse_request(r.body, "RFC")?;
            written!(
                api,
                r,
                StatusCode::CREATED,
                cmdb.raise_rfc(actor, &new, now)
            )
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
            r.need(Permission::DecideRfc)?;
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
            written!(api, r, StatusCode::OK, result)
        }
        (&Method::GET, ["v1", "schedule-of-change"]) => {
            let from = r.query_ms("from_ms")?.unwrap_or(now);
            json(StatusCode::OK, &cmdb.forward_schedule(from).map_err(store)?)
        }
        _ => return Ok(None),
    };
    Ok(Some(answer))
}
