//! Outages and availability reports.
//!
//! | method | path | permission |
//! |--------|------|------------|
//! | GET | /v1/outages?ci=&open= | (read) |
//! | GET | /v1/availability?ci=&from_ms=&to_ms= | (read) |

use std::sync::Arc;

use fathom_shared::ids::CiId;
use hyper::{Method, StatusCode};

use super::Request;
use crate::api::{bad_request, json, not_found, now_ms, refuse, Answer, Api, Refused};
use crate::store::Store;

/// Answers a route of this resource, or `None` if the path is not one.
pub(super) async fn route<S: Store>(
    api: &Arc<Api<S>>,
    r: &Request<'_>,
) -> Result<Option<Answer>, Refused> {
    let ci = || -> Result<CiId, Refused> {
        let text = r
            .query("ci")
            .ok_or_else(|| bad_request("query parameter ci is required"))?;
        text.parse()
            .map_err(|e| bad_request(format!("query parameter ci: {e}")))
    };
    let answer = match (r.method, r.segments) {
        (&Method::GET, ["v1", "outages"]) => {
            let ci = r.query("ci").map(|_| ci()).transpose()?;
            let mut outages = api
                .cmdb
                .outages(ci)
                .map_err(|e| crate::api::store_error(&e))?;
            if r.query("open") == Some("true") {
                outages.retain(|o| o.end_ms.is_none());
            }
            json(StatusCode::OK, &outages)
        }
        (&Method::GET, ["v1", "availability"]) => {
            use crate::availability::report::ReportError;
            let ci = ci()?;
            let to_ms = r.query_ms("to_ms")?.unwrap_or_else(now_ms);
            let from_ms = r.query_ms("from_ms")?.unwrap_or(to_ms - 30 * 86_400_000);
            if from_ms >= to_ms {
                return Err(bad_request("from_ms must be before to_ms"));
            }
            let report = api
                .cmdb
                .availability_report(ci, from_ms, to_ms)
                .map_err(|e| match e {
                    ReportError::NotFound(_) => not_found(e.to_string()),
                    ReportError::Attribute { .. } => refuse(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "bad_service_attribute",
                        e.to_string(),
                    ),
                    ReportError::Store(s) => crate::api::store_error(&s),
                })?;
            json(StatusCode::OK, &report)
        }
        _ => return Ok(None),
    };
    Ok(Some(answer))
}
