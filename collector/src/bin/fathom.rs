//! `fathom`: the operator CLI. See `fathom_collector::cli`.

fn main() -> std::process::ExitCode {
    fathom_collector::cli::fathom_main()
}
