//! The SQLite group-commit writer: a dedicated thread with its own connection. It blocks for
//! the first queued message, takes everything else queued behind it, writes the lot in one
//! `BEGIN IMMEDIATE` transaction, commits, then acknowledges each waiter.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use orteam_core::Money;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::mpsc;

use super::{EVENT_COLUMNS, event_from_row, insert_event, ts};
use crate::budget::engine::{BudgetEngine, CellKey};
use crate::error::LedgerError;
use crate::events::{BatchOutcome, Correction, MAX_BATCH, SpendDeltas, WriterMsg, finish_batch};

pub fn spawn(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    engine: Arc<BudgetEngine>,
    linger: Duration,
) -> Result<std::thread::JoinHandle<()>, LedgerError> {
    std::thread::Builder::new()
        .name("orteam-ledger-writer".into())
        .spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                if !linger.is_zero() {
                    // Optional: wait a little to make batches larger under light load.
                    std::thread::sleep(linger);
                }
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
                let result = write_batch(&mut conn, &batch);
                finish_batch(Some(&engine), batch, result);
            }
        })
        .map_err(|e| LedgerError::storage("starting the sqlite writer thread", e))
}

fn write_batch(conn: &mut Connection, batch: &[WriterMsg]) -> Result<BatchOutcome, LedgerError> {
    let err = |e| LedgerError::storage("writing usage events", e);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    let mut out = BatchOutcome::default();
    let mut deltas = SpendDeltas::default();
    {
        let mut ins = tx
            .prepare_cached(&format!(
                "INSERT INTO usage_events ({EVENT_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) \
                 ON CONFLICT(request_id) DO NOTHING"
            ))
            .map_err(err)?;
        for msg in batch {
            match msg {
                WriterMsg::Event(job) => {
                    let new = insert_event(&mut ins, &job.event).map_err(err)? == 1;
                    if new {
                        deltas.add(&job.keys, job.event.usage.cost);
                    }
                    out.inserted.push(new);
                }
                WriterMsg::Correct {
                    request_id, exact, ..
                } => {
                    let found = tx
                        .query_row(
                            &format!(
                                "SELECT {EVENT_COLUMNS} FROM usage_events WHERE request_id = ?1"
                            ),
                            params![request_id],
                            event_from_row,
                        )
                        .optional()
                        .map_err(err)?;
                    let Some(ev) = found else {
                        out.corrections.push(Ok(None));
                        continue;
                    };
                    tx.execute(
                        "UPDATE usage_events SET cost = ?2, \
                         outcome = CASE WHEN outcome = 'provisional' THEN 'ok' ELSE outcome END WHERE request_id = ?1",
                        params![request_id, exact.to_canonical_string()],
                    )
                    .map_err(err)?;
                    let keys = CellKey::all_for(
                        &Arc::from(ev.member_id.as_str()),
                        &Arc::from(ev.team_id.as_str()),
                        &Arc::from(ev.org_id.as_str()),
                        ev.time,
                    );
                    let delta = exact
                        .minus(ev.usage.cost)
                        .map_err(|_| LedgerError::Invalid("amount overflow".into()))?;
                    deltas.add(&keys, delta);
                    out.corrections.push(Ok(Some((
                        Correction {
                            previous: ev.usage.cost,
                            exact: *exact,
                        },
                        keys,
                    ))));
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
                WriterMsg::Flush(_) => {}
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
