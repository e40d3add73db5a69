//! The guardrail management API: CRUD and key and member assignments, on the official paths
//! plus the opt-in legacy MCP aliases.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orteam_core::money::json_number;
use orteam_core::{Clock, Money, Window};
use serde::{Deserialize, Serialize};

use super::{Guardrail, KeyAssignment, MemberAssignment};
use crate::auth::Management;
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::extract::{
    ApiJson, ApiPath, ApiQuery, Field, RawField, money_field, page_params, string_field,
    typed_field, window_field,
};
use crate::keys::{DEFAULT_WORKSPACE_ID, fmt_ts, mask};
use crate::org::ORGANIZATION_ID;
use crate::shared::Shared;
use crate::state::State as SimState;

#[derive(Serialize)]
struct GuardrailView<'a> {
    id: &'a str,
    name: &'a str,
    description: Option<&'a str>,
    #[serde(with = "json_number::option")]
    limit_usd: Option<Money>,
    reset_interval: Option<Window>,
    allowed_providers: &'a Option<Vec<String>>,
    ignored_providers: &'a Option<Vec<String>>,
    allowed_models: &'a Option<Vec<String>>,
    ignored_models: &'a Option<Vec<String>>,
    enforce_zdr: Option<bool>,
    include_byok_in_budgets: bool,
    created_at: String,
    updated_at: Option<String>,
    workspace_id: &'a str,
}

impl<'a> From<&'a Guardrail> for GuardrailView<'a> {
    fn from(g: &'a Guardrail) -> Self {
        GuardrailView {
            id: &g.id,
            name: &g.name,
            description: g.description.as_deref(),
            limit_usd: g.limit_usd,
            reset_interval: g.reset_interval,
            allowed_providers: &g.allowed_providers,
            ignored_providers: &g.ignored_providers,
            allowed_models: &g.allowed_models,
            ignored_models: &g.ignored_models,
            enforce_zdr: g.enforce_zdr,
            include_byok_in_budgets: g.include_byok_in_budgets,
            created_at: fmt_ts(g.created_at),
            updated_at: g.updated_at.map(fmt_ts),
            workspace_id: &g.workspace_id,
        }
    }
}

fn json(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(b) => (status, [(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(_) => ApiError::internal("Internal Server Error").into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    offset: Option<String>,
    limit: Option<String>,
    workspace_id: Option<String>,
}

fn not_found() -> ApiError {
    ApiError::not_found("Guardrail not found")
}

#[derive(Deserialize)]
pub(crate) struct GuardrailBody {
    #[serde(default)]
    name: RawField,
    #[serde(default)]
    description: RawField,
    #[serde(default)]
    limit_usd: RawField,
    #[serde(default)]
    reset_interval: RawField,
    #[serde(default)]
    allowed_providers: RawField,
    #[serde(default)]
    ignored_providers: RawField,
    #[serde(default)]
    allowed_models: RawField,
    #[serde(default)]
    ignored_models: RawField,
    #[serde(default)]
    enforce_zdr: RawField,
    #[serde(default)]
    include_byok_in_budgets: RawField,
    #[serde(default)]
    workspace_id: RawField,
}

fn strings_field(raw: &RawField, name: &str) -> Result<Field<Vec<String>>, ApiError> {
    typed_field::<Vec<String>>(raw, name, "an array of strings or null")
}

/// Model lists are stored as canonical slugs; unknown models are rejected.
fn models_field(
    shared: &Shared,
    raw: &RawField,
    name: &str,
) -> Result<Field<Vec<String>>, ApiError> {
    Ok(match strings_field(raw, name)? {
        Field::Value(list) => {
            let mut out = Vec::with_capacity(list.len());
            for m in list {
                let idx = shared.catalog.get(&m).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid request parameters: {name} contains an unknown model {m:?}"
                    ))
                })?;
                let slug = shared.catalog.model(idx).canonical_slug.to_string();
                if !out.contains(&slug) {
                    out.push(slug);
                }
            }
            Field::Value(out)
        }
        other => other,
    })
}

/// Parsed guardrail fields (PATCH semantics: outer None = not given, inner None = null).
struct GuardrailPatch {
    name: Option<String>,
    description: Option<Option<String>>,
    limit_usd: Option<Option<Money>>,
    reset_interval: Option<Option<Window>>,
    allowed_providers: Option<Option<Vec<String>>>,
    ignored_providers: Option<Option<Vec<String>>>,
    allowed_models: Option<Option<Vec<String>>>,
    ignored_models: Option<Option<Vec<String>>>,
    enforce_zdr: Option<Option<bool>>,
    include_byok_in_budgets: Option<bool>,
    workspace_id: Option<String>,
}

