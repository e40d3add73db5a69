//! The key table shared by `orteam keys list`, the web dashboard and `orteam top`: every key a
//! member has (gateway virtual keys, gateway-held OpenRouter keys, direct OpenRouter keys) with
//! its usage today and this month, its limit and reset, expiry, rotation due date and state.
//!
//! Built from the ledger's directory and usage events only; the CLI overlays OpenRouter's own
//! numbers for direct keys (which never pass through the gateway) with [`KeyRow::apply_openrouter`].

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use orteam_core::{Money, Window};
pub use orteam_dashboard_types::keys::{KeyMode, KeyRow, KeyTotals};
use orteam_ledger::{BudgetScope, BudgetStatus, Directory, MemberState, UsageEvent};
use orteam_team::naming::KeyLabel;
use orteam_team::plan::is_pending_delivery;

/// Spend per key today and this month, from usage events.
#[derive(Debug, Default)]
pub struct KeyUsage {
    /// By virtual key id and by upstream key hash: (today, month).
    by_key: HashMap<String, (Money, Money)>,
}

impl KeyUsage {
    /// Indexes `events` (any order; events before this month are ignored).
    pub fn from_events<'a>(
        events: impl IntoIterator<Item = &'a UsageEvent>,
        now: DateTime<Utc>,
    ) -> KeyUsage {
        let today = Window::Daily.start(now);
        let month = Window::Monthly.start(now);
        let mut by_key: HashMap<String, (Money, Money)> = HashMap::new();
        for e in events {
            if e.time < month {
                continue;
            }
            let ids = [
                e.usage.virtual_key_id.as_deref(),
                e.usage.upstream_key_hash.as_deref(),
            ];
            for id in ids.into_iter().flatten() {
                let slot = by_key
                    .entry(id.to_owned())
                    .or_insert((Money::ZERO, Money::ZERO));
                slot.1 = slot.1.checked_add(e.usage.cost).unwrap_or(slot.1);
                if e.time >= today {
                    slot.0 = slot.0.checked_add(e.usage.cost).unwrap_or(slot.0);
                }
            }
        }
        KeyUsage { by_key }
    }

    fn get(&self, id: &str) -> (Money, Money) {
        self.by_key
            .get(id)
            .copied()
            .unwrap_or((Money::ZERO, Money::ZERO))
    }
}

fn rotation_due(label: Option<&KeyLabel>, created_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    label
        .and_then(|l| l.rotate_every)
        .map(|r| created_at + TimeDelta::from_std(r).unwrap_or(TimeDelta::MAX))
}

/// The member budget with the least room left: (limit, window, reset).
fn member_limit(member: &str, budgets: &[BudgetStatus]) -> Option<(Money, Window, DateTime<Utc>)> {
    budgets
        .iter()
        .filter(|b| b.scope == BudgetScope::Member && b.scope_id == member)
        .min_by_key(|b| (b.remaining, b.reset_at))
        .map(|b| (b.limit, b.window, b.reset_at))
}

/// Every key in the directory (revoked ones only with `include_revoked`), sorted by member,
/// mode and generation.
pub fn key_rows(
    dir: &Directory,
    budgets: &[BudgetStatus],
    usage: &KeyUsage,
    now: DateTime<Utc>,
    include_revoked: bool,
) -> Vec<KeyRow> {
    let mut rows = Vec::new();
    for k in dir.virtual_keys.values() {
        if !include_revoked && k.revoked_at.is_some() {
            continue;
        }
        let label = KeyLabel::parse(&k.name);
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else if k.disabled {
            "disabled"
        } else if k.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else if is_pending_delivery(k) {
            "pending delivery"
        } else if dir
            .members
            .get(&k.member_id)
            .is_some_and(|m| m.state != MemberState::Active)
        {
            "member removed"
        } else {
            "active"
        };
        let due = if state == "active" {
            rotation_due(label.as_ref(), k.created_at)
        } else {
            None
        };
        let (today, month) = usage.get(&k.id);
        let limit = member_limit(&k.member_id, budgets);
        rows.push(KeyRow {
            member: k.member_id.clone(),
            mode: KeyMode::Gateway,
            key: k.display_prefix(),
            generation: label.as_ref().map(|l| l.generation),
            created_at: k.created_at,
            expires_at: k.expires_at,
            rotation_due: due,
            rotation_overdue: due.is_some_and(|d| d <= now),
            state: state.to_owned(),
            last_used_at: k.last_used_at,
            usage_today: Some(today),
            usage_month: Some(month),
            limit: limit.map(|l| l.0),
            limit_window: limit.map(|l| l.1),
            limit_reset: limit.map(|l| l.2),
        });
    }
    for k in &dir.upstream_keys {
        let label = KeyLabel::parse(&k.label);
        let state = if k.disabled {
            "disabled"
        } else if dir
            .members
            .get(&k.member_id)
            .is_some_and(|m| m.state != MemberState::Active)
        {
            "member removed"
        } else {
            "active"
        };
        let due = if state == "active" {
            rotation_due(label.as_ref(), k.created_at)
        } else {
            None
        };
        let (mode, usage_pair, limit) = if k.has_secret {
            (
                KeyMode::Upstream,
                Some(usage.get(&k.key_hash)),
                member_limit(&k.member_id, budgets),
            )
        } else {
            (KeyMode::Direct, None, None)
        };
        rows.push(KeyRow {
            member: k.member_id.clone(),
            mode,
            key: label
                .as_ref()
                .map(KeyLabel::name)
                .unwrap_or_else(|| k.label.clone()),
            generation: label.as_ref().map(|l| l.generation),
            created_at: k.created_at,
            expires_at: None,
            rotation_due: due,
            rotation_overdue: due.is_some_and(|d| d <= now),
            state: state.to_owned(),
            last_used_at: None,
            usage_today: usage_pair.map(|u| u.0),
            usage_month: usage_pair.map(|u| u.1),
            limit: limit.map(|l| l.0),
            limit_window: limit.map(|l| l.1),
            limit_reset: limit.map(|l| l.2),
        });
    }
    mark_retiring(&mut rows);
    rows.sort_by(|a, b| {
        (&a.member, a.mode, a.generation, a.created_at).cmp(&(
            &b.member,
            b.mode,
            b.generation,
            b.created_at,
        ))
    });
    rows
}

/// A live key with a newer live generation of the same member and mode has been rotated: it is
/// retiring (it works until its expiry) and is no longer due for rotation itself.
fn mark_retiring(rows: &mut [KeyRow]) {
    let mut newest: HashMap<(String, KeyMode), u64> = HashMap::new();
    for r in rows.iter().filter(|r| r.is_live()) {
        if let Some(g) = r.generation {
            let e = newest.entry((r.member.clone(), r.mode)).or_insert(g);
            *e = (*e).max(g);
        }
    }
    for r in rows.iter_mut().filter(|r| r.state == "active") {
        let newer = r
            .generation
            .zip(newest.get(&(r.member.clone(), r.mode)))
            .is_some_and(|(g, max)| g < *max);
        if newer {
            r.state = "retiring".to_owned();
            r.rotation_due = None;
            r.rotation_overdue = false;
        }
    }
}

/// The OpenRouter hash of each direct key row's upstream record, to match OpenRouter's list.
pub fn direct_key_hashes(dir: &Directory) -> HashMap<String, String> {
    dir.upstream_keys
        .iter()
        .filter(|k| !k.has_secret)
        .map(|k| {
            let name = KeyLabel::parse(&k.label)
                .as_ref()
                .map(KeyLabel::name)
                .unwrap_or_else(|| k.label.clone());
            (name, k.key_hash.clone())
        })
        .collect()
}
