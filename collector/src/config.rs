//! `collector.toml`: read raw, then validated into [`CollectorConfig`].
//! Errors name the file and the key. The shipped example is
//! `configs/collector.toml`; a test parses it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::availability::outage::AvailabilitySettings;
use crate::capacity::store::MetricSettings;
use crate::control::policy::Policy;
use fathom_support::time::{DAY_MS, HOUR_MS};

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8443";
pub const DEFAULT_DATA_DIR: &str = "/var/lib/fathom-collector";
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 300;
pub const DEFAULT_MAX_CONCURRENT_REPORTS: usize = 512;
/// Reports in progress from one client address. Agents send one at a time,
/// and a report takes milliseconds, so thousands of agents behind one NAT
/// address still fit; a client holding slots open cannot take them all.
pub const DEFAULT_MAX_REPORTS_PER_ADDRESS: usize = 32;
/// Report bytes buffered at once, across every request.
pub const DEFAULT_REPORT_BODY_BUDGET_BYTES: usize = 256 * 1024 * 1024;
/// After the first ten seconds, a body slower than this is cut off: an
/// agent on a 64 kbit/s link still sends faster.
pub const DEFAULT_MIN_BODY_BYTES_PER_SEC: u64 = 4096;
pub const DEFAULT_REPORT_RECORDS_DAYS: u64 = 7;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    clock_skew_secs: Option<u64>,
    max_concurrent_reports: Option<usize>,
    max_reports_per_address: Option<usize>,
    report_body_budget_bytes: Option<usize>,
    min_body_bytes_per_sec: Option<u64>,
    report_records_days: Option<u64>,
    store_sync: Option<String>,
    policy: Option<PathBuf>,
    webhook: Option<RawWebhook>,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    availability: RawAvailability,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAvailability {
    missed_intervals: Option<u32>,
    default_interval_secs: Option<u64>,
    check_interval_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    fold_interval_secs: Option<u64>,
    rollup_interval_secs: Option<u64>,
    raw_hours: Option<u64>,
    five_minute_days: Option<u64>,
    hourly_days: Option<u64>,
    daily_years: Option<u64>,
    max_series_per_ci: Option<usize>,
    stale_series_minutes: Option<u64>,
    retire_series_hours: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    secret_file: PathBuf,
}

/// Where incident events go: a JSON POST signed with HMAC-SHA256 over the
/// body, keyed by the secret in `secret_file`.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub secret_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// A certificate and key to serve; `None` means make (once) and keep a
    /// self-signed pair under `data_dir/tls`.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_body_bytes: usize,
    pub clock_skew: Duration,
    pub max_concurrent_reports: usize,
    pub max_reports_per_address: usize,
    pub report_body_budget_bytes: usize,
    pub min_body_bytes_per_sec: u64,
    /// How long the record of each received report is kept (to answer an
    /// agent's resend with the same acknowledgement), in ms.
    pub report_records_ms: i64,
    /// The change-control policy (the file named by `policy`, or the
    /// built-in copy of `configs/policy.toml`).
    pub policy: Policy,
    pub webhook: Option<WebhookConfig>,
    /// The metric store's retention and the capacity task's intervals.
    pub metrics: MetricSettings,
    /// How outages are found.
    pub availability: AvailabilitySettings,
    /// Whether an acknowledgement waits for stable storage (`fdatasync`
    /// after sled's flush) or for the operating system only.
    pub store_sync: crate::store::sled_store::Sync,
}

impl CollectorConfig {
    /// A configuration with every default, for `data_dir`.
    pub fn with_data_dir(data_dir: PathBuf) -> CollectorConfig {
        CollectorConfig {
            listen: DEFAULT_LISTEN.parse().unwrap(),
            data_dir,
            tls: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            clock_skew: Duration::from_secs(DEFAULT_CLOCK_SKEW_SECS),
            max_concurrent_reports: DEFAULT_MAX_CONCURRENT_REPORTS,
            max_reports_per_address: DEFAULT_MAX_REPORTS_PER_ADDRESS,
            report_body_budget_bytes: DEFAULT_REPORT_BODY_BUDGET_BYTES,
            min_body_bytes_per_sec: DEFAULT_MIN_BODY_BYTES_PER_SEC,
            report_records_ms: DEFAULT_REPORT_RECORDS_DAYS as i64 * DAY_MS,
            policy: Policy::builtin(),
            webhook: None,
            metrics: MetricSettings::default(),
            availability: AvailabilitySettings::default(),
            store_sync: crate::store::sled_store::Sync::Data,
        }
    }
}

