//! The gateway itself: shared state, the per-worker handler and the chat completion pipeline.
//!
//! `POST /v1/chat/completions`, top to bottom (each stage is one call below):
//! authenticate → read and parse the body → tier policy → price → budget-aware max_tokens →
//! rate limit → reserve → forward (retrying 429/5xx before the first byte) → answer and settle.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use orteam_core::{Money, SharedClock};
use orteam_ledger::{AuthContext, AuthError, Ledger, LedgerError, Outcome, Reservation, Usage};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::catalog::Catalog;
use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::metrics::{self, Metrics, RequestLabels, TokenLabels, UsageLabels};
use crate::policy::{self, ModelDecision};
use crate::pricing::{self, ModelPrice, Quote};
use crate::ratelimit::{Limits, RateLimits};
use crate::request::ChatRequest;
use crate::response::{self, SseScanner};
use crate::server::{LocalFuture, Worker};
use crate::stream_body::{MeteredStream, StreamEnd};
use crate::upstream::{Upstream, UpstreamBody, UpstreamError, UpstreamSettings};

pub const HEADER_MODEL: HeaderName = HeaderName::from_static("x-orteam-model");
pub const HEADER_MAX_TOKENS: HeaderName = HeaderName::from_static("x-orteam-max-tokens");
pub const HEADER_REQUEST_ID: HeaderName = HeaderName::from_static("x-orteam-request-id");
const HEADER_GENERATION_ID: HeaderName = HeaderName::from_static("x-generation-id");

/// State shared by every worker.
pub struct Gateway {
    pub config: Arc<GatewayConfig>,
    pub ledger: Ledger,
    pub catalog: Arc<Catalog>,
    pub metrics: Arc<Metrics>,
    pub rate_limits: RateLimits,
    /// Settlement and generation look-ups that outlive their request; drained at shutdown.
    pub tasks: TaskTracker,
    pub clock: SharedClock,
    /// A client for `/generation` look-ups (its key is swapped per request).
    pub openrouter: orteam_openrouter::Client,
    /// `Bearer <shared key>`, marked sensitive.
    shared_authorization: Option<HeaderValue>,
    attribution: Vec<(HeaderName, HeaderValue)>,
    request_prefix: String,
    request_seq: AtomicU64,
    /// The admin API and dashboard (axum), for everything but the hot path.
    pub admin: axum::Router,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub(crate) fn bearer(secret: &SecretString) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {}", secret.expose_secret())).ok()?;
    v.set_sensitive(true);
    Some(v)
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
        let shared_authorization = config.upstream_key.as_ref().and_then(bearer);
        let mut attribution = Vec::new();
        if let Ok(v) = HeaderValue::from_str(&config.attribution_title) {
            attribution.push((HeaderName::from_static("x-title"), v));
        }
        if let Some(r) = &config.attribution_referer
            && let Ok(v) = HeaderValue::from_str(r)
        {
            attribution.push((HeaderName::from_static("http-referer"), v));
        }
        let request_prefix = format!("req_{}_", ledger.instance_id());
        Gateway {
            config,
            ledger,
            catalog,
            metrics,
            rate_limits: RateLimits::default(),
            tasks: TaskTracker::new(),
            clock,
            openrouter,
            shared_authorization,
            attribution,
            request_prefix,
            request_seq: AtomicU64::new(0),
            admin,
        }
    }

    fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("{}{n}", self.request_prefix)
    }
}

/// One worker's handler: the shared gateway plus this thread's upstream connection pool.
pub struct GatewayWorker {
    gw: Arc<Gateway>,
    upstream: Upstream,
}

impl GatewayWorker {
    pub fn new(gw: Arc<Gateway>, upstream: &UpstreamSettings) -> Self {
        GatewayWorker {
            gw,
            upstream: Upstream::new(upstream),
        }
    }
}

