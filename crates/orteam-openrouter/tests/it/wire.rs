//! Client edge cases the simulator does not model, against `wiremock`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use orteam_openrouter::types::chat::{ChatRequest, Message};
use orteam_openrouter::types::keys::{CreateKeyRequest, ListKeysParams, UpdateKeyRequest};
use orteam_openrouter::{Client, ErrorCategory, ErrorKind, Jitter, RetryEvent, RetryPolicy};

const KEY: &str = "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";

fn fast_policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        jitter: Jitter::None,
        max_retry_after: Duration::from_millis(50),
    }
}

fn client(server: &MockServer, max_retries: u32) -> Client {
    Client::builder()
        .base_url(format!("{}/api/v1", server.uri()))
        .api_key(SecretString::from(KEY))
        .retry_policy(fast_policy(max_retries))
        .build()
        .unwrap()
}

fn err_body(status: u16, msg: &str) -> serde_json::Value {
    json!({"error": {"code": status, "message": msg}})
}

const CREDITS: &str = r#"{"data":{"total_credits":100,"total_usage":1.25}}"#;
const KEY_OBJ: &str = r#"{"hash":"abc","name":"n","label":"sk-or-v1-abc...def","disabled":false,"limit":null,
"limit_remaining":null,"limit_reset":null,"include_byok_in_limit":false,"usage":0,"created_at":"2025-08-24T10:30:00Z"}"#;

#[tokio::test]
async fn status_sweep_retries_only_429_and_5xx() {
    for status in [
        400u16, 401, 402, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 524, 529,
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/credits"))
            .respond_with(ResponseTemplate::new(status).set_body_json(err_body(status, "nope")))
            .mount(&server)
            .await;
        let c = client(&server, 2);
        let e = c.credits().await.unwrap_err();
        let n = server.received_requests().await.unwrap().len();
        let retryable = status == 429 || status >= 500;
        assert_eq!(n, if retryable { 3 } else { 1 }, "status {status}");
        assert_eq!(
            e.retries(),
            if retryable { 2 } else { 0 },
            "status {status}"
        );
        assert_eq!(e.status(), Some(status));
        assert_eq!(e.is_retryable(), retryable);
        assert_eq!(e.message(), Some("nope"));
        assert_eq!(c.retry_count(), u64::from(e.retries()));
        if retryable {
            assert!(
                e.to_string()
                    .starts_with("request failed after 2 retries in "),
                "{e}"
            );
        }
    }
}

#[tokio::test]
async fn creates_retry_429_but_not_5xx() {
    for (status, expected) in [(500u16, 1usize), (502, 1), (503, 1), (429, 3), (400, 1)] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/keys"))
            .respond_with(ResponseTemplate::new(status).set_body_json(err_body(status, "x")))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/guardrails"))
            .respond_with(ResponseTemplate::new(status).set_body_json(err_body(status, "x")))
            .mount(&server)
            .await;
        let c = client(&server, 2);
        c.create_key(&CreateKeyRequest::new("k")).await.unwrap_err();
        c.create_guardrail(&orteam_openrouter::types::guardrails::CreateGuardrailRequest::new("g"))
            .await
            .unwrap_err();
        let reqs = server.received_requests().await.unwrap();
        let keys = reqs
            .iter()
            .filter(|r| r.url.path() == "/api/v1/keys")
            .count();
        let grs = reqs
            .iter()
            .filter(|r| r.url.path() == "/api/v1/guardrails")
            .count();
        assert_eq!((keys, grs), (expected, expected), "status {status}");
    }
}

#[tokio::test]
async fn writes_and_chat_retry_5xx() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/api/v1/keys/abc"))
        .respond_with(ResponseTemplate::new(502).set_body_json(err_body(502, "x")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(503).set_body_json(err_body(503, "x")))
        .mount(&server)
        .await;
    let c = client(&server, 1);
    let upd = UpdateKeyRequest {
        disabled: Some(true),
        ..Default::default()
    };
    assert_eq!(c.update_key("abc", &upd).await.unwrap_err().retries(), 1);
    let req = ChatRequest::new("openai/gpt-4o", vec![Message::user("hi")]);
    assert_eq!(c.chat(&req).await.unwrap_err().retries(), 1);
    assert_eq!(c.chat_stream(&req).await.unwrap_err().retries(), 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 2 + 2 + 2);
}

