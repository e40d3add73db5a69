//! The dashboard's routes: the embedded page ([`pages`]) and its data ([`api`]).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use orteam_ledger::Ledger;
use serde::Deserialize;

use crate::alerts::AnomalySource;
use crate::charts;
use crate::snapshot::{self, Charts, Options, Range, Snapshot, SplitBy, Visible};
use orteam_core::access::Principal;

const INDEX_HTML: &str = include_str!("../assets/dashboard.html");
const APP_JS: &str = include_str!("../assets/dashboard.js");
const APP_CSS: &str = include_str!("../assets/dashboard.css");

/// What the data routes read. "Now" is the ledger's clock, so "today" and "this month" are the
/// budget windows' own.
#[derive(Clone)]
pub struct WebState {
    ledger: Ledger,
    anomalies: Option<Arc<dyn AnomalySource>>,
}

impl WebState {
    /// With orteam-insight's anomaly rule (the one behind `GET /admin/v1/anomalies`).
    pub fn new(ledger: Ledger) -> Self {
        WebState {
            ledger,
            anomalies: Some(Arc::new(crate::insight::InsightAnomalies::default())),
        }
    }

    /// Shows this detector's findings in the anomalies panel instead.
    pub fn with_anomalies(mut self, source: Arc<dyn AnomalySource>) -> Self {
        self.anomalies = Some(source);
        self
    }

    /// No anomalies panel data (the page says no detector is wired in).
    pub fn without_anomalies(mut self) -> Self {
        self.anomalies = None;
        self
    }

    /// Builds a snapshot (without charts).
    pub async fn snapshot(&self, range: Range, recent: usize) -> Result<Snapshot, WebError> {
        self.snapshot_for(range, recent, None).await
    }

    /// A snapshot of what `principal` may see (`None`: everything): a team lead's teams, a
    /// member's own figures; org-wide anomalies only for those who see everything.
    pub async fn snapshot_for(
        &self,
        range: Range,
        recent: usize,
        principal: Option<&Principal>,
    ) -> Result<Snapshot, WebError> {
        let now = self.ledger.now();
        let visible = principal
            .filter(|p| !p.sees_everything())
            .map(|p| visible_to(&self.ledger, p));
        let mut snap = snapshot::build_for(
            &self.ledger,
            Options { range, recent, now },
            visible.as_ref(),
        )
        .await
        .map_err(|e| WebError::Ledger(e.to_string()))?;
        if visible.is_some() {
            return Ok(snap);
        }
        if let Some(source) = &self.anomalies {
            snap.anomaly_detector = Some(source.name().to_owned());
            match source.anomalies(&self.ledger, now).await {
                Ok(found) => snap.anomalies = found,
                Err(e) => {
                    tracing::warn!(detector = source.name(), error = %e, "anomaly detection failed");
                    snap.anomalies = vec![crate::Alert {
                        severity: crate::Severity::Warning,
                        kind: "detector".into(),
                        subject: source.name().to_owned(),
                        message: format!("anomaly detection failed: {e}"),
                        action: None,
                        time: Some(now),
                    }];
                }
            }
        }
        Ok(snap)
    }
}

/// What a principal who does not see everything may see on the dashboard.
fn visible_to(ledger: &Ledger, p: &Principal) -> Visible {
    let dir = ledger.directory();
    let mut v = Visible::default();
    for m in dir.members.values() {
        if p.sees_member(&m.id, &m.team_id) {
            v.members.insert(m.id.clone());
            if p.member.as_deref() == Some(m.id.as_str()) {
                // A member sees every budget that applies to them.
                v.teams.insert(m.team_id.clone());
                v.org = true;
            }
        }
    }
    v.teams
        .extend(dir.teams.keys().filter(|t| p.sees_team(t)).cloned());
    v
}

/// Why a dashboard request failed; the same JSON error shape as the rest of the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    #[error("reading the ledger: {0}")]
    Ledger(String),
    #[error("{0}")]
    Chart(#[from] charts::ChartError),
    #[error("{0}")]
    BadRequest(String),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::BadRequest(msg) = &self {
            let body = serde_json::json!({
                "error": {
                    "message": format!("{msg}; use range=1h|24h|7d|30d, by=member|model, charts=svg"),
                    "type": "invalid_request_error",
                    "code": "bad_request",
                }
            });
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
        tracing::error!(error = %self, "dashboard snapshot failed");
        let body = serde_json::json!({
            "error": {
                "message": "the dashboard could not read the ledger; see the gateway's log",
                "type": "server_error",
                "code": "internal_error",
            }
        });
        (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
    }
}

/// The page, script and stylesheet (no data; no token needed).
pub fn pages<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(crate::DASHBOARD_PATH, get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/app.js", get(app_js))
        .route("/dashboard/app.css", get(app_css))
}

/// The data routes, to mount where the admin token is checked (`/admin/v1`).
pub fn api<S: Clone + Send + Sync + 'static>(state: WebState) -> Router<S> {
    Router::new()
        .route(crate::SNAPSHOT_PATH, get(snapshot_route))
        .with_state(state)
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

#[derive(Debug, Deserialize)]
struct SnapshotParams {
    #[serde(default)]
    range: Range,
    #[serde(default)]
    by: SplitBy,
    /// `svg` to include the charts.
    charts: Option<String>,
    recent: Option<usize>,
}

async fn snapshot_route(
    State(state): State<WebState>,
    principal: Option<axum::Extension<Principal>>,
    query: Result<Query<SnapshotParams>, QueryRejection>,
) -> Result<Response, WebError> {
    let Query(p) = query.map_err(|e| WebError::BadRequest(e.body_text()))?;
    let mut snap = state
        .snapshot_for(
            p.range,
            p.recent.unwrap_or(25).min(200),
            principal.as_ref().map(|e| &e.0),
        )
        .await?;
    if p.charts.as_deref() == Some("svg") {
        snap.charts = Some(Charts {
            spend_over_time: charts::spend_over_time(&snap.series, p.by)?,
            spend_by_model: charts::spend_by_model(&snap.by_model)?,
        });
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(snap)).into_response())
}
