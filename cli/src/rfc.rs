//! `fathom rfc`: raise, assess, approve or reject, schedule, implement,
//! review, close, cancel; the forward schedule of change.

use anyhow::{bail, Context};
use clap::Subcommand;
use fathom_api::ids::RfcId;
use fathom_collector::cmdb::rfc::{ReviewOutcome, Rfc, RfcImpact, RfcLevel, Window};
use fathom_collector::control::policy::Level;
use fathom_support::now_ms;
use serde_json::{json, Value};

use super::client::Client;
use crate::output;
use crate::output::cmdb::{describe_rfc, rfc_rows, RFC_HEADERS};
/// `--start`/`--end` as a window; both or neither.
use crate::{print_json, print_record};

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
}
