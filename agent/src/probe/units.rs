//! systemd units from the unit directories: which services, sockets and
//! timers are installed, enabled (linked from a `.wants`/`.requires`
//! directory under `/etc/systemd/system`), masked (linked to `/dev/null`),
//! and, where systemd is running, active (it keeps an `invocation:` entry
//! in `/run/systemd/units` for every started unit). No D-Bus, no
//! `systemctl`.
//!
//! A host without any unit directory has no systemd: the section is not
//! observed. A host whose systemd is not running (a container, a fixture)
//! gets units without an active state.

use std::collections::{BTreeMap, BTreeSet};

use fathom_shared::wire::Unit;

use super::{HostRoot, ReadError};

const UNIT_DIRS: [&str; 3] = [
    "/etc/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
const KINDS: [&str; 3] = [".service", ".socket", ".timer"];

pub fn probe(root: &HostRoot) -> Result<Vec<Unit>, ReadError> {
    let mut installed: BTreeSet<String> = BTreeSet::new();
    let mut any_dir = false;
    for dir in UNIT_DIRS {
        let Ok(entries) = std::fs::read_dir(root.path(dir)) else {
            continue;
        };
        any_dir = true;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Templates (`getty@.service`) are not units until instantiated.
            if KINDS.iter().any(|k| name.ends_with(k)) && !name.contains("@.") {
                installed.insert(name);
            }
        }
    }
    if !any_dir {
        return Err(ReadError::Missing {
            path: root.path(UNIT_DIRS[0]),
        });
    }
    // Enabled: linked from a .wants or .requires directory.
    let mut enabled: BTreeSet<String> = BTreeSet::new();
    let etc = root.path("/etc/systemd/system");
    if let Ok(entries) = std::fs::read_dir(&etc) {
        for e in entries.flatten() {
            let dir = e.file_name().to_string_lossy().into_owned();
            if !(dir.ends_with(".wants") || dir.ends_with(".requires")) {
                continue;
            }
            for link in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                let name = link.file_name().to_string_lossy().into_owned();
                // An instance (`getty@tty1.service`) enables its template's unit.
                installed.insert(name.clone());
                enabled.insert(name);
            }
        }
    }
    let masked =
        |name: &str| std::fs::read_link(etc.join(name)).is_ok_and(|t| t.as_os_str() == "/dev/null");
    let running = root.path("/run/systemd/system").is_dir();
    let mut active: BTreeMap<String, bool> = BTreeMap::new();
    if running {
        for e in std::fs::read_dir(root.path("/run/systemd/units"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(unit) = name.strip_prefix("invocation:") {
                active.insert(unit.to_owned(), true);
            }
        }
    }
    Ok(installed
        .into_iter()
        .filter(|n| KINDS.iter().any(|k| n.ends_with(k)))
        .map(|name| Unit {
            state: if masked(&name) {
                "masked"
            } else if enabled.contains(&name) {
                "enabled"
            } else {
                "disabled"
            }
            .to_owned(),
            active: running.then(|| active.contains_key(&name)),
            name,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_masked_and_active_from_the_filesystem() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        let lib = p.join("lib/systemd/system");
        let etc = p.join("etc/systemd/system");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(etc.join("multi-user.target.wants")).unwrap();
        std::fs::create_dir_all(etc.join("timers.target.wants")).unwrap();
        for unit in [
            "ssh.service",
            "cron.service",
            "telnet.socket",
            "apt-daily.timer",
            "getty@.service",
            "multi-user.target",
        ] {
            std::fs::write(lib.join(unit), "[Unit]\n").unwrap();
        }
        std::os::unix::fs::symlink(
            "/lib/systemd/system/ssh.service",
            etc.join("multi-user.target.wants/ssh.service"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "/lib/systemd/system/apt-daily.timer",
            etc.join("timers.target.wants/apt-daily.timer"),
        )
        .unwrap();
        std::os::unix::fs::symlink("/dev/null", etc.join("telnet.socket")).unwrap();
        let units = probe(&HostRoot::new(p)).unwrap();
        let view: Vec<(&str, &str, Option<bool>)> = units
            .iter()
            .map(|u| (u.name.as_str(), u.state.as_str(), u.active))
            .collect();
        assert_eq!(
            view,
            [
                ("apt-daily.timer", "enabled", None),
                ("cron.service", "disabled", None),
                ("ssh.service", "enabled", None),
                ("telnet.socket", "masked", None),
            ]
        );
        // With systemd running, started units are active.
        std::fs::create_dir_all(p.join("run/systemd/system")).unwrap();
        std::fs::create_dir_all(p.join("run/systemd/units")).unwrap();
        std::os::unix::fs::symlink("0123", p.join("run/systemd/units/invocation:ssh.service"))
            .unwrap();
        let units = probe(&HostRoot::new(p)).unwrap();
        let ssh = units.iter().find(|u| u.name == "ssh.service").unwrap();
        assert_eq!(ssh.active, Some(true));
        assert_eq!(
            units
                .iter()
                .find(|u| u.name == "cron.service")
                .unwrap()
                .active,
            Some(false)
        );
        assert!(matches!(
            probe(&HostRoot::new("/nonexistent")),
            Err(ReadError::Missing { .. })
        ));
    }
}
