//! `orteam team plan|apply`, `keys rotate|list`, `member revoke`, `budget raise` end to end.

use orteam_ledger::AuthError;
use secrecy::SecretString;

use crate::support::{Backend, Env, both_backends, read_secrets};

const DAY: i64 = 86_400;

const BASE: &str = r#"
[org]
name = "acme"
budget = { monthly = "500.00" }

[tiers.basic]
models = ["openai/gpt-4o-mini"]
on_disallowed = "downgrade"
downgrade_to = "openai/gpt-4o-mini"

[tiers.enterprise]
models = "*"

[teams.backend]
budget = { monthly = "200.00" }

[[members]]
id = "alice"
team = "backend"
tier = "enterprise"
budget = { daily = "5.00", monthly = "50.00" }
key = { mode = "gateway", rotate_every = "30d", grace = "1h" }

[[members]]
id = "bob"
team = "backend"
tier = "basic"
key = { mode = "direct", limit = "25.00", limit_reset = "monthly", expires_in = "90d", rotate_every = "30d", grace = "1h" }
"#;

const CAROL: &str = r#"
[[members]]
id = "carol"
team = "backend"
tier = "basic"
key = { mode = "gateway", upstream = "own", limit = "10.00", limit_reset = "daily" }
"#;

fn team_with_carol() -> String {
    format!("{BASE}{CAROL}")
}

async fn apply(env: &Env, secrets: &str) -> crate::support::Out {
    let out = env
        .orteam(&["team", "apply", "--yes", "--secrets-out", secrets])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    out
}

async fn plan(env: &Env) -> crate::support::Out {
    env.orteam(&["team", "plan"]).await
}

fn secret_of(list: &[(String, String, String, String)], member: &str) -> String {
    list.iter()
        .rev()
        .find(|s| s.0 == member)
        .map(|s| s.3.clone())
        .unwrap_or_else(|| panic!("no secret for {member}"))
}

async fn auth(env: &Env, secret: &str) -> Result<String, AuthError> {
    let ledger = env.ledger().await;
    ledger.reload().await.unwrap();
    let r = ledger
        .authenticate(&SecretString::from(secret.to_owned()))
        .map(|c| c.member_id);
    ledger.shutdown().await.unwrap();
    r
}

both_backends!(
    plan_apply_is_idempotent,
    plan_shows_old_and_new_values,
    removed_member_loses_both_keys,
    member_revoke_is_immediate,
    rotation_keeps_the_old_key_for_the_grace,
    failed_create_half_way_is_completed_by_the_next_apply,
    bad_input_changes_nothing,
    budget_raise_and_strays,
    secrets_are_shown_once_and_never_logged,
    rotate_due_works_without_the_team_file,
);

