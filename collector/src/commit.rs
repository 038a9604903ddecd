//! Group commit: writers wait until their write is durable, and one flusher
//! task makes many writers' writes durable with one `flush`.
//!
//! Task: the **flusher** ([`GroupCommit::spawn`]), woken by a `Notify`;
//! publishes progress on a `watch` channel. A writer commits its
//! transaction, then calls [`GroupCommit::durable`], which takes a ticket
//! (a counter incremented *after* the commit) and waits until a flush that
//! started after that ticket has finished. A failed flush fails every
//! waiter it covered; they answer 503, and their agents resend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tracing::Instrument;

use crate::cmdb::Cmdb;
use crate::store::Store;

/// How long the flusher waits for more writers before a flush.
const COMMIT_DELAY: std::time::Duration = std::time::Duration::from_millis(1);
/// Pending writes that make the flusher skip the wait.
const BATCH_TARGET: u64 = 256;

#[derive(Debug, Clone, Default)]
struct Progress {
    /// Every ticket up to this one is durable.
    durable: u64,
    /// The last flush failed; tickets above `durable` up to this one failed.
    failed_upto: u64,
    error: Option<Arc<String>>,
}

#[derive(Debug)]
pub struct GroupCommit {
    tickets: AtomicU64,
    wake: Notify,
    progress: watch::Receiver<Progress>,
}

#[derive(Debug, thiserror::Error)]
#[error("flushing the store failed: {0}")]
pub struct FlushFailed(Arc<String>);

impl GroupCommit {
    /// Starts the flusher for `cmdb`. It stops when the last `Arc` to the
    /// returned handle is dropped.
    pub fn spawn<S: Store>(cmdb: Arc<Cmdb<S>>) -> Arc<GroupCommit> {
        let (tx, rx) = watch::channel(Progress::default());
        let handle = Arc::new(GroupCommit {
            tickets: AtomicU64::new(0),
            wake: Notify::new(),
            progress: rx,
        });
        let weak = Arc::downgrade(&handle);
        tokio::spawn(
            async move {
                loop {
                    let Some(this) = weak.upgrade() else { return };
                    let target = this.tickets.load(Ordering::SeqCst);
                    let durable = tx.borrow().durable;
                    if target <= durable {
                        // Wake at least every second to notice a dropped handle.
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), this.wake.notified()).await;
                        continue;
                    }
                    // Let more writers join this flush: under load, a flush
                    // that waits a moment covers many writes at the cost of
                    // one; an idle collector pays the delay once per report.
                    if target - durable < BATCH_TARGET {
                        tokio::time::sleep(COMMIT_DELAY).await;
                    }
                    let target = this.tickets.load(Ordering::SeqCst);
                    drop(this);
                    let cmdb = cmdb.clone();
                    let result = tokio::task::spawn_blocking(move || cmdb.flush()).await;
                    tx.send_modify(|p| match result {
                        Ok(Ok(())) => {
                            p.durable = target;
                            p.error = None;
                        }
                        Ok(Err(e)) => {
                            tracing::error!(error = %crate::error_chain(&e), "Flushing the store failed; writers will be told to retry");
                            p.failed_upto = target;
                            p.error = Some(Arc::new(crate::error_chain(&e)));
                        }
                        Err(e) => {
                            p.failed_upto = target;
                            p.error = Some(Arc::new(e.to_string()));
                        }
                    });
                }
            }
            .instrument(tracing::info_span!("flusher")),
        );
        handle
    }

    /// Waits until everything this caller committed before calling is durable.
    pub async fn durable(&self) -> Result<(), FlushFailed> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        self.wake.notify_one();
        let mut progress = self.progress.clone();
        loop {
            {
                let p = progress.borrow_and_update();
                if p.durable >= ticket {
                    return Ok(());
                }
                if p.failed_upto >= ticket {
                    if let Some(e) = &p.error {
                        return Err(FlushFailed(e.clone()));
                    }
                }
            }
            if progress.changed().await.is_err() {
                return Err(FlushFailed(Arc::new("the flusher stopped".into())));
            }
        }
    }
}
