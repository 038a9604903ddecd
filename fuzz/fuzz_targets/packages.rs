//! The package databases read as text: dpkg's status file, apk's installed
//! database and pacman's desc files. The first byte picks the parser.
#![no_main]

use fathom_agent::probe::packages::{apk, dpkg, pacman};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => drop(dpkg::parse_status(rest)),
        1 => drop(apk::parse_installed(&String::from_utf8_lossy(rest))),
        _ => drop(pacman::parse_desc(&String::from_utf8_lossy(rest))),
    }
});
