//! A command's life: how it stops (SIGINT or SIGTERM), how it ends (an exit
//! code, or the error chain on stderr), and the check that every command
//! and argument explains itself in `--help`.

use std::process::ExitCode;

/// Ends a command: its own exit code, or the whole error chain on stderr and
/// a failure exit. Shared by every Fathom binary.
pub fn exit_code(program: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("{program}: error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM, naming which; the caller logs it, so
/// the line carries the caller's target.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// The commands and arguments of `cmd`, to any depth, that `--help` would
/// show without a word of explanation (`fathom-agent status json`): every
/// one of Fathom's command lines is checked to have none.
pub fn missing_help(cmd: &clap::Command) -> Vec<String> {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let builtin = ["help", "version"].contains(&arg.get_id().as_str());
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            let here = format!("{path} {}", sub.get_name());
            if sub.get_name() != "help" && sub.get_about().is_none() {
                missing.push(format!("{here} (the command)"));
            }
            walk(sub, &here, missing);
        }
    }
    let mut missing = Vec::new();
    walk(cmd, cmd.get_name(), &mut missing);
    missing
}
