//! The client's error: [`ClientError`] (what failed, how many retries, how long) wrapping a
//! [`ErrorKind`].
//!
//! No error carries the API key: upstream bodies and transport messages are scrubbed of it (and
//! of anything shaped like an OpenRouter key) before they are stored.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::types::chat::{ErrorCode, Usage};

/// A failed call: the cause plus the retries spent and the time elapsed since the first attempt.
///
/// `Display` is the cause alone when no retry happened, and
/// `request failed after 3 retries in 4.2s` (with the cause as [`source`](std::error::Error::source))
/// otherwise, so `{err:#}` with anyhow prints the whole chain once.
pub struct ClientError {
    kind: Box<ErrorKind>,
    retries: u32,
    elapsed: Duration,
}

/// What failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// OpenRouter answered with a non-success status.
    #[error(transparent)]
    Api(ApiError),
    /// No (complete) response: connect failure, reset, timeout.
    #[error("{endpoint}: {message}")]
    Transport {
        endpoint: String,
        /// The transport error chain, scrubbed of secrets.
        message: String,
        /// The connection was never established, so the request was not sent.
        connect: bool,
        timeout: bool,
    },
    /// A success response whose body does not have the expected shape.
    #[error("{endpoint}: unexpected response body: {message}")]
    Decode { endpoint: String, message: String },
    /// A `200` to a streaming request that is not `text/event-stream`.
    #[error("{endpoint}: expected text/event-stream, got {content_type:?}")]
    NotEventStream {
        endpoint: String,
        content_type: Option<String>,
    },
    /// A mid-stream error chunk (`data: {"error": {code, message}}`); the stream ends after it.
    #[error("stream error{}: {message}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default())]
    Stream {
        code: Option<ErrorCode>,
        message: String,
        metadata: Option<Value>,
        generation_id: Option<String>,
    },
    /// The stream ended (connection closed) before `data: [DONE]`.
    #[error("stream ended before [DONE]{}{}", generation_id.as_ref().map(|g| format!(" (generation {g})")).unwrap_or_default(), reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    StreamEnded {
        generation_id: Option<String>,
        /// The usage chunk, if it arrived before the cut.
        usage: Option<Box<Usage>>,
        /// Why: `None` for a clean close, else the transport or framing error.
        reason: Option<String>,
    },
    /// The request could not be built (bad base URL, bad argument, bad header value).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// A non-success HTTP response, with OpenRouter's `{"error": {code, message, metadata}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// `GET /keys/abc…` (method and path below the base URL, without the query).
    pub endpoint: String,
    pub status: u16,
    /// `error.code` (normally equal to the status).
    pub code: Option<ErrorCode>,
    /// `error.message`, else a scrubbed excerpt of the body, else the status reason.
    pub message: String,
    /// `error.metadata` (e.g. `error_type`, `provider_name`, moderation `reasons`).
    pub metadata: Option<Value>,
    /// The whole error body when it was JSON (scrubbed), e.g. to read `user_id`.
    pub body: Option<Value>,
    /// `Retry-After`, parsed (seconds or HTTP date), uncapped.
    pub retry_after: Option<Duration>,
    pub generation_id: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OpenRouter returned {} for {}: {}",
            self.status, self.endpoint, self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// The broad class of a failure, for mapping to other surfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// 400, 413, 422: the request itself is wrong.
    BadRequest,
    /// 401: missing, unknown, disabled or expired key.
    Unauthorized,
    /// 402: not enough credits.
    PaymentRequired,
    /// 403: permission (e.g. a management key is required), key limit, guardrail, moderation.
    Forbidden,
    /// 404.
    NotFound,
    /// 408, 524 and transport timeouts.
    Timeout,
    /// 429.
    RateLimited,
    /// Other 5xx (provider down, no provider, overloaded).
    Server,
    /// Connection failures.
    Transport,
    /// Stream errors, decoding, invalid requests, other statuses.
    Other,
}

