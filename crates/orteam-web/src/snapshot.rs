//! What the dashboards show, in one value: [`Snapshot`], built from the ledger by [`build`] and
//! served as JSON at `GET /admin/v1/dashboard` (the web page and `orteam top` both read it).
//! Every amount is exact [`Money`] (a JSON string); only the chart drawing converts to floats.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use orteam_core::{ApiRoute, Money, Window};
use orteam_ledger::{
    BudgetScope, BudgetStatus, EventFilter, Ledger, LedgerError, Outcome, UsageEvent,
};
use serde::{Deserialize, Serialize};

use crate::alerts::{Alert, derive_alerts};
use crate::keys::{KeyRow, KeyTotals, KeyUsage, key_rows};

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
    /// Anomalies from the detector wired into the dashboard (see [`crate::AnomalySource`]).
    pub anomalies: Vec<Alert>,
    /// Name of the anomaly detector, `None` when none is wired in.
    pub anomaly_detector: Option<String>,
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

impl Gauge {
    fn from_status(b: &BudgetStatus) -> Gauge {
        let used = b.spent.checked_add(b.held).unwrap_or(b.spent);
        Gauge {
            scope: b.scope,
            scope_id: b.scope_id.clone(),
            window: b.window,
            limit: b.limit,
            raised: b.raised,
            spent: b.spent,
            held: b.held,
            remaining: b.remaining,
            reset_at: b.reset_at,
            used_permille: permille(used, b.limit),
        }
    }
}

/// Dollars for people, rounded for display only: 2 places from $1, 4 from a cent, else 6, so
/// small LLM costs stay visible (`$12.35`, `$0.0342`, `$0.000396`).
pub fn usd(m: Money) -> String {
    let abs = if m.is_negative() {
        Money::ZERO.checked_sub(m).unwrap_or(m)
    } else {
        m
    };
    let places = if abs >= Money::from_cents(100) || abs.is_zero() {
        2
    } else if abs >= Money::from_cents(1) {
        4
    } else {
        6
    };
    m.to_usd(places)
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
    pub request_id: String,
    /// The gateway API route (absent from snapshots of gateways that did not record it: chat).
    #[serde(default)]
    pub route: ApiRoute,
}

impl From<&UsageEvent> for RecentRequest {
    fn from(e: &UsageEvent) -> Self {
        RecentRequest {
            time: e.time,
            member: e.member_id.clone(),
            requested_model: e.usage.requested_model.clone(),
            served_model: e.usage.served_model.clone(),
            prompt_tokens: e.usage.prompt_tokens,
            completion_tokens: e.usage.completion_tokens,
            cost: e.usage.cost,
            outcome: e.usage.outcome,
            streamed: e.usage.streamed,
            latency_ms: e.usage.latency_ms,
            request_id: e.usage.request_id.clone(),
            route: e.usage.route,
        }
    }
}

/// Most series a chart draws; the rest are summed into "other".
pub const MAX_SERIES: usize = 6;

/// Inputs of [`build`] that do not come from the ledger.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub range: Range,
    pub recent: usize,
    pub now: DateTime<Utc>,
}

