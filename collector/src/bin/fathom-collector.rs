//! `fathom-collector`: the collector daemon. See `fathom_collector::cli`.

fn main() -> std::process::ExitCode {
    fathom_collector::cli::collector_main()
}
