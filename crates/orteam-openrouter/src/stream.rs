//! Server-sent events of a streamed chat completion, parsed into typed chunks.
//!
//! Protocol (see the crate docs): `:` comment lines (e.g. `: OPENROUTER PROCESSING`) are skipped,
//! every `data:` event is a [`ChatChunk`], the last one before `data: [DONE]` has `choices: []`
//! and the full `usage`. A chunk with an `error` object ends the stream with
//! [`ErrorKind::Stream`]; a connection that closes before `[DONE]` ends it with
//! [`ErrorKind::StreamEnded`].

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{ClientError, ErrorKind, chain, scrub};
use crate::types::chat::{ChatChunk, Usage};

type EventResult = Result<Event, EventStreamError<String>>;

/// A streamed chat completion: a `Stream` of [`ChatChunk`]s.
///
/// It yields `Ok(chunk)` for every data chunk, then ends (`None`) after `data: [DONE]`. Failures
/// are yielded once as `Err`, after which the stream ends:
/// - a mid-stream error chunk → [`ErrorKind::Stream`] with OpenRouter's `code` and `message`;
/// - the connection closing (or failing) before `[DONE]` → [`ErrorKind::StreamEnded`], which
///   carries the generation id and the usage seen so far (normally none);
/// - a chunk that is not valid JSON → [`ErrorKind::Decode`].
///
/// [`usage`](Self::usage) and [`generation_id`](Self::generation_id) stay readable throughout
/// and after the end. A stream that has begun is never retried.
pub struct ChatStream {
    events: Pin<Box<dyn Stream<Item = EventResult> + Send>>,
    endpoint: String,
    secret: Option<SecretString>,
    generation_id: Option<String>,
    model: Option<String>,
    provider: Option<String>,
    usage: Option<Usage>,
    chunks: usize,
    done: bool,
    finished: bool,
    retries: u32,
    started: Instant,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("endpoint", &self.endpoint)
            .field("generation_id", &self.generation_id)
            .field("model", &self.model)
            .field("usage", &self.usage)
            .field("chunks", &self.chunks)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Everything a finished stream produced, from [`ChatStream::collect`].
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSummary {
    /// The concatenated delta content of choice 0.
    pub text: String,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub generation_id: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    /// Data chunks received (the usage chunk included).
    pub chunks: usize,
}

impl ChatStream {
    pub(crate) fn from_response(
        response: reqwest::Response,
        endpoint: String,
        secret: Option<SecretString>,
        generation_id: Option<String>,
        retries: u32,
        started: Instant,
    ) -> Self {
        let mut s = Self::from_bytes_stream(response.bytes_stream(), generation_id);
        s.endpoint = endpoint;
        s.secret = secret;
        s.retries = retries;
        s.started = started;
        s
    }

    /// Parses any byte stream of SSE frames (e.g. bytes a proxy is forwarding).
    pub fn from_bytes_stream<S, E>(bytes: S, generation_id: Option<String>) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        let bytes = bytes.map(|r| r.map_err(|e| chain(&e)));
        ChatStream {
            events: Box::pin(bytes.eventsource()),
            endpoint: "POST /chat/completions".to_owned(),
            secret: None,
            generation_id,
            model: None,
            provider: None,
            usage: None,
            chunks: 0,
            done: false,
            finished: false,
            retries: 0,
            started: Instant::now(),
        }
    }

    /// The generation id (`X-Generation-Id` header, else the chunks' `id`).
    pub fn generation_id(&self) -> Option<&str> {
        self.generation_id.as_deref()
    }

    /// The usage chunk's usage, once it has arrived (normally just before `[DONE]`).
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// The model reported by the chunks.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// True once `data: [DONE]` was seen.
    pub fn is_complete(&self) -> bool {
        self.done
    }

