//! The metric store: every CI's utilization series, kept raw for 48 hours
//! and as roll-ups (5-minute for 30 days, hourly for 13 months, daily for
//! five years) after, in compressed blocks (`block`), with a bounded number
//! of series per CI so that a CI's disk use is bounded too.
//!
//! A block holds one period of one tier for all the series of one CI
//! (`samples`: CI ‖ tier ‖ block start), and one record per CI lists its
//! series, their ids in blocks, and its blocks (`series`: CI). A raw hour
//! being written is a set of log entries (`… ‖ fold id`), one per fold that
//! had samples for it, each written once; sealing the hour replaces them
//! with one block. Taking in a CI's reports is then one write per fold,
//! whatever its number of series, plus its record about once an hour.
//!
//! Reports reach the store in two steps. Ingest writes each metrics report
//! and each device poll's rates to a log table (`metrics`,
//! `device_metrics`) in the report's own transaction, before the
//! acknowledgement; that is what makes them durable. [`MetricStore::fold`]
//! later takes a batch of log entries, writes their samples to the CIs'
//! raw hours, and removes the entries, in one transaction: a sample is either
//! still in the log or in its block, never both, never neither.
//! [`MetricStore::roll_up`] seals raw hours that are over, makes their
//! roll-up buckets from the raw samples, and drops blocks past their
//! tier's retention.
//!
//! Both run on one background task (`capacity::task`) and nowhere else at
//! the same time: they read blocks outside their transaction and write
//! them inside, which is safe only because nothing else writes the
//! `series` and `samples` tables.
//!
//! Does not know about thresholds or forecasts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fathom_shared::ids::{AgentId, CiId};
use fathom_shared::wire::Metrics;
use fathom_support::time::{DAY_MS, HOUR_MS};
use serde::{Deserialize, Serialize};

use super::block::{self, Block, Columns};
use super::rollup::{buckets, Bucket, Tier};
use super::series::{self, Sample, Unit};
use crate::cmdb::device::DeviceSample;
use crate::cmdb::{self, ci_of_key, AgentRecord};
use crate::store::{Store, StoreError, Table, TransactionError};

/// How long each tier is kept, and the bounds that keep a CI's share of
/// the disk bounded. `[metrics]` in collector.toml.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSettings {
    pub raw_ms: i64,
    pub five_minute_ms: i64,
    pub hour_ms: i64,
    pub day_ms: i64,
    /// Series per CI at most; samples of further series are dropped (and
    /// logged).
    pub max_series_per_ci: usize,
    /// A raw block is rolled up this long after its hour ends, so samples
    /// a little late still land before the roll-up.
    pub grace_ms: i64,
    /// How often the capacity task folds the log, and rolls up.
    pub fold_every: std::time::Duration,
    pub roll_up_every: std::time::Duration,
    /// A series with no sample for this long is stale: shown with its last
    /// value and time, and held to no threshold.
    pub stale_after_ms: i64,
    /// A series with no sample for this long leaves plans and threshold
    /// checks, and its open capacity alert resolves.
    pub retire_after_ms: i64,
}

impl Default for MetricSettings {
    fn default() -> MetricSettings {
        MetricSettings {
            raw_ms: 48 * HOUR_MS,
            five_minute_ms: 30 * DAY_MS,
            hour_ms: 395 * DAY_MS,
            day_ms: 5 * 365 * DAY_MS,
            max_series_per_ci: 512,
            grace_ms: 5 * 60_000,
            fold_every: super::task::DEFAULT_FOLD_EVERY,
            roll_up_every: super::task::DEFAULT_ROLL_UP_EVERY,
            stale_after_ms: 15 * 60_000,
            retire_after_ms: 24 * HOUR_MS,
        }
    }
}

impl MetricSettings {
    pub fn retention(&self, tier: Tier) -> i64 {
        match tier {
            Tier::Raw => self.raw_ms,
            Tier::FiveMinute => self.five_minute_ms,
            Tier::Hour => self.hour_ms,
            Tier::Day => self.day_ms,
        }
    }

    /// The finest tier still holding data from `from_ms`, at `now_ms`.
    pub fn finest_covering(&self, from_ms: i64, now_ms: i64) -> Tier {
        Tier::ALL
            .into_iter()
            .find(|t| now_ms - self.retention(*t) <= from_ms)
            .unwrap_or(Tier::Day)
    }
}

/// One series of a CI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesMeta {
    /// Its id in the CI's blocks; never reused for another series.
    pub id: u32,
    pub unit: Unit,
    pub first_ms: i64,
}

