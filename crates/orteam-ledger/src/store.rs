//! The storage trait. Two implementations: [`crate::sqlite::SqliteStore`] and
//! [`crate::postgres::PgStore`].
//!
//! The trait covers what both backends do the same way (directory mutations and snapshot
//! loading, the change sequence, event reads, window spend rows). The hot path is *not* behind
//! it: reservations are served by the in-memory [`crate::budget::engine::BudgetEngine`], events
//! are written by a backend-specific group-commit writer, and PostgreSQL adds lease calls.
//!
//! Dispatch is an enum ([`AnyStore`]) rather than `dyn Store`: there are exactly two backends,
//! the PostgreSQL-only lease calls need the concrete type anyway, and native `async fn` in
//! traits is not object-safe without boxing every call.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use orteam_core::{Money, Window};

use crate::budget::engine::CellKey;
use crate::directory::{DirectoryChange, DirectoryData};
use crate::error::LedgerError;
use crate::model::UsageEvent;
use crate::query::EventFilter;

/// A `budget_windows` row.
#[derive(Debug, Clone)]
pub struct WindowRow {
    pub key: CellKey,
    pub spent: Money,
    /// Leased to instances (PostgreSQL; zero on SQLite).
    pub leased: Money,
}

pub trait Store: Send + Sync + 'static {
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
    /// Spend rows of the given window instances.
    fn window_rows(
        &self,
        starts: Vec<(Window, NaiveDate)>,
    ) -> impl Future<Output = Result<Vec<WindowRow>, LedgerError>> + Send;
}

#[derive(Debug, Clone)]
pub enum AnyStore {
    Sqlite(std::sync::Arc<crate::sqlite::SqliteStore>),
    Postgres(std::sync::Arc<crate::postgres::PgStore>),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $e,
            AnyStore::Postgres($s) => $e,
        }
    };
}

impl Store for AnyStore {
    async fn load_directory(&self) -> Result<DirectoryData, LedgerError> {
        dispatch!(self, s => s.load_directory().await)
    }
    async fn change_seq(&self) -> Result<i64, LedgerError> {
        dispatch!(self, s => s.change_seq().await)
    }
    async fn apply(&self, change: DirectoryChange, now: DateTime<Utc>) -> Result<(), LedgerError> {
        dispatch!(self, s => s.apply(change, now).await)
    }
    async fn events(&self, filter: EventFilter) -> Result<Vec<UsageEvent>, LedgerError> {
        dispatch!(self, s => s.events(filter).await)
    }
    async fn event(&self, request_id: String) -> Result<Option<UsageEvent>, LedgerError> {
        dispatch!(self, s => s.event(request_id).await)
    }
    async fn window_rows(
        &self,
        starts: Vec<(Window, NaiveDate)>,
    ) -> Result<Vec<WindowRow>, LedgerError> {
        dispatch!(self, s => s.window_rows(starts).await)
    }
}
