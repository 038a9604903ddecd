//! Watched files: a configured list of absolute paths or glob patterns
//! (`/etc/ssh/sshd_config`, `/etc/sudoers.d/*`), each reported as its
//! SHA-256, size, mode, owner and modification time. Content is hashed as
//! a stream and never kept or sent.
//!
//! A configured plain path that does not exist is reported as `missing` (a
//! deleted `sshd_config` is a change); a pattern matching nothing reports
//! nothing. Symlinks are reported as links (with their target), not
//! followed. One unreadable file gives that file an `error`, not the probe.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use fathom_shared::wire::WatchedFile;
use sha2::{Digest, Sha256};

use super::HostRoot;

/// Files larger than this are not hashed (their size and metadata still are).
pub const MAX_HASH_BYTES: u64 = 256 * 1024 * 1024;
/// Matches of one pattern beyond this are dropped (and said so).
pub const MAX_MATCHES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("watch pattern {pattern:?} is not a valid glob")]
    Pattern {
        pattern: String,
        #[source]
        source: glob::PatternError,
    },
    #[error("watch pattern {pattern:?} matches more than {MAX_MATCHES} files; the rest are not reported")]
    TooMany { pattern: String },
}

/// Checks a configured pattern (for config validation).
pub fn validate(pattern: &str) -> Result<(), String> {
    if !pattern.starts_with('/') {
        return Err(format!("{pattern:?} is not an absolute path"));
    }
    glob::Pattern::new(pattern)
        .map(|_| ())
        .map_err(|e| format!("{pattern:?} is not a valid glob: {e}"))
}

/// Fingerprints every file the patterns name, in path order.
pub fn probe(root: &HostRoot, patterns: &[String]) -> (Vec<WatchedFile>, Vec<FilesError>) {
    let names = Names::load(root);
    let mut found: BTreeMap<String, WatchedFile> = BTreeMap::new();
    let mut errors = Vec::new();
    let base = root.path("/");
    let base = base.to_string_lossy();
    let base = base.trim_end_matches('/');
    for pattern in patterns {
        let literal = !pattern.contains(['*', '?', '[']);
        let full = format!("{}{pattern}", glob::Pattern::escape(base));
        let paths = match glob::glob(&full) {
            Ok(paths) => paths,
            Err(source) => {
                errors.push(FilesError::Pattern {
                    pattern: pattern.clone(),
                    source,
                });
                continue;
            }
        };
        let mut matched = 0;
        for entry in paths {
            let path = match entry {
                Ok(p) => p,
                // A directory on the way could not be listed: report the
                // path it failed on.
                Err(e) => {
                    let host = host_path(base, e.path());
                    found.entry(host.clone()).or_insert_with(|| WatchedFile {
                        path: host,
                        kind: "other".into(),
                        error: Some(e.error().to_string()),
                        ..WatchedFile::default()
                    });
                    continue;
                }
            };
            matched += 1;
            if matched > MAX_MATCHES {
                errors.push(FilesError::TooMany {
                    pattern: pattern.clone(),
                });
                break;
            }
            let host = host_path(base, &path);
            found.insert(host.clone(), fingerprint(&path, host, &names));
        }
        if matched == 0 && literal {
            found.insert(
                pattern.clone(),
                WatchedFile {
                    path: pattern.clone(),
                    kind: "missing".into(),
                    ..WatchedFile::default()
                },
            );
        }
    }
    (found.into_values().collect(), errors)
}

fn host_path(base: &str, path: &Path) -> String {
    let text = path.to_string_lossy();
    match text.strip_prefix(base) {
        Some(rest) if rest.starts_with('/') => rest.to_owned(),
        _ => text.into_owned(),
    }
}

