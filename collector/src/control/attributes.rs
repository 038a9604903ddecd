//! The discovered state of a CI: an inventory flattened into `section.name`
//! attributes, and the scopes the report actually observed.
//!
//! Names are stable and readable, because RFC specs and policy rules are
//! written against them:
//!
//! | attribute                              | value                            |
//! |----------------------------------------|----------------------------------|
//! | `os.hostname`, `os.arch`, `os.kernel`, `os.machine_id` | as reported      |
//! | `os.timezone`, `os.fqdn`               | as reported (boot time stays in the inventory) |
//! | `os.id`, `os.name`, `os.version_id`, `os.pretty_name`  | from os-release  |
//! | `hardware.cpu_model`, `hardware.cpu_cores`, `hardware.cpu_threads`, `hardware.cpu_sockets` | |
//! | `hardware.cpu_flags`                   | flags of interest, space-separated |
//! | `os.virtualization`                    | `bare_metal`, `vm (kvm)`, `container (docker)` |
//! | `hardware.memory_bytes`, `hardware.swap_bytes` | bytes                    |
//! | `hardware.system.{vendor,model,serial,uuid}` | SMBIOS system              |
//! | `hardware.board.{vendor,name}`, `hardware.bios.{vendor,version,date}` |   |
//! | `storage.<mount>.{device,fs_type,size_bytes}` |                         |
//! | `hardware.disk.<name>.{size_bytes,model,serial,wwn}` | from sysfs        |
//! | `network.<interface>.{mac,addresses}`  | addresses sorted, space-separated |
//! | `network.<interface>.{driver,kind,master,mtu,speed_mbps}` | from sysfs |
//! | `packages.<name>`                      | the installed version            |
//! | `packages.<name>:<arch>`               | a second architecture of a multi-arch package |
//! | `files.<path>.{sha256,mode,owner,target}` | a watched file (mtime is kept in the inventory, not compared) |
//! | `services.<unit>.{state,active}`       | `enabled`/`disabled`/`masked`; `active`/`inactive` |
//! | `ports.<tcp|udp>/<address>:<port>`     | the listening process's name (`?` when not visible) |
//! | `users.<name>.{uid,gid,home,shell}`    | local accounts (no secrets) |
//! | `groups.<name>.{gid,members}`          | members sorted, comma-separated |
//! | `modules.<name>`                       | `loaded`: a loaded kernel module |
//!
//! A **scope** is an attribute-name prefix that the report observed. A
//! field added to an existing section in a later agent version gets its own
//! scope (`os.timezone`), present when the report has the field, so the CMDB
//! records it as found when upgraded agents first send it. An
//! attribute missing from the report but inside an observed scope was
//! removed; one outside every observed scope was simply not looked at (its
//! probe failed), and must not be reported as drift.

use std::collections::{BTreeMap, BTreeSet};

use fathom_shared::wire::Inventory;
use serde::{Deserialize, Serialize};

/// Attributes by name.
pub type Attributes = BTreeMap<String, String>;

/// What one report says about a CI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovered {
    pub attributes: Attributes,
    /// Attribute-name prefixes this report observed.
    pub scopes: BTreeSet<String>,
}

impl Discovered {
    /// Whether the report looked at `attribute` (so its absence means "removed").
    pub fn observes(&self, attribute: &str) -> bool {
        scopes_cover(&self.scopes, attribute)
    }
}

pub fn scopes_cover(scopes: &BTreeSet<String>, attribute: &str) -> bool {
    // Scopes are few (a dozen); a linear scan beats anything cleverer.
    scopes.iter().any(|s| attribute.starts_with(s.as_str()))
}

/// The section of an attribute: the part before the first dot. Names
/// without a dot are the CI's own fields (`status`, `owner`…), section `ci`.
pub fn section_of(attribute: &str) -> &str {
    attribute.split_once('.').map_or("ci", |(s, _)| s)
}

/// Flattens an inventory. Sections the agent could not read (`None`) add
/// neither attributes nor scopes.
pub fn flatten(inv: &Inventory) -> Discovered {
    let mut attributes = Flat::default();
    host_attributes(&mut attributes, inv);
    hardware_attributes(&mut attributes, inv);
    storage_and_network_attributes(&mut attributes, inv);
    software_attributes(&mut attributes, inv);
    package_attributes(&mut attributes, inv);
    Discovered {
        attributes: attributes.0,
        scopes: scopes_of(inv),
    }
}

