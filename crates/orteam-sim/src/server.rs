//! Shared state, the router, the stats/fault middleware, and the serve loop with persistence.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use orteam_core::{Clock, ControllableClock};
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{ApiError, SimError};
use crate::fasthash::FastMap;
use crate::faults::{Fault, Faults};
use crate::models::{Catalog, build_catalog};
use crate::state::{State as SimState, write_atomically};
use crate::{
    SimConfig, activity, admin, chat, completions, embeddings, guardrails, keys, messages, models,
    org, responses,
};

/// How often a dirty state is written to the state file.
const PERSIST_INTERVAL: Duration = Duration::from_secs(2);

/// Request counters by method and path (two levels so the hot path looks up without allocating).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    map: RwLock<FastMap<Method, FastMap<Box<str>, AtomicU64>>>,
}

impl Stats {
    pub fn hit(&self, method: &Method, path: &str) {
        if let Some(c) = self.map.read().get(method).and_then(|m| m.get(path)) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.map
            .write()
            .entry(method.clone())
            .or_default()
            .entry(path.into())
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, method: &str, path: &str) -> u64 {
        let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
            return 0;
        };
        self.map
            .read()
            .get(&method)
            .and_then(|m| m.get(path))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let map = self.map.read();
        map.iter()
            .flat_map(|(m, paths)| {
                paths
                    .iter()
                    .map(move |(p, c)| (format!("{m} {p}"), c.load(Ordering::Relaxed)))
            })
            .collect()
    }
}

/// Everything handlers share. One per simulator; nothing is global.
pub(crate) struct Shared {
    pub provisioning_key: String,
    pub key_limit_status: StatusCode,
    pub legacy_mcp_paths: bool,
    pub free_model_rate_limits: bool,
    pub clock: Arc<ControllableClock>,
    pub catalog: Catalog,
    pub state: Mutex<SimState>,
    pub faults: Faults,
    pub stats: Stats,
    /// Woken whenever a generation is recorded (lets tests wait without sleeping).
    pub generation_recorded: Notify,
    /// Tasks inside [`crate::SimHandle::wait_for_generation`]; the hot path skips the notify
    /// (which takes a lock) when there are none.
    pub generation_waiters: AtomicUsize,
    pub dirty: AtomicBool,
    pub state_file: Option<PathBuf>,
}

