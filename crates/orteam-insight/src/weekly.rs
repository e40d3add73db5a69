//! `orteam report weekly`: the summary a team lead sends on Monday.
//!
//! It covers the last complete week (Monday 00:00 UTC to Monday 00:00 UTC) and compares it with
//! the week before: spend and requests per member (gateway and direct-mode keys) next to their
//! budgets, the top models, spend by gateway API route (when more than one route has spend), the
//! week-over-week change, the anomalies flagged on any day of the week or today, and the keys
//! that expire or are due for rotation within 14 days.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use orteam_core::rust_decimal::Decimal;
use orteam_core::window::midnight;
use orteam_core::{ApiRoute, Money};
use orteam_ledger::{BudgetScope, GroupBy, Ledger};
use orteam_team::naming::KeyLabel;
use serde::{Deserialize, Serialize};

use crate::anomaly::{self, Anomaly, AnomalyConfig};
use crate::error::InsightError;
use crate::period::{Range, monday_of};
use crate::progress::Progress;
use crate::report::{self, ReportOptions, Source};
use crate::upstream::Upstream;

/// How far ahead key expiries and rotations are listed.
pub const KEY_HORIZON_DAYS: u64 = 14;

/// One budget window now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLine {
    pub scope: BudgetScope,
    pub scope_id: String,
    pub window: String,
    pub spent: Money,
    pub limit: Money,
    /// `spent / limit` in percent, one decimal.
    pub percent: String,
}

/// A member's week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberWeek {
    pub member: String,
    pub name: String,
    pub team: String,
    pub spend: Money,
    pub requests: u64,
    /// Of which through the gateway.
    pub gateway: Money,
    /// Of which with direct-mode keys (OpenRouter `/activity`).
    pub openrouter: Money,
    pub previous: Money,
    /// Week-over-week change in percent (`None` when the previous week was zero).
    pub change: Option<String>,
    /// The member's own budget windows now.
    pub budgets: Vec<BudgetLine>,
}

/// A model's week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelWeek {
    pub model: String,
    pub spend: Money,
    pub requests: u64,
    pub previous: Money,
    pub change: Option<String>,
}

/// A gateway API route's week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteWeek {
    pub route: ApiRoute,
    pub spend: Money,
    pub requests: u64,
    pub previous: Money,
    pub change: Option<String>,
}

/// A key that needs attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyNotice {
    pub member: String,
    /// `ot-<id>…` or the OpenRouter key name.
    pub key: String,
    /// `expires`, `expired` or `rotation_due`.
    pub kind: String,
    pub at: DateTime<Utc>,
}

/// The Monday summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WeeklyReport {
    pub week_start: NaiveDate,
    /// Exclusive.
    pub week_end: NaiveDate,
    pub previous_start: NaiveDate,
    pub spend: Money,
    pub requests: u64,
    pub previous: Money,
    pub change: Option<String>,
    pub members: Vec<MemberWeek>,
    /// The five most expensive models of the week.
    pub top_models: Vec<ModelWeek>,
    /// Gateway spend per API route, most expensive first; empty unless more than one route had
    /// spend in the week (direct-mode keys have no route and are not in it).
    #[serde(default)]
    pub routes: Vec<RouteWeek>,
    /// Team and org budget windows now.
    pub budgets: Vec<BudgetLine>,
    pub anomalies: Vec<Anomaly>,
    /// Requests the gateway refused during the week, per member × reason × what refused them.
    #[serde(default)]
    pub refusals: Vec<orteam_ledger::RefusalSummary>,
    pub keys: Vec<KeyNotice>,
    pub notes: Vec<String>,
}

/// `part / whole` in percent with one decimal.
pub fn percent(part: Money, whole: Money) -> String {
    if whole.is_zero() {
        return "-".into();
    }
    let p = part.as_decimal() * Decimal::from(100) / whole.as_decimal();
    format!("{:.1}", p.round_dp(1))
}

/// The change from `previous` to `current` in percent, signed (`+12.5`).
pub fn change(current: Money, previous: Money) -> Option<String> {
    if previous.is_zero() {
        return None;
    }
    let d =
        (current.as_decimal() - previous.as_decimal()) * Decimal::from(100) / previous.as_decimal();
    let d = d.round_dp(1);
    Some(if d.is_sign_negative() {
        format!("{d:.1}")
    } else {
        format!("+{d:.1}")
    })
}

