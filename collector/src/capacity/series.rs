//! What is measured: series names, their units, and the samples a report
//! gives.
//!
//! A series is named `metric` or `metric:instance`, the instance being a
//! mount point or an interface name: `cpu.utilisation_pct`, `load.5`,
//! `memory.used_pct`, `fs.used_pct:/var`, `if.in_bps:eth0`. Metric names
//! never hold a `:`; instances may (`eth0:1`), so a name splits at its
//! first one.
//!
//! Values are stored as integers in a unit's quantum (0.01 for percentages
//! and load, 1 for bytes and bit/s, 0.001 for events per second): finer than
//! any agent measures, and what lets a block of samples compress to a
//! byte or two.
//!
//! Interface rates come from the agents, which hold both counter readings
//! of an interval: a host's sampler, and the SNMP poller for devices. The
//! store keeps no state per agent.

use fathom_shared::wire::Metrics;
use serde::{Deserialize, Serialize};

use crate::cmdb::device::DeviceSample;

/// Longest series name kept; longer ones (a pathological mount point) are
/// dropped with a warning.
pub const MAX_NAME_LEN: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Percent,
    Load,
    Bytes,
    BitsPerSecond,
    PerSecond,
}

impl Unit {
    /// The unit of a series, from its metric name; `None` for a name this
    /// version does not know.
    pub fn of(name: &str) -> Option<Unit> {
        let metric = metric_of(name);
        Some(if metric.ends_with("_pct") {
            Unit::Percent
        } else if metric.starts_with("load.") {
            Unit::Load
        } else if metric.ends_with("_bytes") {
            Unit::Bytes
        } else if metric.ends_with("_bps") {
            Unit::BitsPerSecond
        } else if metric.ends_with("_per_s") {
            Unit::PerSecond
        } else {
            return None;
        })
    }

    /// Quanta per unit.
    pub fn scale(self) -> f64 {
        match self {
            Unit::Percent | Unit::Load => 100.0,
            Unit::Bytes | Unit::BitsPerSecond => 1.0,
            Unit::PerSecond => 1000.0,
        }
    }

    pub fn quantize(self, value: f64) -> i64 {
        // `as` saturates; NaN (refused at ingest anyway) becomes 0.
        (value * self.scale()).round() as i64
    }

    pub fn value(self, quanta: i64) -> f64 {
        quanta as f64 / self.scale()
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Percent => "%",
            Unit::Load => "",
            Unit::Bytes => "B",
            Unit::BitsPerSecond => "bit/s",
            Unit::PerSecond => "/s",
        }
    }
}

/// The metric part of a series name (before the first `:`).
pub fn metric_of(name: &str) -> &str {
    name.split_once(':').map_or(name, |(m, _)| m)
}

/// The instance part of a series name (after the first `:`), if any.
pub fn instance_of(name: &str) -> Option<&str> {
    name.split_once(':').map(|(_, i)| i)
}

/// Whether a series name can be stored: known unit, no NUL (the key
/// separator), not too long.
pub fn storable(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN && !name.contains('\0') && Unit::of(name).is_some()
}

/// One measurement of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub at_ms: i64,
    pub value: f64,
}

/// The samples of a host metrics report.
pub fn host_samples(m: &Metrics) -> Vec<Sample> {
    let at = m.observed_at_ms;
    let mut out = Vec::new();
    let mut put = |name: String, value: f64| {
        if value.is_finite() {
            out.push(Sample {
                name,
                at_ms: at,
                value,
            })
        }
    };
    let pct = |used: u64, total: u64| used as f64 * 100.0 / total as f64;
    put(
        "cpu.utilisation_pct".into(),
        f64::from(m.cpu_utilisation_pct),
    );
    put("load.1".into(), m.load_1);
    put("load.5".into(), m.load_5);
    put("load.15".into(), m.load_15);
    if m.memory_total_bytes > 0 {
        put(
            "memory.used_pct".into(),
            pct(m.memory_used_bytes, m.memory_total_bytes),
        );
        put("memory.used_bytes".into(), m.memory_used_bytes as f64);
    }
    if m.swap_total_bytes > 0 {
        put(
            "swap.used_pct".into(),
            pct(m.swap_used_bytes, m.swap_total_bytes),
        );
    }
    for fs in &m.filesystems {
        if fs.total_bytes == 0 {
            // Pseudo filesystems (proc, sysfs…) have no space to run out of.
            continue;
        }
        let mount = &fs.mount_point;
        put(
            format!("fs.used_pct:{mount}"),
            pct(fs.used_bytes, fs.total_bytes),
        );
        put(format!("fs.used_bytes:{mount}"), fs.used_bytes as f64);
        if let (Some(used), Some(total)) = (fs.inodes_used, fs.inodes_total) {
            if total > 0 {
                put(format!("fs.inodes_used_pct:{mount}"), pct(used, total));
            }
        }
    }
    for i in &m.interfaces {
        if let Some(bps) = i.rx_bps {
            put(format!("if.in_bps:{}", i.name), bps);
        }
        if let Some(bps) = i.tx_bps {
            put(format!("if.out_bps:{}", i.name), bps);
        }
        if let Some(errors) = i.errors_per_s {
            put(format!("if.errors_per_s:{}", i.name), errors);
        }
    }
    out
}

