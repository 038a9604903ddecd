//! The msgpack codec for every body kind, compressed or not, as the
//! collector decodes it after the signature verified (the fuzzer signs what
//! it makes, so the decoder is what is tried).
#![no_main]

use ed25519_dalek::SigningKey;
use fathom_shared::codec;
use fathom_shared::envelope::{seal_raw, BodyKind, UnverifiedEnvelope, FLAG_DEFLATE};
use fathom_shared::wire::{DeviceReport, Enrollment, Inventory, InventoryDelta, Metrics};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kind = match selector % 5 {
        0 => BodyKind::Enrollment,
        1 => BodyKind::Inventory,
        2 => BodyKind::Metrics,
        3 => BodyKind::InventoryDelta,
        _ => BodyKind::DeviceReport,
    };
    let flags = if selector & 0x80 != 0 {
        FLAG_DEFLATE
    } else {
        0
    };
    let key = SigningKey::from_bytes(&[7; 32]);
    let envelope = seal_raw(&key, kind, flags, 1, 0, body);
    let verified = UnverifiedEnvelope::parse(&envelope, 1 << 20)
        .and_then(UnverifiedEnvelope::verify)
        .expect("an envelope it signed itself verifies");
    match kind {
        BodyKind::Enrollment => drop(codec::decode::<Enrollment>(&verified)),
        BodyKind::Inventory => {
            if let Ok(i) = codec::decode::<Inventory>(&verified) {
                let _ = i.check_limits();
            }
        }
        BodyKind::Metrics => drop(codec::decode::<Metrics>(&verified)),
        BodyKind::InventoryDelta => {
            if let Ok(d) = codec::decode::<InventoryDelta>(&verified) {
                let _ = d.check_limits();
            }
        }
        BodyKind::DeviceReport => drop(codec::decode::<DeviceReport>(&verified)),
    }
});
