//! The reservation guard.

use chrono::{DateTime, Utc};
use orteam_core::Money;

use crate::Ledger;
use crate::budget::engine::Id;
use crate::error::LedgerError;
use crate::model::Usage;

/// Money held against every budget that applies to a member, until [`Reservation::settle`] or
/// [`Reservation::release`].
///
/// Both consume the reservation, so neither can run twice; dropping it unsettled (a client
/// disconnect, a panic, an early `?`) releases the hold. Releasing is a memory operation on both
/// backends, so `Drop` does it inline. A reservation nobody settles or drops (leaked with
/// `mem::forget`, or held past the TTL) is reclaimed after the reservation TTL.
#[must_use = "a reservation holds budget until it is settled or released"]
pub struct Reservation {
    pub(crate) id: u64,
    pub(crate) member: Id,
    pub(crate) team: Id,
    pub(crate) org: Id,
    pub(crate) amount: Money,
    pub(crate) at: DateTime<Utc>,
    pub(crate) ledger: Option<Ledger>,
    /// The hold's in-flight record, once made ([`Reservation::record_in_flight`]).
    pub(crate) in_flight: Option<InFlight>,
}

/// Where a reservation's in-flight record is.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub request_id: String,
    /// SQLite serving: the hold's slot in the in-flight slot file (`crate::hold_slots`), when
    /// it has one (else it is a journal line).
    pub slot: Option<u32>,
    /// Set once the reservation is settled, released or dropped, so a generation id sent late
    /// (PostgreSQL streams) is then not sent at all. Made only when such a send is scheduled:
    /// nothing is allocated for it on the other requests' path.
    pub ended: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// The result of a settle, returned once the event is durably committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub request_id: String,
    pub cost: Money,
    /// `true` when this request id had already been recorded: nothing was charged again.
    pub duplicate: bool,
}

/// How a [`Reservation::settle_journaled`] made its event durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Appended to the write-ahead journal (survives `kill -9`); the database has it within
    /// milliseconds, and a restart replays it. Whether the request id was a repeat is decided
    /// then (a repeat is charged once either way).
    Journaled,
    /// Committed to the database (no journal here, or the journal could not take it).
    Committed { duplicate: bool },
}

impl Reservation {
    pub fn amount(&self) -> Money {
        self.amount
    }
    pub fn member_id(&self) -> &str {
        &self.member
    }
    pub fn team_id(&self) -> &str {
        &self.team
    }
    pub fn org_id(&self) -> &str {
        &self.org
    }
    /// When the reservation was made; the usage counts against the windows current then.
    pub fn reserved_at(&self) -> DateTime<Utc> {
        self.at
    }

    /// Records durably, before the request is forwarded, that it is in flight: `usage` describes
    /// the request (id, model, keys, route); it is charged at this reservation's amount if the
    /// process dies before the settle. Fails when the record cannot be made durable (a broken
    /// journal, an unreachable database): the request must then not be forwarded.
    pub async fn record_in_flight(&mut self, usage: Usage) -> Result<(), LedgerError> {
        let Some(ledger) = self.ledger.clone() else {
            return Err(LedgerError::Closed);
        };
        let request_id = usage.request_id.clone();
        let slot = ledger.record_in_flight(self, usage).await?;
        self.in_flight = Some(InFlight {
            request_id,
            slot,
            ended: Default::default(),
        });
        Ok(())
    }

    /// Adds upstream's generation id to the in-flight record, so a crash before the settle is
    /// corrected exactly from `/generation`. Best effort, and the caller never waits: on
    /// SQLite it is written at once in the background; on PostgreSQL it goes with the next
    /// group commit. For a long answer (a stream).
    pub fn record_generation_id(&self, generation_id: &str) {
        if let (Some(ledger), Some(f)) = (&self.ledger, &self.in_flight) {
            ledger.record_in_flight_generation(f, generation_id, true);
        }
    }

    /// Like [`Reservation::record_generation_id`], but the id is only written with the next
    /// journal write, normally this request's own settle a moment later. For an answer read
    /// whole before it is settled, where an extra write per request would buy a crash window
    /// of one body read (a hold that loses its id is charged at its worst case and repaired
    /// from `/activity`).
    pub fn note_generation_id(&self, generation_id: &str) {
        if let (Some(ledger), Some(f)) = (&self.ledger, &self.in_flight) {
            ledger.record_in_flight_generation(f, generation_id, false);
        }
    }

    /// Records `usage` and turns the hold into spend of exactly `usage.cost`, returning once the
    /// event is committed. A cost above the reserved amount is still recorded in full (the
    /// gateway reserves an upper bound, so this only happens if it under-reserved).
    pub async fn settle(mut self, usage: Usage) -> Result<Settled, LedgerError> {
        let Some(ledger) = self.ledger.take() else {
            return Err(LedgerError::Closed);
        };
        ledger.settle_reservation(&self, usage).await
    }

    /// Like [`Reservation::settle`], but returns as soon as the event is durable: on a
    /// serving SQLite ledger that is one append to the write-ahead journal instead of a
    /// database commit (the gateway's hot path); elsewhere it waits for the commit.
    pub async fn settle_journaled(mut self, usage: Usage) -> Result<Durability, LedgerError> {
        let Some(ledger) = self.ledger.take() else {
            return Err(LedgerError::Closed);
        };
        ledger.settle_reservation_journaled(&self, usage).await
    }

    /// Frees the hold without recording anything (the request never reached the upstream).
    pub fn release(mut self) {
        if let Some(l) = self.ledger.take() {
            l.release_hold(self.id);
            if let Some(f) = self.in_flight.take() {
                l.end_in_flight(&f);
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(ended) = self.in_flight.as_ref().and_then(|f| f.ended.get()) {
            ended.store(true, std::sync::atomic::Ordering::Release);
        }
        if let Some(l) = self.ledger.take() {
            l.release_hold(self.id);
            if let Some(f) = self.in_flight.take() {
                l.end_in_flight(&f);
            }
        }
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("id", &self.id)
            .field("member", &self.member)
            .field("amount", &self.amount)
            .field("at", &self.at)
            .finish()
    }
}