/// The attribute-name prefixes an inventory observed: a section present
/// in the report, even empty, means what it lacks was removed.
fn scopes_of(inv: &Inventory) -> BTreeSet<String> {
    let mut scopes = BTreeSet::new();
    let mut scope = |s: &str| {
        scopes.insert(s.to_owned());
    };
    scope("os.");
    // Fields added to a section after agents first shipped get a scope of
    // their own, present when the field is, so an upgraded agent's first
    // report records them as found instead of as drift on every host. (An
    // older agent's report simply lacks them.)
    if inv.host.timezone.is_some() {
        scope("os.timezone");
    }
    if inv.host.fqdn.is_some() {
        scope("os.fqdn");
    }
    if inv.hardware.is_some() {
        for s in [
            "hardware.cpu_",
            "hardware.memory_bytes",
            "hardware.swap_bytes",
        ] {
            scope(s);
        }
    }
    if let Some(dmi) = &inv.dmi {
        for s in ["hardware.system.", "hardware.board.", "hardware.bios."] {
            scope(s);
        }
        // Added after the first agents shipped (see above).
        if dmi.chassis_type.is_some() {
            scope("hardware.system.chassis");
        }
        if dmi.board_serial.is_some() {
            scope("hardware.board.serial");
        }
    }
    if inv.filesystems.is_some() {
        scope("storage.");
    }
    if inv.block_devices.is_some() {
        scope("hardware.disk.");
    }
    if let Some(ifs) = &inv.interfaces {
        scope("network.");
        // Added after the first agents shipped: each its own scope (see above).
        for i in ifs {
            if i.kind.is_some() {
                for f in ["driver", "kind", "master", "mtu", "speed_mbps"] {
                    scope(&format!("network.{}.{f}", i.name));
                }
            }
        }
    }
    if inv.packages.is_some() {
        scope("packages.");
    }
    if inv.files.is_some() {
        scope("files.");
    }
    if inv.listeners.is_some() {
        scope("ports.");
    }
    if inv.units.is_some() {
        scope("services.");
    }
    if inv.users.is_some() {
        scope("users.");
    }
    if inv.groups.is_some() {
        scope("groups.");
    }
    if inv.kernel_modules.is_some() {
        scope("modules.");
    }
    if inv.memory_modules.is_some() {
        scope("hardware.memory.");
    }
    if inv.gpus.is_some() {
        scope("hardware.gpu.");
    }
    if inv.containers.is_some() {
        scope("containers.");
    }
    scopes
}

/// Attributes being flattened: empty values are left out.
#[derive(Debug, Default)]
struct Flat(Attributes);

impl Flat {
    fn set(&mut self, key: String, value: Option<String>) {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.0.insert(key, v);
        }
    }
}

/// `os.*`: host identity, the OS, virtualization.
fn host_attributes(a: &mut Flat, inv: &Inventory) {
    let mut set = |k: String, v: Option<String>| a.set(k, v);
    let host = &inv.host;
    set("os.hostname".into(), Some(host.hostname.clone()));
    set("os.arch".into(), Some(host.arch.clone()));
    set("os.kernel".into(), host.kernel.clone());
    set("os.machine_id".into(), host.machine_id.clone());
    set("os.timezone".into(), host.timezone.clone());
    if let Some(v) = &inv.virtualization {
        let detail = v.container.as_ref().or(v.hypervisor.as_ref());
        set(
            "os.virtualization".into(),
            Some(match detail {
                Some(d) => format!("{} ({d})", v.kind),
                None => v.kind.clone(),
            }),
        );
    }
    set("os.fqdn".into(), host.fqdn.clone());
    if let Some(os) = &host.os {
        set("os.id".into(), Some(os.id.clone()));
        set("os.name".into(), Some(os.name.clone()));
        set("os.version_id".into(), os.version_id.clone());
        set("os.pretty_name".into(), os.pretty_name.clone());
    }
}

