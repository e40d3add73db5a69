//! Guardrail CRUD, assignments, enforcement and the legacy MCP aliases.

use orteam_sim::SimConfig;
use serde_json::{Value, json};

use crate::{Ctx, m};

const GRACE: &str = "user_2vK8sQ3mGraceHopper0002";

async fn create(c: &Ctx, body: Value) -> String {
    let r = c.post("/guardrails", Some(&c.mgmt()), body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["data"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn guardrail_crud() {
    let c = Ctx::new().await;
    let mgmt = c.mgmt();
    let r = c
        .post(
            "/guardrails",
            Some(&mgmt),
            json!({"name": "interns", "description": "cheap only", "limit_usd": 5.25,
                   "reset_interval": "weekly", "allowed_models": ["openai/gpt-4.1", "openai/gpt-4o-mini"],
                   "allowed_providers": ["OpenAI"], "enforce_zdr": false}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let d = &r.json["data"];
    for f in [
        "id",
        "name",
        "description",
        "limit_usd",
        "reset_interval",
        "allowed_providers",
        "ignored_providers",
        "allowed_models",
        "ignored_models",
        "enforce_zdr",
        "created_at",
        "updated_at",
        "workspace_id",
    ] {
        assert!(d.get(f).is_some(), "missing {f}");
    }
    assert_eq!(r.money("/data/limit_usd"), m("5.25"));
    // Models are stored as canonical slugs.
    assert_eq!(
        d["allowed_models"],
        json!(["openai/gpt-4.1-2025-04-14", "openai/gpt-4o-mini-2024-07-18"])
    );
    let id = d["id"].as_str().unwrap().to_owned();
    create(&c, json!({"name": "second"})).await;
    let list = c.get("/guardrails", Some(&mgmt)).await;
    assert_eq!(list.json["total_count"], 2);
    assert_eq!(list.json["data"][0]["name"], "interns");
    let page = c.get("/guardrails?offset=1&limit=1", Some(&mgmt)).await;
    assert_eq!(page.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(page.json["data"][0]["name"], "second");
    assert_eq!(page.json["total_count"], 2);
    c.get("/guardrails?limit=0", Some(&mgmt))
        .await
        .assert_error(400);
    c.get("/guardrails?limit=101", Some(&mgmt))
        .await
        .assert_error(400);

    let p = c
        .patch(&format!("/guardrails/{id}"), Some(&mgmt), json!({"limit_usd": null, "allowed_models": ["openai/gpt-4o"], "ignored_providers": ["Azure"]}))
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.json["data"]["limit_usd"], Value::Null);
    assert_eq!(p.json["data"]["allowed_models"], json!(["openai/gpt-4o"]));
    assert_eq!(p.json["data"]["ignored_providers"], json!(["Azure"]));
    assert_eq!(p.json["data"]["name"], "interns");
    assert!(p.json["data"]["updated_at"].is_string());
    assert_eq!(
        c.get(&format!("/guardrails/{id}"), Some(&mgmt)).await.json["data"],
        p.json["data"]
    );

    let del = c.delete(&format!("/guardrails/{id}"), Some(&mgmt)).await;
    assert_eq!(del.json, json!({"deleted": true}));
    c.get(&format!("/guardrails/{id}"), Some(&mgmt))
        .await
        .assert_error(404);
    c.patch(
        &format!("/guardrails/{id}"),
        Some(&mgmt),
        json!({"name": "x"}),
    )
    .await
    .assert_error(404);

    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x", "limit_usd": -1}),
        json!({"name": "x", "reset_interval": "yearly"}),
        json!({"name": "x", "allowed_models": ["nope/nope"]}),
        json!({"name": "x", "allowed_providers": "OpenAI"}),
    ] {
        c.post("/guardrails", Some(&mgmt), body)
            .await
            .assert_error(400);
    }
}

#[tokio::test]
async fn assignments_list_and_remove() {
    let c = Ctx::new().await;
    let mgmt = c.mgmt();
    let g = create(&c, json!({"name": "g"})).await;
    let (_, h1) = c.sim.create_key("one", None, None);
    let (_, h2) = c.sim.create_key("two", None, None);
    let path = format!("/guardrails/{g}/assignments/keys");
    let a = c
        .post(&path, Some(&mgmt), json!({"key_hashes": [h1, h2]}))
        .await;
    assert_eq!(a.json, json!({"assigned_count": 2}), "{}", a.text);
    let again = c
        .post(&path, Some(&mgmt), json!({"key_hashes": [h1]}))
        .await;
    assert_eq!(again.json, json!({"assigned_count": 0}));
    c.post(&path, Some(&mgmt), json!({"key_hashes": ["unknown"]}))
        .await
        .assert_error(400);
    c.post(&path, Some(&mgmt), json!({"key_hashes": []}))
        .await
        .assert_error(400);

    let list = c.get(&path, Some(&mgmt)).await;
    assert_eq!(list.json["total_count"], 2);
    let row = &list.json["data"][0];
    for f in [
        "id",
        "guardrail_id",
        "key_hash",
        "key_name",
        "key_label",
        "assigned_by",
        "created_at",
    ] {
        assert!(row.get(f).is_some(), "missing {f}");
    }
    assert_eq!(row["key_name"], "one");
    assert!(row.get("api_key_name").is_none());
    let all = c.get("/guardrails/assignments/keys", Some(&mgmt)).await;
    assert_eq!(all.json["total_count"], 2);

    let rm = c
        .post(
            &format!("{path}/remove"),
            Some(&mgmt),
            json!({"key_hashes": [h1, "unknown"]}),
        )
        .await;
    assert_eq!(rm.json, json!({"unassigned_count": 1}));
    assert_eq!(c.get(&path, Some(&mgmt)).await.json["total_count"], 1);

    let mpath = format!("/guardrails/{g}/assignments/members");
    let am = c
        .post(&mpath, Some(&mgmt), json!({"member_user_ids": [GRACE]}))
        .await;
    assert_eq!(am.json, json!({"assigned_count": 1}));
    c.post(
        &mpath,
        Some(&mgmt),
        json!({"member_user_ids": ["user_nobody"]}),
    )
    .await
    .assert_error(400);
    let ml = c.get("/guardrails/assignments/members", Some(&mgmt)).await;
    assert_eq!(ml.json["total_count"], 1);
    assert_eq!(ml.json["data"][0]["user_id"], GRACE);
    assert!(
        ml.json["data"][0]["organization_id"]
            .as_str()
            .unwrap()
            .starts_with("org_")
    );
    let rm = c
        .post(
            &format!("{mpath}/remove"),
            Some(&mgmt),
            json!({"member_user_ids": [GRACE]}),
        )
        .await;
    assert_eq!(rm.json, json!({"unassigned_count": 1}));

    // A key has at most one guardrail: assigning another moves it.
    let g2 = create(&c, json!({"name": "g2"})).await;
    c.post(
        &format!("/guardrails/{g2}/assignments/keys"),
        Some(&mgmt),
        json!({"key_hashes": [h2]}),
    )
    .await;
    assert_eq!(c.get(&path, Some(&mgmt)).await.json["total_count"], 0);
    // Deleting the guardrail drops its assignments.
    c.delete(&format!("/guardrails/{g2}"), Some(&mgmt)).await;
    assert_eq!(
        c.get("/guardrails/assignments/keys", Some(&mgmt))
            .await
            .json["total_count"],
        0
    );
    c.get("/guardrails/nope/assignments/keys", Some(&mgmt))
        .await
        .assert_error(404);
}

#[tokio::test]
async fn guardrails_are_enforced() {
    let c = Ctx::new().await;
    let mgmt = c.mgmt();
    let (key, hash) = c.sim.create_key("k", None, None);
    let g = create(&c, json!({"name": "mini-only", "allowed_models": ["openai/gpt-4o-mini", "meta-llama/llama-3.1-8b-instruct"]})).await;
    // Unassigned: no effect.
    assert_eq!(c.chat(&key, "openai/gpt-4o", "hi").await.status, 200);
    c.post(
        &format!("/guardrails/{g}/assignments/keys"),
        Some(&mgmt),
        json!({"key_hashes": [hash]}),
    )
    .await;
    let blocked = c.chat(&key, "openai/gpt-4o", "hi").await;
    assert!(
        blocked.assert_error(403).starts_with("Request blocked"),
        "{}",
        blocked.text
    );
    assert_eq!(c.chat(&key, "openai/gpt-4o-mini", "hi").await.status, 200);
    // /models/user shows only what the key may use.
    let user_models = c.get("/models/user", Some(&key)).await;
    let ids: Vec<&str> = user_models.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["openai/gpt-4o-mini", "meta-llama/llama-3.1-8b-instruct"]
    );

    // Providers: route to an allowed one, or block.
    c.patch(
        &format!("/guardrails/{g}"),
        Some(&mgmt),
        json!({"allowed_providers": ["groq"]}),
    )
    .await;
    let r = c.chat(&key, "meta-llama/llama-3.1-8b-instruct", "hi").await;
    assert_eq!(r.json["provider"], "Groq", "{}", r.text);
    c.chat(&key, "openai/gpt-4o-mini", "hi")
        .await
        .assert_error(403);
    c.patch(
        &format!("/guardrails/{g}"),
        Some(&mgmt),
        json!({"allowed_providers": null, "ignored_providers": ["DeepInfra"], "enforce_zdr": true}),
    )
    .await;
    let r = c.chat(&key, "meta-llama/llama-3.1-8b-instruct", "hi").await;
    assert_eq!(
        r.json["provider"], "Groq",
        "Novita is not ZDR, DeepInfra ignored: {}",
        r.text
    );

    // Budget on the key.
    c.patch(&format!("/guardrails/{g}"), Some(&mgmt), json!({"ignored_providers": null, "enforce_zdr": null, "limit_usd": 0.00001, "reset_interval": "daily"})).await;
    let mut ok = 0;
    loop {
        let r = c
            .chat(&key, "openai/gpt-4o-mini", "hi [[sim:tokens=10]]")
            .await;
        if r.status != 200 {
            assert!(r.assert_error(403).contains("budget"), "{}", r.text);
            break;
        }
        ok += 1;
        assert!(ok < 10);
    }
    c.sim.clock().advance(chrono::TimeDelta::days(1));
    assert_eq!(c.chat(&key, "openai/gpt-4o-mini", "hi").await.status, 200);
}

#[tokio::test]
async fn member_guardrail_covers_member_keys() {
    let c = Ctx::new().await;
    let mgmt = c.mgmt();
    let r = c
        .post(
            "/keys",
            Some(&mgmt),
            json!({"name": "grace", "creator_user_id": GRACE}),
        )
        .await;
    let key = r.json["key"].as_str().unwrap().to_owned();
    let other = c.key("other");
    let g = create(&c, json!({"name": "claude-only", "allowed_models": ["anthropic/claude-haiku-4.5"], "limit_usd": "0.00002"})).await;
    c.post(
        &format!("/guardrails/{g}/assignments/members"),
        Some(&mgmt),
        json!({"member_user_ids": [GRACE]}),
    )
    .await;
    c.chat(&key, "openai/gpt-4o", "hi").await.assert_error(403);
    assert_eq!(c.chat(&other, "openai/gpt-4o", "hi").await.status, 200);
    assert_eq!(
        c.chat(&key, "anthropic/claude-haiku-4.5", "[[sim:tokens=5]]")
            .await
            .status,
        200
    );
    // Claude Haiku: 8 prompt × 0.000001 + 5 × 0.000005 = 0.000033 ≥ the member budget.
    let r = c
        .chat(&key, "anthropic/claude-haiku-4.5", "[[sim:tokens=5]]")
        .await;
    assert!(r.assert_error(403).contains("member budget"), "{}", r.text);
}

#[tokio::test]
async fn legacy_mcp_paths_are_opt_in() {
    let c = Ctx::new().await;
    let mgmt = c.mgmt();
    c.get("/guardrails/key-assignments", Some(&mgmt))
        .await
        .assert_error(404);

    let c = Ctx::with(SimConfig {
        legacy_mcp_paths: true,
        ..SimConfig::default()
    })
    .await;
    let mgmt = c.mgmt();
    let g = create(&c, json!({"name": "g"})).await;
    let (_, h) = c.sim.create_key("legacy", None, None);
    let a = c
        .post(
            &format!("/guardrails/{g}/keys/bulk-assign"),
            Some(&mgmt),
            json!({"api_key_hashes": [h]}),
        )
        .await;
    assert_eq!(a.json, json!({"assigned_count": 1}), "{}", a.text);
    let l = c.get("/guardrails/key-assignments", Some(&mgmt)).await;
    assert_eq!(l.json["data"][0]["api_key_name"], "legacy");
    assert_eq!(l.json["data"][0]["api_key_hash"], h.as_str());
    let u = c
        .post(
            &format!("/guardrails/{g}/keys/bulk-unassign"),
            Some(&mgmt),
            json!({"api_key_hashes": [h]}),
        )
        .await;
    assert_eq!(u.json, json!({"unassigned_count": 1}));
    let am = c
        .post(
            &format!("/guardrails/{g}/members/bulk-assign"),
            Some(&mgmt),
            json!({"user_ids": [GRACE]}),
        )
        .await;
    assert_eq!(am.json, json!({"assigned_count": 1}));
    let ml = c.get("/guardrails/member-assignments", Some(&mgmt)).await;
    assert_eq!(ml.json["data"][0]["member_email"], "grace@example.com");
    let um = c
        .post(
            &format!("/guardrails/{g}/members/bulk-unassign"),
            Some(&mgmt),
            json!({"user_ids": [GRACE]}),
        )
        .await;
    assert_eq!(um.json, json!({"unassigned_count": 1}));
    // Official paths still work alongside.
    assert_eq!(
        c.get("/guardrails/assignments/keys", Some(&mgmt))
            .await
            .status,
        200
    );
}
