//! Workspaces (management key): CRUD and members. Keys and guardrails name theirs by
//! `workspace_id`; every account has a default workspace.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Patch, timestamp, wire_object};

wire_object! {
    /// A workspace.
    pub struct Workspace {
        pub id: String,
        pub name: String,
        /// Unique per account; the paths accept it in place of the id.
        #[serde(default)]
        pub slug: String,
        #[serde(default)]
        pub description: Option<String>,
        #[serde(default)]
        pub created_by: Option<String>,
        #[serde(default)]
        pub default_guardrail_id: Option<String>,
        #[serde(default, with = "timestamp::option")]
        pub created_at: Option<DateTime<Utc>>,
        #[serde(default, with = "timestamp::option")]
        pub updated_at: Option<DateTime<Utc>>,
    }
}

wire_object! {
    /// A member of a workspace.
    pub struct WorkspaceMember {
        #[serde(default)]
        pub id: String,
        #[serde(default)]
        pub workspace_id: String,
        pub user_id: String,
        /// `admin` or `member`.
        #[serde(default)]
        pub role: Option<String>,
        #[serde(default, with = "timestamp::option")]
        pub created_at: Option<DateTime<Utc>>,
    }
}

/// Body of `POST /workspaces`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateWorkspaceRequest {
    pub name: String,
    /// Lowercase letters, digits and dashes.
    pub slug: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Body of `PATCH /workspaces/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateWorkspaceRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub description: Patch<String>,
}

/// `{user_ids}`: the body of the member add/remove calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct UserIds<'a> {
    pub user_ids: &'a [String],
}

/// `POST /workspaces/{id}/members/add` → `{added_count, data}`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct MembersAdded {
    #[serde(default)]
    pub added_count: u64,
    #[serde(default)]
    pub data: Vec<WorkspaceMember>,
}

/// `POST /workspaces/{id}/members/remove` → `{removed_count}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct MembersRemoved {
    #[serde(default)]
    pub removed_count: u64,
}
