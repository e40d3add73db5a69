//! The HTTP server core: N worker threads, each a single-threaded tokio runtime that accepts
//! on the shared listening socket and serves its connections to completion.
//!
//! Why not one multi-thread runtime: on a 2-core machine the cross-thread wake-ups of a
//! work-stealing scheduler cost more than the whole proxy hop (see docs/BENCHMARKS.md). A
//! connection, its request handling and its upstream connection pool all stay on one thread, so
//! per-worker state needs no locks and no atomics. Shared state (ledger, auth cache, catalog)
//! is `Arc` and lock-light.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// A future that stays on its worker thread.
pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Per-worker request handler; one instance per worker thread, so it may hold `Rc`/`RefCell`
/// state such as the upstream connection pool.
pub trait Worker: 'static {
    fn handle(
        self: Rc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> LocalFuture<Response<Body>>;
}

/// How long graceful shutdown waits for open connections (streams included) to finish.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

/// What one client may hold of the server.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// How long a request's head may take to arrive, counted from the first read, and so
    /// also how long a kept-alive connection may sit idle between requests.
    pub header_read_timeout: Duration,
    /// Open connections across all workers; past it a new connection is closed at once (the
    /// descriptors stay free for the connections being served).
    pub max_connections: usize,
    /// How long graceful shutdown waits for open connections (streams included) to finish.
    pub drain: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: default_max_connections(),
            drain: DEFAULT_DRAIN,
        }
    }
}

/// Three quarters of the process's open-file limit (the rest for the database, upstream
/// connections and logs), or 8,192 where the limit cannot be read.
pub fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok())
        });
    soft.map_or(8192, |n| (n / 4 * 3).max(64))
}

/// Logs at most once per interval (accept failures and refusals can come by the thousand).
struct RateLimitedLog {
    last: AtomicU64,
    started: Instant,
}

impl RateLimitedLog {
    fn new() -> Self {
        RateLimitedLog {
            last: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Whether to log now (at most once every 10 s).
    fn due(&self) -> bool {
        let now = self.started.elapsed().as_secs() + 10;
        let last = self.last.load(Ordering::Relaxed);
        now >= last + 10
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Connection accounting shared by every worker.
struct Shared {
    limits: ServerLimits,
    open: AtomicUsize,
    refused: AtomicU64,
    refusal_log: RateLimitedLog,
    accept_log: RateLimitedLog,
}

/// One open connection's slot; freed on drop.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    fn take_slot(self: &Arc<Self>) -> Option<Slot> {
        let taken = self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.limits.max_connections).then_some(n + 1)
            })
            .is_ok();
        if taken {
            return Some(Slot(self.clone()));
        }
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if self.refusal_log.due() {
            tracing::warn!(
                max_connections = self.limits.max_connections,
                refused_so_far = refused,
                "connection limit reached: new connections are closed until others end (limits.max_connections)"
            );
        }
        None
    }
}

/// Running worker threads.
///
/// A worker's runtime also drives what its requests spawned: settlement tasks, database
/// connections opened on its thread. So a worker that has stopped serving keeps its runtime
/// running until this handle is dropped: a shutdown flushes the ledger first (through those
/// connections, waiting for those tasks), then drops the handle. Dropping the runtimes as soon
/// as serving stopped closed such connections under the flush, depending on scheduling.
pub struct ServerHandle {
    local_addr: SocketAddr,
    done: Vec<oneshot::Receiver<()>>,
    release: CancellationToken,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Resolves when every worker has stopped serving (after the shutdown token fired and open
    /// connections drained or the drain deadline passed). Their runtimes run on until the
    /// handle is dropped.
    pub async fn wait(&mut self) {
        for rx in self.done.drain(..) {
            let _ = rx.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.release.cancel();
    }
}

/// Starts `workers` threads serving `listener`. `make_worker(i)` runs on thread `i` to build
/// its handler.
pub fn spawn<W, F>(
    listener: std::net::TcpListener,
    workers: usize,
    limits: ServerLimits,
    shutdown: CancellationToken,
    make_worker: F,
) -> io::Result<ServerHandle>
where
    W: Worker,
    F: Fn(usize) -> W + Send + Sync + 'static,
{
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let make_worker = Arc::new(make_worker);
    let shared = Arc::new(Shared {
        limits,
        open: AtomicUsize::new(0),
        refused: AtomicU64::new(0),
        refusal_log: RateLimitedLog::new(),
        accept_log: RateLimitedLog::new(),
    });
    let mut done = Vec::with_capacity(workers.max(1));
    let release = CancellationToken::new();
    for index in 0..workers.max(1) {
        let listener = listener.try_clone()?;
        let shutdown = shutdown.clone();
        let release = release.clone();
        let make_worker = make_worker.clone();
        let shared = shared.clone();
        let (tx, rx) = oneshot::channel();
        done.push(rx);
        std::thread::Builder::new()
            .name(format!("orteam-worker-{index}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(err) => {
                        tracing::error!(%err, "cannot start a worker runtime");
                        return;
                    }
                };
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    let worker = Rc::new(make_worker(index));
                    if let Err(err) = accept_loop(listener, worker, shared, shutdown).await {
                        tracing::error!(%err, worker = index, "worker stopped on an error");
                    }
                    let _ = tx.send(());
                    release.cancelled().await;
                });
            })?;
    }
    Ok(ServerHandle {
        local_addr,
        done,
        release,
    })
}

async fn accept_loop<W: Worker>(
    listener: std::net::TcpListener,
    worker: Rc<W>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let drain = shared.limits.drain;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // half_close: once a request is read, the member's socket is not read again until the
    // answer is out. Otherwise hyper reserves a fresh 8 KiB read buffer per open stream only to
    // notice a hang-up early (11 MiB with 1,000 streams); a hang-up still ends the stream at
    // its next write, and a non-stream answer is settled even if its caller left.
    http.keep_alive(true)
        .max_buf_size(64 * 1024)
        .half_close(true)
        // Without a timer hyper enforces no header deadline at all; with one, a slow or idle
        // client is closed once its next request head is not complete in time.
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(err) => {
                    if shared.accept_log.due() {
                        tracing::warn!(%err, "accept failed (logged at most every 10 s)");
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Some(slot) = shared.take_slot() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let worker = worker.clone();
        let service = hyper::service::service_fn(move |req| {
            let worker = worker.clone();
            async move { Ok::<_, std::convert::Infallible>(worker.handle(req, peer).await) }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::task::spawn_local(async move {
            // Client resets, half-closed sockets and header timeouts are routine for a proxy.
            if let Err(err) = conn.await {
                tracing::debug!(%err, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline passed with connections still open");
    }
    Ok(())
}
