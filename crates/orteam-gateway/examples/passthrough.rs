//! A bare pass-through on the gateway's server core and upstream pool, with no policy at all:
//! the floor the full gateway is measured against in docs/BENCHMARKS.md.
//!
//! `cargo run --release -p orteam-gateway --example passthrough -- 127.0.0.1:9100 http://127.0.0.1:9000/api/v1`

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use axum::body::Body;
use http::HeaderValue;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use orteam_gateway::server::{self, LocalFuture, Worker};
use orteam_gateway::upstream::{Upstream, UpstreamSettings};
use tokio_util::sync::CancellationToken;

// The allocator the `orteam` binary uses, so the floor is measured like the gateway.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Passthrough {
    upstream: Upstream,
}

impl Worker for Passthrough {
    fn handle(
        self: Rc<Self>,
        req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> LocalFuture<Response<Body>> {
        Box::pin(async move {
            let auth = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .cloned()
                .unwrap_or(HeaderValue::from_static(""));
            // The same route upstream: `/api/v1/messages` → `<base>/messages`.
            let path = req
                .uri()
                .path()
                .strip_prefix("/api/v1/")
                .and_then(|rest| self.upstream.path(rest, None).ok());
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let sent = match path {
                Some(path) => self.upstream.post(path, &auth, &[], &[], body).await,
                None => self.upstream.chat(&auth, &[], body).await,
            };
            match sent {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let bytes = body.collect().await.unwrap().to_bytes();
                    let mut out = Response::new(Body::from(bytes));
                    *out.status_mut() = parts.status;
                    if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE) {
                        out.headers_mut()
                            .insert(http::header::CONTENT_TYPE, ct.clone());
                    }
                    out
                }
                Err(e) => {
                    let mut out = Response::new(Body::from(e.to_string()));
                    *out.status_mut() = http::StatusCode::BAD_GATEWAY;
                    out
                }
            }
        })
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .unwrap_or("127.0.0.1:9100".into())
        .parse()
        .unwrap();
    let upstream = args.next().unwrap_or("http://127.0.0.1:9000/api/v1".into());
    let workers: usize = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    let listener = std::net::TcpListener::bind(listen).unwrap();
    let settings = UpstreamSettings::new(&upstream, Duration::from_secs(30)).unwrap();
    let mut handle = server::spawn(
        listener,
        workers,
        server::ServerLimits {
            drain: Duration::from_secs(1),
            ..Default::default()
        },
        CancellationToken::new(),
        move |_| Passthrough {
            upstream: Upstream::new(&settings),
        },
    )
    .unwrap();
    println!("http://{}", handle.local_addr());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(handle.wait());
}