/// What the store knows of a CI's series without reading its blocks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CiSeries {
    pub series: BTreeMap<String, SeriesMeta>,
    next_id: u32,
    /// Start of every stored block, per tier (`Tier::index`), oldest first.
    blocks: [Vec<i64>; 4],
    /// Raw blocks written to since their roll-up buckets were made.
    pub(super) dirty: BTreeSet<i64>,
    /// Days with a raw block rolled up but no day bucket made yet (the day
    /// was not over).
    pub(super) pending_days: BTreeSet<i64>,
}

impl CiSeries {
    pub fn blocks(&self, tier: Tier) -> &[i64] {
        &self.blocks[tier.index()]
    }

    fn add_block(&mut self, tier: Tier, start: i64) {
        let list = &mut self.blocks[tier.index()];
        if let Err(at) = list.binary_search(&start) {
            list.insert(at, start);
        }
    }

    /// The id of `name`, made if it is new and the CI has room.
    fn id_of(&mut self, name: &str, at_ms: i64, limit: usize) -> Option<u32> {
        if let Some(m) = self.series.get(name) {
            return Some(m.id);
        }
        if self.series.len() >= limit || !series::storable(name) {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.series.insert(
            name.to_owned(),
            SeriesMeta {
                id,
                unit: Unit::of(name).expect("storable names have units"),
                first_ms: at_ms,
            },
        );
        Some(id)
    }
}

/// A point of a series at some tier, in the series' unit. Raw samples are
/// points of one sample (min = mean = max = p95).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub at_ms: i64,
    pub count: i64,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub p95: f64,
}

impl Point {
    pub(super) fn of(unit: Unit, b: &Bucket) -> Point {
        Point {
            at_ms: b.start_ms,
            count: b.count,
            min: unit.value(b.min),
            mean: unit.value(b.mean),
            max: unit.value(b.max),
            p95: unit.value(b.p95),
        }
    }
}

/// What one fold did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Folded {
    /// Log entries taken in (and removed).
    pub entries: usize,
    pub samples: usize,
    /// Log entries of agents with no CI yet, left for a later fold.
    pub waiting: usize,
    /// Samples dropped: older than raw retention, or beyond the series cap.
    pub dropped: usize,
}

/// What one roll-up pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolledUp {
    pub blocks_sealed: usize,
    pub blocks_dropped: usize,
    pub series_dropped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored {tier} block of CI {ci} at {start} is damaged")]
    Block {
        ci: CiId,
        tier: &'static str,
        start: i64,
        #[source]
        source: block::BlockError,
    },
}

impl From<TransactionError<std::convert::Infallible>> for MetricError {
    fn from(e: TransactionError<std::convert::Infallible>) -> Self {
        match e {
            TransactionError::Store(s) => MetricError::Store(s),
            TransactionError::Aborted(never) => match never {},
        }
    }
}

pub(super) fn block_key(ci: CiId, tier: Tier, start: i64) -> Vec<u8> {
    let mut k = cmdb::ci_key(ci).to_vec();
    k.push(tier.index() as u8);
    k.extend_from_slice(&start.to_be_bytes());
    k
}

pub(super) fn short_key(table: Table, key: &[u8], what: &str) -> StoreError {
    StoreError::Corrupt {
        table: table.name(),
        key: hex::encode(key),
        source: format!("the key is {} bytes, too short for {what}", key.len()).into(),
    }
}

/// A tier's row width: time and value, or a roll-up bucket.
pub(super) fn width(tier: Tier) -> usize {
    match tier {
        Tier::Raw => 2,
        _ => 6,
    }
}

/// A key and a value to write.
type KeyValue = (Vec<u8>, Vec<u8>);

/// The writes of one fold or roll-up, made in one transaction at the end.
#[derive(Default)]
struct Writes {
    put: BTreeMap<(Table, Vec<u8>), Vec<u8>>,
    delete: BTreeSet<(Table, Vec<u8>)>,
}

impl Writes {
    fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.delete.remove(&(table, key.clone()));
        self.put.insert((table, key), value);
    }

    fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.put.remove(&(table, key.clone()));
        self.delete.insert((table, key));
    }

    fn commit<S: Store>(self, store: &S) -> Result<(), MetricError> {
        if self.put.is_empty() && self.delete.is_empty() {
            return Ok(());
        }
        let tables = [
            Table::Metrics,
            Table::DeviceMetrics,
            Table::Series,
            Table::Samples,
        ];
        store.transaction_on::<(), std::convert::Infallible>(&tables, |tx| {
            for ((table, key), value) in &self.put {
                tx.insert(*table, key, value)?;
            }
            for (table, key) in &self.delete {
                tx.remove(*table, key)?;
            }
            Ok(())
        })?;
        Ok(())
    }
}

/// The metric store over the collector's store.
#[derive(Debug)]
pub struct MetricStore<'a, S> {
    pub(super) store: &'a S,
    pub(super) settings: &'a MetricSettings,
}

