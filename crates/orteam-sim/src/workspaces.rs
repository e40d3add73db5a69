//! Workspaces (`/workspaces*`, management key): CRUD and members. Keys and guardrails carry a
//! `workspace_id`; every account has a default workspace ([`DEFAULT_WORKSPACE_ID`]) that holds
//! whatever was created without one.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use orteam_core::Clock;
use serde::{Deserialize, Serialize};

use crate::auth::Management;
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::extract::{
    ApiJson, ApiPath, ApiQuery, Field, RawField, page_params, string_field, typed_field,
};
use crate::keys::{DEFAULT_WORKSPACE_ID, fmt_ts};
use crate::org::ORGANIZATION_ID;
use crate::shared::Shared;
use crate::state::State as SimState;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Workspace {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub created_by: Option<String>,
    /// OpenRouter gives every workspace a default guardrail id; the simulator reports a stable
    /// one but enforces nothing through it.
    pub default_guardrail_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WorkspaceMember {
    pub id: String,
    pub workspace_id: String,
    pub user_id: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// The default workspace every account starts with.
pub(crate) fn default_workspace(now: DateTime<Utc>) -> Workspace {
    Workspace {
        id: DEFAULT_WORKSPACE_ID.to_owned(),
        name: "Default".to_owned(),
        slug: "default".to_owned(),
        description: None,
        created_by: None,
        default_guardrail_id: "5e1d8f0c-2a4b-4c6d-8e0f-1a2b3c4d5e6f".to_owned(),
        created_at: now,
        updated_at: None,
        seq: 0,
    }
}

/// The workspace named by `id_or_slug` (OpenRouter's paths accept either).
pub(crate) fn find<'a>(st: &'a SimState, id_or_slug: &str) -> Option<&'a Workspace> {
    st.workspaces
        .iter()
        .find(|w| w.id == id_or_slug || w.slug == id_or_slug)
}

/// Resolves a `workspace_id` given on a key or guardrail to the workspace's id, or 400.
pub(crate) fn resolve_id(st: &SimState, given: Option<String>) -> Result<String, ApiError> {
    match given {
        None => Ok(DEFAULT_WORKSPACE_ID.to_owned()),
        Some(w) => find(st, &w).map(|w| w.id.clone()).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid request parameters: workspace_id {w:?} does not exist"
            ))
        }),
    }
}

#[derive(Serialize)]
struct WorkspaceView<'a> {
    id: &'a str,
    name: &'a str,
    slug: &'a str,
    description: Option<&'a str>,
    created_by: Option<&'a str>,
    default_guardrail_id: &'a str,
    default_image_model: Option<&'a str>,
    default_provider_sort: Option<&'a str>,
    default_text_model: Option<&'a str>,
    io_logging_api_key_ids: Option<Vec<i64>>,
    io_logging_sampling_rate: f64,
    is_data_discount_logging_enabled: bool,
    is_observability_broadcast_enabled: bool,
    is_observability_io_logging_enabled: bool,
    created_at: String,
    updated_at: Option<String>,
}

impl<'a> From<&'a Workspace> for WorkspaceView<'a> {
    fn from(w: &'a Workspace) -> Self {
        WorkspaceView {
            id: &w.id,
            name: &w.name,
            slug: &w.slug,
            description: w.description.as_deref(),
            created_by: w.created_by.as_deref(),
            default_guardrail_id: &w.default_guardrail_id,
            default_image_model: None,
            default_provider_sort: None,
            default_text_model: None,
            io_logging_api_key_ids: None,
            io_logging_sampling_rate: 1.0,
            is_data_discount_logging_enabled: false,
            is_observability_broadcast_enabled: false,
            is_observability_io_logging_enabled: false,
            created_at: fmt_ts(w.created_at),
            updated_at: w.updated_at.map(fmt_ts),
        }
    }
}

#[derive(Serialize)]
struct MemberView<'a> {
    id: &'a str,
    workspace_id: &'a str,
    user_id: &'a str,
    role: &'a str,
    created_at: String,
}

impl<'a> From<&'a WorkspaceMember> for MemberView<'a> {
    fn from(m: &'a WorkspaceMember) -> Self {
        MemberView {
            id: &m.id,
            workspace_id: &m.workspace_id,
            user_id: &m.user_id,
            role: &m.role,
            created_at: fmt_ts(m.created_at),
        }
    }
}

