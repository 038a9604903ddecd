//! The CMDB: agents, enrollment and operator tokens, configuration items,
//! their history and relationships, requests for change, drift and
//! incidents, over any [`Store`].
//!
//! Every state change is one store transaction, so a report is either wholly
//! applied (report log, agent counters, CI, inventory, reconciliation:
//! drift, incident, RFC evidence) or not at all. Nothing here is durable
//! until [`Cmdb::flush`]; the API acknowledges only after it (see `commit`).
//!
//! - [`ci`]: the CI record and relationships;
//! - [`identify`]: which CI a report is about;
//! - [`reconcile`]: discovered vs authorized state, inside the report's transaction;
//! - [`rfc`], [`incident`], [`drift`]: the records and their lifecycles;
//! - [`history`]: who changed what, when and why; the audit trail;
//! - [`control`](self::control): operator actions (RFC decisions, CI edits…).
//!
//! This module does not know about HTTP, TLS or envelopes: it is handed
//! verified, decoded reports and authenticated operators. The rules it
//! applies are decided in [`crate::control`].

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
pub mod identify;
pub mod incident;
pub mod merge;
pub mod outbox;

pub mod reconcile;
pub mod relationship;
pub mod review;
pub mod rfc;
pub mod tokens;

use std::convert::Infallible;

use fathom_shared::codec;
use fathom_shared::envelope::BodyKind;
use fathom_shared::ids::{AgentId, CiId};
use fathom_shared::wire::{
    AckOutcome, DeviceReport, Enrollment, Inventory, InventoryDelta, Metrics,
};

pub use ci::{CiRecord, CiSource, CiStatus, IdentifiedBy};
pub use relationship::{RelationKind, Relationship};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::control::policy::Policy;
use crate::store::{Store, StoreError, Table, TransactionError, Tx, TxAbort};
use reconcile::Sighting;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    Revoked,
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

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Keeps CI records: creates, edits, registers, relates, merges and
    /// imports CIs; takes baselines and audits; raises RFCs.
    #[value(name = "configuration_manager", alias = "configuration-manager")]
    #[serde(alias = "configuration-manager")]
    ConfigurationManager,
    /// Controls change: raises, assesses, approves, rejects, schedules and
    /// reviews RFCs; works incidents.
    #[value(name = "change_manager", alias = "change-manager")]
    #[serde(alias = "change-manager")]
    ChangeManager,
    /// Everything, including tokens and revoking agents.
    Admin,
}

/// What a role may do. Reading needs no permission beyond a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Edit CIs, relationships and registrations; import; merge and split.
    EditCis,
    /// Take baselines, record audits.
    Audit,
    /// Raise an RFC.
    RaiseRfc,
    /// Assess, approve, reject, schedule, implement, review, close RFCs.
    DecideRfc,
    /// Update incidents.
    WorkIncidents,
    /// Tokens and agents.
    Administer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::ConfigurationManager => "configuration_manager",
            Role::ChangeManager => "change_manager",
            Role::Admin => "admin",
        }
    }

    pub const ALL: [Role; 4] = [
        Role::Viewer,
        Role::ConfigurationManager,
        Role::ChangeManager,
        Role::Admin,
    ];

    pub fn may(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Viewer => false,
            Role::ConfigurationManager => matches!(p, EditCis | Audit | RaiseRfc | WorkIncidents),
            Role::ChangeManager => matches!(p, RaiseRfc | DecideRfc | WorkIncidents),
        }
    }
}

impl Permission {
    /// What it allows, for refusals.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::EditCis => "change CI records",
            Permission::Audit => "take baselines and record audits",
            Permission::RaiseRfc => "raise RFCs",
            Permission::DecideRfc => {
                "assess, approve, reject, schedule, implement, review or close RFCs"
            }
            Permission::WorkIncidents => "update incidents",
            Permission::Administer => "manage tokens and agents",
        }
    }

    /// The roles that have it, e.g. "change_manager or admin".
    pub fn roles(self) -> String {
        let roles: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|r| r.may(self))
            .map(Role::as_str)
            .collect();
        roles.join(" or ")
    }
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

