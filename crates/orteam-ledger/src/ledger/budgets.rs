//! Budgets: reservations, settles (committed or journaled), budget status, stale holds.

use std::sync::atomic::Ordering;

use orteam_core::{Money, Window};
use tokio::sync::{mpsc, oneshot};

use super::{LEASE_MULTIPLIER, Ledger, RESERVE_ATTEMPTS, Reclaimed, td};
use crate::budget::engine::{CellKey, Mode, TryReserve};
use crate::budget::{Durability, Reservation, Settled};
use crate::directory::Directory;
use crate::error::{BudgetExceeded, LedgerError};
use crate::events::{WriteJob, WriterMsg, WriterTx};
use crate::model::*;
use crate::postgres::lease::LeaseResult;
use crate::store::{BudgetStore, WindowRow};

impl Ledger {
    pub(super) fn writer(&self) -> Result<&WriterTx, LedgerError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(LedgerError::Closed);
        }
        self.inner.writer.as_ref().ok_or(LedgerError::NotServing)
    }

    /// Holds `max_cost` against every budget that applies to `member` (member, team, org; every
    /// window with a limit, including active raises), atomically. Fails with
    /// [`LedgerError::BudgetExceeded`] naming the exhausted budget and when it resets.
    pub async fn reserve(&self, member: &str, max_cost: Money) -> Result<Reservation, LedgerError> {
        self.writer()?;
        let now = self.now();
        let mut last_denial: Option<(CellKey, Money, BudgetExceeded)> = None;
        for _ in 0..RESERVE_ATTEMPTS {
            let shorts = match self.inner.engine.try_reserve(member, max_cost, now)? {
                TryReserve::Held { id, member } => {
                    return Ok(Reservation {
                        id,
                        member: member.id,
                        team: member.team,
                        org: member.org,
                        amount: max_cost,
                        at: now,
                        ledger: Some(self.clone()),
                        in_flight: None,
                    });
                }
                TryReserve::Short(s) => s,
            };
            // Leased mode: ask the database for what the local lease lacks.
            let pg = self.inner.pg.as_ref().ok_or(LedgerError::NotServing)?;
            if let Some((key, need, err)) = &last_denial
                && shorts.iter().any(|s| &s.key == key && s.need >= *need)
            {
                // Denied by the database, and our own free lease has not grown since: a true denial.
                return Err(LedgerError::BudgetExceeded(Box::new(err.clone())));
            }
            let instance = &self.inner.opts.instance_id;
            let expires = now + td(self.inner.opts.lease_ttl);
            let want = max_cost
                .checked_mul_u64(LEASE_MULTIPLIER)
                .unwrap_or(max_cost);
            for s in shorts {
                let id = match s.db_id {
                    Some(id) => id,
                    None => pg.ensure_window(&s.key).await?,
                };
                match pg
                    .acquire_lease(id, &s.key, s.need, want.max(s.need), instance, now, expires)
                    .await?
                {
                    LeaseResult::Granted {
                        granted,
                        free,
                        spent,
                    } => {
                        self.inner
                            .engine
                            .add_lease(&s.key, id, granted, free, spent);
                    }
                    LeaseResult::Denied {
                        limit,
                        spent,
                        leased,
                    } => {
                        let free = limit
                            .saturating_sub_floor_zero(spent)
                            .saturating_sub_floor_zero(leased);
                        self.inner.engine.observe(&s.key, id, free, spent);
                        if free >= s.need {
                            // The conditional UPDATE judged an older row version than this
                            // read: a lease return or a settle committed in between, and the
                            // budget has room after all. Ask again rather than deny.
                            break;
                        }
                        last_denial = Some((
                            s.key.clone(),
                            s.need,
                            BudgetExceeded {
                                scope: s.key.scope,
                                scope_id: s.key.id.to_string(),
                                window: s.key.window,
                                limit,
                                spent,
                                held: leased,
                                requested: max_cost,
                                reset_at: s.key.window.reset_at(now),
                            },
                        ));
                        break;
                    }
                    LeaseResult::NoBudget => {
                        // The budget was removed by another process: pick that up and retry.
                        self.reload().await?;
                    }
                }
            }
        }
        match last_denial {
            Some((_, _, err)) => Err(LedgerError::BudgetExceeded(Box::new(err))),
            None => Err(LedgerError::Storage {
                op: "reserving budget",
                source: "budget lease contention did not settle".into(),
            }),
        }
    }

    pub(crate) fn release_hold(&self, id: u64) {
        self.inner.engine.release(id);
    }

    /// Moves the hold into spend in memory and builds the write job (no waiter yet).
    pub(super) fn settle_job(
        &self,
        r: &Reservation,
        usage: Usage,
    ) -> Result<(&WriterTx, WriteJob), LedgerError> {
        if usage.cost.is_negative() {
            self.release_hold(r.id);
            return Err(LedgerError::Invalid("a cost cannot be negative".into()));
        }
        let writer = match self.writer() {
            Ok(w) => w,
            Err(e) => {
                self.release_hold(r.id);
                return Err(e);
            }
        };
        let keys = CellKey::all_for(&r.member, &r.team, &r.org, r.at);
        let takes = self
            .inner
            .engine
            .settle(r.id, &keys, usage.cost, self.now());
        let event = UsageEvent {
            time: r.at,
            member_id: r.member.to_string(),
            team_id: r.team.to_string(),
            org_id: r.org.to_string(),
            usage,
            reconciled: None,
        };
        Ok((
            writer,
            WriteJob {
                event,
                keys,
                takes,
                ack: None,
            },
        ))
    }

    /// Queues a job for the writer and waits for its commit.
    pub(super) async fn commit_job(
        &self,
        writer: &WriterTx,
        mut job: WriteJob,
    ) -> Result<Settled, LedgerError> {
        let request_id = job.event.usage.request_id.clone();
        let cost = job.event.usage.cost;
        let (tx, rx) = oneshot::channel();
        job.ack = Some(tx);
        if let Err(mpsc::error::SendError(msg)) = writer.send(WriterMsg::Event(job)) {
            if let WriterMsg::Event(job) = msg {
                self.inner.engine.refund(&job.keys, cost, &job.takes);
            }
            return Err(LedgerError::Closed);
        }
        let new = rx.await.map_err(|_| LedgerError::Closed)??;
        Ok(Settled {
            request_id,
            cost,
            duplicate: !new,
        })
    }

    pub(crate) async fn settle_reservation(
        &self,
        r: &Reservation,
        usage: Usage,
    ) -> Result<Settled, LedgerError> {
        let (writer, job) = self.settle_job(r, usage)?;
        let settled = self.commit_job(writer, job).await?;
        if let Some(f) = &r.in_flight {
            self.settled_in_flight(f);
        }
        Ok(settled)
    }

    /// Journals the settled event and returns (SQLite serving with a journal); otherwise, or
    /// when the journal cannot take it, waits for the database commit like a plain settle.
    pub(crate) async fn settle_reservation_journaled(
        &self,
        r: &Reservation,
        usage: Usage,
    ) -> Result<Durability, LedgerError> {
        let (writer, mut job) = self.settle_job(r, usage)?;
        if let Some(journal) = &self.inner.journal {
            match journal.append(job) {
                Ok(appended) => {
                    if appended.wake {
                        let _ = writer.send(WriterMsg::Kick);
                    }
                    if journal.written(appended.seq).await.is_ok() {
                        // The event line is durable: it ends the hold.
                        journal.free_slot(r.in_flight.as_ref().and_then(|f| f.slot));
                        return Ok(Durability::Journaled);
                    }
                    // The journal write failed; the event is queued for the database.
                    self.flush().await?;
                    journal.free_slot(r.in_flight.as_ref().and_then(|f| f.slot));
                    return Ok(Durability::Committed { duplicate: false });
                }
                // The journal cannot take it (broken, or the writer too far behind).
                Err(back) => job = *back,
            }
        }
        let settled = self.commit_job(writer, job).await?;
        if let Some(f) = &r.in_flight {
            self.settled_in_flight(f);
        }
        Ok(Durability::Committed {
            duplicate: settled.duplicate,
        })
    }

    /// Every budget window that applies to `member`, with what remains.
    pub async fn budget_status(&self, member: &str) -> Result<Vec<BudgetStatus>, LedgerError> {
        if self.inner.engine.mode() == Mode::Owned && self.inner.writer.is_some() {
            return self.inner.engine.status(member, self.now());
        }
        let dir = self.directory();
        let m = dir
            .members
            .get(member)
            .ok_or_else(|| LedgerError::UnknownMember(member.to_owned()))?;
        let org = dir.org_of_team(&m.team_id).unwrap_or_default().to_owned();
        let scopes = [
            (BudgetScope::Member, m.id.clone()),
            (BudgetScope::Team, m.team_id.clone()),
            (BudgetScope::Org, org),
        ];
        self.status_from_db(&dir, Some(&scopes)).await
    }

    /// The budgets that apply to `member` as the member sees them. On PostgreSQL the database
    /// counts as held the slices leased to gateway instances in advance, which a member could
    /// still spend; here `held` is what this instance holds for the member's requests in
    /// flight, so an idle member's `remaining` is exactly `limit - spent`.
    pub async fn member_budget_view(&self, member: &str) -> Result<Vec<BudgetStatus>, LedgerError> {
        let mut rows = self.budget_status(member).await?;
        if self.inner.engine.mode() == Mode::Leased {
            let local = self
                .inner
                .engine
                .status(member, self.now())
                .unwrap_or_default();
            for r in &mut rows {
                r.held = local
                    .iter()
                    .find(|l| {
                        l.scope == r.scope && l.scope_id == r.scope_id && l.window == r.window
                    })
                    .map(|l| l.held)
                    .unwrap_or(Money::ZERO);
                r.remaining = r
                    .limit
                    .saturating_sub_floor_zero(r.spent)
                    .saturating_sub_floor_zero(r.held);
            }
        }
        Ok(rows)
    }

    /// Same as [`Ledger::budget_status`].
    pub async fn remaining(&self, member: &str) -> Result<Vec<BudgetStatus>, LedgerError> {
        self.budget_status(member).await
    }

    /// Every budget window of every scope.
    pub async fn all_budget_status(&self) -> Result<Vec<BudgetStatus>, LedgerError> {
        if self.inner.engine.mode() == Mode::Owned && self.inner.writer.is_some() {
            return Ok(self.inner.engine.all_status(self.now()));
        }
        let dir = self.directory();
        self.status_from_db(&dir, None).await
    }

    pub(super) async fn status_from_db(
        &self,
        dir: &Directory,
        scopes: Option<&[(BudgetScope, String)]>,
    ) -> Result<Vec<BudgetStatus>, LedgerError> {
        let now = self.now();
        let starts = Window::ALL
            .iter()
            .map(|w| (*w, w.start_date(now.date_naive())))
            .collect();
        let rows: Vec<WindowRow> = self.inner.store.window_rows(starts).await?;
        let find = |b: &Budget| {
            rows.iter().find(|r| {
                r.key.scope == b.scope
                    && &*r.key.id == b.scope_id.as_str()
                    && r.key.window == b.window
            })
        };
        let mut out = Vec::new();
        let order: Vec<(BudgetScope, String)> = match scopes {
            Some(s) => s.to_vec(),
            None => dir
                .budgets
                .iter()
                .map(|b| (b.scope, b.scope_id.clone()))
                .collect(),
        };
        let mut seen = std::collections::HashSet::new();
        for (scope, id) in order {
            for b in dir
                .budgets
                .iter()
                .filter(|b| b.scope == scope && b.scope_id == id)
            {
                if !seen.insert((b.scope, b.scope_id.clone(), b.window)) {
                    continue;
                }
                let raised: Money = dir
                    .raises
                    .iter()
                    .filter(|r| {
                        r.scope == b.scope
                            && r.scope_id == b.scope_id
                            && r.window == b.window
                            && r.until > now
                    })
                    .map(|r| r.amount)
                    .sum();
                let limit = b.limit.checked_add(raised).unwrap_or(b.limit);
                let (spent, held) = find(b).map(|r| (r.spent, r.leased)).unwrap_or_default();
                out.push(BudgetStatus {
                    scope: b.scope,
                    scope_id: b.scope_id.clone(),
                    window: b.window,
                    window_start: b.window.start_date(now.date_naive()),
                    reset_at: b.window.reset_at(now),
                    base_limit: b.limit,
                    raised,
                    limit,
                    spent,
                    held,
                    remaining: limit
                        .saturating_sub_floor_zero(spent)
                        .saturating_sub_floor_zero(held),
                });
            }
        }
        Ok(out)
    }

    /// The budget with the least room for `member`, from memory (for the gateway's max_tokens
    /// clamp). `None` when no budget applies.
    pub fn tightest_remaining(&self, member: &str) -> Result<Option<TightestBudget>, LedgerError> {
        self.inner.engine.tightest(member, self.now())
    }

    /// Reclaims holds past their TTL and (PostgreSQL) the expired leases of dead instances.
    pub async fn reclaim_stale(&self) -> Result<Reclaimed, LedgerError> {
        let now = self.now();
        let holds = self.inner.engine.expire_holds(now);
        let leases = match &self.inner.pg {
            Some(pg) => {
                // Dead instances' requests in flight are charged before their leases return.
                if self.writer().is_ok() {
                    self.resolve_in_flight(now, false).await?;
                }
                pg.reclaim_expired(&self.inner.opts.instance_id, now)
                    .await?
            }
            None => 0,
        };
        Ok(Reclaimed { holds, leases })
    }

    /// Number of live holds in this process.
    pub fn holds_in_flight(&self) -> usize {
        self.inner.engine.holds_len()
    }
}
