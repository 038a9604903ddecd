//! `fathom ci`: list, show, history, create, edit, register, relate,
//! merge, split, the review queue, import and export.

use anyhow::{bail, Context};
use clap::Subcommand;
use fathom_collector::api::CiView;
use fathom_collector::cmdb::exchange::{Exchange, ExchangeCi, ExchangeRelationship, ImportReport};
use fathom_collector::cmdb::history::HistoryEntry;
use fathom_collector::cmdb::relationship::RelationKind;
use fathom_collector::cmdb::review::{ReviewItem, ReviewKind};
use fathom_collector::cmdb::CiRecord;
use fathom_shared::ids::CiId;
use fathom_support::now_ms;
use serde_json::{json, Value};

use super::client::Client;
use crate::output;
use crate::output::cmdb::{cis_csv, value, CI_COLUMNS};
/// `--start`/`--end` as a window; both or neither.
use crate::{print_json, print_record, Format};

pub(crate) fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{text:?} is not field=value"))
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// List configuration items (or, with --as-of, the whole CMDB as it was).
    List {
        /// Only this class.
        #[arg(long)]
        class: Option<String>,
        /// now, -7d, or a timestamp like 2026-11-01T00:00:00Z: every CI
        /// that existed then, with its fields as they were.
        #[arg(long, allow_hyphen_values = true)]
        as_of: Option<String>,
        /// Only CIs discovery has not heard from for the policy's stale_after.
        #[arg(long)]
        stale: bool,
        /// Also CIs merged into others (retired, kept for their history).
        #[arg(long)]
        all: bool,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The CI classes (built in and declared in the policy) with the
    /// attributes each requires and allows.
    Classes {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a CI: fields, authorized attributes, open drift, relationships,
    /// and its latest inventory; or, with --as-of, its fields at that time.
    Show {
        /// The CI: its id (ci-…; see `fathom ci list`) or its name, where
        /// no other CI has it.
        id: CiRef,
        /// now, -7d, or a timestamp like 2026-11-01T00:00:00Z.
        #[arg(long, allow_hyphen_values = true)]
        as_of: Option<String>,
        /// Only this section of its authorized attributes, in full
        /// (packages, listeners, units…); large sections are otherwise
        /// shown as a count.
        #[arg(long, conflicts_with = "as_of")]
        section: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Every write to a CI: who, when, why, and the previous values.
    History {
        /// The CI's id or unique name.
        id: CiRef,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a CI by hand (racks, services, contracts…).
    Create {
        /// The CI's class (see `fathom ci classes`).
        #[arg(long)]
        class: String,
        /// Its name.
        #[arg(long)]
        name: String,
        /// What it is.
        #[arg(long, default_value = "")]
        description: String,
        /// planned, in_use, maintenance, retired, disposed.
        #[arg(long)]
        status: Option<String>,
        /// Who is accountable for it.
        #[arg(long)]
        owner: Option<String>,
        /// Where it is (site, room, rack).
        #[arg(long)]
        location: Option<String>,
        /// high, medium or low (sets the impact of its incidents).
        #[arg(long)]
        criticality: Option<String>,
        /// An attribute, section.name=value (repeatable).
        #[arg(long = "attr", value_parser = key_value)]
        attributes: Vec<(String, String)>,
        /// Why (kept in the CI's history).
        #[arg(long)]
        reason: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Change CI fields (status, owner, location, criticality, name,
    /// description, class) or, on CIs created by hand, attributes.
    Edit {
        /// The CI's id or unique name.
        id: CiRef,
        /// field=value (repeatable).
        #[arg(long = "set", value_parser = key_value)]
        set: Vec<(String, String)>,
        /// A field to clear (repeatable).
        #[arg(long)]
        clear: Vec<String>,
        /// Why (kept in the CI's history and the audit trail).
        #[arg(long)]
        reason: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Take a discovered CI's latest inventory as its authorized state
    /// (needed when the policy says new_cis = "review").
    Register {
        /// The CI's id or unique name.
        id: CiRef,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The identification review queue: possible duplicates and new agent keys.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// Fold OTHER into KEEP (a rebuilt host, a duplicate): agents,
    /// identifiers, inventories and relationships move; OTHER stays, marked
    /// merged, with its history.
    Merge {
        /// The CI that stays.
        keep: CiId,
        /// The CI folded into KEEP (it is retired, pointing at KEEP).
        other: CiId,
        /// Why (kept in the CI's history and the audit trail).
        #[arg(long)]
        reason: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Move one agent off a CI onto a new CI (undo a wrong match).
    Split {
        /// The CI.
        id: CiId,
        /// The agent to move (its id; see `fathom agent list`).
        #[arg(long)]
        agent: fathom_shared::ids::AgentId,
        /// Why (kept in the CI's history and the audit trail).
        #[arg(long)]
        reason: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Export CIs and relationships (JSON, or CSV: CIs, or relationships
    /// with --relationships).
    Export {
        /// Only CIs of this class.
        #[arg(long)]
        class: Option<String>,
        /// json (the document `ci import` reads back), csv, or table.
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        /// Same as --format csv.
        #[arg(long, conflicts_with = "format")]
        csv: bool,
        /// With --format csv: the relationships instead of the CIs.
        #[arg(long)]
        relationships: bool,
    },
    /// Import CIs (and relationships) from a JSON export, or from CSV files:
    /// CIs (columns id, class, name, description, status, owner, location,
    /// criticality, and attr:<section.name>) and, with --relationships, a
    /// CSV of from, kind, to. One transaction: all rows or none.
    Import {
        /// The file to import: a JSON export, or a CSV of CIs.
        file: std::path::PathBuf,
        /// A CSV of relationships to import too (columns from, kind, to).
        #[arg(long)]
        relationships: Option<std::path::PathBuf>,
        /// Show what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Why (kept in the CI's history and the audit trail).
        #[arg(long)]
        reason: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a relationship: FROM KIND TO, e.g. `ci-3 runs_on ci-1`.
    Relate {
        /// The CI the relationship goes from: its id or unique name.
        from: CiRef,
        /// The relationship kind: runs_on, depends_on, connected_to, installed_on or part_of.
        #[arg(value_enum)]
        kind: RelationKind,
        /// The CI it goes to: its id or unique name.
        to: CiRef,
        /// Why (kept in the CI's history and the audit trail).
        #[arg(long)]
        reason: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a relationship.
    Unrelate {
        /// The CI the relationship goes from: its id or unique name.
        from: CiRef,
        /// The relationship kind: runs_on, depends_on, connected_to, installed_on or part_of.
        #[arg(value_enum)]
        kind: RelationKind,
        /// The CI it goes to: its id or unique name.
        to: CiRef,
        /// Why (kept in the CI's history and the audit trail).
        #[arg(long)]
        reason: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// List review items.
    List {
        /// Only open ones.
        #[arg(long)]
        open: bool,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Close an item without merging (distinct CIs, or a legitimate new key).
    Dismiss {
        /// The review item (REV-…).
        id: fathom_api::ids::ReviewId,
        /// A note for the record.
        #[arg(long)]
        note: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn ci(client: &Client, command: CiCommand) -> anyhow::Result<()> {
    match command {
        CiCommand::List {
            class,
            as_of: Some(at),
            json,
            ..
        } => {
            let at_ms = output::parse_time(&at, now_ms()).map_err(anyhow::Error::msg)?;
            let mut then: std::collections::BTreeMap<
                String,
                std::collections::BTreeMap<String, String>,
            > = client.get(&format!("v1/cmdb-as-of?at_ms={at_ms}")).await?;
            if let Some(c) = &class {
                then.retain(|_, f| f.get("class") == Some(c));
            }
            if json {
                return print_json(&then);
            }
            println!("The CMDB as of {}", output::time(at_ms));
            let field = |f: &std::collections::BTreeMap<String, String>, k: &str| {
                f.get(k).cloned().unwrap_or_else(|| "-".into())
            };
            let rows: Vec<Vec<String>> = then
                .iter()
                .map(|(id, f)| {
                    vec![
                        id.clone(),
                        field(f, "class"),
                        field(f, "name"),
                        field(f, "status"),
                        field(f, "criticality"),
                        field(f, "owner"),
                        f.len().to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(
                    &[
                        "CI",
                        "CLASS",
                        "NAME",
                        "STATUS",
                        "CRITICALITY",
                        "OWNER",
                        "FIELDS"
                    ],
                    &rows
                )
            );
        }
        CiCommand::List {
            class,
            stale,
            all,
            json,
            as_of: None,
        } => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(c) = &class {
                query.append_pair("class", c);
            }
            if stale {
                query.append_pair("stale", "true");
            }
            if all {
                query.append_pair("merged", "true");
            }
            let path = format!("v1/cis?{}", query.finish());
            let cis: Vec<CiView> = client.get(&path).await?;
            if json {
                return print_json(&cis);
            }
            print!("{}", output::cmdb::ci_table(&cis));
        }
        CiCommand::Classes { json } => {
            let classes: Vec<fathom_collector::control::classes::CiClass> =
                client.get("v1/classes").await?;
            if json {
                return print_json(&classes);
            }
            let list = |v: Vec<String>| {
                if v.is_empty() {
                    "-".to_owned()
                } else {
                    v.join(", ")
                }
            };
            let rows: Vec<Vec<String>> = classes
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.description.clone(),
                        list(c.required.clone()),
                        list(c.allowed.iter().map(ToString::to_string).collect()),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["CLASS", "DESCRIPTION", "REQUIRED", "ALLOWED"], &rows)
            );
        }
        CiCommand::Show {
            id,
            section: Some(section),
            json,
            ..
        } => {
            let id = id.resolve(client).await?;
            let shown: Value = client.get(&format!("v1/cis/{id}")).await?;
            let ci: CiRecord = serde_json::from_value(shown["ci"].clone())?;
            if json {
                let picked: std::collections::BTreeMap<&String, &String> = ci
                    .attributes
                    .iter()
                    .filter(|(k, _)| {
                        fathom_collector::control::attributes::section_of(k) == section
                    })
                    .collect();
                return print_json(&picked);
            }
            print!("{}", output::cmdb::describe_section(&ci, &section));
        }
        CiCommand::Show {
            id,
            as_of: Some(at),
            json,
            ..
        } => {
            let id = id.resolve(client).await?;
            let at_ms = output::parse_time(&at, now_ms()).map_err(anyhow::Error::msg)?;
            let fields: Value = client
                .get(&format!("v1/cis/{id}/as-of?at_ms={at_ms}"))
                .await?;
            print_record(json, &fields, || {
                let mut out = format!("{id} as of {}\n", output::time(at_ms));
                let rows: Vec<Vec<String>> = fields
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| vec![format!("  {k}"), v.as_str().unwrap_or_default().to_owned()])
                    .collect();
                out.push_str(&output::table(&["  FIELD", "VALUE"], &rows));
                Ok(out)
            })?;
        }
        CiCommand::Show {
            id,
            as_of: None,
            section: None,
            json,
        } => {
            let id = id.resolve(client).await?;
            let shown: Value = client.get(&format!("v1/cis/{id}")).await?;
            print_record(json, &shown, || output::cmdb::ci_shown(&shown))?;
        }
        CiCommand::History { id, json } => {
            let id = id.resolve(client).await?;
            let history: Vec<HistoryEntry> = client.get(&format!("v1/cis/{id}/history")).await?;
            if json {
                return print_json(&history);
            }
            for h in &history {
                println!(
                    "r{} {} by {}: {}",
                    h.revision,
                    output::time(h.at_ms),
                    h.actor,
                    h.why
                );
                for c in h.changes.iter().take(20) {
                    println!("    {}: {} → {}", c.field, value(&c.old), value(&c.new));
                }
                if h.changes.len() > 20 {
                    println!("    … and {} more (--json lists all)", h.changes.len() - 20);
                }
            }
        }
        CiCommand::Create {
            class,
            name,
            description,
            status,
            owner,
            location,
            criticality,
            attributes,
            reason,
            json,
        } => {
            let body = json!({
                "class": class, "name": name, "description": description, "status": status,
                "owner": owner, "location": location, "criticality": criticality,
                "attributes": attributes.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
                "reason": reason,
            });
            let ci: Value = client.post("v1/cis", &body).await?;
            print_record(json, &ci, || {
                Ok(format!(
                    "created {} ({} {})\n",
                    ci["id"].as_str().unwrap_or_default(),
                    class,
                    name
                ))
            })?;
        }
        CiCommand::Edit {
            id,
            set,
            clear,
            reason,
            json,
        } => {
            let id = id.resolve(client).await?;
            let mut fields = serde_json::Map::new();
            for (k, v) in set {
                fields.insert(k, Value::String(v));
            }
            for k in clear {
                fields.insert(k, Value::Null);
            }
            if fields.is_empty() {
                bail!("nothing to change: give --set field=value or --clear field");
            }
            let ci: Value = client
                .post(
                    &format!("v1/cis/{id}/edit"),
                    &json!({"set": fields, "reason": reason}),
                )
                .await?;
            print_record(json, &ci, || {
                Ok(format!("updated {id} (revision {})\n", ci["revision"]))
            })?;
        }
        CiCommand::Register { id, json } => {
            let id = id.resolve(client).await?;
            let ci: Value = client
                .post(&format!("v1/cis/{id}/register"), &json!({}))
                .await?;
            print_record(json, &ci, || {
                Ok(format!(
                    "registered {id}: {} authorized attributes\n",
                    ci["attributes"].as_object().map_or(0, |a| a.len())
                ))
            })?;
        }
        CiCommand::Review(ReviewCommand::List { open, json }) => {
            let items: Vec<ReviewItem> = client
                .get(if open {
                    "v1/reviews?open=true"
                } else {
                    "v1/reviews"
                })
                .await?;
            if json {
                return print_json(&items);
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|i| {
                    let (what, cis) = match &i.kind {
                        ReviewKind::PossibleDuplicate { ci, existing, .. } => {
                            ("possible duplicate", format!("{ci} ~ {existing}"))
                        }
                        ReviewKind::NewAgentKey { ci, agent_id, .. } => {
                            ("new agent key", format!("{ci} ← {agent_id}"))
                        }
                    };
                    vec![
                        i.id.to_string(),
                        format!("{:?}", i.status).to_lowercase(),
                        what.to_owned(),
                        cis,
                        output::time(i.raised_at_ms),
                        i.kind.reason().to_owned(),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["REVIEW", "STATUS", "KIND", "CIS", "RAISED", "WHY"], &rows)
            );
            if items
                .iter()
                .any(|i| i.status == fathom_collector::cmdb::review::ReviewStatus::Open)
            {
                println!("\nSettle with `fathom ci merge KEEP OTHER --reason …` or `fathom ci review dismiss ID --note …`.");
            }
        }
        CiCommand::Review(ReviewCommand::Dismiss { id, note, json }) => {
            let item: Value = client
                .post(
                    &format!("v1/reviews/{id}/dismiss"),
                    &json!({"comment": note}),
                )
                .await?;
            print_record(json, &item, || Ok(format!("{id} dismissed\n")))?;
        }
        CiCommand::Merge {
            keep,
            other,
            reason,
            json,
        } => {
            let ci: Value = client
                .post(
                    &format!("v1/cis/{keep}/merge"),
                    &json!({"other": other, "reason": reason}),
                )
                .await?;
            print_record(json, &ci, || Ok(format!("merged {other} into {keep}\n")))?;
        }
        CiCommand::Split {
            id,
            agent,
            reason,
            json,
        } => {
            let ci: Value = client
                .post(
                    &format!("v1/cis/{id}/split"),
                    &json!({"agent": agent, "reason": reason}),
                )
                .await?;
            print_record(json, &ci, || {
                Ok(format!(
                    "agent {agent} now reports for {}\n",
                    ci["id"].as_str().unwrap_or_default()
                ))
            })?;
        }
        CiCommand::Export {
            class,
            format,
            csv,
            relationships,
        } => {
            let format = if csv { Format::Csv } else { format };
            exchange_export(client, class, format, relationships).await?
        }
        CiCommand::Import {
            file,
            relationships,
            dry_run,
            reason,
            json,
        } => {
            exchange_import(
                client,
                &file,
                relationships.as_deref(),
                dry_run,
                reason,
                json,
            )
            .await?
        }
        CiCommand::Relate {
            from,
            kind,
            to,
            reason,
            json,
        } => {
            let (from, to) = (from.resolve(client).await?, to.resolve(client).await?);
            relate(client, from, kind, to, true, reason, json).await?
        }
        CiCommand::Unrelate {
            from,
            kind,
            to,
            reason,
            json,
        } => {
            let (from, to) = (from.resolve(client).await?, to.resolve(client).await?);
            relate(client, from, kind, to, false, reason, json).await?
        }
    }
    Ok(())
}

/// A CI as people name it on the command line: `ci-12` (any case), or a
/// name no other CI has.
#[derive(Debug, Clone)]
pub enum CiRef {
    Id(CiId),
    Name(String),
}

impl std::str::FromStr for CiRef {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<CiRef, Self::Err> {
        Ok(match s.parse::<CiId>() {
            Ok(id) => CiRef::Id(id),
            Err(_) => CiRef::Name(s.trim().to_owned()),
        })
    }
}

impl CiRef {
    /// The CI's id; a name is looked up, and must be one CI's.
    pub async fn resolve(self, client: &Client) -> anyhow::Result<CiId> {
        let name = match self {
            CiRef::Id(id) => return Ok(id),
            CiRef::Name(name) => name,
        };
        let cis: Vec<CiView> = client.get("v1/cis").await?;
        let named: Vec<&CiRecord> = cis
            .iter()
            .map(|v| &v.ci)
            .filter(|c| c.merged_into.is_none() && c.name == name)
            .collect();
        match named.as_slice() {
            [one] => Ok(one.id),
            [] => bail!(
                "no CI is named {} (give a CI id like ci-12, or a name from `fathom ci list`)",
                output::quoted(&name)
            ),
            many => bail!(
                "{} CIs are named {}: {}; give the id",
                many.len(),
                output::quoted(&name),
                many.iter()
                    .map(|c| format!("{} ({})", c.id, c.class))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// `ci relate` and `ci unrelate`.
async fn relate(
    client: &Client,
    from: CiId,
    kind: RelationKind,
    to: CiId,
    present: bool,
    reason: String,
    json: bool,
) -> anyhow::Result<()> {
    let r: Value = client
        .post(
            "v1/relationships",
            &json!({"from": from, "kind": kind, "to": to, "present": present, "reason": reason}),
        )
        .await?;
    print_record(json, &r, || {
        Ok(format!(
            "{} {from} {kind} {to}\n",
            if present { "added" } else { "removed" }
        ))
    })
}

/// Reads a CI CSV; errors name the line.
pub fn read_cis_csv(text: &str, file: &str) -> anyhow::Result<Vec<ExchangeCi>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r
        .headers()
        .with_context(|| format!("{file}: cannot read the header"))?
        .clone();
    for required in ["class", "name"] {
        if !headers.iter().any(|h| h == required) {
            bail!("{file}: the header has no {required:?} column");
        }
    }
    for h in headers.iter() {
        if !CI_COLUMNS.contains(&h) && !h.starts_with("attr:") {
            bail!(
                "{file}: unknown column {h:?} (columns: {}, and attr:<section.name>)",
                CI_COLUMNS.join(", ")
            );
        }
    }
    let mut out = Vec::new();
    for (i, record) in r.records().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(i + 2, |p| p.line() as usize);
        let record = record.with_context(|| format!("{file}, line {line}"))?;
        // A column the file has: its cell, empty to clear. One it does
        // not have: `None`, leaving the CI's value alone.
        let cell = |col: &str| -> Option<String> {
            headers
                .iter()
                .position(|h| h == col)
                .map(|p| record.get(p).unwrap_or_default().trim().to_owned())
        };
        let get = |col: &str| cell(col).filter(|v| !v.is_empty());
        let mut ci = ExchangeCi {
            id: match get("id") {
                Some(id) => Some(
                    id.parse()
                        .map_err(|e| anyhow::anyhow!("{file}, line {line}: {e}"))?,
                ),
                None => None,
            },
            class: get("class")
                .ok_or_else(|| anyhow::anyhow!("{file}, line {line}: class is empty"))?,
            name: get("name")
                .ok_or_else(|| anyhow::anyhow!("{file}, line {line}: name is empty"))?,
            description: cell("description"),
            status: get("status"),
            owner: cell("owner"),
            location: cell("location"),
            criticality: get("criticality"),
            attributes: Default::default(),
        };
        for (h, v) in headers.iter().zip(record.iter()) {
            if let Some(attr) = h.strip_prefix("attr:") {
                ci.attributes.insert(attr.to_owned(), v.trim().to_owned());
            }
        }
        out.push(ci);
    }
    Ok(out)
}

pub(crate) fn read_relationships_csv(
    text: &str,
    file: &str,
) -> anyhow::Result<Vec<ExchangeRelationship>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, record) in r.deserialize::<ExchangeRelationship>().enumerate() {
        out.push(
            record.with_context(|| format!("{file}, row {} (columns: from, kind, to)", i + 2))?,
        );
    }
    Ok(out)
}

pub async fn exchange_export(
    client: &Client,
    class: Option<String>,
    format: Format,
    relationships: bool,
) -> anyhow::Result<()> {
    let path = match &class {
        Some(c) => format!("v1/export?class={c}"),
        None => "v1/export".into(),
    };
    let doc: Exchange = client.get(&path).await?;
    match format {
        Format::Json => print_json(&doc)?,
        Format::Table => {
            let rows: Vec<Vec<String>> = doc
                .cis
                .iter()
                .map(|c| {
                    let opt =
                        |v: &Option<String>| v.as_deref().map_or_else(|| "-".into(), str::to_owned);
                    vec![
                        c.id.map_or_else(|| "-".into(), |i| i.to_string()),
                        c.class.clone(),
                        c.name.clone(),
                        opt(&c.status),
                        opt(&c.owner),
                        opt(&c.location),
                        opt(&c.criticality),
                        c.attributes.len().to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(
                    &[
                        "CI",
                        "CLASS",
                        "NAME",
                        "STATUS",
                        "OWNER",
                        "LOCATION",
                        "CRITICALITY",
                        "ATTRIBUTES"
                    ],
                    &rows
                )
            );
            println!(
                "{} relationship(s); --format json for the whole document",
                doc.relationships.len()
            );
        }
        Format::Csv if relationships => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for r in &doc.relationships {
                w.serialize(r)?;
            }
            let text = String::from_utf8(w.into_inner()?)?;
            print!(
                "{}",
                if text.is_empty() {
                    "from,kind,to\n".into()
                } else {
                    text
                }
            );
        }
        Format::Csv => print!("{}", cis_csv(&doc)?),
    }
    Ok(())
}

pub async fn exchange_import(
    client: &Client,
    file: &std::path::Path,
    relationships: Option<&std::path::Path>,
    dry_run: bool,
    reason: String,
    json: bool,
) -> anyhow::Result<()> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let text = read(file)?;
    let name = file.display().to_string();
    let mut doc = if name.ends_with(".json") || text.trim_start().starts_with('{') {
        serde_json::from_str::<Exchange>(&text)
            .with_context(|| format!("{name} is not a Fathom export"))?
    } else {
        Exchange {
            cis: read_cis_csv(&text, &name)?,
            relationships: vec![],
        }
    };
    if let Some(rel) = relationships {
        doc.relationships.extend(read_relationships_csv(
            &read(rel)?,
            &rel.display().to_string(),
        )?);
    }
    let report: ImportReport = client
        .post(
            "v1/import",
            &json!({"document": doc, "reason": reason, "dry_run": dry_run}),
        )
        .await?;
    if json {
        return print_json(&report);
    }
    println!(
        "{}{} created, {} updated, {} unchanged; {} relationship(s) added, {} already there",
        if dry_run {
            "dry run (nothing written): "
        } else {
            ""
        },
        report.created.len(),
        report.updated.len(),
        report.unchanged,
        report.relationships_added,
        report.relationships_existing
    );
    if !report.changes.is_empty() {
        let shown = |v: &Option<String>| {
            v.as_deref()
                .map_or_else(|| "(empty)".into(), output::quoted)
        };
        let rows: Vec<Vec<String>> = report
            .changes
            .iter()
            .map(|c| {
                vec![
                    c.ci.to_string(),
                    c.name.clone(),
                    c.field.clone(),
                    shown(&c.old),
                    shown(&c.new),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(&["CI", "NAME", "FIELD", "OLD", "NEW"], &rows)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_references_are_ids_in_any_case_or_names() {
        assert!(matches!("CI-4".parse::<CiRef>(), Ok(CiRef::Id(id)) if id.to_string() == "ci-4"));
        assert!(matches!("shop".parse::<CiRef>(), Ok(CiRef::Name(n)) if n == "shop"));
    }
}
