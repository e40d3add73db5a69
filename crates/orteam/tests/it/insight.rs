//! `orteam report`, `report weekly`, `reconcile` and `alerts list` against a gateway in front of
//! the simulator, with both clocks moved together over simulated days.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, TimeDelta, Utc};
use orteam_core::{ApiRoute, Money};
use orteam_ledger::Usage;
use orteam_test_support::{Backend, TestGateway, backend_tests};
use serde_json::{Value, json};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn orteam(tg: &TestGateway, at: DateTime<Utc>, args: &[&str]) -> Run {
    let offset = (at - Utc::now()).num_seconds();
    let out = tokio::process::Command::new(crate::support::bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ORTEAM_DATABASE_URL", &tg.db.url)
        .env("OPENROUTER_BASE_URL", tg.sim.base_url())
        .env("OPENROUTER_PROVISIONING_KEY", tg.sim.provisioning_key())
        .env("OPENROUTER_API_KEY", &tg.upstream_key.secret)
        .env("ORTEAM_CLOCK_OFFSET_SECONDS", offset.to_string())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn set_time(tg: &TestGateway, at: DateTime<Utc>) {
    tg.clock.freeze(at);
    tg.sim.clock().freeze(at);
}

fn body(model: &str, tokens: u64) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": format!("Hi [[sim:tokens={tokens}]]")}]})
}

fn money(v: &Value) -> Money {
    match v {
        Value::String(s) => Money::parse(s).unwrap(),
        other => Money::parse(&other.to_string()).unwrap(),
    }
}

async fn report_and_reconcile_cli(backend: Backend) {
    let tg = TestGateway::start(backend).await;
    let dave = tg.add_direct_member("dave", "web").await;
    let dave_secret = dave.secret;
    let today = orteam_core::window::midnight(Utc::now().date_naive() + Days::new(12))
        + TimeDelta::hours(12);
    let mut sent = 0;
    let mut victim = None;
    for d in (1..=10).rev() {
        set_time(&tg, today - TimeDelta::days(d));
        for (member, model, tokens) in [
            ("alice", "openai/gpt-4o-mini", 20 + d as u64),
            ("bob", "meta-llama/llama-3.1-8b-instruct", 30),
            ("carol", "openai/gpt-4o-mini", 11),
        ] {
            let r = tg.chat(member, body(model, tokens)).await;
            assert_eq!(r.status(), 200);
            victim = r
                .headers()
                .get("x-orteam-request-id")
                .map(|v| v.to_str().unwrap().to_owned());
            sent += 1;
        }
        let r = tg
            .http
            .post(format!("{}/chat/completions", tg.sim.base_url()))
            .bearer_auth(&dave_secret)
            .json(&body("openai/gpt-4o", 25))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    set_time(&tg, today);
    orteam_test_support::wait_for_events(&tg.admin, sent).await;
    let activity = orteam_test_support::sim_management_get(&tg.sim, "/activity").await;
    let mut want: BTreeMap<(String, String), Money> = BTreeMap::new();
    for a in activity["data"].as_array().unwrap() {
        let e = want
            .entry((
                a["date"].as_str().unwrap().into(),
                a["model"].as_str().unwrap().into(),
            ))
            .or_insert(Money::ZERO);
        *e = e.checked_add(money(&a["usage"])).unwrap();
    }
    let total: Money = want.values().copied().sum();

    // CSV by day and model equals /activity cell by cell.
    let out = orteam(
        &tg,
        today,
        &[
            "report",
            "--period",
            "last-30d",
            "--by",
            "day,model",
            "--format",
            "csv",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let mut got: BTreeMap<(String, String), Money> = BTreeMap::new();
    let mut sources = std::collections::BTreeSet::new();
    for l in lines {
        let c: Vec<&str> = l.split(',').collect();
        sources.insert(c[col("source")].to_owned());
        let e = got
            .entry((c[col("day")].to_owned(), c[col("model")].to_owned()))
            .or_insert(Money::ZERO);
        *e = e
            .checked_add(Money::parse(c[col("cost")]).unwrap())
            .unwrap();
    }
    assert_eq!(got, want);
    assert_eq!(
        sources,
        ["gateway".to_owned(), "openrouter".to_owned()].into()
    );

    // JSON by member (repeated --by) sums to the same total, exact decimal strings.
    let out = orteam(
        &tg,
        today,
        &[
            "report", "--period", "last-7d", "--by", "member", "--by", "team", "--format", "json",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let week_start = (today - TimeDelta::days(7)).date_naive().to_string();
    let week_total: Money = want
        .iter()
        .filter(|((d, _), _)| *d >= week_start)
        .map(|(_, m)| *m)
        .sum();
    assert_eq!(money(&v["totals"]["cost"]), week_total);
    assert!(
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["member"] == "dave" && r["source"] == "openrouter")
    );

    // --since/--until and the table.
    let since = (today - TimeDelta::days(30)).date_naive().to_string();
    let until = (today - TimeDelta::days(1)).date_naive().to_string();
    let out = orteam(
        &tg,
        today,
        &[
            "report", "--since", &since, "--until", &until, "--format", "table",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(&total.usd()), "{}", out.stdout);
    assert!(out.stdout.contains("openrouter"));

    // The weekly summary.
    let out = orteam(&tg, today, &["report", "weekly", "--format", "json"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let w: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(w["members"].as_array().unwrap().len(), 4);
    let out = orteam(&tg, today, &["report", "weekly"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Top models:"), "{}", out.stdout);

    // Reconciliation: clean, then a planted difference.
    let out = orteam(&tg, today, &["reconcile", "--since", &since]).await;
    assert_eq!(out.code, 0, "{out:?}", out = (&out.stdout, &out.stderr));
    // Without -v, reconcile prints its result and no INFO lines, and no colour into a pipe.
    assert!(
        !out.stderr.contains("INFO") && !out.stderr.contains('\x1b'),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout
            .contains(&format!("{sent} checked, {sent} match, 0 differ")),
        "{}",
        out.stdout
    );
    // A planted difference is corrected to `/generation`'s total_cost: the run says so and
    // exits 0 (nothing left outstanding).
    let vid = victim.unwrap();
    let exact = tg.admin.event(&vid).await.unwrap().unwrap().usage.cost;
    tg.db
        .raw(&format!(
            "UPDATE usage_events SET cost = '1.25' WHERE request_id = '{vid}'"
        ))
        .await;
    let out = orteam(
        &tg,
        today,
        &["reconcile", "--since", &since, "--format", "json"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(r["summary"]["differed"], 1);
    assert_eq!(r["summary"]["changed"], 1);
    assert_eq!(r["summary"]["totals_differed"], 0);
    let change = &r["changes"][0];
    assert_eq!(change["request_id"], vid.as_str());
    assert_eq!(change["kind"], "corrected");
    assert_eq!(money(&change["before"]), Money::parse("1.25").unwrap());
    assert_eq!(money(&change["after"]), exact);
    // On SQLite the running gateway owns the file: the CLI queued the correction and the
    // gateway's reconcile tick applies it (here by hand); on PostgreSQL it is applied already.
    tg.gateway()
        .ledger
        .apply_pending_corrections()
        .await
        .unwrap();
    let e = tg.admin.event(&vid).await.unwrap().unwrap();
    assert_eq!(e.usage.cost, exact);
    assert!(e.reconciled.unwrap().evidence.contains("total_cost"));

    // A generation billed on the shared key that the ledger never recorded is inserted, at org
    // level, and the run says what it changed.
    let day = today - TimeDelta::days(2);
    set_time(&tg, day);
    let r = tg
        .http
        .post(format!("{}/chat/completions", tg.sim.base_url()))
        .bearer_auth(&tg.upstream_key.secret)
        .json(&body("openai/gpt-4o", 33))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let unrecorded = money(&r.json::<Value>().await.unwrap()["usage"]["cost"]);
    set_time(&tg, today);
    let out = orteam(&tg, today, &["reconcile", "--since", &since]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "inserted unattributed (org) openai/gpt-4o {}: 0 → {}",
            day.date_naive(),
            unrecorded.to_canonical_string()
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "changed 0 events, inserted 1, booked {} at org level",
            unrecorded.usd()
        )),
        "{}",
        out.stdout
    );
    tg.gateway()
        .ledger
        .apply_pending_corrections()
        .await
        .unwrap();
    // Idempotent: the next run changes nothing.
    let out = orteam(
        &tg,
        today,
        &["reconcile", "--since", &since, "--format", "json"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(r["changes"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["summary"]["outstanding"], 0, "{r}");
    // `orteam report` shows the booking as unattributed (org).
    let out = orteam(
        &tg,
        today,
        &[
            "report",
            "--since",
            &since,
            "--by",
            "member",
            "--format",
            "json",
            "--no-direct",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let row = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["member"] == "unattributed (org)")
        .unwrap_or_else(|| panic!("no unattributed (org) row: {v}"));
    assert_eq!(money(&row["cost"]), unrecorded);

    let out = orteam(&tg, today, &["alerts", "list"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
}

backend_tests!(report_and_reconcile_cli);

/// `orteam report --by route` (alone and with other dimensions) and `--route NAME`, over a
/// ledger holding requests of several API routes.
async fn report_by_route_cli(backend: Backend) {
    let db = orteam_test_support::TestDb::new(backend).await;
    let ledger = db.open(orteam_ledger::LedgerOptions::serving()).await;
    orteam_test_support::seed_directory(&ledger, &Default::default()).await;
    for (member, id, route, cost) in [
        ("alice", "c1", ApiRoute::Chat, "0.10"),
        ("alice", "m1", ApiRoute::Messages, "0.0000000375"),
        ("bob", "m2", ApiRoute::Messages, "0.25"),
        ("bob", "e1", ApiRoute::Embeddings, "0.002"),
    ] {
        let r = ledger
            .reserve(member, Money::parse("1").unwrap())
            .await
            .unwrap();
        r.settle(
            Usage::new(id, "openai/gpt-4o-mini", Money::parse(cost).unwrap()).with_route(route),
        )
        .await
        .unwrap();
    }
    ledger.shutdown().await.unwrap();
    let today = Utc::now().date_naive();
    let since = (today - Days::new(1)).to_string();
    let until = (today + Days::new(1)).to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "report",
            "--since",
            &since,
            "--until",
            &until,
            "--no-direct",
        ];
        args.extend_from_slice(extra);
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let url = db.url.clone();
        async move {
            let out = tokio::process::Command::new(crate::support::bin())
                .args(&args)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("ORTEAM_DATABASE_URL", url)
                .kill_on_drop(true)
                .output()
                .await
                .unwrap();
            Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8(out.stdout).unwrap(),
                stderr: String::from_utf8(out.stderr).unwrap(),
            }
        }
    };

    // CSV by route: one row per route, the route column filled, exact sums.
    let out = run(&["--by", "route", "--format", "csv"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let rows: Vec<(String, String, String)> = lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[col("route")].to_owned(),
                c[col("requests")].to_owned(),
                c[col("cost")].to_owned(),
            )
        })
        .collect();
    let row = |r: &str, n: &str, c: &str| (r.to_owned(), n.to_owned(), c.to_owned());
    assert_eq!(
        rows,
        [
            row("chat", "1", "0.1"),
            row("messages", "2", "0.2500000375"),
            row("embeddings", "1", "0.002"),
        ],
        "{}",
        out.stdout
    );

    // JSON by member and route.
    let out = run(&["--by", "member,route", "--format", "json"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["group_by"], json!(["member", "route"]));
    let got: Vec<(&str, &str)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["member"].as_str().unwrap(), r["route"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("alice", "chat"),
            ("alice", "messages"),
            ("bob", "messages"),
            ("bob", "embeddings"),
        ]
    );

    // The table, filtered to one route.
    let out = run(&["--by", "member,route", "--route", "messages"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(", route messages"), "{}", out.stdout);
    assert!(out.stdout.contains("┆ route "), "{}", out.stdout);
    assert!(out.stdout.contains("$0.25"), "{}", out.stdout);
    assert!(!out.stdout.contains("embeddings"), "{}", out.stdout);
    assert!(!out.stdout.contains("chat"), "{}", out.stdout);

    // An unknown route name is refused with the valid ones.
    let out = run(&["--route", "graphql"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    for name in ["chat", "messages", "responses", "embeddings", "completions"] {
        assert!(out.stderr.contains(name), "{}", out.stderr);
    }
}

backend_tests!(report_by_route_cli);
