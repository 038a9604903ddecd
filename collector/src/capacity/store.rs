//! The metric store: every CI's utilization series, kept raw for 48 hours
//! and as roll-ups (5-minute for 30 days, hourly for 13 months, daily for
//! five years) after, in compressed blocks (`block`), with a bounded number
//! of series per CI so that a CI's disk use is bounded too.
//!
//! Reports reach it in two steps. Ingest writes each metrics report and
//! each device poll's rates to a log table (`metrics`, `device_metrics`) in
//! the report's own transaction, before the acknowledgement; that is what
//! makes them durable. [`MetricStore::fold`] later takes a batch of log
//! entries, appends their samples to the series' open blocks, and removes
//! the entries, in one transaction: a sample is either still in the log or
//! in its series, never both, never neither. [`MetricStore::roll_up`] seals
//! raw blocks whose hour is over, makes their roll-up buckets from the raw
//! samples, and drops blocks past their tier's retention.
//!
//! Both run on one background task (`capacity::task`) and nowhere else at
//! the same time: they read blocks outside their transaction and write
//! them inside, which is safe only because nothing else writes the
//! `series` and `samples` tables.
//!
//! Does not know about thresholds or forecasts (`capacity::analysis`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fathom_shared::ids::{AgentId, CiId};
use fathom_shared::wire::Metrics;
use serde::{Deserialize, Serialize};

use super::block::{self, Columns};
use super::rollup::{buckets, Bucket, Tier};
use super::series::{self, CounterState, Sample, Unit};
use crate::cmdb::device::DeviceSample;
use crate::cmdb::{self, AgentRecord};
use crate::store::{Store, StoreError, Table, TransactionError};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

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

/// What the store knows of one series without reading its blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesMeta {
    pub unit: Unit,
    pub first_ms: i64,
    pub last_ms: i64,
    /// The newest sample's value.
    pub last_value: f64,
    /// Start of every stored block, per tier (`Tier::index`), oldest first.
    blocks: [Vec<i64>; 4],
    /// Raw blocks written to since their roll-up buckets were made.
    dirty: BTreeSet<i64>,
    /// Days with a raw block rolled up but no day bucket made yet (the day
    /// was not over).
    pending_days: BTreeSet<i64>,
    /// The newest raw block's last row, when that block is open: enough to
    /// append to it without decoding it.
    tail: Option<(i64, [i64; 2])>,
}

impl SeriesMeta {
    fn new(unit: Unit, at_ms: i64) -> SeriesMeta {
        SeriesMeta {
            unit,
            first_ms: at_ms,
            last_ms: at_ms,
            last_value: 0.0,
            blocks: Default::default(),
            dirty: BTreeSet::new(),
            pending_days: BTreeSet::new(),
            tail: None,
        }
    }

    pub fn blocks(&self, tier: Tier) -> &[i64] {
        &self.blocks[tier.index()]
    }

