//! Configuration audits and the audit trail.
//!
//! | method | path | permission |
//! |--------|------|------------|
//! | GET | /v1/audit-report?seed= | (read) |
//! | GET | /v1/audits | (read) |
//! | POST | /v1/audits | Audit |
//! | POST | /v1/audits/{id}/deficiencies/{n}/close | Audit |
//! | GET | /v1/audit-trail | (read) |
//!
//! Writes answer only once durable, like reports.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::Deserialize;

use super::{id, Request};
use crate::api::{bad_request, json, now_ms, parse_request, store_error, Answer, Api, Refused};
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
            r.need(Permission::Audit)?;
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
            written!(
                api,
                r,
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
            r.need(Permission::Audit)?;
            let audit: fathom_api::ids::AuditId = id(audit)?;
            let index: usize = index
                .parse()
                .map_err(|_| bad_request(format!("{index:?} is not a deficiency number")))?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Close {
                note: String,
            }
            let c: Close = parse_request(r.body, "deficiency closure")?;
            written!(
                api,
                r,
                StatusCode::OK,
                cmdb.close_deficiency(actor, audit, index, &c.note, now)
            )
        }
        (&Method::GET, ["v1", "audit-trail"]) => {
            json(StatusCode::OK, &cmdb.trail_entries().map_err(store)?)
        }
        _ => return Ok(None),
    };
    Ok(Some(answer))
}
