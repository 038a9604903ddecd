//! Identification: which CI a report is about.
//!
//! Rules, strongest first: the reporting agent's own key, then the SMBIOS
//! system UUID, the hardware serial, the machine-id, the set of physical
//! MAC addresses, and the hostname. An agent already tied to a CI goes to
//! that CI. Otherwise each identifier is looked up in the index, and each
//! candidate CI found is compared on every identifier both sides have:
//!
//! - the strong identifiers (UUID, serial, machine-id) both have all agree:
//!   **matched**, by the strongest of them (MACs may differ: NICs get
//!   replaced);
//! - none is shared, but a MAC is: matched by the MAC set (a VM without
//!   SMBIOS, reinstalled);
//! - some agree and some disagree (a cloned VM's UUID, a container seeing
//!   its host's UUID, a rebuilt host with a new machine-id), or the UUID
//!   matches only byte-swapped, or only the hostname is shared: **not
//!   merged**. The report gets a new CI and the pair goes to the review
//!   queue, where a person merges them or keeps them apart;
//! - the whole MAC set is identical but a strong identifier disagrees:
//!   not merged, reviewed (cloned VMs that kept their MACs);
//! - only some MACs are shared and a strong identifier disagrees: a
//!   different host (virtual MACs get reused); nothing to review.
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
    #[serde(default)]
    pub hostname: Option<String>,
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
    Hostname,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Agent => "agent",
            Rule::DmiUuid => "dmi_uuid",
            Rule::Serial => "serial",
            Rule::MachineId => "machine_id",
            Rule::MacSet => "mac_set",
            Rule::Hostname => "hostname",
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
            hostname: Some(inventory.host.hostname.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty() && h != "localhost"),
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
        if let Some(v) = &self.hostname {
            out.push((Rule::Hostname, v.clone()));
        }
        out
    }

    /// The strong identifiers both sides have, each with whether they agree.
    pub fn compare_strong(&self, other: &Identifiers) -> Vec<(Rule, bool)> {
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
        pairs
            .into_iter()
            .filter_map(|(rule, a, b)| Some((rule, a? == b?)))
            .collect()
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
        if newer.hostname.is_some() {
            self.hostname = newer.hostname.clone();
        }
    }
}

/// The SMBIOS UUID with its first three fields byte-swapped: firmware and
/// tools disagree on their byte order (SMBIOS 2.6 changed it), so the same
/// machine can show up under either form.
pub fn byte_swapped_uuid(uuid: &str) -> Option<String> {
    let parts: Vec<&str> = uuid.split('-').collect();
    if parts.len() != 5 || parts[0].len() != 8 || parts[1].len() != 4 || parts[2].len() != 4 {
        return None;
    }
    let swap = |p: &str| -> String {
        let bytes: Vec<&str> = (0..p.len()).step_by(2).map(|i| &p[i..i + 2]).collect();
        bytes.into_iter().rev().collect()
    };
    let swapped = format!(
        "{}-{}-{}-{}-{}",
        swap(parts[0]),
        swap(parts[1]),
        swap(parts[2]),
        parts[3],
        parts[4]
    );
    (swapped != uuid).then_some(swapped)
}

/// A CI that looks like the same thing as the report, but not surely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub ci: CiId,
    /// What agrees and what does not, for the reviewer.
    pub reason: String,
}

/// The outcome of identification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The CI this agent already reports for.
    Known(CiId),
    /// An existing CI matched on hardware identity.
    Matched {
        ci: CiId,
        rule: Rule,
        /// Every identifier that agreed.
        agreeing: Vec<Rule>,
    },
    /// Nothing matched surely: a new CI, and these possible duplicates for
    /// the review queue.
    New { candidates: Vec<Candidate> },
}

