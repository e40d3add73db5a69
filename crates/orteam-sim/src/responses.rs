//! `POST /responses`: OpenAI Responses as OpenRouter serves it (Codex's route). Stateless:
//! `store: true` and a non-null `previous_response_id` are 400s.
//!
//! The response `id` is the generation id. Streams are named events (`event: <type>`), each
//! with `type` and `sequence_number`, ending with exactly one of `response.completed`,
//! `response.incomplete` (the answer hit `max_output_tokens`) or `response.failed` (a
//! mid-stream fault); the terminal response carries `usage` with `cost`. Errors use
//! OpenRouter's envelope `{"error":{"code":<int>,"message":…}}`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use orteam_core::Money;
use orteam_core::money::json_number;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chat::json_with_id;
use crate::error::ApiError;
use crate::extract::{RawBody, parse_json};
use crate::inference::{
    CostParts, MessageCount, Plan, PromptCounter, PromptInfo, Tokens, admit, answer_texts, bad,
    parse_max_tokens, random_suffix, resolve_models, session_id, tokens_for,
};
use crate::models::ModelKind;
use crate::shared::Shared;
use crate::sse::{Produced, SseFormat, StreamSetup, push_event, sse_response};
use crate::state::ApiType;

pub(crate) const RESPONSES_PATH: &str = "/api/v1/responses";

#[derive(Deserialize)]
struct ResponsesRequest<'a> {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    instructions: Option<Value>,
    #[serde(borrow, default)]
    max_output_tokens: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    reasoning: Option<Value>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    store: Option<bool>,
    #[serde(default)]
    previous_response_id: Option<Value>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    safety_identifier: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
}

/// Counts message content: a string, or parts (`input_text`/`output_text`/`text`/`refusal`
/// are text; `input_image`/`input_file`/`input_audio` and other parts are media).
fn count_parts(msg: &mut MessageCount<'_>, content: &Value) {
    match content {
        Value::String(s) => msg.text(s),
        Value::Array(parts) => {
            for p in parts {
                match p
                    .get("text")
                    .or_else(|| p.get("refusal"))
                    .and_then(Value::as_str)
                {
                    Some(t) => msg.text(t),
                    None => msg.media(),
                }
            }
        }
        _ => {}
    }
}

fn analyze(instructions: Option<&Value>, input: &Value) -> Result<PromptInfo, ApiError> {
    let mut counter = PromptCounter::default();
    if let Some(Value::String(s)) = instructions {
        let mut msg = counter.message("system");
        msg.text(s);
        msg.end();
    }
    match input {
        Value::String(s) => {
            let mut msg = counter.message("user");
            msg.text(s);
            msg.end();
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                let kind = item.get("type").and_then(Value::as_str);
                let role = item.get("role").and_then(Value::as_str);
                match (kind, role) {
                    (Some("message") | None, Some(role)) => {
                        if !matches!(role, "user" | "assistant" | "system" | "developer") {
                            return Err(bad(format!(
                                "Invalid request parameters: input[{i}].role must be one of user, assistant, system, developer; got {role:?}"
                            )));
                        }
                        let mut msg = counter.message(role);
                        if let Some(c) = item.get("content") {
                            count_parts(&mut msg, c);
                        }
                        msg.end();
                    }
                    (Some("function_call"), _) => {
                        let mut msg = counter.message("assistant");
                        for f in ["name", "arguments"] {
                            msg.text(item.get(f).and_then(Value::as_str).unwrap_or(""));
                        }
                        msg.end();
                    }
                    (Some("function_call_output"), _) => {
                        let mut msg = counter.message("tool");
                        if let Some(o) = item.get("output") {
                            count_parts(&mut msg, o);
                        }
                        msg.end();
                    }
                    (Some("reasoning"), _) => {
                        let mut msg = counter.message("assistant");
                        for f in ["summary", "content"] {
                            if let Some(c) = item.get(f) {
                                count_parts(&mut msg, c);
                            }
                        }
                        msg.end();
                    }
                    (Some(_), _) => {
                        // Other items (tool calls of built-in tools, …): their JSON is the text.
                        let mut msg = counter.message("assistant");
                        msg.text(&item.to_string());
                        msg.end();
                    }
                    (None, None) => {
                        return Err(bad(format!(
                            "Invalid request parameters: input[{i}] must have a type or a role"
                        )));
                    }
                }
            }
        }
        _ => {
            return Err(bad(
                "Invalid request parameters: input must be a string or a non-empty array of input items",
            ));
        }
    }
    Ok(counter.finish())
}

