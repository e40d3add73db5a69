//! `POST /messages`: Anthropic Messages as OpenRouter serves it (Claude Code's route).
//!
//! Non-streamed: a `message` object whose `id` is the generation id, Anthropic usage plus
//! OpenRouter's `cost`/`is_byok`/`cost_details`, and `provider`. Streamed: `message_start`,
//! `ping`, per block `content_block_start`/`content_block_delta`/`content_block_stop`,
//! `message_delta` (cumulative usage, no cost, per OpenRouter's spec) and `message_stop`; no
//! `[DONE]`. Errors use Anthropic's shape (`{"type":"error","error":{"type","message"},
//! "request_id":null}`); a mid-stream fault is an `error` event whose `request_id` is the
//! generation id.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use orteam_core::Money;
use orteam_core::money::json_number;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::{CostDetails, json_with_id};
use crate::error::{ApiError, anthropic_error_body};
use crate::extract::{RawBody, parse_json};
use crate::inference::{
    CostParts, Plan, PromptCounter, PromptInfo, Tokens, admit, answer_texts, bad, parse_max_tokens,
    random_suffix, resolve_models, session_id, tokens_for,
};
use crate::models::ModelKind;
use crate::shared::Shared;
use crate::sse::{Produced, SseFormat, StreamSetup, push_event, sse_response};
use crate::state::ApiType;

pub(crate) const MESSAGES_PATH: &str = "/api/v1/messages";

#[derive(Deserialize)]
struct MessagesRequest<'a> {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(borrow, default)]
    max_tokens: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    messages: Option<Value>,
    #[serde(default)]
    system: Option<Value>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    thinking: Option<Value>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
}

/// Counts one content block (or a block list / string) into `msg`.
fn count_content(
    msg: &mut crate::inference::MessageCount<'_>,
    content: &Value,
    at: &str,
) -> Result<(), ApiError> {
    match content {
        Value::String(s) => msg.text(s),
        Value::Null => {}
        Value::Array(blocks) => {
            for (j, b) in blocks.iter().enumerate() {
                let kind = b.get("type").and_then(Value::as_str).ok_or_else(|| {
                    bad(format!(
                        "Invalid request parameters: {at}.content[{j}].type is required"
                    ))
                })?;
                match kind {
                    "text" => msg.text(b.get("text").and_then(Value::as_str).unwrap_or("")),
                    "thinking" => msg.text(b.get("thinking").and_then(Value::as_str).unwrap_or("")),
                    "redacted_thinking" => {
                        msg.text(b.get("data").and_then(Value::as_str).unwrap_or(""))
                    }
                    "tool_use" | "server_tool_use" => {
                        msg.text(b.get("name").and_then(Value::as_str).unwrap_or(""));
                        msg.text(&b.get("input").map(Value::to_string).unwrap_or_default());
                    }
                    "tool_result" => {
                        if let Some(c) = b.get("content") {
                            count_content(msg, c, &format!("{at}.content[{j}]"))?;
                        }
                    }
                    _ => match b.get("text").and_then(Value::as_str) {
                        Some(t) => msg.text(t),
                        None => msg.media(),
                    },
                }
            }
        }
        _ => {
            return Err(bad(format!(
                "Invalid request parameters: {at}.content must be a string or an array of content blocks"
            )));
        }
    }
    Ok(())
}

fn analyze(system: Option<&Value>, messages: &Value) -> Result<PromptInfo, ApiError> {
    let list = messages.as_array().ok_or_else(|| {
        bad("Invalid request parameters: messages must be an array of message objects")
    })?;
    if list.is_empty() {
        return Err(bad(
            "Invalid request parameters: messages must not be empty",
        ));
    }
    let mut counter = PromptCounter::default();
    if let Some(sys) = system.filter(|s| !s.is_null()) {
        let mut msg = counter.message("system");
        count_content(&mut msg, sys, "system")?;
        msg.end();
    }
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).ok_or_else(|| {
            bad(format!(
                "Invalid request parameters: messages[{i}].role is required"
            ))
        })?;
        if !matches!(role, "user" | "assistant") {
            return Err(bad(format!(
                "Invalid request parameters: messages[{i}].role must be one of user, assistant; got {role:?}"
            )));
        }
        let mut msg = counter.message(role);
        if let Some(c) = m.get("content") {
            count_content(&mut msg, c, &format!("messages[{i}]"))?;
        }
        msg.end();
    }
    Ok(counter.finish())
}