impl<'a, S: Store> MetricStore<'a, S> {
    pub fn new(store: &'a S, settings: &'a MetricSettings) -> MetricStore<'a, S> {
        MetricStore { store, settings }
    }

    /// Takes up to `batch` log entries into their CIs' blocks. Returns what
    /// it did; call again while `entries` is not zero to drain the log.
    pub fn fold(&self, batch: usize, now_ms: i64) -> Result<Folded, MetricError> {
        let mut done = Folded::default();
        let mut writes = Writes::default();
        let oldest = now_ms - self.settings.raw_ms;

        // Host metrics, by agent, oldest first within an agent.
        let mut agents: HashMap<AgentId, Option<CiId>> = HashMap::new();
        let mut host: BTreeMap<CiId, Vec<Metrics>> = BTreeMap::new();
        for (key, value) in self.store.scan_from(Table::Metrics, b"", batch)? {
            let Some(agent) = key
                .get(..16)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(AgentId::from_bytes)
            else {
                let e = short_key(Table::Metrics, &key, "an agent id");
                tracing::error!(error = %crate::error_chain(&e), "Dropped a metric log entry with a corrupt key");
                writes.delete(Table::Metrics, key);
                continue;
            };
            let ci = match agents.entry(agent) {
                std::collections::hash_map::Entry::Occupied(e) => *e.get(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let record: Option<AgentRecord> = self.get(Table::Agents, agent.as_bytes())?;
                    *e.insert(record.and_then(|a| a.ci_id))
                }
            };
            let metrics: Metrics = cmdb::decode(Table::Metrics, &key, &value)?;
            let Some(ci) = ci else {
                if metrics.observed_at_ms < oldest {
                    writes.delete(Table::Metrics, key);
                    done.dropped += 1;
                } else {
                    done.waiting += 1;
                }
                continue;
            };
            host.entry(ci).or_default().push(metrics);
            writes.delete(Table::Metrics, key);
            done.entries += 1;
        }
        // Device polls' rates.
        let mut device: BTreeMap<CiId, Vec<Sample>> = BTreeMap::new();
        for (key, value) in self.store.scan_from(Table::DeviceMetrics, b"", batch)? {
            let ci = match ci_of_key(Table::DeviceMetrics, &key) {
                Ok(ci) => ci,
                Err(e) => {
                    tracing::error!(error = %crate::error_chain(&e), "Dropped a device metric log entry with a corrupt key");
                    writes.delete(Table::DeviceMetrics, key);
                    continue;
                }
            };
            let sample: DeviceSample = cmdb::decode(Table::DeviceMetrics, &key, &value)?;
            device
                .entry(ci)
                .or_default()
                .extend(series::device_samples(&sample));
            writes.delete(Table::DeviceMetrics, key);
            done.entries += 1;
        }
        let cis: BTreeSet<CiId> = host.keys().chain(device.keys()).copied().collect();
        // Names this fold's raw log entries apart from every other fold's.
        let fold_id = if cis.is_empty() {
            0
        } else {
            self.store.generate_id()?
        };
        for ci in cis {
            let key = cmdb::ci_key(ci).to_vec();
            let stored: Option<CiSeries> = self.get(Table::Series, &key)?;
            let mut record = stored.clone().unwrap_or_default();
            let mut samples = device.remove(&ci).unwrap_or_default();
            for metrics in host.remove(&ci).unwrap_or_default() {
                samples.extend(series::host_samples(&metrics));
            }
            let (blocks, counted) = self.append(ci, fold_id, oldest, &mut record, samples)?;
            for (key, bytes) in blocks {
                writes.put(Table::Samples, key, bytes);
            }
            done.samples += counted.samples;
            done.dropped += counted.dropped;
            // Written only when a series or a block is new: about once an
            // hour per CI.
            if stored.as_ref() != Some(&record) {
                writes.put(Table::Series, key, cmdb::encode(&record));
            }
        }
        writes.commit(self.store)?;
        Ok(done)
    }

    /// One CI's samples as raw-hour writes (key, bytes), for the fold
    /// numbered `fold_id`, with the samples taken and dropped; samples
    /// before `oldest` are dropped.
    fn append(
        &self,
        ci: CiId,
        fold_id: u64,
        oldest: i64,
        record: &mut CiSeries,
        samples: Vec<Sample>,
    ) -> Result<(Vec<KeyValue>, Folded), MetricError> {
        let mut done = Folded::default();
        let mut writes = Vec::new();
        let mut by_block: BTreeMap<i64, Vec<(u32, i64, i64)>> = BTreeMap::new();
        let mut refused: BTreeSet<String> = BTreeSet::new();
        for s in samples {
            if s.at_ms < oldest {
                done.dropped += 1;
                continue;
            }
            let Some(id) = record.id_of(&s.name, s.at_ms, self.settings.max_series_per_ci) else {
                done.dropped += 1;
                refused.insert(s.name);
                continue;
            };
            let meta = record.series.get_mut(&s.name).expect("id_of made it");
            let q = meta.unit.quantize(s.value);
            meta.first_ms = meta.first_ms.min(s.at_ms);
            by_block
                .entry(Tier::Raw.block_start(s.at_ms))
                .or_default()
                .push((id, s.at_ms, q));
            done.samples += 1;
        }
        if !refused.is_empty() {
            // A count and a few names: a report with thousands of series
            // must not make a log line of them all.
            let examples: Vec<&String> = refused.iter().take(5).collect();
            tracing::warn!(%ci, refused = refused.len(), examples = ?examples, limit = self.settings.max_series_per_ci,
                "Series not stored: the name is not storable, or the CI has as many series as allowed");
        }
        for (start, rows) in by_block {
            let rolled_up =
                record.blocks(Tier::Raw).contains(&start) && !record.dirty.contains(&start);
            if rolled_up {
                // A late sample for an hour already sealed: reseal it with
                // the sample in; the roll-up makes its buckets again.
                let (mut sealed, _) = self.raw_hour(ci, start, None)?;
                for (id, at, q) in rows {
                    sealed
                        .entry(id)
                        .or_insert_with(|| Columns::new(2))
                        .push(&[at, q])
                        .map_err(|e| self.damaged(ci, Tier::Raw, start, e))?;
                }
                for c in sealed.values_mut() {
                    c.sort_by_time();
                }
                writes.push((block_key(ci, Tier::Raw, start), block::encode_set(&sealed)));
            } else {
                // A log entry of its own, written once and never rewritten
                // until the hour is sealed.
                let mut key = block_key(ci, Tier::Raw, start);
                key.extend_from_slice(&fold_id.to_be_bytes());
                let mut bytes = Vec::new();
                block::append_log(&mut bytes, start, &rows);
                writes.push((key, bytes));
            }
            record.add_block(Tier::Raw, start);
            record.dirty.insert(start);
        }
        Ok((writes, done))
    }

    /// Seals raw blocks whose hour (and grace) is over, makes their roll-up
    /// buckets, and drops what is past retention, for up to `batch` CIs
    /// from `from_key` on. Returns the key to continue from (`None` when
    /// the last CI was reached) and what it did.
    pub fn roll_up(
        &self,
        from_key: &[u8],
        batch: usize,
        now_ms: i64,
    ) -> Result<(Option<Vec<u8>>, RolledUp), MetricError> {
        let mut done = RolledUp::default();
        let mut writes = Writes::default();
        let entries = self.store.scan_from(Table::Series, from_key, batch)?;
        let next = (entries.len() == batch).then(|| {
            let mut k = entries.last().expect("a full batch").0.clone();
            k.push(0);
            k
        });
        for (key, value) in entries {
            let ci = match ci_of_key(Table::Series, &key) {
                Ok(ci) => ci,
                Err(e) => {
                    tracing::error!(error = %crate::error_chain(&e), "Skipped series with a corrupt key");
                    continue;
                }
            };
            let mut record: CiSeries = cmdb::decode(Table::Series, &key, &value)?;
            let before = record.clone();
            self.roll_ci(ci, &mut record, now_ms, &mut writes, &mut done)?;
            if record.blocks.iter().all(Vec::is_empty) {
                writes.delete(Table::Series, key);
            } else if record != before {
                writes.put(Table::Series, key, cmdb::encode(&record));
            }
        }
        writes.commit(self.store)?;
        Ok((next, done))
    }

    fn roll_ci(
        &self,
        ci: CiId,
        record: &mut CiSeries,
        now_ms: i64,
        writes: &mut Writes,
        done: &mut RolledUp,
    ) -> Result<(), MetricError> {
        let over = |start: i64, span: i64| start + span + self.settings.grace_ms <= now_ms;
        let ready: Vec<i64> = record
            .dirty
            .iter()
            .copied()
            .filter(|b| over(*b, Tier::Raw.block_ms()))
            .collect();
        type Buckets = BTreeMap<i64, BTreeMap<u32, Vec<Bucket>>>;
        let (mut fives, mut hours): (Buckets, Buckets) = Default::default();
        for start in ready {
            record.dirty.remove(&start);
            let (raw, logs) = self.raw_hour(ci, start, None)?;
            if !logs.is_empty() {
                writes.put(
                    Table::Samples,
                    block_key(ci, Tier::Raw, start),
                    block::encode_set(&raw),
                );
                for key in logs {
                    writes.delete(Table::Samples, key);
                }
                done.blocks_sealed += 1;
            }
            for (id, rows) in &raw {
                let samples = pairs(rows);
                let five = fives
                    .entry(Tier::FiveMinute.block_start(start))
                    .or_default();
                five.entry(*id)
                    .or_default()
                    .extend(buckets(Tier::FiveMinute, &samples));
                let hour = hours.entry(Tier::Hour.block_start(start)).or_default();
                hour.entry(*id)
                    .or_default()
                    .extend(buckets(Tier::Hour, &samples));
            }
            record.pending_days.insert(Tier::Day.bucket_start(start));
        }
        self.merge_buckets(ci, Tier::FiveMinute, fives, record, writes)?;
        self.merge_buckets(ci, Tier::Hour, hours, record, writes)?;

        // Day buckets, from the day's raw hours, once the day is over and
        // each of its hours is rolled up.
        let days: Vec<i64> = record
            .pending_days
            .iter()
            .copied()
            .filter(|d| {
                over(*d, DAY_MS)
                    && !record
                        .dirty
                        .iter()
                        .any(|b| Tier::Day.bucket_start(*b) == *d)
            })
            .collect();
        let mut day_buckets: Buckets = BTreeMap::new();
        for day in days {
            record.pending_days.remove(&day);
            let mut values: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
            for start in record
                .blocks(Tier::Raw)
                .iter()
                .filter(|b| Tier::Day.bucket_start(**b) == day)
            {
                // The store still holds what this pass is sealing (its
                // writes come at the end), in one form or the other.
                for (id, rows) in self.raw_hour(ci, *start, None)?.0 {
                    values.entry(id).or_default().extend(rows.column(1));
                }
            }
            let target = day_buckets.entry(Tier::Day.block_start(day)).or_default();
            for (id, v) in values {
                target.entry(id).or_default().push(Bucket::of(day, &v));
            }
        }
        self.merge_buckets(ci, Tier::Day, day_buckets, record, writes)?;

        // Retention: a block goes once all of it is older than its tier
        // keeps; a series goes once no tier can hold any of it.
        for tier in Tier::ALL {
            let cutoff = now_ms - self.settings.retention(tier);
            let (gone, kept): (Vec<i64>, Vec<i64>) = record.blocks[tier.index()]
                .iter()
                .partition(|b| **b + tier.block_ms() <= cutoff);
            for start in gone {
                if tier == Tier::Raw {
                    for (key, _) in self
                        .store
                        .scan_prefix(Table::Samples, &block_key(ci, tier, start))?
                    {
                        writes.delete(Table::Samples, key);
                    }
                }
                writes.delete(Table::Samples, block_key(ci, tier, start));
                record.dirty.remove(&start);
                done.blocks_dropped += 1;
            }
            record.blocks[tier.index()] = kept;
        }
        if record.blocks.iter().all(Vec::is_empty) {
            done.series_dropped += record.series.len();
            record.series.clear();
        }
        Ok(())
    }

    /// Writes `new` buckets into their blocks of `tier`, replacing any
    /// bucket of the same series with the same start.
    fn merge_buckets(
        &self,
        ci: CiId,
        tier: Tier,
        new: BTreeMap<i64, BTreeMap<u32, Vec<Bucket>>>,
        record: &mut CiSeries,
        writes: &mut Writes,
    ) -> Result<(), MetricError> {
        for (start, by_series) in new {
            let key = block_key(ci, tier, start);
            let mut block = match self.store.get(Table::Samples, &key)? {
                Some(bytes) => self.decode(ci, tier, start, &bytes, None)?,
                None => Block::new(),
            };
            for (id, list) in by_series {
                let rows = block.entry(id).or_insert_with(|| Columns::new(6));
                let replaced: BTreeSet<i64> = list.iter().map(|b| b.start_ms).collect();
                rows.retain_by_time(|t| !replaced.contains(&t));
                for b in list {
                    rows.push(&b.row())
                        .map_err(|e| self.damaged(ci, tier, start, e))?;
                }
                rows.sort_by_time();
            }
            writes.put(Table::Samples, key, block::encode_set(&block));
            record.add_block(tier, start);
        }
        Ok(())
    }

    /// The series of a CI, by name.
    pub fn settings(&self) -> &MetricSettings {
        self.settings
    }

    pub(super) fn get<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.store
            .get(table, key)?
            .map(|bytes| cmdb::decode(table, key, &bytes))
            .transpose()
    }

    pub(super) fn decode(
        &self,
        ci: CiId,
        tier: Tier,
        start: i64,
        bytes: &[u8],
        only: Option<u32>,
    ) -> Result<Block, MetricError> {
        block::decode_block(bytes, start, width(tier), only)
            .map_err(|e| self.damaged(ci, tier, start, e))
    }

    pub(super) fn damaged(
        &self,
        ci: CiId,
        tier: Tier,
        start: i64,
        source: block::BlockError,
    ) -> MetricError {
        MetricError::Block {
            ci,
            tier: tier.name(),
            start,
            source,
        }
    }
}

