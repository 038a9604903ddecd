//! Display controllers (PCI class 03: VGA, XGA, 3D and other display
//! controllers) from `/sys/bus/pci/devices`, named from the host's own
//! `pci.ids` when it has one, as lspci names them.

use fathom_shared::wire::Gpu;

use super::{list_dir, HostRoot, ListError};

pub const PCI_DEVICES: &str = "/sys/bus/pci/devices";
/// Where distributions keep the PCI id database (Debian's pci.ids package,
/// Red Hat's hwdata).
const PCI_IDS: [&str; 3] = [
    "/usr/share/misc/pci.ids",
    "/usr/share/hwdata/pci.ids",
    "/usr/share/pci.ids",
];

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(transparent)]
    List(#[from] ListError),
}

pub fn probe(root: &HostRoot) -> Result<Vec<Gpu>, GpuError> {
    let dir = root.path(PCI_DEVICES);
    let entries = list_dir(&dir)?.ok_or_else(|| ListError::missing(&dir))?;
    let hex = |path: &std::path::Path| {
        let text = std::fs::read_to_string(path).ok()?;
        Some(text.trim().trim_start_matches("0x").to_ascii_lowercase())
    };
    let mut gpus = Vec::new();
    for entry in entries {
        let device = entry.path();
        if !hex(&device.join("class")).is_some_and(|c| c.starts_with("03")) {
            continue;
        }
        let (Some(vendor_id), Some(device_id)) =
            (hex(&device.join("vendor")), hex(&device.join("device")))
        else {
            continue;
        };
        let driver = std::fs::read_link(device.join("driver"))
            .ok()
            .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()));
        gpus.push(Gpu {
            pci_address: entry.file_name().to_string_lossy().into_owned(),
            vendor_id,
            device_id,
            vendor: None,
            model: None,
            driver,
        });
    }
    if !gpus.is_empty() {
        if let Some(ids) = PCI_IDS.iter().find_map(|p| root.read(p).ok()) {
            let ids = String::from_utf8_lossy(&ids);
            for gpu in &mut gpus {
                (gpu.vendor, gpu.model) = names(&ids, &gpu.vendor_id, &gpu.device_id);
            }
        }
    }
    gpus.sort_by(|a, b| a.pci_address.cmp(&b.pci_address));
    Ok(gpus)
}

/// The vendor and device names `pci.ids` gives: vendor lines start at
/// column 0 (`10de  NVIDIA Corporation`), their devices follow indented by
/// one tab (`\t2204  GA102 [GeForce RTX 3090]`).
fn names(ids: &str, vendor_id: &str, device_id: &str) -> (Option<String>, Option<String>) {
    let mut vendor = None;
    for line in ids.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if vendor.is_none() {
            if let Some(name) = line
                .strip_prefix(vendor_id)
                .and_then(|r| r.strip_prefix("  "))
            {
                vendor = Some(name.trim().to_owned());
            }
            continue;
        }
        if !line.starts_with('\t') {
            // The next vendor: the device is not listed.
            break;
        }
        if let Some(name) = line
            .strip_prefix('\t')
            .and_then(|l| l.strip_prefix(device_id))
            .and_then(|r| r.strip_prefix("  "))
        {
            return (vendor, Some(name.trim().to_owned()));
        }
    }
    (vendor, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gpu");

    #[test]
    fn finds_display_controllers_and_names_them() {
        let gpus = probe(&HostRoot::new(FIXTURE)).unwrap();
        type Row<'a> = (
            &'a str,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let got: Vec<Row> = gpus
            .iter()
            .map(|g| {
                (
                    g.pci_address.as_str(),
                    g.device_id.as_str(),
                    g.vendor.as_deref(),
                    g.model.as_deref(),
                    g.driver.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "0000:00:02.0",
                    "9a49",
                    Some("Intel Corporation"),
                    Some("TigerLake-LP GT2 [Iris Xe Graphics]"),
                    Some("i915")
                ),
                (
                    "0000:01:00.0",
                    "2204",
                    Some("NVIDIA Corporation"),
                    Some("GA102 [GeForce RTX 3090]"),
                    Some("nvidia")
                ),
                (
                    "0000:02:00.0",
                    "abcd",
                    Some("NVIDIA Corporation"),
                    None,
                    None
                ),
            ]
        );
    }

    #[test]
    fn pci_ids_lookup_stays_within_its_vendor() {
        let ids = "# comment\n10de  NVIDIA Corporation\n\t2204  GA102 [GeForce RTX 3090]\n\t\t10de 1454  RTX 3090 Founders\n10df  Emulex\n\t2204  Other\n";
        assert_eq!(
            names(ids, "10de", "2204"),
            (
                Some("NVIDIA Corporation".into()),
                Some("GA102 [GeForce RTX 3090]".into())
            )
        );
        assert_eq!(
            names(ids, "10de", "9999"),
            (Some("NVIDIA Corporation".into()), None)
        );
        assert_eq!(names(ids, "1234", "2204"), (None, None));
    }

    /// Every PCI device of this machine gets the names lspci gives it, from
    /// the same pci.ids.
    #[test]
    fn names_agree_with_lspci_on_this_machine() {
        let Ok(ids) = std::fs::read_to_string("/usr/share/misc/pci.ids") else {
            eprintln!("no pci.ids here; nothing to compare against");
            return;
        };
        let Ok(output) = std::process::Command::new("lspci")
            .args(["-mm", "-D"])
            .output()
        else {
            eprintln!("lspci is not installed; nothing to compare against");
            return;
        };
        let text = String::from_utf8(output.stdout).unwrap();
        let mut compared = 0;
        for line in text.lines() {
            // 0000:00:02.0 "Class" "Vendor" "Device" ...
            let fields: Vec<&str> = line.split('"').collect();
            let address = fields[0].trim();
            let dir = format!("/sys/bus/pci/devices/{address}");
            let read = |f: &str| {
                std::fs::read_to_string(format!("{dir}/{f}"))
                    .unwrap()
                    .trim()
                    .trim_start_matches("0x")
                    .to_owned()
            };
            let (vendor, device) = names(&ids, &read("vendor"), &read("device"));
            if let Some(vendor) = vendor {
                assert_eq!(vendor, fields[3], "{line}");
            }
            // lspci says "Device 0d57" where pci.ids has no name.
            assert_eq!(
                device.unwrap_or_else(|| format!("Device {}", read("device"))),
                fields[5],
                "{line}"
            );
            compared += 1;
        }
        assert!(compared > 0 || text.is_empty());
    }
}
