//! The CMDB: its records, one file each, with their keys, loads and writes
//! and the operator actions on them, over any [`Store`].
//!
//! Every state change is one store transaction: a report is applied
//! wholly or not at all (`crate::reconcile`), and an operator action
//! writes its records, the CI's history and the audit trail together
//! ([`action`]). Nothing here is durable until [`Cmdb::flush`]; the API
//! acknowledges only after it (see `commit`).
//!
//! - agents, reports and roles (here), [`tokens`];
//! - [`ci`], [`relationship`], [`merge`]: CIs and how they relate;
//! - [`rfc`] and [`change`] (the RFC workflow), [`drift`], [`incident`],
//!   [`review`]: the records and their lifecycles;
//! - [`history`]: who changed what, when and why; the audit trail;
//! - [`heartbeat`], [`device`]: what discovery keeps for the features above;
//! - [`baseline`], [`audit`], [`exchange`], [`outbox`].
//!
//! This module does not know about HTTP, TLS or envelopes: it is handed
//! verified, decoded reports and authenticated operators. The rules it
//! applies are decided in [`crate::control`]; nothing here imports a
//! feature (availability, capacity) or reconciliation.

pub mod action;
pub mod audit;
pub mod baseline;
pub mod change;
pub mod ci;
pub mod device;
pub mod drift;
pub mod exchange;
pub mod heartbeat;
pub mod history;
pub mod incident;
pub mod merge;
pub mod outbox;

pub mod relationship;
pub mod review;
pub mod rfc;
pub mod tokens;

use std::convert::Infallible;

use fathom_shared::codec;
use fathom_shared::envelope::BodyKind;
use fathom_shared::ids::{AgentId, CiId};
use fathom_shared::wire::{Inventory, Metrics};

pub use ci::{CiRecord, CiSource, CiStatus, IdentifiedBy};
pub use fathom_api::agents::AgentStatus;
pub use fathom_api::auth::{Permission, Role};
pub use relationship::{RelationKind, Relationship};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::control::policy::Policy;
use crate::store::{Store, StoreError, Table, TransactionError, Tx, TxAbort};

/// An enrolled agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
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
    /// The interval between scheduled reports the agent last stated
    /// (`wire::Cadence`): when the collector expects its next heartbeat.
    #[serde(default)]
    pub heartbeat_interval_ms: Option<i64>,
    /// What the probes of its latest inventory could not read (probe: why).
    #[serde(default)]
    pub probe_errors: Vec<String>,
}

/// An enrollment token, stored under the SHA-256 of its secret: the secret
/// itself is shown once, at creation, and never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollmentTokenRecord {
    /// A short public handle for listings and audit ("which token admitted this agent").
    pub id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub uses_total: u32,
    pub uses_left: u32,
}

/// A token for the operator API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorToken {
    pub name: String,
    pub role: Role,
    pub created_at_ms: i64,
    /// After this, the token opens nothing (`--ttl`).
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
    #[serde(default)]
    pub revoked_at_ms: Option<i64>,
}

/// Counters for record ids, kept in the `meta` table and drawn inside
/// transactions, so ids are dense and a retried transaction draws again.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Ci,
    Rfc,
    Incident,
    Drift,
    Review,
    Audit,
    Trail,
    Outbox,
}

impl Counter {
    fn name(self) -> &'static [u8] {
        match self {
            Counter::Ci => b"ci",
            Counter::Rfc => b"rfc",
            Counter::Incident => b"incident",
            Counter::Drift => b"drift",
            Counter::Review => b"review",
            Counter::Audit => b"audit",
            Counter::Trail => b"trail",
            Counter::Outbox => b"outbox",
        }
    }
}

/// Draws the next number of a counter (the first is 1).
pub(crate) fn next_id<E>(tx: &dyn Tx, counter: Counter) -> Result<u64, TxAbort<E>> {
    let last = tx
        .get(Table::Meta, counter.name())?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, u64::from_be_bytes);
    let next = last + 1;
    tx.insert(Table::Meta, counter.name(), &next.to_be_bytes())?;
    Ok(next)
}

/// One accepted report, kept for replay detection and idempotence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRecord {
    pub kind: BodyKind,
    /// SHA-256 over the kind byte and the body.
    pub digest: String,
    pub received_at_ms: i64,
    #[serde(default)]
    pub ci_id: Option<CiId>,
    /// A delta recorded but not applied: its resend is answered the same
    /// way, so an agent that missed the answer still sends its full
    /// inventory.
    #[serde(default)]
    pub needs_full: bool,
}

/// The latest inventory of a CI from one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredInventory {
    pub agent_id: AgentId,
    pub seq: u64,
    pub received_at_ms: i64,
    pub inventory: Inventory,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    codec::encode(value).expect("CMDB records always encode")
}

pub(crate) fn decode<T: DeserializeOwned>(
    table: Table,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    codec::decode_trusted(bytes, table.name()).map_err(|e| StoreError::Corrupt {
        table: table.name(),
        key: hex_key(key),
        source: Box::new(e),
    })
}