    fn add_block(&mut self, tier: Tier, start: i64) {
        let list = &mut self.blocks[tier.index()];
        if let Err(at) = list.binary_search(&start) {
            list.insert(at, start);
        }
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
    fn of(unit: Unit, b: &Bucket) -> Point {
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
    #[error("stored block {key} of series {series} is damaged")]
    Block {
        series: String,
        key: String,
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

fn series_key(ci: CiId, name: &str) -> Vec<u8> {
    let mut k = cmdb::ci_key(ci).to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

fn block_key(ci: CiId, tier: Tier, name: &str, start: i64) -> Vec<u8> {
    let mut k = cmdb::ci_key(ci).to_vec();
    k.push(tier.index() as u8);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(&start.to_be_bytes());
    k
}

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
            Table::MetricState,
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
    store: &'a S,
    settings: &'a MetricSettings,
}

impl<'a, S: Store> MetricStore<'a, S> {
    pub fn new(store: &'a S, settings: &'a MetricSettings) -> MetricStore<'a, S> {
        MetricStore { store, settings }
    }

    /// Takes up to `batch` log entries into their series. Returns what it
    /// did; call again while `entries` is not zero to drain the log.
    pub fn fold(&self, batch: usize, now_ms: i64) -> Result<Folded, MetricError> {
        let mut done = Folded::default();
        let mut writes = Writes::default();
        let mut samples: BTreeMap<CiId, Vec<Sample>> = BTreeMap::new();
        let oldest = now_ms - self.settings.raw_ms;

        // Host metrics, by agent, oldest first within an agent.
        let mut agents: HashMap<AgentId, Option<CiId>> = HashMap::new();
        let mut states: HashMap<AgentId, CounterState> = HashMap::new();
        for (key, value) in self.store.scan_from(Table::Metrics, b"", batch)? {
            let agent = AgentId::from_bytes(key[..16].try_into().expect("agent id key"));
            let ci = match agents.get(&agent) {
                Some(ci) => *ci,
                None => {
                    let record: Option<AgentRecord> = self.get(Table::Agents, agent.as_bytes())?;
                    let ci = record.and_then(|a| a.ci_id);
                    agents.insert(agent, ci);
                    ci
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
            let state = match states.entry(agent) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    self.get(Table::MetricState, agent.as_bytes())?
                        .unwrap_or_default(),
                ),
            };
            samples
                .entry(ci)
                .or_default()
                .extend(series::host_samples(&metrics, state));
            writes.delete(Table::Metrics, key);
            done.entries += 1;
        }
        for (agent, state) in &states {
            writes.put(
                Table::MetricState,
                agent.as_bytes().to_vec(),
                cmdb::encode(state),
            );
        }
        // Device polls' rates.
        for (key, value) in self.store.scan_from(Table::DeviceMetrics, b"", batch)? {
            let ci = CiId::from_u64(u64::from_be_bytes(key[..8].try_into().expect("ci key")));
            let sample: DeviceSample = cmdb::decode(Table::DeviceMetrics, &key, &value)?;
            samples
                .entry(ci)
                .or_default()
                .extend(series::device_samples(&sample));
            writes.delete(Table::DeviceMetrics, key);
            done.entries += 1;
        }

        for (ci, mut list) in samples {
            list.sort_by(|a, b| a.name.cmp(&b.name).then(a.at_ms.cmp(&b.at_ms)));
            let mut names: BTreeSet<String> = self
                .store
                .scan_prefix(Table::Series, &cmdb::ci_key(ci))?
                .into_iter()
                .map(|(k, _)| String::from_utf8_lossy(&k[8..]).into_owned())
                .collect();
            for run in list.chunk_by(|a, b| a.name == b.name) {
                let name = &run[0].name;
                let fresh: Vec<&Sample> = run.iter().filter(|s| s.at_ms >= oldest).collect();
                done.dropped += run.len() - fresh.len();
                if fresh.is_empty() {
                    continue;
                }
                if !series::storable(name)
                    || (!names.contains(name) && names.len() >= self.settings.max_series_per_ci)
                {
                    tracing::warn!(%ci, series = %name, limit = self.settings.max_series_per_ci,
                        "Series not stored: name not storable, or the CI has as many series as allowed");
                    done.dropped += fresh.len();
                    continue;
                }
                names.insert(name.clone());
                self.append(ci, name, &fresh, &mut writes)?;
                done.samples += fresh.len();
            }
        }
        writes.commit(self.store)?;
        Ok(done)
    }

    /// Appends time-sorted samples to one series.
    fn append(
        &self,
        ci: CiId,
        name: &str,
        samples: &[&Sample],
        writes: &mut Writes,
    ) -> Result<(), MetricError> {
        let unit = Unit::of(name).expect("storable names have units");
        let skey = series_key(ci, name);
        let mut meta: SeriesMeta = self
            .get(Table::Series, &skey)?
            .unwrap_or_else(|| SeriesMeta::new(unit, samples[0].at_ms));
        let mut blocks: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
        for s in samples {
            let row = [s.at_ms, unit.quantize(s.value)];
            let start = Tier::Raw.block_start(s.at_ms);
            let bytes = match blocks.entry(start) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let key = block_key(ci, Tier::Raw, name, start);
                    e.insert(self.store.get(Table::Samples, &key)?.unwrap_or_default())
                }
            };
            // The block's last row after this sample, to append the next
            // one without decoding.
            let last = match meta.tail {
                Some((tail_block, last)) if tail_block == start && s.at_ms > last[0] => {
                    block::append_open(bytes, Some(&last), &row);
                    row
                }
                _ if bytes.is_empty() => {
                    block::append_open(bytes, None, &row);
                    row
                }
                _ => {
                    let sealed = !block::is_open(bytes);
                    let mut rows = self.decode(ci, Tier::Raw, name, start, bytes)?;
                    rows.push(&row)
                        .map_err(|e| self.damaged(ci, Tier::Raw, name, start, e))?;
                    rows.sort_by_time();
                    *bytes = if sealed {
                        rows.encode_sealed()
                    } else {
                        rows.encode_open()
                    };
                    let n = rows.rows() - 1;
                    [rows.column(0)[n], rows.column(1)[n]]
                }
            };
            // Only the newest block's tail is kept, and only while open.
            let newest = meta.blocks(Tier::Raw).last().is_none_or(|b| start >= *b);
            if newest && block::is_open(bytes) {
                meta.tail = Some((start, last));
            }
            meta.add_block(Tier::Raw, start);
            meta.dirty.insert(start);
            if s.at_ms >= meta.last_ms {
                meta.last_ms = s.at_ms;
                meta.last_value = unit.value(row[1]);
            }
            meta.first_ms = meta.first_ms.min(s.at_ms);
        }
        for (start, bytes) in blocks {
            writes.put(Table::Samples, block_key(ci, Tier::Raw, name, start), bytes);
        }
        writes.put(Table::Series, skey, cmdb::encode(&meta));
        Ok(())
    }

    /// Seals raw blocks whose hour (and grace) is over, makes their roll-up
    /// buckets, and drops what is past retention, for up to `batch` series
    /// from `from_key` on. Returns the key to continue from (`None` when
    /// the last series was reached) and what it did.
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
            let ci = CiId::from_u64(u64::from_be_bytes(key[..8].try_into().expect("ci key")));
            let name = String::from_utf8_lossy(&key[8..]).into_owned();
            let mut meta: SeriesMeta = cmdb::decode(Table::Series, &key, &value)?;
            let before = meta.clone();
            self.roll_series(ci, &name, &mut meta, now_ms, &mut writes, &mut done)?;
            if meta.blocks.iter().all(Vec::is_empty) {
                writes.delete(Table::Series, key);
                done.series_dropped += 1;
            } else if meta != before {
                writes.put(Table::Series, key, cmdb::encode(&meta));
            }
        }
        writes.commit(self.store)?;
        Ok((next, done))
    }

    fn roll_series(
        &self,
        ci: CiId,
        name: &str,
        meta: &mut SeriesMeta,
        now_ms: i64,
        writes: &mut Writes,
        done: &mut RolledUp,
    ) -> Result<(), MetricError> {
        let over = |start: i64, span: i64| start + span + self.settings.grace_ms <= now_ms;
        let ready: Vec<i64> = meta
            .dirty
            .iter()
            .copied()
            .filter(|b| over(*b, HOUR_MS))
            .collect();
        let mut fives: BTreeMap<i64, Vec<Bucket>> = BTreeMap::new();
        let mut hours: BTreeMap<i64, Vec<Bucket>> = BTreeMap::new();
        for start in ready {
            meta.dirty.remove(&start);
            let key = block_key(ci, Tier::Raw, name, start);
            let Some(bytes) = self.store.get(Table::Samples, &key)? else {
                continue;
            };
            let rows = self.decode(ci, Tier::Raw, name, start, &bytes)?;
            if block::is_open(&bytes) {
                writes.put(Table::Samples, key, rows.encode_sealed());
                done.blocks_sealed += 1;
                if meta.tail.is_some_and(|t| t.0 == start) {
                    meta.tail = None;
                }
            }
            let samples = pairs(&rows);
            if samples.is_empty() {
                continue;
            }
            let five = Tier::FiveMinute.block_start(start);
            fives
                .entry(five)
                .or_default()
                .extend(buckets(Tier::FiveMinute, &samples));
            let hour = Tier::Hour.block_start(start);
            hours
                .entry(hour)
                .or_default()
                .extend(buckets(Tier::Hour, &samples));
            meta.pending_days.insert(Tier::Day.bucket_start(start));
        }
        self.merge_buckets(ci, name, Tier::FiveMinute, fives, meta, writes)?;
        self.merge_buckets(ci, name, Tier::Hour, hours, meta, writes)?;

        // Day buckets, from the day's raw blocks, once the day is over.
        let days: Vec<i64> = meta
            .pending_days
            .iter()
            .copied()
            .filter(|d| {
                over(*d, DAY_MS) && !meta.dirty.iter().any(|b| Tier::Day.bucket_start(*b) == *d)
            })
            .collect();
        let mut day_buckets: BTreeMap<i64, Vec<Bucket>> = BTreeMap::new();
        for day in days {
            meta.pending_days.remove(&day);
            let mut samples = Vec::new();
            for start in meta
                .blocks(Tier::Raw)
                .iter()
                .filter(|b| Tier::Day.bucket_start(**b) == day)
            {
                let key = block_key(ci, Tier::Raw, name, *start);
                let bytes = match writes.put.get(&(Table::Samples, key.clone())) {
                    Some(b) => b.clone(),
                    None => self.store.get(Table::Samples, &key)?.unwrap_or_default(),
                };
                if !bytes.is_empty() {
                    samples.extend(pairs(&self.decode(ci, Tier::Raw, name, *start, &bytes)?));
                }
            }
            if !samples.is_empty() {
                let values: Vec<i64> = samples.iter().map(|s| s.1).collect();
                day_buckets
                    .entry(Tier::Day.block_start(day))
                    .or_default()
                    .push(Bucket::of(day, &values));
            }
        }
        self.merge_buckets(ci, name, Tier::Day, day_buckets, meta, writes)?;

        // Retention: a block goes once all of it is older than its tier
        // keeps.
        for tier in Tier::ALL {
            let cutoff = now_ms - self.settings.retention(tier);
            let (gone, kept): (Vec<i64>, Vec<i64>) = meta.blocks[tier.index()]
                .iter()
                .partition(|b| **b + tier.block_ms() <= cutoff);
            for start in gone {
                writes.delete(Table::Samples, block_key(ci, tier, name, start));
                meta.dirty.remove(&start);
                done.blocks_dropped += 1;
            }
            meta.blocks[tier.index()] = kept;
        }
        if meta
            .tail
            .is_some_and(|t| !meta.blocks(Tier::Raw).contains(&t.0))
        {
            meta.tail = None;
        }
        Ok(())
    }

    /// Writes `new` buckets into their blocks of `tier`, replacing any
    /// bucket with the same start.
    fn merge_buckets(
        &self,
        ci: CiId,
        name: &str,
        tier: Tier,
        new: BTreeMap<i64, Vec<Bucket>>,
        meta: &mut SeriesMeta,
        writes: &mut Writes,
    ) -> Result<(), MetricError> {
        for (start, list) in new {
            let key = block_key(ci, tier, name, start);
            let mut rows = match self.store.get(Table::Samples, &key)? {
                Some(bytes) => self.decode(ci, tier, name, start, &bytes)?,
                None => Columns::new(6),
            };
            let replaced: BTreeSet<i64> = list.iter().map(|b| b.start_ms).collect();
            rows.retain_by_time(|t| !replaced.contains(&t));
            for b in list {
                rows.push(&b.row())
                    .map_err(|e| self.damaged(ci, tier, name, start, e))?;
            }
            rows.sort_by_time();
            writes.put(Table::Samples, key, rows.encode_sealed());
            meta.add_block(tier, start);
        }
        Ok(())
    }

    /// The series of a CI, by name.
    pub fn series_of(&self, ci: CiId) -> Result<BTreeMap<String, SeriesMeta>, MetricError> {
        let mut out = BTreeMap::new();
        for (k, v) in self.store.scan_prefix(Table::Series, &cmdb::ci_key(ci))? {
            let name = String::from_utf8_lossy(&k[8..]).into_owned();
            out.insert(name, cmdb::decode(Table::Series, &k, &v)?);
        }
        Ok(out)
    }

    /// A series' points at `tier` within `[from_ms, to_ms)`. Hours not yet
    /// rolled up are rolled up on the fly from their raw samples, so the
    /// latest data shows at every tier. `None` when the CI has no such
    /// series.
    pub fn points(
        &self,
        ci: CiId,
        name: &str,
        tier: Tier,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<Vec<Point>>, MetricError> {
        let Some(meta): Option<SeriesMeta> = self.get(Table::Series, &series_key(ci, name))? else {
            return Ok(None);
        };
        let unit = meta.unit;
        let overlapping = |t: Tier| -> Vec<i64> {
            meta.blocks(t)
                .iter()
                .copied()
                .filter(|b| *b < to_ms && b + t.block_ms() > from_ms)
                .collect()
        };
        let raw_rows = |start: i64| -> Result<Vec<(i64, i64)>, MetricError> {
            let key = block_key(ci, Tier::Raw, name, start);
            Ok(match self.store.get(Table::Samples, &key)? {
                Some(bytes) => pairs(&self.decode(ci, Tier::Raw, name, start, &bytes)?),
                None => Vec::new(),
            })
        };
        let mut out: BTreeMap<i64, Bucket> = BTreeMap::new();
        if tier == Tier::Raw {
            for start in overlapping(Tier::Raw) {
                for (t, v) in raw_rows(start)? {
                    out.insert(t, Bucket::of(t, &[v]));
                }
            }
        } else {
            for start in overlapping(tier) {
                let key = block_key(ci, tier, name, start);
                if let Some(bytes) = self.store.get(Table::Samples, &key)? {
                    let rows = self.decode(ci, tier, name, start, &bytes)?;
                    for r in 0..rows.rows() {
                        let row: Vec<i64> = rows.row(r).collect();
                        out.insert(row[0], Bucket::from_row(&row));
                    }
                }
            }
            // Raw hours not rolled up yet (the current hour, late samples)
            // are rolled up here; for days, every raw hour of a day whose
            // bucket is not made yet, or is out of date.
            let raw = overlapping(Tier::Raw);
            let stale_days: BTreeSet<i64> = raw
                .iter()
                .filter(|b| meta.dirty.contains(b))
                .map(|b| Tier::Day.bucket_start(*b))
                .chain(meta.pending_days.iter().copied())
                .collect();
            let mut fresh: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
            for start in raw {
                let group = match tier {
                    Tier::Day if stale_days.contains(&Tier::Day.bucket_start(start)) => {
                        Tier::Day.bucket_start(start)
                    }
                    Tier::Day => continue,
                    _ if meta.dirty.contains(&start) => start,
                    _ => continue,
                };
                fresh.entry(group).or_default().extend(raw_rows(start)?);
            }
            for samples in fresh.values() {
                for b in buckets(tier, samples) {
                    out.insert(b.start_ms, b);
                }
            }
        }
        Ok(Some(
            out.into_values()
                .filter(|b| b.start_ms < to_ms && b.start_ms + tier.bucket_ms().max(1) > from_ms)
                .map(|b| Point::of(unit, &b))
                .collect(),
        ))
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.store
            .get(table, key)?
            .map(|bytes| cmdb::decode(table, key, &bytes))
            .transpose()
    }

    fn decode(
        &self,
        ci: CiId,
        tier: Tier,
        name: &str,
        start: i64,
        bytes: &[u8],
    ) -> Result<Columns, MetricError> {
        Columns::decode(bytes).map_err(|e| self.damaged(ci, tier, name, start, e))
    }

    fn damaged(
        &self,
        ci: CiId,
        tier: Tier,
        name: &str,
        start: i64,
        source: block::BlockError,
    ) -> MetricError {
        MetricError::Block {
            series: format!("{ci}/{name}"),
            key: format!("{} block at {start}", tier.name()),
            source,
        }
    }
}

