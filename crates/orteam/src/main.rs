//! The `orteam` binary: everything lives in `orteam-cli`; this only maps its result to an exit code.

/// mimalloc: the gateway allocates a request's state on a worker thread and frees parts of it
/// on the ledger writer thread; glibc's malloc spends a large share of the hot path on such
/// cross-thread frees (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    orteam_cli::main()
}
