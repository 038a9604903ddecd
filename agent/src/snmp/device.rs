//! What `fathom-agent probe snmp` reads of a device: the SNMPv2-MIB system
//! group, ENTITY-MIB (chassis and components), IF-MIB interfaces and
//! LLDP-MIB neighbours. A MIB the device does not implement gives empty
//! lists, not an error.

use std::collections::BTreeMap;

pub use fathom_shared::device::{
    CdpNeighbor, Chassis, Component, Device, HostResources, Interface, InterfaceCounters,
    IpAddress, LldpNeighbor, Storage, System,
};

use super::client::{Session, SnmpError};
use super::{hex_colons, Oid, Value};

const SYSTEM: [u32; 7] = [1, 3, 6, 1, 2, 1, 1];
const ENTERPRISES: [u32; 6] = [1, 3, 6, 1, 4, 1];
const HR_STORAGE_TYPES: [u32; 9] = [1, 3, 6, 1, 2, 1, 25, 2, 1];

/// A table a poll reads: its entry OID and the columns wanted of it.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    pub name: &'static str,
    pub entry: &'static [u32],
    pub columns: &'static [u32],
}

/// ifDescr, ifType, ifSpeed, ifPhysAddress, ifAdminStatus, ifOperStatus,
/// ifInOctets, ifInDiscards, ifInErrors, ifOutOctets, ifOutDiscards,
/// ifOutErrors.
pub const IF_TABLE: TableSpec = TableSpec {
    name: "IF-MIB ifTable",
    entry: &[1, 3, 6, 1, 2, 1, 2, 2, 1],
    columns: &[2, 3, 5, 6, 7, 8, 10, 13, 14, 16, 19, 20],
};
/// ifName, ifHCInOctets, ifHCOutOctets, ifHighSpeed, ifAlias.
pub const IF_X_TABLE: TableSpec = TableSpec {
    name: "IF-MIB ifXTable",
    entry: &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1],
    columns: &[1, 6, 10, 15, 18],
};
pub const ENT_PHYSICAL_TABLE: TableSpec = TableSpec {
    name: "ENTITY-MIB entPhysicalTable",
    entry: &[1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1],
    columns: &[2, 4, 5, 7, 8, 9, 10, 11, 12, 13],
};
pub const LLDP_LOC_PORT_TABLE: TableSpec = TableSpec {
    name: "LLDP-MIB lldpLocPortTable",
    entry: &[1, 0, 8802, 1, 1, 2, 1, 3, 7, 1],
    columns: &[2, 3],
};
pub const LLDP_REM_TABLE: TableSpec = TableSpec {
    name: "LLDP-MIB lldpRemTable",
    entry: &[1, 0, 8802, 1, 1, 2, 1, 4, 1, 1],
    columns: &[4, 5, 6, 7, 8, 9],
};
pub const IP_ADDRESS_TABLE: TableSpec = TableSpec {
    name: "IP-MIB ipAddressTable",
    entry: &[1, 3, 6, 1, 2, 1, 4, 34, 1],
    columns: &[3, 4, 5],
};
pub const IP_ADDR_TABLE: TableSpec = TableSpec {
    name: "IP-MIB ipAddrTable",
    entry: &[1, 3, 6, 1, 2, 1, 4, 20, 1],
    columns: &[2, 3],
};
pub const CDP_CACHE_TABLE: TableSpec = TableSpec {
    name: "CISCO-CDP-MIB cdpCacheTable",
    entry: &[1, 3, 6, 1, 4, 1, 9, 9, 23, 1, 2, 1, 1],
    columns: &[3, 4, 6, 7, 8],
};
pub const HR_STORAGE_TABLE: TableSpec = TableSpec {
    name: "HOST-RESOURCES-MIB hrStorageTable",
    entry: &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1],
    columns: &[2, 3, 4, 5, 6],
};
pub const HR_PROCESSOR_TABLE: TableSpec = TableSpec {
    name: "HOST-RESOURCES-MIB hrProcessorTable",
    entry: &[1, 3, 6, 1, 2, 1, 25, 3, 3, 1],
    columns: &[1],
};
pub const HR_SW_INSTALLED_TABLE: TableSpec = TableSpec {
    name: "HOST-RESOURCES-MIB hrSWInstalledTable",
    entry: &[1, 3, 6, 1, 2, 1, 25, 6, 3, 1],
    columns: &[2],
};

