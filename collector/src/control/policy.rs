//! The change-control policy (`policy.toml`): which attributes are under
//! change control, how urgent drift in each section is, which changes are
//! pre-authorized standard changes, and how new CIs enter the CMDB.
//!
//! Read raw, then validated; errors name the file and the key. The shipped
//! policy is `configs/policy.toml`, which is also the built-in default (a
//! test parses it).
//!
//! This module decides from names and times only; it does not read the
//! store.

use crate::calendar::hours::{Calendar, HoursError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::classes::{CiClass, ClassModel};

use super::attributes::{section_of, ChangeKind};
use super::pattern::Pattern;
use fathom_support::config::{parse_toml, read_config, ConfigError};

/// The policy shipped in `configs/policy.toml`, used when the collector
/// config names none.
pub const DEFAULT_POLICY: &str = include_str!("../../../configs/policy.toml");

/// What drift in an attribute means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// Under change control: a change needs an approved RFC or a standard change.
    Controlled,
    /// Recorded in the CMDB as discovered, without review.
    Informational,
    /// Not recorded at all.
    Ignored,
}

/// Impact, urgency and CI criticality share one three-step scale.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    High,
    Medium,
    Low,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::High => "high",
            Level::Medium => "medium",
            Level::Low => "low",
        }
    }
}

/// Incident priority from impact × urgency, 1 (most severe) to 4, as in the
/// usual ITIL matrix: high/high is 1; one step down is 2; two steps 3; the
/// rest 4.
pub fn priority(impact: Level, urgency: Level) -> u8 {
    let steps = impact as u8 + urgency as u8;
    (steps + 1).min(4)
}

/// How a CI first seen by discovery enters the CMDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NewCis {
    /// Its discovered state becomes its authorized state at once (recorded
    /// as "registered from discovery").
    Register,
    /// It waits, unregistered, until a configuration manager registers it;
    /// no drift is raised before that.
    Review,
}

/// Which policy line decided an attribute's control, for explanations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlDecision {
    pub control: Control,
    /// `control.rules[3]` or `control.default`.
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRule {
    pub class: Pattern,
    pub attribute: Pattern,
    pub control: Control,
}

/// When a standard change applies: a daily window on some weekdays, in
/// wall-clock time in a time zone (UTC unless the policy names one). `end`
/// before `start` crosses midnight; the window then belongs to the day it
/// starts on. Checked with the same calendar as agreed hours and
/// maintenance windows, so a window in `Europe/Paris` follows its clock
/// across daylight-saving changes.
#[derive(Debug, Clone)]
pub struct ChangeWindow {
    /// Monday = 0.
    pub days: BTreeSet<u8>,
    pub start_minute: u16,
    pub end_minute: u16,
    pub timezone: String,
    calendar: Calendar,
}

// The calendar is derived from the other fields.
impl PartialEq for ChangeWindow {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.days,
            self.start_minute,
            self.end_minute,
            &self.timezone,
        ) == (
            &other.days,
            other.start_minute,
            other.end_minute,
            &other.timezone,
        )
    }
}
impl Eq for ChangeWindow {}

pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl ChangeWindow {
    pub fn new(
        days: BTreeSet<u8>,
        start_minute: u16,
        end_minute: u16,
        timezone: &str,
    ) -> Result<ChangeWindow, HoursError> {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        let mut rules = Vec::new();
        for &d in &days {
            let day = WEEKDAYS[usize::from(d % 7)];
            if start_minute < end_minute {
                rules.push(format!("{day} {}-{}", hm(start_minute), hm(end_minute)));
            } else {
                rules.push(format!("{day} {}-24:00", hm(start_minute)));
                if end_minute > 0 {
                    let next = WEEKDAYS[usize::from((d + 1) % 7)];
                    rules.push(format!("{next} 00:00-{}", hm(end_minute)));
                }
            }
        }
        let calendar = Calendar::parse(timezone, &rules.join("; "), "")?;
        Ok(ChangeWindow {
            days,
            start_minute,
            end_minute,
            timezone: timezone.to_owned(),
            calendar,
        })
    }

    pub fn contains(&self, at_ms: i64) -> bool {
        self.calendar.covers(at_ms)
    }

    pub fn describe(&self) -> String {
        let days: Vec<&str> = self.days.iter().map(|d| WEEKDAYS[*d as usize]).collect();
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        format!(
            "{} {}–{} {}",
            days.join(","),
            hm(self.start_minute),
            hm(self.end_minute),
            self.timezone
        )
    }
}

