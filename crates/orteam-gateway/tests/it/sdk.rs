//! The official SDKs against the gateway, as members use them: OpenAI's Python SDK (chat,
//! Responses, embeddings, legacy completions) and Anthropic's Python SDK (Messages).

use orteam_core::{Money, Window};
use orteam_ledger::BudgetScope;
use orteam_test_support::{Backend, TestGateway};

use crate::routes::settled_events;
use crate::support::*;

/// Runs `tests/python/<script>` with `args`; panics with its output unless it printed OK.
async fn python(script: &str, args: &[&str]) {
    python_output(script, args).await;
}

/// Runs `tests/python/<script>` with `args`; panics with its output unless it printed OK,
/// else returns its stdout.
pub async fn python_output(script: &str, args: &[&str]) -> String {
    let python = std::env::var("ORTEAM_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "ORTEAM_TEST_PYTHON is not set: run ./scripts/test, or point it at a Python with the \
             `openai` and `anthropic` packages (bash scripts/python-env.sh prints one)"
        )
    });
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(python)
        .arg(path)
        .args(args)
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "{script}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout.into_owned()
}

/// A gateway where carol (gpt-4o-mini only) has a budget too small for any answer.
async fn gateway_with_a_broke_member() -> TestGateway {
    TestGateway::builder(Backend::Sqlite)
        .budget(BudgetScope::Member, "carol", Window::Daily, "0.0000001")
        .start()
        .await
}

/// The ledger holds `n` settled events whose sum is what the simulator billed.
async fn ledger_matches_the_bill(tg: &TestGateway, n: usize) {
    let events = settled_events(tg, n).await;
    assert_eq!(events.len(), n, "{events:?}");
    let spent: Money = events.iter().map(|e| e.usage.cost).sum();
    assert_eq!(spent, sim_total_usage(tg).await);
}

#[tokio::test]
async fn the_openai_python_sdk_works_unchanged() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    python("openai_sdk.py", &[&tg.base_url, tg.key("alice")]).await;
    // Every SDK request was recorded.
    let events = all_events(&tg).await;
    assert_eq!(events.len(), 3, "{events:?}");
}

#[tokio::test]
async fn the_openai_python_sdk_speaks_responses_embeddings_and_completions() {
    let tg = gateway_with_a_broke_member().await;
    python(
        "openai_routes.py",
        &[&tg.base_url, tg.key("alice"), tg.key("carol")],
    )
    .await;
    ledger_matches_the_bill(&tg, 6).await;
}

#[tokio::test]
async fn the_anthropic_python_sdk_works_unchanged() {
    let tg = gateway_with_a_broke_member().await;
    python(
        "anthropic_sdk.py",
        &[&tg.root_url(), tg.key("alice"), tg.key("carol")],
    )
    .await;
    ledger_matches_the_bill(&tg, 5).await;
}

#[tokio::test]
async fn the_openrouter_python_sdk_lists_models_and_chats_through_the_gateway() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    python(
        "openrouter_sdk.py",
        &[
            &tg.root_url(),
            tg.key("alice"),
            tg.key("carol"),
            "openai/gpt-4o-mini",
        ],
    )
    .await;
    // Two chats and two streams on each of the two prefixes, each recorded and billed exactly.
    ledger_matches_the_bill(&tg, 4).await;
}

/// The second line of defence: a request orteam allows (alice's tier allows every model) but
/// that an OpenRouter guardrail on the shared upstream key forbids is refused by OpenRouter,
/// and the member sees OpenRouter's refusal, naming the guardrail, as is.
#[tokio::test]
async fn a_pushed_down_guardrail_refuses_upstream_and_the_refusal_reaches_the_member() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    let mgmt = |path: &str| {
        tg.http
            .post(format!("{}{path}", tg.sim.base_url()))
            .bearer_auth(tg.sim.provisioning_key())
    };
    let g: serde_json::Value = mgmt("/guardrails")
        .json(&serde_json::json!({"name": "orteam:acme:tier:all", "allowed_models": ["openai/gpt-4o-mini"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = g["data"]["id"].as_str().unwrap();
    let assigned = mgmt(&format!("/guardrails/{id}/assignments/keys"))
        .json(&serde_json::json!({"key_hashes": [tg.upstream_key.hash]}))
        .send()
        .await
        .unwrap();
    assert_eq!(assigned.status(), 200);

    let resp = tg
        .chat(
            "alice",
            serde_json::json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("orteam:acme:tier:all") && msg.contains("openai/gpt-4o"),
        "{body}"
    );
    // Nothing was billed; the allowed model still works.
    assert_eq!(sim_total_usage(&tg).await, Money::ZERO);
    let ok = tg
        .chat(
            "alice",
            serde_json::json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(ok.status(), 200);
}
