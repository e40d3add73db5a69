//! API keys (`/keys*`), the current key (`/key`, `/auth/key`) and `/credits`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use orteam_core::money::json_number;
use orteam_core::{Clock, Money, Window};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{Caller, Management};
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::extract::{
    ApiJson, ApiPath, ApiQuery, Field, RawField, money_field, parse_usize_param, string_field,
    typed_field, utc_time_field, window_field,
};
use crate::guardrails::{KeyBudget, key_budgets};
use crate::org::ORGANIZATION_ID;
use crate::shared::Shared;
use crate::state::{KeyRecord, State as SimState};

/// The workspace every key belongs to unless told otherwise.
pub(crate) const DEFAULT_WORKSPACE_ID: &str = "0f6d8e3a-5b1c-4c2d-9e7f-a1b2c3d4e5f6";
const PAGE_SIZE: usize = 100;

/// ISO-8601 UTC with milliseconds, as OpenRouter prints timestamps.
pub(crate) fn fmt_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `sk-or-v1-0e6...1c96`: the masked preview shown instead of a secret.
pub(crate) fn mask(secret: &str) -> String {
    let body = secret.strip_prefix("sk-or-v1-").unwrap_or(secret);
    let head: String = body.chars().take(3).collect();
    let tail: String = body
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-or-v1-{head}...{tail}")
}

pub(crate) struct NewKey {
    pub name: String,
    pub limit: Option<Money>,
    pub limit_reset: Option<Window>,
    pub include_byok_in_limit: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub creator_user_id: Option<String>,
    /// Already resolved to an existing workspace's id.
    pub workspace_id: String,
    pub external_user: Option<String>,
}

/// Creates a key with a fresh `sk-or-v1-<64 hex>` secret; returns (secret, hash).
pub(crate) fn insert_key(st: &mut SimState, new: NewKey, now: DateTime<Utc>) -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("sk-or-v1-{}", hex::encode(bytes));
    let hash: Arc<str> = hex::encode(Sha256::digest(secret.as_bytes())).into();
    st.key_seq += 1;
    let rec = KeyRecord {
        hash: hash.clone(),
        secret: secret.clone(),
        name: new.name,
        disabled: false,
        limit: new.limit,
        limit_reset: new.limit_reset,
        include_byok_in_limit: new.include_byok_in_limit,
        created_at: now,
        updated_at: None,
        expires_at: new.expires_at,
        creator_user_id: new.creator_user_id,
        workspace_id: new.workspace_id,
        external_user: new.external_user,
        last_used_at: None,
        seq: st.key_seq,
        usage: Money::ZERO,
        byok_usage: Money::ZERO,
        days: BTreeMap::new(),
    };
    st.by_secret.insert(secret.clone(), hash.clone());
    st.keys.insert(hash.clone(), rec);
    (secret, hash.to_string())
}

/// Usage figures of a key at a given day.
#[derive(Serialize)]
struct UsageFields {
    #[serde(with = "json_number")]
    usage: Money,
    #[serde(with = "json_number")]
    usage_daily: Money,
    #[serde(with = "json_number")]
    usage_weekly: Money,
    #[serde(with = "json_number")]
    usage_monthly: Money,
    #[serde(with = "json_number")]
    byok_usage: Money,
    #[serde(with = "json_number")]
    byok_usage_daily: Money,
    #[serde(with = "json_number")]
    byok_usage_weekly: Money,
    #[serde(with = "json_number")]
    byok_usage_monthly: Money,
}

impl UsageFields {
    fn of(k: &KeyRecord, today: NaiveDate) -> Self {
        let (d, bd) = k.period_usage(Some(Window::Daily), today);
        let (w, bw) = k.period_usage(Some(Window::Weekly), today);
        let (m, bm) = k.period_usage(Some(Window::Monthly), today);
        UsageFields {
            usage: k.usage,
            usage_daily: d,
            usage_weekly: w,
            usage_monthly: m,
            byok_usage: k.byok_usage,
            byok_usage_daily: bd,
            byok_usage_weekly: bw,
            byok_usage_monthly: bm,
        }
    }

    fn zero() -> Self {
        UsageFields {
            usage: Money::ZERO,
            usage_daily: Money::ZERO,
            usage_weekly: Money::ZERO,
            usage_monthly: Money::ZERO,
            byok_usage: Money::ZERO,
            byok_usage_daily: Money::ZERO,
            byok_usage_weekly: Money::ZERO,
            byok_usage_monthly: Money::ZERO,
        }
    }
}

