//! Starting and stopping a gateway: open the ledger, load the catalog, start the workers and
//! background jobs; on shutdown stop accepting, let open requests and streams finish, wait for
//! every settlement, then flush the ledger. Nothing recorded in memory is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orteam_core::SharedClock;
use orteam_ledger::{Ledger, LedgerOptions};
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::catalog::Catalog;
use crate::config::GatewayConfig;
use crate::gateway::{Gateway, GatewayWorker};
use crate::health::KeyVerdict;
use crate::metrics::Metrics;
use crate::server::{self, ServerHandle};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The ledger's own message names the database (no "ledger:" prefix to repeat it).
    #[error(transparent)]
    Ledger(#[from] orteam_ledger::LedgerError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("upstream client: {0}")]
    Client(#[from] orteam_openrouter::ClientError),
    #[error("upstream: {0}")]
    Upstream(#[from] crate::upstream::UpstreamError),
    #[error(transparent)]
    Trace(#[from] crate::trace::TraceStartError),
    #[error("{0}")]
    Sso(String),
    /// Upstream rejected the shared key at start: every member without their own key would get
    /// upstream's 401, so the gateway does not start.
    #[error(
        "the shared key in {} is unusable: {why}; set it to an inference key of the OpenRouter account at {base_url}",
        orteam_core::env::OPENROUTER_API_KEY
    )]
    UpstreamKeyRejected { base_url: String, why: String },
}

/// A running gateway.
pub struct RunningGateway {
    pub gateway: Arc<Gateway>,
    server: ServerHandle,
    background: tokio::task::JoinHandle<()>,
}

impl RunningGateway {
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// `http://ADDR/v1`: what an OpenAI SDK's `base_url` should be.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.local_addr())
    }

    /// Waits for the shutdown token, then drains: workers (open requests and streams), then
    /// settlement tasks, then the ledger's queued writes.
    pub async fn wait(self) -> Result<(), orteam_ledger::LedgerError> {
        let RunningGateway {
            gateway: gw,
            mut server,
            background,
        } = self;
        server.wait().await;
        // Normally done already (it closed the listener); abort in case the workers stopped
        // on their own.
        background.abort();
        gw.stopping.cancel();
        gw.tasks.close();
        if tokio::time::timeout(gw.config.drain, gw.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("settlement tasks still running at the drain deadline");
        }
        let flushed = gw.ledger.shutdown().await;
        // Only now may the workers' runtimes (and what runs on them) stop.
        drop(server);
        // The exporter's last batch (its HTTP request runs on this runtime: wait off it).
        let traced = gw.clone();
        if traced.tracing.is_some() {
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(t) = &traced.tracing {
                    t.shutdown();
                }
            })
            .await;
        }
        flushed
    }
}

