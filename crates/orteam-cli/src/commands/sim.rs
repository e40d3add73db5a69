//! `orteam sim`: a stateful local OpenRouter for tests, benchmarks and the demo.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use orteam_core::{ControllableClock, Money};
use orteam_sim::{FaultRule, SimConfig};

use crate::args::SimArgs;

pub async fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    let config = config_from_args(&args)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let shutdown = crate::shutdown::on_signal();
    let handle = orteam_sim::spawn_on(listener, config)
        .await
        .context("starting the simulator")?;
    // The one line scripts wait for: the base URL clients should use.
    let mut out = std::io::stdout();
    writeln!(out, "{}", handle.base_url())?;
    out.flush()?;
    tracing::info!(base_url = %handle.base_url(), "simulator ready; Ctrl-C to stop");
    shutdown.cancelled().await;
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn config_from_args(args: &SimArgs) -> anyhow::Result<SimConfig> {
    let mut config = SimConfig::default();
    if let Some(key) = &args.provisioning_key {
        if key.trim().is_empty() {
            bail!("--provisioning-key must not be empty");
        }
        config.provisioning_key = key.clone();
    }
    config.initial_credits = Money::parse_non_negative(&args.credits)
        .with_context(|| format!("--credits {:?}", args.credits))?;
    config.state_file = args.state.clone();
    config.faults = args
        .faults
        .iter()
        .map(|f| {
            f.parse::<FaultRule>()
                .map_err(|e| anyhow::anyhow!("--fault {f:?}: {e}"))
        })
        .collect::<anyhow::Result<_>>()?;
    if !matches!(args.key_limit_status, 402 | 403) {
        bail!("--key-limit-status must be 402 or 403");
    }
    config.key_limit_status = args.key_limit_status;
    config.legacy_mcp_paths = args.legacy_mcp_paths;
    let clock = ControllableClock::new();
    clock.set_offset(chrono::TimeDelta::seconds(args.clock_offset_seconds));
    config.clock = Arc::new(clock);
    Ok(config)
}
