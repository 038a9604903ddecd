//! The bytes of stored metric blocks. A block holds one period of one
//! tier for **all** the series of a CI, so that taking in a report costs
//! one write, not one per series.
//!
//! In memory a block is a [`Block`]: each series' rows ([`Columns`], a
//! table of `i64` columns: raw samples are time and value; roll-up buckets
//! are time, count, min, mean, max, p95), by series id. Stored, it takes
//! one of two forms:
//!
//! - **log**, for the raw hour still being written: `(series id, time
//!   offset, value)` rows appended as reports come, with nothing read to
//!   append ([`append_log`]): about 6–8 bytes a sample, for an hour;
//! - **set**, once sealed ([`encode_set`]): the times of the block once (a
//!   CI's series are sampled together, so they share them), which times
//!   each series has, then each value column of every series end to end.
//!   Each column is compressed with pco (delta and entropy coding): under
//!   a byte for a time, one or two for a value.
//!
//! Decoding caps times, series and values before allocating, and names
//! what was wrong: a block comes from our own store, but a damaged store
//! must give an error, not a panic or a huge allocation.

use std::collections::BTreeMap;

const LOG: u8 = 2;
const SET: u8 = 3;

/// Rows (times, or samples of one series) in one block at most.
pub const MAX_ROWS: usize = 86_400;
/// Columns in one row at most.
pub const MAX_COLUMNS: usize = 8;
/// Series in one block at most.
pub const MAX_SERIES: usize = 100_000;
/// Values in one block at most (samples in a log block; values of a
/// column of a set): an hour of one sample a second for 500 series.
pub const MAX_VALUES: usize = 2_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block is empty")]
    Empty,
    #[error("unknown block form {0}")]
    Form(u8),
    #[error("block rows have {found} columns where {expected} are expected")]
    Columns { found: usize, expected: usize },
    #[error("block declares {0} times (at most {MAX_ROWS})")]
    Rows(usize),
    #[error("block holds {0} values (at most {MAX_VALUES})")]
    Values(usize),
    #[error("block holds {0} series (at most {MAX_SERIES})")]
    Series(usize),
    #[error("series {0} appears twice in the block")]
    DuplicateSeries(u32),
    #[error("block ends inside {0}")]
    Truncated(&'static str),
    #[error("{what} does not decompress: {message}")]
    Compressed { what: &'static str, message: String },
    #[error("{what} has {found} values where the block declares {expected}")]
    Length {
        what: &'static str,
        found: usize,
        expected: usize,
    },
    #[error("{0} bytes follow the block's end")]
    Trailing(usize),
}

/// One series' rows in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    columns: Vec<Vec<i64>>,
}

impl Columns {
    pub fn new(width: usize) -> Columns {
        assert!((2..=MAX_COLUMNS).contains(&width), "block width {width}");
        Columns {
            columns: vec![Vec::new(); width],
        }
    }

    pub fn width(&self) -> usize {
        self.columns.len()
    }

    pub fn rows(&self) -> usize {
        self.columns[0].len()
    }

    pub fn column(&self, i: usize) -> &[i64] {
        &self.columns[i]
    }

