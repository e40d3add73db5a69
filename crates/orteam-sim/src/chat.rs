//! `POST /chat/completions`: deterministic completions, plain and streamed, billed exactly.
//!
//! The hot path takes the state lock once for a non-streamed request (authenticate, pre-check,
//! bill, record), parses the body with borrowed strings, and serializes the response straight
//! from structs, so the simulator stays far from being a benchmark's bottleneck.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::Stream;
use orteam_core::money::json_number;
use orteam_core::{Clock, Money, MoneyError};
use rand::distr::{Alphanumeric, SampleString};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::time::Sleep;

use crate::auth::bearer;
use crate::error::ApiError;
use crate::extract::{RawBody, parse_json};
use crate::faults::Fault;
use crate::guardrails;
use crate::models::{Model, Prices};
use crate::server::Shared;
use crate::state::{Charge, Generation, State as SimState};

const DEFAULT_MODEL: &str = "openai/gpt-4o-mini";
const FREE_REQUESTS_PER_MINUTE: u32 = 20;
const CHAT_PATH: &str = "/api/v1/chat/completions";
/// Tokens a non-text content part (image, file, audio) counts for.
const MEDIA_PART_TOKENS: u64 = 85;

/// The reply vocabulary: one word per completion token.
const VOCAB: [&str; 64] = [
    "the",
    "quick",
    "model",
    "answers",
    "with",
    "simulated",
    "words",
    "and",
    "every",
    "token",
    "is",
    "billed",
    "exactly",
    "by",
    "price",
    "so",
    "budgets",
    "stay",
    "honest",
    "while",
    "tests",
    "run",
    "fast",
    "on",
    "a",
    "local",
    "router",
    "that",
    "never",
    "sleeps",
    "or",
    "forgets",
    "keys",
    "limits",
    "credits",
    "reset",
    "at",
    "midnight",
    "UTC",
    "streams",
    "end",
    "in",
    "done",
    "faults",
    "appear",
    "when",
    "asked",
    "cost",
    "usage",
    "activity",
    "grows",
    "per",
    "day",
    "guardrails",
    "block",
    "what",
    "they",
    "must",
    "members",
    "share",
    "one",
    "team",
    "account",
    "safely",
];

/// A string borrowed from the body when it has no escapes, owned otherwise.
#[derive(Debug)]
struct BStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = BStr<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<BStr<'a>, E> {
                Ok(BStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BStr<'a>, E> {
                Ok(BStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<BStr<'a>, E> {
                Ok(BStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow, default)]
    model: Option<BStr<'a>>,
    #[serde(borrow, default)]
    models: Option<Vec<BStr<'a>>>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(borrow, default)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    user: Option<BStr<'a>>,
    #[serde(borrow, default)]
    session_id: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct MessageIn<'a> {
    #[serde(borrow, default)]
    role: Option<BStr<'a>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PartIn<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<BStr<'a>>,
    #[serde(borrow, default)]
    text: Option<BStr<'a>>,
}

/// FNV-1a, stable across runs and Rust versions (unlike `DefaultHasher`).
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Directives found in the last user message.
#[derive(Debug, Default, Clone, Copy)]
struct Directives {
    tokens: Option<u64>,
    reasoning: Option<u64>,
    cached: Option<u64>,
    delay_ms: Option<u64>,
}

fn parse_directives(text: &str) -> Directives {
    let mut d = Directives::default();
    let mut rest = text;
    while let Some(start) = rest.find("[[sim:") {
        rest = &rest[start + 6..];
        let Some(end) = rest.find("]]") else { break };
        if let Some((name, value)) = rest[..end].split_once('=')
            && let Ok(n) = value.trim().parse::<u64>()
        {
            match name.trim() {
                "tokens" => d.tokens = Some(n),
                "reasoning" => d.reasoning = Some(n),
                "cached" => d.cached = Some(n),
                "delay_ms" => d.delay_ms = Some(n),
                _ => {}
            }
        }
        rest = &rest[end + 2..];
    }
    d
}

/// What the messages amount to: token count, a hash seed, directives.
struct PromptInfo {
    prompt_tokens: u64,
    seed: u64,
    directives: Directives,
}

fn bad(msg: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::bad_request(msg).with_error_type("invalid_request")
}

