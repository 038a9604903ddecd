//! The SMBIOS table (/sys/firmware/dmi/tables/DMI).
#![no_main]

use fathom_agent::probe::smbios;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = smbios::structures(data);
    let _ = smbios::memory_modules(data);
});
