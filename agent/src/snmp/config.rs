//! The `[snmp]` part of `agent.toml`: the devices this agent polls, the
//! credentials it polls them with, and the networks it sweeps for more.
//!
//! Secrets never sit in `agent.toml`: each credential set names the files
//! its community or passphrases are read from (mode 0600, owned by the
//! agent's user), read again at each poll so they can be rotated without a
//! restart. `validate-config` checks that they can be read.
//!
//! ```toml
//! [snmp]
//! poll_interval_secs = 300
//!
//! [snmp.credentials.core]
//! version = "3"
//! user = "fathom"
//! auth = "sha256"
//! auth_password_file = "/etc/fathom/snmp/core.auth"
//! privacy = "aes"
//! priv_password_file = "/etc/fathom/snmp/core.priv"
//!
//! [[snmp.targets]]
//! address = "core-1.example.net"
//! credentials = "core"
//!
//! [[snmp.sweeps]]
//! network = "10.20.0.0/24"
//! credentials = "core"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::client::{Security, Settings, User};
use super::usm::Auth;
use fathom_support::config::ConfigError;

pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 300;
pub const DEFAULT_SWEEP_INTERVAL_SECS: u64 = 3600;
pub const DEFAULT_MAX_CONCURRENT: usize = 32;
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
pub const DEFAULT_RETRIES: u32 = 2;
pub const DEFAULT_BUDGET_SECS: u64 = 120;
pub const DEFAULT_SWEEP_RATE: u32 = 20;
/// The largest network one sweep may cover (a /16 of IPv4).
pub const MAX_SWEEP_ADDRESSES: u64 = 65_536;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSnmp {
    poll_interval_secs: Option<u64>,
    sweep_interval_secs: Option<u64>,
    max_concurrent: Option<usize>,
    timeout_ms: Option<u64>,
    retries: Option<u32>,
    budget_secs: Option<u64>,
    #[serde(default)]
    credentials: BTreeMap<String, RawCredentials>,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    sweeps: Vec<RawSweep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredentials {
    version: String,
    community_file: Option<PathBuf>,
    user: Option<String>,
    auth: Option<String>,
    auth_password_file: Option<PathBuf>,
    privacy: Option<String>,
    priv_password_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    address: String,
    port: Option<u16>,
    credentials: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    network: String,
    port: Option<u16>,
    credentials: String,
    rate_per_sec: Option<u32>,
}

/// How to authenticate to a device; secrets by file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credentials {
    Community {
        file: PathBuf,
    },
    User {
        name: String,
        auth: Auth,
        auth_password_file: PathBuf,
        priv_password_file: Option<PathBuf>,
    },
}

impl Credentials {
    /// Reads the secrets into what a session needs.
    pub fn load(&self) -> Result<Security, String> {
        Ok(match self {
            Credentials::Community { file } => Security::Community(read_secret(file, 1)?),
            Credentials::User {
                name,
                auth,
                auth_password_file,
                priv_password_file,
            } => Security::User(User {
                name: name.clone(),
                auth: *auth,
                // RFC 3414: passphrases of fewer than 8 characters are refused.
                auth_password: read_secret(auth_password_file, 8)?,
                priv_password: match priv_password_file {
                    Some(f) => Some(read_secret(f, 8)?),
                    None => None,
                },
            }),
        })
    }
}

/// A secret from a file, without its trailing newline.
pub fn read_secret(path: &Path, min_chars: usize) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value = text.trim_end_matches(['\n', '\r']).to_owned();
    if value.chars().count() < min_chars {
        return Err(format!(
            "{} holds fewer than {min_chars} characters",
            path.display()
        ));
    }
    Ok(value)
}

/// One device to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A host name or address.
    pub host: String,
    pub port: u16,
    pub credentials: Credentials,
}

impl Target {
    /// `host:port` (`[v6]:port`), as reports name the target.
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A network to sweep for devices that answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sweep {
    pub network: ipnet::IpNet,
    pub port: u16,
    pub credentials: Credentials,
    /// Addresses probed per second.
    pub rate_per_sec: u32,
}

/// The validated `[snmp]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnmpConfig {
    pub poll_interval: Duration,
    pub sweep_interval: Duration,
    /// Devices polled at the same time.
    pub max_concurrent: usize,
    pub timeout: Duration,
    pub retries: u32,
    /// All the time one device's poll may take.
    pub budget: Duration,
    pub targets: Vec<Target>,
    pub sweeps: Vec<Sweep>,
}

