//! The ledger's entities: the directory (org, teams, tiers, members, budgets, keys) and the
//! values handed to callers (auth context, budget status, usage events).

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use orteam_core::{ApiRoute, Money, Window};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The prefix of every virtual key (`ot-…`).
pub const KEY_PREFIX: &str = "ot-";

// Plain values the dashboards show too, so they live in core.
pub use orteam_core::{BudgetScope, Outcome};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Which models a tier may use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "models")]
pub enum ModelAccess {
    /// Every model.
    #[default]
    All,
    /// Only the listed model ids (e.g. `openai/gpt-4o-mini`).
    Allow(Vec<String>),
}

/// What the gateway does with a request for a model outside the tier's allowlist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy", content = "model")]
pub enum OnDisallowed {
    /// Reject the request.
    #[default]
    Deny,
    /// Serve it with this model instead.
    Downgrade(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub id: String,
    pub name: String,
    pub models: ModelAccess,
    pub on_disallowed: OnDisallowed,
    /// Requests per minute per member (the gateway answers 429 above it).
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Tokens (prompt bound + max_tokens) per minute per member.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// What the gateway does with the fields that choose models or providers or add paid work.
    #[serde(default)]
    pub routing: RoutingPolicy,
}

/// What the gateway does with a field that chooses the models or providers that serve a
/// request (`models`/`fallbacks`; `provider`/`route`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteRule {
    /// Passed, checked: every fallback model must be on the tier's allowlist and the quote
    /// prices the dearest; provider preferences go upstream with `max_price` capped at the
    /// quoted prices.
    #[default]
    Check,
    /// Removed before forwarding (named in `x-orteam-removed`).
    Strip,
    /// Refused with 403 naming the field.
    Refuse,
}

/// What the gateway does with a field that adds work OpenRouter bills on top of tokens (paid
/// `plugins`, priced server tools in `tools`): it cannot be priced before it runs, so it is
/// never passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaidRule {
    /// Removed before forwarding (named in `x-orteam-removed`).
    Strip,
    /// Refused with 403 naming the field.
    Refuse,
}

/// A tier's policy for OpenRouter's routing fields. Presets, `speed: fast` and priority
/// `service_tier` are always refused (they choose a model or a price upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingPolicy {
    /// `models`, `fallbacks`.
    pub fallbacks: RouteRule,
    /// `provider`, `route`.
    pub provider: RouteRule,
    /// `plugins` other than the free ones.
    pub plugins: PaidRule,
    /// Server tools OpenRouter bills per call (`web_search`, `web_fetch`, `openrouter:*`).
    pub server_tools: PaidRule,
}

impl RouteRule {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteRule::Check => "check",
            RouteRule::Strip => "strip",
            RouteRule::Refuse => "refuse",
        }
    }
}

impl PaidRule {
    pub fn as_str(self) -> &'static str {
        match self {
            PaidRule::Strip => "strip",
            PaidRule::Refuse => "refuse",
        }
    }
}

impl Default for RoutingPolicy {
    fn default() -> Self {
        RoutingPolicy {
            fallbacks: RouteRule::Check,
            provider: RouteRule::Check,
            plugins: PaidRule::Refuse,
            server_tools: PaidRule::Strip,
        }
    }
}

impl Tier {
    /// Whether `model` is on the tier's allowlist.
    pub fn allows(&self, model: &str) -> bool {
        match &self.models {
            ModelAccess::All => true,
            ModelAccess::Allow(list) => list.iter().any(|m| m == model),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    Active,
    Removed,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Active => "active",
            MemberState::Removed => "removed",
        }
    }
}

impl FromStr for MemberState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(MemberState::Active),
            "removed" => Ok(MemberState::Removed),
            other => Err(format!("unknown member state {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub display_name: String,
    pub team_id: String,
    pub tier_id: String,
    pub state: MemberState,
    pub created_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

/// Input for [`crate::Ledger::put_member`] (create or update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMember {
    pub id: String,
    pub display_name: String,
    pub team_id: String,
    pub tier_id: String,
}

/// A spending limit for one scope and window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub scope: BudgetScope,
    pub scope_id: String,
    pub window: Window,
    pub limit: Money,
}

