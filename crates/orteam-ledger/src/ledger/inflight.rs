//! Requests in flight (see `crate::inflight`): recording holds before forwarding, their
//! generation ids, their end, and resolving what a dead process left.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::{Ledger, td};
use crate::budget::InFlight;
use crate::budget::Reservation;
use crate::budget::engine::CellKey;
use crate::error::LedgerError;
use crate::events::{WriteJob, WriterMsg};
use crate::inflight::Resolved;
use crate::journal::{HoldParts, HoldWrite};
use crate::model::{Outcome, Usage, UsageEvent};

impl Ledger {
    /// Records the hold of `r` as in flight, durably; returns its slot when it went to the
    /// in-flight slot file (SQLite serving).
    pub(crate) async fn record_in_flight(
        &self,
        r: &Reservation,
        mut usage: Usage,
    ) -> Result<Option<u32>, LedgerError> {
        let writer = self.writer()?;
        usage.cost = r.amount;
        usage.outcome = Outcome::Provisional;
        if let Some(journal) = &self.inner.journal {
            let hold = HoldParts {
                time: r.at,
                member: &r.member,
                team: &r.team,
                org: &r.org,
                usage: &usage,
            };
            return match journal.append_hold(&hold)? {
                HoldWrite::Slot(slot) => Ok(Some(slot)),
                HoldWrite::Line(seq) => {
                    journal
                        .written(seq)
                        .await
                        .map(|()| None)
                        .map_err(|()| LedgerError::Storage {
                            op: "recording a request in flight",
                            source: "the event journal could not be written".into(),
                        })
                }
            };
        }
        if self.inner.pg.is_none() {
            // SQLite without a journal (in memory, or turned off): nothing outlives the process
            // anyway, and a plain settle waits for its commit.
            return Ok(None);
        }
        let hold = UsageEvent {
            time: r.at,
            member_id: r.member.to_string(),
            team_id: r.team.to_string(),
            org_id: r.org.to_string(),
            usage,
            reconciled: None,
        };
        let (tx, rx) = oneshot::channel();
        writer
            .send(WriterMsg::Hold {
                event: hold,
                ack: tx,
            })
            .map_err(|_| LedgerError::Closed)?;
        rx.await.map_err(|_| LedgerError::Closed)??;
        Ok(None)
    }

    /// Adds `generation_id` to the in-flight record `f`. A hold in a slot gets it at once (a
    /// store into the mapped file). Else, with `prompt`, it is written at once by a task of its
    /// own (a stream may run for minutes, and a crash meanwhile is then corrected exactly),
    /// without the response waiting for it: until it is written, a crash charges the hold's
    /// worst case, repaired from `/activity`. Without, it rides with the next journal write
    /// (normally the request's own settle).
    pub(crate) fn record_in_flight_generation(
        &self,
        f: &InFlight,
        generation_id: &str,
        prompt: bool,
    ) {
        if let Some(journal) = &self.inner.journal {
            if let Some(seq) = journal.append_generation(&f.request_id, f.slot, generation_id)
                && prompt
                && let Ok(rt) = tokio::runtime::Handle::try_current()
            {
                let journal = Arc::clone(journal);
                rt.spawn(async move {
                    let _ = journal.written(seq).await;
                });
            }
            return;
        }
        if self.inner.pg.is_some()
            && let Ok(w) = self.writer()
        {
            let msg = WriterMsg::InFlightGeneration {
                request_id: f.request_id.clone(),
                generation_id: generation_id.to_owned(),
            };
            // PostgreSQL: see `LedgerOptions::stream_generation_after`. A whole answer settles
            // a moment later, and its event carries the id.
            if !prompt {
                return;
            }
            let after = self.inner.opts.stream_generation_after;
            match tokio::runtime::Handle::try_current() {
                Ok(rt) if !after.is_zero() => {
                    let (w, ended) = (w.clone(), Arc::clone(f.ended.get_or_init(Default::default)));
                    rt.spawn(async move {
                        tokio::time::sleep(after).await;
                        if !ended.load(std::sync::atomic::Ordering::Acquire) {
                            let _ = w.send(msg);
                        }
                    });
                }
                _ => {
                    let _ = w.send(msg);
                }
            }
        }
    }

