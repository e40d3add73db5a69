//! The crate's error type.

use crate::config::DATABASE_URL_ENV;

/// Why the MCP server could not be configured, started or kept running.
///
/// No variant carries the provisioning key: messages name the environment variable, never its
/// value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// A required setting is missing or invalid (the message says how to fix it).
    #[error("{0}")]
    Config(String),
    /// The OpenRouter client could not be built (e.g. an invalid base URL).
    #[error("cannot build the OpenRouter client: {0}")]
    Client(#[source] orteam_openrouter::ClientError),
    /// The MCP session could not start (e.g. the initialize handshake failed).
    #[error("MCP session failed to start: {0}")]
    Initialize(String),
    /// The MCP session ended with an error.
    #[error("MCP session failed: {0}")]
    Session(String),
    /// The ledger (`ORTEAM_DATABASE_URL`) could not be opened.
    #[error("cannot open the orteam ledger ({DATABASE_URL_ENV}): {0}")]
    Ledger(#[source] orteam_ledger::LedgerError),
    /// The HTTP transport failed (accepting or serving connections).
    #[error("MCP HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
}
