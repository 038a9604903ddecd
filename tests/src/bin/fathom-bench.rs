//! `fathom-bench`: the measurements behind `docs/benchmarks.md`.
//!
//! Run from the workspace root, on an otherwise idle machine:
//!
//! ```text
//! cargo run --release -p fathom-tests --bin fathom-bench
//! ```
//!
//! It measures, with the release binaries:
//! 1. one full inventory (`fathom-agent inventory --json`): wall time, CPU,
//!    peak RSS, payload size; and the same for the peer tools that are
//!    installed (FusionInventory, OCS, facter, dpkg-query), in the same run;
//! 2. the agent daemon's resident memory while it reports, and its CPU use
//!    at steady state with metrics every 60 s (`--steady-secs`, default 180);
//! 3. collector ingest: signed metrics and inventory reports per second,
//!    each acknowledged only after a durable flush, from concurrent agents
//!    over HTTPS on loopback (the load generator shares the machine).
//!
//! Prints a Markdown report on stdout.

// Load is sent over HTTPS as agents send it.
#![allow(clippy::disallowed_types)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use fathom_shared::codec;
use fathom_shared::envelope::{seal, BodyKind};
use fathom_shared::tls::{client_config, Trust};
use fathom_shared::wire::{Enrollment, Inventory, Metrics};
use fathom_tests::{bin, now_ms, Agent, Collector};

const RUNS: usize = 5;

const USAGE: &str = "\
Usage: fathom-bench [--reports N] [--concurrency N] [--steady-secs N] [--only ingest]

The measurements behind docs/benchmarks.md, with the release binaries:
one full inventory beside the peer tools, the agent daemon's memory and
steady-state CPU, and collector ingest over HTTPS with durable flushes.
Prints a Markdown report on stdout.

Options:
  --reports N       reports sent in the ingest run (default 20000)
  --concurrency N   concurrent agents in the ingest run (default 64)
  --steady-secs N   how long the agent runs at steady state (default 180)
  --only ingest     only the ingest run, without and with fdatasync
  -h, --help        this text; runs nothing
";

fn main() {
    fathom_tests::bench_args(
        USAGE,
        &["--reports", "--concurrency", "--steady-secs", "--only"],
    );
    let reports: usize = arg("--reports").unwrap_or(20_000);
    let steady_secs: u64 = arg("--steady-secs").unwrap_or(180);
    let concurrency: usize = arg("--concurrency").unwrap_or(64);
    assert!(
        bin("fathom-agent").to_string_lossy().contains("release"),
        "run with --release: debug binaries measure nothing useful"
    );
    println!(
        "## Run of {}\n",
        fathom_tests::rfc3339(fathom_tests::now_ms())
    );
    machine();
    // `--only ingest`: the collector's ingest alone, without and with
    // fdatasync before each acknowledgement, side by side.
    if arg::<String>("--only").as_deref() == Some("ingest") {
        ingest_section(reports, concurrency, "none");
        ingest_section(reports, concurrency, "fdatasync");
        return;
    }
    inventory_section();
    daemon_rss_section();
    steady_state_section(steady_secs);
    ingest_section(reports, concurrency, "fdatasync");
}

fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap().trim().to_owned())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024)
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "Machine: {} CPUs ({cpu}), {mem} MiB RAM, kernel {}.\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        kernel.trim()
    );
}

/// Runs `cmd` under GNU time: (wall s, user+sys s, max RSS KiB, stdout bytes).
fn timed(cmd: &[&str]) -> Option<(f64, f64, u64, usize)> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %U %S %M", "-o", "/dev/stderr", "--"])
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last()?;
    let f: Vec<f64> = last
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if f.len() != 4 {
        return None;
    }
    Some((f[0], f[1] + f[2], f[3] as u64, out.stdout.len()))
}

