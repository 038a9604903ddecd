//! Report bodies and the collector's answers.
//!
//! Bodies are msgpack with named fields (see [`crate::codec`]). Every field an
//! older agent may not send is `#[serde(default)]`, so fields can be added in
//! a minor release without a protocol version bump.
//!
//! A section that a probe could not read is `None` and has an entry in
//! `probe_errors`; an empty `Some` means "read, and there was nothing". The
//! collector must keep the two apart or it would report false drift.

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, CiId};

/// First message of a new agent: proves possession of an enrollment token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The secret an operator created with `fathom token create`.
    pub token: String,
    /// What the agent calls its host, for the operator's listing only; never
    /// used to identify anything.
    pub hostname: String,
    pub agent_version: String,
}

/// A full inventory of one host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Inventory {
    /// When discovery ran (Unix ms); the envelope's `sent_at_ms` may be later
    /// if the report waited in the spool.
    pub observed_at_ms: i64,
    pub agent_version: String,
    pub host: Host,
    #[serde(default)]
    pub hardware: Option<Hardware>,
    #[serde(default)]
    pub dmi: Option<Dmi>,
    #[serde(default)]
    pub filesystems: Option<Vec<Filesystem>>,
    #[serde(default)]
    pub interfaces: Option<Vec<Interface>>,
    #[serde(default)]
    pub packages: Option<Vec<Package>>,
    /// The configured watched files; `None` when none are configured.
    #[serde(default)]
    pub files: Option<Vec<WatchedFile>>,
    #[serde(default)]
    pub virtualization: Option<Virtualization>,
    /// Disks and volumes from sysfs.
    #[serde(default)]
    pub block_devices: Option<Vec<BlockDevice>>,
    /// systemd services, sockets and timers.
    #[serde(default)]
    pub units: Option<Vec<Unit>>,
    /// Listening TCP and UDP sockets.
    #[serde(default)]
    pub listeners: Option<Vec<Listener>>,
    /// Local users (from passwd; never secrets).
    #[serde(default)]
    pub users: Option<Vec<User>>,
    #[serde(default)]
    pub groups: Option<Vec<Group>>,
    /// Loaded kernel modules, by name.
    #[serde(default)]
    pub kernel_modules: Option<Vec<String>>,
    /// Memory slots from the SMBIOS tables (type 17), empty ones included.
    #[serde(default)]
    pub memory_modules: Option<Vec<MemoryModule>>,
    /// Display controllers on the PCI bus.
    #[serde(default)]
    pub gpus: Option<Vec<Gpu>>,
    /// Containers a runtime on the host knows of (read from its state files;
    /// `None` where no runtime is installed).
    #[serde(default)]
    pub containers: Option<Vec<Container>>,
    #[serde(default)]
    pub probe_errors: Vec<ProbeError>,
    /// How often this agent sends its scheduled reports, as configured.
    /// `None` from agents that predate it.
    #[serde(default)]
    pub cadence: Option<Cadence>,
}

/// How often an agent sends its scheduled reports, as it is configured to:
/// the collector's expected heartbeat interval is the shorter of the two.
/// Change pushes and device polls come on top, and are not the cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cadence {
    pub metrics_interval_ms: u64,
    pub inventory_interval_ms: u64,
}

impl Cadence {
    /// The longest gap between two scheduled reports while the agent runs.
    pub fn heartbeat_interval_ms(&self) -> u64 {
        match (self.metrics_interval_ms, self.inventory_interval_ms) {
            (0, i) | (i, 0) => i,
            (m, i) => m.min(i),
        }
    }
}

/// Lists an inventory's sections (everything but `host`, which every report
/// carries) once, for deltas and change detection.
macro_rules! sections {
    ($($name:ident),* $(,)?) => {
        impl Inventory {
            /// The names of the sections a delta may replace.
            pub const SECTIONS: &'static [&'static str] = &[$(stringify!($name)),*];

            /// One section, encoded (its `Option` included, so "not read"
            /// and "read, empty" differ). `None` for an unknown name.
            pub fn section_bytes(&self, name: &str) -> Option<Vec<u8>> {
                match name {
                    $(stringify!($name) => {
                        Some(crate::codec::encode(&self.$name).expect("sections always encode"))
                    })*
                    _ => None,
                }
            }

            /// Whether a section holds anything (read or not).
            pub fn has_section(&self, name: &str) -> bool {
                match name {
                    $(stringify!($name) => self.$name.is_some(),)*
                    _ => false,
                }
            }

            /// Moves one section out of `from` into `self`. False for an
            /// unknown name.
            pub fn take_section(&mut self, from: &mut Inventory, name: &str) -> bool {
                match name {
                    $(stringify!($name) => {
                        self.$name = from.$name.take();
                        true
                    })*
                    _ => false,
                }
            }
        }
    };
}

