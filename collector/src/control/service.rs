//! A CI's service-level attributes, read and checked: agreed hours
//! (`availability.hours`, `.timezone`, `.exceptions`), the availability
//! target (`availability.target`), redundancy groups (`redundancy.<name>`)
//! and the maintenance window (`maintenance.window`, `.timezone`,
//! `.exceptions`).
//!
//! Pure: these read an attribute map. The CMDB checks them when people set
//! attributes; availability reports and outage detection read them.

use std::collections::BTreeMap;

use fathom_shared::ids::CiId;

use crate::calendar::hours::Calendar;

/// What is wrong with one attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{attribute}: {message}")]
pub struct AttributeError {
    pub attribute: String,
    pub message: String,
}

type Attributes = BTreeMap<String, String>;

fn get<'a>(attributes: &'a Attributes, key: &str) -> Option<&'a str> {
    attributes.get(key).map(String::as_str)
}

/// The agreed service hours; every hour of every day when none are set.
pub fn agreed_hours(attributes: &Attributes) -> Result<Calendar, AttributeError> {
    Calendar::parse(
        get(attributes, "availability.timezone").unwrap_or("UTC"),
        get(attributes, "availability.hours")
            .filter(|h| !h.trim().is_empty())
            .unwrap_or("daily 00:00-24:00"),
        get(attributes, "availability.exceptions").unwrap_or_default(),
    )
    .map_err(|e| AttributeError {
        attribute: "availability.hours".into(),
        message: e.to_string(),
    })
}

/// The availability target, a percentage (`99.9` or `99.9%`).
pub fn target_pct(attributes: &Attributes) -> Result<Option<f64>, AttributeError> {
    get(attributes, "availability.target")
        .map(|t| {
            t.trim_end_matches('%')
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| AttributeError {
                    attribute: "availability.target".into(),
                    message: format!("{t:?} is not a percentage"),
                })
        })
        .transpose()
}

/// A redundancy group from `redundancy.<name>` = `"<k> of <ci> <ci> …"`:
/// how many members must be up, and the members.
pub fn redundancy_group(name: &str, text: &str) -> Result<(usize, Vec<CiId>), AttributeError> {
    let bad = |message: String| AttributeError {
        attribute: format!("redundancy.{name}"),
        message,
    };
    let (k, rest) = text
        .split_once(" of ")
        .ok_or_else(|| bad(format!("{text:?} is not \"<k> of <ci> <ci> …\"")))?;
    let k: usize = k
        .trim()
        .parse()
        .map_err(|_| bad(format!("{k:?} is not a number of members")))?;
    let members = rest
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(|m| m.parse().map_err(|e| bad(format!("{m:?}: {e}"))))
        .collect::<Result<Vec<CiId>, _>>()?;
    if members.is_empty() || k > members.len() {
        return Err(bad(format!("{k} of {} members", members.len())));
    }
    Ok((k, members))
}

/// The maintenance window, if one is set. Its zone is
/// `maintenance.timezone`, else the agreed hours' zone, else UTC.
pub fn maintenance_window(attributes: &Attributes) -> Result<Option<Calendar>, AttributeError> {
    let Some(rules) = get(attributes, "maintenance.window") else {
        return Ok(None);
    };
    let zone = get(attributes, "maintenance.timezone")
        .or(get(attributes, "availability.timezone"))
        .unwrap_or("UTC");
    Calendar::parse(
        zone,
        rules,
        get(attributes, "maintenance.exceptions").unwrap_or_default(),
    )
    .map(Some)
    .map_err(|e| AttributeError {
        attribute: "maintenance.window".into(),
        message: e.to_string(),
    })
}

/// Checks every service-level attribute as people set them; the error
/// names the first attribute that is wrong and what is wrong with it.
pub fn check(attributes: &Attributes) -> Result<(), AttributeError> {
    agreed_hours(attributes)?;
    target_pct(attributes)?;
    for (attribute, text) in attributes {
        if let Some(name) = attribute.strip_prefix("redundancy.") {
            redundancy_group(name, text)?;
        }
    }
    maintenance_window(attributes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn each_bad_attribute_is_named() {
        for (pairs, attribute) in [
            (
                &[("availability.hours", "weekdays 9-5")][..],
                "availability.hours",
            ),
            (
                &[("availability.timezone", "Mars/Olympus")],
                "availability.hours",
            ),
            (&[("availability.target", "120%")], "availability.target"),
            (&[("redundancy.db", "3 of ci-1 ci-2")], "redundancy.db"),
            (&[("redundancy.db", "two of ci-1")], "redundancy.db"),
            (
                &[("maintenance.window", "someday 02:00-04:00")],
                "maintenance.window",
            ),
        ] {
            let err = check(&attrs(pairs)).unwrap_err();
            assert_eq!(err.attribute, attribute, "{pairs:?}: {err}");
        }
        check(&attrs(&[
            ("availability.hours", "mon-fri 08:00-18:00"),
            ("availability.target", "99.5%"),
            ("maintenance.window", "sun 02:00-04:00"),
        ]))
        .unwrap();
    }

    #[test]
    fn the_maintenance_window_takes_the_services_zone() {
        let window = maintenance_window(&attrs(&[
            ("availability.timezone", "Europe/Paris"),
            ("maintenance.window", "sun 02:00-04:00"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(window.zone, "Europe/Paris");
        assert_eq!(
            target_pct(&attrs(&[("availability.target", "99.9")])).unwrap(),
            Some(99.9)
        );
        assert_eq!(target_pct(&attrs(&[])).unwrap(), None);
    }
}
