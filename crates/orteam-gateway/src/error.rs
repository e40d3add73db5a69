//! Every way a gateway request can fail, and the one place each becomes an error response in
//! the caller's own format: OpenAI's `{"error":{"message","type","code","param"}}` or
//! Anthropic's `{"type":"error","error":{"type","message"}}`, with the matching HTTP status.
//! Messages are for the member who sent the request: they name what to fix and never carry a
//! key, a database detail or an internal path.

use axum::body::Body;
use chrono::{DateTime, Utc};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use serde::Serialize;

use crate::wire::ErrorShape;

/// A request the gateway refuses or could not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error("{0}")]
    Unauthorized(String),
    /// An admin action the caller's role does not allow (the reason names role and rule).
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    BadRequest {
        message: String,
        param: Option<&'static str>,
    },
    #[error("model {model:?} is not available to your tier ({tier}); allowed: {}", allowed.join(", "))]
    ModelNotAllowed {
        model: String,
        tier: String,
        allowed: Vec<String>,
    },
    #[error("`{field}` is not allowed through this gateway: {reason}")]
    FieldNotAllowed { field: &'static str, reason: String },
    #[error("model {0:?} does not exist in the catalog")]
    UnknownModel(String),
    #[error("rate limit reached ({what}); retry in {retry_after_secs} s")]
    RateLimited {
        what: &'static str,
        retry_after_secs: u64,
    },
    #[error("{scope} {window} budget exhausted: {detail}; it resets at {reset_at}")]
    BudgetExhausted {
        /// `member "alice"`, `team "backend"`, `org "acme"`.
        scope: String,
        window: String,
        detail: String,
        reset_at: DateTime<Utc>,
    },
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method not allowed; use {0}")]
    MethodNotAllowed(&'static str),
    #[error("method not allowed: {0}")]
    MethodNotAllowedHere(String),
    /// Upstream answered with an error or could not be reached; nothing was charged.
    #[error("upstream error: {message}")]
    Upstream { status: StatusCode, message: String },
    /// Upstream rejected the gateway's own shared key (`OPENROUTER_API_KEY`): the member's key
    /// is fine, the gateway's configuration is not. Never passed on as upstream's "User not
    /// found", which would send the member after their own key.
    #[error(
        "the gateway's OpenRouter key was rejected (upstream {status}); the operator must check {} on the gateway. Your orteam key is fine and nothing was charged",
        orteam_core::env::OPENROUTER_API_KEY
    )]
    UpstreamKeyRejected { status: u16 },
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// The ledger cannot make the request's record durable (database unreachable, journal not
    /// writable): the request is refused before it reaches upstream, so nothing is billed.
    #[error("the gateway cannot record usage right now; retry in {retry_after_secs} s")]
    LedgerUnavailable { retry_after_secs: u64 },
    /// Something that should not happen; details are logged, not sent.
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body_<'a>,
}

#[derive(Serialize)]
struct Body_<'a> {
    message: String,
    #[serde(rename = "type")]
    kind: &'a str,
    code: &'a str,
    param: Option<&'a str>,
}

#[derive(Serialize)]
struct AnthropicEnvelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    error: AnthropicBody<'a>,
    request_id: Option<&'a str>,
}