/// Reads the ledger once (events since the start of the month or the range, whichever is
/// earlier; budget status; the directory) and computes everything else in memory.
pub async fn build(ledger: &Ledger, opts: Options) -> Result<Snapshot, LedgerError> {
    let now = opts.now;
    let today = Window::Daily.start(now);
    let month = Window::Monthly.start(now);
    let (first, len, n) = opts.range.buckets(now);
    let from = first.min(month);
    let events = ledger
        .events(EventFilter {
            from: Some(from),
            ..EventFilter::default()
        })
        .await?;
    let recent = ledger.recent_events(opts.recent).await?;
    let statuses = ledger.all_budget_status().await?;
    let dir = ledger.directory();

    let mut totals = Totals {
        members: dir
            .members
            .values()
            .filter(|m| m.state == orteam_ledger::MemberState::Active)
            .count(),
        any_requests: !recent.is_empty(),
        ..Totals::default()
    };
    let mut member_spend: HashMap<&str, (Money, Money, u64)> = HashMap::new();
    let mut models: BTreeMap<String, ModelRow> = BTreeMap::new();
    let mut routes: BTreeMap<ApiRoute, RouteRow> = BTreeMap::new();
    for e in events.iter().filter(|e| e.time >= month) {
        let cost = e.usage.cost;
        let is_today = e.time >= today;
        totals.spend_month = add(totals.spend_month, cost);
        totals.requests_month += 1;
        let m = member_spend
            .entry(e.member_id.as_str())
            .or_insert((Money::ZERO, Money::ZERO, 0));
        m.1 = add(m.1, cost);
        let row = models
            .entry(e.model().to_owned())
            .or_insert_with(|| ModelRow {
                model: e.model().to_owned(),
                requests_today: 0,
                spend_today: Money::ZERO,
                requests_month: 0,
                spend_month: Money::ZERO,
            });
        row.requests_month += 1;
        row.spend_month = add(row.spend_month, cost);
        let route = routes.entry(e.usage.route).or_insert_with(|| RouteRow {
            route: e.usage.route,
            requests_today: 0,
            spend_today: Money::ZERO,
            requests_month: 0,
            spend_month: Money::ZERO,
        });
        route.requests_month += 1;
        route.spend_month = add(route.spend_month, cost);
        if is_today {
            route.requests_today += 1;
            route.spend_today = add(route.spend_today, cost);
            totals.spend_today = add(totals.spend_today, cost);
            totals.requests_today += 1;
            if e.usage.outcome == Outcome::Failed {
                totals.failed_today += 1;
            }
            m.0 = add(m.0, cost);
            m.2 += 1;
            row.requests_today += 1;
            row.spend_today = add(row.spend_today, cost);
        }
    }
    let members = dir
        .members
        .values()
        .map(|m| {
            let (today, month, reqs) =
                member_spend
                    .get(m.id.as_str())
                    .copied()
                    .unwrap_or((Money::ZERO, Money::ZERO, 0));
            MemberRow {
                id: m.id.clone(),
                display_name: m.display_name.clone(),
                team: m.team_id.clone(),
                tier: m.tier_id.clone(),
                state: m.state.as_str().to_owned(),
                spend_today: today,
                spend_month: month,
                requests_today: reqs,
            }
        })
        .collect();
    let mut by_model: Vec<ModelRow> = models.into_values().collect();
    by_model.sort_by(|a, b| {
        (b.spend_today, b.spend_month, &a.model).cmp(&(a.spend_today, a.spend_month, &b.model))
    });
    let mut by_route: Vec<RouteRow> = routes.into_values().collect();
    by_route.sort_by(|a, b| {
        (b.spend_today, b.spend_month, a.route).cmp(&(a.spend_today, a.spend_month, b.route))
    });

    let in_range: Vec<&UsageEvent> = events.iter().filter(|e| e.time >= first).collect();
    let bucket_of = |e: &UsageEvent| -> Option<usize> {
        let i = (e.time - first).num_seconds() / len.num_seconds().max(1);
        usize::try_from(i).ok().filter(|i| *i < n)
    };
    let series = Series {
        range: opts.range,
        starts: (0..n)
            .map(|i| first + len * i32::try_from(i).unwrap_or(0))
            .collect(),
        bucket_seconds: len.num_seconds(),
        by_member: split_series(&in_range, n, &bucket_of, |e| e.member_id.clone()),
        by_model: split_series(&in_range, n, &bucket_of, |e| e.model().to_owned()),
    };

    let mut budgets: Vec<Gauge> = statuses.iter().map(Gauge::from_status).collect();
    budgets.sort_by(|a, b| (a.scope, &a.scope_id, a.window).cmp(&(b.scope, &b.scope_id, b.window)));
    let usage = KeyUsage::from_events(&events, now);
    let keys = key_rows(&dir, &statuses, &usage, now, false);
    let key_totals = KeyTotals::of(&keys);
    let recent: Vec<RecentRequest> = recent.iter().map(RecentRequest::from).collect();
    let alerts = derive_alerts(&budgets, &keys, &recent, now);
    Ok(Snapshot {
        generated_at: now,
        backend: ledger.backend().to_owned(),
        totals,
        budgets,
        members,
        by_model,
        by_route,
        series,
        keys,
        key_totals,
        recent,
        alerts,
        anomalies: Vec::new(),
        anomaly_detector: None,
        charts: None,
    })
}

fn add(a: Money, b: Money) -> Money {
    a.checked_add(b).unwrap_or(a)
}

/// Per-bucket spend for each name; the [`MAX_SERIES`]` - 1` largest by total, the rest summed
/// into "other".
fn split_series(
    events: &[&UsageEvent],
    n: usize,
    bucket_of: &dyn Fn(&UsageEvent) -> Option<usize>,
    name_of: impl Fn(&UsageEvent) -> String,
) -> Vec<NamedSeries> {
    let mut by_name: BTreeMap<String, Vec<Money>> = BTreeMap::new();
    for e in events {
        let Some(i) = bucket_of(e) else { continue };
        let points = by_name
            .entry(name_of(e))
            .or_insert_with(|| vec![Money::ZERO; n]);
        if let Some(p) = points.get_mut(i) {
            *p = add(*p, e.usage.cost);
        }
    }
    let mut all: Vec<NamedSeries> = by_name
        .into_iter()
        .map(|(name, points)| NamedSeries {
            total: points.iter().sum(),
            name,
            points,
        })
        .collect();
    all.sort_by(|a, b| (b.total, &a.name).cmp(&(a.total, &b.name)));
    if all.len() > MAX_SERIES {
        let rest = all.split_off(MAX_SERIES - 1);
        let mut points = vec![Money::ZERO; n];
        for s in &rest {
            for (p, q) in points.iter_mut().zip(&s.points) {
                *p = add(*p, *q);
            }
        }
        all.push(NamedSeries {
            name: format!("other ({})", rest.len()),
            total: points.iter().sum(),
            points,
        });
    }
    all
}

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