sections!(
    hardware,
    dmi,
    filesystems,
    interfaces,
    packages,
    files,
    virtualization,
    block_devices,
    units,
    listeners,
    users,
    groups,
    kernel_modules,
    memory_modules,
    gpus,
    containers,
);

/// The sections of an inventory that changed since an earlier report.
///
/// `base_seq` is the sequence number of the report (full or delta) whose
/// state this builds on. The collector applies a delta only when the state
/// it holds for the agent came from exactly that report; otherwise a report
/// went missing, and it answers [`AckOutcome::NeedsFull`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InventoryDelta {
    pub base_seq: u64,
    /// The sections this delta replaces, by [`Inventory::SECTIONS`] name. A
    /// listed section that is `None` could no longer be read (its probe
    /// error is in `inventory.probe_errors`).
    pub sections: Vec<String>,
    /// The host, the listed sections, and the probe errors of the listed
    /// sections; every other section is `None`.
    pub inventory: Inventory,
    /// Packages changed one by one, instead of the whole section: a package
    /// upgrade is then a few hundred bytes, not the host's whole list. Only
    /// when the base had a package list and this one has too; `packages` is
    /// then not in `sections`.
    #[serde(default)]
    pub packages_changed: Option<PackageChanges>,
}

/// Packages added, upgraded or removed since the base.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PackageChanges {
    /// New packages, and new versions of existing ones (matched by manager,
    /// name and architecture).
    pub upsert: Vec<Package>,
    pub remove: Vec<PackageKey>,
}

/// What tells two installed packages apart on one host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct PackageKey {
    pub manager: String,
    pub name: String,
    #[serde(default)]
    pub arch: Option<String>,
}

impl Package {
    pub fn key(&self) -> PackageKey {
        PackageKey {
            manager: self.manager.clone(),
            name: self.name.clone(),
            arch: self.arch.clone(),
        }
    }
}

impl PackageChanges {
    /// The changes that turn `old` into `new`.
    pub fn between(old: &[Package], new: &[Package]) -> PackageChanges {
        use std::collections::BTreeMap;
        let old: BTreeMap<PackageKey, &Package> = old.iter().map(|p| (p.key(), p)).collect();
        let new_keys: std::collections::BTreeSet<PackageKey> =
            new.iter().map(Package::key).collect();
        PackageChanges {
            upsert: new
                .iter()
                .filter(|p| old.get(&p.key()).copied() != Some(*p))
                .cloned()
                .collect(),
            remove: old
                .keys()
                .filter(|k| !new_keys.contains(*k))
                .cloned()
                .collect(),
        }
    }

    /// Applies the changes to a package list, keeping it sorted.
    pub fn apply(&self, packages: &mut Vec<Package>) {
        let remove: std::collections::BTreeSet<&PackageKey> = self.remove.iter().collect();
        let upserted: std::collections::BTreeSet<PackageKey> =
            self.upsert.iter().map(Package::key).collect();
        packages.retain(|p| {
            let key = p.key();
            !remove.contains(&key) && !upserted.contains(&key)
        });
        packages.extend(self.upsert.iter().cloned());
        packages.sort();
    }
}

/// A delta that does not say clearly what it replaces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("unknown section {0:?}")]
    UnknownSection(String),
    #[error("section {0:?} is listed twice")]
    Duplicate(String),
    #[error("section {0:?} is filled but not listed as changed")]
    Unlisted(&'static str),
    #[error("a delta needs a base report (base_seq 0 is the enrollment)")]
    NoBase,
    #[error("packages_changed and a packages section cannot both be sent")]
    PackagesTwice,
}

