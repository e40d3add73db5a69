//! Anthropic Messages (`POST /v1/messages`), as Claude Code and the Anthropic SDKs speak it and
//! OpenRouter serves it at `/api/v1/messages`.
//!
//! Request: `model`, `messages`, `max_tokens`, `stream` and `thinking` are decoded; the whole
//! body bounds the prompt (system prompt, tools and messages are all billed input). The clamp
//! lowers `max_tokens`, and a thinking budget that no longer fits under it is lowered too (or
//! thinking is turned off when not even Anthropic's minimum of 1,024 fits).
//!
//! Answer: `usage.cost` in a non-stream body (OpenRouter's addition). A stream carries the
//! input tokens in `message_start` and cumulative counts in each `message_delta`, but no cost
//! (OpenRouter's published schema has none there), so a streamed answer is settled from
//! `/generation` unless a cost does appear. `message_stop` ends the stream.
//!
//! Token counts are mapped to OpenAI's terms: prompt = input + cache writes + cache reads.

use orteam_core::Money;
use serde::Deserialize;

use super::json::{self, Members, RequestError, Rewrite};
use super::routing::Routing;
use super::{Billed, CompletionInfo, SseEvent, StreamError, StreamState, Wire, WireRequest};

/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u64 = 1024;

pub fn parse(body: &[u8]) -> Result<WireRequest<'_>, RequestError> {
    let members = Members::parse(body)?;
    let mut routing = Routing::default();
    let mut model = None;
    let mut stream = false;
    let mut max_tokens = None;
    let mut has_messages = false;
    let mut thinking_budget = None;
    for (key, raw) in members.iter() {
        match key {
            "model" => model = Some(json::non_empty_string(raw, "model")?),
            "messages" => {
                json::object_array(raw, "messages")?;
                has_messages = true;
            }
            "stream" => stream = json::boolean(raw, "stream")?,
            "max_tokens" => max_tokens = json::token_count(raw, "max_tokens")?,
            "thinking" => {
                #[derive(Deserialize)]
                struct Thinking {
                    #[serde(rename = "type")]
                    kind: String,
                    #[serde(default)]
                    budget_tokens: Option<u64>,
                }
                let t: Option<Thinking> = json::decode(raw, "thinking", "an object")?;
                if let Some(t) = t
                    && t.kind == "enabled"
                {
                    thinking_budget = t.budget_tokens;
                }
            }
            _ => routing.inspect(key, raw)?,
        }
    }
    let model = model.ok_or_else(|| RequestError::new("model: Field required", Some("model")))?;
    if !has_messages {
        return Err(RequestError::new(
            "messages: Field required",
            Some("messages"),
        ));
    }
    Ok(WireRequest {
        wire: Wire::Messages,
        members,
        model,
        stream,
        max_output: max_tokens,
        prompt_bound: body.len() as u64,
        choices: 1,
        generates: true,
        client_wants_stream_usage: true,
        thinking_budget,
        routing,
        media: Default::default(),
    })
}

/// Sets `max_tokens` and, when the clamp cut below it, `thinking`. (`user`, set for every
/// route, is OpenRouter's attribution field here; Claude Code's own `metadata.user_id` passes
/// through.)
pub fn rewrite(r: &WireRequest<'_>, max_tokens: u64, rw: &mut Rewrite) {
    rw.set("max_tokens", max_tokens.to_string());
    // The thinking budget must stay below max_tokens.
    if let Some(budget) = r.thinking_budget
        && budget >= max_tokens
    {
        let thinking = if max_tokens > MIN_THINKING_BUDGET {
            format!(
                r#"{{"type":"enabled","budget_tokens":{}}}"#,
                (max_tokens - 1).max(MIN_THINKING_BUDGET)
            )
        } else {
            r#"{"type":"disabled"}"#.to_owned()
        };
        rw.set("thinking", thinking);
    }
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default, with = "orteam_core::money::json_number::option")]
    cost: Option<Money>,
}

impl WireUsage {
    /// Folds these (cumulative) counts into what is known so far.
    fn merge_into(self, billed: &mut Option<Billed>, seen: &mut Seen) {
        let b = billed.get_or_insert_with(Billed::default);
        if let Some(n) = self.input_tokens {
            seen.input = n;
        }
        if let Some(n) = self.cache_creation_input_tokens {
            seen.cache_write = n;
        }
        if let Some(n) = self.cache_read_input_tokens {
            seen.cache_read = n;
        }
        if let Some(n) = self.output_tokens {
            b.completion_tokens = n;
        }
        b.prompt_tokens = seen.input + seen.cache_write + seen.cache_read;
        b.cached_tokens = seen.cache_read;
        b.cache_write_tokens = seen.cache_write;
        if self.cost.is_some() {
            b.cost = self.cost;
        }
    }
}

/// Anthropic's separate input counters, kept so cumulative updates replace rather than add.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    input: u64,
    cache_write: u64,
    cache_read: u64,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

pub fn read_answer(body: &[u8]) -> Option<CompletionInfo> {
    let w: WireMessage = serde_json::from_slice(body).ok()?;
    let mut usage = None;
    if let Some(u) = w.usage {
        u.merge_into(&mut usage, &mut Seen::default());
    }
    Some(CompletionInfo {
        generation_id: w.id,
        model: w.model,
        provider: w.provider,
        usage,
    })
}

