//! The PostgreSQL group-commit writer: one task with a dedicated connection. Per batch, one
//! transaction: a multi-row INSERT of the events (`UNNEST`, `ON CONFLICT (request_id) DO
//! NOTHING` for idempotence), the spend counters of every window touched, and the move of
//! settled amounts from this instance's lease to `spent`. Then commit, then acknowledge.
//!
//! Commit latency (an fsync) bounds a single writer, so a batch costs two round trips: BEGIN,
//! the insert, the spend upsert and the lease debit are pipelined (sent together, prepared once)
//! on the assumption that no request id is a repeat; repeats (rare) are compensated by a second
//! set of statements before COMMIT.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use orteam_core::Money;
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};

use super::lease::LEASE_DEBIT_SQL;
use super::{PgStore, dec, pg_i64};
use crate::budget::engine::{BudgetEngine, CellKey};
use crate::error::LedgerError;
use crate::events::{
    BatchOutcome, MAX_BATCH, SpendDeltas, WriterMsg, finish_batch, plan_correction,
};
use crate::rows::{self, EVENT_COLUMNS, EVENT_READ_COLUMNS};

const SPEND_UPSERT_SQL: &str = "INSERT INTO budget_windows (scope, scope_id, win, window_start, spent) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::date[], $5::numeric[]) \
     ON CONFLICT (scope, scope_id, win, window_start) DO UPDATE SET spent = budget_windows.spent + EXCLUDED.spent";

// A CHECK applies to the proposed row of an upsert even when it conflicts, so negative deltas
// (downward corrections, compensation of repeats; the rows always exist) use a plain UPDATE.
const SPEND_SUBTRACT_SQL: &str = "UPDATE budget_windows w SET spent = GREATEST(w.spent + d.amt, 0) \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::date[], $5::numeric[]) AS d(scope, scope_id, win, window_start, amt) \
     WHERE w.scope = d.scope AND w.scope_id = d.scope_id AND w.win = d.win AND w.window_start = d.window_start";

const LEASE_CREDIT_SQL: &str = "WITH d AS (SELECT * FROM UNNEST($2::int8[], $3::numeric[]) AS d(window_id, amt)), \
     l AS (UPDATE budget_leases b SET amount = b.amount + d.amt FROM d \
           WHERE b.instance_id = $1 AND b.window_id = d.window_id RETURNING b.window_id, d.amt) \
     UPDATE budget_windows w SET leased = w.leased + l.amt FROM l WHERE w.id = l.window_id";

struct Prepared {
    /// Prepared too: a `&str` would be parsed first (a round trip) and so sent *after* the
    /// statements pipelined behind it, which would then run outside the transaction.
    begin: Statement,
    commit: Statement,
    insert: Statement,
    spend: Statement,
    debit: Statement,
    hold: Statement,
    generation: Statement,
    ended: Statement,
}

const HOLD_INSERT_SQL: &str = "INSERT INTO inflight_requests (request_id, instance_id, record) \
     SELECT r, $1, rec FROM UNNEST($2::text[], $3::text[]) AS t(r, rec) ON CONFLICT (request_id) DO NOTHING";
const HOLD_GENERATION_SQL: &str = "UPDATE inflight_requests i SET generation_id = g.gid \
     FROM UNNEST($1::text[], $2::text[]) AS g(rid, gid) WHERE i.request_id = g.rid";
const HOLD_END_SQL: &str = "DELETE FROM inflight_requests WHERE request_id = ANY($1::text[])";