/// Why the CMDB refused to apply something. Each is the sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("agent {0} is not enrolled")]
    UnknownAgent(AgentId),
    #[error("agent {0} has been revoked")]
    Revoked(AgentId),
    #[error("the enrollment token is not valid")]
    TokenInvalid,
    #[error("the enrollment token expired")]
    TokenExpired,
    #[error("the enrollment token has no uses left")]
    TokenUsedUp,
    #[error("sequence number {seq} was already used (last accepted: {last})")]
    Replay { seq: u64, last: u64 },
    #[error("enrollment must carry sequence number 0, not {0}")]
    BadEnrollmentSeq(u64),
}

#[derive(Debug, thiserror::Error)]
pub enum CmdbError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TransactionError<Refusal>> for CmdbError {
    fn from(e: TransactionError<Refusal>) -> Self {
        match e {
            TransactionError::Aborted(r) => CmdbError::Refused(r),
            TransactionError::Store(s) => CmdbError::Store(s),
        }
    }
}

/// A decoded report to apply.
#[derive(Debug)]
pub enum Report {
    Enrollment {
        public_key: [u8; 32],
        body: Enrollment,
    },
    Inventory(Box<Inventory>),
    /// Changed sections, to apply to the agent's stored inventory.
    InventoryDelta(Box<InventoryDelta>),
    Metrics(Metrics),
    /// One poll of a network device.
    Device(Box<DeviceReport>),
}

/// What applying a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub outcome: AckOutcome,
    pub ci_id: Option<CiId>,
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

