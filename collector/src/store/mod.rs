//! The storage trait: an ordered key-value store with multi-table
//! transactions. [`sled_store::SledStore`] is the one engine today; the CMDB
//! ([`crate::cmdb`]) is written against this trait only, so another engine can
//! be added without touching it.
//!
//! The trait knows tables, keys and bytes; it knows nothing of CIs or agents.
//!
//! **Architecture Invariant:** only `store::sled_store` touches sled.

pub mod sled_store;

use std::fmt;

/// The tables the CMDB uses. Each engine maps them to its own namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// agent id (16 bytes) → agent record
    Agents,
    /// SHA-256 of the secret → enrollment token record
    EnrollmentTokens,
    /// SHA-256 of the secret → operator token record
    OperatorTokens,
    /// CI id (8 bytes, big-endian) → CI record
    Cis,
    /// `<identifier kind>\0<value>` → CI id; see `control::identify`
    CiIndex,
    /// agent id ++ seq (big-endian) → report record, for replay and idempotence
    Reports,
    /// CI id ++ agent id → that agent's latest inventory (the discovered
    /// state, per source)
    Inventories,
    /// agent id ++ observed-at ms ++ seq → metrics sample, until the metric
    /// store takes it in
    Metrics,
    /// counter name → next number (CI, RFC, incident… ids)
    Meta,
    /// CI id ++ revision (big-endian) → history entry
    History,
    /// RFC id → RFC
    Rfcs,
    /// drift id → drift record
    Drifts,
    /// incident id → incident
    Incidents,
    /// from CI ++ kind ++ to CI → relationship
    Relationships,
    /// to CI ++ kind ++ from CI → empty (the reverse index)
    RelationshipsReverse,
    /// review id → identification review item
    Reviews,
    /// baseline name → baseline
    Baselines,
    /// audit id → configuration audit
    Audits,
    /// seq → audit trail entry (operator actions)
    Trail,
    /// seq → webhook event waiting for delivery
    Outbox,
    /// CI id ++ agent id → that agent's latest poll of a network device
    Devices,
    /// CI id ++ observed-at ms → a device poll's interface rates, until the
    /// metric store takes them in
    DeviceMetrics,
    /// CI id → the CI's series (ids, units, latest values), blocks and
    /// counters (`capacity::store::CiSeries`)
    Series,
    /// CI id ++ tier ++ block start → a block of all the CI's samples or
    /// roll-up buckets of that period (`capacity::block`)
    Samples,
    /// CI id → its availability watch (last heartbeat, learned interval)
    Watches,
    /// CI id ++ start ms → an outage
    Outages,
    /// CI id ++ series name → an open capacity alert (its incident)
    CapacityAlerts,
    /// CI id → its latest heartbeat with a boot time (inventories, device
    /// polls)
    Heartbeats,
}

