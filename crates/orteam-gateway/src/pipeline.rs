//! The request pipeline, the same for every route; the route's adapter ([`crate::wire`]) only
//! says how to read and rewrite its format.
//!
//! authenticate → read the body → parse → tier policy → price → rate limits, budget-aware
//! output cap, reserve → forward → answer and settle (release on failure).

use std::time::Instant;

use axum::body::Body;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::error::GatewayError;
use crate::gateway::{
    Gateway, GatewayWorker, HEADER_GENERATION_ID, HEADER_MAX_TOKENS, HEADER_MODEL, HEADER_REMOVED,
    HEADER_REQUEST_ID,
};
use crate::policy::{self, ModelDecision};
use crate::pricing::ModelPrice;
use crate::refused::Seen;
use crate::settle::Settlement;
use crate::sse::SseScanner;
use crate::trace::RequestTrace;
use crate::wire::{Wire, routing};
use crate::{auth, body, forward, reserve, respond};

/// Runs one request of `wire`; returns the response and whether it is a stream. `seen` learns
/// the member and the model as soon as they are known, for the refusal record.
pub async fn run(
    worker: &GatewayWorker,
    wire: Wire,
    req: Request<Incoming>,
    started: Instant,
    trace: &RequestTrace,
    seen: &mut Seen,
) -> Result<(Response<Body>, bool), GatewayError> {
    let gw = &worker.gw;
    let tracing = gw.tracing.as_ref();
    let auth = auth::authenticate(&gw.ledger, req.headers())?;
    trace.authenticated(&auth);
    seen.member_id = Some(auth.member_id.clone());
    let path = worker.upstream_path(wire, req.uri().query())?;
    let mut forwarded = forwarded_headers(wire, req.headers());
    let bytes = body::read(req, gw.config.max_body_bytes, gw.config.body_read_timeout).await?;
    let mut request = wire.parse(&bytes)?;
    let routing =
        request
            .routing
            .apply(&auth.tier.routing)
            .map_err(|r| GatewayError::FieldNotAllowed {
                field: r.field,
                reason: r.reason,
            })?;
    // Parts given by URL have no bytes in the body to bound their tokens.
    request.prompt_bound = request
        .prompt_bound
        .saturating_add(
            request
                .media
                .media
                .saturating_mul(gw.config.media_part_tokens),
        )
        .saturating_add(
            request
                .media
                .documents
                .saturating_mul(gw.config.document_part_tokens),
        );
    seen.model = Some(request.model.clone());
    let served = served_model(&auth, &request.model)?;
    let model = served.as_deref().unwrap_or(&request.model);
    trace.models(wire, &request.model, model, request.stream);
    let rates = price_of_every_model(gw, &auth, model, &routing.fallback_models).await?;
    let price =
        rates
            .with_media(request.media.total())
            .ok_or_else(|| GatewayError::BadRequest {
                message: "too many media parts to price".into(),
                param: None,
            })?;
    let credentials = auth::upstream_credentials(gw, &auth)?;
    let request_id = gw.next_request_id();
    let in_flight = crate::settle::in_flight_usage(
        gw,
        wire,
        &request_id,
        &auth,
        &credentials,
        (&request.model, model),
        request.stream,
    );
    let reserving = trace.stage(tracing, "orteam.reserve");
    let (quote, reservation) = reserve::reserve(gw, &auth, &price, &request, in_flight).await?;
    drop(reserving);
    trace.reserved(&quote);

    let upstream_body =
        request.upstream_body(model, quote.max_tokens, &auth.member_id, &routing, &rates);
    let upstream_span = trace.upstream(tracing, wire, model, &mut forwarded);
    let forwarded_result =
        forward::forward(worker, path, &credentials, &forwarded, upstream_body).await;
    drop(upstream_span);
    let resp = match forwarded_result {
        Ok(resp) => resp,
        Err(err) => {
            reservation.release();
            return Err(err);
        }
    };
    gw.metrics
        .upstream_first_byte
        .observe(started.elapsed().as_secs_f64());
    let header_generation_id = resp
        .headers()
        .get(HEADER_GENERATION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_stream = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if let Some(id) = &header_generation_id {
        // Upstream billed this generation: a crash from here on is corrected exactly. A
        // stream may run for minutes, so its id is written now (in the background: the first
        // bytes do not wait for it); a whole answer is settled as soon as its body is read,
        // and its id rides with that write.
        if is_stream {
            reservation.record_generation_id(id);
        } else {
            reservation.note_generation_id(id);
        }
    }
    let meta = Settlement {
        gw: gw.clone(),
        wire,
        request_id,
        auth,
        credentials,
        requested_model: request.model.clone(),
        served_model: model.to_owned(),
        streamed: is_stream,
        started,
        header_generation_id,
        trace: trace.clone(),
    };
    let mut headers = vec![(HEADER_REQUEST_ID, header_value(&meta.request_id))];
    if served.is_some() {
        headers.push((HEADER_MODEL, header_value(model)));
    }
    if quote.adjusted {
        headers.push((HEADER_MAX_TOKENS, HeaderValue::from(quote.max_tokens)));
    }
    if !routing.removed.is_empty() {
        headers.push((HEADER_REMOVED, header_value(&routing.removed.join(", "))));
    }
    if let Some(g) = resp.headers().get(HEADER_GENERATION_ID) {
        headers.push((HEADER_GENERATION_ID, g.clone()));
    }
    let status = resp.status();
    if !status.is_success() {
        // Upstream refused after its own checks: nothing was generated. Its advice on when to
        // come back goes to the member (a Retry-After longer than the retry window was not
        // waited out).
        reservation.release();
        for (name, value) in resp.headers() {
            if name == http::header::RETRY_AFTER || name.as_str().starts_with("x-ratelimit-") {
                headers.push((name.clone(), value.clone()));
            }
        }
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        return Ok((
            respond::upstream_error(&meta, status, bytes, headers),
            false,
        ));
    }
    if is_stream {
        let scanner = SseScanner::new(wire, request.client_wants_stream_usage);
        let response = respond::stream(meta, reservation, resp.into_body(), scanner, headers);
        return Ok((response, true));
    }
    Ok((
        respond::whole(meta, reservation, resp.into_body(), headers).await?,
        false,
    ))
}

/// The price to quote: the dearest of `model` and every fallback model upstream may serve
/// instead, each of which the tier must allow outright. A model missing from the catalog is
/// never free.
async fn price_of_every_model(
    gw: &Gateway,
    auth: &orteam_ledger::AuthContext,
    model: &str,
    fallbacks: &[String],
) -> Result<ModelPrice, GatewayError> {
    let price_of = |m: &str| {
        let m = m.to_owned();
        async move {
            if routing::is_preset(&m) {
                return Err(GatewayError::FieldNotAllowed {
                    field: "model",
                    reason: "a preset chooses the model upstream, where the budget cannot price it"
                        .into(),
                });
            }
            gw.catalog
                .price(&m)
                .await
                .ok_or(GatewayError::UnknownModel(m))
        }
    };
    let mut price = (*price_of(model).await?).clone();
    for fallback in fallbacks {
        if !policy::allows(&auth.tier, fallback) {
            return Err(GatewayError::FieldNotAllowed {
                field: "models",
                reason: format!(
                    "the fallback model {fallback:?} is not available to your tier ({})",
                    auth.tier.id
                ),
            });
        }
        price = price.dearest(&*price_of(fallback).await?);
    }
    Ok(price)
}

/// The tier policy: `None` to serve the requested model, `Some` to serve another.
fn served_model(
    auth: &orteam_ledger::AuthContext,
    requested: &str,
) -> Result<Option<String>, GatewayError> {
    match policy::decide(&auth.tier, requested) {
        ModelDecision::Allowed => Ok(None),
        ModelDecision::Downgraded(to) => Ok(Some(to)),
        ModelDecision::Denied { allowed } => Err(GatewayError::ModelNotAllowed {
            model: requested.to_owned(),
            tier: auth.tier.id.clone(),
            allowed,
        }),
    }
}

/// The client headers a route passes upstream unchanged.
fn forwarded_headers(wire: Wire, headers: &http::HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    wire.forwarded_headers()
        .iter()
        .filter_map(|name| Some((name.clone(), headers.get(name)?.clone())))
        .collect()
}

/// `POST /v1/messages/count_tokens`: Anthropic's free token count, which OpenRouter does not
/// serve. Answered here from the same prompt bound the budget uses, divided by a typical
/// four bytes per token; authenticated and checked against the tier, never reserved or billed.
pub async fn count_tokens(
    worker: &GatewayWorker,
    req: Request<Incoming>,
) -> Result<Response<Body>, GatewayError> {
    let gw = &worker.gw;
    let auth = auth::authenticate(&gw.ledger, req.headers())?;
    let bytes = body::read(req, gw.config.max_body_bytes, gw.config.body_read_timeout).await?;
    // The same validation as a Messages request (count_tokens takes its input subset).
    let request = Wire::Messages.parse(&bytes)?;
    served_model(&auth, &request.model)?;
    let input_tokens = bytes.len().div_ceil(4);
    let mut out = Response::new(Body::from(format!("{{\"input_tokens\":{input_tokens}}}")));
    out.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(out)
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("invalid"))
}
