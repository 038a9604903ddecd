//! `fathom-snmp-bench`: Fathom's SNMP polling against net-snmp's
//! `snmpbulkwalk`, side by side in one run:
//!
//! 1. each table a poll reads, on a simulated Catalyst 3750 (snmpsim with
//!    the snmpsim-data recording): requests and wall time, Fathom reading
//!    the columns it uses side by side, `snmpbulkwalk` walking the table;
//! 2. a whole poll of two recorded switches, against `snmpbulkwalk` of the
//!    same tables plus an `snmpget` of the system group;
//! 3. a fleet: `fathom-agent run --once` polling 10, 100 and 1,000
//!    devices (one net-snmp `snmpd` answering on as many loopback ports,
//!    with a switch's view: no HOST-RESOURCES-MIB) and delivering the
//!    reports to a collector: wall time, devices per second, the agent's
//!    peak RSS.
//!
//! ```text
//! FATHOM_SNMPSIM=.ci/.snmpsim-venv cargo run --release -p fathom-tests --bin fathom-snmp-bench [-- --fleet 10,100,1000] [--only fleet]
//! ```
//!
//! All use SNMPv2c and 25 objects per GETBULK. Prints Markdown on stdout.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fathom_agent::snmp::client::{Security, Session, Settings};
use fathom_agent::snmp::device::{self, TableSpec};
use fathom_agent::snmp::Oid;
use fathom_tests::snmpsim::{free_udp_port, Snmpsim};
use fathom_tests::{bin, fixture_root, wait_for, Agent, Collector};

const RUNS: usize = 5;
const CISCO: &str = "network/switch/cisco-c3750";
const HPE: &str = "network/switch/hpe-procurve-516733-b21";

const USAGE: &str = "\
Usage: fathom-snmp-bench [--fleet N,N,...] [--only fleet]

Fathom's SNMP polling beside net-snmp's snmpbulkwalk: per table, whole
polls, and a fleet of devices. Needs FATHOM_SNMPSIM (a venv with snmpsim)
and net-snmp's snmpd and tools. Prints Markdown on stdout.

Options:
  --fleet LIST   fleet sizes (default 10,100,1000)
  --only fleet   only the fleet run
  -h, --help     this text; runs nothing
";

fn main() {
    fathom_tests::bench_args(USAGE, &["--fleet", "--only"]);
    let fleet: Vec<usize> = std::env::args()
        .skip_while(|a| a != "--fleet")
        .nth(1)
        .map(|s| {
            s.split(',')
                .map(|n| n.parse().expect("--fleet 10,100"))
                .collect()
        })
        .unwrap_or_else(|| vec![10, 100, 1000]);
    if only_fleet() {
        fleet_section(&fleet);
        return;
    }
    let sim = Snmpsim::start(&[CISCO, HPE]).expect("set FATHOM_SNMPSIM to a venv with snmpsim");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tables_section(&sim, &runtime);
    poll_section(&sim, &runtime);
    fleet_section(&fleet);
}

/// `--only fleet` runs the fleet section alone.
fn only_fleet() -> bool {
    std::env::args().any(|a| a == "fleet")
}

fn settings(community: &str) -> Settings {
    Settings {
        security: Security::Community(community.into()),
        timeout: Duration::from_secs(5),
        ..Settings::default()
    }
}