fn report_key(agent: AgentId, seq: u64) -> Vec<u8> {
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

    /// Applies one verified, decoded report from `agent` numbered `seq`,
    /// atomically. Idempotent: the same report again is `Duplicate` and
    /// writes nothing.
    pub fn apply(
        &self,
        agent: AgentId,
        seq: u64,
        digest: &str,
        report: &Report,
        now_ms: i64,
    ) -> Result<Applied, CmdbError> {
        // A delta is applied to the stored inventory it was based on; the
        // merge happens here, outside the writer's transaction, and the
        // transaction checks the base is still the stored one.
        let merged;
        let (inventory, base_seq) = match report {
            Report::Inventory(inventory) => (Some(&**inventory), None),
            Report::InventoryDelta(delta) => {
                merged = self.merge_delta(agent, delta)?;
                (merged.as_ref(), Some(delta.base_seq))
            }
            _ => (None, None),
        };
        let prepared =
            inventory.map(|inventory| reconcile::Prepared::new(agent, seq, inventory, now_ms));
        let prepared_device = match report {
            Report::Device(device) => Some(device::Prepared::new(agent, seq, device, now_ms)),
            _ => None,
        };
        // Enrollment and metrics touch three tables; a transaction over all
        // of them would cost every metrics report the whole set.
        let tables: &[Table] = match report {
            Report::Enrollment { .. } => &[Table::Agents, Table::EnrollmentTokens, Table::Reports],
            Report::Metrics(_) => &[Table::Agents, Table::Reports, Table::Metrics],
            Report::Inventory(_) | Report::InventoryDelta(_) => &reconcile::TABLES,
            Report::Device(_) => &device::TABLES,
        };
        let applied = self.store.transaction_on(tables, |tx| match report {
            Report::Enrollment { public_key, body } => {
                apply_enrollment(tx, agent, seq, *public_key, body, now_ms)
            }
            Report::Inventory(_) | Report::InventoryDelta(_) => {
                let mut agent_rec = match admit(tx, agent, seq, digest)? {
                    Admission::New(a) => a,
                    Admission::Duplicate(previous) => return Ok(previous.answer_again()),
                };
                let kind = match report {
                    Report::InventoryDelta(_) => BodyKind::InventoryDelta,
                    _ => BodyKind::Inventory,
                };
                let based_on_stored = match (base_seq, agent_rec.ci_id) {
                    (None, _) => true,
                    (Some(base), Some(ci)) => {
                        inventory.is_some() && stored_seq(tx, ci, agent)? == Some(base)
                    }
                    (Some(_), None) => false,
                };
                let Some(inventory) = inventory.filter(|_| based_on_stored) else {
                    let ci = agent_rec.ci_id;
                    let report = ReportRecord::new(kind, digest, ci, now_ms);
                    record_report(
                        tx,
                        &mut agent_rec,
                        seq,
                        ReportRecord {
                            needs_full: true,
                            ..report
                        },
                    )?;
                    return Ok(Applied {
                        outcome: AckOutcome::NeedsFull,
                        ci_id: ci,
                    });
                };
                let sighting = self.sighting(agent, seq, inventory.observed_at_ms, now_ms);
                let prepared = prepared.as_ref().expect("prepared for inventories");
                let ci =
                    reconcile::apply_inventory(tx, &mut agent_rec, inventory, prepared, &sighting)?;
                let interval_ms = stated_interval(inventory.cadence);
                if interval_ms.is_some() {
                    agent_rec.heartbeat_interval_ms = interval_ms;
                }
                // The version it runs now, not the one it enrolled with.
                if !inventory.agent_version.is_empty() {
                    agent_rec.agent_version = inventory.agent_version.chars().take(64).collect();
                }
                agent_rec.probe_errors = inventory
                    .probe_errors
                    .iter()
                    .take(32)
                    .map(|e| {
                        let line = format!("{}: {}", e.probe, e.message);
                        line.chars().take(300).collect()
                    })
                    .collect();
                let beat = heartbeat::Heartbeat {
                    seen_ms: now_ms,
                    boot_ms: inventory.host.boot_time_ms,
                    // The agent's record holds what it states.
                    interval_ms: None,
                };
                heartbeat::put_heartbeat(tx, ci, beat)?;
                let report = ReportRecord::new(kind, digest, Some(ci), now_ms);
                record_report(tx, &mut agent_rec, seq, report)?;
                Ok(Applied {
                    outcome: AckOutcome::Stored,
                    ci_id: Some(ci),
                })
            }
            Report::Device(device) => {
                let mut agent_rec = match admit(tx, agent, seq, digest)? {
                    Admission::New(a) => a,
                    Admission::Duplicate(previous) => return Ok(previous.answer_again()),
                };
                let sighting = self.sighting(agent, seq, device.observed_at_ms, now_ms);
                let prepared = prepared_device.as_ref().expect("prepared for devices");
                let ci = device::apply_device(tx, &agent_rec, device, prepared, &sighting)?;
                let uptime = device.device.system.sys_uptime_s;
                let beat = heartbeat::Heartbeat {
                    seen_ms: now_ms,
                    boot_ms: uptime.map(|u| sighting.observed_at_ms - u as i64 * 1000),
                    interval_ms: device
                        .poll_interval_ms
                        .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
                };
                heartbeat::put_heartbeat(tx, ci, beat)?;
                let report = ReportRecord::new(BodyKind::DeviceReport, digest, Some(ci), now_ms);
                record_report(tx, &mut agent_rec, seq, report)?;
                Ok(Applied {
                    outcome: AckOutcome::Stored,
                    ci_id: Some(ci),
                })
            }
            Report::Metrics(metrics) => {
                let mut agent_rec = match admit(tx, agent, seq, digest)? {
                    Admission::New(a) => a,
                    Admission::Duplicate(previous) => return Ok(previous.answer_again()),
                };
                let mut key = agent.as_bytes().to_vec();
                key.extend_from_slice(&metrics.observed_at_ms.to_be_bytes());
                key.extend_from_slice(&seq.to_be_bytes());
                tx.insert(Table::Metrics, &key, &encode(metrics))?;
                if let Some(ms) = stated_interval(metrics.cadence) {
                    agent_rec.heartbeat_interval_ms = Some(ms);
                }
                let ci = agent_rec.ci_id;
                let report = ReportRecord::new(BodyKind::Metrics, digest, ci, now_ms);
                record_report(tx, &mut agent_rec, seq, report)?;
                Ok(Applied {
                    outcome: AckOutcome::Stored,
                    ci_id: ci,
                })
            }
        })?;
        Ok(applied)
    }

    /// A report's facts for the records it writes. The agent's own
    /// observation time is kept when it is set and not in the future.
    fn sighting(&self, agent: AgentId, seq: u64, observed_at_ms: i64, now_ms: i64) -> Sighting<'_> {
        Sighting {
            agent,
            seq,
            observed_at_ms: match observed_at_ms {
                t if t > 0 => t.min(now_ms),
                _ => now_ms,
            },
            now_ms,
            policy: &self.policy,
            webhooks: self.webhooks,
        }
    }

    /// The agent's current full inventory with `delta` applied, or `None`
    /// when the stored inventory is not the delta's base (or there is none).
    fn merge_delta(
        &self,
        agent: AgentId,
        delta: &InventoryDelta,
    ) -> Result<Option<Inventory>, StoreError> {
        let Some(ci) = self.agent(agent)?.and_then(|a| a.ci_id) else {
            return Ok(None);
        };
        let key = inventory_key(ci, agent);
        let Some(stored) = self.get::<StoredInventory>(Table::Inventories, &key)? else {
            return Ok(None);
        };
        if stored.seq != delta.base_seq || !delta.fits(&stored.inventory) {
            return Ok(None);
        }
        Ok(Some(delta.clone().apply_to(stored.inventory)))
    }

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

