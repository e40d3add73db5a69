//! The plan's data: changes as shown to the user, and the operations apply runs for them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use orteam_core::{Money, Window};
use orteam_ledger::{BudgetScope, NewMember, Tier};
use serde::Serialize;

use crate::file::KeySpec;
use crate::naming::KeyLabel;

/// Plan options.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub now: DateTime<Utc>,
    /// Delete strays.
    pub prune: bool,
    /// Report keys without use for this many days.
    pub unused_days: u32,
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    /// Revoke or delete.
    Delete,
    /// Issue a successor; the old key keeps working for its grace period.
    Rotate,
    /// Delete and create anew.
    Replace,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Rotate => "~",
            Action::Replace => "-/+",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "revoke",
            Action::Rotate => "rotate",
            Action::Replace => "replace",
        }
    }
}

/// What a change applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Org,
    Tier,
    Team,
    Member,
    Budget,
    VirtualKey,
    UpstreamKey,
    StrayKey,
    Workspace,
    Guardrail,
    SharedKey,
    AdminToken,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Org => "org",
            Resource::Tier => "tier",
            Resource::Team => "team",
            Resource::Member => "member",
            Resource::Budget => "budget",
            Resource::VirtualKey => "virtual key",
            Resource::UpstreamKey => "upstream key",
            Resource::StrayKey => "stray key",
            Resource::Workspace => "openrouter workspace",
            Resource::Guardrail => "openrouter guardrail",
            Resource::SharedKey => "shared upstream key",
            Resource::AdminToken => "admin token",
        }
    }
}

/// One attribute's old and new value (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// One change, as shown to the user, with the operations that make it.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub action: Action,
    pub resource: Resource,
    pub id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip)]
    pub(crate) ops: Vec<Op>,
}

/// An OpenRouter key no member owns.
#[derive(Debug, Clone, Serialize)]
pub struct StrayKey {
    pub hash: String,
    pub name: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
    pub usage: Money,
}

/// A key not used for at least the requested number of days.
#[derive(Debug, Clone, Serialize)]
pub struct UnusedKey {
    pub kind: &'static str,
    pub member: Option<String>,
    /// Virtual key prefix or OpenRouter key name.
    pub key: String,
    /// The latest moment the key can have been used, as far as can be told.
    pub last_used_at_most: DateTime<Utc>,
    pub idle_days: i64,
}

/// An active temporary raise.
#[derive(Debug, Clone, Serialize)]
pub struct RaiseInfo {
    pub scope: BudgetScope,
    pub scope_id: String,
    pub window: Window,
    pub amount: Money,
    pub until: DateTime<Utc>,
    pub reason: String,
}

/// A key rotation coming up, for information.
#[derive(Debug, Clone, Serialize)]
pub struct RotationInfo {
    pub member: String,
    pub key: String,
    pub due_at: DateTime<Utc>,
}

/// The plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub org: String,
    pub changes: Vec<Change>,
    pub strays: Vec<StrayKey>,
    pub unused: Vec<UnusedKey>,
    pub raises: Vec<RaiseInfo>,
    pub rotations: Vec<RotationInfo>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// (create, update/rotate, delete/replace) counts.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for ch in &self.changes {
            match ch.action {
                Action::Create => c.0 += 1,
                Action::Update | Action::Rotate => c.1 += 1,
                Action::Delete | Action::Replace => c.2 += 1,
            }
        }
        c
    }
}

/// Settings of a provisioned OpenRouter key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpstreamSettings {
    pub limit: Option<Money>,
    pub limit_reset: Option<Window>,
    pub include_byok_in_limit: bool,
    pub expires_in: Option<Duration>,
    /// The slug of the OpenRouter workspace the key is created in (its team's).
    pub workspace: Option<String>,
}

impl UpstreamSettings {
    pub(crate) fn of(spec: &KeySpec) -> Self {
        UpstreamSettings {
            limit: spec.limit.map(|a| a.0),
            limit_reset: spec.limit_reset,
            include_byok_in_limit: spec.include_byok_in_limit,
            expires_in: spec.expires_in.map(|d| d.0),
            workspace: None,
        }
    }
}

/// The operations apply runs, in order.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    PutOrg {
        id: String,
        name: String,
    },
    PutTier(Tier),
    PutTeam {
        id: String,
        org: String,
        name: String,
    },
    PutMember(NewMember),
    RemoveMember(String),
    SetBudget {
        scope: BudgetScope,
        id: String,
        window: Window,
        limit: Money,
    },
    ClearBudget {
        scope: BudgetScope,
        id: String,
        window: Window,
    },
    IssueVirtualKey {
        member: String,
        label: KeyLabel,
        expires_in: Option<Duration>,
    },
    RevokeVirtualKey(String),
    /// Rotation: the old key keeps working until `now + grace`.
    ExpireVirtualKey {
        id: String,
        grace: Duration,
    },
    CreateUpstreamKey {
        member: String,
        label: KeyLabel,
        settings: UpstreamSettings,
        /// `upstream = "own"`: the ledger keeps the secret for the gateway; otherwise (direct)
        /// the secret is delivered to the member.
        hold_secret: bool,
    },
    UpdateUpstreamKey {
        hash: String,
        req: orteam_openrouter::types::keys::UpdateKeyRequest,
        /// Failures are logged, not fatal (PATCH `expires_at` is not in OpenRouter's spec).
        best_effort: bool,
    },
    DeleteUpstreamKey {
        hash: String,
        record: Option<String>,
    },
    RemoveUpstreamRecord(String),
    /// Creates an OpenRouter workspace (marked as orteam's in its description).
    CreateWorkspace {
        slug: String,
        name: String,
        description: String,
    },
    DeleteWorkspace {
        id: String,
    },
    /// Moves an existing key into the workspace with this slug (resolved at apply time: it
    /// may be created by the same apply).
    MoveKeyToWorkspace {
        hash: String,
        slug: String,
    },
    /// Creates the guardrail named `name`, or updates it if it exists by then (a repeated apply
    /// after a crash finds it by name).
    PutGuardrail {
        name: String,
        allowed_models: Vec<String>,
        description: String,
    },
    DeleteGuardrail {
        id: String,
    },
    /// Assigns the guardrail named `guardrail` (resolved at apply time) to every OpenRouter key
    /// the ledger records for these members by then (keys created by the same apply included).
    AssignGuardrailKeys {
        guardrail: String,
        members: Vec<String>,
    },
    UnassignGuardrailKeys {
        id: String,
        hashes: Vec<String>,
    },
    /// Creates a declared admin token (pending expiry, deliver, real expiry: see `tokens.rs`).
    CreateAdminToken {
        /// The org whose file declares it (recorded as the token's `file_org`).
        org: String,
        name: String,
        role: orteam_core::access::Role,
        teams: Vec<String>,
        max_raise: Option<Money>,
        expires_in: Option<Duration>,
    },
    /// Changes a declared token's role, teams, max_raise and expiry in place.
    UpdateAdminToken {
        name: String,
        update: orteam_ledger::AdminTokenUpdate,
    },
    RevokeAdminToken {
        name: String,
    },
}
