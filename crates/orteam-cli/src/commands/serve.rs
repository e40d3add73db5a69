//! `orteam serve`: the OpenAI-compatible gateway.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use orteam_core::SharedClock;
use orteam_gateway::GatewayConfig;

use crate::args::ServeArgs;

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = GatewayConfig::load(args.config.as_deref(), |k| std::env::var(k).ok())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(workers) = args.workers {
        anyhow::ensure!(workers > 0, "--workers must be at least 1");
        config.workers = workers;
    }
    if let Some(url) = args.database_url {
        config.database_url = url;
    }
    if config.upstream_key.is_none() {
        tracing::warn!(
            "OPENROUTER_API_KEY is not set: only members with their own upstream key can be served"
        );
    }
    if config.admin_token.is_none() {
        tracing::warn!("ORTEAM_ADMIN_TOKEN is not set: the admin API and dashboard are disabled");
    }
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let clock: SharedClock = super::team::clock()?;
    let shutdown = crate::shutdown::on_signal();
    let running = orteam_gateway::start(config, listener, clock, shutdown)
        .await
        .context("starting the gateway")?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", running.base_url())?;
    out.flush()?;
    tracing::info!(base_url = %running.base_url(), "gateway ready; Ctrl-C to stop");
    running
        .wait()
        .await
        .context("flushing the ledger at shutdown")?;
    tracing::info!("gateway stopped; every settled request is recorded");
    Ok(ExitCode::SUCCESS)
}
