//! The router (it mounts every handler), the stats/fault middleware, and the serve loop with
//! persistence. The state handlers share lives in `shared.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{ApiError, SimError};
use crate::faults::Fault;
use crate::shared::Shared;
use crate::{
    activity, admin, chat, completions, embeddings, guardrails, keys, messages, models, org,
    responses, workspaces,
};

/// How often a dirty state is written to the state file.
const PERSIST_INTERVAL: Duration = Duration::from_secs(2);

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
    if shared.hooks.recording.load(Ordering::Relaxed) && req.method() == axum::http::Method::POST {
        let path = path.to_owned();
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        if let Some(log) = shared.hooks.bodies.lock().as_mut() {
            log.push((path, bytes.clone()));
        }
        return next
            .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
            .await;
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
        .route("/models/count", get(models::count_models))
        .route("/model/{author}/{slug}", get(models::get_model))
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
        .merge(guardrails::routes())
        .merge(workspaces::routes());
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
