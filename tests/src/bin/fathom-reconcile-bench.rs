//! `fathom-reconcile-bench`: reconciliation cost per inventory report as
//! the CMDB grows, and the time from a report's arrival to its incident.
//!
//! ```text
//! cargo build --release --workspace --bins
//! ./target/release/fathom-reconcile-bench --sizes 1000,10000,100000
//! ```
//!
//! 1. For each CMDB size N: a sled store filled with N discovered CIs
//!    (each enrolled and reported like a real agent, with a small
//!    inventory), then one subject host with this machine's real inventory
//!    (all its packages). Each measured report goes through `Cmdb::apply`:
//!    replay checks, identification, the discovered state, the diff against
//!    the authorized state, decisions, drift, incident and RFC writes, in
//!    one transaction (the flush before the acknowledgement is group
//!    commit's, measured by the ingest benchmark). Two workloads: steady
//!    (nothing changed) and drifting (one package changes every report,
//!    back and forth: drift opened, observed, reverted, reopened).
//! 2. Report to incident over the real collector process: a signed
//!    inventory with an unauthorized change is posted over HTTPS; the time
//!    to its acknowledgement (the incident is written in the same
//!    transaction) and until `GET /v1/incidents` lists it.
//!
//! Prints Markdown on stdout.

// Reports are sent over HTTPS as agents send them.
#![allow(clippy::disallowed_types)]

use std::time::{Duration, Instant};

/// The collector's allocator (see `fathom-collector`), so this measures
/// what the collector does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ed25519_dalek::SigningKey;
use fathom_agent::probe::{collect_inventory, HostRoot};
use fathom_collector::cmdb::Cmdb;
use fathom_collector::control::policy::Policy;
use fathom_collector::reconcile::Report;
use fathom_collector::store::sled_store::SledStore;
use fathom_shared::codec;
use fathom_shared::envelope::{seal, BodyKind};
use fathom_shared::ids::AgentId;
use fathom_shared::tls::{client_config, Trust};
use fathom_shared::wire::{Enrollment, Host, Inventory, Package};
use fathom_tests::{now_ms, Collector};

const MEASURED: usize = 300;

const USAGE: &str = "\
Usage: fathom-reconcile-bench [--sizes N,N,...]

Reconciliation cost per inventory report as the CMDB grows, and the time
from a report's arrival to its incident. Prints Markdown on stdout.

Options:
  --sizes LIST   CMDB sizes to measure (default 1000,10000,100000)
  -h, --help     this text; runs nothing
";

