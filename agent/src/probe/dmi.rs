//! SMBIOS identity from `/sys/class/dmi/id`. Virtual machines without SMBIOS
//! tables (such as Firecracker guests) have no such directory: that is an
//! error for this section only. Serial and UUID files are readable by root
//! only; as another user those fields are `None`.
//!
//! Values are reported as the firmware gives them, placeholders included
//! ("To Be Filled By O.E.M."); deciding which values identify a machine is
//! the collector's job.

use fathom_shared::wire::Dmi;

use super::{HostRoot, ReadError};

const DMI_DIR: &str = "/sys/class/dmi/id";

pub fn probe(root: &HostRoot) -> Result<Dmi, ReadError> {
    let dir = root.path(DMI_DIR);
    if !dir.is_dir() {
        return Err(ReadError::Missing { path: dir });
    }
    let field = |name: &str| root.read_trimmed(&format!("{DMI_DIR}/{name}"));
    Ok(Dmi {
        sys_vendor: field("sys_vendor"),
        product_name: field("product_name"),
        product_serial: field("product_serial"),
        product_uuid: field("product_uuid").map(|u| u.to_ascii_lowercase()),
        board_vendor: field("board_vendor"),
        board_name: field("board_name"),
        bios_vendor: field("bios_vendor"),
        bios_version: field("bios_version"),
        bios_date: field("bios_date"),
        chassis_type: field("chassis_type")
            .and_then(|t| t.parse().ok())
            .and_then(chassis_type)
            .map(str::to_owned),
        board_serial: field("board_serial"),
    })
}

/// SMBIOS 3.7, 7.4.1 (System Enclosure or Chassis Types), with dmidecode's
/// names. The kernel gives the number with the lock bit cleared.
fn chassis_type(code: u8) -> Option<&'static str> {
    const NAMES: [&str; 36] = [
        "Other",
        "Unknown",
        "Desktop",
        "Low Profile Desktop",
        "Pizza Box",
        "Mini Tower",
        "Tower",
        "Portable",
        "Laptop",
        "Notebook",
        "Hand Held",
        "Docking Station",
        "All In One",
        "Sub Notebook",
        "Space-saving",
        "Lunch Box",
        "Main Server Chassis",
        "Expansion Chassis",
        "Sub Chassis",
        "Bus Expansion Chassis",
        "Peripheral Chassis",
        "RAID Chassis",
        "Rack Mount Chassis",
        "Sealed-case PC",
        "Multi-system",
        "CompactPCI",
        "AdvancedTCA",
        "Blade",
        "Blade Enclosing",
        "Tablet",
        "Convertible",
        "Detachable",
        "IoT Gateway",
        "Embedded PC",
        "Mini PC",
        "Stick PC",
    ];
    NAMES.get(usize::from(code).checked_sub(1)?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_is_there_and_leaves_the_rest_empty() {
        let dir = tempfile::tempdir().unwrap();
        let id = dir.path().join("sys/class/dmi/id");
        std::fs::create_dir_all(&id).unwrap();
        std::fs::write(id.join("sys_vendor"), "Dell Inc.\n").unwrap();
        std::fs::write(id.join("chassis_type"), "23\n").unwrap();
        std::fs::write(
            id.join("product_uuid"),
            "4C4C4544-0042-3510-8051-B4C04F4E4B32\n",
        )
        .unwrap();
        let dmi = probe(&HostRoot::new(dir.path())).unwrap();
        assert_eq!(dmi.sys_vendor.as_deref(), Some("Dell Inc."));
        assert_eq!(
            dmi.product_uuid.as_deref(),
            Some("4c4c4544-0042-3510-8051-b4c04f4e4b32")
        );
        assert_eq!(dmi.product_serial, None);
        assert_eq!(dmi.chassis_type.as_deref(), Some("Rack Mount Chassis"));
        assert_eq!(chassis_type(1), Some("Other"));
        assert_eq!(chassis_type(36), Some("Stick PC"));
        assert_eq!(chassis_type(0), None);
        assert_eq!(chassis_type(37), None);
    }

    #[test]
    fn no_smbios_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = probe(&HostRoot::new(dir.path())).unwrap_err();
        assert!(err.to_string().contains("sys/class/dmi/id"), "{err}");
    }
}