impl InventoryDelta {
    /// Checks the delta names known sections, once each, and carries nothing
    /// it does not list.
    pub fn validate(&self) -> Result<(), DeltaError> {
        if self.base_seq == 0 {
            return Err(DeltaError::NoBase);
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in &self.sections {
            if !Inventory::SECTIONS.contains(&name.as_str()) {
                return Err(DeltaError::UnknownSection(name.chars().take(64).collect()));
            }
            if !seen.insert(name.as_str()) {
                return Err(DeltaError::Duplicate(name.clone()));
            }
        }
        if self.packages_changed.is_some()
            && (seen.contains("packages") || self.inventory.packages.is_some())
        {
            return Err(DeltaError::PackagesTwice);
        }
        match Inventory::SECTIONS
            .iter()
            .find(|s| self.inventory.has_section(s) && !seen.contains(*s))
        {
            Some(unlisted) => Err(DeltaError::Unlisted(unlisted)),
            None => Ok(()),
        }
    }

    /// Whether this delta can be applied to `base`: item-level package
    /// changes need a package list to change.
    pub fn fits(&self, base: &Inventory) -> bool {
        self.packages_changed.is_none() || base.packages.is_some()
    }

    /// Applies the delta to the full inventory it was based on, giving the
    /// host's current full inventory. Call [`InventoryDelta::validate`]
    /// first: unknown names are skipped here.
    pub fn apply_to(mut self, mut base: Inventory) -> Inventory {
        for name in &self.sections {
            base.take_section(&mut self.inventory, name);
        }
        if let (Some(changes), Some(packages)) = (&self.packages_changed, &mut base.packages) {
            changes.apply(packages);
        }
        let changed = |probe: &str| self.sections.iter().any(|s| s == probe);
        base.probe_errors.retain(|e| !changed(&e.probe));
        base.probe_errors.append(&mut self.inventory.probe_errors);
        base.observed_at_ms = self.inventory.observed_at_ms;
        base.agent_version = self.inventory.agent_version;
        base.host = self.inventory.host;
        base
    }
}

/// A memory slot, from an SMBIOS Memory Device structure (type 17).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemoryModule {
    /// The slot's silkscreen label (`DIMM_A1`, `ChannelA-DIMM0`).
    pub locator: String,
    #[serde(default)]
    pub bank: Option<String>,
    /// 0 for an empty slot.
    pub size_bytes: u64,
    /// `DDR4`, `DDR5`, `LPDDR4`…
    #[serde(default)]
    pub kind: Option<String>,
    /// `DIMM`, `SODIMM`…
    #[serde(default)]
    pub form_factor: Option<String>,
    /// Rated speed, in MT/s.
    #[serde(default)]
    pub speed_mts: Option<u32>,
    /// The speed the firmware set, in MT/s.
    #[serde(default)]
    pub configured_speed_mts: Option<u32>,
    #[serde(default)]
    pub manufacturer: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub part_number: Option<String>,
}

/// A display controller.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Gpu {
    /// `0000:01:00.0`.
    pub pci_address: String,
    /// PCI vendor and device ids, hex (`10de`, `2204`).
    pub vendor_id: String,
    pub device_id: String,
    /// Names from the host's `pci.ids`, where it has one.
    #[serde(default)]
    pub vendor: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// The kernel driver bound to it (`nvidia`, `amdgpu`, `i915`).
    #[serde(default)]
    pub driver: Option<String>,
}

/// A container, as its runtime's state on disk describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Container {
    /// `docker` or `podman`.
    pub runtime: String,
    pub id: String,
    pub name: String,
    /// The image reference it was created from (`nginx:1.25`).
    pub image: String,
    /// The image id (`sha256:…`), where recorded.
    #[serde(default)]
    pub image_id: Option<String>,
    /// `running`, `paused`, `restarting`, `exited`, `created`.
    pub state: String,
    #[serde(default)]
    pub created_at_ms: Option<i64>,
}

/// A systemd unit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Unit {
    pub name: String,
    /// `enabled`, `disabled` or `masked`.
    pub state: String,
    /// Whether it is running; `None` where systemd is not.
    #[serde(default)]
    pub active: Option<bool>,
}

/// A disk or volume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BlockDevice {
    /// `sda`, `nvme0n1`, or a device-mapper volume's name (`vg0-root`).
    pub name: String,
    /// The kernel's name (`dm-0`).
    pub kernel_name: String,
    pub size_bytes: u64,
    #[serde(default)]
    pub rotational: Option<bool>,
    #[serde(default)]
    pub removable: bool,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub vendor: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    /// World wide name or other stable id (`naa.…`, `eui.…`).
    #[serde(default)]
    pub wwn: Option<String>,
}

