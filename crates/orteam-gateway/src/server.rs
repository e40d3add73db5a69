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
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
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

/// Running worker threads.
pub struct ServerHandle {
    local_addr: SocketAddr,
    done: Vec<oneshot::Receiver<()>>,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Resolves when every worker has stopped (after the shutdown token fired and open
    /// connections drained or the drain deadline passed).
    pub async fn wait(self) {
        for rx in self.done {
            let _ = rx.await;
        }
    }
}

/// Starts `workers` threads serving `listener`. `make_worker(i)` runs on thread `i` to build
/// its handler.
pub fn spawn<W, F>(
    listener: std::net::TcpListener,
    workers: usize,
    drain: Duration,
    shutdown: CancellationToken,
    make_worker: F,
) -> io::Result<ServerHandle>
where
    W: Worker,
    F: Fn(usize) -> W + Send + Sync + 'static,
{
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let make_worker = std::sync::Arc::new(make_worker);
    let mut done = Vec::with_capacity(workers.max(1));
    for index in 0..workers.max(1) {
        let listener = listener.try_clone()?;
        let shutdown = shutdown.clone();
        let make_worker = make_worker.clone();
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
                    if let Err(err) = accept_loop(listener, worker, drain, shutdown).await {
                        tracing::error!(%err, worker = index, "worker stopped on an error");
                    }
                });
                let _ = tx.send(());
            })?;
    }
    Ok(ServerHandle { local_addr, done })
}

async fn accept_loop<W: Worker>(
    listener: std::net::TcpListener,
    worker: Rc<W>,
    drain: Duration,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // half_close: once a request is read, the member's socket is not read again until the
    // answer is out. Otherwise hyper reserves a fresh 8 KiB read buffer per open stream only to
    // notice a hang-up early (11 MiB with 1,000 streams); a hang-up still ends the stream at
    // its next write, and a non-stream answer is settled even if its caller left.
    http.keep_alive(true)
        .max_buf_size(64 * 1024)
        .half_close(true);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
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
            // Client resets and half-closed sockets are routine for a proxy.
            if let Err(err) = conn.await {
                tracing::debug!(%err, "connection ended with an error");
            }
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
