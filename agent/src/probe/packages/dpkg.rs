//! Installed packages from the dpkg status database
//! (`/var/lib/dpkg/status`), parsed directly: no dpkg process.
//!
//! The database is a sequence of RFC 822-style stanzas separated by blank
//! lines. A package counts as installed when its status's current state says
//! its files are on disk (`installed`, `half-configured`, `unpacked`,
//! `triggers-awaited`, `triggers-pending`); `config-files` and `not-installed`
//! stanzas are skipped. That matches `dpkg-query -W -f '${db:Status-Abbrev}'`
//! rows whose second letter is `i`, `F`, `U`, `W` or `t`.
//!
//! Names are bare (`libc6`, not `libc6:amd64`); the architecture is its own
//! field, so a name join against `dpkg-query -W` works.

use fathom_shared::wire::Package;

use super::PackagesError;
use crate::probe::{HostRoot, Malformed};

pub const STATUS_PATH: &str = "/var/lib/dpkg/status";

/// dpkg records no install time (the file lists' modification times are
/// only a guess, and reading them costs a `stat` per package), so
/// `installed_at_ms` stays empty for dpkg packages.
pub fn probe(root: &HostRoot) -> Result<Vec<Package>, PackagesError> {
    let bytes = root.read(STATUS_PATH)?;
    parse_status(&bytes).map_err(|e| Malformed::at(root, STATUS_PATH)(e).into())
}

/// Parses a status database. Errors carry the 1-based line number.
pub fn parse_status(bytes: &[u8]) -> Result<Vec<Package>, (usize, String)> {
    if bytes.is_empty() {
        // dpkg never leaves an empty database on a system it manages; an
        // empty file is a truncated write, not a machine with no packages.
        return Err((1, "the database is empty".into()));
    }
    let mut packages = Vec::new();
    let mut stanza = Stanza::default();
    // memchr finds line ends many bytes at a time: most of the database is
    // long description text the parser only skips.
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', bytes).chain([bytes.len()]);
    for (index, end) in ends.enumerate() {
        let raw = &bytes[start..end];
        start = end + 1;
        let line_no = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            if let Some(p) = stanza.finish()? {
                packages.push(p);
            }
            continue;
        }
        if raw[0] == b' ' || raw[0] == b'\t' {
            // A continuation of a multi-line field (Description, Conffiles…).
            if stanza.is_empty() {
                return Err((line_no, "continuation line outside any stanza".into()));
            }
            continue;
        }
        let Some(colon) = raw.iter().position(|b| *b == b':') else {
            return Err((
                line_no,
                format!(
                    "expected `Field: value`, got {:?}",
                    String::from_utf8_lossy(&raw[..raw.len().min(60)])
                ),
            ));
        };
        let field = &raw[..colon];
        let value = || String::from_utf8_lossy(&raw[colon + 1..]).trim().to_owned();
        if stanza.is_empty() {
            stanza.start = line_no;
        }
        stanza.fields += 1;
        match field {
            b"Package" => stanza.package = Some(value()),
            b"Version" => stanza.version = Some(value()),
            b"Architecture" => stanza.arch = Some(value()),
            // `Source: glibc (2.36-9)`: the version part is dropped.
            b"Source" => {
                stanza.source = value().split_whitespace().next().map(str::to_owned);
            }
            b"Status" => stanza.status = Some(value()),
            _ => {}
        }
    }
    if let Some(p) = stanza.finish()? {
        packages.push(p);
    }
    packages.sort();
    Ok(packages)
}

#[derive(Default)]
struct Stanza {
    start: usize,
    fields: usize,
    package: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    source: Option<String>,
    status: Option<String>,
}

impl Stanza {
    fn is_empty(&self) -> bool {
        self.fields == 0
    }