/// Every table a poll may read, in the order it reads them (ipAddrTable
/// only where ipAddressTable is empty).
pub const TABLES: [TableSpec; 11] = [
    ENT_PHYSICAL_TABLE,
    IF_TABLE,
    IF_X_TABLE,
    IP_ADDRESS_TABLE,
    IP_ADDR_TABLE,
    LLDP_LOC_PORT_TABLE,
    LLDP_REM_TABLE,
    CDP_CACHE_TABLE,
    HR_STORAGE_TABLE,
    HR_PROCESSOR_TABLE,
    HR_SW_INSTALLED_TABLE,
];

pub async fn probe(session: &mut Session) -> Result<Device, SnmpError> {
    let system = system(session).await?;
    let (chassis, components) = entities(session).await?;
    Ok(Device {
        system,
        chassis,
        components,
        interfaces: interfaces(session).await?,
        ip_addresses: ip_addresses(session).await?,
        lldp_neighbors: lldp_neighbors(session).await?,
        cdp_neighbors: cdp_neighbors(session).await?,
        host_resources: host_resources(session).await?,
    })
}

/// HOST-RESOURCES-MIB: storage, processors and installed software.
pub async fn host_resources(session: &mut Session) -> Result<Option<HostResources>, SnmpError> {
    let storage_rows = table(session, &HR_STORAGE_TABLE).await?;
    let processors = table(session, &HR_PROCESSOR_TABLE).await?.len();
    let software_rows = table(session, &HR_SW_INSTALLED_TABLE).await?;
    if storage_rows.is_empty() && processors == 0 && software_rows.is_empty() {
        return Ok(None);
    }
    let types = Oid(HR_STORAGE_TYPES.to_vec());
    let storage = storage_rows
        .iter()
        .filter_map(|(index, row)| {
            let [index] = index.as_slice() else {
                return None;
            };
            let units = number(row, 4).filter(|u| *u > 0);
            let bytes = |column| Some(number(row, column)?.saturating_mul(units?));
            Some(Storage {
                index: *index,
                kind: match row.get(&2) {
                    Some(Value::Oid(o)) => o.suffix(&types).and_then(|s| s.first()).map(|k| {
                        match k {
                            2 => "ram",
                            3 => "virtual_memory",
                            4 => "fixed_disk",
                            5 => "removable_disk",
                            6 => "floppy_disk",
                            7 => "compact_disc",
                            8 => "ram_disk",
                            9 => "flash_memory",
                            10 => "network_disk",
                            _ => "other",
                        }
                        .to_owned()
                    }),
                    _ => None,
                },
                descr: text(row, 3),
                size_bytes: bytes(5),
                used_bytes: bytes(6),
            })
        })
        .collect();
    let software = software_rows
        .values()
        .filter_map(|row| text(row, 2))
        .collect();
    Ok(Some(HostResources {
        storage,
        processors,
        software,
    }))
}

/// IP-MIB addresses: ipAddressTable (IPv4 and IPv6) where the device has
/// it, else the older ipAddrTable.
pub async fn ip_addresses(session: &mut Session) -> Result<Vec<IpAddress>, SnmpError> {
    let rows = table(session, &IP_ADDRESS_TABLE).await?;
    let mut out: Vec<IpAddress> = rows
        .iter()
        .filter_map(|(index, row)| {
            // Indexed by address type, length, then the address's bytes.
            let [kind, len, bytes @ ..] = index.as_slice() else {
                return None;
            };
            // ipAddressType 3: a broadcast address, not one the device holds.
            if number(row, 4) == Some(3) {
                return None;
            }
            let bytes: Vec<u8> = bytes
                .iter()
                .map(|b| u8::try_from(*b).ok())
                .collect::<Option<_>>()?;
            let address = match (kind, len, bytes.len()) {
                (1, 4, 4) => {
                    std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()
                }
                (2, 16, 16) => {
                    std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()
                }
                _ => return None,
            };
            Some(IpAddress {
                address,
                if_index: number(row, 3).and_then(|i| u32::try_from(i).ok()),
                // ipAddressPrefix points into ipAddressPrefixTable, whose
                // index ends with the prefix length.
                prefix_len: match row.get(&5) {
                    Some(Value::Oid(o)) => o.0.last().and_then(|l| u8::try_from(*l).ok()),
                    _ => None,
                },
            })
        })
        .collect();
    if out.is_empty() {
        for (index, row) in table(session, &IP_ADDR_TABLE).await? {
            let [a, b, c, d] = index.as_slice() else {
                continue;
            };
            let octets = [*a, *b, *c, *d].map(|x| u8::try_from(x).unwrap_or(0));
            out.push(IpAddress {
                address: std::net::Ipv4Addr::from(octets).to_string(),
                if_index: number(&row, 2).and_then(|i| u32::try_from(i).ok()),
                prefix_len: match row.get(&3) {
                    Some(Value::IpAddress(mask)) => {
                        Some(u32::from_be_bytes(*mask).count_ones() as u8)
                    }
                    _ => None,
                },
            });
        }
    }
    Ok(out)
}

