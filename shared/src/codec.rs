//! The one msgpack codec. Every body is encoded and decoded here, with a cap
//! on nesting depth; size is capped earlier, by the envelope parser and the
//! HTTP layer. `clippy.toml` forbids calling `rmp_serde` decoders anywhere else.
//!
//! Decoding takes a [`VerifiedEnvelope`], so an unverified body cannot be
//! decoded by accident.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::envelope::VerifiedEnvelope;

/// The most a compressed body may inflate to. Far above any real report (a
/// host with 10,000 packages is a few MiB), and checked while inflating, so
/// a compression bomb costs at most this much memory.
pub const MAX_INFLATED: u64 = 64 * 1024 * 1024;

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
    #[error("compressed body of a {kind} report does not inflate")]
    Inflate {
        kind: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("compressed body of a {kind} report inflates to more than {MAX_INFLATED} bytes")]
    InflatesTooFar { kind: &'static str },
}

/// Encodes a body as msgpack with named fields, so fields can be added
/// without breaking older collectors.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    rmp_serde::to_vec_named(value).map_err(CodecError::Encode)
}

/// Decodes the body of a verified envelope.
pub fn decode<T: DeserializeOwned>(envelope: &VerifiedEnvelope<'_>) -> Result<T, CodecError> {
    let kind = envelope.header().kind.as_str();
    if !envelope.header().deflated {
        return decode_bytes(envelope.body(), kind);
    }
    decode_bytes(&inflate(envelope.body(), kind)?, kind)
}

/// Inflates a verified body, refusing to go past [`MAX_INFLATED`].
fn inflate(body: &[u8], kind: &'static str) -> Result<Vec<u8>, CodecError> {
    use std::io::Read;
    let mut out = Vec::with_capacity(body.len().saturating_mul(4));
    flate2::read::DeflateDecoder::new(body)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|source| CodecError::Inflate { kind, source })?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(CodecError::InflatesTooFar { kind });
    }
    Ok(out)
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

    #[test]
    fn compressed_bodies_inflate_within_the_cap_only() {
        use crate::envelope::{seal, seal_raw, BodyKind, UnverifiedEnvelope, FLAG_DEFLATE};
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let value: Vec<String> = (0..500).map(|i| format!("package-{i}")).collect();
        let sealed = seal(&key, BodyKind::Inventory, 1, 1, &encode(&value).unwrap());
        let env = UnverifiedEnvelope::parse(&sealed, 1 << 20)
            .unwrap()
            .verify()
            .unwrap();
        assert!(env.header().deflated);
        assert_eq!(decode::<Vec<String>>(&env).unwrap(), value);

        // Not deflate at all.
        let garbage = seal_raw(&key, BodyKind::Inventory, FLAG_DEFLATE, 2, 1, &[0xff; 64]);
        let env = UnverifiedEnvelope::parse(&garbage, 1 << 20)
            .unwrap()
            .verify()
            .unwrap();
        let err = decode::<Vec<String>>(&env).unwrap_err();
        assert!(err.to_string().contains("does not inflate"), "{err}");

        // A bomb: 65 MiB of zeros deflate to about 64 KiB.
        let zeros = vec![0u8; (MAX_INFLATED + 1024 * 1024) as usize];
        let bomb = {
            use std::io::Write;
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&zeros).unwrap();
            e.finish().unwrap()
        };
        drop(zeros);
        let sealed = seal_raw(&key, BodyKind::Inventory, FLAG_DEFLATE, 3, 1, &bomb);
        let env = UnverifiedEnvelope::parse(&sealed, 1 << 20)
            .unwrap()
            .verify()
            .unwrap();
        let err = decode::<Vec<String>>(&env).unwrap_err();
        assert!(matches!(err, CodecError::InflatesTooFar { .. }), "{err}");
    }
}
