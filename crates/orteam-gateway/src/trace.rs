//! OpenTelemetry traces: one span per gateway request, exported over OTLP (HTTP/protobuf).
//!
//! Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set;
//! off, every call here is a branch on an empty `Option` (no span, no allocation, no header).
//! On, the request span carries the GenAI semantic-convention attributes (operation, request
//! and response model, input/output tokens) and orteam's (member, team, tier, route, model
//! decision, budget decision, clamp, cost as an exact decimal string, outcome), with child
//! spans for the stages that take time: `orteam.reserve`, the upstream call (whose W3C
//! `traceparent` goes upstream) and `orteam.settle`. A client's `traceparent` is the request
//! span's parent. Prompts and completions are never recorded: no attribute is read from a
//! request or answer body beyond the model, token counts and cost.
//!
//! Spans are exported in batches by the SDK's own thread; its HTTP requests run on the tokio
//! runtime that started the gateway ([`OtlpHttpClient`]), over the hyper + rustls stack the
//! gateway already has (no second HTTP client, no gRPC stack).

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use orteam_ledger::{AuthContext, Usage};

use crate::config::ConfigError;
use crate::error::GatewayError;
use crate::pricing::Quote;
use crate::wire::Wire;

/// The standard OpenTelemetry environment variables orteam reads.
pub mod env {
    pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
    pub const OTEL_TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
    pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
    pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
    pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
    pub const OTEL_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
    pub const OTEL_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
}

/// Where and how to export traces, from the standard variables.
#[derive(Debug, Clone)]
pub struct OtelSettings {
    /// The full URL spans are POSTed to (`…/v1/traces`).
    pub traces_endpoint: String,
    pub service_name: String,
    pub sampler: Sampler,
}

impl OtelSettings {
    /// `None` when tracing is off (no endpoint, `OTEL_SDK_DISABLED=true` or
    /// `OTEL_TRACES_EXPORTER=none`).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if get(env::OTEL_SDK_DISABLED).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match get(env::OTEL_TRACES_EXPORTER).as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "{} = {other:?}: orteam exports traces with otlp only (or none)",
                    env::OTEL_TRACES_EXPORTER
                )));
            }
        }
        let traces_endpoint = match (
            get(env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
            get(env::OTEL_EXPORTER_OTLP_ENDPOINT),
        ) {
            (Some(url), _) => url,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        if !(traces_endpoint.starts_with("http://") || traces_endpoint.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "OTLP endpoint {traces_endpoint:?} must start with http:// or https://"
            )));
        }
        for name in [
            env::OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
            env::OTEL_EXPORTER_OTLP_PROTOCOL,
        ] {
            if let Some(p) = get(name).filter(|p| p != "http/protobuf") {
                return Err(ConfigError::Invalid(format!(
                    "{name} = {p:?}: orteam exports OTLP over http/protobuf only"
                )));
            }
        }
        Ok(Some(OtelSettings {
            traces_endpoint,
            service_name: get(env::OTEL_SERVICE_NAME).unwrap_or_else(|| "orteam".into()),
            sampler: sampler(
                get(env::OTEL_TRACES_SAMPLER).as_deref(),
                get(env::OTEL_TRACES_SAMPLER_ARG).as_deref(),
            )?,
        }))
    }
}

/// The sampler the specification's `OTEL_TRACES_SAMPLER` names (default
/// `parentbased_always_on`).
fn sampler(name: Option<&str>, arg: Option<&str>) -> Result<Sampler, ConfigError> {
    let ratio = || -> Result<f64, ConfigError> {
        match arg {
            None => Ok(1.0),
            Some(a) => a
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "{} = {a:?}: a sampling ratio between 0 and 1",
                        env::OTEL_TRACES_SAMPLER_ARG
                    ))
                }),
        }
    };
    Ok(match name.unwrap_or("parentbased_always_on") {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio()?),
        "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        "parentbased_traceidratio" => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio()?)))
        }
        other => {
            return Err(ConfigError::Invalid(format!(
                "{} = {other:?}: use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
                env::OTEL_TRACES_SAMPLER
            )));
        }
    })
}

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry exporter: {0}")]
pub struct TraceStartError(String);

/// A running exporter and the tracer requests use.
#[derive(Debug)]
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

