//! Helpers for reading what the gateway, the ledger and the simulator recorded.

use orteam_core::Money;
use orteam_ledger::UsageEvent;
use orteam_test_support::TestGateway;
use serde_json::{Value, json};

pub fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

/// A small chat body; `directive` goes into the user message (e.g. `[[sim:tokens=20]]`).
pub fn body(model: &str, directive: &str, max_tokens: Option<u64>) -> Value {
    let mut b = json!({
        "model": model,
        "messages": [{"role": "user", "content": format!("Say hello. {directive}")}],
    });
    if let Some(n) = max_tokens {
        b["max_tokens"] = json!(n);
    }
    b
}

/// Waits (bounded) until the ledger has the event, optionally in a final outcome.
pub async fn event(tg: &TestGateway, request_id: &str, settled: bool) -> UsageEvent {
    orteam_test_support::wait_for_event(&tg.admin, request_id, settled)
        .await
        .unwrap_or_else(|last| {
            panic!("event {request_id} never recorded (settled={settled}): {last:?}")
        })
}

/// What the simulator billed in total (credits used).
pub async fn sim_total_usage(tg: &TestGateway) -> Money {
    orteam_test_support::sim_credits_used(&tg.sim).await
}

/// The simulator's record of a generation.
pub async fn sim_generation(tg: &TestGateway, id: &str) -> Value {
    tg.sim.wait_for_generation(id).await;
    orteam_test_support::sim_management_get(&tg.sim, &format!("/generation?id={id}")).await["data"]
        .clone()
}

/// `total_cost` of a generation as exact money (read from the number's text).
pub fn json_money(v: &Value) -> Money {
    Money::parse(&v.to_string()).unwrap()
}

/// Every event the ledger holds.
pub async fn all_events(tg: &TestGateway) -> Vec<UsageEvent> {
    tg.sync().await;
    tg.admin
        .events(orteam_ledger::EventFilter::default())
        .await
        .unwrap()
}

/// Parses an SSE body into its `data:` payloads.
pub fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .flat_map(|ev| ev.lines())
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_owned))
        .collect()
}