    /// Retries spent before the stream started.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Drains the stream: the text, usage and finish reason, or the first error.
    pub async fn collect(mut self) -> Result<StreamSummary, ClientError> {
        let mut text = String::new();
        let mut finish_reason = None;
        while let Some(chunk) = self.next().await {
            let chunk = chunk?;
            if let Some(c) = chunk.content() {
                text.push_str(c);
            }
            if let Some(f) = chunk.finish_reason() {
                finish_reason = Some(f.to_owned());
            }
        }
        Ok(StreamSummary {
            text,
            usage: self.usage.take(),
            finish_reason,
            generation_id: self.generation_id.take(),
            model: self.model.take(),
            provider: self.provider.take(),
            chunks: self.chunks,
        })
    }

    fn fail(&mut self, kind: ErrorKind) -> ClientError {
        self.finished = true;
        ClientError::new(kind).with_attempts(self.retries, self.started.elapsed())
    }

    fn scrub(&self, text: &str) -> String {
        scrub(text, self.secret.as_ref().map(|s| s.expose_secret()))
    }

    fn ended(&mut self, reason: Option<String>) -> ClientError {
        let kind = ErrorKind::StreamEnded {
            generation_id: self.generation_id.clone(),
            usage: self.usage.clone().map(Box::new),
            reason,
        };
        self.fail(kind)
    }

