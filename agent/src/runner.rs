//! The agent's long-lived work. Tasks:
//!
//! - the **producer** (in [`run`]): on each inventory and metrics tick, takes
//!   the sample, numbers it, writes it to the spool, and pokes the deliverer
//!   through a `Notify`;
//! - the **deliverer** ([`deliver`]): sends spooled reports oldest first,
//!   removing each only once acknowledged; backs off exponentially with full
//!   jitter while the collector is unreachable or answers 5xx/429, and moves
//!   a report the collector refused (4xx) to `spool/rejected/`.
//!
//! - the **change debouncer**: turns the `watch` thread's events into one
//!   request per burst, sent to the producer on a channel; the producer
//!   then takes an inventory at once and spools the sections that changed
//!   as a delta ([`crate::delta`]). When the collector acknowledges a delta
//!   with `needs_full` (it missed the delta's base), the deliverer tells
//!   the producer, which sends a full inventory.
//!
//! - the **device poller** (`poll_devices`, where `[snmp]` lists targets or
//!   sweeps): a round over every device each poll interval; each finished
//!   poll goes to the producer on a channel and is spooled like any report.
//!
//! Enrollment happens once, before either task starts.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use fathom_shared::codec;
use fathom_shared::envelope::{seal, BodyKind};
use fathom_shared::wire::{AckOutcome, Cadence, DeviceReport, Enrollment, Inventory, Metrics};
use tokio::sync::Notify;

use crate::config::{AgentConfig, EnrollmentToken};
use crate::delta::{Next, Tracker};
use crate::identity::Identity;
use crate::probe::{self, system::Sampler, HostRoot};
use crate::snmp::config::SnmpConfig;
use crate::snmp::poller::Poller;
use crate::spool::Spool;
use crate::transport::{SendOutcome, Transport};

/// What `run` should do before returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keep reporting until shut down.
    Daemon,
    /// Send one inventory and one metrics sample, wait for delivery, return.
    Once,
}

pub fn open_spool(config: &AgentConfig) -> anyhow::Result<Spool> {
    Ok(Spool::open(
        &config.state_dir.join("spool"),
        config.spool_max_bytes,
        config.spool_max_reports,
    )?)
}