fn analyze_messages(raw: &RawValue) -> Result<PromptInfo, ApiError> {
    let messages: Vec<MessageIn<'_>> = serde_json::from_str(raw.get()).map_err(|_| {
        bad("Invalid request parameters: messages must be an array of message objects")
    })?;
    if messages.is_empty() {
        return Err(bad(
            "Invalid request parameters: messages must not be empty",
        ));
    }
    let mut prompt_tokens = 0u64;
    let mut seed = FNV_OFFSET;
    let mut directives = Directives::default();
    for (i, m) in messages.iter().enumerate() {
        let role = m.role.as_ref().map(|r| r.0.as_ref()).ok_or_else(|| {
            bad(format!(
                "Invalid request parameters: messages[{i}].role is required"
            ))
        })?;
        if !matches!(role, "system" | "user" | "assistant" | "tool" | "developer") {
            return Err(bad(format!(
                "Invalid request parameters: messages[{i}].role must be one of system, user, assistant, tool, developer; got {role:?}"
            )));
        }
        seed = fnv1a(seed, role.as_bytes());
        let mut bytes = 0u64;
        let mut media = 0u64;
        let mut text_for_directives: Option<Cow<'_, str>> = None;
        if let Some(content) = m.content {
            let c = content.get().trim_start();
            let shape_err = || {
                bad(format!(
                    "Invalid request parameters: messages[{i}].content must be a string or an array of content parts"
                ))
            };
            if c.starts_with('"') {
                let s: BStr<'_> = serde_json::from_str(content.get()).map_err(|_| shape_err())?;
                bytes = s.0.len() as u64;
                seed = fnv1a(seed, s.0.as_bytes());
                text_for_directives = Some(s.0);
            } else if c.starts_with('[') {
                let parts: Vec<PartIn<'_>> =
                    serde_json::from_str(content.get()).map_err(|_| shape_err())?;
                let mut joined = String::new();
                for p in &parts {
                    match (&p.kind, &p.text) {
                        (Some(k), Some(t)) if k.0 == "text" => {
                            bytes += t.0.len() as u64;
                            seed = fnv1a(seed, t.0.as_bytes());
                            joined.push_str(&t.0);
                        }
                        (None, Some(t)) => {
                            bytes += t.0.len() as u64;
                            seed = fnv1a(seed, t.0.as_bytes());
                            joined.push_str(&t.0);
                        }
                        _ => media += 1,
                    }
                }
                text_for_directives = Some(Cow::Owned(joined));
            } else if c != "null" {
                return Err(shape_err());
            }
        }
        prompt_tokens += 4 + bytes.div_ceil(4) + media * MEDIA_PART_TOKENS;
        if role == "user" {
            directives = text_for_directives
                .as_deref()
                .map(parse_directives)
                .unwrap_or_default();
        }
    }
    Ok(PromptInfo {
        prompt_tokens,
        seed,
        directives,
    })
}

fn parse_max_tokens(raw: Option<&RawValue>, name: &str) -> Result<Option<u64>, ApiError> {
    match raw {
        None => Ok(None),
        Some(r) => match r.get().trim().parse::<u64>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(bad(format!(
                "Invalid request parameters: {name} must be a positive integer, got {}",
                r.get()
            ))),
        },
    }
}

/// The validated request, before a model is chosen.
struct Plan {
    candidates: Vec<usize>,
    prompt: PromptInfo,
    max_tokens: Option<u64>,
    stream: bool,
    user: Option<String>,
    session_id: Option<String>,
}

fn plan(shared: &Shared, body: &[u8]) -> Result<Plan, ApiError> {
    let req: ChatRequest<'_> =
        parse_json(body).map_err(|e| e.with_error_type("invalid_request"))?;
    let messages = req.messages.ok_or_else(|| {
        bad("Invalid request parameters: messages is required (a non-empty array)")
    })?;
    let prompt = analyze_messages(messages)?;
    let max_tokens = match parse_max_tokens(req.max_completion_tokens, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => parse_max_tokens(req.max_tokens, "max_tokens")?,
    };
    let mut ids: Vec<&str> = Vec::with_capacity(1);
    if let Some(m) = &req.model {
        ids.push(&m.0);
    }
    if let Some(list) = &req.models {
        ids.extend(list.iter().map(|m| m.0.as_ref()));
    }
    if ids.is_empty() {
        ids.push(DEFAULT_MODEL);
    }
    let mut candidates = Vec::with_capacity(ids.len());
    for id in ids {
        let idx = shared
            .catalog
            .get(id)
            .ok_or_else(|| bad(format!("{id} is not a valid model ID")))?;
        if !candidates.contains(&idx) {
            candidates.push(idx);
        }
    }
    Ok(Plan {
        candidates,
        prompt,
        max_tokens,
        stream: req.stream.unwrap_or(false),
        user: req.user.map(|u| u.0.into_owned()),
        session_id: req.session_id.map(|u| u.0.into_owned()),
    })
}