/// A socket accepting connections (TCP) or datagrams (UDP).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Listener {
    /// `tcp` or `udp` (IPv6 sockets too; the address says which).
    pub protocol: String,
    pub address: String,
    pub port: u16,
    pub uid: u32,
    #[serde(default)]
    pub inode: Option<u64>,
    #[serde(default)]
    pub pid: Option<u32>,
    /// The owning process's name (`comm`), where visible.
    #[serde(default)]
    pub process: Option<String>,
}

/// A local user account: no password hashes, ever.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// A watched file's fingerprint: never its content.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WatchedFile {
    /// The path on the host (without the agent's host root).
    pub path: String,
    /// `file`, `dir`, `symlink`, `other`, or `missing` (a configured path
    /// that does not exist; globs that match nothing list nothing).
    pub kind: String,
    /// Hex SHA-256 of a regular file's content; `None` for other kinds, or
    /// when it could not be read (see `error`).
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub size: u64,
    /// Permission bits, e.g. `0640`.
    #[serde(default)]
    pub mode: Option<String>,
    /// `user:group`, by name where the host's passwd and group files say,
    /// else by number.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub mtime_ms: Option<i64>,
    /// A symlink's target.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Host {
    pub hostname: String,
    #[serde(default)]
    pub os: Option<Os>,
    #[serde(default)]
    pub kernel: Option<String>,
    pub arch: String,
    #[serde(default)]
    pub machine_id: Option<String>,
    #[serde(default)]
    pub uptime_secs: Option<u64>,
    /// When the host booted (Unix ms), from `/proc/stat`'s `btime`.
    #[serde(default)]
    pub boot_time_ms: Option<i64>,
    /// The IANA zone (`Europe/Paris`), from `/etc/timezone` or the
    /// `/etc/localtime` link.
    #[serde(default)]
    pub timezone: Option<String>,
    /// The fully qualified name, where `/etc/hosts` gives one for the
    /// hostname.
    #[serde(default)]
    pub fqdn: Option<String>,
}

/// From os-release(5).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Os {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub version_id: Option<String>,
    #[serde(default)]
    pub pretty_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Hardware {
    pub cpu_model: String,
    /// Physical cores, where the kernel says.
    #[serde(default)]
    pub cpu_cores: Option<u32>,
    /// Logical CPUs (hardware threads).
    pub cpu_threads: u32,
    pub memory_bytes: u64,
    pub swap_bytes: u64,
    /// CPU packages, from `/proc/cpuinfo`.
    #[serde(default)]
    pub cpu_sockets: Option<u32>,
    /// The flags of interest the CPUs have (`vmx`, `aes`, `avx2`…).
    #[serde(default)]
    pub cpu_flags: Vec<String>,
}

/// Bare metal, a virtual machine, or a container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Virtualization {
    /// `bare_metal`, `vm` or `container`.
    pub kind: String,
    /// `kvm`, `qemu`, `vmware`, `hyper-v`, `xen`…, or `unknown` when only
    /// the CPU says there is one.
    #[serde(default)]
    pub hypervisor: Option<String>,
    /// `docker`, `podman`, `lxc`…
    #[serde(default)]
    pub container: Option<String>,
}

/// SMBIOS identity as the kernel exposes it in `/sys/class/dmi/id`. Each field
/// is `None` where the file is missing or unreadable (serial and UUID are
/// readable only by root).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Dmi {
    pub sys_vendor: Option<String>,
    pub product_name: Option<String>,
    pub product_serial: Option<String>,
    pub product_uuid: Option<String>,
    pub board_vendor: Option<String>,
    pub board_name: Option<String>,
    pub bios_vendor: Option<String>,
    pub bios_version: Option<String>,
    pub bios_date: Option<String>,
    /// The SMBIOS chassis type, named as dmidecode names it (`Rack Mount
    /// Chassis`, `Notebook`…).
    #[serde(default)]
    pub chassis_type: Option<String>,
    /// Readable by root only.
    #[serde(default)]
    pub board_serial: Option<String>,
}

