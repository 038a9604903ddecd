//! Fault injection: the collector and agent under a full disk, kill -9,
//! hostile clients and oversized reports. Each scenario is bounded to a few
//! seconds; `FATHOM_FAULT_ROUNDS` makes the looping ones run longer
//! (docs/reliability.md gives the command and the figures of a long run).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use fathom_shared::codec;
use fathom_shared::envelope::{seal, BodyKind};
use fathom_shared::tls::{client_config, Trust};
use fathom_shared::wire::{FilesystemUse, Metrics};
use fathom_tests::{now_ms, wait_for, Collector};
use serde_json::Value;

use crate::enrolled;

/// How many rounds the looping scenarios run: a few in CI, more by hand.
fn rounds(default: usize) -> usize {
    std::env::var("FATHOM_FAULT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

/// A small filesystem made by the test, unmounted when dropped.
struct Mount {
    point: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mount {
    fn tmpfs(size: &str) -> Mount {
        let dir = tempfile::tempdir().unwrap();
        let point = dir.path().join("mnt");
        std::fs::create_dir(&point).unwrap();
        mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "fathom-test"],
            &point,
        );
        Mount { point, _dir: dir }
    }

    fn ext4(megabytes: u32) -> Mount {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        let file = std::fs::File::create(&image).unwrap();
        file.set_len(u64::from(megabytes) << 20).unwrap();
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&image)
            .output()
            .expect("mkfs.ext4 (e2fsprogs) runs");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let point = dir.path().join("mnt");
        std::fs::create_dir(&point).unwrap();
        mount(&["-o", "loop", image.to_str().unwrap()], &point);
        Mount { point, _dir: dir }
    }

    /// Writes a file until the filesystem refuses more; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.point.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0x5a; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        // Small writes fill the last partial block.
        while file.write(&[0]).is_ok_and(|n| n == 1) {}
        path
    }
}

fn mount(args: &[&str], point: &Path) {
    let out = Command::new("mount")
        .args(args)
        .arg(point)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mounting a test filesystem needs root (CI runs as root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.point).status();
    }
}

/// Sends hand-made envelopes over one client: faster than a client per
/// report when a scenario sends hundreds.
struct Sender {
    client: reqwest::Client,
    url: String,
    runtime: tokio::runtime::Runtime,
}

impl Sender {
    fn new(collector: &Collector) -> Sender {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(
                client_config(&Trust::Pinned(collector.fingerprint)).unwrap(),
            )
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Sender {
            client,
            url: format!("{}v1/reports", collector.url()),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// (status, the answer's outcome or error code).
    fn send(&self, envelope: &[u8]) -> (u16, String) {
        let request = self
            .client
            .post(&self.url)
            .header("content-type", "application/vnd.fathom.envelope")
            .body(envelope.to_vec());
        self.runtime.block_on(async move {
            match request.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let answer: Value =
                        serde_json::from_slice(&r.bytes().await.unwrap_or_default())
                            .unwrap_or(Value::Null);
                    let code = answer["outcome"]
                        .as_str()
                        .or(answer["code"].as_str())
                        .unwrap_or_default()
                        .to_owned();
                    (status, code)
                }
                Err(e) => (0, e.to_string()),
            }
        })
    }
}

/// A metrics report of about 8 KB, so a few hundred fill a segment.
fn sizeable_metrics(seq: u64) -> Vec<u8> {
    codec::encode(&Metrics {
        observed_at_ms: now_ms(),
        memory_total_bytes: seq,
        filesystems: (0..100)
            .map(|i| FilesystemUse {
                mount_point: format!("/srv/volume-{i:03}"),
                used_bytes: seq * 1000 + i,
                total_bytes: 1 << 40,
                inodes_used: None,
                inodes_total: None,
            })
            .collect(),
        ..Metrics::default()
    })
    .unwrap()
}

/// The envelopes a scenario sent, by sequence number, and what became of them.
#[derive(Default)]
struct Ledger {
    sent: BTreeMap<u64, Vec<u8>>,
    acknowledged: Vec<u64>,
}

