//! Budget leases on PostgreSQL.
//!
//! The invariant `spent + leased <= limit` is kept by one statement: the conditional UPDATE in
//! [`PgStore::acquire_lease`]. PostgreSQL re-evaluates its WHERE clause on the latest row version
//! when two instances race for the same row (READ COMMITTED re-check), so two grants can never
//! both pass on a stale view. Everything else only *lowers* `leased` (consumption at settle,
//! return when idle, reclaim of dead instances).
//!
//! Slice size adapts: the grant is `max(need, min(want, free / 4))`. Far from the limit an
//! instance takes a large slice and serves many requests from memory; near the limit the quarter
//! becomes smaller than the request and the grant is exactly what the request still needs, so a
//! single process never denies while the budget still has room for the request.

use chrono::{DateTime, Utc};
use orteam_core::Money;

use super::{PgStore, db, dec, money};
use crate::budget::engine::CellKey;
use crate::error::LedgerError;
use crate::events::WINDOW_LOCK_ORDER;

#[derive(Debug, Clone)]
pub enum LeaseResult {
    Granted {
        granted: Money,
        /// `limit - spent - leased` after the grant.
        free: Money,
        spent: Money,
    },
    Denied {
        limit: Money,
        spent: Money,
        leased: Money,
    },
    /// The budget was removed meanwhile.
    NoBudget,
}

const LIMIT_SQL: &str = "(SELECT b.limit_amount + COALESCE((SELECT SUM(r.amount) FROM budget_raises r \
     WHERE r.scope = b.scope AND r.scope_id = b.scope_id AND r.win = b.win AND r.until > $5), 0) \
     FROM budgets b WHERE b.scope = $2 AND b.scope_id = $3 AND b.win = $4)";

/// Lowers this instance's lease on several windows (consumption or return). Returns the window
/// ids whose lease row still existed; a missing one was reclaimed while we looked dead.
pub(crate) const LEASE_DEBIT_SQL: &str = "WITH d AS (SELECT * FROM UNNEST($2::int8[], $3::numeric[]) AS d(window_id, amt)), \
     l AS (UPDATE budget_leases b SET amount = b.amount - d.amt FROM d \
           WHERE b.instance_id = $1 AND b.window_id = d.window_id AND b.amount >= d.amt RETURNING b.window_id, d.amt) \
     UPDATE budget_windows w SET leased = w.leased - l.amt FROM l WHERE w.id = l.window_id RETURNING w.id";

impl PgStore {
    /// The id of a window row, creating it (spent 0) if needed.
    pub async fn ensure_window(&self, key: &CellKey) -> Result<i64, LedgerError> {
        for _ in 0..8 {
            let c = self.client().await?;
            // DO NOTHING + SELECT takes no row lock on an existing window. When a concurrent
            // insert of the same key commits while we wait, neither half sees it under this
            // statement's snapshot: try again with a fresh one.
            let row = c
                .query_opt(
                    "WITH ins AS (INSERT INTO budget_windows (scope, scope_id, win, window_start) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (scope, scope_id, win, window_start) DO NOTHING RETURNING id) \
                     SELECT id FROM ins UNION ALL SELECT id FROM budget_windows \
                     WHERE scope = $1 AND scope_id = $2 AND win = $3 AND window_start = $4",
                    &[&key.scope.as_str(), &&*key.id, &key.window.as_str(), &key.start],
                )
                .await
                .map_err(db("creating a budget window"))?;
            if let Some(r) = row {
                return Ok(r.get(0));
            }
        }
        Err(LedgerError::Corrupt(
            "budget window could not be created".into(),
        ))
    }

