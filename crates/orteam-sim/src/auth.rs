//! Bearer authentication: the management key versus inference keys, with OpenRouter's 401/403
//! texts.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use orteam_core::Clock;

use crate::error::ApiError;
use crate::shared::Shared;
use crate::state::{KeyRecord, State};

/// Who is calling.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    Management,
    /// An inference key, by hash.
    Inference(Arc<str>),
}

/// The bearer token, or 401 when the header is missing or malformed.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("Missing Authentication header"))?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("Invalid Authentication header"))?;
    let token = text
        .strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("Missing Authentication header"))?;
    Ok(token)
}

impl State {
    /// A usable inference key for `token`: unknown → 401 "User not found.", disabled or expired
    /// → 401.
    pub fn inference_key(&self, token: &str, now: DateTime<Utc>) -> Result<&KeyRecord, ApiError> {
        let key = self
            .by_secret
            .get(token)
            .and_then(|h| self.keys.get(h))
            .ok_or_else(|| ApiError::unauthorized("User not found."))?;
        if key.disabled {
            return Err(ApiError::unauthorized("API key is disabled."));
        }
        if key.is_expired(now) {
            return Err(ApiError::unauthorized("API key has expired."));
        }
        Ok(key)
    }
}

impl Shared {
    /// Any valid key.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let token = bearer(headers)?;
        if token == self.provisioning_key {
            return Ok(Caller::Management);
        }
        let now = self.clock.now();
        let st = self.state.lock();
        st.inference_key(token, now)
            .map(|k| Caller::Inference(k.hash.clone()))
    }

    /// The management key only: other valid keys get 403.
    fn require_management(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match self.authenticate(headers)? {
            Caller::Management => Ok(()),
            Caller::Inference(_) => Err(ApiError::forbidden(
                "Only management keys can perform this operation",
            )),
        }
    }
}

/// A caller holding the management key. Handlers of management routes take it as an argument,
/// so the check is written once: a missing or unknown key is rejected with 401, an inference
/// key with 403, before the handler runs.
pub(crate) struct Management;

impl FromRequestParts<Arc<Shared>> for Management {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, ApiError> {
        shared
            .require_management(&parts.headers)
            .map(|()| Management)
    }
}