/// CISCO-CDP-MIB cdpCacheTable, on Cisco and the devices that speak CDP.
pub async fn cdp_neighbors(session: &mut Session) -> Result<Vec<CdpNeighbor>, SnmpError> {
    let rows = table(session, &CDP_CACHE_TABLE).await?;
    Ok(rows
        .iter()
        .filter_map(|(index, row)| {
            let [if_index, _device] = index.as_slice() else {
                return None;
            };
            Some(CdpNeighbor {
                local_if_index: *if_index,
                remote_device_id: text(row, 6),
                remote_port: text(row, 7),
                remote_platform: text(row, 8),
                // cdpCacheAddressType 1 is ip.
                remote_address: match (number(row, 3), row.get(&4)) {
                    (Some(1), Some(Value::OctetString(b))) if b.len() == 4 => {
                        Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string())
                    }
                    _ => None,
                },
            })
        })
        .collect())
}

pub async fn system(session: &mut Session) -> Result<System, SnmpError> {
    let scalar = |n: u32| Oid(SYSTEM.to_vec()).child(n).child(0);
    let oids: Vec<Oid> = [1, 2, 3, 4, 5, 6].into_iter().map(scalar).collect();
    let answer: BTreeMap<Oid, Value> = session.get(&oids).await?.into_iter().collect();
    let text = |n: u32| answer.get(&scalar(n)).and_then(text_value);
    let object_id = answer.get(&scalar(2)).and_then(|v| match v {
        Value::Oid(o) => Some(o.clone()),
        _ => None,
    });
    Ok(System {
        sys_descr: text(1),
        vendor: object_id.as_ref().and_then(vendor),
        sys_object_id: object_id.map(|o| o.to_string()),
        sys_uptime_s: answer
            .get(&scalar(3))
            .and_then(Value::unsigned)
            .map(|ticks| ticks / 100),
        sys_contact: text(4),
        sys_name: text(5),
        sys_location: text(6),
    })
}

/// A table, walked into rows: index (the arcs after the column) → column →
/// value.
pub type Rows = BTreeMap<Vec<u32>, BTreeMap<u32, Value>>;

/// The wanted columns of a table, walked side by side.
pub async fn table(session: &mut Session, spec: &TableSpec) -> Result<Rows, SnmpError> {
    let entry = Oid(spec.entry.to_vec());
    let mut rows = Rows::new();
    for (oid, value) in session.walk_columns(&entry, spec.columns).await? {
        if let Some([column, index @ ..]) = oid.suffix(&entry) {
            if !index.is_empty() {
                rows.entry(index.to_vec())
                    .or_default()
                    .insert(*column, value);
            }
        }
    }
    Ok(rows)
}

/// A column's text, where the device has a non-empty value.
fn text(row: &BTreeMap<u32, Value>, column: u32) -> Option<String> {
    row.get(&column).and_then(text_value)
}

/// A value as text; `None` for a missing object or an empty string (the
/// device exposes nothing there).
fn text_value(value: &Value) -> Option<String> {
    Some(value)
        .filter(|v| v.exists())
        .and_then(Value::text)
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn number(row: &BTreeMap<u32, Value>, column: u32) -> Option<u64> {
    row.get(&column).and_then(Value::unsigned)
}

/// ENTITY-MIB entPhysicalTable: chassis, and every other entity as a
/// component with its place in the containment tree.
pub async fn entities(session: &mut Session) -> Result<(Vec<Chassis>, Vec<Component>), SnmpError> {
    let rows = table(session, &ENT_PHYSICAL_TABLE).await?;
    let mut chassis = Vec::new();
    let mut components = Vec::new();
    for (index, row) in &rows {
        let [index] = index.as_slice() else { continue };
        let class = number(row, 5);
        if class == Some(3) {
            chassis.push(Chassis {
                index: *index,
                model: text(row, 13),
                serial: text(row, 11),
                hardware_rev: text(row, 8),
                firmware_rev: text(row, 9),
                software_rev: text(row, 10),
                manufacturer: text(row, 12),
                description: text(row, 2),
            });
        } else {
            components.push(Component {
                index: *index,
                class: class.and_then(physical_class).map(str::to_owned),
                name: text(row, 7),
                description: text(row, 2),
                model: text(row, 13),
                serial: text(row, 11),
                parent_index: number(row, 4)
                    .filter(|p| *p != 0)
                    .and_then(|p| u32::try_from(p).ok()),
            });
        }
    }
    Ok((chassis, components))
}

/// ENTITY-MIB PhysicalClass.
fn physical_class(code: u64) -> Option<&'static str> {
    Some(match code {
        1 => "other",
        2 => "unknown",
        3 => "chassis",
        4 => "backplane",
        5 => "container",
        6 => "powerSupply",
        7 => "fan",
        8 => "sensor",
        9 => "module",
        10 => "port",
        11 => "stack",
        12 => "cpu",
        13 => "energyObject",
        14 => "battery",
        15 => "storageDrive",
        _ => return None,
    })
}