    /// The request ended without an event (released): its record goes.
    pub(crate) fn end_in_flight(&self, f: &InFlight) {
        if let Some(journal) = &self.inner.journal {
            journal.close_hold(&f.request_id, f.slot, true);
        } else if self.inner.pg.is_some()
            && let Some(w) = &self.inner.writer
        {
            let _ = w.send(WriterMsg::InFlightEnded(f.request_id.clone()));
        }
    }

    /// The request's event was committed directly (not journaled): its journal hold is closed
    /// (PostgreSQL ends the record in the event's own transaction).
    pub(crate) fn settled_in_flight(&self, f: &InFlight) {
        if let Some(journal) = &self.inner.journal {
            journal.close_hold(&f.request_id, f.slot, false);
        }
    }

    /// Test-only switch (SQLite serving with a journal): every following journal write fails
    /// with ENOSPC, as on a full filesystem, where one cannot be made. Returns whether there is
    /// a journal to break.
    #[doc(hidden)]
    pub fn fail_journal_writes_for_tests(&self) -> bool {
        match &self.inner.journal {
            Some(j) => {
                j.fail_writes_for_tests();
                true
            }
            None => false,
        }
    }

    /// What resolving requests in flight has done in this process so far: at start, and (on
    /// PostgreSQL) for instances found dead since.
    pub fn resolved_in_flight(&self) -> Resolved {
        *self.inner.resolved.lock()
    }

    pub(super) fn add_resolved(&self, r: Resolved) {
        let mut total = self.inner.resolved.lock();
        total.events += r.events;
        total.in_flight += r.in_flight;
    }

    /// PostgreSQL: charges the holds dead instances left (with `own`, also those of a previous
    /// process under this instance id) provisionally at their worst case, then deletes them.
    /// Must run before the dead instances' leases are returned, so that their money is counted
    /// as spent before it can be granted again (it is briefly counted twice, never zero times).
    pub(super) async fn resolve_in_flight(
        &self,
        now: DateTime<Utc>,
        own: bool,
    ) -> Result<Resolved, LedgerError> {
        let Some(pg) = &self.inner.pg else {
            return Ok(Resolved::default());
        };
        let orphans = pg
            .orphaned_in_flight(&self.inner.opts.instance_id, now, own)
            .await?;
        if orphans.is_empty() {
            return Ok(Resolved::default());
        }
        let writer = self.writer()?;
        let ids: Vec<String> = orphans.iter().map(|e| e.usage.request_id.clone()).collect();
        let mut acks = Vec::with_capacity(orphans.len());
        for event in orphans {
            let (tx, rx) = oneshot::channel();
            let keys = CellKey::all_for(
                &event.member_id.as_str().into(),
                &event.team_id.as_str().into(),
                &event.org_id.as_str().into(),
                event.time,
            );
            writer
                .send(WriterMsg::Event(WriteJob {
                    event,
                    keys,
                    takes: Vec::new(),
                    ack: Some(tx),
                }))
                .map_err(|_| LedgerError::Closed)?;
            acks.push(rx);
        }
        let mut in_flight = 0;
        for rx in acks {
            if rx.await.map_err(|_| LedgerError::Closed)?? {
                in_flight += 1;
            }
        }
        pg.delete_in_flight(&ids).await?;
        let resolved = Resolved {
            events: 0,
            in_flight,
        };
        resolved.log();
        self.add_resolved(resolved);
        Ok(resolved)
    }

    /// PostgreSQL at start: resolve what a previous process under this id (and any dead
    /// instance) left, take back this id's old leases, then vouch for this instance.
    pub(super) async fn start_in_flight(&self) -> Result<(), LedgerError> {
        let Some(pg) = self.inner.pg.clone() else {
            return Ok(());
        };
        if self.inner.writer.is_none() {
            return Ok(());
        }
        let now = self.now();
        self.resolve_in_flight(now, true).await?;
        let reclaimed = pg.reclaim_own_leases(&self.inner.opts.instance_id).await?;
        if reclaimed > 0 {
            tracing::info!(
                leases = reclaimed,
                "returned the leases a previous process under this instance id held"
            );
        }
        pg.register_instance(
            &self.inner.opts.instance_id,
            now + td(self.inner.opts.lease_ttl),
        )
        .await
    }
}
