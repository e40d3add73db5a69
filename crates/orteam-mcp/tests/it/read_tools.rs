//! The 16 read tools: listing, valid calls, bad input, upstream failures, key handling.

use orteam_core::Window;
use orteam_mcp::{READ_TOOLS, WRITE_TOOLS};
use orteam_openrouter::types::guardrails::CreateGuardrailRequest;
use serde_json::json;

use crate::common::{Mcp, start, start_with};

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn read_only_lists_only_the_16_read_tools() {
    let mcp = start(false).await;
    assert_eq!(mcp.tool_names().await, sorted(&READ_TOOLS));
    let tools = mcp.client.list_all_tools().await.unwrap();
    for t in &tools {
        let d = t.description.as_deref().unwrap_or_default();
        assert!(d.len() > 60, "{} needs a useful description: {d:?}", t.name);
        assert_eq!(
            t.input_schema.get("type"),
            Some(&json!("object")),
            "{}",
            t.name
        );
        let ann = t.annotations.as_ref().expect("annotations");
        assert_eq!(ann.read_only_hint, Some(true), "{}", t.name);
    }
    // Inputs carry descriptions and constraints.
    let activity = tools.iter().find(|t| t.name == "or_activity").unwrap();
    let schema = serde_json::to_string(&activity.input_schema).unwrap();
    for needle in [
        "by_key",
        "by_provider",
        "api_key_hash",
        "YYYY-MM-DD",
        "\"pattern\"",
    ] {
        assert!(
            schema.contains(needle),
            "or_activity schema lacks {needle}: {schema}"
        );
    }
    let get = tools.iter().find(|t| t.name == "or_key_get").unwrap();
    assert_eq!(get.input_schema.get("required"), Some(&json!(["hash"])));
}

#[tokio::test]
async fn write_mode_lists_all_26_tools() {
    let mcp = start(true).await;
    let mut all: Vec<&str> = READ_TOOLS.to_vec();
    all.extend(WRITE_TOOLS);
    assert_eq!(mcp.tool_names().await, sorted(&all));
    let tools = mcp.client.list_all_tools().await.unwrap();
    let create = tools.iter().find(|t| t.name == "or_key_create").unwrap();
    let ann = create.annotations.as_ref().unwrap();
    assert_eq!(ann.read_only_hint, Some(false));
    let schema = serde_json::to_string(&create.input_schema).unwrap();
    for needle in [
        "limit_reset",
        "daily",
        "weekly",
        "monthly",
        "expires_at",
        "\"minimum\":0",
    ] {
        assert!(
            schema.contains(needle),
            "or_key_create schema lacks {needle}: {schema}"
        );
    }
}

/// Two keys with traffic on a completed day, one guardrail assigned to a key and a member.
async fn populated() -> (Mcp, Fixture) {
    let mcp = start(false).await;
    let (alice_secret, alice) = mcp.create_key("alice", Some("5"), Some(Window::Daily));
    let (bob_secret, bob) = mcp.create_key("bob", None, None);
    let mut gens = mcp.traffic(&alice_secret, "openai/gpt-4o", 3).await;
    gens.extend(mcp.traffic(&alice_secret, "openai/gpt-4o-mini", 1).await);
    gens.extend(
        mcp.traffic(&bob_secret, "anthropic/claude-3.5-sonnet", 2)
            .await,
    );
    mcp.next_day();
    let admin = mcp.admin();
    let mut req = CreateGuardrailRequest::new("team-daily");
    req.limit_usd = Some(orteam_core::Money::parse("50").unwrap());
    req.reset_interval = Some(Window::Daily);
    req.allowed_providers = Some(vec!["OpenAI".into(), "Anthropic".into()]);
    req.enforce_zdr = Some(true);
    let g = admin.create_guardrail(&req).await.unwrap();
    admin
        .assign_keys(&g.id, std::slice::from_ref(&bob))
        .await
        .unwrap();
    admin
        .assign_members(&g.id, &["user_2vK8sQ3mGraceHopper0002".to_owned()])
        .await
        .unwrap();
    (
        mcp,
        Fixture {
            alice,
            bob,
            guardrail: g.id,
            generation: gens[0].clone(),
        },
    )
}