/// The tool a forced `tool_choice` names: `{"type":"tool","name":X}` → X, `{"type":"any"}` →
/// the first tool.
fn forced_tool(choice: Option<&Value>, tools: &[Value]) -> Result<Option<String>, ApiError> {
    let Some(choice) = choice.filter(|c| !c.is_null()) else {
        return Ok(None);
    };
    match choice.get("type").and_then(Value::as_str) {
        Some("tool") => choice
            .get("name")
            .and_then(Value::as_str)
            .map(|n| Some(n.to_owned()))
            .ok_or_else(|| {
                bad("Invalid request parameters: tool_choice.name is required when type is \"tool\"")
            }),
        Some("any") => tools
            .first()
            .and_then(|t| t.get("name"))
            .and_then(Value::as_str)
            .map(|n| Some(n.to_owned()))
            .ok_or_else(|| {
                bad("Invalid request parameters: tool_choice \"any\" requires at least one tool")
            }),
        Some("auto" | "none") => Ok(None),
        _ => Err(bad(
            "Invalid request parameters: tool_choice.type must be one of auto, any, tool, none",
        )),
    }
}

fn plan(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Plan, ApiError> {
    let req: MessagesRequest<'_> = parse_json(body)?;
    let messages = req.messages.as_ref().ok_or_else(|| {
        bad("Invalid request parameters: messages is required (a non-empty array)")
    })?;
    let prompt = analyze(req.system.as_ref(), messages)?;
    let ids = req
        .model
        .as_deref()
        .into_iter()
        .chain(req.models.iter().flatten().map(String::as_str));
    let mut plan = Plan::new(resolve_models(shared, ids, ModelKind::Text)?, prompt);
    plan.max_tokens = parse_max_tokens(req.max_tokens, "max_tokens")?;
    plan.stream = req.stream.unwrap_or(false);
    plan.forced_tool = forced_tool(
        req.tool_choice.as_ref(),
        req.tools.as_deref().unwrap_or_default(),
    )?;
    plan.reasoning_requested = req
        .thinking
        .as_ref()
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "enabled" || t == "adaptive");
    let metadata_user = req
        .metadata
        .as_ref()
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    plan.user = req.user.or(metadata_user);
    plan.session_id = session_id(headers, req.session_id);
    Ok(plan)
}

fn stop_reason(t: &Tokens) -> &'static str {
    match t.finish_reason {
        "length" => "max_tokens",
        "tool_calls" => "tool_use",
        _ => "end_turn",
    }
}

/// Anthropic usage plus OpenRouter's cost fields (non-streamed only).
#[derive(Serialize)]
struct UsageOut {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    #[serde(with = "json_number")]
    cost: Money,
    is_byok: bool,
    cost_details: CostDetails,
}

impl UsageOut {
    fn of(t: &Tokens, cost: &CostParts) -> Self {
        UsageOut {
            input_tokens: t.prompt - t.cached,
            output_tokens: t.completion,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: t.cached,
            cost: cost.total,
            is_byok: false,
            cost_details: CostDetails::of(cost),
        }
    }
}

const SIGNATURE: &str = "c2ltdWxhdGVkLXNpZ25hdHVyZQ==";

fn tool_use_block(name: &str) -> Value {
    serde_json::json!({
        "type": "tool_use",
        "id": format!("toolu_{}", random_suffix(24)),
        "name": name,
        "input": {},
    })
}

/// `POST /messages` (inference key); errors in Anthropic's shape.
pub(crate) async fn messages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<RawBody, ApiError>,
) -> Response {
    match handle(&shared, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_anthropic_response(),
    }
}

async fn handle(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: Result<RawBody, ApiError>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let plan = body.and_then(|RawBody(b)| plan(shared, headers, &b));
    let adm = admit(shared, headers, plan)?;
    let model = adm.model(shared);
    let tokens = tokens_for(&adm.plan, model);
    if adm.plan.stream {
        let setup = adm.into_stream(shared, headers, tokens, started, MESSAGES_PATH);
        return Ok(sse_response(setup, MessagesFormat::default()));
    }
    let seed = adm.plan.prompt.seed;
    let endpoint = adm.sel.endpoint;
    let tool = adm.plan.forced_tool.clone();
    let billed = adm.bill_now(shared, headers, tokens, ApiType::Completions, started)?;
    let (text, thinking) = answer_texts(seed, &tokens);
    let mut content = Vec::with_capacity(2);
    if let Some(t) = thinking {
        content
            .push(serde_json::json!({"type": "thinking", "thinking": t, "signature": SIGNATURE}));
    }
    match &tool {
        Some(name) => content.push(tool_use_block(name)),
        None => content.push(serde_json::json!({"type": "text", "text": text})),
    }
    let out = serde_json::json!({
        "id": &*billed.id,
        "type": "message",
        "role": "assistant",
        "model": &*model.id,
        "content": content,
        "stop_reason": stop_reason(&tokens),
        "stop_sequence": null,
        "usage": serde_json::to_value(UsageOut::of(&billed.tokens, &billed.cost))
            .map_err(|_| ApiError::internal("Internal Server Error"))?,
        "provider": &*model.endpoints[endpoint].provider_name,
    });
    Ok(json_with_id(out.to_string().into_bytes(), &billed.id))
}

