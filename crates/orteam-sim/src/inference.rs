//! What every inference route shares (chat, Messages, Responses, legacy completions,
//! embeddings): prompt token counting and directives, model resolution, OpenRouter's pre-checks
//! (key, key limit, credits, guardrails, free-model rate limits), token and cost computation,
//! generation ids, and billing + generation records.
//!
//! A route parses its own body into a [`Plan`], calls [`admit`] (one state-lock acquisition), and
//! then either bills at once ([`Admitted::bill_now`]) or hands a [`StreamSetup`] to the shared SSE
//! machine in [`crate::sse`], which bills when the stream ends, is cut, or is dropped.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use chrono::{DateTime, Utc};
use orteam_core::{Clock, Money, MoneyError};
use parking_lot::MutexGuard;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::value::RawValue;

use crate::auth::bearer;
use crate::error::ApiError;
use crate::guardrails;
use crate::models::{Model, ModelKind, Prices};
use crate::shared::Shared;
use crate::sse::StreamSetup;
use crate::state::{ApiType, Charge, Generation, State as SimState};

pub(crate) const DEFAULT_MODEL: &str = "openai/gpt-4o-mini";
const FREE_REQUESTS_PER_MINUTE: u32 = 20;
/// Tokens a non-text content part (image, file, audio, document) counts for.
pub(crate) const MEDIA_PART_TOKENS: u64 = 85;
/// Tokens of framing every message counts for, on top of its text.
const MESSAGE_OVERHEAD_TOKENS: u64 = 4;

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
pub(crate) struct BStr<'a>(pub Cow<'a, str>);

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

/// FNV-1a, stable across runs and Rust versions (unlike `DefaultHasher`).
pub(crate) fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Directives found in the prompt (see the crate docs).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Directives {
    pub tokens: Option<u64>,
    pub reasoning: Option<u64>,
    pub cached: Option<u64>,
    pub delay_ms: Option<u64>,
}

impl Directives {
    /// `other`'s values where it has them, ours elsewhere.
    fn overlay(&mut self, other: Directives) {
        self.tokens = other.tokens.or(self.tokens);
        self.reasoning = other.reasoning.or(self.reasoning);
        self.cached = other.cached.or(self.cached);
        self.delay_ms = other.delay_ms.or(self.delay_ms);
    }
}

pub(crate) fn parse_directives(text: &str) -> Directives {
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

/// What the prompt amounts to: token count, a hash seed, directives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PromptInfo {
    pub prompt_tokens: u64,
    pub seed: u64,
    pub directives: Directives,
}

/// Counts prompt tokens the same way on every route.
///
/// - A message (chat, Messages, Responses, system prompts and instructions): `4 +
///   ceil(utf8_bytes(text) / 4) + 85 × media parts`, where `text` is the concatenation of its
///   text pieces. The last message with role `user` sets the directives.
/// - A bare prompt (legacy completions, embeddings): `ceil(utf8_bytes / 4)` per string, the
///   number of ids for a token-id array; directives are read from every string.
#[derive(Debug)]
pub(crate) struct PromptCounter {
    info: PromptInfo,
}

impl Default for PromptCounter {
    fn default() -> Self {
        PromptCounter {
            info: PromptInfo {
                prompt_tokens: 0,
                seed: FNV_OFFSET,
                directives: Directives::default(),
            },
        }
    }
}

/// One message being counted: add its text pieces and media parts, then [`MessageCount::end`].
#[derive(Debug)]
pub(crate) struct MessageCount<'c> {
    counter: &'c mut PromptCounter,
    user: bool,
    bytes: u64,
    media: u64,
    text: Option<String>,
}