#[tokio::test]
async fn retry_after_http_date_and_cap() {
    let server = MockServer::start().await;
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    Mock::given(method("GET"))
        .and(path("/api/v1/credits"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", date.as_str())
                .set_body_json(err_body(429, "Rate limit exceeded")),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/credits"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "3600")
                .set_body_json(err_body(503, "busy")),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/credits"))
        .respond_with(ResponseTemplate::new(200).set_body_string(CREDITS))
        .mount(&server)
        .await;
    let events: Arc<Mutex<Vec<RetryEvent>>> = Arc::default();
    let sink = events.clone();
    let c = Client::builder()
        .base_url(format!("{}/api/v1", server.uri()))
        .api_key(SecretString::from(KEY))
        .retry_policy(RetryPolicy {
            max_retry_after: Duration::from_secs(2),
            ..fast_policy(3)
        })
        .on_retry(move |e| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let credits = c.credits().await.unwrap();
    assert_eq!(credits.total_usage.to_string(), "1.25");
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].status, Some(429));
    assert!(ev[0].from_retry_after);
    // An HTTP date has 1 s granularity: 2 s ahead means a wait in (0 s, 2 s].
    assert!(
        ev[0].delay > Duration::ZERO && ev[0].delay <= Duration::from_secs(2),
        "{:?}",
        ev[0].delay
    );
    // Retry-After: 3600 is capped at max_retry_after.
    assert_eq!(ev[1].status, Some(503));
    assert_eq!(ev[1].delay, Duration::from_secs(2));
}

#[tokio::test]
async fn retry_after_is_exposed_on_the_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/key"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "7")
                .set_body_json(err_body(429, "Rate limit exceeded")),
        )
        .mount(&server)
        .await;
    let e = client(&server, 0).current_key().await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(e.category(), ErrorCategory::RateLimited);
    assert!(e.is_rate_limited());
}

#[tokio::test]
async fn connect_failures_are_retried_and_counted() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let counter = Arc::new(AtomicU64::new(0));
    let c = Client::builder()
        .base_url(format!("http://127.0.0.1:{port}/api/v1"))
        .api_key(SecretString::from(KEY))
        .retry_policy(fast_policy(2))
        .retry_counter(counter.clone())
        .build()
        .unwrap();
    let e = c.credits().await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Transport { connect: true, .. }),
        "{e:?}"
    );
    assert_eq!(e.retries(), 2);
    // A create is retried too when the connection could not be made (nothing was sent).
    let e = c.create_key(&CreateKeyRequest::new("k")).await.unwrap_err();
    assert_eq!(e.retries(), 2);
    assert_eq!(counter.load(Ordering::Relaxed), 4);
    assert!(!format!("{e:?}").contains(KEY));
}

#[tokio::test]
async fn headers_auth_attribution_and_generation_id() {
    let server = MockServer::start().await;
    let chat = r#"{"id":"gen-1-x","model":"openai/gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],
      "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"cost":0.000001}}"#;
    Mock::given(method("POST"))
        .and(path("/api/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("http-referer", "https://orteam.dev"))
        .and(header("x-title", "orteam"))
        .and(header("user-agent", "orteam-test/1"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":false})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-generation-id", "gen-1-x")
                .set_body_raw(chat, "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = Client::builder()
        .base_url(format!("{}/api/v1", server.uri()))
        .api_key(SecretString::from(KEY))
        .referer("https://orteam.dev")
        .title("orteam")
        .user_agent("orteam-test/1")
        .build()
        .unwrap();
    let done = c
        .chat(&ChatRequest::new(
            "openai/gpt-4o",
            vec![Message::user("hi")],
        ))
        .await
        .unwrap();
    assert_eq!(done.generation_id.as_deref(), Some("gen-1-x"));
    assert_eq!(done.generation_id(), "gen-1-x");
    assert_eq!(done.response.text(), "ok");
    assert_eq!(&done.raw[..], chat.as_bytes());
}

#[tokio::test]
async fn stream_requires_event_stream_content_type() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(r#"{"id":"gen-x","choices":[]}"#, "application/json"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"error":{"code":402,"message":"Insufficient credits"}}"#,
            "application/json",
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-generation-id", "gen-hdr")
                .set_body_raw(
                    ": OPENROUTER PROCESSING\n\ndata: {\"id\":\"gen-hdr\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"gen-hdr\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2,\"cost\":0.5}}\n\ndata: [DONE]\n\n",
                    "text/event-stream; charset=utf-8",
                ),
        )
        .mount(&server)
        .await;
    let c = client(&server, 0);
    let req = ChatRequest::new("m/x", vec![Message::user("hi")]);
    let e = c.chat_stream(&req).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::NotEventStream { .. }),
        "{e:?}"
    );
    let e = c.chat_stream(&req).await.unwrap_err();
    assert_eq!(e.status(), Some(402));
    assert!(e.is_insufficient_credits());
    let mut s = c.chat_stream(&req).await.unwrap();
    assert_eq!(s.generation_id(), Some("gen-hdr"));
    let first = s.next().await.unwrap().unwrap();
    assert_eq!(first.content(), Some("a"));
    assert!(s.usage().is_none());
    let sum = s.collect().await.unwrap();
    assert_eq!(sum.usage.unwrap().cost.to_string(), "0.5");
    let reqs = server.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reqs[2].body).unwrap();
    assert_eq!(body["stream"], json!(true));
    assert_eq!(reqs[2].headers.get("accept").unwrap(), "text/event-stream");
}

