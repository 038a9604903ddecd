//! Heartbeats: each CI's latest sign of life that carries more than its
//! time (a boot time, a stated interval), written inside the transaction of
//! the report or poll that brought it. Outage detection
//! (`availability::outage`) reads them.

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use super::{ci_key, encode};
use crate::store::{Table, Tx, TxAbort};

/// The bounds of a stated interval: an agent cannot make its CI look
/// watched every millisecond, nor never.
pub const MIN_INTERVAL_MS: i64 = 1_000;
pub const MAX_INTERVAL_MS: i64 = 7 * 24 * 3_600_000;

/// A CI's latest heartbeat that carries more than its time: written by
/// inventories (hosts' boot time) and device polls (every poll is a
/// heartbeat; sysUpTime gives the boot), under `ci`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub seen_ms: i64,
    pub boot_ms: Option<i64>,
    /// The interval the reporting agent states for this CI's heartbeats
    /// (its scheduled reports, or its polls of a device).
    #[serde(default)]
    pub interval_ms: Option<i64>,
}

/// Records a heartbeat inside a report's transaction.
pub(crate) fn put_heartbeat<E>(
    tx: &dyn Tx,
    ci: CiId,
    heartbeat: Heartbeat,
) -> Result<(), TxAbort<E>> {
    tx.insert(Table::Heartbeats, &ci_key(ci), &encode(&heartbeat))?;
    Ok(())
}
