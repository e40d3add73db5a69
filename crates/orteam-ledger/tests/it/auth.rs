//! Virtual keys and upstream secrets.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use orteam_ledger::{AuthError, LedgerError, LedgerOptions, Role};
use secrecy::{ExposeSecret, SecretString};

use crate::support::*;

async fn keys_hash_only_and_states(b: Backend) {
    let db = TestDb::new(b).await;
    let ledger = db.open(serving()).await;
    seed(&ledger, &[("alice", "core"), ("bob", "core")]).await;
    let issued = ledger
        .create_virtual_key("alice", "laptop", None)
        .await
        .unwrap();
    let secret = issued.secret.expose_secret().to_owned();
    assert!(
        secret.starts_with("ot-") && secret.len() == 55,
        "{}",
        secret.len()
    );
    assert!(secret[3..15] == issued.key.id);
    // Only the hash is stored.
    let rows = db.raw("SELECT * FROM virtual_keys").await;
    assert_eq!(rows.len(), 1);
    for col in rows[0].iter().flatten() {
        assert!(
            !col.contains(&secret[15..]),
            "secret part stored in the clear"
        );
    }
    assert!(
        !format!("{issued:?}").contains(&secret[15..]),
        "secret in Debug"
    );

    let ctx = ledger.authenticate(&issued.secret).unwrap();
    assert_eq!(ctx.member_id, "alice");
    assert_eq!(ctx.team_id, "core");
    assert_eq!(ctx.org_id, "acme");
    assert_eq!(ctx.tier.id, "standard");
    assert_eq!(ctx.key_id, issued.key.id);

    // Same public id, wrong secret part.
    let forged = format!("{}{}", &secret[..15], "A".repeat(40));
    assert_eq!(
        ledger
            .authenticate(&SecretString::from(forged))
            .unwrap_err(),
        AuthError::Invalid
    );
    assert_eq!(
        ledger
            .authenticate(&SecretString::from("ot-nope".to_owned()))
            .unwrap_err(),
        AuthError::Malformed
    );
    let unknown = format!("ot-{}", "B".repeat(52));
    assert_eq!(
        ledger
            .authenticate(&SecretString::from(unknown))
            .unwrap_err(),
        AuthError::Invalid
    );

    ledger
        .set_virtual_key_disabled(&issued.key.id, true)
        .await
        .unwrap();
    assert_eq!(
        ledger.authenticate(&issued.secret).unwrap_err(),
        AuthError::Disabled
    );
    ledger
        .set_virtual_key_disabled(&issued.key.id, false)
        .await
        .unwrap();
    ledger
        .set_virtual_key_expiry(
            &issued.key.id,
            Some(chrono::Utc::now() - TimeDelta::seconds(1)),
        )
        .await
        .unwrap();
    assert_eq!(
        ledger.authenticate(&issued.secret).unwrap_err(),
        AuthError::Expired
    );
    ledger
        .set_virtual_key_expiry(&issued.key.id, None)
        .await
        .unwrap();
    assert!(ledger.authenticate(&issued.secret).is_ok());

    // Rotation: the new key works, the old one is revoked and named as replaced.
    let rotated = ledger.rotate_virtual_key(&issued.key.id).await.unwrap();
    assert_eq!(
        rotated.key.replaces.as_deref(),
        Some(issued.key.id.as_str())
    );
    assert_eq!(
        ledger.authenticate(&issued.secret).unwrap_err(),
        AuthError::Revoked
    );
    assert_eq!(
        ledger.authenticate(&rotated.secret).unwrap().member_id,
        "alice"
    );

    let bobs = ledger.create_virtual_key("bob", "ci", None).await.unwrap();
    ledger.remove_member("bob").await.unwrap();
    assert_eq!(
        ledger.authenticate(&bobs.secret).unwrap_err(),
        AuthError::MemberRemoved
    );
    ledger.shutdown().await.unwrap();
}