impl Ledger {
    fn send(&mut self, sender: &Sender, key: &SigningKey, seq: u64) -> (u16, String) {
        let envelope = seal(
            key,
            BodyKind::Metrics,
            seq,
            now_ms(),
            &sizeable_metrics(seq),
        );
        let answer = sender.send(&envelope);
        if answer.0 == 200 {
            self.acknowledged.push(seq);
        }
        self.sent.insert(seq, envelope);
        answer
    }

    /// Every acknowledged report is stored: sent again, each is answered
    /// `duplicate`, which the collector says only of a report it holds.
    fn assert_all_stored(&self, sender: &Sender) {
        for seq in &self.acknowledged {
            let answer = sender.send(&self.sent[seq]);
            assert_eq!(
                answer,
                (200, "duplicate".to_owned()),
                "report {seq} was acknowledged but is not stored"
            );
        }
    }
}

fn error_lines(log: &str) -> usize {
    log.lines().filter(|l| l.contains("ERROR")).count()
}

/// Fills the store's filesystem, checks that writes are refused (503) with
/// the reason in `/v1/health` and a handful of log lines rather than one
/// per report, frees the space, and checks the collector writes again by
/// itself within seconds with nothing acknowledged lost, and stops cleanly
/// while failing.
fn full_disk_and_back(mount: &Mount) {
    let data = mount.point.join("data");
    let mut collector = Collector::start_at(&data, "");
    let (_agent, _root, key) = enrolled(&collector);
    let sender = Sender::new(&collector);
    let mut ledger = Ledger::default();
    let mut seq = 100;
    for _ in 0..20 {
        seq += 1;
        assert_eq!(ledger.send(&sender, &key, seq).0, 200);
    }

    let filler = mount.fill();
    // Until the store next needs a block, reports still fit; then 503s.
    let refused_at = (0..3000)
        .find_map(|_| {
            seq += 1;
            let (status, code) = ledger.send(&sender, &key, seq);
            assert!(
                status == 200 || status == 503,
                "{status} {code}: a full disk is a 503, nothing else"
            );
            (status == 503).then_some(seq)
        })
        .unwrap_or_else(|| {
            panic!(
                "the store never ran out of space; log:\n{}",
                collector.log()
            )
        });
    let (status, health) = collector.health();
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "unavailable", "{health}");
    assert!(
        health["reason"]
            .as_str()
            .is_some_and(|r| r.contains("No space left on device")),
        "health says why: {health}"
    );
    // Hammering a failing store logs the state change, not every report.
    let errors_before = error_lines(&collector.log());
    for _ in 0..300 {
        seq += 1;
        let (status, code) = ledger.send(&sender, &key, seq);
        assert_eq!((status, code.as_str()), (503, "storage"));
    }
    let errors_after = error_lines(&collector.log());
    assert!(
        errors_after - errors_before <= 2,
        "{} ERROR lines for 300 refused reports:\n{}",
        errors_after - errors_before,
        collector.log()
    );
    assert!(errors_after <= 12, "{}", collector.log());

    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    wait_for("the store to recover", Duration::from_secs(10), || {
        (collector.health().0 == 200).then_some(())
    });
    eprintln!("recovered {:?} after the space came back", freed.elapsed());
    let (_, health) = collector.health();
    assert!(health["failed_flushes"].as_u64().unwrap() >= 1, "{health}");
    assert!(health["recoveries"].as_u64().unwrap() >= 1, "{health}");
    assert!(collector
        .log()
        .contains("The store was reopened and flushed; writes are accepted again"));
    // Reports refused while failing are sent again, as agents do.
    let refused: Vec<u64> = ledger
        .sent
        .keys()
        .copied()
        .filter(|s| *s >= refused_at && !ledger.acknowledged.contains(s))
        .take(20)
        .collect();
    for s in refused {
        let envelope = ledger.sent[&s].clone();
        let (status, _) = sender.send(&envelope);
        assert_eq!(status, 200, "report {s} after recovery");
        ledger.acknowledged.push(s);
    }
    for _ in 0..20 {
        seq += 1;
        assert_eq!(ledger.send(&sender, &key, seq).0, 200);
    }
    ledger.assert_all_stored(&sender);

    // Nothing acknowledged is lost across a restart either.
    assert!(collector.stop(Duration::from_secs(15)).success());
    collector.restart();
    let sender = Sender::new(&collector);
    ledger.assert_all_stored(&sender);

    // Stopping while the disk is full is prompt, and says the last flush
    // failed rather than hanging.
    let filler = mount.fill();
    let failing = (0..3000).any(|_| {
        seq += 1;
        ledger.send(&sender, &key, seq).0 == 503
    });
    assert!(failing);
    let stopped = Instant::now();
    collector.stop(Duration::from_secs(20));
    eprintln!(
        "stopped {:?} after SIGTERM with the disk full",
        stopped.elapsed()
    );
    std::fs::remove_file(&filler).unwrap();
    collector.restart();
    ledger.assert_all_stored(&Sender::new(&collector));
}