/// The same error type as the agent's config, so both name the file and key
/// the same way.
pub use fathom_support::config::ConfigError;
use fathom_support::config::{parse_toml, read_config};

impl CollectorConfig {
    pub fn from_file(path: &Path) -> Result<CollectorConfig, ConfigError> {
        Self::from_toml(&read_config(path)?, path)
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<CollectorConfig, ConfigError> {
        let raw: RawConfig = parse_toml(text, path)?;
        let invalid = ConfigError::invalid(path);
        let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text
            .parse()
            .map_err(|_| invalid("listen", format!("{listen_text:?} is not an address:port")))?;
        let tls = match (raw.tls_cert, raw.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "tls_key",
                    "tls_cert is set, so tls_key must be too".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "tls_cert",
                    "tls_key is set, so tls_cert must be too".into(),
                ))
            }
        };
        let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if !(64 * 1024..=256 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(invalid(
                "max_body_bytes",
                "must be between 65536 and 268435456".into(),
            ));
        }
        let max_concurrent_reports = raw
            .max_concurrent_reports
            .unwrap_or(DEFAULT_MAX_CONCURRENT_REPORTS);
        if max_concurrent_reports == 0 {
            return Err(invalid(
                "max_concurrent_reports",
                "must be at least 1".into(),
            ));
        }
        let max_reports_per_address = raw
            .max_reports_per_address
            .unwrap_or(DEFAULT_MAX_REPORTS_PER_ADDRESS);
        if max_reports_per_address == 0 {
            return Err(invalid(
                "max_reports_per_address",
                "must be at least 1".into(),
            ));
        }
        let report_body_budget_bytes = raw
            .report_body_budget_bytes
            .unwrap_or(DEFAULT_REPORT_BODY_BUDGET_BYTES.max(max_body_bytes * 4));
        if report_body_budget_bytes < max_body_bytes + 1024 {
            return Err(invalid(
                "report_body_budget_bytes",
                format!(
                    "must be more than max_body_bytes ({max_body_bytes}), or the largest report never fits"
                ),
            ));
        }
        let min_body_bytes_per_sec = raw
            .min_body_bytes_per_sec
            .unwrap_or(DEFAULT_MIN_BODY_BYTES_PER_SEC);
        if min_body_bytes_per_sec == 0 {
            return Err(invalid(
                "min_body_bytes_per_sec",
                "must be at least 1".into(),
            ));
        }
        let report_records_days = raw
            .report_records_days
            .unwrap_or(DEFAULT_REPORT_RECORDS_DAYS);
        if !(1..=3650).contains(&report_records_days) {
            return Err(invalid(
                "report_records_days",
                "must be between 1 and 3650".into(),
            ));
        }
        let store_sync = match raw.store_sync.as_deref() {
            None | Some("fdatasync") => crate::store::sled_store::Sync::Data,
            Some("none") => crate::store::sled_store::Sync::None,
            Some(other) => {
                return Err(invalid(
                    "store_sync",
                    format!("{other:?}: use \"fdatasync\" (the default) or \"none\""),
                ))
            }
        };
        let policy = policy_of(raw.policy.as_deref(), path, &invalid)?;
        let webhook = raw
            .webhook
            .map(|w| webhook_of(w, path, &invalid))
            .transpose()?;
        let metrics = metric_settings(&raw.metrics, &invalid)?;
        let availability = availability_settings(&raw.availability, &invalid)?;
        Ok(CollectorConfig {
            availability,
            policy,
            webhook,
            metrics,
            listen,
            data_dir: raw.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            tls,
            max_body_bytes,
            clock_skew: Duration::from_secs(raw.clock_skew_secs.unwrap_or(DEFAULT_CLOCK_SKEW_SECS)),
            max_concurrent_reports,
            max_reports_per_address,
            report_body_budget_bytes,
            min_body_bytes_per_sec,
            report_records_ms: report_records_days as i64 * DAY_MS,
            store_sync,
        })
    }
}