/// A pre-authorized change: drift matching it is authorized without an RFC,
/// and recorded as such.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardChange {
    pub name: String,
    pub description: String,
    pub class: Pattern,
    pub attribute: Pattern,
    /// The new value must match; `None`: any.
    pub value: Option<Pattern>,
    pub kinds: BTreeSet<ChangeKind>,
    pub window: Option<ChangeWindow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub new_cis: NewCis,
    /// A CI with agents not seen for this long is flagged stale.
    pub stale_after_ms: i64,
    /// A drift that comes back within this long after being reverted
    /// reopens its drift record and incident instead of raising new ones.
    pub flap_window_ms: i64,
    pub default_control: Control,
    pub rules: Vec<ControlRule>,
    pub urgency: BTreeMap<String, Level>,
    pub default_urgency: Level,
    /// Target time to resolve an incident, by priority (index 0 is P1).
    pub target_resolution_ms: [i64; 4],
    pub standard_changes: Vec<StandardChange>,
    /// Capacity thresholds, and how far ahead forecasts are watched.
    pub capacity: CapacityPolicy,
    /// Maintenance windows by class or CI (`[[maintenance]]`), beside the
    /// CIs' own `maintenance.window` attributes.
    pub maintenance: Vec<MaintenanceRule>,
    /// The CI classes: built in, and declared under `[[classes]]`.
    pub classes: ClassModel,
}

/// A maintenance window in the policy, for the CIs of a class or one CI;
/// the calendar is checked when the policy is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceRule {
    pub class: Pattern,
    pub ci: Option<fathom_shared::ids::CiId>,
    /// Rules separated by `;`, as agreed hours are written
    /// (`sun 02:00-04:00`).
    pub window: String,
    pub timezone: String,
    pub exceptions: String,
}

impl MaintenanceRule {
    pub fn applies_to(&self, ci: fathom_shared::ids::CiId, class: &str) -> bool {
        match self.ci {
            Some(only) => only == ci,
            None => self.class.matches(class),
        }
    }

    pub fn calendar(&self) -> Result<Calendar, HoursError> {
        Calendar::parse(&self.timezone, &self.window, &self.exceptions)
    }
}

/// `[capacity]`: thresholds on utilization series, and the horizon within
/// which a forecast crossing counts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CapacityPolicy {
    pub horizon_ms: i64,
    pub thresholds: Vec<Threshold>,
}

/// Warning and critical levels for the series a pattern names (`fs.used_pct:*`),
/// on CIs of a class, or on one CI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub series: Pattern,
    pub class: Pattern,
    pub ci: Option<fathom_shared::ids::CiId>,
    pub warning: f64,
    pub critical: f64,
}

// Levels are checked finite when the policy is read, so equality is total.
impl Eq for CapacityPolicy {}
impl Eq for Threshold {}

impl CapacityPolicy {
    /// The threshold for a CI's series: one naming the CI first, then one
    /// naming its class, then any; the first in the file among equals.
    pub fn threshold_for(
        &self,
        ci: fathom_shared::ids::CiId,
        class: &str,
        series: &str,
    ) -> Option<&Threshold> {
        let matching = || self.thresholds.iter().filter(|t| t.series.matches(series));
        matching()
            .find(|t| t.ci == Some(ci))
            .or_else(|| {
                matching().find(|t| t.ci.is_none() && !t.class.is_any() && t.class.matches(class))
            })
            .or_else(|| matching().find(|t| t.ci.is_none() && t.class.is_any()))
    }
}