/// `{"type":"function","name":X}` → X; `"required"` → the first function tool.
fn forced_tool(choice: Option<&Value>, tools: &[Value]) -> Result<Option<String>, ApiError> {
    match choice {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" | "none" => Ok(None),
            "required" => tools
                .iter()
                .find_map(|t| t.get("name").and_then(Value::as_str))
                .map(|n| Some(n.to_owned()))
                .ok_or_else(|| {
                    bad("Invalid request parameters: tool_choice \"required\" needs at least one function tool")
                }),
            other => Err(bad(format!(
                "Invalid request parameters: tool_choice must be auto, none, required or an object; got {other:?}"
            ))),
        },
        Some(obj) => match obj.get("name").and_then(Value::as_str) {
            Some(n) => Ok(Some(n.to_owned())),
            None => Err(bad(
                "Invalid request parameters: tool_choice.name is required for a function tool choice",
            )),
        },
    }
}

fn plan(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Plan, ApiError> {
    let req: ResponsesRequest<'_> = parse_json(body)?;
    if req.store == Some(true) {
        return Err(bad(
            "Invalid request parameters: store must be false; OpenRouter's Responses API is stateless",
        ));
    }
    if req
        .previous_response_id
        .as_ref()
        .is_some_and(|p| !p.is_null())
    {
        return Err(bad(
            "Invalid request parameters: previous_response_id is not supported; OpenRouter's Responses API is stateless. Send the full conversation history in `input` instead",
        ));
    }
    let input = req
        .input
        .as_ref()
        .ok_or_else(|| bad("Invalid request parameters: input is required"))?;
    let prompt = analyze(req.instructions.as_ref(), input)?;
    let ids = req
        .model
        .as_deref()
        .into_iter()
        .chain(req.models.iter().flatten().map(String::as_str));
    let mut plan = Plan::new(resolve_models(shared, ids, ModelKind::Text)?, prompt);
    plan.max_tokens = parse_max_tokens(req.max_output_tokens, "max_output_tokens")?;
    plan.stream = req.stream.unwrap_or(false);
    plan.forced_tool = forced_tool(
        req.tool_choice.as_ref(),
        req.tools.as_deref().unwrap_or_default(),
    )?;
    plan.reasoning_requested = req.reasoning.as_ref().is_some_and(|r| {
        r.is_object()
            && r.get("effort").and_then(Value::as_str) != Some("none")
            && r.get("enabled").and_then(Value::as_bool) != Some(false)
    });
    plan.user = req.user.or(req.safety_identifier);
    plan.session_id = session_id(headers, req.session_id);
    Ok(plan)
}

#[derive(Serialize)]
struct InputDetails {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct OutputDetails {
    reasoning_tokens: u64,
}

#[derive(Serialize)]
struct CostDetails {
    upstream_inference_cost: Option<()>,
    #[serde(with = "json_number")]
    upstream_inference_input_cost: Money,
    #[serde(with = "json_number")]
    upstream_inference_output_cost: Money,
}

/// OpenAI usage (input includes cached, output includes reasoning) plus OpenRouter's cost.
#[derive(Serialize)]
struct UsageOut {
    input_tokens: u64,
    input_tokens_details: InputDetails,
    output_tokens: u64,
    output_tokens_details: OutputDetails,
    total_tokens: u64,
    #[serde(with = "json_number")]
    cost: Money,
    is_byok: bool,
    cost_details: CostDetails,
}

fn usage(t: &Tokens, cost: &CostParts) -> Value {
    serde_json::to_value(UsageOut {
        input_tokens: t.prompt,
        input_tokens_details: InputDetails {
            cached_tokens: t.cached,
        },
        output_tokens: t.completion,
        output_tokens_details: OutputDetails {
            reasoning_tokens: t.reasoning,
        },
        total_tokens: t.prompt + t.completion,
        cost: cost.total,
        is_byok: false,
        cost_details: CostDetails {
            upstream_inference_cost: None,
            upstream_inference_input_cost: cost.prompt,
            upstream_inference_output_cost: cost.completion,
        },
    })
    .unwrap_or(Value::Null)
}

/// Item ids of one answer.
struct Ids {
    reasoning: String,
    message: String,
    call: String,
}

impl Ids {
    fn new() -> Self {
        Ids {
            reasoning: format!("rs_{}", random_suffix(24)),
            message: format!("msg_{}", random_suffix(24)),
            call: format!("fc_{}", random_suffix(24)),
        }
    }
}

fn reasoning_item(ids: &Ids, text: &str) -> Value {
    json!({"type": "reasoning", "id": ids.reasoning, "summary": [],
           "content": [{"type": "reasoning_text", "text": text}]})
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

fn message_item(ids: &Ids, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": ids.message, "role": "assistant", "status": status,
           "content": [text_part(text)]})
}

fn call_item(ids: &Ids, name: &str, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": ids.call,
           "call_id": format!("call_{}", &ids.call[3..]), "name": name,
           "arguments": arguments, "status": status})
}