/// LLDP-MIB: the local ports and what each hears from its neighbours.
pub async fn lldp_neighbors(session: &mut Session) -> Result<Vec<LldpNeighbor>, SnmpError> {
    let local = table(session, &LLDP_LOC_PORT_TABLE).await?;
    let remote = table(session, &LLDP_REM_TABLE).await?;
    Ok(remote
        .iter()
        // Indexed by time mark, local port number, remote index.
        .filter_map(|(index, row)| {
            let [_time_mark, port, _remote] = index.as_slice() else {
                return None;
            };
            let local_row = local.get(&vec![*port]);
            Some(LldpNeighbor {
                local_port_num: *port,
                local_port: local_row.and_then(|r| id_text(r, 2, 3, 3)),
                remote_chassis_id: id_text(row, 4, 5, 4),
                remote_port_id: id_text(row, 6, 7, 3),
                remote_port_descr: text(row, 8),
                remote_sys_name: text(row, 9),
            })
        })
        .collect())
}

/// An LLDP id whose subtype column says how to read it: a MAC address
/// (chassis subtype 4, port subtype 3) as `aa:bb:…`, anything else as text.
fn id_text(row: &BTreeMap<u32, Value>, subtype: u32, id: u32, mac_subtype: u64) -> Option<String> {
    match row.get(&id)? {
        Value::OctetString(bytes)
            if number(row, subtype) == Some(mac_subtype) && bytes.len() == 6 =>
        {
            Some(hex_colons(bytes))
        }
        value => value.text(),
    }
}

pub async fn interfaces(session: &mut Session) -> Result<Vec<Interface>, SnmpError> {
    let if_table = table(session, &IF_TABLE).await?;
    let if_x_table = table(session, &IF_X_TABLE).await?;
    let empty = BTreeMap::new();
    Ok(if_table
        .iter()
        .filter_map(|(index, row)| {
            let [index] = index.as_slice() else {
                return None;
            };
            let x = if_x_table.get(&vec![*index]).unwrap_or(&empty);
            let status = |column| number(row, column).map(|s| s == 1);
            Some(Interface {
                index: *index,
                name: text(x, 1),
                descr: text(row, 2),
                alias: text(x, 18),
                kind: number(row, 3),
                mac: match row.get(&6) {
                    Some(Value::OctetString(b)) if b.len() == 6 => Some(hex_colons(b)),
                    _ => None,
                },
                speed_bps: match (number(x, 15), number(row, 5)) {
                    (Some(high), _) if high > 0 => Some(high * 1_000_000),
                    (_, speed) => speed,
                },
                admin_up: status(7),
                oper_up: status(8),
                counters: counters(row, x),
            })
        })
        .collect())
}

/// Octet counters from ifXTable's 64-bit columns where the device has
/// both, else ifTable's 32-bit ones; `None` when it has no counters at all.
fn counters(row: &BTreeMap<u32, Value>, x: &BTreeMap<u32, Value>) -> Option<InterfaceCounters> {
    let high = (number(x, 6), number(x, 10));
    let high_capacity = matches!(high, (Some(_), Some(_)));
    let (in_octets, out_octets) = if high_capacity {
        high
    } else {
        (number(row, 10), number(row, 16))
    };
    let found = InterfaceCounters {
        in_octets,
        out_octets,
        high_capacity,
        in_errors: number(row, 14),
        out_errors: number(row, 20),
        in_discards: number(row, 13),
        out_discards: number(row, 19),
    };
    (found != InterfaceCounters::default()).then_some(found)
}