async fn prepare(client: &Client) -> Result<Prepared, tokio_postgres::Error> {
    let insert = client
        .prepare(&format!(
            "INSERT INTO usage_events ({EVENT_COLUMNS}) SELECT * FROM UNNEST(\
             $1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
             $8::text[], $9::text[], $10::text[], $11::int8[], $12::int8[], $13::int8[], $14::int8[], \
             $15::numeric[], $16::text[], $17::bool[], $18::text[], $19::int8[], $20::text[], $21::text[], $22::bool[], $23::int8[]) \
             ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
        ))
        .await?;
    let spend = client.prepare(SPEND_UPSERT_SQL).await?;
    let debit = client.prepare(LEASE_DEBIT_SQL).await?;
    let begin = client.prepare("BEGIN").await?;
    let commit = client.prepare("COMMIT").await?;
    let hold = client.prepare(HOLD_INSERT_SQL).await?;
    let generation = client.prepare(HOLD_GENERATION_SQL).await?;
    let ended = client.prepare(HOLD_END_SQL).await?;
    Ok(Prepared {
        begin,
        commit,
        insert,
        spend,
        debit,
        hold,
        generation,
        ended,
    })
}

/// The writer's session settings. Without `synchronous_commit`, COMMIT returns once the
/// transaction is in PostgreSQL's WAL buffers rather than flushed to disk: an acknowledged
/// event survives any crash of the gateway (the server has it), and only a crash of the
/// database server itself within its WAL writer delay can lose the newest events — the same
/// guarantee as SQLite's `synchronous=NORMAL`. Money is never double-granted either way: the
/// spend and lease moves commit (or vanish) together with their events.
fn session_setup(synchronous_commit: bool) -> &'static str {
    if synchronous_commit {
        "SET synchronous_commit TO on"
    } else {
        "SET synchronous_commit TO off"
    }
}

/// How the writer runs.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// This process's lease owner id.
    pub instance: String,
    /// Wait this long after the first queued message to gather a bigger batch.
    pub linger: Duration,
    /// See [`session_setup`].
    pub synchronous_commit: bool,
}

pub async fn run(
    store: Arc<PgStore>,
    mut client: Client,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    engine: Arc<BudgetEngine>,
    settings: WriterSettings,
    tracker: tokio_util::task::TaskTracker,
) {
    let WriterSettings {
        instance,
        linger,
        synchronous_commit,
    } = settings;
    let mut prepared: Option<Prepared> = None;
    while let Some(first) = rx.recv().await {
        if !linger.is_zero() {
            tokio::time::sleep(linger).await;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut result = Err(LedgerError::Closed);
        for attempt in 0..5 {
            if client.is_closed() {
                prepared = None;
                match store.connect_dedicated(&tracker).await {
                    Ok(c) => client = c,
                    Err(e) => {
                        result = Err(e);
                        continue;
                    }
                }
            }
            if prepared.is_none() {
                if let Err(e) = client
                    .batch_execute(session_setup(synchronous_commit))
                    .await
                {
                    result = Err(LedgerError::storage("configuring the writer session", e));
                    continue;
                }
                match prepare(&client).await {
                    Ok(p) => prepared = Some(p),
                    Err(e) => {
                        result = Err(LedgerError::storage("preparing writer statements", e));
                        continue;
                    }
                }
            }
            let Some(p) = prepared.as_ref() else { continue };
            match write_batch(&client, p, &instance, &batch).await {
                Ok(out) => {
                    result = Ok(out);
                    break;
                }
                Err(e) => {
                    // Best effort: leave the connection outside any transaction.
                    let _ = client.batch_execute("ROLLBACK").await;
                    let retry = matches!(
                        e.code(),
                        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
                    ) || client.is_closed();
                    tracing::warn!(error = %e, attempt, "postgres batch write failed");
                    result = Err(LedgerError::storage("writing usage events", e));
                    if !retry {
                        break;
                    }
                }
            }
        }
        finish_batch(Some(&engine), batch, result);
    }
}

/// Column arrays of sorted spend deltas.
type SpendArrays<'a> = (
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<NaiveDate>,
    Vec<Decimal>,
);