fn parse_body(shared: &Shared, b: &GuardrailBody) -> Result<GuardrailPatch, ApiError> {
    let name = match string_field(&b.name, "name")? {
        Field::Null => {
            return Err(ApiError::bad_request(
                "Invalid request parameters: name cannot be null",
            ));
        }
        f => f.into_option(),
    };
    Ok(GuardrailPatch {
        name,
        description: typed_field::<String>(&b.description, "description", "a string or null")?
            .into_patch(),
        limit_usd: money_field(&b.limit_usd, "limit_usd")?.into_patch(),
        reset_interval: window_field(&b.reset_interval, "reset_interval")?.into_patch(),
        allowed_providers: strings_field(&b.allowed_providers, "allowed_providers")?.into_patch(),
        ignored_providers: strings_field(&b.ignored_providers, "ignored_providers")?.into_patch(),
        allowed_models: models_field(shared, &b.allowed_models, "allowed_models")?.into_patch(),
        ignored_models: models_field(shared, &b.ignored_models, "ignored_models")?.into_patch(),
        enforce_zdr: typed_field::<bool>(&b.enforce_zdr, "enforce_zdr", "a boolean or null")?
            .into_patch(),
        include_byok_in_budgets: typed_field::<bool>(
            &b.include_byok_in_budgets,
            "include_byok_in_budgets",
            "a boolean",
        )?
        .into_option(),
        workspace_id: string_field(&b.workspace_id, "workspace_id")?.into_option(),
    })
}

impl GuardrailPatch {
    fn apply(self, g: &mut Guardrail) {
        if let Some(v) = self.name {
            g.name = v;
        }
        if let Some(v) = self.description {
            g.description = v;
        }
        if let Some(v) = self.limit_usd {
            g.limit_usd = v;
        }
        if let Some(v) = self.reset_interval {
            g.reset_interval = v;
        }
        if let Some(v) = self.allowed_providers {
            g.allowed_providers = v;
        }
        if let Some(v) = self.ignored_providers {
            g.ignored_providers = v;
        }
        if let Some(v) = self.allowed_models {
            g.allowed_models = v;
        }
        if let Some(v) = self.ignored_models {
            g.ignored_models = v;
        }
        if let Some(v) = self.enforce_zdr {
            g.enforce_zdr = v;
        }
        if let Some(v) = self.include_byok_in_budgets {
            g.include_byok_in_budgets = v;
        }
        if let Some(v) = self.workspace_id {
            g.workspace_id = v;
        }
    }
}

async fn list_guardrails(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = page_params(q.offset.as_deref(), q.limit.as_deref())?;
    let st = shared.state.lock();
    let mut all: Vec<&Guardrail> = st
        .guardrails
        .values()
        .filter(|g| {
            q.workspace_id
                .as_deref()
                .is_none_or(|w| w.is_empty() || g.workspace_id == w)
        })
        .collect();
    all.sort_by_key(|g| g.seq);
    let total_count = all.len();
    let data: Vec<GuardrailView<'_>> = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(GuardrailView::from)
        .collect();
    Ok(json(StatusCode::OK, &Envelope::page(data, total_count)))
}

async fn create_guardrail(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiJson(body): ApiJson<GuardrailBody>,
) -> Result<Response, ApiError> {
    let mut patch = parse_body(&shared, &body)?;
    if patch.name.is_none() {
        return Err(ApiError::bad_request(
            "Invalid request parameters: name is required",
        ));
    }
    let now = shared.clock.now();
    let mut st = shared.state.lock();
    patch.workspace_id = Some(crate::workspaces::resolve_id(
        &st,
        patch.workspace_id.take(),
    )?);
    st.guardrail_seq += 1;
    let mut g = Guardrail {
        id: uuid::Uuid::new_v4().to_string(),
        name: String::new(),
        description: None,
        limit_usd: None,
        reset_interval: None,
        allowed_providers: None,
        ignored_providers: None,
        allowed_models: None,
        ignored_models: None,
        enforce_zdr: None,
        include_byok_in_budgets: false,
        created_at: now,
        updated_at: None,
        workspace_id: DEFAULT_WORKSPACE_ID.to_owned(),
        seq: st.guardrail_seq,
    };
    patch.apply(&mut g);
    let resp = json(
        StatusCode::CREATED,
        &Envelope::data(GuardrailView::from(&g)),
    );
    st.guardrails.insert(g.id.clone(), g);
    drop(st);
    shared.mark_dirty();
    Ok(resp)
}

