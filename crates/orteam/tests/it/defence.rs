//! OpenRouter as a second line of defence, through `orteam team plan|apply` against the
//! simulator: workspaces, tier allowlists pushed down as guardrails, and the org budget as the
//! shared upstream key's limit — created, changed, removed, and completed after a failure
//! half-way, with no duplicate and no orphan.

use orteam_core::{Money, Window};
use orteam_openrouter::Pagination;
use orteam_openrouter::types::guardrails::{Guardrail, ListGuardrailsParams};
use orteam_openrouter::types::keys::Key;
use orteam_openrouter::types::workspaces::Workspace;

use crate::support::{Backend, Env, both_backends, read_secrets};

const SHARED: &str = "team-shared";

/// `guardrails`, `backstop` and the workspace mapping on or off.
fn team_file(defence: bool, basic_models: &str, monthly: &str) -> String {
    let (openrouter, workspace) = if defence {
        (
            format!(
                "[org.openrouter]\nguardrails = true\nshared_key = \"{SHARED}\"\nbackstop = true\n"
            ),
            "workspace = \"backend\"\n",
        )
    } else {
        (format!("[org.openrouter]\nshared_key = \"{SHARED}\"\n"), "")
    };
    format!(
        r#"
[org]
name = "acme"
budget = {{ monthly = "{monthly}" }}
{openrouter}
[tiers.basic]
models = {basic_models}

[tiers.enterprise]
models = "*"

[teams.backend]
{workspace}
[[members]]
id = "alice"
team = "backend"
tier = "enterprise"
key = {{ mode = "gateway" }}

[[members]]
id = "bob"
team = "backend"
tier = "basic"
key = {{ mode = "direct", limit = "25.00", limit_reset = "monthly" }}

[[members]]
id = "carol"
team = "backend"
tier = "basic"
key = {{ mode = "gateway", upstream = "own", limit = "10.00", limit_reset = "daily" }}
"#
    )
}

const MINI: &str = r#"["openai/gpt-4o-mini"]"#;

async fn apply(env: &Env, secrets: &str) {
    let out = env
        .orteam(&["team", "apply", "--yes", "--secrets-out", secrets])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
}

async fn workspaces(env: &Env) -> Vec<Workspace> {
    env.client()
        .list_workspaces(&Pagination::default())
        .await
        .unwrap()
        .data
}

async fn guardrails(env: &Env) -> Vec<Guardrail> {
    env.client()
        .list_guardrails(&ListGuardrailsParams::default())
        .await
        .unwrap()
        .data
}

async fn assigned_keys(env: &Env, guardrail: &str) -> Vec<String> {
    let mut hashes: Vec<String> = env
        .client()
        .guardrail_key_assignments(guardrail, &Pagination::default())
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|a| a.key_hash)
        .collect();
    hashes.sort();
    hashes
}

fn member_keys(keys: &[Key]) -> Vec<&Key> {
    let mut ks: Vec<&Key> = keys
        .iter()
        .filter(|k| k.name.starts_with("orteam:acme:"))
        .collect();
    ks.sort_by(|a, b| a.name.cmp(&b.name));
    ks
}

fn shared(keys: &[Key]) -> &Key {
    keys.iter()
        .find(|k| k.name == SHARED)
        .expect("the shared key")
}

both_backends!(
    defence_is_planned_applied_changed_and_removed,
    a_failure_half_way_is_completed_without_duplicates,
);

