//! Network devices an agent polls over SNMP (`device_report` bodies): which
//! CI a poll is about, its discovered state, its interface throughput, and
//! the `connected_to` relationships its LLDP and CDP neighbours show.
//!
//! Identification follows the rules hosts follow (`control::identify`), over what a
//! device offers: the serial of its first chassis (ENTITY-MIB), the MACs of
//! its interfaces, and its sysName. Only `network_device` CIs can match a
//! poll, and a poll never matches a server's CI, even when a host answering
//! SNMP shares MACs with a host running an agent.
//!
//! The polled address is a hint, not an identifier: the CI last seen at an
//! agent's target keeps the poll when nothing the device reports
//! contradicts it (so a device offering no serial and no MAC keeps its CI),
//! and loses it when its serial or its MACs disagree (the address now
//! reaches another device).
//!
//! Neighbours become `connected_to` relationships from the polled device
//! to the CI the neighbour is: found by its LLDP chassis id or port id
//! where that is a MAC (a server's NIC, another switch's base MAC), else by
//! its system name or CDP device id against CI hostnames (the full name,
//! then its first label). The relationships a device's polls made are
//! listed on its CI (`discovered_links`) and kept in step with each poll:
//! a neighbour gone is unlinked, each change in both CIs' history.
//! Relationships people made are never touched.

use std::collections::BTreeMap;

use fathom_shared::device::Device;
use fathom_shared::ids::{AgentId, CiId};
use fathom_shared::wire::DeviceReport;
use serde::Serialize;

use super::apply::reconcile;
use super::identify::{identify_in, load_or_create, reindex, review_candidates};
use super::{Refusal, Sighting};
use crate::cmdb::ci::CiRecord;
use crate::cmdb::device::{poll_key, sample_key, DeviceSample, NETWORK_DEVICE};
use crate::cmdb::history::{record_history, FieldChange, Why};
use crate::cmdb::relationship::{
    put_relationship, remove_relationship, RelationKind, Relationship,
};
use crate::cmdb::{ci_key, encode, tx_get, AgentRecord, IdentifiedBy};
use crate::control::attributes::{self, Discovered};
use crate::control::identify::{self, Decision as Identified, Identifiers, Rule};
use crate::store::{Table, Tx, TxAbort};

type TxResult<T> = Result<T, TxAbort<Refusal>>;

/// Every table a device report's transaction may touch.
pub(crate) const TABLES: [Table; 17] = [
    Table::Agents,
    Table::Heartbeats,
    Table::Reports,
    Table::Cis,
    Table::CiIndex,
    Table::Devices,
    Table::DeviceMetrics,
    Table::Meta,
    Table::History,
    Table::Rfcs,
    Table::Drifts,
    Table::Incidents,
    Table::Reviews,
    Table::Outbox,
    Table::Relationships,
    Table::RelationshipsReverse,
    Table::Trail,
];

/// What can be worked out from a poll before its transaction.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub ids: Identifiers,
    pub discovered: Discovered,
    /// The encoded [`StoredDeviceReport`].
    pub stored: Vec<u8>,
    /// The encoded [`DeviceSample`], when the poll measured any rate.
    pub sample: Option<Vec<u8>>,
}

impl Prepared {
    pub fn new(agent: AgentId, seq: u64, report: &DeviceReport, now_ms: i64) -> Prepared {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            agent_id: AgentId,
            seq: u64,
            received_at_ms: i64,
            report: &'a DeviceReport,
        }
        Prepared {
            ids: identifiers(&report.device),
            discovered: attributes::flatten_device(&report.device),
            stored: encode(&Borrowed {
                agent_id: agent,
                seq,
                received_at_ms: now_ms,
                report,
            }),
            sample: (!report.interface_rates.is_empty())
                .then(|| encode(&DeviceSample::of(agent, report))),
        }
    }
}

