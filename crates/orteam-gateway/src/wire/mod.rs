//! The wire formats the gateway speaks, each a small adapter on one pipeline.
//!
//! An adapter says how to read a request (model, output cap, stream flag, a prompt bound),
//! how to rewrite it for upstream, where the bill sits in an answer and in a stream, and what
//! an error looks like. Everything else (auth, policy, rate limits, pricing, reserve, forward,
//! settle) is the same code for every route, in [`crate::pipeline`].
//!
//! | route | adapter | errors |
//! |---|---|---|
//! | `POST /v1/chat/completions` | [`chat`] | OpenAI |
//! | `POST /v1/messages` | [`messages`] | Anthropic |
//! | `POST /v1/responses` | [`responses`] | OpenAI |
//! | `POST /v1/embeddings` | [`embeddings`] | OpenAI |
//! | `POST /v1/completions` | [`completions`] | OpenAI |

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod json;
pub mod media;
pub mod messages;
pub mod responses;
pub mod routing;

use bytes::Bytes;
use orteam_core::{ApiRoute, Money};

pub use json::{Members, RequestError, Rewrite};
pub use routing::{Routing, RoutingPlan};

/// One API the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    Chat,
    Messages,
    Responses,
    Embeddings,
    Completions,
}

/// How errors are shaped for a route's clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error":{"message","type","code","param"}}`
    OpenAi,
    /// OpenAI's shape with OpenAI's own status for an exhausted budget: 429
    /// `insufficient_quota`, the one refusal Codex does not retry (it retries a 402 five times).
    OpenAiQuota,
    /// `{"type":"error","error":{"type","message"},"request_id"}`
    Anthropic,
}

impl Wire {
    pub const ALL: [Wire; 5] = [
        Wire::Chat,
        Wire::Messages,
        Wire::Responses,
        Wire::Embeddings,
        Wire::Completions,
    ];

    /// The route a member's request path names (`/v1/…` or OpenRouter's `/api/v1/…`).
    pub fn from_path(path: &str) -> Option<Wire> {
        let rest = path
            .strip_prefix("/api/v1/")
            .or_else(|| path.strip_prefix("/v1/"))?;
        Wire::ALL.into_iter().find(|w| w.upstream_path() == rest)
    }

    /// The route recorded in usage events and reports.
    pub fn route(self) -> ApiRoute {
        match self {
            Wire::Chat => ApiRoute::Chat,
            Wire::Messages => ApiRoute::Messages,
            Wire::Responses => ApiRoute::Responses,
            Wire::Embeddings => ApiRoute::Embeddings,
            Wire::Completions => ApiRoute::Completions,
        }
    }

    /// The name used in metrics (the route's name).
    pub fn as_str(self) -> &'static str {
        self.route().as_str()
    }

    /// The path below OpenRouter's API root.
    pub fn upstream_path(self) -> &'static str {
        match self {
            Wire::Chat => "chat/completions",
            Wire::Messages => "messages",
            Wire::Responses => "responses",
            Wire::Embeddings => "embeddings",
            Wire::Completions => "completions",
        }
    }

    pub fn error_shape(self) -> ErrorShape {
        match self {
            Wire::Messages => ErrorShape::Anthropic,
            Wire::Responses => ErrorShape::OpenAiQuota,
            _ => ErrorShape::OpenAi,
        }
    }

    /// Request headers passed upstream unchanged (Anthropic's version and beta flags).
    pub fn forwarded_headers(self) -> &'static [http::HeaderName] {
        static ANTHROPIC: [http::HeaderName; 2] = [
            http::HeaderName::from_static("anthropic-version"),
            http::HeaderName::from_static("anthropic-beta"),
        ];
        match self {
            Wire::Messages => &ANTHROPIC,
            _ => &[],
        }
    }

    /// Parses and validates a request body.
    pub fn parse(self, body: &[u8]) -> Result<WireRequest<'_>, RequestError> {
        let mut request = match self {
            Wire::Chat => chat::parse(body),
            Wire::Messages => messages::parse(body),
            Wire::Responses => responses::parse(body),
            Wire::Embeddings => embeddings::parse(body),
            Wire::Completions => completions::parse(body),
        }?;
        request.media = media::count(body);
        Ok(request)
    }

    /// Reads identity and bill from a non-stream answer body.
    pub fn read_answer(self, body: &[u8]) -> Option<CompletionInfo> {
        match self {
            Wire::Chat | Wire::Completions => chat::read_answer(body),
            Wire::Messages => messages::read_answer(body),
            Wire::Responses => responses::read_answer(body),
            Wire::Embeddings => embeddings::read_answer(body),
        }
    }
}

