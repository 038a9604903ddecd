//! Installed snaps: each `/snap/<name>/current` (a link to the active
//! revision) and the version its `meta/snap.yaml` declares, which is what
//! `snap list` shows. Only mounted snaps can be read; snapd mounts every
//! installed one at boot.

use fathom_shared::wire::Package;

use super::PackagesError;
use crate::probe::{list_dir, HostRoot, Malformed};

pub const SNAP_DIR: &str = "/snap";

/// The installed snaps, or `None` when the host has no `/snap`.
pub fn probe(root: &HostRoot) -> Result<Option<Vec<Package>>, PackagesError> {
    let Some(entries) = list_dir(&root.path(SNAP_DIR))? else {
        return Ok(None);
    };
    let mut packages = Vec::new();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        // `/snap/bin` holds the command wrappers; a snap without `current`
        // is being removed.
        let current = format!("{SNAP_DIR}/{name}/current");
        if std::fs::read_link(root.path(&current)).is_err() {
            continue;
        }
        let yaml = format!("{current}/meta/snap.yaml");
        let text = root.read(&yaml)?;
        let version =
            version_of(&String::from_utf8_lossy(&text)).map_err(Malformed::at(root, &yaml))?;
        packages.push(Package {
            name,
            version,
            arch: None,
            manager: "snap".into(),
            source: None,
            installed_at_ms: None,
        });
    }
    packages.sort();
    Ok(Some(packages))
}

/// The top-level `version:` of a snap.yaml, unquoted.
pub fn version_of(yaml: &str) -> Result<String, (usize, String)> {
    for (index, line) in yaml.lines().enumerate() {
        if let Some(value) = line.strip_prefix("version:") {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(value);
            if unquoted.is_empty() {
                return Err((index + 1, "the version is empty".into()));
            }
            return Ok(unquoted.to_owned());
        }
    }
    Err((1, "no top-level `version:` line".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/snap");

    #[test]
    fn lists_mounted_snaps_by_their_current_revision() {
        let packages = probe(&HostRoot::new(FIXTURE)).unwrap().unwrap();
        let got: Vec<(&str, &str)> = packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(got, [("core22", "20240111"), ("lxd", "5.21.1-2d13beb")]);
        assert!(packages.iter().all(|p| p.manager == "snap"));
    }

    #[test]
    fn versions_are_read_plain_or_quoted_and_must_be_there() {
        assert_eq!(version_of("name: a\nversion: '1.0'\n").unwrap(), "1.0");
        assert_eq!(version_of("version: \"2\"\n").unwrap(), "2");
        assert_eq!(version_of("name: a\n  version: 3\n").unwrap_err().0, 1);
        assert_eq!(version_of("name: a\nversion: ''\n").unwrap_err().0, 2);
    }
}
