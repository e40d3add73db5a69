//! Team as code: the declarative team file ([`file`]), and — built on the ledger and the
//! OpenRouter client — [`plan`] / [`apply`], [`rotation`] and [`revoke`].
//!
//! Key names ([`naming`]) make every key orteam creates recognisable in the ledger and at
//! OpenRouter, which is what makes apply safe to repeat after a failure half-way.

pub mod apply;
pub mod error;
pub mod file;
pub mod naming;
pub mod plan;
pub mod revoke;
pub mod rotation;

pub use apply::{ApplyContext, ApplyReport, CollectSecrets, NewSecret, SecretKind, SecretSink};
pub use error::TeamError;
pub use file::{ResolvedTeam, TeamFileError};
pub use plan::{Action, Change, Observed, Plan, PlanOptions, Resource};
pub use revoke::{Revoked, revoke_member};
pub use rotation::{Rotated, rotate_due, rotate_member};
