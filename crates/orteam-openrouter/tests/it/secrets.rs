//! The API key never shows in Debug, errors or tracing output.

use futures::StreamExt;
use orteam_openrouter::types::chat::{ChatRequest, Message};
use orteam_openrouter::types::keys::{CreateKeyRequest, ListKeysParams};
use orteam_openrouter::{Client, ClientError};
use orteam_sim::{Fault, FaultRule};
use secrecy::{ExposeSecret, SecretString};

use crate::common::{LogCapture, client_with, fast_policy, sim, status_fault};

fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} leaks a key: {text}");
        // The 64 hex characters alone must not leak either.
        assert!(
            !text.contains(&s[s.len() - 64..]),
            "{what} leaks key material: {text}"
        );
    }
}

#[tokio::test]
async fn keys_never_leak_into_debug_errors_or_logs() {
    let buf = LogCapture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buf.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = sim().await;
    let mgmt_key = sim.provisioning_key().to_owned();
    let (inf_key, _) = sim.create_key("leaky", None, None);
    let m = client_with(&sim, &mgmt_key);
    let inf = client_with(&sim, &inf_key);
    let unknown_key = "sk-or-v1-9999999999999999999999999999999999999999999999999999999999999999";
    let unknown = client_with(&sim, unknown_key);
    let created = m.create_key(&CreateKeyRequest::new("fresh")).await.unwrap();
    let created_secret = created.key.expose_secret().to_owned();
    let secrets = [
        mgmt_key.as_str(),
        inf_key.as_str(),
        unknown_key,
        created_secret.as_str(),
    ];

    assert_clean(
        "client Debug",
        &format!("{m:?} {inf:?} {unknown:?}"),
        &secrets,
    );
    assert_clean(
        "builder Debug",
        &format!(
            "{:?}",
            Client::builder().api_key(SecretString::from(mgmt_key.clone()))
        ),
        &secrets,
    );
    assert_clean("CreatedKey Debug", &format!("{created:?}"), &secrets);

    let mut errors: Vec<ClientError> = Vec::new();
    let chat = ChatRequest::new("openai/gpt-4o", vec![Message::user("hi [[sim:tokens=4]]")]);
    // 401 unknown key, 403 inference key on a management endpoint, 403 management key on chat.
    errors.push(unknown.current_key().await.unwrap_err());
    errors.push(unknown.chat(&chat).await.unwrap_err());
    errors.push(inf.list_keys(&ListKeysParams::default()).await.unwrap_err());
    errors.push(m.chat(&chat).await.unwrap_err());
    // 404.
    errors.push(m.get_key("0000").await.unwrap_err());
    // 429 and 5xx after retries.
    let fast = Client::builder()
        .base_url(sim.base_url())
        .api_key(SecretString::from(mgmt_key.clone()))
        .retry_policy(fast_policy(1))
        .build()
        .unwrap();
    sim.set_faults(vec![status_fault("GET", "/api/v1/credits", 429, Some("0"))]);
    errors.push(fast.credits().await.unwrap_err());
    sim.set_faults(vec![status_fault("GET", "/api/v1/credits", 500, None)]);
    errors.push(fast.credits().await.unwrap_err());
    // Stream errors.
    sim.set_faults(vec![
        FaultRule::always(Fault::StreamError {
            after_chunks: 1,
            code: 502,
            message: None,
        })
        .on("POST", "/api/v1/chat/completions")
        .times(1),
    ]);
    errors.push(
        inf.chat_stream(&chat)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err(),
    );
    sim.set_faults(vec![
        FaultRule::always(Fault::StreamCut { after_chunks: 1 })
            .on("POST", "/api/v1/chat/completions")
            .times(1),
    ]);
    let mut s = inf.chat_stream(&chat).await.unwrap();
    while let Some(item) = s.next().await {
        if let Err(e) = item {
            errors.push(e);
        }
    }
    assert_clean("ChatStream Debug", &format!("{s:?}"), &secrets);
    sim.clear_faults();
    // Transport error (nothing listening).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = Client::builder()
        .base_url(format!("http://127.0.0.1:{port}/api/v1"))
        .api_key(SecretString::from(mgmt_key.clone()))
        .retry_policy(fast_policy(0))
        .build()
        .unwrap();
    errors.push(dead.credits().await.unwrap_err());

    assert_eq!(errors.len(), 10);
    for e in &errors {
        tracing::error!(error = %e, debug = ?e, "call failed");
        let text = format!("{e} | {e:?} | {:?} | {:?}", e.message(), e.metadata());
        assert_clean("error", &text, &secrets);
    }

    // Successful calls log nothing secret either.
    m.credits().await.unwrap();
    inf.chat(&chat).await.unwrap();
    inf.chat_stream(&chat)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();

    let out = buf.text();
    assert!(
        out.contains("retrying OpenRouter request"),
        "tracing captured nothing useful"
    );
    assert_clean("tracing output", &out, &secrets);
}
