//! Drift records.
//!
//! | method | path | permission |
//! |--------|------|------------|
//! | GET | /v1/drift | (read) |
//! | GET | /v1/drift/{id} | (read) |
//!
//! Writes answer only once durable, like reports.

use std::sync::Arc;

use hyper::{Method, StatusCode};

use super::{id, Request};
use crate::api::{json, not_found, store_error, Answer, Api, Refused};
use crate::store::Store;
use fathom_api::ids::DriftId;

/// Answers a route of this resource, or `None` if the path is not one.
pub(super) async fn route<S: Store>(
    api: &Arc<Api<S>>,
    r: &Request<'_>,
) -> Result<Option<Answer>, Refused> {
    let cmdb = &api.cmdb;
    let store = |e: crate::store::StoreError| store_error(&e);
    let answer = match (r.method, r.segments) {
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
        _ => return Ok(None),
    };
    Ok(Some(answer))
}