/// A temporary addition to a budget's limit, gone by itself at `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRaise {
    pub id: String,
    pub scope: BudgetScope,
    pub scope_id: String,
    pub window: Window,
    pub amount: Money,
    pub until: DateTime<Utc>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// A member's virtual key as stored: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualKey {
    /// The 12-character public id, also the key's id and its visible prefix (`ot-<id>…`).
    pub id: String,
    pub member_id: String,
    pub name: String,
    /// Hex SHA-256 of the full key.
    pub key_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub disabled: bool,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key this one replaced (rotation).
    pub replaces: Option<String>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl VirtualKey {
    /// What a person sees to recognise the key: `ot-<public id>…`.
    pub fn display_prefix(&self) -> String {
        format!("{}{}…", KEY_PREFIX, self.id)
    }
}

/// A newly created virtual key. The secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub key: VirtualKey,
    pub secret: SecretString,
}

/// A member's upstream OpenRouter key. The secret is never part of this value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamKey {
    pub id: String,
    pub member_id: String,
    pub label: String,
    /// OpenRouter's hash of the key (how its API identifies keys).
    pub key_hash: String,
    /// Whether the encrypted secret is held by the ledger.
    pub has_secret: bool,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
}

/// A shared OpenRouter key a gateway uses (`OPENROUTER_API_KEY`), registered so that the team
/// file's plan never counts it as a stray. The secret is never part of this value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayKey {
    /// OpenRouter's hash of the key (SHA-256 of the secret, hex).
    pub key_hash: String,
    /// The masked form OpenRouter shows, `sk-or-v1-abc...wxyz`.
    pub label: String,
    pub registered_at: DateTime<Utc>,
}

/// The upstream key the gateway uses for a member.
#[derive(Debug, Clone)]
pub struct UpstreamCredential {
    pub key_id: String,
    pub key_hash: String,
    /// Decrypted secret, when the ledger holds it and the process has the encryption key.
    pub secret: Option<SecretString>,
}

/// Who a virtual key belongs to and what they may do. Built in memory from the directory
/// snapshot, so authentication costs no database round trip.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub key_id: String,
    pub key_name: String,
    pub key_expires_at: Option<DateTime<Utc>>,
    pub member_id: String,
    pub member_name: String,
    pub team_id: String,
    pub org_id: String,
    pub tier: Arc<Tier>,
    pub upstream: Option<Arc<UpstreamCredential>>,
}

/// The state of one budget window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetStatus {
    pub scope: BudgetScope,
    pub scope_id: String,
    pub window: Window,
    pub window_start: NaiveDate,
    pub reset_at: DateTime<Utc>,
    /// The configured limit.
    pub base_limit: Money,
    /// Sum of active raises.
    pub raised: Money,
    /// `base_limit + raised`.
    pub limit: Money,
    pub spent: Money,
    /// Held by in-flight reservations (PostgreSQL: leased to gateway instances).
    pub held: Money,
    /// `max(limit - spent - held, 0)`.
    pub remaining: Money,
}

/// The budget with the least room left for a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TightestBudget {
    pub scope: BudgetScope,
    pub scope_id: String,
    pub window: Window,
    pub remaining: Money,
    pub reset_at: DateTime<Utc>,
}

