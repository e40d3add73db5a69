//! The streamable HTTP transport behind a bearer token.

use std::time::Duration;

use orteam_mcp::{MCP_HTTP_PATH, McpConfig};
use secrecy::SecretString;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::assert_no_key;

const TOKEN: &str = "test-bearer-token-0123456789";

/// Reads the response body until `needle` shows up (SSE bodies may stay open).
async fn read_until(mut resp: reqwest::Response, needle: &str) -> String {
    let mut body = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !body.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {needle:?}; got {body}"))
            .unwrap();
        match chunk {
            Some(c) => body.push_str(&String::from_utf8_lossy(&c)),
            None => break,
        }
    }
    body
}

#[tokio::test]
async fn http_transport_requires_the_bearer_token() {
    let sim = orteam_test_support::spawn_sim().await;
    let key = sim.provisioning_key().to_owned();
    let mut config = McpConfig::new(SecretString::from(key.clone()));
    config.base_url = Some(sim.base_url());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(orteam_mcp::serve_http(
        config,
        listener,
        SecretString::from(TOKEN.to_owned()),
        shutdown.clone(),
    ));
    let url = format!("http://{addr}{MCP_HTTP_PATH}");
    let http = reqwest::Client::new();
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": { "name": "it", "version": "0" }
        }
    });
    let post = |auth: Option<String>| {
        let mut req = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };

    for auth in [
        None,
        Some("Bearer wrong-token".to_owned()),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer {key}")),
    ] {
        let resp = post(auth.clone()).await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let body = resp.text().await.unwrap();
        assert!(body.contains("missing or invalid bearer token"), "{body}");
        assert_no_key(&body, &key);
    }

    let resp = post(Some(format!("Bearer {TOKEN}"))).await.unwrap();
    assert_eq!(resp.status(), 200);
    let session = resp
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = read_until(resp, "\"orteam\"").await;
    assert!(body.contains("\"serverInfo\""), "{body}");

    // A tool call in the same session.
    let mut initialized = http
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    if let Some(s) = &session {
        initialized = initialized.header("mcp-session-id", s);
    }
    assert!(initialized.send().await.unwrap().status().is_success());
    let mut call = http
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({
            "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": { "name": "or_credits", "arguments": {} }
        }));
    if let Some(s) = &session {
        call = call.header("mcp-session-id", s);
    }
    let resp = call.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = read_until(resp, "Remaining").await;
    assert!(body.contains("Credits:"), "{body}");
    assert_no_key(&body, &key);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("server stops on shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn http_transport_rejects_an_empty_token() {
    let mut config = McpConfig::new(SecretString::from("sk-or-v1-x".to_owned()));
    config.base_url = Some("http://127.0.0.1:9/api/v1".to_owned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = orteam_mcp::serve_http(
        config,
        listener,
        SecretString::from(" ".to_owned()),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("bearer token must not be empty"),
        "{err}"
    );
}
