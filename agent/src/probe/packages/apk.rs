//! Installed packages from Alpine's apk database (`/lib/apk/db/installed`),
//! read directly.
//!
//! The database is a list of stanzas separated by blank lines, one
//! `X:value` line per field: `P` name, `V` version, `A` architecture, `o`
//! origin (the source package). apk does not record when a package was
//! installed (`t` is its build time), so `installed_at_ms` stays empty.

use fathom_shared::wire::Package;

use super::PackagesError;
use crate::probe::{HostRoot, Malformed, ReadError};

pub const INSTALLED: &str = "/lib/apk/db/installed";

/// The installed packages, or `None` when the host has no apk database.
pub fn probe(root: &HostRoot) -> Result<Option<Vec<Package>>, PackagesError> {
    let bytes = match root.read(INSTALLED) {
        Ok(bytes) => bytes,
        Err(ReadError::Missing { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let packages = parse_installed(&String::from_utf8_lossy(&bytes))
        .map_err(Malformed::at(root, INSTALLED))?;
    Ok(Some(packages))
}

/// Parses the database. Errors carry the 1-based line number.
pub fn parse_installed(text: &str) -> Result<Vec<Package>, (usize, String)> {
    let mut packages = Vec::new();
    let mut current: Option<(usize, Package)> = None;
    let finish = |current: Option<(usize, Package)>, packages: &mut Vec<Package>| match current {
        None => Ok(()),
        Some((line, p)) if p.name.is_empty() => {
            Err((line, "stanza has no P: (name) line".to_owned()))
        }
        Some((line, p)) if p.version.is_empty() => {
            Err((line, format!("package {} has no V: (version) line", p.name)))
        }
        Some((_, mut p)) => {
            if p.source.as_deref() == Some(p.name.as_str()) {
                p.source = None;
            }
            packages.push(p);
            Ok(())
        }
    };
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() {
            finish(current.take(), &mut packages)?;
            continue;
        }
        let Some((key, value)) = line.split_once(':').filter(|(k, _)| k.len() == 1) else {
            return Err((
                line_no,
                format!(
                    "expected `X:value`, got {:?}",
                    line.chars().take(60).collect::<String>()
                ),
            ));
        };
        let (_, package) = current.get_or_insert_with(|| {
            (
                line_no,
                Package {
                    manager: "apk".into(),
                    ..Package::default()
                },
            )
        });
        match key {
            "P" => package.name = value.to_owned(),
            "V" => package.version = value.to_owned(),
            "A" => package.arch = Some(value.to_owned()),
            "o" => package.source = Some(value.to_owned()),
            _ => {}
        }
    }
    finish(current.take(), &mut packages)?;
    packages.sort();
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apk");

    /// No apk tool is packaged for Debian, so this fixture is written by
    /// hand in the format of an Alpine 3.19 system's database (three
    /// stanzas with their file lists).
    #[test]
    fn reads_an_installed_database() {
        let packages = probe(&HostRoot::new(FIXTURE)).unwrap().unwrap();
        assert_eq!(
            crate::probe::package_lines(&packages),
            [
                "busybox 1.36.1-r15 x86_64 -",
                "libcrypto3 3.1.4-r2 x86_64 openssl",
                "musl 1.2.4_git20230717-r4 x86_64 -",
            ]
        );
    }

    #[test]
    fn damage_names_the_line() {
        let text = std::fs::read_to_string(format!("{FIXTURE}/lib/apk/db/installed")).unwrap();
        // A stanza cut before its version line.
        let cut = text.find("V:1.36.1").unwrap();
        let (line, message) = parse_installed(&text[..cut]).unwrap_err();
        assert_eq!(
            line,
            text[..text.find("C:Q1i+").unwrap()].lines().count() + 1
        );
        assert!(message.contains("busybox has no V:"), "{message}");
        let (line, message) = parse_installed("P:a\nV:1\nnonsense\n").unwrap_err();
        assert_eq!(line, 3);
        assert!(message.contains("X:value"), "{message}");
        assert_eq!(parse_installed("").unwrap(), vec![]);
    }
}
