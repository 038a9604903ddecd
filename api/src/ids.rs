//! Typed ids of the CMDB's own records, numbered from 1 per kind in
//! creation order and shown with a prefix people already use: `RFC-12`,
//! `INC-7`, `DRIFT-31`; parsing accepts any letter case and a bare number.
//! And the CI lifecycle status. Below both the records (`cmdb`) and the
//! decisions (`control`), which name them, and shared with the API.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A malformed id, naming what it should have looked like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid {kind} id: expected {prefix}-<number>, like {prefix}-12")]
pub struct BadId {
    kind: &'static str,
    prefix: &'static str,
    text: String,
}

macro_rules! record_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u64);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn from_u64(n: u64) -> $name {
                $name(n)
            }

            pub fn as_u64(self) -> u64 {
                self.0
            }

            /// The big-endian key, so store order is creation order.
            pub fn key(self) -> [u8; 8] {
                self.0.to_be_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}-{}", $prefix, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{self}")
            }
        }

        impl FromStr for $name {
            type Err = BadId;

            fn from_str(s: &str) -> Result<Self, BadId> {
                let bad = || BadId {
                    kind: $kind,
                    prefix: $prefix,
                    text: s.to_owned(),
                };
                let t = s.trim();
                let digits = match t.get(..$prefix.len() + 1) {
                    Some(head) if head.eq_ignore_ascii_case(concat!($prefix, "-")) => {
                        &t[$prefix.len() + 1..]
                    }
                    _ => t,
                };
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                digits.parse().map($name).map_err(|_| bad())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

record_id!(
    /// A request for change.
    RfcId,
    "RFC",
    "RFC"
);
record_id!(
    /// An incident.
    IncidentId,
    "INC",
    "incident"
);
record_id!(
    /// One observed difference between discovery and the authorized state,
    /// with the decision taken on it.
    DriftId,
    "DRIFT",
    "drift"
);
record_id!(
    /// An item of the identification review queue.
    ReviewId,
    "REV",
    "review"
);
record_id!(
    /// A configuration audit.
    AuditId,
    "AUD",
    "audit"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse() {
        let id = RfcId::from_u64(12);
        assert_eq!(id.to_string(), "RFC-12");
        for text in ["RFC-12", "rfc-12", "12", " Rfc-12 "] {
            assert_eq!(text.parse::<RfcId>().unwrap(), id, "{text}");
        }
        for bad in ["", "RFC-", "INC-12", "RFC-1x", "RFC--1"] {
            let err = bad.parse::<RfcId>().unwrap_err().to_string();
            assert!(err.contains("RFC-<number>"), "{err}");
        }
        let json = serde_json::to_string(&IncidentId::from_u64(7)).unwrap();
        assert_eq!(json, "\"INC-7\"");
        assert_eq!(
            serde_json::from_str::<IncidentId>(&json).unwrap(),
            IncidentId::from_u64(7)
        );
    }
}

/// The CI lifecycle (ISO/IEC 20000 status families: not yet live, live, gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum CiStatus {
    Planned,
    #[cfg_attr(feature = "clap", value(name = "in_use", alias = "in-use"))]
    #[serde(alias = "in-use")]
    InUse,
    Maintenance,
    Retired,
    Disposed,
}

impl CiStatus {
    pub const ALL: [CiStatus; 5] = [
        CiStatus::Planned,
        CiStatus::InUse,
        CiStatus::Maintenance,
        CiStatus::Retired,
        CiStatus::Disposed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CiStatus::Planned => "planned",
            CiStatus::InUse => "in_use",
            CiStatus::Maintenance => "maintenance",
            CiStatus::Retired => "retired",
            CiStatus::Disposed => "disposed",
        }
    }

    /// Reads a status as people write it: `in_use`, `in-use`, `In_Use`.
    pub fn parse(text: &str) -> Option<CiStatus> {
        let text = text.trim().replace('-', "_");
        CiStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(&text))
    }
}
