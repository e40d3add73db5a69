//! The client: [`ClientBuilder`], [`Client`], and the transport and retry core every endpoint
//! goes through (`Call` → `exchange` → `decode`). The endpoint methods live in one file per
//! family, each an `impl Client` block: `keys.rs`, `account.rs` (credits, activity, generations,
//! organization members), `models.rs`, `guardrails.rs`, `workspaces.rs` and `chat.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::cache::{ResponseCache, is_cacheable_path};
use crate::error::{ApiError, ClientError, ErrorKind, chain, scrub};
use crate::retry::{Idempotency, RetryEvent, RetryPolicy, retry_after_header};
use crate::types::Envelope;
use crate::types::chat::ErrorCode;

mod account;
mod chat;
mod guardrails;
mod keys;
mod models;
mod workspaces;

/// Environment variable overriding the base URL (when the builder sets none).
pub const BASE_URL_ENV: &str = orteam_core::env::OPENROUTER_BASE_URL;
/// The public API.
pub const DEFAULT_BASE_URL: &str = "https://openrouter.ai/api/v1";
/// Default TTL of the GET cache.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// The response header carrying the generation id.
pub const GENERATION_ID_HEADER: &str = "x-generation-id";
/// `GET /keys` page size upstream.
pub const KEYS_PAGE_SIZE: usize = 100;

type RetryHook = Arc<dyn Fn(&RetryEvent) + Send + Sync>;

