//! The sled engine (0.34, the stable on-disk format). One sled tree per
//! [`Table`], all in one database directory.

// The home of sled (clippy.toml).
#![allow(clippy::disallowed_types)]

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use super::{Conflict, Entries, Store, StoreError, Table, TransactionError, Tx, TxAbort};

/// What a flush waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// sled's flush, then `fdatasync` of its data file: on stable storage,
    /// a power cut loses nothing acknowledged. The default.
    Data,
    /// sled's flush only (`pwrite` and `sync_file_range`): survives the
    /// process crashing, not the machine. For disposable stores and
    /// benchmarks.
    None,
}

/// The database's data file, synced after each flush.
#[derive(Debug)]
struct DataFile {
    file: std::fs::File,
}

/// One open database: what a failure may force us to drop and open again.
#[derive(Debug)]
struct Engine {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    /// `None` under `Sync::None`.
    data: Option<DataFile>,
}

impl Engine {
    fn open(path: &Path, sync: Sync) -> Result<Engine, StoreError> {
        let config = sled::Config::new()
            .path(path)
            // Durability comes from explicit flushes before every
            // acknowledgement (group commit), not from a timer.
            .flush_every_ms(None)
            .cache_capacity(64 * 1024 * 1024);
        // sled takes an advisory lock on the directory, and a database
        // just closed in this process may hold it a few moments more while
        // its I/O thread finishes (spacejam/sled#1234): wait that long
        // before calling the directory taken.
        let started = std::time::Instant::now();
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(e) if is_lock_held(&e) && started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(StoreError::Open {
                        path: path.to_owned(),
                        source: Box::new(e),
                    })
                }
            }
        };
        let trees = Table::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(engine_error)?;
        let data = match sync {
            Sync::None => None,
            Sync::Data => {
                let file_path = path.join("db");
                let file = std::fs::File::open(&file_path).map_err(|e| StoreError::Open {
                    path: file_path,
                    source: Box::new(e),
                })?;
                Some(DataFile { file })
            }
        };
        Ok(Engine { db, trees, data })
    }

    fn tree(&self, table: Table) -> &sled::Tree {
        &self.trees[table.index()]
    }
}

#[derive(Debug, Clone)]
pub struct SledStore {
    path: std::sync::Arc<std::path::PathBuf>,
    sync: Sync,
    /// `None` only while [`Store::recover`] swaps databases.
    engine: std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<Engine>>>>,
    syncs: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// One writing transaction at a time. sled's transactions are optimistic
    /// and spin (`sched_yield`) when they collide; with every report touching
    /// its agent's record, queueing writers here measured 20% faster than
    /// letting them collide, and sled serializes commits anyway.
    writer: std::sync::Arc<std::sync::Mutex<()>>,
}

fn engine_error(e: sled::Error) -> StoreError {
    StoreError::Engine(Box::new(e))
}

impl SledStore {
    /// Opens the store whose acknowledgements wait for stable storage.
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
        Self::open_with(path, Sync::Data)
    }

    pub fn open_with(path: &Path, sync: Sync) -> Result<SledStore, StoreError> {
        let engine = Engine::open(path, sync)?;
        Ok(SledStore {
            path: std::sync::Arc::new(path.to_owned()),
            sync,
            engine: std::sync::Arc::new(std::sync::RwLock::new(Some(std::sync::Arc::new(engine)))),
            syncs: Default::default(),
            writer: Default::default(),
        })
    }

    /// How many times a flush synced the data file to stable storage.
    pub fn data_syncs(&self) -> u64 {
        self.syncs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The open database; an error while [`Store::recover`] swaps it.
    fn engine(&self) -> Result<std::sync::Arc<Engine>, StoreError> {
        self.engine
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Engine("the store is being reopened after a failure".into()))
    }
}

/// The trees of one transaction, and where each table sits among them.
struct SledTx<'a> {
    trees: &'a [TransactionalTree],
    slot: &'a [Option<usize>; Table::ALL.len()],
}

