//! Live kernel figures through `sysinfo`: CPU, memory, mounted filesystems,
//! network interfaces, and the periodic utilisation [`Sampler`]. This is the
//! only module that uses `sysinfo`; it reads the running kernel, not the host
//! root.

// The home of sysinfo (clippy.toml).
#![allow(clippy::disallowed_types)]

use std::collections::BTreeMap;

use fathom_shared::wire::{
    Filesystem, FilesystemUse, Hardware, Interface, InterfaceCounters, Metrics,
};
use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, RefreshKind, System,
};

/// The inventory sections that come from the live kernel.
#[derive(Debug)]
pub struct SystemFacts {
    pub hardware: Hardware,
    pub filesystems: Vec<Filesystem>,
    pub interfaces: Vec<Interface>,
}

pub fn probe() -> SystemFacts {
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::everything()),
    );
    let cpu_model = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_owned())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    let hardware = Hardware {
        cpu_model,
        cpu_cores: System::physical_core_count().map(|n| n as u32),
        cpu_threads: sys.cpus().len() as u32,
        memory_bytes: sys.total_memory(),
        swap_bytes: sys.total_swap(),
        cpu_sockets: None,
        cpu_flags: Vec::new(),
    };
    let disks = Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage());
    let mut by_mount: BTreeMap<String, Filesystem> = BTreeMap::new();
    for disk in disks.list() {
        let mount_point = disk.mount_point().to_string_lossy().into_owned();
        by_mount
            .entry(mount_point.clone())
            .or_insert_with(|| Filesystem {
                mount_point,
                device: disk.name().to_string_lossy().into_owned(),
                fs_type: disk.file_system().to_string_lossy().into_owned(),
                total_bytes: disk.total_space(),
            });
    }
    let networks = Networks::new_with_refreshed_list();
    let mut interfaces: Vec<Interface> = networks
        .iter()
        .map(|(name, data)| {
            let mac = data.mac_address();
            let mut addresses: Vec<String> = data
                .ip_networks()
                .iter()
                .map(|n| format!("{}/{}", n.addr, n.prefix))
                .collect();
            addresses.sort();
            Interface {
                name: name.clone(),
                mac: (!mac.is_unspecified()).then(|| mac.to_string().to_ascii_lowercase()),
                addresses,
                ..Interface::default()
            }
        })
        .collect();
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    SystemFacts {
        hardware,
        filesystems: by_mount.into_values().collect(),
        interfaces,
    }
}

/// Takes utilisation samples. Keeps `sysinfo` state between samples because
/// CPU utilisation is a difference between two readings.
#[derive(Debug)]
pub struct Sampler {
    sys: System,
    disks: Disks,
    networks: Networks,
    /// When `networks` was last refreshed: its per-interface byte counts
    /// are since then.
    networks_at: std::time::Instant,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Sampler {
        let sys = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::everything()),
        );
        Sampler {
            sys,
            disks: Disks::new_with_refreshed_list_specifics(
                DiskRefreshKind::nothing().with_storage(),
            ),
            networks: Networks::new_with_refreshed_list(),
            networks_at: std::time::Instant::now(),
        }
    }

    /// A sample. CPU utilisation covers the time since the previous call (or
    /// since [`Sampler::new`]).
    pub fn sample(&mut self) -> Metrics {
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        self.networks.refresh(true);
        let elapsed = std::mem::replace(&mut self.networks_at, std::time::Instant::now())
            .elapsed()
            .as_secs_f64();
        let per_s = |n: u64| (elapsed > 0.0).then(|| n as f64 / elapsed);
        let bps = |bytes: u64| per_s(bytes).map(|b| b * 8.0);
        let load = System::load_average();
        let mut filesystems: Vec<FilesystemUse> = self
            .disks
            .list()
            .iter()
            .map(|d| {
                let (inodes_used, inodes_total) = inodes(d.mount_point());
                FilesystemUse {
                    mount_point: d.mount_point().to_string_lossy().into_owned(),
                    used_bytes: d.total_space().saturating_sub(d.available_space()),
                    total_bytes: d.total_space(),
                    inodes_used,
                    inodes_total,
                }
            })
            .collect();
        filesystems.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        filesystems.dedup_by(|a, b| a.mount_point == b.mount_point);
        let mut interfaces: Vec<InterfaceCounters> = self
            .networks
            .iter()
            .map(|(name, data)| InterfaceCounters {
                name: name.clone(),
                rx_bytes: data.total_received(),
                tx_bytes: data.total_transmitted(),
                rx_bps: bps(data.received()),
                tx_bps: bps(data.transmitted()),
                errors_per_s: per_s(data.errors_on_received() + data.errors_on_transmitted()),
            })
            .collect();
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        Metrics {
            observed_at_ms: crate::now_ms(),
            cpu_utilisation_pct: self.sys.global_cpu_usage(),
            load_1: load.one,
            load_5: load.five,
            load_15: load.fifteen,
            memory_used_bytes: self.sys.used_memory(),
            memory_total_bytes: self.sys.total_memory(),
            swap_used_bytes: self.sys.used_swap(),
            swap_total_bytes: self.sys.total_swap(),
            filesystems,
            interfaces,
            cadence: None,
        }
    }
}

/// Inodes in use and in all on the filesystem mounted at `mount`; `None`
/// where it has no fixed number of them (btrfs says 0) or `statvfs` fails.
fn inodes(mount: &std::path::Path) -> (Option<u64>, Option<u64>) {
    match rustix::fs::statvfs(mount) {
        Ok(s) if s.f_files > 0 => (Some(s.f_files.saturating_sub(s.f_ffree)), Some(s.f_files)),
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_cpus_memory_and_a_loopback() {
        let facts = probe();
        let threads = std::thread::available_parallelism().unwrap().get() as u32;
        assert_eq!(facts.hardware.cpu_threads, threads);
        assert!(facts.hardware.memory_bytes > 0);
        assert!(facts.interfaces.iter().any(|i| i.name == "lo"));
        let mut sampler = Sampler::new();
        let m = sampler.sample();
        assert!(m.memory_used_bytes <= m.memory_total_bytes);
        assert!((0.0..=100.0).contains(&m.cpu_utilisation_pct));
        // The root filesystem of any machine this runs on has inodes
        // (ext4, xfs, overlay); `df -i /` is the oracle.
        let (used, total) = inodes(std::path::Path::new("/"));
        let out = std::process::Command::new("df")
            .args(["--output=iused,itotal", "/"])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let numbers: Vec<u64> = text
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(total, (numbers[1] > 0).then_some(numbers[1]));
        // Files come and go between the two readings.
        if let Some(used) = used {
            assert!(used.abs_diff(numbers[0]) < 10_000, "{used} vs {numbers:?}");
        }
    }
}
