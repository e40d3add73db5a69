//! The key table's rows, shared by `orteam keys list`, the web dashboard and `orteam top`: every
//! key a member has (gateway virtual keys, gateway-held OpenRouter keys, direct OpenRouter keys)
//! with its usage today and this month, its limit and reset, expiry, rotation due date and state.
//! `orteam_web::keys::key_rows` builds them from the ledger.

use chrono::{DateTime, Utc};
use orteam_core::{Money, Window};
use serde::{Deserialize, Serialize};

/// How a key reaches OpenRouter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyMode {
    /// A gateway virtual key (`ot-…`): every request passes the gateway's budgets.
    Gateway,
    /// A member's own OpenRouter key held by the gateway (used upstream for their requests).
    Upstream,
    /// An OpenRouter key the member calls OpenRouter with directly.
    Direct,
}

impl KeyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyMode::Gateway => "gateway",
            KeyMode::Upstream => "upstream",
            KeyMode::Direct => "direct",
        }
    }
}

/// One key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRow {
    pub member: String,
    pub mode: KeyMode,
    /// What a person recognises the key by: `ot-<id>…`, or the OpenRouter key's name.
    pub key: String,
    /// Generation from the key's orteam name (`orteam:<org>:<member>:<generation>`).
    pub generation: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// When the rotation policy wants a successor (only for keys still in use).
    pub rotation_due: Option<DateTime<Utc>>,
    /// `rotation_due` has passed.
    pub rotation_overdue: bool,
    /// active; retiring (a successor exists; works until `expires_at`); pending delivery;
    /// expired; revoked; disabled; member removed.
    pub state: String,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Spend today (UTC) through this key; `None` when unknown (direct keys without OpenRouter).
    pub usage_today: Option<Money>,
    /// Spend this month (UTC).
    pub usage_month: Option<Money>,
    /// The limit that applies: the member's tightest member budget for gateway keys, the key's
    /// own limit at OpenRouter for direct keys.
    pub limit: Option<Money>,
    /// The limit's window (`daily`, `weekly`, `monthly`); `None` for a cumulative limit.
    pub limit_window: Option<Window>,
    /// When the limit resets.
    pub limit_reset: Option<DateTime<Utc>>,
}

impl KeyRow {
    /// Whether the key can still be used.
    pub fn is_live(&self) -> bool {
        matches!(
            self.state.as_str(),
            "active" | "pending delivery" | "retiring"
        )
    }

    /// Takes usage and limit from OpenRouter's own record of a direct key.
    pub fn apply_openrouter(
        &mut self,
        usage_today: Money,
        usage_month: Money,
        limit: Option<Money>,
        limit_window: Option<Window>,
        now: DateTime<Utc>,
    ) {
        self.usage_today = Some(usage_today);
        self.usage_month = Some(usage_month);
        self.limit = limit;
        self.limit_window = limit.and(limit_window);
        self.limit_reset = self.limit_window.map(|w| w.reset_at(now));
    }
}

/// Sums of a key table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTotals {
    pub keys: usize,
    pub live: usize,
    pub rotation_overdue: usize,
    pub usage_today: Money,
    pub usage_month: Money,
}

impl KeyTotals {
    pub fn of(rows: &[KeyRow]) -> KeyTotals {
        KeyTotals {
            keys: rows.len(),
            live: rows.iter().filter(|r| r.is_live()).count(),
            rotation_overdue: rows.iter().filter(|r| r.rotation_overdue).count(),
            usage_today: rows.iter().filter_map(|r| r.usage_today).sum(),
            usage_month: rows.iter().filter_map(|r| r.usage_month).sum(),
        }
    }
}