/// `hardware.*`: CPU and memory totals, DMI, disks, memory modules, GPUs.
fn hardware_attributes(a: &mut Flat, inv: &Inventory) {
    let mut set = |k: String, v: Option<String>| a.set(k, v);
    if let Some(hw) = &inv.hardware {
        set("hardware.cpu_model".into(), Some(hw.cpu_model.clone()));
        set(
            "hardware.cpu_cores".into(),
            hw.cpu_cores.map(|c| c.to_string()),
        );
        set(
            "hardware.cpu_threads".into(),
            Some(hw.cpu_threads.to_string()),
        );
        set(
            "hardware.memory_bytes".into(),
            Some(hw.memory_bytes.to_string()),
        );
        set(
            "hardware.swap_bytes".into(),
            Some(hw.swap_bytes.to_string()),
        );
    }
    if let Some(dmi) = &inv.dmi {
        set("hardware.system.vendor".into(), dmi.sys_vendor.clone());
        set("hardware.system.model".into(), dmi.product_name.clone());
        set("hardware.system.serial".into(), dmi.product_serial.clone());
        set("hardware.system.uuid".into(), dmi.product_uuid.clone());
        set("hardware.board.vendor".into(), dmi.board_vendor.clone());
        set("hardware.board.name".into(), dmi.board_name.clone());
        set("hardware.board.serial".into(), dmi.board_serial.clone());
        set("hardware.system.chassis".into(), dmi.chassis_type.clone());
        set("hardware.bios.vendor".into(), dmi.bios_vendor.clone());
        set("hardware.bios.version".into(), dmi.bios_version.clone());
        set("hardware.bios.date".into(), dmi.bios_date.clone());
    }
    for d in inv.block_devices.iter().flatten() {
        let p = format!("hardware.disk.{}", d.name);
        set(format!("{p}.size_bytes"), Some(d.size_bytes.to_string()));
        set(format!("{p}.model"), d.model.clone());
        set(format!("{p}.serial"), d.serial.clone());
        set(format!("{p}.wwn"), d.wwn.clone());
    }
    if let Some(modules) = &inv.memory_modules {
        // Slots by locator; firmware that repeats a locator across banks
        // gets `bank/locator` for those.
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for m in modules {
            *seen.entry(m.locator.as_str()).or_default() += 1;
        }
        for m in modules {
            let slot = match &m.bank {
                Some(bank) if seen[m.locator.as_str()] > 1 => format!("{bank}/{}", m.locator),
                _ => m.locator.clone(),
            };
            let p = format!("hardware.memory.{slot}");
            set(format!("{p}.size_bytes"), Some(m.size_bytes.to_string()));
            set(format!("{p}.kind"), m.kind.clone());
            set(format!("{p}.speed_mts"), m.speed_mts.map(|s| s.to_string()));
            set(format!("{p}.manufacturer"), m.manufacturer.clone());
            set(format!("{p}.serial"), m.serial.clone());
            set(format!("{p}.part_number"), m.part_number.clone());
        }
    }
    for g in inv.gpus.iter().flatten() {
        let p = format!("hardware.gpu.{}", g.pci_address);
        set(
            format!("{p}.model"),
            Some(
                g.model
                    .clone()
                    .unwrap_or_else(|| format!("{}:{}", g.vendor_id, g.device_id)),
            ),
        );
        set(format!("{p}.driver"), g.driver.clone());
    }
}

/// `storage.*` and `network.*`: filesystems and interfaces.
fn storage_and_network_attributes(a: &mut Flat, inv: &Inventory) {
    let mut set = |k: String, v: Option<String>| a.set(k, v);
    for fs in inv.filesystems.iter().flatten() {
        let p = format!("storage.{}", fs.mount_point);
        set(format!("{p}.device"), Some(fs.device.clone()));
        set(format!("{p}.fs_type"), Some(fs.fs_type.clone()));
        set(format!("{p}.size_bytes"), Some(fs.total_bytes.to_string()));
    }
    for iface in inv.interfaces.iter().flatten() {
        let p = format!("network.{}", iface.name);
        set(format!("{p}.mac"), iface.mac.clone());
        set(format!("{p}.driver"), iface.driver.clone());
        set(format!("{p}.kind"), iface.kind.clone());
        set(format!("{p}.master"), iface.master.clone());
        set(format!("{p}.mtu"), iface.mtu.map(|m| m.to_string()));
        set(
            format!("{p}.speed_mbps"),
            iface.speed_mbps.map(|m| m.to_string()),
        );
        let mut addresses = iface.addresses.clone();
        addresses.sort();
        set(format!("{p}.addresses"), Some(addresses.join(" ")));
    }
}

