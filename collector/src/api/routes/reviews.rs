//! The identification review queue.
//!
//! | method | path | permission |
//! |--------|------|------------|
//! | GET | /v1/reviews | (read) |
//! | POST | /v1/reviews/{id}/dismiss | EditCis |
//!
//! Writes answer only once durable, like reports.

use std::sync::Arc;

use hyper::{Method, StatusCode};

use super::rfcs::Decide;
use super::{id, Request};
use crate::api::{json, now_ms, parse_request, store_error, Answer, Api, Refused};
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
            r.need(Permission::EditCis)?;
            let item: fathom_api::ids::ReviewId = id(item)?;
            let d: Decide = parse_request(r.body, "review decision")?;
            written!(
                api,
                r,
                StatusCode::OK,
                cmdb.dismiss_review(actor, item, &d.comment, now)
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(answer))
}
