//! The SSE state machine every streamed route shares.
//!
//! A stream is an optional opening frame, one frame per reasoning token, one per content chunk
//! (one chunk per content token; a forced tool call is a single chunk), then the closing frames.
//! The machine owns pacing (`[[sim:delay_ms=N]]`), stream faults (`stream_cut` /
//! `stream_error` after N content chunks) and billing; an [`SseFormat`] only renders frames in
//! its route's wire format (chat chunks, Anthropic events, Responses events, text-completion
//! chunks).
//!
//! Billing happens exactly once: when the closing frames are produced, when a fault cuts or
//! errors the stream, or on drop if the client went away first (the tokens produced so far,
//! `cancelled: true`), as OpenRouter bills cancelled generations.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::Stream;
use tokio::time::Sleep;

use crate::faults::Fault;
use crate::inference::{
    CostParts, GenRecord, Origin, Tokens, content_word, reasoning_word, record,
};
use crate::models::Model;
use crate::shared::Shared;
use crate::state::ApiType;

/// Everything a stream needs once admitted (built by [`crate::inference::Admitted::into_stream`]).
pub(crate) struct StreamSetup {
    pub shared: Arc<Shared>,
    pub id: String,
    pub key_hash: Arc<str>,
    pub model: usize,
    pub endpoint: usize,
    /// Per choice.
    pub tokens: Tokens,
    pub seed: u64,
    pub delay: Duration,
    pub created: DateTime<Utc>,
    pub started: Instant,
    pub user: Option<String>,
    pub session_id: Option<String>,
    pub origin: Origin,
    pub fault: Option<Fault>,
    pub choices: u64,
    pub forced_tool: Option<String>,
}

impl StreamSetup {
    pub fn model(&self) -> &Model {
        self.shared.catalog.model(self.model)
    }

    pub fn provider(&self) -> &str {
        &self.model().endpoints[self.endpoint].provider_name
    }
}

/// What a stream produced when it ends: the billed figures (all choices) and their cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Produced {
    pub tokens: Tokens,
    pub cost: CostParts,
}

/// One route's wire format.
pub(crate) trait SseFormat: Send + Unpin + 'static {
    /// Frames before the first token, if any.
    fn open(&mut self, s: &StreamSetup) -> Option<Bytes>;
    /// How many content chunks the answer takes (one per content token by default).
    fn content_chunks(&self, s: &StreamSetup) -> u64 {
        s.tokens.content().max(1)
    }
    /// Reasoning token `i` (`text` has a leading space after the first).
    fn reasoning(&mut self, s: &StreamSetup, i: u64, text: &str) -> Bytes;
    /// Content chunk `i` (`text` is empty when the answer has no content tokens).
    fn content(&mut self, s: &StreamSetup, i: u64, text: &str, last: bool) -> Bytes;
    /// The closing frames of a complete answer (usage, terminal events, `[DONE]`).
    fn finish(&mut self, s: &StreamSetup, p: &Produced) -> Bytes;
    /// The mid-stream error frames of a `stream_error` fault.
    fn error(&mut self, s: &StreamSetup, code: u16, message: &str, p: &Produced) -> Bytes;
}

/// Where a stream is in its frame sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Reasoning(u64),
    Content(u64),
    Finish,
    /// A stream_cut fault fired: end with an error on the next poll.
    Cut,
    Finished,
}

/// The SSE body.
struct SseStream<F: SseFormat> {
    s: StreamSetup,
    fmt: F,
    phase: Phase,
    content_chunks: u64,
    reasoning_sent: u64,
    chunks_sent: u64,
    first_token_ms: Option<u64>,
    sleep: Option<Pin<Box<Sleep>>>,
    recorded: bool,
}

