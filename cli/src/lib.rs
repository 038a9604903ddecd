//! `fathom`: the operator CLI. It talks to a collector's API over HTTPS
//! ([`client`]), and `quickstart` runs a collector and an agent in this
//! process.
//!
//! - [`cmdb`]: CIs, RFCs, drift, incidents, reviews, baselines, audits,
//!   import and export;
//! - [`capacity`]: metrics, capacity plans and alerts, availability;
//! - [`output`]: what the commands print: tables, times, terminal-safe
//!   text, CSV, HTML and SVG charts;
//! - [`quickstart`]: a collector and an agent on this host.

pub mod audit;
pub mod baseline;
pub mod capacity;
pub mod ci;
pub mod client;
pub mod drift;
pub mod incident;
pub mod output;
pub mod quickstart;
pub mod rfc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use client::{Client, ClientArgs};
use fathom_api::agents::{NewEnrollmentToken, NewOperatorToken};
use fathom_support::process::exit_code;

/// Fathom operator CLI: enrollment tokens, agents and the CMDB.
///
/// Finds the collector and token from flags, then FATHOM_* environment
/// variables, then a client config file (./fathom-data/client.toml, written
/// by `fathom quickstart`, or ~/.config/fathom/client.toml).
#[derive(Debug, Parser)]
#[command(name = "fathom", version, about, long_about)]
struct FathomCli {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: FathomCommand,
}

