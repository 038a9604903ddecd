//! The envelope's framing and signature check, on bytes from the network.
#![no_main]

use fathom_shared::envelope::{ClaimedHeader, UnverifiedEnvelope, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(header) = data.get(..HEADER_LEN) {
        let _ = ClaimedHeader::parse(header.try_into().unwrap(), 1 << 20);
    }
    if let Ok(envelope) = UnverifiedEnvelope::parse(data, 1 << 20) {
        let _ = envelope.verify();
    }
});