/// A mounted filesystem. How full it is belongs to metrics
/// ([`FilesystemUse`]), not to the configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Filesystem {
    pub mount_point: String,
    pub device: String,
    pub fs_type: String,
    pub total_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    /// Lower-case, colon-separated; `None` for interfaces without one.
    #[serde(default)]
    pub mac: Option<String>,
    /// Addresses in CIDR notation.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The kernel driver (`ixgbe`, `virtio_net`).
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub link_up: Option<bool>,
    #[serde(default)]
    pub speed_mbps: Option<u64>,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// `physical`, `bond`, `bridge`, `vlan`, `loopback`, `virtual`, or the
    /// kernel's own DEVTYPE.
    #[serde(default)]
    pub kind: Option<String>,
    /// The bond or bridge this interface is a port of.
    #[serde(default)]
    pub master: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub arch: Option<String>,
    /// Which database it came from: `dpkg`, `rpm`, `apk`, `pacman`, `snap`,
    /// `flatpak`.
    pub manager: String,
    /// The source package it was built from, where the database says and it
    /// differs from the name.
    #[serde(default)]
    pub source: Option<String>,
    /// When it was installed or last upgraded (Unix ms), where recorded.
    #[serde(default)]
    pub installed_at_ms: Option<i64>,
}

/// One probe that could not do its work, and why. The rest of the report is
/// still good.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProbeError {
    /// The probe's name, which is also the report section it would have filled.
    pub probe: String,
    pub message: String,
}

/// A report holding more items in a section than any real host has: it is
/// refused before reconciliation, naming the section, so one enrolled
/// agent cannot stall the collector with a flood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("section {section} holds {count} items; at most {max} are taken")]
pub struct TooManyItems {
    pub section: &'static str,
    pub count: usize,
    pub max: usize,
}

/// The most items a report's section may hold, per section. Generous: ten
/// times what a large real host reports.
pub const MAX_ITEMS: [(&str, usize); 13] = [
    ("packages", 200_000),
    ("files", 10_000),
    ("filesystems", 4_096),
    ("interfaces", 16_384),
    ("block_devices", 4_096),
    ("units", 50_000),
    ("listeners", 50_000),
    ("users", 100_000),
    ("groups", 100_000),
    ("kernel_modules", 10_000),
    ("memory_modules", 1_024),
    ("gpus", 256),
    ("containers", 20_000),
];

fn limit(section: &'static str) -> usize {
    MAX_ITEMS
        .iter()
        .find(|(s, _)| *s == section)
        .map_or(usize::MAX, |(_, n)| *n)
}

fn check(section: &'static str, count: usize) -> Result<(), TooManyItems> {
    let max = limit(section);
    if count > max {
        return Err(TooManyItems {
            section,
            count,
            max,
        });
    }
    Ok(())
}

impl Inventory {
    /// Checks every section against [`MAX_ITEMS`].
    pub fn check_limits(&self) -> Result<(), TooManyItems> {
        let len = |v: Option<usize>| v.unwrap_or(0);
        check("packages", len(self.packages.as_ref().map(Vec::len)))?;
        check("files", len(self.files.as_ref().map(Vec::len)))?;
        check("filesystems", len(self.filesystems.as_ref().map(Vec::len)))?;
        check("interfaces", len(self.interfaces.as_ref().map(Vec::len)))?;
        check(
            "block_devices",
            len(self.block_devices.as_ref().map(Vec::len)),
        )?;
        check("units", len(self.units.as_ref().map(Vec::len)))?;
        check("listeners", len(self.listeners.as_ref().map(Vec::len)))?;
        check("users", len(self.users.as_ref().map(Vec::len)))?;
        check("groups", len(self.groups.as_ref().map(Vec::len)))?;
        check(
            "kernel_modules",
            len(self.kernel_modules.as_ref().map(Vec::len)),
        )?;
        check(
            "memory_modules",
            len(self.memory_modules.as_ref().map(Vec::len)),
        )?;
        check("gpus", len(self.gpus.as_ref().map(Vec::len)))?;
        check("containers", len(self.containers.as_ref().map(Vec::len)))?;
        Ok(())
    }
}

impl InventoryDelta {
    /// Checks the delta's sections, and its package changes as packages.
    pub fn check_limits(&self) -> Result<(), TooManyItems> {
        self.inventory.check_limits()?;
        if let Some(c) = &self.packages_changed {
            check("packages", c.upsert.len() + c.remove.len())?;
        }
        Ok(())
    }
}