struct Fixture {
    alice: String,
    bob: String,
    guardrail: String,
    generation: String,
}

#[tokio::test]
async fn every_read_tool_answers_valid_input() {
    let (mcp, f) = populated().await;
    let admin = mcp.admin();
    let alice = admin.get_key(&f.alice).await.unwrap();
    let bob = admin.get_key(&f.bob).await.unwrap();

    let t = mcp.ok("or_overview", json!({})).await;
    assert!(t.starts_with("Account: $"), "{t}");
    assert!(t.contains("purchased (used $"), "{t}");
    assert!(t.contains("Keys (2 active):"), "{t}");
    assert!(
        t.contains("  - bob: $") && t.contains("used (no limit)"),
        "{t}"
    );
    // alice's limit is daily: her spend is shown for the current day (0 after midnight).
    assert!(t.contains("  - alice: $0.00/$5.00 daily"), "{t}");
    assert!(t.contains("Last completed UTC day ("), "{t}");
    assert!(t.contains("openai/gpt-4o"), "{t}");

    let t = mcp.ok("or_credits", json!({})).await;
    assert!(
        t.starts_with("Credits:\n- Purchased: $100.0000\n- Used: $"),
        "{t}"
    );
    assert!(t.contains("\n- Remaining: $"), "{t}");

    let t = mcp.ok("or_current_key", json!({})).await;
    assert!(t.contains("Type: management"), "{t}");
    assert!(t.contains("Usage: total="), "{t}");

    let t = mcp.ok("or_keys_list", json!({})).await;
    assert!(t.starts_with("Keys (2):\n\n- **"), "{t}");
    assert!(t.contains("- **alice** | usage $"), "{t}");
    assert!(t.contains("| limit $5.00 daily, remaining $5.00 |"), "{t}");
    assert!(t.contains(&format!("hash: `{}`", f.bob)), "{t}");
    assert!(t.contains("| no limit |"), "{t}");

    let t = mcp.ok("or_key_get", json!({ "hash": f.alice })).await;
    assert!(t.starts_with("Name: alice\nLabel: sk-or-v1-"), "{t}");
    assert!(t.contains(&format!("Hash: {}", f.alice)), "{t}");
    assert!(t.contains("Disabled: false"), "{t}");
    assert!(
        t.contains("Limit: $5.00 (resets daily) (remaining: $5.00)"),
        "{t}"
    );
    assert!(
        t.contains(&format!("Usage: total=${}", alice.usage.to_fixed(2))),
        "{t}"
    );
    assert!(t.contains("Created: "), "{t}");

    // Activity rows and every aggregation.
    let t = mcp.ok("or_activity", json!({})).await;
    assert!(t.starts_with("Activity: 3 rows | total $"), "{t}");
    assert!(t.contains(" | 6 req"), "{t}");
    assert!(t.contains("| tok in/out/reason: "), "{t}");
    assert!(t.contains("| via "), "{t}");
    let t = mcp.ok("or_activity", json!({ "limit": 1 })).await;
    assert!(t.contains("…2 more rows (use limit= to see more"), "{t}");
    let t = mcp
        .ok("or_activity", json!({ "aggregate": "by_model" }))
        .await;
    assert!(t.contains("By model (top 3):"), "{t}");
    assert!(
        t.contains("- openai/gpt-4o                            $"),
        "{t}"
    );
    assert!(t.contains("| 3 req | 1 rows"), "{t}");
    let t = mcp
        .ok("or_activity", json!({ "aggregate": "by_day" }))
        .await;
    assert!(t.contains("By day:\n- "), "{t}");
    assert!(t.contains(" | 6 req"), "{t}");
    let t = mcp
        .ok(
            "or_activity",
            json!({ "aggregate": "by_provider", "limit": 5 }),
        )
        .await;
    assert!(t.contains("By provider (top "), "{t}");
    let t = mcp
        .ok("or_activity", json!({ "aggregate": "by_key" }))
        .await;
    assert!(t.contains("By api_key_hash (top 2):"), "{t}");
    // Each key's line carries its own usage (not everything under "(unknown)").
    let alice_line = t
        .lines()
        .find(|l| l.contains(&f.alice))
        .expect("alice line");
    assert!(
        alice_line.contains(&format!("${}", alice.usage.to_fixed(4))),
        "{alice_line}"
    );
    assert!(
        alice_line.contains("| 4 req | 2 rows | key: alice"),
        "{alice_line}"
    );
    let bob_line = t.lines().find(|l| l.contains(&f.bob)).expect("bob line");
    assert!(
        bob_line.contains(&format!("${}", bob.usage.to_fixed(4))),
        "{bob_line}"
    );
    assert!(
        bob_line.contains("| 2 req | 1 rows | key: bob"),
        "{bob_line}"
    );
    assert!(
        !t.contains("(unknown)") && !t.contains("(unattributed)"),
        "{t}"
    );
    let t = mcp
        .ok(
            "or_activity",
            json!({ "aggregate": "by_key", "api_key_hash": f.bob }),
        )
        .await;
    assert!(
        t.contains("By api_key_hash (top 1):") && t.contains(&f.bob),
        "{t}"
    );
    let t = mcp
        .ok(
            "or_activity",
            json!({ "api_key_hash": f.bob, "date": "2000-01-01" }),
        )
        .await;
    assert_eq!(t, "No activity in the requested window.");

    let t = mcp.ok("or_generation", json!({ "id": f.generation })).await;
    assert!(
        t.starts_with(&format!(
            "Generation `{}`\nModel: openai/gpt-4o",
            f.generation
        )),
        "{t}"
    );
    assert!(t.contains("Cost: $0.0"), "{t}");
    assert!(t.contains("Tokens: prompt="), "{t}");
    assert!(t.contains("Finish: "), "{t}");

    let t = mcp.ok("or_models", json!({ "search": "GPT-4o" })).await;
    assert!(t.starts_with("Models (2):\n\n- **openai/gpt-4o"), "{t}");
    assert!(
        t.contains(" | in $") && t.contains("/M · out $") && t.contains("k ctx | text"),
        "{t}"
    );
    let t = mcp
        .ok("or_models", json!({ "search": "no-such-model-anywhere" }))
        .await;
    assert_eq!(t, "No models match.");
    let t = mcp
        .ok("or_models", json!({ "supported_parameters": "tools" }))
        .await;
    assert!(t.starts_with("Models ("), "{t}");

    let t = mcp
        .ok("or_model_get", json!({ "id": "openai/gpt-4o" }))
        .await;
    assert!(t.starts_with("**openai/gpt-4o** (OpenAI: GPT-4o)"), "{t}");
    assert!(
        t.contains("\nContext: ") && t.contains("\nPricing: in $"),
        "{t}"
    );
    assert!(t.contains("\nSupported params: "), "{t}");

    let t = mcp
        .ok(
            "or_model_endpoints",
            json!({ "author": "openai", "slug": "gpt-4o" }),
        )
        .await;
    assert!(t.starts_with("Endpoints for **openai/gpt-4o** ("), "{t}");
    for line in t.lines().filter(|l| l.starts_with("- **")) {
        // Uptime is already a percentage: never above 100.
        let pct = line
            .split("uptime ")
            .nth(1)
            .and_then(|r| r.split('%').next())
            .unwrap();
        if pct != "—" {
            let v: f64 = pct.parse().unwrap();
            assert!((0.0..=100.0).contains(&v), "{line}");
        }
        assert!(line.contains("| status "), "{line}");
    }

    let t = mcp.ok("or_models_user", json!({})).await;
    assert!(t.starts_with("Models available to this account ("), "{t}");

    let t = mcp.ok("or_zdr_endpoints", json!({})).await;
    assert!(t.starts_with("ZDR endpoints ("), "{t}");
    assert!(t.contains(" endpoint(s): "), "{t}");
    assert!(!t.contains("— 0 endpoint(s)"), "{t}");

    let t = mcp.ok("or_guardrails_list", json!({})).await;
    assert!(
        t.starts_with("Guardrails (1):\n\n- **team-daily** (id: `"),
        "{t}"
    );
    assert!(
        t.contains("| limit $50.00 (daily) | ZDR enforced | providers⊆[OpenAI,Anthropic]"),
        "{t}"
    );

    let t = mcp
        .ok("or_guardrail_get", json!({ "id": f.guardrail }))
        .await;
    assert!(
        t.starts_with(&format!("**team-daily**\nId: `{}`", f.guardrail)),
        "{t}"
    );
    assert!(t.contains("Limit: $50.00 (resets daily)"), "{t}");
    assert!(t.contains("ZDR: enforced"), "{t}");
    assert!(t.contains("Allowed providers: OpenAI, Anthropic"), "{t}");

    let t = mcp.ok("or_guardrails_assignments", json!({})).await;
    assert!(
        t.starts_with("Guardrail assignments: 1 key(s), 1 member(s) across 1 guardrail(s)"),
        "{t}"
    );
    assert!(t.contains(&format!("Guardrail `{}`:", f.guardrail)), "{t}");
    assert!(
        t.contains(&format!("  keys (1): bob (hash: {})", f.bob)),
        "{t}"
    );
    assert!(
        t.contains("  members (1): user_2vK8sQ3mGraceHopper0002 (grace@example.com)"),
        "{t}"
    );

    let t = mcp.ok("or_org_members", json!({})).await;
    assert!(
        t.starts_with("Organization members (4):\n\n- ada@example.com | user_id: `user_"),
        "{t}"
    );
    assert!(t.contains("| role: org:admin"), "{t}");
    let t = mcp
        .ok("or_org_members", json!({ "offset": 1, "limit": 2 }))
        .await;
    assert!(t.starts_with("Organization members (2):"), "{t}");
    assert!(
        t.contains("…1 more (total 4); call again with offset=3."),
        "{t}"
    );
}

