//! Stage: read the request body (JSON only, bounded by `max_body_bytes` and
//! `body_read_timeout`).

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::error::GatewayError;

/// Reads the body, refusing one larger than `limit` bytes or slower than `deadline`.
pub async fn read(
    req: Request<Incoming>,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, GatewayError> {
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
        {
            return Err(GatewayError::UnsupportedMediaType);
        }
    }
    if let Some(len) = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let collected = tokio::time::timeout(deadline, Limited::new(req.into_body(), limit).collect())
        .await
        .map_err(|_| GatewayError::RequestTimeout)?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::PayloadTooLarge { limit })
        }
        Err(err) => Err(GatewayError::BadRequest {
            message: format!("could not read the request body: {err}"),
            param: None,
        }),
    }
}
