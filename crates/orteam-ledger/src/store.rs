//! The storage traits, one per area. Both backends implement every one ([`crate::sqlite`] and
//! [`crate::postgres`], one file per area), and only those files hold SQL; callers depend on the
//! traits through [`crate::backend::AnyStore`].
//!
//! The hot path is *not* behind them: reservations are served by the in-memory
//! [`crate::budget::engine::BudgetEngine`], events are written by a backend-specific
//! group-commit writer (which applies [`crate::events::plan_correction`], the one correction
//! rule), and PostgreSQL adds lease calls. Dispatch is an enum ([`crate::backend::AnyStore`])
//! rather than `dyn`: there are exactly two backends, the PostgreSQL-only lease calls need the
//! concrete type anyway, and native `async fn` in traits is not object-safe without boxing every
//! call.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use orteam_core::{Money, Window};

use crate::budget::engine::CellKey;
use crate::directory::{DirectoryChange, DirectoryData};
use crate::error::LedgerError;
use crate::model::{
    AdminToken, AdminTokenUpdate, AuditEntry, NewAlert, NewAuditEntry, OutboxEntry,
    PendingCorrection, UsageEvent,
};
use crate::query::EventFilter;

/// A `budget_windows` row.
#[derive(Debug, Clone)]
pub(crate) struct WindowRow {
    pub key: CellKey,
    pub spent: Money,
    /// Leased to instances (PostgreSQL; zero on SQLite).
    pub leased: Money,
}

/// The directory: orgs, teams, tiers, members, budgets, raises, keys, and the change log.
pub(crate) trait DirectoryStore: Send + Sync + 'static {
    /// The whole directory, with the change-log sequence it reflects.
    fn load_directory(&self) -> impl Future<Output = Result<DirectoryData, LedgerError>> + Send;
    /// The latest change-log sequence number.
    fn change_seq(&self) -> impl Future<Output = Result<i64, LedgerError>> + Send;
    /// Applies one directory change and appends it to the change log, atomically.
    fn apply(
        &self,
        change: DirectoryChange,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

/// Reading usage events (the writers insert them).
pub(crate) trait EventStore: Send + Sync + 'static {
    /// Events matching `filter`, oldest first unless `newest_first`.
    fn events(
        &self,
        filter: EventFilter,
    ) -> impl Future<Output = Result<Vec<UsageEvent>, LedgerError>> + Send;
    /// One event by request id.
    fn event(
        &self,
        request_id: String,
    ) -> impl Future<Output = Result<Option<UsageEvent>, LedgerError>> + Send;
}

/// Reading refusal counts (the writers add them, `refusals.rs`).
pub(crate) trait RefusalStore: Send + Sync + 'static {
    /// Rows matching `filter`, oldest minute first.
    fn refusals(
        &self,
        filter: crate::refusals::RefusalFilter,
    ) -> impl Future<Output = Result<Vec<crate::refusals::RefusalCount>, LedgerError>> + Send;
}

/// Durable budget spend (the writers move it; PostgreSQL's leases are in `postgres/lease.rs`).
pub(crate) trait BudgetStore: Send + Sync + 'static {
    /// Spend rows of the given window instances.
    fn window_rows(
        &self,
        starts: Vec<(Window, NaiveDate)>,
    ) -> impl Future<Output = Result<Vec<WindowRow>, LedgerError>> + Send;
}

/// The alert outbox (`alert_outbox`).
pub(crate) trait OutboxStore: Send + Sync + 'static {
    /// Records alerts, leaving an (alert id, URL) already recorded alone; how many were new.
    fn outbox_enqueue(
        &self,
        alerts: Vec<NewAlert>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, LedgerError>> + Send;
    /// Claims up to `limit` due rows no other sender holds, until `until`.
    fn outbox_claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OutboxEntry>, LedgerError>> + Send;
    fn outbox_delivered(
        &self,
        alert_id: String,
        url: String,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
    fn outbox_failed(
        &self,
        alert_id: String,
        url: String,
        error: String,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
    /// Every row (oldest first), or only those neither delivered nor dead.
    fn outbox_entries(
        &self,
        pending_only: bool,
    ) -> impl Future<Output = Result<Vec<OutboxEntry>, LedgerError>> + Send;
}

/// The queue of exact costs (`cost_corrections`); applying one goes through the writer.
pub(crate) trait CorrectionStore: Send + Sync + 'static {
    /// Queues (or replaces a pending) correction; an applied one stays. Whether the queue changed.
    fn queue_correction(
        &self,
        request_id: String,
        exact: Money,
        generation_id: Option<String>,
        now: DateTime<Utc>,
        evidence: Option<String>,
        new_event: Option<String>,
    ) -> impl Future<Output = Result<bool, LedgerError>> + Send;
    /// Queued and not applied, oldest first.
    fn pending_corrections(
        &self,
    ) -> impl Future<Output = Result<Vec<PendingCorrection>, LedgerError>> + Send;
    /// Records a reconciliation run's result, keeping the newest [`crate::model::RECONCILE_RUNS_KEPT`].
    fn record_reconcile_run(
        &self,
        finished_at: DateTime<Utc>,
        source: String,
        result: String,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
    /// The newest recorded reconciliation run.
    fn last_reconcile_run(
        &self,
    ) -> impl Future<Output = Result<Option<crate::model::ReconcileRun>, LedgerError>> + Send;
    /// Marks a queued correction applied (with the error that made it skipped, if any).
    fn mark_correction(
        &self,
        request_id: String,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

/// Named admin tokens and the audit log (`admin_tokens`, `audit_log`).
pub(crate) trait AccessStore: Send + Sync + 'static {
    /// Stores a new token (its hash only); a name a live token has is [`LedgerError::Invalid`]
    /// (revoked tokens free their name).
    fn token_insert(
        &self,
        token: AdminToken,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
    /// Every token, oldest first.
    fn tokens(&self) -> impl Future<Output = Result<Vec<AdminToken>, LedgerError>> + Send;
    /// One token by public id.
    fn token(
        &self,
        id: String,
    ) -> impl Future<Output = Result<Option<AdminToken>, LedgerError>> + Send;
    /// Changes a live token's role, teams, max_raise and expiry in place (by id); whether it
    /// was live.
    fn token_update(
        &self,
        id: String,
        update: AdminTokenUpdate,
    ) -> impl Future<Output = Result<bool, LedgerError>> + Send;
    /// Marks a live token (by name) revoked; whether one was.
    fn token_revoke(
        &self,
        name: String,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, LedgerError>> + Send;
    /// Appends one entry to the chain, serialised against every other writer (so concurrent
    /// writers on one PostgreSQL still form one chain).
    fn audit_append(
        &self,
        entry: NewAuditEntry,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<AuditEntry, LedgerError>> + Send;
    /// Every entry, in chain order (`seq`).
    fn audit_entries(&self) -> impl Future<Output = Result<Vec<AuditEntry>, LedgerError>> + Send;
}
