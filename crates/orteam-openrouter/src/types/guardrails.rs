//! Guardrails and their key / member assignments (management key).

use chrono::{DateTime, Utc};
use orteam_core::money::json_number;
use orteam_core::{Money, Window};
use serde::{Deserialize, Serialize};

use super::{Patch, money_serde, timestamp, wire_object};

wire_object! {
    /// A guardrail: budget, provider / model allow- and ignore-lists, ZDR.
    pub struct Guardrail {
        /// A UUID.
        pub id: String,
        #[serde(default)]
        pub name: String,
        #[serde(default)]
        pub description: Option<String>,
        /// Budget in USD, `None` for no spend limit.
        #[serde(default, with = "json_number::option")]
        pub limit_usd: Option<Money>,
        #[serde(default)]
        pub reset_interval: Option<Window>,
        #[serde(default)]
        pub allowed_providers: Option<Vec<String>>,
        #[serde(default)]
        pub ignored_providers: Option<Vec<String>>,
        /// Canonical slugs.
        #[serde(default)]
        pub allowed_models: Option<Vec<String>>,
        #[serde(default)]
        pub ignored_models: Option<Vec<String>>,
        #[serde(default)]
        pub enforce_zdr: Option<bool>,
        #[serde(default, with = "timestamp::option")]
        pub created_at: Option<DateTime<Utc>>,
        #[serde(default, with = "timestamp::option")]
        pub updated_at: Option<DateTime<Utc>>,
        #[serde(default)]
        pub workspace_id: Option<String>,
        /// Whether BYOK spend counts against `limit_usd`.
        #[serde(default)]
        pub include_byok_in_budgets: Option<bool>,
    }
}

/// Body of `POST /guardrails`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateGuardrailRequest {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "json_number::option::serialize"
    )]
    pub limit_usd: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_interval: Option<Window>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_providers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored_providers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored_models: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforce_zdr: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_byok_in_budgets: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
}

impl CreateGuardrailRequest {
    pub fn new(name: impl Into<String>) -> Self {
        CreateGuardrailRequest {
            name: name.into(),
            ..Default::default()
        }
    }
}

/// Body of `PATCH /guardrails/{id}`: `Keep` omits a field, `Clear` sends `null`, arrays are
/// replaced whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateGuardrailRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub description: Patch<String>,
    #[serde(
        skip_serializing_if = "Patch::is_keep",
        serialize_with = "money_serde::patch_number"
    )]
    pub limit_usd: Patch<Money>,
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub reset_interval: Patch<Window>,
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub allowed_providers: Patch<Vec<String>>,
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub ignored_providers: Patch<Vec<String>>,
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub allowed_models: Patch<Vec<String>>,
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub ignored_models: Patch<Vec<String>>,
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub enforce_zdr: Patch<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_byok_in_budgets: Option<bool>,
}

impl UpdateGuardrailRequest {
    /// True when no field would be sent.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_keep()
            && self.limit_usd.is_keep()
            && self.reset_interval.is_keep()
            && self.allowed_providers.is_keep()
            && self.ignored_providers.is_keep()
            && self.allowed_models.is_keep()
            && self.ignored_models.is_keep()
            && self.enforce_zdr.is_keep()
            && self.include_byok_in_budgets.is_none()
    }
}

/// Query of `GET /guardrails`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListGuardrailsParams {
    pub offset: Option<u32>,
    /// 1–100, default 50.
    pub limit: Option<u32>,
    pub workspace_id: Option<String>,
}

impl ListGuardrailsParams {
    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = super::Pagination {
            offset: self.offset,
            limit: self.limit,
        }
        .query();
        if let Some(w) = &self.workspace_id {
            q.push(("workspace_id", w.clone()));
        }
        q
    }
}

wire_object! {
    /// A key's guardrail assignment.
    pub struct KeyAssignment {
        pub id: String,
        pub guardrail_id: String,
        pub key_hash: String,
        #[serde(default)]
        pub key_name: Option<String>,
        #[serde(default)]
        pub key_label: Option<String>,
        #[serde(default)]
        pub assigned_by: Option<String>,
        #[serde(default, with = "timestamp::option")]
        pub created_at: Option<DateTime<Utc>>,
    }
}

wire_object! {
    /// An organization member's guardrail assignment.
    pub struct MemberAssignment {
        pub id: String,
        pub guardrail_id: String,
        pub user_id: String,
        #[serde(default)]
        pub organization_id: Option<String>,
        #[serde(default)]
        pub assigned_by: Option<String>,
        #[serde(default, with = "timestamp::option")]
        pub created_at: Option<DateTime<Utc>>,
    }
}

/// Body of `POST /guardrails/{id}/assignments/keys[/remove]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHashes {
    pub key_hashes: Vec<String>,
}

/// Body of `POST /guardrails/{id}/assignments/members[/remove]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberUserIds {
    pub member_user_ids: Vec<String>,
}

/// `{assigned_count}` from a bulk assign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedCount {
    pub assigned_count: u64,
}

/// `{unassigned_count}` from a bulk unassign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnassignedCount {
    pub unassigned_count: u64,
}