/// Opens everything and starts serving on `listener` (bind it yourself; port 0 is fine).
pub async fn start(
    config: GatewayConfig,
    listener: std::net::TcpListener,
    clock: SharedClock,
    shutdown: CancellationToken,
) -> Result<RunningGateway, StartError> {
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new());
    let retries = metrics.upstream_retries.clone();
    let openrouter = orteam_openrouter::Client::builder()
        .base_url(config.upstream_base_url.clone())
        .api_key(
            config
                .upstream_key
                .clone()
                .unwrap_or_else(|| secrecy::SecretString::from(String::new())),
        )
        .on_retry(move |_| {
            retries.inc();
        })
        .build()?;
    // The shared key is checked before anything is opened or created: a key upstream rejects
    // stops the start with one line; upstream not answering does not (readiness stays false
    // until the background check gets an answer).
    let key_verdict = match &config.upstream_key {
        Some(_) => Some(crate::health::judge_upstream_key(&openrouter).await),
        None => None,
    };
    match &key_verdict {
        Some(KeyVerdict::Refused(why)) => {
            return Err(StartError::UpstreamKeyRejected {
                base_url: config.upstream_base_url.clone(),
                why: why.clone(),
            });
        }
        Some(KeyVerdict::Unreachable(why)) => tracing::warn!(
            %why,
            "cannot check the shared key ({}) at start; starting anyway, /health/ready answers 503 until upstream accepts it",
            orteam_core::env::OPENROUTER_API_KEY
        ),
        _ => {}
    }
    let mut options = LedgerOptions::serving().with_clock(clock.clone());
    if let Some(id) = &config.instance_id {
        options = options.with_instance_id(id.clone());
    }
    let ledger = Ledger::open(&config.database_url, options).await?;
    let resolved = ledger.resolved_in_flight();
    if resolved.in_flight > 0 {
        tracing::warn!(
            in_flight = resolved.in_flight,
            "requests the previous gateway had in flight are charged provisionally; reconciliation corrects them"
        );
    }
    // The shared key is the gateway's, not a stray: `team apply --prune` must never delete it.
    if let (Some(KeyVerdict::Accepted), Some(secret)) = (&key_verdict, &config.upstream_key)
        && let Err(err) = ledger.register_gateway_key(secret).await
    {
        tracing::warn!(%err, "could not register the shared key in the ledger");
    }
    let catalog = Arc::new(Catalog::new(openrouter.clone()));
    match catalog.refresh().await {
        Ok(n) => tracing::info!(models = n, "model catalog loaded"),
        Err(err) => tracing::warn!(%err, "model catalog unavailable at start; will retry"),
    }
    let admin = admin::router(
        AdminState::new(
            ledger.clone(),
            catalog.clone(),
            metrics.clone(),
            config.admin_token.as_ref(),
        )
        .with_metrics_token(config.metrics_token.as_ref())
        .with_member_labels(config.member_labels)
        .with_sso(
            config
                .sso
                .clone()
                .map(crate::sso::Sso::new)
                .transpose()
                .map_err(StartError::Sso)?,
        ),
    );
    let mut gateway = Gateway::new(
        config.clone(),
        ledger,
        catalog.clone(),
        openrouter,
        clock,
        admin,
        metrics,
    );
    if let Some(otel) = &config.otel {
        gateway.tracing = Some(crate::trace::Tracing::start(otel)?);
        tracing::info!(endpoint = %otel.traces_endpoint, "OpenTelemetry traces on");
    }
    if let Some(verdict) = key_verdict {
        gateway.health.record(verdict);
    }
    let gateway = Arc::new(gateway);
    let upstream =
        crate::gateway::upstream_settings(&config.upstream_base_url, config.first_byte_timeout)?;
    let gw = gateway.clone();
    // The listener closes only after readiness has said "not ready" for a while.
    let stop_accepting = CancellationToken::new();
    let server = server::spawn(
        listener,
        config.workers,
        server::ServerLimits {
            header_read_timeout: config.header_read_timeout,
            max_connections: config.max_connections,
            drain: config.drain,
        },
        stop_accepting.clone(),
        move |_| GatewayWorker::new(gw.clone(), &upstream),
    )
    .map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let background = tokio::spawn(background_jobs(
        gateway.clone(),
        config.catalog_refresh,
        shutdown,
        stop_accepting,
    ));
    Ok(RunningGateway {
        gateway,
        server,
        background,
    })
}

async fn background_jobs(
    gw: Arc<Gateway>,
    every: Duration,
    shutdown: CancellationToken,
    stop_accepting: CancellationToken,
) {
    let refresh = async {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(err) = gw.catalog.refresh().await {
                tracing::warn!(%err, "catalog refresh failed; keeping the previous table");
            }
        }
    };
    let check_key = async {
        let mut tick = tokio::time::interval(crate::health::UPSTREAM_KEY_CHECK_EVERY);
        loop {
            tick.tick().await;
            gw.health.check_upstream_key(&gw.openrouter).await;
        }
    };
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = refresh => {}
        () = check_key => {}
    }
    // Graceful shutdown: unready first, so load balancers stop sending, then stop accepting.
    gw.health.start_draining();
    let notice = gw.config.unready_before_drain;
    if !notice.is_zero() {
        tracing::info!(
            seconds = notice.as_secs_f64(),
            "shutting down: /health/ready now answers 503; still accepting until the notice ends"
        );
        tokio::time::sleep(notice).await;
    }
    stop_accepting.cancel();
}
