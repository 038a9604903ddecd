//! Identification: which CI a report is about.
//!
//! Rules, strongest first: the reporting agent's own key, then the SMBIOS
//! system UUID, the hardware serial, the machine-id, and the set of physical
//! MAC addresses. An agent already tied to a CI goes to that CI. Otherwise
//! each identifier is looked up in the index; a candidate CI is accepted only
//! if the **first identifier both sides have** agrees, so a weak match (a
//! shared MAC) never overrides a strong disagreement (different machine-ids).
//!
//! Placeholder values that firmware vendors ship ("To Be Filled By O.E.M.",
//! all-zero UUIDs) identify nothing and are dropped before matching.
//!
//! This module decides; it does not read or write the store.

use std::collections::BTreeSet;

use fathom_shared::ids::{AgentId, CiId};
use fathom_shared::wire::Inventory;
use serde::{Deserialize, Serialize};

/// The identifiers one report offers, or one CI is known by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifiers {
    #[serde(default)]
    pub dmi_uuid: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub machine_id: Option<String>,
    #[serde(default)]
    pub macs: BTreeSet<String>,
}

/// An identification rule, in precedence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Agent,
    DmiUuid,
    Serial,
    MachineId,
    MacSet,
}

impl Rule {
    pub const HARDWARE: [Rule; 4] = [Rule::DmiUuid, Rule::Serial, Rule::MachineId, Rule::MacSet];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Agent => "agent",
            Rule::DmiUuid => "dmi_uuid",
            Rule::Serial => "serial",
            Rule::MachineId => "machine_id",
            Rule::MacSet => "mac_set",
        }
    }
}

/// Index keys for an identifier: `<rule>\0<value>`.
pub fn index_key(rule: Rule, value: &str) -> Vec<u8> {
    let mut key = rule.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(value.as_bytes());
    key
}

pub fn agent_index_key(agent: AgentId) -> Vec<u8> {
    index_key(Rule::Agent, &agent.to_string())
}

impl Identifiers {
    /// What an inventory offers, with placeholders dropped.
    pub fn from_inventory(inventory: &Inventory) -> Identifiers {
        let dmi = inventory.dmi.as_ref();
        let macs = inventory
            .interfaces
            .iter()
            .flatten()
            .filter(|i| is_physical_interface(&i.name))
            .filter_map(|i| i.mac.as_deref())
            .filter(|m| usable_mac(m))
            .map(str::to_ascii_lowercase)
            .collect();
        Identifiers {
            dmi_uuid: dmi
                .and_then(|d| d.product_uuid.as_deref())
                .and_then(usable_uuid),
            serial: dmi
                .and_then(|d| d.product_serial.as_deref())
                .and_then(usable_serial),
            machine_id: inventory.host.machine_id.clone(),
            macs,
        }
    }

    /// `(rule, value)` pairs for the index.
    pub fn index_entries(&self) -> Vec<(Rule, String)> {
        let mut out = Vec::new();
        if let Some(v) = &self.dmi_uuid {
            out.push((Rule::DmiUuid, v.clone()));
        }
        if let Some(v) = &self.serial {
            out.push((Rule::Serial, v.clone()));
        }
        if let Some(v) = &self.machine_id {
            out.push((Rule::MachineId, v.clone()));
        }
        for mac in &self.macs {
            out.push((Rule::MacSet, mac.clone()));
        }
        out
    }

    /// The first rule both sides have a value for, and whether they agree.
    pub fn first_shared(&self, other: &Identifiers) -> Option<(Rule, bool)> {
        let pairs = [
            (
                Rule::DmiUuid,
                self.dmi_uuid.as_ref(),
                other.dmi_uuid.as_ref(),
            ),
            (Rule::Serial, self.serial.as_ref(), other.serial.as_ref()),
            (
                Rule::MachineId,
                self.machine_id.as_ref(),
                other.machine_id.as_ref(),
            ),
        ];
        for (rule, a, b) in pairs {
            if let (Some(a), Some(b)) = (a, b) {
                return Some((rule, a == b));
            }
        }
        if !self.macs.is_empty() && !other.macs.is_empty() {
            return Some((Rule::MacSet, !self.macs.is_disjoint(&other.macs)));
        }
        None
    }

    /// Fills in what `newer` has; keeps what it lacks (a probe that failed
    /// this time says nothing about the hardware).
    pub fn merge_from(&mut self, newer: &Identifiers) {
        if newer.dmi_uuid.is_some() {
            self.dmi_uuid = newer.dmi_uuid.clone();
        }
        if newer.serial.is_some() {
            self.serial = newer.serial.clone();
        }
        if newer.machine_id.is_some() {
            self.machine_id = newer.machine_id.clone();
        }
        if !newer.macs.is_empty() {
            self.macs = newer.macs.clone();
        }
    }
}

/// The outcome of identification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The CI this agent already reports for.
    Known(CiId),
    /// An existing CI matched on hardware identity.
    Matched { ci: CiId, rule: Rule },
    /// Nothing matched: a new CI.
    New,
}

/// Decides which CI a report from `agent` with `ids` belongs to.
///
/// `by_agent` finds the CI an agent is tied to; `lookup` finds the CI an
/// identifier is indexed under; `known` gives a CI's identifiers.
pub fn identify(
    ids: &Identifiers,
    by_agent: Option<CiId>,
    lookup: impl Fn(Rule, &str) -> Option<CiId>,
    known: impl Fn(CiId) -> Option<Identifiers>,
) -> Decision {
    if let Some(ci) = by_agent {
        return Decision::Known(ci);
    }
    for (rule, value) in ids.index_entries() {
        let Some(candidate) = lookup(rule, &value) else {
            continue;
        };
        let Some(theirs) = known(candidate) else {
            continue;
        };
        if let Some((decided_by, true)) = ids.first_shared(&theirs) {
            return Decision::Matched {
                ci: candidate,
                rule: decided_by,
            };
        }
    }
    Decision::New
}

