//! The capacity task: folds the ingest log into the metric store every few
//! seconds; every few minutes, rolls the store up (and applies retention),
//! checks the capacity thresholds (`cmdb::capacity_alert`), and expires the
//! records of reports received longer ago than their retention.
//!
//! One task does both, and nothing else writes the metric store, which is
//! what `store`'s read-outside, write-inside transactions rely on. Each run
//! is idempotent: a failed run is logged and simply run again next time.
//! [`Handle::poke`] runs a fold at once (tests, and after a burst).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::Instrument;

use super::store::{MetricSettings, MetricStore};
use crate::capacity::alert::AlertChange;
use crate::cmdb::Cmdb;
use crate::store::Store;

/// Log entries taken per fold transaction.
const FOLD_BATCH: usize = 2_000;
/// Series rolled up per transaction.
const ROLL_UP_BATCH: usize = 1_000;

/// Wakes the capacity task (a fold now); stops it when dropped.
pub use crate::background::Handle;

pub fn spawn<S: Store>(
    cmdb: Arc<Cmdb<S>>,
    settings: MetricSettings,
    report_records_ms: i64,
) -> Handle {
    let wake = Arc::new(Notify::new());
    let woken = wake.clone();
    let task = tokio::spawn(
        async move {
            let settings = Arc::new(settings);
            let mut last_roll_up: Option<i64> = None;
            loop {
                let _ = tokio::time::timeout(settings.fold_every, woken.notified()).await;
                let now = fathom_support::now_ms();
                let roll_up = last_roll_up
                    .is_none_or(|t| now - t >= settings.roll_up_every.as_millis() as i64);
                let (cmdb, settings) = (cmdb.clone(), settings.clone());
                let ran = tokio::task::spawn_blocking(move || {
                    run(&cmdb, &settings, now, roll_up);
                    if roll_up {
                        expire_report_records(&cmdb, now - report_records_ms);
                    }
                })
                .await;
                match ran {
                    Ok(()) if roll_up => last_roll_up = Some(now),
                    Ok(()) => {}
                    Err(e) => tracing::error!(error = %e, "The capacity task's run panicked"),
                }
            }
        }
        .instrument(tracing::info_span!("capacity")),
    );
    Handle::new(wake, task.abort_handle())
}

/// One run: fold until the log is drained (or a fold fails), then roll up
/// every series if `roll_up`.
fn run<S: Store>(cmdb: &Cmdb<S>, settings: &MetricSettings, now: i64, roll_up: bool) {
    let metrics = MetricStore::new(cmdb.store(), settings);
    let mut total = 0;
    loop {
        match metrics.fold(FOLD_BATCH, now) {
            Ok(done) => {
                total += done.samples;
                if done.dropped > 0 {
                    tracing::warn!(
                        dropped = done.dropped,
                        "Samples dropped: older than raw retention, or beyond a CI's series limit"
                    );
                }
                if done.entries == 0 {
                    break;
                }
            }
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e), "Folding metrics failed; they stay in the log for the next run");
                break;
            }
        }
    }
    if total > 0 {
        tracing::debug!(samples = total, "Folded metrics");
    }
    if !roll_up {
        return;
    }
    let mut from = Vec::new();
    let started = std::time::Instant::now();
    let mut summary = super::store::RolledUp::default();
    loop {
        match metrics.roll_up(&from, ROLL_UP_BATCH, now) {
            Ok((next, done)) => {
                summary.blocks_sealed += done.blocks_sealed;
                summary.blocks_dropped += done.blocks_dropped;
                summary.series_dropped += done.series_dropped;
                match next {
                    Some(k) => from = k,
                    None => break,
                }
            }
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e), "Rolling up metrics failed; the next run tries again");
                break;
            }
        }
    }
    tracing::info!(
        sealed = summary.blocks_sealed,
        expired = summary.blocks_dropped,
        series_expired = summary.series_dropped,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Rolled up metrics"
    );
    match cmdb.check_capacity(now, settings) {
        Ok(changes) => {
            for change in changes {
                match change {
                    AlertChange::Raised(ci, series, incident) => {
                        tracing::warn!(%ci, %series, %incident, "Capacity threshold: incident raised")
                    }
                    AlertChange::Worse(ci, series, incident) => {
                        tracing::warn!(%ci, %series, %incident, "Capacity threshold: worse")
                    }
                    AlertChange::Resolved(ci, series, incident) => {
                        tracing::info!(%ci, %series, %incident, "Capacity threshold: back under warning")
                    }
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %crate::error_chain(&e), "Checking capacity thresholds failed; the next run tries again")
        }
    }
}

fn expire_report_records<S: Store>(cmdb: &Cmdb<S>, before_ms: i64) {
    match cmdb.expire_report_records(before_ms) {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "Expired report records"),
        Err(e) => tracing::error!(
            error = %crate::error_chain(&e),
            "Expiring report records failed; the next run tries again"
        ),
    }
}

/// Default intervals, for [`MetricSettings`].
pub const DEFAULT_FOLD_EVERY: Duration = Duration::from_secs(10);
pub const DEFAULT_ROLL_UP_EVERY: Duration = Duration::from_secs(300);
