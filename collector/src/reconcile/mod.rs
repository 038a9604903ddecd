//! Reconciliation: applying a verified, decoded report to the CMDB in one
//! transaction. A report is admitted (enrolled, not revoked, a new
//! sequence number or an exact resend), then applied by kind: an
//! enrollment spends its token; an inventory (or a delta on top of the
//! stored one) is identified, stored and reconciled against the authorized
//! state ([`inventory`]); a device poll likewise ([`device`]); metrics go
//! to the ingest log for the metric store. Each writes the CI's heartbeat
//! and the report's record in the same transaction.
//!
//! - [`identify`]: identification inside the transaction: index lookups,
//!   the CI found or created, review items for what the rules
//!   (`control::identify`) cannot decide alone.
//! - [`inventory`]: discovered vs authorized state: drift, incidents,
//!   missing RFCs, RFC evidence, standard changes.
//! - [`device`]: network device polls: identification among
//!   `network_device` CIs, neighbours as relationships.
//!
//! The records written are the CMDB's ([`crate::cmdb`]); the rules applied
//! are decided in [`crate::control`].

mod apply;
pub mod device;
pub mod identify;
pub mod inventory;
mod mass;
mod records;

use std::borrow::Cow;

use crate::cmdb::drift::Observation;
use crate::cmdb::heartbeat;
use crate::cmdb::history::Actor;
use crate::cmdb::{
    encode, inventory_key, report_key, token_hash, tx_get, AgentRecord, AgentStatus, Cmdb,
    EnrollmentTokenRecord, ReportRecord, StoredInventory,
};
use crate::control::policy::Policy;
use crate::store::{Store, StoreError, Table, TransactionError, Tx, TxAbort};
use fathom_shared::envelope::BodyKind;
use fathom_shared::ids::{AgentId, CiId};
use fathom_shared::wire::{
    AckOutcome, DeviceReport, Enrollment, Inventory, InventoryDelta, Metrics,
};

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

/// One report's facts, for every record it writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sighting<'a> {
    pub agent: AgentId,
    pub seq: u64,
    /// When the agent ran discovery (clamped to the receive time).
    pub observed_at_ms: i64,
    pub now_ms: i64,
    pub policy: &'a Policy,
    /// Whether to queue webhook events.
    pub webhooks: bool,
}

impl Sighting<'_> {
    pub(crate) fn actor(&self) -> Actor {
        Actor::Agent {
            agent_id: self.agent,
        }
    }

    fn source(&self) -> String {
        format!("report {} of agent {}", self.seq, self.agent)
    }

    fn observation(&self, value: Option<String>) -> Observation {
        Observation {
            at_ms: self.observed_at_ms,
            value,
            agent_id: self.agent,
            seq: self.seq,
        }
    }
}

/// A report as its transaction will apply it.
enum Plan<'r> {
    Enrollment {
        public_key: [u8; 32],
        body: &'r Enrollment,
    },
    /// A report of an enrolled agent, applied once it is admitted.
    Report(Admitted<'r>),
}

/// The reports of enrolled agents.
enum Admitted<'r> {
    /// An inventory, or a delta with the stored inventory it was based on
    /// merged in (`None` when there is no such stored inventory). Prepared
    /// outside the transaction.
    Inventory {
        kind: BodyKind,
        base_seq: Option<u64>,
        inventory: Option<Box<(Cow<'r, Inventory>, inventory::Prepared)>>,
    },
    Device {
        report: &'r DeviceReport,
        prepared: device::Prepared,
    },
    Metrics(&'r Metrics),
}

impl Plan<'_> {
    /// The tables its transaction may touch. Enrollment and metrics touch
    /// three; a transaction over all of them would cost every metrics
    /// report the whole set.
    fn tables(&self) -> &'static [Table] {
        match self {
            Plan::Enrollment { .. } => &[Table::Agents, Table::EnrollmentTokens, Table::Reports],
            Plan::Report(Admitted::Metrics(_)) => &[Table::Agents, Table::Reports, Table::Metrics],
            Plan::Report(Admitted::Inventory { .. }) => &inventory::TABLES,
            Plan::Report(Admitted::Device { .. }) => &device::TABLES,
        }
    }
}

/// Who sent a report, which one, and when it arrived.
#[derive(Debug, Clone, Copy)]
struct Facts<'a> {
    agent: AgentId,
    seq: u64,
    digest: &'a str,
    now_ms: i64,
}

