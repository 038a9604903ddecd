//! `fathom-agent` command line: `run`, `inventory`, `status`, `probe snmp`,
//! `validate-config`.

use fathom_support::logging::{init_logging, LogFormat};
use fathom_support::process::{exit_code, shutdown_signal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::AgentConfig;
use crate::probe::{self, HostRoot};
use crate::runner::{self, Mode};

const DEFAULT_CONFIG: &str = "/etc/fathom/agent.toml";

/// Fathom discovery agent: inventories this host and reports to a Fathom collector.
#[derive(Debug, Parser)]
#[command(name = "fathom-agent", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "FATHOM_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll if needed, then report inventory and metrics until stopped.
    Run {
        /// The agent's config file.
        #[arg(long, short, env = "FATHOM_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Enrollment token (overrides the config file); needed only on first start.
        #[arg(long, env = "FATHOM_ENROLLMENT_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Send one inventory and one metrics sample, wait until delivered, exit.
        #[arg(long)]
        once: bool,
    },
    /// Print the inventory this agent would send, without sending it.
    Inventory {
        /// Take `host_root` and `watch_files` from this agent.toml (the
        /// flags below add to or override them).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Directory standing in for `/` (e.g. a host mounted into a
        /// container); default `/`, or the config's.
        #[arg(long)]
        host_root: Option<PathBuf>,
        /// A file or glob to fingerprint, as `watch_files` in agent.toml
        /// (repeatable).
        #[arg(long = "watch")]
        watch: Vec<String>,
        /// Print the whole report as JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Show this agent's id, enrollment and spool.
    Status {
        /// The agent's config file.
        #[arg(long, short, env = "FATHOM_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Query a device directly and print what it says, without reporting it.
    Probe {
        #[command(subcommand)]
        what: ProbeCommand,
    },
    /// Check a config file and exit non-zero, naming the file and key, if it is wrong.
    ValidateConfig {
        /// The agent's config file.
        #[arg(long, short, env = "FATHOM_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    exit_code("fathom-agent", dispatch(cli.command))
}

#[derive(Debug, Subcommand)]
enum ProbeCommand {
    /// Poll one device over SNMP (v2c, or v3 with --v3-user) and print what it
    /// says: system group, chassis, components, interfaces, addresses, neighbours.
    Snmp(SnmpArgs),
}

/// `HOST:PORT`, `HOST`, `IP`, `[IPv6]:PORT`; port 161 when none is given.
fn resolve_target(target: &str) -> anyhow::Result<std::net::SocketAddr> {
    use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
    if let Ok(address) = target.parse::<SocketAddr>() {
        return Ok(address);
    }
    if let Ok(ip) = target.parse::<IpAddr>() {
        return Ok((ip, 161).into());
    }
    let with_port = match target.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => target.to_owned(),
        _ => format!("{target}:161"),
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("--target {target:?}: {e}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("--target {target:?} resolves to no address"))
}

/// The passphrase in `file`, else in the environment variable `env`.
fn secret(file: Option<&std::path::Path>, env: &str, what: &str) -> anyhow::Result<String> {
    let value = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {what} file {}: {e}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_owned(),
        None => std::env::var(env)
            .map_err(|_| anyhow::anyhow!("{what}: give a file with --{what}-file or set {env}"))?,
    };
    // RFC 3414: passphrases of fewer than 8 characters are refused.
    if value.chars().count() < 8 {
        anyhow::bail!("{what} must be at least 8 characters (RFC 3414)");
    }
    Ok(value)
}

#[derive(Debug, clap::Args)]
struct SnmpArgs {
    /// The device, as HOST:PORT (port 161 if omitted).
    #[arg(long)]
    target: String,
    /// The SNMPv2c community (ignored with --v3-user).
    #[arg(long, default_value = "public")]
    community: String,
    /// Use SNMPv3 as this user (USM).
    #[arg(long)]
    v3_user: Option<String>,
    /// SNMPv3 authentication protocol: sha, sha224, sha256, sha384, sha512.
    #[arg(long, default_value = "sha256")]
    auth: String,
    /// File holding the SNMPv3 authentication passphrase (or set
    /// FATHOM_SNMP_AUTH_PASSWORD); never on the command line.
    #[arg(long)]
    auth_password_file: Option<PathBuf>,
    /// SNMPv3 privacy: `aes` (AES-128) for authPriv; omit for authNoPriv.
    #[arg(long)]
    privacy: Option<String>,
    /// File holding the SNMPv3 privacy passphrase (or set
    /// FATHOM_SNMP_PRIV_PASSWORD).
    #[arg(long)]
    priv_password_file: Option<PathBuf>,
    /// How long to wait for each answer, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Attempts after the first, per request.
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// Print JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

fn probe_snmp(args: SnmpArgs) -> anyhow::Result<ExitCode> {
    use crate::snmp::client::{Security, User};
    let SnmpArgs {
        target,
        community,
        timeout_ms,
        retries,
        json,
        ..
    } = &args;
    let security = match &args.v3_user {
        None => Security::Community(community.clone()),
        Some(name) => {
            let auth = crate::snmp::usm::Auth::parse(&args.auth)
                .map_err(|e| anyhow::anyhow!("--auth {e}"))?;
            let auth_password = secret(
                args.auth_password_file.as_deref(),
                "FATHOM_SNMP_AUTH_PASSWORD",
                "auth-password",
            )?;
            let priv_password = match args.privacy.as_deref() {
                None => None,
                Some(p) if p.eq_ignore_ascii_case("aes") || p.eq_ignore_ascii_case("aes128") => {
                    Some(secret(
                        args.priv_password_file.as_deref(),
                        "FATHOM_SNMP_PRIV_PASSWORD",
                        "priv-password",
                    )?)
                }
                Some(other) => {
                    anyhow::bail!("--privacy {other:?}: only aes (AES-128) is supported")
                }
            };
            Security::User(User {
                name: name.clone(),
                auth,
                auth_password,
                priv_password,
            })
        }
    };
    let (timeout_ms, retries, json) = (*timeout_ms, *retries, *json);
    let address = resolve_target(target)?;
    let settings = crate::snmp::client::Settings {
        security,
        timeout: std::time::Duration::from_millis(timeout_ms),
        retries,
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let found = runtime.block_on(async {
        let mut session = crate::snmp::client::Session::open(address, settings).await?;
        crate::snmp::device::probe(&mut session).await
    })?;
    if json {
        print_out(&serde_json::to_string_pretty(&found)?)?;
    } else {
        let s = &found.system;
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        println!("name          {}", show(&s.sys_name));
        println!("description   {}", show(&s.sys_descr));
        println!("object id     {}", show(&s.sys_object_id));
        println!("vendor        {}", show(&s.vendor));
        println!("location      {}", show(&s.sys_location));
        println!("contact       {}", show(&s.sys_contact));
        println!(
            "uptime        {} s",
            s.sys_uptime_s.map_or("-".into(), |u| u.to_string())
        );
        println!("interfaces    {}", found.interfaces.len());
        for i in &found.interfaces {
            println!(
                "  {:>4} {:<16} {:<17} {}",
                i.index,
                show(&i.name.clone().or(i.descr.clone())),
                show(&i.mac),
                match i.oper_up {
                    Some(true) => "up",
                    Some(false) => "down",
                    None => "-",
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Probe {
            what: ProbeCommand::Snmp(args),
        } => probe_snmp(args),
        Command::Run {
            config,
            token,
            once,
        } => {
            let path = config;
            let config = load(&path)?;
            // A token given on the command line stands in for the file.
            config.preflight(&path, token.is_some())?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let mode = if once { Mode::Once } else { Mode::Daemon };
            let shutdown = async {
                let signal = shutdown_signal().await;
                tracing::info!(signal, "Shutdown requested");
            };
            runtime.block_on(runner::run(config, token, mode, shutdown))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inventory {
            config,
            host_root,
            mut watch,
            json,
        } => {
            for w in &watch {
                probe::files::validate(w).map_err(|e| anyhow::anyhow!("--watch {e}"))?;
            }
            let configured = config.as_deref().map(load).transpose()?;
            let host_root = host_root
                .or_else(|| configured.as_ref().map(|c| c.host_root.clone()))
                .unwrap_or_else(|| "/".into());
            if let Some(c) = &configured {
                watch.extend(c.watch_files.iter().cloned());
            }
            let inventory = probe::collect_inventory_watching(&HostRoot::new(host_root), &watch);
            if json {
                print_out(&serde_json::to_string_pretty(&inventory)?)?;
            } else {
                let os = inventory.host.os.as_ref();
                println!("hostname      {}", inventory.host.hostname);
                println!(
                    "os            {}",
                    os.and_then(|o| o.pretty_name.clone())
                        .unwrap_or_else(|| "unknown".into())
                );
                println!(
                    "kernel        {}",
                    inventory.host.kernel.as_deref().unwrap_or("unknown")
                );
                if let Some(hw) = &inventory.hardware {
                    println!(
                        "cpu           {} ({} threads)",
                        hw.cpu_model, hw.cpu_threads
                    );
                    println!("memory        {} MiB", hw.memory_bytes / (1024 * 1024));
                }
                println!(
                    "filesystems   {}",
                    inventory.filesystems.as_ref().map_or(0, Vec::len)
                );
                println!(
                    "interfaces    {}",
                    inventory.interfaces.as_ref().map_or(0, Vec::len)
                );
                match &inventory.packages {
                    Some(p) => println!("packages      {}", p.len()),
                    None => println!("packages      not read"),
                }
                for e in &inventory.probe_errors {
                    println!("not read      {}: {}", e.probe, e.message);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { config, json } => {
            let config = load(&config)?;
            let identity = crate::identity::Identity::load_or_create(&config.state_dir)?;
            let spool = runner::open_spool(&config)?;
            let status = serde_json::json!({
                "agent_id": identity.agent_id().to_string(),
                "enrolled": identity.is_enrolled(),
                "collector_url": config.collector_url.as_str(),
                "spooled_reports": spool.len(),
                "spooled_bytes": spool.bytes(),
                "snmp": config.snmp.as_ref().map(|s| serde_json::json!({
                    "targets": s.targets.iter().map(|t| t.label()).collect::<Vec<_>>(),
                    "sweeps": s.sweeps.iter().map(|w| w.network.to_string()).collect::<Vec<_>>(),
                    "poll_interval_secs": s.poll_interval.as_secs(),
                    "max_concurrent": s.max_concurrent,
                })),
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("agent id         {}", identity.agent_id());
                println!(
                    "enrolled         {}",
                    if identity.is_enrolled() { "yes" } else { "no" }
                );
                println!("collector        {}", config.collector_url);
                println!("spooled reports  {} ({} bytes)", spool.len(), spool.bytes());
                if let Some(s) = &config.snmp {
                    let sweeps: Vec<String> =
                        s.sweeps.iter().map(|w| w.network.to_string()).collect();
                    println!(
                        "snmp             {} targets, sweeps: {}, every {} s, {} at a time",
                        s.targets.len(),
                        if sweeps.is_empty() {
                            "none".to_owned()
                        } else {
                            sweeps.join(", ")
                        },
                        s.poll_interval.as_secs(),
                        s.max_concurrent
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::ValidateConfig { config } => {
            load(&config)?.preflight(&config, false)?;
            println!("{}: ok", config.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints to stdout; a closed pipe (`| head`) ends output quietly.
fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<AgentConfig> {
    Ok(AgentConfig::from_file(path)?)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_command_and_argument_has_help() {
        let missing = fathom_support::process::missing_help(&super::Cli::command());
        assert!(missing.is_empty(), "no help text:\n{}", missing.join("\n"));
    }
}
