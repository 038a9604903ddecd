//! SNMP polling against a real net-snmp `snmpd`, started on a loopback
//! port (issue 5, in progress: SNMPv2c, the system group and IF-MIB).

use std::process::{Command, Stdio};
use std::time::Duration;

use fathom_tests::snmpsim::{free_udp_port, Snmpsim};
use fathom_tests::{bin, wait_for};
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
