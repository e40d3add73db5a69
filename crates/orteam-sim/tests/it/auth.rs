use chrono::TimeDelta;
use serde_json::json;

use crate::{Ctx, utc};

#[tokio::test]
async fn missing_and_unknown_keys_are_401() {
    let c = Ctx::new().await;
    for path in [
        "/key",
        "/keys",
        "/credits",
        "/activity",
        "/models/user",
        "/generation?id=x",
    ] {
        c.get(path, None).await.assert_error(401);
        let r = c
            .get(
                path,
                Some("sk-or-v1-0000000000000000000000000000000000000000000000000000000000000001"),
            )
            .await;
        assert_eq!(r.assert_error(401), "User not found.", "{path}");
    }
    let chat = c
        .post(
            "/chat/completions",
            None,
            json!({"model": "openai/gpt-4o", "messages": [{"role":"user","content":"hi"}]}),
        )
        .await;
    chat.assert_error(401);
    let chat = c.chat("sk-or-v1-nope", "openai/gpt-4o", "hi").await;
    assert_eq!(chat.assert_error(401), "User not found.");
}

#[tokio::test]
async fn disabled_and_expired_keys_are_401() {
    let c = Ctx::frozen_at(utc(2026, 5, 5, 12, 0)).await;
    let mgmt = c.mgmt();
    let (secret, hash) = c.sim.create_key("d", None, None);
    assert_eq!(
        c.chat(&secret, "openai/gpt-4o-mini", "hi").await.status,
        200
    );
    c.patch(
        &format!("/keys/{hash}"),
        Some(&mgmt),
        json!({"disabled": true}),
    )
    .await;
    c.chat(&secret, "openai/gpt-4o-mini", "hi")
        .await
        .assert_error(401);
    c.get("/key", Some(&secret)).await.assert_error(401);

    let r = c
        .post(
            "/keys",
            Some(&mgmt),
            json!({"name": "e", "expires_at": "2026-05-05T13:00:00Z"}),
        )
        .await;
    let secret = r.json["key"].as_str().unwrap().to_owned();
    assert_eq!(
        c.chat(&secret, "openai/gpt-4o-mini", "hi").await.status,
        200
    );
    c.sim.clock().advance(TimeDelta::hours(2));
    let msg = c
        .chat(&secret, "openai/gpt-4o-mini", "hi")
        .await
        .assert_error(401)
        .to_owned();
    assert!(msg.contains("expired"), "{msg}");
}

#[tokio::test]
async fn management_key_cannot_do_inference() {
    let c = Ctx::new().await;
    let r = c.chat(&c.mgmt(), "openai/gpt-4o", "hi").await;
    let msg = r.assert_error(403);
    assert!(
        msg.contains("Management keys cannot be used for inference"),
        "{msg}"
    );
}

#[tokio::test]
async fn inference_key_on_management_endpoints_is_403() {
    let c = Ctx::new().await;
    let k = c.key("k");
    let gid = c
        .post("/guardrails", Some(&c.mgmt()), json!({"name": "g"}))
        .await
        .json["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        "/keys".to_owned(),
        "/keys/abc".to_owned(),
        "/credits".to_owned(),
        "/activity".to_owned(),
        "/guardrails".to_owned(),
        format!("/guardrails/{gid}"),
        "/guardrails/assignments/keys".to_owned(),
        "/organization/members".to_owned(),
    ] {
        let r = c.get(&path, Some(&k)).await;
        assert_eq!(
            r.assert_error(403),
            "Only management keys can perform this operation",
            "{path}"
        );
    }
    c.post("/keys", Some(&k), json!({"name": "x"}))
        .await
        .assert_error(403);
}

#[tokio::test]
async fn public_model_listings_need_no_auth() {
    let c = Ctx::new().await;
    assert_eq!(c.get("/models", None).await.status, 200);
    assert_eq!(c.get("/endpoints/zdr", None).await.status, 200);
    assert_eq!(
        c.get("/models/openai/gpt-4o/endpoints", None).await.status,
        200
    );
}
