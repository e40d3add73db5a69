//! Row mapping shared by both backends, written once: the column lists of the rows the ledger
//! reads back, and the functions that build domain values from such a row (and the stored form
//! of a tier). Each backend implements [`Columns`] for its driver's row type (`sqlite/mod.rs`,
//! `postgres/mod.rs`), converting its storage types (SQLite: canonical decimal TEXT and INTEGER
//! microseconds; PostgreSQL: NUMERIC and `timestamptz`); the SQL itself stays in the backends.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use orteam_core::Money;

use crate::error::LedgerError;
use crate::model::*;

/// Typed access to the columns of one row, by position.
pub(crate) trait Columns {
    fn text(&self, i: usize) -> Result<String, LedgerError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, LedgerError>;
    fn flag(&self, i: usize) -> Result<bool, LedgerError>;
    fn int(&self, i: usize) -> Result<i64, LedgerError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, LedgerError>;
    fn money(&self, i: usize) -> Result<Money, LedgerError>;
    fn opt_money(&self, i: usize) -> Result<Option<Money>, LedgerError>;
    fn time(&self, i: usize) -> Result<DateTime<Utc>, LedgerError>;
    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>, LedgerError>;

    /// A TEXT column holding a value's `as_str` form (scope, window, state, outcome, route).
    fn parsed<T: FromStr>(&self, i: usize) -> Result<T, LedgerError>
    where
        T::Err: std::fmt::Display,
    {
        self.text(i)?
            .parse::<T>()
            .map_err(|e| corrupt(i, e.to_string()))
    }

    fn count(&self, i: usize) -> Result<u64, LedgerError> {
        u64::try_from(self.int(i)?).map_err(|e| corrupt(i, e.to_string()))
    }
}

/// A column whose stored value does not convert.
pub(crate) fn corrupt(i: usize, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt(format!("column {i}: {e}"))
}

pub(crate) const ORG_COLUMNS: &str = "id, name, created_at";

pub(crate) fn org(r: &impl Columns) -> Result<Org, LedgerError> {
    Ok(Org {
        id: r.text(0)?,
        name: r.text(1)?,
        created_at: r.time(2)?,
    })
}

pub(crate) const TEAM_COLUMNS: &str = "id, org_id, name, created_at";

pub(crate) fn team(r: &impl Columns) -> Result<Team, LedgerError> {
    Ok(Team {
        id: r.text(0)?,
        org_id: r.text(1)?,
        name: r.text(2)?,
        created_at: r.time(3)?,
    })
}

pub(crate) const TIER_COLUMNS: &str = "id, name, all_models, allowed_models, on_disallowed, downgrade_model, requests_per_minute, tokens_per_minute, routing";

pub(crate) fn tier(r: &impl Columns) -> Result<Tier, LedgerError> {
    let models = if r.flag(2)? {
        ModelAccess::All
    } else {
        ModelAccess::Allow(serde_json::from_str(&r.text(3)?).map_err(|e| corrupt(3, e))?)
    };
    let on_disallowed = match (r.text(4)?.as_str(), r.opt_text(5)?) {
        ("deny", _) => OnDisallowed::Deny,
        ("downgrade", Some(m)) => OnDisallowed::Downgrade(m),
        (other, _) => return Err(corrupt(4, format!("bad tier policy {other:?}"))),
    };
    Ok(Tier {
        id: r.text(0)?,
        name: r.text(1)?,
        models,
        on_disallowed,
        requests_per_minute: r.opt_int(6)?.and_then(|n| u32::try_from(n).ok()),
        tokens_per_minute: r.opt_int(7)?.and_then(|n| u64::try_from(n).ok()),
        routing: serde_json::from_str(&r.text(8)?).map_err(|e| corrupt(8, e))?,
    })
}

/// A tier as stored: (all_models, allowed models as JSON, policy, downgrade model,
/// requests per minute, tokens per minute, routing policy as JSON), in [`TIER_COLUMNS`] order
/// after id and name.
pub(crate) struct TierParts {
    pub all_models: bool,
    pub allowed: String,
    pub policy: &'static str,
    pub downgrade: Option<String>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub routing: String,
}

pub(crate) fn tier_parts(t: &Tier) -> TierParts {
    let (all_models, list) = match &t.models {
        ModelAccess::All => (true, Vec::new()),
        ModelAccess::Allow(l) => (false, l.clone()),
    };
    let allowed = serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned());
    let (policy, downgrade) = match &t.on_disallowed {
        OnDisallowed::Deny => ("deny", None),
        OnDisallowed::Downgrade(m) => ("downgrade", Some(m.clone())),
    };
    TierParts {
        all_models,
        allowed,
        policy,
        downgrade,
        rpm: t.requests_per_minute.map(i64::from),
        tpm: t.tokens_per_minute.and_then(|n| i64::try_from(n).ok()),
        routing: serde_json::to_string(&t.routing).unwrap_or_else(|_| "{}".to_owned()),
    }
}

