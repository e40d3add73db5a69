//! The crate's error type.

use orteam_ledger::LedgerError;
use orteam_openrouter::ClientError;

/// What went wrong while building a report, sending alerts or reconciling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InsightError {
    /// A ledger read or write failed.
    #[error("ledger: {op}")]
    Ledger {
        op: &'static str,
        #[source]
        source: LedgerError,
    },
    /// An OpenRouter call failed.
    #[error("OpenRouter: {op}")]
    Upstream {
        op: String,
        #[source]
        source: ClientError,
    },
    /// A key needed for the operation is not configured.
    #[error("{0}")]
    MissingKey(String),
    /// A bad argument (period, date, threshold).
    #[error("{0}")]
    Invalid(String),
    /// A JSON body could not be built.
    #[error("building a JSON body")]
    Json(#[from] serde_json::Error),
}

impl InsightError {
    pub(crate) fn ledger(op: &'static str) -> impl FnOnce(LedgerError) -> InsightError {
        move |source| InsightError::Ledger { op, source }
    }

    pub(crate) fn upstream(op: impl Into<String>) -> impl FnOnce(ClientError) -> InsightError {
        let op = op.into();
        move |source| InsightError::Upstream { op, source }
    }
}
