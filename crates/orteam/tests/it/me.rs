//! `orteam me`: a member's own budgets and spend with their own key, as a table and as JSON,
//! against a real gateway on both backends.

use orteam_core::{Money, Window};
use orteam_ledger::BudgetScope;
use orteam_test_support::{Backend, TestGateway, backend_tests};
use serde_json::{Value, json};

use crate::support::bin;

backend_tests!(me_shows_my_budgets_and_spend);

async fn me(tg: &TestGateway, key: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.arg("me")
        .args(["--gateway", &tg.base_url])
        .args(args)
        .env_remove("ORTEAM_LOG")
        .env_remove("ORTEAM_KEY")
        .env_remove("ORTEAM_ADMIN_TOKEN")
        .kill_on_drop(true);
    if let Some(k) = key {
        cmd.env("ORTEAM_KEY", k);
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn me_shows_my_budgets_and_spend(backend: Backend) {
    let tg = TestGateway::builder(backend)
        .budget(BudgetScope::Member, "alice", Window::Daily, "2")
        .budget(BudgetScope::Team, "core", Window::Monthly, "10")
        .start()
        .await;
    for (member, model) in [
        ("alice", "openai/gpt-4o"),
        ("alice", "openai/gpt-4o-mini"),
        ("bob", "openai/gpt-4o-mini"),
    ] {
        let body = json!({"model": model, "max_tokens": 300,
            "messages": [{"role": "user", "content": "hello [[sim:tokens=200]]"}]});
        assert_eq!(tg.chat(member, body).await.status(), 200);
    }
    tg.sync().await;
    let events = tg.admin.recent_events(10).await.unwrap();
    assert_eq!(events.len(), 3);
    let alice: Money = events
        .iter()
        .filter(|e| e.member_id == "alice")
        .map(|e| e.usage.cost)
        .sum();
    let core: Money = events.iter().map(|e| e.usage.cost).sum();

    let (ok, stdout, stderr) = me(&tg, Some(tg.key("alice")), &["--format", "json"]).await;
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let budgets = v["orteam"]["budgets"].as_array().unwrap();
    assert_eq!(budgets.len(), 2, "{v:#}");
    let daily = &budgets[0];
    assert_eq!(
        (daily["scope"].as_str(), daily["window"].as_str()),
        (Some("member"), Some("daily"))
    );
    assert_eq!(
        Money::parse(daily["spent"].as_str().unwrap()).unwrap(),
        alice
    );
    assert_eq!(
        Money::parse(daily["remaining"].as_str().unwrap()).unwrap(),
        Money::parse("2").unwrap().minus(alice).unwrap()
    );
    let team = &budgets[1];
    assert_eq!(Money::parse(team["spent"].as_str().unwrap()).unwrap(), core);
    assert_eq!(
        Money::parse(v["orteam"]["usage"]["monthly"].as_str().unwrap()).unwrap(),
        alice
    );
    assert_eq!(v["orteam"]["month_by_model"].as_array().unwrap().len(), 2);

    let (ok, table, stderr) = me(&tg, Some(tg.key("alice")), &[]).await;
    assert!(ok, "{stderr}");
    for needle in [
        "ALICE (alice) · team core · org acme",
        "member alice",
        "team core",
        "remaining",
        "This month by day:",
        "This month by model:",
        "openai/gpt-4o-mini",
    ] {
        assert!(table.contains(needle), "{needle:?} missing:\n{table}");
    }
    assert!(!table.contains("bob") && !table.contains("BOB"), "{table}");

    // No key, or a wrong one: one clear error line.
    let (ok, _, stderr) = me(&tg, None, &[]).await;
    assert!(
        !ok && stderr.contains("error: no member key: set ORTEAM_KEY"),
        "{stderr}"
    );
    let (ok, _, stderr) = me(&tg, Some("ot-nottherightkey"), &[]).await;
    assert!(
        !ok && stderr.contains("error: the gateway refused (401"),
        "{stderr}"
    );
}