/// What the gateway reports when it settles a reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Unique per request; settling the same id twice charges once.
    pub request_id: String,
    pub virtual_key_id: Option<String>,
    pub upstream_key_hash: Option<String>,
    pub requested_model: String,
    pub served_model: Option<String>,
    pub provider: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub cached_tokens: u64,
    /// The exact cost. Recorded in full even if it exceeds the reservation.
    pub cost: Money,
    pub generation_id: Option<String>,
    pub streamed: bool,
    pub outcome: Outcome,
    /// Time from the request's arrival to its settlement, in whole milliseconds.
    pub latency_ms: u64,
    /// The same in microseconds (0 in events recorded before it was: use
    /// [`Usage::latency`], which falls back to `latency_ms`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub latency_us: u64,
    /// Attribution title (`X-Title`).
    pub title: Option<String>,
    /// The gateway API route the request came in on. Absent from journal lines and JSON
    /// written before routes were recorded: those are chat.
    #[serde(default)]
    pub route: ApiRoute,
    /// A policy violation: upstream served a model the member's tier does not allow (charged,
    /// since upstream billed it, but flagged for the lead).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub served_outside_tier: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// The request's latency at the precision it was recorded with (microseconds, or
    /// milliseconds for events recorded before microseconds were).
    pub fn latency(&self) -> std::time::Duration {
        if self.latency_us > 0 {
            std::time::Duration::from_micros(self.latency_us)
        } else {
            std::time::Duration::from_millis(self.latency_ms)
        }
    }

    /// A usage record with only the required fields set (handy in tests and tools); the route
    /// is chat.
    pub fn new(request_id: impl Into<String>, model: impl Into<String>, cost: Money) -> Self {
        Usage {
            request_id: request_id.into(),
            virtual_key_id: None,
            upstream_key_hash: None,
            requested_model: model.into(),
            served_model: None,
            provider: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            reasoning_tokens: 0,
            cached_tokens: 0,
            cost,
            generation_id: None,
            streamed: false,
            outcome: Outcome::Ok,
            latency_ms: 0,
            latency_us: 0,
            title: None,
            route: ApiRoute::Chat,
            served_outside_tier: false,
        }
    }

    /// The same record on another API route.
    pub fn with_route(mut self, route: ApiRoute) -> Self {
        self.route = route;
        self
    }
}

/// One recorded request. `time` is when the request was reserved: usage counts against the
/// budget windows that were current when the request started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEvent {
    pub time: DateTime<Utc>,
    pub member_id: String,
    pub team_id: String,
    pub org_id: String,
    #[serde(flatten)]
    pub usage: Usage,
    /// Set when reconciliation corrected or inserted this event: when, and the figures it rests
    /// on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled: Option<Reconciled>,
}

/// The member id (and team id) of an event booked at **org level**: money OpenRouter billed
/// that reconciliation cannot attribute to a member (the shared key used outside the gateway).
/// It counts against the org's budgets only and is shown as "unattributed (org)". No member id
/// can take this value (ids are slugs).
pub const ORG_LEVEL: &str = "(org)";

/// The reconciliation marker of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciled {
    pub at: DateTime<Utc>,
    pub evidence: String,
}

impl UsageEvent {
    /// Whether the event is booked at org level ([`ORG_LEVEL`]).
    pub fn is_org_level(&self) -> bool {
        self.member_id == ORG_LEVEL
    }

    /// The model the cost belongs to: the served model when known, else the requested one.
    pub fn model(&self) -> &str {
        self.usage
            .served_model
            .as_deref()
            .unwrap_or(&self.usage.requested_model)
    }

    /// The API route the request came in on.
    pub fn route(&self) -> ApiRoute {
        self.usage.route
    }
}

/// The result of a cost correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Correction {
    pub previous: Money,
    pub exact: Money,
}

/// An alert to record for one webhook URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAlert {
    /// What the alert reports; the same id is never recorded twice for one URL.
    pub alert_id: String,
    pub url: String,
    /// `budget` or `anomaly` (free text).
    pub kind: String,
    /// The JSON body to POST.
    pub payload: String,
}

/// A row of the alert outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub alert_id: String,
    pub url: String,
    pub kind: String,
    pub payload: String,
    pub created_at: DateTime<Utc>,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub dead: bool,
    pub last_error: Option<String>,
}