impl ClientError {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        ClientError {
            kind: Box::new(kind),
            retries: 0,
            elapsed: Duration::ZERO,
        }
    }

    pub(crate) fn with_attempts(mut self, retries: u32, elapsed: Duration) -> Self {
        self.retries = retries;
        self.elapsed = elapsed;
        self
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub fn into_kind(self) -> ErrorKind {
        *self.kind
    }

    /// Retries performed before giving up (0 = one attempt).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Time from the first attempt to the failure.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The API error, when OpenRouter answered with an error status.
    pub fn api(&self) -> Option<&ApiError> {
        match &*self.kind {
            ErrorKind::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status (for a mid-stream error: its code, when it is a status).
    pub fn status(&self) -> Option<u16> {
        match &*self.kind {
            ErrorKind::Api(e) => Some(e.status),
            ErrorKind::Stream { code, .. } => code.as_ref().and_then(ErrorCode::as_status),
            _ => None,
        }
    }

    /// OpenRouter's `error.code`.
    pub fn code(&self) -> Option<&ErrorCode> {
        match &*self.kind {
            ErrorKind::Api(e) => e.code.as_ref(),
            ErrorKind::Stream { code, .. } => code.as_ref(),
            _ => None,
        }
    }

    /// OpenRouter's `error.message` (scrubbed), when there is one.
    pub fn message(&self) -> Option<&str> {
        match &*self.kind {
            ErrorKind::Api(e) => Some(&e.message),
            ErrorKind::Stream { message, .. } => Some(message),
            _ => None,
        }
    }

    /// OpenRouter's `error.metadata`.
    pub fn metadata(&self) -> Option<&Value> {
        match &*self.kind {
            ErrorKind::Api(e) => e.metadata.as_ref(),
            ErrorKind::Stream { metadata, .. } => metadata.as_ref(),
            _ => None,
        }
    }

    /// `error.metadata.error_type` of inference errors (e.g. `context_length_exceeded`).
    pub fn error_type(&self) -> Option<&str> {
        self.metadata()?.get("error_type")?.as_str()
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(|e| e.retry_after)
    }

    /// The generation id, when known (header of a failed response, or a stream's chunks).
    pub fn generation_id(&self) -> Option<&str> {
        match &*self.kind {
            ErrorKind::Api(e) => e.generation_id.as_deref(),
            ErrorKind::Stream { generation_id, .. }
            | ErrorKind::StreamEnded { generation_id, .. } => generation_id.as_deref(),
            _ => None,
        }
    }

    /// True for a transient failure class: 429, 5xx, a transport error, or a mid-stream 429/5xx.
    /// The client itself retries these only where the call allows it (see the crate docs); a
    /// stream that has begun is never retried.
    pub fn is_retryable(&self) -> bool {
        match &*self.kind {
            ErrorKind::Api(e) => crate::retry::is_retryable_status(e.status),
            ErrorKind::Transport { .. } => true,
            ErrorKind::Stream { code, .. } => code
                .as_ref()
                .and_then(ErrorCode::as_status)
                .is_some_and(crate::retry::is_retryable_status),
            _ => false,
        }
    }

    pub fn category(&self) -> ErrorCategory {
        if let ErrorKind::Transport { timeout, .. } = &*self.kind {
            return if *timeout {
                ErrorCategory::Timeout
            } else {
                ErrorCategory::Transport
            };
        }
        match self.status() {
            Some(400 | 413 | 422) => ErrorCategory::BadRequest,
            Some(401) => ErrorCategory::Unauthorized,
            Some(402) => ErrorCategory::PaymentRequired,
            Some(403) => ErrorCategory::Forbidden,
            Some(404) => ErrorCategory::NotFound,
            Some(408 | 524) => ErrorCategory::Timeout,
            Some(429) => ErrorCategory::RateLimited,
            Some(500..=599) => ErrorCategory::Server,
            _ => ErrorCategory::Other,
        }
    }

    fn message_lower(&self) -> String {
        self.message().unwrap_or_default().to_ascii_lowercase()
    }

    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429)
    }

    /// 403 "Only management keys can perform this operation": an inference key was used on a
    /// management endpoint.
    pub fn is_management_key_required(&self) -> bool {
        self.status() == Some(403) && self.message_lower().contains("management key")
    }

    /// "Key limit exceeded (…)" (403, or 402 on some deployments).
    pub fn is_key_limit_exceeded(&self) -> bool {
        matches!(self.status(), Some(402 | 403))
            && self.message_lower().contains("key limit exceeded")
    }

    /// 402 other than a key limit: the account balance is exhausted.
    pub fn is_insufficient_credits(&self) -> bool {
        self.status() == Some(402) && !self.is_key_limit_exceeded()
    }

    /// 403 "Request blocked…" by a guardrail.
    pub fn is_guardrail_block(&self) -> bool {
        self.status() == Some(403) && self.message_lower().starts_with("request blocked")
    }

    /// The usage seen before a stream was cut (only for [`ErrorKind::StreamEnded`]).
    pub fn partial_usage(&self) -> Option<&Usage> {
        match &*self.kind {
            ErrorKind::StreamEnded { usage, .. } => usage.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.retries > 0 {
            write!(
                f,
                "request failed after {} {} in {:.1}s",
                self.retries,
                if self.retries == 1 {
                    "retry"
                } else {
                    "retries"
                },
                self.elapsed.as_secs_f64()
            )
        } else {
            fmt::Display::fmt(&self.kind, f)
        }
    }
}

impl fmt::Debug for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientError")
            .field("kind", &self.kind)
            .field("retries", &self.retries)
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if self.retries > 0 {
            Some(&*self.kind)
        } else {
            std::error::Error::source(&*self.kind)
        }
    }
}