/// Watched files, services, listening ports, accounts, kernel modules,
/// containers.
fn software_attributes(a: &mut Flat, inv: &Inventory) {
    let mut set = |k: String, v: Option<String>| a.set(k, v);
    for f in inv.files.iter().flatten() {
        // A missing file adds nothing: its attributes disappear, which is
        // the removal. An unreadable one keeps what could be read.
        if f.kind == "missing" {
            continue;
        }
        let p = format!("files.{}", f.path);
        set(format!("{p}.sha256"), f.sha256.clone());
        set(format!("{p}.mode"), f.mode.clone());
        set(format!("{p}.owner"), f.owner.clone());
        set(format!("{p}.target"), f.target.clone());
        if f.kind != "file" {
            set(format!("{p}.kind"), Some(f.kind.clone()));
        }
    }
    for u in inv.units.iter().flatten() {
        let p = format!("services.{}", u.name);
        set(format!("{p}.state"), Some(u.state.clone()));
        set(
            format!("{p}.active"),
            u.active
                .map(|a| if a { "active" } else { "inactive" }.to_owned()),
        );
    }
    for l in inv.listeners.iter().flatten() {
        let address = if l.address.contains(':') {
            format!("[{}]", l.address)
        } else {
            l.address.clone()
        };
        set(
            format!("ports.{}/{address}:{}", l.protocol, l.port),
            Some(l.process.clone().unwrap_or_else(|| "?".into())),
        );
    }
    for u in inv.users.iter().flatten() {
        let p = format!("users.{}", u.name);
        set(format!("{p}.uid"), Some(u.uid.to_string()));
        set(format!("{p}.gid"), Some(u.gid.to_string()));
        set(format!("{p}.home"), Some(u.home.clone()));
        set(format!("{p}.shell"), Some(u.shell.clone()));
    }
    for g in inv.groups.iter().flatten() {
        let p = format!("groups.{}", g.name);
        set(format!("{p}.gid"), Some(g.gid.to_string()));
        set(format!("{p}.members"), Some(g.members.join(",")));
    }
    for m in inv.kernel_modules.iter().flatten() {
        set(format!("modules.{m}"), Some("loaded".into()));
    }
    for c in inv.containers.iter().flatten() {
        let p = format!("containers.{}/{}", c.runtime, c.name);
        set(format!("{p}.image"), Some(c.image.clone()));
        set(format!("{p}.state"), Some(c.state.clone()));
    }
}

/// `packages.*`: every package database's packages, named so that snaps,
/// flatpaks and foreign architectures never collide with the native ones.
fn package_attributes(a: &mut Flat, inv: &Inventory) {
    let mut set = |k: String, v: Option<String>| a.set(k, v);
    if let Some(packages) = &inv.packages {
        // Snaps and flatpaks sit beside the distribution's packages and may
        // share their names (a `firefox` deb and a `firefox` snap): they get
        // `snap:name` and `flatpak:id//branch`.
        let (bundles, system): (Vec<_>, Vec<_>) = packages
            .iter()
            .partition(|p| matches!(p.manager.as_str(), "snap" | "flatpak"));
        for p in bundles {
            set(
                format!("packages.{}:{}", p.manager, p.name),
                Some(p.version.clone()),
            );
        }
        // The architecture most packages have is the host's own; a package
        // installed for another one as well gets `name:arch`, so adding an
        // i386 libc6 adds one attribute and renames nothing.
        let any_arch = |a: &str| matches!(a, "all" | "noarch" | "any");
        let mut by_arch: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &system {
            if let Some(arch) = p.arch.as_deref().filter(|a| !any_arch(a)) {
                *by_arch.entry(arch).or_default() += 1;
            }
        }
        let native = by_arch.iter().max_by_key(|(_, n)| **n).map(|(a, _)| *a);
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &system {
            *names.entry(p.name.as_str()).or_default() += 1;
        }
        for p in system {
            let foreign = names[p.name.as_str()] > 1
                && p.arch
                    .as_deref()
                    .is_some_and(|a| Some(a) != native && !any_arch(a));
            let key = match (&p.arch, foreign) {
                (Some(arch), true) => format!("packages.{}:{arch}", p.name),
                _ => format!("packages.{}", p.name),
            };
            set(key, Some(p.version.clone()));
        }
    }
}