impl Metrics {
    /// Checks the per-filesystem and per-interface figures.
    pub fn check_limits(&self) -> Result<(), TooManyItems> {
        check("filesystems", self.filesystems.len())?;
        check("interfaces", self.interfaces.len())
    }
}

/// One sample of utilisation figures.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    pub observed_at_ms: i64,
    /// Share of all CPUs busy since the previous sample, 0–100.
    pub cpu_utilisation_pct: f32,
    pub load_1: f64,
    pub load_5: f64,
    pub load_15: f64,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub swap_total_bytes: u64,
    #[serde(default)]
    pub filesystems: Vec<FilesystemUse>,
    #[serde(default)]
    pub interfaces: Vec<InterfaceCounters>,
    /// How often this agent sends its scheduled reports, as configured.
    #[serde(default)]
    pub cadence: Option<Cadence>,
}

/// One poll of a network device by an agent (SNMP), with its throughput
/// since the agent's previous poll of it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeviceReport {
    /// When the poll finished (Unix ms).
    pub observed_at_ms: i64,
    pub agent_version: String,
    /// The address polled, as configured (`host:port`): how the agent and
    /// its operator name the device, never what identifies it.
    pub target: String,
    pub device: crate::device::Device,
    /// Per interface, from the counters of this poll and the previous one;
    /// empty on the first poll, and for an interface whose counters went
    /// back (the device restarted, or a 32-bit counter wrapped twice).
    #[serde(default)]
    pub interface_rates: Vec<InterfaceRate>,
    /// How often the agent polls this device, as configured: the device's
    /// expected heartbeat interval.
    #[serde(default)]
    pub poll_interval_ms: Option<u64>,
}

/// A device report that cannot be taken as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceReportError {
    #[error("the target is empty or longer than 255 bytes")]
    Target,
    #[error("interface index {0} appears twice")]
    DuplicateInterface(u32),
    #[error("interface {0}'s rates are not finite, non-negative numbers")]
    BadRate(u32),
}

impl DeviceReport {
    /// Checks what the collector relies on: a target to name the device
    /// by, one row per interface, and rates that are numbers.
    pub fn validate(&self) -> Result<(), DeviceReportError> {
        if self.target.is_empty() || self.target.len() > 255 {
            return Err(DeviceReportError::Target);
        }
        let mut seen = std::collections::BTreeSet::new();
        for i in &self.device.interfaces {
            if !seen.insert(i.index) {
                return Err(DeviceReportError::DuplicateInterface(i.index));
            }
        }
        for r in &self.interface_rates {
            let numbers = [r.in_bps, r.out_bps, r.errors_per_s, r.discards_per_s];
            let fine = |x: f64| x.is_finite() && x >= 0.0;
            if !numbers.into_iter().all(fine) || !r.utilization_pct.is_none_or(fine) {
                return Err(DeviceReportError::BadRate(r.index));
            }
        }
        Ok(())
    }
}

/// An interface's traffic over the interval between two polls.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InterfaceRate {
    /// ifIndex.
    pub index: u32,
    pub interval_ms: u64,
    pub in_bps: f64,
    pub out_bps: f64,
    /// The busier direction's share of the interface speed, 0–100; `None`
    /// where the device gives no speed.
    #[serde(default)]
    pub utilization_pct: Option<f64>,
    /// Errors and discards per second, both directions.
    #[serde(default)]
    pub errors_per_s: f64,
    #[serde(default)]
    pub discards_per_s: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FilesystemUse {
    pub mount_point: String,
    pub used_bytes: u64,
    pub total_bytes: u64,
    /// Inodes in use and in all; `None` where the filesystem has no fixed
    /// number of them (btrfs) or they could not be read.
    #[serde(default)]
    pub inodes_used: Option<u64>,
    #[serde(default)]
    pub inodes_total: Option<u64>,
}

/// An interface's cumulative byte counters since boot, and its throughput
/// over the interval since the agent's previous sample (worked out where
/// both counter readings are, so the collector keeps no state per agent).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InterfaceCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Bits per second received and sent; `None` when there is no previous
    /// reading to measure from.
    #[serde(default)]
    pub rx_bps: Option<f64>,
    #[serde(default)]
    pub tx_bps: Option<f64>,
    /// Receive and transmit errors per second over the same interval.
    #[serde(default)]
    pub errors_per_s: Option<f64>,
}

