//! A gateway with budgets at every level and traffic spread over the last hour.

use chrono::TimeDelta;
use orteam_core::Window;
use orteam_ledger::BudgetScope;
use orteam_test_support::{Backend, TestGateway};
use serde_json::{Value, json};

pub fn chat_body(model: &str, tokens: u32) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": format!("Summarise the notes. [[sim:tokens={tokens}]]")}],
        "max_tokens": 400,
    })
}

/// alice (all models), bob (basic: downgraded), carol (strict); member, team and org budgets;
/// a rotating key for alice that is overdue; about 30 requests over the last hour.
pub async fn seeded_gateway() -> TestGateway {
    let tg = TestGateway::builder(Backend::Sqlite)
        .budget(BudgetScope::Member, "alice", Window::Daily, "0.05")
        .budget(BudgetScope::Member, "bob", Window::Daily, "0.0012")
        .budget(BudgetScope::Member, "carol", Window::Monthly, "1.00")
        .budget(BudgetScope::Team, "core", Window::Monthly, "0.05")
        .budget(BudgetScope::Org, "acme", Window::Monthly, "0.25")
        .start()
        .await;
    // A key named the way `orteam team apply` names keys, created 40 days ago with a 30-day
    // rotation: overdue.
    tg.clock.set_offset(TimeDelta::days(-40));
    tg.admin
        .create_virtual_key("carol", "orteam:acme:carol:2;rotate=30d;grace=1d", None)
        .await
        .unwrap();
    let plan: [(&str, &str, u32); 6] = [
        ("alice", "openai/gpt-4o", 300),
        ("alice", "anthropic/claude-3.5-sonnet", 250),
        ("bob", "openai/gpt-4o-mini", 200),
        ("bob", "anthropic/claude-3.5-sonnet", 150),
        ("carol", "openai/gpt-4o-mini", 120),
        ("alice", "meta-llama/llama-3.1-8b-instruct", 200),
    ];
    for step in 0..10_i64 {
        tg.clock.set_offset(TimeDelta::minutes(-55 + step * 6));
        for (i, (member, model, tokens)) in plan.iter().enumerate() {
            if (step + i as i64) % 2 == 0 {
                let r = tg.chat(member, chat_body(model, *tokens)).await;
                assert!(
                    r.status().is_success() || r.status() == 402,
                    "{member} {model}: {}",
                    r.status()
                );
            }
        }
    }
    tg.clock.set_offset(TimeDelta::zero());
    tg.sync().await;
    tg
}
