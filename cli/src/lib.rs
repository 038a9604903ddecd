//! `fathom`: the operator CLI. It talks to a collector's API over HTTPS
//! ([`client`]), and `quickstart` runs a collector and an agent in this
//! process.
//!
//! - [`cmdb`]: CIs, RFCs, drift, incidents, reviews, baselines, audits,
//!   import and export;
//! - [`capacity`]: metrics, capacity plans and alerts, availability;
//! - [`chart`]: SVG time-series charts;
//! - [`render`]: tables, times, terminal-safe text;
//! - [`quickstart`]: a collector and an agent on this host.

pub mod capacity;
pub mod chart;
pub mod client;
pub mod cmdb;
pub mod quickstart;
pub mod render;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

use client::{Client, ClientArgs};
use fathom_collector::cmdb::{AgentRecord, CiRecord, EnrollmentTokenRecord};
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
    Ci(cmdb::CiCommand),
    /// Requests for change: raise, assess, approve or reject, schedule,
    /// implement, review, close; the forward schedule of change.
    #[command(subcommand)]
    Rfc(cmdb::RfcCommand),
    /// Drift: differences discovery found, with the decision on each.
    #[command(subcommand)]
    Drift(cmdb::DriftCommand),
    /// Incidents: unauthorized changes and what people report.
    #[command(subcommand)]
    Incident(cmdb::IncidentCommand),
    /// Configuration audits (accuracy, verification sample, deficiencies)
    /// and the audit trail of operator actions.
    #[command(subcommand)]
    Audit(cmdb::AuditCommand),
    /// Configuration baselines: take, list, show, diff.
    #[command(subcommand)]
    Baseline(cmdb::BaselineCommand),
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
        #[arg(long, default_value = "1h", value_parser = render::parse_duration_secs)]
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
        role: fathom_collector::cmdb::Role,
        /// How long it is valid: 90s, 30m, 12h, 90d (default: until revoked).
        #[arg(long, value_parser = render::parse_duration_secs)]
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

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn fathom_dispatch(cli: FathomCli) -> anyhow::Result<()> {
    if let FathomCommand::Quickstart(args) = cli.command {
        return quickstart::run(args).await;
    }
    let client = Client::from_args(&cli.client)?;
    match cli.command {
        FathomCommand::Quickstart(_) => unreachable!("handled above"),
        FathomCommand::Token(TokenCommand::Create { ttl, uses, json }) => {
            let created: Value = client
                .post(
                    "v1/enrollment-tokens",
                    &serde_json::json!({"ttl_secs": ttl, "uses": uses}),
                )
                .await?;
            if json {
                return print_json(&created);
            }
            let field = |k: &str| created[k].as_str().unwrap_or_default().to_owned();
            println!("token        {}", field("token"));
            println!(
                "expires      {}",
                render::time(created["expires_at_ms"].as_i64().unwrap_or(0))
            );
            println!("uses         {uses}");
            println!("fingerprint  {}", field("collector_fingerprint"));
            println!();
            println!("On the new host, in /etc/fathom/agent.toml:");
            println!("  collector_url = \"{}\"", client.base());
            println!(
                "  collector_fingerprint = \"{}\"",
                field("collector_fingerprint")
            );
            println!("  enrollment_token = \"{}\"", field("token"));
            println!("The token is shown only now; the collector keeps only its hash.");
        }
        FathomCommand::Token(TokenCommand::List { json }) => {
            let tokens: Vec<EnrollmentTokenRecord> = client.get("v1/enrollment-tokens").await?;
            if json {
                return print_json(&tokens);
            }
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        render::time(t.created_at_ms),
                        render::time(t.expires_at_ms),
                        format!("{}/{}", t.uses_total - t.uses_left, t.uses_total),
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(&["ID", "CREATED", "EXPIRES", "USED"], &rows)
            );
        }
        FathomCommand::OperatorToken(OperatorTokenCommand::List { json }) => {
            let tokens: Vec<fathom_collector::cmdb::tokens::OperatorTokenView> =
                client.get("v1/operator-tokens").await?;
            if json {
                return print_json(&tokens);
            }
            let now = fathom_support::now_ms();
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    let state = match (t.revoked_at_ms, t.expires_at_ms) {
                        (Some(r), _) => format!("revoked {}", render::time(r)),
                        (None, Some(e)) if e <= now => format!("expired {}", render::time(e)),
                        (None, Some(e)) => format!("valid until {}", render::time(e)),
                        (None, None) => "valid".into(),
                    };
                    vec![
                        t.id.clone(),
                        t.name.clone(),
                        t.role.as_str().to_owned(),
                        render::time(t.created_at_ms),
                        state,
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(&["ID", "NAME", "ROLE", "CREATED", "STATE"], &rows)
            );
        }
        FathomCommand::OperatorToken(OperatorTokenCommand::Revoke { id, json }) => {
            let revoked: Value = client
                .post(&format!("v1/operator-tokens/{id}/revoke"), &Value::Null)
                .await?;
            if json {
                return print_json(&revoked);
            }
            println!(
                "revoked operator token {id} ({})",
                revoked["name"].as_str().unwrap_or_default()
            );
        }
        FathomCommand::Token(TokenCommand::Revoke { id, json }) => {
            let revoked: Value = client
                .post(&format!("v1/enrollment-tokens/{id}/revoke"), &Value::Null)
                .await?;
            if json {
                return print_json(&revoked);
            }
            println!("revoked enrollment token {id}");
        }
        FathomCommand::OperatorToken(OperatorTokenCommand::Create {
            name,
            role,
            ttl,
            json,
        }) => {
            let created: Value = client
                .post(
                    "v1/operator-tokens",
                    &serde_json::json!({"name": name, "role": role, "ttl_secs": ttl}),
                )
                .await?;
            if json {
                return print_json(&created);
            }
            println!("token  {}", created["token"].as_str().unwrap_or_default());
            println!("name   {name}");
            println!("role   {}", created["role"].as_str().unwrap_or_default());
            println!("The token is shown only now; the collector keeps only its hash.");
        }
        FathomCommand::Agent(AgentCommand::List { json }) => {
            let agents: Vec<AgentRecord> = client.get("v1/agents").await?;
            if json {
                return print_json(&agents);
            }
            let rows: Vec<Vec<String>> = agents
                .iter()
                .map(|a| {
                    vec![
                        a.agent_id.to_string(),
                        a.hostname.clone(),
                        a.agent_version.clone(),
                        format!("{:?}", a.status).to_lowercase(),
                        a.ci_id.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                        a.reports_received.to_string(),
                        render::time(a.last_seen_ms),
                        match a.probe_errors.as_slice() {
                            [] => "-".into(),
                            [one] => one.clone(),
                            [first, rest @ ..] => {
                                format!("{first} (+{} more)", rest.len())
                            }
                        },
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(
                    &[
                        "AGENT",
                        "HOSTNAME",
                        "VERSION",
                        "STATUS",
                        "CI",
                        "REPORTS",
                        "LAST SEEN",
                        "PROBE ERRORS"
                    ],
                    &rows
                )
            );
        }
        FathomCommand::Agent(AgentCommand::Revoke { id, json }) => {
            let id: fathom_shared::ids::AgentId = id.parse()?;
            let agent: AgentRecord = client
                .post(&format!("v1/agents/{id}/revoke"), &Value::Null)
                .await?;
            if json {
                return print_json(&agent);
            }
            println!("revoked agent {} ({})", agent.agent_id, agent.hostname);
        }
        FathomCommand::Ci(c) => cmdb::ci(&client, c).await?,
        FathomCommand::Rfc(c) => cmdb::rfc(&client, c).await?,
        FathomCommand::Drift(c) => cmdb::drift(&client, c).await?,
        FathomCommand::Incident(c) => cmdb::incident(&client, c).await?,
        FathomCommand::Audit(c) => cmdb::audit(&client, c).await?,
        FathomCommand::Baseline(c) => cmdb::baseline(&client, c).await?,
        FathomCommand::Metrics(c) => capacity::metrics(&client, c).await?,
        FathomCommand::Availability(c) => capacity::availability(&client, c).await?,
        FathomCommand::Capacity(c) => capacity::capacity(&client, c).await?,
    }
    Ok(())
}

/// Sections with more attributes than this are shown as a count.
const FOLD_SECTIONS_OVER: usize = 16;

/// One section of a CI's authorized attributes, in full.
pub fn describe_section(ci: &CiRecord, section: &str) -> String {
    let rows: Vec<Vec<String>> = ci
        .attributes
        .iter()
        .filter(|(k, _)| fathom_collector::control::attributes::section_of(k) == section)
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    if rows.is_empty() {
        let names: std::collections::BTreeSet<&str> = ci
            .attributes
            .keys()
            .map(|k| fathom_collector::control::attributes::section_of(k))
            .collect();
        return format!(
            "{} has no {section} attributes (its sections: {})\n",
            ci.id,
            names.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    format!(
        "{} ({}), {section}: {} attribute(s)\n{}",
        ci.id,
        render::clean(&ci.name),
        rows.len(),
        render::table(&["ATTRIBUTE", "VALUE"], &rows)
    )
}

/// A CI's own fields and authorized attributes.
fn describe_header(ci: &CiRecord) -> String {
    let mut out = String::new();
    out.push_str(&format!("CI          {}\n", ci.id));
    out.push_str(&format!("name        {}\n", ci.name));
    out.push_str(&format!("class       {}\n", ci.class));
    out.push_str(&format!("status      {}\n", ci.status.as_str()));
    out.push_str(&format!("criticality {}\n", ci.criticality.as_str()));
    if let Some(o) = &ci.owner {
        out.push_str(&format!("owner       {o}\n"));
    }
    if let Some(l) = &ci.location {
        out.push_str(&format!("location    {l}\n"));
    }
    if !ci.description.is_empty() {
        out.push_str(&format!("description {}\n", ci.description));
    }
    out.push_str(&format!(
        "registered  {}\n",
        if ci.registered {
            "yes"
        } else {
            "no (`fathom ci register` takes its discovered state as authorized)"
        }
    ));
    let seen = |t: Option<i64>| t.map_or_else(|| "never".into(), render::time);
    out.push_str(&format!("first seen  {}\n", seen(ci.first_seen_ms)));
    out.push_str(&format!("last seen   {}\n", seen(ci.last_seen_ms)));
    if let Some(a) = ci.reported_by {
        out.push_str(&format!("reported by {a}\n"));
    }
    if let Some(m) = ci.merged_into {
        out.push_str(&format!("MERGED INTO {m}\n"));
    }
    out.push_str(&format!(
        "identified  {} ({})\n",
        ci.identified_by.rule.as_str(),
        ci.identified_by.detail
    ));
    for review in &ci.reviews {
        out.push_str(&format!(
            "REVIEW      {review} is open (`fathom ci review list`)\n"
        ));
    }
    out.push_str(&format!(
        "\nauthorized attributes (revision {})\n",
        ci.revision
    ));
    // Big sections (packages, sockets, units) are folded to a count; `ci
    // show --section NAME` lists one in full.
    let mut sections: std::collections::BTreeMap<&str, usize> = Default::default();
    for k in ci.attributes.keys() {
        *sections
            .entry(fathom_collector::control::attributes::section_of(k))
            .or_default() += 1;
    }
    let mut folded = std::collections::BTreeSet::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (k, v) in &ci.attributes {
        let section = fathom_collector::control::attributes::section_of(k);
        if sections[section] > FOLD_SECTIONS_OVER {
            if folded.insert(section) {
                rows.push(vec![
                    format!("  {section}.*"),
                    format!(
                        "{} attributes (`fathom ci show {} --section {section}` lists them)",
                        sections[section], ci.id
                    ),
                ]);
            }
            continue;
        }
        rows.push(vec![format!("  {k}"), v.clone()]);
    }
    out.push_str(
        &render::table(&["", ""], &rows)
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    out.push('\n');
    out
}

pub fn describe_ci(
    ci: &CiRecord,
    latest: Option<&fathom_collector::cmdb::StoredInventory>,
) -> String {
    let mut out = describe_header(ci);
    let Some(latest) = latest else {
        out.push_str("\nno inventory received yet\n");
        return out;
    };
    let inv = &latest.inventory;
    out.push_str(&format!(
        "\nlatest inventory: report {} from agent {}, received {}\n",
        latest.seq,
        latest.agent_id,
        render::time(latest.received_at_ms)
    ));
    if let Some(interfaces) = &inv.interfaces {
        out.push_str("\ninterfaces\n");
        let rows: Vec<Vec<String>> = interfaces
            .iter()
            .map(|i| {
                vec![
                    format!("  {}", i.name),
                    i.mac.clone().unwrap_or_else(|| "-".into()),
                    i.addresses.join(" "),
                ]
            })
            .collect();
        out.push_str(&render::table(&["  NAME", "MAC", "ADDRESSES"], &rows));
    }
    if let Some(filesystems) = &inv.filesystems {
        out.push_str("\nfilesystems\n");
        let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
        let rows: Vec<Vec<String>> = filesystems
            .iter()
            .map(|f| {
                vec![
                    format!("  {}", f.mount_point),
                    f.device.clone(),
                    f.fs_type.clone(),
                    gib(f.total_bytes),
                ]
            })
            .collect();
        out.push_str(&render::table(
            &["  MOUNT", "DEVICE", "TYPE", "SIZE"],
            &rows,
        ));
    }
    match &inv.packages {
        Some(p) => out.push_str(&format!(
            "\npackages: {} (`fathom ci show {} --json` lists them)\n",
            p.len(),
            ci.id
        )),
        None => out.push_str("\npackages: not read\n"),
    }
    if let Some(listeners) = &inv.listeners {
        out.push_str("\nlistening\n");
        let rows: Vec<Vec<String>> = listeners
            .iter()
            .map(|l| {
                vec![
                    format!("  {}", l.protocol),
                    format!("{}:{}", l.address, l.port),
                    l.process.clone().unwrap_or_else(|| "?".into()),
                ]
            })
            .collect();
        out.push_str(&render::table(&["  PROTO", "ADDRESS", "PROCESS"], &rows));
    }
    if let Some(files) = &inv.files {
        out.push_str("\nwatched files\n");
        let rows: Vec<Vec<String>> = files
            .iter()
            .map(|f| {
                vec![
                    format!("  {}", f.path),
                    f.kind.clone(),
                    f.mode.clone().unwrap_or_default(),
                    f.owner.clone().unwrap_or_default(),
                    f.sha256
                        .as_deref()
                        .map(|h| h[..12.min(h.len())].to_owned())
                        .or_else(|| f.error.clone())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&render::table(
            &["  PATH", "KIND", "MODE", "OWNER", "SHA-256"],
            &rows,
        ));
    }
    let count = |what: &str, n: Option<usize>| match n {
        Some(n) => format!("{what}: {n}\n"),
        None => format!("{what}: not read\n"),
    };
    out.push('\n');
    out.push_str(&count("systemd units", inv.units.as_ref().map(Vec::len)));
    out.push_str(&count("users", inv.users.as_ref().map(Vec::len)));
    out.push_str(&count(
        "kernel modules",
        inv.kernel_modules.as_ref().map(Vec::len),
    ));
    out.push_str(&count("disks", inv.block_devices.as_ref().map(Vec::len)));
    out.push_str(&count(
        "memory slots",
        inv.memory_modules.as_ref().map(Vec::len),
    ));
    out.push_str(&count("GPUs", inv.gpus.as_ref().map(Vec::len)));
    out.push_str(&count("containers", inv.containers.as_ref().map(Vec::len)));
    if let Some(packages) = &inv.packages {
        let mut by_manager: std::collections::BTreeMap<&str, usize> = Default::default();
        for p in packages {
            *by_manager.entry(p.manager.as_str()).or_default() += 1;
        }
        let managers: Vec<String> = by_manager.iter().map(|(m, n)| format!("{m} {n}")).collect();
        out.push_str(&format!("packages: {}\n", managers.join(", ")));
    }
    for e in &inv.probe_errors {
        out.push_str(&format!("not read: {}: {}\n", e.probe, e.message));
    }
    out
}

/// A network device CI: its fields, then what its latest poll found and
/// each interface's throughput over the latest poll interval.
pub fn describe_device(
    ci: &CiRecord,
    poll: &fathom_collector::cmdb::device::StoredDeviceReport,
    rates: Option<&fathom_collector::cmdb::device::DeviceSample>,
) -> String {
    let mut out = describe_header(ci);
    let report = &poll.report;
    let device = &report.device;
    out.push_str(&format!(
        "\nlatest poll: report {} from agent {} at {}, received {}\n",
        poll.seq,
        poll.agent_id,
        report.target,
        render::time(poll.received_at_ms)
    ));
    if let Some(uptime) = device.system.sys_uptime_s {
        out.push_str(&format!(
            "uptime: {}d {}h\n",
            uptime / 86_400,
            uptime % 86_400 / 3600
        ));
    }
    out.push_str(&format!(
        "chassis: {}, components: {}, IP addresses: {}, LLDP neighbours: {}, CDP neighbours: {}\n",
        device.chassis.len(),
        device.components.len(),
        device.ip_addresses.len(),
        device.lldp_neighbors.len(),
        device.cdp_neighbors.len()
    ));
    let rate_of = |index: u32| rates.and_then(|s| s.rates.iter().find(|r| r.index == index));
    let mbps = |bps: f64| format!("{:.2}", bps / 1e6);
    out.push_str("\ninterfaces");
    if let Some(s) = rates {
        out.push_str(&format!(
            " (throughput over the {:.0} s before {})",
            s.rates
                .first()
                .map_or(0.0, |r| r.interval_ms as f64 / 1000.0),
            render::time(s.observed_at_ms)
        ));
    }
    out.push('\n');
    let names = fathom_collector::control::attributes::device_interface_names(device);
    let rows: Vec<Vec<String>> = device
        .interfaces
        .iter()
        .map(|i| {
            let status = |up: Option<bool>| match up {
                Some(true) => "up",
                Some(false) => "down",
                None => "-",
            };
            let rate = rate_of(i.index);
            vec![
                format!("  {}", names[&i.index]),
                format!("{}/{}", status(i.admin_up), status(i.oper_up)),
                i.speed_bps
                    .map_or_else(|| "-".into(), |s| format!("{}", s / 1_000_000)),
                i.mac.clone().unwrap_or_else(|| "-".into()),
                rate.map_or_else(|| "-".into(), |r| mbps(r.in_bps)),
                rate.map_or_else(|| "-".into(), |r| mbps(r.out_bps)),
                rate.and_then(|r| r.utilization_pct)
                    .map_or_else(|| "-".into(), |u| format!("{u:.1}%")),
                rate.map_or_else(|| "-".into(), |r| format!("{:.2}", r.errors_per_s)),
            ]
        })
        .collect();
    out.push_str(&render::table(
        &[
            "  NAME",
            "ADMIN/OPER",
            "MBIT/S",
            "MAC",
            "IN MBIT/S",
            "OUT MBIT/S",
            "UTIL",
            "ERR/S",
        ],
        &rows,
    ));
    out
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