/// Builds a [`Client`].
///
/// Defaults: base URL from `OPENROUTER_BASE_URL`, else `https://openrouter.ai/api/v1`; no key;
/// [`RetryPolicy::default`]; GET cache TTL 60 s; connect timeout 10 s; read (idle) timeout
/// 120 s between body reads; no total timeout.
#[must_use]
pub struct ClientBuilder {
    base_url: Option<String>,
    api_key: Option<SecretString>,
    retry: RetryPolicy,
    cache_ttl: Option<Duration>,
    connect_timeout: Duration,
    read_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    referer: Option<String>,
    title: Option<String>,
    user_agent: String,
    on_retry: Option<RetryHook>,
    retry_counter: Option<Arc<AtomicU64>>,
    http: Option<reqwest::Client>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            base_url: None,
            api_key: None,
            retry: RetryPolicy::default(),
            cache_ttl: Some(DEFAULT_CACHE_TTL),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Some(Duration::from_secs(120)),
            request_timeout: None,
            referer: None,
            title: None,
            user_agent: concat!("orteam-openrouter/", env!("CARGO_PKG_VERSION")).to_owned(),
            on_retry: None,
            retry_counter: None,
            http: None,
        }
    }
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("retry", &self.retry)
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// e.g. `http://127.0.0.1:4000/api/v1` (a trailing `/` is ignored).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The bearer key (inference or management).
    pub fn api_key(mut self, key: SecretString) -> Self {
        self.api_key = Some(key);
        self
    }

    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Shorthand for `retry_policy` with `max_retries` changed.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.retry.max_retries = n;
        self
    }

    /// TTL of the GET cache; `None` disables caching.
    pub fn cache_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.cache_ttl = ttl;
        self
    }

    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Maximum wait between two reads of a response (headers or body chunks), streams included.
    pub fn read_timeout(mut self, t: Option<Duration>) -> Self {
        self.read_timeout = t;
        self
    }

    /// A total per-attempt timeout for non-streaming calls only (default none). Streams never
    /// get a total timeout.
    pub fn request_timeout(mut self, t: Option<Duration>) -> Self {
        self.request_timeout = t;
        self
    }

    /// `HTTP-Referer` app-attribution header.
    pub fn referer(mut self, url: impl Into<String>) -> Self {
        self.referer = Some(url.into());
        self
    }

    /// `X-Title` app-attribution header.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Called before every retry (after the delay is chosen, before sleeping), e.g. for metrics.
    pub fn on_retry(mut self, hook: impl Fn(&RetryEvent) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(hook));
        self
    }

    /// A counter incremented on every retry (shared with the caller's metrics).
    pub fn retry_counter(mut self, counter: Arc<AtomicU64>) -> Self {
        self.retry_counter = Some(counter);
        self
    }

    /// Use this `reqwest::Client` (its own timeouts and headers apply; the builder's timeouts and
    /// user agent are then ignored).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    pub fn build(self) -> Result<Client, ClientError> {
        let base = match self.base_url {
            Some(b) => b,
            None => std::env::var(BASE_URL_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
        };
        let base = base.trim().trim_end_matches('/').to_owned();
        let parsed = Url::parse(&base)
            .map_err(|e| ErrorKind::InvalidRequest(format!("invalid base URL {base:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
            return Err(ErrorKind::InvalidRequest(format!(
                "invalid base URL {base:?}: not http(s)"
            ))
            .into());
        }
        let mut default_headers = HeaderMap::new();
        for (name, value) in [("http-referer", &self.referer), ("x-title", &self.title)] {
            if let Some(v) = value {
                let hv = HeaderValue::from_str(v).map_err(|_| {
                    ErrorKind::InvalidRequest(format!("{name} is not a valid header value"))
                })?;
                default_headers.insert(name, hv);
            }
        }
        let http = match self.http {
            Some(h) => h,
            None => {
                let mut b = reqwest::Client::builder()
                    .connect_timeout(self.connect_timeout)
                    .user_agent(self.user_agent);
                if let Some(t) = self.read_timeout {
                    b = b.read_timeout(t);
                }
                b.build().map_err(|e| {
                    ErrorKind::InvalidRequest(format!("cannot build the HTTP client: {e}"))
                })?
            }
        };
        let shared = Arc::new(Shared {
            http,
            base: base.clone(),
            retry: self.retry,
            cache_ttl: self.cache_ttl,
            request_timeout: self.request_timeout,
            default_headers,
            retry_counter: self.retry_counter.unwrap_or_default(),
            on_retry: self.on_retry,
        });
        Ok(Client::from_shared(shared, self.api_key))
    }
}

/// What every client built from one builder shares (also across [`Client::with_api_key`]).
struct Shared {
    http: reqwest::Client,
    base: String,
    retry: RetryPolicy,
    cache_ttl: Option<Duration>,
    request_timeout: Option<Duration>,
    default_headers: HeaderMap,
    retry_counter: Arc<AtomicU64>,
    on_retry: Option<RetryHook>,
}

struct Inner {
    shared: Arc<Shared>,
    api_key: Option<SecretString>,
    cache: Option<ResponseCache>,
}

/// The OpenRouter client. Cheap to clone (an `Arc` inside); clones share the connection pool,
/// the GET cache and the retry counter.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.shared.base)
            .field(
                "api_key",
                &self.inner.api_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("retry", &self.inner.shared.retry)
            .field("cache_ttl", &self.inner.shared.cache_ttl)
            .finish_non_exhaustive()
    }
}

/// One logical call.
struct Call {
    method: Method,
    /// Below the base URL, segments already encoded, e.g. `/keys/abc`.
    path: String,
    query: Vec<(String, String)>,
    body: Option<Bytes>,
    idempotency: Idempotency,
}

impl Call {
    fn new(method: Method, path: impl Into<String>, idempotency: Idempotency) -> Self {
        Call {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotency,
        }
    }

    fn get(path: impl Into<String>) -> Self {
        Call::new(Method::GET, path, Idempotency::Idempotent)
    }

    fn query<K: Into<String>>(mut self, q: Vec<(K, String)>) -> Self {
        self.query = q.into_iter().map(|(k, v)| (k.into(), v)).collect();
        self
    }

    fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Result<Self, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            ErrorKind::InvalidRequest(format!("cannot serialize the request body: {e}"))
        })?;
        self.body = Some(Bytes::from(bytes));
        Ok(self)
    }

    fn endpoint(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A finished exchange.
struct Exchange {
    headers: HeaderMap,
    body: Bytes,
    retries: u32,
    started: Instant,
}

enum Attempt {
    Buffered(Exchange),
    Stream {
        response: reqwest::Response,
        retries: u32,
        started: Instant,
    },
}

/// Percent-encodes one path segment (keeps RFC 3986 unreserved characters and `:`/`@`).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

impl Client {
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client for `api_key` with every default (base URL from the environment).
    pub fn new(api_key: SecretString) -> Result<Client, ClientError> {
        Client::builder().api_key(api_key).build()
    }

    fn from_shared(shared: Arc<Shared>, api_key: Option<SecretString>) -> Client {
        let cache = shared
            .cache_ttl
            .map(|ttl| ResponseCache::new(ttl, &shared.base));
        Client {
            inner: Arc::new(Inner {
                shared,
                api_key,
                cache,
            }),
        }
    }

    /// A client for another key sharing this one's connection pool, settings and retry counter,
    /// with its own (empty) GET cache.
    pub fn with_api_key(&self, api_key: SecretString) -> Client {
        Client::from_shared(self.inner.shared.clone(), Some(api_key))
    }

    /// The base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.inner.shared.base
    }

    /// Retries performed so far by this client and every client sharing its settings.
    pub fn retry_count(&self) -> u64 {
        self.inner.shared.retry_counter.load(Ordering::Relaxed)
    }

    /// The shared retry counter (for metrics).
    pub fn retry_counter(&self) -> Arc<AtomicU64> {
        self.inner.shared.retry_counter.clone()
    }

    /// Drops every cached GET response of this client.
    pub fn clear_cache(&self) {
        if let Some(c) = &self.inner.cache {
            c.clear();
        }
    }

    fn secret(&self) -> Option<&str> {
        self.inner.api_key.as_ref().map(|k| k.expose_secret())
    }

    fn url(&self, call: &Call) -> Result<Url, ClientError> {
        let mut url =
            Url::parse(&format!("{}{}", self.inner.shared.base, call.path)).map_err(|e| {
                ErrorKind::InvalidRequest(format!("invalid URL for {}: {e}", call.path))
            })?;
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        Ok(url)
    }

    /// The `Authorization` header: the only place the key is exposed.
    fn auth_header(&self) -> Result<Option<HeaderValue>, ClientError> {
        match &self.inner.api_key {
            None => Ok(None),
            Some(key) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                    .map_err(|_| {
                        ErrorKind::InvalidRequest(
                            "the API key contains characters not allowed in an HTTP header".into(),
                        )
                    })?;
                v.set_sensitive(true);
                Ok(Some(v))
            }
        }
    }

    fn api_error(
        &self,
        endpoint: String,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> ApiError {
        let text = scrub(&String::from_utf8_lossy(body), self.secret());
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        let err_obj = parsed.as_ref().and_then(|v| v.get("error"));
        let code = err_obj
            .and_then(|e| e.get("code"))
            .and_then(|c| serde_json::from_value::<ErrorCode>(c.clone()).ok());
        let message = err_obj
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .or_else(|| parsed.as_ref()?.get("message")?.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let t = text.trim();
                if t.is_empty() {
                    status
                        .canonical_reason()
                        .unwrap_or("(empty body)")
                        .to_owned()
                } else if t.chars().count() > 300 {
                    format!("{}…", t.chars().take(300).collect::<String>())
                } else {
                    t.to_owned()
                }
            });
        let metadata = err_obj
            .and_then(|e| e.get("metadata"))
            .filter(|m| !m.is_null())
            .cloned();
        ApiError {
            endpoint,
            status: status.as_u16(),
            code,
            message,
            metadata,
            body: parsed,
            retry_after: retry_after_header(headers.get(header::RETRY_AFTER)),
            generation_id: header_string(headers, GENERATION_ID_HEADER),
        }
    }

    fn transport(&self, endpoint: String, e: &reqwest::Error) -> ErrorKind {
        ErrorKind::Transport {
            endpoint,
            message: scrub(&chain(e), self.secret()),
            connect: e.is_connect(),
            timeout: e.is_timeout(),
        }
    }

    /// Sends `call` with retries. `stream`: the caller wants an event stream, returned unread.
    async fn execute(&self, call: &Call, stream: bool) -> Result<Attempt, ClientError> {
        let shared = &self.inner.shared;
        let endpoint = call.endpoint();
        let url = self.url(call)?;
        let auth = self.auth_header()?;
        let started = Instant::now();
        let mut retries: u32 = 0;
        loop {
            let mut rb = shared
                .http
                .request(call.method.clone(), url.clone())
                .headers(shared.default_headers.clone())
                .header(
                    header::ACCEPT,
                    if stream {
                        "text/event-stream"
                    } else {
                        "application/json"
                    },
                );
            if let Some(a) = &auth {
                rb = rb.header(header::AUTHORIZATION, a.clone());
            }
            if let Some(body) = &call.body {
                rb = rb
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            if !stream && let Some(t) = shared.request_timeout {
                rb = rb.timeout(t);
            }

            let (err, status, retry_after) = match rb.send().await {
                Err(e) => {
                    let kind = self.transport(endpoint.clone(), &e);
                    if !call.idempotency.retries_transport(e.is_connect()) {
                        return Err(
                            ClientError::new(kind).with_attempts(retries, started.elapsed())
                        );
                    }
                    (kind, None, None)
                }
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    if status.is_success() {
                        if stream {
                            let ct = header_string(&headers, "content-type");
                            if ct.as_deref().is_some_and(|c| {
                                c.to_ascii_lowercase().starts_with("text/event-stream")
                            }) {
                                return Ok(Attempt::Stream {
                                    response: resp,
                                    retries,
                                    started,
                                });
                            }
                            let body = resp.bytes().await.unwrap_or_default();
                            let api = self.api_error(endpoint.clone(), status, &headers, &body);
                            let kind =
                                match (&api.body, api.code.as_ref().and_then(ErrorCode::as_status))
                                {
                                    (Some(b), Some(code)) if b.get("error").is_some() => {
                                        ErrorKind::Api(ApiError {
                                            status: code,
                                            ..api
                                        })
                                    }
                                    _ => ErrorKind::NotEventStream {
                                        endpoint: endpoint.clone(),
                                        content_type: ct,
                                    },
                                };
                            return Err(
                                ClientError::new(kind).with_attempts(retries, started.elapsed())
                            );
                        }
                        match resp.bytes().await {
                            Ok(body) => {
                                return Ok(Attempt::Buffered(Exchange {
                                    headers,
                                    body,
                                    retries,
                                    started,
                                }));
                            }
                            Err(e) => {
                                let kind = self.transport(endpoint.clone(), &e);
                                // The body was partly consumed: only idempotent calls retry.
                                if !call.idempotency.retries_transport(false) {
                                    return Err(ClientError::new(kind)
                                        .with_attempts(retries, started.elapsed()));
                                }
                                (kind, None, None)
                            }
                        }
                    } else {
                        let body = resp.bytes().await.unwrap_or_default();
                        let api = self.api_error(endpoint.clone(), status, &headers, &body);
                        let retry_after = api.retry_after;
                        let kind = ErrorKind::Api(api);
                        if !call.idempotency.retries_status(status.as_u16()) {
                            return Err(
                                ClientError::new(kind).with_attempts(retries, started.elapsed())
                            );
                        }
                        (kind, Some(status.as_u16()), retry_after)
                    }
                }
            };

            if retries >= shared.retry.max_retries {
                return Err(ClientError::new(err).with_attempts(retries, started.elapsed()));
            }
            let delay = shared.retry.delay(retries, retry_after);
            retries += 1;
            shared.retry_counter.fetch_add(1, Ordering::Relaxed);
            let event = RetryEvent {
                endpoint: endpoint.clone(),
                retry: retries,
                status,
                delay,
                from_retry_after: retry_after.is_some(),
            };
            tracing::debug!(
                endpoint = %endpoint,
                retry = retries,
                status = ?status,
                delay_ms = delay.as_millis() as u64,
                "retrying OpenRouter request"
            );
            if let Some(hook) = &shared.on_retry {
                hook(&event);
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends a non-streaming call and returns the raw exchange (cache-aware for GETs).
    async fn exchange(&self, call: Call) -> Result<Exchange, ClientError> {
        let cache = self
            .inner
            .cache
            .as_ref()
            .filter(|_| call.method == Method::GET && is_cacheable_path(&call.path));
        let url = if cache.is_some() {
            Some(self.url(&call)?.to_string())
        } else {
            None
        };
        if let (Some(c), Some(u)) = (cache, &url)
            && let Some(body) = c.get(u)
        {
            tracing::trace!(endpoint = %call.endpoint(), "OpenRouter cache hit");
            return Ok(Exchange {
                headers: HeaderMap::new(),
                body,
                retries: 0,
                started: Instant::now(),
            });
        }
        let epoch = cache.map(ResponseCache::epoch);
        let result = self.execute(&call, false).await;
        let is_keys_write =
            call.method != Method::GET && (call.path == "/keys" || call.path.starts_with("/keys/"));
        if is_keys_write && let Some(c) = &self.inner.cache {
            // Also after a failure: the write may have been applied.
            c.invalidate_keys();
        }
        let ex = match result? {
            Attempt::Buffered(ex) => ex,
            Attempt::Stream { .. } => {
                return Err(ErrorKind::InvalidRequest("unexpected stream".into()).into());
            }
        };
        tracing::debug!(
            endpoint = %call.endpoint(),
            retries = ex.retries,
            elapsed_ms = ex.started.elapsed().as_millis() as u64,
            "OpenRouter request done"
        );
        if let (Some(c), Some(u), Some(e)) = (cache, &url, epoch)
            && serde_json::from_slice::<serde::de::IgnoredAny>(&ex.body).is_ok()
        {
            c.insert(u, ex.body.clone(), e);
        }
        Ok(ex)
    }

    fn decode<T: DeserializeOwned>(&self, endpoint: &str, ex: &Exchange) -> Result<T, ClientError> {
        serde_json::from_slice(&ex.body).map_err(|e| {
            ClientError::new(ErrorKind::Decode {
                endpoint: endpoint.to_owned(),
                message: scrub(&e.to_string(), self.secret()),
            })
            .with_attempts(ex.retries, ex.started.elapsed())
        })
    }

    async fn call<T: DeserializeOwned>(&self, call: Call) -> Result<T, ClientError> {
        let endpoint = call.endpoint();
        let ex = self.exchange(call).await?;
        self.decode(&endpoint, &ex)
    }

    async fn call_data<T: DeserializeOwned>(&self, call: Call) -> Result<T, ClientError> {
        self.call::<Envelope<T>>(call).await.map(|e| e.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("abc123"), "abc123");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_segment("llama:free"), "llama:free");
    }

    #[test]
    fn debug_hides_the_key() {
        let key = "sk-or-v1-deadbeefdeadbeefdeadbeef";
        let c = Client::builder()
            .base_url("http://127.0.0.1:9/api/v1/")
            .api_key(SecretString::from(key))
            .build()
            .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(key), "{dbg}");
        assert!(dbg.contains("[REDACTED]"));
        assert_eq!(c.base_url(), "http://127.0.0.1:9/api/v1");
        let b = Client::builder().api_key(SecretString::from(key));
        assert!(!format!("{b:?}").contains(key));
    }

    #[test]
    fn bad_base_url_is_rejected() {
        assert!(Client::builder().base_url("not a url").build().is_err());
        assert!(Client::builder().base_url("ftp://x/api").build().is_err());
    }
}
