//! Memory modules from the SMBIOS structure table the kernel exposes at
//! `/sys/firmware/dmi/tables/DMI`: no dmidecode process, no `/dev/mem`.
//!
//! The table is a run of structures, each a formatted area (type, length,
//! handle, then fields) followed by its strings, NUL-terminated, the set
//! ending in an empty string; a field names a string by its 1-based index.
//! Memory Device structures (type 17) describe one slot each. Which fields
//! exist depends on the structure's length (SMBIOS 2.1 to 3.x); every read
//! is bounds-checked, so a short or corrupt table gives an error naming the
//! offset, never a wrong module.

use fathom_shared::wire::MemoryModule;

use super::{HostRoot, ReadError};

pub const TABLE: &str = "/sys/firmware/dmi/tables/DMI";
/// Larger than any real table (they are a few KiB).
const MAX_TABLE: usize = 4 * 1024 * 1024;

const MEMORY_DEVICE: u8 = 17;
const END_OF_TABLE: u8 = 127;

#[derive(Debug, thiserror::Error)]
pub enum SmbiosError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path}, offset {offset}: {message}")]
    Malformed {
        path: String,
        offset: usize,
        message: String,
    },
}

pub fn probe(root: &HostRoot) -> Result<Vec<MemoryModule>, SmbiosError> {
    let table = root.read(TABLE)?;
    memory_modules(&table).map_err(|(offset, message)| SmbiosError::Malformed {
        path: root.path(TABLE).display().to_string(),
        offset,
        message,
    })
}

/// One SMBIOS structure: its formatted area and its strings.
#[derive(Debug)]
pub struct Structure<'a> {
    pub kind: u8,
    pub offset: usize,
    pub formatted: &'a [u8],
    strings: Vec<&'a [u8]>,
}

impl Structure<'_> {
    fn byte(&self, at: usize) -> Option<u8> {
        self.formatted.get(at).copied()
    }

    fn word(&self, at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(
            self.formatted.get(at..at + 2)?.try_into().ok()?,
        ))
    }

    fn dword(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.formatted.get(at..at + 4)?.try_into().ok()?,
        ))
    }

    /// The string a field at `at` refers to, trimmed; `None` for index 0,
    /// a missing field, or a placeholder vendors write for "nothing".
    fn string(&self, at: usize) -> Option<String> {
        let index = self.byte(at)? as usize;
        let raw = self.strings.get(index.checked_sub(1)?)?;
        let text = String::from_utf8_lossy(raw).trim().to_owned();
        (!is_placeholder(&text)).then_some(text)
    }
}

/// Strings firmware writes where it has no value.
fn is_placeholder(text: &str) -> bool {
    const PLACEHOLDERS: [&str; 10] = [
        "",
        "not specified",
        "unknown",
        "none",
        "no dimm",
        "not installed",
        "not available",
        "to be filled by o.e.m.",
        "default string",
        "empty",
    ];
    let lower = text.to_ascii_lowercase();
    PLACEHOLDERS.contains(&lower.as_str())
        || text.chars().all(|c| c == '0' || c == ' ')
        || text.chars().all(|c| c == 'F' || c == 'f')
}

/// Splits a table into its structures, up to the end-of-table marker.
pub fn structures(table: &[u8]) -> Result<Vec<Structure<'_>>, (usize, String)> {
    if table.len() > MAX_TABLE {
        return Err((
            0,
            format!("the table is {} bytes, more than {MAX_TABLE}", table.len()),
        ));
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= table.len() {
        let kind = table[at];
        let length = table[at + 1] as usize;
        if length < 4 {
            return Err((
                at,
                format!("structure of type {kind} claims a length of {length}"),
            ));
        }
        let Some(formatted) = table.get(at..at + length) else {
            return Err((
                at,
                format!("structure of type {kind} runs past the end of the table ({length} bytes)"),
            ));
        };
        // The string set: NUL-terminated strings ended by an empty one; a
        // structure without strings has just two NULs.
        let cut_off = || {
            (
                at,
                format!("the strings of the type {kind} structure are cut off"),
            )
        };
        let mut strings = Vec::new();
        let mut cursor = at + length;
        if table.get(cursor..cursor + 2) == Some(&[0, 0]) {
            cursor += 2;
        } else {
            loop {
                let rest = table.get(cursor..).ok_or_else(cut_off)?;
                let end = rest.iter().position(|b| *b == 0).ok_or_else(cut_off)?;
                cursor += end + 1;
                if end == 0 {
                    break;
                }
                strings.push(&rest[..end]);
            }
        }
        out.push(Structure {
            kind,
            offset: at,
            formatted,
            strings,
        });
        at = cursor;
        if kind == END_OF_TABLE {
            break;
        }
    }
    Ok(out)
}