impl Worker for GatewayWorker {
    fn handle(
        self: Rc<Self>,
        req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> LocalFuture<Response<Body>> {
        Box::pin(async move {
            let path = req.uri().path();
            if path == "/v1/chat/completions" || path == "/api/v1/chat/completions" {
                if req.method() != Method::POST {
                    return GatewayError::MethodNotAllowed("POST").to_response();
                }
                let started = Instant::now();
                let result = self.chat(req, started).await;
                let (resp, stream) = match result {
                    Ok(pair) => pair,
                    Err(err) => {
                        self.gw
                            .metrics
                            .errors
                            .get_or_create(&metrics::ErrorLabels { code: err.code() })
                            .inc();
                        (err.to_response(), false)
                    }
                };
                let labels = RequestLabels {
                    status: resp.status().as_u16(),
                    stream,
                };
                self.gw.metrics.requests.get_or_create(&labels).inc();
                if !stream {
                    self.gw
                        .metrics
                        .request_duration
                        .get_or_create(&labels)
                        .observe(started.elapsed().as_secs_f64());
                }
                return resp;
            }
            // Everything else (models, health, metrics, admin, dashboard) goes through axum.
            let (parts, body) = req.into_parts();
            let req = Request::from_parts(parts, Body::new(body));
            match self.gw.admin.clone().oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        })
    }
}

/// Where a member's requests go upstream.
struct Route {
    authorization: HeaderValue,
    upstream_key_hash: Option<String>,
    /// For `/generation` look-ups of this request.
    secret: SecretString,
}

impl GatewayWorker {
    fn authenticate(&self, req: &Request<Incoming>) -> Result<AuthContext, GatewayError> {
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                GatewayError::Unauthorized(
                    "missing API key: send `Authorization: Bearer ot-…`".into(),
                )
            })?;
        let secret = SecretString::from(presented.to_owned());
        self.gw.ledger.authenticate(&secret).map_err(|e| {
            GatewayError::Unauthorized(match e {
                AuthError::Malformed => "invalid API key: orteam keys look like `ot-…`".into(),
                other => other.to_string(),
            })
        })
    }

    fn route(&self, auth: &AuthContext) -> Result<Route, GatewayError> {
        if let Some(own) = &auth.upstream
            && let Some(secret) = &own.secret
        {
            let authorization = bearer(secret)
                .ok_or_else(|| GatewayError::Internal("unusable upstream key".into()))?;
            return Ok(Route {
                authorization,
                upstream_key_hash: Some(own.key_hash.clone()),
                secret: secret.clone(),
            });
        }
        match (&self.gw.shared_authorization, &self.gw.config.upstream_key) {
            (Some(authorization), Some(secret)) => Ok(Route {
                authorization: authorization.clone(),
                upstream_key_hash: None,
                secret: secret.clone(),
            }),
            _ => Err(GatewayError::Upstream {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "no upstream OpenRouter key is configured for this member (set OPENROUTER_API_KEY on the gateway)".into(),
            }),
        }
    }

    async fn read_body(&self, req: Request<Incoming>) -> Result<Bytes, GatewayError> {
        let limit = self.gw.config.max_body_bytes;
        if let Some(ct) = req.headers().get(CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !ct
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
            {
                return Err(GatewayError::UnsupportedMediaType);
            }
        }
        if let Some(len) = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            && len > limit
        {
            return Err(GatewayError::PayloadTooLarge { limit });
        }
        match Limited::new(req.into_body(), limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                Err(GatewayError::PayloadTooLarge { limit })
            }
            Err(err) => Err(GatewayError::BadRequest {
                message: format!("could not read the request body: {err}"),
                param: None,
            }),
        }
    }

    /// The whole pipeline; returns the response and whether it is a stream.
    async fn chat(
        &self,
        req: Request<Incoming>,
        started: Instant,
    ) -> Result<(Response<Body>, bool), GatewayError> {
        let gw = &self.gw;
        // 1. authenticate
        let auth = self.authenticate(&req)?;
        // 2. read and parse only what we need
        let body = self.read_body(req).await?;
        let chat = ChatRequest::parse(&body)?;
        // 3. tier policy
        let served_model = match policy::decide(&auth.tier, &chat.model) {
            ModelDecision::Allowed => None,
            ModelDecision::Downgraded(to) => Some(to),
            ModelDecision::Denied { allowed } => {
                return Err(GatewayError::ModelNotAllowed {
                    model: chat.model.clone(),
                    tier: auth.tier.id.clone(),
                    allowed,
                });
            }
        };
        let model = served_model.as_deref().unwrap_or(&chat.model);
        // 4. price the worst case; a model missing from the catalog is never free
        let price = gw
            .catalog
            .price(model)
            .await
            .ok_or_else(|| GatewayError::UnknownModel(model.to_owned()))?;
        let prompt_bound = chat.messages_bytes as u64;
        // 5–7. budget-aware max_tokens, rate limits, reserve. The clamp reads the budgets from
        // memory; if a concurrent request took the room first, the reservation fails and the
        // quote is redone once against the fresh figures.
        let limits = Limits {
            requests_per_minute: auth.tier.requests_per_minute,
            tokens_per_minute: auth.tier.tokens_per_minute,
        };
        let member: Arc<str> = Arc::from(auth.member_id.as_str());
        let route = self.route(&auth)?;
        let mut attempt = 0;
        let (quote, reservation) = loop {
            attempt += 1;
            let quote = self.quote(&auth, &price, prompt_bound, chat.max_tokens)?;
            if attempt == 1 {
                gw.rate_limits.check(
                    &member,
                    limits,
                    prompt_bound.saturating_add(quote.max_tokens),
                )?;
            }
            match gw.ledger.reserve(&auth.member_id, quote.worst_case).await {
                Ok(r) => break (quote, r),
                Err(e) if attempt < 3 && e.budget_exceeded().is_some() => continue,
                Err(e) => return Err(ledger_error(e)),
            }
        };
        // 8. forward
        let request_id = gw.next_request_id();
        let upstream_body =
            Bytes::from(chat.upstream_body(model, quote.max_tokens, &auth.member_id));
        let resp = match self.forward(&route, upstream_body).await {
            Ok(resp) => resp,
            Err(err) => {
                reservation.release();
                return Err(err);
            }
        };
        gw.metrics
            .upstream_first_byte
            .observe(started.elapsed().as_secs_f64());
        let mut meta = Settlement {
            gw: gw.clone(),
            request_id,
            auth,
            route,
            requested_model: chat.model.clone(),
            served_model: model.to_owned(),
            streamed: chat.stream,
            started,
            header_generation_id: resp
                .headers()
                .get(HEADER_GENERATION_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        let is_stream = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let status = resp.status();
        if !status.is_success() {
            // Upstream refused after its own checks: nothing was generated.
            reservation.release();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            return Ok((passthrough_error(status, bytes), false));
        }
        let mut headers = vec![(HEADER_REQUEST_ID, header_value(&meta.request_id))];
        if served_model.is_some() {
            headers.push((HEADER_MODEL, header_value(model)));
        }
        if quote.adjusted {
            headers.push((HEADER_MAX_TOKENS, HeaderValue::from(quote.max_tokens)));
        }
        if let Some(g) = resp.headers().get(HEADER_GENERATION_ID) {
            headers.push((HEADER_GENERATION_ID, g.clone()));
        }
        if is_stream {
            meta.streamed = true;
            let scanner = SseScanner::new(chat.client_wants_stream_usage);
            let response = stream_response(meta, reservation, resp.into_body(), scanner, headers);
            return Ok((response, true));
        }
        // 9. non-stream: settle at the exact cost, then answer
        let bytes = match resp.into_body().collect().await {
            Ok(c) => c.to_bytes(),
            Err(err) => {
                // The answer was generated and billed but not delivered: charge provisionally
                // and look the exact cost up.
                let generation_id = meta.header_generation_id.clone();
                meta.settle_unknown(reservation, generation_id, Outcome::Failed)
                    .await;
                return Err(GatewayError::Upstream {
                    status: StatusCode::BAD_GATEWAY,
                    message: format!("upstream answer broke off: {err}"),
                });
            }
        };
        let info = response::parse_completion(&bytes).unwrap_or_default();
        // The answer goes out only once its usage event is durable. With the ledger's journal
        // (SQLite) the exact settle is one buffered append, written with the others of this
        // scheduler tick; a hang-up cannot lose it (the event is already queued for the
        // database, and a cancelled flusher writes on drop). A settle that must wait for the
        // database, or one that needs a cost look-up, runs in a tracked task a hang-up cannot
        // cancel.
        match info.usage.clone() {
            Some(billed) if gw.ledger.journaling() => {
                meta.settle_exact(reservation, &info, billed, Outcome::Ok)
                    .await?;
            }
            usage => {
                let settled = gw.tasks.spawn(async move {
                    match usage {
                        Some(billed) => {
                            meta.settle_exact(reservation, &info, billed, Outcome::Ok)
                                .await
                        }
                        None => {
                            let generation_id = info
                                .generation_id
                                .clone()
                                .or_else(|| meta.header_generation_id.clone());
                            meta.settle_unknown(reservation, generation_id, Outcome::Provisional)
                                .await;
                            Ok(())
                        }
                    }
                });
                match settled.await {
                    Ok(result) => result?,
                    Err(join) => {
                        return Err(GatewayError::Internal(format!("settlement task: {join}")));
                    }
                }
            }
        }
        let mut out = Response::new(Body::from(bytes));
        out.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (k, v) in headers {
            out.headers_mut().insert(k, v);
        }
        Ok((out, false))
    }

    /// Fits the request to the tightest budget (see [`pricing::quote`]).
    fn quote(
        &self,
        auth: &AuthContext,
        price: &ModelPrice,
        prompt_bound: u64,
        requested: Option<u64>,
    ) -> Result<Quote, GatewayError> {
        let gw = &self.gw;
        let tightest = gw
            .ledger
            .tightest_remaining(&auth.member_id)
            .map_err(ledger_error)?;
        pricing::quote(
            price,
            prompt_bound,
            requested,
            tightest.as_ref().map(|t| t.remaining),
            gw.config.min_answer_tokens,
            gw.config.default_max_tokens,
        )
        .map_err(|e| match &tightest {
            Some(t) => GatewayError::BudgetExhausted {
                scope: format!("{} {:?}", t.scope.as_str(), t.scope_id),
                window: t.window.to_string(),
                detail: format!(
                    "{} remains, a minimal answer costs {}",
                    e.remaining.to_usd(6),
                    e.minimum.to_usd(6)
                ),
                reset_at: t.reset_at,
            },
            None => GatewayError::Internal("quote refused without a budget".into()),
        })
    }

    /// Sends the request; retries 429/5xx and connection failures before the first byte,
    /// within the retry deadline. Nothing is charged for a request that never got an answer.
    async fn forward(
        &self,
        route: &Route,
        body: Bytes,
    ) -> Result<http::Response<UpstreamBody>, GatewayError> {
        let deadline = Instant::now() + self.gw.config.retry_deadline;
        let mut attempt: u32 = 0;
        loop {
            let result = self
                .upstream
                .chat(&route.authorization, &self.gw.attribution, body.clone())
                .await;
            let retry_after = match &result {
                Ok(resp) if is_retryable(resp.status()) => {
                    Some(retry_after(resp.headers()).unwrap_or_else(|| backoff(attempt)))
                }
                Ok(_) => None,
                Err(UpstreamError::Connect(_)) => Some(backoff(attempt)),
                Err(_) => None,
            };
            match retry_after {
                Some(wait) if Instant::now() + wait < deadline => {
                    attempt += 1;
                    self.gw.metrics.upstream_retries.inc();
                    // Drain a small error body so the connection can be reused.
                    if let Ok(resp) = result {
                        let _ = resp.into_body().collect().await;
                    }
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    return result.map_err(|e| GatewayError::Upstream {
                        status: match e {
                            UpstreamError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                            _ => StatusCode::BAD_GATEWAY,
                        },
                        message: e.to_string(),
                    });
                }
            }
        }
    }
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    orteam_openrouter::parse_retry_after(v, std::time::SystemTime::now())
}

fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1u64 << attempt.min(6));
    let jitter = rand::random_range(0..=base / 2);
    Duration::from_millis(base.min(2_000) + jitter)
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("invalid"))
}

