//! Attribute specs: what an RFC says its change will look like, e.g.
//! `packages.nginx: 1.24.*`, `hardware.memory_bytes: 68719476736`,
//! `packages.telnet: absent`, `status: retired`.
//!
//! Grammar: `<attribute pattern> ":" <expectation>` (`=` also separates).
//! The expectation is `absent`, or a value pattern (`*` alone: any value,
//! present). The separator is the first `": "` or `=`, or else the last
//! `:`, so multi-arch names like `packages.libc6:i386: 2.36-9+deb12u4`
//! parse as meant.
//!
//! Names without a dot are the CI's own fields (`status`, `owner`,
//! `location`, `criticality`, `name`, `description`); discovery never
//! reports them, so `fathom rfc implement` applies them, and their values
//! must be literal.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::pattern::Pattern;

/// The CI fields an RFC may set directly.
pub const CI_FIELDS: [&str; 6] = [
    "status",
    "owner",
    "location",
    "criticality",
    "name",
    "description",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Value(Pattern),
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub attribute: Pattern,
    pub expect: Expect,
}

/// Specs indexed for matching many changes: literal attributes by name,
/// patterned ones scanned. A missing-RFC draft for a mass change has a spec
/// per attribute, and matching each change against every spec would take
/// time quadratic in the size of the change.
#[derive(Debug)]
pub struct SpecIndex<'a> {
    literal: std::collections::HashMap<&'a str, Vec<&'a Spec>>,
    patterned: Vec<&'a Spec>,
}

impl<'a> SpecIndex<'a> {
    pub fn new(specs: &'a [Spec]) -> SpecIndex<'a> {
        let mut index = SpecIndex {
            literal: std::collections::HashMap::new(),
            patterned: Vec::new(),
        };
        for spec in specs {
            if spec.attribute.is_literal() {
                index
                    .literal
                    .entry(spec.attribute.as_str())
                    .or_default()
                    .push(spec);
            } else {
                index.patterned.push(spec);
            }
        }
        index
    }

    /// Whether any spec describes a change of `attribute` to `new`.
    pub fn matches(&self, attribute: &str, new: Option<&str>) -> bool {
        self.literal
            .get(attribute)
            .is_some_and(|specs| specs.iter().any(|s| s.matches(attribute, new)))
            || self.patterned.iter().any(|s| s.matches(attribute, new))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad spec {text:?}: {reason} (write it as `attribute: value`, e.g. `packages.nginx: 1.24.*`)"
)]
pub struct BadSpec {
    text: String,
    reason: String,
}

impl Spec {
    /// Whether a change of `attribute` to `new` (`None`: removed) is what
    /// this spec describes.
    pub fn matches(&self, attribute: &str, new: Option<&str>) -> bool {
        self.attribute.matches(attribute)
            && match (&self.expect, new) {
                (Expect::Absent, None) => true,
                (Expect::Value(p), Some(v)) => p.matches(v),
                _ => false,
            }
    }

    /// A spec on one of the CI's own fields rather than a discovered attribute.
    pub fn is_ci_field(&self) -> bool {
        !self.attribute.as_str().contains('.')
    }

    /// The exact spec for an observed change (used for missing-RFC drafts).
    pub fn exact(attribute: &str, value: Option<&str>) -> Spec {
        Spec {
            attribute: Pattern::new(attribute),
            expect: match value {
                Some(v) => Expect::Value(Pattern::new(v)),
                None => Expect::Absent,
            },
        }
    }
}

impl FromStr for Spec {
    type Err = BadSpec;

