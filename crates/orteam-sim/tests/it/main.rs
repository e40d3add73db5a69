//! Integration tests: real HTTP against simulators on ephemeral ports.
// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod activity;
mod admin;
mod auth;
mod bad_input;
mod chat;
mod completions;
mod embeddings;
mod faults;
mod guardrails;
mod keys;
mod limits;
mod messages;
mod models;
mod responses;
mod sdk;
mod state_file;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use orteam_core::{ControllableClock, Money, Window};
use orteam_sim::{SimConfig, SimHandle};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;
use serde_json::value::RawValue;

/// A running simulator plus a client.
pub struct Ctx {
    pub sim: SimHandle,
    pub http: reqwest::Client,
}

/// A parsed response: status, headers, raw text and JSON (when it is JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    /// The exact text of the JSON value at `pointer` (e.g. `/usage/cost`), numbers unrounded.
    pub fn raw(&self, pointer: &str) -> String {
        raw_at(&self.text, pointer)
    }

    pub fn money(&self, pointer: &str) -> Money {
        money_at(&self.text, pointer)
    }

    /// Asserts an OpenRouter error body whose code equals the status.
    #[track_caller]
    pub fn assert_error(&self, status: u16) -> &str {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{}",
            self.text
        );
        assert_eq!(self.json["error"]["code"], status, "{}", self.text);
        self.json["error"]["message"]
            .as_str()
            .expect("error.message is a string")
    }
}

pub fn raw_at(text: &str, pointer: &str) -> String {
    let mut cur: Box<RawValue> = serde_json::from_str(text).expect("json");
    for seg in pointer.split('/').skip(1) {
        cur = if let Ok(i) = seg.parse::<usize>() {
            let mut v: Vec<Box<RawValue>> = serde_json::from_str(cur.get()).expect("array");
            v.swap_remove(i)
        } else {
            let mut m: HashMap<String, Box<RawValue>> =
                serde_json::from_str(cur.get()).expect("object");
            m.remove(seg)
                .unwrap_or_else(|| panic!("no {seg} in {}", cur.get()))
        };
    }
    cur.get().to_owned()
}

pub fn money_at(text: &str, pointer: &str) -> Money {
    let raw = raw_at(text, pointer);
    assert!(
        !raw.starts_with('"'),
        "money at {pointer} must be a JSON number, got {raw}"
    );
    Money::parse(&raw).expect("decimal")
}

pub fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

impl Ctx {
    pub async fn new() -> Self {
        Self::with(SimConfig::default()).await
    }

    pub async fn with(config: SimConfig) -> Self {
        let sim = orteam_sim::spawn(config).await.expect("spawn");
        Ctx {
            sim,
            http: reqwest::Client::new(),
        }
    }

    /// A simulator whose clock is frozen at `at`.
    pub async fn frozen_at(at: DateTime<Utc>) -> Self {
        Self::with(SimConfig {
            clock: Arc::new(ControllableClock::frozen_at(at)),
            ..SimConfig::default()
        })
        .await
    }

    pub fn mgmt(&self) -> String {
        self.sim.provisioning_key().to_owned()
    }

    pub fn key(&self, name: &str) -> String {
        self.sim.create_key(name, None, None).0
    }

