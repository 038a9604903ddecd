//! Polling the configured devices. Each round walks every target, and every
//! device the latest sweep found answering, at most `max_concurrent` at a
//! time, and hands each finished poll over as a [`DeviceReport`], with the
//! interface throughput since the previous poll of that target.
//!
//! Memory is bounded by the devices in flight, not by the fleet: a poll is
//! handed over (and spooled) as it finishes, and the only state kept per
//! target between rounds is its interface counters.
//!
//! A device that fails (unreachable, refusing the credentials, broken) is
//! logged with its target and the reason, and the round goes on.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fathom_shared::device::{Device, InterfaceCounters};
use fathom_shared::wire::{DeviceReport, InterfaceRate};
use tokio::task::JoinSet;

use super::client::{Session, Settings};
use super::config::{Credentials, SnmpConfig, Sweep, Target};
use super::{device, Oid};

/// What a poll of one target left behind for the next.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub at_ms: i64,
    pub uptime_s: Option<u64>,
    /// ifIndex → counters and speed.
    pub interfaces: HashMap<u32, (InterfaceCounters, Option<u64>)>,
}

impl Counters {
    pub fn of(device: &Device, at_ms: i64) -> Counters {
        Counters {
            at_ms,
            uptime_s: device.system.sys_uptime_s,
            interfaces: device
                .interfaces
                .iter()
                .filter_map(|i| Some((i.index, (i.counters.clone()?, i.speed_bps))))
                .collect(),
        }
    }
}

/// How far a counter moved: a 32-bit counter that went back wrapped once;
/// a 64-bit one that went back was reset (none wraps in a poll interval).
fn moved(old: Option<u64>, new: Option<u64>, wide: bool) -> Option<u64> {
    let (old, new) = (old?, new?);
    if new >= old {
        Some(new - old)
    } else if !wide && old <= u64::from(u32::MAX) && new <= u64::from(u32::MAX) {
        Some(new + (1 << 32) - old)
    } else {
        None
    }
}

/// Throughput per interface between two polls of the same device. Nothing
/// when the device restarted in between (its uptime went back: every
/// counter restarted from zero).
pub fn rates(previous: &Counters, current: &Counters) -> Vec<InterfaceRate> {
    let interval_ms = current.at_ms - previous.at_ms;
    if interval_ms <= 0 {
        return Vec::new();
    }
    if let (Some(before), Some(now)) = (previous.uptime_s, current.uptime_s) {
        if now < before {
            return Vec::new();
        }
    }
    let seconds = interval_ms as f64 / 1000.0;
    let mut out: Vec<InterfaceRate> = current
        .interfaces
        .iter()
        .filter_map(|(index, (now, speed))| {
            let (before, _) = previous.interfaces.get(index)?;
            // The same counters on both sides, or none.
            let wide = now.high_capacity && before.high_capacity;
            if now.high_capacity != before.high_capacity {
                return None;
            }
            let in_octets = moved(before.in_octets, now.in_octets, wide)?;
            let out_octets = moved(before.out_octets, now.out_octets, wide)?;
            let per_s = |n: u64| n as f64 / seconds;
            let sum = |a: Option<u64>, b: Option<u64>| a.unwrap_or(0) + b.unwrap_or(0);
            let errors = sum(
                moved(before.in_errors, now.in_errors, false),
                moved(before.out_errors, now.out_errors, false),
            );
            let discards = sum(
                moved(before.in_discards, now.in_discards, false),
                moved(before.out_discards, now.out_discards, false),
            );
            let (in_bps, out_bps) = (per_s(in_octets) * 8.0, per_s(out_octets) * 8.0);
            Some(InterfaceRate {
                index: *index,
                interval_ms: interval_ms as u64,
                in_bps,
                out_bps,
                utilization_pct: speed
                    .filter(|s| *s > 0)
                    .map(|s| in_bps.max(out_bps) / s as f64 * 100.0),
                errors_per_s: per_s(errors),
                discards_per_s: per_s(discards),
            })
        })
        .collect();
    out.sort_by_key(|r| r.index);
    out
}

/// Why one device's poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("cannot resolve {target}: {message}")]
    Resolve { target: String, message: String },
    #[error("credentials for {target}: {message}")]
    Credentials { target: String, message: String },
    #[error(transparent)]
    Snmp(#[from] super::client::SnmpError),
}

