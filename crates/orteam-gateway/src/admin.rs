//! Everything but the hot path, as an axum router: `GET /v1/models` (the caller's allowed
//! models), `/healthz`, `/metrics`, and the admin API under `/admin/v1` (members, keys, budgets,
//! usage, tokens, audit log).
//!
//! Who calls the admin API is a [`Principal`]: the bootstrap `ORTEAM_ADMIN_TOKEN` (an admin,
//! compared in constant time), a named `ota-…` token (its role, teams and `max_raise`), or a
//! member's own `ot-…` key (the member role). Every handler asks the one rule,
//! [`orteam_core::access::authorize`], and lists only what the principal may see. Every change
//! is appended to the audit log with who, what, before → after and from where.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orteam_core::access::{Action, Principal, authorize};
use orteam_core::{ApiRoute, Money, Window};
use orteam_ledger::{
    BudgetScope, Directory, GroupBy, Ledger, LedgerError, NewAuditEntry, UsageQuery,
};
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
    /// Single sign-on, when configured: its routes and the session cookie.
    pub(crate) sso: Option<Arc<crate::sso::Sso>>,
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
            sso: None,
        }
    }

    /// Single sign-on for the dashboard and the admin API.
    pub fn with_sso(mut self, sso: Option<Arc<crate::sso::Sso>>) -> Self {
        self.sso = sso;
        self
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

pub(crate) fn ledger_err(e: LedgerError) -> GatewayError {
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
        .route("/whoami", get(whoami))
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
        // Scoped to what the caller's principal sees (orteam_web::api reads it).
        .merge(orteam_web::api(orteam_web::WebState::new(
            state.ledger.clone(),
        )))
        .route(
            "/tokens",
            get(crate::admin_access::tokens).post(crate::admin_access::create_token),
        )
        .route(
            "/tokens/{name}/revoke",
            post(crate::admin_access::revoke_token),
        )
        .route("/audit", get(crate::admin_access::audit_list))
        .route("/audit/verify", get(crate::admin_access::audit_verify))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_principal,
        ))
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
        .route("/auth/login", get(crate::sso::login))
        .route("/auth/callback", get(crate::sso::callback))
        .route("/auth/session", get(crate::sso::session))
        .route("/auth/logout", post(crate::sso::logout))
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

/// Resolves the caller to a [`Principal`] (401 with the reason if none) and hands it to the
/// handler as a request extension.
async fn require_principal(
    State(state): State<AdminState>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(sso) = &state.sso
        && crate::auth::bearer_token(req.headers()).is_none()
        && let Some(session) = sso.session(req.headers())
    {
        // A signed-in browser: the session's principal, if its member is still active, and a
        // CSRF token on anything that changes state.
        if !crate::sso::csrf_ok(req.method(), req.headers(), &session) {
            return GatewayError::Forbidden(format!(
                "a signed-in session's {} needs the `{}` header (GET /auth/session gives it)",
                req.method(),
                crate::sso::CSRF_HEADER
            ))
            .to_response();
        }
        if let Some(member) = &session.principal.member {
            let active = state
                .ledger
                .directory()
                .members
                .get(member)
                .is_some_and(|m| m.removed_at.is_none());
            if !active {
                return GatewayError::Unauthorized(format!(
                    "member {member:?} is no longer active; sign in again"
                ))
                .to_response();
            }
        }
        req.extensions_mut().insert(session.principal);
        return next.run(req).await;
    }
    match state.principal(req.headers(), source_of(&req)).await {
        Ok(p) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Err(e) => e.to_response(),
    }
}

