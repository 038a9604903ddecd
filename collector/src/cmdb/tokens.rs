//! Who may talk to the collector: enrollment tokens (which admit agents)
//! and operator tokens (which open the API), as people manage them. Every
//! creation and revocation, and every agent revoked, is in the audit trail,
//! written in the same transaction as the change.
//!
//! Secrets are shown once and never stored: records are kept under the
//! SHA-256 of the secret, and an operator token is named by the first
//! twelve hex digits of that hash, which give nothing of the secret away.

use fathom_shared::ids::AgentId;

use super::action::{trail_entry, ActionError};
use super::history::Actor;
use super::{
    encode, new_secret, token_hash, tx_get, AgentRecord, AgentStatus, Cmdb, EnrollmentTokenRecord,
    OperatorToken, Role,
};
use crate::store::{Store, StoreError, Table, TxAbort};

pub use fathom_api::agents::OperatorTokenView;

/// Why an operator token does not open the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Valid,
    Expired,
    Revoked,
}

impl OperatorToken {
    pub fn state(&self, now_ms: i64) -> TokenState {
        if self.revoked_at_ms.is_some() {
            TokenState::Revoked
        } else if self.expires_at_ms.is_some_and(|e| now_ms >= e) {
            TokenState::Expired
        } else {
            TokenState::Valid
        }
    }
}

/// The public name of the token stored under `hash`.
fn operator_id(hash: &[u8]) -> String {
    hex::encode(&hash[..hash.len().min(6)])
}

fn abort<T>(e: ActionError) -> Result<T, TxAbort<ActionError>> {
    Err(TxAbort::Abort(e))
}

impl<S: Store> Cmdb<S> {
    /// A new enrollment token, created by `by`: (secret, record).
    pub fn issue_enrollment_token(
        &self,
        by: &Actor,
        ttl_ms: i64,
        uses: u32,
        now_ms: i64,
    ) -> Result<(String, EnrollmentTokenRecord), ActionError> {
        let (secret, record) = self.new_enrollment_token(ttl_ms, uses, now_ms);
        self.act_on(|tx| {
            tx.insert(
                Table::EnrollmentTokens,
                &token_hash(&secret),
                &encode(&record),
            )?;
            trail_entry(
                tx,
                now_ms,
                by,
                "token.create",
                record.id.clone(),
                format!(
                    "{uses} use(s), expires {}",
                    fathom_support::time::format_ms(record.expires_at_ms)
                ),
            )?;
            Ok(())
        })?;
        Ok((secret, record))
    }

    /// Ends an enrollment token (by its id): no agent enrolls with it again.
    pub fn revoke_enrollment_token(
        &self,
        by: &Actor,
        id: &str,
        now_ms: i64,
    ) -> Result<EnrollmentTokenRecord, ActionError> {
        let found = self
            .store
            .scan_prefix(Table::EnrollmentTokens, b"")?
            .into_iter()
            .find_map(|(key, value)| {
                let record: EnrollmentTokenRecord =
                    super::decode(Table::EnrollmentTokens, &key, &value).ok()?;
                (record.id == id).then_some(key)
            });
        let Some(key) = found else {
            return Err(ActionError::NotFound(format!("no enrollment token {id}")));
        };
        self.act_on(|tx| {
            let Some(mut record) =
                tx_get::<EnrollmentTokenRecord, _>(tx, Table::EnrollmentTokens, &key)?
            else {
                return abort(ActionError::NotFound(format!("no enrollment token {id}")));
            };
            let left = record.uses_left;
            record.uses_left = 0;
            record.expires_at_ms = record.expires_at_ms.min(now_ms);
            tx.insert(Table::EnrollmentTokens, &key, &encode(&record))?;
            trail_entry(
                tx,
                now_ms,
                by,
                "token.revoke",
                id.to_owned(),
                format!("{left} use(s) left"),
            )?;
            Ok(record)
        })
    }

