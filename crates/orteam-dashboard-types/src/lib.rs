//! The dashboard snapshot's data types: what `GET /admin/v1/dashboard` serves (built by
//! `orteam-web` from the ledger) and what `orteam top` reads. Plain data plus the pure functions
//! on it (display rounding, per-mille, alerts derived from a snapshot's rows), so a client of the
//! JSON depends on this crate and not on the server that produces it.
//!
//! - [`snapshot`]: [`Snapshot`] and its rows, [`Range`], [`SplitBy`].
//! - [`alerts`]: [`Alert`], [`Severity`]; [`rules`]: [`derive_alerts`].
//! - [`keys`]: the key table's rows ([`KeyRow`], [`KeyTotals`]).

pub mod alerts;
pub mod keys;
pub mod rules;
pub mod snapshot;

pub use alerts::{Alert, Severity};
pub use keys::{KeyMode, KeyRow, KeyTotals};
pub use orteam_core::{BudgetScope, Outcome};
pub use rules::{derive_alerts, reconcile_alerts, refusal_alerts};
pub use snapshot::{Range, Snapshot, SplitBy};