/// The collector's JSON answer to an accepted envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub agent_id: AgentId,
    pub seq: u64,
    pub outcome: AckOutcome,
    /// The CI the report was attributed to, for inventories.
    #[serde(default)]
    pub ci_id: Option<CiId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckOutcome {
    /// Written durably for the first time.
    Stored,
    /// This exact report was stored before; nothing was written again.
    Duplicate,
    /// An inventory delta whose base is not the report the collector last
    /// applied for this agent (one went missing): it was recorded but not
    /// applied. Send a full inventory.
    NeedsFull,
}

/// The collector's JSON answer to anything it refused. `code` is stable and
/// meant for programs; `message` is for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    /// With `replay`: the highest sequence number the collector holds for
    /// this agent, so an agent whose counter went back (restored from a
    /// backup) resumes above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_has_a_limit_and_it_is_checked() {
        let mut inventory = Inventory {
            packages: Some(vec![Package::default(); 3]),
            ..Inventory::default()
        };
        assert!(inventory.check_limits().is_ok());
        inventory.gpus = Some(vec![Gpu::default(); 257]);
        let err = inventory.check_limits().unwrap_err();
        assert_eq!((err.section, err.count, err.max), ("gpus", 257, 256));
        assert!(err.to_string().contains("gpus"), "{err}");
        // Every section an inventory can carry has a limit.
        for section in Inventory::SECTIONS {
            if *section != "hardware" && *section != "dmi" && *section != "virtualization" {
                assert!(
                    MAX_ITEMS.iter().any(|(s, _)| s == section),
                    "no limit for {section}"
                );
            }
        }
        let metrics = Metrics {
            interfaces: vec![InterfaceCounters::default(); 16_385],
            ..Metrics::default()
        };
        assert_eq!(metrics.check_limits().unwrap_err().section, "interfaces");
    }
    use crate::codec;
    use crate::envelope::{seal, BodyKind, UnverifiedEnvelope};

    #[test]
    fn an_inventory_survives_the_wire() {
        let inventory = Inventory {
            observed_at_ms: 1,
            agent_version: "0.1.0".into(),
            host: Host {
                hostname: "db1".into(),
                arch: "x86_64".into(),
                ..Host::default()
            },
            packages: Some(vec![Package {
                name: "nginx".into(),
                version: "1.22.1-9".into(),
                arch: Some("amd64".into()),
                manager: "dpkg".into(),
                ..Default::default()
            }]),
            probe_errors: vec![ProbeError {
                probe: "dmi".into(),
                message: "no SMBIOS".into(),
            }],
            ..Inventory::default()
        };
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let body = codec::encode(&inventory).unwrap();
        let sealed = seal(&key, BodyKind::Inventory, 1, 1, &body);
        let env = UnverifiedEnvelope::parse(&sealed, 1 << 20)
            .unwrap()
            .verify()
            .unwrap();
        let back: Inventory = codec::decode(&env).unwrap();
        assert_eq!(back, inventory);
        // `None` (not read) and `Some(vec![])` (read, empty) stay apart.
        assert_eq!(back.dmi, None);
        assert!(back.packages.as_ref().is_some_and(|p| p.len() == 1));
    }

    #[test]
    fn a_body_of_the_wrong_kind_is_a_clear_error() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let body = codec::encode(&"just a string").unwrap();
        let sealed = seal(&key, BodyKind::Metrics, 1, 1, &body);
        let env = UnverifiedEnvelope::parse(&sealed, 1 << 20)
            .unwrap()
            .verify()
            .unwrap();
        let err = codec::decode::<Metrics>(&env).unwrap_err();
        assert!(err.to_string().contains("metrics"), "{err}");
    }

    fn base() -> Inventory {
        Inventory {
            observed_at_ms: 1,
            agent_version: "0.1.0".into(),
            kernel_modules: Some(vec!["ext4".into()]),
            users: Some(vec![]),
            units: None,
            probe_errors: vec![ProbeError {
                probe: "units".into(),
                message: "no systemd".into(),
            }],
            ..Inventory::default()
        }
    }

    #[test]
    fn a_delta_replaces_only_its_sections_and_their_errors() {
        let delta = InventoryDelta {
            packages_changed: None,
            base_seq: 3,
            sections: vec!["units".into(), "kernel_modules".into()],
            inventory: Inventory {
                observed_at_ms: 9,
                units: Some(vec![Unit {
                    name: "ssh.service".into(),
                    state: "enabled".into(),
                    active: None,
                }]),
                // Unlisted sections stay as they were; kernel_modules is
                // listed and now unreadable.
                kernel_modules: None,
                probe_errors: vec![ProbeError {
                    probe: "kernel_modules".into(),
                    message: "gone".into(),
                }],
                ..Inventory::default()
            },
        };
        delta.validate().unwrap();
        let merged = delta.apply_to(base());
        assert_eq!(merged.observed_at_ms, 9);
        assert_eq!(merged.users, Some(vec![]));
        assert_eq!(merged.kernel_modules, None);
        assert_eq!(merged.units.as_ref().map(Vec::len), Some(1));
        let errors: Vec<&str> = merged
            .probe_errors
            .iter()
            .map(|e| e.probe.as_str())
            .collect();
        assert_eq!(errors, ["kernel_modules"]);
    }

    #[test]
    fn a_delta_must_say_exactly_what_it_replaces() {
        let mut delta = InventoryDelta {
            packages_changed: None,
            base_seq: 1,
            sections: vec!["packages".into()],
            inventory: Inventory::default(),
        };
        delta.validate().unwrap();
        delta.sections.push("packages".into());
        assert_eq!(
            delta.validate(),
            Err(DeltaError::Duplicate("packages".into()))
        );
        delta.sections = vec!["kernel".into()];
        assert_eq!(
            delta.validate(),
            Err(DeltaError::UnknownSection("kernel".into()))
        );
        delta.sections = vec![];
        delta.inventory.users = Some(vec![]);
        assert_eq!(delta.validate(), Err(DeltaError::Unlisted("users")));
        delta.base_seq = 0;
        assert_eq!(delta.validate(), Err(DeltaError::NoBase));
    }

    #[test]
    fn every_section_is_known_by_name() {
        let mut full = Inventory::default();
        for name in Inventory::SECTIONS {
            assert!(!full.has_section(name), "{name}");
            assert!(full.section_bytes(name).is_some(), "{name}");
        }
        full.gpus = Some(vec![]);
        let mut empty = Inventory::default();
        assert!(empty.take_section(&mut full, "gpus"));
        assert_eq!(empty.gpus, Some(vec![]));
        assert!(!empty.take_section(&mut full, "host"));
    }

    #[test]
    fn package_changes_rebuild_the_new_list_exactly() {
        let p = |name: &str, version: &str, arch: &str| Package {
            name: name.into(),
            version: version.into(),
            arch: Some(arch.into()),
            manager: "dpkg".into(),
            ..Package::default()
        };
        let old = vec![
            p("adduser", "3.134", "all"),
            p("libc6", "2.36-9", "amd64"),
            p("libc6", "2.36-9", "i386"),
            p("nginx", "1.22.1-9", "amd64"),
        ];
        let mut new = vec![
            p("adduser", "3.137", "all"),
            p("curl", "7.88.1-10", "amd64"),
            p("libc6", "2.36-9", "amd64"),
            p("nginx", "1.22.1-9", "amd64"),
        ];
        new.sort();
        let changes = PackageChanges::between(&old, &new);
        assert_eq!(changes.upsert.len(), 2);
        assert_eq!(changes.remove.len(), 1);
        assert_eq!(changes.remove[0].arch.as_deref(), Some("i386"));
        let mut rebuilt = old.clone();
        changes.apply(&mut rebuilt);
        assert_eq!(rebuilt, new);
        assert_eq!(
            PackageChanges::between(&new, &new),
            PackageChanges::default()
        );

        let delta = InventoryDelta {
            base_seq: 1,
            sections: vec![],
            inventory: Inventory::default(),
            packages_changed: Some(changes),
        };
        delta.validate().unwrap();
        // Only on a base that has a package list.
        assert!(!delta.fits(&Inventory::default()));
        let base = Inventory {
            packages: Some(old),
            ..Inventory::default()
        };
        assert!(delta.fits(&base));
        assert_eq!(delta.clone().apply_to(base).packages, Some(new));
        let mut twice = delta;
        twice.sections.push("packages".into());
        assert_eq!(twice.validate(), Err(DeltaError::PackagesTwice));
    }
}