pub(super) fn pairs(rows: &Columns) -> Vec<(i64, i64)> {
    rows.column(0)
        .iter()
        .copied()
        .zip(rows.column(1).iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdb::Cmdb;
    use crate::reconcile::Report;
    use crate::store::sled_store::SledStore;
    use crate::test_support::{cmdb, enroll, inventory_report as inventory};
    use fathom_shared::wire::{FilesystemUse, InterfaceCounters};

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    /// A CMDB with one agent on one CI; reports numbered from 2.
    fn setup() -> (tempfile::TempDir, Cmdb<SledStore>, AgentId, CiId) {
        let (dir, cmdb) = cmdb();
        let (token, _) = cmdb.create_enrollment_token(i64::MAX, 1, 0).unwrap();
        enroll(&cmdb, 1, &token).unwrap();
        let agent = AgentId::from_public_key(&[1; 32]);
        let ci = cmdb
            .apply(agent, 1, "inv", &inventory("m1", None), T0)
            .unwrap()
            .ci_id
            .unwrap();
        (dir, cmdb, agent, ci)
    }

    /// A report at `at` with /var `used` percent full and `rx` bytes in, at
    /// `rx / 10` bit/s when `rx` is not zero.
    fn report(at: i64, used: u64, rx: u64) -> Report {
        Report::Metrics(Metrics {
            observed_at_ms: at,
            cpu_utilisation_pct: (at / 60_000 % 100) as f32,
            memory_used_bytes: 1 << 30,
            memory_total_bytes: 4 << 30,
            filesystems: vec![FilesystemUse {
                mount_point: "/var".into(),
                used_bytes: used,
                total_bytes: 100,
                ..FilesystemUse::default()
            }],
            interfaces: vec![InterfaceCounters {
                name: "eth0".into(),
                rx_bytes: rx,
                tx_bytes: 0,
                rx_bps: (rx > 0).then_some(rx as f64 / 10.0),
                tx_bps: (rx > 0).then_some(0.0),
                errors_per_s: None,
            }],
            ..Metrics::default()
        })
    }

    fn send(cmdb: &Cmdb<SledStore>, agent: AgentId, seq: u64, r: &Report) {
        cmdb.apply(agent, seq, &format!("d{seq}"), r, T0 + 10 * DAY_MS)
            .unwrap();
    }

    fn means(points: &[Point]) -> Vec<(i64, f64)> {
        points.iter().map(|p| (p.at_ms, p.mean)).collect()
    }

    #[test]
    fn a_corrupt_key_is_dropped_or_skipped_never_a_stop() {
        let (_d, cmdb, agent, ci) = setup();
        let settings = MetricSettings::default();
        let metrics = MetricStore::new(cmdb.store(), &settings);
        send(&cmdb, agent, 2, &report(T0, 50, 0));
        metrics.fold(1000, T0 + 10_000).unwrap();
        // Keys too short for the id they must start with, in the logs and
        // among the series (a damaged store, a bug in an old version).
        cmdb.store()
            .transaction::<(), ()>(|tx| {
                tx.insert(Table::Metrics, b"short", b"x")?;
                tx.insert(Table::DeviceMetrics, b"tiny", b"x")?;
                tx.insert(Table::Series, b"\x00", b"x")?;
                Ok(())
            })
            .unwrap();
        let folded = metrics.fold(1000, T0 + 20_000).unwrap();
        assert_eq!(folded.entries, 0);
        assert_eq!(cmdb.store().count(Table::Metrics).unwrap(), 0, "dropped");
        assert_eq!(
            cmdb.store().count(Table::DeviceMetrics).unwrap(),
            0,
            "dropped"
        );
        assert_eq!(
            metrics.cis().unwrap(),
            [ci],
            "the corrupt series is skipped"
        );
        metrics.roll_up(b"", 1000, T0 + DAY_MS).unwrap();
    }

    #[test]
    fn folding_moves_samples_from_the_log_into_series_with_rates() {
        let (_d, cmdb, agent, ci) = setup();
        let settings = MetricSettings::default();
        let metrics = MetricStore::new(cmdb.store(), &settings);
        send(&cmdb, agent, 2, &report(T0, 50, 0));
        send(&cmdb, agent, 3, &report(T0 + 10_000, 51, 1_000_000));
        let folded = metrics.fold(1000, T0 + 20_000).unwrap();
        assert_eq!((folded.entries, folded.waiting, folded.dropped), (2, 0, 0));
        assert!(
            cmdb.metrics_of(agent).unwrap().is_empty(),
            "the log is drained"
        );
        send(&cmdb, agent, 4, &report(T0 + 20_000, 52, 1_000_000));
        metrics.fold(1000, T0 + 30_000).unwrap();

        let series = metrics.series_of(ci).unwrap();
        let names: Vec<&str> = series.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "cpu.utilisation_pct",
                "fs.used_bytes:/var",
                "fs.used_pct:/var",
                "if.in_bps:eth0",
                "if.out_bps:eth0",
                "load.1",
                "load.15",
                "load.5",
                "memory.used_bytes",
                "memory.used_pct",
            ]
        );
        assert_eq!(
            metrics.latest(ci).unwrap()["fs.used_pct:/var"],
            (T0 + 20_000, 52.0)
        );
        let raw = metrics
            .points(ci, "fs.used_pct:/var", Tier::Raw, T0, T0 + HOUR_MS)
            .unwrap()
            .unwrap();
        assert_eq!(
            means(&raw),
            [(T0, 50.0), (T0 + 10_000, 51.0), (T0 + 20_000, 52.0)]
        );
        // The agent's rates, over two folds.
        let rx = metrics
            .points(ci, "if.in_bps:eth0", Tier::Raw, T0, T0 + HOUR_MS)
            .unwrap()
            .unwrap();
        assert_eq!(
            means(&rx),
            [(T0 + 10_000, 100_000.0), (T0 + 20_000, 100_000.0)]
        );
        assert!(metrics
            .points(ci, "nope", Tier::Raw, 0, i64::MAX)
            .unwrap()
            .is_none());
    }

    #[test]
    fn reports_of_an_agent_without_a_ci_wait_until_too_old() {
        let (_d, cmdb) = cmdb();
        let (token, _) = cmdb.create_enrollment_token(i64::MAX, 1, 0).unwrap();
        enroll(&cmdb, 1, &token).unwrap();
        let agent = AgentId::from_public_key(&[1; 32]);
        send(&cmdb, agent, 1, &report(T0, 50, 0));
        let settings = MetricSettings::default();
        let metrics = MetricStore::new(cmdb.store(), &settings);
        let folded = metrics.fold(1000, T0 + HOUR_MS).unwrap();
        assert_eq!((folded.entries, folded.waiting), (0, 1));
        assert_eq!(cmdb.metrics_of(agent).unwrap().len(), 1);
        let folded = metrics.fold(1000, T0 + 49 * HOUR_MS).unwrap();
        assert_eq!((folded.waiting, folded.dropped), (0, 1));
        assert!(cmdb.metrics_of(agent).unwrap().is_empty());
    }

    /// Three days of one sample a minute, rolled up as the days go by: each
    /// tier's buckets equal buckets made directly from the samples, and
    /// raw blocks go after 48 hours.
    #[test]
    fn roll_ups_equal_aggregates_of_the_raw_samples_and_raw_data_expires() {
        let (_d, cmdb, agent, ci) = setup();
        let settings = MetricSettings::default();
        let metrics = MetricStore::new(cmdb.store(), &settings);
        let minutes = 3 * 24 * 60;
        let mut expected: Vec<(i64, i64)> = Vec::new();
        for m in 0..minutes {
            let at = T0 + m * 60_000 + 1234;
            // A sawtooth with a slow climb: every bucket has a spread.
            let used = 20 + (m / 60) as u64 % 50 + (m % 7) as u64;
            send(&cmdb, agent, 2 + m as u64, &report(at, used, 0));
            expected.push((at, used as i64 * 100));
            if m % 240 == 239 {
                metrics.fold(10_000, at).unwrap();
                let (next, _) = metrics.roll_up(b"", 1000, at).unwrap();
                assert!(next.is_none());
            }
        }
        let now = T0 + minutes * 60_000 + 10 * 60_000;
        metrics.fold(10_000, now).unwrap();
        let (_, done) = metrics.roll_up(b"", 1000, now).unwrap();
        assert!(done.blocks_sealed > 0);

        let name = "fs.used_pct:/var";
        let unit = Unit::Percent;
        for tier in [Tier::FiveMinute, Tier::Hour, Tier::Day] {
            let got = metrics.points(ci, name, tier, T0, now).unwrap().unwrap();
            let want: Vec<Point> = buckets(tier, &expected)
                .iter()
                .map(|b| Point::of(unit, b))
                .collect();
            assert_eq!(got, want, "{}", tier.name());
        }
        // Read together, every series reads as it does alone (its blocks
        // decoded once, whole), at every tier; unknown names are left out.
        let names: Vec<String> = metrics.series_of(ci).unwrap().into_keys().collect();
        assert!(names.len() > 2, "{names:?}");
        let mut asked: Vec<&str> = names.iter().map(String::as_str).collect();
        asked.push("no.such_series");
        for tier in Tier::ALL {
            let together = metrics.points_of(ci, &asked, tier, T0, now).unwrap();
            assert_eq!(together.len(), names.len());
            for name in &names {
                let alone = metrics.points(ci, name, tier, T0, now).unwrap().unwrap();
                assert!(!alone.is_empty(), "{name} at {}", tier.name());
                assert_eq!(together[name], alone, "{name} at {}", tier.name());
            }
        }
        // Raw samples older than 48 hours are gone; the newer are all there.
        let raw = metrics
            .points(ci, name, Tier::Raw, T0, now)
            .unwrap()
            .unwrap();
        let kept: Vec<&(i64, i64)> = expected
            .iter()
            .filter(|(t, _)| Tier::Raw.block_start(*t) + HOUR_MS > now - settings.raw_ms)
            .collect();
        assert_eq!(raw.len(), kept.len());
        assert_eq!(raw[0].at_ms, kept[0].0);
        let record = metrics.ci_series(ci).unwrap().unwrap();
        assert_eq!(record.blocks(Tier::Raw).len(), 48);
        assert_eq!(record.blocks(Tier::FiveMinute).len(), 3);
        assert_eq!(record.series[name].first_ms, T0 + 1234);
    }

    #[test]
    fn a_late_sample_reaches_sealed_blocks_and_their_roll_ups() {
        let (_d, cmdb, agent, ci) = setup();
        let settings = MetricSettings::default();
        let metrics = MetricStore::new(cmdb.store(), &settings);
        for m in 0..60 {
            send(&cmdb, agent, 2 + m, &report(T0 + m as i64 * 60_000, 10, 0));
        }
        let now = T0 + 2 * HOUR_MS;
        metrics.fold(1000, now).unwrap();
        metrics.roll_up(b"", 1000, now).unwrap();
        let hour = |now| {
            metrics
                .points(ci, "fs.used_pct:/var", Tier::Hour, T0, now)
                .unwrap()
                .unwrap()
        };
        assert_eq!((hour(now)[0].count, hour(now)[0].max), (60, 10.0));
        // A spooled report from the middle of that hour, with a peak.
        send(&cmdb, agent, 100, &report(T0 + 30 * 60_000 + 5, 95, 0));
        metrics.fold(1000, now).unwrap();
        // Visible at once (rolled up on the fly), then stored.
        assert_eq!((hour(now)[0].count, hour(now)[0].max), (61, 95.0));
        metrics.roll_up(b"", 1000, now).unwrap();
        assert_eq!((hour(now)[0].count, hour(now)[0].max), (61, 95.0));
        let raw = metrics
            .points(ci, "fs.used_pct:/var", Tier::Raw, T0, now)
            .unwrap()
            .unwrap();
        assert_eq!(raw.len(), 61);
        assert!(raw.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    }

    #[test]
    fn a_ci_keeps_at_most_its_share_of_series() {
        let (_d, cmdb, agent, ci) = setup();
        let settings = MetricSettings {
            max_series_per_ci: 12,
            ..MetricSettings::default()
        };
        let metrics = MetricStore::new(cmdb.store(), &settings);
        let Report::Metrics(mut m) = report(T0, 10, 0) else {
            unreachable!()
        };
        // 10 mounts, 2 series each, on top of the 8 host series.
        m.filesystems = (0..10)
            .map(|i| FilesystemUse {
                mount_point: format!("/srv/{i}"),
                used_bytes: 1,
                total_bytes: 2,
                ..FilesystemUse::default()
            })
            .collect();
        send(&cmdb, agent, 2, &Report::Metrics(m));
        let folded = metrics.fold(1000, T0).unwrap();
        assert_eq!(metrics.series_of(ci).unwrap().len(), 12);
        assert_eq!(folded.samples + folded.dropped, 8 + 20 - 2);
    }

    /// Series whose CI stopped reporting lose their blocks tier by tier and
    /// are gone once the last daily block has expired.
    #[test]
    fn retention_drops_silent_series_entirely() {
        let (_d, cmdb, agent, ci) = setup();
        let settings = MetricSettings::default();
        let metrics = MetricStore::new(cmdb.store(), &settings);
        send(&cmdb, agent, 2, &report(T0, 10, 0));
        metrics.fold(1000, T0).unwrap();
        metrics
            .roll_up(b"", 1000, T0 + 2 * DAY_MS + HOUR_MS)
            .unwrap();
        let record = metrics.ci_series(ci).unwrap().unwrap();
        assert!(record.blocks(Tier::Raw).is_empty());
        assert_eq!(record.blocks(Tier::Day).len(), 1);
        let series = metrics.series_of(ci).unwrap().len();
        let (_, done) = metrics.roll_up(b"", 1000, T0 + 6 * 365 * DAY_MS).unwrap();
        assert_eq!(done.series_dropped, series);
        assert!(metrics.series_of(ci).unwrap().is_empty());
        assert_eq!(cmdb.store().count(Table::Samples).unwrap(), 0);
    }
}