/// What a device offers to identify it, placeholders dropped.
pub fn identifiers(device: &Device) -> Identifiers {
    let mut chassis: Vec<_> = device.chassis.iter().collect();
    chassis.sort_by_key(|c| c.index);
    Identifiers {
        serial: chassis
            .iter()
            .find_map(|c| c.serial.as_deref().and_then(identify::usable_serial)),
        macs: device
            .interfaces
            .iter()
            .filter_map(|i| i.mac.as_deref())
            .filter(|m| identify::usable_mac(m))
            .map(str::to_ascii_lowercase)
            .collect(),
        hostname: device
            .system
            .sys_name
            .as_deref()
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty()),
        ..Identifiers::default()
    }
}

/// `target\0<agent>\0<address>` in the CI index: the CI this agent last
/// found at this address.
fn target_key(agent: AgentId, target: &str) -> Vec<u8> {
    format!("target\0{agent}\0{target}").into_bytes()
}

/// Whether nothing `ours` says contradicts `theirs`: the serials agree
/// where both have one; else the MAC sets overlap where both have some.
fn consistent(theirs: &Identifiers, ours: &Identifiers) -> bool {
    match (&theirs.serial, &ours.serial) {
        (Some(a), Some(b)) => a == b,
        _ if !theirs.macs.is_empty() && !ours.macs.is_empty() => {
            !theirs.macs.is_disjoint(&ours.macs)
        }
        _ => true,
    }
}

/// Identifies the device a poll is about, records it, reconciles it, and
/// brings its `connected_to` relationships in step. Returns the CI.
pub(crate) fn apply_device(
    tx: &dyn Tx,
    agent: &AgentRecord,
    report: &DeviceReport,
    prepared: &Prepared,
    sighting: &Sighting<'_>,
) -> TxResult<CiId> {
    let now_ms = sighting.now_ms;
    let ids = &prepared.ids;
    let target = target_key(agent.agent_id, &report.target);
    let last_here = tx
        .get(Table::CiIndex, &target)?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(|b| CiId::from_u64(u64::from_be_bytes(b)));
    let hint = match last_here {
        Some(id) => tx_get::<CiRecord, Refusal>(tx, Table::Cis, &ci_key(id))?
            .filter(|ci| {
                ci.class == NETWORK_DEVICE
                    && ci.merged_into.is_none()
                    && consistent(&ci.identifiers, ids)
            })
            .map(|ci| ci.id),
        None => None,
    };
    let decision = identify_in(tx, ids, hint, |class| class == NETWORK_DEVICE)?;
    let (mut ci, is_new) = load_or_create(tx, &decision, agent.agent_id, ids, now_ms)?;
    let strongest = if ids.serial.is_some() {
        Rule::Serial
    } else if !ids.macs.is_empty() {
        Rule::MacSet
    } else {
        Rule::Hostname
    };
    if is_new {
        ci.class = NETWORK_DEVICE.to_owned();
        ci.identified_by = IdentifiedBy {
            rule: strongest,
            detail: format!(
                "first polled by agent {} at {}; no existing network device matched",
                agent.agent_id, report.target
            ),
        };
    }
    match &decision {
        Identified::Matched { rule, agreeing, .. } => {
            let agreeing: Vec<&str> = agreeing.iter().map(|r| r.as_str()).collect();
            ci.identified_by = IdentifiedBy {
                rule: *rule,
                detail: format!(
                    "agent {} polled {} and matched this CI by {} (agreeing: {})",
                    agent.agent_id,
                    report.target,
                    rule.as_str(),
                    agreeing.join(", ")
                ),
            };
        }
        Identified::New { candidates } => review_candidates(tx, &mut ci, candidates, now_ms)?,
        Identified::Known(_) => {}
    }
    reindex(tx, &mut ci, ids, is_new)?;
    tx.insert(Table::CiIndex, &target, &ci_key(ci.id))?;
    ci.reported_by = Some(agent.agent_id);
    ci.first_seen_ms.get_or_insert(now_ms);
    ci.last_seen_ms = Some(now_ms);
    if ci.name.is_empty() {
        ci.name = report
            .device
            .system
            .sys_name
            .clone()
            .unwrap_or_else(|| report.target.clone());
    }
    tx.insert(
        Table::Devices,
        &poll_key(ci.id, agent.agent_id),
        &prepared.stored,
    )?;
    if let Some(sample) = &prepared.sample {
        tx.insert(
            Table::DeviceMetrics,
            &sample_key(ci.id, report.observed_at_ms),
            sample,
        )?;
    }
    reconcile(tx, sighting, &mut ci, &prepared.discovered)?;
    link_neighbours(tx, sighting, &mut ci, &report.device)?;
    tx.insert(Table::Cis, &ci_key(ci.id), &encode(&ci))?;
    Ok(ci.id)
}

