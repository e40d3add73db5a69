use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orteam_openrouter::types::chat::{ChatRequest, Message};
use orteam_openrouter::types::keys::CreateKeyRequest;
use orteam_openrouter::{Client, ErrorKind, RetryPolicy};
use secrecy::SecretString;

use crate::common::{inference, mgmt, sim, status_fault};

#[tokio::test]
async fn retry_after_one_second_is_honoured() {
    let sim = sim().await;
    sim.set_faults(vec![
        status_fault("GET", "/api/v1/credits", 429, Some("1")).times(1),
    ]);
    let hits = Arc::new(AtomicU64::new(0));
    let seen = hits.clone();
    // Default policy: Retry-After is honoured as sent (cap 60 s).
    let c = Client::builder()
        .base_url(sim.base_url())
        .api_key(SecretString::from(sim.provisioning_key()))
        .on_retry(move |e| {
            assert_eq!(e.status, Some(429));
            assert_eq!(e.delay, Duration::from_secs(1));
            seen.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    let t = Instant::now();
    c.credits().await.unwrap();
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(sim.request_count("GET", "/api/v1/credits"), 2);
    assert_eq!(c.retry_count(), 1);
    assert_eq!(hits.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn server_errors_are_retried_up_to_the_cap() {
    let sim = sim().await;
    sim.set_faults(vec![status_fault("GET", "/api/v1/keys", 503, None)]);
    let c = mgmt(&sim); // 3 retries
    let e = c.list_keys(&Default::default()).await.unwrap_err();
    assert_eq!(e.retries(), 3);
    assert_eq!(e.status(), Some(503));
    assert!(e.is_retryable());
    assert!(
        e.to_string()
            .starts_with("request failed after 3 retries in "),
        "{e}"
    );
    assert_eq!(sim.request_count("GET", "/api/v1/keys"), 4);
    assert_eq!(c.retry_count(), 3);

    // A transient 502 is absorbed.
    sim.set_faults(vec![status_fault("GET", "/api/v1/key", 502, None).times(2)]);
    c.current_key().await.unwrap();
    assert_eq!(sim.request_count("GET", "/api/v1/key"), 3);
}

#[tokio::test]
async fn bad_requests_are_never_retried() {
    let sim = sim().await;
    for status in [400u16, 401, 402, 403, 404, 422] {
        sim.set_faults(vec![status_fault("GET", "/api/v1/credits", status, None)]);
        let before = sim.request_count("GET", "/api/v1/credits");
        let e = mgmt(&sim).credits().await.unwrap_err();
        assert_eq!(e.status(), Some(status));
        assert_eq!(e.retries(), 0);
        assert!(!e.is_retryable());
        assert_eq!(
            sim.request_count("GET", "/api/v1/credits"),
            before + 1,
            "status {status}"
        );
    }
    sim.clear_faults();
    // A genuine 400 from the simulator: a key without a name.
    let before = sim.request_count("POST", "/api/v1/keys");
    let e = mgmt(&sim)
        .create_key(&CreateKeyRequest::new(""))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");
    assert_eq!(sim.request_count("POST", "/api/v1/keys"), before + 1);
}

#[tokio::test]
async fn creates_are_retried_on_429_only() {
    let sim = sim().await;
    let c = mgmt(&sim);
    sim.set_faults(vec![
        status_fault("POST", "/api/v1/keys", 500, None).times(1),
    ]);
    let e = c
        .create_key(&CreateKeyRequest::new("once"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(e.retries(), 0);
    assert_eq!(sim.request_count("POST", "/api/v1/keys"), 1);

    sim.set_faults(vec![
        status_fault("POST", "/api/v1/keys", 429, Some("0")).times(1),
    ]);
    let k = c.create_key(&CreateKeyRequest::new("twice")).await.unwrap();
    assert_eq!(k.data.name, "twice");
    assert_eq!(sim.request_count("POST", "/api/v1/keys"), 3);

    sim.set_faults(vec![
        status_fault("POST", "/api/v1/guardrails", 502, None).times(1),
    ]);
    let g = orteam_openrouter::types::guardrails::CreateGuardrailRequest::new("g");
    assert_eq!(c.create_guardrail(&g).await.unwrap_err().retries(), 0);
    assert_eq!(sim.request_count("POST", "/api/v1/guardrails"), 1);
}

#[tokio::test]
async fn completions_retry_before_the_body() {
    let sim = sim().await;
    let (c, _, _) = inference(&sim, "retry-chat");
    let r = ChatRequest::new("openai/gpt-4o", vec![Message::user("hi [[sim:tokens=2]]")]);
    sim.set_faults(vec![
        status_fault("POST", "/api/v1/chat/completions", 502, None).times(1),
    ]);
    let done = c.chat(&r).await.unwrap();
    assert_eq!(done.retries, 1);
    sim.set_faults(vec![
        status_fault("POST", "/api/v1/chat/completions", 429, Some("0")).times(2),
    ]);
    let s = c.chat_stream(&r).await.unwrap();
    assert_eq!(s.retries(), 2);
    assert!(s.collect().await.unwrap().usage.is_some());
    assert_eq!(sim.request_count("POST", "/api/v1/chat/completions"), 2 + 3);
}

#[tokio::test]
async fn no_retry_policy() {
    let sim = sim().await;
    sim.set_faults(vec![status_fault("GET", "/api/v1/credits", 503, None)]);
    let c = Client::builder()
        .base_url(sim.base_url())
        .api_key(SecretString::from(sim.provisioning_key()))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let e = c.credits().await.unwrap_err();
    assert_eq!(e.retries(), 0);
    assert!(matches!(e.kind(), ErrorKind::Api(_)));
    assert_eq!(sim.request_count("GET", "/api/v1/credits"), 1);
}
