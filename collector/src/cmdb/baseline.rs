//! Configuration baselines: the recorded state of a set of CIs at a point
//! in time (e.g. before a release), and what changed since, or between two
//! baselines. Baselines restore nothing; they report everything.

use std::collections::BTreeMap;

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use super::action::ActionError;
use super::ci::CiRecord;
use super::history::{changes_between, Actor, FieldChange, Fields};
use super::rfc::Target;
use super::{encode, tx_get, Cmdb};
use crate::store::{Store, StoreError, Table};

/// One CI as a baseline recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineCi {
    pub id: CiId,
    pub class: String,
    pub name: String,
    /// Fields, authorized attributes and relationships.
    pub fields: Fields,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub name: String,
    pub description: String,
    pub taken_at_ms: i64,
    pub taken_by: Actor,
    /// What it covers; empty: every CI.
    pub targets: Vec<Target>,
    pub cis: Vec<BaselineCi>,
}

/// A baseline's listing entry (without the snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineSummary {
    pub name: String,
    pub description: String,
    pub taken_at_ms: i64,
    pub taken_by: Actor,
    pub targets: Vec<Target>,
    pub ci_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiDiff {
    pub id: CiId,
    pub name: String,
    pub changes: Vec<FieldChange>,
}

/// What differs between two states of a set of CIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineDiff {
    /// `baseline before-release (2026-11-20 10:00:00Z)` or `current CMDB`.
    pub from: String,
    pub to: String,
    pub added: Vec<BaselineCi>,
    pub removed: Vec<BaselineCi>,
    pub changed: Vec<CiDiff>,
    pub unchanged: usize,
}

/// Compares two snapshots, CI by CI.
pub fn diff(
    from: &[BaselineCi],
    to: &[BaselineCi],
    from_label: String,
    to_label: String,
) -> BaselineDiff {
    let before: BTreeMap<CiId, &BaselineCi> = from.iter().map(|c| (c.id, c)).collect();
    let after: BTreeMap<CiId, &BaselineCi> = to.iter().map(|c| (c.id, c)).collect();
    let mut out = BaselineDiff {
        from: from_label,
        to: to_label,
        added: vec![],
        removed: vec![],
        changed: vec![],
        unchanged: 0,
    };
    for (id, b) in &before {
        match after.get(id) {
            None => out.removed.push((*b).clone()),
            Some(a) => {
                let changes = changes_between(&b.fields, &a.fields);
                if changes.is_empty() {
                    out.unchanged += 1;
                } else {
                    out.changed.push(CiDiff {
                        id: *id,
                        name: a.name.clone(),
                        changes,
                    });
                }
            }
        }
    }
    for (id, a) in &after {
        if !before.contains_key(id) {
            out.added.push((*a).clone());
        }
    }
    out
}

impl<S: Store> Cmdb<S> {
    /// The current state of every CI the targets name (all when empty),
    /// merged CIs left out.
    pub fn snapshot(&self, targets: &[Target]) -> Result<Vec<BaselineCi>, StoreError> {
        let mut out = Vec::new();
        for ci in self.list_cis()? {
            if ci.merged_into.is_some()
                || !(targets.is_empty()
                    || targets
                        .iter()
                        .any(|t| t.matches(ci.id, &ci.class, &ci.name)))
            {
                continue;
            }
            out.push(self.baseline_ci(&ci)?);
        }
        Ok(out)
    }

    fn baseline_ci(&self, ci: &CiRecord) -> Result<BaselineCi, StoreError> {
        let mut fields = ci.fields();
        let (outgoing, _) = self.relationships_of(ci.id)?;
        for r in &outgoing {
            fields.insert(r.outgoing_field(), "present".into());
        }
        Ok(BaselineCi {
            id: ci.id,
            class: ci.class.clone(),
            name: ci.name.clone(),
            fields,
        })
    }