/// An upstream error answer: OpenRouter's body as is (it is OpenAI-compatible), or an
/// OpenAI-style envelope when it is not JSON.
fn passthrough_error(status: StatusCode, bytes: Bytes) -> Response<Body> {
    if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v.get("error").is_some()) {
        let mut out = Response::new(Body::from(bytes));
        *out.status_mut() = status;
        out.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return out;
    }
    GatewayError::Upstream {
        status,
        message: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
    }
    .to_response()
}

fn ledger_error(e: LedgerError) -> GatewayError {
    if let Some(b) = e.budget_exceeded() {
        return GatewayError::BudgetExhausted {
            scope: format!("{} {:?}", b.scope.as_str(), b.scope_id),
            window: b.window.to_string(),
            detail: format!(
                "limit {}, spent {}, held by requests in flight {}",
                b.limit.to_usd(6),
                b.spent.to_usd(6),
                b.held.to_usd(6)
            ),
            reset_at: b.reset_at,
        };
    }
    match e {
        LedgerError::Closed => GatewayError::ShuttingDown,
        other => GatewayError::Internal(other.to_string()),
    }
}

/// Everything needed to record a request once its cost is known.
#[derive(Clone)]
struct Settlement {
    gw: Arc<Gateway>,
    request_id: String,
    auth: AuthContext,
    route: Route,
    requested_model: String,
    served_model: String,
    streamed: bool,
    started: Instant,
    /// Upstream's `X-Generation-Id` header: known even when the client hangs up before the
    /// first chunk.
    header_generation_id: Option<String>,
}

