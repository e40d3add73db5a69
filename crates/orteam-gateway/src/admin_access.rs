//! The admin API's access routes: named admin tokens (`/admin/v1/tokens`) and the audit log
//! (`/admin/v1/audit`, `/admin/v1/audit/verify`). Mounted by [`crate::admin::router`] behind
//! the same principal check; each handler asks `orteam_core::access::authorize`.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use orteam_core::Money;
use orteam_core::access::{Action, Principal, Role};
use orteam_ledger::{AdminToken, AuditEntry, ChainReport, NewAdminToken};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::admin::{AdminState, ConnectInfoOpt, allow, ledger_err};
use crate::error::GatewayError;

/// `GET /admin/v1/tokens`: every named token (never a hash or a secret).
pub(crate) async fn tokens(
    State(state): State<AdminState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<AdminToken>>, GatewayError> {
    allow(&p, &Action::ManageTokens)?;
    Ok(Json(state.ledger.admin_tokens().await.map_err(ledger_err)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    name: String,
    role: Role,
    #[serde(default)]
    teams: Vec<String>,
    max_raise: Option<Money>,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
pub(crate) struct CreatedToken {
    #[serde(flatten)]
    token: AdminToken,
    /// Shown once; orteam keeps only its hash.
    secret: String,
}

/// `POST /admin/v1/tokens`: creates a named token; the answer carries the secret once.
pub(crate) async fn create_token(
    State(state): State<AdminState>,
    Extension(p): Extension<Principal>,
    body: Result<Json<CreateToken>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), GatewayError> {
    allow(&p, &Action::ManageTokens)?;
    let Json(c) = body.map_err(|e| GatewayError::BadRequest {
        message: e.body_text(),
        param: None,
    })?;
    let issued = state
        .ledger
        .create_admin_token(NewAdminToken {
            name: c.name,
            role: c.role,
            teams: c.teams,
            max_raise: c.max_raise,
            expires_at: c.expires_at,
            created_by: p.name.clone(),
        })
        .await
        .map_err(ledger_err)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            secret: issued.secret.expose_secret().to_owned(),
            token: issued.token,
        }),
    ))
}

/// `POST /admin/v1/tokens/{name}/revoke`: the token stops working at once.
pub(crate) async fn revoke_token(
    State(state): State<AdminState>,
    Extension(p): Extension<Principal>,
    ConnectInfoOpt(source): ConnectInfoOpt,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, GatewayError> {
    allow(&p, &Action::ManageTokens)?;
    state
        .ledger
        .revoke_admin_token(&name, &p.name, source)
        .await
        .map_err(ledger_err)?;
    Ok(Json(serde_json::json!({ "revoked": name })))
}

#[derive(Deserialize)]
pub(crate) struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    since: Option<DateTime<Utc>>,
    limit: Option<usize>,
}

/// `GET /admin/v1/audit?actor=&action=&since=&limit=`: entries, newest last.
pub(crate) async fn audit_list(
    State(state): State<AdminState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AuditParams>,
) -> Result<Json<Vec<AuditEntry>>, GatewayError> {
    allow(&p, &Action::ReadAudit)?;
    let mut entries = state.ledger.audit_entries().await.map_err(ledger_err)?;
    entries.retain(|e| {
        q.actor.as_ref().is_none_or(|a| &e.actor == a)
            && q.action.as_ref().is_none_or(|a| &e.action == a)
            && q.since.is_none_or(|s| e.at >= s)
    });
    if let Some(limit) = q.limit {
        let skip = entries.len().saturating_sub(limit);
        entries.drain(..skip);
    }
    Ok(Json(entries))
}

/// `GET /admin/v1/audit/verify`: the chain re-checked; 200 either way, `problems` names rows.
pub(crate) async fn audit_verify(
    State(state): State<AdminState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<ChainReport>, GatewayError> {
    allow(&p, &Action::ReadAudit)?;
    Ok(Json(state.ledger.verify_audit().await.map_err(ledger_err)?))
}
