//! Budget and anomaly alerts, delivered as JSON webhooks through a durable outbox.
//!
//! Each run ([`run_alerts_once`]):
//! 1. **Enqueue.** For every budget window with a limit and every threshold `t` (default 50,
//!    80, 100 %) with `spent ≥ t % × limit`, and for every flagged anomaly of today, one row per
//!    webhook URL goes into the ledger's `alert_outbox`, keyed by an alert id that names the
//!    window instance (`budget:member:alice:daily:2026-05-04:80`) or the subject and day
//!    (`anomaly:member:alice:2026-05-04`). The insert ignores existing ids, so an alert is
//!    recorded **once per threshold per window**, however many runs or gateway instances see it.
//! 2. **Deliver.** Due rows are claimed for a short lease (so concurrent senders never post the
//!    same row), POSTed, and marked delivered on a 2xx. A failure schedules the next attempt
//!    after [`AlertsConfig::retry`]'s delay (the client's [`RetryPolicy`], the product's one
//!    retry policy: `base_delay × 2^(attempts−1)`, capped at `max_delay`); after
//!    `max_retries` retries the row is dead (kept, with its last error).
//!
//! Crash safety: the row is committed before any delivery, so a crash never loses an alert; a
//! delivered row is never sent again, so a restart does not repeat one. The one window for a
//! repeat is a crash after the receiver answered 2xx and before the row is marked delivered;
//! every POST carries the alert id (`X-Orteam-Alert-Id` and `"id"`) so a receiver can drop
//! such a duplicate.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use orteam_core::Money;
use orteam_ledger::{BudgetStatus, Ledger, NewAlert, OutboxEntry};
use orteam_openrouter::{Jitter, RetryPolicy};
use orteam_team::file::AlertsSpec;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::anomaly::{self, Anomaly, AnomalyConfig};
use crate::error::InsightError;

/// Where and when to alert.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub webhooks: Vec<String>,
    /// Percent of a budget window's limit (default 50, 80, 100).
    pub thresholds: Vec<u32>,
    /// Alert on today's anomalies with this rule; `None` disables anomaly alerts.
    pub anomalies: Option<AnomalyConfig>,
    /// When a failed delivery is tried again: the wait before retry `n` is
    /// [`RetryPolicy::delay`]`(n, None)`, and a row is given up after `max_retries` retries.
    /// Default: 9 retries (10 attempts), 30 s doubled per retry up to 1 h, no jitter.
    pub retry: RetryPolicy,
    /// How long a sender holds a claimed row (default 2 min).
    pub claim_lease: Duration,
    /// Per-request timeout of a webhook POST (default 10 s).
    pub request_timeout: Duration,
    /// Rows delivered per run at most (default 100).
    pub batch: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            webhooks: Vec::new(),
            thresholds: vec![50, 80, 100],
            anomalies: Some(AnomalyConfig::default()),
            retry: RetryPolicy {
                max_retries: 9,
                base_delay: Duration::from_secs(30),
                max_delay: Duration::from_secs(3600),
                jitter: Jitter::None,
                max_retry_after: Duration::from_secs(3600),
            },
            claim_lease: Duration::from_secs(120),
            request_timeout: Duration::from_secs(10),
            batch: 100,
        }
    }
}

impl AlertsConfig {
    /// From the team file's `[alerts]` section, with the default retry settings.
    pub fn from_spec(spec: &AlertsSpec) -> Self {
        AlertsConfig {
            webhooks: spec.webhooks.clone(),
            thresholds: spec.thresholds.clone(),
            ..AlertsConfig::default()
        }
    }

    /// The wait after failed attempt number `attempts` (1-based), i.e. before retry
    /// `attempts − 1` (0-based).
    fn backoff(&self, attempts: u32) -> Duration {
        self.retry.delay(attempts.saturating_sub(1), None)
    }

    /// Whether a row that has failed `attempts` times is given up.
    fn gives_up(&self, attempts: u32) -> bool {
        attempts > self.retry.max_retries
    }
}

/// The budget part of a budget alert's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetAlert {
    pub scope: String,
    pub scope_id: String,
    pub window: String,
    pub window_start: chrono::NaiveDate,
    pub reset_at: DateTime<Utc>,
    pub threshold_percent: u32,
    pub spent: Money,
    pub limit: Money,
    pub remaining: Money,
}

