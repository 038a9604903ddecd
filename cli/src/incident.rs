//! `fathom incident`: list, show, raise, update.

use clap::Subcommand;
use fathom_api::ids::IncidentId;
use fathom_collector::cmdb::incident::{Incident, IncidentStatus};
use fathom_collector::control::policy::Level;
use fathom_shared::ids::CiId;
use fathom_support::now_ms;
use serde_json::{json, Value};

use super::client::Client;
use crate::ci::CiRef;
use crate::output;
use crate::output::cmdb::describe_incident;
/// `--start`/`--end` as a window; both or neither.
use crate::{print_json, print_record};

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
