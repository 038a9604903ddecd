//! Enrollment tokens (which admit agents) and operator tokens (who may
//! use the API, with which role).
//!
//! | method | path | permission |
//! |--------|------|------------|
//! | POST | /v1/enrollment-tokens | Administer |
//! | GET | /v1/enrollment-tokens | (read) |
//! | POST | /v1/enrollment-tokens/{id}/revoke | Administer |
//! | POST | /v1/operator-tokens | Administer |
//! | GET | /v1/operator-tokens | Administer |
//! | POST | /v1/operator-tokens/{id}/revoke | Administer |

use std::sync::Arc;

use hyper::{Method, StatusCode};

use super::{action_error, Request};
use crate::api::{
    bad_request, durable, json, now_ms, parse_request, store_error, Answer, Api, Refused,
};
use crate::cmdb::{EnrollmentTokenRecord, Permission};
use crate::store::Store;
use fathom_api::agents::{
    CreatedEnrollmentToken, CreatedOperatorToken, EnrollmentTokenView, NewEnrollmentToken,
    NewOperatorToken,
};

/// Answers a route of this resource, or `None` if the path is not one.
pub(super) async fn route<S: Store>(
    api: &Arc<Api<S>>,
    r: &Request<'_>,
) -> Result<Option<Answer>, Refused> {
    let cmdb = &api.cmdb;
    let actor = r.actor;
    let answer = match (r.method, r.segments) {
        (&Method::POST, ["v1", "enrollment-tokens"]) => {
            r.need(Permission::Administer)?;
            let request: NewEnrollmentToken = parse_request(r.body, "token request")?;
            if request.uses == 0 || request.ttl_secs == 0 {
                return Err(bad_request("ttl_secs and uses must be at least 1"));
            }
            let ttl_ms = i64::try_from(request.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            let (secret, record) = cmdb
                .issue_enrollment_token(actor, ttl_ms, request.uses, now_ms())
                .map_err(action_error)?;
            durable(api, r.begun).await?;
            tracing::info!(token_id = %record.id, uses = record.uses_total, expires_at_ms = record.expires_at_ms, "Enrollment token created");
            json(
                StatusCode::CREATED,
                &CreatedEnrollmentToken {
                    token: secret,
                    id: record.id,
                    expires_at_ms: record.expires_at_ms,
                    uses: record.uses_total,
                    collector_fingerprint: api.fingerprint.to_string(),
                },
            )
        }
        (&Method::POST, ["v1", "operator-tokens"]) => {
            r.need(Permission::Administer)?;
            let request: NewOperatorToken = parse_request(r.body, "operator token request")?;
            if request.name.trim().is_empty() || request.name.len() > 100 {
                return Err(bad_request("name must be 1 to 100 characters"));
            }
            if request.ttl_secs == Some(0) {
                return Err(bad_request("ttl_secs must be at least 1"));
            }
            let ttl_ms = request
                .ttl_secs
                .map(|t| i64::try_from(t.saturating_mul(1000)).unwrap_or(i64::MAX));
            let (secret, view) = cmdb
                .issue_operator_token(actor, &request.name, request.role, ttl_ms, now_ms())
                .map_err(action_error)?;
            durable(api, r.begun).await?;
            tracing::info!(name = %request.name, role = ?request.role, id = %view.id, "Operator token created");
            json(
                StatusCode::CREATED,
                &CreatedOperatorToken {
                    token: secret,
                    id: view.id,
                    name: request.name,
                    role: request.role,
                    expires_at_ms: view.expires_at_ms,
                },
            )
        }
        (&Method::GET, ["v1", "operator-tokens"]) => {
            r.need(Permission::Administer)?;
            json(
                StatusCode::OK,
                &cmdb.list_operator_tokens().map_err(|e| store_error(&e))?,
            )
        }
        (&Method::POST, ["v1", "operator-tokens", id, "revoke"]) => {
            r.need(Permission::Administer)?;
            let view = cmdb
                .revoke_operator_token(actor, id, now_ms())
                .map_err(action_error)?;
            durable(api, r.begun).await?;
            tracing::info!(id = %view.id, name = %view.name, "Operator token revoked");
            json(StatusCode::OK, &view)
        }
        (&Method::POST, ["v1", "enrollment-tokens", id, "revoke"]) => {
            r.need(Permission::Administer)?;
            let record = cmdb
                .revoke_enrollment_token(actor, id, now_ms())
                .map_err(action_error)?;
            durable(api, r.begun).await?;
            tracing::info!(token_id = %record.id, "Enrollment token revoked");
            json(StatusCode::OK, &enrollment_token_view(record))
        }
        (&Method::GET, ["v1", "enrollment-tokens"]) => {
            let tokens = cmdb.list_enrollment_tokens().map_err(|e| store_error(&e))?;
            let views: Vec<EnrollmentTokenView> =
                tokens.into_iter().map(enrollment_token_view).collect();
            json(StatusCode::OK, &views)
        }
        _ => return Ok(None),
    };
    Ok(Some(answer))
}

/// What the API shows of an enrollment token: never its hash.
fn enrollment_token_view(record: EnrollmentTokenRecord) -> EnrollmentTokenView {
    let EnrollmentTokenRecord {
        id,
        created_at_ms,
        expires_at_ms,
        uses_total,
        uses_left,
    } = record;
    EnrollmentTokenView {
        id,
        created_at_ms,
        expires_at_ms,
        uses_total,
        uses_left,
    }
}
