//! The decision on one difference between discovery and the authorized
//! state: informational, authorized (by which RFC or standard change), or
//! unauthorized. Pure: the CMDB hands in the policy, the CI's class, the
//! difference, when it was observed, and the RFCs scheduled for the CI.
//!
//! Every decision carries the lines that explain it, including the
//! candidates that did *not* authorize it and why (window closed, spec
//! does not cover the value), which is what `fathom drift show` prints.

use serde::{Deserialize, Serialize};

use super::attributes::Difference;
use super::policy::{Control, Policy};
use super::spec::Spec;
use fathom_api::ids::RfcId;

/// An RFC that may authorize changes on this CI: approved, with a window.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub rfc: RfcId,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub specs: &'a [Spec],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Authority {
    Rfc { rfc: RfcId },
    StandardChange { name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// Recorded without review.
    Informational,
    Authorized {
        authority: Authority,
    },
    Unauthorized,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// The policy rule that made the attribute controlled or informational.
    pub policy_rule: String,
    /// What was considered, in order, one sentence each.
    pub explanation: Vec<String>,
}

fn describe_value(v: Option<&str>) -> String {
    match v {
        Some(v) => format!("{v:?}"),
        None => "absent".into(),
    }
}

/// Decides one difference. `ignored` attributes never get here.
pub fn decide(
    policy: &Policy,
    class: &str,
    difference: &Difference,
    observed_at_ms: i64,
    candidates: &[Candidate<'_>],
    render_time: impl Fn(i64) -> String,
) -> Decision {
    let attr = &difference.attribute;
    let new = difference.discovered.as_deref();
    let control = policy.control_of(class, attr);
    let mut explanation = vec![format!(
        "{attr} changed from {} to {}, observed {}",
        describe_value(difference.authorized.as_deref()),
        describe_value(new),
        render_time(observed_at_ms)
    )];
    if control.control != Control::Controlled {
        explanation.push(format!(
            "policy {} makes {attr} on class {class} informational: recorded without review",
            control.rule
        ));
        return Decision {
            verdict: Verdict::Informational,
            policy_rule: control.rule,
            explanation,
        };
    }
    explanation.push(format!(
        "policy {} puts {attr} on class {class} under change control",
        control.rule
    ));
    for c in candidates {
        let window = format!(
            "{} to {}",
            render_time(c.window_start_ms),
            render_time(c.window_end_ms)
        );
        let in_window = (c.window_start_ms..c.window_end_ms).contains(&observed_at_ms);
        let matching = c.specs.iter().find(|s| s.matches(attr, new));
        match (in_window, matching) {
            (true, Some(spec)) => {
                explanation.push(format!(
                    "{}: the observation is inside its window ({window}) and its spec `{spec}` matches: authorized",
                    c.rfc
                ));
                return Decision {
                    verdict: Verdict::Authorized {
                        authority: Authority::Rfc { rfc: c.rfc },
                    },
                    policy_rule: control.rule,
                    explanation,
                };
            }
            (false, Some(spec)) => explanation.push(format!(
                "{}: its spec `{spec}` matches, but its window ({window}) does not contain the observation",
                c.rfc
            )),
            (true, None) => {
                let about: Vec<String> = c
                    .specs
                    .iter()
                    .filter(|s| s.attribute.matches(attr))
                    .map(|s| format!("`{s}`"))
                    .collect();
                explanation.push(if about.is_empty() {
                    format!(
                        "{}: in its window ({window}), but none of its specs is about {attr}",
                        c.rfc
                    )
                } else {
                    format!(
                        "{}: in its window ({window}), but {} does not allow {}",
                        c.rfc,
                        about.join(", "),
                        describe_value(new)
                    )
                });
            }
            (false, None) => {}
        }
    }
    for s in &policy.standard_changes {
        if !s.attribute.matches(attr) || !s.class.matches(class) {
            continue;
        }
        let name = &s.name;
        let why_not = if !s.kinds.contains(&difference.kind()) {
            let kinds: Vec<&str> = s.kinds.iter().map(|k| k.as_str()).collect();
            Some(format!("it allows {} changes only", kinds.join(" or ")))
        } else if let Some(p) = s
            .value
            .as_ref()
            .filter(|p| !new.is_some_and(|v| p.matches(v)))
        {
            Some(format!(
                "the new value {} does not match {p}",
                describe_value(new)
            ))
        } else {
            s.window
                .as_ref()
                .filter(|w| !w.contains(observed_at_ms))
                .map(|w| format!("the observation is outside its window ({})", w.describe()))
        };
        match why_not {
            Some(reason) => {
                explanation.push(format!("standard change {name:?} does not apply: {reason}"))
            }
            None => {
                explanation.push(format!(
                    "standard change {name:?} pre-authorizes it: authorized"
                ));
                return Decision {
                    verdict: Verdict::Authorized {
                        authority: Authority::StandardChange { name: name.clone() },
                    },
                    policy_rule: control.rule,
                    explanation,
                };
            }
        }
    }
    if candidates.is_empty() {
        explanation.push("no approved RFC is scheduled for this CI".into());
    }
    explanation.push("no approved RFC or standard change covers it: unauthorized".into());
    Decision {
        verdict: Verdict::Unauthorized,
        policy_rule: control.rule,
        explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn policy() -> Policy {
        Policy::from_toml(
            r#"
            [[control.rules]]
            attribute = "network.*.addresses"
            control = "informational"

            [[standard_changes]]
            name = "security"
            class = "server"
            attribute = "packages.*"
            value = "*+deb*u*"
            kinds = ["modified"]
            window = { days = ["mon"], start = "01:00", end = "05:00" }
            "#,
            Path::new("policy.toml"),
        )
        .unwrap()
    }

    fn change(attr: &str, old: &str, new: &str) -> Difference {
        Difference {
            attribute: attr.into(),
            authorized: Some(old.into()),
            discovered: Some(new.into()),
        }
    }

    // Monday 2026-11-23 02:30 UTC.
    const MONDAY_0230: i64 = 1_795_392_000_000 + 9_000_000;
    const HOUR: i64 = 3_600_000;

    fn run(d: &Difference, at: i64, candidates: &[Candidate<'_>]) -> Decision {
        decide(&policy(), "server", d, at, candidates, |t| t.to_string())
    }

    #[test]
    fn rfc_window_and_spec_both_count() {
        let specs: Vec<Spec> = vec!["packages.nginx: 1.24.*".parse().unwrap()];
        let rfc = |start, end| Candidate {
            rfc: RfcId::from_u64(3),
            window_start_ms: start,
            window_end_ms: end,
            specs: &specs,
        };
        let upgrade = change("packages.nginx", "1.22.1-9", "1.24.0-1");
        let inside = run(
            &upgrade,
            MONDAY_0230,
            &[rfc(MONDAY_0230 - HOUR, MONDAY_0230 + HOUR)],
        );
        assert_eq!(
            inside.verdict,
            Verdict::Authorized {
                authority: Authority::Rfc {
                    rfc: RfcId::from_u64(3)
                }
            }
        );
        let late = run(
            &upgrade,
            MONDAY_0230,
            &[rfc(MONDAY_0230 - 2 * HOUR, MONDAY_0230 - HOUR)],
        );
        assert_eq!(late.verdict, Verdict::Unauthorized);
        assert!(late
            .explanation
            .iter()
            .any(|l| l.contains("RFC-3") && l.contains("window")));
        // In the window, but not what the RFC said.
        let other = change("packages.curl", "7.88", "8.0");
        let off_spec = run(
            &other,
            MONDAY_0230,
            &[rfc(MONDAY_0230 - HOUR, MONDAY_0230 + HOUR)],
        );
        assert_eq!(off_spec.verdict, Verdict::Unauthorized);
        assert!(
            off_spec
                .explanation
                .iter()
                .any(|l| l.contains("none of its specs")),
            "{off_spec:?}"
        );
        let wrong_version = change("packages.nginx", "1.22.1-9", "1.25.0-1");
        let d = run(
            &wrong_version,
            MONDAY_0230,
            &[rfc(MONDAY_0230 - HOUR, MONDAY_0230 + HOUR)],
        );
        assert_eq!(d.verdict, Verdict::Unauthorized);
        assert!(
            d.explanation.iter().any(|l| l.contains("does not allow")),
            "{d:?}"
        );
    }

    #[test]
    fn standard_changes_need_kind_value_and_window() {
        let security = change("packages.libc6", "2.36-9+deb12u3", "2.36-9+deb12u4");
        let d = run(&security, MONDAY_0230, &[]);
        assert_eq!(
            d.verdict,
            Verdict::Authorized {
                authority: Authority::StandardChange {
                    name: "security".into()
                }
            }
        );
        assert_eq!(
            run(&security, MONDAY_0230 + 3 * HOUR, &[]).verdict,
            Verdict::Unauthorized
        );
        let major = change("packages.libc6", "2.36-9", "2.37-1");
        let d = run(&major, MONDAY_0230, &[]);
        assert_eq!(d.verdict, Verdict::Unauthorized);
        assert!(d.explanation.iter().any(|l| l.contains("does not match")));
        let install = Difference {
            attribute: "packages.telnet".into(),
            authorized: None,
            discovered: Some("0.17+deb12u1".into()),
        };
        assert_eq!(
            run(&install, MONDAY_0230, &[]).verdict,
            Verdict::Unauthorized
        );
    }

    #[test]
    fn informational_attributes_are_not_reviewed() {
        let dhcp = change("network.eth0.addresses", "10.0.0.5/24", "10.0.0.9/24");
        let d = run(&dhcp, MONDAY_0230, &[]);
        assert_eq!(d.verdict, Verdict::Informational);
        assert_eq!(d.policy_rule.split(' ').next(), Some("control.rules[0]"));
    }
}
