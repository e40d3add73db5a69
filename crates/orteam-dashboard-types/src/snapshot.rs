//! What the dashboards show, in one value: [`Snapshot`], served as JSON at
//! `GET /admin/v1/dashboard` (built from the ledger by `orteam_web::snapshot::build`; the web
//! page and `orteam top` both read it). Every amount is exact [`Money`] (a JSON string); only the
//! chart drawing converts to floats.

use chrono::{DateTime, TimeDelta, Utc};
use orteam_core::{ApiRoute, BudgetScope, Money, Outcome, Window};
use serde::{Deserialize, Serialize};

use crate::alerts::Alert;
use crate::keys::{KeyRow, KeyTotals};

/// The period the spend-over-time chart covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Range {
    /// The last hour, in one-minute buckets.
    #[default]
    #[serde(rename = "1h")]
    Hour,
    /// The last 24 hours, hourly.
    #[serde(rename = "24h")]
    Day,
    /// The last 7 days (today included), daily.
    #[serde(rename = "7d")]
    Week,
    /// The last 30 days, daily.
    #[serde(rename = "30d")]
    Month,
}

impl Range {
    pub const ALL: [Range; 4] = [Range::Hour, Range::Day, Range::Week, Range::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    /// (first bucket start, bucket length, bucket count) for `now`.
    pub fn buckets(self, now: DateTime<Utc>) -> (DateTime<Utc>, TimeDelta, usize) {
        let trunc = |t: DateTime<Utc>, secs: i64| {
            DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(secs), 0).unwrap_or(t)
        };
        let (len, n) = match self {
            Range::Hour => (TimeDelta::minutes(1), 60),
            Range::Day => (TimeDelta::hours(1), 24),
            Range::Week => (TimeDelta::days(1), 7),
            Range::Month => (TimeDelta::days(1), 30),
        };
        let last = trunc(now, len.num_seconds());
        let first = last - len * (n - 1);
        (first, len, n as usize)
    }
}

/// Which dimension the spend-over-time chart splits by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitBy {
    #[default]
    Member,
    Model,
}

/// Everything a dashboard shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub generated_at: DateTime<Utc>,
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub totals: Totals,
    /// Every budget window of every scope, member first, then team, then org.
    pub budgets: Vec<Gauge>,
    pub members: Vec<MemberRow>,
    /// Spend by model today and this month, largest first.
    pub by_model: Vec<ModelRow>,
    /// Spend by gateway API route today and this month, largest first (routes with requests
    /// this month only).
    #[serde(default)]
    pub by_route: Vec<RouteRow>,
    pub series: Series,
    pub keys: Vec<KeyRow>,
    pub key_totals: KeyTotals,
    /// Newest first.
    pub recent: Vec<RecentRequest>,
    /// Budget, key and failure alerts derived from the data above.
    pub alerts: Vec<Alert>,
    /// Requests the gateway refused today (the ledger's "today"), per member × reason × what
    /// refused them, most refused first.
    #[serde(default)]
    pub refusals: Vec<RefusalRow>,
    /// Anomalies from the detector wired into the dashboard (`orteam_web::AnomalySource`).
    pub anomalies: Vec<Alert>,
    /// Name of the anomaly detector, `None` when none is wired in.
    pub anomaly_detector: Option<String>,
    /// The newest reconciliation with OpenRouter (the serving gateway's loop or `orteam
    /// reconcile`), `None` before the first run or for a member's own view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation: Option<ReconcilePanel>,
    /// Server-rendered SVG charts, when asked for with `charts=svg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charts: Option<Charts>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Charts {
    pub spend_over_time: String,
    pub spend_by_model: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub spend_today: Money,
    pub spend_month: Money,
    pub requests_today: u64,
    pub requests_month: u64,
    pub failed_today: u64,
    /// Requests the gateway refused today (budget, tier, rate limit, key, bad input).
    #[serde(default)]
    pub refused_today: u64,
    pub members: usize,
    /// Requests ever recorded (0: show how to send one).
    pub any_requests: bool,
}

/// One budget window with how full it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gauge {
    pub scope: BudgetScope,
    pub scope_id: String,
    pub window: Window,
    pub limit: Money,
    pub raised: Money,
    pub spent: Money,
    pub held: Money,
    pub remaining: Money,
    pub reset_at: DateTime<Utc>,
    /// `(spent + held) / limit` in per mille, capped at 1000 (display only).
    pub used_permille: u32,
}

/// Dollars for people: [`Money::usd`], the one display rule (kept under this name for the
/// dashboards' callers).
pub fn usd(m: Money) -> String {
    m.usd()
}

