//! `fathom ci|rfc|drift|incident|audit …`: the CMDB commands. Each talks to
//! the collector's API; every listing and record has `--json`, which prints
//! the API's JSON unchanged.

use anyhow::{bail, Context};
use clap::Subcommand;
use fathom_api::ids::{DriftId, IncidentId, RfcId};
use fathom_collector::api::CiView;
use fathom_collector::cmdb::audit::AuditReport;
use fathom_collector::cmdb::baseline::{Baseline, BaselineDiff, BaselineSummary};
use fathom_collector::cmdb::drift::{DriftRecord, DriftStatus};
use fathom_collector::cmdb::exchange::{Exchange, ExchangeCi, ExchangeRelationship, ImportReport};
use fathom_collector::cmdb::history::{HistoryEntry, TrailEntry};
use fathom_collector::cmdb::incident::{Incident, IncidentStatus};
use fathom_collector::cmdb::relationship::RelationKind;
use fathom_collector::cmdb::review::{ReviewItem, ReviewKind};
use fathom_collector::cmdb::rfc::{ReviewOutcome, Rfc, RfcImpact, RfcLevel, Window};
use fathom_collector::cmdb::CiRecord;
use fathom_collector::control::policy::Level;
use fathom_shared::ids::CiId;
use fathom_support::now_ms;
use serde_json::{json, Value};

use super::client::Client;
use super::print_json;
use crate::output;
use crate::output::cmdb::{
    audit_csv, cis_csv, describe_audit, describe_incident, describe_rfc, drift_row, rfc_rows,
    value, verdict, CI_COLUMNS, DRIFT_HEADERS, RFC_HEADERS,
};
/// `--start`/`--end` as a window; both or neither.
#[derive(Debug, Clone, clap::Args)]
pub struct WindowArgs {
    /// Window start: now, +2h, or a timestamp like 2026-11-23T22:00:00Z.
    #[arg(long, requires = "end", allow_hyphen_values = true)]
    start: Option<String>,
    /// Window end: a timestamp, or a duration after --start (+26h, 90m).
    #[arg(long, requires = "start", allow_hyphen_values = true)]
    end: Option<String>,
}

impl WindowArgs {
    fn window(&self) -> anyhow::Result<Option<Window>> {
        let now = now_ms();
        match (&self.start, &self.end) {
            (Some(s), Some(e)) => {
                let start_ms = output::parse_time(s, now)
                    .map_err(anyhow::Error::msg)
                    .context("--start")?;
                // A duration is a length: relative to the start, not to now.
                let e = e.trim();
                let end_ms = if e.starts_with('-') {
                    bail!("--end {e:?}: give a timestamp, or a duration after --start like +26h");
                } else if let Some(length) = e.strip_prefix('+').or_else(|| {
                    e.starts_with(|c: char| c.is_ascii_digit())
                        .then_some(e)
                        .filter(|e| output::parse_duration_secs(e).is_ok())
                }) {
                    let secs = output::parse_duration_secs(length)
                        .map_err(anyhow::Error::msg)
                        .context("--end")?;
                    start_ms.saturating_add(
                        i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX),
                    )
                } else {
                    output::parse_time(e, now)
                        .map_err(anyhow::Error::msg)
                        .context("--end")?
                };
                if end_ms <= start_ms {
                    bail!("--end must be after --start");
                }
                Ok(Some(Window { start_ms, end_ms }))
            }
            _ => Ok(None),
        }
    }
}

