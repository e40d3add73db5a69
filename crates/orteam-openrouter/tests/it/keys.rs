use chrono::{Duration as TimeDelta, Timelike, Utc};
use orteam_core::{Money, Window};
use orteam_openrouter::Patch;
use orteam_openrouter::types::keys::{CreateKeyRequest, ListKeysParams, UpdateKeyRequest};
use secrecy::ExposeSecret;

use crate::common::{inference, mgmt, sim};

#[tokio::test]
async fn key_crud_round_trip() {
    let sim = sim().await;
    let c = mgmt(&sim);
    let expires = (Utc::now() + TimeDelta::days(30))
        .with_nanosecond(0)
        .unwrap();
    let created = c
        .create_key(
            &CreateKeyRequest::new("alice")
                .limit(Money::parse("5.25").unwrap())
                .limit_reset(Window::Daily)
                .expires_at(expires),
        )
        .await
        .unwrap();
    assert!(created.key.expose_secret().starts_with("sk-or-v1-"));
    assert!(!format!("{created:?}").contains(created.key.expose_secret()));
    let k = created.data;
    assert_eq!(k.name, "alice");
    assert_eq!(k.hash.len(), 64);
    assert_eq!(k.limit, Some(Money::parse("5.25").unwrap()));
    assert_eq!(k.limit_remaining, Some(Money::parse("5.25").unwrap()));
    assert_eq!(k.limit_reset, Some(Window::Daily));
    assert_eq!(k.expires_at, Some(expires));
    assert!(!k.disabled);

    let got = c.get_key(&k.hash).await.unwrap();
    assert_eq!(got.hash, k.hash);
    assert_eq!(got.label, k.label);

    let listed = c.list_keys(&ListKeysParams::default()).await.unwrap();
    assert!(listed.iter().any(|x| x.hash == k.hash));

    let upd = c
        .update_key(
            &k.hash,
            &UpdateKeyRequest {
                name: Some("alice-2".into()),
                disabled: Some(true),
                limit: Patch::Clear,
                limit_reset: Patch::Clear,
                include_byok_in_limit: Some(true),
                expires_at: Patch::Clear,
                workspace_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(upd.name, "alice-2");
    assert!(upd.disabled);
    assert_eq!(upd.limit, None);
    assert_eq!(upd.limit_remaining, None);
    assert_eq!(upd.limit_reset, None);
    assert!(upd.include_byok_in_limit);
    assert_eq!(upd.expires_at, None);
    assert!(upd.updated_at.is_some());

    let upd = c
        .update_key(
            &k.hash,
            &UpdateKeyRequest {
                limit: Patch::Set(Money::parse("0.000000001").unwrap()),
                limit_reset: Patch::Set(Window::Monthly),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(upd.limit, Some(Money::parse("0.000000001").unwrap()));
    assert_eq!(upd.limit_reset, Some(Window::Monthly));
    assert_eq!(upd.name, "alice-2");

    // Disabled keys are listed by default and filtered with include_disabled=false.
    let all = c.list_keys(&ListKeysParams::default()).await.unwrap();
    assert!(all.iter().any(|x| x.hash == k.hash));
    let enabled = c
        .list_keys(&ListKeysParams {
            include_disabled: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!enabled.iter().any(|x| x.hash == k.hash));

    assert!(c.delete_key(&k.hash).await.unwrap().deleted);
    let e = c.get_key(&k.hash).await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(e.retries(), 0);
    let e = c.delete_key(&k.hash).await.unwrap_err();
    assert!(e.is_not_found());
}

#[tokio::test]
async fn list_all_keys_pages_through_everything() {
    let sim = sim().await;
    for i in 0..230 {
        sim.create_key(&format!("k{i}"), None, None);
    }
    let c = mgmt(&sim);
    let first = c.list_keys(&ListKeysParams::default()).await.unwrap();
    assert_eq!(first.len(), 100);
    let all = c.list_all_keys(None).await.unwrap();
    assert_eq!(all.len(), 230);
    let mut hashes: Vec<_> = all.iter().map(|k| k.hash.clone()).collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), 230);
    // Three pages with keys, then an empty one.
    assert_eq!(sim.request_count("GET", "/api/v1/keys"), 5);
}

#[tokio::test]
async fn current_key_for_both_key_types() {
    let sim = sim().await;
    let m = mgmt(&sim).current_key().await.unwrap();
    assert!(m.is_management());
    assert!(m.is_management_key && m.is_provisioning_key);
    let (secret, _) = sim.create_key("bob", Some(Money::from_cents(300)), Some(Window::Weekly));
    let c = crate::common::client_with(&sim, &secret);
    let k = c.current_key().await.unwrap();
    assert!(!k.is_management());
    assert_eq!(k.limit, Some(Money::from_cents(300)));
    assert_eq!(k.limit_reset, Some(Window::Weekly));
    assert_eq!(k.usage, Money::ZERO);
    assert!(k.label.starts_with("sk-or-v1-"));
    assert!(!k.label.contains(&secret[9..]));
}

#[tokio::test]
async fn inference_key_cannot_manage() {
    let sim = sim().await;
    let (c, _, _) = inference(&sim, "carol");
    let e = c.list_keys(&ListKeysParams::default()).await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert!(e.is_management_key_required(), "{e:?}");
    assert_eq!(e.retries(), 0);
    assert!(c.credits().await.unwrap_err().is_management_key_required());
}

#[tokio::test]
async fn unknown_key_is_unauthorized() {
    let sim = sim().await;
    let c = crate::common::client_with(
        &sim,
        "sk-or-v1-1111111111111111111111111111111111111111111111111111111111111111",
    );
    let e = c.current_key().await.unwrap_err();
    assert!(e.is_unauthorized(), "{e:?}");
    assert_eq!(sim.request_count("GET", "/api/v1/key"), 1);
}
