//! Who may see and do what, through the real admin API: a role × action matrix (every cell
//! allowed or refused with 401/403 and a clear reason), nothing leaked across teams, and every
//! change in the hash-chained audit log.

use chrono::TimeDelta;
use orteam_core::access::Role;
use orteam_core::{Clock, Window};
use orteam_ledger::{BudgetScope, NewAdminToken};
use orteam_test_support::{ADMIN_TOKEN, Backend, TestGateway, backend_tests};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::support::*;

backend_tests!(role_by_action_matrix_through_the_admin_api);

/// One row of the matrix: action, method, path, body, expected status per column of [`WHO`]
/// (0: not asked).
type MatrixRow<'a> = (&'a str, &'a str, String, Option<Value>, [u16; 6]);

/// The columns of the matrix.
const WHO: [&str; 6] = [
    "bootstrap",
    "admin",
    "viewer",
    "lead(core)",
    "member(alice)",
    "none",
];

async fn token(
    tg: &TestGateway,
    name: &str,
    role: Role,
    teams: &[&str],
    max: Option<&str>,
) -> String {
    tg.admin
        .create_admin_token(NewAdminToken {
            name: name.into(),
            role,
            teams: teams.iter().map(|t| t.to_string()).collect(),
            max_raise: max.map(m),
            expires_at: Some(tg.clock.now() + TimeDelta::days(90)),
            created_by: "test".into(),
        })
        .await
        .unwrap()
        .secret
        .expose_secret()
        .to_owned()
}

