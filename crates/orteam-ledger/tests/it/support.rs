//! Test plumbing: a fresh database per test, seeding, raw access for at-rest checks.

use std::sync::Arc;

use orteam_core::{ControllableClock, Money, SharedClock, Window};
use orteam_ledger::{
    BudgetScope, Ledger, LedgerOptions, ModelAccess, NewMember, OnDisallowed, SecretKey, Tier,
};

pub use orteam_test_support::{Backend, TestDb};

pub fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

pub fn test_key() -> SecretKey {
    SecretKey::from_bytes(&[7u8; 32]).unwrap()
}

pub fn opts_with_clock(clock: &Arc<ControllableClock>) -> LedgerOptions {
    let c: SharedClock = clock.clone();
    LedgerOptions::serving()
        .with_clock(c)
        .with_secret_key(test_key())
}

pub fn serving() -> LedgerOptions {
    LedgerOptions::serving().with_secret_key(test_key())
}

/// A serving ledger with member `alice` (team `core`) and a daily member budget of `limit`.
pub async fn serving_alice_daily(db: &TestDb, limit: &str) -> Ledger {
    let ledger = db.open(serving()).await;
    seed(&ledger, &[("alice", "core")]).await;
    ledger
        .set_budget(BudgetScope::Member, "alice", Window::Daily, m(limit))
        .await
        .unwrap();
    ledger
}

/// org `acme` ⊃ teams `core`, `web` ⊃ members; tier `standard` (all models).
pub async fn seed(ledger: &Ledger, members: &[(&str, &str)]) {
    ledger.put_org("acme", "Acme").await.unwrap();
    ledger.put_team("core", "acme", "Core").await.unwrap();
    ledger.put_team("web", "acme", "Web").await.unwrap();
    ledger
        .put_tier(Tier {
            id: "standard".into(),
            name: "Standard".into(),
            models: ModelAccess::All,
            on_disallowed: OnDisallowed::Deny,
            ..Default::default()
        })
        .await
        .unwrap();
    for (id, team) in members {
        ledger
            .put_member(NewMember {
                id: (*id).into(),
                display_name: id.to_uppercase(),
                team_id: (*team).into(),
                tier_id: "standard".into(),
            })
            .await
            .unwrap();
    }
}
