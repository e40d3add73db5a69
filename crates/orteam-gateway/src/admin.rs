//! Everything but the hot path, as an axum router: `GET /v1/models` (the caller's allowed
//! models), `/healthz`, `/metrics`, and the admin API under `/admin/v1` (members, keys, budgets,
//! usage), which needs `Authorization: Bearer $ORTEAM_ADMIN_TOKEN`, compared in constant time.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orteam_core::{ApiRoute, Money, Window};
use orteam_ledger::{BudgetScope, GroupBy, Ledger, LedgerError, UsageQuery};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::catalog::Catalog;
use crate::error::GatewayError;
use crate::metrics::{self, BudgetLabels, Metrics};
use crate::policy;

/// What the admin routes need.
#[derive(Clone)]
pub struct AdminState {
    pub ledger: Ledger,
    pub catalog: Arc<Catalog>,
    pub metrics: Arc<Metrics>,
    /// SHA-256 of the admin token; `None` disables the admin API.
    admin_token_digest: Option<[u8; 32]>,
    /// SHA-256 of the metrics-only token, if one is set.
    metrics_token_digest: Option<[u8; 32]>,
    /// Whether member ids may appear in `/metrics` (`[metrics] member_labels`).
    member_labels: crate::config::MemberLabels,
}

impl AdminState {
    pub fn new(
        ledger: Ledger,
        catalog: Arc<Catalog>,
        metrics: Arc<Metrics>,
        admin_token: Option<&SecretString>,
    ) -> Self {
        AdminState {
            ledger,
            catalog,
            metrics,
            admin_token_digest: admin_token.map(digest),
            metrics_token_digest: None,
            member_labels: crate::config::MemberLabels::Member,
        }
    }

    /// What the `member` label carries in `/metrics`.
    pub fn with_member_labels(mut self, which: crate::config::MemberLabels) -> Self {
        self.member_labels = which;
        self
    }

    /// Also accept `token` on `/metrics`.
    pub fn with_metrics_token(mut self, token: Option<&SecretString>) -> Self {
        self.metrics_token_digest = token.map(digest);
        self
    }

    /// Whether `headers` carry one of `accepted` as a Bearer token (constant-time compare).
    fn presents(headers: &HeaderMap, accepted: &[Option<[u8; 32]>]) -> bool {
        let Some(presented) = crate::auth::bearer_token(headers) else {
            return false;
        };
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        accepted
            .iter()
            .flatten()
            .fold(false, |ok, expected| ok | bool::from(d.ct_eq(expected)))
    }
}

fn digest(token: &SecretString) -> [u8; 32] {
    Sha256::digest(token.expose_secret().as_bytes()).into()
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.to_response()
    }
}

fn ledger_err(e: LedgerError) -> GatewayError {
    match e {
        LedgerError::NotFound { .. } => GatewayError::NotFound(e.to_string()),
        LedgerError::Invalid(msg) => GatewayError::BadRequest {
            message: msg,
            param: None,
        },
        other => GatewayError::Internal(other.to_string()),
    }
}

/// The router for every non-hot-path route.
pub fn router(state: AdminState) -> Router {
    let admin = Router::new()
        .route("/members", get(members))
        .route("/members/{id}", get(member))
        .route("/members/{id}/revoke", post(revoke_member))
        .route("/keys", get(keys))
        .route("/keys/{id}/revoke", post(revoke_key))
        .route("/budgets", get(budgets))
        .route("/budgets/raise", post(raise_budget))
        .route("/usage", get(usage))
        .route("/events", get(events))
        .route("/anomalies", get(anomalies))
        // The web dashboard's data (GET /admin/v1/dashboard), behind the same token.
        .merge(orteam_web::api(orteam_web::WebState::new(
            state.ledger.clone(),
        )))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin))
        .layer(middleware::map_response(private_response));
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/metrics",
            get(render_metrics).route_layer(middleware::from_fn_with_state(
                state.clone(),
                require_metrics_token,
            )),
        )
        .route("/v1/models", get(models))
        .route("/api/v1/models", get(models))
        .nest("/admin/v1", admin)
        .merge(orteam_web::pages())
        .fallback(|req: Request| async move {
            GatewayError::NotFound(format!("{} {}", req.method(), req.uri().path()))
        })
        // axum adds the `Allow` header; the body is an error like every other.
        .method_not_allowed_fallback(|req: Request| async move {
            GatewayError::MethodNotAllowedHere(format!("{} {}", req.method(), req.uri().path()))
        })
        .with_state(state)
}

