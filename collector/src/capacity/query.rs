//! Reading the metric store: its CIs and their series, the latest values,
//! and points at a tier over a period (raw samples or roll-up buckets,
//! whichever the tier holds, merged across blocks).

use std::collections::{BTreeMap, BTreeSet};

use fathom_shared::ids::CiId;

use super::block::Block;
use super::rollup::{buckets, Bucket, Tier};
use super::series::Unit;
use super::store::{block_key, pairs, CiSeries, MetricError, MetricStore, Point, SeriesMeta};
use crate::cmdb::{self, ci_of_key};
use crate::store::{Store, Table};

impl<S: Store> MetricStore<'_, S> {
    /// Every CI with series, in id order.
    pub fn cis(&self) -> Result<Vec<CiId>, MetricError> {
        Ok(self
            .store
            .scan_prefix(Table::Series, b"")?
            .into_iter()
            .filter_map(|(k, _)| {
                ci_of_key(Table::Series, &k)
                    .inspect_err(|e| {
                        tracing::error!(error = %crate::error_chain(e), "Skipped series with a corrupt key")
                    })
                    .ok()
            })
            .collect())
    }

    pub fn series_of(&self, ci: CiId) -> Result<BTreeMap<String, SeriesMeta>, MetricError> {
        Ok(self.ci_series(ci)?.map(|r| r.series).unwrap_or_default())
    }

    /// The newest raw sample of each of a CI's series still in the raw tier
    /// (time, value), looking back hour by hour from the newest.
    pub fn latest(&self, ci: CiId) -> Result<BTreeMap<String, (i64, f64)>, MetricError> {
        let Some(record) = self.ci_series(ci)? else {
            return Ok(BTreeMap::new());
        };
        let names: BTreeMap<u32, (&String, Unit)> = record
            .series
            .iter()
            .map(|(name, m)| (m.id, (name, m.unit)))
            .collect();
        let mut out = BTreeMap::new();
        for start in record.blocks(Tier::Raw).iter().rev() {
            if out.len() == names.len() {
                break;
            }
            for (id, rows) in self.raw_hour(ci, *start, None)?.0 {
                let (Some((name, unit)), Some(last)) = (names.get(&id), rows.rows().checked_sub(1))
                else {
                    continue;
                };
                out.entry((*name).clone())
                    .or_insert((rows.column(0)[last], unit.value(rows.column(1)[last])));
            }
        }
        Ok(out)
    }

    /// A CI's record: its series and its blocks.
    pub fn ci_series(&self, ci: CiId) -> Result<Option<CiSeries>, MetricError> {
        Ok(self.get(Table::Series, &cmdb::ci_key(ci))?)
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
        Ok(self
            .points_of(ci, &[name], tier, from_ms, to_ms)?
            .remove(name))
    }

    /// Several series of one CI at once, as [`Self::points`]: each block is
    /// read and decoded once for all of them. Series the CI does not have
    /// are left out.
    pub fn points_of(
        &self,
        ci: CiId,
        names: &[&str],
        tier: Tier,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<BTreeMap<String, Vec<Point>>, MetricError> {
        let Some(record) = self.ci_series(ci)? else {
            return Ok(BTreeMap::new());
        };
        // Wanted series by id: name, unit, buckets by start.
        let mut wanted: BTreeMap<u32, (&str, Unit, BTreeMap<i64, Bucket>)> = names
            .iter()
            .filter_map(|n| {
                record
                    .series
                    .get(*n)
                    .map(|m| (m.id, (*n, m.unit, BTreeMap::new())))
            })
            .collect();
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        // One series: decode only its columns; more: every column once.
        let only = match wanted.keys().collect::<Vec<_>>()[..] {
            [id] => Some(*id),
            _ => None,
        };
        let overlapping = |t: Tier| -> Vec<i64> {
            record
                .blocks(t)
                .iter()
                .copied()
                .filter(|b| *b < to_ms && b + t.block_ms() > from_ms)
                .collect()
        };
        let block_of = |t: Tier, start: i64| -> Result<Block, MetricError> {
            if t == Tier::Raw {
                return Ok(self.raw_hour(ci, start, only)?.0);
            }
            match self.store.get(Table::Samples, &block_key(ci, t, start))? {
                Some(bytes) => self.decode(ci, t, start, &bytes, only),
                None => Ok(Block::new()),
            }
        };
        if tier == Tier::Raw {
            for start in overlapping(Tier::Raw) {
                for (id, rows) in block_of(Tier::Raw, start)? {
                    if let Some((_, _, out)) = wanted.get_mut(&id) {
                        for (t, v) in pairs(&rows) {
                            out.insert(t, Bucket::of(t, &[v]));
                        }
                    }
                }
            }
        } else {
            for start in overlapping(tier) {
                for (id, rows) in block_of(tier, start)? {
                    if let Some((_, _, out)) = wanted.get_mut(&id) {
                        for r in 0..rows.rows() {
                            let row: Vec<i64> = rows.row(r).collect();
                            out.insert(row[0], Bucket::from_row(&row));
                        }
                    }
                }
            }
            // Raw hours not rolled up yet (the current hour, late samples)
            // are rolled up here; for days, every raw hour of a day whose
            // bucket is not made yet, or is out of date.
            let raw = overlapping(Tier::Raw);
            let stale_days: BTreeSet<i64> = raw
                .iter()
                .filter(|b| record.dirty.contains(b))
                .map(|b| Tier::Day.bucket_start(*b))
                .chain(record.pending_days.iter().copied())
                .collect();
            let mut fresh: BTreeMap<(u32, i64), Vec<(i64, i64)>> = BTreeMap::new();
            for start in raw {
                let group = match tier {
                    Tier::Day if stale_days.contains(&Tier::Day.bucket_start(start)) => {
                        Tier::Day.bucket_start(start)
                    }
                    Tier::Day => continue,
                    _ if record.dirty.contains(&start) => start,
                    _ => continue,
                };
                for (id, rows) in block_of(Tier::Raw, start)? {
                    if wanted.contains_key(&id) {
                        fresh.entry((id, group)).or_default().extend(pairs(&rows));
                    }
                }
            }
            for ((id, _), samples) in &fresh {
                if let Some((_, _, out)) = wanted.get_mut(id) {
                    for b in buckets(tier, samples) {
                        out.insert(b.start_ms, b);
                    }
                }
            }
        }
        Ok(wanted
            .into_values()
            .map(|(name, unit, out)| {
                let points = out
                    .into_values()
                    .filter(|b| {
                        b.start_ms < to_ms && b.start_ms + tier.bucket_ms().max(1) > from_ms
                    })
                    .map(|b| Point::of(unit, &b))
                    .collect();
                (name.to_owned(), points)
            })
            .collect())
    }

    pub(super) fn raw_hour(
        &self,
        ci: CiId,
        start: i64,
        only: Option<u32>,
    ) -> Result<(Block, Vec<Vec<u8>>), MetricError> {
        let prefix = block_key(ci, Tier::Raw, start);
        let mut block = Block::new();
        let mut logs = Vec::new();
        // The sealed block's key is the prefix itself: it comes first.
        for (key, bytes) in self.store.scan_prefix(Table::Samples, &prefix)? {
            for (id, rows) in self.decode(ci, Tier::Raw, start, &bytes, only)? {
                match block.entry(id) {
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(rows);
                    }
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        e.get_mut().extend(&rows)
                    }
                }
            }
            if key.len() > prefix.len() {
                logs.push(key);
            }
        }
        for c in block.values_mut() {
            c.sort_by_time();
        }
        Ok((block, logs))
    }
}
