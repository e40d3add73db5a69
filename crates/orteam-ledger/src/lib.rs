//! orteam's ledger: exact money, budgets that hold under load, virtual keys and usage events,
//! on SQLite (embedded default) or PostgreSQL (several gateway instances).
//!
//! - [`Ledger::open`] picks the backend from the URL and applies migrations.
//! - Directory: orgs, teams, tiers, members, budgets (member ⊂ team ⊂ org; daily / weekly /
//!   monthly UTC windows, weeks start on Monday), temporary raises, virtual keys (`ot-…`, stored
//!   as SHA-256 only), upstream keys (secret encrypted with AES-256-GCM).
//! - [`Ledger::reserve`] → [`Reservation`] → [`Reservation::settle`] / [`Reservation::release`]:
//!   for every budget at every moment, `spent + held <= limit`.
//! - Queries for reports: [`Ledger::usage`], [`Ledger::daily_series`], [`Ledger::recent_events`]…
//!
//! See `DESIGN.md` in this crate for how the fast paths work and why.

pub mod audit;
mod backend;
pub mod backup;
pub mod budget;
pub mod directory;
pub mod env;
pub mod error;
pub mod events;
mod hold_slots;
mod inflight;
mod journal;
pub mod keys;
mod ledger;
pub mod migrate;
pub mod model;
pub(crate) mod postgres;
pub mod query;
pub mod refusals;
mod rows;
pub(crate) mod sqlite;
mod store;

pub use audit::{ChainProblem, ChainReport};
pub use budget::{Durability, Reservation, Settled};
pub use directory::Directory;
pub use error::{AuthError, BudgetExceeded, LedgerError};
pub use inflight::Resolved;
pub use keys::SecretKey;
pub use ledger::{Ledger, LedgerOptions, Reclaimed, Role, TokenRefused};
pub use model::*;
pub use orteam_core::{Money, Window};
pub use query::{DailyPoint, EventFilter, GroupBy, UsageGroup, UsageQuery};
pub use refusals::{Refusal, RefusalCount, RefusalFilter, RefusalKey, RefusalSummary};
