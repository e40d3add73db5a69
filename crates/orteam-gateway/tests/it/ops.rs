//! Operations: health, metrics, the admin API, and a graceful shutdown that loses nothing.

use orteam_core::Window;
use orteam_ledger::{BudgetScope, LedgerOptions};
use orteam_test_support::{ADMIN_TOKEN, Backend, TestGateway};
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn health_metrics_and_admin_api() {
    let tg = TestGateway::builder(Backend::Sqlite)
        .budget(BudgetScope::Member, "alice", Window::Monthly, "5.00")
        .start()
        .await;
    for _ in 0..3 {
        assert_eq!(
            tg.chat("alice", body("openai/gpt-4o-mini", "", Some(10)))
                .await
                .status(),
            200
        );
    }
    let root = tg.root_url();
    let health: Value = tg
        .http
        .get(format!("{root}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");

    let metrics = tg
        .http
        .get(format!("{root}/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "orteam_requests_total{status=\"200\",stream=\"false\",route=\"chat\"} 3",
        "orteam_request_duration_seconds_bucket",
        "orteam_tokens_total{member=\"alice\",model=\"openai/gpt-4o-mini\",kind=\"completion\"}",
        "orteam_cost_nanodollars_total{member=\"alice\"",
        "orteam_budget_remaining_nanodollars{scope=\"member\",id=\"alice\",window=\"monthly\"}",
        "orteam_upstream_retries_total",
    ] {
        assert!(metrics.contains(series), "missing {series} in\n{metrics}");
    }

    let get = |path: &str| {
        tg.http
            .get(format!("{root}/admin/v1{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let members: Value = get("/members").await.unwrap().json().await.unwrap();
    let alice = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "alice")
        .unwrap();
    assert_eq!(alice["budgets"][0]["window"], "monthly");
    let spent = m(alice["budgets"][0]["spent"].as_str().unwrap());
    let usage: Value = get("/usage?by=member,model")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = &usage.as_array().unwrap()[0];
    assert_eq!(row["requests"], 3);
    assert_eq!(
        m(row["cost"].as_str().unwrap()),
        spent,
        "money as exact strings"
    );
    let keys: Value = get("/keys").await.unwrap().json().await.unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 3);
    assert!(
        !keys.to_string().contains(tg.key("alice")),
        "no secrets in the admin API"
    );
    let events: Value = get("/events?limit=2").await.unwrap().json().await.unwrap();
    assert_eq!(events.as_array().unwrap().len(), 2);
    let resp = get("/usage?by=colour").await.unwrap();
    assert_eq!(resp.status(), 400);
    // The API route: a dimension and a filter like the others.
    let by_route: Value = get("/usage?group_by=route")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_route.as_array().unwrap().len(), 1, "{by_route}");
    assert_eq!(by_route[0]["route"], "chat");
    assert_eq!(by_route[0]["requests"], 3);
    let chat: Value = get("/usage?by=member,route&route=chat")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(chat[0]["member"], "alice");
    assert_eq!(chat[0]["route"], "chat");
    let messages: Value = get("/usage?route=messages")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(messages.as_array().unwrap().is_empty(), "{messages}");
    let resp = get("/usage?route=graphql").await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("embeddings"),
        "{err}"
    );
    assert_eq!(events[0]["route"], "chat");
    let anomalies: Value = get("/anomalies?all=true")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        anomalies["flagged"].as_array().unwrap().is_empty(),
        "{anomalies}"
    );
    assert!(anomalies["evaluated"].as_u64().unwrap() >= 1, "{anomalies}");
    // No token, wrong token.
    let resp = tg
        .http
        .get(format!("{root}/admin/v1/members"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn graceful_shutdown_flushes_everything() {
    let mut tg = TestGateway::start(Backend::Sqlite).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let mut req = body("openai/gpt-4o-mini", "[[sim:tokens=5]]", Some(10));
        req["stream"] = (i % 2 == 0).into();
        let resp = tg.chat("alice", req).await;
        ids.push(
            resp.headers()["x-orteam-request-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
        let _ = resp.bytes().await.unwrap();
    }
    tg.stop().await;
    let reopened = tg.db.open(LedgerOptions::admin()).await;
    for id in &ids {
        assert!(
            reopened.event(id).await.unwrap().is_some(),
            "{id} lost at shutdown"
        );
    }
}
