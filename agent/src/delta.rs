//! Which inventory sections changed since the last report, so a change on
//! the host goes out as a small delta rather than a whole inventory.
//!
//! The tracker remembers a digest of each section as last spooled, and the
//! sequence number of that report. The collector applies a delta only on top
//! of exactly that report; if one went missing on the way (dropped from a
//! full spool, refused), it answers `needs_full` and the agent sends a full
//! inventory, which resets the chain.

use std::collections::BTreeMap;

use fathom_shared::wire::{Inventory, InventoryDelta, Package, PackageChanges};
use sha2::{Digest, Sha256};

type Digests = BTreeMap<&'static str, [u8; 32]>;

/// What to send for a freshly taken inventory.
#[derive(Debug)]
pub enum Next {
    /// No report is known to have gone before: send it all.
    Full(Box<Inventory>),
    Delta(Box<InventoryDelta>),
    /// Nothing in any section changed (a package database rewritten with the
    /// same content, a file touched).
    Unchanged,
}

#[derive(Debug, Default)]
pub struct Tracker {
    last: Option<Sent>,
}

/// The last spooled report: its number, its section digests, and its
/// package list (to send package changes one by one).
#[derive(Debug)]
struct Sent {
    seq: u64,
    digests: Digests,
    packages: Option<Vec<Package>>,
}

impl Tracker {
    /// Splits `inventory` into what changed since the last spooled report.
    /// Call [`Tracker::spooled`] once the result is in the spool.
    pub fn next(&self, mut inventory: Inventory) -> (Next, Pending) {
        let pending = Pending {
            digests: digests(&inventory),
            packages: inventory.packages.clone(),
        };
        let Some(last) = &self.last else {
            return (Next::Full(Box::new(inventory)), pending);
        };
        let mut sections: Vec<&'static str> = Inventory::SECTIONS
            .iter()
            .copied()
            .filter(|s| last.digests.get(s) != pending.digests.get(s))
            .collect();
        if sections.is_empty() {
            return (Next::Unchanged, pending);
        }
        // Packages that were and still are readable go one by one.
        let packages_changed = match (&last.packages, &inventory.packages) {
            (Some(old), Some(new)) if sections.contains(&"packages") => {
                sections.retain(|s| *s != "packages");
                Some(PackageChanges::between(old, new))
            }
            _ => None,
        };
        if packages_changed.is_some() {
            inventory.packages = None;
        }
        let mut delta = Inventory {
            observed_at_ms: inventory.observed_at_ms,
            agent_version: std::mem::take(&mut inventory.agent_version),
            host: std::mem::take(&mut inventory.host),
            ..Inventory::default()
        };
        for name in &sections {
            delta.take_section(&mut inventory, name);
        }
        delta.probe_errors = std::mem::take(&mut inventory.probe_errors)
            .into_iter()
            .filter(|e| sections.contains(&e.probe.as_str()))
            .collect();
        let delta = InventoryDelta {
            base_seq: last.seq,
            sections: sections.iter().map(|s| (*s).to_owned()).collect(),
            inventory: delta,
            packages_changed,
        };
        (Next::Delta(Box::new(delta)), pending)
    }

    /// Records that the report numbered `seq` (full or delta) carrying
    /// `pending`'s state is in the spool.
    pub fn spooled(&mut self, seq: u64, pending: Pending) {
        self.last = Some(Sent {
            seq,
            digests: pending.digests,
            packages: pending.packages,
        });
    }

    /// Records a full inventory spooled as `seq`.
    pub fn spooled_full(&mut self, seq: u64, inventory: &Inventory) {
        self.last = Some(Sent {
            seq,
            digests: digests(inventory),
            packages: inventory.packages.clone(),
        });
    }
}

/// The state of an inventory about to be spooled.
#[derive(Debug)]
pub struct Pending {
    digests: Digests,
    packages: Option<Vec<Package>>,
}

fn digests(inventory: &Inventory) -> Digests {
    Inventory::SECTIONS
        .iter()
        .map(|name| {
            let bytes = inventory.section_bytes(name).expect("a known section");
            (*name, Sha256::digest(&bytes).into())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fathom_shared::wire::{Package, ProbeError, Unit};

    fn inventory(nginx: &str) -> Inventory {
        Inventory {
            observed_at_ms: 1,
            packages: Some(vec![Package {
                name: "nginx".into(),
                version: nginx.into(),
                manager: "dpkg".into(),
                ..Package::default()
            }]),
            units: Some(vec![Unit {
                name: "nginx.service".into(),
                state: "enabled".into(),
                active: None,
            }]),
            kernel_modules: None,
            probe_errors: vec![ProbeError {
                probe: "kernel_modules".into(),
                message: "no /proc".into(),
            }],
            ..Inventory::default()
        }
    }

    #[test]
    fn the_first_report_is_full_and_later_ones_carry_only_changes() {
        let mut tracker = Tracker::default();
        let (next, pending) = tracker.next(inventory("1.22"));
        assert!(matches!(next, Next::Full(_)));
        tracker.spooled(7, pending);

        let (next, pending) = tracker.next(inventory("1.22"));
        assert!(matches!(next, Next::Unchanged));
        tracker.spooled(7, pending);

        let (next, pending) = tracker.next(inventory("1.24"));
        let Next::Delta(delta) = next else {
            panic!("expected a delta, got {next:?}")
        };
        assert_eq!(delta.base_seq, 7);
        // The upgrade, one package, not the whole list.
        assert!(delta.sections.is_empty());
        let changes = delta.packages_changed.as_ref().unwrap();
        assert_eq!(changes.upsert.len(), 1);
        assert_eq!(changes.upsert[0].version, "1.24");
        assert!(changes.remove.is_empty());
        delta.validate().unwrap();
        assert_eq!(delta.inventory.packages, None);
        assert_eq!(delta.inventory.units, None);
        // The unchanged section's probe error stays behind too.
        assert!(delta.inventory.probe_errors.is_empty());
        // Applied to the base, the delta gives back the new inventory.
        let rebuilt = delta.apply_to(inventory("1.22"));
        assert_eq!(rebuilt, inventory("1.24"));
        tracker.spooled(8, pending);

        let (next, _) = tracker.next(inventory("1.22"));
        let Next::Delta(delta) = next else {
            panic!("expected a delta")
        };
        assert_eq!(delta.base_seq, 8);
    }

    #[test]
    fn a_section_that_became_unreadable_is_a_change() {
        let mut tracker = Tracker::default();
        let before = inventory("1.22");
        tracker.spooled_full(3, &before);
        let mut after = inventory("1.22");
        after.packages = None;
        after.probe_errors.push(ProbeError {
            probe: "packages".into(),
            message: "truncated".into(),
        });
        let (Next::Delta(delta), _) = tracker.next(after.clone()) else {
            panic!("expected a delta")
        };
        assert_eq!(delta.sections, ["packages"]);
        assert_eq!(delta.inventory.probe_errors.len(), 1);
        assert_eq!(delta.apply_to(before), after);
    }
}
