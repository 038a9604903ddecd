//! The CI class model: what kinds of configuration item the CMDB holds,
//! and what each must and may carry.
//!
//! Every CI has a class from this model: the built-in ones below, or one
//! the policy declares (`[[classes]]`, which may also add requirements to
//! a built-in class). A class lists the attributes a CI created by hand
//! must have (`required`, exact names) and may have (`allowed`, patterns;
//! none listed means any). Discovered CIs carry what discovery reports, so
//! only their class is checked. Service-level attributes people keep on
//! any CI (`availability.*`, `maintenance.*`, `redundancy.*`) are always
//! allowed.
//!
//! The status lifecycle is here too: which status may follow which
//! ([`next_statuses`]), so that a disposed CI is never put back in use.
//!
//! Pure: the caller passes records in and gets a sentence back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::pattern::Pattern;
use fathom_api::ids::CiStatus;

/// The classes every CMDB has, with what each is for.
pub const BUILTIN: [(&str, &str); 12] = [
    ("server", "a physical or virtual host an agent reports for"),
    (
        "network_device",
        "a switch, router, firewall or other SNMP device",
    ),
    ("virtual_machine", "a guest whose host is another CI"),
    ("service", "a business or IT service built from other CIs"),
    ("application", "software that delivers a service"),
    ("database", "a database instance"),
    ("storage", "a storage array, volume or share"),
    ("rack", "a rack or enclosure"),
    ("location", "a site, room or cage"),
    ("contract", "a support or maintenance contract"),
    ("sla", "a service level agreement"),
    ("document", "a configuration document under change control"),
];

/// One class: its name, what it is, and its attribute rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiClass {
    pub name: String,
    pub description: String,
    /// Attributes a CI of this class created by hand must have.
    pub required: Vec<String>,
    /// Attribute patterns such a CI may have; empty means any.
    pub allowed: Vec<Pattern>,
}

/// Every class the CMDB knows, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassModel {
    classes: BTreeMap<String, CiClass>,
}

impl Default for ClassModel {
    fn default() -> ClassModel {
        let classes = BUILTIN
            .iter()
            .map(|(name, description)| {
                let class = CiClass {
                    name: (*name).to_owned(),
                    description: (*description).to_owned(),
                    required: Vec::new(),
                    allowed: Vec::new(),
                };
                ((*name).to_owned(), class)
            })
            .collect();
        ClassModel { classes }
    }
}

/// Attributes people keep on any CI, whatever its class allows.
fn always_allowed(attribute: &str) -> bool {
    ["availability.", "maintenance.", "redundancy."]
        .iter()
        .any(|p| attribute.starts_with(p))
}

