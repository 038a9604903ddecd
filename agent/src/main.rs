//! `fathom-agent`: see `fathom_agent::cli`.

fn main() -> std::process::ExitCode {
    fathom_agent::cli::main()
}
