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
use serde_json::Value;
use serde_json::value::RawValue;

use crate::completions::{MAX_N, choice_seed};
use crate::error::ApiError;
use crate::extract::{RawBody, parse_json};
use crate::inference::{
    BStr, CostParts, Plan, PromptCounter, PromptInfo, Tokens, admit, answer_texts, bad,
    content_word, parse_max_tokens, random_suffix, resolve_models, session_id, tokens_for, words,
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
    #[serde(default)]
    tools: Option<Value>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    response_format: Option<Value>,
    #[serde(borrow, default)]
    n: Option<&'a RawValue>,
    #[serde(default)]
    stop: Option<Value>,
}

/// What a chat answer is made of.
#[derive(Debug, Clone, Default)]
enum Answer {
    /// Words (the default).
    #[default]
    Text,
    /// `response_format: {"type":"json_object"}`: a JSON object holding the words.
    JsonObject,
    /// `response_format: {"type":"json_schema"}`: a value of that schema.
    JsonSchema(Value),
    /// A forced `tool_choice`: one call of the tool, arguments valid for its parameters.
    Tool { name: String, parameters: Value },
}

/// Chat's own request options, beside the [`Plan`] every route shares.
#[derive(Debug, Clone, Default)]
struct ChatOptions {
    answer: Answer,
    stop: Vec<String>,
}

/// The forced tool of `tool_choice` (`"required"` → the first tool; `{"type":"function",
/// "function":{"name":X}}` → X), with its parameters schema; `None` for auto/none/absent.
fn forced_tool(choice: Option<&Value>, tools: Option<&Value>) -> Result<Option<Answer>, ApiError> {
    let tools: &[Value] = match tools {
        None | Some(Value::Null) => &[],
        Some(Value::Array(t)) => t,
        Some(_) => return Err(bad("Invalid request parameters: tools must be an array")),
    };
    let function = |t: &Value| -> Option<(String, Value)> {
        let f = t.get("function")?;
        let name = f.get("name")?.as_str()?.to_owned();
        let params = f
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({"type":"object"}));
        Some((name, params))
    };
    let name = match choice {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(c)) if c == "auto" || c == "none" => return Ok(None),
        Some(Value::String(c)) if c == "required" => None,
        Some(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("function") => {
            Some(
                o.get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad("Invalid request parameters: tool_choice.function.name is required")
                    })?
                    .to_owned(),
            )
        }
        Some(_) => {
            return Err(bad(
                "Invalid request parameters: tool_choice must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":…}}",
            ));
        }
    };
    let found = match &name {
        None => tools.iter().find_map(function),
        Some(n) => tools.iter().filter_map(function).find(|(t, _)| t == n),
    };
    match found {
        Some((name, parameters)) => Ok(Some(Answer::Tool { name, parameters })),
        None => Err(bad(match name {
            None => "Invalid request parameters: tool_choice \"required\" needs at least one function tool".to_owned(),
            Some(n) => format!("Invalid request parameters: tool_choice names {n:?}, which is not among tools"),
        })),
    }
}

fn response_format(raw: Option<&Value>) -> Result<Answer, ApiError> {
    let Some(rf) = raw.filter(|v| !v.is_null()) else {
        return Ok(Answer::Text);
    };
    match rf.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Answer::Text),
        Some("json_object") => Ok(Answer::JsonObject),
        Some("json_schema") => rf
            .get("json_schema")
            .and_then(|j| j.get("schema"))
            .cloned()
            .map(Answer::JsonSchema)
            .ok_or_else(|| {
                bad("Invalid request parameters: response_format.json_schema.schema is required")
            }),
        _ => Err(bad(
            "Invalid request parameters: response_format.type must be one of text, json_object, json_schema",
        )),
    }
}

/// `stop`: a string or up to 4 strings.
fn stop_sequences(raw: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let list = match raw {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                bad("Invalid request parameters: stop must be a string or an array of strings")
            })?,
        Some(_) => {
            return Err(bad(
                "Invalid request parameters: stop must be a string or an array of strings",
            ));
        }
    };
    if list.len() > 4 {
        return Err(bad(
            "Invalid request parameters: stop holds at most 4 sequences",
        ));
    }
    Ok(list.into_iter().filter(|s| !s.is_empty()).collect())
}

