//! The agent's identity and sequence counter, kept in its state directory:
//!
//! - `agent.key`: the ed25519 private key, 32 raw bytes, mode 0600. Made on
//!   first start; never sent anywhere.
//! - `enrolled`: present once the collector accepted the enrollment.
//! - `seq`: the last sequence number handed out, so numbers keep increasing
//!   across restarts.
//!
//! Writes go through a temporary file, fsync and rename, so a crash leaves
//! either the old or the new content.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use fathom_shared::ids::AgentId;
use fathom_support::fsio::{fs_err as io_err, write_atomic, FsError};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Io(#[from] FsError),
    #[error("{path} is not a valid agent key ({len} bytes, expected 32)")]
    BadKey { path: PathBuf, len: usize },
    #[error("{path} is readable by other users (mode {mode:o}); it must be 0600")]
    KeyTooOpen { path: PathBuf, mode: u32 },
    #[error("{path} does not hold a sequence number")]
    BadSeq { path: PathBuf },
    #[error("no randomness available from the operating system: {0}")]
    Random(String),
    #[error("another fathom-agent is already running with state directory {dir}")]
    Locked { dir: PathBuf },
}

/// Proof that this process is the only agent using a state directory; the
/// lock is released when this is dropped (or the process exits).
#[derive(Debug)]
pub struct StateLock {
    _file: fs::File,
}

/// The agent's key and counters, loaded from its state directory.
#[derive(Debug)]
pub struct Identity {
    dir: PathBuf,
    key: SigningKey,
    last_seq: u64,
}

impl Identity {
    /// Loads the identity from `dir`, making a new key if there is none.
    pub fn load_or_create(dir: &Path) -> Result<Identity, IdentityError> {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let key_path = dir.join("agent.key");
        let key = match fs::read(&key_path) {
            Ok(bytes) => {
                let mode = fs::metadata(&key_path)
                    .map_err(io_err("stat", &key_path))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(IdentityError::KeyTooOpen {
                        path: key_path,
                        mode: mode & 0o777,
                    });
                }
                let bytes: [u8; 32] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| IdentityError::BadKey {
                            path: key_path.clone(),
                            len: bytes.len(),
                        })?;
                SigningKey::from_bytes(&bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| IdentityError::Random(e.to_string()))?;
                let key = SigningKey::from_bytes(&seed);
                write_atomic(&key_path, &seed, 0o600)?;
                tracing::info!(path = %key_path.display(), agent_id = %AgentId::from_public_key(&key.verifying_key().to_bytes()), "Created a new agent key");
                key
            }
            Err(e) => return Err(io_err("read", &key_path)(e).into()),
        };
        let seq_path = dir.join("seq");
        let last_seq = match fs::read_to_string(&seq_path) {
            Ok(text) => text.trim().parse().map_err(|_| IdentityError::BadSeq {
                path: seq_path.clone(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_err("read", &seq_path)(e).into()),
        };
        Ok(Identity {
            dir: dir.to_owned(),
            key,
            last_seq,
        })
    }

    /// Takes the state directory for this process. Two agents sharing one
    /// would hand out the same sequence numbers and fight over the spool.
    pub fn lock(&self) -> Result<StateLock, IdentityError> {
        let path = self.dir.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        match file.try_lock() {
            Ok(()) => Ok(StateLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(IdentityError::Locked {
                dir: self.dir.clone(),
            }),
            Err(fs::TryLockError::Error(e)) => Err(io_err("lock", &path)(e).into()),
        }
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    pub fn agent_id(&self) -> AgentId {
        AgentId::from_public_key(&self.key.verifying_key().to_bytes())
    }

    pub fn is_enrolled(&self) -> bool {
        self.dir.join("enrolled").exists()
    }

    pub fn mark_enrolled(&self) -> Result<(), IdentityError> {
        let id = self.agent_id().to_string();
        Ok(write_atomic(
            &self.dir.join("enrolled"),
            id.as_bytes(),
            0o644,
        )?)
    }

    /// Hands out the next sequence number, durably: once this returns, no
    /// later call (in this process or after a restart) returns the same one.
    /// Enrollment uses 0, so reports start at 1.
    pub fn next_seq(&mut self) -> Result<u64, IdentityError> {
        let next = self.last_seq + 1;
        write_atomic(&self.dir.join("seq"), next.to_string().as_bytes(), 0o644)?;
        self.last_seq = next;
        Ok(next)
    }

    /// Makes sure future numbers are above `seq` (for example after finding
    /// spooled reports numbered higher than the counter, if the counter file
    /// was restored from an old backup).
    pub fn advance_past(&mut self, seq: u64) -> Result<(), IdentityError> {
        if seq > self.last_seq {
            write_atomic(&self.dir.join("seq"), seq.to_string().as_bytes(), 0o644)?;
            self.last_seq = seq;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_with_mode_0600_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join("agent.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(first.agent_id(), again.agent_id());
    }

    #[test]
    fn sequence_numbers_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut id = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(id.next_seq().unwrap(), 1);
        assert_eq!(id.next_seq().unwrap(), 2);
        let mut id = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(id.next_seq().unwrap(), 3);
        id.advance_past(10).unwrap();
        assert_eq!(id.next_seq().unwrap(), 11);
    }

    #[test]
    fn one_process_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path()).unwrap();
        let held = id.lock().unwrap();
        assert!(matches!(id.lock(), Err(IdentityError::Locked { .. })));
        drop(held);
        id.lock().unwrap();
    }

    #[test]
    fn a_world_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        let key = dir.path().join("agent.key");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identity::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, IdentityError::KeyTooOpen { .. }), "{err}");
    }
}
