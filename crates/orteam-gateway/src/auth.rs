//! Stage: authenticate the member's `ot-…` key (memory only, against the directory snapshot)
//! and choose the upstream credentials their requests use.
//!
//! The key is read from `Authorization: Bearer …` (every route) or `x-api-key` (Anthropic
//! clients with `ANTHROPIC_API_KEY`); Bearer wins when both are sent.

use http::{HeaderMap, HeaderValue, StatusCode};
use orteam_ledger::{AuthContext, AuthError, Ledger};
use secrecy::{ExposeSecret, SecretString};

use crate::error::GatewayError;
use crate::gateway::Gateway;

/// `Bearer <secret>` as a sensitive header value.
pub(crate) fn bearer(secret: &SecretString) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {}", secret.expose_secret())).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive), if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The member key a request presents: Bearer, else `x-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    bearer_token(headers).or_else(|| {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    })
}

/// The member behind the request's key.
pub fn authenticate(ledger: &Ledger, headers: &HeaderMap) -> Result<AuthContext, GatewayError> {
    let presented = presented_key(headers).ok_or_else(|| {
        GatewayError::Unauthorized(
            "missing API key: send `Authorization: Bearer ot-…` (or `x-api-key: ot-…`)".into(),
        )
    })?;
    let secret = SecretString::from(presented.to_owned());
    ledger.authenticate(&secret).map_err(|e| {
        GatewayError::Unauthorized(match e {
            AuthError::Malformed => "invalid API key: orteam keys look like `ot-…`".into(),
            other => other.to_string(),
        })
    })
}

/// The OpenRouter key a member's requests use.
#[derive(Clone)]
pub struct UpstreamCredentials {
    pub authorization: HeaderValue,
    /// The member's own upstream key (hash), when they have one.
    pub upstream_key_hash: Option<String>,
    /// For `/generation` look-ups of this request.
    pub secret: SecretString,
}

/// The member's own upstream key, else the gateway's shared one.
pub fn upstream_credentials(
    gw: &Gateway,
    auth: &AuthContext,
) -> Result<UpstreamCredentials, GatewayError> {
    if let Some(own) = &auth.upstream
        && let Some(secret) = &own.secret
    {
        let authorization =
            bearer(secret).ok_or_else(|| GatewayError::Internal("unusable upstream key".into()))?;
        return Ok(UpstreamCredentials {
            authorization,
            upstream_key_hash: Some(own.key_hash.clone()),
            secret: secret.clone(),
        });
    }
    match (&gw.shared_authorization, &gw.config.upstream_key) {
        (Some(authorization), Some(secret)) => Ok(UpstreamCredentials {
            authorization: authorization.clone(),
            upstream_key_hash: None,
            secret: secret.clone(),
        }),
        _ => Err(GatewayError::Upstream {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "no upstream OpenRouter key is configured for this member (set OPENROUTER_API_KEY on the gateway)".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing_is_one_rule() {
        let mut h = HeaderMap::new();
        for (value, want) in [
            ("Bearer ot-abc", Some("ot-abc")),
            ("bearer ot-abc ", Some("ot-abc")),
            ("BEARER ot-abc", Some("ot-abc")),
            ("Basic ot-abc", None),
            ("Bearer ", None),
            ("ot-abc", None),
        ] {
            h.insert(http::header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer_token(&h), want, "{value}");
        }
    }
}