fn fingerprint(path: &Path, host: String, names: &Names) -> WatchedFile {
    let mut out = WatchedFile {
        path: host,
        ..WatchedFile::default()
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            out.kind = "missing".into();
            return out;
        }
        Err(e) => {
            out.kind = "other".into();
            out.error = Some(e.to_string());
            return out;
        }
    };
    let kind = meta.file_type();
    out.kind = if kind.is_symlink() {
        "symlink"
    } else if kind.is_dir() {
        "dir"
    } else if kind.is_file() {
        "file"
    } else {
        "other"
    }
    .into();
    out.size = meta.len();
    out.mode = Some(format!("{:04o}", meta.mode() & 0o7777));
    out.owner = Some(format!(
        "{}:{}",
        names.user(meta.uid()),
        names.group(meta.gid())
    ));
    out.mtime_ms = meta
        .mtime()
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(meta.mtime_nsec() / 1_000_000));
    if kind.is_symlink() {
        out.target = std::fs::read_link(path)
            .ok()
            .map(|t| t.to_string_lossy().into_owned());
    } else if kind.is_file() {
        if meta.len() > MAX_HASH_BYTES {
            out.error = Some(format!("larger than {MAX_HASH_BYTES} bytes; not hashed"));
        } else {
            match hash(path) {
                Ok(h) => out.sha256 = Some(h),
                Err(e) => out.error = Some(e.to_string()),
            }
        }
    }
    out
}

fn hash(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut reader = file.take(MAX_HASH_BYTES);
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// User and group names from the host's `/etc/passwd` and `/etc/group`.
struct Names {
    users: BTreeMap<u32, String>,
    groups: BTreeMap<u32, String>,
}

impl Names {
    fn load(root: &HostRoot) -> Names {
        let table = |file: &str| -> BTreeMap<u32, String> {
            let Ok(bytes) = root.read(file) else {
                return BTreeMap::new();
            };
            String::from_utf8_lossy(&bytes)
                .lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let id = f.nth(1)?.parse().ok()?;
                    Some((id, name.to_owned()))
                })
                .collect()
        };
        Names {
            users: table("/etc/passwd"),
            groups: table("/etc/group"),
        }
    }

    fn user(&self, uid: u32) -> String {
        self.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }

    fn group(&self, gid: u32) -> String {
        self.groups
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| gid.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn fingerprints_files_globs_links_and_absences() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        std::fs::create_dir_all(p.join("etc/ssh")).unwrap();
        std::fs::create_dir_all(p.join("etc/sudoers.d")).unwrap();
        std::fs::write(p.join("etc/ssh/sshd_config"), "PermitRootLogin no\n").unwrap();
        std::fs::set_permissions(
            p.join("etc/ssh/sshd_config"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::fs::write(p.join("etc/sudoers.d/ops"), "%ops ALL=(ALL) ALL\n").unwrap();
        std::fs::write(p.join("etc/sudoers.d/README"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/ssh/sshd_config", p.join("etc/sudoers.d/link")).unwrap();
        let uid = std::fs::metadata(p.join("etc/ssh/sshd_config"))
            .unwrap()
            .uid();
        std::fs::write(
            p.join("etc/passwd"),
            format!("someone:x:{uid}:{uid}::/:/bin/sh\n"),
        )
        .unwrap();
        let patterns = vec![
            "/etc/ssh/sshd_config".to_string(),
            "/etc/sudoers.d/*".to_string(),
            "/etc/ssh/ssh_config".to_string(),
            "/etc/nothing/*".to_string(),
        ];
        let (files, errors) = probe(&HostRoot::new(p), &patterns);
        assert!(errors.is_empty(), "{errors:?}");
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/etc/ssh/ssh_config",
                "/etc/ssh/sshd_config",
                "/etc/sudoers.d/README",
                "/etc/sudoers.d/link",
                "/etc/sudoers.d/ops"
            ]
        );
        let sshd = &files[1];
        assert_eq!(sshd.kind, "file");
        assert_eq!(sshd.mode.as_deref(), Some("0640"));
        assert_eq!(sshd.size, 19);
        assert!(sshd.owner.as_deref().unwrap().starts_with("someone:"));
        // `printf 'PermitRootLogin no\n' | sha256sum`
        assert_eq!(
            sshd.sha256.as_deref(),
            Some(hex(&Sha256::digest(b"PermitRootLogin no\n")).as_str())
        );
        assert_eq!(files[0].kind, "missing");
        assert_eq!(files[3].kind, "symlink");
        assert_eq!(files[3].target.as_deref(), Some("/etc/ssh/sshd_config"));
        assert_eq!(files[3].sha256, None);
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        assert!(validate("etc/passwd").unwrap_err().contains("absolute"));
        assert!(validate("/etc/[").unwrap_err().contains("glob"));
        assert!(validate("/etc/sudoers.d/*").is_ok());
        let (files, errors) = probe(&HostRoot::new("/nonexistent"), &["/etc/[".to_string()]);
        assert!(files.is_empty());
        assert!(errors[0].to_string().contains("not a valid glob"));
    }
}
