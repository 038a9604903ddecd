//! The report pipeline, in the order that keeps untrusted input cheap:
//!
//! 1. framing and size (`UnverifiedEnvelope::parse`, with the body cap);
//! 2. the sender: an enrolled, unrevoked agent whose key is the header's
//!    (enrollment excepted: the key is new, the token vouches for it);
//! 3. the signature (`verify_strict`);
//! 4. the send time, within the configured skew;
//! 5. only now, decoding the msgpack body (depth-capped);
//! 6. applying it to the CMDB in one transaction (sequence and replay checks
//!    happen there, atomically with the write).
//!
//! Durability (the flush before the acknowledgement) is the caller's step,
//! through [`crate::commit::GroupCommit`].

use std::sync::Arc;

use fathom_shared::codec::{self, CodecError};
use fathom_shared::envelope::{BodyKind, EnvelopeError, Header, UnverifiedEnvelope};
use fathom_shared::ids::AgentId;
use fathom_shared::wire::{Ack, DeltaError, DeviceReport, DeviceReportError, InventoryDelta};

use crate::cmdb::{report_digest, AgentStatus, Cmdb};
use crate::reconcile::{CmdbError, Refusal, Report};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("malformed envelope")]
    Envelope(#[source] EnvelopeError),
    #[error("signature does not verify")]
    BadSignature,
    #[error("agent {0} is not enrolled")]
    UnknownAgent(AgentId),
    #[error("agent {0} has been revoked")]
    Revoked(AgentId),
    #[error("envelope key differs from the key agent {0} enrolled with")]
    KeyMismatch(AgentId),
    #[error(
        "send time is {skew_ms} ms away from the collector's clock (allowed: {allowed_ms} ms)"
    )]
    ClockSkew { skew_ms: i64, allowed_ms: i64 },
    #[error("undecodable body")]
    Body(#[source] CodecError),
    #[error("the report is too large to take")]
    TooManyItems(#[source] fathom_shared::wire::TooManyItems),
    #[error("inventory delta is not well formed")]
    BadDelta(#[source] DeltaError),
    #[error("device report is not well formed")]
    BadDevice(#[source] DeviceReportError),
    #[error(transparent)]
    Refused(Refusal),
    #[error("storage failure")]
    Store(#[source] StoreError),
}

impl From<CmdbError> for IngestError {
    fn from(e: CmdbError) -> Self {
        match e {
            CmdbError::Refused(Refusal::Revoked(a)) => IngestError::Revoked(a),
            CmdbError::Refused(Refusal::UnknownAgent(a)) => IngestError::UnknownAgent(a),
            CmdbError::Refused(r) => IngestError::Refused(r),
            CmdbError::Store(s) => IngestError::Store(s),
        }
    }
}

#[derive(Debug)]
pub struct Ingest<S> {
    cmdb: Arc<Cmdb<S>>,
    max_body: usize,
    skew_ms: i64,
}

impl<S: Store> Ingest<S> {
    pub fn new(cmdb: Arc<Cmdb<S>>, max_body: usize, skew: std::time::Duration) -> Ingest<S> {
        Ingest {
            cmdb,
            max_body,
            skew_ms: skew.as_millis() as i64,
        }
    }

    /// Step 2 alone, for a header that arrived before its body: an enrolled,
    /// unrevoked agent whose key is the header's. Enrollment passes (the
    /// token in the body vouches for the key).
    pub fn check_sender(&self, claimed: &Header) -> Result<(), IngestError> {
        if claimed.kind == BodyKind::Enrollment {
            return Ok(());
        }
        let agent = self
            .cmdb
            .agent(claimed.agent_id)
            .map_err(IngestError::Store)?
            .ok_or(IngestError::UnknownAgent(claimed.agent_id))?;
        if agent.status == AgentStatus::Revoked {
            return Err(IngestError::Revoked(claimed.agent_id));
        }
        if agent.public_key != hex::encode(claimed.public_key) {
            return Err(IngestError::KeyMismatch(claimed.agent_id));
        }
        Ok(())
    }

    /// The body limit envelopes are parsed with.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Runs steps 1–6. Blocking (it writes to the store).
    pub fn ingest(&self, bytes: &[u8], now_ms: i64) -> Result<Ack, IngestError> {
        let unverified =
            UnverifiedEnvelope::parse(bytes, self.max_body).map_err(IngestError::Envelope)?;
        self.check_sender(unverified.claimed_header())?;
        let verified = unverified.verify().map_err(|e| match e {
            EnvelopeError::BadSignature
            | EnvelopeError::BadPublicKey
            | EnvelopeError::AgentIdMismatch { .. } => IngestError::BadSignature,
            other => IngestError::Envelope(other),
        })?;
        let header = *verified.header();
        let skew_ms = header.sent_at_ms.saturating_sub(now_ms);
        // `unsigned_abs`: `i64::MIN.abs()` would overflow (and, unchecked,
        // pass the test).
        if skew_ms.unsigned_abs() > self.skew_ms.unsigned_abs() {
            return Err(IngestError::ClockSkew {
                skew_ms,
                allowed_ms: self.skew_ms,
            });
        }
        let report = match header.kind {
            BodyKind::Enrollment => Report::Enrollment {
                public_key: header.public_key,
                body: codec::decode(&verified).map_err(IngestError::Body)?,
            },
            BodyKind::Inventory => {
                let inventory: fathom_shared::wire::Inventory =
                    codec::decode(&verified).map_err(IngestError::Body)?;
                inventory
                    .check_limits()
                    .map_err(IngestError::TooManyItems)?;
                Report::Inventory(Box::new(inventory))
            }
            BodyKind::Metrics => {
                let metrics: fathom_shared::wire::Metrics =
                    codec::decode(&verified).map_err(IngestError::Body)?;
                metrics.check_limits().map_err(IngestError::TooManyItems)?;
                Report::Metrics(metrics)
            }
            BodyKind::InventoryDelta => {
                let delta: InventoryDelta = codec::decode(&verified).map_err(IngestError::Body)?;
                delta.check_limits().map_err(IngestError::TooManyItems)?;
                delta.validate().map_err(IngestError::BadDelta)?;
                Report::InventoryDelta(Box::new(delta))
            }
            BodyKind::DeviceReport => {
                let report: DeviceReport = codec::decode(&verified).map_err(IngestError::Body)?;
                report.validate().map_err(IngestError::BadDevice)?;
                Report::Device(Box::new(report))
            }
        };
        let digest = report_digest(header.kind, verified.body());
        let applied = self
            .cmdb
            .apply(header.agent_id, header.seq, &digest, &report, now_ms)?;
        Ok(Ack {
            agent_id: header.agent_id,
            seq: header.seq,
            outcome: applied.outcome,
            ci_id: applied.ci_id,
        })
    }
}