/// Token figures of one completion on one model.
#[derive(Debug, Clone, Copy)]
struct Tokens {
    prompt: u64,
    cached: u64,
    completion: u64,
    reasoning: u64,
    finish_reason: &'static str,
}

fn tokens_for(p: &Plan, model: &Model) -> Tokens {
    let d = p.prompt.directives;
    let cap = p
        .max_tokens
        .unwrap_or(model.max_completion_tokens)
        .min(model.max_completion_tokens);
    let wanted = d.tokens.unwrap_or(8 + p.prompt.seed % 57);
    let (completion, finish_reason) = if wanted > cap {
        (cap, "length")
    } else {
        (wanted, "stop")
    };
    Tokens {
        prompt: p.prompt.prompt_tokens,
        cached: d.cached.unwrap_or(0).min(p.prompt.prompt_tokens),
        completion,
        reasoning: d.reasoning.unwrap_or(0).min(completion),
        finish_reason,
    }
}

/// The price of a completion, split as `cost_details` reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CostParts {
    pub total: Money,
    pub prompt: Money,
    pub completion: Money,
}

/// Exact cost: see the crate docs for the formula.
pub(crate) fn compute_cost(
    p: &Prices,
    prompt: u64,
    cached: u64,
    completion: u64,
    reasoning: u64,
) -> Result<CostParts, MoneyError> {
    let cached = cached.min(prompt);
    let reasoning = reasoning.min(completion);
    let prompt_cost = p
        .prompt
        .times(prompt - cached)?
        .plus(p.input_cache_read.unwrap_or(p.prompt).times(cached)?)?;
    let completion_cost = p.completion.times(completion - reasoning)?.plus(
        p.internal_reasoning
            .unwrap_or(p.completion)
            .times(reasoning)?,
    )?;
    Ok(CostParts {
        total: prompt_cost.plus(completion_cost)?.plus(p.request)?,
        prompt: prompt_cost,
        completion: completion_cost,
    })
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u64,
    cache_write_tokens: u64,
    audio_tokens: u64,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
    image_tokens: u64,
}

#[derive(Serialize)]
struct CostDetails {
    upstream_inference_cost: Option<()>,
    #[serde(with = "json_number")]
    upstream_inference_prompt_cost: Money,
    #[serde(with = "json_number")]
    upstream_inference_completions_cost: Money,
}

#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(with = "json_number")]
    cost: Money,
    is_byok: bool,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
    cost_details: CostDetails,
}

impl UsageOut {
    fn of(t: &Tokens, completion: u64, reasoning: u64, cost: &CostParts) -> Self {
        UsageOut {
            prompt_tokens: t.prompt,
            completion_tokens: completion,
            total_tokens: t.prompt + completion,
            cost: cost.total,
            is_byok: false,
            prompt_tokens_details: PromptDetails {
                cached_tokens: t.cached,
                cache_write_tokens: 0,
                audio_tokens: 0,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: reasoning,
                image_tokens: 0,
            },
            cost_details: CostDetails {
                upstream_inference_cost: None,
                upstream_inference_prompt_cost: cost.prompt,
                upstream_inference_completions_cost: cost.completion,
            },
        }
    }
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: &'a str,
    refusal: Option<()>,
    reasoning: Option<&'a str>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    logprobs: Option<()>,
    finish_reason: &'a str,
    native_finish_reason: &'a str,
    message: MessageOut<'a>,
}

#[derive(Serialize)]
struct CompletionOut<'a> {
    id: &'a str,
    provider: &'a str,
    model: &'a str,
    object: &'static str,
    created: i64,
    system_fingerprint: Option<()>,
    choices: [ChoiceOut<'a>; 1],
    usage: &'a UsageOut,
}