impl SledTx<'_> {
    fn tree(&self, table: Table) -> Result<&TransactionalTree, Conflict> {
        match self.slot[table.index()] {
            Some(i) => Ok(&self.trees[i]),
            None => {
                debug_assert!(false, "table {} used outside its transaction", table.name());
                Err(Conflict(
                    sled::transaction::UnabortableTransactionError::Storage(
                        sled::Error::Unsupported(format!(
                            "table {} is not part of this transaction",
                            table.name()
                        )),
                    ),
                ))
            }
        }
    }
}

impl Tx for SledTx<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Conflict> {
        self.tree(table)?
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(Conflict)
    }

    fn insert(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), Conflict> {
        self.tree(table)?
            .insert(key, value)
            .map(|_| ())
            .map_err(Conflict)
    }

    fn remove(&self, table: Table, key: &[u8]) -> Result<(), Conflict> {
        self.tree(table)?.remove(key).map(|_| ()).map_err(Conflict)
    }
}

impl Store for SledStore {
    fn transaction_on<R, E>(
        &self,
        tables: &[Table],
        body: impl Fn(&dyn Tx) -> Result<R, TxAbort<E>>,
    ) -> Result<R, TransactionError<E>> {
        // A poisoned lock only means another writer panicked mid-transaction;
        // sled rolled that transaction back, so the store is consistent.
        // Taken before the database: `recover` holds it while it swaps
        // databases, so a writer never holds on to one being dropped.
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let engine = self.engine()?;
        let mut slot = [None; Table::ALL.len()];
        let mut trees = Vec::with_capacity(tables.len());
        for t in tables {
            if slot[t.index()].is_none() {
                slot[t.index()] = Some(trees.len());
                trees.push(engine.tree(*t).clone());
            }
        }
        let result = trees.as_slice().transaction(|trees| {
            body(&SledTx { trees, slot: &slot }).map_err(|abort| match abort {
                TxAbort::Engine(Conflict(e)) => ConflictableTransactionError::from(e),
                TxAbort::Abort(e) => ConflictableTransactionError::Abort(e),
            })
        });
        result.map_err(|e| match e {
            sled::transaction::TransactionError::Abort(e) => TransactionError::Aborted(e),
            sled::transaction::TransactionError::Storage(e) => {
                TransactionError::Store(engine_error(e))
            }
        })
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.engine()?
            .tree(table)
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(engine_error)
    }

    fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Entries, StoreError> {
        self.engine()?
            .tree(table)
            .scan_prefix(prefix)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .map_err(engine_error)
    }

    fn scan_from(&self, table: Table, start: &[u8], limit: usize) -> Result<Entries, StoreError> {
        self.engine()?
            .tree(table)
            .range(start..)
            .take(limit)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .map_err(engine_error)
    }

    fn count(&self, table: Table) -> Result<usize, StoreError> {
        Ok(self.engine()?.tree(table).len())
    }

    fn generate_id(&self) -> Result<u64, StoreError> {
        self.engine()?.db.generate_id().map_err(engine_error)
    }