/// A parsed request of any route, borrowing from the body bytes.
#[derive(Debug)]
pub struct WireRequest<'a> {
    pub wire: Wire,
    pub(crate) members: Members<'a>,
    pub model: String,
    pub stream: bool,
    /// The output cap the client asked for (`max_tokens`, `max_completion_tokens`,
    /// `max_output_tokens`), if any.
    pub max_output: Option<u64>,
    /// An upper bound of the prompt's tokens: bytes of the prompt-bearing input (every token
    /// covers at least one byte).
    pub prompt_bound: u64,
    /// Answers generated per request (`n`): the output cost is held this many times.
    pub choices: u64,
    /// Whether the route generates output tokens at all (embeddings do not).
    pub generates: bool,
    /// Whether the client itself asked for the final usage chunk of a stream (chat,
    /// completions); otherwise the gateway removes it.
    pub client_wants_stream_usage: bool,
    /// Messages: `thinking.budget_tokens` when extended thinking is on.
    pub thinking_budget: Option<u64>,
    /// OpenRouter's fields that choose models or add paid work ([`routing`]).
    pub routing: Routing<'a>,
    /// Images, audio, video and documents in the body ([`media`]); the pipeline adds their
    /// allowance to `prompt_bound`.
    pub media: media::MediaParts,
}

impl WireRequest<'_> {
    /// The body to send upstream: the client's members untouched except the served model,
    /// the output cap the budget allows, the member id for attribution, what the tier's
    /// routing policy removed, and `provider.max_price` capped at `price`, the quoted rates.
    pub fn upstream_body(
        &self,
        model: &str,
        max_output: u64,
        member: &str,
        routing: &RoutingPlan,
        price: &crate::pricing::ModelPrice,
    ) -> Bytes {
        let mut rw = Rewrite::default();
        rw.set("model", json::json_string(model))
            .set("user", json::json_string(member));
        for key in &routing.strip {
            rw.remove(key);
        }
        for (key, value) in &routing.replace {
            rw.set(key, value.clone());
        }
        rw.set(
            "provider",
            routing::provider_json(routing.provider.as_deref(), price, self.media.total()),
        );
        match self.wire {
            Wire::Chat | Wire::Completions => chat::rewrite(self, max_output, &mut rw),
            Wire::Messages => messages::rewrite(self, max_output, &mut rw),
            Wire::Responses => responses::rewrite(max_output, &mut rw),
            Wire::Embeddings => {}
        }
        Bytes::from(self.members.rewritten(&rw))
    }
}

#[cfg(test)]
impl WireRequest<'_> {
    /// [`WireRequest::upstream_body`] under the default routing policy, at a free price.
    pub fn upstream_body_in_tests(&self, model: &str, max_output: u64, member: &str) -> Bytes {
        let plan = self
            .routing
            .apply(&Default::default())
            .expect("the default policy passes this body");
        let free = crate::pricing::ModelPrice {
            prompt: Money::ZERO,
            completion: Money::ZERO,
            request: Money::ZERO,
            media: Money::ZERO,
            max_completion_tokens: None,
            context_length: None,
        };
        self.upstream_body(model, max_output, member, &plan, &free)
    }
}

/// Token counts upstream reported, in OpenAI's terms (prompt includes cached tokens,
/// completion includes reasoning tokens).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Billed {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's cache (part of `prompt_tokens`).
    pub cache_write_tokens: u64,
    /// What upstream charged; `None` when the answer carries no cost (the generation must be
    /// looked up).
    pub cost: Option<Money>,
}

/// Identity and usage of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompletionInfo {
    pub generation_id: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub usage: Option<Billed>,
}

impl CompletionInfo {
    /// The exact cost, when the answer states it.
    pub fn cost(&self) -> Option<Money> {
        self.usage.as_ref()?.cost
    }
}

/// A mid-stream error reported by upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub code: String,
    pub message: String,
}

impl StreamError {
    pub(crate) fn from_code(code: serde_json::Value, message: Option<String>) -> Self {
        let code = match code {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => "error".to_owned(),
            other => other.to_string(),
        };
        StreamError {
            code,
            message: message.unwrap_or_default(),
        }
    }
}

/// What a stream told the gateway so far.
#[derive(Debug, Default)]
pub struct StreamState {
    pub info: CompletionInfo,
    pub error: Option<StreamError>,
    /// The route's terminal event arrived (`[DONE]`, `message_stop`, `response.completed`…).
    pub done: bool,
    /// Events that carried nothing the gateway needed (for diagnostics).
    pub chunks: u64,
}

/// One SSE event, split into its `event:` name and its `data:` payload.
pub struct SseEvent<'a> {
    pub name: Option<&'a [u8]>,
    pub data: &'a [u8],
}

impl Wire {
    /// Looks at one stream event; returns whether to forward it to the client.
    pub fn inspect_event(
        self,
        state: &mut StreamState,
        event: &SseEvent<'_>,
        forward_usage: bool,
    ) -> bool {
        match self {
            Wire::Chat | Wire::Completions | Wire::Embeddings => {
                chat::inspect_event(state, event, forward_usage)
            }
            Wire::Messages => messages::inspect_event(state, event),
            Wire::Responses => responses::inspect_event(state, event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_path() {
        assert_eq!(Wire::from_path("/v1/chat/completions"), Some(Wire::Chat));
        assert_eq!(Wire::from_path("/api/v1/messages"), Some(Wire::Messages));
        assert_eq!(Wire::from_path("/v1/responses"), Some(Wire::Responses));
        assert_eq!(Wire::from_path("/v1/embeddings"), Some(Wire::Embeddings));
        assert_eq!(Wire::from_path("/v1/completions"), Some(Wire::Completions));
        assert_eq!(Wire::from_path("/v1/models"), None);
        assert_eq!(Wire::from_path("/v1/messages/count_tokens"), None);
    }
}
