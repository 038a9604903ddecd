//! The webhook outbox: incident events queued in the incident's own
//! transaction, removed once delivered.

use super::Cmdb;
use crate::store::{Store, StoreError, Table, TransactionError};

impl<S: Store> Cmdb<S> {
    /// Removes a delivered webhook event.
    pub fn outbox_delivered(&self, seq: u64) -> Result<(), StoreError> {
        let key = seq.to_be_bytes();
        let result = self
            .store
            .transaction::<(), std::convert::Infallible>(|tx| Ok(tx.remove(Table::Outbox, &key)?));
        result.map_err(|e| match e {
            TransactionError::Store(s) => s,
            TransactionError::Aborted(never) => match never {},
        })
    }

    /// Webhook events waiting for delivery, oldest first.
    pub fn outbox(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .store
            .scan_prefix(Table::Outbox, b"")?
            .into_iter()
            .filter_map(|(k, v)| {
                <[u8; 8]>::try_from(k.as_slice())
                    .ok()
                    .map(|k| (u64::from_be_bytes(k), v))
            })
            .collect())
    }
}