/// The response object.
struct ResponseView<'a> {
    id: &'a str,
    created: DateTime<Utc>,
    model: &'a str,
    max_output_tokens: Option<u64>,
}

impl ResponseView<'_> {
    fn render(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Value,
        error: Value,
        completed_at: Option<i64>,
    ) -> Value {
        let incomplete = (status == "incomplete").then(|| json!({"reason": "max_output_tokens"}));
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created.timestamp(),
            "completed_at": completed_at,
            "model": self.model,
            "status": status,
            "error": error,
            "incomplete_details": incomplete,
            "output": output,
            "max_output_tokens": self.max_output_tokens,
            "parallel_tool_calls": true,
            "store": false,
            "usage": usage,
        })
    }
}

fn status_of(t: &Tokens) -> &'static str {
    if t.hit_limit() {
        "incomplete"
    } else {
        "completed"
    }
}

/// `POST /responses` (inference key).
pub(crate) async fn responses(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let plan = plan(&shared, &headers, &body);
    let adm = admit(&shared, &headers, plan)?;
    let model = adm.model(&shared);
    let tokens = tokens_for(&adm.plan, model);
    let max_output_tokens = adm.plan.max_tokens;
    if adm.plan.stream {
        let setup = adm.into_stream(&shared, &headers, tokens, started, RESPONSES_PATH);
        return Ok(sse_response(
            setup,
            ResponsesFormat {
                seq: 0,
                ids: Ids::new(),
                max_output_tokens,
                reasoning: String::new(),
                text: String::new(),
                output: Vec::new(),
            },
        ));
    }
    let seed = adm.plan.prompt.seed;
    let now = adm.now;
    let tool = adm.plan.forced_tool.clone();
    let billed = adm.bill_now(&shared, &headers, tokens, ApiType::Completions, started)?;
    let (text, reasoning) = answer_texts(seed, &tokens);
    let ids = Ids::new();
    let status = status_of(&tokens);
    let mut output = Vec::with_capacity(2);
    if let Some(r) = reasoning {
        output.push(reasoning_item(&ids, &r));
    }
    match &tool {
        Some(name) => output.push(call_item(&ids, name, "{}", "completed")),
        None => output.push(message_item(&ids, &text, status)),
    }
    let view = ResponseView {
        id: &billed.id,
        created: now,
        model: &model.id,
        max_output_tokens,
    };
    let out = view.render(
        status,
        output,
        usage(&billed.tokens, &billed.cost),
        Value::Null,
        Some(shared.clock_now_ts()),
    );
    Ok(json_with_id(out.to_string().into_bytes(), &billed.id))
}

/// The Responses event stream.
struct ResponsesFormat {
    seq: u64,
    ids: Ids,
    max_output_tokens: Option<u64>,
    reasoning: String,
    text: String,
    /// Items completed so far.
    output: Vec<Value>,
}

impl ResponsesFormat {
    fn event(&mut self, out: &mut String, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        push_event(out, kind, &data.to_string());
    }

    fn view<'a>(&self, s: &'a StreamSetup) -> ResponseView<'a> {
        ResponseView {
            id: &s.id,
            created: s.created,
            model: &s.model().id,
            max_output_tokens: self.max_output_tokens,
        }
    }

    /// Closes the reasoning item if one is open.
    fn close_reasoning(&mut self, out: &mut String) {
        if self.reasoning.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.reasoning);
        let id = self.ids.reasoning.clone();
        self.event(
            out,
            "response.reasoning_text.done",
            json!({"item_id": id, "output_index": 0, "content_index": 0, "text": text}),
        );
        let item = reasoning_item(&self.ids, &text);
        self.event(
            out,
            "response.output_item.done",
            json!({"output_index": 0, "item": item}),
        );
        self.output.push(item);
    }
}