/// The CIs a device's neighbours are, each with the ports that link them
/// (`Gi1/0/1 ↔ eth0 (LLDP)`). Neighbours no CI is known for are left out
/// (they stay in the device's `neighbors.*` attributes).
fn neighbour_cis(tx: &dyn Tx, ci: &CiRecord, device: &Device) -> TxResult<BTreeMap<CiId, String>> {
    let lookup = |rule: Rule, value: &str| -> TxResult<Option<CiId>> {
        let Some(bytes) = tx.get(Table::CiIndex, &identify::index_key(rule, value))? else {
            return Ok(None);
        };
        let Ok(bytes) = <[u8; 8]>::try_from(bytes.as_slice()) else {
            return Ok(None);
        };
        let id = CiId::from_u64(u64::from_be_bytes(bytes));
        // Follow a merge; skip a CI that is gone.
        Ok(
            match tx_get::<CiRecord, Refusal>(tx, Table::Cis, &ci_key(id))? {
                Some(found) => Some(found.merged_into.unwrap_or(found.id)),
                None => None,
            },
        )
    };
    let by_mac = |text: Option<&str>| -> TxResult<Option<CiId>> {
        match text.map(str::to_ascii_lowercase) {
            Some(mac) if identify::usable_mac(&mac) && mac.matches(':').count() == 5 => {
                lookup(Rule::MacSet, &mac)
            }
            _ => Ok(None),
        }
    };
    let by_name = |text: Option<&str>| -> TxResult<Option<CiId>> {
        let Some(name) = text.map(|t| t.trim().to_ascii_lowercase()) else {
            return Ok(None);
        };
        if name.is_empty() {
            return Ok(None);
        }
        if let Some(found) = lookup(Rule::Hostname, &name)? {
            return Ok(Some(found));
        }
        match name.split_once('.') {
            Some((short, _)) if !short.is_empty() => lookup(Rule::Hostname, short),
            _ => Ok(None),
        }
    };
    let names = attributes::device_interface_names(device);
    let mut found = BTreeMap::new();
    for n in &device.lldp_neighbors {
        let mut neighbour = by_mac(n.remote_chassis_id.as_deref())?;
        if neighbour.is_none() {
            neighbour = by_mac(n.remote_port_id.as_deref())?;
        }
        if neighbour.is_none() {
            neighbour = by_name(n.remote_sys_name.as_deref())?;
        }
        if let Some(other) = neighbour.filter(|other| *other != ci.id) {
            let local = n
                .local_port
                .clone()
                .unwrap_or_else(|| n.local_port_num.to_string());
            let remote = n.remote_port_id.as_deref().unwrap_or("?");
            found
                .entry(other)
                .or_insert(format!("{local} ↔ {remote} (LLDP)"));
        }
    }
    for n in &device.cdp_neighbors {
        // A CDP device id is a hostname, sometimes with the serial after
        // it in parentheses (`core-1(FOX1234)`).
        let id = n
            .remote_device_id
            .as_deref()
            .map(|d| d.split('(').next().unwrap_or(d));
        if let Some(other) = by_name(id)?.filter(|other| *other != ci.id) {
            let local = names
                .get(&n.local_if_index)
                .cloned()
                .unwrap_or_else(|| n.local_if_index.to_string());
            let remote = n.remote_port.as_deref().unwrap_or("?");
            found
                .entry(other)
                .or_insert(format!("{local} ↔ {remote} (CDP)"));
        }
    }
    Ok(found)
}