impl Clone for Route {
    fn clone(&self) -> Self {
        Route {
            authorization: self.authorization.clone(),
            upstream_key_hash: self.upstream_key_hash.clone(),
            secret: self.secret.clone(),
        }
    }
}

impl Settlement {
    fn usage(&self, info: &response::CompletionInfo, cost: Money, outcome: Outcome) -> Usage {
        let billed = info.usage.clone().unwrap_or_default();
        Usage {
            request_id: self.request_id.clone(),
            virtual_key_id: Some(self.auth.key_id.clone()),
            upstream_key_hash: self.route.upstream_key_hash.clone(),
            requested_model: self.requested_model.clone(),
            served_model: Some(
                info.model
                    .clone()
                    .unwrap_or_else(|| self.served_model.clone()),
            ),
            provider: info.provider.clone(),
            prompt_tokens: billed.prompt_tokens,
            completion_tokens: billed.completion_tokens,
            reasoning_tokens: billed.reasoning_tokens,
            cached_tokens: billed.cached_tokens,
            cost,
            generation_id: info.generation_id.clone(),
            streamed: self.streamed,
            outcome,
            latency_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            title: Some(self.gw.config.attribution_title.clone()),
            route: orteam_core::ApiRoute::Chat,
        }
    }

    fn record_metrics(&self, info: &response::CompletionInfo, cost: Money) {
        let m = &self.gw.metrics;
        let model = info
            .model
            .clone()
            .unwrap_or_else(|| self.served_model.clone());
        if let Some(b) = &info.usage {
            for (kind, n) in [
                ("prompt", b.prompt_tokens),
                ("completion", b.completion_tokens),
            ] {
                m.tokens
                    .get_or_create(&TokenLabels {
                        member: self.auth.member_id.clone(),
                        model: model.clone(),
                        kind,
                    })
                    .inc_by(n);
            }
        }
        m.cost_nanodollars
            .get_or_create(&UsageLabels {
                member: self.auth.member_id.clone(),
                model,
            })
            .inc_by(metrics::nanodollars(cost));
    }

