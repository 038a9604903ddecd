//! Discovery. One module per source; each returns its section or an error
//! saying what it could not read, and [`collect_inventory`] puts the sections
//! that worked into the report and the rest into `probe_errors`.
//!
//! File-based sources (os-release, machine-id, DMI, the dpkg database, the
//! hostname) are read under a host root (default `/`), like node_exporter's
//! `--path.rootfs`: the agent can run in a container with the host mounted
//! at `/host`, and tests point it at fixture trees. Live kernel figures (CPU,
//! memory, mounted filesystems, interfaces, metrics) come from `sysinfo` in
//! [`system`], which is the only module that uses it.

pub mod accounts;
pub mod block;
pub mod containers;
pub mod dmi;
pub mod files;
pub mod gpu;
pub mod net;
pub mod nic;
pub mod os;
pub mod packages;
pub mod platform;
#[cfg(test)]
mod robustness;
pub mod smbios;
pub mod system;
pub mod units;

use std::path::{Path, PathBuf};

use fathom_shared::wire::{Inventory, ProbeError};

/// The largest file any probe will read. A dpkg status database of 10,000
/// packages is about 10 MiB.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The first read's size for files that do not say how long they are.
const PROC_READ: usize = 16 * 1024;

/// A directory standing in for `/`.
#[derive(Debug, Clone)]
pub struct HostRoot(PathBuf);

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path} does not exist")]
    Missing { path: PathBuf },
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is {len} bytes, more than the {MAX_FILE_BYTES}-byte limit")]
    TooLarge { path: PathBuf, len: u64 },
}

impl HostRoot {
    pub fn new(root: impl Into<PathBuf>) -> HostRoot {
        HostRoot(root.into())
    }

    pub fn is_real_root(&self) -> bool {
        self.0 == Path::new("/")
    }

    /// `abs` (an absolute path on the host) under this root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }

