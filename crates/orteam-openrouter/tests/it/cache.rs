use std::time::Duration;

use orteam_openrouter::Client;
use orteam_openrouter::types::activity::ActivityParams;
use orteam_openrouter::types::keys::{CreateKeyRequest, ListKeysParams, UpdateKeyRequest};
use orteam_openrouter::types::models::ModelsParams;
use secrecy::SecretString;

use crate::common::{mgmt, sim};

#[tokio::test]
async fn gets_are_cached_and_key_writes_invalidate_keys_only() {
    let sim = sim().await;
    let (_, hash) = sim.create_key("cached", None, None);
    let c = mgmt(&sim);
    let count = |m: &str, p: &str| sim.request_count(m, p);
    let params = ListKeysParams::default();
    let key_path = format!("/api/v1/keys/{hash}");

    for _ in 0..3 {
        c.credits().await.unwrap();
        c.current_key().await.unwrap();
        c.list_keys(&params).await.unwrap();
        c.get_key(&hash).await.unwrap();
    }
    assert_eq!(count("GET", "/api/v1/credits"), 1);
    assert_eq!(count("GET", "/api/v1/key"), 1);
    assert_eq!(count("GET", "/api/v1/keys"), 1);
    assert_eq!(count("GET", &key_path), 1);

    // A different query is a different entry.
    c.list_keys(&ListKeysParams {
        offset: Some(100),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(count("GET", "/api/v1/keys"), 2);

    // A write to /keys* drops every /keys* entry, not /key or /credits.
    c.create_key(&CreateKeyRequest::new("new")).await.unwrap();
    let listed = c.list_keys(&params).await.unwrap();
    assert!(listed.iter().any(|k| k.name == "new"));
    c.get_key(&hash).await.unwrap();
    c.credits().await.unwrap();
    c.current_key().await.unwrap();
    assert_eq!(count("GET", "/api/v1/keys"), 3);
    assert_eq!(count("GET", &key_path), 2);
    assert_eq!(count("GET", "/api/v1/credits"), 1);
    assert_eq!(count("GET", "/api/v1/key"), 1);

    // PATCH and DELETE invalidate too, and the next read sees the change.
    c.update_key(
        &hash,
        &UpdateKeyRequest {
            name: Some("renamed".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(c.get_key(&hash).await.unwrap().name, "renamed");
    assert_eq!(count("GET", &key_path), 3);
    c.delete_key(&hash).await.unwrap();
    assert!(c.get_key(&hash).await.unwrap_err().is_not_found());
    assert_eq!(count("GET", &key_path), 4);
    // Errors are not cached.
    assert!(c.get_key(&hash).await.unwrap_err().is_not_found());
    assert_eq!(count("GET", &key_path), 5);
}

#[tokio::test]
async fn uncached_endpoints_and_disabled_cache() {
    let sim = sim().await;
    let c = mgmt(&sim);
    for _ in 0..2 {
        c.models(&ModelsParams::default()).await.unwrap();
        c.activity(&ActivityParams::default()).await.unwrap();
        c.list_guardrails(&Default::default()).await.unwrap();
        let _ = c.generation("gen-0-missing").await;
    }
    assert_eq!(sim.request_count("GET", "/api/v1/models"), 2);
    assert_eq!(sim.request_count("GET", "/api/v1/activity"), 2);
    assert_eq!(sim.request_count("GET", "/api/v1/guardrails"), 2);
    assert_eq!(sim.request_count("GET", "/api/v1/generation"), 2);

    let off = Client::builder()
        .base_url(sim.base_url())
        .api_key(SecretString::from(sim.provisioning_key()))
        .cache_ttl(None)
        .build()
        .unwrap();
    off.credits().await.unwrap();
    off.credits().await.unwrap();
    assert_eq!(sim.request_count("GET", "/api/v1/credits"), 2);
}

#[tokio::test]
async fn entries_expire_and_caches_are_per_key() {
    let sim = sim().await;
    let short = Client::builder()
        .base_url(sim.base_url())
        .api_key(SecretString::from(sim.provisioning_key()))
        .cache_ttl(Some(Duration::from_millis(1)))
        .build()
        .unwrap();
    short.credits().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    short.credits().await.unwrap();
    assert_eq!(sim.request_count("GET", "/api/v1/credits"), 2);

    // Another key's client must not see this key's cached /key.
    let m = mgmt(&sim);
    assert!(m.current_key().await.unwrap().is_management());
    let (secret, _) = sim.create_key("other", None, None);
    let other = m.with_api_key(SecretString::from(secret));
    assert!(!other.current_key().await.unwrap().is_management());
    // Clones share one cache.
    let clone = m.clone();
    clone.current_key().await.unwrap();
    assert_eq!(sim.request_count("GET", "/api/v1/key"), 2);
}