/// `snmpbulkwalk` of `oid`: (objects, requests sent, seconds).
fn bulkwalk(target: &str, community: &str, oid: &str) -> (usize, usize, f64) {
    let start = Instant::now();
    let out = Command::new("snmpbulkwalk")
        .args(["-v2c", "-c", community, "-Cr25", "-On", "-d"])
        .arg(target)
        .arg(oid)
        .output()
        .unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // `-d` dumps each packet, on stderr or stdout by version.
    let dumps = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let requests = dumps.lines().filter(|l| l.starts_with("Sending ")).count();
    let objects = stdout.lines().filter(|l| l.starts_with('.')).count();
    (objects, requests, elapsed)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn oid_text(entry: &[u32]) -> String {
    entry
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn tables_section(sim: &Snmpsim, runtime: &tokio::runtime::Runtime) {
    println!("### Each table of a poll, one simulated device ({CISCO}, snmpsim on loopback)\n");
    println!(
        "Median of {RUNS} reads of each table. Fathom reads the columns a poll uses, side by side \
         in each GETBULK; snmpbulkwalk walks the whole table (every column). Requests as each tool \
         counts them (snmpbulkwalk with `-d`, which prints each packet sent).\n"
    );
    println!("| table | columns used | fathom objects | fathom requests | fathom (ms) | fathom whole-table walk: requests | (ms) | snmpbulkwalk objects | snmpbulkwalk requests | snmpbulkwalk (ms) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for spec in device::TABLES {
        let (ours, our_requests, our_ms) = time_ours(sim, runtime, CISCO, &spec);
        let (walk_requests, walk_ms) = time_walk(sim, runtime, CISCO, &spec);
        let mut theirs_ms = Vec::new();
        let mut theirs = (0, 0);
        for _ in 0..RUNS {
            let (objects, requests, secs) = bulkwalk(&sim.target(), CISCO, &oid_text(spec.entry));
            theirs = (objects, requests);
            theirs_ms.push(secs * 1000.0);
        }
        if theirs.0 == 0 {
            continue;
        }
        println!(
            "| {} | {} | {ours} | {our_requests} | {our_ms:.1} | {walk_requests} | {walk_ms:.1} | {} | {} | {:.1} |",
            spec.name,
            spec.columns.len(),
            theirs.0,
            theirs.1,
            median(&mut theirs_ms)
        );
    }
    println!();
}

/// Fathom reading `spec`'s columns: (objects, requests, median ms).
fn time_ours(
    sim: &Snmpsim,
    runtime: &tokio::runtime::Runtime,
    community: &str,
    spec: &TableSpec,
) -> (usize, u64, f64) {
    let mut times = Vec::new();
    let mut found = (0, 0);
    for _ in 0..RUNS {
        let start = Instant::now();
        found = runtime.block_on(async {
            let mut session = Session::open(sim.target().parse().unwrap(), settings(community))
                .await
                .unwrap();
            let rows = device::table(&mut session, spec).await.unwrap();
            let objects: usize = rows.values().map(|r| r.len()).sum();
            (objects, session.requests_sent)
        });
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    (found.0, found.1, median(&mut times))
}

/// Fathom walking the whole table, one subtree as snmpbulkwalk does:
/// (requests, median ms).
fn time_walk(
    sim: &Snmpsim,
    runtime: &tokio::runtime::Runtime,
    community: &str,
    spec: &TableSpec,
) -> (u64, f64) {
    let mut times = Vec::new();
    let mut requests = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        requests = runtime.block_on(async {
            let mut session = Session::open(sim.target().parse().unwrap(), settings(community))
                .await
                .unwrap();
            session.walk(&Oid(spec.entry.to_vec())).await.unwrap();
            session.requests_sent
        });
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    (requests, median(&mut times))
}

fn poll_section(sim: &Snmpsim, runtime: &tokio::runtime::Runtime) {
    println!("### A whole poll of one device\n");
    println!(
        "Fathom's poll (`probe snmp`: the system group, then every table above) against what \
         net-snmp needs for the same tables: one `snmpget` of the system group and one \
         `snmpbulkwalk` per table (each a process of its own, as a script would run them). \
         The two recordings on snmpsim, and this host's own net-snmp `snmpd` (HOST-RESOURCES-MIB \
         included: 800-odd installed packages). Median of {RUNS}.\n"
    );
    println!("| device | fathom requests | fathom (ms) | net-snmp requests | net-snmp (ms) |");
    println!("|---|---:|---:|---:|---:|");
    let host = snmpd(1, true);
    let host_target = format!("127.0.0.1:{}", host.ports[0]);
    for (name, target, community) in [
        (CISCO, sim.target(), CISCO),
        (HPE, sim.target(), HPE),
        ("snmpd 5.9 on this host", host_target, "fleet"),
    ] {
        let mut ours = Vec::new();
        let mut our_requests = 0;
        for _ in 0..RUNS {
            let start = Instant::now();
            our_requests = runtime.block_on(async {
                let mut session = Session::open(target.parse().unwrap(), settings(community))
                    .await
                    .unwrap();
                device::probe(&mut session).await.unwrap();
                session.requests_sent
            });
            ours.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let mut theirs = Vec::new();
        let mut their_requests = 0;
        for _ in 0..RUNS {
            let start = Instant::now();
            let get = Command::new("snmpget")
                .args(["-v2c", "-c", community, "-On"])
                .arg(&target)
                .args((1..=6).map(|n| format!("1.3.6.1.2.1.1.{n}.0")))
                .output()
                .unwrap();
            assert!(get.status.success(), "{get:?}");
            let mut requests = 1;
            for spec in device::TABLES {
                requests += bulkwalk(&target, community, &oid_text(spec.entry)).1;
            }
            their_requests = requests;
            theirs.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "| {name} | {our_requests} | {:.1} | {their_requests} | {:.1} |",
            median(&mut ours),
            median(&mut theirs)
        );
    }
    println!();
}

/// snmpd processes answering on `ports`, killed when dropped.
struct Fleet {
    children: Vec<std::process::Child>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Ports one snmpd listens on: it waits with select(), so its descriptors
/// must stay under 1024.
const PORTS_PER_SNMPD: usize = 250;

/// `devices` loopback ports answered by net-snmp's snmpd (one process per
/// 250 ports), community `fleet`; with a switch's view (no
/// HOST-RESOURCES-MIB) unless `host_resources`.
fn snmpd(devices: usize, host_resources: bool) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let mut ports = Vec::new();
    while ports.len() < devices {
        let port = free_udp_port();
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    let conf = dir.path().join("snmpd.conf");
    std::fs::write(
        &conf,
        format!(
            "view switch included .1.3.6.1.2.1\n{}\
             rocommunity fleet 127.0.0.1 -V switch\nsysName fleet-switch\n",
            if host_resources {
                ""
            } else {
                "view switch excluded .1.3.6.1.2.1.25\n"
            }
        ),
    )
    .unwrap();
    let mut children = Vec::new();
    for (i, chunk) in ports.chunks(PORTS_PER_SNMPD).enumerate() {
        let state = dir.path().join(format!("snmpd-{i}"));
        std::fs::create_dir_all(&state).unwrap();
        let addresses: Vec<String> = chunk.iter().map(|p| format!("udp:127.0.0.1:{p}")).collect();
        children.push(
            Command::new("snmpd")
                .args(["-f", "-Lo", "-C", "-c"])
                .arg(&conf)
                .arg("-p")
                .arg(state.join("snmpd.pid"))
                .arg(addresses.join(","))
                .env("SNMP_PERSISTENT_DIR", &state)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    let fleet = Fleet {
        children,
        ports,
        _dir: dir,
    };
    for chunk in fleet.ports.chunks(PORTS_PER_SNMPD) {
        let last = format!("127.0.0.1:{}", chunk[chunk.len() - 1]);
        wait_for("snmpd on every port", Duration::from_secs(60), || {
            Command::new("snmpget")
                .args([
                    "-v2c",
                    "-c",
                    "fleet",
                    "-r0",
                    "-t1",
                    &last,
                    "1.3.6.1.2.1.1.5.0",
                ])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(drop)
        });
    }
    fleet
}

fn fleet_section(sizes: &[usize]) {
    println!("### Polling a fleet\n");
    println!(
        "`fathom-agent run --once` with one `[[snmp.targets]]` per device and \
         `max_concurrent = 32`: it takes its own inventory, polls every device, spools each \
         report as it finishes and delivers all of them to a collector on loopback. The devices \
         are net-snmp `snmpd` processes answering on that many loopback ports, 250 ports each \
         (each is single-threaded, and they share the machine's two cores with the agent and \
         the collector). Peak RSS of the agent process, from GNU time.\n"
    );
    println!("| devices | polled | wall (s) | devices/s | agent peak RSS (MiB) | agent CPU (s) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for &devices in sizes {
        let fleet = snmpd(devices, false);
        let collector = Collector::start();
        let token = collector.create_token("1h", 1);
        let host = fixture_root("poller", "00112233445566778899aabbccddeeff");
        let secrets = tempfile::tempdir().unwrap();
        let community = secrets.path().join("community");
        std::fs::write(&community, "fleet\n").unwrap();
        let mut config = format!(
            "[snmp]\nmax_concurrent = 32\ntimeout_ms = 5000\n[snmp.credentials.fleet]\nversion = \"2c\"\ncommunity_file = \"{}\"\n",
            community.display()
        );
        for port in &fleet.ports {
            config.push_str(&format!(
                "[[snmp.targets]]\naddress = \"127.0.0.1:{port}\"\ncredentials = \"fleet\"\n"
            ));
        }
        let agent = Agent::new(&collector, host.path(), &config);
        let start = Instant::now();
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%U %S %M", "-o"])
            .arg(secrets.path().join("time"))
            .arg(bin("fathom-agent"))
            .args(["run", "--once", "--config"])
            .arg(agent.dir.path().join("agent.toml"))
            .env("FATHOM_ENROLLMENT_TOKEN", &token)
            .env("FATHOM_LOG", "info")
            .output()
            .unwrap();
        let wall = start.elapsed().as_secs_f64();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        let polled: usize = log
            .lines()
            .find(|l| l.contains("Devices polled"))
            .and_then(|l| l.split("polled=").nth(1))
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let time = std::fs::read_to_string(secrets.path().join("time")).unwrap();
        let f: Vec<f64> = time
            .lines()
            .last()
            .unwrap()
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        println!(
            "| {devices} | {polled} | {wall:.1} | {:.0} | {:.1} | {:.2} |",
            polled as f64 / wall,
            f[2] / 1024.0,
            f[0] + f[1]
        );
    }
    println!();
}
