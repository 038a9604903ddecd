//! The bytes of one stored block of a metric series: a table of `i64`
//! columns with the same number of rows (raw samples: time and value;
//! roll-ups: time, count, min, mean, max, p95).
//!
//! A block has two forms:
//!
//! - **open**, for the block still being written to: rows of zig-zag
//!   varint deltas from the row before, so appending a row never rewrites
//!   what is there (about 2–4 bytes per raw sample);
//! - **sealed**, once its period is over: each column compressed on its
//!   own with pco (delta and entropy coding chosen per column), well under
//!   a byte per value on regular timestamps and slowly moving values.
//!
//! Both decode to the same [`Columns`]. Decoding caps rows and columns
//! before allocating, and names what was wrong: a block comes from our own
//! store, but a damaged store must give an error, not a panic or a huge
//! allocation.
//!
//! What the numbers mean (units, quantization) is [`super::series`]'s
//! business, not this module's.

const OPEN: u8 = 0;
const SEALED: u8 = 1;

/// Rows in one block at most: a day of 1-second samples, well above any
/// block the store writes (an hour of raw samples, a day of 5-minute
/// buckets, a month of hours, a year of days).
pub const MAX_ROWS: usize = 86_400;
/// Columns in one block at most.
pub const MAX_COLUMNS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block is empty")]
    Empty,
    #[error("unknown block form {0}")]
    Form(u8),
    #[error("block declares {0} columns (at most {MAX_COLUMNS})")]
    Columns(usize),
    #[error("block declares {0} rows (at most {MAX_ROWS})")]
    Rows(usize),
    #[error("block ends inside {0}")]
    Truncated(&'static str),
    #[error("column {column} does not decompress: {message}")]
    Compressed { column: usize, message: String },
    #[error("column {column} has {found} values where the block declares {rows}")]
    ColumnLength {
        column: usize,
        found: usize,
        rows: usize,
    },
    #[error("{0} bytes follow the last row")]
    Trailing(usize),
    #[error("a row has {found} values; the block has {columns} columns")]
    RowWidth { found: usize, columns: usize },
}

/// A block's contents, column by column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    columns: Vec<Vec<i64>>,
}