/// The JSON body POSTed to a webhook. `text` makes it readable as a Slack or Mattermost
/// incoming-webhook message as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertPayload {
    /// The alert id (also in the `X-Orteam-Alert-Id` header): the same for every delivery
    /// attempt, so a receiver can drop a duplicate.
    pub id: String,
    /// `budget`, `anomaly`, `policy_violation` or `reconcile_difference`.
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetAlert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<Anomaly>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_violation: Option<PolicyViolation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<crate::reconcile::RecordedRun>,
}

/// A request upstream served with a model outside the member's tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyViolation {
    pub request_id: String,
    pub member_id: String,
    pub team_id: String,
    pub requested_model: String,
    pub served_model: String,
    pub cost: Money,
    pub time: DateTime<Utc>,
}

/// How far back a run looks for policy violations (the outbox keeps each alert once).
const VIOLATION_LOOKBACK: TimeDelta = TimeDelta::days(1);

fn violation_alert(e: &orteam_ledger::UsageEvent, now: DateTime<Utc>) -> AlertPayload {
    let v = PolicyViolation {
        request_id: e.usage.request_id.clone(),
        member_id: e.member_id.clone(),
        team_id: e.team_id.clone(),
        requested_model: e.usage.requested_model.clone(),
        served_model: e.model().to_owned(),
        cost: e.usage.cost,
        time: e.time,
    };
    AlertPayload {
        id: format!("policy-violation:{}", v.request_id),
        kind: "policy_violation".into(),
        created_at: now,
        text: format!(
            "orteam: policy violation: {}'s request for {} was served by {}, outside their tier (charged {})",
            v.member_id,
            v.requested_model,
            v.served_model,
            v.cost.to_usd(6)
        ),
        budget: None,
        anomaly: None,
        policy_violation: Some(v),
        reconcile: None,
    }
}

/// How old a reconciliation run may be and still be alerted on.
const RECONCILE_LOOKBACK: TimeDelta = TimeDelta::days(1);