#[derive(Debug, Subcommand)]
enum FathomCommand {
    /// Start a collector and an agent on this host, show the CI it creates,
    /// and keep both running until Ctrl-C.
    Quickstart(quickstart::Args),
    /// Enrollment tokens, which admit new agents.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Operator API tokens (who may use this CLI, and with which role).
    #[command(subcommand)]
    OperatorToken(OperatorTokenCommand),
    /// Enrolled agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Configuration items: list, show (also as of a past time), history,
    /// create, edit, register, relate.
    #[command(subcommand)]
    Ci(ci::CiCommand),
    /// Requests for change: raise, assess, approve or reject, schedule,
    /// implement, review, close; the forward schedule of change.
    #[command(subcommand)]
    Rfc(rfc::RfcCommand),
    /// Drift: differences discovery found, with the decision on each.
    #[command(subcommand)]
    Drift(drift::DriftCommand),
    /// Incidents: unauthorized changes and what people report.
    #[command(subcommand)]
    Incident(incident::IncidentCommand),
    /// Configuration audits (accuracy, verification sample, deficiencies)
    /// and the audit trail of operator actions.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Configuration baselines: take, list, show, diff.
    #[command(subcommand)]
    Baseline(baseline::BaselineCommand),
    /// Utilization series of a CI (CPU, memory, filesystems, interfaces):
    /// list them, show one over a period.
    #[command(subcommand)]
    Metrics(capacity::MetricsCommand),
    /// The capacity plan: utilization, peaks, trends and headroom against
    /// the policy's thresholds (table, JSON, CSV, HTML with charts).
    #[command(subcommand)]
    Capacity(capacity::CapacityCommand),
    /// Availability: outages of CIs, planned and unplanned.
    #[command(subcommand)]
    Availability(capacity::AvailabilityCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an enrollment token and print it with the collector's fingerprint.
    Create {
        /// How long the token is valid: 90s, 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = output::parse_duration_secs)]
        ttl: u64,
        /// How many agents may enroll with it.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        uses: u32,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End an enrollment token: no agent enrolls with it again.
    Revoke {
        /// The token's id (see `fathom token list`).
        id: String,
        /// Print the API's JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// List enrollment tokens (never their secrets).
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorTokenCommand {
    /// Create an operator token; it is shown only once.
    Create {
        /// Who or what will use it (for the audit trail).
        #[arg(long)]
        name: String,
        /// viewer reads; admin also creates tokens and revokes agents.
        #[arg(long, value_enum)]
        role: fathom_api::auth::Role,
        /// How long it is valid: 90s, 30m, 12h, 90d (default: until revoked).
        #[arg(long, value_parser = output::parse_duration_secs)]
        ttl: Option<u64>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List operator tokens: id, name, role, expiry (never their secrets).
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an operator token; it opens nothing from now on.
    Revoke {
        /// The token's id (see `fathom operator-token list`).
        id: String,
        /// Print the API's JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// List enrolled agents.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Refuse every further report from an agent.
    Revoke {
        /// The agent id (32 hexadecimal digits; see `fathom agent list`).
        id: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn fathom_main() -> ExitCode {
    let cli = FathomCli::parse();
    // Output piped into `head` ends the command quietly when the pipe
    // closes, as it does any Unix tool; the quick start keeps the default,
    // since it serves a collector in this process.
    if !matches!(cli.command, FathomCommand::Quickstart(_)) {
        sigpipe::reset();
    }
    // The CLI's own output is on stdout; logs only for trouble unless asked.
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("FATHOM_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fathom: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    exit_code(
        "fathom",
        runtime
            .block_on(fathom_dispatch(cli))
            .map(|()| ExitCode::SUCCESS),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

pub(crate) fn print_record(
    json: bool,
    value: &serde_json::Value,
    human: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    if json {
        return print_json(value);
    }
    // Records quote what agents sent (names, values): terminal-safe.
    print!("{}", output::clean_text(&human()?));
    Ok(())
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn fathom_dispatch(cli: FathomCli) -> anyhow::Result<()> {
    if let FathomCommand::Quickstart(args) = cli.command {
        return quickstart::run(args).await;
    }
    let client = Client::from_args(&cli.client)?;
    let api = fathom_api::client::Client::new(&client);
    match cli.command {
        FathomCommand::Quickstart(_) => unreachable!("handled above"),
        FathomCommand::Token(TokenCommand::Create { ttl, uses, json }) => {
            let created = api
                .create_enrollment_token(&NewEnrollmentToken {
                    ttl_secs: ttl,
                    uses,
                })
                .await?;
            if json {
                return print_json(&serde_json::to_value(&created)?);
            }
            println!("token        {}", created.token);
            println!("expires      {}", output::time(created.expires_at_ms));
            println!("uses         {uses}");
            println!("fingerprint  {}", created.collector_fingerprint);
            println!();
            println!("On the new host, in /etc/fathom/agent.toml:");
            println!("  collector_url = \"{}\"", client.base());
            println!(
                "  collector_fingerprint = \"{}\"",
                created.collector_fingerprint
            );
            println!("  enrollment_token = \"{}\"", created.token);
            println!("The token is shown only now; the collector keeps only its hash.");
        }
        FathomCommand::Token(TokenCommand::List { json }) => {
            let tokens = api.enrollment_tokens().await?;
            if json {
                return print_json(&tokens);
            }
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        output::time(t.created_at_ms),
                        output::time(t.expires_at_ms),
                        format!("{}/{}", t.uses_total - t.uses_left, t.uses_total),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["ID", "CREATED", "EXPIRES", "USED"], &rows)
            );
        }
        FathomCommand::OperatorToken(OperatorTokenCommand::List { json }) => {
            let tokens = api.operator_tokens().await?;
            if json {
                return print_json(&tokens);
            }
            let now = fathom_support::now_ms();
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    let state = match (t.revoked_at_ms, t.expires_at_ms) {
                        (Some(r), _) => format!("revoked {}", output::time(r)),
                        (None, Some(e)) if e <= now => format!("expired {}", output::time(e)),
                        (None, Some(e)) => format!("valid until {}", output::time(e)),
                        (None, None) => "valid".into(),
                    };
                    vec![
                        t.id.clone(),
                        t.name.clone(),
                        t.role.as_str().to_owned(),
                        output::time(t.created_at_ms),
                        state,
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["ID", "NAME", "ROLE", "CREATED", "STATE"], &rows)
            );
        }
        FathomCommand::OperatorToken(OperatorTokenCommand::Revoke { id, json }) => {
            let revoked = api.revoke_operator_token(&id).await?;
            if json {
                return print_json(&serde_json::to_value(&revoked)?);
            }
            println!("revoked operator token {id} ({})", revoked.name);
        }
        FathomCommand::Token(TokenCommand::Revoke { id, json }) => {
            let revoked = api.revoke_enrollment_token(&id).await?;
            if json {
                return print_json(&serde_json::to_value(&revoked)?);
            }
            println!("revoked enrollment token {id}");
        }
        FathomCommand::OperatorToken(OperatorTokenCommand::Create {
            name,
            role,
            ttl,
            json,
        }) => {
            let created = api
                .create_operator_token(&NewOperatorToken {
                    name: name.clone(),
                    role,
                    ttl_secs: ttl,
                })
                .await?;
            if json {
                return print_json(&serde_json::to_value(&created)?);
            }
            println!("token  {}", created.token);
            println!("name   {name}");
            println!("role   {}", created.role.as_str());
            println!("The token is shown only now; the collector keeps only its hash.");
        }
        FathomCommand::Agent(AgentCommand::List { json }) => {
            let agents = api.agents().await?;
            if json {
                return print_json(&agents);
            }
            print!("{}", output::cmdb::agent_table(&agents));
        }
        FathomCommand::Agent(AgentCommand::Revoke { id, json }) => {
            let id: fathom_shared::ids::AgentId = id.parse()?;
            let agent = api.revoke_agent(id).await?;
            if json {
                return print_json(&agent);
            }
            println!("revoked agent {} ({})", agent.agent_id, agent.hostname);
        }
        FathomCommand::Ci(c) => ci::ci(&client, c).await?,
        FathomCommand::Rfc(c) => rfc::rfc(&client, c).await?,
        FathomCommand::Drift(c) => drift::drift(&client, c).await?,
        FathomCommand::Incident(c) => incident::incident(&client, c).await?,
        FathomCommand::Audit(c) => audit::audit(&client, c).await?,
        FathomCommand::Baseline(c) => baseline::baseline(&client, c).await?,
        FathomCommand::Metrics(c) => capacity::metrics(&client, c).await?,
        FathomCommand::Availability(c) => capacity::availability(&client, c).await?,
        FathomCommand::Capacity(c) => capacity::capacity(&client, c).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and every argument says what it is in `--help`.
    #[test]
    fn every_command_and_argument_has_help() {
        let missing = fathom_support::process::missing_help(&super::FathomCli::command());
        assert!(missing.is_empty(), "no help text:\n{}", missing.join("\n"));
    }
}