    /// A new operator token for `name` with `role`, valid for `ttl_ms` if
    /// given: (secret, its listing).
    pub fn issue_operator_token(
        &self,
        by: &Actor,
        name: &str,
        role: Role,
        ttl_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(String, OperatorTokenView), ActionError> {
        let secret = new_secret("fop");
        let hash = token_hash(&secret);
        let record = OperatorToken {
            name: name.to_owned(),
            role,
            created_at_ms: now_ms,
            expires_at_ms: ttl_ms.map(|t| now_ms.saturating_add(t)),
            revoked_at_ms: None,
        };
        let id = operator_id(&hash);
        self.act_on(|tx| {
            tx.insert(Table::OperatorTokens, &hash, &encode(&record))?;
            trail_entry(
                tx,
                now_ms,
                by,
                "operator_token.create",
                id.clone(),
                format!(
                    "{name}, role {}{}",
                    role.as_str(),
                    record
                        .expires_at_ms
                        .map(|e| format!(", expires {}", fathom_support::time::format_ms(e)))
                        .unwrap_or_default()
                ),
            )?;
            Ok(())
        })?;
        Ok((secret, view(&hash, record)))
    }

    /// Every operator token, oldest first, without secrets.
    pub fn list_operator_tokens(&self) -> Result<Vec<OperatorTokenView>, StoreError> {
        let mut out = Vec::new();
        for (key, value) in self.store.scan_prefix(Table::OperatorTokens, b"")? {
            let record: OperatorToken = super::decode(Table::OperatorTokens, &key, &value)?;
            out.push(view(&key, record));
        }
        out.sort_by_key(|t| t.created_at_ms);
        Ok(out)
    }

    /// Revokes the operator token named `id`. The last valid admin token
    /// is kept: without one, nobody could administer the collector.
    pub fn revoke_operator_token(
        &self,
        by: &Actor,
        id: &str,
        now_ms: i64,
    ) -> Result<OperatorTokenView, ActionError> {
        let all: Vec<(Vec<u8>, OperatorToken)> = self
            .store
            .scan_prefix(Table::OperatorTokens, b"")?
            .into_iter()
            .filter_map(|(k, v)| {
                let t: OperatorToken = super::decode(Table::OperatorTokens, &k, &v).ok()?;
                Some((k, t))
            })
            .collect();
        let Some((key, _)) = all.iter().find(|(k, _)| operator_id(k) == id) else {
            return Err(ActionError::NotFound(format!(
                "no operator token {id} (see `fathom operator-token list`)"
            )));
        };
        let admins = all
            .iter()
            .filter(|(k, t)| {
                t.role == Role::Admin
                    && t.state(now_ms) == TokenState::Valid
                    && operator_id(k) != id
            })
            .count();
        let key = key.clone();
        self.act_on(|tx| {
            let Some(mut record) = tx_get::<OperatorToken, _>(tx, Table::OperatorTokens, &key)? else {
                return abort(ActionError::NotFound(format!("no operator token {id}")));
            };
            if record.revoked_at_ms.is_some() {
                return abort(ActionError::Conflict(format!("operator token {id} is revoked already")));
            }
            if record.role == Role::Admin && admins == 0 {
                return abort(ActionError::Conflict(format!(
                    "operator token {id} is the last valid admin token; create another admin token first"
                )));
            }
            record.revoked_at_ms = Some(now_ms);
            tx.insert(Table::OperatorTokens, &key, &encode(&record))?;
            trail_entry(
                tx,
                now_ms,
                by,
                "operator_token.revoke",
                id.to_owned(),
                format!("{}, role {}", record.name, record.role.as_str()),
            )?;
            Ok(view(&key, record))
        })
    }

    /// Refuses every further report from an agent, recorded in the trail.
    pub fn revoke_agent(
        &self,
        by: &Actor,
        id: AgentId,
        now_ms: i64,
    ) -> Result<AgentRecord, ActionError> {
        self.act_on(|tx| {
            let Some(mut agent) = tx_get::<AgentRecord, _>(tx, Table::Agents, id.as_bytes())?
            else {
                return abort(ActionError::NotFound(format!("no agent {id}")));
            };
            if agent.status != AgentStatus::Revoked {
                agent.status = AgentStatus::Revoked;
                agent.revoked_at_ms = Some(now_ms);
                tx.insert(Table::Agents, id.as_bytes(), &encode(&agent))?;
                trail_entry(
                    tx,
                    now_ms,
                    by,
                    "agent.revoke",
                    id.to_string(),
                    format!(
                        "{} ({})",
                        agent.hostname,
                        agent.ci_id.map_or("no CI".into(), |c| c.to_string())
                    ),
                )?;
            }
            Ok(agent)
        })
    }
}

fn view(hash: &[u8], t: OperatorToken) -> OperatorTokenView {
    OperatorTokenView {
        id: operator_id(hash),
        name: t.name,
        role: t.role,
        created_at_ms: t.created_at_ms,
        expires_at_ms: t.expires_at_ms,
        revoked_at_ms: t.revoked_at_ms,
    }
}