/// Admin answers are about people and money: never cached, never sniffed.
async fn private_response(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    resp
}

/// `/metrics` names members, their models and spend: it needs the admin token or the
/// metrics token.
async fn require_metrics_token(
    State(state): State<AdminState>,
    req: Request,
    next: Next,
) -> Response {
    let accepted = [state.admin_token_digest, state.metrics_token_digest];
    if AdminState::presents(req.headers(), &accepted) {
        return next.run(req).await;
    }
    GatewayError::Unauthorized(
        "/metrics needs `Authorization: Bearer` with ORTEAM_METRICS_TOKEN or ORTEAM_ADMIN_TOKEN"
            .into(),
    )
    .to_response()
}

async fn require_admin(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    let Some(expected) = state.admin_token_digest else {
        return GatewayError::Unauthorized(
            "the admin API is disabled: start the gateway with ORTEAM_ADMIN_TOKEN set".into(),
        )
        .to_response();
    };
    let presented = crate::auth::bearer_token(req.headers());
    let ok = presented.is_some_and(|p| {
        let digest: [u8; 32] = Sha256::digest(p.as_bytes()).into();
        bool::from(digest.ct_eq(&expected))
    });
    if !ok {
        return GatewayError::Unauthorized(
            "wrong or missing admin token: send `Authorization: Bearer $ORTEAM_ADMIN_TOKEN`".into(),
        )
        .to_response();
    }
    next.run(req).await
}

async fn healthz(State(state): State<AdminState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "backend": state.ledger.backend(),
        "models": state.catalog.snapshot().len(),
    }))
}

