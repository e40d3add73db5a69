//! Every environment variable orteam reads, in one place (names only; each reader parses its
//! own). Code that reads or sets one of these uses the constant, never the spelled-out name.

// Upstream (OpenRouter or the simulator).

/// Base URL of the OpenRouter API (default `https://openrouter.ai/api/v1`).
pub const OPENROUTER_BASE_URL: &str = "OPENROUTER_BASE_URL";
/// The gateway's shared inference key (sent upstream for members without their own key; used
/// to look up `/generation` of its requests).
pub const OPENROUTER_API_KEY: &str = "OPENROUTER_API_KEY";
/// The OpenRouter management (provisioning) key used to list, create and delete keys.
pub const OPENROUTER_PROVISIONING_KEY: &str = "OPENROUTER_PROVISIONING_KEY";
/// Set (to anything) to give `orteam mcp` its write tools.
pub const OPENROUTER_ADMIN_ALLOW_WRITE: &str = "OPENROUTER_ADMIN_ALLOW_WRITE";
/// The shared key's OpenRouter hash, when it cannot be derived (see docs/insight.md).
pub const ORTEAM_SHARED_KEY_HASH: &str = "ORTEAM_SHARED_KEY_HASH";

// Ledger.

/// Ledger database URL (default `sqlite://orteam.db`).
pub const ORTEAM_DATABASE_URL: &str = "ORTEAM_DATABASE_URL";
/// Base64 of the 32-byte AES-256-GCM key that encrypts upstream key secrets at rest.
pub const ORTEAM_SECRET_KEY: &str = "ORTEAM_SECRET_KEY";

// Servers.

/// The gateway's admin token (`orteam serve` requires it for the admin API and dashboard;
/// `orteam top` sends it).
pub const ORTEAM_ADMIN_TOKEN: &str = "ORTEAM_ADMIN_TOKEN";
/// Bearer token of the gateway's `/metrics`.
pub const ORTEAM_METRICS_TOKEN: &str = "ORTEAM_METRICS_TOKEN";
/// The single sign-on client's secret at the OpenID provider (`[sso] client_secret_env`
/// names another variable).
pub const ORTEAM_SSO_CLIENT_SECRET: &str = "ORTEAM_SSO_CLIENT_SECRET";
/// The key that encrypts sign-in session cookies (at least 32 bytes; the same on every gateway
/// instance so a session works on all of them; `[sso] session_key_env` names another variable).
pub const ORTEAM_SESSION_KEY: &str = "ORTEAM_SESSION_KEY";
/// Bearer token of `orteam mcp --http`.
pub const ORTEAM_MCP_TOKEN: &str = "ORTEAM_MCP_TOKEN";
/// The simulator's management (provisioning) key.
pub const ORTEAM_SIM_PROVISIONING_KEY: &str = "ORTEAM_SIM_PROVISIONING_KEY";

// CLI.

/// A member's own `ot-…` key (`orteam me`).
pub const ORTEAM_KEY: &str = "ORTEAM_KEY";
/// A named `ota-…` admin token the CLI and the MCP team tools act as (its role is enforced).
pub const ORTEAM_TOKEN: &str = "ORTEAM_TOKEN";

/// Log filter, `tracing_subscriber::EnvFilter` syntax (default `info`).
pub const ORTEAM_LOG: &str = "ORTEAM_LOG";
/// A gateway instance's stable name on a shared PostgreSQL ledger (default: a random UUID per
/// start). With it, a restarted instance takes back at once what its previous process left:
/// its leases, and its requests in flight (charged provisionally). Two live instances must
/// never share one.
pub const ORTEAM_INSTANCE_ID: &str = "ORTEAM_INSTANCE_ID";
/// File that `orteam serve` appends each key it rotates (its new secret) to.
pub const ORTEAM_ROTATION_SECRETS_OUT: &str = "ORTEAM_ROTATION_SECRETS_OUT";
/// Testing aid: shifts the CLI's clock by this many seconds (negative allowed), so tests can
/// reach a rotation or the end of a grace period without waiting. Never set it in production.
pub const ORTEAM_CLOCK_OFFSET_SECONDS: &str = "ORTEAM_CLOCK_OFFSET_SECONDS";

// Tests and benchmarks only.

/// PostgreSQL URL the integration tests use (default `postgres://postgres@127.0.0.1:5432/test`).
pub const ORTEAM_TEST_DATABASE_URL: &str = "ORTEAM_TEST_DATABASE_URL";

/// The standard OpenTelemetry variable that turns the gateway's trace export on (the other
/// `OTEL_*` variables it honours are listed in docs/operations.md).
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Every variable a command of the binary may read, with a few words on what it is for: the
/// "Environment:" section of each command's `--help` is made from this table, so the help and
/// the names above cannot drift apart.
pub const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        OPENROUTER_BASE_URL,
        "OpenRouter API base URL (default https://openrouter.ai/api/v1)",
    ),
    (
        OPENROUTER_API_KEY,
        "the gateway's shared inference key (sk-or-v1-…)",
    ),
    (
        OPENROUTER_PROVISIONING_KEY,
        "OpenRouter management (provisioning) key",
    ),
    (
        OPENROUTER_ADMIN_ALLOW_WRITE,
        "set to 1 to enable the MCP write tools",
    ),
    (
        ORTEAM_SHARED_KEY_HASH,
        "the shared key's OpenRouter hash, if it cannot be derived",
    ),
    (
        ORTEAM_DATABASE_URL,
        "ledger database: sqlite://PATH or postgres://…",
    ),
    (
        ORTEAM_SECRET_KEY,
        "base64 of the 32-byte key that encrypts upstream secrets at rest",
    ),
    (ORTEAM_ADMIN_TOKEN, "the gateway's bootstrap admin token"),
    (ORTEAM_METRICS_TOKEN, "Bearer token of /metrics"),
    (ORTEAM_MCP_TOKEN, "Bearer token of `orteam mcp --http`"),
    (
        ORTEAM_SIM_PROVISIONING_KEY,
        "the simulator's management key",
    ),
    (ORTEAM_KEY, "your own ot-… key"),
    (
        ORTEAM_TOKEN,
        "a named ota-… admin token to act as (its role is enforced)",
    ),
    (
        ORTEAM_INSTANCE_ID,
        "this gateway's stable name on a shared PostgreSQL ledger",
    ),
    (
        ORTEAM_ROTATION_SECRETS_OUT,
        "file new secrets of rotated keys are appended to",
    ),
    (
        OTEL_EXPORTER_OTLP_ENDPOINT,
        "OTLP/HTTP endpoint: turns trace export on",
    ),
    (
        ORTEAM_LOG,
        "log filter (tracing EnvFilter syntax); overrides -v",
    ),
];

/// The description of `name` in [`DESCRIPTIONS`].
pub fn describe(name: &str) -> Option<&'static str> {
    DESCRIPTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_described_once() {
        for (i, (name, about)) in DESCRIPTIONS.iter().enumerate() {
            assert!(!about.is_empty(), "{name}");
            assert!(
                DESCRIPTIONS[i + 1..].iter().all(|(n, _)| n != name),
                "{name} twice"
            );
        }
    }
}
