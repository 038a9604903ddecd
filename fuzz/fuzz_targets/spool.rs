//! A spool file as the agent reads it back: the seal, then the body.
#![no_main]

use fathom_shared::codec;
use fathom_shared::wire::{Inventory, InventoryDelta, Metrics};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = fathom_agent::spool::unseal(data.to_vec()) {
        let _ = codec::decode_trusted::<Inventory>(&body, "inventory");
        let _ = codec::decode_trusted::<Metrics>(&body, "metrics");
        let _ = codec::decode_trusted::<InventoryDelta>(&body, "inventory_delta");
    }
});
