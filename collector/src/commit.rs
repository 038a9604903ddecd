//! Group commit: writers wait until their write is durable, and one flusher
//! task makes many writers' writes durable with one `flush`.
//!
//! Task: the **flusher** ([`GroupCommit::spawn`]), woken by a `Notify`;
//! publishes progress on a `watch` channel. A writer calls
//! [`GroupCommit::begin`] before its transaction and
//! [`GroupCommit::durable`] after it, which takes a ticket (a counter
//! incremented *after* the commit) and waits until a flush that started
//! after that ticket has finished. A failed flush fails every waiter it
//! covered; they answer 503, and their agents resend.
//!
//! A failed flush also puts the store in the *failing* state: writers are
//! refused at once, `/v1/health` says why, and the flusher tries to recover
//! (reopen the store, flush) with a back-off, logging once when the state
//! changes, never per attempt. Recovery may lose what was written since the
//! last good flush; a writer whose transaction began before a recovery is
//! refused even if a later flush succeeds (its write may have been in the
//! store that was dropped), so nothing is acknowledged that is not stored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tracing::Instrument;

use crate::cmdb::Cmdb;
use crate::store::Store;

/// How long the flusher waits for more writers before a flush.
const COMMIT_DELAY: Duration = Duration::from_millis(1);
/// Pending writes that make the flusher skip the wait.
const BATCH_TARGET: u64 = 256;
/// The first wait before trying to recover, doubled after each failed
/// attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A flush that has not finished by then counts as failed: the store is
/// reported unavailable rather than writers waiting without end.
const FLUSH_STALL: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Default)]
struct Progress {
    /// Every ticket up to this one is durable.
    durable: u64,
    /// The last flush failed; tickets above `durable` up to this one failed.
    failed_upto: u64,
    error: Option<Arc<String>>,
    /// Set while the store cannot be written; cleared by a recovery.
    failing: Option<Failing>,
}

#[derive(Debug, Clone)]
struct Failing {
    since_ms: i64,
    reason: Arc<String>,
}

/// Whether the store takes writes, for `/v1/health`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    /// `ok`, or `unavailable` while writes are refused.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable_since_ms: Option<i64>,
    /// Flushes that failed since the collector started (recovery attempts
    /// included).
    pub failed_flushes: u64,
    /// Times the store was reopened and written again after failing.
    pub recoveries: u64,
}

impl Health {
    pub fn is_ok(&self) -> bool {
        self.reason.is_none()
    }
}

#[derive(Debug)]
pub struct GroupCommit {
    tickets: AtomicU64,
    /// Bumped before each attempt to reopen the store.
    epoch: AtomicU64,
    failed_flushes: AtomicU64,
    recoveries: AtomicU64,
    wake: Notify,
    progress: watch::Receiver<Progress>,
}

/// The store's epoch when a writer began; see [`GroupCommit::begin`].
#[derive(Debug, Clone, Copy)]
#[must_use = "a write is durable only once `durable` says so"]
pub struct Begun(u64);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FlushFailed(Arc<String>);

impl GroupCommit {
    /// Starts the flusher for `cmdb`. It stops when the last `Arc` to the
    /// returned handle is dropped.
    pub fn spawn<S: Store>(cmdb: Arc<Cmdb<S>>) -> Arc<GroupCommit> {
        let (tx, rx) = watch::channel(Progress::default());
        let handle = Arc::new(GroupCommit {
            tickets: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            failed_flushes: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            wake: Notify::new(),
            progress: rx,
        });
        let weak = Arc::downgrade(&handle);
        tokio::spawn(
            async move {
                let mut backoff = FIRST_BACKOFF;
                loop {
                    let Some(this) = weak.upgrade() else { return };
                    if tx.borrow().failing.is_some() {
                        drop(this);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        let Some(this) = weak.upgrade() else { return };
                        let target = this.tickets.load(Ordering::SeqCst);
                        this.epoch.fetch_add(1, Ordering::SeqCst);
                        let store = cmdb.clone();
                        let result = blocking(move || {
                            store.store().recover()?;
                            store.flush()
                        })
                        .await;
                        match result {
                            Ok(()) => {
                                this.recoveries.fetch_add(1, Ordering::Relaxed);
                                backoff = FIRST_BACKOFF;
                                tx.send_modify(|p| {
                                    if let Some(f) = p.failing.take() {
                                        let failed_for_ms = fathom_support::now_ms() - f.since_ms;
                                        tracing::warn!(
                                            failed_for_ms,
                                            failed_flushes = this.failed_flushes.load(Ordering::Relaxed),
                                            "The store was reopened and flushed; writes are accepted again"
                                        );
                                    }
                                    // Tickets so far belong to writers that
                                    // began before the reopen; their epoch
                                    // check refuses them.
                                    p.durable = target;
                                    p.error = None;
                                });
                            }
                            Err(reason) => {
                                this.failed_flushes.fetch_add(1, Ordering::Relaxed);
                                tracing::debug!(%reason, "The store is still failing");
                                tx.send_modify(|p| {
                                    p.failed_upto = target;
                                    if let Some(f) = &mut p.failing {
                                        f.reason = reason.clone();
                                    }
                                    p.error = Some(reason);
                                });
                            }
                        }
                        continue;
                    }
                    let target = this.tickets.load(Ordering::SeqCst);
                    let durable = tx.borrow().durable;
                    if target <= durable {
                        // Wake at least every second to notice a dropped handle.
                        let _ = tokio::time::timeout(Duration::from_secs(1), this.wake.notified()).await;
                        continue;
                    }
                    // Let more writers join this flush: under load, a flush
                    // that waits a moment covers many writes at the cost of
                    // one; an idle collector pays the delay once per report.
                    if target - durable < BATCH_TARGET {
                        tokio::time::sleep(COMMIT_DELAY).await;
                    }
                    let target = this.tickets.load(Ordering::SeqCst);
                    let store = cmdb.clone();
                    let result = blocking(move || store.flush()).await;
                    tx.send_modify(|p| match result {
                        Ok(()) => {
                            p.durable = target;
                            p.error = None;
                        }
                        Err(reason) => {
                            this.failed_flushes.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(%reason, "Flushing the store failed; writes are refused (503) until it is reopened and flushed");
                            p.failed_upto = target;
                            p.error = Some(reason.clone());
                            p.failing = Some(Failing {
                                since_ms: fathom_support::now_ms(),
                                reason,
                            });
                        }
                    });
                }
            }
            .instrument(tracing::info_span!("flusher")),
        );
        handle
    }

