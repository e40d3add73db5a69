//! OpenAI chat completions (`POST /v1/chat/completions`), OpenRouter's native format.
//!
//! Request: only `model`, `messages`, `stream`, `max_tokens`/`max_completion_tokens`, `n` and
//! `stream_options` are decoded. Answer: `id`, `model`, `provider` and `usage` (with `cost`)
//! are read from the bytes; a stream's last chunk before `[DONE]` carries the usage, and is
//! removed unless the client asked for it. Legacy completions share the answer and stream
//! format ([`super::completions`]).

use orteam_core::Money;
use serde::Deserialize;

use super::json::{self, Members, RequestError, Rewrite};
use super::routing::Routing;
use super::{Billed, CompletionInfo, SseEvent, StreamError, StreamState, Wire, WireRequest};

/// Parses and validates a chat completion body.
pub fn parse(body: &[u8]) -> Result<WireRequest<'_>, RequestError> {
    let members = Members::parse(body)?;
    let mut routing = Routing::default();
    let mut model = None;
    let mut stream = false;
    let mut max_tokens = None;
    let mut max_completion_tokens = None;
    let mut wants_usage = false;
    let mut has_messages = false;
    let mut choices = 1;
    for (key, raw) in members.iter() {
        match key {
            "model" => model = Some(json::non_empty_string(raw, "model")?),
            "messages" => {
                json::object_array(raw, "messages")?;
                has_messages = true;
            }
            "stream" => stream = json::boolean(raw, "stream")?,
            "max_tokens" => max_tokens = json::token_count(raw, "max_tokens")?,
            "max_completion_tokens" => {
                max_completion_tokens = json::token_count(raw, "max_completion_tokens")?
            }
            "n" => choices = json::token_count(raw, "n")?.unwrap_or(1),
            "stream_options" => wants_usage = stream_usage_requested(raw)?,
            _ => routing.inspect(key, raw)?,
        }
    }
    let model = model.ok_or_else(|| RequestError::new("`model` is required", Some("model")))?;
    if !has_messages {
        return Err(RequestError::new(
            "`messages` is required",
            Some("messages"),
        ));
    }
    Ok(WireRequest {
        wire: Wire::Chat,
        members,
        model,
        stream,
        max_output: max_completion_tokens.or(max_tokens),
        // Every byte of the body: upstream bills `tools`, `response_format` schemas and the
        // like as prompt tokens too, and the JSON syntax around each message outweighs the
        // chat template's special tokens.
        prompt_bound: body.len() as u64,
        choices,
        generates: true,
        client_wants_stream_usage: wants_usage,
        thinking_budget: None,
        routing,
        media: Default::default(),
    })
}

/// `stream_options.include_usage`.
pub(super) fn stream_usage_requested(
    raw: &serde_json::value::RawValue,
) -> Result<bool, RequestError> {
    #[derive(Deserialize)]
    struct StreamOptions {
        #[serde(default)]
        include_usage: Option<bool>,
    }
    let o: Option<StreamOptions> = json::decode(raw, "stream_options", "an object")?;
    Ok(o.and_then(|o| o.include_usage).unwrap_or(false))
}

/// Sets `max_tokens` (in place of `max_completion_tokens` too) and
/// `stream_options.include_usage` (always on for streams, so the final chunk carries the cost).
pub fn rewrite(r: &WireRequest<'_>, max_tokens: u64, rw: &mut Rewrite) {
    rw.remove("max_completion_tokens")
        .set("max_tokens", max_tokens.to_string());
    if r.stream {
        rw.set("stream_options", &br#"{"include_usage":true}"#[..]);
    }
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default, with = "orteam_core::money::json_number::option")]
    cost: Option<Money>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WireCompletion {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize)]
pub(super) struct WireError {
    #[serde(default)]
    pub code: serde_json::Value,
    #[serde(default)]
    pub message: Option<String>,
}