/// The change-control policy the config names (relative to the config
/// file), or the built-in one.
fn policy_of(
    policy: Option<&Path>,
    path: &Path,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Policy, ConfigError> {
    Ok(match policy {
        // A relative policy path is relative to the config file.
        Some(p) => {
            let policy_path = path.parent().unwrap_or(Path::new(".")).join(p);
            Policy::from_file(&policy_path).map_err(|e| match e {
                // A policy file that is not there is this file's mistake;
                // one that is wrong inside names its own file and key.
                ConfigError::Io { path: p, source } => {
                    invalid("policy", format!("cannot read {}: {source}", p.display()))
                }
                other => other,
            })?
        }
        None => Policy::builtin(),
    })
}

/// `[webhook]`, checked: an https URL (plain http only to loopback) and a
/// secret file that can be read.
fn webhook_of(
    w: RawWebhook,
    path: &Path,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<WebhookConfig, ConfigError> {
    // Incident details and the signature travel in the request:
    // plain http only to this machine (a local relay, tests).
    let loopback = ["http://127.0.0.1", "http://[::1]", "http://localhost"]
        .iter()
        .any(|p| {
            w.url.strip_prefix(p).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with(':') || rest.starts_with('/')
            })
        });
    if !(w.url.starts_with("https://") || loopback) {
        return Err(invalid(
            "webhook.url",
            format!(
                "{:?} must be an https URL (plain http only to loopback)",
                w.url
            ),
        ));
    }
    let secret_file = path.parent().unwrap_or(Path::new(".")).join(&w.secret_file);
    if let Err(e) = std::fs::metadata(&secret_file) {
        return Err(invalid(
            "webhook.secret_file",
            format!("cannot read {}: {e}", secret_file.display()),
        ));
    }
    Ok(WebhookConfig {
        url: w.url,
        secret_file,
    })
}

