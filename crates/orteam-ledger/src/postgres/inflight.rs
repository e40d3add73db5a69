//! Requests in flight on PostgreSQL (`inflight_requests`, `ledger_instances`): which instance
//! is alive, which recorded holds were left by a dead one, and the reclaim of an instance's
//! own leases when it restarts under the same id.

use chrono::{DateTime, Utc};

use super::lease::{Retry, retry};
use super::{PgStore, db};
use crate::error::LedgerError;
use crate::events::WINDOW_LOCK_ORDER;
use crate::model::UsageEvent;

impl PgStore {
    /// Vouches for `instance` until `expires_at` (after its leases are renewed).
    pub(crate) async fn register_instance(
        &self,
        instance: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO ledger_instances (instance_id, expires_at) VALUES ($1, $2) \
             ON CONFLICT (instance_id) DO UPDATE SET expires_at = EXCLUDED.expires_at",
            &[&instance, &expires_at],
        )
        .await
        .map_err(db("registering the instance"))?;
        Ok(())
    }

    /// A clean stop: nothing of this instance is in flight any more.
    pub(crate) async fn unregister_instance(&self, instance: &str) -> Result<(), LedgerError> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM ledger_instances WHERE instance_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM inflight_requests WHERE instance_id = $1)",
            &[&instance],
        )
        .await
        .map_err(db("unregistering the instance"))?;
        Ok(())
    }

    /// Holds recorded by instances whose heartbeat lapsed before `now` (and, with `own`, by a
    /// previous process that ran under this instance's id): each as its provisional event
    /// (worst case, generation id when known).
    pub(crate) async fn orphaned_in_flight(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        own: bool,
    ) -> Result<Vec<UsageEvent>, LedgerError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT i.record, i.generation_id FROM inflight_requests i \
                 WHERE (i.instance_id = $1 AND $3) OR (i.instance_id <> $1 AND NOT EXISTS \
                 (SELECT 1 FROM ledger_instances l WHERE l.instance_id = i.instance_id AND l.expires_at >= $2)) \
                 ORDER BY i.created_at",
                &[&instance, &now, &own],
            )
            .await
            .map_err(db("reading requests in flight"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let record: &str = r.get(0);
            let generation: Option<String> = r.get(1);
            let mut event: UsageEvent = serde_json::from_str(record)
                .map_err(|e| LedgerError::storage("decoding a request in flight", e))?;
            if generation.is_some() {
                event.usage.generation_id = generation;
            }
            out.push(event);
        }
        Ok(out)
    }

    /// Deletes resolved holds.
    pub(crate) async fn delete_in_flight(&self, request_ids: &[String]) -> Result<(), LedgerError> {
        if request_ids.is_empty() {
            return Ok(());
        }
        let c = self.client().await?;
        c.execute(
            "DELETE FROM inflight_requests WHERE request_id = ANY($1)",
            &[&request_ids],
        )
        .await
        .map_err(db("deleting resolved requests in flight"))?;
        Ok(())
    }

    /// Returns every lease row of `instance` to its window: a previous process under this id
    /// died and the new one starts with an empty engine (its in-flight holds are charged
    /// first, see `Ledger::resolve_in_flight`).
    pub(crate) async fn reclaim_own_leases(&self, instance: &str) -> Result<u64, LedgerError> {
        retry("reclaiming this instance's previous leases", || async {
            let mut c = self.client().await.map_err(Retry::Other)?;
            let tx = c.transaction().await?;
            let ids: Vec<i64> = tx
                .query(
                    "SELECT DISTINCT window_id FROM budget_leases WHERE instance_id = $1",
                    &[&instance],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if ids.is_empty() {
                tx.commit().await?;
                return Ok(0);
            }
            tx.execute(
                &format!("SELECT id FROM budget_windows WHERE id = ANY($1) ORDER BY {WINDOW_LOCK_ORDER} FOR UPDATE"),
                &[&ids],
            )
            .await?;
            let rows = tx
                .query(
                    "WITH dead AS (DELETE FROM budget_leases WHERE instance_id = $1 RETURNING window_id, amount), \
                     s AS (SELECT window_id, SUM(amount) AS amt, COUNT(*) AS n FROM dead GROUP BY window_id), \
                     u AS (UPDATE budget_windows w SET leased = GREATEST(w.leased - s.amt, 0) FROM s WHERE w.id = s.window_id RETURNING w.id) \
                     SELECT COALESCE(SUM(n), 0)::BIGINT FROM s",
                    &[&instance],
                )
                .await?;
            tx.commit().await?;
            Ok(rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64)
        })
        .await
    }
}
