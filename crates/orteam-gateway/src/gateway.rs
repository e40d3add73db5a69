//! The gateway's shared state and each worker's handler: which path goes to the pipeline (one
//! per wire format), to the token counter, or to the admin router.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::body::Body;
use http::{HeaderName, HeaderValue, Method, Request, Response, Uri};
use hyper::body::Incoming;
use orteam_core::SharedClock;
use orteam_ledger::Ledger;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::catalog::Catalog;
use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::metrics::{self, Metrics, RequestLabels};
use crate::ratelimit::RateLimits;
use crate::server::{LocalFuture, Worker};
use crate::trace::RequestTrace;
use crate::upstream::{Upstream, UpstreamSettings};
use crate::wire::Wire;
use crate::{auth, health, pipeline, refused};

pub const HEADER_MODEL: HeaderName = HeaderName::from_static("x-orteam-model");
pub const HEADER_MAX_TOKENS: HeaderName = HeaderName::from_static("x-orteam-max-tokens");
pub const HEADER_REQUEST_ID: HeaderName = HeaderName::from_static("x-orteam-request-id");
/// What the gateway removed from the request before forwarding it (priced server tools).
pub const HEADER_REMOVED: HeaderName = HeaderName::from_static("x-orteam-removed");
pub const HEADER_GENERATION_ID: HeaderName = HeaderName::from_static("x-generation-id");

/// State shared by every worker.
pub struct Gateway {
    pub config: Arc<GatewayConfig>,
    pub ledger: Ledger,
    pub catalog: Arc<Catalog>,
    pub metrics: Arc<Metrics>,
    pub rate_limits: RateLimits,
    /// Settlement and generation look-ups that outlive their request; drained at shutdown.
    pub tasks: TaskTracker,
    /// Cancelled once serving has stopped: look-ups still waiting for upstream give up and
    /// leave their charge provisional for reconciliation, so a shutdown is not held up.
    pub stopping: tokio_util::sync::CancellationToken,
    pub clock: SharedClock,
    /// A client for `/generation` look-ups (its key is swapped per request).
    pub openrouter: orteam_openrouter::Client,
    /// `Bearer <shared key>`, marked sensitive.
    pub(crate) shared_authorization: Option<HeaderValue>,
    pub(crate) attribution: Vec<(HeaderName, HeaderValue)>,
    request_prefix: String,
    request_seq: AtomicU64,
    /// The admin API and dashboard (axum), for everything but the hot path.
    pub admin: axum::Router,
    /// Readiness: draining, the upstream key's last verdict.
    pub health: crate::health::Health,
    /// The OpenTelemetry exporter, when traces are on.
    pub tracing: Option<crate::trace::Tracing>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(
        config: Arc<GatewayConfig>,
        ledger: Ledger,
        catalog: Arc<Catalog>,
        openrouter: orteam_openrouter::Client,
        clock: SharedClock,
        admin: axum::Router,
        metrics: Arc<Metrics>,
    ) -> Self {
        let shared_authorization = config.upstream_key.as_ref().and_then(auth::bearer);
        let shared_authorization_present = shared_authorization.is_some();
        let mut attribution = Vec::new();
        if let Ok(v) = HeaderValue::from_str(&config.attribution_title) {
            attribution.push((HeaderName::from_static("x-title"), v));
        }
        if let Some(r) = &config.attribution_referer
            && let Ok(v) = HeaderValue::from_str(r)
        {
            attribution.push((HeaderName::from_static("http-referer"), v));
        }
        // Unique per start, not only per instance: a restarted instance keeps its id
        // (`ORTEAM_INSTANCE_ID`), and a repeated request id would be recorded once.
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let request_prefix = format!("req_{}_{started:x}_", ledger.instance_id());
        Gateway {
            config,
            ledger,
            catalog,
            metrics,
            rate_limits: RateLimits::default(),
            tasks: TaskTracker::new(),
            stopping: tokio_util::sync::CancellationToken::new(),
            clock,
            openrouter,
            shared_authorization,
            attribution,
            request_prefix,
            request_seq: AtomicU64::new(0),
            admin,
            health: crate::health::Health::new(shared_authorization_present),
            tracing: None,
        }
    }