fn usable_uuid(u: &str) -> Option<String> {
    let u = u.trim().to_ascii_lowercase();
    let hex: String = u.chars().filter(|c| *c != '-').collect();
    let junk = hex.len() != 32
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
        || hex.bytes().all(|b| b == b'0')
        || hex.bytes().all(|b| b == b'f')
        // A well-known placeholder shipped by several board vendors.
        || u == "03000200-0400-0500-0006-000700080009";
    (!junk).then_some(u)
}

fn usable_serial(s: &str) -> Option<String> {
    let s = s.trim();
    const PLACEHOLDERS: &[&str] = &[
        "to be filled by o.e.m.",
        "default string",
        "system serial number",
        "not specified",
        "not applicable",
        "none",
        "n/a",
        "na",
        "0123456789",
        "123456789",
        "chassis serial number",
        "serial",
    ];
    let lower = s.to_ascii_lowercase();
    let one_char = s.chars().all(|c| s.starts_with(c));
    (!(s.len() < 3 || one_char || PLACEHOLDERS.contains(&lower.as_str()))).then(|| s.to_owned())
}

fn usable_mac(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    m.len() == 17 && m != "00:00:00:00:00:00" && m != "ff:ff:ff:ff:ff:ff"
}

/// Virtual interfaces get a new random MAC at each boot or container start;
/// they identify nothing.
fn is_physical_interface(name: &str) -> bool {
    const VIRTUAL: &[&str] = &[
        "lo", "veth", "docker", "br-", "virbr", "cni", "flannel", "cali", "vxlan", "kube", "tun",
        "tap", "ifb", "dummy", "wg", "podman", "lxc",
    ];
    !VIRTUAL.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn ids(
        uuid: Option<&str>,
        serial: Option<&str>,
        mid: Option<&str>,
        macs: &[&str],
    ) -> Identifiers {
        Identifiers {
            dmi_uuid: uuid.map(Into::into),
            serial: serial.map(Into::into),
            machine_id: mid.map(Into::into),
            macs: macs.iter().map(|m| m.to_string()).collect(),
        }
    }

    /// A CMDB of `cis` (id, identifiers), and `report` to identify.
    fn decide(cis: &[(u64, Identifiers)], report: &Identifiers) -> Decision {
        let mut index: HashMap<Vec<u8>, CiId> = HashMap::new();
        for (id, i) in cis {
            for (rule, value) in i.index_entries() {
                index.insert(index_key(rule, &value), CiId::from_u64(*id));
            }
        }
        identify(
            report,
            None,
            |rule, value| index.get(&index_key(rule, value)).copied(),
            |ci| {
                cis.iter()
                    .find(|(id, _)| CiId::from_u64(*id) == ci)
                    .map(|(_, i)| i.clone())
            },
        )
    }

    #[test]
    fn rules_in_precedence_order() {
        let a = ids(Some("u1"), Some("s1"), Some("m1"), &["aa:aa:aa:aa:aa:01"]);
        let cases = [
            // Same UUID: a match on the UUID, whatever else changed.
            (
                ids(Some("u1"), Some("s9"), Some("m9"), &[]),
                Decision::Matched {
                    ci: CiId::from_u64(1),
                    rule: Rule::DmiUuid,
                },
            ),
            // No UUID in the report; the serial decides.
            (
                ids(None, Some("s1"), Some("m9"), &[]),
                Decision::Matched {
                    ci: CiId::from_u64(1),
                    rule: Rule::Serial,
                },
            ),
            // Reinstalled OS (new machine-id) on a VM without SMBIOS, same NIC.
            (
                ids(None, None, None, &["aa:aa:aa:aa:aa:01"]),
                Decision::Matched {
                    ci: CiId::from_u64(1),
                    rule: Rule::MacSet,
                },
            ),
            // A shared MAC does not beat a different machine-id.
            (
                ids(None, None, Some("m2"), &["aa:aa:aa:aa:aa:01"]),
                Decision::New,
            ),
            // A cloned serial does not beat a different UUID.
            (ids(Some("u2"), Some("s1"), None, &[]), Decision::New),
            (ids(None, None, None, &[]), Decision::New),
        ];
        for (report, expected) in cases {
            assert_eq!(decide(&[(1, a.clone())], &report), expected, "{report:?}");
        }
    }

    #[test]
    fn an_agent_already_tied_to_a_ci_stays_there() {
        let d = identify(
            &Identifiers::default(),
            Some(CiId::from_u64(7)),
            |_, _| None,
            |_| None,
        );
        assert_eq!(d, Decision::Known(CiId::from_u64(7)));
    }

    #[test]
    fn placeholders_identify_nothing() {
        assert_eq!(usable_serial("To Be Filled By O.E.M."), None);
        assert_eq!(usable_serial("0000000"), None);
        assert_eq!(usable_serial("CZ2D1234AB").as_deref(), Some("CZ2D1234AB"));
        assert_eq!(usable_uuid("00000000-0000-0000-0000-000000000000"), None);
        assert_eq!(usable_uuid("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"), None);
        assert_eq!(usable_uuid("03000200-0400-0500-0006-000700080009"), None);
        assert!(usable_uuid("4C4C4544-0042-3510-8051-B4C04F4E4B32").is_some());
        assert!(!usable_mac("00:00:00:00:00:00"));
        assert!(!is_physical_interface("veth1234"));
        assert!(is_physical_interface("eth0"));
        assert!(is_physical_interface("enp3s0"));
    }
}