    pub fn row(&self, r: usize) -> impl Iterator<Item = i64> + '_ {
        self.columns.iter().map(move |c| c[r])
    }

    pub fn push(&mut self, row: &[i64]) -> Result<(), BlockError> {
        if row.len() != self.width() {
            return Err(BlockError::Columns {
                found: row.len(),
                expected: self.width(),
            });
        }
        for (c, v) in self.columns.iter_mut().zip(row) {
            c.push(*v);
        }
        Ok(())
    }

    /// Appends `other`'s rows (of the same width) after these.
    pub fn extend(&mut self, other: &Columns) {
        for (c, o) in self.columns.iter_mut().zip(&other.columns) {
            c.extend_from_slice(o);
        }
    }

    /// Keeps the rows for which `keep` holds, given each row's first
    /// column (the time).
    pub fn retain_by_time(&mut self, keep: impl Fn(i64) -> bool) {
        let keep: Vec<bool> = self.columns[0].iter().map(|t| keep(*t)).collect();
        for c in &mut self.columns {
            let mut i = 0;
            c.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
    }

    /// Sorts the rows by time, keeping the last written of rows with the
    /// same time (a report sent twice under two sequence numbers).
    pub fn sort_by_time(&mut self) {
        let n = self.rows();
        let mut order: Vec<usize> = (0..n).collect();
        // Stable, then keep the last of each run of equal times.
        order.sort_by_key(|&r| self.columns[0][r]);
        let mut kept: Vec<usize> = Vec::with_capacity(n);
        for r in order {
            match kept.last_mut() {
                Some(last) if self.columns[0][*last] == self.columns[0][r] => *last = r,
                _ => kept.push(r),
            }
        }
        for c in &mut self.columns {
            *c = kept.iter().map(|&r| c[r]).collect();
        }
    }
}

/// A CI's block: each series' rows, by series id.
pub type Block = BTreeMap<u32, Columns>;

/// Appends samples to a log block's bytes (empty for a new block) without
/// reading what is there. `start` is the block's start; times are stored
/// as offsets from it (a sample before it is a caller's bug).
pub fn append_log(bytes: &mut Vec<u8>, start: i64, samples: &[(u32, i64, i64)]) {
    if bytes.is_empty() {
        bytes.push(LOG);
    }
    for (id, at, value) in samples {
        debug_assert!(*at >= start, "a sample before its block");
        put_varint(bytes, u64::from(*id));
        put_varint(bytes, (*at - start) as u64);
        put_varint(bytes, zigzag(*value));
    }
}

/// Whether a block is in the log form (being written).
pub fn is_log(bytes: &[u8]) -> bool {
    bytes.first() == Some(&LOG)
}

/// The sealed form of a CI's block. Every series must have the same width.
pub fn encode_set(block: &Block) -> Vec<u8> {
    let width = block.values().next().map_or(2, Columns::width);
    let mut times: Vec<i64> = block.values().flat_map(|c| c.column(0)).copied().collect();
    times.sort_unstable();
    times.dedup();
    let mut out = vec![SET, width as u8];
    put_varint(&mut out, times.len() as u64);
    // Times arrive at a regular interval: their deltas of deltas are
    // near zero.
    pack(&mut out, &times, 2);
    put_varint(&mut out, block.len() as u64);
    for (id, columns) in block {
        assert_eq!(columns.width(), width, "one width per block");
        put_varint(&mut out, u64::from(*id));
        if columns.rows() == times.len() {
            out.push(0);
        } else {
            out.push(1);
            let mut bits = vec![0u8; times.len().div_ceil(8)];
            for t in columns.column(0) {
                let i = times.binary_search(t).expect("a time of the block");
                bits[i / 8] |= 1 << (i % 8);
            }
            out.extend_from_slice(&bits);
        }
    }
    for c in 1..width {
        let values: Vec<i64> = block.values().flat_map(|s| s.column(c)).copied().collect();
        // Values move from the last: their deltas are small.
        pack(&mut out, &values, 1);
    }
    out
}

/// Decodes a block of either form. `width` is the tier's row width (2 for
/// raw samples, 6 for roll-ups); `only` keeps one series. Rows of a log
/// block come out sorted by time per series, the last written kept of two
/// at the same time.
pub fn decode_block(
    bytes: &[u8],
    start: i64,
    width: usize,
    only: Option<u32>,
) -> Result<Block, BlockError> {
    let (&form, rest) = bytes.split_first().ok_or(BlockError::Empty)?;
    match form {
        LOG => decode_log(rest, start, width, only),
        SET => decode_set(rest, width, only),
        other => Err(BlockError::Form(other)),
    }
}