/// A queued exact cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCorrection {
    pub request_id: String,
    pub exact: Money,
    pub generation_id: Option<String>,
    pub requested_at: DateTime<Utc>,
    /// What the correction rests on (written to the event's `reconciled_evidence`).
    #[serde(default)]
    pub evidence: Option<String>,
    /// An event to record (at cost 0) before correcting it to `exact`: a charge OpenRouter
    /// billed that the ledger never recorded.
    #[serde(default)]
    pub new_event: Option<UsageEvent>,
}

/// A correction for [`crate::Ledger::request_correction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCorrection {
    pub request_id: String,
    pub exact: Money,
    pub generation_id: Option<String>,
    pub evidence: Option<String>,
    /// Insert this event first (its cost is ignored: it is recorded at 0, then corrected).
    pub new_event: Option<UsageEvent>,
}

/// How many reconciliation runs `reconcile_runs` keeps (older ones are deleted as new ones are
/// recorded).
pub const RECONCILE_RUNS_KEPT: i64 = 500;

/// One recorded reconciliation run (`reconcile_runs`): its result as JSON (written and read by
/// `orteam-insight`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileRun {
    pub id: i64,
    pub finished_at: DateTime<Utc>,
    /// Who ran it: `gateway` (the serving gateway's loop) or `cli`.
    pub source: String,
    pub result: String,
}

/// A queued correction that [`Ledger::apply_pending_corrections`] applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedCorrection {
    pub request_id: String,
    pub correction: Correction,
}

/// A named admin credential, stored as the SHA-256 of the token only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminToken {
    /// The public id: the lookup key and the visible prefix (`ota-<id>…`).
    pub id: String,
    pub name: String,
    pub role: orteam_core::access::Role,
    /// The teams of a `team_lead`.
    pub teams: Vec<String>,
    /// The largest raise a `team_lead` may grant.
    pub max_raise: Option<Money>,
    #[serde(skip_serializing)]
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_by: String,
    /// The org whose team file declares it (`[access.tokens.*]`): that org's `team apply`
    /// updates and revokes it. `None`: made by `orteam token create` (or the admin API), never
    /// touched by apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_org: Option<String>,
}

impl AdminToken {
    /// What a person sees to recognise the token: `ota-<public id>…`.
    pub fn display_prefix(&self) -> String {
        format!("{}{}…", crate::keys::ADMIN_TOKEN_PREFIX, self.id)
    }

    /// The principal this token authenticates as.
    pub fn principal(&self) -> orteam_core::access::Principal {
        orteam_core::access::Principal {
            name: self.name.clone(),
            role: self.role,
            teams: self.teams.clone(),
            member: None,
            max_raise: self.max_raise,
        }
    }

    /// Whether the token still works at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// What `team apply` changes in place on a live token the team file declares (no new secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenUpdate {
    pub role: orteam_core::access::Role,
    pub teams: Vec<String>,
    pub max_raise: Option<Money>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Input of [`crate::Ledger::create_admin_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAdminToken {
    pub name: String,
    pub role: orteam_core::access::Role,
    pub teams: Vec<String>,
    pub max_raise: Option<Money>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Who creates it (recorded, and audited).
    pub created_by: String,
}

/// A newly created admin token. The secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedAdminToken {
    pub token: AdminToken,
    pub secret: SecretString,
}

/// One admin action to record in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NewAuditEntry {
    /// Who: a token's name, `bootstrap`, an SSO identity, `cli:<user>`.
    pub actor: String,
    /// What: `raise`, `revoke_member`, `token_create`, `apply.member_add`…
    pub action: String,
    /// On what: `member:alice`, `token:ci`…
    pub target: String,
    /// JSON text of the state before and after, when there is one.
    pub before: Option<String>,
    pub after: Option<String>,
    /// From where: the client's address, `cli`, `mcp`.
    pub source: Option<String>,
}

/// A recorded audit entry: its place in the chain and the hashes that link it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub source: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}