impl MessageCount<'_> {
    pub fn text(&mut self, t: &str) {
        self.bytes += t.len() as u64;
        self.counter.info.seed = fnv1a(self.counter.info.seed, t.as_bytes());
        if self.user {
            self.text.get_or_insert_with(String::new).push_str(t);
        }
    }

    pub fn media(&mut self) {
        self.media += 1;
    }

    pub fn end(self) {
        let info = &mut self.counter.info;
        info.prompt_tokens +=
            MESSAGE_OVERHEAD_TOKENS + self.bytes.div_ceil(4) + self.media * MEDIA_PART_TOKENS;
        if self.user {
            info.directives = self
                .text
                .as_deref()
                .map(parse_directives)
                .unwrap_or_default();
        }
    }
}

impl PromptCounter {
    /// Starts a message with `role` (the role feeds the seed).
    pub fn message(&mut self, role: &str) -> MessageCount<'_> {
        self.info.seed = fnv1a(self.info.seed, role.as_bytes());
        MessageCount {
            user: role == "user",
            counter: self,
            bytes: 0,
            media: 0,
            text: None,
        }
    }

    /// A bare prompt string.
    pub fn bare_text(&mut self, t: &str) {
        self.info.prompt_tokens += (t.len() as u64).div_ceil(4);
        self.info.seed = fnv1a(self.info.seed, t.as_bytes());
        self.info.directives.overlay(parse_directives(t));
    }

    /// A prompt given as token ids.
    pub fn token_ids(&mut self, ids: &[u64]) {
        self.info.prompt_tokens += ids.len() as u64;
        for id in ids {
            self.info.seed = fnv1a(self.info.seed, &id.to_le_bytes());
        }
    }

    pub fn finish(self) -> PromptInfo {
        self.info
    }
}

pub(crate) fn bad(msg: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::bad_request(msg).with_error_type("invalid_request")
}

pub(crate) fn parse_max_tokens(
    raw: Option<&RawValue>,
    name: &str,
) -> Result<Option<u64>, ApiError> {
    match raw {
        None => Ok(None),
        Some(r) if r.get().trim() == "null" => Ok(None),
        Some(r) => match r.get().trim().parse::<u64>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(bad(format!(
                "Invalid request parameters: {name} must be a positive integer, got {}",
                r.get()
            ))),
        },
    }
}

/// Resolves model ids (a primary, then fallbacks) to catalog indexes of the route's `kind`;
/// no id at all means the default model.
pub(crate) fn resolve_models<'a>(
    shared: &Shared,
    ids: impl IntoIterator<Item = &'a str>,
    kind: ModelKind,
) -> Result<Vec<usize>, ApiError> {
    let mut ids = ids.into_iter().peekable();
    let ids: Vec<&str> = if ids.peek().is_none() {
        vec![DEFAULT_MODEL]
    } else {
        ids.collect()
    };
    let mut candidates = Vec::with_capacity(ids.len());
    for id in ids {
        let idx = shared
            .catalog
            .get(id)
            .ok_or_else(|| bad(format!("{id} is not a valid model ID")))?;
        let model_kind = shared.catalog.model(idx).kind;
        if model_kind != kind {
            return Err(bad(match kind {
                ModelKind::Embedding => format!(
                    "{id} is not an embedding model: use a model from /api/v1/embeddings/models"
                ),
                ModelKind::Text => format!(
                    "{id} is an embedding model and cannot generate text: use /api/v1/embeddings"
                ),
            }));
        }
        if !candidates.contains(&idx) {
            candidates.push(idx);
        }
    }
    Ok(candidates)
}

/// A validated request, before a model is chosen. Every route builds one.
#[derive(Debug)]
pub(crate) struct Plan {
    pub candidates: Vec<usize>,
    pub prompt: PromptInfo,
    pub max_tokens: Option<u64>,
    pub stream: bool,
    pub user: Option<String>,
    pub session_id: Option<String>,
    /// Thinking / reasoning was asked for: without a `reasoning` directive, half of the output
    /// tokens (rounded down) are reasoning.
    pub reasoning_requested: bool,
    /// The answer is a call of this tool (a forced `tool_choice`) rather than text.
    pub forced_tool: Option<String>,
    /// Completions per request (legacy `n`): every token figure of the output bills n times.
    pub choices: u64,
}

