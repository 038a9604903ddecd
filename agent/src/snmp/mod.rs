//! SNMP polling of devices that cannot run the agent: switches, routers,
//! firewalls, appliances, and hosts that answer SNMP only.
//!
//! - [`client`]: one device over UDP, SNMPv2c or SNMPv3 (USM); messages
//!   built and parsed by `rasn-snmp` (BER). Request ids matched to answers,
//!   timeouts and retries, a time budget per device, GETBULK walks (whole
//!   subtrees, or chosen table columns side by side) that stop at the end
//!   of a subtree, refuse OIDs that do not increase, and cap the rows.
//! - [`usm`]: key localization, HMAC-SHA-1/SHA-2, AES-128-CFB.
//! - [`device`]: what one poll reads (the standard MIBs).
//! - [`config`]: the `[snmp]` section of `agent.toml`.
//! - [`poller`]: rounds over every target with bounded concurrency, sweeps,
//!   and interface throughput between polls.

pub mod client;
pub mod config;
pub mod device;
#[cfg(test)]
mod fake;
pub mod poller;
pub mod usm;

use std::fmt;

use rasn_snmp::v2::{ObjectSyntax, VarBindValue};

/// An object identifier, as its arcs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(pub Vec<u32>);

impl Oid {
    /// Parses dotted decimal (`1.3.6.1.2.1.1.5.0`, a leading dot allowed).
    pub fn parse(text: &str) -> Result<Oid, String> {
        let arcs: Result<Vec<u32>, _> = text
            .trim_start_matches('.')
            .split('.')
            .map(str::parse)
            .collect();
        match arcs {
            // X.660: the first arc is 0, 1 or 2; under 0 and 1, the second
            // is below 40.
            Ok(arcs) if arcs.len() >= 2 && arcs[0] <= 2 && (arcs[0] == 2 || arcs[1] < 40) => {
                Ok(Oid(arcs))
            }
            _ => Err(format!("{text:?} is not a dotted-decimal OID")),
        }
    }

    pub fn child(&self, arc: u32) -> Oid {
        let mut arcs = self.0.clone();
        arcs.push(arc);
        Oid(arcs)
    }

    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The arcs after `prefix` (a table row's index).
    pub fn suffix(&self, prefix: &Oid) -> Option<&[u32]> {
        self.0.strip_prefix(prefix.0.as_slice())
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// A value a device answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    OctetString(Vec<u8>),
    Oid(Oid),
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Counter64(u64),
    Opaque(Vec<u8>),
    Null,
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl Value {
    pub(crate) fn from_wire(value: VarBindValue) -> Value {
        use rasn::types::IntegerType;
        use rasn_smi::v2::{ApplicationSyntax, SimpleSyntax};
        match value {
            VarBindValue::Unspecified => Value::Null,
            VarBindValue::NoSuchObject => Value::NoSuchObject,
            VarBindValue::NoSuchInstance => Value::NoSuchInstance,
            VarBindValue::EndOfMibView => Value::EndOfMibView,
            VarBindValue::Value(ObjectSyntax::Simple(s)) => match s {
                SimpleSyntax::Integer(i) => {
                    Value::Integer(i64::try_from(&i).unwrap_or(if i.is_negative() {
                        i64::MIN
                    } else {
                        i64::MAX
                    }))
                }
                SimpleSyntax::String(s) => Value::OctetString(s.to_vec()),
                SimpleSyntax::ObjectId(o) => Value::Oid(Oid(o.to_vec())),
            },
            VarBindValue::Value(ObjectSyntax::ApplicationWide(a)) => match a {
                ApplicationSyntax::Address(ip) => Value::IpAddress(*ip.0),
                ApplicationSyntax::Counter(c) => Value::Counter32(c.0),
                ApplicationSyntax::Unsigned(g) => Value::Gauge32(g.0),
                ApplicationSyntax::Ticks(t) => Value::TimeTicks(t.0),
                ApplicationSyntax::BigCounter(c) => Value::Counter64(c.0),
                ApplicationSyntax::Arbitrary(o) => Value::Opaque(o.as_ref().to_vec()),
            },
        }
    }

    /// Whether the device has the object at all.
    pub fn exists(&self) -> bool {
        !matches!(
            self,
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView
        )
    }

    /// Text: UTF-8 where valid (trailing NULs dropped),
    /// else colon-separated hex.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::OctetString(bytes) | Value::Opaque(bytes) => Some(display_bytes(bytes)),
            Value::Integer(i) => Some(i.to_string()),
            Value::Oid(o) => Some(o.to_string()),
            _ => None,
        }
    }

    pub fn unsigned(&self) -> Option<u64> {
        match self {
            Value::Integer(i) => u64::try_from(*i).ok(),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => Some(u64::from(*v)),
            Value::Counter64(v) => Some(*v),
            _ => None,
        }
    }
}

/// Bytes a device sent as a string: UTF-8 when valid, else `aa:bb:…`.
pub fn display_bytes(bytes: &[u8]) -> String {
    let trimmed = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    match std::str::from_utf8(trimmed) {
        Ok(text)
            if !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') =>
        {
            text.to_owned()
        }
        _ => hex_colons(bytes),
    }
}

/// Lower-case, colon-separated hex (MAC addresses, binary ids).
pub fn hex_colons(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_parse_and_print() {
        let oid = Oid::parse(".1.3.6.1.2.1.1.5.0").unwrap();
        assert_eq!(oid.to_string(), "1.3.6.1.2.1.1.5.0");
        assert!(oid.starts_with(&Oid::parse("1.3.6.1.2.1.1").unwrap()));
        assert_eq!(
            oid.suffix(&Oid::parse("1.3.6.1.2.1.1.5").unwrap()),
            Some(&[0][..])
        );
        assert!(Oid::parse("1.3.x").is_err());
        assert!(Oid::parse("1").is_err());
        assert!(Oid::parse("5.5").is_err());
        assert!(Oid::parse("1.40").is_err());
    }

    #[test]
    fn strings_are_utf8_or_hex() {
        assert_eq!(display_bytes(b"edge-sw-1"), "edge-sw-1");
        assert_eq!(display_bytes(b"FOC1234\0"), "FOC1234");
        assert_eq!(display_bytes(&[0x00, 0x1b, 0x21, 0xff]), "00:1b:21:ff");
        assert_eq!(display_bytes(&[0xc3, 0x28]), "c3:28");
    }
}
