//! Change push: watches what a change on the host touches (the package
//! database, the watched files, their directories) with inotify, and asks
//! the producer for an inventory shortly after, so a change reaches the
//! collector within seconds instead of at the next scheduled inventory.
//!
//! Task: the **watcher**, a thread blocked in `read_events_blocking`
//! (inotify has no timeout of its own), sending each relevant event on a
//! channel. [`debounced`] turns a burst of events (an `apt upgrade` writes
//! the dpkg database dozens of times) into one request, sent when the host
//! has been quiet for the debounce time, or at the latest after ten times
//! that.
//!
//! What is watched: the directory holding the dpkg status file (dpkg
//! replaces `status` by renaming `status-new` over it), the systemd unit
//! directories under `/etc` where enabling and masking leave links, and,
//! for each watched-file pattern, the deepest directory without a wildcard. Events
//! for other names in those directories are ignored. A directory that does
//! not exist is skipped with a log line; the periodic inventory still
//! covers it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use inotify::{Inotify, WatchMask};
use tokio::sync::mpsc;

use crate::probe::HostRoot;

/// Directories to watch, each with the names in it that matter (`None`:
/// any name, for a glob).
pub fn targets(
    root: &HostRoot,
    watch_files: &[String],
) -> BTreeMap<PathBuf, Option<Vec<OsString>>> {
    let mut out: BTreeMap<PathBuf, Option<Vec<OsString>>> = BTreeMap::new();
    let mut add = |dir: PathBuf, name: Option<OsString>| {
        let entry = out.entry(dir).or_insert_with(|| Some(Vec::new()));
        match (entry.as_mut(), name) {
            (Some(names), Some(n)) => names.push(n),
            (_, None) => *entry = None,
            (None, Some(_)) => {}
        }
    };
    let status = root.path(crate::probe::packages::dpkg::STATUS_PATH);
    if let (Some(dir), Some(name)) = (status.parent(), status.file_name()) {
        add(dir.to_owned(), Some(name.to_owned()));
    }
    // The other package databases, where the host has them: the file each
    // tool rewrites on every transaction (rpm in WAL mode writes the `-wal`
    // file; flatpak touches `.changed` for watchers like this one; snapd
    // rewrites its state), or the directory it adds and removes entries in.
    for (dir, names) in [
        ("/var/lib/rpm", &["rpmdb.sqlite", "rpmdb.sqlite-wal"][..]),
        (
            "/usr/lib/sysimage/rpm",
            &["rpmdb.sqlite", "rpmdb.sqlite-wal"],
        ),
        ("/lib/apk/db", &["installed"]),
        ("/var/lib/pacman/local", &[]),
        ("/var/lib/snapd", &["state.json"]),
        ("/var/lib/flatpak", &[".changed"]),
    ] {
        let path = root.path(dir);
        if !path.is_dir() {
            continue;
        }
        if names.is_empty() {
            add(path, None);
        } else {
            for name in names {
                add(path.clone(), Some(OsString::from(name)));
            }
        }
    }
    // Units enabled, disabled or masked: links appear in these directories
    // (inotify does not recurse, so the usual `.wants` ones are named).
    for dir in [
        "/etc/systemd/system",
        "/etc/systemd/system/multi-user.target.wants",
        "/etc/systemd/system/timers.target.wants",
        "/etc/systemd/system/sockets.target.wants",
    ] {
        let path = root.path(dir);
        if path.is_dir() {
            add(path, None);
        }
    }
    for pattern in watch_files {
        let literal: Vec<&str> = pattern
            .split('/')
            .take_while(|c| !c.contains(['*', '?', '[']))
            .collect();
        let full_literal = literal.len() == pattern.split('/').count();
        let path = root.path(&literal.join("/"));
        if full_literal {
            if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
                add(dir.to_owned(), Some(name.to_owned()));
            }
        } else {
            add(path, None);
        }
    }
    out
}

