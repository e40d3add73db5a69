//! Keys no member owns (strays) and keys nobody has used for a while.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use orteam_core::Window;
use orteam_ledger::VirtualKey;
use orteam_openrouter::types::keys::Key;

use crate::file::ResolvedTeam;
use crate::naming::KeyLabel;

use super::model::{PlanOptions, StrayKey, UnusedKey};
use super::observe::Observed;
use super::planner::display_key;

/// OpenRouter keys no member owns, not named by orteam, not kept, and not a gateway's shared
/// key (registered in the ledger by `serve` and `team apply`, recognised by hash, or by masked
/// label when OpenRouter hashes differently: a key is never deleted on a guess).
pub fn strays(team: &ResolvedTeam, obs: &Observed) -> Vec<StrayKey> {
    let recorded: BTreeSet<&str> = obs
        .dir
        .upstream_keys
        .iter()
        .map(|k| k.key_hash.as_str())
        .collect();
    obs.keys
        .iter()
        .filter(|k| !recorded.contains(k.hash.as_str()))
        .filter(|k| KeyLabel::parse(&k.name).is_none())
        .filter(|k| {
            !obs.dir
                .gateway_keys
                .iter()
                .any(|g| g.key_hash == k.hash || (!k.label.is_empty() && g.label == k.label))
        })
        .filter(|k| {
            !team
                .org
                .keep_keys
                .iter()
                .any(|keep| keep == &k.name || keep == &k.hash)
        })
        .filter(|k| {
            team.org
                .openrouter
                .shared_key
                .as_deref()
                .is_none_or(|s| s != k.name && s != k.hash)
        })
        .map(|k| StrayKey {
            hash: k.hash.clone(),
            name: k.name.clone(),
            label: k.label.clone(),
            created_at: k.created_at,
            disabled: k.disabled,
            usage: k.usage,
        })
        .collect()
}

/// The latest moment an OpenRouter key can have been used, from its usage counters: never used
/// → its creation; nothing this month/week/day → the start of that window.
pub fn last_use_bound(k: &Key, now: DateTime<Utc>) -> DateTime<Utc> {
    let bound = if k.usage.is_zero() && k.byok_usage.is_zero() {
        k.created_at
    } else if k.usage_monthly.is_zero() && k.byok_usage_monthly.is_zero() {
        Window::Monthly.start(now)
    } else if k.usage_weekly.is_zero() && k.byok_usage_weekly.is_zero() {
        Window::Weekly.start(now)
    } else if k.usage_daily.is_zero() && k.byok_usage_daily.is_zero() {
        Window::Daily.start(now)
    } else {
        now
    };
    bound.max(k.created_at)
}

pub(super) fn unused(
    team: &ResolvedTeam,
    obs: &Observed,
    strays: &[StrayKey],
    opts: &PlanOptions,
) -> Vec<UnusedKey> {
    let limit = TimeDelta::days(i64::from(opts.unused_days));
    let now = opts.now;
    let mut out = Vec::new();
    let members: BTreeSet<&str> = team.members.iter().map(|m| m.id.as_str()).collect();
    for k in &obs.keys {
        let owner = obs
            .dir
            .upstream_keys
            .iter()
            .find(|r| r.key_hash == k.hash)
            .map(|r| r.member_id.clone());
        let is_stray = strays.iter().any(|s| s.hash == k.hash);
        if owner.is_none() && !is_stray {
            continue;
        }
        let bound = last_use_bound(k, now);
        if now - bound >= limit {
            out.push(UnusedKey {
                kind: if is_stray { "stray" } else { "upstream" },
                member: owner,
                key: display_key(&k.name, &k.hash),
                last_used_at_most: bound,
                idle_days: (now - bound).num_days(),
            });
        }
    }
    let mut vks: Vec<&VirtualKey> = obs
        .dir
        .virtual_keys
        .values()
        .filter(|k| members.contains(k.member_id.as_str()))
        .filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now))
        .collect();
    vks.sort_by_key(|k| (k.member_id.clone(), k.created_at));
    for k in vks {
        let bound = k.last_used_at.unwrap_or(k.created_at);
        if now - bound >= limit {
            out.push(UnusedKey {
                kind: "virtual",
                member: Some(k.member_id.clone()),
                key: k.display_prefix(),
                last_used_at_most: bound,
                idle_days: (now - bound).num_days(),
            });
        }
    }
    out
}