/// Every Memory Device (type 17) in the table, empty slots included.
pub fn memory_modules(table: &[u8]) -> Result<Vec<MemoryModule>, (usize, String)> {
    structures(table)?
        .iter()
        .filter(|s| s.kind == MEMORY_DEVICE)
        .map(memory_module)
        .collect()
}

fn memory_module(s: &Structure<'_>) -> Result<MemoryModule, (usize, String)> {
    if s.formatted.len() < 0x15 {
        return Err((
            s.offset,
            format!(
                "memory device of {} bytes is shorter than SMBIOS 2.1's 21",
                s.formatted.len()
            ),
        ));
    }
    const MIB: u64 = 1 << 20;
    let size_bytes = match s.word(0x0C) {
        Some(0) | Some(0xFFFF) | None => 0,
        // Use the Extended Size (MiB, 31 bits).
        Some(0x7FFF) => u64::from(s.dword(0x1C).unwrap_or(0) & 0x7FFF_FFFF) * MIB,
        // Bit 15 set: the unit is KiB.
        Some(size) if size & 0x8000 != 0 => u64::from(size & 0x7FFF) * 1024,
        Some(size) => u64::from(size) * MIB,
    };
    let speed = |at: usize, extended: usize| match s.word(at) {
        Some(0) | None => None,
        Some(0xFFFF) => s.dword(extended).filter(|v| *v != 0),
        Some(v) => Some(u32::from(v)),
    };
    Ok(MemoryModule {
        locator: s.string(0x10).unwrap_or_default(),
        bank: s.string(0x11),
        size_bytes,
        kind: s.byte(0x12).and_then(memory_type).map(str::to_owned),
        form_factor: s.byte(0x0E).and_then(form_factor).map(str::to_owned),
        speed_mts: speed(0x15, 0x54),
        configured_speed_mts: speed(0x20, 0x58),
        manufacturer: s.string(0x17),
        serial: s.string(0x18),
        part_number: s.string(0x1A),
    })
}

/// SMBIOS 3.7, 7.18.2 (Memory Device — Type). "Other" and "Unknown" are
/// no answer.
fn memory_type(code: u8) -> Option<&'static str> {
    Some(match code {
        0x03 => "DRAM",
        0x04 => "EDRAM",
        0x05 => "VRAM",
        0x06 => "SRAM",
        0x07 => "RAM",
        0x08 => "ROM",
        0x09 => "Flash",
        0x0A => "EEPROM",
        0x0B => "FEPROM",
        0x0C => "EPROM",
        0x0D => "CDRAM",
        0x0E => "3DRAM",
        0x0F => "SDRAM",
        0x10 => "SGRAM",
        0x11 => "RDRAM",
        0x12 => "DDR",
        0x13 => "DDR2",
        0x14 => "DDR2 FB-DIMM",
        0x18 => "DDR3",
        0x19 => "FBD2",
        0x1A => "DDR4",
        0x1B => "LPDDR",
        0x1C => "LPDDR2",
        0x1D => "LPDDR3",
        0x1E => "LPDDR4",
        0x1F => "Logical non-volatile device",
        0x20 => "HBM",
        0x21 => "HBM2",
        0x22 => "DDR5",
        0x23 => "LPDDR5",
        0x24 => "HBM3",
        _ => return None,
    })
}