async fn get_guardrail(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let st = shared.state.lock();
    let g = st.guardrails.get(&id).ok_or_else(not_found)?;
    Ok(json(
        StatusCode::OK,
        &Envelope::data(GuardrailView::from(g)),
    ))
}

async fn update_guardrail(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<GuardrailBody>,
) -> Result<Response, ApiError> {
    let mut patch = parse_body(&shared, &body)?;
    let now = shared.clock.now();
    let mut st = shared.state.lock();
    if let Some(w) = patch.workspace_id.take() {
        patch.workspace_id = Some(crate::workspaces::resolve_id(&st, Some(w))?);
    }
    let g = st.guardrails.get_mut(&id).ok_or_else(not_found)?;
    patch.apply(g);
    g.updated_at = Some(now);
    let resp = json(StatusCode::OK, &Envelope::data(GuardrailView::from(&*g)));
    drop(st);
    shared.mark_dirty();
    Ok(resp)
}

async fn delete_guardrail(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let mut st = shared.state.lock();
    st.guardrails.remove(&id).ok_or_else(not_found)?;
    st.key_assign.retain(|_, a| a.guardrail_id != id);
    st.member_assign.retain(|_, a| a.guardrail_id != id);
    drop(st);
    shared.mark_dirty();
    Ok(json(StatusCode::OK, &serde_json::json!({"deleted": true})))
}

#[derive(Serialize)]
struct KeyAssignmentView<'a> {
    id: &'a str,
    guardrail_id: &'a str,
    key_hash: &'a str,
    key_name: Option<&'a str>,
    key_label: Option<String>,
    assigned_by: Option<&'a str>,
    created_at: String,
    // Legacy MCP field names, only on the alias paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key_name: Option<&'a str>,
}

#[derive(Serialize)]
struct MemberAssignmentView<'a> {
    id: &'a str,
    guardrail_id: &'a str,
    user_id: &'a str,
    organization_id: &'a str,
    assigned_by: Option<&'a str>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    member_email: Option<&'a str>,
}

fn key_assignment_page(
    st: &SimState,
    guardrail: Option<&str>,
    offset: usize,
    limit: usize,
    legacy: bool,
) -> Response {
    let mut all: Vec<&KeyAssignment> = st
        .key_assign
        .values()
        .filter(|a| guardrail.is_none_or(|g| a.guardrail_id == g))
        .collect();
    all.sort_by_key(|a| a.seq);
    let total_count = all.len();
    let data: Vec<KeyAssignmentView<'_>> = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|a| {
            let key = st.keys.get(&a.key_hash);
            KeyAssignmentView {
                id: &a.id,
                guardrail_id: &a.guardrail_id,
                key_hash: &a.key_hash,
                key_name: key.map(|k| k.name.as_str()),
                key_label: key.map(|k| mask(&k.secret)),
                assigned_by: a.assigned_by.as_deref(),
                created_at: fmt_ts(a.created_at),
                api_key_hash: legacy.then_some(&*a.key_hash),
                api_key_name: if legacy {
                    key.map(|k| k.name.as_str())
                } else {
                    None
                },
            }
        })
        .collect();
    json(StatusCode::OK, &Envelope::page(data, total_count))
}

fn member_assignment_page(
    st: &SimState,
    guardrail: Option<&str>,
    offset: usize,
    limit: usize,
    legacy: bool,
) -> Response {
    let mut all: Vec<&MemberAssignment> = st
        .member_assign
        .values()
        .filter(|a| guardrail.is_none_or(|g| a.guardrail_id == g))
        .collect();
    all.sort_by_key(|a| a.seq);
    let total_count = all.len();
    let data: Vec<MemberAssignmentView<'_>> = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|a| MemberAssignmentView {
            id: &a.id,
            guardrail_id: &a.guardrail_id,
            user_id: &a.user_id,
            organization_id: ORGANIZATION_ID,
            assigned_by: a.assigned_by.as_deref(),
            created_at: fmt_ts(a.created_at),
            member_email: if legacy {
                st.members
                    .iter()
                    .find(|m| m.id == a.user_id)
                    .map(|m| m.email.as_str())
            } else {
                None
            },
        })
        .collect();
    json(StatusCode::OK, &Envelope::page(data, total_count))
}

async fn all_key_assignments(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = page_params(q.offset.as_deref(), q.limit.as_deref())?;
    Ok(key_assignment_page(
        &shared.state.lock(),
        None,
        offset,
        limit,
        false,
    ))
}

