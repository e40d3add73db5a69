//! A webhook receiver for alert tests: records each POST (headers and JSON body) and answers
//! 200, or 500 while [`WebhookReceiver::set_failing`] is on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One POST the receiver answered with 200.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (a JSON string holding the text when it is not JSON).
    pub body: serde_json::Value,
}

impl Delivery {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct WebhookReceiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    got: Arc<Mutex<Vec<Delivery>>>,
    failing: Arc<AtomicBool>,
}

impl WebhookReceiver {
    /// Listens on an ephemeral port until the test's runtime ends.
    pub async fn start() -> WebhookReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let rx = WebhookReceiver {
            url: format!("http://{}/hook", listener.local_addr().expect("addr")),
            got: Arc::default(),
            failing: Arc::default(),
        };
        let state = rx.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(state.clone().answer(socket));
            }
        });
        rx
    }

    /// Answers 500 (and records nothing) while `failing`.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Every delivery so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().expect("lock").clone()
    }

    /// The alert ids delivered so far (`x-orteam-alert-id`), checking that each matches its
    /// body's `id`.
    pub fn ids(&self) -> Vec<String> {
        self.deliveries()
            .iter()
            .map(|d| {
                let id = d.header("x-orteam-alert-id").expect("alert id header");
                assert_eq!(d.body["id"].as_str(), Some(id), "header and body ids agree");
                id.to_owned()
            })
            .collect()
    }

    /// Waits (bounded) for the first delivery.
    pub async fn first(&self) -> Option<Delivery> {
        crate::poll_until(
            || async { self.deliveries().first().cloned() },
            Option::is_some,
        )
        .await
        .ok()
        .flatten()
    }

    async fn answer(self, mut socket: tokio::net::TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = socket.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let headers: Vec<(String, String)> = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let len = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                continue;
            }
            let status = if self.failing.load(Ordering::SeqCst) {
                "500 Internal Server Error"
            } else {
                let raw = &buf[end + 4..end + 4 + len];
                let body = serde_json::from_slice(raw).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(raw).into_owned())
                });
                self.got
                    .lock()
                    .expect("lock")
                    .push(Delivery { headers, body });
                "200 OK"
            };
            let _ = socket
                .write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
            return;
        }
    }
}