pub(crate) const MEMBER_COLUMNS: &str =
    "id, display_name, team_id, tier_id, state, created_at, removed_at";

pub(crate) fn member(r: &impl Columns) -> Result<Member, LedgerError> {
    Ok(Member {
        id: r.text(0)?,
        display_name: r.text(1)?,
        team_id: r.text(2)?,
        tier_id: r.text(3)?,
        state: r.parsed(4)?,
        created_at: r.time(5)?,
        removed_at: r.opt_time(6)?,
    })
}

pub(crate) const BUDGET_COLUMNS: &str = "scope, scope_id, win, limit_amount";

pub(crate) fn budget(r: &impl Columns) -> Result<Budget, LedgerError> {
    Ok(Budget {
        scope: r.parsed(0)?,
        scope_id: r.text(1)?,
        window: r.parsed(2)?,
        limit: r.money(3)?,
    })
}

pub(crate) const RAISE_COLUMNS: &str =
    "id, scope, scope_id, win, amount, until, reason, created_at";

pub(crate) fn raise(r: &impl Columns) -> Result<BudgetRaise, LedgerError> {
    Ok(BudgetRaise {
        id: r.text(0)?,
        scope: r.parsed(1)?,
        scope_id: r.text(2)?,
        window: r.parsed(3)?,
        amount: r.money(4)?,
        until: r.time(5)?,
        reason: r.text(6)?,
        created_at: r.time(7)?,
    })
}

pub(crate) const VIRTUAL_KEY_COLUMNS: &str = "id, member_id, name, key_hash, created_at, expires_at, disabled, revoked_at, replaces, last_used_at";

pub(crate) fn virtual_key(r: &impl Columns) -> Result<VirtualKey, LedgerError> {
    Ok(VirtualKey {
        id: r.text(0)?,
        member_id: r.text(1)?,
        name: r.text(2)?,
        key_hash: r.text(3)?,
        created_at: r.time(4)?,
        expires_at: r.opt_time(5)?,
        disabled: r.flag(6)?,
        revoked_at: r.opt_time(7)?,
        replaces: r.opt_text(8)?,
        last_used_at: r.opt_time(9)?,
    })
}

pub(crate) const UPSTREAM_KEY_COLUMNS: &str =
    "id, member_id, label, key_hash, secret_enc, created_at, disabled";

pub(crate) const GATEWAY_KEY_COLUMNS: &str = "key_hash, label, registered_at";

/// A gateway's registered shared key.
pub(crate) fn gateway_key(r: &impl Columns) -> Result<GatewayKey, LedgerError> {
    Ok(GatewayKey {
        key_hash: r.text(0)?,
        label: r.text(1)?,
        registered_at: r.time(2)?,
    })
}

/// An upstream key and its encrypted secret, if held.
pub(crate) fn upstream_key(r: &impl Columns) -> Result<(UpstreamKey, Option<String>), LedgerError> {
    let enc = r.opt_text(4)?;
    Ok((
        UpstreamKey {
            id: r.text(0)?,
            member_id: r.text(1)?,
            label: r.text(2)?,
            key_hash: r.text(3)?,
            has_secret: enc.is_some(),
            created_at: r.time(5)?,
            disabled: r.flag(6)?,
        },
        enc,
    ))
}

pub(crate) const EVENT_COLUMNS: &str = "time, member_id, team_id, org_id, request_id, virtual_key_id, upstream_key_hash, \
     requested_model, served_model, provider, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, \
     cost, generation_id, streamed, outcome, latency_ms, title, route, served_outside_tier, latency_us";

/// [`EVENT_COLUMNS`] and the reconciliation marker: what reads select (inserts never set it).
pub(crate) const EVENT_READ_COLUMNS: &str = "time, member_id, team_id, org_id, request_id, virtual_key_id, upstream_key_hash, \
     requested_model, served_model, provider, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, \
     cost, generation_id, streamed, outcome, latency_ms, title, route, served_outside_tier, latency_us, \
     reconciled_at, reconciled_evidence";

