//! What an agent reports of a network device it polls over SNMP: the
//! records `fathom-agent probe snmp --json` prints and a `device_report`
//! carries. Every field is optional on the wire (`#[serde(default)]`), so a
//! newer agent may add some.
//!
//! Strings are the device's own, decoded as UTF-8 where valid, else shown as
//! colon-separated hex; MACs are lowercase colon-separated hex; `None` is
//! what the device does not expose.

use serde::{Deserialize, Serialize};

/// SNMPv2-MIB::system (1.3.6.1.2.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct System {
    pub sys_descr: Option<String>,
    pub sys_object_id: Option<String>,
    pub sys_name: Option<String>,
    pub sys_location: Option<String>,
    pub sys_contact: Option<String>,
    pub sys_uptime_s: Option<u64>,
    /// From the enterprise number in sysObjectID.
    pub vendor: Option<String>,
}

/// One row of IF-MIB ifTable joined with ifXTable.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Interface {
    pub index: u32,
    pub name: Option<String>,
    pub descr: Option<String>,
    pub alias: Option<String>,
    /// IANAifType number (6: ethernetCsmacd, 24: softwareLoopback…).
    #[serde(rename = "type")]
    pub kind: Option<u64>,
    pub mac: Option<String>,
    /// ifHighSpeed × 10⁶ where the device has it, else ifSpeed.
    pub speed_bps: Option<u64>,
    pub admin_up: Option<bool>,
    pub oper_up: Option<bool>,
    /// Traffic and error counters, for utilization; never reconciled.
    pub counters: Option<InterfaceCounters>,
}

/// An interface's counters as read. Octets come from the 64-bit ifXTable
/// counters where the device has them (`high_capacity`), else from the
/// 32-bit ifTable ones, which wrap in 34 s at 1 Gbit/s.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InterfaceCounters {
    pub in_octets: Option<u64>,
    pub out_octets: Option<u64>,
    pub high_capacity: bool,
    pub in_errors: Option<u64>,
    pub out_errors: Option<u64>,
    pub in_discards: Option<u64>,
    pub out_discards: Option<u64>,
}

/// A chassis (ENTITY-MIB class 3); a stack has several.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Chassis {
    pub index: u32,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub hardware_rev: Option<String>,
    pub firmware_rev: Option<String>,
    pub software_rev: Option<String>,
    pub manufacturer: Option<String>,
    pub description: Option<String>,
}

/// Any other physical entity: module, power supply, fan, port, transceiver…
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Component {
    pub index: u32,
    /// ENTITY-MIB PhysicalClass, by name (`module`, `powerSupply`, `fan`…).
    pub class: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// The entity that contains this one (entPhysicalContainedIn); `None`
    /// at the top.
    pub parent_index: Option<u32>,
}

/// A neighbour an LLDP-MIB remote table entry describes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LldpNeighbor {
    pub local_port_num: u32,
    /// The local port's id (lldpLocPortId), as text.
    pub local_port: Option<String>,
    pub remote_chassis_id: Option<String>,
    pub remote_port_id: Option<String>,
    pub remote_port_descr: Option<String>,
    pub remote_sys_name: Option<String>,
}

/// An address the device holds (IP-MIB).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IpAddress {
    pub address: String,
    pub if_index: Option<u32>,
    pub prefix_len: Option<u8>,
}

/// A neighbour in CISCO-CDP-MIB's cache.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CdpNeighbor {
    pub local_if_index: u32,
    pub remote_device_id: Option<String>,
    pub remote_port: Option<String>,
    pub remote_platform: Option<String>,
    /// The neighbour's address, where it is IPv4.
    pub remote_address: Option<String>,
}

/// A storage area HOST-RESOURCES-MIB describes (RAM, swap, a filesystem).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Storage {
    pub index: u32,
    /// `ram`, `virtual_memory`, `fixed_disk`, `removable_disk`,
    /// `floppy_disk`, `compact_disc`, `ram_disk`, `flash_memory`,
    /// `network_disk`, `other`.
    pub kind: Option<String>,
    pub descr: Option<String>,
    pub size_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
}

/// HOST-RESOURCES-MIB, for hosts that answer SNMP but run no agent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostResources {
    pub storage: Vec<Storage>,
    /// hrProcessorTable rows.
    pub processors: usize,
    /// hrSWInstalledName, as the host names its packages.
    pub software: Vec<String>,
}

/// What one poll of a device found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Device {
    pub system: System,
    pub chassis: Vec<Chassis>,
    pub components: Vec<Component>,
    pub interfaces: Vec<Interface>,
    pub ip_addresses: Vec<IpAddress>,
    pub lldp_neighbors: Vec<LldpNeighbor>,
    pub cdp_neighbors: Vec<CdpNeighbor>,
    /// `None` where the device does not implement HOST-RESOURCES-MIB.
    pub host_resources: Option<HostResources>,
}
