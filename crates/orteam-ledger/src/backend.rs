//! [`AnyStore`]: the two backends behind one type, by enum dispatch of every storage trait.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use orteam_core::{Money, Window};

use crate::directory::{DirectoryChange, DirectoryData};
use crate::error::LedgerError;
use crate::model::{
    AdminToken, AuditEntry, NewAlert, NewAuditEntry, OutboxEntry, PendingCorrection, UsageEvent,
};
use crate::postgres::PgStore;
use crate::query::EventFilter;
use crate::sqlite::SqliteStore;
use crate::store::{
    AccessStore, BudgetStore, CorrectionStore, DirectoryStore, EventStore, OutboxStore,
    RefusalStore, WindowRow,
};

#[derive(Debug, Clone)]
pub(crate) enum AnyStore {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $e,
            AnyStore::Postgres($s) => $e,
        }
    };
}

impl AnyStore {
    /// The schema version the database records; fails when the database cannot be reached.
    pub(crate) async fn schema_version(&self) -> Result<i64, LedgerError> {
        match self {
            AnyStore::Sqlite(s) => s.schema_version().await,
            AnyStore::Postgres(s) => s.schema_version().await,
        }
    }

    /// The migrations this build applies to this backend.
    pub(crate) fn migrations(&self) -> &'static [crate::migrate::Migration] {
        match self {
            AnyStore::Sqlite(_) => crate::migrate::SQLITE,
            AnyStore::Postgres(_) => crate::migrate::POSTGRES,
        }
    }
}

impl DirectoryStore for AnyStore {
    async fn load_directory(&self) -> Result<DirectoryData, LedgerError> {
        dispatch!(self, s => s.load_directory().await)
    }
    async fn change_seq(&self) -> Result<i64, LedgerError> {
        dispatch!(self, s => s.change_seq().await)
    }
    async fn apply(&self, change: DirectoryChange, now: DateTime<Utc>) -> Result<(), LedgerError> {
        dispatch!(self, s => s.apply(change, now).await)
    }
}

impl EventStore for AnyStore {
    async fn events(&self, filter: EventFilter) -> Result<Vec<UsageEvent>, LedgerError> {
        dispatch!(self, s => s.events(filter).await)
    }
    async fn event(&self, request_id: String) -> Result<Option<UsageEvent>, LedgerError> {
        dispatch!(self, s => s.event(request_id).await)
    }
}

impl RefusalStore for AnyStore {
    async fn refusals(
        &self,
        filter: crate::refusals::RefusalFilter,
    ) -> Result<Vec<crate::refusals::RefusalCount>, LedgerError> {
        dispatch!(self, s => s.refusals(filter).await)
    }
}

impl BudgetStore for AnyStore {
    async fn window_rows(
        &self,
        starts: Vec<(Window, NaiveDate)>,
    ) -> Result<Vec<WindowRow>, LedgerError> {
        dispatch!(self, s => s.window_rows(starts).await)
    }
}

impl OutboxStore for AnyStore {
    async fn outbox_enqueue(
        &self,
        alerts: Vec<NewAlert>,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        dispatch!(self, s => s.outbox_enqueue(alerts, now).await)
    }
    async fn outbox_claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, LedgerError> {
        dispatch!(self, s => s.outbox_claim_due(now, until, limit).await)
    }
    async fn outbox_delivered(
        &self,
        alert_id: String,
        url: String,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        dispatch!(self, s => s.outbox_delivered(alert_id, url, now).await)
    }
    async fn outbox_failed(
        &self,
        alert_id: String,
        url: String,
        error: String,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> Result<(), LedgerError> {
        dispatch!(self, s => s.outbox_failed(alert_id, url, error, next_attempt_at, dead).await)
    }
    async fn outbox_entries(&self, pending_only: bool) -> Result<Vec<OutboxEntry>, LedgerError> {
        dispatch!(self, s => s.outbox_entries(pending_only).await)
    }
}

impl CorrectionStore for AnyStore {
    async fn queue_correction(
        &self,
        request_id: String,
        exact: Money,
        generation_id: Option<String>,
        now: DateTime<Utc>,
        evidence: Option<String>,
        new_event: Option<String>,
    ) -> Result<bool, LedgerError> {
        dispatch!(self, s => s.queue_correction(request_id, exact, generation_id, now, evidence, new_event).await)
    }
    async fn record_reconcile_run(
        &self,
        finished_at: DateTime<Utc>,
        source: String,
        result: String,
    ) -> Result<(), LedgerError> {
        dispatch!(self, s => s.record_reconcile_run(finished_at, source, result).await)
    }
    async fn last_reconcile_run(&self) -> Result<Option<crate::model::ReconcileRun>, LedgerError> {
        dispatch!(self, s => s.last_reconcile_run().await)
    }
    async fn pending_corrections(&self) -> Result<Vec<PendingCorrection>, LedgerError> {
        dispatch!(self, s => s.pending_corrections().await)
    }
    async fn mark_correction(
        &self,
        request_id: String,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        dispatch!(self, s => s.mark_correction(request_id, error, now).await)
    }
}

impl AccessStore for AnyStore {
    async fn token_insert(&self, token: AdminToken) -> Result<(), LedgerError> {
        dispatch!(self, s => s.token_insert(token).await)
    }
    async fn tokens(&self) -> Result<Vec<AdminToken>, LedgerError> {
        dispatch!(self, s => s.tokens().await)
    }
    async fn token(&self, id: String) -> Result<Option<AdminToken>, LedgerError> {
        dispatch!(self, s => s.token(id).await)
    }
    async fn token_update(
        &self,
        id: String,
        update: crate::model::AdminTokenUpdate,
    ) -> Result<bool, LedgerError> {
        dispatch!(self, s => s.token_update(id, update).await)
    }
    async fn token_revoke(&self, name: String, now: DateTime<Utc>) -> Result<bool, LedgerError> {
        dispatch!(self, s => s.token_revoke(name, now).await)
    }
    async fn audit_append(
        &self,
        entry: NewAuditEntry,
        now: DateTime<Utc>,
    ) -> Result<AuditEntry, LedgerError> {
        dispatch!(self, s => s.audit_append(entry, now).await)
    }
    async fn audit_entries(&self) -> Result<Vec<AuditEntry>, LedgerError> {
        dispatch!(self, s => s.audit_entries().await)
    }
}
