//! `/health/live` and `/health/ready`, answered before the admin router and without
//! authentication (load balancers and orchestrators probe them).
//!
//! - **live**: the process answers; nothing else is consulted, so a database outage never gets
//!   a healthy process restarted.
//! - **ready**: the gateway can serve members now: the database answers with the schema this
//!   build migrated it to, the shared upstream key is accepted, the model catalog is loaded,
//!   and the gateway is not draining. It turns false as soon as a graceful shutdown begins,
//!   before the listener closes ([`crate::config::GatewayConfig::unready_before_drain`]), so a
//!   load balancer stops sending first.
//!
//! The database is asked on each probe (bounded by [`READY_CHECK_TIMEOUT`]); the upstream key
//! is checked in the background ([`Health::check_upstream_key`]) so a probe never waits on
//! OpenRouter, and a failed look-up keeps the last verdict (OpenRouter being briefly
//! unreachable is not a reason to take every gateway out of rotation at once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};
use parking_lot::Mutex;
use serde_json::json;

use crate::gateway::Gateway;

pub const LIVE_PATH: &str = "/health/live";
pub const READY_PATH: &str = "/health/ready";

/// How long a readiness probe waits for the database.
pub const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the background job asks upstream whether the shared key is accepted.
pub const UPSTREAM_KEY_CHECK_EVERY: Duration = Duration::from_secs(30);

/// What upstream last said of the shared key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    /// No shared key: only members with their own upstream key are served.
    NotConfigured,
    NotCheckedYet,
    Accepted,
    /// Upstream refused it (401/403), or it is a management key (which cannot run inference):
    /// nothing can be served with it. Holds why, e.g. `GET /key: User not found.`.
    Refused(String),
    /// Never reached upstream so far.
    Unreachable(String),
}

/// The gateway's readiness state that is not read live.
#[derive(Debug)]
pub struct Health {
    draining: AtomicBool,
    upstream_key: Mutex<KeyVerdict>,
}

impl Health {
    pub fn new(has_shared_key: bool) -> Self {
        Health {
            draining: AtomicBool::new(false),
            upstream_key: Mutex::new(if has_shared_key {
                KeyVerdict::NotCheckedYet
            } else {
                KeyVerdict::NotConfigured
            }),
        }
    }

    /// From now on readiness is false (a graceful shutdown has begun).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Asks upstream about the shared key (`GET /key`) and records the verdict.
    pub async fn check_upstream_key(&self, client: &orteam_openrouter::Client) {
        if *self.upstream_key.lock() == KeyVerdict::NotConfigured {
            return;
        }
        self.record(judge_upstream_key(client).await);
    }

    /// Records a verdict on the shared key (the start-up check's, then the periodic job's).
    pub fn record(&self, verdict: KeyVerdict) {
        let mut current = self.upstream_key.lock();
        match (&*current, verdict) {
            // A look-up that failed says nothing new about a key already judged.
            (KeyVerdict::Accepted | KeyVerdict::Refused(_), KeyVerdict::Unreachable(why)) => {
                tracing::warn!(%why, "upstream key check failed; keeping the last verdict");
            }
            (_, verdict) => *current = verdict,
        }
    }

    pub(crate) fn upstream_key(&self) -> (bool, String) {
        match &*self.upstream_key.lock() {
            KeyVerdict::NotConfigured => (
                true,
                "no shared key configured (members use their own)".into(),
            ),
            KeyVerdict::NotCheckedYet => (false, "not checked yet".into()),
            KeyVerdict::Accepted => (true, "accepted".into()),
            KeyVerdict::Refused(why) => (false, format!("upstream refused the shared key ({why})")),
            KeyVerdict::Unreachable(why) => (false, why.clone()),
        }
    }
}

/// Asks upstream about the shared key (`GET /key` with it): the one check `serve` runs at start
/// and the background job repeats for readiness.
pub async fn judge_upstream_key(client: &orteam_openrouter::Client) -> KeyVerdict {
    match client.current_key().await {
        Ok(info) if info.is_management() => KeyVerdict::Refused(
            "it is a management (provisioning) key, which cannot run inference".into(),
        ),
        Ok(_) => KeyVerdict::Accepted,
        Err(err) if matches!(err.status(), Some(401 | 403)) => KeyVerdict::Refused(err.to_string()),
        Err(err) => KeyVerdict::Unreachable(format!("upstream did not answer ({err})")),
    }
}

/// Answers a health probe, or `None` when `path` is not one (or the method is not GET/HEAD).
pub(crate) async fn answer(gw: &Gateway, method: &Method, path: &str) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    match path {
        LIVE_PATH => Some(json_response(StatusCode::OK, json!({ "status": "live" }))),
        READY_PATH => Some(ready(gw).await),
        _ => None,
    }
}

async fn ready(gw: &Gateway) -> Response<Body> {
    let database = match tokio::time::timeout(READY_CHECK_TIMEOUT, gw.ledger.check_schema()).await {
        Ok(Ok(version)) => json!({ "ok": true, "schema_version": version }),
        Ok(Err(err)) => json!({ "ok": false, "detail": err.to_string() }),
        Err(_) => json!({
            "ok": false,
            "detail": format!("no answer within {} s", READY_CHECK_TIMEOUT.as_secs()),
        }),
    };
    let (key_ok, key_detail) = gw.health.upstream_key();
    let models = gw.catalog.snapshot().len();
    let draining = gw.health.is_draining();
    let ready = database["ok"] == true && key_ok && models > 0 && !draining;
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "checks": {
            "database": database,
            "upstream_key": { "ok": key_ok, "detail": key_detail },
            "catalog": { "ok": models > 0, "models": models },
            "draining": draining,
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, body)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