/// The key object of the management API.
#[derive(Serialize)]
pub(crate) struct KeyView<'a> {
    hash: &'a str,
    name: &'a str,
    label: String,
    disabled: bool,
    #[serde(with = "json_number::option")]
    limit: Option<Money>,
    #[serde(with = "json_number::option")]
    limit_remaining: Option<Money>,
    limit_reset: Option<Window>,
    include_byok_in_limit: bool,
    #[serde(flatten)]
    usage: UsageFields,
    created_at: String,
    updated_at: Option<String>,
    expires_at: Option<String>,
    creator_user_id: Option<&'a str>,
    workspace_id: &'a str,
    external_user: Option<&'a str>,
    last_used_at: Option<String>,
}

impl<'a> KeyView<'a> {
    pub fn of(k: &'a KeyRecord, today: NaiveDate) -> Self {
        KeyView {
            hash: &k.hash,
            name: &k.name,
            label: mask(&k.secret),
            disabled: k.disabled,
            limit: k.limit,
            limit_remaining: k.limit_remaining(today),
            limit_reset: k.limit_reset,
            include_byok_in_limit: k.include_byok_in_limit,
            usage: UsageFields::of(k, today),
            created_at: fmt_ts(k.created_at),
            updated_at: k.updated_at.map(fmt_ts),
            expires_at: k.expires_at.map(fmt_ts),
            creator_user_id: k.creator_user_id.as_deref(),
            workspace_id: &k.workspace_id,
            external_user: k.external_user.as_deref(),
            last_used_at: k.last_used_at.map(fmt_ts),
        }
    }
}

#[derive(Serialize)]
struct RateLimit {
    requests: i64,
    interval: &'static str,
    note: &'static str,
}

#[derive(Serialize)]
struct CurrentKey<'a> {
    label: String,
    #[serde(with = "json_number::option")]
    limit: Option<Money>,
    #[serde(with = "json_number::option")]
    limit_remaining: Option<Money>,
    limit_reset: Option<Window>,
    include_byok_in_limit: bool,
    #[serde(flatten)]
    usage: UsageFields,
    is_free_tier: bool,
    is_management_key: bool,
    is_provisioning_key: bool,
    creator_user_id: Option<&'a str>,
    expires_at: Option<String>,
    rate_limit: RateLimit,
    allowed_data_regions: [&'static str; 1],
    budgets: Vec<KeyBudget>,
    effective_budget: Option<KeyBudget>,
    free_model_daily_requests: FreeModelDailyRequests,
    organization_id: Option<&'static str>,
    workspace_id: Option<&'a str>,
}

/// `:free` model requests today, account-wide: 50 a day until credits were ever bought, then
/// 1000.
#[derive(Serialize)]
struct FreeModelDailyRequests {
    limit: u64,
    remaining: u64,
    used: u64,
}

impl FreeModelDailyRequests {
    fn of(st: &SimState, today: NaiveDate) -> Self {
        let limit = if st.credits.purchased { 1000 } else { 50 };
        let used: u64 = st
            .activity
            .values()
            .filter(|a| a.date == today && a.model.ends_with(":free"))
            .map(|a| a.requests)
            .sum();
        FreeModelDailyRequests {
            limit,
            remaining: limit.saturating_sub(used),
            used,
        }
    }
}

const RATE_LIMIT: RateLimit = RateLimit {
    requests: -1,
    interval: "10s",
    note: "This field is deprecated and safe to ignore.",
};

/// `GET /key` and `GET /auth/key`: the calling key, management or inference.
pub(crate) async fn current_key(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = shared.authenticate(&headers)?;
    let now = shared.clock.now();
    let today = now.date_naive();
    let st = shared.state.lock();
    let is_free_tier = !st.credits.purchased;
    let view = match &caller {
        Caller::Management => CurrentKey {
            label: mask(&shared.provisioning_key),
            limit: None,
            limit_remaining: None,
            limit_reset: None,
            include_byok_in_limit: false,
            usage: UsageFields::zero(),
            is_free_tier,
            is_management_key: true,
            is_provisioning_key: true,
            creator_user_id: None,
            expires_at: None,
            rate_limit: RATE_LIMIT,
            allowed_data_regions: ["global"],
            budgets: Vec::new(),
            effective_budget: None,
            free_model_daily_requests: FreeModelDailyRequests::of(&st, today),
            organization_id: Some(ORGANIZATION_ID),
            workspace_id: None,
        },
        Caller::Inference(hash) => {
            let k = st
                .keys
                .get(hash)
                .ok_or_else(|| ApiError::unauthorized("User not found."))?;
            let (budgets, effective) = key_budgets(&st, k, now);
            let effective_budget = effective.and_then(|i| budgets.get(i).cloned());
            CurrentKey {
                label: mask(&k.secret),
                limit: k.limit,
                limit_remaining: k.limit_remaining(today),
                limit_reset: k.limit_reset,
                include_byok_in_limit: k.include_byok_in_limit,
                usage: UsageFields::of(k, today),
                is_free_tier,
                is_management_key: false,
                is_provisioning_key: false,
                creator_user_id: k.creator_user_id.as_deref(),
                expires_at: k.expires_at.map(fmt_ts),
                rate_limit: RATE_LIMIT,
                allowed_data_regions: ["global"],
                budgets,
                effective_budget,
                free_model_daily_requests: FreeModelDailyRequests::of(&st, today),
                organization_id: Some(ORGANIZATION_ID),
                workspace_id: Some(&k.workspace_id),
            }
        }
    };
    Ok(Json(Envelope::data(view)).into_response())
}