fn main() {
    fathom_tests::bench_args(USAGE, &["--sizes"]);
    let sizes: Vec<usize> = arg("--sizes")
        .unwrap_or_else(|| "1000,10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("--sizes takes numbers"))
        .collect();
    let inventory = collect_inventory(&HostRoot::new("/"));
    let packages = inventory.packages.as_ref().map_or(0, Vec::len);
    assert!(
        packages > 0,
        "the subject needs this machine's package database"
    );
    println!("### Reconciliation per inventory report\n");
    println!(
        "Subject: this machine's inventory ({packages} packages). {MEASURED} measured reports per workload after 20 warm-up reports. Times are for `Cmdb::apply` (the whole report transaction); the store is flushed after each report, untimed, as group commit does before acknowledging.\n"
    );
    println!("| CIs in the CMDB | fill time (s) | steady median (ms) | steady p99 (ms) | drifting median (ms) | drifting p99 (ms) | store on disk (MiB) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        reconcile_at(n, &inventory);
    }
    println!();
    latency_section(&inventory);
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn key(i: u64) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    seed[8] = 0x5e;
    SigningKey::from_bytes(&seed)
}

fn filler(i: usize) -> Inventory {
    Inventory {
        observed_at_ms: now_ms(),
        agent_version: "bench".into(),
        host: Host {
            hostname: format!("filler-{i}"),
            arch: "x86_64".into(),
            machine_id: Some(format!("{i:032x}")),
            ..Host::default()
        },
        packages: Some(
            (0..20)
                .map(|p| Package {
                    name: format!("pkg-{p}"),
                    version: "1.0".into(),
                    arch: Some("amd64".into()),
                    manager: "dpkg".into(),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Inventory::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn enroll(cmdb: &Cmdb<SledStore>, token: &str, k: &SigningKey) -> AgentId {
    let public = k.verifying_key().to_bytes();
    let agent = AgentId::from_public_key(&public);
    let report = Report::Enrollment {
        public_key: public,
        body: Enrollment {
            token: token.into(),
            hostname: "bench".into(),
            agent_version: "bench".into(),
        },
    };
    cmdb.apply(agent, 0, "enroll", &report, now_ms()).unwrap();
    agent
}

fn reconcile_at(n: usize, subject: &Inventory) {
    let dir = tempfile::tempdir().unwrap();
    let cmdb = Cmdb::new(SledStore::open(dir.path()).unwrap(), Policy::builtin());
    let (token, _) = cmdb
        .create_enrollment_token(3_600_000, n as u32 + 1, now_ms())
        .unwrap();
    let fill = Instant::now();
    for i in 0..n {
        let agent = enroll(&cmdb, &token, &key(i as u64 + 1));
        let report = Report::Inventory(Box::new(filler(i)));
        cmdb.apply(agent, 1, "fill", &report, now_ms()).unwrap();
    }
    cmdb.flush().unwrap();
    let fill_secs = fill.elapsed().as_secs_f64();

    let agent = enroll(&cmdb, &token, &key(u64::MAX));
    let mut seq = 0u64;
    let mut send = |inventory: &Inventory| -> Duration {
        seq += 1;
        let report = Report::Inventory(Box::new(inventory.clone()));
        let start = Instant::now();
        cmdb.apply(agent, seq, &format!("s{seq}"), &report, now_ms())
            .unwrap();
        let took = start.elapsed();
        // As in the collector, where group commit flushes before every
        // acknowledgement; not part of the reconciliation time.
        cmdb.flush().unwrap();
        took
    };
    send(subject);
    let mut steady: Vec<Duration> = (0..20 + MEASURED).map(|_| send(subject)).collect();
    steady.drain(..20);
    let mut changed = subject.clone();
    let flip = |inv: &mut Inventory, round: usize| {
        let p = &mut inv.packages.as_mut().unwrap()[0];
        p.version = if round.is_multiple_of(2) {
            "999:drift".into()
        } else {
            subject.packages.as_ref().unwrap()[0].version.clone()
        };
    };
    let mut drifting: Vec<Duration> = (0..20 + MEASURED)
        .map(|round| {
            flip(&mut changed, round);
            send(&changed)
        })
        .collect();
    drifting.drain(..20);
    steady.sort();
    drifting.sort();
    cmdb.flush().unwrap();
    let bytes: u64 = walk_size(dir.path());
    assert_eq!(
        cmdb.list_incidents().unwrap().len(),
        1,
        "flapping raises one incident"
    );
    println!(
        "| {n} | {fill_secs:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
        percentile(&steady, 0.5),
        percentile(&steady, 0.99),
        percentile(&drifting, 0.5),
        percentile(&drifting, 0.99),
        bytes as f64 / (1 << 20) as f64
    );
}

fn walk_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn latency_section(subject: &Inventory) {
    println!("### From report to incident, over HTTPS\n");
    let collector = Collector::start_logging("", "warn");
    let token = collector.create_token("1h", 1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(&Trust::Pinned(collector.fingerprint)).unwrap())
        .build()
        .unwrap();
    let reports = format!("{}v1/reports", collector.url());
    let incidents = format!("{}v1/incidents", collector.url());
    let k = key(7);
    let post = |seq: u64, kind: BodyKind, body: Vec<u8>| {
        let client = client.clone();
        let url = reports.clone();
        let envelope = seal(&k, kind, seq, now_ms(), &body);
        runtime.block_on(async move {
            let r = client
                .post(url)
                .header("content-type", "application/vnd.fathom.envelope")
                .body(envelope)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
        })
    };
    let count_incidents = || -> usize {
        let client = client.clone();
        let url = incidents.clone();
        let token = collector.admin_token.clone();
        runtime.block_on(async move {
            let r = client.get(url).bearer_auth(token).send().await.unwrap();
            r.json::<Vec<serde_json::Value>>().await.unwrap().len()
        })
    };
    let enrollment = codec::encode(&Enrollment {
        token,
        hostname: "bench".into(),
        agent_version: "bench".into(),
    })
    .unwrap();
    post(0, BodyKind::Enrollment, enrollment);
    let mut inventory = subject.clone();
    inventory.observed_at_ms = now_ms();
    post(1, BodyKind::Inventory, codec::encode(&inventory).unwrap());
    let mut acked = Vec::new();
    let mut visible = Vec::new();
    let rounds = 30;
    for round in 0..rounds {
        // Each round changes another package: a new unauthorized change.
        let packages = inventory.packages.as_mut().unwrap();
        packages[round + 1].version.push_str("+unauthorized");
        inventory.observed_at_ms = now_ms();
        let body = codec::encode(&inventory).unwrap();
        let start = Instant::now();
        post(round as u64 + 2, BodyKind::Inventory, body);
        acked.push(start.elapsed());
        while count_incidents() < round + 1 {}
        visible.push(start.elapsed());
    }
    acked.sort();
    visible.sort();
    println!(
        "{rounds} inventories ({} packages, one more package changed each time) posted one after another to a collector process on loopback; each raised one incident.\n",
        inventory.packages.as_ref().unwrap().len()
    );
    println!("| step | median (ms) | p90 (ms) | max (ms) |");
    println!("|---|---:|---:|---:|");
    for (what, v) in [
        (
            "report posted → acknowledged (incident written, durable)",
            &acked,
        ),
        (
            "report posted → incident listed by `GET /v1/incidents`",
            &visible,
        ),
    ] {
        println!(
            "| {what} | {:.1} | {:.1} | {:.1} |",
            percentile(v, 0.5),
            percentile(v, 0.9),
            percentile(v, 1.0)
        );
    }
    println!();
}