/// The sequence number of the report that produced the agent's stored
/// inventory on `ci`, reading only that field.
fn stored_seq(tx: &dyn Tx, ci: CiId, agent: AgentId) -> Result<Option<u64>, TxAbort<Refusal>> {
    #[derive(serde::Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    let key = inventory_key(ci, agent);
    Ok(tx_get::<SeqOnly, _>(tx, Table::Inventories, &key)?.map(|s| s.seq))
}

/// The result of admitting a report: new, or an exact duplicate.
enum Admission {
    New(AgentRecord),
    Duplicate(ReportRecord),
}

/// Checks the agent may send this report now: enrolled, not revoked, and
/// `seq` new (or an exact resend of an accepted report).
fn admit(
    tx: &dyn Tx,
    agent: AgentId,
    seq: u64,
    digest: &str,
) -> Result<Admission, TxAbort<Refusal>> {
    let Some(record) = tx_get::<AgentRecord, _>(tx, Table::Agents, agent.as_bytes())? else {
        return Err(TxAbort::Abort(Refusal::UnknownAgent(agent)));
    };
    if record.status == AgentStatus::Revoked {
        return Err(TxAbort::Abort(Refusal::Revoked(agent)));
    }
    if seq <= record.last_seq {
        // An agent that never heard our acknowledgement sends the same
        // report again: acknowledge it without storing it twice. Anything
        // else reusing a sequence number is a replay.
        return match tx_get::<ReportRecord, _>(tx, Table::Reports, &report_key(agent, seq))? {
            Some(previous) if previous.digest == digest => Ok(Admission::Duplicate(previous)),
            _ => Err(TxAbort::Abort(Refusal::Replay {
                seq,
                last: record.last_seq,
            })),
        };
    }
    Ok(Admission::New(record))
}

impl ReportRecord {
    fn new(kind: BodyKind, digest: &str, ci_id: Option<CiId>, now_ms: i64) -> ReportRecord {
        ReportRecord {
            kind,
            digest: digest.to_owned(),
            received_at_ms: now_ms,
            ci_id,
            needs_full: false,
        }
    }

    /// The answer to an exact resend of this report.
    fn answer_again(&self) -> Applied {
        Applied {
            outcome: if self.needs_full {
                AckOutcome::NeedsFull
            } else {
                AckOutcome::Duplicate
            },
            ci_id: self.ci_id,
        }
    }
}

/// The heartbeat interval a report states, within the watch's bounds.
fn stated_interval(cadence: Option<fathom_shared::wire::Cadence>) -> Option<i64> {
    use heartbeat::{MAX_INTERVAL_MS, MIN_INTERVAL_MS};
    let ms = cadence?.heartbeat_interval_ms();
    Some(
        i64::try_from(ms)
            .unwrap_or(i64::MAX)
            .clamp(MIN_INTERVAL_MS, MAX_INTERVAL_MS),
    )
}

fn record_report(
    tx: &dyn Tx,
    agent: &mut AgentRecord,
    seq: u64,
    record: ReportRecord,
) -> Result<(), TxAbort<Refusal>> {
    let now_ms = record.received_at_ms;
    tx.insert(
        Table::Reports,
        &report_key(agent.agent_id, seq),
        &encode(&record),
    )?;
    agent.last_seq = seq;
    agent.last_seen_ms = now_ms;
    agent.reports_received += 1;
    tx.insert(Table::Agents, agent.agent_id.as_bytes(), &encode(agent))?;
    Ok(())
}

