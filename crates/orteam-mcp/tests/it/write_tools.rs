//! The 10 write tools: the read-only refusal, key and guardrail lifecycles, bad input.

use orteam_mcp::WRITE_TOOLS;
use orteam_openrouter::Client;
use rmcp::service::ServiceError;
use secrecy::SecretString;
use serde_json::json;

use crate::common::{backticked_after, line_value, start};

#[tokio::test]
async fn read_only_mode_refuses_every_write_tool_with_the_way_to_enable_it() {
    let mcp = start(false).await;
    for tool in WRITE_TOOLS {
        let err = mcp
            .call(tool, json!({ "name": "x", "hash": "h", "id": "i" }))
            .await
            .expect_err("write tools are not callable in read-only mode");
        let ServiceError::McpError(data) = err else {
            panic!("{tool}: expected a JSON-RPC error, got {err:?}");
        };
        let msg = data.message.to_string();
        assert!(msg.contains(&format!("{tool} is a write tool")), "{msg}");
        assert!(msg.contains("OPENROUTER_ADMIN_ALLOW_WRITE=1"), "{msg}");
        assert!(msg.contains("--allow-write"), "{msg}");
    }
    // An unknown tool is told apart from a disabled one.
    let err = mcp.call("or_nope", json!({})).await.unwrap_err();
    assert!(
        err.to_string().contains("unknown tool \"or_nope\""),
        "{err}"
    );
    mcp.assert_alive().await;
    // Nothing was created.
    assert!(mcp.admin().list_all_keys(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn key_lifecycle_create_update_delete() {
    let mcp = start(true).await;
    let t = mcp
        .ok(
            "or_key_create",
            json!({
                "name": "scratch",
                "limit": 0.5,
                "limit_reset": "daily",
                "expires_at": "2099-05-25T00:00:00Z",
                "include_byok_in_limit": false
            }),
        )
        .await;
    assert!(t.starts_with("Created key **scratch**\nHash: "), "{t}");
    assert!(t.contains("\nLabel: sk-or-v1-"), "{t}");
    assert!(t.contains("\nLimit: $0.5 (resets daily)\n"), "{t}");
    assert!(
        t.contains("\nExpires: 2099-05-25T00:00:00Z\n\nSecret: `sk-or-v1-"),
        "{t}"
    );
    assert!(
        t.ends_with("⚠️ This secret cannot be retrieved later — store it now."),
        "{t}"
    );
    let hash = line_value(&t, "Hash: ");
    let secret = backticked_after(&t, "Secret: ");
    // The one-time secret is a working inference key.
    let as_key = Client::builder()
        .base_url(mcp.sim.base_url())
        .api_key(SecretString::from(secret.clone()))
        .build()
        .unwrap();
    let info = as_key.current_key().await.unwrap();
    assert!(!info.is_management());
    // It never shows up again.
    let t = mcp.ok("or_key_get", json!({ "hash": hash })).await;
    assert!(!t.contains(&secret), "{t}");
    assert!(
        t.contains("Limit: $0.50 (resets daily) (remaining: $0.50)"),
        "{t}"
    );
    assert!(t.contains("Expires: 2099-05-25T00:00:00Z"), "{t}");
    let t = mcp.ok("or_keys_list", json!({})).await;
    assert!(
        !t.contains(&secret) && t.contains("- **scratch** | usage $0.00"),
        "{t}"
    );

    // Update: rename, exact decimal limit, weekly.
    let t = mcp
        .ok(
            "or_key_update",
            json!({ "hash": hash, "name": "scratch-2", "limit": "12.345", "limit_reset": "weekly" }),
        )
        .await;
    assert_eq!(
        t,
        format!("Updated **scratch-2** (hash: {hash}). Disabled: false. Limit: 12.345 (weekly).")
    );
    // Null clears the limit, reset and expiry; disable.
    let t = mcp
        .ok(
            "or_key_update",
            json!({ "hash": hash, "limit": null, "limit_reset": null, "expires_at": null, "disabled": true }),
        )
        .await;
    assert_eq!(
        t,
        format!("Updated **scratch-2** (hash: {hash}). Disabled: true. Limit: none.")
    );
    let t = mcp.ok("or_key_get", json!({ "hash": hash })).await;
    assert!(
        t.contains("Disabled: true") && t.contains("Limit: none"),
        "{t}"
    );
    assert!(!t.contains("Expires:"), "{t}");
    let t = mcp
        .ok("or_keys_list", json!({ "include_disabled": false }))
        .await;
    assert_eq!(t, "No keys.");
    let t = mcp
        .ok("or_keys_list", json!({ "include_disabled": true }))
        .await;
    assert!(
        t.contains("- **scratch-2** (disabled) | usage $0.00 | no limit |"),
        "{t}"
    );

    let t = mcp.ok("or_key_delete", json!({ "hash": hash })).await;
    assert_eq!(t, format!("Deleted key with hash {hash}."));
    let t = mcp.err("or_key_get", json!({ "hash": hash })).await;
    assert!(t.contains("(404)"), "{t}");
    let t = mcp.err("or_key_delete", json!({ "hash": hash })).await;
    assert!(t.contains("nothing was deleted"), "{t}");
}

#[tokio::test]
async fn guardrail_lifecycle_with_assignments() {
    let mcp = start(true).await;
    let (_, key_hash) = mcp.create_key("prod-bot", None, None);
    let t = mcp
        .ok(
            "or_guardrail_create",
            json!({
                "name": "prod-daily-50",
                "description": "cap prod",
                "limit_usd": 50,
                "reset_interval": "daily",
                "allowed_providers": ["OpenAI"],
                "ignored_models": ["openai/o4-mini"],
                "enforce_zdr": false
            }),
        )
        .await;
    assert!(
        t.starts_with("Created guardrail `") && t.ends_with("` (prod-daily-50)."),
        "{t}"
    );
    let id = backticked_after(&t, "Created guardrail");

    let t = mcp.ok("or_guardrail_get", json!({ "id": id })).await;
    assert!(t.contains("Description: cap prod"), "{t}");
    assert!(t.contains("Limit: $50.00 (resets daily)"), "{t}");
    assert!(t.contains("Allowed providers: OpenAI"), "{t}");
    assert!(t.contains("Ignored models: openai/o4-mini"), "{t}");

    let t = mcp
        .ok(
            "or_guardrail_update",
            json!({ "id": id, "limit_usd": 12.5, "reset_interval": null, "description": null, "enforce_zdr": true }),
        )
        .await;
    assert_eq!(t, format!("Updated guardrail `{id}` (prod-daily-50)."));
    let t = mcp.ok("or_guardrail_get", json!({ "id": id })).await;
    assert!(
        t.contains("Limit: $12.50\n") && t.contains("ZDR: enforced"),
        "{t}"
    );
    assert!(!t.contains("Description:"), "{t}");

    let t = mcp
        .ok(
            "or_guardrail_assign_keys",
            json!({ "id": id, "hashes": [key_hash] }),
        )
        .await;
    assert_eq!(t, format!("Assigned guardrail `{id}` to 1 key(s)."));
    let t = mcp
        .ok(
            "or_guardrail_assign_members",
            json!({ "id": id, "user_ids": ["user_2vK8sQ3mAdaLovelace0001", "user_2vK8sQ3mAlanTuring00003"] }),
        )
        .await;
    assert_eq!(t, format!("Assigned guardrail `{id}` to 2 member(s)."));
    let t = mcp.ok("or_guardrails_assignments", json!({})).await;
    assert!(
        t.starts_with("Guardrail assignments: 1 key(s), 2 member(s) across 1 guardrail(s)"),
        "{t}"
    );
    assert!(t.contains(&format!("prod-bot (hash: {key_hash})")), "{t}");
    assert!(
        t.contains("user_2vK8sQ3mAdaLovelace0001 (ada@example.com)"),
        "{t}"
    );

    let t = mcp
        .ok(
            "or_guardrail_unassign_keys",
            json!({ "id": id, "hashes": [key_hash] }),
        )
        .await;
    assert_eq!(t, format!("Unassigned guardrail `{id}` from 1 key(s)."));
    let t = mcp
        .ok(
            "or_guardrail_unassign_members",
            json!({ "id": id, "user_ids": ["user_2vK8sQ3mAdaLovelace0001"] }),
        )
        .await;
    assert_eq!(t, format!("Unassigned guardrail `{id}` from 1 member(s)."));
    let t = mcp.ok("or_guardrails_assignments", json!({})).await;
    assert!(
        t.starts_with("Guardrail assignments: 0 key(s), 1 member(s)"),
        "{t}"
    );

    let t = mcp.ok("or_guardrail_delete", json!({ "id": id })).await;
    assert_eq!(t, format!("Deleted guardrail `{id}`."));
    let t = mcp.err("or_guardrail_get", json!({ "id": id })).await;
    assert!(t.contains("(404)"), "{t}");
    assert_eq!(
        mcp.ok("or_guardrails_list", json!({})).await,
        "No guardrails configured."
    );
}

#[tokio::test]
async fn every_write_tool_rejects_bad_input_and_the_server_keeps_running() {
    let mcp = start(true).await;
    let missing = "00000000-0000-4000-8000-000000000000";
    let cases = [
        (
            "or_key_create",
            json!({}),
            "missing field `name`".to_owned(),
        ),
        (
            "or_key_create",
            json!({ "name": "x", "limit": -1 }),
            "argument `limit`: amount must be >= 0".to_owned(),
        ),
        (
            "or_key_create",
            json!({ "name": "x", "limit_reset": "hourly" }),
            "unknown variant `hourly`".to_owned(),
        ),
        (
            "or_key_create",
            json!({ "name": "x", "expires_at": "next week" }),
            "`expires_at` must be an ISO-8601 UTC timestamp".to_owned(),
        ),
        (
            "or_key_create",
            json!({ "name": "x", "limit": "lots" }),
            "limit".to_owned(),
        ),
        (
            "or_key_update",
            json!({ "hash": "abc" }),
            "or_key_update: at least one field must be provided".to_owned(),
        ),
        (
            "or_key_update",
            json!({ "hash": "abc", "name": "y" }),
            "no key with hash `abc` (404)".to_owned(),
        ),
        (
            "or_key_update",
            json!({ "hash": "abc", "disabled": "yes" }),
            "invalid type".to_owned(),
        ),
        (
            "or_key_delete",
            json!({ "hash": "abc" }),
            "no key with hash `abc` (404)".to_owned(),
        ),
        (
            "or_key_delete",
            json!({}),
            "missing field `hash`".to_owned(),
        ),
        (
            "or_guardrail_create",
            json!({ "limit_usd": 5 }),
            "missing field `name`".to_owned(),
        ),
        (
            "or_guardrail_create",
            json!({ "name": "g", "allowed_models": "openai/gpt-4o" }),
            "invalid type".to_owned(),
        ),
        (
            "or_guardrail_update",
            json!({ "id": missing }),
            "or_guardrail_update: at least one field must be provided".to_owned(),
        ),
        (
            "or_guardrail_update",
            json!({ "id": missing, "name": "n" }),
            format!("no guardrail with id `{missing}` (404)"),
        ),
        (
            "or_guardrail_delete",
            json!({ "id": missing }),
            format!("no guardrail with id `{missing}` (404)"),
        ),
        (
            "or_guardrail_assign_keys",
            json!({ "id": missing, "hashes": [] }),
            "`hashes` must contain at least one".to_owned(),
        ),
        (
            "or_guardrail_assign_keys",
            json!({ "id": missing, "hashes": ["abc"] }),
            "(404)".to_owned(),
        ),
        (
            "or_guardrail_unassign_keys",
            json!({ "id": missing }),
            "missing field `hashes`".to_owned(),
        ),
        (
            "or_guardrail_assign_members",
            json!({ "id": missing, "user_ids": [""] }),
            "`user_ids` must contain at least one".to_owned(),
        ),
        (
            "or_guardrail_unassign_members",
            json!({ "id": missing, "user_ids": "user_x" }),
            "invalid type".to_owned(),
        ),
    ];
    for (tool, args, expected) in &cases {
        let t = mcp.err(tool, args.clone()).await;
        assert!(
            t.contains(expected.as_str()),
            "{tool}({args}): expected {expected:?} in {t:?}"
        );
    }
    for tool in WRITE_TOOLS {
        assert!(
            cases.iter().any(|(t, ..)| *t == tool),
            "{tool} has no bad-input case"
        );
    }
    mcp.assert_alive().await;
    assert!(mcp.admin().list_all_keys(None).await.unwrap().is_empty());
}
