//! The handle in front of each long-lived background task (the webhook
//! deliverer, the capacity task, the availability task): it wakes the task
//! for a run now, and stops it when dropped.

use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Debug)]
pub struct Handle {
    wake: Arc<Notify>,
    task: tokio::task::AbortHandle,
}

impl Handle {
    /// `wake` is what the task waits on between runs.
    pub fn new(wake: Arc<Notify>, task: tokio::task::AbortHandle) -> Handle {
        Handle { wake, task }
    }

    /// Runs the task now rather than at its next tick.
    pub fn poke(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