async fn defence_is_planned_applied_changed_and_removed(backend: Backend) {
    let env = Env::new(backend).await;
    env.sim.create_key(SHARED, None, None);
    env.write_team(&team_file(true, MINI, "500.00"));
    let secrets = env.path("s.jsonl");
    let s = secrets.to_str().unwrap();

    // Plan shows each part of the second line of defence.
    let p = env.orteam(&["team", "plan"]).await;
    assert_eq!(p.code, 2, "{p:?}");
    for (resource, id) in [
        ("openrouter workspace", "backend"),
        ("openrouter guardrail", "orteam:acme:tier:basic"),
        ("shared upstream key", SHARED),
    ] {
        let shown = p
            .stdout
            .lines()
            .any(|l| l.contains(resource) && l.contains(id));
        assert!(shown, "{resource} {id} not in\n{}", p.stdout);
    }
    apply(&env, s).await;

    // The workspace exists, marked as orteam's, and holds bob's and carol's keys.
    let ws = workspaces(&env).await;
    let backend_ws = ws.iter().find(|w| w.slug == "backend").expect("workspace");
    let keys = env.sim_keys().await;
    let mine = member_keys(&keys);
    assert_eq!(mine.len(), 2, "{mine:?}");
    for k in &mine {
        assert_eq!(
            k.workspace_id.as_deref(),
            Some(backend_ws.id.as_str()),
            "{}",
            k.name
        );
    }
    // The basic tier's guardrail allows its models only and covers its members' keys.
    let gs = guardrails(&env).await;
    assert_eq!(gs.len(), 1, "{gs:?}");
    let g = &gs[0];
    assert_eq!(g.name, "orteam:acme:tier:basic");
    assert_eq!(g.allowed_models.as_ref().map(Vec::len), Some(1), "{g:?}");
    let mut want: Vec<String> = mine.iter().map(|k| k.hash.clone()).collect();
    want.sort();
    assert_eq!(assigned_keys(&env, &g.id).await, want);
    // The org budget is the shared key's limit.
    assert_eq!(shared(&keys).limit, Some(Money::parse("500").unwrap()));
    assert_eq!(shared(&keys).limit_reset, Some(Window::Monthly));
    // Idempotent, and the shared key is no stray.
    let again = env.orteam(&["team", "plan"]).await;
    assert_eq!(again.code, 0, "{again:?}");

    // Bob goes around the gateway with his direct key: OpenRouter itself refuses a model
    // outside his tier, with its error passed through as is.
    let bob = read_secrets(&secrets)
        .into_iter()
        .find(|x| x.0 == "bob")
        .unwrap()
        .3;
    let refused = reqwest::Client::new()
        .post(format!("{}/chat/completions", env.sim.base_url()))
        .bearer_auth(&bob)
        .json(&serde_json::json!({"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("orteam:acme:tier:basic"), "{msg}");

    // Change: the tier allows one more model, the org budget grows.
    env.write_team(&team_file(
        true,
        r#"["openai/gpt-4o-mini", "openai/gpt-4o"]"#,
        "650.00",
    ));
    let p = env.orteam(&["team", "plan"]).await;
    assert_eq!(p.code, 2, "{p:?}");
    apply(&env, s).await;
    let gs = guardrails(&env).await;
    assert_eq!(gs.len(), 1, "{gs:?}");
    assert_eq!(
        gs[0].allowed_models.as_ref().map(Vec::len),
        Some(2),
        "{gs:?}"
    );
    let keys = env.sim_keys().await;
    assert_eq!(shared(&keys).limit, Some(Money::parse("650").unwrap()));
    assert_eq!(env.orteam(&["team", "plan"]).await.code, 0);

    // Removed from the file: guardrail gone, keys back in the default workspace, orteam's
    // workspace deleted, the shared key without a limit.
    env.write_team(&team_file(false, MINI, "650.00"));
    apply(&env, s).await;
    assert!(guardrails(&env).await.is_empty());
    let ws = workspaces(&env).await;
    assert!(!ws.iter().any(|w| w.slug == "backend"), "{ws:?}");
    let default_ws = ws.iter().find(|w| w.slug == "default").unwrap();
    let keys = env.sim_keys().await;
    for k in member_keys(&keys) {
        assert_eq!(
            k.workspace_id.as_deref(),
            Some(default_ws.id.as_str()),
            "{}",
            k.name
        );
    }
    assert_eq!(shared(&keys).limit, None);
    assert_eq!(env.orteam(&["team", "plan"]).await.code, 0);
}

async fn a_failure_half_way_is_completed_without_duplicates(backend: Backend) {
    use orteam_test_support::{Fault, FaultRule};
    let env = Env::new(backend).await;
    env.sim.create_key(SHARED, None, None);
    env.write_team(&team_file(true, MINI, "500.00"));
    let secrets = env.path("s.jsonl");
    let s = secrets.to_str().unwrap();

    // Creating the workspace fails: nothing else is done.
    let fail_once = |path: &str| {
        vec![FaultRule {
            method: Some("POST".into()),
            path_prefix: Some(path.into()),
            times: Some(1),
            fault: Fault::Status {
                status: 400,
                retry_after: None,
                message: Some("Invalid request parameters".into()),
            },
        }]
    };
    env.sim.set_faults(fail_once("/api/v1/workspaces"));
    let out = env
        .orteam(&["team", "apply", "--yes", "--secrets-out", s])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(member_keys(&env.sim_keys().await).is_empty());

    // As if that creation had gone through and only its answer was lost: the workspace is
    // there, and the next apply adopts it. This time assigning the guardrail fails, after the
    // guardrail itself was created.
    env.client()
        .create_workspace(
            &orteam_openrouter::types::workspaces::CreateWorkspaceRequest {
                name: "Backend".into(),
                slug: "backend".into(),
                description: None,
            },
        )
        .await
        .unwrap();
    env.sim.set_faults(fail_once("/api/v1/guardrails/"));
    let out = env
        .orteam(&["team", "apply", "--yes", "--secrets-out", s])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(guardrails(&env).await.len(), 1);

    // The next plan shows what is left; apply finishes it.
    let p = env.orteam(&["team", "plan"]).await;
    assert_eq!(p.code, 2, "{p:?}");
    apply(&env, s).await;
    let gs = guardrails(&env).await;
    assert_eq!(gs.len(), 1, "no duplicate guardrail: {gs:?}");
    let keys = env.sim_keys().await;
    let mine = member_keys(&keys);
    assert_eq!(assigned_keys(&env, &gs[0].id).await.len(), mine.len());
    // The workspace was adopted, not duplicated, and holds the keys.
    let ws = workspaces(&env).await;
    let backend_ws: Vec<&Workspace> = ws
        .iter()
        .filter(|w| w.slug.starts_with("backend"))
        .collect();
    assert_eq!(backend_ws.len(), 1, "{ws:?}");
    for k in &mine {
        assert_eq!(
            k.workspace_id.as_deref(),
            Some(backend_ws[0].id.as_str()),
            "{}",
            k.name
        );
    }
    assert_eq!(env.orteam(&["team", "plan"]).await.code, 0);
}