/// Anthropic's event stream.
#[derive(Default)]
struct MessagesFormat {
    /// Index of the next content block.
    next_index: u32,
    /// The thinking block is open.
    thinking_open: bool,
}

impl MessagesFormat {
    fn start_block(&mut self, out: &mut String, block: Value) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        let data = serde_json::json!({"type": "content_block_start", "index": index, "content_block": block});
        push_event(out, "content_block_start", &data.to_string());
        index
    }

    fn delta(out: &mut String, index: u32, delta: Value) {
        let data =
            serde_json::json!({"type": "content_block_delta", "index": index, "delta": delta});
        push_event(out, "content_block_delta", &data.to_string());
    }

    fn stop_block(out: &mut String, index: u32) {
        let data = serde_json::json!({"type": "content_block_stop", "index": index});
        push_event(out, "content_block_stop", &data.to_string());
    }
}

impl SseFormat for MessagesFormat {
    fn open(&mut self, s: &StreamSetup) -> Option<Bytes> {
        let t = &s.tokens;
        let start = serde_json::json!({
            "type": "message_start",
            "message": {
                "id": s.id,
                "type": "message",
                "role": "assistant",
                "model": &*s.model().id,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": t.prompt - t.cached,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": t.cached,
                },
                "provider": s.provider(),
            },
        });
        let mut out = String::new();
        push_event(&mut out, "message_start", &start.to_string());
        push_event(&mut out, "ping", r#"{"type":"ping"}"#);
        Some(Bytes::from(out))
    }

    fn content_chunks(&self, s: &StreamSetup) -> u64 {
        if s.forced_tool.is_some() {
            1
        } else {
            s.tokens.content().max(1)
        }
    }

    fn reasoning(&mut self, _s: &StreamSetup, i: u64, text: &str) -> Bytes {
        let mut out = String::new();
        if i == 0 {
            self.start_block(
                &mut out,
                serde_json::json!({"type": "thinking", "thinking": "", "signature": ""}),
            );
            self.thinking_open = true;
        }
        Self::delta(
            &mut out,
            self.next_index - 1,
            serde_json::json!({"type": "thinking_delta", "thinking": text}),
        );
        Bytes::from(out)
    }

    fn content(&mut self, s: &StreamSetup, i: u64, text: &str, last: bool) -> Bytes {
        let mut out = String::new();
        if i == 0 {
            if std::mem::take(&mut self.thinking_open) {
                let index = self.next_index - 1;
                Self::delta(
                    &mut out,
                    index,
                    serde_json::json!({"type": "signature_delta", "signature": SIGNATURE}),
                );
                Self::stop_block(&mut out, index);
            }
            match &s.forced_tool {
                Some(name) => {
                    let mut block = tool_use_block(name);
                    block["input"] = serde_json::json!({});
                    self.start_block(&mut out, block);
                }
                None => {
                    self.start_block(&mut out, serde_json::json!({"type": "text", "text": ""}));
                }
            }
        }
        let index = self.next_index - 1;
        if s.forced_tool.is_some() {
            Self::delta(
                &mut out,
                index,
                serde_json::json!({"type": "input_json_delta", "partial_json": "{}"}),
            );
        } else if !text.is_empty() {
            Self::delta(
                &mut out,
                index,
                serde_json::json!({"type": "text_delta", "text": text}),
            );
        }
        if last {
            Self::stop_block(&mut out, index);
        }
        Bytes::from(out)
    }

    fn finish(&mut self, s: &StreamSetup, p: &Produced) -> Bytes {
        let t = &p.tokens;
        let delta = serde_json::json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(&s.tokens), "stop_sequence": null},
            "usage": {
                "input_tokens": t.prompt - t.cached,
                "output_tokens": t.completion,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": t.cached,
            },
        });
        let mut out = String::new();
        push_event(&mut out, "message_delta", &delta.to_string());
        push_event(&mut out, "message_stop", r#"{"type":"message_stop"}"#);
        Bytes::from(out)
    }

    fn error(&mut self, s: &StreamSetup, code: u16, message: &str, _p: &Produced) -> Bytes {
        let mut out = String::new();
        push_event(
            &mut out,
            "error",
            &anthropic_error_body(code, message, None, Some(&s.id)),
        );
        Bytes::from(out)
    }
}