impl Tracing {
    /// Starts the batch exporter. Call on the tokio runtime that will carry its HTTP requests.
    pub fn start(settings: &OtelSettings) -> Result<Tracing, TraceStartError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(settings.traces_endpoint.clone())
            .with_http_client(OtlpHttpClient::new()?)
            .build()
            .map_err(|e| TraceStartError(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(settings.sampler.clone())
            .with_resource(
                opentelemetry_sdk::Resource::builder_empty()
                    .with_service_name(settings.service_name.clone())
                    .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("orteam-gateway");
        Ok(Tracing {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
        })
    }

    /// Exports what is still buffered and stops the exporter (blocking: call off the runtime's
    /// worker threads).
    pub fn shutdown(&self) {
        if let Err(err) = self.provider.shutdown() {
            tracing::warn!(%err, "OpenTelemetry exporter did not shut down cleanly");
        }
    }
}

/// The exporter's HTTP client: hyper (with rustls for `https://` collectors) on the tokio
/// runtime that started the gateway. The SDK's export thread waits for the request's task.
#[derive(Debug, Clone)]
struct OtlpHttpClient {
    client: HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
}

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl OtlpHttpClient {
    fn new() -> Result<Self, TraceStartError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| TraceStartError(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| TraceStartError("start the exporter on a tokio runtime".into()))?;
        Ok(OtlpHttpClient {
            client: HyperClient::builder(hyper_util::rt::TokioExecutor::new()).build(connector),
            runtime,
        })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpHttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let request = http::Request::from_parts(parts, Full::new(body));
            let response = tokio::time::timeout(EXPORT_TIMEOUT, client.request(request))
                .await
                .map_err(|_| HttpError::from("the OTLP collector did not answer in time"))??;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, HttpError>(http::Response::from_parts(parts, body))
        });
        task.await?
    }
}

/// The trace of one gateway request: empty when tracing is off or the request is not sampled
/// out (a non-recording span then ignores every attribute).
#[derive(Clone, Default)]
pub struct RequestTrace(Option<Context>);

impl std::fmt::Debug for RequestTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "RequestTrace(on)"
        } else {
            "RequestTrace(off)"
        })
    }
}

/// A stage's child span; ends when dropped.
#[must_use = "the stage's span ends when this is dropped"]
pub struct StageSpan(Option<opentelemetry_sdk::trace::Span>);

impl Drop for StageSpan {
    fn drop(&mut self) {
        if let Some(span) = &mut self.0 {
            span.end();
        }
    }
}

/// The settle stage's span: ends the request span too when the request was a stream (a
/// stream's request span lasts until its usage is recorded).
#[must_use = "the stage's span ends when this is dropped"]
pub struct SettleSpan {
    stage: StageSpan,
    request: Option<Context>,
}

impl Drop for SettleSpan {
    fn drop(&mut self) {
        if let Some(span) = &mut self.stage.0 {
            span.end();
        }
        if let Some(cx) = &self.request {
            cx.span().end();
        }
    }
}

/// GenAI's `gen_ai.operation.name` of a route.
fn operation(wire: Wire) -> &'static str {
    match wire {
        Wire::Embeddings => "embeddings",
        Wire::Completions => "text_completion",
        Wire::Chat | Wire::Messages | Wire::Responses => "chat",
    }
}

