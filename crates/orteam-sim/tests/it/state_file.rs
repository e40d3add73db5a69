//! `--state FILE`: everything survives a restart.

use orteam_sim::SimConfig;
use serde_json::json;

use crate::{Ctx, m};

#[tokio::test]
async fn state_round_trips_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.json");
    let config = || SimConfig {
        state_file: Some(path.clone()),
        ..SimConfig::default()
    };
    let c = Ctx::with(config()).await;
    let mgmt = c.mgmt();
    let (key, hash) = c.key_with_limit("persist", "3", Some(orteam_core::Window::Monthly));
    let r = c.chat(&key, "openai/gpt-4o", "remember me").await;
    let cost = r.money("/usage/cost");
    let gen_id = r.json["id"].as_str().unwrap().to_owned();
    let g = c
        .post(
            "/guardrails",
            Some(&mgmt),
            json!({"name": "kept", "limit_usd": 1}),
        )
        .await;
    let gid = g.json["data"]["id"].as_str().unwrap().to_owned();
    c.post(
        &format!("/guardrails/{gid}/assignments/keys"),
        Some(&mgmt),
        json!({"key_hashes": [hash]}),
    )
    .await;
    c.post("/__sim/credits", None, json!({"add": "5"})).await;
    let before = c.key_info(&hash).await.json;
    c.sim.shutdown().await;
    assert!(path.exists());

    let c = Ctx::with(config()).await;
    assert_eq!(c.key_info(&hash).await.json, before);
    let (credits, used) = c.admin_credits().await;
    assert_eq!(credits, m("105"));
    assert_eq!(used, cost);
    let g = c.get(&format!("/generation?id={gen_id}"), Some(&key)).await;
    assert_eq!(g.status, 200, "{}", g.text);
    assert_eq!(g.money("/data/total_cost"), cost);
    assert_eq!(
        c.get(&format!("/guardrails/{gid}"), Some(&mgmt)).await.json["data"]["name"],
        "kept"
    );
    assert_eq!(
        c.get("/guardrails/assignments/keys", Some(&mgmt))
            .await
            .json["total_count"],
        1
    );
    // The secret still authenticates after the restart.
    assert_eq!(c.chat(&key, "openai/gpt-4o", "again").await.status, 200);
    c.sim.shutdown().await;

    std::fs::write(&path, b"{not json").unwrap();
    let err = orteam_sim::spawn(config()).await.unwrap_err();
    assert!(
        err.to_string().contains("not a valid simulator snapshot"),
        "{err}"
    );
}
