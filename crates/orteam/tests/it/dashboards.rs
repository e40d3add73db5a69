//! `orteam keys list` (table, JSON, CSV) and `orteam top` (in tmux) against a real gateway.

use std::time::Duration;

use chrono::TimeDelta;
use orteam_core::{Money, Window};
use orteam_ledger::BudgetScope;
use orteam_test_support::{ADMIN_TOKEN, Backend, TestGateway};
use serde_json::{Value, json};

use crate::support::bin;

/// A gateway with budgets, traffic, an overdue rotating key (carol) and a direct OpenRouter key
/// (bob) that has been used at the simulator.
async fn gateway_with_traffic() -> TestGateway {
    let tg = TestGateway::builder(Backend::Sqlite)
        .budget(BudgetScope::Member, "alice", Window::Daily, "0.50")
        .budget(BudgetScope::Team, "core", Window::Monthly, "10.00")
        .budget(BudgetScope::Org, "acme", Window::Monthly, "50.00")
        .start()
        .await;
    tg.clock.set_offset(TimeDelta::days(-40));
    tg.admin
        .create_virtual_key("carol", "orteam:acme:carol:2;rotate=30d;grace=1d", None)
        .await
        .unwrap();
    tg.clock.set_offset(TimeDelta::zero());
    let direct = orteam_test_support::inference_key_with_limit(
        &tg.sim,
        "orteam:acme:bob:1",
        Some(Money::parse("25").unwrap()),
        Some(Window::Monthly),
    );
    tg.admin
        .add_upstream_key(
            "bob",
            "orteam:acme:bob:1;rotate=30d;grace=1h",
            &direct.hash,
            None,
        )
        .await
        .unwrap();
    let body = |model: &str| {
        json!({"model": model, "max_tokens": 300,
               "messages": [{"role": "user", "content": "hello [[sim:tokens=200]]"}]})
    };
    for model in ["openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4o"] {
        assert_eq!(tg.chat("alice", body(model)).await.status(), 200);
    }
    assert_eq!(
        tg.chat("carol", body("openai/gpt-4o-mini")).await.status(),
        200
    );
    // bob calls OpenRouter directly with his own key.
    let r = tg
        .http
        .post(format!("{}/chat/completions", tg.sim.base_url()))
        .bearer_auth(&direct.secret)
        .json(&body("openai/gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tg.sync().await;
    tg
}

async fn keys_list(tg: &TestGateway, format: &str) -> String {
    let out = tokio::process::Command::new(bin())
        .args(["keys", "list", "--format", format])
        .env("ORTEAM_DATABASE_URL", &tg.db.url)
        .env("OPENROUTER_BASE_URL", tg.sim.base_url())
        .env("OPENROUTER_PROVISIONING_KEY", tg.sim.provisioning_key())
        .env_remove("ORTEAM_LOG")
        .env_remove("ORTEAM_CLOCK_OFFSET_SECONDS")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "keys list --format {format}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_list_as_table_json_and_csv() {
    let tg = gateway_with_traffic().await;
    tg.sync().await;
    let events = tg.admin.recent_events(10).await.unwrap();
    let alice_spend: Money = events
        .iter()
        .filter(|e| e.member_id == "alice")
        .map(|e| e.usage.cost)
        .sum();

    let json: Value = serde_json::from_str(&keys_list(&tg, "json").await).unwrap();
    let rows = json.as_array().unwrap();
    let row = |member: &str, mode: &str| {
        rows.iter()
            .find(|r| r["member"] == member && r["mode"] == mode)
            .unwrap_or_else(|| panic!("no {mode} key for {member}: {json:#}"))
    };
    let alice = row("alice", "gateway");
    assert_eq!(
        Money::parse(alice["usage_today"].as_str().unwrap()).unwrap(),
        alice_spend,
        "exact usage today"
    );
    assert_eq!(alice["usage_month"], alice["usage_today"]);
    assert_eq!(alice["limit"], "0.5");
    assert_eq!(alice["limit_window"], "daily");
    assert_eq!(alice["state"], "active");
    let carol2 = rows
        .iter()
        .find(|r| r["member"] == "carol" && r["generation"] == 2)
        .unwrap();
    assert_eq!(carol2["rotation_overdue"], true);
    let bob = row("bob", "direct");
    assert_eq!(bob["key"], "orteam:acme:bob:1");
    assert_eq!(bob["limit"], "25", "the key's limit at OpenRouter");
    assert_eq!(bob["limit_window"], "monthly");
    assert!(
        Money::parse(bob["usage_today"].as_str().unwrap()).unwrap() > Money::ZERO,
        "usage from OpenRouter: {bob}"
    );
    assert_eq!(bob["rotation_overdue"], false);

    let table = keys_list(&tg, "table").await;
    println!("{table}");
    for needle in [
        "member",
        "this month",
        "rotation due",
        "orteam:acme:bob:1",
        "$25.00/month",
        "(overdue)",
        "total",
        "keys, ",
        "1 overdue",
    ] {
        assert!(table.contains(needle), "{needle:?} missing:\n{table}");
    }

    let csv = keys_list(&tg, "csv").await;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "member");
    let records: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(records.len(), rows.len());
    for r in &records {
        assert_eq!(r.len(), header.len(), "{r:?}");
    }
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let alice_csv = records
        .iter()
        .find(|r| r[col("member")] == "alice" && r[col("mode")] == "gateway")
        .unwrap();
    assert_eq!(
        Money::parse(alice_csv[col("usage_today")]).unwrap(),
        alice_spend
    );
    // Exact amounts in every format: the JSON total equals the sum of the CSV column.
    let csv_total: Money = records
        .iter()
        .filter_map(|r| Money::parse(r[col("usage_month")]).ok())
        .sum();
    let json_total: Money = rows
        .iter()
        .filter_map(|r| r["usage_month"].as_str())
        .map(|s| Money::parse(s).unwrap())
        .sum();
    assert_eq!(csv_total, json_total);
}

pub(crate) fn tmux(socket: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run tmux ({e}): install it with `bash scripts/browser-env.sh` (or apt-get install tmux)"
            )
        })
}