impl RequestTrace {
    /// Starts the request's span, a child of the client's `traceparent` if it sent one.
    pub fn start(tracing: Option<&Tracing>, wire: Wire, headers: &HeaderMap) -> Self {
        let Some(t) = tracing else {
            return RequestTrace(None);
        };
        let parent = t.propagator.extract(&HeaderExtractor(headers));
        let span = t
            .tracer
            .span_builder(Cow::Borrowed(operation(wire)))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", operation(wire)),
                KeyValue::new("gen_ai.provider.name", "openrouter"),
                KeyValue::new("gen_ai.system", "openrouter"),
                KeyValue::new("http.request.method", "POST"),
                KeyValue::new("url.path", format!("/v1/{}", wire.upstream_path())),
                KeyValue::new("orteam.route", wire.as_str()),
            ])
            .start_with_context(&t.tracer, &parent);
        RequestTrace(Some(parent.with_span(span)))
    }

    fn with(&self, f: impl FnOnce(&opentelemetry::trace::SpanRef<'_>)) {
        if let Some(cx) = &self.0
            && cx.span().is_recording()
        {
            f(&cx.span());
        }
    }

    /// Who sent it.
    pub fn authenticated(&self, auth: &AuthContext) {
        self.with(|s| {
            s.set_attribute(KeyValue::new("orteam.member", auth.member_id.clone()));
            s.set_attribute(KeyValue::new("orteam.team", auth.team_id.clone()));
            s.set_attribute(KeyValue::new("orteam.tier", auth.tier.id.clone()));
        });
    }

    /// The model asked for and the one the tier lets it have; the span is renamed
    /// `{operation} {model}` as the conventions name it.
    pub fn models(&self, wire: Wire, requested: &str, served: &str, stream: bool) {
        self.with(|s| {
            s.update_name(format!("{} {served}", operation(wire)));
            s.set_attribute(KeyValue::new("gen_ai.request.model", served.to_owned()));
            s.set_attribute(KeyValue::new(
                "orteam.requested_model",
                requested.to_owned(),
            ));
            s.set_attribute(KeyValue::new(
                "orteam.model_decision",
                if requested == served {
                    "allowed"
                } else {
                    "downgraded"
                },
            ));
            s.set_attribute(KeyValue::new("orteam.stream", stream));
        });
    }

    /// The budget's verdict: allowed as asked, or the output cap lowered to what it can pay.
    pub fn reserved(&self, quote: &Quote) {
        self.with(|s| {
            s.set_attribute(KeyValue::new(
                "orteam.budget.decision",
                if quote.adjusted { "clamped" } else { "allowed" },
            ));
            s.set_attribute(KeyValue::new(
                "gen_ai.request.max_tokens",
                i64::try_from(quote.max_tokens).unwrap_or(i64::MAX),
            ));
            if quote.adjusted {
                s.set_attribute(KeyValue::new(
                    "orteam.clamp.max_tokens",
                    i64::try_from(quote.max_tokens).unwrap_or(i64::MAX),
                ));
            }
            s.set_attribute(KeyValue::new(
                "orteam.reserved",
                quote.worst_case.to_canonical_string(),
            ));
        });
    }

    /// A child span for a stage (`orteam.reserve` …).
    pub fn stage(&self, tracing: Option<&Tracing>, name: &'static str) -> StageSpan {
        match (tracing, &self.0) {
            (Some(t), Some(cx)) => StageSpan(Some(
                t.tracer
                    .span_builder(name)
                    .with_kind(SpanKind::Internal)
                    .start_with_context(&t.tracer, cx),
            )),
            _ => StageSpan(None),
        }
    }

    /// The upstream call's client span; its `traceparent` is added to `headers`.
    pub fn upstream(
        &self,
        tracing: Option<&Tracing>,
        wire: Wire,
        model: &str,
        headers: &mut Vec<(HeaderName, HeaderValue)>,
    ) -> StageSpan {
        let (Some(t), Some(cx)) = (tracing, &self.0) else {
            return StageSpan(None);
        };
        let span = t
            .tracer
            .span_builder(format!("{} {model}", operation(wire)))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", operation(wire)),
                KeyValue::new("gen_ai.provider.name", "openrouter"),
                KeyValue::new("gen_ai.request.model", model.to_owned()),
                KeyValue::new("url.path", wire.upstream_path()),
            ])
            .start_with_context(&t.tracer, cx);
        let mut injected = HeaderMap::new();
        t.propagator.inject_context(
            &Context::new().with_remote_span_context(span.span_context().clone()),
            &mut HeaderInjector(&mut injected),
        );
        for (name, value) in &injected {
            headers.push((name.clone(), value.clone()));
        }
        StageSpan(Some(span))
    }

    /// What was recorded: tokens, the exact cost, the outcome. Starts the settle stage's span.
    pub fn settling(&self, tracing: Option<&Tracing>, usage: &Usage) -> SettleSpan {
        self.with(|s| {
            if let Some(model) = &usage.served_model {
                s.set_attribute(KeyValue::new("gen_ai.response.model", model.clone()));
            }
            if let Some(id) = &usage.generation_id {
                s.set_attribute(KeyValue::new("gen_ai.response.id", id.clone()));
            }
            s.set_attribute(KeyValue::new(
                "gen_ai.usage.input_tokens",
                i64::try_from(usage.prompt_tokens).unwrap_or(i64::MAX),
            ));
            s.set_attribute(KeyValue::new(
                "gen_ai.usage.output_tokens",
                i64::try_from(usage.completion_tokens).unwrap_or(i64::MAX),
            ));
            s.set_attribute(KeyValue::new(
                "orteam.cost",
                usage.cost.to_canonical_string(),
            ));
            s.set_attribute(KeyValue::new("orteam.outcome", usage.outcome.as_str()));
            s.set_attribute(KeyValue::new("orteam.request_id", usage.request_id.clone()));
            if let Some(p) = &usage.provider {
                s.set_attribute(KeyValue::new("orteam.upstream_provider", p.clone()));
            }
        });
        SettleSpan {
            stage: self.stage(tracing, "orteam.settle"),
            request: if usage.streamed { self.0.clone() } else { None },
        }
    }

    /// The answer's status; a non-stream request's span ends here.
    pub fn responded(&self, status: StatusCode, stream: bool) {
        self.with(|s| {
            s.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
            if status.is_server_error() {
                s.set_status(Status::error(format!("upstream answered {status}")));
            }
        });
        if !stream && let Some(cx) = &self.0 {
            cx.span().end();
        }
    }

    /// A refusal or failure (its message names no secret; see [`GatewayError`]).
    pub fn failed(&self, err: &GatewayError) {
        self.with(|s| {
            s.set_attribute(KeyValue::new("error.type", err.code()));
            if matches!(err, GatewayError::BudgetExhausted { .. }) {
                s.set_attribute(KeyValue::new("orteam.budget.decision", "refused"));
            }
            s.set_status(Status::error(err.to_string()));
        });
    }
}
