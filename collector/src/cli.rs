//! The `fathom-collector` command line: run the daemon, check a config.
//! (The operator CLI, `fathom`, is its own crate, `fathom-cli`.)

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::CollectorConfig;
use fathom_support::logging::LogFormat;
use fathom_support::process::exit_code;

const DEFAULT_COLLECTOR_CONFIG: &str = "/etc/fathom/collector.toml";

/// Fathom collector: receives signed agent reports and keeps the CMDB.
#[derive(Debug, Parser)]
#[command(name = "fathom-collector", version, about)]
struct CollectorCli {
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
    command: CollectorCommand,
}

#[derive(Debug, Subcommand)]
enum CollectorCommand {
    /// Serve the API until SIGINT or SIGTERM.
    Run {
        /// The config file.
        #[arg(long, short, env = "FATHOM_COLLECTOR_CONFIG", default_value = DEFAULT_COLLECTOR_CONFIG)]
        config: PathBuf,
    },
    /// Check a config file; exit non-zero, naming the file and key, if it is wrong.
    ValidateConfig {
        /// The config file.
        #[arg(long, short, env = "FATHOM_COLLECTOR_CONFIG", default_value = DEFAULT_COLLECTOR_CONFIG)]
        config: PathBuf,
    },
}

pub fn collector_main() -> ExitCode {
    let cli = CollectorCli::parse();
    fathom_support::logging::init_logging(cli.log_format);
    let result = match cli.command {
        CollectorCommand::Run { config: path } => CollectorConfig::from_file(&path)
            .and_then(|config| crate::server::preflight(&config, &path).map(|()| config))
            .map_err(anyhow::Error::from)
            .and_then(|config| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?;
                let result = runtime.block_on(async {
                    let collector = crate::server::start(&config, async {
                        let signal = fathom_support::process::shutdown_signal().await;
                        tracing::info!(signal, "Shutdown requested");
                    })
                    .await?;
                    collector.stopped().await
                });
                // A flush stuck in the kernel must not hold the exit: the
                // runtime would otherwise wait for its thread forever.
                runtime.shutdown_timeout(std::time::Duration::from_secs(1));
                result
            }),
        CollectorCommand::ValidateConfig { config: path } => CollectorConfig::from_file(&path)
            .and_then(|config| crate::server::preflight(&config, &path))
            .map(|()| {
                println!("{}: ok", path.display());
            })
            .map_err(Into::into),
    };
    exit_code("fathom-collector", result.map(|()| ExitCode::SUCCESS))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and every argument says what it is in `--help`.
    #[test]
    fn every_command_and_argument_has_help() {
        let missing = fathom_support::process::missing_help(&super::CollectorCli::command());
        assert!(missing.is_empty(), "no help text:\n{}", missing.join("\n"));
    }
}
