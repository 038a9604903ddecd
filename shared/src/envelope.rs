//! The signed envelope: the frame every agent→collector message travels in.
//!
//! ```text
//! offset size field
//!      0    4 magic       "FTHM"
//!      4    2 version     u16 big-endian, PROTOCOL_VERSION
//!      6    1 kind        BodyKind as u8
//!      7    1 flags       FLAG_DEFLATE (0x01) or 0; other bits refused
//!      8   16 agent_id    AgentId::from_public_key(public_key)
//!     24   32 public_key  ed25519 verifying key (the key id)
//!     56    8 seq         u64 big-endian, per-agent, strictly increasing
//!     64    8 sent_at_ms  i64 big-endian, Unix milliseconds at signing time
//!     72    4 body_len    u32 big-endian
//!     76    n body        msgpack (see `wire`)
//!   76+n   64 signature   ed25519 over SIGNING_DOMAIN || bytes[0..76+n]
//! ```
//!
//! The signature covers the whole header, so the protocol version, agent id,
//! key, sequence number and send time cannot be altered (a downgraded version
//! byte fails verification like any other tampering). The header is fixed
//! size and parsed by hand; the body is opaque bytes until [`UnverifiedEnvelope::verify`]
//! has succeeded, and only a [`VerifiedEnvelope`] hands it out.
//!
//! This module knows nothing of who may send what: checking that the key is
//! enrolled, not revoked, and that `seq` moves forward is the collector's job.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::ids::AgentId;

pub const MAGIC: [u8; 4] = *b"FTHM";
pub const PROTOCOL_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 76;
pub const SIGNATURE_LEN: usize = 64;
/// Domain separation: these bytes are signed but never sent, so a Fathom
/// signature can never be confused with a signature made for anything else.
pub const SIGNING_DOMAIN: &[u8] = b"fathom/envelope/v1\0";
/// Flags bit: the body is deflate-compressed (RFC 1951, raw). The
/// signature covers the compressed bytes; the body is inflated only after
/// it verified, and never beyond [`crate::codec::MAX_INFLATED`].
pub const FLAG_DEFLATE: u8 = 0x01;
/// Bodies larger than this are sent compressed.
pub const COMPRESS_ABOVE: usize = 1024;

/// What an envelope's body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyKind {
    Enrollment = 1,
    Inventory = 2,
    Metrics = 3,
    /// The changed sections of an inventory ([`crate::wire::InventoryDelta`]).
    InventoryDelta = 4,
    /// What an agent found polling a network device over SNMP
    /// ([`crate::wire::DeviceReport`]).
    DeviceReport = 5,
}

impl BodyKind {
    pub fn from_u8(b: u8) -> Option<BodyKind> {
        match b {
            1 => Some(BodyKind::Enrollment),
            2 => Some(BodyKind::Inventory),
            3 => Some(BodyKind::Metrics),
            4 => Some(BodyKind::InventoryDelta),
            5 => Some(BodyKind::DeviceReport),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BodyKind::Enrollment => "enrollment",
            BodyKind::Inventory => "inventory",
            BodyKind::Metrics => "metrics",
            BodyKind::InventoryDelta => "inventory_delta",
            BodyKind::DeviceReport => "device_report",
        }
    }
}

/// The fixed-size, signed header of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub kind: BodyKind,
    pub agent_id: AgentId,
    pub public_key: [u8; 32],
    pub seq: u64,
    pub sent_at_ms: i64,
    /// The body is deflate-compressed ([`FLAG_DEFLATE`]).
    pub deflated: bool,
}

