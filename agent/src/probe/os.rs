//! Operating system identity: os-release(5), kernel release, hostname,
//! machine-id, uptime. All from files under the host root.

use fathom_shared::wire::{Host, Os};

use super::{HostRoot, ReadError};

/// Returns what it found; the error, if any, is about os-release only (the
/// other fields are optional and simply absent when unreadable).
pub fn probe(root: &HostRoot) -> (Host, Option<ReadError>) {
    let (os, error) = match read_os_release(root) {
        Ok(os) => (Some(os), None),
        Err(e) => (None, Some(e)),
    };
    let hostname = root
        .read_trimmed("/proc/sys/kernel/hostname")
        .filter(|_| root.is_real_root())
        .or_else(|| root.read_trimmed("/etc/hostname"))
        .unwrap_or_default();
    let host = Host {
        hostname,
        os,
        kernel: root.read_trimmed("/proc/sys/kernel/osrelease"),
        arch: std::env::consts::ARCH.to_owned(),
        machine_id: root
            .read_trimmed("/etc/machine-id")
            .or_else(|| root.read_trimmed("/var/lib/dbus/machine-id"))
            .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())),
        uptime_secs: root
            .read_trimmed("/proc/uptime")
            .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
            .map(|secs| secs as u64),
    };
    (host, error)
}

fn read_os_release(root: &HostRoot) -> Result<Os, ReadError> {
    let bytes = match root.read("/etc/os-release") {
        Err(ReadError::Missing { .. }) => root.read("/usr/lib/os-release")?,
        other => other?,
    };
    Ok(parse_os_release(&String::from_utf8_lossy(&bytes)))
}

/// Parses os-release(5): `KEY=value` lines, values optionally quoted.
pub fn parse_os_release(text: &str) -> Os {
    let mut os = Os {
        id: "linux".into(),
        name: "Linux".into(),
        ..Os::default()
    };
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key {
            "ID" => os.id = value,
            "NAME" => os.name = value,
            "VERSION" => os.version = Some(value),
            "VERSION_ID" => os.version_id = Some(value),
            "PRETTY_NAME" => os.pretty_name = Some(value),
            _ => {}
        }
    }
    os
}

fn unquote(value: &str) -> String {
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_os_release() {
        let os = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        );
        assert_eq!(os.id, "debian");
        assert_eq!(os.name, "Debian GNU/Linux");
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert_eq!(
            os.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn quoting_and_escapes() {
        let os = parse_os_release("ID='rhel'\nNAME=\"Red \\\"Hat\\\"\"\n# comment\ngarbage\n");
        assert_eq!(os.id, "rhel");
        assert_eq!(os.name, "Red \"Hat\"");
    }

    #[test]
    fn a_fixture_root_is_read_and_a_missing_os_release_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/hostname"), "web7\n").unwrap();
        std::fs::write(
            dir.path().join("etc/machine-id"),
            "0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        let (host, error) = probe(&HostRoot::new(dir.path()));
        assert_eq!(host.hostname, "web7");
        assert_eq!(
            host.machine_id.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert!(host.os.is_none());
        assert!(error.unwrap().to_string().contains("os-release"));
    }
}
