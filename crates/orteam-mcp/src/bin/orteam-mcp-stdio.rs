//! `orteam-mcp-stdio`: the MCP server on stdio, configured from the environment
//! (`OPENROUTER_PROVISIONING_KEY`, `OPENROUTER_BASE_URL`, `OPENROUTER_ADMIN_ALLOW_WRITE`).
//! The `orteam mcp` command is the user-facing entry point; this binary serves tests and
//! MCP clients that want a dedicated executable.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .init();
    let config = match orteam_mcp::McpConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match orteam_mcp::serve_stdio(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
