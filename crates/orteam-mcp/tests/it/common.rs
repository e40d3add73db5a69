//! Shared plumbing: a simulator, the MCP server on one end of a duplex pipe, rmcp's client on
//! the other, and helpers that check every result for the provisioning key.

use std::time::Duration;

use orteam_core::{Money, Window};
use orteam_mcp::{McpConfig, OrteamMcp};
use orteam_openrouter::Client;
use orteam_openrouter::types::chat::{ChatRequest, Message};
use orteam_test_support::SimHandle;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RunningService, ServiceError};
use rmcp::{RoleClient, ServiceExt};
use secrecy::SecretString;
use serde_json::Value;

/// A simulator plus an MCP client connected to an orteam MCP server that uses it.
pub struct Mcp {
    pub sim: SimHandle,
    pub client: RunningService<RoleClient, ()>,
    /// The key the server was configured with (must never appear in any output).
    pub key: String,
}

pub async fn start(allow_write: bool) -> Mcp {
    let sim = orteam_test_support::spawn_sim().await;
    let key = sim.provisioning_key().to_owned();
    start_with(sim, &key, allow_write).await
}

/// Connects a server configured with `key` (possibly not a management key) to `sim`.
pub async fn start_with(sim: SimHandle, key: &str, allow_write: bool) -> Mcp {
    let mut config = McpConfig::new(SecretString::from(key.to_owned()));
    config.base_url = Some(sim.base_url());
    config.allow_write = allow_write;
    let server = OrteamMcp::new(&config).expect("server builds");
    connect(sim, key, server).await
}

/// Connects rmcp's client to `server` (configured with `key` on `sim`).
pub async fn connect(sim: SimHandle, key: &str, server: OrteamMcp) -> Mcp {
    let (server_end, client_end) = tokio::io::duplex(256 * 1024);
    tokio::spawn(async move {
        if let Err(e) = orteam_mcp::serve_transport(server, server_end).await {
            eprintln!("server ended: {e}");
        }
    });
    let client = ().serve(client_end).await.expect("MCP initialize");
    Mcp {
        sim,
        client,
        key: key.to_owned(),
    }
}

/// Panics if `text` contains `key`.
pub fn assert_no_key(text: &str, key: &str) {
    assert!(
        !text.contains(key),
        "the provisioning key leaked into output:\n{text}"
    );
}

/// The text of a tool result (all text blocks joined).
pub fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn args(v: Value) -> Option<serde_json::Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        Value::Null => None,
        other => panic!("arguments must be an object, got {other}"),
    }
}

impl Mcp {
    /// The names from `tools/list`, sorted.
    pub async fn tool_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .client
            .list_all_tools()
            .await
            .expect("tools/list")
            .into_iter()
            .map(|t| t.name.into_owned())
            .collect();
        names.sort();
        names
    }

    /// Calls a tool; the result (or the JSON-RPC error) is checked for the key.
    pub async fn call(&self, name: &str, arguments: Value) -> Result<CallToolResult, ServiceError> {
        let mut params = CallToolRequestParams::new(name.to_owned());
        params.arguments = args(arguments);
        let r = tokio::time::timeout(Duration::from_secs(60), self.client.call_tool(params))
            .await
            .expect("tool call timed out");
        match &r {
            Ok(res) => {
                assert_no_key(&text_of(res), &self.key);
                assert_no_key(&serde_json::to_string(res).unwrap(), &self.key);
            }
            Err(e) => assert_no_key(&format!("{e} {e:?}"), &self.key),
        }
        r
    }

    /// Calls a tool that must succeed; returns its text.
    pub async fn ok(&self, name: &str, arguments: Value) -> String {
        let r = self
            .call(name, arguments.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}({arguments}) protocol error: {e}"));
        let text = text_of(&r);
        assert_ne!(r.is_error, Some(true), "{name}({arguments}) failed: {text}");
        assert_eq!(r.content.len(), 1, "one text item");
        text
    }

    /// Calls a tool that must fail with `isError: true`; returns the error text.
    pub async fn err(&self, name: &str, arguments: Value) -> String {
        let r = self
            .call(name, arguments.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}({arguments}) protocol error: {e}"));
        let text = text_of(&r);
        assert_eq!(
            r.is_error,
            Some(true),
            "{name}({arguments}) should fail: {text}"
        );
        assert!(!text.trim().is_empty(), "error text is empty");
        text
    }

    /// The server still answers.
    pub async fn assert_alive(&self) {
        let t = self.ok("or_credits", serde_json::json!({})).await;
        assert!(t.starts_with("Credits:"), "{t}");
    }

    /// A typed client on the simulator with the management key (for setup).
    pub fn admin(&self) -> Client {
        Client::builder()
            .base_url(self.sim.base_url())
            .api_key(SecretString::from(self.key.clone()))
            .cache_ttl(None)
            .build()
            .unwrap()
    }

    /// Creates an inference key on the simulator: (secret, hash).
    pub fn create_key(
        &self,
        name: &str,
        limit: Option<&str>,
        reset: Option<Window>,
    ) -> (String, String) {
        self.sim
            .create_key(name, limit.map(|l| Money::parse(l).unwrap()), reset)
    }

    /// Makes `n` completions with `secret` on `model`; returns the generation ids.
    pub async fn traffic(&self, secret: &str, model: &str, n: usize) -> Vec<String> {
        let c = Client::builder()
            .base_url(self.sim.base_url())
            .api_key(SecretString::from(secret.to_owned()))
            .build()
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..n {
            let req = ChatRequest::new(
                model,
                vec![Message::user(format!("hello number {i} [[sim:tokens=20]]"))],
            );
            let done = c.chat(&req).await.expect("completion");
            ids.push(done.generation_id().to_owned());
        }
        ids
    }

    /// Moves the simulator's clock a day ahead, so today's traffic is in a completed day.
    pub fn next_day(&self) {
        self.sim.clock().advance(chrono::TimeDelta::hours(24));
    }
}

/// The value after `prefix` on the first line that starts with it.
pub fn line_value(text: &str, prefix: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
        .trim()
        .to_owned()
}

/// The first `…` between backticks after `marker`.
pub fn backticked_after(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in:\n{text}"))
        + marker.len();
    let rest = &text[start..];
    let a = rest.find('`').expect("opening backtick") + 1;
    let b = rest[a..].find('`').expect("closing backtick") + a;
    rest[a..b].to_owned()
}