pub async fn run(
    config: AgentConfig,
    token_override: Option<String>,
    mode: Mode,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut identity = Identity::load_or_create(&config.state_dir)?;
    let _lock = identity.lock()?;
    let transport = Transport::new(&config)?;
    let spool = open_spool(&config)?;
    if let Some(highest) = spool.highest_seq() {
        identity.advance_past(highest)?;
    }
    tracing::info!(agent_id = %identity.agent_id(), collector = %config.collector_url, spooled = spool.len(), "Agent starting");

    tokio::pin!(shutdown);
    if !identity.is_enrolled() {
        let token = match token_override {
            Some(t) => t,
            None => read_token(&config)?,
        };
        tokio::select! {
            result = enroll(&identity, &transport, &config, token) => result?,
            () = &mut shutdown => return Ok(()),
        }
    }

    let spool = Arc::new(Mutex::new(spool));
    let poke = Arc::new(Notify::new());
    let root = HostRoot::new(&config.host_root);
    let mut sampler = Sampler::new();
    let mut inventory_tick = tokio::time::interval(config.inventory_interval);
    let mut metrics_tick = tokio::time::interval(config.metrics_interval);
    inventory_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first metrics sample needs a moment after the sampler's first
    // reading, or CPU utilisation would be 0.
    metrics_tick.reset_after(Duration::from_secs(1).min(config.metrics_interval));

    if mode == Mode::Once {
        inventory_tick.tick().await;
        let inventory = take_inventory(&root, &config).await?;
        enqueue(
            &mut identity,
            &spool,
            BodyKind::Inventory,
            &codec::encode(&inventory)?,
        )?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        enqueue(
            &mut identity,
            &spool,
            BodyKind::Metrics,
            &codec::encode(&sample(&mut sampler, &config))?,
        )?;
        if let Some(snmp) = config.snmp.clone() {
            let mut poller = Poller::new(snmp);
            poller.sweep_if_due().await;
            let mut failure = None;
            let round = poller
                .round(|report| {
                    if let Err(e) = spool_device(&mut identity, &spool, &report) {
                        failure.get_or_insert(e);
                    }
                    std::future::ready(())
                })
                .await;
            if let Some(e) = failure {
                return Err(e);
            }
            tracing::info!(
                polled = round.polled,
                failed = round.failed,
                "Devices polled"
            );
        }
        let key = identity.key().clone();
        let deliverer = deliver(
            spool.clone(),
            transport,
            key,
            poke,
            Arc::new(Notify::new()),
            config.max_backoff,
            true,
        );
        tokio::select! {
            result = deliverer => result?,
            () = &mut shutdown => {}
        }
        // Past any number the deliverer gave out renumbering the spool.
        let floor = spool.lock().unwrap().floor();
        identity.advance_past(floor)?;
        return Ok(());
    }

    let key = identity.key().clone();
    let needs_full = Arc::new(Notify::new());
    let deliverer = {
        let (spool, poke, needs_full) = (spool.clone(), poke.clone(), needs_full.clone());
        let max_backoff = config.max_backoff;
        tokio::spawn(supervise("deliverer", max_backoff, move || {
            deliver(
                spool.clone(),
                transport.clone(),
                key.clone(),
                poke.clone(),
                needs_full.clone(),
                max_backoff,
                false,
            )
        }))
    };
    let mut tracker = Tracker::default();
    // Device polls arrive on a channel from their own task; the sender is
    // kept alive when there is nothing to poll, so the branch just waits.
    let (device_tx, mut device_rx) = tokio::sync::mpsc::channel::<DeviceReport>(4);
    let _no_devices = match config.snmp.clone() {
        Some(snmp) if !snmp.targets.is_empty() || !snmp.sweeps.is_empty() => {
            tokio::spawn(poll_devices(snmp, device_tx));
            None
        }
        _ => Some(device_tx),
    };
    // A change request is never lost to a cancelled `select!` branch: the
    // debouncer runs on its own and hands over finished bursts.
    let (change_tx, mut change_rx) = tokio::sync::mpsc::channel::<Vec<std::path::PathBuf>>(4);
    if config.push_on_change {
        if let Some(mut events) =
            crate::watch::spawn(crate::watch::targets(&root, &config.watch_files))
        {
            let quiet = config.change_debounce;
            let tx = change_tx.clone();
            tokio::spawn(async move {
                while let Some(paths) = crate::watch::debounced(&mut events, quiet).await {
                    if tx.send(paths).await.is_err() {
                        break;
                    }
                }
            });
        }
    }
    loop {
        tokio::select! {
            Some(changed) = change_rx.recv() => {
                let inventory = take_inventory(&root, &config).await?;
                let changed: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
                match tracker.next(inventory) {
                    (Next::Full(inventory), pending) => {
                        tracing::info!(changed = ?changed, "Change on the host; full inventory pushed");
                        let seq = enqueue(&mut identity, &spool, BodyKind::Inventory, &codec::encode(&inventory)?)?;
                        tracker.spooled(seq, pending);
                    }
                    (Next::Delta(delta), pending) => {
                        let (upserted, removed) = delta.packages_changed.as_ref().map_or((0, 0), |c| (c.upsert.len(), c.remove.len()));
                        tracing::info!(changed = ?changed, sections = ?delta.sections, packages_upserted = upserted, packages_removed = removed, base_seq = delta.base_seq, "Change on the host; delta pushed");
                        let seq = enqueue(&mut identity, &spool, BodyKind::InventoryDelta, &codec::encode(&delta)?)?;
                        tracker.spooled(seq, pending);
                    }
                    (Next::Unchanged, _) => {
                        tracing::debug!(changed = ?changed, "Change on the host left every section as it was; nothing to send");
                        continue;
                    }
                }
            }
            _ = inventory_tick.tick() => {
                let inventory = take_inventory(&root, &config).await?;
                tracing::info!(packages = inventory.packages.as_ref().map(Vec::len), probe_errors = inventory.probe_errors.len(), "Inventory taken");
                spool_full(&mut identity, &spool, &mut tracker, &inventory)?;
            }
            () = needs_full.notified() => {
                let inventory = take_inventory(&root, &config).await?;
                tracing::info!(packages = inventory.packages.as_ref().map(Vec::len), "Full inventory taken at the collector's request");
                spool_full(&mut identity, &spool, &mut tracker, &inventory)?;
            }
            Some(report) = device_rx.recv() => {
                spool_device(&mut identity, &spool, &report)?;
            }
            _ = metrics_tick.tick() => {
                let sample = sample(&mut sampler, &config);
                enqueue(&mut identity, &spool, BodyKind::Metrics, &codec::encode(&sample)?)?;
            }
            () = &mut shutdown => {
                tracing::info!(spooled = spool.lock().unwrap().len(), "Agent shutting down; undelivered reports stay in the spool");
                deliverer.abort();
                drop(change_tx);
                return Ok(());
            }
        }
        poke.notify_one();
    }
}

