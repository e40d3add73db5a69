//! The hook for an anomaly detector the dashboards show the findings of: [`AnomalySource`]. The
//! alerts derived from a snapshot (budgets, keys, failures) are in `orteam-dashboard-types` and
//! re-exported here.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use orteam_ledger::Ledger;

pub use orteam_dashboard_types::alerts::{Alert, Severity};
pub use orteam_dashboard_types::rules::{BUDGET_WARN_PERMILLE, derive_alerts};

/// A boxed future, so [`AnomalySource`] stays object-safe without extra dependencies.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An anomaly detector the dashboards show the findings of (spikes, unusual models…). Wire one
/// in with [`crate::WebState::with_anomalies`]; without one the dashboards say that none is
/// configured.
pub trait AnomalySource: Send + Sync {
    /// Shown as the panel's source, e.g. `orteam-insight`.
    fn name(&self) -> &str;
    /// Anomalies as of `now`; an error is shown in the panel, not as a failed dashboard.
    fn anomalies<'a>(
        &'a self,
        ledger: &'a Ledger,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<Alert>, String>>;
}
