//! `agent.toml`: read raw, then validated into [`AgentConfig`]. Every error
//! names the file and the key that was wrong.
//!
//! The shipped, commented example is `configs/agent.toml`; a test parses it.

use fathom_support::config::{parse_toml, read_config, ConfigError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fathom_shared::tls::Fingerprint;
use serde::Deserialize;

/// Defaults, stated once so the docs, the example config and the code agree.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/fathom-agent";
pub const DEFAULT_INVENTORY_INTERVAL_SECS: u64 = 3600;
pub const DEFAULT_METRICS_INTERVAL_SECS: u64 = 60;
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 * 1024 * 1024;
pub const DEFAULT_SPOOL_MAX_REPORTS: usize = 10_000;
pub const DEFAULT_MAX_BACKOFF_SECS: u64 = 60;
pub const DEFAULT_CHANGE_DEBOUNCE_MS: u64 = 2000;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    collector_url: String,
    ca_file: Option<PathBuf>,
    collector_fingerprint: Option<String>,
    enrollment_token: Option<String>,
    enrollment_token_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    host_root: Option<PathBuf>,
    inventory_interval_secs: Option<u64>,
    metrics_interval_secs: Option<u64>,
    #[serde(default)]
    spool: RawSpool,
    max_backoff_secs: Option<u64>,
    #[serde(default)]
    watch_files: Vec<String>,
    push_on_change: Option<bool>,
    change_debounce_ms: Option<u64>,
    snmp: Option<crate::snmp::config::RawSnmp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpool {
    max_bytes: Option<u64>,
    max_reports: Option<usize>,
}

/// How the agent trusts the collector's certificate.
#[derive(Debug, Clone)]
pub enum CollectorTrust {
    CaFile(PathBuf),
    Pinned(Fingerprint),
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub collector_url: reqwest::Url,
    pub trust: CollectorTrust,
    pub enrollment_token: Option<EnrollmentToken>,
    pub state_dir: PathBuf,
    pub host_root: PathBuf,
    pub inventory_interval: Duration,
    pub metrics_interval: Duration,
    pub spool_max_bytes: u64,
    pub spool_max_reports: usize,
    /// The longest wait between delivery attempts while the collector is
    /// unreachable.
    pub max_backoff: Duration,
    /// Absolute paths or glob patterns of files to fingerprint.
    pub watch_files: Vec<String>,
    /// Send an inventory as soon as the package database or a watched file
    /// changes (see `watch`), besides the schedule.
    pub push_on_change: bool,
    /// How long the host must be quiet after a change before it is sent.
    pub change_debounce: Duration,
    /// Network devices to poll, where `[snmp]` is configured.
    pub snmp: Option<crate::snmp::config::SnmpConfig>,
}

/// Where the enrollment token comes from. A file is read only when needed,
/// so a token can be removed once the agent is enrolled.
#[derive(Clone)]
pub enum EnrollmentToken {
    Inline(String),
    File(PathBuf),
}

impl std::fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnrollmentToken::Inline(_) => f.write_str("Inline(<redacted>)"),
            EnrollmentToken::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

impl AgentConfig {
    pub fn from_file(path: &Path) -> Result<AgentConfig, ConfigError> {
        Self::from_toml(&read_config(path)?, path)
    }

    /// Parses and validates `text`; `path` is only used in error messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<AgentConfig, ConfigError> {
        let raw: RawConfig = parse_toml(text, path)?;
        let invalid = ConfigError::invalid(path);

        let collector_url = reqwest::Url::parse(&raw.collector_url).map_err(|e| {
            invalid(
                "collector_url",
                format!("{:?} is not a URL: {e}", raw.collector_url),
            )
        })?;
        if collector_url.scheme() != "https" {
            return Err(invalid(
                "collector_url",
                format!("must be an https:// URL, got {:?}", raw.collector_url),
            ));
        }
        let trust = match (raw.ca_file, raw.collector_fingerprint) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "collector_fingerprint",
                    "set either ca_file or collector_fingerprint, not both".into(),
                ))
            }
            (Some(ca), None) => CollectorTrust::CaFile(ca),
            (None, Some(fp)) => CollectorTrust::Pinned(
                fp.parse()
                    .map_err(|e: fathom_shared::tls::ParseFingerprintError| invalid("collector_fingerprint", e.to_string()))?,
            ),
            (None, None) => {
                return Err(invalid(
                    "ca_file",
                    "set ca_file (a PEM CA bundle) or collector_fingerprint (printed by `fathom token create`)".into(),
                ))
            }
        };
        let enrollment_token = match (raw.enrollment_token, raw.enrollment_token_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "enrollment_token_file",
                    "set either enrollment_token or enrollment_token_file, not both".into(),
                ))
            }
            (Some(t), None) if t.trim().is_empty() => {
                return Err(invalid("enrollment_token", "is empty".into()))
            }
            (Some(t), None) => Some(EnrollmentToken::Inline(t.trim().to_owned())),
            (None, Some(f)) => Some(EnrollmentToken::File(f)),
            (None, None) => None,
        };
        let interval = |key, value: Option<u64>, default: u64| {
            let secs = value.unwrap_or(default);
            if secs == 0 {
                Err(invalid(key, "must be at least 1 second".into()))
            } else {
                Ok(Duration::from_secs(secs))
            }
        };
        let inventory_interval = interval(
            "inventory_interval_secs",
            raw.inventory_interval_secs,
            DEFAULT_INVENTORY_INTERVAL_SECS,
        )?;
        let metrics_interval = interval(
            "metrics_interval_secs",
            raw.metrics_interval_secs,
            DEFAULT_METRICS_INTERVAL_SECS,
        )?;
        let spool_max_bytes = raw.spool.max_bytes.unwrap_or(DEFAULT_SPOOL_MAX_BYTES);
        if spool_max_bytes < 1024 * 1024 {
            return Err(invalid(
                "spool.max_bytes",
                "must be at least 1048576 (1 MiB)".into(),
            ));
        }
        let spool_max_reports = raw.spool.max_reports.unwrap_or(DEFAULT_SPOOL_MAX_REPORTS);
        if spool_max_reports < 2 {
            return Err(invalid("spool.max_reports", "must be at least 2".into()));
        }
        let max_backoff = interval(
            "max_backoff_secs",
            raw.max_backoff_secs,
            DEFAULT_MAX_BACKOFF_SECS,
        )?;
        for (i, pattern) in raw.watch_files.iter().enumerate() {
            crate::probe::files::validate(pattern)
                .map_err(|e| invalid(&format!("watch_files[{i}]"), e))?;
        }
        let change_debounce_ms = raw.change_debounce_ms.unwrap_or(DEFAULT_CHANGE_DEBOUNCE_MS);
        if !(100..=600_000).contains(&change_debounce_ms) {
            return Err(invalid(
                "change_debounce_ms",
                "must be between 100 and 600000".into(),
            ));
        }
        let snmp = match raw.snmp {
            Some(snmp) => Some(snmp.validate(path)?),
            None => None,
        };
        Ok(AgentConfig {
            snmp,
            watch_files: raw.watch_files,
            push_on_change: raw.push_on_change.unwrap_or(true),
            change_debounce: Duration::from_millis(change_debounce_ms),
            collector_url,
            trust,
            enrollment_token,
            state_dir: raw.state_dir.unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
            host_root: raw.host_root.unwrap_or_else(|| "/".into()),
            inventory_interval,
            metrics_interval,
            spool_max_bytes,
            spool_max_reports,
            max_backoff,
        })
    }
}