    fn finish(&mut self) -> Result<Option<Package>, (usize, String)> {
        let stanza = std::mem::take(self);
        if stanza.is_empty() {
            return Ok(None);
        }
        let line = stanza.start;
        let name = stanza
            .package
            .filter(|n| !n.is_empty())
            .ok_or((line, "stanza has no Package field".to_owned()))?;
        let status = stanza
            .status
            .ok_or_else(|| (line, format!("package {name} has no Status field")))?;
        let mut words = status.split_whitespace();
        let (Some(_want), Some(_flag), Some(state), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err((
                line,
                format!("package {name} has a malformed Status {status:?}"),
            ));
        };
        let on_disk = match state {
            "installed" | "half-configured" | "unpacked" | "triggers-awaited"
            | "triggers-pending" => true,
            "not-installed" | "config-files" | "half-installed" => false,
            other => return Err((line, format!("package {name} has unknown state {other:?}"))),
        };
        if !on_disk {
            return Ok(None);
        }
        let version = stanza
            .version
            .filter(|v| !v.is_empty())
            .ok_or_else(|| (line, format!("installed package {name} has no Version")))?;
        Ok(Some(Package {
            version,
            arch: stanza.arch,
            manager: "dpkg".into(),
            source: stanza.source.filter(|s| *s != name),
            installed_at_ms: None,
            name,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL_STATUS: &[u8] = include_bytes!("../../../tests/fixtures/dpkg/status");

    #[test]
    fn parses_a_real_status_file() {
        let packages = parse_status(REAL_STATUS).unwrap();
        // The fixture is the first 40 stanzas of a Debian 12 system's database,
        // all installed.
        let stanzas = String::from_utf8_lossy(REAL_STATUS)
            .matches("\nPackage: ")
            .count()
            + 1;
        assert_eq!(packages.len(), stanzas);
        assert_eq!(packages.len(), 40);
        assert!(packages
            .iter()
            .all(|p| !p.version.is_empty() && p.manager == "dpkg"));
        assert!(packages.windows(2).all(|w| w[0] <= w[1]), "sorted");
    }

    #[test]
    fn skips_removed_packages_and_keeps_half_configured_ones() {
        let text = b"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: half\nStatus: install ok half-configured\nVersion: 2.0-1\nArchitecture: amd64\nDescription: x\n more text\n .\n\n\n";
        let packages = parse_status(text).unwrap();
        assert_eq!(packages.len(), 1);
        assert_eq!(packages[0].name, "half");
        assert_eq!(packages[0].arch.as_deref(), Some("amd64"));
    }

    #[test]
    fn malformed_input_names_the_line() {
        let cases: &[(&[u8], usize, &str)] = &[
            (
                b"Package: a\nStatus: install ok installed\nVersion: 1\n\nthis is not a field\n",
                5,
                "expected `Field: value`",
            ),
            (b" leading continuation\n", 1, "continuation"),
            (b"Package: a\nVersion: 1\n", 1, "no Status"),
            (
                b"Package: a\nStatus: install ok installed\n",
                1,
                "no Version",
            ),
            (
                b"Package: a\nStatus: install ok\nVersion: 1\n",
                1,
                "malformed Status",
            ),
            (
                b"Version: 1\nStatus: install ok installed\n",
                1,
                "no Package",
            ),
            (b"", 1, "empty"),
        ];
        for (input, line, text) in cases {
            let (got_line, message) = parse_status(input).unwrap_err();
            assert_eq!(got_line, *line, "{message}");
            assert!(
                message.contains(text),
                "{message:?} should mention {text:?}"
            );
        }
    }

    #[test]
    fn a_database_cut_short_is_refused_not_half_invented() {
        // Cut just before the 21st stanza's Version line: that package has a
        // name and an installed status but no version, which dpkg never
        // writes, so the database is damaged and must not yield a package
        // list with an invented or missing entry.
        let text = std::str::from_utf8(REAL_STATUS).unwrap();
        let cut = text.match_indices("\nVersion: ").nth(20).unwrap().0 + 1;
        let (line, message) = parse_status(&REAL_STATUS[..cut]).unwrap_err();
        let stanza_start = text[..cut].rfind("\nPackage: ").unwrap() + 1;
        assert_eq!(line, text[..stanza_start].lines().count() + 1);
        assert!(message.contains("has no Version"), "{message}");
        // Cut at a stanza boundary instead: a shorter, valid list.
        let boundary = text.match_indices("\n\n").nth(19).unwrap().0 + 2;
        assert_eq!(parse_status(&REAL_STATUS[..boundary]).unwrap().len(), 20);
    }

    /// The parser and dpkg itself must agree on this very machine, when it
    /// has a dpkg database at all.
    #[test]
    fn agrees_with_dpkg_query_on_this_machine() {
        let Ok(output) = std::process::Command::new("dpkg-query")
            .args([
                "-W",
                "-f",
                "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\n",
            ])
            .output()
        else {
            eprintln!("dpkg-query is not installed; nothing to compare against");
            return;
        };
        assert!(output.status.success());
        type Row = (String, String, String, Option<String>);
        let mut expected: Vec<Row> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| {
                let mut f = line.split('\t');
                let abbrev = f.next()?;
                let on_disk = matches!(
                    abbrev.as_bytes().get(1),
                    Some(b'i' | b'F' | b'U' | b'W' | b't')
                );
                on_disk.then(|| {
                    let name: String = f.next().unwrap().into();
                    let version = f.next().unwrap().into();
                    let arch = f.next().unwrap().into();
                    let source = Some(f.next().unwrap().to_owned()).filter(|s| *s != name);
                    (name, version, arch, source)
                })
            })
            .collect();
        expected.sort();
        let packages = probe(&HostRoot::new("/")).unwrap();
        let mut got: Vec<Row> = packages
            .into_iter()
            .map(|p| (p.name, p.version, p.arch.unwrap_or_default(), p.source))
            .collect();
        got.sort();
        assert!(!got.is_empty());
        assert_eq!(got, expected);
    }
}