#[tokio::test]
async fn every_read_tool_rejects_bad_input_and_the_server_keeps_running() {
    let mcp = start(false).await;
    let cases = [
        (
            "or_overview",
            json!({ "verbose": true }),
            "unknown field `verbose`",
        ),
        ("or_credits", json!({ "x": 1 }), "unknown field `x`"),
        (
            "or_current_key",
            json!({ "key": "x" }),
            "unknown field `key`",
        ),
        (
            "or_keys_list",
            json!({ "offset": -1 }),
            "argument `offset`: invalid value: integer `-1`",
        ),
        (
            "or_keys_list",
            json!({ "include_disabled": "maybe" }),
            "include_disabled",
        ),
        ("or_key_get", json!({}), "missing field `hash`"),
        (
            "or_key_get",
            json!({ "hash": "   " }),
            "`hash` must not be empty",
        ),
        (
            "or_key_get",
            json!({ "hash": "0123abcd" }),
            "no key with hash `0123abcd` (404)",
        ),
        ("or_key_get", json!({ "hsh": "abc" }), "unknown field `hsh`"),
        (
            "or_activity",
            json!({ "date": "2024-13-01" }),
            "`date` must be a UTC day written YYYY-MM-DD",
        ),
        ("or_activity", json!({ "date": "yesterday" }), "YYYY-MM-DD"),
        (
            "or_activity",
            json!({ "aggregate": "by_week" }),
            "unknown variant `by_week`",
        ),
        (
            "or_activity",
            json!({ "limit": 0 }),
            "`limit` must be at least 1",
        ),
        (
            "or_generation",
            json!({ "id": "gen-does-not-exist" }),
            "no generation with id `gen-does-not-exist` (404)",
        ),
        (
            "or_generation",
            json!({ "id": 42 }),
            "argument `id`: invalid type: integer `42`, expected a string",
        ),
        (
            "or_models",
            json!({ "search": 5 }),
            "argument `search`: invalid type",
        ),
        (
            "or_model_get",
            json!({ "id": "nope/nothing" }),
            "Model not found: nope/nothing",
        ),
        ("or_model_get", json!({}), "missing field `id`"),
        (
            "or_model_endpoints",
            json!({ "author": "nope", "slug": "nothing" }),
            "no model nope/nothing (404)",
        ),
        (
            "or_model_endpoints",
            json!({ "author": "openai" }),
            "missing field `slug`",
        ),
        ("or_models_user", json!({ "x": 1 }), "unknown field `x`"),
        ("or_zdr_endpoints", json!({ "x": 1 }), "unknown field `x`"),
        (
            "or_guardrails_list",
            json!({ "limit": 5 }),
            "unknown field `limit`",
        ),
        (
            "or_guardrail_get",
            json!({ "id": "00000000-0000-4000-8000-000000000000" }),
            "no guardrail with id `00000000-0000-4000-8000-000000000000` (404)",
        ),
        (
            "or_guardrail_get",
            json!({ "id": "" }),
            "`id` must not be empty",
        ),
        (
            "or_guardrails_assignments",
            json!({ "id": "x" }),
            "unknown field `id`",
        ),
        (
            "or_org_members",
            json!({ "limit": 0 }),
            "`limit` must be between 1 and 100",
        ),
        (
            "or_org_members",
            json!({ "limit": 500 }),
            "`limit` must be between 1 and 100",
        ),
    ];
    for (tool, args, expected) in &cases {
        let t = mcp.err(tool, args.clone()).await;
        assert!(
            t.contains(*expected),
            "{tool}({args}): expected {expected:?} in {t:?}"
        );
    }
    // Every read tool was exercised with bad input.
    for tool in READ_TOOLS {
        assert!(
            cases.iter().any(|(t, ..)| *t == tool),
            "{tool} has no bad-input case"
        );
    }
    mcp.assert_alive().await;
}