/// Polls the configured devices every poll interval, handing each report
/// to the producer.
async fn poll_devices(snmp: SnmpConfig, reports: tokio::sync::mpsc::Sender<DeviceReport>) {
    let mut tick = tokio::time::interval(snmp.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut poller = Poller::new(snmp);
    loop {
        tick.tick().await;
        poller.sweep_if_due().await;
        let started = std::time::Instant::now();
        let round = poller
            .round(|report| {
                let reports = reports.clone();
                async move {
                    let _ = reports.send(report).await;
                }
            })
            .await;
        let elapsed = started.elapsed();
        tracing::info!(
            polled = round.polled,
            failed = round.failed,
            elapsed_ms = elapsed.as_millis() as u64,
            "Devices polled"
        );
        if elapsed > poller.config().poll_interval {
            tracing::warn!(elapsed_ms = elapsed.as_millis() as u64, interval_s = poller.config().poll_interval.as_secs(), "Polling the devices took longer than the poll interval; raise snmp.max_concurrent or the interval");
        }
        if reports.is_closed() {
            return;
        }
    }
}

fn spool_device(
    identity: &mut Identity,
    spool: &Mutex<Spool>,
    report: &DeviceReport,
) -> anyhow::Result<()> {
    let seq = enqueue(
        identity,
        spool,
        BodyKind::DeviceReport,
        &codec::encode(report)?,
    )?;
    tracing::debug!(seq, target = %report.target, "Device report spooled");
    Ok(())
}

/// Spools a full inventory, and makes it the base of the next delta.
fn spool_full(
    identity: &mut Identity,
    spool: &Mutex<Spool>,
    tracker: &mut Tracker,
    inventory: &Inventory,
) -> anyhow::Result<()> {
    let seq = enqueue(
        identity,
        spool,
        BodyKind::Inventory,
        &codec::encode(inventory)?,
    )?;
    tracker.spooled_full(seq, inventory);
    Ok(())
}

async fn take_inventory(root: &HostRoot, config: &AgentConfig) -> anyhow::Result<Inventory> {
    let root = root.clone();
    let watch = config.watch_files.clone();
    let mut inventory =
        tokio::task::spawn_blocking(move || probe::collect_inventory_watching(&root, &watch))
            .await?;
    inventory.cadence = Some(cadence(config));
    Ok(inventory)
}

/// A metrics sample, with the cadence the collector expects heartbeats at.
fn sample(sampler: &mut Sampler, config: &AgentConfig) -> Metrics {
    Metrics {
        cadence: Some(cadence(config)),
        ..sampler.sample()
    }
}

/// What this agent is configured to send, stated in its reports so the
/// collector expects heartbeats at this pace and not at the pace of the
/// last few reports (a burst of change pushes is not the cadence).
fn cadence(config: &AgentConfig) -> Cadence {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Cadence {
        metrics_interval_ms: ms(config.metrics_interval),
        inventory_interval_ms: ms(config.inventory_interval),
    }
}

fn read_token(config: &AgentConfig) -> anyhow::Result<String> {
    match &config.enrollment_token {
        Some(EnrollmentToken::Inline(t)) => Ok(t.clone()),
        Some(EnrollmentToken::File(path)) => {
            let token = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read enrollment_token_file {}", path.display()))?;
            Ok(token.trim().to_owned())
        }
        None => bail!(
            "this agent is not enrolled yet: set enrollment_token or enrollment_token_file in the config, \
             FATHOM_ENROLLMENT_TOKEN in the environment, or pass --token (create one with `fathom token create`)"
        ),
    }
}

fn enqueue(
    identity: &mut Identity,
    spool: &Mutex<Spool>,
    kind: BodyKind,
    body: &[u8],
) -> anyhow::Result<u64> {
    let mut spool = spool.lock().unwrap();
    // Above anything the deliverer renumbered after a lost counter.
    identity.advance_past(spool.floor())?;
    let seq = identity.next_seq()?;
    let dropped = spool.push(seq, kind, body)?;
    tracing::debug!(
        seq,
        kind = kind.as_str(),
        bytes = body.len(),
        dropped = dropped.len(),
        "Report spooled"
    );
    Ok(seq)
}

async fn enroll(
    identity: &Identity,
    transport: &Transport,
    config: &AgentConfig,
    token: String,
) -> anyhow::Result<()> {
    let hostname = probe::os::probe(&HostRoot::new(&config.host_root))
        .0
        .hostname;
    let body = codec::encode(&Enrollment {
        token,
        hostname,
        agent_version: crate::VERSION.to_owned(),
    })?;
    let mut backoff = Backoff::new(config.max_backoff);
    loop {
        let envelope = seal(
            identity.key(),
            BodyKind::Enrollment,
            0,
            crate::now_ms(),
            &body,
        );
        match transport.send(envelope).await {
            SendOutcome::Acknowledged(_) => {
                identity.mark_enrolled()?;
                tracing::info!(agent_id = %identity.agent_id(), "Enrolled with the collector");
                return Ok(());
            }
            SendOutcome::Retryable(reason) => {
                let wait = backoff.next();
                tracing::warn!(error = %reason, retry_in_ms = wait.as_millis() as u64, "Enrollment failed; will retry");
                tokio::time::sleep(wait).await;
            }
            SendOutcome::Rejected {
                status,
                code,
                message,
                ..
            } => {
                bail!("the collector refused enrollment ({status} {code}): {message}")
            }
        }
    }
}

/// Sends spooled reports until the spool is empty; then waits to be poked
/// (or, with `until_empty`, returns). With `until_empty`, it also gives up
/// after [`ONCE_ATTEMPTS`] failed attempts in a row, leaving the reports in
/// the spool for the next run.
pub async fn deliver(
    spool: Arc<Mutex<Spool>>,
    transport: Transport,
    key: SigningKey,
    poke: Arc<Notify>,
    needs_full: Arc<Notify>,
    max_backoff: Duration,
    until_empty: bool,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(max_backoff);
    let mut failures = 0;
    loop {
        let next = spool.lock().unwrap().peek()?;
        let Some((entry, body)) = next else {
            if until_empty {
                return Ok(());
            }
            poke.notified().await;
            continue;
        };
        let envelope = seal(&key, entry.kind, entry.seq, crate::now_ms(), &body);
        match transport.send(envelope).await {
            SendOutcome::Acknowledged(ack) => {
                tracing::debug!(seq = entry.seq, kind = entry.kind.as_str(), outcome = ?ack.outcome, "Report acknowledged");
                spool.lock().unwrap().remove(entry.seq)?;
                if ack.outcome == AckOutcome::NeedsFull {
                    tracing::info!(
                        seq = entry.seq,
                        "The collector missed an earlier report; a full inventory follows"
                    );
                    needs_full.notify_one();
                }
                backoff.reset();
                failures = 0;
            }
            SendOutcome::Retryable(reason) => {
                failures += 1;
                if until_empty && failures >= ONCE_ATTEMPTS {
                    let spooled = spool.lock().unwrap().len();
                    bail!("the collector could not be reached ({reason}); {spooled} reports stay in the spool for the next run");
                }
                let wait = backoff.next();
                tracing::warn!(seq = entry.seq, error = %reason, retry_in_ms = wait.as_millis() as u64, spooled = spool.lock().unwrap().len(), "Delivery failed; will retry");
                tokio::time::sleep(wait).await;
            }
            // The collector holds reports up to `last` already: this
            // agent's counter went back (a state directory restored from a
            // backup). Resume above it rather than lose the spool. The
            // answer comes over the pinned TLS connection, and the counter
            // only ever moves forward.
            SendOutcome::Rejected {
                code,
                last_seq: Some(last),
                ..
            } if code == "replay" && last >= entry.seq => {
                let highest = spool.lock().unwrap().renumber_above(last)?;
                tracing::warn!(
                    seq = entry.seq,
                    collector_last_seq = last,
                    renumbered_up_to = highest,
                    "The collector already holds this agent's reports up to a later sequence number (its counter went back, e.g. restored from a backup); the spooled reports are renumbered above it"
                );
            }
            SendOutcome::Rejected {
                status,
                code,
                message,
                ..
            } => {
                let moved = spool.lock().unwrap().reject(entry.seq)?;
                tracing::error!(seq = entry.seq, kind = entry.kind.as_str(), status, code = %code, error = %message, kept_at = %moved.display(), "Collector refused a report; it will not be resent");
            }
        }
    }
}

/// Runs a long-lived task for as long as the agent runs: when it fails,
/// the error is logged at ERROR and the task starts again after a back-off,
/// never a silent stop. It ends only when the task does by itself.
pub(crate) async fn supervise<F, Fut>(name: &'static str, max_backoff: Duration, mut start: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut backoff = Backoff::new(max_backoff);
    loop {
        match start().await {
            Ok(()) => return,
            Err(e) => {
                let wait = backoff.next();
                let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
                tracing::error!(task = name, error = %chain.join(": "), restart_in_ms = wait.as_millis() as u64, "Task failed; starting it again");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Delivery attempts `run --once` makes before giving up.
pub const ONCE_ATTEMPTS: u32 = 5;

/// Exponential backoff with full jitter: each wait is uniform in
/// `[0, min(max, base * 2^n)]`, so a fleet that lost its collector does not
/// come back in lockstep.
#[derive(Debug)]
struct Backoff {
    attempt: u32,
    max: Duration,
}

impl Backoff {
    const BASE: Duration = Duration::from_millis(250);

    fn new(max: Duration) -> Backoff {
        Backoff { attempt: 0, max }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next(&mut self) -> Duration {
        let ceiling = Self::BASE
            .saturating_mul(1 << self.attempt.min(20))
            .min(self.max);
        self.attempt += 1;
        let mut r = [0u8; 8];
        let fraction = match getrandom::fill(&mut r) {
            Ok(()) => (u64::from_le_bytes(r) >> 11) as f64 / (1u64 << 53) as f64,
            Err(_) => 0.5,
        };
        // Never zero, so a tight failure loop still yields.
        ceiling.mul_f64(fraction).max(Duration::from_millis(50))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(4));
        let waits: Vec<Duration> = (0..30).map(|_| b.next()).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(4)));
        assert!(waits[0] <= Backoff::BASE);
        // With full jitter some late waits should exceed the first ceiling.
        assert!(waits[10..].iter().any(|w| *w > Backoff::BASE));
        b.reset();
        assert!(b.next() <= Backoff::BASE);
    }

    #[test]
    fn a_failing_task_is_started_again_until_it_ends_by_itself() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let starts = std::cell::Cell::new(0);
        runtime.block_on(supervise("test", Duration::from_millis(5), || {
            starts.set(starts.get() + 1);
            let n = starts.get();
            async move {
                if n < 3 {
                    anyhow::bail!("spool head unreadable (attempt {n})")
                }
                Ok(())
            }
        }));
        assert_eq!(starts.get(), 3);
    }
}
