//! The orteam web dashboard, served by `orteam serve` at `/dashboard`.
//!
//! - [`pages`]: the page and its script and stylesheet, embedded in the binary with
//!   `include_str!` (no files needed at run time). They carry no data, so they need no token.
//! - [`api`]: `GET /dashboard` (mounted under `/admin/v1`, behind the admin API's principal
//!   check: a token, a member key, or a single sign-on session cookie): a
//!   [`snapshot::Snapshot`] of spend, budgets, keys, recent requests, alerts and anomalies as
//!   JSON, with server-side SVG charts ([`charts`], drawn with plotters) when asked for
//!   (`charts=svg`). The page polls it every 2 s; `orteam top` reads the same JSON.
//! - [`keys`]: the key table also printed by `orteam keys list`.
//!
//! See `README.md` in this crate for why the charts are drawn on the server.

pub mod alerts;
mod api;
pub mod charts;
pub mod insight;
pub mod keys;
pub mod snapshot;

pub use alerts::{Alert, AnomalySource, Severity};
pub use api::{WebError, WebState, api, pages};
pub use snapshot::{Range, Snapshot, SplitBy};

/// Path of the dashboard page.
pub const DASHBOARD_PATH: &str = "/dashboard";
/// Path of the snapshot JSON, relative to the admin API's `/admin/v1`.
pub const SNAPSHOT_PATH: &str = "/dashboard";
