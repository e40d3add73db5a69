//! The SQLite group-commit writer: a dedicated thread with its own connection. It blocks for
//! the first queued message, takes everything else queued behind it, writes the lot in one
//! `BEGIN IMMEDIATE` transaction, commits, then acknowledges each waiter.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use orteam_core::Money;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::mpsc;

use super::{first, insert_event, ts};
use crate::budget::engine::BudgetEngine;
use crate::error::LedgerError;
use crate::events::{
    BatchOutcome, EventSpend, MAX_BATCH, SpendDeltas, WriteJob, WriterMsg, finish_batch,
    plan_correction,
};
use crate::journal::{Journal, remove_segments};
use crate::rows::{self, EVENT_COLUMNS, EVENT_READ_COLUMNS};

/// How long the writer gathers journaled events after a wake-up before committing them: one
/// transaction per interval instead of one per event, and no wake-up per event.
const JOURNAL_LINGER: Duration = Duration::from_millis(10);

/// A batch at least this big means the writer is busy: the next one goes without lingering.
const BUSY_BATCH: usize = 256;

/// Pause before retrying journaled events whose commit failed (they stay in the journal).
const RETRY_PAUSE: Duration = Duration::from_millis(200);

pub(crate) fn spawn(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    engine: Arc<BudgetEngine>,
    linger: Duration,
    journal: Option<Arc<Journal>>,
) -> Result<std::thread::JoinHandle<()>, LedgerError> {
    std::thread::Builder::new()
        .name("orteam-ledger-writer".into())
        .spawn(move || {
            // Journaled events whose commit failed: retried first, never dropped.
            let mut carry: Vec<WriteJob> = Vec::new();
            // Journal segments whose events are all committed once `carry` is empty.
            let mut retired: Vec<PathBuf> = Vec::new();
            let mut open = true;
            let mut last_journaled = 0usize;
            // After the last sender is gone, failed commits are retried a few times only: what
            // is left stays in the journal for the next start.
            let mut retries_after_close = 0u32;
            while open || (!carry.is_empty() && retries_after_close < 25) {
                if !open {
                    retries_after_close += 1;
                }
                let first = if carry.is_empty() {
                    match rx.blocking_recv() {
                        Some(m) => Some(m),
                        None => {
                            open = false;
                            None
                        }
                    }
                } else {
                    std::thread::sleep(RETRY_PAUSE);
                    match rx.try_recv() {
                        Ok(m) => Some(m),
                        Err(mpsc::error::TryRecvError::Empty) => None,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            open = false;
                            None
                        }
                    }
                };
                let pause = match &first {
                    // Under load the last batch was big: commit at once rather than idle.
                    Some(WriterMsg::Kick) if last_journaled >= BUSY_BATCH => linger,
                    Some(WriterMsg::Kick) => JOURNAL_LINGER.max(linger),
                    Some(_) => linger,
                    None => Duration::ZERO,
                };
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
                let mut msgs: Vec<WriterMsg> = first.into_iter().collect();
                while msgs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(m) => msgs.push(m),
                        Err(_) => break,
                    }
                }
                msgs.retain(|m| !matches!(m, WriterMsg::Kick));
                let flush = msgs.iter().any(|m| matches!(m, WriterMsg::Flush(_)));
                // Journaled events first: a correction or flush queued after a settle must see
                // its event.
                let mut batch: Vec<WriterMsg> = carry.drain(..).map(WriterMsg::Event).collect();
                let mut journaled = batch.len();
                if let Some(j) = &journal {
                    let taken = j.take(flush || !open);
                    journaled += taken.jobs.len();
                    last_journaled = taken.jobs.len();
                    batch.extend(taken.jobs.into_iter().map(WriterMsg::Event));
                    retired.extend(taken.retired);
                }
                if batch.is_empty() && msgs.is_empty() {
                    continue;
                }
                batch.extend(msgs);
                match write_batch(&mut conn, &batch) {
                    Ok(out) => {
                        finish_batch(Some(&engine), batch, Ok(out));
                        if let Some(j) = &journal {
                            j.committed(journaled);
                        }
                        remove_segments(&retired);
                        retired.clear();
                    }
                    Err(err) => {
                        // Waiters learn of the failure; journaled events stay in the journal
                        // and are retried until they commit.
                        let (kept, answered): (Vec<_>, Vec<_>) = batch
                            .into_iter()
                            .partition(|m| matches!(m, WriterMsg::Event(job) if job.ack.is_none()));
                        carry = kept
                            .into_iter()
                            .filter_map(|m| match m {
                                WriterMsg::Event(job) => Some(job),
                                _ => None,
                            })
                            .collect();
                        finish_batch(Some(&engine), answered, Err(err));
                    }
                }
            }
            if let Some(j) = &journal {
                j.close();
            }
        })
        .map_err(|e| LedgerError::storage("starting the sqlite writer thread", e))
}

/// Replays what a previous process journaled but may not have committed, then removes its
/// segments. Runs before the engine loads the durable spend, so replayed spend counts.
///
/// Then the requests the previous process had in flight (a hold journaled before forwarding,
/// no settled event or release after it) are charged provisionally at their worst case, with
/// the generation id when it was known, so their money counts against the budgets before
/// anything is granted again; reconciliation corrects them to what upstream billed.
pub(crate) fn replay_journal(
    conn: &mut Connection,
    db: &std::path::Path,
) -> Result<crate::inflight::Resolved, LedgerError> {
    let left = crate::journal::leftovers(db)?;
    let committed = commit_replayed(conn, left.events)?;
    let in_flight = commit_replayed(conn, left.in_flight)?;
    remove_segments(&left.files);
    if committed > 0 {
        tracing::info!(
            inserted = committed,
            "committed usage events a stopped gateway had journaled"
        );
    }
    let resolved = crate::inflight::Resolved {
        events: committed,
        in_flight,
    };
    resolved.log();
    Ok(resolved)
}

