//! The upstream connection pool against hand-written HTTP/1.1 servers on ephemeral ports: a
//! pooled connection the server closed is replaced without the caller noticing, connections
//! are reused, an answer whose chunks arrive together is handed over as one frame, and idle
//! connections are closed after the idle timeout.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::BodyExt;
use orteam_gateway::upstream::{Upstream, UpstreamSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const ANSWER: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

/// Reads one request (head and content-length body) from `sock`; false at EOF.
async fn read_request(sock: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < end + 4 + len {
                let n = sock.read(&mut chunk).await.unwrap();
                assert!(n > 0, "request body cut");
                buf.extend_from_slice(&chunk[..n]);
            }
            return true;
        }
        let n = sock.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return false;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A server on an ephemeral port that runs `conn` for every connection it accepts; returns
/// the port and the number of connections accepted so far.
async fn serve<F, Fut>(conn: F) -> (u16, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(conn(sock));
        }
    });
    (port, accepted)
}

fn upstream(port: u16) -> Upstream {
    let settings = UpstreamSettings::new(
        &format!("http://127.0.0.1:{port}/api/v1"),
        Duration::from_secs(5),
    )
    .unwrap();
    Upstream::new(&settings)
}

async fn call(up: &Upstream) -> Bytes {
    let resp = up
        .chat(
            &HeaderValue::from_static("Bearer k"),
            &[],
            Bytes::from_static(b"{}"),
        )
        .await
        .expect("answer");
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_closed_by_the_server_while_idle_is_replaced() {
    // One answer per connection, kept alive as far as the client can tell, then closed (as a
    // server closes an idle connection).
    let (port, accepted) = serve(|mut sock| async move {
        if read_request(&mut sock).await {
            sock.write_all(ANSWER.as_bytes()).await.unwrap();
        }
    })
    .await;
    let up = upstream(port);
    for _ in 0..3 {
        assert_eq!(&call(&up).await[..], b"{}");
        // The pooled connection is closed by the server by the next call.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "a closed connection cannot have been reused"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn kept_alive_connections_are_reused_and_chunks_that_arrive_together_come_as_one_frame() {
    let (port, accepted) = serve(|mut sock| async move {
        while read_request(&mut sock).await {
            // Head and three SSE events in separate HTTP chunks, written at once.
            let mut out = String::from(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
            );
            for event in ["data: 1\n\n", "data: 2\n\n", "data: [DONE]\n\n"] {
                out.push_str(&format!("{:x}\r\n{event}\r\n", event.len()));
            }
            out.push_str("0\r\n\r\n");
            sock.write_all(out.as_bytes()).await.unwrap();
        }
    })
    .await;
    let up = upstream(port);
    for _ in 0..5 {
        let resp = up
            .chat(
                &HeaderValue::from_static("Bearer k"),
                &[],
                Bytes::from_static(b"{}"),
            )
            .await
            .unwrap();
        let mut body = resp.into_body();
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        let all: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        assert_eq!(all, b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n");
        assert_eq!(frames.len(), 1, "{frames:?}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one kept-alive connection for sequential calls"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let (closed_tx, mut closed) = mpsc::unbounded_channel();
    let (port, _) = serve(move |mut sock| {
        let closed_tx = closed_tx.clone();
        async move {
            while read_request(&mut sock).await {
                sock.write_all(ANSWER.as_bytes()).await.unwrap();
            }
            // The client closed its end.
            closed_tx.send(()).unwrap();
        }
    })
    .await;
    let settings = UpstreamSettings::new(
        &format!("http://127.0.0.1:{port}/api/v1"),
        Duration::from_secs(5),
    )
    .unwrap()
    .with_idle_timeout(Duration::from_millis(100));
    let up = Upstream::new(&settings);
    assert_eq!(&call(&up).await[..], b"{}");
    tokio::time::timeout(Duration::from_secs(5), closed.recv())
        .await
        .expect("the idle connection was closed by the pool")
        .unwrap();
    // The pool still works afterwards, on a new connection.
    assert_eq!(&call(&up).await[..], b"{}");
}
