//! `orteam sim`: a stateful local OpenRouter for tests, benchmarks and the demo.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use orteam_core::{ControllableClock, Money, env};
use orteam_sim::{FaultRule, SimConfig};

use crate::args::SimArgs;

pub async fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    let config = config_from_args(&args)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let shutdown = crate::shutdown::on_signal();
    // The shared key and the env file exist before the first request is answered, so whoever
    // waits for the simulator to answer can source the file at once.
    let (handle, shared_key) = orteam_sim::spawn_on_after(listener, config, |sim| {
        args.env_file
            .as_deref()
            .map(|path| write_env_file(sim, path))
            .transpose()
    })
    .await
    .context("starting the simulator")?;
    let shared_key = shared_key?;
    // The first line is what scripts wait for: the base URL clients should use. The keys are
    // the simulator's own (local, worthless): shown so a newcomer can follow the README.
    let mut out = std::io::stdout();
    writeln!(out, "{}", handle.base_url())?;
    writeln!(
        out,
        "management key ({}): {}",
        env::OPENROUTER_PROVISIONING_KEY,
        handle.provisioning_key()
    )?;
    match (&shared_key, &args.env_file) {
        (Some(key), Some(path)) => writeln!(
            out,
            "shared inference key ({}): {key}\nall three written to {} (source it)",
            env::OPENROUTER_API_KEY,
            path.display()
        )?,
        _ => writeln!(
            out,
            "shared inference key ({}): start with --env-file FILE to have one created, or create one with POST {}/keys and the management key",
            env::OPENROUTER_API_KEY,
            handle.base_url()
        )?,
    }
    out.flush()?;
    tracing::info!(base_url = %handle.base_url(), "simulator ready; Ctrl-C to stop");
    shutdown.cancelled().await;
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Creates the shared inference key and writes the `export` lines to `path` (0600, replaced
/// atomically). Returns the key's secret.
fn write_env_file(sim: &orteam_sim::SimHandle, path: &Path) -> anyhow::Result<String> {
    let (secret, _hash) = sim.create_key("orteam-shared", None, None);
    let text = format!(
        "# Written by `orteam sim`: a local OpenRouter, its management key and a shared inference key.\n\
         export {}={}\nexport {}={}\nexport {}={}\n",
        env::OPENROUTER_BASE_URL,
        sim.base_url(),
        env::OPENROUTER_PROVISIONING_KEY,
        sim.provisioning_key(),
        env::OPENROUTER_API_KEY,
        secret,
    );
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(secret)
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
