//! Installed packages from the rpm database in its SQLite form (RHEL 9,
//! Fedora 33+, openSUSE since 2021), read directly: no rpm process.
//!
//! The database keeps one row per package in its `Packages` table, each a
//! serialized rpm header ("header blob"): a count of index entries and the
//! size of a data store, then the entries (tag, type, offset, count; all
//! big-endian), then the store. The format is rpm's `headerImport`; only the
//! tags the inventory needs are read, and every offset is checked against
//! the store before use.
//!
//! Versions are `[epoch:]version-release`, as `rpm -q --qf
//! '%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}'` prints them. The older
//! Berkeley DB (`Packages`) and ndb (`Packages.db`) formats are recognised
//! and reported as not read.

use fathom_shared::wire::Package;
use rusqlite::{Connection, OpenFlags};

use super::PackagesError;
use crate::probe::HostRoot;

/// Where rpm keeps its database: `/var/lib/rpm` traditionally, and
/// `/usr/lib/sysimage/rpm` since Fedora 36 and openSUSE (where `/var/lib/rpm`
/// is often a link to it).
pub const DATABASE_PATHS: [&str; 2] = [
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
    "/var/lib/rpm/rpmdb.sqlite",
];
/// The legacy formats, by the file that gives each away.
const LEGACY: [(&str, &str); 4] = [
    ("/var/lib/rpm/Packages", "Berkeley DB"),
    ("/usr/lib/sysimage/rpm/Packages", "Berkeley DB"),
    ("/var/lib/rpm/Packages.db", "ndb"),
    ("/usr/lib/sysimage/rpm/Packages.db", "ndb"),
];

/// rpm's own limits (`hdrblobVerifyInfo`): more than this many tags, or a
/// data store larger than this, is not a header rpm would have written.
const MAX_TAGS: u32 = 0xffff;
const MAX_DATA: u32 = 0x0fff_ffff;

const TAG_NAME: i32 = 1000;
const TAG_VERSION: i32 = 1001;
const TAG_RELEASE: i32 = 1002;
const TAG_EPOCH: i32 = 1003;
const TAG_INSTALLTIME: i32 = 1008;
const TAG_ARCH: i32 = 1022;
const TAG_SOURCERPM: i32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// The installed packages, or `None` when the host has no rpm database.
pub fn probe(root: &HostRoot) -> Result<Option<Vec<Package>>, PackagesError> {
    if let Some(path) = DATABASE_PATHS
        .iter()
        .map(|p| root.path(p))
        .find(|p| p.is_file())
    {
        return read_database(&path).map(Some);
    }
    match LEGACY.iter().find(|(p, _)| root.path(p).is_file()) {
        Some((path, format)) => Err(PackagesError::RpmLegacy {
            path: root.path(path).display().to_string(),
            format,
        }),
        None => Ok(None),
    }
}

/// Reads every package of the database at `path`.
pub fn read_database(path: &std::path::Path) -> Result<Vec<Package>, PackagesError> {
    let shown = path.display().to_string();
    let open_error = |source| PackagesError::RpmOpen {
        path: shown.clone(),
        source,
    };
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    // rpm may be writing: wait for its lock rather than fail at once.
    db.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(open_error)?;
    let mut statement = db
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(open_error)?;
    let mut rows = statement.query([]).map_err(open_error)?;
    let mut packages = Vec::new();
    while let Some(row) = rows.next().map_err(open_error)? {
        let record: i64 = row.get(0).map_err(open_error)?;
        let blob = row.get_ref(1).map_err(open_error)?;
        let blob = blob.as_blob().map_err(|e| open_error(e.into()))?;
        let package = parse_header(blob).map_err(|message| PackagesError::RpmRecord {
            path: shown.clone(),
            record,
            message,
        })?;
        packages.push(package);
    }
    packages.sort();
    Ok(packages)
}

/// One header blob's package.
pub fn parse_header(blob: &[u8]) -> Result<Package, String> {
    let header = Header::parse(blob)?;
    let name = header.string(TAG_NAME)?.ok_or("the header has no name")?;
    let version = header
        .string(TAG_VERSION)?
        .ok_or_else(|| format!("package {name} has no version"))?;
    let release = header
        .string(TAG_RELEASE)?
        .ok_or_else(|| format!("package {name} has no release"))?;
    let version = match header.int32(TAG_EPOCH)? {
        Some(epoch) => format!("{epoch}:{version}-{release}"),
        None => format!("{version}-{release}"),
    };
    let source = header
        .string(TAG_SOURCERPM)?
        .and_then(|srpm| source_name(&srpm))
        .filter(|s| *s != name);
    Ok(Package {
        version,
        arch: header.string(TAG_ARCH)?,
        manager: "rpm".into(),
        source,
        installed_at_ms: header.int32(TAG_INSTALLTIME)?.map(|t| i64::from(t) * 1000),
        name,
    })
}

