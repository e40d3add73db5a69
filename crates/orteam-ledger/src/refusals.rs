//! Refused requests (a budget's 402, a tier's 403, a rate limit's 429, a bad key's 401, bad input's
//! 4xx), counted per minute × member × route × model × reason × detail.
//!
//! The gateway calls [`crate::Ledger::record_refusal`], a memory-only increment under a mutex; the
//! maintenance task hands the counts to the same group-commit writer as usage events
//! ([`crate::events::WriterMsg::Refusals`]), which adds them to `refusals` rows
//! (`count = count + n`). Storage is bounded by construction: a flood of refusals becomes one row
//! per minute per distinct key, and the key space is bounded because the request-controlled parts
//! (the model and the detail) are dropped from new keys once [`MAX_KEYS_PER_MINUTE`] distinct keys
//! were counted in the same minute: what remains (member, route, reason) comes from the directory and a fixed set of
//! codes. Counts are never dropped. Refusals are not money and are not journaled: a `kill -9` can
//! lose the counts of the last half-second.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use orteam_core::ApiRoute;
use serde::{Deserialize, Serialize};

/// Distinct keys counted in one minute before new keys lose their model and detail: with the
/// fallback keys (member × route × reason), at most a few hundred rows per minute however the
/// requests vary.
pub const MAX_KEYS_PER_MINUTE: usize = 256;

/// Longest model or detail text kept (a request's model is the member's input).
const MAX_TEXT: usize = 128;

/// One refused request as the gateway saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `None` when the key did not authenticate.
    pub member_id: Option<String>,
    pub route: ApiRoute,
    /// The requested model, when the body was read that far.
    pub model: Option<String>,
    /// The gateway's error code: `budget_exceeded`, `model_not_allowed`, `rate_limit_exceeded`,
    /// `invalid_api_key`, `invalid_request`…
    pub reason: String,
    /// What refused it: the budget (`member "carol" daily`), the rate limit
    /// (`requests per minute`), the tier, the field.
    pub detail: Option<String>,
}

/// A stored aggregate: how many requests were refused in one minute for one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RefusalKey {
    /// The start of the UTC minute (ledger clock).
    pub minute: DateTime<Utc>,
    /// Empty when the key did not authenticate.
    pub member_id: String,
    pub route: ApiRoute,
    /// Empty when unknown.
    pub model: String,
    pub reason: String,
    /// Empty when there is nothing more to say.
    pub detail: String,
}

/// A `refusals` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalCount {
    #[serde(flatten)]
    pub key: RefusalKey,
    pub count: u64,
}

/// Which refusal rows a query reads.
#[derive(Debug, Clone, Default)]
pub struct RefusalFilter {
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    pub member: Option<String>,
}

/// Refusals summed per member × reason × detail over a period: what a report shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalSummary {
    /// Empty when the key did not authenticate.
    pub member_id: String,
    pub reason: String,
    pub detail: String,
    pub count: u64,
    /// The minute of the last refusal counted.
    pub last: DateTime<Utc>,
}

impl RefusalSummary {
    /// `carol refused 225× by the member "carol" daily budget`.
    pub fn describe(&self) -> String {
        orteam_core::refusal::describe(&self.member_id, &self.reason, &self.detail, self.count)
    }
}

/// Sums rows per member × reason × detail, most refused first (then by member, reason, detail).
pub fn summarize(rows: &[RefusalCount]) -> Vec<RefusalSummary> {
    let mut by: BTreeMap<(&str, &str, &str), (u64, DateTime<Utc>)> = BTreeMap::new();
    for r in rows {
        let e = by
            .entry((&r.key.member_id, &r.key.reason, &r.key.detail))
            .or_insert((0, r.key.minute));
        e.0 = e.0.saturating_add(r.count);
        e.1 = e.1.max(r.key.minute);
    }
    let mut out: Vec<RefusalSummary> = by
        .into_iter()
        .map(|((m, r, d), (count, last))| RefusalSummary {
            member_id: m.to_owned(),
            reason: r.to_owned(),
            detail: d.to_owned(),
            count,
            last,
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.count));
    out
}

/// Counts waiting for the next flush, and the keys of the current minute (for the bound).
#[derive(Debug, Default)]
pub(crate) struct PendingRefusals {
    counts: HashMap<RefusalKey, u64>,
    minute: Option<DateTime<Utc>>,
    minute_keys: HashSet<RefusalKey>,
}

impl PendingRefusals {
    pub(crate) fn add(&mut self, r: Refusal, at: DateTime<Utc>) {
        let minute = at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at);
        let mut key = RefusalKey {
            minute,
            member_id: r.member_id.unwrap_or_default(),
            route: r.route,
            model: clip(r.model.unwrap_or_default()),
            reason: clip(r.reason),
            detail: clip(r.detail.unwrap_or_default()),
        };
        if self.minute.is_none_or(|m| m < minute) {
            self.minute = Some(minute);
            self.minute_keys.clear();
        }
        if !self.minute_keys.contains(&key) {
            if self.minute_keys.len() >= MAX_KEYS_PER_MINUTE {
                key.model.clear();
                key.detail.clear();
            }
            self.minute_keys.insert(key.clone());
        }
        *self.counts.entry(key).or_insert(0) += 1;
    }

    pub(crate) fn take(&mut self) -> Vec<RefusalCount> {
        self.counts
            .drain()
            .map(|(key, count)| RefusalCount { key, count })
            .collect()
    }
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(member: Option<&str>, model: &str) -> Refusal {
        Refusal {
            member_id: member.map(str::to_owned),
            route: ApiRoute::Chat,
            model: Some(model.to_owned()),
            reason: "model_not_found".into(),
            detail: None,
        }
    }

    #[test]
    fn counts_aggregate_per_minute_and_stay_exact_past_the_key_bound() {
        let mut p = PendingRefusals::default();
        let t: DateTime<Utc> = "2026-01-05T10:00:30Z".parse().unwrap();
        let mut rows = Vec::new();
        for i in 0..10_000 {
            p.add(refusal(Some("carol"), &format!("made/up-{i}")), t);
            if i % 100 == 0 {
                // Flushes in between do not reset the bound.
                rows.extend(p.take());
            }
        }
        p.add(refusal(None, "x"), t + TimeDelta::seconds(40));
        rows.extend(p.take());
        let distinct: std::collections::BTreeSet<_> = rows.iter().map(|r| &r.key).collect();
        assert!(
            distinct.len() <= MAX_KEYS_PER_MINUTE + 2,
            "{} keys",
            distinct.len()
        );
        let carol: u64 = rows
            .iter()
            .filter(|r| r.key.member_id == "carol")
            .map(|r| r.count)
            .sum();
        assert_eq!(carol, 10_000);
        let minutes: std::collections::BTreeSet<_> = rows.iter().map(|r| r.key.minute).collect();
        assert_eq!(minutes.len(), 2);
        let s = summarize(&rows);
        assert_eq!(s[0].member_id, "carol");
        assert_eq!(s[0].count, 10_000);
        assert_eq!(s[1].member_id, "");
    }
}
