//! [`OrteamMcp`]: the MCP server handler, its tool routers and the write gate.

use std::collections::BTreeSet;
use std::sync::Arc;

use orteam_openrouter::{Client, ClientError};
use rmcp::handler::server::router::tool::{ToolRoute, ToolRouter};
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ContentBlock, Implementation, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{ENABLE_WRITES_HINT, McpConfig};
use crate::tools::team::TeamTools;
use crate::{McpError, upstream};

const INSTRUCTIONS: &str = "Tools for administering an OpenRouter account with a management \
(provisioning) key: credits, API keys and their limits, usage activity, single generations, the \
model catalog and provider endpoints, guardrails and organization members. Start with \
or_overview for a dashboard. With an orteam ledger, team_* tools cover the team: spend by \
member/model/day, budgets, anomalies and team-file plan/apply. Money is USD. Read tools are always available; the write tools \
(or_key_*, or_guardrail_create/update/delete/assign/unassign) exist only when the server runs \
with OPENROUTER_ADMIN_ALLOW_WRITE=1 (or `orteam mcp --allow-write`). Outputs are raw API fields; \
interpretation is up to you.";

/// The MCP server: the OpenRouter tools, plus any routers added with
/// [`with_tools`](Self::with_tools) / [`with_write_tools`](Self::with_write_tools).
///
/// Cloning is cheap (the client and the router are shared); the HTTP transport clones one per
/// session.
#[derive(Clone)]
pub struct OrteamMcp {
    client: Client,
    secret: Arc<SecretString>,
    allow_write: bool,
    /// Write tools that exist but are not registered (writes disabled).
    gated: Arc<BTreeSet<String>>,
    tool_router: ToolRouter<OrteamMcp>,
}

impl std::fmt::Debug for OrteamMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrteamMcp")
            .field("allow_write", &self.allow_write)
            .field("tools", &self.tool_names())
            .finish_non_exhaustive()
    }
}

impl OrteamMcp {
    /// Builds the OpenRouter client from `config` and registers the 16 read tools, plus the 10
    /// write tools when `config.allow_write`.
    pub fn new(config: &McpConfig) -> Result<Self, McpError> {
        let mut builder = Client::builder()
            .api_key(config.provisioning_key.clone())
            .user_agent(concat!("orteam-mcp/", env!("CARGO_PKG_VERSION")));
        if let Some(url) = &config.base_url {
            builder = builder.base_url(url.clone());
        }
        let client = builder.build().map_err(McpError::Client)?;
        Ok(Self::with_client(
            client,
            config.provisioning_key.clone(),
            config.allow_write,
        ))
    }

    /// [`new`](Self::new), plus the team tools when `config.database_url` is set: opens that
    /// ledger as admin (`ORTEAM_SECRET_KEY` is read by the ledger) and an uncached client with
    /// the management key for them.
    pub async fn from_config(config: &McpConfig) -> Result<Self, McpError> {
        let server = Self::new(config)?;
        let Some(url) = &config.database_url else {
            return Ok(server);
        };
        let ledger = orteam_ledger::Ledger::open(url, orteam_ledger::LedgerOptions::admin())
            .await
            .map_err(McpError::Ledger)?;
        let mut builder = Client::builder()
            .api_key(config.provisioning_key.clone())
            .cache_ttl(None)
            .user_agent(concat!("orteam-mcp/", env!("CARGO_PKG_VERSION")));
        if let Some(url) = &config.base_url {
            builder = builder.base_url(url.clone());
        }
        let client = builder.build().map_err(McpError::Client)?;
        let mut team = TeamTools::new(ledger.clone(), client);
        if let Some(token) = &config.token {
            let principal = match ledger
                .authenticate_admin_token(token)
                .await
                .map_err(McpError::Ledger)?
            {
                Ok(t) => t.principal(),
                Err(refused) => {
                    return Err(McpError::Config(format!(
                        "{}: {refused}",
                        orteam_core::env::ORTEAM_TOKEN
                    )));
                }
            };
            team = team.acting_as(principal);
        }
        Ok(server.with_team_tools(team))
    }