/// A revocation made through one `Ledger` reaches another on the same database within a second.
async fn revoke_reaches_other_instance_within_a_second(b: Backend) {
    let db = TestDb::new(b).await;
    let gateway = db.open(serving()).await;
    seed(&gateway, &[("alice", "core")]).await;
    let issued = gateway
        .create_virtual_key("alice", "laptop", None)
        .await
        .unwrap();
    assert!(gateway.authenticate(&issued.secret).is_ok());
    // On SQLite the second process is an admin (the CLI); on PostgreSQL another gateway.
    let other_opts = match b {
        Backend::Sqlite => LedgerOptions::admin().with_secret_key(test_key()),
        Backend::Postgres => serving(),
    };
    let other = db.open(other_opts).await;
    if b == Backend::Sqlite {
        // A second serving process on the same SQLite file is refused.
        let err = orteam_ledger::Ledger::open(&db.url, serving())
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::AlreadyServing { .. }), "{err}");
        assert_eq!(other.role(), Role::Admin);
    }
    other.revoke_virtual_key(&issued.key.id).await.unwrap();
    assert_eq!(
        other.authenticate(&issued.secret).unwrap_err(),
        AuthError::Revoked,
        "immediate where revoked"
    );
    let revoked_at = Instant::now();
    let deadline = revoked_at + Duration::from_secs(1);
    loop {
        match gateway.authenticate(&issued.secret) {
            Err(AuthError::Revoked) => break,
            Ok(_) => {}
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "revocation not visible to the other instance within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A removed member and a changed budget travel the same way.
    other.remove_member("alice").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match gateway.reserve("alice", m("0.01")).await {
            Err(LedgerError::MemberRemoved(_)) => break,
            Ok(r) => r.release(),
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "member removal not visible within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.shutdown().await.unwrap();
    other.shutdown().await.unwrap();
}

/// Upstream secrets are encrypted at rest and decrypted for the gateway.
async fn upstream_secret_encrypted_at_rest(b: Backend) {
    let db = TestDb::new(b).await;
    let ledger = db.open(serving()).await;
    seed(&ledger, &[("alice", "core"), ("bob", "core")]).await;
    let plaintext = "sk-or-v1-0123456789abcdef0123456789abcdef";
    let up = ledger
        .add_upstream_key(
            "alice",
            "alice-or",
            "orhash123",
            Some(&SecretString::from(plaintext.to_owned())),
        )
        .await
        .unwrap();
    assert!(up.has_secret);
    let rows = db
        .raw("SELECT id, key_hash, secret_enc FROM upstream_keys")
        .await;
    let stored = rows[0][2].clone().unwrap();
    assert!(
        !stored.contains(plaintext) && !stored.contains("sk-or"),
        "plaintext at rest: {stored}"
    );
    assert!(stored.starts_with("v1:"));
    assert_eq!(rows[0][1].as_deref(), Some("orhash123"));

    let issued = ledger.create_virtual_key("alice", "k", None).await.unwrap();
    let ctx = ledger.authenticate(&issued.secret).unwrap();
    let cred = ctx.upstream.clone().unwrap();
    assert_eq!(cred.key_hash, "orhash123");
    assert_eq!(cred.secret.as_ref().unwrap().expose_secret(), plaintext);
    assert!(!format!("{ctx:?}").contains(plaintext), "secret in Debug");

    // Hash-only upstream keys need no encryption key.
    ledger
        .add_upstream_key("bob", "bob-or", "orhash456", None)
        .await
        .unwrap();
    ledger.shutdown().await.unwrap();

    if std::env::var(orteam_ledger::env::ORTEAM_SECRET_KEY).is_err() {
        let no_key = db.open(LedgerOptions::admin()).await;
        let err = no_key
            .add_upstream_key(
                "bob",
                "x",
                "h",
                Some(&SecretString::from("sk-or-v1-x".to_owned())),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::SecretKeyMissing));
        assert!(err.to_string().contains("ORTEAM_SECRET_KEY"));
        assert!(!err.to_string().contains("sk-or"));
        // Without the key the gateway simply has no secret for alice.
        let ctx = no_key.authenticate(&issued.secret).unwrap();
        assert!(ctx.upstream.unwrap().secret.is_none());
    }
}

backend_tests!(
    keys_hash_only_and_states,
    revoke_reaches_other_instance_within_a_second,
    upstream_secret_encrypted_at_rest,
);
