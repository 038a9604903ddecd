//! File-system errors that say what was being done to which path, and the
//! one durable write used for everything the agent must not half-write.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}")]
pub struct FsError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// `map_err` adapter: `fs::read(p).map_err(fs_err("read", p))`.
pub fn fs_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |source| FsError {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` atomically and durably, with `mode`: a
/// temporary file, fsync, rename, fsync of the directory. A crash leaves the
/// old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(fs_err("create", &tmp))?;
    file.write_all(bytes).map_err(fs_err("write", &tmp))?;
    file.sync_all().map_err(fs_err("sync", &tmp))?;
    fs::rename(&tmp, path).map_err(fs_err("rename into place", path))?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(fs_err("sync", parent))?;
    }
    Ok(())
}
