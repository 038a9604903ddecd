//! `fathom drift`: the differences discovery found, with the decision on
//! each.

use clap::Subcommand;
use fathom_api::ids::DriftId;
use fathom_collector::cmdb::drift::{DriftRecord, DriftStatus};
use fathom_shared::ids::CiId;

use super::client::Client;
use crate::output;
use crate::output::cmdb::{drift_row, value, verdict, DRIFT_HEADERS};
/// `--start`/`--end` as a window; both or neither.
use crate::print_json;

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
