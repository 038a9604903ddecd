//! Datagrams from network devices: SNMPv2c and SNMPv3 messages.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fathom_agent::snmp::client::decode_untrusted(data);
});