/// Brings the `connected_to` relationships this device's polls made in
/// step with the neighbours of this poll.
fn link_neighbours(
    tx: &dyn Tx,
    s: &Sighting<'_>,
    ci: &mut CiRecord,
    device: &Device,
) -> TxResult<()> {
    let wanted = neighbour_cis(tx, ci, device)?;
    let had = std::mem::take(&mut ci.discovered_links);
    let actor = s.actor();
    let why = Why::Discovery {
        agent_id: s.agent,
        seq: s.seq,
    };
    let kind = RelationKind::ConnectedTo;
    for (other, via) in &had {
        if wanted.contains_key(other) {
            continue;
        }
        let key = Relationship::key(ci.id, kind, *other);
        // Only a relationship discovery made; a person may have re-made it.
        let Some(r) = tx_get::<Relationship, Refusal>(tx, Table::Relationships, &key)? else {
            continue;
        };
        if r.via.is_none() {
            continue;
        }
        remove_relationship(tx, ci.id, kind, *other)?;
        let gone = |field| FieldChange {
            field,
            old: Some(via.clone()),
            new: None,
        };
        record_history(
            tx,
            ci,
            s.now_ms,
            &actor,
            why.clone(),
            vec![gone(r.outgoing_field())],
        )?;
        if let Some(mut neighbour) = tx_get::<CiRecord, Refusal>(tx, Table::Cis, &ci_key(*other))? {
            record_history(
                tx,
                &mut neighbour,
                s.now_ms,
                &actor,
                why.clone(),
                vec![gone(r.incoming_field())],
            )?;
            tx.insert(Table::Cis, &ci_key(neighbour.id), &encode(&neighbour))?;
        }
        tracing::info!(ci_id = %ci.id, neighbour = %other, "Neighbour no longer seen; connected_to removed");
    }
    for (other, via) in &wanted {
        let key = Relationship::key(ci.id, kind, *other);
        let existing = tx_get::<Relationship, Refusal>(tx, Table::Relationships, &key)?;
        // A relationship a person made stays theirs.
        if existing.as_ref().is_some_and(|r| r.via.is_none()) {
            continue;
        }
        if existing.as_ref().and_then(|r| r.via.as_ref()) == Some(via) {
            continue;
        }
        let Some(mut neighbour) = tx_get::<CiRecord, Refusal>(tx, Table::Cis, &ci_key(*other))?
        else {
            continue;
        };
        let r = Relationship {
            from: ci.id,
            kind,
            to: *other,
            created_at_ms: s.now_ms,
            created_by: actor.clone(),
            via: Some(via.clone()),
        };
        put_relationship(tx, &r)?;
        let old = existing.and_then(|r| r.via);
        let change = |field| FieldChange {
            field,
            old: old.clone(),
            new: Some(via.clone()),
        };
        record_history(
            tx,
            ci,
            s.now_ms,
            &actor,
            why.clone(),
            vec![change(r.outgoing_field())],
        )?;
        record_history(
            tx,
            &mut neighbour,
            s.now_ms,
            &actor,
            why.clone(),
            vec![change(r.incoming_field())],
        )?;
        tx.insert(Table::Cis, &ci_key(neighbour.id), &encode(&neighbour))?;
        tracing::info!(ci_id = %ci.id, neighbour = %other, via = %via, "Neighbour linked: connected_to");
    }
    ci.discovered_links = wanted;
    Ok(())
}

#[cfg(test)]
mod tests {
    use fathom_shared::device::{Chassis, Interface, LldpNeighbor, System};
    use fathom_shared::wire::Interface as HostInterface;

    use super::*;
    use crate::reconcile::Report;
    use crate::test_support::*;

