//! Database faults under load, through the real binary: PostgreSQL unreachable (a TCP proxy
//! between the gateway and the shared server is cut, then restored) → new requests get an
//! OpenAI-style 503 with `Retry-After`, never a hang; nothing acknowledged is lost; service
//! comes back by itself.

// The drill prints its table (bench/crash-drill.sh collects it).
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orteam_core::Money;
use orteam_ledger::EventFilter;
use orteam_test_support::{CuttableProxy, postgres_addr, seed_directory};
use serde_json::{Value, json};

use crate::crash::Gateway;
use crate::support::{Backend, Env};

#[derive(Default)]
struct Seen {
    answered: Mutex<Vec<String>>,
    unavailable: AtomicU64,
    /// 503s without `Retry-After` or not in OpenAI's error shape.
    malformed: Mutex<Vec<String>>,
    /// Answers after the database came back.
    after_restore: AtomicU64,
    restored: AtomicBool,
    stop: AtomicBool,
}

async fn client(http: reqwest::Client, base: String, key: String, n: u64, seen: Arc<Seen>) {
    for j in 0u64.. {
        if seen.stop.load(Ordering::Relaxed) {
            return;
        }
        let stream = (n + j).is_multiple_of(2);
        let body = json!({
            "model": "openai/gpt-4o-mini",
            "messages": [{"role": "user", "content": format!("fault [[sim:tokens={}]]", 3 + j % 10)}],
            "max_tokens": 30,
            "stream": stream,
        });
        let Ok(resp) = tokio::time::timeout(
            Duration::from_secs(30),
            http.post(format!("{base}/chat/completions"))
                .bearer_auth(&key)
                .json(&body)
                .send(),
        )
        .await
        else {
            seen.malformed.lock().unwrap().push("a request hung".into());
            return;
        };
        let Ok(resp) = resp else { return };
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").is_some();
        let id = resp
            .headers()
            .get("x-orteam-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Ok(text) = resp.text().await else {
            continue;
        };
        match status {
            200 => {
                let complete = if stream {
                    text.contains("data: [DONE]")
                } else {
                    serde_json::from_str::<Value>(&text).is_ok()
                };
                if complete && let Some(id) = id {
                    seen.answered.lock().unwrap().push(id);
                    if seen.restored.load(Ordering::Relaxed) {
                        seen.after_restore.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            503 => {
                seen.unavailable.fetch_add(1, Ordering::Relaxed);
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                if !retry_after || v["error"]["code"] != "ledger_unavailable" {
                    seen.malformed.lock().unwrap().push(text);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_unreachable_under_load_refuses_with_503_and_recovers() {
    let env = Env::new(Backend::Postgres).await;
    env.sim.add_credits(Money::from_cents(100_000));
    let shared = orteam_test_support::inference_key(&env.sim, "shared");
    let admin = env.ledger().await;
    let keys = seed_directory(&admin, &HashMap::new()).await;
    admin.shutdown().await.unwrap();
    let proxy = CuttableProxy::start(postgres_addr(&env.db_url)).await;
    let url = proxy.postgres_url(&env.db_url);
    let gw = Gateway::start_on(&env, &shared, &url).await;

    let seen = Arc::new(Seen::default());
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let member = if i % 2 == 0 { "alice" } else { "bob" };
            tokio::spawn(client(
                http.clone(),
                gw.base_url.clone(),
                keys[member].clone(),
                i,
                seen.clone(),
            ))
        })
        .collect();
    let warm = orteam_test_support::poll_until(
        || {
            let seen = seen.clone();
            async move { seen.answered.lock().unwrap().len() }
        },
        |n| *n >= 100,
    )
    .await;
    assert!(warm.is_ok(), "load reached the gateway: {warm:?}");

    // The database goes away: clear 503s, no hang.
    proxy.cut();
    let refused = orteam_test_support::poll_until(
        || {
            let seen = seen.clone();
            async move { seen.unavailable.load(Ordering::Relaxed) }
        },
        |n| *n >= 20,
    )
    .await;
    assert!(refused.is_ok(), "requests refused while down: {refused:?}");

    // It comes back: service resumes by itself.
    proxy.restore();
    seen.restored.store(true, Ordering::Relaxed);
    let back = orteam_test_support::poll_until(
        || {
            let seen = seen.clone();
            async move { seen.after_restore.load(Ordering::Relaxed) }
        },
        |n| *n >= 50,
    )
    .await;
    assert!(
        back.is_ok(),
        "service back after the database returned: {back:?}"
    );
    seen.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    gw.stop().await;

    let malformed = seen.malformed.lock().unwrap().clone();
    assert!(malformed.is_empty(), "bad refusals: {malformed:?}");
    // Nothing acknowledged is lost.
    let ledger = env.ledger().await;
    let have: std::collections::HashSet<String> = ledger
        .events(EventFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.usage.request_id)
        .collect();
    let answered = seen.answered.lock().unwrap().clone();
    let lost: Vec<&String> = answered.iter().filter(|id| !have.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered requests lost",
        lost.len(),
        answered.len()
    );
    println!(
        "answered {}, refused with 503 {}, answered after the database returned {}",
        answered.len(),
        seen.unavailable.load(Ordering::Relaxed),
        seen.after_restore.load(Ordering::Relaxed)
    );
    ledger.shutdown().await.unwrap();
}
