//! Every parser of host data, fed arbitrary bytes: an error or a result,
//! never a panic, a hang, or an allocation the input did not pay for.
//! Mutations of real fixtures reach deeper than random bytes alone.

use proptest::prelude::*;

use super::packages::{apk, dpkg, pacman, rpm, snap};
use super::{net, smbios};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).unwrap()
}

/// A real file with some bytes overwritten and possibly cut short.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (
        proptest::collection::vec((0..len, any::<u8>()), 1..16),
        0..=len,
    )
        .prop_map(move |(edits, cut)| {
            let mut bytes = base.clone();
            for (at, b) in edits {
                bytes[at] = b;
            }
            bytes.truncate(cut.max(1));
            bytes
        })
}

fn rpm_header() -> Vec<u8> {
    let db = rusqlite::Connection::open_with_flags(
        format!("{FIXTURES}/rpm/var/lib/rpm/rpmdb.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row("SELECT blob FROM Packages LIMIT 1", [], |r| r.get(0))
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = dpkg::parse_status(&bytes);
        let _ = rpm::parse_header(&bytes);
        let _ = smbios::memory_modules(&bytes);
        let _ = apk::parse_installed(&text);
        let _ = pacman::parse_desc(&text);
        let _ = snap::version_of(&text);
        let _ = net::parse_table(&text, "tcp", true, (32768, 60999));
    }

    #[test]
    fn damaged_rpm_headers_never_panic(bytes in mutated(rpm_header())) {
        let _ = rpm::parse_header(&bytes);
    }

    #[test]
    fn damaged_smbios_tables_never_panic_or_invent_slots(
        bytes in mutated(fixture("smbios/qemu-pc-18g/sys/firmware/dmi/tables/DMI"))
    ) {
        if let Ok(modules) = smbios::memory_modules(&bytes) {
            // The table has two memory devices; a damaged copy may show a
            // different number only if a structure header was hit.
            prop_assert!(modules.len() <= 16);
        }
    }

    #[test]
    fn damaged_dpkg_databases_never_panic(bytes in mutated(fixture("dpkg/status"))) {
        let _ = dpkg::parse_status(&bytes);
    }
}