#[test]
fn a_full_disk_refuses_writes_says_why_and_recovers_when_space_returns_on_ext4() {
    full_disk_and_back(&Mount::ext4(48));
}

#[test]
fn a_full_disk_refuses_writes_says_why_and_recovers_when_space_returns_on_tmpfs() {
    full_disk_and_back(&Mount::tmpfs("48m"));
}

/// Raw TLS connections to the report route from chosen loopback addresses,
/// written by hand so a test can send part of a body and stall.
mod raw {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::Arc;

    use fathom_shared::tls::{client_config, Fingerprint, Trust};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpSocket;
    use tokio_rustls::client::TlsStream;
    use tokio_rustls::TlsConnector;

    pub fn connector(fingerprint: Fingerprint) -> TlsConnector {
        TlsConnector::from(Arc::new(
            client_config(&Trust::Pinned(fingerprint)).unwrap(),
        ))
    }

    /// Connects from `from`, sends a report's request head declaring
    /// `content_length` bytes, and `prefix` of the body.
    pub async fn report_request(
        connector: &TlsConnector,
        port: u16,
        from: Ipv4Addr,
        content_length: usize,
        prefix: &[u8],
    ) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from.into(), 0))?;
        let tcp = socket
            .connect(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port))
            .await?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await?;
        let head = format!(
            "POST /v1/reports HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/vnd.fathom.envelope\r\ncontent-length: {content_length}\r\n\r\n"
        );
        tls.write_all(head.as_bytes()).await?;
        tls.write_all(prefix).await?;
        tls.flush().await?;
        Ok(tls)
    }
}

/// Runs `tasks` to completion on a runtime of one worker thread: the
/// attacker's side of a scenario, beside the collector's two cores.
fn run_all<F>(tasks: impl FnOnce() -> Vec<F>)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let handles: Vec<_> = tasks().into_iter().map(tokio::spawn).collect();
        for h in handles {
            let _ = h.await;
        }
    });
}

/// The header of an envelope `body_len` bytes long from `key`: what a
/// client that knows an enrolled agent's public key (it is no secret) can
/// send without its private key.
fn claimed_header(key: &SigningKey, seq: u64, body_len: usize) -> Vec<u8> {
    let envelope = seal(key, BodyKind::Metrics, seq, now_ms(), &[0x90; 16]);
    let mut header = envelope[..fathom_shared::envelope::HEADER_LEN].to_vec();
    header[72..76].copy_from_slice(&u32::try_from(body_len).unwrap().to_be_bytes());
    header[7] = 0;
    header
}

