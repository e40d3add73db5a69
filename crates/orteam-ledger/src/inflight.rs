//! Requests in flight: the durable record of a hold between forwarding and settling.
//!
//! Why: a reservation lives in memory, but upstream bills a request as soon as it runs. If the
//! process dies between forwarding and settling, the money upstream billed must still reach
//! the ledger, and no budget may grant it again. So before a request is forwarded its hold
//! (member, budgets, worst case, request id, model, keys) is recorded durably — on SQLite as a
//! line of the write-ahead journal (one grouped `write(2)`), on PostgreSQL as a row committed by
//! the group-commit writer — and the generation id is added once upstream's headers reveal it.
//! The settled event (or a release, when nothing was generated) ends the record.
//!
//! A record left without its end was in flight when its process died. It is **resolved** by the
//! next process to start (SQLite: at the journal replay, before the durable spend is loaded;
//! PostgreSQL: at start for this instance id, and whenever an instance's heartbeat lapses,
//! before its leases go back to the budgets): it becomes a provisional usage event at the
//! worst case, counted against every budget it was held against. Reconciliation then corrects
//! it: from `/generation` when the id is known (retrying until upstream knows it), otherwise
//! from `/activity`.

/// What a start (or a reclaim) resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Settled events a dead process had journaled, committed now (SQLite).
    pub events: usize,
    /// Requests in flight charged provisionally at their worst case.
    pub in_flight: usize,
}

impl Resolved {
    pub(crate) fn log(&self) {
        if self.in_flight > 0 {
            tracing::warn!(
                in_flight = self.in_flight,
                "charged requests a dead gateway had in flight provisionally at their worst case; reconciliation corrects them from upstream"
            );
        }
    }
}
