//! The configuration item record and its relationships.
//!
//! A CI holds its own fields (class, name, status, owner, location,
//! criticality…) and its **authorized state**: the attributes the CMDB
//! says it should have, changed only by registration, approved RFCs,
//! standard changes, retroactive approvals and informational discovery.
//! What discovery last saw is kept apart (the latest inventory per agent),
//! and the difference between the two is drift.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use fathom_shared::ids::{AgentId, CiId};
use serde::{Deserialize, Serialize};

use super::history::{Actor, Fields};
use super::identify::{Identifiers, Rule};
use crate::control::policy::Level;
pub use crate::ids::CiStatus;
use crate::ids::{DriftId, ReviewId, RfcId};
use crate::store::{Table, Tx, TxAbort};

/// How a CI came into the CMDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CiSource {
    Discovery,
    /// Created or imported by a person: racks, contracts, services…
    Manual,
}

/// A configuration item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiRecord {
    pub id: CiId,
    /// server, network_device, service, or any class a site defines.
    pub class: String,
    pub name: String,
    pub description: String,
    pub status: CiStatus,
    pub owner: Option<String>,
    pub location: Option<String>,
    pub criticality: Level,
    pub source: CiSource,
    /// The authorized state: `section.name` → value.
    pub attributes: BTreeMap<String, String>,
    /// Whether the authorized state has been established (registration).
    /// Unregistered CIs raise no drift.
    pub registered: bool,
    /// Attribute scopes the authorized state covers (see
    /// `control::attributes`); a scope discovery observes for the first
    /// time is recorded as found, not as drift.
    pub scopes: BTreeSet<String>,
    /// Bumped by every write; history entries are keyed by it.
    pub revision: u64,
    pub created_at_ms: i64,
    pub first_seen_ms: Option<i64>,
    /// When discovery last reported it; `None` for CIs never discovered.
    pub last_seen_ms: Option<i64>,
    /// The agent whose reports this CI was last updated from.
    pub reported_by: Option<AgentId>,
    /// Every agent that has reported for this CI, oldest first.
    pub agents: Vec<AgentId>,
    pub identifiers: Identifiers,
    /// How the CI was last identified, for the configuration manager.
    pub identified_by: IdentifiedBy,
    /// Open items of the identification review queue about this CI.
    pub reviews: BTreeSet<ReviewId>,
    /// Unauthorized drift still open, by attribute: what the CI's drift
    /// counts and lists show.
    pub open_drifts: BTreeMap<String, DriftId>,
    /// Drift seen reverted within the policy's flap window, by attribute:
    /// kept only so the same drift and incident reopen if the value comes
    /// back; not current drift.
    #[serde(default)]
    pub reverted_drifts: BTreeMap<String, DriftId>,
    /// Approved RFCs with a window that name this CI.
    pub scheduled_rfcs: BTreeSet<RfcId>,
    /// Set when an operator merged this CI into another.
    #[serde(default)]
    pub merged_into: Option<CiId>,
    /// The `connected_to` relationships this CI's polls made (its LLDP and
    /// CDP neighbours), with the ports; kept in step with each poll.
    #[serde(default)]
    pub discovered_links: BTreeMap<CiId, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentifiedBy {
    pub rule: Rule,
    pub detail: String,
}

impl CiRecord {
    /// A CI first seen by discovery, before registration.
    pub fn discovered(id: CiId, agent: AgentId, ids: &Identifiers, now_ms: i64) -> CiRecord {
        CiRecord {
            first_seen_ms: Some(now_ms),
            reported_by: Some(agent),
            identifiers: ids.clone(),
            identified_by: IdentifiedBy {
                rule: Rule::Agent,
                detail: format!("first discovered by agent {agent}; no existing CI matched"),
            },
            ..CiRecord::manual(id, "server", "", now_ms)
        }
        .with_source(CiSource::Discovery)
    }

    /// A CI a person creates.
    pub fn manual(id: CiId, class: &str, name: &str, now_ms: i64) -> CiRecord {
        CiRecord {
            id,
            class: class.to_owned(),
            name: name.to_owned(),
            description: String::new(),
            status: CiStatus::InUse,
            owner: None,
            location: None,
            criticality: Level::Medium,
            source: CiSource::Manual,
            attributes: BTreeMap::new(),
            registered: false,
            scopes: BTreeSet::new(),
            revision: 0,
            created_at_ms: now_ms,
            first_seen_ms: None,
            last_seen_ms: None,
            reported_by: None,
            agents: Vec::new(),
            identifiers: Identifiers::default(),
            identified_by: IdentifiedBy {
                rule: Rule::Agent,
                detail: "created by hand".into(),
            },
            reviews: BTreeSet::new(),
            open_drifts: BTreeMap::new(),
            reverted_drifts: BTreeMap::new(),
            scheduled_rfcs: BTreeSet::new(),
            merged_into: None,
            discovered_links: BTreeMap::new(),
        }
    }

    fn with_source(mut self, source: CiSource) -> CiRecord {
        self.source = source;
        self
    }

    /// The CI's own fields and authorized attributes as one flat map, the
    /// form history and baselines work on.
    pub fn fields(&self) -> Fields {
        let mut f = self.attributes.clone();
        f.insert("class".into(), self.class.clone());
        f.insert("name".into(), self.name.clone());
        f.insert("status".into(), self.status.as_str().into());
        f.insert("criticality".into(), self.criticality.as_str().into());
        if !self.description.is_empty() {
            f.insert("description".into(), self.description.clone());
        }
        if let Some(o) = &self.owner {
            f.insert("owner".into(), o.clone());
        }
        if let Some(l) = &self.location {
            f.insert("location".into(), l.clone());
        }
        if let Some(m) = &self.merged_into {
            f.insert("merged_into".into(), m.to_string());
        }
        f
    }

    /// Sets one CI field (`status`, `owner`…) from text; `None` clears
    /// the optional ones. Errors say what was wrong.
    pub fn set_field(&mut self, field: &str, value: Option<&str>) -> Result<(), String> {
        let required = |v: Option<&str>| {
            v.filter(|v| !v.trim().is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("{field} cannot be empty"))
        };
        match field {
            "class" => self.class = required(value)?,
            "name" => self.name = required(value)?,
            "description" => self.description = value.unwrap_or_default().to_owned(),
            "owner" => self.owner = value.map(str::to_owned),
            "location" => self.location = value.map(str::to_owned),
            "status" => {
                let v = required(value)?;
                self.status = CiStatus::parse(&v).ok_or_else(|| {
                    format!(
                        "{v:?} is not a status ({})",
                        CiStatus::ALL.map(|s| s.as_str()).join(", ")
                    )
                })?
            }
            "criticality" => {
                let v = required(value)?;
                self.criticality = match v.as_str() {
                    "high" => Level::High,
                    "medium" => Level::Medium,
                    "low" => Level::Low,
                    _ => return Err(format!("{v:?} is not a criticality (high, medium, low)")),
                }
            }
            other => {
                return Err(format!(
                    "{other:?} is not a CI field (class, name, description, status, owner, location, criticality)"
                ))
            }
        }
        Ok(())
    }

    /// Whether discovery has not heard from it for `stale_after_ms`.
    pub fn is_stale(&self, now_ms: i64, stale_after_ms: i64) -> bool {
        self.source == CiSource::Discovery
            && self.merged_into.is_none()
            && !matches!(self.status, CiStatus::Retired | CiStatus::Disposed)
            && self
                .last_seen_ms
                .is_some_and(|t| now_ms.saturating_sub(t) > stale_after_ms)
    }
}

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