/// `bash-5.1.8-6.el9.src.rpm` → `bash`.
fn source_name(srpm: &str) -> Option<String> {
    let stem = srpm
        .strip_suffix(".src.rpm")
        .or_else(|| srpm.strip_suffix(".nosrc.rpm"))?;
    let (rest, _release) = stem.rsplit_once('-')?;
    let (name, _version) = rest.rsplit_once('-')?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// A parsed header: the index, and the data store it points into.
struct Header<'a> {
    entries: Vec<Entry>,
    data: &'a [u8],
}

#[derive(Clone, Copy)]
struct Entry {
    tag: i32,
    kind: u32,
    offset: usize,
    count: u32,
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> Result<Header<'a>, String> {
        let word = |at: usize| -> Option<u32> {
            blob.get(at..at + 4)
                .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
        };
        let (Some(tags), Some(data_len)) = (word(0), word(4)) else {
            return Err(format!(
                "the header is {} bytes, too short for its preamble",
                blob.len()
            ));
        };
        if tags == 0 || tags > MAX_TAGS {
            return Err(format!("the header claims {tags} tags"));
        }
        if data_len > MAX_DATA {
            return Err(format!("the header claims a {data_len}-byte data store"));
        }
        let index_end = 8 + tags as usize * 16;
        let expected = index_end + data_len as usize;
        if blob.len() != expected {
            return Err(format!(
                "the header is {} bytes but its preamble says {expected} ({tags} tags, {data_len} bytes of data)",
                blob.len()
            ));
        }
        let entries = (0..tags as usize)
            .map(|i| {
                let at = 8 + i * 16;
                Entry {
                    tag: word(at).unwrap() as i32,
                    kind: word(at + 4).unwrap(),
                    offset: word(at + 8).unwrap() as usize,
                    count: word(at + 12).unwrap(),
                }
            })
            .collect();
        Ok(Header {
            entries,
            data: &blob[index_end..],
        })
    }

    fn entry(&self, tag: i32) -> Option<Entry> {
        self.entries.iter().copied().find(|e| e.tag == tag)
    }

    /// A string tag (or the first of a string array / i18n string).
    fn string(&self, tag: i32) -> Result<Option<String>, String> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        if !matches!(e.kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) || e.count == 0 {
            return Err(format!(
                "tag {tag} has type {} and count {}, not a string",
                e.kind, e.count
            ));
        }
        let rest = self
            .data
            .get(e.offset..)
            .ok_or_else(|| format!("tag {tag} points past the data store"))?;
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| format!("tag {tag}'s string runs off the data store"))?;
        Ok(Some(String::from_utf8_lossy(&rest[..end]).into_owned()))
    }

    fn int32(&self, tag: i32) -> Result<Option<u32>, String> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        if e.kind != TYPE_INT32 || e.count == 0 {
            return Err(format!(
                "tag {tag} has type {} and count {}, not a number",
                e.kind, e.count
            ));
        }
        let bytes = self
            .data
            .get(e.offset..e.offset + 4)
            .ok_or_else(|| format!("tag {tag} points past the data store"))?;
        Ok(Some(u32::from_be_bytes(bytes.try_into().unwrap())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rpm");

    /// The fixture, copied: SQLite may add `-shm`/`-wal` files beside a
    /// database in WAL mode, and the source tree must stay clean.
    fn fixture_root() -> (tempfile::TempDir, HostRoot) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("var/lib/rpm");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::copy(
            format!("{FIXTURE}/var/lib/rpm/rpmdb.sqlite"),
            db.join("rpmdb.sqlite"),
        )
        .unwrap();
        let root = HostRoot::new(dir.path());
        (dir, root)
    }

    fn blobs(root: &HostRoot) -> Vec<Vec<u8>> {
        let db = Connection::open(root.path("/var/lib/rpm/rpmdb.sqlite")).unwrap();
        let mut st = db.prepare("SELECT blob FROM Packages").unwrap();
        st.query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// The fixture was made by Debian's rpm 4.18 (`rpm --initdb`, then
    /// `rpm -i --justdb` of three packages built by rpmbuild from
    /// `tests/fixtures/rpm/*.spec`; `tests/fixtures/make-package-databases.sh`).
    #[test]
    fn reads_a_database_rpm_wrote() {
        let (_dir, root) = fixture_root();
        let packages = probe(&root).unwrap().unwrap();
        assert_eq!(
            crate::probe::package_lines(&packages),
            [
                "fathom-hello 2:1.2.3-4.fc39 noarch -",
                "fathom-libs 0.9-1.el9 x86_64 fathom-tools",
                "fathom-tools 0.9-1.el9 x86_64 -",
            ]
        );
        assert!(packages.iter().all(|p| p.manager == "rpm"));
        // Installed on 2026-11-23.
        assert!(packages.iter().all(|p| p
            .installed_at_ms
            .is_some_and(|t| t / 1000 / 86_400 == 20_780)));
    }

    /// Our reading and rpm's own, of the same database.
    #[test]
    fn agrees_with_rpm_itself() {
        let (dir, root) = fixture_root();
        let Ok(output) = std::process::Command::new("rpm")
            .arg("--root")
            .arg(dir.path())
            .args([
                "--dbpath",
                "/var/lib/rpm",
                "-qa",
                "--qf",
                "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{INSTALLTIME}\\n",
            ])
            .output()
        else {
            eprintln!("rpm is not installed; nothing to compare against");
            return;
        };
        assert!(output.status.success(), "{output:?}");
        let mut expected: Vec<String> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        expected.sort();
        let got: Vec<String> = probe(&root)
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|p| {
                format!(
                    "{}\t{}\t{}\t{}",
                    p.name,
                    p.version,
                    p.arch.as_deref().unwrap_or("(none)"),
                    p.installed_at_ms.unwrap() / 1000
                )
            })
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_damaged_header_is_an_error_naming_the_record() {
        let (_dir, root) = fixture_root();
        let blob = blobs(&root).remove(0);
        // Every truncation is refused, never half-read.
        for cut in [0, 4, 8, 100, blob.len() - 1] {
            assert!(parse_header(&blob[..cut]).is_err(), "cut at {cut}");
        }
        // An offset pointing outside the store.
        let mut bad = blob.clone();
        for i in 0..u32::from_be_bytes(bad[..4].try_into().unwrap()) as usize {
            let at = 8 + i * 16;
            if i32::from_be_bytes(bad[at..at + 4].try_into().unwrap()) == TAG_NAME {
                bad[at + 8..at + 12].copy_from_slice(&u32::MAX.to_be_bytes());
            }
        }
        let err = parse_header(&bad).unwrap_err();
        assert!(err.contains("tag 1000 points past"), "{err}");
        // And through the probe: the error names the file and the record.
        let db = Connection::open(root.path("/var/lib/rpm/rpmdb.sqlite")).unwrap();
        db.execute("UPDATE Packages SET blob = ?1 WHERE hnum = 2", [&bad])
            .unwrap();
        drop(db);
        let err = probe(&root).unwrap_err().to_string();
        assert!(
            err.contains("rpmdb.sqlite, package record 2: tag 1000"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_and_the_old_formats_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path());
        assert!(probe(&root).unwrap().is_none());
        std::fs::create_dir_all(dir.path().join("var/lib/rpm")).unwrap();
        std::fs::write(dir.path().join("var/lib/rpm/Packages"), b"\0\x06\x15\x61").unwrap();
        let err = probe(&root).unwrap_err().to_string();
        assert!(err.contains("Berkeley DB"), "{err}");
        std::fs::write(
            dir.path().join("var/lib/rpm/rpmdb.sqlite"),
            b"this is not sqlite at all, just text that is long enough to have a header",
        )
        .unwrap();
        let err = crate::probe::error_chain(&probe(&root).unwrap_err());
        assert!(
            err.contains("rpmdb.sqlite") && err.contains("not a database"),
            "{err}"
        );
    }

    #[test]
    fn source_names_come_from_the_source_rpm() {
        assert_eq!(
            source_name("bash-5.1.8-6.el9.src.rpm").as_deref(),
            Some("bash")
        );
        assert_eq!(
            source_name("python-requests-2.25.1-8.el9.src.rpm").as_deref(),
            Some("python-requests")
        );
        assert_eq!(source_name("weird.src.rpm"), None);
        assert_eq!(source_name("no-suffix-1-1"), None);
    }
}