#[tokio::test]
async fn stream_retries_429_before_it_starts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(429).set_body_json(err_body(429, "slow")))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "data: {\"id\":\"g\",\"choices\":[]}\n\ndata: [DONE]\n\n",
            "text/event-stream",
        ))
        .mount(&server)
        .await;
    let s = client(&server, 3)
        .chat_stream(&ChatRequest::new("m/x", vec![Message::user("hi")]))
        .await
        .unwrap();
    assert_eq!(s.retries(), 2);
    let sum = s.collect().await.unwrap();
    assert_eq!(sum.generation_id.as_deref(), Some("g"));
}

#[tokio::test]
async fn upstream_echo_of_the_key_is_scrubbed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/key"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"code": 401, "message": format!("User not found for key {KEY}"),
                      "metadata": {"raw": format!("Bearer {KEY}")}},
            "user_id": "user_1"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/credits"))
        .respond_with(
            ResponseTemplate::new(500).set_body_string(format!("<html>oops {KEY}</html>")),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/keys/abc"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(format!(r#"{{"data":{{"hash":"{KEY}"}}}}"#)),
        )
        .mount(&server)
        .await;
    let custom = "my-own-gateway-token-123456";
    let c = client(&server, 0);
    let errs = vec![
        c.current_key().await.unwrap_err(),
        c.credits().await.unwrap_err(),
        c.get_key("abc").await.unwrap_err(),
        c.with_api_key(SecretString::from(custom))
            .current_key()
            .await
            .unwrap_err(),
    ];
    for e in &errs {
        let all = format!("{e:?} {e} {:?}", e.metadata());
        assert!(!all.contains(KEY), "{all}");
        assert!(!all.contains(&KEY[9..]), "{all}");
    }
    assert!(errs[0].is_unauthorized());
    assert_eq!(errs[0].message(), Some("User not found for key [REDACTED]"));
    assert_eq!(
        errs[0].api().unwrap().body.as_ref().unwrap()["user_id"],
        json!("user_1")
    );
    assert!(matches!(errs[2].kind(), ErrorKind::Decode { .. }));
}

#[tokio::test]
async fn cache_ttl_none_disables_caching_and_query_is_part_of_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/credits"))
        .respond_with(ResponseTemplate::new(200).set_body_string(CREDITS))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/keys"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(format!(r#"{{"data":[{KEY_OBJ}]}}"#)),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/keys"))
        .and(query_param("offset", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"data":[]}"#))
        .with_priority(1)
        .mount(&server)
        .await;
    let uncached = Client::builder()
        .base_url(format!("{}/api/v1", server.uri()))
        .api_key(SecretString::from(KEY))
        .cache_ttl(None)
        .build()
        .unwrap();
    uncached.credits().await.unwrap();
    uncached.credits().await.unwrap();
    let cached = client(&server, 0);
    cached.credits().await.unwrap();
    cached.credits().await.unwrap();
    let p0 = ListKeysParams::default();
    let p100 = ListKeysParams {
        offset: Some(100),
        ..Default::default()
    };
    assert_eq!(cached.list_keys(&p0).await.unwrap().len(), 1);
    assert_eq!(cached.list_keys(&p100).await.unwrap().len(), 0);
    assert_eq!(cached.list_keys(&p0).await.unwrap().len(), 1);
    // Paging stops at a page with nothing new (the mock ignores offset=1).
    assert_eq!(cached.list_all_keys(None).await.unwrap().len(), 1);
    let reqs = server.received_requests().await.unwrap();
    let credits = reqs
        .iter()
        .filter(|r| r.url.path() == "/api/v1/credits")
        .count();
    let keys = reqs
        .iter()
        .filter(|r| r.url.path() == "/api/v1/keys")
        .count();
    assert_eq!(credits, 3);
    // `/keys`, `/keys?offset=100`, then `?offset=0` and `?offset=1` from list_all_keys.
    assert_eq!(keys, 4);
}

#[tokio::test]
async fn error_bodies_without_envelope() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/models"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/models/user"))
        .respond_with(ResponseTemplate::new(400).set_body_string("x".repeat(1000)))
        .mount(&server)
        .await;
    let c = client(&server, 0);
    let e = c.models(&Default::default()).await.unwrap_err();
    assert_eq!(e.message(), Some("Not Found"));
    assert!(e.is_not_found());
    let e = c.user_models().await.unwrap_err();
    assert_eq!(e.message().unwrap().chars().count(), 301);
    assert_eq!(e.category(), ErrorCategory::BadRequest);
}

#[tokio::test]
async fn tracing_output_never_contains_the_key() {
    let buf = crate::common::LogCapture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buf.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/credits"))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(err_body(503, &format!("echo {KEY}"))),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/key"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"data":{"label":"sk-or-v1-5ec...455"}}"#),
        )
        .mount(&server)
        .await;
    let c = client(&server, 2);
    let e = c.credits().await.unwrap_err();
    tracing::error!(error = %e, debug = ?e, "credits failed");
    c.current_key().await.unwrap();
    c.current_key().await.unwrap();
    tracing::info!(client = ?c, "client");
    let out = buf.text();
    assert!(out.contains("retrying OpenRouter request"), "{out}");
    assert!(!out.contains(KEY), "{out}");
    assert!(!out.contains(&KEY[9..]), "{out}");
}