#[tokio::test]
async fn upstream_failures_become_tool_errors() {
    let mcp = start(false).await;
    let rule = |path: &str, status: u16, times: u32| -> orteam_test_support::FaultRule {
        serde_json::from_value(json!({
            "path_prefix": path, "times": times,
            "fault": { "kind": "status", "status": status }
        }))
        .unwrap()
    };
    // A non-retryable 400.
    mcp.sim.set_faults(vec![rule("/api/v1/credits", 400, 1)]);
    let t = mcp.err("or_credits", json!({})).await;
    assert!(
        t.starts_with("or_credits failed: OpenRouter rejected the request as invalid (400"),
        "{t}"
    );
    // A 500 that outlasts the client's retries (1 attempt + 3 retries).
    mcp.sim.set_faults(vec![rule("/api/v1/guardrails", 500, 4)]);
    let t = mcp.err("or_guardrails_list", json!({})).await;
    assert!(t.contains("OpenRouter server error (500"), "{t}");
    assert!(t.contains("gave up after 3 retries"), "{t}");
    // A 403 on a composite tool.
    mcp.sim.set_faults(vec![rule("/api/v1/credits", 403, 1)]);
    let t = mcp.err("or_overview", json!({})).await;
    assert!(
        t.contains("or_overview failed: OpenRouter refused the operation (403"),
        "{t}"
    );
    // /activity failing does not sink the dashboard.
    mcp.sim.set_faults(vec![rule("/api/v1/activity", 404, 1)]);
    let t = mcp.ok("or_overview", json!({})).await;
    assert!(
        t.contains(
            "Last completed UTC day: activity unavailable (or_overview failed: Not found (404"
        ),
        "{t}"
    );
    mcp.sim.clear_faults();
    mcp.assert_alive().await;
}

