//! Alerts derived from what a snapshot already holds: budgets nearly or fully used, keys overdue
//! for rotation or about to expire, failed requests.

use chrono::{DateTime, TimeDelta, Utc};
use orteam_core::{BudgetScope, Outcome};

use crate::alerts::{Alert, Severity};
use crate::keys::KeyRow;
use crate::snapshot::{Gauge, RecentRequest, RefusalRow, usd};

/// Budgets used at or above this per-mille get a warning.
pub const BUDGET_WARN_PERMILLE: u32 = 800;

/// Alerts from budgets, keys and recent requests, most severe first.
pub fn derive_alerts(
    budgets: &[Gauge],
    keys: &[KeyRow],
    recent: &[RecentRequest],
    now: DateTime<Utc>,
) -> Vec<Alert> {
    let mut out = Vec::new();
    for g in budgets {
        if g.used_permille < BUDGET_WARN_PERMILLE {
            continue;
        }
        let who = match g.scope {
            BudgetScope::Member => format!("member {}", g.scope_id),
            BudgetScope::Team => format!("team {}", g.scope_id),
            BudgetScope::Org => format!("org {}", g.scope_id),
        };
        let full = g.used_permille >= 1000;
        out.push(Alert {
            severity: if full {
                Severity::Critical
            } else {
                Severity::Warning
            },
            kind: "budget".into(),
            subject: who.clone(),
            message: format!(
                "{who}'s {} budget is {}: {} of {} used; it resets at {}",
                g.window,
                if full {
                    "exhausted".to_owned()
                } else {
                    format!("{}% used", g.used_permille / 10)
                },
                usd(g.spent),
                usd(g.limit),
                g.reset_at.format("%Y-%m-%d %H:%M UTC"),
            ),
            action: (g.scope != BudgetScope::Org).then(|| {
                format!(
                    "orteam budget raise {} 5.00 --window {} --until 8h --scope {}",
                    g.scope_id, g.window, g.scope
                )
            }),
            time: None,
        });
    }
    for k in keys {
        if k.rotation_overdue {
            out.push(Alert {
                severity: Severity::Warning,
                kind: "rotation".into(),
                subject: k.key.clone(),
                message: format!(
                    "{}'s {} key {} was due for rotation on {}",
                    k.member,
                    k.mode.as_str(),
                    k.key,
                    k.rotation_due
                        .map(|d| d.format("%Y-%m-%d").to_string())
                        .unwrap_or_default()
                ),
                action: Some(format!("orteam keys rotate {}", k.member)),
                time: k.rotation_due,
            });
        } else if k.is_live()
            && k.expires_at
                .is_some_and(|e| e > now && e - now < TimeDelta::days(3))
        {
            out.push(Alert {
                severity: Severity::Info,
                kind: "expiry".into(),
                subject: k.key.clone(),
                message: format!(
                    "{}'s key {} expires at {}",
                    k.member,
                    k.key,
                    k.expires_at
                        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                        .unwrap_or_default()
                ),
                action: None,
                time: k.expires_at,
            });
        }
    }
    let failed: Vec<&RecentRequest> = recent
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .collect();
    if let Some(last) = failed.first() {
        out.push(Alert {
            severity: Severity::Warning,
            kind: "failures".into(),
            subject: last.member.clone(),
            message: format!(
                "{} of the last {} requests failed upstream (latest: {} with {})",
                failed.len(),
                recent.len(),
                last.member,
                last.requested_model
            ),
            action: None,
            time: Some(last.time),
        });
    }
    out.sort_by_key(|a| a.severity);
    out
}

/// Members refused at least this often today get an alert.
pub const REFUSAL_ALERT_MIN: u64 = 10;

/// Most refusal alerts shown (the refused panel lists them all).
pub const MAX_REFUSAL_ALERTS: usize = 5;

/// One alert per member × reason × cause refused at least [`REFUSAL_ALERT_MIN`] times
/// (`refusals` most refused first, as the snapshot holds them).
pub fn refusal_alerts(refusals: &[RefusalRow]) -> Vec<Alert> {
    refusals
        .iter()
        .filter(|r| r.count >= REFUSAL_ALERT_MIN)
        .take(MAX_REFUSAL_ALERTS)
        .map(|r| Alert {
            severity: Severity::Warning,
            kind: "refused".into(),
            subject: if r.member.is_empty() {
                "unknown keys".into()
            } else {
                r.member.clone()
            },
            message: r.describe(),
            action: (r.reason == "budget_exceeded" && !r.member.is_empty())
                .then(|| "orteam report --outcome refused --period today".to_owned()),
            time: Some(r.last),
        })
        .collect()
}

/// The newest reconciliation run as an alert: it changed money (info) or left differences
/// (warning); nothing when it did neither.
pub fn reconcile_alerts(panel: Option<&crate::snapshot::ReconcilePanel>) -> Vec<Alert> {
    let Some(p) = panel else {
        return Vec::new();
    };
    let changed = p.corrected + p.inserted > 0;
    if !changed && p.outstanding == 0 {
        return Vec::new();
    }
    let mut message = format!(
        "reconciliation with OpenRouter: changed {} events, inserted {}, booked {} at org level",
        p.corrected,
        p.inserted,
        usd(p.org_level)
    );
    if p.outstanding > 0 {
        message.push_str(&format!("; {} difference(s) not repaired", p.outstanding));
    }
    vec![Alert {
        severity: if p.outstanding > 0 {
            Severity::Warning
        } else {
            Severity::Info
        },
        kind: "reconcile_difference".into(),
        subject: "org".into(),
        message,
        action: (p.outstanding > 0).then(|| "orteam reconcile".to_owned()),
        time: Some(p.finished_at),
    }]
}
