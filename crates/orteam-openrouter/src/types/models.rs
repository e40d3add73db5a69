//! Models and provider endpoints: `/models`, `/models/user`, `/models/{author}/{slug}/endpoints`,
//! `/endpoints/zdr`.
//!
//! Prices are decimal strings in USD per token (or per request, image, search) and parse exactly
//! into [`Money`].

use orteam_core::Money;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::wire_object;

wire_object! {
    /// Prices in USD per unit. `prompt`/`completion` are per token; `None` when upstream
    /// published no price (which is not the same as a free `"0"`).
    pub struct Pricing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub prompt: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub completion: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image_token: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image_output: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub audio: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub audio_output: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub web_search: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub internal_reasoning: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input_cache_read: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input_cache_write: Option<Money>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input_cache_write_1h: Option<Money>,
        /// A fraction, not money.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub discount: Option<f64>,
    }
}

impl Pricing {
    /// `prompt_tokens × prompt + completion_tokens × completion + request`, exactly;
    /// `None` on overflow or when a price is missing. Cache and reasoning rates are not
    /// included.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> Option<Money> {
        let p = self.prompt?.checked_mul_u64(prompt_tokens)?;
        let c = self.completion?.checked_mul_u64(completion_tokens)?;
        p.checked_add(c)?
            .checked_add(self.request.unwrap_or(Money::ZERO))
    }
}

/// `architecture` of a model.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Architecture {
    #[serde(default)]
    pub modality: Option<String>,
    #[serde(default)]
    pub input_modalities: Vec<String>,
    #[serde(default)]
    pub output_modalities: Vec<String>,
    #[serde(default)]
    pub tokenizer: Option<String>,
    #[serde(default)]
    pub instruct_type: Option<String>,
    #[serde(flatten)]
    pub extra: super::Extra,
}

/// `top_provider` of a model.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct TopProvider {
    #[serde(default)]
    pub context_length: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub is_moderated: Option<bool>,
    #[serde(flatten)]
    pub extra: super::Extra,
}

wire_object! {
    /// A model of the catalog.
    pub struct Model {
        /// `author/slug`, e.g. `openai/gpt-4o`.
        pub id: String,
        #[serde(default)]
        pub canonical_slug: Option<String>,
        #[serde(default)]
        pub name: String,
        /// Unix seconds.
        #[serde(default)]
        pub created: Option<i64>,
        #[serde(default)]
        pub description: Option<String>,
        #[serde(default)]
        pub context_length: Option<u64>,
        #[serde(default)]
        pub architecture: Option<Architecture>,
        #[serde(default)]
        pub pricing: Pricing,
        #[serde(default)]
        pub top_provider: Option<TopProvider>,
        #[serde(default)]
        pub per_request_limits: Option<Value>,
        #[serde(default)]
        pub supported_parameters: Vec<String>,
        #[serde(default)]
        pub default_parameters: Option<Value>,
        #[serde(default)]
        pub hugging_face_id: Option<String>,
        #[serde(default)]
        pub knowledge_cutoff: Option<String>,
        #[serde(default)]
        pub expiration_date: Option<String>,
        #[serde(default)]
        pub links: Option<Value>,
        /// Voices of speech models (null for the others).
        #[serde(default)]
        pub supported_voices: Option<Vec<String>>,
    }
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            prompt: None,
            completion: None,
            request: None,
            image: None,
            image_token: None,
            image_output: None,
            audio: None,
            audio_output: None,
            web_search: None,
            internal_reasoning: None,
            input_cache_read: None,
            input_cache_write: None,
            input_cache_write_1h: None,
            discount: None,
            extra: super::Extra::new(),
        }
    }
}

/// `GET /models` and `GET /models/user`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct ModelList {
    pub data: Vec<Model>,
    /// Newer spec only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    /// Newer spec only (`links.next`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Value>,
}

/// Query of `GET /models`. There is no `search` parameter upstream; use `q` (newer spec).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelsParams {
    pub category: Option<String>,
    /// Sent as a comma-separated list.
    pub supported_parameters: Vec<String>,
    /// Sent as a comma-separated list; `["all"]` for every modality (upstream default: text).
    pub output_modalities: Vec<String>,
    pub use_rss: Option<bool>,
    /// Search text (newer spec).
    pub q: Option<String>,
    pub offset: Option<u32>,
    pub limit: Option<u32>,
    pub sort: Option<String>,
    /// Any other query parameter (e.g. the newer price filters), sent verbatim.
    pub other: Vec<(String, String)>,
}

