//! Local users and groups from `/etc/passwd` and `/etc/group`: names, ids,
//! home, shell and group members. `/etc/shadow` is never read; passwords
//! and hashes never leave the host.

use fathom_shared::wire::{Group, User};

use super::{HostRoot, Malformed, ReadError};

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Malformed(#[from] Malformed),
}

pub fn probe(root: &HostRoot) -> Result<(Vec<User>, Vec<Group>), AccountsError> {
    let read = |file: &str| -> Result<String, AccountsError> {
        Ok(String::from_utf8_lossy(&root.read(file)?).into_owned())
    };
    let users = parse_passwd(&read("/etc/passwd")?).map_err(Malformed::at(root, "/etc/passwd"))?;
    let groups = parse_group(&read("/etc/group")?).map_err(Malformed::at(root, "/etc/group"))?;
    Ok((users, groups))
}

fn records(
    text: &str,
    fields: usize,
) -> impl Iterator<Item = Result<(usize, Vec<&str>), (usize, String)>> {
    text.lines().enumerate().filter_map(move |(i, line)| {
        let line = line.trim_end();
        // NIS compatibility lines (`+`, `-`) and comments are not accounts.
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with('+')
            || line.starts_with('-')
        {
            return None;
        }
        let parts: Vec<&str> = line.split(':').collect();
        Some(if parts.len() < fields {
            Err((
                i + 1,
                format!(
                    "expected {fields} ':'-separated fields, found {}",
                    parts.len()
                ),
            ))
        } else {
            Ok((i + 1, parts))
        })
    })
}

pub fn parse_passwd(text: &str) -> Result<Vec<User>, (usize, String)> {
    let mut out = Vec::new();
    for r in records(text, 7) {
        let (n, f) = r?;
        let id = |i: usize, what: &str| {
            f[i].parse::<u32>()
                .map_err(|_| (n, format!("{what} {:?} is not a number", f[i])))
        };
        out.push(User {
            name: f[0].to_owned(),
            uid: id(2, "uid")?,
            gid: id(3, "gid")?,
            home: f[5].to_owned(),
            shell: f[6].to_owned(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn parse_group(text: &str) -> Result<Vec<Group>, (usize, String)> {
    let mut out = Vec::new();
    for r in records(text, 4) {
        let (n, f) = r?;
        let mut members: Vec<String> = f[3]
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect();
        members.sort();
        out.push(Group {
            name: f[0].to_owned(),
            gid: f[2]
                .parse()
                .map_err(|_| (n, format!("gid {:?} is not a number", f[2])))?,
            members,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Loaded kernel modules from `/proc/modules`, by name.
pub fn kernel_modules(root: &HostRoot) -> Result<Vec<String>, ReadError> {
    let bytes = root.read("/proc/modules")?;
    let mut names: Vec<String> = String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_without_secrets() {
        let users = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n# comment\n+@nis::::::\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/zsh\n",
        )
        .unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].name, "alice");
        assert_eq!(users[0].shell, "/bin/zsh");
        let groups = parse_group("sudo:x:27:bob,alice\nusers:x:100:\n").unwrap();
        assert_eq!(groups[0].members, ["alice", "bob"]);
        assert!(groups[1].members.is_empty());
        let (line, message) =
            parse_passwd("root:x:0:0:root:/root:/bin/bash\nbroken:x:zero:0::/:/bin/sh\n")
                .unwrap_err();
        assert_eq!(line, 2);
        assert!(message.contains("uid"), "{message}");
        assert_eq!(parse_group("short:x\n").unwrap_err().0, 1);
    }
}
