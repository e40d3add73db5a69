//! `POST /chat/completions`: requests, responses and stream chunks.

use std::fmt;

use orteam_core::Money;
use orteam_core::money::json_number;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{Extra, wire_object};

/// The author of a message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    /// Any other role, kept verbatim.
    Other(String),
}

impl Role {
    pub fn as_str(&self) -> &str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Other(s) => s,
        }
    }
}

impl From<&str> for Role {
    fn from(s: &str) -> Self {
        match s {
            "system" => Role::System,
            "developer" => Role::Developer,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => Role::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Role::from(s.as_str()))
    }
}

/// Message content: a string, or a list of parts (text, images, …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl Content {
    /// The text: the string itself, or the text parts concatenated.
    pub fn text(&self) -> String {
        match self {
            Content::Text(s) => s.clone(),
            Content::Parts(parts) => parts.iter().filter_map(|p| p.text.as_deref()).collect(),
        }
    }
}

impl From<&str> for Content {
    fn from(s: &str) -> Self {
        Content::Text(s.to_owned())
    }
}

impl From<String> for Content {
    fn from(s: String) -> Self {
        Content::Text(s)
    }
}

/// One part of a multi-part content (`{"type":"text","text":…}`, `{"type":"image_url",…}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ContentPart {
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart {
            kind: "text".into(),
            text: Some(text.into()),
            extra: Extra::new(),
        }
    }
}

/// A chat message (request or response).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Message {
    pub fn new(role: Role, content: impl Into<Content>) -> Self {
        Message {
            role,
            content: Some(content.into()),
            name: None,
            tool_calls: None,
            tool_call_id: None,
            refusal: None,
            reasoning: None,
            extra: Extra::new(),
        }
    }

    pub fn system(content: impl Into<Content>) -> Self {
        Message::new(Role::System, content)
    }

    pub fn user(content: impl Into<Content>) -> Self {
        Message::new(Role::User, content)
    }

    pub fn assistant(content: impl Into<Content>) -> Self {
        Message::new(Role::Assistant, content)
    }

    /// The content as text (empty when there is none).
    pub fn text(&self) -> String {
        self.content.as_ref().map(Content::text).unwrap_or_default()
    }
}

/// `stop`: one sequence or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

/// Maximum prices in USD per million tokens (`provider.max_price`), sent as JSON numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MaxPrice {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "json_number::option::serialize"
    )]
    pub prompt: Option<Money>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "json_number::option::serialize"
    )]
    pub completion: Option<Money>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "json_number::option::serialize"
    )]
    pub request: Option<Money>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "json_number::option::serialize"
    )]
    pub image: Option<Money>,
}

/// Provider routing preferences (`provider`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderPreferences {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_fallbacks: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_parameters: Option<bool>,
    /// `allow` or `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_collection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zdr: Option<bool>,
    /// `price`, `throughput` or `latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantizations: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<MaxPrice>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `usage: {include: true}` (deprecated upstream: usage is always returned).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageOptions {
    #[serde(default)]
    pub include: bool,
}

/// `stream_options: {include_usage: true}` (deprecated upstream: usage is always returned).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// Body of `POST /chat/completions`. Fields this type does not model go through `extra`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// e.g. `openai/gpt-4o`; the account default when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Fallback models, tried in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// A stable end-user id (shows as `external_user` in generation stats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderPreferences>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Value>,
    /// Anything else (`session_id`, `plugins`, `debug`, …), passed through verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatRequest {
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        ChatRequest {
            model: Some(model.into()),
            messages,
            ..Default::default()
        }
    }

    pub fn max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = Some(n);
        self
    }

    /// The effective completion cap: `max_completion_tokens`, else `max_tokens`.
    pub fn completion_cap(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }
}