#[derive(Deserialize)]
struct WireEvent {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<WireErrorBody>,
}

#[derive(Deserialize)]
struct WireErrorBody {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Events that can carry identity, usage, an error or the end; text deltas and pings are most
/// of a stream and are not decoded.
fn worth_decoding(name: &[u8]) -> bool {
    matches!(
        name,
        b"message_start" | b"message_delta" | b"message_stop" | b"error"
    )
}

pub fn inspect_event(state: &mut StreamState, event: &SseEvent<'_>) -> bool {
    if let Some(name) = event.name
        && !worth_decoding(name)
    {
        state.chunks += 1;
        return true;
    }
    let Ok(ev) = serde_json::from_slice::<WireEvent>(event.data) else {
        return true;
    };
    // The input counters seen so far live in the usage already recorded.
    let mut seen = state.info.usage.as_ref().map_or(Seen::default(), |b| Seen {
        input: b.prompt_tokens - b.cached_tokens - b.cache_write_tokens,
        cache_write: b.cache_write_tokens,
        cache_read: b.cached_tokens,
    });
    match ev.kind.as_str() {
        "message_start" => {
            if let Some(m) = ev.message {
                state.info.generation_id = m.id;
                state.info.model = m.model;
                state.info.provider = m.provider;
                if let Some(u) = m.usage {
                    u.merge_into(&mut state.info.usage, &mut seen);
                }
            }
        }
        "message_delta" => {
            if let Some(u) = ev.usage {
                u.merge_into(&mut state.info.usage, &mut seen);
            }
        }
        "message_stop" => state.done = true,
        "error" => {
            let e = ev.error.unwrap_or(WireErrorBody {
                kind: None,
                message: None,
            });
            state.error = Some(StreamError {
                code: e.kind.unwrap_or_else(|| "error".to_owned()),
                message: e.message.unwrap_or_default(),
            });
        }
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
        let body = br#"{"model":"anthropic/claude-sonnet-4.5","max_tokens":8192,"stream":true,"system":[{"type":"text","text":"be brief"}],"messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled","budget_tokens":4000},"metadata":{"user_id":"cc"}}"#;
        let r = parse(body).unwrap();
        assert_eq!(r.max_output, Some(8192));
        assert_eq!(r.thinking_budget, Some(4000));
        assert_eq!(r.prompt_bound, body.len() as u64);
        let v: serde_json::Value = serde_json::from_slice(&r.upstream_body_in_tests(
            "anthropic/claude-sonnet-4.5",
            2000,
            "alice",
        ))
        .unwrap();
        assert_eq!(v["max_tokens"], 2000);
        assert_eq!(v["thinking"]["budget_tokens"], 1999);
        assert_eq!(v["user"], "alice");
        assert_eq!(v["metadata"]["user_id"], "cc");
        assert_eq!(v["system"][0]["text"], "be brief");
        let v: serde_json::Value =
            serde_json::from_slice(&r.upstream_body_in_tests("a/b", 600, "alice")).unwrap();
        assert_eq!(v["thinking"]["type"], "disabled");
        let v: serde_json::Value =
            serde_json::from_slice(&r.upstream_body_in_tests("a/b", 8000, "alice")).unwrap();
        assert_eq!(
            v["thinking"]["budget_tokens"], 4000,
            "untouched when it fits"
        );
    }

    #[test]
    fn bad_bodies_are_named() {
        for (body, param) in [
            (
                &br#"{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#[..],
                "model",
            ),
            (br#"{"model":"a/b","max_tokens":5}"#, "messages"),
            (
                br#"{"model":"a/b","max_tokens":0,"messages":[{}]}"#,
                "max_tokens",
            ),
        ] {
            assert_eq!(parse(body).unwrap_err().param, Some(param));
        }
    }

    #[test]
    fn reads_the_bill_of_an_answer() {
        let body = br#"{"id":"gen-9","type":"message","role":"assistant","model":"anthropic/claude-sonnet-4.5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":30,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"cost":0.00051,"is_byok":false},"provider":"Anthropic"}"#;
        let info = read_answer(body).unwrap();
        assert_eq!(info.generation_id.as_deref(), Some("gen-9"));
        let u = info.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.cached_tokens, u.completion_tokens),
            (117, 100, 30)
        );
        assert_eq!(u.cost, Some(Money::parse("0.00051").unwrap()));
    }

    #[test]
    fn scans_a_stream() {
        let s = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"gen-7\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m/x\",\"provider\":\"Anthropic\",\"content\":[],\"usage\":{\"input_tokens\":20,\"output_tokens\":1}}}\n\n",
            "event: ping\ndata: {\"type\":\"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":12,\"input_tokens\":20}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let mut scanner = SseScanner::new(Wire::Messages, false);
        let mut out = Vec::new();
        for piece in s.as_bytes().chunks(13) {
            out.extend_from_slice(&scanner.feed(piece));
        }
        assert_eq!(out, s.as_bytes(), "everything is forwarded");
        let st = &scanner.state;
        assert!(st.done);
        assert_eq!(st.info.generation_id.as_deref(), Some("gen-7"));
        let u = st.info.usage.clone().unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (20, 12));
        assert_eq!(u.cost, None, "no cost in a Messages stream");
    }
}