/// Flattens one poll of a network device (class `network_device`):
///
/// | attribute | value |
/// |---|---|
/// | `system.{descr,object_id,name,location,contact,vendor}` | SNMPv2-MIB system group (uptime stays in the report) |
/// | `chassis.<index>.{model,serial,hardware_rev,firmware_rev,software_rev,manufacturer,description}` | ENTITY-MIB, each chassis of a stack |
/// | `components.<index>.{class,name,model,serial,parent}` | field-replaceable parts: entities with a model or serial (modules, power supplies, fans, transceivers) |
/// | `interfaces.<name>.{descr,alias,type,mac,speed_bps,admin}` | IF-MIB, by ifName (`name#ifIndex` where names repeat); `admin` is `up`/`down` (operational status is availability, not configuration) |
/// | `addresses.<ip>` | `<interface>/<prefix length>` |
/// | `neighbors.<local port>` | `<remote system> <remote port>` from LLDP, else CDP; several sorted and comma-separated |
/// | `software.<name>`, `storage.<descr>.size_bytes`, `hardware.processors` | HOST-RESOURCES-MIB, where the device has it |
///
/// Every section is observed on every poll: a poll either answered or was
/// not reported.
pub fn flatten_device(device: &fathom_shared::device::Device) -> Discovered {
    let mut d = Discovered::default();
    for s in [
        "system.",
        "chassis.",
        "components.",
        "interfaces.",
        "addresses.",
        "neighbors.",
    ] {
        d.scopes.insert(s.to_owned());
    }
    if device.host_resources.is_some() {
        for s in ["software.", "storage.", "hardware.processors"] {
            d.scopes.insert(s.to_owned());
        }
    }
    let a = &mut d.attributes;
    let mut set = |k: String, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            a.insert(k, v);
        }
    };
    let sys = &device.system;
    set("system.descr".into(), sys.sys_descr.clone());
    set("system.object_id".into(), sys.sys_object_id.clone());
    set("system.name".into(), sys.sys_name.clone());
    set("system.location".into(), sys.sys_location.clone());
    set("system.contact".into(), sys.sys_contact.clone());
    set("system.vendor".into(), sys.vendor.clone());
    for c in &device.chassis {
        let p = format!("chassis.{}", c.index);
        set(format!("{p}.model"), c.model.clone());
        set(format!("{p}.serial"), c.serial.clone());
        set(format!("{p}.hardware_rev"), c.hardware_rev.clone());
        set(format!("{p}.firmware_rev"), c.firmware_rev.clone());
        set(format!("{p}.software_rev"), c.software_rev.clone());
        set(format!("{p}.manufacturer"), c.manufacturer.clone());
        set(format!("{p}.description"), c.description.clone());
    }
    for c in device
        .components
        .iter()
        .filter(|c| c.model.is_some() || c.serial.is_some())
    {
        let p = format!("components.{}", c.index);
        set(format!("{p}.class"), c.class.clone());
        set(format!("{p}.name"), c.name.clone());
        set(format!("{p}.model"), c.model.clone());
        set(format!("{p}.serial"), c.serial.clone());
        set(format!("{p}.parent"), c.parent_index.map(|i| i.to_string()));
    }
    let names = device_interface_names(device);
    for i in &device.interfaces {
        let p = format!("interfaces.{}", names[&i.index]);
        set(format!("{p}.descr"), i.descr.clone());
        set(format!("{p}.alias"), i.alias.clone());
        set(format!("{p}.type"), i.kind.map(|k| k.to_string()));
        set(format!("{p}.mac"), i.mac.clone());
        set(format!("{p}.speed_bps"), i.speed_bps.map(|s| s.to_string()));
        set(
            format!("{p}.admin"),
            i.admin_up
                .map(|up| if up { "up" } else { "down" }.to_owned()),
        );
    }
    for ip in &device.ip_addresses {
        let interface = ip
            .if_index
            .map(|i| names.get(&i).cloned().unwrap_or_else(|| i.to_string()))
            .unwrap_or_else(|| "?".into());
        let prefix = ip.prefix_len.map(|l| format!("/{l}")).unwrap_or_default();
        set(
            format!("addresses.{}", ip.address),
            Some(format!("{interface}{prefix}")),
        );
    }
    // A port may hear several neighbours (a hub, phones behind a port):
    // all of them, sorted. CDP only for ports LLDP says nothing about.
    let mut heard: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for n in &device.lldp_neighbors {
        let port = n
            .local_port
            .clone()
            .unwrap_or_else(|| n.local_port_num.to_string());
        let remote = n
            .remote_sys_name
            .as_deref()
            .or(n.remote_chassis_id.as_deref())
            .unwrap_or("?");
        let remote_port = n.remote_port_id.as_deref().unwrap_or("?");
        heard
            .entry(port)
            .or_default()
            .insert(format!("{remote} {remote_port}"));
    }
    let lldp_ports: BTreeSet<String> = heard.keys().cloned().collect();
    for n in &device.cdp_neighbors {
        let port = names
            .get(&n.local_if_index)
            .cloned()
            .unwrap_or_else(|| n.local_if_index.to_string());
        if lldp_ports.contains(&port) {
            continue;
        }
        let remote = n.remote_device_id.as_deref().unwrap_or("?");
        let remote_port = n.remote_port.as_deref().unwrap_or("?");
        heard
            .entry(port)
            .or_default()
            .insert(format!("{remote} {remote_port}"));
    }
    for (port, remotes) in heard {
        let remotes: Vec<String> = remotes.into_iter().collect();
        set(format!("neighbors.{port}"), Some(remotes.join(", ")));
    }
    if let Some(hr) = &device.host_resources {
        set(
            "hardware.processors".into(),
            Some(hr.processors.to_string()),
        );
        for s in &hr.storage {
            let name = s.descr.clone().unwrap_or_else(|| s.index.to_string());
            set(
                format!("storage.{name}.size_bytes"),
                s.size_bytes.map(|b| b.to_string()),
            );
        }
        for name in &hr.software {
            set(format!("software.{name}"), Some("installed".into()));
        }
    }
    d
}

