//! OpenAI Responses (`POST /v1/responses`), as Codex CLI and the OpenAI SDKs speak it and
//! OpenRouter serves it (stateless: `store` must be false, `previous_response_id` null;
//! upstream says so itself when a client gets it wrong).
//!
//! Request: `model`, `input`, `max_output_tokens` and `stream` are decoded; the whole body
//! bounds the prompt (instructions, tools and the full history in `input` are all billed
//! input). The clamp lowers `max_output_tokens` (Codex sends none: the gateway sets one).
//!
//! Answer: `usage` with `cost` in the body, and in a stream in the terminal event
//! (`response.completed`, `response.incomplete` or `response.failed`), whose `response` is the
//! whole response object. Token counts are already in OpenAI's terms.

use orteam_core::Money;
use serde::Deserialize;

use super::json::{self, Members, RequestError, Rewrite};
use super::routing::Routing;
use super::{Billed, CompletionInfo, SseEvent, StreamError, StreamState, Wire, WireRequest};

pub fn parse(body: &[u8]) -> Result<WireRequest<'_>, RequestError> {
    let members = Members::parse(body)?;
    let mut routing = Routing::default();
    let mut model = None;
    let mut stream = false;
    let mut max_output = None;
    let mut has_input = false;
    for (key, raw) in members.iter() {
        match key {
            "model" => model = Some(json::non_empty_string(raw, "model")?),
            "input" => {
                json::string_or_array(raw, "input", "a string or an array of input items")?;
                has_input = true;
            }
            "stream" => stream = json::boolean(raw, "stream")?,
            "max_output_tokens" => max_output = json::token_count(raw, "max_output_tokens")?,
            _ => routing.inspect(key, raw)?,
        }
    }
    let model = model.ok_or_else(|| RequestError::new("`model` is required", Some("model")))?;
    if !has_input {
        return Err(RequestError::new("`input` is required", Some("input")));
    }
    Ok(WireRequest {
        wire: Wire::Responses,
        members,
        model,
        stream,
        max_output,
        prompt_bound: body.len() as u64,
        choices: 1,
        generates: true,
        client_wants_stream_usage: true,
        thinking_budget: None,
        routing,
        media: Default::default(),
    })
}

/// Sets `max_output_tokens`. (`user`, set for every route, is the member id OpenRouter records
/// as the generation's user; `safety_identifier` passes through untouched.)
pub fn rewrite(max_output: u64, rw: &mut Rewrite) {
    rw.set("max_output_tokens", max_output.to_string());
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
    #[serde(default, with = "orteam_core::money::json_number::option")]
    cost: Option<Money>,
}

#[derive(Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for Billed {
    fn from(u: WireUsage) -> Self {
        let (cached, written) = u.input_tokens_details.map_or((0, 0), |d| {
            (
                d.cached_tokens.unwrap_or(0),
                d.cache_write_tokens.unwrap_or(0),
            )
        });
        Billed {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            reasoning_tokens: u
                .output_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
            cached_tokens: cached,
            cache_write_tokens: written,
            cost: u.cost,
        }
    }
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<super::chat::WireError>,
}

impl WireResponse {
    fn into_info(self, info: &mut CompletionInfo) -> Option<StreamError> {
        if self.id.is_some() {
            info.generation_id = self.id;
        }
        if self.model.is_some() {
            info.model = self.model;
        }
        if let Some(u) = self.usage {
            info.usage = Some(u.into());
        }
        self.error
            .map(|e| StreamError::from_code(e.code, e.message))
    }
}

pub fn read_answer(body: &[u8]) -> Option<CompletionInfo> {
    let w: WireResponse = serde_json::from_slice(body).ok()?;
    let mut info = CompletionInfo::default();
    let _ = w.into_info(&mut info);
    Some(info)
}

#[derive(Deserialize)]
struct WireEvent {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    response: Option<WireResponse>,
    #[serde(default)]
    code: serde_json::Value,
    #[serde(default)]
    message: Option<String>,
}