fn pairs(rows: &Columns) -> Vec<(i64, i64)> {
    rows.column(0)
        .iter()
        .copied()
        .zip(rows.column(1).iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdb::test_support::{cmdb, enroll, inventory};
    use crate::cmdb::{Cmdb, Report};
    use crate::store::sled_store::SledStore;
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

    /// A report at `at` with /var `used` percent full and `rx` bytes in.
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
    fn folding_moves_samples_from_the_log_into_series_with_rates() {
        let (_d, cmdb, agent, ci) = setup();
        let settings = MetricSettings::default();
        let metrics = MetricStore::new(cmdb.store(), &settings);
        send(&cmdb, agent, 2, &report(T0, 50, 1000));
        send(&cmdb, agent, 3, &report(T0 + 10_000, 51, 126_000));
        let folded = metrics.fold(1000, T0 + 20_000).unwrap();
        assert_eq!((folded.entries, folded.waiting, folded.dropped), (2, 0, 0));
        assert!(
            cmdb.metrics_of(agent).unwrap().is_empty(),
            "the log is drained"
        );
        // The counters of the last report are kept for the next fold.
        send(&cmdb, agent, 4, &report(T0 + 20_000, 52, 251_000));
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
        assert_eq!(series["fs.used_pct:/var"].last_value, 52.0);
        let raw = metrics
            .points(ci, "fs.used_pct:/var", Tier::Raw, T0, T0 + HOUR_MS)
            .unwrap()
            .unwrap();
        assert_eq!(
            means(&raw),
            [(T0, 50.0), (T0 + 10_000, 51.0), (T0 + 20_000, 52.0)]
        );
        // 125 000 bytes in 10 s, both times: 100 kbit/s, the second across
        // two folds.
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
        let meta = &metrics.series_of(ci).unwrap()[name];
        assert_eq!(meta.blocks(Tier::Raw).len(), 48);
        assert_eq!(meta.blocks(Tier::FiveMinute).len(), 3);
        assert_eq!(meta.first_ms, T0 + 1234);
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
        let meta = &metrics.series_of(ci).unwrap()["fs.used_pct:/var"];
        assert!(meta.blocks(Tier::Raw).is_empty());
        assert_eq!(meta.blocks(Tier::Day).len(), 1);
        let series = metrics.series_of(ci).unwrap().len();
        let (_, done) = metrics.roll_up(b"", 1000, T0 + 6 * 365 * DAY_MS).unwrap();
        assert_eq!(done.series_dropped, series);
        assert!(metrics.series_of(ci).unwrap().is_empty());
        assert_eq!(cmdb.store().count(Table::Samples).unwrap(), 0);
    }
}