impl Columns {
    pub fn new(width: usize) -> Columns {
        assert!((1..=MAX_COLUMNS).contains(&width), "block width {width}");
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
            return Err(BlockError::RowWidth {
                found: row.len(),
                columns: self.width(),
            });
        }
        for (c, v) in self.columns.iter_mut().zip(row) {
            c.push(*v);
        }
        Ok(())
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
            match kept.last() {
                Some(&last) if self.columns[0][last] == self.columns[0][r] => {
                    *kept.last_mut().expect("just matched") = r
                }
                _ => kept.push(r),
            }
        }
        for c in &mut self.columns {
            *c = kept.iter().map(|&r| c[r]).collect();
        }
    }

    /// The open form: rows of zig-zag varint deltas.
    pub fn encode_open(&self) -> Vec<u8> {
        let mut out = vec![OPEN, self.width() as u8];
        put_varint(&mut out, self.rows() as u64);
        let mut previous = vec![0i64; self.width()];
        for r in 0..self.rows() {
            for (c, prev) in previous.iter_mut().enumerate() {
                let v = self.columns[c][r];
                put_varint(&mut out, zigzag(v.wrapping_sub(*prev)));
                *prev = v;
            }
        }
        out
    }

    /// The sealed form: each column compressed with pco.
    pub fn encode_sealed(&self) -> Vec<u8> {
        let mut out = vec![SEALED, self.width() as u8];
        put_varint(&mut out, self.rows() as u64);
        let config = pco::ChunkConfig::default();
        for column in &self.columns {
            let packed = if column.is_empty() {
                Vec::new()
            } else {
                // pco fails only on an invalid configuration; the default
                // one is valid for any slice of i64.
                pco::standalone::simple_compress(column, &config).expect("default pco config")
            };
            put_varint(&mut out, packed.len() as u64);
            out.extend_from_slice(&packed);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Columns, BlockError> {
        let (&form, rest) = bytes.split_first().ok_or(BlockError::Empty)?;
        let (&width, mut rest) = rest.split_first().ok_or(BlockError::Truncated("header"))?;
        let width = width as usize;
        if !(1..=MAX_COLUMNS).contains(&width) {
            return Err(BlockError::Columns(width));
        }
        let rows = get_varint(&mut rest, "row count")? as usize;
        if rows > MAX_ROWS {
            return Err(BlockError::Rows(rows));
        }
        let mut columns = Columns::new(width);
        match form {
            OPEN => {
                for c in &mut columns.columns {
                    c.reserve_exact(rows);
                }
                let mut previous = vec![0i64; width];
                for _ in 0..rows {
                    for (c, prev) in previous.iter_mut().enumerate() {
                        let v = prev.wrapping_add(unzigzag(get_varint(&mut rest, "a row")?));
                        columns.columns[c].push(v);
                        *prev = v;
                    }
                }
            }
            SEALED => {
                for (i, c) in columns.columns.iter_mut().enumerate() {
                    let len = get_varint(&mut rest, "a column length")? as usize;
                    if len > rest.len() {
                        return Err(BlockError::Truncated("a column"));
                    }
                    let (packed, tail) = rest.split_at(len);
                    rest = tail;
                    if rows == 0 && packed.is_empty() {
                        continue;
                    }
                    let mut values = vec![0i64; rows];
                    let progress = pco::standalone::simple_decompress_into(packed, &mut values)
                        .map_err(|e| BlockError::Compressed {
                            column: i,
                            message: e.to_string(),
                        })?;
                    if progress.n_processed != rows || !progress.finished {
                        return Err(BlockError::ColumnLength {
                            column: i,
                            found: progress.n_processed,
                            rows,
                        });
                    }
                    *c = values;
                }
            }
            other => return Err(BlockError::Form(other)),
        }
        if !rest.is_empty() {
            return Err(BlockError::Trailing(rest.len()));
        }
        Ok(columns)
    }
}

/// Appends one row to an open block's bytes without decoding the rows
/// already there: the deltas need only the last row, which `last` gives.
/// `bytes` must be an open block whose last row is `last` (or empty, for a
/// new block, with `last` `None`).
pub fn append_open(bytes: &mut Vec<u8>, last: Option<&[i64]>, row: &[i64]) {
    if bytes.is_empty() {
        let mut c = Columns::new(row.len());
        c.push(row).expect("width from the row");
        *bytes = c.encode_open();
        return;
    }
    // The row count is a varint right after the header: rewrite it.
    let mut rest = &bytes[2..];
    let rows = get_varint(&mut rest, "row count").expect("an open block we wrote");
    let count_len = bytes.len() - 2 - rest.len();
    let mut count = Vec::with_capacity(10);
    put_varint(&mut count, rows + 1);
    bytes.splice(2..2 + count_len, count);
    let zeros = vec![0; row.len()];
    let last = last.unwrap_or(&zeros);
    for (v, prev) in row.iter().zip(last) {
        put_varint(bytes, zigzag(v.wrapping_sub(*prev)));
    }
}

/// Whether `bytes` is an open block (appendable with [`append_open`]).
pub fn is_open(bytes: &[u8]) -> bool {
    bytes.first() == Some(&OPEN)
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
    fn both_forms_give_back_what_was_written() {
        let c = table(&[
            [1_700_000_000_000, 4200],
            [1_700_000_010_000, -7],
            [1_700_000_020_013, i64::MAX],
        ]);
        assert_eq!(Columns::decode(&c.encode_open()).unwrap(), c);
        assert_eq!(Columns::decode(&c.encode_sealed()).unwrap(), c);
        let empty = Columns::new(6);
        assert_eq!(Columns::decode(&empty.encode_sealed()).unwrap(), empty);
        assert_eq!(Columns::decode(&empty.encode_open()).unwrap(), empty);
    }

    #[test]
    fn appending_to_open_bytes_equals_encoding_the_whole() {
        let rows = [[10, 5], [20, 6], [30, 4], [40, -100]];
        let mut bytes = Vec::new();
        let mut last: Option<[i64; 2]> = None;
        // Enough rows for the row count to grow past one varint byte.
        for i in 0..200 {
            let row = rows[i % 4].map(|v| v + i as i64 * 1000);
            append_open(&mut bytes, last.as_ref().map(|l| &l[..]), &row);
            last = Some(row);
        }
        let decoded = Columns::decode(&bytes).unwrap();
        assert_eq!(decoded.rows(), 200);
        assert_eq!(bytes, decoded.encode_open());
        assert!(is_open(&bytes));
        assert!(!is_open(&decoded.encode_sealed()));
    }

    #[test]
    fn a_regular_hour_seals_small() {
        // An hour of 10-second samples of a slowly filling disk, in bytes.
        let mut c = Columns::new(2);
        for i in 0..360i64 {
            c.push(&[1_700_000_000_000 + i * 10_000, 50_000_000_000 + i * 4096])
                .unwrap();
        }
        let sealed = c.encode_sealed();
        // Under half a byte a sample, a tenth of the open form.
        assert!(sealed.len() < 180, "{} bytes for 360 samples", sealed.len());
        assert!(c.encode_open().len() > 10 * sealed.len());
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
    fn damaged_blocks_are_errors_that_say_what() {
        assert_eq!(Columns::decode(&[]), Err(BlockError::Empty));
        assert_eq!(Columns::decode(&[7, 2, 0]), Err(BlockError::Form(7)));
        assert_eq!(Columns::decode(&[0, 9, 0]), Err(BlockError::Columns(9)));
        // 10 million rows declared: refused before allocating.
        let mut huge = vec![1, 2];
        put_varint(&mut huge, 10_000_000);
        assert_eq!(Columns::decode(&huge), Err(BlockError::Rows(10_000_000)));
        let good = table(&[[1, 2], [3, 4]]).encode_open();
        assert_eq!(
            Columns::decode(&good[..good.len() - 1]),
            Err(BlockError::Truncated("a row"))
        );
        let mut long = good.clone();
        long.push(0);
        assert_eq!(Columns::decode(&long), Err(BlockError::Trailing(1)));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Columns::decode(&bytes);
        }

        #[test]
        fn damaged_sealed_blocks_never_panic(
            values in proptest::collection::vec(any::<i64>(), 1..200),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut c = Columns::new(2);
            for (i, v) in values.iter().enumerate() {
                c.push(&[i as i64, *v]).unwrap();
            }
            let mut bytes = c.encode_sealed();
            prop_assert_eq!(Columns::decode(&bytes).unwrap(), c);
            let i = at.index(bytes.len());
            bytes[i] ^= flip;
            let _ = Columns::decode(&bytes);
        }
    }
}
