//! `orteam serve`: the OpenAI-compatible gateway.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use orteam_core::{SharedClock, env};
use orteam_gateway::GatewayConfig;

use crate::args::ServeArgs;
use crate::context::{Context, FileSink};

pub async fn run(cx: &Context, args: ServeArgs) -> anyhow::Result<ExitCode> {
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
            "{} is not set: only members with their own upstream key can be served",
            env::OPENROUTER_API_KEY
        );
    }
    if config.admin_token.is_none() {
        tracing::warn!(
            "{} is not set: the admin API and dashboard are disabled",
            env::ORTEAM_ADMIN_TOKEN
        );
    }
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let clock: SharedClock = cx.shared_clock();
    let shutdown = crate::shutdown::on_signal();
    let (clock_for_rotation, shutdown_for_rotation) = (clock.clone(), shutdown.clone());
    let running = orteam_gateway::start(config, listener, clock, shutdown)
        .await
        .context("starting the gateway")?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", running.base_url())?;
    out.flush()?;
    tracing::info!(base_url = %running.base_url(), "gateway ready; Ctrl-C to stop");
    crate::sd_notify::notify("READY=1");
    // Key rotation runs beside the server (its future stays on this task) until shutdown.
    let rotation = async {
        match &args.rotation_secrets_out {
            Some(path) => {
                let sink = FileSink::open(path)?;
                let client = management_client(&running)?;
                let ledger = running.gateway.ledger.clone();
                Ok::<_, anyhow::Error>(Some((sink, client, ledger)))
            }
            None => Ok(None),
        }
    }
    .await?;
    let rotate_shutdown = shutdown_for_rotation.clone();
    let rotate = async move {
        if let Some((sink, client, ledger)) = rotation {
            rotation_loop(
                ledger,
                client,
                sink,
                clock_for_rotation,
                args.rotation_interval,
                rotate_shutdown,
            )
            .await;
        }
    };
    // Reconciliation with OpenRouter: exact costs for provisional charges, totals checked.
    let reconcile = {
        let upstream = orteam_insight::Upstream::from_keys(
            Some(&running.gateway.config.upstream_base_url),
            std::env::var(env::OPENROUTER_PROVISIONING_KEY)
                .ok()
                .filter(|k| !k.is_empty())
                .map(secrecy::SecretString::from),
            running.gateway.config.upstream_key.clone(),
        )?;
        let ledger = running.gateway.ledger.clone();
        let (every, shutdown) = (args.reconcile_interval, shutdown_for_rotation.clone());
        async move {
            if !every.is_zero() {
                orteam_insight::run_reconcile_loop(
                    ledger,
                    upstream,
                    every,
                    std::time::Duration::from_secs(2 * 86_400),
                    shutdown,
                )
                .await;
            }
        }
    };
    // Budget and anomaly alerts, from the team file's `[alerts]` section.
    let alerts = {
        let cfg = match &args.alerts_from {
            Some(path) => {
                let team = orteam_team::file::load(path)?;
                team.alerts
                    .as_ref()
                    .map(orteam_insight::AlertsConfig::from_spec)
            }
            None => None,
        };
        let ledger = running.gateway.ledger.clone();
        let metrics = running.gateway.metrics.clone();
        let (every, shutdown) = (args.alerts_interval, shutdown_for_rotation.clone());
        async move {
            if let Some(cfg) = cfg {
                orteam_insight::run_alerts_loop(
                    ledger,
                    reqwest::Client::new(),
                    cfg,
                    every,
                    shutdown,
                    move |flagged| {
                        metrics.set_anomalies(
                            flagged
                                .iter()
                                .map(|a| (a.kind.as_str(), a.subject.as_str())),
                        )
                    },
                )
                .await;
            }
        }
    };
    let stopping = shutdown_for_rotation.clone();
    let notify_stopping = async move {
        stopping.cancelled().await;
        crate::sd_notify::notify("STOPPING=1");
    };
    let (stopped, (), (), (), ()) =
        tokio::join!(running.wait(), rotate, reconcile, alerts, notify_stopping);
    stopped.context("flushing the ledger at shutdown")?;
    tracing::info!("gateway stopped; every settled request is recorded");
    Ok(ExitCode::SUCCESS)
}

/// A management client for rotating upstream keys (`OPENROUTER_PROVISIONING_KEY`); virtual keys
/// rotate without one.
fn management_client(
    running: &orteam_gateway::RunningGateway,
) -> anyhow::Result<orteam_openrouter::Client> {
    let key = std::env::var(env::OPENROUTER_PROVISIONING_KEY).unwrap_or_default();
    Ok(orteam_openrouter::Client::builder()
        .base_url(running.gateway.config.upstream_base_url.clone())
        .api_key(secrecy::SecretString::from(key))
        .build()?)
}

/// Rotates the keys that are due, every `every`, delivering new secrets to `sink`.
async fn rotation_loop(
    ledger: orteam_ledger::Ledger,
    client: orteam_openrouter::Client,
    mut sink: FileSink,
    clock: SharedClock,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use orteam_team::{NewSecret, SecretKind, SecretSink};
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match orteam_team::rotate_due(&ledger, &client, clock.now()).await {
            Ok(rotated) => {
                for r in rotated {
                    let Some(secret) = r.secret.clone() else {
                        continue;
                    };
                    let kind = if r.new.starts_with("ot-") {
                        SecretKind::Virtual
                    } else {
                        SecretKind::Direct
                    };
                    let delivered = sink.deliver(&NewSecret {
                        member: r.member.clone(),
                        kind,
                        reference: r.new.clone(),
                        secret,
                    });
                    match delivered {
                        Ok(()) => {
                            tracing::info!(member = %r.member, key = %r.new, file = %sink.path.display(), "rotated a key; new secret written")
                        }
                        Err(err) => {
                            tracing::error!(%err, member = %r.member, "rotated a key but could not write its secret; rotate again with `orteam keys rotate`")
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(%err, "rotation check failed; will retry"),
        }
    }
}