    /// Settles at the cost upstream reported.
    async fn settle_exact(
        &self,
        reservation: Reservation,
        info: &response::CompletionInfo,
        billed: response::Billed,
        outcome: Outcome,
    ) -> Result<(), GatewayError> {
        let usage = self.usage(info, billed.cost, outcome);
        self.record_metrics(info, billed.cost);
        reservation
            .settle_journaled(usage)
            .await
            .map_err(ledger_error)?;
        Ok(())
    }

    /// Upstream generated something whose cost we did not see (a cut stream, a disconnect, a
    /// body without usage): charge the reserved amount provisionally, then look the exact cost
    /// up by generation id in the background. With no generation id nothing was generated, so
    /// the hold is released.
    async fn settle_unknown(
        &self,
        reservation: Reservation,
        generation_id: Option<String>,
        outcome: Outcome,
    ) {
        let Some(generation_id) = generation_id else {
            reservation.release();
            return;
        };
        let info = response::CompletionInfo {
            generation_id: Some(generation_id.clone()),
            ..Default::default()
        };
        let provisional = reservation.amount();
        let mut usage = self.usage(&info, provisional, Outcome::Provisional);
        if outcome == Outcome::Failed {
            usage.outcome = Outcome::Provisional;
        }
        if let Err(err) = reservation.settle(usage).await {
            tracing::error!(%err, request_id = %self.request_id, "provisional settle failed");
            return;
        }
        let this = self.clone();
        self.gw.tasks.spawn(async move {
            this.correct_from_generation(generation_id).await;
        });
    }