fn content_word(seed: u64, i: u64) -> &'static str {
    VOCAB[((seed >> 8).wrapping_add(i.wrapping_mul(7)) % VOCAB.len() as u64) as usize]
}

fn reasoning_word(seed: u64, i: u64) -> &'static str {
    VOCAB[((seed >> 20).wrapping_add(i.wrapping_mul(5)) % VOCAB.len() as u64) as usize]
}

fn words(n: u64, word: impl Fn(u64) -> &'static str) -> String {
    let mut s = String::with_capacity(n as usize * 8);
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(word(i));
    }
    s
}

fn new_generation_id(now: DateTime<Utc>) -> String {
    format!(
        "gen-{}-{}",
        now.timestamp(),
        Alphanumeric.sample_string(&mut rand::rng(), 20)
    )
}

/// Request attributes copied into the generation record.
#[derive(Clone, Default)]
struct Origin {
    http_referer: Option<String>,
    app_title: Option<String>,
    user_agent: Option<String>,
}

fn origin(headers: &HeaderMap) -> Origin {
    let get = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Origin {
        http_referer: get("http-referer"),
        app_title: get("x-openrouter-title").or_else(|| get("x-title")),
        user_agent: get("user-agent"),
    }
}

fn key_limit_error(shared: &Shared, reset: Option<orteam_core::Window>) -> ApiError {
    let period = reset.map_or("total", |w| w.as_str());
    ApiError::new(
        shared.key_limit_status,
        format!(
            "Key limit exceeded ({period} limit). Manage it using https://openrouter.ai/settings/keys"
        ),
    )
    .with_error_type("payment_required")
}

/// The chosen model and endpoint for a request that passed every pre-check.
struct Selected {
    key_hash: Arc<str>,
    model: usize,
    endpoint: usize,
}

/// Pre-checks in OpenRouter's order, then model selection (fallbacks on per-model failures).
fn select(
    shared: &Shared,
    st: &mut SimState,
    token: &str,
    now: DateTime<Utc>,
    plan: &Result<Plan, ApiError>,
) -> Result<Selected, ApiError> {
    let today = now.date_naive();
    let key = st.inference_key(token, now)?;
    let plan = plan.as_ref().map_err(Clone::clone)?;
    if key.limit_remaining(today).is_some_and(|r| r.is_zero()) {
        return Err(key_limit_error(shared, key.limit_reset));
    }
    if st.balance() <= Money::ZERO {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "Insufficient credits. Add more using https://openrouter.ai/credits",
        )
        .with_error_type("payment_required"));
    }
    guardrails::check_budgets(st, key, today)?;
    let key_hash = key.hash.clone();
    let mut first_err = None;
    for &idx in &plan.candidates {
        let model = shared.catalog.model(idx);
        if plan.prompt.prompt_tokens > model.context_length {
            first_err.get_or_insert_with(|| {
                bad(format!(
                    "This endpoint's maximum context length is {} tokens. However, you requested about {} tokens. Please reduce the length of the messages.",
                    model.context_length, plan.prompt.prompt_tokens
                ))
                .with_error_type("context_length_exceeded")
            });
            continue;
        }
        let key = st
            .keys
            .get(&key_hash)
            .ok_or_else(|| ApiError::unauthorized("User not found."))?;
        let endpoint = match guardrails::route(st, key, model) {
            Ok(e) => e,
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        };
        if model.is_free() && shared.free_model_rate_limits {
            let minute = now.timestamp().div_euclid(60);
            let slot = st.free_rl.entry(key_hash.clone()).or_insert((minute, 0));
            if slot.0 != minute {
                *slot = (minute, 0);
            }
            if slot.1 >= FREE_REQUESTS_PER_MINUTE {
                let reset_ms = (minute + 1) * 60_000;
                first_err.get_or_insert_with(|| {
                    ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Rate limit exceeded: free-models-per-min. ",
                    )
                    .with_error_type("rate_limit_exceeded")
                    .with_header(
                        HeaderName::from_static("x-ratelimit-limit"),
                        HeaderValue::from(FREE_REQUESTS_PER_MINUTE),
                    )
                    .with_header(
                        HeaderName::from_static("x-ratelimit-remaining"),
                        HeaderValue::from_static("0"),
                    )
                    .with_header(
                        HeaderName::from_static("x-ratelimit-reset"),
                        HeaderValue::from(reset_ms),
                    )
                });
                continue;
            }
            slot.1 += 1;
        }
        return Ok(Selected {
            key_hash,
            model: idx,
            endpoint,
        });
    }
    Err(first_err.unwrap_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "No allowed providers are available for the selected model.",
        )
    }))
}