fn key_value(text: &str) -> Result<(String, String), String> {
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

#[derive(Debug, Subcommand)]
pub enum RfcCommand {
    /// List RFCs.
    List {
        /// Only this status (new, approved, scheduled, implemented…).
        #[arg(long)]
        status: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show an RFC with its assessment, decision, evidence and log.
    Show {
        /// The RFC (RFC-…).
        id: RfcId,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Raise a request for change.
    Raise {
        /// A one-line title.
        #[arg(long)]
        title: String,
        /// A CI id or a selector like class=server,name=web-* (repeatable).
        #[arg(long = "target", required = true)]
        targets: Vec<String>,
        /// An expected change, e.g. 'packages.nginx: 1.24.*' (repeatable).
        #[arg(long = "spec")]
        specs: Vec<String>,
        /// standard, normal or emergency.
        #[arg(long, value_enum, default_value = "normal")]
        level: RfcLevel,
        /// minor, or major (reviewed by a change advisory board).
        #[arg(long, value_enum, default_value = "minor")]
        impact: RfcImpact,
        /// high, medium or low.
        #[arg(long, value_enum, default_value = "medium")]
        risk: Level,
        /// install, upgrade, patch, migration, decommission…
        #[arg(long = "type", default_value = "change")]
        change_type: String,
        /// What it is.
        #[arg(long, default_value = "")]
        description: String,
        /// Why (kept in the CI's history and the audit trail).
        #[arg(long, default_value = "")]
        reason: String,
        /// The implementation plan.
        #[arg(long, default_value = "")]
        plan: String,
        /// The back-out (remediation) plan.
        #[arg(long, default_value = "")]
        backout: String,
        #[command(flatten)]
        window: WindowArgs,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Assess: resolve the targets and find what depends on them.
    Assess {
        /// The RFC (RFC-…).
        id: RfcId,
        /// high, medium or low.
        #[arg(long, value_enum, default_value = "medium")]
        risk: Level,
        /// The assessment's notes.
        #[arg(long, default_value = "")]
        notes: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Approve (with a window it is scheduled at once). Approving a
    /// missing-RFC draft accepts its changes into the CMDB.
    Approve {
        /// The RFC (RFC-…).
        id: RfcId,
        /// A comment for the record (kept in its log and the audit trail).
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        window: WindowArgs,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Reject. For a missing-RFC draft, the change must be reverted; its
    /// incident resolves when discovery sees that.
    Reject {
        /// The RFC (RFC-…).
        id: RfcId,
        /// A comment for the record (kept in its log and the audit trail).
        #[arg(long)]
        comment: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set or move the window.
    Schedule {
        /// The RFC (RFC-…).
        id: RfcId,
        #[command(flatten)]
        window: WindowArgs,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Mark implemented, applying CI-field specs (status: retired…).
    Implement {
        /// The RFC (RFC-…).
        id: RfcId,
        /// A comment for the record (kept in its log and the audit trail).
        #[arg(long, default_value = "")]
        comment: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Post-implementation review.
    Review {
        /// The RFC (RFC-…).
        id: RfcId,
        /// successful or failed.
        #[arg(long, value_enum)]
        outcome: ReviewOutcome,
        /// A comment for the record (kept in its log and the audit trail).
        #[arg(long, default_value = "")]
        comment: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Close a reviewed, rejected or failed RFC.
    Close {
        /// The RFC (RFC-…).
        id: RfcId,
        /// A comment for the record (kept in its log and the audit trail).
        #[arg(long, default_value = "")]
        comment: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Cancel an RFC not carried out.
    Cancel {
        /// The RFC (RFC-…).
        id: RfcId,
        /// A comment for the record (kept in its log and the audit trail).
        #[arg(long, default_value = "")]
        comment: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Trends: volumes by status, level and type, emergency share,
    /// unauthorized changes, success rate, lead times.
    Stats {
        /// Since when (default: the last 30 days): -90d, or a timestamp.
        #[arg(long, allow_hyphen_values = true, default_value = "-30d")]
        since: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The forward schedule of change: approved RFCs by window.
    ForwardSchedule {
        /// From when (default now).
        #[arg(long, allow_hyphen_values = true)]
        from: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DriftCommand {
    /// List drift records (differences discovery found, and their verdicts).
    List {
        /// Only drift in this status.
        #[arg(long, value_enum)]
        status: Option<DriftStatus>,
        /// Only this CI's.
        #[arg(long)]
        ci: Option<CiId>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Explain one: which policy rule, RFC or standard change decided it.
    Show {
        /// The drift record (DRIFT-…).
        id: DriftId,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// List incidents.
    List {
        /// Only those not resolved or closed.
        #[arg(long)]
        open: bool,
        /// Only those in this status.
        #[arg(long, value_enum)]
        status: Option<IncidentStatus>,
        /// Only this priority (1 to 4, or P1 to P4).
        #[arg(long)]
        priority: Option<String>,
        /// Only those about this CI (its id or unique name).
        #[arg(long)]
        ci: Option<CiRef>,
        /// Only this category (unauthorized_change, unplanned_outage,
        /// capacity, or one a person gave).
        #[arg(long)]
        category: Option<String>,
        /// Only those past their due time and still open.
        #[arg(long)]
        overdue: bool,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show an incident: priority, due time, links, resolution and log.
    Show {
        /// The incident (INC-…).
        id: IncidentId,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Record an incident by hand.
    Raise {
        /// A one-line title.
        #[arg(long)]
        title: String,
        /// What was seen.
        #[arg(long, default_value = "")]
        symptom: String,
        /// high, medium or low; with the urgency, sets the priority.
        #[arg(long, value_enum)]
        impact: Level,
        /// high, medium or low; with the impact, sets the priority.
        #[arg(long, value_enum)]
        urgency: Level,
        /// Affected CI (repeatable).
        #[arg(long = "ci")]
        cis: Vec<CiId>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Assign, change status, priority or the major flag, or add a note.
    Update {
        /// The incident (INC-…).
        id: IncidentId,
        /// The new status.
        #[arg(long, value_enum)]
        status: Option<IncidentStatus>,
        /// Who works it.
        #[arg(long)]
        assignee: Option<String>,
        /// Whether it is a major incident (true or false).
        #[arg(long)]
        major: Option<bool>,
        /// high, medium or low; with the urgency, sets the priority.
        #[arg(long, value_enum)]
        impact: Option<Level>,
        /// high, medium or low; with the impact, sets the priority.
        #[arg(long, value_enum)]
        urgency: Option<Level>,
        /// A note for the incident's log (required with --force).
        #[arg(long)]
        note: Option<String>,
        /// Resolve or close it although drift it was raised for is still
        /// open; recorded in the audit trail with the note.
        #[arg(long)]
        force: bool,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The configuration audit report: accuracy, mismatches by class and
    /// section, unregistered, never or no longer discovered, duplicates
    /// pending, and the verification sample for a physical audit.
    Report {
        /// Seed of the sample draw (default: today's date); the same seed
        /// draws the same sample.
        #[arg(long)]
        seed: Option<u64>,
        /// table, json or csv (the CIs, then a summary).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Same as --format json.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Same as --format csv.
        #[arg(long)]
        csv: bool,
    },
    /// Record an audit: today's figures, the sample, and the deficiencies
    /// found with their corrective actions.
    Record {
        /// A note for the record.
        #[arg(long, default_value = "")]
        note: String,
        /// The seed of the report whose sample was verified.
        #[arg(long)]
        seed: u64,
        /// `ci-12|what is wrong|corrective action[|owner[|due date]]` (the
        /// CI may be empty; repeatable).
        #[arg(long = "deficiency", value_parser = parse_deficiency)]
        deficiencies: Vec<fathom_collector::cmdb::audit::Deficiency>,
        /// A sampled CI checked by hand: `ci-12|matches|what was
        /// checked[|who]`, result matches, differs or not_found
        /// (repeatable).
        #[arg(long = "verified", value_parser = parse_verification)]
        verifications: Vec<fathom_collector::cmdb::audit::Verification>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Close a deficiency of a recorded audit once its corrective action is done.
    CloseDeficiency {
        /// The audit (AUD-…).
        audit: fathom_api::ids::AuditId,
        /// The deficiency's number in that audit, from 1.
        number: usize,
        /// What was done.
        #[arg(long)]
        note: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Deficiencies of every recorded audit, with owner, due date and
    /// closure.
    Deficiencies {
        /// Only those still open.
        #[arg(long)]
        open: bool,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Recorded audits.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The audit trail: every operator action, oldest first.
    Trail {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

fn parse_deficiency(text: &str) -> Result<fathom_collector::cmdb::audit::Deficiency, String> {
    let parts: Vec<&str> = text.splitn(5, '|').collect();
    let (ci, description, action, owner, due) = match parts.as_slice() {
        [ci, d, a] => (ci, d, a, None, None),
        [ci, d, a, o] => (ci, d, a, Some(o), None),
        [ci, d, a, o, due] => (ci, d, a, Some(o), Some(due)),
        _ => {
            return Err(format!(
                "{text:?}: write it as `ci-12|what is wrong|corrective action[|owner[|due date]]`"
            ))
        }
    };
    let ci = match ci.trim() {
        "" => None,
        c => Some(c.parse::<CiId>().map_err(|e| e.to_string())?),
    };
    let due_ms = due
        .map(|d| {
            let d = d.trim();
            // A date alone is due by the end of that day, UTC.
            let text = if d.len() == 10 {
                format!("{d}T23:59:59Z")
            } else {
                d.to_owned()
            };
            output::parse_time(&text, now_ms())
        })
        .transpose()?;
    Ok(fathom_collector::cmdb::audit::Deficiency {
        ci,
        description: description.trim().to_owned(),
        corrective_action: action.trim().to_owned(),
        owner: owner.map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()),
        due_ms,
        closed: None,
    })
}

fn parse_verification(text: &str) -> Result<fathom_collector::cmdb::audit::Verification, String> {
    use clap::ValueEnum;
    let parts: Vec<&str> = text.splitn(4, '|').collect();
    let (ci, result, checked, by) = match parts.as_slice() {
        [ci, r, c] => (ci, r, c, ""),
        [ci, r, c, b] => (ci, r, c, *b),
        _ => {
            return Err(format!(
                "{text:?}: write it as `ci-12|matches|what was checked[|who checked]` \
                 (result: matches, differs or not_found)"
            ))
        }
    };
    Ok(fathom_collector::cmdb::audit::Verification {
        ci: ci.trim().parse::<CiId>().map_err(|e| e.to_string())?,
        result: fathom_collector::cmdb::audit::VerificationResult::from_str(result.trim(), true)?,
        checked: checked.trim().to_owned(),
        by: by.trim().to_owned(),
        at_ms: 0,
    })
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Record the current state of all CIs, or of the targets given.
    Take {
        /// Letters, digits, '-', '_' and '.'; never overwritten.
        name: String,
        /// A CI id or a selector like class=server (repeatable).
        #[arg(long = "target")]
        targets: Vec<String>,
        /// What it is.
        #[arg(long, default_value = "")]
        description: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List baselines.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Every CI and field a baseline recorded.
    Show {
        /// The baseline's name.
        name: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// What changed since a baseline (or between two, with --against).
    Diff {
        /// The baseline's name.
        name: String,
        /// The other baseline, or `now` for the CMDB as it is.
        #[arg(long)]
        against: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn print_record(
    json: bool,
    value: &Value,
    human: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    if json {
        return print_json(value);
    }
    // Records quote what agents sent (names, values): terminal-safe.
    print!("{}", output::clean_text(&human()?));
    Ok(())
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
            print!("{}", super::describe_section(&ci, &section));
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

pub async fn drift(client: &Client, command: DriftCommand) -> anyhow::Result<()> {
    match command {
        DriftCommand::List { status, ci, json } => {
            let mut path = "v1/drift?".to_string();
            if let Some(s) = status {
                path.push_str(&format!("status={}&", s.as_str()));
            }
            if let Some(c) = ci {
                path.push_str(&format!("ci={c}"));
            }
            let drifts: Vec<DriftRecord> = client.get(&path).await?;
            if json {
                return print_json(&drifts);
            }
            let rows: Vec<Vec<String>> = drifts.iter().map(drift_row).collect();
            print!("{}", output::table(DRIFT_HEADERS, &rows));
        }
        DriftCommand::Show { id, json } => {
            /// Members of a mass change `drift show` lists.
            const MASS_MEMBERS_SHOWN: usize = 20;
            let d: DriftRecord = client.get(&format!("v1/drift/{id}")).await?;
            if json {
                return print_json(&d);
            }
            use std::fmt::Write;
            let mut out = String::new();
            let _ = writeln!(
                out,
                "{}  {} on {} ({}, class {})",
                d.id, d.attribute, d.ci_name, d.ci, d.class
            );
            let _ = writeln!(out, "authorized   {}", value(&d.authorized));
            let _ = writeln!(out, "discovered   {}", value(&d.discovered));
            let _ = writeln!(out, "kind         {}", d.kind);
            let _ = writeln!(out, "status       {}", d.status.as_str());
            let _ = writeln!(out, "verdict      {}", verdict(&d));
            let _ = writeln!(out, "policy rule  {}", d.decision.policy_rule);
            let _ = writeln!(out, "first seen   {}", output::time(d.first_seen_ms));
            let _ = writeln!(
                out,
                "last seen    {} ({} observation(s), {} flip(s))",
                output::time(d.last_seen_ms),
                d.observation_count,
                d.flips
            );
            if let Some(i) = d.incident {
                let _ = writeln!(out, "incident     {i}");
            }
            if let Some(r) = d.missing_rfc {
                let _ = writeln!(out, "missing RFC  {r}");
            }
            if let Some(res) = &d.resolution {
                let _ = writeln!(
                    out,
                    "settled      {} by {}: {res}",
                    d.resolved_at_ms.map(output::time).unwrap_or_default(),
                    d.resolved_by
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                );
            }
            if d.is_mass_change() {
                let open = d.members.iter().filter(|m| m.open).count();
                let _ = writeln!(
                    out,
                    "\nmass change: {} attribute(s), {open} still open (the first {} shown; --json lists all)",
                    d.members.len(),
                    d.members.len().min(MASS_MEMBERS_SHOWN)
                );
                for m in d.members.iter().take(MASS_MEMBERS_SHOWN) {
                    let _ = writeln!(
                        out,
                        "  {} {}: {} → {}",
                        if m.open { "open  " } else { "closed" },
                        m.attribute,
                        value(&m.authorized),
                        value(&m.discovered)
                    );
                }
            }
            let _ = writeln!(out, "\nwhy");
            for line in &d.decision.explanation {
                let _ = writeln!(out, "  - {line}");
            }
            let _ = writeln!(out, "\nobservations");
            for o in &d.observations {
                let _ = writeln!(
                    out,
                    "  {} {} (report {} of agent {})",
                    output::time(o.at_ms),
                    value(&o.value),
                    o.seq,
                    o.agent_id
                );
            }
            if !d.earlier.is_empty() {
                let _ = writeln!(
                    out,
                    "\nearlier decisions (until a later observation replaced them)"
                );
                for e in &d.earlier {
                    let _ = writeln!(
                        out,
                        "  until {}: {} ({}): {}",
                        output::time(e.until_ms),
                        value(&e.value),
                        e.kind,
                        e.decision.explanation.join(" ")
                    );
                }
            }
            print!("{}", output::clean_text(&out));
        }
    }
    Ok(())
}

pub async fn rfc(client: &Client, command: RfcCommand) -> anyhow::Result<()> {
    let act = |id: RfcId, action: &'static str, body: Value, json: bool| async move {
        let r: Value = client
            .post(&format!("v1/rfcs/{id}/{action}"), &body)
            .await?;
        if json {
            return print_json(&r);
        }
        let rfc: Rfc = serde_json::from_value(r)?;
        println!("{} is {}", rfc.id, rfc.status.as_str());
        Ok::<(), anyhow::Error>(())
    };
    match command {
        RfcCommand::List { status, json } => {
            let mut rfcs: Vec<Rfc> = client.get("v1/rfcs").await?;
            if let Some(s) = &status {
                rfcs.retain(|r| r.status.as_str() == s);
            }
            if json {
                return print_json(&rfcs);
            }
            print!("{}", output::table(RFC_HEADERS, &rfc_rows(&rfcs)));
        }
        RfcCommand::Show { id, json } => {
            let r: Value = client.get(&format!("v1/rfcs/{id}")).await?;
            print_record(json, &r, || {
                Ok(describe_rfc(&serde_json::from_value(r.clone())?))
            })?;
        }
        RfcCommand::Raise {
            title,
            targets,
            specs,
            level,
            impact,
            risk,
            change_type,
            description,
            reason,
            plan,
            backout,
            window,
            json,
        } => {
            for s in &specs {
                s.parse::<fathom_collector::control::spec::Spec>()?;
            }
            for t in &targets {
                t.parse::<fathom_collector::cmdb::rfc::Target>()?;
            }
            let body = json!({
                "title": title, "targets": targets, "specs": specs, "level": level, "impact": impact,
                "risk": risk, "change_type": change_type, "description": description, "reason": reason,
                "implementation_plan": plan, "backout_plan": backout, "window": window.window()?,
            });
            let r: Value = client.post("v1/rfcs", &body).await?;
            print_record(json, &r, || {
                let rfc: Rfc = serde_json::from_value(r.clone())?;
                Ok(format!(
                    "raised {} ({} CI(s)); next: fathom rfc assess {} / approve\n",
                    rfc.id,
                    rfc.cis.len(),
                    rfc.id
                ))
            })?;
        }
        RfcCommand::Assess {
            id,
            risk,
            notes,
            json,
        } => act(id, "assess", json!({"risk": risk, "comment": notes}), json).await?,
        RfcCommand::Approve {
            id,
            comment,
            window,
            json,
        } => {
            act(
                id,
                "approve",
                json!({"comment": comment, "window": window.window()?}),
                json,
            )
            .await?
        }
        RfcCommand::Reject { id, comment, json } => {
            act(id, "reject", json!({"comment": comment}), json).await?
        }
        RfcCommand::Schedule { id, window, json } => {
            let Some(w) = window.window()? else {
                bail!("give the window with --start and --end");
            };
            act(id, "schedule", json!({"window": w}), json).await?
        }
        RfcCommand::Implement { id, comment, json } => {
            act(id, "implement", json!({"comment": comment}), json).await?
        }
        RfcCommand::Review {
            id,
            outcome,
            comment,
            json,
        } => {
            act(
                id,
                "review",
                json!({"outcome": outcome, "comment": comment}),
                json,
            )
            .await?
        }
        RfcCommand::Close { id, comment, json } => {
            act(id, "close", json!({"comment": comment}), json).await?
        }
        RfcCommand::Cancel { id, comment, json } => {
            act(id, "cancel", json!({"comment": comment}), json).await?
        }
        RfcCommand::Stats { since, json } => {
            let since_ms = output::parse_time(&since, now_ms()).map_err(anyhow::Error::msg)?;
            let rfcs: Vec<Rfc> = client.get("v1/rfcs").await?;
            let s = fathom_collector::cmdb::rfc::stats(&rfcs, since_ms);
            if json {
                return print_json(&s);
            }
            let pct = |p: Option<f64>| p.map_or("n/a".into(), |p| format!("{p:.1}%"));
            let hours = |h: Option<f64>| h.map_or("n/a".into(), |h| format!("{h:.1} h"));
            let counts = |m: &std::collections::BTreeMap<String, usize>| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!("RFCs raised since {}: {}", output::time(since_ms), s.total);
            println!("by status        {}", counts(&s.by_status));
            println!("by level         {}", counts(&s.by_level));
            println!("by type          {}", counts(&s.by_type));
            println!("emergency share  {}", pct(s.emergency_pct));
            println!("unauthorized     {} (missing-RFC drafts)", s.unauthorized);
            println!(
                "success rate     {} ({} successful, {} failed)",
                pct(s.success_pct),
                s.successful,
                s.failed
            );
            println!(
                "to approval      {} median",
                hours(s.median_hours_to_approval)
            );
            println!(
                "to implemented   {} median",
                hours(s.median_hours_to_implementation)
            );
        }
        RfcCommand::ForwardSchedule { from, json } => {
            let from_ms = match from {
                Some(f) => output::parse_time(&f, now_ms()).map_err(anyhow::Error::msg)?,
                None => now_ms(),
            };
            let rfcs: Vec<Rfc> = client
                .get(&format!("v1/schedule-of-change?from_ms={from_ms}"))
                .await?;
            if json {
                return print_json(&rfcs);
            }
            print!("{}", output::table(RFC_HEADERS, &rfc_rows(&rfcs)));
        }
    }
    Ok(())
}

pub async fn incident(client: &Client, command: IncidentCommand) -> anyhow::Result<()> {
    match command {
        IncidentCommand::List {
            open,
            status,
            priority,
            ci,
            category,
            overdue,
            json,
        } => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if open {
                query.append_pair("open", "true");
            }
            if let Some(s) = status {
                query.append_pair("status", s.as_str());
            }
            if let Some(p) = &priority {
                query.append_pair("priority", p);
            }
            if let Some(ci) = ci {
                query.append_pair("ci", &ci.resolve(client).await?.to_string());
            }
            if let Some(c) = &category {
                query.append_pair("category", c);
            }
            if overdue {
                query.append_pair("overdue", "true");
            }
            let incidents: Vec<Incident> = client
                .get(&format!("v1/incidents?{}", query.finish()))
                .await?;
            if json {
                return print_json(&incidents);
            }
            print!("{}", output::cmdb::incident_table(&incidents, now_ms()));
        }
        IncidentCommand::Show { id, json } => {
            let i: Value = client.get(&format!("v1/incidents/{id}")).await?;
            print_record(json, &i, || {
                Ok(describe_incident(
                    &serde_json::from_value(i.clone())?,
                    now_ms(),
                ))
            })?;
        }
        IncidentCommand::Raise {
            title,
            symptom,
            impact,
            urgency,
            cis,
            json,
        } => {
            let i: Value = client
                .post("v1/incidents", &json!({"title": title, "symptom": symptom, "impact": impact, "urgency": urgency, "cis": cis}))
                .await?;
            print_record(json, &i, || {
                Ok(format!(
                    "recorded {} (priority {})\n",
                    i["id"].as_str().unwrap_or_default(),
                    i["priority"]
                ))
            })?;
        }
        IncidentCommand::Update {
            id,
            status,
            assignee,
            major,
            impact,
            urgency,
            note,
            force,
            json,
        } => {
            let i: Value = client
                .post(
                    &format!("v1/incidents/{id}/update"),
                    &json!({"status": status, "assignee": assignee, "major": major, "impact": impact, "urgency": urgency, "note": note, "force": force}),
                )
                .await?;
            print_record(json, &i, || {
                Ok(format!(
                    "{id} is {} (priority {})\n",
                    i["status"].as_str().unwrap_or_default(),
                    i["priority"]
                ))
            })?;
        }
    }
    Ok(())
}

pub async fn audit(client: &Client, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Report {
            seed,
            format,
            json,
            csv,
        } => {
            let format = if csv { Format::Csv } else { format };
            let path = match seed {
                Some(s) => format!("v1/audit-report?seed={s}"),
                None => "v1/audit-report".into(),
            };
            let report: AuditReport = client.get(&path).await?;
            match if json { Format::Json } else { format } {
                Format::Json => print_json(&report)?,
                Format::Csv => print!("{}", audit_csv(&report)?),
                Format::Table => print!("{}", describe_audit(&report)),
            }
        }
        AuditCommand::CloseDeficiency {
            audit,
            number,
            note,
            json,
        } => {
            let r: Value = client
                .post(
                    &format!("v1/audits/{audit}/deficiencies/{number}/close"),
                    &json!({ "note": note }),
                )
                .await?;
            print_record(json, &r, || {
                Ok(format!("closed deficiency {number} of {audit}\n"))
            })?;
        }
        AuditCommand::Deficiencies { open, json } => {
            let audits: Vec<fathom_collector::cmdb::audit::AuditRecord> =
                client.get("v1/audits").await?;
            #[derive(serde::Serialize)]
            struct Row<'a> {
                audit: fathom_api::ids::AuditId,
                number: usize,
                #[serde(flatten)]
                deficiency: &'a fathom_collector::cmdb::audit::Deficiency,
            }
            let rows: Vec<Row<'_>> = audits
                .iter()
                .flat_map(|a| {
                    a.deficiencies.iter().enumerate().map(|(i, d)| Row {
                        audit: a.id,
                        number: i + 1,
                        deficiency: d,
                    })
                })
                .filter(|r| !open || r.deficiency.closed.is_none())
                .collect();
            if json {
                return print_json(&rows);
            }
            let now = now_ms();
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let d = r.deficiency;
                    vec![
                        format!("{}#{}", r.audit, r.number),
                        d.ci.map_or("-".into(), |c| c.to_string()),
                        d.description.clone(),
                        d.owner.clone().unwrap_or_else(|| "-".into()),
                        d.due_ms.map_or("-".into(), |t| {
                            let overdue = d.closed.is_none() && t < now;
                            format!(
                                "{}{}",
                                output::time(t),
                                if overdue { " OVERDUE" } else { "" }
                            )
                        }),
                        d.closed.as_ref().map_or("open".into(), |c| {
                            format!("closed {} by {}", output::time(c.at_ms), c.by)
                        }),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(
                    &["DEFICIENCY", "CI", "DESCRIPTION", "OWNER", "DUE", "STATUS"],
                    &table
                )
            );
        }
        AuditCommand::Record {
            note,
            seed,
            deficiencies,
            verifications,
            json,
        } => {
            let r: Value = client
                .post(
                    "v1/audits",
                    &json!({"note": note, "seed": seed, "deficiencies": deficiencies, "verifications": verifications}),
                )
                .await?;
            print_record(json, &r, || {
                Ok(format!(
                    "recorded {}: accuracy {}, {} deficiency(ies)\n",
                    r["id"].as_str().unwrap_or_default(),
                    r["accuracy_pct"]
                        .as_f64()
                        .map_or("n/a".into(), |a| format!("{a:.1}%")),
                    deficiencies.len()
                ))
            })?;
        }
        AuditCommand::List { json } => {
            let audits: Vec<fathom_collector::cmdb::audit::AuditRecord> =
                client.get("v1/audits").await?;
            if json {
                return print_json(&audits);
            }
            let rows: Vec<Vec<String>> = audits
                .iter()
                .map(|a| {
                    vec![
                        a.id.to_string(),
                        output::time(a.recorded_at_ms),
                        a.by.to_string(),
                        a.accuracy_pct.map_or("n/a".into(), |x| format!("{x:.1}%")),
                        a.sample.len().to_string(),
                        a.deficiencies.len().to_string(),
                        a.note.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(
                    &[
                        "AUDIT",
                        "AT",
                        "BY",
                        "ACCURACY",
                        "SAMPLE",
                        "DEFICIENCIES",
                        "NOTE"
                    ],
                    &rows
                )
            );
        }
        AuditCommand::Trail { json } => {
            let trail: Vec<TrailEntry> = client.get("v1/audit-trail").await?;
            if json {
                return print_json(&trail);
            }
            let rows: Vec<Vec<String>> = trail
                .iter()
                .map(|t| {
                    vec![
                        t.seq.to_string(),
                        output::time(t.at_ms),
                        t.actor.to_string(),
                        t.action.clone(),
                        t.target.clone(),
                        t.detail.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["#", "AT", "WHO", "ACTION", "TARGET", "DETAIL"], &rows)
            );
        }
    }
    Ok(())
}

pub async fn baseline(client: &Client, command: BaselineCommand) -> anyhow::Result<()> {
    match command {
        BaselineCommand::Take {
            name,
            targets,
            description,
            json,
        } => {
            for t in &targets {
                t.parse::<fathom_collector::cmdb::rfc::Target>()?;
            }
            let b: Value = client
                .post(
                    "v1/baselines",
                    &json!({"name": name, "description": description, "targets": targets}),
                )
                .await?;
            print_record(json, &b, || {
                Ok(format!("baseline {name}: {} CI(s)\n", b["ci_count"]))
            })?;
        }
        BaselineCommand::List { json } => {
            let all: Vec<BaselineSummary> = client.get("v1/baselines").await?;
            if json {
                return print_json(&all);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|b| {
                    vec![
                        b.name.clone(),
                        output::time(b.taken_at_ms),
                        b.taken_by.to_string(),
                        b.ci_count.to_string(),
                        if b.targets.is_empty() {
                            "all".into()
                        } else {
                            b.targets
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(" ")
                        },
                        b.description.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(
                    &["BASELINE", "TAKEN", "BY", "CIS", "TARGETS", "DESCRIPTION"],
                    &rows
                )
            );
        }
        BaselineCommand::Show { name, json } => {
            let b: Baseline = client.get(&format!("v1/baselines/{name}")).await?;
            if json {
                return print_json(&b);
            }
            println!(
                "baseline {} taken {} by {}: {}",
                b.name,
                output::time(b.taken_at_ms),
                b.taken_by,
                b.description
            );
            for ci in &b.cis {
                println!("\n{} {} ({})", ci.id, ci.name, ci.class);
                for (k, v) in &ci.fields {
                    println!("  {k:<40}{v}");
                }
            }
        }
        BaselineCommand::Diff {
            name,
            against,
            json,
        } => {
            let path = match &against {
                Some(a) => format!("v1/baselines/{name}/diff?against={a}"),
                None => format!("v1/baselines/{name}/diff"),
            };
            let d: BaselineDiff = client.get(&path).await?;
            if json {
                return print_json(&d);
            }
            println!("{} → {}", d.from, d.to);
            println!(
                "{} changed, {} added, {} removed, {} unchanged",
                d.changed.len(),
                d.added.len(),
                d.removed.len(),
                d.unchanged
            );
            for c in &d.added {
                println!("\n+ {} {} ({})", c.id, c.name, c.class);
            }
            for c in &d.removed {
                println!("\n- {} {} ({})", c.id, c.name, c.class);
            }
            for c in &d.changed {
                println!("\n~ {} {}", c.id, c.name);
                for ch in &c.changes {
                    println!("    {}: {} → {}", ch.field, value(&ch.old), value(&ch.new));
                }
            }
        }
    }
    Ok(())
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

fn read_relationships_csv(text: &str, file: &str) -> anyhow::Result<Vec<ExchangeRelationship>> {
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

    fn window(start: &str, end: &str) -> anyhow::Result<Option<Window>> {
        WindowArgs {
            start: Some(start.into()),
            end: Some(end.into()),
        }
        .window()
    }

    #[test]
    fn a_relative_end_is_a_length_after_the_start() {
        let w = window("2026-11-24T22:00:00Z", "+26h").unwrap().unwrap();
        assert_eq!(w.end_ms - w.start_ms, 26 * 3_600_000);
        let w = window("2026-11-24T22:00:00Z", "90m").unwrap().unwrap();
        assert_eq!(w.end_ms - w.start_ms, 90 * 60_000);
        let w = window("2026-11-24T22:00:00Z", "2026-11-25T02:00:00Z")
            .unwrap()
            .unwrap();
        assert_eq!(w.end_ms - w.start_ms, 4 * 3_600_000);
        // A start in the future with a relative end still works.
        assert!(window("+30d", "+2h").unwrap().is_some());
        let err = window("2026-11-24T22:00:00Z", "-2h").unwrap_err();
        assert!(err.to_string().contains("after --start"), "{err}");
    }

    #[test]
    fn ci_references_are_ids_in_any_case_or_names() {
        assert!(matches!("CI-4".parse::<CiRef>(), Ok(CiRef::Id(id)) if id.to_string() == "ci-4"));
        assert!(matches!("shop".parse::<CiRef>(), Ok(CiRef::Name(n)) if n == "shop"));
    }
}
