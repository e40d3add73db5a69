//! Fetches snapshots from the gateway's admin API.

use std::time::Duration;

use orteam_dashboard_types::{Range, Snapshot};
use secrecy::{ExposeSecret, SecretString};

/// Why a snapshot could not be fetched; every message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error(
        "cannot reach the gateway at {url}: {reason}. Is `orteam serve` running there? (--url)"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "the gateway at {url} refused the admin token (HTTP 401): set ORTEAM_ADMIN_TOKEN (or --token) to the token `orteam serve` was started with"
    )]
    Unauthorized { url: String },
    #[error("the gateway at {url} answered HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "unexpected answer from {url} (is it an orteam gateway of the same version?): {reason}"
    )]
    Decode { url: String, reason: String },
    #[error("invalid --url {0:?}")]
    BadUrl(String),
}

/// A client for `GET /admin/v1/dashboard`.
pub struct Client {
    http: reqwest::Client,
    root: String,
    endpoint: String,
    token: SecretString,
}

impl Client {
    pub fn new(url: &str, token: SecretString, range: Range) -> Result<Client, FetchError> {
        let root = url.trim_end_matches('/').to_owned();
        if !(root.starts_with("http://") || root.starts_with("https://")) {
            return Err(FetchError::BadUrl(url.to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| FetchError::Unreachable {
                url: root.clone(),
                reason: e.to_string(),
            })?;
        Ok(Client {
            http,
            endpoint: format!(
                "{root}/admin/v1/dashboard?range={}&recent=50",
                range.as_str()
            ),
            root,
            token,
        })
    }

    pub async fn fetch(&self) -> Result<Snapshot, FetchError> {
        let res = self
            .http
            .get(&self.endpoint)
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|e| FetchError::Unreachable {
                url: self.root.clone(),
                reason: without_url(e),
            })?;
        let status = res.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(FetchError::Unauthorized {
                url: self.root.clone(),
            });
        }
        let bytes = res.bytes().await.map_err(|e| FetchError::Unreachable {
            url: self.root.clone(),
            reason: without_url(e),
        })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            return Err(FetchError::Status {
                url: self.root.clone(),
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| FetchError::Decode {
            url: self.root.clone(),
            reason: e.to_string(),
        })
    }
}

/// The error's cause chain without the URL (which the message names already).
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(cause) = src {
        s = format!("{s}: {cause}");
        src = cause.source();
    }
    s
}
