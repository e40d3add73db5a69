//! The group-commit event writer's protocol, shared by both backends.
//!
//! `settle` applies the spend to the in-memory engine at once (so the next reservation sees it)
//! and queues a [`WriteJob`]. A backend writer takes *everything* queued, writes it in one
//! transaction (events plus the per-window spend counters, and on PostgreSQL the lease
//! movement), commits, and only then acknowledges each waiter. An acknowledged event is
//! therefore committed: it survives `kill -9`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use orteam_core::Money;
use tokio::sync::{mpsc, oneshot};

use chrono::NaiveDate;

use crate::budget::engine::{BudgetEngine, CellKey, FastMap, Id, LeaseTakes};
use crate::error::LedgerError;
use crate::model::{Correction, Outcome, UsageEvent};

/// Whether a settled event was newly recorded or a repeat of a recorded request id.
pub type WriteAck = oneshot::Sender<Result<bool, LedgerError>>;

#[derive(Debug)]
pub struct WriteJob {
    pub event: UsageEvent,
    /// The nine spend windows of the event (scope × window at the reservation instant).
    pub keys: Vec<CellKey>,
    /// Lease consumed (PostgreSQL).
    pub takes: LeaseTakes,
    pub ack: Option<WriteAck>,
}

// Events are the common message; boxing them would cost an allocation per settle.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum WriterMsg {
    Event(WriteJob),
    Correct {
        request_id: String,
        exact: Money,
        /// The outcome a `provisional` event gets once its cost is exact.
        outcome: Outcome,
        /// Reconciliation's marker (when, evidence), stored with the new cost.
        reconciled: Option<(DateTime<Utc>, String)>,
        /// PostgreSQL: this instance's lease consumed by a correction that raised spend.
        takes: LeaseTakes,
        ack: oneshot::Sender<Result<Option<Correction>, LedgerError>>,
    },
    /// `last_used_at` of virtual keys, batched (not worth a transaction of its own).
    TouchKeys(Vec<(String, DateTime<Utc>)>),
    /// Refusal counts gathered since the last flush, added to their rows (`refusals.rs`).
    Refusals(Vec<crate::refusals::RefusalCount>),
    /// Acknowledged once everything queued before it is committed.
    Flush(oneshot::Sender<()>),
    /// The journal went from empty to non-empty: wake the writer (SQLite).
    Kick,
    /// PostgreSQL: record a request about to be forwarded (its provisional event at the worst
    /// case); acknowledged once committed.
    Hold {
        event: UsageEvent,
        ack: oneshot::Sender<Result<(), LedgerError>>,
    },
    /// PostgreSQL: the generation id of a request in flight.
    InFlightGeneration {
        request_id: String,
        generation_id: String,
    },
    /// PostgreSQL: a request in flight ended without an event (released).
    InFlightEnded(String),
}

pub type WriterTx = mpsc::UnboundedSender<WriterMsg>;

/// Most messages one transaction takes; bounds latency under a flood.
pub const MAX_BATCH: usize = 8192;

/// Spend deltas of one batch, summed per window key.
#[derive(Debug, Default)]
pub struct SpendDeltas(pub HashMap<CellKey, Money>);

impl SpendDeltas {
    pub fn add(&mut self, keys: &[CellKey], amount: Money) {
        for k in keys {
            let e = self.0.entry(k.clone()).or_insert(Money::ZERO);
            *e = e.checked_add(amount).unwrap_or(*e);
        }
    }

    /// Sorted by the text of (scope, scope id, window, start), byte-wise: the order every
    /// PostgreSQL path locks `budget_windows` rows in (`ORDER BY … COLLATE "C"`), so concurrent
    /// writers and lease returns never deadlock.
    pub fn sorted(self) -> Vec<(CellKey, Money)> {
        let mut v: Vec<_> = self.0.into_iter().filter(|(_, m)| !m.is_zero()).collect();
        v.sort_by(|a, b| lock_order(&a.0).cmp(&lock_order(&b.0)));
        v
    }
}

/// Event costs summed per distinct set of windows before they are spread over the nine
/// counters: every event of one member on one day has the same nine, so a batch adds nine
/// counters per member-day rather than per event (the writer's hot loop).
#[derive(Debug, Default)]
pub struct EventSpend(FastMap<MemberDay, (Vec<CellKey>, Money)>);

/// Member, team and org ids and the starts of the daily, weekly and monthly windows.
type MemberDay = (Id, Id, Id, [NaiveDate; 3]);

impl EventSpend {
    pub fn add(&mut self, keys: &[CellKey], amount: Money, deltas: &mut SpendDeltas) {
        // `CellKey::all_for`: member, team, org × daily, weekly, monthly.
        let [m, _, _, t, _, _, o, _, _] = keys else {
            deltas.add(keys, amount);
            return;
        };
        let group = (
            m.id.clone(),
            t.id.clone(),
            o.id.clone(),
            [keys[0].start, keys[1].start, keys[2].start],
        );
        let e = self
            .0
            .entry(group)
            .or_insert_with(|| (keys.to_vec(), Money::ZERO));
        e.1 = e.1.checked_add(amount).unwrap_or(e.1);
    }

    /// Spreads the sums over their counters.
    pub fn into_deltas(self, deltas: &mut SpendDeltas) {
        for (keys, amount) in self.0.into_values() {
            deltas.add(&keys, amount);
        }
    }
}

/// A cost correction worked out from the recorded event: what both writers store and how far
/// they move the nine spend counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCorrection {
    pub correction: Correction,
    /// The event's outcome afterwards.
    pub outcome: Outcome,
    /// The nine spend windows the event counted against.
    pub keys: Vec<CellKey>,
    /// `exact - previous`, added to every window in `keys`.
    pub delta: Money,
}