impl SnmpConfig {
    /// The session settings for one device.
    pub fn settings(&self, security: Security) -> Settings {
        Settings {
            security,
            timeout: self.timeout,
            retries: self.retries,
            budget: self.budget,
            ..Settings::default()
        }
    }
}

impl RawSnmp {
    pub(crate) fn validate(self, path: &Path) -> Result<SnmpConfig, ConfigError> {
        let invalid = ConfigError::invalid(path);
        let secs = |key: &str, value: Option<u64>, default: u64| match value.unwrap_or(default) {
            0 => Err(invalid(key, "must be at least 1".into())),
            n => Ok(Duration::from_secs(n)),
        };
        let mut credentials = BTreeMap::new();
        for (name, raw) in self.credentials {
            let key = |field: &str| format!("snmp.credentials.{name}.{field}");
            let found = raw
                .validate()
                .map_err(|(field, message)| invalid(&key(field), message))?;
            // Checked now so `validate-config` catches a missing or short
            // secret; read again at each poll.
            let check = |field: &str, file: &Path, min| {
                read_secret(file, min)
                    .map(drop)
                    .map_err(|m| invalid(&key(field), m))
            };
            match &found {
                Credentials::Community { file } => check("community_file", file, 1)?,
                Credentials::User {
                    auth_password_file,
                    priv_password_file,
                    ..
                } => {
                    check("auth_password_file", auth_password_file, 8)?;
                    if let Some(f) = priv_password_file {
                        check("priv_password_file", f, 8)?;
                    }
                }
            }
            credentials.insert(name, found);
        }
        let named = |key: &str, name: &str| {
            credentials.get(name).cloned().ok_or_else(|| {
                let defined: Vec<&str> = credentials.keys().map(String::as_str).collect();
                invalid(
                    key,
                    format!(
                        "no [snmp.credentials.{name}] (defined: {})",
                        if defined.is_empty() {
                            "none".to_owned()
                        } else {
                            defined.join(", ")
                        }
                    ),
                )
            })
        };
        let mut targets = Vec::new();
        for (i, t) in self.targets.into_iter().enumerate() {
            let key = |field: &str| format!("snmp.targets[{i}].{field}");
            let (host, port) =
                parse_address(&t.address, t.port).map_err(|m| invalid(&key("address"), m))?;
            targets.push(Target {
                host,
                port,
                credentials: named(&key("credentials"), &t.credentials)?,
            });
        }
        let mut sweeps = Vec::new();
        for (i, s) in self.sweeps.into_iter().enumerate() {
            let key = |field: &str| format!("snmp.sweeps[{i}].{field}");
            let network: ipnet::IpNet = s.network.parse().map_err(|_| {
                invalid(
                    &key("network"),
                    format!("{:?} is not a network like 10.0.0.0/24", s.network),
                )
            })?;
            let host_bits = u32::from(network.max_prefix_len() - network.prefix_len());
            if host_bits > MAX_SWEEP_ADDRESSES.ilog2() {
                return Err(invalid(
                    &key("network"),
                    format!("{network} has more than {MAX_SWEEP_ADDRESSES} addresses; split it"),
                ));
            }
            let rate_per_sec = s.rate_per_sec.unwrap_or(DEFAULT_SWEEP_RATE);
            if !(1..=10_000).contains(&rate_per_sec) {
                return Err(invalid(
                    &key("rate_per_sec"),
                    "must be between 1 and 10000".into(),
                ));
            }
            sweeps.push(Sweep {
                network: network.trunc(),
                port: s.port.unwrap_or(161),
                credentials: named(&key("credentials"), &s.credentials)?,
                rate_per_sec,
            });
        }
        let max_concurrent = self.max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT);
        if !(1..=1024).contains(&max_concurrent) {
            return Err(invalid(
                "snmp.max_concurrent",
                "must be between 1 and 1024".into(),
            ));
        }
        let timeout_ms = self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(10..=60_000).contains(&timeout_ms) {
            return Err(invalid(
                "snmp.timeout_ms",
                "must be between 10 and 60000".into(),
            ));
        }
        Ok(SnmpConfig {
            poll_interval: secs(
                "snmp.poll_interval_secs",
                self.poll_interval_secs,
                DEFAULT_POLL_INTERVAL_SECS,
            )?,
            sweep_interval: secs(
                "snmp.sweep_interval_secs",
                self.sweep_interval_secs,
                DEFAULT_SWEEP_INTERVAL_SECS,
            )?,
            max_concurrent,
            timeout: Duration::from_millis(timeout_ms),
            retries: self.retries.unwrap_or(DEFAULT_RETRIES).min(10),
            budget: secs("snmp.budget_secs", self.budget_secs, DEFAULT_BUDGET_SECS)?,
            targets,
            sweeps,
        })
    }
}