    fn switch(name: &str, serial: Option<&str>, mac: &str) -> Device {
        Device {
            system: System {
                sys_name: Some(name.into()),
                sys_descr: Some("Cisco IOS Software, 15.2(7)E4".into()),
                vendor: Some("Cisco".into()),
                ..System::default()
            },
            chassis: vec![Chassis {
                index: 1001,
                serial: serial.map(Into::into),
                model: Some("WS-C2960X-48FPD-L".into()),
                software_rev: Some("15.2(7)E4".into()),
                ..Chassis::default()
            }],
            interfaces: vec![Interface {
                index: 10101,
                name: Some("Gi1/0/1".into()),
                mac: Some(mac.into()),
                admin_up: Some(true),
                speed_bps: Some(1_000_000_000),
                ..Interface::default()
            }],
            ..Device::default()
        }
    }

    fn neighbour(port: &str, chassis: &str, remote_port: &str, name: &str) -> LldpNeighbor {
        LldpNeighbor {
            local_port_num: 1,
            local_port: Some(port.into()),
            remote_chassis_id: Some(chassis.into()),
            remote_port_id: Some(remote_port.into()),
            remote_port_descr: None,
            remote_sys_name: Some(name.into()),
        }
    }

    fn poll(f: &mut Fixture, target: &str, device: Device, at: i64) -> CiId {
        let report = DeviceReport {
            observed_at_ms: at,
            agent_version: "t".into(),
            target: target.into(),
            device,
            interface_rates: Vec::new(),
            poll_interval_ms: None,
        };
        f.apply(Report::Device(Box::new(report)), at)
    }

    fn links(f: &Fixture, ci: CiId) -> Vec<(CiId, Option<String>)> {
        let (outgoing, _) = f.cmdb.relationships_of(ci).unwrap();
        outgoing
            .into_iter()
            .filter(|r| r.kind == RelationKind::ConnectedTo)
            .map(|r| (r.to, r.via))
            .collect()
    }

    #[test]
    fn a_device_is_its_own_ci_found_again_by_serial() {
        let mut f = Fixture::new();
        let host = f.report(&[("nginx", "1")], NOON);
        let sw = poll(
            &mut f,
            "10.0.0.1:161",
            switch("sw-1", Some("FOC1"), "00:1b:2c:00:00:01"),
            NOON,
        );
        assert_ne!(sw, host);
        let record = f.cmdb.ci(sw).unwrap().unwrap();
        assert_eq!(record.class, NETWORK_DEVICE);
        assert_eq!(record.name, "sw-1");
        assert!(record.registered);
        assert_eq!(record.attributes["chassis.1001.serial"], "FOC1");
        assert_eq!(record.attributes["interfaces.Gi1/0/1.admin"], "up");
        assert!(record.identified_by.detail.contains("10.0.0.1:161"));
        // The polling agent stays tied to its own host.
        assert_eq!(f.cmdb.agent(f.agent).unwrap().unwrap().ci_id, Some(host));
        assert!(record.agents.is_empty());

        // Renumbered: another address, same serial.
        let again = poll(
            &mut f,
            "10.9.9.9:161",
            switch("sw-1", Some("FOC1"), "00:1b:2c:00:00:01"),
            NOON + HOUR,
        );
        assert_eq!(again, sw);
        assert_eq!(
            f.cmdb.ci(sw).unwrap().unwrap().identified_by.rule,
            Rule::Serial
        );

        // Replaced: the address now answers with another serial and MAC.
        let other = poll(
            &mut f,
            "10.9.9.9:161",
            switch("sw-1", Some("FOC2"), "00:1b:2c:00:00:02"),
            NOON + 2 * HOUR,
        );
        assert_ne!(other, sw);
    }

    #[test]
    fn a_host_and_a_device_sharing_a_mac_stay_apart() {
        let mut f = Fixture::new();
        let sw = poll(
            &mut f,
            "10.0.0.1:161",
            switch("web-1", None, "52:54:00:12:34:56"),
            NOON,
        );
        let mut inventory = inventory(&[("nginx", "1")], NOON);
        inventory.interfaces = Some(vec![HostInterface {
            name: "eno1".into(),
            mac: Some("52:54:00:12:34:56".into()),
            ..HostInterface::default()
        }]);
        let host = f.send(inventory);
        assert_ne!(host, sw);
        assert_eq!(f.cmdb.ci(host).unwrap().unwrap().class, "server");
        assert_eq!(f.cmdb.ci(sw).unwrap().unwrap().class, NETWORK_DEVICE);
    }