impl Plan {
    pub fn new(candidates: Vec<usize>, prompt: PromptInfo) -> Self {
        Plan {
            candidates,
            prompt,
            max_tokens: None,
            stream: false,
            user: None,
            session_id: None,
            reasoning_requested: false,
            forced_tool: None,
            choices: 1,
        }
    }
}

/// Token figures of one answer on one model (per choice; see [`Tokens::times`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tokens {
    pub prompt: u64,
    pub cached: u64,
    pub completion: u64,
    pub reasoning: u64,
    /// OpenRouter's normalized reason: `stop`, `length` or `tool_calls`.
    pub finish_reason: &'static str,
}

impl Tokens {
    pub fn content(&self) -> u64 {
        self.completion - self.reasoning
    }

    /// The figures billed for `n` choices (the prompt counts once).
    pub fn times(self, n: u64) -> Tokens {
        Tokens {
            completion: self.completion * n,
            reasoning: self.reasoning * n,
            ..self
        }
    }

    pub fn hit_limit(&self) -> bool {
        self.finish_reason == "length"
    }
}

pub(crate) fn tokens_for(p: &Plan, model: &Model) -> Tokens {
    let d = p.prompt.directives;
    let cap = p
        .max_tokens
        .unwrap_or(model.max_completion_tokens)
        .min(model.max_completion_tokens);
    let wanted = d.tokens.unwrap_or(8 + p.prompt.seed % 57);
    let (completion, finish_reason) = if wanted > cap {
        (cap, "length")
    } else if p.forced_tool.is_some() {
        (wanted, "tool_calls")
    } else {
        (wanted, "stop")
    };
    let reasoning = match d.reasoning {
        Some(r) => r,
        None if p.reasoning_requested => completion / 2,
        None => 0,
    };
    Tokens {
        prompt: p.prompt.prompt_tokens,
        cached: d.cached.unwrap_or(0).min(p.prompt.prompt_tokens),
        completion,
        reasoning: reasoning.min(completion),
        finish_reason,
    }
}

/// The price of an answer, split as `cost_details` reports it.
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

impl Tokens {
    pub fn cost(&self, p: &Prices) -> Result<CostParts, MoneyError> {
        compute_cost(p, self.prompt, self.cached, self.completion, self.reasoning)
    }
}

/// What cached tokens saved compared with the full prompt price (None when nothing was cached).
pub(crate) fn cache_discount(p: &Prices, cached: u64) -> Option<Money> {
    if cached == 0 {
        return None;
    }
    let full = p.prompt.times(cached).ok()?;
    let paid = p.input_cache_read.unwrap_or(p.prompt).times(cached).ok()?;
    full.checked_sub(paid)
}

/// Word `i` of the answer text.
pub(crate) fn content_word(seed: u64, i: u64) -> &'static str {
    VOCAB[((seed >> 8).wrapping_add(i.wrapping_mul(7)) % VOCAB.len() as u64) as usize]
}

/// Word `i` of the reasoning text.
pub(crate) fn reasoning_word(seed: u64, i: u64) -> &'static str {
    VOCAB[((seed >> 20).wrapping_add(i.wrapping_mul(5)) % VOCAB.len() as u64) as usize]
}

/// `n` words joined by spaces.
pub(crate) fn words(n: u64, word: impl Fn(u64) -> &'static str) -> String {
    let mut s = String::with_capacity(n as usize * 8);
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(word(i));
    }
    s
}

/// The answer text (one word per content token) and the reasoning text, if any.
pub(crate) fn answer_texts(seed: u64, t: &Tokens) -> (String, Option<String>) {
    let content = words(t.content(), |i| content_word(seed, i));
    let reasoning = (t.reasoning > 0).then(|| words(t.reasoning, |i| reasoning_word(seed, i)));
    (content, reasoning)
}

