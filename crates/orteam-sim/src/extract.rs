//! Extractors whose rejections are OpenRouter-style JSON errors, so axum's plain-text rejection
//! bodies never reach a client.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The raw request body; oversized or unreadable bodies become JSON errors.
pub(crate) struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(RawBody(b)),
            Err(rejection) => {
                let status = rejection.status();
                let text = rejection.body_text();
                let _ = rejection.into_response();
                Err(ApiError::new(status, text))
            }
        }
    }
}

/// A JSON body parsed into `T`; malformed JSON or wrong types give a 400 naming the problem.
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body, mapping serde's message into a 400.
pub(crate) fn parse_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    // Serde would accept an array for a struct; OpenRouter bodies are always objects.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(
            "Invalid request parameters: the request body must be a JSON object",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Invalid request parameters: {e}")))
}

/// Query parameters parsed into `T`.
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| {
                ApiError::bad_request(format!("Invalid query parameters: {}", e.body_text()))
            })
    }
}

/// Path parameters parsed into `T`.
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => Ok(ApiPath(p.0)),
            Err(e) => Err(ApiError::new(e.status(), e.body_text())),
        }
    }
}

/// Parses an optional query integer given as text (so "abc" is a clear 400, not a serde message).
pub(crate) fn parse_usize_param(
    name: &str,
    value: Option<&str>,
    default: usize,
) -> Result<usize, ApiError> {
    match value {
        None | Some("") => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid request parameters: {name} must be a non-negative integer, got {v:?}"
            ))
        }),
    }
}

/// `offset`/`limit` pagination with limit 1–100 (default 50).
pub(crate) fn page_params(
    offset: Option<&str>,
    limit: Option<&str>,
) -> Result<(usize, usize), ApiError> {
    let offset = parse_usize_param("offset", offset, 0)?;
    let limit = parse_usize_param("limit", limit, 50)?;
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(
            "Invalid request parameters: limit must be between 1 and 100",
        ));
    }
    Ok((offset, limit))
}

/// A body field that distinguishes "absent" from "null" (PATCH semantics).
#[derive(Debug)]
pub(crate) enum Field<T> {
    Absent,
    Null,
    Value(T),
}

impl<T> Field<T> {
    /// `None` for absent or null.
    pub fn into_option(self) -> Option<T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }

    /// `None` when absent, `Some(None)` for null.
    pub fn into_patch(self) -> Option<Option<T>> {
        match self {
            Field::Absent => None,
            Field::Null => Some(None),
            Field::Value(v) => Some(Some(v)),
        }
    }
}

/// A body field kept as raw JSON. Unlike `Option<Box<RawValue>>`, a JSON `null` is kept as
/// present (`Some("null")`), so PATCH can tell "clear" from "leave alone".
#[derive(Debug, Default)]
pub(crate) struct RawField(Option<Box<serde_json::value::RawValue>>);

impl<'de> serde::Deserialize<'de> for RawField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<serde_json::value::RawValue>::deserialize(d).map(|r| RawField(Some(r)))
    }
}

fn raw_text(raw: &RawField) -> Option<&str> {
    raw.0.as_deref().map(|r| r.get().trim())
}

fn invalid(name: &str, expected: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid request parameters: {name} must be {expected}"
    ))
}

/// A JSON value of type `T` (`expected` names it in the error).
pub(crate) fn typed_field<T: DeserializeOwned>(
    raw: &RawField,
    name: &str,
    expected: &str,
) -> Result<Field<T>, ApiError> {
    match raw_text(raw) {
        None => Ok(Field::Absent),
        Some("null") => Ok(Field::Null),
        Some(text) => serde_json::from_str(text)
            .map(Field::Value)
            .map_err(|_| invalid(name, expected)),
    }
}

/// A non-empty string.
pub(crate) fn string_field(raw: &RawField, name: &str) -> Result<Field<String>, ApiError> {
    match typed_field::<String>(raw, name, "a string")? {
        Field::Value(s) if s.trim().is_empty() => Err(invalid(name, "a non-empty string")),
        other => Ok(other),
    }
}

/// A non-negative amount of dollars, read losslessly from a JSON number (or numeric string).
pub(crate) fn money_field(
    raw: &RawField,
    name: &str,
) -> Result<Field<orteam_core::Money>, ApiError> {
    match raw_text(raw) {
        None => Ok(Field::Absent),
        Some("null") => Ok(Field::Null),
        Some(text) => {
            let unquoted = text
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .unwrap_or(text);
            let m = orteam_core::Money::parse(unquoted)
                .map_err(|_| invalid(name, "a number (USD) or null"))?;
            if m.is_negative() {
                return Err(invalid(name, "zero or more"));
            }
            Ok(Field::Value(m))
        }
    }
}

/// `"daily" | "weekly" | "monthly"`.
pub(crate) fn window_field(
    raw: &RawField,
    name: &str,
) -> Result<Field<orteam_core::Window>, ApiError> {
    use orteam_core::Window;
    let expected = "one of \"daily\", \"weekly\", \"monthly\" or null";
    Ok(match typed_field::<String>(raw, name, expected)? {
        Field::Absent => Field::Absent,
        Field::Null => Field::Null,
        Field::Value(s) => Field::Value(match s.as_str() {
            "daily" => Window::Daily,
            "weekly" => Window::Weekly,
            "monthly" => Window::Monthly,
            _ => return Err(invalid(name, expected)),
        }),
    })
}

/// An ISO-8601 timestamp in UTC (`Z` or `+00:00`); other offsets are rejected as OpenRouter does.
pub(crate) fn utc_time_field(
    raw: &RawField,
    name: &str,
) -> Result<Field<chrono::DateTime<chrono::Utc>>, ApiError> {
    let expected = "an ISO 8601 UTC timestamp such as \"2026-12-31T23:59:59Z\"";
    match typed_field::<String>(raw, name, expected)? {
        Field::Absent => Ok(Field::Absent),
        Field::Null => Ok(Field::Null),
        Field::Value(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(s.trim())
                .map_err(|_| invalid(name, expected))?;
            if t.offset().local_minus_utc() != 0 {
                return Err(ApiError::bad_request(format!(
                    "Invalid request parameters: {name} must be in UTC (use a \"Z\" suffix), got {s:?}"
                )));
            }
            Ok(Field::Value(t.with_timezone(&chrono::Utc)))
        }
    }
}
