//! Import and export of CIs and relationships, for what no agent discovers
//! (racks, contracts, SLAs, services) and as a portable copy of the CMDB.
//!
//! The exchange document is JSON (`{"cis": [...], "relationships": [...]}`);
//! the CLI also reads and writes it as CSV. An import is one transaction:
//! every row applies or none does. Rows with an `id` update that CI; rows
//! without one match an existing CI by class and name, or create one.
//! An update changes only what the row says: a field or attribute the row
//! leaves out (a column the CSV does not have, a key the JSON does not
//! have, `null`) is left alone, and an empty value clears it. A dry run
//! lists every field it would change, old → new.
//! Relationship ends name a CI by id (`ci-12`) or by name. Attributes of
//! discovered CIs are not importable (they change through discovery and
//! RFCs), except the service-level ones people keep on any CI
//! (`availability.*`, `maintenance.*`, `redundancy.*`); exporting and
//! importing the same document changes nothing.

use std::collections::BTreeMap;

use fathom_shared::ids::CiId;
use serde::{Deserialize, Serialize};

use super::action::{trail_entry, ActionError};
use super::ci::{check_against_model, kept_by_people, CiRecord, CiSource};
use super::history::{changes_between, record_history, Actor, FieldChange, Fields, Why};
use super::relationship::{
    cycle_message, put_relationship, shortest_path, RelationKind, Relationship,
};
use super::{ci_key, encode, next_id, tx_get, Cmdb, Counter};
use crate::store::{Store, StoreError, Table, TransactionError, Tx, TxAbort};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeCi {
    #[serde(default)]
    pub id: Option<CiId>,
    pub class: String,
    pub name: String,
    /// `None` leaves it as it is; `""` clears it (likewise `owner`,
    /// `location` and each attribute).
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub criticality: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRelationship {
    /// `ci-12`, or a CI's name.
    pub from: String,
    pub kind: RelationKind,
    pub to: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub cis: Vec<ExchangeCi>,
    #[serde(default)]
    pub relationships: Vec<ExchangeRelationship>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub dry_run: bool,
    pub created: Vec<CiId>,
    pub updated: Vec<CiId>,
    pub unchanged: usize,
    pub relationships_added: usize,
    pub relationships_existing: usize,
    /// Every field the import changes (or, in a dry run, would change).
    #[serde(default)]
    pub changes: Vec<ImportChange>,
}

/// One field an import changes on one CI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportChange {
    pub ci: CiId,
    pub name: String,
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

enum Abort {
    Error(ActionError),
    DryRun(ImportReport),
}

impl From<ActionError> for Abort {
    fn from(e: ActionError) -> Self {
        Abort::Error(e)
    }
}

/// An error about a row, naming the row first.
fn named(what: &str, e: ActionError) -> ActionError {
    match e {
        ActionError::Invalid(m) => ActionError::Invalid(format!("{what}: {m}")),
        ActionError::Conflict(m) => ActionError::Conflict(format!("{what}: {m}")),
        other => other,
    }
}

fn invalid<T>(message: String) -> Result<T, TxAbort<Abort>> {
    Err(TxAbort::Abort(Abort::Error(ActionError::Invalid(message))))
}

impl ExchangeCi {
    fn from_record(ci: &CiRecord) -> ExchangeCi {
        ExchangeCi {
            id: Some(ci.id),
            class: ci.class.clone(),
            name: ci.name.clone(),
            description: Some(ci.description.clone()),
            status: Some(ci.status.as_str().into()),
            owner: ci.owner.clone(),
            location: ci.location.clone(),
            criticality: Some(ci.criticality.as_str().into()),
            attributes: ci.attributes.clone(),
        }
    }

    /// Applies the CI fields this row has to `ci`; `what` names the row.
    fn apply_fields(&self, ci: &mut CiRecord, what: &str) -> Result<(), ActionError> {
        let set = |ci: &mut CiRecord, field: &str, value: Option<&str>| {
            ci.set_field(field, value)
                .map_err(|e| ActionError::Invalid(format!("{what}: {e}")))
        };
        set(ci, "class", Some(&self.class))?;
        set(ci, "name", Some(&self.name))?;
        for (field, value) in [("status", &self.status), ("criticality", &self.criticality)] {
            if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
                set(ci, field, Some(v))?;
            }
        }
        for (field, value) in [
            ("description", &self.description),
            ("owner", &self.owner),
            ("location", &self.location),
        ] {
            if let Some(v) = value {
                set(ci, field, Some(v.trim()).filter(|v| !v.is_empty()))?;
            }
        }
        Ok(())
    }

    /// Applies the row's attributes to `attributes`: each one it names is
    /// set, or removed when empty; the rest stay.
    fn apply_attributes(&self, attributes: &mut BTreeMap<String, String>) {
        for (k, v) in &self.attributes {
            match v.trim() {
                "" => attributes.remove(k),
                v => attributes.insert(k.clone(), v.to_owned()),
            };
        }
    }
}

