//! The availability task: runs every CI's watch every few seconds
//! (`Cmdb::check_availability`), which opens outages (and incidents for
//! unplanned ones) and closes them when CIs report again.
//!
//! Idempotent: a failed run is logged and simply run again next time. The
//! watches count from the task's start, so the collector's own downtime is
//! never taken for the CIs'.

use std::sync::Arc;

use tracing::Instrument;

use crate::availability::outage::AvailabilitySettings;
use crate::availability::watch::Change;
use crate::cmdb::Cmdb;
use crate::store::Store;

/// Wakes the availability task (a check now); stops it when dropped.
pub use crate::background::Handle;

pub fn spawn<S: Store>(cmdb: Arc<Cmdb<S>>, settings: AvailabilitySettings) -> Handle {
    let started = fathom_support::now_ms();
    let wake = Arc::new(tokio::sync::Notify::new());
    let woken = wake.clone();
    let task = tokio::spawn(
        async move {
            let settings = Arc::new(settings);
            loop {
                let _ = tokio::time::timeout(settings.check_every, woken.notified()).await;
                let (cmdb, settings) = (cmdb.clone(), settings.clone());
                let now = fathom_support::now_ms();
                let ran = tokio::task::spawn_blocking(move || {
                    cmdb.check_availability(now, started, &settings)
                })
                .await;
                match ran {
                    Ok(Ok(changes)) => {
                        for (ci, change) in changes {
                            match change {
                                Change::Down { start_ms } => {
                                    tracing::warn!(%ci, start_ms, "CI down: reporting intervals missed")
                                }
                                Change::Rebooted { start_ms, end_ms } => tracing::warn!(
                                    %ci,
                                    last_seen_ms = start_ms,
                                    boot_ms = end_ms,
                                    "CI rebooted between heartbeats"
                                ),
                                Change::Up { start_ms, end_ms } => tracing::info!(
                                    %ci,
                                    down_secs = (end_ms - start_ms) / 1000,
                                    "CI up again"
                                ),
                            }
                        }
                    }
                    Ok(Err(e)) => tracing::error!(error = %crate::error_chain(&e), "Checking availability failed; the next run tries again"),
                    Err(e) => tracing::error!(error = %e, "The availability check panicked"),
                }
            }
        }
        .instrument(tracing::info_span!("availability")),
    );
    Handle::new(wake, task.abort_handle())
}
