//! The `packages` section: every package database the host has (dpkg, rpm,
//! apk, pacman, snap, flatpak), each read directly.
//!
//! A host may have several (Debian with snaps, Ubuntu with flatpaks, a
//! Debian host with rpm installed for tooling). If any database that is
//! present cannot be read, the whole section is reported as unreadable: a
//! partial list would look to the collector as though the missing packages
//! had been removed.

use fathom_shared::wire::Package;

use super::{apk, dpkg, flatpak, pacman, rpm, snap, HostRoot};

#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    #[error("no package database found (looked for dpkg, rpm, apk, pacman, snap and flatpak)")]
    NoneFound,
    #[error(transparent)]
    Dpkg(#[from] dpkg::DpkgError),
    #[error(transparent)]
    Rpm(#[from] rpm::RpmError),
    #[error(transparent)]
    Apk(#[from] apk::ApkError),
    #[error(transparent)]
    Pacman(#[from] pacman::PacmanError),
    #[error(transparent)]
    Snap(#[from] snap::SnapError),
    #[error(transparent)]
    Flatpak(#[from] flatpak::FlatpakError),
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
