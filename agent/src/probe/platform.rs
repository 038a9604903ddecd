//! The platform under the OS: CPU packages and the CPU flags a capacity
//! planner or security review asks about (from `/proc/cpuinfo`), and
//! whether this is bare metal, a virtual machine or a container.
//!
//! Virtualization is decided from what the host shows, the way
//! `systemd-detect-virt` does without systemd: a container from
//! `/run/.containerenv` (podman), `/.dockerenv` (docker), or `container=`
//! in PID 1's environment; a VM from the CPU's `hypervisor` flag, with the
//! hypervisor named by `/sys/hypervisor/type` or the SMBIOS vendor and
//! product where there are any.

use std::collections::BTreeSet;

use fathom_shared::wire::{Dmi, Virtualization};

use super::HostRoot;

/// CPU flags worth reporting: virtualization support, crypto and vector
/// extensions that software requirements name, and the hypervisor bit.
pub const FLAGS_OF_INTEREST: [&str; 12] = [
    "aes",
    "avx",
    "avx2",
    "avx512f",
    "hypervisor",
    "lm",
    "nx",
    "pdpe1gb",
    "sha_ni",
    "sse4_2",
    "svm",
    "vmx",
];

/// Sockets and flags of interest, from `/proc/cpuinfo` text.
pub fn parse_cpuinfo(text: &str) -> (Option<u32>, Vec<String>) {
    let mut sockets = BTreeSet::new();
    let mut flags = BTreeSet::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "physical id" => {
                sockets.insert(value.trim().to_owned());
            }
            "flags" if flags.is_empty() => {
                flags.extend(
                    value
                        .split_whitespace()
                        .filter(|f| FLAGS_OF_INTEREST.contains(f))
                        .map(str::to_owned),
                );
            }
            _ => {}
        }
    }
    let sockets = (!sockets.is_empty()).then_some(sockets.len() as u32);
    (sockets, flags.into_iter().collect())
}

pub fn virtualization(root: &HostRoot, dmi: Option<&Dmi>, flags: &[String]) -> Virtualization {
    let container = if root.path("/run/.containerenv").exists() {
        Some("podman".to_owned())
    } else if root.path("/.dockerenv").exists() {
        Some("docker".to_owned())
    } else {
        root.read("/proc/1/environ").ok().and_then(|env| {
            env.split(|b| *b == 0)
                .find_map(|kv| kv.strip_prefix(b"container="))
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .filter(|v| !v.is_empty())
        })
    };
    let vendor = dmi
        .map(|d| {
            format!(
                "{} {}",
                d.sys_vendor.as_deref().unwrap_or_default(),
                d.product_name.as_deref().unwrap_or_default()
            )
        })
        .unwrap_or_default()
        .to_ascii_lowercase();
    let by_dmi = [
        ("qemu", "qemu"),
        ("kvm", "kvm"),
        ("vmware", "vmware"),
        ("virtualbox", "virtualbox"),
        ("microsoft corporation virtual machine", "hyper-v"),
        ("xen", "xen"),
        ("amazon ec2", "amazon"),
        ("google compute engine", "google"),
        ("openstack", "openstack"),
        ("parallels", "parallels"),
    ]
    .iter()
    .find(|(needle, _)| vendor.contains(needle))
    .map(|(_, name)| (*name).to_owned());
    let hypervisor = root
        .read_trimmed("/sys/hypervisor/type")
        .or(by_dmi)
        .or_else(|| {
            flags
                .iter()
                .any(|f| f == "hypervisor")
                .then(|| "unknown".to_owned())
        });
    let kind = if container.is_some() {
        "container"
    } else if hypervisor.is_some() {
        "vm"
    } else {
        "bare_metal"
    };
    Virtualization {
        kind: kind.to_owned(),
        hypervisor,
        container,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nphysical id\t: 0\ncpu cores\t: 8\nflags\t\t: fpu vme sse4_2 aes avx avx2 vmx lm nx constant_tsc\n\nprocessor\t: 1\nphysical id\t: 1\nflags\t\t: fpu vme sse4_2 aes avx avx2 vmx lm nx constant_tsc\n";

    #[test]
    fn sockets_and_flags_of_interest() {
        let (sockets, flags) = parse_cpuinfo(CPUINFO);
        assert_eq!(sockets, Some(2));
        assert_eq!(flags, ["aes", "avx", "avx2", "lm", "nx", "sse4_2", "vmx"]);
        assert_eq!(parse_cpuinfo(""), (None, vec![]));
    }

    #[test]
    fn bare_metal_vm_and_container() {
        let root = tempfile::tempdir().unwrap();
        let host = HostRoot::new(root.path());
        assert_eq!(virtualization(&host, None, &[]).kind, "bare_metal");
        let qemu = Dmi {
            sys_vendor: Some("QEMU".into()),
            product_name: Some("Standard PC (Q35 + ICH9, 2009)".into()),
            ..Dmi::default()
        };
        let v = virtualization(&host, Some(&qemu), &["hypervisor".into()]);
        assert_eq!(
            (v.kind.as_str(), v.hypervisor.as_deref()),
            ("vm", Some("qemu"))
        );
        let v = virtualization(&host, None, &["hypervisor".into()]);
        assert_eq!(
            v.hypervisor.as_deref(),
            Some("unknown"),
            "no SMBIOS, as on Firecracker"
        );
        std::fs::create_dir_all(root.path().join("proc/1")).unwrap();
        std::fs::write(
            root.path().join("proc/1/environ"),
            b"PATH=/bin\0container=lxc\0",
        )
        .unwrap();
        let v = virtualization(&host, None, &[]);
        assert_eq!(
            (v.kind.as_str(), v.container.as_deref()),
            ("container", Some("lxc"))
        );
    }
}
