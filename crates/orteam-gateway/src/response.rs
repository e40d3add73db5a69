//! Reading what upstream billed, without re-serializing anything the client receives.
//!
//! - Non-stream: [`parse_completion`] reads `id`, `model`, `provider` and `usage` from the body
//!   bytes (everything else is skipped by serde without building a tree); the bytes go to the
//!   client unchanged.
//! - Stream: [`SseScanner`] is fed the upstream byte chunks as they arrive and splits them into
//!   SSE events; each event is forwarded as is, except the final usage chunk when the client
//!   did not ask for it. It records the generation id, the usage (with `cost`), a mid-stream
//!   error and whether `[DONE]` arrived, so the gateway can settle at the exact cost, or look a
//!   cut stream up by its generation id.

use bytes::{Bytes, BytesMut};
use orteam_core::Money;
use serde::Deserialize;

/// What upstream reported it billed for one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Billed {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub cached_tokens: u64,
    pub cost: Money,
}

/// Identity and usage of a completion.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompletionInfo {
    pub generation_id: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub usage: Option<Billed>,
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
struct WireError {
    #[serde(default)]
    code: serde_json::Value,
    #[serde(default)]
    message: Option<String>,
}

impl WireUsage {
    /// Usage without a cost is not a bill: the caller must look the generation up.
    fn billed(self) -> Option<Billed> {
        Some(Billed {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            reasoning_tokens: self
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
            cached_tokens: self
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cost: self.cost?,
        })
    }
}

/// Reads a non-stream completion body.
pub fn parse_completion(body: &[u8]) -> Option<CompletionInfo> {
    let w: WireCompletion = serde_json::from_slice(body).ok()?;
    Some(CompletionInfo {
        generation_id: w.id,
        model: w.model,
        provider: w.provider,
        usage: w.usage.and_then(WireUsage::billed),
    })
}

/// A mid-stream error reported by upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub code: String,
    pub message: String,
}

/// Incremental SSE reader over upstream chunks.
#[derive(Debug, Default)]
pub struct SseScanner {
    pending: BytesMut,
    forward_usage: bool,
    pub info: CompletionInfo,
    pub error: Option<StreamError>,
    pub done: bool,
    /// Content chunks seen (for diagnostics).
    pub chunks: u64,
}

impl SseScanner {
    /// `forward_usage`: whether the client asked for the final usage chunk.
    pub fn new(forward_usage: bool) -> Self {
        SseScanner {
            forward_usage,
            ..Default::default()
        }
    }

    /// Feeds upstream bytes; returns the bytes to forward to the client now (whole events only,
    /// so a client never sees half an event when the gateway strips one).
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        while let Some(end) = find_event_end(&self.pending) {
            let event = self.pending.split_to(end);
            if self.inspect(&event) {
                out.extend_from_slice(&event);
            }
        }
        out.freeze()
    }

    /// Whatever is left when upstream closes (an incomplete final event is forwarded as is).
    pub fn finish(&mut self) -> Bytes {
        let rest = self.pending.split();
        if !rest.is_empty() {
            let _ = self.inspect(&rest);
        }
        rest.freeze()
    }

    /// Looks at one event (including its terminating blank line); returns whether to forward.
    fn inspect(&mut self, event: &[u8]) -> bool {
        let mut forward = true;
        for line in event.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if data == b"[DONE]" {
                self.done = true;
                continue;
            }
            // Content chunks are most of a stream and carry nothing the gateway needs once the
            // generation id is known: decode only the first chunk and those that can hold the
            // usage or an error (the test is a superset, the decode decides).
            if self.info.generation_id.is_some()
                && !contains(data, b"\"usage\"")
                && !contains(data, b"\"error\"")
            {
                self.chunks += 1;
                continue;
            }
            let Ok(chunk) = serde_json::from_slice::<WireCompletion>(data) else {
                continue;
            };
            if self.info.generation_id.is_none() {
                self.info.generation_id = chunk.id;
                self.info.model = chunk.model;
                self.info.provider = chunk.provider;
            }
            if let Some(err) = chunk.error {
                let code = match err.code {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => "error".to_owned(),
                    other => other.to_string(),
                };
                self.error = Some(StreamError {
                    code,
                    message: err.message.unwrap_or_default(),
                });
            }
            match chunk.usage.and_then(WireUsage::billed) {
                Some(billed) => {
                    self.info.usage = Some(billed);
                    forward = self.forward_usage;
                }
                None => self.chunks += 1,
            }
        }
        forward
    }
}

/// The end (exclusive) of the first complete event: a blank line (`\n\n` or `\r\n\r\n`).
fn find_event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some(i + 2);
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_EXAMPLE: &str = r#"{"id":"gen-1755147565-0ZSd3QOT6JSpDk5OV1Tl","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion",
 "created":1755147565,"system_fingerprint":null,"choices":[{"index":0,"logprobs":null,"finish_reason":"stop",
 "native_finish_reason":"stop","message":{"role":"assistant","content":"Hello!","refusal":null,"reasoning":null}}],
 "usage":{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14,"cost":0.00014,"is_byok":false,
 "prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":0,"audio_tokens":0},
 "completion_tokens_details":{"reasoning_tokens":0},"cost_details":{"upstream_inference_cost":null,
 "upstream_inference_prompt_cost":0.0001,"upstream_inference_completions_cost":0.00004}}}"#;

    #[test]
    fn reads_the_bill_of_a_completion() {
        let info = parse_completion(DOC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(
            info.generation_id.as_deref(),
            Some("gen-1755147565-0ZSd3QOT6JSpDk5OV1Tl")
        );
        assert_eq!(info.provider.as_deref(), Some("OpenAI"));
        let u = info.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (10, 4));
        assert_eq!(u.cost, Money::parse("0.00014").unwrap());
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
            let mut scanner = SseScanner::new(false);
            let mut forwarded = Vec::new();
            for piece in bytes.chunks(split) {
                forwarded.extend_from_slice(&scanner.feed(piece));
            }
            forwarded.extend_from_slice(&scanner.finish());
            assert!(scanner.done);
            assert_eq!(scanner.info.generation_id.as_deref(), Some("gen-1"));
            let u = scanner.info.usage.clone().unwrap();
            assert_eq!(u.cost, Money::parse("0.0000123456789").unwrap());
            assert_eq!(u.reasoning_tokens, 1);
            let text = String::from_utf8(forwarded).unwrap();
            assert!(!text.contains("\"usage\""), "usage chunk stripped");
            assert!(text.contains("Hel") && text.ends_with("data: [DONE]\n\n"));
        }
    }

    #[test]
    fn keeps_the_usage_chunk_when_asked_and_sees_errors() {
        let mut scanner = SseScanner::new(true);
        let out = scanner.feed(&stream());
        assert!(String::from_utf8_lossy(&out).contains("\"usage\""));
        let mut scanner = SseScanner::new(false);
        let err = br#"data: {"id":"gen-2","object":"chat.completion.chunk","error":{"code":502,"message":"Provider returned error"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}

"#;
        let out = scanner.feed(err);
        assert_eq!(out.len(), err.len());
        assert_eq!(scanner.error.as_ref().unwrap().code, "502");
        assert!(!scanner.done);
    }
}
