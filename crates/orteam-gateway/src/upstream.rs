//! The upstream connection pool: a pooled hyper client per worker thread (HTTP/1.1 keep-alive,
//! TCP_NODELAY, TLS via rustls for https upstreams). Per-request overhead is a header map and
//! the body bytes; no JSON tree, no reqwest layer.

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Connection type: plain HTTP or HTTPS with rustls.
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Why an upstream call failed before a response arrived.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    #[error("upstream connection failed: {0}")]
    Connect(String),
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("invalid upstream URL: {0}")]
    Url(String),
}

/// A pooled HTTP client for one worker.
#[derive(Clone)]
pub struct Upstream {
    client: Client<Connector, Full<Bytes>>,
    chat_uri: Uri,
    first_byte_timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("chat_uri", &self.chat_uri)
            .finish_non_exhaustive()
    }
}

/// Validated upstream settings, shared by every worker's [`Upstream`].
#[derive(Clone)]
pub struct UpstreamSettings {
    chat_uri: Uri,
    tls: rustls::ClientConfig,
    first_byte_timeout: Duration,
}

impl std::fmt::Debug for UpstreamSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSettings")
            .field("chat_uri", &self.chat_uri)
            .finish_non_exhaustive()
    }
}

impl UpstreamSettings {
    /// `base_url` is OpenRouter's API root, e.g. `https://openrouter.ai/api/v1`.
    pub fn new(base_url: &str, first_byte_timeout: Duration) -> Result<Self, UpstreamError> {
        let chat_uri: Uri = format!("{}/chat/completions", base_url.trim_end_matches('/'))
            .parse()
            .map_err(|e: http::uri::InvalidUri| UpstreamError::Url(e.to_string()))?;
        Ok(UpstreamSettings {
            chat_uri,
            tls: rustls_config()?,
            first_byte_timeout,
        })
    }
}

impl Upstream {
    /// A fresh connection pool (one per worker thread).
    pub fn new(settings: &UpstreamSettings) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_keepalive(Some(Duration::from_secs(60)));
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(settings.tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            // A fixed 4 KiB read buffer per upstream connection instead of hyper's adaptive one
            // (8 KiB at least): SSE events and chat answers are small, and a gateway holds one
            // such connection per open stream (docs/BENCHMARKS.md, memory).
            .http1_read_buf_exact_size(4096)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .build(connector);
        Upstream {
            client,
            chat_uri: settings.chat_uri.clone(),
            first_byte_timeout: settings.first_byte_timeout,
        }
    }

    /// POSTs a chat completion body; resolves when the response head arrives.
    pub async fn chat(
        &self,
        authorization: &HeaderValue,
        extra_headers: &[(http::HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(self.chat_uri.clone())
            .header(AUTHORIZATION, authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in extra_headers {
            builder = builder.header(name, value.clone());
        }
        let req = builder
            .body(Full::new(body))
            .map_err(|e| UpstreamError::Url(e.to_string()))?;
        match tokio::time::timeout(self.first_byte_timeout, self.client.request(req)).await {
            Err(_) => Err(UpstreamError::Timeout(self.first_byte_timeout)),
            Ok(Err(err)) => Err(UpstreamError::Connect(error_chain(&err))),
            Ok(Ok(resp)) => Ok(resp),
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn rustls_config() -> Result<rustls::ClientConfig, UpstreamError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| UpstreamError::Connect(format!("TLS setup: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}
