//! Which inventory sections changed since the last report, so a change on
//! the host goes out as a small delta rather than a whole inventory.
//!
//! The tracker remembers a digest of each section as last spooled, and the
//! sequence number of that report. The collector applies a delta only on top
//! of exactly that report; if one went missing on the way (dropped from a
//! full spool, refused), it answers `needs_full` and the agent sends a full
//! inventory, which resets the chain.

use std::collections::BTreeMap;

use fathom_shared::wire::{Inventory, InventoryDelta};
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
    last: Option<(u64, Digests)>,
}

impl Tracker {
    /// Splits `inventory` into what changed since the last spooled report.
    /// Call [`Tracker::spooled`] once the result is in the spool.
    pub fn next(&self, mut inventory: Inventory) -> (Next, Pending) {
        let digests = digests(&inventory);
        let Some((base_seq, last)) = &self.last else {
            return (Next::Full(Box::new(inventory)), Pending(digests));
        };
        let sections: Vec<&'static str> = Inventory::SECTIONS
            .iter()
            .copied()
            .filter(|s| last.get(s) != digests.get(s))
            .collect();
        if sections.is_empty() {
            return (Next::Unchanged, Pending(digests));
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
            base_seq: *base_seq,
            sections: sections.iter().map(|s| (*s).to_owned()).collect(),
            inventory: delta,
        };
        (Next::Delta(Box::new(delta)), Pending(digests))
    }

    /// Records that the report numbered `seq` (full or delta) carrying
    /// `pending`'s state is in the spool.
    pub fn spooled(&mut self, seq: u64, pending: Pending) {
        self.last = Some((seq, pending.0));
    }

    /// The digests of a full inventory that was spooled as `seq`.
    pub fn spooled_full(&mut self, seq: u64, inventory: &Inventory) {
        self.last = Some((seq, digests(inventory)));
    }
}

/// The section digests of an inventory about to be spooled.
#[derive(Debug)]
pub struct Pending(Digests);

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
        assert_eq!(delta.sections, ["packages"]);
        delta.validate().unwrap();
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