/// The one correction rule both writers apply to a recorded event: the cost becomes `exact`,
/// every window the event counted against moves by the difference, and a `provisional` event
/// takes `outcome` (any other outcome stays). A difference that overflows is an error, and the
/// event is then left as it is.
pub fn plan_correction(
    ev: &UsageEvent,
    exact: Money,
    outcome: Outcome,
) -> Result<PlannedCorrection, LedgerError> {
    let previous = ev.usage.cost;
    let delta = exact.checked_sub(previous).ok_or_else(|| {
        LedgerError::Invalid(format!(
            "amount overflow correcting {}: {exact} - {previous}",
            ev.usage.request_id
        ))
    })?;
    let outcome = match ev.usage.outcome {
        Outcome::Provisional => outcome,
        other => other,
    };
    let keys = event_cells(ev);
    Ok(PlannedCorrection {
        correction: Correction { previous, exact },
        outcome,
        keys,
        delta,
    })
}

/// The spend windows an event counts against: member, team and org × daily, weekly, monthly at
/// its reservation instant; an org-level event ([`crate::model::ORG_LEVEL`]) only the org's.
pub fn event_cells(ev: &UsageEvent) -> Vec<CellKey> {
    let org = Id::from(ev.org_id.as_str());
    if ev.is_org_level() {
        return orteam_core::Window::ALL
            .into_iter()
            .map(|w| CellKey::new(crate::model::BudgetScope::Org, org.clone(), w, ev.time))
            .collect();
    }
    CellKey::all_for(
        &Id::from(ev.member_id.as_str()),
        &Id::from(ev.team_id.as_str()),
        &org,
        ev.time,
    )
}

/// A planned correction (`None`: no such event).
pub type CorrectionResult = Result<Option<PlannedCorrection>, LedgerError>;

/// What a committed batch means for the engine and the waiters.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Per event job, in order: `true` when newly recorded.
    pub inserted: Vec<bool>,
    pub corrections: Vec<CorrectionResult>,
    /// PostgreSQL windows whose lease was no longer ours.
    pub lost_leases: Vec<i64>,
}

/// After a commit (or a failure), updates the engine and answers every waiter.
pub fn finish_batch(
    engine: Option<&BudgetEngine>,
    batch: Vec<WriterMsg>,
    result: Result<BatchOutcome, LedgerError>,
) {
    match result {
        Ok(out) => {
            if let Some(e) = engine {
                for id in &out.lost_leases {
                    e.lease_lost(*id);
                }
            }
            let mut inserted = out.inserted.into_iter();
            let mut corrections = out.corrections.into_iter();
            for msg in batch {
                match msg {
                    WriterMsg::Event(job) => {
                        let new = inserted.next().unwrap_or(false);
                        if !new && let Some(e) = engine {
                            // A repeat of a recorded request id: undo the in-memory charge.
                            e.refund(&job.keys, job.event.usage.cost, &job.takes);
                        }
                        if let Some(ack) = job.ack {
                            let _ = ack.send(Ok(new));
                        }
                    }
                    WriterMsg::Correct { ack, .. } => {
                        let r = corrections.next().unwrap_or(Ok(None));
                        let r = r.map(|c| {
                            c.map(|p| {
                                if let Some(e) = engine {
                                    e.adjust_spent(&p.keys, p.delta);
                                }
                                p.correction
                            })
                        });
                        let _ = ack.send(r);
                    }
                    WriterMsg::Hold { ack, .. } => {
                        let _ = ack.send(Ok(()));
                    }
                    WriterMsg::TouchKeys(_)
                    | WriterMsg::Refusals(_)
                    | WriterMsg::Kick
                    | WriterMsg::InFlightGeneration { .. }
                    | WriterMsg::InFlightEnded(_) => {}
                    WriterMsg::Flush(ack) => {
                        let _ = ack.send(());
                    }
                }
            }
        }
        Err(err) => {
            // The in-memory charge stays (conservative: never overspend); the caller learns
            // that the event is not durable.
            tracing::error!(error = %err, "ledger batch write failed");
            let text = err.to_string();
            for msg in batch {
                match msg {
                    WriterMsg::Event(job) => {
                        if let Some(ack) = job.ack {
                            let _ = ack.send(Err(LedgerError::Storage {
                                op: "writing usage events",
                                source: text.clone().into(),
                            }));
                        }
                    }
                    WriterMsg::Correct { ack, .. } => {
                        let _ = ack.send(Err(LedgerError::Storage {
                            op: "correcting a cost",
                            source: text.clone().into(),
                        }));
                    }
                    WriterMsg::Hold { ack, .. } => {
                        let _ = ack.send(Err(LedgerError::Storage {
                            op: "recording a request in flight",
                            source: text.clone().into(),
                        }));
                    }
                    WriterMsg::TouchKeys(_)
                    | WriterMsg::Refusals(_)
                    | WriterMsg::Kick
                    | WriterMsg::InFlightGeneration { .. }
                    | WriterMsg::InFlightEnded(_) => {}
                    WriterMsg::Flush(ack) => {
                        let _ = ack.send(());
                    }
                }
            }
        }
    }
}

fn lock_order(k: &CellKey) -> (&'static str, &str, &'static str, chrono::NaiveDate) {
    (k.scope.as_str(), &k.id, k.window.as_str(), k.start)
}

/// The SQL ordering matching [`SpendDeltas::sorted`].
pub const WINDOW_LOCK_ORDER: &str =
    "scope COLLATE \"C\", scope_id COLLATE \"C\", win COLLATE \"C\", window_start";
