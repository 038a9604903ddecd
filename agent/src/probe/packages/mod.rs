//! The `packages` section: every package database the host has (dpkg, rpm,
//! apk, pacman, snap, flatpak), each read directly.
//!
//! A host may have several (Debian with snaps, Ubuntu with flatpaks, a
//! Debian host with rpm installed for tooling). If any database that is
//! present cannot be read, the whole section is reported as unreadable: a
//! partial list would look to the collector as though the missing packages
//! had been removed.

use fathom_shared::wire::Package;

pub mod apk;
pub mod dpkg;
pub mod flatpak;
pub mod pacman;
pub mod rpm;
pub mod snap;

use super::{HostRoot, ListError, Malformed, ReadError};

/// Why a package database could not be read: one error for every
/// database, each naming the file (and line or record) at fault.
#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    #[error("no package database found (looked for dpkg, rpm, apk, pacman, snap and flatpak)")]
    NoneFound,
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Malformed(#[from] Malformed),
    #[error("cannot read the rpm database {path}")]
    RpmOpen {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("rpm database {path}, package record {record}: {message}")]
    RpmRecord {
        path: String,
        record: i64,
        message: String,
    },
    #[error("the rpm database at {path} is in the {format} format; only the SQLite format (rpm 4.16 and later) is read")]
    RpmLegacy { path: String, format: &'static str },
}

pub fn probe(root: &HostRoot) -> Result<Vec<Package>, PackagesError> {
    let dpkg = if root.path(dpkg::STATUS_PATH).exists() {
        Some(dpkg::probe(root)?)
    } else {
        None
    };
    let found = [
        dpkg,
        rpm::probe(root)?,
        apk::probe(root)?,
        pacman::probe(root)?,
        snap::probe(root)?,
        flatpak::probe(root)?,
    ];
    if found.iter().all(Option::is_none) {
        return Err(PackagesError::NoneFound);
    }
    Ok(found.into_iter().flatten().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

    /// A host root assembled from several fixture databases.
    fn mixed_root(parts: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for part in parts {
            let status = std::process::Command::new("cp")
                .args([
                    "-a",
                    &format!("{FIXTURES}/{part}/."),
                    &dir.path().display().to_string(),
                ])
                .status()
                .unwrap();
            assert!(status.success());
        }
        dir
    }

    #[test]
    fn every_database_present_contributes() {
        let dir = mixed_root(&["apk", "pacman", "snap", "flatpak"]);
        let packages = probe(&HostRoot::new(dir.path())).unwrap();
        let mut managers: Vec<&str> = packages.iter().map(|p| p.manager.as_str()).collect();
        managers.dedup();
        assert_eq!(managers, ["apk", "pacman", "snap", "flatpak"]);
        assert_eq!(packages.len(), 3 + 3 + 2 + 2);
    }

    #[test]
    fn one_unreadable_database_makes_the_section_unreadable() {
        let dir = mixed_root(&["apk", "snap"]);
        std::fs::write(
            dir.path().join("lib/apk/db/installed"),
            "P:musl\nnonsense\n",
        )
        .unwrap();
        let err = probe(&HostRoot::new(dir.path())).unwrap_err().to_string();
        assert!(err.contains("lib/apk/db/installed, line 2"), "{err}");
    }

    #[test]
    fn a_host_with_no_database_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = probe(&HostRoot::new(dir.path())).unwrap_err();
        assert!(matches!(err, PackagesError::NoneFound));
    }
}
