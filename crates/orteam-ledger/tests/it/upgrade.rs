//! Upgrades: a ledger written by an older orteam (the fixtures in `tests/fixtures/`, made by
//! orteam b903b68, before migration `event_route`; see `make_fixture.rs` there) opens with
//! today's orteam: every migration since applies, and every row reads back the same.

use orteam_core::{ApiRoute, Money, Window};
use orteam_ledger::{
    BudgetScope, EventFilter, Ledger, LedgerOptions, Outcome, SecretKey, Usage, migrate,
};
use orteam_test_support::{TestDb, pg_base_url, pg_connect};
use secrecy::{ExposeSecret, SecretString};

use crate::support::{Backend, m};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture_keys() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("keys.json")).unwrap()).unwrap()
}

/// The fixture loaded into a fresh database: (the database, the schema version it starts at).
async fn load_fixture(backend: Backend) -> (TestDb, i64) {
    let db = TestDb::new(backend).await;
    match backend {
        Backend::Sqlite => {
            std::fs::copy(fixture("v3.sqlite"), db.sqlite_path()).unwrap();
            (db, 3)
        }
        Backend::Postgres => {
            // pg_dump's text, moved into this test's own schema (which already exists).
            let schema = db.schema.clone().unwrap();
            let sql = std::fs::read_to_string(fixture("v2.postgres.sql"))
                .unwrap()
                .replace("CREATE SCHEMA orteam_fixture;", "")
                .replace("orteam_fixture", &schema);
            pg_connect(&pg_base_url())
                .await
                .batch_execute(&sql)
                .await
                .unwrap();
            (db, 2)
        }
    }
}

backend_tests!(a_ledger_from_an_older_orteam_upgrades_with_all_its_data);

async fn a_ledger_from_an_older_orteam_upgrades_with_all_its_data(backend: Backend) {
    let (db, old_version) = load_fixture(backend).await;
    let before = db.raw("SELECT MAX(version) FROM schema_migrations").await;
    assert_eq!(
        before[0][0].as_deref(),
        Some(old_version.to_string().as_str())
    );
    let keys = fixture_keys();
    let secret_key = SecretKey::from_base64(keys["secret_key"].as_str().unwrap()).unwrap();
    let ledger = Ledger::open(
        &db.url,
        LedgerOptions::serving().with_secret_key(secret_key),
    )
    .await
    .expect("today's orteam opens the older ledger");
    let latest = match backend {
        Backend::Sqlite => migrate::latest(migrate::SQLITE),
        Backend::Postgres => migrate::latest(migrate::POSTGRES),
    };
    assert_eq!(ledger.check_schema().await.unwrap(), latest);

    // Every event, exactly: costs to the last digit, outcomes, and the route the migration
    // gave rows that predate routes (chat).
    let events = ledger.events(EventFilter::default()).await.unwrap();
    assert_eq!(events.len(), 5);
    let by_id = |id: &str| {
        events
            .iter()
            .find(|e| e.usage.request_id == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("fixture-req-0").usage.cost, m("0.000123456789"));
    assert_eq!(by_id("fixture-req-1").usage.cost, m("0.0421"));
    assert!(by_id("fixture-req-1").usage.streamed);
    assert_eq!(by_id("fixture-req-2").usage.outcome, Outcome::Partial);
    assert_eq!(by_id("fixture-req-3").usage.outcome, Outcome::Failed);
    assert_eq!(by_id("fixture-req-4").usage.outcome, Outcome::Provisional);
    assert!(events.iter().all(|e| e.usage.route == ApiRoute::Chat));
    let total: Money = events.iter().map(|e| e.usage.cost).sum();
    assert_eq!(total, m("0.043180956789"));

    // The directory: old keys still authenticate, the stored upstream secret still decrypts.
    let key_set = match backend {
        Backend::Sqlite => &keys["sqlite_keys"],
        Backend::Postgres => &keys["postgres_keys"],
    };
    for member in ["alice", "bob", "carol"] {
        let presented = SecretString::from(key_set[member].as_str().unwrap().to_owned());
        let auth = ledger.authenticate(&presented).expect("an old key works");
        assert_eq!(auth.member_id, member);
    }
    let carol = SecretString::from(key_set["carol"].as_str().unwrap().to_owned());
    let upstream = ledger.authenticate(&carol).unwrap().upstream.unwrap();
    assert_eq!(
        upstream.secret.as_ref().unwrap().expose_secret(),
        "sk-or-v1-fixture-upstream-secret"
    );

    // Budgets and the raise.
    let status = ledger.budget_status("alice").await.unwrap();
    let daily = status
        .iter()
        .find(|b| b.scope == BudgetScope::Member && b.window == Window::Daily)
        .unwrap();
    assert_eq!(daily.base_limit, m("5"));
    assert_eq!(daily.limit, m("7.5"));
    assert_eq!(ledger.outbox_entries(false).await.unwrap().len(), 1);

    // And it keeps working: a new event, with a route, next to the old ones.
    let r = ledger.reserve("bob", m("0.01")).await.unwrap();
    let mut usage = Usage::new("after-upgrade", "openai/gpt-4o-mini", m("0.0000001"));
    usage.route = ApiRoute::Messages;
    r.settle(usage).await.unwrap();
    let after = ledger.event("after-upgrade").await.unwrap().unwrap();
    assert_eq!(after.usage.route, ApiRoute::Messages);
    assert_eq!(
        ledger.events(EventFilter::default()).await.unwrap().len(),
        6
    );
    ledger.shutdown().await.unwrap();
}

backend_tests!(a_ledger_newer_than_this_orteam_is_refused);

async fn a_ledger_newer_than_this_orteam_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    drop(db.open(LedgerOptions::admin()).await);
    db.raw(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 'x')",
    )
    .await;
    for opts in [LedgerOptions::serving(), LedgerOptions::admin()] {
        let err = Ledger::open(&db.url, opts).await.unwrap_err();
        assert!(
            matches!(
                err,
                orteam_ledger::LedgerError::SchemaTooNew { found: 9999, .. }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("newer orteam"), "{err}");
    }
}

