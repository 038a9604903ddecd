//! What every Fathom program needs, whatever it does: the agent, the
//! collector and the operator CLI share these, and nothing else of each
//! other's.
//!
//! - [`config`]: config-file errors that name the file and the key;
//!   reading and TOML parsing.
//! - [`fsio`]: file errors that name the action and the path; atomic,
//!   durable writes.
//! - [`logging`]: the `tracing` subscriber every binary installs.
//! - [`process`]: shutdown signals, exit codes, the help-text check.
//! - [`time`]: durations, and timestamps written and read; [`now_ms`] the
//!   one clock.

pub mod config;
pub mod fsio;
pub mod logging;
pub mod process;
pub mod time;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An error and its sources, joined with ": ".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_chain_names_every_cause() {
        let inner = std::io::Error::other("disk on fire");
        let outer = crate::fsio::FsError {
            action: "write",
            path: "/var/lib/x".into(),
            source: inner,
        };
        assert_eq!(
            super::error_chain(&outer),
            "cannot write /var/lib/x: disk on fire"
        );
    }
}
