//! SNMP polling against a real net-snmp `snmpd` started on a loopback port,
//! and against snmpsim serving recordings of real switches: what `probe
//! snmp` reads, and what an agent polling them puts in the CMDB.

use std::process::{Command, Stdio};
use std::time::Duration;

use fathom_tests::snmpsim::{free_udp_port, Snmpsim};
use fathom_tests::{bin, fixture_root, wait_for, Agent, Collector};
use serde_json::Value;

/// A running snmpd, killed when dropped.
struct Snmpd {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Snmpd {
    /// `None` where net-snmp is not installed (CI installs it).
    fn start() -> Option<Snmpd> {
        let available = Command::new("snmpd")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !available {
            eprintln!("snmpd is not installed; nothing to poll");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("snmpd.conf");
        std::fs::write(
            &conf,
            "rocommunity fathom-ro 127.0.0.1\nsysLocation Rack 12, Paris\nsysContact noc@example.org\nsysName edge-sw-1\n\
             createUser fathom-priv SHA-256 \"auth-passphrase\" AES \"priv-passphrase\"\n\
             createUser fathom-auth SHA \"auth-passphrase\"\n\
             rouser fathom-priv priv\nrouser fathom-auth auth\n",
        )
        .unwrap();
        let port = free_udp_port();
        let child = Command::new("snmpd")
            .args(["-f", "-Lo", "-C", "-c"])
            .arg(&conf)
            .arg("-p")
            .arg(dir.path().join("snmpd.pid"))
            .arg(format!("udp:127.0.0.1:{port}"))
            .env("SNMP_PERSISTENT_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let snmpd = Snmpd {
            child,
            port,
            _dir: dir,
        };
        wait_for("snmpd to answer", Duration::from_secs(20), || {
            probe(&snmpd.target(), "fathom-ro")
                .status
                .success()
                .then_some(())
        });
        Some(snmpd)
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn probe(target: &str, community: &str) -> std::process::Output {
    Command::new(bin("fathom-agent"))
        .args([
            "probe",
            "snmp",
            "--target",
            target,
            "--community",
            community,
        ])
        .args(["--timeout-ms", "500", "--retries", "1", "--json"])
        .output()
        .unwrap()
}

/// net-snmp's own tools, for the values to compare with.
fn snmpbulkwalk(target: &str, oid: &str) -> Vec<String> {
    let out = Command::new("snmpbulkwalk")
        .args(["-v2c", "-c", "fathom-ro", "-On", "-Oq", "-Ox", target, oid])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_system_group_and_interfaces_of_a_real_snmpd() {
    let Some(snmpd) = Snmpd::start() else { return };
    let out = probe(&snmpd.target(), "fathom-ro");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    let system = &found["system"];
    assert_eq!(system["sys_name"], "edge-sw-1");
    assert_eq!(system["sys_location"], "Rack 12, Paris");
    assert_eq!(system["sys_contact"], "noc@example.org");
    assert_eq!(system["vendor"], "Net-SNMP");
    assert!(system["sys_object_id"]
        .as_str()
        .unwrap()
        .starts_with("1.3.6.1.4.1.8072."));
    assert!(system["sys_uptime_s"].as_u64().is_some());

    // The interfaces and their MACs, as snmpbulkwalk reads them
    // (`.1.3.6.1.2.1.2.2.1.6.2 4a 0e 82 cd d1 3c`).
    let macs: Vec<(u64, Option<String>)> = snmpbulkwalk(&snmpd.target(), "1.3.6.1.2.1.2.2.1.6")
        .iter()
        .map(|line| {
            let (oid, value) = line.split_once(' ').unwrap_or((line, ""));
            let index = oid.rsplit('.').next().unwrap().parse().unwrap();
            let bytes: Vec<&str> = value.trim().trim_matches('"').split_whitespace().collect();
            let mac = (bytes.len() == 6).then(|| bytes.join(":").to_ascii_lowercase());
            (index, mac)
        })
        .collect();
    let ours: Vec<(u64, Option<String>)> = found["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["index"].as_u64().unwrap(),
                i["mac"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert!(!ours.is_empty());
    assert_eq!(ours, macs);
    let lo = found["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["descr"] == "lo")
        .unwrap();
    assert_eq!(lo["type"], 24, "softwareLoopback");
    assert_eq!(lo["oper_up"], true);
    // IP-MIB: the loopback's addresses, with their prefixes, on its index.
    let addresses = found["ip_addresses"].as_array().unwrap();
    for (address, prefix) in [("127.0.0.1", 8), ("::1", 128)] {
        assert!(
            addresses.iter().any(|a| a["address"] == address
                && a["prefix_len"] == prefix
                && a["if_index"] == lo["index"]),
            "{address}: {addresses:?}"
        );
    }
    assert!(!addresses
        .iter()
        .any(|a| a["address"].as_str().unwrap().ends_with(".255")));

    // HOST-RESOURCES-MIB: this host's memory, processors and packages, as
    // snmpd reads them.
    let hr = &found["host_resources"];
    let mem_total_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let ram = hr["storage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "ram")
        .unwrap();
    assert_eq!(ram["size_bytes"], mem_total_kib * 1024);
    let cpus = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(hr["processors"], cpus);
    let software = hr["software"].as_array().unwrap();
    assert_eq!(
        software.len(),
        snmpbulkwalk(&snmpd.target(), "1.3.6.1.2.1.25.6.3.1.2")
            .iter()
            .filter(|l| l.starts_with(".1.3.6.1.2.1.25.6.3.1.2."))
            .count()
    );
    assert!(software
        .iter()
        .any(|p| p.as_str().unwrap().starts_with("dpkg_")));
}

/// `probe snmp` as an SNMPv3 user; passphrases come from the environment.
fn probe_v3(target: &str, user: &str, args: &[&str], auth: &str) -> std::process::Output {
    Command::new(bin("fathom-agent"))
        .args(["probe", "snmp", "--target", target, "--v3-user", user])
        .args(args)
        .args(["--timeout-ms", "500", "--retries", "1", "--json"])
        .env("FATHOM_SNMP_AUTH_PASSWORD", auth)
        .env("FATHOM_SNMP_PRIV_PASSWORD", "priv-passphrase")
        .output()
        .unwrap()
}

#[test]
fn snmpv3_users_with_and_without_privacy_see_what_v2c_sees() {
    let Some(snmpd) = Snmpd::start() else { return };
    let v2c: Value = serde_json::from_slice(&probe(&snmpd.target(), "fathom-ro").stdout).unwrap();
    for (user, args) in [
        ("fathom-priv", &["--auth", "sha256", "--privacy", "aes"][..]),
        ("fathom-auth", &["--auth", "sha"][..]),
    ] {
        let out = probe_v3(&snmpd.target(), user, args, "auth-passphrase");
        assert!(
            out.status.success(),
            "{user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v3: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v3["system"]["sys_name"], "edge-sw-1", "{user}");
        assert_eq!(v3["interfaces"], v2c["interfaces"], "{user}");
    }
    // A wrong passphrase, an unknown user, too weak a passphrase: each a
    // clear refusal naming what was wrong.
    let refused = |user: &str, args: &[&str], auth: &str| {
        let out = probe_v3(&snmpd.target(), user, args, auth);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused("fathom-auth", &["--auth", "sha"], "wrong-passphrase");
    assert!(err.contains("wrong digest"), "{err}");
    let err = refused("intruder", &["--auth", "sha"], "auth-passphrase");
    assert!(err.contains("unknown user name"), "{err}");
    let err = refused("fathom-auth", &["--auth", "sha"], "short");
    assert!(err.contains("at least 8 characters"), "{err}");
    let err = refused("fathom-auth", &["--auth", "md5"], "auth-passphrase");
    assert!(err.contains("not an authentication protocol"), "{err}");
}

#[test]
fn a_wrong_community_or_a_silent_target_is_a_clear_error() {
    let Some(snmpd) = Snmpd::start() else { return };
    // snmpd drops requests with an unknown community: a timeout.
    let out = probe(&snmpd.target(), "not-the-community");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&snmpd.target()) && err.contains("did not answer"),
        "{err}"
    );
    // Nothing there at all.
    let out = probe(&format!("127.0.0.1:{}", free_udp_port()), "fathom-ro");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.1:"), "{err}");
}

#[test]
fn recordings_of_real_switches_read_exactly() {
    let cisco = "network/switch/cisco-c3750";
    let hpe = "network/switch/hpe-procurve-516733-b21";
    let Some(sim) = Snmpsim::start(&[cisco, hpe]) else {
        return;
    };

    // A Catalyst 3750: one chassis in a stack, with its module, power
    // supply and fan inside it.
    let found = sim.probe(cisco);
    assert_eq!(found["system"]["vendor"], "Cisco");
    assert_eq!(found["system"]["sys_object_id"], "1.3.6.1.4.1.9.1.516");
    assert_eq!(found["system"]["sys_location"], Value::Null);
    let chassis = found["chassis"].as_array().unwrap();
    assert_eq!(chassis.len(), 1);
    assert_eq!(chassis[0]["index"], 1001);
    assert_eq!(chassis[0]["model"], "WS-C3750G-12S-S");
    assert_eq!(chassis[0]["serial"], "FDO1622Y10H");
    assert_eq!(chassis[0]["hardware_rev"], "V14");
    assert_eq!(chassis[0]["software_rev"], "12.2(50)SE5");
    let components = found["components"].as_array().unwrap();
    assert_eq!(components.len(), 34);
    let component = |index: u64| components.iter().find(|c| c["index"] == index).unwrap();
    assert_eq!(component(1)["class"], "stack");
    assert_eq!(component(1003)["class"], "powerSupply");
    assert_eq!(component(1003)["parent_index"], 1001);
    assert_eq!(component(1004)["class"], "fan");
    let interfaces = found["interfaces"].as_array().unwrap();
    assert_eq!(interfaces.len(), 19);
    assert_eq!(interfaces[0]["name"], "Vl1");
    assert_eq!(interfaces[0]["mac"], "f4:7f:35:93:af:c0");
    // Its addresses from the older ipAddrTable, and 125 CDP neighbours
    // (access points, mostly).
    let addresses = found["ip_addresses"].as_array().unwrap();
    assert!(addresses
        .iter()
        .any(|a| a["address"] == "172.25.2.1" && a["prefix_len"] == 16 && a["if_index"] == 100));
    let cdp = found["cdp_neighbors"].as_array().unwrap();
    assert_eq!(cdp.len(), 125);
    assert_eq!(cdp[0]["local_if_index"], 10101);
    assert_eq!(cdp[0]["remote_device_id"], "E-DJ-1F-101indoor");
    assert_eq!(cdp[0]["remote_port"], "GigabitEthernet0");
    assert_eq!(cdp[0]["remote_platform"], "cisco AIR-CAP1602I-C-K9");
    assert_eq!(cdp[0]["remote_address"], "172.28.2.68");

    // A ProCurve blade switch: HP by its enterprise number, and five LLDP
    // neighbours, four known by MAC and one by name.
    let found = sim.probe(hpe);
    assert_eq!(found["system"]["vendor"], "HP");
    assert_eq!(found["chassis"][0]["serial"], "3C421900TX");
    assert_eq!(found["chassis"][0]["model"], "516733-B21");
    assert_eq!(found["chassis"][0]["manufacturer"], "Hewlett-Packard");
    assert_eq!(found["interfaces"].as_array().unwrap().len(), 42);
    let neighbors = found["lldp_neighbors"].as_array().unwrap();
    assert_eq!(neighbors.len(), 5);
    assert_eq!(neighbors[0]["local_port_num"], 8);
    assert_eq!(neighbors[0]["remote_chassis_id"], "e8:39:35:1a:ca:99");
    let nexus = &neighbors[3];
    assert_eq!(nexus["local_port_num"], 17);
    assert_eq!(nexus["remote_chassis_id"], "8c:60:4f:19:16:3a");
    assert_eq!(nexus["remote_port_id"], "Eth1/19");
    assert_eq!(nexus["remote_port_descr"], "Ethernet1/19");
    assert_eq!(nexus["remote_sys_name"], "NWPU-CA-5548-01");
}

/// An `[snmp]` section polling `targets` (address, community), each
/// community in a file of its own under `dir`.
fn snmp_config(dir: &std::path::Path, targets: &[(&str, &str)], extra: &str) -> String {
    let mut out = format!("[snmp]\ntimeout_ms = 5000\nretries = 2\n{extra}\n");
    for (i, (_, community)) in targets.iter().enumerate() {
        let file = dir.join(format!("community-{i}"));
        std::fs::write(&file, format!("{community}\n")).unwrap();
        out.push_str(&format!(
            "[snmp.credentials.c{i}]\nversion = \"2c\"\ncommunity_file = \"{}\"\n",
            file.display()
        ));
    }
    for (i, (address, _)) in targets.iter().enumerate() {
        out.push_str(&format!(
            "[[snmp.targets]]\naddress = \"{address}\"\ncredentials = \"c{i}\"\n"
        ));
    }
    out
}

fn network_devices(c: &Collector) -> Vec<Value> {
    c.cis()
        .into_iter()
        .filter(|ci| ci["class"] == "network_device")
        .collect()
}

#[test]
fn polled_switches_become_cis_linked_to_their_neighbours() {
    let cisco = "network/switch/cisco-c3750";
    let hpe = "network/switch/hpe-procurve-516733-b21";
    let Some(sim) = Snmpsim::start(&[cisco, hpe]) else {
        return;
    };
    let c = Collector::start();
    let token = c.create_token("1h", 1);
    // The polling agent's own host is named like one of the ProCurve's
    // LLDP neighbours (a Nexus 5548 on its port 17).
    let host = fixture_root("NWPU-CA-5548-01", "5548aaaa5548aaaa5548aaaa5548aaaa");
    let secrets = tempfile::tempdir().unwrap();
    let target = sim.target();
    let config = snmp_config(secrets.path(), &[(&target, cisco), (&target, hpe)], "");
    // Both recordings answer on one port, told apart by community: two
    // targets with one address. (Real devices have one address each.)
    let agent = Agent::new(&c, host.path(), &config);
    let out = agent.run_once(Some(&token));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("Devices polled"), "{log}");

    let devices = network_devices(&c);
    assert_eq!(devices.len(), 2, "{devices:#?}\n{log}");
    let show = |id: &Value| c.cli_json(&["ci", "show", id.as_str().unwrap()]);
    let by_serial = |serial: &str| {
        devices
            .iter()
            .map(|d| show(&d["id"]))
            .find(|d| d["ci"]["attributes"]["chassis.1001.serial"] == serial)
            .unwrap_or_else(|| panic!("no device with serial {serial}"))
    };
    let catalyst = by_serial("FDO1622Y10H");
    assert_eq!(
        catalyst["ci"]["attributes"]["chassis.1001.model"],
        "WS-C3750G-12S-S"
    );
    assert_eq!(catalyst["ci"]["attributes"]["system.vendor"], "Cisco");
    assert_eq!(catalyst["ci"]["identified_by"]["rule"], "serial");
    assert_eq!(
        catalyst["device"]["report"]["device"]["interfaces"]
            .as_array()
            .unwrap()
            .len(),
        19
    );

    let procurve = show(
        &devices
            .iter()
            .find(|d| d["id"] != catalyst["ci"]["id"])
            .unwrap()["id"],
    );
    let procurve_id = procurve["ci"]["id"].as_str().unwrap().to_owned();
    // The ProCurve's chassis is entity 1 or 1001 by firmware; find it by
    // the serial the recording holds.
    let attributes = procurve["ci"]["attributes"].as_object().unwrap();
    assert!(
        attributes
            .iter()
            .any(|(k, v)| k.starts_with("chassis.") && k.ends_with(".serial") && v == "3C421900TX"),
        "{attributes:#?}"
    );
    assert_eq!(
        attributes["neighbors.17"]
            .as_str()
            .map(|n| n.contains("NWPU-CA-5548-01 Eth1/19")),
        Some(true),
        "{attributes:#?}"
    );
    // Its neighbour on port 17 is the agent's host: a connected_to
    // relationship, with the ports.
    let server = c
        .cis()
        .into_iter()
        .find(|ci| ci["class"] == "server")
        .unwrap();
    let outgoing = procurve["relationships"]["outgoing"].as_array().unwrap();
    assert_eq!(outgoing.len(), 1, "{outgoing:#?}");
    assert_eq!(outgoing[0]["kind"], "connected_to");
    assert_eq!(outgoing[0]["to"], server["id"]);
    assert!(
        outgoing[0]["via"]
            .as_str()
            .unwrap()
            .ends_with("↔ Eth1/19 (LLDP)"),
        "{outgoing:#?}"
    );
    // The server sees it from its side, and both histories say so.
    let server_shown = show(&server["id"]);
    assert_eq!(
        server_shown["relationships"]["incoming"][0]["from"],
        procurve_id.as_str()
    );
    let history = c.cli_json(&["ci", "history", server["id"].as_str().unwrap()]);
    assert!(
        history.to_string().contains(&format!(
            "relationship {procurve_id} connected_to (incoming)"
        )),
        "{history}"
    );

    // A second poll finds the same two CIs and changes nothing.
    let out = agent.run_once(None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(network_devices(&c).len(), 2);
    let again = show(&procurve["ci"]["id"]);
    assert_eq!(again["ci"]["revision"], procurve["ci"]["revision"]);
    assert!(c
        .cli_json(&["incident", "list"])
        .as_array()
        .unwrap()
        .is_empty());

    // The agent says what it polls.
    let status = agent.command(&["status", "--json"]).output().unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        status["snmp"]["targets"],
        serde_json::json!([target, target])
    );

    // The human view lists the interfaces and the link.
    let shown = c.cli(&["ci", "show", &procurve_id]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("latest poll: report"), "{text}");
    assert!(text.contains("connected_to"), "{text}");
}

#[test]
fn a_polling_daemon_reports_interface_throughput() {
    let Some(snmpd) = Snmpd::start() else {
        return;
    };
    let c = Collector::start();
    let token = c.create_token("1h", 1);
    let host = fixture_root("poller-1", "0123456789abcdef0123456789abcdef");
    let secrets = tempfile::tempdir().unwrap();
    let config = snmp_config(
        secrets.path(),
        &[(&snmpd.target(), "fathom-ro")],
        "poll_interval_secs = 1",
    );
    let agent = Agent::new(&c, host.path(), &config);
    assert!(agent.run_once(Some(&token)).status.success());
    let mut daemon = agent
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The loopback interface carries the polls themselves, so its counters
    // move between polls (snmpd refreshes them every few seconds).
    let (shown, lo_rate) = wait_for(
        "a poll measuring loopback traffic",
        Duration::from_secs(40),
        || {
            let device = network_devices(&c).into_iter().next()?;
            let shown = c.cli_json(&["ci", "show", device["id"].as_str()?]);
            let interfaces = shown["device"]["report"]["device"]["interfaces"].as_array()?;
            let lo = interfaces.iter().find(|i| i["descr"] == "lo")?.clone();
            let rate = shown["interface_rates"]["rates"]
                .as_array()?
                .iter()
                .find(|r| r["index"] == lo["index"] && r["in_bps"].as_f64() > Some(0.0))?
                .clone();
            Some((shown, rate))
        },
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(shown["ci"]["name"], "edge-sw-1");
    assert!(lo_rate["interval_ms"].as_u64().unwrap() >= 500, "{lo_rate}");
    // Bits, from octets: a whole number of bytes per interval.
    let bytes = lo_rate["in_bps"].as_f64().unwrap() / 8.0
        * lo_rate["interval_ms"].as_f64().unwrap()
        / 1000.0;
    assert!((bytes - bytes.round()).abs() < 1e-6, "{lo_rate}");
}

#[test]
fn recordings_of_a_router_and_a_firewall_read_exactly() {
    let firewall = "network/firewall/paloalto-pa-5000";
    let router = "network/router/huawei-s5720";
    let Some(sim) = Snmpsim::start(&[firewall, router]) else {
        return;
    };

    // A Palo Alto PA-5050: its chassis from ENTITY-MIB, and UTF-8 strings
    // (Chinese location and contact) decoded as text.
    let found = sim.probe(firewall);
    assert_eq!(found["system"]["vendor"], "Palo Alto Networks");
    assert_eq!(found["system"]["sys_object_id"], "1.3.6.1.4.1.25461.2.3.9");
    assert_eq!(found["system"]["sys_location"], "网络中心机房");
    assert_eq!(found["system"]["sys_contact"], "马刚");
    assert_eq!(found["system"]["sys_uptime_s"], 6_803_771);
    let chassis = found["chassis"].as_array().unwrap();
    assert_eq!(chassis.len(), 1);
    assert_eq!(chassis[0]["model"], "PA-5050");
    assert_eq!(chassis[0]["serial"], "0009C100761");
    assert_eq!(chassis[0]["hardware_rev"], "3.0");
    assert_eq!(chassis[0]["software_rev"], "8.0.1");
    assert_eq!(chassis[0]["manufacturer"], "Palo Alto Networks");
    assert_eq!(chassis[0]["firmware_rev"], Value::Null);
    let interfaces = found["interfaces"].as_array().unwrap();
    assert_eq!(interfaces.len(), 46);
    assert_eq!(interfaces[0]["mac"], "00:90:0b:3e:36:69");
    // An empty ifPhysAddress is no MAC.
    assert_eq!(interfaces[2]["mac"], Value::Null);

    // A Huawei S5720 routing switch: its chassis under an index of
    // Huawei's numbering, an empty model (null), four modules, and its
    // addresses from ipAddrTable.
    let found = sim.probe(router);
    assert_eq!(found["system"]["vendor"], "Huawei");
    assert_eq!(found["system"]["sys_location"], "BeiJing China");
    assert!(found["system"]["sys_descr"]
        .as_str()
        .unwrap()
        .contains("Version 5.160 (S5720 V200R007C00SPC500)"));
    let chassis = found["chassis"].as_array().unwrap();
    assert_eq!(chassis.len(), 1);
    assert_eq!(chassis[0]["index"], 67_108_867);
    assert_eq!(chassis[0]["serial"], "210235956210F7000410");
    assert_eq!(chassis[0]["description"], "HUAWEI S5720 Routing Switch");
    assert_eq!(
        chassis[0]["software_rev"],
        "Version 5.160 V200R007C00SPC500"
    );
    assert_eq!(chassis[0]["manufacturer"], "Huawei");
    assert_eq!(chassis[0]["model"], Value::Null);
    let modules = found["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["class"] == "module")
        .count();
    assert_eq!(modules, 4);
    assert_eq!(found["interfaces"].as_array().unwrap().len(), 39);
    assert!(found["ip_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["address"] == "10.20.101.200"));
}

#[test]
fn a_swept_snmpv3_device_with_privacy_becomes_a_ci() {
    let Some(snmpd) = Snmpd::start() else {
        return;
    };
    let c = Collector::start();
    let token = c.create_token("1h", 1);
    let host = fixture_root("poller-3", "33333333333333333333333333333333");
    let secrets = tempfile::tempdir().unwrap();
    let auth = secrets.path().join("auth");
    let privacy = secrets.path().join("priv");
    std::fs::write(&auth, "auth-passphrase\n").unwrap();
    std::fs::write(&privacy, "priv-passphrase\n").unwrap();
    // No target: the device is found by sweeping 127.0.0.1/32 on its port,
    // with SNMPv3 authPriv credentials read from files.
    let config = format!(
        "[snmp]\ntimeout_ms = 3000\n\
         [snmp.credentials.core]\nversion = \"3\"\nuser = \"fathom-priv\"\nauth = \"sha256\"\n\
         auth_password_file = \"{}\"\nprivacy = \"aes\"\npriv_password_file = \"{}\"\n\
         [[snmp.sweeps]]\nnetwork = \"127.0.0.1/32\"\nport = {}\ncredentials = \"core\"\nrate_per_sec = 5\n",
        auth.display(),
        privacy.display(),
        snmpd.port
    );
    let agent = Agent::new(&c, host.path(), &config);
    let out = agent.run_once(Some(&token));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("Sweep done"), "{log}");
    let devices = network_devices(&c);
    assert_eq!(devices.len(), 1, "{devices:#?}\n{log}");
    assert_eq!(devices[0]["name"], "edge-sw-1");
    assert_eq!(
        devices[0]["attributes"]["system.location"],
        "Rack 12, Paris"
    );
    assert_eq!(devices[0]["attributes"]["system.vendor"], "Net-SNMP");

    // A wrong passphrase costs the device, not the run.
    std::fs::write(&privacy, "not-the-passphrase\n").unwrap();
    let out = agent.run_once(None);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("answered = 0") || log.contains("answered=0"),
        "{log}"
    );
}
