//! /activity aggregation, filters and the "no today" rule; /generation access.

use chrono::TimeDelta;
use orteam_core::Money;
use serde_json::json;

use crate::{Ctx, utc};

#[tokio::test]
async fn activity_aggregates_completed_days_only() {
    let c = Ctx::frozen_at(utc(2026, 6, 10, 12, 0)).await;
    let mgmt = c.mgmt();
    let member = "user_2vK8sQ3mGraceHopper0002";
    let r = c
        .post(
            "/keys",
            Some(&mgmt),
            json!({"name": "grace", "creator_user_id": member}),
        )
        .await;
    let (k1, h1) = (
        r.json["key"].as_str().unwrap().to_owned(),
        r.json["data"]["hash"].as_str().unwrap().to_owned(),
    );
    let (k2, h2) = c.sim.create_key("other", None, None);
    let mut cost_4o = Money::ZERO;
    let mut cost_mini = Money::ZERO;
    let mut tokens_4o = (0u64, 0u64, 0u64);
    for (key, model, n) in [
        (&k1, "openai/gpt-4o", 2),
        (&k2, "openai/gpt-4o", 1),
        (&k2, "openai/gpt-4o-mini", 3),
    ] {
        for i in 0..n {
            let r = c
                .chat(key, model, &format!("q{i} [[sim:reasoning=1]]"))
                .await;
            assert_eq!(r.status, 200);
            let cost = r.money("/usage/cost");
            if model == "openai/gpt-4o" {
                cost_4o = cost_4o.plus(cost).unwrap();
                tokens_4o.0 += r.json["usage"]["prompt_tokens"].as_u64().unwrap();
                tokens_4o.1 += r.json["usage"]["completion_tokens"].as_u64().unwrap();
                tokens_4o.2 += 1;
            } else {
                cost_mini = cost_mini.plus(cost).unwrap();
            }
        }
    }
    // Today never shows.
    let today = c.get("/activity", Some(&mgmt)).await;
    assert_eq!(today.status, 200);
    assert_eq!(today.json["data"], json!([]));
    assert_eq!(
        c.get("/activity?date=2026-06-10", Some(&mgmt)).await.json["data"],
        json!([])
    );

    c.sim.clock().advance(TimeDelta::days(1));
    let all = c.get("/activity", Some(&mgmt)).await;
    let rows = all.json["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", all.text);
    for row in rows {
        for f in [
            "date",
            "model",
            "model_permaslug",
            "endpoint_id",
            "provider_name",
            "usage",
            "byok_usage_inference",
            "requests",
            "prompt_tokens",
            "completion_tokens",
            "reasoning_tokens",
        ] {
            assert!(row.get(f).is_some(), "missing {f}");
        }
        assert!(row.get("api_key_hash").is_none());
        assert_eq!(row["date"], "2026-06-10");
    }
    let i4o = rows
        .iter()
        .position(|r| r["model"] == "openai/gpt-4o")
        .unwrap();
    let row = &rows[i4o];
    assert_eq!(row["requests"], 3);
    assert_eq!(row["prompt_tokens"], tokens_4o.0);
    assert_eq!(row["completion_tokens"], tokens_4o.1);
    assert_eq!(row["reasoning_tokens"], tokens_4o.2);
    assert_eq!(row["provider_name"], "OpenAI");
    assert_eq!(row["model_permaslug"], "openai/gpt-4o");
    assert_eq!(all.money(&format!("/data/{i4o}/usage")), cost_4o);
    assert_eq!(all.money(&format!("/data/{}/usage", 1 - i4o)), cost_mini);

    // Filters.
    let by_key = c
        .get(&format!("/activity?api_key_hash={h1}"), Some(&mgmt))
        .await;
    let rows = by_key.json["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["requests"], 2);
    let by_key2 = c
        .get(&format!("/activity?api_key_hash={h2}"), Some(&mgmt))
        .await;
    assert_eq!(by_key2.json["data"].as_array().unwrap().len(), 2);
    let by_user = c
        .get(&format!("/activity?user_id={member}"), Some(&mgmt))
        .await;
    assert_eq!(by_user.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_user.json["data"][0]["requests"], 2);
    let by_date = c.get("/activity?date=2026-06-10", Some(&mgmt)).await;
    assert_eq!(by_date.json["data"].as_array().unwrap().len(), 2);
    let other_date = c.get("/activity?date=2026-06-09", Some(&mgmt)).await;
    assert_eq!(other_date.json["data"], json!([]));
    c.get("/activity?date=10-06-2026", Some(&mgmt))
        .await
        .assert_error(400);

    // 30 completed days, then it ages out.
    c.sim.clock().advance(TimeDelta::days(29));
    assert_eq!(
        c.get("/activity", Some(&mgmt)).await.json["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    c.sim.clock().advance(TimeDelta::days(1));
    assert_eq!(
        c.get("/activity", Some(&mgmt)).await.json["data"],
        json!([])
    );
}

#[tokio::test]
async fn generation_lookup_rules() {
    let c = Ctx::new().await;
    let k1 = c.key("a");
    let k2 = c.key("b");
    let r = c
        .http
        .post(format!("{}/chat/completions", c.sim.base_url()))
        .bearer_auth(&k1)
        .header("HTTP-Referer", "https://app.example")
        .header("X-Title", "Demo")
        .json(&json!({"model": "anthropic/claude-3.5-sonnet", "session_id": "s-1", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_owned();
    let g = c.get(&format!("/generation?id={id}"), Some(&k1)).await;
    assert_eq!(g.status, 200, "{}", g.text);
    let d = &g.json["data"];
    for f in [
        "id",
        "total_cost",
        "usage",
        "created_at",
        "model",
        "provider_name",
        "origin",
        "streamed",
        "cancelled",
        "latency",
        "generation_time",
        "finish_reason",
        "native_finish_reason",
        "tokens_prompt",
        "tokens_completion",
        "native_tokens_prompt",
        "native_tokens_completion",
        "native_tokens_reasoning",
        "native_tokens_cached",
        "external_user",
        "api_type",
        "is_byok",
        "upstream_inference_cost",
        "cache_discount",
        "num_media_prompt",
        "provider_responses",
    ] {
        assert!(d.get(f).is_some(), "missing {f}");
    }
    assert_eq!(d["provider_name"], "Anthropic");
    assert_eq!(d["origin"], "https://app.example");
    assert_eq!(d["http_referer"], "https://app.example");
    assert_eq!(d["session_id"], "s-1");
    assert_eq!(d["api_type"], "completions");
    assert_eq!(d["streamed"], false);
    assert_eq!(g.money("/data/usage"), g.money("/data/total_cost"));
    assert_eq!(
        c.get(&format!("/generation?id={id}"), Some(&c.mgmt()))
            .await
            .status,
        200
    );
    c.get(&format!("/generation?id={id}"), Some(&k2))
        .await
        .assert_error(404);
    c.get("/generation?id=gen-1-nope", Some(&k1))
        .await
        .assert_error(404);
    c.get("/generation", Some(&k1)).await.assert_error(400);
}

#[tokio::test]
async fn generation_store_is_bounded() {
    let c = Ctx::with(orteam_sim::SimConfig {
        max_generations: 2,
        ..Default::default()
    })
    .await;
    let k = c.key("a");
    let mut ids = vec![];
    for _ in 0..3 {
        ids.push(
            c.chat(&k, "openai/gpt-4o-mini", "hi").await.json["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    c.get(&format!("/generation?id={}", ids[0]), Some(&k))
        .await
        .assert_error(404);
    assert_eq!(
        c.get(&format!("/generation?id={}", ids[2]), Some(&k))
            .await
            .status,
        200
    );
}
