//! Usage events: cost corrections and the queries for reports.

use orteam_core::Money;
use tokio::sync::oneshot;

use super::{Ledger, not_found};
use crate::budget::engine::Mode;
use crate::error::LedgerError;
use crate::events::WriterMsg;
use crate::model::*;
use crate::query::{self, DailyPoint, EventFilter, UsageGroup, UsageQuery};
use crate::store::EventStore;

impl Ledger {
    /// Makes reads see every journaled event: waits for the writer when it is behind.
    pub(super) async fn catch_up(&self) -> Result<(), LedgerError> {
        match &self.inner.journal {
            Some(j) if j.behind() => self.flush().await,
            _ => Ok(()),
        }
    }

    /// Replaces a (provisional) event's cost with the exact one and adjusts every budget window
    /// it counted against by the difference. A `provisional` event takes `outcome`, the outcome
    /// it has once its cost is exact (`Outcome::Ok`, or `Outcome::Partial` for a cut stream);
    /// any other outcome stays. A difference that overflows is an error and changes nothing.
    pub async fn correct_cost(
        &self,
        request_id: &str,
        exact: Money,
        outcome: Outcome,
    ) -> Result<Correction, LedgerError> {
        self.correct_cost_with(request_id, exact, outcome, None)
            .await
    }

    /// [`Ledger::correct_cost`] that also marks the event reconciled with `evidence` (the
    /// figures the correction rests on), when given.
    pub async fn correct_cost_with(
        &self,
        request_id: &str,
        exact: Money,
        outcome: Outcome,
        evidence: Option<String>,
    ) -> Result<Correction, LedgerError> {
        if exact.is_negative() {
            return Err(LedgerError::Invalid("a cost cannot be negative".into()));
        }
        if outcome == Outcome::Provisional {
            return Err(LedgerError::Invalid(
                "a corrected cost is exact: its outcome cannot be provisional".into(),
            ));
        }
        // PostgreSQL: money a correction adds is taken from this instance's lease where it has
        // one, so the lease cannot grant it a second time (SQLite: the engine's spend is the
        // budget, moved when the batch commits).
        let takes = if self.inner.engine.mode() == Mode::Leased {
            match self.inner.store.event(request_id.to_owned()).await? {
                Some(ev) => match exact.checked_sub(ev.usage.cost) {
                    Some(delta) => self
                        .inner
                        .engine
                        .take_lease(&crate::events::event_cells(&ev), delta),
                    None => Vec::new(),
                },
                None => Vec::new(),
            }
        } else {
            Vec::new()
        };
        let (tx, rx) = oneshot::channel();
        self.writer()?
            .send(WriterMsg::Correct {
                request_id: request_id.to_owned(),
                exact,
                outcome,
                reconciled: evidence.map(|e| (self.now(), e)),
                takes,
                ack: tx,
            })
            .map_err(|_| LedgerError::Closed)?;
        rx.await
            .map_err(|_| LedgerError::Closed)??
            .ok_or_else(|| not_found("usage event", request_id))
    }

    /// Records an event reconciliation found upstream but not in the ledger, **at cost 0**
    /// (serving role only); [`Ledger::correct_cost_with`] then brings it to what upstream billed,
    /// moving its budget windows like any correction. An event already recorded is left alone
    /// (returns `false`). Its windows are its member's, team's and org's, or only the org's for an
    /// org-level event ([`crate::model::ORG_LEVEL`]).
    pub async fn record_reconciliation_event(
        &self,
        mut event: UsageEvent,
    ) -> Result<bool, LedgerError> {
        event.usage.cost = Money::ZERO;
        event.reconciled = None;
        let keys = crate::events::event_cells(&event);
        let writer = self.writer()?;
        let (tx, rx) = oneshot::channel();
        writer
            .send(WriterMsg::Event(crate::events::WriteJob {
                event,
                keys,
                takes: Default::default(),
                ack: Some(tx),
            }))
            .map_err(|_| LedgerError::Closed)?;
        rx.await.map_err(|_| LedgerError::Closed)?
    }

    /// Spend and requests over a period grouped by any combination of member, team, model, day,
    /// provider, key and API route. Sums are exact.
    pub async fn usage(&self, q: &UsageQuery) -> Result<Vec<UsageGroup>, LedgerError> {
        self.catch_up().await?;
        let events = self
            .inner
            .store
            .events(EventFilter {
                from: q.from,
                to: q.to,
                member: q.member.clone(),
                team: q.team.clone(),
                route: q.route,
                ..EventFilter::default()
            })
            .await?;
        Ok(query::aggregate(&events, &q.group_by))
    }

    /// The last `days` UTC days (today included) of a member's spend, zero-filled.
    pub async fn daily_series(
        &self,
        member: &str,
        days: u32,
    ) -> Result<Vec<DailyPoint>, LedgerError> {
        self.catch_up().await?;
        let today = self.now().date_naive();
        let first = today - chrono::Days::new(u64::from(days.saturating_sub(1)));
        let events = self
            .inner
            .store
            .events(EventFilter {
                from: Some(orteam_core::window::midnight(first)),
                member: Some(member.to_owned()),
                ..EventFilter::default()
            })
            .await?;
        Ok(query::daily_series(&events, today, days))
    }

    /// The newest `limit` events.
    pub async fn recent_events(&self, limit: usize) -> Result<Vec<UsageEvent>, LedgerError> {
        self.catch_up().await?;
        self.inner
            .store
            .events(EventFilter {
                newest_first: true,
                limit: Some(limit),
                ..EventFilter::default()
            })
            .await
    }

    /// Events still awaiting their exact cost.
    pub async fn provisional_events(&self) -> Result<Vec<UsageEvent>, LedgerError> {
        self.catch_up().await?;
        self.inner
            .store
            .events(EventFilter {
                provisional_only: true,
                ..EventFilter::default()
            })
            .await
    }

    /// Any event filter.
    pub async fn events(&self, filter: EventFilter) -> Result<Vec<UsageEvent>, LedgerError> {
        self.catch_up().await?;
        self.inner.store.events(filter).await
    }

    pub async fn event(&self, request_id: &str) -> Result<Option<UsageEvent>, LedgerError> {
        self.catch_up().await?;
        self.inner.store.event(request_id.to_owned()).await
    }
}