pub(crate) fn capture(socket: &str) -> String {
    String::from_utf8_lossy(&tmux(socket, &["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
}

pub(crate) async fn wait_for(socket: &str, what: &str, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..150 {
        last = capture(socket);
        if last.contains(needle) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {needle:?} never appeared in the pane:\n{last}");
}

/// Kills the tmux server of the test even when an assertion fails.
pub(crate) struct TmuxServer(pub(crate) String);

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = tmux(&self.0, &["kill-server"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_in_tmux_shows_the_gateway_and_quits_on_q() {
    let tg = gateway_with_traffic().await;
    let socket = format!("orteam-top-{}", std::process::id());
    let server = TmuxServer(socket.clone());
    let command = format!(
        "'{}' top --url '{}' --interval 500ms; echo EXITED=$?; sleep 60",
        bin().display(),
        tg.root_url()
    );
    let out = tmux(
        &server.0,
        &[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "80",
            "-y",
            "24",
            "-e",
            &format!("ORTEAM_ADMIN_TOKEN={ADMIN_TOKEN}"),
            &command,
        ],
    );
    assert!(
        out.status.success(),
        "tmux new-session: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pane = wait_for(&socket, "overview", "Spend vs budget").await;
    for needle in [
        "orteam top",
        "1 Overview",
        "M alice",
        "T core",
        "O acme",
        "Today by model",
        "gpt-4o",
        "Keys due for rotation",
        "carol",
        "overdue",
        "Recent requests",
        "q quit",
    ] {
        assert!(pane.contains(needle), "{needle:?} missing:\n{pane}");
    }
    assert!(pane.lines().count() <= 24, "fits 24 lines:\n{pane}");
    assert!(
        pane.lines().all(|l| l.chars().count() <= 80),
        "fits 80 columns:\n{pane}"
    );

    // Live: a new request shows up without a key press.
    let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 20,
                      "messages": [{"role": "user", "content": "x [[sim:tokens=5]]"}]});
    assert_eq!(tg.chat("bob", body).await.status(), 200);
    wait_for(&socket, "live update", "bob ").await;

    // Keyboard navigation: → goes to Budgets.
    tmux(&socket, &["send-keys", "-t", "top", "Right"]);
    let pane = wait_for(&socket, "budgets tab", "resets").await;
    assert!(pane.contains("member alice"), "{pane}");
    tmux(&socket, &["send-keys", "-t", "top", "4"]);
    wait_for(&socket, "keys tab", "rotate").await;

    tmux(&socket, &["send-keys", "-t", "top", "q"]);
    let pane = wait_for(&socket, "exit", "EXITED=").await;
    assert!(pane.contains("EXITED=0"), "{pane}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_with_a_wrong_token_says_so() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    // Not a terminal here: the token is checked before the terminal is needed.
    let out = tokio::process::Command::new(bin())
        .args(["top", "--url", &tg.root_url()])
        .env("ORTEAM_ADMIN_TOKEN", "wrong")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("refused the admin token (HTTP 401): set ORTEAM_ADMIN_TOKEN"),
        "{stderr}"
    );
}