backend_tests!(admin_tokens_survive_the_token_names_migration);

/// SQLite 0013 / PostgreSQL 0012 (a token's name unique among live tokens only, and
/// `file_org`): tokens made before it keep working, revoked ones stay revoked, and a
/// revoked name is free again while a live one is not.
async fn admin_tokens_survive_the_token_names_migration(backend: Backend) {
    use orteam_core::access::Role;
    use orteam_ledger::{LedgerError, NewAdminToken, TokenRefused};
    let db = TestDb::new(backend).await;
    let token = |name: &str, role| NewAdminToken {
        name: name.into(),
        role,
        teams: Vec::new(),
        max_raise: None,
        expires_at: None,
        created_by: "test".into(),
    };
    let ledger = db.open(LedgerOptions::admin()).await;
    let live = ledger
        .create_admin_token(token("ops", Role::Admin))
        .await
        .unwrap();
    let gone = ledger
        .create_admin_token(token("gone", Role::Viewer))
        .await
        .unwrap();
    ledger
        .revoke_admin_token("gone", "test", None)
        .await
        .unwrap();
    ledger.shutdown().await.unwrap();

    // Back to the table as migration `access` made it, and the migration not yet applied.
    let down: &[&str] = match backend {
        Backend::Sqlite => &[
            "DROP INDEX admin_tokens_live_name",
            "CREATE TABLE admin_tokens_v8 (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, \
             role TEXT NOT NULL, teams TEXT NOT NULL DEFAULT '', max_raise TEXT, \
             token_hash TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER, \
             revoked_at INTEGER, created_by TEXT NOT NULL)",
            "INSERT INTO admin_tokens_v8 SELECT id, name, role, teams, max_raise, token_hash, \
             created_at, expires_at, revoked_at, created_by FROM admin_tokens",
            "DROP TABLE admin_tokens",
            "ALTER TABLE admin_tokens_v8 RENAME TO admin_tokens",
            "DELETE FROM schema_migrations WHERE version = 13",
        ],
        Backend::Postgres => &[
            "DROP INDEX admin_tokens_live_name",
            "ALTER TABLE admin_tokens DROP COLUMN file_org",
            "ALTER TABLE admin_tokens ADD CONSTRAINT admin_tokens_name_key UNIQUE (name)",
            "DELETE FROM schema_migrations WHERE version = 12",
        ],
    };
    for sql in down {
        db.raw(sql).await;
    }

    let ledger = db.open(LedgerOptions::admin()).await;
    let latest = match backend {
        Backend::Sqlite => migrate::latest(migrate::SQLITE),
        Backend::Postgres => migrate::latest(migrate::POSTGRES),
    };
    assert_eq!(ledger.check_schema().await.unwrap(), latest);
    let t = ledger
        .authenticate_admin_token(&live.secret)
        .await
        .unwrap()
        .expect("a token made before the migration still works");
    assert_eq!((t.name.as_str(), t.role), ("ops", Role::Admin));
    assert_eq!(t.file_org, None);
    assert_eq!(
        ledger.authenticate_admin_token(&gone.secret).await.unwrap(),
        Err(TokenRefused::Revoked("gone".into()))
    );
    // The revoked name is free again; the live one is not.
    let again = ledger
        .create_admin_token(token("gone", Role::Viewer))
        .await
        .unwrap();
    assert!(
        ledger
            .authenticate_admin_token(&again.secret)
            .await
            .unwrap()
            .is_ok()
    );
    let taken = ledger.create_admin_token(token("ops", Role::Viewer)).await;
    assert!(
        matches!(&taken, Err(LedgerError::Invalid(m)) if m.contains("already exists")),
        "{taken:?}"
    );
    assert_eq!(ledger.admin_tokens().await.unwrap().len(), 3);
    ledger.shutdown().await.unwrap();
}
