//! The spool: a bounded on-disk queue that every report passes through.
//!
//! A report is written here (fsync'd) before any attempt to send it, and is
//! removed only after the collector acknowledged it, so a crash, a restart or
//! a collector outage loses nothing that fits. Reports are sent in sequence
//! order.
//!
//! Layout: one file per report in the spool directory, named
//! `<seq, 20 digits>.<kind>` and holding the msgpack body sealed at spool
//! time: `FSP1`, the SHA-256 of the body, then the body. A file whose body
//! no longer matches its digest (a disk error, someone editing it) is set
//! aside unsent, so nothing the agent did not measure reaches the
//! collector. Files of older agents, without the seal, are read as they are. The envelope is
//! signed at each send attempt (with a fresh send time), so a report that
//! waited out a long outage is not refused for clock skew.
//!
//! Overflow policy, applied when a new report would exceed `max_reports` or
//! `max_bytes`: drop the oldest metrics report first; when no metrics are
//! left, the oldest inventory delta (the collector then asks for a full
//! inventory); then the oldest network device report (the next poll of that
//! device replaces it); then the oldest inventory that is not the latest one. The latest
//! inventory and an enrollment are never dropped. Every drop is logged at
//! WARN with the sequence number.

use std::fs;
use std::path::{Path, PathBuf};

use fathom_shared::envelope::BodyKind;

use sha2::{Digest, Sha256};

use fathom_support::fsio::{fs_err as io, write_atomic, FsError};

/// What a sealed spool file starts with.
const SEAL: &[u8; 4] = b"FSP1";
const SEAL_LEN: usize = SEAL.len() + 32;

/// The body as a spool file holds it: sealed with its digest.
fn seal(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEAL_LEN + body.len());
    out.extend_from_slice(SEAL);
    out.extend_from_slice(&Sha256::digest(body));
    out.extend_from_slice(body);
    out
}

/// The body of a spool file, if its seal holds (or it has none: an older
/// agent's file). Public for the fuzz targets.
#[doc(hidden)]
pub fn unseal(mut file: Vec<u8>) -> Result<Vec<u8>, &'static str> {
    if !file.starts_with(SEAL) {
        return Ok(file);
    }
    if file.len() < SEAL_LEN {
        return Err("it is shorter than its seal");
    }
    let body = file.split_off(SEAL_LEN);
    if Sha256::digest(&body)[..] != file[SEAL.len()..] {
        return Err("its body does not match the digest it was spooled with");
    }
    Ok(body)
}

/// One spooled report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub kind: BodyKind,
    pub len: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(transparent)]
    Io(#[from] FsError),
    #[error("report of {len} bytes is larger than the whole spool ({max} bytes)")]
    TooLarge { len: u64, max: u64 },
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    max_reports: usize,
    entries: Vec<Entry>,
    /// The highest sequence number renumbering gave out.
    floor: u64,
}

