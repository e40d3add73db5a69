//! `orteam mcp`: the MCP server (stdio by default, streamable HTTP with `--http`).

use std::process::ExitCode;

use anyhow::{Context, bail};
use secrecy::SecretString;

use crate::args::McpArgs;

pub async fn run(args: McpArgs) -> anyhow::Result<ExitCode> {
    let mut config = orteam_mcp::McpConfig::from_env()?;
    if args.allow_write {
        config.allow_write = true;
    }
    match args.http {
        None => orteam_mcp::serve_stdio(config).await?,
        Some(addr) => {
            let Some(token) = args.http_token.filter(|t| !t.trim().is_empty()) else {
                bail!("--http needs a bearer token: set ORTEAM_MCP_TOKEN or pass --http-token");
            };
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let local = listener.local_addr()?;
            eprintln!(
                "{} at http://{local}{}",
                orteam_mcp::startup_line("streamable HTTP", config.allow_write),
                orteam_mcp::MCP_HTTP_PATH
            );
            let shutdown = crate::shutdown::on_signal();
            orteam_mcp::serve_http(config, listener, SecretString::from(token), shutdown).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
