//! The crash drill through the real binary: load (plain requests, streams, hang-ups) against
//! `orteam serve`, SIGKILL at random points (and once right after a restart), restart, with
//! upstream's `/generation` failing for a while; a tight budget hammered until 402 across the
//! restarts. After the restarts' in-flight resolution and reconciliation, the ledger holds
//! exactly what the simulator billed, and the budget was never exceeded upstream.
//!
//! `ORTEAM_DRILL_ROUNDS` sets the number of kills (default 3); `bench/crash-drill.sh` runs more
//! and prints the table recorded in docs/CRASH-DRILL.md.

// The drill prints its table (bench/crash-drill.sh collects it).
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orteam_core::{Money, Outcome, Window};
use orteam_ledger::{BudgetScope, EventFilter};
use orteam_sim::{Fault, FaultRule};
use orteam_test_support::{TestKey, seed_directory};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::support::{Backend, Env, bin, both_backends};

/// Alice's daily budget: small enough that the drill's load exhausts it.
const ALICE_DAILY: &str = "0.004";

/// `orteam serve` as a process, its stderr collected.
pub(crate) struct Gateway {
    child: tokio::process::Child,
    pub base_url: String,
    stderr: tokio::task::JoinHandle<String>,
}

impl Gateway {
    async fn start(env: &Env, shared: &TestKey) -> Gateway {
        Gateway::start_on(env, shared, &env.db_url).await
    }

    /// Serves the ledger at `db_url` (e.g. through a [`orteam_test_support::CuttableProxy`]).
    pub(crate) async fn start_on(env: &Env, shared: &TestKey, db_url: &str) -> Gateway {
        let mut child = tokio::process::Command::new(bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--workers",
                "1",
                "--reconcile-interval",
                "1s",
            ])
            .env("ORTEAM_LOG", "warn")
            .env("OPENROUTER_BASE_URL", env.sim.base_url())
            .env("OPENROUTER_API_KEY", &shared.secret)
            .env("OPENROUTER_PROVISIONING_KEY", env.sim.provisioning_key())
            .env("ORTEAM_DATABASE_URL", db_url)
            .env("ORTEAM_SECRET_KEY", &env.secret_key)
            .env("ORTEAM_INSTANCE_ID", "drill-gateway")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn orteam serve");
        let mut err = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s).await;
            s
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base_url = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("orteam serve printed its URL in time")
            .unwrap()
            .expect("a URL line");
        Gateway {
            child,
            base_url,
            stderr,
        }
    }

    async fn kill_9(mut self) -> String {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        self.stderr.await.unwrap()
    }

    pub(crate) async fn stop(mut self) -> String {
        let pid = self.child.id().unwrap().to_string();
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().await.unwrap();
        let log = self.stderr.await.unwrap();
        assert!(exit.success(), "graceful stop failed:\n{log}");
        log
    }
}