/// What each interface is called in attribute names: its ifName (else its
/// description, else its index), with `#ifIndex` added where two share one.
pub fn device_interface_names(device: &fathom_shared::device::Device) -> BTreeMap<u32, String> {
    let base = |i: &fathom_shared::device::Interface| {
        i.name
            .clone()
            .or_else(|| i.descr.clone())
            .unwrap_or_else(|| i.index.to_string())
    };
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for i in &device.interfaces {
        *count.entry(base(i)).or_default() += 1;
    }
    device
        .interfaces
        .iter()
        .map(|i| {
            let name = base(i);
            let name = if count[&name] > 1 {
                format!("{name}#{}", i.index)
            } else {
                name
            };
            (i.index, name)
        })
        .collect()
}

/// One attribute whose authorized and discovered values differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub attribute: String,
    /// `None`: not in the authorized state (the discovery added it).
    pub authorized: Option<String>,
    /// `None`: observed absent (removed).
    pub discovered: Option<String>,
}

impl Difference {
    pub fn kind(&self) -> ChangeKind {
        match (&self.authorized, &self.discovered) {
            (None, _) => ChangeKind::Added,
            (_, None) => ChangeKind::Removed,
            _ => ChangeKind::Modified,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Modified,
    Removed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Removed => "removed",
        }
    }
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every attribute inside the observed scopes whose discovered value differs
/// from the authorized one, in name order. Attributes outside the scopes are
/// never differences: not observed is not absent.
pub fn diff(authorized: &Attributes, discovered: &Discovered) -> Vec<Difference> {
    let mut out = Vec::new();
    for (k, v) in authorized {
        if !discovered.observes(k) {
            continue;
        }
        match discovered.attributes.get(k) {
            Some(d) if d == v => {}
            d => out.push(Difference {
                attribute: k.clone(),
                authorized: Some(v.clone()),
                discovered: d.cloned(),
            }),
        }
    }
    for (k, v) in &discovered.attributes {
        if !authorized.contains_key(k) {
            out.push(Difference {
                attribute: k.clone(),
                authorized: None,
                discovered: Some(v.clone()),
            });
        }
    }
    out.sort_by(|a, b| a.attribute.cmp(&b.attribute));
    out
}

/// Applies differences to an authorized state.
pub fn apply(authorized: &mut Attributes, differences: &[Difference]) {
    for d in differences {
        match &d.discovered {
            Some(v) => authorized.insert(d.attribute.clone(), v.clone()),
            None => authorized.remove(&d.attribute),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fathom_shared::wire::{Dmi, Host, Package};
    use proptest::prelude::*;

    fn package(name: &str, version: &str, arch: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            arch: Some(arch.into()),
            manager: "dpkg".into(),
            ..Default::default()
        }
    }

    #[test]
    fn flattening_names_and_scopes() {
        let inv = Inventory {
            host: Host {
                hostname: "web-1".into(),
                arch: "x86_64".into(),
                ..Host::default()
            },
            dmi: Some(Dmi {
                product_serial: Some("CZ2D1234AB".into()),
                ..Dmi::default()
            }),
            packages: Some(vec![
                package("nginx", "1.22.1-9", "amd64"),
                package("libc6", "2.36-9", "amd64"),
                package("libc6", "2.36-9", "i386"),
                package("tzdata", "2024a-0", "all"),
                package("zlib1g", "1:1.2.13", "amd64"),
            ]),
            ..Inventory::default()
        };
        let d = flatten(&inv);
        let get = |k: &str| d.attributes.get(k).map(String::as_str);
        assert_eq!(get("os.hostname"), Some("web-1"));
        assert_eq!(get("hardware.system.serial"), Some("CZ2D1234AB"));
        assert_eq!(get("packages.nginx"), Some("1.22.1-9"));
        assert_eq!(get("packages.libc6"), Some("2.36-9"));
        assert_eq!(get("packages.libc6:i386"), Some("2.36-9"));
        assert_eq!(get("packages.tzdata"), Some("2024a-0"));
        assert!(d.observes("packages.anything"));
        assert!(d.observes("hardware.bios.version"));
        // The hardware probe (CPU, memory) did not run: not observed.
        assert!(!d.observes("hardware.memory_bytes"));
        assert!(!d.observes("network.eth0.mac"));
        assert_eq!(section_of("packages.libc6:i386"), "packages");
        assert_eq!(section_of("status"), "ci");
    }

    #[test]
    fn snaps_and_flatpaks_never_collide_with_distribution_packages() {
        let bundle = |manager: &str, name: &str, version: &str| Package {
            name: name.into(),
            version: version.into(),
            manager: manager.into(),
            ..Package::default()
        };
        let inv = Inventory {
            packages: Some(vec![
                package("firefox-esr", "115.9", "amd64"),
                package("firefox", "1:128.0", "amd64"),
                bundle("snap", "firefox", "128.0.3-1"),
                bundle("flatpak", "org.mozilla.firefox//stable", "128.0.3"),
            ]),
            ..Inventory::default()
        };
        let a = flatten(&inv).attributes;
        assert_eq!(
            a.get("packages.firefox").map(String::as_str),
            Some("1:128.0")
        );
        assert_eq!(
            a.get("packages.snap:firefox").map(String::as_str),
            Some("128.0.3-1")
        );
        assert_eq!(
            a.get("packages.flatpak:org.mozilla.firefox//stable")
                .map(String::as_str),
            Some("128.0.3")
        );
        assert_eq!(a.keys().filter(|k| k.starts_with("packages.")).count(), 4);
    }

    #[test]
    fn memory_slots_gpus_and_containers_flatten_by_stable_names() {
        use fathom_shared::wire::{Container, Gpu, MemoryModule};
        let slot = |bank: &str, locator: &str, size_bytes: u64| MemoryModule {
            locator: locator.into(),
            bank: Some(bank.into()),
            size_bytes,
            serial: (size_bytes > 0).then(|| "03B2C1D4".into()),
            ..MemoryModule::default()
        };
        let inv = Inventory {
            memory_modules: Some(vec![
                slot("BANK 0", "DIMM_A1", 16 << 30),
                slot("BANK 0", "DIMM 0", 0),
                slot("BANK 1", "DIMM 0", 8 << 30),
            ]),
            gpus: Some(vec![Gpu {
                pci_address: "0000:01:00.0".into(),
                vendor_id: "10de".into(),
                device_id: "abcd".into(),
                ..Gpu::default()
            }]),
            containers: Some(vec![Container {
                runtime: "docker".into(),
                name: "web".into(),
                image: "nginx:1.25".into(),
                state: "running".into(),
                ..Container::default()
            }]),
            ..Inventory::default()
        };
        let d = flatten(&inv);
        let get = |k: &str| d.attributes.get(k).map(String::as_str);
        assert_eq!(
            get("hardware.memory.DIMM_A1.size_bytes"),
            Some("17179869184")
        );
        assert_eq!(get("hardware.memory.DIMM_A1.serial"), Some("03B2C1D4"));
        // A repeated locator is told apart by its bank; an empty slot is 0.
        assert_eq!(get("hardware.memory.BANK 0/DIMM 0.size_bytes"), Some("0"));
        assert_eq!(
            get("hardware.memory.BANK 1/DIMM 0.size_bytes"),
            Some("8589934592")
        );
        // Without a name from pci.ids, the ids stand in.
        assert_eq!(get("hardware.gpu.0000:01:00.0.model"), Some("10de:abcd"));
        assert_eq!(get("containers.docker/web.image"), Some("nginx:1.25"));
        for scope in ["hardware.memory.", "hardware.gpu.", "containers."] {
            assert!(d.scopes.contains(scope), "{scope}");
        }
        // Not read: no scope, so no removals.
        let d = flatten(&Inventory::default());
        assert!(!d
            .scopes
            .iter()
            .any(|s| s.starts_with("hardware.memory") || s == "containers."));
    }

    #[test]
    fn a_failed_probe_is_not_a_removal() {
        let authorized: Attributes = [
            ("packages.nginx".to_string(), "1.22".to_string()),
            ("os.kernel".to_string(), "6.1".to_string()),
        ]
        .into();
        let mut discovered = Discovered {
            attributes: [("os.kernel".to_string(), "6.2".to_string())].into(),
            scopes: ["os.".to_string()].into(),
        };
        assert_eq!(
            diff(&authorized, &discovered),
            vec![Difference {
                attribute: "os.kernel".into(),
                authorized: Some("6.1".into()),
                discovered: Some("6.2".into()),
            }]
        );
        // Now the package probe worked and found no nginx: a removal.
        discovered.scopes.insert("packages.".into());
        let d = diff(&authorized, &discovered);
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].kind(), ChangeKind::Removed);
    }

