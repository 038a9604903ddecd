//! Operating system identity: os-release(5), kernel release, hostname and
//! FQDN, machine-id, uptime and boot time, time zone. All from files under
//! the host root.

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
        boot_time_ms: root.read_trimmed("/proc/stat").and_then(|stat| {
            stat.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|t| t.trim().parse::<i64>().ok())
                .and_then(|secs| secs.checked_mul(1000))
        }),
        timezone: timezone(root),
        fqdn: None,
    };
    let fqdn = root
        .read("/etc/hosts")
        .ok()
        .and_then(|h| fqdn_from_hosts(&String::from_utf8_lossy(&h), &host.hostname));
    (Host { fqdn, ..host }, error)
}

/// `/etc/timezone` (Debian), else the zone `/etc/localtime` links to.
fn timezone(root: &HostRoot) -> Option<String> {
    if let Some(tz) = root.read_trimmed("/etc/timezone") {
        return Some(tz);
    }
    let target = std::fs::read_link(root.path("/etc/localtime")).ok()?;
    let target = target.to_string_lossy();
    target
        .split_once("zoneinfo/")
        .map(|(_, zone)| zone.to_owned())
        .filter(|z| !z.is_empty())
}

/// The first name with a dot on an `/etc/hosts` line that also names the
/// host (`127.0.1.1 web-1.example.com web-1`).
pub fn fqdn_from_hosts(hosts: &str, hostname: &str) -> Option<String> {
    if hostname.is_empty() {
        return None;
    }
    if hostname.contains('.') {
        return Some(hostname.to_owned());
    }
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let names: Vec<&str> = line.split_whitespace().skip(1).collect();
        let prefix = format!("{hostname}.");
        names
            .iter()
            .any(|n| *n == hostname || n.starts_with(&prefix))
            .then(|| {
                names
                    .iter()
                    .find(|n| n.starts_with(&prefix))
                    .map(|n| n.to_string())
            })
            .flatten()
    })
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
    fn fqdn_and_timezone_and_boot_time() {
        let hosts = "127.0.0.1 localhost\n127.0.1.1 web-1.example.com web-1 # added by the installer\n::1 ip6-localhost\n";
        assert_eq!(
            fqdn_from_hosts(hosts, "web-1").as_deref(),
            Some("web-1.example.com")
        );
        assert_eq!(fqdn_from_hosts(hosts, "db-1"), None);
        assert_eq!(fqdn_from_hosts("", "a.b.c").as_deref(), Some("a.b.c"));
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::create_dir_all(root.path().join("proc")).unwrap();
        std::os::unix::fs::symlink(
            "/usr/share/zoneinfo/Europe/Paris",
            root.path().join("etc/localtime"),
        )
        .unwrap();
        std::fs::write(
            root.path().join("proc/stat"),
            "cpu  1 2 3\nbtime 1795400000\nprocesses 9\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/hostname"), "web-1\n").unwrap();
        std::fs::write(root.path().join("etc/hosts"), hosts).unwrap();
        let (host, _) = probe(&HostRoot::new(root.path()));
        assert_eq!(host.timezone.as_deref(), Some("Europe/Paris"));
        assert_eq!(host.boot_time_ms, Some(1_795_400_000_000));
        assert_eq!(host.fqdn.as_deref(), Some("web-1.example.com"));
    }

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