/// Median of RUNS runs after one warm-up, timed from the outside with a
/// nanosecond clock (GNU time's wall clock has 10 ms steps).
fn measure(cmd: &[&str]) -> Option<(f64, f64, u64, usize)> {
    timed(cmd)?;
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut rss = 0;
    let mut bytes = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let (_, cpu, r, b) = timed(cmd)?;
        walls.push(start.elapsed().as_secs_f64());
        cpus.push(cpu);
        rss = rss.max(r);
        bytes = b;
    }
    walls.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    Some((walls[RUNS / 2], cpus[RUNS / 2], rss, bytes))
}

fn inventory_section() {
    println!("### Full inventory, one run, this host\n");
    println!("Median of {RUNS} runs after a warm-up; wall includes process start and GNU time's own fork (about 1 ms). Peak RSS is the largest of the runs.\n");
    println!(
        "| tool | command | wall median (ms) | CPU median (ms) | peak RSS (MiB) | report bytes (raw / gzip -6) |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    let agent = bin("fathom-agent");
    let agent = agent.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ocs_dir = tmp.path().to_str().unwrap().to_owned();
    let peers: Vec<(&str, Vec<&str>)> = vec![
        ("fathom-agent", vec![agent, "inventory", "--json"]),
        (
            "dpkg-query (floor, packages only)",
            vec!["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
        ),
        ("facter 4", vec!["facter", "--json"]),
        ("FusionInventory 2.6", vec!["fusioninventory-inventory"]),
        (
            "OCS Inventory agent 2.10",
            vec!["ocsinventory-agent", "--local", &ocs_dir],
        ),
    ];
    let mut fathom_wall = None;
    for (name, cmd) in &peers {
        match measure(cmd) {
            Some((wall, cpu, rss, _)) => {
                if fathom_wall.is_none() {
                    fathom_wall = Some(wall);
                }
                let ratio = fathom_wall.map(|f| wall / f).unwrap_or(1.0);
                let shown = cmd
                    .iter()
                    .map(|c| {
                        let c = c.rsplit('/').next().unwrap();
                        c.replace('\t', "\\t").replace('\n', "\\n")
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                // GNU time counts CPU in 10 ms steps.
                let cpu = if cpu < 0.01 {
                    "< 10".to_owned()
                } else {
                    format!("{:.0}", cpu * 1000.0)
                };
                let report = if name.starts_with("OCS") {
                    // The document it wrote into the directory.
                    std::fs::read_dir(&ocs_dir)
                        .ok()
                        .and_then(|d| d.filter_map(Result::ok).next())
                        .and_then(|e| std::fs::read(e.path()).ok())
                        .unwrap_or_default()
                } else {
                    Command::new(cmd[0])
                        .args(&cmd[1..])
                        .stderr(Stdio::null())
                        .output()
                        .map(|o| o.stdout)
                        .unwrap_or_default()
                };
                let bytes = format!("{} / {}", report.len(), gzipped(&report));
                println!(
                    "| {name} | `{shown}` | {:.1} ({ratio:.0}×) | {cpu} | {:.1} | {bytes} |",
                    wall * 1000.0,
                    rss as f64 / 1024.0
                );
            }
            None => println!("| {name} | `{}` | not installed | | | |", cmd[0]),
        }
    }
    // The wire size: msgpack, as the agent sends it.
    let json = Command::new(agent)
        .args(["inventory", "--json"])
        .output()
        .unwrap()
        .stdout;
    let inventory: Inventory = serde_json::from_slice(&json).unwrap();
    let wire = codec::encode(&inventory).unwrap();
    // What a change push costs: one package upgraded, as a delta.
    let mut tracker = fathom_agent::delta::Tracker::default();
    tracker.spooled_full(1, &inventory);
    let mut upgraded = inventory.clone();
    if let Some(p) = upgraded.packages.as_mut().and_then(|p| p.first_mut()) {
        p.version.push_str("+1");
    }
    let key = SigningKey::from_bytes(&[1; 32]);
    let sealed = |kind, body: &[u8]| seal(&key, kind, 1, now_ms(), body).len();
    let delta = match tracker.next(upgraded) {
        (fathom_agent::delta::Next::Delta(d), _) => codec::encode(&d).unwrap(),
        _ => Vec::new(),
    };
    println!(
        "\nfathom-agent's report for this host ({} packages) is {} bytes as JSON, {} bytes as msgpack ({} gzipped), \
         and **{} bytes on the wire**: the signed envelope, deflated, before TLS. \
         A change push after one package upgrade is a delta carrying that one package: {} bytes as msgpack, {} on the wire.\n",
        inventory.packages.as_ref().map_or(0, Vec::len),
        json.len(),
        wire.len(),
        gzipped(&wire),
        sealed(BodyKind::Inventory, &wire),
        delta.len(),
        sealed(BodyKind::InventoryDelta, &delta),
    );
}

/// Size of `bytes` after `gzip -6`.
fn gzipped(bytes: &[u8]) -> usize {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .arg("-6")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out.stdout.len()
}

fn daemon_rss_section() {
    println!("### Agent daemon memory\n");
    let collector = Collector::start_logging("", "warn");
    let (_agent, mut child) = spawn_daemon(
        &collector,
        "metrics_interval_secs = 1\ninventory_interval_secs = 5\n",
    );
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(12));
    let rss = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    let used_ms = cpu_ns(pid) / 1_000_000;
    let _ = child.kill();
    let _ = child.wait();
    let received = collector.agents()[0]["reports_received"].as_u64().unwrap();
    println!(
        "`fathom-agent run` against a local collector for 12 s, taking metrics every second and a full inventory every 5 s ({received} reports delivered): \
         resident {:.1} MiB (VmRSS), peak {:.1} MiB (VmHWM), {} ms of CPU in all.\n",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        used_ms
    );
}

fn status_kib(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `fathom-agent run` on this host against `collector`, enrolling on its
/// first start. The agent's directory lives as long as the returned `Agent`.
fn spawn_daemon(collector: &Collector, config: &str) -> (Agent, std::process::Child) {
    let agent = Agent::new(collector, std::path::Path::new("/"), config);
    let token = collector.create_token("1h", 1);
    let child = agent
        .command(&["run"])
        .env("FATHOM_ENROLLMENT_TOKEN", &token)
        .env("FATHOM_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (agent, child)
}

/// CPU time a process has spent on a CPU, in nanoseconds (the scheduler's
/// own count: finer than the 10 ms ticks of `/proc/<pid>/stat`).
fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The daemon as deployed: metrics every 60 s, the hourly inventory, change
/// push on. CPU is counted from after its start-up inventory.
fn steady_state_section(secs: u64) {
    println!("### Agent daemon at steady state\n");
    let collector = Collector::start_logging("", "warn");
    let (_agent, mut child) = spawn_daemon(&collector, "metrics_interval_secs = 60\n");
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(5));
    let start_ns = cpu_ns(pid);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let used_ns = cpu_ns(pid) - start_ns;
    let elapsed = start.elapsed().as_secs_f64();
    let rss = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    let received = collector.agents()[0]["reports_received"].as_u64().unwrap();
    let cpu_s = used_ns as f64 / 1e9;
    println!(
        "`fathom-agent run` with `metrics_interval_secs = 60` (default inventory schedule, change push on), \
         observed for {elapsed:.0} s after its start-up inventory ({received} reports delivered in all): \
         {:.1} ms of CPU, **{:.4}% of one core**; resident {:.1} MiB (VmRSS), peak {:.1} MiB (VmHWM).\n",
        cpu_s * 1000.0,
        cpu_s / elapsed * 100.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
}

fn ingest_section(reports: usize, concurrency: usize, store_sync: &str) {
    println!("### Collector ingest, durable acknowledgements (store_sync = {store_sync})\n");
    let collector = Arc::new(Collector::start_logging(
        &format!("max_concurrent_reports = 4096\nstore_sync = \"{store_sync}\"\n"),
        "warn",
    ));
    let token = collector.create_token("1h", concurrency as u32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(&Trust::Pinned(collector.fingerprint)).unwrap())
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let url = format!("{}v1/reports", collector.url());
    let keys: Vec<SigningKey> = (0..concurrency)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            seed[8] = 0xbe;
            SigningKey::from_bytes(&seed)
        })
        .collect();
    runtime.block_on(async {
        for key in &keys {
            let body = codec::encode(&Enrollment {
                token: token.clone(),
                hostname: "bench".into(),
                agent_version: "bench".into(),
            })
            .unwrap();
            let r = client
                .post(&url)
                .header("content-type", "application/vnd.fathom.envelope")
                .body(seal(key, BodyKind::Enrollment, 0, now_ms(), &body))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
    });
    let json = Command::new(bin("fathom-agent"))
        .args(["inventory", "--json"])
        .output()
        .unwrap()
        .stdout;
    let inventory: Inventory = serde_json::from_slice(&json).unwrap();
    let inventory_body = codec::encode(&inventory).unwrap();
    let metrics_body = codec::encode(&Metrics {
        observed_at_ms: now_ms(),
        cpu_utilisation_pct: 12.5,
        memory_total_bytes: 1 << 34,
        memory_used_bytes: 1 << 33,
        ..Metrics::default()
    })
    .unwrap();

    println!("{concurrency} enrolled agents post concurrently over keep-alive HTTPS connections; every answer is a 200 given only after the report is flushed to disk (group commit). The envelopes are signed (and inventories deflated) before the clock starts; the load generator runs on the same 2 CPUs.\n");
    println!("| report | body bytes (msgpack) | envelope bytes (as sent) | reports | seconds | reports/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut next_seq = vec![1u64; concurrency];
    let mut sent = 0u64;
    for (kind, body, count) in [
        (BodyKind::Metrics, &metrics_body, reports),
        (
            BodyKind::Inventory,
            &inventory_body,
            (reports / 10).max(concurrency),
        ),
    ] {
        let per_agent = count / concurrency;
        let envelopes: Vec<Vec<Vec<u8>>> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                (next_seq[i]..next_seq[i] + per_agent as u64)
                    .map(|seq| seal(key, kind, seq, now_ms(), body))
                    .collect()
            })
            .collect();
        let envelope_len = envelopes[0][0].len();
        let start = Instant::now();
        runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for agent_envelopes in envelopes {
                let client = client.clone();
                let url = url.clone();
                tasks.spawn(async move {
                    for envelope in agent_envelopes {
                        let r = client
                            .post(&url)
                            .header("content-type", "application/vnd.fathom.envelope")
                            .body(envelope)
                            .send()
                            .await
                            .unwrap();
                        assert!(r.status().is_success(), "{}", r.status());
                        let _ = r.bytes().await;
                    }
                });
            }
            while let Some(r) = tasks.join_next().await {
                r.unwrap();
            }
        });
        let secs = start.elapsed().as_secs_f64();
        for s in &mut next_seq {
            *s += per_agent as u64;
        }
        let done = per_agent * concurrency;
        sent += done as u64;
        println!(
            "| {} | {} | {envelope_len} | {done} | {secs:.2} | {:.0} |",
            kind.as_str(),
            body.len(),
            done as f64 / secs
        );
    }
    let stored: u64 = collector
        .agents()
        .iter()
        .map(|a| a["reports_received"].as_u64().unwrap())
        .sum();
    assert_eq!(
        stored, sent,
        "every acknowledged report is stored, none twice"
    );
    println!(
        "\nReports stored in the CMDB afterwards: {stored}, exactly the number acknowledged.\n"
    );
}
