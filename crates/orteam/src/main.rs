//! The `orteam` binary: everything lives in `orteam-cli`; this only maps its result to an exit code.

/// mimalloc: the gateway allocates a request's state on a worker thread and frees parts of it
/// on the ledger writer thread; glibc's malloc spends a large share of the hot path on such
/// cross-thread frees (docs/BENCHMARKS.md). `--cfg orteam_system_allocator` keeps the system
/// allocator, for heap profilers that intercept malloc.
#[cfg(not(orteam_system_allocator))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    #[cfg(all(unix, not(orteam_system_allocator)))]
    restart_with_on_demand_commits();
    orteam_cli::main()
}

/// mimalloc reads its options from the environment once, before `main`; this one only takes
/// effect for a process started with it.
#[cfg(all(unix, not(orteam_system_allocator)))]
const ARENA_EAGER_COMMIT: &str = "MIMALLOC_ARENA_EAGER_COMMIT";

/// Commits the allocator's arena memory on demand. With mimalloc's default on Linux (eager
/// commit wherever the kernel overcommits), a gateway holding 1,000 streams peaked at 106 MiB
/// RSS instead of 68 MiB (docs/BENCHMARKS.md). mimalloc reads the setting only at process
/// start, so the process restarts itself once with it (same PID, arguments and descriptors);
/// an explicit setting in the environment is respected.
#[cfg(all(unix, not(orteam_system_allocator)))]
fn restart_with_on_demand_commits() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(ARENA_EAGER_COMMIT).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    let err = command.args(args).env(ARENA_EAGER_COMMIT, "0").exec();
    // Only reached when exec failed: run as we are.
    eprintln!("warning: could not restart with on-demand allocator commits: {err}");
}