impl SseFormat for ResponsesFormat {
    fn open(&mut self, s: &StreamSetup) -> Option<Bytes> {
        let mut out = String::new();
        let r = self
            .view(s)
            .render("in_progress", vec![], Value::Null, Value::Null, None);
        self.event(&mut out, "response.created", json!({"response": r}));
        self.event(&mut out, "response.in_progress", json!({"response": r}));
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
        let id = self.ids.reasoning.clone();
        if i == 0 {
            self.event(
                &mut out,
                "response.output_item.added",
                json!({"output_index": 0, "item": {"type": "reasoning", "id": id, "summary": []}}),
            );
        }
        self.reasoning.push_str(text);
        self.event(
            &mut out,
            "response.reasoning_text.delta",
            json!({"item_id": id, "output_index": 0, "content_index": 0, "delta": text}),
        );
        Bytes::from(out)
    }

    fn content(&mut self, s: &StreamSetup, i: u64, text: &str, last: bool) -> Bytes {
        let mut out = String::new();
        if i == 0 {
            self.close_reasoning(&mut out);
        }
        let index = self.output.len();
        match &s.forced_tool {
            Some(name) => {
                let id = self.ids.call.clone();
                let added = call_item(&self.ids, name, "", "in_progress");
                self.event(
                    &mut out,
                    "response.output_item.added",
                    json!({"output_index": index, "item": added}),
                );
                self.event(
                    &mut out,
                    "response.function_call_arguments.delta",
                    json!({"item_id": id, "output_index": index, "delta": "{}"}),
                );
                self.event(
                    &mut out,
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "arguments": "{}"}),
                );
                let item = call_item(&self.ids, name, "{}", "completed");
                self.event(
                    &mut out,
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                );
                self.output.push(item);
            }
            None => {
                let id = self.ids.message.clone();
                if i == 0 {
                    let mut added = message_item(&self.ids, "", "in_progress");
                    added["content"] = json!([]);
                    self.event(
                        &mut out,
                        "response.output_item.added",
                        json!({"output_index": index, "item": added}),
                    );
                    self.event(
                        &mut out,
                        "response.content_part.added",
                        json!({"item_id": id, "output_index": index, "content_index": 0,
                               "part": text_part("")}),
                    );
                }
                if !text.is_empty() {
                    self.text.push_str(text);
                    self.event(
                        &mut out,
                        "response.output_text.delta",
                        json!({"item_id": id, "output_index": index, "content_index": 0,
                               "delta": text}),
                    );
                }
                if last {
                    let full = std::mem::take(&mut self.text);
                    self.event(
                        &mut out,
                        "response.output_text.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0,
                               "text": full}),
                    );
                    self.event(
                        &mut out,
                        "response.content_part.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0,
                               "part": text_part(&full)}),
                    );
                    let item = message_item(&self.ids, &full, status_of(&s.tokens));
                    self.event(
                        &mut out,
                        "response.output_item.done",
                        json!({"output_index": index, "item": item}),
                    );
                    self.output.push(item);
                }
            }
        }
        Bytes::from(out)
    }

    fn finish(&mut self, s: &StreamSetup, p: &Produced) -> Bytes {
        let mut out = String::new();
        let status = status_of(&s.tokens);
        let r = self.view(s).render(
            status,
            std::mem::take(&mut self.output),
            usage(&p.tokens, &p.cost),
            Value::Null,
            Some(s.shared.clock_now_ts()),
        );
        let kind = if status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.event(&mut out, kind, json!({"response": r}));
        Bytes::from(out)
    }

    fn error(&mut self, s: &StreamSetup, code: u16, message: &str, p: &Produced) -> Bytes {
        let mut out = String::new();
        let error_code = match code {
            429 => "rate_limit_exceeded",
            400 => "invalid_prompt",
            _ => "server_error",
        };
        let r = self.view(s).render(
            "failed",
            std::mem::take(&mut self.output),
            usage(&p.tokens, &p.cost),
            json!({"code": error_code, "message": message}),
            None,
        );
        self.event(&mut out, "response.failed", json!({"response": r}));
        Bytes::from(out)
    }
}