impl Shared {
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        let key_limit_status = match config.key_limit_status {
            402 => StatusCode::PAYMENT_REQUIRED,
            403 => StatusCode::FORBIDDEN,
            other => {
                return Err(SimError::Config(format!(
                    "key_limit_status must be 402 or 403, got {other}"
                )));
            }
        };
        let now = config.clock.now();
        let state = match &config.state_file {
            Some(path) if path.exists() => {
                let bytes = std::fs::read(path).map_err(|source| SimError::StateRead {
                    path: path.clone(),
                    source,
                })?;
                SimState::from_snapshot_json(&bytes, config.max_generations, path)?
            }
            _ => SimState::new(config.initial_credits, config.max_generations, now),
        };
        Ok(Shared {
            provisioning_key: config.provisioning_key,
            key_limit_status,
            legacy_mcp_paths: config.legacy_mcp_paths,
            free_model_rate_limits: config.free_model_rate_limits,
            clock: config.clock,
            catalog: build_catalog(),
            state: Mutex::new(state),
            faults: Faults::new(config.faults),
            stats: Stats::default(),
            generation_recorded: Notify::new(),
            generation_waiters: AtomicUsize::new(0),
            dirty: AtomicBool::new(false),
            state_file: config.state_file,
        })
    }

    pub fn mark_dirty(&self) {
        // Load first: on the hot path the flag is usually already set, and a load keeps the
        // cache line shared.
        if !self.dirty.load(Ordering::Relaxed) {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Call after a generation was inserted (and the state lock released).
    pub fn notify_generation(&self) {
        if self.generation_waiters.load(Ordering::SeqCst) > 0 {
            self.generation_recorded.notify_waiters();
        }
    }

    /// The simulator clock as a unix timestamp.
    pub fn clock_now_ts(&self) -> i64 {
        self.clock.now().timestamp()
    }

    /// After a generation was recorded and the state lock released: marks the state dirty and
    /// wakes generation waiters.
    pub fn generation_recorded_after_unlock(&self) {
        self.mark_dirty();
        self.notify_generation();
    }

    /// Writes the state file if one is configured and something changed.
    pub fn persist(&self) -> Result<(), SimError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let bytes = {
            let st = self.state.lock();
            st.to_snapshot_json()
        };
        let bytes = bytes.map_err(|e| SimError::StateWrite {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_atomically(path, &bytes).inspect_err(|_| self.mark_dirty())
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// Counts every request, then applies latency and status faults to API paths.
async fn stats_and_faults(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    shared.stats.hit(req.method(), path);
    if path.starts_with("/api/") {
        let f = shared.faults.take_http(req.method().as_str(), path);
        if f.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(f.latency_ms)).await;
        }
        if let Some(Fault::Status {
            status,
            retry_after,
            message,
        }) = f.status
        {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let msg = message.unwrap_or_else(|| default_fault_message(code).to_owned());
            let mut err = ApiError::new(code, msg);
            if let Some(ra) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                err = err.with_header(HeaderName::from_static("retry-after"), ra);
            }
            return err.into_response_for(path);
        }
    }
    next.run(req).await
}

fn default_fault_message(code: StatusCode) -> &'static str {
    match code.as_u16() {
        429 => "Rate limit exceeded",
        500 => "Internal Server Error",
        502 => "Provider returned error",
        503 => "No available providers for this request",
        504 | 524 => "Request timed out",
        529 => "Provider overloaded",
        _ => code.canonical_reason().unwrap_or("Injected fault"),
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut api = Router::new()
        .route("/models", get(models::list_models))
        .route("/models/user", get(models::list_user_models))
        .route(
            "/models/{author}/{slug}/endpoints",
            get(models::model_endpoints),
        )
        .route("/endpoints/zdr", get(models::zdr_endpoints))
        .route("/chat/completions", post(chat::chat_completions))
        .route("/messages", post(messages::messages))
        .route("/responses", post(responses::responses))
        .route("/completions", post(completions::completions))
        .route("/embeddings", post(embeddings::embeddings))
        .route("/embeddings/models", get(embeddings::list_embedding_models))
        .route("/key", get(keys::current_key))
        .route("/auth/key", get(keys::current_key))
        .route("/credits", get(keys::credits))
        .route("/keys", get(keys::list_keys).post(keys::create_key))
        .route(
            "/keys/{hash}",
            get(keys::get_key)
                .patch(keys::update_key)
                .delete(keys::delete_key),
        )
        .route("/activity", get(activity::activity))
        .route("/generation", get(activity::generation))
        .route("/organization/members", get(org::list_members))
        .merge(guardrails::routes());
    if shared.legacy_mcp_paths {
        api = api.merge(guardrails::legacy_routes());
    }
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/api/v1", api)
        .nest("/__sim", admin::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            stats_and_faults,
        ))
        .with_state(shared)
}

/// Serves `shared` on `listener` until `shutdown` is cancelled, persisting periodically and at
/// the end.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> Result<(), SimError> {
    let tracker = TaskTracker::new();
    if shared.state_file.is_some() {
        // A snapshot right away makes the file exist as soon as the simulator is up.
        shared.mark_dirty();
        let (s, token) = (shared.clone(), shutdown.clone());
        let t = tracker.clone();
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(PERSIST_INTERVAL);
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let s2 = s.clone();
                match t.spawn_blocking(move || s2.persist()).await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "periodic state save failed"),
                    Err(e) => tracing::warn!(error = %e, "periodic state save panicked"),
                    Ok(Ok(())) => {}
                }
            }
        });
    }
    let app = router(shared.clone());
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::trace!(error = %e, "set_nodelay failed");
        }
    });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    // Final save: everything up to the last request.
    let saved = shared.persist();
    result.map_err(SimError::Serve)?;
    saved
}
