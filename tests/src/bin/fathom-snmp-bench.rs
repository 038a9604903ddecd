//! `fathom-snmp-bench`: walking a simulated device's tables with Fathom's
//! SNMP engine and with net-snmp's `snmpbulkwalk`, side by side: wall time
//! and request packets per table.
//!
//! ```text
//! FATHOM_SNMPSIM=.ci/.snmpsim-venv cargo run --release -p fathom-tests --bin fathom-snmp-bench
//! ```
//!
//! Both use GETBULK with 25 repetitions and SNMPv2c against the same
//! snmpsim process. Prints a Markdown table on stdout.

use std::process::Command;
use std::time::{Duration, Instant};

use fathom_agent::snmp::client::{Security, Session, Settings};
use fathom_agent::snmp::Oid;
use fathom_tests::snmpsim::Snmpsim;

const RUNS: usize = 5;
const TABLES: [(&str, &str); 4] = [
    ("IF-MIB ifTable", "1.3.6.1.2.1.2.2"),
    ("IF-MIB ifXTable", "1.3.6.1.2.1.31.1.1"),
    ("ENTITY-MIB entPhysicalTable", "1.3.6.1.2.1.47.1.1.1"),
    ("CISCO-CDP-MIB cdpCacheTable", "1.3.6.1.4.1.9.9.23.1.2.1"),
];

fn main() {
    let recording = "network/switch/cisco-c3750";
    let sim = Snmpsim::start(&[recording]).expect("set FATHOM_SNMPSIM to a venv with snmpsim");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("### SNMP walks of one simulated device ({recording}, snmpsim on loopback)\n");
    println!("Median of {RUNS} walks of each table; request packets counted by each tool (snmpbulkwalk with `-d`, which prints each packet sent).\n");
    println!("| table | rows | fathom (ms) | fathom requests | snmpbulkwalk (ms) | snmpbulkwalk requests |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, oid) in TABLES {
        let root = Oid::parse(oid).unwrap();
        let mut ours = Vec::new();
        let (mut rows, mut requests) = (0, 0);
        for _ in 0..RUNS {
            let settings = Settings {
                security: Security::Community(recording.into()),
                timeout: Duration::from_secs(5),
                ..Settings::default()
            };
            let start = Instant::now();
            let (n, sent) = runtime.block_on(async {
                let mut session = Session::open(sim.target().parse().unwrap(), settings)
                    .await
                    .unwrap();
                let walked = session.walk(&root).await.unwrap();
                (walked.len(), session.requests_sent)
            });
            ours.push(start.elapsed().as_secs_f64() * 1000.0);
            (rows, requests) = (n, sent);
        }
        let mut theirs = Vec::new();
        let mut their_requests = 0;
        let mut their_rows = 0;
        for _ in 0..RUNS {
            let start = Instant::now();
            let out = Command::new("snmpbulkwalk")
                .args(["-v2c", "-c", recording, "-Cr25", "-On", "-d"])
                .arg(sim.target())
                .arg(oid)
                .output()
                .unwrap();
            theirs.push(start.elapsed().as_secs_f64() * 1000.0);
            assert!(out.status.success(), "{out:?}");
            let stdout = String::from_utf8_lossy(&out.stdout);
            // `-d` dumps each packet, on stderr or stdout by version.
            let dumps = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
            their_requests = dumps.lines().filter(|l| l.starts_with("Sending ")).count();
            their_rows = stdout.lines().filter(|l| l.starts_with(".")).count();
        }
        assert_eq!(rows, their_rows, "{name}: both tools walk the same rows");
        println!(
            "| {name} | {rows} | {:.1} | {requests} | {:.1} | {their_requests} |",
            median(&mut ours),
            median(&mut theirs)
        );
    }
    println!();
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