impl From<WireUsage> for Billed {
    fn from(u: WireUsage) -> Self {
        Billed {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            reasoning_tokens: u
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
            cached_tokens: u
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_write_tokens: u
                .prompt_tokens_details
                .and_then(|d| d.cache_write_tokens)
                .unwrap_or(0),
            cost: u.cost,
        }
    }
}

/// Reads a non-stream answer (chat, legacy completions and embeddings share these fields).
pub fn read_answer(body: &[u8]) -> Option<CompletionInfo> {
    let w: WireCompletion = serde_json::from_slice(body).ok()?;
    Some(CompletionInfo {
        generation_id: w.id,
        model: w.model,
        provider: w.provider,
        usage: w.usage.map(Billed::from),
    })
}

/// `data:` chunks; the last one before `[DONE]` has `usage` with the cost.
pub fn inspect_event(state: &mut StreamState, event: &SseEvent<'_>, forward_usage: bool) -> bool {
    let data = event.data;
    if data == b"[DONE]" {
        state.done = true;
        return true;
    }
    // Content chunks are most of a stream and carry nothing the gateway needs once the
    // generation id is known: decode only the first chunk and those that can hold the usage or
    // an error (the test is a superset, the decode decides).
    if state.info.generation_id.is_some()
        && !json::contains(data, b"\"usage\"")
        && !json::contains(data, b"\"error\"")
    {
        state.chunks += 1;
        return true;
    }
    let Ok(chunk) = serde_json::from_slice::<WireCompletion>(data) else {
        return true;
    };
    if state.info.generation_id.is_none() {
        state.info.generation_id = chunk.id;
        state.info.model = chunk.model;
        state.info.provider = chunk.provider;
    }
    if let Some(err) = chunk.error {
        state.error = Some(StreamError::from_code(err.code, err.message));
    }
    match chunk.usage.map(Billed::from) {
        Some(billed) if billed.cost.is_some() => {
            state.info.usage = Some(billed);
            forward_usage
        }
        _ => {
            state.chunks += 1;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseScanner;

    #[test]
    fn parses_the_fields_we_need() {
        let body = br#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":50,"temperature":0.2,"stream":true}"#;
        let r = parse(body).unwrap();
        assert_eq!(r.model, "openai/gpt-4o");
        assert!(r.stream);
        assert_eq!(r.max_output, Some(50));
        assert!(!r.client_wants_stream_usage);
        assert_eq!(r.prompt_bound as usize, body.len());
    }

    #[test]
    fn rewrites_only_what_it_must() {
        let body = br#"{"model":"a/b","messages":[{"role":"user","content":"hi \"x\""}],"max_completion_tokens":500,"temperature":0.2,"user":"spoofed","stream":true}"#;
        let r = parse(body).unwrap();
        let out = r.upstream_body_in_tests("a/c", 40, "alice");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "a/c");
        assert_eq!(v["max_tokens"], 40);
        assert!(v.get("max_completion_tokens").is_none());
        assert_eq!(v["user"], "alice");
        assert_eq!(v["temperature"], 0.2);
        assert_eq!(v["messages"][0]["content"], "hi \"x\"");
        assert_eq!(v["stream_options"]["include_usage"], true);
    }

    #[test]
    fn bad_bodies_are_named() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"not json", None),
            (b"[1,2]", None),
            (
                br#"{"messages":[{"role":"user","content":"x"}]}"#,
                Some("model"),
            ),
            (br#"{"model":"a/b"}"#, Some("messages")),
            (br#"{"model":"a/b","messages":[]}"#, Some("messages")),
            (br#"{"model":"a/b","messages":"hi"}"#, Some("messages")),
            (br#"{"model":7,"messages":[{}]}"#, Some("model")),
            (
                br#"{"model":"a/b","messages":[{}],"max_tokens":-1}"#,
                Some("max_tokens"),
            ),
            (
                br#"{"model":"a/b","messages":[{}],"max_tokens":1.5}"#,
                Some("max_tokens"),
            ),
            (
                br#"{"model":"a/b","messages":[{}],"max_tokens":0}"#,
                Some("max_tokens"),
            ),
            (
                br#"{"model":"a/b","messages":[{}],"stream":"yes"}"#,
                Some("stream"),
            ),
            (br#"{"model":"a/b","messages":[{}],"n":0}"#, Some("n")),
        ];
        for (body, param) in cases {
            let e = parse(body).unwrap_err();
            assert_eq!(e.param, *param, "{}", String::from_utf8_lossy(body));
        }
    }

    const DOC_EXAMPLE: &str = r#"{"id":"gen-1755147565-0ZSd3QOT6JSpDk5OV1Tl","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion",
 "created":1755147565,"system_fingerprint":null,"choices":[{"index":0,"logprobs":null,"finish_reason":"stop",
 "native_finish_reason":"stop","message":{"role":"assistant","content":"Hello!","refusal":null,"reasoning":null}}],
 "usage":{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14,"cost":0.00014,"is_byok":false,
 "prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":0,"audio_tokens":0},
 "completion_tokens_details":{"reasoning_tokens":0},"cost_details":{"upstream_inference_cost":null,
 "upstream_inference_prompt_cost":0.0001,"upstream_inference_completions_cost":0.00004}}}"#;

    #[test]
    fn reads_the_bill_of_a_completion() {
        let info = read_answer(DOC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(
            info.generation_id.as_deref(),
            Some("gen-1755147565-0ZSd3QOT6JSpDk5OV1Tl")
        );
        assert_eq!(info.provider.as_deref(), Some("OpenAI"));
        let u = info.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (10, 4));
        assert_eq!(u.cost, Some(Money::parse("0.00014").unwrap()));
    }

    fn stream() -> Vec<u8> {
        let mut s = String::from(": OPENROUTER PROCESSING\n\n");
        s += r#"data: {"id":"gen-1","model":"m/x","provider":"P","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#;
        s += "\n\n";
        s += r#"data: {"id":"gen-1","model":"m/x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#;
        s += "\n\n";
        s += r#"data: {"id":"gen-1","model":"m/x","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9,"cost":0.0000123456789,"completion_tokens_details":{"reasoning_tokens":1}}}"#;
        s += "\n\ndata: [DONE]\n\n";
        s.into_bytes()
    }

    #[test]
    fn scans_a_stream_split_anywhere() {
        let bytes = stream();
        for split in [1usize, 3, 7, 50, bytes.len()] {
            let mut scanner = SseScanner::new(Wire::Chat, false);
            let mut forwarded = Vec::new();
            for piece in bytes.chunks(split) {
                forwarded.extend_from_slice(&scanner.feed(piece));
            }
            forwarded.extend_from_slice(&scanner.finish());
            assert!(scanner.state.done);
            assert_eq!(scanner.state.info.generation_id.as_deref(), Some("gen-1"));
            let u = scanner.state.info.usage.clone().unwrap();
            assert_eq!(u.cost, Some(Money::parse("0.0000123456789").unwrap()));
            assert_eq!(u.reasoning_tokens, 1);
            let text = String::from_utf8(forwarded).unwrap();
            assert!(!text.contains("\"usage\""), "usage chunk stripped");
            assert!(text.contains("Hel") && text.ends_with("data: [DONE]\n\n"));
        }
    }

    #[test]
    fn keeps_the_usage_chunk_when_asked_and_sees_errors() {
        let mut scanner = SseScanner::new(Wire::Chat, true);
        let out = scanner.feed(&stream());
        assert!(String::from_utf8_lossy(&out).contains("\"usage\""));
        let mut scanner = SseScanner::new(Wire::Chat, false);
        let err = br#"data: {"id":"gen-2","object":"chat.completion.chunk","error":{"code":502,"message":"Provider returned error"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}

"#;
        let out = scanner.feed(err);
        assert_eq!(out.len(), err.len());
        assert_eq!(scanner.state.error.as_ref().unwrap().code, "502");
        assert!(!scanner.state.done);
    }
}