async fn all_member_assignments(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = page_params(q.offset.as_deref(), q.limit.as_deref())?;
    Ok(member_assignment_page(
        &shared.state.lock(),
        None,
        offset,
        limit,
        false,
    ))
}

async fn legacy_key_assignments(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = page_params(q.offset.as_deref(), q.limit.as_deref())?;
    Ok(key_assignment_page(
        &shared.state.lock(),
        None,
        offset,
        limit,
        true,
    ))
}

async fn legacy_member_assignments(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = page_params(q.offset.as_deref(), q.limit.as_deref())?;
    Ok(member_assignment_page(
        &shared.state.lock(),
        None,
        offset,
        limit,
        true,
    ))
}

async fn guardrail_key_assignments(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = page_params(q.offset.as_deref(), q.limit.as_deref())?;
    let st = shared.state.lock();
    if !st.guardrails.contains_key(&id) {
        return Err(not_found());
    }
    Ok(key_assignment_page(&st, Some(&id), offset, limit, false))
}

async fn guardrail_member_assignments(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = page_params(q.offset.as_deref(), q.limit.as_deref())?;
    let st = shared.state.lock();
    if !st.guardrails.contains_key(&id) {
        return Err(not_found());
    }
    Ok(member_assignment_page(&st, Some(&id), offset, limit, false))
}

#[derive(Deserialize)]
pub(crate) struct IdsBody {
    #[serde(default)]
    key_hashes: RawField,
    #[serde(default)]
    member_user_ids: RawField,
    #[serde(default)]
    api_key_hashes: RawField,
    #[serde(default)]
    user_ids: RawField,
}

fn ids(raw: &RawField, name: &str) -> Result<Vec<String>, ApiError> {
    match strings_field(raw, name)? {
        Field::Value(v) if !v.is_empty() => Ok(v),
        _ => Err(ApiError::bad_request(format!(
            "Invalid request parameters: {name} must be a non-empty array of strings"
        ))),
    }
}

#[derive(Clone, Copy)]
enum Op {
    Assign,
    Remove,
}

fn change_keys(
    shared: &Shared,
    id: &str,
    hashes: Vec<String>,
    op: Op,
) -> Result<Response, ApiError> {
    let now = shared.clock.now();
    let mut st = shared.state.lock();
    if !st.guardrails.contains_key(id) {
        return Err(not_found());
    }
    let unknown: Vec<&str> = hashes
        .iter()
        .filter(|h| !st.keys.contains_key(h.as_str()))
        .map(String::as_str)
        .collect();
    if matches!(op, Op::Assign) && !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Invalid request parameters: unknown key hash(es): {}",
            unknown.join(", ")
        )));
    }
    let mut count = 0;
    for h in hashes {
        match op {
            Op::Assign => {
                let Some(key_hash) = st.keys.get(h.as_str()).map(|k| k.hash.clone()) else {
                    continue;
                };
                if st
                    .key_assign
                    .get(&key_hash)
                    .is_some_and(|a| a.guardrail_id == id)
                {
                    continue;
                }
                let seq = st.next_assign_seq();
                // A key has at most one guardrail: assigning moves it.
                st.key_assign.insert(
                    key_hash.clone(),
                    KeyAssignment {
                        id: uuid::Uuid::new_v4().to_string(),
                        guardrail_id: id.to_owned(),
                        key_hash,
                        assigned_by: None,
                        created_at: now,
                        seq,
                    },
                );
                count += 1;
            }
            Op::Remove => {
                if st
                    .key_assign
                    .get(h.as_str())
                    .is_some_and(|a| a.guardrail_id == id)
                {
                    st.key_assign.remove(h.as_str());
                    count += 1;
                }
            }
        }
    }
    drop(st);
    shared.mark_dirty();
    Ok(count_response(op, count))
}