    pub fn key_with_limit(
        &self,
        name: &str,
        limit: &str,
        reset: Option<Window>,
    ) -> (String, String) {
        self.sim.create_key(name, Some(m(limit)), reset)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let url = if path.starts_with("/__sim") {
            format!("{}{path}", self.sim.root_url())
        } else {
            format!("{}{path}", self.sim.base_url())
        };
        let mut req = self.http.request(method, url);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::finish(req).await
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Resp {
        self.send(Method::GET, path, key, None).await
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: Value) -> Resp {
        self.send(Method::POST, path, key, Some(&body)).await
    }

    pub async fn patch(&self, path: &str, key: Option<&str>, body: Value) -> Resp {
        self.send(Method::PATCH, path, key, Some(&body)).await
    }

    pub async fn delete(&self, path: &str, key: Option<&str>) -> Resp {
        self.send(Method::DELETE, path, key, None).await
    }

    /// A raw-body POST (for malformed JSON).
    pub async fn post_raw(&self, path: &str, key: Option<&str>, body: &'static str) -> Resp {
        let mut req = self
            .http
            .post(format!("{}{path}", self.sim.base_url()))
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        Self::finish(req).await
    }

    /// Sends `req` and reads the whole answer.
    async fn finish(req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.expect("send");
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    /// A simple completion on `model` with a user message.
    pub async fn chat(&self, key: &str, model: &str, user: &str) -> Resp {
        self.post(
            "/chat/completions",
            Some(key),
            serde_json::json!({"model": model, "messages": [{"role": "user", "content": user}]}),
        )
        .await
    }

    pub async fn admin_credits(&self) -> (Money, Money) {
        let r = self.get("/credits", Some(&self.mgmt())).await;
        assert_eq!(r.status, 200, "{}", r.text);
        (r.money("/data/total_credits"), r.money("/data/total_usage"))
    }

    pub async fn key_info(&self, hash: &str) -> Resp {
        let r = self.get(&format!("/keys/{hash}"), Some(&self.mgmt())).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r
    }

    /// Reads a whole SSE stream (or up to the error that cut it).
    pub async fn stream(&self, key: &str, body: Value) -> (StatusCode, HeaderMap, StreamText) {
        self.stream_at("/chat/completions", key, body).await
    }

    /// Reads a whole SSE stream from `path` (or up to the error that cut it).
    pub async fn stream_at(
        &self,
        path: &str,
        key: &str,
        body: Value,
    ) -> (StatusCode, HeaderMap, StreamText) {
        let mut r = self
            .http
            .post(format!("{}{path}", self.sim.base_url()))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("send");
        let headers = r.headers().clone();
        let status = r.status();
        let mut text = String::new();
        let mut cut = false;
        loop {
            match r.chunk().await {
                Ok(Some(b)) => text.push_str(std::str::from_utf8(&b).unwrap()),
                Ok(None) => break,
                Err(_) => {
                    cut = true;
                    break;
                }
            }
        }
        (status, headers, StreamText { text, cut })
    }
}

/// A streamed body, split into SSE events.
pub struct StreamText {
    pub text: String,
    pub cut: bool,
}

impl StreamText {
    /// The `data:` payloads in order (without `[DONE]`).
    pub fn data(&self) -> Vec<String> {
        self.text
            .split("\n\n")
            .filter_map(|ev| ev.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(str::to_owned)
            .collect()
    }

    pub fn chunks(&self) -> Vec<Value> {
        self.data()
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    pub fn content(&self) -> String {
        self.chunks()
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    /// Named events (`event: <name>\ndata: <json>`) in order.
    pub fn events(&self) -> Vec<(String, Value)> {
        self.text
            .split("\n\n")
            .filter_map(|ev| {
                let (name, data) = ev.strip_prefix("event: ")?.split_once("\ndata: ")?;
                Some((name.to_owned(), serde_json::from_str(data).unwrap()))
            })
            .collect()
    }

    /// The raw `data:` JSON of named events, in order (for exact money reads).
    pub fn event_data(&self) -> Vec<String> {
        self.text
            .split("\n\n")
            .filter_map(|ev| {
                let (_, data) = ev.strip_prefix("event: ")?.split_once("\ndata: ")?;
                Some(data.to_owned())
            })
            .collect()
    }

    /// The names of [`StreamText::events`].
    pub fn event_names(&self) -> Vec<String> {
        self.events().into_iter().map(|(n, _)| n).collect()
    }

    pub fn has_done(&self) -> bool {
        self.text.ends_with("data: [DONE]\n\n")
    }
}

/// The `/generation` record of `id` (waiting until it exists), read with `key`.
pub async fn generation(c: &Ctx, key: &str, id: &str) -> Resp {
    wait_generation(&c.sim, id).await;
    let g = c.get(&format!("/generation?id={id}"), Some(key)).await;
    assert_eq!(g.status, 200, "{}", g.text);
    g
}

/// A key whose limit is used up (one chat request spends past it).
pub async fn spent_key(c: &Ctx) -> String {
    let (key, _) = c.key_with_limit("spent", "0.000001", None);
    let r = c
        .chat(&key, "openai/gpt-4o-mini", "hi [[sim:tokens=10]]")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    key
}

/// Waits (bounded) until the simulator has recorded generation `id`.
pub async fn wait_generation(sim: &SimHandle, id: &str) {
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        sim.wait_for_generation(id),
    )
    .await
    .expect("generation recorded in time");
}
