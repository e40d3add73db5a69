//! The official Python MCP SDK against the stdio binary (tests/python/test_stdio.py).
//!
//! Needs `ORTEAM_TEST_PYTHON`: a python with the `mcp` and `pytest` packages, e.g.
//! `python3 -m venv target/pyenv && target/pyenv/bin/pip install mcp pytest` and
//! `ORTEAM_TEST_PYTHON=target/pyenv/bin/python`. Without it the test fails (it never skips).

use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_orteam-mcp-stdio");

#[tokio::test]
async fn python_sdk_talks_to_the_stdio_binary() {
    let Some(python) = std::env::var_os("ORTEAM_TEST_PYTHON").filter(|p| !p.is_empty()) else {
        panic!(
            "ORTEAM_TEST_PYTHON is not set. It must point to a python that has the official MCP \
             SDK and pytest, e.g.:\n  python3 -m venv target/pyenv && target/pyenv/bin/pip \
             install mcp pytest\n  ORTEAM_TEST_PYTHON=$PWD/target/pyenv/bin/python cargo test -p \
             orteam-mcp"
        );
    };
    let sim = orteam_test_support::spawn_sim().await;
    let key = sim.provisioning_key().to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/test_stdio.py");
    let run = tokio::process::Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", script])
        .env("ORTEAM_MCP_BIN", BIN)
        .env("OPENROUTER_BASE_URL", sim.base_url())
        .env("OPENROUTER_PROVISIONING_KEY", &key)
        .env_remove("OPENROUTER_ADMIN_ALLOW_WRITE")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("pytest timed out")
        .unwrap_or_else(|e| panic!("cannot run ORTEAM_TEST_PYTHON={python:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pytest failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("passed"), "{stdout}");
    crate::common::assert_no_key(&stdout, &key);
    crate::common::assert_no_key(&stderr, &key);
}

/// The team tools through the Python SDK, on a seeded ledger: the CLI's arguments and defaults,
/// its money format, a percent with every budget, no `null` (tests/python/test_team.py).
async fn python_sdk_reads_the_team_tools(backend: orteam_test_support::Backend) {
    use orteam_core::{ApiRoute, Money, Window};
    use orteam_ledger::{BudgetScope, LedgerOptions, Usage};

    let python = std::env::var_os("ORTEAM_TEST_PYTHON")
        .filter(|p| !p.is_empty())
        .expect("ORTEAM_TEST_PYTHON (see python_sdk_talks_to_the_stdio_binary)");
    let db = orteam_test_support::TestDb::new(backend).await;
    let admin = db.open(LedgerOptions::admin()).await;
    orteam_test_support::seed_directory(&admin, &Default::default()).await;
    admin
        .set_budget(
            BudgetScope::Member,
            "alice",
            Window::Daily,
            Money::parse("5").unwrap(),
        )
        .await
        .unwrap();
    admin.shutdown().await.unwrap();
    let serving = db.open(LedgerOptions::serving()).await;
    for (member, id, cost) in [
        ("alice", "r1", "0.10"),
        ("alice", "r2", "0.25"),
        ("bob", "r3", "0.002"),
    ] {
        let r = serving
            .reserve(member, Money::parse("1").unwrap())
            .await
            .unwrap();
        r.settle(
            Usage::new(id, "openai/gpt-4o-mini", Money::parse(cost).unwrap())
                .with_route(ApiRoute::Chat),
        )
        .await
        .unwrap();
    }
    serving.shutdown().await.unwrap();

    let sim = orteam_test_support::spawn_sim().await;
    let key = sim.provisioning_key().to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/test_team.py");
    let run = tokio::process::Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", script])
        .env("ORTEAM_MCP_BIN", BIN)
        .env("ORTEAM_DATABASE_URL", &db.url)
        .env("OPENROUTER_BASE_URL", sim.base_url())
        .env("OPENROUTER_PROVISIONING_KEY", &key)
        .env_remove("OPENROUTER_ADMIN_ALLOW_WRITE")
        .env_remove("ORTEAM_TOKEN")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("pytest timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pytest failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
    crate::common::assert_no_key(&stdout, &key);
    crate::common::assert_no_key(&stderr, &key);
}

orteam_test_support::backend_tests!(python_sdk_reads_the_team_tools);