#[tokio::test]
async fn an_inference_key_gets_a_management_key_hint() {
    let sim = orteam_test_support::spawn_sim().await;
    let (secret, _hash) = sim.create_key("not-a-management-key", None, None);
    let mcp = start_with(sim, &secret, false).await;
    let t = mcp.err("or_credits", json!({})).await;
    assert!(
        t.contains("Only management keys can perform this operation"),
        "{t}"
    );
    assert!(t.contains("holds an inference (API) key"), "{t}");
    assert!(
        t.contains("management key (formerly called a provisioning key)"),
        "{t}"
    );
    assert!(t.contains("cannot make completions"), "{t}");
    let t = mcp.err("or_keys_list", json!({})).await;
    assert!(t.contains("inference (API) key"), "{t}");
    // /key works with any key and says what kind it is.
    let t = mcp.ok("or_current_key", json!({})).await;
    assert!(t.contains("Type: inference"), "{t}");
}

#[tokio::test]
async fn an_unknown_key_gets_a_401_explanation_without_the_key() {
    let sim = orteam_test_support::spawn_sim().await;
    let bogus = format!("sk-or-v1-{}", "ab".repeat(32));
    let mcp = start_with(sim, &bogus, true).await;
    for tool in [
        "or_credits",
        "or_keys_list",
        "or_current_key",
        "or_guardrails_list",
        "or_activity",
    ] {
        let t = mcp.err(tool, json!({})).await;
        assert!(t.contains("rejected the provisioning key (401"), "{t}");
        assert!(t.contains("OPENROUTER_PROVISIONING_KEY"), "{t}");
    }
    let t = mcp.err("or_key_create", json!({ "name": "x" })).await;
    assert!(t.contains("(401"), "{t}");
}