fn decode_log(
    mut rest: &[u8],
    start: i64,
    width: usize,
    only: Option<u32>,
) -> Result<Block, BlockError> {
    if width != 2 {
        return Err(BlockError::Columns {
            found: 2,
            expected: width,
        });
    }
    let mut block = Block::new();
    let mut samples = 0usize;
    while !rest.is_empty() {
        samples += 1;
        if samples > MAX_VALUES {
            return Err(BlockError::Values(samples));
        }
        let id = get_varint(&mut rest, "a series id")?;
        let offset = get_varint(&mut rest, "a time")?;
        let value = unzigzag(get_varint(&mut rest, "a value")?);
        let id = u32::try_from(id).map_err(|_| BlockError::Truncated("a series id"))?;
        if only.is_some_and(|o| o != id) {
            continue;
        }
        if !block.contains_key(&id) && block.len() >= MAX_SERIES {
            return Err(BlockError::Series(block.len() + 1));
        }
        let at = start.wrapping_add(offset as i64);
        block
            .entry(id)
            .or_insert_with(|| Columns::new(2))
            .push(&[at, value])?;
    }
    for columns in block.values_mut() {
        columns.sort_by_time();
    }
    Ok(block)
}

fn decode_set(mut rest: &[u8], width: usize, only: Option<u32>) -> Result<Block, BlockError> {
    let (&found, tail) = rest
        .split_first()
        .ok_or(BlockError::Truncated("the header"))?;
    rest = tail;
    if usize::from(found) != width {
        return Err(BlockError::Columns {
            found: found.into(),
            expected: width,
        });
    }
    let n_times = get_varint(&mut rest, "the time count")? as usize;
    if n_times > MAX_ROWS {
        return Err(BlockError::Rows(n_times));
    }
    let times = unpack(&mut rest, n_times, "the times")?;
    let n_series = get_varint(&mut rest, "the series count")? as usize;
    if n_series > MAX_SERIES {
        return Err(BlockError::Series(n_series));
    }
    // Each series' id and the indexes of its times.
    let mut series: Vec<(u32, Option<Vec<usize>>)> = Vec::with_capacity(n_series);
    let mut total = 0usize;
    for _ in 0..n_series {
        let id = get_varint(&mut rest, "a series id")?;
        let id = u32::try_from(id).map_err(|_| BlockError::Truncated("a series id"))?;
        if series.last().is_some_and(|(last, _)| *last >= id) {
            return Err(BlockError::DuplicateSeries(id));
        }
        let (&presence, tail) = rest
            .split_first()
            .ok_or(BlockError::Truncated("a series' times"))?;
        rest = tail;
        let indexes = match presence {
            0 => None,
            1 => {
                let len = n_times.div_ceil(8);
                if len > rest.len() {
                    return Err(BlockError::Truncated("a series' times"));
                }
                let (bits, tail) = rest.split_at(len);
                rest = tail;
                Some(
                    (0..n_times)
                        .filter(|i| bits[i / 8] & (1 << (i % 8)) != 0)
                        .collect(),
                )
            }
            other => return Err(BlockError::Form(other)),
        };
        total += indexes.as_ref().map_or(n_times, Vec::len);
        if total > MAX_VALUES {
            return Err(BlockError::Values(total));
        }
        series.push((id, indexes));
    }
    let mut value_columns = Vec::with_capacity(width - 1);
    for _ in 1..width {
        value_columns.push(unpack(&mut rest, total, "a value column")?);
    }
    if !rest.is_empty() {
        return Err(BlockError::Trailing(rest.len()));
    }
    let mut block = Block::new();
    let mut offset = 0;
    for (id, indexes) in series {
        let rows = indexes.as_ref().map_or(n_times, Vec::len);
        if only.is_none_or(|o| o == id) {
            let mut columns = vec![match &indexes {
                None => times.clone(),
                Some(ix) => ix.iter().map(|&i| times[i]).collect(),
            }];
            for values in &value_columns {
                columns.push(values[offset..offset + rows].to_vec());
            }
            block.insert(id, Columns { columns });
        }
        offset += rows;
    }
    Ok(block)
}

