//! Refused requests through the real binary: after a burst of 402/403/429, `orteam report
//! --outcome refused` (table, JSON, CSV), the plain report and the dashboard's JSON show who was
//! refused, how often and by what, with exact counts; and the errors a lead meets first say what
//! is wrong once, where it is.

use orteam_core::Window;
use orteam_ledger::{BudgetScope, RefusalFilter};
use orteam_test_support::{ADMIN_TOKEN, Backend, TestGateway, backend_tests};
use serde_json::{Value, json};

use crate::support::{Out, bin};

backend_tests!(refusals_are_reported_exactly);

async fn orteam(tg: &TestGateway, args: &[&str]) -> Out {
    let out = tokio::process::Command::new(bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ORTEAM_DATABASE_URL", &tg.db.url)
        .env("OPENROUTER_BASE_URL", tg.sim.base_url())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn body(model: &str) -> Value {
    json!({"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
}

async fn refusals_are_reported_exactly(backend: Backend) {
    let tg = TestGateway::builder(backend)
        .budget(BudgetScope::Member, "carol", Window::Daily, "0")
        .tier_limits("basic", Some(2), None)
        .start()
        .await;
    for _ in 0..12 {
        let s = tg.chat("carol", body("openai/gpt-4o-mini")).await.status();
        assert_eq!(s, 402);
    }
    for _ in 0..3 {
        let s = tg.chat("carol", body("openai/gpt-4o")).await.status();
        assert_eq!(s, 403);
    }
    let mut limited = 0u64;
    for _ in 0..5 {
        if tg.chat("bob", body("openai/gpt-4o-mini")).await.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 3, "{limited}");
    // The gateway hands its counts to the database (it would within half a second).
    tg.gateway()
        .ledger
        .refusals(RefusalFilter::default())
        .await
        .unwrap();

    let out = orteam(
        &tg,
        &[
            "report",
            "--outcome",
            "refused",
            "--period",
            "today",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["total"], 12 + 3 + limited, "{v}");
    let rows = v["refusals"].as_array().unwrap();
    let find = |member: &str, reason: &str| {
        rows.iter()
            .find(|r| r["member_id"] == member && r["reason"] == reason)
            .unwrap_or_else(|| panic!("no {member} {reason} in {v}"))
    };
    assert_eq!(find("carol", "budget_exceeded")["count"], 12);
    assert_eq!(
        find("carol", "budget_exceeded")["detail"],
        "member \"carol\" daily"
    );
    assert_eq!(find("carol", "model_not_allowed")["count"], 3);
    assert_eq!(find("bob", "rate_limit_exceeded")["count"], limited);

    let out = orteam(
        &tg,
        &["report", "--outcome", "refused", "--period", "today"],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let carol = out
        .stdout
        .lines()
        .find(|l| l.contains("carol") && l.contains("budget exceeded"))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(
        carol.contains("member \"carol\" daily") && carol.contains(" 12 "),
        "{carol}"
    );

    let out = orteam(
        &tg,
        &[
            "report",
            "--outcome",
            "refused",
            "--period",
            "today",
            "--format",
            "csv",
        ],
    )
    .await;
    assert!(
        out.stdout
            .starts_with("member,reason,refused_by,count,last_minute\n"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("carol,budget_exceeded,\"member \"\"carol\"\" daily\",12,"),
        "{out:?}"
    );

    // The plain report says it under the spend table.
    let out = orteam(&tg, &["report", "--period", "today", "--no-direct"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("carol refused 12× by the member \"carol\" daily budget"),
        "{out:?}"
    );

    // Logs redirected to a pipe carry no colour codes.
    let out = orteam(&tg, &["-vv", "report", "--period", "today", "--no-direct"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    if backend == Backend::Postgres {
        // The PostgreSQL driver logs its statements at debug: there are log lines to check.
        assert!(out.stderr.contains("DEBUG"), "logs at -vv: {out:?}");
    }
    assert!(
        !out.stderr.contains('\x1b'),
        "ANSI in a redirected log: {out:?}"
    );
    // Without -v a report prints its data and no INFO lines.
    let out = orteam(&tg, &["report", "--period", "today", "--no-direct"]).await;
    assert!(!out.stderr.contains("INFO"), "{out:?}");

    // The dashboard: a refused panel's data, the total and the alert.
    let snap: Value = tg
        .http
        .get(format!("{}/admin/v1/dashboard", tg.root_url()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(snap["totals"]["refused_today"], 12 + 3 + limited, "{snap}");
    assert!(
        snap["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "refused"
                && a["message"] == "carol refused 12× by the member \"carol\" daily budget"),
        "{}",
        snap["alerts"]
    );
    assert_eq!(
        snap["refusals"][0]["member"], "carol",
        "{}",
        snap["refusals"]
    );
    assert_eq!(snap["refusals"][0]["count"], 12);

    // budget raise on a window without a budget names the windows that exist.
    let out = orteam(
        &tg,
        &[
            "budget", "raise", "carol", "1.00", "--window", "weekly", "--until", "8h",
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.error_line(),
        "error: member \"carol\" has no weekly budget to raise; its budgets are: daily"
    );
    assert!(tg.admin.directory().raises.is_empty(), "nothing was raised");
}

/// A read-only command on a ledger that does not exist says so and creates nothing.
#[tokio::test]
async fn a_missing_ledger_is_an_error_not_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orteam.db");
    for args in [
        vec!["report"],
        vec!["keys", "list"],
        vec!["report", "weekly"],
    ] {
        let out = tokio::process::Command::new(bin())
            .args(&args)
            .arg("--database-url")
            .arg(format!("sqlite://{}", db.display()))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .await
            .unwrap();
        let out = Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        };
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert_eq!(
            out.error_line(),
            format!(
                "error: no ledger at {}; set ORTEAM_DATABASE_URL (or --database-url) to your ledger, or run `orteam team apply` to create one",
                db.display()
            ),
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        assert!(!db.exists(), "{args:?} created {}", db.display());
    }
}