    #[test]
    fn a_device_with_no_serial_and_no_mac_keeps_its_ci_at_its_address() {
        let mut f = Fixture::new();
        let mut bare = switch("ap-7", None, "00:00:00:00:00:00");
        bare.chassis.clear();
        let first = poll(&mut f, "10.0.0.7:161", bare.clone(), NOON);
        let second = poll(&mut f, "10.0.0.7:161", bare, NOON + HOUR);
        assert_eq!(first, second);
        assert!(f.cmdb.list_reviews().unwrap().is_empty());
    }

    #[test]
    fn a_firmware_change_without_an_rfc_is_an_incident() {
        let mut f = Fixture::new();
        let sw = poll(
            &mut f,
            "10.0.0.1:161",
            switch("sw-1", Some("FOC1"), "00:1b:2c:00:00:01"),
            NOON,
        );
        let mut upgraded = switch("sw-1", Some("FOC1"), "00:1b:2c:00:00:01");
        upgraded.chassis[0].software_rev = Some("15.2(7)E9".into());
        assert_eq!(poll(&mut f, "10.0.0.1:161", upgraded, NOON + HOUR), sw);
        let incidents = f.incidents();
        assert_eq!(incidents.len(), 1);
        assert!(incidents[0].cis.contains(&sw));
        assert_eq!(
            f.authorized(sw, "chassis.1001.software_rev").as_deref(),
            Some("15.2(7)E4")
        );
    }

    #[test]
    fn neighbours_become_connected_to_and_follow_the_cabling() {
        let mut f = Fixture::new();
        // A server whose NIC the switch hears by MAC (LLDP chassis id).
        let mut inventory = inventory(&[("nginx", "1")], NOON);
        inventory.interfaces = Some(vec![HostInterface {
            name: "eno1".into(),
            mac: Some("52:54:00:12:34:56".into()),
            ..HostInterface::default()
        }]);
        let server = f.send(inventory);
        let core = poll(
            &mut f,
            "10.0.0.254:161",
            switch("core-1", Some("FOC9"), "00:1b:2c:00:00:09"),
            NOON,
        );
        let mut access = switch("access-1", Some("FOC1"), "00:1b:2c:00:00:01");
        access.lldp_neighbors = vec![
            neighbour("Gi1/0/1", "52:54:00:12:34:56", "eno1", "web-1.example.net"),
            // Another switch, known by the first label of the name it
            // sends.
            neighbour(
                "Gi1/0/48",
                "aa:aa:aa:aa:aa:aa",
                "Te1/1/1",
                "core-1.example.net",
            ),
            // Nobody we know.
            neighbour("Gi1/0/2", "02:00:00:00:00:99", "port 3", "printer-4"),
        ];
        let sw = poll(&mut f, "10.0.0.1:161", access.clone(), NOON);
        assert_eq!(
            links(&f, sw),
            [
                (server, Some("Gi1/0/1 ↔ eno1 (LLDP)".to_string())),
                (core, Some("Gi1/0/48 ↔ Te1/1/1 (LLDP)".to_string())),
            ]
            .into_iter()
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect::<Vec<_>>()
        );
        let record = f.cmdb.ci(sw).unwrap().unwrap();
        assert_eq!(record.attributes["neighbors.Gi1/0/2"], "printer-4 port 3");
        // Both ends have it in their history.
        let server_history = f.cmdb.ci_history(server).unwrap();
        assert!(server_history.iter().any(|h| h
            .changes
            .iter()
            .any(|c| c.field == format!("relationship {sw} connected_to (incoming)"))));

        // The same poll again changes nothing.
        let revision = f.cmdb.ci(sw).unwrap().unwrap().revision;
        poll(&mut f, "10.0.0.1:161", access.clone(), NOON + HOUR);
        assert_eq!(f.cmdb.ci(sw).unwrap().unwrap().revision, revision);

        // The server is recabled away: its link goes, the core's stays.
        access.lldp_neighbors.remove(0);
        poll(&mut f, "10.0.0.1:161", access, NOON + 2 * HOUR);
        assert_eq!(
            links(&f, sw),
            [(core, Some("Gi1/0/48 ↔ Te1/1/1 (LLDP)".to_string()))]
        );
        let history = f.cmdb.ci_history(sw).unwrap();
        let last = history.last().unwrap();
        assert_eq!(
            last.changes[0].field,
            format!("relationship connected_to {server}")
        );
        assert_eq!(last.changes[0].new, None);
    }

