//! The `orteam` binary: everything lives in `orteam-cli`; this only maps its result to an exit code.

fn main() -> std::process::ExitCode {
    orteam_cli::main()
}
