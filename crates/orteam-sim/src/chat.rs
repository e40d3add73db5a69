//! `POST /chat/completions`: deterministic completions, plain and streamed, billed exactly.
//!
//! The hot path takes the state lock once for a non-streamed request (authenticate, pre-check,
//! bill, record), parses the body with borrowed strings, and serializes the response straight
//! from structs, so the simulator stays far from being a benchmark's bottleneck. The shared
//! pieces (counting, pre-checks, billing) live in [`crate::inference`], the stream machine in
//! [`crate::sse`].

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use orteam_core::Money;
use orteam_core::money::json_number;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ApiError;
use crate::extract::{RawBody, parse_json};
use crate::inference::{
    BStr, CostParts, Plan, PromptCounter, PromptInfo, Tokens, admit, answer_texts, bad,
    parse_max_tokens, resolve_models, session_id, tokens_for,
};
use crate::models::ModelKind;
use crate::shared::Shared;
use crate::sse::{
    Produced, SseFormat, StreamSetup, push_json_str, set_generation_id, sse_response,
};
use crate::state::ApiType;

pub(crate) const CHAT_PATH: &str = "/api/v1/chat/completions";

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

fn analyze_messages(raw: &RawValue) -> Result<PromptInfo, ApiError> {
    let messages: Vec<MessageIn<'_>> = serde_json::from_str(raw.get()).map_err(|_| {
        bad("Invalid request parameters: messages must be an array of message objects")
    })?;
    if messages.is_empty() {
        return Err(bad(
            "Invalid request parameters: messages must not be empty",
        ));
    }
    let mut counter = PromptCounter::default();
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
        let mut msg = counter.message(role);
        if let Some(content) = m.content {
            let c = content.get().trim_start();
            let shape_err = || {
                bad(format!(
                    "Invalid request parameters: messages[{i}].content must be a string or an array of content parts"
                ))
            };
            if c.starts_with('"') {
                let s: BStr<'_> = serde_json::from_str(content.get()).map_err(|_| shape_err())?;
                msg.text(&s.0);
            } else if c.starts_with('[') {
                let parts: Vec<PartIn<'_>> =
                    serde_json::from_str(content.get()).map_err(|_| shape_err())?;
                for p in &parts {
                    match (&p.kind, &p.text) {
                        (Some(k), Some(t)) if k.0 == "text" => msg.text(&t.0),
                        (None, Some(t)) => msg.text(&t.0),
                        _ => msg.media(),
                    }
                }
            } else if c != "null" {
                return Err(shape_err());
            }
        }
        msg.end();
    }
    Ok(counter.finish())
}

