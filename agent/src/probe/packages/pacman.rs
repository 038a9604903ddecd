//! Installed packages from pacman's local database
//! (`/var/lib/pacman/local/<name>-<version>/desc`), read directly.
//!
//! Each `desc` file is a list of `%FIELD%` headers, each followed by its
//! values one per line and a blank line. Versions are pacman's
//! `[epoch:]pkgver-pkgrel`, exactly as `pacman -Q` prints them.

use fathom_shared::wire::Package;

use super::PackagesError;
use crate::probe::{list_dir, HostRoot, Malformed};

pub const LOCAL_DB: &str = "/var/lib/pacman/local";

/// The installed packages, or `None` when the host has no pacman database.
pub fn probe(root: &HostRoot) -> Result<Option<Vec<Package>>, PackagesError> {
    let Some(entries) = list_dir(&root.path(LOCAL_DB))? else {
        return Ok(None);
    };
    let mut packages = Vec::new();
    for entry in entries {
        // ALPM_DB_VERSION and stray files sit beside the package directories.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let desc = format!("{LOCAL_DB}/{}/desc", entry.file_name().to_string_lossy());
        let text = root.read(&desc)?;
        let package =
            parse_desc(&String::from_utf8_lossy(&text)).map_err(Malformed::at(root, &desc))?;
        packages.push(package);
    }
    packages.sort();
    Ok(Some(packages))
}

/// One `desc` file. Errors carry the 1-based line number.
pub fn parse_desc(text: &str) -> Result<Package, (usize, String)> {
    let mut package = Package {
        manager: "pacman".into(),
        ..Package::default()
    };
    let mut field: Option<(usize, &str)> = None;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.is_empty() {
            field = None;
            continue;
        }
        if line.len() > 2 && line.starts_with('%') && line.ends_with('%') {
            field = Some((line_no, &line[1..line.len() - 1]));
            continue;
        }
        let Some((_, name)) = field else {
            return Err((line_no, format!("value {line:?} outside any %FIELD%")));
        };
        match name {
            "NAME" => package.name = line.to_owned(),
            "VERSION" => package.version = line.to_owned(),
            "ARCH" => package.arch = Some(line.to_owned()),
            "BASE" => package.source = Some(line.to_owned()),
            "INSTALLDATE" => {
                let secs: i64 = line
                    .parse()
                    .map_err(|_| (line_no, format!("INSTALLDATE {line:?} is not a number")))?;
                let ms = secs.checked_mul(1000).ok_or_else(|| {
                    (
                        line_no,
                        format!("INSTALLDATE {line:?} is not a plausible time"),
                    )
                })?;
                package.installed_at_ms = Some(ms);
            }
            _ => {}
        }
    }
    if package.name.is_empty() {
        return Err((1, "no %NAME%".into()));
    }
    if package.version.is_empty() {
        return Err((1, format!("package {} has no %VERSION%", package.name)));
    }
    if package.source.as_deref() == Some(package.name.as_str()) {
        package.source = None;
    }
    Ok(package)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pacman");

    /// The fixture was written by Debian's pacman 6 (`pacman -U --dbonly`
    /// of three packages; `tests/fixtures/make-package-databases.sh`).
    #[test]
    fn an_install_date_past_any_clock_is_an_error_not_an_overflow() {
        // Found by fuzzing: seconds whose milliseconds overflow an i64.
        let desc = "%NAME%\nhello\n\n%VERSION%\n1-1\n\n%INSTALLDATE%\n17954556795455657\n";
        let (line, message) = parse_desc(desc).unwrap_err();
        assert_eq!(line, 8);
        assert!(message.contains("not a plausible time"), "{message}");
    }

    #[test]
    fn reads_a_database_pacman_wrote() {
        let packages = probe(&HostRoot::new(FIXTURE)).unwrap().unwrap();
        assert_eq!(
            crate::probe::package_lines(&packages),
            [
                "fathom-hello 1:1.2.3-4 x86_64 -",
                "fathom-libs 0.9-1 any fathom-tools",
                "fathom-tools 0.9-1 x86_64 -",
            ]
        );
        assert!(packages.iter().all(|p| p.installed_at_ms.is_some()));
    }

    /// Our reading and pacman's own, of the same database.
    #[test]
    fn agrees_with_pacman_itself() {
        let Ok(output) = std::process::Command::new("pacman")
            .args(["--root", FIXTURE, "--dbpath"])
            .arg(format!("{FIXTURE}/var/lib/pacman"))
            .arg("-Q")
            .output()
        else {
            eprintln!("pacman is not installed; nothing to compare against");
            return;
        };
        assert!(output.status.success(), "{output:?}");
        let expected = String::from_utf8(output.stdout).unwrap();
        let got: String = probe(&HostRoot::new(FIXTURE))
            .unwrap()
            .unwrap()
            .iter()
            .map(|p| format!("{} {}\n", p.name, p.version))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_damaged_desc_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("var/lib/pacman/local/zlib-1:1.3-1");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(
            pkg.join("desc"),
            "%NAME%\nzlib\n\n%INSTALLDATE%\nyesterday\n",
        )
        .unwrap();
        let err = probe(&HostRoot::new(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("zlib-1:1.3-1/desc, line 5: INSTALLDATE"),
            "{err}"
        );
        std::fs::write(pkg.join("desc"), "%NAME%\nzlib\n\n").unwrap();
        let err = probe(&HostRoot::new(dir.path())).unwrap_err().to_string();
        assert!(err.contains("no %VERSION%"), "{err}");
        std::fs::remove_file(pkg.join("desc")).unwrap();
        let err = probe(&HostRoot::new(dir.path())).unwrap_err().to_string();
        assert!(err.contains("desc does not exist"), "{err}");
        assert_eq!(parse_desc("stray\n").unwrap_err().0, 1);
    }
}
