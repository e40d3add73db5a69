//! orteam's MCP server for the OpenRouter management API (a port of
//! `openrouter-admin-mcp` v0.7.3 on the official API, without its bugs).
//!
//! - [`McpConfig`]: the management (provisioning) key, base URL and write flag, usually from
//!   [`McpConfig::from_env`] (`OPENROUTER_PROVISIONING_KEY`, `OPENROUTER_BASE_URL`,
//!   `OPENROUTER_ADMIN_ALLOW_WRITE`).
//! - [`serve_stdio`] speaks MCP on stdin/stdout (stdout is the protocol channel; logs go to
//!   stderr); [`serve_http`] serves the streamable HTTP transport at `/mcp` behind a bearer
//!   token.
//! - [`OrteamMcp`] is the handler: 16 read tools ([`READ_TOOLS`]) always, 10 write tools
//!   ([`WRITE_TOOLS`]) only with writes enabled.
//! - With a ledger (`ORTEAM_DATABASE_URL`, [`McpConfig::database_url`]), the team tools
//!   ([`TeamTools`]): [`TEAM_READ_TOOLS`] always, [`TEAM_WRITE_TOOLS`] only with writes enabled.
//!
//! # Adding tools (e.g. the team tools)
//! Write them in any crate as a `#[rmcp::tool_router]` impl on that crate's own state type
//! `T`, then plug the router in with [`OrteamMcp::with_service_tools`] (always available) or
//! [`OrteamMcp::with_service_write_tools`] (registered only when writes are enabled; otherwise
//! hidden and refused with the how-to-enable message), and serve the result with
//! [`serve_stdio_with`], [`serve_http_with`] or [`serve_transport`]:
//!
//! ```ignore
//! let server = OrteamMcp::new(&config)?
//!     .with_service_tools(team.clone(), TeamTools::read_router())
//!     .with_service_write_tools(team, TeamTools::write_router());
//! orteam_mcp::serve_stdio_with(server).await?;
//! ```
//!
//! Routers on `OrteamMcp` itself (written inside this crate) go in with
//! [`OrteamMcp::with_tools`] / [`OrteamMcp::with_write_tools`].
//!
//! Tool results are text in the seed server's formats (money as `$` with 2/4/6 decimals from
//! exact decimals, `—` for missing values). Upstream failures, unknown ids and invalid
//! arguments are tool results with `isError: true`; calling a write tool on a read-only server
//! is a JSON-RPC error that says how to enable writes. The provisioning key never appears in a
//! result, an error or a log line.

mod config;
mod error;
mod format;
mod serve;
mod server;
mod tools;
mod upstream;

pub use config::{
    ALLOW_WRITE_ENV, BASE_URL_ENV, DATABASE_URL_ENV, ENABLE_WRITES_HINT, McpConfig,
    PROVISIONING_KEY_ENV, parse_flag,
};
pub use error::McpError;
pub use serve::{
    MCP_HTTP_PATH, serve_http, serve_http_with, serve_stdio, serve_stdio_with, serve_transport,
    startup_line,
};
pub use server::OrteamMcp;
pub use tools::team::{TEAM_READ_TOOLS, TEAM_WRITE_TOOLS, TeamTools};
pub use tools::{READ_TOOLS, WRITE_TOOLS};

/// Re-exported so crates adding tools build routers with the same rmcp version.
pub use rmcp;