    pub fn take_baseline(
        &self,
        by: &Actor,
        name: &str,
        description: &str,
        targets: &[Target],
        now_ms: i64,
    ) -> Result<BaselineSummary, ActionError> {
        let valid = !name.is_empty()
            && name.len() <= 100
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            return Err(ActionError::Invalid(format!(
                "baseline name {name:?}: use 1–100 letters, digits, '-', '_' or '.'"
            )));
        }
        let baseline = Baseline {
            name: name.to_owned(),
            description: description.to_owned(),
            taken_at_ms: now_ms,
            taken_by: by.clone(),
            targets: targets.to_vec(),
            cis: self.snapshot(targets)?,
        };
        let bytes = encode(&baseline);
        let summary = baseline.summary();
        self.act_on(|tx| {
            if tx_get::<Baseline, ActionError>(tx, Table::Baselines, name.as_bytes())?.is_some() {
                return Err(crate::store::TxAbort::Abort(ActionError::Conflict(
                    format!("a baseline named {name} exists; baselines are never overwritten"),
                )));
            }
            tx.insert(Table::Baselines, name.as_bytes(), &bytes)?;
            super::action::trail_entry(
                tx,
                now_ms,
                by,
                "baseline.take",
                name.to_owned(),
                format!("{} CI(s)", baseline.cis.len()),
            )?;
            Ok(())
        })?;
        Ok(summary)
    }

    pub fn baseline(&self, name: &str) -> Result<Option<Baseline>, StoreError> {
        self.get(Table::Baselines, name.as_bytes())
    }

    pub fn list_baselines(&self) -> Result<Vec<BaselineSummary>, StoreError> {
        let mut all: Vec<BaselineSummary> = self
            .scan::<Baseline>(Table::Baselines, b"")?
            .iter()
            .map(Baseline::summary)
            .collect();
        all.sort_by_key(|b| b.taken_at_ms);
        Ok(all)
    }

    /// Baseline `from` against baseline `to`, or against the current CMDB
    /// (for the same targets) when `to` is `None`.
    pub fn diff_baseline(&self, from: &str, to: Option<&str>) -> Result<BaselineDiff, ActionError> {
        let load = |name: &str| -> Result<Baseline, ActionError> {
            self.baseline(name)?
                .ok_or_else(|| ActionError::NotFound(format!("no baseline named {name}")))
        };
        let a = load(from)?;
        let label = |b: &Baseline| {
            format!(
                "baseline {} ({})",
                b.name,
                fathom_support::time::format_ms(b.taken_at_ms)
            )
        };
        match to {
            Some(to) => {
                let b = load(to)?;
                Ok(diff(&a.cis, &b.cis, label(&a), label(&b)))
            }
            None => {
                let current = self.snapshot(&a.targets)?;
                Ok(diff(&a.cis, &current, label(&a), "current CMDB".into()))
            }
        }
    }
}

impl Baseline {
    pub fn summary(&self) -> BaselineSummary {
        BaselineSummary {
            name: self.name.clone(),
            description: self.description.clone(),
            taken_at_ms: self.taken_at_ms,
            taken_by: self.taken_by.clone(),
            targets: self.targets.clone(),
            ci_count: self.cis.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci(id: u64, fields: &[(&str, &str)]) -> BaselineCi {
        BaselineCi {
            id: CiId::from_u64(id),
            class: "server".into(),
            name: format!("h{id}"),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn diffs_name_added_removed_and_changed() {
        let before = vec![
            ci(1, &[("packages.nginx", "1.22")]),
            ci(2, &[]),
            ci(3, &[("status", "in_use")]),
        ];
        let after = vec![
            ci(1, &[("packages.nginx", "1.24")]),
            ci(3, &[("status", "in_use")]),
            ci(4, &[]),
        ];
        let d = diff(&before, &after, "a".into(), "b".into());
        assert_eq!(
            d.removed.iter().map(|c| c.id.as_u64()).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(
            d.added.iter().map(|c| c.id.as_u64()).collect::<Vec<_>>(),
            vec![4]
        );
        assert_eq!(d.unchanged, 1);
        assert_eq!(d.changed.len(), 1);
        assert_eq!(
            d.changed[0].changes,
            vec![FieldChange {
                field: "packages.nginx".into(),
                old: Some("1.22".into()),
                new: Some("1.24".into()),
            }]
        );
    }
}
