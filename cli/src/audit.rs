//! `fathom audit`: the audit report, recorded audits and their
//! deficiencies, and the audit trail.

use clap::Subcommand;
use fathom_collector::cmdb::audit::AuditReport;
use fathom_collector::cmdb::history::TrailEntry;
use fathom_shared::ids::CiId;
use fathom_support::now_ms;
use serde_json::{json, Value};

use super::client::Client;
use crate::output;
use crate::output::cmdb::{audit_csv, describe_audit};
/// `--start`/`--end` as a window; both or neither.
use crate::{print_json, print_record, Format};

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

pub(crate) fn parse_deficiency(
    text: &str,
) -> Result<fathom_collector::cmdb::audit::Deficiency, String> {
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

pub(crate) fn parse_verification(
    text: &str,
) -> Result<fathom_collector::cmdb::audit::Verification, String> {
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