impl RawCredentials {
    /// The credentials, or the field that is wrong and why.
    fn validate(self) -> Result<Credentials, (&'static str, String)> {
        let unused = |field: &'static str, set: bool, version: &str| {
            if set {
                Err((field, format!("is not used with version {version:?}")))
            } else {
                Ok(())
            }
        };
        match self.version.as_str() {
            "2c" => {
                unused("user", self.user.is_some(), "2c")?;
                unused("auth", self.auth.is_some(), "2c")?;
                unused(
                    "auth_password_file",
                    self.auth_password_file.is_some(),
                    "2c",
                )?;
                unused("privacy", self.privacy.is_some(), "2c")?;
                unused(
                    "priv_password_file",
                    self.priv_password_file.is_some(),
                    "2c",
                )?;
                let file = self.community_file.ok_or((
                    "community_file",
                    "is required with version \"2c\" (communities are never written in agent.toml)"
                        .to_owned(),
                ))?;
                Ok(Credentials::Community { file })
            }
            "3" => {
                unused("community_file", self.community_file.is_some(), "3")?;
                let name = self
                    .user
                    .filter(|u| !u.is_empty())
                    .ok_or(("user", "is required with version \"3\"".to_owned()))?;
                let auth = Auth::parse(self.auth.as_deref().unwrap_or("sha256"))
                    .map_err(|m| ("auth", m))?;
                let auth_password_file = self.auth_password_file.ok_or((
                    "auth_password_file",
                    "is required with version \"3\"".to_owned(),
                ))?;
                let priv_password_file = match self.privacy.as_deref() {
                    None => {
                        unused(
                            "priv_password_file",
                            self.priv_password_file.is_some(),
                            "3 without privacy",
                        )?;
                        None
                    }
                    Some(p)
                        if p.eq_ignore_ascii_case("aes") || p.eq_ignore_ascii_case("aes128") =>
                    {
                        Some(
                            self.priv_password_file.ok_or((
                                "priv_password_file",
                                "is required with privacy".to_owned(),
                            ))?,
                        )
                    }
                    Some(other) => {
                        return Err((
                            "privacy",
                            format!("{other:?}: only \"aes\" (AES-128) is supported"),
                        ))
                    }
                };
                Ok(Credentials::User {
                    name,
                    auth,
                    auth_password_file,
                    priv_password_file,
                })
            }
            other => Err((
                "version",
                format!("{other:?} is not a supported version (\"2c\" or \"3\")"),
            )),
        }
    }
}

