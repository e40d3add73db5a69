//! The team tools (a ledger configured): listed only with a database URL, write tools only
//! with writes; budget status, spend, bad input, and revoking a member through the ledger.

use orteam_core::{ApiRoute, Money, Window};
use orteam_ledger::{BudgetScope, Ledger, LedgerOptions, MemberState, Usage};
use orteam_mcp::{McpConfig, OrteamMcp, TEAM_READ_TOOLS, TEAM_WRITE_TOOLS};
use orteam_test_support::{Backend, TestDb};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::common::{Mcp, connect};

/// A seeded SQLite ledger (alice/bob/carol, teams core/web, org acme, alice $5/day).
async fn ledger() -> (TestDb, Ledger) {
    let db = TestDb::new(Backend::Sqlite).await;
    let admin = db.open(LedgerOptions::admin()).await;
    orteam_test_support::seed_directory(&admin, &Default::default()).await;
    admin
        .set_budget(
            BudgetScope::Member,
            "alice",
            Window::Daily,
            Money::parse("5").unwrap(),
        )
        .await
        .unwrap();
    (db, admin)
}

async fn start(db: &TestDb, allow_write: bool) -> Mcp {
    let sim = orteam_test_support::spawn_sim().await;
    let key = sim.provisioning_key().to_owned();
    let mut config = McpConfig::new(SecretString::from(key.clone()));
    config.base_url = Some(sim.base_url());
    config.allow_write = allow_write;
    config.database_url = Some(db.url.clone());
    let server = OrteamMcp::from_config(&config)
        .await
        .expect("server builds");
    connect(sim, &key, server).await
}

#[tokio::test]
async fn team_tools_read_write_and_bad_input() {
    let (db, admin) = ledger().await;

    // Read-only: the 16 OpenRouter read tools and the 5 team read tools.
    let mcp = start(&db, false).await;
    let names = mcp.tool_names().await;
    assert_eq!(names.len(), 21, "{names:?}");
    for t in TEAM_READ_TOOLS {
        assert!(names.iter().any(|n| n == t), "{t} missing");
    }
    for t in TEAM_WRITE_TOOLS {
        assert!(!names.iter().any(|n| n == t), "{t} listed read-only");
    }

    let t = mcp.ok("team_budget_status", json!({})).await;
    let v: Value = serde_json::from_str(&t).unwrap();
    let alice = v["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "alice" && b["window"] == "daily")
        .unwrap_or_else(|| panic!("no alice daily budget: {t}"));
    assert_eq!(alice["scope"], "member");
    assert_eq!(alice["limit"], "$5.00", "money as the CLI shows it: {t}");
    assert_eq!(alice["remaining"], "$5.00");
    assert_eq!(alice["used_percent"], "0%", "{t}");
    assert!(!t.contains("null"), "no null noise: {t}");
    let t = mcp
        .ok("team_budget_status", json!({ "scope": "team" }))
        .await;
    assert_eq!(t, "No budgets match the filter.");

    let t = mcp
        .ok("team_spend", json!({ "group_by": ["member", "day"] }))
        .await;
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["group_by"], json!(["member", "day"]), "{t}");
    assert_eq!(v["totals"]["cost"], "$0.00", "{t}");
    assert!(!t.contains("null"), "no null noise: {t}");
    assert!(v["rows"].is_array(), "{t}");

    let bad = [
        ("team_spend", json!({ "group_by": ["color"] }), "color"),
        (
            "team_spend",
            json!({ "since": "2026-05-10", "until": "2026-05-01" }),
            "empty",
        ),
        (
            "team_budget_status",
            json!({ "id": " " }),
            "must not be empty",
        ),
        ("team_anomalies", json!({ "day": "May 1" }), "YYYY-MM-DD"),
        (
            "team_plan",
            json!({ "path": "/nonexistent/team.toml" }),
            "team.toml",
        ),
    ];
    for (tool, args, expected) in &bad {
        let t = mcp.err(tool, args.clone()).await;
        assert!(t.contains(expected), "{tool}({args}): {t}");
    }
    let err = mcp
        .call("team_revoke_member", json!({ "member": "alice" }))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("OPENROUTER_ADMIN_ALLOW_WRITE=1"),
        "{err}"
    );
    mcp.assert_alive().await;

    // A plan of a real team file, and today's anomalies.
    let dir = tempfile::tempdir().unwrap();
    let team = dir.path().join("team.toml");
    std::fs::write(
        &team,
        "[org]\nname = \"acme\"\n[tiers.all]\nmodels = \"*\"\n[teams.core]\n[[members]]\nid = \"dora\"\nteam = \"core\"\ntier = \"all\"\n",
    )
    .unwrap();
    let t = mcp
        .ok("team_plan", json!({ "path": team.to_str().unwrap() }))
        .await;
    assert!(t.contains("dora"), "the plan creates the new member: {t}");
    let t = mcp.ok("team_anomalies", json!({})).await;
    let v: Value = serde_json::from_str(&t).unwrap();
    assert!(v["flagged"].as_array().unwrap().is_empty(), "{t}");

    // Write mode: the 3 team write tools too; revoking alice removes her from the ledger.
    let mcp = start(&db, true).await;
    assert_eq!(mcp.tool_names().await.len(), 34);
    // Seeded keys were not issued by `team apply`: rotation says what to do instead.
    let t = mcp.err("team_rotate_key", json!({ "member": "bob" })).await;
    assert!(t.contains("orteam team apply"), "{t}");
    let t = mcp
        .err("team_revoke_member", json!({ "member": "nobody" }))
        .await;
    assert!(t.contains("unknown member"), "{t}");
    let t = mcp
        .ok("team_revoke_member", json!({ "member": "alice" }))
        .await;
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["member"], "alice");
    assert_eq!(v["member_removed"], true, "{t}");
    assert_eq!(v["virtual_keys"].as_array().map(Vec::len), Some(1), "{t}");
    admin.reload().await.unwrap();
    let dir = admin.directory();
    assert_eq!(dir.members["alice"].state, MemberState::Removed);
    assert_eq!(dir.members["bob"].state, MemberState::Active);

    // Last: apply the file (it has only dora, so the others are revoked), then rotate the key
    // it issued: each new secret is returned once.
    let t = mcp
        .ok("team_apply", json!({ "path": team.to_str().unwrap() }))
        .await;
    assert!(t.contains("\"dora\"") && t.contains("ot-"), "{t}");
    let t = mcp
        .err("team_apply", json!({ "path": "/nonexistent/team.toml" }))
        .await;
    assert!(t.contains("team.toml"), "{t}");
    let t = mcp.ok("team_rotate_key", json!({ "member": "dora" })).await;
    assert!(t.contains("ot-"), "the new secret is returned once: {t}");
}