/// Inserts replayed events (idempotent); returns how many were new.
fn commit_replayed(
    conn: &mut Connection,
    events: Vec<crate::model::UsageEvent>,
) -> Result<usize, LedgerError> {
    let mut inserted = 0;
    let mut jobs = events
        .into_iter()
        .map(crate::journal::replay_job)
        .peekable();
    while jobs.peek().is_some() {
        let batch: Vec<WriterMsg> = jobs
            .by_ref()
            .take(MAX_BATCH)
            .map(WriterMsg::Event)
            .collect();
        let out = write_batch(conn, &batch)?;
        inserted += out.inserted.iter().filter(|n| **n).count();
    }
    Ok(inserted)
}

fn write_batch(conn: &mut Connection, batch: &[WriterMsg]) -> Result<BatchOutcome, LedgerError> {
    let err = |e| LedgerError::storage("writing usage events", e);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    let mut out = BatchOutcome::default();
    let mut deltas = SpendDeltas::default();
    let mut event_spend = EventSpend::default();
    {
        let mut ins = tx
            .prepare_cached(&format!(
                "INSERT INTO usage_events ({EVENT_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23) \
                 ON CONFLICT(request_id) DO NOTHING"
            ))
            .map_err(err)?;
        for msg in batch {
            match msg {
                WriterMsg::Event(job) => {
                    let new = insert_event(&mut ins, &job.event).map_err(err)? == 1;
                    if new {
                        event_spend.add(&job.keys, job.event.usage.cost, &mut deltas);
                    }
                    out.inserted.push(new);
                }
                WriterMsg::Correct {
                    request_id,
                    exact,
                    outcome,
                    reconciled,
                    ..
                } => {
                    let found = {
                        let mut st = tx
                            .prepare_cached(&format!(
                                "SELECT {EVENT_READ_COLUMNS} FROM usage_events WHERE request_id = ?1"
                            ))
                            .map_err(err)?;
                        first(
                            &mut st,
                            params![request_id],
                            |r| rows::event(r),
                            "correcting a cost",
                        )
                    };
                    let plan = match found {
                        Ok(None) => {
                            out.corrections.push(Ok(None));
                            continue;
                        }
                        Ok(Some(ev)) => plan_correction(&ev, *exact, *outcome),
                        Err(e) => Err(e),
                    };
                    let plan = match plan {
                        Ok(plan) => plan,
                        Err(e) => {
                            out.corrections.push(Err(e));
                            continue;
                        }
                    };
                    tx.execute(
                        "UPDATE usage_events SET cost = ?2, outcome = ?3, \
                         reconciled_at = COALESCE(?4, reconciled_at), \
                         reconciled_evidence = COALESCE(?5, reconciled_evidence) \
                         WHERE request_id = ?1",
                        params![
                            request_id,
                            exact.to_canonical_string(),
                            plan.outcome.as_str(),
                            reconciled.as_ref().map(|(at, _)| ts(*at)),
                            reconciled.as_ref().map(|(_, e)| e.as_str()),
                        ],
                    )
                    .map_err(err)?;
                    deltas.add(&plan.keys, plan.delta);
                    out.corrections.push(Ok(Some(plan)));
                }
                WriterMsg::TouchKeys(list) => {
                    for (id, at) in list {
                        tx.execute(
                            "UPDATE virtual_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE id = ?1",
                            params![id, ts(*at)],
                        )
                        .map_err(err)?;
                    }
                }
                WriterMsg::Refusals(counts) => {
                    super::refusals::add_refusals(&tx, counts).map_err(err)?;
                }
                // Holds are journaled on SQLite, never sent to its writer.
                WriterMsg::Flush(_)
                | WriterMsg::Kick
                | WriterMsg::Hold { .. }
                | WriterMsg::InFlightGeneration { .. }
                | WriterMsg::InFlightEnded(_) => {}
            }
        }
        let mut get = tx
            .prepare_cached(
                "SELECT spent FROM budget_windows WHERE scope = ?1 AND scope_id = ?2 AND win = ?3 AND window_start = ?4",
            )
            .map_err(err)?;
        let mut put = tx
            .prepare_cached(
                "INSERT INTO budget_windows (scope, scope_id, win, window_start, spent) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT(scope, scope_id, win, window_start) DO UPDATE SET spent = excluded.spent",
            )
            .map_err(err)?;
        event_spend.into_deltas(&mut deltas);
        for (k, delta) in deltas.sorted() {
            let start = date_text(k.start);
            let old: Option<String> = get
                .query_row(
                    params![k.scope.as_str(), &*k.id, k.window.as_str(), start],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            let old = match old {
                Some(s) => Money::parse(&s).map_err(|e| LedgerError::Corrupt(e.to_string()))?,
                None => Money::ZERO,
            };
            // Money stays TEXT: the sum is exact and done here, never by SQLite's REAL arithmetic.
            let new = old
                .plus(delta)
                .map_err(|_| LedgerError::Invalid("amount overflow".into()))?;
            put.execute(params![
                k.scope.as_str(),
                &*k.id,
                k.window.as_str(),
                start,
                new.to_canonical_string()
            ])
            .map_err(err)?;
        }
    }
    tx.commit().map_err(err)?;
    Ok(out)
}

fn date_text(d: NaiveDate) -> String {
    d.to_string()
}