    fn flush(&self) -> Result<(), StoreError> {
        let engine = self.engine()?;
        engine.db.flush().map_err(engine_error)?;
        // sled 0.34 ends its flush with `sync_file_range`, which neither
        // flushes the disk's cache nor the file's size: only `fdatasync`
        // makes the write survive a power cut (spacejam/sled#1452). One
        // per flush, and the group commit shares a flush among writers.
        if let Some(data) = &engine.data {
            data.file
                .sync_data()
                .map_err(|e| StoreError::Engine(Box::new(e)))?;
            self.syncs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// sled 0.34 keeps the first I/O error it meets (a full disk, say) and
    /// fails every later write and flush with it, even once the cause is
    /// gone: only a database opened anew writes again. Opening replays the
    /// log up to the last flush that reached the disk: everything
    /// acknowledged is kept, and what was not may be lost.
    fn recover(&self) -> Result<(), StoreError> {
        // Opening writes, and a database dropped cannot be had back: while
        // the disk is still full, keep the failed one, which still reads.
        let free = free_bytes(&self.path)?;
        if free < RECOVERY_HEADROOM {
            return Err(StoreError::Engine(
                format!(
                    "{free} bytes free on the store's filesystem; waiting for {} MiB before reopening",
                    RECOVERY_HEADROOM >> 20
                )
                .into(),
            ));
        }
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let old = self
            .engine
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        // Readers that took the old database before the swap finish with
        // it; the directory's lock is released when the last one does,
        // which opening waits for.
        drop(old);
        let fresh = Engine::open(&self.path, self.sync)?;
        *self
            .engine
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(std::sync::Arc::new(fresh));
        Ok(())
    }
}

/// Free space the store's filesystem needs before a failed store is reopened.
const RECOVERY_HEADROOM: u64 = 4 << 20;

/// Bytes an unprivileged writer may still use on `path`'s filesystem.
fn free_bytes(path: &Path) -> Result<u64, StoreError> {
    let stat = rustix::fs::statvfs(path)
        .map_err(|e| StoreError::Engine(Box::new(std::io::Error::from(e))))?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// How long opening waits for a lock a closing database still holds.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// sled 0.34's error for a directory another handle has locked.
fn is_lock_held(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_reaches_stable_storage_unless_told_not_to() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("a")).unwrap();
        store
            .transaction::<(), ()>(|tx| {
                tx.insert(Table::Meta, b"k", b"v")?;
                Ok(())
            })
            .unwrap();
        assert_eq!(store.data_syncs(), 0);
        store.flush().unwrap();
        store.flush().unwrap();
        assert_eq!(store.data_syncs(), 2, "fdatasync after every flush");
        let fast = SledStore::open_with(&dir.path().join("b"), Sync::None).unwrap();
        fast.flush().unwrap();
        assert_eq!(fast.data_syncs(), 0);
    }

    #[test]
    fn recovering_keeps_what_was_flushed_and_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let put = |key: &[u8]| {
            store
                .transaction::<(), ()>(|tx| {
                    tx.insert(Table::Meta, key, b"v")?;
                    Ok(())
                })
                .unwrap()
        };
        put(b"flushed");
        store.flush().unwrap();
        put(b"not flushed");
        store.recover().unwrap();
        // What was flushed is kept. (What was not may be kept too: sled
        // flushes when the old database is dropped, if it still can.)
        assert!(store.get(Table::Meta, b"flushed").unwrap().is_some());
        // The reopened store takes writes and keeps them.
        put(b"after");
        store.flush().unwrap();
        drop(store);
        let store = SledStore::open(dir.path()).unwrap();
        assert!(store.get(Table::Meta, b"after").unwrap().is_some());
    }

    #[test]
    fn transactions_commit_atomically_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        store
            .transaction::<(), ()>(|tx| {
                tx.insert(Table::Agents, b"a", b"1")?;
                tx.insert(Table::Cis, b"c", b"2")?;
                Ok(())
            })
            .unwrap();
        let aborted = store.transaction::<(), &str>(|tx| {
            tx.insert(Table::Agents, b"b", b"1")?;
            Err(TxAbort::Abort("no"))
        });
        assert!(matches!(aborted, Err(TransactionError::Aborted("no"))));
        assert_eq!(
            store.get(Table::Agents, b"a").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(
            store.get(Table::Cis, b"c").unwrap().as_deref(),
            Some(&b"2"[..])
        );
        assert_eq!(store.get(Table::Agents, b"b").unwrap(), None);
        store.flush().unwrap();
        drop(store);
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.count(Table::Agents).unwrap(), 1);
        assert_eq!(store.scan_prefix(Table::Cis, b"").unwrap().len(), 1);
    }

    #[test]
    fn a_directory_held_open_is_refused_after_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let _held = SledStore::open(dir.path()).unwrap();
        let started = std::time::Instant::now();
        let Err(err) = SledStore::open(dir.path()) else {
            panic!("the directory is locked")
        };
        assert!(started.elapsed() >= LOCK_WAIT);
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn scans_from_a_key_stop_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        store
            .transaction::<(), ()>(|tx| {
                for k in [b"a", b"b", b"c", b"d"] {
                    tx.insert(Table::Meta, k, b"")?;
                }
                Ok(())
            })
            .unwrap();
        let keys = |start: &[u8], limit| -> Vec<Vec<u8>> {
            let entries = store.scan_from(Table::Meta, start, limit).unwrap();
            entries.into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(keys(b"b", 2), [b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(keys(b"bb", 10), [b"c".to_vec(), b"d".to_vec()]);
        assert!(keys(b"e", 10).is_empty());
    }
}