impl<S: Store> Cmdb<S> {
    pub fn export(&self, class: Option<&str>) -> Result<Exchange, StoreError> {
        let cis: Vec<CiRecord> = self
            .list_cis()?
            .into_iter()
            .filter(|c| c.merged_into.is_none() && class.is_none_or(|k| c.class == k))
            .collect();
        let mut relationships = Vec::new();
        for ci in &cis {
            let (outgoing, _) = self.relationships_of(ci.id)?;
            relationships.extend(outgoing.into_iter().map(|r| ExchangeRelationship {
                from: r.from.to_string(),
                kind: r.kind,
                to: r.to.to_string(),
            }));
        }
        Ok(Exchange {
            cis: cis.iter().map(ExchangeCi::from_record).collect(),
            relationships,
        })
    }

    pub fn import(
        &self,
        by: &Actor,
        doc: &Exchange,
        reason: &str,
        dry_run: bool,
        now_ms: i64,
    ) -> Result<ImportReport, ActionError> {
        if reason.trim().is_empty() {
            return Err(ActionError::Invalid("say why (--reason)".into()));
        }
        // Who is who, read before the transaction (which cannot scan).
        let existing: Vec<(CiId, String, String)> = self
            .list_cis()?
            .into_iter()
            .filter(|c| c.merged_into.is_none())
            .map(|c| (c.id, c.class, c.name))
            .collect();
        // Dependencies as they stand, so that no imported one closes a loop.
        let mut standing: BTreeMap<(CiId, RelationKind), Vec<CiId>> = BTreeMap::new();
        if doc.relationships.iter().any(|r| r.kind.is_dependency()) {
            for r in self.scan::<Relationship>(Table::Relationships, b"")? {
                if r.kind.is_dependency() {
                    standing.entry((r.from, r.kind)).or_default().push(r.to);
                }
            }
        }
        let result = self.store.transaction(|tx| {
            let mut import = Importer {
                tx,
                by,
                now_ms,
                policy: self.policy(),
                existing: &existing,
                dependencies: standing.clone(),
                by_name: BTreeMap::new(),
                why: Why::Import {
                    reason: reason.to_owned(),
                },
                report: ImportReport {
                    dry_run,
                    ..ImportReport::default()
                },
            };
            for (id, _, name) in &existing {
                import.by_name.entry(name.clone()).or_default().push(*id);
            }
            for (i, row) in doc.cis.iter().enumerate() {
                import.ci(i, row)?;
            }
            for (i, r) in doc.relationships.iter().enumerate() {
                import.relationship(i, r)?;
            }
            let report = import.report;
            if dry_run {
                return Err(TxAbort::Abort(Abort::DryRun(report)));
            }
            trail_entry_import(tx, now_ms, by, &report, reason)?;
            Ok(report)
        });
        match result {
            Ok(r) => Ok(r),
            Err(TransactionError::Aborted(Abort::DryRun(r))) => Ok(r),
            Err(TransactionError::Aborted(Abort::Error(e))) => Err(e),
            Err(TransactionError::Store(s)) => Err(ActionError::Store(s)),
        }
    }
}

/// One import inside its transaction: rows of CIs, then relationships,
/// each checked as people's edits are, with what it did in `report`.
struct Importer<'a> {
    tx: &'a dyn Tx,
    by: &'a Actor,
    now_ms: i64,
    policy: &'a crate::control::policy::Policy,
    /// Every CI not merged away: id, class, name.
    existing: &'a [(CiId, String, String)],
    /// Dependencies as they stand plus those imported so far.
    dependencies: BTreeMap<(CiId, RelationKind), Vec<CiId>>,
    /// CI ids by name, for relationships naming CIs.
    by_name: BTreeMap<String, Vec<CiId>>,
    why: Why,
    report: ImportReport,
}