fn change_members(
    shared: &Shared,
    id: &str,
    users: Vec<String>,
    op: Op,
) -> Result<Response, ApiError> {
    let now = shared.clock.now();
    let mut st = shared.state.lock();
    if !st.guardrails.contains_key(id) {
        return Err(not_found());
    }
    let unknown: Vec<&str> = users
        .iter()
        .filter(|u| !st.members.iter().any(|m| &m.id == *u))
        .map(String::as_str)
        .collect();
    if matches!(op, Op::Assign) && !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Invalid request parameters: unknown member user id(s): {}",
            unknown.join(", ")
        )));
    }
    let mut count = 0;
    for u in users {
        match op {
            Op::Assign => {
                if st
                    .member_assign
                    .get(&u)
                    .is_some_and(|a| a.guardrail_id == id)
                {
                    continue;
                }
                let seq = st.next_assign_seq();
                st.member_assign.insert(
                    u.clone(),
                    MemberAssignment {
                        id: uuid::Uuid::new_v4().to_string(),
                        guardrail_id: id.to_owned(),
                        user_id: u,
                        assigned_by: None,
                        created_at: now,
                        seq,
                    },
                );
                count += 1;
            }
            Op::Remove => {
                if st
                    .member_assign
                    .get(&u)
                    .is_some_and(|a| a.guardrail_id == id)
                {
                    st.member_assign.remove(&u);
                    count += 1;
                }
            }
        }
    }
    drop(st);
    shared.mark_dirty();
    Ok(count_response(op, count))
}

fn count_response(op: Op, count: usize) -> Response {
    let body = match op {
        Op::Assign => serde_json::json!({"assigned_count": count}),
        Op::Remove => serde_json::json!({"unassigned_count": count}),
    };
    json(StatusCode::OK, &body)
}

async fn assign_keys(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<IdsBody>,
) -> Result<Response, ApiError> {
    change_keys(
        &shared,
        &id,
        ids(&body.key_hashes, "key_hashes")?,
        Op::Assign,
    )
}

async fn unassign_keys(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<IdsBody>,
) -> Result<Response, ApiError> {
    change_keys(
        &shared,
        &id,
        ids(&body.key_hashes, "key_hashes")?,
        Op::Remove,
    )
}

async fn assign_members(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<IdsBody>,
) -> Result<Response, ApiError> {
    change_members(
        &shared,
        &id,
        ids(&body.member_user_ids, "member_user_ids")?,
        Op::Assign,
    )
}

async fn unassign_members(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<IdsBody>,
) -> Result<Response, ApiError> {
    change_members(
        &shared,
        &id,
        ids(&body.member_user_ids, "member_user_ids")?,
        Op::Remove,
    )
}

async fn legacy_assign_keys(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<IdsBody>,
) -> Result<Response, ApiError> {
    change_keys(
        &shared,
        &id,
        ids(&body.api_key_hashes, "api_key_hashes")?,
        Op::Assign,
    )
}

async fn legacy_unassign_keys(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<IdsBody>,
) -> Result<Response, ApiError> {
    change_keys(
        &shared,
        &id,
        ids(&body.api_key_hashes, "api_key_hashes")?,
        Op::Remove,
    )
}

async fn legacy_assign_members(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<IdsBody>,
) -> Result<Response, ApiError> {
    change_members(&shared, &id, ids(&body.user_ids, "user_ids")?, Op::Assign)
}

async fn legacy_unassign_members(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<IdsBody>,
) -> Result<Response, ApiError> {
    change_members(&shared, &id, ids(&body.user_ids, "user_ids")?, Op::Remove)
}

/// The official guardrail paths (relative to `/api/v1`).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/guardrails", get(list_guardrails).post(create_guardrail))
        .route(
            "/guardrails/{id}",
            get(get_guardrail)
                .patch(update_guardrail)
                .delete(delete_guardrail),
        )
        .route("/guardrails/assignments/keys", get(all_key_assignments))
        .route(
            "/guardrails/assignments/members",
            get(all_member_assignments),
        )
        .route(
            "/guardrails/{id}/assignments/keys",
            get(guardrail_key_assignments).post(assign_keys),
        )
        .route(
            "/guardrails/{id}/assignments/keys/remove",
            post(unassign_keys),
        )
        .route(
            "/guardrails/{id}/assignments/members",
            get(guardrail_member_assignments).post(assign_members),
        )
        .route(
            "/guardrails/{id}/assignments/members/remove",
            post(unassign_members),
        )
}

/// openrouter-admin-mcp v0.7.3's paths and body names (opt-in via `legacy_mcp_paths`).
pub(crate) fn legacy_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/guardrails/key-assignments", get(legacy_key_assignments))
        .route(
            "/guardrails/member-assignments",
            get(legacy_member_assignments),
        )
        .route(
            "/guardrails/{id}/keys/bulk-assign",
            post(legacy_assign_keys),
        )
        .route(
            "/guardrails/{id}/keys/bulk-unassign",
            post(legacy_unassign_keys),
        )
        .route(
            "/guardrails/{id}/members/bulk-assign",
            post(legacy_assign_members),
        )
        .route(
            "/guardrails/{id}/members/bulk-unassign",
            post(legacy_unassign_members),
        )
}
