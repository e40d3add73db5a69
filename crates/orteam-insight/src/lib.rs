//! Spend insight for orteam: who spent what, is that normal, and do orteam's figures match
//! OpenRouter's.
//!
//! - [`report`]: spend over a period grouped by any combination of member, team, model, day,
//!   provider and key, from the ledger (gateway traffic) and from OpenRouter's `/activity`
//!   (direct-mode keys), each row naming its source; [`weekly`]: the Monday team summary.
//! - [`anomaly`]: a day's spend of a member, key or model against its own trailing baseline
//!   (median + k·MAD with floors; see `docs/insight.md`).
//! - [`alerts`]: budget-threshold and anomaly alerts as JSON webhooks through a durable outbox
//!   in the ledger (once per threshold per window, retried with backoff).
//! - [`reconcile`]: every ledger event against `/generation`, every day/model/key total against
//!   `/activity`; provisional charges become exact.
//!
//! Money is [`orteam_core::Money`] everywhere; nothing here uses floats.

pub mod alerts;
pub mod anomaly;
pub mod error;
pub mod period;
pub mod progress;
pub mod reconcile;
pub mod report;
pub mod upstream;
pub mod weekly;

pub use alerts::{AlertsConfig, AlertsRun, run_alerts_loop, run_alerts_once};
pub use anomaly::{
    Anomaly, AnomalyConfig, AnomalyQuery, AnomalyReport, SubjectKind, anomalies_endpoint,
};
pub use error::InsightError;
pub use period::{Period, Range};
pub use progress::{NoProgress, Progress};
pub use reconcile::{
    ChangeKind, Corrections, ReconcileChange, ReconcileOptions, ReconcileReport, RecordedRun,
    reconcile, run_reconcile_loop,
};
pub use report::{Report, ReportOptions, ReportRow, Source, build_report};
pub use upstream::Upstream;
pub use weekly::{WeeklyReport, weekly_report};