/// The vendor an enterprise number under 1.3.6.1.4.1 belongs to (IANA's
/// registry; the common makers of network gear).
fn vendor(object_id: &Oid) -> Option<String> {
    let number = object_id.suffix(&Oid(ENTERPRISES.to_vec()))?.first()?;
    let name = match number {
        9 => "Cisco",
        11 => "HP",
        43 => "3Com",
        171 => "D-Link",
        311 => "Microsoft",
        674 => "Dell",
        1916 => "Extreme Networks",
        1991 => "Brocade (Foundry)",
        2011 => "Huawei",
        2021 | 8072 => "Net-SNMP",
        2636 => "Juniper",
        3375 => "F5",
        4526 => "Netgear",
        6027 => "Force10",
        6486 => "Alcatel-Lucent",
        6527 => "Nokia (Alcatel-Lucent)",
        9303 => "Yamaha",
        12356 => "Fortinet",
        14823 => "Aruba",
        14988 => "MikroTik",
        25461 => "Palo Alto Networks",
        25506 => "H3C",
        30065 => "Arista",
        41112 => "Ubiquiti",
        47196 => "Cumulus",
        _ => return None,
    };
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_come_from_the_enterprise_number() {
        let v = |s: &str| vendor(&Oid::parse(s).unwrap());
        assert_eq!(v("1.3.6.1.4.1.9.1.1208").as_deref(), Some("Cisco"));
        assert_eq!(v("1.3.6.1.4.1.8072.3.2.10").as_deref(), Some("Net-SNMP"));
        assert_eq!(v("1.3.6.1.4.1.99999.1"), None);
        assert_eq!(v("1.3.6.1.2.1.1"), None);
    }

    fn o(text: &str) -> Oid {
        Oid::parse(text).unwrap()
    }

    fn s(text: &str) -> Value {
        Value::OctetString(text.as_bytes().to_vec())
    }

    /// A two-switch stack with a module, a power supply and a fan, one
    /// interface and one LLDP neighbour: what a stacked access switch
    /// exposes (ENTITY-MIB rows by column.index).
    fn stack() -> BTreeMap<Oid, Value> {
        let ent = |column: u32, index: u32, value: Value| {
            (
                o(&format!("1.3.6.1.2.1.47.1.1.1.1.{column}.{index}")),
                value,
            )
        };
        let mut objects: BTreeMap<Oid, Value> = [
            (o("1.3.6.1.2.1.1.1.0"), s("Cisco IOS Software, C2960X")),
            (
                o("1.3.6.1.2.1.1.2.0"),
                Value::Oid(o("1.3.6.1.4.1.9.1.1208")),
            ),
            (o("1.3.6.1.2.1.1.3.0"), Value::TimeTicks(123_456)),
            (o("1.3.6.1.2.1.1.5.0"), s("access-3")),
            // The stack, two chassis in it, and their parts.
            ent(5, 1, Value::Integer(11)),
            ent(7, 1, s("Stack")),
            ent(2, 1001, s("WS-C2960X-48FPD-L")),
            ent(4, 1001, Value::Integer(1)),
            ent(5, 1001, Value::Integer(3)),
            ent(11, 1001, s("FOC1234X0AB")),
            ent(13, 1001, s("WS-C2960X-48FPD-L")),
            ent(10, 1001, s("15.2(7)E4")),
            ent(12, 1001, s("Cisco")),
            ent(5, 2001, Value::Integer(3)),
            ent(4, 2001, Value::Integer(1)),
            ent(11, 2001, s("FOC5678X0CD")),
            ent(13, 2001, s("WS-C2960X-48FPD-L")),
            ent(5, 1002, Value::Integer(9)),
            ent(4, 1002, Value::Integer(1001)),
            ent(7, 1002, s("Switch 1 - FlexStackPlus Module")),
            ent(11, 1002, s("FOC1111")),
            ent(5, 1003, Value::Integer(6)),
            ent(4, 1003, Value::Integer(1001)),
            ent(5, 2004, Value::Integer(7)),
            ent(4, 2004, Value::Integer(2001)),
            // ifTable row 10101.
            (o("1.3.6.1.2.1.2.2.1.1.10101"), Value::Integer(10101)),
            (o("1.3.6.1.2.1.2.2.1.2.10101"), s("GigabitEthernet1/0/1")),
            (o("1.3.6.1.2.1.2.2.1.3.10101"), Value::Integer(6)),
            (
                o("1.3.6.1.2.1.2.2.1.5.10101"),
                Value::Gauge32(1_000_000_000),
            ),
            (
                o("1.3.6.1.2.1.2.2.1.6.10101"),
                Value::OctetString(vec![0x00, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]),
            ),
            (o("1.3.6.1.2.1.2.2.1.7.10101"), Value::Integer(1)),
            (o("1.3.6.1.2.1.2.2.1.8.10101"), Value::Integer(2)),
            (o("1.3.6.1.2.1.31.1.1.1.1.10101"), s("Gi1/0/1")),
            (o("1.3.6.1.2.1.31.1.1.1.15.10101"), Value::Gauge32(1000)),
            (o("1.3.6.1.2.1.31.1.1.1.18.10101"), s("uplink to core")),
            // LLDP: local port 1 (by name), one neighbour on it with a MAC
            // chassis id (subtype 4) and an interface-name port id (5).
            (o("1.0.8802.1.1.2.1.3.7.1.2.1"), Value::Integer(5)),
            (o("1.0.8802.1.1.2.1.3.7.1.3.1"), s("Gi1/0/1")),
            (o("1.0.8802.1.1.2.1.4.1.1.4.0.1.3"), Value::Integer(4)),
            (
                o("1.0.8802.1.1.2.1.4.1.1.5.0.1.3"),
                Value::OctetString(vec![0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            ),
            (o("1.0.8802.1.1.2.1.4.1.1.6.0.1.3"), Value::Integer(5)),
            (o("1.0.8802.1.1.2.1.4.1.1.7.0.1.3"), s("eth0")),
            (o("1.0.8802.1.1.2.1.4.1.1.8.0.1.3"), s("uplink")),
            (o("1.0.8802.1.1.2.1.4.1.1.9.0.1.3"), s("web-14.example.org")),
        ]
        .into_iter()
        .collect();
        objects.insert(o("1.3.6.1.2.1.1.6.0"), Value::OctetString(vec![0xff, 0xfe]));
        objects
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_stack_its_parts_its_ports_and_its_neighbours() {
        let target = crate::snmp::fake::serve(stack()).await;
        let mut session = Session::open(target, crate::snmp::client::Settings::default())
            .await
            .unwrap();
        let found = probe(&mut session).await.unwrap();
        assert_eq!(found.system.sys_name.as_deref(), Some("access-3"));
        assert_eq!(found.system.vendor.as_deref(), Some("Cisco"));
        assert_eq!(found.system.sys_uptime_s, Some(1234));
        // Not UTF-8: shown as hex.
        assert_eq!(found.system.sys_location.as_deref(), Some("ff:fe"));
        // Two chassis in the stack, each with its own serial.
        let serials: Vec<_> = found.chassis.iter().map(|c| c.serial.as_deref()).collect();
        assert_eq!(serials, [Some("FOC1234X0AB"), Some("FOC5678X0CD")]);
        assert_eq!(found.chassis[0].software_rev.as_deref(), Some("15.2(7)E4"));
        assert_eq!(found.chassis[0].manufacturer.as_deref(), Some("Cisco"));
        let component = |index| found.components.iter().find(|c| c.index == index).unwrap();
        assert_eq!(component(1).class.as_deref(), Some("stack"));
        assert_eq!(component(1).parent_index, None);
        assert_eq!(component(1002).class.as_deref(), Some("module"));
        assert_eq!(component(1002).parent_index, Some(1001));
        assert_eq!(component(1003).class.as_deref(), Some("powerSupply"));
        assert_eq!(component(2004).class.as_deref(), Some("fan"));
        assert_eq!(component(2004).parent_index, Some(2001));

        let port = &found.interfaces[0];
        assert_eq!(port.index, 10101);
        assert_eq!(port.name.as_deref(), Some("Gi1/0/1"));
        assert_eq!(port.alias.as_deref(), Some("uplink to core"));
        assert_eq!(port.mac.as_deref(), Some("00:1b:2c:3d:4e:5f"));
        assert_eq!(port.speed_bps, Some(1_000_000_000));
        assert_eq!((port.admin_up, port.oper_up), (Some(true), Some(false)));

        assert_eq!(
            found.lldp_neighbors,
            [LldpNeighbor {
                local_port_num: 1,
                local_port: Some("Gi1/0/1".into()),
                remote_chassis_id: Some("52:54:00:12:34:56".into()),
                remote_port_id: Some("eth0".into()),
                remote_port_descr: Some("uplink".into()),
                remote_sys_name: Some("web-14.example.org".into()),
            }]
        );
    }
}