/// `reconcile_difference`: the newest reconciliation run changed money or left differences.
/// The id is derived from what it reports (the changes and the outstanding differences), so the
/// gateway's loop finding the same differences again every tick alerts once, and a new change
/// or difference alerts again.
fn reconcile_alert(run: &crate::reconcile::RecordedRun, now: DateTime<Utc>) -> AlertPayload {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for c in &run.changes {
        h.update(c.request_id.as_bytes());
        h.update(b"|");
        h.update(c.after.to_canonical_string().as_bytes());
        h.update(b"\n");
    }
    for o in &run.outstanding {
        h.update(o.as_bytes());
        h.update(b"\n");
    }
    let id = format!("reconcile:{}", &hex::encode(h.finalize())[..20]);
    let mut text = format!(
        "orteam: reconciliation with OpenRouter {}",
        run.summary.changes_line()
    );
    if run.summary.outstanding > 0 {
        text.push_str(&format!(
            "; {} difference(s) not repaired",
            run.summary.outstanding
        ));
    }
    AlertPayload {
        id,
        kind: "reconcile_difference".into(),
        created_at: now,
        text,
        budget: None,
        anomaly: None,
        policy_violation: None,
        reconcile: Some(run.clone()),
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertsRun {
    /// New outbox rows.
    pub enqueued: usize,
    pub delivered: usize,
    /// Attempts that failed and will be retried.
    pub failed: usize,
    /// Rows given up in this run.
    pub dead: usize,
    /// Today's flagged anomalies (empty without an anomaly rule), e.g. for the
    /// `orteam_anomalies` gauge.
    pub anomalies: Vec<Anomaly>,
}

fn reached(spent: Money, limit: Money, percent: u32) -> bool {
    match (
        spent.checked_mul_u64(100),
        limit.checked_mul_u64(u64::from(percent)),
    ) {
        (Some(a), Some(b)) => a >= b,
        _ => false,
    }
}

fn budget_alerts(
    status: &[BudgetStatus],
    thresholds: &[u32],
    now: DateTime<Utc>,
) -> Vec<AlertPayload> {
    let mut out = Vec::new();
    for b in status {
        if b.limit.is_zero() || b.limit.is_negative() {
            continue;
        }
        for &t in thresholds {
            if !reached(b.spent, b.limit, t) {
                continue;
            }
            let id = format!(
                "budget:{}:{}:{}:{}:{}",
                b.scope,
                b.scope_id,
                b.window.as_str(),
                b.window_start,
                t
            );
            let text = format!(
                "orteam: the {} budget of {} {} has reached {}% ({} of {}; resets {})",
                b.window.as_str(),
                b.scope,
                b.scope_id,
                t,
                b.spent.usd(),
                b.limit.usd(),
                b.reset_at.format("%Y-%m-%d %H:%M UTC")
            );
            out.push(AlertPayload {
                id,
                kind: "budget".into(),
                created_at: now,
                text,
                budget: Some(BudgetAlert {
                    scope: b.scope.as_str().to_owned(),
                    scope_id: b.scope_id.clone(),
                    window: b.window.as_str().to_owned(),
                    window_start: b.window_start,
                    reset_at: b.reset_at,
                    threshold_percent: t,
                    spent: b.spent,
                    limit: b.limit,
                    remaining: b.remaining,
                }),
                anomaly: None,
                policy_violation: None,
                reconcile: None,
            });
        }
    }
    out
}

fn anomaly_alert(a: &Anomaly, now: DateTime<Utc>) -> AlertPayload {
    AlertPayload {
        id: format!("anomaly:{}:{}:{}", a.kind.as_str(), a.subject, a.day),
        kind: "anomaly".into(),
        created_at: now,
        text: format!("orteam: unusual spend: {}", a.describe()),
        budget: None,
        anomaly: Some(a.clone()),
        policy_violation: None,
        reconcile: None,
    }
}

/// Step 1: records every alert that is due now (idempotent). Returns the new rows.
pub async fn enqueue_alerts(ledger: &Ledger, cfg: &AlertsConfig) -> Result<usize, InsightError> {
    Ok(enqueue(ledger, cfg).await?.0)
}

/// Enqueues; also returns today's flagged anomalies (for the metrics gauge).
async fn enqueue(
    ledger: &Ledger,
    cfg: &AlertsConfig,
) -> Result<(usize, Vec<Anomaly>), InsightError> {
    // Budgets changed by another process (a lowered limit, a raise) count at once.
    ledger
        .refresh_if_changed()
        .await
        .map_err(InsightError::ledger("reading the directory"))?;
    let now = ledger.now();
    let flagged: Vec<Anomaly> = match &cfg.anomalies {
        Some(rule) => anomaly::detect(ledger, now.date_naive(), rule)
            .await?
            .into_iter()
            .filter(|a| a.flagged)
            .collect(),
        None => Vec::new(),
    };
    if cfg.webhooks.is_empty() {
        return Ok((0, flagged));
    }
    let status = ledger
        .all_budget_status()
        .await
        .map_err(InsightError::ledger("reading budgets"))?;
    let mut payloads = budget_alerts(&status, &cfg.thresholds, now);
    payloads.extend(flagged.iter().map(|a| anomaly_alert(a, now)));
    let violations = ledger
        .events(orteam_ledger::EventFilter {
            from: Some(now - VIOLATION_LOOKBACK),
            outside_tier_only: true,
            limit: Some(cfg.batch),
            ..Default::default()
        })
        .await
        .map_err(InsightError::ledger("reading policy violations"))?;
    payloads.extend(violations.iter().map(|e| violation_alert(e, now)));
    if let Some(run) = crate::reconcile::last_run(ledger).await?
        && run.needs_attention()
        && run.finished_at >= now - RECONCILE_LOOKBACK
    {
        payloads.push(reconcile_alert(&run, now));
    }
    let mut rows = Vec::with_capacity(payloads.len() * cfg.webhooks.len());
    for p in &payloads {
        let body = serde_json::to_string(p)?;
        for url in &cfg.webhooks {
            rows.push(NewAlert {
                alert_id: p.id.clone(),
                url: url.clone(),
                kind: p.kind.clone(),
                payload: body.clone(),
            });
        }
    }
    let n = ledger
        .outbox_enqueue(rows)
        .await
        .map_err(InsightError::ledger("recording alerts"))?;
    Ok((n, flagged))
}

async fn post(http: &reqwest::Client, e: &OutboxEntry, timeout: Duration) -> Result<(), String> {
    let resp = http
        .post(&e.url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header("x-orteam-alert-id", &e.alert_id)
        .body(e.payload.clone())
        .send()
        .await
        .map_err(|err| format!("request failed: {err}"))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// Step 2: delivers due rows. Returns (delivered, failed, dead).
pub async fn deliver_due(
    ledger: &Ledger,
    http: &reqwest::Client,
    cfg: &AlertsConfig,
) -> Result<(usize, usize, usize), InsightError> {
    let due = ledger
        .outbox_claim_due(cfg.batch, cfg.claim_lease)
        .await
        .map_err(InsightError::ledger("claiming alerts"))?;
    let (mut delivered, mut failed, mut dead) = (0, 0, 0);
    for e in due {
        match post(http, &e, cfg.request_timeout).await {
            Ok(()) => {
                ledger
                    .outbox_delivered(&e.alert_id, &e.url)
                    .await
                    .map_err(InsightError::ledger("marking an alert delivered"))?;
                tracing::info!(alert = %e.alert_id, "alert delivered");
                delivered += 1;
            }
            Err(err) => {
                let attempts = e.attempts + 1;
                let give_up = cfg.gives_up(attempts);
                let next = ledger.now()
                    + TimeDelta::from_std(cfg.backoff(attempts)).unwrap_or(TimeDelta::MAX);
                ledger
                    .outbox_failed(&e.alert_id, &e.url, &err, next, give_up)
                    .await
                    .map_err(InsightError::ledger("recording a failed alert"))?;
                if give_up {
                    tracing::error!(alert = %e.alert_id, error = %err, attempts, "alert given up");
                    dead += 1;
                } else {
                    tracing::warn!(alert = %e.alert_id, error = %err, attempts, retry_at = %next, "alert delivery failed");
                    failed += 1;
                }
            }
        }
    }
    Ok((delivered, failed, dead))
}

/// Enqueues what is due and delivers what can be delivered, once.
pub async fn run_alerts_once(
    ledger: &Ledger,
    http: &reqwest::Client,
    cfg: &AlertsConfig,
) -> Result<AlertsRun, InsightError> {
    let (enqueued, anomalies) = enqueue(ledger, cfg).await?;
    let (delivered, failed, dead) = if cfg.webhooks.is_empty() {
        (0, 0, 0)
    } else {
        deliver_due(ledger, http, cfg).await?
    };
    Ok(AlertsRun {
        enqueued,
        delivered,
        failed,
        dead,
        anomalies,
    })
}

/// Runs [`run_alerts_once`] every `interval` until `shutdown` is cancelled (for `orteam serve`,
/// on its task tracker), handing today's flagged anomalies to `on_anomalies` after each round
/// (e.g. `|a| metrics.set_anomalies(a.iter().map(|x| (x.kind.as_str(), x.subject.as_str())))`).
/// Errors are logged and retried at the next tick.
pub async fn run_alerts_loop(
    ledger: Ledger,
    http: reqwest::Client,
    cfg: AlertsConfig,
    interval: Duration,
    shutdown: CancellationToken,
    on_anomalies: impl Fn(&[Anomaly]) + Send + Sync,
) {
    loop {
        match run_alerts_once(&ledger, &http, &cfg).await {
            Ok(r) => {
                on_anomalies(&r.anomalies);
                if r.enqueued + r.delivered + r.failed + r.dead > 0 {
                    tracing::debug!(
                        enqueued = r.enqueued,
                        delivered = r.delivered,
                        failed = r.failed,
                        dead = r.dead,
                        "alerts round"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "alerts round failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_exact() {
        let l = Money::parse("5").unwrap();
        assert!(!reached(Money::parse("3.9999999").unwrap(), l, 80));
        assert!(reached(Money::parse("4").unwrap(), l, 80));
        assert!(reached(Money::parse("5").unwrap(), l, 100));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let c = AlertsConfig::default();
        assert_eq!(c.backoff(1), Duration::from_secs(30));
        assert_eq!(c.backoff(2), Duration::from_secs(60));
        assert_eq!(c.backoff(20), Duration::from_secs(3600));
        assert!(!c.gives_up(9));
        assert!(c.gives_up(10));
    }
}