    /// Asks for at least `need` (ideally `want`) more lease on window `id`.
    #[allow(clippy::too_many_arguments)]
    pub async fn acquire_lease(
        &self,
        id: i64,
        key: &CellKey,
        need: Money,
        want: Money,
        instance: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<LeaseResult, LedgerError> {
        retry("leasing budget", || {
            self.acquire_once(id, key, need, want, instance, now, expires_at)
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn acquire_once(
        &self,
        id: i64,
        key: &CellKey,
        need: Money,
        want: Money,
        instance: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<LeaseResult, Retry> {
        let c = self.client().await.map_err(Retry::Other)?;
        let grant = "GREATEST($6::numeric, LEAST($7::numeric, TRUNC((lim.lim - w.spent - w.leased) / 4, 12)))";
        let sql = format!(
            "WITH lim AS (SELECT {LIMIT_SQL} AS lim), \
             upd AS (UPDATE budget_windows w SET leased = w.leased + {grant}, last_grant = {grant} FROM lim \
                     WHERE w.id = $1 AND lim.lim IS NOT NULL AND w.spent + w.leased + {grant} <= lim.lim \
                     RETURNING w.last_grant, w.spent, w.leased, lim.lim), \
             ins AS (INSERT INTO budget_leases (instance_id, window_id, amount, expires_at) \
                     SELECT $8, $1, last_grant, $9 FROM upd \
                     ON CONFLICT (instance_id, window_id) DO UPDATE \
                     SET amount = budget_leases.amount + EXCLUDED.amount, expires_at = EXCLUDED.expires_at) \
             SELECT last_grant, spent, leased, lim FROM upd"
        );
        let scope = key.scope.as_str();
        let win = key.window.as_str();
        let rows = c
            .query(
                &sql,
                &[
                    &id,
                    &scope,
                    &&*key.id,
                    &win,
                    &now,
                    &dec(need),
                    &dec(want),
                    &instance,
                    &expires_at,
                ],
            )
            .await?;
        if let Some(r) = rows.first() {
            let granted = money(r.get(0));
            let spent = money(r.get(1));
            let leased = money(r.get(2));
            let limit = money(r.get(3));
            return Ok(LeaseResult::Granted {
                granted,
                free: limit
                    .saturating_sub_floor_zero(spent)
                    .saturating_sub_floor_zero(leased),
                spent,
            });
        }
        let row = c
            .query_opt(
                &format!(
                    "SELECT {LIMIT_SQL}, w.spent, w.leased FROM budget_windows w WHERE w.id = $1"
                ),
                &[&id, &scope, &&*key.id, &win, &now],
            )
            .await?;
        Ok(match row {
            Some(r) => match r.get::<_, Option<rust_decimal::Decimal>>(0) {
                Some(limit) => LeaseResult::Denied {
                    limit: money(limit),
                    spent: money(r.get(1)),
                    leased: money(r.get(2)),
                },
                None => LeaseResult::NoBudget,
            },
            None => LeaseResult::NoBudget,
        })
    }

    /// Gives unused lease back. Returns the windows where it was still ours.
    pub async fn debit_leases(
        &self,
        instance: &str,
        items: &[(i64, Money)],
    ) -> Result<Vec<i64>, LedgerError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut items = items.to_vec();
        items.sort_by_key(|(id, _)| *id);
        let ids: Vec<i64> = items.iter().map(|(i, _)| *i).collect();
        let amts: Vec<rust_decimal::Decimal> = items.iter().map(|(_, a)| dec(*a)).collect();
        retry("returning budget leases", || async {
            let mut c = self.client().await.map_err(Retry::Other)?;
            let tx = c.transaction().await?;
            // Window rows first, in the one lock order: every path locks windows before leases.
            tx.execute(
                &format!("SELECT id FROM budget_windows WHERE id = ANY($1) ORDER BY {WINDOW_LOCK_ORDER} FOR UPDATE"),
                &[&ids],
            )
            .await?;
            let rows = tx.query(LEASE_DEBIT_SQL, &[&instance, &ids, &amts]).await?;
            tx.commit().await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    /// Renews this instance's leases.
    pub async fn heartbeat(
        &self,
        instance: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        retry("renewing budget leases", || async {
            let c = self.client().await.map_err(Retry::Other)?;
            c.execute(
                "UPDATE budget_leases SET expires_at = $2 WHERE instance_id = $1 AND window_id IN \
                 (SELECT window_id FROM budget_leases WHERE instance_id = $1 ORDER BY window_id FOR UPDATE)",
                &[&instance, &expires_at],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Returns the expired leases of other (dead) instances to their windows. Returns how many
    /// lease rows were reclaimed.
    pub async fn reclaim_expired(
        &self,
        instance: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, LedgerError> {
        retry("reclaiming stale leases", || async {
            let mut c = self.client().await.map_err(Retry::Other)?;
            let tx = c.transaction().await?;
            let candidates: Vec<i64> = tx
                .query(
                    "SELECT DISTINCT window_id FROM budget_leases WHERE expires_at < $1 AND instance_id <> $2",
                    &[&now, &instance],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if candidates.is_empty() {
                tx.commit().await?;
                return Ok(0);
            }
            tx.execute(
                &format!("SELECT id FROM budget_windows WHERE id = ANY($1) ORDER BY {WINDOW_LOCK_ORDER} FOR UPDATE"),
                &[&candidates],
            )
            .await?;
            // Re-checked on the latest row versions: a lease renewed meanwhile is kept.
            let rows = tx
                .query(
                    "WITH dead AS (DELETE FROM budget_leases WHERE expires_at < $1 AND instance_id <> $2 \
                     AND window_id = ANY($3) RETURNING window_id, amount), \
                     s AS (SELECT window_id, SUM(amount) AS amt, COUNT(*) AS n FROM dead GROUP BY window_id), \
                     u AS (UPDATE budget_windows w SET leased = w.leased - s.amt FROM s WHERE w.id = s.window_id RETURNING w.id) \
                     SELECT COALESCE(SUM(n), 0)::BIGINT FROM s",
                    &[&now, &instance, &candidates],
                )
                .await?;
            tx.commit().await?;
            Ok(rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64)
        })
        .await
    }

    /// Deletes this instance's empty lease rows (at shutdown).
    pub async fn drop_empty_leases(&self, instance: &str) -> Result<(), LedgerError> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM budget_leases WHERE instance_id = $1 AND amount = 0",
            &[&instance],
        )
        .await
        .map_err(db("dropping empty leases"))?;
        Ok(())
    }
}

/// A lease operation's failure: retried when PostgreSQL broke a deadlock or a serialization
/// conflict (lock order is windows before leases everywhere, but a heartbeat and a flush may
/// still meet on lease rows).
pub(crate) enum Retry {
    Db(tokio_postgres::Error),
    Other(LedgerError),
}

impl From<tokio_postgres::Error> for Retry {
    fn from(e: tokio_postgres::Error) -> Self {
        Retry::Db(e)
    }
}

pub(crate) async fn retry<T, F, Fut>(op: &'static str, mut f: F) -> Result<T, LedgerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Retry>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match f().await {
            Ok(v) => return Ok(v),
            Err(Retry::Other(e)) => return Err(e),
            Err(Retry::Db(e)) => {
                let transient = matches!(
                    e.code(),
                    Some(c) if *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                        || *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                );
                if !transient || attempt >= 8 {
                    return Err(LedgerError::storage(op, e));
                }
                tracing::debug!(op, attempt, "retrying after a transient postgres conflict");
            }
        }
    }
}
