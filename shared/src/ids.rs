//! Typed identifiers. Ids are values, never bare strings, so an agent id cannot
//! be passed where a CI id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Domain tag for deriving an agent id from a public key.
const AGENT_ID_DOMAIN: &[u8] = b"fathom/agent-id/v1\0";

/// Identifies one agent installation. It is derived from the agent's ed25519
/// public key, never from anything the agent claims about itself (such as a
/// hostname), so an agent cannot pose as another without its private key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId([u8; 16]);

impl AgentId {
    pub const LEN: usize = 16;

    /// The first 16 bytes of SHA-256 over a domain tag and the public key.
    pub fn from_public_key(public_key: &[u8; 32]) -> AgentId {
        let digest = Sha256::new()
            .chain_update(AGENT_ID_DOMAIN)
            .chain_update(public_key)
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        AgentId(id)
    }

    pub fn from_bytes(bytes: [u8; 16]) -> AgentId {
        AgentId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentId({self})")
    }
}

/// The text was not a valid id; says which kind of id and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {text:?}: {reason}")]
pub struct ParseIdError {
    pub kind: &'static str,
    pub text: String,
    pub reason: &'static str,
}

impl FromStr for AgentId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseIdError {
            kind: "agent id",
            text: s.to_owned(),
            reason,
        };
        if s.len() != 32 {
            return Err(err("expected 32 hexadecimal digits"));
        }
        let mut id = [0u8; 16];
        hex::decode_to_slice(s, &mut id).map_err(|_| err("expected 32 hexadecimal digits"))?;
        Ok(AgentId(id))
    }
}

impl Serialize for AgentId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AgentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Identifies one configuration item in the CMDB. Stable for the life of the
/// CI: it survives agent reinstalls, renames and re-identification.
///
/// Numbered from 1 in creation order and rendered as `ci-42`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CiId(u64);

impl CiId {
    pub fn from_u64(n: u64) -> CiId {
        CiId(n)
    }

    pub fn as_u64(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for CiId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ci-{}", self.0)
    }
}

impl fmt::Debug for CiId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CiId({self})")
    }
}

impl FromStr for CiId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseIdError {
            kind: "CI id",
            text: s.to_owned(),
            reason,
        };
        const EXPECTED: &str = "expected `ci-` followed by a number, like ci-42";
        // Case does not matter on input (`CI-7` is ci-7); ci-7 is printed.
        let digits = match s.get(..3) {
            Some(head) if head.eq_ignore_ascii_case("ci-") => &s[3..],
            _ => return Err(err(EXPECTED)),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(EXPECTED));
        }
        digits.parse().map(CiId).map_err(|_| err(EXPECTED))
    }
}

impl Serialize for CiId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CiId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_id_depends_only_on_the_key() {
        let a = AgentId::from_public_key(&[1; 32]);
        assert_eq!(a, AgentId::from_public_key(&[1; 32]));
        assert_ne!(a, AgentId::from_public_key(&[2; 32]));
    }

    #[test]
    fn ids_round_trip_through_text() {
        let agent = AgentId::from_public_key(&[7; 32]);
        assert_eq!(agent.to_string().parse::<AgentId>().unwrap(), agent);
        let ci = CiId::from_u64(42);
        assert_eq!(ci.to_string(), "ci-42");
        assert_eq!("ci-42".parse::<CiId>().unwrap(), ci);
        assert_eq!("CI-42".parse::<CiId>().unwrap(), ci, "case does not matter");
    }

    #[test]
    fn bad_ids_say_what_was_wrong() {
        for bad in [
            "",
            "ci-",
            "ci-xyz",
            "ci-+1",
            "ci-99999999999999999999999",
            "42",
        ] {
            let err = bad.parse::<CiId>().unwrap_err();
            assert!(err.to_string().contains("CI id"), "{err}");
        }
        assert!("zz".parse::<AgentId>().is_err());
        assert!("g".repeat(32).parse::<AgentId>().is_err());
    }
}