/// Appends a column, compressed with pco (deltas of `order`), behind its
/// length in bytes.
fn pack(out: &mut Vec<u8>, values: &[i64], order: usize) {
    if values.is_empty() {
        put_varint(out, 0);
        return;
    }
    // The delta order is known, which spares pco trying each.
    let config = pco::ChunkConfig::default().with_delta_spec(pco::DeltaSpec::TryConsecutive(order));
    // pco fails only on an invalid configuration; this one is valid for
    // any slice of i64.
    let packed = pco::standalone::simple_compress(values, &config).expect("valid pco config");
    put_varint(out, packed.len() as u64);
    out.extend_from_slice(&packed);
}

/// Reads a column of `n` values (`n` already capped) written by [`pack`].
fn unpack(input: &mut &[u8], n: usize, what: &'static str) -> Result<Vec<i64>, BlockError> {
    let len = get_varint(input, what)? as usize;
    if len > input.len() {
        return Err(BlockError::Truncated(what));
    }
    let (packed, rest) = input.split_at(len);
    *input = rest;
    if n == 0 && packed.is_empty() {
        return Ok(Vec::new());
    }
    let mut values = vec![0i64; n];
    let progress = pco::standalone::simple_decompress_into(packed, &mut values).map_err(|e| {
        BlockError::Compressed {
            what,
            message: e.to_string(),
        }
    })?;
    if progress.n_processed != n || !progress.finished {
        return Err(BlockError::Length {
            what,
            found: progress.n_processed,
            expected: n,
        });
    }
    Ok(values)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(input: &mut &[u8], what: &'static str) -> Result<u64, BlockError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first().ok_or(BlockError::Truncated(what))?;
        *input = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(BlockError::Truncated(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(rows: &[[i64; 2]]) -> Columns {
        let mut c = Columns::new(2);
        for r in rows {
            c.push(r).unwrap();
        }
        c
    }

    #[test]
    fn sorting_keeps_the_last_of_equal_times() {
        let mut c = table(&[[30, 3], [10, 1], [20, 2], [10, 9]]);
        c.sort_by_time();
        assert_eq!(c, table(&[[10, 9], [20, 2], [30, 3]]));
        c.retain_by_time(|t| t >= 20);
        assert_eq!(c, table(&[[20, 2], [30, 3]]));
    }

    #[test]
    fn a_log_block_appends_blindly_and_seals_to_the_same_rows() {
        let start = 3_600_000;
        let mut bytes = Vec::new();
        append_log(
            &mut bytes,
            start,
            &[(1, start + 10, 5), (2, start + 10, -1)],
        );
        append_log(
            &mut bytes,
            start,
            &[(1, start + 5, 7), (1, start + 20, i64::MIN)],
        );
        // The same time again: the later write wins.
        append_log(&mut bytes, start, &[(2, start + 10, -2)]);
        assert!(is_log(&bytes));
        let block = decode_block(&bytes, start, 2, None).unwrap();
        assert_eq!(
            block[&1],
            table(&[[start + 5, 7], [start + 10, 5], [start + 20, i64::MIN]])
        );
        assert_eq!(block[&2], table(&[[start + 10, -2]]));
        let one = decode_block(&bytes, start, 2, Some(2)).unwrap();
        assert_eq!(one.keys().collect::<Vec<_>>(), [&2]);

        // Sealed (series 2 has one of the three times), each series comes
        // back alone or with the others.
        let sealed = encode_set(&block);
        assert!(!is_log(&sealed));
        assert_eq!(decode_block(&sealed, start, 2, None).unwrap(), block);
        assert_eq!(
            decode_block(&sealed, start, 2, Some(2)).unwrap()[&2],
            block[&2]
        );
        assert!(decode_block(&sealed, start, 2, Some(9)).unwrap().is_empty());
        assert_eq!(
            decode_block(&encode_set(&Block::new()), 0, 2, None).unwrap(),
            Block::new()
        );
    }

    #[test]
    fn roll_up_rows_seal_too() {
        let mut block = Block::new();
        for id in [3, 8] {
            let mut c = Columns::new(6);
            for b in 0..288 {
                let v = id as i64 * 1000 + b;
                c.push(&[b * 300_000, 30, v - 5, v, v + 5, v + 4]).unwrap();
            }
            block.insert(id, c);
        }
        let sealed = encode_set(&block);
        assert_eq!(decode_block(&sealed, 0, 6, None).unwrap(), block);
        // 576 buckets of six numbers, times shared: a few bytes a bucket.
        assert!(sealed.len() < 576 * 3, "{} bytes", sealed.len());
    }

    #[test]
    fn a_regular_hour_seals_small() {
        // An hour of 10-second samples of 20 series sampled together
        // (slowly filling disks, in 4 KiB blocks).
        let mut block = Block::new();
        let mut log = Vec::new();
        let start = 1_700_000_000_000;
        for id in 0..20u32 {
            let mut c = Columns::new(2);
            for i in 0..360i64 {
                let row = [
                    start + i * 10_000,
                    50_000_000_000 + (i * (id as i64 % 3)) * 4096,
                ];
                c.push(&row).unwrap();
                append_log(&mut log, start, &[(id, row[0], row[1])]);
            }
            block.insert(id, c);
        }
        let sealed = encode_set(&block);
        // Well under a byte a sample; the log form takes ten times that.
        assert!(
            sealed.len() < 7200 / 4,
            "{} bytes for 7200 samples",
            sealed.len()
        );
        assert!(
            log.len() > 10 * sealed.len(),
            "{} vs {}",
            log.len(),
            sealed.len()
        );
    }

    #[test]
    fn damaged_blocks_are_errors_that_say_what() {
        let decode = |b: &[u8]| decode_block(b, 0, 2, None);
        assert_eq!(decode(&[]), Err(BlockError::Empty));
        assert_eq!(decode(&[7]), Err(BlockError::Form(7)));
        assert_eq!(
            decode(&[SET, 6]),
            Err(BlockError::Columns {
                found: 6,
                expected: 2
            })
        );
        // 10 million times declared: refused before allocating.
        let mut huge = vec![SET, 2];
        put_varint(&mut huge, 10_000_000);
        assert_eq!(decode(&huge), Err(BlockError::Rows(10_000_000)));
        let mut block = Block::new();
        block.insert(1, table(&[[1, 2], [3, 4]]));
        let good = encode_set(&block);
        assert!(matches!(
            decode(&good[..good.len() - 1]),
            Err(BlockError::Truncated(_) | BlockError::Compressed { .. })
        ));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(BlockError::Trailing(1)));
        assert_eq!(
            decode_block(&[LOG, 1, 0, 0], 0, 6, None),
            Err(BlockError::Columns {
                found: 2,
                expected: 6
            })
        );
        assert_eq!(decode(&[LOG, 1, 0]), Err(BlockError::Truncated("a value")));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_block(&bytes, 0, 2, None);
            let _ = decode_block(&bytes, 0, 6, Some(1));
        }

        #[test]
        fn damaged_sealed_blocks_never_panic(
            values in proptest::collection::vec((0u32..4, any::<i64>()), 1..200),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut log = Vec::new();
            for (i, (id, v)) in values.iter().enumerate() {
                append_log(&mut log, 0, &[(*id, i as i64 / 2, *v)]);
            }
            let block = decode_block(&log, 0, 2, None).unwrap();
            let mut bytes = encode_set(&block);
            prop_assert_eq!(decode_block(&bytes, 0, 2, None).unwrap(), block);
            let i = at.index(bytes.len());
            bytes[i] ^= flip;
            let _ = decode_block(&bytes, 0, 2, None);
        }
    }
}
