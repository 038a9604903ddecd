//! Relationships between CIs (`depends_on`, `runs_on`, `installed_on`,
//! `part_of`, `connected_to`…), stored both ways, and the operator actions
//! on them. Dependency relationships never form a loop.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use super::action::{abort, not_found, trail_entry, ActionError};
use super::ci::{load_ci, put_ci};
use super::history::{record_history, Actor, FieldChange, Why};
use super::rfc::Dependent;
use super::{ci_key, tx_get, Cmdb};
use crate::store::{Store, StoreError, Table, Tx, TxAbort};

/// The shortest path from `start` to `goal` (both included) over the
/// edges `next` gives for each CI, breadth first, each CI visited once.
pub(crate) fn shortest_path<E>(
    start: CiId,
    goal: CiId,
    mut next: impl FnMut(CiId) -> Result<Vec<CiId>, E>,
) -> Result<Option<Vec<CiId>>, E> {
    let mut came_from: BTreeMap<CiId, CiId> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        if at == goal {
            let mut path = vec![goal];
            while let Some(&p) = path.last().and_then(|c| came_from.get(c)) {
                path.push(p);
            }
            path.reverse();
            return Ok(Some(path));
        }
        for to in next(at)? {
            if to != start && !came_from.contains_key(&to) {
                came_from.insert(to, at);
                queue.push_back(to);
            }
        }
    }
    Ok(None)
}

/// Relationship types between CIs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    #[value(name = "runs_on", alias = "runs-on")]
    #[serde(alias = "runs-on")]
    RunsOn,
    #[value(name = "depends_on", alias = "depends-on")]
    #[serde(alias = "depends-on")]
    DependsOn,
    #[value(name = "connected_to", alias = "connected-to")]
    #[serde(alias = "connected-to")]
    ConnectedTo,
    #[value(name = "installed_on", alias = "installed-on")]
    #[serde(alias = "installed-on")]
    InstalledOn,
    #[value(name = "part_of", alias = "part-of")]
    #[serde(alias = "part-of")]
    PartOf,
}

impl RelationKind {
    pub const ALL: [RelationKind; 5] = [
        RelationKind::RunsOn,
        RelationKind::DependsOn,
        RelationKind::ConnectedTo,
        RelationKind::InstalledOn,
        RelationKind::PartOf,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RelationKind::RunsOn => "runs_on",
            RelationKind::DependsOn => "depends_on",
            RelationKind::ConnectedTo => "connected_to",
            RelationKind::InstalledOn => "installed_on",
            RelationKind::PartOf => "part_of",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    /// Kinds that say one CI needs or sits on another, so a loop of them
    /// is nonsense (a CI would depend on itself); `connected_to` is a
    /// cable, and cables may form rings.
    pub fn is_dependency(self) -> bool {
        self != RelationKind::ConnectedTo
    }

    pub fn from_code(code: u8) -> Option<RelationKind> {
        RelationKind::ALL.get(usize::from(code)).copied()
    }
}

impl fmt::Display for RelationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RelationKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        RelationKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a relationship type ({})",
                    RelationKind::ALL.map(|k| k.as_str()).join(", ")
                )
            })
    }
}

/// `from` *kind* `to`: e.g. `app-1 runs_on web-1`, `shop depends_on db-1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    pub from: CiId,
    pub kind: RelationKind,
    pub to: CiId,
    pub created_at_ms: i64,
    pub created_by: Actor,
    /// For a relationship discovery made (LLDP or CDP neighbours), the
    /// ports that link the two (`Gi1/0/1 ↔ eth0 (LLDP)`); `None` for one a
    /// person made, which discovery never changes.
    #[serde(default)]
    pub via: Option<String>,
}

impl Relationship {
    /// The history field on the `from` side.
    pub fn outgoing_field(&self) -> String {
        format!("relationship {} {}", self.kind, self.to)
    }

