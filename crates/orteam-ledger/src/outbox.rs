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

use chrono::{DateTime, TimeDelta, Utc};
use orteam_core::Money;
use serde::{Deserialize, Serialize};

use crate::error::LedgerError;
use crate::events::Correction;
use crate::ledger::Ledger;
use crate::store::AnyStore;

/// An alert to record for one webhook URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAlert {
    /// What the alert reports; the same id is never recorded twice for one URL.
    pub alert_id: String,
    pub url: String,
    /// `budget` or `anomaly` (free text).
    pub kind: String,
    /// The JSON body to POST.
    pub payload: String,
}

/// A row of the alert outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub alert_id: String,
    pub url: String,
    pub kind: String,
    pub payload: String,
    pub created_at: DateTime<Utc>,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub dead: bool,
    pub last_error: Option<String>,
}

/// A queued exact cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCorrection {
    pub request_id: String,
    pub exact: Money,
    pub generation_id: Option<String>,
    pub requested_at: DateTime<Utc>,
}

/// A queued correction that [`Ledger::apply_pending_corrections`] applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedCorrection {
    pub request_id: String,
    pub correction: Correction,
}

fn td(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

const OUTBOX_COLUMNS: &str = "alert_id, url, kind, payload, created_at, attempts, next_attempt_at, delivered_at, dead, last_error";

mod lite {
    use rusqlite::Row;

    use super::*;
    use crate::sqlite::{opt_time_col, time_col, ts};

    pub(super) fn entry(r: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
        Ok(OutboxEntry {
            alert_id: r.get(0)?,
            url: r.get(1)?,
            kind: r.get(2)?,
            payload: r.get(3)?,
            created_at: time_col(r, 4)?,
            attempts: u32_of(r.get(5)?),
            next_attempt_at: time_col(r, 6)?,
            delivered_at: opt_time_col(r, 7)?,
            dead: r.get::<_, i64>(8)? != 0,
            last_error: r.get(9)?,
        })
    }

    pub(super) fn t(at: DateTime<Utc>) -> i64 {
        ts(at)
    }
}

mod pg {
    use tokio_postgres::Row;

    use super::*;

    pub(super) fn entry(r: &Row) -> OutboxEntry {
        OutboxEntry {
            alert_id: r.get(0),
            url: r.get(1),
            kind: r.get(2),
            payload: r.get(3),
            created_at: r.get(4),
            attempts: u32_of(i64::from(r.get::<_, i32>(5))),
            next_attempt_at: r.get(6),
            delivered_at: r.get(7),
            dead: r.get(8),
            last_error: r.get(9),
        }
    }
}

fn sq(op: &'static str) -> impl Fn(rusqlite::Error) -> LedgerError {
    move |e| LedgerError::storage(op, e)
}

fn pq(op: &'static str) -> impl Fn(tokio_postgres::Error) -> LedgerError {
    move |e| LedgerError::storage(op, e)
}

impl Ledger {
    /// Records alerts; an (alert id, URL) pair already recorded is left alone. Returns how many
    /// rows were new.
    pub async fn outbox_enqueue(&self, alerts: Vec<NewAlert>) -> Result<usize, LedgerError> {
        if alerts.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        match self.store() {
            AnyStore::Sqlite(s) => {
                s.run(move |c| {
                    let op = "recording alerts";
                    let tx = c.transaction().map_err(sq(op))?;
                    let mut n = 0;
                    {
                        let mut st = tx
                            .prepare(
                                "INSERT INTO alert_outbox (alert_id, url, kind, payload, created_at, next_attempt_at) \
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (alert_id, url) DO NOTHING",
                            )
                            .map_err(sq(op))?;
                        for a in &alerts {
                            n += st
                                .execute(rusqlite::params![
                                    a.alert_id,
                                    a.url,
                                    a.kind,
                                    a.payload,
                                    lite::t(now)
                                ])
                                .map_err(sq(op))?;
                        }
                    }
                    tx.commit().map_err(sq(op))?;
                    Ok(n)
                })
                .await
            }
            AnyStore::Postgres(p) => {
                let op = "recording alerts";
                let mut c = p.client().await?;
                let tx = c.transaction().await.map_err(pq(op))?;
                let st = tx
                    .prepare(
                        "INSERT INTO alert_outbox (alert_id, url, kind, payload, created_at, next_attempt_at) \
                         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (alert_id, url) DO NOTHING",
                    )
                    .await
                    .map_err(pq(op))?;
                let mut n = 0;
                for a in &alerts {
                    n += tx
                        .execute(&st, &[&a.alert_id, &a.url, &a.kind, &a.payload, &now])
                        .await
                        .map_err(pq(op))?;
                }
                tx.commit().await.map_err(pq(op))?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
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
        match self.store() {
            AnyStore::Sqlite(s) => {
                s.run(move |c| {
                    let op = "claiming alerts";
                    let tx = c
                        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                        .map_err(sq(op))?;
                    let rows = {
                        let mut st = tx
                            .prepare(&format!(
                                "UPDATE alert_outbox SET claimed_until = ?1 WHERE rowid IN ( \
                                 SELECT rowid FROM alert_outbox WHERE delivered_at IS NULL AND dead = 0 \
                                 AND next_attempt_at <= ?2 AND (claimed_until IS NULL OR claimed_until <= ?2) \
                                 ORDER BY created_at, alert_id, url LIMIT ?3) RETURNING {OUTBOX_COLUMNS}"
                            ))
                            .map_err(sq(op))?;
                        st.query_map(
                            rusqlite::params![lite::t(until), lite::t(now), limit],
                            lite::entry,
                        )
                        .map_err(sq(op))?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(sq(op))?
                    };
                    tx.commit().map_err(sq(op))?;
                    Ok(rows)
                })
                .await
            }
            AnyStore::Postgres(p) => {
                let c = p.client().await?;
                let rows = c
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
                    .map_err(pq("claiming alerts"))?;
                Ok(rows.iter().map(pg::entry).collect())
            }
        }
    }

    /// Marks a row delivered (it is never sent again).
    pub async fn outbox_delivered(&self, alert_id: &str, url: &str) -> Result<(), LedgerError> {
        let now = self.now();
        let (a, u) = (alert_id.to_owned(), url.to_owned());
        match self.store() {
            AnyStore::Sqlite(s) => {
                s.run(move |c| {
                    c.execute(
                        "UPDATE alert_outbox SET delivered_at = ?1, claimed_until = NULL, last_error = NULL \
                         WHERE alert_id = ?2 AND url = ?3",
                        rusqlite::params![lite::t(now), a, u],
                    )
                    .map_err(sq("marking an alert delivered"))?;
                    Ok(())
                })
                .await
            }
            AnyStore::Postgres(p) => {
                p.client()
                    .await?
                    .execute(
                        "UPDATE alert_outbox SET delivered_at = $1, claimed_until = NULL, last_error = NULL \
                         WHERE alert_id = $2 AND url = $3",
                        &[&now, &a, &u],
                    )
                    .await
                    .map_err(pq("marking an alert delivered"))?;
                Ok(())
            }
        }
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
        let (a, u, e) = (alert_id.to_owned(), url.to_owned(), error.to_owned());
        match self.store() {
            AnyStore::Sqlite(s) => {
                s.run(move |c| {
                    c.execute(
                        "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = ?1, dead = ?2, \
                         last_error = ?3, claimed_until = NULL WHERE alert_id = ?4 AND url = ?5",
                        rusqlite::params![lite::t(next_attempt_at), i64::from(dead), e, a, u],
                    )
                    .map_err(sq("recording a failed alert delivery"))?;
                    Ok(())
                })
                .await
            }
            AnyStore::Postgres(p) => {
                p.client()
                    .await?
                    .execute(
                        "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = $1, dead = $2, \
                         last_error = $3, claimed_until = NULL WHERE alert_id = $4 AND url = $5",
                        &[&next_attempt_at, &dead, &e, &a, &u],
                    )
                    .await
                    .map_err(pq("recording a failed alert delivery"))?;
                Ok(())
            }
        }
    }

    /// Every outbox row (oldest first), or only those not delivered and not dead.
    pub async fn outbox_entries(
        &self,
        pending_only: bool,
    ) -> Result<Vec<OutboxEntry>, LedgerError> {
        match self.store() {
            AnyStore::Sqlite(s) => {
                s.run(move |c| {
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
                        .map_err(sq(op))?;
                    st.query_map([], lite::entry)
                        .map_err(sq(op))?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(sq(op))
                })
                .await
            }
            AnyStore::Postgres(p) => {
                let filter = if pending_only {
                    "WHERE delivered_at IS NULL AND NOT dead"
                } else {
                    ""
                };
                let rows = p
                    .client()
                    .await?
                    .query(
                        &format!(
                            "SELECT {OUTBOX_COLUMNS} FROM alert_outbox {filter} ORDER BY created_at, alert_id, url"
                        ),
                        &[],
                    )
                    .await
                    .map_err(pq("reading the alert outbox"))?;
                Ok(rows.iter().map(pg::entry).collect())
            }
        }
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
        let now = self.now();
        let (r, g) = (request_id.to_owned(), generation_id.map(str::to_owned));
        match self.store() {
            AnyStore::Sqlite(s) => {
                s.run(move |c| {
                    let n = c
                        .execute(
                            "INSERT INTO cost_corrections (request_id, exact_cost, generation_id, requested_at) \
                             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (request_id) DO UPDATE SET \
                             exact_cost = excluded.exact_cost, generation_id = excluded.generation_id, \
                             requested_at = excluded.requested_at, error = NULL \
                             WHERE cost_corrections.applied_at IS NULL",
                            rusqlite::params![r, exact.to_canonical_string(), g, lite::t(now)],
                        )
                        .map_err(sq("queueing a cost correction"))?;
                    Ok(n > 0)
                })
                .await
            }
            AnyStore::Postgres(p) => {
                let n = p
                    .client()
                    .await?
                    .execute(
                        "INSERT INTO cost_corrections (request_id, exact_cost, generation_id, requested_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (request_id) DO UPDATE SET \
                         exact_cost = excluded.exact_cost, generation_id = excluded.generation_id, \
                         requested_at = excluded.requested_at, error = NULL \
                         WHERE cost_corrections.applied_at IS NULL",
                        &[&r, &exact.as_decimal(), &g, &now],
                    )
                    .await
                    .map_err(pq("queueing a cost correction"))?;
                Ok(n > 0)
            }
        }
    }

    /// Corrections queued and not applied yet, oldest first.
    pub async fn pending_cost_corrections(&self) -> Result<Vec<PendingCorrection>, LedgerError> {
        match self.store() {
            AnyStore::Sqlite(s) => {
                s.run(|c| {
                    let op = "reading queued cost corrections";
                    let mut st = c
                        .prepare(
                            "SELECT request_id, exact_cost, generation_id, requested_at FROM cost_corrections \
                             WHERE applied_at IS NULL ORDER BY requested_at, request_id",
                        )
                        .map_err(sq(op))?;
                    let rows = st
                        .query_map([], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, Option<String>>(2)?,
                                crate::sqlite::time_col(r, 3)?,
                            ))
                        })
                        .map_err(sq(op))?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(sq(op))?;
                    rows.into_iter()
                        .map(|(request_id, cost, generation_id, requested_at)| {
                            Ok(PendingCorrection {
                                request_id,
                                exact: Money::parse(&cost)
                                    .map_err(|e| LedgerError::Corrupt(e.to_string()))?,
                                generation_id,
                                requested_at,
                            })
                        })
                        .collect()
                })
                .await
            }
            AnyStore::Postgres(p) => {
                let rows = p
                    .client()
                    .await?
                    .query(
                        "SELECT request_id, exact_cost, generation_id, requested_at FROM cost_corrections \
                         WHERE applied_at IS NULL ORDER BY requested_at, request_id",
                        &[],
                    )
                    .await
                    .map_err(pq("reading queued cost corrections"))?;
                Ok(rows
                    .iter()
                    .map(|r| PendingCorrection {
                        request_id: r.get(0),
                        exact: crate::postgres::money(r.get(1)),
                        generation_id: r.get(2),
                        requested_at: r.get(3),
                    })
                    .collect())
            }
        }
    }

    async fn mark_correction(
        &self,
        request_id: &str,
        error: Option<String>,
    ) -> Result<(), LedgerError> {
        let now = self.now();
        let r = request_id.to_owned();
        match self.store() {
            AnyStore::Sqlite(s) => {
                s.run(move |c| {
                    c.execute(
                        "UPDATE cost_corrections SET applied_at = ?1, error = ?2 WHERE request_id = ?3",
                        rusqlite::params![lite::t(now), error, r],
                    )
                    .map_err(sq("marking a cost correction applied"))?;
                    Ok(())
                })
                .await
            }
            AnyStore::Postgres(p) => {
                p.client()
                    .await?
                    .execute(
                        "UPDATE cost_corrections SET applied_at = $1, error = $2 WHERE request_id = $3",
                        &[&now, &error, &r],
                    )
                    .await
                    .map_err(pq("marking a cost correction applied"))?;
                Ok(())
            }
        }
    }

    /// Applies every queued correction with [`Ledger::correct_cost`] (serving role only) and
    /// marks it applied. A correction whose event no longer exists is marked applied with an
    /// error and skipped. The event update and the queue mark are two steps: a crash between
    /// them re-applies the same exact cost next time, which changes nothing (the difference is
    /// then zero).
    pub async fn apply_pending_corrections(&self) -> Result<Vec<AppliedCorrection>, LedgerError> {
        let pending = self.pending_cost_corrections().await?;
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            match self.correct_cost(&p.request_id, p.exact, crate::model::Outcome::Ok)
                .await {
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