#[tokio::test]
async fn by_key_reports_spend_of_deleted_keys_as_unattributed() {
    let mcp = start(false).await;
    let (keep_secret, keep) = mcp.create_key("keep", None, None);
    let (gone_secret, gone) = mcp.create_key("gone", None, None);
    mcp.traffic(&keep_secret, "openai/gpt-4o", 1).await;
    mcp.traffic(&gone_secret, "openai/gpt-4o", 2).await;
    mcp.next_day();
    mcp.admin().delete_key(&gone).await.unwrap();
    let t = mcp
        .ok("or_activity", json!({ "aggregate": "by_key" }))
        .await;
    assert!(t.contains("By api_key_hash (top 1):"), "{t}");
    assert!(t.contains(&keep) && !t.contains(&gone), "{t}");
    let rest = t
        .lines()
        .find(|l| l.starts_with("- (unattributed)"))
        .expect("unattributed line");
    assert!(
        rest.contains("| 2 req | keys no longer listed (deleted)"),
        "{rest}"
    );
}

#[tokio::test]
async fn overview_compares_spend_with_the_limit_period() {
    use chrono::TimeZone;
    let mcp = start(false).await;
    let clock = mcp.sim.clock();
    // Monday 2026-06-01: spend, then look on Tuesday (same week, new day).
    clock.freeze(chrono::Utc.with_ymd_and_hms(2026, 6, 1, 10, 0, 0).unwrap());
    let (secret, hash) = mcp.create_key("weekly", Some("20"), Some(Window::Weekly));
    let c = orteam_openrouter::Client::builder()
        .base_url(mcp.sim.base_url())
        .api_key(secrecy::SecretString::from(secret))
        .build()
        .unwrap();
    let req = orteam_openrouter::types::chat::ChatRequest::new(
        "anthropic/claude-3.5-sonnet",
        vec![orteam_openrouter::types::chat::Message::user(
            "long answer [[sim:tokens=3000]]",
        )],
    );
    c.chat(&req).await.unwrap();
    clock.freeze(chrono::Utc.with_ymd_and_hms(2026, 6, 2, 10, 0, 0).unwrap());
    let key = mcp.admin().get_key(&hash).await.unwrap();
    assert!(key.usage_daily.is_zero());
    assert!(
        key.usage_weekly > orteam_core::Money::from_cents(1),
        "{key:?}"
    );
    let t = mcp.ok("or_overview", json!({})).await;
    // The seed showed usage_daily ($0.00) against a weekly limit.
    let expected = format!(
        "  - weekly: ${}/$20.00 weekly",
        key.usage_weekly.to_fixed(2)
    );
    assert!(t.contains(&expected), "{expected:?} in {t}");
    assert!(
        t.contains("Today so far (UTC, sum of key usage_daily): $0.0000"),
        "{t}"
    );
    assert!(t.contains("Last completed UTC day (2026-06-01): $"), "{t}");
    assert!(t.contains("anthropic/claude-3.5-sonnet"), "{t}");
}
