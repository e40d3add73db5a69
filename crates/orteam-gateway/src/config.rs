//! `orteam serve` settings: a TOML file (`orteam.toml`), overridden by environment variables,
//! overridden by flags (the CLI applies the flags). Everything has a default except the shared
//! upstream key, which only matters for members in shared-upstream mode.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// Environment variables the gateway reads (named once, in `orteam_core::env`).
pub mod env {
    pub use orteam_core::env::{
        OPENROUTER_API_KEY, OPENROUTER_BASE_URL, OPENROUTER_PROVISIONING_KEY, ORTEAM_ADMIN_TOKEN,
        ORTEAM_DATABASE_URL, ORTEAM_INSTANCE_ID, ORTEAM_METRICS_TOKEN,
    };
}

/// The shortest admin or metrics token accepted.
pub const MIN_TOKEN_BYTES: usize = 32;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The file as written; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    workers: Option<usize>,
    database_url: Option<String>,
    #[serde(default)]
    upstream: FileUpstream,
    #[serde(default)]
    attribution: FileAttribution,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    metrics: FileMetrics,
    /// Single sign-on (OpenID Connect); off when absent.
    sso: Option<crate::sso::FileSso>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMetrics {
    member_labels: Option<MemberLabels>,
}

/// What the `member` label of the per-member metrics carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberLabels {
    /// The member id (one series per member and model).
    #[default]
    Member,
    /// The member's team id (fewer series; no member ids in the scrape).
    Team,
    /// Empty (one series per model).
    None,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUpstream {
    base_url: Option<String>,
    first_byte_timeout: Option<String>,
    retry_deadline: Option<String>,
    catalog_refresh: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAttribution {
    title: Option<String>,
    referer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_body_bytes: Option<usize>,
    min_answer_tokens: Option<u64>,
    default_max_tokens: Option<u64>,
    drain: Option<String>,
    unready_before_drain: Option<String>,
    header_read_timeout: Option<String>,
    body_read_timeout: Option<String>,
    max_connections: Option<usize>,
    media_part_tokens: Option<u64>,
    document_part_tokens: Option<u64>,
}

/// Validated gateway settings.
#[derive(Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// Worker threads (default: the number of cores).
    pub workers: usize,
    pub database_url: String,
    pub upstream_base_url: String,
    /// The team's shared OpenRouter key (members in shared-upstream mode).
    pub upstream_key: Option<SecretString>,
    pub admin_token: Option<SecretString>,
    /// Also accepted on `/metrics`.
    pub metrics_token: Option<SecretString>,
    /// Time allowed for upstream to start answering, including retries of 429/5xx.
    pub first_byte_timeout: Duration,
    pub retry_deadline: Duration,
    pub catalog_refresh: Duration,
    pub attribution_title: String,
    pub attribution_referer: Option<String>,
    pub max_body_bytes: usize,
    /// Below this many affordable completion tokens a request is refused with 402.
    pub min_answer_tokens: u64,
    /// `max_tokens` when the client gave none and the catalog knows no limit.
    pub default_max_tokens: u64,
    /// Graceful shutdown: how long open requests and streams may take to finish.
    pub drain: Duration,
    /// Graceful shutdown: how long `/health/ready` answers 503 while requests are still
    /// accepted, before the listener closes (a load balancer's probe interval × its failure
    /// threshold; 0 closes at once).
    pub unready_before_drain: Duration,
    /// How long a request head may take, and a kept-alive connection may idle.
    pub header_read_timeout: Duration,
    /// How long a request body may take to arrive (408 after it).
    pub body_read_timeout: Duration,
    /// Open connections across workers; past it new ones are closed at once.
    pub max_connections: usize,
    /// Prompt tokens held for each image or audio part (a part given by URL has no bytes in
    /// the body to bound its tokens).
    pub media_part_tokens: u64,
    /// Prompt tokens held for each document or video part (`file`, `input_file`, `document`,
    /// `video_url`).
    pub document_part_tokens: u64,
    /// What the `member` label of the per-member metrics carries (`[metrics] member_labels`).
    pub member_labels: MemberLabels,
    /// OpenTelemetry traces (`OTEL_EXPORTER_OTLP_ENDPOINT` …); `None`: off.
    pub otel: Option<crate::trace::OtelSettings>,
    /// The ledger instance id (`ORTEAM_INSTANCE_ID`; default a random one per start).
    pub instance_id: Option<String>,
    /// Single sign-on for the dashboard and the admin API (`[sso]`).
    pub sso: Option<crate::sso::SsoSettings>,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("listen", &self.listen)
            .field("workers", &self.workers)
            .field("upstream_base_url", &self.upstream_base_url)
            .field(
                "upstream_key",
                &self.upstream_key.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "[redacted]"),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("sso", &self.sso)
            .finish_non_exhaustive()
    }
}

