//! `fathom`: the operator CLI. See `fathom_cli`.

/// `fathom quickstart` runs a collector in this process; same allocator as
/// `fathom-collector` (see there).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fathom_cli::fathom_main()
}
