//! Admin tokens declared in the team file (`[access.tokens.*]`) through the `orteam` binary and
//! a running `orteam serve`: plan shows them, apply issues their secrets to `--secrets-out`,
//! each secret works against the admin API with its declared role (a team lead sees only its
//! team and raises up to its `max_raise`), re-applying changes nothing, a changed max_raise is
//! updated in place, a token removed from the file is revoked (401) and can be declared again
//! (a new secret), a token made by `orteam token create` survives every apply, and the audit log
//! records it all and verifies. On both backends.

use chrono::TimeDelta;
use serde_json::{Value, json};

use crate::support::{Backend, Env, ServeProcess, both_backends};

both_backends!(declared_tokens_are_planned_applied_updated_and_revoked);

fn team(platform_max_raise: &str, with_auditor: bool) -> String {
    let mut t = format!(
        r#"
[org]
name = "acme"

[tiers.basic]
models = ["openai/gpt-4o-mini"]

[teams.platform]
[teams.web]

[[members]]
id = "alice"
team = "platform"
tier = "basic"
budget = {{ daily = "5.00" }}

[[members]]
id = "carol"
team = "web"
tier = "basic"
budget = {{ daily = "5.00" }}

[access.tokens.platform-lead]
role = "team_lead"
teams = ["platform"]
max_raise = "{platform_max_raise}"
expires_in = "90d"
"#
    );
    if with_auditor {
        t.push_str("\n[access.tokens.auditor]\nrole = \"viewer\"\n");
    }
    t
}

/// The admin-token lines of a `--secrets-out` file: (token name, key reference, secret).
fn token_secrets(path: &std::path::Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "admin_token")
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            (s("token"), s("key"), s("secret"))
        })
        .collect()
}

fn secret_of(secrets: &[(String, String, String)], name: &str) -> String {
    secrets
        .iter()
        .rfind(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("no secret for {name}: {secrets:?}"))
        .2
        .clone()
}