/// Builds the weekly report at the ledger's "now".
pub async fn weekly_report(
    ledger: &Ledger,
    upstream: &Upstream,
    rule: &AnomalyConfig,
    progress: &dyn Progress,
) -> Result<WeeklyReport, InsightError> {
    let now = ledger.now();
    let today = now.date_naive();
    let end = monday_of(today);
    let start = end - Days::new(7);
    let prev = start - Days::new(7);
    let rep = report::build_report(
        ledger,
        upstream,
        &ReportOptions {
            range: Range {
                from: midnight(prev),
                to: midnight(end),
            },
            group_by: vec![
                GroupBy::Member,
                GroupBy::Model,
                GroupBy::Day,
                GroupBy::Route,
            ],
            route: None,
            direct: true,
            anomalies: None,
        },
        progress,
    )
    .await?;
    let dir = ledger.directory();
    // member -> (spend, requests, gateway, openrouter, previous)
    let mut members: BTreeMap<String, (Money, u64, Money, Money, Money)> = BTreeMap::new();
    let mut models: BTreeMap<String, (Money, u64, Money)> = BTreeMap::new();
    let mut routes: BTreeMap<ApiRoute, (Money, u64, Money)> = BTreeMap::new();
    let (mut spend, mut requests, mut previous) = (Money::ZERO, 0u64, Money::ZERO);
    let add = |a: &mut Money, b: Money| *a = a.checked_add(b).unwrap_or(*a);
    for r in &rep.rows {
        let Some(day) = r.day else { continue };
        let member = r.member.clone().unwrap_or_default();
        let model = r.model.clone().unwrap_or_default();
        let m = members.entry(member).or_default();
        let md = models.entry(model).or_default();
        let mut no_route = (Money::ZERO, 0, Money::ZERO);
        let rt = match r.route {
            Some(route) => routes.entry(route).or_default(),
            None => &mut no_route,
        };
        if day >= start {
            add(&mut rt.0, r.cost);
            rt.1 += r.requests;
            add(&mut m.0, r.cost);
            m.1 += r.requests;
            match r.source {
                Source::Gateway => add(&mut m.2, r.cost),
                Source::Openrouter => add(&mut m.3, r.cost),
            }
            add(&mut md.0, r.cost);
            md.1 += r.requests;
            add(&mut spend, r.cost);
            requests += r.requests;
        } else {
            add(&mut rt.2, r.cost);
            add(&mut m.4, r.cost);
            add(&mut md.2, r.cost);
            add(&mut previous, r.cost);
        }
    }
    for id in dir.members.keys() {
        members.entry(id.clone()).or_default();
    }
    let status = ledger
        .all_budget_status()
        .await
        .map_err(InsightError::ledger("reading budgets"))?;
    let line = |b: &orteam_ledger::BudgetStatus| BudgetLine {
        scope: b.scope,
        scope_id: b.scope_id.clone(),
        window: b.window.as_str().to_owned(),
        spent: b.spent,
        limit: b.limit,
        percent: percent(b.spent, b.limit),
    };
    let mut member_rows: Vec<MemberWeek> = members
        .into_iter()
        .map(|(id, (s, n, g, o, p))| {
            let m = dir.members.get(&id);
            MemberWeek {
                name: m.map(|m| m.display_name.clone()).unwrap_or_default(),
                team: m.map(|m| m.team_id.clone()).unwrap_or_default(),
                spend: s,
                requests: n,
                gateway: g,
                openrouter: o,
                previous: p,
                change: change(s, p),
                budgets: status
                    .iter()
                    .filter(|b| b.scope == BudgetScope::Member && b.scope_id == id)
                    .map(line)
                    .collect(),
                member: id,
            }
        })
        .collect();
    member_rows.sort_by(|a, b| b.spend.cmp(&a.spend).then(a.member.cmp(&b.member)));
    let mut model_rows: Vec<ModelWeek> = models
        .into_iter()
        .filter(|(_, (s, n, _))| !s.is_zero() || *n > 0)
        .map(|(model, (s, n, p))| ModelWeek {
            model,
            spend: s,
            requests: n,
            previous: p,
            change: change(s, p),
        })
        .collect();
    model_rows.sort_by(|a, b| b.spend.cmp(&a.spend).then(a.model.cmp(&b.model)));
    model_rows.truncate(5);
    let mut route_rows: Vec<RouteWeek> = routes
        .into_iter()
        .filter(|(_, (s, _, _))| !s.is_zero())
        .map(|(route, (s, n, p))| RouteWeek {
            route,
            spend: s,
            requests: n,
            previous: p,
            change: change(s, p),
        })
        .collect();
    if route_rows.len() < 2 {
        route_rows.clear();
    }
    route_rows.sort_by(|a, b| b.spend.cmp(&a.spend).then(a.route.cmp(&b.route)));

    // Anomalies of each day of the week, and today.
    let events = anomaly::events_for(
        ledger,
        start - Days::new(u64::from(rule.baseline_days)),
        today,
    )
    .await?;
    let mut anomalies = Vec::new();
    let mut day = start;
    while day <= today {
        if day < end || day == today {
            anomalies.extend(
                anomaly::detect_in(&events, day, rule)
                    .into_iter()
                    .filter(|a| a.flagged),
            );
        }
        day = day + Days::new(1);
    }

    // Keys expiring or due for rotation.
    let horizon = now + TimeDelta::days(KEY_HORIZON_DAYS as i64);
    let mut keys = Vec::new();
    for k in dir.virtual_keys.values() {
        if k.revoked_at.is_some() || k.disabled {
            continue;
        }
        if let Some(e) = k.expires_at
            && e <= horizon
        {
            keys.push(KeyNotice {
                member: k.member_id.clone(),
                key: k.display_prefix(),
                kind: if e <= now { "expired" } else { "expires" }.into(),
                at: e,
            });
            continue;
        }
        if let Some(r) = KeyLabel::parse(&k.name).and_then(|l| l.rotate_every) {
            let due = k.created_at + TimeDelta::from_std(r).unwrap_or(TimeDelta::MAX);
            if due <= horizon {
                keys.push(KeyNotice {
                    member: k.member_id.clone(),
                    key: k.display_prefix(),
                    kind: "rotation_due".into(),
                    at: due,
                });
            }
        }
    }
    let mut notes = rep.notes.clone();
    if !dir.upstream_keys.is_empty() {
        match upstream.management() {
            Some(client) => match client.list_all_keys(Some(false)).await {
                Ok(at_or) => {
                    for k in dir.upstream_keys.iter().filter(|k| !k.disabled) {
                        let label = KeyLabel::parse(&k.label);
                        let remote = at_or.iter().find(|x| x.hash == k.key_hash);
                        let name = remote
                            .map(|r| r.name.clone())
                            .unwrap_or_else(|| k.label.clone());
                        if let Some(e) = remote.and_then(|r| r.expires_at)
                            && e <= horizon
                        {
                            keys.push(KeyNotice {
                                member: k.member_id.clone(),
                                key: name,
                                kind: if e <= now { "expired" } else { "expires" }.into(),
                                at: e,
                            });
                        } else if let Some(r) = label.and_then(|l| l.rotate_every) {
                            let due =
                                k.created_at + TimeDelta::from_std(r).unwrap_or(TimeDelta::MAX);
                            if due <= horizon && remote.is_some() {
                                keys.push(KeyNotice {
                                    member: k.member_id.clone(),
                                    key: name,
                                    kind: "rotation_due".into(),
                                    at: due,
                                });
                            }
                        }
                    }
                }
                Err(e) => notes.push(format!("OpenRouter keys not checked for expiry: {e}")),
            },
            None => notes.push(
                "OpenRouter keys not checked for expiry: set OPENROUTER_PROVISIONING_KEY".into(),
            ),
        }
    }
    keys.sort_by(|a, b| a.at.cmp(&b.at).then(a.member.cmp(&b.member)));
    let refusals = report::refusals_in(
        ledger,
        Range {
            from: midnight(start),
            to: midnight(end),
        },
        None,
    )
    .await?;
    Ok(WeeklyReport {
        week_start: start,
        week_end: end,
        previous_start: prev,
        spend,
        requests,
        previous,
        change: change(spend, previous),
        members: member_rows,
        top_models: model_rows,
        routes: route_rows,
        budgets: status
            .iter()
            .filter(|b| b.scope != BudgetScope::Member)
            .map(line)
            .collect(),
        anomalies,
        refusals,
        keys,
        notes,
    })
}