/// `part / whole` in per mille, rounded down, capped at 1000; a zero limit counts as full.
pub fn permille(part: Money, whole: Money) -> u32 {
    use orteam_core::rust_decimal::Decimal;
    use orteam_core::rust_decimal::prelude::ToPrimitive;
    if whole <= Money::ZERO {
        return 1000;
    }
    let Some(r) = part
        .as_decimal()
        .checked_mul(Decimal::from(1000))
        .and_then(|x| x.checked_div(whole.as_decimal()))
    else {
        return 1000;
    };
    let r = r.floor();
    r.to_u32()
        .unwrap_or(if r.is_sign_negative() { 0 } else { 1000 })
        .min(1000)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    pub id: String,
    pub display_name: String,
    pub team: String,
    pub tier: String,
    pub state: String,
    pub spend_today: Money,
    pub spend_month: Money,
    pub requests_today: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRow {
    pub model: String,
    pub requests_today: u64,
    pub spend_today: Money,
    pub requests_month: u64,
    pub spend_month: Money,
}

/// One gateway API route's spend (chat, messages, responses, embeddings, completions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRow {
    pub route: ApiRoute,
    pub requests_today: u64,
    pub spend_today: Money,
    pub requests_month: u64,
    pub spend_month: Money,
}

/// Spend per bucket over the chosen range, split by member and by model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    pub range: Range,
    /// Start of each bucket.
    pub starts: Vec<DateTime<Utc>>,
    /// Bucket length in seconds.
    pub bucket_seconds: i64,
    pub by_member: Vec<NamedSeries>,
    pub by_model: Vec<NamedSeries>,
}

impl Series {
    pub fn split(&self, by: SplitBy) -> &[NamedSeries] {
        match by {
            SplitBy::Member => &self.by_member,
            SplitBy::Model => &self.by_model,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedSeries {
    pub name: String,
    /// Spend in each bucket (not cumulative).
    pub points: Vec<Money>,
    pub total: Money,
}

/// One recorded request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentRequest {
    pub time: DateTime<Utc>,
    pub member: String,
    pub requested_model: String,
    /// Differs from `requested_model` when the tier downgraded the request.
    pub served_model: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: Money,
    pub outcome: Outcome,
    pub streamed: bool,
    pub latency_ms: u64,
    /// The latency as people read it, at its precision (`orteam_core::latency`): `412 µs`.
    #[serde(default)]
    pub latency: String,
    pub request_id: String,
    /// The gateway API route (absent from snapshots of gateways that did not record it: chat).
    #[serde(default)]
    pub route: ApiRoute,
    /// A policy violation: upstream served a model outside the member's tier.
    #[serde(default)]
    pub served_outside_tier: bool,
    /// Set when reconciliation corrected or inserted the event: the evidence it rests on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled: Option<String>,
}

/// The *Reconciliation* panel: the newest run and the money booked at org level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcilePanel {
    pub finished_at: DateTime<Utc>,
    /// `gateway` (its periodic loop) or `cli`.
    pub source: String,
    /// Requests compared with `/generation` that matched.
    pub matched: usize,
    /// Existing events whose cost the run corrected.
    pub corrected: usize,
    /// Reconciliation events inserted for charges the ledger never recorded.
    pub inserted: usize,
    /// Booked at org level by the run (not attributable to a member).
    pub org_level: Money,
    /// Booked at org level this month, all runs ("unattributed (org)").
    pub org_level_month: Money,
    /// Differences left as they are.
    pub outstanding: usize,
    /// One line per change of the run (the first 100).
    pub changes: Vec<String>,
    /// One line per outstanding difference (the first 100).
    pub outstanding_lines: Vec<String>,
    /// Some look-ups failed.
    pub incomplete: bool,
}

/// Requests refused for one member × reason × cause over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalRow {
    /// Empty when the key did not authenticate.
    pub member: String,
    /// The gateway's error code (`budget_exceeded`, `model_not_allowed`, `rate_limit_exceeded`,
    /// `invalid_api_key`, `invalid_request`…).
    pub reason: String,
    /// What refused them (`member "carol" daily`, `requests per minute`, `tier strict`), or
    /// empty.
    pub detail: String,
    pub count: u64,
    /// The minute of the latest refusal counted.
    pub last: DateTime<Utc>,
}

impl RefusalRow {
    /// `carol refused 225× by the member "carol" daily budget`.
    pub fn describe(&self) -> String {
        describe_refusal(&self.member, &self.reason, &self.detail, self.count)
    }
}

pub use orteam_core::refusal::describe as describe_refusal;

/// Most series a chart draws; the rest are summed into "other".
pub const MAX_SERIES: usize = 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permille_is_exact_and_capped() {
        let m = |s: &str| Money::parse(s).unwrap();
        assert_eq!(permille(m("0"), m("5")), 0);
        assert_eq!(permille(m("2.5"), m("5")), 500);
        assert_eq!(permille(m("4.9999"), m("5")), 999);
        assert_eq!(permille(m("7"), m("5")), 1000);
        assert_eq!(permille(m("1"), m("0")), 1000);
    }

    #[test]
    fn buckets_end_at_now() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:37:12Z")
            .unwrap()
            .with_timezone(&Utc);
        let (first, len, n) = Range::Hour.buckets(now);
        assert_eq!(n, 60);
        assert_eq!(first + len * 59, now - TimeDelta::seconds(12));
        let (first, _, n) = Range::Week.buckets(now);
        assert_eq!(n, 7);
        assert_eq!(first.to_rfc3339(), "2026-11-17T00:00:00+00:00");
    }
}
