//! The upstream connection pool: HTTP/1.1 keep-alive connections to OpenRouter (TCP_NODELAY,
//! TLS via rustls for https upstreams), one pool per worker thread. Per-request overhead is a
//! header map and the body bytes; no JSON tree, no reqwest layer.
//!
//! Why not hyper-util's pooled client: it runs every connection as a task of its own, so each
//! request crosses two tasks (ours and the connection's) through a dispatch channel, and a
//! response body arrives one HTTP chunk per wake-up — for a stream, one `writev` to the member
//! per SSE event. Here the request's own task drives its connection (hyper's low-level
//! `client::conn::http1`): the request is written and the answer read in the same poll, and
//! [`UpstreamBody`] hands over everything the connection has decoded by then as one frame,
//! as nginx forwards whatever one read brought. An idle connection sits in the pool unpolled;
//! one the server closed meanwhile is noticed when checked out (its EOF is already queued) or,
//! at worst, when the request on it fails before being written, and the request then goes out
//! on another connection. A reaper task closes connections idle past the idle timeout.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tower::ServiceExt;

/// Connection type: plain HTTP or HTTPS with rustls.
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

type Io = MaybeHttpsStream<TokioIo<TcpStream>>;

/// Idle connections kept per worker.
const MAX_IDLE: usize = 1024;
/// An idle connection older than this is closed rather than reused (the default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Pooled connections tried for one request before a fresh one (each found closed by the
/// server before the request was written).
const STALE_TRIES: usize = 4;
/// At most this many bytes are gathered into one frame of an answer.
const MAX_FRAME: usize = 64 * 1024;

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

/// One HTTP/1.1 connection: the request handle and the connection state machine, which
/// whoever uses the connection polls (see the module docs).
struct Link {
    sender: http1::SendRequest<Full<Bytes>>,
    conn: http1::Connection<Io, Full<Bytes>>,
    /// The connection future has completed (closed or failed): never poll it again.
    finished: bool,
    idle_since: Instant,
}

impl Link {
    /// Lets the connection write and read what it can; false once it is finished.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.finished && Pin::new(&mut self.conn).poll(cx).is_ready() {
            self.finished = true;
        }
        !self.finished
    }
}

type Idle = Arc<Mutex<Vec<Link>>>;

/// A connection pool for one worker (clones share it).
#[derive(Clone)]
pub struct Upstream {
    connector: Connector,
    h1: http1::Builder,
    idle: Idle,
    /// Where the connector connects (scheme, host, port).
    chat_uri: Uri,
    /// What the request line says (origin form) and the Host header.
    chat_path: Uri,
    /// The API root's path (`/api/v1`), for the other routes.
    base_path: Arc<str>,
    /// Paths set with [`UpstreamSettings::with_routes`], by index.
    routes: Arc<[Uri]>,
    host: HeaderValue,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
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
    chat_path: Uri,
    base_path: Arc<str>,
    routes: Arc<[Uri]>,
    host: HeaderValue,
    tls: rustls::ClientConfig,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
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
        let authority = chat_uri
            .authority()
            .ok_or_else(|| UpstreamError::Url(format!("{chat_uri} names no host")))?;
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|e| UpstreamError::Url(e.to_string()))?;
        let chat_path: Uri = chat_uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|e: http::uri::InvalidUri| UpstreamError::Url(e.to_string()))?;
        let base_path: Arc<str> = chat_path
            .path()
            .trim_end_matches("/chat/completions")
            .into();
        Ok(UpstreamSettings {
            chat_uri,
            chat_path,
            base_path,
            routes: Arc::from(Vec::new()),
            host,
            tls: rustls_config()?,
            first_byte_timeout,
            idle_timeout: IDLE_TIMEOUT,
        })
    }

    /// Validates the paths below the API root the gateway posts to (`"messages"` …); each
    /// worker's [`Upstream::route`] hands them out by index.
    pub fn with_routes(mut self, below_root: &[&str]) -> Result<Self, UpstreamError> {
        self.routes = below_root
            .iter()
            .map(|r| join_path(&self.base_path, r, None))
            .collect::<Result<Vec<_>, _>>()?
            .into();
        Ok(self)
    }

    /// How long an idle pooled connection is kept (default 90 s).
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }
}

