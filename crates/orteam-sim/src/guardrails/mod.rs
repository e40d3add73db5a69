//! Guardrails: the stored records, their enforcement on completions (`enforce.rs`) and the
//! management API that edits them (`crud.rs`: CRUD, key and member assignments, official paths
//! plus the opt-in legacy MCP aliases).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use orteam_core::{Money, Window};
use serde::{Deserialize, Serialize};

mod crud;
mod enforce;

pub(crate) use crud::{legacy_routes, routes};
pub(crate) use enforce::{KeyBudget, check_budgets, key_budgets, route};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Guardrail {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub limit_usd: Option<Money>,
    pub reset_interval: Option<Window>,
    pub allowed_providers: Option<Vec<String>>,
    pub ignored_providers: Option<Vec<String>>,
    pub allowed_models: Option<Vec<String>>,
    pub ignored_models: Option<Vec<String>>,
    pub enforce_zdr: Option<bool>,
    /// Whether BYOK spend counts against `limit_usd`.
    #[serde(default)]
    pub include_byok_in_budgets: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub workspace_id: String,
    pub seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeyAssignment {
    pub id: String,
    pub guardrail_id: String,
    pub key_hash: Arc<str>,
    pub assigned_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MemberAssignment {
    pub id: String,
    pub guardrail_id: String,
    pub user_id: String,
    pub assigned_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub seq: u64,
}