fn json(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(b) => (status, [(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(_) => ApiError::internal("Internal Server Error").into_response(),
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("Workspace not found")
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    offset: Option<String>,
    limit: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct WorkspaceBody {
    #[serde(default)]
    name: RawField,
    #[serde(default)]
    slug: RawField,
    #[serde(default)]
    description: RawField,
}

#[derive(Deserialize)]
pub(crate) struct MembersBody {
    #[serde(default)]
    user_ids: RawField,
}

/// A slug: lowercase letters, digits and dashes, 1–64 characters.
fn valid_slug(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn slug_field(raw: &RawField) -> Result<Option<String>, ApiError> {
    let slug = string_field(raw, "slug")?.into_option();
    if let Some(s) = &slug
        && !valid_slug(s)
    {
        return Err(ApiError::bad_request(format!(
            "Invalid request parameters: slug must be 1-64 lowercase letters, digits or dashes, got {s:?}"
        )));
    }
    Ok(slug)
}

fn taken(st: &SimState, slug: &str, except: Option<&str>) -> bool {
    st.workspaces
        .iter()
        .any(|w| w.slug == slug && Some(w.id.as_str()) != except)
}

async fn list_workspaces(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = page_params(q.offset.as_deref(), q.limit.as_deref())?;
    let st = shared.state.lock();
    let data: Vec<WorkspaceView<'_>> = st
        .workspaces
        .iter()
        .skip(offset)
        .take(limit)
        .map(WorkspaceView::from)
        .collect();
    Ok(json(
        StatusCode::OK,
        &Envelope::page(data, st.workspaces.len()),
    ))
}

async fn create_workspace(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiJson(body): ApiJson<WorkspaceBody>,
) -> Result<Response, ApiError> {
    let name = string_field(&body.name, "name")?
        .into_option()
        .ok_or_else(|| ApiError::bad_request("Invalid request parameters: name is required"))?;
    let slug = slug_field(&body.slug)?
        .ok_or_else(|| ApiError::bad_request("Invalid request parameters: slug is required"))?;
    let description =
        typed_field::<String>(&body.description, "description", "a string or null")?.into_option();
    let now = shared.clock.now();
    let mut st = shared.state.lock();
    if taken(&st, &slug, None) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("A workspace with slug {slug:?} already exists"),
        ));
    }
    st.workspace_seq += 1;
    let w = Workspace {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        slug,
        description,
        created_by: None,
        default_guardrail_id: uuid::Uuid::new_v4().to_string(),
        created_at: now,
        updated_at: None,
        seq: st.workspace_seq,
    };
    let resp = json(
        StatusCode::CREATED,
        &Envelope::data(WorkspaceView::from(&w)),
    );
    st.workspaces.push(w);
    drop(st);
    shared.mark_dirty();
    Ok(resp)
}

async fn get_workspace(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let st = shared.state.lock();
    let w = find(&st, &id).ok_or_else(not_found)?;
    Ok(json(
        StatusCode::OK,
        &Envelope::data(WorkspaceView::from(w)),
    ))
}

async fn update_workspace(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<WorkspaceBody>,
) -> Result<Response, ApiError> {
    let name = match string_field(&body.name, "name")? {
        Field::Null => {
            return Err(ApiError::bad_request(
                "Invalid request parameters: name cannot be null",
            ));
        }
        f => f.into_option(),
    };
    let slug = slug_field(&body.slug)?;
    let description =
        typed_field::<String>(&body.description, "description", "a string or null")?.into_patch();
    let now = shared.clock.now();
    let mut st = shared.state.lock();
    let wid = find(&st, &id).ok_or_else(not_found)?.id.clone();
    if let Some(s) = &slug
        && taken(&st, s, Some(&wid))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("A workspace with slug {s:?} already exists"),
        ));
    }
    let w = st
        .workspaces
        .iter_mut()
        .find(|w| w.id == wid)
        .ok_or_else(not_found)?;
    if let Some(n) = name {
        w.name = n;
    }
    if let Some(s) = slug {
        w.slug = s;
    }
    if let Some(d) = description {
        w.description = d;
    }
    w.updated_at = Some(now);
    let resp = json(StatusCode::OK, &Envelope::data(WorkspaceView::from(&*w)));
    drop(st);
    shared.mark_dirty();
    Ok(resp)
}

#[derive(Deserialize)]
pub(crate) struct DeleteQuery {
    confirm_default_workspace_deletion: Option<String>,
}