    /// Adds the team tools: the 5 read tools always, the 3 write tools gated like the others.
    pub fn with_team_tools(self, team: TeamTools) -> Self {
        let team = Arc::new(team);
        self.with_service_tools(team.clone(), TeamTools::read_router())
            .with_service_write_tools(team, TeamTools::write_router())
    }

    /// Like [`new`](Self::new) with an existing client; `provisioning_key` must be the key the
    /// client sends (it is scrubbed from every tool result).
    pub fn with_client(client: Client, provisioning_key: SecretString, allow_write: bool) -> Self {
        let server = OrteamMcp {
            client,
            secret: Arc::new(provisioning_key),
            allow_write,
            gated: Arc::new(BTreeSet::new()),
            tool_router: ToolRouter::new(),
        };
        server
            .with_tools(crate::tools::read_router())
            .with_write_tools(crate::tools::write_router())
    }

    /// Adds always-available tools (e.g. the team tools). A tool with the name of an existing
    /// one replaces it.
    pub fn with_tools(mut self, router: ToolRouter<OrteamMcp>) -> Self {
        self.tool_router.merge(router);
        self
    }

    /// Adds tools that change state: registered only when writes are enabled; otherwise they
    /// are hidden from `tools/list` and a call gets an error saying how to enable writes.
    pub fn with_write_tools(mut self, router: ToolRouter<OrteamMcp>) -> Self {
        if self.allow_write {
            self.tool_router.merge(router);
        } else {
            let gated = Arc::make_mut(&mut self.gated);
            gated.extend(router.list_all().into_iter().map(|t| t.name.into_owned()));
        }
        self
    }

    /// Adds always-available tools written in another crate: `router` is a
    /// `#[tool_router]`-generated router of that crate's own type `T`, and its handlers run
    /// with `state` as `&self`. (Inherent `#[tool_router] impl OrteamMcp` blocks can only live
    /// in this crate; this is how e.g. the team tools plug in.)
    pub fn with_service_tools<T>(self, state: Arc<T>, router: ToolRouter<T>) -> Self
    where
        T: Send + Sync + 'static,
    {
        self.with_tools(adapt(state, router))
    }

    /// [`with_service_tools`](Self::with_service_tools) for tools that change state: gated like
    /// [`with_write_tools`](Self::with_write_tools).
    pub fn with_service_write_tools<T>(self, state: Arc<T>, router: ToolRouter<T>) -> Self
    where
        T: Send + Sync + 'static,
    {
        self.with_write_tools(adapt(state, router))
    }

    /// The OpenRouter client (for tools added by other crates).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether write tools are registered.
    pub fn writes_enabled(&self) -> bool {
        self.allow_write
    }

    /// The registered tool names, sorted.
    pub fn tool_names(&self) -> Vec<String> {
        self.tool_router
            .list_all()
            .into_iter()
            .map(|t| t.name.into_owned())
            .collect()
    }

    /// The error text for a failed upstream call, with the key scrubbed.
    pub(crate) fn upstream_error(&self, tool: &str, err: &ClientError) -> String {
        self.redact(upstream::describe(tool, err))
    }

    /// `text` without the provisioning key.
    pub(crate) fn redact(&self, text: String) -> String {
        upstream::scrub(&text, self.secret.expose_secret()).unwrap_or(text)
    }

    fn redact_response(&self, response: &mut CallToolResponse) {
        if let CallToolResponse::Complete(result) = response {
            for block in &mut result.content {
                if let ContentBlock::Text(t) = block
                    && let Some(clean) = upstream::scrub(&t.text, self.secret.expose_secret())
                {
                    tracing::warn!("a tool result contained the provisioning key; redacted");
                    t.text = clean;
                }
            }
        }
    }
}

