//! The happy paths: non-stream and stream, settled at the exact cost; tier policy.

use orteam_ledger::Outcome;
use orteam_test_support::{Backend, TestGateway, backend_tests};
use serde_json::Value;

use crate::support::*;

backend_tests!(
    non_stream_is_settled_at_the_exact_cost,
    stream_passes_through_and_settles
);

async fn non_stream_is_settled_at_the_exact_cost(backend: Backend) {
    let tg = TestGateway::start(backend).await;
    let resp = tg
        .chat(
            "alice",
            body("openai/gpt-4o", "[[sim:tokens=20]]", Some(50)),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-orteam-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(resp.headers().get("x-orteam-model").is_none());
    assert!(resp.headers().get("x-orteam-max-tokens").is_none());
    let text = resp.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["usage"]["completion_tokens"], 20);
    // The settle happened before the answer: the event is already durable (journaled; the
    // kill -9 tests prove it survives), and committed as soon as the gateway is asked to.
    tg.sync().await;
    let e = tg
        .admin
        .event(&request_id)
        .await
        .unwrap()
        .expect("event recorded before the answer");
    assert_eq!(e.member_id, "alice");
    assert_eq!(e.team_id, "core");
    assert_eq!(e.usage.outcome, Outcome::Ok);
    assert!(!e.usage.streamed);
    assert_eq!(e.usage.cost, json_money(&v["usage"]["cost"]));
    assert_eq!(e.usage.completion_tokens, 20);
    let gen_id = v["id"].as_str().unwrap();
    assert_eq!(e.usage.generation_id.as_deref(), Some(gen_id));
    let g = sim_generation(&tg, gen_id).await;
    assert_eq!(json_money(&g["total_cost"]), e.usage.cost);
    // Attribution: the member id reached upstream as `user`.
    assert_eq!(g["external_user"], "alice");
    assert_eq!(sim_total_usage(&tg).await, e.usage.cost);
}

async fn stream_passes_through_and_settles(backend: Backend) {
    let tg = TestGateway::start(backend).await;
    let mut req = body("openai/gpt-4o-mini", "[[sim:tokens=12]]", Some(40));
    req["stream"] = true.into();
    let resp = tg.chat("alice", req.clone()).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let request_id = resp.headers()["x-orteam-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = resp.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content.split_whitespace().count(), 12);
    assert!(
        chunks
            .iter()
            .all(|c| c.get("usage").is_none_or(Value::is_null)),
        "the usage chunk is removed when the client did not ask for it"
    );
    let gen_id = chunks[0]["id"].as_str().unwrap().to_owned();
    let e = event(&tg, &request_id, true).await;
    assert!(e.usage.streamed);
    assert_eq!(e.usage.outcome, Outcome::Ok);
    let g = sim_generation(&tg, &gen_id).await;
    assert_eq!(e.usage.cost, json_money(&g["total_cost"]));

    // Asked for: the usage chunk is forwarded, with the same cost as a non-streamed request.
    req["stream_options"] = serde_json::json!({"include_usage": true});
    let text = tg.chat("alice", req.clone()).await.text().await.unwrap();
    let usage_chunk: Value = sse_data(&text)
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .find(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .expect("usage chunk forwarded");
    req["stream"] = false.into();
    req.as_object_mut().unwrap().remove("stream_options");
    let plain: Value = tg.chat("alice", req).await.json().await.unwrap();
    assert_eq!(usage_chunk["usage"]["cost"], plain["usage"]["cost"]);
    assert_eq!(json_money(&usage_chunk["usage"]["cost"]), e.usage.cost);
}

#[tokio::test]
async fn tier_policy_denies_or_downgrades() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    // strict tier: denied, naming the allowed models.
    let resp = tg.chat("carol", body("openai/gpt-4o", "", Some(10))).await;
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_allowed");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("openai/gpt-4o-mini"), "{msg}");
    // basic tier: downgraded, and said so.
    let resp = tg
        .chat("bob", body("anthropic/claude-3.5-sonnet", "", Some(10)))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-orteam-model"], "openai/gpt-4o-mini");
    let request_id = resp.headers()["x-orteam-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["model"], "openai/gpt-4o-mini");
    tg.sync().await;
    let e = tg.admin.event(&request_id).await.unwrap().unwrap();
    assert_eq!(e.usage.requested_model, "anthropic/claude-3.5-sonnet");
    assert_eq!(e.usage.served_model.as_deref(), Some("openai/gpt-4o-mini"));
    // Prefix allowlists.
    let resp = tg
        .chat(
            "bob",
            body("meta-llama/llama-3.1-8b-instruct", "", Some(10)),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-orteam-model").is_none());
    // /v1/models lists only what the tier allows.
    let models: Value = tg
        .http
        .get(format!("{}/models", tg.base_url))
        .bearer_auth(tg.key("carol"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["openai/gpt-4o-mini"]);
}