const TERMINAL: [&[u8]; 3] = [
    b"response.completed",
    b"response.incomplete",
    b"response.failed",
];

pub fn inspect_event(state: &mut StreamState, event: &SseEvent<'_>) -> bool {
    if let Some(name) = event.name
        && name != b"response.created"
        && name != b"error"
        && !TERMINAL.contains(&name)
    {
        state.chunks += 1;
        return true;
    }
    if event.data == b"[DONE]" {
        return true;
    }
    let Ok(ev) = serde_json::from_slice::<WireEvent>(event.data) else {
        return true;
    };
    match ev.kind.as_str() {
        "response.created" => {
            if let Some(r) = ev.response {
                let _ = r.into_info(&mut state.info);
            }
        }
        "response.completed" | "response.incomplete" | "response.failed" => {
            if let Some(r) = ev.response
                && let Some(err) = r.into_info(&mut state.info)
            {
                state.error = Some(err);
            }
            if ev.kind == "response.failed" && state.error.is_none() {
                state.error = Some(StreamError {
                    code: "response.failed".into(),
                    message: String::new(),
                });
            }
            state.done = true;
        }
        "error" => state.error = Some(StreamError::from_code(ev.code, ev.message)),
        _ => state.chunks += 1,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseScanner;

    #[test]
    fn parses_and_rewrites() {
        let body = br#"{"model":"openai/gpt-5.1-codex","instructions":"be brief","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}],"tools":[],"store":false,"stream":true,"user":"spoof","safety_identifier":"s"}"#;
        let r = parse(body).unwrap();
        assert_eq!(r.max_output, None);
        assert!(r.stream);
        let v: serde_json::Value =
            serde_json::from_slice(&r.upstream_body_in_tests("openai/gpt-5.1-codex", 900, "alice"))
                .unwrap();
        assert_eq!(v["max_output_tokens"], 900);
        assert_eq!(v["user"], "alice");
        assert_eq!(v["safety_identifier"], "s");
        assert_eq!(v["store"], false);
        for (body, param) in [
            (&br#"{"input":"x"}"#[..], "model"),
            (br#"{"model":"a/b"}"#, "input"),
            (br#"{"model":"a/b","input":5}"#, "input"),
            (
                br#"{"model":"a/b","input":"x","max_output_tokens":0}"#,
                "max_output_tokens",
            ),
        ] {
            assert_eq!(parse(body).unwrap_err().param, Some(param));
        }
    }

    #[test]
    fn reads_usage_from_the_body_and_the_terminal_event() {
        let body = br#"{"id":"gen-5","object":"response","model":"openai/gpt-4o-mini","status":"completed","output":[],"usage":{"input_tokens":1200,"input_tokens_details":{"cached_tokens":1024},"output_tokens":300,"output_tokens_details":{"reasoning_tokens":128},"total_tokens":1500,"cost":0.0042}}"#;
        let u = read_answer(body).unwrap().usage.unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.cached_tokens,
                u.completion_tokens,
                u.reasoning_tokens
            ),
            (1200, 1024, 300, 128)
        );
        assert_eq!(u.cost, Some(Money::parse("0.0042").unwrap()));

        let s = concat!(
            "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"gen-6\",\"model\":\"m/x\",\"status\":\"in_progress\",\"usage\":null}}\n\n",
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"Hi\"}\n\n",
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"gen-6\",\"model\":\"m/x\",\"status\":\"completed\",\"usage\":{\"input_tokens\":5,\"output_tokens\":2,\"total_tokens\":7,\"cost\":0.000001}}}\n\n",
        );
        let mut scanner = SseScanner::new(Wire::Responses, false);
        let out = scanner.feed(s.as_bytes());
        assert_eq!(out.len(), s.len());
        assert!(scanner.state.done && scanner.state.error.is_none());
        assert_eq!(scanner.state.info.generation_id.as_deref(), Some("gen-6"));
        assert_eq!(
            scanner.state.info.cost(),
            Some(Money::parse("0.000001").unwrap())
        );
    }
}