impl ClassModel {
    /// Adds a class, or adds to a built-in one of the same name.
    pub fn declare(&mut self, class: CiClass) {
        match self.classes.get_mut(&class.name) {
            Some(known) => {
                if !class.description.is_empty() {
                    known.description = class.description;
                }
                known.required.extend(class.required);
                known.allowed.extend(class.allowed);
            }
            None => {
                self.classes.insert(class.name.clone(), class);
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&CiClass> {
        self.classes.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &CiClass> {
        self.classes.values()
    }

    /// Whether `name` is a class; the error names the nearest ones.
    pub fn known(&self, name: &str) -> Result<&CiClass, String> {
        if let Some(class) = self.classes.get(name) {
            return Ok(class);
        }
        let near: Vec<&str> = self
            .classes
            .keys()
            .filter(|k| strsim::levenshtein(k, name) <= 2)
            .map(String::as_str)
            .collect();
        let hint = match near.as_slice() {
            [] => String::new(),
            near => format!(" (did you mean {}?)", near.join(" or ")),
        };
        Err(format!(
            "{name:?} is not a CI class{hint}; the classes are {}, and the policy may declare more under [[classes]]",
            self.classes.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
        ))
    }

    /// Checks a CI created or kept by hand against its class: a known
    /// class, its required attributes present, every attribute allowed.
    pub fn check_manual(
        &self,
        class: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let rules = self.known(class)?;
        let missing: Vec<&str> = rules
            .required
            .iter()
            .filter(|r| attributes.get(*r).is_none_or(|v| v.trim().is_empty()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "a {class} needs the attribute(s) {}",
                missing.join(", ")
            ));
        }
        if rules.allowed.is_empty() {
            return Ok(());
        }
        if let Some(stray) = attributes
            .keys()
            .find(|a| !always_allowed(a) && !rules.allowed.iter().any(|p| p.matches(a)))
        {
            return Err(format!(
                "a {class} may not have the attribute {stray} (allowed: {})",
                rules
                    .allowed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(())
    }
}

/// The statuses a CI in `status` may move to next (ISO/IEC 20000's
/// families: not yet live, live, gone). Planned CIs go live or are dropped;
/// live ones move between use and maintenance, or retire; a retired CI may
/// be reinstated or disposed of; disposed is final.
pub fn next_statuses(status: CiStatus) -> &'static [CiStatus] {
    use CiStatus::*;
    match status {
        Planned => &[InUse, Retired],
        InUse => &[Maintenance, Retired],
        Maintenance => &[InUse, Retired],
        Retired => &[InUse, Disposed],
        Disposed => &[],
    }
}

/// Whether a CI may go from `from` to `to`; staying put always may. The
/// error lists the allowed next statuses.
pub fn check_transition(from: CiStatus, to: CiStatus) -> Result<(), String> {
    let next = next_statuses(from);
    if from == to || next.contains(&to) {
        return Ok(());
    }
    let allowed = if next.is_empty() {
        "none: disposed is final".to_owned()
    } else {
        next.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(format!(
        "a CI cannot go from {} to {}; from {} it may go to {allowed}",
        from.as_str(),
        to.as_str(),
        from.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn unknown_classes_are_named_with_the_nearest() {
        let model = ClassModel::default();
        assert!(model.known("server").is_ok());
        let err = model.known("serverr").unwrap_err();
        assert!(err.contains("did you mean server?"), "{err}");
        let err = model.known("spaceship").unwrap_err();
        assert!(
            !err.contains("did you mean") && err.contains("[[classes]]"),
            "{err}"
        );
    }

    #[test]
    fn declared_classes_require_and_allow() {
        let mut model = ClassModel::default();
        model.declare(CiClass {
            name: "rack".into(),
            description: String::new(),
            required: vec!["rack.units".into()],
            allowed: vec![Pattern::new("rack.*")],
        });
        let err = model.check_manual("rack", &attrs(&[])).unwrap_err();
        assert!(err.contains("rack.units"), "{err}");
        assert!(model
            .check_manual("rack", &attrs(&[("rack.units", "42")]))
            .is_ok());
        let err = model
            .check_manual("rack", &attrs(&[("rack.units", "42"), ("os.name", "x")]))
            .unwrap_err();
        assert!(err.contains("os.name") && err.contains("rack.*"), "{err}");
        // Service levels are anyone's.
        let service = attrs(&[
            ("rack.units", "42"),
            ("maintenance.window", "sun 02:00-04:00"),
        ]);
        assert!(model.check_manual("rack", &service).is_ok());
        assert_eq!(
            model.get("rack").unwrap().description,
            "a rack or enclosure"
        );
    }

    #[test]
    fn the_lifecycle_moves_forward_and_disposed_is_final() {
        use CiStatus::*;
        assert!(check_transition(Planned, InUse).is_ok());
        assert!(check_transition(InUse, Maintenance).is_ok());
        assert!(check_transition(Retired, InUse).is_ok());
        assert!(check_transition(Disposed, Disposed).is_ok());
        let err = check_transition(Disposed, InUse).unwrap_err();
        assert!(err.contains("disposed is final"), "{err}");
        let err = check_transition(InUse, Planned).unwrap_err();
        assert!(err.contains("maintenance, retired"), "{err}");
        // Every status is reachable from planned.
        let mut seen = vec![Planned];
        let mut i = 0;
        while i < seen.len() {
            for n in next_statuses(seen[i]) {
                if !seen.contains(n) {
                    seen.push(*n);
                }
            }
            i += 1;
        }
        assert_eq!(seen.len(), CiStatus::ALL.len());
    }
}