    fn attrs() -> impl Strategy<Value = Attributes> {
        prop::collection::btree_map("(os|packages|hardware)\\.[a-c]{1,2}", "[0-9]{1,2}", 0..12)
    }

    proptest! {
        /// Applying the diff to the authorized state gives the discovered
        /// state inside the observed scopes and leaves the rest alone.
        #[test]
        fn applying_the_diff_reaches_the_discovered_state(
            authorized in attrs(),
            discovered in attrs(),
            observe_packages in any::<bool>(),
        ) {
            let mut scopes: BTreeSet<String> = ["os.".to_string(), "hardware.".to_string()].into();
            if observe_packages {
                scopes.insert("packages.".into());
            }
            let discovered: Attributes = discovered
                .into_iter()
                .filter(|(k, _)| scopes_cover(&scopes, k))
                .collect();
            let d = Discovered { attributes: discovered.clone(), scopes: scopes.clone() };
            let differences = diff(&authorized, &d);
            let mut after = authorized.clone();
            apply(&mut after, &differences);
            for (k, v) in &after {
                if scopes_cover(&scopes, k) {
                    prop_assert_eq!(discovered.get(k), Some(v));
                } else {
                    prop_assert_eq!(authorized.get(k), Some(v));
                }
            }
            for k in discovered.keys() {
                prop_assert!(after.contains_key(k));
            }
            // No difference is reported twice or for an unchanged value.
            let names: BTreeSet<_> = differences.iter().map(|d| &d.attribute).collect();
            prop_assert_eq!(names.len(), differences.len());
            for diff in &differences {
                prop_assert_ne!(&diff.authorized, &diff.discovered);
            }
            // And the diff of the result is empty.
            prop_assert!(super::diff(&after, &d).is_empty());
        }
    }
}
