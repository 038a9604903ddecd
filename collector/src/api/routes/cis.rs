//! CIs, their history and relationships, and the CI classes.
//!
//! | method | path | permission |
//! |--------|------|------------|
//! | GET | /v1/classes | (read) |
//! | GET | /v1/cis | (read) |
//! | GET | /v1/cmdb-as-of?at_ms= | (read) |
//! | POST | /v1/cis | EditCis |
//! | GET | /v1/cis/{id} | (read) |
//! | POST | /v1/cis/{id}/edit | EditCis |
//! | POST | /v1/cis/{id}/register | EditCis |
//! | GET | /v1/cis/{id}/history | (read) |
//! | GET | /v1/cis/{id}/as-of?at_ms= | (read) |
//! | POST | /v1/cis/{id}/merge | EditCis |
//! | POST | /v1/cis/{id}/split | EditCis |
//! | POST | /v1/relationships | EditCis |
//!
//! Writes answer only once durable, like reports.

use std::collections::BTreeMap;
use std::sync::Arc;

use fathom_shared::ids::CiId;
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::{id, Request};
use crate::api::{
    bad_request, json, not_found, now_ms, parse_request, store_error, Answer, Api, Refused,
};
use crate::cmdb::ci::{CiRecord, NewCi};
use crate::cmdb::device::DeviceSample;
use crate::cmdb::relationship::RelationKind;
use crate::cmdb::Permission;
use crate::store::Store;
use fathom_api::ids::DriftId;

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

/// Answers a route of this resource, or `None` if the path is not one.
pub(super) async fn route<S: Store>(
    api: &Arc<Api<S>>,
    r: &Request<'_>,
) -> Result<Option<Answer>, Refused> {
    if r.method == Method::POST {
        write(api, r).await
    } else {
        read(api, r)
    }
}

/// CIs, their history, the CMDB as of a time, the classes.
fn read<S: Store>(api: &Arc<Api<S>>, r: &Request<'_>) -> Result<Option<Answer>, Refused> {
    let cmdb = &api.cmdb;
    let now = now_ms();
    let store = |e: crate::store::StoreError| store_error(&e);
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
        _ => return Ok(None),
    };
    Ok(Some(answer))
}

/// Creating, editing, registering, merging and splitting CIs; relating them.
async fn write<S: Store>(api: &Arc<Api<S>>, r: &Request<'_>) -> Result<Option<Answer>, Refused> {
    let cmdb = &api.cmdb;
    let actor = r.actor;
    let now = now_ms();
    let answer = match (r.method, r.segments) {
        (&Method::POST, ["v1", "cis"]) => {
            r.need(Permission::EditCis)?;
            let c: Create = parse_request(r.body, "CI")?;
            written!(
                api,
                r,
                StatusCode::CREATED,
                cmdb.create_ci(actor, &c.ci, &c.reason, now)
            )
        }
        (&Method::POST, ["v1", "cis", ci, "edit"]) => {
            r.need(Permission::EditCis)?;
            let ci: CiId = id(ci)?;
            let e: Edit = parse_request(r.body, "CI edit")?;
            let set: Vec<(String, Option<String>)> = e.set.into_iter().collect();
            written!(
                api,
                r,
                StatusCode::OK,
                cmdb.edit_ci(actor, ci, &set, &e.reason, now)
            )
        }
        (&Method::POST, ["v1", "cis", ci, "register"]) => {
            r.need(Permission::EditCis)?;
            let ci: CiId = id(ci)?;
            written!(api, r, StatusCode::OK, cmdb.register_ci(actor, ci, now))
        }
        (&Method::POST, ["v1", "cis", keep, "merge"]) => {
            r.need(Permission::EditCis)?;
            let keep: CiId = id(keep)?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Merge {
                other: CiId,
                reason: String,
            }
            let m: Merge = parse_request(r.body, "merge")?;
            written!(
                api,
                r,
                StatusCode::OK,
                cmdb.merge_cis(actor, keep, m.other, &m.reason, now)
            )
        }
        (&Method::POST, ["v1", "cis", ci, "split"]) => {
            r.need(Permission::EditCis)?;
            let ci: CiId = id(ci)?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Split {
                agent: fathom_shared::ids::AgentId,
                reason: String,
            }
            let sp: Split = parse_request(r.body, "split")?;
            written!(
                api,
                r,
                StatusCode::CREATED,
                cmdb.split_ci(actor, ci, sp.agent, &sp.reason, now)
            )
        }
        (&Method::POST, ["v1", "relationships"]) => {
            r.need(Permission::EditCis)?;
            let rel: Relate = parse_request(r.body, "relationship")?;
            written!(
                api,
                r,
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
        _ => return Ok(None),
    };
    Ok(Some(answer))
}