/// Ends a text answer before its first stop sequence: only words wholly before it remain.
fn apply_stop(tokens: &mut Tokens, seed: u64, stop: &[String]) {
    if stop.is_empty() {
        return;
    }
    let text = words(tokens.content(), |i| content_word(seed, i));
    let Some(pos) = stop.iter().filter_map(|s| text.find(s.as_str())).min() else {
        return;
    };
    let mut end = 0;
    let mut kept = 0;
    for w in text.split(' ') {
        if end + w.len() > pos {
            break;
        }
        end += w.len() + 1;
        kept += 1;
    }
    tokens.completion = tokens.reasoning + kept;
    tokens.finish_reason = "stop";
}

/// Choice `k`'s content for a text or JSON answer (`None` for a tool call).
fn choice_content(opts: &ChatOptions, tokens: &Tokens, seed: u64, k: u64) -> Option<String> {
    let seed = choice_seed(seed, k);
    let words_text = || words(tokens.content(), |i| content_word(seed, i));
    let json = match &opts.answer {
        Answer::Text => return Some(words_text()),
        Answer::Tool { .. } => return None,
        Answer::JsonObject => serde_json::json!({ "answer": words_text() }).to_string(),
        Answer::JsonSchema(schema) => crate::schema::sample(schema, seed).to_string(),
    };
    Some(cut_if_limited(json, tokens))
}

/// An answer cut by `max_tokens` is cut mid-text, as a real model's would be (about four bytes
/// per token), so a JSON answer that hit the limit does not parse.
fn cut_if_limited(mut text: String, tokens: &Tokens) -> String {
    if tokens.hit_limit() {
        let mut at = usize::try_from(tokens.content().saturating_mul(4)).unwrap_or(usize::MAX);
        if at < text.len() {
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.truncate(at);
        }
    }
    text
}

/// Choice `k`'s tool call, if the answer is one.
fn choice_tool_call(opts: &ChatOptions, seed: u64, k: u64) -> Option<ToolCallOut> {
    match &opts.answer {
        Answer::Tool { name, parameters } => Some(ToolCallOut {
            id: format!("call_{}", random_suffix(24)),
            kind: "function",
            function: FunctionOut {
                name: name.clone(),
                arguments: crate::schema::sample(parameters, choice_seed(seed, k)).to_string(),
            },
        }),
        _ => None,
    }
}

#[derive(Serialize)]
struct ToolCallOut {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut,
}