/// The samples of a network device poll's interface rates.
pub fn device_samples(d: &DeviceSample) -> Vec<Sample> {
    let at = d.observed_at_ms;
    let mut out = Vec::new();
    for r in &d.rates {
        let name = d
            .names
            .get(&r.index)
            .cloned()
            .unwrap_or_else(|| format!("ifIndex.{}", r.index));
        let mut put = |metric: &str, value: f64| {
            out.push(Sample {
                name: format!("{metric}:{name}"),
                at_ms: at,
                value,
            })
        };
        put("if.in_bps", r.in_bps);
        put("if.out_bps", r.out_bps);
        if let Some(u) = r.utilization_pct {
            put("if.utilization_pct", u);
        }
        put("if.errors_per_s", r.errors_per_s);
        put("if.discards_per_s", r.discards_per_s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fathom_shared::wire::{FilesystemUse, InterfaceCounters};

    fn value(samples: &[Sample], name: &str) -> Option<f64> {
        samples.iter().find(|s| s.name == name).map(|s| s.value)
    }

    #[test]
    fn units_come_from_metric_names() {
        assert_eq!(Unit::of("fs.used_pct:/var/lib:x"), Some(Unit::Percent));
        assert_eq!(Unit::of("load.15"), Some(Unit::Load));
        assert_eq!(Unit::of("if.in_bps:eth0:1"), Some(Unit::BitsPerSecond));
        assert_eq!(Unit::of("if.errors_per_s:Gi1/0/1"), Some(Unit::PerSecond));
        assert_eq!(Unit::of("memory.used_bytes"), Some(Unit::Bytes));
        assert_eq!(Unit::of("temperature"), None);
        assert_eq!(instance_of("if.in_bps:eth0:1"), Some("eth0:1"));
        assert!(!storable("fs.used_pct:/a\0b"));
        assert_eq!(Unit::Percent.quantize(12.345), 1235);
        assert_eq!(Unit::Percent.value(1235), 12.35);
    }

    #[test]
    fn a_host_report_gives_its_utilisation_and_rates() {
        let m = Metrics {
            observed_at_ms: 10_000,
            cpu_utilisation_pct: 12.5,
            load_1: 0.5,
            memory_used_bytes: 1 << 30,
            memory_total_bytes: 4 << 30,
            filesystems: vec![
                FilesystemUse {
                    mount_point: "/var".into(),
                    used_bytes: 90,
                    total_bytes: 100,
                    inodes_used: Some(5),
                    inodes_total: Some(50),
                },
                FilesystemUse {
                    mount_point: "/proc".into(),
                    ..FilesystemUse::default()
                },
            ],
            interfaces: vec![
                InterfaceCounters {
                    name: "eth0".into(),
                    rx_bps: Some(100_000.0),
                    tx_bps: Some(0.0),
                    errors_per_s: Some(0.5),
                    ..InterfaceCounters::default()
                },
                InterfaceCounters {
                    name: "eth1".into(),
                    ..InterfaceCounters::default()
                },
            ],
            ..Metrics::default()
        };
        let samples = host_samples(&m);
        assert_eq!(value(&samples, "cpu.utilisation_pct"), Some(12.5));
        assert_eq!(value(&samples, "memory.used_pct"), Some(25.0));
        assert_eq!(value(&samples, "fs.used_pct:/var"), Some(90.0));
        assert_eq!(value(&samples, "fs.inodes_used_pct:/var"), Some(10.0));
        assert_eq!(value(&samples, "fs.used_pct:/proc"), None);
        assert_eq!(value(&samples, "swap.used_pct"), None, "no swap");
        assert_eq!(value(&samples, "if.in_bps:eth0"), Some(100_000.0));
        assert_eq!(value(&samples, "if.out_bps:eth0"), Some(0.0));
        assert_eq!(value(&samples, "if.errors_per_s:eth0"), Some(0.5));
        assert_eq!(
            value(&samples, "if.in_bps:eth1"),
            None,
            "no interval measured"
        );
        assert!(samples.iter().all(|s| s.at_ms == 10_000));
    }
}
