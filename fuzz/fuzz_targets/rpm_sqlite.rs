//! A whole rpm database file (SQLite), as the agent finds it on a host.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(data).unwrap();
    let _ = fathom_agent::probe::packages::rpm::read_database(file.path());
});