async fn call(
    tg: &TestGateway,
    who: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let url = format!("{}{path}", tg.root_url());
    let mut req = match method {
        "GET" => tg.http.get(url),
        _ => tg.http.post(url),
    };
    if let Some(t) = who {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn role_by_action_matrix_through_the_admin_api(backend: Backend) {
    let tg = TestGateway::builder(backend)
        .budget(BudgetScope::Member, "alice", Window::Daily, "2")
        .budget(BudgetScope::Member, "carol", Window::Daily, "7.77")
        .budget(BudgetScope::Team, "core", Window::Monthly, "20")
        .budget(BudgetScope::Team, "web", Window::Monthly, "31.31")
        .budget(BudgetScope::Org, "acme", Window::Monthly, "100")
        .start()
        .await;
    for member in ["alice", "bob", "carol"] {
        let r = tg
            .chat(
                member,
                body("openai/gpt-4o-mini", "[[sim:tokens=20]]", Some(40)),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    tg.sync().await;
    let admin = token(&tg, "ops-admin", Role::Admin, &[], None).await;
    let viewer = token(&tg, "finance", Role::Viewer, &[], None).await;
    let lead = token(&tg, "core-lead", Role::TeamLead, &["core"], Some("5")).await;
    let alice = tg.key("alice").to_owned();
    let carol_key = tg
        .admin
        .directory()
        .virtual_keys
        .values()
        .find(|k| k.member_id == "carol")
        .unwrap()
        .id
        .clone();
    let creds: [Option<&str>; 6] = [
        Some(ADMIN_TOKEN),
        Some(&admin),
        Some(&viewer),
        Some(&lead),
        Some(&alice),
        None,
    ];
    let until = (tg.clock.now() + TimeDelta::hours(8)).to_rfc3339();
    let raise = |scope: &str, id: &str, amount: &str| json!({"scope": scope, "id": id, "window": "daily", "amount": amount, "until": until, "reason": "matrix"});
    let new_token = |n: usize| json!({"name": format!("made-{n}"), "role": "viewer"});
    // (action, method, path, body, expected status per column of WHO)
    let rows: Vec<MatrixRow> = vec![
        (
            "list members",
            "GET",
            "/admin/v1/members".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "view a member of core",
            "GET",
            "/admin/v1/members/bob".into(),
            None,
            [200, 200, 200, 200, 403, 401],
        ),
        (
            "view a member of web",
            "GET",
            "/admin/v1/members/carol".into(),
            None,
            [200, 200, 200, 403, 403, 401],
        ),
        (
            "view oneself",
            "GET",
            "/admin/v1/members/alice".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "list keys",
            "GET",
            "/admin/v1/keys".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "list budgets",
            "GET",
            "/admin/v1/budgets".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "usage, whole org",
            "GET",
            "/admin/v1/usage?by=member".into(),
            None,
            [200, 200, 200, 403, 200, 401],
        ),
        (
            "usage of team core",
            "GET",
            "/admin/v1/usage?team=core&by=member".into(),
            None,
            [200, 200, 200, 200, 403, 401],
        ),
        (
            "usage of team web",
            "GET",
            "/admin/v1/usage?team=web&by=member".into(),
            None,
            [200, 200, 200, 403, 403, 401],
        ),
        (
            "recent events",
            "GET",
            "/admin/v1/events".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "anomalies (org-wide)",
            "GET",
            "/admin/v1/anomalies".into(),
            None,
            [200, 200, 200, 403, 403, 401],
        ),
        (
            "dashboard (scoped to what one sees)",
            "GET",
            "/admin/v1/dashboard".into(),
            None,
            [200, 200, 200, 200, 200, 401],
        ),
        (
            "raise bob (core) by 1",
            "POST",
            "/admin/v1/budgets/raise".into(),
            Some(raise("member", "bob", "1")),
            [201, 201, 403, 201, 403, 401],
        ),
        (
            "raise bob by 6 (> lead cap 5)",
            "POST",
            "/admin/v1/budgets/raise".into(),
            Some(raise("member", "bob", "6")),
            [201, 201, 403, 403, 403, 401],
        ),
        (
            "raise carol (web)",
            "POST",
            "/admin/v1/budgets/raise".into(),
            Some(raise("member", "carol", "1")),
            [201, 201, 403, 403, 403, 401],
        ),
        (
            "raise the org",
            "POST",
            "/admin/v1/budgets/raise".into(),
            Some(raise("org", "acme", "1")),
            [201, 201, 403, 403, 403, 401],
        ),
        (
            "list tokens",
            "GET",
            "/admin/v1/tokens".into(),
            None,
            [200, 200, 403, 403, 403, 401],
        ),
        (
            "read the audit log",
            "GET",
            "/admin/v1/audit".into(),
            None,
            [200, 200, 200, 403, 403, 401],
        ),
        (
            "verify the audit log",
            "GET",
            "/admin/v1/audit/verify".into(),
            None,
            [200, 200, 200, 403, 403, 401],
        ),
        (
            "revoke a key of web",
            "POST",
            format!("/admin/v1/keys/{carol_key}/revoke"),
            None,
            [0, 200, 403, 403, 403, 401],
        ),
    ];
    let mut table = format!(
        "| action | {} |\n|---|{}\n",
        WHO.join(" | "),
        "---|".repeat(6)
    );
    let mut lead_saw = String::new();
    let mut member_saw = String::new();
    let mut failures = Vec::new();
    for (action, method, path, body, want) in &rows {
        let mut cells = Vec::new();
        for (i, cred) in creds.iter().enumerate() {
            if want[i] == 0 {
                cells.push("—".to_owned());
                continue;
            }
            // Token creation gets a fresh name per call.
            let (status, text) = call(&tg, *cred, method, path, body.as_ref()).await;
            if status != want[i] {
                failures.push(format!(
                    "{action} as {}: got {status}, want {}: {text}",
                    WHO[i], want[i]
                ));
            }
            if status == 403 || status == 401 {
                // Every refusal says why.
                let v: Value = serde_json::from_str(&text).unwrap();
                let msg = v["error"]["message"].as_str().unwrap_or_default();
                assert!(!msg.is_empty(), "{action} as {}: {text}", WHO[i]);
                if status == 403 {
                    assert!(msg.contains("may not") || msg.contains("only"), "{msg}");
                }
            }
            if i == 3 && status < 300 && *method == "GET" {
                lead_saw.push_str(&text);
            }
            if i == 4 && status < 300 && *method == "GET" {
                member_saw.push_str(&text);
            }
            cells.push(if status < 300 {
                format!("✓ {status}")
            } else {
                format!("✗ {status}")
            });
        }
        table.push_str(&format!("| {action} | {} |\n", cells.join(" | ")));
    }
    // Token creation: admins only (fresh names per caller).
    let mut cells = Vec::new();
    for (i, cred) in creds.iter().enumerate() {
        let (status, text) =
            call(&tg, *cred, "POST", "/admin/v1/tokens", Some(&new_token(i))).await;
        let want = [201, 201, 403, 403, 403, 401][i];
        if status != want {
            failures.push(format!(
                "create token as {}: got {status}, want {want}: {text}",
                WHO[i]
            ));
        }
        if status == 201 {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert!(v["secret"].as_str().unwrap().starts_with("ota-"), "{v}");
            assert!(v.get("token_hash").is_none(), "the hash never leaves: {v}");
        }
        cells.push(if status < 300 {
            format!("✓ {status}")
        } else {
            format!("✗ {status}")
        });
    }
    table.push_str(&format!("| create a token | {} |\n", cells.join(" | ")));
    println!("{table}");
    assert!(failures.is_empty(), "{}\n{table}", failures.join("\n"));

    // Nothing of team web reaches the core lead; nothing of others reaches alice.
    for leak in [
        "carol",
        "CAROL",
        "\"web\"",
        "7.77",
        "31.31",
        carol_key.as_str(),
    ] {
        assert!(!lead_saw.contains(leak), "{leak} leaked to the core lead");
    }
    for leak in ["bob", "carol", "\"web\"", "7.77", "31.31"] {
        assert!(!member_saw.contains(leak), "{leak} leaked to member alice");
    }
    // The org budget is org-wide: a lead does not see it.
    let (_, budgets) = call(&tg, Some(&lead), "GET", "/admin/v1/budgets", None).await;
    let budgets: Vec<Value> = serde_json::from_str(&budgets).unwrap();
    assert!(budgets.iter().all(|b| b["scope"] != "org"), "{budgets:?}");
    assert!(budgets.iter().any(|b| b["scope_id"] == "core"));
    // The dashboard's totals are computed from what each one sees.
    let (_, snap) = call(&tg, Some(&lead), "GET", "/admin/v1/dashboard", None).await;
    let snap: Value = serde_json::from_str(&snap).unwrap();
    let members: Vec<&str> = snap["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["alice", "bob"], "{snap:#}");
    assert_eq!(snap["totals"]["requests_today"], 2);
    let (_, snap) = call(&tg, Some(&alice), "GET", "/admin/v1/dashboard", None).await;
    let snap: Value = serde_json::from_str(&snap).unwrap();
    assert_eq!(snap["totals"]["requests_today"], 1, "{snap:#}");
    assert_eq!(snap["recent"].as_array().unwrap().len(), 1);
    let (_, snap) = call(&tg, Some(&viewer), "GET", "/admin/v1/dashboard", None).await;
    let snap: Value = serde_json::from_str(&snap).unwrap();
    assert_eq!(snap["totals"]["requests_today"], 3);

    // A revoked token and an expired one stop at once, each with its reason.
    let (s, _) = call(
        &tg,
        Some(ADMIN_TOKEN),
        "POST",
        "/admin/v1/tokens/finance/revoke",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, text) = call(&tg, Some(&viewer), "GET", "/admin/v1/members", None).await;
    assert_eq!(s, 401);
    assert!(
        text.contains("admin token \\\"finance\\\" has been revoked"),
        "{text}"
    );
    tg.clock.set_offset(TimeDelta::days(91));
    let (s, text) = call(&tg, Some(&lead), "GET", "/admin/v1/members", None).await;
    assert_eq!(s, 401);
    assert!(text.contains("has expired"), "{text}");
    let (s, text) = call(
        &tg,
        Some("ota-000000000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        "GET",
        "/admin/v1/members",
        None,
    )
    .await;
    assert_eq!(s, 401);
    assert!(text.contains("unknown admin token"), "{text}");
    tg.clock.set_offset(TimeDelta::zero());

    // Every change is in the audit log, with who and from where, and the chain holds.
    let entries = tg.admin.audit_entries().await.unwrap();
    let raises: Vec<_> = entries.iter().filter(|e| e.action == "raise").collect();
    // Allowed raises: bob 1 (bootstrap, admin, lead), bob 6 (bootstrap, admin), carol, org.
    assert_eq!(raises.len(), 3 + 2 + 2 + 2, "{raises:#?}");
    let by_lead = raises.iter().find(|e| e.actor == "core-lead").unwrap();
    assert_eq!(by_lead.target, "member:bob:daily");
    assert_eq!(by_lead.source.as_deref(), Some("127.0.0.1"));
    assert!(
        by_lead
            .before
            .as_deref()
            .unwrap()
            .contains("\"limit\":null"),
        "bob has no daily budget: {by_lead:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e.action == "revoke_key" && e.actor == "ops-admin")
    );
    assert!(
        entries
            .iter()
            .any(|e| e.action == "token_revoke" && e.actor == "bootstrap")
    );
    assert!(entries.iter().any(|e| e.action == "token_create"
        && e.target == "token:made-1"
        && e.actor == "ops-admin"));
    assert!(
        entries
            .iter()
            .filter(|e| e.action == "sign_in_failed")
            .count()
            >= 3
    );
    let report = tg.admin.verify_audit().await.unwrap();
    assert!(report.is_valid(), "{report:?}");
}

/// Revoking within one's team works for a team lead, and the member is gone at once.
#[tokio::test]
async fn a_team_lead_revokes_in_their_team_only() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    let lead = token(&tg, "core-lead", Role::TeamLead, &["core"], None).await;
    let (s, text) = call(
        &tg,
        Some(&lead),
        "POST",
        "/admin/v1/members/carol/revoke",
        None,
    )
    .await;
    assert_eq!(s, 403, "{text}");
    assert!(
        text.contains("core-lead (team_lead) may not revoke in team \\\"web\\\""),
        "{text}"
    );
    let (s, text) = call(
        &tg,
        Some(&lead),
        "POST",
        "/admin/v1/members/bob/revoke",
        None,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    tg.sync().await;
    let r = tg
        .chat("bob", body("openai/gpt-4o-mini", "", Some(10)))
        .await;
    assert_eq!(r.status(), 401);
    // No max_raise: a lead may not raise at all.
    let until = (tg.clock.now() + TimeDelta::hours(1)).to_rfc3339();
    let (s, text) = call(
        &tg,
        Some(&lead),
        "POST",
        "/admin/v1/budgets/raise",
        Some(&json!({"scope": "team", "id": "core", "window": "daily", "amount": "1", "until": until})),
    )
    .await;
    assert_eq!(s, 403);
    assert!(text.contains("no max_raise"), "{text}");
    let e = tg.admin.audit_entries().await.unwrap();
    assert!(e.iter().any(|e| e.action == "revoke_member"
        && e.actor == "core-lead"
        && e.target == "member:bob"));
}