#[test]
fn slow_bodies_from_one_address_do_not_lock_out_a_valid_agent() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    let collector = Collector::start_with("");
    let (_agent, _root, key) = enrolled(&collector);
    let attack_for = Duration::from_secs(4 * rounds(4) as u64);
    let stop = Arc::new(AtomicBool::new(false));
    let cut_off = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    // 520 connections from 127.0.0.2, each sending a request head and the
    // header of a 1 KiB report, then one body byte every two seconds; a
    // connection the collector drops is opened again.
    let attacker = {
        let (stop, cut_off, open) = (stop.clone(), cut_off.clone(), open.clone());
        let connector = raw::connector(collector.fingerprint);
        let port = collector.port;
        let header = claimed_header(&key, 1_000_000, 1024);
        std::thread::spawn(move || {
            run_all(|| {
                (0..520)
                    .map(|_| {
                        let (stop, cut_off, open) = (stop.clone(), cut_off.clone(), open.clone());
                        let (connector, header) = (connector.clone(), header.clone());
                        async move {
                            use tokio::io::AsyncWriteExt;
                            while !stop.load(Ordering::Relaxed) {
                                let from = std::net::Ipv4Addr::new(127, 0, 0, 2);
                                let envelope_len = header.len() + 1024 + 64;
                                let Ok(mut tls) = raw::report_request(
                                    &connector,
                                    port,
                                    from,
                                    envelope_len,
                                    &header,
                                )
                                .await
                                else {
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                    continue;
                                };
                                open.fetch_add(1, Ordering::Relaxed);
                                while !stop.load(Ordering::Relaxed) {
                                    tokio::time::sleep(Duration::from_secs(2)).await;
                                    if tls.write_all(&[0]).await.is_err()
                                        || tls.flush().await.is_err()
                                    {
                                        cut_off.fetch_add(1, Ordering::Relaxed);
                                        break;
                                    }
                                }
                            }
                        }
                    })
                    .collect()
            });
        })
    };
    wait_for(
        "the attack to be under way",
        Duration::from_secs(30),
        || (open.load(Ordering::Relaxed) >= 520).then_some(()),
    );

    // Meanwhile an agent on another address sends its reports.
    let sender = Sender::new(&collector);
    let mut ledger = Ledger::default();
    let started = Instant::now();
    let mut seq = 10;
    let mut refusals = Vec::new();
    while started.elapsed() < attack_for {
        seq += 1;
        let (status, code) = ledger.send(&sender, &key, seq);
        if status != 200 {
            refusals.push((status, code));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let sent = ledger.sent.len();
    let served = ledger.acknowledged.len();
    eprintln!(
        "valid agent: {served} of {sent} acknowledged during the attack; {} attack connections cut off",
        cut_off.load(Ordering::Relaxed)
    );
    assert!(
        served * 100 >= sent * 95,
        "only {served} of {sent} acknowledged: {refusals:?}"
    );
    // Trickling connections are cut off, not held for a minute.
    if attack_for >= Duration::from_secs(14) {
        assert!(cut_off.load(Ordering::Relaxed) > 0);
    }
    attacker.join().unwrap();
    ledger.assert_all_stored(&sender);
    assert!(collector.log().contains("address_limit"));
}

#[test]
fn bodies_that_pin_memory_are_refused_or_bounded_by_the_budget() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let collector = Collector::start_logging("", "info");
    let (_agent, _root, key) = enrolled(&collector);
    let baseline_kib = collector.memory_kib("VmRSS");
    let body_len = 8 * 1024 * 1024 - 1024;
    let envelope_len = fathom_shared::envelope::HEADER_LEN + body_len + 64;
    let connections = 512;
    let refused_early = Arc::new(AtomicUsize::new(0));
    let attack = |header: Vec<u8>| {
        let connector = raw::connector(collector.fingerprint);
        let port = collector.port;
        let refused_early = refused_early.clone();
        run_all(|| {
            (0..connections)
                .map(|i| {
                    let (connector, header) = (connector.clone(), header.clone());
                    let refused_early = refused_early.clone();
                    async move {
                        use tokio::io::AsyncWriteExt;
                        // 16 addresses, 32 connections each: within the
                        // per-address limit, so only the budget holds them.
                        let from = std::net::Ipv4Addr::new(127, 0, 1, 1 + (i % 16) as u8);
                        let Ok(mut tls) =
                            raw::report_request(&connector, port, from, envelope_len, &header)
                                .await
                        else {
                            return;
                        };
                        let chunk = vec![0x41; 64 * 1024];
                        let mut sent = header.len();
                        // All of it but the last byte, then stall.
                        while sent + chunk.len() < envelope_len {
                            if tls.write_all(&chunk).await.is_err() {
                                refused_early.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            sent += chunk.len();
                        }
                        let _ = tls.flush().await;
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                })
                .collect()
        });
    };

    // Unauthenticated: a header naming no enrolled agent is refused before
    // its body is read.
    let stranger = SigningKey::from_bytes(&[0x42; 32]);
    let started = Instant::now();
    attack(claimed_header(&stranger, 1, body_len));
    let unauthenticated_peak = collector.memory_kib("VmHWM");
    eprintln!(
        "unauthenticated: {connections} × 8 MiB refused in {:?}; peak RSS {} MiB (baseline {} MiB)",
        started.elapsed(),
        unauthenticated_peak / 1024,
        baseline_kib / 1024
    );
    assert_eq!(refused_early.load(Ordering::Relaxed), connections);
    assert!(unauthenticated_peak < baseline_kib + 128 * 1024);

    // With an enrolled agent's public key (no secret): the budget holds.
    refused_early.store(0, Ordering::Relaxed);
    let started = Instant::now();
    attack(claimed_header(&key, 1_000_000, body_len));
    let peak_kib = collector.memory_kib("VmHWM");
    eprintln!(
        "known key: {connections} × 8 MiB in {:?}, {} refused while sending; peak RSS {} MiB",
        started.elapsed(),
        refused_early.load(Ordering::Relaxed),
        peak_kib / 1024
    );
    assert!(
        peak_kib < 512 * 1024,
        "peak RSS {} MiB under the attack",
        peak_kib / 1024
    );
    // The memory goes back once the attack is over, and reports are taken.
    let mut last = 0;
    let returned = Instant::now();
    while returned.elapsed() < Duration::from_secs(60) {
        last = collector.memory_kib("VmRSS");
        if last < baseline_kib + 128 * 1024 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let settled = last;
    assert!(
        settled < baseline_kib + 128 * 1024,
        "RSS still {} MiB a minute after the attack (baseline {} MiB, peak {} MiB)",
        settled / 1024,
        baseline_kib / 1024,
        peak_kib / 1024
    );
    eprintln!("RSS after the attack: {} MiB", settled / 1024);
    let sender = Sender::new(&collector);
    let mut ledger = Ledger::default();
    for seq in 10..15 {
        assert_eq!(ledger.send(&sender, &key, seq).0, 200);
    }
}

#[test]
fn a_huge_inventory_is_one_mass_change_and_other_agents_are_still_served() {
    use fathom_shared::wire::{Host, Inventory, Package};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let collector = Collector::start_logging("", "info");
    let (_agent, _root, key) = enrolled(&collector);
    let bystander_root =
        fathom_tests::fixture_root("bystander", "77777777777777777777777777777777");
    let bystander = fathom_tests::Agent::new(&collector, bystander_root.path(), "");
    let token = collector.create_token("10m", 1);
    assert!(bystander.run_once(Some(&token)).status.success());
    let bystander_key = bystander.key();

    let n = (20_000 * rounds(1)).min(200_000);
    let inventory = |version: &str| {
        codec::encode(&Inventory {
            observed_at_ms: now_ms(),
            agent_version: "fault-test".into(),
            host: Host {
                hostname: "raw-host".into(),
                arch: "x86_64".into(),
                machine_id: Some("11111111111111111111111111111111".into()),
                ..Host::default()
            },
            packages: Some(
                (0..n)
                    .map(|i| Package {
                        name: format!("package-{i:06}"),
                        version: version.into(),
                        arch: None,
                        manager: "dpkg".into(),
                        source: None,
                        installed_at_ms: None,
                    })
                    .collect(),
            ),
            ..Inventory::default()
        })
        .unwrap()
    };
    let sender = Sender::new(&collector);
    let base = seal(
        &key,
        BodyKind::Inventory,
        1_000,
        now_ms(),
        &inventory("1.0"),
    );
    assert_eq!(sender.send(&base).0, 200);
    // Its packages replace the fixture's: one mass change, accepted by
    // approving its draft.
    let drafts = collector.cli_json(&["rfc", "list"]);
    let draft = drafts.as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let approved = Instant::now();
    let out = collector.cli(&["rfc", "approve", &draft, "--comment", "the new baseline"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "approving the first mass change took {:?}",
        approved.elapsed()
    );

    // The whole distribution upgraded, without an RFC, while another agent
    // keeps reporting.
    let upgraded = seal(
        &key,
        BodyKind::Inventory,
        1_001,
        now_ms(),
        &inventory("2.0"),
    );
    eprintln!(
        "the upgraded inventory is a {} KiB envelope",
        upgraded.len() / 1024
    );
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        let url = collector.url();
        let fingerprint = collector.fingerprint;
        std::thread::spawn(move || {
            let client = reqwest::Client::builder()
                .tls_backend_preconfigured(client_config(&Trust::Pinned(fingerprint)).unwrap())
                .build()
                .unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut latencies = Vec::new();
            let mut seq = 500;
            while !done.load(Ordering::Relaxed) {
                seq += 1;
                let envelope = seal(
                    &bystander_key,
                    BodyKind::Metrics,
                    seq,
                    now_ms(),
                    &sizeable_metrics(seq),
                );
                let started = Instant::now();
                let status = runtime.block_on(async {
                    client
                        .post(format!("{url}v1/reports"))
                        .header("content-type", "application/vnd.fathom.envelope")
                        .body(envelope)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0)
                });
                latencies.push((status, started.elapsed()));
                std::thread::sleep(Duration::from_millis(50));
            }
            latencies
        })
    };
    let started = Instant::now();
    let (status, code) = sender.send(&upgraded);
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Relaxed);
    let latencies = watcher.join().unwrap();
    assert_eq!((status, code.as_str()), (200, "stored"));
    let slowest = latencies.iter().map(|(_, t)| *t).max().unwrap_or_default();
    eprintln!(
        "{n} packages changed: ingested in {took:?}; the other agent's {} reports meanwhile took at most {slowest:?}",
        latencies.len()
    );
    assert!(latencies.iter().all(|(s, _)| *s == 200), "{latencies:?}");

    // One reviewable unit, not one record per package. (The hand-made
    // inventory also differs from the agent's own in a few host fields:
    // a drift each.)
    let drift = collector.cli_json(&["drift", "list"]);
    let packages: Vec<&Value> = drift
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["section"] == "packages" && d["status"] == "open")
        .collect();
    assert_eq!(
        packages.len(),
        1,
        "{} package drift records",
        packages.len()
    );
    assert_eq!(packages[0]["attribute"], "packages.*");
    assert_eq!(packages[0]["members"].as_array().unwrap().len(), n);
    assert!(drift.as_array().unwrap().len() < 20);
    let incidents = collector.cli_json(&["incident", "list"]);
    let title = format!("{n} unauthorized changes on raw-host");
    assert_eq!(
        incidents
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["title"] == title.as_str())
            .count(),
        1,
        "{incidents}"
    );
    // The warning for it is one bounded line.
    let log = collector.log();
    assert!(log.lines().all(|l| l.len() <= 8 * 1024 + 64));
}

