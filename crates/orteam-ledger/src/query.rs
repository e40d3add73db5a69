//! Report queries. Backends return the matching events; grouping and sums happen here with
//! [`Money`], so every sum is exact on both backends and every grouping is computed the same way.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use orteam_core::{ApiRoute, Money};
use serde::{Deserialize, Serialize};

use crate::model::UsageEvent;

/// Which events a query reads.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    pub member: Option<String>,
    pub team: Option<String>,
    /// Only events of this API route.
    pub route: Option<ApiRoute>,
    pub provisional_only: bool,
    /// Only policy violations: events whose served model was outside the member's tier.
    pub outside_tier_only: bool,
    pub newest_first: bool,
    pub limit: Option<usize>,
}

/// A dimension to group usage by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Member,
    Team,
    /// The served model (the requested one when nothing was served).
    Model,
    /// UTC day of the request.
    Day,
    Provider,
    /// Virtual key id.
    Key,
    /// The gateway API route (chat, messages, responses, embeddings, completions).
    Route,
}

impl GroupBy {
    pub const ALL: [GroupBy; 7] = [
        GroupBy::Member,
        GroupBy::Team,
        GroupBy::Model,
        GroupBy::Day,
        GroupBy::Provider,
        GroupBy::Key,
        GroupBy::Route,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Member => "member",
            GroupBy::Team => "team",
            GroupBy::Model => "model",
            GroupBy::Day => "day",
            GroupBy::Provider => "provider",
            GroupBy::Key => "key",
            GroupBy::Route => "route",
        }
    }
}

impl std::fmt::Display for GroupBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GroupBy::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown dimension {s:?}: expected member, team, model, day, provider, key or route"
                )
            })
    }
}

/// Spend and requests over a period, grouped by any combination of dimensions.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub group_by: Vec<GroupBy>,
    pub member: Option<String>,
    pub team: Option<String>,
    /// Only events of this API route.
    pub route: Option<ApiRoute>,
}

/// One group of a [`UsageQuery`]. Dimensions not grouped by are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageGroup {
    pub member: Option<String>,
    pub team: Option<String>,
    pub model: Option<String>,
    pub day: Option<NaiveDate>,
    pub provider: Option<String>,
    pub key: Option<String>,
    /// Absent from JSON written before routes were grouped by.
    #[serde(default)]
    pub route: Option<ApiRoute>,
    pub requests: u64,
    pub cost: Money,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub cached_tokens: u64,
}

impl UsageGroup {
    pub const CSV_HEADER: &'static str = "member,team,model,day,provider,key,route,requests,cost,prompt_tokens,completion_tokens,reasoning_tokens,cached_tokens";

    /// One CSV line (no newline). Money is the exact canonical decimal.
    pub fn to_csv_row(&self) -> String {
        let f = |s: &Option<String>| csv_field(s.as_deref().unwrap_or(""));
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            f(&self.member),
            f(&self.team),
            f(&self.model),
            self.day.map(|d| d.to_string()).unwrap_or_default(),
            f(&self.provider),
            f(&self.key),
            self.route.map(ApiRoute::as_str).unwrap_or_default(),
            self.requests,
            self.cost.to_canonical_string(),
            self.prompt_tokens,
            self.completion_tokens,
            self.reasoning_tokens,
            self.cached_tokens
        )
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

type GroupKey = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<NaiveDate>,
    Option<String>,
    Option<String>,
    Option<ApiRoute>,
);

/// Groups events by `group_by` (no dimension: one total row), sorted by the group key.
pub fn aggregate(events: &[UsageEvent], group_by: &[GroupBy]) -> Vec<UsageGroup> {
    let has = |g: GroupBy| group_by.contains(&g);
    let mut groups: BTreeMap<GroupKey, UsageGroup> = BTreeMap::new();
    for e in events {
        let key: GroupKey = (
            has(GroupBy::Member).then(|| e.member_id.clone()),
            has(GroupBy::Team).then(|| e.team_id.clone()),
            has(GroupBy::Model).then(|| e.model().to_owned()),
            has(GroupBy::Day).then(|| e.time.date_naive()),
            has(GroupBy::Provider).then(|| e.usage.provider.clone().unwrap_or_default()),
            has(GroupBy::Key).then(|| e.usage.virtual_key_id.clone().unwrap_or_default()),
            has(GroupBy::Route).then_some(e.usage.route),
        );
        let g = groups.entry(key.clone()).or_insert_with(|| UsageGroup {
            member: key.0,
            team: key.1,
            model: key.2,
            day: key.3,
            provider: key.4,
            key: key.5,
            route: key.6,
            ..UsageGroup::default()
        });
        g.requests += 1;
        g.cost = g.cost.checked_add(e.usage.cost).unwrap_or(g.cost);
        g.prompt_tokens += e.usage.prompt_tokens;
        g.completion_tokens += e.usage.completion_tokens;
        g.reasoning_tokens += e.usage.reasoning_tokens;
        g.cached_tokens += e.usage.cached_tokens;
    }
    groups.into_values().collect()
}

/// One day of a member's trailing series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyPoint {
    pub day: NaiveDate,
    pub requests: u64,
    pub cost: Money,
}

/// `days` consecutive days ending with `last_day`, zero-filled.
pub fn daily_series(events: &[UsageEvent], last_day: NaiveDate, days: u32) -> Vec<DailyPoint> {
    let first = last_day - Days::new(u64::from(days.saturating_sub(1)));
    let mut by_day: BTreeMap<NaiveDate, (u64, Money)> = BTreeMap::new();
    for e in events {
        let d = e.time.date_naive();
        if d < first || d > last_day {
            continue;
        }
        let slot = by_day.entry(d).or_insert((0, Money::ZERO));
        slot.0 += 1;
        slot.1 = slot.1.checked_add(e.usage.cost).unwrap_or(slot.1);
    }
    (0..days)
        .map(|i| {
            let day = first + Days::new(u64::from(i));
            let (requests, cost) = by_day.get(&day).copied().unwrap_or((0, Money::ZERO));
            DailyPoint {
                day,
                requests,
                cost,
            }
        })
        .collect()
}
