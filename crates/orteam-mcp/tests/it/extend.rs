//! Tools written outside the crate plug into the server (as the team tools will).

use std::sync::Arc;

use orteam_mcp::{McpConfig, OrteamMcp};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use secrecy::SecretString;
use serde_json::json;

use crate::common::connect;

struct Greeter {
    greeting: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct GreetArgs {
    /// Who to greet.
    name: String,
}

#[tool_router]
impl Greeter {
    #[tool(
        name = "team_greet",
        description = "Greets someone (test tool).",
        annotations(read_only_hint = true)
    )]
    async fn greet(&self, Parameters(a): Parameters<GreetArgs>) -> Result<String, String> {
        if a.name.is_empty() {
            return Err("team_greet: `name` must not be empty".to_owned());
        }
        Ok(format!("{}, {}!", self.greeting, a.name))
    }
}

#[tool_router(router = write_router)]
impl Greeter {
    #[tool(
        name = "team_rename",
        description = "Changes something (test write tool)."
    )]
    async fn rename(&self) -> String {
        "renamed".to_owned()
    }
}

async fn start(allow_write: bool) -> crate::common::Mcp {
    let sim = orteam_test_support::spawn_sim().await;
    let key = sim.provisioning_key().to_owned();
    let mut config = McpConfig::new(SecretString::from(key.clone()));
    config.base_url = Some(sim.base_url());
    config.allow_write = allow_write;
    let state = Arc::new(Greeter {
        greeting: "Hello".to_owned(),
    });
    let server = OrteamMcp::new(&config)
        .unwrap()
        .with_service_tools(state.clone(), Greeter::tool_router())
        .with_service_write_tools(state, Greeter::write_router());
    connect(sim, &key, server).await
}

#[tokio::test]
async fn foreign_tool_routers_are_served_and_write_gated() {
    let mcp = start(false).await;
    let names = mcp.tool_names().await;
    assert_eq!(names.len(), 17);
    assert!(names.contains(&"team_greet".to_owned()));
    assert!(!names.contains(&"team_rename".to_owned()));
    assert_eq!(
        mcp.ok("team_greet", json!({ "name": "Ada" })).await,
        "Hello, Ada!"
    );
    let t = mcp.err("team_greet", json!({ "name": "" })).await;
    assert!(t.contains("must not be empty"), "{t}");
    let err = mcp.call("team_rename", json!({})).await.unwrap_err();
    assert!(
        err.to_string().contains("OPENROUTER_ADMIN_ALLOW_WRITE=1"),
        "{err}"
    );
    mcp.assert_alive().await;

    let mcp = start(true).await;
    assert_eq!(mcp.tool_names().await.len(), 28);
    assert_eq!(mcp.ok("team_rename", json!({})).await, "renamed");
}
