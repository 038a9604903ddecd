//! System-wide flatpak applications and runtimes, from the installation in
//! `/var/lib/flatpak`: `{app,runtime}/<id>/<arch>/<branch>/active`, a link
//! to the deployed commit.
//!
//! A flatpak is named `<id>//<branch>` (two branches of one runtime are
//! often installed side by side). Its version is the newest `<release>` of
//! its AppStream metainfo, as `flatpak list` shows; a ref without metainfo
//! (most runtimes) is versioned by its deployed commit, shortened to 12
//! characters, so an update is still seen.

use fathom_shared::wire::Package;

use super::PackagesError;
use crate::probe::{list_dir, HostRoot};

pub const INSTALLATION: &str = "/var/lib/flatpak";

/// The installed refs, or `None` when the host has no system installation.
pub fn probe(root: &HostRoot) -> Result<Option<Vec<Package>>, PackagesError> {
    let base = root.path(INSTALLATION);
    if !base.is_dir() {
        return Ok(None);
    }
    let mut packages = Vec::new();
    for kind in ["app", "runtime"] {
        for id in list(&base.join(kind))? {
            for arch in list(&base.join(kind).join(&id))? {
                for branch in list(&base.join(kind).join(&id).join(&arch))? {
                    let deploy = base.join(kind).join(&id).join(&arch).join(&branch);
                    let Ok(commit) = std::fs::read_link(deploy.join("active")) else {
                        continue;
                    };
                    let commit = commit.to_string_lossy().into_owned();
                    let version = metainfo_version(&deploy.join("active/files/share"), &id)
                        .unwrap_or_else(|| commit.chars().take(12).collect());
                    packages.push(Package {
                        name: format!("{id}//{branch}"),
                        version,
                        arch: Some(arch.clone()),
                        manager: "flatpak".into(),
                        source: None,
                        installed_at_ms: None,
                    });
                }
            }
        }
    }
    packages.sort();
    Ok(Some(packages))
}

/// The names in a directory; none when it does not exist.
fn list(dir: &std::path::Path) -> Result<Vec<String>, PackagesError> {
    let mut names: Vec<String> = list_dir(dir)?
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// The first `<release version="…">` of the ref's metainfo (AppStream lists
/// releases newest first).
fn metainfo_version(share: &std::path::Path, id: &str) -> Option<String> {
    let candidates = [
        share.join(format!("metainfo/{id}.metainfo.xml")),
        share.join(format!("metainfo/{id}.appdata.xml")),
        share.join(format!("appdata/{id}.appdata.xml")),
    ];
    let text = candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())?;
    let release = &text[text.find("<release ")?..];
    let tag = &release[..release.find('>')?];
    let value = &tag[tag.find("version=")? + "version=".len()..];
    let quote = value.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let value = &value[1..];
    Some(value[..value.find(quote)?].to_owned()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/flatpak");

    #[test]
    fn lists_apps_and_runtimes_by_ref_with_their_versions() {
        let packages = probe(&HostRoot::new(FIXTURE)).unwrap().unwrap();
        let got: Vec<(&str, &str, Option<&str>)> = packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.arch.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "org.freedesktop.Platform//23.08",
                    "6d2a7c1f9e3b",
                    Some("x86_64")
                ),
                ("org.mozilla.firefox//stable", "128.0.3", Some("x86_64")),
            ]
        );
    }

    #[test]
    fn no_installation_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(probe(&HostRoot::new(dir.path())).unwrap().is_none());
    }
}
