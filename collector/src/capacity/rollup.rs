//! Roll-up buckets: a period's count, min, mean, max and 95th percentile,
//! and the tiers they are kept at.
//!
//! Buckets of one tier are made from raw samples while those are kept
//! (48 hours by default), so every tier's p95 is exact. Buckets merge
//! (coarser steps in queries): count, min, max and mean merge exactly; a
//! merged p95 is the largest p95 merged, an upper bound, since percentiles
//! do not compose.

use fathom_support::time::{DAY_MS, HOUR_MS, MINUTE_MS};
use serde::{Deserialize, Serialize};

/// The resolutions a series is kept at, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Raw,
    FiveMinute,
    Hour,
    Day,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Raw, Tier::FiveMinute, Tier::Hour, Tier::Day];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The width of one bucket (raw samples have none).
    pub fn bucket_ms(self) -> i64 {
        match self {
            Tier::Raw => 0,
            Tier::FiveMinute => 5 * MINUTE_MS,
            Tier::Hour => HOUR_MS,
            Tier::Day => DAY_MS,
        }
    }

    /// The period one stored block of this tier covers: an hour of raw
    /// samples, a day of 5-minute buckets, 30 days of hours, 360 of days.
    pub fn block_ms(self) -> i64 {
        match self {
            Tier::Raw => HOUR_MS,
            Tier::FiveMinute => DAY_MS,
            Tier::Hour => 30 * DAY_MS,
            Tier::Day => 360 * DAY_MS,
        }
    }

    pub fn block_start(self, at_ms: i64) -> i64 {
        at_ms.div_euclid(self.block_ms()) * self.block_ms()
    }

    pub fn bucket_start(self, at_ms: i64) -> i64 {
        match self {
            Tier::Raw => at_ms,
            t => at_ms.div_euclid(t.bucket_ms()) * t.bucket_ms(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::FiveMinute => "5m",
            Tier::Hour => "1h",
            Tier::Day => "1d",
        }
    }
}

/// One bucket, in the series' quantized units (see `series::Unit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub start_ms: i64,
    pub count: i64,
    pub min: i64,
    /// The mean, rounded to the nearest quantum.
    pub mean: i64,
    pub max: i64,
    pub p95: i64,
}

impl Bucket {
    /// The bucket of `values` (not empty) starting at `start_ms`.
    pub fn of(start_ms: i64, values: &[i64]) -> Bucket {
        assert!(!values.is_empty(), "a bucket of nothing");
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let sum: i128 = values.iter().map(|v| i128::from(*v)).sum();
        Bucket {
            start_ms,
            count: values.len() as i64,
            min: sorted[0],
            mean: rounded_div(sum, values.len() as i128),
            max: sorted[sorted.len() - 1],
            p95: percentile(&sorted, 95.0),
        }
    }

    /// One bucket from several, starting at `start_ms`: exact for count,
    /// min, max and (to the quantum) mean; p95 is the largest p95.
    pub fn merge(start_ms: i64, parts: &[Bucket]) -> Bucket {
        assert!(!parts.is_empty(), "a merge of nothing");
        let count: i64 = parts.iter().map(|b| b.count).sum();
        let sum: i128 = parts
            .iter()
            .map(|b| i128::from(b.mean) * i128::from(b.count))
            .sum();
        Bucket {
            start_ms,
            count,
            min: parts.iter().map(|b| b.min).min().expect("not empty"),
            mean: rounded_div(sum, i128::from(count.max(1))),
            max: parts.iter().map(|b| b.max).max().expect("not empty"),
            p95: parts.iter().map(|b| b.p95).max().expect("not empty"),
        }
    }

    pub fn row(&self) -> [i64; 6] {
        [
            self.start_ms,
            self.count,
            self.min,
            self.mean,
            self.max,
            self.p95,
        ]
    }

    pub fn from_row(row: &[i64]) -> Bucket {
        Bucket {
            start_ms: row[0],
            count: row[1],
            min: row[2],
            mean: row[3],
            max: row[4],
            p95: row[5],
        }
    }
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[i64], pct: f64) -> i64 {
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The nearest-rank percentile of sorted floating-point values.
pub fn percentile_f64(sorted: &[f64], pct: f64) -> f64 {
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn rounded_div(sum: i128, n: i128) -> i64 {
    let q = sum.div_euclid(n);
    let r = sum.rem_euclid(n);
    (if 2 * r >= n { q + 1 } else { q }) as i64
}

/// Buckets of `tier` from time-sorted `(time, value)` samples.
pub fn buckets(tier: Tier, samples: &[(i64, i64)]) -> Vec<Bucket> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < samples.len() {
        let start = tier.bucket_start(samples[i].0);
        let end = samples[i..]
            .iter()
            .position(|s| tier.bucket_start(s.0) != start)
            .map_or(samples.len(), |p| i + p);
        let values: Vec<i64> = samples[i..end].iter().map(|s| s.1).collect();
        out.push(Bucket::of(start, &values));
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_bucket_of_known_values() {
        let values: Vec<i64> = (1..=100).collect();
        let b = Bucket::of(0, &values);
        assert_eq!((b.count, b.min, b.max, b.p95), (100, 1, 100, 95));
        // 50.5 rounds up.
        assert_eq!(b.mean, 51);
        assert_eq!(Bucket::of(0, &[-3, -4]).mean, -3);
        assert_eq!(percentile(&[7], 95.0), 7);
        assert_eq!(percentile(&[1, 2], 95.0), 2);
    }

    #[test]
    fn tiers_align_buckets_and_blocks() {
        let t = 1_700_000_123_456;
        assert_eq!(Tier::FiveMinute.bucket_start(t) % 300_000, 0);
        assert!(Tier::FiveMinute.bucket_start(t) <= t);
        assert_eq!(Tier::Raw.block_start(t) % 3_600_000, 0);
        assert_eq!(Tier::Day.bucket_start(-1), -86_400_000);
        assert_eq!(Tier::Raw.bucket_start(t), t);
    }

    proptest! {
        /// The roll-up law the store relies on: hourly buckets merged from
        /// 5-minute buckets equal hourly buckets of the raw samples, for
        /// count, min, max, and mean to within one quantum (each 5-minute
        /// mean is rounded once).
        #[test]
        fn aggregates_of_aggregates_equal_aggregates_of_raw(
            values in proptest::collection::vec((0i64..3_600_000, -1_000_000i64..1_000_000), 1..400)
        ) {
            let mut samples = values;
            samples.sort_by_key(|s| s.0);
            let hour = buckets(Tier::Hour, &samples);
            let fives = buckets(Tier::FiveMinute, &samples);
            prop_assert_eq!(hour.len(), 1);
            let merged = Bucket::merge(0, &fives);
            let raw = hour[0];
            prop_assert_eq!(merged.count, raw.count);
            prop_assert_eq!(merged.min, raw.min);
            prop_assert_eq!(merged.max, raw.max);
            prop_assert!((merged.mean - raw.mean).abs() <= 1, "{} vs {}", merged.mean, raw.mean);
            prop_assert!(merged.p95 >= raw.p95);
            let counted: i64 = fives.iter().map(|b| b.count).sum();
            prop_assert_eq!(counted, samples.len() as i64);
        }
    }
}