/// Why an envelope was refused. Each variant is something a sender got wrong;
/// none is retryable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is {len} bytes, shorter than the {min}-byte minimum")]
    TooShort { len: usize, min: usize },
    #[error("envelope does not start with the FTHM magic bytes")]
    BadMagic,
    #[error("protocol version {found} is not supported (this build speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion { found: u16 },
    #[error("unknown body kind {found}")]
    UnknownKind { found: u8 },
    #[error("flags byte is {found:#04x}; only 0x01 (deflate) is defined")]
    BadFlags { found: u8 },
    #[error("body of {len} bytes exceeds the {max}-byte limit")]
    BodyTooLarge { len: usize, max: usize },
    #[error("envelope length {actual} does not match its header ({expected} bytes expected)")]
    LengthMismatch { expected: usize, actual: usize },
    #[error("agent id {claimed} is not derived from the envelope's public key")]
    AgentIdMismatch { claimed: AgentId },
    #[error("public key is not a valid ed25519 point")]
    BadPublicKey,
    #[error("signature does not verify")]
    BadSignature,
}

/// The fixed header alone, as it arrives before the body: enough to refuse
/// an unknown or revoked sender, or a body over the limit, before reading
/// (or buffering) the body. Nothing in it is trusted until the whole
/// envelope's signature verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimedHeader {
    pub header: Header,
    pub body_len: usize,
}

impl ClaimedHeader {
    /// Parses and checks the framing fields of the first [`HEADER_LEN`]
    /// bytes: magic, version, kind, flags, and the body length against
    /// `max_body`.
    pub fn parse(bytes: &[u8; HEADER_LEN], max_body: usize) -> Result<Self, EnvelopeError> {
        if bytes[0..4] != MAGIC {
            return Err(EnvelopeError::BadMagic);
        }
        let version = u16::from_be_bytes([bytes[4], bytes[5]]);
        if version != PROTOCOL_VERSION {
            return Err(EnvelopeError::UnsupportedVersion { found: version });
        }
        let kind =
            BodyKind::from_u8(bytes[6]).ok_or(EnvelopeError::UnknownKind { found: bytes[6] })?;
        if bytes[7] & !FLAG_DEFLATE != 0 {
            return Err(EnvelopeError::BadFlags { found: bytes[7] });
        }
        let body_len = u32::from_be_bytes(bytes[72..76].try_into().unwrap()) as usize;
        if body_len > max_body {
            return Err(EnvelopeError::BodyTooLarge {
                len: body_len,
                max: max_body,
            });
        }
        Ok(ClaimedHeader {
            header: Header {
                version,
                kind,
                agent_id: AgentId::from_bytes(bytes[8..24].try_into().unwrap()),
                public_key: bytes[24..56].try_into().unwrap(),
                seq: u64::from_be_bytes(bytes[56..64].try_into().unwrap()),
                sent_at_ms: i64::from_be_bytes(bytes[64..72].try_into().unwrap()),
                deflated: bytes[7] & FLAG_DEFLATE != 0,
            },
            body_len,
        })
    }

    /// The whole envelope's length: header, body and signature.
    pub fn envelope_len(&self) -> usize {
        HEADER_LEN + self.body_len + SIGNATURE_LEN
    }
}

/// An envelope whose framing is sound but whose signature is not yet checked.
#[derive(Debug, Clone, Copy)]
pub struct UnverifiedEnvelope<'a> {
    header: Header,
    signed: &'a [u8],
    body: &'a [u8],
    signature: [u8; SIGNATURE_LEN],
}

/// An envelope whose signature verified against its public key. The only
/// route to the body bytes.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedEnvelope<'a> {
    header: Header,
    body: &'a [u8],
}

impl<'a> UnverifiedEnvelope<'a> {
    /// Parses the framing. Checks lengths against `max_body` before looking at
    /// anything else, so an oversized claim costs nothing.
    pub fn parse(bytes: &'a [u8], max_body: usize) -> Result<Self, EnvelopeError> {
        let min = HEADER_LEN + SIGNATURE_LEN;
        if bytes.len() < min {
            return Err(EnvelopeError::TooShort {
                len: bytes.len(),
                min,
            });
        }
        let header = ClaimedHeader::parse(bytes[..HEADER_LEN].try_into().unwrap(), max_body)?;
        let expected = header.envelope_len();
        if bytes.len() != expected {
            return Err(EnvelopeError::LengthMismatch {
                expected,
                actual: bytes.len(),
            });
        }
        let signed_end = HEADER_LEN + header.body_len;
        Ok(UnverifiedEnvelope {
            header: header.header,
            signed: &bytes[..signed_end],
            body: &bytes[HEADER_LEN..signed_end],
            signature: bytes[signed_end..].try_into().unwrap(),
        })
    }

