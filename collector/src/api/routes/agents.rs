//! Enrolled agents.
//!
//! | method | path | permission |
//! |--------|------|------------|
//! | GET | /v1/agents | (read) |
//! | POST | /v1/agents/{id}/revoke | Administer |

use std::sync::Arc;

use fathom_shared::ids::AgentId;
use hyper::{Method, StatusCode};

use super::{action_error, Request};
use crate::api::{bad_request, durable, json, now_ms, store_error, Answer, Api, Refused};
use crate::cmdb::{AgentRecord, Permission};
use crate::store::Store;
use fathom_api::agents::AgentView;

/// Answers a route of this resource, or `None` if the path is not one.
pub(super) async fn route<S: Store>(
    api: &Arc<Api<S>>,
    r: &Request<'_>,
) -> Result<Option<Answer>, Refused> {
    let cmdb = &api.cmdb;
    let actor = r.actor;
    let answer = match (r.method, r.segments) {
        (&Method::GET, ["v1", "agents"]) => {
            let agents = cmdb.list_agents().map_err(|e| store_error(&e))?;
            let views: Vec<AgentView> = agents.into_iter().map(agent_view).collect();
            json(StatusCode::OK, &views)
        }
        (&Method::POST, ["v1", "agents", id, "revoke"]) => {
            r.need(Permission::Administer)?;
            let id: AgentId = id.parse().map_err(|e| bad_request(format!("{e}")))?;
            let agent = cmdb
                .revoke_agent(actor, id, now_ms())
                .map_err(action_error)?;
            durable(api, r.begun).await?;
            tracing::info!(agent_id = %id, "Agent revoked");
            json(StatusCode::OK, &agent_view(agent))
        }
        _ => return Ok(None),
    };
    Ok(Some(answer))
}

/// What the API shows of an agent's record.
fn agent_view(record: AgentRecord) -> AgentView {
    let AgentRecord {
        agent_id,
        public_key,
        hostname,
        agent_version,
        enrolled_at_ms,
        token_id,
        status,
        revoked_at_ms,
        last_seq,
        last_seen_ms,
        reports_received,
        ci_id,
        heartbeat_interval_ms,
        probe_errors,
    } = record;
    AgentView {
        agent_id,
        public_key,
        hostname,
        agent_version,
        enrolled_at_ms,
        token_id,
        status,
        revoked_at_ms,
        last_seq,
        last_seen_ms,
        reports_received,
        ci_id,
        heartbeat_interval_ms,
        probe_errors,
    }
}