/// `DELETE /workspaces/{id}`: refused while keys or guardrails still live in it (the simulator's
/// choice: deleting them silently would orphan spend), and for the default workspace unless
/// confirmed.
async fn delete_workspace(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<Response, ApiError> {
    let mut st = shared.state.lock();
    let wid = find(&st, &id).ok_or_else(not_found)?.id.clone();
    if wid == DEFAULT_WORKSPACE_ID
        && q.confirm_default_workspace_deletion.as_deref() != Some("true")
    {
        return Err(ApiError::bad_request(
            "Invalid request parameters: deleting the default workspace needs confirm_default_workspace_deletion=true",
        ));
    }
    let keys = st.keys.values().filter(|k| k.workspace_id == wid).count();
    let guardrails = st
        .guardrails
        .values()
        .filter(|g| g.workspace_id == wid)
        .count();
    if keys + guardrails > 0 {
        return Err(ApiError::bad_request(format!(
            "Invalid request parameters: workspace still holds {keys} API key(s) and {guardrails} guardrail(s); delete them first"
        )));
    }
    st.workspaces.retain(|w| w.id != wid);
    st.workspace_members.retain(|m| m.workspace_id != wid);
    drop(st);
    shared.mark_dirty();
    Ok(json(StatusCode::OK, &serde_json::json!({"deleted": true})))
}

async fn list_members(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = page_params(q.offset.as_deref(), q.limit.as_deref())?;
    let st = shared.state.lock();
    let wid = find(&st, &id).ok_or_else(not_found)?.id.clone();
    let all: Vec<&WorkspaceMember> = st
        .workspace_members
        .iter()
        .filter(|m| m.workspace_id == wid)
        .collect();
    let total = all.len();
    let data: Vec<MemberView<'_>> = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(MemberView::from)
        .collect();
    Ok(json(StatusCode::OK, &Envelope::page(data, total)))
}

fn user_ids(body: &MembersBody) -> Result<Vec<String>, ApiError> {
    let ids = typed_field::<Vec<String>>(&body.user_ids, "user_ids", "an array of strings")?
        .into_option()
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid request parameters: user_ids must hold at least one user id",
        ));
    }
    Ok(ids)
}

/// `POST /workspaces/{id}/members/add` → `{added_count, data}`; users must be organization
/// members; ones already in the workspace are not added twice.
async fn add_members(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<MembersBody>,
) -> Result<Response, ApiError> {
    let ids = user_ids(&body)?;
    let now = shared.clock.now();
    let mut st = shared.state.lock();
    let wid = find(&st, &id).ok_or_else(not_found)?.id.clone();
    if let Some(unknown) = ids.iter().find(|u| !st.members.iter().any(|m| &m.id == *u)) {
        return Err(ApiError::bad_request(format!(
            "Invalid request parameters: {unknown:?} is not a member of organization {ORGANIZATION_ID}"
        )));
    }
    let mut added = Vec::new();
    for u in ids {
        let present = st
            .workspace_members
            .iter()
            .any(|m| m.workspace_id == wid && m.user_id == u);
        if present || added.iter().any(|m: &WorkspaceMember| m.user_id == u) {
            continue;
        }
        added.push(WorkspaceMember {
            id: uuid::Uuid::new_v4().to_string(),
            workspace_id: wid.clone(),
            user_id: u,
            role: "member".to_owned(),
            created_at: now,
        });
    }
    let data: Vec<MemberView<'_>> = added.iter().map(MemberView::from).collect();
    let resp = json(
        StatusCode::OK,
        &serde_json::json!({"added_count": data.len(), "data": data}),
    );
    st.workspace_members.extend(added);
    drop(st);
    shared.mark_dirty();
    Ok(resp)
}

/// `POST /workspaces/{id}/members/remove` → `{removed_count}`.
async fn remove_members(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<MembersBody>,
) -> Result<Response, ApiError> {
    let ids = user_ids(&body)?;
    let mut st = shared.state.lock();
    let wid = find(&st, &id).ok_or_else(not_found)?.id.clone();
    let before = st.workspace_members.len();
    st.workspace_members
        .retain(|m| !(m.workspace_id == wid && ids.contains(&m.user_id)));
    let removed = before - st.workspace_members.len();
    drop(st);
    shared.mark_dirty();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"removed_count": removed}),
    ))
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/workspaces", get(list_workspaces).post(create_workspace))
        .route(
            "/workspaces/{id}",
            get(get_workspace)
                .patch(update_workspace)
                .delete(delete_workspace),
        )
        .route("/workspaces/{id}/members", get(list_members))
        .route("/workspaces/{id}/members/add", post(add_members))
        .route("/workspaces/{id}/members/remove", post(remove_members))
}