    /// The history field on the `to` side.
    pub fn incoming_field(&self) -> String {
        format!("relationship {} {} (incoming)", self.from, self.kind)
    }

    /// `from ‖ kind ‖ to`, the key in `relationships`.
    pub fn key(from: CiId, kind: RelationKind, to: CiId) -> [u8; 17] {
        let mut k = [0u8; 17];
        k[..8].copy_from_slice(&from.as_u64().to_be_bytes());
        k[8] = kind.code();
        k[9..].copy_from_slice(&to.as_u64().to_be_bytes());
        k
    }

    /// `to ‖ kind ‖ from`, the key in `relationships_reverse`.
    pub fn reverse_key(from: CiId, kind: RelationKind, to: CiId) -> [u8; 17] {
        Relationship::key(to, kind, from)
    }
}

/// Writes a relationship and its reverse index entry.
pub(crate) fn put_relationship<E>(tx: &dyn Tx, r: &Relationship) -> Result<(), TxAbort<E>> {
    tx.insert(
        Table::Relationships,
        &Relationship::key(r.from, r.kind, r.to),
        &super::encode(r),
    )?;
    tx.insert(
        Table::RelationshipsReverse,
        &Relationship::reverse_key(r.from, r.kind, r.to),
        &[],
    )?;
    Ok(())
}

/// Removes a relationship and its reverse index entry.
pub(crate) fn remove_relationship<E>(
    tx: &dyn Tx,
    from: CiId,
    kind: RelationKind,
    to: CiId,
) -> Result<(), TxAbort<E>> {
    tx.remove(Table::Relationships, &Relationship::key(from, kind, to))?;
    tx.remove(
        Table::RelationshipsReverse,
        &Relationship::reverse_key(from, kind, to),
    )?;
    Ok(())
}

/// Why `from kind to` is refused: the path back that it would close.
pub(crate) fn cycle_message(from: CiId, kind: RelationKind, to: CiId, back: &[CiId]) -> String {
    let path: Vec<String> = back.iter().map(ToString::to_string).collect();
    format!(
        "{from} {kind} {to} would close a loop, since {} already; a CI cannot depend on itself",
        path.join(&format!(" {kind} "))
    )
}

impl<S: Store> Cmdb<S> {
    /// The CIs on a path of `kind` relationships from `start` to `goal`,
    /// both included, if there is one.
    pub(crate) fn path(
        &self,
        start: CiId,
        goal: CiId,
        kind: RelationKind,
    ) -> Result<Option<Vec<CiId>>, StoreError> {
        shortest_path(start, goal, |at| {
            let mut prefix = ci_key(at).to_vec();
            prefix.push(kind.code());
            let next: Vec<Relationship> = self.scan(Table::Relationships, &prefix)?;
            Ok(next.into_iter().map(|r| r.to).collect())
        })
    }

    /// Relationships from and to a CI.
    pub fn relationships_of(
        &self,
        id: CiId,
    ) -> Result<(Vec<Relationship>, Vec<Relationship>), StoreError> {
        let outgoing: Vec<Relationship> = self.scan(Table::Relationships, &ci_key(id))?;
        let mut incoming = Vec::new();
        for (k, _) in self
            .store
            .scan_prefix(Table::RelationshipsReverse, &ci_key(id))?
        {
            let (Some(&kind), Some(Ok(from))) = (k.get(8), k.get(9..17).map(<[u8; 8]>::try_from))
            else {
                tracing::error!(key = %hex::encode(&k), "Corrupt reverse relationship key; skipped");
                continue;
            };
            let Some(kind) = RelationKind::from_code(kind) else {
                continue;
            };
            let key = Relationship::key(CiId::from_u64(u64::from_be_bytes(from)), kind, id);
            if let Some(r) = self.get::<Relationship>(Table::Relationships, &key)? {
                incoming.push(r);
            }
        }
        Ok((outgoing, incoming))
    }

