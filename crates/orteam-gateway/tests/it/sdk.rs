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