#[test]
fn acknowledged_reports_survive_kill_9_of_the_collector_under_load() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let mut collector = Collector::start_logging("", "info");
    let (_agent, _root, key) = enrolled(&collector);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    // Two senders keep reports coming, each with its own sequence numbers
    // (odd and even), acknowledged or not as the collector lives and dies.
    let senders: Vec<_> = (0..2u64)
        .map(|lane| {
            let (ledger, stop, key) = (ledger.clone(), stop.clone(), key.clone());
            let sender = Sender::new(&collector);
            std::thread::spawn(move || {
                let mut seq = 10_000 + lane;
                while !stop.load(Ordering::Relaxed) {
                    seq += 2;
                    let envelope = seal(
                        &key,
                        BodyKind::Metrics,
                        seq,
                        now_ms(),
                        &sizeable_metrics(seq),
                    );
                    let (status, _) = sender.send(&envelope);
                    let mut ledger = ledger.lock().unwrap();
                    ledger.sent.insert(seq, envelope);
                    if status == 200 {
                        ledger.acknowledged.push(seq);
                    } else {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    let cycles = 3 * rounds(1);
    for cycle in 0..cycles {
        // Let some reports be acknowledged, then kill without warning.
        let before = ledger.lock().unwrap().acknowledged.len();
        wait_for("reports acknowledged", Duration::from_secs(30), || {
            (ledger.lock().unwrap().acknowledged.len() >= before + 20).then_some(())
        });
        std::thread::sleep(Duration::from_millis(37 * (cycle as u64 % 7)));
        collector.kill();
        collector.restart();
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let ledger = ledger.lock().unwrap();
    eprintln!(
        "{cycles} kill -9 cycles: {} reports sent, {} acknowledged",
        ledger.sent.len(),
        ledger.acknowledged.len()
    );
    ledger.assert_all_stored(&Sender::new(&collector));
}

#[test]
fn an_agent_killed_again_and_again_loses_nothing_spooled_and_duplicates_nothing() {
    let collector = Collector::start_logging("", "info");
    let root = fathom_tests::fixture_root("kill-host", "88888888888888888888888888888888");
    let agent = fathom_tests::Agent::new(
        &collector,
        root.path(),
        "metrics_interval_secs = 1\nmax_backoff_secs = 1\n",
    );
    let token = collector.create_token("1h", 1);
    assert!(agent.run_once(Some(&token)).status.success());
    let cycles = 5 * rounds(1);
    for _ in 0..cycles {
        let mut daemon = agent.daemon(None);
        let seq = agent.last_seq();
        wait_for("a report or two", Duration::from_secs(20), || {
            (agent.last_seq() >= seq + 2).then_some(())
        });
        daemon.kill().unwrap();
        daemon.wait().unwrap();
    }
    // A last clean run delivers whatever the kills left in the spool.
    let out = agent.run_once(None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(agent.spooled(), 0, "everything spooled was delivered");
    let listed = collector.agents();
    let record = &listed[0];
    let last = agent.last_seq();
    eprintln!(
        "{cycles} kill -9 cycles: last sequence {last}, {} reports stored",
        record["reports_received"]
    );
    // Every spooled report was delivered and stored once: nothing set aside
    // as unreadable, nothing refused as a replay. A sequence number with no
    // report is a kill that landed after the number was taken and before
    // the report reached the spool (the counter is made durable first, so
    // a number is never reused): at most one per kill, and nothing that
    // was ever on disk.
    let received = record["reports_received"].as_u64().unwrap();
    assert!(received <= last, "{record}");
    assert!(
        last - received <= cycles as u64,
        "{} sequence numbers without a report after {cycles} kills: {record}",
        last - received
    );
    assert_eq!(record["last_seq"].as_u64().unwrap(), last, "{record}");
    for aside in ["unreadable", "rejected"] {
        let dir = agent.state_dir().join("spool").join(aside);
        let count = std::fs::read_dir(&dir).map_or(0, |d| d.count());
        assert_eq!(count, 0, "reports set aside in {}", dir.display());
    }
    assert!(!collector.log().contains("Report refused as a replay"));
}
