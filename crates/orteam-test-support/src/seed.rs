//! The directory every gateway test starts from (see [`seed_directory`]) and the admin token of
//! test gateways. Needs only a ledger, so tests that use no gateway get it without the
//! `gateway` feature.
//!
//! - org `acme`; teams `core` and `web`;
//! - tiers `all` (every model), `basic` (gpt-4o-mini and `meta-llama/*`, others downgraded to
//!   gpt-4o-mini), `strict` (gpt-4o-mini only, others denied);
//! - members `alice` (all, core), `bob` (basic, core), `carol` (strict, web), each with a
//!   virtual key.

use std::collections::HashMap;

use orteam_ledger::{Ledger, ModelAccess, NewMember, OnDisallowed, Tier};
use secrecy::ExposeSecret;

/// The admin token of test gateways.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// Seeds the directory described in the module docs; returns each member's `ot-…` key.
pub async fn seed_directory(
    admin: &Ledger,
    tier_limits: &HashMap<String, (Option<u32>, Option<u64>)>,
) -> HashMap<String, String> {
    admin.put_org("acme", "Acme").await.expect("org");
    admin.put_team("core", "acme", "Core").await.expect("team");
    admin.put_team("web", "acme", "Web").await.expect("team");
    let tiers = [
        ("all", ModelAccess::All, OnDisallowed::Deny),
        (
            "basic",
            ModelAccess::Allow(vec!["openai/gpt-4o-mini".into(), "meta-llama/*".into()]),
            OnDisallowed::Downgrade("openai/gpt-4o-mini".into()),
        ),
        (
            "strict",
            ModelAccess::Allow(vec!["openai/gpt-4o-mini".into()]),
            OnDisallowed::Deny,
        ),
    ];
    for (id, models, on_disallowed) in tiers {
        let (rpm, tpm) = tier_limits.get(id).copied().unwrap_or((None, None));
        admin
            .put_tier(Tier {
                id: id.into(),
                name: id.into(),
                models,
                on_disallowed,
                requests_per_minute: rpm,
                tokens_per_minute: tpm,
                routing: Default::default(),
            })
            .await
            .expect("tier");
    }
    let mut keys = HashMap::new();
    for (id, tier, team) in [
        ("alice", "all", "core"),
        ("bob", "basic", "core"),
        ("carol", "strict", "web"),
    ] {
        admin
            .put_member(NewMember {
                id: id.into(),
                display_name: id.to_uppercase(),
                team_id: team.into(),
                tier_id: tier.into(),
            })
            .await
            .expect("member");
        let issued = admin
            .create_virtual_key(id, &format!("{id}-key"), None)
            .await
            .expect("key");
        keys.insert(id.to_owned(), issued.secret.expose_secret().to_owned());
    }
    keys
}
