//! Enrolled agents, enrollment tokens (which admit agents) and operator
//! tokens (which open this API). Secrets are answered once, at creation,
//! and never again.

use fathom_shared::ids::{AgentId, CiId};
use serde::{Deserialize, Serialize};

use crate::auth::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    Revoked,
}

/// An enrolled agent (`GET /v1/agents`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub agent_id: AgentId,
    /// Hex of the ed25519 public key the agent signs with.
    pub public_key: String,
    /// What the agent called its host at enrollment; informational only.
    pub hostname: String,
    pub agent_version: String,
    pub enrolled_at_ms: i64,
    /// Which enrollment token admitted it.
    pub token_id: String,
    pub status: AgentStatus,
    #[serde(default)]
    pub revoked_at_ms: Option<i64>,
    pub last_seq: u64,
    pub last_seen_ms: i64,
    pub reports_received: u64,
    #[serde(default)]
    pub ci_id: Option<CiId>,
    /// The interval between scheduled reports the agent last stated: when
    /// the collector expects its next heartbeat.
    #[serde(default)]
    pub heartbeat_interval_ms: Option<i64>,
    /// What the probes of its latest inventory could not read (probe: why).
    #[serde(default)]
    pub probe_errors: Vec<String>,
}

/// An enrollment token as listings show it (`GET /v1/enrollment-tokens`):
/// never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentTokenView {
    /// A short public handle ("which token admitted this agent").
    pub id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub uses_total: u32,
    pub uses_left: u32,
}

/// `POST /v1/enrollment-tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEnrollmentToken {
    /// At least 1.
    pub ttl_secs: u64,
    /// How many agents it admits; at least 1.
    pub uses: u32,
}

/// The answer to `POST /v1/enrollment-tokens`: the secret, this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedEnrollmentToken {
    pub token: String,
    pub id: String,
    pub expires_at_ms: i64,
    pub uses: u32,
    /// What agents pin (`collector_fingerprint` in `agent.toml`).
    pub collector_fingerprint: String,
}

/// An operator token as listings show it (`GET /v1/operator-tokens`):
/// never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorTokenView {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

/// `POST /v1/operator-tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOperatorToken {
    /// 1 to 100 characters.
    pub name: String,
    pub role: Role,
    /// No expiry when absent; at least 1.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// The answer to `POST /v1/operator-tokens`: the secret, this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedOperatorToken {
    pub token: String,
    pub id: String,
    pub name: String,
    pub role: Role,
    pub expires_at_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_fields_they_do_not_know() {
        let err = serde_json::from_str::<NewEnrollmentToken>(
            r#"{"ttl_secs": 60, "uses": 1, "admin": true}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `admin`"), "{err}");
        let new: NewOperatorToken =
            serde_json::from_str(r#"{"name": "ci", "role": "change-manager"}"#).unwrap();
        assert_eq!((new.role, new.ttl_secs), (Role::ChangeManager, None));
    }

    /// The answer to a token request names exactly these fields: what
    /// clients (and the agent's configuration) read.
    #[test]
    fn a_created_token_answers_its_documented_fields() {
        let created = CreatedEnrollmentToken {
            token: "fet_x".into(),
            id: "t1".into(),
            expires_at_ms: 1,
            uses: 2,
            collector_fingerprint: "sha256:ab".into(),
        };
        let value = serde_json::to_value(&created).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "collector_fingerprint",
                "expires_at_ms",
                "id",
                "token",
                "uses"
            ]
        );
    }
}