#[derive(Serialize)]
struct FunctionOut {
    name: String,
    arguments: String,
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

fn plan(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Plan, ChatOptions), ApiError> {
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
    plan.choices = match parse_max_tokens(req.n, "n")? {
        Some(0) => return Err(bad("Invalid request parameters: n must be at least 1")),
        Some(n) if n > MAX_N => {
            return Err(bad(format!(
                "Invalid request parameters: n must be at most {MAX_N}"
            )));
        }
        Some(n) => n,
        None => 1,
    };
    let answer = match forced_tool(req.tool_choice.as_ref(), req.tools.as_ref())? {
        Some(tool) => tool,
        None => response_format(req.response_format.as_ref())?,
    };
    if let Answer::Tool { name, .. } = &answer {
        plan.forced_tool = Some(name.clone());
    }
    let opts = ChatOptions {
        answer,
        stop: stop_sequences(req.stop.as_ref())?,
    };
    Ok((plan, opts))
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
    content: Option<String>,
    refusal: Option<()>,
    reasoning: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallOut; 1]>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u64,
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
    choices: Vec<ChoiceOut<'a>>,
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
    // Authentication and pre-checks come before request validation (`admit` orders them).
    let (plan, opts) = match plan(&shared, &headers, &body) {
        Ok((p, o)) => (Ok(p), o),
        Err(e) => (Err(e), ChatOptions::default()),
    };
    let adm = admit(&shared, &headers, plan)?;
    let model = adm.model(&shared);
    let mut tokens = tokens_for(&adm.plan, model);
    if matches!(opts.answer, Answer::Text) {
        apply_stop(&mut tokens, adm.plan.prompt.seed, &opts.stop);
    }
    if adm.plan.stream {
        let setup = adm.into_stream(&shared, &headers, tokens, started, CHAT_PATH);
        return Ok(chat_stream(setup, opts));
    }
    let n = adm.plan.choices;
    let created = adm.now.timestamp();
    let seed = adm.plan.prompt.seed;
    let endpoint = adm.sel.endpoint;
    let billed = adm.bill_now(&shared, &headers, tokens, ApiType::Completions, started)?;
    let (_, reasoning) = answer_texts(seed, &tokens);
    let usage = UsageOut::of(&billed.tokens, &billed.cost);
    let out = CompletionOut {
        id: &billed.id,
        provider: &model.endpoints[endpoint].provider_name,
        model: &model.id,
        object: "chat.completion",
        created,
        system_fingerprint: None,
        choices: (0..n)
            .map(|k| ChoiceOut {
                index: k,
                logprobs: None,
                finish_reason: tokens.finish_reason,
                native_finish_reason: tokens.finish_reason,
                message: MessageOut {
                    role: "assistant",
                    content: choice_content(&opts, &tokens, seed, k),
                    refusal: None,
                    reasoning: reasoning.as_deref(),
                    tool_calls: choice_tool_call(&opts, seed, k).map(|c| [c]),
                },
            })
            .collect(),
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
    opts: ChatOptions,
}

fn chat_stream(s: StreamSetup, opts: ChatOptions) -> Response {
    let head = chunk_head(&s, "chat.completion.chunk");
    sse_response(
        s,
        ChatFormat {
            head,
            first: true,
            opts,
        },
    )
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
        Bytes::from(self.choice_frame(0, delta, finish))
    }

    fn choice_frame(&self, index: u64, delta: &str, finish: Option<&str>) -> String {
        let finish = match finish {
            Some(f) => format!("\"{f}\""),
            None => "null".to_owned(),
        };
        data_frame(
            &self.head,
            &format!(
                "\"choices\":[{{\"index\":{index},\"delta\":{delta},\"finish_reason\":{finish},\"native_finish_reason\":{finish}}}]"
            ),
        )
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

    fn content_chunks(&self, s: &StreamSetup) -> u64 {
        match self.opts.answer {
            // A structured answer arrives whole, in one chunk per choice.
            Answer::Text => s.tokens.content().max(1),
            _ => 1,
        }
    }

    fn content(&mut self, s: &StreamSetup, i: u64, text: &str, last: bool) -> Bytes {
        let role = self.delta_start();
        let finish = last.then_some(s.tokens.finish_reason);
        let mut out = String::new();
        for k in 0..s.choices {
            let mut delta = role.clone();
            match &self.opts.answer {
                Answer::Text => {
                    let word = if k == 0 || text.is_empty() {
                        text.to_owned()
                    } else {
                        let w = content_word(choice_seed(s.seed, k), i);
                        if i == 0 {
                            w.to_owned()
                        } else {
                            format!(" {w}")
                        }
                    };
                    delta.push_str("\"content\":");
                    push_json_str(&mut delta, &word);
                }
                Answer::Tool { .. } => {
                    let call = choice_tool_call(&self.opts, s.seed, k)
                        .and_then(|c| serde_json::to_value(c).ok())
                        .map(|mut c| {
                            c["index"] = 0.into();
                            c.to_string()
                        })
                        .unwrap_or_default();
                    delta.push_str("\"content\":null,\"tool_calls\":[");
                    delta.push_str(&call);
                    delta.push(']');
                }
                Answer::JsonObject | Answer::JsonSchema(_) => {
                    let content =
                        choice_content(&self.opts, &s.tokens, s.seed, k).unwrap_or_default();
                    delta.push_str("\"content\":");
                    push_json_str(&mut delta, &content);
                }
            }
            delta.push('}');
            out.push_str(&self.choice_frame(k, &delta, finish));
        }
        Bytes::from(out)
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
