//! Operator actions: each is one transaction that also appends to the
//! audit trail (and every CI write to the CI's history). Permission
//! checks are the caller's (the API checks the token's role); the actor
//! passed in is who the records will name.

use super::history::{Actor, TrailEntry};
use super::{encode, next_id, Cmdb, Counter};
use crate::store::{Store, StoreError, Table, TransactionError, Tx, TxAbort};

/// Why an operator action was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (bad field, bad window…).
    #[error("{0}")]
    Invalid(String),
    /// The record's state does not allow it (an RFC already closed…).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TransactionError<ActionError>> for ActionError {
    fn from(e: TransactionError<ActionError>) -> Self {
        match e {
            TransactionError::Aborted(a) => a,
            TransactionError::Store(s) => ActionError::Store(s),
        }
    }
}

pub(crate) type TxResult<T> = Result<T, TxAbort<ActionError>>;

pub(crate) fn abort<T>(e: ActionError) -> TxResult<T> {
    Err(TxAbort::Abort(e))
}

pub(crate) fn not_found<T>(what: String) -> TxResult<T> {
    abort(ActionError::NotFound(what))
}

pub(crate) fn trail_entry(
    tx: &dyn Tx,
    at_ms: i64,
    actor: &Actor,
    action: &str,
    target: String,
    detail: String,
) -> TxResult<()> {
    let seq = next_id(tx, Counter::Trail)?;
    let entry = TrailEntry {
        seq,
        at_ms,
        actor: actor.clone(),
        action: action.to_owned(),
        target,
        detail,
    };
    tx.insert(Table::Trail, &seq.to_be_bytes(), &encode(&entry))?;
    Ok(())
}

impl<S: Store> Cmdb<S> {
    pub(crate) fn act_on<R>(
        &self,
        body: impl Fn(&dyn Tx) -> TxResult<R>,
    ) -> Result<R, ActionError> {
        self.act(body)
    }

    pub(crate) fn act<R>(&self, body: impl Fn(&dyn Tx) -> TxResult<R>) -> Result<R, ActionError> {
        Ok(self.store.transaction(body)?)
    }

    pub fn trail_entries(&self) -> Result<Vec<TrailEntry>, StoreError> {
        self.scan(Table::Trail, b"")
    }
}
