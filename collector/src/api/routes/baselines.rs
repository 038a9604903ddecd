//! Configuration baselines.
//!
//! | method | path | permission |
//! |--------|------|------------|
//! | GET | /v1/baselines | (read) |
//! | POST | /v1/baselines | Audit |
//! | GET | /v1/baselines/{name} | (read) |
//! | GET | /v1/baselines/{name}/diff?against= | (read) |
//!
//! Writes answer only once durable, like reports.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::Deserialize;

use super::{action_error, Request};
use crate::api::{json, not_found, now_ms, parse_request, store_error, Answer, Api, Refused};
use crate::cmdb::Permission;
use crate::store::Store;

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
        (&Method::GET, ["v1", "baselines"]) => {
            json(StatusCode::OK, &cmdb.list_baselines().map_err(store)?)
        }
        (&Method::POST, ["v1", "baselines"]) => {
            r.need(Permission::Audit)?;
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
            written!(
                api,
                r,
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
        _ => return Ok(None),
    };
    Ok(Some(answer))
}
