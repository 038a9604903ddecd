//! `fathom-capacity-bench`: the metric store's ingest rate and its disk
//! bytes per sample.
//!
//! ```text
//! cargo build --release --workspace --bins
//! ./target/release/fathom-capacity-bench [--cis 200] [--hours 6] [--days 400]
//! ```
//!
//! 1. **Ingest** (`--only ingest`): `--cis` hosts, each reporting every 60 s
//!    for `--hours` of simulated time, with values moving like a real
//!    host's (random walks, noise, a daily swing, growth): CPU, three
//!    loads, memory, swap, then three filesystems and two interfaces (22
//!    series), or eight and six (49). Each report goes through
//!    `Cmdb::apply` (the log write of the real ingest transaction, without
//!    the HTTPS, signature check and flush that the ingest benchmark
//!    measures) on one thread, while the capacity task's fold and hourly
//!    roll-ups run on another. Samples per second of wall time.
//! 2. **Disk** (`--only disk`): one host reporting every 60 s for `--days`
//!    simulated days, rolled up hourly; then the bytes the metric store
//!    holds (keys and values of its tables) per sample ever ingested, the
//!    sealed raw tier's bytes per raw sample kept, and the store's size on
//!    disk after a flush.
//!
//! 3. **Availability** (`--only availability`): the availability report of
//!    a 50-CI service over a year of outages.
//! 4. **Plan** (`--only plan`, `--plan-cis 10000`, `--plan-days 1`): the
//!    capacity plan over that many hosts with that much history (reports
//!    every 10 minutes for a day, hourly for longer).
//!
//! Prints Markdown on stdout.

use std::time::{Duration, Instant};

/// The collector's allocator (see `fathom-collector`), so this measures
/// what the collector does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use fathom_collector::capacity::store::{MetricSettings, MetricStore};
use fathom_collector::cmdb::Cmdb;
use fathom_collector::control::policy::Policy;
use fathom_collector::reconcile::Report;
use fathom_collector::store::sled_store::SledStore;
use fathom_collector::store::{Store, Table};
use fathom_shared::ids::AgentId;
use fathom_shared::wire::{Enrollment, FilesystemUse, Host, InterfaceCounters, Inventory, Metrics};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

const USAGE: &str = "\
Usage: fathom-capacity-bench [--only ingest|disk|availability|plan] [--cis N] [--hours N] [--days N] [--plan-cis N] [--plan-days N]

The metric store's ingest rate and bytes per sample, a year's availability
report and the capacity plan. Prints Markdown on stdout.

Options:
  --only WHAT     one part: ingest, disk, availability or plan (default all)
  --cis N         hosts in the ingest run (default 200)
  --hours N       simulated hours in the ingest run (default 6)
  --days N        simulated days in the disk run (default 400)
  --plan-cis N    hosts in the plan run (default 10000)
  --plan-days N   days of history in the plan run (default 1)
  -h, --help      this text; runs nothing
";

