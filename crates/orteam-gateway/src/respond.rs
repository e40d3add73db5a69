//! Stage: answer the member and settle.
//!
//! Non-stream: the answer's bill is read from the body bytes, the usage event is made durable,
//! then the bytes go to the client unchanged. Stream: events pass through as they arrive
//! ([`crate::stream_body`]); the route's terminal event is held back until the usage event is
//! durable, so a client that saw a whole answer is never one the ledger could lose.

use axum::body::Body;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use orteam_ledger::{Outcome, Reservation};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::GatewayError;
use crate::health::KeyVerdict;
use crate::metrics::{ErrorLabels, RequestLabels};
use crate::settle::Settlement;
use crate::sse::SseScanner;
use crate::stream_body::{MeteredStream, StreamEnd};
use crate::upstream::UpstreamBody;

/// Reads a whole answer, settles it, and answers with upstream's bytes.
pub async fn whole(
    meta: Settlement,
    reservation: Reservation,
    upstream: UpstreamBody,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Result<Response<Body>, GatewayError> {
    let gw = meta.gw.clone();
    let bytes = match upstream.collect().await {
        Ok(c) => c.to_bytes(),
        Err(err) => {
            // The answer was generated and billed but not delivered: charge provisionally and
            // look the exact cost up.
            let _ = meta
                .settle_unknown(reservation, &Default::default(), Outcome::Failed)
                .await;
            return Err(GatewayError::Upstream {
                status: StatusCode::BAD_GATEWAY,
                message: format!("upstream answer broke off: {err}"),
            });
        }
    };
    let info = meta.wire.read_answer(&bytes).unwrap_or_default();
    // The answer goes out only once its usage event is durable. With the ledger's journal
    // (SQLite) the exact settle is one buffered append, written with the others of this
    // scheduler tick; a hang-up cannot lose it (the event is already queued for the database,
    // and a cancelled flusher writes on drop). A settle that must wait for the database, or
    // one that needs a cost look-up, runs in a tracked task a hang-up cannot cancel.
    match info.cost() {
        Some(cost) if gw.ledger.journaling() => {
            meta.settle_exact(reservation, &info, cost, Outcome::Ok)
                .await?;
        }
        _ => {
            let settled = gw
                .tasks
                .spawn(async move { meta.settle(reservation, &info, Outcome::Ok).await });
            match settled.await {
                Ok(result) => result?,
                Err(join) => {
                    return Err(GatewayError::Internal(format!("settlement task: {join}")));
                }
            }
        }
    }
    Ok(with_headers(
        Response::new(Body::from(bytes)),
        "application/json",
        headers,
    ))
}

/// Passes a stream through, settling when it ends however it ends.
pub fn stream(
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
            route: meta.wire.as_str(),
        };
        gw.metrics
            .request_duration
            .get_or_create(&labels)
            .observe(meta.started.elapsed().as_secs_f64());
        gw.tasks.clone().spawn(async move {
            let (scanner, complete) = match end {
                StreamEnd::Finished(s) => {
                    let complete = s.state.done && s.state.error.is_none();
                    (s, complete)
                }
                StreamEnd::UpstreamError(s, _) | StreamEnd::ClientGone(s) => (s, false),
            };
            let outcome = if complete {
                Outcome::Ok
            } else {
                Outcome::Partial
            };
            match meta.settle(reservation, &scanner.state.info, outcome).await {
                Ok(()) => true,
                Err(err) => {
                    tracing::error!(%err, request_id = %meta.request_id, "stream settle failed");
                    false
                }
            }
        })
    });
    let body = MeteredStream::new(upstream, scanner, on_end);
    let mut out = with_headers(Response::new(Body::new(body)), "text/event-stream", headers);
    out.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    out
}

/// An upstream error answer passed on as is when it is JSON with an `error` (OpenRouter
/// answers in each route's own error shape), else wrapped in the route's shape. Upstream
/// rejecting the gateway's shared key is the operator's problem, not the member's: a 502 in the
/// route's shape naming the configuration ([`GatewayError::UpstreamKeyRejected`]).
pub fn upstream_error(
    meta: &Settlement,
    status: StatusCode,
    bytes: Bytes,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Response<Body> {
    if meta.credentials.upstream_key_hash.is_none() && shared_key_rejected(status, &bytes) {
        return shared_key_rejected_response(meta, status);
    }
    if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v.get("error").is_some()) {
        let mut out = with_headers(
            Response::new(Body::from(bytes)),
            "application/json",
            headers,
        );
        *out.status_mut() = status;
        return out;
    }
    GatewayError::Upstream {
        status,
        message: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
    }
    .to_response_as(meta.wire.error_shape())
}

/// Whether an upstream error says the key itself is unusable: 401 (unknown, disabled or expired
/// key), or 403 for a management key (which cannot run inference). Other 403s (a used-up key
/// limit, a guardrail) are about the request and pass through.
fn shared_key_rejected(status: StatusCode, bytes: &[u8]) -> bool {
    match status.as_u16() {
        401 => true,
        403 => String::from_utf8_lossy(bytes)
            .to_ascii_lowercase()
            .contains("management key"),
        _ => false,
    }
}

/// The member's answer when upstream rejected the shared key; readiness turns false at once, a
/// metric counts it (`orteam_errors_total{code="upstream_key_rejected"}`) and one line per 10 s
/// tells the operator.
fn shared_key_rejected_response(meta: &Settlement, status: StatusCode) -> Response<Body> {
    static LAST_LOGGED: AtomicU64 = AtomicU64::new(0);
    let err = GatewayError::UpstreamKeyRejected {
        status: status.as_u16(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_LOGGED.load(Ordering::Relaxed);
    if now >= last + 10
        && LAST_LOGGED
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::error!(
            status = status.as_u16(),
            "upstream rejected the gateway's shared key ({}); members without their own key get 502 until it is fixed",
            orteam_core::env::OPENROUTER_API_KEY
        );
    }
    meta.gw.health.record(KeyVerdict::Refused(format!(
        "it answered {} to a member's request",
        status.as_u16()
    )));
    meta.gw
        .metrics
        .errors
        .get_or_create(&ErrorLabels { code: err.code() })
        .inc();
    err.to_response_as(meta.wire.error_shape())
}

fn with_headers(
    mut out: Response<Body>,
    content_type: &'static str,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Response<Body> {
    let h = out.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (k, v) in headers {
        h.insert(k, v);
    }
    out
}
