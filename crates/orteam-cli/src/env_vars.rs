//! Every environment variable orteam reads, in one place.

/// Base URL of the OpenRouter API (default `https://openrouter.ai/api/v1`).
pub const OPENROUTER_BASE_URL: &str = "OPENROUTER_BASE_URL";
/// The simulator's management (provisioning) key.
pub const ORTEAM_SIM_PROVISIONING_KEY: &str = "ORTEAM_SIM_PROVISIONING_KEY";
/// Bearer token of `orteam mcp --http`.
pub const ORTEAM_MCP_TOKEN: &str = "ORTEAM_MCP_TOKEN";
/// Log filter, `tracing_subscriber::EnvFilter` syntax (default `info`).
pub const ORTEAM_LOG: &str = "ORTEAM_LOG";
/// The gateway's admin token (`orteam serve` requires it for the admin API and dashboard;
/// `orteam top` sends it).
pub const ORTEAM_ADMIN_TOKEN: &str = "ORTEAM_ADMIN_TOKEN";