/// `[metrics]`, checked: each tier kept at least as long as the finer one
/// before it, so a query always finds the data at some tier.
fn metric_settings(
    raw: &RawMetrics,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<MetricSettings, ConfigError> {
    let default = MetricSettings::default();
    let span =
        |key: &str, value: Option<u64>, unit_ms: i64, default_ms: i64, min: u64, max: u64| {
            match value {
                None => Ok(default_ms),
                Some(v) if (min..=max).contains(&v) => Ok(v as i64 * unit_ms),
                Some(_) => Err(invalid(
                    &format!("metrics.{key}"),
                    format!("must be between {min} and {max}"),
                )),
            }
        };
    let raw_ms = span(
        "raw_hours",
        raw.raw_hours,
        HOUR_MS,
        default.raw_ms,
        2,
        24 * 14,
    )?;
    let five_minute_ms = span(
        "five_minute_days",
        raw.five_minute_days,
        DAY_MS,
        default.five_minute_ms,
        1,
        366,
    )?;
    let hour_ms = span(
        "hourly_days",
        raw.hourly_days,
        DAY_MS,
        default.hour_ms,
        1,
        3660,
    )?;
    let day_ms = span(
        "daily_years",
        raw.daily_years,
        365 * DAY_MS,
        default.day_ms,
        1,
        50,
    )?;
    for (key, finer, coarser) in [
        ("five_minute_days", raw_ms, five_minute_ms),
        ("hourly_days", five_minute_ms, hour_ms),
        ("daily_years", hour_ms, day_ms),
    ] {
        if coarser < finer {
            return Err(invalid(
                &format!("metrics.{key}"),
                "must keep data at least as long as the finer tier before it".into(),
            ));
        }
    }
    let seconds = |key: &str, value: Option<u64>, default: std::time::Duration| match value {
        None => Ok(default),
        Some(v) if (1..=86_400).contains(&v) => Ok(Duration::from_secs(v)),
        Some(_) => Err(invalid(
            &format!("metrics.{key}"),
            "must be between 1 and 86400 seconds".into(),
        )),
    };
    let max_series_per_ci = raw.max_series_per_ci.unwrap_or(default.max_series_per_ci);
    if !(16..=100_000).contains(&max_series_per_ci) {
        return Err(invalid(
            "metrics.max_series_per_ci",
            "must be between 16 and 100000".into(),
        ));
    }
    let stale_after_ms = match raw.stale_series_minutes {
        None => default.stale_after_ms,
        Some(m) if (5..=1440).contains(&m) => m as i64 * 60_000,
        Some(_) => {
            return Err(invalid(
                "metrics.stale_series_minutes",
                "must be between 5 and 1440".into(),
            ))
        }
    };
    let retire_after_ms = match raw.retire_series_hours {
        None => default.retire_after_ms.max(stale_after_ms),
        Some(h) if (1..=8760).contains(&h) && h as i64 * 3_600_000 >= stale_after_ms => {
            h as i64 * 3_600_000
        }
        Some(_) => {
            return Err(invalid(
                "metrics.retire_series_hours",
                "must be between 1 and 8760, and no shorter than stale_series_minutes".into(),
            ))
        }
    };
    Ok(MetricSettings {
        raw_ms,
        five_minute_ms,
        hour_ms,
        day_ms,
        max_series_per_ci,
        stale_after_ms,
        retire_after_ms,
        fold_every: seconds(
            "fold_interval_secs",
            raw.fold_interval_secs,
            default.fold_every,
        )?,
        roll_up_every: seconds(
            "rollup_interval_secs",
            raw.rollup_interval_secs,
            default.roll_up_every,
        )?,
        ..default
    })
}

/// `[availability]`, checked.
fn availability_settings(
    raw: &RawAvailability,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<AvailabilitySettings, ConfigError> {
    let default = AvailabilitySettings::default();
    let missed_intervals = raw.missed_intervals.unwrap_or(default.missed_intervals);
    if !(1..=100).contains(&missed_intervals) {
        return Err(invalid(
            "availability.missed_intervals",
            "must be between 1 and 100".into(),
        ));
    }
    let default_interval_ms = match raw.default_interval_secs {
        None => default.default_interval_ms,
        Some(s) if (1..=86_400).contains(&s) => s as i64 * 1000,
        Some(_) => {
            return Err(invalid(
                "availability.default_interval_secs",
                "must be between 1 and 86400 seconds".into(),
            ))
        }
    };
    let check_every = match raw.check_interval_secs {
        None => default.check_every,
        Some(s) if (1..=3600).contains(&s) => Duration::from_secs(s),
        Some(_) => {
            return Err(invalid(
                "availability.check_interval_secs",
                "must be between 1 and 3600 seconds".into(),
            ))
        }
    };
    Ok(AvailabilitySettings {
        missed_intervals,
        default_interval_ms,
        check_every,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/collector.toml");
        let config = CollectorConfig::from_file(&path).unwrap();
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.metrics, MetricSettings::default());
        assert_eq!(config.availability, AvailabilitySettings::default());
    }

    #[test]
    fn errors_name_the_file_and_key() {
        for (text, key) in [
            ("listen = 'nowhere'", "listen"),
            ("tls_cert = 'a.pem'", "tls_key"),
            ("max_body_bytes = 10", "max_body_bytes"),
            ("max_concurrent_reports = 0", "max_concurrent_reports"),
            ("lisen = '1.2.3.4:5'", "lisen"),
            (
                "[webhook]\nurl = 'ftp://x'\nsecret_file = 's'",
                "webhook.url",
            ),
            (
                "[webhook]\nurl = 'http://tickets.example.com/'\nsecret_file = 's'",
                "webhook.url",
            ),
            (
                "[webhook]\nurl = 'http://127.0.0.1.example.com/'\nsecret_file = 's'",
                "webhook.url",
            ),
            (
                "[webhook]\nurl = 'https://x'\nsecret_file = '/nonexistent/s'",
                "webhook.secret_file",
            ),
            ("policy = '/nonexistent/policy.toml'", "policy.toml"),
            ("[metrics]\nraw_hours = 1", "metrics.raw_hours"),
            (
                "[metrics]\nfive_minute_days = 1",
                "metrics.five_minute_days",
            ),
            (
                "[metrics]\nfold_interval_secs = 0",
                "metrics.fold_interval_secs",
            ),
            (
                "[metrics]\nmax_series_per_ci = 1",
                "metrics.max_series_per_ci",
            ),
            ("[metrics]\nretention = 1", "retention"),
            ("report_records_days = 0", "report_records_days"),
            (
                "[availability]\nmissed_intervals = 0",
                "availability.missed_intervals",
            ),
            (
                "[availability]\ncheck_interval_secs = 0",
                "availability.check_interval_secs",
            ),
        ] {
            let err = CollectorConfig::from_toml(text, Path::new("collector.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("collector.toml") && err.contains(key), "{err}");
        }
    }
}