pub(crate) fn event(r: &impl Columns) -> Result<UsageEvent, LedgerError> {
    Ok(UsageEvent {
        time: r.time(0)?,
        member_id: r.text(1)?,
        team_id: r.text(2)?,
        org_id: r.text(3)?,
        usage: Usage {
            request_id: r.text(4)?,
            virtual_key_id: r.opt_text(5)?,
            upstream_key_hash: r.opt_text(6)?,
            requested_model: r.text(7)?,
            served_model: r.opt_text(8)?,
            provider: r.opt_text(9)?,
            prompt_tokens: r.count(10)?,
            completion_tokens: r.count(11)?,
            reasoning_tokens: r.count(12)?,
            cached_tokens: r.count(13)?,
            cost: r.money(14)?,
            generation_id: r.opt_text(15)?,
            streamed: r.flag(16)?,
            outcome: r.parsed(17)?,
            latency_ms: r.count(18)?,
            title: r.opt_text(19)?,
            route: r.parsed(20)?,
            served_outside_tier: r.flag(21)?,
            latency_us: r.count(22)?,
        },
        reconciled: match (r.opt_time(23)?, r.opt_text(24)?) {
            (Some(at), Some(evidence)) => Some(Reconciled { at, evidence }),
            _ => None,
        },
    })
}

pub(crate) const OUTBOX_COLUMNS: &str = "alert_id, url, kind, payload, created_at, attempts, next_attempt_at, delivered_at, dead, last_error";

pub(crate) fn outbox_entry(r: &impl Columns) -> Result<OutboxEntry, LedgerError> {
    Ok(OutboxEntry {
        alert_id: r.text(0)?,
        url: r.text(1)?,
        kind: r.text(2)?,
        payload: r.text(3)?,
        created_at: r.time(4)?,
        attempts: u32::try_from(r.int(5)?).unwrap_or(u32::MAX),
        next_attempt_at: r.time(6)?,
        delivered_at: r.opt_time(7)?,
        dead: r.flag(8)?,
        last_error: r.opt_text(9)?,
    })
}

pub(crate) const CORRECTION_COLUMNS: &str =
    "request_id, exact_cost, generation_id, requested_at, evidence, new_event";

pub(crate) fn pending_correction(r: &impl Columns) -> Result<PendingCorrection, LedgerError> {
    Ok(PendingCorrection {
        request_id: r.text(0)?,
        exact: r.money(1)?,
        generation_id: r.opt_text(2)?,
        requested_at: r.time(3)?,
        evidence: r.opt_text(4)?,
        new_event: r
            .opt_text(5)?
            .map(|j| {
                serde_json::from_str(&j).map_err(|e| {
                    LedgerError::Invalid(format!(
                        "a queued reconciliation event is unreadable: {e}"
                    ))
                })
            })
            .transpose()?,
    })
}

pub(crate) const RECONCILE_RUN_COLUMNS: &str = "id, finished_at, source, result";

pub(crate) fn reconcile_run(r: &impl Columns) -> Result<ReconcileRun, LedgerError> {
    Ok(ReconcileRun {
        id: r.int(0)?,
        finished_at: r.time(1)?,
        source: r.text(2)?,
        result: r.text(3)?,
    })
}

pub(crate) const REFUSAL_COLUMNS: &str = "minute, member_id, route, model, reason, detail, count";

pub(crate) fn refusal(r: &impl Columns) -> Result<crate::refusals::RefusalCount, LedgerError> {
    Ok(crate::refusals::RefusalCount {
        key: crate::refusals::RefusalKey {
            minute: r.time(0)?,
            member_id: r.text(1)?,
            route: r.parsed(2)?,
            model: r.text(3)?,
            reason: r.text(4)?,
            detail: r.text(5)?,
        },
        count: r.count(6)?,
    })
}

pub(crate) const ADMIN_TOKEN_COLUMNS: &str = "id, name, role, teams, max_raise, token_hash, created_at, expires_at, revoked_at, created_by, \
     file_org";

pub(crate) fn admin_token(r: &impl Columns) -> Result<AdminToken, LedgerError> {
    Ok(AdminToken {
        id: r.text(0)?,
        name: r.text(1)?,
        role: r.parsed(2)?,
        teams: r
            .text(3)?
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        max_raise: r.opt_money(4)?,
        token_hash: r.text(5)?,
        created_at: r.time(6)?,
        expires_at: r.opt_time(7)?,
        revoked_at: r.opt_time(8)?,
        created_by: r.text(9)?,
        file_org: r.opt_text(10)?,
    })
}

pub(crate) const AUDIT_COLUMNS: &str =
    "seq, at, actor, action, target, before, after, source, prev_hash, hash";

pub(crate) fn audit_entry(r: &impl Columns) -> Result<AuditEntry, LedgerError> {
    Ok(AuditEntry {
        seq: r.int(0)?,
        at: r.time(1)?,
        actor: r.text(2)?,
        action: r.text(3)?,
        target: r.text(4)?,
        before: r.opt_text(5)?,
        after: r.opt_text(6)?,
        source: r.opt_text(7)?,
        prev_hash: r.text(8)?,
        hash: r.text(9)?,
    })
}
