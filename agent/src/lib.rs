//! The Fathom agent: discovers a host, signs what it found, and delivers it to
//! the collector.
//!
//! - [`config`]: `agent.toml`, raw and validated.
//! - [`identity`]: the agent's ed25519 key and its sequence counter, kept in
//!   the state directory. The private key never leaves the host.
//! - [`probe`]: discovery, one module per source. Probes read files under a
//!   configurable host root and record what they could not read instead of
//!   failing the report.
//! - [`spool`]: the bounded on-disk queue every report passes through; a report
//!   leaves it only once the collector has acknowledged it.
//! - [`transport`]: HTTPS to the collector (the only module that uses reqwest).
//! - [`watch`]: inotify on the package database and watched files, so a
//!   change is reported within seconds.
//! - [`runner`]: the long-lived tasks that tie these together.
//!
//! The agent knows nothing of the CMDB: it reports what it sees, and the
//! collector decides what that means.

pub mod cli;
pub mod config;
pub mod delta;
pub mod identity;
pub mod probe;
pub mod runner;
pub mod snmp;
pub mod spool;
pub mod transport;
pub mod watch;

/// The agent's version, as reported to the collector.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use fathom_support::now_ms;
