use serde_json::json;

use crate::{Ctx, m};

const KEY_FIELDS: &[&str] = &[
    "hash",
    "name",
    "label",
    "disabled",
    "limit",
    "limit_remaining",
    "limit_reset",
    "include_byok_in_limit",
    "usage",
    "usage_daily",
    "usage_weekly",
    "usage_monthly",
    "byok_usage",
    "byok_usage_daily",
    "byok_usage_weekly",
    "byok_usage_monthly",
    "created_at",
    "updated_at",
    "expires_at",
    "creator_user_id",
    "workspace_id",
];

#[tokio::test]
async fn key_crud_and_secret_shown_once() {
    let c = Ctx::new().await;
    let mgmt = c.mgmt();
    let r = c
        .post(
            "/keys",
            Some(&mgmt),
            json!({"name": "alice", "limit": 12.5, "limit_reset": "monthly",
                   "creator_user_id": "user_2vK8sQ3mAdaLovelace0001",
                   "expires_at": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.json["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk-or-v1-"));
    let hexpart = &secret["sk-or-v1-".len()..];
    assert_eq!(hexpart.len(), 64);
    assert!(hexpart.chars().all(|c| c.is_ascii_hexdigit()));
    let d = &r.json["data"];
    for f in KEY_FIELDS {
        assert!(d.get(*f).is_some(), "missing {f} in {d}");
    }
    let hash = d["hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 64);
    assert_eq!(d["name"], "alice");
    assert_eq!(r.money("/data/limit"), m("12.5"));
    assert_eq!(r.money("/data/limit_remaining"), m("12.5"));
    assert_eq!(d["limit_reset"], "monthly");
    assert_eq!(d["disabled"], false);
    assert_eq!(d["updated_at"], serde_json::Value::Null);
    assert_eq!(d["expires_at"], "2999-01-01T00:00:00.000Z");
    assert_eq!(d["creator_user_id"], "user_2vK8sQ3mAdaLovelace0001");
    let label = d["label"].as_str().unwrap();
    assert_eq!(
        label,
        format!("sk-or-v1-{}...{}", &hexpart[..3], &hexpart[60..])
    );
    assert!(!r.text.contains(&hexpart[..20]) || r.text.contains("\"key\""));

    // The secret is never shown again.
    let got = c.get(&format!("/keys/{hash}"), Some(&mgmt)).await;
    assert_eq!(got.status, 200);
    assert!(got.json.get("key").is_none());
    assert!(!got.text.contains(&secret));
    let list = c.get("/keys", Some(&mgmt)).await;
    assert!(!list.text.contains(&secret));
    assert_eq!(list.json["data"][0]["hash"], hash.as_str());

    // The key works for inference.
    let me = c.get("/key", Some(&secret)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json["data"]["is_management_key"], false);
    assert_eq!(me.json["data"]["is_provisioning_key"], false);
    assert_eq!(me.json["data"]["label"], label);

    // PATCH: only given fields change, null clears, updated_at is set.
    let p = c
        .patch(
            &format!("/keys/{hash}"),
            Some(&mgmt),
            json!({"name": "alice2", "limit": null, "disabled": true}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.json["data"]["name"], "alice2");
    assert_eq!(p.json["data"]["limit"], serde_json::Value::Null);
    assert_eq!(p.json["data"]["limit_remaining"], serde_json::Value::Null);
    assert_eq!(p.json["data"]["limit_reset"], "monthly");
    assert_eq!(p.json["data"]["disabled"], true);
    assert!(p.json["data"]["updated_at"].is_string());
    let p = c
        .patch(
            &format!("/keys/{hash}"),
            Some(&mgmt),
            json!({"limit_reset": null, "expires_at": null}),
        )
        .await;
    assert_eq!(p.json["data"]["limit_reset"], serde_json::Value::Null);
    assert_eq!(p.json["data"]["expires_at"], serde_json::Value::Null);
    assert_eq!(p.json["data"]["name"], "alice2");

    // DELETE
    let del = c.delete(&format!("/keys/{hash}"), Some(&mgmt)).await;
    assert_eq!(del.status, 200);
    assert_eq!(del.json, json!({"deleted": true}));
    c.get(&format!("/keys/{hash}"), Some(&mgmt))
        .await
        .assert_error(404);
    c.delete(&format!("/keys/{hash}"), Some(&mgmt))
        .await
        .assert_error(404);
    c.patch(&format!("/keys/{hash}"), Some(&mgmt), json!({"name": "x"}))
        .await
        .assert_error(404);
    let gone = c.get("/key", Some(&secret)).await;
    assert_eq!(gone.assert_error(401), "User not found.");
}

#[tokio::test]
async fn list_pages_newest_first_and_filters_disabled() {
    let c = Ctx::new().await;
    let mgmt = c.mgmt();
    let mut hashes = Vec::new();
    for i in 0..105 {
        hashes.push(c.sim.create_key(&format!("k{i}"), None, None).1);
    }
    let p1 = c.get("/keys", Some(&mgmt)).await;
    let d1 = p1.json["data"].as_array().unwrap();
    assert_eq!(d1.len(), 100);
    assert_eq!(d1[0]["name"], "k104");
    assert!(p1.json.get("total_count").is_none());
    let p2 = c.get("/keys?offset=100", Some(&mgmt)).await;
    let d2 = p2.json["data"].as_array().unwrap();
    assert_eq!(d2.len(), 5);
    assert_eq!(d2[4]["name"], "k0");

    c.patch(
        &format!("/keys/{}", hashes[104]),
        Some(&mgmt),
        json!({"disabled": true}),
    )
    .await;
    let with = c.get("/keys", Some(&mgmt)).await;
    assert_eq!(with.json["data"][0]["name"], "k104");
    let without = c.get("/keys?include_disabled=false", Some(&mgmt)).await;
    assert_eq!(without.json["data"][0]["name"], "k103");
    c.get("/keys?include_disabled=maybe", Some(&mgmt))
        .await
        .assert_error(400);
    c.get("/keys?offset=-1", Some(&mgmt))
        .await
        .assert_error(400);
}

#[tokio::test]
async fn create_validation_errors_are_400() {
    let c = Ctx::new().await;
    let mgmt = c.mgmt();
    for (body, needle) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": "a", "limit": -1}), "limit"),
        (json!({"name": "a", "limit": "lots"}), "limit"),
        (json!({"name": "a", "limit_reset": "hourly"}), "limit_reset"),
        (
            json!({"name": "a", "include_byok_in_limit": "yes"}),
            "include_byok_in_limit",
        ),
        (
            json!({"name": "a", "expires_at": "2999-01-01T00:00:00+02:00"}),
            "UTC",
        ),
        (json!({"name": "a", "expires_at": "tomorrow"}), "expires_at"),
        (
            json!({"name": "a", "expires_at": "2001-01-01T00:00:00Z"}),
            "future",
        ),
        (json!(["name"]), "Invalid request"),
    ] {
        let r = c.post("/keys", Some(&mgmt), body.clone()).await;
        let msg = r.assert_error(400);
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    let ok = c
        .post(
            "/keys",
            Some(&mgmt),
            json!({"name": "a", "expires_at": "2999-01-01T00:00:00+00:00", "limit": "0.000000001"}),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(ok.money("/data/limit"), m("0.000000001"));
}

#[tokio::test]
async fn credits_and_current_key_for_management() {
    let c = Ctx::new().await;
    let (credits, usage) = c.admin_credits().await;
    assert_eq!(credits, m("100"));
    assert_eq!(usage, m("0"));
    let me = c.get("/key", Some(&c.mgmt())).await;
    assert_eq!(me.json["data"]["is_management_key"], true);
    assert_eq!(me.json["data"]["is_provisioning_key"], true);
    assert_eq!(me.json["data"]["is_free_tier"], false);
    let alias = c.get("/auth/key", Some(&c.mgmt())).await;
    assert_eq!(alias.status, 200);
    assert!(me.json["data"]["rate_limit"].is_object());
}
