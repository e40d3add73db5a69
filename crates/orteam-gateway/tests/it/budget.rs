//! Budgets enforced before spending: max_tokens clamped to what the budget affords, 402 when
//! not even a minimal answer fits, and no overspend under 64 concurrent clients.

use std::sync::Arc;

use orteam_core::{Money, Window};
use orteam_ledger::BudgetScope;
use orteam_test_support::{Backend, TestGateway, backend_tests};
use serde_json::Value;

use crate::support::*;

backend_tests!(sixty_four_clients_never_overspend);

#[tokio::test]
async fn max_tokens_is_clamped_then_the_budget_refuses() {
    let tg = TestGateway::builder(Backend::Sqlite)
        .budget(BudgetScope::Member, "alice", Window::Daily, "0.0001")
        .start()
        .await;
    // A huge max_tokens is lowered to what $0.0001 can pay, and the answer says so.
    let resp = tg
        .chat(
            "alice",
            body("openai/gpt-4o-mini", "[[sim:tokens=50]]", Some(100_000)),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let clamped: u64 = resp.headers()["x-orteam-max-tokens"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((16..100_000).contains(&clamped), "{clamped}");
    // No max_tokens at all: one is set, and announced.
    let resp = tg
        .chat(
            "alice",
            body("openai/gpt-4o-mini", "[[sim:tokens=50]]", None),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-orteam-max-tokens").is_some());
    // Spend until refused: the refusal names the budget and when it resets.
    let mut refused = None;
    for _ in 0..20 {
        let resp = tg
            .chat(
                "alice",
                body("openai/gpt-4o-mini", "[[sim:tokens=50]]", Some(50)),
            )
            .await;
        if resp.status() == 402 {
            refused = Some(resp.json::<Value>().await.unwrap());
            break;
        }
        assert_eq!(resp.status(), 200);
    }
    let v = refused.expect("the budget ran out");
    assert_eq!(v["error"]["code"], "budget_exceeded");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("member \"alice\"") && msg.contains("daily") && msg.contains("resets at"),
        "{msg}"
    );
    let spent: Money = all_events(&tg).await.iter().map(|e| e.usage.cost).sum();
    assert!(spent <= m("0.0001"), "spent {spent}");
    assert_eq!(spent, sim_total_usage(&tg).await);
    // Other members are unaffected.
    let resp = tg
        .chat("bob", body("openai/gpt-4o-mini", "", Some(10)))
        .await;
    assert_eq!(resp.status(), 200);
}

async fn sixty_four_clients_never_overspend(backend: Backend) {
    let limit = m("0.003");
    let tg = Arc::new(
        TestGateway::builder(backend)
            .budget(BudgetScope::Member, "alice", Window::Daily, "0.003")
            .budget(BudgetScope::Team, "core", Window::Daily, "0.004")
            .start()
            .await,
    );
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let tg = tg.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u32;
            for j in 0..40u64 {
                let tokens = 20 + (i * 7 + j * 13) % 180;
                let stream = (i + j) % 3 == 0;
                let mut req = body(
                    "openai/gpt-4o-mini",
                    &format!("[[sim:tokens={tokens}]]"),
                    Some(200),
                );
                req["stream"] = stream.into();
                let resp = tg.chat(if i % 4 == 0 { "bob" } else { "alice" }, req).await;
                match resp.status().as_u16() {
                    200 => {
                        let _ = resp.bytes().await.unwrap();
                        ok += 1;
                    }
                    402 => break,
                    other => panic!("unexpected status {other}: {}", resp.text().await.unwrap()),
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    assert!(ok > 10, "some requests went through ({ok})");
    // Streams settle in the background: wait until every answered request is recorded.
    let events = orteam_test_support::poll_until(|| all_events(&tg), |e| e.len() as u32 >= ok)
        .await
        .unwrap_or_else(|last| last);
    assert_eq!(
        events.len() as u32,
        ok,
        "every answered request is in the ledger"
    );
    let alice: Money = events
        .iter()
        .filter(|e| e.member_id == "alice")
        .map(|e| e.usage.cost)
        .sum();
    let team: Money = events.iter().map(|e| e.usage.cost).sum();
    assert!(alice <= limit, "alice spent {alice} of {limit}");
    assert!(team <= m("0.004"), "team spent {team}");
    // The ledger equals what upstream billed, to the last digit.
    assert_eq!(team, sim_total_usage(&tg).await);
    // No reservation leaked: nothing is held by a request any more.
    assert_eq!(tg.gateway().ledger.holds_in_flight(), 0);
}