impl Policy {
    pub fn builtin() -> Policy {
        Policy::from_toml(DEFAULT_POLICY, Path::new("<built-in policy.toml>"))
            .expect("the shipped policy is valid (a test parses it)")
    }

    pub fn from_file(path: &Path) -> Result<Policy, ConfigError> {
        Self::from_toml(&read_config(path)?, path)
    }

    /// The first rule matching class and attribute decides; else the default.
    pub fn control_of(&self, class: &str, attribute: &str) -> ControlDecision {
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.class.matches(class) && rule.attribute.matches(attribute) {
                return ControlDecision {
                    control: rule.control,
                    rule: format!(
                        "control.rules[{i}] (class {}, attribute {})",
                        rule.class, rule.attribute
                    ),
                };
            }
        }
        ControlDecision {
            control: self.default_control,
            rule: "control.default".into(),
        }
    }

    /// When an incident of `priority` detected at `detected_at_ms` is due.
    pub fn resolution_due(&self, priority: u8, detected_at_ms: i64) -> i64 {
        let i = usize::from(priority.clamp(1, 4) - 1);
        detected_at_ms.saturating_add(self.target_resolution_ms[i])
    }

    pub fn urgency_of(&self, attribute: &str) -> Level {
        self.urgency
            .get(section_of(attribute))
            .copied()
            .unwrap_or(self.default_urgency)
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<Policy, ConfigError> {
        let raw: RawPolicy = parse_toml(text, path)?;
        let invalid = ConfigError::invalid(path);
        let duration = |key: &str, text: &Option<String>, default: &str| {
            let text = text.as_deref().unwrap_or(default);
            fathom_support::time::parse_duration_secs(text)
                .map(|s| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX))
                .map_err(|e| invalid(key, e))
        };
        let registration = raw.registration.unwrap_or_default();
        let drift = raw.drift.unwrap_or_default();
        let control = raw.control.unwrap_or_default();
        let priority = raw.priority.unwrap_or_default();
        let targets = &priority.target_resolution;
        let target_resolution_ms = [
            duration("priority.target_resolution.p1", &targets.p1, "4h")?,
            duration("priority.target_resolution.p2", &targets.p2, "1d")?,
            duration("priority.target_resolution.p3", &targets.p3, "3d")?,
            duration("priority.target_resolution.p4", &targets.p4, "10d")?,
        ];
        let mut standard_changes = Vec::new();
        let mut names = BTreeSet::new();
        for (i, s) in raw.standard_changes.into_iter().enumerate() {
            let key = |k: &str| format!("standard_changes[{i}].{k}");
            if s.name.trim().is_empty() || !names.insert(s.name.clone()) {
                return Err(invalid(&key("name"), "must be present and unique".into()));
            }
            let kinds = if s.kinds.is_empty() {
                [ChangeKind::Added, ChangeKind::Modified, ChangeKind::Removed].into()
            } else {
                s.kinds.into_iter().collect()
            };
            let window = s
                .window
                .map(|w| {
                    w.validate()
                        .map_err(|(k, m)| invalid(&key(&format!("window.{k}")), m))
                })
                .transpose()?;
            standard_changes.push(StandardChange {
                name: s.name,
                description: s.description.unwrap_or_default(),
                class: s.class.unwrap_or_else(Pattern::any),
                attribute: s.attribute,
                value: s.value,
                kinds,
                window,
            });
        }
        let capacity = raw.capacity.unwrap_or_default();
        let mut thresholds = Vec::new();
        for (i, t) in capacity.thresholds.into_iter().enumerate() {
            let key = |k: &str| format!("capacity.thresholds[{i}].{k}");
            if !(t.warning.is_finite() && t.critical.is_finite() && t.warning < t.critical) {
                return Err(invalid(
                    &key("warning"),
                    format!(
                        "must be a number below critical ({} ≥ {})",
                        t.warning, t.critical
                    ),
                ));
            }
            let ci =
                t.ci.map(|c| c.parse().map_err(|e| invalid(&key("ci"), format!("{e}"))))
                    .transpose()?;
            thresholds.push(Threshold {
                series: t.series,
                class: t.class.unwrap_or_else(Pattern::any),
                ci,
                warning: t.warning,
                critical: t.critical,
            });
        }
        let capacity = CapacityPolicy {
            horizon_ms: duration("capacity.horizon", &capacity.horizon, "30d")?,
            thresholds,
        };
        let mut maintenance = Vec::new();
        for (i, m) in raw.maintenance.into_iter().enumerate() {
            let key = |k: &str| format!("maintenance[{i}].{k}");
            let ci =
                m.ci.map(|c| c.parse().map_err(|e| invalid(&key("ci"), format!("{e}"))))
                    .transpose()?;
            let rule = MaintenanceRule {
                class: m.class.unwrap_or_else(Pattern::any),
                ci,
                window: m.window,
                timezone: m.timezone.unwrap_or_else(|| "UTC".into()),
                exceptions: m.exceptions.unwrap_or_default(),
            };
            if let Err(e) = rule.calendar() {
                let field = match e {
                    HoursError::Zone(_) => "timezone",
                    HoursError::Rule(_) => "window",
                    HoursError::Exception(_) => "exceptions",
                };
                return Err(invalid(&key(field), e.to_string()));
            }
            maintenance.push(rule);
        }
        let mut classes = ClassModel::default();
        for (i, c) in raw.classes.into_iter().enumerate() {
            let key = |k: &str| format!("classes[{i}].{k}");
            let name = c.name.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(invalid(
                    &key("name"),
                    format!("{name:?}: use lower-case letters, digits and _"),
                ));
            }
            if let Some(bad) = c.required.iter().find(|r| !r.contains('.')) {
                return Err(invalid(
                    &key("required"),
                    format!("{bad:?} is not `section.name`"),
                ));
            }
            classes.declare(CiClass {
                name: name.to_owned(),
                description: c.description.unwrap_or_default(),
                required: c.required,
                allowed: c.allowed,
            });
        }
        Ok(Policy {
            capacity,
            maintenance,
            classes,
            new_cis: registration.new_cis.unwrap_or(NewCis::Register),
            stale_after_ms: duration("registration.stale_after", &registration.stale_after, "7d")?,
            flap_window_ms: duration("drift.flap_window", &drift.flap_window, "24h")?,
            default_control: control.default.unwrap_or(Control::Controlled),
            rules: control
                .rules
                .into_iter()
                .map(|r| ControlRule {
                    class: r.class.unwrap_or_else(Pattern::any),
                    attribute: r.attribute,
                    control: r.control,
                })
                .collect(),
            urgency: priority.urgency,
            default_urgency: priority.default_urgency.unwrap_or(Level::Medium),
            target_resolution_ms,
            standard_changes,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    registration: Option<RawRegistration>,
    drift: Option<RawDrift>,
    control: Option<RawControl>,
    priority: Option<RawPriority>,
    #[serde(default)]
    standard_changes: Vec<RawStandardChange>,
    capacity: Option<RawCapacity>,
    #[serde(default)]
    maintenance: Vec<RawMaintenance>,
    #[serde(default)]
    classes: Vec<RawClass>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    name: String,
    description: Option<String>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    allowed: Vec<Pattern>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaintenance {
    class: Option<Pattern>,
    ci: Option<String>,
    window: String,
    timezone: Option<String>,
    exceptions: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapacity {
    horizon: Option<String>,
    #[serde(default)]
    thresholds: Vec<RawThreshold>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    series: Pattern,
    class: Option<Pattern>,
    ci: Option<String>,
    warning: f64,
    critical: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistration {
    new_cis: Option<NewCis>,
    stale_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrift {
    flap_window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    default: Option<Control>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    class: Option<Pattern>,
    attribute: Pattern,
    control: Control,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPriority {
    default_urgency: Option<Level>,
    #[serde(default)]
    urgency: BTreeMap<String, Level>,
    #[serde(default)]
    target_resolution: RawTargets,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTargets {
    p1: Option<String>,
    p2: Option<String>,
    p3: Option<String>,
    p4: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStandardChange {
    name: String,
    description: Option<String>,
    class: Option<Pattern>,
    attribute: Pattern,
    value: Option<Pattern>,
    #[serde(default)]
    kinds: Vec<ChangeKind>,
    window: Option<RawWindow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    days: Vec<String>,
    start: String,
    end: String,
    timezone: Option<String>,
}

impl RawWindow {
    fn validate(self) -> Result<ChangeWindow, (&'static str, String)> {
        let mut days = BTreeSet::new();
        for d in &self.days {
            let lower = d.to_ascii_lowercase();
            let i = WEEKDAYS
                .iter()
                .position(|w| lower.starts_with(w))
                .ok_or(("days", format!("{d:?} is not a weekday (mon … sun)")))?;
            days.insert(i as u8);
        }
        if days.is_empty() {
            return Err(("days", "name at least one weekday".into()));
        }
        let minute = |key: &'static str, text: &str| -> Result<u16, (&'static str, String)> {
            let bad = || {
                (
                    key,
                    format!("{text:?} is not a time like 02:00 (24:00 allowed as end)"),
                )
            };
            let (h, m) = text.split_once(':').ok_or_else(bad)?;
            let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if m > 59 || h > 24 || (h == 24 && m != 0) || (h == 24 && key == "start") {
                return Err(bad());
            }
            Ok(h * 60 + m)
        };
        let start_minute = minute("start", &self.start)?;
        let end_minute = minute("end", &self.end)?;
        if start_minute == end_minute {
            return Err(("end", "the window is empty (end equals start)".into()));
        }
        let zone = self.timezone.as_deref().unwrap_or("UTC");
        ChangeWindow::new(days, start_minute, end_minute, zone).map_err(|e| match e {
            HoursError::Zone(_) => ("timezone", e.to_string()),
            e => ("days", e.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_threshold_wins() {
        use fathom_shared::ids::CiId;
        let policy = Policy::from_toml(
            r#"
            [capacity]
            horizon = "14d"
            [[capacity.thresholds]]
            series = "fs.used_pct:*"
            warning = 80
            critical = 90
            [[capacity.thresholds]]
            series = "fs.used_pct:*"
            class = "database"
            warning = 70
            critical = 85
            [[capacity.thresholds]]
            series = "fs.used_pct:/var"
            ci = "ci-7"
            warning = 95
            critical = 98
            "#,
            Path::new("policy.toml"),
        )
        .unwrap();
        let c = &policy.capacity;
        assert_eq!(c.horizon_ms, 14 * 86_400_000);
        let level = |ci: u64, class: &str, series: &str| {
            c.threshold_for(CiId::from_u64(ci), class, series)
                .map(|t| t.warning)
        };
        assert_eq!(level(1, "server", "fs.used_pct:/"), Some(80.0));
        assert_eq!(level(1, "database", "fs.used_pct:/"), Some(70.0));
        assert_eq!(level(7, "database", "fs.used_pct:/var"), Some(95.0));
        assert_eq!(level(7, "database", "fs.used_pct:/srv"), Some(70.0));
        assert_eq!(level(1, "server", "memory.used_pct"), None);
        // The shipped policy watches filesystems and memory.
        let shipped = Policy::builtin().capacity;
        assert_eq!(shipped.horizon_ms, 30 * 86_400_000);
        let t = shipped
            .threshold_for(CiId::from_u64(1), "server", "fs.used_pct:/var")
            .unwrap();
        assert_eq!((t.warning, t.critical), (80.0, 90.0));
        assert!(shipped
            .threshold_for(CiId::from_u64(1), "server", "memory.used_pct")
            .is_some());
    }

    #[test]
    fn the_shipped_policy_parses_and_says_what_it_documents() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/policy.toml");
        let policy = Policy::from_file(&path).unwrap();
        assert_eq!(policy, Policy::builtin());
        assert_eq!(policy.new_cis, NewCis::Register);
        let control = |class: &str, attr: &str| policy.control_of(class, attr).control;
        assert_eq!(control("server", "packages.nginx"), Control::Controlled);
        assert_eq!(
            control("server", "packages.linux-image-6.1.0-26-amd64"),
            Control::Informational
        );
        assert_eq!(
            control("server", "network.eth0.addresses"),
            Control::Informational
        );
        assert_eq!(
            control("server", "hardware.system.serial"),
            Control::Controlled
        );
        assert_eq!(
            control("server", "hardware.memory.DIMM_A1.serial"),
            Control::Controlled
        );
        assert_eq!(
            control("server", "containers.docker/web.image"),
            Control::Informational
        );
        assert_eq!(
            control("server", "containers.docker/web.state"),
            Control::Ignored
        );
        assert_eq!(policy.urgency_of("hardware.memory_bytes"), Level::High);
        assert_eq!(policy.resolution_due(1, 0), 4 * 3_600_000);
        assert_eq!(policy.resolution_due(4, 0), 10 * 86_400_000);
        assert!(!policy.standard_changes.is_empty());
    }

    #[test]
    fn priority_matrix() {
        assert_eq!(priority(Level::High, Level::High), 1);
        assert_eq!(priority(Level::High, Level::Medium), 2);
        assert_eq!(priority(Level::Medium, Level::High), 2);
        assert_eq!(priority(Level::Medium, Level::Medium), 3);
        assert_eq!(priority(Level::Low, Level::High), 3);
        assert_eq!(priority(Level::Medium, Level::Low), 4);
        assert_eq!(priority(Level::Low, Level::Low), 4);
    }

    #[test]
    fn windows_by_weekday_and_across_midnight() {
        let w = |days: &[&str], start: &str, end: &str| {
            RawWindow {
                days: days.iter().map(|d| d.to_string()).collect(),
                start: start.into(),
                end: end.into(),
                timezone: None,
            }
            .validate()
            .unwrap()
        };
        // 2026-11-23 is a Monday.
        let monday_0230 = 1_795_392_000_000 + 2 * 3_600_000 + 30 * 60_000;
        let nightly = w(&["mon"], "02:00", "05:00");
        assert!(nightly.contains(monday_0230));
        assert!(!nightly.contains(monday_0230 + 3 * 3_600_000));
        assert!(!nightly.contains(monday_0230 + 86_400_000));
        let overnight = w(&["sun"], "22:00", "03:00");
        assert!(
            overnight.contains(monday_0230),
            "Sunday 22:00 runs into Monday 03:00"
        );
        assert!(!overnight.contains(monday_0230 + 3_600_000));
        assert_eq!(nightly.describe(), "mon 02:00–05:00 UTC");
        let bad = RawWindow {
            days: vec!["funday".into()],
            start: "01:00".into(),
            end: "02:00".into(),
            timezone: None,
        }
        .validate()
        .unwrap_err();
        assert_eq!(bad.0, "days");
    }

    /// The weekday arithmetic UTC standard-change windows were checked with
    /// before they moved onto the calendar: the oracle that they keep
    /// meaning the same.
    fn utc_weekday_window(days: &BTreeSet<u8>, start: u16, end: u16, at_ms: i64) -> bool {
        let day = at_ms.div_euclid(86_400_000);
        // 1970-01-01 was a Thursday (3 with Monday = 0).
        let weekday = (day + 3).rem_euclid(7) as u8;
        let minute = (at_ms.rem_euclid(86_400_000) / 60_000) as u16;
        if start <= end {
            days.contains(&weekday) && (start..end).contains(&minute)
        } else {
            let yesterday = (weekday + 6) % 7;
            (days.contains(&weekday) && minute >= start)
                || (days.contains(&yesterday) && minute < end)
        }
    }

    proptest::proptest! {
        #[test]
        fn utc_windows_mean_what_they_meant(
            days in proptest::collection::btree_set(0u8..7, 1..7),
            start in 0u16..1440,
            end in 0u16..=1440,
            offset_min in 0i64..(14 * 1440),
        ) {
            proptest::prop_assume!(start != end);
            let window = ChangeWindow::new(days.clone(), start, end, "UTC").unwrap();
            // Two weeks from Monday 2026-11-23, minute by minute at random.
            let at = 1_795_392_000_000 + offset_min * 60_000 + 17;
            proptest::prop_assert_eq!(
                window.contains(at),
                utc_weekday_window(&days, start, end, at),
                "{} at minute {}", window.describe(), offset_min
            );
        }
    }

    #[test]
    fn a_window_in_a_zone_follows_its_clock() {
        let policy = Policy::from_toml(
            r#"
            [[standard_changes]]
            name = "nightly-patching"
            attribute = "packages.*"
            window = { days = ["sun"], start = "02:00", end = "04:00", timezone = "Europe/Paris" }
            "#,
            Path::new("policy.toml"),
        )
        .unwrap();
        let window = policy.standard_changes[0].window.as_ref().unwrap();
        assert_eq!(window.describe(), "sun 02:00–04:00 Europe/Paris");
        let ms = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        // Sunday 2026-07-05, summer time (UTC+2): 02:30 local is 00:30 UTC.
        assert!(window.contains(ms("2026-07-05T00:30:00Z")));
        assert!(!window.contains(ms("2026-07-05T02:30:00Z")));
        // Sunday 2026-12-06, winter time (UTC+1): 02:30 local is 01:30 UTC.
        assert!(window.contains(ms("2026-12-06T01:30:00Z")));
        assert!(!window.contains(ms("2026-12-06T00:30:00Z")));
        let err = Policy::from_toml(
            "[[standard_changes]]\nname = 'x'\nattribute = 'a.*'\n\
             window = { days = ['sun'], start = '02:00', end = '04:00', timezone = 'Mars/Olympus' }",
            Path::new("policy.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("standard_changes[0].window.timezone") && err.contains("Mars/Olympus"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_file_and_key() {
        for (text, key) in [
            ("[registration]\nstale_after = 'soon'", "registration.stale_after"),
            (
                "[[capacity.thresholds]]\nseries = 'x'\nwarning = 90\ncritical = 80",
                "capacity.thresholds[0].warning",
            ),
            (
                "[[capacity.thresholds]]\nseries = 'x'\nci = 'web-1'\nwarning = 1\ncritical = 2",
                "capacity.thresholds[0].ci",
            ),
            ("[capacity]\nhorizon = 'forever'", "capacity.horizon"),
            ("[[maintenance]]\nwindow = 'sun 04:00-02:00'", "maintenance[0].window"),
            (
                "[[maintenance]]\nwindow = 'sun 02:00-04:00'\ntimezone = 'Mars/Olympus'",
                "maintenance[0].timezone",
            ),
            (
                "[[maintenance]]\nwindow = 'sun 02:00-04:00'\nexceptions = 'someday closed'",
                "maintenance[0].exceptions",
            ),
            ("[[maintenance]]\nci = 'db-1'\nwindow = 'sun 02:00-04:00'", "maintenance[0].ci"),
            ("[[maintenance]]\nclass = 'database'", "window"),
            ("[control]\ndefault = 'maybe'", "default"),
            (
                "[[standard_changes]]\nname = 'x'\nattribute = '*'\nwindow = { days = ['mon'], start = '25:00', end = '01:00' }",
                "standard_changes[0].window.start",
            ),
            ("[[standard_changes]]\nname = ''\nattribute = '*'", "standard_changes[0].name"),
            ("[drift]\nflap = '1h'", "flap"),
            ("[priority.target_resolution]\np2 = 'soonish'", "priority.target_resolution.p2"),
        ] {
            let err = Policy::from_toml(text, Path::new("policy.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("policy.toml") && err.contains(key), "{key}: {err}");
        }
    }
}
