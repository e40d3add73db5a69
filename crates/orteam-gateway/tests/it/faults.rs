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

/// SQLite on a full filesystem (a test-only injected ENOSPC on the journal's writes, since a
/// full disk cannot be made here): requests are refused before they are forwarded — 503 with
/// `Retry-After`, counted in `orteam_errors_total{code="ledger_unavailable"}` — and nothing
/// answered before is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_journal_that_cannot_be_written_refuses_requests() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    let body = serde_json::json!({
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi [[sim:tokens=5]]"}],
        "max_tokens": 20,
    });
    let ok = tg.chat("alice", body.clone()).await;
    assert_eq!(ok.status(), 200);
    let answered = ok
        .headers()
        .get("x-orteam-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("request id");
    let _ = ok.text().await;
    let upstream_before = tg.sim.request_count("POST", "/api/v1/chat/completions");

    assert!(tg.gateway().ledger.fail_journal_writes_for_tests());
    for _ in 0..3 {
        let refused = tg.chat("alice", body.clone()).await;
        assert_eq!(refused.status(), 503);
        assert!(refused.headers().get("retry-after").is_some());
        let v: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(v["error"]["code"], "ledger_unavailable", "{v}");
    }
    // Nothing was forwarded, so nothing was billed.
    assert_eq!(
        tg.sim.request_count("POST", "/api/v1/chat/completions"),
        upstream_before
    );
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
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("ledger_unavailable") && l.trim_end().ends_with(" 3")),
        "{metrics}"
    );
    tg.gateway().ledger.flush().await.unwrap();
    assert!(
        tg.admin.event(&answered).await.unwrap().is_some(),
        "the answered request is kept"
    );
}