    pub(crate) fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("{}{n}", self.request_prefix)
    }
}

/// Upstream settings for `base_url` that know every route's path.
pub fn upstream_settings(
    base_url: &str,
    first_byte_timeout: std::time::Duration,
) -> Result<UpstreamSettings, crate::upstream::UpstreamError> {
    UpstreamSettings::new(base_url, first_byte_timeout)?
        .with_routes(&Wire::ALL.map(Wire::upstream_path))
}

/// One worker's handler: the shared gateway plus this thread's upstream connection pool.
pub struct GatewayWorker {
    pub(crate) gw: Arc<Gateway>,
    pub(crate) upstream: Upstream,
}

impl GatewayWorker {
    /// `upstream` must know the routes' paths ([`upstream_settings`]).
    pub fn new(gw: Arc<Gateway>, upstream: &UpstreamSettings) -> Self {
        GatewayWorker {
            gw,
            upstream: Upstream::new(upstream),
        }
    }

    /// Where a route's request goes upstream (Messages keeps the client's query: Claude Code
    /// sends `?beta=true`).
    pub(crate) fn upstream_path(
        &self,
        wire: Wire,
        query: Option<&str>,
    ) -> Result<Uri, GatewayError> {
        let path = match (wire, query) {
            (Wire::Messages, Some(q)) => self.upstream.path(wire.upstream_path(), Some(q)).ok(),
            _ => self.upstream.route(wire as usize),
        };
        path.ok_or_else(|| GatewayError::BadRequest {
            message: "the query string cannot be passed upstream".into(),
            param: None,
        })
    }

    /// Runs a route's pipeline and counts the outcome.
    async fn serve(&self, wire: Wire, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let trace = RequestTrace::start(self.gw.tracing.as_ref(), wire, req.headers());
        let mut seen = refused::Seen::default();
        let (resp, stream) = match pipeline::run(self, wire, req, started, &trace, &mut seen).await
        {
            Ok(pair) => pair,
            Err(err) => {
                trace.failed(&err);
                refused::record(&self.gw, wire, seen, &err);
                self.gw
                    .metrics
                    .errors
                    .get_or_create(&metrics::ErrorLabels { code: err.code() })
                    .inc();
                (err.to_response_as(wire.error_shape()), false)
            }
        };
        trace.responded(resp.status(), stream);
        let labels = RequestLabels {
            status: resp.status().as_u16(),
            stream,
            route: wire.as_str(),
        };
        self.gw.metrics.requests.get_or_create(&labels).inc();
        if !stream {
            self.gw
                .metrics
                .request_duration
                .get_or_create(&labels)
                .observe(started.elapsed().as_secs_f64());
        }
        resp
    }
}

impl Worker for GatewayWorker {
    fn handle(
        self: Rc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> LocalFuture<Response<Body>> {
        Box::pin(async move {
            let path = req.uri().path();
            if let Some(wire) = Wire::from_path(path) {
                if req.method() != Method::POST {
                    return GatewayError::MethodNotAllowed("POST")
                        .to_response_as(wire.error_shape());
                }
                return self.serve(wire, req).await;
            }
            if path == "/v1/messages/count_tokens" || path == "/api/v1/messages/count_tokens" {
                return match pipeline::count_tokens(&self, req).await {
                    Ok(resp) => resp,
                    Err(err) => err.to_response_as(Wire::Messages.error_shape()),
                };
            }
            if let Some(resp) = health::answer(&self.gw, req.method(), path).await {
                return resp;
            }
            if crate::current_key::is_route(path) {
                return crate::current_key::serve(&self.gw, req).await;
            }
            // Everything else (models, metrics, admin, dashboard) goes through axum.
            let (mut parts, body) = req.into_parts();
            // The admin API records where each action came from.
            parts.extensions.insert(axum::extract::ConnectInfo(peer));
            let req = Request::from_parts(parts, Body::new(body));
            match self.gw.admin.clone().oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        })
    }
}