impl ModelsParams {
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        let mut q: Vec<(String, String)> = Vec::new();
        if let Some(c) = &self.category {
            q.push(("category".into(), c.clone()));
        }
        if !self.supported_parameters.is_empty() {
            q.push((
                "supported_parameters".into(),
                self.supported_parameters.join(","),
            ));
        }
        if !self.output_modalities.is_empty() {
            q.push(("output_modalities".into(), self.output_modalities.join(",")));
        }
        if let Some(r) = self.use_rss {
            q.push(("use_rss".into(), r.to_string()));
        }
        if let Some(s) = &self.q {
            q.push(("q".into(), s.clone()));
        }
        if let Some(o) = self.offset {
            q.push(("offset".into(), o.to_string()));
        }
        if let Some(l) = self.limit {
            q.push(("limit".into(), l.to_string()));
        }
        if let Some(s) = &self.sort {
            q.push(("sort".into(), s.clone()));
        }
        q.extend(self.other.iter().cloned());
        q
    }
}

/// `{p50, p75, p90, p99}` latency or throughput.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Percentiles {
    #[serde(default)]
    pub p50: Option<f64>,
    #[serde(default)]
    pub p75: Option<f64>,
    #[serde(default)]
    pub p90: Option<f64>,
    #[serde(default)]
    pub p99: Option<f64>,
}

wire_object! {
    /// One provider endpoint serving a model.
    pub struct Endpoint {
        /// e.g. `OpenAI: GPT-4`.
        #[serde(default)]
        pub name: String,
        #[serde(default)]
        pub model_id: Option<String>,
        #[serde(default)]
        pub model_name: Option<String>,
        #[serde(default)]
        pub provider_name: Option<String>,
        #[serde(default)]
        pub tag: Option<String>,
        #[serde(default)]
        pub context_length: Option<u64>,
        #[serde(default)]
        pub max_completion_tokens: Option<u64>,
        #[serde(default)]
        pub max_prompt_tokens: Option<u64>,
        #[serde(default)]
        pub pricing: Pricing,
        #[serde(default)]
        pub quantization: Option<String>,
        /// 0 ok; negative values are degraded states (-1, -2, -3, -5, -10).
        #[serde(default)]
        pub status: Option<i64>,
        #[serde(default)]
        pub supported_parameters: Vec<String>,
        #[serde(default)]
        pub supports_implicit_caching: Option<bool>,
        /// Percent 0–100 (already a percentage).
        #[serde(default)]
        pub uptime_last_5m: Option<f64>,
        /// Percent 0–100 (already a percentage).
        #[serde(default)]
        pub uptime_last_30m: Option<f64>,
        /// Percent 0–100 (already a percentage).
        #[serde(default)]
        pub uptime_last_1d: Option<f64>,
        #[serde(default)]
        pub latency_last_30m: Option<Percentiles>,
        #[serde(default)]
        pub throughput_last_30m: Option<Percentiles>,
        /// Provider-native server tools by name (kept raw: their shapes vary).
        #[serde(default)]
        pub native_tools: Option<Value>,
        /// `flex`, `priority`, `ultrafast`, or null.
        #[serde(default)]
        pub service_tier: Option<String>,
        #[serde(default)]
        pub supports_diarization: Option<bool>,
        #[serde(default)]
        pub supports_tool_choice: Option<ToolChoiceSupport>,
    }
}

/// Which `tool_choice` values an endpoint honours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ToolChoiceSupport {
    #[serde(default)]
    pub auto: bool,
    #[serde(default)]
    pub function: bool,
    #[serde(default)]
    pub none: bool,
    #[serde(default)]
    pub required: bool,
}

/// `GET /models/count` → `{data:{count}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ModelCount {
    #[serde(default)]
    pub count: u64,
}

wire_object! {
    /// `GET /models/{author}/{slug}/endpoints`.
    pub struct ModelEndpoints {
        pub id: String,
        #[serde(default)]
        pub name: String,
        #[serde(default)]
        pub created: Option<i64>,
        #[serde(default)]
        pub description: Option<String>,
        #[serde(default)]
        pub architecture: Option<Architecture>,
        #[serde(default)]
        pub endpoints: Vec<Endpoint>,
    }
}