fn spend_arrays(rows: &[(CellKey, Money)]) -> SpendArrays<'_> {
    (
        rows.iter().map(|(k, _)| k.scope.as_str()).collect(),
        rows.iter().map(|(k, _)| &*k.id).collect(),
        rows.iter().map(|(k, _)| k.window.as_str()).collect(),
        rows.iter().map(|(k, _)| k.start).collect(),
        rows.iter().map(|(_, m)| dec(*m)).collect(),
    )
}

fn sorted_takes(takes: HashMap<i64, Money>) -> (Vec<i64>, Vec<Decimal>) {
    let mut v: Vec<(i64, Money)> = takes.into_iter().filter(|(_, m)| !m.is_zero()).collect();
    v.sort_by_key(|(id, _)| *id);
    (
        v.iter().map(|(i, _)| *i).collect(),
        v.iter().map(|(_, a)| dec(*a)).collect(),
    )
}

fn add_take(map: &mut HashMap<i64, Money>, takes: &[(i64, Money)]) {
    for (id, t) in takes {
        let e = map.entry(*id).or_insert(Money::ZERO);
        *e = e.checked_add(*t).unwrap_or(*e);
    }
}

async fn write_batch(
    client: &Client,
    p: &Prepared,
    instance: &str,
    batch: &[WriterMsg],
) -> Result<BatchOutcome, tokio_postgres::Error> {
    let mut out = BatchOutcome::default();

    // Events, first occurrence of each request id; charged optimistically.
    let jobs: Vec<_> = batch
        .iter()
        .filter_map(|m| match m {
            WriterMsg::Event(j) => Some(j),
            _ => None,
        })
        .collect();
    let mut seen = HashSet::new();
    let uniq: Vec<_> = jobs
        .iter()
        .filter(|j| seen.insert(j.event.usage.request_id.as_str()))
        .collect();
    let mut deltas = SpendDeltas::default();
    let mut takes: HashMap<i64, Money> = HashMap::new();
    for j in &uniq {
        deltas.add(&j.keys, j.event.usage.cost);
        add_take(&mut takes, &j.takes);
    }
    // Lease consumed by corrections that raised spend (their spend is added below).
    for m in batch {
        if let WriterMsg::Correct { takes: t, .. } = m {
            add_take(&mut takes, t);
        }
    }
    let col = |f: &dyn Fn(&crate::model::UsageEvent) -> Option<String>| -> Vec<Option<String>> {
        uniq.iter().map(|j| f(&j.event)).collect()
    };
    let num = |f: &dyn Fn(&crate::model::Usage) -> u64| -> Vec<i64> {
        uniq.iter().map(|j| pg_i64(f(&j.event.usage))).collect()
    };
    let request_id: Vec<&str> = uniq
        .iter()
        .map(|j| j.event.usage.request_id.as_str())
        .collect();
    let time: Vec<DateTime<Utc>> = uniq.iter().map(|j| j.event.time).collect();
    let member: Vec<&str> = uniq.iter().map(|j| j.event.member_id.as_str()).collect();
    let team: Vec<&str> = uniq.iter().map(|j| j.event.team_id.as_str()).collect();
    let org: Vec<&str> = uniq.iter().map(|j| j.event.org_id.as_str()).collect();
    let vkey = col(&|e| e.usage.virtual_key_id.clone());
    let ukey = col(&|e| e.usage.upstream_key_hash.clone());
    let requested: Vec<&str> = uniq
        .iter()
        .map(|j| j.event.usage.requested_model.as_str())
        .collect();
    let served = col(&|e| e.usage.served_model.clone());
    let provider = col(&|e| e.usage.provider.clone());
    let prompt = num(&|u| u.prompt_tokens);
    let completion = num(&|u| u.completion_tokens);
    let reasoning = num(&|u| u.reasoning_tokens);
    let cached = num(&|u| u.cached_tokens);
    let cost: Vec<Decimal> = uniq.iter().map(|j| dec(j.event.usage.cost)).collect();
    let generation = col(&|e| e.usage.generation_id.clone());
    let streamed: Vec<bool> = uniq.iter().map(|j| j.event.usage.streamed).collect();
    let outcome: Vec<&str> = uniq
        .iter()
        .map(|j| j.event.usage.outcome.as_str())
        .collect();
    let latency = num(&|u| u.latency_ms);
    let latency_us = num(&|u| u.latency_us);
    let title = col(&|e| e.usage.title.clone());
    let route: Vec<&str> = uniq.iter().map(|j| j.event.usage.route.as_str()).collect();
    let outside_tier: Vec<bool> = uniq
        .iter()
        .map(|j| j.event.usage.served_outside_tier)
        .collect();
    // Sorted so that concurrent instances lock window rows in one order.
    let spend_rows = deltas.sorted();
    let (s1, s2, s3, s4, s5) = spend_arrays(&spend_rows);
    let (take_ids, take_amts) = sorted_takes(takes);

    // Requests in flight: new holds, generation ids, and the end of those settled or
    // released (a settled event ends its hold in the same transaction).
    let mut hold_ids: Vec<&str> = Vec::new();
    let mut hold_records: Vec<String> = Vec::new();
    let mut gen_ids: Vec<&str> = Vec::new();
    let mut gen_values: Vec<&str> = Vec::new();
    let mut ended: Vec<&str> = request_id.clone();
    for m in batch {
        match m {
            WriterMsg::Hold { event, .. } => {
                hold_ids.push(event.usage.request_id.as_str());
                hold_records.push(serde_json::to_string(event).unwrap_or_default());
            }
            WriterMsg::InFlightGeneration {
                request_id,
                generation_id,
            } => {
                gen_ids.push(request_id);
                gen_values.push(generation_id);
            }
            WriterMsg::InFlightEnded(id) => ended.push(id),
            _ => {}
        }
    }

    // One round trip: BEGIN + insert + spend + lease debit + in-flight rows, pipelined.
    let begin = client.execute(&p.begin, &[]);
    let insert = async {
        if uniq.is_empty() {
            return Ok(Vec::new());
        }
        client
            .query(
                &p.insert,
                &[
                    &time,
                    &member,
                    &team,
                    &org,
                    &request_id,
                    &vkey,
                    &ukey,
                    &requested,
                    &served,
                    &provider,
                    &prompt,
                    &completion,
                    &reasoning,
                    &cached,
                    &cost,
                    &generation,
                    &streamed,
                    &outcome,
                    &latency,
                    &title,
                    &route,
                    &outside_tier,
                    &latency_us,
                ],
            )
            .await
    };
    let spend = async {
        if spend_rows.is_empty() {
            return Ok(0);
        }
        client.execute(&p.spend, &[&s1, &s2, &s3, &s4, &s5]).await
    };
    let debit = async {
        if take_ids.is_empty() {
            return Ok(Vec::new());
        }
        client
            .query(&p.debit, &[&instance, &take_ids, &take_amts])
            .await
    };
    let holds = async {
        if hold_ids.is_empty() {
            return Ok(0);
        }
        client
            .execute(&p.hold, &[&instance, &hold_ids, &hold_records])
            .await
    };
    let generations = async {
        if gen_ids.is_empty() {
            return Ok(0);
        }
        client
            .execute(&p.generation, &[&gen_ids, &gen_values])
            .await
    };
    let ends = async {
        if ended.is_empty() {
            return Ok(0);
        }
        client.execute(&p.ended, &[&ended]).await
    };
    let (_, inserted_rows, _, debited, _, _, _) =
        futures::try_join!(begin, insert, spend, debit, holds, generations, ends)?;
    let inserted_set: HashSet<&str> = inserted_rows.iter().map(|r| r.get::<_, &str>(0)).collect();
    let mut inserted = inserted_set.clone();
    let ok: HashSet<i64> = debited.iter().map(|r| r.get(0)).collect();
    out.lost_leases = take_ids
        .iter()
        .copied()
        .filter(|i| !ok.contains(i))
        .collect();

    // Repeats of already-recorded request ids: undo their optimistic charge.
    let mut undo = SpendDeltas::default();
    let mut credit: HashMap<i64, Money> = HashMap::new();
    for job in &jobs {
        // `remove` so a repeated id later in the same batch counts as a duplicate.
        let new = inserted.remove(job.event.usage.request_id.as_str());
        out.inserted.push(new);
    }
    for j in &uniq {
        if !inserted_set.contains(j.event.usage.request_id.as_str()) {
            undo.add(
                &j.keys,
                Money::ZERO.minus(j.event.usage.cost).unwrap_or(Money::ZERO),
            );
            add_take(&mut credit, &j.takes);
        }
    }
    let mut corrections = SpendDeltas::default();
    for msg in batch {
        match msg {
            WriterMsg::Correct {
                request_id,
                exact,
                outcome,
                reconciled,
                ..
            } => {
                let row = client
                    .query_opt(
                        &format!("SELECT {EVENT_READ_COLUMNS} FROM usage_events WHERE request_id = $1 FOR UPDATE"),
                        &[request_id],
                    )
                    .await?;
                let Some(row) = row else {
                    out.corrections.push(Ok(None));
                    continue;
                };
                let plan =
                    match rows::event(&row).and_then(|ev| plan_correction(&ev, *exact, *outcome)) {
                        Ok(plan) => plan,
                        Err(e) => {
                            out.corrections.push(Err(e));
                            continue;
                        }
                    };
                let (at, evidence) = match reconciled {
                    Some((at, e)) => (Some(*at), Some(e.as_str())),
                    None => (None, None),
                };
                client
                    .execute(
                        "UPDATE usage_events SET cost = $2, outcome = $3, \
                         reconciled_at = COALESCE($4, reconciled_at), \
                         reconciled_evidence = COALESCE($5, reconciled_evidence) \
                         WHERE request_id = $1",
                        &[
                            request_id,
                            &dec(*exact),
                            &plan.outcome.as_str(),
                            &at,
                            &evidence,
                        ],
                    )
                    .await?;
                corrections.add(&plan.keys, plan.delta);
                out.corrections.push(Ok(Some(plan)));
            }
            WriterMsg::TouchKeys(list) => {
                for (id, at) in list {
                    client
                        .execute(
                            "UPDATE virtual_keys SET last_used_at = GREATEST(COALESCE(last_used_at, $2), $2) WHERE id = $1",
                            &[id, at],
                        )
                        .await?;
                }
            }
            WriterMsg::Refusals(counts) => {
                super::refusals::add_refusals(client, counts).await?;
            }
            WriterMsg::Event(_)
            | WriterMsg::Flush(_)
            | WriterMsg::Kick
            | WriterMsg::Hold { .. }
            | WriterMsg::InFlightGeneration { .. }
            | WriterMsg::InFlightEnded(_) => {}
        }
    }
    for (k, m) in corrections.0 {
        undo.add(std::slice::from_ref(&k), m);
    }
    let (neg, pos): (Vec<_>, Vec<_>) = undo
        .sorted()
        .into_iter()
        .partition(|(_, m)| m.is_negative());
    if !neg.is_empty() {
        let (a, b, c, d, e) = spend_arrays(&neg);
        client
            .execute(SPEND_SUBTRACT_SQL, &[&a, &b, &c, &d, &e])
            .await?;
    }
    if !pos.is_empty() {
        let (a, b, c, d, e) = spend_arrays(&pos);
        client.execute(&p.spend, &[&a, &b, &c, &d, &e]).await?;
    }
    let (credit_ids, credit_amts) = sorted_takes(credit);
    if !credit_ids.is_empty() {
        client
            .execute(LEASE_CREDIT_SQL, &[&instance, &credit_ids, &credit_amts])
            .await?;
    }
    client.execute(&p.commit, &[]).await?;
    Ok(out)
}