    #[test]
    fn a_relationship_a_person_made_is_never_changed_by_discovery() {
        let mut f = Fixture::new();
        let core = poll(
            &mut f,
            "10.0.0.254:161",
            switch("core-1", Some("FOC9"), "00:1b:2c:00:00:09"),
            NOON,
        );
        let mut access = switch("access-1", Some("FOC1"), "00:1b:2c:00:00:01");
        let sw = poll(&mut f, "10.0.0.1:161", access.clone(), NOON);
        f.cmdb
            .relate(
                &operator(),
                sw,
                RelationKind::ConnectedTo,
                core,
                true,
                "uplink",
                NOON,
            )
            .unwrap();
        access.lldp_neighbors = vec![neighbour(
            "Gi1/0/48",
            "aa:aa:aa:aa:aa:aa",
            "Te1/1/1",
            "core-1",
        )];
        poll(&mut f, "10.0.0.1:161", access.clone(), NOON + HOUR);
        access.lldp_neighbors.clear();
        poll(&mut f, "10.0.0.1:161", access, NOON + 2 * HOUR);
        assert_eq!(links(&f, sw), [(core, None)]);
    }

    /// A device is watched by its polls: a sysUpTime that starts again is
    /// a reboot, polls that stop are an outage.
    #[test]
    fn a_devices_polls_are_its_heartbeats_and_its_uptime_shows_reboots() {
        use crate::availability::outage::AvailabilitySettings;
        use crate::availability::watch::Change;
        let mut f = Fixture::new();
        let settings = AvailabilitySettings::default();
        let s = 1000;
        let mut sw = switch("sw-1", Some("FOC1"), "00:11:22:33:44:55");
        let mut ci = None;
        // Polled every 60 s, up for a day.
        for i in 0..5 {
            sw.system.sys_uptime_s = Some(86_400 + i * 60);
            let at = NOON + i as i64 * 60 * s;
            ci = Some(poll(&mut f, "10.0.0.9:161", sw.clone(), at));
            assert_eq!(
                f.cmdb.check_availability(at, NOON, &settings).unwrap(),
                vec![]
            );
        }
        let ci = ci.unwrap();
        // Rebooted: 20 s of uptime at the next poll.
        sw.system.sys_uptime_s = Some(20);
        poll(&mut f, "10.0.0.9:161", sw.clone(), NOON + 300 * s);
        assert_eq!(
            f.cmdb
                .check_availability(NOON + 300 * s, NOON, &settings)
                .unwrap(),
            vec![(
                ci,
                Change::Rebooted {
                    start_ms: NOON + 240 * s,
                    end_ms: NOON + 280 * s
                }
            )]
        );
        let outage = f.cmdb.outages(Some(ci)).unwrap().pop().unwrap();
        assert_eq!(
            (outage.cause.as_str(), outage.end_ms),
            ("reboot", Some(NOON + 280 * s))
        );
        let incident = f.cmdb.incident(outage.incident.unwrap()).unwrap().unwrap();
        assert!(
            incident.title.contains("reboot") && incident.title.contains("sw-1"),
            "{}",
            incident.title
        );
        assert_eq!(
            incident.status,
            crate::cmdb::incident::IncidentStatus::Resolved
        );
        // Polls stop: down after three 60 s intervals.
        let down = f
            .cmdb
            .check_availability(NOON + 481 * s, NOON, &settings)
            .unwrap();
        assert_eq!(
            down,
            vec![(
                ci,
                Change::Down {
                    start_ms: NOON + 360 * s
                }
            )]
        );
    }
}
