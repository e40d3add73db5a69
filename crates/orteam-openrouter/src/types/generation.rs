//! `GET /generation?id=gen-…`: stats of one completion. Most fields are nullable.

use chrono::{DateTime, Utc};
use orteam_core::Money;
use orteam_core::money::json_number;
use serde_json::Value;

use super::{timestamp, wire_object};

wire_object! {
    /// The stored record of one generation.
    pub struct Generation {
        pub id: String,
        #[serde(default, with = "timestamp::option")]
        pub created_at: Option<DateTime<Utc>>,
        #[serde(default)]
        pub model: Option<String>,
        #[serde(default)]
        pub provider_name: Option<String>,
        #[serde(default)]
        pub origin: Option<String>,
        #[serde(default)]
        pub http_referer: Option<String>,
        #[serde(default)]
        pub user_agent: Option<String>,
        /// The request's `user` field.
        #[serde(default)]
        pub external_user: Option<String>,
        #[serde(default)]
        pub app_id: Option<Value>,
        #[serde(default)]
        pub api_type: Option<String>,
        #[serde(default)]
        pub router: Option<String>,
        #[serde(default)]
        pub request_id: Option<String>,
        #[serde(default)]
        pub session_id: Option<String>,
        #[serde(default)]
        pub upstream_id: Option<String>,
        /// USD.
        #[serde(default, with = "json_number::option")]
        pub total_cost: Option<Money>,
        /// USD.
        #[serde(default, with = "json_number::option")]
        pub usage: Option<Money>,
        #[serde(default)]
        pub is_byok: Option<bool>,
        /// BYOK only, USD.
        #[serde(default, with = "json_number::option")]
        pub upstream_inference_cost: Option<Money>,
        #[serde(default, with = "json_number::option")]
        pub cache_discount: Option<Money>,
        #[serde(default)]
        pub streamed: Option<bool>,
        #[serde(default)]
        pub cancelled: Option<bool>,
        /// Milliseconds.
        #[serde(default)]
        pub latency: Option<f64>,
        /// Milliseconds.
        #[serde(default)]
        pub moderation_latency: Option<f64>,
        /// Milliseconds.
        #[serde(default)]
        pub generation_time: Option<f64>,
        #[serde(default)]
        pub finish_reason: Option<String>,
        #[serde(default)]
        pub native_finish_reason: Option<String>,
        #[serde(default)]
        pub tokens_prompt: Option<u64>,
        #[serde(default)]
        pub tokens_completion: Option<u64>,
        #[serde(default)]
        pub native_tokens_prompt: Option<u64>,
        #[serde(default)]
        pub native_tokens_completion: Option<u64>,
        #[serde(default)]
        pub native_tokens_completion_images: Option<u64>,
        #[serde(default)]
        pub native_tokens_reasoning: Option<u64>,
        #[serde(default)]
        pub native_tokens_cached: Option<u64>,
        #[serde(default)]
        pub num_media_prompt: Option<u64>,
        #[serde(default)]
        pub num_media_completion: Option<u64>,
        #[serde(default)]
        pub num_input_audio_prompt: Option<u64>,
        #[serde(default)]
        pub num_search_results: Option<u64>,
        #[serde(default)]
        pub num_fetches: Option<u64>,
        #[serde(default)]
        pub provider_responses: Option<Vec<Value>>,
        #[serde(default)]
        pub web_search_engine: Option<String>,
        #[serde(default)]
        pub response_cache_source_id: Option<String>,
        #[serde(default)]
        pub data_region: Option<String>,
        #[serde(default)]
        pub preset_id: Option<String>,
        #[serde(default)]
        pub service_tier: Option<String>,
        #[serde(default)]
        pub workspace_id: Option<String>,
    }
}