/// Starts the watcher thread; events arrive on the returned channel. `None`
/// if inotify is not available (the agent then relies on its schedule).
pub fn spawn(targets: BTreeMap<PathBuf, Option<Vec<OsString>>>) -> Option<mpsc::Receiver<PathBuf>> {
    let inotify = match Inotify::init() {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot start inotify; changes are reported at the next scheduled inventory");
            return None;
        }
    };
    let mask = WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::ATTRIB;
    let mut watched = BTreeMap::new();
    for (dir, names) in targets {
        match inotify.watches().add(&dir, mask) {
            Ok(wd) => {
                tracing::debug!(dir = %dir.display(), "Watching for changes");
                watched.insert(wd, (dir, names));
            }
            Err(e) => {
                tracing::info!(dir = %dir.display(), error = %e, "Not watching a directory (changes there wait for the scheduled inventory)")
            }
        }
    }
    if watched.is_empty() {
        return None;
    }
    let (tx, rx) = mpsc::channel(64);
    let mut inotify = inotify;
    std::thread::Builder::new()
        .name("fathom-watch".into())
        .spawn(move || {
            let mut buffer = [0u8; 4096];
            loop {
                let events = match inotify.read_events_blocking(&mut buffer) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(error = %e, "inotify failed; change push stops");
                        return;
                    }
                };
                for event in events {
                    let Some((dir, names)) = watched.get(&event.wd) else {
                        continue;
                    };
                    let relevant = match (names, event.name) {
                        (None, _) => true,
                        (Some(names), Some(name)) => names.iter().any(|n| n == name),
                        (Some(_), None) => false,
                    };
                    if relevant {
                        let path = dir.join(event.name.unwrap_or_default());
                        // The producer is gone: the agent is stopping.
                        if tx.blocking_send(path).is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .ok()?;
    Some(rx)
}

/// Waits for the next burst of events to end: returns when `quiet` passed
/// with no event, or `10 × quiet` after the first, whichever is sooner.
/// Returns the paths seen, or `None` if the watcher stopped.
pub async fn debounced(rx: &mut mpsc::Receiver<PathBuf>, quiet: Duration) -> Option<Vec<PathBuf>> {
    let first = rx.recv().await?;
    let mut seen = vec![first];
    let deadline = tokio::time::Instant::now() + quiet * 10;
    loop {
        let until = (tokio::time::Instant::now() + quiet).min(deadline);
        match tokio::time::timeout_at(until, rx.recv()).await {
            Ok(Some(p)) => {
                if !seen.contains(&p) {
                    seen.push(p);
                }
            }
            Ok(None) | Err(_) => return Some(seen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn targets_are_directories_with_the_names_that_matter() {
        let root = HostRoot::new("/host");
        let t = targets(
            &root,
            &[
                "/etc/ssh/sshd_config".into(),
                "/etc/sudoers.d/*".into(),
                "/etc/ssh/ssh_config".into(),
            ],
        );
        let names = |d: &str| t.get(Path::new(d)).cloned();
        assert_eq!(
            names("/host/var/lib/dpkg"),
            Some(Some(vec![OsString::from("status")]))
        );
        assert_eq!(
            names("/host/etc/ssh"),
            Some(Some(vec![
                OsString::from("sshd_config"),
                OsString::from("ssh_config")
            ]))
        );
        assert_eq!(names("/host/etc/sudoers.d"), Some(None));
        // No other package database on that root.
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn other_package_databases_are_watched_where_present() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let t = targets(&HostRoot::new(fixtures.join("rpm")), &[]);
        assert_eq!(
            t.get(&fixtures.join("rpm/var/lib/rpm")).cloned(),
            Some(Some(vec![
                OsString::from("rpmdb.sqlite"),
                OsString::from("rpmdb.sqlite-wal")
            ]))
        );
        let t = targets(&HostRoot::new(fixtures.join("pacman")), &[]);
        assert_eq!(
            t.get(&fixtures.join("pacman/var/lib/pacman/local"))
                .cloned(),
            Some(None)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_burst_of_writes_is_one_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut targets = BTreeMap::new();
        targets.insert(dir.path().to_owned(), Some(vec![OsString::from("status")]));
        let mut rx = spawn(targets).expect("inotify works here");
        for i in 0..20 {
            std::fs::write(dir.path().join("status-new"), format!("{i}")).unwrap();
            std::fs::rename(dir.path().join("status-new"), dir.path().join("status")).unwrap();
        }
        std::fs::write(dir.path().join("unrelated"), "x").unwrap();
        let seen = debounced(&mut rx, Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(seen, vec![dir.path().join("status")]);
        // Nothing else is pending: the burst was one change.
        let more = tokio::time::timeout(
            Duration::from_millis(500),
            debounced(&mut rx, Duration::from_millis(100)),
        )
        .await;
        assert!(more.is_err(), "no second change: {more:?}");
    }
}