/// `host`, `host:port`, `v4:port`, `[v6]:port` or a bare IPv6 address; a
/// separate `port` key wins over none in the address.
fn parse_address(address: &str, port: Option<u16>) -> Result<(String, u16), String> {
    use std::net::{IpAddr, SocketAddr};
    let address = address.trim();
    if let Ok(found) = address.parse::<SocketAddr>() {
        if port.is_some() {
            return Err(format!(
                "{address:?} has a port, and so does `port`: give one"
            ));
        }
        return Ok((found.ip().to_string(), found.port()));
    }
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Ok((ip.to_string(), port.unwrap_or(161)));
    }
    let (host, in_address) = match address.rsplit_once(':') {
        Some((host, p)) => {
            let p = p
                .parse::<u16>()
                .map_err(|_| format!("{address:?}: {p:?} is not a port"))?;
            (host, Some(p))
        }
        None => (address, None),
    };
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid_name {
        return Err(format!("{address:?} is not a host name or address"));
    }
    match (in_address, port) {
        (Some(_), Some(_)) => Err(format!(
            "{address:?} has a port, and so does `port`: give one"
        )),
        (p, q) => Ok((host.to_owned(), p.or(q).unwrap_or(161))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("community"), "campus-ro\n").unwrap();
        std::fs::write(dir.path().join("auth"), "auth-passphrase\n").unwrap();
        std::fs::write(dir.path().join("short"), "short\n").unwrap();
        dir
    }

    fn parse(dir: &Path, snmp: &str) -> Result<SnmpConfig, ConfigError> {
        let text = snmp.replace("DIR", &dir.display().to_string());
        let raw: RawSnmp = toml::from_str(&text).unwrap();
        raw.validate(Path::new("agent.toml"))
    }

    #[test]
    fn targets_sweeps_and_credentials_by_file() {
        let dir = secrets();
        let config = parse(
            dir.path(),
            r#"
            poll_interval_secs = 60
            [credentials.campus]
            version = "2c"
            community_file = "DIR/community"
            [credentials.core]
            version = "3"
            user = "fathom"
            auth = "sha512"
            auth_password_file = "DIR/auth"
            privacy = "aes"
            priv_password_file = "DIR/auth"
            [[targets]]
            address = "core-1.example.net"
            credentials = "core"
            [[targets]]
            address = "10.0.0.2:1161"
            credentials = "campus"
            [[targets]]
            address = "fe80::1"
            port = 16100
            credentials = "campus"
            [[sweeps]]
            network = "10.20.0.7/24"
            credentials = "campus"
            rate_per_sec = 5
            "#,
        )
        .unwrap();
        assert_eq!(config.poll_interval, Duration::from_secs(60));
        let labels: Vec<String> = config.targets.iter().map(Target::label).collect();
        assert_eq!(
            labels,
            ["core-1.example.net:161", "10.0.0.2:1161", "[fe80::1]:16100"]
        );
        assert_eq!(config.sweeps[0].network.to_string(), "10.20.0.0/24");
        match config.targets[1].credentials.load().unwrap() {
            Security::Community(c) => assert_eq!(c, "campus-ro"),
            other => panic!("{other:?}"),
        }
        match config.targets[0].credentials.load().unwrap() {
            Security::User(u) => {
                assert_eq!((u.name.as_str(), u.auth), ("fathom", Auth::Sha512));
                assert_eq!(u.priv_password.as_deref(), Some("auth-passphrase"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_key() {
        let dir = secrets();
        let cases = [
            (
                "[credentials.a]\nversion = \"2c\"\ncommunity = \"public\"",
                "unknown field",
            ),
            (
                "[credentials.a]\nversion = \"2c\"",
                "snmp.credentials.a.community_file",
            ),
            (
                "[credentials.a]\nversion = \"1\"\ncommunity_file = \"DIR/community\"",
                "snmp.credentials.a.version",
            ),
            (
                "[credentials.a]\nversion = \"3\"\nuser = \"u\"\nauth_password_file = \"DIR/short\"",
                "snmp.credentials.a.auth_password_file",
            ),
            (
                "[credentials.a]\nversion = \"2c\"\ncommunity_file = \"DIR/missing\"",
                "snmp.credentials.a.community_file",
            ),
            (
                "[[targets]]\naddress = \"sw1\"\ncredentials = \"nope\"",
                "snmp.targets[0].credentials",
            ),
            (
                "[[targets]]\naddress = \"bad host!\"\ncredentials = \"nope\"",
                "snmp.targets[0].address",
            ),
            (
                "[credentials.a]\nversion = \"2c\"\ncommunity_file = \"DIR/community\"\n[[sweeps]]\nnetwork = \"10.0.0.0/8\"\ncredentials = \"a\"",
                "snmp.sweeps[0].network",
            ),
            ("max_concurrent = 0", "snmp.max_concurrent"),
        ];
        for (text, key) in cases {
            let text = text.replace("DIR", &dir.path().display().to_string());
            let err = match toml::from_str::<RawSnmp>(&text) {
                Err(e) => e.to_string(),
                Ok(raw) => raw
                    .validate(Path::new("agent.toml"))
                    .unwrap_err()
                    .to_string(),
            };
            assert!(err.contains(key), "expected {key:?} in {err}");
        }
    }
}