    fn from_str(text: &str) -> Result<Spec, BadSpec> {
        let bad = |reason: &str| BadSpec {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (attribute, value) = text
            .split_once(": ")
            .or_else(|| text.split_once('='))
            .or_else(|| text.rsplit_once(':'))
            .ok_or_else(|| bad("no `:` between attribute and value"))?;
        let (attribute, value) = (attribute.trim(), value.trim());
        if attribute.is_empty() || attribute.contains(char::is_whitespace) {
            return Err(bad("the attribute is empty or contains spaces"));
        }
        if value.is_empty() {
            return Err(bad("the value is empty (use `absent` for a removal)"));
        }
        let spec = Spec {
            attribute: Pattern::new(attribute),
            expect: if value == "absent" {
                Expect::Absent
            } else {
                Expect::Value(Pattern::new(value))
            },
        };
        if spec.is_ci_field() {
            if !CI_FIELDS.contains(&attribute) {
                return Err(bad(&format!(
                    "{attribute:?} is neither `section.name` nor a CI field ({})",
                    CI_FIELDS.join(", ")
                )));
            }
            match &spec.expect {
                Expect::Value(p) if p.is_literal() => {}
                _ => return Err(bad("a CI field takes a literal value")),
            }
            if attribute == "status" && fathom_api::ids::CiStatus::parse(value).is_none() {
                return Err(bad(&format!(
                    "{value:?} is not a CI status ({})",
                    fathom_api::ids::CiStatus::ALL
                        .map(|s| s.as_str())
                        .join(", ")
                )));
            }
            if attribute == "criticality" && !["high", "medium", "low"].contains(&value) {
                return Err(bad("criticality is high, medium or low"));
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expect {
            Expect::Absent => write!(f, "{}: absent", self.attribute),
            Expect::Value(v) => write!(f, "{}: {v}", self.attribute),
        }
    }
}

impl Serialize for Spec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Spec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(text: &str) -> Spec {
        text.parse().unwrap()
    }

    #[test]
    fn specs_from_the_issue() {
        let nginx = spec("packages.nginx: 1.24.*");
        assert!(nginx.matches("packages.nginx", Some("1.24.0-1")));
        assert!(!nginx.matches("packages.nginx", Some("1.22.1-9")));
        assert!(!nginx.matches("packages.nginx", None));
        assert!(!nginx.matches("packages.nginx-common", Some("1.24.0-1")));
        let memory = spec("hardware.memory_bytes: 68719476736");
        assert!(memory.matches("hardware.memory_bytes", Some("68719476736")));
        assert!(!memory.matches("hardware.memory_bytes", Some("34359738368")));
        let gone = spec("packages.telnet: absent");
        assert!(gone.matches("packages.telnet", None));
        assert!(!gone.matches("packages.telnet", Some("0.17")));
        let retired = spec("status: retired");
        assert!(retired.is_ci_field());
        let multiarch = spec("packages.libc6:i386: 2.36-9+deb12u4");
        assert!(multiarch.matches("packages.libc6:i386", Some("2.36-9+deb12u4")));
        let glob = spec("packages.php8.2-*=8.2.*");
        assert!(glob.matches("packages.php8.2-fpm", Some("8.2.20-1")));
        let compact = spec("packages.libc6:2.36-9");
        assert_eq!(compact.attribute.as_str(), "packages.libc6");
        assert_eq!(compact.to_string(), "packages.libc6: 2.36-9");
    }

    #[test]
    fn bad_specs_say_why() {
        for (text, why) in [
            ("packages.nginx", "no `:`"),
            ("packages.nginx: ", "value is empty"),
            (": 1.0", "attribute is empty"),
            ("colour: blue", "neither"),
            ("status: gone", "not a CI status"),
            ("owner: team-*", "literal"),
            ("criticality: extreme", "high, medium or low"),
        ] {
            let err = text.parse::<Spec>().unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    proptest! {
        /// A spec prints to text that parses back to itself.
        #[test]
        fn specs_round_trip(
            attr in "(packages|hardware|os)\\.[a-z0-9*+-]{1,10}(:i386)?",
            value in "[a-z0-9.*+~-]{1,10}",
        ) {
            let s = Spec::exact(&attr, Some(&value));
            let back: Spec = s.to_string().parse().unwrap();
            prop_assert_eq!(back, s);
        }

        /// The exact spec of a change matches that change and no other value.
        #[test]
        fn the_exact_spec_matches_only_its_change(
            attr in "packages\\.[a-z0-9+-]{1,10}",
            value in proptest::option::of("[a-z0-9.+~-]{1,10}"),
            other in proptest::option::of("[a-z0-9.+~-]{1,10}"),
        ) {
            let s = Spec::exact(&attr, value.as_deref());
            prop_assert!(s.matches(&attr, value.as_deref()));
            prop_assert_eq!(s.matches(&attr, other.as_deref()), value == other);
        }
    }
}