/// team_spend groups by API route and filters by it; every row names its route.
#[tokio::test]
async fn team_spend_by_route() {
    let (db, admin) = ledger().await;
    drop(admin);
    let serving = db.open(LedgerOptions::serving()).await;
    for (member, id, route, cost) in [
        ("alice", "r1", ApiRoute::Chat, "0.10"),
        ("alice", "r2", ApiRoute::Messages, "0.25"),
        ("bob", "r3", ApiRoute::Messages, "0.0000000375"),
        ("bob", "r4", ApiRoute::Embeddings, "0.002"),
    ] {
        let r = serving
            .reserve(member, Money::parse("1").unwrap())
            .await
            .unwrap();
        r.settle(
            Usage::new(id, "openai/gpt-4o-mini", Money::parse(cost).unwrap()).with_route(route),
        )
        .await
        .unwrap();
    }
    serving.shutdown().await.unwrap();

    let mcp = start(&db, false).await;
    let t = mcp.ok("team_spend", json!({ "group_by": ["route"] })).await;
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["group_by"], json!(["route"]), "{t}");
    let rows: Vec<(String, String)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["route"].as_str().unwrap().to_owned(),
                r["cost"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("chat".to_owned(), "$0.10".to_owned()),
            ("messages".to_owned(), "$0.250".to_owned()),
            ("embeddings".to_owned(), "$0.002".to_owned()),
        ],
        "{t}"
    );

    let t = mcp
        .ok(
            "team_spend",
            json!({ "group_by": ["member", "route"], "route": "messages" }),
        )
        .await;
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["route"], "messages", "{t}");
    let rows: Vec<(&str, &str)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["member"].as_str().unwrap(), r["route"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, [("alice", "messages"), ("bob", "messages")], "{t}");
    assert_eq!(v["totals"]["cost"], "$0.250", "{t}");

    let t = mcp.err("team_spend", json!({ "route": "graphql" })).await;
    assert!(t.contains("graphql"), "{t}");
    mcp.assert_alive().await;
}

