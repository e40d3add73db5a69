//! Alerts the dashboards derive from what they already read (budgets nearly or fully used, keys
//! overdue for rotation or about to expire, failed requests), and the hook for an anomaly
//! detector: [`AnomalySource`].

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, TimeDelta, Utc};
use orteam_ledger::{BudgetScope, Ledger, Outcome};
use serde::{Deserialize, Serialize};

use crate::keys::KeyRow;
use crate::snapshot::{Gauge, RecentRequest, usd};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One alert or anomaly, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub severity: Severity,
    /// `budget`, `rotation`, `expiry`, `failures`, or the detector's own kind (`spike`…).
    pub kind: String,
    /// Member, team, org or key the alert is about.
    pub subject: String,
    pub message: String,
    /// A command or step that addresses it, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
}

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

/// A boxed future, so [`AnomalySource`] stays object-safe without extra dependencies.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An anomaly detector the dashboards show the findings of (spikes, unusual models…). Wire one
/// in with [`crate::WebState::with_anomalies`]; without one the dashboards say that none is
/// configured.
pub trait AnomalySource: Send + Sync {
    /// Shown as the panel's source, e.g. `orteam-insight`.
    fn name(&self) -> &str;
    /// Anomalies as of `now`; an error is shown in the panel, not as a failed dashboard.
    fn anomalies<'a>(
        &'a self,
        ledger: &'a Ledger,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<Alert>, String>>;
}