#[derive(Serialize)]
pub(crate) struct CreditsView {
    #[serde(with = "json_number")]
    pub total_credits: Money,
    #[serde(with = "json_number")]
    pub total_usage: Money,
}

pub(crate) fn credits_view(shared: &Shared) -> CreditsView {
    let st = shared.state.lock();
    CreditsView {
        total_credits: st.credits.total_credits,
        total_usage: st.credits.total_usage,
    }
}

/// `GET /credits` (management key).
pub(crate) async fn credits(
    State(shared): State<Arc<Shared>>,
    _: Management,
) -> Result<Response, ApiError> {
    Ok(Json(Envelope::data(credits_view(&shared))).into_response())
}

#[derive(Deserialize)]
pub(crate) struct ListKeysQuery {
    offset: Option<String>,
    include_disabled: Option<String>,
    workspace_id: Option<String>,
}

/// `GET /keys` (management key): pages of 100, newest first.
pub(crate) async fn list_keys(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiQuery(q): ApiQuery<ListKeysQuery>,
) -> Result<Response, ApiError> {
    let offset = parse_usize_param("offset", q.offset.as_deref(), 0)?;
    let include_disabled = match q.include_disabled.as_deref() {
        None | Some("") | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid request parameters: include_disabled must be \"true\" or \"false\", got {other:?}"
            )));
        }
    };
    let today = shared.clock.now().date_naive();
    let st = shared.state.lock();
    let mut keys: Vec<&KeyRecord> = st
        .keys
        .values()
        .filter(|k| include_disabled || !k.disabled)
        .filter(|k| {
            q.workspace_id
                .as_deref()
                .is_none_or(|w| w.is_empty() || k.workspace_id == w)
        })
        .collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.seq));
    let data: Vec<KeyView<'_>> = keys
        .into_iter()
        .skip(offset)
        .take(PAGE_SIZE)
        .map(|k| KeyView::of(k, today))
        .collect();
    Ok(Json(Envelope::data(data)).into_response())
}

/// Body of `POST /keys` and `PATCH /keys/{hash}`; raw fields so errors can name the field.
#[derive(Deserialize)]
pub(crate) struct KeyBody {
    #[serde(default)]
    name: RawField,
    #[serde(default)]
    limit: RawField,
    #[serde(default)]
    limit_reset: RawField,
    #[serde(default)]
    include_byok_in_limit: RawField,
    #[serde(default)]
    expires_at: RawField,
    #[serde(default)]
    creator_user_id: RawField,
    #[serde(default)]
    workspace_id: RawField,
    #[serde(default)]
    external: RawField,
    #[serde(default)]
    disabled: RawField,
}

/// `external` on `POST /keys`: a partner's end user the key is for (`api_key`, a partner-chosen
/// secret, is accepted and ignored: the simulator always mints its own).
#[derive(Deserialize)]
struct External {
    user: String,
}

#[derive(Serialize)]
struct Created<'a> {
    data: KeyView<'a>,
    key: &'a str,
}