async fn render_metrics(State(state): State<AdminState>) -> Response {
    // Budget gauges are read at scrape time so they are never stale.
    if let Ok(all) = state.ledger.all_budget_status().await {
        // Member budgets name members: exported only where member labels are.
        let members_shown = state.member_labels == crate::config::MemberLabels::Member;
        for b in all
            .into_iter()
            .filter(|b| members_shown || b.scope != orteam_core::BudgetScope::Member)
        {
            state
                .metrics
                .budget_remaining_nanodollars
                .get_or_create(&BudgetLabels {
                    scope: b.scope.as_str().to_owned(),
                    id: b.scope_id.clone(),
                    window: b.window.to_string(),
                })
                .set(metrics::nanodollars_signed(b.remaining));
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// One model in Anthropic's list shape (Claude Code's model discovery reads these).
#[derive(Serialize)]
struct AnthropicModel {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    display_name: String,
    created_at: String,
}

/// `GET /v1/models` and `GET /api/v1/models`: the models the caller's tier allows, in one shape
/// both OpenAI's and OpenRouter's SDKs accept (OpenRouter's list envelope and model objects,
/// with OpenAI's `object`/`owned_by` added), or Anthropic-style when the client sends
/// `anthropic-version` (the Anthropic SDKs and Claude Code do).
async fn models(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    let anthropic = headers.contains_key("anthropic-version");
    let shape = if anthropic {
        crate::wire::ErrorShape::Anthropic
    } else {
        crate::wire::ErrorShape::OpenAi
    };
    let auth = match crate::auth::authenticate(&state.ledger, &headers) {
        Ok(auth) => auth,
        Err(e) => return e.to_response_as(shape),
    };
    let table = state.catalog.snapshot();
    if anthropic {
        let data: Vec<AnthropicModel> = table
            .models
            .iter()
            .filter(|m| policy::allows(&auth.tier, &m.id))
            .map(|m| AnthropicModel {
                kind: "model",
                id: m.id.clone(),
                display_name: m.name.clone(),
                created_at: DateTime::<Utc>::from_timestamp(m.created.unwrap_or(0), 0)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            })
            .collect();
        let first_id = data.first().map(|m| m.id.clone());
        let last_id = data.last().map(|m| m.id.clone());
        return Json(serde_json::json!({
            "data": data, "has_more": false, "first_id": first_id, "last_id": last_id,
        }))
        .into_response();
    }
    let data: Vec<serde_json::Value> = table
        .models
        .iter()
        .filter(|m| policy::allows(&auth.tier, &m.id))
        .map(openai_and_openrouter_model)
        .collect();
    let total_count = data.len();
    Json(serde_json::json!({
        "object": "list",
        "data": data,
        "total_count": total_count,
        "links": {"next": null},
    }))
    .into_response()
}

/// One model as upstream's `/models` describes it (every field OpenRouter sent, so the
/// OpenRouter SDKs validate it), plus OpenAI's `object` and `owned_by` (so the OpenAI SDKs list
/// it too). Prices stay decimal strings.
fn openai_and_openrouter_model(m: &orteam_openrouter::types::models::Model) -> serde_json::Value {
    let mut v = serde_json::to_value(m).unwrap_or(serde_json::Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("object".to_owned(), "model".into());
        o.insert(
            "owned_by".to_owned(),
            m.id.split('/').next().unwrap_or("").into(),
        );
    }
    v
}

#[derive(Serialize)]
struct MemberView {
    id: String,
    display_name: String,
    team: String,
    tier: String,
    state: String,
    budgets: Vec<orteam_ledger::BudgetStatus>,
}

async fn member_view(
    state: &AdminState,
    m: &orteam_ledger::Member,
) -> Result<MemberView, GatewayError> {
    let budgets = state
        .ledger
        .budget_status(&m.id)
        .await
        .map_err(ledger_err)?;
    Ok(MemberView {
        id: m.id.clone(),
        display_name: m.display_name.clone(),
        team: m.team_id.clone(),
        tier: m.tier_id.clone(),
        state: m.state.as_str().to_owned(),
        budgets,
    })
}

async fn members(State(state): State<AdminState>) -> Result<Json<Vec<MemberView>>, GatewayError> {
    let dir = state.ledger.directory();
    let mut out = Vec::with_capacity(dir.members.len());
    for m in dir.members.values() {
        out.push(member_view(&state, m).await?);
    }
    Ok(Json(out))
}

async fn member(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<MemberView>, GatewayError> {
    let dir = state.ledger.directory();
    let m = dir
        .members
        .get(&id)
        .ok_or_else(|| GatewayError::NotFound(format!("member {id:?}")))?;
    Ok(Json(member_view(&state, m).await?))
}

async fn revoke_member(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, GatewayError> {
    let dir = state.ledger.directory();
    let key_ids: Vec<String> = dir
        .virtual_keys
        .values()
        .filter(|k| k.member_id == id && k.revoked_at.is_none())
        .map(|k| k.id.clone())
        .collect();
    state.ledger.remove_member(&id).await.map_err(ledger_err)?;
    for k in &key_ids {
        state
            .ledger
            .revoke_virtual_key(k)
            .await
            .map_err(ledger_err)?;
    }
    Ok(Json(
        serde_json::json!({ "member": id, "revoked_keys": key_ids.len() }),
    ))
}

#[derive(Serialize)]
struct KeyView {
    id: String,
    prefix: String,
    member: String,
    name: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    disabled: bool,
    revoked_at: Option<DateTime<Utc>>,
    replaces: Option<String>,
    last_used_at: Option<DateTime<Utc>>,
}

async fn keys(State(state): State<AdminState>) -> Json<Vec<KeyView>> {
    let dir = state.ledger.directory();
    let mut out: Vec<KeyView> = dir
        .virtual_keys
        .values()
        .map(|k| KeyView {
            id: k.id.clone(),
            prefix: k.display_prefix(),
            member: k.member_id.clone(),
            name: k.name.clone(),
            created_at: k.created_at,
            expires_at: k.expires_at,
            disabled: k.disabled,
            revoked_at: k.revoked_at,
            replaces: k.replaces.clone(),
            last_used_at: k.last_used_at,
        })
        .collect();
    out.sort_by(|a, b| (&a.member, a.created_at).cmp(&(&b.member, b.created_at)));
    Json(out)
}

async fn revoke_key(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, GatewayError> {
    state
        .ledger
        .revoke_virtual_key(&id)
        .await
        .map_err(ledger_err)?;
    Ok(Json(serde_json::json!({ "revoked": id })))
}

async fn budgets(
    State(state): State<AdminState>,
) -> Result<Json<Vec<orteam_ledger::BudgetStatus>>, GatewayError> {
    Ok(Json(
        state.ledger.all_budget_status().await.map_err(ledger_err)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RaiseRequest {
    scope: BudgetScope,
    id: String,
    window: Window,
    amount: Money,
    until: DateTime<Utc>,
    #[serde(default)]
    reason: String,
}

async fn raise_budget(
    State(state): State<AdminState>,
    body: Result<Json<RaiseRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<orteam_ledger::BudgetRaise>), GatewayError> {
    let Json(r) = body.map_err(|e| GatewayError::BadRequest {
        message: e.body_text(),
        param: None,
    })?;
    let raise = state
        .ledger
        .add_raise(r.scope, &r.id, r.window, r.amount, r.until, &r.reason)
        .await
        .map_err(ledger_err)?;
    Ok((StatusCode::CREATED, Json(raise)))
}

#[derive(Deserialize)]
struct UsageParams {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    /// Comma-separated: member,team,model,day,provider,key,route (also `group_by=`).
    #[serde(alias = "group_by")]
    by: Option<String>,
    member: Option<String>,
    team: Option<String>,
    /// Only requests of this API route (chat, messages, responses, embeddings, completions).
    route: Option<String>,
}

async fn usage(
    State(state): State<AdminState>,
    Query(p): Query<UsageParams>,
) -> Result<Json<Vec<orteam_ledger::UsageGroup>>, GatewayError> {
    let mut group_by = Vec::new();
    for part in
        p.by.as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
    {
        let g: GroupBy = part.trim().parse().map_err(|_| GatewayError::BadRequest {
            message: format!(
                "unknown grouping {part:?}: use member, team, model, day, provider, key or route"
            ),
            param: Some("by"),
        })?;
        group_by.push(g);
    }
    let route = p
        .route
        .as_deref()
        .map(str::parse::<ApiRoute>)
        .transpose()
        .map_err(|e| GatewayError::BadRequest {
            message: e.to_string(),
            param: Some("route"),
        })?;
    let q = UsageQuery {
        from: p.since,
        to: p.until,
        group_by,
        member: p.member,
        team: p.team,
        route,
    };
    Ok(Json(state.ledger.usage(&q).await.map_err(ledger_err)?))
}

#[derive(Deserialize)]
struct EventsParams {
    limit: Option<usize>,
}

async fn events(
    State(state): State<AdminState>,
    Query(p): Query<EventsParams>,
) -> Result<Json<Vec<orteam_ledger::UsageEvent>>, GatewayError> {
    let limit = p.limit.unwrap_or(50).min(1000);
    Ok(Json(
        state
            .ledger
            .recent_events(limit)
            .await
            .map_err(ledger_err)?,
    ))
}

/// `GET /admin/v1/anomalies?day=YYYY-MM-DD&all=true&min_spend=…`: today's spend of every member,
/// key and model against its own trailing baseline (rule in docs/insight.md).
async fn anomalies(
    State(state): State<AdminState>,
    Query(q): Query<orteam_insight::AnomalyQuery>,
) -> Result<Json<orteam_insight::AnomalyReport>, GatewayError> {
    let report = orteam_insight::anomalies_endpoint(&state.ledger, q)
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    for a in &report.flagged {
        state
            .metrics
            .anomalies
            .get_or_create(&crate::metrics::AnomalyLabels {
                kind: a.kind.as_str().to_owned(),
                subject: a.subject.clone(),
            })
            .set(1);
    }
    Ok(Json(report))
}
