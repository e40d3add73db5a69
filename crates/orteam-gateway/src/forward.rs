//! Stage: forward the rewritten request upstream on a pooled connection, retrying 429/5xx and
//! connection failures before the first byte within the retry deadline (honouring
//! `Retry-After`). Nothing is charged for a request that never got an answer.
//!
//! The waits come from the OpenRouter client's [`RetryPolicy`]: one retry policy for the
//! whole product.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, Uri};
use http_body_util::BodyExt;
use orteam_openrouter::{Jitter, RetryPolicy};

use crate::auth::UpstreamCredentials;
use crate::error::GatewayError;
use crate::gateway::GatewayWorker;
use crate::upstream::{UpstreamBody, UpstreamError};

/// The gateway's backoff: short, since a member is waiting (100 ms doubling to 2 s, never
/// less than half of it); the deadline, not a count, bounds the attempts.
fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: u32::MAX,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
        jitter: Jitter::Equal,
        max_retry_after: Duration::from_secs(60),
    }
}

pub async fn forward(
    worker: &GatewayWorker,
    path: Uri,
    credentials: &UpstreamCredentials,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<http::Response<UpstreamBody>, GatewayError> {
    let gw = &worker.gw;
    let policy = policy();
    let deadline = Instant::now() + gw.config.retry_deadline;
    let mut attempt: u32 = 0;
    loop {
        let result = worker
            .upstream
            .post(
                path.clone(),
                &credentials.authorization,
                &gw.attribution,
                headers,
                body.clone(),
            )
            .await;
        let wait = match &result {
            Ok(resp) if is_retryable(resp.status()) => {
                Some(policy.delay(attempt, retry_after(resp.headers())))
            }
            Ok(_) => None,
            Err(UpstreamError::Connect(_)) => Some(policy.delay(attempt, None)),
            Err(_) => None,
        };
        match wait {
            Some(wait) if Instant::now() + wait < deadline => {
                attempt += 1;
                gw.metrics.upstream_retries.inc();
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

fn is_retryable(status: StatusCode) -> bool {
    orteam_openrouter::is_retryable_status(status.as_u16())
}

fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    orteam_openrouter::parse_retry_after(v, std::time::SystemTime::now())
}
