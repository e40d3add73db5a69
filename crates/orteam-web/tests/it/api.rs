//! `GET /admin/v1/dashboard` and the embedded page, over real HTTP.

use orteam_core::{ApiRoute, Money};
use orteam_ledger::Usage;
use orteam_test_support::ADMIN_TOKEN;
use serde_json::Value;

use crate::support::seeded_gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_has_every_panel_and_needs_the_token() {
    let tg = seeded_gateway().await;
    let root = tg.root_url();
    let url = format!("{root}/admin/v1/dashboard?range=1h&by=model&charts=svg");

    let none = tg.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let wrong = tg.http.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wrong or missing admin token"),
        "{body}"
    );

    let res = tg
        .http
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let s: Value = res.json().await.unwrap();
    // Money is exact, as strings.
    let today = Money::parse(s["totals"]["spend_today"].as_str().unwrap()).unwrap();
    assert!(today > Money::ZERO, "{}", s["totals"]);
    assert!(s["totals"]["requests_today"].as_u64().unwrap() >= 10);
    let members_today: Money = s["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Money::parse(m["spend_today"].as_str().unwrap()).unwrap())
        .sum();
    assert_eq!(members_today, today, "members add up to the total exactly");
    let by_model_today: Money = s["by_model"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Money::parse(m["spend_today"].as_str().unwrap()).unwrap())
        .sum();
    assert_eq!(by_model_today, today);
    // Budgets at every level.
    for scope in ["member", "team", "org"] {
        assert!(
            s["budgets"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["scope"] == scope),
            "no {scope} budget in {}",
            s["budgets"]
        );
    }
    // Bob's tiny budget is exhausted or nearly: an alert with an action.
    assert!(
        s["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "budget" && a["subject"] == "member bob"),
        "{}",
        s["alerts"]
    );
    // carol's rotating key is overdue.
    let keys = s["keys"].as_array().unwrap();
    let carol2 = keys
        .iter()
        .find(|k| k["generation"] == 2 && k["member"] == "carol")
        .unwrap();
    assert_eq!(carol2["rotation_overdue"], true, "{carol2}");
    assert_eq!(carol2["mode"], "gateway");
    assert!(
        s["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "rotation" && a["action"] == "orteam keys rotate carol")
    );
    // Series: 60 one-minute buckets, spread over the hour.
    assert_eq!(s["series"]["starts"].as_array().unwrap().len(), 60);
    let alice = s["series"]["by_member"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "alice")
        .unwrap();
    let nonzero = alice["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p.as_str() != Some("0"))
        .count();
    assert!(nonzero >= 5, "{alice}");
    // Charts: by model, as asked.
    let over_time = s["charts"]["spend_over_time"].as_str().unwrap();
    assert!(over_time.contains("data-has-data=\"true\""));
    assert!(over_time.contains("openai/gpt-4o"), "split by model");
    assert!(over_time.contains("<polyline"));
    let by_model = s["charts"]["spend_by_model"].as_str().unwrap();
    assert!(by_model.contains("<rect"));
    // Recent requests, newest first, with the downgrade visible.
    let recent = s["recent"].as_array().unwrap();
    assert!(recent.len() >= 20);
    assert!(
        recent.iter().any(|r| r["member"] == "bob"
            && r["requested_model"] == "anthropic/claude-3.5-sonnet"
            && r["served_model"] == "openai/gpt-4o-mini"),
        "{recent:?}"
    );
    assert_eq!(s["anomaly_detector"], "orteam-insight");
    assert_eq!(
        s["anomalies"],
        serde_json::json!([]),
        "no spike in this traffic"
    );

    let bad = tg
        .http
        .get(format!("{root}/admin/v1/dashboard?range=2h"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("range=1h|24h|7d|30d")
    );
}

/// Spend by API route: the gateway's chat traffic plus requests of other routes settled
/// straight into its ledger (the gateway serves chat only so far).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_has_spend_by_route_and_recent_routes() {
    let tg = seeded_gateway().await;
    let ledger = &tg.gateway().ledger;
    let m = |s: &str| Money::parse(s).unwrap();
    for (id, route, cost) in [
        ("msg-1", ApiRoute::Messages, "0.0002"),
        ("msg-2", ApiRoute::Messages, "0.0000000375"),
        ("emb-1", ApiRoute::Embeddings, "0.000001"),
    ] {
        let r = ledger.reserve("carol", m("0.01")).await.unwrap();
        r.settle(Usage::new(id, "openai/gpt-4o-mini", m(cost)).with_route(route))
            .await
            .unwrap();
    }
    let s: Value = tg
        .http
        .get(format!("{}/admin/v1/dashboard", tg.root_url()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = s["by_route"].as_array().unwrap();
    let routes: Vec<&str> = rows.iter().map(|r| r["route"].as_str().unwrap()).collect();
    assert_eq!(
        routes,
        ["chat", "messages", "embeddings"],
        "largest first: {rows:?}"
    );
    let requests: u64 = rows
        .iter()
        .map(|r| r["requests_today"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, s["totals"]["requests_today"].as_u64().unwrap());
    let spend: Money = rows
        .iter()
        .map(|r| m(r["spend_today"].as_str().unwrap()))
        .sum();
    assert_eq!(
        spend,
        m(s["totals"]["spend_today"].as_str().unwrap()),
        "exact"
    );
    assert_eq!(rows[1]["spend_today"], "0.0002000375");
    assert_eq!(rows[1]["requests_month"], 2);
    assert_eq!(rows[2]["spend_month"], "0.000001");
    // Recent requests name their route.
    let recent = s["recent"].as_array().unwrap();
    assert_eq!(recent[0]["request_id"], "emb-1");
    assert_eq!(recent[0]["route"], "embeddings");
    assert!(
        recent[3..].iter().all(|r| r["route"] == "chat"),
        "{recent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_assets_are_embedded_and_need_no_token() {
    let tg = orteam_test_support::TestGateway::start(orteam_test_support::Backend::Sqlite).await;
    let root = tg.root_url();
    for (path, kind, needle) in [
        ("/dashboard", "text/html", "login-form"),
        ("/dashboard/app.js", "text/javascript", "sessionStorage"),
        ("/dashboard/app.css", "text/css", ".gauge"),
    ] {
        let res = tg.http.get(format!("{root}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        assert!(res.headers().contains_key("content-security-policy"));
        assert!(res.text().await.unwrap().contains(needle), "{path}");
    }
    // No traffic yet: the snapshot says so, and the charts draw their empty state.
    let s: Value = tg
        .http
        .get(format!("{root}/admin/v1/dashboard?charts=svg"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["totals"]["any_requests"], false);
    assert!(
        s["charts"]["spend_over_time"]
            .as_str()
            .unwrap()
            .contains("no spend in the last 1h")
    );
}

/// A detector wired in through the hook shows its findings (and its failures) in the panel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomaly_hook_feeds_the_panel() {
    use std::sync::Arc;

    use orteam_web::alerts::{Alert, AnomalySource, BoxFuture, Severity};
    use orteam_web::{Range, WebState};

    struct Fake(Result<Vec<Alert>, String>);
    impl AnomalySource for Fake {
        fn name(&self) -> &str {
            "fake"
        }
        fn anomalies<'a>(
            &'a self,
            _: &'a orteam_ledger::Ledger,
            _: chrono::DateTime<chrono::Utc>,
        ) -> BoxFuture<'a, Result<Vec<Alert>, String>> {
            let r = self.0.clone();
            Box::pin(async move { r })
        }
    }
    let tg = orteam_test_support::TestGateway::start(orteam_test_support::Backend::Sqlite).await;
    let spike = Alert {
        severity: Severity::Warning,
        kind: "member spike".into(),
        subject: "alice".into(),
        message: "member alice spent $9.00 today; usual is $0.50".into(),
        action: None,
        time: None,
    };
    let state =
        WebState::new(tg.admin.clone()).with_anomalies(Arc::new(Fake(Ok(vec![spike.clone()]))));
    let s = state.snapshot(Range::Day, 10).await.unwrap();
    assert_eq!(s.anomaly_detector.as_deref(), Some("fake"));
    assert_eq!(s.anomalies, vec![spike]);

    let failing = state.with_anomalies(Arc::new(Fake(Err("no baseline".into()))));
    let s = failing.snapshot(Range::Day, 10).await.unwrap();
    assert!(
        s.anomalies[0]
            .message
            .contains("anomaly detection failed: no baseline")
    );

    let none = WebState::new(tg.admin.clone()).without_anomalies();
    let s = none.snapshot(Range::Day, 10).await.unwrap();
    assert_eq!(s.anomaly_detector, None);
}