/// The streamed response: `text/event-stream` with `X-Generation-Id`.
pub(crate) fn sse_response<F: SseFormat>(s: StreamSetup, fmt: F) -> Response {
    let id = s.id.clone();
    let stream = SseStream {
        content_chunks: fmt.content_chunks(&s),
        s,
        fmt,
        phase: Phase::Open,
        reasoning_sent: 0,
        chunks_sent: 0,
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
    set_generation_id(&mut resp, &id);
    resp
}

/// Sets `X-Generation-Id`.
pub(crate) fn set_generation_id(resp: &mut Response, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut()
            .insert(HeaderName::from_static("x-generation-id"), v);
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    // Serializing a &str cannot fail.
    if let Ok(q) = serde_json::to_string(s) {
        out.push_str(&q);
    }
}

/// Appends a named SSE event: `event: <name>\ndata: <json>\n\n`.
pub(crate) fn push_event(out: &mut String, name: &str, data: &str) {
    out.push_str("event: ");
    out.push_str(name);
    out.push_str("\ndata: ");
    out.push_str(data);
    out.push_str("\n\n");
}

/// Word `i` of a streamed text with its separating space.
fn spaced(word: &str, i: u64) -> String {
    if i == 0 {
        word.to_owned()
    } else {
        format!(" {word}")
    }
}

impl<F: SseFormat> SseStream<F> {
    /// Content tokens carried by the first `chunks` content chunks.
    fn content_tokens_after(&self, chunks: u64) -> u64 {
        let total = self.s.tokens.content();
        if self.content_chunks >= total {
            chunks.min(total)
        } else if chunks >= self.content_chunks {
            total
        } else {
            0
        }
    }

    /// Bills and stores the generation for what was produced so far (once).
    fn record(&mut self, finish_reason: Option<&str>, cancelled: bool) -> Option<Produced> {
        let content = self.content_tokens_after(self.chunks_sent);
        let t = Tokens {
            completion: self.reasoning_sent + content,
            reasoning: self.reasoning_sent,
            ..self.s.tokens
        }
        .times(self.s.choices);
        let model = self.s.model();
        let Ok(cost) = t.cost(&model.prices) else {
            tracing::warn!("stream cost overflow; generation not billed");
            return None;
        };
        let produced = Produced { tokens: t, cost };
        if self.recorded {
            return Some(produced);
        }
        self.recorded = true;
        let s = &self.s;
        let elapsed = s.started.elapsed().as_millis() as u64;
        let mut st = s.shared.state.lock();
        record(
            &mut st,
            GenRecord {
                id: s.id.as_str().into(),
                key_hash: &s.key_hash,
                model,
                endpoint: s.endpoint,
                created: s.created,
                origin: s.origin.clone(),
                user: s.user.clone(),
                session_id: s.session_id.clone(),
                streamed: true,
                cancelled,
                latency_ms: self.first_token_ms.unwrap_or(elapsed),
                generation_time_ms: elapsed,
                finish_reason,
                tokens: t,
                cost: cost.total,
                api_type: ApiType::Completions,
            },
        );
        drop(st);
        s.shared.generation_recorded_after_unlock();
        Some(produced)
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
                // Yield once so the server flushes the frames already produced; the cut itself
                // (an error from the body, which makes hyper drop the connection) comes next.
                self.phase = Phase::Cut;
                cx.waker().wake_by_ref();
                Some(Poll::Pending)
            }
            Fault::StreamError { code, message, .. } => {
                let produced = self.record(Some("error"), false)?;
                let msg = message.unwrap_or_else(|| "Provider returned error".to_owned());
                let frame = self.fmt.error(&self.s, code, &msg, &produced);
                Some(Poll::Ready(Some(Ok(frame))))
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

impl<F: SseFormat> Stream for SseStream<F> {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.phase {
                Phase::Open => {
                    this.phase = if this.s.tokens.reasoning > 0 {
                        Phase::Reasoning(0)
                    } else {
                        Phase::Content(0)
                    };
                    if let Some(frame) = this.fmt.open(&this.s) {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                }
                Phase::Reasoning(i) => {
                    if this.poll_delay(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let text = spaced(reasoning_word(this.s.seed, i), i);
                    let frame = this.fmt.reasoning(&this.s, i, &text);
                    this.reasoning_sent += 1;
                    this.mark_first_token();
                    this.phase = if i + 1 < this.s.tokens.reasoning {
                        Phase::Reasoning(i + 1)
                    } else {
                        Phase::Content(0)
                    };
                    return Poll::Ready(Some(Ok(frame)));
                }
                Phase::Content(i) => {
                    if let Some(p) = this.fault_at(i, cx) {
                        return p;
                    }
                    if this.poll_delay(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let text = if this.s.tokens.content() == 0 {
                        String::new()
                    } else {
                        spaced(content_word(this.s.seed, i), i)
                    };
                    let last = i + 1 >= this.content_chunks;
                    let frame = this.fmt.content(&this.s, i, &text, last);
                    this.chunks_sent += 1;
                    if this.s.tokens.content() > 0 {
                        this.mark_first_token();
                    }
                    this.phase = if last {
                        Phase::Finish
                    } else {
                        Phase::Content(i + 1)
                    };
                    return Poll::Ready(Some(Ok(frame)));
                }
                Phase::Finish => {
                    if let Some(p) = this.fault_at(this.content_chunks, cx) {
                        return p;
                    }
                    this.phase = Phase::Finished;
                    let finish = this.s.tokens.finish_reason;
                    let Some(produced) = this.record(Some(finish), false) else {
                        return Poll::Ready(Some(Err(std::io::Error::other("cost overflow"))));
                    };
                    let frame = this.fmt.finish(&this.s, &produced);
                    return Poll::Ready(Some(Ok(frame)));
                }
                Phase::Cut => {
                    this.phase = Phase::Finished;
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "simulated stream cut",
                    ))));
                }
                Phase::Finished => return Poll::Ready(None),
            }
        }
    }
}

impl<F: SseFormat> Drop for SseStream<F> {
    fn drop(&mut self) {
        // The client went away (or the server is shutting down) before the end: bill what was
        // produced, as OpenRouter bills cancelled generations.
        if !self.recorded {
            self.record(None, true);
        }
    }
}
