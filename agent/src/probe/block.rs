//! Block devices from sysfs (`/sys/block/*`): size, rotational, removable,
//! model, vendor, serial and WWN, as the kernel exposes them. Loop, RAM and
//! zram devices and empty devices are left out: they are not disks.

use fathom_shared::wire::BlockDevice;

use super::{HostRoot, ReadError};

const SKIP: [&str; 4] = ["loop", "ram", "zram", "nbd"];

pub fn probe(root: &HostRoot) -> Result<Vec<BlockDevice>, ReadError> {
    let dir = root.path("/sys/block");
    let entries = std::fs::read_dir(&dir).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ReadError::Missing { path: dir.clone() }
        } else {
            ReadError::Io {
                path: dir.clone(),
                source,
            }
        }
    })?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !SKIP.iter().any(|s| n.starts_with(s)))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let field = |f: &str| root.read_trimmed(&format!("/sys/block/{name}/{f}"));
        let sectors: u64 = field("size").and_then(|s| s.parse().ok()).unwrap_or(0);
        if sectors == 0 {
            continue;
        }
        out.push(BlockDevice {
            // Device-mapper volumes are better known by their dm name.
            name: field("dm/name").unwrap_or_else(|| name.clone()),
            kernel_name: name.clone(),
            // sysfs counts 512-byte sectors whatever the device's own size.
            size_bytes: sectors * 512,
            rotational: field("queue/rotational").map(|r| r == "1"),
            removable: field("removable").is_some_and(|r| r == "1"),
            model: field("device/model"),
            vendor: field("device/vendor"),
            serial: field("serial").or_else(|| field("device/serial")),
            wwn: field("wwid").or_else(|| field("device/wwid")),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_with_what_sysfs_says_and_no_pseudo_devices() {
        let root = tempfile::tempdir().unwrap();
        let put = |path: &str, value: &str| {
            let p = root.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, format!("{value}\n")).unwrap();
        };
        put("sys/block/sda/size", "1953525168");
        put("sys/block/sda/queue/rotational", "1");
        put("sys/block/sda/removable", "0");
        put("sys/block/sda/device/model", "ST1000DM010-2EP1");
        put("sys/block/sda/device/vendor", "ATA     ");
        put("sys/block/sda/device/serial", "Z9A1B2C3");
        put("sys/block/sda/device/wwid", "naa.5000c500b1234567");
        put("sys/block/nvme0n1/size", "1000215216");
        put("sys/block/nvme0n1/queue/rotational", "0");
        put("sys/block/nvme0n1/wwid", "eui.0025385b71b12345");
        put("sys/block/loop0/size", "131072");
        put("sys/block/sr0/size", "0");
        put("sys/block/dm-0/size", "209715200");
        put("sys/block/dm-0/dm/name", "vg0-root");
        let disks = probe(&HostRoot::new(root.path())).unwrap();
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["vg0-root", "nvme0n1", "sda"]);
        let sda = &disks[2];
        assert_eq!(sda.size_bytes, 1_000_204_886_016);
        assert_eq!(sda.rotational, Some(true));
        assert_eq!(sda.model.as_deref(), Some("ST1000DM010-2EP1"));
        assert_eq!(sda.vendor.as_deref(), Some("ATA"));
        assert_eq!(sda.serial.as_deref(), Some("Z9A1B2C3"));
        assert_eq!(sda.wwn.as_deref(), Some("naa.5000c500b1234567"));
        assert_eq!(disks[1].rotational, Some(false));
        assert_eq!(disks[0].kernel_name, "dm-0");
        assert!(matches!(
            probe(&HostRoot::new("/nonexistent")),
            Err(ReadError::Missing { .. })
        ));
    }
}