fn names(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
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
    let mut looked_up: Vec<(Rule, String)> = ids.index_entries();
    if let Some(swapped) = ids.dmi_uuid.as_deref().and_then(byte_swapped_uuid) {
        looked_up.push((Rule::DmiUuid, swapped));
    }
    let mut seen = BTreeSet::new();
    let mut candidates = Vec::new();
    for (found_by, value) in looked_up {
        let Some(ci) = lookup(found_by, &value) else {
            continue;
        };
        if !seen.insert(ci) {
            continue;
        }
        let Some(theirs) = known(ci) else {
            continue;
        };
        let strong = ids.compare_strong(&theirs);
        let agreeing: Vec<Rule> = strong.iter().filter(|(_, a)| *a).map(|(r, _)| *r).collect();
        let disagreeing: Vec<Rule> = strong
            .iter()
            .filter(|(_, a)| !*a)
            .map(|(r, _)| *r)
            .collect();
        let macs_overlap = !ids.macs.is_disjoint(&theirs.macs);
        if !agreeing.is_empty() && disagreeing.is_empty() {
            let mut all = agreeing.clone();
            if macs_overlap {
                all.push(Rule::MacSet);
            }
            if ids.hostname.is_some() && ids.hostname == theirs.hostname {
                all.push(Rule::Hostname);
            }
            return Decision::Matched {
                ci,
                rule: agreeing[0],
                agreeing: all,
            };
        }
        if strong.is_empty() && macs_overlap {
            return Decision::Matched {
                ci,
                rule: Rule::MacSet,
                agreeing: vec![Rule::MacSet],
            };
        }
        let swapped = found_by == Rule::DmiUuid && ids.dmi_uuid.as_deref() != Some(value.as_str());
        let reason = if swapped {
            Some(format!(
                "its DMI UUID {} is this report's UUID byte-swapped (a firmware or tool byte-order difference, or a coincidence)",
                value
            ))
        } else if !agreeing.is_empty() {
            Some(format!(
                "same {}, but different {} (a cloned VM or template, a container seeing its host's hardware, or a rebuilt host)",
                names(&agreeing),
                names(&disagreeing)
            ))
        } else if !ids.macs.is_empty() && ids.macs == theirs.macs {
            // Reused virtual MACs explain one shared address, never a
            // whole identical set.
            Some(format!(
                "the same MAC set ({}), but different {} (cloned VMs that kept their MACs, or one host with a new identity)",
                ids.macs.iter().cloned().collect::<Vec<_>>().join(", "),
                names(&disagreeing)
            ))
        } else if found_by == Rule::Hostname {
            Some(if disagreeing.is_empty() {
                "same hostname, no hardware identifier to compare".to_string()
            } else {
                format!("same hostname, but different {}", names(&disagreeing))
            })
        } else {
            // Found by a MAC only, and a strong identifier disagrees: virtual
            // MACs are reused; a different host.
            None
        };
        if let Some(reason) = reason {
            candidates.push(Candidate { ci, reason });
        }
    }
    Decision::New { candidates }
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

pub(crate) fn usable_serial(s: &str) -> Option<String> {
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

pub(crate) fn usable_mac(m: &str) -> bool {
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
            hostname: None,
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

    fn matched(rule: Rule) -> impl Fn(&Decision) -> bool {
        move |d| matches!(d, Decision::Matched { ci, rule: r, .. } if *ci == CiId::from_u64(1) && *r == rule)
    }

    fn review(d: &Decision) -> bool {
        matches!(d, Decision::New { candidates } if candidates.len() == 1 && candidates[0].ci == CiId::from_u64(1))
    }

    fn new_silently(d: &Decision) -> bool {
        matches!(d, Decision::New { candidates } if candidates.is_empty())
    }

    #[test]
    fn rules_in_precedence_order() {
        let a = ids(
            Some("4c4c4544-0042-3510-8051-b4c04f4e4b32"),
            Some("s1"),
            Some("m1"),
            &["aa:aa:aa:aa:aa:01"],
        );
        type Check = Box<dyn Fn(&Decision) -> bool>;
        let cases: Vec<(&str, Identifiers, Check)> = vec![
            (
                "same UUID and machine-id, new NIC",
                ids(
                    Some("4c4c4544-0042-3510-8051-b4c04f4e4b32"),
                    None,
                    Some("m1"),
                    &["bb:bb:bb:bb:bb:02"],
                ),
                Box::new(matched(Rule::DmiUuid)),
            ),
            (
                "no UUID in the report: the serial decides",
                ids(None, Some("s1"), Some("m1"), &[]),
                Box::new(matched(Rule::Serial)),
            ),
            (
                "reinstalled VM without SMBIOS, same NIC",
                ids(None, None, None, &["aa:aa:aa:aa:aa:01"]),
                Box::new(matched(Rule::MacSet)),
            ),
            (
                "cloned VM: same UUID, another machine-id",
                ids(
                    Some("4c4c4544-0042-3510-8051-b4c04f4e4b32"),
                    None,
                    Some("m2"),
                    &[],
                ),
                Box::new(review),
            ),
            (
                "a cloned serial with another UUID",
                ids(
                    Some("11111111-2222-3333-4444-555555555555"),
                    Some("s1"),
                    None,
                    &[],
                ),
                Box::new(review),
            ),
            (
                "the UUID byte-swapped",
                ids(
                    Some("44454c4c-4200-1035-8051-b4c04f4e4b32"),
                    None,
                    Some("m9"),
                    &[],
                ),
                Box::new(review),
            ),
            (
                "a MAC shared among others, with another machine-id, is another host",
                ids(
                    None,
                    None,
                    Some("m2"),
                    &["aa:aa:aa:aa:aa:01", "cc:cc:cc:cc:cc:03"],
                ),
                Box::new(new_silently),
            ),
            (
                "the identical MAC set with another machine-id: a clone to review",
                ids(None, None, Some("m2"), &["aa:aa:aa:aa:aa:01"]),
                Box::new(review),
            ),
            (
                "nothing at all",
                ids(None, None, None, &[]),
                Box::new(new_silently),
            ),
        ];
        for (what, report, check) in cases {
            let d = decide(&[(1, a.clone())], &report);
            assert!(check(&d), "{what}: {d:?}");
        }
        let mut named = ids(None, None, Some("m7"), &[]);
        named.hostname = Some("web-1".into());
        let mut theirs = ids(None, None, Some("m1"), &[]);
        theirs.hostname = Some("web-1".into());
        assert!(
            review(&decide(&[(1, theirs)], &named)),
            "same hostname only"
        );
        assert_eq!(
            byte_swapped_uuid("4c4c4544-0042-3510-8051-b4c04f4e4b32").as_deref(),
            Some("44454c4c-4200-1035-8051-b4c04f4e4b32")
        );
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