async fn plan_apply_is_idempotent(backend: Backend) {
    let env = Env::new(backend).await;
    env.write_team(&team_with_carol());

    let p = plan(&env).await;
    assert_eq!(p.code, 2, "{p:?}");
    for needle in [
        "+ create  org",
        "tier",
        "member        alice",
        "virtual key",
        "upstream key  bob",
        "name: orteam:acme:bob:1",
        "limit: 25",
    ] {
        assert!(
            p.stdout.contains(needle),
            "{needle:?} missing:\n{}",
            p.stdout
        );
    }
    let json = env.orteam(&["team", "plan", "--format", "json"]).await;
    assert_eq!(json.code, 2, "{json:?}");
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(v["summary"]["create"].as_u64().unwrap() >= 10);

    let secrets = env.path("secrets.jsonl");
    let secrets_arg = secrets.to_str().unwrap();
    apply(&env, secrets_arg).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let list = read_secrets(&secrets);
    // alice and carol: gateway keys; bob: his OpenRouter key. carol's own upstream key is held
    // by the gateway and never shown.
    let mut who: Vec<(&str, &str)> = list.iter().map(|s| (s.0.as_str(), s.1.as_str())).collect();
    who.sort();
    assert_eq!(
        who,
        vec![
            ("alice", "virtual"),
            ("bob", "direct"),
            ("carol", "virtual")
        ]
    );
    assert_eq!(
        auth(&env, &secret_of(&list, "alice")).await,
        Ok("alice".into())
    );
    assert_eq!(
        auth(&env, &secret_of(&list, "carol")).await,
        Ok("carol".into())
    );
    let keys = env.sim_keys().await;
    let mut names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["orteam:acme:bob:1", "orteam:acme:carol:1"]);
    let bob = keys.iter().find(|k| k.name == "orteam:acme:bob:1").unwrap();
    assert_eq!(bob.limit.unwrap().to_string(), "25");
    assert!(bob.expires_at.is_some());

    // The gateway holds carol's upstream secret.
    let ledger = env.ledger().await;
    let ctx = ledger
        .authenticate(&SecretString::from(secret_of(&list, "carol")))
        .unwrap();
    let up = ctx.upstream.expect("carol's upstream key");
    assert!(up.secret.is_some());
    ledger.shutdown().await.unwrap();

    // Idempotent: nothing left to do.
    let p = plan(&env).await;
    assert_eq!(p.code, 0, "{p:?}");
    assert!(p.stdout.contains("No changes"), "{p:?}");
    let again = apply(&env, secrets_arg).await;
    assert!(again.stdout.contains("No changes"), "{again:?}");
    assert_eq!(read_secrets(&secrets).len(), 3);
    assert_eq!(env.sim_keys().await.len(), 2);

    // keys list shows the rotation due date.
    let kl = env.orteam(&["keys", "list"]).await;
    assert_eq!(kl.code, 0, "{kl:?}");
    assert!(kl.stdout.contains("rotation due"), "{kl:?}");
    assert!(kl.stdout.contains("orteam:acme:bob:1"), "{kl:?}");

    let all: Vec<String> = list.iter().map(|s| s.3.clone()).collect();
    env.assert_secrets_hidden(&all);
}