    /// Reads a whole file, refusing one larger than [`MAX_FILE_BYTES`] before
    /// allocating for it.
    pub fn read(&self, abs: &str) -> Result<Vec<u8>, ReadError> {
        use std::io::Read;
        let path = self.path(abs);
        let file = std::fs::File::open(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ReadError::Missing { path: path.clone() }
            } else {
                ReadError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let len = file
            .metadata()
            .map_err(|source| ReadError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        if len > MAX_FILE_BYTES {
            return Err(ReadError::TooLarge { path, len });
        }
        // Files in /proc report a length of 0; read them in pieces of a
        // useful size rather than growing from nothing (each read() of a
        // /proc/net table restarts the kernel's walk of its hash).
        let mut bytes = Vec::with_capacity(if len == 0 { PROC_READ } else { len as usize });
        // `take` also guards files that grow (or, in /proc, report length 0).
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| ReadError::Io {
                path: path.clone(),
                source,
            })?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(ReadError::TooLarge {
                path,
                len: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    /// Reads a small text file and trims it; `None` if missing, unreadable or empty.
    pub fn read_trimmed(&self, abs: &str) -> Option<String> {
        let bytes = self.read(abs).ok()?;
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        (!text.is_empty()).then_some(text)
    }
}

/// A directory that could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list {path}")]
pub struct ListError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

impl ListError {
    fn new(dir: &Path, source: std::io::Error) -> ListError {
        ListError {
            path: dir.display().to_string(),
            source,
        }
    }

    /// For a directory that must exist.
    pub fn missing(dir: &Path) -> ListError {
        ListError::new(dir, std::io::ErrorKind::NotFound.into())
    }
}

/// The entries of a directory; `None` when it does not exist.
pub fn list_dir(dir: &Path) -> Result<Option<Vec<std::fs::DirEntry>>, ListError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
            .map_err(|e| ListError::new(dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ListError::new(dir, e)),
    }
}

/// A database or table file that does not parse, with the line that
/// does not.
#[derive(Debug, thiserror::Error)]
#[error("{path}, line {line}: {message}")]
pub struct Malformed {
    pub path: String,
    pub line: usize,
    pub message: String,
}

impl Malformed {
    /// Turns a parser's `(line, message)` into an error naming `abs` under `root`.
    pub fn at(root: &HostRoot, abs: &str) -> impl Fn((usize, String)) -> Malformed {
        let path = root.path(abs).display().to_string();
        move |(line, message)| Malformed {
            path: path.clone(),
            line,
            message,
        }
    }
}

/// Runs every probe and assembles a report, without watched files.
pub fn collect_inventory(root: &HostRoot) -> Inventory {
    collect_inventory_watching(root, &[])
}

/// Runs every probe, fingerprinting the files `watch` names, and assembles
/// a report. Never fails: what could not be read is listed in
/// `probe_errors`.
pub fn collect_inventory_watching(root: &HostRoot, watch: &[String]) -> Inventory {
    let errors = std::sync::Mutex::new(Vec::new());
    let record = |probe: &str, error: &dyn std::error::Error| {
        let message = error_chain(error);
        tracing::debug!(probe, error = %message, "Probe could not read its source");
        errors.lock().unwrap().push(ProbeError {
            probe: probe.to_owned(),
            message,
        });
    };

    // The two probes that wait longest on the kernel (the package
    // databases; the socket owners' file descriptors) run beside the rest.
    let (packages, listeners, inventory) = std::thread::scope(|scope| {
        let packages = scope.spawn(|| {
            packages::probe(root)
                .map_err(|e| record("packages", &e))
                .ok()
        });
        let listeners = scope.spawn(|| net::probe(root).map_err(|e| record("listeners", &e)).ok());
        let inventory = collect_the_rest(root, watch, &record);
        (joined(packages), joined(listeners), inventory)
    });
    let mut errors = errors.into_inner().unwrap();
    // The same failures in the same order, whichever thread finished first.
    errors.sort_by(|a, b| a.probe.cmp(&b.probe));
    Inventory {
        packages,
        listeners,
        probe_errors: errors,
        ..inventory
    }
}

/// A probe thread's result; its panic, if it panicked.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Every section but packages and listeners.
fn collect_the_rest(
    root: &HostRoot,
    watch: &[String],
    record: &(dyn Fn(&str, &dyn std::error::Error) + Sync),
) -> Inventory {
    let (host, os_error) = os::probe(root);
    if let Some(e) = os_error {
        record("os", &e);
    }
    let dmi = dmi::probe(root).map_err(|e| record("dmi", &e)).ok();
    let files = (!watch.is_empty()).then(|| {
        let (files, errors) = files::probe(root, watch);
        for e in &errors {
            record("files", e);
        }
        files
    });
    let block_devices = block::probe(root)
        .map_err(|e| record("block_devices", &e))
        .ok();
    let units = units::probe(root).map_err(|e| record("units", &e)).ok();
    let (users, groups) = match accounts::probe(root) {
        Ok((u, g)) => (Some(u), Some(g)),
        Err(e) => {
            record("accounts", &e);
            (None, None)
        }
    };
    let memory_modules = smbios::probe(root)
        .map_err(|e| record("memory_modules", &e))
        .ok();
    let gpus = gpu::probe(root).map_err(|e| record("gpus", &e)).ok();
    let containers = containers::probe(root)
        .map_err(|e| record("containers", &e))
        .ok()
        .flatten();
    let kernel_modules = accounts::kernel_modules(root)
        .map_err(|e| record("kernel_modules", &e))
        .ok();
    let mut system = system::probe();
    if let Ok(cpuinfo) = root.read("/proc/cpuinfo") {
        let (sockets, flags) = platform::parse_cpuinfo(&String::from_utf8_lossy(&cpuinfo));
        system.hardware.cpu_sockets = sockets;
        system.hardware.cpu_flags = flags;
    }
    nic::enrich(root, &mut system.interfaces);
    let virtualization = platform::virtualization(root, dmi.as_ref(), &system.hardware.cpu_flags);
    Inventory {
        observed_at_ms: crate::now_ms(),
        agent_version: crate::VERSION.to_owned(),
        host,
        hardware: Some(system.hardware),
        dmi,
        filesystems: Some(system.filesystems),
        interfaces: Some(system.interfaces),
        packages: None,
        files,
        virtualization: Some(virtualization),
        block_devices,
        units,
        listeners: None,
        users,
        groups,
        kernel_modules,
        memory_modules,
        gpus,
        containers,
        probe_errors: Vec::new(),
        cadence: None,
    }
}

pub use fathom_support::error_chain;

/// One line per package, `name version arch source` (`-` for none), for
/// tests to compare against what the fixtures hold.
#[cfg(test)]
pub(crate) fn package_lines(packages: &[fathom_shared::wire::Package]) -> Vec<String> {
    packages
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {}",
                p.name,
                p.version,
                p.arch.as_deref().unwrap_or("-"),
                p.source.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A damaged package database costs the packages section only: the
    /// error names the file and the rest of the inventory is there.
    #[test]
    fn a_damaged_database_costs_only_its_section() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for (path, text) in [
            ("etc/hostname", "db-1\n"),
            ("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"),
            ("etc/group", "root:x:0:\n"),
            ("lib/apk/db/installed", "P:musl\nV:1.2.4-r2\n\nP:busybox\n"),
        ] {
            std::fs::create_dir_all(p.join(path).parent().unwrap()).unwrap();
            std::fs::write(p.join(path), text).unwrap();
        }
        let inventory = collect_inventory(&HostRoot::new(p));
        assert_eq!(inventory.packages, None);
        let error = inventory
            .probe_errors
            .iter()
            .find(|e| e.probe == "packages")
            .unwrap();
        assert!(
            error.message.contains("lib/apk/db/installed, line 4")
                && error.message.contains("busybox has no V:"),
            "{error:?}"
        );
        assert_eq!(inventory.host.hostname, "db-1");
        assert_eq!(inventory.users.as_ref().map(Vec::len), Some(1));
        assert_eq!(inventory.groups.as_ref().map(Vec::len), Some(1));
        assert!(inventory.hardware.is_some());
    }
}
