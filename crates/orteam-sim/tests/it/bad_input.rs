//! Bad input always gets an OpenRouter-style JSON error, never a panic or plain text.

use serde_json::json;

use crate::Ctx;

#[tokio::test]
async fn chat_bad_inputs_are_400_json() {
    let c = Ctx::new().await;
    let key = c.key("k");
    for body in [
        "",
        "{",
        "not json",
        "[]",
        "{\"model\":\"openai/gpt-4o\"}",
        "{\"model\":\"openai/gpt-4o\",\"messages\":[]}",
        "{\"model\":\"openai/gpt-4o\",\"messages\":\"hi\"}",
        "{\"model\":\"openai/gpt-4o\",\"messages\":[{\"content\":\"hi\"}]}",
        "{\"model\":\"openai/gpt-4o\",\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}",
        "{\"model\":\"openai/gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":42}]}",
        "{\"model\":\"openai/gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":0}",
        "{\"model\":\"openai/gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":-5}",
        "{\"model\":\"openai/gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":1.5}",
        "{\"model\":\"openai/gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":\"10\"}",
        "{\"model\":\"openai/gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":\"yes\"}",
        "{\"model\":7,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
    ] {
        let r = c.post_raw("/chat/completions", Some(&key), body).await;
        r.assert_error(400);
        assert_eq!(
            r.json["error"]["metadata"]["error_type"], "invalid_request",
            "{body}"
        );
    }
    let r = c.chat(&key, "acme/unknown-model", "hi").await;
    assert_eq!(
        r.assert_error(400),
        "acme/unknown-model is not a valid model ID"
    );
    let r = c
        .post("/chat/completions", Some(&key), json!({"models": ["openai/gpt-4o", "x/y"], "messages": [{"role":"user","content":"hi"}]}))
        .await;
    assert!(r.assert_error(400).contains("x/y"));
    // Bad input billed nothing.
    assert_eq!(c.admin_credits().await.1, orteam_core::Money::ZERO);
}

#[tokio::test]
async fn context_length_is_enforced() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let long = "x".repeat(40_000); // 10,004 tokens > gemma's 8,192
    let r = c.chat(&key, "google/gemma-2-9b-it:free", &long).await;
    r.assert_error(400);
    assert_eq!(
        r.json["error"]["metadata"]["error_type"],
        "context_length_exceeded"
    );
    assert_eq!(c.chat(&key, "openai/gpt-4o", &long).await.status, 200);
}

#[tokio::test]
async fn routing_and_body_errors_are_json() {
    let c = Ctx::new().await;
    let mgmt = c.mgmt();
    c.get("/nope", None).await.assert_error(404);
    c.get("/__sim/nope", None).await.assert_error(404);
    let r = c.get("/chat/completions", Some(&mgmt)).await;
    r.assert_error(405);
    c.delete("/credits", Some(&mgmt)).await.assert_error(405);
    c.post_raw("/keys", Some(&mgmt), "{oops")
        .await
        .assert_error(400);
    c.post_raw("/guardrails", Some(&mgmt), "")
        .await
        .assert_error(400);
    c.get("/guardrails?offset=abc", Some(&mgmt))
        .await
        .assert_error(400);
    let huge = "x".repeat(3 * 1024 * 1024);
    let r = c
        .http
        .post(format!("{}/chat/completions", c.sim.base_url()))
        .bearer_auth(c.key("k"))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 413);
    c.post(
        "/__sim/clock",
        None,
        json!({"offset_seconds": 1, "advance_seconds": 2}),
    )
    .await
    .assert_error(400);
    c.post(
        "/__sim/faults",
        None,
        json!({"rules": [{"fault": {"kind": "meteor"}}]}),
    )
    .await
    .assert_error(400);
    c.post("/__sim/credits", None, json!({"add": "-1"}))
        .await
        .assert_error(400);
}