impl Spool {
    /// Opens the spool in `dir`, picking up what an earlier run left.
    pub fn open(dir: &Path, max_bytes: u64, max_reports: usize) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(io("create", dir))?;
        let mut entries = Vec::new();
        for item in fs::read_dir(dir).map_err(io("list", dir))? {
            let item = item.map_err(io("list", dir))?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            let Some((seq, kind)) = name.split_once('.') else {
                continue;
            };
            let kind = match kind {
                "enrollment" => BodyKind::Enrollment,
                "inventory" => BodyKind::Inventory,
                "metrics" => BodyKind::Metrics,
                "inventory_delta" => BodyKind::InventoryDelta,
                "device_report" => BodyKind::DeviceReport,
                // Leftover temporary files from a crash mid-write.
                "tmp" => {
                    let _ = fs::remove_file(item.path());
                    continue;
                }
                // Not ours: left alone, said once.
                _ => {
                    tracing::warn!(path = %item.path().display(), "An unknown file in the spool directory is left alone");
                    continue;
                }
            };
            let Ok(seq) = seq.parse() else { continue };
            // A report that cannot even be looked at is set aside when its
            // turn comes (`peek`), not a reason to refuse the whole spool.
            let len = item.metadata().map_or(0, |m| m.len());
            entries.push(Entry { seq, kind, len });
        }
        entries.sort_by_key(|e| e.seq);
        Ok(Spool {
            dir: dir.to_owned(),
            max_bytes,
            max_reports,
            entries,
            floor: 0,
        })
    }

    fn path_of(&self, seq: u64, kind: BodyKind) -> PathBuf {
        self.dir.join(format!("{seq:020}.{}", kind.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.len).sum()
    }

    pub fn highest_seq(&self) -> Option<u64> {
        self.entries.last().map(|e| e.seq)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Adds a report durably, dropping older ones per the overflow policy.
    /// Returns the sequence numbers dropped.
    pub fn push(&mut self, seq: u64, kind: BodyKind, body: &[u8]) -> Result<Vec<u64>, SpoolError> {
        let len = body.len() as u64;
        if len > self.max_bytes {
            return Err(SpoolError::TooLarge {
                len,
                max: self.max_bytes,
            });
        }
        let mut dropped = Vec::new();
        while self.entries.len() + 1 > self.max_reports || self.bytes() + len > self.max_bytes {
            let Some(victim) = self.victim(kind) else {
                break;
            };
            let entry = self.entries.remove(victim);
            let path = self.path_of(entry.seq, entry.kind);
            fs::remove_file(&path).map_err(io("remove", &path))?;
            tracing::warn!(
                seq = entry.seq,
                kind = entry.kind.as_str(),
                "Spool full: dropped an undelivered report"
            );
            dropped.push(entry.seq);
        }
        let path = self.path_of(seq, kind);
        write_atomic(&path, &seal(body), 0o600)?;
        self.entries.push(Entry { seq, kind, len });
        self.entries.sort_by_key(|e| e.seq);
        Ok(dropped)
    }

    /// Which entry to drop to make room for a report of kind `incoming`.
    fn victim(&self, incoming: BodyKind) -> Option<usize> {
        // Metrics first, then deltas: a lost delta costs one full inventory,
        // which the collector asks for when the next delta's base is not the
        // last report it applied.
        // Device reports next: each is a whole poll, and the next poll of
        // the same device replaces it.
        for kind in [
            BodyKind::Metrics,
            BodyKind::InventoryDelta,
            BodyKind::DeviceReport,
        ] {
            if let Some(i) = self.entries.iter().position(|e| e.kind == kind) {
                return Some(i);
            }
        }
        // An incoming inventory supersedes every spooled one; otherwise keep
        // the latest spooled inventory.
        let latest_inventory = self
            .entries
            .iter()
            .rposition(|e| e.kind == BodyKind::Inventory);
        self.entries.iter().enumerate().position(|(i, e)| {
            e.kind == BodyKind::Inventory
                && (incoming == BodyKind::Inventory || Some(i) != latest_inventory)
        })
    }

    /// The oldest report and its body.
    /// The oldest report and its body. A head that cannot be read (its file
    /// deleted, or a directory or a dangling link in its place) is set aside
    /// into `unreadable/` with an ERROR log, and the next one is taken: one
    /// bad file never stops delivery.
    pub fn peek(&mut self) -> Result<Option<(Entry, Vec<u8>)>, SpoolError> {
        while let Some(entry) = self.entries.first().cloned() {
            let path = self.path_of(entry.seq, entry.kind);
            let read = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|file| unseal(file).map_err(str::to_owned));
            match read {
                Ok(body) => return Ok(Some((entry, body))),
                Err(e) => {
                    self.entries.remove(0);
                    let kept = self.set_aside(&path);
                    tracing::error!(
                        seq = entry.seq,
                        kind = entry.kind.as_str(),
                        path = %path.display(),
                        error = %e,
                        kept_at = ?kept.as_ref().map(|p| p.display().to_string()),
                        "A spooled report cannot be read, or fails its checksum; it is set aside and will not be sent"
                    );
                }
            }
        }
        Ok(None)
    }

    /// Moves whatever is at `path` into `unreadable/`, if anything is.
    fn set_aside(&self, path: &Path) -> Option<PathBuf> {
        fs::symlink_metadata(path).ok()?;
        let dir = self.dir.join("unreadable");
        fs::create_dir_all(&dir).ok()?;
        let to = dir.join(path.file_name()?);
        fs::rename(path, &to).ok().map(|()| to)
    }

    /// Removes a report once the collector acknowledged it. A file already
    /// gone is what removing wanted.
    pub fn remove(&mut self, seq: u64) -> Result<(), SpoolError> {
        if let Some(i) = self.entries.iter().position(|e| e.seq == seq) {
            let entry = self.entries.remove(i);
            let path = self.path_of(entry.seq, entry.kind);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("remove", &path)(e).into())
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The highest sequence number given to a report here, renumbered ones
    /// included: the producer's counter never goes below it.
    pub fn floor(&self) -> u64 {
        self.floor.max(self.highest_seq().unwrap_or(0))
    }

    /// Gives every queued report a new sequence number above `last` (the
    /// collector already holds reports up to it: this agent's counter went
    /// back), in order, renaming their files. Returns the highest new one.
    pub fn renumber_above(&mut self, last: u64) -> Result<u64, SpoolError> {
        let mut next = last;
        let mut renumbered = Vec::with_capacity(self.entries.len());
        for entry in std::mem::take(&mut self.entries) {
            next += 1;
            let from = self.path_of(entry.seq, entry.kind);
            let to = self.path_of(next, entry.kind);
            fs::rename(&from, &to).map_err(io("renumber", &from))?;
            renumbered.push(Entry { seq: next, ..entry });
        }
        self.entries = renumbered;
        self.floor = self.floor.max(next);
        Ok(next)
    }

    /// Moves a report the collector refused (a 4xx answer) out of the queue
    /// into `rejected/`, for an operator to inspect; it will not be resent.
    pub fn reject(&mut self, seq: u64) -> Result<PathBuf, SpoolError> {
        let rejected = self.dir.join("rejected");
        fs::create_dir_all(&rejected).map_err(io("create", &rejected))?;
        let i = self
            .entries
            .iter()
            .position(|e| e.seq == seq)
            .expect("rejecting a report that is in the spool");
        let entry = self.entries.remove(i);
        let from = self.path_of(entry.seq, entry.kind);
        let to = rejected.join(from.file_name().unwrap());
        // Kept as the bare body, for tools to decode; as it is if its seal
        // does not hold.
        match fs::read(&from).ok().and_then(|f| unseal(f).ok()) {
            Some(body) => {
                write_atomic(&to, &body, 0o600)?;
                fs::remove_file(&from).map_err(io("remove", &from))?;
            }
            None => fs::rename(&from, &to).map_err(io("move", &from))?,
        }
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_come_out_in_order_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20, 100).unwrap();
        spool.push(2, BodyKind::Metrics, b"m2").unwrap();
        spool.push(1, BodyKind::Inventory, b"i1").unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20, 100).unwrap();
        assert_eq!(spool.len(), 2);
        let (entry, body) = spool.peek().unwrap().unwrap();
        assert_eq!((entry.seq, body.as_slice()), (1, &b"i1"[..]));
        spool.remove(1).unwrap();
        assert_eq!(spool.peek().unwrap().unwrap().0.seq, 2);
    }

    #[test]
    fn an_unreadable_head_is_set_aside_and_the_rest_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20, 100).unwrap();
        for seq in 1..=4 {
            spool.push(seq, BodyKind::Metrics, b"m").unwrap();
        }
        // Deleted under the running agent; a directory; a dangling link.
        let path = |seq: u64| dir.path().join(format!("{seq:020}.metrics"));
        fs::remove_file(path(1)).unwrap();
        fs::remove_file(path(2)).unwrap();
        fs::create_dir(path(2)).unwrap();
        fs::remove_file(path(3)).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), path(3)).unwrap();
        let (entry, body) = spool.peek().unwrap().unwrap();
        assert_eq!((entry.seq, body.as_slice()), (4, &b"m"[..]));
        assert_eq!(spool.len(), 1);
        let aside: Vec<String> = fs::read_dir(dir.path().join("unreadable"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            aside.len(),
            2,
            "the directory and the link, kept: {aside:?}"
        );
        // Removing a report whose file is already gone is no error.
        fs::remove_file(path(4)).unwrap();
        spool.remove(4).unwrap();
        // Unknown files are left alone; a crash's temporary file is not.
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        fs::write(dir.path().join("00000000000000000009.tmp"), "half").unwrap();
        Spool::open(dir.path(), 1 << 20, 100).unwrap();
        assert!(dir.path().join("notes.txt").exists());
        assert!(!dir.path().join("00000000000000000009.tmp").exists());
    }

    #[test]
    fn a_report_changed_in_the_spool_is_never_sent() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20, 100).unwrap();
        let body = fathom_shared::codec::encode(&("memory_used_bytes", 1000u64)).unwrap();
        spool.push(1, BodyKind::Metrics, &body).unwrap();
        spool.push(2, BodyKind::Metrics, &body).unwrap();
        // Still valid msgpack, another value: 1000 becomes 1001.
        let path = dir.path().join(format!("{:020}.metrics", 1));
        let mut file = fs::read(&path).unwrap();
        *file.last_mut().unwrap() ^= 1;
        fs::write(&path, file).unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20, 100).unwrap();
        let (entry, read) = spool.peek().unwrap().unwrap();
        assert_eq!((entry.seq, read), (2, body), "the changed one is skipped");
        assert!(dir
            .path()
            .join("unreadable")
            .join(path.file_name().unwrap())
            .exists());
        // An older agent's unsealed file is still delivered.
        fs::write(dir.path().join(format!("{:020}.metrics", 3)), b"legacy").unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20, 100).unwrap();
        spool.remove(2).unwrap();
        assert_eq!(spool.peek().unwrap().unwrap().1, b"legacy");
    }

    #[test]
    fn overflow_drops_metrics_first_and_keeps_the_latest_inventory() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20, 3).unwrap();
        spool.push(1, BodyKind::Inventory, b"i").unwrap();
        spool.push(2, BodyKind::Metrics, b"m").unwrap();
        spool.push(3, BodyKind::Metrics, b"m").unwrap();
        assert_eq!(spool.push(4, BodyKind::Metrics, b"m").unwrap(), vec![2]);
        assert_eq!(spool.push(5, BodyKind::Metrics, b"m").unwrap(), vec![3]);
        // Only one metrics report left to drop before the inventory is at risk.
        assert_eq!(spool.push(6, BodyKind::Metrics, b"m").unwrap(), vec![4]);
        let seqs: Vec<u64> = spool.entries().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 5, 6]);
        // A new inventory supersedes the old one.
        assert_eq!(spool.push(7, BodyKind::Inventory, b"i").unwrap(), vec![5]);
        assert_eq!(spool.push(8, BodyKind::Inventory, b"i").unwrap(), vec![6]);
        assert_eq!(spool.push(9, BodyKind::Inventory, b"i").unwrap(), vec![1]);
        let seqs: Vec<u64> = spool.entries().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![7, 8, 9]);
    }

    #[test]
    fn deltas_go_after_metrics_and_before_inventories() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20, 3).unwrap();
        spool.push(1, BodyKind::Inventory, b"i").unwrap();
        spool.push(2, BodyKind::InventoryDelta, b"d").unwrap();
        spool.push(3, BodyKind::Metrics, b"m").unwrap();
        assert_eq!(
            spool.push(4, BodyKind::InventoryDelta, b"d").unwrap(),
            vec![3]
        );
        assert_eq!(spool.push(5, BodyKind::Metrics, b"m").unwrap(), vec![2]);
        let seqs: Vec<u64> = spool.entries().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 4, 5]);
        // Deltas survive a restart under their own kind.
        let reopened = Spool::open(dir.path(), 1 << 20, 3).unwrap();
        assert_eq!(reopened.entries()[1].kind, BodyKind::InventoryDelta);
    }

    #[test]
    fn the_byte_limit_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 10, 100).unwrap();
        spool.push(1, BodyKind::Metrics, b"12345").unwrap();
        spool.push(2, BodyKind::Metrics, b"12345").unwrap();
        assert_eq!(spool.push(3, BodyKind::Metrics, b"1").unwrap(), vec![1]);
        assert!(spool.bytes() <= 10);
        assert!(matches!(
            spool.push(4, BodyKind::Metrics, &[0; 11]),
            Err(SpoolError::TooLarge { .. })
        ));
    }

    #[test]
    fn rejected_reports_leave_the_queue_but_not_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20, 10).unwrap();
        spool.push(1, BodyKind::Metrics, b"m").unwrap();
        let moved = spool.reject(1).unwrap();
        assert!(spool.is_empty());
        assert_eq!(fs::read(moved).unwrap(), b"m");
        assert!(Spool::open(dir.path(), 1 << 20, 10).unwrap().is_empty());
    }
}
