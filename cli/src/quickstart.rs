//! `fathom quickstart`: a collector on an embedded store in `./fathom-data`,
//! an agent enrolled on this very host, its first CI printed, and both kept
//! running until Ctrl-C. Run again, it picks up where it left off (same
//! data, same agent key, same CI).
//!
//! Both run in this process, from the same libraries as `fathom-collector`
//! and `fathom-agent`, over real HTTPS on loopback.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fathom_agent::config::{AgentConfig, CollectorTrust};
use fathom_agent::runner::{self, Mode};
use fathom_shared::tls::Trust;
use tokio::sync::watch;

use super::client::{Client, ClientFile};
use fathom_collector::cmdb::{AgentRecord, CiRecord};
use fathom_collector::config::CollectorConfig;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the collector keeps its store, certificate and tokens, and the
    /// agent its key and spool.
    #[arg(long, default_value = "fathom-data")]
    data_dir: PathBuf,
    /// Where the collector listens; if the port is taken, any free port on
    /// the same address is used instead.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Give up waiting for the first inventory after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Exit once the first inventory is shown instead of running until Ctrl-C.
    #[arg(long)]
    exit_after_first_inventory: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let data_dir = std::path::absolute(&args.data_dir)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let mut config = CollectorConfig::with_data_dir(data_dir.clone());
    config.listen = args.listen;
    step(&format!(
        "Starting the collector (data in {})",
        data_dir.display()
    ));
    let collector = match fathom_collector::server::start(&config, stopped(stop_rx.clone())).await {
        Ok(c) => c,
        Err(e) if is_addr_in_use(&e) => {
            config.listen.set_port(0);
            fathom_collector::server::start(&config, stopped(stop_rx.clone())).await?
        }
        Err(e) => return Err(e),
    };
    done(&format!("listening on {}", collector.url()));

    let client_file = ClientFile {
        url: Some(collector.url()),
        token: None,
        token_file: Some(collector.admin_token_path.clone()),
        fingerprint: Some(collector.fingerprint.to_string()),
        ca_file: None,
    };
    let client_path = data_dir.join("client.toml");
    std::fs::write(&client_path, toml::to_string(&client_file)?)
        .with_context(|| format!("cannot write {}", client_path.display()))?;
    let admin_token = std::fs::read_to_string(&collector.admin_token_path)
        .with_context(|| format!("cannot read {}", collector.admin_token_path.display()))?;
    let client = Client::new(
        collector.url().parse()?,
        admin_token.trim().to_owned(),
        &Trust::Pinned(collector.fingerprint),
    )?;

    let agent_config = AgentConfig {
        collector_url: collector.url().parse()?,
        trust: CollectorTrust::Pinned(collector.fingerprint),
        enrollment_token: None,
        state_dir: data_dir.join("agent"),
        host_root: "/".into(),
        inventory_interval: Duration::from_secs(
            fathom_agent::config::DEFAULT_INVENTORY_INTERVAL_SECS,
        ),
        metrics_interval: Duration::from_secs(fathom_agent::config::DEFAULT_METRICS_INTERVAL_SECS),
        spool_max_bytes: fathom_agent::config::DEFAULT_SPOOL_MAX_BYTES,
        spool_max_reports: fathom_agent::config::DEFAULT_SPOOL_MAX_REPORTS,
        max_backoff: Duration::from_secs(5),
        // A few files whose changes matter on any server, so drift on them
        // shows up in the demo too.
        watch_files: QUICKSTART_WATCH.iter().map(|p| p.to_string()).collect(),
        push_on_change: true,
        change_debounce: Duration::from_millis(fathom_agent::config::DEFAULT_CHANGE_DEBOUNCE_MS),
        snmp: None,
    };
    let identity = fathom_agent::identity::Identity::load_or_create(&agent_config.state_dir)?;
    let agent_id = identity.agent_id();
    let token = if identity.is_enrolled() {
        None
    } else {
        step("Creating a one-use enrollment token");
        let created: serde_json::Value = client
            .post(
                "v1/enrollment-tokens",
                &serde_json::json!({"ttl_secs": 600, "uses": 1}),
            )
            .await?;
        done("ok");
        Some(
            created["token"]
                .as_str()
                .context("token missing from the answer")?
                .to_owned(),
        )
    };
    drop(identity);
    step(&format!("Starting the agent {agent_id} on this host"));
    let agent = tokio::spawn(runner::run(
        agent_config,
        token,
        Mode::Daemon,
        stopped(stop_rx.clone()),
    ));
    done("ok");

    step("Waiting for its first inventory");
    let started = Instant::now();
    // A fresh inventory, not the one a previous run left: reported since now.
    let started_ms = fathom_support::now_ms();
    let mut dots = false;
    let (ci, packages): (CiRecord, Option<usize>) = loop {
        if agent.is_finished() {
            let result = agent.await?;
            result.context("the agent stopped")?;
            bail!("the agent stopped before its first inventory arrived");
        }
        let agents: Vec<AgentRecord> = client.get("v1/agents").await?;
        if let Some(ci_id) = agents
            .iter()
            .find(|a| a.agent_id == agent_id)
            .and_then(|a| a.ci_id)
        {
            let shown: serde_json::Value = client.get(&format!("v1/cis/{ci_id}")).await?;
            let ci: CiRecord = serde_json::from_value(shown["ci"].clone())?;
            if ci.last_seen_ms.is_some_and(|t| t >= started_ms) {
                let packages = shown["inventory"]["inventory"]["packages"]
                    .as_array()
                    .map(Vec::len);
                break (ci, packages);
            }
        }
        if started.elapsed() > Duration::from_secs(args.timeout_secs) {
            bail!("no inventory from the agent after {} s", args.timeout_secs);
        }
        print!(".");
        dots = true;
        std::io::stdout().flush()?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let took = format!("took {:.1} s", started.elapsed().as_secs_f64());
    done(&if dots { format!(" {took}") } else { took });

    let attr = |k: &str| {
        ci.attributes
            .get(k)
            .cloned()
            .unwrap_or_else(|| "unknown".into())
    };
    println!();
    println!("This host is now configuration item {} in the CMDB:", ci.id);
    println!("  hostname   {}", ci.name);
    println!("  OS         {}", attr("os.pretty_name"));
    println!("  kernel     {}", attr("os.kernel"));
    // As this inventory found them, not as the CMDB last authorized them.
    let packages = packages.unwrap_or_else(|| {
        ci.attributes
            .keys()
            .filter(|k| k.starts_with("packages."))
            .count()
    });
    println!("  packages   {packages}");
    println!();
    println!("Explore it from another terminal, in this directory:");
    println!("  cargo run --release --bin fathom -- ci list");
    println!("  cargo run --release --bin fathom -- ci show {}", ci.id);
    println!("  cargo run --release --bin fathom -- ci history {}", ci.id);
    println!("  cargo run --release --bin fathom -- agent list");
    println!(
        "  cargo run --release --bin fathom -- incident list   (unauthorized changes, capacity, outages)"
    );
    println!("  cargo run --release --bin fathom -- rfc forward-schedule");
    println!(
        "  cargo run --release --bin fathom -- metrics list {}",
        ci.id
    );
    println!(
        "  cargo run --release --bin fathom -- metrics query 'fs.used_pct:*' --class {}",
        ci.class
    );
    println!("  cargo run --release --bin fathom -- capacity plan --html plan.html");
    println!(
        "  cargo run --release --bin fathom -- availability report {}",
        ci.id
    );
    println!("  cargo run --release --bin fathom -- token create --ttl 1h --uses 5");
    println!(
        "(the CLI finds the collector through {}; add --json for scripts)",
        client_path.display()
    );
    println!();

    if !args.exit_after_first_inventory {
        println!("Collector and agent keep running; press Ctrl-C to stop.");
        fathom_support::process::shutdown_signal().await;
    }
    let _ = stop_tx.send(true);
    agent.await??;
    collector.stopped().await?;
    Ok(())
}

const QUICKSTART_WATCH: [&str; 4] = [
    "/etc/ssh/sshd_config",
    "/etc/sudoers",
    "/etc/sudoers.d/*",
    "/etc/hosts",
];

fn is_addr_in_use(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::AddrInUse)
}

fn step(what: &str) {
    print!("{what} ... ");
    let _ = std::io::stdout().flush();
}

fn done(what: &str) {
    println!("{what}");
}