/// Metrics of an admitted agent in their transaction: appended to the ingest log
/// the metric store folds from.
fn apply_metrics(
    tx: &dyn Tx,
    facts: &Facts<'_>,
    mut agent_rec: AgentRecord,
    metrics: &Metrics,
) -> Result<Applied, TxAbort<Refusal>> {
    let Facts {
        agent,
        seq,
        digest,
        now_ms,
    } = *facts;
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

impl<S: Store> Cmdb<S> {
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
        let plan = self.plan(agent, seq, report, now_ms)?;
        let facts = Facts {
            agent,
            seq,
            digest,
            now_ms,
        };
        let applied = self.store().transaction_on(plan.tables(), |tx| {
            let admitted = match &plan {
                Plan::Enrollment { public_key, body } => {
                    return apply_enrollment(tx, agent, seq, *public_key, body, now_ms)
                }
                Plan::Report(admitted) => admitted,
            };
            let agent_rec = match admit(tx, agent, seq, digest)? {
                Admission::New(a) => a,
                Admission::Duplicate(previous) => return Ok(previous.answer_again()),
            };
            match admitted {
                Admitted::Inventory {
                    kind,
                    base_seq,
                    inventory,
                } => self.apply_inventory(
                    tx,
                    &facts,
                    agent_rec,
                    *kind,
                    *base_seq,
                    inventory.as_deref(),
                ),
                Admitted::Device { report, prepared } => {
                    self.apply_device(tx, &facts, agent_rec, report, prepared)
                }
                Admitted::Metrics(metrics) => apply_metrics(tx, &facts, agent_rec, metrics),
            }
        })?;
        Ok(applied)
    }

    /// What a report will write, worked out once, before its transaction
    /// (which runs under the store's single writer lock, and may run more
    /// than once).
    fn plan<'r>(
        &self,
        agent: AgentId,
        seq: u64,
        report: &'r Report,
        now_ms: i64,
    ) -> Result<Plan<'r>, StoreError> {
        let prepare = |inventory: Cow<'r, Inventory>| {
            let prepared = inventory::Prepared::new(agent, seq, &inventory, now_ms);
            Box::new((inventory, prepared))
        };
        Ok(match report {
            Report::Enrollment { public_key, body } => Plan::Enrollment {
                public_key: *public_key,
                body,
            },
            Report::Inventory(inventory) => Plan::Report(Admitted::Inventory {
                kind: BodyKind::Inventory,
                base_seq: None,
                inventory: Some(prepare(Cow::Borrowed(&**inventory))),
            }),
            // A delta is applied to the stored inventory it was based on;
            // the merge happens here, outside the writer's transaction, and
            // the transaction checks the base is still the stored one.
            Report::InventoryDelta(delta) => Plan::Report(Admitted::Inventory {
                kind: BodyKind::InventoryDelta,
                base_seq: Some(delta.base_seq),
                inventory: self
                    .merge_delta(agent, delta)?
                    .map(|merged| prepare(Cow::Owned(merged))),
            }),
            Report::Device(device) => Plan::Report(Admitted::Device {
                report: device,
                prepared: device::Prepared::new(agent, seq, device, now_ms),
            }),
            Report::Metrics(metrics) => Plan::Report(Admitted::Metrics(metrics)),
        })
    }

    /// An inventory (or a merged delta) of an admitted agent in its
    /// transaction: checked against its base, identified, stored and reconciled.
    fn apply_inventory(
        &self,
        tx: &dyn Tx,
        facts: &Facts<'_>,
        mut agent_rec: AgentRecord,
        kind: BodyKind,
        base_seq: Option<u64>,
        inventory: Option<&(Cow<'_, Inventory>, inventory::Prepared)>,
    ) -> Result<Applied, TxAbort<Refusal>> {
        let Facts {
            agent,
            seq,
            digest,
            now_ms,
        } = *facts;
        let based_on_stored = match (base_seq, agent_rec.ci_id) {
            (None, _) => true,
            (Some(base), Some(ci)) => {
                inventory.is_some() && stored_seq(tx, ci, agent)? == Some(base)
            }
            (Some(_), None) => false,
        };
        let Some((inventory, prepared)) = inventory.filter(|_| based_on_stored) else {
            let ci = agent_rec.ci_id;
            let report = ReportRecord {
                needs_full: true,
                ..ReportRecord::new(kind, digest, ci, now_ms)
            };
            record_report(tx, &mut agent_rec, seq, report)?;
            return Ok(Applied {
                outcome: AckOutcome::NeedsFull,
                ci_id: ci,
            });
        };
        let sighting = self.sighting(agent, seq, inventory.observed_at_ms, now_ms);
        let ci = inventory::apply_inventory(tx, &mut agent_rec, inventory, prepared, &sighting)?;
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

    /// A device poll of an admitted agent in its transaction: identified,
    /// stored and reconciled; the poll is the device's heartbeat.
    fn apply_device(
        &self,
        tx: &dyn Tx,
        facts: &Facts<'_>,
        mut agent_rec: AgentRecord,
        device: &DeviceReport,
        prepared: &device::Prepared,
    ) -> Result<Applied, TxAbort<Refusal>> {
        let Facts {
            agent,
            seq,
            digest,
            now_ms,
        } = *facts;
        let sighting = self.sighting(agent, seq, device.observed_at_ms, now_ms);
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
            policy: self.policy(),
            webhooks: self.webhooks(),
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
        assert_eq!(
            ci.identified_by.rule,
            crate::control::identify::Rule::MachineId
        );
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
        let by = crate::cmdb::history::Actor::Operator {
            name: "cm".into(),
            role: crate::cmdb::Role::ConfigurationManager,
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