impl GatewayConfig {
    /// Defaults, then the file (if any), then the environment (`lookup` is `std::env::var`
    /// in production and a map in tests).
    pub fn load(
        file: Option<&Path>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let parsed = match file {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?
            }
        };
        let duration = |field: &str, v: Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(text) => humantime::parse_duration(&text)
                .map_err(|e| ConfigError::Invalid(format!("{field} = {text:?}: {e}"))),
        };
        let nonempty = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        // A short token can be guessed; refuse it rather than serve the admin API behind it.
        let token = |name: &str| match nonempty(name) {
            Some(t) if t.len() < MIN_TOKEN_BYTES => Err(ConfigError::Invalid(format!(
                "{name} is {} bytes long; use at least {MIN_TOKEN_BYTES} (e.g. `head -c32 /dev/urandom | base64`)",
                t.len()
            ))),
            t => Ok(t.map(SecretString::from)),
        };
        let workers = parsed
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        if workers == 0 || workers > 256 {
            return Err(ConfigError::Invalid(format!(
                "workers = {workers}: must be between 1 and 256"
            )));
        }
        let max_body_bytes = parsed.limits.max_body_bytes.unwrap_or(4 * 1024 * 1024);
        if max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "limits.max_body_bytes must be at least 1024".into(),
            ));
        }
        let upstream_base_url = nonempty(env::OPENROUTER_BASE_URL)
            .or(parsed.upstream.base_url)
            .unwrap_or_else(|| "https://openrouter.ai/api/v1".into());
        if !(upstream_base_url.starts_with("http://") || upstream_base_url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "upstream base URL {upstream_base_url:?} must start with http:// or https://"
            )));
        }
        let otel = crate::trace::OtelSettings::from_env(&lookup)?;
        let sso = parsed
            .sso
            .map(|s| s.resolve(&lookup))
            .transpose()
            .map_err(ConfigError::Invalid)?;
        Ok(GatewayConfig {
            otel,
            listen: parsed
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            workers,
            database_url: nonempty(env::ORTEAM_DATABASE_URL)
                .or(parsed.database_url)
                .unwrap_or_else(|| "sqlite://orteam.db".into()),
            upstream_base_url,
            upstream_key: nonempty(env::OPENROUTER_API_KEY).map(SecretString::from),
            admin_token: token(env::ORTEAM_ADMIN_TOKEN)?,
            metrics_token: token(env::ORTEAM_METRICS_TOKEN)?,
            first_byte_timeout: duration(
                "upstream.first_byte_timeout",
                parsed.upstream.first_byte_timeout,
                Duration::from_secs(120),
            )?,
            retry_deadline: duration(
                "upstream.retry_deadline",
                parsed.upstream.retry_deadline,
                Duration::from_secs(10),
            )?,
            catalog_refresh: duration(
                "upstream.catalog_refresh",
                parsed.upstream.catalog_refresh,
                Duration::from_secs(600),
            )?,
            attribution_title: parsed.attribution.title.unwrap_or_else(|| "orteam".into()),
            attribution_referer: parsed.attribution.referer,
            max_body_bytes,
            min_answer_tokens: parsed.limits.min_answer_tokens.unwrap_or(16).max(1),
            default_max_tokens: parsed.limits.default_max_tokens.unwrap_or(4096).max(1),
            drain: duration("limits.drain", parsed.limits.drain, Duration::from_secs(30))?,
            unready_before_drain: duration(
                "limits.unready_before_drain",
                parsed.limits.unready_before_drain,
                Duration::ZERO,
            )?,
            header_read_timeout: duration(
                "limits.header_read_timeout",
                parsed.limits.header_read_timeout,
                Duration::from_secs(30),
            )?,
            body_read_timeout: duration(
                "limits.body_read_timeout",
                parsed.limits.body_read_timeout,
                Duration::from_secs(30),
            )?,
            max_connections: parsed
                .limits
                .max_connections
                .unwrap_or_else(crate::server::default_max_connections)
                .max(1),
            media_part_tokens: parsed.limits.media_part_tokens.unwrap_or(4_096),
            document_part_tokens: parsed.limits.document_part_tokens.unwrap_or(100_000),
            member_labels: parsed.metrics.member_labels.unwrap_or_default(),
            instance_id: nonempty(env::ORTEAM_INSTANCE_ID),
            sso,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn env_overrides_file_and_secrets_stay_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orteam.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\ndatabase_url = \"sqlite://a.db\"\n[upstream]\nbase_url = \"http://file/api/v1\"\nfirst_byte_timeout = \"5s\"\n[limits]\nmax_body_bytes = 2048\n",
        )
        .unwrap();
        let env: HashMap<&str, &str> = [
            ("ORTEAM_DATABASE_URL", "postgres://x/y"),
            ("OPENROUTER_API_KEY", "sk-or-v1-secret-value"),
            (
                "ORTEAM_ADMIN_TOKEN",
                "admintoken-0123456789abcdef0123456789",
            ),
        ]
        .into();
        let c = GatewayConfig::load(Some(&path), |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.database_url, "postgres://x/y");
        assert_eq!(c.upstream_base_url, "http://file/api/v1");
        assert_eq!(c.first_byte_timeout, Duration::from_secs(5));
        assert_eq!(c.max_body_bytes, 2048);
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("secret-value") && !debug.contains("admintoken"),
            "{debug}"
        );
        let short: HashMap<&str, &str> = [("ORTEAM_ADMIN_TOKEN", "hunter2")].into();
        let e = GatewayConfig::load(None, |k| short.get(k).map(|v| v.to_string()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ORTEAM_ADMIN_TOKEN") && e.contains("32") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orteam.toml");
        std::fs::write(&path, "listn = \"x\"\n").unwrap();
        let e = GatewayConfig::load(Some(&path), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("listn"), "{e}");
        std::fs::write(&path, "[upstream]\nfirst_byte_timeout = \"soon\"\n").unwrap();
        let e = GatewayConfig::load(Some(&path), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("first_byte_timeout"), "{e}");
    }

    #[test]
    fn sso_section_reads_secrets_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orteam.toml");
        std::fs::write(
            &path,
            "[sso]\nissuer = \"https://login.example.com\"\nclient_id = \"orteam\"\n\
             redirect_url = \"https://orteam.example.com/auth/callback\"\n",
        )
        .unwrap();
        let mut env: HashMap<&str, &str> = [
            ("ORTEAM_SSO_CLIENT_SECRET", "sso-client-secret-value"),
            (
                "ORTEAM_SESSION_KEY",
                "session-key-0123456789abcdef0123456789",
            ),
        ]
        .into();
        let c = GatewayConfig::load(Some(&path), |k| env.get(k).map(|v| v.to_string())).unwrap();
        let sso = c.sso.as_ref().unwrap();
        assert_eq!(sso.session_ttl, Duration::from_secs(8 * 3600));
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("sso-client-secret") && !debug.contains("session-key"),
            "{debug}"
        );
        env.insert("ORTEAM_SESSION_KEY", "short");
        let e = GatewayConfig::load(Some(&path), |k| env.get(k).map(|v| v.to_string()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 32 bytes"), "{e}");
        env.remove("ORTEAM_SSO_CLIENT_SECRET");
        let e = GatewayConfig::load(Some(&path), |k| env.get(k).map(|v| v.to_string()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ORTEAM_SSO_CLIENT_SECRET"), "{e}");
    }

    #[test]
    fn sso_groups_in_the_serve_config_point_at_the_team_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orteam.toml");
        std::fs::write(
            &path,
            "[sso]\nissuer = \"https://login.example.com\"\nclient_id = \"orteam\"\n\
             redirect_url = \"https://orteam.example.com/auth/callback\"\n\
             [sso.groups]\n\"admins\" = \"admin\"\n",
        )
        .unwrap();
        let env: HashMap<&str, &str> = [
            ("ORTEAM_SSO_CLIENT_SECRET", "sso-client-secret-value"),
            (
                "ORTEAM_SESSION_KEY",
                "session-key-0123456789abcdef0123456789",
            ),
        ]
        .into();
        let e = GatewayConfig::load(Some(&path), |k| env.get(k).map(|v| v.to_string()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[access.groups]"), "{e}");
    }
}