pub(crate) fn new_generation_id(now: DateTime<Utc>) -> String {
    format!(
        "gen-{}-{}",
        now.timestamp(),
        Alphanumeric.sample_string(&mut rand::rng(), 20)
    )
}

/// A random suffix for item ids (`msg_…`, `toolu_…`, `call_…`).
pub(crate) fn random_suffix(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// Request attributes copied into the generation record.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    pub http_referer: Option<String>,
    pub app_title: Option<String>,
    pub user_agent: Option<String>,
}

pub(crate) fn origin(headers: &HeaderMap) -> Origin {
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

/// The `session_id` of a request: the body wins over the `x-session-id` header.
pub(crate) fn session_id(headers: &HeaderMap, body: Option<String>) -> Option<String> {
    body.or_else(|| {
        headers
            .get("x-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
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

/// The bearer token of an inference request; the management key gets 403.
pub(crate) fn inference_token<'h>(
    shared: &Shared,
    headers: &'h HeaderMap,
) -> Result<&'h str, ApiError> {
    let token = bearer(headers)?;
    if token == shared.provisioning_key {
        return Err(ApiError::forbidden(
            "Management keys cannot be used for inference. Use an API key created with the management key.",
        )
        .with_error_type("permission_denied"));
    }
    Ok(token)
}

/// The chosen model and endpoint for a request that passed every pre-check.
#[derive(Debug)]
pub(crate) struct Selected {
    pub key_hash: Arc<str>,
    pub model: usize,
    pub endpoint: usize,
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

/// A request that passed authentication, validation and every pre-check, with the state still
/// locked (so billing happens in the same critical section for non-streamed answers).
pub(crate) struct Admitted<'s> {
    pub st: MutexGuard<'s, SimState>,
    pub sel: Selected,
    pub plan: Plan,
    pub now: DateTime<Utc>,
}

/// Authenticates, then checks `plan` (body errors are reported after authentication, as the
/// real service does; the body is parsed before the lock to keep the critical section short).
pub(crate) fn admit<'s>(
    shared: &'s Shared,
    headers: &HeaderMap,
    plan: Result<Plan, ApiError>,
) -> Result<Admitted<'s>, ApiError> {
    let token = inference_token(shared, headers)?;
    let plan = plan.map(|mut p| {
        if shared.hooks.has_substitutions.load(Ordering::Relaxed) {
            let subs = shared.hooks.substitutions.read();
            for c in &mut p.candidates {
                if let Some(&to) = subs.get(c) {
                    *c = to;
                }
            }
        }
        p
    });
    let now = shared.clock.now();
    let mut st = shared.state.lock();
    let sel = select(shared, &mut st, token, now, &plan)?;
    Ok(Admitted {
        st,
        sel,
        plan: plan?,
        now,
    })
}

/// Everything a generation record needs.
pub(crate) struct GenRecord<'a> {
    pub id: Arc<str>,
    pub key_hash: &'a Arc<str>,
    pub model: &'a Model,
    pub endpoint: usize,
    pub created: DateTime<Utc>,
    pub origin: Origin,
    pub user: Option<String>,
    pub session_id: Option<String>,
    pub streamed: bool,
    pub cancelled: bool,
    pub latency_ms: u64,
    pub generation_time_ms: u64,
    pub finish_reason: Option<&'a str>,
    /// Billed figures (all choices).
    pub tokens: Tokens,
    pub cost: Money,
    pub api_type: ApiType,
}

