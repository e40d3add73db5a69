//! Bad input gets an OpenAI-style 4xx, never a panic or a 500, and nothing is charged.

use orteam_test_support::{Backend, TestGateway};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn bad_requests_are_refused_and_cost_nothing() {
    let tg = TestGateway::builder(Backend::Sqlite)
        .configure(|c| c.max_body_bytes = 4096)
        .start()
        .await;
    let url = format!("{}/chat/completions", tg.base_url);
    let key = tg.key("alice").to_owned();
    let send = |body: Vec<u8>, ct: Option<&'static str>| {
        let mut r = tg.http.post(&url).bearer_auth(&key).body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    let json_ct = Some("application/json");
    let big = json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x".repeat(8000)}]});
    // (what, body, content type, status, error code)
    type Case = (
        &'static str,
        Vec<u8>,
        Option<&'static str>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        ("malformed JSON", b"{not json".to_vec(), json_ct, 400, "invalid_request"),
        ("not an object", b"[1,2]".to_vec(), json_ct, 400, "invalid_request"),
        ("missing model", br#"{"messages":[{"role":"user","content":"hi"}]}"#.to_vec(), json_ct, 400, "invalid_request"),
        ("missing messages", br#"{"model":"openai/gpt-4o-mini"}"#.to_vec(), json_ct, 400, "invalid_request"),
        ("unknown model", br#"{"model":"nope/nothing","messages":[{"role":"user","content":"hi"}]}"#.to_vec(), json_ct, 400, "model_not_found"),
        ("negative max_tokens", br#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":-5}"#.to_vec(), json_ct, 400, "invalid_request"),
        ("string max_tokens", br#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":"ten"}"#.to_vec(), json_ct, 400, "invalid_request"),
        ("wrong content type", br#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#.to_vec(), Some("text/plain"), 415, "unsupported_media_type"),
        ("body too large", serde_json::to_vec(&big).unwrap(), json_ct, 413, "payload_too_large"),
    ];
    for (what, body, ct, status, code) in cases {
        let resp = send(body, ct).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{what}");
        let v: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        assert_eq!(v["error"]["code"], code, "{what}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        assert!(v["error"]["type"].is_string(), "{what}");
    }
    // Wrong method and unknown routes too.
    let resp = tg.http.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let resp = tg
        .http
        .get(format!("{}/nothing", tg.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_object());
    // Nothing reached upstream, nothing was charged, nothing is held.
    assert_eq!(tg.sim.request_count("POST", "/api/v1/chat/completions"), 0);
    assert!(all_events(&tg).await.is_empty());
    for s in tg.gateway().ledger.budget_status("alice").await.unwrap() {
        assert!(s.held.is_zero());
    }
}

#[tokio::test]
async fn keys_are_checked_and_revocation_is_immediate() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    let url = format!("{}/chat/completions", tg.base_url);
    let b = body("openai/gpt-4o-mini", "", Some(5));
    let resp = tg.http.post(&url).json(&b).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_api_key"
    );
    let resp = tg
        .http
        .post(&url)
        .bearer_auth("sk-or-v1-not-ours")
        .json(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Alice's key with its last character changed (to one it is not already).
    let real = tg.key("alice");
    let swap = if real.ends_with('x') { 'y' } else { 'x' };
    let forged = format!("{}{swap}", &real[..real.len() - 1]);
    let resp = tg
        .http
        .post(&url)
        .bearer_auth(&forged)
        .json(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(tg.chat("alice", b.clone()).await.status(), 200);

    // Revoke through the admin API: the key dies at once.
    let admin = format!("{}/admin/v1/members/alice/revoke", tg.root_url());
    let resp = tg
        .http
        .post(&admin)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("admin token"));
    let resp = tg
        .http
        .post(&admin)
        .bearer_auth(orteam_test_support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = tg.chat("alice", b.clone()).await;
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("revoked") || msg.contains("removed"), "{msg}");
    // A revocation made by another process (an admin ledger, like the CLI) arrives within
    // a second.
    tg.admin.remove_member("bob").await.unwrap();
    let mut refused = false;
    for _ in 0..40 {
        if tg.chat("bob", b.clone()).await.status() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(refused, "bob's key still works 2 s after removal");
}