    /// The header as claimed. Use it to find the sender's enrolled key; trust
    /// none of it until [`Self::verify`] has succeeded.
    pub fn claimed_header(&self) -> &Header {
        &self.header
    }

    /// Verifies the signature with `verify_strict` (no malleable signatures,
    /// no small-order keys) against the public key in the header, and checks
    /// that the agent id is derived from that key.
    pub fn verify(self) -> Result<VerifiedEnvelope<'a>, EnvelopeError> {
        if AgentId::from_public_key(&self.header.public_key) != self.header.agent_id {
            return Err(EnvelopeError::AgentIdMismatch {
                claimed: self.header.agent_id,
            });
        }
        let key = VerifyingKey::from_bytes(&self.header.public_key)
            .map_err(|_| EnvelopeError::BadPublicKey)?;
        let signature = Signature::from_bytes(&self.signature);
        let message = [SIGNING_DOMAIN, self.signed].concat();
        key.verify_strict(&message, &signature)
            .map_err(|_| EnvelopeError::BadSignature)?;
        Ok(VerifiedEnvelope {
            header: self.header,
            body: self.body,
        })
    }
}

impl<'a> VerifiedEnvelope<'a> {
    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// Builds and signs an envelope, compressing a body larger than
/// [`COMPRESS_ABOVE`] when that makes it smaller. The agent id and public key
/// are taken from the signing key, so a sender cannot produce a
/// self-inconsistent header.
pub fn seal(key: &SigningKey, kind: BodyKind, seq: u64, sent_at_ms: i64, body: &[u8]) -> Vec<u8> {
    let deflated = (body.len() > COMPRESS_ABOVE)
        .then(|| deflate(body))
        .filter(|d| d.len() < body.len());
    match &deflated {
        Some(d) => seal_raw(key, kind, FLAG_DEFLATE, seq, sent_at_ms, d),
        None => seal_raw(key, kind, 0, seq, sent_at_ms, body),
    }
}

fn deflate(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::default(),
    );
    encoder.write_all(body).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// Builds and signs an envelope with `flags` and `body` as given.
pub fn seal_raw(
    key: &SigningKey,
    kind: BodyKind,
    flags: u8,
    seq: u64,
    sent_at_ms: i64,
    body: &[u8],
) -> Vec<u8> {
    let public_key = key.verifying_key().to_bytes();
    let agent_id = AgentId::from_public_key(&public_key);
    let body_len = u32::try_from(body.len()).expect("body length fits in u32");
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + SIGNATURE_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    out.push(kind as u8);
    out.push(flags);
    out.extend_from_slice(agent_id.as_bytes());
    out.extend_from_slice(&public_key);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&sent_at_ms.to_be_bytes());
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(body);
    let message = [SIGNING_DOMAIN, &out].concat();
    let signature = key.sign(&message);
    out.extend_from_slice(&signature.to_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    #[test]
    fn a_sealed_envelope_verifies_and_round_trips() {
        let sealed = seal(
            &key(1),
            BodyKind::Inventory,
            42,
            1_700_000_000_000,
            b"hello",
        );
        let verified = UnverifiedEnvelope::parse(&sealed, 1024)
            .unwrap()
            .verify()
            .unwrap();
        let h = verified.header();
        assert_eq!(h.kind, BodyKind::Inventory);
        assert_eq!(h.seq, 42);
        assert_eq!(h.sent_at_ms, 1_700_000_000_000);
        assert_eq!(
            h.agent_id,
            AgentId::from_public_key(&key(1).verifying_key().to_bytes())
        );
        assert_eq!(verified.body(), b"hello");
    }

    #[test]
    fn flipping_any_signed_byte_breaks_the_envelope() {
        let sealed = seal(&key(1), BodyKind::Metrics, 7, 5, b"body bytes");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let result = UnverifiedEnvelope::parse(&bad, 1024).and_then(|e| e.verify());
            assert!(result.is_err(), "flipping byte {i} went unnoticed");
        }
    }

