//! Upstream faults from the simulator's fault injection: retried before the first byte and
//! charged nothing when they win; cut or abandoned streams charged exactly what was generated.

use std::time::{Duration, Instant};

use orteam_core::Money;
use orteam_ledger::Outcome;
use orteam_sim::{Fault, FaultRule};
use orteam_test_support::{Backend, TestGateway, backend_tests};
use serde_json::Value;

use crate::support::*;

backend_tests!(cut_streams_are_charged_exactly);

fn rule(fault: Fault, times: Option<u32>) -> FaultRule {
    FaultRule {
        method: Some("POST".into()),
        path_prefix: Some("/api/v1/chat/completions".into()),
        times,
        fault,
    }
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_before_the_first_byte() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    tg.sim.set_faults(vec![rule(
        Fault::Status {
            status: 429,
            retry_after: Some("1".into()),
            message: None,
        },
        Some(1),
    )]);
    let started = Instant::now();
    let resp = tg
        .chat("alice", body("openai/gpt-4o-mini", "", Some(10)))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(tg.sim.request_count("POST", "/api/v1/chat/completions"), 2);
    assert_eq!(all_events(&tg).await.len(), 1, "charged once");

    tg.sim.set_faults(vec![rule(
        Fault::Status {
            status: 502,
            retry_after: None,
            message: None,
        },
        Some(2),
    )]);
    let resp = tg
        .chat("alice", body("openai/gpt-4o-mini", "", Some(10)))
        .await;
    assert_eq!(resp.status(), 200, "two 502s then success");
    assert_eq!(all_events(&tg).await.len(), 2);

    // Upstream down for good: an error after the retry deadline, nothing charged or held.
    tg.sim.set_faults(vec![rule(
        Fault::Status {
            status: 503,
            retry_after: None,
            message: None,
        },
        None,
    )]);
    let before = sim_total_usage(&tg).await;
    let resp = tg
        .chat("alice", body("openai/gpt-4o-mini", "", Some(10)))
        .await;
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"].is_string());
    assert_eq!(all_events(&tg).await.len(), 2, "nothing charged");
    assert_eq!(sim_total_usage(&tg).await, before);
    for s in tg.gateway().ledger.budget_status("alice").await.unwrap() {
        assert_eq!(s.held, Money::ZERO);
    }
    let metrics = tg
        .http
        .get(format!("{}/metrics", tg.root_url()))
        .bearer_auth(orteam_test_support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let retries = metrics
        .lines()
        .find(|l| l.starts_with("orteam_upstream_retries_total"))
        .unwrap();
    assert!(!retries.ends_with(" 0"), "{retries}");
}

async fn cut_streams_are_charged_exactly(backend: Backend) {
    let tg = TestGateway::start(backend).await;
    tg.sim
        .set_faults(vec![rule(Fault::StreamCut { after_chunks: 3 }, Some(1))]);
    let mut req = body("openai/gpt-4o", "[[sim:tokens=30]]", Some(40));
    req["stream"] = true.into();
    let resp = tg.chat("alice", req.clone()).await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-orteam-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = resp.text().await; // the cut shows up as a broken body
    let e = event(&tg, &request_id, true).await;
    assert_eq!(
        e.usage.outcome,
        Outcome::Partial,
        "the provisional charge was corrected, and the cut stream is recorded as partial"
    );
    let gen_id = e.usage.generation_id.clone().expect("generation id");
    let g = sim_generation(&tg, &gen_id).await;
    assert_eq!(e.usage.cost, json_money(&g["total_cost"]));
    assert!(e.usage.cost > Money::ZERO);

    // A client that hangs up mid-stream is charged what was generated.
    tg.sim.clear_faults();
    let resp = tg
        .chat("alice", {
            let mut r = body(
                "openai/gpt-4o",
                "[[sim:tokens=30]] [[sim:delay_ms=20]]",
                Some(40),
            );
            r["stream"] = true.into();
            r
        })
        .await;
    let request_id = resp.headers()["x-orteam-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut resp = resp;
    let _first = resp.chunk().await.unwrap();
    drop(resp);
    let e = event(&tg, &request_id, true).await;
    let gen_id = e.usage.generation_id.clone().expect("generation id");
    let g = sim_generation(&tg, &gen_id).await;
    assert_eq!(e.usage.cost, json_money(&g["total_cost"]));
    let total: Money = all_events(&tg).await.iter().map(|e| e.usage.cost).sum();
    assert_eq!(total, sim_total_usage(&tg).await);
}