impl Table {
    pub const ALL: [Table; 28] = [
        Table::Agents,
        Table::EnrollmentTokens,
        Table::OperatorTokens,
        Table::Cis,
        Table::CiIndex,
        Table::Reports,
        Table::Inventories,
        Table::Metrics,
        Table::Meta,
        Table::History,
        Table::Rfcs,
        Table::Drifts,
        Table::Incidents,
        Table::Relationships,
        Table::RelationshipsReverse,
        Table::Reviews,
        Table::Baselines,
        Table::Audits,
        Table::Trail,
        Table::Outbox,
        Table::Devices,
        Table::DeviceMetrics,
        Table::Series,
        Table::Samples,
        Table::Watches,
        Table::Outages,
        Table::CapacityAlerts,
        Table::Heartbeats,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Agents => "agents",
            Table::EnrollmentTokens => "enrollment_tokens",
            Table::OperatorTokens => "operator_tokens",
            Table::Cis => "cis",
            Table::CiIndex => "ci_index",
            Table::Reports => "reports",
            Table::Inventories => "inventories",
            Table::Metrics => "metrics",
            Table::Meta => "meta",
            Table::History => "history",
            Table::Rfcs => "rfcs",
            Table::Drifts => "drifts",
            Table::Incidents => "incidents",
            Table::Relationships => "relationships",
            Table::RelationshipsReverse => "relationships_reverse",
            Table::Reviews => "reviews",
            Table::Baselines => "baselines",
            Table::Audits => "audits",
            Table::Trail => "trail",
            Table::Outbox => "outbox",
            Table::Devices => "devices",
            Table::DeviceMetrics => "device_metrics",
            Table::Series => "series",
            Table::Samples => "samples",
            Table::Watches => "watches",
            Table::Outages => "outages",
            Table::CapacityAlerts => "capacity_alerts",
            Table::Heartbeats => "heartbeats",
        }
    }

    /// Its position in [`Table::ALL`] (which lists them in declaration order).
    fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_table_in_declaration_order() {
        for (i, t) in Table::ALL.iter().enumerate() {
            assert_eq!(t.index(), i, "{}", t.name());
        }
        let names: std::collections::BTreeSet<_> = Table::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), Table::ALL.len());
    }
}

/// An engine-level failure inside a transaction (including a conflict the
/// engine will retry). Opaque to callers: propagate it with `?`.
pub struct Conflict(pub(crate) sled::transaction::UnabortableTransactionError);

impl fmt::Debug for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conflict({:?})", self.0)
    }
}

/// How a transaction body ends early: the engine's own trouble, or the
/// caller's decision to abort with `E`.
#[derive(Debug)]
pub enum TxAbort<E> {
    Engine(Conflict),
    Abort(E),
}

impl<E> From<Conflict> for TxAbort<E> {
    fn from(c: Conflict) -> Self {
        TxAbort::Engine(c)
    }
}

/// The view of the store inside a transaction.
pub trait Tx {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Conflict>;
    fn insert(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), Conflict>;
    fn remove(&self, table: Table, key: &[u8]) -> Result<(), Conflict>;
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}")]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("storage engine failure")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("stored {table} record under key {key} is corrupt")]
    Corrupt {
        table: &'static str,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Either the caller aborted with `E` or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError<E> {
    #[error("transaction aborted")]
    Aborted(E),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Key-value pairs, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

pub trait Store: Send + Sync + 'static {
    /// Runs `body` atomically and in isolation across tables. The engine may
    /// run `body` more than once (on conflict), so it must have no side
    /// effects outside the transaction.
    fn transaction<R, E>(
        &self,
        body: impl Fn(&dyn Tx) -> Result<R, TxAbort<E>>,
    ) -> Result<R, TransactionError<E>> {
        self.transaction_on(&Table::ALL, body)
    }

    /// A transaction over `tables` only, for hot paths that touch few: the
    /// engine's per-transaction work grows with the tables it spans. Using
    /// another table inside is a bug; it fails the transaction.
    fn transaction_on<R, E>(
        &self,
        tables: &[Table],
        body: impl Fn(&dyn Tx) -> Result<R, TxAbort<E>>,
    ) -> Result<R, TransactionError<E>>;

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every entry whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Entries, StoreError>;

    /// Up to `limit` entries from the first key at or after `start`, in key
    /// order: for working through a large table a batch at a time.
    fn scan_from(&self, table: Table, start: &[u8], limit: usize) -> Result<Entries, StoreError>;

    /// Number of entries in a table.
    fn count(&self, table: Table) -> Result<usize, StoreError>;

    /// A new unique, increasing number, durable across restarts.
    fn generate_id(&self) -> Result<u64, StoreError>;

    /// Makes everything written so far durable. Blocking.
    fn flush(&self) -> Result<(), StoreError>;

    /// Makes the store usable again after a failed flush. What was written
    /// since the last successful flush (none of it acknowledged) may be
    /// lost. Blocking; an error means it is still unusable.
    fn recover(&self) -> Result<(), StoreError>;
}
