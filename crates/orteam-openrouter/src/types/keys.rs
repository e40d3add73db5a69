//! API keys: `/keys`, `/keys/{hash}` (management key) and `/key` (any key).

use chrono::{DateTime, Utc};
use orteam_core::money::json_number;
use orteam_core::{Money, Window};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{Patch, money_serde, timestamp, wire_object};

wire_object! {
    /// An API key as the management API returns it (`GET /keys`, `GET /keys/{hash}`, …).
    pub struct Key {
        /// The key's id: a 64-char SHA-256 hex digest.
        pub hash: String,
        pub name: String,
        /// A masked preview such as `sk-or-v1-0e6...1c96`. Never the secret.
        #[serde(default)]
        pub label: String,
        #[serde(default)]
        pub disabled: bool,
        /// Spending limit in USD, `None` for unlimited.
        #[serde(default, with = "json_number::option")]
        pub limit: Option<Money>,
        /// `limit` minus the usage of the reset period; `None` when there is no limit.
        #[serde(default, with = "json_number::option")]
        pub limit_remaining: Option<Money>,
        /// When the limit resets (UTC); `None` means the limit is cumulative.
        #[serde(default)]
        pub limit_reset: Option<Window>,
        #[serde(default)]
        pub include_byok_in_limit: bool,
        #[serde(default, with = "json_number")]
        pub usage: Money,
        #[serde(default, with = "json_number")]
        pub usage_daily: Money,
        #[serde(default, with = "json_number")]
        pub usage_weekly: Money,
        #[serde(default, with = "json_number")]
        pub usage_monthly: Money,
        #[serde(default, with = "json_number")]
        pub byok_usage: Money,
        #[serde(default, with = "json_number")]
        pub byok_usage_daily: Money,
        #[serde(default, with = "json_number")]
        pub byok_usage_weekly: Money,
        #[serde(default, with = "json_number")]
        pub byok_usage_monthly: Money,
        #[serde(with = "timestamp::required")]
        pub created_at: DateTime<Utc>,
        #[serde(default, with = "timestamp::option")]
        pub updated_at: Option<DateTime<Utc>>,
        #[serde(default, with = "timestamp::option")]
        pub expires_at: Option<DateTime<Utc>>,
        #[serde(default)]
        pub creator_user_id: Option<String>,
        #[serde(default)]
        pub workspace_id: Option<String>,
        /// The partner end user the key was created for (`external.user` at creation).
        #[serde(default)]
        pub external_user: Option<String>,
        /// The last request made with the key.
        #[serde(default, with = "timestamp::option")]
        pub last_used_at: Option<DateTime<Utc>>,
    }
}

/// `POST /keys` → `201 {data: Key, key: "sk-or-v1-…"}`. The secret is shown only once.
///
/// `Debug` prints the secret as `[REDACTED]`; read it with `secrecy::ExposeSecret`.
#[derive(Clone, Debug, Deserialize)]
pub struct CreatedKey {
    pub data: Key,
    pub key: SecretString,
}

/// Body of `POST /keys`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateKeyRequest {
    pub name: String,
    /// Spending limit in USD (sent as a JSON number).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "json_number::option::serialize"
    )]
    pub limit: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_reset: Option<Window>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_byok_in_limit: Option<bool>,
    /// Must be UTC (other offsets are a 400 upstream); sent as RFC 3339 with `Z`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "timestamp::option::serialize"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
}

impl CreateKeyRequest {
    /// Creates the key in this workspace (id or slug).
    pub fn workspace(mut self, workspace_id: impl Into<String>) -> Self {
        self.workspace_id = Some(workspace_id.into());
        self
    }

    pub fn new(name: impl Into<String>) -> Self {
        CreateKeyRequest {
            name: name.into(),
            ..Default::default()
        }
    }

    pub fn limit(mut self, limit: Money) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn limit_reset(mut self, window: Window) -> Self {
        self.limit_reset = Some(window);
        self
    }

    pub fn expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// Body of `PATCH /keys/{hash}`: only fields that are not [`Patch::Keep`] are sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateKeyRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// `Clear` sends `null` and removes the limit.
    #[serde(
        skip_serializing_if = "Patch::is_keep",
        serialize_with = "money_serde::patch_number"
    )]
    pub limit: Patch<Money>,
    /// `Clear` sends `null`: the limit becomes cumulative.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub limit_reset: Patch<Window>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_byok_in_limit: Option<bool>,
    /// Not in the official spec (the admin MCP sends it); `Clear` sends `null`.
    #[serde(
        skip_serializing_if = "Patch::is_keep",
        serialize_with = "patch_timestamp"
    )]
    pub expires_at: Patch<DateTime<Utc>>,
    /// Moves the key to another workspace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
}

