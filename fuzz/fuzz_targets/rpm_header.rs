//! One rpm package header blob, as stored in the rpm database.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fathom_agent::probe::packages::rpm::parse_header(data);
});