/// `POST /keys` (management key) → 201 `{data, key}`; the secret is never shown again.
pub(crate) async fn create_key(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiJson(body): ApiJson<KeyBody>,
) -> Result<Response, ApiError> {
    let now = shared.clock.now();
    let name = string_field(&body.name, "name")?
        .into_option()
        .ok_or_else(|| ApiError::bad_request("Invalid request parameters: name is required"))?;
    if name.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "Invalid request parameters: name must be at most 200 characters",
        ));
    }
    let limit = money_field(&body.limit, "limit")?.into_option();
    let limit_reset = window_field(&body.limit_reset, "limit_reset")?.into_option();
    let include_byok_in_limit = typed_field::<bool>(
        &body.include_byok_in_limit,
        "include_byok_in_limit",
        "a boolean",
    )?
    .into_option()
    .unwrap_or(false);
    let expires_at = utc_time_field(&body.expires_at, "expires_at")?.into_option();
    if expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::bad_request(
            "Invalid request parameters: expires_at must be in the future",
        ));
    }
    let creator_user_id = string_field(&body.creator_user_id, "creator_user_id")?.into_option();
    let workspace_id = string_field(&body.workspace_id, "workspace_id")?.into_option();
    let external_user =
        typed_field::<External>(&body.external, "external", "an object with a string user")?
            .into_option()
            .map(|e| e.user);
    let today = now.date_naive();
    let mut st = shared.state.lock();
    let workspace_id = crate::workspaces::resolve_id(&st, workspace_id)?;
    let (secret, hash) = insert_key(
        &mut st,
        NewKey {
            name,
            limit,
            limit_reset,
            include_byok_in_limit,
            expires_at,
            creator_user_id,
            workspace_id,
            external_user,
        },
        now,
    );
    let rec = st
        .keys
        .get(hash.as_str())
        .ok_or_else(|| ApiError::internal("Internal Server Error"))?;
    let body = serde_json::to_vec(&Created {
        data: KeyView::of(rec, today),
        key: &secret,
    })
    .map_err(|_| ApiError::internal("Internal Server Error"))?;
    drop(st);
    shared.mark_dirty();
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

fn key_not_found() -> ApiError {
    ApiError::not_found("Resource not found")
}

/// `GET /keys/{hash}` (management key).
pub(crate) async fn get_key(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(hash): ApiPath<String>,
) -> Result<Response, ApiError> {
    let today = shared.clock.now().date_naive();
    let st = shared.state.lock();
    let k = st.keys.get(hash.as_str()).ok_or_else(key_not_found)?;
    Ok(Json(Envelope::data(KeyView::of(k, today))).into_response())
}

/// `PATCH /keys/{hash}` (management key): only the fields given change; null clears.
pub(crate) async fn update_key(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(hash): ApiPath<String>,
    ApiJson(body): ApiJson<KeyBody>,
) -> Result<Response, ApiError> {
    let now = shared.clock.now();
    let name = match string_field(&body.name, "name")? {
        Field::Null => {
            return Err(ApiError::bad_request(
                "Invalid request parameters: name cannot be null",
            ));
        }
        f => f.into_option(),
    };
    let disabled = typed_field::<bool>(&body.disabled, "disabled", "a boolean")?.into_option();
    let limit = money_field(&body.limit, "limit")?.into_patch();
    let limit_reset = window_field(&body.limit_reset, "limit_reset")?.into_patch();
    let include_byok = typed_field::<bool>(
        &body.include_byok_in_limit,
        "include_byok_in_limit",
        "a boolean",
    )?
    .into_option();
    let expires_at = utc_time_field(&body.expires_at, "expires_at")?.into_patch();
    if let Some(Some(e)) = expires_at
        && e <= now
    {
        return Err(ApiError::bad_request(
            "Invalid request parameters: expires_at must be in the future",
        ));
    }
    let workspace_id = string_field(&body.workspace_id, "workspace_id")?.into_option();
    let mut st = shared.state.lock();
    let workspace_id = match workspace_id {
        Some(w) => Some(crate::workspaces::resolve_id(&st, Some(w))?),
        None => None,
    };
    let k = st.keys.get_mut(hash.as_str()).ok_or_else(key_not_found)?;
    if let Some(w) = workspace_id {
        k.workspace_id = w;
    }
    if let Some(n) = name {
        k.name = n;
    }
    if let Some(d) = disabled {
        k.disabled = d;
    }
    if let Some(l) = limit {
        k.limit = l;
    }
    if let Some(r) = limit_reset {
        k.limit_reset = r;
    }
    if let Some(b) = include_byok {
        k.include_byok_in_limit = b;
    }
    if let Some(e) = expires_at {
        k.expires_at = e;
    }
    k.updated_at = Some(now);
    let k = &*k;
    let resp = Json(Envelope::data(KeyView::of(k, now.date_naive()))).into_response();
    drop(st);
    shared.mark_dirty();
    Ok(resp)
}

/// `DELETE /keys/{hash}` (management key) → `{"deleted":true}`.
pub(crate) async fn delete_key(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiPath(hash): ApiPath<String>,
) -> Result<Response, ApiError> {
    let mut st = shared.state.lock();
    let k = st.keys.remove(hash.as_str()).ok_or_else(key_not_found)?;
    st.by_secret.remove(&k.secret);
    st.key_assign.remove(hash.as_str());
    st.free_rl.remove(hash.as_str());
    drop(st);
    shared.mark_dirty();
    Ok(Json(serde_json::json!({"deleted": true})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_keeps_three_and_four() {
        let s = "sk-or-v1-0e6aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1c96";
        assert_eq!(mask(s), "sk-or-v1-0e6...1c96");
    }
}
