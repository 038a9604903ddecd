//! Shell-style wildcard patterns (`*` any run, `?` one character) for
//! policy rules, RFC specs and selectors: `packages.linux-image-*`,
//! `1.24.*`, `web-??`.
//!
//! Deliberately small: no character classes or braces, so a pattern a
//! configuration manager writes means the one obvious thing. Matching is
//! case-sensitive and linear in practice (greedy with one backtrack point).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A wildcard pattern. `*` alone matches everything.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(text: impl Into<String>) -> Pattern {
        Pattern(text.into())
    }

    pub fn any() -> Pattern {
        Pattern("*".into())
    }

    /// Whether it is `*`, matching everything.
    pub fn is_any(&self) -> bool {
        self.0 == "*"
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern has no wildcard, so it names exactly one value.
    pub fn is_literal(&self) -> bool {
        !self.0.contains(['*', '?'])
    }

    pub fn matches(&self, text: &str) -> bool {
        wildcard_match(self.0.as_bytes(), text.as_bytes())
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The classic two-pointer wildcard match: on a mismatch, go back to the
/// last `*` and let it swallow one more byte. `?` matches one byte, which is
/// one character for the ASCII names and versions it is used on.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        for (pattern, text, expected) in [
            ("*", "", true),
            ("*", "anything", true),
            ("1.24.*", "1.24.0-1", true),
            ("1.24.*", "1.25.0-1", false),
            ("1.24.*", "1.24", false),
            (
                "packages.linux-image-*",
                "packages.linux-image-6.1.0-26-amd64",
                true,
            ),
            (
                "packages.linux-image-*",
                "packages.linux-headers-6.1",
                false,
            ),
            ("web-??", "web-01", true),
            ("web-??", "web-1", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*.deb12u*", "2.36-9+deb12u4", false),
            ("*+deb12u*", "2.36-9+deb12u4", true),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(
                Pattern::new(pattern).matches(text),
                expected,
                "{pattern:?} against {text:?}"
            );
        }
        assert!(Pattern::new("1.24.0").is_literal());
        assert!(!Pattern::new("1.24.*").is_literal());
    }

    /// A reference matcher by plain recursion, to check the fast one against.
    fn reference(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
            (Some(b'?'), Some(_)) => reference(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => reference(&p[1..], &t[1..]),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference(p in "[ab*?]{0,8}", t in "[ab]{0,10}") {
            prop_assert_eq!(Pattern::new(p.clone()).matches(&t), reference(p.as_bytes(), t.as_bytes()));
        }

        #[test]
        fn a_literal_matches_only_itself(a in "[a-z0-9.-]{0,12}", b in "[a-z0-9.-]{0,12}") {
            prop_assert_eq!(Pattern::new(a.clone()).matches(&b), a == b);
        }
    }
}