/// How one round went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub polled: usize,
    pub failed: usize,
}

#[derive(Debug)]
pub struct Poller {
    /// Shared with the polls in flight (cloning it per poll would cost
    /// every target's entry, per poll).
    config: std::sync::Arc<SnmpConfig>,
    /// By target and credentials: two communities of one address (a
    /// simulator, community-indexed contexts) are two devices' counters.
    previous: HashMap<(String, Credentials), Counters>,
    /// Devices the latest sweep found answering, by label.
    swept: BTreeMap<String, Target>,
    last_sweep: Option<Instant>,
}

impl Poller {
    pub fn new(config: SnmpConfig) -> Poller {
        Poller {
            config: std::sync::Arc::new(config),
            previous: HashMap::new(),
            swept: BTreeMap::new(),
            last_sweep: None,
        }
    }

    pub fn config(&self) -> &SnmpConfig {
        &self.config
    }

    /// The configured targets, then the swept ones not configured.
    pub fn targets(&self) -> Vec<Target> {
        let mut all = self.config.targets.clone();
        let configured: std::collections::HashSet<String> = all.iter().map(Target::label).collect();
        all.extend(
            self.swept
                .iter()
                .filter(|(label, _)| !configured.contains(*label))
                .map(|(_, t)| t.clone()),
        );
        all
    }

    /// Sweeps the configured networks when the sweep interval has passed.
    pub async fn sweep_if_due(&mut self) {
        if self.config.sweeps.is_empty()
            || self
                .last_sweep
                .is_some_and(|t| t.elapsed() < self.config.sweep_interval)
        {
            return;
        }
        self.last_sweep = Some(Instant::now());
        let mut found = BTreeMap::new();
        for sweep in &self.config.sweeps {
            for target in sweep_one(sweep, &self.config).await {
                found.insert(target.label(), target);
            }
        }
        // Forget the counters of devices that stopped answering.
        let configured: std::collections::HashSet<String> =
            self.config.targets.iter().map(Target::label).collect();
        self.previous
            .retain(|(label, _), _| configured.contains(label) || found.contains_key(label));
        self.swept = found;
    }

    /// Polls every target once; `deliver` gets each report as it is ready
    /// (and may wait, which holds further polls back).
    pub async fn round<F, Fut>(&mut self, mut deliver: F) -> Round
    where
        F: FnMut(DeviceReport) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let targets = self.targets();
        let mut round = Round::default();
        let mut running: JoinSet<(Target, Result<Device, PollError>, i64)> = JoinSet::new();
        let mut queue = targets.into_iter();
        loop {
            while running.len() < self.config.max_concurrent {
                let Some(target) = queue.next() else { break };
                let config = std::sync::Arc::clone(&self.config);
                running.spawn(async move {
                    let result = poll(&target, &config).await;
                    (target, result, fathom_support::now_ms())
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (target, result, at_ms) = match joined {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(error = %e, "An SNMP poll task failed");
                    round.failed += 1;
                    continue;
                }
            };
            let label = target.label();
            match result {
                Ok(found) => {
                    round.polled += 1;
                    let counters = Counters::of(&found, at_ms);
                    let key = (label.clone(), target.credentials);
                    let interface_rates = self
                        .previous
                        .get(&key)
                        .map(|before| rates(before, &counters))
                        .unwrap_or_default();
                    self.previous.insert(key, counters);
                    tracing::debug!(target = %label, sys_name = ?found.system.sys_name, interfaces = found.interfaces.len(), "Device polled");
                    deliver(DeviceReport {
                        observed_at_ms: at_ms,
                        agent_version: crate::VERSION.to_owned(),
                        target: label,
                        device: found,
                        interface_rates,
                        poll_interval_ms: u64::try_from(self.config.poll_interval.as_millis()).ok(),
                    })
                    .await;
                }
                Err(e) => {
                    round.failed += 1;
                    tracing::warn!(target = %label, error = %e, "Device poll failed");
                }
            }
        }
        round
    }
}

async fn resolve(target: &Target) -> Result<SocketAddr, PollError> {
    let failed = |message: String| PollError::Resolve {
        target: target.label(),
        message,
    };
    tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| failed(e.to_string()))?
        .next()
        .ok_or_else(|| failed("no address".into()))
}

