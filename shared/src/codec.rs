//! The one msgpack codec. Every body is encoded and decoded here, with a cap
//! on nesting depth; size is capped earlier, by the envelope parser and the
//! HTTP layer. `clippy.toml` forbids calling `rmp_serde` decoders anywhere else.
//!
//! Decoding takes a [`VerifiedEnvelope`], so an unverified body cannot be
//! decoded by accident.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::envelope::VerifiedEnvelope;

/// Deepest nesting a body may have. Fathom's wire types nest at most four
/// levels; the slack allows additive fields from newer agents.
pub const MAX_DEPTH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("body is not valid msgpack for a {kind} report")]
    Decode {
        kind: &'static str,
        #[source]
        source: rmp_serde::decode::Error,
    },
    #[error("body could not be encoded")]
    Encode(#[source] rmp_serde::encode::Error),
}

/// Encodes a body as msgpack with named fields, so fields can be added
/// without breaking older collectors.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    rmp_serde::to_vec_named(value).map_err(CodecError::Encode)
}

/// Decodes the body of a verified envelope.
pub fn decode<T: DeserializeOwned>(envelope: &VerifiedEnvelope<'_>) -> Result<T, CodecError> {
    decode_bytes(envelope.body(), envelope.header().kind.as_str())
}

/// Decodes bytes this process wrote itself (for example its own spool). Never
/// use it for bytes that arrived from the network.
pub fn decode_trusted<T: DeserializeOwned>(
    bytes: &[u8],
    kind: &'static str,
) -> Result<T, CodecError> {
    decode_bytes(bytes, kind)
}

fn decode_bytes<T: DeserializeOwned>(bytes: &[u8], kind: &'static str) -> Result<T, CodecError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DEPTH);
    T::deserialize(&mut de).map_err(|source| CodecError::Decode { kind, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        // 100 nested one-element arrays, then nil.
        let mut bytes = vec![0x91u8; 100];
        bytes.push(0xc0);
        let err = decode_bytes::<serde::de::IgnoredAny>(&bytes, "test").unwrap_err();
        assert!(err.to_string().contains("not valid msgpack"), "{err}");
        // Shallow nesting is fine.
        let mut ok = vec![0x91u8; 4];
        ok.push(0xc0);
        decode_bytes::<serde::de::IgnoredAny>(&ok, "test").unwrap();
    }

    #[test]
    fn a_huge_claimed_length_does_not_allocate() {
        // array32 claiming 4 billion elements, with no elements behind it.
        let bytes = [0xdd, 0xff, 0xff, 0xff, 0xff];
        assert!(decode_bytes::<Vec<u64>>(&bytes, "test").is_err());
    }
}
