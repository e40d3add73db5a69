//! The alert outbox and the correction queue on SQLite.

use chrono::{DateTime, Utc};
use orteam_core::Money;
use rusqlite::{TransactionBehavior, params};

use super::{SqliteStore, all, db, ts};
use crate::error::LedgerError;
use crate::model::{NewAlert, OutboxEntry, PendingCorrection, RECONCILE_RUNS_KEPT, ReconcileRun};
use crate::rows::{self, CORRECTION_COLUMNS, OUTBOX_COLUMNS, RECONCILE_RUN_COLUMNS};
use crate::store::{CorrectionStore, OutboxStore};

impl OutboxStore for SqliteStore {
    async fn outbox_enqueue(
        &self,
        alerts: Vec<NewAlert>,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        self.run(move |c| {
            let err = db("recording alerts");
            let tx = c.transaction().map_err(&err)?;
            let mut n = 0;
            {
                let mut st = tx
                    .prepare(
                        "INSERT INTO alert_outbox (alert_id, url, kind, payload, created_at, next_attempt_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (alert_id, url) DO NOTHING",
                    )
                    .map_err(&err)?;
                for a in &alerts {
                    n += st
                        .execute(params![a.alert_id, a.url, a.kind, a.payload, ts(now)])
                        .map_err(&err)?;
                }
            }
            tx.commit().map_err(&err)?;
            Ok(n)
        })
        .await
    }

    async fn outbox_claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, LedgerError> {
        self.run(move |c| {
            let op = "claiming alerts";
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db(op))?;
            let rows = {
                let mut st = tx
                    .prepare(&format!(
                        "UPDATE alert_outbox SET claimed_until = ?1 WHERE rowid IN ( \
                         SELECT rowid FROM alert_outbox WHERE delivered_at IS NULL AND dead = 0 \
                         AND next_attempt_at <= ?2 AND (claimed_until IS NULL OR claimed_until <= ?2) \
                         ORDER BY created_at, alert_id, url LIMIT ?3) RETURNING {OUTBOX_COLUMNS}"
                    ))
                    .map_err(db(op))?;
                all(
                    &mut st,
                    params![ts(until), ts(now), limit],
                    |r| rows::outbox_entry(r),
                    op,
                )?
            };
            tx.commit().map_err(db(op))?;
            Ok(rows)
        })
        .await
    }

    async fn outbox_delivered(
        &self,
        alert_id: String,
        url: String,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.run(move |c| {
            c.execute(
                "UPDATE alert_outbox SET delivered_at = ?1, claimed_until = NULL, last_error = NULL \
                 WHERE alert_id = ?2 AND url = ?3",
                params![ts(now), alert_id, url],
            )
            .map_err(db("marking an alert delivered"))?;
            Ok(())
        })
        .await
    }

    async fn outbox_failed(
        &self,
        alert_id: String,
        url: String,
        error: String,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> Result<(), LedgerError> {
        self.run(move |c| {
            c.execute(
                "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = ?1, dead = ?2, \
                 last_error = ?3, claimed_until = NULL WHERE alert_id = ?4 AND url = ?5",
                params![ts(next_attempt_at), i64::from(dead), error, alert_id, url],
            )
            .map_err(db("recording a failed alert delivery"))?;
            Ok(())
        })
        .await
    }

    async fn outbox_entries(&self, pending_only: bool) -> Result<Vec<OutboxEntry>, LedgerError> {
        self.run(move |c| {
            let op = "reading the alert outbox";
            let filter = if pending_only {
                "WHERE delivered_at IS NULL AND dead = 0"
            } else {
                ""
            };
            let mut st = c
                .prepare(&format!(
                    "SELECT {OUTBOX_COLUMNS} FROM alert_outbox {filter} ORDER BY created_at, alert_id, url"
                ))
                .map_err(db(op))?;
            all(&mut st, [], |r| rows::outbox_entry(r), op)
        })
        .await
    }
}

impl CorrectionStore for SqliteStore {
    async fn queue_correction(
        &self,
        request_id: String,
        exact: Money,
        generation_id: Option<String>,
        now: DateTime<Utc>,
        evidence: Option<String>,
        new_event: Option<String>,
    ) -> Result<bool, LedgerError> {
        self.run(move |c| {
            let n = c
                .execute(
                    "INSERT INTO cost_corrections (request_id, exact_cost, generation_id, requested_at, evidence, new_event) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (request_id) DO UPDATE SET \
                     exact_cost = excluded.exact_cost, generation_id = excluded.generation_id, \
                     requested_at = excluded.requested_at, evidence = excluded.evidence, \
                     new_event = excluded.new_event, error = NULL \
                     WHERE cost_corrections.applied_at IS NULL",
                    params![
                        request_id,
                        exact.to_canonical_string(),
                        generation_id,
                        ts(now),
                        evidence,
                        new_event
                    ],
                )
                .map_err(db("queueing a cost correction"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn pending_corrections(&self) -> Result<Vec<PendingCorrection>, LedgerError> {
        self.run(|c| {
            let op = "reading queued cost corrections";
            let mut st = c
                .prepare(&format!(
                    "SELECT {CORRECTION_COLUMNS} FROM cost_corrections \
                     WHERE applied_at IS NULL ORDER BY requested_at, request_id"
                ))
                .map_err(db(op))?;
            all(&mut st, [], |r| rows::pending_correction(r), op)
        })
        .await
    }

    async fn record_reconcile_run(
        &self,
        finished_at: DateTime<Utc>,
        source: String,
        result: String,
    ) -> Result<(), LedgerError> {
        self.run(move |c| {
            let op = "recording a reconciliation run";
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db(op))?;
            tx.execute(
                "INSERT INTO reconcile_runs (finished_at, source, result) VALUES (?1, ?2, ?3)",
                params![ts(finished_at), source, result],
            )
            .map_err(db(op))?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "DELETE FROM reconcile_runs WHERE id <= ?1",
                params![id - RECONCILE_RUNS_KEPT],
            )
            .map_err(db(op))?;
            tx.commit().map_err(db(op))?;
            Ok(())
        })
        .await
    }

    async fn last_reconcile_run(&self) -> Result<Option<ReconcileRun>, LedgerError> {
        self.run(|c| {
            let op = "reading the last reconciliation run";
            let mut st = c
                .prepare(&format!(
                    "SELECT {RECONCILE_RUN_COLUMNS} FROM reconcile_runs ORDER BY id DESC LIMIT 1"
                ))
                .map_err(db(op))?;
            Ok(all(&mut st, [], |r| rows::reconcile_run(r), op)?
                .into_iter()
                .next())
        })
        .await
    }

    async fn mark_correction(
        &self,
        request_id: String,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.run(move |c| {
            c.execute(
                "UPDATE cost_corrections SET applied_at = ?1, error = ?2 WHERE request_id = ?3",
                params![ts(now), error, request_id],
            )
            .map_err(db("marking a cost correction applied"))?;
            Ok(())
        })
        .await
    }
}