impl Importer<'_> {
    /// Row `i`: updates the CI it names (by id, else by class and name)
    /// or creates one.
    fn ci(&mut self, i: usize, row: &ExchangeCi) -> Result<(), TxAbort<Abort>> {
        let what = format!("CI {} ({:?})", i + 1, row.name);
        for k in row.attributes.keys() {
            if !k.contains('.') || k.starts_with('.') || k.ends_with('.') {
                return invalid(format!("{what}: attribute {k:?} is not `section.name`"));
            }
        }
        let target = match row.id {
            Some(id) => Some(id),
            None => {
                let same: Vec<CiId> = self
                    .existing
                    .iter()
                    .filter(|(_, class, name)| *class == row.class && *name == row.name)
                    .map(|(id, _, _)| *id)
                    .collect();
                match same.as_slice() {
                    [] => None,
                    [one] => Some(*one),
                    _ => {
                        return invalid(format!(
                            "{what}: several CIs are {} {:?}; give the id",
                            row.class, row.name
                        ))
                    }
                }
            }
        };
        match target {
            Some(id) => self.update(id, row, &what),
            None => self.create(row, &what),
        }
    }

    fn update(&mut self, id: CiId, row: &ExchangeCi, what: &str) -> Result<(), TxAbort<Abort>> {
        let tx = self.tx;
        let Some(mut ci) = tx_get::<CiRecord, Abort>(tx, Table::Cis, &ci_key(id))? else {
            return invalid(format!("{what}: there is no {id}"));
        };
        let as_was = ci.clone();
        let before = ci.fields();
        row.apply_fields(&mut ci, what)
            .map_err(|e| TxAbort::Abort(e.into()))?;
        let mut attributes = ci.attributes.clone();
        row.apply_attributes(&mut attributes);
        if ci.source != CiSource::Manual {
            let refused = attributes
                .keys()
                .chain(ci.attributes.keys())
                .find(|k| attributes.get(*k) != ci.attributes.get(*k) && !kept_by_people(k));
            if let Some(k) = refused {
                return invalid(format!(
                    "{what}: {id} is discovered; its attribute {k} changes through discovery and RFCs, not imports"
                ));
            }
        }
        ci.attributes = attributes;
        check_against_model(self.policy, Some(&as_was), &ci)
            .map_err(|e| TxAbort::Abort(named(what, e).into()))?;
        let changes = changes_between(&before, &ci.fields());
        if changes.is_empty() {
            self.report.unchanged += 1;
            return Ok(());
        }
        self.report
            .changes
            .extend(changes.iter().map(|c| ImportChange {
                ci: id,
                name: ci.name.clone(),
                field: c.field.clone(),
                old: c.old.clone(),
                new: c.new.clone(),
            }));
        record_history(tx, &mut ci, self.now_ms, self.by, self.why.clone(), changes)?;
        tx.insert(Table::Cis, &ci_key(id), &encode(&ci))?;
        self.report.updated.push(id);
        Ok(())
    }

    fn create(&mut self, row: &ExchangeCi, what: &str) -> Result<(), TxAbort<Abort>> {
        let tx = self.tx;
        let id = CiId::from_u64(next_id(tx, Counter::Ci)?);
        let mut ci = CiRecord::manual(id, &row.class, &row.name, self.now_ms);
        row.apply_fields(&mut ci, what)
            .map_err(|e| TxAbort::Abort(e.into()))?;
        row.apply_attributes(&mut ci.attributes);
        check_against_model(self.policy, None, &ci)
            .map_err(|e| TxAbort::Abort(named(what, e).into()))?;
        ci.registered = true;
        let changes = changes_between(&Fields::new(), &ci.fields());
        self.report
            .changes
            .extend(changes.iter().map(|c| ImportChange {
                ci: id,
                name: ci.name.clone(),
                field: c.field.clone(),
                old: None,
                new: c.new.clone(),
            }));
        record_history(tx, &mut ci, self.now_ms, self.by, self.why.clone(), changes)?;
        tx.insert(Table::Cis, &ci_key(id), &encode(&ci))?;
        self.by_name.entry(row.name.clone()).or_default().push(id);
        self.report.created.push(id);
        Ok(())
    }

    /// A CI a relationship row names: an id, or a name no other CI has.
    fn resolve(&self, text: &str, what: &str) -> Result<CiId, TxAbort<Abort>> {
        if let Ok(id) = text.parse::<CiId>() {
            return Ok(id);
        }
        match self.by_name.get(text).map(Vec::as_slice) {
            Some([one]) => Ok(*one),
            Some([]) | None => invalid(format!("{what}: no CI named {text:?}")),
            Some(_) => invalid(format!(
                "{what}: several CIs are named {text:?}; use its id"
            )),
        }
    }

    /// Relationship row `i`: added unless it exists; a dependency that
    /// would close a loop is refused.
    fn relationship(&mut self, i: usize, r: &ExchangeRelationship) -> Result<(), TxAbort<Abort>> {
        let tx = self.tx;
        let what = format!("relationship {} ({} {} {})", i + 1, r.from, r.kind, r.to);
        let (from, to) = (self.resolve(&r.from, &what)?, self.resolve(&r.to, &what)?);
        if from == to {
            return invalid(format!("{what}: a CI cannot relate to itself"));
        }
        let key = Relationship::key(from, r.kind, to);
        if tx.get(Table::Relationships, &key)?.is_some() {
            self.report.relationships_existing += 1;
            return Ok(());
        }
        if r.kind.is_dependency() {
            let dependencies = &self.dependencies;
            let next = |at: CiId| {
                Ok::<_, ()>(dependencies.get(&(at, r.kind)).cloned().unwrap_or_default())
            };
            if let Ok(Some(back)) = shortest_path(to, from, next) {
                return invalid(format!(
                    "{what}: {}",
                    cycle_message(from, r.kind, to, &back)
                ));
            }
            self.dependencies
                .entry((from, r.kind))
                .or_default()
                .push(to);
        }
        let mut ends = Vec::new();
        for id in [from, to] {
            match tx_get::<CiRecord, Abort>(tx, Table::Cis, &ci_key(id))? {
                Some(ci) => ends.push(ci),
                None => return invalid(format!("{what}: there is no {id}")),
            }
        }
        let rel = Relationship {
            from,
            kind: r.kind,
            to,
            created_at_ms: self.now_ms,
            created_by: self.by.clone(),
            via: None,
        };
        put_relationship(tx, &rel)?;
        for (ci, field) in ends
            .iter_mut()
            .zip([rel.outgoing_field(), rel.incoming_field()])
        {
            let change = FieldChange {
                field,
                old: None,
                new: Some("present".into()),
            };
            record_history(tx, ci, self.now_ms, self.by, self.why.clone(), vec![change])?;
            tx.insert(Table::Cis, &ci_key(ci.id), &encode(ci))?;
        }
        self.report.relationships_added += 1;
        Ok(())
    }
}