impl From<ErrorKind> for ClientError {
    fn from(kind: ErrorKind) -> Self {
        ClientError::new(kind)
    }
}

/// Removes secrets from text that came from outside (error bodies, transport messages).
///
/// Replaces the exact `secret` (the client's key) and every `sk-or-…` token.
pub(crate) fn scrub(text: &str, secret: Option<&str>) -> String {
    let mut out = match secret {
        Some(s) if !s.is_empty() && text.contains(s) => text.replace(s, "[REDACTED]"),
        _ => text.to_owned(),
    };
    const PREFIX: &str = "sk-or-";
    if out.contains(PREFIX) {
        let mut cleaned = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(pos) = rest.find(PREFIX) {
            cleaned.push_str(&rest[..pos]);
            cleaned.push_str("[REDACTED]");
            let after = &rest[pos + PREFIX.len()..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .unwrap_or(after.len());
            rest = &after[end..];
        }
        cleaned.push_str(rest);
        out = cleaned;
    }
    out
}

/// The source chain of an error as one line.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let m = e.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = e.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_key_and_key_shaped_tokens() {
        let key = "sk-or-v1-0123456789abcdef";
        let s = scrub(&format!("bad key {key}, other sk-or-v1-ffff\"x"), Some(key));
        assert_eq!(s, "bad key [REDACTED], other [REDACTED]\"x");
        assert_eq!(
            scrub("opaque-key here", Some("opaque-key")),
            "[REDACTED] here"
        );
        assert_eq!(scrub("nothing", None), "nothing");
    }

    #[test]
    fn display_with_and_without_retries() {
        let kind = ErrorKind::Api(ApiError {
            endpoint: "GET /credits".into(),
            status: 503,
            code: Some(ErrorCode::Int(503)),
            message: "down".into(),
            metadata: None,
            body: None,
            retry_after: None,
            generation_id: None,
        });
        let e = ClientError::new(kind);
        assert_eq!(
            e.to_string(),
            "OpenRouter returned 503 for GET /credits: down"
        );
        let e = e.with_attempts(3, Duration::from_millis(4200));
        assert_eq!(e.to_string(), "request failed after 3 retries in 4.2s");
        let src = std::error::Error::source(&e).map(|s| s.to_string());
        assert_eq!(
            src.as_deref(),
            Some("OpenRouter returned 503 for GET /credits: down")
        );
        assert!(e.is_retryable());
        assert_eq!(e.category(), ErrorCategory::Server);
    }

    #[test]
    fn helpers_classify_403s() {
        let mk = |status: u16, msg: &str| {
            ClientError::new(ErrorKind::Api(ApiError {
                endpoint: "GET /keys".into(),
                status,
                code: Some(ErrorCode::Int(i64::from(status))),
                message: msg.into(),
                metadata: None,
                body: None,
                retry_after: None,
                generation_id: None,
            }))
        };
        assert!(
            mk(403, "Only management keys can perform this operation").is_management_key_required()
        );
        assert!(mk(403, "Key limit exceeded (daily limit)").is_key_limit_exceeded());
        assert!(!mk(403, "Key limit exceeded (daily limit)").is_management_key_required());
        assert!(
            mk(
                402,
                "Insufficient credits. Add more using https://openrouter.ai/credits"
            )
            .is_insufficient_credits()
        );
        assert!(mk(403, "Request blocked: pattern").is_guardrail_block());
        assert!(!mk(400, "x").is_retryable());
        assert!(mk(429, "x").is_retryable());
        assert_eq!(mk(404, "x").category(), ErrorCategory::NotFound);
    }
}