/// Re-targets every route of `router` (handlers of `T`) to [`OrteamMcp`], calling them with
/// `state` as their service.
fn adapt<T: Send + Sync + 'static>(state: Arc<T>, router: ToolRouter<T>) -> ToolRouter<OrteamMcp> {
    let mut adapted = ToolRouter::new();
    for route in router {
        let call = route.call.clone();
        let state = state.clone();
        adapted.add_route(ToolRoute::new_dyn(
            route.attr.clone(),
            move |ctx: ToolCallContext<'_, OrteamMcp>| {
                let call = call.clone();
                let state = state.clone();
                let mut params = CallToolRequestParams::new(ctx.name);
                params.arguments = ctx.arguments;
                params.input_responses = ctx.input_responses;
                params.request_state = ctx.request_state;
                let request_context = ctx.request_context;
                Box::pin(async move {
                    let inner = ToolCallContext::new(&*state, params, request_context);
                    call(inner).await
                })
            },
        ));
    }
    adapted
}

/// The message for a write tool called while writes are disabled.
pub(crate) fn writes_disabled_message(tool: &str) -> String {
    format!(
        "{tool} is a write tool and write tools are disabled: this server is read-only. To enable \
         them, {ENABLE_WRITES_HINT}, then reconnect."
    )
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for OrteamMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("orteam", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        if !self.tool_router.has_route(&name) {
            let data = serde_json::json!({ "tool": name });
            if self.gated.contains(&name) {
                return Err(ErrorData::invalid_params(
                    writes_disabled_message(&name),
                    Some(data),
                ));
            }
            return Err(ErrorData::invalid_params(
                format!("unknown tool {name:?}; call tools/list for the available tools"),
                Some(data),
            ));
        }
        let tcc = ToolCallContext::new(self, request, context);
        match self.tool_router.call(tcc).await {
            Ok(mut response) => {
                self.redact_response(&mut response);
                let failed =
                    matches!(&response, CallToolResponse::Complete(r) if r.is_error == Some(true));
                tracing::debug!(tool = %name, failed, "tool call done");
                Ok(response)
            }
            Err(mut e) => {
                e.message = self.redact(e.message.into_owned()).into();
                tracing::debug!(tool = %name, code = e.code.0, "tool call rejected");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::CallToolResult;

    use super::*;

    const KEY: &str = "sk-or-v1-feedfacefeedfacefeedfacefeedface";

    fn server(allow_write: bool) -> OrteamMcp {
        let mut config = McpConfig::new(SecretString::from(KEY.to_owned()));
        config.base_url = Some("http://127.0.0.1:9/api/v1".to_owned());
        config.allow_write = allow_write;
        OrteamMcp::new(&config).unwrap()
    }

    #[test]
    fn results_are_scrubbed_of_the_key() {
        let s = server(false);
        let mut response: CallToolResponse =
            CallToolResult::error(vec![ContentBlock::text(format!("boom {KEY} boom"))]).into();
        s.redact_response(&mut response);
        let CallToolResponse::Complete(r) = response else {
            panic!("complete");
        };
        let text = &r.content[0].as_text().unwrap().text;
        assert_eq!(text, "boom [REDACTED] boom");
        assert_eq!(s.redact(format!("x{KEY}")), "x[REDACTED]");
        assert!(!format!("{s:?}").contains(KEY));
    }

    #[test]
    fn write_tools_are_registered_only_when_enabled() {
        let ro = server(false);
        assert_eq!(ro.tool_names().len(), 16);
        assert!(ro.gated.contains("or_key_create"));
        assert_eq!(ro.gated.len(), 10);
        let rw = server(true);
        assert_eq!(rw.tool_names().len(), 26);
        assert!(rw.gated.is_empty());
        let msg = writes_disabled_message("or_key_delete");
        assert!(msg.contains("OPENROUTER_ADMIN_ALLOW_WRITE=1") && msg.contains("--allow-write"));
    }
}
