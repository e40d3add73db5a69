//! `orteam team plan`: what it takes to make the ledger and OpenRouter match the team file.
//!
//! [`observe`] reads the current state (the ledger's directory, OpenRouter's keys, the model
//! catalog); [`plan`] is a pure function of the resolved team file, that state and the time,
//! returning a [`Plan`] of [`Change`]s in the order [`crate::apply`] executes them:
//! org → tiers → teams → members → budgets → keys → revocations → admin tokens → orphans and
//! strays.
//!
//! Key ownership needs no extra state (see [`crate::naming`]): a key at OpenRouter is
//! - **owned** when the ledger records its hash for a member;
//! - an **orphan** when it is named `orteam:<org>:…` but not recorded: orteam created it and
//!   then failed before recording it (its secret was never delivered), so apply deletes it and,
//!   if the member still needs a key, creates a new one;
//! - a **stray** otherwise (unless listed in `[org].keep_keys`): listed, deleted only by
//!   `apply --prune`.
//!
//! The module is split by job: `observe.rs` reads the world, `model.rs` holds the
//! plan's data types (and the `Op`s apply runs), `planner.rs` is the pure planner, and
//! `strays.rs` finds keys no member owns and keys nobody uses.

mod defence;
mod model;
mod observe;
mod planner;
mod strays;
#[cfg(test)]
mod tests;
mod tokens;

pub use model::{
    Action, Change, FieldChange, Plan, PlanOptions, RaiseInfo, Resource, RotationInfo, StrayKey,
    UnusedKey,
};
pub(crate) use model::{Op, UpstreamSettings};
pub use observe::{Observed, check_models, observe};
pub(crate) use planner::{MemberKeys, member_keys, retire_at};
pub use planner::{PENDING_DELIVERY_TTL, is_pending_delivery, plan};
pub use strays::{last_use_bound, strays};