/// Bills the key, the account and the activity, and stores the generation. Call
/// [`Shared::generation_recorded_after_unlock`] once the lock is released.
pub(crate) fn record(st: &mut SimState, r: GenRecord<'_>) {
    let model = r.model;
    let endpoint = &model.endpoints[r.endpoint];
    st.bill(&Charge {
        at: r.created,
        key_hash: r.key_hash,
        model: &model.id,
        permaslug: &model.canonical_slug,
        endpoint_id: &endpoint.endpoint_id,
        provider_name: &endpoint.provider_name,
        cost: r.cost,
        prompt_tokens: r.tokens.prompt,
        completion_tokens: r.tokens.completion,
        reasoning_tokens: r.tokens.reasoning,
        cached_tokens: r.tokens.cached,
    });
    st.insert_generation(Generation {
        id: r.id,
        key_hash: r.key_hash.clone(),
        created_at: r.created,
        model: model.id.clone(),
        provider_name: endpoint.provider_name.clone(),
        http_referer: r.origin.http_referer,
        app_title: r.origin.app_title,
        user_agent: r.origin.user_agent,
        external_user: r.user,
        session_id: r.session_id,
        streamed: r.streamed,
        cancelled: r.cancelled,
        latency_ms: r.latency_ms,
        generation_time_ms: r.generation_time_ms,
        finish_reason: r.finish_reason.map(str::to_owned),
        tokens_prompt: r.tokens.prompt,
        tokens_completion: r.tokens.completion,
        reasoning_tokens: r.tokens.reasoning,
        cached_tokens: r.tokens.cached,
        total_cost: r.cost,
        cache_discount: cache_discount(&model.prices, r.tokens.cached),
        api_type: r.api_type,
    });
}

/// The outcome of a non-streamed request: its id, the billed tokens (all choices) and cost.
pub(crate) struct Billed {
    pub id: Arc<str>,
    pub tokens: Tokens,
    pub cost: CostParts,
}

impl<'s> Admitted<'s> {
    pub fn model(&self, shared: &'s Shared) -> &'s Model {
        shared.catalog.model(self.sel.model)
    }

    /// Bills `tokens` (per choice) now and records a non-streamed generation.
    pub fn bill_now(
        self,
        shared: &Shared,
        headers: &HeaderMap,
        tokens: Tokens,
        api_type: ApiType,
        started: Instant,
    ) -> Result<Billed, ApiError> {
        let Admitted {
            mut st,
            sel,
            plan,
            now,
        } = self;
        let model = shared.catalog.model(sel.model);
        let billed = tokens.times(plan.choices);
        let cost = billed
            .cost(&model.prices)
            .map_err(|_| ApiError::internal("Internal Server Error"))?;
        let id: Arc<str> = new_generation_id(now).into();
        let elapsed = started.elapsed().as_millis() as u64;
        record(
            &mut st,
            GenRecord {
                id: id.clone(),
                key_hash: &sel.key_hash,
                model,
                endpoint: sel.endpoint,
                created: now,
                origin: origin(headers),
                user: plan.user,
                session_id: plan.session_id,
                streamed: false,
                cancelled: false,
                latency_ms: elapsed,
                generation_time_ms: elapsed,
                finish_reason: (api_type == ApiType::Completions).then_some(billed.finish_reason),
                tokens: billed,
                cost: cost.total,
                api_type,
            },
        );
        drop(st);
        shared.generation_recorded_after_unlock();
        Ok(Billed {
            id,
            tokens: billed,
            cost,
        })
    }

    /// Releases the lock and prepares a stream (billed by the SSE machine); stream faults for
    /// `path` are taken now.
    pub fn into_stream(
        self,
        shared: &Arc<Shared>,
        headers: &HeaderMap,
        tokens: Tokens,
        started: Instant,
        path: &str,
    ) -> StreamSetup {
        let Admitted { st, sel, plan, now } = self;
        drop(st);
        StreamSetup {
            shared: shared.clone(),
            id: new_generation_id(now),
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
            origin: origin(headers),
            fault: shared.faults.take_stream("POST", path),
            choices: plan.choices,
            forced_tool: plan.forced_tool,
        }
    }
}