    /// Marks the start of a write: call before the transaction whose
    /// durability [`durable`](Self::durable) will wait for.
    pub fn begin(&self) -> Begun {
        Begun(self.epoch.load(Ordering::SeqCst))
    }

    /// Waits until everything this caller committed since `begun` is durable.
    pub async fn durable(&self, begun: Begun) -> Result<(), FlushFailed> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let mut progress = self.progress.clone();
        if let Some(failing) = &progress.borrow().failing {
            return Err(unavailable(failing));
        }
        self.wake.notify_one();
        loop {
            {
                let p = progress.borrow_and_update();
                if p.durable >= ticket {
                    if self.epoch.load(Ordering::SeqCst) != begun.0 {
                        return Err(FlushFailed(Arc::new(
                            "the store was reopened after a failure while this write was in progress; send it again".into(),
                        )));
                    }
                    return Ok(());
                }
                if p.failed_upto >= ticket {
                    if let Some(e) = &p.error {
                        return Err(FlushFailed(Arc::new(format!(
                            "flushing the store failed: {e}"
                        ))));
                    }
                }
            }
            if progress.changed().await.is_err() {
                return Err(FlushFailed(Arc::new("the flusher stopped".into())));
            }
        }
    }

    /// Asks for a flush without waiting for it: after a write failed in
    /// the store, the flush finds out whether the store is failing (and
    /// the failing state stops the per-report errors).
    pub fn suspect(&self) {
        self.tickets.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Refuses a write up front while the store is failing: no work, and no
    /// log line per refused report.
    pub fn check_writable(&self) -> Result<(), FlushFailed> {
        match &self.progress.borrow().failing {
            Some(failing) => Err(unavailable(failing)),
            None => Ok(()),
        }
    }

    pub fn health(&self) -> Health {
        let p = self.progress.borrow();
        Health {
            status: if p.failing.is_some() {
                "unavailable"
            } else {
                "ok"
            },
            reason: p.failing.as_ref().map(|f| f.reason.to_string()),
            unavailable_since_ms: p.failing.as_ref().map(|f| f.since_ms),
            failed_flushes: self.failed_flushes.load(Ordering::Relaxed),
            recoveries: self.recoveries.load(Ordering::Relaxed),
        }
    }
}

fn unavailable(failing: &Failing) -> FlushFailed {
    FlushFailed(Arc::new(format!(
        "the store cannot be written ({}); retry later",
        failing.reason
    )))
}

/// Runs store work on the blocking pool; a panic, or work that has not
/// finished after [`FLUSH_STALL`], is a failure like any other.
async fn blocking(
    work: impl FnOnce() -> Result<(), crate::store::StoreError> + Send + 'static,
) -> Result<(), Arc<String>> {
    match tokio::time::timeout(FLUSH_STALL, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(Arc::new(crate::error_chain(&e))),
        Ok(Err(e)) => Err(Arc::new(format!("the flush panicked: {e}"))),
        Err(_) => Err(Arc::new(format!(
            "a flush has not finished after {} s",
            FLUSH_STALL.as_secs()
        ))),
    }
}
