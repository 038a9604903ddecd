//! What `fathom-agent probe snmp` reads so far: the SNMPv2-MIB system
//! group and the IF-MIB interface tables.

use std::collections::BTreeMap;

use serde::Serialize;

use super::client::{Session, SnmpError};
use super::{hex_colons, Oid, Value};

/// SNMPv2-MIB::system (1.3.6.1.2.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}

/// What one probe of a device found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub system: System,
    pub interfaces: Vec<Interface>,
}

const SYSTEM: [u32; 7] = [1, 3, 6, 1, 2, 1, 1];
const IF_ENTRY: [u32; 9] = [1, 3, 6, 1, 2, 1, 2, 2, 1];
const IF_X_ENTRY: [u32; 10] = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1];
const ENTERPRISES: [u32; 6] = [1, 3, 6, 1, 4, 1];

pub async fn probe(session: &mut Session) -> Result<Probe, SnmpError> {
    Ok(Probe {
        system: system(session).await?,
        interfaces: interfaces(session).await?,
    })
}

pub async fn system(session: &mut Session) -> Result<System, SnmpError> {
    let scalar = |n: u32| Oid(SYSTEM.to_vec()).child(n).child(0);
    let oids: Vec<Oid> = [1, 2, 3, 4, 5, 6].into_iter().map(scalar).collect();
    let answer: BTreeMap<Oid, Value> = session.get(&oids).await?.into_iter().collect();
    let text = |n: u32| {
        answer
            .get(&scalar(n))
            .filter(|v| v.exists())
            .and_then(Value::text)
    };
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

/// A table walked into rows by index: column → index → value.
async fn table(
    session: &mut Session,
    entry: &Oid,
) -> Result<BTreeMap<u32, BTreeMap<u32, Value>>, SnmpError> {
    let mut columns: BTreeMap<u32, BTreeMap<u32, Value>> = BTreeMap::new();
    for (oid, value) in session.walk(entry).await? {
        if let Some([column, index]) = oid.suffix(entry) {
            columns.entry(*column).or_default().insert(*index, value);
        }
    }
    Ok(columns)
}

pub async fn interfaces(session: &mut Session) -> Result<Vec<Interface>, SnmpError> {
    let if_table = table(session, &Oid(IF_ENTRY.to_vec())).await?;
    let if_x_table = table(session, &Oid(IF_X_ENTRY.to_vec())).await?;
    let get = |t: &BTreeMap<u32, BTreeMap<u32, Value>>, column: u32, index: u32| {
        t.get(&column).and_then(|c| c.get(&index)).cloned()
    };
    let status = |v: Option<Value>| v.and_then(|v| v.unsigned()).map(|s| s == 1);
    let indexes = if_table
        .get(&1)
        .map(|c| c.keys().copied().collect::<Vec<_>>())
        .unwrap_or_default();
    Ok(indexes
        .into_iter()
        .map(|index| {
            let text = |t, column| {
                get(t, column, index)
                    .and_then(|v| v.text())
                    .filter(|s| !s.is_empty())
            };
            let high_speed = get(&if_x_table, 15, index).and_then(|v| v.unsigned());
            let speed = get(&if_table, 5, index).and_then(|v| v.unsigned());
            Interface {
                index,
                name: text(&if_x_table, 1),
                descr: text(&if_table, 2),
                alias: text(&if_x_table, 18),
                kind: get(&if_table, 3, index).and_then(|v| v.unsigned()),
                mac: match get(&if_table, 6, index) {
                    Some(Value::OctetString(b)) if b.len() == 6 => Some(hex_colons(&b)),
                    _ => None,
                },
                speed_bps: match (high_speed, speed) {
                    (Some(h), _) if h > 0 => Some(h * 1_000_000),
                    (_, s) => s,
                },
                admin_up: status(get(&if_table, 7, index)),
                oper_up: status(get(&if_table, 8, index)),
            }
        })
        .collect())
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
}
