//! Single sign-on end to end: a real OpenID provider (the certified `oidc-provider` npm package,
//! `orteam-test-support/js/oidc-provider.mjs`) on loopback, the gateway configured for it, and
//! headless Chromium driven by Playwright (`tests/browser/sso.mjs`): sign-in, roles from groups
//! (the team file's `[access.groups]`, a team lead raising up to its `max_raise`),
//! a member seeing only themselves, CSRF, sign-out, tampered / expired / wrong-audience ID tokens
//! refused, an unknown identity refused. Then the audit log names each sign-in and refusal with
//! the identity. On both ledger backends.
//!
//! Needs `ORTEAM_TEST_NODE_MODULES` (playwright-core and oidc-provider) and Chromium:
//! `ORTEAM_TEST_NODE_MODULES="$(bash scripts/browser-env.sh)"`.

use std::path::Path;
use std::time::Duration;

use orteam_core::Window;
use orteam_gateway::sso::SsoSettings;
use orteam_ledger::BudgetScope;
use orteam_test_support::browser::{OidcProvider, SETUP, browser_env};
use orteam_test_support::{Backend, TestGateway};
use secrecy::SecretString;

const TEAM_FILE: &str = r#"
[org]
name = "acme"

[tiers.all]
models = "*"

[teams.core]
[teams.web]

[[members]]
id = "alice"
email = "alice@example.com"
team = "core"
tier = "all"

[[members]]
id = "carol"
email = "carol@example.com"
team = "web"
tier = "all"

# What the identity provider's groups grant, read at each sign-in.
[access.groups]
"orteam-admins" = "admin"
"finance" = "viewer"
"core-leads" = { role = "team_lead", teams = ["core"], max_raise = "10.00" }
"#;

async fn sso_in_chromium(backend: Backend) {
    let (modules, chromium) = browser_env();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    let provider = OidcProvider::start(&modules, &format!("{root}/auth/callback")).await;
    let dir = tempfile::tempdir().unwrap();
    let team_file = dir.path().join("team.toml");
    std::fs::write(&team_file, TEAM_FILE).unwrap();
    let settings = SsoSettings {
        issuer: provider.issuer.clone(),
        client_id: provider.client_id.clone(),
        client_secret: SecretString::from(provider.client_secret.clone()),
        redirect_url: format!("{root}/auth/callback"),
        scopes: vec!["email".into(), "profile".into(), "groups".into()],
        groups_claim: "groups".into(),
        team_file: Some(team_file),
        session_key: SecretString::from(format!("{:032x}", rand::random::<u128>())),
        session_ttl: Duration::from_secs(3600),
    };
    let tg = TestGateway::builder(backend)
        .budget(BudgetScope::Member, "alice", Window::Daily, "5.00")
        .budget(BudgetScope::Member, "bob", Window::Daily, "5.00")
        .budget(BudgetScope::Member, "carol", Window::Daily, "5.00")
        .listener(listener)
        .configure(move |c| c.sso = Some(settings))
        .start()
        .await;
    // Something of everyone's to see (or not): alice, bob and carol each spend; alice is also
    // refused once (an unknown model).
    for member in ["alice", "bob", "carol"] {
        let resp = tg
            .chat(
                member,
                crate::support::body("openai/gpt-4o-mini", "", Some(20)),
            )
            .await;
        assert_eq!(
            resp.status(),
            200,
            "{member}: {}",
            resp.text().await.unwrap()
        );
    }
    let refused = tg
        .chat(
            "alice",
            crate::support::body("nope/not-a-model", "", Some(20)),
        )
        .await;
    assert!(refused.status().is_client_error());
    tg.sync().await;

    let shot = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/browser-test")
        .join(format!(
            "sso-member-{}.png",
            match backend {
                Backend::Sqlite => "sqlite",
                _ => "postgres",
            }
        ));
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/sso.mjs");
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&root)
        .arg(&provider.issuer)
        .env("ORTEAM_TEST_NODE_MODULES", &modules)
        .env("ORTEAM_TEST_CHROMIUM", &chromium)
        .env("ORTEAM_TEST_SCREENSHOT", &shot)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the browser test timed out")
        .unwrap_or_else(|e| panic!("cannot run node: {e}: {SETUP}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sso.mjs failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("sso ok"), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains(&provider.client_secret) && !stderr.contains(&provider.client_secret),
        "the client secret leaked"
    );

    // The audit log names every sign-in, refusal and sign-out with the identity.
    let entries = tg.admin.audit_entries().await.unwrap();
    let has = |actor: &str, action: &str| {
        entries
            .iter()
            .any(|e| e.actor == actor && e.action == action)
    };
    assert!(has("sso:root@example.com", "sign_in"), "{entries:#?}");
    assert!(has("sso:fin@example.com", "sign_in"));
    // The team lead's raise within its max_raise is recorded under its identity.
    assert!(has("sso:lead@example.com", "sign_in"));
    assert!(has("sso:lead@example.com", "raise"), "{entries:#?}");
    assert!(has("sso:alice@example.com", "sign_in"));
    assert!(has("sso:alice@example.com", "sign_out"));
    assert!(has("sso:mallory@example.com", "sign_in_failed"));
    let refused: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "sign_in_failed" && e.actor == "(unauthenticated)")
        .map(|e| e.after.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        refused.len(),
        3,
        "tampered, expired, wrong audience: {refused:#?}"
    );
    assert!(
        refused.iter().all(|r| r.contains("ID token refused")),
        "{refused:#?}"
    );
    let admin_sign_in = entries
        .iter()
        .find(|e| e.actor == "sso:root@example.com" && e.action == "sign_in")
        .unwrap();
    assert_eq!(admin_sign_in.source.as_deref(), Some("127.0.0.1"));
    assert!(
        admin_sign_in
            .after
            .as_deref()
            .is_some_and(|a| a.contains("\"role\":\"admin\""))
    );
    assert!(tg.admin.verify_audit().await.unwrap().is_valid());
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_in_chromium_sqlite() {
    sso_in_chromium(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_in_chromium_postgres() {
    sso_in_chromium(Backend::Postgres).await;
}