fn settings(
    credentials: &Credentials,
    config: &SnmpConfig,
    label: &str,
) -> Result<Settings, PollError> {
    let security = credentials
        .load()
        .map_err(|message| PollError::Credentials {
            target: label.to_owned(),
            message,
        })?;
    Ok(config.settings(security))
}

/// One poll of one device.
pub async fn poll(target: &Target, config: &SnmpConfig) -> Result<Device, PollError> {
    let settings = settings(&target.credentials, config, &target.label())?;
    let address = resolve(target).await?;
    let mut session = Session::open(address, settings).await?;
    Ok(device::probe(&mut session).await?)
}

/// The addresses of a sweep's network that answer, probed at its rate with
/// one GET of sysObjectID each (no retries).
async fn sweep_one(sweep: &Sweep, config: &SnmpConfig) -> Vec<Target> {
    let started = Instant::now();
    let settings = match settings(&sweep.credentials, config, &sweep.network.to_string()) {
        Ok(s) => Settings {
            retries: 0,
            budget: config.timeout * 2,
            ..s
        },
        Err(e) => {
            tracing::warn!(network = %sweep.network, error = %e, "Sweep skipped");
            return Vec::new();
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1) / sweep.rate_per_sec);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut running: JoinSet<Option<std::net::IpAddr>> = JoinSet::new();
    let mut found = Vec::new();
    let sys_object_id = Oid::parse("1.3.6.1.2.1.1.2.0").expect("a valid OID");
    let mut collect = |answered: Option<Option<std::net::IpAddr>>| {
        if let Some(Some(ip)) = answered {
            found.push(ip);
        }
    };
    let mut probed = 0usize;
    for ip in sweep.network.hosts() {
        while running.len() >= config.max_concurrent {
            collect(running.join_next().await.and_then(Result::ok));
        }
        tick.tick().await;
        probed += 1;
        let settings = settings.clone();
        let oid = sys_object_id.clone();
        let port = sweep.port;
        running.spawn(async move {
            let mut session = Session::open((ip, port).into(), settings).await.ok()?;
            let answer = session.get(std::slice::from_ref(&oid)).await.ok()?;
            answer.iter().any(|(_, v)| v.exists()).then_some(ip)
        });
    }
    while let Some(done) = running.join_next().await {
        collect(done.ok());
    }
    found.sort();
    tracing::info!(network = %sweep.network, probed, answered = found.len(), elapsed_ms = started.elapsed().as_millis() as u64, "Sweep done");
    found
        .into_iter()
        .map(|ip| Target {
            host: ip.to_string(),
            port: sweep.port,
            credentials: sweep.credentials.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(at_ms: i64, uptime_s: u64, rows: &[(u32, u64, u64, bool, u64)]) -> Counters {
        Counters {
            at_ms,
            uptime_s: Some(uptime_s),
            interfaces: rows
                .iter()
                .map(|&(index, in_octets, out_octets, hc, errors)| {
                    (
                        index,
                        (
                            InterfaceCounters {
                                in_octets: Some(in_octets),
                                out_octets: Some(out_octets),
                                high_capacity: hc,
                                in_errors: Some(errors),
                                ..InterfaceCounters::default()
                            },
                            Some(1_000_000_000),
                        ),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn rates_from_two_polls() {
        let before = counters(0, 100, &[(1, 1_000, 0, true, 5), (2, 0, 0, true, 0)]);
        // 10 s later: 125 MB in on port 1 (100 Mbit/s), 10 errors.
        let after = counters(
            10_000,
            110,
            &[(1, 125_001_000, 0, true, 15), (3, 9, 9, true, 0)],
        );
        let r = rates(&before, &after);
        assert_eq!(r.len(), 1, "port 3 is new: no rate yet");
        assert_eq!(r[0].index, 1);
        assert!(
            (r[0].in_bps - 100_000_000.0).abs() < 1e-6,
            "{}",
            r[0].in_bps
        );
        assert_eq!(r[0].out_bps, 0.0);
        assert!((r[0].utilization_pct.unwrap() - 10.0).abs() < 1e-9);
        assert!((r[0].errors_per_s - 1.0).abs() < 1e-9);
        assert_eq!(r[0].interval_ms, 10_000);
    }

    #[test]
    fn a_32_bit_counter_wraps_and_a_restart_gives_no_rates() {
        let max = u64::from(u32::MAX);
        let before = counters(0, 100, &[(1, max - 99, 0, false, 0)]);
        let after = counters(1_000, 101, &[(1, 100, 0, false, 0)]);
        let r = rates(&before, &after);
        // 100 to the top, 1 to wrap, 100 after: 200 octets in 1 s.
        assert_eq!(r[0].in_bps, 1_600.0);

        // A 64-bit counter going back was reset, not wrapped.
        let before = counters(0, 100, &[(1, 500, 0, true, 0)]);
        let after = counters(1_000, 101, &[(1, 100, 0, true, 0)]);
        assert!(rates(&before, &after).is_empty());

        // The device restarted (uptime went back): nothing.
        let before = counters(0, 100, &[(1, 5, 0, true, 0)]);
        let after = counters(1_000, 3, &[(1, 10, 0, true, 0)]);
        assert!(rates(&before, &after).is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_round_polls_every_target_and_reports_failures_apart() {
        use super::super::Value;
        let mut objects = BTreeMap::new();
        let oid = |s: &str| Oid::parse(s).unwrap();
        objects.insert(
            oid("1.3.6.1.2.1.1.5.0"),
            Value::OctetString(b"sw-1".to_vec()),
        );
        objects.insert(oid("1.3.6.1.2.1.1.3.0"), Value::TimeTicks(1000));
        objects.insert(
            oid("1.3.6.1.2.1.2.2.1.2.1"),
            Value::OctetString(b"ge-0/0/0".to_vec()),
        );
        let good = crate::snmp::fake::serve(objects).await;
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("community");
        std::fs::write(&file, "public\n").unwrap();
        let credentials = Credentials::Community { file };
        let target = |address: SocketAddr| Target {
            host: address.ip().to_string(),
            port: address.port(),
            credentials: credentials.clone(),
        };
        let config = SnmpConfig {
            poll_interval: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(60),
            max_concurrent: 1,
            timeout: Duration::from_millis(100),
            retries: 0,
            budget: Duration::from_secs(2),
            targets: vec![
                target(good),
                target(silent.local_addr().unwrap()),
                target(good),
            ],
            sweeps: Vec::new(),
        };
        let mut poller = Poller::new(config);
        let mut reports = Vec::new();
        let round = poller
            .round(|r| {
                reports.push(r);
                std::future::ready(())
            })
            .await;
        assert_eq!(
            round,
            Round {
                polled: 2,
                failed: 1
            }
        );
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].device.system.sys_name.as_deref(), Some("sw-1"));
        assert_eq!(reports[0].target, format!("127.0.0.1:{}", good.port()));
        assert_eq!(reports[0].device.interfaces[0].name, None);
        assert_eq!(
            reports[0].device.interfaces[0].descr.as_deref(),
            Some("ge-0/0/0")
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_sweep_finds_what_answers() {
        use super::super::Value;
        let mut objects = BTreeMap::new();
        objects.insert(
            Oid::parse("1.3.6.1.2.1.1.2.0").unwrap(),
            Value::Oid(Oid::parse("1.3.6.1.4.1.9.1.1").unwrap()),
        );
        let device = crate::snmp::fake::serve(objects).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("community");
        std::fs::write(&file, "public").unwrap();
        // 127.0.0.0/30: .1 and .2; only 127.0.0.1 has the device's port.
        let config = SnmpConfig {
            poll_interval: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(60),
            max_concurrent: 4,
            timeout: Duration::from_millis(200),
            retries: 0,
            budget: Duration::from_secs(2),
            targets: Vec::new(),
            sweeps: vec![Sweep {
                network: "127.0.0.0/30".parse().unwrap(),
                port: device.port(),
                credentials: Credentials::Community { file },
                rate_per_sec: 100,
            }],
        };
        let mut poller = Poller::new(config);
        poller.sweep_if_due().await;
        let labels: Vec<String> = poller.targets().iter().map(Target::label).collect();
        assert_eq!(labels, [format!("127.0.0.1:{}", device.port())]);
    }
}
