//! A tier decides what OpenRouter's routing fields may do (issue 17): each field checked,
//! stripped or refused as the tier's `routing` policy says, on every route; provider
//! preferences capped at the quoted prices; media given by URL held; a model served outside
//! the tier charged but flagged (event, metric, alert, dashboard); member labels on metrics
//! configurable.

use orteam_core::{Money, Window};
use orteam_gateway::MemberLabels;
use orteam_insight::alerts::{AlertsConfig, enqueue_alerts};
use orteam_ledger::{BudgetScope, EventFilter, PaidRule, RouteRule, RoutingPolicy};
use orteam_test_support::{ADMIN_TOKEN, Backend, TestGateway, backend_tests};
use serde_json::{Value, json};

use crate::routes::Api;
use crate::support::*;

const GENERATING: [Api; 4] = [Api::Chat, Api::Messages, Api::Responses, Api::Completions];

/// The gateway's `/metrics` text, read with the admin token.
async fn metrics_text(tg: &TestGateway) -> String {
    tg.http
        .get(format!("{}/metrics", tg.root_url()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Sets the routing policy of `tier` and makes the gateway see it.
async fn set_routing(tg: &TestGateway, tier: &str, routing: RoutingPolicy) {
    let mut t = (*tg.admin.directory().tiers[tier]).clone();
    t.routing = routing;
    tg.admin.put_tier(t).await.expect("put tier");
    tg.sync().await;
}

/// The last body upstream received on `api`'s route.
fn last_upstream_body(tg: &TestGateway, api: Api) -> Value {
    let bodies = tg.sim.request_bodies(&api.upstream_path());
    serde_json::from_slice(bodies.last().expect("a request reached upstream")).unwrap()
}

fn per_million(price: &str) -> String {
    Money::parse(price)
        .unwrap()
        .checked_mul_u64(1_000_000)
        .unwrap()
        .to_canonical_string()
}

#[tokio::test]
async fn each_routing_field_is_checked_stripped_or_refused_as_the_tier_says() {
    let tg = TestGateway::builder(Backend::Sqlite).start().await;
    tg.sim.record_request_bodies();
    let catalog_price = |field: &str| {
        let models = tg.gateway().catalog.snapshot();
        let m = models
            .models
            .iter()
            .find(|m| m.id == "openai/gpt-4o-mini")
            .unwrap();
        match field {
            "prompt" => m.pricing.prompt.unwrap().to_canonical_string(),
            _ => m.pricing.completion.unwrap().to_canonical_string(),
        }
    };

    // The default policy: provider preferences pass, with max_price capped at the quote (the
    // member's own lower cap kept); fallbacks the tier allows pass.
    for api in GENERATING {
        let mut b = api.body("[[sim:tokens=3]]", Some(10), false);
        b["provider"] = json!({"order": ["openai"], "max_price": {"completion": 0.0000001}});
        b["models"] = json!(["meta-llama/llama-3.1-8b-instruct"]);
        let resp = tg.post("bob", api.path(), b).await;
        assert_eq!(resp.status(), 200, "{api:?}");
        let sent = last_upstream_body(&tg, api);
        assert_eq!(sent["provider"]["order"], json!(["openai"]), "{api:?}");
        assert_eq!(
            sent["provider"]["max_price"]["completion"],
            json!(0.0000001),
            "{api:?}: the member's lower cap is kept"
        );
        assert_eq!(sent["models"], json!(["meta-llama/llama-3.1-8b-instruct"]));
        // Without preferences of its own, the cap is the quote's rates (the dearer of the
        // model and its fallback, both cheaper than gpt-4o-mini here or equal).
        let b = api.body("[[sim:tokens=3]]", Some(10), false);
        assert_eq!(tg.post("carol", api.path(), b).await.status(), 200);
        let sent = last_upstream_body(&tg, api);
        assert_eq!(
            sent["provider"]["max_price"]["prompt"],
            Value::String(per_million(&catalog_price("prompt"))),
            "{api:?}: {sent}"
        );
        assert_eq!(
            sent["provider"]["max_price"]["completion"],
            Value::String(per_million(&catalog_price("completion"))),
            "{api:?}"
        );
    }

    // A tier that strips: the fields never reach upstream, and the answer names them.
    set_routing(
        &tg,
        "all",
        RoutingPolicy {
            fallbacks: RouteRule::Strip,
            provider: RouteRule::Strip,
            plugins: PaidRule::Strip,
            server_tools: PaidRule::Strip,
        },
    )
    .await;
    for api in GENERATING {
        let mut b = api.body("[[sim:tokens=3]]", Some(10), false);
        b["models"] = json!(["openai/gpt-4o"]);
        b["provider"] = json!({"order": ["azure"]});
        b["route"] = json!("fallback");
        b["plugins"] = json!([{"id": "web"}, {"id": "response-healing"}]);
        let resp = tg.post("alice", api.path(), b).await;
        assert_eq!(resp.status(), 200, "{api:?}");
        let removed = resp.headers()["x-orteam-removed"]
            .to_str()
            .unwrap()
            .to_owned();
        for f in ["models", "provider", "route", "plugins.web"] {
            assert!(removed.contains(f), "{api:?}: {removed}");
        }
        let sent = last_upstream_body(&tg, api);
        assert!(
            sent.get("models").is_none() && sent.get("route").is_none(),
            "{sent}"
        );
        assert!(sent["provider"].get("order").is_none(), "{sent}");
        assert!(sent["provider"]["max_price"].is_object(), "{sent}");
        assert_eq!(sent["plugins"], json!([{"id": "response-healing"}]));
    }

    // A tier that refuses: 403 naming the field, in the route's own error shape, and nothing
    // reaches upstream.
    set_routing(
        &tg,
        "all",
        RoutingPolicy {
            fallbacks: RouteRule::Refuse,
            provider: RouteRule::Refuse,
            plugins: PaidRule::Refuse,
            server_tools: PaidRule::Refuse,
        },
    )
    .await;
    for api in GENERATING {
        let before = tg.sim.request_count("POST", &api.upstream_path());
        for (field, value) in [
            ("models", json!(["openai/gpt-4o-mini"])),
            ("provider", json!({"sort": "throughput"})),
            ("route", json!("fallback")),
            ("plugins", json!([{"id": "file-parser"}])),
            ("tools", json!([{"type": "openrouter:web_search"}])),
        ] {
            let mut b = api.body("", Some(10), false);
            b[field] = value;
            let resp = tg.post("alice", api.path(), b).await;
            assert_eq!(resp.status(), 403, "{api:?} {field}");
            let v: Value = resp.json().await.unwrap();
            api.error_kind(&v);
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains(&format!("`{field}`")),
                "{api:?} {field}: {msg}"
            );
        }
        assert_eq!(
            tg.sim.request_count("POST", &api.upstream_path()),
            before,
            "{api:?}"
        );
    }
    // Messages' own fallback field follows the same rule.
    let mut b = Api::Messages.body("", Some(10), false);
    b["fallbacks"] = json!([{"model": "openai/gpt-4o-mini"}]);
    assert_eq!(tg.post("alice", "/messages", b).await.status(), 403);
}

#[tokio::test]
async fn media_by_url_and_large_tools_are_held_before_they_are_billed() {
    let tg = TestGateway::builder(Backend::Sqlite)
        .budget(BudgetScope::Member, "alice", Window::Daily, "0.05")
        .start()
        .await;
    let cap = |resp: &reqwest::Response| -> u64 {
        resp.headers()["x-orteam-max-tokens"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let plain = json!({"model": "openai/gpt-4o", "max_tokens": 1_000_000,
        "messages": [{"role": "user", "content": "Describe. [[sim:tokens=3]]"}]});
    let base = tg.chat("alice", plain.clone()).await;
    assert_eq!(base.status(), 200);
    // One image by URL: a few dozen bytes in the body, thousands of tokens upstream.
    let mut image = plain.clone();
    image["messages"][0]["content"] = json!([
        {"type": "text", "text": "Describe. [[sim:tokens=3]]"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    ]);
    let with_image = tg.chat("alice", image).await;
    assert_eq!(with_image.status(), 200);
    // Tools are billed as prompt tokens too.
    let mut tools = plain.clone();
    tools["tools"] = json!([{"type": "function", "function": {"name": "f",
        "description": "x".repeat(8_000), "parameters": {}}}]);
    let with_tools = tg.chat("alice", tools).await;
    assert_eq!(with_tools.status(), 200);
    let (b, i, t) = (cap(&base), cap(&with_image), cap(&with_tools));
    // gpt-4o: $2.5/M prompt, $10/M completion: 4,096 held prompt tokens cost 1,024 output
    // tokens; 8,000 bytes of tools 2,000.
    assert!(b - i >= 1_000, "image: {b} vs {i}");
    assert!(b - t >= 1_900, "tools: {b} vs {t}");
}

backend_tests!(a_model_served_outside_the_tier_is_charged_but_flagged);

async fn a_model_served_outside_the_tier_is_charged_but_flagged(backend: Backend) {
    let tg = TestGateway::builder(backend).start().await;
    // Upstream answers carol's gpt-4o-mini (her tier's only model) with gpt-4o.
    tg.sim
        .substitute_model("openai/gpt-4o-mini", "openai/gpt-4o")
        .unwrap();
    let resp = tg
        .chat(
            "carol",
            body("openai/gpt-4o-mini", "[[sim:tokens=5]]", Some(20)),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["model"], "openai/gpt-4o");
    // The same model served to a member whose tier has every model is no violation.
    let resp = tg
        .chat(
            "alice",
            body("openai/gpt-4o-mini", "[[sim:tokens=5]]", Some(20)),
        )
        .await;
    assert_eq!(resp.status(), 200, "alice's tier has every model");

    let events = settled_events_n(&tg, 2).await;
    let carol = events.iter().find(|e| e.member_id == "carol").unwrap();
    assert!(carol.usage.served_outside_tier, "{carol:?}");
    assert_eq!(carol.usage.served_model.as_deref(), Some("openai/gpt-4o"));
    let alice = events.iter().find(|e| e.member_id == "alice").unwrap();
    assert!(!alice.usage.served_outside_tier);
    // Charged: the ledger equals upstream's bill.
    let ledger: Money = events
        .iter()
        .map(|e| e.usage.cost)
        .fold(Money::ZERO, |a, b| a.checked_add(b).unwrap());
    assert_eq!(ledger, sim_total_usage(&tg).await);
    let flagged = tg
        .admin
        .events(EventFilter {
            outside_tier_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(flagged.len(), 1);

    // Counted in /metrics …
    let metrics = metrics_text(&tg).await;
    assert!(
        metrics
            .contains("orteam_policy_violations_total{member=\"carol\",model=\"openai/gpt-4o\"} 1"),
        "{metrics}"
    );
    // … shown on the dashboard as a violation …
    let snapshot: Value = tg
        .http
        .get(format!("{}/admin/v1/dashboard", tg.root_url()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recent = snapshot["recent"].as_array().expect("recent requests");
    let row = recent.iter().find(|r| r["member"] == "carol").unwrap();
    assert_eq!(row["served_outside_tier"], true, "{row}");
    // … and alerted.
    let cfg = AlertsConfig {
        webhooks: vec!["http://127.0.0.1:9/hook".into()],
        anomalies: None,
        ..AlertsConfig::default()
    };
    assert_eq!(enqueue_alerts(&tg.admin, &cfg).await.unwrap(), 1);
    let due = tg
        .admin
        .outbox_claim_due(10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let alert = due.iter().find(|a| a.kind == "policy_violation").unwrap();
    let payload: Value = serde_json::from_str(&alert.payload).unwrap();
    assert_eq!(payload["policy_violation"]["member_id"], "carol");
    assert_eq!(payload["policy_violation"]["served_model"], "openai/gpt-4o");
    // Enqueued once, however often the alerts run.
    assert_eq!(enqueue_alerts(&tg.admin, &cfg).await.unwrap(), 0);
}

async fn settled_events_n(tg: &TestGateway, n: usize) -> Vec<orteam_ledger::UsageEvent> {
    crate::routes::settled_events(tg, n).await
}

#[tokio::test]
async fn member_labels_on_metrics_are_configurable() {
    for (labels, present, absent) in [
        (MemberLabels::Team, "member=\"core\"", "member=\"alice\""),
        (MemberLabels::None, "member=\"\"", "member=\"alice\""),
    ] {
        let tg = TestGateway::builder(Backend::Sqlite)
            .budget(BudgetScope::Member, "alice", Window::Daily, "1.00")
            .configure(move |c| c.member_labels = labels)
            .start()
            .await;
        let resp = tg
            .chat(
                "alice",
                body("openai/gpt-4o-mini", "[[sim:tokens=3]]", Some(5)),
            )
            .await;
        assert_eq!(resp.status(), 200);
        tg.sync().await;
        let metrics = metrics_text(&tg).await;
        assert!(metrics.contains(present), "{labels:?}: {metrics}");
        assert!(!metrics.contains(absent), "{labels:?}: {metrics}");
        // Member budgets name members: not exported either.
        assert!(!metrics.contains("id=\"alice\""), "{labels:?}: {metrics}");
    }
}
