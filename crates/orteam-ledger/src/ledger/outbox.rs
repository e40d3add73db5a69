//! Two small durable queues used by spend insight (`orteam-insight`):
//!
//! - **The alert outbox** (`alert_outbox`): one row per (alert id, webhook URL). The alert id
//!   names what is reported (e.g. `budget:member:alice:daily:2026-05-04:80`), so
//!   [`Ledger::outbox_enqueue`] is idempotent: an alert is recorded once however many processes
//!   notice it, however often. Senders [`Ledger::outbox_claim_due`] rows (a time-limited claim,
//!   so two senders never post the same row at once and a crashed sender's claim lapses), then
//!   mark each [`Ledger::outbox_delivered`] or [`Ledger::outbox_failed`] (with the next attempt's
//!   time, or dead).
//! - **The correction queue** (`cost_corrections`): exact costs found by reconciliation.
//!   Any process may [`Ledger::request_cost_correction`]; only a serving process applies them
//!   ([`Ledger::apply_pending_corrections`] → [`Ledger::correct_cost`]), because on SQLite the
//!   serving process owns the budget counters in memory. So `orteam reconcile` works while a
//!   gateway is running: it queues, and the gateway applies within one background tick.

use std::time::Duration;

use chrono::{DateTime, Utc};
use orteam_core::Money;

use super::{Ledger, td};
use crate::error::LedgerError;
use crate::model::{
    AppliedCorrection, NewAlert, NewCorrection, OutboxEntry, Outcome, PendingCorrection,
    ReconcileRun,
};
use crate::store::{CorrectionStore, OutboxStore};

impl Ledger {
    /// Records alerts; an (alert id, URL) pair already recorded is left alone. Returns how many
    /// rows were new.
    pub async fn outbox_enqueue(&self, alerts: Vec<NewAlert>) -> Result<usize, LedgerError> {
        if alerts.is_empty() {
            return Ok(0);
        }
        self.store().outbox_enqueue(alerts, self.now()).await
    }

    /// Claims up to `limit` undelivered rows whose next attempt is due and that no other sender
    /// holds, for `lease` (after which another sender may take them).
    pub async fn outbox_claim_due(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, LedgerError> {
        let now = self.now();
        let until = now + td(lease);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.store().outbox_claim_due(now, until, limit).await
    }

    /// Marks a row delivered (it is never sent again).
    pub async fn outbox_delivered(&self, alert_id: &str, url: &str) -> Result<(), LedgerError> {
        self.store()
            .outbox_delivered(alert_id.to_owned(), url.to_owned(), self.now())
            .await
    }

    /// Records a failed attempt: the row is retried at `next_attempt_at`, or never if `dead`.
    pub async fn outbox_failed(
        &self,
        alert_id: &str,
        url: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> Result<(), LedgerError> {
        self.store()
            .outbox_failed(
                alert_id.to_owned(),
                url.to_owned(),
                error.to_owned(),
                next_attempt_at,
                dead,
            )
            .await
    }

    /// Every outbox row (oldest first), or only those not delivered and not dead.
    pub async fn outbox_entries(
        &self,
        pending_only: bool,
    ) -> Result<Vec<OutboxEntry>, LedgerError> {
        self.store().outbox_entries(pending_only).await
    }

    // ------------------------------------------------------------ cost corrections

    /// Queues the exact cost of an event for a serving process to apply. A correction already
    /// applied for this request is not queued again; a pending one is replaced. Returns whether
    /// the queue changed.
    pub async fn request_cost_correction(
        &self,
        request_id: &str,
        exact: Money,
        generation_id: Option<&str>,
    ) -> Result<bool, LedgerError> {
        if exact.is_negative() {
            return Err(LedgerError::Invalid("a cost cannot be negative".into()));
        }
        self.store()
            .queue_correction(
                request_id.to_owned(),
                exact,
                generation_id.map(str::to_owned),
                self.now(),
                None,
                None,
            )
            .await
    }

    /// Queues a reconciliation correction: an exact cost with its evidence, and optionally an
    /// event to record first (a charge upstream billed that the ledger never saw). Same queue
    /// rules as [`Ledger::request_cost_correction`].
    pub async fn request_correction(&self, c: NewCorrection) -> Result<bool, LedgerError> {
        if c.exact.is_negative() {
            return Err(LedgerError::Invalid("a cost cannot be negative".into()));
        }
        let new_event = c
            .new_event
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| LedgerError::Invalid(format!("encoding a reconciliation event: {e}")))?;
        self.store()
            .queue_correction(
                c.request_id,
                c.exact,
                c.generation_id,
                self.now(),
                c.evidence,
                new_event,
            )
            .await
    }

    /// Corrections queued and not applied yet, oldest first.
    pub async fn pending_cost_corrections(&self) -> Result<Vec<PendingCorrection>, LedgerError> {
        self.store().pending_corrections().await
    }

    /// Records a reconciliation run's result (JSON written by `orteam-insight`).
    pub async fn record_reconcile_run(
        &self,
        source: &str,
        result: String,
    ) -> Result<(), LedgerError> {
        self.store()
            .record_reconcile_run(self.now(), source.to_owned(), result)
            .await
    }

    /// The newest recorded reconciliation run.
    pub async fn last_reconcile_run(&self) -> Result<Option<ReconcileRun>, LedgerError> {
        self.store().last_reconcile_run().await
    }

    async fn mark_correction(
        &self,
        request_id: &str,
        error: Option<String>,
    ) -> Result<(), LedgerError> {
        self.store()
            .mark_correction(request_id.to_owned(), error, self.now())
            .await
    }

    /// Applies every queued correction with [`Ledger::correct_cost`] (serving role only) and
    /// marks it applied; one that carries a new event records it first. A correction whose event no longer exists is marked applied with an
    /// error and skipped. The event update and the queue mark are two steps: a crash between
    /// them re-applies the same exact cost next time, which changes nothing (the difference is
    /// then zero).
    pub async fn apply_pending_corrections(&self) -> Result<Vec<AppliedCorrection>, LedgerError> {
        let pending = self.pending_cost_corrections().await?;
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            if let Some(ev) = p.new_event {
                // Recorded at 0 first; a crash before the correction leaves it at 0 with the
                // correction still queued, and the next run applies it (idempotent).
                self.record_reconciliation_event(ev).await?;
            }
            match self
                .correct_cost_with(&p.request_id, p.exact, Outcome::Ok, p.evidence)
                .await
            {
                Ok(correction) => {
                    self.mark_correction(&p.request_id, None).await?;
                    out.push(AppliedCorrection {
                        request_id: p.request_id,
                        correction,
                    });
                }
                Err(LedgerError::NotFound { .. }) => {
                    self.mark_correction(&p.request_id, Some("no such usage event".into()))
                        .await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