/// Unwraps the result of a transaction that cannot abort.
fn never_aborts<R>(result: Result<R, TransactionError<Infallible>>) -> Result<R, StoreError> {
    result.map_err(|e| match e {
        TransactionError::Store(s) => s,
        TransactionError::Aborted(never) => match never {},
    })
}

fn hex_key(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads and decodes inside a transaction. A corrupt record inside a
/// transaction aborts the whole write: better refuse than build on garbage.
pub(crate) fn tx_get<T: DeserializeOwned, E>(
    tx: &dyn Tx,
    table: Table,
    key: &[u8],
) -> Result<Option<T>, TxAbort<E>> {
    match tx.get(table, key)? {
        None => Ok(None),
        Some(bytes) => match codec::decode_trusted(&bytes, table.name()) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                tracing::error!(table = table.name(), key = %hex_key(key), error = %e, "Corrupt record in the store");
                Ok(None)
            }
        },
    }
}

/// The CI a key begins with; a short key is a corrupt record, never a panic.
pub(crate) fn ci_of_key(table: Table, key: &[u8]) -> Result<CiId, StoreError> {
    key.get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(|b| CiId::from_u64(u64::from_be_bytes(b)))
        .ok_or_else(|| StoreError::Corrupt {
            table: table.name(),
            key: hex_key(key),
            source: "a key shorter than a CI id".into(),
        })
}

pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub(crate) fn report_key(agent: AgentId, seq: u64) -> Vec<u8> {
    let mut key = agent.as_bytes().to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub(crate) fn inventory_key(ci: CiId, agent: AgentId) -> Vec<u8> {
    let mut k = ci_key(ci).to_vec();
    k.extend_from_slice(agent.as_bytes());
    k
}

pub(crate) fn ci_key(ci: CiId) -> [u8; 8] {
    ci.as_u64().to_be_bytes()
}

pub fn report_digest(kind: BodyKind, body: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update([kind as u8])
        .chain_update(body)
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random secret with a recognisable prefix, so it stands out in a leak scan.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    format!("{prefix}_{}", hex::encode(bytes))
}

#[derive(Debug)]
pub struct Cmdb<S> {
    store: S,
    policy: Policy,
    webhooks: bool,
}

impl<S: Store> Cmdb<S> {
    pub fn new(store: S, policy: Policy) -> Cmdb<S> {
        Cmdb {
            store,
            policy,
            webhooks: false,
        }
    }

    /// Queue incident events for webhook delivery (in the same
    /// transaction as the incident).
    pub fn with_webhooks(mut self, on: bool) -> Cmdb<S> {
        self.webhooks = on;
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Whether incident events are queued for the webhook.
    pub(crate) fn webhooks(&self) -> bool {
        self.webhooks
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.store.flush()
    }

    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.store
            .get(table, key)?
            .map(|bytes| decode(table, key, &bytes))
            .transpose()
    }

    /// Writes one record.
    pub(crate) fn put<T: Serialize>(
        &self,
        table: Table,
        key: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = encode(value);
        never_aborts(
            self.store
                .transaction::<(), Infallible>(|tx| Ok(tx.insert(table, key, &bytes)?)),
        )
    }

    pub(crate) fn scan<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &[u8],
    ) -> Result<Vec<T>, StoreError> {
        self.store
            .scan_prefix(table, prefix)?
            .into_iter()
            .map(|(k, v)| decode(table, &k, &v))
            .collect()
    }

    // Tokens.

    /// Creates an enrollment token; returns the secret (shown once) and its record.
    pub fn create_enrollment_token(
        &self,
        ttl_ms: i64,
        uses: u32,
        now_ms: i64,
    ) -> Result<(String, EnrollmentTokenRecord), StoreError> {
        let (secret, record) = self.new_enrollment_token(ttl_ms, uses, now_ms);
        self.put(Table::EnrollmentTokens, &token_hash(&secret), &record)?;
        Ok((secret, record))
    }

    /// A secret and its record, not yet stored.
    pub(crate) fn new_enrollment_token(
        &self,
        ttl_ms: i64,
        uses: u32,
        now_ms: i64,
    ) -> (String, EnrollmentTokenRecord) {
        let secret = new_secret("ftk");
        // The id people see is drawn apart from the secret: it gives no
        // part of it away.
        let mut id = [0u8; 6];
        getrandom::fill(&mut id).expect("the OS provides randomness");
        let record = EnrollmentTokenRecord {
            id: hex::encode(id),
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
            uses_total: uses,
            uses_left: uses,
        };
        (secret, record)
    }

    pub fn list_enrollment_tokens(&self) -> Result<Vec<EnrollmentTokenRecord>, StoreError> {
        let mut tokens: Vec<EnrollmentTokenRecord> = self.scan(Table::EnrollmentTokens, b"")?;
        tokens.sort_by_key(|t| t.created_at_ms);
        Ok(tokens)
    }

    pub fn create_operator_token(
        &self,
        name: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        let secret = new_secret("fop");
        self.add_operator_token(&secret, name, role, now_ms)?;
        Ok(secret)
    }

    /// Stores an operator token whose secret the caller made (and has
    /// already kept where its user will find it).
    pub fn add_operator_token(
        &self,
        secret: &str,
        name: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let record = OperatorToken {
            name: name.to_owned(),
            role,
            created_at_ms: now_ms,
            expires_at_ms: None,
            revoked_at_ms: None,
        };
        self.put(Table::OperatorTokens, &token_hash(secret), &record)
    }

    pub fn operator_token(&self, secret: &str) -> Result<Option<OperatorToken>, StoreError> {
        self.get(Table::OperatorTokens, &token_hash(secret))
    }

    pub fn has_operator_tokens(&self) -> Result<bool, StoreError> {
        Ok(self.store.count(Table::OperatorTokens)? > 0)
    }

    // Agents.

    pub fn agent(&self, id: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        self.get(Table::Agents, id.as_bytes())
    }

    pub fn list_agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        let mut agents: Vec<AgentRecord> = self.scan(Table::Agents, b"")?;
        agents.sort_by_key(|a| a.enrolled_at_ms);
        Ok(agents)
    }

    // CIs.

    pub fn ci(&self, id: CiId) -> Result<Option<CiRecord>, StoreError> {
        self.get(Table::Cis, &ci_key(id))
    }

    pub fn list_cis(&self) -> Result<Vec<CiRecord>, StoreError> {
        self.scan(Table::Cis, b"")
    }

    /// The newest inventory among the agents reporting for a CI.
    pub fn latest_inventory(&self, id: CiId) -> Result<Option<StoredInventory>, StoreError> {
        Ok(self
            .inventories(id)?
            .into_iter()
            .max_by_key(|i| i.received_at_ms))
    }

    /// The discovered state per source: each agent's latest inventory.
    pub fn inventories(&self, id: CiId) -> Result<Vec<StoredInventory>, StoreError> {
        self.scan(Table::Inventories, &ci_key(id))
    }

    /// The latest poll of a network device CI, by whichever agent.
    pub fn latest_device_poll(
        &self,
        id: CiId,
    ) -> Result<Option<device::StoredDeviceReport>, StoreError> {
        let polls: Vec<device::StoredDeviceReport> = self.scan(Table::Devices, &ci_key(id))?;
        Ok(polls.into_iter().max_by_key(|p| p.received_at_ms))
    }

    /// A network device's interface rates, one sample per poll, oldest
    /// first.
    pub fn device_samples(&self, id: CiId) -> Result<Vec<device::DeviceSample>, StoreError> {
        self.scan(Table::DeviceMetrics, &ci_key(id))
    }

    /// Every stored metrics sample of an agent, oldest first.
    pub fn metrics_of(&self, agent: AgentId) -> Result<Vec<Metrics>, StoreError> {
        self.scan(Table::Metrics, agent.as_bytes())
    }

    // Reports.

    /// Removes the records of reports received before `before_ms`, keeping
    /// each agent's newest; returns how many went. A record answers an
    /// agent resending a report it never saw acknowledged; past this
    /// retention, such a resend is refused as a replay (it was stored).
    pub fn expire_report_records(&self, before_ms: i64) -> Result<usize, StoreError> {
        // Records are in time order per agent, so a run that finds nothing
        // to expire reads one small batch per agent, not its whole week.
        const BATCH: usize = 256;
        let mut removed = 0;
        for agent in self.list_agents()? {
            let prefix = agent.agent_id.as_bytes().to_vec();
            loop {
                let entries = self.store.scan_from(Table::Reports, &prefix, BATCH)?;
                let mut old = Vec::new();
                let mut more = entries.len() == BATCH;
                for (key, value) in &entries {
                    let seq = key
                        .strip_prefix(prefix.as_slice())
                        .and_then(|s| <[u8; 8]>::try_from(s).ok())
                        .map(u64::from_be_bytes);
                    // Another agent's, or this agent's newest: done.
                    if seq.is_none_or(|s| s >= agent.last_seq) {
                        more = false;
                        break;
                    }
                    let record: ReportRecord = decode(Table::Reports, key, value)?;
                    if record.received_at_ms >= before_ms {
                        more = false;
                        break;
                    }
                    old.push(key.clone());
                }
                if !old.is_empty() {
                    let result =
                        self.store
                            .transaction_on::<(), StoreError>(&[Table::Reports], |tx| {
                                for key in &old {
                                    tx.remove(Table::Reports, key)?;
                                }
                                Ok(())
                            });
                    if let Err(TransactionError::Store(e) | TransactionError::Aborted(e)) = result {
                        return Err(e);
                    }
                    removed += old.len();
                }
                if !more || old.is_empty() {
                    break;
                }
            }
        }
        Ok(removed)
    }

    /// Number of reports stored for an agent (for audits and tests).
    pub fn report_count(&self, agent: AgentId) -> Result<usize, StoreError> {
        Ok(self
            .store
            .scan_prefix(Table::Reports, agent.as_bytes())?
            .len())
    }
}