/// Where a request came from (the peer address the server saw), for the audit log.
fn source_of(req: &Request) -> Option<String> {
    req.extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

impl AdminState {
    /// Who `headers` authenticate as. Failed attempts with a named token are audited.
    pub async fn principal(
        &self,
        headers: &HeaderMap,
        source: Option<String>,
    ) -> Result<Principal, GatewayError> {
        let Some(presented) = crate::auth::bearer_token(headers) else {
            return Err(GatewayError::Unauthorized(
                "wrong or missing admin token: send `Authorization: Bearer` with \
                 $ORTEAM_ADMIN_TOKEN, a named `ota-…` token, or your own `ot-…` key"
                    .into(),
            ));
        };
        if AdminState::presents(headers, &[self.admin_token_digest]) {
            return Ok(Principal::bootstrap());
        }
        if presented.starts_with(orteam_ledger::keys::ADMIN_TOKEN_PREFIX) {
            let secret = SecretString::from(presented.to_owned());
            return match self
                .ledger
                .authenticate_admin_token(&secret)
                .await
                .map_err(ledger_err)?
            {
                Ok(token) => Ok(token.principal()),
                Err(refused) => {
                    let _ = self
                        .ledger
                        .audit(NewAuditEntry {
                            actor: "(unauthenticated)".into(),
                            action: "sign_in_failed".into(),
                            target: "admin_api".into(),
                            before: None,
                            after: Some(
                                serde_json::json!({ "reason": refused.to_string() }).to_string(),
                            ),
                            source,
                        })
                        .await;
                    Err(GatewayError::Unauthorized(refused.to_string()))
                }
            };
        }
        if presented.starts_with(orteam_ledger::KEY_PREFIX) {
            let auth = crate::auth::authenticate(&self.ledger, headers)?;
            return Ok(Principal::member(&auth.member_id));
        }
        Err(GatewayError::Unauthorized(
            "wrong or missing admin token: send `Authorization: Bearer` with $ORTEAM_ADMIN_TOKEN, \
             a named `ota-…` token, or your own `ot-…` key"
                .into(),
        ))
    }
}

/// `GET /admin/v1/whoami`: who the caller is (the dashboard says whose view it shows).
async fn whoami(
    State(state): State<AdminState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let email = state
        .sso
        .as_ref()
        .filter(|_| crate::auth::bearer_token(&headers).is_none())
        .and_then(|s| s.session(&headers))
        .map(|s| s.email);
    Json(serde_json::json!({
        "name": p.name,
        "role": p.role,
        "teams": p.teams,
        "member": p.member,
        "email": email,
    }))
}

/// 403 with the rule's reason.
pub(crate) fn allow(p: &Principal, action: &Action<'_>) -> Result<(), GatewayError> {
    authorize(p, action).map_err(|d| GatewayError::Forbidden(d.to_string()))
}

/// The team of a member (`None` if unknown).
fn team_of<'d>(dir: &'d Directory, member: &str) -> Option<&'d str> {
    dir.members.get(member).map(|m| m.team_id.as_str())
}

/// Whether `p` may see this budget: a member budget of a member they see, a team budget of a
/// team they see, the org's only when they see everything (a member: the budgets that apply to
/// them).
fn sees_budget(p: &Principal, dir: &Directory, scope: BudgetScope, id: &str) -> bool {
    let own_team = p.member.as_deref().and_then(|m| team_of(dir, m));
    match scope {
        BudgetScope::Member => team_of(dir, id).is_some_and(|t| p.sees_member(id, t)),
        BudgetScope::Team => p.sees_team(id) || own_team == Some(id),
        BudgetScope::Org => p.sees_everything() || own_team.is_some(),
    }
}

