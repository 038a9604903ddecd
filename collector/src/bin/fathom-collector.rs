//! `fathom-collector`: the collector daemon. See `fathom_collector::cli`.

/// glibc's allocator fragments under sled's page cache as the CMDB grows,
/// and reconciliation time grew with it (1.0 ms per report at 1,000 CIs,
/// 2.6 ms at 100,000); with mimalloc it stays flat. See docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fathom_collector::cli::collector_main()
}