async fn raise(
    http: &reqwest::Client,
    root: &str,
    token: &str,
    member: &str,
    amount: &str,
) -> (u16, String) {
    let until = (chrono::Utc::now() + TimeDelta::hours(4)).to_rfc3339();
    let r = http
        .post(format!("{root}/admin/v1/budgets/raise"))
        .bearer_auth(token)
        .json(&json!({"scope": "member", "id": member, "window": "daily", "amount": amount, "until": until}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get(http: &reqwest::Client, root: &str, token: &str, path: &str) -> (u16, String) {
    let r = http
        .get(format!("{root}/admin/v1/{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn declared_tokens_are_planned_applied_updated_and_revoked(backend: Backend) {
    let env = Env::new(backend).await;
    let shared = orteam_test_support::inference_key(&env.sim, "team-shared");
    env.write_team(&team("50.00", true));
    let secrets_out = env.path("secrets.jsonl");
    let secrets_arg = secrets_out.to_str().unwrap();

    // Plan: both declared tokens are to be created, with their role and scope.
    let out = env.orteam(&["team", "plan"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    for needle in [
        "admin token  platform-lead",
        "role: team_lead",
        "teams: platform",
        "max_raise: 50",
        "expires_at: now + 90d",
        "admin token  auditor",
        "role: viewer",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} in:\n{out:?}");
    }
    let out = env.orteam(&["team", "plan", "--format", "json"]).await;
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    let created: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["resource"] == "admin_token" && c["action"] == "create")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["auditor", "platform-lead"], "{plan:#}");

    // Apply: each secret goes to --secrets-out once, nowhere else.
    let out = env
        .orteam(&["team", "apply", "--yes", "--secrets-out", secrets_arg])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let issued = token_secrets(&secrets_out);
    assert_eq!(issued.len(), 2, "{issued:?}");
    let lead = secret_of(&issued, "platform-lead");
    let auditor = secret_of(&issued, "auditor");
    assert!(lead.starts_with("ota-") && auditor.starts_with("ota-"));
    env.assert_secrets_hidden(&[lead.clone(), auditor.clone()]);

    // A token made with the CLI, which no apply may touch.
    let out = env
        .orteam(&["token", "create", "ci-admin", "--role", "admin"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let ci = out
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("ota-") && w.len() > 40)
        .unwrap_or_else(|| panic!("no secret printed: {out:?}"))
        .to_owned();

    // Re-applying the same file changes nothing.
    let out = env.orteam(&["team", "plan"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("No changes"), "{out:?}");

    // The secrets work against the admin API with their declared roles.
    let serve = ServeProcess::start(&env.db_url, &env.sim, &shared, &[]).await;
    let root = serve.root_url();
    let http = reqwest::Client::new();
    let (status, body) = get(&http, &root, &lead, "members").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"alice\"") && !body.contains("\"carol\""),
        "{body}"
    );
    let (status, body) = raise(&http, &root, &lead, "alice", "50.00").await;
    assert_eq!(status, 201, "up to max_raise: {body}");
    let (status, body) = raise(&http, &root, &lead, "alice", "50.01").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("above this token's max_raise 50"), "{body}");
    let (status, body) = raise(&http, &root, &lead, "carol", "1.00").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("team lead of platform only"), "{body}");
    let (status, body) = get(&http, &root, &auditor, "members").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"carol\""), "{body}");
    let (status, body) = raise(&http, &root, &auditor, "alice", "1.00").await;
    assert_eq!(status, 403, "a viewer changes nothing: {body}");

    // The file changes: the lead may raise more (in place, same secret), the auditor is gone.
    env.write_team(&team("60.00", false));
    let out = env.orteam(&["team", "plan"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stdout.contains("max_raise: 50 → 60"),
        "an update in place:\n{out:?}"
    );
    assert!(out.stdout.contains("- revoke"), "{out:?}");
    assert!(
        !out.stdout.contains("ci-admin"),
        "CLI-made tokens are left alone: {out:?}"
    );
    let out = env
        .orteam(&["team", "apply", "--yes", "--secrets-out", secrets_arg])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        token_secrets(&secrets_out).len(),
        2,
        "no new secret for an update"
    );
    let (status, body) = raise(&http, &root, &lead, "alice", "60.00").await;
    assert_eq!(status, 201, "the new max_raise, same secret: {body}");
    let (status, body) = raise(&http, &root, &lead, "alice", "60.01").await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = get(&http, &root, &auditor, "members").await;
    assert_eq!(status, 401, "revoked at once: {body}");
    assert!(body.contains("revoked"), "{body}");
    let (status, body) = get(&http, &root, &ci, "members").await;
    assert_eq!(status, 200, "the CLI-made token survives apply: {body}");
    let out = env.orteam(&["team", "plan"]).await;
    assert_eq!(out.code, 0, "{out:?}");

    // Declared again later: the name is free again, and a new secret is issued.
    env.write_team(&team("60.00", true));
    let out = env
        .orteam(&["team", "apply", "--yes", "--secrets-out", secrets_arg])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let issued = token_secrets(&secrets_out);
    assert_eq!(issued.len(), 3, "{issued:?}");
    let auditor2 = secret_of(&issued, "auditor");
    assert_ne!(auditor2, auditor);
    let (status, body) = get(&http, &root, &auditor2, "members").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = get(&http, &root, &auditor, "members").await;
    assert_eq!(status, 401, "the old secret stays revoked");
    let (status, _) = get(&http, &root, &ci, "members").await;
    assert_eq!(status, 200);
    env.assert_secrets_hidden(&[lead, auditor, auditor2]);
    drop(serve);

    // The audit log has every step, by whoever ran apply, and verifies.
    let out = env.orteam(&["audit", "list", "--format", "json"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let entries: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    let count = |action: &str, target: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["target"] == target)
            .count()
    };
    assert_eq!(
        count("token_create", "token:platform-lead"),
        1,
        "{entries:#?}"
    );
    assert_eq!(count("token_create", "token:auditor"), 2);
    assert_eq!(count("token_create", "token:ci-admin"), 1);
    assert_eq!(count("token_revoke", "token:auditor"), 1);
    assert_eq!(count("token_revoke", "token:ci-admin"), 0);
    let update = entries
        .iter()
        .filter(|e| e["action"] == "token_update" && e["target"] == "token:platform-lead")
        .find(|e| {
            e["after"]
                .as_str()
                .unwrap_or_default()
                .contains("\"max_raise\":\"60")
        })
        .unwrap_or_else(|| panic!("no max_raise update: {entries:#?}"));
    assert!(
        update["before"]
            .as_str()
            .unwrap()
            .contains("\"max_raise\":\"50"),
        "{update:#}"
    );
    let by_apply = entries
        .iter()
        .filter(|e| e["target"] == "token:auditor")
        .all(|e| e["actor"].as_str().unwrap_or_default().starts_with("cli:"));
    assert!(by_apply, "the actor is whoever ran apply: {entries:#?}");
    let out = env.orteam(&["audit", "verify"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("audit log intact"), "{out:?}");
}