    #[test]
    fn a_downgraded_version_is_refused() {
        let mut sealed = seal(&key(1), BodyKind::Metrics, 7, 5, b"x");
        sealed[5] = 0;
        assert_eq!(
            UnverifiedEnvelope::parse(&sealed, 1024).unwrap_err(),
            EnvelopeError::UnsupportedVersion { found: 0 }
        );
    }

    #[test]
    fn a_key_swap_is_caught_even_with_a_valid_signature() {
        // Signed by key 2 but claiming key 1's agent id.
        let mut sealed = seal(&key(2), BodyKind::Metrics, 1, 5, b"x");
        let other = AgentId::from_public_key(&key(1).verifying_key().to_bytes());
        sealed[8..24].copy_from_slice(other.as_bytes());
        let err = UnverifiedEnvelope::parse(&sealed, 1024)
            .unwrap()
            .verify()
            .unwrap_err();
        assert!(matches!(err, EnvelopeError::AgentIdMismatch { .. }));
    }

    #[test]
    fn framing_errors_are_specific() {
        let sealed = seal(&key(1), BodyKind::Metrics, 1, 5, &[0u8; 100]);
        assert!(matches!(
            UnverifiedEnvelope::parse(&sealed, 99),
            Err(EnvelopeError::BodyTooLarge { len: 100, max: 99 })
        ));
        assert!(matches!(
            UnverifiedEnvelope::parse(&sealed[..sealed.len() - 1], 1024),
            Err(EnvelopeError::LengthMismatch { .. })
        ));
        assert!(matches!(
            UnverifiedEnvelope::parse(b"short", 1024),
            Err(EnvelopeError::TooShort { .. })
        ));
        let mut bad = sealed.clone();
        bad[0] = b'X';
        assert_eq!(
            UnverifiedEnvelope::parse(&bad, 1024).unwrap_err(),
            EnvelopeError::BadMagic
        );
        let mut bad = sealed;
        bad[6] = 99;
        assert_eq!(
            UnverifiedEnvelope::parse(&bad, 1024).unwrap_err(),
            EnvelopeError::UnknownKind { found: 99 }
        );
    }

    #[test]
    fn large_bodies_travel_deflated_and_unknown_flags_are_refused() {
        let body = b"the same line again\n".repeat(200);
        let sealed = seal(&key(1), BodyKind::Inventory, 3, 5, &body);
        assert_eq!(sealed[7], FLAG_DEFLATE);
        assert!(sealed.len() < body.len() / 4);
        let env = UnverifiedEnvelope::parse(&sealed, 1 << 20).unwrap();
        assert!(env.claimed_header().deflated);
        // Small bodies, and bodies that do not shrink, go as they are.
        let small = seal(&key(1), BodyKind::Metrics, 4, 5, b"small");
        assert_eq!(small[7], 0);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(seal(&key(1), BodyKind::Metrics, 5, 5, &noise)[7], 0);
        // The flag is signed like the rest of the header.
        let mut flipped = sealed.clone();
        flipped[7] = 0;
        let err = UnverifiedEnvelope::parse(&flipped, 1 << 20)
            .unwrap()
            .verify()
            .unwrap_err();
        assert_eq!(err, EnvelopeError::BadSignature);
        let mut unknown = sealed;
        unknown[7] = 0x03;
        assert_eq!(
            UnverifiedEnvelope::parse(&unknown, 1 << 20).unwrap_err(),
            EnvelopeError::BadFlags { found: 0x03 }
        );
    }
}