impl Upstream {
    /// A fresh connection pool (one per worker thread). Inside a tokio runtime it also starts
    /// a task that closes connections idle for longer than the idle timeout, which ends with
    /// the pool.
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
        let mut h1 = http1::Builder::new();
        // A fixed 4 KiB read buffer per upstream connection instead of hyper's adaptive one
        // (8 KiB at least): SSE events and chat answers are small, and a gateway holds one
        // such connection per open stream (docs/BENCHMARKS.md, memory).
        h1.read_buf_exact_size(Some(4096)).writev(true);
        let idle: Idle = Arc::new(Mutex::new(Vec::new()));
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(reap_idle(Arc::downgrade(&idle), settings.idle_timeout));
        }
        Upstream {
            connector,
            h1,
            idle: idle.clone(),
            chat_uri: settings.chat_uri.clone(),
            chat_path: settings.chat_path.clone(),
            base_path: settings.base_path.clone(),
            routes: settings.routes.clone(),
            host: settings.host.clone(),
            first_byte_timeout: settings.first_byte_timeout,
            idle_timeout: settings.idle_timeout,
        }
    }

    /// The origin-form URI of a path below the API root (`"messages"` → `/api/v1/messages`),
    /// with an optional query string.
    pub fn path(&self, below_root: &str, query: Option<&str>) -> Result<Uri, UpstreamError> {
        join_path(&self.base_path, below_root, query)
    }

    /// The path number `index` of [`UpstreamSettings::with_routes`].
    pub fn route(&self, index: usize) -> Option<Uri> {
        self.routes.get(index).cloned()
    }

    /// POSTs a chat completion body; resolves when the response head arrives.
    pub async fn chat(
        &self,
        authorization: &HeaderValue,
        extra_headers: &[(http::HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<http::Response<UpstreamBody>, UpstreamError> {
        self.post(
            self.chat_path.clone(),
            authorization,
            extra_headers,
            &[],
            body,
        )
        .await
    }

    /// POSTs a JSON body to `path` (see [`Upstream::path`]) with the given headers; resolves
    /// when the response head arrives.
    pub async fn post(
        &self,
        path: Uri,
        authorization: &HeaderValue,
        extra_headers: &[(http::HeaderName, HeaderValue)],
        more_headers: &[(http::HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<http::Response<UpstreamBody>, UpstreamError> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(http::header::HOST, self.host.clone())
            .header(AUTHORIZATION, authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in extra_headers.iter().chain(more_headers) {
            builder = builder.header(name, value.clone());
        }
        let req = builder
            .body(Full::new(body))
            .map_err(|e| UpstreamError::Url(e.to_string()))?;
        match tokio::time::timeout(self.first_byte_timeout, self.send(req)).await {
            Err(_) => Err(UpstreamError::Timeout(self.first_byte_timeout)),
            Ok(result) => result,
        }
    }

    async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<http::Response<UpstreamBody>, UpstreamError> {
        let mut stale_tries = 0;
        loop {
            let pooled = if stale_tries < STALE_TRIES {
                self.checkout()
            } else {
                None
            };
            let fresh = pooled.is_none();
            let mut link = match pooled {
                Some(link) => link,
                None => self.connect().await?,
            };
            // Ready to take a request (a pooled connection the server closed is not).
            let ready = poll_fn(|cx| {
                link.drive(cx);
                link.sender.poll_ready(cx)
            })
            .await;
            if let Err(err) = ready {
                if fresh {
                    return Err(UpstreamError::Connect(error_chain(&err)));
                }
                stale_tries += 1;
                continue;
            }
            let result = {
                let mut response = pin!(link.sender.try_send_request(req));
                poll_fn(|cx| {
                    // Queue the request, let the connection write it (and read the answer if it
                    // is already there), then look again.
                    if let Poll::Ready(r) = response.as_mut().poll(cx) {
                        return Poll::Ready(r);
                    }
                    link.drive(cx);
                    response.as_mut().poll(cx)
                })
                .await
            };
            match result {
                Ok(resp) => {
                    let idle = self.idle.clone();
                    return Ok(resp.map(|incoming| UpstreamBody::new(incoming, link, idle)));
                }
                Err(mut err) => match err.take_message() {
                    // Never written: the connection had been closed by the server. Try another.
                    Some(back) if !fresh => {
                        req = back;
                        stale_tries += 1;
                    }
                    _ => return Err(UpstreamError::Connect(error_chain(err.error()))),
                },
            }
        }
    }

    /// The most recently used idle connection that is still open.
    fn checkout(&self) -> Option<Link> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        loop {
            let mut link = self.idle.lock().pop()?;
            if link.idle_since.elapsed() > self.idle_timeout {
                continue;
            }
            // A close by the server is already queued on the socket: let the connection see it.
            if link.drive(&mut cx) && !link.sender.is_closed() {
                return Some(link);
            }
        }
    }

    async fn connect(&self) -> Result<Link, UpstreamError> {
        let io = self
            .connector
            .clone()
            .oneshot(self.chat_uri.clone())
            .await
            .map_err(|e| UpstreamError::Connect(error_chain(&*e)))?;
        let (sender, conn) = self
            .h1
            .handshake(io)
            .await
            .map_err(|e| UpstreamError::Connect(error_chain(&e)))?;
        Ok(Link {
            sender,
            conn,
            finished: false,
            idle_since: Instant::now(),
        })
    }
}

fn join_path(base: &str, below_root: &str, query: Option<&str>) -> Result<Uri, UpstreamError> {
    let mut s = format!("{base}/{below_root}");
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s.parse()
        .map_err(|e: http::uri::InvalidUri| UpstreamError::Url(e.to_string()))
}

/// Closes pooled connections idle for longer than `timeout` (the oldest are first in the
/// pool: connections are pushed and popped at the end), until the pool is gone.
async fn reap_idle(idle: std::sync::Weak<Mutex<Vec<Link>>>, timeout: Duration) {
    let period = (timeout / 2).clamp(Duration::from_millis(10), Duration::from_secs(15));
    loop {
        tokio::time::sleep(period).await;
        let Some(idle) = idle.upgrade() else { return };
        let expired: Vec<Link> = {
            let mut links = idle.lock();
            let n = links.partition_point(|l| l.idle_since.elapsed() > timeout);
            links.drain(..n).collect()
        };
        // Dropped outside the lock: closing sockets is a system call each.
        drop(expired);
    }
}

/// An upstream answer's body. Polling it drives the connection; every frame carries all the
/// bytes the connection had decoded at that moment (up to [`MAX_FRAME`]); at the end the
/// connection goes back to the pool if it can carry another request.
pub struct UpstreamBody {
    incoming: Incoming,
    link: Option<Link>,
    idle: Idle,
    /// The connection failed: returned by [`Self::poll_error`].
    error: Option<hyper::Error>,
    error_deferred: bool,
}

impl UpstreamBody {
    fn new(incoming: Incoming, link: Link, idle: Idle) -> Self {
        UpstreamBody {
            incoming,
            link: Some(link),
            idle,
            error: None,
            error_deferred: false,
        }
    }

    /// Fails the body, but only after stepping aside once: a server aborts a connection on a
    /// body error without flushing what it had buffered, so the bytes already handed over get
    /// their chance to reach the member first (as they would with one frame per read).
    fn poll_error(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if !self.error_deferred {
            self.error_deferred = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match self.error.take() {
            Some(err) => Poll::Ready(Some(Err(err))),
            None => Poll::Ready(None),
        }
    }

    fn release(&mut self, cx: &mut Context<'_>) {
        if let Some(mut link) = self.link.take()
            && link.drive(cx)
            && !link.sender.is_closed()
        {
            link.idle_since = Instant::now();
            let mut idle = self.idle.lock();
            if idle.len() < MAX_IDLE {
                idle.push(link);
            }
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if this.error.is_some() {
            return this.poll_error(cx);
        }
        let mut first: Option<Bytes> = None;
        let mut gathered: Option<BytesMut> = None;
        let mut drove = false;
        let ready = |first: Option<Bytes>, gathered: Option<BytesMut>| match gathered {
            Some(buf) => Some(Frame::data(buf.freeze())),
            None => first.map(Frame::data),
        };
        loop {
            match Pin::new(&mut this.incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    drove = false;
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        // Trailers: nothing the gateway forwards.
                        Err(_) => continue,
                    };
                    match (&mut first, &mut gathered) {
                        (None, _) => first = Some(data),
                        (Some(f), None) => {
                            let mut buf = BytesMut::with_capacity(f.len() + data.len() * 4);
                            buf.extend_from_slice(f);
                            buf.extend_from_slice(&data);
                            gathered = Some(buf);
                        }
                        (Some(_), Some(buf)) => buf.extend_from_slice(&data),
                    }
                    let len = gathered
                        .as_ref()
                        .map_or_else(|| first.as_ref().map_or(0, Bytes::len), BytesMut::len);
                    if len >= MAX_FRAME {
                        return Poll::Ready(ready(first, gathered).map(Ok));
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    this.link = None;
                    this.error = Some(err);
                    return match ready(first, gathered) {
                        Some(frame) => Poll::Ready(Some(Ok(frame))),
                        None => this.poll_error(cx),
                    };
                }
                Poll::Ready(None) => {
                    this.release(cx);
                    return Poll::Ready(ready(first, gathered).map(Ok));
                }
                Poll::Pending => {
                    // Nothing decoded yet: let the connection read and decode what has arrived,
                    // then look again; stop once that brought nothing new.
                    let alive = this.link.as_mut().is_some_and(|l| l.drive(cx));
                    if drove || !alive {
                        return match ready(first, gathered) {
                            Some(frame) => Poll::Ready(Some(Ok(frame))),
                            None => Poll::Pending,
                        };
                    }
                    drove = true;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.error.is_none() && self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
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