/// Text without terminal colour codes (`ESC [ … m`).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How many requests a start charged provisionally (the gateway's warning line).
fn resolved_at_start(log: &str) -> u64 {
    log.lines()
        .map(plain)
        .filter(|l| l.contains("previous gateway had in flight"))
        .filter_map(|l| {
            let rest = &l[l.find("in_flight=")? + "in_flight=".len()..];
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn body(tokens: u32, stream: bool) -> Value {
    json!({
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": format!("drill [[sim:tokens={tokens}]] [[sim:delay_ms=15]]")}],
        "max_tokens": 40,
        "stream": stream,
    })
}

#[derive(Default)]
struct Load {
    answered: Mutex<Vec<String>>,
    refused_402: AtomicU64,
    stop: AtomicBool,
}

/// One client: plain requests, whole streams and hang-ups (a stream dropped after its first
/// chunk), until the gateway goes away or `stop`.
async fn client(http: reqwest::Client, base: String, key: String, n: u64, load: Arc<Load>) {
    for j in 0u64.. {
        if load.stop.load(Ordering::Relaxed) {
            return;
        }
        let kind = (n + j) % 3;
        let resp = match http
            .post(format!("{base}/chat/completions"))
            .bearer_auth(&key)
            .json(&body(3 + (j % 20) as u32, kind != 0))
            .send()
            .await
        {
            Ok(r) => r,
            Err(_) => return,
        };
        let status = resp.status().as_u16();
        let id = resp
            .headers()
            .get("x-orteam-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status == 402 {
            load.refused_402.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let mut resp = resp;
        if kind == 2 {
            // Hang up after the first chunk.
            let _ = resp.chunk().await;
            continue;
        }
        let Ok(text) = resp.text().await else { return };
        let complete = if kind == 1 {
            text.contains("data: [DONE]")
        } else {
            serde_json::from_str::<Value>(&text).is_ok()
        };
        if status == 200
            && complete
            && let Some(id) = id
        {
            load.answered.lock().unwrap().push(id);
        }
    }
}

fn spawn_load(
    base: &str,
    keys: &HashMap<String, String>,
    load: &Arc<Load>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let http = reqwest::Client::new();
    (0..12u64)
        .map(|i| {
            let member = if i % 3 == 2 { "bob" } else { "alice" };
            tokio::spawn(client(
                http.clone(),
                base.to_owned(),
                keys[member].clone(),
                i,
                load.clone(),
            ))
        })
        .collect()
}

fn pseudo_random(below: u64) -> u64 {
    (uuid::Uuid::new_v4().as_u128() % u128::from(below.max(1))) as u64
}

/// One drill row.
struct Round {
    answered: usize,
    recorded: usize,
    resolved: u64,
}

pub async fn drill(backend: Backend, rounds: usize) {
    let env = Env::new(backend).await;
    env.sim.add_credits(Money::from_cents(100_000));
    let shared = orteam_test_support::inference_key(&env.sim, "shared");
    let admin = env.ledger().await;
    let keys = seed_directory(&admin, &HashMap::new()).await;
    let limit = Money::parse(ALICE_DAILY).unwrap();
    admin
        .set_budget(BudgetScope::Member, "alice", Window::Daily, limit)
        .await
        .unwrap();
    // Upstream's /generation fails for a while: exact costs come late.
    env.sim.set_faults(vec![FaultRule {
        method: None,
        path_prefix: Some("/api/v1/generation".into()),
        times: Some(40),
        fault: Fault::Status {
            status: 503,
            retry_after: None,
            message: None,
        },
    }]);

    let mut rows: Vec<Round> = Vec::new();
    for round in 0..rounds {
        let gw = Gateway::start(&env, &shared).await;
        let load = Arc::new(Load::default());
        let tasks = spawn_load(&gw.base_url, &keys, &load);
        // A random kill point; every other round kills right after the restart.
        let wait_ms = if round % 2 == 1 {
            pseudo_random(60)
        } else {
            200 + pseudo_random(1200)
        };
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        let log = gw.kill_9().await;
        for t in tasks {
            t.await.unwrap();
        }
        // This start resolved what the previous kill left in flight.
        if let Some(prev) = rows.last_mut() {
            prev.resolved += resolved_at_start(&log);
        }
        let answered = load.answered.lock().unwrap().clone();
        // Every answered request is in the ledger (on SQLite this reader commits the journal
        // and resolves what was in flight, since no gateway serves the file now).
        let check = env.ledger().await;
        let have: std::collections::HashSet<String> = check
            .events(EventFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.usage.request_id)
            .collect();
        rows.push(Round {
            answered: answered.len(),
            recorded: answered.iter().filter(|id| have.contains(*id)).count(),
            resolved: check.resolved_in_flight().in_flight as u64,
        });
        check.shutdown().await.unwrap();
    }

    // The last start: hammer alice's budget until 402, wait for exact costs, stop cleanly.
    let gw = Gateway::start(&env, &shared).await;
    let load = Arc::new(Load::default());
    let tasks = spawn_load(&gw.base_url, &keys, &load);
    // Each look is bounded; on a busy machine spending the rest can take several.
    let mut refused = Err(0);
    for _ in 0..12 {
        refused = orteam_test_support::poll_until(
            || {
                let load = load.clone();
                async move { load.refused_402.load(Ordering::Relaxed) }
            },
            |n| *n >= 5,
        )
        .await;
        if refused.is_ok() {
            break;
        }
    }
    assert!(refused.is_ok(), "alice's budget runs out: {refused:?}");
    load.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    // The gateway's reconcile loop corrects every provisional charge with a generation id
    // once /generation answers again (each look bounded; 12 looks of 10 s at most).
    let view = env.ledger().await;
    let mut waiting = usize::MAX;
    for _ in 0..12 {
        let r = orteam_test_support::poll_until(
            || {
                let view = view.clone();
                async move {
                    view.events(EventFilter {
                        provisional_only: true,
                        ..EventFilter::default()
                    })
                    .await
                    .unwrap()
                    .iter()
                    .filter(|e| e.usage.generation_id.is_some())
                    .count()
                }
            },
            |n| *n == 0,
        )
        .await;
        match r {
            Ok(_) => {
                waiting = 0;
                break;
            }
            Err(n) => waiting = n,
        }
    }
    assert_eq!(waiting, 0, "provisional charges with a generation id left");
    // Those corrections were the serving gateway's own loop, which records each run (the
    // dashboard's reconciliation panel and alerts read it).
    let run = view
        .last_reconcile_run()
        .await
        .unwrap()
        .expect("the gateway's reconcile loop records its runs");
    assert_eq!(run.source, "gateway");
    assert!(run.result.contains("\"corrected\""), "{}", run.result);
    view.shutdown().await.unwrap();
    let log = gw.stop().await;
    if let Some(prev) = rows.last_mut() {
        prev.resolved += resolved_at_start(&log);
    }

    // Upstream spend of alice is at most her exact charges plus the worst case of her requests
    // whose cost is still unknown; the budget held exactly that, so it was never exceeded.
    let before = env.ledger().await;
    let alice_bound: Money = before
        .events(EventFilter {
            member: Some("alice".into()),
            ..EventFilter::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|e| e.usage.cost)
        .sum();
    before.shutdown().await.unwrap();
    assert!(
        alice_bound <= limit,
        "alice's upstream spend may exceed her budget: {alice_bound} > {limit}"
    );

    // A day later `/activity` covers the day: reconcile repairs what was in flight without a
    // generation id, and says so.
    env.set_offset(86_400);
    let day = (chrono::Utc::now()).date_naive().to_string();
    let out = env
        .orteam_with(
            &["reconcile", "--since", &day],
            &[("OPENROUTER_API_KEY", &shared.secret)],
            &[],
        )
        .await;
    println!("{}", out.stdout);
    let ledger = env.ledger().await;
    let events = ledger.events(EventFilter::default()).await.unwrap();
    let provisional = events
        .iter()
        .filter(|e| e.usage.outcome == Outcome::Provisional)
        .count();
    let recorded: Money = events.iter().map(|e| e.usage.cost).sum();
    let billed = orteam_test_support::sim_credits_used(&env.sim).await;
    let alice: Money = events
        .iter()
        .filter(|e| e.member_id == "alice")
        .map(|e| e.usage.cost)
        .sum();
    let repaired = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("corrected "))
        .count();
    println!("| round | answered | recorded | in flight resolved at restart |");
    println!("|---|---|---|---|");
    for (i, r) in rows.iter().enumerate() {
        println!(
            "| {} | {} | {} | {} |",
            i + 1,
            r.answered,
            r.recorded,
            r.resolved
        );
    }
    println!(
        "ledger {recorded}, billed {billed}, difference {}; alice {alice} (at most {alice_bound} upstream) of {limit}; {provisional} provisional left; {repaired} corrected by reconcile",
        recorded.checked_sub(billed).unwrap()
    );
    for r in &rows {
        assert_eq!(r.recorded, r.answered, "answered requests lost");
    }
    assert!(
        out.stdout.contains("at org level"),
        "reconcile says what it changed:\n{out:?}"
    );
    assert_eq!(provisional, 0, "everything exact after reconciliation");
    assert_eq!(
        recorded, billed,
        "the ledger holds exactly what upstream billed"
    );
    assert!(alice <= alice_bound, "repairs only lower charges: {alice}");
    ledger.shutdown().await.unwrap();
}

fn rounds() -> usize {
    std::env::var("ORTEAM_DRILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

async fn crash_drill(backend: Backend) {
    drill(backend, rounds()).await;
}

both_backends!(crash_drill);