#[derive(Serialize)]
struct AnthropicBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: String,
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::BadRequest { .. } | GatewayError::UnknownModel(_) => {
                StatusCode::BAD_REQUEST
            }
            GatewayError::ModelNotAllowed { .. } | GatewayError::FieldNotAllowed { .. } => {
                StatusCode::FORBIDDEN
            }
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::BudgetExhausted { .. } => StatusCode::PAYMENT_REQUIRED,
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed(_) | GatewayError::MethodNotAllowedHere(_) => {
                StatusCode::METHOD_NOT_ALLOWED
            }
            GatewayError::Upstream { status, .. } => *status,
            GatewayError::UpstreamKeyRejected { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::ShuttingDown | GatewayError::LedgerUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `type` and `code`.
    fn kind_and_code(&self) -> (&'static str, &'static str) {
        match self {
            GatewayError::Unauthorized(_) => ("authentication_error", "invalid_api_key"),
            GatewayError::Forbidden(_) => ("permission_error", "forbidden"),
            GatewayError::BadRequest { .. } => ("invalid_request_error", "invalid_request"),
            GatewayError::UnknownModel(_) => ("invalid_request_error", "model_not_found"),
            GatewayError::ModelNotAllowed { .. } => ("permission_error", "model_not_allowed"),
            GatewayError::FieldNotAllowed { .. } => ("permission_error", "field_not_allowed"),
            GatewayError::RateLimited { .. } => ("rate_limit_error", "rate_limit_exceeded"),
            GatewayError::BudgetExhausted { .. } => ("insufficient_quota", "budget_exceeded"),
            GatewayError::PayloadTooLarge { .. } => ("invalid_request_error", "payload_too_large"),
            GatewayError::UnsupportedMediaType => {
                ("invalid_request_error", "unsupported_media_type")
            }
            GatewayError::RequestTimeout => ("invalid_request_error", "request_timeout"),
            GatewayError::NotFound(_) => ("invalid_request_error", "not_found"),
            GatewayError::MethodNotAllowed(_) | GatewayError::MethodNotAllowedHere(_) => {
                ("invalid_request_error", "method_not_allowed")
            }
            GatewayError::Upstream { .. } => ("upstream_error", "upstream_error"),
            GatewayError::UpstreamKeyRejected { .. } => ("server_error", "upstream_key_rejected"),
            GatewayError::ShuttingDown => ("server_error", "shutting_down"),
            GatewayError::LedgerUnavailable { .. } => ("server_error", "ledger_unavailable"),
            GatewayError::Internal(_) => ("server_error", "internal_error"),
        }
    }

    fn param(&self) -> Option<&'static str> {
        match self {
            GatewayError::BadRequest { param, .. } => *param,
            GatewayError::UnknownModel(_) | GatewayError::ModelNotAllowed { .. } => Some("model"),
            GatewayError::FieldNotAllowed { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The metric label for this error.
    pub fn code(&self) -> &'static str {
        self.kind_and_code().1
    }

    /// Anthropic's `error.type` for this error.
    fn anthropic_type(&self) -> &'static str {
        match self {
            GatewayError::Unauthorized(_) => "authentication_error",
            GatewayError::ModelNotAllowed { .. }
            | GatewayError::FieldNotAllowed { .. }
            | GatewayError::Forbidden(_) => "permission_error",
            GatewayError::UnknownModel(_) | GatewayError::NotFound(_) => "not_found_error",
            GatewayError::RateLimited { .. } => "rate_limit_error",
            GatewayError::BudgetExhausted { .. } => "billing_error",
            GatewayError::PayloadTooLarge { .. } => "request_too_large",
            GatewayError::BadRequest { .. }
            | GatewayError::UnsupportedMediaType
            | GatewayError::RequestTimeout
            | GatewayError::MethodNotAllowed(_)
            | GatewayError::MethodNotAllowedHere(_) => "invalid_request_error",
            GatewayError::Upstream { status, .. } => match status.as_u16() {
                401 => "authentication_error",
                402 => "billing_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                400..=499 => "invalid_request_error",
                _ => "api_error",
            },
            GatewayError::LedgerUnavailable { .. } => "overloaded_error",
            GatewayError::ShuttingDown
            | GatewayError::UpstreamKeyRejected { .. }
            | GatewayError::Internal(_) => "api_error",
        }
    }

    /// Whether a client retrying the same request could succeed. Refusals of policy and
    /// budget are final: Claude Code honours `x-should-retry: false` and stops instead of
    /// looping (every retry of a real answer would be billed again).
    fn retry_is_futile(&self) -> bool {
        matches!(
            self,
            GatewayError::BudgetExhausted { .. }
                | GatewayError::ModelNotAllowed { .. }
                | GatewayError::FieldNotAllowed { .. }
                | GatewayError::UnknownModel(_)
        )
    }

    /// The HTTP response an OpenAI-style client sees.
    pub fn to_response(&self) -> Response<Body> {
        self.to_response_as(ErrorShape::OpenAi)
    }

    /// The HTTP response a client of the given wire format sees.
    pub fn to_response_as(&self, shape: ErrorShape) -> Response<Body> {
        if let GatewayError::Internal(detail) = self {
            tracing::error!(detail = %detail, "internal gateway error");
        }
        let quota = shape == ErrorShape::OpenAiQuota
            && matches!(self, GatewayError::BudgetExhausted { .. });
        let bytes = match shape {
            ErrorShape::OpenAi | ErrorShape::OpenAiQuota => {
                let (kind, code) = if quota {
                    ("insufficient_quota", "insufficient_quota")
                } else {
                    self.kind_and_code()
                };
                serde_json::to_vec(&Envelope {
                    error: Body_ {
                        message: self.to_string(),
                        kind,
                        code,
                        param: self.param(),
                    },
                })
            }
            ErrorShape::Anthropic => serde_json::to_vec(&AnthropicEnvelope {
                kind: "error",
                error: AnthropicBody {
                    kind: self.anthropic_type(),
                    message: self.to_string(),
                },
                request_id: None,
            }),
        }
        .unwrap_or_else(|_| {
            br#"{"error":{"message":"internal error","type":"server_error","code":"internal_error","param":null}}"#.to_vec()
        });
        let mut resp = Response::new(Body::from(bytes));
        *resp.status_mut() = match (shape, self) {
            _ if quota => StatusCode::TOO_MANY_REQUESTS,
            // Anthropic's API answers an unknown model with 404 `not_found_error`.
            (ErrorShape::Anthropic, GatewayError::UnknownModel(_)) => StatusCode::NOT_FOUND,
            _ => self.status(),
        };
        let headers = resp.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let GatewayError::RateLimited {
            retry_after_secs, ..
        }
        | GatewayError::LedgerUnavailable { retry_after_secs } = self
        {
            headers.insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(*retry_after_secs),
            );
        }
        if let GatewayError::MethodNotAllowed(allowed) = self {
            headers.insert(http::header::ALLOW, HeaderValue::from_static(allowed));
        }
        if self.retry_is_futile() {
            headers.insert(
                HeaderName::from_static("x-should-retry"),
                HeaderValue::from_static("false"),
            );
        }
        if matches!(self, GatewayError::Unauthorized(_)) {
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

impl From<crate::wire::RequestError> for GatewayError {
    fn from(e: crate::wire::RequestError) -> Self {
        GatewayError::BadRequest {
            message: e.message,
            param: e.param,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn json(e: GatewayError) -> (StatusCode, serde_json::Value, http::HeaderMap) {
        let resp = e.to_response();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap(), headers)
    }

    #[tokio::test]
    async fn openai_shaped_errors() {
        let (s, v, _) = json(GatewayError::BadRequest {
            message: "`model` is required".into(),
            param: Some("model"),
        })
        .await;
        assert_eq!(s, 400);
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");

        let (s, v, h) = json(GatewayError::RateLimited {
            what: "requests per minute",
            retry_after_secs: 7,
        })
        .await;
        assert_eq!(s, 429);
        assert_eq!(h[http::header::RETRY_AFTER], "7");
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");

        let (s, v, _) = json(GatewayError::Internal("db said: password=hunter2".into())).await;
        assert_eq!(s, 500);
        assert!(!v.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn anthropic_shaped_errors() {
        let resp = GatewayError::BudgetExhausted {
            scope: "member \"alice\"".into(),
            window: "daily".into(),
            detail: "limit 1".into(),
            reset_at: chrono::DateTime::UNIX_EPOCH,
        }
        .to_response_as(ErrorShape::Anthropic);
        assert_eq!(resp.status(), 402);
        assert_eq!(resp.headers()["x-should-retry"], "false");
        let v: serde_json::Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "billing_error");
        assert!(v["error"]["message"].as_str().unwrap().contains("alice"));
    }
}
