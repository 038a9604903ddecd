//! Import and export of CIs and relationships.
//!
//! | method | path | permission |
//! |--------|------|------------|
//! | GET | /v1/export?class= | (read) |
//! | POST | /v1/import | EditCis |
//!
//! Writes answer only once durable, like reports.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::Deserialize;

use super::{action_error, Request};
use crate::api::{durable, json, now_ms, parse_request, store_error, Answer, Api, Refused};
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
        (&Method::GET, ["v1", "export"]) => json(
            StatusCode::OK,
            &cmdb.export(r.query("class")).map_err(store)?,
        ),
        (&Method::POST, ["v1", "import"]) => {
            r.need(Permission::EditCis)?;
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
        _ => return Ok(None),
    };
    Ok(Some(answer))
}
