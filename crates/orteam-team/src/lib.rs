//! Team as code: the declarative team file ([`file`]), and — built on the ledger and the
//! OpenRouter client — plan/apply, rotation, revocation and reports.

pub mod file;

pub use file::{ResolvedTeam, TeamFileError};
