//! SNMP polling against a real net-snmp `snmpd`, started on a loopback
//! port (issue 5, in progress: SNMPv2c, the system group and IF-MIB).

use std::process::{Command, Stdio};
use std::time::Duration;

use fathom_tests::{bin, free_port, wait_for};
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
            "rocommunity fathom-ro 127.0.0.1\nsysLocation Rack 12, Paris\nsysContact noc@example.org\nsysName edge-sw-1\n",
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

fn free_udp_port() -> u16 {
    loop {
        let port = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
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
