//! The availability task: runs every CI's watch every few seconds
//! (`Cmdb::check_availability`), which opens outages (and incidents for
//! unplanned ones) and closes them when CIs report again.
//!
//! Idempotent: a failed run is logged and simply run again next time. The
//! watches count from the task's start, so the collector's own downtime is
//! never taken for the CIs'.

use std::sync::Arc;

use tracing::Instrument;

use crate::availability::outage::Change;
use crate::cmdb::outage::AvailabilitySettings;
use crate::cmdb::Cmdb;
use crate::store::Store;

/// Stops the task when dropped.
#[derive(Debug)]
pub struct Handle {
    task: tokio::task::AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn spawn<S: Store>(cmdb: Arc<Cmdb<S>>, settings: AvailabilitySettings) -> Handle {
    let started = fathom_agent::now_ms();
    let task = tokio::spawn(
        async move {
            let settings = Arc::new(settings);
            let mut tick = tokio::time::interval(settings.check_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let (cmdb, settings) = (cmdb.clone(), settings.clone());
                let now = fathom_agent::now_ms();
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
    Handle {
        task: task.abort_handle(),
    }
}