/// `usage.prompt_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
    #[serde(default)]
    pub audio_tokens: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `usage.completion_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

wire_object! {
    /// `usage.cost_details` (USD).
    pub struct CostDetails {
        #[serde(default, with = "json_number::option")]
        pub upstream_inference_cost: Option<Money>,
        #[serde(default, with = "json_number::option")]
        pub upstream_inference_prompt_cost: Option<Money>,
        #[serde(default, with = "json_number::option")]
        pub upstream_inference_completions_cost: Option<Money>,
    }
}

wire_object! {
    /// Token counts and the exact cost of a completion.
    pub struct Usage {
        #[serde(default)]
        pub prompt_tokens: u64,
        #[serde(default)]
        pub completion_tokens: u64,
        #[serde(default)]
        pub total_tokens: u64,
        /// In credits (1 credit = 1 USD), exact.
        #[serde(default, with = "json_number")]
        pub cost: Money,
        #[serde(default)]
        pub is_byok: bool,
        #[serde(default)]
        pub prompt_tokens_details: Option<PromptTokensDetails>,
        #[serde(default)]
        pub completion_tokens_details: Option<CompletionTokensDetails>,
        #[serde(default)]
        pub cost_details: Option<CostDetails>,
    }
}

/// One choice of a non-streamed response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    pub message: Message,
    /// `tool_calls`, `stop`, `length`, `content_filter` or `error`.
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub native_finish_reason: Option<String>,
    #[serde(default)]
    pub logprobs: Option<Value>,
    /// Set when the call failed after some tokens were produced (status still 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

wire_object! {
    /// A non-streamed chat completion.
    pub struct ChatResponse {
        /// The generation id (`gen-…`), usable with `/generation`.
        pub id: String,
        /// Seen in practice, not in the spec.
        #[serde(default)]
        pub provider: Option<String>,
        /// The model that was used and billed (may be a fallback).
        #[serde(default)]
        pub model: String,
        #[serde(default)]
        pub object: Option<String>,
        #[serde(default)]
        pub created: Option<i64>,
        #[serde(default)]
        pub system_fingerprint: Option<String>,
        #[serde(default)]
        pub choices: Vec<Choice>,
        #[serde(default)]
        pub usage: Option<Usage>,
    }
}

impl ChatResponse {
    /// The first choice's text.
    pub fn text(&self) -> String {
        self.choices
            .first()
            .map(|c| c.message.text())
            .unwrap_or_default()
    }
}

/// A non-streamed completion plus transport facts.
#[derive(Clone, Debug)]
pub struct ChatCompletion {
    pub response: ChatResponse,
    /// The `X-Generation-Id` response header, when sent.
    pub generation_id: Option<String>,
    /// How many retries it took.
    pub retries: u32,
    /// The response body exactly as received (for byte-exact forwarding).
    pub raw: bytes::Bytes,
}

impl ChatCompletion {
    /// The header's generation id, else the body's `id`.
    pub fn generation_id(&self) -> &str {
        self.generation_id.as_deref().unwrap_or(&self.response.id)
    }
}

/// `delta` of a stream chunk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One choice of a stream chunk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub native_finish_reason: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `error.code` of a mid-stream error: an integer (usually an HTTP status) or a string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorCode {
    Int(i64),
    Text(String),
}

impl ErrorCode {
    /// The code as an HTTP status, when it is one (an integer or numeric string in 100..=599).
    pub fn as_status(&self) -> Option<u16> {
        let n = match self {
            ErrorCode::Int(n) => *n,
            ErrorCode::Text(s) => s.trim().parse().ok()?,
        };
        u16::try_from(n).ok().filter(|s| (100..=599).contains(s))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Int(n) => write!(f, "{n}"),
            ErrorCode::Text(s) => f.write_str(s),
        }
    }
}

/// The `error` object of a mid-stream error chunk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamErrorBody {
    #[serde(default)]
    pub code: Option<ErrorCode>,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

wire_object! {
    /// One `data:` chunk of a streamed completion.
    pub struct ChatChunk {
        /// The generation id, shared by every chunk of the stream.
        #[serde(default)]
        pub id: String,
        #[serde(default)]
        pub provider: Option<String>,
        #[serde(default)]
        pub model: Option<String>,
        #[serde(default)]
        pub object: Option<String>,
        #[serde(default)]
        pub created: Option<i64>,
        #[serde(default)]
        pub choices: Vec<ChunkChoice>,
        /// Present on the final chunk (with `choices: []`).
        #[serde(default)]
        pub usage: Option<Usage>,
        /// A mid-stream error; the stream ends after it.
        #[serde(default)]
        pub error: Option<StreamErrorBody>,
    }
}

impl ChatChunk {
    /// The first choice's delta text, if any.
    pub fn content(&self) -> Option<&str> {
        self.choices
            .first()
            .and_then(|c| c.delta.content.as_deref())
    }

    /// The first choice's finish reason, if any.
    pub fn finish_reason(&self) -> Option<&str> {
        self.choices
            .first()
            .and_then(|c| c.finish_reason.as_deref())
    }
}
