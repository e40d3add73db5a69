//! [`McpConfig`]: what the server needs, from the environment or from the CLI.

use secrecy::SecretString;

use crate::McpError;

/// The management (provisioning) key the server uses. Required.
pub const PROVISIONING_KEY_ENV: &str = orteam_core::env::OPENROUTER_PROVISIONING_KEY;
/// Overrides the OpenRouter API base URL (default `https://openrouter.ai/api/v1`).
pub const BASE_URL_ENV: &str = orteam_core::env::OPENROUTER_BASE_URL;
/// `1`, `true` or `yes` (any case) registers the write tools.
pub const ALLOW_WRITE_ENV: &str = orteam_core::env::OPENROUTER_ADMIN_ALLOW_WRITE;

/// The orteam ledger's database URL; when set, the team tools are served.
pub const DATABASE_URL_ENV: &str = orteam_core::env::ORTEAM_DATABASE_URL;

/// How to enable the write tools, quoted in errors.
pub const ENABLE_WRITES_HINT: &str = "start the server with OPENROUTER_ADMIN_ALLOW_WRITE=1 in its environment (or `orteam mcp --allow-write`)";

/// Configuration of the MCP server.
///
/// `Debug` never prints the key.
#[derive(Clone)]
pub struct McpConfig {
    /// The OpenRouter management key (older name: provisioning key), `sk-or-v1-…`.
    pub provisioning_key: SecretString,
    /// The API base URL; `None` uses `https://openrouter.ai/api/v1`.
    pub base_url: Option<String>,
    /// Register the 10 write tools (key and guardrail create/update/delete/assign).
    pub allow_write: bool,
    /// Host names (or `host:port`) accepted in the `Host` header by [`crate::serve_http`];
    /// empty keeps rmcp's default (loopback names only, against DNS rebinding).
    pub http_allowed_hosts: Vec<String>,
    /// The orteam ledger (`sqlite://…` or `postgres://…`); `Some` adds the team tools.
    pub database_url: Option<String>,
    /// A named `ota-…` admin token (`ORTEAM_TOKEN`) the team tools act as, its role enforced;
    /// without one they act as an admin named `mcp` (whoever holds the database URL is one).
    pub token: Option<SecretString>,
}

impl std::fmt::Debug for McpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpConfig")
            .field("provisioning_key", &"[REDACTED]")
            .field("base_url", &self.base_url)
            .field("allow_write", &self.allow_write)
            .field("http_allowed_hosts", &self.http_allowed_hosts)
            .field("database_url", &self.database_url.as_ref().map(|_| "[set]"))
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl McpConfig {
    /// A read-only configuration for the public API.
    pub fn new(provisioning_key: SecretString) -> Self {
        McpConfig {
            provisioning_key,
            base_url: None,
            allow_write: false,
            http_allowed_hosts: Vec::new(),
            database_url: None,
            token: None,
        }
    }

    /// Reads `OPENROUTER_PROVISIONING_KEY` (required), `OPENROUTER_BASE_URL`,
    /// `OPENROUTER_ADMIN_ALLOW_WRITE` and `ORTEAM_DATABASE_URL` from the process environment.
    pub fn from_env() -> Result<Self, McpError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, McpError> {
        let key = lookup(PROVISIONING_KEY_ENV)
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                McpError::Config(format!(
                    "{PROVISIONING_KEY_ENV} is not set. Create a management key (formerly \
                     \"provisioning key\") at https://openrouter.ai/settings/provisioning-keys and \
                     pass it to the server, e.g. `export {PROVISIONING_KEY_ENV}=sk-or-v1-…` or in \
                     the \"env\" block of your MCP client's server entry. An inference (API) key \
                     will not work: it cannot manage keys, credits or guardrails."
                ))
            })?;
        let base_url = lookup(BASE_URL_ENV)
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        let allow_write = lookup(ALLOW_WRITE_ENV).is_some_and(|v| parse_flag(&v));
        let database_url = lookup(DATABASE_URL_ENV)
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        let token = lookup(orteam_core::env::ORTEAM_TOKEN)
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .map(SecretString::from);
        Ok(McpConfig {
            provisioning_key: SecretString::from(key),
            base_url,
            allow_write,
            http_allowed_hosts: Vec::new(),
            database_url,
            token,
        })
    }
}

/// `1`, `true` or `yes`, case-insensitive, surrounding blanks ignored.
pub fn parse_flag(value: &str) -> bool {
    let v = value.trim();
    v == "1" || v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn missing_key_says_how_to_set_it() {
        let err = McpConfig::from_lookup(env(&[])).unwrap_err().to_string();
        assert!(
            err.contains("OPENROUTER_PROVISIONING_KEY is not set"),
            "{err}"
        );
        assert!(err.contains("export OPENROUTER_PROVISIONING_KEY="), "{err}");
        let err = McpConfig::from_lookup(env(&[(PROVISIONING_KEY_ENV, "  ")])).unwrap_err();
        assert!(matches!(err, McpError::Config(_)));
    }

    #[test]
    fn reads_all_variables() {
        let c = McpConfig::from_lookup(env(&[
            (PROVISIONING_KEY_ENV, "sk-or-v1-abc"),
            (BASE_URL_ENV, "http://127.0.0.1:9/api/v1"),
            (ALLOW_WRITE_ENV, "YES"),
            (DATABASE_URL_ENV, "sqlite:///tmp/x.db"),
        ]))
        .unwrap();
        assert_eq!(c.provisioning_key.expose_secret(), "sk-or-v1-abc");
        assert_eq!(c.base_url.as_deref(), Some("http://127.0.0.1:9/api/v1"));
        assert!(c.allow_write);
        assert_eq!(c.database_url.as_deref(), Some("sqlite:///tmp/x.db"));
        assert!(!format!("{c:?}").contains("sk-or-v1-abc"));
    }

    #[test]
    fn write_flag_values() {
        for v in ["1", "true", "TRUE", "True", "yes", "Yes", " yes "] {
            assert!(parse_flag(v), "{v}");
        }
        for v in ["", "0", "false", "no", "on", "2", "y"] {
            assert!(!parse_flag(v), "{v}");
        }
    }
}