/// The team tools acting as a named token (`ORTEAM_TOKEN`): the same rule as the admin API.
/// A core team lead sees only core, may revoke only in core and never reads org-wide figures;
/// a viewer reads everything (the audit log too) and changes nothing; every change is audited.
#[tokio::test]
async fn team_tools_enforce_the_token_role() {
    let (db, admin) = ledger().await;
    admin
        .set_budget(
            BudgetScope::Member,
            "carol",
            Window::Daily,
            Money::parse("7.77").unwrap(),
        )
        .await
        .unwrap();
    admin
        .set_budget(
            BudgetScope::Org,
            "acme",
            Window::Monthly,
            Money::parse("100").unwrap(),
        )
        .await
        .unwrap();
    let token = |name: &str, role, teams: &[&str]| orteam_ledger::NewAdminToken {
        name: name.into(),
        role,
        teams: teams.iter().map(|t| t.to_string()).collect(),
        max_raise: None,
        expires_at: None,
        created_by: "test".into(),
    };
    use orteam_core::access::Role;
    use secrecy::ExposeSecret;
    let lead = admin
        .create_admin_token(token("core-lead", Role::TeamLead, &["core"]))
        .await
        .unwrap();
    let viewer = admin
        .create_admin_token(token("finance", Role::Viewer, &[]))
        .await
        .unwrap();
    let start_as = |secret: String| {
        let db_url = db.url.clone();
        async move {
            let sim = orteam_test_support::spawn_sim().await;
            let key = sim.provisioning_key().to_owned();
            let mut config = McpConfig::new(SecretString::from(key.clone()));
            config.base_url = Some(sim.base_url());
            config.allow_write = true;
            config.database_url = Some(db_url);
            config.token = Some(SecretString::from(secret));
            let server = OrteamMcp::from_config(&config)
                .await
                .expect("server builds");
            connect(sim, &key, server).await
        }
    };

    let mcp = start_as(lead.secret.expose_secret().to_owned()).await;
    let t = mcp.ok("team_budget_status", json!({})).await;
    assert!(t.contains("\"alice\""), "{t}");
    for leak in ["carol", "7.77", "acme", "\"org\""] {
        assert!(!t.contains(leak), "{leak} leaked to the core lead: {t}");
    }
    for (tool, args, reason) in [
        (
            "team_spend",
            json!({}),
            "core-lead (team_lead) may not view org-wide data",
        ),
        ("team_anomalies", json!({}), "may not view org-wide data"),
        ("team_audit", json!({}), "may not read the audit log"),
        (
            "team_plan",
            json!({ "path": "/x.toml" }),
            "may not apply a team file",
        ),
        (
            "team_apply",
            json!({ "path": "/x.toml" }),
            "may not apply a team file",
        ),
        (
            "team_rotate_key",
            json!({ "member": "carol" }),
            "may not rotate keys of team \"web\"",
        ),
        (
            "team_revoke_member",
            json!({ "member": "carol" }),
            "may not revoke in team \"web\": a team lead of core only",
        ),
    ] {
        let e = mcp.err(tool, args).await;
        assert!(
            e.contains(&format!("{tool}: refused: ")) && e.contains(reason),
            "{tool}: {e}"
        );
    }
    let t = mcp
        .ok("team_revoke_member", json!({ "member": "bob" }))
        .await;
    assert!(t.contains("\"member_removed\": true"), "{t}");

    let mcp = start_as(viewer.secret.expose_secret().to_owned()).await;
    let t = mcp.ok("team_budget_status", json!({})).await;
    assert!(
        t.contains("carol") && t.contains("acme"),
        "a viewer sees everything: {t}"
    );
    mcp.ok("team_spend", json!({})).await;
    let e = mcp
        .err("team_revoke_member", json!({ "member": "alice" }))
        .await;
    assert!(e.contains("the viewer role is read-only"), "{e}");
    let t = mcp
        .ok("team_audit", json!({ "action": "revoke_member" }))
        .await;
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["chain_intact"], true, "{t}");
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{t}");
    assert_eq!(entries[0]["actor"], "core-lead");
    assert_eq!(entries[0]["target"], "member:bob");
    assert_eq!(entries[0]["source"], "mcp");

    // A revoked token cannot start the team tools.
    admin
        .revoke_admin_token("finance", "test", None)
        .await
        .unwrap();
    let sim = orteam_test_support::spawn_sim().await;
    let mut config = McpConfig::new(SecretString::from(sim.provisioning_key().to_owned()));
    config.base_url = Some(sim.base_url());
    config.database_url = Some(db.url.clone());
    config.token = Some(SecretString::from(viewer.secret.expose_secret().to_owned()));
    let Err(err) = OrteamMcp::from_config(&config).await else {
        panic!("a revoked token must not start the team tools");
    };
    assert!(
        err.to_string()
            .contains("ORTEAM_TOKEN: admin token \"finance\" has been revoked"),
        "{err}"
    );
}