impl AgentConfig {
    /// What `run` needs of the machine before it starts, checked without
    /// starting, naming the key at fault: the host root is a directory,
    /// the CA bundle reads, and an agent not yet enrolled can read its
    /// token file (unless a token is `given` another way). `validate-config`
    /// runs it too, so a config it passes is one `run` takes. `path` names
    /// the config file in errors.
    pub fn preflight(&self, path: &Path, given: bool) -> Result<(), ConfigError> {
        let invalid = ConfigError::invalid(path);
        match std::fs::metadata(&self.host_root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(invalid(
                    "host_root",
                    format!("{} is not a directory", self.host_root.display()),
                ))
            }
            Err(e) => {
                return Err(invalid(
                    "host_root",
                    format!("cannot read {}: {e}", self.host_root.display()),
                ))
            }
        }
        if let CollectorTrust::CaFile(ca) = &self.trust {
            std::fs::read(ca)
                .map_err(|e| invalid("ca_file", format!("cannot read {}: {e}", ca.display())))?;
        }
        if self.state_dir.exists() && !self.state_dir.is_dir() {
            return Err(invalid(
                "state_dir",
                format!("{} is not a directory", self.state_dir.display()),
            ));
        }
        let enrolled = self.state_dir.join("enrolled").exists() || given;
        if let (false, Some(EnrollmentToken::File(file))) = (enrolled, &self.enrollment_token) {
            let token = std::fs::read_to_string(file).map_err(|e| {
                invalid(
                    "enrollment_token_file",
                    format!(
                        "cannot read {} (needed until the agent has enrolled): {e}",
                        file.display()
                    ),
                )
            })?;
            if token.trim().is_empty() {
                return Err(invalid(
                    "enrollment_token_file",
                    format!("{} is empty", file.display()),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::from_toml(text, Path::new("agent.toml"))
    }

    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/agent.toml");
        let config = AgentConfig::from_file(&path).unwrap();
        assert_eq!(config.host_root, Path::new("/"));
        assert_eq!(
            config.metrics_interval,
            Duration::from_secs(DEFAULT_METRICS_INTERVAL_SECS)
        );
    }

    /// The commented `[snmp]` example, uncommented, is a valid section.
    #[test]
    fn the_shipped_snmp_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/agent.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text.find("# [snmp]").unwrap();
        let secrets = tempfile::tempdir().unwrap();
        for name in ["campus.community", "core.auth", "core.priv"] {
            std::fs::write(secrets.path().join(name), "a-long-enough-secret\n").unwrap();
        }
        let snmp: String = text[start..]
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .or_else(|| l.strip_prefix('#'))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n")
            .replace("/etc/fathom/snmp", &secrets.path().display().to_string());
        let config = parse(&format!(
            "collector_url = 'https://x'\nca_file = 'a'\n{snmp}"
        ))
        .unwrap();
        let snmp = config.snmp.unwrap();
        assert_eq!(snmp.targets[0].label(), "core-1.example.net:161");
        assert_eq!(snmp.sweeps[0].network.to_string(), "10.20.0.0/24");
        assert_eq!(snmp.max_concurrent, 32);
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let cases = [
            (
                "collector_url = 'http://x'\ncollector_fingerprint='sha256:00'",
                "collector_url",
            ),
            ("collector_url = 'https://x'", "ca_file"),
            (
                "collector_url = 'https://x'\ncollector_fingerprint='nope'",
                "collector_fingerprint",
            ),
            (
                "collector_url = 'https://x'\nca_file='a'\nmetrics_interval_secs=0",
                "metrics_interval_secs",
            ),
            (
                "collector_url = 'https://x'\nca_file='a'\n[spool]\nmax_bytes=5",
                "spool.max_bytes",
            ),
            (
                "collector_url = 'https://x'\nca_file='a'\ncolector='typo'",
                "colector",
            ),
            (
                "collector_url = 'https://x'\nca_file='a'\nwatch_files=['/etc/ok', 'etc/relative']",
                "watch_files[1]",
            ),
        ];
        for (text, key) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains("agent.toml"), "{err}");
            assert!(err.contains(key), "expected {key:?} in {err}");
        }
    }
}
