//! Transports: stdio, streamable HTTP behind a bearer token, or any rmcp transport.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::IntoTransport;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServiceExt};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{McpConfig, McpError, OrteamMcp};

/// The path of the streamable HTTP endpoint.
pub const MCP_HTTP_PATH: &str = "/mcp";

/// The start-up line written to stderr:
/// `orteam mcp running on stdio (write tools: ENABLED|disabled)`.
pub fn startup_line(transport: &str, writes_enabled: bool) -> String {
    format!(
        "orteam mcp running on {transport} (write tools: {})",
        if writes_enabled {
            "ENABLED"
        } else {
            "disabled"
        }
    )
}

/// Serves the OpenRouter tools (and the team tools when `config.database_url` is set) on
/// stdin/stdout until the client disconnects.
///
/// Writes [`startup_line`] to stderr first. Nothing but protocol messages goes to stdout.
pub async fn serve_stdio(config: McpConfig) -> Result<(), McpError> {
    serve_stdio_with(OrteamMcp::from_config(&config).await?).await
}

/// [`serve_stdio`] for a server with extra tools.
pub async fn serve_stdio_with(server: OrteamMcp) -> Result<(), McpError> {
    eprintln!("{}", startup_line("stdio", server.writes_enabled()));
    serve_transport(server, rmcp::transport::stdio()).await
}

/// Runs `server` on any rmcp transport (e.g. one end of `tokio::io::duplex`) until the peer
/// disconnects.
pub async fn serve_transport<T, E, A>(server: OrteamMcp, transport: T) -> Result<(), McpError>
where
    T: IntoTransport<RoleServer, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let running = server
        .serve(transport)
        .await
        .map_err(|e| McpError::Initialize(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| McpError::Session(e.to_string()))?;
    tracing::debug!("MCP session closed");
    Ok(())
}

/// Serves the streamable HTTP transport at [`MCP_HTTP_PATH`] on `listener` until `shutdown`
/// is cancelled. Every request must carry `Authorization: Bearer <bearer_token>` (compared in
/// constant time); others get `401`.
pub async fn serve_http(
    config: McpConfig,
    listener: TcpListener,
    bearer_token: SecretString,
    shutdown: CancellationToken,
) -> Result<(), McpError> {
    let server = OrteamMcp::from_config(&config).await?;
    serve_http_with(
        server,
        &config.http_allowed_hosts,
        listener,
        bearer_token,
        shutdown,
    )
    .await
}

/// [`serve_http`] for a server with extra tools. `allowed_hosts` empty keeps rmcp's default
/// `Host` allowlist (loopback names).
pub async fn serve_http_with(
    server: OrteamMcp,
    allowed_hosts: &[String],
    listener: TcpListener,
    bearer_token: SecretString,
    shutdown: CancellationToken,
) -> Result<(), McpError> {
    if bearer_token.expose_secret().trim().is_empty() {
        return Err(McpError::Config(
            "the MCP HTTP bearer token must not be empty".to_owned(),
        ));
    }
    let expected = Arc::new(BearerDigest(digest(bearer_token.expose_secret())));
    let addr = listener.local_addr().map_err(McpError::Http)?;
    eprintln!(
        "{}",
        startup_line(
            &format!("http://{addr}{MCP_HTTP_PATH}"),
            server.writes_enabled()
        )
    );
    let mut http_config =
        StreamableHttpServerConfig::default().with_cancellation_token(shutdown.child_token());
    if !allowed_hosts.is_empty() {
        http_config = http_config.with_allowed_hosts(allowed_hosts.iter().cloned());
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        http_config,
    );
    let app = axum::Router::new()
        .nest_service(MCP_HTTP_PATH, service)
        .layer(axum::middleware::from_fn_with_state(
            expected,
            require_bearer,
        ));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(McpError::Http)
}

/// SHA-256 of the expected token, so the comparison does not depend on its length.
struct BearerDigest([u8; 32]);

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

async fn require_bearer(
    State(expected): State<Arc<BearerDigest>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let ok = presented.is_some_and(|t| bool::from(digest(t).ct_eq(&expected.0)));
    if ok {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({
            "error": "missing or invalid bearer token: send `Authorization: Bearer <token>`"
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