/// `POST /chat/completions` (inference key).
pub(crate) async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let token = bearer(&headers)?;
    if token == shared.provisioning_key {
        return Err(ApiError::forbidden(
            "Management keys cannot be used for inference. Use an API key created with the management key.",
        )
        .with_error_type("permission_denied"));
    }
    // Body errors are reported after authentication, as the real service does, but the body is
    // parsed before taking the lock to keep the critical section short.
    let plan = plan(&shared, &body);
    let now = shared.clock.now();
    let mut st = shared.state.lock();
    let sel = select(&shared, &mut st, token, now, &plan)?;
    let plan = plan?;
    let model = shared.catalog.model(sel.model);
    let endpoint = &model.endpoints[sel.endpoint];
    let tokens = tokens_for(&plan, model);
    let id = new_generation_id(now);
    if plan.stream {
        drop(st);
        return Ok(stream_response(StreamSetup {
            shared: shared.clone(),
            id,
            key_hash: sel.key_hash,
            model: sel.model,
            endpoint: sel.endpoint,
            tokens,
            seed: plan.prompt.seed,
            delay: Duration::from_millis(plan.prompt.directives.delay_ms.unwrap_or(0)),
            created: now,
            started,
            user: plan.user,
            session_id: plan.session_id,
            origin: origin(&headers),
            fault: shared.faults.take_stream("POST", CHAT_PATH),
        }));
    }
    let cost = compute_cost(
        &model.prices,
        tokens.prompt,
        tokens.cached,
        tokens.completion,
        tokens.reasoning,
    )
    .map_err(|_| ApiError::internal("Internal Server Error"))?;
    let id: Arc<str> = id.into();
    st.bill(&Charge {
        at: now,
        key_hash: &sel.key_hash,
        model: &model.id,
        permaslug: &model.canonical_slug,
        endpoint_id: &endpoint.endpoint_id,
        provider_name: &endpoint.provider_name,
        cost: cost.total,
        prompt_tokens: tokens.prompt,
        completion_tokens: tokens.completion,
        reasoning_tokens: tokens.reasoning,
    });
    let elapsed = started.elapsed().as_millis() as u64;
    let o = origin(&headers);
    st.insert_generation(Generation {
        id: id.clone(),
        key_hash: sel.key_hash,
        created_at: now,
        model: model.id.clone(),
        provider_name: endpoint.provider_name.clone(),
        http_referer: o.http_referer,
        app_title: o.app_title,
        user_agent: o.user_agent,
        external_user: plan.user,
        session_id: plan.session_id,
        streamed: false,
        cancelled: false,
        latency_ms: elapsed,
        generation_time_ms: elapsed,
        finish_reason: Some(tokens.finish_reason.to_owned()),
        tokens_prompt: tokens.prompt,
        tokens_completion: tokens.completion,
        reasoning_tokens: tokens.reasoning,
        cached_tokens: tokens.cached,
        total_cost: cost.total,
        cache_discount: cache_discount(&model.prices, tokens.cached),
    });
    drop(st);
    shared.mark_dirty();
    shared.notify_generation();

    let seed = plan.prompt.seed;
    let content = words(tokens.completion - tokens.reasoning, |i| {
        content_word(seed, i)
    });
    let reasoning =
        (tokens.reasoning > 0).then(|| words(tokens.reasoning, |i| reasoning_word(seed, i)));
    let usage = UsageOut::of(&tokens, tokens.completion, tokens.reasoning, &cost);
    let out = CompletionOut {
        id: &id,
        provider: &endpoint.provider_name,
        model: &model.id,
        object: "chat.completion",
        created: now.timestamp(),
        system_fingerprint: None,
        choices: [ChoiceOut {
            index: 0,
            logprobs: None,
            finish_reason: tokens.finish_reason,
            native_finish_reason: tokens.finish_reason,
            message: MessageOut {
                role: "assistant",
                content: &content,
                refusal: None,
                reasoning: reasoning.as_deref(),
            },
        }],
        usage: &usage,
    };
    let body = serde_json::to_vec(&out).map_err(|_| ApiError::internal("Internal Server Error"))?;
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(HeaderName::from_static("x-generation-id"), v);
    }
    Ok(resp)
}

