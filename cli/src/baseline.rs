//! `fathom baseline`: take, list, show, diff.

use clap::Subcommand;
use fathom_collector::cmdb::baseline::{Baseline, BaselineDiff, BaselineSummary};
use serde_json::{json, Value};

use super::client::Client;
use crate::output;
use crate::output::cmdb::value;
/// `--start`/`--end` as a window; both or neither.
use crate::{print_json, print_record};

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
