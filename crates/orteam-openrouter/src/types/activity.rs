//! `GET /activity` (management key): the last 30 completed UTC days.

use chrono::NaiveDate;
use orteam_core::Money;
use orteam_core::money::json_number;

use super::wire_object;

/// Filters of `GET /activity`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityParams {
    /// One UTC day (`YYYY-MM-DD`).
    pub date: Option<NaiveDate>,
    /// Only this key's activity (rows themselves carry no key hash).
    pub api_key_hash: Option<String>,
    /// Only this organization member's activity.
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
}

impl ActivityParams {
    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(d) = self.date {
            q.push(("date", d.format("%Y-%m-%d").to_string()));
        }
        if let Some(h) = &self.api_key_hash {
            q.push(("api_key_hash", h.clone()));
        }
        if let Some(u) = &self.user_id {
            q.push(("user_id", u.clone()));
        }
        if let Some(w) = &self.workspace_id {
            q.push(("workspace_id", w.clone()));
        }
        q
    }
}

wire_object! {
    /// One row per (date, model, endpoint).
    pub struct ActivityRow {
        /// The UTC day, as the API writes it (e.g. `2025-08-24`).
        pub date: String,
        #[serde(default)]
        pub model: String,
        #[serde(default)]
        pub model_permaslug: Option<String>,
        #[serde(default)]
        pub endpoint_id: Option<String>,
        #[serde(default)]
        pub provider_name: Option<String>,
        /// Spend in USD.
        #[serde(default, with = "json_number")]
        pub usage: Money,
        /// BYOK inference spend in USD.
        #[serde(default, with = "json_number")]
        pub byok_usage_inference: Money,
        #[serde(default)]
        pub requests: u64,
        #[serde(default)]
        pub prompt_tokens: u64,
        #[serde(default)]
        pub completion_tokens: u64,
        #[serde(default)]
        pub reasoning_tokens: u64,
        #[serde(default)]
        pub cached_tokens: u64,
        #[serde(default)]
        pub workspace_id: Option<String>,
    }
}

impl ActivityRow {
    /// The row's date when it starts with `YYYY-MM-DD`.
    pub fn day(&self) -> Option<NaiveDate> {
        self.date
            .get(..10)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    }
}
