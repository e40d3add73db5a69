//! The alert outbox and the correction queue on PostgreSQL.

use chrono::{DateTime, Utc};
use orteam_core::Money;

use super::{PgStore, all, db, dec};
use crate::error::LedgerError;
use crate::model::{NewAlert, OutboxEntry, PendingCorrection, RECONCILE_RUNS_KEPT, ReconcileRun};
use crate::rows::{self, CORRECTION_COLUMNS, OUTBOX_COLUMNS, RECONCILE_RUN_COLUMNS};
use crate::store::{CorrectionStore, OutboxStore};

impl OutboxStore for PgStore {
    async fn outbox_enqueue(
        &self,
        alerts: Vec<NewAlert>,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        let err = db("recording alerts");
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(&err)?;
        let st = tx
            .prepare(
                "INSERT INTO alert_outbox (alert_id, url, kind, payload, created_at, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (alert_id, url) DO NOTHING",
            )
            .await
            .map_err(&err)?;
        let mut n = 0;
        for a in &alerts {
            n += tx
                .execute(&st, &[&a.alert_id, &a.url, &a.kind, &a.payload, &now])
                .await
                .map_err(&err)?;
        }
        tx.commit().await.map_err(&err)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn outbox_claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, LedgerError> {
        let op = "claiming alerts";
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "UPDATE alert_outbox SET claimed_until = $1 WHERE (alert_id, url) IN ( \
                     SELECT alert_id, url FROM alert_outbox WHERE delivered_at IS NULL AND NOT dead \
                     AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until <= $2) \
                     ORDER BY created_at, alert_id, url LIMIT $3 FOR UPDATE SKIP LOCKED) \
                     RETURNING {OUTBOX_COLUMNS}"
                ),
                &[&until, &now, &limit],
            )
            .await
            .map_err(db(op))?;
        all(&rows, rows::outbox_entry)
    }

    async fn outbox_delivered(
        &self,
        alert_id: String,
        url: String,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.client()
            .await?
            .execute(
                "UPDATE alert_outbox SET delivered_at = $1, claimed_until = NULL, last_error = NULL \
                 WHERE alert_id = $2 AND url = $3",
                &[&now, &alert_id, &url],
            )
            .await
            .map_err(db("marking an alert delivered"))?;
        Ok(())
    }

    async fn outbox_failed(
        &self,
        alert_id: String,
        url: String,
        error: String,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> Result<(), LedgerError> {
        self.client()
            .await?
            .execute(
                "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = $1, dead = $2, \
                 last_error = $3, claimed_until = NULL WHERE alert_id = $4 AND url = $5",
                &[&next_attempt_at, &dead, &error, &alert_id, &url],
            )
            .await
            .map_err(db("recording a failed alert delivery"))?;
        Ok(())
    }

    async fn outbox_entries(&self, pending_only: bool) -> Result<Vec<OutboxEntry>, LedgerError> {
        let filter = if pending_only {
            "WHERE delivered_at IS NULL AND NOT dead"
        } else {
            ""
        };
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {OUTBOX_COLUMNS} FROM alert_outbox {filter} ORDER BY created_at, alert_id, url"
                ),
                &[],
            )
            .await
            .map_err(db("reading the alert outbox"))?;
        all(&rows, rows::outbox_entry)
    }
}

impl CorrectionStore for PgStore {
    async fn queue_correction(
        &self,
        request_id: String,
        exact: Money,
        generation_id: Option<String>,
        now: DateTime<Utc>,
        evidence: Option<String>,
        new_event: Option<String>,
    ) -> Result<bool, LedgerError> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO cost_corrections (request_id, exact_cost, generation_id, requested_at, evidence, new_event) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (request_id) DO UPDATE SET \
                 exact_cost = excluded.exact_cost, generation_id = excluded.generation_id, \
                 requested_at = excluded.requested_at, evidence = excluded.evidence, \
                 new_event = excluded.new_event, error = NULL \
                 WHERE cost_corrections.applied_at IS NULL",
                &[&request_id, &dec(exact), &generation_id, &now, &evidence, &new_event],
            )
            .await
            .map_err(db("queueing a cost correction"))?;
        Ok(n > 0)
    }

    async fn pending_corrections(&self) -> Result<Vec<PendingCorrection>, LedgerError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {CORRECTION_COLUMNS} FROM cost_corrections \
                     WHERE applied_at IS NULL ORDER BY requested_at, request_id"
                ),
                &[],
            )
            .await
            .map_err(db("reading queued cost corrections"))?;
        all(&rows, rows::pending_correction)
    }

    async fn record_reconcile_run(
        &self,
        finished_at: DateTime<Utc>,
        source: String,
        result: String,
    ) -> Result<(), LedgerError> {
        let op = "recording a reconciliation run";
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO reconcile_runs (finished_at, source, result) VALUES ($1, $2, $3) RETURNING id",
                &[&finished_at, &source, &result],
            )
            .await
            .map_err(db(op))?;
        let id: i64 = row.get(0);
        client
            .execute(
                "DELETE FROM reconcile_runs WHERE id <= $1",
                &[&(id - RECONCILE_RUNS_KEPT)],
            )
            .await
            .map_err(db(op))?;
        Ok(())
    }

    async fn last_reconcile_run(&self) -> Result<Option<ReconcileRun>, LedgerError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {RECONCILE_RUN_COLUMNS} FROM reconcile_runs ORDER BY id DESC LIMIT 1"
                ),
                &[],
            )
            .await
            .map_err(db("reading the last reconciliation run"))?;
        Ok(all(&rows, rows::reconcile_run)?.into_iter().next())
    }

    async fn mark_correction(
        &self,
        request_id: String,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.client()
            .await?
            .execute(
                "UPDATE cost_corrections SET applied_at = $1, error = $2 WHERE request_id = $3",
                &[&now, &error, &request_id],
            )
            .await
            .map_err(db("marking a cost correction applied"))?;
        Ok(())
    }
}