fn main() {
    fathom_tests::bench_args(
        USAGE,
        &[
            "--only",
            "--cis",
            "--hours",
            "--days",
            "--plan-cis",
            "--plan-days",
        ],
    );
    let only = arg("--only");
    let cis: usize = arg("--cis").map_or(200, |v| v.parse().expect("--cis takes a number"));
    let hours: i64 = arg("--hours").map_or(6, |v| v.parse().expect("--hours takes a number"));
    let days: i64 = arg("--days").map_or(400, |v| v.parse().expect("--days takes a number"));
    if only.as_deref().is_none_or(|o| o == "ingest") {
        println!("### Metric ingest with roll-ups on\n");
        println!("Reports applied on one thread (`Cmdb::apply`: the log write of the real ingest transaction, without the HTTPS, signature check and flush the ingest benchmark measures) while the fold and hourly roll-ups run on another, as in the collector. Samples/s is samples folded into the store over the wall time of the whole run.\n");
        println!("| workload | reports | samples | wall | fold busy | roll-up busy | samples/s |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        ingest(cis, hours, 3, 2);
        ingest(cis, hours, 8, 6);
        println!();
    }
    if only.as_deref().is_none_or(|o| o == "disk") {
        disk(days);
    }
    if only.as_deref().is_none_or(|o| o == "availability") {
        availability();
    }
    if only.as_deref().is_none_or(|o| o == "plan") {
        let plan_cis: usize =
            arg("--plan-cis").map_or(10_000, |v| v.parse().expect("--plan-cis takes a number"));
        let plan_days: i64 =
            arg("--plan-days").map_or(1, |v| v.parse().expect("--plan-days takes a number"));
        plan(plan_cis, plan_days);
    }
}

/// The capacity plan over `cis` hosts (22 series each, 9 with a threshold
/// in the shipped policy), each with `days` of history: reports every 10
/// minutes for a day, hourly beyond (the plan reads hourly means).
fn plan(cis: usize, days: i64) {
    use fathom_collector::capacity::plan::Scope;
    let dir = tempfile::tempdir().unwrap();
    let (cmdb, agents) = fleet(dir.path(), cis);
    let settings = MetricSettings::default();
    let metrics = MetricStore::new(cmdb.store(), &settings);
    let mut hosts: Vec<Host1> = (0..cis).map(|i| Host1::new(i as u64 + 1, 3, 2)).collect();
    let mut seq = 2u64;
    let filled = Instant::now();
    let every = if days <= 1 { 10 * MINUTE } else { HOUR };
    let steps = days * 24 * HOUR / every;
    for step in 0..steps {
        let at = T0 + step * every;
        for (i, agent) in agents.iter().enumerate() {
            let report = Report::Metrics(hosts[i].report(at));
            cmdb.apply(*agent, seq, &format!("m{seq}"), &report, at + MINUTE)
                .unwrap();
            seq += 1;
        }
        while metrics.fold(2000, at + MINUTE).unwrap().entries > 0 {}
        if (at - T0) % (24 * HOUR) == 23 * HOUR {
            roll_up_all(&metrics, at + HOUR);
        }
    }
    let now = T0 + (steps - 1) * every + MINUTE;
    roll_up_all(&metrics, now);
    let filled = filled.elapsed();
    let started = Instant::now();
    let plan = cmdb
        .capacity_plan(&Scope::All, days, now, &settings)
        .unwrap();
    let took = started.elapsed();
    let seasonal = plan
        .lines
        .iter()
        .filter(|l| l.seasonal_rmse.is_some())
        .count();
    println!("#### {cis} CIs, {days} day(s) of history\n");
    println!(
        "{cis} hosts, {days} day(s) of reports every {} minutes (filled in {:.0} s), 22 series each; `Cmdb::capacity_plan` over all of them for those days: every thresholded series' recent mean, 5-minute peaks, hourly trend, Holt-Winters fits (daily, and weekly given two weeks; {seasonal} series had enough hours for one), headroom, and open RFCs' effects.\n",
        every / MINUTE,
        filled.as_secs_f64()
    );
    println!("| CIs | days | plan lines | time | per CI |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {cis} | {days} | {} | **{:.2} s** | {:.2} ms |\n",
        plan.lines.len(),
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / cis as f64
    );
}

/// A service of 50 CIs (30 in series, two redundancy groups: 2 of 10 and
/// 7 of 10), each with an outage every few days over a year, agreed hours
/// Monday to Friday 08:00–18:00 in Paris with holidays: the time to compute
/// its availability report for the year.
fn availability() {
    use fathom_collector::availability::outage::Outage;
    use fathom_collector::cmdb::ci::NewCi;
    use fathom_collector::cmdb::history::Actor;
    use fathom_collector::cmdb::relationship::RelationKind;
    use fathom_collector::cmdb::Role;
    let dir = tempfile::tempdir().unwrap();
    let cmdb = Cmdb::new(SledStore::open(dir.path()).unwrap(), Policy::builtin());
    let person = Actor::Operator {
        name: "bench".into(),
        role: Role::ConfigurationManager,
    };
    let create = |name: String, attributes: Vec<(String, String)>| {
        let new = NewCi {
            class: "server".into(),
            name,
            attributes: attributes.into_iter().collect(),
            ..NewCi::default()
        };
        cmdb.create_ci(&person, &new, "bench", T0).unwrap().id
    };
    let members: Vec<_> = (0..50)
        .map(|i| create(format!("member-{i}"), vec![]))
        .collect();
    let list = |r: std::ops::Range<usize>| {
        members[r]
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let service = create(
        "shop".into(),
        vec![
            ("availability.hours".into(), "mon-fri 08:00-18:00".into()),
            ("availability.timezone".into(), "Europe/Paris".into()),
            (
                "availability.exceptions".into(),
                "2026-01-01 closed; 2026-05-01 closed; 2026-12-25 closed".into(),
            ),
            ("availability.target".into(), "99.5".into()),
            ("redundancy.web".into(), format!("2 of {}", list(30..40))),
            ("redundancy.db".into(), format!("7 of {}", list(40..50))),
        ],
    );
    for m in &members[..30] {
        cmdb.relate(
            &person,
            service,
            RelationKind::DependsOn,
            *m,
            true,
            "bench",
            T0,
        )
        .unwrap();
    }
    let mut rng = Rng(42);
    let mut records = Vec::new();
    for m in &members {
        let mut t = T0;
        loop {
            // An outage every 1–7 days, 1 minute to 3 hours long.
            t += ((1.0 + 6.0 * rng.unit()) * 24.0 * HOUR as f64) as i64;
            if t >= T0 + 365 * 24 * HOUR {
                break;
            }
            let end = t + ((1.0 + 179.0 * rng.unit()) * MINUTE as f64) as i64;
            let o = Outage {
                ci: *m,
                start_ms: t,
                end_ms: Some(end),
                planned: rng.unit() < 0.2,
                rfc: None,
                planned_by: None,
                incident: None,
                cause: "missed_heartbeats".into(),
            };
            let mut key = m.as_u64().to_be_bytes().to_vec();
            key.extend_from_slice(&t.to_be_bytes());
            records.push((key, fathom_shared::codec::encode(&o).unwrap()));
            t = end;
        }
    }
    let outages = records.len();
    cmdb.store()
        .transaction::<(), ()>(|tx| {
            for (key, value) in &records {
                tx.insert(Table::Outages, key, value)?;
            }
            Ok(())
        })
        .unwrap();
    let mut times = Vec::new();
    let mut report = None;
    for _ in 0..11 {
        let started = Instant::now();
        report = Some(
            cmdb.availability_report(service, T0, T0 + 365 * 24 * HOUR)
                .unwrap(),
        );
        times.push(started.elapsed());
    }
    times.sort();
    let r = report.unwrap();
    println!("### Availability of a service over a year\n");
    println!(
        "A service of 50 CIs (30 in series; redundancy groups 2 of 10 and 7 of 10), {outages} member outages over 2026 (one every 1–7 days per CI, 1 minute to 3 hours, a fifth planned), agreed hours Monday–Friday 08:00–18:00 Europe/Paris with three holidays. `Cmdb::availability_report` for the year, from the store (outages read, timelines merged, the groups' k-of-n sweeps, agreed hours, each member's own figure), median of 11 runs.\n"
    );
    println!(
        "| agreed hours | service downtime | outages | availability | median time | slowest |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {:.0} h | {:.1} h | {} | {:.3} % | **{:.1} ms** | {:.1} ms |\n",
        r.agreed_ms as f64 / HOUR as f64,
        r.down_ms as f64 / HOUR as f64,
        r.outages,
        r.availability_pct.unwrap(),
        times[5].as_secs_f64() * 1000.0,
        times[10].as_secs_f64() * 1000.0
    );
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// xorshift64*: a deterministic stream of numbers for the simulated hosts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One simulated host's state between reports.
struct Host1 {
    rng: Rng,
    cpu: f64,
    memory: u64,
    used: Vec<u64>,
    inodes: Vec<u64>,
    rx: Vec<u64>,
    tx: Vec<u64>,
}

const GIB: u64 = 1 << 30;

impl Host1 {
    /// A host with `mounts` filesystems and `nics` interfaces.
    fn new(seed: u64, mounts: usize, nics: usize) -> Host1 {
        Host1 {
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            cpu: 20.0,
            memory: 6 * GIB,
            used: (0..mounts).map(|i| (10 + 30 * i as u64) * GIB).collect(),
            inodes: (0..mounts).map(|i| 50_000 * (i as u64 + 1)).collect(),
            rx: vec![0; nics],
            tx: vec![0; nics],
        }
    }

    /// The next report, at `at` (a daily swing in CPU and traffic, noise on
    /// everything, filesystems growing).
    fn report(&mut self, at: i64) -> Metrics {
        let r = &mut self.rng;
        let day = ((at % (24 * HOUR)) as f64 / (24 * HOUR) as f64 * std::f64::consts::TAU).sin();
        self.cpu = (self.cpu + (r.unit() - 0.5) * 6.0).clamp(2.0, 60.0);
        let cpu = (self.cpu + 25.0 * day + r.unit() * 5.0).clamp(0.0, 100.0);
        // Memory as /proc/meminfo gives it (KiB); filesystems in 4 KiB
        // blocks, as statvfs gives them.
        self.memory = (self.memory as i64 + ((r.unit() - 0.5) * 64e6) as i64 / 1024 * 1024)
            .clamp(2 * GIB as i64, 15 * GIB as i64) as u64;
        for (i, u) in self.used.iter_mut().enumerate() {
            *u += (r.unit() * [2e5, 5e6, 1e6][i % 3]) as u64 / 4096 * 4096;
        }
        for n in &mut self.inodes {
            *n += r.next() % 5;
        }
        let mut rates = Vec::with_capacity(self.rx.len());
        for i in 0..self.rx.len() {
            // Bytes per second in; a third of that out.
            let rate = (1.0 + day) * [5e6, 2e5][i % 2] * (0.5 + r.unit());
            self.rx[i] += (rate * 60.0) as u64;
            self.tx[i] += (rate * 20.0) as u64;
            rates.push((rate * 8.0, rate * 8.0 / 3.0));
        }
        Metrics {
            observed_at_ms: at + (r.next() % 300) as i64,
            cpu_utilisation_pct: cpu as f32,
            load_1: cpu / 25.0 + r.unit() * 0.3,
            load_5: cpu / 25.0,
            load_15: cpu / 26.0,
            memory_used_bytes: self.memory,
            memory_total_bytes: 16 * GIB,
            swap_used_bytes: 128 << 20,
            swap_total_bytes: 4 * GIB,
            filesystems: (0..self.used.len())
                .map(|i| FilesystemUse {
                    mount_point: if i == 0 {
                        "/".into()
                    } else {
                        format!("/srv/{i}")
                    },
                    used_bytes: self.used[i],
                    total_bytes: (100 + 100 * i as u64) * GIB,
                    inodes_used: Some(self.inodes[i]),
                    inodes_total: Some(13_000_000),
                })
                .collect(),
            interfaces: (0..self.rx.len())
                .map(|i| InterfaceCounters {
                    name: format!("eth{i}"),
                    rx_bytes: self.rx[i],
                    tx_bytes: self.tx[i],
                    // Agents measure rates in floating point; these carry
                    // that noise.
                    rx_bps: Some(rates[i].0),
                    tx_bps: Some(rates[i].1),
                    // Mostly none; now and then a burst.
                    errors_per_s: Some(if (rates[i].0 as u64).is_multiple_of(97) {
                        0.25
                    } else {
                        0.0
                    }),
                })
                .collect(),
            cadence: None,
        }
    }
}

/// A CMDB with `n` enrolled agents, each with a CI.
fn fleet(dir: &std::path::Path, n: usize) -> (Cmdb<SledStore>, Vec<AgentId>) {
    let cmdb = Cmdb::new(SledStore::open(dir).unwrap(), Policy::builtin());
    let (token, _) = cmdb
        .create_enrollment_token(i64::MAX / 2, n as u32, 0)
        .unwrap();
    let agents = (0..n)
        .map(|i| {
            let mut public = [0u8; 32];
            public[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            let agent = AgentId::from_public_key(&public);
            let enrollment = Report::Enrollment {
                public_key: public,
                body: Enrollment {
                    token: token.clone(),
                    hostname: format!("bench-{i}"),
                    agent_version: "bench".into(),
                },
            };
            cmdb.apply(agent, 0, "enroll", &enrollment, T0).unwrap();
            let inventory = Inventory {
                observed_at_ms: T0,
                host: Host {
                    hostname: format!("bench-{i}"),
                    arch: "x86_64".into(),
                    machine_id: Some(format!("{i:032x}")),
                    ..Host::default()
                },
                ..Inventory::default()
            };
            let report = Report::Inventory(Box::new(inventory));
            cmdb.apply(agent, 1, "inventory", &report, T0).unwrap();
            agent
        })
        .collect();
    (cmdb, agents)
}

/// Key and value bytes of the metric store's tables.
fn store_bytes(store: &SledStore) -> (u64, u64) {
    let mut samples = 0;
    for (k, v) in store.scan_prefix(Table::Samples, b"").unwrap() {
        samples += (k.len() + v.len()) as u64;
    }
    let mut series = 0;
    for (k, v) in store.scan_prefix(Table::Series, b"").unwrap() {
        series += (k.len() + v.len()) as u64;
    }
    (samples, series)
}

fn roll_up_all(metrics: &MetricStore<'_, SledStore>, now: i64) {
    let mut from = Vec::new();
    while let (Some(next), _) = metrics.roll_up(&from, 1000, now).unwrap() {
        from = next;
    }
}

/// Reports go in on one thread (as the API's workers apply them) while
/// the capacity task's fold and roll-ups run on another, as in the
/// collector; the simulated clock is the reports'.
fn ingest(cis: usize, hours: i64, mounts: usize, nics: usize) {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let (cmdb, agents) = fleet(dir.path(), cis);
    let settings = MetricSettings::default();
    let mut hosts: Vec<Host1> = (0..cis)
        .map(|i| Host1::new(i as u64 + 1, mounts, nics))
        .collect();
    let clock = AtomicI64::new(T0);
    let finished = AtomicBool::new(false);
    let started = Instant::now();
    let (reports, (samples, fold_busy, roll_busy)) = std::thread::scope(|scope| {
        let folder = scope.spawn(|| {
            let metrics = MetricStore::new(cmdb.store(), &settings);
            let (mut samples, mut fold, mut roll) = (0usize, Duration::ZERO, Duration::ZERO);
            let mut next_roll_up = T0 + HOUR;
            loop {
                let done_producing = finished.load(Ordering::SeqCst);
                let now = clock.load(Ordering::SeqCst);
                let t = Instant::now();
                let done = metrics.fold(2000, now).unwrap();
                fold += t.elapsed();
                samples += done.samples;
                if now >= next_roll_up {
                    let t = Instant::now();
                    roll_up_all(&metrics, now);
                    roll += t.elapsed();
                    next_roll_up += HOUR;
                }
                if done.entries == 0 {
                    if done_producing {
                        return (samples, fold, roll);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let mut seq = 2u64;
        let mut reports = 0usize;
        for minute in 0..hours * 60 {
            let at = T0 + minute * MINUTE;
            for (i, agent) in agents.iter().enumerate() {
                let report = Report::Metrics(hosts[i].report(at));
                cmdb.apply(*agent, seq, &format!("m{seq}"), &report, at + MINUTE)
                    .unwrap();
                seq += 1;
                reports += 1;
            }
            clock.store(at + MINUTE, Ordering::SeqCst);
        }
        finished.store(true, Ordering::SeqCst);
        (reports, folder.join().unwrap())
    });
    let wall = started.elapsed();
    let series = 7 + 3 * mounts + 3 * nics;
    println!(
        "| {cis} hosts × {series} series, {hours} h at 1/min | {reports} | {samples} | {:.2} s | {:.2} s | {:.2} s | **{:.0}** |",
        wall.as_secs_f64(),
        fold_busy.as_secs_f64(),
        roll_busy.as_secs_f64(),
        samples as f64 / wall.as_secs_f64()
    );
}

fn disk(days: i64) {
    let dir = tempfile::tempdir().unwrap();
    let (cmdb, agents) = fleet(dir.path(), 1);
    let settings = MetricSettings::default();
    let metrics = MetricStore::new(cmdb.store(), &settings);
    let mut host = Host1::new(7, 3, 2);
    let mut samples = 0usize;
    let mut seq = 2u64;
    let started = Instant::now();
    for hour in 0..days * 24 {
        for minute in 0..60 {
            let at = T0 + hour * HOUR + minute * MINUTE;
            let report = Report::Metrics(host.report(at));
            cmdb.apply(agents[0], seq, &format!("m{seq}"), &report, at + MINUTE)
                .unwrap();
            seq += 1;
        }
        let now = T0 + (hour + 1) * HOUR;
        samples += metrics.fold(100, now).unwrap().samples;
        roll_up_all(&metrics, now);
        // As the capacity task does after each roll-up.
        cmdb.expire_report_records(now - 7 * 24 * HOUR).unwrap();
    }
    let elapsed = started.elapsed();
    let (sample_bytes, series_bytes) = store_bytes(cmdb.store());
    let ci = cmdb.agent(agents[0]).unwrap().unwrap().ci_id.unwrap();
    let series = metrics.series_of(ci).unwrap().len();
    let reports_bytes: u64 = cmdb
        .store()
        .scan_prefix(Table::Reports, b"")
        .unwrap()
        .iter()
        .map(|(k, v)| (k.len() + v.len()) as u64)
        .sum();
    // The raw tier alone: its bytes over the raw samples it holds.
    let mut raw_bytes = 0u64;
    let mut raw_samples = 0usize;
    for (k, v) in cmdb.store().scan_prefix(Table::Samples, b"").unwrap() {
        if k[8] == 0 {
            raw_bytes += v.len() as u64;
            let start = i64::from_be_bytes(k[9..17].try_into().unwrap());
            let block =
                fathom_collector::capacity::block::decode_block(&v, start, 2, None).unwrap();
            raw_samples += block.values().map(|c| c.rows()).sum::<usize>();
        }
    }
    cmdb.flush().unwrap();
    let on_disk: u64 = walk_size(dir.path());
    let total = sample_bytes + series_bytes;
    println!("### Metric store disk use\n");
    println!(
        "One host, one report a minute for {days} simulated days ({series} series): {samples} samples ingested in {:.1} s. Retention: raw 48 h, 5-minute 30 days, hourly 395 days, daily 5 years.\n",
        elapsed.as_secs_f64()
    );
    println!("| measure | bytes | bytes per sample |");
    println!("|---|---:|---:|");
    println!(
        "| metric store (keys + values of `samples` and `series`) after {days} days | {total} | {:.3} per sample ingested |",
        total as f64 / samples as f64
    );
    println!(
        "| raw tier alone (last 48 h; the newest hour still open) | {raw_bytes} | {:.2} per raw sample kept ({raw_samples}) |",
        raw_bytes as f64 / raw_samples.max(1) as f64
    );
    println!(
        "| for scale: the `reports` table (a record per report received in the last 7 days, for resends) | {reports_bytes} | {:.3} per sample ingested |",
        reports_bytes as f64 / samples as f64
    );
    println!(
        "| sled directory after flush (whole CMDB, with sled's own overhead) | {on_disk} | {:.3} per sample ingested |\n",
        on_disk as f64 / samples as f64
    );
}

fn walk_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            walk_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}