fn plan(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Plan, ApiError> {
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
    let ids = req
        .model
        .iter()
        .chain(req.models.iter().flatten())
        .map(|m| m.0.as_ref());
    let mut plan = Plan::new(resolve_models(shared, ids, ModelKind::Text)?, prompt);
    plan.max_tokens = max_tokens;
    plan.stream = req.stream.unwrap_or(false);
    plan.user = req.user.map(|u| u.0.into_owned());
    plan.session_id = session_id(headers, req.session_id.map(|u| u.0.into_owned()));
    Ok(plan)
}

#[derive(Serialize)]
pub(crate) struct PromptDetails {
    cached_tokens: u64,
    cache_write_tokens: u64,
    audio_tokens: u64,
}

#[derive(Serialize)]
pub(crate) struct CompletionDetails {
    reasoning_tokens: u64,
    image_tokens: u64,
}

#[derive(Serialize)]
pub(crate) struct CostDetails {
    upstream_inference_cost: Option<()>,
    #[serde(with = "json_number")]
    upstream_inference_prompt_cost: Money,
    #[serde(with = "json_number")]
    upstream_inference_completions_cost: Money,
}

impl CostDetails {
    pub fn of(cost: &CostParts) -> Self {
        CostDetails {
            upstream_inference_cost: None,
            upstream_inference_prompt_cost: cost.prompt,
            upstream_inference_completions_cost: cost.completion,
        }
    }
}

/// Chat's usage block (also legacy completions').
#[derive(Serialize)]
pub(crate) struct UsageOut {
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
    /// From billed figures (all choices).
    pub fn of(t: &Tokens, cost: &CostParts) -> Self {
        UsageOut {
            prompt_tokens: t.prompt,
            completion_tokens: t.completion,
            total_tokens: t.prompt + t.completion,
            cost: cost.total,
            is_byok: false,
            prompt_tokens_details: PromptDetails {
                cached_tokens: t.cached,
                cache_write_tokens: 0,
                audio_tokens: 0,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: t.reasoning,
                image_tokens: 0,
            },
            cost_details: CostDetails::of(cost),
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

/// A JSON response with `X-Generation-Id`.
pub(crate) fn json_with_id(body: Vec<u8>, id: &str) -> Response {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_generation_id(&mut resp, id);
    resp
}

/// `POST /chat/completions` (inference key).
pub(crate) async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let plan = plan(&shared, &headers, &body);
    let adm = admit(&shared, &headers, plan)?;
    let model = adm.model(&shared);
    let tokens = tokens_for(&adm.plan, model);
    if adm.plan.stream {
        let setup = adm.into_stream(&shared, &headers, tokens, started, CHAT_PATH);
        return Ok(chat_stream(setup));
    }
    let created = adm.now.timestamp();
    let seed = adm.plan.prompt.seed;
    let endpoint = adm.sel.endpoint;
    let billed = adm.bill_now(&shared, &headers, tokens, ApiType::Completions, started)?;
    let (content, reasoning) = answer_texts(seed, &tokens);
    let usage = UsageOut::of(&billed.tokens, &billed.cost);
    let out = CompletionOut {
        id: &billed.id,
        provider: &model.endpoints[endpoint].provider_name,
        model: &model.id,
        object: "chat.completion",
        created,
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
    Ok(json_with_id(body, &billed.id))
}

/// Chat's chunk format: `data: {…"object":"chat.completion.chunk"…}` frames after a
/// `: OPENROUTER PROCESSING` comment, a usage chunk with `"choices":[]`, then `data: [DONE]`.
struct ChatFormat {
    /// `{"id":…,"provider":…,"model":…,"object":"chat.completion.chunk","created":N,` shared by
    /// every chunk.
    head: String,
    first: bool,
}

fn chat_stream(s: StreamSetup) -> Response {
    let head = chunk_head(&s, "chat.completion.chunk");
    sse_response(s, ChatFormat { head, first: true })
}

/// `{"id":…,"provider":…,"model":…,"object":<object>,"created":N,`
pub(crate) fn chunk_head(s: &StreamSetup, object: &str) -> String {
    let mut head = String::with_capacity(160);
    head.push_str("{\"id\":");
    push_json_str(&mut head, &s.id);
    head.push_str(",\"provider\":");
    push_json_str(&mut head, s.provider());
    head.push_str(",\"model\":");
    push_json_str(&mut head, &s.model().id);
    head.push_str(",\"object\":\"");
    head.push_str(object);
    head.push_str("\",\"created\":");
    head.push_str(&s.created.timestamp().to_string());
    head.push(',');
    head
}

/// `data: <head><body>}\n\n`
pub(crate) fn data_frame(head: &str, body: &str) -> String {
    let mut f = String::with_capacity(head.len() + body.len() + 10);
    f.push_str("data: ");
    f.push_str(head);
    f.push_str(body);
    f.push_str("}\n\n");
    f
}

impl ChatFormat {
    fn delta_frame(&self, delta: &str, finish: Option<&str>) -> Bytes {
        let finish = match finish {
            Some(f) => format!("\"{f}\""),
            None => "null".to_owned(),
        };
        Bytes::from(data_frame(
            &self.head,
            &format!(
                "\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish},\"native_finish_reason\":{finish}}}]"
            ),
        ))
    }

    fn delta_start(&mut self) -> String {
        let mut delta = String::from("{");
        if std::mem::take(&mut self.first) {
            delta.push_str("\"role\":\"assistant\",");
        }
        delta
    }
}

impl SseFormat for ChatFormat {
    fn open(&mut self, _s: &StreamSetup) -> Option<Bytes> {
        Some(Bytes::from_static(b": OPENROUTER PROCESSING\n\n"))
    }

    fn reasoning(&mut self, _s: &StreamSetup, _i: u64, text: &str) -> Bytes {
        let mut delta = self.delta_start();
        delta.push_str("\"content\":\"\",\"reasoning\":");
        push_json_str(&mut delta, text);
        delta.push('}');
        self.delta_frame(&delta, None)
    }

    fn content(&mut self, s: &StreamSetup, _i: u64, text: &str, last: bool) -> Bytes {
        let mut delta = self.delta_start();
        delta.push_str("\"content\":");
        push_json_str(&mut delta, text);
        delta.push('}');
        self.delta_frame(&delta, last.then_some(s.tokens.finish_reason))
    }

    fn finish(&mut self, _s: &StreamSetup, p: &Produced) -> Bytes {
        let usage = serde_json::to_string(&UsageOut::of(&p.tokens, &p.cost)).unwrap_or_default();
        let mut out = data_frame(&self.head, &format!("\"choices\":[],\"usage\":{usage}"));
        out.push_str("data: [DONE]\n\n");
        Bytes::from(out)
    }

    fn error(&mut self, _s: &StreamSetup, code: u16, message: &str, _p: &Produced) -> Bytes {
        let mut err = String::from("\"error\":{\"code\":");
        err.push_str(&code.to_string());
        err.push_str(",\"message\":");
        push_json_str(&mut err, message);
        err.push_str("},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\",\"native_finish_reason\":\"error\"}]");
        Bytes::from(data_frame(&self.head, &err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::parse_directives;

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