    /// Polls `/generation` until upstream knows the exact cost (it may lag the request).
    async fn correct_from_generation(&self, generation_id: String) {
        let client = self.gw.openrouter.with_api_key(self.route.secret.clone());
        let mut wait = Duration::from_millis(200);
        for _ in 0..20 {
            match client.generation(&generation_id).await {
                Ok(g) => {
                    if let Some(cost) = g.total_cost {
                        match self.gw.ledger.correct_cost(&self.request_id, cost).await {
                            Ok(_) => {
                                let info = response::CompletionInfo {
                                    model: g.model.clone(),
                                    ..Default::default()
                                };
                                self.record_metrics(&info, cost);
                            }
                            Err(err) => {
                                tracing::warn!(%err, request_id = %self.request_id, "cost correction failed");
                            }
                        }
                        return;
                    }
                }
                Err(err) if err.is_not_found() => {}
                Err(err) => {
                    tracing::debug!(%err, %generation_id, "generation look-up failed; retrying");
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
        tracing::warn!(%generation_id, request_id = %self.request_id, "exact cost still unknown; left provisional for reconciliation");
    }
}

fn stream_response(
    meta: Settlement,
    reservation: Reservation,
    upstream: UpstreamBody,
    scanner: SseScanner,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Response<Body> {
    let gw = meta.gw.clone();
    gw.metrics.streams_open.inc();
    let on_end = Box::new(move |end: StreamEnd| {
        let gw = meta.gw.clone();
        gw.metrics.streams_open.dec();
        let labels = RequestLabels {
            status: 200,
            stream: true,
        };
        gw.metrics
            .request_duration
            .get_or_create(&labels)
            .observe(meta.started.elapsed().as_secs_f64());
        gw.tasks.clone().spawn(async move {
            let (scanner, complete) = match end {
                StreamEnd::Finished(s) => {
                    let complete = s.done && s.error.is_none();
                    (s, complete)
                }
                StreamEnd::UpstreamError(s, _) | StreamEnd::ClientGone(s) => (s, false),
            };
            match scanner.info.usage.clone() {
                Some(billed) => {
                    let outcome = if complete { Outcome::Ok } else { Outcome::Partial };
                    if let Err(err) = meta.settle_exact(reservation, &scanner.info, billed, outcome).await {
                        tracing::error!(%err, request_id = %meta.request_id, "stream settle failed");
                    }
                }
                None => {
                    let generation_id = scanner
                        .info
                        .generation_id
                        .clone()
                        .or_else(|| meta.header_generation_id.clone());
                    meta.settle_unknown(reservation, generation_id, Outcome::Partial)
                        .await;
                }
            }
        })
    });
    let body = MeteredStream::new(upstream, scanner, on_end);
    let mut out = Response::new(Body::new(body));
    let h = out.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    for (k, v) in headers {
        h.insert(k, v);
    }
    out
}
