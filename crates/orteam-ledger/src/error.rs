//! The ledger's error types. Display never contains a secret or a raw database message: storage
//! failures say which operation failed, and the driver error is only reachable as `source()`.

use chrono::{DateTime, Utc};
use orteam_core::{Money, Window};

use crate::model::BudgetScope;

/// Everything that can go wrong in the ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A reservation would take a budget over its limit.
    #[error(transparent)]
    BudgetExceeded(Box<BudgetExceeded>),
    /// The member does not exist.
    #[error("unknown member {0:?}")]
    UnknownMember(String),
    /// The member has been removed and can no longer spend.
    #[error("member {0:?} has been removed")]
    MemberRemoved(String),
    /// A referenced entity does not exist.
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    /// The input is not acceptable (negative amount, bad id, …).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// An upstream secret must be stored but no `ORTEAM_SECRET_KEY` is configured.
    #[error(
        "no encryption key: set ORTEAM_SECRET_KEY to a base64-encoded 32-byte key to store upstream key secrets"
    )]
    SecretKeyMissing,
    /// The configured encryption key is malformed.
    #[error("ORTEAM_SECRET_KEY must be base64 of exactly 32 bytes")]
    SecretKeyInvalid,
    /// A stored secret could not be decrypted (wrong key or tampered data).
    #[error("stored secret {0:?} could not be decrypted with the configured key")]
    Decrypt(String),
    /// Another process already serves this SQLite database.
    #[error("the ledger database {path} is already being served by another process")]
    AlreadyServing { path: String },
    /// Budget operations need a ledger opened with [`crate::Role::Serving`].
    #[error("this operation needs a ledger opened in the serving role")]
    NotServing,
    /// A command that reads an existing ledger was pointed at a SQLite file that does not exist.
    #[error(
        "no ledger at {path}; set ORTEAM_DATABASE_URL (or --database-url) to your ledger, or run `orteam team apply` to create one"
    )]
    NoLedger { path: String },
    /// A SQLite file cannot be created because its directory does not exist.
    #[error("cannot create the ledger {path}: the directory {dir} does not exist")]
    MissingDirectory { path: String, dir: String },
    /// The database URL is not understood.
    #[error(
        "unsupported ledger url {0:?}: expected sqlite://PATH, a file path, sqlite::memory: or postgres://…"
    )]
    UnsupportedUrl(String),
    /// The database was migrated by a newer orteam: this one would misread it.
    #[error(
        "the ledger's schema is at version {found}, newer than this orteam understands (up to version {supported}): it was upgraded by a newer orteam. Run that version or a later one, or restore a backup taken before the upgrade"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// The database's schema is older than this process migrated it to (it was replaced under
    /// a running process, e.g. by a restore).
    #[error(
        "the ledger's schema is at version {found} but this orteam runs version {supported}: restart it to migrate"
    )]
    SchemaBehind { found: i64, supported: i64 },
    /// The SQLite file this process opened is no longer at its path (removed or replaced).
    #[error("the ledger database file {path} was removed or replaced while in use")]
    DatabaseFileGone { path: String },
    /// Applying a migration failed.
    #[error("schema migration {version} ({name}) failed")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database reported an error; `op` names what the ledger was doing.
    #[error("ledger storage error while {op}")]
    Storage {
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Stored data could not be decoded (corrupt money text, unknown enum value…).
    #[error("corrupt ledger data: {0}")]
    Corrupt(String),
    /// The ledger has been shut down.
    #[error("the ledger is shut down")]
    Closed,
}

impl LedgerError {
    pub(crate) fn storage(
        op: &'static str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        LedgerError::Storage {
            op,
            source: Box::new(e),
        }
    }

    /// The budget that was exhausted, when this is a budget denial.
    pub fn budget_exceeded(&self) -> Option<&BudgetExceeded> {
        match self {
            LedgerError::BudgetExceeded(b) => Some(b),
            _ => None,
        }
    }
}

/// A reservation was denied because one budget could not hold the amount.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error(
    "{scope} budget {scope_id:?} ({window}) exhausted: limit {limit}, spent {spent}, held {held}, requested {requested}; resets at {reset_at}"
)]
pub struct BudgetExceeded {
    pub scope: BudgetScope,
    pub scope_id: String,
    pub window: Window,
    /// The effective limit, including active raises.
    pub limit: Money,
    pub spent: Money,
    /// Amount held by in-flight reservations (on PostgreSQL: leased to gateway instances).
    pub held: Money,
    pub requested: Money,
    pub reset_at: DateTime<Utc>,
}

/// Why a virtual key was not accepted. Each reason is distinct so the gateway can say why, but
/// none of them carries the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Not of the form `ot-` + 12 + 40 base62 characters.
    #[error("malformed API key")]
    Malformed,
    /// No key with that public id, or the secret part does not match.
    #[error("invalid API key")]
    Invalid,
    #[error("API key has been revoked")]
    Revoked,
    #[error("API key has expired")]
    Expired,
    #[error("API key is disabled")]
    Disabled,
    #[error("the key's member has been removed")]
    MemberRemoved,
}