/// What cached tokens saved compared with the full prompt price (None when nothing was cached).
fn cache_discount(p: &Prices, cached: u64) -> Option<Money> {
    if cached == 0 {
        return None;
    }
    let full = p.prompt.times(cached).ok()?;
    let paid = p.input_cache_read.unwrap_or(p.prompt).times(cached).ok()?;
    full.checked_sub(paid)
}

struct StreamSetup {
    shared: Arc<Shared>,
    id: String,
    key_hash: Arc<str>,
    model: usize,
    endpoint: usize,
    tokens: Tokens,
    seed: u64,
    delay: Duration,
    created: DateTime<Utc>,
    started: Instant,
    user: Option<String>,
    session_id: Option<String>,
    origin: Origin,
    fault: Option<Fault>,
}

/// Where a stream is in its frame sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Comment,
    Reasoning(u64),
    Content(u64),
    Usage,
    Done,
    /// A stream_cut fault fired: end with an error on the next poll.
    Cut,
    Finished,
}

/// The SSE body. Records (and bills) its generation exactly once: when the usage chunk is sent,
/// when a fault cuts or errors it, or on drop if the client went away first.
struct SseStream {
    s: StreamSetup,
    /// `{"id":…,"provider":…,"model":…,"object":"chat.completion.chunk","created":N,` shared by
    /// every chunk.
    head: String,
    phase: Phase,
    content_chunks: u64,
    reasoning_sent: u64,
    content_sent: u64,
    first_token_ms: Option<u64>,
    sleep: Option<Pin<Box<Sleep>>>,
    recorded: bool,
}

fn stream_response(s: StreamSetup) -> Response {
    let model = s.shared.catalog.model(s.model);
    let endpoint = &model.endpoints[s.endpoint];
    let mut head = String::with_capacity(160);
    head.push_str("{\"id\":");
    push_json_str(&mut head, &s.id);
    head.push_str(",\"provider\":");
    push_json_str(&mut head, &endpoint.provider_name);
    head.push_str(",\"model\":");
    push_json_str(&mut head, &model.id);
    head.push_str(",\"object\":\"chat.completion.chunk\",\"created\":");
    head.push_str(&s.created.timestamp().to_string());
    head.push(',');
    let content_tokens = s.tokens.completion - s.tokens.reasoning;
    let id = s.id.clone();
    let stream = SseStream {
        content_chunks: content_tokens.max(1),
        s,
        head,
        phase: Phase::Comment,
        reasoning_sent: 0,
        content_sent: 0,
        first_token_ms: None,
        sleep: None,
        recorded: false,
    };
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(HeaderName::from_static("x-generation-id"), v);
    }
    resp
}

fn push_json_str(out: &mut String, s: &str) {
    // Serializing a &str cannot fail.
    if let Ok(q) = serde_json::to_string(s) {
        out.push_str(&q);
    }
}

impl SseStream {
    fn frame(&self, body: &str) -> Bytes {
        let mut f = String::with_capacity(self.head.len() + body.len() + 10);
        f.push_str("data: ");
        f.push_str(&self.head);
        f.push_str(body);
        f.push_str("}\n\n");
        Bytes::from(f)
    }

    fn delta_frame(&self, delta: &str, finish: Option<&str>) -> Bytes {
        let finish = match finish {
            Some(f) => format!("\"{f}\""),
            None => "null".to_owned(),
        };
        self.frame(&format!(
            "\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish},\"native_finish_reason\":{finish}}}]"
        ))
    }

    fn first_delta(&self) -> bool {
        self.reasoning_sent == 0 && self.content_sent == 0
    }