fn apply_enrollment(
    tx: &dyn Tx,
    agent: AgentId,
    seq: u64,
    public_key: [u8; 32],
    body: &Enrollment,
    now_ms: i64,
) -> Result<Applied, TxAbort<Refusal>> {
    if seq != 0 {
        return Err(TxAbort::Abort(Refusal::BadEnrollmentSeq(seq)));
    }
    if let Some(existing) = tx_get::<AgentRecord, _>(tx, Table::Agents, agent.as_bytes())? {
        // The same key enrolling again (it never got our answer): nothing to
        // do, and no token use is spent; but only with the token that
        // admitted it, or anyone holding a key could probe with garbage.
        if existing.status == AgentStatus::Revoked {
            return Err(TxAbort::Abort(Refusal::Revoked(agent)));
        }
        let token = tx_get::<EnrollmentTokenRecord, _>(
            tx,
            Table::EnrollmentTokens,
            &token_hash(&body.token),
        )?;
        if token.is_none_or(|t| t.id != existing.token_id) {
            return Err(TxAbort::Abort(Refusal::TokenInvalid));
        }
        return Ok(Applied {
            outcome: AckOutcome::Duplicate,
            ci_id: existing.ci_id,
        });
    }
    let hash = token_hash(&body.token);
    let Some(mut token) = tx_get::<EnrollmentTokenRecord, _>(tx, Table::EnrollmentTokens, &hash)?
    else {
        return Err(TxAbort::Abort(Refusal::TokenInvalid));
    };
    if now_ms >= token.expires_at_ms {
        return Err(TxAbort::Abort(Refusal::TokenExpired));
    }
    if token.uses_left == 0 {
        return Err(TxAbort::Abort(Refusal::TokenUsedUp));
    }
    // Checked and consumed in one transaction: of N concurrent enrollments
    // with a single-use token, exactly one commits.
    token.uses_left -= 1;
    tx.insert(Table::EnrollmentTokens, &hash, &encode(&token))?;
    let record = AgentRecord {
        agent_id: agent,
        public_key: hex::encode(public_key),
        hostname: body.hostname.chars().take(255).collect(),
        agent_version: body.agent_version.chars().take(64).collect(),
        enrolled_at_ms: now_ms,
        token_id: token.id.clone(),
        status: AgentStatus::Active,
        revoked_at_ms: None,
        last_seq: 0,
        last_seen_ms: now_ms,
        reports_received: 0,
        ci_id: None,
        heartbeat_interval_ms: None,
        probe_errors: Vec::new(),
    };
    tx.insert(Table::Agents, agent.as_bytes(), &encode(&record))?;
    Ok(Applied {
        outcome: AckOutcome::Stored,
        ci_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{cmdb, enroll, inventory_report as inventory};

    #[test]
    fn tokens_expire_run_out_and_must_exist() {
        let (_d, cmdb) = cmdb();
        let (one_use, _) = cmdb.create_enrollment_token(10_000, 1, 0).unwrap();
        assert!(enroll(&cmdb, 1, &one_use).is_ok());
        assert!(matches!(
            enroll(&cmdb, 2, &one_use),
            Err(CmdbError::Refused(Refusal::TokenUsedUp))
        ));
        // The same agent again is a duplicate, not a second use; but only
        // with the token that admitted it.
        assert_eq!(
            enroll(&cmdb, 1, &one_use).unwrap().outcome,
            AckOutcome::Duplicate
        );
        assert!(matches!(
            enroll(&cmdb, 1, "ftk_nope"),
            Err(CmdbError::Refused(Refusal::TokenInvalid))
        ));
        let (other, record) = cmdb.create_enrollment_token(10_000, 1, 0).unwrap();
        assert!(matches!(
            enroll(&cmdb, 1, &other),
            Err(CmdbError::Refused(Refusal::TokenInvalid))
        ));
        // A token's id gives nothing of its secret away.
        assert!(!other.contains(&record.id), "{other} {}", record.id);
        let (expired, _) = cmdb.create_enrollment_token(500, 5, 0).unwrap();
        assert!(matches!(
            enroll(&cmdb, 3, &expired),
            Err(CmdbError::Refused(Refusal::TokenExpired))
        ));
        assert!(matches!(
            enroll(&cmdb, 4, "ftk_nope"),
            Err(CmdbError::Refused(Refusal::TokenInvalid))
        ));
    }

    #[test]
    fn replays_and_duplicates() {
        let (_d, cmdb) = cmdb();
        let (token, _) = cmdb.create_enrollment_token(10_000, 1, 0).unwrap();
        enroll(&cmdb, 1, &token).unwrap();
        let agent = AgentId::from_public_key(&[1; 32]);
        let report = inventory("m1", None);
        assert_eq!(
            cmdb.apply(agent, 1, "x", &report, 2000).unwrap().outcome,
            AckOutcome::Stored
        );
        assert_eq!(
            cmdb.apply(agent, 1, "x", &report, 2001).unwrap().outcome,
            AckOutcome::Duplicate
        );
        assert!(matches!(
            cmdb.apply(agent, 1, "other", &report, 2002),
            Err(CmdbError::Refused(Refusal::Replay { seq: 1, last: 1 }))
        ));
        assert_eq!(cmdb.report_count(agent).unwrap(), 1);
        assert_eq!(cmdb.agent(agent).unwrap().unwrap().reports_received, 1);
    }

    #[test]
    fn report_records_expire_but_each_agents_newest_stays() {
        let (_d, cmdb) = cmdb();
        let (token, _) = cmdb.create_enrollment_token(10_000, 2, 0).unwrap();
        enroll(&cmdb, 1, &token).unwrap();
        enroll(&cmdb, 2, &token).unwrap();
        let (one, two) = (
            AgentId::from_public_key(&[1; 32]),
            AgentId::from_public_key(&[2; 32]),
        );
        let metrics = |at: i64| {
            Report::Metrics(fathom_shared::wire::Metrics {
                observed_at_ms: at,
                ..Default::default()
            })
        };
        // Agent one: seq 1..=10 received at 1..=10 s; agent two: seq 1..=3
        // at 1..=3 s (enrollments leave no report record).
        for seq in 1..=10u64 {
            let at = seq as i64 * 1000;
            cmdb.apply(one, seq, &format!("d{seq}"), &metrics(at), at)
                .unwrap();
            if seq <= 3 {
                cmdb.apply(two, seq, &format!("d{seq}"), &metrics(at), at)
                    .unwrap();
            }
        }
        assert_eq!(cmdb.report_count(one).unwrap(), 10);
        // Before 5.5 s: one keeps seq 6..=10; two keeps its newest only.
        assert_eq!(cmdb.expire_report_records(5_500).unwrap(), 5 + 2);
        assert_eq!(cmdb.report_count(one).unwrap(), 5);
        assert_eq!(cmdb.report_count(two).unwrap(), 1);
        assert_eq!(cmdb.expire_report_records(5_500).unwrap(), 0, "idempotent");
        // A kept record still answers a resend; an expired one is a replay.
        assert_eq!(
            cmdb.apply(one, 6, "d6", &metrics(6000), 20_000)
                .unwrap()
                .outcome,
            AckOutcome::Duplicate
        );
        assert_eq!(
            cmdb.apply(two, 3, "d3", &metrics(3000), 20_000)
                .unwrap()
                .outcome,
            AckOutcome::Duplicate
        );
        assert!(matches!(
            cmdb.apply(one, 5, "d5", &metrics(5000), 20_000),
            Err(CmdbError::Refused(Refusal::Replay { seq: 5, last: 10 }))
        ));
        // More than one batch to expire: 300 more reports, all but the
        // newest ten expired in one run.
        for seq in 11..=310u64 {
            let at = seq as i64 * 1000;
            cmdb.apply(one, seq, &format!("d{seq}"), &metrics(at), at)
                .unwrap();
        }
        assert_eq!(cmdb.expire_report_records(300_500).unwrap(), 295);
        assert_eq!(cmdb.report_count(one).unwrap(), 10);
    }

    #[test]
    fn a_delta_applies_only_on_top_of_its_base() {
        let (_d, cmdb) = cmdb();
        let (token, _) = cmdb.create_enrollment_token(10_000, 1, 0).unwrap();
        enroll(&cmdb, 1, &token).unwrap();
        let agent = AgentId::from_public_key(&[1; 32]);
        let Report::Inventory(full) = inventory("m1", None) else {
            unreachable!()
        };
        let ci = cmdb
            .apply(agent, 1, "a", &Report::Inventory(full.clone()), 2000)
            .unwrap()
            .ci_id
            .unwrap();
        let delta = |base_seq: u64, modules: &[&str]| {
            Report::InventoryDelta(Box::new(InventoryDelta {
                packages_changed: None,
                base_seq,
                sections: vec!["kernel_modules".into()],
                inventory: Inventory {
                    observed_at_ms: 5,
                    host: full.host.clone(),
                    kernel_modules: Some(modules.iter().map(|m| (*m).to_owned()).collect()),
                    ..Inventory::default()
                },
            }))
        };
        // On top of report 1: applied, and the rest of report 1 is kept.
        let applied = cmdb
            .apply(agent, 2, "b", &delta(1, &["ext4"]), 3000)
            .unwrap();
        assert_eq!(applied.outcome, AckOutcome::Stored);
        let stored = cmdb.latest_inventory(ci).unwrap().unwrap();
        assert_eq!(stored.seq, 2);
        assert_eq!(stored.inventory.kernel_modules, Some(vec!["ext4".into()]));
        assert_eq!(stored.inventory.interfaces, full.interfaces);
        // Built on a report the collector never applied: recorded, not
        // applied, and the agent is asked for everything.
        let missed = cmdb
            .apply(agent, 4, "c", &delta(3, &["xfs"]), 4000)
            .unwrap();
        assert_eq!(missed.outcome, AckOutcome::NeedsFull);
        assert_eq!(missed.ci_id, Some(ci));
        let stored = cmdb.latest_inventory(ci).unwrap().unwrap();
        assert_eq!(stored.seq, 2);
        assert_eq!(stored.inventory.kernel_modules, Some(vec!["ext4".into()]));
        assert_eq!(cmdb.agent(agent).unwrap().unwrap().last_seq, 4);
        // The agent missed that answer and sends the delta again: the same
        // answer, so it still sends its full inventory.
        let again = cmdb
            .apply(agent, 4, "c", &delta(3, &["xfs"]), 4500)
            .unwrap();
        assert_eq!(again.outcome, AckOutcome::NeedsFull);
        assert_eq!(cmdb.report_count(agent).unwrap(), 3);
        // A delta from an agent with no stored inventory at all, likewise.
        let (token, _) = cmdb.create_enrollment_token(10_000, 1, 0).unwrap();
        enroll(&cmdb, 2, &token).unwrap();
        let fresh = AgentId::from_public_key(&[2; 32]);
        let outcome = cmdb
            .apply(fresh, 1, "d", &delta(1, &[]), 5000)
            .unwrap()
            .outcome;
        assert_eq!(outcome, AckOutcome::NeedsFull);
    }

    #[test]
    fn a_reinstalled_agent_lands_on_the_same_ci_flagged_and_a_different_host_does_not() {
        let (_d, cmdb) = cmdb();
        let (token, _) = cmdb.create_enrollment_token(10_000, 3, 0).unwrap();
        for n in 1..=3 {
            enroll(&cmdb, n, &token).unwrap();
        }
        let a1 = AgentId::from_public_key(&[1; 32]);
        let a2 = AgentId::from_public_key(&[2; 32]);
        let a3 = AgentId::from_public_key(&[3; 32]);
        let ci1 = cmdb
            .apply(a1, 1, "a", &inventory("m1", None), 2000)
            .unwrap()
            .ci_id
            .unwrap();
        // New key, same machine-id: same CI, flagged.
        let ci2 = cmdb
            .apply(a2, 1, "b", &inventory("m1", None), 3000)
            .unwrap()
            .ci_id
            .unwrap();
        assert_eq!(ci1, ci2);
        let ci = cmdb.ci(ci1).unwrap().unwrap();
        assert_eq!(ci.reviews.len(), 1);
        assert_eq!(ci.identified_by.rule, identify::Rule::MachineId);
        assert_eq!(ci.agents, vec![a1, a2]);
        // Same MAC (a cloned VM) but another machine-id: a new CI.
        let ci3 = cmdb
            .apply(a3, 1, "c", &inventory("m3", None), 4000)
            .unwrap()
            .ci_id
            .unwrap();
        assert_ne!(ci3, ci1);
        assert_eq!(cmdb.list_cis().unwrap().len(), 2);
    }

    #[test]
    fn a_wrongly_matched_agent_can_be_split_off() {
        let (_d, cmdb) = cmdb();
        let (token, _) = cmdb.create_enrollment_token(10_000, 2, 0).unwrap();
        enroll(&cmdb, 1, &token).unwrap();
        enroll(&cmdb, 2, &token).unwrap();
        let a1 = AgentId::from_public_key(&[1; 32]);
        let a2 = AgentId::from_public_key(&[2; 32]);
        let ci = cmdb
            .apply(a1, 1, "a", &inventory("m1", None), 2000)
            .unwrap()
            .ci_id
            .unwrap();
        // Same machine-id: matched to the same CI.
        assert_eq!(
            cmdb.apply(a2, 1, "b", &inventory("m1", None), 3000)
                .unwrap()
                .ci_id,
            Some(ci)
        );
        let by = history::Actor::Operator {
            name: "cm".into(),
            role: Role::ConfigurationManager,
        };
        let new = cmdb
            .split_ci(&by, ci, a2, "a different host after all", 4000)
            .unwrap();
        assert_ne!(new.id, ci);
        assert_eq!(cmdb.ci(ci).unwrap().unwrap().agents, vec![a1]);
        assert_eq!(cmdb.agent(a2).unwrap().unwrap().ci_id, Some(new.id));
        // Its next report lands on the new CI and registers it.
        let next = cmdb
            .apply(a2, 2, "c", &inventory("m1", None), 5000)
            .unwrap();
        assert_eq!(next.ci_id, Some(new.id));
        assert!(cmdb.ci(new.id).unwrap().unwrap().registered);
        assert!(
            cmdb.split_ci(&by, ci, a1, "x", 6000).is_err(),
            "the last agent stays"
        );
        let trail = cmdb.trail_entries().unwrap();
        assert_eq!(trail.last().unwrap().action, "ci.split");
    }

    #[test]
    fn metrics_samples_are_kept_in_time_order() {
        let (_d, cmdb) = cmdb();
        let (token, _) = cmdb.create_enrollment_token(10_000, 1, 0).unwrap();
        enroll(&cmdb, 1, &token).unwrap();
        let agent = AgentId::from_public_key(&[1; 32]);
        for (seq, observed, load) in [(1, 2000, 0.5), (2, 1000, 1.5), (3, 3000, 2.5)] {
            let sample = Metrics {
                observed_at_ms: observed,
                load_1: load,
                ..Metrics::default()
            };
            let applied = cmdb
                .apply(
                    agent,
                    seq,
                    &format!("m{seq}"),
                    &Report::Metrics(sample),
                    5000,
                )
                .unwrap();
            assert_eq!(applied.outcome, AckOutcome::Stored);
        }
        let loads: Vec<f64> = cmdb
            .metrics_of(agent)
            .unwrap()
            .iter()
            .map(|m| m.load_1)
            .collect();
        assert_eq!(loads, vec![1.5, 0.5, 2.5]);
        assert!(cmdb
            .metrics_of(AgentId::from_public_key(&[2; 32]))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn revoked_agents_are_refused() {
        let (_d, cmdb) = cmdb();
        let (token, _) = cmdb.create_enrollment_token(10_000, 1, 0).unwrap();
        enroll(&cmdb, 1, &token).unwrap();
        let agent = AgentId::from_public_key(&[1; 32]);
        cmdb.revoke_agent(&crate::cmdb::history::Actor::Collector, agent, 5)
            .unwrap();
        assert!(matches!(
            cmdb.apply(agent, 1, "x", &inventory("m", None), 6),
            Err(CmdbError::Refused(Refusal::Revoked(_)))
        ));
        assert!(matches!(
            cmdb.revoke_agent(
                &crate::cmdb::history::Actor::Collector,
                AgentId::from_public_key(&[9; 32]),
                5
            ),
            Err(crate::cmdb::action::ActionError::NotFound(_))
        ));
    }
}