async fn plan_shows_old_and_new_values(backend: Backend) {
    let env = Env::new(backend).await;
    env.write_team(BASE);
    let secrets = env.path("s.jsonl");
    apply(&env, secrets.to_str().unwrap()).await;

    let changed = BASE
        .replace(
            "budget = { daily = \"5.00\", monthly = \"50.00\" }",
            "budget = { daily = \"7.50\", monthly = \"50.00\" }",
        )
        .replace(
            "tier = \"enterprise\"\nbudget",
            "tier = \"basic\"\nbudget",
        )
        .replace(
            "models = [\"openai/gpt-4o-mini\"]",
            "models = [\"openai/gpt-4o-mini\", \"openai/gpt-4o\"]\nrate_limit = { requests_per_minute = 60 }",
        )
        .replace("limit = \"25.00\"", "limit = \"30.00\"");
    env.write_team(&changed);
    let p = plan(&env).await;
    assert_eq!(p.code, 2, "{p:?}");
    for needle in [
        "~ update  budget",
        "member alice daily",
        "limit: 5 → 7.5",
        "~ update  member",
        "tier: enterprise → basic",
        "~ update  tier",
        "models: openai/gpt-4o-mini → openai/gpt-4o-mini, openai/gpt-4o",
        "limit: 25 → 30",
        "requests_per_minute: unlimited → 60",
    ] {
        assert!(
            p.stdout.contains(needle),
            "{needle:?} missing:\n{}",
            p.stdout
        );
    }
    let json = env.orteam(&["team", "plan", "--format", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let budget = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"] == "budget")
        .unwrap();
    assert_eq!(budget["action"], "update");
    assert_eq!(budget["fields"][0]["old"], "5");
    assert_eq!(budget["fields"][0]["new"], "7.5");

    apply(&env, secrets.to_str().unwrap()).await;
    assert_eq!(plan(&env).await.code, 0);
    let ledger = env.ledger().await;
    let dir = ledger.directory();
    assert_eq!(dir.members["alice"].tier_id, "basic");
    assert_eq!(dir.tiers["basic"].requests_per_minute, Some(60));
    let key = env
        .sim_keys()
        .await
        .into_iter()
        .find(|k| k.name == "orteam:acme:bob:1")
        .unwrap();
    assert_eq!(key.limit.unwrap().to_string(), "30");
    ledger.shutdown().await.unwrap();
    // No new key was issued for an update.
    assert_eq!(read_secrets(&secrets).len(), 2);
}

async fn removed_member_loses_both_keys(backend: Backend) {
    let env = Env::new(backend).await;
    env.write_team(&team_with_carol());
    let secrets = env.path("s.jsonl");
    apply(&env, secrets.to_str().unwrap()).await;
    let carol = secret_of(&read_secrets(&secrets), "carol");
    assert_eq!(auth(&env, &carol).await, Ok("carol".into()));
    assert!(
        env.sim_keys()
            .await
            .iter()
            .any(|k| k.name == "orteam:acme:carol:1")
    );

    env.write_team(BASE);
    let p = plan(&env).await;
    assert_eq!(p.code, 2, "{p:?}");
    assert!(p.stdout.contains("- revoke  member"), "{p:?}");
    assert!(p.stdout.contains("carol"), "{p:?}");
    apply(&env, secrets.to_str().unwrap()).await;

    let err = auth(&env, &carol).await.unwrap_err();
    assert!(
        matches!(err, AuthError::Revoked | AuthError::MemberRemoved),
        "{err:?}"
    );
    let keys = env.sim_keys().await;
    assert!(!keys.iter().any(|k| k.name.contains("carol")), "{keys:?}");
    assert_eq!(keys.len(), 1);
    assert_eq!(plan(&env).await.code, 0);
}

async fn member_revoke_is_immediate(backend: Backend) {
    let env = Env::new(backend).await;
    env.write_team(BASE);
    let secrets = env.path("s.jsonl");
    apply(&env, secrets.to_str().unwrap()).await;
    let list = read_secrets(&secrets);
    let alice = secret_of(&list, "alice");
    let bob = secret_of(&list, "bob");

    // A serving-style handle opened before the revocation sees it within a second.
    let watcher = env.ledger().await;
    assert!(
        watcher
            .authenticate(&SecretString::from(alice.clone()))
            .is_ok()
    );

    let out = env.orteam(&["member", "revoke", "alice", "--yes"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("1 gateway key revoked"), "{out:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        watcher.refresh_if_changed().await.unwrap();
        if watcher
            .authenticate(&SecretString::from(alice.clone()))
            .is_err()
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "revocation not seen");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    watcher.shutdown().await.unwrap();

    let out = env.orteam(&["member", "revoke", "bob", "--yes"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("1 OpenRouter key deleted"), "{out:?}");
    assert!(env.sim_keys().await.is_empty());
    // bob's own OpenRouter key no longer works at OpenRouter.
    let bob_client = env.client().with_api_key(SecretString::from(bob.clone()));
    assert!(
        bob_client
            .current_key()
            .await
            .unwrap_err()
            .is_unauthorized()
    );

    let unknown = env.orteam(&["member", "revoke", "nobody", "--yes"]).await;
    assert_ne!(unknown.code, 0);
    assert!(unknown.error_line().contains("unknown member \"nobody\""));
    env.assert_secrets_hidden(&[alice, bob]);
}

async fn rotation_keeps_the_old_key_for_the_grace(backend: Backend) {
    let env = Env::new(backend).await;
    env.write_team(BASE);
    let secrets = env.path("s.jsonl");
    let s = secrets.to_str().unwrap();
    apply(&env, s).await;
    let first = read_secrets(&secrets);
    let alice1 = secret_of(&first, "alice");
    let bob1 = secret_of(&first, "bob");

    // 31 days later both keys are due.
    env.set_offset(31 * DAY);
    let p = plan(&env).await;
    assert_eq!(p.code, 2, "{p:?}");
    assert!(p.stdout.contains("~ rotate"), "{p:?}");
    assert!(
        p.stdout
            .contains("name: orteam:acme:bob:1 → orteam:acme:bob:2"),
        "{p:?}"
    );
    apply(&env, s).await;
    let second = read_secrets(&secrets);
    assert_eq!(second.len(), 4);
    let alice2 = secret_of(&second, "alice");
    let bob2 = secret_of(&second, "bob");
    assert_ne!(alice1, alice2);
    // Within the grace both keys work, at the gateway and at OpenRouter.
    assert_eq!(auth(&env, &alice1).await, Ok("alice".into()));
    assert_eq!(auth(&env, &alice2).await, Ok("alice".into()));
    let keys = env.sim_keys().await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let c = env.client();
    assert!(
        c.with_api_key(SecretString::from(bob1.clone()))
            .current_key()
            .await
            .is_ok()
    );
    assert!(
        c.with_api_key(SecretString::from(bob2.clone()))
            .current_key()
            .await
            .is_ok()
    );
    assert_eq!(plan(&env).await.code, 0, "nothing to do during the grace");

    // After the grace (1h) the old keys are disabled and deleted.
    env.set_offset(31 * DAY + 2 * 3600);
    assert_eq!(auth(&env, &alice1).await.unwrap_err(), AuthError::Expired);
    let p = plan(&env).await;
    assert_eq!(p.code, 2, "{p:?}");
    assert!(p.stdout.contains("grace ended"), "{p:?}");
    apply(&env, s).await;
    assert_eq!(auth(&env, &alice1).await.unwrap_err(), AuthError::Revoked);
    assert_eq!(auth(&env, &alice2).await, Ok("alice".into()));
    let keys = env.sim_keys().await;
    let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, vec!["orteam:acme:bob:2"]);
    assert!(
        c.with_api_key(SecretString::from(bob1.clone()))
            .current_key()
            .await
            .is_err()
    );
    assert_eq!(plan(&env).await.code, 0);

    // A manual rotation, with its own grace; keys list shows the new generation.
    let out = env
        .orteam(&[
            "keys",
            "rotate",
            "alice",
            "--grace",
            "10m",
            "--secrets-out",
            s,
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let third = read_secrets(&secrets);
    let alice3 = secret_of(&third, "alice");
    assert_eq!(auth(&env, &alice2).await, Ok("alice".into()));
    assert_eq!(auth(&env, &alice3).await, Ok("alice".into()));
    env.set_offset(31 * DAY + 2 * 3600 + 11 * 60);
    assert!(auth(&env, &alice2).await.is_err());
    assert_eq!(auth(&env, &alice3).await, Ok("alice".into()));
    let kl = env.orteam(&["keys", "list", "--format", "json"]).await;
    let rows: serde_json::Value = serde_json::from_str(&kl.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["member"] == "alice" && r["generation"] == 3 && r["state"] == "active"),
        "{kl:?}"
    );
    let out = env
        .orteam(&["keys", "rotate", "bob", "--secrets-out", s])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(env.sim_keys().await.len(), 2);

    let all: Vec<String> = read_secrets(&secrets).into_iter().map(|s| s.3).collect();
    env.assert_secrets_hidden(&all);
}

async fn failed_create_half_way_is_completed_by_the_next_apply(backend: Backend) {
    use orteam_test_support::{Fault, FaultRule};
    let env = Env::new(backend).await;
    let dave = r#"
[[members]]
id = "dave"
team = "backend"
tier = "basic"
key = { mode = "direct", limit = "5.00" }
"#;
    env.write_team(&format!("{BASE}{CAROL}{dave}"));
    let secrets = env.path("s.jsonl");
    let s = secrets.to_str().unwrap();

    // The second POST /keys fails with a 500: bob's key is made, carol's is not, dave's is
    // never tried.
    env.sim.set_faults(vec![FaultRule {
        method: Some("POST".into()),
        path_prefix: Some("/api/v1/keys".into()),
        times: Some(1),
        fault: Fault::Status {
            status: 500,
            retry_after: None,
            message: None,
        },
    }]);
    let out = env
        .orteam(&["team", "apply", "--yes", "--secrets-out", s])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    let line = out.error_line();
    assert!(line.contains("creating key"), "{line}");
    assert!(line.contains("run `orteam team apply` again"), "{line}");
    assert_eq!(env.sim.request_count("POST", "/api/v1/keys"), 1);
    assert!(env.sim_keys().await.is_empty());

    // Worse: a key whose creation went through but whose response was lost (as a 5xx after
    // the fact would leave it), with the name the next apply would use.
    let (_lost_secret, lost_hash) = env.sim.create_key("orteam:acme:bob:1", None, None);

    let p = plan(&env).await;
    assert_eq!(p.code, 2, "{p:?}");
    assert!(p.stdout.contains("orphan"), "{p:?}");
    apply(&env, s).await;
    let keys = env.sim_keys().await;
    let mut names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    names.sort();
    // No orphan, no duplicate: one key per member that needs one.
    assert_eq!(
        names,
        vec![
            "orteam:acme:bob:2",
            "orteam:acme:carol:1",
            "orteam:acme:dave:1"
        ],
        "{keys:?}"
    );
    assert!(!keys.iter().any(|k| k.hash == lost_hash));
    let ledger = env.ledger().await;
    let recorded: Vec<String> = ledger
        .directory()
        .upstream_keys
        .iter()
        .map(|k| k.key_hash.clone())
        .collect();
    ledger.shutdown().await.unwrap();
    assert_eq!(recorded.len(), 3);
    for k in &keys {
        assert!(recorded.contains(&k.hash), "{} not recorded", k.name);
    }
    // Every recorded direct key's secret was delivered.
    let list = read_secrets(&secrets);
    assert_eq!(list.iter().filter(|s| s.1 == "direct").count(), 2);
    assert_eq!(plan(&env).await.code, 0);
}

async fn bad_input_changes_nothing(backend: Backend) {
    let env = Env::new(backend).await;
    env.write_team(BASE);
    let secrets = env.path("s.jsonl");
    apply(&env, secrets.to_str().unwrap()).await;
    let keys_before = env.sim_keys().await.len();
    let posts_before = env.sim.request_count("POST", "/api/v1/keys");

    let with_carol = format!("{BASE}{CAROL}");
    let cases: Vec<(String, &str)> = vec![
        (
            with_carol.replace(
                "tier = \"basic\"\nkey = { mode = \"gateway\"",
                "tier = \"pro\"\nkey = { mode = \"gateway\"",
            ),
            "unknown tier \"pro\"",
        ),
        (
            with_carol.replace(
                "id = \"carol\"\nteam = \"backend\"",
                "id = \"carol\"\nteam = \"frontend\"",
            ),
            "unknown team \"frontend\"",
        ),
        (
            with_carol.replace("id = \"carol\"", "id = \"alice\""),
            "duplicate member \"alice\"",
        ),
        (
            BASE.replace("monthly = \"200.00\"", "monthly = \"-200.00\""),
            "must not be negative",
        ),
        (
            BASE.replace("monthly = \"200.00\"", "monthly = \"lots\""),
            "not a decimal amount",
        ),
        (
            BASE.replace("monthly = \"200.00\"", "monthly = 200.5"),
            "decimal strings",
        ),
        (
            BASE.replace(
                "models = [\"openai/gpt-4o-mini\"]",
                "models = [\"openai/gpt-4o-mini\", \"openai/gpt-5-ultra-nonexistent\"]",
            ),
            "unknown model \"openai/gpt-5-ultra-nonexistent\"",
        ),
    ];
    for (text, needle) in &cases {
        env.write_team(text);
        for args in [&["team", "plan"][..], &["team", "apply", "--yes"][..]] {
            let out = env.orteam(args).await;
            assert_eq!(out.code, 1, "{needle}: {out:?}");
            let line = out.error_line();
            assert!(line.contains(needle), "{needle:?} not in {line:?}");
        }
    }

    env.write_team(&with_carol);
    // No provisioning key.
    let out = env
        .orteam_with(
            &["team", "apply", "--yes"],
            &[],
            &["OPENROUTER_PROVISIONING_KEY"],
        )
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.error_line().contains("no OpenRouter provisioning key"),
        "{out:?}"
    );
    assert!(
        out.error_line()
            .contains("openrouter.ai/settings/provisioning")
    );
    // An inference key where a management key is needed.
    let (inference, _) = env.sim.create_key("someone's inference key", None, None);
    let out = env
        .orteam_with(
            &["team", "apply", "--yes"],
            &[("OPENROUTER_PROVISIONING_KEY", inference.as_str())],
            &[],
        )
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    let line = out.error_line();
    assert!(
        line.contains("inference (API) key, not a management key"),
        "{line}"
    );
    assert!(line.contains("Management keys are separate"), "{line}");
    // Without --yes and without a terminal, apply refuses.
    let out = env.orteam(&["team", "apply"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.error_line().contains("refusing to apply without --yes"));

    // Nothing changed: the original file still plans clean (the stray inference key aside).
    env.write_team(BASE);
    let p = plan(&env).await;
    assert_eq!(p.code, 0, "{p:?}");
    assert!(p.stdout.contains("Stray OpenRouter keys"), "{p:?}");
    let ledger = env.ledger().await;
    assert!(!ledger.directory().members.contains_key("carol"));
    ledger.shutdown().await.unwrap();
    assert_eq!(env.sim_keys().await.len(), keys_before + 1);
    assert_eq!(env.sim.request_count("POST", "/api/v1/keys"), posts_before);
    env.assert_secrets_hidden(&[inference]);
}

async fn budget_raise_and_strays(backend: Backend) {
    let env = Env::new(backend).await;
    let kept = env.sim.create_key("team shared key", None, None);
    let stray = env.sim.create_key("forgotten script key", None, None);
    env.write_team(&BASE.replace(
        "name = \"acme\"",
        "name = \"acme\"\nkeep_keys = [\"team shared key\"]",
    ));
    let secrets = env.path("s.jsonl");
    apply(&env, secrets.to_str().unwrap()).await;

    // A temporary raise.
    let out = env
        .orteam(&[
            "budget", "raise", "alice", "10.00", "--window", "daily", "--until", "8h", "--reason",
            "demo day",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("by $10.00"), "{out:?}");
    let ledger = env.ledger().await;
    let st = ledger.budget_status("alice").await.unwrap();
    let daily = st
        .iter()
        .find(|s| {
            s.scope == orteam_ledger::BudgetScope::Member
                && s.window == orteam_ledger::Window::Daily
        })
        .unwrap();
    assert_eq!(daily.limit.to_string(), "15");
    ledger.shutdown().await.unwrap();
    let out = env
        .orteam(&[
            "budget",
            "raise",
            "backend",
            "50",
            "--window",
            "monthly",
            "--until",
            "2099-01-01T00:00:00Z",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    for (args, needle) in [
        (
            vec![
                "budget", "raise", "nobody", "1", "--window", "daily", "--until", "1h",
            ],
            "unknown member or team",
        ),
        (
            vec![
                "budget", "raise", "alice", "-1", "--window", "daily", "--until", "1h",
            ],
            "positive",
        ),
        (
            vec![
                "budget", "raise", "alice", "ten", "--window", "daily", "--until", "1h",
            ],
            "not a decimal amount",
        ),
        (
            vec![
                "budget", "raise", "alice", "1", "--window", "daily", "--until", "soon",
            ],
            "--until",
        ),
    ] {
        let out = env.orteam(&args).await;
        assert_ne!(out.code, 0, "{out:?}");
        assert!(out.error_line().contains(needle), "{needle}: {out:?}");
    }

    // The plan shows the raises, the stray (not the kept key), and unused keys.
    let p = env.orteam(&["team", "plan", "--unused-days", "0"]).await;
    assert_eq!(p.code, 0, "{p:?}");
    assert!(p.stdout.contains("Active temporary raises"), "{p:?}");
    assert!(
        p.stdout.contains("+$10.00") && p.stdout.contains("demo day"),
        "{p:?}"
    );
    assert!(p.stdout.contains("forgotten script key"), "{p:?}");
    assert!(!p.stdout.contains("team shared key"), "{p:?}");
    assert!(p.stdout.contains("Keys unused for 0+ days"), "{p:?}");

    // --prune deletes strays only when asked.
    let p = env.orteam(&["team", "plan", "--prune"]).await;
    assert_eq!(p.code, 2, "{p:?}");
    let out = env
        .orteam(&[
            "team",
            "apply",
            "--yes",
            "--prune",
            "--secrets-out",
            secrets.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let keys = env.sim_keys().await;
    assert!(keys.iter().any(|k| k.hash == kept.1));
    assert!(!keys.iter().any(|k| k.hash == stray.1));
    assert_eq!(env.orteam(&["team", "plan", "--prune"]).await.code, 0);
    env.assert_secrets_hidden(&[kept.0, stray.0]);
}

async fn secrets_are_shown_once_and_never_logged(backend: Backend) {
    let env = Env::new(backend).await;
    env.write_team(&team_with_carol());
    // Debug logging everywhere: still no secret on stderr.
    let out = env
        .orteam_with(
            &["-vv", "team", "apply", "--yes"],
            &[("ORTEAM_LOG", "debug")],
            &[],
        )
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let shown: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("new "))
        .collect();
    assert_eq!(shown.len(), 3, "{out:?}");
    let secrets: Vec<String> = shown
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        .collect();
    for s in &secrets {
        assert!(s.starts_with("ot-") || s.starts_with("sk-or-v1-"), "{s}");
        assert_eq!(out.stdout.matches(s.as_str()).count(), 1, "shown once");
        assert!(!out.stderr.contains(s.as_str()), "secret in the logs");
    }
    // Plans, lists and later runs never show them again.
    env.transcript.lock().unwrap().clear();
    for args in [
        &["-vv", "team", "plan"][..],
        &["-vv", "team", "plan", "--format", "json"][..],
        &["-vv", "team", "apply", "--yes"][..],
        &["-vv", "keys", "list"][..],
        &["-vv", "keys", "list", "--format", "json", "--all"][..],
    ] {
        let out = env.orteam_with(args, &[("ORTEAM_LOG", "debug")], &[]).await;
        assert_eq!(out.code, 0, "{out:?}");
    }
    env.assert_secrets_hidden(&secrets);
}

/// What `orteam serve` calls: rotations due under the policy in each key's label, without the
/// team file, and the retirement of old keys after their grace.
async fn rotate_due_works_without_the_team_file(backend: Backend) {
    use orteam_core::Clock;
    let env = Env::new(backend).await;
    env.write_team(BASE);
    let secrets = env.path("s.jsonl");
    apply(&env, secrets.to_str().unwrap()).await;
    let first = read_secrets(&secrets);

    env.set_offset(31 * DAY);
    let ledger = env.ledger().await;
    let clock = orteam_core::ControllableClock::new();
    clock.set_offset(chrono::TimeDelta::seconds(31 * DAY));
    let client = env.client();
    let rotated = orteam_team::rotate_due(&ledger, &client, clock.now())
        .await
        .unwrap();
    let mut who: Vec<&str> = rotated.iter().map(|r| r.member.as_str()).collect();
    who.sort();
    assert_eq!(who, vec!["alice", "bob"]);
    let alice_new = rotated
        .iter()
        .find(|r| r.member == "alice")
        .and_then(|r| r.secret.clone())
        .unwrap();
    assert!(
        ledger
            .authenticate(&alice_new)
            .is_ok_and(|c| c.member_id == "alice")
    );
    assert!(
        ledger
            .authenticate(&SecretString::from(secret_of(&first, "alice")))
            .is_ok()
    );
    assert_eq!(env.sim_keys().await.len(), 2);
    // Nothing more is due, and the file agrees.
    assert!(
        orteam_team::rotate_due(&ledger, &client, clock.now())
            .await
            .unwrap()
            .is_empty()
    );
    ledger.shutdown().await.unwrap();
    assert_eq!(plan(&env).await.code, 0);

    // After the grace, rotate_due retires the old keys.
    env.set_offset(31 * DAY + 2 * 3600);
    let ledger = env.ledger().await;
    let now = clock.now() + chrono::TimeDelta::seconds(2 * 3600);
    assert!(
        orteam_team::rotate_due(&ledger, &client, now)
            .await
            .unwrap()
            .is_empty()
    );
    ledger.shutdown().await.unwrap();
    let names: Vec<String> = env.sim_keys().await.into_iter().map(|k| k.name).collect();
    assert_eq!(names, vec!["orteam:acme:bob:2".to_owned()]);
    assert_eq!(
        auth(&env, &secret_of(&first, "alice")).await.unwrap_err(),
        AuthError::Revoked
    );
    assert_eq!(plan(&env).await.code, 0);
}

/// A running `orteam serve` rotates keys that are due and writes the new secrets to its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_rotates_due_keys() {
    let env = Env::new(Backend::Sqlite).await;
    env.write_team(BASE);
    let secrets = env.path("s.jsonl");
    apply(&env, secrets.to_str().unwrap()).await;
    let alice1 = secret_of(&read_secrets(&secrets), "alice");
    env.set_offset(31 * DAY);
    let rotated = env.path("rotated.jsonl");
    let (shared, _) = env.sim.create_key("orteam-shared", None, None);
    let mut serve = tokio::process::Command::new(crate::support::bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--rotation-interval",
            "1s",
        ])
        .arg("--rotation-secrets-out")
        .arg(&rotated)
        .env_remove("ORTEAM_LOG")
        .env("OPENROUTER_BASE_URL", env.sim.base_url())
        .env("OPENROUTER_PROVISIONING_KEY", env.sim.provisioning_key())
        .env("OPENROUTER_API_KEY", shared)
        .env("ORTEAM_DATABASE_URL", &env.db_url)
        .env("ORTEAM_SECRET_KEY", &env.secret_key)
        .env("ORTEAM_CLOCK_OFFSET_SECONDS", (31 * DAY).to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut alice2 = None;
    for _ in 0..150 {
        if let Some(s) = read_secrets(&rotated).iter().find(|s| s.0 == "alice") {
            alice2 = Some(s.3.clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let alice2 = alice2.expect("serve rotated alice's key within 15 s");
    serve.kill().await.unwrap();
    assert_ne!(alice1, alice2);
    assert_eq!(auth(&env, &alice2).await, Ok("alice".into()));
    assert_eq!(
        auth(&env, &alice1).await,
        Ok("alice".into()),
        "the old key works during the grace"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&rotated).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

/// `orteam serve --alerts-from team.toml` sends a budget alert when a threshold is crossed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sends_budget_alerts() {
    let env = Env::new(Backend::Sqlite).await;
    let rx = orteam_test_support::WebhookReceiver::start().await;
    let hook = &rx.url;
    let team = BASE.replace(
        "budget = { daily = \"5.00\", monthly = \"50.00\" }",
        "budget = { daily = \"0.0002\", monthly = \"50.00\" }",
    ) + &format!("\n[alerts]\nwebhooks = [\"{hook}\"]\nthresholds = [50]\n");
    let team_path = env.write_team(&team);
    let secrets = env.path("s.jsonl");
    apply(&env, secrets.to_str().unwrap()).await;
    let alice = secret_of(&read_secrets(&secrets), "alice");
    let (shared, _) = env.sim.create_key("orteam-shared", None, None);
    let mut serve = tokio::process::Command::new(crate::support::bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--alerts-interval",
            "200ms",
        ])
        .arg("--alerts-from")
        .arg(&team_path)
        .env_remove("ORTEAM_LOG")
        .env("OPENROUTER_BASE_URL", env.sim.base_url())
        .env("OPENROUTER_API_KEY", shared)
        .env("ORTEAM_DATABASE_URL", &env.db_url)
        .env("ORTEAM_SECRET_KEY", &env.secret_key)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(serve.stdout.take().unwrap()).lines();
    let base = lines.next_line().await.unwrap().unwrap();
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let _ = http
            .post(format!("{base}/chat/completions"))
            .bearer_auth(&alice)
            .json(
                &serde_json::json!({"model": "openai/gpt-4o-mini", "max_tokens": 50,
                "messages": [{"role": "user", "content": "hi [[sim:tokens=50]]"}]}),
            )
            .send()
            .await
            .unwrap()
            .bytes()
            .await;
    }
    let body = rx.first().await;
    serve.kill().await.unwrap();
    let v = body.expect("a budget alert reached the webhook").body;
    assert!(
        v["id"]
            .as_str()
            .unwrap()
            .starts_with("budget:member:alice:daily:"),
        "{v}"
    );
}