/// Records an admin action; a failure to record is logged, never hidden from the log reader
/// (verify will not show a gap, but the gateway's log says which action went unrecorded).
async fn record(
    state: &AdminState,
    p: &Principal,
    source: Option<String>,
    action: &str,
    target: String,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) {
    let entry = NewAuditEntry {
        actor: p.name.clone(),
        action: action.to_owned(),
        target,
        before: before.map(|v| v.to_string()),
        after: after.map(|v| v.to_string()),
        source,
    };
    if let Err(e) = state.ledger.audit(entry).await {
        tracing::error!(error = %e, action, "could not record an admin action in the audit log");
    }
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

/// The members `p` sees (a member: themselves).
async fn members(
    State(state): State<AdminState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<MemberView>>, GatewayError> {
    let dir = state.ledger.directory();
    let mut out = Vec::with_capacity(dir.members.len());
    for m in dir.members.values() {
        if p.sees_member(&m.id, &m.team_id) {
            out.push(member_view(&state, m).await?);
        }
    }
    Ok(Json(out))
}

async fn member(
    State(state): State<AdminState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<MemberView>, GatewayError> {
    let dir = state.ledger.directory();
    let m = dir
        .members
        .get(&id)
        .ok_or_else(|| GatewayError::NotFound(format!("member {id:?}")))?;
    allow(
        &p,
        &Action::ViewMember {
            member: &m.id,
            team: &m.team_id,
        },
    )?;
    Ok(Json(member_view(&state, m).await?))
}

async fn revoke_member(
    State(state): State<AdminState>,
    Extension(p): Extension<Principal>,
    ConnectInfoOpt(source): ConnectInfoOpt,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, GatewayError> {
    let dir = state.ledger.directory();
    let team = team_of(&dir, &id)
        .ok_or_else(|| GatewayError::NotFound(format!("member {id:?}")))?
        .to_owned();
    allow(&p, &Action::Revoke { team: &team })?;
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
    record(
        &state,
        &p,
        source,
        "revoke_member",
        format!("member:{id}"),
        Some(serde_json::json!({ "state": "active", "live_keys": key_ids })),
        Some(serde_json::json!({ "state": "removed", "live_keys": [] })),
    )
    .await;
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

async fn keys(
    State(state): State<AdminState>,
    Extension(p): Extension<Principal>,
) -> Json<Vec<KeyView>> {
    let dir = state.ledger.directory();
    let mut out: Vec<KeyView> = dir
        .virtual_keys
        .values()
        .filter(|k| team_of(&dir, &k.member_id).is_some_and(|t| p.sees_member(&k.member_id, t)))
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
    Extension(p): Extension<Principal>,
    ConnectInfoOpt(source): ConnectInfoOpt,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, GatewayError> {
    let dir = state.ledger.directory();
    let key = dir
        .virtual_keys
        .get(&id)
        .ok_or_else(|| GatewayError::NotFound(format!("key {id:?}")))?;
    let member = key.member_id.clone();
    let team = team_of(&dir, &member).unwrap_or_default().to_owned();
    allow(&p, &Action::Revoke { team: &team })?;
    state
        .ledger
        .revoke_virtual_key(&id)
        .await
        .map_err(ledger_err)?;
    record(
        &state,
        &p,
        source,
        "revoke_key",
        format!("key:{id}"),
        Some(serde_json::json!({ "member": member, "revoked": false })),
        Some(serde_json::json!({ "member": member, "revoked": true })),
    )
    .await;
    Ok(Json(serde_json::json!({ "revoked": id })))
}

async fn budgets(
    State(state): State<AdminState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<orteam_ledger::BudgetStatus>>, GatewayError> {
    let dir = state.ledger.directory();
    let mut all = state.ledger.all_budget_status().await.map_err(ledger_err)?;
    all.retain(|b| sees_budget(&p, &dir, b.scope, &b.scope_id));
    Ok(Json(all))
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
    Extension(p): Extension<Principal>,
    ConnectInfoOpt(source): ConnectInfoOpt,
    body: Result<Json<RaiseRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<orteam_ledger::BudgetRaise>), GatewayError> {
    let Json(r) = body.map_err(|e| GatewayError::BadRequest {
        message: e.body_text(),
        param: None,
    })?;
    let dir = state.ledger.directory();
    let team = match r.scope {
        BudgetScope::Member => Some(
            team_of(&dir, &r.id)
                .ok_or_else(|| GatewayError::NotFound(format!("member {:?}", r.id)))?
                .to_owned(),
        ),
        BudgetScope::Team => Some(r.id.clone()),
        BudgetScope::Org => None,
    };
    allow(
        &p,
        &Action::Raise {
            team: team.as_deref(),
            amount: r.amount,
        },
    )?;
    let before = state
        .ledger
        .all_budget_status()
        .await
        .map_err(ledger_err)?
        .into_iter()
        .find(|b| b.scope == r.scope && b.scope_id == r.id && b.window == r.window);
    let raise = state
        .ledger
        .add_raise(r.scope, &r.id, r.window, r.amount, r.until, &r.reason)
        .await
        .map_err(ledger_err)?;
    let limit_before = before.as_ref().map(|b| b.limit);
    record(
        &state,
        &p,
        source,
        "raise",
        format!("{}:{}:{}", r.scope, r.id, r.window),
        Some(serde_json::json!({ "limit": limit_before })),
        Some(serde_json::json!({
            "limit": limit_before.and_then(|l| l.checked_add(r.amount)),
            "raise": raise.amount,
            "until": raise.until,
            "reason": raise.reason,
        })),
    )
    .await;
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
    Extension(who): Extension<Principal>,
    Query(mut p): Query<UsageParams>,
) -> Result<Json<Vec<orteam_ledger::UsageGroup>>, GatewayError> {
    if !who.sees_everything() {
        let dir = state.ledger.directory();
        if let Some(own) = &who.member {
            // A member: only their own usage, whatever they asked for.
            if p.member.as_ref().is_some_and(|m| m != own) || p.team.is_some() {
                return Err(GatewayError::Forbidden(format!(
                    "{} (member) may only read their own usage",
                    who.name
                )));
            }
            p.member = Some(own.clone());
        } else if let Some(m) = &p.member {
            let team = team_of(&dir, m).unwrap_or_default();
            allow(&who, &Action::ViewMember { member: m, team })?;
        } else if let Some(t) = &p.team {
            allow(&who, &Action::View { team: Some(t) })?;
        } else {
            return Err(GatewayError::Forbidden(format!(
                "{} ({}) sees only teams {}: name one with ?team=",
                who.name,
                who.role,
                who.teams.join(", ")
            )));
        }
    }
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
    Extension(who): Extension<Principal>,
    Query(p): Query<EventsParams>,
) -> Result<Json<Vec<orteam_ledger::UsageEvent>>, GatewayError> {
    let limit = p.limit.unwrap_or(50).min(1000);
    let mut events = state
        .ledger
        .recent_events(limit)
        .await
        .map_err(ledger_err)?;
    events.retain(|e| who.sees_member(&e.member_id, &e.team_id));
    Ok(Json(events))
}

/// `GET /admin/v1/anomalies?day=YYYY-MM-DD&all=true&min_spend=…`: today's spend of every member,
/// key and model against its own trailing baseline (rule in docs/insight.md).
async fn anomalies(
    State(state): State<AdminState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<orteam_insight::AnomalyQuery>,
) -> Result<Json<orteam_insight::AnomalyReport>, GatewayError> {
    allow(&who, &Action::View { team: None })?;
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

/// The client's address when the server recorded one (absent in in-process tests).
pub(crate) struct ConnectInfoOpt(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ConnectInfoOpt {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ConnectInfoOpt(
            parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        ))
    }
}