fn patch_timestamp<S: serde::Serializer>(
    p: &Patch<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match p {
        Patch::Set(t) => timestamp::required::serialize(t, s),
        Patch::Keep | Patch::Clear => s.serialize_none(),
    }
}

impl UpdateKeyRequest {
    /// True when no field would be sent.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.disabled.is_none()
            && self.limit.is_keep()
            && self.limit_reset.is_keep()
            && self.include_byok_in_limit.is_none()
            && self.expires_at.is_keep()
            && self.workspace_id.is_none()
    }
}

/// Query of `GET /keys`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListKeysParams {
    /// Keys to skip; pages hold 100 keys, newest first.
    pub offset: Option<u32>,
    /// Sent as `"true"`/`"false"` when set.
    pub include_disabled: Option<bool>,
    pub workspace_id: Option<String>,
}

impl ListKeysParams {
    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(o) = self.offset {
            q.push(("offset", o.to_string()));
        }
        if let Some(d) = self.include_disabled {
            q.push(("include_disabled", d.to_string()));
        }
        if let Some(w) = &self.workspace_id {
            q.push(("workspace_id", w.clone()));
        }
        q
    }
}

wire_object! {
    /// `GET /key`: the key making the call.
    pub struct KeyInfo {
        #[serde(default)]
        pub label: String,
        #[serde(default, with = "json_number::option")]
        pub limit: Option<Money>,
        #[serde(default, with = "json_number::option")]
        pub limit_remaining: Option<Money>,
        #[serde(default)]
        pub limit_reset: Option<Window>,
        #[serde(default)]
        pub include_byok_in_limit: bool,
        #[serde(default, with = "json_number")]
        pub usage: Money,
        #[serde(default, with = "json_number")]
        pub usage_daily: Money,
        #[serde(default, with = "json_number")]
        pub usage_weekly: Money,
        #[serde(default, with = "json_number")]
        pub usage_monthly: Money,
        #[serde(default, with = "json_number")]
        pub byok_usage: Money,
        #[serde(default, with = "json_number")]
        pub byok_usage_daily: Money,
        #[serde(default, with = "json_number")]
        pub byok_usage_weekly: Money,
        #[serde(default, with = "json_number")]
        pub byok_usage_monthly: Money,
        /// True if the account never bought credits.
        #[serde(default)]
        pub is_free_tier: bool,
        #[serde(default)]
        pub is_management_key: bool,
        /// The older name of `is_management_key`.
        #[serde(default)]
        pub is_provisioning_key: bool,
        #[serde(default)]
        pub creator_user_id: Option<String>,
        #[serde(default, with = "timestamp::option")]
        pub expires_at: Option<DateTime<Utc>>,
        /// Deprecated and meaningless upstream; kept raw.
        #[serde(default)]
        pub rate_limit: Option<serde_json::Value>,
        /// `global`, `europe`, `us`.
        #[serde(default)]
        pub allowed_data_regions: Vec<String>,
        /// Every budget that limits this key (its own limit, guardrails, workspace).
        #[serde(default)]
        pub budgets: Vec<KeyBudget>,
        /// The budget with the least left, if any applies.
        #[serde(default)]
        pub effective_budget: Option<KeyBudget>,
        #[serde(default)]
        pub free_model_daily_requests: Option<FreeModelDailyRequests>,
        #[serde(default)]
        pub organization_id: Option<String>,
        #[serde(default)]
        pub workspace_id: Option<String>,
    }
}

wire_object! {
    /// One budget limiting a key, as `GET /key` reports it.
    pub struct KeyBudget {
        /// `key_limit`, `api_key`, `member`, `workspace`, `workspace_default_key`,
        /// `workspace_default_member`, or a newer scope.
        #[serde(default)]
        pub scope: String,
        #[serde(default)]
        pub budget_id: Option<String>,
        #[serde(default)]
        pub guardrail_id: Option<String>,
        #[serde(default)]
        pub include_byok: bool,
        #[serde(default, with = "json_number")]
        pub limit_usd: Money,
        #[serde(default, with = "json_number")]
        pub remaining_usd: Money,
        #[serde(default, with = "json_number")]
        pub spend_usd: Money,
        #[serde(default)]
        pub reset_interval: Option<Window>,
        #[serde(default, with = "timestamp::option")]
        pub resets_at: Option<DateTime<Utc>>,
    }
}

/// `:free` model requests today (`GET /key`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct FreeModelDailyRequests {
    #[serde(default)]
    pub limit: u64,
    #[serde(default)]
    pub remaining: u64,
    #[serde(default)]
    pub used: u64,
}

impl KeyInfo {
    /// True for a management (provisioning) key.
    pub fn is_management(&self) -> bool {
        self.is_management_key || self.is_provisioning_key
    }
}
