//! `GET /activity` (daily aggregates) and `GET /generation` (one generation's record).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{Days, NaiveDate};
use orteam_core::money::json_number;
use orteam_core::{Clock, Money};
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, Management};
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::keys::{DEFAULT_WORKSPACE_ID, fmt_ts};
use crate::shared::Shared;
use crate::state::{ActivityAgg, add_money};

/// How many completed UTC days `/activity` covers.
const ACTIVITY_DAYS: u64 = 30;

#[derive(Deserialize)]
pub(crate) struct ActivityQuery {
    date: Option<String>,
    api_key_hash: Option<String>,
    user_id: Option<String>,
    workspace_id: Option<String>,
}

#[derive(Serialize)]
struct ActivityRow {
    date: String,
    model: Arc<str>,
    model_permaslug: Arc<str>,
    endpoint_id: Arc<str>,
    provider_name: Arc<str>,
    #[serde(with = "json_number")]
    usage: Money,
    #[serde(with = "json_number")]
    byok_usage_inference: Money,
    requests: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    reasoning_tokens: u64,
    cached_tokens: u64,
    workspace_id: String,
}

/// `GET /activity` (management key): the last 30 completed UTC days (never today), one row per
/// (date, model, endpoint); filters narrow which buckets are summed, rows never name a key.
pub(crate) async fn activity(
    State(shared): State<Arc<Shared>>,
    _: Management,
    ApiQuery(q): ApiQuery<ActivityQuery>,
) -> Result<Response, ApiError> {
    let date = match q.date.as_deref().filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid request parameters: date must be YYYY-MM-DD, got {d:?}"
            ))
        })?),
    };
    let today = shared.clock.now().date_naive();
    let first = today - Days::new(ACTIVITY_DAYS);
    let key_filter = q.api_key_hash.as_deref().filter(|s| !s.is_empty());
    let user_filter = q.user_id.as_deref().filter(|s| !s.is_empty());
    let workspace_filter = q.workspace_id.as_deref().filter(|s| !s.is_empty());
    let st = shared.state.lock();
    let mut grouped: HashMap<(NaiveDate, &str, &str), ActivityRow> = HashMap::new();
    let wanted = |a: &ActivityAgg| {
        a.date >= first
            && a.date < today
            && date.is_none_or(|d| a.date == d)
            && key_filter.is_none_or(|k| &*a.key_hash == k)
            && user_filter.is_none_or(|u| a.user_id.as_deref() == Some(u))
            && workspace_filter
                .is_none_or(|w| a.workspace_id.as_deref().unwrap_or(DEFAULT_WORKSPACE_ID) == w)
    };
    for a in st.activity.values().filter(|a| wanted(a)) {
        let row = grouped
            .entry((a.date, &a.model, &a.endpoint_id))
            .or_insert_with(|| ActivityRow {
                date: a.date.format("%Y-%m-%d").to_string(),
                model: a.model.clone(),
                model_permaslug: a.model_permaslug.clone(),
                endpoint_id: a.endpoint_id.clone(),
                provider_name: a.provider_name.clone(),
                usage: Money::ZERO,
                byok_usage_inference: Money::ZERO,
                requests: 0,
                prompt_tokens: 0,
                completion_tokens: 0,
                reasoning_tokens: 0,
                cached_tokens: 0,
                workspace_id: a
                    .workspace_id
                    .clone()
                    .unwrap_or_else(|| DEFAULT_WORKSPACE_ID.to_owned()),
            });
        add_money(&mut row.usage, a.usage);
        add_money(&mut row.byok_usage_inference, a.byok_usage_inference);
        row.requests += a.requests;
        row.prompt_tokens += a.prompt_tokens;
        row.completion_tokens += a.completion_tokens;
        row.reasoning_tokens += a.reasoning_tokens;
        row.cached_tokens += a.cached_tokens;
    }
    let mut rows: Vec<ActivityRow> = grouped.into_values().collect();
    drop(st);
    rows.sort_by(|a, b| {
        b.date
            .cmp(&a.date)
            .then(b.usage.cmp(&a.usage))
            .then(a.model.cmp(&b.model))
            .then(a.endpoint_id.cmp(&b.endpoint_id))
    });
    Ok(Json(Envelope::data(rows)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct GenerationQuery {
    id: Option<String>,
}

#[derive(Serialize)]
struct GenerationView<'a> {
    id: &'a str,
    upstream_id: Option<&'a str>,
    #[serde(with = "json_number")]
    total_cost: Money,
    #[serde(with = "json_number::option")]
    cache_discount: Option<Money>,
    upstream_inference_cost: Option<()>,
    created_at: String,
    model: &'a str,
    app_id: Option<()>,
    streamed: bool,
    cancelled: bool,
    provider_name: &'a str,
    latency: u64,
    moderation_latency: Option<()>,
    generation_time: u64,
    finish_reason: Option<&'a str>,
    native_finish_reason: Option<&'a str>,
    tokens_prompt: u64,
    tokens_completion: u64,
    native_tokens_prompt: u64,
    native_tokens_completion: u64,
    native_tokens_completion_images: u64,
    native_tokens_reasoning: u64,
    native_tokens_cached: u64,
    num_media_prompt: Option<()>,
    num_input_audio_prompt: Option<()>,
    num_media_completion: Option<()>,
    num_search_results: Option<()>,
    num_fetches: Option<()>,
    origin: &'a str,
    #[serde(with = "json_number")]
    usage: Money,
    is_byok: bool,
    http_referer: Option<&'a str>,
    user_agent: Option<&'a str>,
    external_user: Option<&'a str>,
    api_type: &'static str,
    router: Option<()>,
    request_id: String,
    session_id: Option<&'a str>,
    provider_responses: Option<()>,
    web_search_engine: Option<()>,
    response_cache_source_id: Option<()>,
    data_region: &'static str,
    preset_id: Option<()>,
    service_tier: Option<()>,
    workspace_id: &'static str,
}

/// `GET /generation?id=` (the key that made the request, or the management key).
pub(crate) async fn generation(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<GenerationQuery>,
) -> Result<Response, ApiError> {
    let caller = shared.authenticate(&headers)?;
    let id =
        q.id.filter(|i| !i.is_empty())
            .ok_or_else(|| ApiError::bad_request("Invalid request parameters: id is required"))?;
    let st = shared.state.lock();
    let not_found = || ApiError::not_found(format!("Generation {id} not found"));
    let g = st.generations.get(id.as_str()).ok_or_else(not_found)?;
    if let Caller::Inference(hash) = &caller
        && *hash != g.key_hash
    {
        return Err(not_found());
    }
    let view = GenerationView {
        id: &g.id,
        upstream_id: None,
        total_cost: g.total_cost,
        cache_discount: g.cache_discount,
        upstream_inference_cost: None,
        created_at: fmt_ts(g.created_at),
        model: &g.model,
        app_id: None,
        streamed: g.streamed,
        cancelled: g.cancelled,
        provider_name: &g.provider_name,
        latency: g.latency_ms,
        moderation_latency: None,
        generation_time: g.generation_time_ms,
        finish_reason: g.finish_reason.as_deref(),
        native_finish_reason: g.finish_reason.as_deref(),
        tokens_prompt: g.tokens_prompt,
        tokens_completion: g.tokens_completion,
        native_tokens_prompt: g.tokens_prompt,
        native_tokens_completion: g.tokens_completion,
        native_tokens_completion_images: 0,
        native_tokens_reasoning: g.reasoning_tokens,
        native_tokens_cached: g.cached_tokens,
        num_media_prompt: None,
        num_input_audio_prompt: None,
        num_media_completion: None,
        num_search_results: None,
        num_fetches: None,
        origin: g.http_referer.as_deref().unwrap_or(""),
        usage: g.total_cost,
        is_byok: false,
        http_referer: g.http_referer.as_deref(),
        user_agent: g.user_agent.as_deref(),
        external_user: g.external_user.as_deref(),
        api_type: g.api_type.as_str(),
        router: None,
        request_id: format!("req-{}", g.id.trim_start_matches("gen-")),
        session_id: g.session_id.as_deref(),
        provider_responses: None,
        web_search_engine: None,
        response_cache_source_id: None,
        data_region: "us",
        preset_id: None,
        service_tier: None,
        workspace_id: DEFAULT_WORKSPACE_ID,
    };
    Ok(Json(Envelope::data(view)).into_response())
}