    fn on_event(&mut self, event: Event) -> Option<Result<ChatChunk, ClientError>> {
        let data = event.data.trim();
        if data.is_empty() {
            return None;
        }
        if data == "[DONE]" {
            self.done = true;
            self.finished = true;
            return None;
        }
        let chunk: ChatChunk = match serde_json::from_str(data) {
            Ok(c) => c,
            Err(e) => {
                let kind = ErrorKind::Decode {
                    endpoint: self.endpoint.clone(),
                    message: self.scrub(&format!("stream chunk: {e}")),
                };
                return Some(Err(self.fail(kind)));
            }
        };
        self.chunks += 1;
        if self.generation_id.is_none() && !chunk.id.is_empty() {
            self.generation_id = Some(chunk.id.clone());
        }
        if self.model.is_none() {
            self.model.clone_from(&chunk.model);
        }
        if self.provider.is_none() {
            self.provider.clone_from(&chunk.provider);
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        if let Some(err) = &chunk.error {
            let kind = ErrorKind::Stream {
                code: err.code.clone(),
                message: self.scrub(&err.message),
                metadata: err
                    .metadata
                    .as_ref()
                    .and_then(|m| serde_json::from_str(&self.scrub(&m.to_string())).ok()),
                generation_id: self.generation_id.clone(),
            };
            return Some(Err(self.fail(kind)));
        }
        Some(Ok(chunk))
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatChunk, ClientError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            match this.events.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    let err = this.ended(None);
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(Some(Err(e))) => {
                    let reason = match e {
                        EventStreamError::Transport(m) => m,
                        other => other.to_string(),
                    };
                    let reason = this.scrub(&reason);
                    let err = this.ended(Some(reason));
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(Some(Ok(event))) => {
                    if let Some(item) = this.on_event(event) {
                        return Poll::Ready(Some(item));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn stream_of(parts: &[&str]) -> ChatStream {
        let items: Vec<Result<Bytes, std::io::Error>> = parts
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p.as_bytes())))
            .collect();
        ChatStream::from_bytes_stream(futures::stream::iter(items), None)
    }

    const HEAD: &str = ": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n";
    const C1: &str = "data: {\"id\":\"gen-1-abc\",\"provider\":\"OpenAI\",\"model\":\"openai/gpt-4o\",\"object\":\"chat.completion.chunk\",\"created\":1,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null,\"native_finish_reason\":null}]}\n\n";
    const C2: &str = "data: {\"id\":\"gen-1-abc\",\"provider\":\"OpenAI\",\"model\":\"openai/gpt-4o\",\"object\":\"chat.completion.chunk\",\"created\":1,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo!\"},\"finish_reason\":\"stop\",\"native_finish_reason\":\"stop\"}]}\n\n";
    const USAGE: &str = "data: {\"id\":\"gen-1-abc\",\"provider\":\"OpenAI\",\"model\":\"openai/gpt-4o\",\"object\":\"chat.completion.chunk\",\"created\":1,\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":4,\"total_tokens\":14,\"cost\":0.00014,\"is_byok\":false}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    #[tokio::test]
    async fn parses_comments_chunks_usage_and_done() {
        let s = stream_of(&[HEAD, C1, C2, USAGE, DONE]);
        let sum = s.collect().await.unwrap();
        assert_eq!(sum.text, "Hello!");
        assert_eq!(sum.finish_reason.as_deref(), Some("stop"));
        assert_eq!(sum.generation_id.as_deref(), Some("gen-1-abc"));
        assert_eq!(sum.chunks, 3);
        let u = sum.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (10, 4, 14)
        );
        assert_eq!(u.cost.to_string(), "0.00014");
    }

    #[tokio::test]
    async fn frames_split_across_reads() {
        let all = format!("{HEAD}{C1}{C2}{USAGE}{DONE}");
        let pieces: Vec<String> = all
            .as_bytes()
            .chunks(7)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        // chunks(7) may split UTF-8 only in non-ASCII text; this payload is ASCII.
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let mut s = stream_of(&refs);
        let chunks: Vec<ChatChunk> = (&mut s).try_collect().await.unwrap();
        assert_eq!(chunks.len(), 3);
        assert!(s.is_complete());
        assert_eq!(s.usage().unwrap().cost.to_string(), "0.00014");
    }

    #[tokio::test]
    async fn mid_stream_error_is_an_err_with_code() {
        let err_chunk = "data: {\"id\":\"gen-1-abc\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"openai/gpt-4o\",\"provider\":\"OpenAI\",\"error\":{\"code\":502,\"message\":\"Provider returned error\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\n";
        let mut s = stream_of(&[HEAD, C1, err_chunk, DONE]);
        assert_eq!(s.next().await.unwrap().unwrap().content(), Some("Hel"));
        let e = s.next().await.unwrap().unwrap_err();
        assert_eq!(e.status(), Some(502));
        assert_eq!(e.message(), Some("Provider returned error"));
        assert_eq!(e.generation_id(), Some("gen-1-abc"));
        assert!(matches!(e.kind(), ErrorKind::Stream { .. }));
        assert!(s.next().await.is_none());
        assert!(!s.is_complete());
    }

    #[tokio::test]
    async fn string_error_code() {
        let err_chunk = "data: {\"id\":\"gen-2\",\"error\":{\"code\":\"server_error\",\"message\":\"boom\"},\"choices\":[]}\n\n";
        let e = stream_of(&[err_chunk]).collect().await.unwrap_err();
        assert_eq!(e.status(), None);
        assert_eq!(
            e.code().map(|c| c.to_string()).as_deref(),
            Some("server_error")
        );
    }

    #[tokio::test]
    async fn cut_without_done_is_stream_ended() {
        let mut s = stream_of(&[HEAD, C1, C2]);
        assert!(s.next().await.unwrap().is_ok());
        assert!(s.next().await.unwrap().is_ok());
        let e = s.next().await.unwrap().unwrap_err();
        match e.kind() {
            ErrorKind::StreamEnded {
                generation_id,
                usage,
                ..
            } => {
                assert_eq!(generation_id.as_deref(), Some("gen-1-abc"));
                assert!(usage.is_none());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(e.partial_usage().is_none());
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn transport_error_mid_stream_is_stream_ended_with_reason() {
        let items: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(C1.as_bytes())),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset by peer",
            )),
        ];
        let mut s =
            ChatStream::from_bytes_stream(futures::stream::iter(items), Some("gen-h".into()));
        assert!(s.next().await.unwrap().is_ok());
        let e = s.next().await.unwrap().unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::StreamEnded { reason: Some(r), .. } if r.contains("reset by peer"))
        );
        assert_eq!(e.generation_id(), Some("gen-h"));
    }

    #[tokio::test]
    async fn bad_chunk_is_decode_error() {
        let e = stream_of(&["data: {not json\n\n"])
            .collect()
            .await
            .unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Decode { .. }));
    }
}