    /// Bills and stores the generation for what was produced so far.
    fn record(&mut self, finish_reason: Option<&str>, cancelled: bool) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        let s = &self.s;
        let model = s.shared.catalog.model(s.model);
        let endpoint = &model.endpoints[s.endpoint];
        let completion = self.reasoning_sent + self.content_sent;
        let Ok(cost) = compute_cost(
            &model.prices,
            s.tokens.prompt,
            s.tokens.cached,
            completion,
            self.reasoning_sent,
        ) else {
            tracing::warn!("stream cost overflow; generation not billed");
            return;
        };
        let now = s.shared.clock.now();
        let elapsed = s.started.elapsed().as_millis() as u64;
        let mut st = s.shared.state.lock();
        st.bill(&Charge {
            at: now,
            key_hash: &s.key_hash,
            model: &model.id,
            permaslug: &model.canonical_slug,
            endpoint_id: &endpoint.endpoint_id,
            provider_name: &endpoint.provider_name,
            cost: cost.total,
            prompt_tokens: s.tokens.prompt,
            completion_tokens: completion,
            reasoning_tokens: self.reasoning_sent,
        });
        st.insert_generation(Generation {
            id: s.id.as_str().into(),
            key_hash: s.key_hash.clone(),
            created_at: s.created,
            model: model.id.clone(),
            provider_name: endpoint.provider_name.clone(),
            http_referer: s.origin.http_referer.clone(),
            app_title: s.origin.app_title.clone(),
            user_agent: s.origin.user_agent.clone(),
            external_user: s.user.clone(),
            session_id: s.session_id.clone(),
            streamed: true,
            cancelled,
            latency_ms: self.first_token_ms.unwrap_or(elapsed),
            generation_time_ms: elapsed,
            finish_reason: finish_reason.map(str::to_owned),
            tokens_prompt: s.tokens.prompt,
            tokens_completion: completion,
            reasoning_tokens: self.reasoning_sent,
            cached_tokens: s.tokens.cached,
            total_cost: cost.total,
            cache_discount: cache_discount(&model.prices, s.tokens.cached),
        });
        drop(st);
        s.shared.mark_dirty();
        s.shared.notify_generation();
    }

    /// Applies a stream fault if it triggers before content chunk number `sent`.
    fn fault_at(
        &mut self,
        sent: u64,
        cx: &mut Context<'_>,
    ) -> Option<Poll<Option<Result<Bytes, std::io::Error>>>> {
        let trigger = match &self.s.fault {
            Some(Fault::StreamCut { after_chunks })
            | Some(Fault::StreamError { after_chunks, .. }) => {
                u64::from(*after_chunks).min(self.content_chunks)
            }
            _ => return None,
        };
        if sent != trigger {
            return None;
        }
        let fault = self.s.fault.take()?;
        self.phase = Phase::Finished;
        match fault {
            Fault::StreamCut { .. } => {
                self.record(None, true);
                // Yield once so the server flushes the chunks already produced; the cut itself
                // (an error from the body, which makes hyper drop the connection) comes next.
                self.phase = Phase::Cut;
                cx.waker().wake_by_ref();
                Some(Poll::Pending)
            }
            Fault::StreamError { code, message, .. } => {
                self.record(Some("error"), false);
                let msg = message.unwrap_or_else(|| "Provider returned error".to_owned());
                let mut err = String::from("\"error\":{\"code\":");
                err.push_str(&code.to_string());
                err.push_str(",\"message\":");
                push_json_str(&mut err, &msg);
                err.push_str("},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\",\"native_finish_reason\":\"error\"}]");
                Some(Poll::Ready(Some(Ok(self.frame(&err)))))
            }
            _ => None,
        }
    }

    /// Waits `delay` before a token chunk, if one is configured.
    fn poll_delay(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.s.delay.is_zero() {
            return Poll::Ready(());
        }
        let delay = self.s.delay;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.sleep = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn mark_first_token(&mut self) {
        if self.first_token_ms.is_none() {
            self.first_token_ms = Some(self.s.started.elapsed().as_millis() as u64);
        }
    }
}

use std::future::Future;

