//! `orteam serve` as a process: kill -9 under load loses no answered request, and two gateway
//! processes on one PostgreSQL share budgets and revocations.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orteam_core::{Money, Window};
use orteam_ledger::{BudgetScope, EventFilter, LedgerOptions};
use orteam_test_support::{ADMIN_TOKEN, Backend, TestDb, TestKey, seed_directory};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{bin, both_backends};

/// A running `orteam serve`.
pub(crate) struct Serve {
    child: tokio::process::Child,
    pub(crate) base_url: String,
}

pub(crate) async fn serve(db_url: &str, sim: &orteam_sim::SimHandle, upstream: &TestKey) -> Serve {
    let mut child = tokio::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
        .env_remove("ORTEAM_LOG")
        .env("OPENROUTER_BASE_URL", sim.base_url())
        .env("OPENROUTER_API_KEY", &upstream.secret)
        .env("ORTEAM_DATABASE_URL", db_url)
        .env("ORTEAM_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn orteam serve");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base_url = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("orteam serve printed its URL in time")
        .unwrap()
        .expect("a URL line");
    assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");
    Serve { child, base_url }
}

fn chat_body(tokens: u32, stream: bool) -> Value {
    json!({
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": format!("hello [[sim:tokens={tokens}]]")}],
        "max_tokens": 60,
        "stream": stream,
    })
}

/// Sends one request; returns its request id if the answer arrived complete.
async fn answered(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    body: &Value,
) -> Result<Option<String>, ()> {
    let resp = http
        .post(format!("{base}/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .map_err(|_| ())?;
    let status = resp.status();
    let id = resp
        .headers()
        .get("x-orteam-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.map_err(|_| ())?;
    if status != 200 {
        return Ok(None);
    }
    let complete = if body["stream"] == true {
        text.contains("data: [DONE]")
    } else {
        serde_json::from_str::<Value>(&text).is_ok()
    };
    Ok(if complete { id } else { None })
}

both_backends!(kill_9_loses_no_answered_request);

async fn kill_9_loses_no_answered_request(backend: Backend) {
    let sim = orteam_test_support::spawn_sim().await;
    sim.add_credits(Money::from_cents(100_000));
    let upstream = orteam_test_support::inference_key(&sim, "shared");
    let db = TestDb::new(backend).await;
    let admin = db.open(LedgerOptions::admin()).await;
    let keys = seed_directory(&admin, &HashMap::new()).await;
    let first = serve(&db.url, &sim, &upstream).await;
    let done = Arc::new(Mutex::new(Vec::<String>::new()));
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..16u32 {
        let (http, base, key, done) = (
            http.clone(),
            first.base_url.clone(),
            keys[if i % 2 == 0 { "alice" } else { "bob" }].clone(),
            done.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for j in 0..10_000u32 {
                match answered(&http, &base, &key, &chat_body(3 + j % 20, (i + j) % 2 == 0)).await {
                    Ok(Some(id)) => done.lock().unwrap().push(id),
                    Ok(None) => {}
                    Err(()) => return,
                }
            }
        }));
    }
    // Let load build up, then kill the gateway mid-flight.
    for _ in 0..600 {
        if done.lock().unwrap().len() >= 150 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut first = first;
    first.child.start_kill().unwrap(); // SIGKILL
    first.child.wait().await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let answered_ids = done.lock().unwrap().clone();
    assert!(
        answered_ids.len() >= 50,
        "load reached the gateway ({})",
        answered_ids.len()
    );

    // A restarted gateway opens the same ledger (the dead one's lock and leases are gone) …
    let second = serve(&db.url, &sim, &upstream).await;
    let id = answered(
        &http,
        &second.base_url,
        &keys["alice"],
        &chat_body(3, false),
    )
    .await
    .unwrap();
    assert!(id.is_some(), "the restarted gateway serves");
    // … and every request that was answered before the kill is in it.
    let recorded: std::collections::HashSet<String> = admin
        .events(EventFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.usage.request_id)
        .collect();
    let lost: Vec<&String> = answered_ids
        .iter()
        .filter(|id| !recorded.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered requests lost: {lost:?}",
        lost.len(),
        answered_ids.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_on_one_postgres_share_budgets_and_revocations() {
    let sim = orteam_test_support::spawn_sim().await;
    sim.add_credits(Money::from_cents(100_000));
    let upstream = orteam_test_support::inference_key(&sim, "shared");
    let db = TestDb::new(Backend::Postgres).await;
    let admin = db.open(LedgerOptions::admin()).await;
    let keys = seed_directory(&admin, &HashMap::new()).await;
    let limit = Money::parse("0.002").unwrap();
    admin
        .set_budget(BudgetScope::Member, "alice", Window::Daily, limit)
        .await
        .unwrap();
    admin
        .set_budget(
            BudgetScope::Team,
            "core",
            Window::Daily,
            Money::parse("0.003").unwrap(),
        )
        .await
        .unwrap();
    let a = serve(&db.url, &sim, &upstream).await;
    let b = serve(&db.url, &sim, &upstream).await;
    let http = reqwest::Client::new();
    let ok = Arc::new(Mutex::new(0u32));
    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let base = if i % 2 == 0 {
            a.base_url.clone()
        } else {
            b.base_url.clone()
        };
        let key = keys[if i % 4 == 3 { "bob" } else { "alice" }].clone();
        let (http, ok) = (http.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..60u32 {
                let resp = http
                    .post(format!("{base}/chat/completions"))
                    .bearer_auth(&key)
                    .json(&chat_body(10 + (i * 3 + j) % 50, j % 3 == 0))
                    .send()
                    .await
                    .unwrap();
                match resp.status().as_u16() {
                    200 => {
                        let _ = resp.bytes().await.unwrap();
                        *ok.lock().unwrap() += 1;
                    }
                    402 => break,
                    s => panic!("status {s}: {}", resp.text().await.unwrap()),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ok = *ok.lock().unwrap();
    assert!(ok > 10, "{ok} requests went through");
    let events = admin.events(EventFilter::default()).await.unwrap();
    assert_eq!(
        events.len() as u32,
        ok,
        "every answered request is recorded once"
    );
    let alice: Money = events
        .iter()
        .filter(|e| e.member_id == "alice")
        .map(|e| e.usage.cost)
        .sum();
    let team: Money = events.iter().map(|e| e.usage.cost).sum();
    assert!(
        alice <= limit,
        "alice spent {alice} across two gateways, limit {limit}"
    );
    assert!(team <= Money::parse("0.003").unwrap(), "team spent {team}");
    let billed = orteam_test_support::sim_credits_used(&sim).await;
    assert_eq!(team, billed, "the ledger equals what upstream billed");

    // A revocation through one gateway is enforced by the other within a second.
    let resp = http
        .post(format!(
            "{}/admin/v1/members/carol/revoke",
            a.base_url.trim_end_matches("/v1")
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut refused = false;
    for _ in 0..20 {
        let resp = http
            .post(format!("{}/chat/completions", b.base_url))
            .bearer_auth(&keys["carol"])
            .json(&chat_body(3, false))
            .send()
            .await
            .unwrap();
        if resp.status() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused,
        "gateway B still accepts carol a second after A revoked her"
    );
}
