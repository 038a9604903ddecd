//! Network device polls as the CMDB keeps them: each agent's latest poll of
//! a device, and the interface throughput of each poll until the metric
//! store takes it in. Polls are applied in `reconcile::device`.

use std::collections::BTreeMap;

use fathom_shared::ids::{AgentId, CiId};
use fathom_shared::wire::{DeviceReport, InterfaceRate};
use serde::{Deserialize, Serialize};

use super::ci_key;
use crate::control::attributes;

/// The class of the CIs device polls create and match.
pub const NETWORK_DEVICE: &str = "network_device";

/// The latest poll of a device by one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDeviceReport {
    pub agent_id: AgentId,
    pub seq: u64,
    pub received_at_ms: i64,
    pub report: DeviceReport,
}

/// Interface throughput of one poll, under `ci ‖ observed-at ms` until
/// the metric store takes it in (`capacity::store`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceSample {
    pub observed_at_ms: i64,
    pub agent_id: AgentId,
    pub rates: Vec<InterfaceRate>,
    /// ifIndex → the interface's name in the CMDB (`interfaces.<name>.*`),
    /// which names its series.
    #[serde(default)]
    pub names: BTreeMap<u32, String>,
}

impl DeviceSample {
    pub fn of(agent: AgentId, report: &DeviceReport) -> DeviceSample {
        let mut names = attributes::device_interface_names(&report.device);
        names.retain(|index, _| report.interface_rates.iter().any(|r| r.index == *index));
        DeviceSample {
            observed_at_ms: report.observed_at_ms,
            agent_id: agent,
            rates: report.interface_rates.clone(),
            names,
        }
    }
}

/// `ci ‖ agent`: the agent's latest poll of the CI.
pub(crate) fn poll_key(ci: CiId, agent: AgentId) -> Vec<u8> {
    let mut k = ci_key(ci).to_vec();
    k.extend_from_slice(agent.as_bytes());
    k
}

/// `ci ‖ observed-at ms`: one poll's interface rates.
pub(crate) fn sample_key(ci: CiId, observed_at_ms: i64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&ci_key(ci));
    k[8..].copy_from_slice(&observed_at_ms.to_be_bytes());
    k
}
