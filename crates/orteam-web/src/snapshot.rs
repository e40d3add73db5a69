//! Builds the dashboards' [`Snapshot`] from the ledger ([`build`]). The snapshot's types live in
//! `orteam-dashboard-types` (so `orteam top` reads them without the server stack) and are
//! re-exported here.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use orteam_core::{ApiRoute, Money, Window};
use orteam_ledger::{BudgetStatus, EventFilter, Ledger, LedgerError, UsageEvent};

pub use orteam_dashboard_types::snapshot::{
    Charts, Gauge, MAX_SERIES, MemberRow, ModelRow, NamedSeries, Range, RecentRequest,
    ReconcilePanel, RefusalRow, RouteRow, Series, Snapshot, SplitBy, Totals, permille, usd,
};

use crate::keys::{KeyTotals, KeyUsage, key_rows};
use orteam_dashboard_types::rules::{derive_alerts, reconcile_alerts, refusal_alerts};

/// Inputs of [`build`] that do not come from the ledger.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub range: Range,
    pub recent: usize,
    pub now: DateTime<Utc>,
}

/// What a scoped snapshot may show: these members (their spend, keys, requests, member
/// budgets), these teams' budgets, and the org's budgets only with `org`.
#[derive(Debug, Clone, Default)]
pub struct Visible {
    pub members: std::collections::HashSet<String>,
    pub teams: std::collections::HashSet<String>,
    pub org: bool,
}

impl Visible {
    fn member(&self, id: &str) -> bool {
        self.members.contains(id)
    }

    fn budget(&self, b: &BudgetStatus) -> bool {
        match b.scope {
            orteam_ledger::BudgetScope::Member => self.member(&b.scope_id),
            orteam_ledger::BudgetScope::Team => self.teams.contains(&b.scope_id),
            orteam_ledger::BudgetScope::Org => self.org,
        }
    }
}

/// Reads the ledger once (events since the start of the month or the range, whichever is
/// earlier; budget status; the directory) and computes everything else in memory.
pub async fn build(ledger: &Ledger, opts: Options) -> Result<Snapshot, LedgerError> {
    build_for(ledger, opts, None).await
}

/// [`build`], computed only from what `visible` allows (`None`: everything), so a team lead's
/// or a member's dashboard holds no figure of anyone else, totals included.
pub async fn build_for(
    ledger: &Ledger,
    opts: Options,
    visible: Option<&Visible>,
) -> Result<Snapshot, LedgerError> {
    let now = opts.now;
    let today = Window::Daily.start(now);
    let month = Window::Monthly.start(now);
    let (first, len, n) = opts.range.buckets(now);
    let from = first.min(month);
    let mut events = ledger
        .events(EventFilter {
            from: Some(from),
            ..EventFilter::default()
        })
        .await?;
    let mut refusals = refusals_since(ledger, today).await?;
    let mut recent = ledger
        .recent_events(if visible.is_some() {
            opts.recent.saturating_mul(20).min(5000)
        } else {
            opts.recent
        })
        .await?;
    let mut statuses = ledger.all_budget_status().await?;
    // The reconciliation panel is the org's: a member's or a team lead's view leaves it out.
    let last_run = if visible.is_none_or(|v| v.org) {
        ledger.last_reconcile_run().await?
    } else {
        None
    };
    let mut dir = ledger.directory();
    if let Some(v) = visible {
        events.retain(|e| v.member(&e.member_id));
        recent.retain(|e| v.member(&e.member_id));
        refusals.retain(|r| v.member(&r.member));
        recent.truncate(opts.recent);
        statuses.retain(|b| v.budget(b));
        let mut scoped = (*dir).clone();
        scoped.members.retain(|id, _| v.member(id));
        scoped.virtual_keys.retain(|_, k| v.member(&k.member_id));
        scoped.upstream_keys.retain(|k| v.member(&k.member_id));
        dir = std::sync::Arc::new(scoped);
    }

    let mut totals = Totals {
        members: dir
            .members
            .values()
            .filter(|m| m.state == orteam_ledger::MemberState::Active)
            .count(),
        any_requests: !recent.is_empty(),
        refused_today: refusals.iter().map(|r| r.count).sum(),
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
            if e.usage.outcome == orteam_ledger::Outcome::Failed {
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

    let mut budgets: Vec<Gauge> = statuses.iter().map(gauge).collect();
    budgets.sort_by(|a, b| (a.scope, &a.scope_id, a.window).cmp(&(b.scope, &b.scope_id, b.window)));
    let usage = KeyUsage::from_events(&events, now);
    let keys = key_rows(&dir, &statuses, &usage, now, false);
    let key_totals = KeyTotals::of(&keys);
    let recent: Vec<RecentRequest> = recent.iter().map(recent_request).collect();
    let org_level_month: Money = events
        .iter()
        .filter(|e| e.time >= month && e.is_org_level())
        .map(|e| e.usage.cost)
        .sum();
    let reconciliation = last_run.and_then(|r| reconcile_panel(&r, org_level_month));
    let mut alerts = derive_alerts(&budgets, &keys, &recent, now);
    alerts.extend(refusal_alerts(&refusals));
    alerts.extend(reconcile_alerts(reconciliation.as_ref()));
    alerts.sort_by_key(|a| a.severity);
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
        refusals,
        anomalies: Vec::new(),
        anomaly_detector: None,
        reconciliation,
        charts: None,
    })
}

/// The *Reconciliation* panel from the newest recorded run (written by `orteam-insight`).
fn reconcile_panel(
    row: &orteam_ledger::ReconcileRun,
    org_level_month: Money,
) -> Option<ReconcilePanel> {
    let run: orteam_insight::RecordedRun = match serde_json::from_str(&row.result) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(run = row.id, error = %e, "unreadable reconciliation run");
            return None;
        }
    };
    Some(ReconcilePanel {
        finished_at: run.finished_at,
        source: run.source,
        matched: run.summary.matched,
        corrected: run.summary.changed,
        inserted: run.summary.inserted,
        org_level: run.summary.org_level,
        org_level_month,
        outstanding: run.summary.outstanding,
        changes: run.changes.iter().map(|c| c.describe()).collect(),
        outstanding_lines: run.outstanding,
        incomplete: run.incomplete,
    })
}

/// Refusals since `from`, per member × reason × cause, most refused first.
async fn refusals_since(
    ledger: &Ledger,
    from: DateTime<Utc>,
) -> Result<Vec<RefusalRow>, LedgerError> {
    let rows = ledger
        .refusals(orteam_ledger::RefusalFilter {
            from: Some(from),
            ..Default::default()
        })
        .await?;
    Ok(orteam_ledger::refusals::summarize(&rows)
        .into_iter()
        .map(|s| RefusalRow {
            member: s.member_id,
            reason: s.reason,
            detail: s.detail,
            count: s.count,
            last: s.last,
        })
        .collect())
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

/// The dashboard's gauge for one budget window.
fn gauge(b: &BudgetStatus) -> Gauge {
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

/// One recorded request as the snapshot shows it.
pub fn recent_request(e: &UsageEvent) -> RecentRequest {
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
        latency: orteam_core::latency::show_recorded(e.usage.latency_us, e.usage.latency_ms),
        request_id: e.usage.request_id.clone(),
        route: e.usage.route,
        served_outside_tier: e.usage.served_outside_tier,
        reconciled: e.reconciled.as_ref().map(|r| r.evidence.clone()),
    }
}