/// SMBIOS 3.7, 7.18.1 (Memory Device — Form factor).
fn form_factor(code: u8) -> Option<&'static str> {
    Some(match code {
        0x03 => "SIMM",
        0x04 => "SIP",
        0x05 => "Chip",
        0x06 => "DIP",
        0x07 => "ZIP",
        0x08 => "Proprietary Card",
        0x09 => "DIMM",
        0x0A => "TSOP",
        0x0B => "Row Of Chips",
        0x0C => "RIMM",
        0x0D => "SODIMM",
        0x0E => "SRIMM",
        0x0F => "FB-DIMM",
        0x10 => "Die",
        0x11 => "CAMM",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smbios");

    fn root(name: &str) -> HostRoot {
        HostRoot::new(format!("{FIXTURES}/{name}"))
    }

    /// Tables a QEMU 7.2 guest's kernel exposed (captured by booting a
    /// Debian kernel with `tests/fixtures/smbios/capture-init.sh` as init):
    /// an SMBIOS 3.0 table with two slots and the memory fields given on
    /// QEMU's command line, and a default SMBIOS 2.8 one.
    #[test]
    fn reads_memory_devices_from_real_tables() {
        let modules = probe(&root("qemu-pc-18g")).unwrap();
        assert_eq!(modules.len(), 2);
        let first = &modules[0];
        assert_eq!(first.locator, "DIMM_A 0");
        assert_eq!(first.bank.as_deref(), Some("BANK 0"));
        assert_eq!(first.size_bytes, 16 << 30);
        assert_eq!(first.kind.as_deref(), Some("RAM"));
        assert_eq!(first.form_factor.as_deref(), Some("DIMM"));
        assert_eq!(first.speed_mts, Some(3200));
        assert_eq!(first.configured_speed_mts, Some(3200));
        assert_eq!(first.manufacturer.as_deref(), Some("Samsung"));
        assert_eq!(first.serial.as_deref(), Some("03B2C1D4"));
        assert_eq!(first.part_number.as_deref(), Some("M393A2K43DB3-CWE"));
        assert_eq!(modules[1].size_bytes, 2 << 30);

        let modules = probe(&root("qemu-q35-4g")).unwrap();
        assert_eq!(modules.len(), 1);
        assert_eq!(modules[0].locator, "DIMM 0");
        assert_eq!(modules[0].size_bytes, 4 << 30);
        assert_eq!(modules[0].manufacturer.as_deref(), Some("QEMU"));
        // "Not Specified" is no value.
        assert_eq!(modules[0].serial, None);
        assert_eq!(modules[0].bank, None);
        assert_eq!(modules[0].speed_mts, None);
    }

    /// dmidecode reads the same tables (as a dump file: the entry point
    /// with its table address set to 32, then the table) and must agree.
    #[test]
    fn agrees_with_dmidecode() {
        for name in ["qemu-pc-18g", "qemu-q35-4g"] {
            let dir = format!("{FIXTURES}/{name}/sys/firmware/dmi/tables");
            let entry = std::fs::read(format!("{dir}/smbios_entry_point")).unwrap();
            let table = std::fs::read(format!("{dir}/DMI")).unwrap();
            let dump = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(dump.path(), dmidecode_dump(&entry, &table)).unwrap();
            let Ok(output) = std::process::Command::new("dmidecode")
                .arg("--from-dump")
                .arg(dump.path())
                .args(["-t", "17"])
                .output()
            else {
                eprintln!("dmidecode is not installed; nothing to compare against");
                return;
            };
            assert!(output.status.success(), "{output:?}");
            let text = String::from_utf8(output.stdout).unwrap();
            let theirs: Vec<Vec<(String, String)>> = text
                .split("Memory Device\n")
                .skip(1)
                .map(|device| {
                    device
                        .lines()
                        .filter_map(|l| l.strip_prefix('\t')?.split_once(": "))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                })
                .collect();
            let ours = memory_modules(&table).unwrap();
            assert_eq!(ours.len(), theirs.len(), "{name}");
            for (m, fields) in ours.iter().zip(&theirs) {
                let field = |k: &str| fields.iter().find(|(f, _)| f == k).unwrap().1.clone();
                let or_placeholder =
                    |v: &Option<String>| v.clone().unwrap_or("Not Specified".into());
                assert_eq!(m.locator, field("Locator"));
                assert_eq!(or_placeholder(&m.bank), field("Bank Locator"));
                assert_eq!(format!("{} GB", m.size_bytes >> 30), field("Size"));
                assert_eq!(m.kind.clone().unwrap_or("Unknown".into()), field("Type"));
                assert_eq!(
                    m.form_factor.clone().unwrap_or("Unknown".into()),
                    field("Form Factor")
                );
                let speed = |s: Option<u32>| s.map_or("Unknown".into(), |s| format!("{s} MT/s"));
                assert_eq!(speed(m.speed_mts), field("Speed"));
                assert_eq!(
                    speed(m.configured_speed_mts),
                    field("Configured Memory Speed")
                );
                assert_eq!(or_placeholder(&m.manufacturer), field("Manufacturer"));
                assert_eq!(or_placeholder(&m.serial), field("Serial Number"));
                assert_eq!(or_placeholder(&m.part_number), field("Part Number"));
            }
        }
    }

    /// dmidecode's `--dump-bin` layout: the entry point, its table address
    /// rewritten to 32 and checksums fixed, then the table at offset 32.
    fn dmidecode_dump(entry: &[u8], table: &[u8]) -> Vec<u8> {
        let mut ep = entry.to_vec();
        let fix = |bytes: &mut [u8], sum_at: usize| {
            bytes[sum_at] = 0;
            let sum = bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b));
            bytes[sum_at] = sum.wrapping_neg();
        };
        if ep.starts_with(b"_SM3_") {
            ep[0x10..0x18].copy_from_slice(&32u64.to_le_bytes());
            let len = ep[6] as usize;
            fix(&mut ep[..len], 5);
        } else {
            assert!(ep.starts_with(b"_SM_"));
            ep[0x18..0x1C].copy_from_slice(&32u32.to_le_bytes());
            fix(&mut ep[0x10..0x1F], 5);
            let len = ep[5] as usize;
            fix(&mut ep[..len], 4);
        }
        ep.resize(32, 0);
        ep.extend_from_slice(table);
        ep
    }

    #[test]
    fn a_damaged_table_is_an_error_naming_the_offset() {
        let table = std::fs::read(format!(
            "{FIXTURES}/qemu-pc-18g/sys/firmware/dmi/tables/DMI"
        ))
        .unwrap();
        let first_memory = structures(&table)
            .unwrap()
            .iter()
            .find(|s| s.kind == MEMORY_DEVICE)
            .unwrap()
            .offset;
        // Cut inside the memory device's strings.
        let (offset, message) = memory_modules(&table[..first_memory + 0x28 + 3]).unwrap_err();
        assert_eq!(offset, first_memory);
        assert!(message.contains("cut off"), "{message}");
        // A length that runs past the end.
        let mut bad = table.clone();
        bad[first_memory + 1] = 0xFF;
        let (offset, message) = memory_modules(&bad[..first_memory + 0x80]).unwrap_err();
        assert_eq!(offset, first_memory);
        assert!(message.contains("runs past the end"), "{message}");
        // A length too small for a structure.
        bad[first_memory + 1] = 2;
        assert!(memory_modules(&bad).unwrap_err().1.contains("length of 2"));
        // Every truncation of a real table fails cleanly or yields fewer
        // modules: never a panic, never an invented one.
        for cut in 0..table.len() {
            if let Ok(modules) = memory_modules(&table[..cut]) {
                assert!(modules.len() <= 2);
            }
        }
    }

    #[test]
    fn no_tables_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = probe(&HostRoot::new(dir.path())).unwrap_err().to_string();
        assert!(err.contains("tables/DMI does not exist"), "{err}");
    }
}