impl Stream for SseStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.phase {
            Phase::Comment => {
                this.phase = if this.s.tokens.reasoning > 0 {
                    Phase::Reasoning(0)
                } else {
                    Phase::Content(0)
                };
                Poll::Ready(Some(Ok(Bytes::from_static(b": OPENROUTER PROCESSING\n\n"))))
            }
            Phase::Reasoning(i) => {
                if this.poll_delay(cx).is_pending() {
                    return Poll::Pending;
                }
                let word = reasoning_word(this.s.seed, i);
                let text = if i == 0 {
                    word.to_owned()
                } else {
                    format!(" {word}")
                };
                let mut delta = String::from("{");
                if this.first_delta() {
                    delta.push_str("\"role\":\"assistant\",");
                }
                delta.push_str("\"content\":\"\",\"reasoning\":");
                push_json_str(&mut delta, &text);
                delta.push('}');
                let frame = this.delta_frame(&delta, None);
                this.reasoning_sent += 1;
                this.mark_first_token();
                this.phase = if i + 1 < this.s.tokens.reasoning {
                    Phase::Reasoning(i + 1)
                } else {
                    Phase::Content(0)
                };
                Poll::Ready(Some(Ok(frame)))
            }
            Phase::Content(i) => {
                if let Some(p) = this.fault_at(i, cx) {
                    return p;
                }
                if this.poll_delay(cx).is_pending() {
                    return Poll::Pending;
                }
                let content_tokens = this.s.tokens.completion - this.s.tokens.reasoning;
                let text = if content_tokens == 0 {
                    String::new()
                } else {
                    let word = content_word(this.s.seed, i);
                    if i == 0 {
                        word.to_owned()
                    } else {
                        format!(" {word}")
                    }
                };
                let mut delta = String::from("{");
                if this.first_delta() {
                    delta.push_str("\"role\":\"assistant\",");
                }
                delta.push_str("\"content\":");
                push_json_str(&mut delta, &text);
                delta.push('}');
                let last = i + 1 >= this.content_chunks;
                let frame = this.delta_frame(&delta, last.then_some(this.s.tokens.finish_reason));
                if content_tokens > 0 {
                    this.content_sent += 1;
                    this.mark_first_token();
                }
                this.phase = if last {
                    Phase::Usage
                } else {
                    Phase::Content(i + 1)
                };
                Poll::Ready(Some(Ok(frame)))
            }
            Phase::Usage => {
                if let Some(p) = this.fault_at(this.content_chunks, cx) {
                    return p;
                }
                let finish = this.s.tokens.finish_reason;
                this.record(Some(finish), false);
                let model = this.s.shared.catalog.model(this.s.model);
                let t = this.s.tokens;
                let usage = match compute_cost(
                    &model.prices,
                    t.prompt,
                    t.cached,
                    t.completion,
                    t.reasoning,
                ) {
                    Ok(cost) => UsageOut::of(&t, t.completion, t.reasoning, &cost),
                    Err(_) => {
                        this.phase = Phase::Finished;
                        return Poll::Ready(Some(Err(std::io::Error::other("cost overflow"))));
                    }
                };
                let usage_json = serde_json::to_string(&usage).unwrap_or_default();
                this.phase = Phase::Done;
                Poll::Ready(Some(Ok(
                    this.frame(&format!("\"choices\":[],\"usage\":{usage_json}"))
                )))
            }
            Phase::Done => {
                this.phase = Phase::Finished;
                Poll::Ready(Some(Ok(Bytes::from_static(b"data: [DONE]\n\n"))))
            }
            Phase::Cut => {
                this.phase = Phase::Finished;
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "simulated stream cut",
                ))))
            }
            Phase::Finished => Poll::Ready(None),
        }
    }
}

impl Drop for SseStream {
    fn drop(&mut self) {
        // The client went away (or the server is shutting down) before the usage chunk: bill
        // what was produced, as OpenRouter bills cancelled generations.
        self.record(None, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_parse() {
        let d = parse_directives(
            "hi [[sim:tokens=12]] and [[sim:reasoning=3]][[sim:cached=5]] [[sim:bogus=1]] [[sim:tokens=x]]",
        );
        assert_eq!(d.tokens, Some(12));
        assert_eq!(d.reasoning, Some(3));
        assert_eq!(d.cached, Some(5));
        assert_eq!(d.delay_ms, None);
    }

    #[test]
    fn prompt_tokens_formula() {
        let raw: Box<RawValue> = serde_json::from_str(
            r#"[{"role":"system","content":"12345"},{"role":"user","content":[{"type":"text","text":"abcd"},{"type":"image_url","image_url":{"url":"x"}}]}]"#,
        )
        .unwrap();
        let info = analyze_messages(&raw).unwrap();
        // (4 + ceil(5/4)) + (4 + ceil(4/4) + 85)
        assert_eq!(info.prompt_tokens, 6 + 90);
    }
}
