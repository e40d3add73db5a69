//! Errors: [`SimError`] for the Rust API (spawn, state file, fault parsing) and [`ApiError`], the
//! one place where a failure becomes OpenRouter's wire format
//! `{"error":{"code":N,"message":"…","metadata"?:{…}}}` with HTTP status == code.

use std::borrow::Cow;
use std::path::PathBuf;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why the simulator could not start, load or save its state, or parse a fault rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Binding or inspecting the listening socket failed.
    #[error("simulator listener: {0}")]
    Listener(#[source] std::io::Error),
    /// The HTTP server stopped with an I/O error.
    #[error("simulator server: {0}")]
    Serve(#[source] std::io::Error),
    /// The state file exists but could not be read.
    #[error("cannot read state file {path}: {source}")]
    StateRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The state file is not a snapshot this simulator wrote.
    #[error("state file {path} is not a valid simulator snapshot: {source}")]
    StateParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Writing the state file failed.
    #[error("cannot write state file {path}: {source}")]
    StateWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A compact fault rule (`status:429:retry_after=1`) did not parse.
    #[error("invalid fault rule {input:?}: {reason}")]
    FaultParse { input: String, reason: String },
    /// A configuration value is unusable (e.g. a key limit status other than 402/403).
    #[error("invalid simulator configuration: {0}")]
    Config(String),
}

/// An HTTP error in OpenRouter's shape.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: Cow<'static, str>,
    pub metadata: Option<serde_json::Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            message: message.into(),
            metadata: None,
            headers: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// An inference error: adds `metadata.error_type` as the real service does.
    pub fn with_error_type(mut self, error_type: &'static str) -> Self {
        let mut meta = match self.metadata.take() {
            Some(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        meta.insert("error_type".into(), error_type.into());
        self.metadata = Some(serde_json::Value::Object(meta));
        self
    }

    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorInner<'a>,
}

#[derive(Serialize)]
struct ErrorInner<'a> {
    code: u16,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a serde_json::Value>,
}

/// Serializes an error body (also used for the mid-stream error chunk's `error` object).
pub(crate) fn error_body(
    status: u16,
    message: &str,
    metadata: Option<&serde_json::Value>,
) -> Vec<u8> {
    let body = ErrorBody {
        error: ErrorInner {
            code: status,
            message,
            metadata,
        },
    };
    // Serializing plain strings and a Value into a Vec cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = error_body(self.status.as_u16(), &self.message, self.metadata.as_ref());
        let mut resp = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        for (name, value) in self.headers {
            resp.headers_mut().append(name, value);
        }
        resp
    }
}

/// Anthropic's `error.type` for an HTTP status, as OpenRouter's `/messages` maps them.
pub(crate) fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 | 524 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        s if s < 500 => "invalid_request_error",
        _ => "api_error",
    }
}

/// `{"type":"error","error":{"type":…,"message":…[,"error_type":…]},"request_id":…}`.
pub(crate) fn anthropic_error_body(
    status: u16,
    message: &str,
    metadata: Option<&serde_json::Value>,
    request_id: Option<&str>,
) -> String {
    let mut error = serde_json::json!({
        "type": anthropic_error_type(status),
        "message": message,
    });
    if let Some(t) = metadata.and_then(|m| m.get("error_type")) {
        error["error_type"] = t.clone();
    }
    serde_json::json!({"type": "error", "error": error, "request_id": request_id}).to_string()
}

impl ApiError {
    /// The error in Anthropic's shape (`/messages`), same status and headers.
    pub fn into_anthropic_response(self) -> Response {
        let body = anthropic_error_body(
            self.status.as_u16(),
            &self.message,
            self.metadata.as_ref(),
            None,
        );
        let mut resp = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        for (name, value) in self.headers {
            resp.headers_mut().append(name, value);
        }
        resp
    }

    /// The error in the shape the route at `path` uses (Anthropic's on `/api/v1/messages`).
    pub fn into_response_for(self, path: &str) -> Response {
        if is_messages_path(path) {
            self.into_anthropic_response()
        } else {
            self.into_response()
        }
    }
}

/// Whether `path` is the Anthropic Messages route (whose errors use Anthropic's shape).
pub(crate) fn is_messages_path(path: &str) -> bool {
    path == "/api/v1/messages"
}