fn trail_entry_import(
    tx: &dyn Tx,
    now_ms: i64,
    by: &Actor,
    report: &ImportReport,
    reason: &str,
) -> Result<(), TxAbort<Abort>> {
    trail_entry(
        tx,
        now_ms,
        by,
        "ci.import",
        "cmdb".into(),
        format!(
            "{} created, {} updated, {} unchanged, {} relationship(s) added: {reason}",
            report.created.len(),
            report.updated.len(),
            report.unchanged,
            report.relationships_added
        ),
    )
    .map_err(|e| match e {
        TxAbort::Engine(c) => TxAbort::Engine(c),
        TxAbort::Abort(a) => TxAbort::Abort(Abort::Error(a)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::cmdb;
    use crate::test_support::{new_ci, operator};

    #[test]
    fn dependency_loops_are_refused_by_relate_and_by_import() {
        let (_d, c) = cmdb();
        let ci = |name: &str| {
            c.create_ci(&operator(), &new_ci("service", name, &[]), "t", 0)
                .unwrap()
                .id
        };
        let (a, b, d) = (ci("a"), ci("b"), ci("d"));
        let relate = |from, kind, to| c.relate(&operator(), from, kind, to, true, "t", 0);
        relate(a, RelationKind::DependsOn, b).unwrap();
        relate(b, RelationKind::DependsOn, d).unwrap();
        let err = relate(d, RelationKind::DependsOn, a)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{a} depends_on {b} depends_on {d}")),
            "{err}"
        );
        // Cables may form a ring; other kinds are their own graphs.
        relate(d, RelationKind::ConnectedTo, a).unwrap();
        relate(d, RelationKind::RunsOn, a).unwrap();

        let doc = |from: &str, to: &str| Exchange {
            cis: Vec::new(),
            relationships: vec![ExchangeRelationship {
                from: from.into(),
                kind: RelationKind::DependsOn,
                to: to.into(),
            }],
        };
        let err = c
            .import(&operator(), &doc("d", "a"), "t", true, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("loop") && err.contains("relationship 1"),
            "{err}"
        );
        // A loop within the document itself.
        let mut two = doc("a", "d");
        two.relationships.push(ExchangeRelationship {
            from: "d".into(),
            kind: RelationKind::DependsOn,
            to: "b".into(),
        });
        let err = c.import(&operator(), &two, "t", true, 0).unwrap_err();
        assert!(err.to_string().contains("relationship 2"), "{err}");
    }

    #[test]
    fn classes_come_from_the_model_and_statuses_follow_the_lifecycle() {
        let (_d, c) = cmdb();
        let err = c
            .create_ci(&operator(), &new_ci("serverr", "x", &[]), "t", 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean server?"), "{err}");
        let id = c
            .create_ci(&operator(), &new_ci("server", "x", &[]), "t", 0)
            .unwrap()
            .id;
        let edit = |field: &str, value: &str| {
            let set = vec![(field.to_owned(), Some(value.to_owned()))];
            c.edit_ci(&operator(), id, &set, "t", 1)
        };
        assert!(edit("class", "spaceship").is_err());
        edit("status", "retired").unwrap();
        edit("status", "disposed").unwrap();
        let err = edit("status", "in_use").unwrap_err();
        assert!(matches!(err, ActionError::Conflict(_)), "{err}");
        assert!(err.to_string().contains("disposed is final"), "{err}");
        // An import is held to the same rules, naming the row.
        let doc = Exchange {
            cis: vec![ExchangeCi {
                id: Some(id),
                class: "server".into(),
                name: "x".into(),
                status: Some("planned".into()),
                ..ExchangeCi::default()
            }],
            relationships: Vec::new(),
        };
        let err = c
            .import(&operator(), &doc, "t", true, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("CI 1") && err.contains("disposed"), "{err}");
    }

    #[test]
    fn an_import_leaves_alone_what_it_does_not_name() {
        let (_d, c) = cmdb();
        let mut new = new_ci("rack", "r1", &[("rack.units", "42")]);
        new.location = Some("hall A".into());
        new.owner = Some("facilities".into());
        let id = c.create_ci(&operator(), &new, "t", 0).unwrap().id;
        let row = |f: fn(&mut ExchangeCi)| {
            let mut row = ExchangeCi {
                id: Some(id),
                class: "rack".into(),
                name: "r1".into(),
                ..ExchangeCi::default()
            };
            f(&mut row);
            Exchange {
                cis: vec![row],
                relationships: Vec::new(),
            }
        };
        let report = c.import(&operator(), &row(|_| {}), "t", false, 1).unwrap();
        assert_eq!((report.unchanged, report.changes.len()), (1, 0));
        let kept = c.ci(id).unwrap().unwrap();
        assert_eq!(kept.location.as_deref(), Some("hall A"));
        assert_eq!(
            kept.attributes.get("rack.units").map(String::as_str),
            Some("42")
        );

        let clear = |r: &mut ExchangeCi| {
            r.owner = Some(String::new());
            r.attributes.insert("rack.units".into(), String::new());
            r.attributes.insert("rack.row".into(), "7".into());
        };
        let dry = c.import(&operator(), &row(clear), "t", true, 2).unwrap();
        let mut said: Vec<(String, Option<String>, Option<String>)> = dry
            .changes
            .iter()
            .map(|ch| (ch.field.clone(), ch.old.clone(), ch.new.clone()))
            .collect();
        said.sort();
        assert_eq!(
            said,
            vec![
                ("owner".into(), Some("facilities".into()), None),
                ("rack.row".into(), None, Some("7".into())),
                ("rack.units".into(), Some("42".into()), None),
            ]
        );
        assert_eq!(
            c.ci(id).unwrap().unwrap().owner.as_deref(),
            Some("facilities")
        );
    }
}