    /// Adds (`present`) or removes a relationship, recorded in both CIs' history.
    #[allow(clippy::too_many_arguments)]
    pub fn relate(
        &self,
        by: &Actor,
        from: CiId,
        kind: RelationKind,
        to: CiId,
        present: bool,
        reason: &str,
        now_ms: i64,
    ) -> Result<Relationship, ActionError> {
        if from == to {
            return Err(ActionError::Invalid("a CI cannot relate to itself".into()));
        }
        if present && kind.is_dependency() {
            if let Some(path) = self.path(to, from, kind)? {
                return Err(ActionError::Invalid(cycle_message(from, kind, to, &path)));
            }
        }
        self.act(|tx| {
            let mut a = load_ci(tx, from)?;
            let mut b = load_ci(tx, to)?;
            let key = Relationship::key(from, kind, to);
            let existing = tx_get::<Relationship, _>(tx, Table::Relationships, &key)?;
            let rel = match (&existing, present) {
                (Some(r), true) => {
                    return abort(ActionError::Conflict(format!(
                        "{from} {kind} {to} exists already (since {})",
                        fathom_support::time::format_ms(r.created_at_ms)
                    )))
                }
                (None, false) => {
                    return not_found(format!("there is no relationship {from} {kind} {to}"))
                }
                (Some(r), false) => {
                    remove_relationship(tx, from, kind, to)?;
                    r.clone()
                }
                (None, true) => {
                    let r = Relationship {
                        from,
                        kind,
                        to,
                        created_at_ms: now_ms,
                        created_by: by.clone(),
                        via: None,
                    };
                    put_relationship(tx, &r)?;
                    r
                }
            };
            let (old, new) = if present {
                (None, Some("present".to_string()))
            } else {
                (Some("present".to_string()), None)
            };
            let why = Why::Manual {
                reason: reason.to_owned(),
            };
            for (ci, field) in [
                (&mut a, rel.outgoing_field()),
                (&mut b, rel.incoming_field()),
            ] {
                let change = FieldChange {
                    field,
                    old: old.clone(),
                    new: new.clone(),
                };
                record_history(tx, ci, now_ms, by, why.clone(), vec![change])?;
                put_ci(tx, ci)?;
            }
            let action = if present { "ci.relate" } else { "ci.unrelate" };
            trail_entry(
                tx,
                now_ms,
                by,
                action,
                from.to_string(),
                format!("{from} {kind} {to}: {reason}"),
            )?;
            Ok(rel)
        })
    }

    /// What depends on `cis`, transitively, through runs_on, depends_on,
    /// installed_on and part_of (pointing at them), and connected_to (either
    /// way, one hop).
    pub fn dependents(&self, cis: &[CiId]) -> Result<Vec<Dependent>, StoreError> {
        let mut seen: BTreeSet<CiId> = cis.iter().copied().collect();
        let mut queue: VecDeque<(CiId, Vec<String>)> = cis.iter().map(|c| (*c, vec![])).collect();
        let mut out = Vec::new();
        while let Some((ci, path)) = queue.pop_front() {
            let (outgoing, incoming) = self.relationships_of(ci)?;
            let hops = incoming.iter().map(|r| (r.from, r)).chain(
                outgoing
                    .iter()
                    .filter(|r| r.kind == RelationKind::ConnectedTo)
                    .map(|r| (r.to, r)),
            );
            for (next, r) in hops {
                if !seen.insert(next) {
                    continue;
                }
                let mut p = path.clone();
                p.push(format!("{} {} {}", r.from, r.kind, r.to));
                let name = self.ci(next)?.map(|c| c.name).unwrap_or_default();
                out.push(Dependent {
                    ci: next,
                    name,
                    path: p.clone(),
                });
                if r.kind != RelationKind::ConnectedTo {
                    queue.push_back((next, p));
                }
            }
        }
        Ok(out)
    }
}
